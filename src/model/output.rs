//! Building and sending segments: net/ipv4/tcp_output.c, function by
//! function, and the replies net/ipv4/tcp_ipv4.c sends without a full
//! socket (`tcp_v4_send_reset`, `tcp_v4_send_ack`).
//!
//! Transmission ends in [`World::emit`]. A GSO skb of several MSS is cut
//! into MSS-sized segments on the way out, as software GSO does on the
//! linux engine's TUN link (`tcp_gso_segment`: PSH and FIN only on the
//! last segment).

use super::mem::{self, sk_forced_mem_schedule, sk_wmem_schedule, tcp_wmem_free_skb};
use super::skb::*;
use super::sock::*;
use super::timers::{self, rearm_rto, reset_xmit_timer};
use super::{TimerRef, World};
use crate::payload::Payload;
use crate::segment::{Flags, Segment, TcpOpt};
use crate::vocab::{Counter, RstReason};
use std::borrow::Cow;

/// `sk_gso_max_size`: the device's 65536 less `MAX_TCP_HEADER + 1`
/// (`sk_setup_caps`).
pub const SK_GSO_MAX_SIZE: u32 = 65536 - (MAX_TCP_HEADER + 1);
/// `sk_gso_max_segs` (`GSO_MAX_SEGS`).
pub const SK_GSO_MAX_SEGS: u32 = 65535;
/// The link's MTU (the linux engine's TUN devices and `lo` alike).
pub const LINK_MTU: u32 = 65535;

/// The reason shown beside a segment.
pub type Why = Cow<'static, str>;

/// `tcp_acceptable_seq`.
pub fn acceptable_seq(s: &Sock) -> u32 {
    if !before(s.wnd_end(), s.snd_nxt)
        || (s.wscale_ok && s.snd_nxt.wrapping_sub(s.wnd_end()) < (1u32 << s.rcv_wscale))
    {
        s.snd_nxt
    } else {
        s.wnd_end()
    }
}

/// `tcp_select_initial_window`: returns (rcv_wnd, window_clamp, rcv_wscale).
pub fn select_initial_window(
    space: i64,
    mss: u32,
    window_clamp: u32,
    wscale_ok: bool,
    rmem2: u32,
    rmem_max: u32,
) -> (u32, u32, u8) {
    let mut space = space.max(0) as u64;
    let window_clamp: u64 = if window_clamp == 0 {
        (u16::MAX as u64) << TCP_MAX_WSCALE
    } else {
        window_clamp as u64
    };
    space = space.min(window_clamp);
    if space > mss as u64 {
        space = space / mss as u64 * mss as u64;
    }
    // tcp_workaround_signed_windows is 0: no 32767 cap.
    let rcv_wnd = space as u32;
    let mut rcv_wscale = 0u8;
    if wscale_ok {
        let mut sp = space.max(rmem2 as u64).max(rmem_max as u64);
        sp = sp.min(window_clamp);
        let ilog2 = 63 - sp.max(1).leading_zeros() as i64;
        rcv_wscale = (ilog2 - 15).clamp(0, TCP_MAX_WSCALE as i64) as u8;
    }
    let clamp = window_clamp.min((u16::MAX as u64) << rcv_wscale) as u32;
    (rcv_wnd, clamp, rcv_wscale)
}

