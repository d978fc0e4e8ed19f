//! The link between the host namespaces: one thread that reads every IPv4
//! packet a host sends out of its TUN device and writes it into the TUN
//! device of the destination host.
//!
//! Being the wire, the relay is also the capture point and the fault
//! injector: every packet passes through exactly one `read(2)` here, so each
//! segment is recorded exactly once, stamped when it left its host, in the
//! order the hosts sent them; `drop`, `delay`, `hold`/`release` and "nothing
//! is delivered between calls made together" are decisions about when (or
//! whether) to `write(2)` a packet on. (This kernel has neither
//! `CONFIG_NET_SCH_NETEM` nor `CONFIG_NFT_QUEUE`, and a userspace wire
//! needs neither.)

use super::sys;
use crate::script::Fault;
use crate::segment::Segment;
use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A fault waiting for the next segments of a host.
#[derive(Clone, Debug)]
enum Pending {
    Drop(u32),
    Delay {
        us: u64,
        left: u32,
    },
    /// `None`: every segment until `release`.
    Hold(Option<u32>),
}

/// A packet on its way, with the monotonic time (ns) it may be written.
struct InFlight {
    due_ns: u64,
    dst: usize,
    bytes: Vec<u8>,
}

/// What the engine and the relay thread share.
pub struct Shared {
    /// Real addresses of the hosts (index = host).
    pub addrs: Vec<Ipv4Addr>,
    /// Script addresses (what traces show).
    pub script_addrs: Vec<Ipv4Addr>,
    pub names: Vec<String>,
    pub start_ns: u64,
    pub keep_payload: bool,
    /// Segments captured and not yet taken by the engine.
    pub captured: Vec<Segment>,
    /// Time (ns, monotonic) of the last captured packet.
    pub last_capture_ns: u64,
    /// Time (ns, monotonic) of the last packet written on to its host: the
    /// network is not quiet until what that packet causes has been seen.
    pub last_delivery_ns: u64,
    faults: Vec<VecDeque<Pending>>,
    /// Held packets per source host, in order.
    held: Vec<Vec<(usize, Vec<u8>)>>,
    /// Delayed packets and, while `paused`, everything.
    in_flight: Vec<InFlight>,
    /// Calls made together are running: deliver nothing.
    pub paused: bool,
    /// Packets the relay could not decode (reported in the notes).
    pub undecodable: Vec<String>,
    /// Write errors into a TUN device (reported in the notes).
    pub write_errors: Vec<String>,
    /// Per host: played by a `finrst drill` script. Packets to it are
    /// captured and never written on; the script's packets come from
    /// [`Relay::inject`].
    pub raw: Vec<bool>,
}

