//! A run's result: segments, calls, states, counters, connections left
//! open; rendered as text (tcpdump-like) or JSON.

use crate::engine::{HostSpec, OpenConn, StateChange};
use crate::segment::{RelSegment, Segment};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
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
    pub errno: Option<String>,
    /// The script line.
    pub line: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// For `poll`: the events, by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<String>,
    /// For `getsockopt`: the facts the engine reported, in order.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "info_map")]
    pub info: Option<crate::script::SockInfo>,
}

fn info_map<S: serde::Serializer>(
    v: &Option<crate::script::SockInfo>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let v = v.as_deref().unwrap_or_default();
    let mut m = s.serialize_map(Some(v.len()))?;
    for (k, x) in v {
        m.serialize_entry(k, x)?;
    }
    m.end()
}

/// `name=value ...` of a `getsockopt` result.
pub fn info_text(info: &[(&'static str, i64)]) -> String {
    info.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
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
    pub engine: String,
    pub policy: String,
    pub hosts: Vec<HostSpec>,
    pub segments: Vec<Segment>,
    pub calls: Vec<CallRecord>,
    pub states: Vec<StateChange>,
    pub counters: BTreeMap<String, BTreeMap<String, i64>>,
    pub open_at_end: Vec<OpenConn>,
    pub notes: Vec<String>,
    pub end_us: u64,
    pub expectations_checked: usize,
    pub failures: Vec<Failure>,
}

#[derive(Serialize)]
struct JsonTrace<'a> {
    scenario: &'a str,
    title: &'a str,
    engine: &'a str,
    policy: &'a str,
    hosts: &'a [HostSpec],
    segments: Vec<RelSegment>,
    calls: &'a [CallRecord],
    states: &'a [StateChange],
    counters: &'a BTreeMap<String, BTreeMap<String, i64>>,
    open_at_end: &'a [OpenConn],
    notes: &'a [String],
    end_us: u64,
    expectations_checked: usize,
    failures: &'a [Failure],
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
    type Dir = (Ipv4Addr, u16, Ipv4Addr, u16);
    let mut isn: HashMap<Dir, u32> = HashMap::new();
    let mut out = Vec::with_capacity(segments.len());
    for s in segments {
        let dir: Dir = (s.src_addr, s.sport, s.dst_addr, s.dport);
        let rev: Dir = (s.dst_addr, s.dport, s.src_addr, s.sport);
        if s.flags.syn() {
            isn.insert(dir, s.seq);
            if s.flags.ack() {
                isn.entry(rev).or_insert(s.ack.wrapping_sub(1));
            }
        }
        let base = *isn.entry(dir).or_insert(s.seq.wrapping_sub(1));
        let ack = if s.flags.ack() {
            let rbase = *isn.entry(rev).or_insert(s.ack.wrapping_sub(1));
            Some(s.ack.wrapping_sub(rbase))
        } else {
            None
        };
        let rb = isn.get(&rev).copied();
        let sack_rel = |x: u32| rb.map_or(x, |b| x.wrapping_sub(b));
        out.push(RelSegment {
            time_us: s.time_us,
            src: s.src.clone(),
            dst: s.dst.clone(),
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
        });
    }
    out
}

impl Trace {
    /// The trace as one JSON object (the shape the README documents).
    pub fn to_json(&self) -> String {
        let j = JsonTrace {
            scenario: &self.scenario,
            title: &self.title,
            engine: &self.engine,
            policy: &self.policy,
            hosts: &self.hosts,
            segments: relative(&self.segments),
            calls: &self.calls,
            states: &self.states,
            counters: &self.counters,
            open_at_end: &self.open_at_end,
            notes: &self.notes,
            end_us: self.end_us,
            expectations_checked: self.expectations_checked,
            failures: &self.failures,
        };
        serde_json::to_string_pretty(&j).expect("plain data serialises")
    }

    /// The trace as text: tcpdump-style segments with the reason for each,
    /// then calls, state changes, counters and what was left open.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "scenario {} ({} engine{})",
            self.scenario,
            self.engine,
            if self.engine == "model" {
                format!(", {} policy", self.policy)
            } else {
                String::new()
            }
        );
        if !self.title.is_empty() {
            let _ = writeln!(o, "title    {}", self.title);
        }
        let hosts: Vec<String> = self
            .hosts
            .iter()
            .map(|h| format!("{}={}", h.name, h.addr))
            .collect();
        let _ = writeln!(o, "hosts    {}", hosts.join(" "));
        let _ = writeln!(o, "\nsegments:");
        if self.segments.is_empty() {
            let _ = writeln!(o, "  (none)");
        }
        for s in relative(&self.segments) {
            let _ = writeln!(
                o,
                "{:>11} {}{}",
                fmt_time(s.time_us),
                s,
                if s.lost { "  [lost]" } else { "" }
            );
            if let Some(w) = &s.why {
                let _ = writeln!(o, "{:>11}   ^ {}", "", w);
            }
        }
        let _ = writeln!(o, "\ncalls:");
        for c in &self.calls {
            let who = if c.sock == "-" {
                c.host.clone()
            } else {
                format!("{}.{}", c.host, c.sock)
            };
            let _ = write!(
                o,
                "{:>11} {:<16} {} = {}",
                fmt_time(c.time_us),
                who,
                c.call,
                c.result_text()
            );
            if let Some(n) = &c.note {
                let _ = write!(o, "  ({n})");
            }
            if let Some(i) = &c.info {
                let _ = write!(o, "  [{}]", info_text(i));
            }
            let _ = writeln!(o, "  [line {}]", c.line);
        }
        let _ = writeln!(o, "\nstates:");
        for s in &self.states {
            let _ = writeln!(
                o,
                "{:>11} {:<16} {} -> {}",
                fmt_time(s.time_us),
                format!("{}.{}", s.host, s.sock),
                s.from,
                s.to
            );
        }
        let _ = writeln!(o, "\ncounters (TcpExt, change during the run):");
        let mut any = false;
        for (h, m) in &self.counters {
            for (k, v) in m {
                any = true;
                let _ = writeln!(o, "  {h:<10} {k} {v:+}");
            }
        }
        if !any {
            let _ = writeln!(o, "  (none changed)");
        }
        let _ = writeln!(o, "\nopen at end ({}):", fmt_time(self.end_us));
        if self.open_at_end.is_empty() {
            let _ = writeln!(o, "  (none: every connection closed)");
        }
        for c in &self.open_at_end {
            let _ = writeln!(
                o,
                "  {}.{} :{} <-> {}  {}  {}",
                c.host, c.sock, c.local_port, c.remote, c.state, c.detail
            );
        }
        if !self.notes.is_empty() {
            let _ = writeln!(o, "\nnotes:");
            for n in &self.notes {
                let _ = writeln!(o, "  {n}");
            }
        }
        let _ = writeln!(
            o,
            "\nexpectations: {} checked, {}",
            self.expectations_checked,
            if self.failures.is_empty() {
                "all met".to_string()
            } else {
                format!("{} failed", self.failures.len())
            }
        );
        for f in &self.failures {
            let _ = writeln!(o, "  FAILED {f}");
        }
        o
    }
}
