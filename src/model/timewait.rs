//! Time-wait sockets: `struct inet_timewait_sock` / `tcp_timewait_sock`
//! (net/ipv4/tcp_minisocks.c, net/ipv4/inet_timewait_sock.c), and what
//! `tcp_v4_rcv` does with their verdicts (net/ipv4/tcp_ipv4.c).
//!
//! When a connection reaches TIME_WAIT, or an orphan reaches FIN_WAIT2
//! with a short enough `tcp_fin_time`, `tcp_time_wait` hands the
//! connection to a minisocket and the full socket goes to CLOSE
//! (`tcp_done`): a descriptor the program still holds refers to a closed
//! socket from then on. The minisocket's `substate` is what
//! `/proc/net/tcp` and `ss` show.

use super::close;
use super::input::{paws_reject, seconds};
use super::output::{v4_send_ack, v4_send_reset};
use super::sock::*;
use super::timers::wheel_fire_us;
use super::{Ehash, Key4, PortOwner, TimerRef, TimerSlot, World, listen};
use crate::segment::{Segment, TcpOpt};
use crate::vocab::{Counter, RstReason};
use std::borrow::Cow;

/// A time-wait socket.
#[derive(Clone, Debug)]
pub struct Tw {
    pub host: usize,
    /// The full socket it took over from (while that socket exists).
    pub sock: Option<SockId>,
    /// The name its state changes are recorded under.
    pub name: String,
    pub local_port: u16,
    pub remote: (usize, u16),
    /// `tw_substate`: FIN_WAIT2 or TIME_WAIT.
    pub substate: State,
    pub snd_nxt: u32,
    pub rcv_nxt: u32,
    pub rcv_wnd: u32,
    pub rcv_wscale: u8,
    pub ts_recent: u32,
    /// Seconds (`ktime_get_seconds`); 0 when timestamps are off.
    pub ts_recent_stamp: u64,
    pub ts_offset: u32,
    pub last_oow_ack_time: Jiffies,
    /// `tw_timer`, in jiffies (for reports).
    pub expires: Jiffies,
    pub timer: TimerSlot,
}

/// `enum tcp_tw_status`: what `tcp_timewait_state_process` tells
/// `tcp_v4_rcv` to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TwStatus {
    /// `TCP_TW_SUCCESS`: nothing (the segment is dropped).
    Success,
    /// `TCP_TW_RST`: answer with a reset and kill the time-wait socket.
    Rst,
    /// `TCP_TW_ACK`: answer with an ACK.
    Ack,
    /// `TCP_TW_ACK_OOW`: answer an out-of-window segment with an ACK.
    AckOow,
    /// `TCP_TW_SYN`: a new SYN may reopen the connection; the listener
    /// takes it with this ISN (`tcp_tw_isn`).
    Syn(u32),
}

/// `tcp_in_window` (tcp_minisocks.c).
pub fn tcp_in_window(seq: u32, end_seq: u32, s_win: u32, e_win: u32) -> bool {
    if seq == s_win {
        return true;
    }
    if after(end_seq, s_win) && before(seq, e_win) {
        return true;
    }
    seq == e_win && seq == end_seq
}

/// `__tcp_oow_rate_limited` on a minisocket's `last_oow_ack_time`.
pub fn oow_rate_limited(w: &mut World, host: usize, last: &mut Jiffies, mib: Counter) -> bool {
    let now = w.jiffies();
    let limit = w.hosts[host].sysctl.tcp_invalid_ratelimit;
    if *last != 0 {
        let elapsed = now.wrapping_sub(*last) as i64;
        if (0..limit as i64).contains(&elapsed) {
            w.count(host, mib);
            return true;
        }
    }
    *last = now.max(1);
    false
}

