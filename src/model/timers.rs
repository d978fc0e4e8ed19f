//! Timers: net/ipv4/tcp_timer.c, the xmit-timer helpers of
//! include/net/tcp.h and include/net/inet_connection_sock.h, and the timer
//! wheel's rounding (kernel/time/timer.c).
//!
//! A socket has three kernel timers — `icsk_retransmit_timer` (RTO, zero
//! window probe, tail loss probe, RACK reordering timeout: which one is in
//! `icsk_pending`), `icsk_delack_timer` and `sk_timer` (keepalive, and the
//! FIN_WAIT2 timer of an orphan) — and a time-wait or request socket has
//! one each. The world keeps them in a heap ([`World::arm`]); this file
//! says when they are due and what they do when they fire.

use super::close::tcp_done;
use super::output::{self, send_ack};
use super::sock::*;
use super::{TimerRef, World, listen, recovery, timewait};
use crate::vocab::{Counter, Errno, RstReason};

/// When the timer wheel runs a timer armed at `now_j` to expire at
/// `expires_j` (`calc_wheel_index`/`calc_index`): a timer lands in the
/// level whose range covers its delta, and is rounded up to that level's
/// granularity — "Round up with level granularity to prevent this [early
/// expiry]" — so it runs at `((expires >> shift) + 1) << shift`. Level `n`
/// covers deltas below `63 << 3n` with a granularity of `8^n` jiffies. An
/// expiry already passed runs at the next tick.
pub fn wheel_fire_jiffies(now_j: Jiffies, expires_j: Jiffies) -> Jiffies {
    if expires_j <= now_j {
        return now_j + 1;
    }
    let delta = expires_j - now_j;
    // LVL_START(n) = (LVL_SIZE - 1) << ((n - 1) * LVL_CLK_SHIFT)
    let mut lvl = 0u32;
    while lvl < 8 && delta >= 63u64 << (3 * lvl) {
        lvl += 1;
    }
    let shift = 3 * lvl;
    ((expires_j >> shift) + 1) << shift
}

/// [`wheel_fire_jiffies`] in microseconds of the model's clock.
pub fn wheel_fire_us(now_j: Jiffies, expires_j: Jiffies) -> Time {
    jiffies_to_usecs(wheel_fire_jiffies(now_j, expires_j))
}

/// `inet_csk_reset_xmit_timer` for the retransmit timer's events.
pub fn reset_xmit_timer_max(
    w: &mut World,
    id: SockId,
    what: XmitTimer,
    when: Jiffies,
    max_when: Jiffies,
) {
    let when = when.min(max_when);
    let now_j = w.jiffies();
    let s = w.sk_mut(id);
    s.pending = Some(what);
    s.timeout = now_j + when;
    let at = wheel_fire_us(now_j, s.timeout);
    w.arm(TimerRef::Xmit(id.0), at);
}

/// `tcp_reset_xmit_timer`: capped at `tcp_rto_max`. The pacing delay it
/// may add (`tcp_pacing_delay`) is always zero here: sockets of the
/// linux engine are not paced (CUBIC, no fq qdisc), so `tcp_wstamp_ns`
/// never runs ahead of the clock.
pub fn reset_xmit_timer(w: &mut World, id: SockId, what: XmitTimer, when: Jiffies) {
    let max = w.sk(id).rto_max;
    reset_xmit_timer_max(w, id, what, when, max);
}

/// `inet_csk_clear_xmit_timer(sk, ICSK_TIME_RETRANS)`: only
/// `icsk_pending` is cleared (INET_CSK_CLEAR_TIMERS is 0), so a timer that
/// still fires finds nothing to do; the model drops it at once.
pub fn clear_xmit_timer(w: &mut World, id: SockId) {
    w.sk_mut(id).pending = None;
    w.disarm(TimerRef::Xmit(id.0));
}

/// `inet_csk_clear_xmit_timers`: every timer of the socket.
pub fn clear_xmit_timers(w: &mut World, id: SockId) {
    let s = w.sk_mut(id);
    s.pending = None;
    s.ack_pending = 0;
    w.disarm(TimerRef::Xmit(id.0));
    w.disarm(TimerRef::Delack(id.0));
}

