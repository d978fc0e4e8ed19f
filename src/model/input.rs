//! Receiving segments: `tcp_v4_rcv` (net/ipv4/tcp_ipv4.c) and the receive
//! half of net/ipv4/tcp_input.c — validation, the established fast and slow
//! paths, `tcp_rcv_state_process`, the data queues, FIN, RST, urgent data,
//! when to ACK, and the receive buffer's windows and auto-tuning.

use super::ack::{self, FLAG_NO_CHALLENGE_ACK, FLAG_SLOWPATH, FLAG_UPDATE_TS_RECENT, tcp_ack};
use super::close::{tcp_done, tcp_set_state};
use super::mem::{self, sk_forced_mem_schedule, sk_rmem_schedule, skb_set_owner_r, sock_rfree};
use super::output::{self, send_ack, send_delayed_ack, v4_send_reset};
use super::skb::*;
use super::sock::*;
use super::{Ehash, World, listen, timewait};
use crate::segment::{Segment, TcpOpt};
use crate::vocab::{Counter, Errno, RstReason};
use std::borrow::Cow;

/// An incoming segment as the receive path sees it (`TCP_SKB_CB(skb)`).
pub struct InSeg<'a> {
    pub seg: &'a Segment,
    pub seq: u32,
    /// seq + payload + SYN + FIN.
    pub end_seq: u32,
    pub ack_seq: u32,
    /// TCP header length (`th->doff * 4`).
    pub hdr_len: u32,
    /// The SACK blocks the segment carries (`TCP_SKB_CB(skb)->sacked`).
    pub sacks: Vec<(u32, u32)>,
}

impl<'a> InSeg<'a> {
    pub fn new(seg: &'a Segment) -> InSeg<'a> {
        let mut opt_len = 0u32;
        let mut sacks = Vec::new();
        for o in &seg.options {
            opt_len += match o {
                TcpOpt::Nop | TcpOpt::Eol => 1,
                TcpOpt::Mss(_) => 4,
                TcpOpt::WScale(_) => 3,
                TcpOpt::SackPerm => 2,
                TcpOpt::Sack(b) => {
                    sacks.extend_from_slice(b);
                    2 + 8 * b.len() as u32
                }
                TcpOpt::Timestamp { .. } => 10,
                TcpOpt::Unknown { data, .. } => 2 + data.len() as u32,
            };
        }
        let hdr_len = 20 + opt_len.div_ceil(4) * 4;
        InSeg {
            seg,
            seq: seg.seq,
            end_seq: seg
                .seq
                .wrapping_add(seg.len + seg.flags.syn() as u32 + seg.flags.fin() as u32),
            ack_seq: seg.ack,
            hdr_len,
            sacks,
        }
    }
    pub fn syn(&self) -> bool {
        self.seg.flags.syn()
    }
    pub fn fin(&self) -> bool {
        self.seg.flags.fin()
    }
    pub fn rst(&self) -> bool {
        self.seg.flags.rst()
    }
    pub fn ack(&self) -> bool {
        self.seg.flags.ack()
    }
    pub fn urg(&self) -> bool {
        self.seg.flags.urg()
    }
    pub fn len(&self) -> u32 {
        self.seg.len
    }
    pub fn is_empty(&self) -> bool {
        self.seg.len == 0
    }
    /// The TS option, if any: (val, ecr).
    pub fn timestamp(&self) -> Option<(u32, u32)> {
        self.seg.options.iter().find_map(|o| match o {
            TcpOpt::Timestamp { val, ecr } => Some((*val, *ecr)),
            _ => None,
        })
    }
    /// `tcp_flag_word(th) & TCP_HP_BITS` in `pred_flags` form.
    fn hp_word(&self) -> u32 {
        let flags = (self.seg.flags.0 & !TCPHDR_PSH) as u32;
        (self.hdr_len << 26) | (flags << 16) | self.seg.win as u32
    }
    /// The skb this segment becomes on the receiving host, as the TUN
    /// device allocated it (headers pulled).
    pub fn rx_skb(&self) -> RxSkb {
        let pkt_len = 20 + self.hdr_len + self.seg.len;
        let a = tun_rx_alloc(pkt_len);
        // Data area: NET_SKB_PAD headroom, then the linear part of the
        // packet (IP and TCP headers included).
        let tail = 64 + a.linear;
        let headers = 20 + self.hdr_len;
        RxSkb {
            seq: self.seq,
            end_seq: self.end_seq.wrapping_sub(self.syn() as u32),
            flags: self.seg.flags.0,
            payload: self
                .seg
                .payload
                .clone()
                .unwrap_or_else(|| crate::payload::Payload::pattern(0, self.seg.len)),
            truesize: a.truesize,
            end_offset: a.end_offset,
            tail,
            headlen: a.linear.saturating_sub(headers),
        }
    }
}

/// `tcp_parse_options` for a SYN or SYN-ACK.
pub struct SynOpts {
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_perm: bool,
    pub ts: Option<(u32, u32)>,
}

pub fn syn_opts(seg: &Segment, sys_ts: bool, sys_ws: bool, sys_sack: bool) -> SynOpts {
    let mut o = SynOpts {
        mss: None,
        wscale: None,
        sack_perm: false,
        ts: None,
    };
    for opt in &seg.options {
        match opt {
            TcpOpt::Mss(m) if seg.flags.syn() => o.mss = Some(*m),
            TcpOpt::WScale(s) if seg.flags.syn() && sys_ws => {
                o.wscale = Some((*s).min(TCP_MAX_WSCALE));
            }
            TcpOpt::SackPerm if seg.flags.syn() && sys_sack => o.sack_perm = true,
            TcpOpt::Timestamp { val, ecr } if sys_ts => o.ts = Some((*val, *ecr)),
            _ => {}
        }
    }
    o
}

/// `ktime_get_seconds` of the model's clock (a monotonic clock that was
/// already running when the run began).
pub fn seconds(w: &World) -> u64 {
    1000 + w.now / 1_000_000
}

/// `tcp_v4_rcv`: find the socket a segment belongs to — an established
/// (or connecting) socket, a time-wait socket, a request socket, a
/// listener — or answer with a reset.
pub fn tcp_v4_rcv(w: &mut World, seg: Segment) {
    let h = w.host_of_addr(seg.dst_addr);
    let from = w.host_of_addr(seg.src_addr);
    let key = (h, seg.dport, from, seg.sport);
    match w.ehash.get(&key).copied() {
        Some(Ehash::Sock(id)) => {
            let s = w.sk_mut(id);
            s.segs_in += 1;
            if seg.len > 0 {
                s.data_segs_in += 1;
            }
            if let Some(reason) = tcp_v4_do_rcv(w, id, &seg) {
                v4_send_reset(
                    w,
                    h,
                    &seg,
                    "segment the socket rejects -> RST (tcp_v4_do_rcv)",
                    reason,
                );
            }
            return;
        }
        Some(Ehash::Tw(ti)) => {
            timewait::tcp_v4_rcv_tw(w, ti, &seg, key);
            return;
        }
        Some(Ehash::Req(ri)) => {
            listen::tcp_v4_rcv_req(w, ri, &seg);
            return;
        }
        None => {}
    }
    if let Some(lid) = w.lhash.get(&(h, seg.dport)).copied() {
        listener_rcv(w, lid, &seg);
        return;
    }
    v4_send_reset(
        w,
        h,
        &seg,
        "no socket for this segment -> RST (tcp_v4_send_reset)",
        RstReason::NoSocket,
    );
}

/// `tcp_v4_do_rcv` on a listener (`tcp_rcv_state_process` in LISTEN).
pub fn listener_rcv(w: &mut World, lid: SockId, seg: &Segment) {
    let h = w.sk(lid).host;
    if seg.flags.ack() {
        // "if (th->ack) return SKB_DROP_REASON_TCP_FLAGS" -> reset
        v4_send_reset(
            w,
            h,
            seg,
            "ACK to a listener with no such connection -> RST (tcp_rcv_state_process)",
            RstReason::TcpFlags,
        );
        return;
    }
    if seg.flags.rst() {
        return;
    }
    if seg.flags.syn() && !seg.flags.fin() {
        listen::tcp_conn_request(w, lid, seg, 0);
    }
}

/// `tcp_v4_do_rcv` for a full socket: the established fast path or
/// `tcp_rcv_state_process`. Returns the reason to reset, if the socket
/// wants the segment answered with RST.
pub fn tcp_v4_do_rcv(w: &mut World, id: SockId, seg: &Segment) -> Option<RstReason> {
    let s = InSeg::new(seg);
    if w.sk(id).state == State::Established {
        tcp_rcv_established(w, id, &s);
        return None;
    }
    tcp_rcv_state_process(w, id, &s)
}

/// `tcp_parse_options` for a non-SYN segment on a connection
/// (`tcp_fast_parse_options`): the timestamp, with `tsoffset` removed
/// from the echo.
fn fast_parse_options(s: &mut Sock, seg: &InSeg) {
    s.saw_tstamp = false;
    if seg.hdr_len == 20 {
        return;
    }
    if let Some((val, ecr)) = seg.timestamp() {
        if s.tstamp_ok {
            s.saw_tstamp = true;
            s.rcv_tsval = val;
            s.rcv_tsecr = ecr;
            if s.rcv_tsecr != 0 {
                s.rcv_tsecr = s.rcv_tsecr.wrapping_sub(s.tsoffset);
            }
        }
    }
}

/// `tcp_paws_check`.
pub fn paws_check(
    ts_recent: u32,
    rcv_tsval: u32,
    ts_recent_stamp: u64,
    now_s: u64,
    win: i32,
) -> bool {
    if (ts_recent.wrapping_sub(rcv_tsval) as i32) <= win {
        return true;
    }
    if now_s >= ts_recent_stamp + TCP_PAWS_WRAP {
        return true;
    }
    ts_recent == 0
}

/// `tcp_paws_reject`.
pub fn paws_reject(
    ts_recent: u32,
    rcv_tsval: u32,
    ts_recent_stamp: u64,
    now_s: u64,
    rst: bool,
) -> bool {
    if paws_check(ts_recent, rcv_tsval, ts_recent_stamp, now_s, 0) {
        return false;
    }
    if rst && now_s >= ts_recent_stamp + TCP_PAWS_MSL {
        return false;
    }
    true
}

/// `tcp_tsval_replay`.
fn tsval_replay(s: &Sock) -> i32 {
    (s.rto * 1200 / HZ) as i32
}

/// `tcp_may_update_window`.
pub fn may_update_window(s: &Sock, ack: u32, ack_seq: u32, nwin: u32) -> bool {
    after(ack, s.snd_una)
        || after(ack_seq, s.snd_wl1)
        || (ack_seq == s.snd_wl1 && (nwin > s.snd_wnd || nwin == 0))
}

/// `tcp_disordered_ack_check`: 0 when a PAWS failure is a harmless
/// reordered pure ACK, else the drop reason (true: `PAWS_ACK`).
fn disordered_ack_check(s: &Sock, seg: &InSeg) -> Option<bool> {
    if !seg.ack() || seg.seq != seg.end_seq {
        return Some(false);
    }
    if seg.seq != s.rcv_nxt {
        return Some(before(seg.seq, s.rcv_nxt));
    }
    if seg.ack_seq != s.snd_una {
        return Some(false);
    }
    if may_update_window(
        s,
        seg.ack_seq,
        seg.seq,
        (seg.seg.win as u32) << s.snd_wscale,
    ) {
        return Some(false);
    }
    if (s.ts_recent.wrapping_sub(s.rcv_tsval) as i32) > tsval_replay(s) {
        return Some(false);
    }
    None
}

/// `tcp_sequence`: None if acceptable, else whether it is "invalid"
/// (beyond the window) rather than old.
fn tcp_sequence(s: &Sock, seq: u32, end_seq: u32) -> Option<&'static str> {
    if before(end_seq, s.rcv_wup) {
        return Some("old");
    }
    let right = s.rcv_nxt.wrapping_add(s.receive_window());
    if after(end_seq, right) {
        if after(seq, right) {
            return Some("invalid");
        }
        if !s.receive_queue.is_empty() {
            return Some("invalid_end");
        }
    }
    None
}

