//! The real-kernel host of a `--engine smoltcp-tap` pair: plain Linux
//! sockets in a private network namespace, driven by this process.
//!
//! A network namespace belongs to a thread, and a socket stays in the
//! namespace it was created in; so the engine enters the namespace
//! (`setns`) only to create sockets and read its `/proc` files, and goes
//! straight back. Every socket is non-blocking: a call that would block
//! returns [`KAttempt::Block`] and the TAP engine moves the network on
//! before attempting it again, as it does for smoltcp calls.
//!
//! This is deliberately small: it only has to be the other end of a TAP
//! pair. The full kernel engine is a separate issue.

use crate::engine::{CallCtx, CallOutcome};
use crate::script::{Call, How, MsgFlags, SockOpt};
use crate::vocab::{Counter, Errno, TcpState};
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, RawFd};

/// A named network namespace (`ip netns add`), removed on drop.
pub struct Netns {
    pub name: String,
    file: File,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` (iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    pub fn create(name: &str) -> Result<Netns, String> {
        ip(&["netns", "add", name])?;
        let file = File::open(format!("/run/netns/{name}")).map_err(|e| {
            let _ = ip(&["netns", "del", name]);
            format!("cannot open /run/netns/{name}: {e}")
        })?;
        Ok(Netns {
            name: name.into(),
            file,
        })
    }

    /// Runs `ip -n NS ...` inside the namespace.
    pub fn ip(&self, args: &[&str]) -> Result<(), String> {
        let mut v = vec!["-n", self.name.as_str()];
        v.extend_from_slice(args);
        ip(&v)
    }

    /// Runs `f` on this thread inside the namespace.
    pub fn enter<T>(&self, f: impl FnOnce() -> T) -> io::Result<T> {
        let orig = File::open("/proc/thread-self/ns/net")?;
        // SAFETY: setns on valid namespace descriptors; it changes only the
        // calling thread's network namespace, restored right after `f`.
        if unsafe { libc::setns(self.file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let r = f();
        // SAFETY: as above, back to the namespace the thread came from.
        if unsafe { libc::setns(orig.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            panic!(
                "cannot leave network namespace {}: {}",
                self.name,
                io::Error::last_os_error()
            );
        }
        Ok(r)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// The errno a program would see.
pub fn errno_name(e: i32) -> Errno {
    Errno::from_raw(e)
}

fn last_errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn sockaddr(addr: Ipv4Addr, port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(addr).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// A kernel call's result in the script's terms: `Err(errno)` or the value.
fn check(r: isize) -> Result<isize, i32> {
    if r < 0 { Err(last_errno()) } else { Ok(r) }
}

#[derive(Debug)]
pub enum KAttempt {
    Done(CallOutcome),
    Block,
}

#[derive(Debug, Default)]
struct KSock {
    fd: Option<RawFd>,
    connecting: bool,
    /// (local port, remote addr, remote port), kept to find the
    /// connection in /proc/net/tcp after close().
    ends: Option<(u16, Ipv4Addr, u16)>,
}

/// The kernel host's sockets, by script name.
pub struct KernelHost {
    pub ns: Netns,
    pub addr: Ipv4Addr,
    socks: BTreeMap<String, KSock>,
    netstat_start: BTreeMap<Counter, i64>,
}

impl KernelHost {
    pub fn new(ns: Netns, addr: Ipv4Addr) -> Self {
        let mut k = KernelHost {
            ns,
            addr,
            socks: BTreeMap::new(),
            netstat_start: BTreeMap::new(),
        };
        k.netstat_start = k.netstat();
        k
    }

    fn fd(&self, name: &str) -> Option<RawFd> {
        self.socks.get(name).and_then(|s| s.fd)
    }

    fn remember_ends(&mut self, name: &str) {
        let Some(fd) = self.fd(name) else { return };
        let mut l: libc::sockaddr_in = sockaddr(Ipv4Addr::UNSPECIFIED, 0);
        let mut r = l;
        let mut n = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let mut m = n;
        // SAFETY: valid fd and buffers sized for sockaddr_in.
        let ok = unsafe {
            libc::getsockname(fd, &mut l as *mut _ as *mut libc::sockaddr, &mut n) == 0
                && libc::getpeername(fd, &mut r as *mut _ as *mut libc::sockaddr, &mut m) == 0
        };
        if ok && let Some(s) = self.socks.get_mut(name) {
            s.ends = Some((
                u16::from_be(l.sin_port),
                Ipv4Addr::from(u32::from_be(r.sin_addr.s_addr)),
                u16::from_be(r.sin_port),
            ));
        }
    }

    /// Attempts one call without blocking.
    pub fn attempt(
        &mut self,
        name: &str,
        call: &Call,
        ctx: &CallCtx,
        sent: &mut usize,
    ) -> KAttempt {
        use KAttempt::*;
        let done_r = |r: Result<isize, i32>| match r {
            Ok(v) => Done(CallOutcome::ok(v as i64)),
            Err(e) => Done(CallOutcome::err(errno_name(e))),
        };
        if let Call::Exit = call {
            let names: Vec<String> = self.socks.keys().cloned().collect();
            for n in names {
                self.close(&n);
            }
            return Done(CallOutcome::ok(0));
        }
        if let Call::Socket = call {
            let r = self.ns.enter(|| {
                // SAFETY: plain socket(2).
                unsafe {
                    libc::socket(
                        libc::AF_INET,
                        libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                        0,
                    )
                }
            });
            return match r {
                Ok(fd) if fd >= 0 => {
                    self.socks.insert(
                        name.into(),
                        KSock {
                            fd: Some(fd),
                            ..Default::default()
                        },
                    );
                    Done(CallOutcome::ok(0))
                }
                Ok(_) => Done(CallOutcome::err(errno_name(last_errno()))),
                Err(e) => Done(CallOutcome::err(errno_name(e.raw_os_error().unwrap_or(0)))),
            };
        }
        let Some(fd) = self.fd(name) else {
            return Done(CallOutcome::err(Errno::EBADF));
        };
        match call {
            Call::Socket | Call::Exit => unreachable!("handled above"),
            Call::Listen { port, backlog } => {
                let sa = sockaddr(Ipv4Addr::UNSPECIFIED, *port);
                // SAFETY: valid fd and sockaddr_in.
                let r = check(unsafe {
                    libc::bind(
                        fd,
                        &sa as *const _ as *const libc::sockaddr,
                        std::mem::size_of_val(&sa) as libc::socklen_t,
                    )
                } as isize)
                .and_then(|_| check(unsafe { libc::listen(fd, *backlog as i32) } as isize));
                done_r(r)
            }
            Call::Connect { port, .. } => {
                let s = self.socks.get_mut(name).expect("checked");
                if s.connecting {
                    let mut p = libc::pollfd {
                        fd,
                        events: libc::POLLOUT,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd, no wait.
                    unsafe { libc::poll(&mut p, 1, 0) };
                    if p.revents == 0 {
                        return Block;
                    }
                    s.connecting = false;
                    let mut err: libc::c_int = 0;
                    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
                    // SAFETY: SO_ERROR into an int.
                    unsafe {
                        libc::getsockopt(
                            fd,
                            libc::SOL_SOCKET,
                            libc::SO_ERROR,
                            &mut err as *mut _ as *mut libc::c_void,
                            &mut len,
                        )
                    };
                    if err != 0 {
                        return Done(CallOutcome::err(errno_name(err)));
                    }
                    self.remember_ends(name);
                    return Done(CallOutcome::ok(0));
                }
                let (Some(peer), Some(lport)) = (ctx.peer_addr, ctx.local_port) else {
                    return Done(CallOutcome::err(Errno::ENETUNREACH));
                };
                let local = sockaddr(self.addr, lport);
                let remote = sockaddr(peer, *port);
                let sz = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
                // SAFETY: valid fd and sockaddr_in.
                if let Err(e) =
                    check(
                        unsafe { libc::bind(fd, &local as *const _ as *const libc::sockaddr, sz) }
                            as isize,
                    )
                {
                    return Done(CallOutcome::err(errno_name(e)));
                }
                // SAFETY: as above.
                match check(unsafe {
                    libc::connect(fd, &remote as *const _ as *const libc::sockaddr, sz)
                } as isize)
                {
                    Ok(_) => {
                        self.remember_ends(name);
                        Done(CallOutcome::ok(0))
                    }
                    Err(libc::EINPROGRESS) => {
                        self.socks.get_mut(name).expect("checked").connecting = true;
                        Block
                    }
                    Err(e) => Done(CallOutcome::err(errno_name(e))),
                }
            }
            Call::Accept => {
                // SAFETY: accept4 without an address.
                let r = unsafe {
                    libc::accept4(
                        fd,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                        libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                    )
                };
                if r < 0 {
                    let e = last_errno();
                    return if e == libc::EAGAIN {
                        Block
                    } else {
                        Done(CallOutcome::err(errno_name(e)))
                    };
                }
                let new = ctx.new_name.clone().unwrap_or_else(|| "conn".into());
                self.socks.insert(
                    new.clone(),
                    KSock {
                        fd: Some(r),
                        ..Default::default()
                    },
                );
                self.remember_ends(&new);
                Done(CallOutcome::ok(0))
            }
            Call::Send { data, flags } => {
                let bytes = data.bytes();
                let rest = &bytes[(*sent).min(bytes.len())..];
                // MSG_NOSIGNAL always: SIGPIPE would kill the engine itself.
                let f = msg_flags(flags) | libc::MSG_NOSIGNAL;
                // SAFETY: valid fd and buffer.
                let r =
                    unsafe { libc::send(fd, rest.as_ptr() as *const libc::c_void, rest.len(), f) };
                if r >= 0 {
                    *sent += r as usize;
                    if *sent == bytes.len() || flags.dontwait {
                        return Done(CallOutcome::ok(*sent as i64));
                    }
                    return Block;
                }
                let e = last_errno();
                if e == libc::EAGAIN && !flags.dontwait {
                    return Block;
                }
                if *sent > 0 {
                    return Done(CallOutcome::ok(*sent as i64));
                }
                let mut o = CallOutcome::err(errno_name(e));
                if e == libc::EPIPE && !flags.nosignal {
                    o.note = Some("Linux also raises SIGPIPE (no MSG_NOSIGNAL)".into());
                }
                Done(o)
            }
            Call::Recv { len, flags } => {
                let mut buf = vec![0u8; *len as usize];
                // SAFETY: valid fd and buffer.
                let r = unsafe {
                    libc::recv(
                        fd,
                        buf.as_mut_ptr() as *mut libc::c_void,
                        buf.len(),
                        msg_flags(flags),
                    )
                };
                if r < 0 {
                    let e = last_errno();
                    return if e == libc::EAGAIN && !flags.dontwait {
                        Block
                    } else {
                        Done(CallOutcome::err(errno_name(e)))
                    };
                }
                buf.truncate(r as usize);
                let mut o = CallOutcome::ok(r as i64);
                if r > 0 {
                    o.data = Some(Box::new(crate::payload::Payload::from_vec(buf)));
                }
                Done(o)
            }
            Call::Shutdown(how) => {
                let h = match how {
                    How::Rd => libc::SHUT_RD,
                    How::Wr => libc::SHUT_WR,
                    How::RdWr => libc::SHUT_RDWR,
                };
                // SAFETY: valid fd.
                done_r(check(unsafe { libc::shutdown(fd, h) } as isize))
            }
            Call::Close => {
                self.close(name);
                Done(CallOutcome::ok(0))
            }
            Call::Poll { interest } => {
                let mut p = libc::pollfd {
                    fd,
                    events: libc::POLLIN | libc::POLLPRI | libc::POLLOUT | libc::POLLRDHUP,
                    revents: 0,
                };
                // SAFETY: one valid pollfd, no wait.
                unsafe { libc::poll(&mut p, 1, 0) };
                // poll(2)'s bits are epoll's bits for these events.
                let m = p.revents as u16 as u32;
                let i = if *interest == 0 {
                    crate::script::epoll::ALL
                } else {
                    *interest
                };
                let keep = i | crate::script::epoll::EPOLLERR | crate::script::epoll::EPOLLHUP;
                Done(CallOutcome::ok((m & keep) as i64))
            }
            Call::SetSockOpt(o) => done_r(setsockopt(fd, o)),
            Call::GetSockOpt(o) => Done(CallOutcome::unsupported(
                "the TAP pair's kernel host",
                &format!("getsockopt {}", o.name()),
            )),
            Call::Disconnect => {
                let sa = libc::sockaddr {
                    sa_family: libc::AF_UNSPEC as libc::sa_family_t,
                    sa_data: [0; 14],
                };
                // SAFETY: connect(AF_UNSPEC) on a valid fd.
                done_r(check(unsafe {
                    libc::connect(fd, &sa, std::mem::size_of_val(&sa) as libc::socklen_t)
                } as isize))
            }
        }
    }

    fn close(&mut self, name: &str) {
        if self.fd(name).is_some() && self.socks[name].ends.is_none() {
            self.remember_ends(name);
        }
        if let Some(s) = self.socks.get_mut(name)
            && let Some(fd) = s.fd.take()
        {
            // SAFETY: closing a descriptor this host owns, once.
            unsafe { libc::close(fd) };
        }
    }

    /// A socket's state: TCP_INFO while the program holds it, else the
    /// connection's line in the namespace's /proc/net/tcp (orphans,
    /// TIME_WAIT), else CLOSE.
    pub fn state(&self, name: &str) -> Option<TcpState> {
        let s = self.socks.get(name)?;
        if let Some(fd) = s.fd {
            let mut info = [0u8; 256];
            let mut len = info.len() as libc::socklen_t;
            // SAFETY: TCP_INFO into a buffer larger than struct tcp_info's
            // first byte, which is tcpi_state.
            let r = unsafe {
                libc::getsockopt(
                    fd,
                    libc::IPPROTO_TCP,
                    libc::TCP_INFO,
                    info.as_mut_ptr() as *mut libc::c_void,
                    &mut len,
                )
            };
            if r == 0 {
                return Some(state_name(info[0]));
            }
        }
        let Some((lp, ra, rp)) = s.ends else {
            return Some(TcpState::Close);
        };
        let table = self
            .ns
            .enter(|| std::fs::read_to_string("/proc/thread-self/net/tcp"))
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or_default();
        let want_l = format!("{lp:04X}");
        let want_r = format!("{:08X}:{rp:04X}", u32::from(ra).swap_bytes());
        for line in table.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 3 && f[1].ends_with(&format!(":{want_l}")) && f[2] == want_r {
                return Some(state_name(u8::from_str_radix(f[3], 16).unwrap_or(7)));
            }
        }
        Some(TcpState::Close)
    }

    /// TcpExt counters of the namespace (`/proc/net/netstat`).
    pub fn netstat(&self) -> BTreeMap<Counter, i64> {
        let text = self
            .ns
            .enter(|| std::fs::read_to_string("/proc/thread-self/net/netstat"))
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("TcpExt:")).collect();
        let mut m = BTreeMap::new();
        if let [names, values] = lines[..] {
            for (n, v) in names
                .split_whitespace()
                .zip(values.split_whitespace())
                .skip(1)
            {
                if let Ok(c) = n.parse::<Counter>()
                    && c.reported()
                {
                    m.insert(c, v.parse().unwrap_or(0));
                }
            }
        }
        m
    }

    /// Counter changes since the run began (non-zero only).
    pub fn counters(&self) -> BTreeMap<Counter, i64> {
        self.netstat()
            .into_iter()
            .map(|(k, v)| {
                let d = v - self.netstat_start.get(&k).copied().unwrap_or(0);
                (k, d)
            })
            .filter(|(_, d)| *d != 0)
            .collect()
    }

    /// Writes a sysctl of the namespace (net.* sysctls are per namespace).
    pub fn sysctl(&self, key: &str, value: &str) -> Result<(), String> {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        self.ns
            .enter(|| std::fs::write(&path, value))
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot write {path}: {e}"))
    }

    /// Connections of this host the kernel still has, from /proc/net/tcp.
    pub fn open_lines(&self) -> Vec<(u16, Ipv4Addr, u16, TcpState)> {
        let table = self
            .ns
            .enter(|| std::fs::read_to_string("/proc/thread-self/net/tcp"))
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or_default();
        let mut v = Vec::new();
        for line in table.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 4 {
                continue;
            }
            let st = state_name(u8::from_str_radix(f[3], 16).unwrap_or(7));
            if st == TcpState::Listen {
                continue;
            }
            let port =
                |s: &str| u16::from_str_radix(s.rsplit(':').next().unwrap_or("0"), 16).unwrap_or(0);
            let raddr = f[2]
                .split(':')
                .next()
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .map(|x| Ipv4Addr::from(x.swap_bytes()))
                .unwrap_or(Ipv4Addr::UNSPECIFIED);
            v.push((port(f[1]), raddr, port(f[2]), st));
        }
        v
    }

    /// The name of the socket with these ends, if the script has one.
    pub fn name_of(&self, lp: u16, rp: u16) -> Option<String> {
        self.socks
            .iter()
            .find(|(_, s)| s.ends.is_some_and(|(l, _, r)| l == lp && r == rp))
            .map(|(n, _)| n.clone())
    }
}

impl Drop for KernelHost {
    fn drop(&mut self) {
        let names: Vec<String> = self.socks.keys().cloned().collect();
        for n in names {
            self.close(&n);
        }
    }
}

fn state_name(st: u8) -> TcpState {
    TcpState::from_kernel(st as u32).unwrap_or(TcpState::Close)
}

fn msg_flags(f: &MsgFlags) -> i32 {
    let mut x = 0;
    if f.oob {
        x |= libc::MSG_OOB;
    }
    if f.peek {
        x |= libc::MSG_PEEK;
    }
    if f.dontwait {
        x |= libc::MSG_DONTWAIT;
    }
    x
}

fn setsockopt(fd: RawFd, o: &SockOpt) -> Result<isize, i32> {
    let int = |level, name, v: i32| {
        // SAFETY: an int option on a valid fd.
        check(unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                &v as *const _ as *const libc::c_void,
                std::mem::size_of::<i32>() as libc::socklen_t,
            )
        } as isize)
    };
    match *o {
        SockOpt::Linger { on, secs } => {
            let l = libc::linger {
                l_onoff: on as i32,
                l_linger: secs,
            };
            // SAFETY: struct linger on a valid fd.
            check(unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    &l as *const _ as *const libc::c_void,
                    std::mem::size_of_val(&l) as libc::socklen_t,
                )
            } as isize)
        }
        SockOpt::RcvBuf(n) => int(libc::SOL_SOCKET, libc::SO_RCVBUF, n),
        SockOpt::SndBuf(n) => int(libc::SOL_SOCKET, libc::SO_SNDBUF, n),
        SockOpt::OobInline(b) => int(libc::SOL_SOCKET, libc::SO_OOBINLINE, b as i32),
        SockOpt::NoDelay(b) => int(libc::IPPROTO_TCP, libc::TCP_NODELAY, b as i32),
        SockOpt::Repair(b) => int(libc::IPPROTO_TCP, libc::TCP_REPAIR, b as i32),
        SockOpt::Linger2(n) => int(libc::IPPROTO_TCP, libc::TCP_LINGER2, n),
    }
}
