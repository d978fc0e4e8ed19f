//! The model engine: a port of the Linux 6.18 TCP stack's close path — and
//! of everything the close path depends on: buffer accounting, windows,
//! retransmission, probes, time-wait — on a virtual clock, deterministic,
//! without root.
//!
//! # Where does close() decide RST or FIN?
//!
//! [`close::tcp_close`] is `__tcp_close` (net/ipv4/tcp.c) branch by branch;
//! the RFC 2525 2.17 rule is its `data_was_unread` branch. The rest of the
//! kernel it reaches lives one concern per file, each function named after
//! the kernel function it ports:
//!
//! | file | kernel |
//! |---|---|
//! | [`close`] | `__tcp_close`, `tcp_close_state`, `tcp_shutdown`, `tcp_disconnect`, `inet_csk_listen_stop`, `tcp_done`, `tcp_set_state` |
//! | [`input`] | `tcp_rcv_established`, `tcp_rcv_state_process`, `tcp_validate_incoming`, `tcp_data_queue` (+ofo, coalescing, pruning, collapsing), `tcp_fin`, `tcp_urg`, `tcp_reset`, `__tcp_ack_snd_check`, receive-buffer auto-tuning |
//! | [`ack`] | `tcp_ack`, `tcp_clean_rtx_queue`, `tcp_ack_update_window`, RTT estimation, `tcp_ack_probe`, `tcp_process_tlp_ack` |
//! | [`recovery`] | SACK scoreboard (`tcp_sacktag_write_queue`), `tcp_fastretrans_alert`, `tcp_enter_loss`, undo, F-RTO, PRR, RACK (tcp_recovery.c) |
//! | [`cubic`] | CUBIC (tcp_cubic.c), the congestion control the linux engine's sockets use |
//! | [`output`] | `__tcp_transmit_skb`, `tcp_select_window`, `tcp_write_xmit`, `tcp_sendmsg`'s skb building, Nagle, `tcp_send_fin`, `tcp_send_active_reset`, `tcp_send_ack`, `tcp_send_delayed_ack`, `tcp_write_wakeup`, `tcp_send_probe0`, tail loss probes, `tcp_retransmit_skb`, `tcp_v4_send_reset` |
//! | [`timers`] | `tcp_retransmit_timer`, `tcp_write_timeout`, `tcp_probe_timer`, `tcp_delack_timer_handler`, `tcp_keepalive_timer`, the timer wheel's rounding |
//! | [`listen`] | `tcp_conn_request`, request sockets, `tcp_check_req`, `tcp_create_openreq_child` |
//! | [`timewait`] | `tcp_time_wait`, `tcp_timewait_state_process`, `inet_twsk_*` |
//! | [`api`] | the syscalls: `tcp_sendmsg`, `tcp_recvmsg`, `tcp_poll`, `inet_stream_connect`, `inet_accept`, `inet_shutdown`, `inet_release` with SO_LINGER, socket options |
//! | [`mem`], [`skb`] | socket memory accounting; skbs and their truesize on the link |
//!
//! # Time
//! Event driven: the world jumps to the next event (a segment arriving, a
//! timer). Segments take [`LINK_DELAY`] to cross the link. Kernel timers
//! are kept in jiffies (HZ=250) and fire when the timer wheel would run
//! them ([`timers::wheel_fire_jiffies`]). Nothing sleeps and no event scans
//! the sockets: lookups are hash tables, timers a heap.
//!
//! # How the model departs from Linux
//! This list is the one the README shows (`README.md`, "How the model
//! departs from Linux"); both name every known difference.
#![doc = include_str!("departures.md")]

pub mod ack;
pub mod api;
pub mod close;
pub mod cubic;
pub mod input;
pub mod listen;
pub mod mem;
pub mod output;
pub mod recovery;
pub mod skb;
pub mod sock;
pub mod timers;
pub mod timewait;
#[cfg(test)]
mod unit_tests;

