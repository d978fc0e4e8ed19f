//! The linux engine: every script step performed by the machine's real
//! kernel, in private network namespaces, captured segment by segment.
//!
//! # Design
//!
//! - **One network namespace per host**, each created by a forked child
//!   process ([`host`]) that then *is* the host's program: it performs the
//!   socket calls it is sent with plain system calls, and `exit` is SIGKILL of
//!   that process, so the kernel closes its descriptors exactly as for kill
//!   -9 (`do_exit` with `PF_EXITING`: `inet_release` skips the SO_LINGER
//!   wait). Per-host namespaces give per-host sysctls (`server sysctl
//!   net.ipv4.tcp_fin_timeout = 5`) and per-host TcpExt counters
//!   (`/proc/<pid>/net/netstat`), which scripts check. Each namespace gets
//!   Linux 6.18's TCP defaults written explicitly
//!   ([`host::default_sysctls`]), then the script's sysctls.
//! - **The link is a TUN device per host, joined by a userspace relay**
//!   ([`relay`]), MTU 65535 so that advmss is 65495 as on loopback (the SYN
//!   carries `mss 65495,sackOK,TS val .. ecr 0,nop,wscale 10`). The relay is
//!   the wire: it captures each segment exactly once, in order, stamped with
//!   the real time since the run began, and implements the script's faults
//!   (`drop`, `delay`, `hold`/`release`) and "calls made together" (nothing
//!   is delivered until every call of the group has returned, or 300 ms if
//!   one blocks) by deciding when to write a packet on. This replaces an
//!   AF_PACKET capture on a veth pair: this kernel has neither netem nor
//!   nft's `queue` expression, and a capture beside an in-kernel link cannot
//!   hold a segment back. What it changes: the round trip is a few tens of
//!   microseconds of relay instead of a softirq on `lo` (timestamps and RTT
//!   estimates differ, segments do not), and segments are cut at the MSS
//!   (a TUN device has no TSO) where tcpdump on `lo` would show GSO
//!   super-packets: bulk transfers show more, smaller segments than `lo`.
//! - **States** come from the tracepoint `sock:inet_sock_set_state` read
//!   with `perf_event_open` ([`states`]); time-wait sockets, which that
//!   tracepoint does not follow, from `/proc/<pid>/net/tcp`. A full socket
//!   that goes FIN_WAIT1/FIN_WAIT2/CLOSING → CLOSE while a time-wait socket
//!   of the same 4-tuple exists right after is reported as going to that
//!   time-wait socket's sub-state (FIN_WAIT2 or TIME_WAIT), and the
//!   time-wait socket's later TIME_WAIT and CLOSE are reported when the poll
//!   sees them (every 10 ms while time passes, so their times are ±10 ms). A
//!   time-wait socket that lives less than one poll (e.g. killed by an RST
//!   within milliseconds) is missed: its full socket is reported as going to
//!   CLOSE.
//! - **Parallel runs** use distinct real addresses 10.A.B.(i+1)/24 (A.B
//!   unique per run in this process, derived from the pid across
//!   processes), because the tracepoint is global; traces show the script's
//!   10.0.0.(i+1).
//! - **Time** is real: `settle` waits until no segment has been captured for
//!   [`SETTLE_QUIET_US`] and no delayed segment is in flight; `wait` sleeps;
//!   `finish` runs until no connection of the run has a timer pending
//!   (TIME_WAIT and FIN_WAIT2 time-wait sockets included), or the horizon —
//!   but for at most [`crate::engine::LINUX_MAX_WAIT_US`] (70 s, or
//!   `FINRST_LINUX_MAX_WAIT`, e.g. `120s`) past the last step, and the notes
//!   say where a run was cut. Blocking calls are bounded by SO_RCVTIMEO /
//!   SO_SNDTIMEO of [`DEFAULT_CALL_BOUND_US`] (3 s, or
//!   `FINRST_LINUX_CALL_BOUND`): a blocking `recv` with nothing to come
//!   returns -1 EAGAIN with a note instead of hanging; a blocking close
//!   with SO_LINGER {1, N} really blocks up to N s.
//! - **Cleanup**: children die with the thread that forked them
//!   (`PR_SET_PDEATHSIG`), namespaces are unnamed and die with their last
//!   process and descriptor, the tracepoint is read through descriptors, and
//!   tracefs (if it must be mounted) is mounted only in a child's private
//!   mount namespace. Nothing global is changed, so an interrupted run
//!   (Ctrl-C, SIGTERM, even SIGKILL) leaves nothing behind.
//! - **Privileges**: root, or CAP_SYS_ADMIN (namespaces, the tracepoint)
//!   and CAP_NET_ADMIN (TUN, addresses, sysctls). Without them the engine
//!   refuses to start with one line that says what is missing.

pub mod drill;
pub mod host;
pub mod info;
pub mod relay;
pub mod states;
pub mod sys;

use crate::engine::{
    CallCtx, CallOutcome, Engine, EngineError, Finish, HostSpec, OpenConn, RunOptions,
    SETTLE_QUIET_US, StateChange,
};
use crate::script::{Call, Fault, GetOpt, SockOpt};
use crate::segment::Segment;
use crate::vocab::{Counter, EngineKind, Errno, Sysctl, TcpState};
use host::{Cmd, HostProc, Reply};
use relay::Relay;
use states::{Event, ResetEvent, ResetLayout, TcpEntry, Tracer, state_name};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The bound on one blocking call by default.
pub const DEFAULT_CALL_BOUND_US: u64 = 3_000_000;
/// While calls made together run, nothing is delivered for this long at
/// most: a call that has not returned by then, nor been seen asleep in the
/// kernel (`HostProc::blocked_in_call`), is taken to be waiting for the
/// network.
const TOGETHER_HOLD: Duration = Duration::from_millis(300);
/// How often time-wait sockets are polled while time passes.
const POLL_EVERY: Duration = Duration::from_millis(10);

/// (local port, remote real address, remote port); a listener has
/// 0.0.0.0:0 as remote.
type Key = (u16, Ipv4Addr, u16);

/// A state transition with the socket still identified by its 4-tuple.
#[derive(Clone, Debug)]
struct Trans {
    time_us: u64,
    host: usize,
    key: Key,
    /// Which connection on this 4-tuple (0 = the first born on it): a
    /// 4-tuple is reused by disconnect + reconnect or a reconnect from the
    /// same port, so names are attributed per connection, not per 4-tuple.
    conn: usize,
    from: TcpState,
    to: TcpState,
}

