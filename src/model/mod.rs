//! The model engine: a pure, deterministic model of the Linux 6.18 TCP close
//! path on a virtual clock.
//!
//! # Where does close() decide RST or FIN?
//!
//! [`close::tcp_close`] mirrors `__tcp_close` (net/ipv4/tcp.c) branch by
//! branch; the RFC 2525 2.17 rule is the `unread > 0` branch there. The
//! rest of the kernel the close path reaches lives one concern per file:
//!
//! | file | kernel |
//! |---|---|
//! | [`close`] | `__tcp_close`, `tcp_close_state`, `tcp_shutdown`, `tcp_disconnect`, `inet_csk_listen_stop`, `tcp_done`, `tcp_time_wait` |
//! | [`input`] | `tcp_v4_rcv` demux, `tcp_rcv_state_process`, `tcp_rcv_synsent_state_process`, `tcp_ack`, `tcp_data_queue`, `tcp_fin`, `tcp_urg`, `tcp_reset`, `tcp_v4_send_reset` |
//! | [`output`] | `tcp_transmit_skb` (options, `tcp_select_window`), `tcp_write_xmit`, `tcp_send_ack`, `tcp_send_fin`, `tcp_send_active_reset`, `tcp_write_wakeup` |
//! | [`timewait`] | `inet_timewait_sock`, `tcp_timewait_state_process`, `tcp_v4_timewait_ack` |
//! | [`timers`] | `tcp_retransmit_timer`, `tcp_probe_timer`, `tcp_delack_timer`, `tcp_keepalive_timer` (FIN_WAIT2), `tcp_write_timeout` |
//! | [`api`] | the syscalls: `tcp_recvmsg`, `tcp_sendmsg`, `tcp_poll`, `setsockopt`, `inet_stream_connect`, `inet_accept`, close with SO_LINGER |
//!
//! # Time
//! Event driven: the world jumps to the next deadline (a segment arriving, a
//! timer). Segments take [`LINK_DELAY`] to cross the link. Nothing sleeps.
//!
//! # How the model departs from Linux
//! Each of these is observable in a trace; the conformance table of the
//! linux engine shows where they matter.
//! - Receive memory: every queued skb is charged its payload plus a fixed
//!   [`sock::SKB_OVERHEAD`] in `sk_rmem_alloc`; the kernel charges the real
//!   `truesize` of the skb the device handed over, so advertised windows on
//!   a nearly full receive buffer can differ by a few hundred bytes.
//! - Receive-buffer auto-tuning (`tcp_rcv_space_adjust`) and `scaling_ratio`
//!   updates are not modelled: `sk_rcvbuf` stays at `tcp_rmem[1]` (or
//!   SO_RCVBUF) and the ratio at 50 %. Windows in long bulk transfers
//!   therefore stay smaller than the kernel's.
//! - Congestion control is slow start plus Reno halving; no CUBIC, no
//!   pacing, no TSO autosizing, no SACK-based recovery (SACK blocks are sent
//!   but the sender retransmits from `snd_una`), no RACK/TLP (a lost tail is
//!   recovered by the RTO, where Linux may send a tail-loss probe earlier).
//! - `tcp_write_timeout` counts retransmissions instead of modelling
//!   `retransmits_timed_out`'s time-based boundary; the give-up time after
//!   `tcp_retries2` (15) and `tcp_orphan_retries` (8) is the same for the
//!   default 200 ms RTO floor.
//! - No memory pressure or orphan limits: `tcp_check_oom` never fires, so
//!   `TCPAbortOnMemory` never moves.
//! - Request sockets are full sockets in SYN_RECV (no syncookies, no
//!   `NEW_SYN_RECV` minisocket); a full accept queue drops the SYN.
//! - Keep-alive probes are not modelled (off by default in Linux).
//! - The delayed-ACK timeout is `ato` (40 ms after quick-ack mode), without
//!   the kernel's RTT-based adjustments.

pub mod api;
pub mod close;
pub mod input;
pub mod output;
pub mod sock;
pub mod timers;
pub mod timewait;

