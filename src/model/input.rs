//! Receiving segments (net/ipv4/tcp_ipv4.c, tcp_input.c).

use super::close::{tcp_done, tcp_time_wait};
use super::output::{self, send_ack, send_delayed_ack, write_xmit};
use super::sock::*;
use super::{World, timewait};
use crate::segment::{Flags, Segment, TcpOpt};

/// `sysctl_tcp_invalid_ratelimit`: at most one out-of-window ACK per 500 ms.
const INVALID_RATELIMIT: Time = 500 * MS;

/// `tcp_v4_rcv`: find the socket a segment belongs to — an established (or
/// connecting) socket, else a time-wait socket, else a listener — or answer
/// with a reset.
pub fn tcp_v4_rcv(w: &mut World, seg: Segment) {
    let h = w.host_of_addr(seg.dst_addr);
    let from = w.host_of_addr(seg.src_addr);
    // __inet_lookup_established: sockets in CLOSE are unhashed.
    let est = w.socks.iter().position(|s| {
        s.host == h
            && s.local_port == seg.dport
            && s.remote == Some((from, seg.sport))
            && !matches!(s.state, State::Close | State::Listen)
    });
    if let Some(i) = est {
        let id = SockId(i);
        if tcp_rcv_state_process(w, id, &seg) {
            send_reset(
                w,
                h,
                &seg,
                "segment for a socket that was just reset -> RST (tcp_v4_do_rcv)",
            );
        }
        return;
    }
    if let Some(ti) = w
        .tws
        .iter()
        .position(|t| t.host == h && t.local_port == seg.dport && t.remote == (from, seg.sport))
    {
        timewait::process(w, ti, &seg);
        return;
    }
    let listener = w
        .socks
        .iter()
        .position(|s| s.host == h && s.local_port == seg.dport && s.state == State::Listen);
    if let Some(l) = listener {
        listen_rcv(w, SockId(l), from, &seg);
        return;
    }
    send_reset(
        w,
        h,
        &seg,
        "no socket for this segment -> RST (tcp_v4_send_reset)",
    );
}

/// `tcp_v4_send_reset`: the reset sent for a segment no socket wants. It
/// carries no options. "If the incoming segment has an ACK field, the reset
/// takes its sequence number from the ACK field of the segment, otherwise
/// the reset has sequence number zero and the ACK field is set to the sum
/// of the sequence number and segment length" (RFC 793 p. 36).
pub fn send_reset(w: &mut World, host: usize, seg: &Segment, why: &str) {
    if seg.flags.rst() {
        return;
    }
    let (flags, seq, ack) = if seg.flags.ack() {
        (Flags::RST, seg.ack, 0)
    } else {
        (
            Flags::RST | Flags::ACK,
            0,
            seg.seq
                .wrapping_add(seg.len + seg.flags.syn() as u32 + seg.flags.fin() as u32),
        )
    };
    let rst = Segment {
        time_us: 0,
        src: w.hosts[host].name.clone(),
        dst: seg.src.clone(),
        src_addr: seg.dst_addr,
        dst_addr: seg.src_addr,
        sport: seg.dport,
        dport: seg.sport,
        seq,
        ack,
        flags,
        win: 0,
        urg_ptr: 0,
        options: Vec::new(),
        len: 0,
        payload: Some(Vec::new()),
        why: Some(why.to_string()),
        lost: false,
    };
    w.emit(rst);
}

/// The options of a SYN or SYN-ACK (`tcp_parse_options`).
struct SynOpts {
    mss: Option<u16>,
    wscale: Option<u8>,
    sack: bool,
    ts: Option<u32>,
}

fn syn_opts(seg: &Segment) -> SynOpts {
    let mut o = SynOpts {
        mss: None,
        wscale: None,
        sack: false,
        ts: None,
    };
    for opt in &seg.options {
        match opt {
            TcpOpt::Mss(m) => o.mss = Some(*m),
            TcpOpt::WScale(s) => o.wscale = Some((*s).min(14)),
            TcpOpt::SackPerm => o.sack = true,
            TcpOpt::Timestamp { val, .. } => o.ts = Some(*val),
            _ => {}
        }
    }
    o
}

