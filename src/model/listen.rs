//! The passive open: `tcp_conn_request` (net/ipv4/tcp_input.c), request
//! sockets and their SYN-ACK timer (`reqsk_timer_handler`,
//! net/ipv4/inet_connection_sock.c), `tcp_check_req` and
//! `tcp_create_openreq_child` (net/ipv4/tcp_minisocks.c), and the crossed
//! SYN-ACK of a simultaneous open (`tcp_send_synack`, tcp_output.c).
//!
//! A SYN to a listener creates a request socket (`struct request_sock`,
//! state NEW_SYN_RECV) in the established hash; the ACK that completes the
//! handshake turns it into a full child socket in SYN_RECV, which
//! `tcp_rcv_state_process` moves to ESTABLISHED, and which waits in the
//! listener's accept queue until accept() takes it. SYN cookies
//! (`tcp_syncookies`, used only when the SYN queue overflows) are not
//! modelled: such a SYN is dropped and a note says so.

use super::ack;
use super::close::tcp_set_state;
use super::input::{self, InSeg, paws_reject, seconds, syn_opts};
use super::output::{self, select_initial_window, v4_send_ack, v4_send_reset};
use super::skb::*;
use super::sock::*;
use super::timers::wheel_fire_us;
use super::timewait::{oow_rate_limited, tcp_in_window};
use super::{Ehash, Key4, PortOwner, TimerRef, TimerSlot, World};
use crate::payload::Payload;
use crate::segment::{Flags, Segment, TcpOpt};
use crate::vocab::{Counter, RstReason};
use std::borrow::Cow;

/// A request socket (`struct tcp_request_sock`).
#[derive(Clone, Debug)]
pub struct Req {
    pub listener: SockId,
    pub host: usize,
    pub local_port: u16,
    pub remote: (usize, u16),
    pub rcv_isn: u32,
    pub rcv_nxt: u32,
    pub snt_isn: u32,
    /// `req->mss`: the peer's MSS option (536 without one).
    pub mss: u16,
    pub ts_recent: u32,
    pub tstamp_ok: bool,
    pub sack_ok: bool,
    pub wscale_ok: bool,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    pub rsk_rcv_wnd: u32,
    pub rsk_window_clamp: u32,
    pub ts_off: u32,
    pub snt_tsval_first: u32,
    pub snt_tsval_last: u32,
    /// `snt_synack`: when the first SYN-ACK went out (µs).
    pub snt_synack: u64,
    pub num_timeout: u32,
    pub num_retrans: u32,
    /// `req->timeout` (`tcp_timeout_init`).
    pub timeout: Jiffies,
    pub last_oow_ack_time: Jiffies,
    /// `inet_rsk(req)->acked`: the handshake's ACK came while the accept
    /// queue was full.
    pub acked: bool,
    pub timer: TimerSlot,
}

impl Req {
    /// `reqsk_timeout`.
    fn reqsk_timeout(&self, max: Jiffies) -> Jiffies {
        (self.timeout << self.num_timeout.min(63)).min(max)
    }
    /// `tcp_synack_window`.
    fn synack_window(&self) -> u32 {
        self.rsk_rcv_wnd.min(65535)
    }
}

/// `tcp_mss_clamp` of the route's advertised MSS (`dst_metric_advmss`:
/// the MTU less 40).
fn mss_clamp(s: &Sock) -> u32 {
    let advmss = s.link_mtu - 40;
    if s.user_mss != 0 && (s.user_mss as u32) < advmss {
        s.user_mss as u32
    } else {
        advmss
    }
}

