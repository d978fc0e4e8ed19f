//! The `.sim` printer: a [`Script`] back as text that [`super::parse`]
//! reads into the same steps. The [`super::Scenario`] builder goes through
//! it, and `fuzz` writes what it shrank with it.

use super::*;
use std::fmt::{self, Display, Formatter};

/// A duration in the largest unit that says it exactly (`61s`, `500ms`,
/// `20us`).
pub fn duration(us: u64) -> String {
    if us.is_multiple_of(1_000_000) {
        format!("{}s", us / 1_000_000)
    } else if us.is_multiple_of(1_000) {
        format!("{}ms", us / 1_000)
    } else {
        format!("{us}us")
    }
}

/// Bytes as a quoted string: printable ASCII as itself, the rest escaped
/// (`\n`, `\"`, `\xNN`).
fn quoted(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() + 2);
    s.push('"');
    for &c in b {
        match c {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push('"');
    s
}

/// ` MSG_OOB MSG_DONTWAIT` after a call's arguments in a script.
fn flag_words(f: &MsgFlags) -> String {
    f.names().map(|n| format!(" {n}")).collect()
}

impl Display for Call {
    /// The call as a script writes it: `listen 9999 backlog 5`,
    /// `send "ab" MSG_OOB`, `setsockopt SO_LINGER {1, 0}`.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Call::Socket => f.write_str("socket"),
            Call::Listen { port, backlog } => {
                write!(f, "listen {port}")?;
                if *backlog != DEFAULT_BACKLOG {
                    write!(f, " backlog {backlog}")?;
                }
                Ok(())
            }
            Call::Connect {
                host,
                port,
                from_port,
                nonblock,
            } => {
                write!(f, "connect {host}:{port}")?;
                if let Some(p) = from_port {
                    write!(f, " from {p}")?;
                }
                if *nonblock {
                    f.write_str(" O_NONBLOCK")?;
                }
                Ok(())
            }
            Call::Accept => f.write_str("accept"),
            Call::Send { data, flags } => {
                match data {
                    Data::Count(n) => write!(f, "send {n}")?,
                    Data::Bytes(b) => write!(f, "send {}", quoted(b))?,
                }
                f.write_str(&flag_words(flags))
            }
            Call::Recv { len, flags } => write!(f, "recv {len}{}", flag_words(flags)),
            Call::Shutdown(h) => write!(f, "shutdown {}", h.name()),
            Call::Close => f.write_str("close"),
            Call::Exit => f.write_str("exit"),
            Call::Poll { interest } => {
                f.write_str("poll")?;
                if *interest != epoll::ALL {
                    write!(f, " {}", epoll::names(*interest))?;
                }
                Ok(())
            }
            Call::SetSockOpt(o) => {
                f.write_str("setsockopt ")?;
                match o {
                    SockOpt::Linger { on, secs } => {
                        write!(f, "SO_LINGER {{{}, {secs}}}", *on as u8)
                    }
                    SockOpt::RcvBuf(n) => write!(f, "SO_RCVBUF {n}"),
                    SockOpt::SndBuf(n) => write!(f, "SO_SNDBUF {n}"),
                    SockOpt::OobInline(b) => write!(f, "SO_OOBINLINE {}", *b as u8),
                    SockOpt::NoDelay(b) => write!(f, "TCP_NODELAY {}", *b as u8),
                    SockOpt::Repair(b) => write!(f, "TCP_REPAIR {}", *b as u8),
                    SockOpt::Linger2(n) => write!(f, "TCP_LINGER2 {n}"),
                    SockOpt::UserTimeout(n) => write!(f, "TCP_USER_TIMEOUT {n}"),
                    SockOpt::KeepAlive(b) => write!(f, "SO_KEEPALIVE {}", *b as u8),
                    SockOpt::KeepIdle(n) => write!(f, "TCP_KEEPIDLE {n}"),
                    SockOpt::KeepIntvl(n) => write!(f, "TCP_KEEPINTVL {n}"),
                    SockOpt::KeepCnt(n) => write!(f, "TCP_KEEPCNT {n}"),
                    SockOpt::SynCnt(n) => write!(f, "TCP_SYNCNT {n}"),
                    SockOpt::Inq(b) => write!(f, "TCP_INQ {}", *b as u8),
                }
            }
            Call::GetSockOpt(o) => write!(f, "getsockopt {}", o.name()),
            Call::Disconnect => f.write_str("disconnect"),
            Call::Ioctl(r) => write!(f, "ioctl {}", r.name()),
        }
    }
}

