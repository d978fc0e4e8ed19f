//! Thin, checked wrappers over the raw syscalls the linux engine needs and
//! that neither `std` nor `libc` wrap: interface ioctls, TUN, passing
//! descriptors over a UNIX socket (SCM_RIGHTS), errno names.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// `<linux/if_tun.h>`: `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;

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
    fn set_short(&mut self, v: libc::c_short) {
        self.data[..2].copy_from_slice(&v.to_ne_bytes());
    }
    fn set_int(&mut self, v: libc::c_int) {
        self.data[..4].copy_from_slice(&v.to_ne_bytes());
    }
    fn short(&self) -> libc::c_short {
        libc::c_short::from_ne_bytes([self.data[0], self.data[1]])
    }
    /// `ifr_addr` as a `sockaddr_in`.
    fn set_inet(&mut self, a: Ipv4Addr) {
        let sin = sockaddr_in(a, 0);
        // SAFETY: sockaddr_in is 16 plain bytes and data has 24.
        let bytes: [u8; 16] = unsafe { std::mem::transmute(sin) };
        self.data[..16].copy_from_slice(&bytes);
    }
}

/// The last errno as an `io::Error`, with what failed.
pub fn os_err(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// -1 → `Err` with the errno.
pub fn cvt(r: libc::c_int, what: &str) -> io::Result<libc::c_int> {
    if r < 0 { Err(os_err(what)) } else { Ok(r) }
}

pub fn sockaddr_in(a: Ipv4Addr, port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(a.octets()),
        },
        sin_zero: [0; 8],
    }
}

/// Brings an interface up, optionally with an address/24 and an MTU, with
/// the classic `SIOCSIF*` ioctls on an AF_INET datagram socket (no netlink
/// needed for this).
pub fn if_up(name: &str, addr: Option<Ipv4Addr>, mtu: Option<i32>) -> io::Result<()> {
    // SAFETY: plain socket(2); the fd is owned right away.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    let s = unsafe { OwnedFd::from_raw_fd(cvt(s, "socket(AF_INET, SOCK_DGRAM)")?) };
    let fd = s.as_raw_fd();
    let ioctl = |req: libc::c_ulong, r: &mut IfReq, what: &str| -> io::Result<()> {
        // SAFETY: every SIOC[GS]IF* request reads/writes a struct ifreq.
        cvt(unsafe { libc::ioctl(fd, req as _, r as *mut IfReq) }, what).map(|_| ())
    };
    if let Some(m) = mtu {
        let mut r = IfReq::new(name);
        r.set_int(m);
        ioctl(libc::SIOCSIFMTU, &mut r, &format!("SIOCSIFMTU {name} {m}"))?;
    }
    if let Some(a) = addr {
        let mut r = IfReq::new(name);
        r.set_inet(a);
        ioctl(
            libc::SIOCSIFADDR,
            &mut r,
            &format!("SIOCSIFADDR {name} {a}"),
        )?;
        let mut r = IfReq::new(name);
        r.set_inet(Ipv4Addr::new(255, 255, 255, 0));
        ioctl(
            libc::SIOCSIFNETMASK,
            &mut r,
            &format!("SIOCSIFNETMASK {name}"),
        )?;
    }
    let mut r = IfReq::new(name);
    ioctl(libc::SIOCGIFFLAGS, &mut r, &format!("SIOCGIFFLAGS {name}"))?;
    let flags = r.short() | (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    r.set_short(flags);
    ioctl(
        libc::SIOCSIFFLAGS,
        &mut r,
        &format!("SIOCSIFFLAGS {name} up"),
    )
}

/// Creates a TUN device (`IFF_TUN | IFF_NO_PI`: raw IPv4 packets, no
/// header) in the calling task's network namespace.
pub fn tun_create(name: &str) -> io::Result<OwnedFd> {
    // SAFETY: open(2) of a constant path.
    let fd = unsafe {
        libc::open(
            c"/dev/net/tun".as_ptr(),
            libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK,
        )
    };
    let fd = unsafe { OwnedFd::from_raw_fd(cvt(fd, "open /dev/net/tun")?) };
    let mut r = IfReq::new(name);
    r.set_short(IFF_TUN | IFF_NO_PI);
    // SAFETY: TUNSETIFF takes a struct ifreq.
    cvt(
        unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF as _, &mut r as *mut IfReq) },
        "ioctl TUNSETIFF",
    )?;
    Ok(fd)
}