/// `tcp_rto_delta_us`: how long until the RTO of the head of the
/// retransmit queue would fire.
pub fn rto_delta_us(w: &World, id: SockId) -> i64 {
    let s = w.sk(id);
    let rto = jiffies_to_usecs(s.rto) as i64;
    match s.rtx_queue.front() {
        Some(skb) => skb.mstamp as i64 + rto - w.now as i64,
        None => rto,
    }
}

/// `tcp_rearm_rto`.
pub fn rearm_rto(w: &mut World, id: SockId) {
    if w.sk(id).packets_out == 0 {
        clear_xmit_timer(w, id);
        return;
    }
    let s = w.sk(id);
    let mut rto = s.rto;
    // "Offset the time elapsed after installing regular RTO"
    if matches!(
        s.pending,
        Some(XmitTimer::ReoTimeout) | Some(XmitTimer::LossProbe)
    ) {
        let delta_us = rto_delta_us(w, id).max(1);
        rto = usecs_to_jiffies(delta_us as u64);
    }
    reset_xmit_timer(w, id, XmitTimer::Retrans, rto);
}

/// `tcp_set_xmit_timer`: a loss probe if one can be scheduled, else the
/// RTO.
pub fn set_xmit_timer(w: &mut World, id: SockId) {
    if !output::schedule_loss_probe(w, id, true) {
        rearm_rto(w, id);
    }
}

/// `tcp_check_probe_timer`: unsent data and nothing in flight means the
/// window is shut; start probing it.
pub fn check_probe_timer(w: &mut World, id: SockId) {
    let s = w.sk(id);
    if s.packets_out == 0 && s.pending.is_none() {
        let base = s.probe0_base();
        reset_xmit_timer(w, id, XmitTimer::Probe0, base);
    }
}

/// `tcp_reset_keepalive_timer`: `sk_timer` at jiffies + `len`.
pub fn reset_keepalive_timer(w: &mut World, id: SockId, len: Jiffies) {
    let now_j = w.jiffies();
    w.sk_mut(id).sk_timer = Some(now_j + len);
    let at = wheel_fire_us(now_j, now_j + len);
    w.arm(TimerRef::Keepalive(id.0), at);
}

/// `tcp_delete_keepalive_timer`.
pub fn delete_keepalive_timer(w: &mut World, id: SockId) {
    w.sk_mut(id).sk_timer = None;
    w.disarm(TimerRef::Keepalive(id.0));
}

/// `inet_csk_reset_xmit_timer(sk, ICSK_TIME_DACK, when, ..)`.
pub fn reset_delack_timer(w: &mut World, id: SockId, when: Jiffies) {
    let now_j = w.jiffies();
    let s = w.sk_mut(id);
    s.ack_pending |= ICSK_ACK_TIMER;
    s.ack_timeout = now_j + when;
    let at = wheel_fire_us(now_j, s.ack_timeout);
    w.arm(TimerRef::Delack(id.0), at);
}

/// Runs a timer that came due.
pub fn fire(w: &mut World, t: TimerRef) {
    match t {
        TimerRef::Xmit(i) => write_timer_handler(w, SockId(i)),
        TimerRef::Delack(i) => delack_timer_handler(w, SockId(i)),
        TimerRef::Keepalive(i) => keepalive_timer(w, SockId(i)),
        TimerRef::Tw(i) => timewait::tw_timer_handler(w, i),
        TimerRef::Req(i) => listen::reqsk_timer_handler(w, i),
    }
}

/// `tcp_write_timer_handler`.
fn write_timer_handler(w: &mut World, id: SockId) {
    let s = w.sk(id);
    if matches!(s.state, State::Close | State::Listen) {
        return;
    }
    let Some(event) = s.pending else { return };
    if s.timeout > w.jiffies() {
        // "time_after(icsk_timeout(icsk), jiffies)": re-arm.
        let at = wheel_fire_us(w.jiffies(), s.timeout);
        w.arm(TimerRef::Xmit(id.0), at);
        return;
    }
    match event {
        XmitTimer::ReoTimeout => recovery::rack_reo_timeout(w, id),
        XmitTimer::LossProbe => output::send_loss_probe(w, id),
        XmitTimer::Retrans => {
            w.sk_mut(id).pending = None;
            retransmit_timer(w, id);
        }
        XmitTimer::Probe0 => {
            w.sk_mut(id).pending = None;
            probe_timer(w, id);
        }
    }
}

