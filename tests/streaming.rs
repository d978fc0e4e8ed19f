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

fn write(dir: &tempfile::TempDir, name: &str, body: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, body).unwrap();
    p.to_string_lossy().to_string()
}

const HEAD: &str =
    "hosts client server\nserver listen 9999\nclient connect server:9999 = 0\nserver accept = 4\n";
const ROUND: &str =
    "client send 65536 MSG_DONTWAIT = 65536\nserver recv 65536 MSG_DONTWAIT = 65536\n";

#[test]
fn repeat_is_its_steps_written_out() {
    let dir = tempfile::tempdir().unwrap();
    let rep = write(
        &dir,
        "rep.sim",
        &format!("{HEAD}repeat 30 {{\n{ROUND}}}\nclient close = 0\nexpect client > server F.\n"),
    );
    let flat = write(
        &dir,
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
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "long.sim",
        &format!("{HEAD}repeat 500 {{\n{ROUND}}}\n"),
    );
    let (text, left) = streamed(&p, EngineKind::Model, Format::Text);
    assert!(text.lines().filter(|l| l.contains(" > ")).count() > 2000);
    // finish() runs after the last step: the delayed ACK and nothing else.
    assert!(left <= 4, "the model kept {left} segments");
}

/// Past its head, a streamed run's spool keeps only its last calls and
/// says how many it left out: the calls it shows are the whole trace's,
/// in order, in both formats.
#[test]
fn a_long_runs_calls_keep_their_head_and_tail() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "calls.sim",
        &format!("{HEAD}repeat 200 {{\n{ROUND}}}\nclient close = 0\n"),
    );
    let whole = run_file(&p, EngineKind::Model, &RunOptions::default()).unwrap();
    let n = whole.calls.len();
    assert_eq!(n, 3 + 400 + 1);
    let calls_of = |text: &str| -> Vec<String> {
        let start = text.find("\ncalls:\n").unwrap() + "\ncalls:\n".len();
        let end = text.find("\nstates:\n").unwrap();
        text[start..end].lines().map(String::from).collect()
    };
    let all = calls_of(&whole.to_text());
    assert_eq!(all.len(), n);
    // Each text line of these calls is under 100 bytes: 20 lines fit 2000.
    let head_bytes: u64 = all.iter().take(20).map(|l| l.len() as u64 + 1).sum();
    let run = |format: Format| {
        let opts = RunOptions::default();
        let script = finrst::script::parse_file(&p).unwrap();
        let hosts = HostSpec::for_hosts(&script.hosts);
        let mut e = finrst::make_engine(EngineKind::Model, &hosts, &opts).unwrap();
        let mut w = TraceWriter::streaming_with_limits(Vec::new(), format, head_bytes, 7);
        let t = finrst::run_streaming_on(&script, e.as_mut(), &opts, &mut w).unwrap();
        String::from_utf8(w.end(&t).unwrap()).unwrap()
    };
    let text = run(Format::Text);
    let shown = calls_of(&text);
    assert_eq!(shown.len(), 20 + 1 + 7, "{text}");
    assert_eq!(shown[..20], all[..20]);
    assert_eq!(
        shown[20].trim_start(),
        format!(
            "… {} calls not shown: a streamed run keeps the first {head_bytes} bytes of its calls and the last 7",
            n - 27
        )
    );
    assert_eq!(shown[21..], all[n - 7..]);
    // Everything else is the whole trace's.
    let (a, b) = (whole.to_text(), text.clone());
    assert_eq!(
        a[..a.find("\ncalls:").unwrap()],
        b[..b.find("\ncalls:").unwrap()]
    );
    assert_eq!(
        a[a.find("\nstates:").unwrap()..],
        b[b.find("\nstates:").unwrap()..]
    );

    let json: serde_json::Value = serde_json::from_str(&run(Format::Json)).unwrap();
    let whole_json: serde_json::Value = serde_json::from_str(&whole.to_json()).unwrap();
    let calls = json["calls"].as_array().unwrap();
    let all = whole_json["calls"].as_array().unwrap();
    let kept = calls.len() - 7;
    assert!(kept > 0 && kept < 20, "JSON calls are longer: fewer fit");
    assert_eq!(calls[..kept], all[..kept]);
    assert_eq!(calls[kept..], all[n - 7..]);
    assert_eq!(json["calls_not_shown"], (n - kept - 7) as u64);
    assert_eq!(json["segments"], whole_json["segments"]);
    assert!(whole_json.get("calls_not_shown").is_none());
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