/// Applies the peer's SYN options and our sysctls to a socket (the
/// negotiation in `tcp_rcv_synsent_state_process` / `tcp_openreq_init`).
fn negotiate(w: &mut World, id: SockId, seg: &Segment) {
    let o = syn_opts(seg);
    let sys = w.hosts[w.sk(id).host].sysctl.clone();
    let s = w.sk_mut(id);
    s.ts_ok = sys.tcp_timestamps && o.ts.is_some();
    s.sack_ok = sys.tcp_sack && o.sack;
    if let Some(v) = o.ts {
        s.ts_recent = v;
    }
    match o.wscale {
        Some(ws) if s.wscale_ok => s.snd_wscale = ws,
        _ => {
            s.snd_wscale = 0;
            s.rcv_wscale = 0;
            s.wscale_ok = false;
        }
    }
    let peer_mss = o.mss.map_or(TCP_MSS_DEFAULT, |m| m as u32);
    // tcp_sync_mss: the peer's MSS less the options we will send.
    s.mss_cache = peer_mss.min(s.advmss) - if s.ts_ok { TS_LEN } else { 0 };
}

/// A SYN to a listener: `tcp_v4_conn_request` creates a request socket and
/// answers with a SYN-ACK; anything else gets a reset (`tcp_rcv_state_process`
/// in LISTEN: "if (th->ack) return 1").
fn listen_rcv(w: &mut World, lid: SockId, from: usize, seg: &Segment) {
    let h = w.sk(lid).host;
    if seg.flags.rst() {
        return;
    }
    if seg.flags.ack() {
        send_reset(
            w,
            h,
            seg,
            "ACK for a listener with no such connection -> RST",
        );
        return;
    }
    if !seg.flags.syn() {
        return;
    }
    // sk_acceptq_is_full: the SYN is dropped and the client retries.
    let queued = w.sk(lid).accept_q.len() as u32;
    if queued > w.sk(lid).backlog {
        w.count(h, "ListenOverflows");
        return;
    }
    let (rmem, wmem) = {
        let l = w.sk(lid);
        (l.rcvbuf, l.sndbuf)
    };
    let mut child = Sock::new(h, "", rmem, wmem);
    {
        // inet_csk_clone_lock: the child inherits the listener's options.
        let l = w.sk(lid);
        child.rcvbuf_locked = l.rcvbuf_locked;
        child.sndbuf_locked = l.sndbuf_locked;
        child.linger = l.linger;
        child.oobinline = l.oobinline;
        child.nodelay = l.nodelay;
        child.linger2 = l.linger2;
        child.local_port = l.local_port;
    }
    child.remote = Some((from, seg.sport));
    child.parent = Some(lid);
    child.is_request = true;
    child.state = State::SynRecv;
    let id = SockId(w.socks.len());
    w.socks.push(child);
    init_connection(w, id, false);
    negotiate(w, id, seg);
    let s = w.sk_mut(id);
    s.irs = seg.seq;
    s.rcv_nxt = seg.seq.wrapping_add(1);
    s.rcv_wup = s.rcv_nxt;
    s.copied_seq = s.rcv_nxt;
    s.snd_wnd = seg.win as u32;
    s.max_window = s.snd_wnd;
    s.snd_wl1 = seg.seq;
    // tcp_openreq_init_rwin: the SYN-ACK window is rounded to the MSS less
    // the timestamp option.
    select_initial_window(w, id);
    output::send_syn(w, id, "SYN-ACK (tcp_v4_conn_request)");
}

/// Sets the ISN, timestamp offset and buffers of a new connection.
pub fn init_connection(w: &mut World, id: SockId, active: bool) {
    let (h, lp, remote) = {
        let s = w.sk(id);
        (s.host, s.local_port, s.remote.unwrap_or((0, 0)))
    };
    let key =
        ((h as u64) << 48) | ((lp as u64) << 32) | ((remote.0 as u64) << 16) | remote.1 as u64;
    let iss = w.hash(key, 1);
    let tso = w.hash(key, 2);
    let sys = w.hosts[h].sysctl.clone();
    let s = w.sk_mut(id);
    s.iss = iss;
    s.snd_una = iss;
    s.snd_nxt = iss;
    s.snd_max = iss;
    s.write_seq = iss.wrapping_add(1);
    s.pushed_seq = s.write_seq;
    s.snd_sml = iss;
    s.ts_offset = tso;
    s.ts_ok = sys.tcp_timestamps;
    s.sack_ok = sys.tcp_sack;
    s.wscale_ok = sys.tcp_window_scaling;
    s.rto = TCP_TIMEOUT_INIT;
    if active {
        select_initial_window(w, id);
    }
}

