//! Loss detection and recovery (net/ipv4/tcp_input.c, tcp_recovery.c):
//! the SACK scoreboard (`tcp_sacktag_write_queue`), RACK loss detection,
//! `tcp_fastretrans_alert`, the Loss state after an RTO with F-RTO, undo,
//! and PRR cwnd reduction.
//!
//! One simplification: SACKed skbs are not merged (`tcp_shift_skb_data`);
//! that changes the retransmit queue's skb boundaries, not which bytes
//! are retransmitted.

use super::World;
use super::ack::*;
use super::input::InSeg;
use super::output;
use super::skb::*;
use super::sock::*;
use super::timers;
use crate::vocab::Counter;

pub const REXMIT_NONE: u8 = 0;
pub const REXMIT_LOST: u8 = 1;
pub const REXMIT_NEW: u8 = 2;
const TCP_RACK_RECOVERY_THRESH: u8 = 16;

/// `struct tcp_sacktag_state`.
#[derive(Default)]
pub struct SacktagState {
    pub first_sackt: u64,
    pub last_sackt: u64,
    pub reord: u32,
    pub sack_delivered: u32,
    pub flag: u32,
    pub rate: RateSample,
}

/// `tcp_set_ca_state` (CUBIC resets its state on entering Loss).
pub fn set_ca_state(w: &mut World, id: SockId, st: CaState) {
    if st == CaState::Loss {
        super::cubic::state_loss(w, id);
    }
    w.sk_mut(id).ca_state = st;
}

/// `tcp_clear_retrans`.
pub fn clear_retrans(s: &mut Sock) {
    s.retrans_out = 0;
    s.lost_out = 0;
    s.undo_marker = 0;
    s.undo_retrans = -1;
    s.sacked_out = 0;
    s.rto_stamp = 0;
    s.total_rto = 0;
    s.total_rto_recoveries = 0;
}

/// `tcp_highest_sack_seq`.
pub fn highest_sack_seq(s: &Sock) -> u32 {
    if s.sacked_out == 0 {
        return s.snd_una;
    }
    match s.highest_sack {
        None => s.snd_nxt,
        Some(seq) => seq,
    }
}

/// `tcp_skb_spurious_retrans`.
pub fn skb_spurious_retrans(s: &Sock, sacked: u8, mstamp: u64) -> bool {
    sacked & TCPCB_RETRANS != 0 && tsopt_ecr_before(s, (mstamp / 1000) as u32)
}

/// `tcp_tsopt_ecr_before`.
fn tsopt_ecr_before(s: &Sock, when: u32) -> bool {
    s.saw_tstamp && s.rcv_tsecr != 0 && before(s.rcv_tsecr, when)
}

/// `tcp_rack_advance`.
pub fn rack_advance(s: &mut Sock, sacked: u8, end_seq: u32, xmit_time: u64, now: u64) {
    let rtt_us = now.saturating_sub(xmit_time) as u32;
    if rtt_us < min_rtt(s) && sacked & TCPCB_RETRANS != 0 {
        return;
    }
    s.rack.advanced = true;
    s.rack.rtt_us = rtt_us;
    if xmit_time > s.rack.mstamp || (xmit_time == s.rack.mstamp && after(end_seq, s.rack.end_seq)) {
        s.rack.mstamp = xmit_time;
        s.rack.end_seq = end_seq;
    }
}

/// `tcp_rack_reo_wnd`.
fn rack_reo_wnd(w: &World, id: SockId) -> u32 {
    let s = w.sk(id);
    if s.reord_seen == 0 {
        if s.ca_state >= CaState::Recovery {
            return 0;
        }
        if s.sacked_out >= s.reordering && w.sys(id).tcp_recovery & 4 == 0 {
            return 0;
        }
    }
    ((min_rtt(s) >> 2) * s.rack.reo_wnd_steps as u32).min(s.srtt_us >> 3)
}

/// `tcp_rack_detect_loss`: returns the longest remaining wait (µs).
fn rack_detect_loss(w: &mut World, id: SockId) -> u32 {
    let reo_wnd = rack_reo_wnd(w, id);
    let now = w.now;
    let s = w.sk(id);
    // tsorted_sent_queue: sent skbs in the order they were (re)sent; the
    // SACKed and the lost-but-not-retransmitted are not on it.
    let mut order: Vec<(u64, u32)> = s
        .rtx_queue
        .iter()
        .filter(|k| {
            k.sacked & TCPCB_SACKED_ACKED == 0
                && !(k.sacked & TCPCB_LOST != 0 && k.sacked & TCPCB_SACKED_RETRANS == 0)
        })
        .map(|k| (k.mstamp, k.seq))
        .collect();
    order.sort_by(|a, b| a.0.cmp(&b.0).then((a.1.wrapping_sub(b.1) as i32).cmp(&0)));
    let mut reo_timeout = 0u32;
    for (mstamp, seq) in order {
        let s = w.sk(id);
        let Some(idx) = s.rtx_queue.iter().position(|k| k.seq == seq) else {
            continue;
        };
        let end_seq = s.rtx_queue[idx].end_seq;
        let sent_after =
            s.rack.mstamp > mstamp || (s.rack.mstamp == mstamp && after(s.rack.end_seq, end_seq));
        if !sent_after {
            break;
        }
        let remaining = s.rack.rtt_us as i64 + reo_wnd as i64 - now.saturating_sub(mstamp) as i64;
        if remaining <= 0 {
            mark_skb_lost(w, id, idx);
        } else {
            reo_timeout = reo_timeout.max(remaining as u32);
        }
    }
    reo_timeout
}

