//! Timers (net/ipv4/tcp_timer.c): each socket keeps absolute deadlines; the
//! world fires the ones that are due.

use super::close::{tcp_done, tcp_time_wait};
use super::output::{self, send_ack};
use super::sock::*;
use super::{World, timewait};

/// Fires every timer due at `w.now`, in socket order.
pub fn run_timers(w: &mut World) {
    let now = w.now;
    for i in 0..w.socks.len() {
        let id = SockId(i);
        if w.sk(id).t_delack.is_some_and(|t| t <= now) {
            delack_timer(w, id);
        }
        if w.sk(id).t_rto.is_some_and(|t| t <= now) {
            w.sk_mut(id).t_rto = None;
            retransmit_timer(w, id);
        }
        if w.sk(id).t_tlp.is_some_and(|t| t <= now) {
            w.sk_mut(id).t_tlp = None;
            if w.sk(id).state != State::Close {
                output::send_loss_probe(w, id);
            }
        }
        if w.sk(id).t_probe.is_some_and(|t| t <= now) {
            w.sk_mut(id).t_probe = None;
            probe_timer(w, id);
        }
        if w.sk(id).t_keepalive.is_some_and(|t| t <= now) {
            w.sk_mut(id).t_keepalive = None;
            keepalive_timer(w, id);
        }
    }
    timewait::expire(w);
}

/// `tcp_delack_timer_handler`.
fn delack_timer(w: &mut World, id: SockId) {
    let s = w.sk_mut(id);
    s.t_delack = None;
    if !s.ack_pending || s.state == State::Close {
        return;
    }
    if !s.pingpong {
        // "Delayed ACK missed: inflate ATO."
        s.ato = (s.ato << 1).min(s.rto);
    } else {
        // "Delayed ACK missed: leave pingpong mode and deflate ATO."
        s.pingpong = false;
        s.ato = TCP_ATO_MIN;
    }
    send_ack(w, id, "delayed ACK (tcp_delack_timer)");
}

/// `tcp_orphan_retries`: 0 in the sysctl means 8 while the peer is alive.
fn orphan_retries(w: &World, id: SockId, alive: bool) -> u32 {
    let r = w.hosts[w.sk(id).host].sysctl.tcp_orphan_retries;
    if r == 0 && alive { 8 } else { r }
}

/// `tcp_write_err`: give up on the connection (ETIMEDOUT, TCPAbortOnTimeout).
fn write_err(w: &mut World, id: SockId) {
    let h = w.sk(id).host;
    let s = w.sk_mut(id);
    s.err = Some("ETIMEDOUT");
    s.clear_write_queue();
    s.write_seq = s.snd_una;
    s.fin_queued = false;
    tcp_done(w, id);
    w.count(h, "TCPAbortOnTimeout");
}

/// `tcp_retransmit_timer` with `tcp_write_timeout`'s limits.
fn retransmit_timer(w: &mut World, id: SockId) {
    let now = w.now;
    let state = w.sk(id).state;
    if matches!(state, State::SynSent | State::SynRecv) {
        let sys = w.hosts[w.sk(id).host].sysctl.clone();
        let limit = if state == State::SynSent {
            sys.tcp_syn_retries
        } else {
            sys.tcp_synack_retries
        };
        if w.sk(id).syn_retries >= limit {
            if state == State::SynSent {
                write_err(w, id);
            } else {
                // The request socket expires silently.
                let s = w.sk_mut(id);
                s.t_rto = None;
                s.dead = true;
                tcp_done(w, id);
            }
            return;
        }
        w.sk_mut(id).syn_retries += 1;
        output::retransmit(w, id);
        let s = w.sk_mut(id);
        s.rto = (s.rto * 2).min(TCP_RTO_MAX);
        s.t_rto = Some(now + s.rto);
        return;
    }
    if !w.sk(id).in_flight() || state == State::Close {
        return;
    }
    let dead = w.sk(id).dead;
    let limit = if dead {
        let alive = w.sk(id).rto < TCP_RTO_MAX;
        orphan_retries(w, id, alive)
    } else {
        w.hosts[w.sk(id).host].sysctl.tcp_retries2
    };
    if w.sk(id).retransmits >= limit {
        write_err(w, id);
        return;
    }
    let s = w.sk_mut(id);
    s.retransmits += 1;
    s.backoff += 1;
    s.retrans_stamp.get_or_insert(now);
    output::retransmit(w, id);
    // inet_csk_reset_xmit_timer with the backed-off RTO.
    let s = w.sk_mut(id);
    s.rto = (s.rto * 2).min(TCP_RTO_MAX);
    s.t_rto = Some(now + s.rto);
}

/// `tcp_probe_timer`: zero-window probes, backing off from the RTO to 120 s.
fn probe_timer(w: &mut World, id: SockId) {
    let now = w.now;
    let s = w.sk(id);
    if s.in_flight() || !s.has_unsent() || s.state == State::Close {
        let s = w.sk_mut(id);
        s.probes_out = 0;
        return;
    }
    let sys = w.hosts[s.host].sysctl.clone();
    let mut max_probes = sys.tcp_retries2;
    let base = s.rto.max(TCP_RTO_MIN);
    if s.dead {
        let alive = (base << s.backoff.min(20)) < TCP_RTO_MAX;
        max_probes = orphan_retries(w, id, alive);
        if !alive && w.sk(id).backoff >= max_probes {
            write_err(w, id);
            return;
        }
    }
    if w.sk(id).probes_out >= max_probes {
        write_err(w, id);
        return;
    }
    let nth = w.sk(id).probes_sent + 1;
    w.sk_mut(id).probes_sent = nth;
    output::send_probe(w, id, nth);
    let s = w.sk_mut(id);
    if s.in_flight() || !s.has_unsent() {
        // tcp_send_probe0: new data went out; no more probing.
        s.probes_out = 0;
        s.backoff = 0;
        return;
    }
    s.probes_out += 1;
    if s.backoff < sys.tcp_retries2 {
        s.backoff += 1;
    }
    let when = (base << s.backoff.min(20)).min(TCP_RTO_MAX);
    s.t_probe = Some(now + when);
}

/// `tcp_keepalive_timer` for an orphan in FIN_WAIT2 whose fin time was
/// longer than TIME_WAIT: the rest is spent as a time-wait socket.
fn keepalive_timer(w: &mut World, id: SockId) {
    let s = w.sk(id);
    if s.state == State::FinWait2 && s.dead {
        if s.linger2 >= 0 {
            let tmo = super::close::tcp_fin_time(w, id) as i64 - TCP_TIMEWAIT_LEN as i64;
            if tmo > 0 {
                tcp_time_wait(w, id, State::FinWait2, tmo as Time);
                return;
            }
        }
        output::send_active_reset(
            w,
            id,
            "FIN_WAIT2 orphan timed out -> RST (tcp_keepalive_timer)",
        );
        tcp_done(w, id);
    }
}
