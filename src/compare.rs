//! Comparing two engines' traces of the same script (`finrst compare`) and
//! a whole corpus (`finrst conform`).
//!
//! Both traces are normalised before comparison: sequence numbers relative
//! (as [`crate::trace::relative`] makes them), hosts by script name, no
//! timestamps, no timestamp-option values, no notes. What is compared, in
//! five sections:
//!
//! - **segments**: direction with ports, flags, seq, ack, length, and
//!   whether a fault lost it — in order, up to one freedom (see
//!   [`same_up_to_swaps`]): two segments sent within [`SAME_INSTANT_US`] of
//!   each other (in both traces) by different hosts on different
//!   connections may be in either order, as they are on the kernel, where
//!   the order of two hosts' sends in the same fraction of a millisecond is
//!   decided by the scheduler, not by TCP. When that is the only
//!   difference, the second trace's lines are shown in the first's order;
//! - **windows**: the same segments with their window and options (TS
//!   values dropped); a section of its own, so a window the model computes
//!   differently is visible without hiding the rest;
//! - **calls**: each call with its result (return value or errno);
//! - **counters**: TcpExt changes per host;
//! - **states**: each socket's transitions in order (sockets compared one by
//!   one, so two hosts' near-simultaneous changes may interleave either
//!   way), then the connections left open and their state.

use crate::engine::RunOptions;
use crate::fuzz::{Progress, par_map_heaviest_first};
use crate::script::Script;
use crate::segment::RelSegment;
use crate::trace::{Trace, relative};
use crate::{EngineKind, run};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

/// One section of a comparison: the normalised lines of each trace.
#[derive(Clone, Debug, Serialize)]
pub struct Section {
    pub name: &'static str,
    pub a: Vec<String>,
    pub b: Vec<String>,
}

impl Section {
    pub fn same(&self) -> bool {
        self.a == self.b
    }

    /// A line diff: `  ` both, `- ` only in a, `+ ` only in b.
    pub fn diff(&self) -> Vec<String> {
        line_diff(&self.a, &self.b)
    }
}

/// Two traces of one scenario, normalised and compared.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub scenario: String,
    pub engine_a: EngineKind,
    pub engine_b: EngineKind,
    pub segments: Section,
    pub windows: Section,
    pub calls: Section,
    pub counters: Section,
    pub states: Section,
    /// Notes of either run (cuts, unsupported calls), prefixed by engine.
    pub notes: Vec<String>,
    /// Set when one run was cut short ([`cut_short`]): both traces end
    /// there, and nothing later is compared.
    pub compared_until: Option<Cut>,
}

/// Where a run was cut short, and which.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cut {
    /// The engine whose run was cut.
    pub engine: EngineKind,
    pub at_us: u64,
    /// The engine whose run was repeated with `at_us` as its horizon.
    pub repeated: EngineKind,
}

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "compared up to {} s, where the {} run was cut short (FINRST_LINUX_MAX_WAIT); the {} run was repeated with that horizon",
            crate::trace::fmt_time(self.at_us),
            self.engine,
            self.repeated
        )
    }
}

impl Comparison {
    /// Identical in all five sections, windows included.
    pub fn identical(&self) -> bool {
        self.segments.same()
            && self.windows.same()
            && self.calls.same()
            && self.counters.same()
            && self.states.same()
    }

    fn sections(&self) -> [&Section; 5] {
        [
            &self.segments,
            &self.windows,
            &self.calls,
            &self.counters,
            &self.states,
        ]
    }

    /// A readable diff of every section that differs.
    pub fn diff_text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "scenario {}: --- {} +++ {}",
            self.scenario, self.engine_a, self.engine_b
        );
        for s in self.sections() {
            if s.same() {
                let _ = writeln!(o, "{}: identical ({} lines)", s.name, s.a.len());
                continue;
            }
            let _ = writeln!(o, "{}: differ", s.name);
            for l in s.diff() {
                let _ = writeln!(o, "  {l}");
            }
        }
        for n in &self.notes {
            let _ = writeln!(o, "note: {n}");
        }
        let _ = writeln!(
            o,
            "{}",
            if self.identical() {
                "identical"
            } else {
                "DIFFERENT"
            }
        );
        o
    }
}

/// The TS option's values change with every run: keep only that it is there.
fn options_without_ts(opts: &str) -> String {
    opts.split(',')
        .map(|o| if o.starts_with("TS val") { "TS" } else { o })
        .collect::<Vec<_>>()
        .join(",")
}