pub struct Relay {
    pub shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    wake_w: OwnedFd,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    pub fn start(
        tuns: Vec<OwnedFd>,
        addrs: Vec<Ipv4Addr>,
        script_addrs: Vec<Ipv4Addr>,
        names: Vec<String>,
        start_ns: u64,
        keep_payload: bool,
    ) -> Result<Relay, String> {
        let n = tuns.len();
        let shared = Arc::new(Mutex::new(Shared {
            addrs,
            script_addrs,
            names,
            start_ns,
            keep_payload,
            captured: Vec::new(),
            last_capture_ns: 0,
            last_delivery_ns: 0,
            faults: vec![VecDeque::new(); n],
            held: vec![Vec::new(); n],
            in_flight: Vec::new(),
            paused: false,
            undecodable: Vec::new(),
            write_errors: Vec::new(),
            raw: vec![false; n],
        }));
        let mut p = [0; 2];
        // SAFETY: pipe2 fills two fds that are owned right away.
        if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
            return Err(format!("pipe2: {}", std::io::Error::last_os_error()));
        }
        let (wake_r, wake_w) = unsafe {
            use std::os::fd::FromRawFd;
            (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1]))
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (sh, st) = (shared.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("finrst-relay".into())
            .spawn(move || relay_loop(tuns, wake_r, sh, st))
            .map_err(|e| format!("relay thread: {e}"))?;
        Ok(Relay {
            shared,
            stop,
            wake_w,
            thread: Some(thread),
        })
    }

    /// Puts a packet from a raw host on the wire now: `seg` (script
    /// addresses) is captured as if the relay had read it, `bytes` (real
    /// addresses) are written into `dst`'s TUN device.
    pub fn inject(&self, dst: usize, bytes: Vec<u8>, mut seg: Segment) {
        {
            let mut s = self.shared.lock().unwrap();
            let now = sys::monotonic_ns();
            seg.time_us = now.saturating_sub(s.start_ns) / 1000;
            if !s.keep_payload {
                seg.payload = None;
            }
            s.captured.push(seg);
            s.last_capture_ns = now;
            s.in_flight.push(InFlight {
                due_ns: now,
                dst,
                bytes,
            });
        }
        self.wake();
    }

    /// True when every packet handed to the relay has been written out.
    pub fn drained(&self) -> bool {
        self.shared.lock().unwrap().in_flight.is_empty()
    }

    /// Makes the relay look at its state again (a release, a resume).
    pub fn wake(&self) {
        // SAFETY: one byte into our own non-blocking pipe.
        unsafe { libc::write(self.wake_w.as_raw_fd(), b"w".as_ptr().cast(), 1) };
    }

    pub fn fault(&self, host: usize, f: &Fault) {
        let p = match *f {
            Fault::Drop { count } => Pending::Drop(count),
            Fault::Delay { us, count } => Pending::Delay { us, left: count },
            Fault::Hold { count } => Pending::Hold(count),
        };
        self.shared.lock().unwrap().faults[host].push_back(p);
    }

    /// Sends the held segments of `host` on, in order, and ends its hold.
    pub fn release(&self, host: usize) {
        {
            let mut s = self.shared.lock().unwrap();
            s.faults[host].retain(|p| !matches!(p, Pending::Hold(_)));
            let held = std::mem::take(&mut s.held[host]);
            let now = sys::monotonic_ns();
            for (dst, bytes) in held {
                s.in_flight.push(InFlight {
                    due_ns: now,
                    dst,
                    bytes,
                });
            }
        }
        self.wake();
    }

    pub fn set_paused(&self, paused: bool) {
        self.shared.lock().unwrap().paused = paused;
        self.wake();
    }

    /// The last time a packet was captured or delivered.
    pub fn last_activity_ns(&self) -> u64 {
        let s = self.shared.lock().unwrap();
        s.last_capture_ns.max(s.last_delivery_ns)
    }

    /// Packets on their way (delayed, or queued while paused); held ones
    /// wait for `release` and do not count.
    pub fn in_flight(&self) -> usize {
        self.shared.lock().unwrap().in_flight.len()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn relay_loop(
    tuns: Vec<OwnedFd>,
    wake_r: OwnedFd,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 65536 + 64];
    let raw: Vec<RawFd> = tuns.iter().map(|t| t.as_raw_fd()).collect();
    while !stop.load(Ordering::SeqCst) {
        // Sleep until a packet, a wake-up, or the next delayed packet.
        let timeout_ms = {
            let s = shared.lock().unwrap();
            let now = sys::monotonic_ns();
            match (s.paused, s.in_flight.iter().map(|p| p.due_ns).min()) {
                (false, Some(d)) => (d.saturating_sub(now).div_ceil(1_000_000)).min(100) as i32,
                _ => 100,
            }
        };
        let mut pfds: Vec<libc::pollfd> = raw
            .iter()
            .chain(std::iter::once(&wake_r.as_raw_fd()))
            .map(|&fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: pfds is a live array of pollfd.
        unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as _, timeout_ms) };
        if pfds[raw.len()].revents != 0 {
            let mut b = [0u8; 64];
            // SAFETY: draining our own pipe into a local buffer.
            while unsafe { libc::read(wake_r.as_raw_fd(), b.as_mut_ptr().cast(), b.len()) } > 0 {}
        }
        // Read everything every host has sent, host by host; within a host
        // the order is the order of transmission.
        drain_all(&raw, &mut buf, &shared, &pfds);
        // Deliver what is due.
        let due: Vec<InFlight> = {
            let mut s = shared.lock().unwrap();
            if s.paused {
                Vec::new()
            } else {
                let now = sys::monotonic_ns();
                let (due, later): (Vec<InFlight>, Vec<InFlight>) = std::mem::take(&mut s.in_flight)
                    .into_iter()
                    .partition(|p| p.due_ns <= now);
                s.in_flight = later;
                if !due.is_empty() {
                    // Under the same lock that empties in_flight, so that a
                    // settle never sees "nothing in flight" and an old time.
                    s.last_delivery_ns = now;
                }
                due
            }
        };
        let delivered = !due.is_empty();
        for p in due {
            // SAFETY: writing one whole IPv4 packet into a TUN fd.
            let r = unsafe { libc::write(raw[p.dst], p.bytes.as_ptr().cast(), p.bytes.len()) };
            // The receiving kernel handles the packet inside write(2)
            // (tun_get_user → netif_rx, softirq at local_bh_enable), so
            // whatever it answers is queued already: capture it now, before
            // the next delivery, so that the capture order is the order in
            // which the hosts sent.
            drain_all(&raw, &mut buf, &shared, &[]);
            if r < 0 {
                let e = std::io::Error::last_os_error();
                shared.lock().unwrap().write_errors.push(format!(
                    "deliver {} bytes to host {}: {e}",
                    p.bytes.len(),
                    p.dst
                ));
            }
        }
        if delivered {
            shared.lock().unwrap().last_delivery_ns = sys::monotonic_ns();
        }
    }
}

