//! A run's result: segments, calls, states, counters, connections left
//! open; rendered as text (tcpdump-like) or JSON.

use crate::engine::{HostSpec, OpenConn, StateChange};
use crate::segment::{
    LineParts, RelSegment, Segment, push_num, write_tcpdump_prefix, write_tcpdump_rest,
};
use crate::vocab::{Counter, EngineKind, Errno, Policy, RstReason, SockInfo};
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

    /// The next segment's relative numbers (what [`Relative::next`] puts in
    /// its [`RelSegment`]), without building one.
    pub fn numbers(&mut self, s: &Segment) -> RelNumbers {
        let (base, rb) = self.observe(s);
        RelNumbers {
            seq: s.seq.wrapping_sub(base),
            ack: if s.flags.ack() {
                rb.map(|rbase| s.ack.wrapping_sub(rbase))
            } else {
                None
            },
            sack_base: rb,
        }
    }

    /// The next segment of the trace, with relative numbers.
    pub fn next(&mut self, s: &Segment) -> RelSegment {
        let n = self.numbers(s);
        RelSegment {
            time_us: s.time_us,
            src: s.src.to_string(),
            dst: s.dst.to_string(),
            sport: s.sport,
            dport: s.dport,
            flags: s.flags.tcpdump(),
            seq: n.seq,
            ack: n.ack,
            win: s.win,
            len: s.len,
            urg: if s.flags.urg() { Some(s.urg_ptr) } else { None },
            options: s.options_text(&|x| n.sack(x)),
            why: s.why.as_ref().map(|w| w.to_string()),
            rst_reason: s.rst_reason,
            lost: s.lost,
        }
    }
}

/// A segment's numbers made relative ([`Relative::numbers`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelNumbers {
    pub seq: u32,
    pub ack: Option<u32>,
    /// The reverse direction's ISN, if known: SACK blocks are relative to it.
    pub sack_base: Option<u32>,
}

