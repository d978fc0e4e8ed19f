//! The script interpreter shared by every engine: resolves socket names,
//! hands calls to the engine, settles the network between steps, checks
//! expectations and assembles the [`Trace`].

use crate::engine::{
    CallCtx, CallOutcome, DEFAULT_HORIZON_US, Engine, EngineError, FIRST_LOCAL_PORT, HostSpec,
    RunOptions, horizon_note,
};
use crate::limits::{MAX_KEPT_FAILURES, quote};
use crate::script::{Call, CallStep, Expect, Expected, Script, Step, StepKind, epoll};
use crate::segment::RelSegment;
use crate::trace::{CallRecord, Failure, Head, Relative, Trace, TraceSink};
use smallvec::SmallVec;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Why a run could not complete (as opposed to an expectation failing).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The script is wrong at run time (e.g. a socket name never created).
    #[error("{file}:{line}:{col}: {msg}")]
    Script {
        file: String,
        line: u32,
        col: u32,
        msg: String,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Per host: the socket names the script has created, in creation order.
///
/// Every lookup a step makes is a hash or a tree search: a `repeat` that
/// accepts connection after connection makes the lists long, and a scan
/// per step would make the run quadratic.
#[derive(Default)]
struct Names {
    socks: Vec<String>,
    /// Where each name stands in `socks` (twice for a name two accepts of
    /// one `together` both took).
    index: HashMap<String, SmallVec<[usize; 1]>>,
    /// The sockets (by place in `socks`) the program has not closed. A
    /// closed one's connection may live on as an orphan, and its name
    /// stays valid for `expect ... state`.
    open: BTreeSet<usize>,
    /// Of those, the ones named `conn*` (a call's default socket).
    open_conn: BTreeSet<usize>,
    /// Sockets made by `socket` that have not listened or connected yet:
    /// a `listen` or `connect` that names no socket uses the newest of
    /// them (with the options set on it), as a program's
    /// socket/setsockopt/bind/listen sequence does.
    fresh: Vec<String>,
    /// No `conn{k}` below this k is free (names are never given back).
    next_conn: usize,
    /// The sockets (by place in `socks`) a `listen` was made on: an
    /// `accept` that names no socket accepts on the newest still open, as
    /// a program's accept() on the descriptor it listened on, and a call
    /// that names none prefers a connection to them.
    listening: BTreeSet<usize>,
}

impl Names {
    fn has(&self, n: &str) -> bool {
        self.index.contains_key(n)
    }

    fn add(&mut self, n: String) {
        let i = self.socks.len();
        self.open.insert(i);
        if n.starts_with("conn") {
            self.open_conn.insert(i);
        }
        self.index.entry(n.clone()).or_default().push(i);
        self.socks.push(n);
    }

    /// The program closed the socket of this name.
    fn close(&mut self, n: &str) {
        for i in self.index.get(n).into_iter().flatten() {
            self.open.remove(i);
            self.open_conn.remove(i);
        }
    }

    /// The program exited: every socket is closed.
    fn close_all(&mut self) {
        self.open.clear();
        self.open_conn.clear();
    }

    fn is_closed(&self, n: &str) -> bool {
        self.index
            .get(n)
            .is_some_and(|v| v.iter().all(|i| !self.open.contains(i)))
    }

    /// The default socket of a call: `conn` if open, else the first open
    /// `conn*`, else the first open socket; a listening one only when no
    /// other is open (a program reads and writes on the descriptors
    /// accept() and connect() gave it).
    fn default_sock(&self) -> Option<&str> {
        let conn = self.index.get("conn").into_iter().flatten();
        let talking = |i: &&usize| !self.listening.contains(*i);
        let i = conn
            .filter(|i| self.open.contains(i))
            .find(talking)
            .or_else(|| self.open_conn.iter().find(talking))
            .or_else(|| self.open.iter().find(talking))
            .or_else(|| self.open.first())?;
        Some(&self.socks[*i])
    }

    /// `listen` was made on the socket of this name.
    fn listens(&mut self, n: &str) {
        self.listening
            .extend(self.index.get(n).into_iter().flatten().copied());
    }

    /// The newest open socket a `listen` was made on.
    fn listener(&self) -> Option<&str> {
        let i = self
            .listening
            .iter()
            .rev()
            .find(|i| self.open.contains(i))?;
        Some(&self.socks[*i])
    }

    /// The name an accepted connection gets without `as NAME`: `conn`,
    /// then `conn2`, `conn3`, ...: the first not taken.
    fn next_conn_name(&mut self) -> String {
        loop {
            let k = self.next_conn.max(1);
            let n = if k == 1 {
                "conn".to_string()
            } else {
                format!("conn{k}")
            };
            if !self.has(&n) {
                return n;
            }
            self.next_conn = k + 1;
        }
    }
}

/// Where a run stopped at the horizon before its last step.
struct Cut {
    /// The step, and whether it was a `wait` cut short (else it never ran).
    line: u32,
    text: String,
    wait: bool,
}

/// One block being walked ([`Runner::walk`]): its steps, the next one,
/// and how many rounds are left (a `repeat`'s count; 1 for the script).
struct Frame<'s> {
    steps: &'s [Step],
    next: usize,
    rounds: u32,
}