/// Two segments this close in time (µs) in *both* traces may be in either
/// order when neither their sender nor their connection is the same.
///
/// Why: the kernel engine's hosts are namespaces joined by a relay whose
/// round trip is 60–250 µs (more when the machine is loaded), against the
/// model's fixed 40 µs link. When `server exit` closes a connection to
/// one peer (FIN) and then a second one (RST), the first peer's ACK of that
/// FIN is sent in the same fraction of a millisecond as the RST, and which
/// of the two the capture sees first depends on whether the exiting process
/// was preempted; so does the order of two hosts' sends in one `together`
/// block. One sender's segments keep their order, so do one connection's,
/// and so do any two segments further apart than this in either trace. It
/// is half a jiffy at HZ=250, so two timer events a tick apart never trade
/// places.
pub const SAME_INSTANT_US: u64 = 2_000;

/// A segment's connection, the same whichever way it goes.
fn connection(s: &RelSegment) -> ((&str, u16), (&str, u16)) {
    let a = (s.src.as_str(), s.sport);
    let b = (s.dst.as_str(), s.dport);
    if a <= b { (a, b) } else { (b, a) }
}

/// Whether trace `b`'s segments are trace `a`'s up to swaps of independent
/// segments (see [`SAME_INSTANT_US`]); if so, for each of `a`'s segments
/// the index of the same one in `b`.
///
/// The same line's k-th copy in `a` is its k-th copy in `b` (two copies of
/// one line share a connection, so they never swap). Then every pair that
/// `b` has in the other order must be independent: different senders,
/// different connections, at most `SAME_INSTANT_US` apart in `a` and in
/// `b`. An insertion sort of `b`'s positions meets each such pair exactly
/// once, so the check costs the number of swapped pairs, not n².
pub fn same_up_to_swaps(
    a: &[RelSegment],
    la: &[String],
    b: &[RelSegment],
    lb: &[String],
) -> Option<Vec<usize>> {
    if la.len() != lb.len() {
        return None;
    }
    let mut copies: BTreeMap<&str, VecDeque<usize>> = BTreeMap::new();
    for (j, l) in lb.iter().enumerate() {
        copies.entry(l.as_str()).or_default().push_back(j);
    }
    let mut pos = Vec::with_capacity(la.len());
    for l in la {
        pos.push(copies.get_mut(l.as_str())?.pop_front()?);
    }
    let independent = |i: usize, j: usize| {
        let (x, y) = (&a[i], &a[j]);
        let (u, v) = (&b[pos[i]], &b[pos[j]]);
        x.src != y.src
            && connection(x) != connection(y)
            && x.time_us.abs_diff(y.time_us) <= SAME_INSTANT_US
            && u.time_us.abs_diff(v.time_us) <= SAME_INSTANT_US
    };
    // A cap on the swapped pairs: far more than any two runs of one script
    // differ by, far less than a pathological n² walk.
    let mut budget: u64 = 1_000_000;
    let mut v: Vec<usize> = (0..la.len()).collect();
    for k in 1..v.len() {
        let mut m = k;
        while m > 0 && pos[v[m - 1]] > pos[v[m]] {
            if budget == 0 || !independent(v[m - 1], v[m]) {
                return None;
            }
            budget -= 1;
            v.swap(m - 1, m);
            m -= 1;
        }
    }
    Some(pos)
}

/// Each segment's normalised line, without and with its window and
/// options, in capture order.
fn segment_lines(rel: &[RelSegment]) -> (Vec<String>, Vec<String>) {
    let mut segs = Vec::new();
    let mut wins = Vec::new();
    for s in rel {
        let mut l = format!(
            "{}.{} > {}.{} [{}] seq {}",
            s.src, s.sport, s.dst, s.dport, s.flags, s.seq
        );
        if let Some(a) = s.ack {
            let _ = write!(l, " ack {a}");
        }
        let _ = write!(l, " len {}", s.len);
        if let Some(u) = s.urg {
            let _ = write!(l, " urg {u}");
        }
        // The kernel's name for why it sent an RST (the model's, and on
        // the linux engine the tcp:tcp_send_reset tracepoint's).
        if let Some(r) = s.rst_reason {
            let _ = write!(l, " reason {r}");
        }
        if s.lost {
            l.push_str(" [lost]");
        }
        wins.push(format!(
            "{l} win {}{}",
            s.win,
            if s.options.is_empty() {
                String::new()
            } else {
                format!(" [{}]", options_without_ts(&s.options))
            }
        ));
        segs.push(l);
    }
    (segs, wins)
}

