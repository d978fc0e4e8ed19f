//! `finrst drill`: one real socket, the remote side written as raw segments
//! in packetdrill's syntax.
//!
//! A `.pkt` script (see [`parse`]) drives a *local* socket through system
//! calls and plays the *remote* host itself: inbound packets (`<`) are
//! injected as written, outbound packets (`>`) are what the local kernel
//! must send, at the time written, within a tolerance (4 ms by default, as
//! packetdrill's `--tolerance_usecs`). That is how the arrival side of the
//! close path is tested: a duplicate into TIME_WAIT, an RST at rcv_nxt - 1,
//! a SYN with an old timestamp, a FIN carrying data.
//!
//! The executor here is engine-neutral: it runs on any [`Engine`] that can
//! leave the remote host to the script ([`Engine::raw_peer`]), the same
//! engines `finrst run` uses: the model (virtual time, no root,
//! deterministic) and the linux engine (the local socket is a real one in
//! a private namespace; the remote host's segments are written into its
//! TUN device and what the kernel sends to the remote is captured and
//! never delivered).
//!
//! # What a script means here (packetdrill's conventions)
//! - File descriptors: the numbers the script writes for `socket()` and
//!   `accept()` name the new sockets (packetdrill maps script descriptors
//!   to real ones), so a script may start at 3 or at 5.
//! - The link ([`Env`]): packetdrill's by default, the local host
//!   192.168.0.1 and the remote 192.0.2.1 (or `--local_ip` /
//!   `--remote_ip`) over a device of MTU 1500 with TSO, so the local SYN
//!   says `mss 1460` and a GSO skb leaves whole (`P. 1:2001(2000)` to a
//!   peer of MSS 1000); `--env finrst`: 10.0.0.1 and 10.0.0.2, MTU 65535.
//! - Ports:
//!   `bind(3, ..., ...)` binds port 8080, `connect(3, ..., ...)` goes to the
//!   remote's port 8080 from the bound port or an ephemeral one (40000 up);
//!   a remote that opens (`< S`) does so from port 48000.
//! - Sequence numbers are relative: inbound ones are sent as written (the
//!   remote's ISN is 0), inbound `ack` values are added to the local ISN,
//!   and outbound ones are checked relative to the local ISN, learned from
//!   the local SYN or SYN-ACK. Timestamps: inbound `TS val` is sent as
//!   written; inbound `ecr` is shifted by the difference between the local
//!   host's first real TS value and the script's; outbound `TS val` is not
//!   checked, outbound `ecr` is.
//! - Times: `0.1` is absolute, `+0.1` relative to the previous event (to
//!   the time an outbound packet was really seen, as packetdrill's
//!   `adjust_relative_event_times` does, and to the time any other event
//!   really ran: the linux engine's calls take real time), `0.1...0.3` is a call that blocks
//!   and returns at the end of the range; a call written without a range
//!   must return within the tolerance.
//! - An outbound expectation takes the next segment the local host sent;
//!   one sent that the script does not expect fails the next `>`.
//! - Options and windows are checked when written, ignored when not.
//!
//! # Departures from packetdrill
//! - Relative times count from when the previous event really ran, for
//!   every event (packetdrill: outbound packets only), and a call that
//!   returned without sleeping returned when it was called: on the linux
//!   engine a call's trip to the host process takes real time.
//! - `%{ }%` blocks are not Python: [`expr`] reads `assert EXPR` lines
//!   over the TCP_INFO fields the engines report, and runs them when the
//!   block comes (packetdrill runs them at the end, on snapshots taken
//!   then).
//! - Backtick commands are not run by a shell: [`shell`] reads the ones
//!   packetdrill's suite uses (sysctl writes, a sourced file of them, the
//!   restore script, a metrics flush, a FIFO qdisc).
//! - Outbound TS val is never checked, so `--tcp_ts_tick_usecs` changes
//!   nothing.
//! - Only the calls and options `Executor::syscall` lists exist;
//!   anything else fails with its name at its line and column, as do
//!   IPv6, TCP Fast Open, a NULL buffer and commands [`shell`] does not
//!   read.

pub mod expr;
pub mod parse;
pub mod shell;
pub mod survey;

pub use parse::{Arg, Event, EventKind, OptSpec, PacketSpec, Pkt, PktError, Syscall, When};

use crate::EngineKind;
use crate::engine::{CallCtx, CallOutcome, Engine, EngineError, HostSpec, RawPeer, RunOptions};
use crate::limits::{MAX_CALL_BYTES, quote};
use crate::payload::Payload;
use crate::script::{Call, Data, GetOpt, How, Ioctl, MsgFlags, SockOpt};
use crate::segment::{Segment, TcpOpt};
use crate::vocab::{Errno, SockInfo, Sysctl, TcpState};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// packetdrill's default `--tolerance_usecs`.
pub const DEFAULT_TOLERANCE_US: u64 = 4_000;
/// The port `bind(fd, ..., ...)` binds and `connect(fd, ..., ...)` reaches.
pub const SCRIPT_PORT: u16 = 8080;
/// The port the remote opens from (`< S`).
pub const REMOTE_PORT: u16 = 48000;
/// The remote's initial sequence number: inbound numbers are sent as
/// written.
pub const REMOTE_ISN: u32 = 0;

/// The two hosts of every drill in finrst's own setup: index 0 runs the
/// socket (10.0.0.1), 1 is the script (10.0.0.2).
pub fn hosts() -> Vec<HostSpec> {
    HostSpec::for_hosts(&["local".to_string(), "remote".to_string()])
}

/// packetdrill's local address (config.c: the gateway of its tun device
/// in 192.168.0.0/16).
pub const PACKETDRILL_LOCAL: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);
/// packetdrill's remote address (config.c: TEST-NET-1, RFC 5737).
pub const PACKETDRILL_REMOTE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// packetdrill's tun device MTU (the driver's default), so the local MSS
/// is 1460.
pub const PACKETDRILL_MTU: u32 = 1500;

/// The link a drill runs on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Env {
    /// packetdrill's: 192.168.0.1 talks to 192.0.2.1 over a device of MTU
    /// 1500 with TSO (the local SYN says `mss 1460`; the kernel may hand
    /// the device super-segments of several MSS), or the addresses a
    /// script's `--local_ip` / `--remote_ip` give.
    #[default]
    Packetdrill,
    /// finrst's: 10.0.0.1 and 10.0.0.2 over a link of MTU 65535 (`mss
    /// 65495`), as `finrst run` uses.
    Finrst,
}

/// The two hosts of a drill of `pkt` in `env`.
pub fn hosts_for(pkt: &Pkt, env: Env) -> Vec<HostSpec> {
    let mut h = hosts();
    if env == Env::Packetdrill {
        h[0].addr = pkt.local_ip.unwrap_or(PACKETDRILL_LOCAL);
        h[1].addr = pkt.remote_ip.unwrap_or(PACKETDRILL_REMOTE);
    }
    h
}

/// The engine options of a drill in `env`.
pub fn run_options(env: Env) -> RunOptions {
    RunOptions {
        link_mtu: (env == Env::Packetdrill).then_some(PACKETDRILL_MTU),
        link_tso: env == Env::Packetdrill,
        ..RunOptions::default()
    }
}

/// Why a script failed (or could not run).
#[derive(Debug)]
pub struct Failure {
    pub file: String,
    pub line: u32,
    pub col: u32,
    /// The event's text.
    pub text: String,
    pub msg: String,
    /// The segments both ways up to the failure.
    pub trace: Vec<Segment>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}\n  {}",
            self.file,
            self.line,
            self.col,
            quote(&self.text),
            self.msg
        )
    }
}

impl Failure {
    /// The failure and the segments before it, tcpdump-like, relative to
    /// the local ISN the run learned.
    pub fn report(&self, local_isn: u32) -> String {
        let mut s = format!("{self}\n  segments so far:\n");
        for seg in &self.trace {
            let (seq, ack) = if seg.src.as_ref() == "local" {
                (
                    seg.seq.wrapping_sub(local_isn),
                    seg.ack.wrapping_sub(REMOTE_ISN),
                )
            } else {
                (
                    seg.seq.wrapping_sub(REMOTE_ISN),
                    seg.ack.wrapping_sub(local_isn),
                )
            };
            s.push_str(&format!(
                "    {:>10.6} {} {} {}:{}({}){} win {}{}\n",
                seg.time_us as f64 / 1e6,
                if seg.src.as_ref() == "local" {
                    ">"
                } else {
                    "<"
                },
                seg.flags.tcpdump(),
                seq,
                seq.wrapping_add(seg.len),
                seg.len,
                if seg.flags.ack() {
                    format!(" ack {ack}")
                } else {
                    String::new()
                },
                seg.win,
                opts_text(&seg.options),
            ));
        }
        s
    }
}

