//! One script host = one forked child process living in its own network
//! namespace, running the host's "program": it performs each socket call it
//! is sent over a UNIX socket with plain libc calls and answers with the
//! result.
//!
//! Why a process and not a thread: `exit` in a script must look to the
//! kernel exactly like kill -9 — `do_exit` closes every descriptor with
//! `PF_EXITING` set, so `inet_release` does not honour SO_LINGER's timeout —
//! and only a real process dying gives that. The child is forked without
//! exec; after `fork` it touches only its own socket, libc and the
//! allocator (glibc's malloc is fork-safe), never a lock of the parent.
//!
//! Cleanup: the child asks for SIGKILL when the thread that forked it dies
//! (`PR_SET_PDEATHSIG`), closes every inherited descriptor but its own
//! (`close_range`), and its namespace is unnamed: it lives only as long as
//! the child or a descriptor the parent holds (the TUN device, the nsfs
//! handle). Killing the parent, even with SIGKILL, therefore frees
//! everything.

use super::sys;
use crate::vocab::Errno;
use crate::vocab::{Scope, Sysctl, Sysctls};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Linux 6.18's defaults of every per-namespace sysctl of the table
/// ([`crate::vocab::Sysctl`]), written into every fresh namespace so that
/// a tuned machine cannot leak in: since 4.15 several of these
/// per-namespace knobs (tcp_rmem, tcp_wmem, tcp_congestion_control, ...)
/// are *copied from init_net* when a namespace is created (`tcp_sk_init`).
/// A missing knob is skipped (older kernels); any other write error stops
/// the run.
pub fn default_sysctls() -> Vec<(&'static str, String)> {
    let d = Sysctls::default();
    Sysctl::ALL
        .iter()
        .filter(|k| k.scope() == Scope::Netns)
        .map(|&k| (k.name(), d.get(k)))
        .collect()
}

/// The TUN device every host namespace gets.
pub const TUN_NAME: &str = "fr0";
/// As loopback's 65536 would: advmss = 65535 - 40 = 65495, so the SYN says
/// `mss 65495` exactly as on `lo`. (65535 is the most a TUN device takes.)
pub const TUN_MTU: i32 = 65535;

/// What the parent asks a host's program to do.
/// What a `send` writes.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub enum Payload {
    /// `send "text"`: the bytes, as hex (compact in JSON).
    Hex(String),
    /// `send N`: the host writes N bytes of the `a..z` pattern itself. A
    /// megabyte sent as hex through JSON took tens of milliseconds, long
    /// enough to move the call against the kernel's timers.
    Count(u32),
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub enum Cmd {
    /// Lowers the bound on blocking calls for sockets created from now on
    /// (the run's horizon, when it is shorter than the engine's bound).
    SetBound {
        us: u64,
    },
    Socket {
        name: String,
    },
    Listen {
        name: String,
        addr: [u8; 4],
        port: u16,
        backlog: u32,
    },
    Connect {
        name: String,
        laddr: [u8; 4],
        lport: u16,
        raddr: [u8; 4],
        rport: u16,
        /// Inside `together { }`: a non-blocking connect (EINPROGRESS), as
        /// the model does, so the calls after it happen at the same instant.
        nonblock: bool,
    },
    Accept {
        name: String,
        new_name: String,
    },
    Send {
        name: String,
        data: Payload,
        flags: i32,
    },
    Recv {
        name: String,
        len: u32,
        flags: i32,
    },
    Shutdown {
        name: String,
        how: i32,
    },
    Close {
        name: String,
    },
    Poll {
        name: String,
        interest: u32,
    },
    SetSockOpt {
        name: String,
        level: i32,
        opt: i32,
        /// `struct linger` as (on, secs), or an int.
        linger: Option<(i32, i32)>,
        value: i32,
    },
    Disconnect {
        name: String,
    },
    /// `getsockopt(level, opt)`: the raw bytes come back in `data`.
    GetSockOpt {
        name: String,
        level: i32,
        opt: i32,
    },
    Sysctl {
        key: String,
        value: String,
    },
}