/// `tcp_reset_check`: an RST at rcv_nxt - 1 after a FIN.
pub(crate) fn reset_check(s: &Sock, seg: &InSeg) -> bool {
    seg.seq == s.rcv_nxt.wrapping_sub(1)
        && s.state.f() & (TCPF_CLOSE_WAIT | TCPF_LAST_ACK | TCPF_CLOSING) != 0
}

/// `__tcp_oow_rate_limited`.
pub fn oow_rate_limited_raw(w: &mut World, id: SockId, mib: Counter) -> bool {
    let now = w.jiffies();
    let limit = w.sys(id).tcp_invalid_ratelimit;
    let h = w.sk(id).host;
    let s = w.sk_mut(id);
    if s.last_oow_ack_time != 0 {
        let elapsed = now.wrapping_sub(s.last_oow_ack_time) as i64;
        if (0..limit as i64).contains(&elapsed) {
            w.count(h, mib);
            return true;
        }
    }
    s.last_oow_ack_time = now.max(1);
    false
}

/// `tcp_oow_rate_limited`: data without SYN is never rate-limited.
fn oow_rate_limited(w: &mut World, id: SockId, seg: &InSeg, mib: Counter) -> bool {
    if seg.seq != seg.end_seq && !seg.syn() {
        return false;
    }
    oow_rate_limited_raw(w, id, mib)
}

/// `tcp_send_challenge_ack` (tcp_challenge_ack_limit is INT_MAX).
pub fn send_challenge_ack(w: &mut World, id: SockId, why: &'static str) {
    if oow_rate_limited_raw(w, id, Counter::TCPACKSkippedChallenge) {
        return;
    }
    let h = w.sk(id).host;
    w.count(h, Counter::TCPChallengeACK);
    send_ack(w, id, why);
}

/// `tcp_send_dupack`.
fn send_dupack(w: &mut World, id: SockId, seg: &InSeg, why: &'static str) {
    let dsack_on = w.sys(id).tcp_dsack;
    let s = w.sk(id);
    if seg.end_seq != seg.seq && before(seg.seq, s.rcv_nxt) {
        let h = s.host;
        w.count(h, Counter::DelayedACKLost);
        enter_quickack_mode(w, id, TCP_MAX_QUICKACKS);
        let s = w.sk(id);
        if s.is_sack() && dsack_on {
            let mut end_seq = seg.end_seq;
            if after(seg.end_seq, s.rcv_nxt) {
                end_seq = s.rcv_nxt;
            }
            dsack_set(w, id, seg.seq, end_seq);
        }
    }
    send_ack(w, id, why);
}

/// `tcp_validate_incoming`. False when the segment is consumed here.
fn validate_incoming(w: &mut World, id: SockId, seg: &InSeg) -> bool {
    let now_s = seconds(w);
    let s = w.sk_mut(id);
    fast_parse_options(s, seg);
    // "RFC1323: H1. Apply PAWS check first."
    let mut paws_bad = false;
    if s.saw_tstamp
        && !paws_check(
            s.ts_recent,
            s.rcv_tsval,
            s.ts_recent_stamp,
            now_s,
            TCP_PAWS_WINDOW as i32,
        )
    {
        match disordered_ack_check(s, seg) {
            None => {}
            Some(paws_ack) => {
                paws_bad = true;
                if !seg.rst() {
                    if seg.syn() {
                        syn_challenge(w, id);
                        return false;
                    }
                    let h = w.sk(id).host;
                    if paws_ack {
                        w.count(h, Counter::PAWSOldAck);
                        return false;
                    }
                    w.count(h, Counter::PAWSEstab);
                    if !oow_rate_limited(w, id, seg, Counter::TCPACKSkippedPAWS) {
                        send_dupack(
                            w,
                            id,
                            seg,
                            "ACK for a segment PAWS rejected (tcp_validate_incoming)",
                        );
                    }
                    return false;
                }
            }
        }
    }
    let _ = paws_bad;
    // Step 1: check sequence number.
    let s = w.sk(id);
    if let Some(r) = tcp_sequence(s, seg.seq, seg.end_seq) {
        if !seg.rst() {
            if seg.syn() {
                syn_challenge(w, id);
                return false;
            }
            if r != "old" {
                let h = w.sk(id).host;
                w.count(h, Counter::BeyondWindow);
            }
            if !oow_rate_limited(w, id, seg, Counter::TCPACKSkippedSeq) {
                send_dupack(
                    w,
                    id,
                    seg,
                    "out-of-window segment answered with an ACK (tcp_send_dupack)",
                );
            }
        } else if reset_check(w.sk(id), seg) {
            tcp_reset(w, id);
        }
        return false;
    }
    // Step 2: check RST bit (RFC 5961 3.2).
    if seg.rst() {
        let s = w.sk(id);
        let mut reset = seg.seq == s.rcv_nxt || reset_check(s, seg);
        if !reset && s.is_sack() && s.num_sacks > 0 {
            let mut max_sack = s.selective_acks[0].end_seq;
            for b in &s.selective_acks[1..s.num_sacks as usize] {
                if after(b.end_seq, max_sack) {
                    max_sack = b.end_seq;
                }
            }
            reset = seg.seq == max_sack;
        }
        if reset {
            tcp_reset(w, id);
            return false;
        }
        send_challenge_ack(w, id, "challenge ACK for an in-window RST (RFC 5961 3.2)");
        return false;
    }
    // Step 4: a SYN in a synchronized state (RFC 5961 4.2).
    if seg.syn() {
        let s = w.sk(id);
        if s.state == State::SynRecv
            && s.has_socket
            && seg.ack()
            && seg.seq.wrapping_add(1) == seg.end_seq
            && seg.seq.wrapping_add(1) == s.rcv_nxt
            && seg.ack_seq == s.snd_nxt
        {
            return true;
        }
        syn_challenge(w, id);
        return false;
    }
    true
}

fn syn_challenge(w: &mut World, id: SockId) {
    let h = w.sk(id).host;
    w.count(h, Counter::TCPSYNChallenge);
    send_challenge_ack(w, id, "challenge ACK for a SYN (RFC 5961 4.2)");
}

/// `tcp_fast_path_on`.
pub fn fast_path_on(s: &mut Sock) {
    s.pred_flags =
        (s.tcp_header_len << 26) | ((TCPHDR_ACK as u32) << 16) | (s.snd_wnd >> s.snd_wscale);
}

/// `tcp_fast_path_check`.
pub fn fast_path_check(s: &mut Sock) {
    if s.ofo.is_empty() && s.rcv_wnd > 0 && s.rmem_alloc < s.rcvbuf && s.urg_data == 0 {
        fast_path_on(s);
    }
}

