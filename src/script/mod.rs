//! Scenario scripts: the `.sim` language.
//!
//! A script reads like a packetdrill test turned into a conversation between
//! hosts. Every line is one of:
//!
//! ```text
//! # a comment (also after a step)
//! title seed 000: the client never reads, close() sends RST
//! description  free text, may repeat
//! hosts client server               # the hosts, in address order
//! horizon 300s                      # stop the run here at the latest
//!
//! server listen 9999                # HOST[.SOCKET] CALL ARGS [= RESULT]
//! client connect server:9999 = 0
//! server accept = 4
//! server poll = EPOLLOUT
//! server send "1" = 1
//! client setsockopt SO_LINGER {1, 0}
//! client close = 0
//! server recv 10 = -1 ECONNRESET
//! server sysctl net.ipv4.tcp_fin_timeout = 5
//! wait 61s
//! together {                        # these calls happen at one instant
//!   client close
//!   server close
//! }
//! repeat 1000 {                     # the steps inside, 1000 times over
//!   client send 65536 MSG_DONTWAIT   # (blocks nest; `together` inside
//!   server recv 65536 MSG_DONTWAIT   # `repeat`, not the other way)
//! }
//! client drop 2                     # faults on the next segments from a host
//! client delay 300ms
//! client hold
//! client release
//! expect client > server R. seq 1 ack 2      # a segment sent since the last step
//! expect no client > server F.
//! expect client state TIME_WAIT
//! expect client TCPAbortOnClose = 1
//! when policy always-fin {          # checked only under --policy always-fin
//!   expect client > server F.
//! }
//! ```
//!
//! [`parse`] turns text into a [`Script`]; every error carries
//! `file:line:col`, the offending text and what was expected.

mod builder;
mod parse;
mod print;

pub use builder::Scenario;
pub use parse::{LoadError, ScriptError, parse, parse_duration, parse_file};
pub use print::duration as duration_text;

/// `listen`'s backlog when the script gives none (a common server's
/// `listen(fd, 128)`).
pub const DEFAULT_BACKLOG: u32 = 128;

use crate::segment::Flags;
use crate::vocab::{Counter, Errno, Policy, Sysctl, TcpState};

/// A parsed scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Script {
    /// The file it came from (for messages).
    pub path: String,
    /// The `title` line (empty if none).
    pub title: String,
    pub description: Vec<String>,
    /// Host names in declaration order; host `i` has address 10.0.0.(i+1).
    pub hosts: Vec<String>,
    /// `horizon` directive, microseconds of virtual time.
    pub horizon_us: Option<u64>,
    pub steps: Vec<Step>,
}

impl Script {
    /// The scenario name: the file name without directory and `.sim`.
    pub fn name(&self) -> String {
        let base = self.path.rsplit('/').next().unwrap_or(&self.path);
        base.strip_suffix(".sim").unwrap_or(base).to_string()
    }

    /// The index of a host by name.
    pub fn host_index(&self, name: &str) -> Option<usize> {
        self.hosts.iter().position(|h| h == name)
    }
}

/// One step, with where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub line: u32,
    pub col: u32,
    /// The source line, trimmed, without its comment.
    pub text: String,
    pub kind: StepKind,
}

#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub enum StepKind {
    /// A socket call by a host's program.
    Call(CallStep),
    /// Let virtual (or real) time pass.
    Wait {
        us: u64,
    },
    /// Calls made at the same instant: nothing is delivered between them.
    Together(Vec<Step>),
    /// `repeat N { ... }`: the steps, N times over (bulk experiments
    /// without a script that grows with them).
    Repeat {
        count: u32,
        steps: Vec<Step>,
    },
    /// `when policy NAME { ... }`: expectations checked only when the run
    /// follows that close policy (`--policy`); the run itself is the same.
    When {
        policy: Policy,
        steps: Vec<Step>,
    },
    /// A host's sysctl, e.g. `net.ipv4.tcp_fin_timeout`.
    Sysctl {
        host: String,
        key: Sysctl,
        value: String,
    },
    /// A fault on the next segments a host sends.
    Fault {
        host: String,
        fault: Fault,
    },
    /// Release the segments held from a host.
    Release {
        host: String,
    },
    Expect(Expect),
}

