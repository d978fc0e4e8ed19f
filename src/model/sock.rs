//! The socket: `struct tcp_sock` reduced to what the close path touches.

use std::collections::VecDeque;

/// Microseconds of virtual time.
pub type Time = u64;

pub const MS: Time = 1_000;
pub const SEC: Time = 1_000_000;

/// One jiffy: these kernels are built with HZ=250. Timers expire on jiffy
/// boundaries and the RTO is kept in jiffies.
pub const JIFFY: Time = 4 * MS;

/// `TCP_TIMEWAIT_LEN` (include/net/tcp.h): 60 s.
pub const TCP_TIMEWAIT_LEN: Time = 60 * SEC;
/// `TCP_RTO_MIN` and `TCP_RTO_MAX`.
pub const TCP_RTO_MIN: Time = 200 * MS;
pub const TCP_RTO_MAX: Time = 120 * SEC;
/// `TCP_TIMEOUT_INIT`: the RTO before any RTT sample.
pub const TCP_TIMEOUT_INIT: Time = SEC;
/// `TCP_DELACK_MIN` (HZ/25) and `TCP_DELACK_MAX` (HZ/5).
pub const TCP_DELACK_MIN: Time = 40 * MS;
pub const TCP_DELACK_MAX: Time = 200 * MS;
/// `TCP_ATO_MIN`.
pub const TCP_ATO_MIN: Time = 40 * MS;
/// `TCP_MAX_QUICKACKS`.
pub const TCP_MAX_QUICKACKS: u32 = 16;
/// `TCP_FIN_TIMEOUT_MAX` (120 s): the cap on TCP_LINGER2.
pub const TCP_FIN_TIMEOUT_MAX: Time = 120 * SEC;
/// `TCP_SYN_RETRIES` default (net.ipv4.tcp_syn_retries) and synack retries.
pub const TCP_SYN_RETRIES: u32 = 6;
pub const TCP_SYNACK_RETRIES: u32 = 5;
/// `TCP_INIT_CWND`.
pub const TCP_INIT_CWND: u32 = 10;
/// `TCP_MSS_DEFAULT`, used for the initial `rcv_mss` estimate.
pub const TCP_MSS_DEFAULT: u32 = 536;
/// The MSS a route over a 65535-byte MTU advertises (loopback and the
/// linux engine's veth links): 65535 - 40.
pub const ADVMSS: u32 = 65495;
/// `TCPOLEN_TSTAMP_ALIGNED`.
pub const TS_LEN: u32 = 12;
/// `SOCK_MIN_RCVBUF` / `SOCK_MIN_SNDBUF` on x86_64 (2 * SKB_TRUESIZE(256)).
pub const SOCK_MIN_RCVBUF: u32 = 2304;
pub const SOCK_MIN_SNDBUF: u32 = 4608;
/// `TCP_RMEM_TO_WIN_SCALE` and `TCP_DEFAULT_SCALING_RATIO` (50 %).
pub const TCP_RMEM_TO_WIN_SCALE: u32 = 8;
pub const TCP_DEFAULT_SCALING_RATIO: u32 = 1 << (TCP_RMEM_TO_WIN_SCALE - 1);
/// What one received skb costs in `sk_rmem_alloc` beyond its payload: the
/// `sk_buff` and its shared info (`SKB_TRUESIZE`), rounded as the
/// allocator does for the small skbs loopback delivers.
pub const SKB_OVERHEAD: u32 = 768;

/// Sequence-space comparisons (`before()` / `after()` in include/net/tcp.h).
pub fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}
pub fn after(a: u32, b: u32) -> bool {
    before(b, a)
}

/// TCP states, `include/net/tcp_states.h`, named as `/proc/net/tcp` and `ss`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Established => "ESTABLISHED",
            State::SynSent => "SYN_SENT",
            State::SynRecv => "SYN_RECV",
            State::FinWait1 => "FIN_WAIT1",
            State::FinWait2 => "FIN_WAIT2",
            State::TimeWait => "TIME_WAIT",
            State::Close => "CLOSE",
            State::CloseWait => "CLOSE_WAIT",
            State::LastAck => "LAST_ACK",
            State::Listen => "LISTEN",
            State::Closing => "CLOSING",
        }
    }
}

/// `sk_shutdown` bits.
pub const RCV_SHUTDOWN: u8 = 1;
pub const SEND_SHUTDOWN: u8 = 2;
pub const SHUTDOWN_MASK: u8 = 3;

