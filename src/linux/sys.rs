//! The system calls of the real-kernel engines that rustix does not wrap,
//! or wraps only as `unsafe`: each is a small wrapper here with its
//! `SAFETY` argument, and this is the only module of the crate with
//! `unsafe` code. Around them: interface configuration, TUN/TAP devices,
//! descriptor passing (SCM_RIGHTS), the packet-socket taps, clocks, errno
//! names. Everything rustix covers safely is called through it.

use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use rustix::ioctl::Opcode;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::net::Ipv4Addr;

/// `<linux/if_tun.h>`: `_IOW('T', 202, int)`.
const TUNSETIFF: Opcode = 0x4004_54ca;
const IFF_TUN: i16 = 0x0001;
const IFF_TAP: i16 = 0x0002;
const IFF_NO_PI: i16 = 0x1000;

/// `struct ifreq`: a name and a 24-byte union (`<net/if.h>`).
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    data: [u8; 24],
}

impl IfReq {
    fn new(name: &str) -> IfReq {
        let mut r = IfReq {
            name: [0; libc::IFNAMSIZ],
            data: [0; 24],
        };
        let n = name.len().min(libc::IFNAMSIZ - 1);
        r.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        r
    }
    fn set_short(&mut self, v: i16) {
        self.data[..2].copy_from_slice(&v.to_ne_bytes());
    }
    fn set_int(&mut self, v: i32) {
        self.data[..4].copy_from_slice(&v.to_ne_bytes());
    }
    fn short(&self) -> i16 {
        i16::from_ne_bytes([self.data[0], self.data[1]])
    }
    /// `ifr_addr` as a `struct sockaddr_in` (family, port 0, address).
    fn set_inet(&mut self, a: Ipv4Addr) {
        self.data[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        self.data[2..4].copy_from_slice(&[0, 0]);
        self.data[4..8].copy_from_slice(&a.octets());
    }
}

/// One ioctl on a `struct ifreq`.
fn ifreq_ioctl<const OP: Opcode>(fd: BorrowedFd<'_>, r: &mut IfReq, what: &str) -> io::Result<()> {
    // SAFETY: OP is one of TUNSETIFF and the SIOC[GS]IF* requests of
    // netdevice(7), each of which reads and writes exactly one struct
    // ifreq, and IfReq is that struct's layout (IFNAMSIZ name bytes, then
    // the 24-byte union).
    unsafe { rustix::ioctl::ioctl(fd, rustix::ioctl::Updater::<OP, IfReq>::new(r)) }
        .map_err(|e| with_context(e.into(), what))
}

/// An error with what failed in front.
pub fn with_context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Brings an interface up, optionally with an address/24 and an MTU, with
/// the classic `SIOCSIF*` ioctls on an AF_INET datagram socket (no netlink
/// needed for this).
pub fn if_up(name: &str, addr: Option<Ipv4Addr>, mtu: Option<i32>) -> io::Result<()> {
    let s = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| with_context(e.into(), "socket(AF_INET, SOCK_DGRAM)"))?;
    let fd = s.as_fd();
    if let Some(m) = mtu {
        let mut r = IfReq::new(name);
        r.set_int(m);
        ifreq_ioctl::<{ libc::SIOCSIFMTU as Opcode }>(
            fd,
            &mut r,
            &format!("SIOCSIFMTU {name} {m}"),
        )?;
    }
    if let Some(a) = addr {
        let mut r = IfReq::new(name);
        r.set_inet(a);
        ifreq_ioctl::<{ libc::SIOCSIFADDR as Opcode }>(
            fd,
            &mut r,
            &format!("SIOCSIFADDR {name} {a}"),
        )?;
        let mut r = IfReq::new(name);
        r.set_inet(Ipv4Addr::new(255, 255, 255, 0));
        ifreq_ioctl::<{ libc::SIOCSIFNETMASK as Opcode }>(
            fd,
            &mut r,
            &format!("SIOCSIFNETMASK {name}"),
        )?;
    }
    let mut r = IfReq::new(name);
    ifreq_ioctl::<{ libc::SIOCGIFFLAGS as Opcode }>(fd, &mut r, &format!("SIOCGIFFLAGS {name}"))?;
    r.set_short(r.short() | (libc::IFF_UP | libc::IFF_RUNNING) as i16);
    ifreq_ioctl::<{ libc::SIOCSIFFLAGS as Opcode }>(fd, &mut r, &format!("SIOCSIFFLAGS {name} up"))
}

