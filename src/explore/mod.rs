//! `finrst explore`: every way a close race can end.
//!
//! One run of a script shows one interleaving; real timing picks among
//! many. Because the model is deterministic and fast, the schedule space
//! of a scenario can be walked: each schedule is itself a script (the
//! scenario with its `together { }` blocks rewritten), run on the model,
//! and reduced to its observable end — an [`Outcome`]: every call's result,
//! how each connection ended (FIN, RST, and from whom), each socket's state
//! once the steps are over, the counters. Schedules with the same outcome
//! form a class; each class keeps a minimal witness, an ordinary `.sim`
//! that reproduces it on `finrst run` (its calls carry the results seen and
//! it ends with `expect ... state` lines, so the run checks itself).
//!
//! # The schedule space
//!
//! For each top-level `together { }` block of calls (at most
//! [`MAX_BLOCK_CALLS`]; a larger one, or one inside `repeat`, runs as
//! written):
//! - **interleavings**: each host's calls stay in program order (a
//!   process makes its calls one after the other); the hosts' sequences
//!   are merged in every way;
//! - **positions**: between two consecutive calls, time may pass — none
//!   (the same instant), or until after the 1st, 2nd, ... delivery of a
//!   segment then in flight, at the middle of the interval up to the next
//!   one (the deliveries are read from a probe run that waits past a
//!   retransmission timeout: [`PROBE_GAP_US`]). The witness
//!   writes this as `wait Nus` inside the block, which the runner honours
//!   without settling the network;
//! - **delays** (`--delays`): the next segment one host sends, from a
//!   point of the block on, arrives late by one of [`DELAYS`] (one more
//!   link delay, just past the delayed-ACK timer, half an RTO, just past a
//!   retransmission): it is overtaken by what that host sends after it;
//! - **faults** (`--faults 1`): that segment is lost instead;
//! - **phase** (`--phases N`): the scenario starts `k/N` of a jiffy late,
//!   which moves every timer against the jiffy clock ([`crate::vocab::HZ`])
//!   and so which of two timers armed in one tick fires first.
//!
//! At most one delay or fault is applied per schedule (the bound is
//! printed).
//!
//! # Reduction
//!
//! Without reduction the offsets between calls come from a fixed grid
//! ([`GRID_US`]) and every interleaving is run. With it (the default):
//! - two calls of different hosts at the same instant commute (nothing is
//!   delivered between them, they touch different hosts' sockets): only
//!   the order that keeps the script's order is run at one instant; the
//!   other order starts a microsecond apart (before anything arrives), so
//!   that who sent first is still seen both ways;
//! - offsets that fall between the same two deliveries are one: only the
//!   middle of each interval between deliveries is run (a call's effect
//!   depends on what has arrived, not on the microsecond).
//!
//! Both are counted; [`Report::pruned`] is how many grid schedules the
//! reduction stands for. Whether it loses a class is measured by running
//! both (`tests/explore.rs`, the benchmark).

mod props;

pub use props::{Pred, Property};

use crate::engine::RunOptions;
use crate::script::{
    CallStep, Expect, Expected, Fault, Script, ScriptError, Step, StepKind, duration_text,
};
use crate::trace::Trace;
use crate::vocab::{Counter, EngineKind, TcpState};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// A `together` block of more calls than this is run as written: the
/// interleavings of n calls grow as n!, and the walk recurses once per
/// call.
pub const MAX_BLOCK_CALLS: usize = 8;

/// The verbs a property may name (as [`Call::verb`] spells them).
const VERBS: [&str; 13] = [
    "socket",
    "listen",
    "connect",
    "accept",
    "send",
    "recv",
    "shutdown",
    "close",
    "exit",
    "poll",
    "setsockopt",
    "getsockopt",
    "disconnect",
];

/// The probe run's offset between two calls: past the first
/// retransmission timeout (`TCP_RTO_MIN`, 200 ms) and one jiffy, so that
/// every delivery a retransmission causes is among the offsets explored.
pub const PROBE_GAP_US: u64 = crate::model::sock::TCP_RTO_MIN * JIFFY_US + 2 * JIFFY_US;

const JIFFY_US: u64 = crate::model::sock::JIFFY_US;

/// The extra one-way delays `--delays` gives a segment, with their names:
/// one more link delay; just past the delayed-ACK timer (`TCP_DELACK_MIN`,
/// rounded up to the jiffy and one more); half the minimum RTO; just past
/// a retransmission (`TCP_RTO_MIN` and two jiffies).
pub const DELAYS: [(u64, &str); 4] = [
    (crate::model::LINK_DELAY, "one more link delay"),
    (
        crate::model::sock::TCP_DELACK_MIN * JIFFY_US + 2 * JIFFY_US,
        "just past the delayed-ACK timer",
    ),
    (
        crate::model::sock::TCP_RTO_MIN * JIFFY_US / 2,
        "half an RTO",
    ),
    (PROBE_GAP_US, "just past a retransmission"),
];

/// The fixed grid of offsets between two calls the unreduced space runs:
/// every 5 µs over the first 100 µs (a few link delays), then around the
/// delayed-ACK and retransmission timers.
pub const GRID_US: [u64; 29] = [
    0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 100, 1_000,
    10_000, 39_000, 48_000, 100_000, 199_000, 208_000, 300_000,
];

/// What to explore.
#[derive(Clone, Debug)]
pub struct Bounds {
    /// Single faults: the loss of one segment (`--faults 1`); 0 for none.
    pub faults: u32,
    /// One segment delayed by each of [`DELAYS`].
    pub delays: bool,
    /// Start phases against the jiffy clock (1: only the script's own).
    pub phases: u32,
    /// Partial-order reduction (see the module documentation).
    pub reduction: bool,
    /// At most this many deliveries a call may fall after.
    pub max_positions: usize,
    /// Stop after this many schedules (the report says it stopped).
    pub max_schedules: u64,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            faults: 0,
            delays: false,
            phases: 1,
            reduction: true,
            max_positions: 8,
            max_schedules: 100_000,
        }
    }
}