/// How many steps a run of `steps` makes, `repeat` blocks unrolled (a
/// `together` block counts as one).
pub fn step_count(steps: &[Step]) -> u64 {
    steps
        .iter()
        .map(|s| match &s.kind {
            StepKind::Repeat { count, steps } => (*count as u64).saturating_mul(step_count(steps)),
            StepKind::When { steps, .. } => steps.len() as u64,
            _ => 1,
        })
        .fold(0u64, u64::saturating_add)
}

#[derive(Clone, Debug, PartialEq)]
pub struct CallStep {
    pub host: String,
    /// `HOST.SOCKET`; `None` means the default socket for the call.
    pub sock: Option<String>,
    pub call: Call,
    /// `as NAME` on socket/listen/connect/accept.
    pub name_as: Option<String>,
    pub expected: Option<Expected>,
}

#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    Socket,
    Listen {
        port: u16,
        backlog: u32,
    },
    Connect {
        host: String,
        port: u16,
        from_port: Option<u16>,
        /// `O_NONBLOCK`: return EINPROGRESS instead of waiting for the
        /// handshake.
        nonblock: bool,
    },
    Accept,
    Send {
        data: Data,
        flags: MsgFlags,
    },
    Recv {
        len: u32,
        flags: MsgFlags,
    },
    Shutdown(How),
    Close,
    /// The process dies: every descriptor of the host closes, no lingering.
    Exit,
    /// epoll: which events are ready now (interest mask; all if empty).
    Poll {
        interest: u32,
    },
    SetSockOpt(SockOpt),
    /// `getsockopt`: what the kernel reports about a socket, as `ss -mi`
    /// would show it (`SO_MEMINFO`, a deterministic subset of `TCP_INFO`).
    GetSockOpt(GetOpt),
    /// `connect(AF_UNSPEC)`: `tcp_disconnect`.
    Disconnect,
    /// `ioctl`: a number the kernel reports about a socket, as the result.
    Ioctl(Ioctl),
}

impl Call {
    /// The call's name as written in scripts.
    pub fn verb(&self) -> &'static str {
        match self {
            Call::Socket => "socket",
            Call::Listen { .. } => "listen",
            Call::Connect { .. } => "connect",
            Call::Accept => "accept",
            Call::Send { .. } => "send",
            Call::Recv { .. } => "recv",
            Call::Shutdown(_) => "shutdown",
            Call::Close => "close",
            Call::Exit => "exit",
            Call::Poll { .. } => "poll",
            Call::SetSockOpt(_) => "setsockopt",
            Call::GetSockOpt(_) => "getsockopt",
            Call::Disconnect => "disconnect",
            Call::Ioctl(_) => "ioctl",
        }
    }

    /// How the call is shown in traces: `send(1, MSG_OOB)`, `close()`.
    pub fn display(&self) -> String {
        match self {
            Call::Socket => "socket()".into(),
            Call::Listen { port, backlog } => format!("listen({port}, backlog {backlog})"),
            Call::Connect {
                host,
                port,
                nonblock,
                ..
            } => format!(
                "connect({host}:{port}{})",
                if *nonblock { ", O_NONBLOCK" } else { "" }
            ),
            Call::Accept => "accept()".into(),
            Call::Send { data, flags } => {
                let d = match data {
                    Data::Count(n) => n.to_string(),
                    Data::Bytes(b) => format!("{:?}", String::from_utf8_lossy(b)),
                };
                format!("send({d}{})", flags.suffix())
            }
            Call::Recv { len, flags } => format!("recv({len}{})", flags.suffix()),
            Call::Shutdown(h) => format!("shutdown({})", h.name()),
            Call::Close => "close()".into(),
            Call::Exit => "exit()".into(),
            Call::Poll { .. } => "epoll_wait()".into(),
            Call::SetSockOpt(o) => format!("setsockopt({})", o.display()),
            Call::GetSockOpt(o) => format!("getsockopt({})", o.name()),
            Call::Disconnect => "connect(AF_UNSPEC)".into(),
            Call::Ioctl(r) => format!("ioctl({})", r.name()),
        }
    }
}