/// What a TUN/TAP device carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunKind {
    /// `IFF_TUN`: raw IPv4 packets.
    Tun,
    /// `IFF_TAP`: Ethernet frames.
    Tap,
    /// `IFF_TUN | IFF_VNET_HDR` with TSO offloads (`TUNSETOFFLOAD`:
    /// checksum, TSO4, TSO6, TSO ECN), as packetdrill's netdev.c sets its
    /// device up: the kernel hands over GSO super-segments whole, each
    /// packet behind a [`VNET_HDR_LEN`]-byte `struct virtio_net_hdr`.
    TunTso,
}

/// `sizeof(struct virtio_net_hdr)`, the header before every packet of a
/// [`TunKind::TunTso`] device.
pub const VNET_HDR_LEN: usize = 10;
const IFF_VNET_HDR: i16 = 0x4000;
/// `TUNSETOFFLOAD` = `_IOW('T', 208, unsigned int)`.
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
/// `TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN`.
const TUN_OFFLOADS: libc::c_ulong = 0x01 | 0x02 | 0x04 | 0x08;

/// Creates a TUN or TAP device (`IFF_NO_PI`: no packet-information
/// header) in the calling task's network namespace and returns its
/// non-blocking descriptor; the device lives as long as the descriptor
/// (`tun_chr_close` unregisters a device that is not persistent).
pub fn tun_create(name: &str, kind: TunKind) -> io::Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        "/dev/net/tun",
        OFlags::RDWR | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .map_err(|e| with_context(e.into(), "open /dev/net/tun"))?;
    let mut r = IfReq::new(name);
    r.set_short(
        match kind {
            TunKind::Tun => IFF_TUN,
            TunKind::Tap => IFF_TAP,
            TunKind::TunTso => IFF_TUN | IFF_VNET_HDR,
        } | IFF_NO_PI,
    );
    ifreq_ioctl::<TUNSETIFF>(fd.as_fd(), &mut r, "ioctl TUNSETIFF")?;
    if kind == TunKind::TunTso {
        use std::os::fd::AsRawFd;
        // SAFETY: TUNSETOFFLOAD takes its argument by value (an unsigned
        // long of TUN_F_* bits, tun_set_offload) and touches no memory of
        // ours; fd is the TUN descriptor opened above.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETOFFLOAD as _, TUN_OFFLOADS) };
        if r != 0 {
            return Err(with_context(
                io::Error::last_os_error(),
                "ioctl TUNSETOFFLOAD",
            ));
        }
    }
    Ok(fd)
}

/// Sends descriptors over a UNIX socket (`SCM_RIGHTS`) with one byte.
pub fn send_fds(sock: BorrowedFd<'_>, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other(
            "sendmsg(SCM_RIGHTS): no room for the descriptors",
        ));
    }
    rustix::net::sendmsg(
        sock,
        &[IoSlice::new(b"F")],
        &mut control,
        SendFlags::NOSIGNAL,
    )
    .map_err(|e| with_context(e.into(), "sendmsg(SCM_RIGHTS)"))?;
    Ok(())
}

/// Receives up to `n` descriptors sent with [`send_fds`].
pub fn recv_fds(sock: BorrowedFd<'_>, n: usize) -> io::Result<Vec<OwnedFd>> {
    let mut byte = [0u8];
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(n))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let r = rustix::net::recvmsg(
        sock,
        &mut [IoSliceMut::new(&mut byte)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(|e| with_context(e.into(), "recvmsg(SCM_RIGHTS)"))?;
    if r.bytes == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "recvmsg(SCM_RIGHTS): peer closed",
        ));
    }
    let mut out = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = m {
            out.extend(fds);
        }
    }
    Ok(out)
}

