//! Closing: `__tcp_close` and everything it calls (net/ipv4/tcp.c), the
//! state setter every path goes through, and the end of a socket.
//!
//! **This is where close() decides between RST and FIN: see
//! [`tcp_close`].**

use super::mem::sock_rfree;
use super::output::{send_active_reset, send_fin};
use super::sock::*;
use super::timers::{self, clear_xmit_timers, reset_keepalive_timer};
use super::timewait::tcp_time_wait;
use super::{Ehash, Key4, PortOwner, TimerRef, World, listen};
use crate::engine::Policy;
use crate::vocab::{Counter, Errno, RstReason};

/// `tcp_set_state`: records the change (the tracepoint
/// `sock:inet_sock_set_state` fires even when the state stays the same)
/// and, on the way to CLOSE, takes the socket out of the established hash
/// and gives its port back unless the program bound it
/// (`SOCK_BINDPORT_LOCK`).
pub fn tcp_set_state(w: &mut World, id: SockId, state: State) {
    let old = w.sk(id).state;
    if state == State::Close {
        unhash(w, id);
        if !w.sk(id).bindport_locked {
            put_port(w, id);
        }
    }
    w.sk_mut(id).state = state;
    w.record_state(id, old, state);
}

/// `inet_unhash`: out of the established (or listening) hash.
fn unhash(w: &mut World, id: SockId) {
    let s = w.sk(id);
    if s.state == State::Listen {
        let k = (s.host, s.local_port);
        if w.lhash.get(&k) == Some(&id) {
            w.lhash.remove(&k);
        }
        return;
    }
    if let Some((rh, rp)) = s.remote {
        let key: Key4 = (s.host, s.local_port, rh, rp);
        if w.ehash.get(&key) == Some(&Ehash::Sock(id)) {
            w.ehash.remove(&key);
        }
    }
}

/// `inet_put_port`: the socket leaves its port's bind bucket.
pub fn put_port(w: &mut World, id: SockId) {
    let s = w.sk(id);
    let (h, port) = (s.host, s.local_port);
    if port == 0 {
        return;
    }
    if let Some(owners) = w.hosts[h].ports.get_mut(&port) {
        owners.retain(|o| *o != PortOwner::Sock(id));
        if owners.is_empty() {
            w.hosts[h].ports.remove(&port);
        }
    }
}

/// `tcp_done`: the connection is over (a reset, the last ACK, a timeout).
pub fn tcp_done(w: &mut World, id: SockId) {
    tcp_set_state(w, id, State::Close);
    done_rest(w, id);
}

/// `tcp_done` from `tcp_time_wait`: the full socket goes to CLOSE while a
/// time-wait socket takes the connection over; the move is recorded as
/// the time-wait socket's (see [`tcp_time_wait`]).
pub fn tcp_done_quiet(w: &mut World, id: SockId) {
    unhash(w, id);
    if !w.sk(id).bindport_locked {
        put_port(w, id);
    }
    w.sk_mut(id).state = State::Close;
    done_rest(w, id);
}

fn done_rest(w: &mut World, id: SockId) {
    clear_xmit_timers(w, id);
    let s = w.sk_mut(id);
    s.sk_shutdown = SHUTDOWN_MASK;
    if !s.dead {
        // sk_state_change
        s.wakeups += 1;
    } else {
        inet_csk_destroy_sock(w, id);
    }
}

/// `inet_csk_destroy_sock` (with `tcp_v4_destroy_sock`): an orphan in
/// CLOSE is freed: queues, timers, its port.
pub fn inet_csk_destroy_sock(w: &mut World, id: SockId) {
    clear_xmit_timers(w, id);
    timers::delete_keepalive_timer(w, id);
    tcp_write_queue_purge(w, id);
    let s = w.sk_mut(id);
    super::input::rx_queue_purge(s);
    super::mem::sk_mem_reclaim(s);
    put_port(w, id);
    // A child that dies in the accept queue leaves it.
    if let Some(p) = w.sk(id).parent {
        w.sk_mut(p).accept_queue.retain(|&c| c != id);
        w.sk_mut(id).parent = None;
    }
}

