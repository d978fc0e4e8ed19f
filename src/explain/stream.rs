//! Connections tracked as the capture streams by: memory bounded by the
//! connections open at one point of the capture, never by its length.
//!
//! A connection is explained and handed over once it has ended on the
//! wire (an RST, or a FIN each way) and gone quiet — [`QUIET_NS`] of
//! capture time, or [`QUIET_PACKETS`] later packets when the capture has
//! no times — or when a fresh SYN reuses its endpoints, or at the end of
//! the capture. Past [`MAX_LIVE`] connections at once the least recently
//! active is explained early, as it stands then. Packets for a connection
//! already handed over (its last ACKs, RSTs answering stray segments) are
//! counted, not made into connections of their own.

use super::facts::ConnFacts;
use super::{Cause, Connection, Ending, Packet, rules};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;

pub use crate::limits::{
    EXPLAIN_MAX_ENDED as MAX_ENDED, EXPLAIN_MAX_LIVE as MAX_LIVE, EXPLAIN_QUIET_NS as QUIET_NS,
    EXPLAIN_QUIET_PACKETS as QUIET_PACKETS,
};

/// Connections explained but held back so that output keeps the order of
/// first appearance; past it the oldest is released.
pub const REORDER: usize = 4_096;

/// Endpoints of connections already handed over, remembered so that their
/// stragglers are not taken for new connections.
pub const DONE_KEPT: usize = 50_000;

/// Hosts counted in the summary's RST-sender table; more share one row.
pub const HOSTS_COUNTED: usize = 10_000;

/// How times are shown for captures that carry them as numbers (pcap).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimeStyle {
    /// Date and time of day, UTC (`2026-12-07 23:17:21.123456`), as
    /// `tcpdump -tttt` prints it with TZ=UTC.
    #[default]
    Wall,
    /// Seconds since the epoch (`1765149441.123456`), as `tcpdump -tt`.
    Epoch,
}

/// Which connections are handed over (the summary counts them all).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Wireshark's `tcp.stream` number.
    pub stream: Option<usize>,
    /// An endpoint (`10.0.0.1.80`, `10.0.0.1:80`, `[::1]:80`) or a host
    /// (`10.0.0.1`): connections with it on either side.
    pub conn: Option<String>,
    /// Only connections with an RST.
    pub rst_only: bool,
}

impl Filter {
    pub fn matches(&self, c: &Connection) -> bool {
        if self.stream.is_some_and(|s| s != c.stream) {
            return false;
        }
        if self.rst_only && c.rst_count == 0 {
            return false;
        }
        if let Some(want) = &self.conn {
            let want = normalise_endpoint(want);
            let hit = |e: &str| e == want || host_of(e) == want;
            if !hit(&c.a) && !hit(&c.b) {
                return false;
            }
        }
        true
    }
}

/// `10.0.0.1:80` and `[::1]:80` as tcpdump writes them: `10.0.0.1.80`,
/// `::1.80`.
fn normalise_endpoint(s: &str) -> String {
    if let Some(rest) = s.strip_prefix('[')
        && let Some((h, p)) = rest.split_once("]:")
    {
        return format!("{h}.{p}");
    }
    match s.rsplit_once(':') {
        // One colon: IPv4 or a name with a port. More: a bare IPv6 host.
        Some((h, p)) if !h.contains(':') && p.chars().all(|c| c.is_ascii_digit()) => {
            format!("{h}.{p}")
        }
        _ => s.to_string(),
    }
}

/// The host of a tcpdump endpoint (`10.0.0.1.80` -> `10.0.0.1`).
/// An endpoint always ends in its port (a number, or a service name
/// when tcpdump ran without `-n`).
fn host_of(e: &str) -> &str {
    e.rsplit_once('.').map_or(e, |(h, _)| h)
}

/// How explain reads and reports.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub filter: Filter,
    pub times: TimeStyle,
}