/// Forks a child process that runs `child`, which never returns
/// (`Infallible`), and returns the child's pid in the parent.
///
/// In the child, every descriptor but 0-2 and `keep` is closed first
/// (close_range(2)): descriptors of other runs (their TUN devices, their
/// sockets) must not stay alive in it. After fork(2) only the calling
/// thread exists in the child, with a copy of the parent's memory, so
/// `child` must take no lock another thread may have held (glibc's malloc
/// resets its own in the child) and must not use the parent's objects
/// whose descriptors were just closed. It leaves through [`exit_now`]; a
/// panic leaves the same way, so no destructor of the parent's objects
/// runs in the child.
pub fn fork_child(
    keep: &[BorrowedFd<'_>],
    child: impl FnOnce() -> std::convert::Infallible,
) -> io::Result<i32> {
    let mut keep: Vec<u32> = keep.iter().map(|f| f.as_raw_fd() as u32).collect();
    keep.sort_unstable();
    // SAFETY: fork(2) itself; what the child may do is the contract above,
    // which `child` keeps, and the parent goes on untouched.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(with_context(io::Error::last_os_error(), "fork")),
        0 => {
            let mut from = 3;
            for k in keep.into_iter().filter(|&k| k >= 3) {
                if k > from {
                    close_range(from, k - 1);
                }
                from = from.max(k + 1);
            }
            close_range(from, u32::MAX);
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child));
            exit_now(101)
        }
        p => Ok(p),
    }
}

/// close_range(2) in a freshly forked child (see [`fork_child`]).
fn close_range(first: u32, last: u32) {
    // SAFETY: only called in the child of fork_child, before `child` runs:
    // the descriptors closed belong to copies of the parent's objects,
    // which the child never uses nor drops.
    unsafe { libc::close_range(first, last, 0) };
}

/// _exit(2): ends the process at once, running nothing of this one (no
/// atexit handlers, no destructors): what a forked child must do.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions; nothing runs after it.
    unsafe { libc::_exit(code) }
}

/// Moves the calling task into a new network namespace, and a new mount
/// namespace too if `mounts` (unshare(2)).
pub fn unshare_net(mounts: bool) -> io::Result<()> {
    use rustix::thread::UnshareFlags;
    let flags = if mounts {
        UnshareFlags::NEWNET | UnshareFlags::NEWNS
    } else {
        UnshareFlags::NEWNET
    };
    // SAFETY: rustix marks unshare unsafe for CLONE_FILES, after which
    // descriptors of other threads would no longer be shared; these flags
    // leave the descriptor table alone.
    unsafe { rustix::thread::unshare_unsafe(flags) }.map_err(io::Error::from)
}

/// Ignores SIGPIPE: a program that writes to a reset socket gets EPIPE
/// and does not die (signal(7)).
pub fn ignore_sigpipe() {
    // SAFETY: SIG_IGN installs no handler, so none of our code runs in
    // signal context.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// Puts the calling thread in the SCHED_FIFO class at `priority`
/// (sched_setscheduler(2)); false if that is not allowed.
pub fn set_fifo_priority(priority: i32) -> bool {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: pid 0 is the calling thread; the call only reads `param`.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0 }
}

/// `setsockopt(2)` with a value of any plain type: for the options rustix
/// does not have (TCP_REPAIR, TCP_LINGER2, SO_ATTACH_FILTER,
/// SO_TIMESTAMPNS) and for values its typed setters cannot say (a negative
/// buffer size or linger time, which the kernel takes as a huge unsigned
/// one).
pub fn setsockopt<T: Copy>(fd: BorrowedFd<'_>, level: i32, opt: i32, val: &T) -> io::Result<()> {
    // SAFETY: `val` is a live T of the length given, which the kernel
    // copies in (copy_from_user); a pointer inside it (sock_fprog's
    // program) is only read by the kernel the same way, so it cannot
    // corrupt our memory whatever it points to.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `getsockopt(2)` into a byte buffer: the option's raw bytes, as many as
/// the kernel wrote (TCP_INFO, SO_MEMINFO; rustix has neither).
pub fn getsockopt_bytes(
    fd: BorrowedFd<'_>,
    level: i32,
    opt: i32,
    buf: &mut [u8],
) -> io::Result<usize> {
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `buf` and sets
    // `len` to how many it wrote.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok((len as usize).min(buf.len()))
    }
}