/// `tcp_write_queue_purge`: every unsent and unacknowledged skb is freed.
pub fn tcp_write_queue_purge(w: &mut World, id: SockId) {
    let s = w.sk_mut(id);
    let wq = std::mem::take(&mut s.write_queue);
    for skb in wq {
        super::mem::tcp_wmem_free_skb(s, skb.truesize);
    }
    let rq = std::mem::take(&mut s.rtx_queue);
    for skb in rq {
        super::mem::tcp_wmem_free_skb(s, skb.truesize);
    }
    // tcp_clear_all_retrans_hints
    s.retransmit_hint = None;
    s.highest_sack = None;
    s.packets_out = 0;
    s.backoff = 0;
}

/// `tcp_close_state`: the state after close() or shutdown(SHUT_WR) (the
/// kernel's `new_state[]` table) and whether a FIN must go out
/// (`TCP_ACTION_FIN`).
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
        // Only request sockets are in NEW_SYN_RECV; the table says CLOSE.
        State::NewSynRecv => (State::Close, false),
    };
    tcp_set_state(w, id, next);
    fin
}

/// `tcp_fin_time`: how long an orphan may sit in FIN_WAIT2 — TCP_LINGER2,
/// else `tcp_fin_timeout` — at least 3.5 RTO.
pub fn tcp_fin_time(w: &World, id: SockId) -> Jiffies {
    let s = w.sk(id);
    let mut fin_timeout = if s.linger2 != 0 {
        s.linger2
    } else {
        w.sys(id).tcp_fin_timeout as i64
    };
    let rto = s.rto as i64;
    let floor = (rto << 2) - (rto >> 1);
    if fin_timeout < floor {
        fin_timeout = floor;
    }
    fin_timeout as Jiffies
}

/// `tcp_shutdown`: the FIN of shutdown(SHUT_WR).
pub fn tcp_shutdown(w: &mut World, id: SockId, how: u8) {
    if how & SEND_SHUTDOWN == 0 {
        return;
    }
    // "If we've already sent a FIN, or it's a closed state, skip this."
    let st = w.sk(id).state;
    if st.f() & (TCPF_ESTABLISHED | TCPF_SYN_SENT | TCPF_CLOSE_WAIT) != 0 {
        let why = if st == State::CloseWait {
            "FIN: shutdown(SHUT_WR) after the peer's FIN (tcp_shutdown -> tcp_close_state)"
        } else {
            "FIN: shutdown(SHUT_WR) (tcp_shutdown -> tcp_close_state)"
        };
        if tcp_close_state(w, id) {
            send_fin(w, id, why);
        }
    }
}

/// What close() did, for the note beside the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseOutcome {
    /// LISTEN: the children in the accept queue were reset.
    Listener,
    /// Already CLOSE (a reset came earlier): nothing on the wire.
    AlreadyClosed,
    /// TCP_REPAIR: a silent disconnect.
    Repair,
    /// RFC 2525 2.17: unread data, RST.
    UnreadData(u32),
    /// SO_LINGER {1, 0}: abortive close.
    LingerZero,
    /// The normal close: FIN (or nothing if the state needs none).
    Fin,
}