use crate::engine::{
    CallCtx, CallOutcome, Engine, EngineError, Finish, HostSpec, OpenConn, Policy, RawPeer,
    RunOptions, SETTLE_QUIET_US, StateChange,
};
use crate::script::{Call, Fault};
use crate::segment::Segment;
use crate::vocab::{Counter, EngineKind, Sysctl, SysctlError, Sysctls, TcpState};
use listen::Req;
use rustc_hash::FxHashMap as HashMap;
use sock::{Jiffies, Sock, SockId, State, Time};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use timewait::Tw;

/// One-way delay of the virtual link.
pub const LINK_DELAY: Time = 20;

/// A fault waiting for the next segments a host sends.
#[derive(Clone, Debug)]
enum PendingFault {
    Drop(u32),
    Delay(Time, u32),
    Hold(Option<u32>),
}

/// What holds a local port (`inet_bind_bucket` owners).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortOwner {
    Sock(SockId),
    Tw(usize),
}

/// A host: its sysctls, counters, ports, and its program's socket names.
#[derive(Clone, Debug)]
pub struct Host {
    pub name: std::sync::Arc<str>,
    pub addr: std::net::Ipv4Addr,
    /// The host's sysctls (per network namespace), Linux 6.18's defaults
    /// until the script sets one.
    pub sysctl: Sysctls,
    /// TcpExt counters, changes since the run began.
    pub counters: BTreeMap<Counter, i64>,
    /// The program's socket names (closed ones stay, for `expect state`).
    pub names: BTreeMap<String, SockId>,
    /// Names whose descriptor the program has closed.
    pub closed: Vec<String>,
    /// `bhash`: local port → sockets and time-wait sockets bound to it.
    pub ports: HashMap<u16, Vec<PortOwner>>,
    faults: VecDeque<PendingFault>,
    held: Vec<Segment>,
    /// `finrst drill`'s remote: a host played by a script. Segments to it
    /// are kept in [`World::raw_out`] and never delivered; it has no
    /// sockets and sends only what [`World::inject`] is given.
    pub raw: bool,
}

/// The 4-tuple of the established hash: (host, local port, peer host,
/// peer port).
pub type Key4 = (usize, u16, usize, u16);

/// What the established hash holds for a 4-tuple (`__inet_lookup_established`
/// finds full sockets, time-wait sockets and request sockets alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ehash {
    Sock(SockId),
    Tw(usize),
    Req(usize),
}

/// A timer the world runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimerRef {
    /// A socket's retransmit/probe/TLP timer (`icsk_retransmit_timer`).
    Xmit(usize),
    /// A socket's delayed-ACK timer.
    Delack(usize),
    /// A socket's `sk_timer` (FIN_WAIT2 of an orphan, keepalive).
    Keepalive(usize),
    /// A time-wait socket's `tw_timer`.
    Tw(usize),
    /// A request socket's SYN-ACK timer (`rsk_timer`).
    Req(usize),
}

/// Lazy heap bookkeeping for one timer: when it is due (µs) and the time
/// of the authoritative heap entry, if any (see [`World::arm`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct TimerSlot {
    pub due: Option<Time>,
    queued: Option<Time>,
}