impl RelNumbers {
    /// A SACK block edge, relative.
    pub fn sack(&self, x: u32) -> u32 {
        self.sack_base.map_or(x, |b| x.wrapping_sub(b))
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

/// How much of a streamed run's calls the spool keeps before it keeps
/// only the last ones: 64 MiB of rendered calls (about 700,000 text lines;
/// a run that long has printed several times as much in segments).
pub const SPOOL_HEAD_BYTES: u64 = 64 << 20;
/// How many of the last calls a streamed run keeps once the spool's head
/// is full (the close() and what follows, the end of the story).
pub const SPOOL_TAIL_CALLS: usize = 1000;
/// Calls are kept in memory up to this size, then in an unlinked
/// temporary file.
const SPOOL_MEMORY: usize = 256 << 10;

/// Where calls wait while segments are printed (calls come after segments
/// in both formats): memory for a trace rendered whole; for a streamed run,
/// a bounded spool: its first [`SPOOL_HEAD_BYTES`] of calls (in memory up
/// to 256 KiB, then in an unlinked temporary file), then only the last
/// [`SPOOL_TAIL_CALLS`]; the calls between are counted, and the trace says
/// how many it leaves out. A run short of the head prints every call, so
/// the temporary space stays bounded whatever the length of the run.
enum Spool {
    Mem(Vec<u8>),
    Bounded(Box<Bounded>),
}

struct Bounded {
    head: io::BufWriter<tempfile::SpooledTempFile>,
    head_len: u64,
    head_max: u64,
    /// Set once a call did not fit the head: every later call goes to the
    /// tail, so the calls kept stay in order.
    full: bool,
    tail: std::collections::VecDeque<Vec<u8>>,
    tail_max: usize,
    omitted: u64,
}

impl Spool {
    fn bounded(head_max: u64, tail_max: usize) -> Spool {
        Spool::Bounded(Box::new(Bounded {
            head: io::BufWriter::with_capacity(1 << 16, tempfile::spooled_tempfile(SPOOL_MEMORY)),
            head_len: 0,
            head_max,
            full: false,
            tail: std::collections::VecDeque::new(),
            tail_max,
            omitted: 0,
        }))
    }

    /// Keeps one rendered call.
    fn push(&mut self, rec: &[u8]) -> io::Result<()> {
        let b = match self {
            Spool::Mem(v) => {
                v.extend_from_slice(rec);
                return Ok(());
            }
            Spool::Bounded(b) => b,
        };
        if !b.full && b.head_len + rec.len() as u64 <= b.head_max {
            b.head_len += rec.len() as u64;
            return b.head.write_all(rec);
        }
        b.full = true;
        if b.tail.len() < b.tail_max {
            b.tail.push_back(rec.to_vec());
        } else if let Some(mut v) = b.tail.pop_front() {
            b.omitted += 1;
            v.clear();
            v.extend_from_slice(rec);
            b.tail.push_back(v);
        } else {
            b.omitted += 1;
        }
        Ok(())
    }

    /// How many calls were left out.
    fn omitted(&self) -> u64 {
        match self {
            Spool::Mem(_) => 0,
            Spool::Bounded(b) => b.omitted,
        }
    }

    /// Writes the calls kept; in text, a line says where calls were left
    /// out.
    fn copy_to(self, out: &mut dyn Write, format: Format) -> io::Result<()> {
        match self {
            Spool::Mem(v) => out.write_all(&v),
            Spool::Bounded(b) => {
                let b = *b;
                let mut f = b.head.into_inner().map_err(|e| e.into_error())?;
                f.seek(io::SeekFrom::Start(0))?;
                io::copy(&mut f, out)?;
                if b.omitted > 0 && format == Format::Text {
                    let head = if b.head_max % (1 << 20) == 0 {
                        format!("{} MiB", b.head_max >> 20)
                    } else {
                        format!("{} bytes", b.head_max)
                    };
                    writeln!(
                        out,
                        "{:>11} … {} calls not shown: a streamed run keeps the first {head} of its calls and the last {}",
                        "", b.omitted, b.tail_max
                    )?;
                }
                for r in &b.tail {
                    out.write_all(r)?;
                }
                Ok(())
            }
        }
    }
}

/// See [`TraceWriter`]'s `buf`.
const OUT_CHUNK: usize = 1 << 16;

/// serde_json's pretty printer (two spaces a level) for a value that sits
/// `depth` levels deep in a document: its lines are indented as the whole
/// document's would be.
struct Pretty {
    depth: usize,
    has_value: bool,
}

impl Pretty {
    fn indent<W: ?Sized + Write>(&self, w: &mut W) -> io::Result<()> {
        const SPACES: &[u8; 64] = &[b' '; 64];
        let mut n = 2 * self.depth;
        while n > 0 {
            let k = n.min(SPACES.len());
            w.write_all(&SPACES[..k])?;
            n -= k;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for Pretty {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(b"[")
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            w.write_all(b"\n")?;
            self.indent(w)?;
        }
        w.write_all(b"]")
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        w.write_all(if first { b"\n" } else { b",\n" })?;
        self.indent(w)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(b"{")
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            w.write_all(b"\n")?;
            self.indent(w)?;
        }
        w.write_all(b"}")
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        w.write_all(if first { b"\n" } else { b",\n" })?;
        self.indent(w)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// Writes `value` as serde_json's pretty printer would `depth` levels deep
/// in a document, straight into `out`.
fn write_pretty<W: Write + ?Sized, T: Serialize + ?Sized>(
    out: &mut W,
    value: &T,
    depth: usize,
) -> io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(
        out,
        Pretty {
            depth,
            has_value: false,
        },
    );
    value.serialize(&mut ser).map_err(io::Error::from)
}

/// A segment as JSON, borrowed: the fields of [`RelSegment`] in its order,
/// with no string of its own.
#[derive(Serialize)]
struct SegmentJson<'a> {
    time_us: u64,
    src: &'a str,
    dst: &'a str,
    sport: u16,
    dport: u16,
    flags: &'a str,
    seq: u32,
    ack: Option<u32>,
    win: u16,
    len: u32,
    urg: Option<u16>,
    options: &'a str,
    why: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rst_reason: Option<RstReason>,
    lost: bool,
}

/// A direction's line prefix (see [`TraceWriter`]'s `prefixes`).
struct Prefix {
    src: std::sync::Arc<str>,
    sport: u16,
    dst: std::sync::Arc<str>,
    dport: u16,
    text: Vec<u8>,
}

/// The prefix of `s`'s direction, rendered once per direction.
fn prefix<'a>(prefixes: &'a mut Vec<Prefix>, s: &Segment) -> &'a [u8] {
    let hit = prefixes.iter().rposition(|p| {
        p.sport == s.sport && p.dport == s.dport && p.src == s.src && p.dst == s.dst
    });
    let i = match hit {
        Some(i) => i,
        None => {
            let mut text = Vec::new();
            write_tcpdump_prefix(&s.src, s.sport, &s.dst, s.dport, &mut text);
            // A run of many connections keeps the latest few.
            if prefixes.len() == 16 {
                prefixes.remove(0);
            }
            prefixes.push(Prefix {
                src: s.src.clone(),
                sport: s.sport,
                dst: s.dst.clone(),
                dport: s.dport,
                text,
            });
            prefixes.len() - 1
        }
    };
    &prefixes[i].text
}

