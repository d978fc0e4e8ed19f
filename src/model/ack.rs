//! Processing the ACK field (net/ipv4/tcp_input.c): `tcp_ack`,
//! `tcp_clean_rtx_queue`, the send window, RTT estimation and the RTO,
//! zero-window probe answers, TLP episodes, and waking writers
//! (`tcp_check_space`). Rate sampling (net/ipv4/tcp_rate.c) is kept to the
//! fields RACK and PRR read.

use super::World;
use super::input::{InSeg, may_update_window, rtt_tsopt_us};
use super::mem::tcp_wmem_free_skb;
use super::output;
use super::recovery;
use super::skb::*;
use super::sock::*;
use super::timers;
use crate::vocab::{Counter, RstReason};

pub const FLAG_DATA: u32 = 0x01;
pub const FLAG_WIN_UPDATE: u32 = 0x02;
pub const FLAG_DATA_ACKED: u32 = 0x04;
pub const FLAG_RETRANS_DATA_ACKED: u32 = 0x08;
pub const FLAG_SYN_ACKED: u32 = 0x10;
pub const FLAG_DATA_SACKED: u32 = 0x20;
pub const FLAG_ECE: u32 = 0x40;
pub const FLAG_LOST_RETRANS: u32 = 0x80;
pub const FLAG_SLOWPATH: u32 = 0x100;
pub const FLAG_ORIG_SACK_ACKED: u32 = 0x200;
pub const FLAG_SND_UNA_ADVANCED: u32 = 0x400;
pub const FLAG_DSACKING_ACK: u32 = 0x800;
pub const FLAG_SET_XMIT_TIMER: u32 = 0x1000;
pub const FLAG_SACK_RENEGING: u32 = 0x2000;
pub const FLAG_UPDATE_TS_RECENT: u32 = 0x4000;
pub const FLAG_NO_CHALLENGE_ACK: u32 = 0x8000;
pub const FLAG_ACK_MAYBE_DELAYED: u32 = 0x10000;
pub const FLAG_DSACK_TLP: u32 = 0x20000;
pub const FLAG_TS_PROGRESS: u32 = 0x40000;
pub const FLAG_ACKED: u32 = FLAG_DATA_ACKED | FLAG_SYN_ACKED;
pub const FLAG_NOT_DUP: u32 = FLAG_DATA | FLAG_WIN_UPDATE | FLAG_ACKED;
pub const FLAG_CA_ALERT: u32 = FLAG_DATA_SACKED | FLAG_ECE | FLAG_DSACKING_ACK;
pub const FLAG_FORWARD_PROGRESS: u32 = FLAG_ACKED | FLAG_DATA_SACKED;

/// Negative results of `tcp_ack` (`-SKB_DROP_REASON_*`).
pub const ACK_TOO_OLD: i32 = -1;
pub const ACK_UNSENT_DATA: i32 = -2;

/// The reset reason for a negative `tcp_ack` result
/// (`sk_rst_convert_drop_reason`).
pub fn reason_name(r: i32) -> RstReason {
    match r {
        ACK_TOO_OLD => RstReason::TcpTooOldAck,
        ACK_UNSENT_DATA => RstReason::TcpAckUnsentData,
        _ => RstReason::NotSpecified,
    }
}

/// `struct rate_sample`, the fields used here.
#[derive(Clone, Debug, Default)]
pub struct RateSample {
    pub prior_delivered: u32,
    pub prior_mstamp: u64,
    pub last_end_seq: u32,
    pub rtt_us: i64,
    pub losses: u32,
    pub is_retrans: bool,
}

/// `tcp_rate_skb_sent`.
pub fn tcp_rate_skb_sent(w: &mut World, id: SockId, rtx: bool, idx: usize) {
    let now = w.now;
    let s = w.sk_mut(id);
    if s.packets_out == 0 {
        s.first_tx_mstamp = now;
        s.delivered_mstamp = now;
    }
    let (d, del) = (s.delivered_mstamp, s.delivered);
    let skb = if rtx {
        &mut s.rtx_queue[idx]
    } else {
        &mut s.write_queue[idx]
    };
    skb.tx = TxRate {
        delivered_mstamp: d,
        delivered: del,
    };
}

