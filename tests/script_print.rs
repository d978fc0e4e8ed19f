//! The `.sim` printer and the Scenario builder: a script printed and parsed
//! again is the same script, for every scenario in sim/ and for random
//! scenarios the fuzz grammar writes; a scenario built in Rust parses as its
//! printed text does.

use finrst::script::{self, Script, Step, StepKind};
use finrst::{Call, Counter, EngineKind, Errno, Policy, RunOptions, Scenario, TcpState};
use proptest::prelude::*;
use std::time::Duration;

/// The steps without where they were written (line, column, text).
fn shape(steps: &[Step]) -> Vec<Step> {
    steps
        .iter()
        .map(|s| Step {
            line: 0,
            col: 0,
            text: String::new(),
            kind: match &s.kind {
                StepKind::Together(v) => StepKind::Together(shape(v)),
                StepKind::Repeat { count, steps } => StepKind::Repeat {
                    count: *count,
                    steps: shape(steps),
                },
                StepKind::When { policy, steps } => StepKind::When {
                    policy: *policy,
                    steps: shape(steps),
                },
                k => k.clone(),
            },
        })
        .collect()
}

fn round_trip(s: &Script) {
    let text = s.to_string();
    let again = script::parse(&s.path, &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(shape(&again.steps), shape(&s.steps), "{text}");
    assert_eq!(
        (
            &again.title,
            &again.description,
            &again.hosts,
            again.horizon_us
        ),
        (&s.title, &s.description, &s.hosts, s.horizon_us)
    );
    // Printing is a fixed point.
    assert_eq!(again.to_string(), text);
}

#[test]
fn every_sim_scenario_prints_back_to_itself() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/sim");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "sim") {
            round_trip(&script::parse_file(p.to_str().unwrap()).unwrap());
            n += 1;
        }
    }
    assert!(n >= 60, "only {n} scenarios in sim/");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn random_scenarios_print_back_to_themselves(seed in 0u64..1000, i in 0u64..1000) {
        let g = finrst::fuzz::Gen::scenario(seed, i);
        round_trip(&script::parse("gen.sim", &g.to_sim()).unwrap());
    }

    #[test]
    fn strings_survive_printing(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let s = Scenario::new("bytes")
            .hosts(["a", "b"])
            .call("b", Call::listen(9))
            .call("a", Call::connect("b", 9))
            .call("a", Call::send(bytes.clone()))
            .build()
            .unwrap();
        let StepKind::Call(c) = &s.steps[2].kind else { panic!() };
        let Call::Send { data: script::Data::Bytes(b), .. } = &c.call else { panic!() };
        prop_assert_eq!(b, &bytes);
    }
}

#[test]
fn a_scenario_is_the_script_its_text_is() {
    let sc = Scenario::new("built")
        .title("built in Rust")
        .hosts(["client", "server"])
        .horizon(Duration::from_secs(90))
        .call("server", Call::listen(9999))
        .call("client", Call::connect("server", 9999))
        .returns(0)
        .call("server", Call::Accept)
        .named("c")
        .together(|t| {
            t.call("client", Call::Close)
                .call_on("server", "c", Call::Close)
        })
        .when_policy(Policy::Linux, |w| {
            w.expect_state("client", None, TcpState::TimeWait)
        })
        .repeat(2, |r| r.wait(Duration::from_millis(1500)))
        .call_on("server", "listener", Call::listen(9999))
        .fails(Errno::EINVAL)
        .expect_counter("client", Counter::TCPAbortOnClose, 0);
    let built = sc.build().unwrap();
    let parsed = script::parse("built.sim", &sc.to_sim()).unwrap();
    assert_eq!(built, parsed);
    assert!(
        sc.to_sim()
            .contains("together {\n  client close\n  server.c close\n}\n")
    );
    let t = finrst::run(&built, EngineKind::Model, &RunOptions::default()).unwrap();
    // The printed text is what the messages point at.
    assert!(t.failures.is_empty(), "{}", t.to_text());
}

#[test]
fn builder_mistakes_are_script_errors() {
    let e = Scenario::new("bad")
        .hosts(["a"])
        .returns(0)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("follows no call"), "{e}");
    // An undeclared host is caught as the parser catches it, at its line.
    let e = Scenario::new("bad")
        .hosts(["a"])
        .call("b", Call::Close)
        .build()
        .unwrap_err();
    assert_eq!((e.line, e.file.as_str()), (2, "bad.sim"));
    let e = Scenario::new("bad")
        .hosts(["a", "b"])
        .expect_segment("a", "b", "X")
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("tcpdump"), "{e}");
}
