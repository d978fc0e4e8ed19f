//! `finrst explore`: the schedule space of the race stories, their
//! classes and witnesses, properties and their exit codes.

use finrst::explore::{Bounds, Explorer, Report, load, parse_properties};
use finrst::{EngineKind, RunOptions, script};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::process::Command;

fn explore(path: &str, bounds: Bounds) -> Report {
    let (s, props) = load(path).expect("the story loads");
    Explorer::new(&s, props, bounds).explore()
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_finrst"))
}

/// Every witness, parsed as a user would and run on the model, meets its
/// own expectations (the results its calls saw, the end states).
fn witnesses_reproduce(r: &Report) {
    for (n, c) in r.classes.iter().enumerate() {
        assert!(c.reproduced, "class {} of {}", n + 1, r.scenario);
        let s = script::parse("witness.sim", &c.witness).expect("a witness parses");
        let t = finrst::run(&s, EngineKind::Model, &RunOptions::default()).expect("runs");
        assert!(
            t.failures.is_empty(),
            "class {} witness fails: {:?}\n{}",
            n + 1,
            t.failures,
            c.witness
        );
    }
}

fn results(r: &Report, host: &str, verb: &str) -> BTreeSet<String> {
    r.classes
        .iter()
        .flat_map(|c| c.outcome.calls.iter())
        .filter(|c| c.host == host && c.verb == verb)
        .map(|c| c.result.clone())
        .collect()
}

#[test]
fn keepalive_race_ends_with_eof_or_econnreset() {
    let r = explore("sim/race-keepalive-idle-close.sim", Bounds::default());
    let recv = results(&r, "client", "recv");
    assert!(recv.contains("-1 ECONNRESET"), "{recv:?}");
    assert!(recv.contains("0"), "{recv:?}");
    // The request that arrives before close() is unread data: RST from the
    // server and nothing else.
    let rst_only = r
        .classes
        .iter()
        .find(|c| c.outcome.calls.iter().any(|x| x.result == "-1 ECONNRESET"))
        .expect("an ECONNRESET class");
    assert!(
        rst_only.outcome.endings[0].ends_with("server R"),
        "{:?}",
        rst_only.outcome.endings
    );
    assert!(
        rst_only
            .conditions
            .iter()
            .all(|c| c.starts_with("client send, then server close")),
        "{:?}",
        rst_only.conditions
    );
    witnesses_reproduce(&r);
    assert!(!r.holds(), "the never-ECONNRESET property is broken");
}

#[test]
fn simultaneous_close_time_wait_on_either_or_both() {
    let r = explore("sim/race-simultaneous-close.sim", Bounds::default());
    let tw: BTreeSet<Vec<String>> = r
        .classes
        .iter()
        .map(|c| {
            c.outcome
                .states
                .iter()
                .filter(|s| s.2 == finrst::TcpState::TimeWait)
                .map(|s| s.0.clone())
                .collect()
        })
        .collect();
    let want: BTreeSet<Vec<String>> = [
        vec!["client".to_string()],
        vec!["server".to_string()],
        vec!["client".to_string(), "server".to_string()],
    ]
    .into_iter()
    .collect();
    assert_eq!(tw, want);
    witnesses_reproduce(&r);
    assert!(r.holds());
}

#[test]
fn reduction_finds_the_classes_of_the_grid() {
    for story in [
        "sim/race-keepalive-idle-close.sim",
        "sim/race-simultaneous-close.sim",
        "sim/race-lingering-close-last-write.sim",
    ] {
        let reduced = explore(story, Bounds::default());
        let full = explore(
            story,
            Bounds {
                reduction: false,
                ..Bounds::default()
            },
        );
        let a: BTreeSet<_> = reduced.classes.iter().map(|c| c.outcome.clone()).collect();
        let b: BTreeSet<_> = full.classes.iter().map(|c| c.outcome.clone()).collect();
        assert_eq!(a, b, "{story}");
        assert!(
            reduced.run * 4 < full.run,
            "{story}: {} vs {}",
            reduced.run,
            full.run
        );
        assert_eq!(full.run, full.unreduced, "{story}");
    }
}