/// `tcp_rate_skb_delivered`.
pub fn tcp_rate_skb_delivered(s: &mut Sock, idx: usize, rs: &mut RateSample) {
    let skb = &s.rtx_queue[idx];
    if skb.tx.delivered_mstamp == 0 {
        return;
    }
    let tx_tstamp = skb.mstamp;
    let sent_after = tx_tstamp > s.first_tx_mstamp
        || (tx_tstamp == s.first_tx_mstamp && after(skb.end_seq, rs.last_end_seq));
    if rs.prior_delivered == 0 || sent_after {
        rs.prior_delivered = skb.tx.delivered;
        rs.prior_mstamp = skb.tx.delivered_mstamp;
        rs.is_retrans = skb.sacked & TCPCB_RETRANS != 0;
        rs.last_end_seq = skb.end_seq;
        s.first_tx_mstamp = tx_tstamp;
    }
    if s.rtx_queue[idx].sacked & TCPCB_SACKED_ACKED != 0 {
        s.rtx_queue[idx].tx.delivered_mstamp = 0;
    }
}

/// `tcp_min_rtt`.
pub fn min_rtt(s: &Sock) -> u32 {
    s.rtt_min.s[0].1
}

/// `minmax_running_min` (lib/win_minmax.c).
fn minmax_running_min(m: &mut MinMax, win: u32, t: u32, meas: u32) -> u32 {
    let val = (t, meas);
    if meas <= m.s[0].1 || t.wrapping_sub(m.s[2].0) > win {
        m.s = [val; 3];
        return meas;
    }
    if meas <= m.s[1].1 {
        m.s[2] = val;
        m.s[1] = val;
    } else if meas <= m.s[2].1 {
        m.s[2] = val;
    }
    // minmax_subwin_update
    let dt = t.wrapping_sub(m.s[0].0);
    if dt > win {
        m.s[0] = m.s[1];
        m.s[1] = m.s[2];
        m.s[2] = val;
        if t.wrapping_sub(m.s[0].0) > win {
            m.s[0] = m.s[1];
            m.s[1] = m.s[2];
            m.s[2] = val;
        }
    } else if m.s[1].0 == m.s[0].0 && dt > win / 4 {
        m.s[2] = val;
        m.s[1] = val;
    } else if m.s[2].0 == m.s[1].0 && dt > win / 2 {
        m.s[2] = val;
    }
    m.s[0].1
}

/// `tcp_update_rtt_min`.
fn update_rtt_min(w: &mut World, id: SockId, rtt_us: u32, flag: u32) {
    let win = w.sys(id).tcp_min_rtt_wlen * HZ as u32;
    let j = w.jiffies() as u32;
    let s = w.sk_mut(id);
    if flag & FLAG_ACK_MAYBE_DELAYED != 0 && rtt_us > min_rtt(s) {
        return;
    }
    let meas = if rtt_us > 0 { rtt_us } else { JIFFY_US as u32 };
    minmax_running_min(&mut s.rtt_min, win, j, meas);
}

/// `tcp_rtt_estimator`.
fn rtt_estimator(s: &mut Sock, mrtt_us: i64) {
    let mut m = mrtt_us;
    let mut srtt = s.srtt_us as i64;
    let rto_min_us = jiffies_to_usecs(s.rto_min) as u32;
    if srtt != 0 {
        m -= srtt >> 3;
        srtt += m;
        if m < 0 {
            m = -m;
            m -= (s.mdev_us >> 2) as i64;
            if m > 0 {
                m >>= 3;
            }
        } else {
            m -= (s.mdev_us >> 2) as i64;
        }
        s.mdev_us = (s.mdev_us as i64 + m) as u32;
        if s.mdev_us > s.mdev_max_us {
            s.mdev_max_us = s.mdev_us;
            if s.mdev_max_us > s.rttvar_us {
                s.rttvar_us = s.mdev_max_us;
            }
        }
        if after(s.snd_una, s.rtt_seq) {
            if s.mdev_max_us < s.rttvar_us {
                s.rttvar_us -= (s.rttvar_us - s.mdev_max_us) >> 2;
            }
            s.rtt_seq = s.snd_nxt;
            s.mdev_max_us = rto_min_us;
        }
    } else {
        // "no previous measure."
        srtt = m << 3;
        s.mdev_us = (m << 1) as u32;
        s.rttvar_us = s.mdev_us.max(rto_min_us);
        s.mdev_max_us = s.rttvar_us;
        s.rtt_seq = s.snd_nxt;
    }
    s.srtt_us = (srtt.max(1)) as u32;
}