/// `tcp_select_initial_window`: the first window and our window scale,
/// from `tcp_full_space` rounded down to the MSS.
pub fn select_initial_window(w: &mut World, id: SockId) {
    let sys = w.hosts[w.sk(id).host].sysctl.clone();
    let s = w.sk_mut(id);
    let mss = if s.state == State::SynRecv && s.ts_ok {
        s.advmss - TS_LEN
    } else {
        s.advmss
    };
    let mut clamp: u64 = 65535u64 << 14;
    if s.rcvbuf_locked {
        clamp = clamp.min(s.full_space() as u64);
    }
    let mut space = (s.full_space() as u64).min(clamp);
    if space > mss as u64 {
        space = space / mss as u64 * mss as u64;
    }
    s.rcv_wnd = space as u32;
    s.rcv_wscale = 0;
    if s.wscale_ok {
        let mut sp = space.max(sys.tcp_rmem[2] as u64).max(sys.rmem_max as u64);
        sp = sp.min(clamp);
        let ilog2 = 63 - sp.max(1).leading_zeros() as i64;
        s.rcv_wscale = (ilog2 - 15).clamp(0, 14) as u8;
    }
    s.window_clamp = clamp.min(65535u64 << s.rcv_wscale) as u32;
    s.rcv_ssthresh = s.rcv_wnd;
}

/// `tcp_init_buffer_space` (tcp_input.c) at the move to ESTABLISHED.
fn init_buffer_space(s: &mut Sock, wmem_max: u32) {
    let maxwin = s.full_space().max(0) as u32;
    if s.window_clamp >= maxwin {
        s.window_clamp = maxwin;
        // sysctl_tcp_app_win (31)
        if maxwin > 4 * s.advmss {
            s.window_clamp = (maxwin - (maxwin >> 31)).max(4 * s.advmss);
        }
    }
    if s.window_clamp > 2 * s.advmss && s.window_clamp + s.advmss > maxwin {
        s.window_clamp = (2 * s.advmss).max(maxwin - s.advmss);
    }
    s.rcv_ssthresh = s.rcv_ssthresh.min(s.window_clamp);
    // tcp_sndbuf_expand: room for two windows of ten full-sized skbs.
    if !s.sndbuf_locked {
        let per_mss = (s.mss_cache + 320 + 320).next_power_of_two() + 256;
        s.sndbuf = s.sndbuf.max((2 * TCP_INIT_CWND * per_mss).min(wmem_max));
    }
    // tcp_initialize_rcv_mss
    let hint = s
        .advmss
        .min(s.mss_cache)
        .min(s.rcv_wnd / 2)
        .min(TCP_MSS_DEFAULT);
    s.rcv_mss = hint.max(88);
}

/// `tcp_reset`: the peer reset the connection.
pub fn tcp_reset(w: &mut World, id: SockId) {
    let s = w.sk_mut(id);
    s.err = Some(match s.state {
        State::SynSent => "ECONNREFUSED",
        State::CloseWait => "EPIPE",
        State::Close => return,
        _ => "ECONNRESET",
    });
    // tcp_write_queue_purge
    s.clear_write_queue();
    s.write_seq = s.snd_una;
    s.fin_queued = false;
    tcp_done(w, id);
}