/// `tcp_rack_mark_lost`.
pub fn rack_mark_lost(w: &mut World, id: SockId) -> bool {
    if !w.sk(id).rack.advanced {
        return false;
    }
    w.sk_mut(id).rack.advanced = false;
    let timeout = rack_detect_loss(w, id);
    if timeout > 0 {
        let t = usecs_to_jiffies(timeout as u64 + TCP_TIMEOUT_MIN_US);
        let rto = w.sk(id).rto;
        timers::reset_xmit_timer_max(w, id, XmitTimer::ReoTimeout, t, rto);
    }
    timeout > 0
}

/// `tcp_rack_reo_timeout`.
pub fn rack_reo_timeout(w: &mut World, id: SockId) {
    let lost0 = w.sk(id).lost;
    let prior_inflight = w.sk(id).packets_in_flight();
    rack_detect_loss(w, id);
    if prior_inflight != w.sk(id).packets_in_flight() {
        if w.sk(id).ca_state != CaState::Recovery {
            enter_recovery(w, id, false);
            let newly_lost = (w.sk(id).lost - lost0) as i32;
            cwnd_reduction(w, id, 1, newly_lost, 0);
        }
        w.why_ctx = Some("retransmission: RACK reordering timer (tcp_rack_reo_timeout)".into());
        output::xmit_retransmit_queue(w, id);
        w.why_ctx = None;
    }
    if w.sk(id).pending != Some(XmitTimer::Retrans) {
        timers::rearm_rto(w, id);
    }
}

/// `tcp_rack_update_reo_wnd`.
pub fn rack_update_reo_wnd(w: &mut World, id: SockId, rs: &RateSample) {
    if w.sys(id).tcp_recovery & 2 != 0 || rs.prior_delivered == 0 {
        return;
    }
    let s = w.sk_mut(id);
    if before(rs.prior_delivered, s.rack.last_delivered) {
        s.rack.dsack_seen = false;
    }
    if s.rack.dsack_seen {
        s.rack.reo_wnd_steps = s.rack.reo_wnd_steps.saturating_add(1);
        s.rack.dsack_seen = false;
        s.rack.last_delivered = s.delivered;
        s.rack.reo_wnd_persist = TCP_RACK_RECOVERY_THRESH;
    } else if s.rack.reo_wnd_persist == 0 {
        s.rack.reo_wnd_steps = 1;
    }
}

/// `tcp_verify_retransmit_hint`.
fn verify_retransmit_hint(s: &mut Sock, seq: u32) {
    match s.retransmit_hint {
        None if s.retrans_out >= s.lost_out => s.retransmit_hint = Some(seq),
        Some(h) if before(seq, h) => s.retransmit_hint = Some(seq),
        _ => {}
    }
}

/// `tcp_mark_skb_lost`.
pub fn mark_skb_lost(w: &mut World, id: SockId, idx: usize) {
    let h = w.sk(id).host;
    let s = w.sk_mut(id);
    let (sacked, seq, pcount) = {
        let k = &s.rtx_queue[idx];
        (k.sacked, k.seq, k.pcount)
    };
    if sacked & TCPCB_SACKED_ACKED != 0 {
        return;
    }
    verify_retransmit_hint(s, seq);
    if sacked & TCPCB_LOST != 0 {
        if sacked & TCPCB_SACKED_RETRANS != 0 {
            // "Account for retransmits that are lost again"
            s.rtx_queue[idx].sacked &= !TCPCB_SACKED_RETRANS;
            s.retrans_out -= pcount.min(s.retrans_out);
            s.lost += pcount;
            w.count_n(h, Counter::TCPLostRetransmit, pcount as i64);
        }
    } else {
        s.lost_out += pcount;
        s.rtx_queue[idx].sacked |= TCPCB_LOST;
        s.lost += pcount;
    }
}

/// `tcp_check_sack_reordering`.
pub fn check_sack_reordering(w: &mut World, id: SockId, low_seq: u32, ts: bool) {
    let max_reord = w.sys(id).tcp_max_reordering;
    let h = w.sk(id).host;
    let s = w.sk_mut(id);
    let mss = s.mss_cache;
    let fack = highest_sack_seq(s);
    if !before(low_seq, fack) {
        return;
    }
    let metric = fack.wrapping_sub(low_seq);
    if metric > s.reordering * mss && mss > 0 {
        s.reordering = metric.div_ceil(mss).min(max_reord);
    }
    s.reord_seen += 1;
    w.count(
        h,
        if ts {
            Counter::TCPTSReorder
        } else {
            Counter::TCPSACKReorder
        },
    );
}

