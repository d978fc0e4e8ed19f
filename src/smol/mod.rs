//! The smoltcp engine: the same scripts on real smoltcp 0.14 TCP sockets.
//!
//! Each script host is one smoltcp [`Interface`] (`Medium::Ip`, address
//! 10.0.0.(i+1)/24) over its own [`dev::WireDev`]. The engine is the wire
//! between them: it takes every frame a host transmitted (that is the
//! capture), decodes it into the shared [`Segment`], applies the script's
//! faults, and delivers it to the destination's device [`WIRE_DELAY_US`]
//! later. Nothing else connects the hosts, so every frame is seen exactly
//! once, in the order it left its host.
//!
//! Time is virtual: smoltcp only knows the `Instant` it is handed. The loop
//! ([`SmolEngine::run_instant`] then [`SmolEngine::next_event`]) polls every
//! interface at `now` until nothing moves, then jumps to the earliest of the
//! next frame delivery and every interface's `poll_at`. `poll_at` does not
//! see frames waiting in a device, which is why deliveries are the engine's
//! own queue and part of that minimum.
//!
//! Each interface's `random_seed` comes from `--seed` (mixed with the host
//! index, so the two sides draw different ISNs); smoltcp's version and
//! features are pinned in Cargo.toml because a different feature set draws
//! a different number of random values at `Interface::new`. Same script and
//! seed, same bytes.
//!
//! How calls map onto smoltcp's API is in [`world`] and in
//! `docs-smoltcp-engine.md`; the `--engine smoltcp-tap` pair is [`tap`].

// Its capturing device serves the TAP pair only.
#[cfg_attr(not(feature = "linux"), allow(dead_code))]
pub mod dev;
// The TAP pair's kernel side is the linux engine's host program.
#[cfg(feature = "linux")]
pub mod kernel;
#[cfg(feature = "linux")]
pub mod tap;
pub mod world;

use crate::engine::{
    CallCtx, CallOutcome, Engine, EngineError, Finish, HostSpec, RunOptions, SETTLE_QUIET_US,
};
use crate::script::{Call, Fault};
use crate::segment::Segment;
use crate::vocab::{Counter, EngineKind, Errno, Sysctl, TcpState};
use dev::{WireDev, WireFrame};
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
use std::collections::{BTreeMap, VecDeque};
use world::{Attempt, Retry, Stack, Tuple, World};

/// One-way delay of the in-process wire. Loopback as tcpdump shows it in
/// the seed captures: about 20 µs between a segment and its answer.
pub const WIRE_DELAY_US: u64 = 20;

/// How long a blocking call (connect, accept, recv, send) waits for the
/// network before the engine gives up on it and returns what a
/// non-blocking call would (smoltcp has no SYN retry limit, and a program
/// blocked forever would stop the script).
pub const BLOCK_LIMIT_US: u64 = 127_000_000;