/// `tcp_delack_timer_handler`.
fn delack_timer_handler(w: &mut World, id: SockId) {
    let thresh = w.sys(id).tcp_pingpong_thresh;
    let now_j = w.jiffies();
    let s = w.sk_mut(id);
    if matches!(s.state, State::Close | State::Listen) {
        return;
    }
    if s.ack_pending & ICSK_ACK_TIMER == 0 {
        return;
    }
    if s.ack_timeout > now_j {
        let at = wheel_fire_us(now_j, s.ack_timeout);
        w.arm(TimerRef::Delack(id.0), at);
        return;
    }
    s.ack_pending &= !ICSK_ACK_TIMER;
    if s.ack_scheduled() {
        if !s.in_pingpong_mode(thresh) {
            // "Delayed ACK missed: inflate ATO."
            s.ack_ato = (s.ack_ato << 1).min(s.rto);
        } else {
            // "Delayed ACK missed: leave pingpong mode and deflate ATO."
            s.ack_pingpong = 0;
            s.ack_ato = TCP_ATO_MIN;
        }
        let h = s.host;
        send_ack(w, id, "delayed ACK (tcp_delack_timer)");
        w.count(h, Counter::DelayedACKs);
    }
}

/// `tcp_write_err`: give up on the connection.
fn write_err(w: &mut World, id: SockId) {
    let err = w.sk(id).sk_err_soft.unwrap_or(Errno::ETIMEDOUT);
    let h = w.sk(id).host;
    super::input::tcp_done_with_error(w, id, err);
    w.count(h, Counter::TCPAbortOnTimeout);
}

/// `tcp_orphan_retries`: 0 in the sysctl means 8 while the peer is alive
/// ("8 corresponds to >100 seconds with minimal RTO of 200msec").
fn orphan_retries(w: &World, id: SockId, alive: bool) -> u32 {
    let mut retries = w.sys(id).tcp_orphan_retries;
    if w.sk(id).sk_err_soft.is_some() && !alive {
        retries = 0;
    }
    if retries == 0 && alive {
        retries = 8;
    }
    retries
}

/// `tcp_model_timeout`, in ms.
fn model_timeout(s: &Sock, boundary: u32, rto_base: Jiffies) -> u64 {
    let linear_backoff_thresh = 63 - (s.rto_max / rto_base).max(1).leading_zeros();
    let timeout = if boundary <= linear_backoff_thresh {
        ((2u64 << boundary) - 1) * rto_base
    } else {
        ((2u64 << linear_backoff_thresh) - 1) * rto_base
            + (boundary - linear_backoff_thresh) as u64 * s.rto_max
    };
    jiffies_to_msecs(timeout)
}

/// `retransmits_timed_out`: has the connection retransmitted for as long
/// as `boundary` backed-off retransmissions from TCP_RTO_MIN would take?
fn retransmits_timed_out(w: &World, id: SockId, boundary: u32, timeout_ms: u64) -> bool {
    let s = w.sk(id);
    if s.retransmits == 0 {
        return false;
    }
    let start_ts = s.retrans_stamp;
    let timeout = if timeout_ms == 0 {
        let rto_base = if s.state.f() & (TCPF_SYN_SENT | TCPF_SYN_RECV) != 0 {
            TCP_TIMEOUT_INIT // tcp_timeout_init
        } else {
            TCP_RTO_MIN
        };
        model_timeout(s, boundary, rto_base)
    } else {
        timeout_ms
    };
    (w.ts_clock()
        .wrapping_sub(start_ts)
        .wrapping_sub(timeout as u32) as i32)
        >= 0
}