/// The tracepoint's id and format, read once per process.
static TRACEPOINT: OnceLock<(u64, String)> = OnceLock::new();
/// `tcp:tcp_send_reset`'s, if this kernel has it.
static RESET_TRACEPOINT: OnceLock<Option<(u64, String)>> = OnceLock::new();

static RUN_COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct LinuxEngine {
    /// Inside `together { }`: calls that would block do not (connect).
    together: bool,
    /// With a raw peer (`finrst drill`, [`crate::engine::RawPeer`]).
    raw: Option<drill::Raw>,
    hosts: Vec<HostSpec>,
    /// Real addresses (10.A.B.(i+1)).
    real: Vec<Ipv4Addr>,
    procs: Vec<HostProc>,
    netns: Vec<OwnedFd>,
    relay: Relay,
    tracer: Tracer,
    /// `tcp:tcp_send_reset`, when the kernel has it with reasons (6.10+).
    resets: Option<Tracer<ResetLayout>>,
    /// Reset events not yet matched with a captured RST.
    pending_resets: Vec<ResetEvent>,
    /// Indices in `segs` of RSTs still without their event (matched again
    /// at each sync: an event may be read a drain later than its packet).
    unmatched_rsts: Vec<usize>,
    start_ns: u64,
    segs: Vec<Segment>,
    bound: Duration,
    /// The bound was lowered to the run's horizon (`begin`).
    bound_is_horizon: bool,
    max_wait_us: u64,
    /// Per host: every socket name it ever had.
    known: Vec<HashSet<String>>,
    /// Per host: name → the 4-tuple it has now.
    key_of: Vec<HashMap<String, Key>>,
    /// The local port each socket is bound to after a connect() that got
    /// past bind(): a socket disconnected with connect(AF_UNSPEC) keeps it
    /// (inet_autobind is not run again; tcp_disconnect keeps a port the
    /// user bound), so its next connect comes from it, whatever port the
    /// script's runner offers.
    bound_port: Vec<HashMap<String, u16>>,
    /// Per host and 4-tuple: the names given, in order, by the calls that
    /// start a connection on it (listen, connect, accept). The i-th
    /// connection born on the 4-tuple (see `births`) has the i-th name.
    bindings: Vec<HashMap<Key, Vec<String>>>,
    /// Per host and 4-tuple: how many sockets were born on it (a CLOSE →
    /// SYN_SENT, SYN_RECV or LISTEN event).
    births: Vec<HashMap<Key, usize>>,
    /// Kernel socket address → (host, 4-tuple, connection index) of the
    /// connection it carries now.
    conn_of_sk: HashMap<u64, (usize, Key, usize)>,
    /// Per host: listener name → port.
    listen_port: Vec<HashMap<String, u16>>,
    /// Per host: socket name → SO_LINGER seconds when on.
    linger: Vec<HashMap<String, i32>>,
    /// Child sockets whose first event (CLOSE → SYN_RECV, cloned from the
    /// listener) does not carry their 4-tuple yet.
    unaddressed: HashMap<u64, Vec<Event>>,
    trans: Vec<Trans>,
    /// Full sockets that went to CLOSE from a state that can hand over to a
    /// time-wait socket; decided at the next /proc poll.
    maybe_tw: Vec<Trans>,
    /// Per host: time-wait sockets seen at the last poll, with sub-state
    /// and whether a full socket's CLOSE has been matched to it yet, and the
    /// connection (index on the 4-tuple) it carries.
    tw: Vec<HashMap<Key, (u32, bool, usize)>>,
    baseline: Vec<BTreeMap<Counter, i64>>,
    /// When `/proc/<pid>/net/tcp` was last read for time-wait sockets.
    last_tw_poll_ns: u64,
    /// (host, 4-tuple) of sockets whose last recorded state is not CLOSE
    /// but which a /proc read no longer listed: when first seen missing.
    /// See [`LinuxEngine::infer_lost_closes`].
    absent_since: HashMap<(usize, Key), u64>,
    notes: Vec<String>,
}

/// The timer wheel's levels below this one round a timer to a multiple of
/// their granularity of absolute jiffies (`calc_index`, kernel/time/timer.c:
/// level n rounds up to 8^n jiffies). The model's jiffies start at 0, so a
/// run that starts where the kernel's jiffies are a multiple of 8^3 = 64
/// sees every timer shorter than level 3's start (4032 jiffies, 16 s at
/// HZ=250) fire on the same tick on both engines.
const WHEEL_ALIGN_JIFFIES: u64 = 64;

/// The CLOCK_MONOTONIC time (ns) of the next tick at which the kernel's
/// jiffies are a multiple of [`WHEEL_ALIGN_JIFFIES`]: at most 64 ticks
/// (256 ms) away. Ticks fall on multiples of TICK_NSEC
/// (`tick_init_jiffy_update`), so jiffies at tick m are m plus a constant
/// read once from /proc/timer_list; a reading too close to a tick (where
/// `jiffies` may already have moved past `now`) is taken again. Without
/// /proc/timer_list the run starts on the next tick, its wheel phase
/// unknown.
fn wheel_aligned_start(tick: u64) -> u64 {
    for _ in 0..4 {
        let Some((jiffies, now)) = sys::jiffies_now() else {
            break;
        };
        let into = now % tick;
        if into < tick / 20 || into > tick - tick / 20 {
            std::thread::sleep(Duration::from_nanos(tick / 4));
            continue;
        }
        let base = jiffies.wrapping_sub(now / tick);
        let mut m = sys::monotonic_ns().div_ceil(tick);
        while m.wrapping_add(base) % WHEEL_ALIGN_JIFFIES != 0 {
            m += 1;
        }
        return m * tick;
    }
    sys::monotonic_ns().div_ceil(tick) * tick
}