/// The bytes before a field's value in an object two levels deep, as
/// serde_json's pretty printer writes them: `{` or `,` before the first or
/// a later field, the line break, the indent, the key and `": "`.
macro_rules! key {
    (first $k:literal) => {
        concat!("{\n      \"", $k, "\": ").as_bytes()
    };
    ($k:literal) => {
        concat!(",\n      \"", $k, "\": ").as_bytes()
    };
}

/// Appends `s` as a JSON string, escaped as serde_json escapes it.
fn push_json_str(out: &mut Vec<u8>, s: &str) -> io::Result<()> {
    // No early exit: the whole (short) string is scanned in vector steps.
    let special = s
        .bytes()
        .fold(false, |f, b| f | (b < 0x20) | (b == b'"') | (b == b'\\'));
    if special {
        return serde_json::to_writer(out, s).map_err(io::Error::from);
    }
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
    Ok(())
}

/// Appends a segment's JSON object as serde_json's pretty printer writes
/// it two levels deep (the `segments` array's items), field by field:
/// [`write_pretty`] of the [`SegmentJson`] writes the same bytes (a unit
/// test holds the two together), at a fraction of the cost.
fn write_segment_json(o: &mut Vec<u8>, j: &SegmentJson) -> io::Result<()> {
    fn num<I: itoa::Integer>(o: &mut Vec<u8>, n: Option<I>) {
        match n {
            Some(n) => push_num(o, n),
            None => o.extend_from_slice(b"null"),
        }
    }
    o.extend_from_slice(key!(first "time_us"));
    push_num(o, j.time_us);
    o.extend_from_slice(key!("src"));
    push_json_str(o, j.src)?;
    o.extend_from_slice(key!("dst"));
    push_json_str(o, j.dst)?;
    o.extend_from_slice(key!("sport"));
    push_num(o, j.sport);
    o.extend_from_slice(key!("dport"));
    push_num(o, j.dport);
    o.extend_from_slice(key!("flags"));
    push_json_str(o, j.flags)?;
    o.extend_from_slice(key!("seq"));
    push_num(o, j.seq);
    o.extend_from_slice(key!("ack"));
    num(o, j.ack);
    o.extend_from_slice(key!("win"));
    push_num(o, j.win);
    o.extend_from_slice(key!("len"));
    push_num(o, j.len);
    o.extend_from_slice(key!("urg"));
    num(o, j.urg);
    o.extend_from_slice(key!("options"));
    push_json_str(o, j.options)?;
    o.extend_from_slice(key!("why"));
    match j.why {
        Some(w) => push_json_str(o, w)?,
        None => o.extend_from_slice(b"null"),
    }
    if let Some(r) = j.rst_reason {
        o.extend_from_slice(key!("rst_reason"));
        serde_json::to_writer(&mut *o, &r).map_err(io::Error::from)?;
    }
    o.extend_from_slice(key!("lost"));
    o.extend_from_slice(if j.lost { b"true" } else { b"false" });
    o.extend_from_slice(b"\n    }");
    Ok(())
}