fn call_lines(t: &Trace) -> Vec<String> {
    t.calls
        .iter()
        .map(|c| {
            let who = if c.sock == "-" {
                c.host.clone()
            } else {
                format!("{}.{}", c.host, c.sock)
            };
            let mut l = format!("{who} {} = {}", c.call, c.result_text());
            if let Some(i) = &c.info {
                l.push_str(&format!(" [{i}]"));
            }
            l
        })
        .collect()
}

fn counter_lines(t: &Trace) -> Vec<String> {
    t.counters
        .iter()
        .flat_map(|(h, m)| m.iter().map(move |(k, v)| format!("{h} {k} {v:+}")))
        .collect()
}

fn state_lines(t: &Trace) -> Vec<String> {
    let mut per: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for s in &t.states {
        per.entry((s.host.clone(), s.sock.clone()))
            .or_default()
            .push(format!("{} -> {}", s.from, s.to));
    }
    let mut out: Vec<String> = per
        .into_iter()
        .flat_map(|((h, s), v)| v.into_iter().map(move |x| format!("{h}.{s} {x}")))
        .collect();
    let mut open: Vec<String> = t
        .open_at_end
        .iter()
        .map(|c| format!("open at end: {}.{} {}", c.host, c.sock, c.state))
        .collect();
    open.sort();
    out.extend(open);
    out
}

/// Normalises and compares two traces of the same script.
pub fn compare(a: &Trace, b: &Trace) -> Comparison {
    let (ra, rb) = (relative(&a.segments), relative(&b.segments));
    let (sa, wa) = segment_lines(&ra);
    let (mut sb, mut wb) = segment_lines(&rb);
    // b's lines in a's order when they differ from it only by swaps of
    // independent segments (the kernel's scheduler, not TCP, ordered them).
    if sa != sb
        && let Some(pos) = same_up_to_swaps(&ra, &sa, &rb, &sb)
    {
        sb = pos.iter().map(|&j| sb[j].clone()).collect();
        wb = pos.iter().map(|&j| wb[j].clone()).collect();
    }
    let sec = |name, a, b| Section { name, a, b };
    let mut notes: Vec<String> = a
        .notes
        .iter()
        .map(|n| format!("{}: {n}", a.engine))
        .collect();
    notes.extend(b.notes.iter().map(|n| format!("{}: {n}", b.engine)));
    Comparison {
        scenario: a.scenario.clone(),
        engine_a: a.engine,
        engine_b: b.engine,
        segments: sec("segments", sa, sb),
        windows: sec("windows", wa, wb),
        calls: sec("calls", call_lines(a), call_lines(b)),
        counters: sec("counters", counter_lines(a), counter_lines(b)),
        states: sec("states", state_lines(a), state_lines(b)),
        notes,
        compared_until: None,
    }
}

/// Longer sections than this (both sides' lines together) are compared
/// position by position: Myers's diff takes time in (N+M)·D, and two long
/// traces that differ everywhere would take minutes.
const DIFF_MAX_LINES: usize = 20_000;

/// A minimal line diff (Myers's, by the `diffs` crate): `  ` both, `- `
/// only in a, `+ ` only in b, in order. (`similar` would do as well, but
/// it is Apache-2.0 only, which GPL-2.0 cannot take in.)
pub fn line_diff(a: &[String], b: &[String]) -> Vec<String> {
    /// The edit script as marked lines.
    struct Lines<'a> {
        a: &'a [String],
        b: &'a [String],
        out: Vec<String>,
    }
    impl diffs::Diff for Lines<'_> {
        type Error = std::convert::Infallible;
        fn equal(&mut self, old: usize, _new: usize, len: usize) -> Result<(), Self::Error> {
            let lines = self.a[old..old + len].iter().map(|l| format!("  {l}"));
            self.out.extend(lines);
            Ok(())
        }
        fn delete(&mut self, old: usize, len: usize, _new: usize) -> Result<(), Self::Error> {
            let lines = self.a[old..old + len].iter().map(|l| format!("- {l}"));
            self.out.extend(lines);
            Ok(())
        }
        fn insert(&mut self, _old: usize, new: usize, len: usize) -> Result<(), Self::Error> {
            let lines = self.b[new..new + len].iter().map(|l| format!("+ {l}"));
            self.out.extend(lines);
            Ok(())
        }
    }
    let (n, m) = (a.len(), b.len());
    if n + m > DIFF_MAX_LINES {
        let mut out = Vec::new();
        for i in 0..n.max(m) {
            match (a.get(i), b.get(i)) {
                (Some(x), Some(y)) if x == y => out.push(format!("  {x}")),
                (x, y) => {
                    out.extend(x.map(|x| format!("- {x}")));
                    out.extend(y.map(|y| format!("+ {y}")));
                }
            }
        }
        return out;
    }
    let mut d = diffs::Replace::new(Lines {
        a,
        b,
        out: Vec::with_capacity(n.max(m)),
    });
    match diffs::myers::diff(&mut d, a, 0, n, b, 0, m) {
        Ok(()) => d.into_inner().out,
        Err(never) => match never {},
    }
}

