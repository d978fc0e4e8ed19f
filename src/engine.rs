//! What every engine (model, smoltcp, linux) offers to the script runner.
//!
//! The runner (behind [`crate::run`]) walks a script's steps, resolves socket
//! names and checks expectations; an engine only performs calls, moves time
//! and reports what happened. All engines therefore produce the same kind of
//! [`crate::trace::Trace`].

use crate::script::{Call, Fault};
use crate::segment::Segment;
use crate::vocab::{Counter, Errno, SockInfo, Sysctl, TcpState};
pub use crate::vocab::{EngineKind, Policy};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// Between two steps the network settles: it runs until nothing has
/// happened for this long. 50 ms lets a delayed ACK (40 ms minimum,
/// `TCP_DELACK_MIN`) go out but not a retransmission (200 ms minimum RTO).
pub const SETTLE_QUIET_US: u64 = 50_000;

/// The horizon when neither the script nor the command line sets one.
pub const DEFAULT_HORIZON_US: u64 = 600_000_000;

/// How long the linux engine waits, after the last step, for timers still
/// pending before it cuts the run (the model runs to the horizon in no
/// time; real time is bounded): 70 s, or `FINRST_LINUX_MAX_WAIT`.
pub const LINUX_MAX_WAIT_US: u64 = 70_000_000;

/// [`LINUX_MAX_WAIT_US`], or `FINRST_LINUX_MAX_WAIT` if set (`120s`, or
/// seconds): the linux engine cuts there, and `compare` estimates with it.
pub fn linux_max_wait_us() -> u64 {
    env_duration_us("FINRST_LINUX_MAX_WAIT", LINUX_MAX_WAIT_US)
}

/// A duration from the environment (`70s`, `500ms`, `2m`, or bare
/// seconds), else `default`.
pub fn env_duration_us(var: &str, default: u64) -> u64 {
    match std::env::var(var) {
        Ok(v) => crate::script::parse_duration(&v)
            .or_else(|| v.trim().parse::<u64>().ok().map(|s| s * 1_000_000))
            .unwrap_or(default),
        Err(_) => default,
    }
}

/// The first ephemeral port the runner hands out for `connect` without
/// `from PORT`; each further connect takes the next one.
pub const FIRST_LOCAL_PORT: u16 = 40000;

/// A host of the script and its address (host `i` is 10.0.0.(i+1)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostSpec {
    pub name: String,
    pub addr: Ipv4Addr,
}

impl HostSpec {
    pub fn for_hosts(names: &[String]) -> Vec<HostSpec> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| HostSpec {
                name: n.clone(),
                addr: Ipv4Addr::new(10, 0, 0, (i + 1) as u8),
            })
            .collect()
    }
}

/// Options every engine receives.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub seed: u64,
    pub policy: Policy,
    /// Keep payload bytes in recorded segments (off only for benchmarks).
    pub keep_payload: bool,
    /// `--engine smoltcp-tap`: the host that runs on smoltcp (the other
    /// runs on the kernel); `None` means the first host.
    pub tap_host: Option<String>,
    /// When each step begins (µs of the engine's clock, one entry per step
    /// run, then one for the end), taken from another engine's run
    /// ([`crate::trace::Trace::step_times_us`]). With a schedule the runner
    /// does not settle or wait by this engine's own clock: it lets time
    /// pass until the next step is due. `compare`, `conform` and `fuzz`
    /// give the real kernel the model's schedule, so that both engines make
    /// each call at the same moment and a timer that falls a few
    /// milliseconds after a call does so on both (the kernel's own settle
    /// runs late by its call overhead, tens of milliseconds over a script).
    pub schedule: Option<std::sync::Arc<[u64]>>,
    /// `compare --own-clock`: a real-time engine compared with a
    /// virtual-time one settles by its own clock instead of following the
    /// virtual engine's schedule.
    pub own_clock: bool,
    /// Stop the run at this time (µs) at the latest, whatever the script's
    /// `horizon` line says (`--horizon`).
    pub horizon_us: Option<u64>,
    /// Keep the run's step times ([`crate::trace::Trace::step_times_us`]),
    /// for a caller that will give them to another run as its schedule.
    /// Off by default: 8 bytes a step, over a long `repeat`, is memory
    /// without bound.
    pub keep_step_times: bool,
    /// The MTU of the link between the hosts; `None` is each engine's own
    /// (65535 on the model and the linux engine). `finrst drill` sets
    /// packetdrill's 1500.
    pub link_mtu: Option<u32>,
    /// The local host's device takes TSO super-segments (packetdrill's tun
    /// device, `TUNSETOFFLOAD` with `TUN_F_TSO4`): a GSO skb leaves as one
    /// segment of several MSS instead of being cut by software GSO.
    pub link_tso: bool,
}