/// Everything the model knows.
pub struct World {
    pub now: Time,
    pub hosts: Vec<Host>,
    pub socks: Vec<Sock>,
    /// Timer slots of each socket: [xmit, delack, keepalive].
    pub sock_timers: Vec<[TimerSlot; 3]>,
    pub tws: Vec<Option<Tw>>,
    pub reqs: Vec<Option<Req>>,
    /// Free slots of `reqs`.
    pub reqs_free: Vec<usize>,
    pub ehash: HashMap<Key4, Ehash>,
    /// Listening sockets by (host, port).
    pub lhash: HashMap<(usize, u16), SockId>,
    /// Segments on the wire: (arrival, order) → slot in `wire_slab`.
    wire: BinaryHeap<Reverse<(Time, u64, usize)>>,
    wire_slab: Vec<Option<Segment>>,
    wire_free: Vec<usize>,
    order: u64,
    timers: BinaryHeap<Reverse<(Time, u64, TimerRef)>>,
    timer_order: u64,
    pub trace: Vec<Segment>,
    pub states: Vec<StateChange>,
    pub policy: Policy,
    pub seed: u64,
    pub keep_payload: bool,
    /// The link's MTU (`RunOptions::link_mtu`, else [`output::LINK_MTU`]).
    pub link_mtu: u32,
    /// `RunOptions::link_tso`: GSO skbs leave whole.
    pub link_tso: bool,
    pub notes: Vec<String>,
    /// Time of the last segment sent or delivered (for `settle`).
    last_activity: Time,
    /// Segments built (for the benchmark).
    pub segments_built: u64,
    /// Record segments in `trace` (off for the benchmark's bulk run).
    pub record: bool,
    /// The run's horizon: no blocking call waits past it.
    pub horizon: Time,
    /// The reason the segments being built now are sent, when a caller
    /// knows it better than the segment's flags do (a probe timer, a
    /// retransmission timer, a TLP).
    pub why_ctx: Option<String>,
    /// Segments sent to a raw host (see [`Host::raw`]), not yet taken.
    pub raw_out: Vec<Segment>,
}

impl World {
    pub fn new(hosts: &[HostSpec], opts: &RunOptions) -> World {
        World {
            now: 0,
            hosts: hosts
                .iter()
                .map(|h| Host {
                    name: h.name.as_str().into(),
                    addr: h.addr,
                    sysctl: Sysctls::default(),
                    counters: BTreeMap::new(),
                    names: BTreeMap::new(),
                    closed: Vec::new(),
                    ports: HashMap::default(),
                    faults: VecDeque::new(),
                    held: Vec::new(),
                    raw: false,
                })
                .collect(),
            socks: Vec::new(),
            sock_timers: Vec::new(),
            tws: Vec::new(),
            reqs: Vec::new(),
            reqs_free: Vec::new(),
            ehash: HashMap::default(),
            lhash: HashMap::default(),
            wire: BinaryHeap::new(),
            wire_slab: Vec::new(),
            wire_free: Vec::new(),
            order: 0,
            timers: BinaryHeap::new(),
            timer_order: 0,
            trace: Vec::new(),
            states: Vec::new(),
            policy: opts.policy,
            seed: opts.seed,
            keep_payload: opts.keep_payload,
            link_mtu: opts.link_mtu.unwrap_or(output::LINK_MTU),
            link_tso: opts.link_tso,
            notes: Vec::new(),
            last_activity: 0,
            segments_built: 0,
            record: true,
            horizon: crate::engine::DEFAULT_HORIZON_US,
            why_ctx: None,
            raw_out: Vec::new(),
        }
    }

    #[inline]
    pub fn sk(&self, id: SockId) -> &Sock {
        &self.socks[id.0]
    }
    #[inline]
    pub fn sk_mut(&mut self, id: SockId) -> &mut Sock {
        &mut self.socks[id.0]
    }
    pub fn sys(&self, id: SockId) -> &Sysctls {
        &self.hosts[self.socks[id.0].host].sysctl
    }

    /// `jiffies`.
    #[inline]
    pub fn jiffies(&self) -> Jiffies {
        self.now / sock::JIFFY_US
    }
    /// `tcp_time_stamp_ts` for a connection without usec timestamps: the
    /// TCP timestamp clock in ms (offsets not added).
    #[inline]
    pub fn ts_clock(&self) -> u32 {
        (self.now / 1000) as u32
    }

    /// Adds a socket to the arena.
    pub fn add_sock(&mut self, s: Sock) -> SockId {
        self.socks.push(s);
        self.sock_timers.push([TimerSlot::default(); 3]);
        SockId(self.socks.len() - 1)
    }