/// `tcp_set_rto` (`__tcp_set_rto` + `tcp_bound_rto`).
pub fn set_rto(s: &mut Sock) {
    let rto = usecs_to_jiffies(((s.srtt_us >> 3) + s.rttvar_us) as u64);
    s.rto = rto.min(s.rto_max);
}

/// `tcp_ack_update_rtt`.
pub fn ack_update_rtt(
    w: &mut World,
    id: SockId,
    flag: u32,
    mut seq_rtt_us: i64,
    sack_rtt_us: i64,
    mut ca_rtt_us: i64,
    rs: &mut RateSample,
) -> bool {
    if seq_rtt_us < 0 {
        seq_rtt_us = sack_rtt_us;
    }
    let s = w.sk(id);
    if seq_rtt_us < 0 && s.saw_tstamp && s.rcv_tsecr != 0 && flag & FLAG_ACKED != 0 {
        seq_rtt_us = rtt_tsopt_us(w, s, 1);
        ca_rtt_us = seq_rtt_us;
    }
    rs.rtt_us = ca_rtt_us;
    if seq_rtt_us < 0 {
        return false;
    }
    update_rtt_min(w, id, ca_rtt_us as u32, flag);
    let s = w.sk_mut(id);
    rtt_estimator(s, seq_rtt_us);
    set_rto(s);
    // "RFC6298: only reset backoff on valid RTT measurement."
    s.backoff = 0;
    true
}

/// `tcp_synack_rtt_meas`: the handshake's RTT for a passive child.
pub fn synack_rtt_meas(w: &mut World, id: SockId, snt_synack: Option<u64>) {
    let rtt = snt_synack.map_or(-1, |t| w.now.saturating_sub(t) as i64);
    let mut rs = RateSample::default();
    ack_update_rtt(w, id, FLAG_SYN_ACKED, rtt, -1, rtt, &mut rs);
}

/// `tcp_ack_update_window`.
fn ack_update_window(w: &mut World, id: SockId, seg: &InSeg, ack: u32, ack_seq: u32) -> u32 {
    let s = w.sk_mut(id);
    let mut flag = 0;
    let mut nwin = seg.seg.win as u32;
    if !seg.syn() {
        nwin <<= s.snd_wscale;
    }
    if may_update_window(s, ack, ack_seq, nwin) {
        flag |= FLAG_WIN_UPDATE;
        s.snd_wl1 = ack_seq;
        if s.snd_wnd != nwin {
            s.snd_wnd = nwin;
            s.pred_flags = 0;
            super::input::fast_path_check(s);
            if !s.write_queue.is_empty() {
                output::slow_start_after_idle_check(w, id);
            }
            let s = w.sk_mut(id);
            if nwin > s.max_window {
                s.max_window = nwin;
                let pmtu = s.pmtu_cookie;
                output::sync_mss(s, pmtu);
            }
        }
    }
    snd_una_update(w.sk_mut(id), ack);
    flag
}

/// `tcp_snd_una_update`.
fn snd_una_update(s: &mut Sock, ack: u32) {
    let delta = ack.wrapping_sub(s.snd_una);
    s.bytes_acked += delta as u64;
    s.snd_una = ack;
}

/// `tcp_replace_ts_recent`.
fn replace_ts_recent(w: &mut World, id: SockId, seq: u32) -> u32 {
    let now_s = super::input::seconds(w);
    let s = w.sk_mut(id);
    if s.saw_tstamp && !after(seq, s.rcv_wup) {
        // "PAWS bug workaround wrt. ACK frames"
        if super::input::paws_check(s.ts_recent, s.rcv_tsval, s.ts_recent_stamp, now_s, 0) {
            let delta = s.rcv_tsval.wrapping_sub(s.ts_recent) as i32;
            s.ts_recent = s.rcv_tsval;
            s.ts_recent_stamp = now_s;
            return if delta > 0 { FLAG_TS_PROGRESS } else { 0 };
        }
    }
    0
}