/// Counts over the whole capture, for the report's first lines.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub segments: u64,
    pub connections: u64,
    /// Connections per ending (`fin`, `rst`, ...).
    pub endings: BTreeMap<Ending, u64>,
    /// Connections per cause.
    pub causes: BTreeMap<Cause, u64>,
    /// RST segments in all.
    pub rsts: u64,
    /// Hosts that reset connections, the most first (at most 10 listed).
    pub rst_senders: Vec<(String, u64)>,
    /// Connections explained before they ended, because too many were
    /// open at once ([`MAX_LIVE`]).
    pub cut_early: u64,
    /// Segments of connections already explained (last ACKs, stray RSTs).
    pub stragglers: u64,
    /// Connections that passed the filter.
    pub shown: u64,
}

impl Summary {
    /// The summary block (a blank line first).
    pub fn to_text(&self) -> String {
        let mut o = String::from("\nsummary:\n");
        for (e, n) in &self.endings {
            let _ = writeln!(o, "  {n:>8}  {}", e.words());
        }
        let resets: Vec<_> = self
            .causes
            .iter()
            .filter(|(c, _)| c.ending() == Ending::Rst)
            .collect();
        if !resets.is_empty() {
            let _ = writeln!(o, "  resets by cause ({} RST segments):", self.rsts);
            let mut sorted = resets;
            sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            for (c, n) in sorted {
                let _ = writeln!(o, "  {n:>8}  {}", c.id());
            }
        }
        if !self.rst_senders.is_empty() {
            let _ = writeln!(o, "  hosts that reset the most connections:");
            for (h, n) in &self.rst_senders {
                let _ = writeln!(o, "  {n:>8}  {h}");
            }
        }
        if self.cut_early > 0 {
            let _ = writeln!(
                o,
                "  {} connections were explained before they ended: more than {MAX_LIVE} \
                 were open at once",
                self.cut_early
            );
        }
        if self.shown != self.connections {
            let _ = writeln!(
                o,
                "  {} of {} connections match the filter",
                self.shown, self.connections
            );
        }
        o
    }
}

struct Live {
    facts: ConnFacts,
    /// Capture time and packet count of its last segment.
    last_ns: Option<u64>,
    last_packet: u64,
}

/// Splits packets into connections and explains each (see the module
/// doc for when).
pub struct Tracker<F: FnMut(Connection)> {
    opts: Options,
    sink: F,
    /// Boxed: the table holds pointers, so its spare capacity costs
    /// little (a connection's facts are a few kilobytes).
    live: HashMap<String, Box<Live>>,
    /// The current packet's key (`lo hi` endpoints), reused.
    key: String,
    /// Connections in the order they ended (id, key).
    ended: VecDeque<(usize, String)>,
    done: HashSet<String>,
    done_order: VecDeque<String>,
    pending: BTreeMap<usize, Connection>,
    next_id: usize,
    next_out: usize,
    packets: u64,
    since_sweep: u64,
    now_ns: Option<u64>,
    summary: Summary,
    rst_hosts: HashMap<String, u64>,
    other_hosts: u64,
}

impl<F: FnMut(Connection)> Tracker<F> {
    pub fn new(opts: Options, sink: F) -> Tracker<F> {
        Tracker {
            opts,
            sink,
            live: HashMap::new(),
            key: String::new(),
            ended: VecDeque::new(),
            done: HashSet::new(),
            done_order: VecDeque::new(),
            pending: BTreeMap::new(),
            next_id: 1,
            next_out: 1,
            packets: 0,
            since_sweep: 0,
            now_ns: None,
            summary: Summary::default(),
            rst_hosts: HashMap::new(),
            other_hosts: 0,
        }
    }