/// `tcp_rcv_state_process` (and the equivalent `tcp_rcv_established`).
/// Returns true when the caller must answer with a reset.
pub fn tcp_rcv_state_process(w: &mut World, id: SockId, seg: &Segment) -> bool {
    let state = w.sk(id).state;
    if state == State::SynSent {
        return synsent(w, id, seg);
    }
    let f = seg.flags;
    if !f.ack() && !f.rst() && !f.syn() {
        return false;
    }
    if let Some((v, _)) = seg.timestamp() {
        let s = w.sk_mut(id);
        // tcp_replace_ts_recent: a segment that starts at or before
        // rcv_wup (and passes PAWS) refreshes ts_recent.
        if s.ts_ok && !after(seg.seq, s.rcv_wup) && !before(v, s.ts_recent) {
            s.ts_recent = v;
        }
    }
    // tcp_validate_incoming, step 1: the sequence number.
    let end_seq = seg.seq.wrapping_add(seg.seq_len());
    let (rcv_nxt, rcv_wup, rwin, qlen) = {
        let s = w.sk(id);
        (s.rcv_nxt, s.rcv_wup, s.receive_window(), s.rcvq.len())
    };
    let bad_seq = before(end_seq, rcv_wup)
        || (after(end_seq, rcv_nxt.wrapping_add(rwin))
            && (after(seg.seq, rcv_nxt.wrapping_add(rwin)) || qlen > 0));
    if bad_seq {
        if !f.rst() {
            if f.syn() {
                challenge_ack(w, id, "challenge ACK for a SYN (RFC 5961 4.2)");
            } else if !oow_rate_limited(w, id, seg) {
                send_ack(
                    w,
                    id,
                    "out-of-window segment answered with an ACK (tcp_send_dupack)",
                );
            }
        }
        return false;
    }
    // Step 2: RST (RFC 5961 3.2: only an exact match resets).
    if f.rst() {
        if seg.seq == rcv_nxt {
            tcp_reset(w, id);
        } else {
            challenge_ack(w, id, "challenge ACK for an in-window RST (RFC 5961 3.2)");
        }
        return false;
    }
    // Step 4: a SYN in a synchronized state.
    if f.syn() {
        if state == State::SynRecv && !f.ack() && seg.seq == w.sk(id).irs {
            // A retransmitted SYN: resend the SYN-ACK.
            output::send_syn(w, id, "SYN-ACK again for a retransmitted SYN");
            return false;
        }
        challenge_ack(w, id, "challenge ACK for a SYN (RFC 5961 4.2)");
        return false;
    }
    // Step 5: the ACK field.
    let acked = tcp_ack(w, id, seg);
    if acked < 0 {
        if state == State::SynRecv {
            return true;
        }
        challenge_ack(w, id, "challenge ACK: the ACK covers data never sent");
        return false;
    }
    let state = w.sk(id).state;
    match state {
        State::SynRecv => {
            promote_child(w, id, seg);
        }
        State::FinWait1 => {
            if fin_acked(w.sk(id)) {
                // Our FIN is acknowledged.
                w.set_state(id, State::FinWait2);
                w.sk_mut(id).shutdown |= SEND_SHUTDOWN;
                if w.sk(id).dead {
                    let linger2 = w.sk(id).linger2;
                    if linger2 < 0 {
                        let h = w.sk(id).host;
                        tcp_done(w, id);
                        w.count(h, "TCPAbortOnData");
                        return true;
                    }
                    if seg.len > 0 && after(end_seq.wrapping_sub(f.fin() as u32), w.sk(id).rcv_nxt)
                    {
                        // "Receive out of order FIN after close()"
                        let h = w.sk(id).host;
                        tcp_done(w, id);
                        w.count(h, "TCPAbortOnData");
                        return true;
                    }
                    let tmo = super::close::tcp_fin_time(w, id);
                    if tmo > TCP_TIMEWAIT_LEN {
                        let now = w.now;
                        w.sk_mut(id).t_keepalive = Some(now + tmo - TCP_TIMEWAIT_LEN);
                    } else if f.fin() {
                        // "Bad case. We could lose such FIN otherwise."
                        let now = w.now;
                        w.sk_mut(id).t_keepalive = Some(now + tmo);
                    } else {
                        tcp_time_wait(w, id, State::FinWait2, tmo);
                        return false;
                    }
                }
            }
        }
        State::Closing => {
            if fin_acked(w.sk(id)) {
                tcp_time_wait(w, id, State::TimeWait, 0);
                return false;
            }
        }
        State::LastAck => {
            if fin_acked(w.sk(id)) {
                tcp_done(w, id);
                return false;
            }
        }
        _ => {}
    }
    // Step 6: urgent data.
    if f.urg() {
        tcp_urg(w, id, seg);
    }
    // Step 7: the segment text.
    let state = w.sk(id).state;
    let s = w.sk(id);
    let data_after_close = matches!(state, State::FinWait1 | State::FinWait2)
        || (matches!(state, State::CloseWait | State::Closing | State::LastAck)
            && before(seg.seq, s.rcv_nxt));
    let mut queue = matches!(
        state,
        State::Established | State::FinWait1 | State::FinWait2
    ) || data_after_close;
    if matches!(state, State::CloseWait | State::Closing | State::LastAck)
        && !before(seg.seq, s.rcv_nxt)
    {
        queue = false;
    }
    if data_after_close
        && s.shutdown & RCV_SHUTDOWN != 0
        && seg.len > 0
        && after(end_seq.wrapping_sub(f.fin() as u32), s.rcv_nxt)
    {
        // "RFC 793 says to queue data in these states, RFC 1122 says we
        // MUST send a reset. BSD 4.4 also does reset."
        let h = s.host;
        w.count(h, "TCPAbortOnData");
        tcp_reset(w, id);
        return true;
    }
    if queue {
        tcp_data_queue(w, id, seg);
    }
    if w.sk(id).state != State::Close && w.tws.iter().all(|t| t.sock != id) {
        write_xmit(w, id);
        ack_snd_check(w, id);
    }
    false
}

/// `tcp_oow_rate_limited`: pure ACKs out of window are answered at most
/// once per 500 ms.
fn oow_rate_limited(w: &mut World, id: SockId, seg: &Segment) -> bool {
    if seg.len > 0 && !seg.flags.syn() {
        return false;
    }
    let now = w.now;
    let s = w.sk_mut(id);
    if let Some(last) = s.last_oow_ack {
        if now < last + INVALID_RATELIMIT {
            return true;
        }
    }
    s.last_oow_ack = Some(now);
    false
}

