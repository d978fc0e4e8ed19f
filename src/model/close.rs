//! Closing: `__tcp_close` and everything it calls (net/ipv4/tcp.c).
//!
//! This is where close() decides between RST and FIN: see [`tcp_close`].

use super::World;
use super::output::{send_active_reset, send_fin};
use super::sock::*;
use super::timewait::Tw;
use crate::engine::Policy;

/// `tcp_close_state`: the state after close() or shutdown(SHUT_WR), and
/// whether a FIN must be sent (the `TCP_ACTION_FIN` bit of `new_state[]`).
pub fn tcp_close_state(w: &mut World, id: SockId) -> bool {
    let (next, fin) = match w.sk(id).state {
        State::Established => (State::FinWait1, true),
        State::SynSent => (State::Close, false),
        State::SynRecv => (State::FinWait1, true),
        State::FinWait1 => (State::FinWait1, false),
        State::FinWait2 => (State::FinWait2, false),
        State::TimeWait => (State::Close, false),
        State::Close => (State::Close, false),
        State::CloseWait => (State::LastAck, true),
        State::LastAck => (State::LastAck, false),
        State::Listen => (State::Close, false),
        State::Closing => (State::Closing, false),
    };
    if next == State::Close {
        tcp_done_state(w, id);
    } else if next == w.sk(id).state {
        // tcp_set_state runs (and its tracepoint fires) even when the
        // state does not change, e.g. close() after shutdown(SHUT_WR).
        w.record_state(id, next.name(), next.name());
    } else {
        w.set_state(id, next);
    }
    fin
}

/// `tcp_fin_time`: how long an orphan may sit in FIN_WAIT2: TCP_LINGER2,
/// else `tcp_fin_timeout`, at least 3.5 RTO.
pub fn tcp_fin_time(w: &World, id: SockId) -> Time {
    let s = w.sk(id);
    let mut t = if s.linger2 > 0 {
        s.linger2 as Time
    } else {
        w.hosts[s.host].sysctl.tcp_fin_timeout
    };
    let floor = (s.rto << 2) - (s.rto >> 1);
    if t < floor {
        t = floor;
    }
    t
}

/// What close() found, for the reason attached to the segment it sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseOutcome {
    /// LISTEN: children reset, listener gone.
    Listener,
    /// Already CLOSE (a reset came earlier): nothing on the wire.
    AlreadyClosed,
    /// TCP_REPAIR: silent disconnect.
    Repair,
    /// RFC 2525 2.17: unread data, RST.
    UnreadData(u32),
    /// SO_LINGER {1, 0}: abortive close.
    LingerZero,
    /// The normal close: FIN (or nothing if the state needs none).
    Fin,
}

/// `__tcp_close` (net/ipv4/tcp.c), branch by branch. `exiting` is
/// `PF_EXITING`: a dying process does not linger. Returns what it did and,
/// for a blocking SO_LINGER close, how long the caller may block.
pub fn tcp_close(w: &mut World, id: SockId, exiting: bool) -> (CloseOutcome, Option<Time>) {
    let h = w.sk(id).host;
    // 1. "sk->sk_shutdown = SHUTDOWN_MASK"
    w.sk_mut(id).shutdown = SHUTDOWN_MASK;

    // 2. A listener: reset the children in its accept queue.
    if w.sk(id).state == State::Listen {
        w.set_state(id, State::Close);
        inet_csk_listen_stop(w, id);
        orphan(w, id);
        return (CloseOutcome::Listener, None);
    }

    // 3. Drain the receive queue. Since 6.18 the test is whether any skb
    //    ends after copied_seq, the FIN not counted: bytes the program has
    //    not read. The urgent byte read with MSG_OOB is still there
    //    (recv(MSG_OOB) does not advance copied_seq).
    let always_fin = w.policy == Policy::AlwaysFin;
    let unread = {
        let s = w.sk_mut(id);
        let n = s.unread();
        if always_fin && n > 0 {
            // --policy always-fin models a stack without the rule: it
            // neither resets nor frees the unread data, so its window stays
            // shut (what Linux 2.0 did, and what smoltcp does).
            n
        } else {
            drain_receive_queue(s);
            n
        }
    };

    let outcome;
    let state = w.sk(id).state;
    if state == State::Close {
        // 4. "If socket has been already reset (e.g. in tcp_reset()) - kill it."
        orphan(w, id);
        return (CloseOutcome::AlreadyClosed, None);
    } else if w.sk(id).repair {
        // 5. TCP_REPAIR: tcp_disconnect in repair mode sends nothing.
        tcp_disconnect(w, id, "");
        outcome = CloseOutcome::Repair;
    } else if unread > 0 && w.policy == Policy::Linux {
        // 6. "As outlined in RFC 2525, section 2.17, we send a RST here
        //    because data was lost." (__tcp_close)
        w.count(h, "TCPAbortOnClose");
        w.set_state(id, State::Close);
        let why = format!(
            "close() with {unread} unread byte{} -> RST (RFC 2525 2.17, TCPAbortOnClose)",
            if unread == 1 { "" } else { "s" }
        );
        send_active_reset(w, id, &why);
        tcp_done_timers(w, id);
        outcome = CloseOutcome::UnreadData(unread);
    } else if w.sk(id).linger == Some(0) {
        // 7. "Check zero linger _after_ checking for unread data."
        tcp_disconnect(
            w,
            id,
            "close() with SO_LINGER {1, 0}: abortive close -> RST (tcp_disconnect, TCPAbortOnData)",
        );
        w.count(h, "TCPAbortOnData");
        outcome = CloseOutcome::LingerZero;
    } else {
        // 8. tcp_close_state, then the FIN after any queued data.
        let why = if w.sk(id).state == State::CloseWait {
            "FIN: close() after the peer's FIN (tcp_close_state: CLOSE_WAIT -> LAST_ACK)"
        } else if always_fin && unread > 0 {
            "FIN: close() with unread data, the RFC 2525 rule switched off (--policy always-fin)"
        } else {
            "FIN: close() with nothing unread (tcp_close_state)"
        };
        if tcp_close_state(w, id) {
            send_fin(w, id, why);
        }
        outcome = CloseOutcome::Fin;
    }

    // 9. SO_LINGER {1, N}: the caller blocks while the FIN is unacked.
    let mut block = None;
    if let Some(secs) = w.sk(id).linger {
        if secs > 0
            && !exiting
            && matches!(
                w.sk(id).state,
                State::FinWait1 | State::Closing | State::LastAck
            )
        {
            block = Some(secs as Time * SEC);
        }
    }
    if block.is_none() {
        finish_close(w, id);
    }
    (outcome, block)
}