    /// Adds the next packet of the capture.
    pub fn push(&mut self, p: Packet) {
        self.packets += 1;
        self.summary.segments += 1;
        if p.flags.rst() {
            self.summary.rsts += 1;
        }
        if let Some(t) = p.time_ns {
            self.now_ns = Some(self.now_ns.map_or(t, |n| n.max(t)));
        }
        // The key is written into a buffer kept between packets: a
        // String is made only for a new connection.
        self.key.clear();
        let (lo, hi) = if p.src <= p.dst {
            (&p.src, &p.dst)
        } else {
            (&p.dst, &p.src)
        };
        self.key.push_str(lo);
        self.key.push(' ');
        self.key.push_str(hi);
        let fresh_syn = p.flags.syn() && !p.flags.ack();
        match self.live.get_mut(self.key.as_str()) {
            Some(l) if !(fresh_syn && l.facts.ended() && !l.facts.same_syn(&p)) => {
                let was_ended = l.facts.ended();
                l.facts.push(&p);
                l.last_ns = p.time_ns.or(l.last_ns);
                l.last_packet = self.packets;
                if !was_ended && l.facts.ended() {
                    self.ended.push_back((l.facts.id, self.key.clone()));
                    self.bound_ended();
                }
            }
            found => {
                let key = self.key.clone();
                if found.is_some() {
                    self.finish_conn(&key, false);
                } else if !fresh_syn && self.done.contains(&key) {
                    self.summary.stragglers += 1;
                    return;
                }
                let mut facts = ConnFacts::new(self.next_id, &p);
                self.next_id += 1;
                facts.push(&p);
                if facts.ended() {
                    self.ended.push_back((facts.id, key.clone()));
                }
                self.live.insert(
                    key,
                    Box::new(Live {
                        facts,
                        last_ns: p.time_ns,
                        last_packet: self.packets,
                    }),
                );
                if self.live.len() > MAX_LIVE {
                    self.evict();
                }
                self.bound_ended();
            }
        }
        self.since_sweep += 1;
        if self.since_sweep >= (self.live.len() as u64).max(4096) {
            self.sweep();
        }
    }

    /// Keeps at most [`MAX_ENDED`] ended connections waiting.
    fn bound_ended(&mut self) {
        while self.ended.len() > MAX_ENDED {
            let Some((id, key)) = self.ended.pop_front() else {
                return;
            };
            if self.live.get(&key).is_some_and(|l| l.facts.id == id) {
                self.finish_conn(&key, true);
            }
        }
    }

    /// Explains the connections that ended and went quiet. Run every
    /// `max(4096, live)` packets, so its cost per packet stays constant.
    fn sweep(&mut self) {
        self.since_sweep = 0;
        let (now, packets) = (self.now_ns, self.packets);
        let mut quiet: Vec<(usize, String)> = self
            .live
            .iter()
            .filter(|(_, l)| {
                l.facts.ended()
                    && match (now, l.last_ns) {
                        (Some(n), Some(t)) => n.saturating_sub(t) >= QUIET_NS,
                        _ => packets - l.last_packet >= QUIET_PACKETS,
                    }
            })
            .map(|(k, l)| (l.facts.id, k.clone()))
            .collect();
        quiet.sort_unstable();
        for (_, k) in quiet {
            self.finish_conn(&k, true);
        }
    }

    /// Too many connections at once: explain the least recently active
    /// tenth as they stand.
    fn evict(&mut self) {
        let mut by_age: Vec<(u64, String)> = self
            .live
            .iter()
            .map(|(k, l)| (l.last_packet, k.clone()))
            .collect();
        by_age.sort_unstable();
        for (_, k) in by_age.into_iter().take(MAX_LIVE / 10) {
            if self.live.get(&k).is_some_and(|l| !l.facts.ended()) {
                self.summary.cut_early += 1;
            }
            self.finish_conn(&k, true);
        }
    }

    fn finish_conn(&mut self, key: &str, remember: bool) {
        let Some(l) = self.live.remove(key) else {
            return;
        };
        if remember {
            if self.done.insert(key.to_string()) {
                self.done_order.push_back(key.to_string());
            }
            while self.done_order.len() > DONE_KEPT {
                if let Some(old) = self.done_order.pop_front() {
                    self.done.remove(&old);
                }
            }
        }
        let c = rules::analyse(&l.facts, self.opts.times);
        self.pending.insert(c.id, c);
        self.release(false);
    }