/// `tcp_send_challenge_ack`.
fn challenge_ack(w: &mut World, id: SockId, why: &str) {
    let now = w.now;
    {
        let s = w.sk_mut(id);
        if let Some(last) = s.last_oow_ack {
            if now < last + INVALID_RATELIMIT {
                return;
            }
        }
        s.last_oow_ack = Some(now);
    }
    send_ack(w, id, why);
}

/// Whether our FIN has been acknowledged.
pub fn fin_acked(s: &Sock) -> bool {
    s.fin_queued && s.snd_una == s.write_seq.wrapping_add(1)
}

/// SYN_RECV → ESTABLISHED: the handshake's last ACK (`tcp_check_req`
/// creates the child, `tcp_rcv_state_process` moves it on and it joins the
/// listener's accept queue).
fn promote_child(w: &mut World, id: SockId, seg: &Segment) {
    let wmem2 = w.hosts[w.sk(id).host].sysctl.tcp_wmem[2];
    let now = w.now;
    let s = w.sk_mut(id);
    rtt_sample(s, now);
    s.t_rto = None;
    s.syn_retries = 0;
    s.snd_wnd = (seg.win as u32) << s.snd_wscale;
    s.max_window = s.max_window.max(s.snd_wnd);
    s.snd_wl1 = seg.seq;
    init_buffer_space(s, wmem2);
    let was_request = std::mem::replace(&mut s.is_request, false);
    if was_request {
        // inet_csk_clone_lock sets SYN_RECV when the child is created.
        w.record_state_pub(id, "CLOSE", "SYN_RECV");
    }
    w.set_state(id, State::Established);
    if let Some(p) = w.sk(id).parent {
        if w.sk(p).state == State::Listen {
            w.sk_mut(p).accept_q.push_back(id);
        }
    }
}

/// `tcp_rcv_synsent_state_process`: the answer to our SYN.
fn synsent(w: &mut World, id: SockId, seg: &Segment) -> bool {
    let f = seg.flags;
    let (iss, snd_nxt) = {
        let s = w.sk(id);
        (s.iss, s.snd_nxt)
    };
    if f.ack() {
        // "If SEG.ACK =< ISS, or SEG.ACK > SND.NXT, send a reset"
        if !after(seg.ack, iss) || after(seg.ack, snd_nxt) {
            if !f.rst() {
                let h = w.sk(id).host;
                send_reset(w, h, seg, "SYN-ACK with an unacceptable ACK -> RST");
            }
            return false;
        }
        if f.rst() {
            tcp_reset(w, id);
            return false;
        }
        if !f.syn() {
            return false;
        }
        negotiate(w, id, seg);
        let now = w.now;
        let wmem2 = w.hosts[w.sk(id).host].sysctl.tcp_wmem[2];
        let s = w.sk_mut(id);
        s.irs = seg.seq;
        s.rcv_nxt = seg.seq.wrapping_add(1);
        s.rcv_wup = s.rcv_nxt;
        s.copied_seq = s.rcv_nxt;
        s.snd_una = seg.ack;
        // "RFC1323: The window in SYN & SYN/ACK segments is never scaled."
        s.snd_wnd = seg.win as u32;
        s.max_window = s.snd_wnd;
        s.snd_wl1 = seg.seq;
        if !s.wscale_ok {
            s.rcv_wscale = 0;
        }
        rtt_sample(s, now);
        s.t_rto = None;
        s.retransmits = 0;
        s.syn_retries = 0;
        init_buffer_space(s, wmem2);
        w.set_state(id, State::Established);
        send_ack(w, id, "handshake: ACK of the SYN-ACK");
        write_xmit(w, id);
        return false;
    }
    if f.rst() {
        return false;
    }
    false
}

/// RTT sample and RTO (`tcp_rtt_estimator`, `tcp_set_rto`): the RTO is
/// srtt + max(4 * rttvar, TCP_RTO_MIN) as the kernel's `rttvar` floor does.
fn rtt_sample(s: &mut Sock, now: Time) {
    let start = match s.rtt_sample.take() {
        Some((_, t)) => t,
        None => return,
    };
    let m = now.saturating_sub(start).max(1);
    if s.srtt == 0 {
        s.srtt = m;
        s.rttvar = m / 2;
    } else {
        let err = m.abs_diff(s.srtt);
        s.rttvar = (3 * s.rttvar + err) / 4;
        s.srtt = (7 * s.srtt + m) / 8;
    }
    s.rto = (s.srtt + (4 * s.rttvar).max(TCP_RTO_MIN)).min(TCP_RTO_MAX);
    // The kernel counts the RTO in jiffies, rounding up.
    s.rto = s.rto.div_ceil(JIFFY) * JIFFY;
}

