//! Building and sending segments (net/ipv4/tcp_output.c).

use super::World;
use super::sock::*;
use crate::segment::{Flags, Segment, TcpOpt};

/// `tcp_time_stamp_ts`: the TS value clock, in ms since the run began plus
/// the connection's random offset.
pub fn ts_val(w: &World, id: SockId) -> u32 {
    ((w.now / MS) as u32).wrapping_add(w.sk(id).ts_offset)
}

/// `__tcp_select_window`: the window we can offer, before scaling and the
/// no-shrink rule (tcp_output.c).
pub fn raw_select_window(s: &Sock) -> u32 {
    let mss = s.rcv_mss as i64;
    let mut free_space = s.space();
    let allowed_space = s.full_space();
    let full_space = (s.window_clamp as i64).min(allowed_space);
    let mss = mss.min(full_space);
    if mss <= 0 {
        return 0;
    }
    if free_space < full_space >> 1 {
        // "if free space is less than mss estimate, or is below 1/16th of
        // the maximum allowed, try to move to zero-window"
        free_space &= !((1i64 << s.rcv_wscale) - 1);
        if free_space < (allowed_space >> 4) || free_space < mss {
            return 0;
        }
    }
    if free_space > s.rcv_ssthresh as i64 {
        free_space = s.rcv_ssthresh as i64;
    }
    if s.rcv_wscale > 0 {
        // "Advertise enough space so that it won't get scaled away."
        let a = 1i64 << s.rcv_wscale;
        ((free_space + a - 1) / a * a) as u32
    } else {
        let mut window = s.rcv_wnd as i64;
        if window <= free_space - mss || window > free_space {
            window = free_space / mss * mss;
        } else if mss == full_space && free_space > window + (full_space >> 1) {
            window = free_space;
        }
        window.max(0) as u32
    }
}

/// `tcp_select_window`: never shrink the offered window, remember what was
/// offered (`rcv_wnd`, `rcv_wup`), scale.
pub fn select_window(s: &mut Sock) -> u16 {
    let cur_win = s.receive_window();
    let mut new_win = raw_select_window(s);
    if new_win < cur_win {
        // tcp_shrink_window is 0: keep the old right edge.
        let a = 1u32 << s.rcv_wscale;
        new_win = cur_win.div_ceil(a) * a;
    }
    s.rcv_wnd = new_win;
    s.rcv_wup = s.rcv_nxt;
    let new_win = new_win.min(65535u32 << s.rcv_wscale);
    (new_win >> s.rcv_wscale) as u16
}

/// `tcp_acceptable_seq`: snd_nxt unless the peer shrank its window.
pub fn acceptable_seq(s: &Sock) -> u32 {
    if !before(s.snd_una.wrapping_add(s.snd_wnd), s.snd_nxt) {
        s.snd_nxt
    } else {
        s.snd_una.wrapping_add(s.snd_wnd)
    }
}

/// The SACK blocks describing the out-of-order queue (`tp->selective_acks`,
/// most recent first; at most 3 with timestamps).
fn sack_blocks(s: &Sock) -> Vec<(u32, u32)> {
    let mut v: Vec<(u32, u32)> = s.dsack.into_iter().collect();
    let mut ooo: Vec<(u32, u32)> = s
        .ooo
        .iter()
        .map(|(seq, d, fin)| (*seq, seq.wrapping_add(d.len() as u32 + *fin as u32)))
        .collect();
    ooo.reverse();
    v.extend(ooo);
    v.truncate(if s.ts_ok { 3 } else { 4 });
    v
}

