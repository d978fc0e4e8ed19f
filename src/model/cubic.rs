//! CUBIC (net/ipv4/tcp_cubic.c) with HyStart, the congestion control every
//! linux-engine socket asks for, and `tcp_update_pacing_rate`
//! (tcp_input.c), whose rate sizes GSO bursts (`tcp_tso_autosize`).

use super::World;
use super::sock::*;
use crate::vocab::Counter;

const BICTCP_BETA_SCALE: u32 = 1024;
const BICTCP_HZ: u32 = 10;
const BETA: u32 = 717;
const BIC_SCALE: u32 = 41;
const HYSTART_LOW_WINDOW: u32 = 16;
const HYSTART_ACK_DELTA_US: u32 = 2000;
const HYSTART_MIN_SAMPLES: u16 = 8;
const HYSTART_DELAY_MIN: u32 = 4000;
const HYSTART_DELAY_MAX: u32 = 16000;

/// `beta_scale` = 8*(1024+717)/3/(1024-717).
const BETA_SCALE: u32 = 8 * (BICTCP_BETA_SCALE + BETA) / 3 / (BICTCP_BETA_SCALE - BETA);
/// `cube_rtt_scale`.
const CUBE_RTT_SCALE: u32 = BIC_SCALE * 10;
/// `cube_factor` = 2^40 / 410.
const CUBE_FACTOR: u64 = (1u64 << (10 + 3 * BICTCP_HZ)) / (BIC_SCALE as u64 * 10);

/// `bictcp_hystart_reset`.
fn hystart_reset(w: &mut World, id: SockId) {
    let now = w.now as u32;
    let s = w.sk_mut(id);
    s.ca.round_start = now;
    s.ca.last_ack = now;
    s.ca.end_seq = s.snd_nxt;
    s.ca.curr_rtt = u32::MAX;
    s.ca.sample_cnt = 0;
}

/// `cubictcp_init` (`tcp_init_congestion_control`).
pub fn init(w: &mut World, id: SockId) {
    w.sk_mut(id).ca = Cubic::default();
    hystart_reset(w, id);
}

/// `cubictcp_state` on TCP_CA_Loss.
pub fn state_loss(w: &mut World, id: SockId) {
    w.sk_mut(id).ca = Cubic::default();
    hystart_reset(w, id);
}

/// `cubictcp_cwnd_event(CA_EVENT_TX_START)`.
pub fn cwnd_event_tx_start(w: &mut World, id: SockId) {
    let now = w.jiffies() as u32;
    let s = w.sk_mut(id);
    let delta = now.wrapping_sub(s.lsndtime as u32) as i32;
    if s.ca.epoch_start != 0 && delta > 0 {
        s.ca.epoch_start = s.ca.epoch_start.wrapping_add(delta as u32);
        if after(s.ca.epoch_start, now) {
            s.ca.epoch_start = now;
        }
    }
}

/// `CA_EVENT_CWND_RESTART`: CUBIC ignores it.
pub fn cwnd_event_restart(_w: &mut World, _id: SockId) {}

/// `cubic_root`.
fn cubic_root(a: u64) -> u32 {
    const V: [u8; 64] = [
        0, 54, 54, 54, 118, 118, 118, 118, 123, 129, 134, 138, 143, 147, 151, 156, 157, 161, 164,
        168, 170, 173, 176, 179, 181, 185, 187, 190, 192, 194, 197, 199, 200, 202, 204, 206, 209,
        211, 213, 215, 217, 219, 221, 222, 224, 225, 227, 229, 231, 232, 234, 236, 237, 239, 240,
        242, 244, 245, 246, 248, 250, 251, 252, 254,
    ];
    let b = 64 - a.leading_zeros();
    if b < 7 {
        return (V[a as usize] as u32 + 35) >> 6;
    }
    let b = ((b * 84) >> 8) - 1;
    let shift = (a >> (b * 3)) as usize;
    let mut x = ((V[shift.min(63)] as u32 + 10) << b) >> 6;
    x = 2 * x + (a / (x as u64 * (x as u64 - 1)).max(1)) as u32;
    (x * 341) >> 10
}