use crate::engine::{
    CallCtx, CallOutcome, Engine, EngineError, Finish, HostSpec, OpenConn, Policy, RunOptions,
    SETTLE_QUIET_US, StateChange,
};
use crate::script::{Call, Fault};
use crate::segment::Segment;
use sock::{MS, SEC, Sock, SockId, State, Time};
use std::collections::{BTreeMap, VecDeque};
use timewait::Tw;

/// One-way delay of the virtual link.
pub const LINK_DELAY: Time = 20;

/// A host's sysctls (`net.ipv4.*`), with Linux 6.18's defaults.
#[derive(Clone, Debug)]
pub struct Sysctl {
    pub tcp_fin_timeout: Time,
    pub tcp_rmem: [u32; 3],
    pub tcp_wmem: [u32; 3],
    pub tcp_orphan_retries: u32,
    pub tcp_retries2: u32,
    pub tcp_syn_retries: u32,
    pub tcp_synack_retries: u32,
    pub tcp_timestamps: bool,
    pub tcp_sack: bool,
    pub tcp_window_scaling: bool,
    pub tcp_rfc1337: bool,
    pub tcp_abort_on_overflow: bool,
    /// `net.core.rmem_max`: the cap for SO_RCVBUF (and the window scale).
    pub rmem_max: u32,
    pub wmem_max: u32,
}

impl Default for Sysctl {
    fn default() -> Self {
        Sysctl {
            tcp_fin_timeout: 60 * SEC,
            tcp_rmem: [4096, 131072, 33554432],
            tcp_wmem: [4096, 16384, 4194304],
            tcp_orphan_retries: 0,
            tcp_retries2: 15,
            tcp_syn_retries: sock::TCP_SYN_RETRIES,
            tcp_synack_retries: sock::TCP_SYNACK_RETRIES,
            tcp_timestamps: true,
            tcp_sack: true,
            tcp_window_scaling: true,
            tcp_rfc1337: false,
            tcp_abort_on_overflow: false,
            rmem_max: 4194304,
            wmem_max: 4194304,
        }
    }
}

/// A fault waiting for the next segments a host sends.
#[derive(Clone, Debug)]
enum PendingFault {
    Drop(u32),
    Delay(Time, u32),
    Hold(Option<u32>),
}

/// A host: its sysctls, counters, and what its program calls its sockets.
#[derive(Clone, Debug)]
pub struct Host {
    pub name: String,
    pub addr: std::net::Ipv4Addr,
    pub sysctl: Sysctl,
    /// TcpExt counters, changes since the run began.
    pub counters: BTreeMap<&'static str, i64>,
    /// The program's socket names (closed ones stay, for `expect state`).
    pub names: BTreeMap<String, SockId>,
    /// Names whose descriptor the program has closed.
    pub closed: Vec<String>,
    faults: VecDeque<PendingFault>,
    held: Vec<Segment>,
}

/// Everything the model knows: hosts, sockets, time-wait sockets, the
/// segments on the wire, and the record of what happened.
pub struct World {
    pub now: Time,
    pub hosts: Vec<Host>,
    pub socks: Vec<Sock>,
    pub tws: Vec<Tw>,
    /// Segments on the wire: (arrival time, order, segment).
    wire: Vec<(Time, u64, Segment)>,
    order: u64,
    pub trace: Vec<Segment>,
    pub states: Vec<StateChange>,
    pub policy: Policy,
    pub seed: u64,
    pub keep_payload: bool,
    pub notes: Vec<String>,
    /// Time of the last segment sent or delivered (for `settle`).
    last_activity: Time,
    /// Counts segments built (for the benchmark).
    pub segments_built: u64,
    /// Record segments in `trace` (off for the benchmark's bulk run).
    pub record: bool,
    /// Inside `together { }`: calls return at once instead of blocking
    /// (connect gives EINPROGRESS, recv and accept EAGAIN, close does not
    /// linger), so that they all happen at one instant.
    pub nonblocking: bool,
}

impl World {
    pub fn new(hosts: &[HostSpec], opts: &RunOptions) -> World {
        World {
            now: 0,
            hosts: hosts
                .iter()
                .map(|h| Host {
                    name: h.name.clone(),
                    addr: h.addr,
                    sysctl: Sysctl::default(),
                    counters: BTreeMap::new(),
                    names: BTreeMap::new(),
                    closed: Vec::new(),
                    faults: VecDeque::new(),
                    held: Vec::new(),
                })
                .collect(),
            socks: Vec::new(),
            tws: Vec::new(),
            wire: Vec::new(),
            order: 0,
            trace: Vec::new(),
            states: Vec::new(),
            policy: opts.policy,
            seed: opts.seed,
            keep_payload: opts.keep_payload,
            notes: Vec::new(),
            last_activity: 0,
            segments_built: 0,
            record: true,
            nonblocking: false,
        }
    }

