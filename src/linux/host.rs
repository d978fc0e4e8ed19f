//! One script host = one forked child process living in its own network
//! namespace, running the host's "program": it performs each socket call it
//! is sent over a UNIX socket with one plain system call (rustix) and
//! answers with the result. Both real-kernel engines drive their kernel
//! hosts through it: the linux engine (a TUN device per host, [`Link::Relay`])
//! and the smoltcp-tap engine's kernel host (a TAP device, [`Link::Tap`]).
//!
//! Why a process and not a thread: `exit` in a script must look to the
//! kernel exactly like kill -9 — `do_exit` closes every descriptor with
//! `PF_EXITING` set, so `inet_release` does not honour SO_LINGER's timeout —
//! and only a real process dying gives that. The child is forked without
//! exec (`sys::fork_child`); after `fork` it touches only its own socket,
//! system calls and the allocator (glibc's malloc is fork-safe), never a
//! lock of the parent.
//!
//! Cleanup: the child asks for SIGKILL when the thread that forked it dies
//! (`PR_SET_PDEATHSIG`), closes every inherited descriptor but its own
//! (`close_range`), and its namespace is unnamed: it lives only as long as
//! the child or a descriptor the parent holds (the TUN or TAP device, the
//! nsfs handle). Killing the parent, even with SIGKILL, therefore frees
//! everything.

use super::sys;
use crate::script::{Call, Data, GetOpt, How, Ioctl, MsgFlags, SockOpt};
use crate::vocab::Errno;
use crate::vocab::{Scope, Sysctl, Sysctls};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::net::sockopt;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
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

/// The TUN (or TAP) device every host namespace gets.
pub const TUN_NAME: &str = "fr0";
/// As loopback's 65536 would: advmss = 65535 - 40 = 65495, so the SYN says
/// `mss 65495` exactly as on `lo`. (65535 is the most a TUN device takes.)
pub const TUN_MTU: i32 = 65535;

/// An Ethernet TAP device's MTU: the kernel's default for one, so the
/// kernel host's SYN says `mss 1460`.
pub const TAP_MTU: i32 = 1500;

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

/// What the parent asks a host's program to do.
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
        flags: MsgFlags,
    },
    Recv {
        name: String,
        len: u32,
        flags: MsgFlags,
    },
    Shutdown {
        name: String,
        how: How,
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
        opt: SockOpt,
    },
    Disconnect {
        name: String,
    },
    /// `getsockopt`: the option's raw bytes come back in `data`.
    GetSockOpt {
        name: String,
        opt: GetOpt,
    },
    Sysctl {
        key: String,
        value: String,
    },
    /// `ioctl`: the number comes back as the result.
    Ioctl {
        name: String,
        req: Ioctl,
    },
}

impl Cmd {
    /// The command for a script call that needs no address: every call but
    /// listen, connect (each engine names the addresses) and exit (which
    /// kills the program rather than asking it). `new_name` is what an
    /// accepted socket is called.
    pub fn for_call(name: String, call: &Call, new_name: Option<&str>) -> Option<Cmd> {
        Some(match call {
            Call::Socket => Cmd::Socket { name },
            Call::Accept => Cmd::Accept {
                name,
                new_name: new_name.unwrap_or("conn").to_string(),
            },
            Call::Send { data, flags } => Cmd::Send {
                name,
                data: match data {
                    Data::Count(n) => Payload::Count(*n),
                    Data::Bytes(b) => Payload::Hex(hex(b)),
                },
                flags: *flags,
            },
            Call::Recv { len, flags } => Cmd::Recv {
                name,
                len: *len,
                flags: *flags,
            },
            Call::Shutdown(how) => Cmd::Shutdown { name, how: *how },
            Call::Close => Cmd::Close { name },
            Call::Poll { interest } => Cmd::Poll {
                name,
                interest: *interest,
            },
            Call::SetSockOpt(opt) => Cmd::SetSockOpt { name, opt: *opt },
            Call::GetSockOpt(opt) => Cmd::GetSockOpt { name, opt: *opt },
            Call::Disconnect => Cmd::Disconnect { name },
            Call::Ioctl(req) => Cmd::Ioctl { name, req: *req },
            Call::Listen { .. } | Call::Connect { .. } | Call::Exit => return None,
        })
    }
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

/// What joins a new host namespace to the world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// The linux engine's: a TUN device (raw IPv4, [`TUN_MTU`]) that the
    /// relay reads and writes, and a packet socket on it that stamps each
    /// packet's send time.
    Relay,
    /// The smoltcp-tap engine's: a TAP device (Ethernet, [`TAP_MTU`])
    /// whose other end is smoltcp in this process.
    #[cfg_attr(not(feature = "smoltcp"), allow(dead_code))]
    Tap,
}