    /// `NET_INC_STATS`.
    pub fn count(&mut self, host: usize, name: Counter) {
        *self.hosts[host].counters.entry(name).or_insert(0) += 1;
    }
    pub fn count_n(&mut self, host: usize, name: Counter, n: i64) {
        if n != 0 {
            *self.hosts[host].counters.entry(name).or_insert(0) += n;
        }
    }

    /// Records a state change of a full socket (the tracepoint
    /// `sock:inet_sock_set_state`).
    pub fn record_state(&mut self, id: SockId, from: State, to: State) {
        let s = &self.socks[id.0];
        let sock = if s.name.is_empty() {
            api::unnamed_label(s.remote)
        } else {
            s.name.clone()
        };
        self.states.push(StateChange {
            time_us: self.now,
            host: self.hosts[s.host].name.to_string(),
            sock,
            from,
            to,
        });
    }

    /// Records a state change under a name (a time-wait socket's).
    pub fn record_named(&mut self, host: usize, name: &str, from: State, to: State) {
        self.states.push(StateChange {
            time_us: self.now,
            host: self.hosts[host].name.to_string(),
            sock: name.to_string(),
            from,
            to,
        });
    }

    /// `secure_tcp_seq` (net/core/secure_seq.c): a keyed hash of the
    /// 4-tuple plus a clock that moves 1 every 64 ns (`seq_scale`), so a
    /// new connection on the same 4-tuple starts above the old one.
    pub fn secure_tcp_seq(
        &self,
        saddr: std::net::Ipv4Addr,
        daddr: std::net::Ipv4Addr,
        sport: u16,
        dport: u16,
    ) -> u32 {
        let a = ((u32::from(saddr) as u64) << 32) | u32::from(daddr) as u64;
        let b = ((sport as u64) << 16) | dport as u64;
        let ns = self.now * 1000;
        self.hash(a, b ^ 0x5eed_0000_0000)
            .wrapping_add((ns >> 6) as u32)
    }

    /// `secure_tcp_ts_off`: a keyed hash of the address pair.
    pub fn secure_tcp_ts_off(&self, saddr: std::net::Ipv4Addr, daddr: std::net::Ipv4Addr) -> u32 {
        let a = ((u32::from(saddr) as u64) << 32) | u32::from(daddr) as u64;
        self.hash(a, 0x7500_0000_0000)
    }

    /// A deterministic keyed hash (the model's `siphash` for ISNs and
    /// timestamp offsets).
    pub fn hash(&self, a: u64, b: u64) -> u32 {
        let mut x = self.seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.rotate_left(29);
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^= x >> 33;
        x as u32
    }

    // ---- the wire ----