/// `tcp_rcv_established`: header prediction, then the slow path.
pub fn tcp_rcv_established(w: &mut World, id: SockId, seg: &InSeg) {
    let s = w.sk_mut(id);
    s.saw_tstamp = false;
    if seg.hp_word() == s.pred_flags
        && s.pred_flags != 0
        && seg.seq == s.rcv_nxt
        && !after(seg.ack_seq, s.snd_nxt)
    {
        let tcp_header_len = s.tcp_header_len;
        let mut delta: i32 = 0;
        let mut flag = 0;
        let mut slow = false;
        if tcp_header_len == 20 + TCPOLEN_TSTAMP_ALIGNED {
            // tcp_parse_aligned_timestamp
            match seg.timestamp() {
                Some((val, ecr)) if seg.hdr_len == tcp_header_len => {
                    s.saw_tstamp = true;
                    s.rcv_tsval = val;
                    s.rcv_tsecr = if ecr != 0 {
                        ecr.wrapping_sub(s.tsoffset)
                    } else {
                        0
                    };
                    delta = s.rcv_tsval.wrapping_sub(s.ts_recent) as i32;
                    if delta < 0 {
                        slow = true;
                    }
                }
                _ => slow = true,
            }
        }
        if !slow {
            if seg.is_empty() {
                // "Bulk data transfer: sender"
                if tcp_header_len == 20 + TCPOLEN_TSTAMP_ALIGNED && s.rcv_nxt == s.rcv_wup {
                    flag |= replace_ts_recent_delta(w, id, delta);
                }
                tcp_ack(w, id, seg, flag);
                data_snd_check(w, id);
                let s = w.sk_mut(id);
                s.rcv_rtt_last_tsecr = s.rcv_tsecr;
                return;
            }
            let right = s.rcv_nxt.wrapping_add(s.receive_window());
            let skb = seg.rx_skb();
            if !after(seg.end_seq, right) {
                if (skb.truesize as i32) <= s.forward_alloc {
                    if tcp_header_len == 20 + TCPOLEN_TSTAMP_ALIGNED && s.rcv_nxt == s.rcv_wup {
                        flag |= replace_ts_recent_delta(w, id, delta);
                    }
                    rcv_rtt_measure_ts(w, id, seg);
                    // "Bulk data transfer: receiver"
                    let len = skb.len();
                    let psh = skb.flags & TCPHDR_PSH != 0;
                    let truesize = skb.truesize;
                    queue_rcv(w, id, skb);
                    let hdr = 20 + w.sk(id).tcp_header_len;
                    event_data_recv_skb(w, id, len, psh, truesize, hdr);
                    if seg.ack_seq != w.sk(id).snd_una {
                        tcp_ack(w, id, seg, flag | ack::FLAG_DATA);
                        data_snd_check(w, id);
                        if !w.sk(id).ack_scheduled() {
                            return;
                        }
                    } else {
                        w.sk_mut(id).snd_wl1 = seg.seq;
                    }
                    ack_snd_check_raw(w, id, false);
                    return;
                }
                // "goto step5"
                slow_path_step5(w, id, seg);
                return;
            }
            // "goto validate"
        }
    }
    // slow_path:
    if !seg.ack() && !seg.rst() && !seg.syn() {
        return;
    }
    if !validate_incoming(w, id, seg) {
        return;
    }
    slow_path_step5(w, id, seg);
}

fn slow_path_step5(w: &mut World, id: SockId, seg: &InSeg) {
    let r = tcp_ack(w, id, seg, FLAG_SLOWPATH | FLAG_UPDATE_TS_RECENT);
    if r < 0 {
        return;
    }
    rcv_rtt_measure_ts(w, id, seg);
    tcp_urg(w, id, seg);
    tcp_data_queue(w, id, seg);
    data_snd_check(w, id);
    ack_snd_check(w, id);
}

/// `__tcp_replace_ts_recent`.
fn replace_ts_recent_delta(w: &mut World, id: SockId, delta: i32) -> u32 {
    let now_s = seconds(w);
    let s = w.sk_mut(id);
    s.ts_recent = s.rcv_tsval;
    s.ts_recent_stamp = now_s;
    if delta > 0 { ack::FLAG_TS_PROGRESS } else { 0 }
}

/// `tcp_rcv_state_process` for every state but ESTABLISHED's fast path
/// and LISTEN. Returns the reason to reset.
pub fn tcp_rcv_state_process(w: &mut World, id: SockId, seg: &InSeg) -> Option<RstReason> {
    match w.sk(id).state {
        State::Close => return None,
        State::Listen => {
            listener_rcv(w, id, seg.seg);
            return None;
        }
        State::SynSent => {
            w.sk_mut(id).saw_tstamp = false;
            return match synsent_state_process(w, id, seg) {
                SynSent::Done => None,
                SynSent::Reset(r) => Some(r),
                SynSent::Step6 => {
                    tcp_urg(w, id, seg);
                    data_snd_check(w, id);
                    None
                }
            };
        }
        _ => {}
    }
    w.sk_mut(id).saw_tstamp = false;
    if !seg.ack() && !seg.rst() && !seg.syn() {
        return None;
    }
    if !validate_incoming(w, id, seg) {
        return None;
    }
    // step 5: check the ACK field
    let r = tcp_ack(
        w,
        id,
        seg,
        FLAG_SLOWPATH | FLAG_UPDATE_TS_RECENT | FLAG_NO_CHALLENGE_ACK,
    );
    if r <= 0 {
        if w.sk(id).state == State::SynRecv {
            return Some(if r == 0 {
                RstReason::TcpOldAck
            } else {
                ack::reason_name(r)
            });
        }
        if r < 0 {
            send_challenge_ack(
                w,
                id,
                "challenge ACK: the ACK is outside the window (tcp_rcv_state_process)",
            );
            return None;
        }
    }
    let h = w.sk(id).host;
    match w.sk(id).state {
        State::SynRecv => {
            listen::synrecv_to_established(w, id, seg);
        }
        State::FinWait1 => {
            let s = w.sk(id);
            if s.snd_una == s.write_seq {
                tcp_set_state(w, id, State::FinWait2);
                let s = w.sk_mut(id);
                s.sk_shutdown |= SEND_SHUTDOWN;
                if !s.dead {
                    // "Wake up lingering close()"
                    s.wakeups += 1;
                } else {
                    if s.linger2 < 0 {
                        tcp_done(w, id);
                        w.count(h, Counter::TCPAbortOnData);
                        return Some(RstReason::TcpAbortOnData);
                    }
                    if seg.end_seq != seg.seq
                        && after(seg.end_seq.wrapping_sub(seg.fin() as u32), w.sk(id).rcv_nxt)
                    {
                        // "Receive out of order FIN after close()"
                        tcp_done(w, id);
                        w.count(h, Counter::TCPAbortOnData);
                        return Some(RstReason::TcpAbortOnData);
                    }
                    let tmo = super::close::tcp_fin_time(w, id);
                    if tmo > TCP_TIMEWAIT_LEN {
                        super::timers::reset_keepalive_timer(w, id, tmo - TCP_TIMEWAIT_LEN);
                    } else if seg.fin() {
                        // "Bad case. We could lose such FIN otherwise."
                        super::timers::reset_keepalive_timer(w, id, tmo);
                    } else {
                        timewait::tcp_time_wait(w, id, State::FinWait2, tmo);
                        return None;
                    }
                }
            }
        }
        State::Closing => {
            let s = w.sk(id);
            if s.snd_una == s.write_seq {
                timewait::tcp_time_wait(w, id, State::TimeWait, 0);
                return None;
            }
        }
        State::LastAck => {
            let s = w.sk(id);
            if s.snd_una == s.write_seq {
                tcp_done(w, id);
                return None;
            }
        }
        _ => {}
    }
    // step 6: check the URG bit
    tcp_urg(w, id, seg);
    // step 7: process the segment text
    let state = w.sk(id).state;
    let mut queue = false;
    match state {
        State::CloseWait | State::Closing | State::LastAck
            if !before(seg.seq, w.sk(id).rcv_nxt) => {}
        State::CloseWait | State::Closing | State::LastAck | State::FinWait1 | State::FinWait2 => {
            // "RFC 793 says to queue data in these states, RFC 1122 says
            // we MUST send a reset. BSD 4.4 also does reset."
            let s = w.sk(id);
            if s.sk_shutdown & RCV_SHUTDOWN != 0
                && seg.end_seq != seg.seq
                && after(seg.end_seq.wrapping_sub(seg.fin() as u32), s.rcv_nxt)
            {
                w.count(h, Counter::TCPAbortOnData);
                tcp_reset(w, id);
                return Some(RstReason::TcpAbortOnData);
            }
            queue = true;
        }
        State::Established => queue = true,
        _ => {}
    }
    if queue {
        tcp_data_queue(w, id, seg);
    }
    // "tcp_data could move socket to TIME-WAIT"
    if w.sk(id).state != State::Close {
        data_snd_check(w, id);
        ack_snd_check(w, id);
    }
    None
}

enum SynSent {
    Done,
    Reset(RstReason),
    Step6,
}

