//! The socket: `struct sock`, `struct inet_connection_sock` and
//! `struct tcp_sock` with the fields the model's port of the kernel uses,
//! the constants of include/net/tcp.h in jiffies of a HZ=250 kernel, and the
//! small inline helpers of include/net/tcp.h that read them.

use super::skb::{RxSkb, TxSkb};
use std::collections::VecDeque;

/// Microseconds of virtual time.
pub type Time = u64;
/// Jiffies (4 ms each: these kernels are built with HZ=250).
pub type Jiffies = u64;

pub const MS: Time = 1_000;
pub use crate::vocab::HZ;
/// One jiffy in microseconds.
pub const JIFFY_US: Time = 1_000_000 / HZ;

/// `usecs_to_jiffies`: rounds up.
pub fn usecs_to_jiffies(us: u64) -> Jiffies {
    us.div_ceil(JIFFY_US)
}
/// `msecs_to_jiffies`: rounds up.
pub fn msecs_to_jiffies(ms: u64) -> Jiffies {
    (ms * 1000).div_ceil(JIFFY_US)
}
pub fn jiffies_to_usecs(j: Jiffies) -> u64 {
    j * JIFFY_US
}
pub fn jiffies_to_msecs(j: Jiffies) -> u64 {
    j * JIFFY_US / 1000
}

// include/net/tcp.h, in jiffies.
pub const TCP_TIMEWAIT_LEN: Jiffies = 60 * HZ;
pub const TCP_FIN_TIMEOUT_MAX: Jiffies = 120 * HZ;
pub const TCP_DELACK_MAX: Jiffies = HZ / 5;
pub const TCP_DELACK_MIN: Jiffies = HZ / 25;
pub const TCP_ATO_MIN: Jiffies = HZ / 25;
pub const TCP_RTO_MAX: Jiffies = 120 * HZ;
pub const TCP_RTO_MIN: Jiffies = HZ / 5;
pub const TCP_TIMEOUT_MIN: Jiffies = 2;
pub const TCP_TIMEOUT_MIN_US: u64 = 2 * 1000;
pub const TCP_TIMEOUT_INIT: Jiffies = HZ;
pub const TCP_RESOURCE_PROBE_INTERVAL: Jiffies = HZ / 2;
pub const TCP_PAWS_WINDOW: u32 = 1;
/// `TCP_PAWS_MSL`: seconds after which ts_recent is stale.
pub const TCP_PAWS_MSL: u64 = 60;
/// `TCP_PAWS_WRAP`.
pub const TCP_PAWS_WRAP: u64 = (i32::MAX as u64) / 1_000_000;

pub const TCP_MSS_DEFAULT: u32 = 536;
pub const TCP_MIN_MSS: u32 = 88;
pub const TCP_MIN_SND_MSS: u32 = 48;
pub const TCP_MAX_QUICKACKS: u32 = 16;
pub const TCP_MAX_WSCALE: u8 = 14;
pub const TCP_INIT_CWND: u32 = 10;
pub const TCP_INFINITE_SSTHRESH: u32 = 0x7fff_ffff;
pub const TCP_FASTRETRANS_THRESH: u32 = 3;
pub const MAX_TCP_OPTION_SPACE: u32 = 40;
pub const TCPOLEN_TSTAMP_ALIGNED: u32 = 12;
pub const TCPOLEN_SACK_BASE_ALIGNED: u32 = 4;
pub const TCPOLEN_SACK_PERBLOCK: u32 = 8;
pub const TCP_RMEM_TO_WIN_SCALE: u32 = 8;
pub const TCP_DEFAULT_SCALING_RATIO: u32 = 1 << (TCP_RMEM_TO_WIN_SCALE - 1);
/// `SOCK_MIN_RCVBUF` (`TCP_SKB_MIN_TRUESIZE` = 2048 + a 256-byte sk_buff)
/// and `SOCK_MIN_SNDBUF`.
pub const SOCK_MIN_RCVBUF: u32 = 2048 + 256;
pub const SOCK_MIN_SNDBUF: u32 = 2 * SOCK_MIN_RCVBUF;
/// `TCP_URG_*` (tp->urg_data).
pub const TCP_URG_VALID: u16 = 0x0100;
pub const TCP_URG_NOTYET: u16 = 0x0200;
pub const TCP_URG_READ: u16 = 0x0400;
/// `TCP_NAGLE_*` (tp->nonagle).
pub const TCP_NAGLE_OFF: u8 = 1;
pub const TCP_NAGLE_CORK: u8 = 2;
pub const TCP_NAGLE_PUSH: u8 = 4;
/// `sk_shutdown` bits.
pub const RCV_SHUTDOWN: u8 = 1;
pub const SEND_SHUTDOWN: u8 = 2;
pub const SHUTDOWN_MASK: u8 = 3;
/// `icsk_ack.pending` bits (`inet_csk_ack_state_t`).
pub const ICSK_ACK_SCHED: u8 = 1;
pub const ICSK_ACK_TIMER: u8 = 2;
pub const ICSK_ACK_PUSHED: u8 = 4;
pub const ICSK_ACK_PUSHED2: u8 = 8;
pub const ICSK_ACK_NOW: u8 = 16;
pub const ICSK_ACK_NOMEM: u8 = 32;

