//! Property tests: no input makes the parser panic, and no sequence of
//! calls makes the model panic.

use finrst::engine::{CallCtx, HostSpec, Policy, RunOptions};
use finrst::script::{self, Call, Data, Fault, How, MsgFlags, SockOpt};
use proptest::prelude::*;

const WORDS: &[&str] = &[
    "hosts",
    "client",
    "server",
    "title",
    "horizon",
    "wait",
    "together",
    "repeat",
    "3",
    "{",
    "}",
    "expect",
    "no",
    ">",
    "=",
    "-1",
    "0",
    "1",
    "9999",
    "server:9999",
    "listen",
    "connect",
    "accept",
    "send",
    "recv",
    "close",
    "exit",
    "poll",
    "shutdown",
    "SHUT_RD",
    "setsockopt",
    "SO_LINGER",
    "{1,",
    "5}",
    "MSG_OOB",
    "MSG_PEEK",
    "EPOLLIN|EPOLLOUT",
    "ECONNRESET",
    "R.",
    "seq",
    "ack",
    "state",
    "TIME_WAIT",
    "TCPAbortOnClose",
    "61s",
    "200ms",
    "\"a\\x4",
    "\"ok\"",
    "#",
    "drop",
    "hold",
    "release",
    "sysctl",
    "net.ipv4.tcp_fin_timeout",
    "client.conn",
    "as",
    "from",
    "\n",
    "\t",
    "é",
    "\\",
    "\"",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parser_never_panics_on_bytes(s in "\\PC{0,200}") {
        let _ = script::parse("fuzz.sim", &s);
    }

    #[test]
    fn parser_never_panics_on_script_like_text(words in prop::collection::vec(prop::sample::select(WORDS), 0..60)) {
        let text = format!("hosts client server\n{}", words.join(" "));
        match script::parse("fuzz.sim", &text) {
            Ok(_) => {}
            Err(e) => {
                // Every error points into the text.
                prop_assert!(e.line >= 1 && e.line as usize <= text.lines().count() + 1);
                prop_assert!(!e.expected.is_empty());
            }
        }
    }
}

fn arb_call() -> impl Strategy<Value = (usize, u8, Call)> {
    let flags = (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(a, b, c)| MsgFlags {
        oob: a,
        peek: b,
        dontwait: true,
        nosignal: c,
    });
    let call = prop_oneof![
        Just(Call::Socket),
        Just(Call::Listen {
            port: 9999,
            backlog: 2
        }),
        Just(Call::Connect {
            host: "server".into(),
            port: 9999,
            from_port: None,
            nonblock: false
        }),
        Just(Call::Accept),
        (0u32..5000, flags.clone()).prop_map(|(n, f)| Call::Send {
            data: Data::Count(n),
            flags: f
        }),
        (0u32..5000, flags).prop_map(|(n, f)| Call::Recv { len: n, flags: f }),
        prop_oneof![Just(How::Rd), Just(How::Wr), Just(How::RdWr)].prop_map(Call::Shutdown),
        Just(Call::Close),
        Just(Call::Exit),
        Just(Call::Poll {
            interest: script::epoll::ALL
        }),
        Just(Call::Disconnect),
        (any::<bool>(), -1i32..3)
            .prop_map(|(on, secs)| Call::SetSockOpt(SockOpt::Linger { on, secs })),
        (0i32..10000).prop_map(|n| Call::SetSockOpt(SockOpt::RcvBuf(n))),
        any::<bool>().prop_map(|b| Call::SetSockOpt(SockOpt::OobInline(b))),
        any::<bool>().prop_map(|b| Call::SetSockOpt(SockOpt::Repair(b))),
        (-1i32..200).prop_map(|n| Call::SetSockOpt(SockOpt::Linger2(n))),
        (-1i32..100_000).prop_map(|n| Call::SetSockOpt(SockOpt::UserTimeout(n))),
        any::<bool>().prop_map(|b| Call::SetSockOpt(SockOpt::KeepAlive(b))),
        (-1i32..40_000).prop_map(|n| Call::SetSockOpt(SockOpt::KeepIdle(n))),
        (-1i32..40_000).prop_map(|n| Call::SetSockOpt(SockOpt::KeepIntvl(n))),
        (-1i32..200).prop_map(|n| Call::SetSockOpt(SockOpt::KeepCnt(n))),
        (-1i32..200).prop_map(|n| Call::SetSockOpt(SockOpt::SynCnt(n))),
        any::<bool>().prop_map(|b| Call::SetSockOpt(SockOpt::Inq(b))),
        Just(Call::Ioctl(script::Ioctl::InQ)),
    ];
    (0usize..2, 0u8..3, call)
}