impl RunOptions {
    /// These options with the run stopped at `us` at the latest.
    pub fn with_horizon(&self, us: u64) -> RunOptions {
        RunOptions {
            horizon_us: Some(us),
            ..self.clone()
        }
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            seed: 1,
            policy: Policy::Linux,
            keep_payload: true,
            tap_host: None,
            schedule: None,
            own_clock: false,
            horizon_us: None,
            keep_step_times: false,
            link_mtu: None,
            link_tso: false,
        }
    }
}

/// The note of a run the horizon ended with something still to happen:
/// the model's words, which the runner uses for every engine.
pub fn horizon_note(horizon_us: u64) -> String {
    format!(
        "stopped at the horizon ({}); events were still pending",
        crate::trace::fmt_time(horizon_us)
    )
}

/// Extra facts the runner resolved for a call.
#[derive(Clone, Debug, Default)]
pub struct CallCtx {
    /// `connect`: the local port to bind first.
    pub local_port: Option<u16>,
    /// `accept`: the name the new connection gets.
    pub new_name: Option<String>,
    /// `connect`: the address of the target host.
    pub peer_addr: Option<Ipv4Addr>,
}

/// What a call returned, as a program would see it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallOutcome {
    /// The return value; `-1` on error.
    pub ret: i64,
    /// The errno when `ret == -1`.
    pub errno: Option<Errno>,
    /// Bytes returned by `recv`, as ranges (a 64 KiB read of the pattern
    /// copies nothing).
    pub data: Option<Box<crate::payload::Payload>>,
    /// Something to show beside the call (e.g. how long a close blocked).
    pub note: Option<String>,
    /// The engine cannot perform this call (e.g. MSG_OOB on smoltcp); it was
    /// skipped and the note says why.
    pub unsupported: bool,
    /// `getsockopt`: the facts reported, by name.
    pub info: Option<Box<SockInfo>>,
}

impl CallOutcome {
    pub fn ok(ret: i64) -> Self {
        CallOutcome {
            ret,
            ..Default::default()
        }
    }
    pub fn err(errno: Errno) -> Self {
        CallOutcome {
            ret: -1,
            errno: Some(errno),
            ..Default::default()
        }
    }
    pub fn unsupported(on: impl std::fmt::Display, what: &str) -> Self {
        CallOutcome {
            ret: -1,
            errno: Some(Errno::EOPNOTSUPP),
            note: Some(format!("unsupported on {on}: {what}")),
            unsupported: true,
            ..Default::default()
        }
    }
}

/// One TCP state transition of a socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StateChange {
    pub time_us: u64,
    pub host: String,
    /// The script's name for the socket (`conn`, `listener`, ...).
    pub sock: String,
    pub from: TcpState,
    pub to: TcpState,
}

/// A connection still open when the run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OpenConn {
    pub host: String,
    pub sock: String,
    pub local_port: u16,
    pub remote: String,
    pub state: TcpState,
    /// What it is waiting for (e.g. "probing a zero window", "unread 10 bytes").
    pub detail: String,
}

/// What an engine reports when the run ends.
#[derive(Clone, Debug, Default)]
pub struct Finish {
    pub states: Vec<StateChange>,
    pub open_at_end: Vec<OpenConn>,
    /// Things the reader must know (unsupported calls, a cut horizon).
    pub notes: Vec<String>,
    /// Time at which the run ended.
    pub end_us: u64,
}

/// An engine-level failure that stops the run (e.g. no privileges): one
/// line that says what is missing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EngineError(pub String);