/// Reads every packet waiting in the hosts' TUN devices (those `ready` says
/// are readable, or all when `ready` is empty), host by host.
fn drain_all(raw: &[RawFd], buf: &mut [u8], shared: &Mutex<Shared>, ready: &[libc::pollfd]) {
    for (h, &fd) in raw.iter().enumerate() {
        if ready.get(h).is_some_and(|p| p.revents == 0) {
            continue;
        }
        loop {
            // SAFETY: reading into our buffer from a non-blocking TUN fd.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            let now = sys::monotonic_ns();
            let mut s = shared.lock().unwrap();
            on_packet(&mut s, h, &buf[..n as usize], now);
        }
    }
}

/// Records one packet from host `h` and decides its fate.
fn on_packet(s: &mut Shared, h: usize, bytes: &[u8], now: u64) {
    if bytes.len() < 20 || bytes[0] >> 4 != 4 {
        return; // not IPv4 (IPv6 is disabled; nothing else is expected)
    }
    let dst_addr = Ipv4Addr::new(bytes[16], bytes[17], bytes[18], bytes[19]);
    let Some(dst) = s.addrs.iter().position(|a| *a == dst_addr) else {
        return; // nobody of this run lives there
    };
    let is_tcp = bytes[9] == 6;
    let mut lost = false;
    let mut hold = false;
    let mut delay_ns = 0;
    if is_tcp {
        // The fault at the front of this host's queue takes the segment.
        let q = &mut s.faults[h];
        if let Some(f) = q.front_mut() {
            let done = match f {
                Pending::Drop(n) => {
                    lost = true;
                    *n -= 1;
                    *n == 0
                }
                Pending::Delay { us, left } => {
                    delay_ns = *us * 1000;
                    *left -= 1;
                    *left == 0
                }
                Pending::Hold(n) => {
                    hold = true;
                    match n {
                        Some(k) => {
                            *k -= 1;
                            *k == 0
                        }
                        None => false,
                    }
                }
            };
            if done {
                q.pop_front();
            }
        }
        let time_us = now.saturating_sub(s.start_ns) / 1000;
        let (addrs, sa, names) = (&s.addrs, &s.script_addrs, &s.names);
        let name_of = |a: Ipv4Addr| match addrs.iter().position(|x| *x == a) {
            Some(i) => names[i].clone(),
            None => a.to_string(),
        };
        match Segment::decode_ipv4(bytes, time_us, &name_of) {
            Ok(mut seg) => {
                // Back to the script's addresses: the run's real ones are
                // only there to keep parallel runs apart.
                if let Some(i) = addrs.iter().position(|x| *x == seg.src_addr) {
                    seg.src_addr = sa[i];
                }
                if let Some(i) = addrs.iter().position(|x| *x == seg.dst_addr) {
                    seg.dst_addr = sa[i];
                }
                seg.lost = lost;
                if !s.keep_payload {
                    seg.payload = None;
                }
                s.captured.push(seg);
                s.last_capture_ns = now;
                if s.raw[dst] {
                    return; // the script reads it; nobody receives it
                }
            }
            Err(e) => s
                .undecodable
                .push(format!("{} bytes from host {h}: {e}", bytes.len())),
        }
    }
    if lost {
        return;
    }
    if hold {
        s.held[h].push((dst, bytes.to_vec()));
        return;
    }
    s.in_flight.push(InFlight {
        due_ns: now + delay_ns,
        dst,
        bytes: bytes.to_vec(),
    });
}
