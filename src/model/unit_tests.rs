//! Unit tests of ported kernel helpers, driven by crafted segments on a
//! world a script has set up (the scripted-peer issue will turn them into
//! raw-segment scenarios run against the kernel too).

use super::input::{InSeg, paws_reject, reset_check};
use super::timewait::{TwStatus, tcp_timewait_state_process};
use super::{ModelEngine, World};
use crate::engine::{HostSpec, RunOptions};
use crate::segment::{Flags, Segment, TcpOpt};
use crate::vocab::Counter;

/// Runs a script on the model (horizon 5 s, so time-wait sockets live on)
/// and returns its world.
fn world(body: &str) -> World {
    let text = format!("hosts client server\nhorizon 5s\n{body}");
    let script = crate::script::parse("unit.sim", &text).expect("script parses");
    let opts = RunOptions::default();
    let mut eng = ModelEngine::new(&HostSpec::for_hosts(&script.hosts), &opts);
    crate::runner::run(&script, &mut eng, &opts, None).expect("script runs");
    eng.world
}

/// A segment from `from` (host index) to the other host of the connection
/// on port 9999.
fn seg(
    w: &World,
    from: usize,
    seq: u32,
    ack: u32,
    flags: Flags,
    len: u32,
    tsval: Option<u32>,
) -> Segment {
    let to = 1 - from;
    let (sport, dport) = if from == 0 {
        (40000, 9999)
    } else {
        (9999, 40000)
    };
    Segment {
        time_us: w.now,
        src: w.hosts[from].name.clone(),
        dst: w.hosts[to].name.clone(),
        src_addr: w.hosts[from].addr,
        dst_addr: w.hosts[to].addr,
        sport,
        dport,
        seq,
        ack,
        flags,
        win: 64,
        urg_ptr: 0,
        options: tsval
            .map(|val| vec![TcpOpt::Nop, TcpOpt::Nop, TcpOpt::Timestamp { val, ecr: 0 }])
            .unwrap_or_default(),
        len,
        payload: None,
        why: None,
        rst_reason: None,
        lost: false,
    }
}

fn only_tw(w: &World) -> usize {
    let live: Vec<usize> = (0..w.tws.len()).filter(|&i| w.tws[i].is_some()).collect();
    assert_eq!(live.len(), 1, "one time-wait socket expected");
    live[0]
}

/// Issue 11, item 1: tcp_timewait_state_process runs tcp_in_window on a
/// FIN_WAIT2-born time-wait socket: a duplicate that ends at rcv_nxt is out
/// of the window and is answered with an ACK (TCP_TW_ACK_OOW), while a
/// segment at rcv_nxt is in it (a bare ACK: nothing).
#[test]
fn fin_wait2_time_wait_acks_a_duplicate_ending_at_rcv_nxt() {
    let mut w = world(
        "server listen 9999\nclient connect server:9999 = 0\nserver accept = 4\n\
         server send \"ab\" = 2\nclient recv 10 = 2\nclient close = 0\nexpect client state FIN_WAIT2\n",
    );
    let ti = only_tw(&w);
    let tw = w.tws[ti].clone().unwrap();
    assert_eq!(tw.substate, super::State::FinWait2);
    let dup = seg(
        &w,
        1,
        tw.rcv_nxt.wrapping_sub(2),
        tw.snd_nxt,
        Flags::ACK | Flags::PSH,
        2,
        None,
    );
    assert_eq!(
        tcp_timewait_state_process(&mut w, ti, &dup),
        TwStatus::AckOow
    );
    let bare = seg(&w, 1, tw.rcv_nxt, tw.snd_nxt, Flags::ACK, 0, None);
    assert_eq!(
        tcp_timewait_state_process(&mut w, ti, &bare),
        TwStatus::Success
    );
}