/// What a call returned.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Reply {
    pub ret: i64,
    pub errno: Option<Errno>,
    /// Hex of the received bytes.
    pub data: Option<String>,
    /// `accept`: the peer's address and port.
    pub peer: Option<([u8; 4], u16)>,
    /// How long the syscall took.
    pub elapsed_us: u64,
    /// The call hit the engine's bound (it would have blocked longer).
    pub bounded: bool,
}

/// The first message a new child sends.
#[derive(Serialize, Deserialize, Debug, Default)]
struct Ready {
    error: Option<String>,
    /// `sock/inet_sock_set_state`'s id and format, read from a tracefs
    /// mounted in the child's private mount namespace.
    tracepoint: Option<(u64, String)>,
    /// `tcp/tcp_send_reset`'s (RST reasons; absent before Linux 6.10).
    reset_tracepoint: Option<(u64, String)>,
}

pub fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * b.len());
    for &x in b {
        s.push(DIGITS[(x >> 4) as usize] as char);
        s.push(DIGITS[(x & 15) as usize] as char);
    }
    s
}

/// The bytes of a hex string; a pair that is not hex is skipped (the
/// strings come from `hex`, on the other end of our own socket).
pub fn unhex(s: &str) -> Vec<u8> {
    fn nibble(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    s.as_bytes()
        .chunks_exact(2)
        .filter_map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

fn write_frame(w: &mut impl Write, body: &[u8]) -> io::Result<()> {
    w.write_all(&(body.len() as u32).to_le_bytes())?;
    w.write_all(body)
}

fn read_frame(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut n = [0u8; 4];
    r.read_exact(&mut n)?;
    let mut b = vec![0u8; u32::from_le_bytes(n) as usize];
    r.read_exact(&mut b)?;
    Ok(b)
}

/// The parent's handle on a host child.
pub struct HostProc {
    pub pid: libc::pid_t,
    sock: UnixStream,
}

/// A freshly created host namespace.
pub struct NewHost {
    pub proc: HostProc,
    pub tun: OwnedFd,
    /// A packet socket on the TUN device: the kernel's send time of each
    /// packet (`sys::tap_create`).
    pub tap: OwnedFd,
    pub netns: OwnedFd,
    pub tracepoint: Option<(u64, String)>,
    pub reset_tracepoint: Option<(u64, String)>,
}

/// How a child starts.
enum Setup<'a> {
    /// `unshare(CLONE_NEWNET)`, configure it, create the TUN device.
    New { addr: Ipv4Addr, tracefs: bool },
    /// `setns` into an existing host namespace (after `exit`).
    Join { netns: &'a OwnedFd },
}

/// Forks a host child in a new network namespace with address `addr`.
pub fn spawn_new(addr: Ipv4Addr, tracefs: bool, bound: Duration) -> Result<NewHost, String> {
    let (proc, fds, ready) = fork_child(Setup::New { addr, tracefs }, bound)?;
    let mut fds = fds.into_iter();
    let (Some(tun), Some(tap), Some(netns)) = (fds.next(), fds.next(), fds.next()) else {
        return Err("host child sent no TUN/tap/netns descriptors".into());
    };
    Ok(NewHost {
        proc,
        tun,
        tap,
        netns,
        tracepoint: ready.tracepoint,
        reset_tracepoint: ready.reset_tracepoint,
    })
}

/// Forks a new program for an existing host namespace (after `exit`).
pub fn spawn_join(netns: &OwnedFd, bound: Duration) -> Result<HostProc, String> {
    fork_child(Setup::Join { netns }, bound).map(|(p, _, _)| p)
}

fn fork_child(setup: Setup, bound: Duration) -> Result<(HostProc, Vec<OwnedFd>, Ready), String> {
    let (parent_end, child_end) =
        UnixStream::pair().map_err(|e| format!("socketpair for a host child: {e}"))?;
    let netns_fd = match &setup {
        Setup::Join { netns } => netns.as_raw_fd(),
        Setup::New { .. } => -1,
    };
    // SAFETY: getpid/fork are plain syscalls; the child runs only
    // `child_main`, which never returns.
    let parent_pid = unsafe { libc::getpid() };
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", io::Error::last_os_error()));
    }
    if pid == 0 {
        child_main(parent_pid, child_end.as_raw_fd(), netns_fd, &setup, bound);
    }
    drop(child_end);
    let mut proc = HostProc {
        pid,
        sock: parent_end,
    };
    // The child answers with a Ready frame, then (new namespace only) the
    // TUN and namespace descriptors.
    let _ = proc.sock.set_read_timeout(Some(Duration::from_secs(20)));
    let ready: Ready = match read_frame(&mut proc.sock)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(r) => r,
        Err(e) => {
            proc.kill();
            return Err(format!("host child did not start: {e}"));
        }
    };
    if let Some(e) = ready.error {
        proc.kill();
        return Err(e);
    }
    let fds = if matches!(setup, Setup::New { .. }) {
        match sys::recv_fds(proc.sock.as_raw_fd(), 3) {
            Ok(f) if f.len() == 3 => f,
            Ok(_) => {
                proc.kill();
                return Err("host child sent no TUN/netns descriptors".into());
            }
            Err(e) => {
                proc.kill();
                return Err(format!("host child descriptors: {e}"));
            }
        }
    } else {
        Vec::new()
    };
    Ok((proc, fds, ready))
}

