//! A run's result: segments, calls, states, counters, connections left
//! open; rendered as text (tcpdump-like) or JSON.

use crate::engine::{HostSpec, OpenConn, StateChange};
use crate::segment::{RelSegment, Segment};
use crate::vocab::{Counter, EngineKind, Errno, Policy, SockInfo};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Seek, Write};
use std::net::Ipv4Addr;

/// One call as the program saw it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallRecord {
    pub time_us: u64,
    pub host: String,
    /// The socket's name in the script (`-` for host-level calls).
    pub sock: String,
    pub call: String,
    pub ret: i64,
    pub errno: Option<Errno>,
    /// The script line.
    pub line: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// For `poll`: the events, by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<String>,
    /// For `getsockopt`: the facts the engine reported, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<Box<SockInfo>>,
}

impl CallRecord {
    /// `= 1`, `= -1 ECONNRESET`, `= EPOLLIN|EPOLLOUT`.
    pub fn result_text(&self) -> String {
        match (&self.errno, &self.events) {
            (Some(e), _) => format!("-1 {e}"),
            (None, Some(ev)) => ev.clone(),
            (None, None) => self.ret.to_string(),
        }
    }
}

/// An expectation that did not hold.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Failure {
    pub file: String,
    pub line: u32,
    pub text: String,
    pub why: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: `{}` failed: {}",
            self.file, self.line, self.text, self.why
        )
    }
}

/// Everything a run produced.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    pub scenario: String,
    pub title: String,
    pub engine: EngineKind,
    pub policy: Policy,
    pub hosts: Vec<HostSpec>,
    pub segments: Vec<Segment>,
    pub calls: Vec<CallRecord>,
    pub states: Vec<StateChange>,
    pub counters: BTreeMap<String, BTreeMap<Counter, i64>>,
    pub open_at_end: Vec<OpenConn>,
    pub notes: Vec<String>,
    pub end_us: u64,
    pub expectations_checked: usize,
    /// The first [`crate::limits::MAX_KEPT_FAILURES`] expectations that
    /// failed.
    pub failures: Vec<Failure>,
    /// How many more failed (counted, not kept).
    pub failures_omitted: u64,
    /// The engine's clock (µs) when each step began, in the order the steps
    /// ran (a repeat's body once per round), then when the run's end began:
    /// the schedule another engine can be run on ([`crate::engine::RunOptions::schedule`]).
    pub step_times_us: Vec<u64>,
}