/// `tp->urg_data`: the urgent byte's life (`TCP_URG_NOTYET`, `TCP_URG_VALID
/// | byte`, `TCP_URG_READ`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Urg {
    None,
    NotYet,
    Valid(u8),
    Read,
}

/// Index of a socket in the world's arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SockId(pub usize);

/// A full TCP socket (`struct tcp_sock`), or a request socket while the
/// handshake is in SYN_RECV (Linux keeps those as `request_sock`
/// minisockets; the model keeps a full socket with `parent` set).
#[derive(Clone, Debug)]
pub struct Sock {
    pub host: usize,
    /// The script's name for it (`conn`, `listener`, `conn2`).
    pub name: String,
    pub state: State,
    pub local_port: u16,
    /// (host index, port) of the peer once connecting.
    pub remote: Option<(usize, u16)>,

    // --- `struct sock` flags and options ---
    /// `SOCK_DEAD`: the program closed it; it lives on as an orphan.
    pub dead: bool,
    /// `SOCK_DONE`: a FIN was received (tcp_fin).
    pub done: bool,
    pub shutdown: u8,
    /// `sk_err`, reported once by the next call (`sock_error`).
    pub err: Option<&'static str>,
    /// `SOCK_LINGER` and `sk_lingertime` (seconds).
    pub linger: Option<u32>,
    pub rcvbuf: u32,
    pub sndbuf: u32,
    pub rcvbuf_locked: bool,
    pub sndbuf_locked: bool,
    pub oobinline: bool,
    pub nodelay: bool,
    /// `tp->repair` (TCP_REPAIR).
    pub repair: bool,
    /// `tp->linger2`: 0 = use the sysctl, negative = reset at once, else µs.
    pub linger2: i64,
    /// Listener: its accept queue, children waiting in SYN_RECV, backlog.
    pub accept_q: VecDeque<SockId>,
    pub backlog: u32,
    /// A child of a listener (still in its syn queue or accept queue).
    pub parent: Option<SockId>,
    /// The program is blocked in close() (SO_LINGER) until this time.
    pub lingering_until: Option<Time>,

    // --- send side ---
    pub iss: u32,
    pub snd_una: u32,
    pub snd_nxt: u32,
    pub write_seq: u32,
    /// `snd_nxt` before it was pulled back for a retransmission: new data
    /// starts here (`tp->snd_nxt` stays monotonic in Linux because the
    /// retransmit queue is separate; the model uses this mark instead).
    pub snd_max: u32,
    pub snd_wnd: u32,
    pub snd_wl1: u32,
    pub max_window: u32,
    /// Bytes from `snd_una` to `write_seq` (sent-unacked, then unsent).
    pub sndq: VecDeque<u8>,
    /// The skbs those bytes sit in: (end sequence, PSH marked). Segments
    /// never cross an skb boundary; `tcp_sendmsg` builds skbs of
    /// `size_goal` bytes (one MSS: the links have no GSO).
    pub skbs: VecDeque<(u32, bool)>,
    /// `tp->pushed_seq`: where the last PSH mark was made.
    pub pushed_seq: u32,
    /// A FIN is queued after the last byte (`TCPHDR_FIN` on the tail skb).
    pub fin_queued: bool,
    /// Which call queued the FIN (for the reason shown beside it).
    pub fin_why: &'static str,
    /// `tp->snd_up`: end of urgent data (`tcp_mark_urg`), if in urgent mode.
    pub snd_up: Option<u32>,
    /// `tp->snd_sml`: end of the last small segment sent (Minshall-Nagle).
    pub snd_sml: u32,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    /// The peer's MSS minus our TCP options (`mss_cache`).
    pub mss_cache: u32,
    pub advmss: u32,
    pub cwnd: u32,
    pub ssthresh: u32,
    pub ts_ok: bool,
    pub sack_ok: bool,
    pub ts_offset: u32,
    pub ts_recent: u32,

    // --- receive side ---
    pub irs: u32,
    pub rcv_nxt: u32,
    pub rcv_wnd: u32,
    pub rcv_wup: u32,
    pub copied_seq: u32,
    pub rcv_ssthresh: u32,
    pub window_clamp: u32,
    /// `tp->scaling_ratio` (`tcp_win_from_space`).
    pub scaling_ratio: u32,
    /// Bytes from `copied_seq` to `rcv_nxt` (minus a FIN): the receive
    /// queue's payload. The urgent byte stays here (tcp_urg) until read
    /// inline or skipped.
    pub rcvq: VecDeque<u8>,
    /// `sk_rmem_alloc`: truesize of the queued skbs.
    pub rmem_alloc: u32,
    /// Number of skbs making up `rcvq` (each charged [`SKB_OVERHEAD`]).
    pub rcvq_skbs: VecDeque<(u32, u32)>,
    /// A FIN is in the receive queue after the data (`TCPHDR_FIN`).
    pub fin_in_rcvq: bool,
    /// Out-of-order segments: (seq, bytes, fin).
    pub ooo: Vec<(u32, Vec<u8>, bool)>,
    pub urg: Urg,
    pub urg_seq: u32,
    /// `icsk_ack.rcv_mss`: estimate of the peer's segment size.
    pub rcv_mss: u32,