/// `tcp_ack`: process the ACK field. Returns -1 for an ACK of data never
/// sent, else the number of bytes newly acknowledged.
fn tcp_ack(w: &mut World, id: SockId, seg: &Segment) -> i64 {
    let now = w.now;
    let s = w.sk_mut(id);
    let ack = seg.ack;
    let snd_max = s.snd_max;
    if after(ack, snd_max) {
        return -1;
    }
    let mut acked = 0i64;
    // tcp_ack_update_window
    let nwin = (seg.win as u32) << if seg.flags.syn() { 0 } else { s.snd_wscale };
    if after(ack, s.snd_una)
        || after(seg.seq, s.snd_wl1)
        || (seg.seq == s.snd_wl1 && (nwin > s.snd_wnd || nwin == 0))
    {
        s.snd_wnd = nwin;
        s.snd_wl1 = seg.seq;
        if nwin > s.max_window {
            s.max_window = nwin;
        }
    }
    if after(ack, s.snd_una) {
        let n = ack.wrapping_sub(s.snd_una);
        // A FIN occupies one sequence number but no byte in sndq.
        let bytes = (n as usize).min(s.sndq.len());
        s.sndq.drain(..bytes);
        while s.skbs.front().is_some_and(|&(end, _)| !after(end, ack)) {
            s.skbs.pop_front();
        }
        acked = n as i64;
        s.snd_una = ack;
        if before(s.snd_nxt, ack) {
            s.snd_nxt = ack;
        }
        if let Some((end, _)) = s.rtt_sample {
            if !before(ack, end) {
                rtt_sample(s, now);
            }
        }
        s.backoff = 0;
        s.retransmits = 0;
        s.retrans_stamp = None;
        // Slow start, then congestion avoidance.
        if s.cwnd < s.ssthresh {
            s.cwnd += 1;
        } else {
            s.cwnd_cnt += 1;
            if s.cwnd_cnt >= s.cwnd {
                s.cwnd += 1;
                s.cwnd_cnt = 0;
            }
        }
        if let Some(up) = s.snd_up {
            if !before(ack, up) {
                s.snd_up = None;
            }
        }
        if s.in_loss && !before(ack, s.snd_max) {
            // Recovered: back to TCP_CA_Open.
            s.in_loss = false;
        }
        if let Some(h) = s.tlp_high_seq {
            if !before(ack, h) {
                // tcp_process_tlp_ack
                s.tlp_high_seq = None;
            }
        }
        s.head_sent = now;
        // tcp_set_xmit_timer: a loss probe if allowed, else tcp_rearm_rto.
        s.t_rto = None;
        s.t_tlp = None;
        if s.in_flight() && !output::schedule_loss_probe(s, now, true) {
            s.t_rto = Some(now + s.rto);
        }
    }
    // "icsk->icsk_probes_out = 0": any ACK shows the peer is alive.
    s.probes_out = 0;
    // tcp_ack_probe: a window opened ends the probing.
    if s.t_probe.is_some() && s.has_unsent() && !s.in_flight() {
        if !after(s.snd_nxt.wrapping_add(1), s.wnd_end()) {
            s.t_probe = None;
            s.backoff = 0;
        } else {
            let when = (s.rto.max(TCP_RTO_MIN) << s.backoff.min(20)).min(TCP_RTO_MAX);
            s.t_probe = Some(now + when);
        }
    }
    acked
}

/// `tcp_urg` / `tcp_check_urg`: note where the urgent byte is and, once it
/// has arrived, keep a copy of it in `urg_data`. The byte itself stays in
/// the receive queue: `recv(MSG_OOB)` reads the copy without advancing
/// `copied_seq`.
fn tcp_urg(w: &mut World, id: SockId, seg: &Segment) {
    let s = w.sk_mut(id);
    if seg.urg_ptr > 0 {
        // tcp_check_urg: "ptr--" unless tcp_stdurg (BSD semantics).
        let ptr = seg.seq.wrapping_add(seg.urg_ptr as u32 - 1);
        if !before(ptr, s.rcv_nxt) {
            if s.urg == Urg::None || after(ptr, s.urg_seq) {
                if s.urg_seq == s.copied_seq
                    && s.urg != Urg::None
                    && !s.oobinline
                    && s.copied_seq != s.rcv_nxt
                {
                    // The old urgent byte is skipped.
                    s.copied_seq = s.copied_seq.wrapping_add(1);
                    s.rcvq.pop_front();
                }
                s.urg = Urg::NotYet;
                s.urg_seq = ptr;
            }
        }
    }
    if s.urg == Urg::NotYet {
        let off = s.urg_seq.wrapping_sub(seg.seq);
        if off < seg.len {
            if let Some(p) = &seg.payload {
                if let Some(&b) = p.get(off as usize) {
                    s.urg = Urg::Valid(b);
                }
            }
        }
    }
}