/// `tcp_is_sackblock_valid`.
fn sackblock_valid(s: &Sock, is_dsack: bool, start: u32, end: u32) -> bool {
    if after(end, s.snd_nxt) || !before(start, end) {
        return false;
    }
    if !before(start, s.snd_nxt) {
        return false;
    }
    if after(start, s.snd_una) {
        return true;
    }
    if !is_dsack || s.undo_marker == 0 {
        return false;
    }
    if after(end, s.snd_una) {
        return false;
    }
    if !before(start, s.undo_marker) {
        return true;
    }
    if !after(end, s.undo_marker) {
        return false;
    }
    !before(start, end.wrapping_sub(s.max_window))
}

/// `tcp_dsack_seen`.
fn dsack_seen(s: &mut Sock, start: u32, end: u32, st: &mut SacktagState) -> u32 {
    if !before(start, end) {
        return 0;
    }
    let seq_len = end.wrapping_sub(start);
    if seq_len > s.max_window {
        return 0;
    }
    let mut dup_segs = 1;
    if seq_len > s.mss_cache {
        dup_segs = seq_len.div_ceil(s.mss_cache);
    } else if s.tlp_high_seq != 0 && s.tlp_high_seq == end {
        st.flag |= FLAG_DSACK_TLP;
    }
    s.dsack_dups += dup_segs;
    if s.dsack_dups > s.total_retrans {
        return 0;
    }
    if s.reord_seen > 0 && st.flag & FLAG_DSACK_TLP == 0 {
        s.rack.dsack_seen = true;
    }
    st.flag |= FLAG_DSACKING_ACK;
    st.sack_delivered += dup_segs;
    dup_segs
}

/// `tcp_check_dsack`.
fn check_dsack(
    w: &mut World,
    id: SockId,
    seg: &InSeg,
    prior_snd_una: u32,
    st: &mut SacktagState,
) -> bool {
    let sp = &seg.sacks;
    let (s0, e0) = sp[0];
    let h = w.sk(id).host;
    if before(s0, seg.ack_seq) {
        w.count(h, Counter::TCPDSACKRecv);
    } else if sp.len() > 1 {
        let (s1, e1) = sp[1];
        if after(e0, e1) || before(s0, s1) {
            return false;
        }
        w.count(h, Counter::TCPDSACKOfoRecv);
    } else {
        return false;
    }
    let s = w.sk_mut(id);
    let dup_segs = dsack_seen(s, s0, e0, st);
    if dup_segs == 0 {
        w.count(h, Counter::TCPDSACKIgnoredDubious);
        return false;
    }
    w.count_n(h, Counter::TCPDSACKRecvSegs, dup_segs as i64);
    let s = w.sk_mut(id);
    if s.undo_marker != 0
        && s.undo_retrans > 0
        && !after(e0, prior_snd_una)
        && after(e0, s.undo_marker)
    {
        s.undo_retrans = (s.undo_retrans - dup_segs as i32).max(0);
    }
    true
}

/// `tcp_match_skb_to_sack`: 1 in, 0 out, -1 error.
fn match_skb_to_sack(w: &mut World, id: SockId, idx: usize, start: u32, end: u32) -> i32 {
    let s = w.sk(id);
    let skb = &s.rtx_queue[idx];
    let mut in_sack = !after(start, skb.seq) && !before(end, skb.end_seq);
    if skb.pcount > 1 && !in_sack && after(skb.end_seq, start) {
        let mss = skb.gso_size.max(1);
        in_sack = !after(start, skb.seq);
        let mut pkt_len;
        if !in_sack {
            pkt_len = start.wrapping_sub(skb.seq);
            if pkt_len < mss {
                pkt_len = mss;
            }
        } else {
            pkt_len = end.wrapping_sub(skb.seq);
            if pkt_len < mss {
                return -1;
            }
        }
        if pkt_len > mss {
            let mut new_len = (pkt_len / mss) * mss;
            if !in_sack && new_len < pkt_len {
                new_len += mss;
            }
            pkt_len = new_len;
        }
        if pkt_len >= skb.len() && !in_sack {
            return 0;
        }
        if !output::tcp_fragment(w, id, true, idx, pkt_len, mss) {
            return -1;
        }
    }
    in_sack as i32
}