/// `_SC_NPROCESSORS_CONF`: the CPUs the kernel has per-CPU buffers for.
pub fn cpus_configured() -> i32 {
    // SAFETY: sysconf(3) only answers a query.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
    n.max(1) as i32
}

fn ns(t: rustix::time::Timespec) -> u64 {
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// CLOCK_MONOTONIC in nanoseconds (the clock perf samples are stamped with).
pub fn monotonic_ns() -> u64 {
    ns(rustix::time::clock_gettime(
        rustix::time::ClockId::Monotonic,
    ))
}

/// The kernel's `jiffies` and the CLOCK_MONOTONIC time (ns) it was read at,
/// from /proc/timer_list (root only): its header's `now at N nsecs` is
/// `ktime_get()`, and each CPU's tick section prints `jiffies: J`. None when
/// the file cannot be read or parsed.
pub fn jiffies_now() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/timer_list").ok()?;
    let now = text
        .lines()
        .find_map(|l| l.strip_prefix("now at ")?.strip_suffix(" nsecs"))?
        .trim()
        .parse()
        .ok()?;
    let jiffies = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("jiffies:"))?
        .trim()
        .parse()
        .ok()?;
    Some((jiffies, now))
}

/// CLOCK_REALTIME minus CLOCK_MONOTONIC, in ns: turns a tap's stamp into the
/// clock the relay and the tracepoints use.
pub fn realtime_offset_ns() -> i64 {
    let real = ns(rustix::time::clock_gettime(rustix::time::ClockId::Realtime));
    real as i64 - monotonic_ns() as i64
}

/// Effective capabilities of this process (`CapEff` in /proc/self/status).
pub fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_SYS_ADMIN: u32 = 21;

/// `PACKET_OUTGOING` (`<linux/if_packet.h>`): a packet this host sent.
const PACKET_OUTGOING: u32 = 4;
/// `SKF_AD_PKTTYPE` (`<linux/filter.h>`): the ancillary load of pkt_type.
const SKF_AD_PKTTYPE: i32 = 4;
/// Bytes kept of each packet a tap sees: an IPv4 header and a TCP header
/// with every option (20 + 60), rounded up. Enough to tell packets apart.
pub const TAP_SNAPLEN: usize = 96;

