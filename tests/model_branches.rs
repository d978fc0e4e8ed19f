//! One test per branch of the close path, on the model: each builds a
//! small script, runs it, and checks the segments, counters and states the
//! kernel function produces (the function is named in each test).

use finrst::engine::{Policy, RunOptions};
use finrst::script;
use finrst::trace::{Trace, relative};
use finrst::vocab::{Counter, TcpState};

const HEAD: &str = "hosts client server\nserver listen 9999\n";
const CONNECT: &str = "client connect server:9999 = 0\nserver accept = 4\n";

fn run_policy(body: &str, policy: Policy) -> Trace {
    let text = format!("{HEAD}{body}");
    let s = script::parse("branch.sim", &text).unwrap_or_else(|e| panic!("{e}"));
    let opts = RunOptions {
        policy,
        ..RunOptions::default()
    };
    let t = finrst::run(&s, finrst::EngineKind::Model, &opts).unwrap_or_else(|e| panic!("{e}"));
    assert!(t.failures.is_empty(), "{:?}\n{}", t.failures, t.to_text());
    t
}

fn run(body: &str) -> Trace {
    run_policy(body, Policy::Linux)
}

/// The segments as `src flags seq ack len`, from the first one sent after
/// the handshake.
fn segs(t: &Trace) -> Vec<String> {
    relative(&t.segments)
        .iter()
        .skip(3)
        .map(|s| {
            format!(
                "{} {} {} {} {}",
                s.src,
                s.flags,
                s.seq,
                s.ack.map_or("-".into(), |a| a.to_string()),
                s.len
            )
        })
        .collect()
}

fn counter(t: &Trace, host: &str, name: Counter) -> i64 {
    t.counters
        .get(host)
        .and_then(|m| m.get(&name))
        .copied()
        .unwrap_or(0)
}

#[test]
fn tcp_close_listener_resets_accept_queue_children() {
    // inet_csk_listen_stop: ESTABLISHED children in the accept queue get R.
    let t = run(
        "client connect server:9999 = 0\nserver.listener close = 0\nclient recv 10 = -1 ECONNRESET\n",
    );
    assert_eq!(segs(&t), vec!["server R. 1 1 0"]);
}

#[test]
fn tcp_close_after_reset_sends_nothing() {
    // __tcp_close: "If socket has been already reset - kill it."
    let t = run(&format!(
        "{CONNECT}server send \"ab\" = 2\nserver exit = 0\nclient close = 0\n"
    ));
    // The server's exit sends FIN; the client's close finds unread data but
    // the socket is not CLOSE yet, so it resets; check the reverse case:
    assert!(segs(&t).iter().any(|s| s.starts_with("client R.")));
    let t = run(&format!(
        "{CONNECT}client setsockopt SO_LINGER {{1, 0}} = 0\nclient close = 0\nserver send \"x\" = -1 ECONNRESET\nserver close = 0\n"
    ));
    // After the RST the server's close sends nothing.
    assert_eq!(segs(&t), vec!["client R. 1 1 0"]);
}

#[test]
fn tcp_close_in_repair_mode_is_silent() {
    let t = run(&format!(
        "{CONNECT}server send \"ab\" = 2\nclient setsockopt TCP_REPAIR 1 = 0\nclient close = 0\n"
    ));
    assert_eq!(segs(&t), vec!["server P. 1 1 2", "client . 1 3 0"]);
    assert!(!t.counters.contains_key("client"));
}

#[test]
fn tcp_close_with_unread_data_resets() {
    let t = run(&format!(
        "{CONNECT}server send \"abc\" = 3\nclient recv 1 = 1\nclient close = 0\n"
    ));
    assert_eq!(segs(&t).last().unwrap(), "client R. 1 4 0");
    assert_eq!(counter(&t, "client", Counter::TCPAbortOnClose), 1);
}

#[test]
fn tcp_close_with_unread_data_under_always_fin_sends_fin() {
    let t = run_policy(
        &format!("{CONNECT}server send \"abc\" = 3\nclient close = 0\n"),
        Policy::AlwaysFin,
    );
    assert!(segs(&t).iter().any(|s| s == "client F. 1 4 0"));
    assert_eq!(counter(&t, "client", Counter::TCPAbortOnClose), 0);
}