/// `tcp_sacktag_one`.
fn sacktag_one(s: &mut Sock, st: &mut SacktagState, idx: usize, dup_sack: bool, now: u64) {
    let (mut sacked, start_seq, end_seq, pcount, xmit_time) = {
        let k = &s.rtx_queue[idx];
        (k.sacked, k.seq, k.end_seq, k.pcount, k.mstamp)
    };
    if dup_sack && sacked & TCPCB_RETRANS != 0 {
        if s.undo_marker != 0 && s.undo_retrans > 0 && after(end_seq, s.undo_marker) {
            s.undo_retrans = (s.undo_retrans - pcount as i32).max(0);
        }
        if sacked & TCPCB_SACKED_ACKED != 0 && before(start_seq, st.reord) {
            st.reord = start_seq;
        }
    }
    if !after(end_seq, s.snd_una) {
        return;
    }
    if sacked & TCPCB_SACKED_ACKED == 0 {
        rack_advance(s, sacked, end_seq, xmit_time, now);
        if sacked & TCPCB_SACKED_RETRANS != 0 {
            if sacked & TCPCB_LOST != 0 {
                sacked &= !(TCPCB_LOST | TCPCB_SACKED_RETRANS);
                s.lost_out -= pcount.min(s.lost_out);
                s.retrans_out -= pcount.min(s.retrans_out);
            }
        } else {
            if sacked & TCPCB_RETRANS == 0 {
                // "New sack for not retransmitted frame, which was in
                // hole. It is reordering."
                if before(start_seq, highest_sack_seq(s)) && before(start_seq, st.reord) {
                    st.reord = start_seq;
                }
                if !after(end_seq, s.high_seq) {
                    st.flag |= FLAG_ORIG_SACK_ACKED;
                }
                if st.first_sackt == 0 {
                    st.first_sackt = xmit_time;
                }
                st.last_sackt = xmit_time;
            }
            if sacked & TCPCB_LOST != 0 {
                sacked &= !TCPCB_LOST;
                s.lost_out -= pcount.min(s.lost_out);
            }
        }
        sacked |= TCPCB_SACKED_ACKED;
        st.flag |= FLAG_DATA_SACKED;
        s.sacked_out += pcount;
        st.sack_delivered += pcount;
    }
    if dup_sack && sacked & TCPCB_SACKED_RETRANS != 0 {
        sacked &= !TCPCB_SACKED_RETRANS;
        s.retrans_out -= pcount.min(s.retrans_out);
    }
    s.rtx_queue[idx].sacked = sacked;
}

/// `tcp_sacktag_walk` for one block.
fn sacktag_walk(
    w: &mut World,
    id: SockId,
    st: &mut SacktagState,
    start: u32,
    end: u32,
    dup_sack: bool,
) {
    let now = w.now;
    let mut idx = {
        let s = w.sk(id);
        s.rtx_queue
            .iter()
            .position(|k| after(k.end_seq, start))
            .unwrap_or(s.rtx_queue.len())
    };
    while idx < w.sk(id).rtx_queue.len() {
        if !before(w.sk(id).rtx_queue[idx].seq, end) {
            break;
        }
        let in_sack = match_skb_to_sack(w, id, idx, start, end);
        if in_sack < 0 {
            break;
        }
        if in_sack > 0 {
            let s = w.sk_mut(id);
            sacktag_one(s, st, idx, dup_sack, now);
            let mut rate = std::mem::take(&mut st.rate);
            tcp_rate_skb_delivered(s, idx, &mut rate);
            st.rate = rate;
            let seq = s.rtx_queue[idx].seq;
            if !before(seq, highest_sack_seq(s)) {
                // tcp_advance_highest_sack: the skb after this one
                s.highest_sack = s.rtx_queue.get(idx + 1).map(|k| k.seq);
            }
        }
        idx += 1;
    }
}

/// `tcp_sacktag_write_queue` (without the recv_sack_cache shortcut, which
/// only saves work).
pub fn sacktag_write_queue(
    w: &mut World,
    id: SockId,
    seg: &InSeg,
    prior_snd_una: u32,
    st: &mut SacktagState,
) -> u32 {
    st.flag = 0;
    st.reord = w.sk(id).snd_nxt;
    if w.sk(id).sacked_out == 0 {
        // tcp_highest_sack_reset
        let s = w.sk_mut(id);
        s.highest_sack = s.rtx_queue.front().map(|k| k.seq);
    }
    let h = w.sk(id).host;
    let found_dup_sack = check_dsack(w, id, seg, prior_snd_una, st);
    let s = w.sk(id);
    if before(seg.ack_seq, prior_snd_una.wrapping_sub(s.max_window)) {
        return 0;
    }
    if s.packets_out == 0 {
        return st.flag;
    }
    let mut sp: Vec<(u32, u32, bool)> = Vec::new();
    for (i, &(a, b)) in seg.sacks.iter().take(4).enumerate() {
        let dup = i == 0 && found_dup_sack;
        let s = w.sk(id);
        if !sackblock_valid(s, dup, a, b) {
            if dup {
                w.count(
                    h,
                    if s.undo_marker == 0 {
                        Counter::TCPDSACKIgnoredNoUndo
                    } else {
                        Counter::TCPDSACKIgnoredOld
                    },
                );
            } else if seg.ack_seq == s.snd_una || after(b, s.snd_una) {
                w.count(h, Counter::TCPSACKDiscard);
            }
            continue;
        }
        if !after(b, prior_snd_una) {
            continue;
        }
        sp.push((a, b, dup));
    }
    sp.sort_by(|x, y| (x.0.wrapping_sub(y.0) as i32).cmp(&0));
    for (a, b, dup) in sp {
        sacktag_walk(w, id, st, a, b, dup);
    }
    let s = w.sk(id);
    if s.ca_state != CaState::Loss || s.undo_marker != 0 {
        let r = st.reord;
        check_sack_reordering(w, id, r, false);
    }
    st.flag
}

/// `tcp_init_undo`.
fn init_undo(s: &mut Sock) {
    s.undo_marker = s.snd_una;
    s.undo_retrans = s.retrans_out as i32;
    if s.tlp_high_seq != 0 && s.tlp_retrans {
        s.undo_retrans += 1;
    }
    if s.undo_retrans == 0 {
        s.undo_retrans = -1;
    }
}