/// A packet socket on interface `ifname` that sees what this namespace
/// sends out of it, each packet's first [`TAP_SNAPLEN`] bytes stamped by the
/// kernel (`SO_TIMESTAMPNS`: CLOCK_REALTIME, taken in dev_queue_xmit_nit
/// when the packet is handed to the device). A classic BPF filter keeps
/// only `PACKET_OUTGOING` packets and cuts them at the snap length, so the
/// packets the relay writes in, and bulk payloads, cost nothing.
pub fn tap_create(ifname: &str) -> io::Result<OwnedFd> {
    // Protocol 0: nothing is received before the filter is in place and
    // bind() names the protocol and the interface.
    let fd = rustix::net::socket_with(
        AddressFamily::PACKET,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .map_err(|e| with_context(e.into(), "socket(AF_PACKET)"))?;
    let ifindex = rustix::net::netdevice::name_to_index(&fd, ifname)
        .map_err(|e| with_context(e.into(), &format!("SIOCGIFINDEX {ifname}")))?;
    let mut prog = [
        // A = skb->pkt_type
        libc::sock_filter {
            code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: (libc::SKF_AD_OFF + SKF_AD_PKTTYPE) as u32,
        },
        // if A == PACKET_OUTGOING keep TAP_SNAPLEN bytes, else drop
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: PACKET_OUTGOING,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: TAP_SNAPLEN as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: 0,
        },
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    setsockopt(fd.as_fd(), libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
        .map_err(|e| with_context(e, "SO_ATTACH_FILTER"))?;
    setsockopt(fd.as_fd(), libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &1i32)
        .map_err(|e| with_context(e, "SO_TIMESTAMPNS"))?;
    // A bulk burst can put thousands of packets in the queue before the
    // relay reads it; as root the limit can be raised past rmem_max.
    let _ = rustix::net::sockopt::set_socket_recv_buffer_size_force(&fd, 64 << 20);
    let sll = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: (libc::ETH_P_ALL as u16).to_be(),
        sll_ifindex: ifindex as i32,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    // SAFETY: bind(2) reads the sockaddr_ll it is given, of the size given.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(with_context(io::Error::last_os_error(), "bind(AF_PACKET)"));
    }
    Ok(fd)
}

/// Reads one packet from a tap without blocking: its first bytes (into
/// `buf`, at most [`TAP_SNAPLEN`]) and the kernel's CLOCK_REALTIME stamp in
/// ns. `None` when the queue is empty.
pub fn tap_read(fd: BorrowedFd<'_>, buf: &mut [u8; TAP_SNAPLEN]) -> Option<(usize, u64)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Room for one SCM_TIMESTAMPNS (a struct timespec) and then some.
    let mut cbuf = [0u64; 16];
    let mut stamp = 0;
    // SAFETY: msghdr is plain data (all zeroes is a valid value), filled
    // in with live buffers: recvmsg(2) writes at most iov_len bytes into
    // `buf` and msg_controllen bytes of control messages into `cbuf`, and
    // the CMSG_* walk stays inside what it wrote (msg_controllen on
    // return). SO_TIMESTAMPNS's message carries a struct timespec, read
    // unaligned.
    let n = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        let n = libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT);
        if n >= 0 {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                    let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    stamp = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        n
    };
    if n < 0 {
        return None;
    }
    Some(((n as usize).min(TAP_SNAPLEN), stamp))
}

/// `struct perf_event_attr` (PERF_ATTR_SIZE_VER8, 136 bytes).
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
    branch_sample_type: u64,
    sample_regs_user: u64,
    sample_stack_user: u32,
    clockid: i32,
    sample_regs_intr: u64,
    aux_watermark: u32,
    sample_max_stack: u16,
    reserved2: u16,
    aux_sample_size: u32,
    reserved3: u32,
    sig_data: u64,
    config3: u64,
}

const PERF_TYPE_TRACEPOINT: u32 = 2;
const PERF_SAMPLE_TIME: u64 = 1 << 2;
const PERF_SAMPLE_RAW: u64 = 1 << 10;
/// `use_clockid` is bit 25 of the flag word.
const FLAG_USE_CLOCKID: u64 = 1 << 25;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;

/// perf_event_open(2) of tracepoint `id` on one CPU for every task (pid
/// -1, softirq context included): every hit is a sample with its
/// CLOCK_MONOTONIC time and raw record (PERF_SAMPLE_TIME |
/// PERF_SAMPLE_RAW). rustix has no perf_event_open.
pub fn perf_tracepoint_open(id: u64, cpu: i32) -> io::Result<OwnedFd> {
    let attr = PerfEventAttr {
        type_: PERF_TYPE_TRACEPOINT,
        size: std::mem::size_of::<PerfEventAttr>() as u32,
        config: id,
        sample_period: 1,
        sample_type: PERF_SAMPLE_TIME | PERF_SAMPLE_RAW,
        flags: FLAG_USE_CLOCKID,
        wakeup_events: 1,
        clockid: libc::CLOCK_MONOTONIC,
        ..Default::default()
    };
    // SAFETY: the kernel reads `attr.size` bytes of a live
    // perf_event_attr; the descriptor it returns is owned right away.
    unsafe {
        let fd = libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfEventAttr,
            -1 as libc::pid_t,
            cpu,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(<OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(
            fd as RawFd,
        ))
    }
}