/// Interface seed of host `i`: the run's seed, spread per host so that two
/// hosts of one run do not draw the same ISNs.
pub fn host_seed(seed: u64, i: usize) -> u64 {
    seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Builds one smoltcp interface with the host's address.
pub fn make_iface<D: smoltcp::phy::Device>(
    dev: &mut D,
    hw: HardwareAddress,
    addr: std::net::Ipv4Addr,
    seed: u64,
    now_us: u64,
) -> Interface {
    let mut cfg = Config::new(hw);
    cfg.random_seed = seed;
    let mut iface = Interface::new(cfg, dev, Instant::from_micros(now_us as i64));
    iface.update_ip_addrs(|a| {
        a.push(IpCidr::new(IpAddress::Ipv4(addr), 24))
            .expect("one address fits");
    });
    iface
}

/// A fault waiting for the next segments of a host.
#[derive(Clone, Debug)]
struct ActiveFault {
    fault: Fault,
    left: Option<u32>,
}

/// What the engine needs of a frame's segment once it is on the wire: when
/// it was sent, and what its receiver hears (the window, for probes).
#[derive(Clone, Copy, Debug)]
struct Sent {
    time_us: u64,
    /// The receiver's view: (local addr, local port, remote addr, remote
    /// port).
    rx_tuple: Tuple,
    flags: crate::segment::Flags,
    win: u16,
}

/// A frame on the wire or held: (destination host, bytes, what it was).
type Frame = (usize, WireFrame, Sent);

/// The smoltcp engine on the in-process wire.
pub struct SmolEngine {
    w: World<WireDev>,
    keep_payload: bool,
    segs: Vec<Segment>,
    /// Frames on the wire: (delivery time, order) → (destination, bytes,
    /// the segment as recorded).
    inflight: BTreeMap<(u64, u64), Frame>,
    /// The zero-window probes sent, for the "open at end" details (`segs`
    /// may have been forgotten by a streamed run).
    probes: Vec<Segment>,
    order: u64,
    faults: Vec<VecDeque<ActiveFault>>,
    held: Vec<Vec<Frame>>,
    /// Inside `call_together`: blocking calls do not run the network.
    together: bool,
    /// Captured frames whose IP or TCP checksum did not verify.
    bad_checksums: usize,
    /// The run's horizon ([`Engine::begin`]): a settle does not wait for a
    /// delayed frame past it.
    horizon: u64,
    /// Each host's name, shared by every segment it sends or receives.
    names: Vec<(std::net::Ipv4Addr, std::sync::Arc<str>)>,
    /// The frames being collected (kept for its allocation).
    collecting: Vec<WireFrame>,
}

impl SmolEngine {
    pub fn new(hosts: &[HostSpec], opts: &RunOptions) -> Self {
        let stacks = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let mut dev = WireDev::default();
                let iface = make_iface(
                    &mut dev,
                    HardwareAddress::Ip,
                    h.addr,
                    host_seed(opts.seed, i),
                    0,
                );
                Some(Stack {
                    iface,
                    sockets: SocketSet::new(Vec::new()),
                    dev,
                })
            })
            .collect();
        SmolEngine {
            w: World::new(hosts.to_vec(), stacks),
            keep_payload: opts.keep_payload,
            segs: Vec::new(),
            inflight: BTreeMap::new(),
            probes: Vec::new(),
            order: 0,
            faults: hosts.iter().map(|_| VecDeque::new()).collect(),
            held: hosts.iter().map(|_| Vec::new()).collect(),
            together: false,
            horizon: crate::engine::DEFAULT_HORIZON_US,
            bad_checksums: 0,
            names: hosts
                .iter()
                .map(|h| (h.addr, h.name.as_str().into()))
                .collect(),
            collecting: Vec::new(),
        }
    }

    fn name_of(&self, a: std::net::Ipv4Addr) -> std::sync::Arc<str> {
        self.names
            .iter()
            .find(|(x, _)| *x == a)
            .map_or_else(|| a.to_string().into(), |(_, n)| n.clone())
    }

    fn stack(&mut self, h: usize) -> &mut Stack<WireDev> {
        self.w.stacks[h]
            .as_mut()
            .expect("every host runs on smoltcp here")
    }

    /// Takes the frames host `h` transmitted, records them and puts them on
    /// the wire (or drops / delays / holds them). Returns how many.
    fn collect(&mut self, h: usize) -> usize {
        let mut frames = std::mem::take(&mut self.collecting);
        std::mem::swap(&mut frames, &mut self.stack(h).dev.sent);
        let n = frames.len();
        for f in frames.drain(..) {
            let name_of = |a| self.name_of(a);
            let mut seg =
                match Segment::decode_ipv4_with(&f, self.w.now, &name_of, self.keep_payload) {
                    Ok(s) => s,
                    // smoltcp here only speaks TCP over IPv4: anything else
                    // would be a bug worth seeing, not something to skip
                    // silently.
                    Err(e) => panic!("smoltcp sent a frame that is not IPv4/TCP: {e}"),
                };
            // The one checksum check (see `dev`): a frame that fails is
            // sent, and dropped by its receiver.
            let intact = Segment::checksum_ok(&f);
            if !intact {
                self.bad_checksums += 1;
            }
            self.w.annotate(&mut seg);
            let dst = self.w.hosts.iter().position(|x| x.addr == seg.dst_addr);
            let mut delay = WIRE_DELAY_US;
            let mut lost = dst.is_none();
            let mut hold = false;
            if let Some(af) = self.faults[h].front_mut() {
                match af.fault {
                    Fault::Drop { .. } => lost = true,
                    Fault::Delay { us, .. } => delay += us,
                    Fault::Hold { .. } => hold = true,
                }
                if let Some(left) = af.left.as_mut() {
                    *left -= 1;
                    if *left == 0 {
                        self.faults[h].pop_front();
                    }
                }
            }
            seg.lost = lost;
            if seg
                .why
                .as_deref()
                .is_some_and(|w| w.starts_with("zero-window probe"))
            {
                self.probes.push(seg.clone());
            }
            let sent = Sent {
                time_us: seg.time_us,
                rx_tuple: (seg.dst_addr, seg.dport, seg.src_addr, seg.sport),
                flags: seg.flags,
                win: seg.win,
            };
            self.segs.push(seg);
            self.w.last_activity = self.w.now;
            match dst {
                Some(d) if !lost && intact && hold => self.held[h].push((d, f, sent)),
                Some(d) if !lost && intact => self.put_on_wire(self.w.now + delay, d, f, sent),
                _ => self.stack(h).dev.recycle(f),
            }
        }
        self.collecting = frames;
        n
    }

    fn put_on_wire(&mut self, at: u64, dst: usize, frame: WireFrame, sent: Sent) {
        self.inflight.insert((at, self.order), (dst, frame, sent));
        self.order += 1;
    }

    /// Runs everything due at `now` until nothing moves: deliveries, then
    /// each interface's ingress (one frame at a time, so that a state change
    /// can be pinned on the RST that caused it) and egress.
    fn run_instant(&mut self) {
        let now = self.w.now;
        let t = Instant::from_micros(now as i64);
        loop {
            let mut moved = false;
            while let Some(e) = self.inflight.first_entry() {
                if e.key().0 > now {
                    break;
                }
                let at = e.key().0;
                let (dst, frame, sent) = e.remove();
                // A frame a `delay` fault held back arrives long after its
                // emission: its arrival is activity a settle waits out (an
                // undelayed frame's emission, WIRE_DELAY_US before, already
                // counted).
                if at > sent.time_us + WIRE_DELAY_US {
                    self.w.last_activity = now;
                }
                self.w.heard(sent.rx_tuple, sent.flags, sent.win);
                self.stack(dst).dev.rx.push_back(frame);
                moved = true;
            }
            for h in 0..self.w.stacks.len() {
                while let Some(front) = self.stack(h).dev.rx.front() {
                    // The receiver's view of the tuple of an incoming RST.
                    let rst = crate::segment::Headers::parse(front)
                        .ok()
                        .filter(|s| s.flags.rst())
                        .map(|s| -> Tuple { (s.dst, s.dport, s.src, s.sport) });
                    let st = self.stack(h);
                    st.iface
                        .poll_ingress_single(t, &mut st.dev, &mut st.sockets);
                    self.w.observe(h, rst);
                    self.collect(h);
                    moved = true;
                }
                let st = self.stack(h);
                while st.iface.poll_egress(t, &mut st.dev, &mut st.sockets)
                    != smoltcp::iface::PollResult::None
                {}
                self.w.observe(h, None);
                if self.collect(h) > 0 {
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
    }

    /// The next time anything can happen: a delivery or a socket timer.
    /// After `run_instant`, a `poll_at` at or before `now` (smoltcp asking
    /// to be polled again with nothing to send) is taken as `now + 1 µs`.
    fn next_event(&mut self) -> Option<u64> {
        let now = self.w.now;
        let mut next = self.inflight.keys().next().map(|k| k.0);
        for h in 0..self.w.stacks.len() {
            if let Some(p) = self.stack(h).poll_at(now) {
                let p = p.max(now + 1);
                next = Some(next.map_or(p, |n: u64| n.min(p)));
            }
        }
        next
    }

    /// Runs events up to `until` (inclusive) and stops the clock there, or
    /// at the first moment `stop` holds.
    fn run_until(&mut self, until: u64, stop: &mut dyn FnMut(&mut Self) -> bool) -> bool {
        loop {
            self.run_instant();
            if stop(self) {
                return true;
            }
            match self.next_event() {
                Some(t) if t <= until => self.w.now = t,
                _ => {
                    self.w.now = self.w.now.max(until);
                    return false;
                }
            }
        }
    }

    fn do_call(&mut self, host: usize, sock: &str, call: &Call, ctx: &CallCtx) -> CallOutcome {
        let mut retry = Retry::default();
        let start = self.w.now;
        loop {
            match self.w.attempt(host, sock, call, ctx, &mut retry) {
                Attempt::Done(o) => return o,
                Attempt::Block if self.together => {
                    let mut o =
                        self.w
                            .give_up(host, sock, call, &retry, "calls made together do not wait");
                    if matches!(call, Call::Connect { .. }) {
                        // A connect that does not wait is a non-blocking
                        // connect: EINPROGRESS, as on the model and Linux.
                        o.errno = Some(Errno::EINPROGRESS);
                    }
                    return o;
                }
                Attempt::Block => {}
            }
            // Run the network until the call can make progress; idle means
            // nothing will ever change, so a real program would hang.
            self.run_instant();
            match self.next_event() {
                Some(t) if t <= start + BLOCK_LIMIT_US => self.w.now = t,
                Some(_) => {
                    self.w.now = start + BLOCK_LIMIT_US;
                    return self.w.give_up(
                        host,
                        sock,
                        call,
                        &retry,
                        &format!(
                            "the engine stopped waiting after {} s",
                            BLOCK_LIMIT_US / 1_000_000
                        ),
                    );
                }
                None => {
                    if let Attempt::Done(o) = self.w.attempt(host, sock, call, ctx, &mut retry) {
                        return o;
                    }
                    return self.w.give_up(
                        host,
                        sock,
                        call,
                        &retry,
                        "nothing is left to happen (it would block forever)",
                    );
                }
            }
        }
    }
}

impl Engine for SmolEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Smoltcp
    }

    fn now_us(&self) -> u64 {
        self.w.now
    }

    fn sysctl(&mut self, host: usize, key: Sysctl, value: &str) -> Result<(), EngineError> {
        // smoltcp has no sysctls; the run goes on and the trace says so.
        let _ = host;
        self.w
            .note(format!("unsupported on smoltcp: sysctl {key} = {value}"));
        Ok(())
    }

    fn call(&mut self, host: usize, sock: &str, call: &Call, ctx: &CallCtx) -> CallOutcome {
        self.do_call(host, sock, call, ctx)
    }

    fn call_together(&mut self, calls: &[(usize, String, Call, CallCtx)]) -> Vec<CallOutcome> {
        // No poll between the calls: nothing is sent or delivered until the
        // runner settles afterwards.
        self.together = true;
        let out = calls
            .iter()
            .map(|(h, s, c, x)| self.do_call(*h, s, c, x))
            .collect();
        self.together = false;
        out
    }

    fn fault(&mut self, host: usize, fault: &Fault) -> Result<(), EngineError> {
        let left = match fault {
            Fault::Drop { count } | Fault::Delay { count, .. } => Some(*count),
            Fault::Hold { count } => *count,
        };
        if left != Some(0) {
            self.faults[host].push_back(ActiveFault {
                fault: fault.clone(),
                left,
            });
        }
        Ok(())
    }

    fn release(&mut self, host: usize) -> Result<(), EngineError> {
        self.faults[host].retain(|f| !matches!(f.fault, Fault::Hold { .. }));
        let now = self.w.now;
        for (d, f, sent) in std::mem::take(&mut self.held[host]) {
            self.put_on_wire(now + WIRE_DELAY_US, d, f, sent);
        }
        Ok(())
    }

    fn begin(&mut self, horizon_us: u64) {
        self.horizon = horizon_us;
    }

    fn settle(&mut self) {
        let start = self.w.now;
        loop {
            self.run_instant();
            let quiet_end = self.w.last_activity.max(start) + SETTLE_QUIET_US;
            // Nothing in flight either: a delayed frame is waited for, but
            // not past the horizon. smoltcp retransmits without limit, and
            // under a long `delay` each retransmission, delayed too, would
            // move the arrival on for ever (and pile up on the wire).
            let arrival = self.inflight.keys().next().map_or(0, |k| k.0);
            match self.next_event() {
                Some(t) if t <= quiet_end.max(arrival.min(self.horizon)) => self.w.now = t,
                _ => {
                    self.w.now = self.w.now.max(quiet_end);
                    return;
                }
            }
        }
    }

    fn wait(&mut self, us: u64) {
        let until = self.w.now + us;
        self.run_until(until, &mut |_| false);
    }

    fn state(&mut self, host: usize, sock: &str) -> Option<TcpState> {
        self.w.state_of(host, sock)
    }

    fn counters(&mut self, _host: usize) -> BTreeMap<Counter, i64> {
        // smoltcp keeps no TcpExt (or any) counters.
        BTreeMap::new()
    }

    fn segments(&self) -> &[Segment] {
        &self.segs
    }
    fn forget_segments(&mut self) -> bool {
        // The wire and the held frames carry their own copies.
        self.segs.clear();
        true
    }

    fn finish(&mut self, horizon_us: u64) -> Finish {
        let mut cut = false;
        if self.w.now < horizon_us {
            loop {
                self.run_instant();
                match self.next_event() {
                    Some(t) if t <= horizon_us => self.w.now = t,
                    Some(_) => {
                        cut = true;
                        self.w.now = horizon_us;
                        break;
                    }
                    None => break,
                }
            }
        } else {
            self.run_instant();
            cut = self.next_event().is_some();
        }
        let mut notes = self.w.notes.clone();
        if cut {
            notes.push(format!(
                "stopped at the horizon ({}) with smoltcp timers still pending",
                crate::trace::fmt_time(self.w.now)
            ));
        }
        if self.bad_checksums > 0 {
            notes.push(format!(
                "{} captured frame(s) had a bad IP or TCP checksum",
                self.bad_checksums
            ));
        }
        for (h, held) in self.held.iter().enumerate() {
            if !held.is_empty() {
                notes.push(format!(
                    "{} segment(s) from {} held and never released",
                    held.len(),
                    self.w.hosts[h].name
                ));
            }
        }
        let mut states = self.w.state_changes();
        states.sort_by_key(|s| s.time_us);
        Finish {
            states,
            open_at_end: self.w.open_conns(&self.probes),
            notes,
            end_us: self.w.now,
        }
    }
}