impl HostProc {
    /// Sends a command without waiting for the answer.
    pub fn send(&mut self, cmd: &Cmd) -> Result<(), String> {
        let body = serde_json::to_vec(cmd).map_err(|e| e.to_string())?;
        write_frame(&mut self.sock, &body).map_err(|e| format!("host child gone: {e}"))
    }

    /// Waits for the answer to the last command, at most `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Result<Reply, String> {
        let _ = self
            .sock
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))));
        let b =
            read_frame(&mut self.sock).map_err(|e| format!("no answer from host child: {e}"))?;
        serde_json::from_slice(&b).map_err(|e| format!("bad answer from host child: {e}"))
    }

    /// Whether the program is asleep inside the call it was given: its
    /// state is S or D and the system call it is in is neither the read
    /// of the next command nor the write of the answer (/proc/PID/stat,
    /// /proc/PID/syscall). Calls made together use it to tell a blocking
    /// call (close() lingering, recv() waiting for data) from one still
    /// on its way into the kernel.
    pub fn blocked_in_call(&self) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) else {
            return false;
        };
        // The state follows the ")" that closes the command name.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.trim_start().chars().next());
        if !matches!(state, Some('S' | 'D')) {
            return false;
        }
        let Ok(sc) = std::fs::read_to_string(format!("/proc/{}/syscall", self.pid)) else {
            return false;
        };
        match sc
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<i64>().ok())
        {
            Some(nr) => nr != libc::SYS_read && nr != libc::SYS_write,
            None => false, // "running"
        }
    }

    /// Whether an answer is already waiting (without blocking).
    pub fn answer_ready(&self) -> bool {
        let mut p = libc::pollfd {
            fd: self.sock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd, timeout 0.
        unsafe { libc::poll(&mut p, 1, 0) > 0 }
    }

    /// kill -9 and reap.
    pub fn kill(&mut self) {
        if self.pid > 0 {
            // SAFETY: our own child, reaped right after.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), 0);
            }
            self.pid = 0;
        }
    }
}