/// `__tcp_close` (net/ipv4/tcp.c) up to `sk_stream_wait_close`, branch by
/// branch. Returns what it did and whether the caller must linger
/// (SO_LINGER {1, N} with the FIN not yet acknowledged); the rest,
/// [`finish_close`], runs when the lingering ends.
pub fn tcp_close(w: &mut World, id: SockId, linger: bool) -> (CloseOutcome, bool) {
    let h = w.sk(id).host;
    // 1. "sk->sk_shutdown = SHUTDOWN_MASK"
    w.sk_mut(id).sk_shutdown = SHUTDOWN_MASK;

    // 2. A listener: reset the children in its accept queue.
    if w.sk(id).state == State::Listen {
        tcp_set_state(w, id, State::Close);
        inet_csk_listen_stop(w, id);
        finish_close(w, id);
        return (CloseOutcome::Listener, false);
    }

    // 3. "We need to flush the recv. buffs." Every skb is freed; data was
    //    unread if one ends after copied_seq (its FIN not counted). An
    //    urgent byte read with MSG_OOB still counts: recv(MSG_OOB) does
    //    not advance copied_seq.
    let always_fin = w.policy == Policy::AlwaysFin;
    let unread = w.sk(id).unread();
    let data_was_unread = {
        let s = w.sk(id);
        s.receive_queue.iter().any(|skb| {
            let end = skb.end_seq.wrapping_sub(skb.fin() as u32);
            after(end, s.copied_seq)
        })
    };
    if !always_fin {
        let s = w.sk_mut(id);
        let q = std::mem::take(&mut s.receive_queue);
        for skb in q {
            sock_rfree(s, skb.truesize);
        }
    }
    // --policy always-fin models a stack without the rule: it neither
    // resets nor frees the unread data, so its window stays shut (what
    // Linux 2.0 did, and what smoltcp does).

    let outcome;
    if w.sk(id).state == State::Close {
        // 4. "If socket has been already reset (e.g. in tcp_reset()) -
        //    kill it."
        finish_close(w, id);
        return (CloseOutcome::AlreadyClosed, false);
    } else if w.sk(id).repair {
        // 5. TCP_REPAIR: tcp_disconnect, which sends nothing in repair mode.
        tcp_disconnect(w, id);
        outcome = CloseOutcome::Repair;
    } else if data_was_unread && !always_fin {
        // 6. "As outlined in RFC 2525, section 2.17, we send a RST here
        //    because data was lost."
        w.count(h, Counter::TCPAbortOnClose);
        tcp_set_state(w, id, State::Close);
        let why = format!(
            "close() with {unread} unread byte{} -> RST (RFC 2525 2.17, TCPAbortOnClose)",
            if unread == 1 { "" } else { "s" }
        );
        send_active_reset(w, id, &why, RstReason::TcpAbortOnClose);
        outcome = CloseOutcome::UnreadData(unread);
    } else if w.sk(id).linger == Some(0) {
        // 7. "Check zero linger _after_ checking for unread data."
        w.why_ctx = Some(
            "close() with SO_LINGER {1, 0}: abortive close -> RST (tcp_disconnect, TCPAbortOnData)"
                .into(),
        );
        tcp_disconnect(w, id);
        w.why_ctx = None;
        w.count(h, Counter::TCPAbortOnData);
        outcome = CloseOutcome::LingerZero;
    } else {
        // 8. tcp_close_state, then the FIN after any queued data.
        let why = if w.sk(id).state == State::CloseWait {
            "FIN: close() after the peer's FIN (tcp_close_state: CLOSE_WAIT -> LAST_ACK)"
        } else if always_fin && data_was_unread {
            "FIN: close() with unread data, the RFC 2525 rule switched off (--policy always-fin)"
        } else {
            "FIN: close() with nothing unread (tcp_close_state)"
        };
        if tcp_close_state(w, id) {
            send_fin(w, id, why);
        }
        outcome = CloseOutcome::Fin;
    }

    // 9. sk_stream_wait_close: with SO_LINGER {1, N} (and not PF_EXITING)
    //    the caller sleeps while the state is FIN_WAIT1, CLOSING or
    //    LAST_ACK.
    let must_wait = linger && sk_stream_closing(w.sk(id));
    if !must_wait {
        finish_close(w, id);
    }
    (outcome, must_wait)
}

/// `sk_stream_closing`.
pub fn sk_stream_closing(s: &Sock) -> bool {
    s.state.f() & (TCPF_FIN_WAIT1 | TCPF_CLOSING | TCPF_LAST_ACK) != 0
}