/// `tcp_rcv_synsent_state_process`.
fn synsent_state_process(w: &mut World, id: SockId, seg: &InSeg) -> SynSent {
    let sys = w.sys(id).clone();
    let o = syn_opts(
        seg.seg,
        sys.tcp_timestamps,
        sys.tcp_window_scaling,
        sys.tcp_sack,
    );
    let ts_now = w.ts_clock();
    let now_s = seconds(w);
    {
        let s = w.sk_mut(id);
        s.saw_tstamp = o.ts.is_some();
        if let Some((val, ecr)) = o.ts {
            s.rcv_tsval = val;
            s.rcv_tsecr = if ecr != 0 {
                ecr.wrapping_sub(s.tsoffset)
            } else {
                0
            };
        }
    }
    if seg.ack() {
        let s = w.sk(id);
        if !after(seg.ack_seq, s.snd_una) || after(seg.ack_seq, s.snd_nxt) {
            // "Previous FIN/ACK or RST/ACK might be ignored."
            if s.retransmits == 0 {
                super::timers::reset_xmit_timer(w, id, XmitTimer::Retrans, TCP_TIMEOUT_MIN);
            }
            clear_options(w.sk_mut(id));
            return SynSent::Reset(RstReason::TcpInvalidAckSequence);
        }
        if s.saw_tstamp && s.rcv_tsecr != 0 && !between(s.rcv_tsecr, s.retrans_stamp, ts_now) {
            let h = s.host;
            w.count(h, Counter::PAWSActive);
            clear_options(w.sk_mut(id));
            return SynSent::Reset(RstReason::TcpRfc7323Paws);
        }
        if seg.rst() {
            tcp_reset(w, id);
            return SynSent::Done;
        }
        if !seg.syn() {
            clear_options(w.sk_mut(id));
            return SynSent::Done;
        }
        // The SYN-ACK's options (tcp_parse_options with estab = 0).
        {
            let s = w.sk_mut(id);
            s.mss_clamp = o.mss.map_or(TCP_MSS_DEFAULT as u16, |m| {
                if s.user_mss != 0 && s.user_mss < m {
                    s.user_mss
                } else {
                    m
                }
            });
            s.wscale_ok = o.wscale.is_some();
            s.snd_wscale = o.wscale.unwrap_or(0);
            s.sack_ok = o.sack_perm;
            if !s.sack_ok {
                s.tstamp_ok = false;
            }
            s.snd_wl1 = seg.seq;
        }
        tcp_ack(w, id, seg, FLAG_SLOWPATH);
        let s = w.sk_mut(id);
        s.rcv_nxt = seg.seq.wrapping_add(1);
        s.rcv_wup = seg.seq.wrapping_add(1);
        s.irs = seg.seq;
        // "RFC1323: The window in SYN & SYN/ACK segments is never scaled."
        s.snd_wnd = seg.seg.win as u32;
        if !s.wscale_ok {
            s.snd_wscale = 0;
            s.rcv_wscale = 0;
            s.window_clamp = s.window_clamp.min(65535);
        }
        if s.saw_tstamp {
            s.tstamp_ok = true;
            s.tcp_header_len = 20 + TCPOLEN_TSTAMP_ALIGNED;
            s.advmss -= TCPOLEN_TSTAMP_ALIGNED;
            s.ts_recent = s.rcv_tsval;
            s.ts_recent_stamp = now_s;
        } else {
            s.tstamp_ok = false;
            s.tcp_header_len = 20;
        }
        output::sync_mss(s, s.link_mtu);
        initialize_rcv_mss(s);
        s.copied_seq = s.rcv_nxt;
        finish_connect(w, id);
        let s = w.sk_mut(id);
        s.wakeups += 1;
        let thresh = sys.tcp_pingpong_thresh;
        // sk_write_pending: a send() asleep in sk_stream_wait_connect.
        if s.write_pending > 0 || s.in_pingpong_mode(thresh) {
            s.ack_pending |= ICSK_ACK_SCHED;
            enter_quickack_mode(w, id, TCP_MAX_QUICKACKS);
            super::timers::reset_delack_timer(w, id, TCP_DELACK_MAX);
            return SynSent::Done;
        }
        send_ack(w, id, "handshake: ACK of the SYN-ACK");
        return SynSent::Step6;
    }
    if seg.rst() {
        clear_options(w.sk_mut(id));
        return SynSent::Done;
    }
    {
        let s = w.sk(id);
        if s.ts_recent_stamp != 0
            && s.saw_tstamp
            && paws_reject(s.ts_recent, s.rcv_tsval, s.ts_recent_stamp, now_s, false)
        {
            clear_options(w.sk_mut(id));
            return SynSent::Done;
        }
    }
    if seg.syn() {
        // "We see SYN without ACK. It is attempt of simultaneous connect
        // with crossed SYNs."
        tcp_set_state(w, id, State::SynRecv);
        let s = w.sk_mut(id);
        s.mss_clamp = o.mss.unwrap_or(TCP_MSS_DEFAULT as u16);
        s.wscale_ok = o.wscale.is_some() && s.wscale_ok;
        s.snd_wscale = o.wscale.unwrap_or(0);
        s.sack_ok = o.sack_perm;
        if s.saw_tstamp {
            s.tstamp_ok = true;
            s.ts_recent = s.rcv_tsval;
            s.ts_recent_stamp = now_s;
            s.tcp_header_len = 20 + TCPOLEN_TSTAMP_ALIGNED;
        } else {
            s.tstamp_ok = false;
            s.tcp_header_len = 20;
        }
        s.rcv_nxt = seg.seq.wrapping_add(1);
        s.copied_seq = s.rcv_nxt;
        s.rcv_wup = s.rcv_nxt;
        s.irs = seg.seq;
        s.snd_wnd = seg.seg.win as u32;
        s.snd_wl1 = seg.seq;
        s.max_window = s.snd_wnd;
        output::sync_mss(s, s.link_mtu);
        initialize_rcv_mss(s);
        listen::send_synack_crossed(w, id);
        return SynSent::Done;
    }
    clear_options(w.sk_mut(id));
    SynSent::Done
}

/// `tcp_clear_options`.
fn clear_options(s: &mut Sock) {
    s.saw_tstamp = false;
}

/// `tcp_finish_connect` with `tcp_init_transfer`.
pub fn finish_connect(w: &mut World, id: SockId) {
    tcp_set_state(w, id, State::Established);
    let j = w.jiffies();
    let s = w.sk_mut(id);
    s.ack_lrcvtime = j;
    init_transfer(w, id);
    let s = w.sk_mut(id);
    // "Prevent spurious tcp_cwnd_restart() on first data packet."
    s.lsndtime = j;
    if w.sk(id).keepopen {
        let when = keepalive_time_when(w.sk(id), w.sys(id));
        super::timers::reset_keepalive_timer(w, id, when);
    }
    let s = w.sk_mut(id);
    if s.snd_wscale == 0 {
        s.pred_flags = (s.tcp_header_len << 26) | ((TCPHDR_ACK as u32) << 16) | s.snd_wnd;
    } else {
        s.pred_flags = 0;
    }
}

/// `tcp_init_transfer`.
pub fn init_transfer(w: &mut World, id: SockId) {
    let j = w.jiffies();
    let s = w.sk_mut(id);
    // tcp_init_metrics: no cached metrics; a handshake without an RTT
    // sample falls back to a 3 s RTO.
    if s.srtt_us == 0 {
        s.rtt_seq = s.snd_nxt;
        s.mdev_us = jiffies_to_usecs(3 * HZ) as u32;
        s.rto = 3 * HZ;
    }
    if s.total_retrans > 1 && s.undo_marker != 0 {
        s.snd_cwnd = 1;
    } else {
        s.snd_cwnd = TCP_INIT_CWND;
    }
    s.snd_cwnd_stamp = j;
    super::cubic::init(w, id);
    init_buffer_space(w, id);
}

/// `tcp_sndbuf_expand` (CUBIC has no `sndbuf_expand`: factor 2).
pub fn sndbuf_expand(w: &mut World, id: SockId) {
    let wmem2 = w.sys(id).tcp_wmem[2];
    let s = w.sk_mut(id);
    let per_mss = (s.mss_clamp as u32).max(s.mss_cache) + MAX_TCP_HEADER + SHINFO_SIZE;
    let per_mss = per_mss.next_power_of_two() + SK_BUFF_SIZE;
    let nr_segs = TCP_INIT_CWND.max(s.snd_cwnd).max(s.reordering + 1);
    let sndmem = 2u64 * nr_segs as u64 * per_mss as u64;
    if (s.sndbuf as u64) < sndmem {
        s.sndbuf = sndmem.min(wmem2 as u64) as u32;
    }
}

/// `tcp_init_buffer_space`.
pub fn init_buffer_space(w: &mut World, id: SockId) {
    let app_win = w.sys(id).tcp_app_win;
    if !w.sk(id).sndbuf_locked {
        sndbuf_expand(w, id);
    }
    let now = w.now;
    let s = w.sk_mut(id);
    s.rcvq_space_time = now;
    s.rcvq_space_seq = s.copied_seq;
    let maxwin = s.full_space().max(0) as u32;
    if s.window_clamp >= maxwin {
        s.window_clamp = maxwin;
        if app_win > 0 && maxwin > 4 * s.advmss {
            s.window_clamp = (maxwin - (maxwin >> app_win)).max(4 * s.advmss);
        }
    }
    // "Force reservation of one segment."
    if app_win > 0 && s.window_clamp > 2 * s.advmss && s.window_clamp + s.advmss > maxwin {
        s.window_clamp = (2 * s.advmss).max(maxwin.saturating_sub(s.advmss));
    }
    s.rcv_ssthresh = s.rcv_ssthresh.min(s.window_clamp);
    s.snd_cwnd_stamp = now / JIFFY_US;
    s.rcvq_space_space = s.rcv_ssthresh.min(s.rcv_wnd).min(TCP_INIT_CWND * s.advmss);
}

/// `tcp_initialize_rcv_mss`.
pub fn initialize_rcv_mss(s: &mut Sock) {
    let mut hint = s.advmss.min(s.mss_cache);
    hint = hint.min(s.rcv_wnd / 2);
    hint = hint.min(TCP_MSS_DEFAULT);
    hint = hint.max(TCP_MIN_MSS);
    s.ack_rcv_mss = hint;
}

/// `tcp_set_window_clamp`.
pub fn set_window_clamp(s: &mut Sock, val: u32) {
    let old = s.window_clamp;
    let new = val.max(SOCK_MIN_RCVBUF / 2);
    if new == old {
        return;
    }
    s.window_clamp = new;
    if new < old {
        // __tcp_adjust_rcv_ssthresh (no reserved memory)
        s.rcv_ssthresh = s.rcv_ssthresh.min(new);
    } else {
        let n = s.rcv_wnd.min(new);
        s.rcv_ssthresh = s.rcv_ssthresh.max(n);
    }
}

/// `tcp_measure_rcv_mss`.
fn measure_rcv_mss(s: &mut Sock, len: u32, truesize: u32, psh: bool, hdr_len: u32) {
    let lss = s.ack_last_seg_size;
    s.ack_last_seg_size = 0;
    if len >= s.ack_rcv_mss {
        // "only adjust scaling_ratio when we update icsk_ack.rcv_mss"
        if len != s.ack_rcv_mss {
            let val = ((len as u64) << TCP_RMEM_TO_WIN_SCALE) / truesize as u64;
            let old_ratio = s.scaling_ratio;
            s.scaling_ratio = if val > 0 { (val as u32).min(255) } else { 1 };
            if old_ratio != s.scaling_ratio {
                let v = s.win_from_space(s.rcvbuf as i64).max(0) as u32;
                set_window_clamp(s, v);
                if s.window_clamp < s.rcvq_space_space {
                    s.rcvq_space_space = s.window_clamp;
                }
            }
        }
        s.ack_rcv_mss = len.min(s.advmss);
        if psh {
            s.ack_pending |= ICSK_ACK_PUSHED;
        }
    } else {
        let len = len + hdr_len;
        // TCP_REMNANT is FIN|URG|SYN|PSH: "If PSH is not set, packet
        // should be full sized".
        if len >= TCP_MSS_DEFAULT + 20 || (len >= TCP_MIN_MSS + 20 && !psh) {
            let len = len - s.tcp_header_len;
            s.ack_last_seg_size = len;
            if len == lss {
                s.ack_rcv_mss = len;
                return;
            }
        }
        if s.ack_pending & ICSK_ACK_PUSHED != 0 {
            s.ack_pending |= ICSK_ACK_PUSHED2;
        }
        s.ack_pending |= ICSK_ACK_PUSHED;
    }
}

