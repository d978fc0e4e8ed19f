//! The real-kernel host of a `--engine smoltcp-tap` pair, run by the linux
//! engine's host machinery ([`crate::linux::host`]): a forked child in an
//! unnamed network namespace, with the same sysctl defaults, performs the
//! socket calls; the child creates the TAP device in its namespace and
//! hands its descriptor back over SCM_RIGHTS ([`Link::Tap`]); counters and
//! the connections left come from the same /proc readers
//! ([`crate::linux::states`]). Nothing is named, so nothing global is left
//! behind (see "Cleanup" in [`crate::linux`]).
//!
//! What is here is only the pair's view of that host: the script's socket
//! names and their 4-tuples, and the program's answers in the terms this
//! engine gives them (a call still blocked when the engine stops waiting,
//! SIGPIPE's note, getsockopt not offered).

use crate::engine::{CallCtx, CallOutcome};
use crate::linux::host::{self, Cmd, HostProc, Link, Reply};
use crate::linux::states::{self, state_name};
use crate::script::{Call, GetOpt, SockOpt};
use crate::vocab::{Counter, Errno, Sysctl, TcpState};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

/// How long a command that does not block (a sysctl, a state query) may
/// take to be answered.
const QUICK: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct KSock {
    /// The program holds a descriptor under this name.
    held: bool,
    /// A listener's port (the local port of what it accepts).
    listen_port: Option<u16>,
    /// (local port, remote addr, remote port) once connected, kept to find
    /// the connection in `/proc/<pid>/net/tcp` after close().
    ends: Option<(u16, Ipv4Addr, u16)>,
    /// SO_LINGER's seconds when on: how long close() may block.
    linger: u64,
}

/// The kernel host: its program, and its sockets by script name.
pub struct KernelHost {
    proc: HostProc,
    netns: OwnedFd,
    pub addr: Ipv4Addr,
    /// The bound on one blocking call (SO_RCVTIMEO/SO_SNDTIMEO).
    bound: Duration,
    socks: BTreeMap<String, KSock>,
    netstat_start: BTreeMap<Counter, i64>,
}

impl KernelHost {
    /// Forks the host's program in a new namespace with `addr` on a TAP
    /// device; returns the host and the TAP's descriptor.
    pub fn spawn(addr: Ipv4Addr, bound: Duration) -> Result<(KernelHost, OwnedFd), String> {
        let h = host::spawn_new(addr, Link::Tap, false, bound, host::Dev::default())?;
        let mut k = KernelHost {
            proc: h.proc,
            netns: h.netns,
            addr,
            bound,
            socks: BTreeMap::new(),
            netstat_start: BTreeMap::new(),
        };
        k.netstat_start = k.netstat();
        Ok((k, h.tun))
    }

    /// Sends a call to the program. `Err` is the outcome of a call
    /// answered without it.
    pub fn start(&mut self, name: &str, call: &Call, ctx: &CallCtx) -> Result<(), CallOutcome> {
        let n = name.to_string();
        let cmd = match call {
            Call::Exit => unreachable!("exit is KernelHost::exit"),
            Call::Listen { port, backlog } => Cmd::Listen {
                name: n,
                addr: Ipv4Addr::UNSPECIFIED.octets(),
                port: *port,
                backlog: *backlog,
            },
            Call::Connect { port, .. } => {
                let (Some(peer), Some(lport)) = (ctx.peer_addr, ctx.local_port) else {
                    return Err(CallOutcome::err(Errno::ENETUNREACH));
                };
                // A socket disconnected with connect(AF_UNSPEC) keeps its
                // port (the program binds only once).
                let lport = self
                    .socks
                    .get(name)
                    .and_then(|s| s.ends)
                    .map_or(lport, |e| e.0);
                // Always a blocking connect: the engine moves the network
                // on while it waits.
                Cmd::Connect {
                    name: n,
                    laddr: self.addr.octets(),
                    lport,
                    raddr: peer.octets(),
                    rport: *port,
                    nonblock: false,
                }
            }
            Call::Poll { interest } => Cmd::Poll {
                name: n,
                interest: if *interest == 0 {
                    crate::script::epoll::ALL
                } else {
                    *interest
                },
            },
            Call::GetSockOpt(o) => {
                return Err(CallOutcome::unsupported(
                    "the TAP pair's kernel host",
                    &format!("getsockopt {}", o.name()),
                ));
            }
            _ => Cmd::for_call(n, call, ctx.new_name.as_deref())
                .expect("every other call is a plain command"),
        };
        self.proc
            .send(&cmd)
            .map_err(|e| failure(format!("{} to the kernel host: {e}", call.verb())))
    }