impl Drop for HostProc {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------
// The child side. Everything below runs in the forked child only.

fn child_main(parent: libc::pid_t, sock: RawFd, netns: RawFd, setup: &Setup, bound: Duration) -> ! {
    // SAFETY: plain syscalls in a freshly forked, single-threaded child.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent {
            libc::_exit(1);
        }
        // Keep only our socket (as 3) and the namespace handle (as 4):
        // descriptors of other runs (their TUN devices, sockets) must not
        // stay alive in us. First move both above 4 so neither dup2
        // clobbers the other.
        let s_hi = libc::fcntl(sock, libc::F_DUPFD, 5);
        let n_hi = if netns >= 0 {
            libc::fcntl(netns, libc::F_DUPFD, 5)
        } else {
            -1
        };
        libc::dup2(s_hi, 3);
        if n_hi >= 0 {
            libc::dup2(n_hi, 4);
            libc::close_range(5, u32::MAX, 0);
        } else {
            libc::close_range(4, u32::MAX, 0);
        }
        // A program that writes to a reset socket must get EPIPE, not die.
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    // SAFETY: fd 3 is our socket now, owned by this stream.
    let mut s = unsafe { UnixStream::from_raw_fd(3) };
    let mut ready = Ready::default();
    let mut fds: Option<(OwnedFd, OwnedFd, RawFd)> = None;
    let res = match setup {
        Setup::New { addr, tracefs } => {
            setup_new(*addr, *tracefs, &mut ready).map(|f| fds = Some(f))
        }
        Setup::Join { .. } => {
            // SAFETY: fd 4 is the nsfs handle kept above.
            if unsafe { libc::setns(4, libc::CLONE_NEWNET) } < 0 {
                Err(format!("setns: {}", io::Error::last_os_error()))
            } else {
                unsafe { libc::close(4) };
                Ok(())
            }
        }
    };
    if let Err(e) = res {
        ready.error = Some(e);
        let _ = write_frame(&mut s, &serde_json::to_vec(&ready).unwrap_or_default());
        // SAFETY: leaving the child without running the parent's atexit.
        unsafe { libc::_exit(1) };
    }
    let _ = write_frame(&mut s, &serde_json::to_vec(&ready).unwrap_or_default());
    if let Some((tun, tap, ns)) = fds {
        if sys::send_fds(s.as_raw_fd(), &[tun.as_raw_fd(), tap.as_raw_fd(), ns]).is_err() {
            unsafe { libc::_exit(1) };
        }
        // The parent holds its copies now; the program keeps none.
        drop(tun);
        drop(tap);
        unsafe { libc::close(ns) };
    }
    let mut prog = Program {
        fds: HashMap::new(),
        bound,
    };
    loop {
        let Ok(b) = read_frame(&mut s) else {
            // The parent is gone: a program with no controller exits.
            unsafe { libc::_exit(0) };
        };
        let reply = match serde_json::from_slice::<Cmd>(&b) {
            Ok(cmd) => prog.run(cmd),
            Err(_) => Reply {
                ret: -1,
                errno: Some(Errno::EINVAL),
                ..Default::default()
            },
        };
        if write_frame(&mut s, &serde_json::to_vec(&reply).unwrap_or_default()).is_err() {
            unsafe { libc::_exit(0) };
        }
    }
}