    // --- ACK machinery (`icsk_ack`) ---
    pub ack_pending: bool,
    pub quick: u32,
    pub pingpong: bool,
    pub ato: Time,
    pub lrcvtime: Time,
    /// Send an ACK at once (ICSK_ACK_NOW).
    pub ack_now: bool,
    /// `ICSK_ACK_PUSHED`: a small segment arrived (for `tcp_cleanup_rbuf`).
    pub ack_pushed: bool,

    // --- timers: absolute deadlines (`icsk_timeout`, `icsk_delack_timer`,
    // `sk_timer`) ---
    pub t_rto: Option<Time>,
    pub t_probe: Option<Time>,
    pub t_delack: Option<Time>,
    /// `sk_timer` in FIN_WAIT2 for an orphan whose fin time exceeds 60 s,
    /// and the SYN_RECV request timer.
    pub t_keepalive: Option<Time>,
    pub rto: Time,
    pub srtt: Time,
    pub rttvar: Time,
    pub backoff: u32,
    pub retransmits: u32,
    pub probes_out: u32,
    /// When the first unanswered retransmission of the current episode
    /// went out (`tp->retrans_stamp`).
    pub retrans_stamp: Option<Time>,
    /// Send time of the segment being timed (`tp->rtt_seq` style sample).
    pub rtt_sample: Option<(u32, Time)>,
    /// SYN or SYN-ACK retransmissions so far.
    pub syn_retries: u32,
    /// Zero-window probes sent on this connection (for the reasons shown).
    pub probes_sent: u32,
    /// Congestion avoidance: ACKs counted towards the next cwnd increase.
    pub cwnd_cnt: u32,
    /// Window scaling is enabled on our side (`tcp_window_scaling` and, after
    /// the handshake, the peer's option).
    pub wscale_ok: bool,
    /// A request socket (SYN received, handshake not finished): Linux does
    /// not trace its state until the full child socket exists.
    pub is_request: bool,
    /// Last time an out-of-window segment was answered (`last_oow_ack_time`).
    pub last_oow_ack: Option<Time>,
    /// A D-SACK block to report in the next ACK (`tcp_dsack_set`).
    pub dsack: Option<(u32, u32)>,
    /// Tail loss probe timer (`ICSK_TIME_LOSS_PROBE`) and the end of the
    /// probe in flight (`tp->tlp_high_seq`).
    pub t_tlp: Option<Time>,
    pub tlp_high_seq: Option<u32>,
    /// `icsk_ca_state == TCP_CA_Loss`: after an RTO, until everything sent
    /// before it is acknowledged. No loss probes meanwhile.
    pub in_loss: bool,
    /// When the oldest unacknowledged segment was (re)sent (the head skb's
    /// timestamp, for `tcp_rto_delta_us`).
    pub head_sent: Time,
}