struct Runner<'a> {
    script: &'a Script,
    engine: &'a mut dyn Engine,
    names: Vec<Names>,
    /// Each host's index by name.
    host_of: HashMap<&'a str, usize>,
    hosts: Vec<HostSpec>,
    next_port: u16,
    calls: Vec<CallRecord>,
    /// The first [`MAX_KEPT_FAILURES`] failed expectations; the rest are
    /// counted in `failures_omitted`.
    failures: Vec<Failure>,
    failures_omitted: u64,
    checked: usize,
    /// Segments before this index (in the engine's list) were sent before
    /// the current step began.
    seg_mark: usize,
    /// Where segments and calls go as they happen (a streamed run), instead
    /// of into the trace.
    sink: Option<&'a mut dyn TraceSink>,
    /// Relative numbering of the segments before `seg_mark`, so that an
    /// expectation numbers the step's segments as the trace does.
    rel: Relative,
    /// The segments since `seg_mark`, numbered, once an expectation has
    /// asked: the expectations that follow a step share them (a `repeat`
    /// of them would otherwise number a bulk step's segments each round).
    window: Option<Vec<RelSegment>>,
    /// The text of each step's last call (by the step's address; the
    /// script outlives the run).
    shown: HashMap<usize, (Call, String)>,
    /// Another engine's step times to follow ([`RunOptions::schedule`]).
    schedule: Option<std::sync::Arc<[u64]>>,
    /// How many steps have begun (the run's end counts as one more).
    begun: usize,
    /// This run's own step times ([`Trace::step_times_us`]), kept only
    /// when [`RunOptions::keep_step_times`] asks: 8 bytes a step adds up
    /// over a long `repeat`.
    times: Option<Vec<u64>>,
    horizon: u64,
    /// Set when the horizon ended the run before its last step.
    cut: Option<Cut>,
    /// The close policy the run follows (for `when policy` blocks).
    policy: crate::vocab::Policy,
}

/// Runs a script on an engine to the end (or the horizon).
pub fn run(
    script: &Script,
    engine: &mut dyn Engine,
    opts: &RunOptions,
    horizon_override_us: Option<u64>,
) -> Result<Trace, RunError> {
    run_into(script, engine, opts, horizon_override_us, None)
}

/// [`run`], handing each segment and call to `sink` as it happens instead
/// of keeping it: the trace returned has no segments and no calls, and a
/// run of any length holds only the current step's segments.
pub fn run_streaming(
    script: &Script,
    engine: &mut dyn Engine,
    opts: &RunOptions,
    horizon_override_us: Option<u64>,
    sink: &mut dyn TraceSink,
) -> Result<Trace, RunError> {
    run_into(script, engine, opts, horizon_override_us, Some(sink))
}

