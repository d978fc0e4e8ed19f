//! The command line, run as a user runs it (the built binary): `explain`
//! on a fixture and on a pcap, `run` with `--pcap` / `--ladder` writing
//! their files, JSON Lines for several files, exit codes (2 with one line
//! `finrst: ...` for bad input or an engine that cannot run, checked up
//! front and as an unprivileged user; 1 for a failed expectation), what
//! `--help` shows, and a kernel run cut short compared up to the cut.

use std::process::Command;

fn finrst() -> Command {
    Command::new(env!("CARGO_BIN_EXE_finrst"))
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("finrst-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[test]
fn explain_prints_the_cause_and_the_scenario() {
    let f = format!(
        "{}/tests/fixtures/explain/seed000-epollout-unread.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = finrst().args(["explain", &f]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(
            "localhost.37776 sent RST after acknowledging 1 byte: close() with unread data"
        ),
        "{text}"
    );
    assert!(
        text.contains("reproduce: finrst run sim/seed000-epollout-unread.sim"),
        "{text}"
    );
    let out = finrst()
        .args(["explain", &f, "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["connections"][0]["cause_id"], "unread-data");
}

#[test]
fn explain_reads_a_pcap_and_fails_cleanly_on_nothing() {
    let p = tmp("x.pcap");
    finrst::pcap::write_file(&crate::traces::zero_window(), p.to_str().unwrap()).unwrap();
    let out = finrst()
        .args(["explain", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("zero window then RST from the receiver")
    );
    let e = tmp("empty.txt");
    std::fs::write(&e, "hello\n").unwrap();
    let out = finrst()
        .args(["explain", e.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("line 1: not a tcpdump TCP line, skipped")
    );
    let out = finrst()
        .args(["explain", "/nonexistent/capture.pcap"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Runs a script with `--pcap` and `--ladder`; `None` when the engine
/// could not run it (exit 2: the stub model in this branch refuses calls).
fn run_with_outputs(name: &str, script: &str) -> Option<(Vec<u8>, String)> {
    let sim = tmp(&format!("{name}.sim"));
    std::fs::write(&sim, script).unwrap();
    let (pcap, svg) = (tmp(&format!("{name}.pcap")), tmp(&format!("{name}.svg")));
    let out = finrst()
        .args([
            "run",
            sim.to_str().unwrap(),
            "--pcap",
            pcap.to_str().unwrap(),
            "--ladder",
            svg.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    if out.status.code() == Some(2) {
        println!(
            "{name}: the engine could not run it: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    Some((
        std::fs::read(&pcap).unwrap(),
        std::fs::read_to_string(&svg).unwrap(),
    ))
}

#[test]
fn run_writes_pcap_and_ladder() {
    // No calls: runs on any engine, and both files must still be valid.
    let (bytes, svg) = run_with_outputs("idle", "title idle\nhosts client server\nwait 1s\n")
        .expect("an idle script runs");
    let (_, cap) = pcap_parser::parse_pcap(&bytes).expect("a valid pcap");
    assert_eq!(cap.header.network.0, 101);
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(
        svg.contains(">idle</text>")
            && svg.contains(">client</text>")
            && svg.contains(">server</text>")
    );
    // A connection: once the model runs it, every segment is in the pcap
    // and the ladder shows the close.
    if let Some((bytes, svg)) = run_with_outputs(
        "tiny",
        "title tiny\nhosts client server\nserver listen 9999\nclient connect server:9999\nclient close\n",
    ) {
        let (_, cap) = pcap_parser::parse_pcap(&bytes).expect("a valid pcap");
        assert!(cap.blocks.len() >= 3, "handshake and close in the pcap");
        assert!(svg.contains("close() = 0"));
    }
}

/// The binary's output as (exit code, stdout, stderr).
fn output(cmd: &mut Command) -> (Option<i32>, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn run_finrst(args: &[&str]) -> (Option<i32>, String, String) {
    output(finrst().args(args))
}

/// Exit 2 and exactly one line on standard error, `finrst: ...`.
#[track_caller]
fn assert_one_line_error((code, stdout, stderr): &(Option<i32>, String, String), says: &str) {
    assert_eq!(*code, Some(2), "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "stderr: {stderr}");
    assert!(
        stderr.starts_with("finrst: ") && stderr.contains(says),
        "stderr: {stderr}"
    );
}

#[test]
fn run_of_several_files_in_json_is_json_lines() {
    let files = [
        "sim/close-fin-handshake.sim",
        "sim/close-unread-rst.sim",
        "sim/bulk-repeat-close.sim",
    ];
    let mut args = vec!["run", "--format", "json"];
    args.extend(files);
    let (code, stdout, _) = run_finrst(&args);
    assert_eq!(code, Some(0));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), files.len(), "{stdout}");
    for (line, file) in lines.iter().zip(files) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let name = file.trim_start_matches("sim/").trim_end_matches(".sim");
        assert_eq!(v["scenario"], name);
        assert!(v["segments"].as_array().is_some_and(|s| !s.is_empty()));
        // The same object as the file's own run prints, only compact.
        let (_, alone, _) = run_finrst(&["run", "--format", "json", file]);
        assert_eq!(
            v,
            serde_json::from_str::<serde_json::Value>(&alone).unwrap()
        );
    }
    // With --ladder (the trace is rendered whole): the same lines.
    let svg = tmp("jsonl.svg");
    let mut with_ladder = args.clone();
    with_ladder.extend(["--ladder", svg.to_str().unwrap()]);
    let (code, again, _) = run_finrst(&with_ladder);
    assert_eq!(code, Some(0));
    assert_eq!(again, stdout);
}

#[test]
fn run_of_one_file_in_json_is_one_pretty_object() {
    let (code, stdout, _) = run_finrst(&["run", "--format", "json", "sim/close-fin-handshake.sim"]);
    assert_eq!(code, Some(0));
    assert!(stdout.starts_with("{\n  \"scenario\""), "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["scenario"], "close-fin-handshake");
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    assert_one_line_error(
        &run_finrst(&["run", "/nonexistent/x.sim"]),
        "/nonexistent/x.sim",
    );
    let bad = tmp("conect.sim");
    std::fs::write(&bad, "title t\nhosts a b\na conect b:1\n").unwrap();
    assert_one_line_error(
        &run_finrst(&["run", bad.to_str().unwrap()]),
        "conect.sim:3:3: expected a call",
    );
    assert_one_line_error(
        &run_finrst(&[
            "compare",
            "sim/close-fin-handshake.sim",
            "--engines",
            "model",
        ]),
        "--engines takes exactly two engines",
    );
    assert_one_line_error(&run_finrst(&["drill", bad.to_str().unwrap()]), "conect.sim");
}

#[test]
fn an_expectation_that_fails_is_exit_1() {
    let f = tmp("expect-fails.sim");
    std::fs::write(
        &f,
        "title t\nhosts client server\nserver listen 9999\nclient connect server:9999 = 0\nclient close\nexpect client > server R.\n",
    )
    .unwrap();
    let (code, stdout, stderr) = run_finrst(&["run", f.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stderr.starts_with("finrst: expectation failed: "),
        "{stderr}"
    );
}

#[test]
fn a_directory_without_scenarios_is_exit_2_for_list_and_conform() {
    let empty = tmp("no-sims");
    std::fs::create_dir_all(&empty).unwrap();
    let dir = empty.to_str().unwrap();
    for cmd in ["list", "conform"] {
        assert_one_line_error(&run_finrst(&[cmd, dir]), "no .sim files in");
    }
}

#[test]
fn help_shows_only_what_works() {
    // drill runs on model and linux only, and says so.
    let (_, drill, _) = run_finrst(&["drill", "--help"]);
    assert!(
        drill.contains("- model:") && drill.contains("- linux:"),
        "{drill}"
    );
    assert!(!drill.contains("smoltcp"), "{drill}");
    let (code, _, stderr) = run_finrst(&["drill", "tests/pkt", "--engine", "smoltcp"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("invalid value 'smoltcp'"), "{stderr}");
    // A comma list's default is shown as it is typed.
    for cmd in ["compare", "conform", "fuzz"] {
        let (_, help, _) = run_finrst(&[cmd, "--help"]);
        assert!(help.contains("[default: model,linux]"), "{cmd}: {help}");
    }
    // list's default, once.
    let (_, list, _) = run_finrst(&["list", "--help"]);
    assert_eq!(list.matches("default").count(), 1, "{list}");
    assert!(list.contains("[default: sim]"), "{list}");
    // book-gen is a maintainer's command: not in the user's help, still there.
    let (_, help, _) = run_finrst(&["--help"]);
    assert!(!help.contains("book-gen"), "{help}");
    let (code, book_gen, _) = run_finrst(&["book-gen", "--help"]);
    assert_eq!(code, Some(0));
    assert!(book_gen.contains("--check"));
    // JSON Lines is documented where it applies.
    let (_, run, _) = run_finrst(&["run", "--help"]);
    assert!(run.contains("JSON Lines"), "{run}");
}

/// The command as a user without privileges runs it: as root, through
/// setpriv as nobody with no capabilities; otherwise as is. `None` when
/// root cannot drop them (no setpriv).
fn unprivileged(args: &[&str]) -> Option<Command> {
    // SAFETY: geteuid is a plain query.
    if unsafe { libc::geteuid() } != 0 {
        let mut c = finrst();
        c.args(args);
        return Some(c);
    }
    let setpriv = Command::new("setpriv").arg("--version").output();
    if !setpriv.is_ok_and(|o| o.status.success()) {
        eprintln!("no setpriv: cannot run as an unprivileged user; skipped");
        return None;
    }
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        env!("CARGO_BIN_EXE_finrst"),
    ])
    .args(args);
    Some(c)
}

/// An engine that cannot run stops conform, compare, fuzz and drill up
/// front, with the engine's own line (exit 2), instead of one ERROR row
/// per scenario and exit 1.
#[test]
fn engines_that_cannot_run_stop_every_command_up_front() {
    let out = std::env::temp_dir().join("finrst-cli-fuzz-nobody");
    let cases: [(&[&str], &str); 6] = [
        (&["conform", "sim"], "CAP_NET_ADMIN"),
        (&["compare", "sim/close-fin-handshake.sim"], "CAP_NET_ADMIN"),
        (
            &["fuzz", "--count", "2", "--out", out.to_str().unwrap()],
            "CAP_NET_ADMIN",
        ),
        (
            &["drill", "tests/pkt", "--engine", "linux"],
            "CAP_NET_ADMIN",
        ),
        (
            &["run", "sim/close-fin-handshake.sim", "--engine", "linux"],
            "CAP_NET_ADMIN",
        ),
        (
            &["conform", "sim", "--engines", "model,smoltcp-tap"],
            "smoltcp-tap engine: missing CAP_SYS_ADMIN",
        ),
    ];
    for (args, says) in cases {
        let Some(mut cmd) = unprivileged(args) else {
            return;
        };
        let got = output(&mut cmd);
        assert_one_line_error(&got, says);
        assert!(got.2.contains("--engine model") || got.2.contains("--engine smoltcp"));
        assert!(got.1.is_empty(), "{args:?} printed: {}", got.1);
    }
    assert!(!out.exists(), "fuzz created its output before failing");
}

/// `FINRST_LINUX_MAX_WAIT` cuts the kernel's run in TIME_WAIT while the
/// model runs on to the end of it: compare and conform compare the two up
/// to the cut, and say so (root only; FINRST_SKIP_LINUX=1 skips it
/// without root).
#[test]
fn a_run_cut_short_is_compared_up_to_the_cut() {
    // SAFETY: geteuid is a plain query.
    if unsafe { libc::geteuid() } != 0 {
        if std::env::var("FINRST_SKIP_LINUX").as_deref() == Ok("1") {
            eprintln!("FINRST_SKIP_LINUX=1: skipping a linux-engine test (not root)");
            return;
        }
        panic!("this test needs root: run it as root, or set FINRST_SKIP_LINUX=1 to skip it");
    }
    let (code, stdout, stderr) = output(
        finrst()
            .args(["compare", "sim/close-fin-handshake.sim"])
            .env("FINRST_LINUX_MAX_WAIT", "5s"),
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("note: compared up to 5.")
            && stdout.contains("where the linux run was cut short (FINRST_LINUX_MAX_WAIT); the model run was repeated")
            && stdout.ends_with("identical\n"),
        "{stdout}"
    );
    let dir = tmp("cut");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        "sim/close-fin-handshake.sim",
        dir.join("close-fin-handshake.sim"),
    )
    .unwrap();
    let (code, stdout, stderr) = output(
        finrst()
            .args(["conform", dir.to_str().unwrap(), "--format", "json"])
            .env("FINRST_LINUX_MAX_WAIT", "5s"),
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let row = &v["scenarios"][0];
    assert_eq!(row["identical"], true, "{stdout}");
    assert_eq!(row["compared_until"]["engine"], "linux", "{stdout}");
    assert!(row["compared_until"]["at_us"].as_u64().unwrap() < 10_000_000);
}

#[test]
fn explain_filters_terse_lines_and_json_lines() {
    let f = format!(
        "{}/tests/fixtures/explain/seed004-both.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let run = |args: &[&str]| {
        let out = finrst().arg("explain").arg(&f).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    // Two connections: a summary, then both.
    let all = run(&[]);
    assert!(
        all.contains("summary:") && all.contains("1  reset (RST)"),
        "{all}"
    );
    assert!(all.contains("[tcp.stream eq 0]") && all.contains("[tcp.stream eq 1]"));
    // Only the reset one, one line.
    let rst = run(&["--rst-only", "--terse"]);
    let lines: Vec<&str> = rst.lines().filter(|l| l.starts_with("0 ")).collect();
    assert_eq!(lines.len(), 1, "{rst}");
    assert!(lines[0].contains("unread-data"), "{rst}");
    assert!(!rst.contains("normal-close"), "{rst}");
    assert!(rst.contains("1 of 2 connections match the filter"), "{rst}");
    // Wireshark's stream number picks the second.
    let one = run(&["--stream", "1"]);
    assert!(
        one.contains("connection 2:") && !one.contains("connection 1:"),
        "{one}"
    );
    // JSON Lines: one object per connection, then the summary.
    let jl = run(&["--format", "jsonl"]);
    let objs: Vec<serde_json::Value> = jl
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(objs.len(), 3, "{jl}");
    assert_eq!(objs[0]["cause_id"], "unread-data");
    assert_eq!(objs[0]["rsts"][0]["flags"], "R.");
    assert_eq!(objs[1]["cause_id"], "normal-close");
    assert_eq!(objs[2]["summary"]["connections"], 2);
    // One JSON object, the summary first.
    let j: serde_json::Value = serde_json::from_str(&run(&["--format", "json"])).unwrap();
    assert_eq!(j["summary"]["endings"]["rst"], 1);
    assert_eq!(j["connections"].as_array().unwrap().len(), 2);
    assert_eq!(j["connections"][1]["stream"], 1);
}