/// The second half of `__tcp_close`, after any lingering: orphan the socket
/// and start the FIN_WAIT2 timer (10) or give up on it.
pub fn finish_close(w: &mut World, id: SockId) {
    let h = w.sk(id).host;
    let state = w.sk(id).state;
    orphan(w, id);
    if state == State::Close {
        return;
    }
    // 10. An orphan in FIN_WAIT2.
    if w.sk(id).state == State::FinWait2 {
        if w.sk(id).linger2 < 0 {
            w.set_state(id, State::Close);
            send_active_reset(
                w,
                id,
                "orphan in FIN_WAIT2 with TCP_LINGER2 < 0 -> RST (TCPAbortOnLinger)",
            );
            w.count(h, "TCPAbortOnLinger");
            tcp_done_timers(w, id);
            return;
        }
        let tmo = tcp_fin_time(w, id);
        if tmo > TCP_TIMEWAIT_LEN {
            let now = w.now;
            w.sk_mut(id).t_keepalive = Some(now + tmo - TCP_TIMEWAIT_LEN);
        } else {
            tcp_time_wait(w, id, State::FinWait2, tmo);
        }
    }
    // 11. tcp_check_oom: the model has no memory pressure.
}

/// The loop at the top of `__tcp_close` that frees every skb.
fn drain_receive_queue(s: &mut Sock) {
    s.rcvq.clear();
    s.rcvq_skbs.clear();
    s.rmem_alloc = 0;
    s.fin_in_rcvq = false;
    s.ooo.clear();
}

/// `sock_orphan`: the program no longer holds the socket.
fn orphan(w: &mut World, id: SockId) {
    let s = w.sk_mut(id);
    s.dead = true;
    s.lingering_until = None;
}

/// `inet_csk_listen_stop`: every child in the accept queue is disconnected
/// (RST for ESTABLISHED, SYN_RECV, CLOSE_WAIT); requests still in the SYN
/// queue are dropped without a word.
pub fn inet_csk_listen_stop(w: &mut World, lid: SockId) {
    let q: Vec<SockId> = w.sk_mut(lid).accept_q.drain(..).collect();
    for c in q {
        w.sk_mut(c).parent = None;
        // inet_child_forget → tcp_disconnect on an orphan
        tcp_disconnect(
            w,
            c,
            "the listener was closed with this connection in its accept queue -> RST (inet_csk_listen_stop)",
        );
        w.sk_mut(c).dead = true;
        tcp_done_timers(w, c);
    }
    let children: Vec<SockId> = (0..w.socks.len())
        .map(SockId)
        .filter(|&c| w.sk(c).parent == Some(lid) && w.sk(c).is_request)
        .collect();
    for c in children {
        // reqsk_queue_drop: a request socket just vanishes.
        let s = w.sk_mut(c);
        s.state = State::Close;
        s.parent = None;
        s.t_rto = None;
        s.dead = true;
    }
}