/// `tcp_data_queue`: in-order data joins the receive queue, out-of-order
/// data the ooo queue; a FIN runs `tcp_fin`.
fn tcp_data_queue(w: &mut World, id: SockId, seg: &Segment) {
    let payload = seg
        .payload
        .clone()
        .unwrap_or_else(|| vec![0; seg.len as usize]);
    let fin = seg.flags.fin();
    if seg.len == 0 && !fin {
        return;
    }
    let s = w.sk_mut(id);
    let end = seg.seq.wrapping_add(seg.len);
    if seg.seq == s.rcv_nxt
        || (before(seg.seq, s.rcv_nxt) && after(end.wrapping_add(fin as u32), s.rcv_nxt))
    {
        if s.receive_window() == 0 && !(seg.len == 0 && fin) {
            // Zero window: drop and ACK at once (out_of_window).
            enter_quickack(s);
            s.ack_now = true;
            s.ack_pending = true;
            w.count(s_host(w, id), "TCPZeroWindowDrop");
            return;
        }
        let skip = s.rcv_nxt.wrapping_sub(seg.seq) as usize;
        let data = &payload[skip.min(payload.len())..];
        queue_rcv(w, id, data, seg);
        if fin {
            tcp_fin(w, id);
        }
        ofo_queue(w, id);
        return;
    }
    if !after(end.wrapping_add(fin as u32), s.rcv_nxt) {
        // "A retransmit, 2nd most common case. Force an immediate ack."
        // tcp_dsack_set: the ACK reports the duplicate as a D-SACK block.
        if s.sack_ok {
            s.dsack = Some((seg.seq, end.wrapping_add(fin as u32)));
        }
        enter_quickack(s);
        s.ack_pending = true;
        return;
    }
    if !before(seg.seq, s.rcv_nxt.wrapping_add(s.receive_window())) {
        enter_quickack(s);
        s.ack_pending = true;
        return;
    }
    // tcp_data_queue_ofo: keep it, ACK at once with SACK.
    if !s.ooo.iter().any(|(q, _, _)| *q == seg.seq) {
        s.ooo.push((seg.seq, payload, fin));
        s.ooo.sort_by_key(|(q, _, _)| q.wrapping_sub(s.rcv_nxt));
    }
    s.ack_now = true;
    s.ack_pending = true;
}

fn s_host(w: &World, id: SockId) -> usize {
    w.sk(id).host
}

/// `tcp_enter_quickack_mode`.
fn enter_quickack(s: &mut Sock) {
    incr_quickack(s, TCP_MAX_QUICKACKS);
    s.pingpong = false;
    s.ato = TCP_ATO_MIN;
}

/// `tcp_incr_quickack`.
fn incr_quickack(s: &mut Sock, max: u32) {
    let mut q = s.rcv_wnd / (2 * s.rcv_mss.max(1));
    if q == 0 {
        q = 2;
    }
    q = q.min(max);
    if q > s.quick {
        s.quick = q;
    }
}

/// `tcp_queue_rcv` + `tcp_event_data_recv`.
fn queue_rcv(w: &mut World, id: SockId, data: &[u8], seg: &Segment) {
    let now = w.now;
    let s = w.sk_mut(id);
    if !data.is_empty() {
        s.rcvq.extend(data.iter());
        let truesize = data.len() as u32 + SKB_OVERHEAD;
        s.rmem_alloc += truesize;
        s.rcvq_skbs.push_back((data.len() as u32, truesize));
    }
    s.rcv_nxt = s.rcv_nxt.wrapping_add(data.len() as u32);
    if data.is_empty() {
        return;
    }
    // tcp_event_data_recv
    s.ack_pending = true;
    // tcp_measure_rcv_mss
    let len = data.len() as u32;
    if len >= s.rcv_mss {
        s.rcv_mss = len.min(s.advmss);
        if seg.flags.psh() {
            s.ack_pushed = true;
        }
    } else {
        s.ack_pushed = true;
    }
    if s.ato == 0 {
        // "The _first_ data packet received, initialize delayed ACK engine."
        incr_quickack(s, TCP_MAX_QUICKACKS);
        s.ato = TCP_ATO_MIN;
    } else {
        let m = now.saturating_sub(s.lrcvtime);
        if m <= TCP_ATO_MIN / 2 {
            s.ato = (s.ato >> 1) + TCP_ATO_MIN / 2;
        } else if m < s.ato {
            s.ato = ((s.ato >> 1) + m).min(s.rto);
        } else if m > s.rto {
            incr_quickack(s, TCP_MAX_QUICKACKS);
        }
    }
    s.lrcvtime = now;
    if len >= 128 {
        grow_window(s, len);
    }
}