/// A freshly created host namespace.
pub struct NewHost {
    pub proc: HostProc,
    /// The TUN (or, for [`Link::Tap`], TAP) device's descriptor: the
    /// device lives as long as it does.
    pub tun: OwnedFd,
    /// [`Link::Relay`]: a packet socket on the TUN device, the kernel's
    /// send time of each packet (`sys::tap_create`).
    pub tap: Option<OwnedFd>,
    pub netns: OwnedFd,
    pub tracepoint: Option<(u64, String)>,
    pub reset_tracepoint: Option<(u64, String)>,
}

/// How a child starts.
enum Setup<'a> {
    /// `unshare(CLONE_NEWNET)`, configure it, create the link's device.
    New {
        addr: Ipv4Addr,
        link: Link,
        tracefs: bool,
        dev: Dev,
    },
    /// `setns` into an existing host namespace (after `exit`).
    Join { netns: &'a OwnedFd },
}

/// The TUN device of a [`Link::Relay`] host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dev {
    pub mtu: i32,
    /// TSO offloads and a virtio header per packet ([`sys::TunKind::TunTso`]).
    pub tso: bool,
}

impl Default for Dev {
    fn default() -> Self {
        Dev {
            mtu: TUN_MTU,
            tso: false,
        }
    }
}

/// Forks a host child in a new network namespace with address `addr` on
/// `link`'s device.
pub fn spawn_new(
    addr: Ipv4Addr,
    link: Link,
    tracefs: bool,
    bound: Duration,
    dev: Dev,
) -> Result<NewHost, String> {
    let (proc, fds, ready) = fork_child(
        Setup::New {
            addr,
            link,
            tracefs,
            dev,
        },
        bound,
    )?;
    let mut fds = fds.into_iter();
    let tun = fds.next();
    let tap = if link == Link::Relay {
        fds.next()
    } else {
        None
    };
    let (Some(tun), Some(netns)) = (tun, fds.next()) else {
        return Err("host child sent no TUN/netns descriptors".into());
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
    let parent_pid = rustix::process::getpid();
    // The child keeps its end of the socket and, to join it, the
    // namespace handle; every other descriptor is closed in it.
    let mut keep = vec![child_end.as_fd()];
    if let Setup::Join { netns } = &setup {
        keep.push(netns.as_fd());
    }
    let pid = sys::fork_child(&keep, || child_main(parent_pid, &child_end, &setup, bound))
        .map_err(|e| e.to_string())?;
    drop(keep);
    drop(child_end);
    let mut proc = HostProc {
        pid,
        sock: parent_end,
    };
    // The child answers with a Ready frame, then (new namespace only) the
    // device and namespace descriptors.
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
    let fds = match setup {
        Setup::New { link, .. } => {
            let n = if link == Link::Relay { 3 } else { 2 };
            match sys::recv_fds(proc.sock.as_fd(), n) {
                Ok(f) if f.len() == n => f,
                Ok(_) => {
                    proc.kill();
                    return Err("host child sent no TUN/netns descriptors".into());
                }
                Err(e) => {
                    proc.kill();
                    return Err(format!("host child descriptors: {e}"));
                }
            }
        }
        Setup::Join { .. } => Vec::new(),
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

    /// Sends a command and waits for its answer, at most `timeout`.
    #[cfg_attr(not(feature = "smoltcp"), allow(dead_code))]
    pub fn ask(&mut self, cmd: &Cmd, timeout: Duration) -> Result<Reply, String> {
        self.send(cmd)?;
        self.recv(timeout)
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
        use rustix::event::{PollFd, PollFlags, Timespec};
        let mut p = [PollFd::new(&self.sock, PollFlags::IN)];
        let now = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        rustix::event::poll(&mut p, Some(&now)).is_ok_and(|n| n > 0)
    }

    /// kill -9 and reap.
    pub fn kill(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
            self.pid = 0;
        }
    }
}

/// The program's end of the command socket: readable when an answer waits.
impl AsFd for HostProc {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl Drop for HostProc {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------
// The child side. Everything below runs in the forked child only.

fn child_main(
    parent: rustix::process::Pid,
    sock: &UnixStream,
    setup: &Setup,
    bound: Duration,
) -> ! {
    // Die with the thread that forked us (prctl(2) PR_SET_PDEATHSIG); if it
    // is gone already, the signal will never come: leave now.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    if rustix::process::getppid() != Some(parent) {
        sys::exit_now(1);
    }
    // A program that writes to a reset socket must get EPIPE, not die.
    sys::ignore_sigpipe();
    let mut s = sock;
    let mut ready = Ready::default();
    let mut fds: Option<(OwnedFd, Option<OwnedFd>, OwnedFd)> = None;
    let res = match setup {
        Setup::New {
            addr,
            link,
            tracefs,
            dev,
        } => setup_new(*addr, *link, *tracefs, *dev, &mut ready).map(|f| fds = Some(f)),
        // The handle stays open in the program: the namespace lives as long
        // as the program anyway.
        Setup::Join { netns } => rustix::thread::move_into_link_name_space(
            netns.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .map_err(|e| format!("setns: {}", io::Error::from(e))),
    };
    if let Err(e) = res {
        ready.error = Some(e);
        let _ = write_frame(&mut s, &serde_json::to_vec(&ready).unwrap_or_default());
        sys::exit_now(1);
    }
    let _ = write_frame(&mut s, &serde_json::to_vec(&ready).unwrap_or_default());
    if let Some((tun, tap, ns)) = fds {
        let mut send = vec![tun.as_fd()];
        send.extend(tap.as_ref().map(|t| t.as_fd()));
        send.push(ns.as_fd());
        if sys::send_fds(s.as_fd(), &send).is_err() {
            sys::exit_now(1);
        }
        // The parent holds its copies now; the program keeps none.
        drop(send);
        drop((tun, tap, ns));
    }
    let mut prog = Program {
        fds: HashMap::new(),
        unnamed: Vec::new(),
        bound,
    };
    loop {
        let Ok(b) = read_frame(&mut s) else {
            // The parent is gone: a program with no controller exits.
            sys::exit_now(0);
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
            sys::exit_now(0);
        }
    }
}

fn setup_new(
    addr: Ipv4Addr,
    link: Link,
    tracefs: bool,
    dev: Dev,
    ready: &mut Ready,
) -> Result<(OwnedFd, Option<OwnedFd>, OwnedFd), String> {
    let unshare = |mounts| {
        sys::unshare_net(mounts).map_err(|e| {
            format!(
                "cannot create a network namespace (unshare(CLONE_NEWNET): {e}): the linux engine needs root (CAP_SYS_ADMIN); use --engine model"
            )
        })
    };
    // Two steps: a throwaway namespace whose tcp_child_ehash_entries gives
    // the host's namespace, created from it, a small private established
    // hash (tcp_set_hashinfo). Otherwise the host shares init_net's table
    // (262144 buckets here) and every read of /proc/<pid>/net/tcp walks all
    // of it. The throwaway namespace dies at the second unshare.
    unshare(tracefs)?;
    if write_sysctl(Sysctl::TcpChildEhashEntries.name(), "1024").is_err() {
        // An older kernel without per-namespace hash tables: shared table.
    }
    unshare(false)?;
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
    let (tun, tap) = match link {
        Link::Relay => {
            let kind = if dev.tso {
                sys::TunKind::TunTso
            } else {
                sys::TunKind::Tun
            };
            let tun = sys::tun_create(TUN_NAME, kind).map_err(|e| format!("TUN device: {e}"))?;
            sys::if_up(TUN_NAME, Some(addr), Some(dev.mtu)).map_err(|e| e.to_string())?;
            let tap = sys::tap_create(TUN_NAME)
                .map_err(|e| format!("packet socket on {TUN_NAME}: {e}"))?;
            (tun, Some(tap))
        }
        Link::Tap => {
            let tap = sys::tun_create(TUN_NAME, sys::TunKind::Tap)
                .map_err(|e| format!("TAP device: {e}"))?;
            sys::if_up(TUN_NAME, Some(addr), Some(TAP_MTU)).map_err(|e| e.to_string())?;
            (tap, None)
        }
    };
    let ns = rustix::fs::open(
        "/proc/self/ns/net",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| format!("open /proc/self/ns/net: {}", io::Error::from(e)))?;
    Ok((tun, tap, ns))
}

/// Mounts tracefs in this child's private mount namespace if it is not
/// there (nothing shows outside and nothing is left: the namespace dies with
/// the child) and reads a tracepoint's id and format (`event` is
/// `group/name`).
fn read_tracepoint(event: &str) -> Result<(u64, String), String> {
    use rustix::mount::{MountFlags, MountPropagationFlags};
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
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
    )
    .map_err(|e| format!("make mounts private: {}", io::Error::from(e)))?;
    rustix::mount::mount(
        "tracefs",
        "/sys/kernel/tracing",
        "tracefs",
        MountFlags::empty(),
        None,
    )
    .map_err(|e| format!("mount tracefs: {}", io::Error::from(e)))?;
    read().map_err(|e| format!("{dir}: {e}"))
}

fn write_sysctl(key: &str, value: &str) -> io::Result<()> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    std::fs::write(path, value)
}

/// The host's program: its descriptors by script name.
struct Program {
    fds: HashMap<String, OwnedFd>,
    /// Sockets whose name a later accept took: still open, as in a C
    /// program that stored a new descriptor over an old one.
    unnamed: Vec<OwnedFd>,
    bound: Duration,
}

fn fail(e: i32) -> Reply {
    Reply {
        ret: -1,
        errno: Some(Errno::from_raw(e)),
        ..Default::default()
    }
}

/// A failed call's answer, from rustix's errno.
fn failed(e: rustix::io::Errno) -> Reply {
    fail(e.raw_os_error())
}

fn ok(ret: i64) -> Reply {
    Reply {
        ret,
        ..Default::default()
    }
}

impl Program {
    fn fd(&self, name: &str) -> Result<BorrowedFd<'_>, Reply> {
        self.fds
            .get(name)
            .map(|f| f.as_fd())
            .ok_or_else(|| fail(libc::EBADF))
    }

    /// Blocking calls are bounded with SO_RCVTIMEO/SO_SNDTIMEO (honoured by
    /// `inet_csk_accept`, `tcp_recvmsg`, `tcp_sendmsg` and
    /// `inet_stream_connect` through `sock_rcvtimeo`/`sock_sndtimeo`): a run
    /// cannot hang, and nothing else about the socket changes.
    fn bound_timeouts(&self, fd: BorrowedFd) {
        for t in [sockopt::Timeout::Recv, sockopt::Timeout::Send] {
            let _ = sockopt::set_socket_timeout(fd, t, Some(self.bound));
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
    fn cubic(&self, fd: BorrowedFd) {
        let _ = sockopt::set_tcp_congestion(fd, "cubic");
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
        use rustix::net::{self as net, AddressFamily, RecvFlags, SendFlags, SocketType};
        Ok(match cmd {
            Cmd::SetBound { us } => {
                self.bound = Duration::from_micros(us.max(1_000));
                Reply::default()
            }
            Cmd::Socket { name } => {
                let fd =
                    net::socket(AddressFamily::INET, SocketType::STREAM, None).map_err(failed)?;
                self.bound_timeouts(fd.as_fd());
                self.cubic(fd.as_fd());
                let ret = fd.as_raw_fd() as i64;
                // A new socket under an old name closes the old one.
                self.fds.insert(name, fd);
                ok(ret)
            }
            Cmd::Listen {
                name,
                addr,
                port,
                backlog,
            } => {
                let fd = self.fd(&name)?;
                net::bind(fd, &SocketAddrV4::new(addr.into(), port)).map_err(failed)?;
                // As listen(2) takes it: the kernel clamps it to somaxconn.
                net::listen(fd, backlog as i32).map_err(failed)?;
                ok(0)
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
                // A disconnected socket keeps its bound port: bind only once.
                let bound = net::getsockname(fd)
                    .ok()
                    .and_then(|a| SocketAddrV4::try_from(a).ok())
                    .is_some_and(|a| a.port() != 0);
                if !bound {
                    net::bind(fd, &SocketAddrV4::new(laddr.into(), lport)).map_err(failed)?;
                }
                if nonblock {
                    let _ = rustix::io::ioctl_fionbio(fd, true);
                }
                let r = net::connect(fd, &SocketAddrV4::new(raddr.into(), rport));
                if nonblock {
                    let _ = rustix::io::ioctl_fionbio(fd, false);
                }
                r.map_err(failed)?;
                ok(0)
            }
            Cmd::Accept { name, new_name } => {
                // accept(2)'s own address (inet_getname with peer 2), which
                // a child reset before it was accepted still has; a later
                // getpeername would say ENOTCONN.
                let (c, peer) = net::acceptfrom(self.fd(&name)?).map_err(failed)?;
                self.bound_timeouts(c.as_fd());
                self.cubic(c.as_fd());
                let peer = peer
                    .and_then(|a| SocketAddrV4::try_from(a).ok())
                    .unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
                let ret = c.as_raw_fd() as i64;
                if let Some(old) = self.fds.insert(new_name, c) {
                    self.unnamed.push(old);
                }
                Reply {
                    ret,
                    peer: Some((peer.ip().octets(), peer.port())),
                    ..Default::default()
                }
            }
            Cmd::Send { name, data, flags } => {
                let fd = self.fd(&name)?;
                let b = match data {
                    Payload::Count(n) => crate::script::Data::Count(n).bytes(),
                    Payload::Hex(h) => unhex(&h),
                };
                let mut f = SendFlags::empty();
                f.set(SendFlags::OOB, flags.oob);
                f.set(SendFlags::NOSIGNAL, flags.nosignal);
                f.set(SendFlags::DONTWAIT, flags.dontwait);
                ok(net::send(fd, &b, f).map_err(failed)? as i64)
            }
            Cmd::Recv { name, len, flags } => {
                let fd = self.fd(&name)?;
                let mut f = RecvFlags::empty();
                f.set(RecvFlags::OOB, flags.oob);
                f.set(RecvFlags::PEEK, flags.peek);
                f.set(RecvFlags::DONTWAIT, flags.dontwait);
                let mut b = vec![0u8; len as usize];
                let (n, _) = net::recv(fd, &mut b[..], f).map_err(failed)?;
                Reply {
                    ret: n as i64,
                    data: Some(hex(&b[..n])),
                    ..Default::default()
                }
            }
            Cmd::Shutdown { name, how } => {
                let how = match how {
                    How::Rd => net::Shutdown::Read,
                    How::Wr => net::Shutdown::Write,
                    How::RdWr => net::Shutdown::Both,
                };
                net::shutdown(self.fd(&name)?, how).map_err(failed)?;
                ok(0)
            }
            Cmd::Close { name } => {
                let Some(fd) = self.fds.remove(&name) else {
                    return Err(fail(libc::EBADF));
                };
                // close(2) → sock_close → inet_release → tcp_close; with
                // SO_LINGER {1, N} this blocks in sk_stream_wait_close.
                // sock_close always returns 0.
                drop(fd);
                ok(0)
            }
            Cmd::Poll { name, interest } => {
                use rustix::event::{Timespec, epoll};
                let fd = self.fd(&name)?;
                let ep = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(failed)?;
                epoll::add(
                    &ep,
                    fd,
                    epoll::EventData::new_u64(0),
                    epoll::EventFlags::from_bits_retain(interest),
                )
                .map_err(failed)?;
                let mut out = Vec::with_capacity(1);
                let now = Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                epoll::wait(&ep, rustix::buffer::spare_capacity(&mut out), Some(&now))
                    .map_err(failed)?;
                // Copied out: rustix's `Event` is packed, as the kernel's is.
                let flags = out.first().map(|e| e.flags);
                ok(flags.map_or(0, |f| f.bits() as i64))
            }
            Cmd::SetSockOpt { name, opt } => {
                set_sockopt(self.fd(&name)?, opt)
                    .map_err(|e| fail(e.raw_os_error().unwrap_or(libc::EINVAL)))?;
                ok(0)
            }
            Cmd::Disconnect { name } => {
                // connect(AF_UNSPEC): __inet_stream_connect → tcp_disconnect.
                net::connect_unspec(self.fd(&name)?).map_err(failed)?;
                ok(0)
            }
            Cmd::GetSockOpt { name, opt } => {
                let (level, o) = match opt {
                    GetOpt::MemInfo => (libc::SOL_SOCKET, libc::SO_MEMINFO),
                    GetOpt::TcpInfo => (libc::IPPROTO_TCP, libc::TCP_INFO),
                };
                let mut b = [0u8; 512];
                let n = sys::getsockopt_bytes(self.fd(&name)?, level, o, &mut b)
                    .map_err(|e| fail(e.raw_os_error().unwrap_or(libc::EINVAL)))?;
                Reply {
                    data: Some(hex(&b[..n])),
                    ..Default::default()
                }
            }
            Cmd::Ioctl { name, req } => match req {
                // SIOCINQ is FIONREAD on a socket (tcp_ioctl).
                Ioctl::InQ => {
                    let n = rustix::io::ioctl_fionread(self.fd(&name)?).map_err(failed)?;
                    ok(n as i64)
                }
            },
            Cmd::Sysctl { key, value } => match write_sysctl(&key, &value) {
                Ok(()) => Reply::default(),
                Err(e) => fail(e.raw_os_error().unwrap_or(libc::EINVAL)),
            },
        })
    }
}

/// `setsockopt` of a script's option: rustix's typed setter where it has
/// one that can say the value; the raw int (or `struct linger`) where it
/// has none (TCP_REPAIR, TCP_LINGER2) or the value is negative, which
/// `sk_setsockopt` takes as a huge unsigned one (SO_RCVBUF clamped to
/// rmem_max, a linger time of MAX_SCHEDULE_TIMEOUT).
fn set_sockopt(fd: BorrowedFd, opt: SockOpt) -> io::Result<()> {
    let raw = |level, name, v: i32| sys::setsockopt(fd, level, name, &v);
    match opt {
        SockOpt::Linger { on, secs } if !on || secs >= 0 => {
            // With l_onoff 0 the kernel ignores l_linger.
            let t = on.then(|| Duration::from_secs(secs as u64));
            Ok(sockopt::set_socket_linger(fd, t)?)
        }
        SockOpt::Linger { on, secs } => {
            let l = libc::linger {
                l_onoff: on as i32,
                l_linger: secs,
            };
            sys::setsockopt(fd, libc::SOL_SOCKET, libc::SO_LINGER, &l)
        }
        SockOpt::RcvBuf(n) if n >= 0 => Ok(sockopt::set_socket_recv_buffer_size(fd, n as usize)?),
        SockOpt::RcvBuf(n) => raw(libc::SOL_SOCKET, libc::SO_RCVBUF, n),
        SockOpt::SndBuf(n) if n >= 0 => Ok(sockopt::set_socket_send_buffer_size(fd, n as usize)?),
        SockOpt::SndBuf(n) => raw(libc::SOL_SOCKET, libc::SO_SNDBUF, n),
        SockOpt::OobInline(b) => Ok(sockopt::set_socket_oobinline(fd, b)?),
        SockOpt::NoDelay(b) => Ok(sockopt::set_tcp_nodelay(fd, b)?),
        SockOpt::Repair(b) => raw(libc::IPPROTO_TCP, libc::TCP_REPAIR, b as i32),
        SockOpt::Linger2(n) => raw(libc::IPPROTO_TCP, libc::TCP_LINGER2, n),
        // Raw ints, so that an out-of-range value reaches the kernel's own
        // check (do_tcp_setsockopt's -EINVAL) as the script wrote it.
        SockOpt::UserTimeout(n) => raw(libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, n),
        SockOpt::KeepAlive(b) => raw(libc::SOL_SOCKET, libc::SO_KEEPALIVE, b as i32),
        SockOpt::KeepIdle(n) => raw(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, n),
        SockOpt::KeepIntvl(n) => raw(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, n),
        SockOpt::KeepCnt(n) => raw(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, n),
        SockOpt::SynCnt(n) => raw(libc::IPPROTO_TCP, libc::TCP_SYNCNT, n),
        SockOpt::Inq(b) => raw(libc::IPPROTO_TCP, libc::TCP_INQ, b as i32),
    }
}