impl LinuxEngine {
    /// Creates the hosts' namespaces, the link and the state tracer.
    pub fn new(hosts: &[HostSpec], opts: &RunOptions) -> Result<LinuxEngine, EngineError> {
        check_privileges("linux engine", "model")?;
        let bound = Duration::from_micros(crate::engine::env_duration_us(
            "FINRST_LINUX_CALL_BOUND",
            DEFAULT_CALL_BOUND_US,
        ));
        let max_wait_us = crate::engine::linux_max_wait_us();
        let pid = std::process::id();
        let n = RUN_COUNTER.fetch_add(1, Ordering::Relaxed);
        let id = (pid.wrapping_mul(97).wrapping_add(n)) % (255 * 256);
        let (a, b) = (1 + (id / 256) as u8, (id % 256) as u8);
        let real: Vec<Ipv4Addr> = (0..hosts.len())
            .map(|i| Ipv4Addr::new(10, a, b, (i + 1) as u8))
            .collect();
        let mut procs = Vec::new();
        let mut netns = Vec::new();
        let mut tuns = Vec::new();
        let mut taps = Vec::new();
        for (i, addr) in real.iter().enumerate() {
            let want_tp = i == 0 && TRACEPOINT.get().is_none();
            let dev = host::Dev {
                mtu: opts
                    .link_mtu
                    .and_then(|m| i32::try_from(m).ok())
                    .unwrap_or(host::TUN_MTU),
                tso: opts.link_tso,
            };
            let h = host::spawn_new(*addr, host::Link::Relay, want_tp, bound, dev)
                .map_err(|e| EngineError(format!("linux engine: host {}: {e}", hosts[i].name)))?;
            if let Some(tp) = h.tracepoint {
                let _ = TRACEPOINT.set(tp);
                let _ = RESET_TRACEPOINT.set(h.reset_tracepoint);
            }
            procs.push(h.proc);
            netns.push(h.netns);
            tuns.push(h.tun);
            taps.push(h.tap.ok_or_else(|| {
                EngineError(format!(
                    "linux engine: host {}: no packet socket on its TUN device",
                    hosts[i].name
                ))
            })?);
        }
        let (id, format) = TRACEPOINT.get().ok_or_else(|| {
            EngineError(
                "linux engine: cannot read the tracepoint sock:inet_sock_set_state from tracefs (CONFIG_TRACEPOINTS?); use --engine model".into(),
            )
        })?;
        let tracer =
            Tracer::open(*id, format).map_err(|e| EngineError(format!("linux engine: {e}")))?;
        let resets = match RESET_TRACEPOINT.get() {
            Some(Some((id, format))) => Some(
                Tracer::<ResetLayout>::open(*id, format)
                    .map_err(|e| EngineError(format!("linux engine: {e}")))?,
            ),
            _ => None,
        };
        // The run's time 0 is a tick: the kernel's jiffies advance at
        // multiples of TICK_NSEC of CLOCK_MONOTONIC (tick_init_jiffy_update
        // aligns the first tick so), and the model's jiffies are its clock
        // divided by 4 ms. Starting on a tick puts both engines' jiffy
        // boundaries at the same script times, so a timer armed at the
        // same script time fires at the same script time on both.
        let tick = crate::model::sock::JIFFY_US * 1000;
        let start_ns = wheel_aligned_start(tick);
        while sys::monotonic_ns() < start_ns {
            std::thread::sleep(Duration::from_nanos(
                start_ns.saturating_sub(sys::monotonic_ns()),
            ));
        }
        let relay = Relay::start(
            tuns,
            taps,
            real.clone(),
            hosts.iter().map(|h| h.addr).collect(),
            hosts.iter().map(|h| h.name.clone()).collect(),
            start_ns,
            opts.keep_payload,
            opts.link_tso,
        )
        .map_err(|e| EngineError(format!("linux engine: {e}")))?;
        let mut baseline = Vec::new();
        for p in &procs {
            let c = states::read_counters(p.pid).map_err(|e| {
                EngineError(format!("linux engine: /proc/{}/net/netstat: {e}", p.pid))
            })?;
            baseline.push(c);
        }
        let nh = hosts.len();
        Ok(LinuxEngine {
            together: false,
            raw: None,
            hosts: hosts.to_vec(),
            real,
            procs,
            netns,
            relay,
            tracer,
            resets,
            pending_resets: Vec::new(),
            unmatched_rsts: Vec::new(),
            start_ns,
            segs: Vec::new(),
            bound,
            bound_is_horizon: false,
            max_wait_us,
            known: vec![HashSet::new(); nh],
            key_of: vec![HashMap::new(); nh],
            bound_port: vec![HashMap::new(); nh],
            bindings: vec![HashMap::new(); nh],
            births: vec![HashMap::new(); nh],
            conn_of_sk: HashMap::new(),
            listen_port: vec![HashMap::new(); nh],
            linger: vec![HashMap::new(); nh],
            unaddressed: HashMap::new(),
            trans: Vec::new(),
            maybe_tw: Vec::new(),
            tw: vec![HashMap::new(); nh],
            baseline,
            last_tw_poll_ns: 0,
            absent_since: HashMap::new(),
            notes: Vec::new(),
        })
    }

    /// The inode numbers of the hosts' network namespaces (for tests that
    /// check nothing is left behind).
    pub fn netns_inodes(&self) -> Vec<u64> {
        use std::os::unix::fs::MetadataExt;
        self.procs
            .iter()
            .filter_map(|p| std::fs::metadata(format!("/proc/{}/ns/net", p.pid)).ok())
            .map(|m| m.ino())
            .collect()
    }

    /// The pids of the hosts' programs.
    pub fn host_pids(&self) -> Vec<i32> {
        self.procs.iter().map(|p| p.pid).collect()
    }

    fn us(&self, ns: u64) -> u64 {
        ns.saturating_sub(self.start_ns) / 1000
    }

    fn host_of_real(&self, a: Ipv4Addr) -> Option<usize> {
        self.real.iter().position(|x| *x == a)
    }

    fn real_of_script(&self, a: Ipv4Addr) -> Option<Ipv4Addr> {
        self.hosts
            .iter()
            .position(|h| h.addr == a)
            .map(|i| self.real[i])
    }

    /// Takes what the relay captured and the tracer recorded, and polls the
    /// time-wait sockets.
    fn sync(&mut self) {
        let first_new = self.segs.len();
        {
            let mut s = self.relay.shared.lock().unwrap();
            self.segs.append(&mut s.captured);
        }
        self.attach_reset_reasons(first_new);
        for e in self.tracer.drain() {
            self.on_event(e);
        }
        // Reading /proc/<pid>/net/tcp walks the whole (shared) established
        // hash table, about a millisecond of kernel time: read it only when
        // a full socket may just have handed over to a time-wait socket, or
        // every POLL_EVERY while time-wait sockets live.
        let now = sys::monotonic_ns();
        let tw_live = self.tw.iter().any(|m| !m.is_empty());
        if !self.maybe_tw.is_empty()
            || (tw_live && now >= self.last_tw_poll_ns + POLL_EVERY.as_nanos() as u64)
        {
            self.last_tw_poll_ns = now;
            self.poll_tw();
        }
    }