/// Appends a call's JSON object as serde_json's pretty printer writes it
/// two levels deep, field by field (a call with `getsockopt`'s facts goes
/// through serde_json: they nest).
fn write_call_json(o: &mut Vec<u8>, c: &CallRecord) -> io::Result<()> {
    if c.info.is_some() {
        return write_pretty(o, c, 2);
    }
    o.extend_from_slice(key!(first "time_us"));
    push_num(o, c.time_us);
    o.extend_from_slice(key!("host"));
    push_json_str(o, &c.host)?;
    o.extend_from_slice(key!("sock"));
    push_json_str(o, &c.sock)?;
    o.extend_from_slice(key!("call"));
    push_json_str(o, &c.call)?;
    o.extend_from_slice(key!("ret"));
    push_num(o, c.ret);
    o.extend_from_slice(key!("errno"));
    match &c.errno {
        Some(e) => serde_json::to_writer(&mut *o, e).map_err(io::Error::from)?,
        None => o.extend_from_slice(b"null"),
    }
    o.extend_from_slice(key!("line"));
    push_num(o, c.line);
    if let Some(n) = &c.note {
        o.extend_from_slice(key!("note"));
        push_json_str(o, n)?;
    }
    if let Some(e) = &c.events {
        o.extend_from_slice(key!("events"));
        push_json_str(o, e)?;
    }
    o.extend_from_slice(b"\n    }");
    Ok(())
}

/// Appends `{:>11}` of [`fmt_time`] (`seconds.micros`, right-aligned in 11
/// columns) without a String.
fn push_time(out: &mut Vec<u8>, us: u64) {
    let mut secs = itoa::Buffer::new();
    let secs = secs.format(us / 1_000_000).as_bytes();
    let micros = (us % 1_000_000) as u32;
    let width = secs.len() + 7;
    out.resize(out.len() + 11usize.saturating_sub(width), b' ');
    out.extend_from_slice(secs);
    out.push(b'.');
    let mut d = [b'0'; 6];
    let mut m = micros;
    for c in d.iter_mut().rev() {
        *c = b'0' + (m % 10) as u8;
        m /= 10;
    }
    out.extend_from_slice(&d);
}

/// Appends `s` left-aligned in `width` characters (`{:<width}`).
fn push_left(out: &mut Vec<u8>, s: &str, width: usize) {
    out.extend_from_slice(s.as_bytes());
    let n = s.chars().count();
    out.resize(out.len() + width.saturating_sub(n), b' ');
}

/// Writes a trace in text or JSON as the run goes: the head, each segment
/// when it is final, the calls (spooled: they print after the segments),
/// then the rest from the finished [`Trace`]. [`Trace::to_text`] and
/// [`Trace::to_json`] go through it too, so both paths print the same
/// bytes. It can also write the segments to a pcap stream as they come.
///
/// Nothing is allocated per segment or call: each is rendered into a
/// buffer the writer reuses, then handed to the output (or the spool).
pub struct TraceWriter<W: Write> {
    /// Taken by [`TraceWriter::end`]; a writer dropped before its end
    /// hands on what it rendered (a run cut by an error keeps the trace
    /// printed so far).
    out: Option<W>,
    format: Format,
    rel: Relative,
    segments: usize,
    calls: usize,
    spool: Spool,
    pcap: Option<(Box<dyn Write>, crate::pcap::Recorder)>,
    /// Segments rendered and not yet handed to `out`: they are rendered
    /// straight here, and handed on in chunks of [`OUT_CHUNK`] bytes (a
    /// chunk that large goes through a `BufWriter` without a copy).
    buf: Vec<u8>,
    /// The call being rendered.
    line: Vec<u8>,
    /// The options text being rendered.
    opts: Vec<u8>,
    /// Each direction's rendered line prefix (`client.40000 > server.9999:
    /// Flags [`), most recent last: a trace has a handful.
    prefixes: Vec<Prefix>,
    /// The first write error; the run goes on, [`TraceWriter::end`]
    /// reports it.
    error: Option<io::Error>,
}

impl<W: Write> TraceWriter<W> {
    /// A writer that keeps the calls in memory (a trace rendered whole).
    pub fn in_memory(out: W, format: Format) -> Self {
        TraceWriter {
            out: Some(out),
            format,
            rel: Relative::default(),
            segments: 0,
            calls: 0,
            spool: Spool::Mem(Vec::new()),
            pcap: None,
            buf: Vec::new(),
            line: Vec::with_capacity(256),
            opts: Vec::with_capacity(64),
            prefixes: Vec::new(),
            error: None,
        }
    }