impl Bounds {
    /// The bound in words, for the report.
    pub fn describe(&self) -> String {
        let mut v = vec![format!(
            "interleavings of each together {{ }} block, a call after up to {} deliveries",
            self.max_positions
        )];
        if self.delays {
            v.push(format!(
                "one segment delayed by {}",
                DELAYS
                    .iter()
                    .map(|(d, n)| format!("{} ({n})", duration_text(*d)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if self.faults > 0 {
            v.push("one segment lost".into());
        }
        if self.phases > 1 {
            v.push(format!("{} start phases per jiffy", self.phases));
        }
        v.push(if self.reduction {
            "with reduction".into()
        } else {
            "without reduction (fixed grid of offsets)".into()
        });
        v.join("; ")
    }
}

/// One call's result in an outcome.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallResult {
    /// The host's program makes its calls in order; a schedule only
    /// interleaves the hosts. This is the call's place in its host's
    /// order (so that a witness, whose lines are not the scenario's,
    /// compares with it).
    pub host: String,
    pub n: u32,
    pub sock: String,
    pub verb: String,
    /// `0`, `-1 ECONNRESET`, `EPOLLIN|EPOLLOUT`.
    pub result: String,
}

/// The observable end of one schedule: two schedules with equal outcomes
/// are in one class.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Outcome {
    /// Every call's result, by script line.
    pub calls: Vec<CallResult>,
    /// Per connection: `client:40000 server:9999: client F, server R`
    /// (the first FIN and first RST of each side, in the order sent).
    pub endings: Vec<String>,
    /// Each socket's state once the steps are over: (host, socket, state).
    pub states: Vec<(String, String, TcpState)>,
    /// Counter changes over the whole run: (host, counter, change).
    pub counters: Vec<(String, Counter, i64)>,
}

impl Outcome {
    /// The fields in which `self` differs from `other`, in words.
    pub fn differences(&self, other: &Outcome) -> Vec<String> {
        let mut v = Vec::new();
        let calls = |o: &Outcome| -> BTreeMap<(String, u32, String), String> {
            o.calls
                .iter()
                .map(|c| ((c.host.clone(), c.n, c.verb.clone()), c.result.clone()))
                .collect()
        };
        let (a, b) = (calls(self), calls(other));
        for (k, r) in &a {
            let o = b.get(k).map_or("(not made)", String::as_str);
            if o != r {
                v.push(format!("{}'s call {} ({}): {r} vs {o}", k.0, k.1 + 1, k.2));
            }
        }
        if self.endings != other.endings {
            v.push(format!(
                "endings: {} vs {}",
                self.endings.join("; "),
                other.endings.join("; ")
            ));
        }
        if self.states != other.states {
            v.push(format!(
                "states: {} vs {}",
                states_text(&self.states),
                states_text(&other.states)
            ));
        }
        if self.counters != other.counters {
            v.push(format!(
                "counters: {} vs {}",
                counters_text(&self.counters),
                counters_text(&other.counters)
            ));
        }
        v
    }
}

fn states_text(s: &[(String, String, TcpState)]) -> String {
    s.iter()
        .map(|(h, k, st)| format!("{h}.{k} {st}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn counters_text(c: &[(String, Counter, i64)]) -> String {
    if c.is_empty() {
        return "none".into();
    }
    c.iter()
        .map(|(h, n, v)| format!("{h} {n}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A run reduced to what classes and properties look at.
#[derive(Clone, Debug)]
pub struct Summary {
    pub outcome: Outcome,
    /// (src, dst, tcpdump flags) of every segment sent.
    pub flags_seen: BTreeSet<(String, String, String)>,
}

/// Reduces a trace (run with [`RunOptions::keep_step_times`]) to its
/// summary. `verbs` gives each script line's call verb.
pub fn summarize(trace: &Trace, verbs: &BTreeMap<u32, &'static str>) -> Summary {
    // Per host, in the order made (a schedule interleaves the hosts).
    let mut made: BTreeMap<&str, u32> = BTreeMap::new();
    let mut calls: Vec<CallResult> = trace
        .calls
        .iter()
        .map(|c| {
            let n = made.entry(c.host.as_str()).or_insert(0);
            *n += 1;
            CallResult {
                host: c.host.clone(),
                n: *n - 1,
                sock: c.sock.clone(),
                verb: verbs.get(&c.line).copied().unwrap_or("call").to_string(),
                result: c.result_text(),
            }
        })
        .collect();
    let order = |h: &str| trace.hosts.iter().position(|x| x.name == h);
    calls.sort_by_key(|c| (order(&c.host), c.n));
    let name_of = |a: Ipv4Addr| {
        trace
            .hosts
            .iter()
            .find(|h| h.addr == a)
            .map_or_else(|| a.to_string(), |h| h.name.clone())
    };
    // Connections in order of their first segment.
    type End = (Ipv4Addr, u16);
    let mut conns: Vec<(End, End, Vec<String>)> = Vec::new();
    let mut flags_seen = BTreeSet::new();
    for s in &trace.segments {
        flags_seen.insert((s.src.to_string(), s.dst.to_string(), s.flags.tcpdump()));
        let a = (s.src_addr, s.sport);
        let b = (s.dst_addr, s.dport);
        let key = if a <= b { (a, b) } else { (b, a) };
        let i = match conns.iter().position(|c| (c.0, c.1) == key) {
            Some(i) => i,
            None => {
                conns.push((key.0, key.1, Vec::new()));
                conns.len() - 1
            }
        };
        for (has, letter) in [(s.flags.fin(), "F"), (s.flags.rst(), "R")] {
            if has {
                let ev = format!("{} {letter}", s.src);
                if !conns[i].2.contains(&ev) {
                    conns[i].2.push(ev);
                }
            }
        }
    }
    let endings = conns
        .into_iter()
        .map(|(a, b, ev)| {
            format!(
                "{}:{} {}:{}: {}",
                name_of(a.0),
                a.1,
                name_of(b.0),
                b.1,
                if ev.is_empty() {
                    "open".to_string()
                } else {
                    ev.join(", ")
                }
            )
        })
        .collect();
    // The state of each socket when the steps were over (the run's last
    // step time is when `finish` began).
    let end = trace.step_times_us.last().copied().unwrap_or(trace.end_us);
    let mut last: BTreeMap<(String, String), TcpState> = BTreeMap::new();
    for c in &trace.states {
        if c.time_us <= end {
            last.insert((c.host.clone(), c.sock.clone()), c.to);
        } else {
            last.entry((c.host.clone(), c.sock.clone()))
                .or_insert(c.from);
        }
    }
    let states = last.into_iter().map(|((h, s), st)| (h, s, st)).collect();
    let counters = trace
        .counters
        .iter()
        .flat_map(|(h, m)| m.iter().map(move |(n, v)| (h.clone(), *n, *v)))
        .collect();
    Summary {
        outcome: Outcome {
            calls,
            endings,
            states,
            counters,
        },
        flags_seen,
    }
}

/// A perturbation of one segment.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Perturb {
    None,
    /// The next segment `host` sends from `point` on is late by `DELAYS[d]`.
    Delay {
        host: usize,
        point: usize,
        d: usize,
    },
    /// ... or lost.
    Drop {
        host: usize,
        point: usize,
    },
}

/// The choices for one `together` block.
#[derive(Clone, Debug)]
struct BlockPlan {
    /// The block's calls (indices into its call list) in the order made.
    order: Vec<usize>,
    /// Offsets (µs) before each call after the first, with their words.
    gaps: Vec<(u64, String)>,
    perturb: Perturb,
}

/// One schedule: a start phase and a plan per explored block.
#[derive(Clone, Debug)]
struct Plan {
    phase_us: u64,
    blocks: Vec<BlockPlan>,
}

/// A top-level `together` block of calls the exploration rewrites.
struct Block {
    /// Where it stands in the script's steps.
    index: usize,
    calls: Vec<Step>,
    /// Each call's host index.
    hosts: Vec<usize>,
}

/// One outcome class.
#[derive(Clone, Debug)]
pub struct Class {
    pub outcome: Outcome,
    /// How many schedules reach it.
    pub schedules: u64,
    /// The conditions, one line per (phase, perturbation, order), the
    /// offsets that lead here.
    pub conditions: Vec<String>,
    /// The minimal witness, as `.sim` text.
    pub witness: String,
    /// Whether the witness, run as a parsed script, reached this class.
    pub reproduced: bool,
    /// How far (µs) a call of the witness may land from its offset and
    /// stay between the same two deliveries (`None`: no call is placed
    /// after a delivery). A real-time engine needs more than its call
    /// overhead and timer slack here ([`FINE_TIMING_US`]).
    pub margin_us: Option<u64>,
    cost: (u32, u64, u64),
}

/// A property that did not hold, and the witness of a schedule that
/// breaks it.
#[derive(Clone, Debug)]
pub struct Violation {
    pub property: Property,
    pub schedules: u64,
    pub witness: String,
}

/// What an exploration found.
#[derive(Clone, Debug)]
pub struct Report {
    pub scenario: String,
    pub bounds: String,
    /// Schedules run.
    pub run: u64,
    /// Further runs that only read where deliveries fall.
    pub probes: u64,
    /// Schedules of the unreduced space the reduction did not run
    /// (estimated as the grid's size over the same choices, minus `run`).
    pub pruned: u64,
    /// The space without reduction (grid offsets, every interleaving).
    pub unreduced: u64,
    /// The bound on schedules cut the walk short.
    pub truncated: bool,
    /// Classes, the most frequent first.
    pub classes: Vec<Class>,
    pub properties: Vec<Property>,
    pub violations: Vec<Violation>,
    /// Seconds the walk took.
    pub seconds: f64,
}

/// How far a schedule is from the script as written: changes made, µs
/// of offsets added, and the schedule's number (the first found wins).
type Cost = (u32, u64, u64);

/// A scenario ready to explore: its script (expectations stripped) and
/// its properties.
pub struct Explorer {
    base: Script,
    blocks: Vec<Block>,
    verbs: BTreeMap<u32, &'static str>,
    properties: Vec<Property>,
    bounds: Bounds,
    opts: RunOptions,
    // Walk state.
    classes: BTreeMap<Outcome, Class>,
    order: Vec<Outcome>,
    run: u64,
    /// Probe runs (reading where deliveries fall) that were not
    /// themselves schedules.
    probes: u64,
    /// The last probe: its script's text and trace (the schedule that
    /// makes the next call after everything in flight is the same run).
    probe_cache: Option<(String, Trace)>,
    unreduced: u64,
    truncated: bool,
    /// Per property broken: schedules, the witness's cost and text.
    violated: BTreeMap<usize, (u64, Cost, String)>,
    /// Half the width of each interval offset (by its words): how far a
    /// real-time engine may stray from the witness's offset and stay in
    /// the interval.
    margins: BTreeMap<String, u64>,
    /// Per (phase, perturbation, order) key: how many offset choices.
    key_sizes: BTreeMap<String, u64>,
    /// Per class: key -> offsets reaching it.
    conds: BTreeMap<Outcome, BTreeMap<String, Vec<String>>>,
}

/// Reads a scenario file and its property lines.
pub fn load(path: &str) -> Result<(Script, Vec<Property>), crate::script::LoadError> {
    let script = crate::script::parse_file(path)?;
    let text = std::fs::read_to_string(path).map_err(|source| crate::script::LoadError::Read {
        file: path.into(),
        source,
    })?;
    let props = props::parse(path, &text, &script.hosts)?;
    Ok((script, props))
}

/// The property lines of a script's text (`expect always|never ...`).
pub fn parse_properties(
    file: &str,
    text: &str,
    hosts: &[String],
) -> Result<Vec<Property>, ScriptError> {
    props::parse(file, text, hosts)
}

/// Removes what one schedule's run must not check: `expect` steps,
/// `when policy` blocks, the results written on calls.
fn strip(steps: &[Step]) -> Vec<Step> {
    steps
        .iter()
        .filter_map(|s| {
            let kind = match &s.kind {
                StepKind::Expect(_) | StepKind::When { .. } => return None,
                StepKind::Call(c) => StepKind::Call(CallStep {
                    expected: None,
                    ..c.clone()
                }),
                StepKind::Together(v) => StepKind::Together(strip(v)),
                StepKind::Repeat { count, steps } => StepKind::Repeat {
                    count: *count,
                    steps: strip(steps),
                },
                k => k.clone(),
            };
            Some(Step { kind, ..s.clone() })
        })
        .collect()
}

fn collect_verbs(steps: &[Step], out: &mut BTreeMap<u32, &'static str>) {
    for s in steps {
        match &s.kind {
            StepKind::Call(c) => {
                out.insert(s.line, c.call.verb());
            }
            StepKind::Together(v) | StepKind::Repeat { steps: v, .. } => collect_verbs(v, out),
            _ => {}
        }
    }
}

fn synthetic(line: u32, kind: StepKind) -> Step {
    Step {
        line,
        col: 1,
        text: String::new(),
        kind,
    }
}

impl Explorer {
    pub fn new(script: &Script, properties: Vec<Property>, bounds: Bounds) -> Explorer {
        let mut base = script.clone();
        base.steps = strip(&script.steps);
        let mut verbs = BTreeMap::new();
        collect_verbs(&base.steps, &mut verbs);
        let blocks = base
            .steps
            .iter()
            .enumerate()
            .filter_map(|(index, s)| match &s.kind {
                StepKind::Together(v)
                    if v.len() <= MAX_BLOCK_CALLS
                        && v.iter().all(|x| matches!(x.kind, StepKind::Call(_))) =>
                {
                    let hosts = v
                        .iter()
                        .map(|x| match &x.kind {
                            StepKind::Call(c) => base.host_index(&c.host).unwrap_or(0),
                            _ => 0,
                        })
                        .collect();
                    Some(Block {
                        index,
                        calls: v.clone(),
                        hosts,
                    })
                }
                _ => None,
            })
            .collect();
        Explorer {
            base,
            blocks,
            verbs,
            properties,
            bounds,
            opts: RunOptions {
                keep_payload: false,
                keep_step_times: true,
                ..RunOptions::default()
            },
            classes: BTreeMap::new(),
            order: Vec::new(),
            run: 0,
            probes: 0,
            probe_cache: None,
            unreduced: 0,
            truncated: false,
            violated: BTreeMap::new(),
            margins: BTreeMap::new(),
            key_sizes: BTreeMap::new(),
            conds: BTreeMap::new(),
        }
    }

    /// The script of a schedule.
    fn script_of(&self, plan: &Plan) -> Script {
        let mut s = self.base.clone();
        for (b, bp) in self.blocks.iter().zip(&plan.blocks) {
            let mut inner = Vec::new();
            let line = b.calls.first().map_or(0, |c| c.line);
            for (pos, &ci) in bp.order.iter().enumerate() {
                if pos > 0 && bp.gaps[pos - 1].0 > 0 {
                    inner.push(synthetic(
                        line,
                        StepKind::Wait {
                            us: bp.gaps[pos - 1].0,
                        },
                    ));
                }
                self.push_perturb(&mut inner, &bp.perturb, pos, line);
                inner.push(b.calls[ci].clone());
            }
            self.push_perturb(&mut inner, &bp.perturb, bp.order.len(), line);
            s.steps[b.index].kind = StepKind::Together(inner);
        }
        if plan.phase_us > 0 {
            s.steps
                .insert(0, synthetic(0, StepKind::Wait { us: plan.phase_us }));
        }
        s
    }

    /// The script a witness is written from: a call made a microsecond
    /// after another host's, before anything arrives, is written at the
    /// same instant in that order (`together` delivers nothing between
    /// its calls on every engine, which the kernel can follow; a
    /// microsecond it cannot). The witness is run again to check it
    /// reproduces its class.
    fn witness_script(&self, plan: &Plan) -> Script {
        let mut p = plan.clone();
        for bp in &mut p.blocks {
            for g in &mut bp.gaps {
                if g.0 == 1 {
                    g.0 = 0;
                }
            }
        }
        self.script_of(&p)
    }

    fn push_perturb(&self, inner: &mut Vec<Step>, p: &Perturb, pos: usize, line: u32) {
        let (host, fault) = match *p {
            Perturb::Delay { host, point, d } if point == pos => (
                host,
                Fault::Delay {
                    us: DELAYS[d].0,
                    count: 1,
                },
            ),
            Perturb::Drop { host, point } if point == pos => (host, Fault::Drop { count: 1 }),
            _ => return,
        };
        inner.push(synthetic(
            line,
            StepKind::Fault {
                host: self.base.hosts[host].clone(),
                fault,
            },
        ));
    }

    fn run_script(&self, s: &Script) -> Option<Trace> {
        crate::run(s, EngineKind::Model, &self.opts).ok()
    }

    /// Explores the whole space and reports.
    pub fn explore(mut self) -> Report {
        let t0 = std::time::Instant::now();
        let phases: Vec<u64> = (0..self.bounds.phases.max(1) as u64)
            .map(|k| k * JIFFY_US / self.bounds.phases.max(1) as u64)
            .collect();
        for &phase_us in &phases {
            let plan = Plan {
                phase_us,
                blocks: Vec::new(),
            };
            self.walk_blocks(plan);
        }
        // Witnesses: re-parsed and run, so that what is printed is what
        // reproduces the class.
        let mut classes: Vec<Class> = std::mem::take(&mut self.classes).into_values().collect();
        for c in &mut classes {
            let key_conds = self.conds.remove(&c.outcome).unwrap_or_default();
            c.conditions = key_conds
                .into_iter()
                .map(|(key, offs)| {
                    let all = self.key_sizes.get(&key).copied().unwrap_or(0);
                    if offs.iter().all(String::is_empty) {
                        key
                    } else if offs.len() as u64 == all && all > 1 {
                        format!("{key}: at every offset explored")
                    } else {
                        format!("{key}: {}", condense(&offs))
                    }
                })
                .collect();
            c.reproduced = match crate::script::parse(&self.base.path, &c.witness) {
                Ok(w) => {
                    let mut verbs = BTreeMap::new();
                    collect_verbs(&w.steps, &mut verbs);
                    self.run_script(&w)
                        .is_some_and(|t| summarize(&t, &verbs).outcome == c.outcome)
                }
                Err(_) => false,
            };
        }
        classes.sort_by(|a, b| b.schedules.cmp(&a.schedules).then(a.cost.cmp(&b.cost)));
        let violations = self
            .violated
            .iter()
            .map(|(i, (n, _, w))| Violation {
                property: self.properties[*i].clone(),
                schedules: *n,
                witness: w.clone(),
            })
            .collect();
        let run = self.run;
        Report {
            scenario: self.base.name(),
            bounds: self.bounds.describe(),
            run,
            probes: self.probes,
            pruned: self.unreduced.saturating_sub(run),
            unreduced: self.unreduced,
            truncated: self.truncated,
            classes,
            properties: self.properties.clone(),
            violations,
            seconds: t0.elapsed().as_secs_f64(),
        }
    }

    /// Chooses a plan for each block in turn, then runs the schedule.
    fn walk_blocks(&mut self, plan: Plan) {
        if self.truncated {
            return;
        }
        let i = plan.blocks.len();
        if i == self.blocks.len() {
            if i == 0 {
                self.unreduced += 1;
                self.run_plan(&plan, String::new(), String::new());
            }
            return;
        }
        for perturb in self.perturbations(i) {
            let interleavings = self.interleavings(i);
            // The unreduced space: every interleaving at every grid offset.
            let n = self.blocks[i].calls.len().saturating_sub(1) as u32;
            self.unreduced = self.unreduced.saturating_add(
                (interleavings.len() as u64)
                    .saturating_mul((GRID_US.len() as u64).saturating_pow(n)),
            );
            for order in interleavings {
                let bp = BlockPlan {
                    order,
                    gaps: Vec::new(),
                    perturb: perturb.clone(),
                };
                self.walk_gaps(&plan, bp);
            }
        }
    }

    fn perturbations(&self, i: usize) -> Vec<Perturb> {
        let b = &self.blocks[i];
        let mut v = vec![Perturb::None];
        let hosts: BTreeSet<usize> = (0..self.base.hosts.len()).collect();
        for point in 0..=b.calls.len() {
            for &host in &hosts {
                if self.bounds.delays {
                    for d in 0..DELAYS.len() {
                        v.push(Perturb::Delay { host, point, d });
                    }
                }
                if self.bounds.faults > 0 {
                    v.push(Perturb::Drop { host, point });
                }
            }
        }
        v
    }

    /// Every merge of the hosts' call sequences (program order kept).
    fn interleavings(&self, i: usize) -> Vec<Vec<usize>> {
        let b = &self.blocks[i];
        let mut per_host: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (ci, h) in b.hosts.iter().enumerate() {
            per_host.entry(*h).or_default().push(ci);
        }
        let seqs: Vec<Vec<usize>> = per_host.into_values().collect();
        let mut out = Vec::new();
        let mut idx = vec![0usize; seqs.len()];
        let mut cur = Vec::new();
        merge(&seqs, &mut idx, &mut cur, &mut out);
        out
    }

    /// Chooses the offsets of a block's calls one after the other.
    fn walk_gaps(&mut self, plan: &Plan, bp: BlockPlan) {
        if self.truncated {
            return;
        }
        let i = plan.blocks.len();
        let n = bp.order.len();
        let k = bp.gaps.len() + 1; // the position whose offset is chosen
        if k >= n {
            let mut p = plan.clone();
            p.blocks.push(bp);
            if p.blocks.len() == self.blocks.len() {
                let (key, off) = self.describe(&p);
                self.run_plan(&p, key, off);
            } else {
                self.walk_blocks(p);
            }
            return;
        }
        let hosts = &self.blocks[i].hosts;
        let (a, b) = (bp.order[k - 1], bp.order[k]);
        // Two calls of different hosts at one instant commute (nothing is
        // delivered between them; each touches its own host): run only
        // the order that keeps the script's.
        let zero_ok = !self.bounds.reduction || hosts[a] == hosts[b] || a < b;
        let offsets: Vec<(u64, String)> = if self.bounds.reduction {
            let mut v = Vec::new();
            if zero_ok {
                v.push((0, "+0 (the same instant)".to_string()));
            } else {
                // The same instant in the other order is the script's
                // order run; what stays of this order before the first
                // delivery is a call a microsecond later (then the order
                // the segments leave in is this one's).
                v.push((1, "+1us (before anything arrives)".to_string()));
            }
            v.extend(self.positions(plan, &bp));
            v
        } else {
            GRID_US
                .iter()
                .map(|&g| (g, format!("+{}", duration_text(g))))
                .collect()
        };
        for off in offsets {
            let mut next = bp.clone();
            next.gaps.push(off);
            self.walk_gaps(plan, next);
        }
    }

    /// The offsets in the interval after each delivery in flight once the
    /// calls so far are made, read from a probe run that makes the next call
    /// [`PROBE_GAP_US`] later.
    fn positions(&mut self, plan: &Plan, bp: &BlockPlan) -> Vec<(u64, String)> {
        let i = plan.blocks.len();
        let k = bp.gaps.len() + 1;
        let mut probe = bp.clone();
        probe.gaps.push((PROBE_GAP_US, String::new()));
        while probe.gaps.len() + 1 < probe.order.len() {
            probe.gaps.push((PROBE_GAP_US, String::new()));
        }
        let mut p = plan.clone();
        p.blocks.push(probe);
        for j in i + 1..self.blocks.len() {
            p.blocks.push(self.default_plan(j));
        }
        let script = self.script_of(&p);
        self.probes += 1;
        let Some(trace) = self.run_script(&script) else {
            return Vec::new();
        };
        self.probe_cache = Some((script.to_string(), trace.clone()));
        // When the call before the gap was made: the last call record of
        // that step's line made before the probe's gap.
        let prev = &self.blocks[i].calls[bp.order[k - 1]];
        let Some(t_prev) = trace
            .calls
            .iter()
            .filter(|c| c.line == prev.line)
            .map(|c| c.time_us)
            .next_back()
        else {
            return Vec::new();
        };
        let delayed = match bp.perturb {
            Perturb::Delay { host, d, .. } => Some((self.base.hosts[host].clone(), DELAYS[d].0)),
            _ => None,
        };
        let mut first_from_delayed = true;
        let mut arrivals: Vec<(u64, String)> = Vec::new();
        for s in &trace.segments {
            if s.lost || s.time_us < t_prev {
                continue;
            }
            let mut at = s.time_us + crate::model::LINK_DELAY;
            if let Some((h, d)) = &delayed
                && &*s.src == h
                && first_from_delayed
            {
                first_from_delayed = false;
                at += d;
            }
            if at > t_prev && at - t_prev < PROBE_GAP_US {
                arrivals.push((
                    at - t_prev,
                    format!("{} > {} {}", s.src, s.dst, s.flags.tcpdump()),
                ));
            }
        }
        arrivals.sort();
        // Distinct arrival times, with what arrives at each.
        let mut times: Vec<(u64, String)> = Vec::new();
        for (off, what) in arrivals {
            match times.last_mut() {
                Some(last) if last.0 == off => {
                    last.1.push_str(" and ");
                    last.1.push_str(&what);
                }
                _ => times.push((off, what)),
            }
        }
        // A call in the interval after each arrival: at its middle (up to
        // the next arrival, or the probe's offset), not just after the
        // arrival. On the model every point of the interval is the same
        // run; a real-time engine, whose calls and timers land
        // milliseconds off, gets the widest margin on both sides.
        let mut v: Vec<(u64, String)> = Vec::new();
        for (i, (t, what)) in times.iter().enumerate().take(self.bounds.max_positions) {
            let next = times.get(i + 1).map_or(PROBE_GAP_US, |n| n.0);
            let g = (t + (next - t) / 2).max(t + 1);
            // In words, the interval: the call lands in it.
            let words = format!(
                "+{}..{} (after {what} arrives)",
                duration_text(*t),
                duration_text(next)
            );
            self.margins.insert(words.clone(), (next - t) / 2);
            v.push((g, words));
        }
        // And the probe's own offset: after everything in flight, a
        // retransmission timeout included.
        v.push((
            PROBE_GAP_US,
            format!(
                "+{} (after a retransmission timeout)",
                duration_text(PROBE_GAP_US)
            ),
        ));
        v
    }

    /// A block as the script writes it: script order, one instant.
    fn default_plan(&self, i: usize) -> BlockPlan {
        let n = self.blocks[i].calls.len();
        BlockPlan {
            order: (0..n).collect(),
            gaps: vec![(0, String::new()); n.saturating_sub(1)],
            perturb: Perturb::None,
        }
    }

    /// (phase, perturbation, order) in words, and the offsets in words.
    fn describe(&self, plan: &Plan) -> (String, String) {
        let mut key = Vec::new();
        if self.bounds.phases > 1 {
            key.push(format!("start +{}", duration_text(plan.phase_us)));
        }
        let mut offs = Vec::new();
        for (b, bp) in self.blocks.iter().zip(&plan.blocks) {
            match bp.perturb {
                Perturb::None => {}
                Perturb::Delay { host, point, d } => key.push(format!(
                    "{}'s next segment {} late by {} ({})",
                    self.base.hosts[host],
                    self.point_words(b, bp, point),
                    duration_text(DELAYS[d].0),
                    DELAYS[d].1
                )),
                Perturb::Drop { host, point } => key.push(format!(
                    "{}'s next segment {} lost",
                    self.base.hosts[host],
                    self.point_words(b, bp, point)
                )),
            }
            let names: Vec<String> = bp
                .order
                .iter()
                .map(|&ci| call_words(&b.calls[ci]))
                .collect();
            if names.len() > 1 {
                key.push(names.join(", then "));
            }
            offs.extend(bp.gaps.iter().map(|g| g.1.clone()));
        }
        if key.is_empty() {
            key.push("as written".into());
        }
        (key.join("; "), offs.join(", "))
    }

    fn point_words(&self, b: &Block, bp: &BlockPlan, point: usize) -> String {
        match bp.order.get(point) {
            Some(&ci) if point == 0 => format!("(from before `{}`)", call_words(&b.calls[ci])),
            Some(&ci) => format!("(from just before `{}`)", call_words(&b.calls[ci])),
            None => "(after the block's calls)".into(),
        }
    }

    fn cost(plan: &Plan) -> (u32, u64, u64) {
        let mut changes = 0u32;
        let mut total = plan.phase_us;
        if plan.phase_us > 0 {
            changes += 1;
        }
        for bp in &plan.blocks {
            if bp.perturb != Perturb::None {
                changes += 2;
            }
            if bp.order.windows(2).any(|w| w[0] > w[1]) {
                changes += 1;
            }
            for g in &bp.gaps {
                if g.0 > 0 {
                    changes += 1;
                    total += g.0;
                }
            }
        }
        (changes, total, 0)
    }

    fn run_plan(&mut self, plan: &Plan, key: String, offs: String) {
        if self.run >= self.bounds.max_schedules {
            self.truncated = true;
            return;
        }
        self.run += 1;
        let script = self.script_of(plan);
        let cached = match self.probe_cache.take() {
            Some((text, t)) if text == script.to_string() => {
                // The probe was this schedule: it was run once.
                self.probes -= 1;
                Some(t)
            }
            _ => None,
        };
        let Some(trace) = cached.or_else(|| self.run_script(&script)) else {
            return;
        };
        let summary = summarize(&trace, &self.verbs);
        let desc = if offs.is_empty() {
            key.clone()
        } else {
            format!("{key}: {offs}")
        };
        let mut cost = Self::cost(plan);
        cost.2 = self.run;
        *self.key_sizes.entry(key.clone()).or_insert(0) += 1;
        self.conds
            .entry(summary.outcome.clone())
            .or_default()
            .entry(key)
            .or_default()
            .push(offs);
        let mut witness_needed = false;
        match self.classes.get_mut(&summary.outcome) {
            Some(c) => {
                c.schedules += 1;
                if cost < c.cost {
                    witness_needed = true;
                }
            }
            None => {
                self.order.push(summary.outcome.clone());
                witness_needed = true;
            }
        }
        let mut witness = None;
        if witness_needed {
            let w = witness_text(&self.witness_script(plan), &trace, &summary.outcome, &desc);
            let c = self
                .classes
                .entry(summary.outcome.clone())
                .or_insert_with(|| Class {
                    outcome: summary.outcome.clone(),
                    schedules: 1,
                    conditions: Vec::new(),
                    witness: String::new(),
                    reproduced: false,
                    margin_us: None,
                    cost,
                });
            c.cost = cost;
            c.margin_us = plan
                .blocks
                .iter()
                .flat_map(|b| b.gaps.iter())
                .filter_map(|g| self.margins.get(&g.1).copied())
                .min();
            c.witness = w.clone();
            witness = Some(w);
        }
        let broken: Vec<usize> = (0..self.properties.len())
            .filter(|&pi| self.properties[pi].pred.holds(&summary) != self.properties[pi].always)
            .collect();
        for pi in broken {
            let better = self.violated.get(&pi).is_none_or(|e| cost < e.1);
            let w = if better {
                witness.clone().unwrap_or_else(|| {
                    witness_text(&self.witness_script(plan), &trace, &summary.outcome, &desc)
                })
            } else {
                String::new()
            };
            let e = self
                .violated
                .entry(pi)
                .or_insert((0, (u32::MAX, 0, 0), String::new()));
            e.0 += 1;
            if better {
                e.1 = cost;
                e.2 = w;
            }
        }
    }
}

/// The offsets of a class's schedules of one (phase, perturbation,
/// order), in words: per gap the offsets seen when every combination of
/// them is in the class (`gap 1: a | b; gap 2: c`), else the combinations.
fn condense(offs: &[String]) -> String {
    let tuples: BTreeSet<Vec<&str>> = offs.iter().map(|o| o.split(", ").collect()).collect();
    let width = tuples.iter().map(Vec::len).max().unwrap_or(0);
    let mut per: Vec<Vec<&str>> = vec![Vec::new(); width];
    for t in &tuples {
        for (i, x) in t.iter().enumerate() {
            if !per[i].contains(x) {
                per[i].push(x);
            }
        }
    }
    let product: usize = per.iter().map(Vec::len).product();
    if width == 1 {
        per[0].join(" | ")
    } else if product == tuples.len() {
        per.iter()
            .enumerate()
            .map(|(i, v)| format!("gap {}: {}", i + 1, v.join(" | ")))
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        const MAX: usize = 6;
        let mut v: Vec<String> = tuples.iter().take(MAX).map(|t| t.join(", ")).collect();
        if tuples.len() > MAX {
            v.push(format!("... ({} combinations in all)", tuples.len()));
        }
        v.join(" | ")
    }
}

/// `client close` for a call step.
fn call_words(s: &Step) -> String {
    match &s.kind {
        StepKind::Call(c) => {
            let mut t = c.host.clone();
            if let Some(k) = &c.sock {
                t.push('.');
                t.push_str(k);
            }
            format!("{t} {}", c.call.verb())
        }
        _ => s.text.clone(),
    }
}

fn merge(seqs: &[Vec<usize>], idx: &mut [usize], cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    let mut any = false;
    for h in 0..seqs.len() {
        if idx[h] < seqs[h].len() {
            any = true;
            cur.push(seqs[h][idx[h]]);
            idx[h] += 1;
            merge(seqs, idx, cur, out);
            idx[h] -= 1;
            cur.pop();
        }
    }
    if !any {
        out.push(cur.clone());
    }
}

/// The schedule's script with the results it saw written on its calls
/// and `expect ... state` lines for the end states: run, it checks that
/// it reproduces its class.
fn witness_text(script: &Script, trace: &Trace, outcome: &Outcome, schedule: &str) -> String {
    let mut s = script.clone();
    s.description
        .push(format!("finrst explore witness, schedule: {schedule}"));
    // Results by line, in the order made (a line inside `repeat` is not
    // given one: its calls may differ by round).
    let mut by_line: BTreeMap<u32, Vec<Expected>> = BTreeMap::new();
    for c in &trace.calls {
        let e = match (c.errno, &c.events) {
            (Some(e), _) => Expected::Errno(e),
            (None, Some(_)) => Expected::Events(c.ret as u32),
            (None, None) => Expected::Value(c.ret),
        };
        by_line.entry(c.line).or_default().push(e);
    }
    fn fill(steps: &mut [Step], by_line: &BTreeMap<u32, Vec<Expected>>) {
        for st in steps {
            match &mut st.kind {
                StepKind::Call(c) => {
                    if let Some(v) = by_line.get(&st.line)
                        && v.len() == 1
                    {
                        c.expected = Some(v[0].clone());
                    }
                }
                StepKind::Together(v) => fill(v, by_line),
                _ => {}
            }
        }
    }
    fill(&mut s.steps, &by_line);
    for (h, k, st) in &outcome.states {
        s.steps.push(synthetic(
            0,
            StepKind::Expect(Expect::State {
                host: h.clone(),
                sock: Some(k.clone()),
                state: *st,
            }),
        ));
    }
    let mut text = String::new();
    let _ = write!(text, "{s}");
    text
}

impl Report {
    /// Whether every property held.
    pub fn holds(&self) -> bool {
        self.violations.is_empty()
    }

    /// Runs (schedules and probes) per second.
    pub fn rate(&self) -> f64 {
        (self.run + self.probes) as f64 / self.seconds.max(1e-9)
    }

    /// The report as text: the space, the classes with their conditions
    /// and witnesses, the properties.
    pub fn text(&self, with_witnesses: bool) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "explore {}: {}", self.scenario, self.bounds);
        let _ = writeln!(
            o,
            "{} schedules run (and {} probe runs), {} pruned by reduction ({} without){}; {} outcome classes; {:.0} runs/s",
            self.run,
            self.probes,
            self.pruned,
            self.unreduced,
            if self.truncated {
                " — stopped at the bound on schedules"
            } else {
                ""
            },
            self.classes.len(),
            self.rate()
        );
        // The calls whose result is not the same in every class.
        let varying: BTreeSet<(String, u32, String)> = {
            let mut seen: BTreeMap<(String, u32, String), BTreeSet<String>> = BTreeMap::new();
            for c in &self.classes {
                let mut per: BTreeMap<(String, u32, String), Vec<String>> = BTreeMap::new();
                for r in &c.outcome.calls {
                    per.entry((r.host.clone(), r.n, r.verb.clone()))
                        .or_default()
                        .push(r.result.clone());
                }
                for k in seen.keys().cloned().collect::<Vec<_>>() {
                    if !per.contains_key(&k) {
                        seen.entry(k).or_default().insert("(not made)".into());
                    }
                }
                for (k, v) in per {
                    seen.entry(k).or_default().insert(v.join(", "));
                }
            }
            seen.into_iter()
                .filter(|(_, v)| v.len() > 1 || self.classes.len() == 1)
                .map(|(k, _)| k)
                .collect()
        };
        o.push('\n');
        let _ = writeln!(o, "class   schedules  outcome");
        for (n, c) in self.classes.iter().enumerate() {
            let mut calls: Vec<String> = Vec::new();
            for r in &c.outcome.calls {
                if varying.contains(&(r.host.clone(), r.n, r.verb.clone())) {
                    let t = format!("{} {} = {}", r.host, r.verb, r.result);
                    if !calls.contains(&t) {
                        calls.push(t);
                    }
                }
            }
            let _ = writeln!(
                o,
                "{:<6} {:>9}  {}",
                n + 1,
                c.schedules,
                if calls.is_empty() {
                    "(the same call results)".into()
                } else {
                    calls.join("; ")
                }
            );
            let _ = writeln!(o, "{:>18}endings: {}", "", c.outcome.endings.join("; "));
            let _ = writeln!(o, "{:>18}states: {}", "", states_text(&c.outcome.states));
            let _ = writeln!(
                o,
                "{:>18}counters: {}",
                "",
                counters_text(&c.outcome.counters)
            );
        }
        for (n, c) in self.classes.iter().enumerate() {
            let _ = writeln!(
                o,
                "\nclass {}: {} schedule{}; witness {}",
                n + 1,
                c.schedules,
                if c.schedules == 1 { "" } else { "s" },
                if c.reproduced {
                    "reproduces it"
                } else {
                    "DOES NOT reproduce it"
                }
            );
            let _ = writeln!(o, "  conditions:");
            const MAX: usize = 8;
            for line in c.conditions.iter().take(MAX) {
                let _ = writeln!(o, "    - {line}");
            }
            if c.conditions.len() > MAX {
                let _ = writeln!(o, "    - ... and {} more", c.conditions.len() - MAX);
            }
            if with_witnesses {
                let _ = writeln!(o, "  witness:");
                for l in c.witness.lines() {
                    let _ = writeln!(o, "    {l}");
                }
            }
        }
        if !self.properties.is_empty() {
            o.push('\n');
            for p in &self.properties {
                match self.violations.iter().find(|v| v.property == *p) {
                    None => {
                        let _ = writeln!(o, "holds: {} (line {})", p.text, p.line);
                    }
                    Some(v) => {
                        let _ = writeln!(
                            o,
                            "VIOLATED: {} (line {}) in {} schedule{}; witness:",
                            p.text,
                            p.line,
                            v.schedules,
                            if v.schedules == 1 { "" } else { "s" }
                        );
                        for l in v.witness.lines() {
                            let _ = writeln!(o, "    {l}");
                        }
                    }
                }
            }
        }
        o
    }
}

/// The result of checking one class's witness on another engine.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The class's number in the report (1-based).
    pub class: usize,
    /// `None`: the engine reached the same class; else the differences.
    pub differences: Option<Vec<String>>,
    /// The engine could not run the witness.
    pub error: Option<String>,
    /// The witness's steps that ask for timing finer than a real-time
    /// engine's call overhead ([`FINE_TIMING_US`]): a `wait` between two
    /// calls or a segment's extra delay. A class that differs with such
    /// steps may be one the kernel cannot be driven into, rather than a
    /// model departure.
    pub fine_timing: Vec<String>,
}

/// Below this (µs), a `wait` between calls or an extra delay is finer than
/// the kernel engine's call overhead (its calls cross a process boundary:
/// tens of microseconds to milliseconds on a loaded machine).
pub const FINE_TIMING_US: u64 = 1_000;

fn fine_timing(steps: &[Step]) -> Vec<String> {
    let mut v = Vec::new();
    for s in steps {
        match &s.kind {
            StepKind::Together(inner) => v.extend(fine_timing(inner)),
            StepKind::Wait { us } if *us < FINE_TIMING_US => {
                v.push(format!("wait {}", duration_text(*us)))
            }
            StepKind::Fault {
                host,
                fault: Fault::Delay { us, .. },
            } if *us < FINE_TIMING_US => v.push(format!("{host} delay {}", duration_text(*us))),
            _ => {}
        }
    }
    v
}

/// Runs every class's witness on `engine` and compares the outcome. A
/// real-time engine runs each witness to its end (a TIME_WAIT's 60 s
/// included: the counters are the whole run's), so the witnesses run
/// side by side, `jobs` at a time (each kernel run has namespaces of its
/// own).
pub fn verify(report: &Report, engine: EngineKind, path: &str, jobs: usize) -> Vec<Verified> {
    let opts = RunOptions {
        keep_step_times: true,
        ..RunOptions::default()
    };
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        for _ in 0..jobs.max(1).min(report.classes.len().max(1)) {
            sc.spawn(|| {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(c) = report.classes.get(n) else {
                        break;
                    };
                    let v = verify_one(n, c, engine, path, &opts);
                    if let Ok(mut d) = done.lock() {
                        d.push(v);
                    }
                }
            });
        }
    });
    let mut out = done.into_inner().unwrap_or_default();
    out.sort_by_key(|v| v.class);
    out
}

fn verify_one(n: usize, c: &Class, engine: EngineKind, path: &str, opts: &RunOptions) -> Verified {
    {
        {
            let script = match crate::script::parse(path, &c.witness) {
                Ok(s) => s,
                Err(e) => {
                    return Verified {
                        class: n + 1,
                        differences: None,
                        error: Some(e.to_string()),
                        fine_timing: Vec::new(),
                    };
                }
            };
            let mut verbs = BTreeMap::new();
            collect_verbs(&script.steps, &mut verbs);
            let mut fine_timing = fine_timing(&script.steps);
            if let Some(m) = c.margin_us
                && m < FINE_TIMING_US
            {
                fine_timing.push(format!(
                    "a call within {} of its offset, between two deliveries",
                    duration_text(m)
                ));
            }
            match crate::run(&script, engine, opts) {
                Ok(t) => {
                    let got = summarize(&t, &verbs).outcome;
                    Verified {
                        class: n + 1,
                        differences: (got != c.outcome).then(|| got.differences(&c.outcome)),
                        error: None,
                        fine_timing,
                    }
                }
                Err(e) => Verified {
                    class: n + 1,
                    differences: None,
                    error: Some(crate::error_text(&e)),
                    fine_timing,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_keep_program_order() {
        let seqs = vec![vec![0, 1], vec![2]];
        let mut out = Vec::new();
        merge(&seqs, &mut [0, 0], &mut Vec::new(), &mut out);
        assert_eq!(out, vec![vec![0, 1, 2], vec![0, 2, 1], vec![2, 0, 1]]);
    }
}