/// `tcp_timeout_mark_lost`.
fn timeout_mark_lost(w: &mut World, id: SockId) {
    let h = w.sk(id).host;
    let now = w.now;
    let s = w.sk(id);
    let is_reneg = s
        .rtx_queue
        .front()
        .is_some_and(|k| k.sacked & TCPCB_SACKED_ACKED != 0);
    if is_reneg {
        w.count(h, Counter::TCPSACKReneging);
        let s = w.sk_mut(id);
        s.sacked_out = 0;
        s.is_sack_reneg = true;
    } else if s.is_reno() {
        w.sk_mut(id).sacked_out = 0;
    }
    let n = w.sk(id).rtx_queue.len();
    for i in 0..n {
        let s = w.sk_mut(id);
        if is_reneg {
            s.rtx_queue[i].sacked &= !TCPCB_SACKED_ACKED;
        } else if i != 0 {
            // "Don't mark recently sent ones lost yet"
            let remaining = s.rack.rtt_us as i64 - now.saturating_sub(s.rtx_queue[i].mstamp) as i64;
            if remaining > 0 {
                continue;
            }
        }
        mark_skb_lost(w, id, i);
    }
    let s = w.sk_mut(id);
    s.retransmit_hint = None;
}

/// `tcp_enter_loss`.
pub fn enter_loss(w: &mut World, id: SockId) {
    let sys_reord = w.sys(id).tcp_reordering;
    let frto = w.sys(id).tcp_frto;
    let new_recovery = w.sk(id).ca_state < CaState::Recovery;
    timeout_mark_lost(w, id);
    let s = w.sk(id);
    if s.ca_state <= CaState::Disorder
        || !after(s.high_seq, s.snd_una)
        || (s.ca_state == CaState::Loss && s.retransmits == 0)
    {
        let s = w.sk_mut(id);
        s.prior_ssthresh = s.current_ssthresh();
        s.prior_cwnd = s.snd_cwnd;
        let ss = super::cubic::recalc_ssthresh(w, id);
        let s = w.sk_mut(id);
        s.snd_ssthresh = ss;
        init_undo(s);
    }
    let j = w.jiffies();
    let s = w.sk_mut(id);
    s.snd_cwnd = s.packets_in_flight() + 1;
    s.snd_cwnd_cnt = 0;
    s.snd_cwnd_stamp = j;
    if s.ca_state <= CaState::Disorder && s.sacked_out >= sys_reord {
        s.reordering = s.reordering.min(sys_reord);
    }
    set_ca_state(w, id, CaState::Loss);
    let s = w.sk_mut(id);
    s.high_seq = s.snd_nxt;
    s.tlp_high_seq = 0;
    // "F-RTO RFC5682 sec 3.1 step 1"
    s.frto = frto != 0 && (new_recovery || s.retransmits > 0);
}

/// `tcp_any_retrans_done`.
fn any_retrans_done(s: &Sock) -> bool {
    if s.retrans_out > 0 {
        return true;
    }
    s.rtx_queue
        .front()
        .is_some_and(|k| k.sacked & TCPCB_EVER_RETRANS != 0)
}

/// `tcp_packet_delayed`.
fn packet_delayed(s: &Sock) -> bool {
    if s.retrans_stamp != 0 {
        return tsopt_ecr_before(s, s.retrans_stamp);
    }
    if !s.is_sack() && !before(s.snd_una, s.high_seq) {
        return false;
    }
    if s.state == State::SynSent {
        return false;
    }
    true
}

/// `tcp_may_undo`.
fn may_undo(s: &Sock) -> bool {
    s.undo_marker != 0 && (s.undo_retrans == 0 || packet_delayed(s))
}

/// `tcp_undo_cwnd_reduction`.
fn undo_cwnd_reduction(w: &mut World, id: SockId, unmark_loss: bool) {
    let j = w.jiffies();
    let s = w.sk_mut(id);
    if unmark_loss {
        for k in s.rtx_queue.iter_mut() {
            k.sacked &= !TCPCB_LOST;
        }
        s.lost_out = 0;
        s.retransmit_hint = None;
    }
    if s.prior_ssthresh != 0 {
        // tcp_reno_undo_cwnd
        s.snd_cwnd = s.snd_cwnd.max(s.prior_cwnd);
        if s.prior_ssthresh > s.snd_ssthresh {
            s.snd_ssthresh = s.prior_ssthresh;
        }
    }
    s.snd_cwnd_stamp = j;
    s.undo_marker = 0;
    s.rack.advanced = true;
}

/// `tcp_is_non_sack_preventing_reopen`.
fn non_sack_preventing_reopen(s: &mut Sock) -> bool {
    if s.snd_una == s.high_seq && s.is_reno() {
        if !any_retrans_done(s) {
            s.retrans_stamp = 0;
        }
        return true;
    }
    false
}