/// `tcp_conn_request`: a SYN for a listener. `tw_isn` is non-zero when a
/// time-wait socket handed the SYN over (`tcp_tw_isn`).
pub fn tcp_conn_request(w: &mut World, lid: SockId, seg: &Segment, tw_isn: u32) {
    let h = w.sk(lid).host;
    let from = w.host_of_addr(seg.src_addr);
    let sys = w.hosts[h].sysctl.clone();
    let l = w.sk(lid);
    if tw_isn == 0 && l.reqs.len() as u32 > l.max_ack_backlog {
        // inet_csk_reqsk_queue_is_full: tcp_syn_flood_action would answer
        // with a SYN cookie (tcp_syncookies = 1).
        w.notes.push(format!(
            "{}: SYN queue of port {} full; the kernel would answer with a SYN cookie, which the model does not do (the SYN is dropped)",
            w.hosts[h].name, l.local_port
        ));
        w.count(h, Counter::ListenDrops);
        return;
    }
    if l.accept_queue.len() as u32 > l.max_ack_backlog {
        // sk_acceptq_is_full
        w.count(h, Counter::ListenOverflows);
        w.count(h, Counter::ListenDrops);
        return;
    }
    // tcp_parse_options(.., estab = 0), then tcp_openreq_init.
    let o = syn_opts(
        seg,
        sys.tcp_timestamps,
        sys.tcp_window_scaling,
        sys.tcp_sack,
    );
    let mut mss = TCP_MSS_DEFAULT as u16;
    if let Some(m) = o.mss {
        if m != 0 {
            mss = if l.user_mss != 0 && l.user_mss < m {
                l.user_mss
            } else {
                m
            };
        }
    }
    let tstamp_ok = o.ts.is_some();
    let ts_recent = o.ts.map_or(0, |t| t.0);
    let sack_ok = o.sack_perm;
    let wscale_ok = o.wscale.is_some();
    let snd_wscale = o.wscale.unwrap_or(0);
    let saddr = w.hosts[h].addr;
    let daddr = seg.src_addr;
    let ts_off = if tstamp_ok {
        w.secure_tcp_ts_off(saddr, daddr)
    } else {
        0
    };
    let isn = if tw_isn != 0 {
        tw_isn
    } else {
        // "Kill the following clause, if you dislike this way." — with
        // syncookies on, no destination is refused here.
        w.secure_tcp_seq(saddr, daddr, seg.dport, seg.sport)
    };
    // tcp_openreq_init_rwin
    let l = w.sk(lid);
    let mut full_space = l.full_space();
    let rmss = mss_clamp(l);
    let mut clamp = l.window_clamp; // dst_metric(RTAX_WINDOW) is 0
    if l.rcvbuf_locked && (clamp as i64 > full_space || clamp == 0) {
        clamp = full_space.max(0) as u32;
    }
    if full_space < 0 {
        full_space = 0;
    }
    let (rcv_wnd, clamp, rcv_wscale) = select_initial_window(
        full_space,
        rmss - if tstamp_ok { TCPOLEN_TSTAMP_ALIGNED } else { 0 },
        clamp,
        wscale_ok,
        sys.tcp_rmem[2],
        sys.rmem_max,
    );
    let req = Req {
        listener: lid,
        host: h,
        local_port: seg.dport,
        remote: (from, seg.sport),
        rcv_isn: seg.seq,
        rcv_nxt: seg.seq.wrapping_add(1),
        snt_isn: isn,
        mss,
        ts_recent,
        tstamp_ok,
        sack_ok,
        wscale_ok,
        snd_wscale,
        rcv_wscale: if wscale_ok { rcv_wscale } else { 0 },
        rsk_rcv_wnd: rcv_wnd,
        rsk_window_clamp: clamp,
        ts_off,
        snt_tsval_first: 0,
        snt_tsval_last: 0,
        snt_synack: 0,
        num_timeout: 0,
        num_retrans: 0,
        timeout: TCP_TIMEOUT_INIT,
        last_oow_ack_time: 0,
        acked: false,
        timer: TimerSlot::default(),
    };
    // inet_csk_reqsk_queue_hash_add: into the established hash, with its
    // timer.
    let key: Key4 = (h, seg.dport, from, seg.sport);
    let ri = match w.reqs_free.pop() {
        Some(i) => {
            w.reqs[i] = Some(req);
            i
        }
        None => {
            w.reqs.push(Some(req));
            w.reqs.len() - 1
        }
    };
    w.ehash.insert(key, Ehash::Req(ri));
    w.sk_mut(lid).reqs.push(ri);
    let now_j = w.jiffies();
    w.arm(
        TimerRef::Req(ri),
        wheel_fire_us(now_j, now_j + TCP_TIMEOUT_INIT),
    );
    send_synack(w, ri, seg, Cow::Borrowed("SYN-ACK (tcp_v4_send_synack)"));
}