/// `__tcp_transmit_skb`: builds the header (options, window, ack) and puts
/// the segment on the wire.
#[allow(clippy::needless_late_init)]
pub fn transmit(w: &mut World, id: SockId, flags: Flags, seq: u32, payload: Vec<u8>, why: String) {
    let tsv = ts_val(w, id);
    let (src_addr, dst_addr, dst_name, src_name);
    let seg = {
        let h = w.sk(id).host;
        let (rh, rport) = w.sk(id).remote.unwrap_or((h, 0));
        src_addr = w.hosts[h].addr;
        dst_addr = w.hosts[rh].addr;
        src_name = w.hosts[h].name.clone();
        dst_name = w.hosts[rh].name.clone();
        let s = w.sk_mut(id);
        let mut options = Vec::new();
        let win;
        if flags.syn() {
            // tcp_syn_options / tcp_synack_options, in tcp_options_write order:
            // mss, sackOK+TS, nop+wscale.
            options.push(TcpOpt::Mss(s.advmss as u16));
            if s.sack_ok {
                options.push(TcpOpt::SackPerm);
            }
            if s.ts_ok {
                if !s.sack_ok {
                    options.push(TcpOpt::Nop);
                    options.push(TcpOpt::Nop);
                }
                options.push(TcpOpt::Timestamp {
                    val: tsv,
                    ecr: if flags.ack() { s.ts_recent } else { 0 },
                });
            } else if s.sack_ok {
                // sackOK without timestamps is padded: nop,nop,sackOK.
                options.pop();
                options.push(TcpOpt::Nop);
                options.push(TcpOpt::Nop);
                options.push(TcpOpt::SackPerm);
            }
            if s.wscale_ok {
                options.push(TcpOpt::Nop);
                options.push(TcpOpt::WScale(s.rcv_wscale));
            }
            // "RFC1323: The window in SYN & SYN/ACK segments is never scaled."
            win = s.rcv_wnd.min(65535) as u16;
        } else {
            if s.ts_ok {
                options.push(TcpOpt::Nop);
                options.push(TcpOpt::Nop);
                options.push(TcpOpt::Timestamp {
                    val: tsv,
                    ecr: s.ts_recent,
                });
            }
            let blocks = if flags.rst() || !s.sack_ok {
                Vec::new()
            } else {
                sack_blocks(s)
            };
            // A D-SACK is reported once.
            s.dsack = None;
            if !blocks.is_empty() {
                options.push(TcpOpt::Nop);
                options.push(TcpOpt::Nop);
                options.push(TcpOpt::Sack(blocks));
            }
            win = select_window(s);
        }
        let urg_ptr = match s.snd_up {
            // tcp_transmit_skb: "if (unlikely(tcp_urg_mode(tp) && before(tcb->seq, tp->snd_up)))"
            Some(up) if before(seq, up) && !flags.syn() => {
                let d = up.wrapping_sub(seq);
                Some(d.min(0xffff) as u16)
            }
            _ => None,
        };
        let mut flags = flags;
        if urg_ptr.is_some() {
            flags = flags | Flags::URG;
        }
        if flags.ack() {
            // tcp_event_ack_sent: this segment carries the ACK we owed.
            s.ack_pending = false;
            s.ack_now = false;
            s.t_delack = None;
            if s.quick > 0 {
                s.quick -= 1;
                if s.quick == 0 {
                    s.ato = TCP_ATO_MIN;
                }
            }
        }
        let len = payload.len() as u32;
        Segment {
            time_us: 0,
            src: src_name,
            dst: dst_name,
            src_addr,
            dst_addr,
            sport: s.local_port,
            dport: rport,
            seq,
            ack: if flags.ack() { s.rcv_nxt } else { 0 },
            flags,
            win,
            urg_ptr: urg_ptr.unwrap_or(0),
            options,
            len,
            payload: Some(payload),
            why: Some(why),
            lost: false,
        }
    };
    w.emit(seg);
}

/// `tcp_send_ack`: a pure ACK.
pub fn send_ack(w: &mut World, id: SockId, why: &str) {
    let seq = acceptable_seq(w.sk(id));
    transmit(w, id, Flags::ACK, seq, Vec::new(), why.to_string());
}

/// `tcp_send_delayed_ack`: schedule the ACK `ato` from now.
pub fn send_delayed_ack(w: &mut World, id: SockId) {
    let now = w.now;
    let s = w.sk_mut(id);
    s.ack_pending = true;
    // tcp_send_delayed_ack: an ato above TCP_DELACK_MIN is bounded by the
    // RTT (at least 40 ms) and TCP_DELACK_MAX; an ato of 0 (no data ever
    // received) fires at the next jiffy.
    let mut ato = s.ato;
    if ato > TCP_DELACK_MIN {
        let max_ato = if s.srtt > 0 {
            s.srtt.div_ceil(JIFFY).max(TCP_DELACK_MIN / JIFFY) * JIFFY
        } else {
            TCP_DELACK_MAX
        };
        ato = ato.min(max_ato).min(TCP_DELACK_MAX);
    }
    let t = now + ato.max(JIFFY);
    // "If delack timer was blocked or is about to expire, send ACK now."
    s.t_delack = Some(match s.t_delack {
        Some(old) if old < t => old,
        _ => t,
    });
}