    pub fn sk(&self, id: SockId) -> &Sock {
        &self.socks[id.0]
    }
    pub fn sk_mut(&mut self, id: SockId) -> &mut Sock {
        &mut self.socks[id.0]
    }

    /// `NET_INC_STATS`.
    pub fn count(&mut self, host: usize, name: &'static str) {
        *self.hosts[host].counters.entry(name).or_insert(0) += 1;
    }

    /// `tcp_set_state`: every transition goes through here and is recorded.
    pub fn set_state(&mut self, id: SockId, to: State) {
        let from = self.socks[id.0].state;
        if from == to {
            return;
        }
        self.socks[id.0].state = to;
        self.record_state(id, from.name(), to.name());
    }

    fn record_state(&mut self, id: SockId, from: &str, to: &str) {
        let s = &self.socks[id.0];
        if s.is_request {
            // A request socket is not a full socket yet: Linux traces no
            // state for it (it is created straight in NEW_SYN_RECV).
            return;
        }
        let sock = if s.name.is_empty() {
            api::unnamed_label(s.remote)
        } else {
            s.name.clone()
        };
        self.states.push(StateChange {
            time_us: self.now,
            host: self.hosts[s.host].name.clone(),
            sock,
            from: from.to_string(),
            to: to.to_string(),
        });
    }

    /// A deterministic pseudo-random number for a connection (ISNs and
    /// timestamp offsets; the kernel uses `secure_tcp_seq` / `_ts_off`).
    pub fn hash(&self, a: u64, b: u64) -> u32 {
        let mut x = self.seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.rotate_left(29);
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^= x >> 33;
        x as u32
    }

    /// Puts a segment on the wire: records it, applies pending faults.
    pub fn emit(&mut self, mut seg: Segment) {
        seg.time_us = self.now;
        self.segments_built += 1;
        self.last_activity = self.now;
        if !self.keep_payload {
            seg.payload = None;
        }
        let h = self.host_of_addr(seg.src_addr);
        let mut at = self.now + LINK_DELAY;
        let mut deliver = true;
        let mut hold = false;
        if let Some(f) = self.hosts[h].faults.front_mut() {
            match f {
                PendingFault::Drop(n) => {
                    deliver = false;
                    *n -= 1;
                    if *n == 0 {
                        self.hosts[h].faults.pop_front();
                    }
                }
                PendingFault::Delay(d, n) => {
                    at += *d;
                    *n -= 1;
                    if *n == 0 {
                        self.hosts[h].faults.pop_front();
                    }
                }
                PendingFault::Hold(n) => {
                    hold = true;
                    if let Some(k) = n {
                        *k -= 1;
                        if *k == 0 {
                            self.hosts[h].faults.pop_front();
                        }
                    }
                }
            }
        }
        seg.lost = !deliver;
        if self.record {
            self.trace.push(seg.clone());
        }
        if hold {
            self.hosts[h].held.push(seg);
        } else if deliver {
            self.order += 1;
            self.wire.push((at, self.order, seg));
        }
    }

    pub fn host_of_addr(&self, a: std::net::Ipv4Addr) -> usize {
        self.hosts.iter().position(|h| h.addr == a).unwrap_or(0)
    }