/// `tcp_v4_send_synack` / `tcp_make_synack`.
fn send_synack(w: &mut World, ri: usize, trigger: &Segment, why: Cow<'static, str>) {
    let now = w.now;
    let ts = w.ts_clock();
    let Some(req) = w.reqs[ri].as_mut() else {
        return;
    };
    let mss = mss_clamp(&w.socks[req.listener.0]);
    let mut options = vec![TcpOpt::Mss(mss as u16)];
    if req.tstamp_ok {
        let tsval = ts.wrapping_add(req.ts_off);
        if req.snt_tsval_first == 0 {
            req.snt_tsval_first = tsval;
        }
        req.snt_tsval_last = tsval;
        if req.sack_ok {
            options.push(TcpOpt::SackPerm);
        } else {
            options.push(TcpOpt::Nop);
            options.push(TcpOpt::Nop);
        }
        options.push(TcpOpt::Timestamp {
            val: tsval,
            ecr: req.ts_recent,
        });
    } else if req.sack_ok {
        options.push(TcpOpt::Nop);
        options.push(TcpOpt::Nop);
        options.push(TcpOpt::SackPerm);
    }
    if req.wscale_ok {
        options.push(TcpOpt::Nop);
        options.push(TcpOpt::WScale(req.rcv_wscale));
    }
    if req.snt_synack == 0 {
        req.snt_synack = now.max(1);
    }
    let req = req.clone();
    let seg = Segment {
        time_us: 0,
        src: w.hosts[req.host].name.clone(),
        dst: w.hosts[req.remote.0].name.clone(),
        src_addr: w.hosts[req.host].addr,
        dst_addr: w.hosts[req.remote.0].addr,
        sport: req.local_port,
        dport: req.remote.1,
        seq: req.snt_isn,
        ack: req.rcv_nxt,
        flags: Flags::SYN | Flags::ACK,
        // "RFC1323: The window in SYN & SYN/ACK segments is never scaled."
        win: req.rsk_rcv_wnd.min(65535) as u16,
        urg_ptr: 0,
        options,
        len: 0,
        payload: Some(Payload::empty()),
        why: Some(why),
        rst_reason: None,
        lost: false,
    };
    let _ = trigger;
    w.emit(seg);
}

/// `tcp_rtx_synack`.
fn rtx_synack(w: &mut World, ri: usize, seg: &Segment, why: Cow<'static, str>) {
    send_synack(w, ri, seg, why);
    let Some(req) = w.reqs[ri].as_mut() else {
        return;
    };
    req.num_retrans += 1;
    let h = req.host;
    w.count(h, Counter::TCPSynRetrans);
}

/// `inet_csk_reqsk_queue_drop`: the request leaves the hash, the SYN
/// queue and its timer.
pub fn reqsk_queue_drop(w: &mut World, ri: usize) -> bool {
    let Some(req) = w.reqs[ri].take() else {
        return false;
    };
    w.reqs_free.push(ri);
    let key: Key4 = (req.host, req.local_port, req.remote.0, req.remote.1);
    if w.ehash.get(&key) == Some(&Ehash::Req(ri)) {
        w.ehash.remove(&key);
    }
    w.sk_mut(req.listener).reqs.retain(|&r| r != ri);
    true
}

/// `reqsk_timer_handler`: retransmit the SYN-ACK, or give up.
pub fn reqsk_timer_handler(w: &mut World, ri: usize) {
    let Some(req) = w.reqs[ri].clone() else {
        return;
    };
    let lid = req.listener;
    let h = req.host;
    if w.sk(lid).state != State::Listen {
        reqsk_queue_drop(w, ri);
        return;
    }
    let mut max_syn_ack_retries = if w.sk(lid).syn_retries != 0 {
        w.sk(lid).syn_retries as u32
    } else {
        w.hosts[h].sysctl.tcp_synack_retries
    };
    // "we reserve half of room for young embrions; and abort old ones
    // without pity, if old ones are about to clog our table."
    let qlen = w.sk(lid).reqs.len() as u32;
    if (qlen << 1) > 8u32.max(w.sk(lid).max_ack_backlog) {
        let mut young = w
            .sk(lid)
            .reqs
            .iter()
            .filter(|&&r| w.reqs[r].as_ref().is_some_and(|q| q.num_timeout == 0))
            .count() as u32
            * 2;
        while max_syn_ack_retries > 2 {
            if qlen < young {
                break;
            }
            max_syn_ack_retries -= 1;
            young <<= 1;
        }
    }
    // syn_ack_recalc (no TCP_DEFER_ACCEPT)
    let expire = req.num_timeout >= max_syn_ack_retries;
    // tcp_syn_ack_timeout
    w.count(h, Counter::TCPTimeouts);
    if !expire {
        let nth = req.num_timeout + 1;
        let trigger = dummy_trigger(w, &req);
        rtx_synack(
            w,
            ri,
            &trigger,
            Cow::Owned(format!(
                "SYN-ACK retransmission #{nth}: no ACK within the timeout (reqsk_timer_handler)"
            )),
        );
        let now_j = w.jiffies();
        let Some(r) = w.reqs[ri].as_mut() else {
            return;
        };
        r.num_timeout += 1;
        let when = r.reqsk_timeout(TCP_RTO_MAX);
        w.arm(TimerRef::Req(ri), wheel_fire_us(now_j, now_j + when));
        return;
    }
    // inet_csk_reqsk_queue_drop_and_put
    reqsk_queue_drop(w, ri);
}