/// `tcp_send_active_reset`: an `R.` with seq = snd_nxt, ack = rcv_nxt,
/// never retransmitted.
pub fn send_active_reset(w: &mut World, id: SockId, why: &str) {
    let seq = acceptable_seq(w.sk(id));
    transmit(
        w,
        id,
        Flags::RST | Flags::ACK,
        seq,
        Vec::new(),
        why.to_string(),
    );
}

/// `tcp_send_fin`: queue the FIN after any data and push.
pub fn send_fin(w: &mut World, id: SockId, why: &'static str) {
    w.sk_mut(id).fin_queued = true;
    w.sk_mut(id).fin_why = why;
    write_xmit(w, id);
}

/// Sends the SYN (`tcp_connect`) or SYN-ACK (`tcp_make_synack`).
pub fn send_syn(w: &mut World, id: SockId, why: &str) {
    let (iss, synack) = {
        let s = w.sk(id);
        (s.iss, s.state == State::SynRecv)
    };
    let flags = if synack {
        Flags::SYN | Flags::ACK
    } else {
        Flags::SYN
    };
    transmit(w, id, flags, iss, Vec::new(), why.to_string());
    let now = w.now;
    let s = w.sk_mut(id);
    s.snd_nxt = iss.wrapping_add(1);
    s.snd_max = s.snd_nxt;
    // The handshake gives the first RTT sample (tcp_ack_update_rtt with
    // FLAG_SYN_ACKED, tcp_synack_rtt_meas); Karn: not from a retransmission.
    if s.syn_retries == 0 {
        s.rtt_sample = Some((s.snd_nxt, now));
    }
    if s.t_rto.is_none() {
        s.t_rto = Some(now + s.rto);
    }
}

/// The reason shown for a data segment.
fn data_why(s: &Sock, seq: u32, len: u32, fin: bool, retrans: bool) -> String {
    let mut why = if retrans {
        format!(
            "retransmission #{} after an RTO of {} ms",
            s.retransmits,
            s.rto / MS
        )
    } else if len > 0 {
        "data".to_string()
    } else {
        String::new()
    };
    if fin {
        let f = s.fin_why;
        if why.is_empty() {
            why = f.to_string();
        } else if !retrans {
            why = format!("data + {f}");
        } else {
            why = format!("{why}, {f}");
        }
    }
    if let Some(up) = s.snd_up {
        if before(seq, up) && !retrans {
            why = format!("{why} with urgent pointer (send MSG_OOB)");
        }
    }
    why
}

/// Copies `len` bytes at `off` out of a byte queue (both halves of the ring).
pub fn queue_slice(q: &std::collections::VecDeque<u8>, off: usize, len: usize) -> Vec<u8> {
    let (a, b) = q.as_slices();
    let mut v = Vec::with_capacity(len);
    if off < a.len() {
        let end = (off + len).min(a.len());
        v.extend_from_slice(&a[off..end]);
        let rest = len - (end - off);
        v.extend_from_slice(&b[..rest.min(b.len())]);
    } else {
        let o = off - a.len();
        v.extend_from_slice(&b[o..(o + len).min(b.len())]);
    }
    v
}

/// `tcp_nagle_test` with the Minshall variant: hold a small segment while
/// an earlier small one is unacknowledged.
fn nagle_holds(s: &Sock, len: u32, mss: u32, ends_queue: bool) -> bool {
    if s.nodelay || len >= mss {
        return false;
    }
    if s.fin_queued && ends_queue {
        // tcp_nagle_test: "Don't use the nagle rule for urgent data (or for
        // the final FIN -ss)."
        return false;
    }
    if s.snd_up.is_some() {
        return false;
    }
    s.in_flight() && after(s.snd_sml, s.snd_una) && !after(s.snd_sml, s.snd_nxt)
}