/// Sequence-space comparisons (`before()` / `after()`).
#[inline]
pub fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}
#[inline]
pub fn after(a: u32, b: u32) -> bool {
    before(b, a)
}
/// `between(seq1, seq2, seq3)`: seq3 >= seq1 and seq3 <= seq2... written as
/// the kernel does, `seq3 - seq2 >= seq1 - seq2`.
#[inline]
pub fn between(seq1: u32, seq2: u32, seq3: u32) -> bool {
    seq3.wrapping_sub(seq2) >= seq1.wrapping_sub(seq2)
}

/// TCP states, `include/net/tcp_states.h` (the model names them as the
/// kernel's code does: `State::TimeWait` for `TCP_TIME_WAIT`).
pub use crate::vocab::TcpState as State;

pub const TCPF_ESTABLISHED: u32 = State::Established.f();
pub const TCPF_SYN_SENT: u32 = State::SynSent.f();
pub const TCPF_SYN_RECV: u32 = State::SynRecv.f();
pub const TCPF_FIN_WAIT1: u32 = State::FinWait1.f();
pub const TCPF_FIN_WAIT2: u32 = State::FinWait2.f();
pub const TCPF_CLOSE: u32 = State::Close.f();
pub const TCPF_CLOSE_WAIT: u32 = State::CloseWait.f();
pub const TCPF_LAST_ACK: u32 = State::LastAck.f();
pub const TCPF_CLOSING: u32 = State::Closing.f();

/// `icsk_ca_state` (`enum tcp_ca_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CaState {
    Open = 0,
    Disorder = 1,
    Cwr = 2,
    Recovery = 3,
    Loss = 4,
}

/// `icsk_pending`: which event the retransmit timer stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XmitTimer {
    /// `ICSK_TIME_RETRANS`
    Retrans,
    /// `ICSK_TIME_PROBE0`
    Probe0,
    /// `ICSK_TIME_LOSS_PROBE`
    LossProbe,
    /// `ICSK_TIME_REO_TIMEOUT`
    ReoTimeout,
}

/// `sock->state` (`socket_state`): the socket layer's own view of a
/// connection, which `connect()` and `shutdown()` consult.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockState {
    Unconnected,
    Connecting,
    Connected,
    Disconnecting,
}

/// An errno a socket can hold in `sk_err`.
pub use crate::vocab::Errno;

/// Index of a socket in the world's arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SockId(pub usize);

/// `struct tcp_sack_block`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SackBlock {
    pub start_seq: u32,
    pub end_seq: u32,
}

/// `tp->rack`: RACK loss detection state (net/ipv4/tcp_recovery.c).
#[derive(Clone, Debug, Default)]
pub struct Rack {
    pub mstamp: Time,
    pub rtt_us: u32,
    pub end_seq: u32,
    pub last_delivered: u32,
    pub reo_wnd_steps: u8,
    pub reo_wnd_persist: u8,
    pub dsack_seen: bool,
    pub advanced: bool,
}

