//! Time-wait sockets (`struct inet_timewait_sock`, net/ipv4/tcp_minisocks.c).
//!
//! When a connection reaches TIME_WAIT, or an orphan reaches FIN_WAIT2 with
//! a short enough `tcp_fin_time`, Linux frees the full socket and keeps
//! this minisocket instead (`tcp_time_wait`). Its `substate` is what
//! `/proc/net/tcp` and `ss` show.

use super::World;
use super::input::send_reset;
use super::sock::*;
use crate::segment::{Flags, Segment, TcpOpt};

#[derive(Clone, Debug)]
pub struct Tw {
    pub host: usize,
    /// The full socket it replaced (for names and states).
    pub sock: SockId,
    pub name: String,
    pub local_port: u16,
    pub remote: (usize, u16),
    /// FIN_WAIT2 or TIME_WAIT.
    pub substate: State,
    pub snd_nxt: u32,
    pub rcv_nxt: u32,
    pub rcv_wnd: u32,
    pub rcv_wscale: u8,
    pub ts_ok: bool,
    pub ts_recent: u32,
    pub ts_offset: u32,
    pub expires: Time,
    pub last_oow_ack: Option<Time>,
}

/// What `tcp_timewait_state_process` tells its caller to do.
enum TwAction {
    Success,
    Ack(&'static str),
    Rst(&'static str),
    Kill,
}

/// `tcp_timewait_state_process` followed by what `tcp_v4_rcv` does with its
/// verdict.
pub fn process(w: &mut World, ti: usize, seg: &Segment) {
    let now = w.now;
    let mut entered_time_wait = false;
    let action = {
        let tw = &mut w.tws[ti];
        let f = seg.flags;
        let end_seq = seg.seq.wrapping_add(seg.seq_len());
        if tw.substate == State::FinWait2 {
            // "Just repeat all the checks of tcp_rcv_state_process()"
            let in_window = !after(seg.seq, tw.rcv_nxt.wrapping_add(tw.rcv_wnd))
                && !before(end_seq, tw.rcv_nxt)
                || (seg.seq == tw.rcv_nxt && end_seq == seg.seq);
            let in_window = in_window
                && !(before(end_seq, tw.rcv_nxt)
                    || after(seg.seq, tw.rcv_nxt.wrapping_add(tw.rcv_wnd)));
            if !in_window {
                oow_ack(
                    tw,
                    now,
                    "out-of-window segment to a FIN_WAIT2 time-wait socket -> ACK",
                )
            } else if f.rst() {
                TwAction::Kill
            } else if f.syn() && !before(seg.seq, tw.rcv_nxt) {
                TwAction::Rst("SYN to a FIN_WAIT2 time-wait socket -> RST")
            } else if !f.ack() || !after(end_seq, tw.rcv_nxt) || end_seq == seg.seq {
                // A duplicate ACK: nothing to do.
                TwAction::Success
            } else if !f.fin() || end_seq != tw.rcv_nxt.wrapping_add(1) {
                // "New data or FIN. If new data arrive after half-duplex
                // close, reset."
                TwAction::Rst(
                    "data after close() for a FIN_WAIT2 orphan -> RST (tcp_timewait_state_process)",
                )
            } else {
                // "FIN arrived, enter true time-wait state."
                tw.substate = State::TimeWait;
                entered_time_wait = true;
                tw.rcv_nxt = end_seq;
                if let Some((v, _)) = seg.timestamp() {
                    tw.ts_recent = v;
                }
                tw.expires = now + TCP_TIMEWAIT_LEN;
                TwAction::Ack(
                    "ACK of the peer's FIN: FIN_WAIT2 -> TIME_WAIT (tcp_timewait_state_process)",
                )
            }
        } else if seg.seq == tw.rcv_nxt && (seg.seq == end_seq || f.rst()) {
            // "In window segment, it may be only reset or bare ack."
            if f.rst() {
                // TIME_WAIT assassination (RFC 1337), unless tcp_rfc1337.
                if w.hosts[tw.host].sysctl.tcp_rfc1337 {
                    TwAction::Success
                } else {
                    TwAction::Kill
                }
            } else {
                tw.expires = now + TCP_TIMEWAIT_LEN;
                TwAction::Success
            }
        } else if f.syn() && !f.rst() && !f.ack() && after(seg.seq, tw.rcv_nxt) {
            // A new connection may reuse the pair (TCP_TW_SYN): the model
            // lets the listener have it.
            TwAction::Kill
        } else if !f.rst() {
            if f.ack() {
                tw.expires = now + TCP_TIMEWAIT_LEN;
            }
            oow_ack(
                tw,
                now,
                "segment to a TIME_WAIT socket -> ACK (tcp_timewait_state_process)",
            )
        } else {
            TwAction::Success
        }
    };
    if entered_time_wait {
        let sock = w.tws[ti].sock;
        w.record_state(sock, "FIN_WAIT2", "TIME_WAIT");
    }
    match action {
        TwAction::Success => {}
        TwAction::Ack(why) => timewait_ack(w, ti, why),
        TwAction::Rst(why) => {
            let h = w.tws[ti].host;
            send_reset(w, h, seg, why);
            kill(w, ti);
        }
        TwAction::Kill => {
            kill(w, ti);
            if seg.flags.syn() && !seg.flags.ack() {
                super::input::tcp_v4_rcv(w, seg.clone());
            }
        }
    }
}

/// `tcp_timewait_check_oow_rate_limit`.
fn oow_ack(tw: &mut Tw, now: Time, why: &'static str) -> TwAction {
    if let Some(last) = tw.last_oow_ack {
        if now < last + 500 * MS {
            return TwAction::Success;
        }
    }
    tw.last_oow_ack = Some(now);
    TwAction::Ack(why)
}

/// `tcp_v4_timewait_ack`.
fn timewait_ack(w: &mut World, ti: usize, why: &str) {
    let tw = w.tws[ti].clone();
    let mut options = Vec::new();
    if tw.ts_ok {
        options.push(TcpOpt::Nop);
        options.push(TcpOpt::Nop);
        options.push(TcpOpt::Timestamp {
            val: ((w.now / MS) as u32).wrapping_add(tw.ts_offset),
            ecr: tw.ts_recent,
        });
    }
    let seg = Segment {
        time_us: 0,
        src: w.hosts[tw.host].name.clone(),
        dst: w.hosts[tw.remote.0].name.clone(),
        src_addr: w.hosts[tw.host].addr,
        dst_addr: w.hosts[tw.remote.0].addr,
        sport: tw.local_port,
        dport: tw.remote.1,
        seq: tw.snd_nxt,
        ack: tw.rcv_nxt,
        flags: Flags::ACK,
        win: (tw.rcv_wnd >> tw.rcv_wscale).min(65535) as u16,
        urg_ptr: 0,
        options,
        len: 0,
        payload: Some(Vec::new()),
        why: Some(why.to_string()),
        lost: false,
    };
    w.emit(seg);
}

/// `inet_twsk_deschedule_put`: the time-wait socket goes away early.
fn kill(w: &mut World, ti: usize) {
    let tw = w.tws.remove(ti);
    w.record_state(tw.sock, tw.substate.name(), "CLOSE");
}

/// `tw_timer_handler`: the time-wait socket's time is up. (The TW counter
/// moved when it was scheduled, in `__inet_twsk_schedule`.)
pub fn expire(w: &mut World) {
    let now = w.now;
    while let Some(i) = w.tws.iter().position(|t| t.expires <= now) {
        let tw = w.tws.remove(i);
        w.record_state(tw.sock, tw.substate.name(), "CLOSE");
    }
}