#[test]
fn tcp_close_with_zero_linger_disconnects() {
    let t = run(&format!(
        "client socket = 3\nclient setsockopt SO_LINGER {{1, 0}} = 0\n{CONNECT}client close = 0\n"
    ));
    assert_eq!(segs(&t), vec!["client R. 1 1 0"]);
    assert_eq!(counter(&t, "client", Counter::TCPAbortOnData), 1);
}

#[test]
fn tcp_close_state_close_wait_to_last_ack() {
    // tcp_close_state: CLOSE_WAIT -> LAST_ACK with a FIN; the last ACK ends it.
    let t = run(&format!(
        "{CONNECT}server close = 0\nclient recv 1 = 0\nclient close = 0\nexpect client state CLOSE\n"
    ));
    assert_eq!(
        segs(&t),
        vec![
            "server F. 1 1 0",
            "client . 1 2 0",
            "client F. 1 2 0",
            "server . 2 2 0"
        ]
    );
    assert!(
        t.states.iter().any(|s| s.host == "client"
            && s.from == TcpState::CloseWait
            && s.to == TcpState::LastAck)
    );
}

#[test]
fn tcp_close_in_syn_sent_is_silent_and_the_syn_ack_gets_a_reset() {
    // The server's SYN-ACK is held, the client closes in SYN_SENT (nothing
    // sent), then the SYN-ACK meets no socket: R with seq = its ack.
    let t = run("together {\n client connect server:9999 = -1 EINPROGRESS\n client close = 0\n}\n");
    let all: Vec<String> = relative(&t.segments)
        .iter()
        .map(|s| format!("{} {} {}", s.src, s.flags, s.seq))
        .collect();
    assert_eq!(all, vec!["client S 0", "server S. 0", "client R 1"]);
}

#[test]
fn linger_timeout_returns_without_reset() {
    let t = run(&format!(
        "client socket = 3\nclient setsockopt SO_LINGER {{1, 2}} = 0\n{CONNECT}server hold\nclient close = 0\nexpect client state FIN_WAIT1\n"
    ));
    let close = t.calls.iter().find(|c| c.call == "close()").unwrap();
    // sk_lingertime is a schedule_timeout() of 500 jiffies: the timer
    // wheel's level 1 rounds it up to 8 jiffies (32 ms) later.
    let note = close.note.as_deref().unwrap();
    let ms: u64 = note
        .split("ran out after ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{note}"));
    assert!((2000..=2032).contains(&ms), "{note}");
    assert!(!segs(&t).iter().any(|s| s.starts_with("client R")));
}

#[test]
fn orphan_fin_wait2_with_negative_linger2_resets_at_close() {
    // __tcp_close: FIN_WAIT2 at close time and linger2 < 0: RST, TCPAbortOnLinger.
    let t = run(&format!(
        "{CONNECT}client setsockopt TCP_LINGER2 -1 = 0\nclient shutdown SHUT_WR = 0\nexpect client state FIN_WAIT2\nclient close = 0\n"
    ));
    assert_eq!(segs(&t).last().unwrap(), "client R. 2 1 0");
    assert_eq!(counter(&t, "client", Counter::TCPAbortOnLinger), 1);
}

#[test]
fn orphan_fin_wait2_times_out_after_tcp_fin_timeout() {
    // tcp_time_wait(TCP_FIN_WAIT2, tcp_fin_time) then the time-wait socket dies.
    let t = run(&format!(
        "client sysctl net.ipv4.tcp_fin_timeout = 5\n{CONNECT}client close = 0\nexpect client state FIN_WAIT2\nwait 4s\nexpect client state FIN_WAIT2\nwait 2s\nexpect client state CLOSE\n"
    ));
    assert_eq!(counter(&t, "client", Counter::TW), 1);
}

#[test]
fn long_fin_timeout_uses_the_keepalive_timer_first() {
    // tmo > TCP_TIMEWAIT_LEN: the full socket waits tmo - 60 s
    // (inet_csk_reset_keepalive_timer), then tcp_keepalive_timer hands over
    // to a time-wait socket for tcp_fin_time - 60 s again, not for the 60 s
    // that remain: 100 s of TCP_LINGER2 last 80 s (each 40 s timer is
    // rounded up by up to 2.048 s by the timer wheel's level 3).
    run(&format!(
        "client socket = 3\nclient setsockopt TCP_LINGER2 100 = 0\n{CONNECT}client close = 0\nwait 39s\nexpect client state FIN_WAIT2\nwait 40s\nexpect client state FIN_WAIT2\nwait 6s\nexpect client state CLOSE\n"
    ));
}