    /// Gives each RST captured since `from` the reason the kernel named in
    /// `tcp:tcp_send_reset` for it: the tracepoint fires in the sending
    /// path (`tcp_v4_send_reset`, `tcp_send_active_reset`) before the packet
    /// reaches the TUN device, so its event is in the ring by the time the
    /// relay has the packet. Events are matched by the RST's 4-tuple, oldest
    /// first.
    fn attach_reset_reasons(&mut self, from: usize) {
        let Some(tr) = self.resets.as_mut() else {
            return;
        };
        let real = &self.real;
        let ours = |a: Ipv4Addr| real.contains(&a);
        // A socket that tcp_done() has closed may already have its peer
        // cleared (inet_daddr 0, inet_dport 0) when it answers with RST:
        // such an event carries only our side.
        self.pending_resets.extend(
            tr.drain()
                .into_iter()
                .filter(|e| ours(e.saddr) && (ours(e.daddr) || e.daddr.is_unspecified())),
        );
        self.unmatched_rsts
            .extend((from..self.segs.len()).filter(|&i| self.segs[i].flags.rst()));
        let mut still = Vec::new();
        for i in std::mem::take(&mut self.unmatched_rsts) {
            let s = &self.segs[i];
            if s.rst_reason.is_some() {
                continue;
            }
            still.push(i);
            let (Some(sa), Some(da)) = (
                self.real_of_script(s.src_addr),
                self.real_of_script(s.dst_addr),
            ) else {
                continue;
            };
            let (sport, dport) = (s.sport, s.dport);
            let exact = |e: &ResetEvent| {
                e.saddr == sa && e.sport == sport && e.daddr == da && e.dport == dport
            };
            let ours_only = |e: &ResetEvent| {
                e.saddr == sa && e.sport == sport && e.daddr.is_unspecified() && e.dport == 0
            };
            let k = self
                .pending_resets
                .iter()
                .position(exact)
                .or_else(|| self.pending_resets.iter().position(ours_only));
            if let Some(k) = k {
                let e = self.pending_resets.remove(k);
                // A name this table lacks (a newer kernel) leaves the reason
                // unknown rather than guessed.
                self.segs[i].rst_reason = e.reason;
                still.pop();
            }
        }
        self.unmatched_rsts = still;
    }

    fn on_event(&mut self, mut e: Event) {
        let Some(h) = self.host_of_real(e.saddr) else {
            return; // another run's or the machine's own socket
        };
        // inet_csk_clone_lock() copies the listener, LISTEN state included,
        // then sets SYN_RECV: the tracepoint says LISTEN → SYN_RECV for a
        // socket that was never listening. It is born in SYN_RECV.
        if e.old == 10 && e.new == 3 {
            e.old = 7;
        }
        if e.dport != 0 || !e.daddr.is_unspecified() {
            let key = (e.sport, e.daddr, e.dport);
            if let Some(early) = self.unaddressed.remove(&e.skaddr) {
                for x in early {
                    self.push_trans(h, key, &x);
                }
            }
            self.push_trans(h, key, &e);
        } else if e.new == 3 && e.old == 7 {
            // inet_csk_clone_lock sets SYN_RECV before the child gets the
            // peer's address: remember it until the next event of this sk.
            self.unaddressed.entry(e.skaddr).or_default().push(e);
        } else {
            self.push_trans(h, (e.sport, Ipv4Addr::UNSPECIFIED, 0), &e);
        }
    }

    fn push_trans(&mut self, host: usize, key: Key, e: &Event) {
        // A CLOSE → X event starts a connection on the 4-tuple: a new
        // socket (connect, accept's child, listen) or the same socket
        // connecting again after connect(AF_UNSPEC). Later events of the
        // same kernel socket belong to that connection.
        let conn = match self.conn_of_sk.get(&e.skaddr) {
            Some(&(h, k, c)) if e.old != 7 && h == host && k == key => c,
            _ => {
                let n = self.births[host].entry(key).or_insert(0);
                let c = *n;
                *n += 1;
                self.conn_of_sk.insert(e.skaddr, (host, key, c));
                c
            }
        };
        let t = Trans {
            time_us: self.us(e.time_ns),
            host,
            key,
            conn,
            from: state_name(e.old),
            to: state_name(e.new),
        };
        // tcp_time_wait() → tcp_done(): the full socket goes to CLOSE while a
        // time-wait socket takes the connection over.
        if e.new == 7 && matches!(e.old, 4 | 5 | 11) {
            self.maybe_tw.push(t);
        } else {
            self.trans.push(t);
        }
    }

    /// The connection index a time-wait socket on `key` belongs to: the
    /// newest one born there (a new connection on the 4-tuple ends it).
    fn newest_conn(&self, host: usize, key: &Key) -> usize {
        self.births[host]
            .get(key)
            .map(|n| n.saturating_sub(1))
            .unwrap_or(0)
    }

    /// Records that a call gives `name` to the next connection on `key`.
    fn bind_name(&mut self, h: usize, key: Key, name: &str) {
        self.key_of[h].insert(name.to_string(), key);
        self.bindings[h]
            .entry(key)
            .or_default()
            .push(name.to_string());
    }

    /// Undoes [`Self::bind_name`] for a call that failed before a
    /// connection was born (bind() refused the port, the socket was
    /// connected already).
    fn unbind_name(&mut self, h: usize, key: Key, name: &str) {
        if let Some(v) = self.bindings[h].get_mut(&key)
            && v.last().is_some_and(|n| n == name)
        {
            v.pop();
        }
    }

    /// The script's name of connection `conn` on a host's 4-tuple. A
    /// connection no call named (a child the listener made after the
    /// accepted one on that 4-tuple was gone, and nobody accepted) is
    /// `unaccepted:PORT`, as on the model: names go by socket, not by
    /// 4-tuple.
    fn conn_name(&self, h: usize, key: &Key, conn: usize) -> String {
        match self.bindings[h].get(key).and_then(|v| v.get(conn)) {
            Some(n) => n.clone(),
            None => format!("unaccepted:{}", key.2),
        }
    }

