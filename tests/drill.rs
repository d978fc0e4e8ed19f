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

/// `finrst drill --table`'s survey, on tests/pkt and the model: every
/// script accepted and passing, and the table's total line says so.
#[test]
fn the_survey_counts_every_script() {
    use finrst::drill::{Env, survey};
    let files = survey::pkt_tree("tests/pkt").unwrap();
    let rows = survey::survey(&files, false, 2, Env::Packetdrill);
    for r in &rows {
        assert!(r.model.passed(), "{}: {:?}", r.file, r.model);
    }
    let t = survey::table("tests/pkt", &rows, false);
    let total: Vec<&str> = t
        .lines()
        .find(|l| l.starts_with("total"))
        .unwrap()
        .split_whitespace()
        .collect();
    let n = files.len().to_string();
    assert_eq!(total[1..4], [n.as_str(), n.as_str(), n.as_str()], "{t}");
}

/// A script that uses what the drill does not run is counted as rejected,
/// with the construct named; one whose expectation is wrong as failed.
#[test]
fn the_survey_tells_rejected_from_failed() {
    use finrst::drill::{Env, survey};
    let dir = std::env::temp_dir().join(format!("finrst-survey-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let good = std::fs::read_to_string("tests/pkt/close-unread-rst.pkt").unwrap();
    std::fs::write(
        dir.join("sub/wrong.pkt"),
        good.replace("> R. 1:1(0) ack 11", "> F. 1:1(0) ack 11"),
    )
    .unwrap();
    std::fs::write(
        dir.join("tfo.pkt"),
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
         +0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n\
         +0 < S 0:10(10) win 32792 <mss 1460,FOEXP TFO_COOKIE>\n",
    )
    .unwrap();
    let root = dir.display().to_string();
    let files = survey::pkt_tree(&root).unwrap();
    assert_eq!(files.len(), 2);
    let rows = survey::survey(&files, false, 1, Env::Packetdrill);
    assert!(
        matches!(rows[0].model, survey::Verdict::Fail(_)),
        "{rows:?}"
    );
    match &rows[1].model {
        survey::Verdict::Rejected(why) => assert!(why.contains("TCP Fast Open"), "{why}"),
        other => panic!("{other:?}"),
    }
    let t = survey::table(&root, &rows, false);
    assert!(t.contains("TCP Fast Open option `FOEXP`"), "{t}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--env finrst` keeps finrst's own link: the SYN-ACK's MSS is 65495
/// (MTU 65535), where packetdrill's link gives 1460 (tests/pkt/pd-*.pkt).
#[test]
fn the_finrst_link_is_an_option() {
    use finrst::drill::{Env, run_pkt_in};
    let text = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
                +0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n\
                +0 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>\n\
                +0 > S. 0:0(0) ack 1 <mss MSS,nop,wscale 10>\n";
    let kinds: &[EngineKind] = if unsafe { libc::geteuid() } == 0 {
        &[EngineKind::Model, EngineKind::Linux]
    } else {
        &[EngineKind::Model]
    };
    for &kind in kinds {
        for (env, mss) in [(Env::Finrst, "65495"), (Env::Packetdrill, "1460")] {
            let p = parse::parse("env.pkt", &text.replace("MSS", mss)).unwrap();
            if let Err(e) = run_pkt_in(&p, kind, None, env) {
                panic!("{kind:?} {env:?}: {e}");
            }
        }
    }
}