/// `tcp_write_timeout`: true when the connection was given up.
fn write_timeout(w: &mut World, id: SockId) -> bool {
    let sys = w.sys(id).clone();
    let s = w.sk(id);
    let mut expired = false;
    let retry_until;
    if s.state.f() & (TCPF_SYN_SENT | TCPF_SYN_RECV) != 0 {
        retry_until = if s.syn_retries != 0 {
            s.syn_retries as u32
        } else {
            sys.tcp_syn_retries
        };
        let mut max_retransmits = retry_until;
        if s.state == State::SynSent {
            max_retransmits += sys.tcp_syn_linear_timeouts;
        }
        expired = s.retransmits as u32 >= max_retransmits;
    } else {
        // retransmits_timed_out(.., tcp_retries1, 0): black hole detection
        // and dst negative advice; tcp_mtu_probing is 0, so nothing here.
        let mut r = sys.tcp_retries2;
        if s.dead {
            let alive = s.rto < s.rto_max;
            r = orphan_retries(w, id, alive);
            // tcp_out_of_resources: tcp_check_oom never finds too many
            // orphans or memory pressure here.
        }
        retry_until = r;
    }
    if !expired {
        let user_timeout = w.sk(id).user_timeout as u64;
        expired = retransmits_timed_out(w, id, retry_until, user_timeout);
    }
    if expired {
        // "Has it gone just too far?"
        write_err(w, id);
        return true;
    }
    false
}

/// `tcp_update_rto_stats`.
fn update_rto_stats(w: &mut World, id: SockId) {
    let ts = w.ts_clock();
    let s = w.sk_mut(id);
    if s.retransmits == 0 {
        s.total_rto_recoveries += 1;
        s.rto_stamp = ts;
    }
    s.retransmits = s.retransmits.saturating_add(1);
    s.total_rto += 1;
}

/// `tcp_rtx_probe0_timed_out`.
fn rtx_probe0_timed_out(w: &World, id: SockId, rtx_delta_ms: u32) -> bool {
    let s = w.sk(id);
    let mut timeout = (s.rto_max * 2) as i64;
    if s.user_timeout != 0 {
        // "If user application specified a TCP_USER_TIMEOUT, it does not
        // want win 0 packets to 'reset the timer' while retransmits are
        // not making progress."
        if rtx_delta_ms > s.user_timeout {
            return true;
        }
        timeout = timeout.min(msecs_to_jiffies(s.user_timeout as u64) as i64);
    }
    // "timer interrupt might have been delayed by at least one jiffy, and
    // tp->rcv_tstamp might very well have been written recently."
    let rcv_delta = s.timeout as i64 - s.rcv_tstamp as i64;
    if rcv_delta <= timeout {
        return false;
    }
    msecs_to_jiffies(rtx_delta_ms as u64) as i64 > timeout
}

/// `tcp_retransmit_timer`.
fn retransmit_timer(w: &mut World, id: SockId) {
    if w.sk(id).packets_out == 0 || w.sk(id).rtx_queue.is_empty() {
        return;
    }
    let h = w.sk(id).host;
    let s = w.sk(id);
    if s.snd_wnd == 0 && !s.dead && s.state.f() & (TCPF_SYN_SENT | TCPF_SYN_RECV) == 0 {
        // "Receiver dastardly shrinks window. Our retransmits become zero
        // probes, but we should not timeout this connection."
        let since = if s.retrans_stamp != 0 {
            s.retrans_stamp
        } else {
            (s.rtx_queue[0].mstamp / 1000) as u32
        };
        let rtx_delta = w.ts_clock().wrapping_sub(since);
        if rtx_probe0_timed_out(w, id, rtx_delta) {
            write_err(w, id);
            return;
        }
        recovery::enter_loss(w, id);
        w.why_ctx = Some(
            "retransmission into a zero window: the RTO fired, the window is shut, so this serves as a window probe (tcp_retransmit_timer)".into(),
        );
        output::retransmit_skb(w, id, 0, 1);
        w.why_ctx = None;
        reset_timer_backoff(w, id);
        return;
    }
    w.count(h, Counter::TCPTimeouts);
    if write_timeout(w, id) {
        return;
    }
    if w.sk(id).retransmits == 0 {
        let s = w.sk(id);
        let mib = match s.ca_state {
            CaState::Recovery => Some(if s.is_sack() {
                Counter::TCPSackRecoveryFail
            } else {
                Counter::TCPRenoRecoveryFail
            }),
            CaState::Loss => Some(Counter::TCPLossFailures),
            CaState::Disorder => Some(if s.is_sack() {
                Counter::TCPSackFailures
            } else {
                Counter::TCPRenoFailures
            }),
            _ if s.sacked_out > 0 => Some(if s.is_sack() {
                Counter::TCPSackFailures
            } else {
                Counter::TCPRenoFailures
            }),
            _ => None,
        };
        if let Some(m) = mib {
            w.count(h, m);
        }
    }
    let rto_ms = jiffies_to_msecs(w.sk(id).rto);
    recovery::enter_loss(w, id);
    update_rto_stats(w, id);
    let nth = w.sk(id).retransmits;
    let s = w.sk(id);
    let what = match s.rtx_queue.front() {
        Some(k) if k.fin() && k.is_empty() => ": the FIN",
        Some(k) if k.fin() => ": data + FIN",
        _ => "",
    };
    w.why_ctx = Some(match s.state {
        State::SynSent => format!(
            "SYN retransmission #{nth}: no SYN-ACK within {rto_ms} ms (tcp_retransmit_timer)"
        ),
        _ => format!(
            "retransmission #{nth} after an RTO of {rto_ms} ms{what} (tcp_retransmit_timer)"
        ),
    });
    output::retransmit_skb(w, id, 0, 1);
    w.why_ctx = None;
    reset_timer_backoff(w, id);
}