/// A stand-in for the SYN that a retransmitted SYN-ACK answers.
fn dummy_trigger(w: &World, req: &Req) -> Segment {
    Segment {
        time_us: w.now,
        src: w.hosts[req.remote.0].name.clone(),
        dst: w.hosts[req.host].name.clone(),
        src_addr: w.hosts[req.remote.0].addr,
        dst_addr: w.hosts[req.host].addr,
        sport: req.remote.1,
        dport: req.local_port,
        seq: req.rcv_isn,
        ack: 0,
        flags: Flags::SYN,
        win: 0,
        urg_ptr: 0,
        options: Vec::new(),
        len: 0,
        payload: None,
        why: None,
        rst_reason: None,
        lost: false,
    }
}

/// What `tcp_check_req` returns.
enum CheckReq {
    /// NULL: the segment was consumed (or dropped).
    Drop,
    /// The listener itself: it answers the segment (an ACK of something
    /// else gets a reset).
    Listener,
    /// The new child socket.
    Child(SockId),
}

/// `tcp_v4_rcv` for a segment that found a request socket.
pub fn tcp_v4_rcv_req(w: &mut World, ri: usize, seg: &Segment) {
    let Some(req) = w.reqs[ri].clone() else {
        return;
    };
    let lid = req.listener;
    if w.sk(lid).state != State::Listen {
        // inet_csk_reqsk_queue_drop_and_put, then "goto lookup".
        reqsk_queue_drop(w, ri);
        input::tcp_v4_rcv(w, seg.clone());
        return;
    }
    match tcp_check_req(w, ri, seg) {
        CheckReq::Drop => {}
        CheckReq::Listener => input::listener_rcv(w, lid, seg),
        CheckReq::Child(c) => {
            // tcp_child_process
            let st = w.sk(c).state;
            w.sk_mut(c).segs_in += 1;
            let reason = input::tcp_v4_do_rcv(w, c, seg);
            if st == State::SynRecv && w.sk(c).state != st {
                // "Wakeup parent, send SIGIO"
                w.sk_mut(lid).wakeups += 1;
            }
            if let Some(r) = reason {
                v4_send_reset(
                    w,
                    req.host,
                    seg,
                    "segment the new connection rejects -> RST (tcp_child_process)",
                    r,
                );
            }
        }
    }
}