/// `tcp_write_xmit`: send what the windows allow, then arm the
/// retransmission timer, or the probe timer when nothing is in flight but
/// data waits behind a zero window (`tcp_check_probe_timer`).
pub fn write_xmit(w: &mut World, id: SockId) {
    loop {
        let s = w.sk(id);
        if !matches!(
            s.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::LastAck
                | State::Closing
        ) {
            return;
        }
        if !s.has_unsent() {
            break;
        }
        let mss = s.send_mss().max(1);
        let off = s.snd_nxt.wrapping_sub(s.snd_una) as usize;
        // The next segment: the rest of the skb at snd_nxt, at most one MSS.
        let (len, psh) = match s.skb_at(s.snd_nxt) {
            Some((_, end, psh)) => {
                let l = end.wrapping_sub(s.snd_nxt).min(mss);
                (l, psh && s.snd_nxt.wrapping_add(l) == end)
            }
            None => (0, false),
        };
        let retrans = before(s.snd_nxt, s.snd_max);
        // tcp_cwnd_test: packets in flight below cwnd.
        let in_flight_pkts = s.snd_nxt.wrapping_sub(s.snd_una).div_ceil(mss);
        if in_flight_pkts >= s.cwnd {
            break;
        }
        // tcp_snd_wnd_test: the segment must fit the window whole; the
        // head may always be retransmitted.
        let wnd_end = s.wnd_end();
        if len > 0
            && after(s.snd_nxt.wrapping_add(len), wnd_end)
            && !(retrans && s.snd_nxt == s.snd_una)
        {
            break;
        }
        let ends_queue = off as u32 + len == s.sndq.len() as u32;
        // The FIN counts in the window test too (its end_seq includes it).
        let fin = s.fin_queued
            && ends_queue
            && (!after(s.snd_nxt.wrapping_add(len + 1), wnd_end)
                || (retrans && s.snd_nxt == s.snd_una));
        if len == 0 && !fin {
            break;
        }
        if len > 0 && nagle_holds(s, len, mss, ends_queue) {
            break;
        }
        let seq = s.snd_nxt;
        let payload = queue_slice(&s.sndq, off, len as usize);
        let why = data_why(s, seq, len, fin, retrans);
        let mut flags = Flags::ACK;
        if psh {
            flags = flags | Flags::PSH;
        }
        if fin {
            flags = flags | Flags::FIN;
        }
        transmit(w, id, flags, seq, payload, why);
        let now = w.now;
        let s = w.sk_mut(id);
        let end = seq.wrapping_add(len + fin as u32);
        s.snd_nxt = end;
        if after(end, s.snd_max) {
            s.snd_max = end;
        }
        if len < mss {
            s.snd_sml = end;
        }
        if s.rtt_sample.is_none() && !retrans {
            s.rtt_sample = Some((end, now));
        }
        if seq == s.snd_una {
            s.head_sent = now;
        }
        if s.t_rto.is_none() && s.t_tlp.is_none() {
            s.t_rto = Some(now + s.rto);
        }
        if !retrans {
            schedule_loss_probe(s, now, false);
        }
        s.t_probe = None;
        if fin {
            break;
        }
    }
    // tcp_check_probe_timer
    let now = w.now;
    let s = w.sk_mut(id);
    if !s.in_flight() && s.has_unsent() && s.t_probe.is_none() && s.t_rto.is_none() {
        let base = s.rto.max(TCP_RTO_MIN);
        s.t_probe = Some(now + base);
    }
}