/// CUBIC's per-socket state (`struct bictcp`, net/ipv4/tcp_cubic.c).
#[derive(Clone, Debug, Default)]
pub struct Cubic {
    pub cnt: u32,
    pub last_max_cwnd: u32,
    pub last_cwnd: u32,
    pub last_time: u32,
    pub bic_origin_point: u32,
    pub bic_k: u32,
    pub delay_min: u32,
    pub epoch_start: u32,
    pub ack_cnt: u32,
    pub tcp_cwnd: u32,
    pub sample_cnt: u16,
    pub found: bool,
    pub round_start: u32,
    pub end_seq: u32,
    pub last_ack: u32,
    pub curr_rtt: u32,
}

/// `struct minmax` over a window (lib/win_minmax.c), for `tp->rtt_min`.
#[derive(Clone, Copy, Debug, Default)]
pub struct MinMax {
    /// (time, value) of the best, second and third samples.
    pub s: [(u32, u32); 3],
}

/// A full TCP socket.
#[derive(Clone, Debug)]
pub struct Sock {
    pub host: usize,
    /// The script's name for it (`conn`, `listener`, `conn2`); empty for a
    /// child nobody has accepted yet.
    pub name: String,
    pub state: State,

    // --- struct sock ---
    pub sk_shutdown: u8,
    pub sk_err: Option<Errno>,
    pub sk_err_soft: Option<Errno>,
    /// `SOCK_DEAD`: orphaned, the program no longer holds it.
    pub dead: bool,
    /// `SOCK_DONE`: the peer's FIN was received.
    pub done: bool,
    /// `SOCK_LINGER` with `sk_lingertime` in jiffies.
    pub linger: Option<Jiffies>,
    /// `SOCK_URGINLINE` (SO_OOBINLINE).
    pub urginline: bool,
    pub rcvbuf: u32,
    pub sndbuf: u32,
    pub rcvbuf_locked: bool,
    pub sndbuf_locked: bool,
    /// `SOCK_BINDPORT_LOCK`: the port was bound by the program and stays
    /// with the socket through `tcp_set_state(TCP_CLOSE)`.
    pub bindport_locked: bool,
    /// `sk_rmem_alloc`, `sk_wmem_queued`, `sk_forward_alloc`.
    pub rmem_alloc: u32,
    pub wmem_queued: u32,
    pub forward_alloc: i32,
    /// `sk->sk_socket != NULL`: a descriptor refers to it.
    pub has_socket: bool,
    /// `sock->state`.
    pub sock_state: SockState,
    /// `SOCK_NOSPACE` on the socket.
    pub nospace: bool,
    /// Bumped by every wake-up of the socket's wait queue
    /// (`sk_stream_write_space`, `sk_state_change`, `sk_data_ready`,
    /// `sk_error_report`): a blocked call re-evaluates when it moves.
    pub wakeups: u64,
    /// The number of the last zero-window probe of the current episode
    /// (for the reason shown beside it).
    pub probe_label: u32,
    /// `sk_write_pending`: send() calls asleep on this socket.
    pub write_pending: u32,
    /// The program is blocked in close() (SO_LINGER) until then.
    pub lingering_until: Option<Time>,

    // --- inet ---
    pub local_port: u16,
    /// (host index, port) of the peer.
    pub remote: Option<(usize, u16)>,

    // --- queues ---
    pub receive_queue: VecDeque<RxSkb>,
    /// The out-of-order queue (an rb-tree in the kernel), ordered by seq.
    pub ofo: Vec<RxSkb>,
    /// `sk_write_queue`: not yet sent.
    pub write_queue: VecDeque<TxSkb>,
    /// `tcp_rtx_queue`: sent, not yet acknowledged (ordered by seq).
    pub rtx_queue: VecDeque<TxSkb>,

    // --- listener ---
    /// `icsk_accept_queue`: children whose handshake completed.
    pub accept_queue: VecDeque<SockId>,
    /// `sk_max_ack_backlog`.
    pub max_ack_backlog: u32,
    /// The listener a child came from, until accept() takes it.
    pub parent: Option<SockId>,
    /// A listener's request sockets (`icsk_accept_queue`'s SYN queue, in
    /// the established hash in the kernel), by index in the world.
    pub reqs: Vec<usize>,