/// `__tcp_select_window` (tcp_shrink_window is 0, so the no-shrink path).
pub fn raw_select_window(s: &mut Sock) -> u32 {
    let mut mss = s.ack_rcv_mss as i64;
    let mut free_space = s.space();
    let allowed_space = s.full_space();
    let full_space = (s.window_clamp as i64).min(allowed_space);
    if mss > full_space {
        mss = full_space;
        if mss <= 0 {
            return 0;
        }
    }
    if free_space < (full_space >> 1) {
        s.ack_quick = 0;
        // tcp_under_memory_pressure: never here.
        free_space &= !((1i64 << s.rcv_wscale) - 1);
        if free_space < (allowed_space >> 4) || free_space < mss {
            return 0;
        }
    }
    if free_space > s.rcv_ssthresh as i64 {
        free_space = s.rcv_ssthresh as i64;
    }
    if s.rcv_wscale > 0 {
        let a = 1i64 << s.rcv_wscale;
        ((free_space + a - 1) & !(a - 1)) as u32
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

/// `tcp_select_window`.
pub fn select_window(s: &mut Sock) -> u16 {
    if s.ack_pending & ICSK_ACK_NOMEM != 0 {
        s.pred_flags = 0;
        s.rcv_wnd = 0;
        s.rcv_wup = s.rcv_nxt;
        return 0;
    }
    let old_win = s.rcv_wnd;
    let cur_win = s.receive_window();
    let mut new_win = raw_select_window(s);
    if new_win < cur_win {
        // "Never shrink the offered window"
        let a = 1u32 << s.rcv_wscale;
        new_win = cur_win.div_ceil(a) * a;
    }
    s.rcv_wnd = new_win;
    s.rcv_wup = s.rcv_nxt;
    let new_win = new_win.min(65535u32 << s.rcv_wscale) >> s.rcv_wscale;
    if new_win == 0 {
        s.pred_flags = 0;
    }
    let _ = old_win;
    new_win as u16
}

/// `tcp_established_options`: the options of a non-SYN segment and their
/// size.
pub fn established_options(s: &Sock, tsval: Option<u32>) -> (Vec<TcpOpt>, u32) {
    let mut opts = Vec::new();
    let mut size = 0;
    if s.tstamp_ok {
        opts.push(TcpOpt::Nop);
        opts.push(TcpOpt::Nop);
        opts.push(TcpOpt::Timestamp {
            val: tsval.unwrap_or(0),
            ecr: s.ts_recent,
        });
        size += TCPOLEN_TSTAMP_ALIGNED;
    }
    let eff_sacks = s.num_sacks as u32 + s.dsack as u32;
    if eff_sacks > 0 {
        let remaining = MAX_TCP_OPTION_SPACE - size;
        if remaining < TCPOLEN_SACK_BASE_ALIGNED + TCPOLEN_SACK_PERBLOCK {
            return (opts, size);
        }
        let n = eff_sacks.min((remaining - TCPOLEN_SACK_BASE_ALIGNED) / TCPOLEN_SACK_PERBLOCK);
        size += TCPOLEN_SACK_BASE_ALIGNED + n * TCPOLEN_SACK_PERBLOCK;
        // tcp_options_write: duplicate_sack[0] then selective_acks[],
        // adjacent in struct tcp_sock.
        let mut blocks = Vec::new();
        let mut src = Vec::new();
        if s.dsack {
            src.push(s.duplicate_sack);
        }
        src.extend_from_slice(&s.selective_acks);
        for b in src.iter().take(n as usize) {
            blocks.push((b.start_seq, b.end_seq));
        }
        opts.push(TcpOpt::Nop);
        opts.push(TcpOpt::Nop);
        opts.push(TcpOpt::Sack(blocks));
    }
    (opts, size)
}

/// `tcp_mtu_to_mss`.
pub fn mtu_to_mss(s: &Sock, pmtu: u32) -> u32 {
    let mut mss_now = pmtu as i64 - 20 - 20;
    if mss_now > s.mss_clamp as i64 {
        mss_now = s.mss_clamp as i64;
    }
    mss_now = mss_now.max(TCP_MIN_SND_MSS as i64);
    (mss_now - (s.tcp_header_len as i64 - 20)) as u32
}

/// `tcp_sync_mss`.
pub fn sync_mss(s: &mut Sock, pmtu: u32) -> u32 {
    let mut mss_now = mtu_to_mss(s, pmtu);
    mss_now = s.bound_to_half_wnd(mss_now);
    s.pmtu_cookie = pmtu;
    s.mss_cache = mss_now;
    mss_now
}

/// `tcp_current_mss`.
pub fn current_mss(s: &mut Sock) -> u32 {
    let mut mss_now = s.mss_cache;
    if s.pmtu_cookie != s.link_mtu {
        let mtu = s.link_mtu;
        mss_now = sync_mss(s, mtu);
    }
    let header_len = established_options(s, None).1 + 20;
    if header_len != s.tcp_header_len {
        let delta = header_len as i64 - s.tcp_header_len as i64;
        mss_now = (mss_now as i64 - delta) as u32;
    }
    mss_now
}

/// `tcp_xmit_size_goal`.
fn xmit_size_goal(s: &mut Sock, mss_now: u32, large_allowed: bool) -> u32 {
    if !large_allowed {
        return mss_now;
    }
    let new_size_goal = s.bound_to_half_wnd(SK_GSO_MAX_SIZE);
    let mut size_goal = s.gso_segs * mss_now;
    if new_size_goal < size_goal || new_size_goal >= size_goal + mss_now {
        s.gso_segs = (new_size_goal / mss_now)
            .min(SK_GSO_MAX_SEGS)
            .min(u16::MAX as u32);
        size_goal = s.gso_segs * mss_now;
    }
    size_goal.max(mss_now)
}

/// `tcp_send_mss`: (mss_now, size_goal).
pub fn send_mss(s: &mut Sock, oob: bool) -> (u32, u32) {
    let mss_now = current_mss(s);
    let size_goal = xmit_size_goal(s, mss_now, !oob);
    (mss_now, size_goal)
}

/// `tcp_time_stamp_ts` + tsoffset: the TS value a segment sent now carries.
pub fn ts_val(w: &World, s: &Sock) -> u32 {
    w.ts_clock().wrapping_add(s.tsoffset)
}

/// One skb handed to `__tcp_transmit_skb`.
pub struct XmitSkb {
    pub seq: u32,
    pub flags: u8,
    pub payload: Payload,
    pub pcount: u32,
    pub gso_size: u32,
    pub why: Why,
    pub rst_reason: Option<RstReason>,
}

/// `__tcp_transmit_skb`: builds the header (options, window, ack, urgent
/// pointer) and sends the skb, cut into segments if it is a GSO skb.
pub fn transmit_skb(w: &mut World, id: SockId, x: XmitSkb, rcv_nxt: u32) {
    let now = w.now;
    let tsv = ts_val(w, w.sk(id));
    let h = w.sk(id).host;
    let (rh, rport) = w.sk(id).remote.unwrap_or((h, 0));
    let s = w.sk_mut(id);
    s.tcp_wstamp = s.tcp_wstamp.max(now);
    let mut flags = x.flags;
    let options;
    let win;
    if flags & TCPHDR_SYN != 0 {
        options = syn_options(s, tsv);
        // "RFC1323: The window in SYN & SYN/ACK segments is never scaled."
        win = s.rcv_wnd.min(65535) as u16;
    } else {
        let (o, _) = established_options(s, Some(tsv));
        options = o;
        // "Force a PSH flag on all (GSO) packets to expedite GRO flush"
        if x.pcount > 1 {
            flags |= TCPHDR_PSH;
        }
        // tcp_options_write: "tp->rx_opt.dsack = 0" once the D-SACK went out.
        s.dsack = false;
        win = select_window(s);
    }
    let mut urg_ptr = 0u16;
    if s.urg_mode() && before(x.seq, s.snd_up) {
        if before(s.snd_up, x.seq.wrapping_add(0x10000)) {
            urg_ptr = s.snd_up.wrapping_sub(x.seq) as u16;
            flags |= TCPHDR_URG;
        } else if after(x.seq.wrapping_add(0xFFFF), s.snd_nxt) {
            urg_ptr = 0xFFFF;
            flags |= TCPHDR_URG;
        }
    }
    if flags & TCPHDR_ACK != 0 {
        tcp_event_ack_sent(w, id, rcv_nxt);
    }
    let len = x.payload.len();
    if len > 0 {
        tcp_event_data_sent(w, id);
        let s = w.sk_mut(id);
        s.data_segs_out += x.pcount;
        s.bytes_sent += len as u64;
    }
    let s = w.sk_mut(id);
    s.segs_out += x.pcount;
    let sport = s.local_port;
    let src_addr = w.hosts[h].addr;
    let dst_addr = w.hosts[rh].addr;
    let src = w.hosts[h].name.clone();
    let dst = w.hosts[rh].name.clone();
    let base = Segment {
        time_us: now,
        src,
        dst,
        src_addr,
        dst_addr,
        sport,
        dport: rport,
        seq: x.seq,
        ack: if flags & TCPHDR_ACK != 0 { rcv_nxt } else { 0 },
        flags: Flags(flags),
        win,
        urg_ptr,
        options,
        len,
        payload: None,
        why: Some(x.why),
        rst_reason: x.rst_reason,
        lost: false,
    };
    gso_emit(w, base, x.payload, x.gso_size, x.pcount);
}

/// Software GSO on the way to the device (`tcp_gso_segment`): a skb of
/// several MSS leaves as MSS-sized segments; FIN and PSH stay on the last
/// one, and the urgent pointer is kept only where it still points ahead.
fn gso_emit(w: &mut World, base: Segment, payload: Payload, gso_size: u32, pcount: u32) {
    // A device with TSO (`RunOptions::link_tso`) takes the skb whole: the
    // wire, as the tun device hands it over, shows one super-segment.
    if w.link_tso || pcount <= 1 || gso_size == 0 || payload.len() <= gso_size {
        let mut seg = base;
        seg.payload = Some(payload);
        w.emit(seg);
        return;
    }
    let total = payload.len();
    let mut off = 0;
    while off < total {
        let n = gso_size.min(total - off);
        let last = off + n == total;
        let mut seg = base.clone();
        seg.seq = base.seq.wrapping_add(off);
        seg.len = n;
        seg.payload = Some(payload.slice(off, n));
        if !last {
            seg.flags = Flags(seg.flags.0 & !(TCPHDR_FIN | TCPHDR_PSH));
        }
        if seg.flags.urg() {
            let up = base.urg_ptr as u32;
            if up > off {
                seg.urg_ptr = (up - off) as u16;
            } else {
                seg.urg_ptr = 0;
                seg.flags = Flags(seg.flags.0 & !TCPHDR_URG);
            }
        }
        w.emit(seg);
        off += n;
    }
}

/// `tcp_syn_options` for our SYN (and a crossed SYN-ACK), in
/// `tcp_options_write` order: mss, sackOK+TS (or nop,nop,sackOK), nop+wscale.
fn syn_options(s: &Sock, tsv: u32) -> Vec<TcpOpt> {
    let mut o = vec![TcpOpt::Mss(s.advmss as u16)];
    let ts = s.tstamp_ok;
    if ts {
        if s.sack_ok {
            o.push(TcpOpt::SackPerm);
        } else {
            o.push(TcpOpt::Nop);
            o.push(TcpOpt::Nop);
        }
        o.push(TcpOpt::Timestamp {
            val: tsv,
            ecr: s.ts_recent,
        });
    } else if s.sack_ok {
        o.push(TcpOpt::Nop);
        o.push(TcpOpt::Nop);
        o.push(TcpOpt::SackPerm);
    }
    if s.wscale_ok {
        o.push(TcpOpt::Nop);
        o.push(TcpOpt::WScale(s.rcv_wscale));
    }
    o
}

/// `tcp_event_ack_sent`.
fn tcp_event_ack_sent(w: &mut World, id: SockId, rcv_nxt: u32) {
    let s = w.sk_mut(id);
    s.compressed_ack = 0;
    if rcv_nxt != s.rcv_nxt {
        return;
    }
    // tcp_dec_quickack_mode
    if s.ack_quick > 0 {
        let pkts = if s.ack_scheduled() { 1 } else { 0 };
        if pkts >= s.ack_quick {
            s.ack_quick = 0;
            s.ack_ato = TCP_ATO_MIN;
        } else {
            s.ack_quick -= pkts;
        }
    }
    // inet_csk_clear_xmit_timer(sk, ICSK_TIME_DACK)
    s.ack_pending = 0;
    w.disarm(TimerRef::Delack(id.0));
}

/// `tcp_event_data_sent`.
fn tcp_event_data_sent(w: &mut World, id: SockId) {
    let now = w.jiffies();
    if w.sk(id).packets_in_flight() == 0 {
        super::cubic::cwnd_event_tx_start(w, id);
    }
    let s = w.sk_mut(id);
    s.lsndtime = now;
    // "If it is a reply for ato after last received packet, increase
    // pingpong count."
    if now.wrapping_sub(s.ack_lrcvtime) < s.ack_ato && s.ack_pingpong < 255 {
        s.ack_pingpong += 1;
    }
}

/// Sends a copy of a queued skb (the `clone_it` case): the rtx-queue or
/// write-queue skb keeps its flags; its timestamp and rate snapshot are
/// updated (`tcp_update_skb_after_send`, `tcp_rate_skb_sent`).
fn transmit_queued(w: &mut World, id: SockId, rtx: bool, idx: usize, why: Why) {
    let now = w.now;
    let x = {
        let s = w.sk_mut(id);
        let skb = if rtx {
            &s.rtx_queue[idx]
        } else {
            &s.write_queue[idx]
        };
        XmitSkb {
            seq: skb.seq,
            flags: skb.flags,
            payload: skb.payload.clone(),
            pcount: skb.pcount,
            gso_size: skb.gso_size,
            why,
            rst_reason: None,
        }
    };
    super::ack::tcp_rate_skb_sent(w, id, rtx, idx);
    let rcv_nxt = w.sk(id).rcv_nxt;
    transmit_skb(w, id, x, rcv_nxt);
    let s = w.sk_mut(id);
    let skb = if rtx {
        &mut s.rtx_queue[idx]
    } else {
        &mut s.write_queue[idx]
    };
    skb.mstamp = now;
}

/// The reason for a data segment, from the call or timer that sent it.
fn data_why(w: &World, s: &Sock, skb: &TxSkb, retrans: bool) -> Why {
    if let Some(c) = &w.why_ctx {
        return Cow::Owned(c.clone());
    }
    let mut why: Why = if retrans {
        Cow::Borrowed("retransmission")
    } else if !skb.is_empty() {
        Cow::Borrowed("data")
    } else {
        Cow::Borrowed("")
    };
    if skb.fin() {
        let f = skb.why.unwrap_or("FIN");
        why = if why.is_empty() {
            Cow::Borrowed(f)
        } else {
            Cow::Owned(format!("{why} + {f}"))
        };
    }
    if s.urg_mode() && before(skb.seq, s.snd_up) && !retrans {
        why = Cow::Owned(format!("{why} with urgent pointer (send MSG_OOB)"));
    }
    why
}

/// `tcp_event_new_data_sent`: the head of the write queue was sent and
/// moves to the retransmit queue.
fn tcp_event_new_data_sent(w: &mut World, id: SockId) {
    let prior_packets = w.sk(id).packets_out;
    let s = w.sk_mut(id);
    let Some(skb) = s.write_queue.pop_front() else {
        return;
    };
    s.snd_nxt = skb.end_seq;
    if s.highest_sack.is_none() {
        s.highest_sack = Some(skb.seq);
    }
    s.packets_out += skb.pcount;
    s.rtx_queue.push_back(skb);
    if prior_packets == 0 || s.pending == Some(XmitTimer::LossProbe) {
        rearm_rto(w, id);
    }
    super::ack::tcp_check_space(w, id);
}

/// `tcp_set_skb_tso_segs`.
pub fn set_skb_tso_segs(skb: &mut TxSkb, mss_now: u32) -> u32 {
    if skb.len() <= mss_now {
        skb.gso_size = 0;
        skb.pcount = 1;
        return 1;
    }
    skb.gso_size = mss_now;
    skb.pcount = skb.len().div_ceil(mss_now);
    skb.pcount
}

/// `tcp_adjust_pcount`.
fn adjust_pcount(s: &mut Sock, sacked: u8, decr: i32) {
    s.packets_out = (s.packets_out as i32 - decr) as u32;
    if sacked & TCPCB_SACKED_ACKED != 0 {
        s.sacked_out = (s.sacked_out as i32 - decr) as u32;
    }
    if sacked & TCPCB_SACKED_RETRANS != 0 {
        s.retrans_out = (s.retrans_out as i32 - decr) as u32;
    }
    if sacked & TCPCB_LOST != 0 {
        s.lost_out = (s.lost_out as i32 - decr) as u32;
    }
    if s.is_reno() && decr > 0 {
        s.sacked_out -= s.sacked_out.min(decr as u32);
    }
}

/// Splits an skb at `len`: the first part keeps `len` bytes, a new skb
/// after it gets the rest. PSH and FIN stay with the second part. Used by
/// `tcp_fragment` (either queue) and `tso_fragment` (write queue).
fn split_skb(w: &mut World, id: SockId, rtx: bool, idx: usize, len: u32, mss_now: u32) {
    let (buff_truesize, _) = alloc_skb(MAX_TCP_HEADER);
    let s = w.sk_mut(id);
    // tcp_stream_alloc_skb(.., true): force-scheduled.
    sk_forced_mem_schedule(s, buff_truesize);
    mem::wmem_charge(s, buff_truesize);
    let q = if rtx {
        &mut s.rtx_queue
    } else {
        &mut s.write_queue
    };
    let skb = &mut q[idx];
    let nlen = skb.len() - len;
    let tail = skb.payload.split_off(len);
    let mut buff = TxSkb {
        seq: skb.seq.wrapping_add(len),
        end_seq: skb.end_seq,
        flags: skb.flags,
        payload: tail,
        truesize: buff_truesize + nlen,
        pcount: 0,
        gso_size: 0,
        sacked: skb.sacked,
        mstamp: skb.mstamp,
        eor: skb.eor,
        tx: skb.tx,
        why: skb.why,
    };
    skb.truesize -= nlen;
    skb.end_seq = buff.seq;
    skb.flags &= !(TCPHDR_FIN | TCPHDR_PSH);
    skb.eor = false;
    let old_factor = skb.pcount;
    set_skb_tso_segs(skb, mss_now);
    set_skb_tso_segs(&mut buff, mss_now);
    let (skb_pcount, skb_sacked) = (skb.pcount, skb.sacked);
    let buff_end = buff.end_seq;
    let buff_pcount = buff.pcount;
    q.insert(idx + 1, buff);
    // "If this packet has been sent out already, we must adjust the
    // various packet counters."
    if !before(s.snd_nxt, buff_end) {
        let diff = old_factor as i32 - skb_pcount as i32 - buff_pcount as i32;
        if diff != 0 {
            adjust_pcount(s, skb_sacked, diff);
        }
    }
}

/// `tcp_fragment`.
pub fn tcp_fragment(
    w: &mut World,
    id: SockId,
    rtx: bool,
    idx: usize,
    len: u32,
    mss_now: u32,
) -> bool {
    let s = w.sk(id);
    let q = if rtx { &s.rtx_queue } else { &s.write_queue };
    if len > q[idx].len() {
        return false;
    }
    // "tcp_sendmsg() can overshoot sk_wmem_queued by one full size skb"
    let limit = s.sndbuf as i64 + 2 * skb_truesize(65536) as i64;
    if (s.wmem_queued >> 1) as i64 > limit && rtx && idx != 0 && idx + 1 != s.rtx_queue.len() {
        let h = s.host;
        w.count(h, Counter::TCPWqueueTooBig);
        return false;
    }
    split_skb(w, id, rtx, idx, len, mss_now);
    true
}

/// `tso_fragment`: split the write-queue skb at `len`.
fn tso_fragment(w: &mut World, id: SockId, idx: usize, len: u32, mss_now: u32) {
    split_skb(w, id, false, idx, len, mss_now);
}

/// `tcp_trim_head`: drop `len` acknowledged bytes from the front of a
/// retransmit-queue skb.
pub fn tcp_trim_head(s: &mut Sock, idx: usize, len: u32) {
    let skb = &mut s.rtx_queue[idx];
    skb.payload.advance(len);
    skb.seq = skb.seq.wrapping_add(len);
    skb.truesize -= len;
    let (pcount, gso) = (skb.pcount, skb.gso_size);
    if pcount > 1 {
        set_skb_tso_segs(skb, gso);
    }
    s.wmem_queued -= len;
    mem::sk_mem_uncharge(s, len);
}

/// `tcp_minshall_update`.
fn minshall_update(s: &mut Sock, mss_now: u32, skb_len: u32, pcount: u32, end_seq: u32) {
    if skb_len < pcount * mss_now {
        s.snd_sml = end_seq;
    }
}

/// `tcp_nagle_check`.
fn nagle_check(partial: bool, s: &Sock, nonagle: u8) -> bool {
    partial
        && ((nonagle & TCP_NAGLE_CORK) != 0
            || (nonagle == 0 && s.packets_out > 0 && s.minshall_check()))
}

/// `tcp_nagle_test`.
fn nagle_test(s: &Sock, skb: &TxSkb, cur_mss: u32, nonagle: u8) -> bool {
    if nonagle & TCP_NAGLE_PUSH != 0 {
        return true;
    }
    // "Don't use the nagle rule for urgent data (or for the final FIN)."
    if s.urg_mode() || skb.fin() {
        return true;
    }
    !nagle_check(skb.len() < cur_mss, s, nonagle)
}

/// `tcp_snd_wnd_test`.
fn snd_wnd_test(s: &Sock, skb: &TxSkb, cur_mss: u32) -> bool {
    let mut end_seq = skb.end_seq;
    if skb.len() > cur_mss {
        end_seq = skb.seq.wrapping_add(cur_mss);
    }
    !after(end_seq, s.wnd_end())
}

/// `tcp_cwnd_test`.
fn cwnd_test(s: &Sock) -> u32 {
    let in_flight = s.packets_in_flight();
    let cwnd = s.snd_cwnd;
    if in_flight >= cwnd {
        return 0;
    }
    let halfcwnd = (cwnd >> 1).max(1);
    halfcwnd.min(cwnd - in_flight)
}

/// `tcp_tso_autosize` / `tcp_tso_segs`.
pub fn tso_segs(w: &World, id: SockId, mss_now: u32) -> u32 {
    let s = w.sk(id);
    let min_tso = w.sys(id).tcp_min_tso_segs;
    let pacing = super::cubic::pacing_rate(s);
    let mut bytes: u64 = pacing >> 10;
    let r = super::ack::min_rtt(s) >> 9; // tcp_tso_rtt_log
    if r < 32 {
        bytes = bytes.saturating_add((SK_GSO_MAX_SIZE >> r) as u64);
    }
    let bytes = bytes.min(SK_GSO_MAX_SIZE as u64) as u32;
    let segs = (bytes / mss_now.max(1)).max(min_tso);
    segs.min(SK_GSO_MAX_SEGS)
}

/// `tcp_mss_split_point`.
fn mss_split_point(s: &Sock, idx: usize, mss_now: u32, max_segs: u32, nonagle: u8) -> u32 {
    let skb = &s.write_queue[idx];
    let window = s.wnd_end().wrapping_sub(skb.seq);
    let max_len = mss_now * max_segs;
    let is_tail = idx + 1 == s.write_queue.len();
    if max_len <= window && !is_tail {
        return max_len;
    }
    let needed = skb.len().min(window);
    if max_len <= needed {
        return max_len;
    }
    let partial = needed % mss_now;
    if nagle_check(partial != 0, s, nonagle) {
        return needed - partial;
    }
    needed
}

/// `tcp_grow_skb`: pull bytes of the next unsent skb into this one.
fn grow_skb(w: &mut World, id: SockId, amount: u32) {
    let s = w.sk_mut(id);
    if s.write_queue.len() < 2 {
        return;
    }
    if s.write_queue[0].eor {
        return;
    }
    let nlen = amount.min(s.write_queue[1].len());
    if nlen == 0 {
        return;
    }
    let moved = s.write_queue[1].payload.slice(0, nlen);
    s.write_queue[1].payload.advance(nlen);
    s.write_queue[1].seq = s.write_queue[1].seq.wrapping_add(nlen);
    s.write_queue[1].truesize -= nlen;
    let skb = &mut s.write_queue[0];
    skb.payload.append(&moved);
    skb.end_seq = skb.end_seq.wrapping_add(nlen);
    skb.truesize += nlen;
    if s.write_queue[1].is_empty() {
        // "In case FIN is set, we need to update end_seq", then
        // tcp_eat_one_skb: flags and EOR move over, the skb is freed.
        let next = s.write_queue.remove(1).expect("checked");
        let skb = &mut s.write_queue[0];
        skb.end_seq = next.end_seq;
        skb.flags |= next.flags;
        skb.eor = next.eor;
        if next.why.is_some() {
            skb.why = next.why;
        }
        tcp_wmem_free_skb(s, next.truesize);
    }
}

/// `tcp_tso_should_defer`.
fn tso_should_defer(w: &World, id: SockId, max_segs: u32) -> (bool, bool, bool) {
    // Returns (defer, is_cwnd_limited, is_rwnd_limited).
    let s = w.sk(id);
    if s.ca_state >= CaState::Recovery {
        return (false, false, false);
    }
    // "allow defer only if the last write was recent (1 ms)"
    if w.now as i64 - s.tcp_wstamp as i64 - 1000 > 0 {
        return (false, false, false);
    }
    let skb = &s.write_queue[0];
    let in_flight = s.packets_in_flight();
    let send_win = s.wnd_end().wrapping_sub(skb.seq);
    let cong_win = (s.snd_cwnd - in_flight) * s.mss_cache;
    let limit = send_win.min(cong_win);
    if limit >= max_segs * s.mss_cache {
        return (false, false, false);
    }
    if s.write_queue.len() > 1 && limit >= skb.len() {
        return (false, false, false);
    }
    let win_divisor = w.sys(id).tcp_tso_win_divisor;
    if let Some(chunk) = s
        .snd_wnd
        .min(s.snd_cwnd * s.mss_cache)
        .checked_div(win_divisor)
    {
        if limit >= chunk {
            return (false, false, false);
        }
    } else if limit > 3 * s.mss_cache {
        return (false, false, false);
    }
    let Some(head) = s.rtx_queue.front() else {
        return (false, false, false);
    };
    let srtt_in_ns = 125 * s.srtt_us as i64;
    let expected_ack = head.mstamp as i64 * 1000 + srtt_in_ns;
    let how_far = expected_ack - w.now as i64 * 1000;
    let threshold = (srtt_in_ns >> 1).min(1_000_000);
    if how_far - threshold > 0 {
        return (false, false, false);
    }
    if cong_win < send_win {
        if cong_win <= skb.len() {
            return (true, true, false);
        }
    } else if send_win <= skb.len() {
        return (true, false, true);
    }
    if skb.fin() || skb.eor {
        return (false, false, false);
    }
    (true, false, false)
}

/// `tcp_write_xmit`. `push_one` is 0, 1 (`tcp_push_one`) or 2 (a loss
/// probe: ignore cwnd once). Returns true when nothing is in flight and
/// unsent data waits (the caller arms the probe timer).
pub fn write_xmit(w: &mut World, id: SockId, mss_now: u32, nonagle: u8, push_one: u8) -> bool {
    let mut sent_pkts = 0u32;
    let mut is_cwnd_limited = false;
    let mut is_rwnd_limited = false;
    // tcp_mtu_probe: tcp_mtu_probing is 0.
    let max_segs = tso_segs(w, id, mss_now);
    while !w.sk(id).write_queue.is_empty() {
        // tcp_write_xmit skips transmission ("skip network transmission")
        // only when `tp->repair && tp->repair_queue == TCP_SEND_QUEUE`.
        // TCP_REPAIR 1 sets repair_queue to TCP_NO_QUEUE and scripts have
        // no TCP_REPAIR_QUEUE, so a socket in repair mode transmits (and
        // probes, and retransmits) like any other.
        let mut cwnd_quota = cwnd_test(w.sk(id));
        if cwnd_quota == 0 {
            if push_one == 2 {
                cwnd_quota = 1;
            } else {
                break;
            }
        }
        cwnd_quota = cwnd_quota.min(max_segs);
        let missing = cwnd_quota as i64 * mss_now as i64 - w.sk(id).write_queue[0].len() as i64;
        if missing > 0 {
            grow_skb(w, id, missing as u32);
        }
        let tso_segs = set_skb_tso_segs(&mut w.sk_mut(id).write_queue[0], mss_now);
        if !snd_wnd_test(w.sk(id), &w.sk(id).write_queue[0], mss_now) {
            is_rwnd_limited = true;
            break;
        }
        if tso_segs == 1 {
            let s = w.sk(id);
            let last = s.write_queue.len() == 1;
            if !nagle_test(
                s,
                &s.write_queue[0],
                mss_now,
                if last { nonagle } else { TCP_NAGLE_PUSH },
            ) {
                break;
            }
        } else if push_one == 0 {
            let (defer, cl, rl) = tso_should_defer(w, id, max_segs);
            if defer {
                is_cwnd_limited |= cl;
                is_rwnd_limited |= rl;
                break;
            }
        }
        let mut limit = mss_now;
        if tso_segs > 1 && !w.sk(id).urg_mode() {
            limit = mss_split_point(w.sk(id), 0, mss_now, cwnd_quota, nonagle);
        }
        if w.sk(id).write_queue[0].len() > limit {
            tso_fragment(w, id, 0, limit, mss_now);
        }
        // tcp_small_queue_check: TX completes inside dev_queue_xmit on the
        // TUN link, so sk_wmem_alloc never holds more than this skb.
        let s = w.sk(id);
        let skb = &s.write_queue[0];
        if skb.end_seq == skb.seq {
            break;
        }
        let why = data_why(w, s, skb, false);
        transmit_queued(w, id, false, 0, why);
        let (len, pcount, end_seq) = {
            let skb = &w.sk(id).write_queue[0];
            (skb.len(), skb.pcount, skb.end_seq)
        };
        tcp_event_new_data_sent(w, id);
        minshall_update(w.sk_mut(id), mss_now, len, pcount, end_seq);
        sent_pkts += pcount;
        if push_one != 0 {
            break;
        }
    }
    let s = w.sk(id);
    is_cwnd_limited |= s.packets_in_flight() >= s.snd_cwnd;
    if sent_pkts > 0 || is_cwnd_limited {
        cwnd_validate(w, id, is_cwnd_limited);
    }
    let _ = is_rwnd_limited;
    if sent_pkts > 0 {
        let s = w.sk_mut(id);
        if s.in_cwnd_reduction() {
            s.prr_out += sent_pkts;
        }
        if push_one != 2 {
            schedule_loss_probe(w, id, false);
        }
        return false;
    }
    let s = w.sk(id);
    s.packets_out == 0 && !s.write_queue.is_empty()
}

/// `tcp_cwnd_validate` (with `tcp_cwnd_application_limited`).
fn cwnd_validate(w: &mut World, id: SockId, is_cwnd_limited: bool) {
    let now = w.jiffies();
    let ssai = w.sys(id).tcp_slow_start_after_idle;
    let s = w.sk_mut(id);
    if !before(s.snd_una, s.cwnd_usage_seq)
        || is_cwnd_limited
        || (!s.is_cwnd_limited && s.packets_out > s.max_packets_out)
    {
        s.is_cwnd_limited = is_cwnd_limited;
        s.max_packets_out = s.packets_out;
        s.cwnd_usage_seq = s.snd_nxt;
    }
    if s.is_cwnd_limited_fn() {
        s.snd_cwnd_used = 0;
        s.snd_cwnd_stamp = now;
    } else {
        if s.packets_out > s.snd_cwnd_used {
            s.snd_cwnd_used = s.packets_out;
        }
        if ssai && now.wrapping_sub(s.snd_cwnd_stamp) as i64 >= s.rto as i64 {
            // tcp_cwnd_application_limited
            if s.ca_state == CaState::Open && s.has_socket && !s.nospace {
                let init_win = TCP_INIT_CWND;
                let win_used = s.snd_cwnd_used.max(init_win);
                if win_used < s.snd_cwnd {
                    s.snd_ssthresh = s.current_ssthresh();
                    s.snd_cwnd = (s.snd_cwnd + win_used) >> 1;
                }
                s.snd_cwnd_used = 0;
            }
            s.snd_cwnd_stamp = now;
        }
    }
}

/// `tcp_schedule_loss_probe`.
pub fn schedule_loss_probe(w: &mut World, id: SockId, advancing_rto: bool) -> bool {
    let early_retrans = w.sys(id).tcp_early_retrans;
    let s = w.sk(id);
    if (early_retrans != 3 && early_retrans != 4)
        || s.packets_out == 0
        || !s.is_sack()
        || (s.ca_state != CaState::Open && s.ca_state != CaState::Cwr)
    {
        return false;
    }
    let mut timeout = if s.srtt_us > 0 {
        let mut t = (s.srtt_us >> 2) as u64;
        if s.packets_out == 1 {
            t += jiffies_to_usecs(s.rto_min);
        } else {
            t += TCP_TIMEOUT_MIN_US;
        }
        usecs_to_jiffies(t)
    } else {
        TCP_TIMEOUT_INIT
    };
    let rto_delta_us = if advancing_rto {
        jiffies_to_usecs(s.rto) as i64
    } else {
        timers::rto_delta_us(w, id)
    };
    if rto_delta_us > 0 {
        timeout = timeout.min(usecs_to_jiffies(rto_delta_us as u64));
    }
    reset_xmit_timer(w, id, XmitTimer::LossProbe, timeout);
    true
}

/// `tcp_send_loss_probe`: new data if the window allows, else the last
/// segment again.
pub fn send_loss_probe(w: &mut World, id: SockId) {
    let mss = current_mss(w.sk_mut(id));
    if w.sk(id).tlp_high_seq != 0 {
        rearm_rto(w, id);
        return;
    }
    w.sk_mut(id).tlp_retrans = false;
    let can_send_new = {
        let s = w.sk(id);
        s.write_queue
            .front()
            .is_some_and(|skb| snd_wnd_test(s, skb, mss))
    };
    if can_send_new {
        let pcount = w.sk(id).packets_out;
        w.why_ctx = Some("tail loss probe: new data (tcp_send_loss_probe)".into());
        write_xmit(w, id, mss, TCP_NAGLE_OFF, 2);
        w.why_ctx = None;
        if w.sk(id).packets_out > pcount {
            probe_sent(w, id);
        }
        rearm_rto(w, id);
        return;
    }
    let Some(last) = w.sk(id).rtx_queue.len().checked_sub(1) else {
        w.sk_mut(id).pending = None;
        return;
    };
    let mut idx = last;
    let (pcount, len) = {
        let skb = &w.sk(id).rtx_queue[idx];
        (skb.pcount, skb.len())
    };
    if pcount == 0 {
        rearm_rto(w, id);
        return;
    }
    if pcount > 1 && len > (pcount - 1) * mss {
        if !tcp_fragment(w, id, true, idx, (pcount - 1) * mss, mss) {
            rearm_rto(w, id);
            return;
        }
        idx += 1;
    }
    let why = {
        let skb = &w.sk(id).rtx_queue[idx];
        format!(
            "tail loss probe: the last segment again (tcp_send_loss_probe){}",
            if skb.fin() { ", FIN" } else { "" }
        )
    };
    w.why_ctx = Some(why);
    let ok = retransmit_skb_inner(w, id, idx, 1);
    w.why_ctx = None;
    if !ok {
        rearm_rto(w, id);
        return;
    }
    w.sk_mut(id).tlp_retrans = true;
    probe_sent(w, id);
    rearm_rto(w, id);
}

fn probe_sent(w: &mut World, id: SockId) {
    let h = w.sk(id).host;
    let s = w.sk_mut(id);
    s.tlp_high_seq = s.snd_nxt;
    w.count(h, Counter::TCPLossProbes);
    // "Reset s.t. tcp_rearm_rto will restart timer from now"
    w.sk_mut(id).pending = None;
}

/// `__tcp_push_pending_frames`.
pub fn push_pending_frames_mss(w: &mut World, id: SockId, cur_mss: u32, nonagle: u8) {
    if w.sk(id).state == State::Close {
        return;
    }
    if write_xmit(w, id, cur_mss, nonagle, 0) {
        timers::check_probe_timer(w, id);
    }
}

/// `tcp_push_pending_frames`.
pub fn push_pending_frames(w: &mut World, id: SockId) {
    if !w.sk(id).write_queue.is_empty() {
        let mss = current_mss(w.sk_mut(id));
        let nonagle = w.sk(id).nonagle;
        push_pending_frames_mss(w, id, mss, nonagle);
    }
}

/// `tcp_push_one`.
pub fn push_one(w: &mut World, id: SockId, mss_now: u32) {
    write_xmit(w, id, mss_now, TCP_NAGLE_PUSH, 1);
}

/// `tcp_skb_entail`: a new empty skb at the tail of the write queue.
pub fn skb_entail(w: &mut World, id: SockId, truesize: u32) {
    let s = w.sk_mut(id);
    let skb = TxSkb {
        seq: s.write_seq,
        end_seq: s.write_seq,
        flags: TCPHDR_ACK,
        payload: Payload::empty(),
        truesize,
        pcount: 0,
        gso_size: 0,
        sacked: if s.repair { TCPCB_REPAIRED } else { 0 },
        mstamp: 0,
        eor: false,
        tx: TxRate::default(),
        why: None,
    };
    s.write_queue.push_back(skb);
    mem::wmem_charge(s, truesize);
    if s.nonagle & TCP_NAGLE_PUSH != 0 {
        s.nonagle &= !TCP_NAGLE_PUSH;
    }
    slow_start_after_idle_check(w, id);
}

/// `tcp_slow_start_after_idle_check` with `tcp_cwnd_restart`.
pub fn slow_start_after_idle_check(w: &mut World, id: SockId) {
    let now = w.jiffies();
    if !w.sys(id).tcp_slow_start_after_idle || w.sk(id).packets_out > 0 {
        return;
    }
    let s = w.sk(id);
    let delta = now.wrapping_sub(s.lsndtime) as i64;
    if delta > s.rto as i64 {
        super::cubic::cwnd_event_restart(w, id);
        let s = w.sk_mut(id);
        s.snd_ssthresh = s.current_ssthresh();
        let restart_cwnd = TCP_INIT_CWND.min(s.snd_cwnd);
        let mut cwnd = s.snd_cwnd;
        let mut d = delta;
        loop {
            d -= s.rto as i64;
            if d > 0 && cwnd > restart_cwnd {
                cwnd >>= 1;
            } else {
                break;
            }
        }
        s.snd_cwnd = cwnd.max(restart_cwnd);
        s.snd_cwnd_stamp = now;
        s.snd_cwnd_used = 0;
    }
}

/// `tcp_mark_push`.
pub fn mark_push(s: &mut Sock) {
    if let Some(skb) = s.write_queue.back_mut() {
        skb.flags |= TCPHDR_PSH;
    }
    s.pushed_seq = s.write_seq;
}

/// `forced_push`.
pub fn forced_push(s: &Sock) -> bool {
    after(s.write_seq, s.pushed_seq.wrapping_add(s.max_window >> 1))
}

/// `tcp_push` (autocorking never holds: TX completes at once on the TUN
/// link, so `sk_wmem_alloc` never exceeds the skb's truesize).
pub fn tcp_push(w: &mut World, id: SockId, more: bool, oob: bool, mss_now: u32, nonagle: u8) {
    let s = w.sk_mut(id);
    if s.write_queue.is_empty() {
        return;
    }
    if !more || forced_push(s) {
        mark_push(s);
    }
    if oob {
        // tcp_mark_urg
        s.snd_up = s.write_seq;
    }
    let nonagle = if more { TCP_NAGLE_CORK } else { nonagle };
    push_pending_frames_mss(w, id, mss_now, nonagle);
}

/// `__tcp_retransmit_skb` on the skb at `idx` of the retransmit queue.
fn retransmit_skb_inner(w: &mut World, id: SockId, idx: usize, segs: u32) -> bool {
    // trim what was acknowledged already
    {
        let s = w.sk_mut(id);
        let skb = &mut s.rtx_queue[idx];
        if before(skb.seq, s.snd_una) {
            if skb.syn() {
                skb.flags &= !TCPHDR_SYN;
                skb.seq = skb.seq.wrapping_add(1);
            }
            let skb = &s.rtx_queue[idx];
            if before(skb.seq, s.snd_una) {
                if before(skb.end_seq, s.snd_una) {
                    return false;
                }
                let trim = s.snd_una.wrapping_sub(skb.seq);
                tcp_trim_head(s, idx, trim);
            }
        }
    }
    let cur_mss = current_mss(w.sk_mut(id));
    let s = w.sk(id);
    let mut avail_wnd = s.wnd_end().wrapping_sub(s.rtx_queue[idx].seq) as i32;
    // "If receiver has shrunk his window, and skb is out of new window, do
    // not retransmit it ... when window is shrunk to zero ... our
    // retransmit of one segment serves as a zero window probe."
    if avail_wnd <= 0 {
        if s.rtx_queue[idx].seq != s.snd_una {
            return false;
        }
        avail_wnd = cur_mss as i32;
    }
    let mut len = cur_mss * segs;
    if len as i32 > avail_wnd {
        len = (avail_wnd as u32 / cur_mss) * cur_mss;
        if len == 0 {
            len = avail_wnd as u32;
        }
    }
    if w.sk(id).rtx_queue[idx].len() > len {
        if !tcp_fragment(w, id, true, idx, len, cur_mss) {
            return false;
        }
    } else {
        let s = w.sk_mut(id);
        let skb = &mut s.rtx_queue[idx];
        let diff = skb.pcount as i32;
        set_skb_tso_segs(skb, cur_mss);
        let diff = diff - skb.pcount as i32;
        let sacked = skb.sacked;
        if diff != 0 {
            adjust_pcount(s, sacked, diff);
        }
        let avail = (avail_wnd as u32).min(cur_mss);
        if s.rtx_queue[idx].len() < avail {
            retrans_try_collapse(w, id, idx, avail as i32);
        }
    }
    let h = w.sk(id).host;
    let (pcount, len, syn) = {
        let skb = &w.sk(id).rtx_queue[idx];
        (skb.pcount, skb.len(), skb.syn())
    };
    if syn {
        w.count(h, Counter::TCPSynRetrans);
    }
    let s = w.sk_mut(id);
    s.total_retrans += pcount;
    s.bytes_retrans += len as u64;
    let why = match &w.why_ctx {
        Some(c) => Cow::Owned(c.clone()),
        None => {
            let s = w.sk(id);
            data_why(w, s, &s.rtx_queue[idx], true)
        }
    };
    transmit_queued(w, id, true, idx, why);
    let skb = &mut w.sk_mut(id).rtx_queue[idx];
    skb.sacked |= TCPCB_EVER_RETRANS;
    true
}

/// `tcp_retransmit_skb`.
pub fn retransmit_skb(w: &mut World, id: SockId, idx: usize, segs: u32) -> bool {
    let ok = retransmit_skb_inner(w, id, idx, segs);
    let ts = w.ts_clock();
    let s = w.sk_mut(id);
    let Some(skb) = s.rtx_queue.get_mut(idx) else {
        return ok;
    };
    if ok {
        skb.sacked |= TCPCB_RETRANS & !TCPCB_REPAIRED;
        s.retrans_out += skb.pcount;
    }
    let (pcount, mstamp) = (skb.pcount, skb.mstamp);
    if s.retrans_stamp == 0 {
        s.retrans_stamp = if ok { (mstamp / 1000) as u32 } else { ts };
        if s.retrans_stamp == 0 {
            s.retrans_stamp = 1;
        }
    }
    if s.undo_retrans < 0 {
        s.undo_retrans = 0;
    }
    s.undo_retrans += pcount as i32;
    ok
}

/// `tcp_retrans_try_collapse`: merge following small skbs into this one.
fn retrans_try_collapse(w: &mut World, id: SockId, idx: usize, mut space: i32) {
    if !w.sys(id).tcp_retrans_collapse {
        return;
    }
    let s = w.sk_mut(id);
    if s.rtx_queue[idx].syn() {
        return;
    }
    let can_collapse =
        |skb: &TxSkb| skb.pcount <= 1 && skb.sacked & TCPCB_SACKED_ACKED == 0 && !skb.eor;
    let mut first = true;
    let mut j = idx;
    while j < s.rtx_queue.len() {
        let skb = &s.rtx_queue[j];
        if !can_collapse(skb) || s.rtx_queue[idx].eor {
            break;
        }
        space -= skb.len() as i32;
        if first {
            first = false;
            j += 1;
            continue;
        }
        if space < 0 || after(skb.end_seq, s.wnd_end()) {
            break;
        }
        // tcp_collapse_retrans(sk, to)
        let next = s.rtx_queue.remove(idx + 1).expect("exists");
        let to = &mut s.rtx_queue[idx];
        to.payload.append(&next.payload);
        to.truesize += next.len();
        to.end_seq = next.end_seq;
        to.flags |= next.flags;
        to.sacked |= next.sacked & TCPCB_EVER_RETRANS;
        to.eor = next.eor;
        if next.why.is_some() {
            to.why = next.why;
        }
        if s.retransmit_hint == Some(next.seq) {
            s.retransmit_hint = Some(s.rtx_queue[idx].seq);
        }
        if s.highest_sack == Some(next.seq) {
            s.highest_sack = Some(s.rtx_queue[idx].seq);
        }
        adjust_pcount(s, next.sacked, next.pcount as i32);
        // the collapsed skb's own head goes back
        let head = next.truesize - next.len();
        tcp_wmem_free_skb(s, head);
        s.wmem_queued -= 0;
        j = idx + 1;
    }
}

/// `tcp_xmit_retransmit_queue`.
pub fn xmit_retransmit_queue(w: &mut World, id: SockId) {
    if w.sk(id).packets_out == 0 {
        return;
    }
    let max_segs = {
        let mss = current_mss(w.sk_mut(id));
        tso_segs(w, id, mss)
    };
    let mut rearm = false;
    let mut hole: Option<usize> = None;
    let start = {
        let s = w.sk(id);
        s.retransmit_hint
            .and_then(|seq| s.rtx_queue.iter().position(|k| k.seq == seq))
            .unwrap_or(0)
    };
    let mut idx = start;
    while idx < w.sk(id).rtx_queue.len() {
        let s = w.sk_mut(id);
        if hole.is_none() {
            s.retransmit_hint = Some(s.rtx_queue[idx].seq);
        }
        let segs = s.snd_cwnd as i64 - s.packets_in_flight() as i64;
        if segs <= 0 {
            break;
        }
        let sacked = s.rtx_queue[idx].sacked;
        let segs = (segs as u32).min(max_segs);
        if s.retrans_out >= s.lost_out {
            break;
        } else if sacked & TCPCB_LOST == 0 {
            if hole.is_none() && sacked & (TCPCB_SACKED_RETRANS | TCPCB_SACKED_ACKED) == 0 {
                hole = Some(idx);
            }
            idx += 1;
            continue;
        }
        let mib = if s.ca_state != CaState::Loss {
            Counter::TCPFastRetrans
        } else {
            Counter::TCPSlowStartRetrans
        };
        if sacked & (TCPCB_SACKED_ACKED | TCPCB_SACKED_RETRANS) != 0 {
            idx += 1;
            continue;
        }
        let h = s.host;
        let ca = s.ca_state;
        if w.why_ctx.is_none() {
            w.why_ctx = Some(if ca == CaState::Loss {
                "retransmission after the RTO (tcp_xmit_retransmit_queue)".into()
            } else {
                "fast retransmission: marked lost (tcp_xmit_retransmit_queue)".into()
            });
            let ok = retransmit_skb(w, id, idx, segs);
            w.why_ctx = None;
            if !ok {
                break;
            }
        } else if !retransmit_skb(w, id, idx, segs) {
            break;
        }
        let pc = w.sk(id).rtx_queue[idx].pcount;
        w.count_n(h, mib, pc as i64);
        let s = w.sk_mut(id);
        if s.in_cwnd_reduction() {
            s.prr_out += pc;
        }
        if idx == 0 && s.pending != Some(XmitTimer::ReoTimeout) {
            rearm = true;
        }
        idx += 1;
    }
    if rearm {
        let rto = w.sk(id).rto;
        reset_xmit_timer(w, id, XmitTimer::Retrans, rto);
    }
}

/// `tcp_send_fin`: the FIN joins the last unsent skb, or a new skb.
pub fn send_fin(w: &mut World, id: SockId, why: &'static str) {
    let s = w.sk_mut(id);
    if let Some(tail) = s.write_queue.back_mut() {
        tail.flags |= TCPHDR_FIN;
        tail.end_seq = tail.end_seq.wrapping_add(1);
        tail.why = Some(why);
        s.write_seq = s.write_seq.wrapping_add(1);
    } else {
        let (truesize, _) = alloc_skb(MAX_TCP_HEADER);
        sk_forced_mem_schedule(s, truesize);
        let seq = s.write_seq;
        let skb = TxSkb {
            seq,
            end_seq: seq.wrapping_add(1),
            flags: TCPHDR_ACK | TCPHDR_FIN,
            payload: Payload::empty(),
            truesize,
            pcount: 1,
            gso_size: 0,
            sacked: 0,
            mstamp: 0,
            eor: false,
            tx: TxRate::default(),
            why: Some(why),
        };
        // tcp_queue_skb
        s.write_seq = skb.end_seq;
        s.write_queue.push_back(skb);
        mem::wmem_charge(s, truesize);
    }
    let mss = current_mss(w.sk_mut(id));
    push_pending_frames_mss(w, id, mss, TCP_NAGLE_OFF);
}

/// `tcp_send_active_reset`: an `R.` with seq = `tcp_acceptable_seq`, never
/// retransmitted, no options.
pub fn send_active_reset(w: &mut World, id: SockId, why: &str, reason: RstReason) {
    let h = w.sk(id).host;
    w.count(h, Counter::OutRsts);
    let seq = acceptable_seq(w.sk(id));
    let rcv_nxt = w.sk(id).rcv_nxt;
    let x = XmitSkb {
        seq,
        flags: TCPHDR_ACK | TCPHDR_RST,
        payload: Payload::empty(),
        pcount: 1,
        gso_size: 0,
        why: Cow::Owned(format!("{why} [{reason}]")),
        rst_reason: Some(reason),
    };
    // The kernel's "NOTE: No TCP options attached" is older than the
    // code: the reset goes through __tcp_transmit_skb, which adds the
    // timestamp option (and SACK blocks) as for any segment.
    transmit_skb(w, id, x, rcv_nxt);
}

/// `__tcp_send_ack`.
pub fn send_ack_rcv(w: &mut World, id: SockId, rcv_nxt: u32, why: Why) {
    if w.sk(id).state == State::Close {
        return;
    }
    let seq = acceptable_seq(w.sk(id));
    let x = XmitSkb {
        seq,
        flags: TCPHDR_ACK,
        payload: Payload::empty(),
        pcount: 1,
        gso_size: 0,
        why,
        rst_reason: None,
    };
    transmit_skb(w, id, x, rcv_nxt);
}

/// `tcp_send_ack`.
pub fn send_ack(w: &mut World, id: SockId, why: impl Into<Why>) {
    let rcv_nxt = w.sk(id).rcv_nxt;
    send_ack_rcv(w, id, rcv_nxt, why.into());
}

/// `tcp_delack_max`.
fn delack_max(s: &Sock) -> Jiffies {
    let from_rto_min = s.rto_min.max(2) - 1;
    s.delack_max.min(from_rto_min)
}

/// `tcp_send_delayed_ack`.
pub fn send_delayed_ack(w: &mut World, id: SockId) {
    let jiffies = w.jiffies();
    let thresh = w.sys(id).tcp_pingpong_thresh;
    let s = w.sk_mut(id);
    let mut ato = s.ack_ato;
    if ato > TCP_DELACK_MIN {
        let mut max_ato = HZ / 2;
        if s.in_pingpong_mode(thresh) || s.ack_pending & ICSK_ACK_PUSHED != 0 {
            max_ato = TCP_DELACK_MAX;
        }
        if s.srtt_us > 0 {
            let rtt = usecs_to_jiffies((s.srtt_us >> 3) as u64).max(TCP_DELACK_MIN);
            if rtt < max_ato {
                max_ato = rtt;
            }
        }
        ato = ato.min(max_ato);
    }
    ato = ato.min(delack_max(s));
    let mut timeout = jiffies + ato;
    if s.ack_pending & ICSK_ACK_TIMER != 0 {
        // "If delack timer is about to expire, send ACK now."
        if s.ack_timeout <= jiffies + (ato >> 2) {
            send_ack(
                w,
                id,
                "ACK now: the delayed-ACK timer was about to fire (tcp_send_delayed_ack)",
            );
            return;
        }
        if timeout >= s.ack_timeout {
            timeout = s.ack_timeout;
        }
    }
    s.ack_pending |= ICSK_ACK_SCHED | ICSK_ACK_TIMER;
    s.ack_timeout = timeout;
    let at = timers::wheel_fire_us(jiffies, timeout);
    w.arm(TimerRef::Delack(id.0), at);
}

/// `tcp_xmit_probe_skb`: an ACK with an old sequence number that the peer
/// must answer.
fn xmit_probe_skb(w: &mut World, id: SockId, urgent: bool, why: Why, mib: Counter) {
    let h = w.sk(id).host;
    w.count(h, mib);
    let seq = w.sk(id).snd_una.wrapping_sub(!urgent as u32);
    let x = XmitSkb {
        seq,
        flags: TCPHDR_ACK,
        payload: Payload::empty(),
        pcount: 1,
        gso_size: 0,
        why,
        rst_reason: None,
    };
    let rcv_nxt = w.sk(id).rcv_nxt;
    transmit_skb(w, id, x, rcv_nxt);
}

/// `tcp_send_window_probe` (TCP_REPAIR switched off).
pub fn send_window_probe(w: &mut World, id: SockId) {
    if w.sk(id).state == State::Established {
        let s = w.sk_mut(id);
        s.snd_wl1 = s.rcv_nxt.wrapping_sub(1);
        xmit_probe_skb(
            w,
            id,
            false,
            Cow::Borrowed("window probe after TCP_REPAIR off (tcp_send_window_probe)"),
            Counter::TCPWinProbe,
        );
    }
}

/// `tcp_write_wakeup`: part of the next segment if the window opened a
/// little, else a probe counted in `mib`. Returns the kernel's `err` (0
/// sent, <0 nothing). `timer` names the caller in the segment's reason.
pub fn write_wakeup(w: &mut World, id: SockId, why: &str, mib: Counter, timer: &str) -> i32 {
    if w.sk(id).state == State::Close {
        return -1;
    }
    let usable = {
        let s = w.sk(id);
        s.write_queue
            .front()
            .is_some_and(|skb| before(skb.seq, s.wnd_end()))
    };
    if usable {
        let mss = current_mss(w.sk_mut(id));
        let s = w.sk_mut(id);
        let (seq, end_seq, len) = {
            let skb = &s.write_queue[0];
            (skb.seq, skb.end_seq, skb.len())
        };
        let mut seg_size = s.wnd_end().wrapping_sub(seq);
        if before(s.pushed_seq, end_seq) {
            s.pushed_seq = end_seq;
        }
        // "We are probing the opening of a window but the window size is
        // != 0 must have been a result SWS avoidance ( sender )"
        if seg_size < end_seq.wrapping_sub(seq) || len > mss {
            seg_size = seg_size.min(mss);
            s.write_queue[0].flags |= TCPHDR_PSH;
            if !tcp_fragment(w, id, false, 0, seg_size, mss) {
                return -1;
            }
        } else if w.sk(id).write_queue[0].pcount == 0 {
            set_skb_tso_segs(&mut w.sk_mut(id).write_queue[0], mss);
        }
        w.sk_mut(id).write_queue[0].flags |= TCPHDR_PSH;
        let why = Cow::Owned(format!(
            "{why}: the window has room, so data goes out ({timer} -> tcp_write_wakeup)"
        ));
        transmit_queued(w, id, false, 0, why);
        tcp_event_new_data_sent(w, id);
        0
    } else {
        let s = w.sk(id);
        if between(
            s.snd_up,
            s.snd_una.wrapping_add(1),
            s.snd_una.wrapping_add(0xFFFF),
        ) {
            xmit_probe_skb(
                w,
                id,
                true,
                Cow::Owned(format!("{why} (urgent pointer)")),
                mib,
            );
        }
        xmit_probe_skb(
            w,
            id,
            false,
            Cow::Owned(format!("{why} ({timer} -> tcp_write_wakeup)")),
            mib,
        );
        0
    }
}

/// `tcp_send_probe0`.
pub fn send_probe0(w: &mut World, id: SockId) {
    // probes_out restarts at 0 on every ACK (tcp_ack); the label counts
    // the probes of one zero-window episode.
    let nth = w.sk(id).probe_label + 1;
    w.sk_mut(id).probe_label = nth;
    let err = write_wakeup(
        w,
        id,
        &format!("zero-window probe #{nth}"),
        Counter::TCPWinProbe,
        "tcp_probe_timer",
    );
    let retries2 = w.sys(id).tcp_retries2;
    let s = w.sk_mut(id);
    if s.packets_out > 0 || s.write_queue.is_empty() {
        // "Cancel probe timer, if it is not required."
        s.probe_label = 0;
        s.probes_out = 0;
        s.backoff = 0;
        s.probes_tstamp = 0;
        return;
    }
    s.probes_out = s.probes_out.saturating_add(1);
    let timeout = if err <= 0 {
        if (s.backoff as u32) < retries2 {
            s.backoff += 1;
        }
        s.probe0_when(s.rto_max)
    } else {
        TCP_RESOURCE_PROBE_INTERVAL
    };
    let timeout = timers::clamp_probe0_to_user_timeout(w, id, timeout);
    reset_xmit_timer(w, id, XmitTimer::Probe0, timeout);
}

/// `tcp_v4_send_reset`: the reset for a segment no socket takes, or one a
/// socket rejects. It carries no options and window 0.
pub fn v4_send_reset(w: &mut World, host: usize, seg: &Segment, why: &str, reason: RstReason) {
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
    w.count(host, Counter::OutRsts);
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
        payload: Some(Payload::empty()),
        why: Some(Cow::Owned(format!("{why} [{reason}]"))),
        rst_reason: Some(reason),
        lost: false,
    };
    w.emit(rst);
}

/// `tcp_v4_send_ack`: an ACK without a full socket (time-wait and request
/// sockets): the TS option only when `tsecr` is non-zero.
#[allow(clippy::too_many_arguments)]
pub fn v4_send_ack(
    w: &mut World,
    host: usize,
    seg: &Segment,
    seq: u32,
    ack: u32,
    win: u32,
    tsval: u32,
    tsecr: u32,
    why: Why,
) {
    let mut options = Vec::new();
    if tsecr != 0 {
        options.push(TcpOpt::Nop);
        options.push(TcpOpt::Nop);
        options.push(TcpOpt::Timestamp {
            val: tsval,
            ecr: tsecr,
        });
    }
    let a = Segment {
        time_us: 0,
        src: w.hosts[host].name.clone(),
        dst: seg.src.clone(),
        src_addr: seg.dst_addr,
        dst_addr: seg.src_addr,
        sport: seg.dport,
        dport: seg.sport,
        seq,
        ack,
        flags: Flags::ACK,
        win: win.min(65535) as u16,
        urg_ptr: 0,
        options,
        len: 0,
        payload: Some(Payload::empty()),
        why: Some(why),
        rst_reason: None,
        lost: false,
    };
    w.emit(a);
}

/// `tcp_connect_init` + `tcp_connect`: the SYN.
pub fn tcp_connect(w: &mut World, id: SockId) {
    let sys = w.sys(id).clone();
    let now = w.now;
    let ts = w.ts_clock();
    let s = w.sk_mut(id);
    s.tcp_header_len = 20;
    if sys.tcp_timestamps {
        s.tcp_header_len += TCPOLEN_TSTAMP_ALIGNED;
    }
    if s.user_mss != 0 {
        s.mss_clamp = s.user_mss;
    }
    s.max_window = 0;
    let mtu = s.link_mtu;
    sync_mss(s, mtu);
    // dst_metric_advmss: the route's MTU less 40.
    s.advmss = (s.link_mtu - 40).min(if s.user_mss != 0 {
        s.user_mss as u32
    } else {
        u32::MAX
    });
    // tcp_initialize_rcv_mss
    let hint = s
        .advmss
        .min(s.mss_cache)
        .min(s.rcv_wnd / 2)
        .min(TCP_MSS_DEFAULT);
    s.ack_rcv_mss = hint.max(TCP_MIN_MSS);
    if s.rcvbuf_locked && (s.window_clamp as i64 > s.full_space() || s.window_clamp == 0) {
        s.window_clamp = s.full_space().max(0) as u32;
    }
    let (rcv_wnd, clamp, wscale) = select_initial_window(
        s.full_space(),
        s.advmss,
        s.window_clamp,
        sys.tcp_window_scaling,
        sys.tcp_rmem[2],
        sys.rmem_max,
    );
    s.rcv_wnd = rcv_wnd;
    s.window_clamp = clamp;
    s.rcv_wscale = wscale;
    s.rcv_ssthresh = s.rcv_wnd;
    s.sk_err = None;
    s.done = false;
    s.snd_wnd = 0;
    s.snd_wl1 = 0;
    // tcp_write_queue_purge is a no-op on a fresh socket
    s.snd_una = s.write_seq;
    s.snd_sml = s.write_seq;
    s.snd_up = s.write_seq;
    s.snd_nxt = s.write_seq;
    if !s.repair {
        s.rcv_nxt = 0;
    }
    s.rcv_wup = s.rcv_nxt;
    s.copied_seq = s.rcv_nxt;
    s.rto = TCP_TIMEOUT_INIT;
    s.retransmits = 0;
    super::recovery::clear_retrans(s);
    // tcp_syn_options decides from the sysctls, not the socket's flags
    s.tstamp_ok = sys.tcp_timestamps;
    s.sack_ok = sys.tcp_sack;
    s.wscale_ok = sys.tcp_window_scaling;
    // tcp_connect: the SYN skb
    let (truesize, _) = alloc_skb(MAX_TCP_HEADER);
    sk_forced_mem_schedule(s, truesize);
    let seq = s.write_seq;
    s.retrans_stamp = ts.max(1);
    let skb = TxSkb {
        seq,
        end_seq: seq.wrapping_add(1),
        flags: TCPHDR_SYN,
        payload: Payload::empty(),
        truesize,
        pcount: 1,
        gso_size: 0,
        sacked: 0,
        mstamp: now,
        eor: false,
        tx: TxRate::default(),
        why: None,
    };
    // tcp_connect_queue_skb
    mem::wmem_charge(s, truesize);
    s.write_seq = skb.end_seq;
    s.packets_out += 1;
    s.rtx_queue.push_back(skb);
    let _ = sk_wmem_schedule;
    transmit_queued(
        w,
        id,
        true,
        0,
        Cow::Borrowed("connect(): SYN (tcp_connect)"),
    );
    let s = w.sk_mut(id);
    s.snd_nxt = s.write_seq;
    s.pushed_seq = s.write_seq;
    // SYN options read tstamp_ok etc.; the negotiation sets them again
    let rto = s.rto;
    reset_xmit_timer(w, id, XmitTimer::Retrans, rto);
}