#[derive(Debug, Clone)]
enum Step {
    Call(usize, u8, Call),
    Wait(u64),
    Fault(usize, Fault),
    Release(usize),
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => arb_call().prop_map(|(h, s, c)| Step::Call(h, s, c)),
        2 => (0u64..120_000_000).prop_map(Step::Wait),
        1 => (0usize..2, 1u32..3).prop_map(|(h, n)| Step::Fault(h, Fault::Drop { count: n })),
        1 => (0usize..2).prop_map(|h| Step::Fault(h, Fault::Hold { count: None })),
        1 => (0usize..2).prop_map(Step::Release),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn model_never_panics(steps in prop::collection::vec(arb_step(), 1..40), always_fin in any::<bool>()) {
        let hosts = HostSpec::for_hosts(&["client".to_string(), "server".to_string()]);
        let opts = RunOptions {
            policy: if always_fin { Policy::AlwaysFin } else { Policy::Linux },
            ..RunOptions::default()
        };
        let mut m = finrst::make_engine(finrst::EngineKind::Model, &hosts, &opts).unwrap();
        let names = ["conn", "listener", "conn2"];
        let mut port = 40000;
        for st in steps {
            match st {
                Step::Call(h, s, c) => {
                    let name = names[s as usize];
                    let ctx = CallCtx {
                        local_port: Some(port),
                        new_name: Some("conn2".into()),
                        peer_addr: Some(hosts[1].addr),
                    };
                    port += 1;
                    if m.state(h, name).is_none() && !matches!(c, Call::Exit) {
                        m.call(h, name, &Call::Socket, &ctx);
                    }
                    let out = m.call(h, name, &c, &ctx);
                    prop_assert!(out.ret >= -1);
                    prop_assert_eq!(out.ret == -1, out.errno.is_some());
                    m.settle();
                }
                Step::Wait(us) => m.wait(us),
                Step::Fault(h, f) => { m.fault(h, &f).unwrap(); }
                Step::Release(h) => { m.release(h).unwrap(); }
            }
        }
        let fin = m.finish(m.now_us() + 700_000_000);
        prop_assert!(fin.end_us >= m.now_us().min(fin.end_us));
        // Every segment can be encoded and decoded again.
        for s in m.segments() {
            let b = s.encode_ipv4();
            prop_assert!(finrst::segment::Segment::checksum_ok(&b));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Every scenario `finrst fuzz` generates is a valid script: it parses,
    /// runs to the end on the model without a run-time error, and the same
    /// (seed, index) gives the same text.
    #[test]
    fn generated_scenarios_parse_and_run_on_the_model(seed in any::<u64>(), i in 0u64..1000) {
        let sc = finrst::fuzz::Gen::scenario(seed, i);
        let text = sc.to_sim();
        prop_assert_eq!(&text, &finrst::fuzz::Gen::scenario(seed, i).to_sim());
        let script = script::parse("gen.sim", &text)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let opts = RunOptions::default();
        let t = finrst::run(&script, finrst::EngineKind::Model, &opts)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert!(t.end_us > 0);
    }
}

#[test]
fn fuzz_scenarios_depend_only_on_seed_and_index() {
    let a: Vec<String> = (0..20)
        .map(|i| finrst::fuzz::Gen::scenario(1, i).to_sim())
        .collect();
    let b: Vec<String> = (0..20)
        .map(|i| finrst::fuzz::Gen::scenario(1, i).to_sim())
        .collect();
    assert_eq!(a, b);
    let c: Vec<String> = (0..20)
        .map(|i| finrst::fuzz::Gen::scenario(2, i).to_sim())
        .collect();
    assert_ne!(a, c);
    // Different indices give different scenarios.
    let distinct: std::collections::HashSet<_> = a
        .iter()
        .map(|s| s.lines().skip(1).collect::<Vec<_>>())
        .collect();
    assert!(distinct.len() >= 18);
}