/// `tcp_ack_probe`: a zero window opened, or not yet.
fn ack_probe(w: &mut World, id: SockId) {
    let s = w.sk(id);
    let Some(head) = s.write_queue.front() else {
        return;
    };
    if !after(head.end_seq, s.wnd_end()) {
        let s = w.sk_mut(id);
        s.backoff = 0;
        s.probes_tstamp = 0;
        // inet_csk_clear_xmit_timer(sk, ICSK_TIME_PROBE0)
        if s.pending == Some(XmitTimer::Probe0) {
            s.pending = None;
        }
    } else {
        let when = s.probe0_when(s.rto_max);
        let when = timers::clamp_probe0_to_user_timeout(w, id, when);
        timers::reset_xmit_timer(w, id, XmitTimer::Probe0, when);
    }
}

/// `tcp_process_tlp_ack`.
fn process_tlp_ack(w: &mut World, id: SockId, ack: u32, flag: u32) {
    let h = w.sk(id).host;
    let s = w.sk_mut(id);
    if before(ack, s.tlp_high_seq) {
        return;
    }
    if !s.tlp_retrans || flag & FLAG_DSACK_TLP != 0 {
        s.tlp_high_seq = 0;
    } else if after(ack, s.tlp_high_seq) {
        // "ACK advances: there was a loss, so reduce cwnd."
        recovery::init_cwnd_reduction(w, id);
        recovery::set_ca_state(w, id, CaState::Cwr);
        recovery::end_cwnd_reduction(w, id);
        recovery::try_keep_open(w, id);
        w.count(h, Counter::TCPLossProbeRecovery);
    } else if flag & (FLAG_SND_UNA_ADVANCED | FLAG_NOT_DUP | FLAG_DATA_SACKED) == 0 {
        // "Pure dupack: original and TLP probe arrived; no loss"
        s.tlp_high_seq = 0;
    }
}

/// `tcp_ack_is_dubious`.
fn ack_is_dubious(s: &Sock, flag: u32) -> bool {
    flag & FLAG_NOT_DUP == 0 || flag & FLAG_CA_ALERT != 0 || s.ca_state != CaState::Open
}

/// `tcp_may_raise_cwnd`.
fn may_raise_cwnd(w: &World, id: SockId, flag: u32) -> bool {
    if w.sk(id).reordering > w.sys(id).tcp_reordering {
        return flag & FLAG_FORWARD_PROGRESS != 0;
    }
    flag & FLAG_DATA_ACKED != 0
}

/// `tcp_cong_control` (CUBIC has no `cong_control`).
fn cong_control(
    w: &mut World,
    id: SockId,
    ack: u32,
    acked_sacked: u32,
    flag: u32,
    rs: &RateSample,
) {
    if w.sk(id).in_cwnd_reduction() {
        recovery::cwnd_reduction(w, id, acked_sacked as i32, rs.losses as i32, flag);
    } else if may_raise_cwnd(w, id, flag) {
        super::cubic::cong_avoid(w, id, ack, acked_sacked);
        let j = w.jiffies();
        w.sk_mut(id).snd_cwnd_stamp = j;
    }
}

/// `tcp_xmit_recovery`.
fn xmit_recovery(w: &mut World, id: SockId, rexmit: u8) {
    if rexmit == recovery::REXMIT_NONE || w.sk(id).state == State::SynSent {
        return;
    }
    if rexmit == recovery::REXMIT_NEW {
        let mss = output::current_mss(w.sk_mut(id));
        output::push_pending_frames_mss(w, id, mss, TCP_NAGLE_OFF);
        let s = w.sk(id);
        if after(s.snd_nxt, s.high_seq) {
            return;
        }
        w.sk_mut(id).frto = false;
    }
    output::xmit_retransmit_queue(w, id);
}

/// `tcp_tso_acked`: the part of a GSO skb the ACK covers.
fn tso_acked(s: &mut Sock, idx: usize) -> u32 {
    let packets_acked = s.rtx_queue[idx].pcount;
    let trim = s.snd_una.wrapping_sub(s.rtx_queue[idx].seq);
    output::tcp_trim_head(s, idx, trim);
    packets_acked - s.rtx_queue[idx].pcount
}