/// `tcp_try_undo_recovery`.
fn try_undo_recovery(w: &mut World, id: SockId) -> bool {
    let h = w.sk(id).host;
    if may_undo(w.sk(id)) {
        undo_cwnd_reduction(w, id, false);
        let mib = if w.sk(id).ca_state == CaState::Loss {
            Counter::TCPLossUndo
        } else {
            Counter::TCPFullUndo
        };
        w.count(h, mib);
    } else if w.sk(id).rack.reo_wnd_persist > 0 {
        w.sk_mut(id).rack.reo_wnd_persist -= 1;
    }
    if non_sack_preventing_reopen(w.sk_mut(id)) {
        return true;
    }
    set_ca_state(w, id, CaState::Open);
    w.sk_mut(id).is_sack_reneg = false;
    false
}

/// `tcp_try_undo_dsack`.
fn try_undo_dsack(w: &mut World, id: SockId) -> bool {
    let s = w.sk(id);
    if s.undo_marker != 0 && s.undo_retrans == 0 {
        let h = s.host;
        let s = w.sk_mut(id);
        s.rack.reo_wnd_persist = (s.rack.reo_wnd_persist + 1).min(TCP_RACK_RECOVERY_THRESH);
        undo_cwnd_reduction(w, id, false);
        w.count(h, Counter::TCPDSACKUndo);
        return true;
    }
    false
}

/// `tcp_try_undo_loss`.
fn try_undo_loss(w: &mut World, id: SockId, frto_undo: bool) -> bool {
    if frto_undo || may_undo(w.sk(id)) {
        let h = w.sk(id).host;
        undo_cwnd_reduction(w, id, true);
        w.count(h, Counter::TCPLossUndo);
        if frto_undo {
            w.count(h, Counter::TCPSpuriousRTOs);
        }
        w.sk_mut(id).retransmits = 0;
        if non_sack_preventing_reopen(w.sk_mut(id)) {
            return true;
        }
        if frto_undo || w.sk(id).is_sack() {
            set_ca_state(w, id, CaState::Open);
            w.sk_mut(id).is_sack_reneg = false;
        }
        return true;
    }
    false
}

/// `tcp_init_cwnd_reduction`.
pub fn init_cwnd_reduction(w: &mut World, id: SockId) {
    let s = w.sk_mut(id);
    s.high_seq = s.snd_nxt;
    s.tlp_high_seq = 0;
    s.snd_cwnd_cnt = 0;
    s.prior_cwnd = s.snd_cwnd;
    s.prr_delivered = 0;
    s.prr_out = 0;
    let ss = super::cubic::recalc_ssthresh(w, id);
    w.sk_mut(id).snd_ssthresh = ss;
}

/// `tcp_cwnd_reduction` (PRR, RFC 6937).
pub fn cwnd_reduction(
    w: &mut World,
    id: SockId,
    newly_acked_sacked: i32,
    newly_lost: i32,
    flag: u32,
) {
    let s = w.sk_mut(id);
    if newly_acked_sacked <= 0 || s.prior_cwnd == 0 {
        return;
    }
    let delta = s.snd_ssthresh as i64 - s.packets_in_flight() as i64;
    s.prr_delivered += newly_acked_sacked as u32;
    let mut sndcnt: i64;
    if delta < 0 {
        let dividend = s.snd_ssthresh as u64 * s.prr_delivered as u64 + s.prior_cwnd as u64 - 1;
        sndcnt = (dividend / s.prior_cwnd as u64) as i64 - s.prr_out as i64;
    } else {
        sndcnt = (s.prr_delivered as i64 - s.prr_out as i64).max(newly_acked_sacked as i64);
        if flag & FLAG_SND_UNA_ADVANCED != 0 && newly_lost == 0 {
            sndcnt += 1;
        }
        sndcnt = sndcnt.min(delta);
    }
    sndcnt = sndcnt.max(if s.prr_out > 0 { 0 } else { 1 });
    s.snd_cwnd = (s.packets_in_flight() as i64 + sndcnt).max(1) as u32;
}

/// `tcp_end_cwnd_reduction`.
pub fn end_cwnd_reduction(w: &mut World, id: SockId) {
    let j = w.jiffies();
    let s = w.sk_mut(id);
    if s.snd_ssthresh < TCP_INFINITE_SSTHRESH && (s.ca_state == CaState::Cwr || s.undo_marker != 0)
    {
        s.snd_cwnd = s.snd_ssthresh;
        s.snd_cwnd_stamp = j;
    }
}

/// `tcp_try_keep_open`.
pub fn try_keep_open(w: &mut World, id: SockId) {
    let s = w.sk(id);
    let st = if s.left_out() > 0 || any_retrans_done(s) {
        CaState::Disorder
    } else {
        CaState::Open
    };
    if s.ca_state != st {
        set_ca_state(w, id, st);
        let s = w.sk_mut(id);
        s.high_seq = s.snd_nxt;
    }
}

/// `tcp_try_to_open`.
fn try_to_open(w: &mut World, id: SockId, _flag: u32) {
    let s = w.sk_mut(id);
    if !any_retrans_done(s) {
        s.retrans_stamp = 0;
    }
    if s.ca_state != CaState::Cwr {
        try_keep_open(w, id);
    }
}