    /// The earliest pending event: a segment arriving or a timer.
    pub fn next_event(&self) -> Option<Time> {
        let mut t = self.wire.iter().map(|w| w.0).min();
        let mut take = |x: Option<Time>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |y: Time| y.min(x)));
            }
        };
        for s in &self.socks {
            if s.state == State::Close && !s.dead {
                // A closed socket still owned by the program has no timers.
                continue;
            }
            take(s.t_rto);
            take(s.t_tlp);
            take(s.t_probe);
            take(s.t_delack);
            take(s.t_keepalive);
        }
        for tw in &self.tws {
            take(Some(tw.expires));
        }
        t
    }

    /// Runs everything due at `self.now`: arrivals first (in send order),
    /// then timers (in socket order).
    fn run_due(&mut self) {
        while let Some(i) = self
            .wire
            .iter()
            .enumerate()
            .filter(|(_, w)| w.0 <= self.now)
            .min_by_key(|(_, w)| (w.0, w.1))
            .map(|(i, _)| i)
        {
            let (_, _, seg) = self.wire.swap_remove(i);
            self.last_activity = self.now;
            input::tcp_v4_rcv(self, seg);
        }
        timers::run_timers(self);
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

    /// Runs until nothing has happened for [`SETTLE_QUIET_US`].
    pub fn settle(&mut self) {
        self.last_activity = self.now;
        while self.step(self.last_activity + SETTLE_QUIET_US) {}
        self.now = self.now.max(self.last_activity + SETTLE_QUIET_US);
    }

    /// Runs until `until`.
    pub fn run_until(&mut self, until: Time) {
        while self.step(until) {}
        self.now = self.now.max(until);
    }

    /// Runs until `done` holds or `deadline` passes; true if `done` held.
    pub fn block_until(&mut self, deadline: Time, done: &dyn Fn(&World) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            if !self.step(deadline) {
                self.now = self.now.max(deadline);
                return done(self);
            }
        }
    }

    /// The socket a name refers to.
    pub fn named(&self, host: usize, name: &str) -> Option<SockId> {
        self.hosts[host].names.get(name).copied()
    }

    /// The state a script sees for a named socket: the socket's own, or the
    /// time-wait socket that replaced it (its substate), or CLOSE.
    pub fn state_of(&self, id: SockId) -> &'static str {
        let s = self.sk(id);
        if s.state == State::Close {
            if let Some(tw) = self.tws.iter().find(|t| t.sock == id) {
                return tw.substate.name();
            }
        }
        s.state.name()
    }
}

/// The model as an [`Engine`].
pub struct ModelEngine {
    pub world: World,
}

impl ModelEngine {
    pub fn new(hosts: &[HostSpec], opts: &RunOptions) -> Self {
        ModelEngine {
            world: World::new(hosts, opts),
        }
    }
}

fn parse_sysctl(w: &mut World, host: usize, key: &str, value: &str) -> Result<(), String> {
    let nums: Result<Vec<i64>, _> = value.split_whitespace().map(|v| v.parse::<i64>()).collect();
    let nums = nums.map_err(|_| format!("sysctl {key}: expected numbers, found {value:?}"))?;
    let one = || -> Result<i64, String> {
        match nums.as_slice() {
            [v] => Ok(*v),
            _ => Err(format!("sysctl {key} takes one number, found {value:?}")),
        }
    };
    let three = || -> Result<[u32; 3], String> {
        match nums.as_slice() {
            [a, b, c] if *a > 0 && *b > 0 && *c > 0 => Ok([*a as u32, *b as u32, *c as u32]),
            _ => Err(format!(
                "sysctl {key} takes three positive numbers, found {value:?}"
            )),
        }
    };
    let s = &mut w.hosts[host].sysctl;
    let nonneg = |v: i64| -> Result<u32, String> {
        u32::try_from(v).map_err(|_| format!("sysctl {key}: {v} is out of range"))
    };
    match key {
        "net.ipv4.tcp_fin_timeout" => s.tcp_fin_timeout = nonneg(one()?)? as Time * SEC,
        "net.ipv4.tcp_rmem" => s.tcp_rmem = three()?,
        "net.ipv4.tcp_wmem" => s.tcp_wmem = three()?,
        "net.ipv4.tcp_orphan_retries" => s.tcp_orphan_retries = nonneg(one()?)?,
        "net.ipv4.tcp_retries2" => s.tcp_retries2 = nonneg(one()?)?,
        "net.ipv4.tcp_syn_retries" => s.tcp_syn_retries = nonneg(one()?)?.clamp(1, 127),
        "net.ipv4.tcp_synack_retries" => s.tcp_synack_retries = nonneg(one()?)?,
        "net.ipv4.tcp_timestamps" => s.tcp_timestamps = one()? != 0,
        "net.ipv4.tcp_sack" => s.tcp_sack = one()? != 0,
        "net.ipv4.tcp_window_scaling" => s.tcp_window_scaling = one()? != 0,
        "net.ipv4.tcp_rfc1337" => s.tcp_rfc1337 = one()? != 0,
        "net.ipv4.tcp_abort_on_overflow" => s.tcp_abort_on_overflow = one()? != 0,
        _ => {
            return Err(format!(
                "the model does not know sysctl {key} (it knows net.ipv4.tcp_fin_timeout, tcp_rmem, tcp_wmem, tcp_orphan_retries, tcp_retries2, tcp_syn_retries, tcp_synack_retries, tcp_timestamps, tcp_sack, tcp_window_scaling, tcp_rfc1337, tcp_abort_on_overflow)"
            ));
        }
    }
    Ok(())
}