/// `tcp_incr_quickack`.
fn incr_quickack(s: &mut Sock, max: u32) {
    let mut q = s.rcv_wnd / (2 * s.ack_rcv_mss.max(1));
    if q == 0 {
        q = 2;
    }
    q = q.min(max);
    if q > s.ack_quick {
        s.ack_quick = q;
    }
}

/// `tcp_enter_quickack_mode`.
pub fn enter_quickack_mode(w: &mut World, id: SockId, max: u32) {
    let s = w.sk_mut(id);
    incr_quickack(s, max);
    s.ack_pingpong = 0;
    s.ack_ato = TCP_ATO_MIN;
}

/// `tcp_rcv_rtt_update`.
fn rcv_rtt_update(s: &mut Sock, sample: u32, win_dep: bool) {
    let old = s.rcv_rtt_est_rtt_us;
    let m = sample << 3;
    let new = if old == 0 || m < old {
        m
    } else {
        if win_dep {
            return;
        }
        if s.rcv_nxt != s.copied_seq {
            return;
        }
        old - (old >> 3) + sample
    };
    s.rcv_rtt_est_rtt_us = new;
}

/// `tcp_rcv_rtt_measure`.
fn rcv_rtt_measure(w: &mut World, id: SockId) {
    let now = w.now;
    let s = w.sk_mut(id);
    if s.rcv_rtt_est_time != 0 {
        if before(s.rcv_nxt, s.rcv_rtt_est_seq) {
            return;
        }
        let delta = now.saturating_sub(s.rcv_rtt_est_time).max(1) as u32;
        rcv_rtt_update(s, delta, true);
    }
    s.rcv_rtt_est_seq = s.rcv_nxt.wrapping_add(s.rcv_wnd);
    s.rcv_rtt_est_time = now.max(1);
}

/// `tcp_rtt_tsopt_us`.
pub fn rtt_tsopt_us(w: &World, s: &Sock, min_delta: u32) -> i64 {
    let mut delta = w.ts_clock().wrapping_sub(s.rcv_tsecr);
    if delta < (i32::MAX as u32) / 1000 {
        if delta == 0 {
            delta = min_delta;
        }
        return delta as i64 * 1000;
    }
    -1
}

/// `tcp_rcv_rtt_measure_ts`.
fn rcv_rtt_measure_ts(w: &mut World, id: SockId, seg: &InSeg) {
    let s = w.sk(id);
    if s.rcv_tsecr == s.rcv_rtt_last_tsecr {
        return;
    }
    let tsecr = s.rcv_tsecr;
    let rcv_mss = s.ack_rcv_mss;
    let delta = rtt_tsopt_us(w, s, 0);
    let s = w.sk_mut(id);
    s.rcv_rtt_last_tsecr = tsecr;
    if seg.end_seq.wrapping_sub(seg.seq) >= rcv_mss && delta > 0 {
        rcv_rtt_update(s, delta as u32, false);
    }
}

/// `tcp_rcvbuf_grow`.
fn rcvbuf_grow(w: &mut World, id: SockId) {
    let sys = w.sys(id);
    let (moderate, cap) = (sys.tcp_moderate_rcvbuf, sys.tcp_rmem[2]);
    let s = w.sk_mut(id);
    if !moderate || s.rcvbuf_locked {
        return;
    }
    // "slow start: allow the sender to double its rate."
    let mut rcvwin = (s.rcvq_space_space as u64) << 1;
    if let Some(last) = s.ofo.last() {
        rcvwin += last.end_seq.wrapping_sub(s.rcv_nxt) as u64;
    }
    let rcvbuf = s.space_from_win(rcvwin).min(cap as u64) as u32;
    if rcvbuf > s.rcvbuf {
        s.rcvbuf = rcvbuf;
        // "Make the window clamp follow along."
        s.window_clamp = s.win_from_space(rcvbuf as i64).max(0) as u32;
    }
}

/// `tcp_rcv_space_adjust`: receive-buffer auto-tuning, after the program
/// read data.
pub fn rcv_space_adjust(w: &mut World, id: SockId) {
    let now = w.now;
    let s = w.sk(id);
    let time = now.saturating_sub(s.rcvq_space_time);
    if time < (s.rcv_rtt_est_rtt_us >> 3) as u64 || s.rcv_rtt_est_rtt_us == 0 {
        return;
    }
    let copied = s.copied_seq.wrapping_sub(s.rcvq_space_seq) as i64;
    let inq = s.rcv_nxt.wrapping_sub(s.copied_seq) as i64;
    let copied = copied - inq;
    if copied > s.rcvq_space_space as i64 {
        w.sk_mut(id).rcvq_space_space = copied as u32;
        rcvbuf_grow(w, id);
    }
    let s = w.sk_mut(id);
    s.rcvq_space_seq = s.copied_seq;
    s.rcvq_space_time = now;
}

/// `tcp_event_data_recv` for an skb of `len` bytes and `truesize`.
fn event_data_recv_skb(w: &mut World, id: SockId, len: u32, psh: bool, truesize: u32, hdr: u32) {
    let j = w.jiffies();
    let s = w.sk_mut(id);
    s.ack_pending |= ICSK_ACK_SCHED;
    measure_rcv_mss(s, len, truesize, psh, hdr - 20);
    rcv_rtt_measure(w, id);
    let s = w.sk_mut(id);
    if s.ack_ato == 0 {
        // "The _first_ data packet received, initialize delayed ACK engine."
        incr_quickack(s, TCP_MAX_QUICKACKS);
        s.ack_ato = TCP_ATO_MIN;
    } else {
        let m = j.wrapping_sub(s.ack_lrcvtime);
        if m <= TCP_ATO_MIN / 2 {
            s.ack_ato = (s.ack_ato >> 1) + TCP_ATO_MIN / 2;
        } else if m < s.ack_ato {
            s.ack_ato = ((s.ack_ato >> 1) + m).min(s.rto);
        } else if m > s.rto {
            // "Too long gap. Apparently sender failed to restart window"
            incr_quickack(s, TCP_MAX_QUICKACKS);
        }
    }
    s.ack_lrcvtime = j;
    if len >= 128 {
        let rmem2 = w_rmem2(w, id);
        grow_window(w.sk_mut(id), len, truesize, true, rmem2);
    }
}

fn w_rmem2(w: &World, id: SockId) -> u32 {
    w.sys(id).tcp_rmem[2]
}

/// `tcp_grow_window` with `truesize_adjust` and `__tcp_grow_window`. The
/// TUN device's skbs always have their first bytes in the head, so no
/// truesize adjustment applies.
fn grow_window(s: &mut Sock, len: u32, truesize: u32, _adjust: bool, rmem2: u32) {
    let room = (s.window_clamp as i64).min(s.space()) - s.rcv_ssthresh as i64;
    if room <= 0 {
        return;
    }
    let incr: i64 = if s.win_from_space(truesize as i64) <= len as i64 {
        2 * s.advmss as i64
    } else {
        // __tcp_grow_window
        let mut ts = s.win_from_space(truesize as i64) >> 1;
        let mut window = s.win_from_space(rmem2 as i64) >> 1;
        let mut r = 0;
        while (s.rcv_ssthresh as i64) <= window {
            if ts <= len as i64 {
                r = 2 * s.ack_rcv_mss as i64;
                break;
            }
            ts >>= 1;
            window >>= 1;
        }
        r
    };
    if incr > 0 {
        let incr = incr.max(2 * len as i64);
        s.rcv_ssthresh += room.min(incr) as u32;
        s.ack_quick |= 1;
    }
}

/// `tcp_clamp_window`: the socket hit its memory bounds.
fn clamp_window(s: &mut Sock, rmem2: u32) {
    s.ack_quick = 0;
    if s.rcvbuf < rmem2 && !s.rcvbuf_locked {
        s.rcvbuf = s.rmem_alloc.min(rmem2);
    }
    if s.rmem_alloc > s.rcvbuf {
        s.rcv_ssthresh = s.window_clamp.min(2 * s.advmss);
    }
}

/// `tcp_can_ingest`: as in the running 6.18 kernel (and 7.0), the test is
/// `sk_rmem_alloc <= sk_rcvbuf`, whatever the incoming skb's size (6.17
/// added `skb->len`; with it, a first segment larger than a small
/// SO_RCVBUF set after the handshake would be refused, which the kernel
/// does not do).
fn can_ingest(s: &Sock) -> bool {
    s.rmem_alloc <= s.rcvbuf
}

/// `tcp_try_rmem_schedule`. False: drop.
fn try_rmem_schedule(w: &mut World, id: SockId, skb: &RxSkb) -> bool {
    let ok = {
        let s = w.sk_mut(id);
        can_ingest(s) && sk_rmem_schedule(s, skb.truesize)
    };
    if !ok {
        if !prune_queue(w, id, skb) {
            return false;
        }
        while !sk_rmem_schedule(w.sk_mut(id), skb.truesize) {
            if !prune_ofo_queue(w, id, skb) {
                return false;
            }
        }
    }
    true
}

/// `tcp_prune_queue`. False: start dropping.
fn prune_queue(w: &mut World, id: SockId, in_skb: &RxSkb) -> bool {
    let rmem2 = w.sys(id).tcp_rmem[2];
    let h = w.sk(id).host;
    if w.sk(id).rmem_alloc == 0 {
        return false;
    }
    w.count(h, Counter::PruneCalled);
    let s = w.sk_mut(id);
    if !can_ingest(s) {
        clamp_window(s, rmem2);
    }
    if can_ingest(s) {
        return true;
    }
    collapse_ofo_queue(w, id);
    if !w.sk(id).receive_queue.is_empty() {
        let (start, end) = {
            let s = w.sk(id);
            (s.copied_seq, s.rcv_nxt)
        };
        collapse_receive_queue(w, id, start, end);
    }
    if can_ingest(w.sk(id)) {
        return true;
    }
    // "Collapsing did not help, destructive actions follow."
    prune_ofo_queue(w, id, in_skb);
    if can_ingest(w.sk(id)) {
        return true;
    }
    w.count(h, Counter::RcvPruned);
    w.sk_mut(id).pred_flags = 0;
    false
}