/// `bictcp_update`.
fn bictcp_update(w: &mut World, id: SockId, cwnd: u32, acked: u32) {
    let j = w.jiffies() as u32;
    let s = w.sk_mut(id);
    let ca = &mut s.ca;
    ca.ack_cnt += acked;
    if ca.last_cwnd == cwnd && (j.wrapping_sub(ca.last_time) as i32) <= (HZ / 32) as i32 {
        return;
    }
    let skip_to_friendliness = ca.epoch_start != 0 && j == ca.last_time;
    if !skip_to_friendliness {
        ca.last_cwnd = cwnd;
        ca.last_time = j;
        if ca.epoch_start == 0 {
            ca.epoch_start = j;
            ca.ack_cnt = acked;
            ca.tcp_cwnd = cwnd;
            if ca.last_max_cwnd <= cwnd {
                ca.bic_k = 0;
                ca.bic_origin_point = cwnd;
            } else {
                ca.bic_k = cubic_root(CUBE_FACTOR * (ca.last_max_cwnd - cwnd) as u64);
                ca.bic_origin_point = ca.last_max_cwnd;
            }
        }
        let mut t = j.wrapping_sub(ca.epoch_start) as i32 as i64 as u64;
        t += usecs_to_jiffies(ca.delay_min as u64);
        t <<= BICTCP_HZ;
        t /= HZ;
        let offs = t.abs_diff(ca.bic_k as u64);
        let delta = ((CUBE_RTT_SCALE as u64 * offs * offs * offs) >> (10 + 3 * BICTCP_HZ)) as u32;
        let bic_target = if t < ca.bic_k as u64 {
            ca.bic_origin_point.wrapping_sub(delta)
        } else {
            ca.bic_origin_point + delta
        };
        if bic_target > cwnd {
            ca.cnt = cwnd / (bic_target - cwnd);
        } else {
            ca.cnt = 100 * cwnd;
        }
        if ca.last_max_cwnd == 0 && ca.cnt > 20 {
            ca.cnt = 20;
        }
    }
    // tcp_friendliness
    let delta = (cwnd * BETA_SCALE) >> 3;
    while delta > 0 && ca.ack_cnt > delta {
        ca.ack_cnt -= delta;
        ca.tcp_cwnd += 1;
    }
    if ca.tcp_cwnd > cwnd {
        let d = ca.tcp_cwnd - cwnd;
        let max_cnt = cwnd / d;
        if ca.cnt > max_cnt {
            ca.cnt = max_cnt;
        }
    }
    ca.cnt = ca.cnt.max(2);
}

/// `tcp_slow_start`.
fn slow_start(s: &mut Sock, acked: u32) -> u32 {
    let cwnd = (s.snd_cwnd + acked).min(s.snd_ssthresh);
    let acked = acked - (cwnd - s.snd_cwnd);
    s.snd_cwnd = cwnd.min(s.snd_cwnd_clamp);
    acked
}

/// `tcp_cong_avoid_ai`.
fn cong_avoid_ai(s: &mut Sock, w: u32, acked: u32) {
    if s.snd_cwnd_cnt >= w {
        s.snd_cwnd_cnt = 0;
        s.snd_cwnd += 1;
    }
    s.snd_cwnd_cnt += acked;
    if s.snd_cwnd_cnt >= w {
        let delta = s.snd_cwnd_cnt / w;
        s.snd_cwnd_cnt -= delta * w;
        s.snd_cwnd += delta;
    }
    s.snd_cwnd = s.snd_cwnd.min(s.snd_cwnd_clamp);
}

/// `cubictcp_cong_avoid`.
pub fn cong_avoid(w: &mut World, id: SockId, _ack: u32, acked: u32) {
    let s = w.sk_mut(id);
    if !s.is_cwnd_limited_fn() {
        return;
    }
    let mut acked = acked;
    if s.in_slow_start() {
        acked = slow_start(s, acked);
        if acked == 0 {
            return;
        }
    }
    let cwnd = s.snd_cwnd;
    bictcp_update(w, id, cwnd, acked);
    let s = w.sk_mut(id);
    let cnt = s.ca.cnt;
    cong_avoid_ai(s, cnt, acked);
}