    /// Whether the program has answered the call it was sent.
    pub fn answer_ready(&self) -> bool {
        self.proc.answer_ready()
    }

    /// How long the answer to a call on `name` may take: the bound, or a
    /// lingering close's time, and then some.
    pub fn answer_timeout(&self, name: &str) -> Duration {
        let linger = self.socks.get(name).map_or(0, |s| s.linger);
        self.bound.max(Duration::from_secs(linger)) + QUICK
    }

    /// Takes the program's answer to a call sent with [`Self::start`].
    pub fn finish(&mut self, name: &str, call: &Call, ctx: &CallCtx) -> CallOutcome {
        match self.proc.recv(Duration::from_millis(1)) {
            Ok(r) => self.outcome(name, call, ctx, r),
            Err(e) => failure(format!("{}: {e}", call.verb())),
        }
    }

    /// The answer in the script's terms, and what it tells about the
    /// socket's name.
    fn outcome(&mut self, name: &str, call: &Call, ctx: &CallCtx, r: Reply) -> CallOutcome {
        let ok = r.errno.is_none();
        let mut o = CallOutcome {
            ret: r.ret,
            errno: r.errno,
            ..Default::default()
        };
        match call {
            Call::Socket if ok => {
                self.socks.insert(
                    name.into(),
                    KSock {
                        held: true,
                        ..Default::default()
                    },
                );
            }
            Call::Listen { port, .. } if ok => {
                self.sock(name).listen_port = Some(*port);
            }
            Call::Connect { port, .. } if ok => {
                let (Some(peer), Some(lport)) = (ctx.peer_addr, ctx.local_port) else {
                    return o;
                };
                let s = self.sock(name);
                let lport = s.ends.map_or(lport, |e| e.0);
                s.ends = Some((lport, peer, *port));
            }
            Call::Accept if ok => {
                let lport = self.sock(name).listen_port.unwrap_or(0);
                let (a, p) = r.peer.unwrap_or(([0; 4], 0));
                let new = ctx.new_name.clone().unwrap_or_else(|| "conn".into());
                self.socks.insert(
                    new,
                    KSock {
                        held: true,
                        ends: Some((lport, Ipv4Addr::from(a), p)),
                        ..Default::default()
                    },
                );
            }
            Call::Close if ok => self.sock(name).held = false,
            Call::SetSockOpt(SockOpt::Linger { on, secs }) if ok => {
                self.sock(name).linger = if *on { (*secs).max(0) as u64 } else { 0 };
            }
            Call::Recv { .. } if r.ret > 0 => {
                let b = host::unhex(r.data.as_deref().unwrap_or(""));
                o.data = Some(Box::new(crate::payload::Payload::from_vec(b)));
            }
            Call::Send { flags, .. } if o.errno == Some(Errno::EPIPE) && !flags.nosignal => {
                o.note = Some("Linux also raises SIGPIPE (no MSG_NOSIGNAL)".into());
            }
            _ => {}
        }
        // The call was still blocked when its bound ran out: what the
        // program got then, as the engine has always said it.
        let cut =
            r.elapsed_us + 20_000 >= self.bound.as_micros() as u64 && !matches!(call, Call::Close);
        if cut && (o.errno.is_some() || matches!(call, Call::Send { .. })) {
            o = match call {
                Call::Send { .. } => CallOutcome::ok(r.ret.max(0)),
                // SO_SNDTIMEO ran out in inet_stream_connect: EINPROGRESS.
                Call::Connect { .. } => CallOutcome::err(Errno::ETIMEDOUT),
                _ => CallOutcome::err(Errno::EAGAIN),
            };
            o.note = Some(format!(
                "{} would block: the engine stopped waiting",
                call.verb()
            ));
        }
        o
    }