/// `tcp_disconnect`: abort a connection. Sends `R.` in the states where the
/// peer may still be talking (`tcp_need_reset`) or when unsent data
/// remains in CLOSING/LAST_ACK; nothing in repair mode or SYN_SENT.
pub fn tcp_disconnect(w: &mut World, id: SockId, why: &str) {
    let old = w.sk(id).state;
    if old != State::Close {
        w.set_state(id, State::Close);
    }
    let repair = w.sk(id).repair;
    let s = w.sk(id);
    let need_reset = matches!(
        old,
        State::Established | State::CloseWait | State::FinWait1 | State::FinWait2 | State::SynRecv
    );
    let unsent_tail =
        matches!(old, State::Closing | State::LastAck) && before(s.snd_nxt, s.write_seq);
    if repair {
        w.sk_mut(id).err = Some("ECONNABORTED");
    } else if need_reset || unsent_tail {
        // The reset is sent from CLOSE, with the old sequence numbers.
        send_active_reset(w, id, why);
        w.sk_mut(id).err = Some("ECONNRESET");
    } else if old == State::SynSent {
        w.sk_mut(id).err = Some("ECONNRESET");
    }
    let s = w.sk_mut(id);
    s.rcvq.clear();
    s.rcvq_skbs.clear();
    s.rmem_alloc = 0;
    s.ooo.clear();
    s.clear_write_queue();
    s.fin_queued = false;
    s.write_seq = s.snd_nxt;
    s.urg = Urg::None;
    s.snd_up = None;
    s.shutdown = 0;
    s.done = false;
    tcp_done_timers(w, id);
}

/// Stops every timer of a socket (`tcp_clear_xmit_timers`).
pub fn tcp_done_timers(w: &mut World, id: SockId) {
    let s = w.sk_mut(id);
    s.t_rto = None;
    s.t_tlp = None;
    s.t_probe = None;
    s.t_delack = None;
    s.t_keepalive = None;
    s.ack_pending = false;
}

/// `tcp_done`: the connection is over (after a reset, the last ACK, a
/// timeout).
pub fn tcp_done(w: &mut World, id: SockId) {
    tcp_done_state(w, id);
    let s = w.sk_mut(id);
    s.shutdown = SHUTDOWN_MASK;
    s.lingering_until = None;
}

fn tcp_done_state(w: &mut World, id: SockId) {
    w.set_state(id, State::Close);
    tcp_done_timers(w, id);
    // A request socket or an accepted-but-not-yet-accepted child leaves the
    // accept queue when it dies there.
    if let Some(p) = w.sk(id).parent {
        w.sk_mut(p).accept_q.retain(|&c| c != id);
    }
}

/// `tcp_time_wait`: replace the socket by a time-wait socket in `substate`
/// (FIN_WAIT2 or TIME_WAIT) for `timeo` (TIME_WAIT: 60 s).
pub fn tcp_time_wait(w: &mut World, id: SockId, substate: State, timeo: Time) {
    let now = w.now;
    let s = w.sk(id);
    let rcv_wnd = s.receive_window();
    let tw = Tw {
        host: s.host,
        sock: id,
        name: s.name.clone(),
        local_port: s.local_port,
        remote: s.remote.unwrap_or((0, 0)),
        substate,
        snd_nxt: s.snd_nxt,
        rcv_nxt: s.rcv_nxt,
        rcv_wnd,
        rcv_wscale: s.rcv_wscale,
        ts_ok: s.ts_ok,
        ts_recent: s.ts_recent,
        ts_offset: s.ts_offset,
        expires: now
            + if substate == State::TimeWait {
                TCP_TIMEWAIT_LEN
            } else {
                timeo
            },
        last_oow_ack: None,
    };
    // "tcp_set_state(sk, TCP_CLOSE)" happens in tcp_done; the trace shows
    // the move to the time-wait socket's substate the way /proc does.
    let from = w.sk(id).state;
    if substate == State::TimeWait {
        w.sk_mut(id).state = State::TimeWait;
        if from != State::TimeWait {
            w.record_state(id, from.name(), "TIME_WAIT");
        }
    }
    w.sk_mut(id).state = State::Close;
    tcp_done_timers(w, id);
    w.sk_mut(id).shutdown = SHUTDOWN_MASK;
    // __inet_twsk_schedule counts the socket when it is first scheduled:
    // TW for a real wait, TWKilled for one of 4 s or less.
    let h = tw.host;
    let len = tw.expires - now;
    w.tws.push(tw);
    w.count(h, if len > 4 * SEC { "TW" } else { "TWKilled" });
}