    // --- inet_connection_sock ---
    pub ca_state: CaState,
    pub retransmits: u8,
    pub backoff: u8,
    pub probes_out: u8,
    pub probes_tstamp: Jiffies,
    pub syn_retries: u8,
    /// `icsk_user_timeout` (TCP_USER_TIMEOUT), in ms; 0 when unset.
    pub user_timeout: u32,
    /// `SOCK_KEEPOPEN` (SO_KEEPALIVE).
    pub keepopen: bool,
    /// `tp->keepalive_time`, `keepalive_intvl` (jiffies) and
    /// `keepalive_probes`; 0 means the namespace's sysctl
    /// (`keepalive_time_when` and friends).
    pub keepalive_time: Jiffies,
    pub keepalive_intvl: Jiffies,
    pub keepalive_probes: u8,
    /// `tp->recvmsg_inq` (TCP_INQ).
    pub recvmsg_inq: bool,
    /// `icsk_rto`, `icsk_rto_min`, `icsk_rto_max`, `icsk_delack_max`.
    pub rto: Jiffies,
    pub rto_min: Jiffies,
    pub rto_max: Jiffies,
    pub delack_max: Jiffies,
    /// `icsk_pending` and `icsk_timeout`.
    pub pending: Option<XmitTimer>,
    pub timeout: Jiffies,
    /// `icsk_ack`.
    pub ack_pending: u8,
    pub ack_quick: u32,
    pub ack_pingpong: u32,
    pub ack_ato: Jiffies,
    pub ack_timeout: Jiffies,
    pub ack_lrcvtime: Jiffies,
    pub ack_last_seg_size: u32,
    pub ack_rcv_mss: u32,
    /// `sk_timer` (keepalive, FIN_WAIT2 of an orphan), expiry in jiffies.
    pub sk_timer: Option<Jiffies>,
    pub pmtu_cookie: u32,
    /// The MTU of the link the socket's route goes over (the device's,
    /// `dst_mtu`): [`super::output::LINK_MTU`] unless the run sets one.
    pub link_mtu: u32,
    pub ca: Cubic,

    // --- tcp_sock: send side ---
    pub snd_una: u32,
    pub snd_nxt: u32,
    pub write_seq: u32,
    pub pushed_seq: u32,
    pub snd_sml: u32,
    pub snd_up: u32,
    pub snd_wl1: u32,
    pub snd_wnd: u32,
    pub max_window: u32,
    pub mss_cache: u32,
    pub advmss: u32,
    pub gso_segs: u32,
    pub tcp_header_len: u32,
    pub nonagle: u8,
    pub packets_out: u32,
    pub retrans_out: u32,
    pub sacked_out: u32,
    pub lost_out: u32,
    pub lost: u32,
    pub delivered: u32,
    pub snd_cwnd: u32,
    pub snd_cwnd_cnt: u32,
    pub snd_cwnd_clamp: u32,
    pub snd_cwnd_used: u32,
    pub snd_cwnd_stamp: Jiffies,
    pub snd_ssthresh: u32,
    pub prior_cwnd: u32,
    pub prior_ssthresh: u32,
    pub prr_delivered: u32,
    pub prr_out: u32,
    pub high_seq: u32,
    pub undo_marker: u32,
    pub undo_retrans: i32,
    /// `tp->retrans_stamp` in TS units (ms).
    pub retrans_stamp: u32,
    pub rto_stamp: u32,
    pub total_rto: u16,
    pub total_rto_recoveries: u16,
    pub rcv_tstamp: Jiffies,
    pub lsndtime: Jiffies,
    pub tlp_high_seq: u32,
    pub tlp_retrans: bool,
    pub frto: bool,
    pub reordering: u32,
    pub reord_seen: u32,
    pub is_cwnd_limited: bool,
    pub max_packets_out: u32,
    pub cwnd_usage_seq: u32,
    pub is_sack_reneg: bool,
    /// `tp->highest_sack`: the seq of the skb it points to, if any.
    pub highest_sack: Option<u32>,
    /// `tp->retransmit_skb_hint`: the seq of the skb it points to.
    pub retransmit_hint: Option<u32>,
    pub rack: Rack,
    pub total_retrans: u32,
    pub bytes_acked: u64,
    pub bytes_sent: u64,
    pub bytes_retrans: u64,
    pub segs_out: u32,
    pub data_segs_out: u32,
    pub dsack_dups: u32,
    pub app_limited: u32,
    pub rate_app_limited: bool,
    pub first_tx_mstamp: Time,
    pub delivered_mstamp: Time,
    pub tcp_wstamp: Time,
    /// `sk_pacing_rate` once `tcp_update_pacing_rate` set it (0: ~0UL).
    pub pacing_rate_set: u64,
    pub srtt_us: u32,
    pub mdev_us: u32,
    pub mdev_max_us: u32,
    pub rttvar_us: u32,
    pub rtt_seq: u32,
    pub rtt_min: MinMax,
    pub linger2: i64,
    pub repair: bool,