/// Sends descriptors over a UNIX socket (`SCM_RIGHTS`) with one byte.
pub fn send_fds(sock: RawFd, fds: &[RawFd]) -> io::Result<()> {
    let mut byte = [b'F'];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let payload = std::mem::size_of_val(fds) as u32;
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(payload) } as usize;
    let mut cbuf = vec![0u8; space];
    // SAFETY: msghdr is plain data; zeroed is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: the control buffer is CMSG_SPACE(payload) bytes, so the first
    // header and its data fit.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(payload) as _;
        std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(c).cast::<RawFd>(), fds.len());
    }
    // SAFETY: msg points at live buffers.
    let r = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
    if r < 0 {
        return Err(os_err("sendmsg(SCM_RIGHTS)"));
    }
    Ok(())
}

/// Receives up to `n` descriptors sent with [`send_fds`].
pub fn recv_fds(sock: RawFd, n: usize) -> io::Result<Vec<OwnedFd>> {
    let mut byte = [0u8];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let payload = (n * std::mem::size_of::<RawFd>()) as u32;
    // SAFETY: size computation.
    let space = unsafe { libc::CMSG_SPACE(payload) } as usize;
    let mut cbuf = vec![0u8; space];
    // SAFETY: plain data.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: msg points at live buffers.
    let r = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if r <= 0 {
        return Err(if r == 0 {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "recvmsg(SCM_RIGHTS): peer closed",
            )
        } else {
            os_err("recvmsg(SCM_RIGHTS)")
        });
    }
    let mut out = Vec::new();
    // SAFETY: walking the control messages the kernel wrote.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let len = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let p = libc::CMSG_DATA(c).cast::<RawFd>();
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    out.push(OwnedFd::from_raw_fd(*p.add(i)));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(out)
}

/// CLOCK_MONOTONIC in nanoseconds (the clock perf samples are stamped with).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
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
    let cname = std::ffi::CString::new(ifname).map_err(io::Error::other)?;
    // SAFETY: if_nametoindex reads a C string.
    let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if ifindex == 0 {
        return Err(os_err(&format!("if_nametoindex {ifname}")));
    }
    // Protocol 0: nothing is received before the filter is in place and
    // bind() names the protocol and the interface.
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    let fd = unsafe { OwnedFd::from_raw_fd(cvt(fd, "socket(AF_PACKET)")?) };
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
    let setopt = |level: i32, name: i32, val: *const libc::c_void, len: usize, what: &str| {
        // SAFETY: val points at `len` live bytes of the option's type.
        cvt(
            unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, val, len as libc::socklen_t) },
            what,
        )
    };
    setopt(
        libc::SOL_SOCKET,
        libc::SO_ATTACH_FILTER,
        (&fprog as *const libc::sock_fprog).cast(),
        std::mem::size_of::<libc::sock_fprog>(),
        "SO_ATTACH_FILTER",
    )?;
    let one: libc::c_int = 1;
    setopt(
        libc::SOL_SOCKET,
        libc::SO_TIMESTAMPNS,
        (&one as *const libc::c_int).cast(),
        std::mem::size_of::<libc::c_int>(),
        "SO_TIMESTAMPNS",
    )?;
    // A bulk burst can put thousands of packets in the queue before the
    // relay reads it; as root the limit can be raised past rmem_max.
    let rcvbuf: libc::c_int = 64 << 20;
    let _ = setopt(
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        (&rcvbuf as *const libc::c_int).cast(),
        std::mem::size_of::<libc::c_int>(),
        "SO_RCVBUFFORCE",
    );
    // SAFETY: sockaddr_ll is plain data; zeroed is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: bind(2) with a live sockaddr_ll of the stated size.
    cvt(
        unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        },
        "bind(AF_PACKET)",
    )?;
    Ok(fd)
}

/// Reads one packet from a tap without blocking: its first bytes (into
/// `buf`, at most [`TAP_SNAPLEN`]) and the kernel's CLOCK_REALTIME stamp in
/// ns. `None` when the queue is empty.
pub fn tap_read(fd: RawFd, buf: &mut [u8; TAP_SNAPLEN]) -> Option<(usize, u64)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Room for one SCM_TIMESTAMPNS (a struct timespec) and then some.
    let mut cbuf = [0u64; 16];
    // SAFETY: msghdr is plain data; zeroed is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf);
    // SAFETY: recvmsg into live buffers described by msg.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return None;
    }
    let mut stamp = 0;
    // SAFETY: walking the control messages the kernel wrote into cbuf.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                stamp = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Some(((n as usize).min(TAP_SNAPLEN), stamp))
}

/// CLOCK_REALTIME minus CLOCK_MONOTONIC, in ns: turns a tap's stamp into the
/// clock the relay and the tracepoints use.
pub fn realtime_offset_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    let real = ts.tv_sec * 1_000_000_000 + ts.tv_nsec;
    real - monotonic_ns() as i64
}