    /// A writer for a long run: calls wait in a bounded spool (see
    /// [`SPOOL_HEAD_BYTES`]), in memory and then in an unlinked temporary
    /// file.
    pub fn streaming(out: W, format: Format) -> io::Result<Self> {
        Ok(Self::streaming_with_limits(
            out,
            format,
            SPOOL_HEAD_BYTES,
            SPOOL_TAIL_CALLS,
        ))
    }

    /// [`TraceWriter::streaming`] with other limits: the first `head_bytes`
    /// of rendered calls, then the last `tail_calls` calls.
    pub fn streaming_with_limits(
        out: W,
        format: Format,
        head_bytes: u64,
        tail_calls: usize,
    ) -> Self {
        let mut w = Self::in_memory(out, format);
        w.spool = Spool::bounded(head_bytes, tail_calls);
        w
    }

    /// Also writes every segment to `pcap` (header first) as it comes,
    /// whole.
    pub fn with_pcap(self, pcap: Box<dyn Write>) -> io::Result<Self> {
        self.with_pcap_snaplen(pcap, None)
    }

    /// [`TraceWriter::with_pcap`], each packet cut to `snaplen` bytes when
    /// one is given (`tcpdump -s`; `None` or 0 keeps them whole).
    pub fn with_pcap_snaplen(
        mut self,
        mut pcap: Box<dyn Write>,
        snaplen: Option<u32>,
    ) -> io::Result<Self> {
        let rec = crate::pcap::Recorder::new(snaplen);
        rec.write_header(&mut pcap)?;
        self.pcap = Some((pcap, rec));
        Ok(self)
    }

    fn keep(&mut self, r: io::Result<()>) {
        if let Err(e) = r {
            self.error.get_or_insert(e);
        }
    }