impl Sock {
    pub fn new(host: usize, name: &str, rmem_default: u32, wmem_default: u32) -> Sock {
        Sock {
            host,
            name: name.to_string(),
            state: State::Close,
            local_port: 0,
            remote: None,
            dead: false,
            done: false,
            shutdown: 0,
            err: None,
            linger: None,
            rcvbuf: rmem_default,
            sndbuf: wmem_default,
            rcvbuf_locked: false,
            sndbuf_locked: false,
            oobinline: false,
            nodelay: false,
            repair: false,
            linger2: 0,
            accept_q: VecDeque::new(),
            backlog: 0,
            parent: None,
            lingering_until: None,
            iss: 0,
            snd_una: 0,
            snd_nxt: 0,
            write_seq: 0,
            snd_max: 0,
            snd_wnd: 0,
            snd_wl1: 0,
            max_window: 0,
            sndq: VecDeque::new(),
            skbs: VecDeque::new(),
            pushed_seq: 0,
            fin_queued: false,
            fin_why: "FIN",
            snd_up: None,
            snd_sml: 0,
            snd_wscale: 0,
            rcv_wscale: 0,
            mss_cache: TCP_MSS_DEFAULT,
            advmss: ADVMSS,
            cwnd: TCP_INIT_CWND,
            ssthresh: u32::MAX,
            ts_ok: false,
            sack_ok: false,
            ts_offset: 0,
            ts_recent: 0,
            irs: 0,
            rcv_nxt: 0,
            rcv_wnd: 0,
            rcv_wup: 0,
            copied_seq: 0,
            rcv_ssthresh: 0,
            window_clamp: 0,
            scaling_ratio: TCP_DEFAULT_SCALING_RATIO,
            rcvq: VecDeque::new(),
            rmem_alloc: 0,
            rcvq_skbs: VecDeque::new(),
            fin_in_rcvq: false,
            ooo: Vec::new(),
            urg: Urg::None,
            urg_seq: 0,
            rcv_mss: TCP_MSS_DEFAULT,
            ack_pending: false,
            quick: 0,
            pingpong: false,
            ato: 0,
            lrcvtime: 0,
            ack_now: false,
            ack_pushed: false,
            t_rto: None,
            t_probe: None,
            t_delack: None,
            t_keepalive: None,
            rto: TCP_TIMEOUT_INIT,
            srtt: 0,
            rttvar: 0,
            backoff: 0,
            retransmits: 0,
            probes_out: 0,
            retrans_stamp: None,
            rtt_sample: None,
            syn_retries: 0,
            probes_sent: 0,
            cwnd_cnt: 0,
            wscale_ok: true,
            is_request: false,
            last_oow_ack: None,
            dsack: None,
            t_tlp: None,
            tlp_high_seq: None,
            in_loss: false,
            head_sent: 0,
        }
    }

    /// `tcp_write_queue_purge`.
    pub fn clear_write_queue(&mut self) {
        self.sndq.clear();
        self.skbs.clear();
    }

    /// Start and end of the skb holding sequence number `seq`, and its PSH.
    pub fn skb_at(&self, seq: u32) -> Option<(u32, u32, bool)> {
        let mut start = self.snd_una;
        for &(end, psh) in &self.skbs {
            if after(end, seq) {
                return Some((start, end, psh));
            }
            start = end;
        }
        None
    }

    /// Bytes sent and not yet acknowledged (`tp->packets_out != 0`).
    pub fn in_flight(&self) -> bool {
        self.snd_nxt != self.snd_una
    }

    /// Unsent data or FIN waiting in the write queue (`tcp_send_head`).
    pub fn has_unsent(&self) -> bool {
        let end = self.write_seq.wrapping_add(self.fin_queued as u32);
        before(self.snd_nxt, end)
    }

    /// `tcp_receive_window`: what is left of the window last advertised.
    pub fn receive_window(&self) -> u32 {
        let w = self
            .rcv_wup
            .wrapping_add(self.rcv_wnd)
            .wrapping_sub(self.rcv_nxt) as i32;
        w.max(0) as u32
    }

    /// `tcp_win_from_space`: how much window a buffer of `space` bytes is
    /// worth, given the payload/truesize ratio.
    pub fn win_from_space(&self, space: i64) -> i64 {
        (space * self.scaling_ratio as i64) >> TCP_RMEM_TO_WIN_SCALE
    }

    /// `tcp_space`.
    pub fn space(&self) -> i64 {
        self.win_from_space(self.rcvbuf as i64 - self.rmem_alloc as i64)
    }

    /// `tcp_full_space`.
    pub fn full_space(&self) -> i64 {
        self.win_from_space(self.rcvbuf as i64)
    }

    /// `tcp_wnd_end`.
    pub fn wnd_end(&self) -> u32 {
        self.snd_una.wrapping_add(self.snd_wnd)
    }

    /// Unread payload in the receive queue (after `copied_seq`).
    pub fn unread(&self) -> u32 {
        self.rcvq.len() as u32
    }

    /// `tcp_in_quickack_mode`.
    pub fn in_quickack_mode(&self) -> bool {
        self.quick > 0 && !self.pingpong
    }

    /// The effective send MSS (`tcp_current_mss` with `tcp_bound_to_half_wnd`).
    pub fn send_mss(&self) -> u32 {
        let mut m = self.mss_cache;
        let cutoff = if self.max_window > TCP_MSS_DEFAULT {
            self.max_window / 2
        } else {
            self.max_window
        };
        if cutoff > 0 && m > cutoff {
            m = cutoff.max(68 - 20 - if self.ts_ok { TS_LEN } else { 0 });
        }
        m
    }
}