/// `tcp_check_req`.
fn tcp_check_req(w: &mut World, ri: usize, seg: &Segment) -> CheckReq {
    let now_s = seconds(w);
    let req = w.reqs[ri].clone().expect("live request");
    let h = req.host;
    let flg = Flags(seg.flags.0 & (Flags::RST.0 | Flags::SYN.0 | Flags::ACK.0));
    let mut tsecr_reject = false;
    let mut paws_rejected = false;
    let mut saw_tsval = None;
    if let Some((val, ecr)) = seg.timestamp() {
        saw_tsval = Some(val);
        if ecr != 0 && req.tstamp_ok {
            tsecr_reject = !between(ecr, req.snt_tsval_first, req.snt_tsval_last);
        }
        // "We do not store true stamp, but it is not required, it can be
        // estimated (approximately) from another data."
        let stamp = now_s.saturating_sub(req.reqsk_timeout(TCP_RTO_MAX) / HZ);
        paws_rejected = paws_reject(req.ts_recent, val, stamp, now_s, seg.flags.rst());
    }
    let end_seq = seg.seq.wrapping_add(seg.seq_len());
    // "Check for pure retransmitted SYN."
    if seg.seq == req.rcv_isn && flg == Flags::SYN && !paws_rejected {
        let mut last = req.last_oow_ack_time;
        let limited = oow_rate_limited(w, h, &mut last, Counter::TCPACKSkippedSynRecv);
        if let Some(r) = w.reqs[ri].as_mut() {
            r.last_oow_ack_time = last;
        }
        if !limited {
            rtx_synack(
                w,
                ri,
                seg,
                Cow::Borrowed("SYN-ACK again: the SYN was retransmitted (tcp_check_req)"),
            );
            let now_j = w.jiffies();
            if let Some(r) = w.reqs[ri].as_ref() {
                // mod_timer_pending
                let when = r.reqsk_timeout(TCP_RTO_MAX);
                w.arm(TimerRef::Req(ri), wheel_fire_us(now_j, now_j + when));
            }
        }
        return CheckReq::Drop;
    }
    // "Invalid ACK: reset will be sent by listening socket."
    if flg.ack() && seg.ack != req.snt_isn.wrapping_add(1) {
        return CheckReq::Listener;
    }
    // "RFC793: first check sequence number".
    if paws_rejected
        || tsecr_reject
        || !tcp_in_window(
            seg.seq,
            end_seq,
            req.rcv_nxt,
            req.rcv_nxt.wrapping_add(req.synack_window()),
        )
    {
        // "Out of window: send ACK and drop."
        if !flg.rst() {
            let mut last = req.last_oow_ack_time;
            let limited = (seg.len == 0 || seg.flags.syn())
                && oow_rate_limited(w, h, &mut last, Counter::TCPACKSkippedSynRecv);
            if let Some(r) = w.reqs[ri].as_mut() {
                r.last_oow_ack_time = last;
            }
            if !limited {
                reqsk_send_ack(w, &req, seg);
            }
        }
        if paws_rejected {
            w.count(h, Counter::PAWSEstab);
        } else if tsecr_reject {
            w.count(h, Counter::TSEcrRejected);
        }
        return CheckReq::Drop;
    }
    let mut flg = flg;
    if seg.seq == req.rcv_isn {
        // "Truncate SYN, it is out of window starting at rcv_isn + 1."
        flg = Flags(flg.0 & !Flags::SYN.0);
    }
    if flg.rst() || flg.syn() {
        embryonic_reset(w, ri, seg, flg);
        return CheckReq::Drop;
    }
    if !flg.ack() {
        return CheckReq::Drop;
    }
    // "OK, ACK is valid, create big socket and feed this segment to it."
    let lid = req.listener;
    if w.sk(lid).accept_queue.len() as u32 > w.sk(lid).max_ack_backlog {
        // tcp_v4_syn_recv_sock: exit_overflow, then listen_overflow.
        w.count(h, Counter::ListenOverflows);
        w.count(h, Counter::ListenDrops);
        if !w.hosts[h].sysctl.tcp_abort_on_overflow {
            if let Some(r) = w.reqs[ri].as_mut() {
                r.acked = true;
            }
            return CheckReq::Drop;
        }
        embryonic_reset(w, ri, seg, flg);
        return CheckReq::Drop;
    }
    let child = create_openreq_child(w, &req, seg);
    if let Some(val) = saw_tsval {
        if !after(seg.seq, req.rcv_nxt) {
            w.sk_mut(child).ts_recent = val;
        }
    }
    let snt = (req.num_retrans == 0 && req.snt_synack != 0).then_some(req.snt_synack);
    ack::synack_rtt_meas(w, child, snt);
    // inet_csk_complete_hashdance: the request is done, the child joins
    // the accept queue.
    reqsk_queue_drop(w, ri);
    let key: Key4 = (h, req.local_port, req.remote.0, req.remote.1);
    w.ehash.insert(key, Ehash::Sock(child));
    w.sk_mut(lid).accept_queue.push_back(child);
    CheckReq::Child(child)
}