/// `tcp_time_wait`: move a socket to time-wait (`state` TIME_WAIT) or to
/// a dead FIN_WAIT2 (`state` FIN_WAIT2, for `timeo` jiffies).
pub fn tcp_time_wait(w: &mut World, id: SockId, state: State, timeo: Jiffies) {
    let now_j = w.jiffies();
    let s = w.sk(id);
    let rto = (s.rto << 2) - (s.rto >> 1);
    // "Get the TIME_WAIT timeout firing."
    let mut timeo = timeo.max(rto);
    if state == State::TimeWait {
        timeo = TCP_TIMEWAIT_LEN;
    }
    let remote = s.remote.unwrap_or((s.host, 0));
    let name = if s.name.is_empty() {
        super::api::unnamed_label(s.remote)
    } else {
        s.name.clone()
    };
    let tw = Tw {
        host: s.host,
        sock: if s.dead { None } else { Some(id) },
        name,
        local_port: s.local_port,
        remote,
        substate: state,
        snd_nxt: s.snd_nxt,
        rcv_nxt: s.rcv_nxt,
        rcv_wnd: s.receive_window(),
        rcv_wscale: s.rcv_wscale,
        ts_recent: s.ts_recent,
        ts_recent_stamp: s.ts_recent_stamp,
        ts_offset: s.tsoffset,
        last_oow_ack_time: 0,
        expires: now_j + timeo,
        timer: TimerSlot::default(),
    };
    let h = tw.host;
    let key: Key4 = (h, tw.local_port, remote.0, remote.1);
    let port = tw.local_port;
    w.tws.push(Some(tw));
    let ti = w.tws.len() - 1;
    // inet_twsk_hashdance_schedule: the time-wait socket joins the bind
    // bucket's owners and takes the full socket's place in the
    // established hash.
    w.hosts[h]
        .ports
        .entry(port)
        .or_default()
        .push(PortOwner::Tw(ti));
    w.ehash.insert(key, Ehash::Tw(ti));
    // __inet_twsk_schedule: "kill" when 3.5 RTO is at most 4 s.
    w.count(
        h,
        if timeo <= 4 * HZ {
            Counter::TWKilled
        } else {
            Counter::TW
        },
    );
    w.arm(TimerRef::Tw(ti), wheel_fire_us(now_j, now_j + timeo));
    // The state-change tracepoint sees the full socket go to CLOSE; a
    // capture of /proc/net/tcp (what the linux engine reads) sees the
    // connection go on as the time-wait socket's sub-state.
    let from = w.sk(id).state;
    if from != state {
        let n = w.tws[ti]
            .as_ref()
            .map(|t| t.name.clone())
            .unwrap_or_default();
        w.record_named(h, &n, from, state);
    }
    close::tcp_done_quiet(w, id);
}

/// `inet_twsk_reschedule`.
fn reschedule(w: &mut World, ti: usize, timeo: Jiffies) {
    let now_j = w.jiffies();
    if let Some(tw) = w.tws[ti].as_mut() {
        tw.expires = now_j + timeo;
    }
    w.arm(TimerRef::Tw(ti), wheel_fire_us(now_j, now_j + timeo));
}