/// Issue 11, item 2: in TIME_WAIT a SYN is TCP_TW_SYN when its sequence
/// number is past rcv_nxt *or* its timestamp is newer than ts_recent; the
/// new ISN is the time-wait socket's snd_nxt + 65535 + 2. An old SYN
/// (below rcv_nxt, older timestamp) is PAWS-rejected and gets an ACK.
#[test]
fn time_wait_accepts_a_syn_with_a_newer_timestamp_below_rcv_nxt() {
    let mut w = world(
        "server listen 9999\nclient connect server:9999 = 0\nserver accept = 4\n\
         server close = 0\nclient recv 10 = 0\nclient close = 0\nexpect server state TIME_WAIT\n",
    );
    let ti = only_tw(&w);
    let tw = w.tws[ti].clone().unwrap();
    assert_eq!(tw.substate, super::State::TimeWait);
    assert!(tw.ts_recent_stamp != 0, "timestamps are on");
    let below = tw.rcv_nxt.wrapping_sub(1000);
    let newer = seg(
        &w,
        0,
        below,
        0,
        Flags::SYN,
        0,
        Some(tw.ts_recent.wrapping_add(10)),
    );
    assert_eq!(
        tcp_timewait_state_process(&mut w, ti, &newer),
        TwStatus::Syn(tw.snd_nxt.wrapping_add(65537))
    );
    let older = seg(
        &w,
        0,
        below,
        0,
        Flags::SYN,
        0,
        Some(tw.ts_recent.wrapping_sub(10)),
    );
    let paws_before = w.hosts[1]
        .counters
        .get(&Counter::PAWSTimewait)
        .copied()
        .unwrap_or(0);
    assert_eq!(
        tcp_timewait_state_process(&mut w, ti, &older),
        TwStatus::AckOow
    );
    assert_eq!(
        w.hosts[1]
            .counters
            .get(&Counter::PAWSTimewait)
            .copied()
            .unwrap_or(0),
        paws_before + 1
    );
    // Without a timestamp, only the sequence number decides.
    let no_ts_past = seg(&w, 0, tw.rcv_nxt.wrapping_add(1), 0, Flags::SYN, 0, None);
    assert!(matches!(
        tcp_timewait_state_process(&mut w, ti, &no_ts_past),
        TwStatus::Syn(_)
    ));
}

/// Issue 11, item 4: tcp_reset_check accepts an RST at rcv_nxt - 1 once a
/// FIN has been received (CLOSE_WAIT, LAST_ACK, CLOSING), not before.
#[test]
fn reset_check_accepts_rcv_nxt_minus_one_after_a_fin() {
    let w = world(
        "server listen 9999\nclient connect server:9999 = 0\nserver accept = 4\n\
         client close = 0\nexpect server state CLOSE_WAIT\n",
    );
    let id = w.named(1, "conn").expect("server.conn");
    let s = w.sk(id);
    let rst = seg(&w, 0, s.rcv_nxt.wrapping_sub(1), 0, Flags::RST, 0, None);
    assert!(reset_check(s, &InSeg::new(&rst)));
    let at = seg(&w, 0, s.rcv_nxt.wrapping_sub(2), 0, Flags::RST, 0, None);
    assert!(!reset_check(s, &InSeg::new(&at)));
    // The client's side is in FIN_WAIT2: no FIN received, no exception.
    let w2 = world("server listen 9999\nclient connect server:9999 = 0\nserver accept = 4\n");
    let id = w2.named(1, "conn").expect("server.conn");
    let s = w2.sk(id);
    let rst = seg(&w2, 0, s.rcv_nxt.wrapping_sub(1), 0, Flags::RST, 0, None);
    assert!(!reset_check(s, &InSeg::new(&rst)));
}

/// Issue 11, item 4: tcp_paws_reject. A TSval older than ts_recent is
/// rejected; after 24 days (TCP_PAWS_WRAP) ts_recent is stale and nothing
/// is; an RST is let through once the timestamp is older than
/// TCP_PAWS_MSL (60 s).
#[test]
fn paws_reject_follows_the_kernel() {
    let now = 1000;
    assert!(!paws_reject(5000, 5000, now, now, false));
    assert!(!paws_reject(5000, 5001, now, now, false));
    assert!(paws_reject(5000, 4999, now, now, false));
    // Wrapped: 2^31 apart counts as older.
    assert!(paws_reject(
        5000,
        5000u32.wrapping_add(0x8000_0001),
        now,
        now,
        false
    ));
    assert!(paws_reject(5000, 4999, now, now + 59, true));
    assert!(!paws_reject(5000, 4999, now, now + 61, true));
    assert!(!paws_reject(
        5000,
        4999,
        now,
        now + 24 * 24 * 3600 + 1,
        false
    ));
    // ts_recent 0 (never set) accepts anything.
    assert!(!paws_reject(0, 0x9000_0000, now, now, false));
}