    fn poll_tw(&mut self) {
        let now = self.us(sys::monotonic_ns());
        for h in 0..self.procs.len() {
            let Ok(entries) = states::read_proc_tcp(self.procs[h].pid) else {
                continue;
            };
            let now_tw: HashMap<Key, u32> = entries
                .iter()
                .filter(|e| e.is_tw())
                .map(|e| ((e.lport, e.raddr, e.rport), e.state))
                .collect();
            // Full sockets that went to CLOSE: handed over or really closed?
            let (mine, rest): (Vec<Trans>, Vec<Trans>) = std::mem::take(&mut self.maybe_tw)
                .into_iter()
                .partition(|t| t.host == h);
            self.maybe_tw = rest;
            // tcp_time_wait() makes the time-wait socket visible
            // (inet_twsk_hashdance_schedule) before tcp_done() fires the
            // CLOSE event, so a poll may see it first: it is claimed by the
            // first CLOSE of its 4-tuple that follows.
            for mut t in mine {
                let claimed = self.tw[h].get(&t.key).is_some_and(|x| x.1);
                match now_tw.get(&t.key) {
                    Some(&sub) if !claimed => {
                        self.tw[h].insert(t.key, (sub, true, t.conn));
                        let to = state_name(sub);
                        if t.from != to {
                            t.to = to;
                            self.trans.push(t);
                        }
                    }
                    _ => self.trans.push(t),
                }
            }
            // Sub-state changes and deaths of time-wait sockets.
            let known: Vec<(Key, u32, bool, usize)> = self.tw[h]
                .iter()
                .map(|(k, v)| (*k, v.0, v.1, v.2))
                .collect();
            for (key, sub, claimed, conn) in known {
                match now_tw.get(&key) {
                    Some(&s2) if s2 != sub => {
                        self.trans.push(Trans {
                            time_us: now,
                            host: h,
                            key,
                            conn,
                            from: state_name(sub),
                            to: state_name(s2),
                        });
                        self.tw[h].insert(key, (s2, claimed, conn));
                    }
                    Some(_) => {}
                    None => {
                        self.trans.push(Trans {
                            time_us: now,
                            host: h,
                            key,
                            conn,
                            from: state_name(sub),
                            to: TcpState::Close,
                        });
                        self.tw[h].remove(&key);
                    }
                }
            }
            for (k, s) in now_tw {
                let conn = self.newest_conn(h, &k);
                self.tw[h].entry(k).or_insert((s, false, conn));
            }
        }
    }

    /// The script's name of the newest connection on a host's 4-tuple (the
    /// one /proc lists there now).
    fn name_for(&self, h: usize, key: &Key) -> String {
        self.conn_name(h, key, self.newest_conn(h, key))
    }

    fn sleep_syncing(&mut self, until_ns: u64) {
        loop {
            self.sync();
            let now = sys::monotonic_ns();
            if now >= until_ns {
                break;
            }
            std::thread::sleep(Duration::from_nanos(until_ns - now).min(POLL_EVERY));
        }
    }

    /// Turns a script call into a command for the host's program.
    fn command(
        &mut self,
        h: usize,
        sock: &str,
        call: &Call,
        ctx: &CallCtx,
    ) -> Result<Cmd, CallOutcome> {
        let name = sock.to_string();
        Ok(match call {
            Call::Socket => {
                // A new socket under an old name is not bound yet.
                self.bound_port[h].remove(&name);
                Cmd::Socket { name }
            }
            Call::Listen { port, backlog } => {
                let key = (*port, Ipv4Addr::UNSPECIFIED, 0);
                self.bind_name(h, key, &name);
                self.listen_port[h].insert(name.clone(), *port);
                Cmd::Listen {
                    name,
                    addr: self.real[h].octets(),
                    port: *port,
                    backlog: *backlog,
                }
            }
            Call::Connect { port, nonblock, .. } => {
                let (Some(lport), Some(peer)) = (
                    self.bound_port[h].get(&name).copied().or(ctx.local_port),
                    ctx.peer_addr.and_then(|a| self.real_of_script(a)),
                ) else {
                    return Err(CallOutcome::err(Errno::EINVAL));
                };
                let key = (lport, peer, *port);
                self.bind_name(h, key, &name);
                Cmd::Connect {
                    name,
                    laddr: self.real[h].octets(),
                    lport,
                    raddr: peer.octets(),
                    rport: *port,
                    nonblock: *nonblock,
                }
            }
            Call::SetSockOpt(SockOpt::Linger { on, secs }) => {
                if *on {
                    self.linger[h].insert(name.clone(), (*secs).max(0));
                } else {
                    self.linger[h].remove(&name);
                }
                Cmd::SetSockOpt {
                    name,
                    opt: SockOpt::Linger {
                        on: *on,
                        secs: *secs,
                    },
                }
            }
            Call::Exit => unreachable!("exit is handled before commands"),
            _ => Cmd::for_call(name, call, ctx.new_name.as_deref())
                .expect("every other call is a plain command"),
        })
    }

    /// How long to wait for the answer to a call on `sock`.
    fn answer_timeout(&self, h: usize, sock: &str) -> Duration {
        let linger = self.linger[h].get(sock).copied().unwrap_or(0).max(0) as u64;
        self.bound.max(Duration::from_secs(linger)) + Duration::from_secs(10)
    }

    /// `exit`: kill -9 the host's program, then give the host a fresh, empty
    /// program in the same namespace (for later steps and /proc reads).
    fn exit_host(&mut self, h: usize) -> CallOutcome {
        self.procs[h].kill();
        match host::spawn_join(&self.netns[h], self.bound) {
            Ok(p) => {
                self.procs[h] = p;
                CallOutcome::ok(0)
            }
            Err(e) => {
                self.engine_failure(format!("respawn {} after exit: {e}", self.hosts[h].name))
            }
        }
    }

    fn engine_failure(&mut self, why: String) -> CallOutcome {
        let note = format!("ENGINE FAILURE (the trace is incomplete): {why}");
        self.notes.push(note.clone());
        CallOutcome {
            ret: -1,
            errno: Some(Errno::EINVAL),
            note: Some(note),
            unsupported: true,
            ..Default::default()
        }
    }

    /// Turns the program's answer into what the runner records.
    fn outcome(
        &mut self,
        h: usize,
        sock: &str,
        call: &Call,
        ctx: &CallCtx,
        r: Reply,
    ) -> CallOutcome {
        let mut out = CallOutcome {
            ret: r.ret,
            errno: r.errno,
            ..Default::default()
        };
        let bytes = r.data.as_deref().map(host::unhex);
        if let (Call::GetSockOpt(o), Some(d)) = (call, &bytes) {
            out.info = Some(Box::new(match o {
                GetOpt::MemInfo => info::decode_meminfo(d),
                GetOpt::TcpInfo => info::decode_tcpinfo(d),
            }));
        } else {
            out.data = bytes.map(|b| Box::new(crate::payload::Payload::from_vec(b)));
        }
        if let (Call::Accept, Some((a, port))) = (call, r.peer) {
            let new = ctx.new_name.clone().unwrap_or_else(|| "conn".into());
            // `sock` is the listener the accept was made on.
            let lport = self.listen_port[h].get(sock).copied().unwrap_or(0);
            let key = (lport, Ipv4Addr::from(a), port);
            self.bind_name(h, key, &new);
            self.known[h].insert(new);
        }
        if let (Call::Connect { .. }, Some(key)) = (call, self.key_of[h].get(sock).copied())
            && !matches!(out.errno, Some(Errno::EADDRINUSE | Errno::EADDRNOTAVAIL))
        {
            self.bound_port[h].insert(sock.to_string(), key.0);
        }
        // A listen() or connect() refused before a socket was born on the
        // 4-tuple names no connection.
        if matches!(call, Call::Listen { .. } | Call::Connect { .. })
            && matches!(
                out.errno,
                Some(
                    Errno::EADDRINUSE
                        | Errno::EADDRNOTAVAIL
                        | Errno::EINVAL
                        | Errno::EISCONN
                        | Errno::EALREADY
                )
            )
            && let Some(key) = self.key_of[h].get(sock).copied()
        {
            self.unbind_name(h, key, sock);
        }
        if r.elapsed_us >= 100_000 {
            let mut note = format!("blocked {:.2} s", r.elapsed_us as f64 / 1e6);
            if r.bounded
                || (r.elapsed_us + 20_000 >= self.bound.as_micros() as u64
                    && !matches!(call, Call::Close))
            {
                if self.bound_is_horizon {
                    note.push_str(&format!(
                        "; cut at {:.1} s, the run's horizon (the bound on blocking calls)",
                        self.bound.as_secs_f64()
                    ));
                } else {
                    note.push_str(&format!(
                        "; cut at the linux engine's bound of {:.1} s (FINRST_LINUX_CALL_BOUND)",
                        self.bound.as_secs_f64()
                    ));
                }
            }
            out.note = Some(note);
        }
        out
    }