/// Formats microseconds as tcpdump's `seconds.micros`.
pub fn fmt_time(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

/// Makes sequence numbers relative, per connection and direction, the way
/// tcpdump does: each side's ISN is the sequence number of its SYN (or, if
/// no SYN was seen, its first sequence number minus one... as tcpdump, the
/// first one seen).
pub fn relative(segments: &[Segment]) -> Vec<RelSegment> {
    let mut r = Relative::default();
    segments.iter().map(|s| r.next(s)).collect()
}

/// [`relative`] one segment at a time: the ISN of each direction seen so
/// far, so that a streamed trace numbers its segments as a whole one.
///
/// A short list searched from the most recent end: a trace has a handful
/// of directions, and a segment is most often in the last one used.
#[derive(Clone, Debug, Default)]
pub struct Relative {
    isn: Vec<(Dir, u32)>,
}

type Dir = (Ipv4Addr, u16, Ipv4Addr, u16);

impl Relative {
    fn get(&self, d: &Dir) -> Option<u32> {
        self.isn.iter().rev().find(|(k, _)| k == d).map(|(_, v)| *v)
    }
    fn insert(&mut self, d: Dir, v: u32) {
        match self.isn.iter_mut().rev().find(|(k, _)| *k == d) {
            Some(e) => e.1 = v,
            None => self.isn.push((d, v)),
        }
    }
    fn or_insert(&mut self, d: Dir, v: u32) -> u32 {
        match self.get(&d) {
            Some(x) => x,
            None => {
                self.isn.push((d, v));
                v
            }
        }
    }
}

impl Relative {
    /// Takes note of a segment's ISNs without rendering it; returns the
    /// bases of its direction and of the reverse one (if known).
    pub fn observe(&mut self, s: &Segment) -> (u32, Option<u32>) {
        let dir = (s.src_addr, s.sport, s.dst_addr, s.dport);
        let rev = (s.dst_addr, s.dport, s.src_addr, s.sport);
        if s.flags.syn() {
            self.insert(dir, s.seq);
        }
        let base = self.or_insert(dir, s.seq.wrapping_sub(1));
        if s.flags.ack() {
            self.or_insert(rev, s.ack.wrapping_sub(1));
        }
        (base, self.get(&rev))
    }

    /// The next segment of the trace, with relative numbers.
    pub fn next(&mut self, s: &Segment) -> RelSegment {
        let (base, rb) = self.observe(s);
        let ack = if s.flags.ack() {
            rb.map(|rbase| s.ack.wrapping_sub(rbase))
        } else {
            None
        };
        let sack_rel = |x: u32| rb.map_or(x, |b| x.wrapping_sub(b));
        RelSegment {
            time_us: s.time_us,
            src: s.src.to_string(),
            dst: s.dst.to_string(),
            sport: s.sport,
            dport: s.dport,
            flags: s.flags.tcpdump(),
            seq: s.seq.wrapping_sub(base),
            ack,
            win: s.win,
            len: s.len,
            urg: if s.flags.urg() { Some(s.urg_ptr) } else { None },
            options: s.options_text(&sack_rel),
            why: s.why.as_ref().map(|w| w.to_string()),
            rst_reason: s.rst_reason,
            lost: s.lost,
        }
    }
}

/// What a trace says before its first segment.
#[derive(Clone, Debug, Default)]
pub struct Head {
    pub scenario: String,
    pub title: String,
    pub engine: EngineKind,
    pub policy: Policy,
    pub hosts: Vec<HostSpec>,
}

/// Where a run hands its segments and calls as they happen, so that a long
/// run need not hold them: [`TraceWriter`] prints them at once.
pub trait TraceSink {
    /// Before the first step.
    fn begin(&mut self, head: &Head);
    /// A segment, once it is final (sent, and marked lost or not).
    fn segment(&mut self, s: &Segment);
    /// A call, once it has returned.
    fn call(&mut self, c: &CallRecord);
    /// A step of the script is done (for a progress bar).
    fn step_done(&mut self) {}
}

/// The output formats of a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Where calls wait while segments are printed (calls come after segments
/// in both formats): memory for a trace rendered whole, an unlinked
/// temporary file for a streamed run, so that memory stays flat.
enum Spool {
    Mem(Vec<u8>),
    File(std::io::BufWriter<std::fs::File>),
}

impl Spool {
    fn file() -> io::Result<Spool> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir();
        loop {
            let n = N.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("finrst-calls-{}-{n}", std::process::id()));
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(f) => {
                    // Unlinked at once: nothing is left behind, whatever
                    // ends the process.
                    let _ = std::fs::remove_file(&path);
                    return Ok(Spool::File(std::io::BufWriter::new(f)));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn write(&mut self) -> &mut dyn Write {
        match self {
            Spool::Mem(v) => v,
            Spool::File(f) => f,
        }
    }

    fn copy_to(self, out: &mut dyn Write) -> io::Result<()> {
        match self {
            Spool::Mem(v) => out.write_all(&v),
            Spool::File(f) => {
                let mut f = f.into_inner().map_err(|e| e.into_error())?;
                f.seek(io::SeekFrom::Start(0))?;
                io::copy(&mut f, out).map(|_| ())
            }
        }
    }
}

/// `value` as serde_json's pretty printer would write it `depth` levels
/// deep (JSON strings hold no raw newline, so indenting lines is exact).
fn pretty_at<T: Serialize + ?Sized>(value: &T, depth: usize) -> String {
    let text = serde_json::to_string_pretty(value).expect("plain data serialises");
    let pad = " ".repeat(2 * depth);
    text.replace('\n', &format!("\n{pad}"))
}

/// Writes a trace in text or JSON as the run goes: the head, each segment
/// when it is final, the calls (spooled: they print after the segments),
/// then the rest from the finished [`Trace`]. [`Trace::to_text`] and
/// [`Trace::to_json`] go through it too, so both paths print the same
/// bytes. It can also write the segments to a pcap stream as they come.
pub struct TraceWriter<W: Write> {
    out: W,
    format: Format,
    rel: Relative,
    segments: usize,
    calls: usize,
    spool: Spool,
    pcap: Option<Box<dyn Write>>,
    /// The first write error; the run goes on, [`TraceWriter::end`]
    /// reports it.
    error: Option<io::Error>,
}

impl<W: Write> TraceWriter<W> {
    /// A writer that keeps the calls in memory (a trace rendered whole).
    pub fn in_memory(out: W, format: Format) -> Self {
        TraceWriter {
            out,
            format,
            rel: Relative::default(),
            segments: 0,
            calls: 0,
            spool: Spool::Mem(Vec::new()),
            pcap: None,
            error: None,
        }
    }

    /// A writer for a long run: calls wait in an unlinked temporary file.
    pub fn streaming(out: W, format: Format) -> io::Result<Self> {
        let mut w = Self::in_memory(out, format);
        w.spool = Spool::file()?;
        Ok(w)
    }

    /// Also writes every segment to `pcap` (header first) as it comes.
    pub fn with_pcap(mut self, mut pcap: Box<dyn Write>) -> io::Result<Self> {
        crate::pcap::write_header(&mut pcap)?;
        self.pcap = Some(pcap);
        Ok(self)
    }

    fn keep(&mut self, r: io::Result<()>) {
        if let Err(e) = r {
            self.error.get_or_insert(e);
        }
    }

    fn write_head(&mut self, h: &Head) -> io::Result<()> {
        let o = &mut self.out;
        match self.format {
            Format::Text => {
                let policy = if h.engine == EngineKind::Model {
                    format!(", {} policy", h.policy)
                } else {
                    String::new()
                };
                writeln!(o, "scenario {} ({} engine{policy})", h.scenario, h.engine)?;
                if !h.title.is_empty() {
                    writeln!(o, "title    {}", h.title)?;
                }
                let hosts: Vec<String> = h
                    .hosts
                    .iter()
                    .map(|h| format!("{}={}", h.name, h.addr))
                    .collect();
                writeln!(o, "hosts    {}", hosts.join(" "))?;
                writeln!(o, "\nsegments:")
            }
            Format::Json => {
                write!(o, "{{")?;
                let fields: [(&str, String); 5] = [
                    ("scenario", pretty_at(&h.scenario, 1)),
                    ("title", pretty_at(&h.title, 1)),
                    ("engine", pretty_at(&h.engine, 1)),
                    ("policy", pretty_at(&h.policy, 1)),
                    ("hosts", pretty_at(&h.hosts, 1)),
                ];
                for (i, (k, v)) in fields.iter().enumerate() {
                    write!(o, "{}\n  \"{k}\": {v}", if i > 0 { "," } else { "" })?;
                }
                write!(o, ",\n  \"segments\": [")
            }
        }
    }

    fn write_segment(&mut self, s: &Segment) -> io::Result<()> {
        if let Some(p) = &mut self.pcap {
            crate::pcap::write_record(p, s)?;
        }
        let r = self.rel.next(s);
        let o = &mut self.out;
        match self.format {
            Format::Text => {
                writeln!(
                    o,
                    "{:>11} {}{}",
                    fmt_time(r.time_us),
                    r,
                    if r.lost { "  [lost]" } else { "" }
                )?;
                if let Some(w) = &r.why {
                    writeln!(o, "{:>11}   ^ {}", "", w)?;
                } else if let Some(reason) = r.rst_reason {
                    // The linux engine knows no path, only the kernel's
                    // own reason (tcp:tcp_send_reset).
                    writeln!(o, "{:>11}   ^ RST, the kernel's reason: {reason}", "")?;
                }
            }
            Format::Json => {
                let sep = if self.segments > 0 { "," } else { "" };
                write!(o, "{sep}\n    {}", pretty_at(&r, 2))?;
            }
        }
        self.segments += 1;
        Ok(())
    }

    fn write_call(&mut self, c: &CallRecord) -> io::Result<()> {
        let o = self.spool.write();
        match self.format {
            Format::Text => {
                let who = if c.sock == "-" {
                    c.host.clone()
                } else {
                    format!("{}.{}", c.host, c.sock)
                };
                write!(
                    o,
                    "{:>11} {:<16} {} = {}",
                    fmt_time(c.time_us),
                    who,
                    c.call,
                    c.result_text()
                )?;
                if let Some(n) = &c.note {
                    write!(o, "  ({n})")?;
                }
                if let Some(i) = &c.info {
                    write!(o, "  [{i}]")?;
                }
                writeln!(o, "  [line {}]", c.line)?;
            }
            Format::Json => {
                let sep = if self.calls > 0 { "," } else { "" };
                write!(o, "{sep}\n    {}", pretty_at(c, 2))?;
            }
        }
        self.calls += 1;
        Ok(())
    }

    /// Writes what follows the segments and calls (states, counters, what
    /// was left open, notes, expectations) from the finished trace, and
    /// returns the output.
    pub fn end(mut self, t: &Trace) -> io::Result<W> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if let Some(p) = &mut self.pcap {
            p.flush()?;
        }
        let o = &mut self.out;
        match self.format {
            Format::Text => {
                if self.segments == 0 {
                    writeln!(o, "  (none)")?;
                }
                writeln!(o, "\ncalls:")?;
                self.spool.copy_to(o)?;
                writeln!(o, "\nstates:")?;
                for s in &t.states {
                    writeln!(
                        o,
                        "{:>11} {:<16} {} -> {}",
                        fmt_time(s.time_us),
                        format!("{}.{}", s.host, s.sock),
                        s.from,
                        s.to
                    )?;
                }
                writeln!(o, "\ncounters (TcpExt, change during the run):")?;
                let mut any = false;
                for (h, m) in &t.counters {
                    for (k, v) in m {
                        any = true;
                        writeln!(o, "  {h:<10} {k} {v:+}")?;
                    }
                }
                if !any {
                    writeln!(o, "  (none changed)")?;
                }
                writeln!(o, "\nopen at end ({}):", fmt_time(t.end_us))?;
                if t.open_at_end.is_empty() {
                    writeln!(o, "  (none: every connection closed)")?;
                }
                for c in &t.open_at_end {
                    writeln!(
                        o,
                        "  {}.{} :{} <-> {}  {}  {}",
                        c.host, c.sock, c.local_port, c.remote, c.state, c.detail
                    )?;
                }
                if !t.notes.is_empty() {
                    writeln!(o, "\nnotes:")?;
                    for n in &t.notes {
                        writeln!(o, "  {n}")?;
                    }
                }
                writeln!(
                    o,
                    "\nexpectations: {} checked, {}",
                    crate::limits::grouped(t.expectations_checked as u64),
                    if t.failures.is_empty() {
                        "all met".to_string()
                    } else {
                        let n = t.failures.len() as u64 + t.failures_omitted;
                        format!("{} failed", crate::limits::grouped(n))
                    }
                )?;
                for f in &t.failures {
                    writeln!(o, "  FAILED {f}")?;
                }
                if t.failures_omitted > 0 {
                    writeln!(
                        o,
                        "  ... and {} more",
                        crate::limits::grouped(t.failures_omitted)
                    )?;
                }
            }
            Format::Json => {
                write!(o, "{}]", if self.segments > 0 { "\n  " } else { "" })?;
                write!(o, ",\n  \"calls\": [")?;
                self.spool.copy_to(o)?;
                write!(o, "{}]", if self.calls > 0 { "\n  " } else { "" })?;
                let fields: [(&str, String); 7] = [
                    ("states", pretty_at(&t.states, 1)),
                    ("counters", pretty_at(&t.counters, 1)),
                    ("open_at_end", pretty_at(&t.open_at_end, 1)),
                    ("notes", pretty_at(&t.notes, 1)),
                    ("end_us", pretty_at(&t.end_us, 1)),
                    (
                        "expectations_checked",
                        pretty_at(&t.expectations_checked, 1),
                    ),
                    ("failures", pretty_at(&t.failures, 1)),
                ];
                for (k, v) in &fields {
                    write!(o, ",\n  \"{k}\": {v}")?;
                }
                // Only when some were left out: the usual shape is unchanged.
                if t.failures_omitted > 0 {
                    write!(o, ",\n  \"failures_omitted\": {}", t.failures_omitted)?;
                }
                write!(o, "\n}}")?;
            }
        }
        o.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> TraceSink for TraceWriter<W> {
    fn begin(&mut self, head: &Head) {
        let r = self.write_head(head);
        self.keep(r);
    }
    fn segment(&mut self, s: &Segment) {
        let r = self.write_segment(s);
        self.keep(r);
    }
    fn call(&mut self, c: &CallRecord) {
        let r = self.write_call(c);
        self.keep(r);
    }
}

impl Trace {
    /// The segments with relative sequence numbers, as the text trace
    /// prints them (`seq` from the sender's ISN, `ack` from the
    /// receiver's).
    pub fn relative_segments(&self) -> Vec<RelSegment> {
        relative(&self.segments)
    }

    /// The head of the trace.
    pub fn head(&self) -> Head {
        Head {
            scenario: self.scenario.clone(),
            title: self.title.clone(),
            engine: self.engine,
            policy: self.policy,
            hosts: self.hosts.clone(),
        }
    }

    fn render(&self, format: Format) -> String {
        let mut w = TraceWriter::in_memory(Vec::new(), format);
        w.begin(&self.head());
        for s in &self.segments {
            w.segment(s);
        }
        for c in &self.calls {
            w.call(c);
        }
        let bytes = w.end(self).expect("writing to memory cannot fail");
        String::from_utf8(bytes).expect("the trace is text")
    }

    /// The trace as one JSON object (the shape the README documents).
    pub fn to_json(&self) -> String {
        self.render(Format::Json)
    }

    /// The trace as text: tcpdump-style segments with the reason for each,
    /// then calls, state changes, counters and what was left open.
    pub fn to_text(&self) -> String {
        self.render(Format::Text)
    }
}