    /// Hands over explained connections in order of first appearance.
    fn release(&mut self, all: bool) {
        loop {
            let Some((&id, _)) = self.pending.first_key_value() else {
                return;
            };
            if id != self.next_out && !all && self.pending.len() <= REORDER {
                return;
            }
            let (_, c) = self.pending.pop_first().expect("checked non-empty");
            self.next_out = id + 1;
            self.count(&c);
            if self.opts.filter.matches(&c) {
                self.summary.shown += 1;
                (self.sink)(c);
            }
        }
    }

    fn count(&mut self, c: &Connection) {
        let s = &mut self.summary;
        s.connections += 1;
        *s.endings.entry(c.cause_id.ending()).or_default() += 1;
        *s.causes.entry(c.cause_id).or_default() += 1;
        if c.cause_id.ending() == Ending::Rst
            && let Some(r) = c.rsts.first()
        {
            let host = host_of(&r.from).to_string();
            if let Some(n) = self.rst_hosts.get_mut(&host) {
                *n += 1;
            } else if self.rst_hosts.len() < HOSTS_COUNTED {
                self.rst_hosts.insert(host, 1);
            } else {
                self.other_hosts += 1;
            }
        }
    }

    /// Explains every connection still open and returns the summary.
    pub fn finish(mut self) -> Summary {
        let mut rest: Vec<(usize, String)> = self
            .live
            .iter()
            .map(|(k, l)| (l.facts.id, k.clone()))
            .collect();
        rest.sort_unstable();
        for (_, k) in rest {
            if let Some(l) = self.live.remove(&k) {
                let c = rules::analyse(&l.facts, self.opts.times);
                self.pending.insert(c.id, c);
            }
        }
        self.release(true);
        let mut hosts: Vec<(String, u64)> = self.rst_hosts.drain().collect();
        hosts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        hosts.truncate(10);
        if self.other_hosts > 0 {
            hosts.push(("(other hosts)".into(), self.other_hosts));
        }
        self.summary.rst_senders = hosts;
        self.summary
    }
}

/// A capture time as text, in the chosen style.
pub fn time_text(ns: u64, style: TimeStyle) -> String {
    let (secs, frac) = (ns / 1_000_000_000, ns % 1_000_000_000);
    let us = frac / 1000;
    match style {
        TimeStyle::Epoch => format!("{secs}.{us:06}"),
        TimeStyle::Wall => {
            let (days, rem) = (secs / 86_400, secs % 86_400);
            let (y, m, d) = civil_from_days(days as i64);
            format!(
                "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{us:06}",
                rem / 3600,
                rem / 60 % 60,
                rem % 60
            )
        }
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`, public domain).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_clock_times_match_known_dates() {
        assert_eq!(time_text(0, TimeStyle::Wall), "1970-01-01 00:00:00.000000");
        // 2026-12-07 23:17:21.5 UTC
        let t = 1_796_685_441_500_000_000;
        assert_eq!(time_text(t, TimeStyle::Wall), "2026-12-07 23:17:21.500000");
        assert_eq!(time_text(t, TimeStyle::Epoch), "1796685441.500000");
        // a leap day
        assert_eq!(
            time_text(951_782_400_000_000_000, TimeStyle::Wall),
            "2000-02-29 00:00:00.000000"
        );
    }

    #[test]
    fn endpoints_are_written_as_tcpdump_does() {
        assert_eq!(normalise_endpoint("10.0.0.1:80"), "10.0.0.1.80");
        assert_eq!(normalise_endpoint("[::1]:80"), "::1.80");
        assert_eq!(normalise_endpoint("10.0.0.1.80"), "10.0.0.1.80");
        assert_eq!(normalise_endpoint("2001:db8::1"), "2001:db8::1");
        assert_eq!(host_of("::1.8080"), "::1");
    }
}
