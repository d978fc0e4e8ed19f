//! finrst as a library, used as a test suite would use it: only the
//! crate's public items, a scenario described in Rust, run on an engine,
//! the trace snapshotted.

use finrst::{Call, Counter, EngineKind, Errno, Policy, RunOptions, Scenario, TcpState};
use std::time::Duration;

/// The seed story in Rust: the server reads one of two bytes and closes.
fn unread_close() -> Scenario {
    Scenario::new("api-unread-close")
        .title("close() with one byte unread sends RST")
        .hosts(["client", "server"])
        .call("server", Call::listen(9999))
        .call("client", Call::connect("server", 9999))
        .returns(0)
        .call("server", Call::Accept)
        .returns(4)
        .call("client", Call::send("ab"))
        .returns(2)
        .call("server", Call::recv(1))
        .returns(1)
        .call("server", Call::Close)
        .expect_segment("server", "client", "R.")
        .expect_counter("server", Counter::TCPAbortOnClose, 1)
        .call("client", Call::recv(10))
        .fails(Errno::ECONNRESET)
}

#[test]
fn a_scenario_built_in_rust_runs_and_snapshots() {
    let script = unread_close().build().expect("a valid scenario");
    let t = finrst::run(&script, EngineKind::Model, &RunOptions::default()).unwrap();
    assert!(t.failures.is_empty(), "{}", t.to_text());
    let rst = t
        .relative_segments()
        .into_iter()
        .find(|s| s.flags == "R.")
        .expect("an RST");
    assert_eq!((rst.src.as_str(), rst.seq, rst.ack), ("server", 1, Some(3)));
    insta::with_settings!({
        snapshot_path => "../snapshots/api",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!("unread-close-model", t.to_text());
    });
}

#[cfg(feature = "smoltcp")]
#[test]
fn the_same_scenario_on_smoltcp_closes_with_fin() {
    // smoltcp has no RFC 2525 rule: the unread byte does not turn the FIN
    // into an RST, so the scenario's RST expectations fail there.
    let script = unread_close().build().unwrap();
    let t = finrst::run(&script, EngineKind::Smoltcp, &RunOptions::default()).unwrap();
    assert!(
        t.relative_segments()
            .iter()
            .any(|s| s.src == "server" && s.flags == "F.")
    );
    assert!(!t.failures.is_empty());
}

#[test]
fn the_model_without_the_rule_is_a_policy() {
    let script = unread_close()
        .when_policy(Policy::AlwaysFin, |w| {
            w.expect_state("server", Some("conn"), TcpState::FinWait2)
        })
        .build()
        .unwrap();
    let opts = RunOptions {
        policy: Policy::AlwaysFin,
        ..RunOptions::default()
    };
    let t = finrst::run(&script, EngineKind::Model, &opts).unwrap();
    // Under always-fin the server sends FIN; the RST expectations (written
    // outside any `when` block) fail, the always-fin block holds.
    assert!(
        t.relative_segments()
            .iter()
            .any(|s| s.src == "server" && s.flags == "F.")
    );
    let failed: Vec<&str> = t.failures.iter().map(|f| f.text.as_str()).collect();
    assert_eq!(
        failed,
        [
            "expect server > client R.",
            "expect server TCPAbortOnClose = 1",
            "client recv 10 = -1 ECONNRESET"
        ],
        "{}",
        t.to_text()
    );
}

#[test]
fn a_server_written_as_a_c_program() {
    // socket(), setsockopt(), listen(), accept() on the descriptor it
    // listened on, recv() and close() on the accepted one: no names.
    let script = Scenario::new("api-c-server")
        .hosts(["client", "server"])
        .call("server", Call::Socket)
        .returns(3)
        .call(
            "server",
            Call::SetSockOpt(finrst::script::SockOpt::RcvBuf(4096)),
        )
        .returns(0)
        .call("server", Call::listen(9999))
        .returns(0)
        .call("client", Call::connect("server", 9999))
        .returns(0)
        .call("server", Call::Accept)
        .returns(4)
        .call("client", Call::send("hello"))
        .returns(5)
        .call("server", Call::recv(5))
        .returns(5)
        .call("server", Call::Close)
        .returns(0)
        .call("client", Call::Close)
        .returns(0)
        .wait(Duration::from_secs(1))
        .build()
        .unwrap();
    let engines = [
        EngineKind::Model,
        #[cfg(feature = "smoltcp")]
        EngineKind::Smoltcp,
    ];
    for engine in engines {
        let t = finrst::run(&script, engine, &RunOptions::default()).unwrap();
        assert!(t.failures.is_empty(), "{engine}: {}", t.to_text());
    }
}

#[test]
fn the_trace_serialises_as_the_cli_prints_it() {
    let script = unread_close().build().unwrap();
    let t = finrst::run(&script, EngineKind::Model, &RunOptions::default()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
    assert_eq!(v["engine"], "model");
    assert_eq!(v["counters"]["server"]["TCPAbortOnClose"], 1);
}