fn opts_text(o: &[TcpOpt]) -> String {
    if o.is_empty() {
        return String::new();
    }
    let v: Vec<String> = o
        .iter()
        .map(|x| match x {
            TcpOpt::Nop => "nop".into(),
            TcpOpt::Eol => "eol".into(),
            TcpOpt::Mss(m) => format!("mss {m}"),
            TcpOpt::WScale(w) => format!("wscale {w}"),
            TcpOpt::SackPerm => "sackOK".into(),
            TcpOpt::Sack(b) => format!(
                "sack {}",
                b.iter()
                    .map(|(l, r)| format!("{l}:{r}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            TcpOpt::Timestamp { val, ecr } => format!("TS val {val} ecr {ecr}"),
            TcpOpt::Unknown { kind, .. } => format!("opt{kind}"),
        })
        .collect();
    format!(" <{}>", v.join(","))
}

/// A passed script: how many events ran.
#[derive(Debug)]
pub struct Pass {
    pub events: usize,
    pub end_us: u64,
}

/// One descriptor of the script's program.
#[derive(Clone, Debug)]
struct Fd {
    name: String,
    nonblock: bool,
    bound: Option<u16>,
}

/// The program's open descriptors, and the numbers free below the
/// highest: the lowest free one is found in O(log n), however many
/// sockets a script opens.
#[derive(Debug, Default)]
struct FdTable {
    open: BTreeMap<i64, Fd>,
    /// Free numbers below `high`.
    free: BTreeSet<i64>,
    /// One past the highest number ever open (3 before any).
    high: i64,
}

impl FdTable {
    /// The number `socket()` or `accept()` gets: the lowest free from 3.
    fn lowest_free(&self) -> i64 {
        self.free.first().copied().unwrap_or(self.high.max(3))
    }
    fn get(&self, n: &i64) -> Option<&Fd> {
        self.open.get(n)
    }
    fn get_mut(&mut self, n: &i64) -> Option<&mut Fd> {
        self.open.get_mut(n)
    }
    fn insert(&mut self, n: i64, fd: Fd) {
        let high = self.high.max(3);
        if n >= high {
            self.free.extend(high..n);
            self.high = n + 1;
        } else {
            self.free.remove(&n);
        }
        self.open.insert(n, fd);
    }
    fn remove(&mut self, n: &i64) {
        if self.open.remove(n).is_some() {
            self.free.insert(*n);
        }
    }
}

/// A call asleep in the kernel.
struct PendingCall {
    ev: usize,
    expect: (i64, Option<Errno>),
    start_us: u64,
    /// The end of the range, if the script gave one (µs of script time).
    end: Option<u64>,
    /// The descriptor number an accept will get.
    new_fd: Option<(i64, String)>,
}

/// The script's remote host: host 1 of the engine.
const REMOTE: usize = 1;

/// Runs a parsed script on an engine whose remote host it plays.
pub struct Executor<'a> {
    pkt: &'a Pkt,
    e: &'a mut dyn Engine,
    tol: u64,
    t0: u64,
    fds: FdTable,
    /// Names used so far (a descriptor number reused gets a new name).
    generation: BTreeMap<i64, u32>,
    next_ephemeral: u16,
    /// The connection inbound packets go to: (local port, remote port).
    conn: Option<(u16, u16)>,
    pub local_isn: u32,
    /// Added to inbound TS ecr values (see the module doc).
    ts_off: Option<u32>,
    outq: std::collections::VecDeque<Segment>,
    pending: Option<PendingCall>,
    /// The run's hosts (their addresses go into injected segments).
    hosts: Vec<HostSpec>,
    /// The socket a `%{ }%` block reads TCP_INFO of: packetdrill's socket
    /// under test, the last one accepted or connected.
    conn_fd: Option<i64>,
    /// Names `%{ }%` blocks bound so far.
    py_names: BTreeMap<String, i64>,
}

impl<'a> Executor<'a> {
    /// An executor of `pkt` on `e`, whose host 1 it plays (the engine is
    /// set up for that here; an engine that cannot says so).
    pub fn new(
        pkt: &'a Pkt,
        e: &'a mut dyn Engine,
        tolerance_us: Option<u64>,
        hosts: Vec<HostSpec>,
    ) -> Result<Self, EngineError> {
        let tol = tolerance_us
            .or(pkt.tolerance_us)
            .unwrap_or(DEFAULT_TOLERANCE_US);
        e.raw_peer(REMOTE)?;
        let t0 = e.now_us();
        Ok(Executor {
            pkt,
            e,
            tol,
            t0,
            fds: FdTable::default(),
            generation: BTreeMap::new(),
            next_ephemeral: crate::engine::FIRST_LOCAL_PORT,
            conn: None,
            local_isn: 0,
            ts_off: None,
            outq: Default::default(),
            pending: None,
            hosts,
            conn_fd: None,
            py_names: BTreeMap::new(),
        })
    }

    /// Runs the engine towards script time `t` (see [`RawPeer::advance`]).
    fn advance(&mut self, t: u64) {
        let at = self.t0.saturating_add(t);
        self.b().advance(at);
    }

    /// The engine's raw-peer side, set up by [`Executor::new`].
    fn b(&mut self) -> &mut dyn RawPeer {
        self.e
            .raw_peer(REMOTE)
            .expect("the engine took the raw peer in Executor::new")
    }

    fn fail(&mut self, ev: usize, msg: String) -> Failure {
        let e = &self.pkt.events[ev];
        Failure {
            file: self.pkt.path.clone(),
            line: e.line,
            col: e.col,
            text: e.text.clone(),
            msg,
            trace: self.b().trace(),
        }
    }

    fn now(&mut self) -> u64 {
        self.e.now_us().saturating_sub(self.t0)
    }

    /// Takes what the backend has: outbound segments into the queue, a
    /// returned call checked.
    fn collect(&mut self) -> Result<(), Failure> {
        let out = self.b().take_outbound();
        for s in out {
            if s.flags.syn() {
                // packetdrill learns the local ISN from the SYN or SYN-ACK.
                self.local_isn = s.seq;
            }
            self.outq.push_back(s);
        }
        if let Some((o, end)) = self.b().take_done() {
            let p = self.pending.take().expect("a call was pending");
            let end = end.saturating_sub(self.t0);
            self.check_return(&p, &o, end)?;
        }
        Ok(())
    }

    /// Runs time to script time `t`, collecting on the way.
    fn run_to(&mut self, t: u64) -> Result<(), Failure> {
        loop {
            self.collect()?;
            if self.now() >= t {
                return Ok(());
            }
            self.advance(t);
        }
    }

    fn check_return(&mut self, p: &PendingCall, o: &CallOutcome, end: u64) -> Result<(), Failure> {
        let (ret, errno) = &p.expect;
        if let Some(e) = p.end {
            if end.saturating_add(self.tol) < e || end > e.saturating_add(self.tol) {
                return Err(self.fail(
                    p.ev,
                    format!(
                        "returned at {:.6}, expected at {:.6} (tolerance {} us)",
                        end as f64 / 1e6,
                        e as f64 / 1e6,
                        self.tol
                    ),
                ));
            }
        } else if end > p.start_us.saturating_add(self.tol) {
            return Err(self.fail(
                p.ev,
                format!(
                    "blocked until {:.6} (called at {:.6}); write the time as `start...end` for a call that blocks",
                    end as f64 / 1e6,
                    p.start_us as f64 / 1e6
                ),
            ));
        }
        let got = (o.ret, o.errno);
        let ok = if *ret == -1 {
            // `= -1` alone accepts any errno, as packetdrill does.
            got.0 == -1 && (errno.is_none() || got.1 == *errno)
        } else {
            got.0 != -1 && (p.new_fd.is_some() || got.0 == *ret)
        };
        if !ok {
            let show = |r: i64, e: &Option<Errno>| match e {
                Some(e) if r == -1 => format!("-1 {e}"),
                _ => r.to_string(),
            };
            let mut msg = format!(
                "returned {}, expected {}",
                show(got.0, &got.1),
                show(*ret, errno)
            );
            if let Some(n) = &o.note {
                msg.push_str(&format!(" ({n})"));
            }
            return Err(self.fail(p.ev, msg));
        }
        if let (Some((n, name)), true) = (
            &p.new_fd,
            got.0 != -1 && !p.new_fd.as_ref().is_some_and(|x| x.1.is_empty()),
        ) {
            self.fds.insert(
                *n,
                Fd {
                    name: name.clone(),
                    nonblock: false,
                    bound: None,
                },
            );
            // The accepted socket is the one under test from now on.
            self.conn_fd = Some(*n);
        }
        Ok(())
    }

    /// Runs every event; the first failure stops the run.
    pub fn run(&mut self) -> Result<Pass, Failure> {
        let mut prev: u64 = 0;
        for i in 0..self.pkt.events.len() {
            let ev = self.pkt.events[i].clone();
            let (t, end) = ev.time.resolve(prev);
            match &ev.kind {
                EventKind::Outbound(spec) => {
                    let seen = self.expect_out(i, spec, t, end)?;
                    // adjust_relative_event_times: a relative event's
                    // time becomes the time the packet was seen.
                    prev = match ev.time {
                        When::Rel(_) | When::Any | When::Window { .. } => seen,
                        _ => t.unwrap_or(seen),
                    };
                    continue;
                }
                _ => {
                    if let Some(t) = t {
                        self.run_to(t)?;
                    }
                }
            }
            // Relative times count from when the previous event really
            // happened: packetdrill does so for outbound packets; the
            // linux engine's calls take a millisecond or so of real time
            // each, which would otherwise add up against the schedule.
            prev = self.now();
            match &ev.kind {
                EventKind::Inbound(spec) => {
                    let seg = self.build_inbound(i, spec)?;
                    self.b().inject(seg);
                    // What the segment does happens now, before the next
                    // event of the same instant (a getsockopt right after
                    // an RST sees the reset, as on the kernel, where the
                    // TUN write runs the receive path).
                    let now = self.now();
                    self.advance(now);
                    // What follows counts from when the segment went in.
                    prev = self.now();
                }
                EventKind::Command(c) => self.command(i, c)?,
                EventKind::Code(asserts) => self.code(i, asserts)?,
                EventKind::Syscall(sc) => {
                    // A call written with a range (`+0...0.2 accept`) blocks
                    // while the packets after it come and go; the next call
                    // waits for it to return, by the end of its range (as
                    // packetdrill's syscall thread does).
                    if let Some(p) = &self.pending
                        && let Some(e) = p.end
                    {
                        let deadline = e.saturating_add(self.tol);
                        while self.pending.is_some() && self.now() < deadline {
                            self.advance(deadline);
                            self.collect()?;
                        }
                    }
                    // A call written without a range (an accept right after
                    // the ACK it waits for) has the tolerance to return
                    // before the next call is issued.
                    if let Some(p) = &self.pending
                        && p.end.is_none()
                    {
                        let deadline = p.start_us.saturating_add(self.tol);
                        while self.pending.is_some() && self.now() < deadline {
                            self.advance(deadline);
                            self.collect()?;
                        }
                    }
                    if let Some(p) = &self.pending {
                        let line = self.pkt.events[p.ev].line;
                        return Err(self.fail(
                            i,
                            format!(
                                "a system call while the one at line {line} is still blocked (this subset runs one blocking call at a time)"
                            ),
                        ));
                    }
                    self.syscall(i, sc, end)?;
                }
                EventKind::Outbound(_) => unreachable!(),
            }
        }
        // A call still asleep gets until the end of its range.
        if let Some(p) = &self.pending {
            let until = p.end.unwrap_or(p.start_us).saturating_add(self.tol);
            self.run_to(until)?;
            if let Some(p) = &self.pending {
                let ev = p.ev;
                return Err(self.fail(ev, "still blocked at the end of the script".into()));
            }
        }
        self.collect()?;
        let end_us = self.now();
        Ok(Pass {
            events: self.pkt.events.len(),
            end_us,
        })
    }

    /// Waits for the next outbound segment and compares it.
    /// `t..=end` is the window of `a~b` (`end` is `None` for one time).
    fn expect_out(
        &mut self,
        i: usize,
        spec: &PacketSpec,
        t: Option<u64>,
        end: Option<u64>,
    ) -> Result<u64, Failure> {
        let last = end.or(t);
        let deadline = last.map(|t| t.saturating_add(self.tol));
        loop {
            self.collect()?;
            if !self.outq.is_empty() {
                break;
            }
            let now = self.now();
            match deadline {
                Some(d) if now >= d => {
                    return Err(self.fail(
                        i,
                        format!(
                            "expected `{spec}` at {:.6}; nothing was sent by {:.6}",
                            t.unwrap_or(0) as f64 / 1e6,
                            d as f64 / 1e6
                        ),
                    ));
                }
                Some(d) => self.advance(d),
                // `*`: wait as long as the network has something to say.
                None => {
                    let before = self.now();
                    self.advance(before + 600_000_000);
                    if self.now() == before && self.outq.is_empty() {
                        return Err(self.fail(i, format!("expected `{spec}`; nothing was sent")));
                    }
                }
            }
        }
        let seg = self.outq.pop_front().expect("checked");
        let seen = seg.time_us.saturating_sub(self.t0);
        if let (Some(t), Some(last)) = (t, last) {
            if seen.saturating_add(self.tol) < t || seen > last.saturating_add(self.tol) {
                let when = if last == t {
                    format!("at {:.6}", t as f64 / 1e6)
                } else {
                    format!("in {:.6}~{:.6}", t as f64 / 1e6, last as f64 / 1e6)
                };
                return Err(self.fail(
                    i,
                    format!(
                        "`{}` was sent at {:.6}, expected {when} (tolerance {} us)",
                        self.describe(&seg),
                        seen as f64 / 1e6,
                        self.tol
                    ),
                ));
            }
        }
        if let Err(why) = self.compare(spec, &seg) {
            let msg = format!(
                "expected `{spec}`\n  sent     `{}`: {why}",
                self.describe(&seg)
            );
            return Err(self.fail(i, msg));
        }
        Ok(seen)
    }

    /// A segment from the local host in the script's terms.
    fn describe(&self, s: &Segment) -> String {
        let seq = s.seq.wrapping_sub(self.local_isn);
        let mut t = format!(
            "{} {}:{}({})",
            s.flags.tcpdump(),
            seq,
            seq.wrapping_add(s.len),
            s.len
        );
        if s.flags.ack() {
            t.push_str(&format!(" ack {}", s.ack.wrapping_sub(REMOTE_ISN)));
        }
        t.push_str(&format!(" win {}", s.win));
        if s.flags.urg() {
            t.push_str(&format!(" urg {}", s.urg_ptr));
        }
        t.push_str(&opts_text(&s.options));
        t
    }

    fn compare(&mut self, spec: &PacketSpec, s: &Segment) -> Result<(), String> {
        if s.flags != spec.flags {
            return Err(format!(
                "flags {} instead of {}",
                s.flags.tcpdump(),
                spec.flags.tcpdump()
            ));
        }
        let seq = s.seq.wrapping_sub(self.local_isn);
        if seq != spec.start || s.len != spec.len {
            return Err(format!(
                "sequence {}:{}({}) instead of {}:{}({})",
                seq,
                seq.wrapping_add(s.len),
                s.len,
                spec.start,
                spec.end,
                spec.len
            ));
        }
        if let Some(a) = spec.ack {
            let got = s.ack.wrapping_sub(REMOTE_ISN);
            if got != a {
                return Err(format!("ack {got} instead of {a}"));
            }
        }
        if let Some(w) = spec.win {
            if s.win != w {
                return Err(format!("win {} instead of {w}", s.win));
            }
        }
        if let Some(u) = spec.urg {
            if s.urg_ptr != u {
                return Err(format!("urg {} instead of {u}", s.urg_ptr));
            }
        }
        // The first local TS value fixes the offset for inbound ecr values.
        let script_val = spec.options.iter().flatten().find_map(|o| match o {
            OptSpec::Ts { val, .. } => Some(*val),
            _ => None,
        });
        if self.ts_off.is_none() {
            if let Some(val) = s.options.iter().find_map(|o| match o {
                TcpOpt::Timestamp { val, .. } => Some(*val),
                _ => None,
            }) {
                self.ts_off = Some(val.wrapping_sub(script_val.unwrap_or(0)));
            }
        }
        let Some(want) = &spec.options else {
            return Ok(());
        };
        let got = &s.options;
        let differ = || {
            format!(
                "options <{}> instead of <{}>",
                opts_text(got)
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>'),
                want.iter()
                    .map(|o| o.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            )
        };
        // The kernel pads with NOPs before a TS (`tcp_options_write`); a
        // script lists the options as sent.
        if got.len() != want.len() {
            return Err(differ());
        }
        for (g, w) in got.iter().zip(want) {
            let same = match (g, w) {
                (TcpOpt::Nop, OptSpec::Nop) | (TcpOpt::Eol, OptSpec::Eol) => true,
                (TcpOpt::SackPerm, OptSpec::SackOk) => true,
                (TcpOpt::Mss(a), OptSpec::Mss(b)) => a == b,
                (TcpOpt::WScale(a), OptSpec::WScale(b)) => a == b,
                (TcpOpt::Sack(a), OptSpec::Sack(b)) => {
                    a.len() == b.len()
                        && a.iter().zip(b).all(|((l, r), (x, y))| {
                            l.wrapping_sub(REMOTE_ISN) == *x && r.wrapping_sub(REMOTE_ISN) == *y
                        })
                }
                // TS val follows the local clock: not checked. ecr is the
                // remote's value, sent as written.
                (TcpOpt::Timestamp { ecr, .. }, OptSpec::Ts { ecr: e, .. }) => ecr == e,
                _ => false,
            };
            if !same {
                return Err(differ());
            }
        }
        Ok(())
    }

    fn build_inbound(&mut self, i: usize, spec: &PacketSpec) -> Result<Segment, Failure> {
        let Some((lport, rport)) = self.conn else {
            return Err(self.fail(
                i,
                "an inbound packet before any socket listens or connects (it would have no port to go to)".into(),
            ));
        };
        let hs = &self.hosts;
        let ts_off = self.ts_off;
        let options = spec
            .options
            .iter()
            .flatten()
            .map(|o| match o {
                OptSpec::Nop => TcpOpt::Nop,
                OptSpec::Eol => TcpOpt::Eol,
                OptSpec::Mss(m) => TcpOpt::Mss(*m),
                OptSpec::WScale(w) => TcpOpt::WScale(*w),
                OptSpec::SackOk => TcpOpt::SackPerm,
                OptSpec::Sack(b) => TcpOpt::Sack(
                    b.iter()
                        .map(|(l, r)| {
                            (
                                l.wrapping_add(self.local_isn),
                                r.wrapping_add(self.local_isn),
                            )
                        })
                        .collect(),
                ),
                OptSpec::Ts { val, ecr } => TcpOpt::Timestamp {
                    val: *val,
                    ecr: ts_off.map_or(*ecr, |o| ecr.wrapping_add(o)),
                },
            })
            .collect();
        Ok(Segment {
            time_us: 0,
            src: hs[1].name.as_str().into(),
            dst: hs[0].name.as_str().into(),
            src_addr: hs[1].addr,
            dst_addr: hs[0].addr,
            sport: rport,
            dport: lport,
            seq: spec.start.wrapping_add(REMOTE_ISN),
            ack: spec.ack.map_or(0, |a| a.wrapping_add(self.local_isn)),
            flags: spec.flags,
            win: spec.win.unwrap_or(65535),
            urg_ptr: spec.urg.unwrap_or(0),
            options,
            len: spec.len,
            payload: (spec.len > 0).then(|| Payload::pattern(spec.start, spec.len)),
            why: Some("injected by the script".into()),
            rst_reason: None,
            lost: false,
        })
    }

    fn command(&mut self, i: usize, c: &str) -> Result<(), Failure> {
        let actions = shell::interpret(c, &self.pkt.path).map_err(|e| self.fail(i, e))?;
        for a in actions {
            let shell::Action::Sysctl { key, value, origin } = a else {
                // A command that changes nothing here (shell::Action::Nothing
                // says why).
                continue;
            };
            let Ok(k) = key.parse::<Sysctl>() else {
                if let Some(_why) = sysctl_without_effect(&key, &value) {
                    continue;
                }
                return Err(self.fail(
                    i,
                    format!(
                        "{origin}: sysctl {}={}: not a sysctl finrst knows, and not one known to change nothing here",
                        quote(&key),
                        quote(&value)
                    ),
                ));
            };
            if self.e.kind() == EngineKind::Model
                && !k.modelled()
                && model_default_behaviour(k, &value)
            {
                continue;
            }
            if let Err(e) = self.e.sysctl(0, k, &value) {
                return Err(self.fail(i, format!("{origin}: sysctl {k}={}: {e}", quote(&value))));
            }
        }
        Ok(())
    }

    /// `%{ assert ... }%`: the TCP_INFO of the socket under test, then each
    /// assertion over it.
    fn code(&mut self, i: usize, asserts: &[expr::Assertion]) -> Result<(), Failure> {
        let Some(name) = self
            .conn_fd
            .and_then(|n| self.fds.get(&n))
            .map(|f| f.name.clone())
        else {
            return Err(self.fail(
                i,
                "a `%{ }%` block reads the TCP_INFO of the socket under test, and none is open (accept or connect one first)".into(),
            ));
        };
        let out = self.getsockopt_now(i, &name, GetOpt::TcpInfo)?;
        let info = match out.info.as_deref() {
            Some(SockInfo::Tcp(t)) => *t,
            _ => {
                return Err(self.fail(i, "getsockopt(TCP_INFO) reported nothing".into()));
            }
        };
        // The script's own names (`NAME = EXPR`, kept from block to block
        // as packetdrill's one interpreter keeps them), then TCP_INFO's.
        let mut locals = std::mem::take(&mut self.py_names);
        let r = self.code_with(i, asserts, &info, &mut locals);
        self.py_names = locals;
        r
    }

    fn code_with(
        &mut self,
        i: usize,
        asserts: &[expr::Assertion],
        info: &crate::vocab::TcpInfo,
        locals: &mut BTreeMap<String, i64>,
    ) -> Result<(), Failure> {
        for a in asserts {
            let lookup = |n: &str| match locals.get(n) {
                Some(v) => Ok(*v),
                None => tcp_info_name(info, n),
            };
            let v = a.eval(&lookup).map_err(|e| self.fail_at(i, a, e))?;
            if let Some(name) = &a.bind {
                locals.insert(name.clone(), v);
                continue;
            }
            if v == 0 {
                let vals: Vec<String> = a
                    .names()
                    .into_iter()
                    .filter(|n| n.starts_with("tcpi_"))
                    .filter_map(|n| lookup(n).ok().map(|v| format!("{n}={v}")))
                    .collect();
                return Err(self.fail_at(
                    i,
                    a,
                    format!("assert {} failed ({})", a.text, vals.join(" ")),
                ));
            }
        }
        Ok(())
    }

    /// A failure at an assertion's own line and column.
    fn fail_at(&mut self, i: usize, a: &expr::Assertion, msg: String) -> Failure {
        let mut f = self.fail(i, msg);
        f.line = a.line;
        f.col = a.col;
        f.text = format!("assert {}", a.text);
        f
    }

    /// A getsockopt that never sleeps; a kernel task caught waiting for
    /// its socket lock looks asleep for a moment: it gets the tolerance to
    /// answer.
    fn getsockopt_now(&mut self, i: usize, name: &str, o: GetOpt) -> Result<CallOutcome, Failure> {
        let out = self
            .b()
            .start(name, &Call::GetSockOpt(o), &CallCtx::default());
        match out {
            Some(o) => Ok(o),
            None => {
                let deadline = self.now().saturating_add(self.tol);
                loop {
                    self.advance(deadline);
                    if let Some((o, _)) = self.b().take_done() {
                        break Ok(o);
                    }
                    if self.now() >= deadline {
                        return Err(self.fail(i, "getsockopt blocked".into()));
                    }
                }
            }
        }
    }

    /// The lowest free descriptor from 3, and the engine name it gets.
    /// The script's number for a new descriptor: packetdrill maps the
    /// numbers a script writes to the real ones, so `socket(...) = 5`
    /// names the new socket 5 (a number not in use); `-1` takes the
    /// lowest free.
    fn new_fd(&mut self, want: i64) -> (i64, String) {
        let n = if (0..=i64::from(u16::MAX)).contains(&want) && self.fds.get(&want).is_none() {
            want
        } else {
            self.fds.lowest_free()
        };
        let g = self.generation.entry(n).or_insert(0);
        *g += 1;
        let name = if *g == 1 {
            format!("fd{n}")
        } else {
            format!("fd{n}_{g}")
        };
        (n, name)
    }

    fn fd_arg(&mut self, i: usize, sc: &Syscall) -> Result<(i64, Fd), Failure> {
        match sc.args.first() {
            Some(Arg::Int(n)) => match self.fds.get(n) {
                Some(f) => Ok((*n, f.clone())),
                None => Err(self.fail(i, format!("descriptor {n} is not open"))),
            },
            _ => Err(self.fail(
                i,
                format!(
                    "{}: the first argument must be a descriptor number",
                    sc.name
                ),
            )),
        }
    }

    /// Maps one system call onto the engine's calls.
    ///
    /// socket, bind, listen, accept, connect (AF_UNSPEC: disconnect),
    /// write/send, read/recv, close, shutdown, fcntl(F_SETFL, O_NONBLOCK),
    /// setsockopt (SO_LINGER, SO_RCVBUF, SO_SNDBUF, SO_OOBINLINE,
    /// TCP_NODELAY, TCP_LINGER2, TCP_REPAIR) and getsockopt(TCP_INFO) with
    /// `{tcpi_state=...}`.
    fn syscall(&mut self, i: usize, sc: &Syscall, end: Option<u64>) -> Result<(), Failure> {
        let expect = (sc.ret, sc.errno);
        let arg = |k: usize| sc.args.get(k).cloned().unwrap_or(Arg::Ellipsis);
        let mut ctx = CallCtx::default();
        let mut new_fd = None;
        let (name, call) = match sc.name.as_str() {
            "socket" => {
                if let Arg::Ident(v) = arg(0) {
                    if !v.iter().any(|x| x == "AF_INET") {
                        return Err(self.fail(
                            i,
                            format!("unsupported socket domain `{}` (AF_INET only)", v.join("|")),
                        ));
                    }
                }
                let mut nonblock = false;
                match arg(1) {
                    Arg::Ident(v) if v.iter().any(|x| x == "SOCK_STREAM") => {
                        nonblock = v.iter().any(|x| x == "SOCK_NONBLOCK");
                    }
                    Arg::Ellipsis => {}
                    other => {
                        return Err(self.fail(
                            i,
                            format!(
                                "unsupported socket type {} (SOCK_STREAM only)",
                                quote(&format!("{other:?}"))
                            ),
                        ));
                    }
                }
                if sc.ret != -1 && self.fds.get(&sc.ret).is_some() {
                    return Err(self.fail(
                        i,
                        format!(
                            "socket() = {}: descriptor {} is already open",
                            sc.ret, sc.ret
                        ),
                    ));
                }
                let (n, name) = self.new_fd(sc.ret);
                self.fds.insert(
                    n,
                    Fd {
                        name: name.clone(),
                        nonblock,
                        bound: None,
                    },
                );
                self.start_call(
                    i,
                    name,
                    Call::Socket,
                    ctx,
                    expect,
                    end,
                    Some((n, String::new())),
                )?;
                return Ok(());
            }
            "bind" => {
                let (n, _) = self.fd_arg(i, sc)?;
                let port = sockaddr_port(&arg(1)).unwrap_or(SCRIPT_PORT);
                if sc.ret != 0 {
                    return Err(self.fail(i, "unsupported: a bind() expected to fail (the bind happens inside listen/connect here)".into()));
                }
                if let Some(f) = self.fds.get_mut(&n) {
                    f.bound = Some(port);
                }
                return Ok(());
            }
            "listen" => {
                let (_, f) = self.fd_arg(i, sc)?;
                let backlog = match arg(1) {
                    Arg::Int(b) => u32::try_from(b.max(0)).unwrap_or(u32::MAX),
                    _ => 128,
                };
                let port = f.bound.unwrap_or(SCRIPT_PORT);
                self.conn = Some((port, REMOTE_PORT));
                (f.name, Call::Listen { port, backlog })
            }
            "accept" | "accept4" => {
                let (_, f) = self.fd_arg(i, sc)?;
                if sc.ret != -1 && self.fds.get(&sc.ret).is_some() {
                    return Err(self.fail(
                        i,
                        format!(
                            "accept() = {}: descriptor {} is already open",
                            sc.ret, sc.ret
                        ),
                    ));
                }
                let (n, name) = self.new_fd(sc.ret);
                ctx.new_name = Some(name.clone());
                new_fd = Some((n, name));
                (f.name, Call::Accept)
            }
            "connect" => {
                let (cn, f) = self.fd_arg(i, sc)?;
                self.conn_fd = Some(cn);
                if let Arg::Struct(fields) = arg(1) {
                    if fields.iter().any(|(k, v)| {
                        k == "sa_family" && *v == Arg::Ident(vec!["AF_UNSPEC".into()])
                    }) {
                        self.start_call(i, f.name, Call::Disconnect, ctx, expect, end, None)?;
                        return Ok(());
                    }
                }
                let port = sockaddr_port(&arg(1)).unwrap_or(SCRIPT_PORT);
                let local = match f.bound {
                    Some(p) => p,
                    None => {
                        let p = self.next_ephemeral;
                        self.next_ephemeral += 1;
                        p
                    }
                };
                ctx.local_port = Some(local);
                ctx.peer_addr = Some(self.hosts[1].addr);
                self.conn = Some((local, port));
                (
                    f.name,
                    Call::Connect {
                        host: "remote".into(),
                        port,
                        from_port: f.bound,
                        nonblock: f.nonblock,
                    },
                )
            }
            "write" | "send" | "sendto" => {
                let (_, f) = self.fd_arg(i, sc)?;
                null_buffer(&arg(1)).map_err(|e| self.fail(i, e))?;
                if sc.name == "sendto" {
                    if let Arg::Ident(v) = arg(3)
                        && v.iter().any(|x| x == "MSG_FASTOPEN")
                    {
                        return Err(self.fail(i, "unsupported: sendto(MSG_FASTOPEN) (TCP Fast Open; neither drill engine has it)".into()));
                    }
                    if !matches!(arg(4), Arg::Ellipsis) {
                        return Err(self.fail(
                            i,
                            "sendto: this subset takes the address as `...` (the connected peer)"
                                .into(),
                        ));
                    }
                }
                let len = match arg(2) {
                    Arg::Int(n) if (0..=i64::from(MAX_CALL_BYTES)).contains(&n) => n as u32,
                    _ => {
                        return Err(self.fail(
                            i,
                            format!(
                                "{}: the third argument must be the length (at most {MAX_CALL_BYTES})",
                                sc.name
                            ),
                        ));
                    }
                };
                let mut flags = msg_flags(&arg(3)).map_err(|e| self.fail(i, e))?;
                flags.dontwait |= f.nonblock;
                (
                    f.name,
                    Call::Send {
                        data: Data::Count(len),
                        flags,
                    },
                )
            }
            "recvmsg" => {
                let (_, f) = self.fd_arg(i, sc)?;
                let len = recvmsg_len(&arg(1)).map_err(|e| self.fail(i, e))?;
                let mut flags = msg_flags(&arg(2)).map_err(|e| self.fail(i, e))?;
                flags.dontwait |= f.nonblock;
                (f.name, Call::Recv { len, flags })
            }
            "read" | "recv" => {
                let (_, f) = self.fd_arg(i, sc)?;
                null_buffer(&arg(1)).map_err(|e| self.fail(i, e))?;
                let len = match arg(2) {
                    Arg::Int(n) if (0..=i64::from(MAX_CALL_BYTES)).contains(&n) => n as u32,
                    _ => {
                        return Err(self.fail(
                            i,
                            format!(
                                "{}: the third argument must be the length (at most {MAX_CALL_BYTES})",
                                sc.name
                            ),
                        ));
                    }
                };
                let mut flags = msg_flags(&arg(3)).map_err(|e| self.fail(i, e))?;
                flags.dontwait |= f.nonblock;
                (f.name, Call::Recv { len, flags })
            }
            "close" => {
                let (n, f) = self.fd_arg(i, sc)?;
                self.fds.remove(&n);
                (f.name, Call::Close)
            }
            "shutdown" => {
                let (_, f) = self.fd_arg(i, sc)?;
                let how = match arg(1) {
                    Arg::Ident(v) if v[0] == "SHUT_RD" => How::Rd,
                    Arg::Ident(v) if v[0] == "SHUT_WR" => How::Wr,
                    Arg::Ident(v) if v[0] == "SHUT_RDWR" => How::RdWr,
                    Arg::Int(0) => How::Rd,
                    Arg::Int(1) => How::Wr,
                    Arg::Int(2) => How::RdWr,
                    other => {
                        return Err(self.fail(
                            i,
                            format!(
                                "shutdown: expected SHUT_RD, SHUT_WR or SHUT_RDWR, found {}",
                                quote(&format!("{other:?}"))
                            ),
                        ));
                    }
                };
                (f.name, Call::Shutdown(how))
            }
            "fcntl" => {
                let (n, _) = self.fd_arg(i, sc)?;
                match (arg(1), arg(2)) {
                    // F_GETFL: the file status flags, which the program's
                    // side keeps (O_RDWR for a socket, O_NONBLOCK as set).
                    (Arg::Ident(c), Arg::Ellipsis) if c[0] == "F_GETFL" => {
                        let nb = self.fds.get(&n).is_some_and(|f| f.nonblock);
                        let got = O_RDWR | if nb { O_NONBLOCK } else { 0 };
                        if sc.ret != got {
                            return Err(
                                self.fail(i, format!("returned {got:#x}, expected {:#x}", sc.ret))
                            );
                        }
                        return Ok(());
                    }
                    (Arg::Ident(c), Arg::Ident(fl)) if c[0] == "F_SETFL" => {
                        let nb = fl.iter().any(|x| x == "O_NONBLOCK");
                        if let Some(f) = self.fds.get_mut(&n) {
                            f.nonblock = nb;
                        }
                        if sc.ret != 0 {
                            return Err(self.fail(i, "fcntl(F_SETFL) returns 0".into()));
                        }
                        return Ok(());
                    }
                    _ => return Err(self.fail(
                        i,
                        "unsupported fcntl (this subset has fcntl(fd, F_SETFL, O_RDWR|O_NONBLOCK))"
                            .into(),
                    )),
                }
            }
            "setsockopt" => {
                let (_, f) = self.fd_arg(i, sc)?;
                let opt = match arg(2) {
                    Arg::Ident(v) => v[0].clone(),
                    other => {
                        return Err(self.fail(
                            i,
                            format!(
                                "setsockopt: expected an option name, found {}",
                                quote(&format!("{other:?}"))
                            ),
                        ));
                    }
                };
                let val = arg(3);
                let int = |a: &Arg| match a {
                    // An int, as the kernel reads it: a value outside
                    // i32 is refused, not wrapped.
                    Arg::Int(n) => i32::try_from(*n).ok(),
                    Arg::List(v) => match v.first() {
                        Some(Arg::Int(n)) => i32::try_from(*n).ok(),
                        _ => None,
                    },
                    _ => None,
                };
                let o = match opt.as_str() {
                    // Only bind() reads SO_REUSEADDR (inet_csk_get_port:
                    // a port held by another socket); a drill's host is new
                    // and binds one port, so no bind it would change.
                    "SO_REUSEADDR" => {
                        if int(&val).is_none() {
                            return Err(self.fail(i, "SO_REUSEADDR: expected a value `[N]`".into()));
                        }
                        if sc.ret != 0 {
                            return Err(self.fail(i, format!("returned 0, expected {}", sc.ret)));
                        }
                        return Ok(());
                    }
                    "SO_LINGER" => {
                        let Arg::Struct(fields) = &val else {
                            return Err(
                                self.fail(i, "SO_LINGER takes {l_onoff=N, l_linger=N}".into())
                            );
                        };
                        let get = |names: [&str; 2]| {
                            fields
                                .iter()
                                .find(|(k, _)| names.contains(&k.as_str()))
                                .and_then(|(_, v)| int(v))
                        };
                        match (get(["l_onoff", "onoff"]), get(["l_linger", "linger"])) {
                            (Some(on), Some(secs)) => SockOpt::Linger { on: on != 0, secs },
                            _ => {
                                return Err(
                                    self.fail(i, "SO_LINGER takes {l_onoff=N, l_linger=N}".into())
                                );
                            }
                        }
                    }
                    name => {
                        let Some(n) = int(&val) else {
                            // An option this subset lacks is named as such
                            // before its value is read.
                            let known = INT_SOCKOPTS.contains(&name);
                            return Err(self.fail(
                                i,
                                if known {
                                    format!("{name}: expected a value `[N]`")
                                } else {
                                    format!("unsupported socket option `{}`", quote(name))
                                },
                            ));
                        };
                        match name {
                            "SO_RCVBUF" => SockOpt::RcvBuf(n),
                            "SO_SNDBUF" => SockOpt::SndBuf(n),
                            "SO_OOBINLINE" => SockOpt::OobInline(n != 0),
                            "TCP_NODELAY" => SockOpt::NoDelay(n != 0),
                            "TCP_LINGER2" => SockOpt::Linger2(n),
                            "TCP_REPAIR" => SockOpt::Repair(n != 0),
                            "TCP_USER_TIMEOUT" => SockOpt::UserTimeout(n),
                            "SO_KEEPALIVE" => SockOpt::KeepAlive(n != 0),
                            "TCP_KEEPIDLE" => SockOpt::KeepIdle(n),
                            "TCP_KEEPINTVL" => SockOpt::KeepIntvl(n),
                            "TCP_KEEPCNT" => SockOpt::KeepCnt(n),
                            "TCP_SYNCNT" => SockOpt::SynCnt(n),
                            "TCP_INQ" => SockOpt::Inq(n != 0),
                            other => {
                                return Err(self.fail(
                                    i,
                                    format!("unsupported socket option `{other}` (this subset has SO_LINGER, SO_RCVBUF, SO_SNDBUF, SO_OOBINLINE, SO_REUSEADDR, SO_KEEPALIVE, TCP_NODELAY, TCP_LINGER2, TCP_REPAIR, TCP_USER_TIMEOUT, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, TCP_SYNCNT, TCP_INQ)"),
                                ));
                            }
                        }
                    }
                };
                (f.name, Call::SetSockOpt(o))
            }
            "ioctl" => {
                let (_, f) = self.fd_arg(i, sc)?;
                let is_inq =
                    matches!(arg(1), Arg::Ident(v) if v[0] == "SIOCINQ" || v[0] == "FIONREAD");
                if !is_inq {
                    return Err(self.fail(
                        i,
                        format!(
                            "unsupported ioctl {} (this subset has SIOCINQ)",
                            quote(&format!("{:?}", arg(1)))
                        ),
                    ));
                }
                let want = match arg(2) {
                    Arg::List(l) => match l.first() {
                        Some(Arg::Int(n)) => Some(*n),
                        _ => None,
                    },
                    _ => None,
                };
                let out = self
                    .b()
                    .start(&f.name, &Call::Ioctl(Ioctl::InQ), &CallCtx::default());
                let Some(out) = out else {
                    return Err(self.fail(i, "ioctl(SIOCINQ) blocked".into()));
                };
                // The kernel writes the count into the int and returns 0.
                let (ret, errno, val) = if out.ret < 0 {
                    (-1, out.errno, None)
                } else {
                    (0, None, Some(out.ret))
                };
                if ret != sc.ret || (sc.ret == -1 && sc.errno.is_some() && errno != sc.errno) {
                    let got = match errno {
                        Some(e) => format!("-1 {e}"),
                        None => ret.to_string(),
                    };
                    return Err(self.fail(i, format!("returned {got}, expected {}", sc.ret)));
                }
                if let (Some(w), Some(v)) = (want, val)
                    && w != v
                {
                    return Err(self.fail(i, format!("SIOCINQ is [{v}], expected [{w}]")));
                }
                return Ok(());
            }
            "getsockopt" => {
                let (_, f) = self.fd_arg(i, sc)?;
                // SO_SNDBUF / SO_RCVBUF: sk_sndbuf / sk_rcvbuf, which
                // SO_MEMINFO reports too.
                if let Arg::Ident(v) = arg(2)
                    && (v[0] == "SO_SNDBUF" || v[0] == "SO_RCVBUF")
                {
                    let out = self.getsockopt_now(i, &f.name, GetOpt::MemInfo)?;
                    let Some(SockInfo::Mem(m)) = out.info.as_deref().copied() else {
                        return Err(self.fail(i, "getsockopt(SO_MEMINFO) reported nothing".into()));
                    };
                    let got = if v[0] == "SO_SNDBUF" {
                        m.sndbuf
                    } else {
                        m.rcvbuf
                    };
                    let want = match arg(3) {
                        Arg::List(l) => match l.first() {
                            Some(Arg::Int(n)) => Some(*n),
                            _ => None,
                        },
                        Arg::Ellipsis => None,
                        _ => None,
                    };
                    if out.ret != sc.ret {
                        return Err(
                            self.fail(i, format!("returned {}, expected {}", out.ret, sc.ret))
                        );
                    }
                    if let Some(w) = want
                        && w != got
                    {
                        return Err(self.fail(i, format!("{} is [{got}], expected [{w}]", v[0])));
                    }
                    return Ok(());
                }
                match arg(2) {
                    Arg::Ident(v) if v[0] == "TCP_INFO" => {}
                    other => return Err(self.fail(i, format!("unsupported getsockopt {} (this subset has TCP_INFO with {{tcpi_state=...}})", quote(&format!("{other:?}"))))),
                }
                let want = match arg(3) {
                    Arg::Struct(fields) => {
                        let mut want = None;
                        for (k, v) in fields {
                            match (k.as_str(), v) {
                                ("...", _) => {}
                                ("tcpi_state", Arg::Int(n)) => want = Some(n),
                                ("tcpi_state", Arg::Ident(n)) => match tcp_state_number(&n[0]) {
                                    Some(x) => want = Some(x),
                                    None => return Err(self.fail(i, format!("unknown TCP state `{}`", n[0]))),
                                },
                                (k, _) => return Err(self.fail(i, format!("unsupported TCP_INFO field `{k}` (this subset checks tcpi_state)"))),
                            }
                        }
                        want
                    }
                    _ => None,
                };
                let out = self
                    .b()
                    .start(&f.name, &Call::GetSockOpt(GetOpt::TcpInfo), &ctx);
                // getsockopt never sleeps, but a kernel task caught waiting
                // for its socket lock looks asleep for a moment: it gets the
                // tolerance to answer.
                let out = match out {
                    Some(o) => o,
                    None => {
                        let deadline = self.now().saturating_add(self.tol);
                        loop {
                            self.advance(deadline);
                            if let Some((o, _)) = self.b().take_done() {
                                break o;
                            }
                            if self.now() >= deadline {
                                return Err(self.fail(i, "getsockopt blocked".into()));
                            }
                        }
                    }
                };
                if out.ret != sc.ret {
                    return Err(self.fail(i, format!("returned {}, expected {}", out.ret, sc.ret)));
                }
                if let Some(w) = want {
                    let got = out.info.as_deref().and_then(|v| match v {
                        SockInfo::Tcp(t) => Some(t.state),
                        SockInfo::Mem(_) => None,
                    });
                    if got != Some(w) {
                        return Err(self.fail(
                            i,
                            format!(
                                "tcpi_state is {} ({}), expected {w} ({})",
                                got.map_or("unknown".into(), |g| g.to_string()),
                                got.and_then(tcp_state_name).unwrap_or("?".into()),
                                tcp_state_name(w).unwrap_or("?".into())
                            ),
                        ));
                    }
                }
                return Ok(());
            }
            other => {
                return Err(self.fail(
                    i,
                    format!("unsupported system call `{}` (this subset has socket, bind, listen, accept, connect, write, send, read, recv, close, shutdown, fcntl, setsockopt, getsockopt)", quote(other)),
                ));
            }
        };
        self.start_call(i, name, call, ctx, expect, end, new_fd)
    }

    #[allow(clippy::too_many_arguments)]
    fn start_call(
        &mut self,
        i: usize,
        name: String,
        call: Call,
        ctx: CallCtx,
        expect: (i64, Option<Errno>),
        end: Option<u64>,
        new_fd: Option<(i64, String)>,
    ) -> Result<(), Failure> {
        let start_us = self.now();
        let p = PendingCall {
            ev: i,
            expect,
            start_us,
            end,
            new_fd,
        };
        match self.b().start(&name, &call, &ctx) {
            // Returned without sleeping: it returned when it was called
            // (on the linux engine the answer's trip from the host process
            // takes real time that is not the call's).
            Some(o) => self.check_return(&p, &o, p.start_us),
            None => {
                self.pending = Some(p);
                Ok(())
            }
        }
    }
}

/// The setsockopt options of this subset that take an int `[N]`.
const INT_SOCKOPTS: &[&str] = &[
    "SO_RCVBUF",
    "SO_SNDBUF",
    "SO_OOBINLINE",
    "SO_KEEPALIVE",
    "TCP_NODELAY",
    "TCP_LINGER2",
    "TCP_REPAIR",
    "TCP_USER_TIMEOUT",
    "TCP_KEEPIDLE",
    "TCP_KEEPINTVL",
    "TCP_KEEPCNT",
    "TCP_SYNCNT",
    "TCP_INQ",
];

/// fcntl's O_RDWR and O_NONBLOCK (include/uapi/asm-generic/fcntl.h).
const O_RDWR: i64 = 0o2;
const O_NONBLOCK: i64 = 0o4000;

/// A buffer written `NULL`: the kernel answers EFAULT when it copies, after
/// its other checks; neither engine takes a bad pointer, so the script is
/// refused rather than run with a good buffer.
fn null_buffer(a: &Arg) -> Result<(), String> {
    match a {
        Arg::Ident(v) if v.len() == 1 && v[0] == "NULL" => Err(
            "unsupported: a NULL buffer (the kernel's EFAULT path; the engines take no bad pointers)"
                .into(),
        ),
        _ => Ok(()),
    }
}

/// The bytes a `recvmsg` asks for: the sum of its `msg_iov` lengths.
/// `msg_control` (TCP_CM_INQ, timestamps) is refused: no engine fills
/// control messages.
fn recvmsg_len(a: &Arg) -> Result<u32, String> {
    let Arg::Struct(fields) = a else {
        return Err(
            "recvmsg: expected `{msg_name(...)=..., msg_iov(N)=[{..., LEN}], msg_flags=0}`".into(),
        );
    };
    let mut len: Option<u32> = None;
    for (k, v) in fields {
        match (k.as_str(), v) {
            ("msg_name" | "...", _) => {}
            ("msg_iov", Arg::List(iovs)) => {
                let mut sum: u32 = 0;
                for iov in iovs {
                    let n = match iov {
                        Arg::Struct(f) => f.iter().find_map(|(k, v)| match (k.as_str(), v) {
                            ("iov_len" | "", Arg::Int(n)) => Some(*n),
                            _ => None,
                        }),
                        _ => None,
                    };
                    let n = n
                        .and_then(|n| u32::try_from(n).ok())
                        .filter(|n| *n <= MAX_CALL_BYTES)
                        .ok_or("recvmsg: each msg_iov entry is `{..., LEN}`")?;
                    sum = sum.saturating_add(n).min(MAX_CALL_BYTES);
                }
                len = Some(sum);
            }
            ("msg_flags", Arg::Int(0)) => {}
            ("msg_flags", _) => {
                return Err("recvmsg: this subset checks msg_flags=0 only".into());
            }
            ("msg_control", _) => {
                return Err("unsupported: recvmsg msg_control (control messages such as TCP_CM_INQ; no engine fills them)".into());
            }
            (k, _) => return Err(format!("recvmsg: unsupported field `{}`", quote(k))),
        }
    }
    len.ok_or_else(|| "recvmsg: no msg_iov".into())
}

/// `htons(N)` / `sin_port=htons(N)` in a sockaddr argument.
fn sockaddr_port(a: &Arg) -> Option<u16> {
    if let Arg::Struct(fields) = a {
        for (k, v) in fields {
            if k == "sin_port" {
                return match v {
                    Arg::Call(f, args) if f == "htons" => match args.first() {
                        Some(Arg::Int(n)) => u16::try_from(*n).ok(),
                        _ => None,
                    },
                    Arg::Int(n) => u16::try_from(*n).ok(),
                    _ => None,
                };
            }
        }
    }
    None
}

fn msg_flags(a: &Arg) -> Result<MsgFlags, String> {
    let mut f = MsgFlags::default();
    match a {
        Arg::Ellipsis | Arg::Int(0) => {}
        Arg::Ident(v) => {
            for x in v {
                match x.as_str() {
                    "MSG_OOB" => f.oob = true,
                    "MSG_PEEK" => f.peek = true,
                    "MSG_DONTWAIT" => f.dontwait = true,
                    "MSG_NOSIGNAL" => f.nosignal = true,
                    "0" => {}
                    other => {
                        return Err(format!(
                            "unsupported message flag `{other}` (MSG_OOB, MSG_PEEK, MSG_DONTWAIT, MSG_NOSIGNAL)"
                        ));
                    }
                }
            }
        }
        other => {
            return Err(format!(
                "expected message flags, found {}",
                quote(&format!("{other:?}"))
            ));
        }
    }
    Ok(f)
}

fn tcp_state_number(name: &str) -> Option<i64> {
    TcpState::from_c_name(name).map(|s| s as i64)
}

/// `TCP_CLOSE_WAIT` for the kernel's number 8.
fn tcp_state_name(n: i64) -> Option<String> {
    let s = TcpState::from_kernel(u32::try_from(n).ok()?)?;
    Some(format!("TCP_{s}"))
}

/// A sysctl of packetdrill's defaults.sh that finrst's table lacks, and
/// why writing it changes nothing on the drill engines (`None`: it
/// would).
fn sysctl_without_effect(key: &str, value: &str) -> Option<&'static str> {
    match (key.strip_prefix("net.ipv4.")?, value) {
        // Removed in Linux 4.15; the write fails and defaults.sh goes on.
        ("tcp_fack", _) => Some("tcp_fack no longer exists (Linux 4.15 removed FACK)"),
        ("tcp_congestion_control", "cubic") => {
            Some("cubic is the congestion control of both engines already")
        }
        // tcp_pacing_rate's ratios matter only to a socket that paces
        // (fq qdisc, BBR, SO_MAX_PACING_RATE): none does here.
        ("tcp_pacing_ss_ratio" | "tcp_pacing_ca_ratio", _) => {
            Some("pacing ratios matter only to a socket that paces, and none does here")
        }
        // The AccECN option is sent only on an AccECN connection
        // (tcp_ecn = 3 and a peer that asks).
        ("tcp_ecn_option", _) => Some("the AccECN option needs an AccECN connection"),
        // The TFO cookie key: drills reject TFO cookies.
        ("tcp_fastopen_key", _) => {
            Some("the Fast Open key only signs TFO cookies, which drills reject")
        }
        _ => None,
    }
}

/// A sysctl the model does not read, written with a value whose
/// behaviour the model has anyway: no ECN (the model negotiates none,
/// as tcp_ecn = 0), and any tcp_fastopen (the model has no TFO, and a
/// TFO option or MSG_FASTOPEN is rejected where a script uses one; a
/// plain SYN is treated the same whatever the flags).
fn model_default_behaviour(k: Sysctl, value: &str) -> bool {
    let v = crate::vocab::Sysctls::default();
    let mut w = v.clone();
    if w.set(k, value).is_err() {
        return false;
    }
    match k {
        Sysctl::TcpEcn => w.get(k) == "0",
        Sysctl::TcpFastopen => true,
        _ => w == v,
    }
}

/// A name of a `%{ }%` expression: `tcpi_FIELD` of the TCP_INFO the
/// engines report, a TCP state (`TCP_CLOSE_WAIT`), a congestion-avoidance
/// state (`TCP_CA_Open`...) or a `TCPI_OPT_*` bit (include/uapi/linux/tcp.h).
fn tcp_info_name(info: &crate::vocab::TcpInfo, n: &str) -> Result<i64, String> {
    if let Some(f) = n.strip_prefix("tcpi_") {
        return info
            .fields()
            .into_iter()
            .find(|(k, _)| *k == f)
            .map(|(_, v)| v)
            .ok_or_else(|| {
                format!(
                    "`{}` is not among the TCP_INFO fields the engines report ({})",
                    quote(n),
                    info.fields()
                        .iter()
                        .map(|(k, _)| format!("tcpi_{k}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
    }
    if let Some(s) = TcpState::from_c_name(n) {
        return Ok(s as i64);
    }
    const CA: [&str; 5] = ["Open", "Disorder", "CWR", "Recovery", "Loss"];
    if let Some(c) = n.strip_prefix("TCP_CA_")
        && let Some(v) = CA.iter().position(|x| *x == c)
    {
        return Ok(v as i64);
    }
    const OPT: [&str; 8] = [
        "TIMESTAMPS",
        "SACK",
        "WSCALE",
        "ECN",
        "ECN_SEEN",
        "SYN_DATA",
        "USEC_TS",
        "TFO_CHILD",
    ];
    if let Some(o) = n.strip_prefix("TCPI_OPT_")
        && let Some(b) = OPT.iter().position(|x| *x == o)
    {
        return Ok(1 << b);
    }
    Err(format!("unknown name `{}` in a `%{{ }}%` block", quote(n)))
}

/// The local address the model and the linux engine give the socket.
pub fn local_addr() -> Ipv4Addr {
    hosts()[0].addr
}

/// Why a drill did not pass.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// The file (or directory of scripts) could not be read.
    #[error("{file}: cannot read")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// The script is not valid (file:line:col).
    #[error(transparent)]
    Parse(#[from] PktError),
    /// The engine could not start (e.g. no root for linux).
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// An event failed; with the local ISN the run learned (for the
    /// relative numbers of the report).
    #[error("{}", .0.report(*.1))]
    Failed(Box<Failure>, u32),
}

/// Runs a parsed script on an engine made for it ([`hosts_for`] of
/// `env`).
pub fn run_on(
    pkt: &Pkt,
    e: &mut dyn Engine,
    tolerance_us: Option<u64>,
    env: Env,
) -> Result<Pass, DrillError> {
    let mut x = Executor::new(pkt, e, tolerance_us, hosts_for(pkt, env))?;
    let r = x.run();
    let isn = x.local_isn;
    r.map_err(|f| DrillError::Failed(Box::new(f), isn))
}

/// Parses a file and runs it on an engine, in packetdrill's setup
/// ([`Env::Packetdrill`]).
pub fn run_file(
    path: &str,
    engine: EngineKind,
    tolerance_us: Option<u64>,
) -> Result<Pass, DrillError> {
    run_file_in(path, engine, tolerance_us, Env::default())
}

/// Parses a file and runs it on an engine in `env`.
pub fn run_file_in(
    path: &str,
    engine: EngineKind,
    tolerance_us: Option<u64>,
    env: Env,
) -> Result<Pass, DrillError> {
    let pkt = parse::parse_file(path)?;
    run_pkt_in(&pkt, engine, tolerance_us, env)
}

/// Runs a parsed script on an engine, in packetdrill's setup.
pub fn run_pkt(
    pkt: &Pkt,
    engine: EngineKind,
    tolerance_us: Option<u64>,
) -> Result<Pass, DrillError> {
    run_pkt_in(pkt, engine, tolerance_us, Env::default())
}

/// Runs a parsed script on an engine in `env`.
pub fn run_pkt_in(
    pkt: &Pkt,
    engine: EngineKind,
    tolerance_us: Option<u64>,
    env: Env,
) -> Result<Pass, DrillError> {
    let mut e = crate::make_engine(engine, &hosts_for(pkt, env), &run_options(env))?;
    run_on(pkt, e.as_mut(), tolerance_us, env)
}

/// A .pkt file, or every .pkt file of a directory (sorted).
pub fn pkt_files(path: &str) -> Result<Vec<String>, DrillError> {
    let p = std::path::Path::new(path);
    let unreadable = |source| DrillError::Read {
        file: path.to_string(),
        source,
    };
    if p.is_dir() {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .map_err(unreadable)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "pkt"))
            .map(|p| p.display().to_string())
            .collect();
        v.sort();
        Ok(v)
    } else {
        // A file that is not there fails here, with the system's words.
        std::fs::metadata(p).map_err(unreadable)?;
        Ok(vec![path.to_string()])
    }
}