/// `tcp_retransmit_timer`'s `out_reset_timer`: back the RTO off (except
/// for the first `tcp_syn_linear_timeouts` SYN retransmissions) and re-arm.
fn reset_timer_backoff(w: &mut World, id: SockId) {
    let linear = w.sys(id).tcp_syn_linear_timeouts;
    let s = w.sk_mut(id);
    // tcp_thin_linear_timeouts is 0 and TCP_THIN_LINEAR_TIMEOUTS unset.
    if s.state != State::SynSent || s.total_rto as u32 > linear {
        s.backoff = s.backoff.saturating_add(1);
        s.rto = (s.rto << 1).min(s.rto_max);
    }
    let rto = clamp_rto_to_user_timeout(w, id);
    reset_xmit_timer(w, id, XmitTimer::Retrans, rto);
}

/// `tcp_clamp_rto_to_user_timeout`: with TCP_USER_TIMEOUT the next RTO
/// fires no later than the user timeout, measured from the first
/// retransmission (`retrans_stamp`, ms).
fn clamp_rto_to_user_timeout(w: &World, id: SockId) -> Jiffies {
    let s = w.sk(id);
    if s.user_timeout == 0 {
        return s.rto;
    }
    let elapsed = w.ts_clock().wrapping_sub(s.retrans_stamp);
    let remaining = s.user_timeout.wrapping_sub(elapsed) as i32;
    if remaining <= 0 {
        return 1; // "user timeout has passed; fire ASAP"
    }
    s.rto.min(msecs_to_jiffies(remaining as u64))
}

/// `tcp_clamp_probe0_to_user_timeout`: a zero-window probe timer never
/// runs past TCP_USER_TIMEOUT counted from the first probe.
pub fn clamp_probe0_to_user_timeout(w: &World, id: SockId, when: Jiffies) -> Jiffies {
    let s = w.sk(id);
    if s.user_timeout == 0 || s.probes_tstamp == 0 {
        return when;
    }
    let elapsed = w.jiffies().saturating_sub(s.probes_tstamp);
    let remaining = msecs_to_jiffies(s.user_timeout as u64)
        .saturating_sub(elapsed)
        .max(TCP_TIMEOUT_MIN);
    remaining.min(when)
}

/// `tcp_probe_timer`.
fn probe_timer(w: &mut World, id: SockId) {
    let now_j = w.jiffies();
    let s = w.sk_mut(id);
    if s.packets_out > 0 || s.write_queue.is_empty() {
        s.probes_out = 0;
        s.probes_tstamp = 0;
        return;
    }
    // "RFC 1122 4.2.2.17 requires the sender to stay open indefinitely as
    // long as the receiver continues to respond probes ... But if the
    // socket is orphaned ... we kill the socket when the retry count and
    // the time exceeds the corresponding system limit."
    if s.probes_tstamp == 0 {
        s.probes_tstamp = now_j.max(1);
    } else if s.user_timeout != 0
        && now_j.saturating_sub(s.probes_tstamp) >= msecs_to_jiffies(s.user_timeout as u64)
    {
        write_err(w, id);
        return;
    }
    let mut max_probes = w.sys(id).tcp_retries2;
    let s = w.sk(id);
    if s.dead {
        let alive = s.rto_backoff(s.rto_max) < s.rto_max;
        max_probes = orphan_retries(w, id, alive);
        if !alive && w.sk(id).backoff as u32 >= max_probes {
            write_err(w, id);
            return;
        }
    }
    if w.sk(id).probes_out as u32 >= max_probes {
        write_err(w, id);
    } else {
        // "Only send another probe if we didn't close things up."
        output::send_probe0(w, id);
    }
}