/// `tcp_timewait_state_process`.
pub fn tcp_timewait_state_process(w: &mut World, ti: usize, seg: &Segment) -> TwStatus {
    let now_s = seconds(w);
    let Some(tw) = w.tws[ti].clone() else {
        return TwStatus::Success;
    };
    let rcv_nxt = tw.rcv_nxt;
    let seq = seg.seq;
    let end_seq = seg.seq.wrapping_add(seg.seq_len());
    let f = seg.flags;
    let mut saw_tstamp = None;
    let mut paws_rejected = false;
    if !seg.options.is_empty() && tw.ts_recent_stamp != 0 {
        if let Some((val, _ecr)) = seg.options.iter().find_map(|o| match o {
            TcpOpt::Timestamp { val, ecr } => Some((*val, *ecr)),
            _ => None,
        }) {
            saw_tstamp = Some(val);
            paws_rejected = paws_reject(tw.ts_recent, val, tw.ts_recent_stamp, now_s, f.rst());
        }
    }
    let h = tw.host;

    if tw.substate == State::FinWait2 {
        // "Just repeat all the checks of tcp_rcv_state_process()"
        // "Out of window, send ACK"
        if paws_rejected || !tcp_in_window(seq, end_seq, rcv_nxt, rcv_nxt.wrapping_add(tw.rcv_wnd))
        {
            return check_oow_rate_limit(w, ti, seg, Counter::TCPACKSkippedFinWait2);
        }
        if f.rst() {
            kill(w, ti);
            return TwStatus::Success;
        }
        if f.syn() && !before(seq, rcv_nxt) {
            return TwStatus::Rst;
        }
        // "Dup ACK?"
        if !f.ack() || !after(end_seq, rcv_nxt) || end_seq == seq {
            return TwStatus::Success;
        }
        // "New data or FIN. If new data arrive after half-duplex close,
        // reset."
        if !f.fin() || end_seq != rcv_nxt.wrapping_add(1) {
            return TwStatus::Rst;
        }
        // "FIN arrived, enter true time-wait state."
        let name = {
            let t = w.tws[ti].as_mut().expect("live");
            t.substate = State::TimeWait;
            t.rcv_nxt = end_seq;
            if let Some(val) = saw_tstamp {
                t.ts_recent_stamp = now_s;
                t.ts_recent = val;
            }
            t.name.clone()
        };
        w.record_named(h, &name, State::FinWait2, State::TimeWait);
        reschedule(w, ti, TCP_TIMEWAIT_LEN);
        return TwStatus::Ack;
    }

    // Now real TIME-WAIT state (RFC 1122: "MAY accept a new SYN ... if it
    // assigns its initial sequence number ... larger").
    if !paws_rejected && seq == rcv_nxt && (seq == end_seq || f.rst()) {
        // "In window segment, it may be only reset or bare ack."
        if f.rst() {
            // "This is TIME_WAIT assassination, in two flavors."
            if !w.hosts[h].sysctl.tcp_rfc1337 {
                kill(w, ti);
                return TwStatus::Success;
            }
        } else {
            reschedule(w, ti, TCP_TIMEWAIT_LEN);
        }
        if let Some(val) = saw_tstamp {
            let t = w.tws[ti].as_mut().expect("live");
            t.ts_recent = val;
            t.ts_recent_stamp = now_s;
        }
        return TwStatus::Success;
    }

    // "Out of window segment. All the segments are ACKed immediately. The
    // only exception is new SYN."
    if f.syn()
        && !f.rst()
        && !f.ack()
        && !paws_rejected
        && (after(seq, rcv_nxt)
            || saw_tstamp.is_some_and(|val| (tw.ts_recent.wrapping_sub(val) as i32) < 0))
    {
        let mut isn = tw.snd_nxt.wrapping_add(65535 + 2);
        if isn == 0 {
            isn += 1;
        }
        return TwStatus::Syn(isn);
    }
    if paws_rejected {
        w.count(h, Counter::PAWSTimewait);
    }
    if !f.rst() {
        // "If it is ACKless SYN it may be both old duplicate and new good
        // SYN with random sequence number <rcv_nxt. Do not reschedule in
        // the last case."
        if paws_rejected || f.ack() {
            reschedule(w, ti, TCP_TIMEWAIT_LEN);
        }
        return check_oow_rate_limit(w, ti, seg, Counter::TCPACKSkippedTimeWait);
    }
    TwStatus::Success
}

/// `tcp_timewait_check_oow_rate_limit`.
fn check_oow_rate_limit(w: &mut World, ti: usize, seg: &Segment, mib: Counter) -> TwStatus {
    // tcp_oow_rate_limited: "Data packets without SYNs are not likely part
    // of an ACK loop." The test is end_seq != seq, so a FIN counts as data:
    // a retransmitted FIN into TIME_WAIT is always answered.
    if seg.seq_len() > 0 && !seg.flags.syn() {
        return TwStatus::AckOow;
    }
    let Some(t) = w.tws[ti].as_ref() else {
        return TwStatus::Success;
    };
    let (h, mut last) = (t.host, t.last_oow_ack_time);
    let limited = oow_rate_limited(w, h, &mut last, mib);
    if let Some(t) = w.tws[ti].as_mut() {
        t.last_oow_ack_time = last;
    }
    if limited {
        TwStatus::Success
    } else {
        TwStatus::AckOow
    }
}