/// `tcp_check_req`'s `embryonic_reset`.
fn embryonic_reset(w: &mut World, ri: usize, seg: &Segment, flg: Flags) {
    let h = w.reqs[ri].as_ref().map_or(0, |r| r.host);
    if !flg.rst() {
        v4_send_reset(
            w,
            h,
            seg,
            "SYN or bad segment for a half-open connection -> RST (tcp_check_req)",
            RstReason::InvalidSyn,
        );
    }
    if reqsk_queue_drop(w, ri) {
        w.count(h, Counter::EmbryonicRsts);
    }
}

/// `tcp_v4_reqsk_send_ack`.
fn reqsk_send_ack(w: &mut World, req: &Req, seg: &Segment) {
    let tsval = w.ts_clock().wrapping_add(req.ts_off);
    v4_send_ack(
        w,
        req.host,
        seg,
        req.snt_isn.wrapping_add(1),
        req.rcv_nxt,
        req.synack_window() >> req.rcv_wscale,
        tsval,
        req.ts_recent,
        Cow::Borrowed(
            "out-of-window segment for a half-open connection -> ACK (tcp_v4_reqsk_send_ack)",
        ),
    );
}

/// `tcp_v4_syn_recv_sock` → `tcp_create_openreq_child` (with
/// `inet_csk_clone_lock`): the child is a copy of the listener — its
/// buffer sizes and locks, SO_LINGER, SO_OOBINLINE, TCP_NODELAY,
/// TCP_LINGER2, TCP_MAXSEG — with the connection's own fields set.
fn create_openreq_child(w: &mut World, req: &Req, seg: &Segment) -> SockId {
    let now_j = w.jiffies();
    let now_s = seconds(w);
    let hdr = InSeg::new(seg).hdr_len;
    let mut c = w.sk(req.listener).clone();
    c.name = String::new();
    c.state = State::SynRecv;
    c.has_socket = false;
    c.sock_state = SockState::Unconnected;
    c.dead = false;
    c.done = false;
    c.sk_err = None;
    c.sk_err_soft = None;
    c.sk_shutdown = 0;
    c.parent = Some(req.listener);
    c.accept_queue.clear();
    c.reqs.clear();
    c.max_ack_backlog = 0;
    c.wakeups = 0;
    c.local_port = req.local_port;
    c.remote = Some(req.remote);
    // tcp_create_openreq_child
    c.pred_flags = 0;
    let seq = req.rcv_isn.wrapping_add(1);
    c.rcv_wup = seq;
    c.copied_seq = seq;
    c.rcv_nxt = seq;
    c.segs_in = 1;
    let seq = req.snt_isn.wrapping_add(1);
    c.snd_sml = seq;
    c.snd_una = seq;
    c.snd_nxt = seq;
    c.snd_up = seq;
    c.snd_wl1 = req.rcv_isn;
    c.rtt_min = MinMax {
        s: [(now_j as u32, u32::MAX); 3],
    };
    c.ack_lrcvtime = now_j;
    c.lsndtime = now_j;
    c.total_retrans = req.num_retrans;
    c.write_seq = seq;
    c.pushed_seq = seq;
    c.iss = req.snt_isn;
    c.irs = req.rcv_isn;
    c.tstamp_ok = req.tstamp_ok;
    c.sack_ok = req.sack_ok;
    c.window_clamp = req.rsk_window_clamp;
    c.rcv_ssthresh = req.rsk_rcv_wnd;
    c.rcv_wnd = req.rsk_rcv_wnd;
    c.wscale_ok = req.wscale_ok;
    if c.wscale_ok {
        c.snd_wscale = req.snd_wscale;
        c.rcv_wscale = req.rcv_wscale;
    } else {
        c.snd_wscale = 0;
        c.rcv_wscale = 0;
        c.window_clamp = c.window_clamp.min(65535);
    }
    c.snd_wnd = (seg.win as u32) << c.snd_wscale;
    c.max_window = c.snd_wnd;
    if c.tstamp_ok {
        c.ts_recent = req.ts_recent;
        c.ts_recent_stamp = now_s;
        c.tcp_header_len = 20 + TCPOLEN_TSTAMP_ALIGNED;
    } else {
        c.ts_recent_stamp = 0;
        c.tcp_header_len = 20;
    }
    if req.num_timeout > 0 {
        c.total_rto = req.num_timeout as u16;
        c.undo_marker = req.snt_isn;
        c.retrans_stamp = (req.snt_synack / 1000) as u32;
        c.total_rto_recoveries = 1;
    }
    c.tsoffset = req.ts_off;
    let skb_len = seg.len + hdr;
    if skb_len >= TCP_MSS_DEFAULT + c.tcp_header_len {
        c.ack_last_seg_size = skb_len - c.tcp_header_len;
    }
    c.mss_clamp = req.mss;
    // inet_csk_clone_lock: a fresh inet_connection_sock.
    c.retransmits = 0;
    c.backoff = 0;
    c.probes_out = 0;
    c.probes_tstamp = 0;
    c.pending = None;
    c.ack_pending = 0;
    c.ack_quick = 0;
    c.ack_pingpong = 0;
    c.ack_ato = 0;
    c.ack_timeout = 0;
    c.ack_rcv_mss = 0;
    c.sk_timer = None;
    c.ca_state = CaState::Open;
    c.lingering_until = None;
    // tcp_v4_syn_recv_sock
    let mtu = c.link_mtu;
    output::sync_mss(&mut c, mtu);
    c.advmss = mss_clamp(w.sk(req.listener));
    input::initialize_rcv_mss(&mut c);
    let host = c.host;
    let port = c.local_port;
    let id = w.add_sock(c);
    // __inet_inherit_port: the child joins the listener's bind bucket.
    w.hosts[host]
        .ports
        .entry(port)
        .or_default()
        .push(PortOwner::Sock(id));
    w.record_state(id, State::Close, State::SynRecv);
    // tcp_create_openreq_child: SO_KEEPALIVE came with the listener's flags.
    if w.sk(id).keepopen {
        let when = keepalive_time_when(w.sk(id), w.sys(id));
        super::timers::reset_keepalive_timer(w, id, when);
    }
    id
}

