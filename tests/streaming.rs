//! A streamed run (`finrst run`: segments printed as they are final, calls
//! spooled, the engine's segments dropped after each step) prints the same
//! bytes as the trace rendered whole, for every scenario, both formats, on
//! the model and on smoltcp; and `repeat N { }` is the same as its steps
//! written out N times.

use finrst::engine::{HostSpec, RunOptions};
use finrst::trace::{Format, TraceWriter};
use finrst::{EngineKind, run_file};

fn streamed(path: &str, kind: EngineKind, format: Format) -> (String, usize) {
    let opts = RunOptions::default();
    let script = finrst::script::parse_file(path).unwrap();
    let hosts = HostSpec::for_hosts(&script.hosts);
    let mut e = finrst::make_engine(kind, &hosts, &opts).unwrap();
    let mut w = TraceWriter::streaming(Vec::new(), format).unwrap();
    let t = finrst::run_streaming_on(&script, e.as_mut(), &opts, &mut w).unwrap();
    assert!(
        t.segments.is_empty() && t.calls.is_empty(),
        "{path}: a streamed trace keeps nothing"
    );
    // What the engine still holds at the end: only the last step's.
    let left = e.segments().len();
    (String::from_utf8(w.end(&t).unwrap()).unwrap(), left)
}

#[test]
fn streamed_output_is_the_whole_trace_byte_for_byte() {
    let files = finrst::compare::sim_files("sim").unwrap();
    assert!(files.len() >= 50);
    for f in &files {
        for kind in [EngineKind::Model, EngineKind::Smoltcp] {
            let whole = run_file(f, kind, &RunOptions::default()).unwrap();
            let (text, _) = streamed(f, kind, Format::Text);
            assert_eq!(text, whole.to_text(), "{f} on {kind:?}, text");
            let (json, _) = streamed(f, kind, Format::Json);
            assert_eq!(json, whole.to_json(), "{f} on {kind:?}, json");
            serde_json::from_str::<serde_json::Value>(&json).expect("valid JSON");
        }
    }
}

fn write(name: &str, body: &str) -> String {
    let dir = std::env::temp_dir().join(format!("finrst-streaming-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.to_string_lossy().to_string()
}

const HEAD: &str =
    "hosts client server\nserver listen 9999\nclient connect server:9999 = 0\nserver accept = 4\n";
const ROUND: &str =
    "client send 65536 MSG_DONTWAIT = 65536\nserver recv 65536 MSG_DONTWAIT = 65536\n";

#[test]
fn repeat_is_its_steps_written_out() {
    let rep = write(
        "rep.sim",
        &format!("{HEAD}repeat 30 {{\n{ROUND}}}\nclient close = 0\nexpect client > server F.\n"),
    );
    let flat = write(
        "rep.sim".replace("rep", "flat").as_str(),
        &format!(
            "{HEAD}{}client close = 0\nexpect client > server F.\n",
            ROUND.repeat(30)
        ),
    );
    let a = run_file(&rep, EngineKind::Model, &RunOptions::default()).unwrap();
    let b = run_file(&flat, EngineKind::Model, &RunOptions::default()).unwrap();
    assert_eq!(a.segments, b.segments);
    assert_eq!(a.states, b.states);
    assert_eq!(a.counters, b.counters);
    assert_eq!(a.calls.len(), 3 + 60 + 1);
    assert!(
        a.failures.is_empty() && b.failures.is_empty(),
        "{:?}",
        a.failures
    );
    // 30 x 64 KiB moved; results checked: connect, accept, 60 in the
    // rounds, close, and one segment expectation.
    let read: i64 = a
        .calls
        .iter()
        .filter(|c| c.call.starts_with("recv"))
        .map(|c| c.ret)
        .sum();
    assert_eq!(read, 30 * 65536);
    assert_eq!(a.expectations_checked, 2 + 60 + 1 + 1);
}

#[test]
fn a_streamed_run_holds_only_the_last_steps_segments() {
    let p = write("long.sim", &format!("{HEAD}repeat 500 {{\n{ROUND}}}\n"));
    let (text, left) = streamed(&p, EngineKind::Model, Format::Text);
    assert!(text.lines().filter(|l| l.contains(" > ")).count() > 2000);
    // finish() runs after the last step: the delayed ACK and nothing else.
    assert!(left <= 4, "the model kept {left} segments");
}

fn parse_err(body: &str) -> String {
    finrst::script::parse("t.sim", body)
        .unwrap_err()
        .to_string()
}

#[test]
fn repeat_errors_name_the_place_and_what_was_expected() {
    let e = parse_err("hosts a b\nrepeat 0 {\na close\n}\n");
    assert!(
        e.starts_with("t.sim:2:8:") && e.contains("a repeat count (1 to 100000000)"),
        "{e}"
    );
    let e = parse_err("hosts a b\nrepeat x {\n");
    assert!(e.starts_with("t.sim:2:8:"), "{e}");
    let e = parse_err("hosts a b\nrepeat 3 {\n}\n");
    assert!(
        e.starts_with("t.sim:3:1:") && e.contains("an empty repeat block"),
        "{e}"
    );
    let e = parse_err("hosts a b\nrepeat 3 {\na close\n");
    assert!(
        e.starts_with("t.sim:2:1:") && e.contains("never closed"),
        "{e}"
    );
    let e = parse_err("hosts a b\ntogether {\nrepeat 2 {\n");
    assert!(
        e.starts_with("t.sim:3:1:") && e.contains("do not nest inside `together"),
        "{e}"
    );
    let e = parse_err("hosts a b\nrepeat 2 {\nhorizon 5s\n}\n");
    assert!(e.starts_with("t.sim:3:1:"), "{e}");
    let e = parse_err("hosts a b\nrepeat 2\n");
    assert!(e.starts_with("t.sim:2:9:") && e.contains("'{'"), "{e}");
    // Nesting and together inside repeat are fine.
    let s = finrst::script::parse(
        "t.sim",
        "hosts a b\nrepeat 2 {\nrepeat 3 {\ntogether {\na close\nb close\n}\n}\nwait 1s\n}\n",
    )
    .unwrap();
    assert_eq!(finrst::script::step_count(&s.steps), 2 * (3 + 1));
}