/// `tcp_v4_rcv`'s `do_time_wait`: a segment for a time-wait socket.
pub fn tcp_v4_rcv_tw(w: &mut World, ti: usize, seg: &Segment, key: Key4) {
    let status = tcp_timewait_state_process(w, ti, seg);
    let h = key.0;
    match status {
        TwStatus::Syn(isn) => {
            if let Some(lid) = w.lhash.get(&(h, seg.dport)).copied() {
                // inet_twsk_deschedule_put, then the listener processes
                // the SYN with this ISN.
                kill(w, ti);
                listen::tcp_conn_request(w, lid, seg, isn);
                return;
            }
            // "to ACK"
            timewait_ack(w, ti, seg, TwStatus::Ack);
        }
        TwStatus::Ack | TwStatus::AckOow => timewait_ack(w, ti, seg, status),
        TwStatus::Rst => {
            v4_send_reset(
                w,
                h,
                seg,
                "segment a time-wait socket rejects -> RST (tcp_timewait_state_process)",
                RstReason::TcpTimewaitSocket,
            );
            kill(w, ti);
        }
        TwStatus::Success => {}
    }
}

/// `tcp_v4_timewait_ack`.
fn timewait_ack(w: &mut World, ti: usize, seg: &Segment, status: TwStatus) {
    let Some(tw) = w.tws[ti].clone() else { return };
    let tsval = w.ts_clock().wrapping_add(tw.ts_offset); // tcp_tw_tsval
    let why: Cow<'static, str> = match (status, tw.substate) {
        (TwStatus::Ack, State::TimeWait) if seg.flags.fin() => Cow::Borrowed(
            "ACK of the peer's FIN: FIN_WAIT2 -> TIME_WAIT (tcp_timewait_state_process)",
        ),
        (_, State::FinWait2) => Cow::Borrowed(
            "out-of-window segment to a FIN_WAIT2 time-wait socket -> ACK (tcp_v4_timewait_ack)",
        ),
        _ => Cow::Borrowed("segment to a TIME_WAIT socket -> ACK (tcp_v4_timewait_ack)"),
    };
    v4_send_ack(
        w,
        tw.host,
        seg,
        tw.snd_nxt,
        tw.rcv_nxt,
        tw.rcv_wnd >> tw.rcv_wscale,
        tsval,
        tw.ts_recent,
        why,
    );
}

/// `inet_twsk_kill`: the time-wait socket leaves the hashes.
pub fn kill(w: &mut World, ti: usize) {
    let Some(tw) = w.tws[ti].take() else { return };
    let key: Key4 = (tw.host, tw.local_port, tw.remote.0, tw.remote.1);
    if w.ehash.get(&key) == Some(&Ehash::Tw(ti)) {
        w.ehash.remove(&key);
    }
    if let Some(owners) = w.hosts[tw.host].ports.get_mut(&tw.local_port) {
        owners.retain(|o| *o != PortOwner::Tw(ti));
        if owners.is_empty() {
            w.hosts[tw.host].ports.remove(&tw.local_port);
        }
    }
    w.record_named(tw.host, &tw.name, tw.substate, State::Close);
}

/// `tw_timer_handler`: the time-wait socket's time is up.
pub fn tw_timer_handler(w: &mut World, ti: usize) {
    kill(w, ti);
}

/// The time-wait socket that carries the connection of a full socket.
pub fn tw_of(w: &World, id: SockId) -> Option<&Tw> {
    let s = w.sk(id);
    let (rh, rp) = s.remote?;
    match w.ehash.get(&(s.host, s.local_port, rh, rp)) {
        Some(Ehash::Tw(ti)) => w.tws[*ti].as_ref(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// tcp_in_window as the kernel writes it: the left edge always, a
    /// segment overlapping the window, and a bare segment at the right
    /// edge.
    #[test]
    fn in_window() {
        assert!(tcp_in_window(100, 100, 100, 200));
        assert!(tcp_in_window(100, 150, 100, 200));
        // A duplicate ending at rcv_nxt is *not* in the window: the
        // time-wait socket ACKs it (issue: ". ack" for a dup).
        assert!(!tcp_in_window(50, 100, 100, 200));
        assert!(tcp_in_window(50, 101, 100, 200));
        assert!(tcp_in_window(200, 200, 100, 200));
        assert!(!tcp_in_window(200, 201, 100, 200));
        assert!(!tcp_in_window(201, 201, 100, 200));
    }
}