/// `tcp_prune_ofo_queue`.
fn prune_ofo_queue(w: &mut World, id: SockId, in_skb: &RxSkb) -> bool {
    let h = w.sk(id).host;
    let s = w.sk_mut(id);
    if s.ofo.is_empty() {
        return false;
    }
    let mut goal = (s.rcvbuf >> 3) as i64;
    let mut pruned = false;
    while let Some(last) = s.ofo.last() {
        // "If incoming skb would land last in ofo queue, stop pruning."
        if after(in_skb.seq, last.seq) {
            break;
        }
        pruned = true;
        let skb = s.ofo.pop().expect("non-empty");
        goal -= skb.truesize as i64;
        sock_rfree(s, skb.truesize);
        if s.ofo.is_empty() || goal <= 0 {
            if can_ingest(s) {
                break;
            }
            goal = (s.rcvbuf >> 3) as i64;
        }
    }
    if pruned {
        w.count(h, Counter::OfoPruned);
        let s = w.sk_mut(id);
        if s.sack_ok {
            s.dsack = false;
            s.num_sacks = 0;
        }
    }
    pruned
}

/// `tcp_collapse` over the receive queue: rebuild the skbs between `start`
/// and `end` into dense ones (`alloc_skb(SKB_MAX_ORDER(0, 0))`), freeing
/// bloated ones.
fn collapse_receive_queue(w: &mut World, id: SockId, mut start: u32, end: u32) {
    let s = w.sk_mut(id);
    let q = std::mem::take(&mut s.receive_queue);
    let mut skbs: Vec<RxSkb> = q.into_iter().collect();
    collapse(s, &mut skbs, &mut start, end);
    s.receive_queue = skbs.into_iter().collect();
}

/// `tcp_collapse` on a list of skbs (receive queue or one range of the
/// ofo queue), in place.
fn collapse(s: &mut Sock, skbs: &mut Vec<RxSkb>, start: &mut u32, end: u32) {
    // First, find the first skb worth collapsing.
    let mut i = 0;
    let mut found = false;
    while i < skbs.len() {
        let skb = &skbs[i];
        // "No new bits? It is possible on ofo queue."
        if !before(*start, skb.end_seq) {
            let skb = skbs.remove(i);
            sock_rfree(s, skb.truesize);
            continue;
        }
        if skb.flags & (TCPHDR_SYN | TCPHDR_FIN) == 0
            && (s.win_from_space(skb.truesize as i64) > skb.len() as i64 || before(skb.seq, *start))
        {
            found = true;
            break;
        }
        if i + 1 < skbs.len() && skb.end_seq != skbs[i + 1].seq {
            found = true;
            break;
        }
        *start = skb.end_seq;
        i += 1;
    }
    if !found || i >= skbs.len() || skbs[i].flags & (TCPHDR_SYN | TCPHDR_FIN) != 0 {
        return;
    }
    let mut out: Vec<RxSkb> = Vec::new();
    'outer: while before(*start, end) {
        let copy_max = skb_max_head(0).min(end.wrapping_sub(*start));
        let (truesize, end_offset) = alloc_skb(copy_max);
        let mut nskb = RxSkb {
            seq: *start,
            end_seq: *start,
            flags: skbs.get(i).map_or(0, |k| k.flags) & !(TCPHDR_FIN | TCPHDR_SYN),
            payload: crate::payload::Payload::empty(),
            truesize,
            end_offset,
            tail: 0,
            headlen: 0,
        };
        skb_set_owner_r(s, truesize);
        let mut copy = copy_max;
        while copy > 0 {
            let Some(skb) = skbs.get(i) else {
                out.push(nskb);
                break 'outer;
            };
            let offset = start.wrapping_sub(skb.seq);
            let size = skb.end_seq.wrapping_sub(*start) as i32;
            if size > 0 {
                let size = (size as u32).min(copy);
                let piece = skb.payload.slice(offset, size);
                nskb.payload.append(&piece);
                nskb.end_seq = nskb.end_seq.wrapping_add(size);
                nskb.tail += size;
                nskb.headlen += size;
                copy -= size;
                *start = start.wrapping_add(size);
            }
            if !before(*start, skb.end_seq) {
                let old = skbs.remove(i);
                sock_rfree(s, old.truesize);
                let stop = match skbs.get(i) {
                    None => true,
                    Some(n) => n.flags & (TCPHDR_SYN | TCPHDR_FIN) != 0,
                };
                if stop {
                    out.push(nskb);
                    break 'outer;
                }
            }
        }
        out.push(nskb);
    }
    // The new skbs go where the collapsed ones were.
    let tail: Vec<RxSkb> = skbs.drain(i..).collect();
    skbs.extend(out);
    skbs.extend(tail);
}

/// `tcp_collapse_ofo_queue`.
fn collapse_ofo_queue(w: &mut World, id: SockId) {
    let s = w.sk_mut(id);
    let mut ofo = std::mem::take(&mut s.ofo);
    let mut result: Vec<RxSkb> = Vec::new();
    let mut sum_tiny = 0u32;
    let i = 0;
    while i < ofo.len() {
        let mut start = ofo[i].seq;
        let mut end = ofo[i].end_seq;
        let head_truesize = ofo[i].truesize;
        let mut range_truesize = head_truesize;
        let mut j = i + 1;
        while j < ofo.len() && !after(ofo[j].seq, end) && !before(ofo[j].end_seq, start) {
            range_truesize += ofo[j].truesize;
            if before(ofo[j].seq, start) {
                start = ofo[j].seq;
            }
            if after(ofo[j].end_seq, end) {
                end = ofo[j].end_seq;
            }
            j += 1;
        }
        let mut range: Vec<RxSkb> = ofo.drain(i..j).collect();
        // "Do not attempt collapsing tiny skbs"
        if range_truesize != head_truesize || end.wrapping_sub(start) >= skb_with_overhead(4096) {
            let mut st = start;
            collapse(s, &mut range, &mut st, end);
            result.extend(range);
        } else {
            sum_tiny += range_truesize;
            result.extend(range);
            if sum_tiny > s.rcvbuf >> 3 {
                result.append(&mut ofo);
                break;
            }
        }
    }
    result.append(&mut ofo);
    s.ofo = result;
}

/// `tcp_try_coalesce` (with `skb_try_coalesce`): the TUN device's skbs
/// have their payload start in a kmalloc'ed head, which is never stolen
/// (`skb_head_is_locked`), so an skb joins the previous one only by
/// copying into the previous one's tailroom.
fn try_coalesce(s: &mut Sock, to: &mut RxSkb, from: &RxSkb) -> bool {
    if from.seq != to.end_seq {
        return false;
    }
    let len = from.len();
    if len <= to.tailroom() {
        to.payload.append(&from.payload);
        to.tail += len;
        to.headlen += len;
        to.end_seq = from.end_seq;
        to.flags |= from.flags;
        let _ = s;
        return true;
    }
    false
}

/// `tcp_queue_rcv`: in-order data joins the tail skb or the queue.
/// Returns whether it was eaten (coalesced).
fn queue_rcv(w: &mut World, id: SockId, skb: RxSkb) -> bool {
    let s = w.sk_mut(id);
    let end_seq = skb.end_seq;
    let mut eaten = false;
    if let Some(mut tail) = s.receive_queue.pop_back() {
        eaten = try_coalesce(s, &mut tail, &skb);
        s.receive_queue.push_back(tail);
    }
    if eaten {
        let h = s.host;
        rcv_nxt_update(s, end_seq);
        w.count(h, Counter::TCPRcvCoalesce);
    } else {
        rcv_nxt_update(s, end_seq);
        let ts = skb.truesize;
        s.receive_queue.push_back(skb);
        skb_set_owner_r(s, ts);
    }
    eaten
}

/// `tcp_rcv_nxt_update`.
fn rcv_nxt_update(s: &mut Sock, seq: u32) {
    let delta = seq.wrapping_sub(s.rcv_nxt);
    s.bytes_received += delta as u64;
    s.rcv_nxt = seq;
}

/// `tcp_data_queue`.
fn tcp_data_queue(w: &mut World, id: SockId, seg: &InSeg) {
    if seg.seq == seg.end_seq.wrapping_sub(seg.syn() as u32) || (seg.is_empty() && !seg.fin()) {
        return;
    }
    let skb = seg.rx_skb();
    let h = w.sk(id).host;
    w.sk_mut(id).dsack = false;
    let s = w.sk(id);
    if skb.seq == s.rcv_nxt {
        if s.receive_window() == 0 {
            // "Some stacks are known to send bare FIN packets in a loop
            // even if we send RWIN 0 in our ACK."
            if !(skb.is_empty() && skb.fin()) {
                w.count(h, Counter::TCPZeroWindowDrop);
                out_of_window(w, id);
                return;
            }
        }
        queue_and_out(w, id, skb);
        return;
    }
    if !after(skb.end_seq, s.rcv_nxt) {
        // "A retransmit, 2nd most common case. Force an immediate ack."
        w.count(h, Counter::DelayedACKLost);
        let (a, b) = (skb.seq, skb.end_seq);
        dsack_set(w, id, a, b);
        out_of_window(w, id);
        return;
    }
    // "Out of window. F.e. zero window probe."
    if !before(skb.seq, s.rcv_nxt.wrapping_add(s.receive_window())) {
        out_of_window(w, id);
        return;
    }
    if before(skb.seq, s.rcv_nxt) {
        // "Partial packet, seq < rcv_next < end_seq"
        let (a, b) = (skb.seq, s.rcv_nxt);
        dsack_set(w, id, a, b);
        if w.sk(id).receive_window() == 0 {
            w.count(h, Counter::TCPZeroWindowDrop);
            out_of_window(w, id);
            return;
        }
        // The skb keeps its head: readers skip to copied_seq, and it does
        // not coalesce (its seq is not the tail's end_seq).
        queue_and_out(w, id, skb);
        return;
    }
    data_queue_ofo(w, id, skb);
}