    // --- tcp_sock: receive side ---
    pub rcv_nxt: u32,
    pub copied_seq: u32,
    pub rcv_wup: u32,
    pub rcv_wnd: u32,
    pub rcv_ssthresh: u32,
    pub window_clamp: u32,
    pub scaling_ratio: u32,
    pub urg_data: u16,
    pub urg_seq: u32,
    pub rcv_rtt_est_rtt_us: u32,
    pub rcv_rtt_est_seq: u32,
    pub rcv_rtt_est_time: Time,
    pub rcvq_space_space: u32,
    pub rcvq_space_seq: u32,
    pub rcvq_space_time: Time,
    pub rcv_rtt_last_tsecr: u32,
    pub pred_flags: u32,
    pub selective_acks: [SackBlock; 4],
    pub duplicate_sack: SackBlock,
    pub last_oow_ack_time: Jiffies,
    pub compressed_ack: u32,
    pub compressed_ack_rcv_nxt: u32,
    pub dup_ack_counter: u32,
    pub bytes_received: u64,
    pub segs_in: u32,
    pub data_segs_in: u32,
    pub rcv_ooopack: u32,
    pub ooo_last: Option<usize>,

    // --- tp->rx_opt (struct tcp_options_received) ---
    pub ts_recent_stamp: u64,
    pub ts_recent: u32,
    pub rcv_tsval: u32,
    pub rcv_tsecr: u32,
    pub saw_tstamp: bool,
    pub tstamp_ok: bool,
    pub dsack: bool,
    pub wscale_ok: bool,
    pub sack_ok: bool,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    pub num_sacks: u8,
    pub user_mss: u16,
    pub mss_clamp: u16,
    pub tsoffset: u32,

    /// The ISN we chose (for traces and the engine's ISN clock).
    pub iss: u32,
    pub irs: u32,
}