fn setup_new(
    addr: Ipv4Addr,
    tracefs: bool,
    ready: &mut Ready,
) -> Result<(OwnedFd, OwnedFd, RawFd), String> {
    let flags = libc::CLONE_NEWNET | if tracefs { libc::CLONE_NEWNS } else { 0 };
    let unshare = |flags| {
        // SAFETY: unshare of this single-threaded child.
        if unsafe { libc::unshare(flags) } < 0 {
            let e = io::Error::last_os_error();
            return Err(format!(
                "cannot create a network namespace (unshare(CLONE_NEWNET): {e}): the linux engine needs root (CAP_SYS_ADMIN); use --engine model"
            ));
        }
        Ok(())
    };
    // Two steps: a throwaway namespace whose tcp_child_ehash_entries gives
    // the host's namespace, created from it, a small private established
    // hash (tcp_set_hashinfo). Otherwise the host shares init_net's table
    // (262144 buckets here) and every read of /proc/<pid>/net/tcp walks all
    // of it. The throwaway namespace dies at the second unshare.
    unshare(flags)?;
    if write_sysctl("net.ipv4.tcp_child_ehash_entries", "1024").is_err() {
        // An older kernel without per-namespace hash tables: shared table.
    }
    unshare(libc::CLONE_NEWNET)?;
    if tracefs {
        ready.tracepoint = read_tracepoint("sock/inet_sock_set_state").ok();
        ready.reset_tracepoint = read_tracepoint("tcp/tcp_send_reset").ok();
    }
    // IPv6 would only add router solicitations to the link; scripts are IPv4.
    for k in [
        "net.ipv6.conf.all.disable_ipv6",
        "net.ipv6.conf.default.disable_ipv6",
    ] {
        let _ = write_sysctl(k, "1");
    }
    for (k, v) in default_sysctls() {
        match write_sysctl(k, &v) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("sysctl {k} = {v} in the host namespace: {e}")),
        }
    }
    sys::if_up("lo", None, None).map_err(|e| e.to_string())?;
    let tun = sys::tun_create(TUN_NAME).map_err(|e| format!("TUN device: {e}"))?;
    sys::if_up(TUN_NAME, Some(addr), Some(TUN_MTU)).map_err(|e| e.to_string())?;
    let tap = sys::tap_create(TUN_NAME).map_err(|e| format!("packet socket on {TUN_NAME}: {e}"))?;
    // SAFETY: open(2) of a constant path.
    let ns = unsafe {
        libc::open(
            c"/proc/self/ns/net".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if ns < 0 {
        return Err(format!(
            "open /proc/self/ns/net: {}",
            io::Error::last_os_error()
        ));
    }
    Ok((tun, tap, ns))
}

/// Mounts tracefs in this child's private mount namespace if it is not
/// there (nothing shows outside and nothing is left: the namespace dies with
/// the child) and reads a tracepoint's id and format (`event` is
/// `group/name`).
fn read_tracepoint(event: &str) -> Result<(u64, String), String> {
    let dir = format!("/sys/kernel/tracing/events/{event}");
    let read = || -> io::Result<(u64, String)> {
        let id = std::fs::read_to_string(format!("{dir}/id"))?;
        let fmt = std::fs::read_to_string(format!("{dir}/format"))?;
        let id = id
            .trim()
            .parse()
            .map_err(|_| io::Error::other("bad tracepoint id"))?;
        Ok((id, fmt))
    };
    if let Ok(r) = read() {
        return Ok(r);
    }
    // SAFETY: mount(2) with constant strings, in a private mount namespace.
    unsafe {
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) < 0
        {
            return Err(format!(
                "make mounts private: {}",
                io::Error::last_os_error()
            ));
        }
        if libc::mount(
            c"tracefs".as_ptr(),
            c"/sys/kernel/tracing".as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        ) < 0
        {
            return Err(format!("mount tracefs: {}", io::Error::last_os_error()));
        }
    }
    read().map_err(|e| format!("{dir}: {e}"))
}

fn write_sysctl(key: &str, value: &str) -> io::Result<()> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    std::fs::write(path, value)
}

/// The host's program: its descriptors by script name.
struct Program {
    fds: HashMap<String, RawFd>,
    bound: Duration,
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn fail(e: i32) -> Reply {
    Reply {
        ret: -1,
        errno: Some(Errno::from_raw(e)),
        ..Default::default()
    }
}

fn res(r: isize) -> Reply {
    if r < 0 {
        fail(errno())
    } else {
        Reply {
            ret: r as i64,
            ..Default::default()
        }
    }
}

impl Program {
    fn fd(&self, name: &str) -> Result<RawFd, Reply> {
        self.fds.get(name).copied().ok_or_else(|| fail(libc::EBADF))
    }