/// `tcp_clean_rtx_queue`.
fn clean_rtx_queue(
    w: &mut World,
    id: SockId,
    prior_fack: u32,
    prior_snd_una: u32,
    sack: &mut recovery::SacktagState,
    ece_ack: bool,
) -> u32 {
    let now = w.now;
    let s = w.sk_mut(id);
    let prior_sacked = s.sacked_out;
    let mut reord = s.snd_nxt;
    let mut fully_acked = true;
    let mut first_ackt: u64 = 0;
    let mut last_ackt: u64 = 0;
    let mut pkts_acked = 0u32;
    let mut flag = 0u32;
    let mut stopped = false;
    while !s.rtx_queue.is_empty() {
        let (start_seq, end_seq, sacked, pcount) = {
            let k = &s.rtx_queue[0];
            (k.seq, k.end_seq, k.sacked, k.pcount)
        };
        let acked_pcount;
        if after(end_seq, s.snd_una) {
            if pcount == 1 || !after(s.snd_una, start_seq) {
                stopped = true;
                break;
            }
            acked_pcount = tso_acked(s, 0);
            if acked_pcount == 0 {
                stopped = true;
                break;
            }
            fully_acked = false;
        } else {
            acked_pcount = pcount;
        }
        let mstamp = s.rtx_queue[0].mstamp;
        if sacked & TCPCB_RETRANS != 0 {
            if sacked & TCPCB_SACKED_RETRANS != 0 {
                s.retrans_out -= acked_pcount.min(s.retrans_out);
            }
            flag |= FLAG_RETRANS_DATA_ACKED;
        } else if sacked & TCPCB_SACKED_ACKED == 0 {
            last_ackt = mstamp;
            if first_ackt == 0 {
                first_ackt = last_ackt;
            }
            if before(start_seq, reord) {
                reord = start_seq;
            }
            if !after(end_seq, s.high_seq) {
                flag |= FLAG_ORIG_SACK_ACKED;
            }
        }
        if sacked & TCPCB_SACKED_ACKED != 0 {
            s.sacked_out -= acked_pcount.min(s.sacked_out);
        } else if s.is_sack() {
            s.delivered += acked_pcount;
            if !recovery::skb_spurious_retrans(s, sacked, mstamp) {
                recovery::rack_advance(s, sacked, end_seq, mstamp, now);
            }
        }
        if sacked & TCPCB_LOST != 0 {
            s.lost_out -= acked_pcount.min(s.lost_out);
        }
        s.packets_out -= acked_pcount.min(s.packets_out);
        pkts_acked += acked_pcount;
        tcp_rate_skb_delivered(s, 0, &mut sack.rate);
        if s.rtx_queue[0].syn() {
            flag |= FLAG_SYN_ACKED;
            s.retrans_stamp = 0;
        } else {
            flag |= FLAG_DATA_ACKED;
        }
        if !fully_acked {
            stopped = true;
            break;
        }
        let skb = s.rtx_queue.pop_front().expect("non-empty");
        if s.retransmit_hint == Some(skb.seq) {
            s.retransmit_hint = None;
        }
        if s.highest_sack == Some(skb.seq) {
            s.highest_sack = s.rtx_queue.front().map(|k| k.seq);
        }
        tcp_wmem_free_skb(s, skb.truesize);
    }
    let _ = stopped;
    // "if (likely(between(tp->snd_up, prior_snd_una, tp->snd_una)))"
    if between(s.snd_up, prior_snd_una, s.snd_una) {
        s.snd_up = s.snd_una;
    }
    if let Some(head) = s.rtx_queue.front() {
        if head.sacked & TCPCB_SACKED_ACKED != 0 {
            flag |= FLAG_SACK_RENEGING;
        }
    }
    let mut seq_rtt_us = -1i64;
    let mut ca_rtt_us = -1i64;
    let mut sack_rtt_us = -1i64;
    if first_ackt != 0 && flag & FLAG_RETRANS_DATA_ACKED == 0 {
        seq_rtt_us = now.saturating_sub(first_ackt) as i64;
        ca_rtt_us = now.saturating_sub(last_ackt) as i64;
        if pkts_acked == 1
            && fully_acked
            && prior_sacked == 0
            && s.snd_una.wrapping_sub(prior_snd_una) < s.mss_cache
            && sack.rate.prior_delivered + 1 == s.delivered
            && flag & (FLAG_CA_ALERT | FLAG_SYN_ACKED) == 0
        {
            // "Conservatively mark a delayed ACK."
            flag |= FLAG_ACK_MAYBE_DELAYED;
        }
    }
    if sack.first_sackt != 0 {
        sack_rtt_us = now.saturating_sub(sack.first_sackt) as i64;
        ca_rtt_us = now.saturating_sub(sack.last_sackt) as i64;
    }
    let mut rs = std::mem::take(&mut sack.rate);
    let rtt_update = ack_update_rtt(w, id, flag, seq_rtt_us, sack_rtt_us, ca_rtt_us, &mut rs);
    sack.rate = rs;
    let s = w.sk(id);
    if flag & FLAG_ACKED != 0 {
        flag |= FLAG_SET_XMIT_TIMER;
        if s.is_reno() {
            recovery::remove_reno_sacks(w, id, pkts_acked as i32, ece_ack);
            if flag & FLAG_RETRANS_DATA_ACKED != 0 {
                flag &= !FLAG_ORIG_SACK_ACKED;
            }
        } else if before(reord, prior_fack) {
            // "Non-retransmitted hole got filled? That's reordering"
            recovery::check_sack_reordering(w, id, reord, false);
        }
    } else if let Some(head) = s.rtx_queue.front() {
        if rtt_update && sack_rtt_us >= 0 && sack_rtt_us > now.saturating_sub(head.mstamp) as i64 {
            flag |= FLAG_SET_XMIT_TIMER;
        }
    }
    // CUBIC's pkts_acked
    let rtt = sack.rate.rtt_us;
    super::cubic::pkts_acked(w, id, rtt);
    flag
}