    fn start_call(
        &mut self,
        h: usize,
        sock: &str,
        call: &Call,
        ctx: &CallCtx,
    ) -> Result<(), CallOutcome> {
        if matches!(call, Call::Socket) {
            self.known[h].insert(sock.to_string());
        }
        let cmd = self.command(h, sock, call, ctx)?;
        if let Err(e) = self.procs[h].send(&cmd) {
            return Err(self.engine_failure(e));
        }
        Ok(())
    }

    fn end_call(
        &mut self,
        h: usize,
        sock: &str,
        call: &Call,
        ctx: &CallCtx,
        timeout: Duration,
    ) -> CallOutcome {
        match self.procs[h].recv(timeout) {
            Ok(r) => self.outcome(h, sock, call, ctx, r),
            Err(e) => {
                self.engine_failure(format!("{} {}: {e}", self.hosts[h].name, call.display()))
            }
        }
    }
}

/// One line saying what is missing, or Ok: what a real-kernel engine
/// needs, checked before anything is created. `engine` names the engine in
/// the message ("linux engine") and `instead` the engine to use without
/// the privileges.
pub(crate) fn check_privileges(engine: &str, instead: &str) -> Result<(), EngineError> {
    let caps = sys::effective_caps();
    let mut missing = Vec::new();
    if caps & (1 << sys::CAP_SYS_ADMIN) == 0 {
        missing.push("CAP_SYS_ADMIN (network namespaces, the state tracepoint)");
    }
    if caps & (1 << sys::CAP_NET_ADMIN) == 0 {
        missing.push("CAP_NET_ADMIN (the TUN link, addresses, sysctls)");
    }
    if !missing.is_empty() {
        return Err(EngineError(format!(
            "{engine}: missing {}: run as root, or use --engine {instead}",
            missing.join(" and ")
        )));
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Err(EngineError(format!(
            "{engine}: /dev/net/tun does not exist (CONFIG_TUN, or a container without the device); use --engine {instead}"
        )));
    }
    Ok(())
}