    /// Puts a segment on the wire: records it, applies pending faults.
    pub fn emit(&mut self, mut seg: Segment) {
        seg.time_us = self.now;
        self.segments_built += 1;
        self.last_activity = self.now;
        let h = self.host_of_addr(seg.src_addr);
        let mut at = self.now + LINK_DELAY;
        let mut deliver = true;
        let mut hold = false;
        if let Some(f) = self.hosts[h].faults.front_mut() {
            let done = match f {
                PendingFault::Drop(n) => {
                    deliver = false;
                    *n -= 1;
                    *n == 0
                }
                PendingFault::Delay(d, n) => {
                    at += *d;
                    *n -= 1;
                    *n == 0
                }
                PendingFault::Hold(n) => {
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
                self.hosts[h].faults.pop_front();
            }
        }
        seg.lost = !deliver;
        if self.record {
            let mut copy = seg.clone();
            if !self.keep_payload {
                copy.payload = None;
            }
            self.trace.push(copy);
        }
        if self.hosts[self.host_of_addr(seg.dst_addr)].raw {
            self.raw_out.push(seg);
        } else if hold {
            self.hosts[h].held.push(seg);
        } else if deliver {
            self.put_on_wire(at, seg);
        }
    }

    /// A segment a raw host's script sends now: recorded like any other,
    /// and arriving now, like a segment written into a TUN device (whose
    /// write runs the receive path before it returns).
    pub fn inject(&mut self, mut seg: Segment) {
        seg.time_us = self.now;
        self.last_activity = self.now;
        if self.record {
            self.trace.push(seg.clone());
        }
        self.put_on_wire(self.now, seg);
    }

    fn put_on_wire(&mut self, at: Time, seg: Segment) {
        self.order += 1;
        let slot = match self.wire_free.pop() {
            Some(i) => {
                self.wire_slab[i] = Some(seg);
                i
            }
            None => {
                self.wire_slab.push(Some(seg));
                self.wire_slab.len() - 1
            }
        };
        self.wire.push(Reverse((at, self.order, slot)));
    }

    pub fn host_of_addr(&self, a: std::net::Ipv4Addr) -> usize {
        self.hosts.iter().position(|h| h.addr == a).unwrap_or(0)
    }

    // ---- timers ----

    /// The slot of a timer.
    fn slot(&mut self, t: TimerRef) -> Option<&mut TimerSlot> {
        match t {
            TimerRef::Xmit(i) => self.sock_timers.get_mut(i).map(|s| &mut s[0]),
            TimerRef::Delack(i) => self.sock_timers.get_mut(i).map(|s| &mut s[1]),
            TimerRef::Keepalive(i) => self.sock_timers.get_mut(i).map(|s| &mut s[2]),
            TimerRef::Tw(i) => self.tws.get_mut(i)?.as_mut().map(|t| &mut t.timer),
            TimerRef::Req(i) => self.reqs.get_mut(i)?.as_mut().map(|r| &mut r.timer),
        }
    }

    /// Arms a timer to fire at `at` (µs). The heap gets a new entry only
    /// when the timer moves earlier than its queued entry; an entry that
    /// comes up before the timer is due pushes the real time again (as the
    /// kernel's handlers re-arm a timer that fired early).
    pub fn arm(&mut self, t: TimerRef, at: Time) {
        let Some(slot) = self.slot(t) else { return };
        slot.due = Some(at);
        if slot.queued.is_none_or(|q| at < q) {
            slot.queued = Some(at);
            // Timers due in one jiffy share a timer-wheel bucket, and
            // enqueue_timer puts a timer at the head of its bucket's hlist:
            // expire_timers runs the bucket from the head, so the timer
            // armed last fires first.
            self.timer_order += 1;
            self.timers
                .push(Reverse((at, u64::MAX - self.timer_order, t)));
        }
    }

    /// Disarms a timer (its heap entry, if any, comes up and does nothing).
    pub fn disarm(&mut self, t: TimerRef) {
        if let Some(slot) = self.slot(t) {
            slot.due = None;
        }
    }

    /// The earliest pending event: a segment arriving or a timer.
    pub fn next_event(&mut self) -> Option<Time> {
        // Drop heap entries that no longer stand for an armed timer.
        while let Some(&Reverse((at, _, t))) = self.timers.peek() {
            let live = match self.slot(t) {
                Some(slot) => slot.queued == Some(at) && slot.due.is_some(),
                None => false,
            };
            if live {
                break;
            }
            self.timers.pop();
            if let Some(slot) = self.slot(t) {
                if slot.queued == Some(at) {
                    slot.queued = None;
                }
            }
        }
        let w = self.wire.peek().map(|Reverse((t, _, _))| *t);
        let t = self.timers.peek().map(|Reverse((t, _, _))| *t);
        match (w, t) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs everything due at `self.now`: arrivals first (in send order),
    /// then timers (the one armed last first, as a timer-wheel bucket).
    fn run_due(&mut self) {
        while let Some(&Reverse((at, _, slot))) = self.wire.peek() {
            if at > self.now {
                break;
            }
            self.wire.pop();
            let seg = self.wire_slab[slot].take();
            self.wire_free.push(slot);
            if let Some(seg) = seg {
                self.last_activity = self.now;
                input::tcp_v4_rcv(self, seg);
            }
        }
        while let Some(&Reverse((at, _, t))) = self.timers.peek() {
            if at > self.now {
                break;
            }
            self.timers.pop();
            let (due, stale) = match self.slot(t) {
                Some(slot) if slot.queued == Some(at) => {
                    slot.queued = None;
                    (slot.due, false)
                }
                _ => (None, true),
            };
            if stale {
                continue;
            }
            match due {
                Some(d) if d <= self.now => {
                    if let Some(slot) = self.slot(t) {
                        slot.due = None;
                    }
                    timers::fire(self, t);
                }
                Some(d) => self.arm(t, d),
                None => {}
            }
        }
    }

    /// Advances to the next event if it is at or before `limit`.
    pub fn step(&mut self, limit: Time) -> bool {
        match self.next_event() {
            Some(t) if t <= limit => {
                self.now = self.now.max(t);
                self.run_due();
                true
            }
            _ => false,
        }
    }

    /// Runs until nothing is on the wire and nothing has happened for
    /// [`SETTLE_QUIET_US`]. A segment a `delay` fault holds back is on the
    /// wire: the settle waits for its arrival (and for what it causes), as
    /// the linux engine's settle waits for its relay to empty.
    pub fn settle(&mut self) {
        self.last_activity = self.now;
        loop {
            let quiet = self.last_activity + SETTLE_QUIET_US;
            let arrival = self.wire.peek().map_or(0, |Reverse((t, _, _))| *t);
            if !self.step(quiet.max(arrival)) {
                break;
            }
        }
        self.now = self.now.max(self.last_activity + SETTLE_QUIET_US);
    }

    /// When the next segment on the wire arrives, if one is in flight.
    pub fn next_arrival(&self) -> Option<Time> {
        self.wire.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Runs until `until`.
    pub fn run_until(&mut self, until: Time) {
        while self.step(until) {}
        self.now = self.now.max(until);
    }

    /// The socket a name refers to.
    pub fn named(&self, host: usize, name: &str) -> Option<SockId> {
        self.hosts[host].names.get(name).copied()
    }

    /// The state a script sees for a named socket: the socket's own, or the
    /// time-wait socket that carries the connection now (its sub-state).
    pub fn state_of(&self, id: SockId) -> State {
        let s = self.sk(id);
        if s.state == State::Close {
            if let Some(tw) = timewait::tw_of(self, id) {
                return tw.substate;
            }
        }
        s.state
    }
}

/// `finrst drill` on the model: host 0's program makes one call at a time;
/// a call that sleeps in the kernel is resumed when what it waits for
/// happens (`api::due`), as time advances.
impl RawPeer for ModelEngine {
    fn start(&mut self, sock: &str, call: &Call, ctx: &CallCtx) -> Option<CallOutcome> {
        match api::call(&mut self.world, 0, sock, call, ctx) {
            api::Progress::Done(o) => Some(o),
            api::Progress::Blocked(b) => {
                self.raw_pending = Some(b);
                None
            }
        }
    }
    fn advance(&mut self, until: u64) {
        let w = &mut self.world;
        loop {
            if let Some(b) = self.raw_pending.take() {
                if api::due(w, &b) {
                    match api::resume(w, b) {
                        api::Progress::Done(o) => {
                            self.raw_done = Some((o, w.now));
                            return;
                        }
                        api::Progress::Blocked(b) => self.raw_pending = Some(b),
                    }
                } else {
                    self.raw_pending = Some(b);
                }
            }
            if !w.raw_out.is_empty() || w.now > until {
                return;
            }
            let limit = self
                .raw_pending
                .as_ref()
                .and_then(api::own_deadline)
                .map_or(until, |d| d.min(until));
            // Events due by `until` run, those at `until` itself included
            // (a segment injected now is processed now).
            if !w.step(limit) {
                w.now = w.now.max(limit);
                if w.now >= until && self.raw_pending.as_ref().is_none_or(|b| !api::due(w, b)) {
                    return;
                }
            }
        }
    }
    fn take_done(&mut self) -> Option<(CallOutcome, u64)> {
        self.raw_done.take()
    }
    fn take_outbound(&mut self) -> Vec<Segment> {
        std::mem::take(&mut self.world.raw_out)
    }
    fn inject(&mut self, seg: Segment) {
        self.world.inject(seg);
    }
    fn trace(&mut self) -> Vec<Segment> {
        self.world.trace.clone()
    }
}

/// The model as an [`Engine`].
pub struct ModelEngine {
    pub world: World,
    /// Blocked calls of the program of each host (none outside `together`:
    /// a call blocks the caller until it returns).
    pending: Vec<api::Blocked>,
    /// With a raw peer ([`crate::engine::RawPeer`], `finrst drill`): the
    /// local program's sleeping call, and a call that has returned.
    raw_pending: Option<api::Blocked>,
    raw_done: Option<(CallOutcome, u64)>,
}

impl ModelEngine {
    pub fn new(hosts: &[HostSpec], opts: &RunOptions) -> Self {
        ModelEngine {
            world: World::new(hosts, opts),
            pending: Vec::new(),
            raw_pending: None,
            raw_done: None,
        }
    }
}

/// A script's `sysctl` step on a host of the model.
pub fn set_sysctl(w: &mut World, host: usize, key: Sysctl, value: &str) -> Result<(), SysctlError> {
    if !key.modelled() {
        return Err(SysctlError::NotModelled(key));
    }
    w.hosts[host].sysctl.set(key, value)
}

impl Engine for ModelEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Model
    }
    fn now_us(&self) -> u64 {
        self.world.now
    }
    fn begin(&mut self, horizon_us: u64) {
        self.world.horizon = horizon_us;
    }
    fn sysctl(&mut self, host: usize, key: Sysctl, value: &str) -> Result<(), EngineError> {
        set_sysctl(&mut self.world, host, key, value).map_err(|e| EngineError(e.to_string()))
    }
    fn call(&mut self, host: usize, sock: &str, call: &Call, ctx: &CallCtx) -> CallOutcome {
        match api::call(&mut self.world, host, sock, call, ctx) {
            api::Progress::Done(o) => o,
            api::Progress::Blocked(b) => api::wait(&mut self.world, b),
        }
    }
    fn call_together(&mut self, calls: &[(usize, String, Call, CallCtx)]) -> Vec<CallOutcome> {
        // Every call starts at this instant (nothing is delivered between
        // them: what they send arrives LINK_DELAY later). A call that must
        // block stays blocked, as a program's would, while the others are
        // made; then time runs until every blocked one returns.
        let mut outs: Vec<Option<CallOutcome>> = vec![None; calls.len()];
        let mut blocked = Vec::new();
        for (i, (h, s, c, x)) in calls.iter().enumerate() {
            match api::call(&mut self.world, *h, s, c, x) {
                api::Progress::Done(o) => outs[i] = Some(o),
                api::Progress::Blocked(b) => blocked.push((i, b)),
            }
        }
        for (i, o) in api::wait_all(&mut self.world, blocked) {
            outs[i] = Some(o);
        }
        self.pending.clear();
        outs.into_iter().map(|o| o.unwrap_or_default()).collect()
    }
    fn fault(&mut self, host: usize, fault: &Fault) -> Result<(), EngineError> {
        let f = match fault {
            Fault::Drop { count } => PendingFault::Drop(*count),
            Fault::Delay { us, count } => PendingFault::Delay(*us, *count),
            Fault::Hold { count } => PendingFault::Hold(*count),
        };
        self.world.hosts[host].faults.push_back(f);
        Ok(())
    }
    fn release(&mut self, host: usize) -> Result<(), EngineError> {
        let w = &mut self.world;
        w.hosts[host]
            .faults
            .retain(|f| !matches!(f, PendingFault::Hold(_)));
        let held = std::mem::take(&mut w.hosts[host].held);
        let at = w.now + LINK_DELAY;
        for seg in held {
            w.put_on_wire(at, seg);
        }
        Ok(())
    }
    fn settle(&mut self) {
        self.world.settle();
    }
    fn wait(&mut self, us: u64) {
        let until = self.world.now + us;
        self.world.run_until(until);
    }
    fn state(&mut self, host: usize, sock: &str) -> Option<TcpState> {
        let id = self.world.named(host, sock)?;
        Some(self.world.state_of(id))
    }
    fn counters(&mut self, host: usize) -> BTreeMap<Counter, i64> {
        self.world.hosts[host]
            .counters
            .iter()
            .filter(|(k, v)| **v != 0 && k.reported())
            .map(|(k, v)| (*k, *v))
            .collect()
    }
    fn segments(&self) -> &[Segment] {
        &self.world.trace
    }
    fn forget_segments(&mut self) -> bool {
        // Nothing in the model refers to a recorded segment: the wire and
        // the held list have their own copies.
        self.world.trace.clear();
        true
    }
    fn finish(&mut self, horizon_us: u64) -> Finish {
        let w = &mut self.world;
        while w.step(horizon_us) {}
        let pending = w.next_event().is_some();
        if pending {
            w.now = w.now.max(horizon_us);
        }
        let mut open = Vec::new();
        for s in w.socks.iter() {
            if matches!(s.state, State::Close | State::Listen) || s.remote.is_none() {
                continue;
            }
            let (rh, rp) = s.remote.unwrap_or((0, 0));
            let mut detail = Vec::new();
            if s.dead {
                detail.push("orphaned".to_string());
            }
            let unread = s.unread();
            if unread > 0 {
                detail.push(format!("{unread} bytes unread"));
            }
            let unacked = s.write_seq.wrapping_sub(s.snd_una);
            if unacked > 0 {
                detail.push(format!("{unacked} bytes not yet acknowledged"));
            }
            if s.pending == Some(sock::XmitTimer::Probe0) {
                detail.push(format!("probing a zero window ({} probes)", s.probe_label));
            }
            open.push(OpenConn {
                host: w.hosts[s.host].name.to_string(),
                // A child never accepted goes by the label its states carry.
                sock: if s.name.is_empty() {
                    api::unnamed_label(s.remote)
                } else {
                    s.name.clone()
                },
                local_port: s.local_port,
                remote: format!("{}:{}", w.hosts[rh].name, rp),
                state: s.state,
                detail: detail.join(", "),
            });
        }
        for tw in w.tws.iter().flatten() {
            open.push(OpenConn {
                host: w.hosts[tw.host].name.to_string(),
                sock: tw.name.clone(),
                local_port: tw.local_port,
                remote: format!("{}:{}", w.hosts[tw.remote.0].name, tw.remote.1),
                state: tw.substate,
                detail: format!(
                    "time-wait socket, expires at {}",
                    crate::trace::fmt_time(tw.timer.due.unwrap_or(0))
                ),
            });
        }
        let mut notes = std::mem::take(&mut w.notes);
        if pending {
            notes.push(crate::engine::horizon_note(horizon_us));
        }
        Finish {
            states: w.states.clone(),
            open_at_end: open,
            notes,
            end_us: w.now,
        }
    }
    fn raw_peer(&mut self, peer: usize) -> Result<&mut dyn RawPeer, EngineError> {
        // What is sent to the raw host is kept for the caller, never
        // delivered (World::raw_out); what the caller sends is put on the
        // wire as if that host had sent it (World::inject).
        self.world.hosts[peer].raw = true;
        Ok(self)
    }
}