/// `tcp_enter_recovery`.
pub fn enter_recovery(w: &mut World, id: SockId, ece_ack: bool) {
    let h = w.sk(id).host;
    let s = w.sk_mut(id);
    if !any_retrans_done(s) {
        s.retrans_stamp = 0;
    }
    let mib = if s.is_reno() {
        Counter::TCPRenoRecovery
    } else {
        Counter::TCPSackRecovery
    };
    s.prior_ssthresh = 0;
    init_undo(s);
    if !s.in_cwnd_reduction() {
        if !ece_ack {
            s.prior_ssthresh = s.current_ssthresh();
        }
        init_cwnd_reduction(w, id);
    }
    w.count(h, mib);
    set_ca_state(w, id, CaState::Recovery);
}

/// `tcp_process_loss`.
fn process_loss(w: &mut World, id: SockId, flag: u32, num_dupack: u32, rexmit: &mut u8) {
    let recovered = !before(w.sk(id).snd_una, w.sk(id).high_seq);
    if flag & FLAG_SND_UNA_ADVANCED != 0 && try_undo_loss(w, id, false) {
        return;
    }
    if w.sk(id).frto {
        // "Step 3.b. A timeout is spurious if not all data are lost"
        if flag & FLAG_ORIG_SACK_ACKED != 0 && try_undo_loss(w, id, true) {
            return;
        }
        let s = w.sk_mut(id);
        if after(s.snd_nxt, s.high_seq) {
            if flag & FLAG_DATA_SACKED != 0 || num_dupack > 0 {
                s.frto = false;
            }
        } else if flag & FLAG_SND_UNA_ADVANCED != 0 && !recovered {
            s.high_seq = s.snd_nxt;
            if !s.write_queue_empty() && after(s.wnd_end(), s.snd_nxt) {
                *rexmit = REXMIT_NEW;
                return;
            }
            s.frto = false;
        }
    }
    if recovered {
        try_undo_recovery(w, id);
        return;
    }
    if w.sk(id).is_reno() {
        let s = w.sk(id);
        if after(s.snd_nxt, s.high_seq) && num_dupack > 0 {
            add_reno_sack(w, id, num_dupack as i32);
        } else if flag & FLAG_SND_UNA_ADVANCED != 0 {
            w.sk_mut(id).sacked_out = 0;
        }
    }
    *rexmit = REXMIT_LOST;
}

/// `tcp_try_undo_partial`.
fn try_undo_partial(w: &mut World, id: SockId, prior_snd_una: u32) -> bool {
    let s = w.sk(id);
    if s.undo_marker != 0 && packet_delayed(s) {
        check_sack_reordering(w, id, prior_snd_una, true);
        if w.sk(id).retrans_out > 0 {
            return true;
        }
        let s = w.sk_mut(id);
        if !any_retrans_done(s) {
            s.retrans_stamp = 0;
        }
        let h = s.host;
        undo_cwnd_reduction(w, id, true);
        w.count(h, Counter::TCPPartialUndo);
        try_keep_open(w, id);
    }
    false
}

/// `tcp_newreno_mark_lost`.
fn newreno_mark_lost(w: &mut World, id: SockId, snd_una_advanced: bool) {
    let s = w.sk(id);
    let st = s.ca_state;
    if (st < CaState::Recovery && s.sacked_out >= s.reordering)
        || (st == CaState::Recovery && snd_una_advanced)
    {
        let Some(head) = s.rtx_queue.front() else {
            return;
        };
        if head.sacked & TCPCB_LOST != 0 {
            return;
        }
        let mss = head.gso_size.max(1);
        if head.pcount > 1 && head.len() > mss {
            output::tcp_fragment(w, id, true, 0, mss, mss);
        }
        mark_skb_lost(w, id, 0);
    }
}

/// `tcp_identify_packet_loss`.
fn identify_packet_loss(w: &mut World, id: SockId, ack_flag: &mut u32) {
    if w.sk(id).rtx_queue.is_empty() {
        return;
    }
    if w.sk(id).is_reno() {
        newreno_mark_lost(w, id, *ack_flag & FLAG_SND_UNA_ADVANCED != 0);
    } else {
        let prior_retrans = w.sk(id).retrans_out;
        if rack_mark_lost(w, id) {
            *ack_flag &= !FLAG_SET_XMIT_TIMER;
        }
        if prior_retrans > w.sk(id).retrans_out {
            *ack_flag |= FLAG_LOST_RETRANS;
        }
    }
}

/// `tcp_limit_reno_sacked`.
fn limit_reno_sacked(s: &mut Sock) -> bool {
    let holes = s.lost_out.max(1).min(s.packets_out);
    if s.sacked_out + holes > s.packets_out {
        s.sacked_out = s.packets_out - holes;
        return true;
    }
    false
}

/// `tcp_check_reno_reordering`.
fn check_reno_reordering(w: &mut World, id: SockId, addend: i32) {
    let max = w.sys(id).tcp_max_reordering;
    let h = w.sk(id).host;
    let s = w.sk_mut(id);
    if !limit_reno_sacked(s) {
        return;
    }
    s.reordering = ((s.packets_out as i64 + addend as i64).max(0) as u32).min(max);
    s.reord_seen += 1;
    w.count(h, Counter::TCPRenoReorder);
}