/// One scenario of a conformance run.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub file: String,
    pub scenario: String,
    /// The comparison, or why one of the runs failed.
    pub comparison: Option<Comparison>,
    pub error: Option<String>,
}

impl Row {
    pub fn identical(&self) -> bool {
        self.comparison.as_ref().is_some_and(Comparison::identical)
    }
    pub fn windows_same(&self) -> bool {
        self.comparison.as_ref().is_some_and(|c| c.windows.same())
    }
}

/// Runs one script on two engines and compares the traces.
///
/// When one engine's run was cut short (see [`cut_short`]) and the other
/// ran on past that time, only what both observed is compared: the other
/// is run again with the cut time as its horizon, and the comparison's
/// `compared_until_us` and notes say so. Otherwise the engine that
/// waited for its timers would differ in every segment, state and counter
/// the cut one never got to, for no reason of TCP's.
pub fn compare_file(
    path: &str,
    a: EngineKind,
    b: EngineKind,
    opts: &RunOptions,
) -> Result<Comparison, crate::Error> {
    compare_script(&crate::script::parse_file(path)?, a, b, opts)
}

/// [`compare_file`] of a script in memory (parsed, built with
/// [`crate::Scenario`], or generated).
pub fn compare_script(
    script: &Script,
    a: EngineKind,
    b: EngineKind,
    opts: &RunOptions,
) -> Result<Comparison, crate::Error> {
    // A real-time engine makes its calls when the virtual-time engine made
    // them (see RunOptions::schedule): the comparison is then about what
    // each stack does, not about how late a real run's steps fall.
    let (mut ta, opts_a, mut tb, opts_b) = if !opts.own_clock && a.real_time() != b.real_time() {
        let (lead, follower) = if a.real_time() { (b, a) } else { (a, b) };
        let lead_opts = RunOptions {
            keep_step_times: true,
            ..opts.clone()
        };
        let tl = run(script, lead, &lead_opts)?;
        let on_schedule = RunOptions {
            schedule: Some(tl.step_times_us.clone().into()),
            ..opts.clone()
        };
        let tf = run(script, follower, &on_schedule)?;
        if a.real_time() {
            (tf, on_schedule, tl, opts.clone())
        } else {
            (tl, opts.clone(), tf, on_schedule)
        }
    } else {
        let ta = run(script, a, opts)?;
        let tb = run(script, b, opts)?;
        (ta, opts.clone(), tb, opts.clone())
    };
    let mut until = None;
    if let Some(at_us) = cut_short(&tb).filter(|&cut| ta.end_us > cut) {
        ta = run(script, a, &opts_a.with_horizon(at_us))?;
        until = Some(Cut {
            engine: b,
            at_us,
            repeated: a,
        });
    } else if let Some(at_us) = cut_short(&ta).filter(|&cut| tb.end_us > cut) {
        tb = run(script, b, &opts_b.with_horizon(at_us))?;
        until = Some(Cut {
            engine: a,
            at_us,
            repeated: b,
        });
    }
    let mut c = compare(&ta, &tb);
    if let Some(cut) = until {
        c.notes.insert(0, cut.to_string());
        c.compared_until = Some(cut);
    }
    Ok(c)
}

/// When a run stopped before its horizon with timers still pending, the
/// time it stopped: the linux engine waits at most
/// [`crate::engine::LINUX_MAX_WAIT_US`] (or `FINRST_LINUX_MAX_WAIT`)
/// after the last step and says so in a note beginning `cut at`
/// (`LinuxEngine::finish`). A run that stopped *at* its horizon is not
/// cut short: every engine stops there.
pub fn cut_short(t: &Trace) -> Option<u64> {
    t.notes
        .iter()
        .any(|n| n.starts_with("cut at "))
        .then_some(t.end_us)
}

/// The `.sim` files of a directory, sorted.
pub fn sim_files(dir: &str) -> std::io::Result<Vec<String>> {
    let mut files: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path().to_string_lossy().to_string())
        .filter(|p| p.ends_with(".sim"))
        .collect();
    files.sort();
    Ok(files)
}