impl Display for CallStep {
    /// `server.lsn accept as c = 4`.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(&self.host)?;
        if let Some(s) = &self.sock {
            write!(f, ".{s}")?;
        }
        write!(f, " {}", self.call)?;
        if let Some(n) = &self.name_as {
            write!(f, " as {n}")?;
        }
        if let Some(e) = &self.expected {
            write!(f, " = {e}")?;
        }
        Ok(())
    }
}

impl Display for Expect {
    /// The expectation without the leading `expect`.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Segment {
                negated,
                src,
                dst,
                flags,
                seq,
                ack,
                win,
                len,
            } => {
                if *negated {
                    f.write_str("no ")?;
                }
                write!(f, "{src} > {dst} {}", flags.tcpdump())?;
                for (name, v) in [
                    ("seq", seq.map(u64::from)),
                    ("ack", ack.map(u64::from)),
                    ("win", win.map(u64::from)),
                    ("len", len.map(u64::from)),
                ] {
                    if let Some(v) = v {
                        write!(f, " {name} {v}")?;
                    }
                }
                Ok(())
            }
            Expect::State { host, sock, state } => {
                f.write_str(host)?;
                if let Some(s) = sock {
                    write!(f, ".{s}")?;
                }
                write!(f, " state {state}")
            }
            Expect::Counter { host, name, value } => write!(f, "{host} {name} = {value}"),
        }
    }
}

impl Display for Fault {
    /// The fault's verb and arguments (`drop 2`, `delay 300ms`, `hold`).
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Drop { count } => write!(f, "drop {count}"),
            Fault::Delay { us, count } => write!(f, "delay {} {count}", duration(*us)),
            Fault::Hold { count: None } => f.write_str("hold"),
            Fault::Hold { count: Some(n) } => write!(f, "hold {n}"),
        }
    }
}

/// Writes `steps` at `depth` levels of indentation. Blocks are written
/// with an explicit stack (scripts nest `repeat` as deep as their authors
/// like).
fn write_steps(f: &mut Formatter<'_>, steps: &[Step]) -> fmt::Result {
    let mut stack: Vec<(std::slice::Iter<'_, Step>, usize)> = vec![(steps.iter(), 0)];
    while let Some((it, depth)) = stack.last_mut() {
        let depth = *depth;
        let Some(step) = it.next() else {
            stack.pop();
            if let Some((_, d)) = stack.last() {
                writeln!(f, "{:w$}}}", "", w = 2 * d)?;
            }
            continue;
        };
        let pad = 2 * depth;
        match &step.kind {
            StepKind::Call(c) => writeln!(f, "{:pad$}{c}", "")?,
            StepKind::Wait { us } => writeln!(f, "{:pad$}wait {}", "", duration(*us))?,
            StepKind::Sysctl { host, key, value } => {
                writeln!(f, "{:pad$}{host} sysctl {key} = {value}", "")?
            }
            StepKind::Fault { host, fault } => writeln!(f, "{:pad$}{host} {fault}", "")?,
            StepKind::Release { host } => writeln!(f, "{:pad$}{host} release", "")?,
            StepKind::Expect(e) => writeln!(f, "{:pad$}expect {e}", "")?,
            StepKind::Together(inner) => {
                writeln!(f, "{:pad$}together {{", "")?;
                stack.push((inner.iter(), depth + 1));
            }
            StepKind::Repeat { count, steps } => {
                writeln!(f, "{:pad$}repeat {count} {{", "")?;
                stack.push((steps.iter(), depth + 1));
            }
            StepKind::When { policy, steps } => {
                writeln!(f, "{:pad$}when policy {policy} {{", "")?;
                stack.push((steps.iter(), depth + 1));
            }
        }
    }
    Ok(())
}

impl Display for Script {
    /// The whole script as `.sim` text: title, description, hosts,
    /// horizon, then the steps.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if !self.title.is_empty() {
            writeln!(f, "title {}", self.title)?;
        }
        for d in &self.description {
            writeln!(f, "description {d}")?;
        }
        writeln!(f, "hosts {}", self.hosts.join(" "))?;
        if let Some(h) = self.horizon_us {
            writeln!(f, "horizon {}", duration(h))?;
        }
        write_steps(f, &self.steps)
    }
}
