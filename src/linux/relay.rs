//! The link between the host namespaces: one thread that reads every IPv4
//! packet a host sends out of its TUN device and writes it into the TUN
//! device of the destination host.
//!
//! Being the wire, the relay is also the capture point and the fault
//! injector: every packet passes through exactly one `read(2)` here, so each
//! segment is recorded exactly once, stamped when its kernel handed it to
//! the device (a packet socket per TUN device gives that time, see
//! [`Stamps`]), in the order the hosts sent them; `drop`, `delay`, `hold`/`release` and "nothing
//! is delivered between calls made together" are decisions about when (or
//! whether) to `write(2)` a packet on. (This kernel has neither
//! `CONFIG_NET_SCH_NETEM` nor `CONFIG_NFT_QUEUE`, and a userspace wire
//! needs neither.)

use super::sys;
use crate::script::Fault;
use crate::segment::Segment;
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::pipe::PipeFlags;
use std::collections::VecDeque;
use std::net::Ipv4Addr;
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
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        tuns: Vec<OwnedFd>,
        taps: Vec<OwnedFd>,
        addrs: Vec<Ipv4Addr>,
        script_addrs: Vec<Ipv4Addr>,
        names: Vec<String>,
        start_ns: u64,
        keep_payload: bool,
        vnet: bool,
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
        let (wake_r, wake_w) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)
            .map_err(|e| format!("pipe2: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (sh, st) = (shared.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("finrst-relay".into())
            .spawn(move || relay_loop(tuns, taps, wake_r, sh, st, vnet))
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
        // One byte into our own non-blocking pipe: a full pipe is awake
        // already.
        let _ = rustix::io::write(&self.wake_w, b"w");
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

/// Puts the calling thread (the wire) in the SCHED_FIFO class. The kernel's
/// own timers run in softirq context, on time whatever user space does; the
/// wire is a user thread, and on a loaded 2-CPU machine a normal thread can
/// wait several milliseconds for a CPU. With two segments out and a tiny
/// srtt the tail loss probe is due one jiffy after the send
/// (tcp_schedule_loss_probe: `2 * srtt + TCP_TIMEOUT_MIN_US`, 2 ms, rounded
/// up to a jiffy), so an ACK the wire holds back 4 ms makes the kernel probe
/// where the model (whose wire never waits) does not. A real-time wire is
/// scheduled ahead of every normal thread, and writing a packet into a TUN
/// device also runs the receiving host's TCP input (tun_get_user ->
/// netif_rx -> the backlog softirq on return), so both happen on time.
/// Failing to get the class (no CAP_SYS_NICE, RT throttled to zero in a
/// container) is not an error: the wire then runs as before.
fn real_time_priority() {
    let _ = sys::set_fifo_priority(10);
}

fn relay_loop(
    tuns: Vec<OwnedFd>,
    taps: Vec<OwnedFd>,
    wake_r: OwnedFd,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    vnet: bool,
) {
    real_time_priority();
    let mut buf = vec![0u8; 65536 + 64];
    let raw: Vec<BorrowedFd> = tuns.iter().map(|t| t.as_fd()).collect();
    let mut stamps = Stamps::new(&taps);
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
        let mut pfds: Vec<PollFd> = raw
            .iter()
            .chain(std::iter::once(&wake_r.as_fd()))
            .map(|fd| PollFd::from_borrowed_fd(*fd, PollFlags::IN))
            .collect();
        let timeout = Timespec {
            tv_sec: (timeout_ms / 1000) as _,
            tv_nsec: (timeout_ms % 1000) as i64 * 1_000_000,
        };
        let _ = rustix::event::poll(&mut pfds, Some(&timeout));
        if !pfds[raw.len()].revents().is_empty() {
            let mut b = [0u8; 64];
            // Drain our own pipe.
            while rustix::io::read(&wake_r, &mut b).is_ok_and(|n| n > 0) {}
        }
        // Read everything every host has sent, in the order the kernels
        // sent it.
        drain_all(&raw, &mut buf, &shared, &mut stamps, vnet);
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
            // One whole IPv4 packet into a TUN device.
            let r = if vnet {
                // A zeroed virtio_net_hdr: no GSO, checksum complete (the
                // encoder writes valid ones).
                let mut b = vec![0u8; sys::VNET_HDR_LEN];
                b.extend_from_slice(&p.bytes);
                rustix::io::write(raw[p.dst], &b).map(|n| n.saturating_sub(sys::VNET_HDR_LEN))
            } else {
                rustix::io::write(raw[p.dst], &p.bytes)
            };
            // The receiving kernel handles the packet inside write(2)
            // (tun_get_user → netif_rx, softirq at local_bh_enable), so
            // whatever it answers is queued already: capture it now, before
            // the next delivery, so that the capture order is the order in
            // which the hosts sent.
            drain_all(&raw, &mut buf, &shared, &mut stamps, vnet);
            if let Err(e) = r {
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

/// The kernel's send time of each packet, from one packet socket per host
/// on its TUN device (`sys::tap_create`).
///
/// Why: the relay reads the hosts' TUN devices one after the other, so two
/// packets sent by two hosts before the relay wakes would be captured in
/// host order, not in the order they were sent. That happens whenever one
/// timer softirq fires timers of two hosts' sockets (two delayed ACKs due in
/// the same jiffy: `expire_timers` runs them back to back, the relay sees
/// both only afterwards). The tap's stamp is taken in dev_queue_xmit_nit,
/// as the packet is handed to the device, which is also when it enters the
/// TUN queue; a host's packets reach its tap and its TUN queue in the same
/// order, so the i-th TUN packet is matched with the oldest tap packet with
/// the same first bytes.
struct Stamps<'a> {
    taps: Vec<BorrowedFd<'a>>,
    /// Per host: tap packets read and not yet matched (first bytes, their
    /// length, the CLOCK_REALTIME stamp).
    pending: Vec<VecDeque<([u8; sys::TAP_SNAPLEN], usize, u64)>>,
    /// The last stamp given out (monotonic ns): capture times never go back.
    last: u64,
}

impl<'a> Stamps<'a> {
    fn new(taps: &'a [OwnedFd]) -> Stamps<'a> {
        Stamps {
            taps: taps.iter().map(|t| t.as_fd()).collect(),
            pending: vec![VecDeque::new(); taps.len()],
            last: 0,
        }
    }

    /// When host `h` sent `bytes`, in CLOCK_REALTIME ns, if its tap saw it.
    fn sent_realtime(&mut self, h: usize, bytes: &[u8]) -> Option<u64> {
        let fd = *self.taps.get(h)?;
        let mut b = [0u8; sys::TAP_SNAPLEN];
        while let Some((n, t)) = sys::tap_read(fd, &mut b) {
            self.pending[h].push_back((b, n, t));
        }
        let want = bytes.len().min(sys::TAP_SNAPLEN);
        let q = &mut self.pending[h];
        // A tap packet without its TUN twin (the tap's queue is bounded, the
        // TUN's too) is skipped; one that never matches is left alone.
        let i = q
            .iter()
            .position(|(p, n, _)| *n == want && p[..want] == bytes[..want])?;
        let (_, _, t) = q.drain(..=i).next_back()?;
        (t > 0).then_some(t)
    }
}

/// Reads every packet waiting in the hosts' TUN devices and hands them to
/// [`on_packet`] in the order the hosts sent them: by the kernel's stamp
/// (see [`Stamps`]), each host's own packets in their TUN order.
fn drain_all(
    raw: &[BorrowedFd],
    buf: &mut [u8],
    shared: &Mutex<Shared>,
    stamps: &mut Stamps,
    vnet: bool,
) {
    let mut batch: Vec<VecDeque<(u64, Vec<u8>)>> = vec![VecDeque::new(); raw.len()];
    let offset = sys::realtime_offset_ns();
    let mut any = false;
    for (h, &fd) in raw.iter().enumerate() {
        // Every packet waiting in the non-blocking TUN device.
        while let Ok(n @ 1..) = rustix::io::read(fd, &mut *buf) {
            // A TSO device puts a virtio_net_hdr before each packet.
            let skip = if vnet { sys::VNET_HDR_LEN.min(n) } else { 0 };
            let bytes = buf[skip..n].to_vec();
            let now = sys::monotonic_ns();
            let sent = stamps
                .sent_realtime(h, &bytes)
                .map(|t| (t as i64 - offset).max(0) as u64)
                .filter(|&t| t <= now)
                .unwrap_or(now);
            batch[h].push_back((sent, bytes));
            any = true;
        }
    }
    if !any {
        return;
    }
    let now = sys::monotonic_ns();
    let mut s = shared.lock().unwrap();
    // Merge the hosts' queues by send time (a tie goes to the lower host).
    while let Some(h) = (0..batch.len())
        .filter(|&h| !batch[h].is_empty())
        .min_by_key(|&h| batch[h][0].0)
    {
        let (sent, bytes) = batch[h].pop_front().unwrap_or_default();
        let sent = sent.max(stamps.last);
        stamps.last = sent;
        on_packet(&mut s, h, bytes, sent, now);
    }
}

/// Records one packet from host `h`, sent at `sent` and read at `now`
/// (monotonic ns), and decides its fate.
fn on_packet(s: &mut Shared, h: usize, bytes: Vec<u8>, sent: u64, now: u64) {
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
        let time_us = sent.saturating_sub(s.start_ns) / 1000;
        let (addrs, sa, names) = (&s.addrs, &s.script_addrs, &s.names);
        let name_of = |a: Ipv4Addr| match addrs.iter().position(|x| *x == a) {
            Some(i) => names[i].clone(),
            None => a.to_string(),
        };
        match Segment::decode_ipv4(&bytes, time_us, &name_of) {
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
        s.held[h].push((dst, bytes));
        return;
    }
    s.in_flight.push(InFlight {
        due_ns: now + delay_ns,
        dst,
        bytes,
    });
}