/// A run in which the caller plays host 1 itself, segment by segment, and
/// host 0's program makes calls one at a time (`finrst drill`, packetdrill's
/// model of a test): what host 0 sends to host 1 is handed over, never
/// delivered; what the caller injects arrives at host 0 as from the wire.
/// Times are µs of the engine's clock ([`Engine::now_us`]).
pub trait RawPeer {
    /// Starts a call of host 0's program on the socket named `sock`:
    /// `Some` when it returned at once, `None` when it sleeps in the kernel
    /// (one call at a time may sleep; [`RawPeer::take_done`] gives its end).
    fn start(&mut self, sock: &str, call: &Call, ctx: &CallCtx) -> Option<CallOutcome>;
    /// Runs time towards `until`, returning early once host 0 has sent
    /// something to host 1 or the sleeping call has returned.
    fn advance(&mut self, until: u64);
    /// The sleeping call's outcome and the time it returned, once it has.
    fn take_done(&mut self) -> Option<(CallOutcome, u64)>;
    /// What host 0 sent to host 1 since the last take.
    fn take_outbound(&mut self) -> Vec<Segment>;
    /// Puts a segment from host 1 on the wire now.
    fn inject(&mut self, seg: Segment);
    /// Every segment so far, both ways (shown when a script fails).
    fn trace(&mut self) -> Vec<Segment>;
}

/// A TCP implementation the scripts can run on.
pub trait Engine {
    /// Which engine this is.
    fn kind(&self) -> EngineKind;
    /// Time since the run began.
    fn now_us(&self) -> u64;
    /// The run is about to start; no blocking call may wait past
    /// `horizon_us` (a call the horizon cuts short returns as the kernel's
    /// would if the program were killed then, with a note). Segments
    /// already in flight at the horizon are still delivered to it.
    fn begin(&mut self, _horizon_us: u64) {}
    /// A host sysctl, e.g. `net.ipv4.tcp_fin_timeout` = `5`.
    fn sysctl(&mut self, host: usize, key: Sysctl, value: &str) -> Result<(), EngineError>;
    /// Performs one call on the socket the runner named. `Socket`,
    /// `Listen` and `Connect` on a name the engine has not seen create it.
    fn call(&mut self, host: usize, sock: &str, call: &Call, ctx: &CallCtx) -> CallOutcome;
    /// Calls made at the same instant: no segment is delivered between them.
    fn call_together(&mut self, calls: &[(usize, String, Call, CallCtx)]) -> Vec<CallOutcome> {
        calls
            .iter()
            .map(|(h, s, c, x)| self.call(*h, s, c, x))
            .collect()
    }
    /// Applies a fault to the next segments `host` sends.
    fn fault(&mut self, host: usize, fault: &Fault) -> Result<(), EngineError>;
    /// Releases the segments held from `host`.
    fn release(&mut self, host: usize) -> Result<(), EngineError>;
    /// Runs the network until nothing is in flight (a delayed segment
    /// included; held ones wait for `release`) and nothing has happened for
    /// [`SETTLE_QUIET_US`].
    fn settle(&mut self);
    /// Lets `us` of time pass, running everything that happens meanwhile.
    fn wait(&mut self, us: u64);
    /// Lets time pass until the engine's clock reads `us` (nothing if it
    /// is there already): how a run on a schedule reaches its next step.
    fn advance_to(&mut self, us: u64) {
        let now = self.now_us();
        if us > now {
            self.wait(us - now);
        }
    }
    /// The TCP state of a socket by name (`CLOSE` once it is gone); `None`
    /// if the host never had a socket of that name.
    fn state(&mut self, host: usize, sock: &str) -> Option<TcpState>;
    /// TcpExt counter changes of a host since the run began (non-zero
    /// only, [`Counter::reported`] ones only).
    fn counters(&mut self, host: usize) -> BTreeMap<Counter, i64>;
    /// Every segment so far (since the last [`Engine::forget_segments`]),
    /// in the order it left its host.
    fn segments(&self) -> &[Segment];
    /// Drops the segments [`Engine::segments`] holds, once a streamed run
    /// has printed them; returns whether it did (an engine that still needs
    /// them, e.g. to resend a held one by index, keeps them).
    fn forget_segments(&mut self) -> bool {
        false
    }
    /// Runs until nothing is pending or the horizon, and reports.
    fn finish(&mut self, horizon_us: u64) -> Finish;
    /// Leaves host `peer` to the caller ([`RawPeer`]); the first call sets
    /// the run up so, later ones return the same interface. An engine
    /// that cannot says why.
    fn raw_peer(&mut self, peer: usize) -> Result<&mut dyn RawPeer, EngineError> {
        let _ = peer;
        Err(EngineError(format!(
            "the {} engine cannot leave a host to the script (drill runs on {})",
            self.kind(),
            crate::vocab::list(EngineKind::ALL.iter().filter(|k| k.drills()))
        )))
    }
}