fn run_into<'a>(
    script: &'a Script,
    engine: &'a mut dyn Engine,
    opts: &RunOptions,
    horizon_override_us: Option<u64>,
    sink: Option<&'a mut dyn TraceSink>,
) -> Result<Trace, RunError> {
    let hosts = HostSpec::for_hosts(&script.hosts);
    let horizon = horizon_override_us
        .or(script.horizon_us)
        .unwrap_or(DEFAULT_HORIZON_US);
    let mut r = Runner {
        script,
        engine,
        names: script.hosts.iter().map(|_| Names::default()).collect(),
        host_of: script
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.as_str(), i))
            .collect(),
        hosts: hosts.clone(),
        next_port: FIRST_LOCAL_PORT,
        calls: Vec::new(),
        failures: Vec::new(),
        failures_omitted: 0,
        checked: 0,
        seg_mark: 0,
        sink,
        rel: Relative::default(),
        window: None,
        shown: HashMap::new(),
        schedule: opts.schedule.clone(),
        begun: 0,
        times: opts.keep_step_times.then(Vec::new),
        horizon,
        cut: None,
        policy: opts.policy,
    };
    let head = Head {
        scenario: script.name(),
        title: script.title.clone(),
        engine: r.engine.kind(),
        policy: opts.policy,
        hosts: hosts.clone(),
    };
    if let Some(k) = r.sink.as_mut() {
        k.begin(&head);
    }
    // The horizon bounds blocking calls too: none waits past it.
    r.engine.begin(horizon);
    r.walk(&script.steps)?;
    r.begin_step();
    let mut fin = r.engine.finish(horizon);
    r.mark_step();
    if let Some(cut) = &r.cut {
        // Every engine stops at the horizon, whether or not its own
        // clock would have: the same words as the model's finish.
        let note = horizon_note(horizon);
        if !fin.notes.contains(&note) {
            fin.notes.push(note);
        }
        fin.notes.push(if cut.wait {
            format!(
                "`{}` (line {}) was cut short at the horizon, and the run ended there",
                quote(&cut.text),
                cut.line
            )
        } else {
            format!(
                "the run reached the horizon before line {} (`{}`) and ended there",
                cut.line,
                quote(&cut.text)
            )
        });
    }
    let mut counters = BTreeMap::new();
    for (i, h) in hosts.iter().enumerate() {
        let c = r.engine.counters(i);
        if !c.is_empty() {
            counters.insert(h.name.clone(), c);
        }
    }
    let segments = if r.sink.is_some() {
        Vec::new()
    } else {
        r.engine.segments().to_vec()
    };
    Ok(Trace {
        scenario: head.scenario,
        title: head.title,
        engine: head.engine,
        policy: head.policy,
        hosts,
        segments,
        calls: r.calls,
        states: fin.states,
        counters,
        open_at_end: fin.open_at_end,
        notes: fin.notes,
        end_us: fin.end_us,
        expectations_checked: r.checked,
        failures: r.failures,
        failures_omitted: r.failures_omitted,
        step_times_us: r.times.unwrap_or_default(),
    })
}

impl<'a> Runner<'a> {
    /// A step begins: the segments so far are behind it. They are numbered
    /// (for the step's expectations) and, in a streamed run, handed on and
    /// dropped.
    fn mark_step(&mut self) {
        self.window = None;
        let segs = self.engine.segments();
        for s in &segs[self.seg_mark.min(segs.len())..] {
            self.rel.observe(s);
            if let Some(k) = self.sink.as_mut() {
                k.segment(s);
            }
        }
        self.seg_mark = segs.len();
        if self.sink.is_some() && self.engine.forget_segments() {
            self.seg_mark = 0;
        }
    }

    fn host(&self, name: &str) -> usize {
        // The parser only lets declared hosts through.
        self.host_of.get(name).copied().unwrap_or(0)
    }

    fn script_err(&self, step: &Step, msg: String) -> RunError {
        RunError::Script {
            file: self.script.path.clone(),
            line: step.line,
            col: step.col,
            msg,
        }
    }

    /// A step (or the run's end) begins: on a schedule, when it is due.
    fn begin_step(&mut self) {
        if let Some(&t) = self.schedule.as_ref().and_then(|s| s.get(self.begun)) {
            self.engine.advance_to(t);
        }
        self.begun += 1;
        if let Some(times) = &mut self.times {
            times.push(self.engine.now_us());
        }
    }