/// Runs every file on both engines, `jobs` scripts at a time (real-kernel
/// runs mostly sleep through TIME_WAIT, so many fit on two cores), and
/// returns the rows in file order.
pub fn conform(
    files: &[String],
    a: EngineKind,
    b: EngineKind,
    opts: &RunOptions,
    jobs: usize,
) -> Vec<Row> {
    conform_with(files, a, b, opts, jobs, &|_, _| {})
}

/// [`conform`], longest scenario first (see [`estimate_us`]), calling
/// `progress` with the run's [`Progress`] by estimated wall time and each
/// row as it finishes (in the order they finish, from the worker
/// threads), and with `None` every quarter second in between: e.g. to
/// move a progress bar whose estimate of the time left holds.
pub fn conform_with(
    files: &[String],
    a: EngineKind,
    b: EngineKind,
    opts: &RunOptions,
    jobs: usize,
    progress: &(dyn Fn(Progress, Option<&Row>) + Sync),
) -> Vec<Row> {
    // A script that does not parse weighs nothing: its row is an error at
    // once.
    let weights: Vec<u64> = files
        .iter()
        .map(|f| crate::script::parse_file(f).map_or(1, |s| estimate_us(&s, a, b, opts)))
        .collect();
    par_map_heaviest_first(
        files,
        &weights,
        jobs,
        &|f| conform_row(f, a, b, opts),
        &|p, row| progress(p, row.map(|(_, r)| r)),
    )
}

/// One row of a conformance run.
fn conform_row(f: &str, a: EngineKind, b: EngineKind, opts: &RunOptions) -> Row {
    let scenario = f
        .rsplit('/')
        .next()
        .unwrap_or(f)
        .trim_end_matches(".sim")
        .to_string();
    // A panic (a bug) fails this row, not the whole table.
    let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        compare_file(f, a, b, opts).map_err(|e| crate::error_text(&e))
    }))
    .unwrap_or_else(|_| Err("the engine panicked on it (a bug)".into()));
    let (comparison, error) = match got {
        Ok(c) => (Some(c), None),
        Err(e) => (None, Some(e)),
    };
    Row {
        file: f.to_string(),
        scenario,
        comparison,
        error,
    }
}

/// What comparing `script` on engines `a` and `b` costs, in microseconds
/// of wall time (roughly): what `conform` and `fuzz` sort their batch by,
/// longest first, and what their progress bars count.
///
/// A real-time engine takes as long as the script's timeline: its steps,
/// then its timers until none is pending (the linux engine stops waiting
/// [`crate::engine::LINUX_MAX_WAIT_US`] after the last step, or
/// `FINRST_LINUX_MAX_WAIT`). The script alone does not say how long its
/// timers run (60 s of TIME_WAIT, a 131 s linger, a prober that never
/// stops), but the model does, in virtual time and about a millisecond:
/// so the model runs it, and its end time, capped by the wait bound, is
/// the estimate (plus the engine's start-up). Recorded durations of an
/// earlier run would need a file to keep and would be wrong for a new or
/// edited scenario; this is right for both. Two virtual-time engines
/// cost CPU time instead, roughly in proportion to the steps.
pub fn estimate_us(script: &Script, a: EngineKind, b: EngineKind, opts: &RunOptions) -> u64 {
    /// Starting a real-time engine (namespaces, host processes).
    const START_US: u64 = 200_000;
    /// CPU per step of a virtual-time engine, roughly.
    const STEP_US: u64 = 20;
    let steps = crate::script::step_count(&script.steps).max(1);
    if !a.real_time() && !b.real_time() {
        return steps * STEP_US;
    }
    let own = RunOptions {
        schedule: None,
        ..opts.clone()
    };
    let hosts = crate::engine::HostSpec::for_hosts(&script.hosts);
    let mut model = crate::model::ModelEngine::new(&hosts, &own);
    let Ok(t) = crate::runner::run(script, &mut model, &own, None) else {
        // The scenario fails on the model: it will fail soon on the kernel
        // too, or differ; either way its steps are all it costs.
        return START_US + steps * crate::engine::SETTLE_QUIET_US;
    };
    // The last entry is when the run's end began: where the linux
    // engine's bound starts.
    let end_began = t.step_times_us.last().copied().unwrap_or(0);
    let end = if a == EngineKind::Linux || b == EngineKind::Linux {
        t.end_us.min(end_began + crate::engine::linux_max_wait_us())
    } else {
        t.end_us
    };
    START_US + end
}