impl Sock {
    /// `sk_alloc` + `tcp_init_sock` for a host with these sysctls.
    pub fn new(host: usize, name: &str, rmem1: u32, wmem1: u32, reordering: u32) -> Sock {
        Sock {
            host,
            name: name.to_string(),
            state: State::Close,
            sk_shutdown: 0,
            sk_err: None,
            sk_err_soft: None,
            dead: false,
            done: false,
            linger: None,
            urginline: false,
            rcvbuf: rmem1,
            sndbuf: wmem1,
            rcvbuf_locked: false,
            sndbuf_locked: false,
            bindport_locked: false,
            rmem_alloc: 0,
            wmem_queued: 0,
            forward_alloc: 0,
            has_socket: true,
            sock_state: SockState::Unconnected,
            nospace: false,
            wakeups: 0,
            write_pending: 0,
            probe_label: 0,
            lingering_until: None,
            local_port: 0,
            remote: None,
            receive_queue: VecDeque::new(),
            ofo: Vec::new(),
            write_queue: VecDeque::new(),
            rtx_queue: VecDeque::new(),
            accept_queue: VecDeque::new(),
            max_ack_backlog: 0,
            parent: None,
            reqs: Vec::new(),
            ca_state: CaState::Open,
            retransmits: 0,
            backoff: 0,
            probes_out: 0,
            probes_tstamp: 0,
            syn_retries: 0,
            user_timeout: 0,
            keepopen: false,
            keepalive_time: 0,
            keepalive_intvl: 0,
            keepalive_probes: 0,
            recvmsg_inq: false,
            rto: TCP_TIMEOUT_INIT,
            rto_min: TCP_RTO_MIN,
            rto_max: TCP_RTO_MAX,
            delack_max: TCP_DELACK_MAX,
            pending: None,
            timeout: 0,
            ack_pending: 0,
            ack_quick: 0,
            ack_pingpong: 0,
            ack_ato: 0,
            ack_timeout: 0,
            ack_lrcvtime: 0,
            ack_last_seg_size: 0,
            ack_rcv_mss: 0,
            sk_timer: None,
            pmtu_cookie: 0,
            link_mtu: super::output::LINK_MTU,
            ca: Cubic::default(),
            snd_una: 0,
            snd_nxt: 0,
            write_seq: 0,
            pushed_seq: 0,
            snd_sml: 0,
            snd_up: 0,
            snd_wl1: 0,
            snd_wnd: 0,
            max_window: 0,
            mss_cache: TCP_MSS_DEFAULT,
            advmss: 0,
            gso_segs: 0,
            tcp_header_len: 20,
            nonagle: 0,
            packets_out: 0,
            retrans_out: 0,
            sacked_out: 0,
            lost_out: 0,
            lost: 0,
            delivered: 0,
            snd_cwnd: TCP_INIT_CWND,
            snd_cwnd_cnt: 0,
            snd_cwnd_clamp: u32::MAX,
            snd_cwnd_used: 0,
            snd_cwnd_stamp: 0,
            snd_ssthresh: TCP_INFINITE_SSTHRESH,
            prior_cwnd: 0,
            prior_ssthresh: 0,
            prr_delivered: 0,
            prr_out: 0,
            high_seq: 0,
            undo_marker: 0,
            undo_retrans: 0,
            retrans_stamp: 0,
            rto_stamp: 0,
            total_rto: 0,
            total_rto_recoveries: 0,
            rcv_tstamp: 0,
            lsndtime: 0,
            tlp_high_seq: 0,
            tlp_retrans: false,
            frto: false,
            reordering,
            reord_seen: 0,
            is_cwnd_limited: false,
            max_packets_out: 0,
            cwnd_usage_seq: 0,
            is_sack_reneg: false,
            highest_sack: None,
            retransmit_hint: None,
            rack: Rack {
                reo_wnd_steps: 1,
                ..Rack::default()
            },
            total_retrans: 0,
            bytes_acked: 0,
            bytes_sent: 0,
            bytes_retrans: 0,
            segs_out: 0,
            data_segs_out: 0,
            dsack_dups: 0,
            app_limited: u32::MAX,
            rate_app_limited: true,
            first_tx_mstamp: 0,
            delivered_mstamp: 0,
            tcp_wstamp: 0,
            pacing_rate_set: 0,
            srtt_us: 0,
            mdev_us: jiffies_to_usecs(TCP_TIMEOUT_INIT) as u32,
            mdev_max_us: 0,
            rttvar_us: 0,
            rtt_seq: 0,
            rtt_min: MinMax {
                s: [(0, u32::MAX); 3],
            },
            linger2: 0,
            repair: false,
            rcv_nxt: 0,
            copied_seq: 0,
            rcv_wup: 0,
            rcv_wnd: 0,
            rcv_ssthresh: 0,
            window_clamp: 0,
            scaling_ratio: TCP_DEFAULT_SCALING_RATIO,
            urg_data: 0,
            urg_seq: 0,
            rcv_rtt_est_rtt_us: 0,
            rcv_rtt_est_seq: 0,
            rcv_rtt_est_time: 0,
            rcvq_space_space: 0,
            rcvq_space_seq: 0,
            rcvq_space_time: 0,
            rcv_rtt_last_tsecr: 0,
            pred_flags: 0,
            selective_acks: [SackBlock::default(); 4],
            duplicate_sack: SackBlock::default(),
            last_oow_ack_time: 0,
            compressed_ack: 0,
            compressed_ack_rcv_nxt: 0,
            dup_ack_counter: 0,
            bytes_received: 0,
            segs_in: 0,
            data_segs_in: 0,
            rcv_ooopack: 0,
            ooo_last: None,
            ts_recent_stamp: 0,
            ts_recent: 0,
            rcv_tsval: 0,
            rcv_tsecr: 0,
            saw_tstamp: false,
            tstamp_ok: false,
            dsack: false,
            wscale_ok: false,
            sack_ok: false,
            snd_wscale: 0,
            rcv_wscale: 0,
            num_sacks: 0,
            user_mss: 0,
            mss_clamp: 536,
            tsoffset: 0,
            iss: 0,
            irs: 0,
        }
    }