/// `__tcp_close` from `adjudge_to_death`: orphan the socket, then start
/// the FIN_WAIT2 timer (10), or free it.
pub fn finish_close(w: &mut World, id: SockId) {
    let h = w.sk(id).host;
    let state = w.sk(id).state;
    sock_orphan(w, id);
    // "Have we already been destroyed by a softirq or backlog?"
    if state != State::Close && w.sk(id).state == State::Close {
        return;
    }
    // 10. An orphan in FIN_WAIT2.
    if w.sk(id).state == State::FinWait2 {
        if w.sk(id).linger2 < 0 {
            tcp_set_state(w, id, State::Close);
            send_active_reset(
                w,
                id,
                "orphan in FIN_WAIT2 with TCP_LINGER2 < 0 -> RST (TCPAbortOnLinger)",
                RstReason::TcpAbortOnLinger,
            );
            w.count(h, Counter::TCPAbortOnLinger);
        } else {
            let tmo = tcp_fin_time(w, id);
            if tmo > TCP_TIMEWAIT_LEN {
                reset_keepalive_timer(w, id, tmo - TCP_TIMEWAIT_LEN);
            } else {
                tcp_time_wait(w, id, State::FinWait2, tmo);
                return;
            }
        }
    }
    // 11. tcp_check_oom: the model never runs out of orphans or memory.
    if w.sk(id).state == State::Close {
        inet_csk_destroy_sock(w, id);
    }
    // "Otherwise, socket is reprieved until protocol close."
}

/// `sock_orphan`: the program no longer holds the socket.
pub fn sock_orphan(w: &mut World, id: SockId) {
    let s = w.sk_mut(id);
    s.dead = true;
    s.has_socket = false;
    s.lingering_until = None;
    // A time-wait socket that carried this descriptor's connection no
    // longer has a descriptor to report to.
    for t in w.tws.iter_mut().flatten() {
        if t.sock == Some(id) {
            t.sock = None;
        }
    }
}

/// `inet_csk_listen_stop`: every child in the accept queue is
/// disconnected (`inet_child_forget`: RST in the states that need one)
/// and freed. Requests still in the SYN queue stay in the hash; the next
/// segment or timer finds the listener gone and drops them.
pub fn inet_csk_listen_stop(w: &mut World, lid: SockId) {
    let q: Vec<SockId> = w.sk_mut(lid).accept_queue.drain(..).collect();
    for c in q {
        w.sk_mut(c).parent = None;
        w.why_ctx = Some(
            "the listener was closed with this connection in its accept queue -> RST (inet_csk_listen_stop)"
                .into(),
        );
        tcp_disconnect(w, c);
        w.why_ctx = None;
        sock_orphan(w, c);
        inet_csk_destroy_sock(w, c);
    }
    let _ = listen::reqsk_queue_drop;
}

/// `tcp_need_reset`.
fn tcp_need_reset(st: State) -> bool {
    st.f() & (TCPF_ESTABLISHED | TCPF_CLOSE_WAIT | TCPF_FIN_WAIT1 | TCPF_FIN_WAIT2 | TCPF_SYN_RECV)
        != 0
}