#[test]
fn data_after_close_resets() {
    // tcp_rcv_state_process: FIN_WAIT2 with RCV_SHUTDOWN and new data ->
    // TCPAbortOnData and a reset; the time-wait orphan answers with R.
    let t = run(&format!(
        "{CONNECT}client close = 0\nexpect client state FIN_WAIT2\nserver send \"late\" = 4\nexpect client > server R seq 2\n"
    ));
    assert!(
        t.segments
            .iter()
            .any(|s| &*s.src == "client" && s.flags.rst() && !s.flags.ack())
    );
}

#[test]
fn no_socket_reset_after_time_wait() {
    let t = run(&format!(
        "{CONNECT}client close = 0\nserver close = 0\nexpect client state TIME_WAIT\nwait 63s\nexpect client state CLOSE\n"
    ));
    assert_eq!(counter(&t, "client", Counter::TW), 1);
}

#[test]
fn simultaneous_close_goes_through_closing() {
    let t = run(&format!(
        "{CONNECT}together {{\n client close\n server close\n}}\nexpect client state TIME_WAIT\nexpect server state TIME_WAIT\n"
    ));
    assert!(t.states.iter().any(|s| s.to == TcpState::Closing));
}

#[test]
fn shutdown_rd_keeps_the_queue() {
    let t = run(&format!(
        "{CONNECT}server send \"ab\" = 2\nclient shutdown SHUT_RD = 0\nclient recv 10 = 2\nclient recv 10 = 0\nclient close = 0\n"
    ));
    assert!(segs(&t).iter().any(|s| s == "client F. 1 3 0"));
}

#[test]
fn urgent_byte_skipped_by_a_normal_read() {
    // tcp_recvmsg skips the urgent byte when SO_OOBINLINE is off, so a read
    // after recv(MSG_OOB) consumes it and close() sends FIN.
    let t = run(&format!(
        "{CONNECT}client send \"c\" MSG_OOB = 1\nserver recv 1 MSG_OOB = 1\nserver recv 1 MSG_DONTWAIT = -1 EAGAIN\nserver close = 0\n"
    ));
    assert!(segs(&t).iter().any(|s| s == "server F. 1 2 0"));
}

#[test]
fn oobinline_reads_the_urgent_byte_as_data() {
    let t = run(&format!(
        "server.listener setsockopt SO_OOBINLINE 1 = 0\n{CONNECT}client send \"ab\" MSG_OOB = 2\nserver recv 10 = 1\nserver recv 10 = 1\nserver close = 0\n"
    ));
    assert!(segs(&t).iter().any(|s| s == "server F. 1 3 0"));
}

#[test]
fn dropped_fin_is_retransmitted_after_the_rto() {
    let t = run(&format!(
        "{CONNECT}client drop\nclient close = 0\nwait 1s\nexpect client state FIN_WAIT2\n"
    ));
    let fins: Vec<_> = t
        .segments
        .iter()
        .filter(|s| &*s.src == "client" && s.flags.fin())
        .collect();
    assert_eq!(fins.len(), 2);
    assert!(fins[0].lost && !fins[1].lost);
    let gap = fins[1].time_us - fins[0].time_us;
    assert!((200_000..=260_000).contains(&gap), "RTO {gap} us");
}

/// The README lists the model's departures from Linux word for word as the
/// module documentation does (`src/model/departures.md`).
#[test]
fn readme_lists_the_departures() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let dep = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/model/departures.md"
    ))
    .unwrap();
    assert!(
        readme.contains(dep.trim()),
        "README.md must contain src/model/departures.md verbatim"
    );
}

#[test]
fn when_policy_blocks_are_checked_under_their_policy_only() {
    // The same exchange: unread data, then close. Each block states what
    // its policy does; run_policy fails on any unmet expectation.
    let body = format!(
        "{CONNECT}server send \"abc\" = 3\nclient close = 0\n\
         when policy linux {{\n expect client > server R.\n}}\n\
         when policy always-fin {{\n expect client > server F.\n expect no client > server R.\n}}\n"
    );
    let linux = run_policy(&body, Policy::Linux);
    let fin = run_policy(&body, Policy::AlwaysFin);
    // One more checked under always-fin: its block has two, linux's one.
    assert_eq!(fin.expectations_checked, linux.expectations_checked + 1);
    assert!(segs(&linux).iter().any(|s| s.starts_with("client R.")));
    assert!(segs(&fin).iter().any(|s| s.starts_with("client F.")));
}