fn out_of_window(w: &mut World, id: SockId) {
    enter_quickack_mode(w, id, TCP_MAX_QUICKACKS);
    w.sk_mut(id).ack_pending |= ICSK_ACK_SCHED;
}

/// `tcp_data_queue`'s `queue_and_out`.
fn queue_and_out(w: &mut World, id: SockId, skb: RxSkb) {
    let h = w.sk(id).host;
    if !try_rmem_schedule(w, id, &skb) {
        let s = w.sk_mut(id);
        s.ack_pending |= ICSK_ACK_NOMEM | ICSK_ACK_NOW | ICSK_ACK_SCHED;
        if !s.receive_queue.is_empty() && !skb.is_empty() {
            w.count(h, Counter::TCPRcvQDrop);
            return;
        }
        sk_forced_mem_schedule(s, skb.truesize);
    }
    let len = skb.len();
    let fin = skb.fin();
    let psh = skb.flags & TCPHDR_PSH != 0;
    let truesize = skb.truesize;
    queue_rcv(w, id, skb);
    if len > 0 {
        let hdr = 20 + w.sk(id).tcp_header_len;
        event_data_recv_skb(w, id, len, psh, truesize, hdr);
    }
    if fin {
        tcp_fin(w, id);
    }
    if !w.sk(id).ofo.is_empty() {
        ofo_queue(w, id);
        // "RFC5681. 4.2. SHOULD send immediate ACK, when gap in queue is
        // filled."
        if w.sk(id).ofo.is_empty() {
            w.sk_mut(id).ack_pending |= ICSK_ACK_NOW;
        }
    }
    let s = w.sk_mut(id);
    if s.num_sacks > 0 {
        sack_remove(s);
    }
    fast_path_check(s);
    if !s.dead {
        s.wakeups += 1;
    }
}

/// `tcp_ofo_queue`: move what the hole no longer separates.
fn ofo_queue(w: &mut World, id: SockId) {
    let dsack_high = w.sk(id).rcv_nxt;
    loop {
        let s = w.sk(id);
        let Some(first) = s.ofo.first() else { break };
        if after(first.seq, s.rcv_nxt) {
            break;
        }
        if before(first.seq, dsack_high) {
            let mut d = dsack_high;
            if before(first.end_seq, dsack_high) {
                d = first.end_seq;
            }
            let a = first.seq;
            dsack_extend(w, id, a, d);
        }
        let s = w.sk_mut(id);
        let skb = s.ofo.remove(0);
        s.ooo_last = None;
        if !after(skb.end_seq, s.rcv_nxt) {
            sock_rfree(s, skb.truesize);
            continue;
        }
        // The ofo skb owns its memory already; move it over.
        sock_rfree(s, skb.truesize);
        let fin = skb.fin();
        let mut eaten = false;
        if let Some(mut tail) = s.receive_queue.pop_back() {
            eaten = try_coalesce(s, &mut tail, &skb);
            s.receive_queue.push_back(tail);
        }
        rcv_nxt_update(s, skb.end_seq);
        if !eaten {
            let ts = skb.truesize;
            s.receive_queue.push_back(skb);
            skb_set_owner_r(s, ts);
        }
        if fin {
            tcp_fin(w, id);
            break;
        }
    }
}

/// `tcp_data_queue_ofo`.
fn data_queue_ofo(w: &mut World, id: SockId, skb: RxSkb) {
    let h = w.sk(id).host;
    if !try_rmem_schedule(w, id, &skb) {
        w.count(h, Counter::TCPOFODrop);
        return;
    }
    let hdr = w.sk(id).tcp_header_len;
    let s = w.sk_mut(id);
    measure_rcv_mss(s, skb.len(), skb.truesize, skb.flags & TCPHDR_PSH != 0, hdr);
    s.pred_flags = 0;
    s.ack_pending |= ICSK_ACK_SCHED;
    s.rcv_ooopack += 1;
    w.count(h, Counter::TCPOFOQueue);
    let (seq, end_seq) = (skb.seq, skb.end_seq);
    let rmem2 = w.sys(id).tcp_rmem[2];
    let s = w.sk_mut(id);
    if s.ofo.is_empty() {
        if s.is_sack() {
            s.num_sacks = 1;
            s.selective_acks[0] = SackBlock {
                start_seq: seq,
                end_seq,
            };
        }
        let (len, ts) = (skb.len(), skb.truesize);
        s.ofo.push(skb);
        if s.is_sack() {
            grow_window(s, len, ts, false, rmem2);
        }
        skb_set_owner_r(s, ts);
        if s.has_socket {
            rcvbuf_grow(w, id);
        }
        return;
    }
    // "In the typical case, we are adding an skb to the end of the list."
    let last = s.ofo.len() - 1;
    {
        let mut to = s.ofo.pop().expect("non-empty");
        let ok = try_coalesce(s, &mut to, &skb);
        s.ofo.push(to);
        if ok {
            w.count(h, Counter::TCPRcvCoalesce);
            let s = w.sk_mut(id);
            if s.is_sack() {
                grow_window(s, skb.len(), skb.truesize, true, rmem2);
            }
            if s.is_sack() {
                sack_new_ofo_skb(w, id, seq, end_seq);
            }
            if w.sk(id).has_socket {
                rcvbuf_grow(w, id);
            }
            return;
        }
    }
    let s = w.sk_mut(id);
    let mut insert_at = s.ofo.len();
    let mut keep = true;
    if before(seq, s.ofo[last].end_seq) {
        // Find the place, handling overlaps.
        insert_at = 0;
        let mut i = 0;
        while i < s.ofo.len() {
            let s1 = &s.ofo[i];
            if before(seq, s1.seq) {
                insert_at = i;
                break;
            }
            if before(seq, s1.end_seq) {
                if !after(end_seq, s1.end_seq) {
                    // "All the bits are present. Drop."
                    w.count(h, Counter::TCPOFOMerge);
                    dsack_set(w, id, seq, end_seq);
                    keep = false;
                    break;
                }
                if after(seq, s1.seq) {
                    let e = s1.end_seq;
                    dsack_set(w, id, seq, e);
                    insert_at = i + 1;
                } else {
                    // "skb's seq == skb1's seq and skb covers skb1."
                    let (a, b, ts) = (s1.seq, s1.end_seq, s1.truesize);
                    dsack_extend(w, id, a, b);
                    w.count(h, Counter::TCPOFOMerge);
                    let s = w.sk_mut(id);
                    s.ofo.remove(i);
                    sock_rfree(s, ts);
                    insert_at = i;
                }
                break;
            }
            insert_at = i + 1;
            i += 1;
        }
    }
    if keep {
        let (len, ts) = (skb.len(), skb.truesize);
        w.sk_mut(id).ofo.insert(insert_at, skb);
        // merge_right: remove segments covered by the new one
        while insert_at + 1 < w.sk(id).ofo.len() {
            let s1 = &w.sk(id).ofo[insert_at + 1];
            if !after(end_seq, s1.seq) {
                break;
            }
            if before(end_seq, s1.end_seq) {
                let a = s1.seq;
                dsack_extend(w, id, a, end_seq);
                break;
            }
            let (a, b, t) = (s1.seq, s1.end_seq, s1.truesize);
            dsack_extend(w, id, a, b);
            w.count(h, Counter::TCPOFOMerge);
            let s = w.sk_mut(id);
            s.ofo.remove(insert_at + 1);
            sock_rfree(s, t);
        }
        let s = w.sk_mut(id);
        if s.is_sack() {
            sack_new_ofo_skb(w, id, seq, end_seq);
        }
        let s = w.sk_mut(id);
        if s.is_sack() {
            grow_window(s, len, ts, false, rmem2);
        }
        skb_set_owner_r(s, ts);
    } else if w.sk(id).is_sack() {
        sack_new_ofo_skb(w, id, seq, end_seq);
    }
    if w.sk(id).has_socket {
        rcvbuf_grow(w, id);
    }
}

/// `tcp_sack_extend`.
fn sack_extend(sp: &mut SackBlock, seq: u32, end_seq: u32) -> bool {
    if !after(seq, sp.end_seq) && !after(sp.start_seq, end_seq) {
        if before(seq, sp.start_seq) {
            sp.start_seq = seq;
        }
        if after(end_seq, sp.end_seq) {
            sp.end_seq = end_seq;
        }
        return true;
    }
    false
}

/// `tcp_dsack_set`.
fn dsack_set(w: &mut World, id: SockId, seq: u32, end_seq: u32) {
    if !(w.sk(id).is_sack() && w.sys(id).tcp_dsack) {
        return;
    }
    let h = w.sk(id).host;
    let mib = if before(seq, w.sk(id).rcv_nxt) {
        Counter::TCPDSACKOldSent
    } else {
        Counter::TCPDSACKOfoSent
    };
    w.count(h, mib);
    let s = w.sk_mut(id);
    s.dsack = true;
    s.duplicate_sack = SackBlock {
        start_seq: seq,
        end_seq,
    };
}

/// `tcp_dsack_extend`.
fn dsack_extend(w: &mut World, id: SockId, seq: u32, end_seq: u32) {
    if !w.sk(id).dsack {
        dsack_set(w, id, seq, end_seq);
    } else {
        sack_extend(&mut w.sk_mut(id).duplicate_sack, seq, end_seq);
    }
}

/// `tcp_sack_maybe_coalesce`.
fn sack_maybe_coalesce(s: &mut Sock) {
    let mut this = 1;
    while this < s.num_sacks as usize {
        let b = s.selective_acks[this];
        if sack_extend(&mut s.selective_acks[0], b.start_seq, b.end_seq) {
            s.num_sacks -= 1;
            for i in this..s.num_sacks as usize {
                s.selective_acks[i] = s.selective_acks[i + 1];
            }
            continue;
        }
        this += 1;
    }
}

