//! `finrst drill`: every script of tests/pkt passes on the model, and on the
//! linux engine (root; FINRST_SKIP_LINUX=1 skips that half, CI never sets
//! it). A script that must fail does, with its line.

use finrst::EngineKind;
use finrst::drill::{DrillError, parse, pkt_files, run_file, run_pkt};

#[test]
fn every_pkt_passes_on_the_model() {
    let files = pkt_files("tests/pkt").unwrap();
    assert!(!files.is_empty());
    for f in &files {
        if let Err(e) = run_file(f, EngineKind::Model, None) {
            panic!("{f}: {e}");
        }
    }
}

#[test]
fn every_pkt_passes_on_the_kernel() {
    if unsafe { libc::geteuid() } != 0 {
        if std::env::var("FINRST_SKIP_LINUX").as_deref() == Ok("1") {
            eprintln!("FINRST_SKIP_LINUX=1: skipping the linux drill test (not root)");
            return;
        }
        panic!(
            "the linux drill test needs root: run as root, or set FINRST_SKIP_LINUX=1 to skip it"
        );
    }
    // The kernel runs in real time on a shared two-core machine: a script
    // that fails is run again, up to twice, and passes only if a whole run
    // passes. A wrong expectation fails all three (the model half above
    // runs once: it is deterministic).
    let files = pkt_files("tests/pkt").unwrap();
    assert!(
        files.len() >= 40,
        "the teardown suite has {} scripts",
        files.len()
    );
    let mut failed = Vec::new();
    for f in &files {
        let mut last = None;
        for attempt in 1..=3 {
            match run_file(f, EngineKind::Linux, None) {
                Ok(_) => {
                    if attempt > 1 {
                        eprintln!("{f}: passed on the kernel at attempt {attempt}");
                    }
                    last = None;
                    break;
                }
                Err(e) => {
                    eprintln!("{f}: attempt {attempt} failed: {e}");
                    last = Some(e);
                }
            }
        }
        if let Some(e) = last {
            failed.push(format!("{f}: {e}"));
        }
    }
    assert!(
        failed.is_empty(),
        "failed on the kernel three times:\n{}",
        failed.join("\n")
    );
}

/// A wrong expectation fails at its own line, on the model.
#[test]
fn a_wrong_expectation_fails_at_its_line() {
    let text = std::fs::read_to_string("tests/pkt/close-unread-rst.pkt").unwrap();
    let bad = text.replace("> R. 1:1(0) ack 11", "> F. 1:1(0) ack 11");
    let pkt = parse::parse("bad.pkt", &bad).unwrap();
    match run_pkt(&pkt, EngineKind::Model, None) {
        Err(DrillError::Failed(f, _)) => {
            assert_eq!(f.line, bad.lines().count() as u32);
            assert!(f.msg.contains("flags R. instead of F."), "{}", f.msg);
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}