    // ---- include/net/tcp.h helpers ----

    /// `tcp_packets_in_flight`.
    pub fn packets_in_flight(&self) -> u32 {
        self.packets_out
            .saturating_sub(self.sacked_out + self.lost_out)
            .saturating_add(self.retrans_out)
    }
    /// `tcp_left_out`.
    pub fn left_out(&self) -> u32 {
        self.sacked_out + self.lost_out
    }
    /// `tcp_is_sack`.
    pub fn is_sack(&self) -> bool {
        self.sack_ok
    }
    pub fn is_reno(&self) -> bool {
        !self.sack_ok
    }
    /// `tcp_wnd_end`.
    pub fn wnd_end(&self) -> u32 {
        self.snd_una.wrapping_add(self.snd_wnd)
    }
    /// `tcp_receive_window`.
    pub fn receive_window(&self) -> u32 {
        let win = self
            .rcv_wup
            .wrapping_add(self.rcv_wnd)
            .wrapping_sub(self.rcv_nxt) as i32;
        win.max(0) as u32
    }
    /// `tcp_win_from_space`.
    pub fn win_from_space(&self, space: i64) -> i64 {
        (space * self.scaling_ratio as i64) >> TCP_RMEM_TO_WIN_SCALE
    }
    /// `tcp_space_from_win`.
    pub fn space_from_win(&self, win: u64) -> u64 {
        (win << TCP_RMEM_TO_WIN_SCALE) / self.scaling_ratio.max(1) as u64
    }
    /// `tcp_space` (the backlog is always empty here).
    pub fn space(&self) -> i64 {
        self.win_from_space(self.rcvbuf as i64 - self.rmem_alloc as i64)
    }
    /// `tcp_full_space`.
    pub fn full_space(&self) -> i64 {
        self.win_from_space(self.rcvbuf as i64)
    }
    /// `tcp_urg_mode`.
    pub fn urg_mode(&self) -> bool {
        self.snd_una != self.snd_up
    }
    /// `tcp_in_slow_start`.
    pub fn in_slow_start(&self) -> bool {
        self.snd_cwnd < self.snd_ssthresh
    }
    /// `tcp_in_cwnd_reduction`.
    pub fn in_cwnd_reduction(&self) -> bool {
        matches!(self.ca_state, CaState::Cwr | CaState::Recovery)
    }
    /// `tcp_current_ssthresh`.
    pub fn current_ssthresh(&self) -> u32 {
        if self.in_cwnd_reduction() {
            self.snd_ssthresh
        } else {
            self.snd_ssthresh
                .max((self.snd_cwnd >> 1) + (self.snd_cwnd >> 2))
        }
    }
    /// `tcp_is_cwnd_limited`.
    pub fn is_cwnd_limited_fn(&self) -> bool {
        if self.is_cwnd_limited {
            return true;
        }
        if self.in_slow_start() {
            return self.snd_cwnd < 2 * self.max_packets_out;
        }
        false
    }
    /// `tcp_write_queue_empty`: nothing unsent.
    pub fn write_queue_empty(&self) -> bool {
        self.write_seq == self.snd_nxt
    }
    /// `tcp_rtx_and_write_queues_empty`.
    pub fn rtx_and_write_queues_empty(&self) -> bool {
        self.rtx_queue.is_empty() && self.write_queue.is_empty()
    }
    /// `inet_csk_ack_scheduled`.
    pub fn ack_scheduled(&self) -> bool {
        self.ack_pending & ICSK_ACK_SCHED != 0
    }
    /// `inet_csk_in_pingpong_mode` (tcp_pingpong_thresh is 1).
    pub fn in_pingpong_mode(&self, thresh: u32) -> bool {
        self.ack_pingpong >= thresh
    }
    /// `tcp_in_quickack_mode` (no `dst_quick_ack` route here).
    pub fn in_quickack_mode(&self, thresh: u32) -> bool {
        self.ack_quick > 0 && !self.in_pingpong_mode(thresh)
    }
    /// `tcp_bound_to_half_wnd`.
    pub fn bound_to_half_wnd(&self, pktsize: u32) -> u32 {
        let cutoff = if self.max_window > TCP_MSS_DEFAULT {
            self.max_window >> 1
        } else {
            self.max_window
        };
        if cutoff > 0 && pktsize > cutoff {
            cutoff.max(68 - self.tcp_header_len)
        } else {
            pktsize
        }
    }
    /// `tcp_probe0_base`.
    pub fn probe0_base(&self) -> Jiffies {
        self.rto.max(TCP_RTO_MIN)
    }
    /// `tcp_probe0_when`.
    pub fn probe0_when(&self, max_when: Jiffies) -> Jiffies {
        // ilog2(TCP_RTO_MAX / TCP_RTO_MIN) + 1
        let cap = (63 - (TCP_RTO_MAX / TCP_RTO_MIN).leading_zeros() as u64) + 1;
        let backoff = (self.backoff as u64).min(cap);
        (self.probe0_base() << backoff).min(max_when)
    }
    /// `inet_csk_rto_backoff`.
    pub fn rto_backoff(&self, max_when: Jiffies) -> Jiffies {
        let when = (self.rto as u128) << self.backoff.min(63);
        (when.min(max_when as u128)) as Jiffies
    }
    /// Unread payload bytes (rcv_nxt - copied_seq without a FIN), for
    /// reports.
    pub fn unread(&self) -> u32 {
        // Queued skbs may overlap (a retransmission that covers bytes
        // already queued keeps its head): count each byte once.
        let mut n: u32 = 0;
        let mut covered = self.copied_seq;
        for skb in &self.receive_queue {
            let start = if after(covered, skb.seq) {
                covered
            } else {
                skb.seq
            };
            let end = skb.seq.wrapping_add(skb.len());
            if after(end, start) {
                n += end.wrapping_sub(start);
                covered = end;
            }
        }
        n
    }
    /// `tcp_minshall_check`.
    pub fn minshall_check(&self) -> bool {
        after(self.snd_sml, self.snd_una) && !after(self.snd_sml, self.snd_nxt)
    }
}