impl Engine for LinuxEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Linux
    }

    /// A horizon shorter than the bound on blocking calls becomes the
    /// bound: a blocking call cannot outlast the run (the model cuts it at
    /// the horizon too). Calls made later in the run may still end past
    /// the horizon by up to their start time; `finish` cuts the run there.
    fn begin(&mut self, horizon_us: u64) {
        if horizon_us == 0 || horizon_us >= self.bound.as_micros() as u64 {
            return;
        }
        self.bound = Duration::from_micros(horizon_us);
        self.bound_is_horizon = true;
        let cmd = host::Cmd::SetBound { us: horizon_us };
        for h in 0..self.procs.len() {
            let ok = self.procs[h].send(&cmd).is_ok()
                && self.procs[h].recv(Duration::from_secs(10)).is_ok();
            if !ok {
                self.notes.push(format!(
                    "ENGINE FAILURE: could not lower {}'s bound on blocking calls to the horizon",
                    self.hosts[h].name
                ));
            }
        }
    }

    fn now_us(&self) -> u64 {
        self.us(sys::monotonic_ns())
    }

    fn sysctl(&mut self, host: usize, key: Sysctl, value: &str) -> Result<(), EngineError> {
        let cmd = Cmd::Sysctl {
            key: key.name().into(),
            value: value.into(),
        };
        let p = &mut self.procs[host];
        p.send(&cmd).map_err(EngineError)?;
        let r = p.recv(Duration::from_secs(10)).map_err(EngineError)?;
        match r.errno {
            None => Ok(()),
            Some(e) => Err(EngineError(format!(
                "sysctl {key} = {value} failed in {}'s namespace: {e}",
                self.hosts[host].name
            ))),
        }
    }

    fn call(&mut self, host: usize, sock: &str, call: &Call, ctx: &CallCtx) -> CallOutcome {
        if matches!(call, Call::Exit) {
            let out = self.exit_host(host);
            self.sync();
            return out;
        }
        if let Err(o) = self.start_call(host, sock, call, ctx) {
            return o;
        }
        let t = self.answer_timeout(host, sock);
        let out = self.end_call(host, sock, call, ctx, t);
        self.sync();
        out
    }

    fn call_together(&mut self, calls: &[(usize, String, Call, CallCtx)]) -> Vec<CallOutcome> {
        // Nothing is delivered while the calls run: the relay queues every
        // segment they cause. The calls are made one after the other in
        // script order (so the segments they cause are queued in a
        // reproducible order), each until it returns or its program is
        // seen asleep inside it (at most TOGETHER_HOLD); a blocked one is
        // waiting for the network, which resumes once every call has been
        // made, as on the model where every call starts at one instant.
        self.relay.set_paused(true);
        self.together = true;
        let mut outs: Vec<Option<CallOutcome>> = vec![None; calls.len()];
        let mut waiting: Vec<usize> = Vec::new();
        for (i, (h, s, c, x)) in calls.iter().enumerate() {
            if matches!(c, Call::Exit) {
                outs[i] = Some(self.exit_host(*h));
                continue;
            }
            if let Err(o) = self.start_call(*h, s, c, x) {
                outs[i] = Some(o);
                continue;
            }
            // Answers of one host come back in order: wait for this one only
            // when no earlier call of the same host is still pending.
            if waiting.iter().any(|&j| calls[j].0 == *h) {
                waiting.push(i);
                continue;
            }
            let t0 = std::time::Instant::now();
            while !self.procs[*h].answer_ready()
                && !self.procs[*h].blocked_in_call()
                && t0.elapsed() < TOGETHER_HOLD
            {
                std::thread::sleep(Duration::from_micros(200));
            }
            if self.procs[*h].answer_ready() {
                let t = self.answer_timeout(*h, s);
                outs[i] = Some(self.end_call(*h, s, c, x, t));
            } else {
                waiting.push(i);
            }
        }
        self.together = false;
        self.relay.set_paused(false);
        for i in waiting {
            let (h, s, c, x) = &calls[i];
            let t = self.answer_timeout(*h, s);
            outs[i] = Some(self.end_call(*h, s, c, x, t));
        }
        self.sync();
        outs.into_iter().map(|o| o.unwrap_or_default()).collect()
    }

    fn fault(&mut self, host: usize, fault: &Fault) -> Result<(), EngineError> {
        self.relay.fault(host, fault);
        Ok(())
    }

    fn release(&mut self, host: usize) -> Result<(), EngineError> {
        self.relay.release(host);
        Ok(())
    }

    fn settle(&mut self) {
        let start = sys::monotonic_ns();
        let cap = start + 10_000_000_000;
        loop {
            self.sync();
            let now = sys::monotonic_ns();
            let last = self.relay.last_activity_ns().max(start);
            if now.saturating_sub(last) >= SETTLE_QUIET_US * 1000 && self.relay.in_flight() == 0 {
                break;
            }
            if now >= cap {
                self.notes.push(format!(
                    "settle cut after 10 s of continuous traffic at {:.3} s",
                    self.us(now) as f64 / 1e6
                ));
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn wait(&mut self, us: u64) {
        let until = sys::monotonic_ns() + us * 1000;
        self.sleep_syncing(until);
    }

    fn state(&mut self, host: usize, sock: &str) -> Option<TcpState> {
        self.sync();
        if !self.known[host].contains(sock) && !self.key_of[host].contains_key(sock) {
            return None;
        }
        let Some(key) = self.key_of[host].get(sock).copied() else {
            return Some(TcpState::Close);
        };
        if let Some((sub, _, _)) = self.tw[host].get(&key) {
            return Some(state_name(*sub));
        }
        Some(
            self.trans
                .iter()
                .rev()
                .find(|t| t.host == host && t.key == key)
                .map_or(TcpState::Close, |t| t.to),
        )
    }

    fn counters(&mut self, host: usize) -> BTreeMap<Counter, i64> {
        match states::read_counters(self.procs[host].pid) {
            Ok(now) => states::counter_changes(&now, &self.baseline[host]),
            Err(_) => BTreeMap::new(),
        }
    }

    fn segments(&self) -> &[Segment] {
        &self.segs
    }
    fn forget_segments(&mut self) -> bool {
        // The capture only appends to `segs`; nothing reads them back but
        // the reason matching, which gives up on what is forgotten.
        self.segs.clear();
        self.unmatched_rsts.clear();
        true
    }

    fn finish(&mut self, horizon_us: u64) -> Finish {
        let now_us = self.now_us();
        let cap_us = now_us + self.max_wait_us;
        let end_us = horizon_us.min(cap_us).max(now_us);
        let mut cut = false;
        // The end must be seen twice in a row: one read of /proc/PID/net/tcp
        // that fails or races a hand-over to a time-wait socket must not
        // end the run early (a loaded machine showed it).
        let mut calm = 0;
        loop {
            self.sync();
            let now = sys::monotonic_ns();
            let quiet = now.saturating_sub(self.relay.last_activity_ns()) >= SETTLE_QUIET_US * 1000
                && self.relay.in_flight() == 0;
            let busy = match self.entries_checked() {
                Some(es) => {
                    self.note_absent(&es);
                    es.iter().any(|(_, e)| !idle(e))
                }
                None => true,
            };
            if quiet && !busy {
                calm += 1;
                if calm >= 2 {
                    break;
                }
            } else {
                calm = 0;
            }
            if self.us(now) >= end_us {
                cut = end_us < horizon_us;
                break;
            }
            let until = (now + 2 * POLL_EVERY.as_nanos() as u64).min(self.start_ns + end_us * 1000);
            std::thread::sleep(Duration::from_nanos(
                until.saturating_sub(now).max(1_000_000),
            ));
        }
        // /proc first, then the events: tcp_set_state() fires the
        // tracepoint before the socket leaves the hash table, so a socket
        // missing from this read has its CLOSE event in the rings already.
        let entries = self.entries();
        self.note_absent(&entries);
        self.sync();
        // Anything still undecided about time-wait hand-overs is a close.
        let rest = std::mem::take(&mut self.maybe_tw);
        self.trans.extend(rest);
        self.infer_lost_closes(&entries);
        if cut {
            let what: Vec<String> = entries
                .iter()
                .filter(|(_, e)| !idle(e))
                .map(|(h, e)| {
                    format!(
                        "{}.{} {}",
                        self.hosts[*h].name,
                        self.name_for(*h, &(e.lport, e.raddr, e.rport)),
                        state_name(e.state)
                    )
                })
                .collect();
            self.notes.push(format!(
                "cut at {:.1} s of the {:.1} s horizon: the real kernel's timers run in real time and the linux engine waits at most {:.0} s after the last step (FINRST_LINUX_MAX_WAIT); still pending: {}",
                self.now_us() as f64 / 1e6,
                horizon_us as f64 / 1e6,
                self.max_wait_us as f64 / 1e6,
                what.join(", ")
            ));
        }
        let open_at_end = entries
            .iter()
            .filter(|(_, e)| e.state != 10)
            .map(|(h, e)| {
                let key = (e.lport, e.raddr, e.rport);
                let remote = match self.host_of_real(e.raddr) {
                    Some(p) => format!("{}:{}", self.hosts[p].name, e.rport),
                    None => format!("{}:{}", e.raddr, e.rport),
                };
                OpenConn {
                    host: self.hosts[*h].name.clone(),
                    sock: self.name_for(*h, &key),
                    local_port: e.lport,
                    remote,
                    state: state_name(e.state),
                    detail: detail(e),
                }
            })
            .collect();
        let mut trans = self.trans.clone();
        trans.sort_by_key(|t| t.time_us);
        let states = trans
            .iter()
            .map(|t| StateChange {
                time_us: t.time_us,
                host: self.hosts[t.host].name.clone(),
                sock: self.conn_name(t.host, &t.key, t.conn),
                from: t.from,
                to: t.to,
            })
            .collect();
        let mut notes = std::mem::take(&mut self.notes);
        {
            let s = self.relay.shared.lock().unwrap();
            notes.extend(
                s.undecodable
                    .iter()
                    .map(|u| format!("undecodable packet: {u}")),
            );
            notes.extend(s.write_errors.iter().map(|u| format!("relay: {u}")));
        }
        if self.tracer.lost > 0 {
            notes.push(format!(
                "ENGINE FAILURE: {} state events lost by the kernel's perf buffer: states are incomplete",
                self.tracer.lost
            ));
        }
        notes.push(format!(
            "linux engine: kernel {}, real time, one network namespace per host",
            kernel_release()
        ));
        Finish {
            states,
            open_at_end,
            notes,
            end_us: self.now_us(),
        }
    }

    fn raw_peer(&mut self, peer: usize) -> Result<&mut dyn crate::engine::RawPeer, EngineError> {
        self.make_raw(peer);
        Ok(self)
    }
}

impl LinuxEngine {
    /// Records when sockets whose last recorded state is open were first
    /// missing from a /proc read.
    fn note_absent(&mut self, es: &[(usize, TcpEntry)]) {
        let now = self.us(sys::monotonic_ns());
        let listed: HashSet<(usize, Key)> = es
            .iter()
            .map(|(h, e)| (*h, (e.lport, e.raddr, e.rport)))
            .collect();
        for (h, key) in self.open_keys() {
            if listed.contains(&(h, key)) {
                self.absent_since.remove(&(h, key));
            } else {
                self.absent_since.entry((h, key)).or_insert(now);
            }
        }
    }

    /// (host, 4-tuple) of every socket whose last transition is not CLOSE.
    fn open_keys(&self) -> Vec<(usize, Key)> {
        self.last_states(true)
            .into_iter()
            .filter(|(_, to)| *to != TcpState::Close)
            .map(|((h, k, _), _)| (h, k))
            .collect()
    }

    /// The last recorded state of every connection: (host, 4-tuple,
    /// connection index) → state.
    fn last_states(&self, with_maybe_tw: bool) -> HashMap<(usize, Key, usize), TcpState> {
        let mut last = HashMap::new();
        let extra: &[Trans] = if with_maybe_tw { &self.maybe_tw } else { &[] };
        let mut all: Vec<&Trans> = self.trans.iter().chain(extra).collect();
        all.sort_by_key(|t| t.time_us);
        for t in all {
            last.insert((t.host, t.key, t.conn), t.to);
        }
        last
    }

    /// A socket that has left /proc went to CLOSE (only tcp_set_state(sk,
    /// TCP_CLOSE) unhashes a TCP socket), and so did an earlier connection
    /// on a 4-tuple a newer one now uses. On this machine's kernel the perf
    /// ring of a CPU sometimes misses a `sock:inet_sock_set_state` event
    /// raised in softirq while that CPU idles (tracefs shows the event; the
    /// ring of `perf_event_open(pid -1, cpu N)` does not, and
    /// PERF_RECORD_LOST says nothing). Such a CLOSE is added, timed at the
    /// first /proc read that missed the socket (up to one poll late), and a
    /// note says so: the states column stays right, its time is approximate.
    fn infer_lost_closes(&mut self, final_entries: &[(usize, TcpEntry)]) {
        let listed: HashSet<(usize, Key)> = final_entries
            .iter()
            .map(|(h, e)| (*h, (e.lport, e.raddr, e.rport)))
            .collect();
        let mut inferred: Vec<Trans> = self
            .last_states(false)
            .into_iter()
            .filter(|((h, k, c), to)| {
                *to != TcpState::Close
                    && (!listed.contains(&(*h, *k)) || *c < self.newest_conn(*h, k))
            })
            .map(|((host, key, conn), from)| Trans {
                time_us: self
                    .absent_since
                    .get(&(host, key))
                    .copied()
                    .unwrap_or_else(|| self.now_us()),
                host,
                key,
                conn,
                from,
                to: TcpState::Close,
            })
            .collect();
        inferred.sort_by_key(|t| (t.time_us, t.host, t.key, t.conn));
        for t in &inferred {
            self.notes.push(format!(
                "state event missed by the perf ring: {}.{} {} -> CLOSE inferred from /proc (the socket left the hash table), timed at {:.6} s, the first read that missed it",
                self.hosts[t.host].name,
                self.conn_name(t.host, &t.key, t.conn),
                t.from,
                t.time_us as f64 / 1e6
            ));
        }
        self.trans.extend(inferred);
    }

    /// Every TCP socket of every host namespace now.
    /// Like [`Self::entries`], but `None` if any host's table could not be
    /// read.
    fn entries_checked(&self) -> Option<Vec<(usize, TcpEntry)>> {
        let mut v = Vec::new();
        for (h, p) in self.procs.iter().enumerate() {
            let es = states::read_proc_tcp(p.pid).ok()?;
            v.extend(es.into_iter().map(|e| (h, e)));
        }
        Some(v)
    }

    fn entries(&self) -> Vec<(usize, TcpEntry)> {
        let mut v = Vec::new();
        for (h, p) in self.procs.iter().enumerate() {
            if let Ok(es) = states::read_proc_tcp(p.pid) {
                v.extend(es.into_iter().map(|e| (h, e)));
            }
        }
        v
    }
}

/// A socket that nothing will change any more: a listener, or a connection
/// with no timer armed and nothing unsent (an idle ESTABLISHED, a CLOSE_WAIT
/// nobody closes, a FIN_WAIT2 whose program keeps it open).
fn idle(e: &TcpEntry) -> bool {
    e.state == 10 || (e.timer == 0 && e.tx_queue == 0)
}

fn detail(e: &TcpEntry) -> String {
    let mut d = Vec::new();
    // rx_queue is rcv_nxt - copied_seq (tcp4_seq_show), which counts a
    // received FIN's sequence number too.
    let fin_in = matches!(e.state, 6 | 8 | 9 | 11) as u32;
    let unread = e.rx_queue.saturating_sub(fin_in);
    if unread > 0 && !e.is_tw() {
        d.push(format!("unread {unread} bytes"));
    }
    if e.tx_queue > 0 && !e.is_tw() {
        d.push(format!("{} bytes not acknowledged", e.tx_queue));
    }
    match e.timer {
        1 => d.push(format!("retransmitting (retries {})", e.retransmits)),
        2 => d.push("FIN_WAIT2/keepalive timer".into()),
        3 => d.push(format!(
            "time-wait socket, {:.1} s left",
            e.when as f64 / 100.0
        )),
        4 => d.push(format!("probing a zero window (probes {})", e.retransmits)),
        _ => {}
    }
    if d.is_empty() {
        d.push("idle".into());
    }
    d.join(", ")
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}