/// `tcp_disconnect`: abort the connection and make the socket like new
/// (it keeps its bound port; `write_seq` moves past anything the old
/// connection could have used).
pub fn tcp_disconnect(w: &mut World, id: SockId) {
    let old = w.sk(id).state;
    if old != State::Close {
        tcp_set_state(w, id, State::Close);
    }
    // "ABORT function of RFC793"
    if old == State::Listen {
        inet_csk_listen_stop(w, id);
    } else if w.sk(id).repair {
        w.sk_mut(id).sk_err = Some(Errno::ECONNABORTED);
    } else if tcp_need_reset(old) {
        let why = w
            .why_ctx
            .clone()
            .unwrap_or_else(|| "abortive close -> RST (tcp_disconnect)".into());
        w.why_ctx = None;
        send_active_reset(w, id, &why, RstReason::TcpState);
        w.sk_mut(id).sk_err = Some(Errno::ECONNRESET);
    } else if w.sk(id).snd_nxt != w.sk(id).write_seq
        && old.f() & (TCPF_CLOSING | TCPF_LAST_ACK) != 0
    {
        // "The last check adjusts for discrepancy of Linux wrt. RFC
        // states": a FIN or data not yet sent.
        send_active_reset(
            w,
            id,
            "disconnect with a FIN or data not yet sent -> RST (tcp_disconnect)",
            RstReason::TcpDisconnectWithData,
        );
        w.sk_mut(id).sk_err = Some(Errno::ECONNRESET);
    } else if old == State::SynSent {
        w.sk_mut(id).sk_err = Some(Errno::ECONNRESET);
    }
    clear_xmit_timers(w, id);
    timers::delete_keepalive_timer(w, id);
    let s = w.sk_mut(id);
    let q = std::mem::take(&mut s.receive_queue);
    for skb in q {
        sock_rfree(s, skb.truesize);
    }
    s.copied_seq = s.rcv_nxt;
    s.urg_data = 0;
    tcp_write_queue_purge(w, id);
    let s = w.sk_mut(id);
    let ofo = std::mem::take(&mut s.ofo);
    for skb in ofo {
        sock_rfree(s, skb.truesize);
    }
    super::mem::sk_mem_reclaim(s);
    s.remote = None; // inet_dport = 0
    s.sk_shutdown = 0;
    s.done = false;
    s.srtt_us = 0;
    s.mdev_us = jiffies_to_usecs(TCP_TIMEOUT_INIT) as u32;
    s.rcv_rtt_last_tsecr = 0;
    let mut seq = s.write_seq.wrapping_add(s.max_window).wrapping_add(2);
    if seq == 0 {
        seq = 1;
    }
    s.write_seq = seq;
    s.backoff = 0;
    s.probes_out = 0;
    s.probes_tstamp = 0;
    s.rto = TCP_TIMEOUT_INIT;
    s.rto_min = TCP_RTO_MIN;
    s.delack_max = TCP_DELACK_MAX;
    s.snd_ssthresh = TCP_INFINITE_SSTHRESH;
    s.snd_cwnd = TCP_INIT_CWND;
    s.snd_cwnd_cnt = 0;
    s.is_cwnd_limited = false;
    s.max_packets_out = 0;
    s.window_clamp = 0;
    s.delivered = 0;
    s.ca = Cubic::default();
    s.ca_state = CaState::Open;
    s.is_sack_reneg = false;
    super::recovery::clear_retrans(s);
    s.total_retrans = 0;
    // inet_csk_delack_init
    s.ack_pending = 0;
    s.ack_quick = 0;
    s.ack_pingpong = 0;
    s.ack_ato = 0;
    s.ack_timeout = 0;
    s.ack_lrcvtime = 0;
    s.ack_last_seg_size = 0;
    s.ack_rcv_mss = TCP_MIN_MSS;
    // memset(&tp->rx_opt, 0, ..)
    s.ts_recent_stamp = 0;
    s.ts_recent = 0;
    s.rcv_tsval = 0;
    s.rcv_tsecr = 0;
    s.saw_tstamp = false;
    s.tstamp_ok = false;
    s.dsack = false;
    s.wscale_ok = false;
    s.sack_ok = false;
    s.snd_wscale = 0;
    s.rcv_wscale = 0;
    s.num_sacks = 0;
    s.user_mss = 0;
    s.mss_clamp = 0;
    s.compressed_ack = 0;
    s.segs_in = 0;
    s.segs_out = 0;
    s.bytes_sent = 0;
    s.bytes_acked = 0;
    s.bytes_received = 0;
    s.bytes_retrans = 0;
    s.data_segs_in = 0;
    s.data_segs_out = 0;
    s.duplicate_sack = SackBlock::default();
    s.dsack_dups = 0;
    s.reord_seen = 0;
    s.retrans_out = 0;
    s.sacked_out = 0;
    s.tlp_high_seq = 0;
    s.last_oow_ack_time = 0;
    s.app_limited = u32::MAX;
    s.rate_app_limited = true;
    s.rack = Rack {
        reo_wnd_steps: 1,
        ..Rack::default()
    };
    s.rcv_ooopack = 0;
    // sk_error_report
    s.wakeups += 1;
    let _ = TimerRef::Xmit;
}