/// `tcp_ack`. Returns 1 (processed), 0 (old ACK) or a negative reason.
pub fn tcp_ack(w: &mut World, id: SockId, seg: &InSeg, mut flag: u32) -> i32 {
    let s = w.sk(id);
    let prior_snd_una = s.snd_una;
    let is_sack_reneg = s.is_sack_reneg;
    let ack_seq = seg.seq;
    let ack = seg.ack_seq;
    let prior_packets = s.packets_out;
    let delivered0 = s.delivered;
    let lost0 = s.lost;
    let mut num_dupack = 0u32;
    let mut rexmit = recovery::REXMIT_NONE;
    let mut sack_state = recovery::SacktagState::default();

    // "If the ack is older than previous acks then we can probably ignore it."
    if before(ack, prior_snd_una) {
        let max_window = (s.max_window as u64).min(s.bytes_acked) as u32;
        // "RFC 5961 5.2 [Blind Data Injection Attack].[Mitigation]"
        if before(ack, prior_snd_una.wrapping_sub(max_window)) {
            if flag & FLAG_NO_CHALLENGE_ACK == 0 {
                super::input::send_challenge_ack(
                    w,
                    id,
                    "challenge ACK: the ACK is too old (RFC 5961 5.2)",
                );
            }
            return ACK_TOO_OLD;
        }
        // old_ack:
        if !seg.sacks.is_empty() {
            flag |= recovery::sacktag_write_queue(w, id, seg, prior_snd_una, &mut sack_state);
            recovery::fastretrans_alert(w, id, prior_snd_una, num_dupack, &mut flag, &mut rexmit);
            xmit_recovery(w, id, rexmit);
        }
        return 0;
    }
    // "If the ack includes data we haven't sent yet, drop the segment.
    // RFC 793 Section 3.9 and RFC 5961 Section 5.2 require us to send an
    // ACK back in that case" (6.18): a challenge ACK, under
    // tcp_send_challenge_ack's per-socket rate limit. tcp_rcv_state_process
    // passes FLAG_NO_CHALLENGE_ACK and sends its own.
    if after(ack, s.snd_nxt) {
        if flag & FLAG_NO_CHALLENGE_ACK == 0 {
            super::input::send_challenge_ack(
                w,
                id,
                "challenge ACK: the ACK covers data never sent (tcp_ack, RFC 5961 5.2)",
            );
        }
        return ACK_UNSENT_DATA;
    }
    if after(ack, prior_snd_una) {
        flag |= FLAG_SND_UNA_ADVANCED;
        w.sk_mut(id).retransmits = 0;
    }
    let s = w.sk(id);
    let prior_fack = if s.is_sack() {
        recovery::highest_sack_seq(s)
    } else {
        s.snd_una
    };
    if flag & FLAG_UPDATE_TS_RECENT != 0 {
        flag |= replace_ts_recent(w, id, seg.seq);
    }
    if flag & (FLAG_SLOWPATH | FLAG_SND_UNA_ADVANCED) == FLAG_SND_UNA_ADVANCED {
        // "Window is constant, pure forward advance."
        let s = w.sk_mut(id);
        s.snd_wl1 = ack_seq;
        snd_una_update(s, ack);
        flag |= FLAG_WIN_UPDATE;
    } else {
        if ack_seq != seg.end_seq {
            flag |= FLAG_DATA;
        }
        flag |= ack_update_window(w, id, seg, ack, ack_seq);
        if !seg.sacks.is_empty() {
            flag |= recovery::sacktag_write_queue(w, id, seg, prior_snd_una, &mut sack_state);
        }
        if sack_state.sack_delivered > 0 {
            w.sk_mut(id).delivered += sack_state.sack_delivered;
        }
    }
    let j = w.jiffies();
    let s = w.sk_mut(id);
    s.sk_err_soft = None;
    s.probes_out = 0;
    s.rcv_tstamp = j;
    if prior_packets == 0 {
        // no_queue:
        if flag & FLAG_DSACKING_ACK != 0 {
            recovery::fastretrans_alert(w, id, prior_snd_una, num_dupack, &mut flag, &mut rexmit);
        }
        // "If this ack opens up a zero window, clear backoff."
        ack_probe(w, id);
        if w.sk(id).tlp_high_seq != 0 {
            process_tlp_ack(w, id, ack, flag);
        }
        return 1;
    }
    let ece = flag & FLAG_ECE != 0;
    flag |= clean_rtx_queue(w, id, prior_fack, prior_snd_una, &mut sack_state, ece);
    recovery::rack_update_reo_wnd(w, id, &sack_state.rate);
    if w.sk(id).tlp_high_seq != 0 {
        process_tlp_ack(w, id, ack, flag);
    }
    if ack_is_dubious(w.sk(id), flag) {
        if flag & (FLAG_SND_UNA_ADVANCED | FLAG_NOT_DUP | FLAG_DSACKING_ACK) == 0 {
            num_dupack = 1;
        }
        recovery::fastretrans_alert(w, id, prior_snd_una, num_dupack, &mut flag, &mut rexmit);
    }
    // "If needed, reset TLP/RTO timer when RACK doesn't set."
    if flag & FLAG_SET_XMIT_TIMER != 0 {
        timers::set_xmit_timer(w, id);
    }
    let s = w.sk(id);
    let delivered = s.delivered - delivered0;
    let lost = s.lost - lost0;
    let mut rs = std::mem::take(&mut sack_state.rate);
    rs.losses = lost;
    // tcp_rate_gen: app_limited clears once delivered passes it
    let now = w.now;
    let s = w.sk_mut(id);
    if s.app_limited != 0 && after(s.delivered, s.app_limited) {
        s.app_limited = 0;
    }
    if delivered > 0 {
        s.delivered_mstamp = now;
    }
    let _ = is_sack_reneg;
    cong_control(w, id, ack, delivered, flag, &rs);
    super::cubic::update_pacing_rate(w, id);
    xmit_recovery(w, id, rexmit);
    1
}

/// `tcp_check_space` / `tcp_new_space`: an ACK or a transmission freed
/// send-buffer room; grow the buffer (`tcp_sndbuf_expand`) and wake a
/// blocked writer (`sk_stream_write_space`).
pub fn tcp_check_space(w: &mut World, id: SockId) {
    let s = w.sk(id);
    if !(s.has_socket && s.nospace) {
        return;
    }
    // tcp_should_expand_sndbuf
    if !s.sndbuf_locked && s.packets_in_flight() < s.snd_cwnd {
        super::input::sndbuf_expand(w, id);
        let j = w.jiffies();
        w.sk_mut(id).snd_cwnd_stamp = j;
    }
    let s = w.sk_mut(id);
    if super::mem::sk_stream_is_writeable(s) {
        s.nospace = false;
        s.wakeups += 1;
    }
}