impl Engine for ModelEngine {
    fn name(&self) -> &'static str {
        "model"
    }
    fn now_us(&self) -> u64 {
        self.world.now
    }
    fn sysctl(&mut self, host: usize, key: &str, value: &str) -> Result<(), EngineError> {
        parse_sysctl(&mut self.world, host, key, value).map_err(EngineError)
    }
    fn call(&mut self, host: usize, sock: &str, call: &Call, ctx: &CallCtx) -> CallOutcome {
        api::call(&mut self.world, host, sock, call, ctx)
    }
    fn call_together(&mut self, calls: &[(usize, String, Call, CallCtx)]) -> Vec<CallOutcome> {
        // Everything the calls send is on the wire with a later arrival
        // time, so nothing is delivered between them.
        self.world.nonblocking = true;
        let out = calls
            .iter()
            .map(|(h, s, c, x)| api::call(&mut self.world, *h, s, c, x))
            .collect();
        self.world.nonblocking = false;
        out
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
        for seg in held {
            w.order += 1;
            w.wire.push((w.now + LINK_DELAY, w.order, seg));
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
    fn state(&mut self, host: usize, sock: &str) -> Option<String> {
        let id = self.world.named(host, sock)?;
        Some(self.world.state_of(id).to_string())
    }
    fn counters(&mut self, host: usize) -> BTreeMap<String, i64> {
        self.world.hosts[host]
            .counters
            .iter()
            .filter(|(_, v)| **v != 0)
            .map(|(k, v)| (k.to_string(), *v))
            .collect()
    }
    fn segments(&self) -> &[Segment] {
        &self.world.trace
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
            if s.unread() > 0 {
                detail.push(format!("{} bytes unread", s.unread()));
            }
            let unsent = s.write_seq.wrapping_sub(s.snd_una);
            if unsent > 0 {
                detail.push(format!("{unsent} bytes not yet acknowledged"));
            }
            if s.t_probe.is_some() {
                detail.push(format!(
                    "probing a zero window ({} probes, next in {} ms)",
                    s.probes_total(),
                    s.t_probe.unwrap_or(0).saturating_sub(w.now) / MS
                ));
            }
            open.push(OpenConn {
                host: w.hosts[s.host].name.clone(),
                sock: s.name.clone(),
                local_port: s.local_port,
                remote: format!("{}:{}", w.hosts[rh].name, rp),
                state: s.state.name().to_string(),
                detail: detail.join(", "),
            });
        }
        for tw in &w.tws {
            open.push(OpenConn {
                host: w.hosts[tw.host].name.clone(),
                sock: tw.name.clone(),
                local_port: tw.local_port,
                remote: format!("{}:{}", w.hosts[tw.remote.0].name, tw.remote.1),
                state: tw.substate.name().to_string(),
                detail: format!(
                    "time-wait socket, expires at {}",
                    crate::trace::fmt_time(tw.expires)
                ),
            });
        }
        let mut notes = std::mem::take(&mut w.notes);
        if pending {
            notes.push(format!(
                "stopped at the horizon ({}); events were still pending",
                crate::trace::fmt_time(horizon_us)
            ));
        }
        Finish {
            states: w.states.clone(),
            open_at_end: open,
            notes,
            end_us: w.now,
        }
    }
}

impl Sock {
    /// Zero-window probes sent in the current episode (for reports).
    pub fn probes_total(&self) -> u32 {
        self.probes_out.max(self.backoff)
    }
}