/// `tcp_keepalive_timer`: the FIN_WAIT2 timer of an orphan, and
/// SO_KEEPALIVE's probes.
fn keepalive_timer(w: &mut World, id: SockId) {
    let now_j = w.jiffies();
    let s = w.sk(id);
    match s.sk_timer {
        Some(t) if t <= now_j => {}
        Some(t) => {
            let at = wheel_fire_us(now_j, t);
            w.arm(TimerRef::Keepalive(id.0), at);
            return;
        }
        None => return,
    }
    w.sk_mut(id).sk_timer = None;
    let s = w.sk(id);
    if s.state == State::FinWait2 && s.dead {
        if s.linger2 >= 0 {
            let tmo = super::close::tcp_fin_time(w, id) as i64 - TCP_TIMEWAIT_LEN as i64;
            if tmo > 0 {
                timewait::tcp_time_wait(w, id, State::FinWait2, tmo as Jiffies);
                return;
            }
        }
        output::send_active_reset(
            w,
            id,
            "FIN_WAIT2 orphan timed out -> RST (tcp_keepalive_timer)",
            RstReason::TcpState,
        );
        tcp_done(w, id);
        return;
    }
    if !s.keepopen || matches!(s.state, State::Close | State::SynSent | State::Listen) {
        return;
    }
    let sys = w.sys(id).clone();
    let mut elapsed = keepalive_time_when(s, &sys);
    // "It is alive without keepalive 8)"
    if s.packets_out == 0 && s.write_queue.is_empty() {
        elapsed = keepalive_time_elapsed(s, now_j);
        let when = keepalive_time_when(s, &sys);
        if elapsed >= when {
            // "If the TCP_USER_TIMEOUT option is enabled, use that to
            // determine when to timeout instead."
            let ut = s.user_timeout;
            if (ut != 0 && elapsed >= msecs_to_jiffies(ut as u64) && s.probes_out > 0)
                || (ut == 0 && s.probes_out as u32 >= keepalive_probes(s, &sys))
            {
                let n = s.probes_out;
                output::send_active_reset(
                    w,
                    id,
                    &format!(
                        "keep-alive gave up after {n} unanswered probes -> RST (tcp_keepalive_timer)"
                    ),
                    RstReason::TcpKeepaliveTimeout,
                );
                write_err(w, id);
                return;
            }
            let nth = s.probes_out as u32 + 1;
            let err = output::write_wakeup(
                w,
                id,
                &format!("keep-alive probe #{nth} after {} s idle", elapsed / HZ),
                Counter::TCPKeepAlive,
                "tcp_keepalive_timer",
            );
            let s = w.sk_mut(id);
            if err <= 0 {
                s.probes_out = s.probes_out.saturating_add(1);
                elapsed = keepalive_intvl_when(s, &sys);
            } else {
                // "If keepalive was lost due to local congestion, try
                // harder."
                elapsed = TCP_RESOURCE_PROBE_INTERVAL;
            }
        } else {
            // "It is tp->rcv_tstamp + keepalive_time_when(tp)"
            elapsed = when - elapsed;
        }
    }
    reset_keepalive_timer(w, id, elapsed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_rounds_up_by_level() {
        // Level 0: one jiffy late.
        assert_eq!(wheel_fire_jiffies(1000, 1010), 1011);
        assert_eq!(wheel_fire_jiffies(1000, 1062), 1063);
        // Level 1 (delta 63..503): granularity 8.
        assert_eq!(wheel_fire_jiffies(1000, 1063), 1064);
        assert_eq!(wheel_fire_jiffies(1000, 1250), 1256);
        // Level 2 (504..4031): granularity 64; 15 s = 3750 jiffies.
        assert_eq!(wheel_fire_jiffies(0, 3750), 3776);
        // Level 3: 60 s = 15000 jiffies, granularity 512.
        assert_eq!(wheel_fire_jiffies(0, 15000), 15360);
        // Passed: the next tick.
        assert_eq!(wheel_fire_jiffies(1000, 990), 1001);
    }
}