/// `N/M scenarios identical`: every column, windows included.
pub fn summary(rows: &[Row]) -> String {
    let same = rows.iter().filter(|r| r.identical()).count();
    format!(
        "{same}/{} scenarios identical (segments, windows, calls, counters, states)",
        rows.len()
    )
}

/// The conformance table as text.
pub fn table(rows: &[Row]) -> String {
    let w = rows
        .iter()
        .map(|r| r.scenario.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<w$} | {:<8} | {:<7} | {:<5} | {:<8} | {:<6}",
        "scenario", "segments", "windows", "calls", "counters", "states"
    );
    let _ = writeln!(o, "{}", "-".repeat(w + 50));
    let mark = |s: &Section| {
        if s.same() {
            "same".to_string()
        } else {
            format!(
                "DIFF {}",
                line_diff(&s.a, &s.b)
                    .iter()
                    .filter(|l| !l.starts_with("  "))
                    .count()
            )
        }
    };
    for r in rows {
        match (&r.comparison, &r.error) {
            (Some(c), _) => {
                let _ = writeln!(
                    o,
                    "{:<w$} | {:<8} | {:<7} | {:<5} | {:<8} | {:<6}",
                    r.scenario,
                    mark(&c.segments),
                    mark(&c.windows),
                    mark(&c.calls),
                    mark(&c.counters),
                    mark(&c.states)
                );
            }
            (None, e) => {
                let _ = writeln!(
                    o,
                    "{:<w$} | ERROR: {}",
                    r.scenario,
                    e.clone().unwrap_or_default()
                );
            }
        }
    }
    // Under the table, so that its columns stay as they are.
    for r in rows {
        if let Some(cut) = r
            .comparison
            .as_ref()
            .and_then(|c| c.compared_until.as_ref())
        {
            let _ = writeln!(o, "note: {}: {cut}", r.scenario);
        }
    }
    let _ = writeln!(o, "{}", summary(rows));
    o
}

#[derive(Serialize)]
struct JsonConform<'a> {
    identical: usize,
    windows_identical: usize,
    total: usize,
    summary: String,
    scenarios: Vec<JsonRow<'a>>,
}

#[derive(Serialize)]
struct JsonRow<'a> {
    scenario: &'a str,
    file: &'a str,
    identical: bool,
    segments: Option<bool>,
    windows: Option<bool>,
    calls: Option<bool>,
    counters: Option<bool>,
    states: Option<bool>,
    error: Option<&'a str>,
    /// Set when one engine's run was cut short: nothing after it was
    /// compared.
    compared_until: Option<&'a Cut>,
    /// Diff lines of each differing section.
    diffs: BTreeMap<&'static str, Vec<String>>,
}