/// `cubictcp_recalc_ssthresh`.
pub fn recalc_ssthresh(w: &mut World, id: SockId) -> u32 {
    let s = w.sk_mut(id);
    s.ca.epoch_start = 0;
    if s.snd_cwnd < s.ca.last_max_cwnd {
        s.ca.last_max_cwnd = (s.snd_cwnd * (BICTCP_BETA_SCALE + BETA)) / (2 * BICTCP_BETA_SCALE);
    } else {
        s.ca.last_max_cwnd = s.snd_cwnd;
    }
    ((s.snd_cwnd * BETA) / BICTCP_BETA_SCALE).max(2)
}

/// `hystart_ack_delay`.
fn hystart_ack_delay(s: &Sock) -> u32 {
    let rate = pacing_rate(s);
    if rate == 0 {
        return 0;
    }
    (super::output::SK_GSO_MAX_SIZE as u64 * 4 * 1_000_000 / rate).min(1000) as u32
}

/// `hystart_update`.
fn hystart_update(w: &mut World, id: SockId, delay: u32) {
    let now = w.now as u32;
    let h = w.sk(id).host;
    if after(w.sk(id).snd_una, w.sk(id).ca.end_seq) {
        hystart_reset(w, id);
    }
    let s = w.sk_mut(id);
    if s.snd_cwnd < HYSTART_LOW_WINDOW {
        return;
    }
    let mut found = None;
    if (now.wrapping_sub(s.ca.last_ack) as i32) <= HYSTART_ACK_DELTA_US as i32 {
        s.ca.last_ack = now;
        // SK_PACING_NONE: the threshold is halved
        let threshold = (s.ca.delay_min + hystart_ack_delay(s)) >> 1;
        if (now.wrapping_sub(s.ca.round_start) as i32) > threshold as i32 {
            s.ca.found = true;
            s.snd_ssthresh = s.snd_cwnd;
            found = Some(Counter::TCPHystartTrainDetect);
        }
    }
    if s.ca.curr_rtt > delay {
        s.ca.curr_rtt = delay;
    }
    if s.ca.sample_cnt < HYSTART_MIN_SAMPLES {
        s.ca.sample_cnt += 1;
    } else {
        let thresh = (s.ca.delay_min >> 3).clamp(HYSTART_DELAY_MIN, HYSTART_DELAY_MAX);
        if s.ca.curr_rtt > s.ca.delay_min + thresh {
            s.ca.found = true;
            s.snd_ssthresh = s.snd_cwnd;
            found = Some(Counter::TCPHystartDelayDetect);
        }
    }
    if let Some(m) = found {
        w.count(h, m);
    }
}

/// `cubictcp_acked`.
pub fn pkts_acked(w: &mut World, id: SockId, rtt_us: i64) {
    if rtt_us < 0 {
        return;
    }
    let j = w.jiffies() as u32;
    let s = w.sk_mut(id);
    if s.ca.epoch_start != 0 && (j.wrapping_sub(s.ca.epoch_start) as i32) < HZ as i32 {
        return;
    }
    let delay = (rtt_us as u32).max(1);
    if s.ca.delay_min == 0 || s.ca.delay_min > delay {
        s.ca.delay_min = delay;
    }
    if !s.ca.found && s.in_slow_start() {
        hystart_update(w, id, delay);
    }
}

/// `sk_pacing_rate`: `~0` until the first `tcp_update_pacing_rate`.
pub fn pacing_rate(s: &Sock) -> u64 {
    if s.pacing_rate_set == 0 {
        return u64::MAX;
    }
    s.pacing_rate_set
}

/// `tcp_update_pacing_rate` (ratios 200 % in slow start, 120 % after).
pub fn update_pacing_rate(w: &mut World, id: SockId) {
    let s = w.sk_mut(id);
    let mut rate: u64 = s.mss_cache as u64 * ((1_000_000 / 100) << 3);
    if s.snd_cwnd < s.snd_ssthresh / 2 {
        rate *= 200;
    } else {
        rate *= 120;
    }
    rate *= s.snd_cwnd.max(s.packets_out) as u64;
    if s.srtt_us > 0 {
        rate /= s.srtt_us as u64;
    }
    s.pacing_rate_set = rate.max(1);
}