/// What `send` writes: a byte count (filled with a fixed pattern) or bytes.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    Count(u32),
    Bytes(Vec<u8>),
}

impl Data {
    pub fn len(&self) -> usize {
        match self {
            Data::Count(n) => *n as usize,
            Data::Bytes(b) => b.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The bytes: a count becomes a repeating `a..z` pattern so that every
    /// engine sends the same payload.
    pub fn bytes(&self) -> Vec<u8> {
        self.range(0, self.len())
    }

    /// Bytes `start..start + len` of the data, without building the rest.
    pub fn range(&self, start: usize, len: usize) -> Vec<u8> {
        match self {
            Data::Count(_) => {
                const AZ: &[u8; 26] = b"abcdefghijklmnopqrstuvwxyz";
                let mut v = Vec::with_capacity(len);
                let mut i = start;
                while v.len() < len {
                    let k = i % 26;
                    let n = (26 - k).min(len - v.len());
                    v.extend_from_slice(&AZ[k..k + n]);
                    i += n;
                }
                v
            }
            Data::Bytes(b) => b[start.min(b.len())..(start + len).min(b.len())].to_vec(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MsgFlags {
    pub oob: bool,
    pub nosignal: bool,
    pub peek: bool,
    pub dontwait: bool,
}

impl MsgFlags {
    /// The names of the flags set, in the order traces and scripts write
    /// them.
    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        [
            (self.oob, "MSG_OOB"),
            (self.peek, "MSG_PEEK"),
            (self.dontwait, "MSG_DONTWAIT"),
            (self.nosignal, "MSG_NOSIGNAL"),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| name)
    }

    /// `, MSG_OOB|MSG_DONTWAIT` after a call's arguments in a trace.
    fn suffix(&self) -> String {
        let names: Vec<&str> = self.names().collect();
        if names.is_empty() {
            String::new()
        } else {
            format!(", {}", names.join("|"))
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum How {
    Rd,
    Wr,
    RdWr,
}

impl How {
    pub fn name(self) -> &'static str {
        match self {
            How::Rd => "SHUT_RD",
            How::Wr => "SHUT_WR",
            How::RdWr => "SHUT_RDWR",
        }
    }
}

#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SockOpt {
    Linger {
        on: bool,
        secs: i32,
    },
    RcvBuf(i32),
    SndBuf(i32),
    OobInline(bool),
    NoDelay(bool),
    Repair(bool),
    Linger2(i32),
    /// `TCP_USER_TIMEOUT`, in ms (0: the system's retry limits).
    UserTimeout(i32),
    /// `SO_KEEPALIVE`.
    KeepAlive(bool),
    /// `TCP_KEEPIDLE`, in seconds.
    KeepIdle(i32),
    /// `TCP_KEEPINTVL`, in seconds.
    KeepIntvl(i32),
    /// `TCP_KEEPCNT`: unanswered probes before giving up.
    KeepCnt(i32),
    /// `TCP_SYNCNT`: SYN retransmissions before giving up.
    SynCnt(i32),
    /// `TCP_INQ`: recvmsg reports the bytes left (a control message).
    Inq(bool),
}

impl SockOpt {
    pub fn display(&self) -> String {
        match self {
            SockOpt::Linger { on, secs } => format!("SO_LINGER, {{{}, {secs}}}", *on as i32),
            SockOpt::RcvBuf(n) => format!("SO_RCVBUF, {n}"),
            SockOpt::SndBuf(n) => format!("SO_SNDBUF, {n}"),
            SockOpt::OobInline(b) => format!("SO_OOBINLINE, {}", *b as i32),
            SockOpt::NoDelay(b) => format!("TCP_NODELAY, {}", *b as i32),
            SockOpt::Repair(b) => format!("TCP_REPAIR, {}", *b as i32),
            SockOpt::Linger2(n) => format!("TCP_LINGER2, {n}"),
            SockOpt::UserTimeout(n) => format!("TCP_USER_TIMEOUT, {n}"),
            SockOpt::KeepAlive(b) => format!("SO_KEEPALIVE, {}", *b as i32),
            SockOpt::KeepIdle(n) => format!("TCP_KEEPIDLE, {n}"),
            SockOpt::KeepIntvl(n) => format!("TCP_KEEPINTVL, {n}"),
            SockOpt::KeepCnt(n) => format!("TCP_KEEPCNT, {n}"),
            SockOpt::SynCnt(n) => format!("TCP_SYNCNT, {n}"),
            SockOpt::Inq(b) => format!("TCP_INQ, {}", *b as i32),
        }
    }
}

/// What `getsockopt` asks for.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum GetOpt {
    /// `SO_MEMINFO`: `sk_rmem_alloc`, `sk_rcvbuf`, `sk_wmem_queued`,
    /// `sk_sndbuf`, `sk_forward_alloc` (`sk_get_meminfo`).
    MemInfo,
    /// `TCP_INFO` (`tcp_get_info`): the fields that do not depend on
    /// timing (state, windows, MSS, counts), not RTTs or timestamps.
    TcpInfo,
}

impl GetOpt {
    pub fn name(self) -> &'static str {
        match self {
            GetOpt::MemInfo => "SO_MEMINFO",
            GetOpt::TcpInfo => "TCP_INFO",
        }
    }
}

/// What `ioctl` asks for.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Ioctl {
    /// `SIOCINQ` (`FIONREAD`): the bytes a read would return (`tcp_inq`).
    InQ,
}

impl Ioctl {
    pub fn name(self) -> &'static str {
        match self {
            Ioctl::InQ => "SIOCINQ",
        }
    }
}

/// epoll event bits, as in `<sys/epoll.h>`.
pub mod epoll {
    pub const EPOLLIN: u32 = 0x001;
    pub const EPOLLPRI: u32 = 0x002;
    pub const EPOLLOUT: u32 = 0x004;
    pub const EPOLLERR: u32 = 0x008;
    pub const EPOLLHUP: u32 = 0x010;
    pub const EPOLLRDHUP: u32 = 0x2000;
    pub const ALL: u32 = EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLRDHUP;
    pub const NAMES: [(&str, u32); 6] = [
        ("EPOLLIN", EPOLLIN),
        ("EPOLLPRI", EPOLLPRI),
        ("EPOLLOUT", EPOLLOUT),
        ("EPOLLERR", EPOLLERR),
        ("EPOLLHUP", EPOLLHUP),
        ("EPOLLRDHUP", EPOLLRDHUP),
    ];

    /// `EPOLLIN|EPOLLOUT`, or `0` for none.
    pub fn names(mask: u32) -> String {
        let v: Vec<&str> = NAMES
            .iter()
            .filter(|(_, b)| mask & b != 0)
            .map(|(n, _)| *n)
            .collect();
        if v.is_empty() {
            "0".into()
        } else {
            v.join("|")
        }
    }
}

/// The result a script expects from a call.
#[derive(Clone, Debug, PartialEq)]
pub enum Expected {
    /// `= 1`, `= 0`
    Value(i64),
    /// `= -1 ECONNRESET`
    Errno(Errno),
    /// `= EPOLLIN|EPOLLOUT` (for `poll`)
    Events(u32),
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expected::Value(v) => write!(f, "{v}"),
            Expected::Errno(e) => write!(f, "-1 {e}"),
            Expected::Events(m) => write!(f, "{}", epoll::names(*m)),
        }
    }
}

#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub enum Expect {
    /// A segment sent since the previous step began (or, negated, none).
    Segment {
        negated: bool,
        src: String,
        dst: String,
        flags: Flags,
        seq: Option<u32>,
        ack: Option<u32>,
        win: Option<u16>,
        len: Option<u32>,
    },
    /// The TCP state of a host's socket (`CLOSE` once it is gone).
    State {
        host: String,
        sock: Option<String>,
        state: TcpState,
    },
    /// A TcpExt counter's change since the run began.
    Counter {
        host: String,
        name: Counter,
        value: i64,
    },
}

#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Lose the next `count` segments.
    Drop { count: u32 },
    /// Deliver the next `count` segments `us` later than normal.
    Delay { us: u64, count: u32 },
    /// Keep the next `count` segments (all, if `None`) until `release`.
    Hold { count: Option<u32> },
}