    fn sock(&mut self, name: &str) -> &mut KSock {
        self.socks.entry(name.to_string()).or_default()
    }

    /// `exit`: kill -9 the program (every descriptor closes as the kernel
    /// closes a dying process's, `do_exit` with `PF_EXITING`), then give
    /// the host a fresh, empty program in the same namespace.
    pub fn exit(&mut self) -> CallOutcome {
        self.proc.kill();
        for s in self.socks.values_mut() {
            s.held = false;
        }
        match host::spawn_join(&self.netns, self.bound) {
            Ok(p) => {
                self.proc = p;
                CallOutcome::ok(0)
            }
            Err(e) => failure(format!("respawn the kernel host after exit: {e}")),
        }
    }

    /// A socket's state: TCP_INFO's `tcpi_state` while the program holds
    /// it, else the connection's line in `/proc/<pid>/net/tcp` (orphans,
    /// time-wait sockets), else CLOSE.
    pub fn state(&mut self, name: &str) -> Option<TcpState> {
        let s = self.socks.get(name)?;
        let ends = s.ends;
        if s.held {
            let cmd = Cmd::GetSockOpt {
                name: name.into(),
                opt: GetOpt::TcpInfo,
            };
            if let Ok(Reply {
                errno: None,
                data: Some(d),
                ..
            }) = self.proc.ask(&cmd, QUICK)
                && let Some(&st) = host::unhex(&d).first()
            {
                return Some(state_name(st as u32));
            }
        }
        let Some((lp, ra, rp)) = ends else {
            return Some(TcpState::Close);
        };
        let entries = states::read_proc_tcp(self.proc.pid).unwrap_or_default();
        Some(
            entries
                .iter()
                .find(|e| e.lport == lp && e.raddr == ra && e.rport == rp)
                .map_or(TcpState::Close, |e| state_name(e.state)),
        )
    }

    /// TcpExt counters of the namespace (`/proc/<pid>/net/netstat`).
    fn netstat(&self) -> BTreeMap<Counter, i64> {
        states::read_counters(self.proc.pid).unwrap_or_default()
    }

    /// Counter changes since the run began (non-zero only).
    pub fn counters(&self) -> BTreeMap<Counter, i64> {
        states::counter_changes(&self.netstat(), &self.netstat_start)
    }

    /// Writes a sysctl of the namespace (net.* sysctls are per namespace).
    pub fn sysctl(&mut self, key: Sysctl, value: &str) -> Result<(), String> {
        let cmd = Cmd::Sysctl {
            key: key.name().into(),
            value: value.into(),
        };
        match self.proc.ask(&cmd, QUICK)?.errno {
            None => Ok(()),
            Some(e) => Err(format!(
                "sysctl {key} = {value} failed in the kernel host's namespace: {e}"
            )),
        }
    }

    /// Connections of this host the kernel still has, from /proc/net/tcp.
    pub fn open_lines(&self) -> Vec<(u16, Ipv4Addr, u16, TcpState)> {
        states::read_proc_tcp(self.proc.pid)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.state != TcpState::Listen as u32)
            .map(|e| (e.lport, e.raddr, e.rport, state_name(e.state)))
            .collect()
    }

    /// The name of the socket with these ends, if the script has one.
    pub fn name_of(&self, lp: u16, rp: u16) -> Option<String> {
        self.socks
            .iter()
            .find(|(_, s)| s.ends.is_some_and(|(l, _, r)| l == lp && r == rp))
            .map(|(n, _)| n.clone())
    }
}

/// Readable when the program's answer waits.
impl AsFd for KernelHost {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.proc.as_fd()
    }
}

/// A call the kernel host could not be asked or did not answer.
fn failure(why: String) -> CallOutcome {
    CallOutcome {
        ret: -1,
        errno: Some(Errno::EINVAL),
        note: Some(format!("ENGINE FAILURE (the trace is incomplete): {why}")),
        unsupported: true,
        ..Default::default()
    }
}