/// A perf event's ring buffer mapped into this process: one metadata page
/// (`struct perf_event_mmap_page`) and 2^n data pages.
pub struct PerfRing {
    fd: OwnedFd,
    base: *mut u8,
    len: usize,
    page: usize,
}

// SAFETY: the mapping belongs to the PerfRing alone and is only touched
// through `&mut self`; nothing about it is tied to the thread that made it.
unsafe impl Send for PerfRing {}

impl PerfRing {
    /// Maps the ring of a perf event descriptor with `data_pages` (a power
    /// of two) pages of records.
    pub fn map(fd: OwnedFd, data_pages: usize) -> io::Result<PerfRing> {
        use rustix::mm::{MapFlags, ProtFlags};
        let page = rustix::param::page_size();
        let len = page * (1 + data_pages);
        // SAFETY: a new shared mapping of our own perf descriptor, at an
        // address the kernel picks: it aliases nothing of ours.
        let base = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &fd,
                0,
            )
        }
        .map_err(|e| with_context(e.into(), "mmap perf ring"))?;
        Ok(PerfRing {
            fd,
            base: base.cast(),
            len,
            page,
        })
    }

    /// Every record written since the last call, oldest first: its type
    /// and its bytes after the 8-byte `struct perf_event_header`.
    pub fn take(&mut self) -> Vec<(u32, Vec<u8>)> {
        let mut out = Vec::new();
        // SAFETY: base..base+len is our mapping (see `map`). Its first page
        // is struct perf_event_mmap_page: data_head (offset 1024) is
        // published by the kernel with release semantics after it writes
        // records, and read here with acquire; data_tail (offset 1032) is
        // ours, published with release after the records are copied. Data
        // bytes are read only between tail and head, which the kernel does
        // not write again until the tail has moved past them, and every
        // index is reduced modulo the data area's size.
        unsafe {
            use std::sync::atomic::{AtomicU64, Ordering};
            let head_p = self.base.add(1024) as *const AtomicU64;
            let tail_p = self.base.add(1032) as *const AtomicU64;
            let head = (*head_p).load(Ordering::Acquire);
            let mut tail = (*tail_p).load(Ordering::Relaxed);
            let data = self.base.add(self.page);
            let size = (self.len - self.page) as u64;
            let copy = |from: u64, n: usize| -> Vec<u8> {
                (0..n as u64)
                    .map(|i| *data.add(((from + i) % size) as usize))
                    .collect()
            };
            while tail < head {
                let h = copy(tail, 8);
                let typ = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]);
                let sz = u16::from_ne_bytes([h[6], h[7]]) as u64;
                if sz < 8 {
                    break;
                }
                out.push((typ, copy(tail + 8, sz as usize - 8)));
                tail += sz;
            }
            (*tail_p).store(tail, Ordering::Release);
        }
        out
    }
}

impl Drop for PerfRing {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping, once; nothing points into it
        // after this (`take` copies what it reads).
        let _ = unsafe { rustix::mm::munmap(self.base.cast(), self.len) };
        let _ = self.fd.as_raw_fd();
    }
}

/// `struct tcp_info` from the bytes `getsockopt(TCP_INFO)` returned, and
/// how many of its bytes they filled (an older kernel's is shorter; the
/// rest stays zero).
pub fn tcp_info_from(b: &[u8]) -> (libc::tcp_info, usize) {
    // SAFETY: tcp_info is plain integers, valid when zeroed.
    let mut t: libc::tcp_info = unsafe { std::mem::zeroed() };
    let n = b.len().min(std::mem::size_of::<libc::tcp_info>());
    // SAFETY: `n` bytes fit in `t`, and the source holds `n` bytes.
    unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), (&raw mut t).cast::<u8>(), n) };
    (t, n)
}