    fn write_head(&mut self, h: &Head) -> io::Result<()> {
        let o = self.out.as_mut().expect("not ended");
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
                write!(o, "\n  \"scenario\": ")?;
                write_pretty(o, &h.scenario, 1)?;
                write!(o, ",\n  \"title\": ")?;
                write_pretty(o, &h.title, 1)?;
                write!(o, ",\n  \"engine\": ")?;
                write_pretty(o, &h.engine, 1)?;
                write!(o, ",\n  \"policy\": ")?;
                write_pretty(o, &h.policy, 1)?;
                write!(o, ",\n  \"hosts\": ")?;
                write_pretty(o, &h.hosts, 1)?;
                write!(o, ",\n  \"segments\": [")
            }
        }
    }

    fn write_segment(&mut self, s: &Segment) -> io::Result<()> {
        if let Some((p, rec)) = &mut self.pcap {
            rec.write_record(p, s)?;
        }
        let n = self.rel.numbers(s);
        self.opts.clear();
        s.write_options(|x| n.sack(x), &mut self.opts);
        let flags = s.flags.text();
        if self.buf.capacity() == 0 {
            self.buf.reserve(OUT_CHUNK + 4096);
        }
        let line = &mut self.buf;
        match self.format {
            Format::Text => {
                push_time(line, s.time_us);
                line.push(b' ');
                line.extend_from_slice(prefix(&mut self.prefixes, s));
                write_tcpdump_rest(
                    &LineParts {
                        src: &s.src,
                        sport: s.sport,
                        dst: &s.dst,
                        dport: s.dport,
                        flags: flags.as_str(),
                        seq: n.seq,
                        ack: n.ack,
                        win: s.win,
                        urg: s.flags.urg().then_some(s.urg_ptr),
                        len: s.len,
                        options: &self.opts,
                    },
                    line,
                );
                if s.lost {
                    line.extend_from_slice(b"  [lost]");
                }
                line.push(b'\n');
                const MARK: &[u8] = b"              ^ ";
                if let Some(w) = &s.why {
                    line.extend_from_slice(MARK);
                    line.extend_from_slice(w.as_bytes());
                    line.push(b'\n');
                } else if let Some(reason) = s.rst_reason {
                    // The linux engine knows no path, only the kernel's
                    // own reason (tcp:tcp_send_reset).
                    line.extend_from_slice(MARK);
                    writeln!(line, "RST, the kernel's reason: {reason}")?;
                }
            }
            Format::Json => {
                line.extend_from_slice(if self.segments > 0 {
                    b",\n    "
                } else {
                    b"\n    "
                });
                let j = SegmentJson {
                    time_us: s.time_us,
                    src: &s.src,
                    dst: &s.dst,
                    sport: s.sport,
                    dport: s.dport,
                    flags: flags.as_str(),
                    seq: n.seq,
                    ack: n.ack,
                    win: s.win,
                    len: s.len,
                    urg: s.flags.urg().then_some(s.urg_ptr),
                    options: std::str::from_utf8(&self.opts).expect("options text is ASCII"),
                    why: s.why.as_deref(),
                    rst_reason: s.rst_reason,
                    lost: s.lost,
                };
                write_segment_json(line, &j)?;
            }
        }
        if self.buf.len() >= OUT_CHUNK {
            self.out.as_mut().expect("not ended").write_all(&self.buf)?;
            self.buf.clear();
        }
        self.segments += 1;
        Ok(())
    }

    fn write_call(&mut self, c: &CallRecord) -> io::Result<()> {
        let o = &mut self.line;
        o.clear();
        match self.format {
            Format::Text => {
                push_time(o, c.time_us);
                o.push(b' ');
                if c.sock == "-" {
                    push_left(o, &c.host, 16);
                } else {
                    let n = c.host.chars().count() + 1 + c.sock.chars().count();
                    o.extend_from_slice(c.host.as_bytes());
                    o.push(b'.');
                    o.extend_from_slice(c.sock.as_bytes());
                    o.resize(o.len() + 16usize.saturating_sub(n), b' ');
                }
                o.push(b' ');
                o.extend_from_slice(c.call.as_bytes());
                o.extend_from_slice(b" = ");
                match (&c.errno, &c.events) {
                    (Some(e), _) => write!(o, "-1 {e}")?,
                    (None, Some(ev)) => o.extend_from_slice(ev.as_bytes()),
                    (None, None) => {
                        o.extend_from_slice(itoa::Buffer::new().format(c.ret).as_bytes())
                    }
                }
                if let Some(n) = &c.note {
                    o.extend_from_slice(b"  (");
                    o.extend_from_slice(n.as_bytes());
                    o.push(b')');
                }
                if let Some(i) = &c.info {
                    write!(o, "  [{i}]")?;
                }
                o.extend_from_slice(b"  [line ");
                push_num(o, c.line as u64);
                o.extend_from_slice(b"]\n");
            }
            Format::Json => {
                o.extend_from_slice(if self.calls > 0 {
                    b",\n    "
                } else {
                    b"\n    "
                });
                write_call_json(o, c)?;
            }
        }
        self.spool.push(&self.line)?;
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
        if let Some((p, _)) = &mut self.pcap {
            p.flush()?;
        }
        let omitted = self.spool.omitted();
        let mut out = self.out.take().expect("ended once");
        let o = &mut out;
        o.write_all(&self.buf)?;
        self.buf = Vec::new();
        match self.format {
            Format::Text => {
                if self.segments == 0 {
                    writeln!(o, "  (none)")?;
                }
                writeln!(o, "\ncalls:")?;
                std::mem::replace(&mut self.spool, Spool::Mem(Vec::new()))
                    .copy_to(o, Format::Text)?;
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
                std::mem::replace(&mut self.spool, Spool::Mem(Vec::new()))
                    .copy_to(o, Format::Json)?;
                write!(o, "{}]", if self.calls > 0 { "\n  " } else { "" })?;
                if omitted > 0 {
                    // Only a streamed run past its spool's head has it.
                    write!(o, ",\n  \"calls_not_shown\": {omitted}")?;
                }
                write!(o, ",\n  \"states\": ")?;
                write_pretty(o, &t.states, 1)?;
                write!(o, ",\n  \"counters\": ")?;
                write_pretty(o, &t.counters, 1)?;
                write!(o, ",\n  \"open_at_end\": ")?;
                write_pretty(o, &t.open_at_end, 1)?;
                write!(o, ",\n  \"notes\": ")?;
                write_pretty(o, &t.notes, 1)?;
                write!(o, ",\n  \"end_us\": ")?;
                write_pretty(o, &t.end_us, 1)?;
                write!(o, ",\n  \"expectations_checked\": ")?;
                write_pretty(o, &t.expectations_checked, 1)?;
                write!(o, ",\n  \"failures\": ")?;
                write_pretty(o, &t.failures, 1)?;
                // Only when some were left out: the usual shape is unchanged.
                if t.failures_omitted > 0 {
                    write!(o, ",\n  \"failures_omitted\": {}", t.failures_omitted)?;
                }
                write!(o, "\n}}")?;
            }
        }
        o.flush()?;
        Ok(out)
    }
}