/// `MAX_TCP_KEEPIDLE`, `MAX_TCP_KEEPINTVL`, `MAX_TCP_KEEPCNT` and
/// `MAX_TCP_SYNCNT` (include/net/tcp.h): the ranges do_tcp_setsockopt takes.
pub const MAX_TCP_KEEPIDLE: i32 = 32767;
pub const MAX_TCP_KEEPINTVL: i32 = 32767;
pub const MAX_TCP_KEEPCNT: i32 = 127;
pub const MAX_TCP_SYNCNT: i32 = 127;

/// `keepalive_time_when`: the socket's TCP_KEEPIDLE, else the sysctl.
pub fn keepalive_time_when(s: &Sock, sys: &crate::vocab::Sysctls) -> Jiffies {
    if s.keepalive_time != 0 {
        s.keepalive_time
    } else {
        sys.tcp_keepalive_time
    }
}

/// `keepalive_intvl_when`.
pub fn keepalive_intvl_when(s: &Sock, sys: &crate::vocab::Sysctls) -> Jiffies {
    if s.keepalive_intvl != 0 {
        s.keepalive_intvl
    } else {
        sys.tcp_keepalive_intvl
    }
}

/// `keepalive_probes`.
pub fn keepalive_probes(s: &Sock, sys: &crate::vocab::Sysctls) -> u32 {
    if s.keepalive_probes != 0 {
        s.keepalive_probes as u32
    } else {
        sys.tcp_keepalive_probes
    }
}

/// `keepalive_time_elapsed`: jiffies since the last segment came in (the
/// later of `icsk_ack.lrcvtime` and `rcv_tstamp`).
pub fn keepalive_time_elapsed(s: &Sock, now_j: Jiffies) -> Jiffies {
    now_j
        .saturating_sub(s.ack_lrcvtime)
        .min(now_j.saturating_sub(s.rcv_tstamp))
}