/// `tcp_grow_window`: raise `rcv_ssthresh` while the buffer allows it.
fn grow_window(s: &mut Sock, len: u32) {
    let room = s.window_clamp as i64 - s.rcv_ssthresh as i64;
    if room <= 0 {
        return;
    }
    let free = s.space();
    if free > s.rcv_ssthresh as i64 {
        // truesize and len are close here: grow by two segments.
        let incr = 2 * s.advmss.min(len.max(s.rcv_mss)) as i64;
        let incr = incr.min(room).min(free - s.rcv_ssthresh as i64).max(0);
        s.rcv_ssthresh += incr as u32;
    }
}

/// `tcp_ofo_queue`: move segments the gap no longer separates.
fn ofo_queue(w: &mut World, id: SockId) {
    loop {
        let s = w.sk_mut(id);
        let Some(pos) = s.ooo.iter().position(|(q, d, _)| {
            !after(*q, s.rcv_nxt) && after(q.wrapping_add(d.len() as u32 + 1), s.rcv_nxt)
        }) else {
            // Drop what is wholly old.
            let nxt = s.rcv_nxt;
            s.ooo
                .retain(|(q, d, f)| after(q.wrapping_add(d.len() as u32 + *f as u32), nxt));
            return;
        };
        let (q, d, fin) = s.ooo.remove(pos);
        let skip = s.rcv_nxt.wrapping_sub(q) as usize;
        let data: Vec<u8> = d[skip.min(d.len())..].to_vec();
        s.rcvq.extend(data.iter());
        s.rmem_alloc += data.len() as u32 + SKB_OVERHEAD;
        s.rcvq_skbs
            .push_back((data.len() as u32, data.len() as u32 + SKB_OVERHEAD));
        s.rcv_nxt = s.rcv_nxt.wrapping_add(data.len() as u32);
        // "RFC5681. 4.2. SHOULD send immediate ACK, when gap in queue is filled."
        s.ack_now = true;
        s.ack_pending = true;
        if fin {
            tcp_fin(w, id);
            return;
        }
    }
}

/// `tcp_fin`: the peer has finished sending.
fn tcp_fin(w: &mut World, id: SockId) {
    let s = w.sk_mut(id);
    s.rcv_nxt = s.rcv_nxt.wrapping_add(1);
    s.fin_in_rcvq = true;
    s.ack_pending = true;
    s.shutdown |= RCV_SHUTDOWN;
    s.done = true;
    match s.state {
        State::SynRecv | State::Established => {
            w.set_state(id, State::CloseWait);
            // inet_csk_enter_pingpong_mode: the ACK of a FIN is delayed.
            w.sk_mut(id).pingpong = true;
        }
        State::FinWait1 => {
            // Simultaneous close.
            send_ack(w, id, "ACK of the peer's FIN (simultaneous close)");
            w.set_state(id, State::Closing);
        }
        State::FinWait2 => {
            send_ack(w, id, "ACK of the peer's FIN: entering TIME_WAIT");
            tcp_time_wait(w, id, State::TimeWait, 0);
        }
        _ => {}
    }
    if let Some(s) = w.socks.get_mut(id.0) {
        s.ooo.clear();
    }
}

/// `__tcp_ack_snd_check`: ACK now, or schedule a delayed ACK.
pub fn ack_snd_check(w: &mut World, id: SockId) {
    let s = w.sk(id);
    if !s.ack_pending {
        return;
    }
    let win_now = {
        // __tcp_select_window(sk) >= tp->rcv_wnd
        output::raw_select_window(s) >= s.rcv_wnd
    };
    let more_than_mss = s.rcv_nxt.wrapping_sub(s.rcv_wup) > s.rcv_mss && win_now;
    if more_than_mss || s.in_quickack_mode() || s.ack_now {
        let why = if s.ack_now {
            "immediate ACK"
        } else if s.in_quickack_mode() {
            "quick ACK (tcp_in_quickack_mode)"
        } else {
            "ACK: more than one full segment received"
        };
        send_ack(w, id, why);
        return;
    }
    send_delayed_ack(w, id);
}

impl World {
    /// Records a transition without changing the socket (request sockets
    /// that become full sockets).
    pub fn record_state_pub(&mut self, id: SockId, from: &str, to: &str) {
        self.record_state(id, from, to);
    }
}