/// `tcp_sack_new_ofo_skb`.
fn sack_new_ofo_skb(w: &mut World, id: SockId, seq: u32, end_seq: u32) {
    let s = w.sk_mut(id);
    let cur = s.num_sacks as usize;
    if cur == 0 {
        s.selective_acks[0] = SackBlock {
            start_seq: seq,
            end_seq,
        };
        s.num_sacks = 1;
        return;
    }
    for this in 0..cur {
        if sack_extend(&mut s.selective_acks[this], seq, end_seq) {
            if this >= 2 {
                // tcp_sack_compress_send_ack: no compressed ACK pending here
            }
            let mut k = this;
            while k > 0 {
                s.selective_acks.swap(k, k - 1);
                k -= 1;
            }
            if cur > 1 {
                sack_maybe_coalesce(s);
            }
            return;
        }
    }
    let mut this = cur;
    if this >= 4 {
        this -= 1;
        s.num_sacks -= 1;
    }
    while this > 0 {
        s.selective_acks[this] = s.selective_acks[this - 1];
        this -= 1;
    }
    s.selective_acks[0] = SackBlock {
        start_seq: seq,
        end_seq,
    };
    s.num_sacks += 1;
}

/// `tcp_sack_remove`.
fn sack_remove(s: &mut Sock) {
    if s.ofo.is_empty() {
        s.num_sacks = 0;
        return;
    }
    let mut n = s.num_sacks as usize;
    let mut this = 0;
    while this < n {
        if !before(s.rcv_nxt, s.selective_acks[this].start_seq) {
            for i in this + 1..n {
                s.selective_acks[i - 1] = s.selective_acks[i];
            }
            n -= 1;
            continue;
        }
        this += 1;
    }
    s.num_sacks = n as u8;
}

/// `tcp_fin`.
pub fn tcp_fin(w: &mut World, id: SockId) {
    let thresh = w.sys(id).tcp_pingpong_thresh;
    let s = w.sk_mut(id);
    s.ack_pending |= ICSK_ACK_SCHED;
    s.sk_shutdown |= RCV_SHUTDOWN;
    s.done = true;
    match s.state {
        State::SynRecv | State::Established => {
            tcp_set_state(w, id, State::CloseWait);
            // inet_csk_enter_pingpong_mode
            w.sk_mut(id).ack_pingpong = thresh;
        }
        State::FinWait1 => {
            // "a simultaneous close happens, we must ack the received FIN
            // and enter the CLOSING state"
            send_ack(w, id, "ACK of the peer's FIN (simultaneous close)");
            tcp_set_state(w, id, State::Closing);
        }
        State::FinWait2 => {
            send_ack(w, id, "ACK of the peer's FIN: entering TIME_WAIT");
            timewait::tcp_time_wait(w, id, State::TimeWait, 0);
        }
        _ => {}
    }
    // "we have something out-of-order _after_ FIN ... For now drop them."
    let s = w.sk_mut(id);
    let ofo = std::mem::take(&mut s.ofo);
    for skb in ofo {
        sock_rfree(s, skb.truesize);
    }
    if s.is_sack() {
        s.dsack = false;
        s.num_sacks = 0;
    }
    if !s.dead {
        s.wakeups += 1;
    }
}

/// `tcp_reset`.
pub fn tcp_reset(w: &mut World, id: SockId) {
    let err = match w.sk(id).state {
        State::SynSent => Errno::ECONNREFUSED,
        State::CloseWait => Errno::EPIPE,
        State::Close => return,
        _ => Errno::ECONNRESET,
    };
    tcp_done_with_error(w, id, err);
}

/// `tcp_done_with_error`.
pub fn tcp_done_with_error(w: &mut World, id: SockId, err: Errno) {
    w.sk_mut(id).sk_err = Some(err);
    super::close::tcp_write_queue_purge(w, id);
    tcp_done(w, id);
    let s = w.sk_mut(id);
    if !s.dead {
        s.wakeups += 1;
    }
}

/// `tcp_urg` with `tcp_check_urg`.
fn tcp_urg(w: &mut World, id: SockId, seg: &InSeg) {
    let stdurg = w.sys(id).tcp_stdurg;
    let s = w.sk_mut(id);
    if seg.urg() {
        // tcp_check_urg
        let mut ptr = seg.seg.urg_ptr as u32;
        if ptr > 0 && !stdurg {
            ptr -= 1;
        }
        let ptr = ptr.wrapping_add(seg.seq);
        let ok = !after(s.copied_seq, ptr)
            && !before(ptr, s.rcv_nxt)
            && (s.urg_data == 0 || after(ptr, s.urg_seq));
        if ok {
            if s.urg_seq == s.copied_seq
                && s.urg_data != 0
                && !s.urginline
                && s.copied_seq != s.rcv_nxt
            {
                s.copied_seq = s.copied_seq.wrapping_add(1);
                if let Some(skb) = s.receive_queue.front() {
                    if !before(s.copied_seq, skb.end_seq) {
                        let skb = s.receive_queue.pop_front().expect("present");
                        sock_rfree(s, skb.truesize);
                    }
                }
            }
            s.urg_data = TCP_URG_NOTYET;
            s.urg_seq = ptr;
            s.pred_flags = 0;
        }
    }
    if s.urg_data == TCP_URG_NOTYET {
        let off = s
            .urg_seq
            .wrapping_sub(seg.seq)
            .wrapping_sub(seg.syn() as u32);
        if off < seg.len() {
            if let Some(b) = seg.seg.payload.as_ref().and_then(|p| p.byte_at(off)) {
                s.urg_data = TCP_URG_VALID | b as u16;
                if !s.dead {
                    s.wakeups += 1;
                }
            }
        }
    }
}

/// `tcp_data_snd_check`.
pub fn data_snd_check(w: &mut World, id: SockId) {
    output::push_pending_frames(w, id);
    ack::tcp_check_space(w, id);
}

/// `__tcp_ack_snd_check`.
pub fn ack_snd_check_raw(w: &mut World, id: SockId, ofo_possible: bool) {
    let thresh = w.sys(id).tcp_pingpong_thresh;
    let comp_nr = w.sys(id).tcp_comp_sack_nr;
    let s = w.sk_mut(id);
    let more_than_mss = s.rcv_nxt.wrapping_sub(s.rcv_wup) > s.ack_rcv_mss && {
        // sk_rcvlowat is 1: rcv_nxt - copied_seq < 1 only with nothing queued
        s.rcv_nxt.wrapping_sub(s.copied_seq) < 1 || output::raw_select_window(s) >= s.rcv_wnd
    };
    let s = w.sk(id);
    let quick = s.in_quickack_mode(thresh);
    let now_flag = s.ack_pending & ICSK_ACK_NOW != 0;
    if more_than_mss || quick || now_flag {
        // "If we are running from __release_sock() in user context, defer"
        // never applies: calls are atomic here.
        let why: Cow<'static, str> = if now_flag {
            Cow::Borrowed("immediate ACK (ICSK_ACK_NOW)")
        } else if more_than_mss {
            Cow::Borrowed("ACK: more than one full segment received (__tcp_ack_snd_check)")
        } else {
            Cow::Borrowed("quick ACK (tcp_in_quickack_mode)")
        };
        send_ack(w, id, why);
        return;
    }
    if !ofo_possible || s.ofo.is_empty() {
        send_delayed_ack(w, id);
        return;
    }
    if !s.is_sack() || s.compressed_ack >= comp_nr {
        send_ack(w, id, "ACK with SACK for out-of-order data");
        return;
    }
    let s = w.sk_mut(id);
    if s.compressed_ack_rcv_nxt != s.rcv_nxt {
        s.compressed_ack_rcv_nxt = s.rcv_nxt;
        s.dup_ack_counter = 0;
    }
    if s.dup_ack_counter < TCP_FASTRETRANS_THRESH {
        s.dup_ack_counter += 1;
        send_ack(w, id, "ACK with SACK for out-of-order data");
        return;
    }
    // SACK compression (tcp_comp_sack_delay_ns): the compressed ACK's
    // hrtimer fires after 5 % of the RTT, at most 1 ms. The model sends
    // at once instead (a departure that shows only under heavy reordering).
    send_ack(
        w,
        id,
        "ACK with SACK for out-of-order data (SACK compression not modelled)",
    );
}

/// `tcp_ack_snd_check`.
pub fn ack_snd_check(w: &mut World, id: SockId) {
    if !w.sk(id).ack_scheduled() {
        return;
    }
    ack_snd_check_raw(w, id, true);
}

/// `tcp_cleanup_rbuf` after a read of `copied` bytes.
pub fn cleanup_rbuf(w: &mut World, id: SockId, copied: i64) {
    let thresh = w.sys(id).tcp_pingpong_thresh;
    let s = w.sk_mut(id);
    let mut time_to_ack = false;
    if s.ack_scheduled()
        && (s.rcv_nxt.wrapping_sub(s.rcv_wup) > s.ack_rcv_mss
            || (copied > 0
                && (s.ack_pending & ICSK_ACK_PUSHED2 != 0
                    || (s.ack_pending & ICSK_ACK_PUSHED != 0 && !s.in_pingpong_mode(thresh)))
                && s.rmem_alloc == 0))
    {
        time_to_ack = true;
    }
    let mut why = "ACK after the program read the data (tcp_cleanup_rbuf)";
    if copied > 0 && !time_to_ack && s.sk_shutdown & RCV_SHUTDOWN == 0 {
        let now = s.receive_window();
        if 2 * now <= s.window_clamp {
            let new = output::raw_select_window(s);
            if new > 0 && new >= 2 * now {
                time_to_ack = true;
                why = "window update after the program read (tcp_cleanup_rbuf)";
            }
        }
    }
    if time_to_ack {
        send_ack(w, id, why);
    }
}

/// Frees the receive queue's skbs that reading consumed
/// (`tcp_eat_recv_skb` → `sock_rfree`).
pub fn eat_recv_skb(s: &mut Sock) {
    if let Some(skb) = s.receive_queue.pop_front() {
        sock_rfree(s, skb.truesize);
    }
}

/// The memory a queued receive skb still holds after the program read
/// part of it stays charged until the whole skb is read (the kernel frees
/// skbs, not bytes).
pub fn rx_queue_purge(s: &mut Sock) {
    let q = std::mem::take(&mut s.receive_queue);
    for skb in q {
        sock_rfree(s, skb.truesize);
    }
    let ofo = std::mem::take(&mut s.ofo);
    for skb in ofo {
        sock_rfree(s, skb.truesize);
    }
    let _ = mem::PAGE_SIZE;
}