/// The conformance result as one JSON object.
pub fn to_json(rows: &[Row]) -> String {
    let scenarios = rows
        .iter()
        .map(|r| {
            let c = r.comparison.as_ref();
            let mut diffs = BTreeMap::new();
            if let Some(c) = c {
                for s in c.sections() {
                    if !s.same() {
                        diffs.insert(
                            s.name,
                            s.diff()
                                .into_iter()
                                .filter(|l| !l.starts_with("  "))
                                .collect(),
                        );
                    }
                }
            }
            JsonRow {
                scenario: &r.scenario,
                file: &r.file,
                identical: r.identical(),
                segments: c.map(|c| c.segments.same()),
                windows: c.map(|c| c.windows.same()),
                calls: c.map(|c| c.calls.same()),
                counters: c.map(|c| c.counters.same()),
                states: c.map(|c| c.states.same()),
                error: r.error.as_deref(),
                compared_until: c.and_then(|c| c.compared_until.as_ref()),
                diffs,
            }
        })
        .collect();
    let j = JsonConform {
        identical: rows.iter().filter(|r| r.identical()).count(),
        windows_identical: rows.iter().filter(|r| r.windows_same()).count(),
        total: rows.len(),
        summary: summary(rows),
        scenarios,
    };
    serde_json::to_string_pretty(&j).expect("plain data serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: &[&str]) -> Vec<String> {
        x.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn diff_marks_only_the_changed_lines() {
        let d = line_diff(&v(&["S", "S.", ".", "F."]), &v(&["S", "S.", ".", "R."]));
        assert_eq!(d, v(&["  S", "  S.", "  .", "- F.", "+ R."]));
    }

    #[test]
    fn a_long_diff_keeps_every_line() {
        // Two traces that share every other line, diffed by Myers and
        // position by position (past DIFF_MAX_LINES): either way the diff
        // gives back each side in order (kept and `-` lines are a, kept
        // and `+` lines b).
        for len in [2_000, 20_000] {
            let a: Vec<String> = (0..len).map(|i| format!("a{i}")).collect();
            let b: Vec<String> = (0..len)
                .map(|i| {
                    if i % 2 == 0 {
                        format!("a{i}")
                    } else {
                        format!("b{i}")
                    }
                })
                .collect();
            let d = line_diff(&a, &b);
            let side = |keep: &str| -> Vec<String> {
                d.iter()
                    .filter(|l| l.starts_with("  ") || l.starts_with(keep))
                    .map(|l| l[2..].to_string())
                    .collect()
            };
            assert_eq!(side("- "), a);
            assert_eq!(side("+ "), b);
            if len < DIFF_MAX_LINES / 2 {
                // Myers: minimal, every shared line kept.
                assert_eq!(d.iter().filter(|l| l.starts_with("  ")).count(), len / 2);
            }
        }
    }

    /// A segment at `t` µs from `src`:`sport` to `dst`:`dport`.
    fn seg(t: u64, src: &str, sport: u16, dst: &str, dport: u16, flags: &str) -> RelSegment {
        RelSegment {
            time_us: t,
            src: src.into(),
            dst: dst.into(),
            sport,
            dport,
            flags: flags.into(),
            seq: 1,
            ack: Some(2),
            win: 64,
            len: 0,
            urg: None,
            options: String::new(),
            why: None,
            rst_reason: None,
            lost: false,
        }
    }

    fn check(a: &[RelSegment], b: &[RelSegment]) -> Option<Vec<usize>> {
        let (la, _) = segment_lines(a);
        let (lb, _) = segment_lines(b);
        same_up_to_swaps(a, &la, b, &lb)
    }

    /// `server exit`: FIN to the client, RST to the third host; the
    /// client's ACK of that FIN may land on either side of the RST.
    #[test]
    fn two_hosts_sends_on_two_connections_in_one_instant_may_swap() {
        let fin = seg(100, "server", 9999, "client", 40000, "F.");
        let rst = seg(120, "server", 9999, "third", 41001, "R.");
        let ack = seg(140, "client", 40000, "server", 9999, ".");
        let model = [fin.clone(), rst.clone(), ack.clone()];
        let mut k = [fin, ack, rst];
        k[1].time_us = 300;
        k[2].time_us = 450;
        assert_eq!(check(&model, &k), Some(vec![0, 2, 1]));
    }

    #[test]
    fn one_senders_order_and_one_connections_order_are_kept() {
        // The same sender on two connections.
        let f1 = seg(100, "server", 9999, "client", 40000, "F.");
        let r2 = seg(110, "server", 9999, "third", 41001, "R.");
        assert_eq!(check(&[f1.clone(), r2.clone()], &[r2, f1]), None);
        // Two senders on one connection.
        let f = seg(100, "server", 9999, "client", 40000, "F.");
        let a = seg(110, "client", 40000, "server", 9999, ".");
        assert_eq!(check(&[f.clone(), a.clone()], &[a, f]), None);
    }

    #[test]
    fn segments_far_apart_in_either_trace_keep_their_order() {
        let x = seg(100, "server", 9999, "client", 40000, "F.");
        let y = seg(120, "third", 41001, "server", 9999, ".");
        let (mut x2, mut y2) = (x.clone(), y.clone());
        y2.time_us = 100;
        x2.time_us = 100 + SAME_INSTANT_US + 1;
        assert_eq!(check(&[x.clone(), y.clone()], &[y2, x2]), None);
        // Within the instant in both: either order.
        assert_eq!(check(&[x.clone(), y.clone()], &[y, x]), Some(vec![1, 0]));
    }

    #[test]
    fn a_missing_or_extra_segment_is_never_excused() {
        let x = seg(100, "server", 9999, "client", 40000, "F.");
        let y = seg(120, "third", 41001, "server", 9999, ".");
        assert_eq!(
            check(&[x.clone(), y.clone()], std::slice::from_ref(&y)),
            None
        );
        assert_eq!(check(&[x.clone(), y.clone()], &[y.clone(), y]), None);
    }

    /// Random segments among three hosts, 0–1.5 ms apart.
    fn segments() -> impl proptest::strategy::Strategy<Value = Vec<RelSegment>> {
        use proptest::prelude::*;
        const ENDS: [(&str, u16); 3] = [("client", 40000), ("server", 9999), ("third", 41001)];
        prop::collection::vec((0usize..3, 1usize..3, 0u64..1500, 0usize..3), 1..14).prop_map(|v| {
            let mut t = 0;
            v.into_iter()
                .map(|(from, step, gap, fl)| {
                    t += gap;
                    let (src, sp) = ENDS[from];
                    let (dst, dp) = ENDS[(from + step) % 3];
                    seg(t, src, sp, dst, dp, ["S", ".", "F."][fl])
                })
                .collect()
        })
    }

    proptest::proptest! {
        /// Swapping neighbours that are independent is never a difference,
        /// and the positions found put b back in a's order.
        #[test]
        fn independent_swaps_are_forgiven(a in segments(), swaps in proptest::collection::vec(0usize..14, 0..20)) {
            let (la, _) = segment_lines(&a);
            let independent = |x: &RelSegment, y: &RelSegment| {
                x.src != y.src
                    && connection(x) != connection(y)
                    && x.time_us.abs_diff(y.time_us) <= SAME_INSTANT_US
            };
            let mut b = a.clone();
            for k in swaps {
                if k + 1 < b.len() && independent(&b[k], &b[k + 1]) {
                    b.swap(k, k + 1);
                }
            }
            let (lb, _) = segment_lines(&b);
            let pos = same_up_to_swaps(&a, &la, &b, &lb);
            proptest::prop_assert!(pos.is_some());
            for (i, &j) in pos.unwrap().iter().enumerate() {
                proptest::prop_assert_eq!(&la[i], &lb[j]);
            }
        }

        /// Swapping two different neighbours that depend on each other is
        /// always a difference (every such pair of the trace is tried).
        #[test]
        fn a_dependent_swap_is_a_difference(a in segments()) {
            let (la, _) = segment_lines(&a);
            for k in 0..a.len().saturating_sub(1) {
                let (x, y) = (&a[k], &a[k + 1]);
                let dependent = x.src == y.src
                    || connection(x) == connection(y)
                    || x.time_us.abs_diff(y.time_us) > SAME_INSTANT_US;
                if !dependent || la[k] == la[k + 1] {
                    continue;
                }
                let mut b = a.clone();
                b.swap(k, k + 1);
                let (lb, _) = segment_lines(&b);
                proptest::prop_assert!(same_up_to_swaps(&a, &la, &b, &lb).is_none());
            }
        }
    }

    /// The estimate the batch sorts by: the model's timeline, so the
    /// 131 s linger comes first and a scenario whose timers stop at once
    /// last; capped by the linux engine's wait bound.
    #[test]
    fn the_estimate_is_the_scripts_timeline() {
        let est = |f: &str, b| {
            let s = crate::script::parse_file(&format!("sim/{f}.sim")).unwrap();
            estimate_us(&s, EngineKind::Model, b, &RunOptions::default())
        };
        let files = sim_files("sim").unwrap();
        let longest = files
            .iter()
            .map(|f| f.trim_start_matches("sim/").trim_end_matches(".sim"))
            .max_by_key(|f| est(f, EngineKind::Linux))
            .unwrap();
        assert_eq!(longest, "seed003-linger-timeout");
        assert!(est("close-fin-handshake", EngineKind::Linux) > 60_000_000);
        assert!(est("close-unread-rst", EngineKind::Linux) < 2_000_000);
        // Without the RFC 2525 rule the prober never stops: the model
        // runs to the horizon, the kernel stops waiting 70 s after the
        // last step.
        let mut s = crate::script::parse_file("sim/rfc2525-zero-window.sim").unwrap();
        s.horizon_us = Some(300_000_000);
        let always_fin = RunOptions {
            policy: crate::engine::Policy::AlwaysFin,
            ..RunOptions::default()
        };
        let e = estimate_us(&s, EngineKind::Model, EngineKind::Linux, &always_fin);
        assert!((70_000_000..80_000_000).contains(&e), "{e}");
        // Two virtual-time engines: CPU, by steps.
        assert!(est("close-fin-handshake", EngineKind::Smoltcp) < 1_000);
    }

    #[test]
    fn only_a_run_cut_by_its_wait_bound_is_cut_short() {
        let mut t = Trace {
            end_us: 5_400_000,
            ..Trace::default()
        };
        assert_eq!(cut_short(&t), None);
        t.notes
            .push("cut at 5.4 s of the 600.0 s horizon: ...".into());
        assert_eq!(cut_short(&t), Some(5_400_000));
    }

    #[test]
    fn ts_values_are_dropped_but_the_option_stays() {
        assert_eq!(
            options_without_ts("mss 65495,sackOK,TS val 5 ecr 0,nop,wscale 10"),
            "mss 65495,sackOK,TS,nop,wscale 10"
        );
    }
}