    /// Whether the next step's time comes from the schedule (then this
    /// engine neither settles nor waits by its own clock).
    fn on_schedule(&self) -> bool {
        self.schedule.as_ref().is_some_and(|s| self.begun < s.len())
    }

    /// Whether the run ends before `step`: its clock is past the horizon.
    /// On a schedule the leading run decided: its schedule ends (but for
    /// the entry of the run's end) where it stopped, so both runs make the
    /// same steps.
    fn past_horizon(&self) -> bool {
        match &self.schedule {
            Some(s) if !s.is_empty() => self.begun + 1 >= s.len(),
            _ => self.engine.now_us() > self.horizon,
        }
    }

    /// Runs the steps, `repeat` blocks unrolled, with a stack of its own:
    /// the depth of the blocks costs no native stack, and the walk stops
    /// at the horizon.
    fn walk(&mut self, steps: &'a [Step]) -> Result<(), RunError> {
        let mut stack = vec![Frame {
            steps,
            next: 0,
            rounds: 1,
        }];
        while let Some(f) = stack.last_mut() {
            let Some(step) = f.steps.get(f.next) else {
                f.rounds -= 1;
                f.next = 0;
                if f.rounds == 0 {
                    stack.pop();
                }
                continue;
            };
            f.next += 1;
            if let StepKind::Repeat { count, steps } = &step.kind {
                // An empty or zero-count block (a script built in code;
                // the parser refuses both) does nothing.
                if *count > 0 && !steps.is_empty() {
                    stack.push(Frame {
                        steps,
                        next: 0,
                        rounds: *count,
                    });
                }
                continue;
            }
            // Expectations for a close policy: checked under that policy
            // only (the run is the same under every policy).
            if let StepKind::When { policy, steps } = &step.kind {
                if *policy == self.policy && !steps.is_empty() {
                    stack.push(Frame {
                        steps,
                        next: 0,
                        rounds: 1,
                    });
                }
                continue;
            }
            if self.past_horizon() {
                self.cut = Some(Cut {
                    line: step.line,
                    text: step.text.clone(),
                    wait: false,
                });
                return Ok(());
            }
            self.step(step)?;
            if self.cut.is_some() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Between steps the network settles, unless the schedule says when
    /// the next step is.
    fn settle(&mut self) {
        if !self.on_schedule() {
            self.engine.settle();
        }
    }

    /// One step other than `repeat` (which [`Runner::walk`] unrolls).
    fn step(&mut self, step: &Step) -> Result<(), RunError> {
        self.begin_step();
        if !matches!(step.kind, StepKind::Expect(_)) {
            self.mark_step();
        }
        match &step.kind {
            StepKind::Call(c) => {
                let (h, name, call, ctx) = self.resolve(step, c)?;
                let out = self.engine.call(h, &name, &call, &ctx);
                self.record(step, c, &name, &call, out);
                self.settle();
            }
            StepKind::Together(steps) => {
                // The calls between two `wait`s (or faults) are made at
                // one instant; a `wait` lets time (and the network) run
                // without settling, a fault applies to what the calls
                // after it send. Without either this is one group.
                let mut rest: &[Step] = steps;
                while !rest.is_empty() {
                    let n = rest
                        .iter()
                        .position(|s| !matches!(s.kind, StepKind::Call(_)))
                        .unwrap_or(rest.len());
                    let (group, after) = rest.split_at(n);
                    if !group.is_empty() {
                        self.together(group)?;
                    }
                    match after.first().map(|s| &s.kind) {
                        Some(StepKind::Wait { us }) => {
                            let left = self.horizon.saturating_sub(self.engine.now_us());
                            self.engine.wait((*us).min(left));
                        }
                        Some(StepKind::Fault { host, fault }) => {
                            let h = self.host(host);
                            self.engine.fault(h, fault)?;
                        }
                        _ => {}
                    }
                    rest = after.get(1..).unwrap_or(&[]);
                }
                self.settle();
            }
            // Walked by the caller.
            StepKind::Repeat { .. } | StepKind::When { .. } => {}
            StepKind::Wait { us } => {
                if !self.on_schedule() {
                    // Not past the horizon: the run ends there (the
                    // engine's own wait need not know of it).
                    let now = self.engine.now_us();
                    let left = self.horizon.saturating_sub(now);
                    self.engine.wait((*us).min(left));
                    if *us > left {
                        self.cut = Some(Cut {
                            line: step.line,
                            text: step.text.clone(),
                            wait: true,
                        });
                    }
                }
            }
            StepKind::Sysctl { host, key, value } => {
                let h = self.host(host);
                self.engine
                    .sysctl(h, *key, value)
                    .map_err(|e| self.script_err(step, e.0))?;
            }
            StepKind::Fault { host, fault } => {
                let h = self.host(host);
                self.engine.fault(h, fault)?;
            }
            StepKind::Release { host } => {
                let h = self.host(host);
                self.engine.release(h)?;
                self.settle();
            }
            StepKind::Expect(e) => self.expect(step, e)?,
        }
        if let Some(k) = self.sink.as_mut() {
            k.step_done();
        }
        Ok(())
    }

    /// Calls made at one instant ([`Engine::call_together`]), recorded.
    fn together(&mut self, group: &[Step]) -> Result<(), RunError> {
        let mut resolved = Vec::new();
        let mut cs = Vec::new();
        for s in group {
            if let StepKind::Call(c) = &s.kind {
                resolved.push(self.resolve(s, c)?);
                cs.push((s, c));
            }
        }
        let outs = self.engine.call_together(&resolved);
        for ((s, c), (out, (_, name, call, _))) in
            cs.into_iter().zip(outs.into_iter().zip(resolved.iter()))
        {
            self.record(s, c, name, call, out);
        }
        Ok(())
    }

    /// Turns a call step into (host, socket name, call, context), creating
    /// the implicit sockets and names the script relies on.
    fn resolve(
        &mut self,
        step: &Step,
        c: &CallStep,
    ) -> Result<(usize, String, Call, CallCtx), RunError> {
        let h = self.host(&c.host);
        let mut ctx = CallCtx::default();
        let exists = |r: &Self, n: &str| r.names[h].has(n);
        let name = match &c.call {
            Call::Socket => {
                let n = c.name_as.clone().unwrap_or_else(|| "conn".into());
                if exists(self, &n) {
                    return Err(self.script_err(
                        step,
                        format!(
                            "{} already has a socket named `{n}`: use `socket as NAME`",
                            c.host
                        ),
                    ));
                }
                self.names[h].add(n.clone());
                self.names[h].fresh.push(n.clone());
                n
            }
            Call::Listen { .. } | Call::Connect { .. } => {
                let default = if matches!(c.call, Call::Listen { .. }) {
                    "listener"
                } else {
                    "conn"
                };
                let fresh = self.names[h]
                    .fresh
                    .iter()
                    .rev()
                    .find(|s| !self.names[h].is_closed(s))
                    .cloned();
                let n = c
                    .sock
                    .clone()
                    .or_else(|| c.name_as.clone())
                    .or(fresh)
                    .unwrap_or_else(|| default.into());
                self.names[h].fresh.retain(|s| s != &n);
                if !exists(self, &n) {
                    self.names[h].add(n.clone());
                    // The implicit socket() a program makes first.
                    let out = self.engine.call(h, &n, &Call::Socket, &ctx);
                    if out.ret < 0 && !out.unsupported {
                        return Err(self.script_err(
                            step,
                            format!(
                                "socket() failed: {}",
                                out.errno.map_or(String::new(), |e| e.to_string())
                            ),
                        ));
                    }
                }
                if let Call::Connect {
                    host, from_port, ..
                } = &c.call
                {
                    let port = match from_port {
                        Some(p) => *p,
                        None => {
                            let p = self.next_port;
                            self.next_port = self.next_port.wrapping_add(1).max(FIRST_LOCAL_PORT);
                            p
                        }
                    };
                    ctx.local_port = Some(port);
                    ctx.peer_addr = self.script.host_index(host).map(|i| self.hosts[i].addr);
                }
                if matches!(c.call, Call::Listen { .. }) {
                    self.names[h].listens(&n);
                }
                n
            }
            Call::Accept => {
                let l = c
                    .sock
                    .clone()
                    .or_else(|| self.names[h].listener().map(str::to_string))
                    .unwrap_or_else(|| "listener".into());
                if !exists(self, &l) {
                    return Err(self.script_err(
                        step,
                        format!(
                            "{} has no socket named `{l}` to accept on (listen first)",
                            c.host
                        ),
                    ));
                }
                let new = match &c.name_as {
                    Some(n) if exists(self, n) => {
                        return Err(self.script_err(
                            step,
                            format!("{} already has a socket named `{n}`", c.host),
                        ));
                    }
                    Some(n) => n.clone(),
                    None => self.names[h].next_conn_name(),
                };
                ctx.new_name = Some(new);
                l
            }
            Call::Exit => "-".into(),
            _ => {
                let n = match &c.sock {
                    Some(s) => s.clone(),
                    None => {
                        // The default socket: `conn`, else the first open `conn*`,
                        // else the listener.
                        match self.names[h].default_sock() {
                            Some(s) => s.to_string(),
                            None => {
                                return Err(self.script_err(
                                    step,
                                    format!(
                                        "{} has no open socket for {} (connect, accept or socket first, or name one as HOST.SOCKET)",
                                        c.host,
                                        c.call.verb()
                                    ),
                                ))
                            }
                        }
                    }
                };
                if !exists(self, &n) {
                    return Err(
                        self.script_err(step, format!("{} has no socket named `{n}`", c.host))
                    );
                }
                n
            }
        };
        Ok((h, name, c.call.clone(), ctx))
    }

    fn record(&mut self, step: &Step, c: &CallStep, name: &str, call: &Call, out: CallOutcome) {
        let h = self.host(&c.host);
        // A successful accept creates the new name; socket()/accept() return
        // a descriptor number, normalised across engines as 3 + the host's
        // socket ordinal (programs start with 0, 1, 2 open).
        let mut ret = out.ret;
        if let (Call::Accept, true) = (call, out.ret >= 0) {
            let n = match &c.name_as {
                Some(n) => n.clone(),
                None => self.names[h].next_conn_name(),
            };
            self.names[h].add(n);
            ret = 2 + self.names[h].socks.len() as i64;
        }
        if let (Call::Socket, true) = (call, out.ret >= 0) {
            ret = 2 + self.names[h].socks.len() as i64;
        }
        if matches!(call, Call::Close) && out.ret == 0 {
            self.names[h].close(name);
        }
        if matches!(call, Call::Exit) {
            self.names[h].close_all();
        }
        let events = match call {
            Call::Poll { .. } if out.ret >= 0 => Some(epoll::names(out.ret as u32)),
            _ => None,
        };
        let mut note = out.note.clone();
        if let Some(d) = &out.data {
            let shown = String::from_utf8_lossy(&d.prefix(24)).to_string();
            let more = if d.len() > 24 { "..." } else { "" };
            let n = format!("data {:?}{more}", shown);
            note = Some(match note {
                Some(x) => format!("{n}; {x}"),
                None => n,
            });
        }
        let rec = CallRecord {
            time_us: self.engine.now_us(),
            host: c.host.clone(),
            sock: name.to_string(),
            call: self.display(step, call),
            ret,
            errno: out.errno,
            line: step.line,
            note,
            events,
            info: out.info.clone(),
        };
        if let Some(exp) = &c.expected {
            self.checked += 1;
            let ok = match exp {
                Expected::Value(v) => rec.errno.is_none() && rec.ret == *v,
                Expected::Errno(e) => rec.errno == Some(*e),
                Expected::Events(m) => rec.errno.is_none() && rec.ret as u32 == *m,
            };
            if !ok {
                self.fail(step, || {
                    format!("expected = {exp}, got = {}", rec.result_text())
                });
            }
        }
        match self.sink.as_mut() {
            Some(k) => k.call(&rec),
            None => self.calls.push(rec),
        }
    }

    /// `call.display()`, remembered per step: a step inside `repeat` makes
    /// the same call each time round.
    fn display(&mut self, step: &Step, call: &Call) -> String {
        let key = step as *const Step as usize;
        if let Some((c, text)) = self.shown.get(&key)
            && c == call
        {
            return text.clone();
        }
        let text = call.display();
        self.shown.insert(key, (call.clone(), text.clone()));
        text
    }

    /// An expectation failed. The first [`MAX_KEPT_FAILURES`] are kept
    /// (`why` is only worked out for those); the rest are counted: a
    /// `repeat` of a failing expectation would otherwise keep, and print,
    /// one per round.
    fn fail(&mut self, step: &Step, why: impl FnOnce() -> String) {
        if self.failures.len() < MAX_KEPT_FAILURES {
            self.failures.push(Failure {
                file: self.script.path.clone(),
                line: step.line,
                text: step.text.clone(),
                why: why(),
            });
        } else {
            self.failures_omitted += 1;
        }
    }

    fn expect(&mut self, step: &Step, e: &Expect) -> Result<(), RunError> {
        self.checked += 1;
        match e {
            Expect::Segment {
                negated,
                src,
                dst,
                flags,
                seq,
                ack,
                win,
                len,
            } => {
                let window = match self.window.take() {
                    Some(w) => w,
                    None => {
                        let segs = self.engine.segments();
                        let mut rel = self.rel.clone();
                        segs[self.seg_mark.min(segs.len())..]
                            .iter()
                            .map(|s| rel.next(s))
                            .collect()
                    }
                };
                let ftext = flags.tcpdump();
                let same_dir: Vec<_> = window
                    .iter()
                    .filter(|s| &s.src == src && &s.dst == dst)
                    .collect();
                let hit = same_dir.iter().any(|s| {
                    s.flags == ftext
                        && seq.is_none_or(|v| s.seq == v)
                        && ack.is_none_or(|v| s.ack == Some(v))
                        && win.is_none_or(|v| s.win == v)
                        && len.is_none_or(|v| s.len == v)
                });
                // Worked out only for a failure that is kept.
                let keep = self.failures.len() < MAX_KEPT_FAILURES;
                if hit == *negated && !keep {
                    self.fail(step, String::new);
                } else if hit == *negated {
                    let seen: Vec<String> = same_dir
                        .iter()
                        .map(|s| {
                            let mut t = format!("[{}] seq {}", s.flags, s.seq);
                            if let Some(a) = s.ack {
                                let _ =
                                    std::fmt::Write::write_fmt(&mut t, format_args!(" ack {a}"));
                            }
                            let _ = std::fmt::Write::write_fmt(
                                &mut t,
                                format_args!(" win {} len {}", s.win, s.len),
                            );
                            t
                        })
                        .collect();
                    let why = if *negated {
                        format!("such a segment was sent: {}", seen.join("; "))
                    } else if seen.is_empty() {
                        format!("no segment from {src} to {dst} since the previous step")
                    } else {
                        format!("{src} > {dst} sent only: {}", seen.join("; "))
                    };
                    self.fail(step, || why);
                }
                self.window = Some(window);
            }
            Expect::State { host, sock, state } => {
                let h = self.host(host);
                let name = match sock {
                    Some(s) => s.clone(),
                    None => {
                        let names = &self.names[h];
                        let conn = names.has("conn").then_some("conn");
                        match conn.or_else(|| names.socks.first().map(String::as_str)) {
                            Some(s) => s.to_string(),
                            None => {
                                return Err(
                                    self.script_err(step, format!("{host} has no socket yet"))
                                );
                            }
                        }
                    }
                };
                match self.engine.state(h, &name) {
                    Some(got) if got == *state => {}
                    Some(got) => self.fail(step, || format!("{host}.{name} is in {got}")),
                    None => {
                        return Err(
                            self.script_err(step, format!("{host} has no socket named `{name}`"))
                        );
                    }
                }
            }
            Expect::Counter { host, name, value } => {
                let h = self.host(host);
                let got = self.engine.counters(h).get(name).copied().unwrap_or(0);
                if got != *value {
                    self.fail(step, || format!("{host} {name} changed by {got}"));
                }
            }
        }
        Ok(())
    }
}