#[test]
fn a_lost_segment_lets_the_linger_time_expire() {
    let plain = explore("sim/race-linger-timeout-last-ack.sim", Bounds::default());
    let faults = explore(
        "sim/race-linger-timeout-last-ack.sim",
        Bounds {
            faults: 1,
            ..Bounds::default()
        },
    );
    assert!(faults.classes.len() > plain.classes.len());
    witnesses_reproduce(&faults);
}

#[test]
fn a_violated_property_exits_1_with_its_witness() {
    let out = bin()
        .args([
            "explore",
            "sim/race-keepalive-idle-close.sim",
            "--no-witnesses",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let at = text
        .find("VIOLATED: expect never client recv = -1 ECONNRESET")
        .expect(&text);
    let witness = &text[at..];
    assert!(witness.contains("together {"), "{witness}");
    assert!(
        witness.contains("client recv 1024 = -1 ECONNRESET"),
        "{witness}"
    );
}

#[test]
fn properties_that_hold_exit_0() {
    let out = bin()
        .args(["explore", "sim/race-simultaneous-close.sim"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("holds: expect never client > server R"),
        "{text}"
    );
    assert!(!text.contains("VIOLATED"), "{text}");
}

#[test]
fn a_bad_property_is_one_line_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.sim");
    std::fs::write(
        &p,
        "hosts a b\nb listen 1\na connect b:1\n  expect never a frobnicate\n",
    )
    .unwrap();
    let out = bin()
        .args(["explore", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.sim:4:3"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn run_skips_property_lines_and_times_waits_inside_together() {
    let s = script::parse(
        "t.sim",
        "hosts client server\nserver listen 80\nclient connect server:80\nserver accept\n\
         together {\n client send 10\n wait 21us\n server close\n}\n\
         expect never client recv = -1 ECONNRESET\n",
    )
    .unwrap();
    let t = finrst::run(&s, EngineKind::Model, &RunOptions::default()).unwrap();
    let send = t.calls.iter().find(|c| c.line == 6).unwrap();
    let close = t.calls.iter().find(|c| c.line == 8).unwrap();
    assert_eq!(close.time_us - send.time_us, 21);
    // The data arrived (20 µs) before close(): unread, RST.
    assert!(
        t.segments
            .iter()
            .any(|s| s.flags.rst() && &*s.src == "server")
    );
}

proptest! {
    #[test]
    fn property_parser_never_panics(text in "(expect (always|never) )?[a-z.>= 0-9A-Z_-]{0,40}") {
        let hosts = vec!["a".to_string(), "b".to_string()];
        let _ = parse_properties("p.sim", &text, &hosts);
    }

    #[test]
    fn property_lines_parse_to_what_they_say(
        always in any::<bool>(),
        host in prop::sample::select(vec!["a", "b"]),
        verb in prop::sample::select(vec!["recv", "send", "close"]),
    ) {
        let hosts = vec!["a".to_string(), "b".to_string()];
        let text = format!("expect {} {host} {verb} = -1 ECONNRESET", if always { "always" } else { "never" });
        let p = parse_properties("p.sim", &text, &hosts).unwrap();
        prop_assert_eq!(p.len(), 1);
        prop_assert_eq!(p[0].always, always);
        let is_call = matches!(&p[0].pred, finrst::explore::Pred::Call { host: h, verb: v, result: Some(r), .. } if h == host && v == verb && r == "-1 ECONNRESET");
        prop_assert!(is_call);
    }
}

proptest! {
    /// `together { }` with waits and faults between its calls: parsed,
    /// printed and parsed again, the same steps.
    #[test]
    fn together_with_waits_and_faults_round_trips(
        items in prop::collection::vec(0u8..5, 1..8),
        us in 1u64..1_000_000,
    ) {
        let mut text = String::from("hosts client server\nserver listen 80\nclient connect server:80\nserver accept\ntogether {\n");
        for (i, k) in items.iter().enumerate() {
            text.push_str(match k {
                0 => "  client send 10\n",
                1 => "  server poll\n",
                2 => "  client drop 1\n",
                3 => "  server delay 48ms\n",
                _ => "",
            });
            if *k == 4 {
                text.push_str(&format!("  wait {}us\n", us + i as u64));
            }
        }
        text.push_str("  client poll\n}\nexpect always client recv = 0\n");
        let a = script::parse("p.sim", &text).unwrap();
        let b = script::parse("p.sim", &a.to_string()).unwrap();
        prop_assert_eq!(a.to_string(), b.to_string());
        let inner = |s: &script::Script| match &s.steps[3].kind {
            script::StepKind::Together(v) => v.len(),
            _ => 0,
        };
        prop_assert_eq!(inner(&a), inner(&b));
        prop_assert!(inner(&a) >= 1);
        // And it runs on the model without a run-time error.
        prop_assert!(finrst::run(&a, EngineKind::Model, &RunOptions::default()).is_ok());
    }
}

#[test]
fn together_refuses_other_steps_with_a_position() {
    let e = script::parse(
        "t.sim",
        "hosts a b\nb listen 1\ntogether {\n  expect a state CLOSE\n}\n",
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("t.sim:4:3"), "{msg}");
    assert!(msg.contains("`wait` or fault"), "{msg}");
}

/// Every class of the plain exploration of two stories reaches the same
/// class on the kernel (`--verify linux`). Root only; without root,
/// FINRST_SKIP_LINUX=1 skips it. A witness that differs is run again once:
/// the kernel runs in real time on a shared machine.
#[cfg(feature = "linux")]
#[test]
fn witnesses_reach_their_class_on_the_kernel() {
    if unsafe { libc::geteuid() } != 0 {
        if std::env::var("FINRST_SKIP_LINUX").as_deref() == Ok("1") {
            eprintln!("FINRST_SKIP_LINUX=1: skipping the kernel verification (not root)");
            return;
        }
        panic!("the kernel verification needs root, or FINRST_SKIP_LINUX=1 to skip it");
    }
    for story in [
        "sim/race-keepalive-idle-close.sim",
        "sim/race-lingering-close-last-write.sim",
    ] {
        let r = explore(story, Bounds::default());
        let mut v = finrst::explore::verify(&r, EngineKind::Linux, story, 4);
        if v.iter()
            .any(|x| x.differences.is_some() || x.error.is_some())
        {
            v = finrst::explore::verify(&r, EngineKind::Linux, story, 4);
        }
        assert_eq!(v.len(), r.classes.len());
        for x in v {
            assert!(
                x.error.is_none(),
                "{story} class {}: {:?}",
                x.class,
                x.error
            );
            assert!(
                x.differences.is_none(),
                "{story} class {}: {:?}",
                x.class,
                x.differences
            );
        }
    }
}

#[test]
fn phases_shift_the_start_against_the_jiffy_clock() {
    let one = explore("sim/race-simultaneous-close.sim", Bounds::default());
    let four = explore(
        "sim/race-simultaneous-close.sim",
        Bounds {
            phases: 4,
            ..Bounds::default()
        },
    );
    assert_eq!(four.run, 4 * one.run);
    let a: BTreeSet<_> = one.classes.iter().map(|c| c.outcome.clone()).collect();
    let b: BTreeSet<_> = four.classes.iter().map(|c| c.outcome.clone()).collect();
    assert!(a.is_subset(&b));
    // A schedule started 1 ms late says so in its conditions and witness.
    assert!(
        four.classes
            .iter()
            .any(|c| c.conditions.iter().any(|k| k.starts_with("start +1ms")))
    );
    witnesses_reproduce(&four);
}