impl<W: Write> Drop for TraceWriter<W> {
    fn drop(&mut self) {
        if let Some(o) = &mut self.out {
            let _ = o.write_all(&self.buf);
        }
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

    /// The trace as one JSON object (the shape the book's Outputs chapter documents).
    pub fn to_json(&self) -> String {
        self.render(Format::Json)
    }

    /// The trace as text: tcpdump-style segments with the reason for each,
    /// then calls, state changes, counters and what was left open.
    pub fn to_text(&self) -> String {
        self.render(Format::Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::Payload;
    use crate::segment::{Flags, TcpOpt};

    /// What the writer printed before it rendered by hand: serde_json's
    /// pretty text of the RelSegment, its lines indented two levels.
    fn old_pretty<T: Serialize>(value: &T, depth: usize) -> String {
        let text = serde_json::to_string_pretty(value).unwrap();
        text.replace('\n', &format!("\n{}", " ".repeat(2 * depth)))
    }

    fn segments() -> Vec<Segment> {
        let base = Segment {
            time_us: 1_234_567,
            src: "client".into(),
            dst: "server".into(),
            src_addr: Ipv4Addr::new(10, 0, 0, 1),
            dst_addr: Ipv4Addr::new(10, 0, 0, 2),
            sport: 40000,
            dport: 9999,
            seq: 1000,
            ack: 2000,
            flags: Flags::SYN,
            win: 65535,
            urg_ptr: 3,
            options: vec![TcpOpt::Mss(65495), TcpOpt::SackPerm, TcpOpt::WScale(7)],
            len: 0,
            payload: None,
            why: Some("connect(): SYN (tcp_connect)".into()),
            rst_reason: None,
            lost: false,
        };
        let mut v = vec![base.clone()];
        let mut s = base.clone();
        s.flags = Flags::ACK | Flags::PSH | Flags::URG;
        s.len = 7;
        s.payload = Some(Payload::pattern(0, 7));
        s.options = vec![
            TcpOpt::Nop,
            TcpOpt::Nop,
            TcpOpt::Sack(vec![(1500, 1600), (1700, 1800)]),
            TcpOpt::Unknown {
                kind: 30,
                data: vec![0xab, 1],
            },
        ];
        s.why = Some("a \"quoted\" \\ why\twith → unicode\u{1}".into());
        s.lost = true;
        v.push(s.clone());
        s.src = "h\"ost".into();
        s.flags = Flags::RST | Flags::ACK;
        s.why = None;
        s.rst_reason = Some(RstReason::TcpAbortOnClose);
        s.options.clear();
        s.time_us = 98_765_432_100;
        v.push(s.clone());
        s.flags = Flags(0);
        s.seq = u32::MAX;
        v.push(s);
        v
    }

    #[test]
    fn segments_render_as_before_in_both_formats() {
        let segs = segments();
        let rel = relative(&segs);
        for format in [Format::Text, Format::Json] {
            let mut w = TraceWriter::in_memory(Vec::new(), format);
            for s in &segs {
                w.segment(s);
            }
            let t = Trace::default();
            let out = String::from_utf8(w.end(&t).unwrap()).unwrap();
            let mut want = String::new();
            for (i, r) in rel.iter().enumerate() {
                match format {
                    Format::Text => {
                        want += &format!(
                            "{:>11} {}{}\n",
                            fmt_time(r.time_us),
                            r,
                            if r.lost { "  [lost]" } else { "" }
                        );
                        if let Some(w) = &r.why {
                            want += &format!("{:>11}   ^ {}\n", "", w);
                        } else if let Some(reason) = r.rst_reason {
                            want += &format!("{:>11}   ^ RST, the kernel's reason: {reason}\n", "");
                        }
                    }
                    Format::Json => {
                        let sep = if i > 0 { "," } else { "" };
                        want += &format!("{sep}\n    {}", old_pretty(r, 2));
                    }
                }
            }
            assert!(out.contains(&want), "{format:?}:\n{out}\nwant:\n{want}");
        }
        // The hand-written JSON is serde_json's of the borrowed view.
        for r in &rel {
            let j = SegmentJson {
                time_us: r.time_us,
                src: &r.src,
                dst: &r.dst,
                sport: r.sport,
                dport: r.dport,
                flags: &r.flags,
                seq: r.seq,
                ack: r.ack,
                win: r.win,
                len: r.len,
                urg: r.urg,
                options: &r.options,
                why: r.why.as_deref(),
                rst_reason: r.rst_reason,
                lost: r.lost,
            };
            let (mut a, mut b) = (Vec::new(), Vec::new());
            write_segment_json(&mut a, &j).unwrap();
            write_pretty(&mut b, &j, 2).unwrap();
            assert_eq!(String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap());
        }
    }

    #[test]
    fn calls_render_as_before_in_both_formats() {
        let base = CallRecord {
            time_us: 50_000,
            host: "client".into(),
            sock: "conn".into(),
            call: "recv(65536, MSG_DONTWAIT)".into(),
            ret: 65536,
            errno: None,
            line: 19,
            note: None,
            events: None,
            info: None,
        };
        let mut calls = vec![base.clone()];
        let mut c = base.clone();
        c.sock = "-".into();
        c.host = "hôte-with-a-long-name".into();
        c.ret = -1;
        c.errno = Some(Errno::ECONNRESET);
        c.note = Some("data \"abc\"...".into());
        calls.push(c.clone());
        c.host = "é".into();
        c.sock = "ü".into();
        c.errno = None;
        c.events = Some("EPOLLIN|EPOLLOUT".into());
        c.note = None;
        c.time_us = 12_345_678_901;
        calls.push(c);
        for format in [Format::Text, Format::Json] {
            let mut w = TraceWriter::in_memory(Vec::new(), format);
            for c in &calls {
                w.call(c);
            }
            let out = String::from_utf8(w.end(&Trace::default()).unwrap()).unwrap();
            let mut want = String::new();
            for (i, c) in calls.iter().enumerate() {
                match format {
                    Format::Text => {
                        let who = if c.sock == "-" {
                            c.host.clone()
                        } else {
                            format!("{}.{}", c.host, c.sock)
                        };
                        want += &format!(
                            "{:>11} {:<16} {} = {}",
                            fmt_time(c.time_us),
                            who,
                            c.call,
                            c.result_text()
                        );
                        if let Some(n) = &c.note {
                            want += &format!("  ({n})");
                        }
                        want += &format!("  [line {}]\n", c.line);
                    }
                    Format::Json => {
                        let sep = if i > 0 { "," } else { "" };
                        want += &format!("{sep}\n    {}", old_pretty(c, 2));
                    }
                }
            }
            assert!(out.contains(&want), "{format:?}:\n{out}\nwant:\n{want}");
        }
    }

    #[test]
    fn the_pretty_formatter_indents_as_serde_json_would() {
        let t = Trace {
            notes: vec!["a".into(), "b\"c".into()],
            ..Trace::default()
        };
        for depth in 0..4 {
            let mut v = Vec::new();
            write_pretty(&mut v, &t.notes, depth).unwrap();
            assert_eq!(String::from_utf8(v).unwrap(), old_pretty(&t.notes, depth));
            let mut v = Vec::new();
            write_pretty(&mut v, &t.counters, depth).unwrap();
            assert_eq!(
                String::from_utf8(v).unwrap(),
                old_pretty(&t.counters, depth)
            );
        }
    }
}