/// The SYN_RECV branch of `tcp_rcv_state_process`: the ACK of our SYN-ACK
/// completes the handshake.
pub fn synrecv_to_established(w: &mut World, id: SockId, seg: &InSeg) {
    let s = w.sk_mut(id);
    s.delivered += 1; // "SYN-ACK delivery isn't tracked in tcp_ack"
    if s.srtt_us == 0 {
        ack::synack_rtt_meas(w, id, None);
    }
    let s = w.sk_mut(id);
    if s.tstamp_ok {
        s.advmss -= TCPOLEN_TSTAMP_ALIGNED;
    }
    // tcp_try_undo_spurious_syn
    if s.undo_marker != 0 && s.retrans_stamp != 0 && s.saw_tstamp && s.retrans_stamp == s.rcv_tsecr
    {
        s.undo_marker = 0;
    }
    s.retrans_stamp = 0;
    input::init_transfer(w, id);
    let s = w.sk_mut(id);
    s.copied_seq = s.rcv_nxt;
    tcp_set_state(w, id, State::Established);
    let j = w.jiffies();
    let s = w.sk_mut(id);
    s.wakeups += 1; // sk_state_change
    s.snd_una = seg.ack_seq;
    s.snd_wnd = (seg.seg.win as u32) << s.snd_wscale;
    s.snd_wl1 = seg.seq;
    super::cubic::update_pacing_rate(w, id);
    let s = w.sk_mut(id);
    // "Prevent spurious tcp_cwnd_restart() on first data packet"
    s.lsndtime = j;
    input::initialize_rcv_mss(s);
    input::fast_path_on(s);
    if s.sk_shutdown & SEND_SHUTDOWN != 0 {
        super::close::tcp_shutdown(w, id, SEND_SHUTDOWN);
    }
}

/// `tcp_send_synack` for a simultaneous open: the SYN at the head of the
/// retransmit queue becomes a SYN-ACK.
pub fn send_synack_crossed(w: &mut World, id: SockId) {
    let s = w.sk_mut(id);
    let Some(skb) = s.rtx_queue.front_mut() else {
        return;
    };
    skb.flags |= TCPHDR_ACK;
    let x = output::XmitSkb {
        seq: skb.seq,
        flags: skb.flags,
        payload: Payload::empty(),
        pcount: 1,
        gso_size: 0,
        why: Cow::Borrowed("SYN-ACK: the SYNs crossed (tcp_send_synack)"),
        rst_reason: None,
    };
    let rcv_nxt = s.rcv_nxt;
    output::transmit_skb(w, id, x, rcv_nxt);
}