/// `tcp_schedule_loss_probe`: with SACK and no loss episode under way,
/// the retransmission timer becomes a tail loss probe after two RTTs plus
/// 200 ms for a lone segment (2 jiffies otherwise), never later than the
/// RTO would fire.
pub fn schedule_loss_probe(s: &mut Sock, now: Time, advancing_rto: bool) -> bool {
    if !s.sack_ok || s.in_loss || !s.in_flight() {
        return false;
    }
    let one = s.snd_nxt.wrapping_sub(s.snd_una) <= s.send_mss() + 1;
    let mut pto = if s.srtt > 0 {
        (2 * s.srtt).div_ceil(JIFFY) * JIFFY + if one { TCP_RTO_MIN } else { 2 * JIFFY }
    } else {
        TCP_TIMEOUT_INIT
    };
    let rto_delta = if advancing_rto {
        s.rto
    } else {
        (s.head_sent + s.rto).saturating_sub(now)
    };
    if rto_delta > 0 {
        pto = pto.min(rto_delta);
    }
    s.t_tlp = Some(now + pto.max(JIFFY));
    s.t_rto = None;
    true
}

/// `tcp_send_loss_probe`: send new data if the window allows, else
/// retransmit the last segment; then the RTO timer takes over.
pub fn send_loss_probe(w: &mut World, id: SockId) {
    let now = w.now;
    let s = w.sk(id);
    if s.tlp_high_seq.is_none() && s.in_flight() {
        if s.has_unsent() && before(s.snd_nxt, s.wnd_end()) {
            write_xmit(w, id);
        } else {
            // The last segment sent: up to one MSS before snd_nxt.
            let mss = s.send_mss().max(1);
            let fin = s.fin_queued && s.snd_nxt == s.write_seq.wrapping_add(1);
            let data_end = s.snd_nxt.wrapping_sub(fin as u32);
            let data_len = data_end.wrapping_sub(s.snd_una).min(mss);
            let seq = data_end.wrapping_sub(data_len);
            let off = seq.wrapping_sub(s.snd_una) as usize;
            let payload = queue_slice(&s.sndq, off, data_len as usize);
            let mut flags = Flags::ACK;
            if data_len > 0 {
                flags = flags | Flags::PSH;
            }
            if fin {
                flags = flags | Flags::FIN;
            }
            let why = format!(
                "tail loss probe: the last segment again (tcp_send_loss_probe){}",
                if fin { ", FIN" } else { "" }
            );
            transmit(w, id, flags, seq, payload, why);
            let s = w.sk_mut(id);
            s.tlp_high_seq = Some(s.snd_nxt);
            if seq == s.snd_una {
                s.head_sent = now;
            }
        }
    }
    // tcp_rearm_rto
    let s = w.sk_mut(id);
    s.t_tlp = None;
    if s.in_flight() {
        let delta = (s.head_sent + s.rto).saturating_sub(now).max(JIFFY);
        s.t_rto = Some(now + delta);
    }
}

/// `tcp_write_wakeup` / `tcp_xmit_probe_skb`: a zero-window probe. When the
/// window has room, new data goes out instead; otherwise an ACK with an old
/// sequence number (snd_una - 1) that the receiver must answer.
pub fn send_probe(w: &mut World, id: SockId, nth: u32) {
    let s = w.sk(id);
    let una = s.snd_una;
    if before(s.snd_nxt, s.wnd_end()) && s.has_unsent() {
        write_xmit(w, id);
        return;
    }
    let why = format!("zero-window probe #{nth} (tcp_probe_timer)");
    transmit(w, id, Flags::ACK, una.wrapping_sub(1), Vec::new(), why);
}

/// `tcp_retransmit_timer` → `tcp_retransmit_skb`: go back to snd_una and
/// resend (cwnd 1, as after `tcp_enter_loss`).
pub fn retransmit(w: &mut World, id: SockId) {
    let s = w.sk_mut(id);
    if matches!(s.state, State::SynSent | State::SynRecv) {
        let why = if s.state == State::SynSent {
            format!("SYN retransmission #{}", s.syn_retries)
        } else {
            format!("SYN-ACK retransmission #{}", s.syn_retries)
        };
        s.t_rto = None;
        send_syn(w, id, &why);
        return;
    }
    s.ssthresh = (s.cwnd / 2).max(2);
    s.cwnd = 1;
    // tcp_enter_loss: TCP_CA_Loss until snd_una passes what was sent.
    s.in_loss = true;
    s.t_tlp = None;
    s.tlp_high_seq = None;
    s.snd_nxt = s.snd_una;
    s.rtt_sample = None;
    s.t_rto = None;
    write_xmit(w, id);
}