    /// Blocking calls are bounded with SO_RCVTIMEO/SO_SNDTIMEO (honoured by
    /// `inet_csk_accept`, `tcp_recvmsg`, `tcp_sendmsg` and
    /// `inet_stream_connect` through `sock_rcvtimeo`/`sock_sndtimeo`): a run
    /// cannot hang, and nothing else about the socket changes.
    fn bound_timeouts(&self, fd: RawFd) {
        let tv = libc::timeval {
            tv_sec: self.bound.as_secs() as _,
            tv_usec: self.bound.subsec_micros() as _,
        };
        for opt in [libc::SO_RCVTIMEO, libc::SO_SNDTIMEO] {
            // SAFETY: setsockopt with a timeval.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    opt,
                    (&tv as *const libc::timeval).cast(),
                    std::mem::size_of::<libc::timeval>() as u32,
                );
            }
        }
    }

    /// Mainline's default congestion control is CUBIC, but a kernel may be
    /// built with another (this machine's says CONFIG_DEFAULT_TCP_CONG="bbr",
    /// whose pacing spaces segments out), and a namespace other than
    /// init_net may only choose among tcp_allowed_congestion_control
    /// (`tcp_set_default_congestion_control` returns EPERM). So every socket
    /// asks for CUBIC itself (TCP_CONGESTION; CAP_NET_ADMIN lets it pick a
    /// restricted one); accepted sockets inherit it from the listener
    /// (`tcp_ca_openreq_child`) and get it set again anyway.
    fn cubic(&self, fd: RawFd) {
        let name = b"cubic";
        // SAFETY: setsockopt with a byte string.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_CONGESTION,
                name.as_ptr().cast(),
                name.len() as u32,
            );
        }
    }

    fn run(&mut self, cmd: Cmd) -> Reply {
        let t0 = Instant::now();
        let mut r = match self.exec(cmd) {
            Ok(r) | Err(r) => r,
        };
        r.elapsed_us = t0.elapsed().as_micros() as u64;
        if r.elapsed_us + 20_000 >= self.bound.as_micros() as u64 && r.errno.is_some() {
            r.bounded = true;
        }
        r
    }

    fn exec(&mut self, cmd: Cmd) -> Result<Reply, Reply> {
        // SAFETY (whole function): socket syscalls on descriptors this
        // program owns, with buffers that live across each call.
        unsafe {
            Ok(match cmd {
                Cmd::SetBound { us } => {
                    self.bound = Duration::from_micros(us.max(1_000));
                    Reply::default()
                }
                Cmd::Socket { name } => {
                    let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
                    if fd < 0 {
                        return Err(fail(errno()));
                    }
                    self.bound_timeouts(fd);
                    self.cubic(fd);
                    if let Some(old) = self.fds.insert(name, fd) {
                        libc::close(old);
                    }
                    Reply {
                        ret: fd as i64,
                        ..Default::default()
                    }
                }
                Cmd::Listen {
                    name,
                    addr,
                    port,
                    backlog,
                } => {
                    let fd = self.fd(&name)?;
                    let sa = sys::sockaddr_in(Ipv4Addr::from(addr), port);
                    let r = libc::bind(
                        fd,
                        (&sa as *const libc::sockaddr_in).cast(),
                        std::mem::size_of::<libc::sockaddr_in>() as u32,
                    );
                    if r < 0 {
                        return Err(fail(errno()));
                    }
                    res(libc::listen(fd, backlog as i32) as isize)
                }
                Cmd::Connect {
                    name,
                    laddr,
                    lport,
                    raddr,
                    rport,
                    nonblock,
                } => {
                    let fd = self.fd(&name)?;
                    let la = sys::sockaddr_in(Ipv4Addr::from(laddr), lport);
                    let len = std::mem::size_of::<libc::sockaddr_in>() as u32;
                    // A disconnected socket keeps its bound port: bind only once.
                    let mut cur: libc::sockaddr_in = std::mem::zeroed();
                    let mut cl = len;
                    libc::getsockname(fd, (&mut cur as *mut libc::sockaddr_in).cast(), &mut cl);
                    if cur.sin_port == 0
                        && libc::bind(fd, (&la as *const libc::sockaddr_in).cast(), len) < 0
                    {
                        return Err(fail(errno()));
                    }
                    let ra = sys::sockaddr_in(Ipv4Addr::from(raddr), rport);
                    let flags = libc::fcntl(fd, libc::F_GETFL);
                    if nonblock {
                        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
                    }
                    let r = libc::connect(fd, (&ra as *const libc::sockaddr_in).cast(), len);
                    let e = errno();
                    if nonblock {
                        libc::fcntl(fd, libc::F_SETFL, flags);
                    }
                    if r < 0 {
                        return Err(fail(e));
                    }
                    res(r as isize)
                }
                Cmd::Accept { name, new_name } => {
                    let fd = self.fd(&name)?;
                    let mut sa: libc::sockaddr_in = std::mem::zeroed();
                    let mut len = std::mem::size_of::<libc::sockaddr_in>() as u32;
                    let c = libc::accept(fd, (&mut sa as *mut libc::sockaddr_in).cast(), &mut len);
                    if c < 0 {
                        return Err(fail(errno()));
                    }
                    self.bound_timeouts(c);
                    self.cubic(c);
                    self.fds.insert(new_name, c);
                    Reply {
                        ret: c as i64,
                        peer: Some((sa.sin_addr.s_addr.to_ne_bytes(), u16::from_be(sa.sin_port))),
                        ..Default::default()
                    }
                }
                Cmd::Send { name, data, flags } => {
                    let fd = self.fd(&name)?;
                    let b = match data {
                        Payload::Count(n) => crate::script::Data::Count(n).bytes(),
                        Payload::Hex(h) => unhex(&h),
                    };
                    res(libc::send(fd, b.as_ptr().cast(), b.len(), flags))
                }
                Cmd::Recv { name, len, flags } => {
                    let fd = self.fd(&name)?;
                    let mut b = vec![0u8; len as usize];
                    let r = libc::recv(fd, b.as_mut_ptr().cast(), b.len(), flags);
                    let mut out = res(r);
                    if r >= 0 {
                        out.data = Some(hex(&b[..r as usize]));
                    }
                    out
                }
                Cmd::Shutdown { name, how } => res(libc::shutdown(self.fd(&name)?, how) as isize),
                Cmd::Close { name } => {
                    let fd = self.fd(&name)?;
                    self.fds.remove(&name);
                    // close(2) → sock_close → inet_release → tcp_close; with
                    // SO_LINGER {1, N} this blocks in sk_stream_wait_close.
                    res(libc::close(fd) as isize)
                }
                Cmd::Poll { name, interest } => {
                    let fd = self.fd(&name)?;
                    let ep = libc::epoll_create1(libc::EPOLL_CLOEXEC);
                    if ep < 0 {
                        return Err(fail(errno()));
                    }
                    let mut ev = libc::epoll_event {
                        events: interest,
                        u64: 0,
                    };
                    if libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) < 0 {
                        let e = errno();
                        libc::close(ep);
                        return Err(fail(e));
                    }
                    let mut out = [libc::epoll_event { events: 0, u64: 0 }];
                    let n = libc::epoll_wait(ep, out.as_mut_ptr(), 1, 0);
                    let e = errno();
                    libc::close(ep);
                    if n < 0 {
                        return Err(fail(e));
                    }
                    Reply {
                        ret: if n == 0 { 0 } else { out[0].events as i64 },
                        ..Default::default()
                    }
                }
                Cmd::SetSockOpt {
                    name,
                    level,
                    opt,
                    linger,
                    value,
                } => {
                    let fd = self.fd(&name)?;
                    let r = match linger {
                        Some((on, secs)) => {
                            let l = libc::linger {
                                l_onoff: on,
                                l_linger: secs,
                            };
                            libc::setsockopt(
                                fd,
                                level,
                                opt,
                                (&l as *const libc::linger).cast(),
                                std::mem::size_of::<libc::linger>() as u32,
                            )
                        }
                        None => libc::setsockopt(
                            fd,
                            level,
                            opt,
                            (&value as *const i32).cast(),
                            std::mem::size_of::<i32>() as u32,
                        ),
                    };
                    res(r as isize)
                }
                Cmd::Disconnect { name } => {
                    let fd = self.fd(&name)?;
                    // connect(AF_UNSPEC): __inet_stream_connect → tcp_disconnect.
                    let mut sa: libc::sockaddr = std::mem::zeroed();
                    sa.sa_family = libc::AF_UNSPEC as libc::sa_family_t;
                    res(
                        libc::connect(fd, &sa, std::mem::size_of::<libc::sockaddr>() as u32)
                            as isize,
                    )
                }
                Cmd::GetSockOpt { name, level, opt } => {
                    let fd = self.fd(&name)?;
                    let mut b = vec![0u8; 512];
                    let mut len = b.len() as libc::socklen_t;
                    let r = libc::getsockopt(fd, level, opt, b.as_mut_ptr().cast(), &mut len);
                    let mut out = res(r as isize);
                    if r >= 0 {
                        out.data = Some(hex(&b[..len as usize]));
                    }
                    out
                }
                Cmd::Sysctl { key, value } => match write_sysctl(&key, &value) {
                    Ok(()) => Reply::default(),
                    Err(e) => fail(e.raw_os_error().unwrap_or(libc::EINVAL)),
                },
            })
        }
    }
}