/// `tcp_add_reno_sack`.
fn add_reno_sack(w: &mut World, id: SockId, num_dupack: i32) {
    if num_dupack > 0 {
        let prior = w.sk(id).sacked_out;
        w.sk_mut(id).sacked_out += num_dupack as u32;
        check_reno_reordering(w, id, 0);
        let s = w.sk_mut(id);
        let delivered = s.sacked_out as i64 - prior as i64;
        if delivered > 0 {
            s.delivered += delivered as u32;
        }
    }
}

/// `tcp_remove_reno_sacks`.
pub fn remove_reno_sacks(w: &mut World, id: SockId, acked: i32, _ece: bool) {
    let s = w.sk_mut(id);
    if acked > 0 {
        s.delivered += (acked - s.sacked_out as i32).max(1) as u32;
        if acked > s.sacked_out as i32 {
            s.sacked_out = 0;
        } else {
            s.sacked_out -= (acked - 1) as u32;
        }
    }
    check_reno_reordering(w, id, acked);
}

/// `tcp_check_sack_reneging`.
fn check_sack_reneging(w: &mut World, id: SockId, ack_flag: &mut u32) -> bool {
    if *ack_flag & FLAG_SACK_RENEGING != 0 && *ack_flag & FLAG_SND_UNA_ADVANCED != 0 {
        let s = w.sk(id);
        let delay = usecs_to_jiffies((s.srtt_us >> 4) as u64).max(msecs_to_jiffies(10));
        timers::reset_xmit_timer(w, id, XmitTimer::Retrans, delay);
        *ack_flag &= !FLAG_SET_XMIT_TIMER;
        return true;
    }
    false
}

/// `tcp_fastretrans_alert`.
pub fn fastretrans_alert(
    w: &mut World,
    id: SockId,
    prior_snd_una: u32,
    num_dupack: u32,
    ack_flag: &mut u32,
    rexmit: &mut u8,
) {
    let flag = *ack_flag;
    let ece_ack = flag & FLAG_ECE != 0;
    {
        let s = w.sk_mut(id);
        if s.packets_out == 0 && s.sacked_out > 0 {
            s.sacked_out = 0;
        }
        if ece_ack {
            s.prior_ssthresh = 0;
        }
    }
    if check_sack_reneging(w, id, ack_flag) {
        return;
    }
    let s = w.sk(id);
    if s.ca_state == CaState::Open {
        w.sk_mut(id).retrans_stamp = 0;
    } else if !before(s.snd_una, s.high_seq) {
        match s.ca_state {
            CaState::Cwr => {
                if s.snd_una != s.high_seq {
                    end_cwnd_reduction(w, id);
                    set_ca_state(w, id, CaState::Open);
                }
            }
            CaState::Recovery => {
                if w.sk(id).is_reno() {
                    w.sk_mut(id).sacked_out = 0;
                }
                if try_undo_recovery(w, id) {
                    return;
                }
                end_cwnd_reduction(w, id);
            }
            _ => {}
        }
    }
    match w.sk(id).ca_state {
        CaState::Recovery => {
            if flag & FLAG_SND_UNA_ADVANCED == 0 {
                if w.sk(id).is_reno() {
                    add_reno_sack(w, id, num_dupack as i32);
                }
            } else if try_undo_partial(w, id, prior_snd_una) {
                return;
            }
            if try_undo_dsack(w, id) {
                try_to_open(w, id, flag);
            }
            identify_packet_loss(w, id, ack_flag);
            if w.sk(id).ca_state != CaState::Recovery {
                if w.sk(id).lost_out == 0 {
                    return;
                }
                enter_recovery(w, id, ece_ack);
            }
        }
        CaState::Loss => {
            process_loss(w, id, flag, num_dupack, rexmit);
            identify_packet_loss(w, id, ack_flag);
            if !(w.sk(id).ca_state == CaState::Open || *ack_flag & FLAG_LOST_RETRANS != 0) {
                return;
            }
            default_case(w, id, flag, num_dupack, ece_ack, ack_flag);
            if w.sk(id).ca_state != CaState::Recovery && w.sk(id).lost_out == 0 {
                return;
            }
        }
        _ => {
            default_case(w, id, flag, num_dupack, ece_ack, ack_flag);
            if w.sk(id).ca_state != CaState::Recovery && w.sk(id).lost_out == 0 {
                return;
            }
        }
    }
    *rexmit = REXMIT_LOST;
}

/// The `default:` arm of `tcp_fastretrans_alert`.
fn default_case(
    w: &mut World,
    id: SockId,
    flag: u32,
    num_dupack: u32,
    ece_ack: bool,
    ack_flag: &mut u32,
) {
    if w.sk(id).is_reno() {
        if flag & FLAG_SND_UNA_ADVANCED != 0 {
            w.sk_mut(id).sacked_out = 0;
        }
        add_reno_sack(w, id, num_dupack as i32);
    }
    if w.sk(id).ca_state <= CaState::Disorder {
        try_undo_dsack(w, id);
    }
    identify_packet_loss(w, id, ack_flag);
    if w.sk(id).lost_out == 0 {
        try_to_open(w, id, flag);
        return;
    }
    enter_recovery(w, id, ece_ack);
}
