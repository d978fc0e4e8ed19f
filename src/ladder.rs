//! Ladder (sequence) diagrams of a trace, as deterministic SVG text.
//!
//! One vertical line per host; time flows down. Every event (a segment
//! sent, a call returning, a state change) gets its own row so that no two
//! labels overlap, and the space between rows grows with the time between
//! them: within [`BREAK_US`] time is drawn in proportion ([`PX_PER_MS`]);
//! longer idle gaps (TIME_WAIT's 60 s, zero-window probe backoff) are drawn
//! as a break across the host lines, labelled with their length, so a
//! picture with both microseconds and minutes in it stays readable.
//!
//! Legend (also drawn at the bottom of every diagram):
//! - a black arrow per segment, sloped slightly from sender to receiver,
//!   labelled like the trace (`S. seq 0 ack 1`, `P. 1:2 ack 1`, `R. seq 19
//!   ack 486`, `win 0` when the window is zero);
//! - RSTs in bold red, with the reason the engine gave under the arrow and
//!   as a tooltip (`<title>`); every segment with a reason has the tooltip;
//! - lost segments dashed and grey, ending in a ✕ before the receiver;
//! - the program's calls in blue beside its host's line (`close() = 0`,
//!   errors in red: `recv(10) = -1 ECONNRESET`);
//! - TCP states in green beside the line, from the moment they change;
//! - the time of each row at the left edge, in seconds.
//!
//! No JavaScript, no external fonts or files: the text is a function of
//! the trace alone (snapshot-tested).

use crate::segment::RelSegment;
use crate::trace::{Trace, fmt_time, relative};
use crate::vocab::EngineKind;
use std::fmt::Write as _;

/// Gaps longer than this are drawn as a break, not in proportion.
pub const BREAK_US: u64 = 500_000;
/// Pixels per millisecond of time within [`BREAK_US`].
pub const PX_PER_MS: f64 = 0.2;

const ROW_SEG: f64 = 30.0;
const ROW_NOTE: f64 = 18.0;
const BREAK_H: f64 = 44.0;
const SLOPE: f64 = 12.0;
const TOP: f64 = 110.0;
const FIRST_X: f64 = 330.0;
const SPACING: f64 = 400.0;
const RIGHT_MARGIN: f64 = 270.0;
/// Characters per line of an RST's reason under its arrow.
const WHY_WRAP: usize = 58;

enum Ev<'a> {
    Seg(&'a RelSegment),
    Call(&'a crate::trace::CallRecord),
    State(&'a crate::engine::StateChange),
}

impl Ev<'_> {
    fn time(&self) -> u64 {
        match self {
            Ev::Seg(s) => s.time_us,
            Ev::Call(c) => c.time_us,
            Ev::State(s) => s.time_us,
        }
    }
    /// At one instant: the call that caused things, the segment, then the
    /// state it left behind.
    fn order(&self) -> u8 {
        match self {
            Ev::Call(_) => 0,
            Ev::Seg(_) => 1,
            Ev::State(_) => 2,
        }
    }
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// `60 s`, `1.6 s`, `200 ms`.
fn duration(us: u64) -> String {
    if us >= 10_000_000 {
        format!("{} s", (us + 500_000) / 1_000_000)
    } else if us >= 1_000_000 {
        let t = format!("{:.1}", us as f64 / 1e6);
        format!("{} s", t.trim_end_matches(".0"))
    } else {
        format!("{} ms", (us + 500) / 1000)
    }
}

/// The label of a segment, like the trace's line without the addresses.
pub fn label(s: &RelSegment) -> String {
    let mut o = s.flags.clone();
    if s.len > 0 {
        let _ = write!(o, " {}:{}", s.seq, s.seq.wrapping_add(s.len));
    } else if s.flags.contains(['S', 'F', 'R']) {
        let _ = write!(o, " seq {}", s.seq);
    }
    if let Some(a) = s.ack {
        let _ = write!(o, " ack {a}");
    }
    if s.win == 0 && !s.flags.contains('R') {
        o.push_str(" win 0");
    }
    if let Some(u) = s.urg {
        let _ = write!(o, " urg {u}");
    }
    o
}

/// The diagram of a trace as SVG text.
pub fn render(trace: &Trace) -> String {
    let segs = relative(&trace.segments);
    // Hosts: the script's, then any other name a record mentions.
    let mut hosts: Vec<String> = trace.hosts.iter().map(|h| h.name.clone()).collect();
    let mut add = |h: &str| {
        if !hosts.iter().any(|x| x == h) {
            hosts.push(h.to_string());
        }
    };
    for s in &segs {
        add(&s.src);
        add(&s.dst);
    }
    for c in &trace.calls {
        add(&c.host);
    }
    for s in &trace.states {
        add(&s.host);
    }
    if hosts.is_empty() {
        hosts.push("(no hosts)".into());
    }
    let hx = |h: &str| FIRST_X + SPACING * hosts.iter().position(|x| x == h).unwrap_or(0) as f64;
    let last = hosts.len() - 1;
    // Labels beside a line go outward: left of the first host, right of
    // the others.
    let outward = |h: &str| hosts.iter().position(|x| x == h) != Some(0) || last == 0;
    // Hosts with more than one socket name their socket in state labels.
    let multi_sock = |h: &str| {
        let mut names: Vec<&str> = trace
            .states
            .iter()
            .filter(|s| s.host == h)
            .map(|s| s.sock.as_str())
            .chain(
                trace
                    .calls
                    .iter()
                    .filter(|c| c.host == h && c.sock != "-")
                    .map(|c| c.sock.as_str()),
            )
            .collect();
        names.sort_unstable();
        names.dedup();
        names.len() > 1
    };

    let mut evs: Vec<Ev> = segs.iter().map(Ev::Seg).collect();
    evs.extend(trace.calls.iter().map(Ev::Call));
    evs.extend(trace.states.iter().map(Ev::State));
    // Stable: records of one kind keep the trace's order.
    evs.sort_by_key(|e| (e.time(), e.order()));

    let width = FIRST_X + SPACING * last as f64 + RIGHT_MARGIN;
    let mut body = String::new();
    let mut y = TOP;
    let mut prev_t: Option<u64> = None;
    // Vertical extents of each host line between breaks.
    let mut line_start = TOP - 20.0;
    let mut line_pieces: Vec<(f64, f64)> = Vec::new();
    let mut last_time_label = String::new();

    for e in &evs {
        let t = e.time();
        if let Some(p) = prev_t {
            let gap = t - p;
            if gap > BREAK_US {
                // A break: close the host lines, draw the zigzag and the
                // gap's length, and start the lines again below.
                line_pieces.push((line_start, y + 4.0));
                let mid = y + BREAK_H / 2.0;
                for h in &hosts {
                    let x = hx(h);
                    let _ = writeln!(
                        body,
                        r##"<path d="M{:.1} {:.1} l-7 5 l14 6 l-7 5" class="zig"/>"##,
                        x,
                        mid - 8.0
                    );
                }
                let cx = (FIRST_X + hx(&hosts[last])) / 2.0;
                let _ = writeln!(
                    body,
                    r##"<text x="{cx:.1}" y="{:.1}" class="gap">{} later</text>"##,
                    mid + 4.0,
                    duration(gap)
                );
                y += BREAK_H;
                line_start = y - 4.0;
            } else {
                y += gap as f64 / 1000.0 * PX_PER_MS;
            }
        }
        prev_t = Some(t);
        let row = match e {
            Ev::Seg(_) => ROW_SEG,
            _ => ROW_NOTE,
        };
        y += row;
        // The time at the left edge, once per distinct time.
        let tl = fmt_time(t);
        if tl != last_time_label {
            let ty = match e {
                Ev::Seg(_) => y,
                _ => y + 4.0,
            };
            let _ = writeln!(
                body,
                r##"<text x="12" y="{ty:.1}" class="time">{tl}</text>"##
            );
            last_time_label = tl;
        }
        match e {
            Ev::Seg(s) => {
                let why_lines = draw_segment(&mut body, s, hx(&s.src), hx(&s.dst), y);
                // Room for the reason written under an RST.
                y += 14.0 * why_lines as f64;
            }
            Ev::Call(c) => {
                let x = hx(&c.host);
                let out = outward(&c.host);
                let (tx, anchor) = if out {
                    (x + 12.0, "start")
                } else {
                    (x - 12.0, "end")
                };
                let who = if c.sock == "-" || c.sock.is_empty() || !multi_sock(&c.host) {
                    String::new()
                } else {
                    format!("{}: ", c.sock)
                };
                let mut txt = format!("{who}{} = {}", c.call, c.result_text());
                if let Some(n) = &c.note
                    && n.len() <= 40
                {
                    let _ = write!(txt, " ({n})");
                }
                let class = if c.errno.is_some() {
                    "call err"
                } else {
                    "call"
                };
                let _ = writeln!(
                    body,
                    r##"<circle cx="{x:.1}" cy="{:.1}" r="3.5" class="calldot"/><text x="{tx:.1}" y="{:.1}" text-anchor="{anchor}" class="{class}">{}</text>"##,
                    y,
                    y + 4.0,
                    esc(&txt)
                );
            }
            Ev::State(s) => {
                let x = hx(&s.host);
                let out = outward(&s.host);
                let (tx, anchor) = if out {
                    (x + 12.0, "start")
                } else {
                    (x - 12.0, "end")
                };
                let who = if multi_sock(&s.host) {
                    format!("{}: ", s.sock)
                } else {
                    String::new()
                };
                let _ = writeln!(
                    body,
                    r##"<rect x="{:.1}" y="{:.1}" width="8" height="3" class="tick"/><text x="{tx:.1}" y="{:.1}" text-anchor="{anchor}" class="state"><title>{} → {}</title>{}{}</text>"##,
                    x - 4.0,
                    y - 1.5,
                    y + 4.0,
                    esc(s.from.name()),
                    esc(s.to.name()),
                    esc(&who),
                    esc(s.to.name())
                );
            }
        }
    }
    y += 30.0;
    line_pieces.push((line_start, y));

    // Host lines and headers.
    let mut lines = String::new();
    for h in &hosts {
        let x = hx(h);
        for (a, b) in &line_pieces {
            let _ = writeln!(
                lines,
                r##"<line x1="{x:.1}" y1="{a:.1}" x2="{x:.1}" y2="{b:.1}" class="host"/>"##
            );
        }
        let addr = trace
            .hosts
            .iter()
            .find(|x| &x.name == h)
            .map(|x| x.addr.to_string())
            .unwrap_or_default();
        let _ = writeln!(
            lines,
            r##"<rect x="{:.1}" y="56" width="150" height="36" rx="5" class="hostbox"/><text x="{x:.1}" y="72" class="hostname">{}</text><text x="{x:.1}" y="86" class="addr">{}</text>"##,
            x - 75.0,
            esc(h),
            esc(&addr)
        );
    }

    // Footer: counters, what was left open, the legend.
    let mut foot = String::new();
    let mut fy = y + 10.0;
    let mut counters = Vec::new();
    for (h, m) in &trace.counters {
        for (k, v) in m {
            counters.push(format!("{h} {k} {v:+}"));
        }
    }
    if !counters.is_empty() {
        let _ = writeln!(
            foot,
            r##"<text x="12" y="{fy:.1}" class="foot">counters: {}</text>"##,
            esc(&counters.join(", "))
        );
        fy += 18.0;
    }
    for c in &trace.open_at_end {
        let _ = writeln!(
            foot,
            r##"<text x="12" y="{fy:.1}" class="foot">open at end: {}.{} {} {}</text>"##,
            esc(&c.host),
            esc(&c.sock),
            esc(c.state.name()),
            esc(&c.detail)
        );
        fy += 18.0;
    }
    fy += 8.0;
    let _ = write!(
        foot,
        r##"<g class="legend" transform="translate(12 {fy:.1})"><line x1="0" y1="0" x2="40" y2="0" class="seg" marker-end="url(#ah)"/><text x="48" y="4">segment</text><line x1="130" y1="0" x2="170" y2="0" class="seg rst" marker-end="url(#ahr)"/><text x="178" y="4" class="rstl">RST</text><line x1="230" y1="0" x2="262" y2="0" class="seg lost"/><text x="262" y="5" class="x">✕</text><text x="278" y="4">lost</text><text x="330" y="4" class="call">call() = result</text><text x="450" y="4" class="state">TCP STATE</text><path d="M560 -8 l-7 5 l14 6 l-7 5" class="zig"/><text x="576" y="4">time break</text><text x="670" y="4">hover a segment for why it was sent</text></g>"##
    );
    fy += 20.0;

    let height = fy.ceil();
    let mut o = String::new();
    let _ = writeln!(
        o,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{height:.0}" viewBox="0 0 {w:.0} {height:.0}" font-family="DejaVu Sans, Arial, sans-serif">"##,
        w = width
    );
    o.push_str(STYLE);
    let _ = writeln!(o, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let policy = if trace.engine == EngineKind::Model {
        format!(", {} policy", trace.policy)
    } else {
        String::new()
    };
    let _ = writeln!(
        o,
        r##"<text x="12" y="24" class="title">{}</text><text x="12" y="42" class="sub">{}{}{}</text>"##,
        esc(&trace.scenario),
        esc(&trace.title),
        if trace.title.is_empty() { "" } else { " · " },
        esc(&format!("{} engine{policy}", trace.engine))
    );
    o.push_str(&lines);
    o.push_str(&body);
    o.push_str(&foot);
    o.push_str("</svg>\n");
    o
}

/// Splits text into lines of at most `n` characters at spaces.
fn wrap(text: &str, n: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for w in text.split(' ') {
        if !cur.is_empty() && cur.chars().count() + 1 + w.chars().count() > n {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// Draws one segment; returns how many lines of reason it wrote under
/// the arrow (RSTs only), so the caller leaves room for them.
fn draw_segment(o: &mut String, s: &RelSegment, x1: f64, x2: f64, y: f64) -> usize {
    let rst = s.flags.contains('R');
    let dir = if x2 >= x1 { 1.0 } else { -1.0 };
    // Stop short of the line so the arrowhead touches it.
    let (sx, ex) = (x1 + dir * 2.0, x2 - dir * 2.0);
    let y2 = y + SLOPE;
    let mid = (x1 + x2) / 2.0;
    let lab = esc(&label(s));
    let _ = write!(o, "<g>");
    if let Some(w) = &s.why {
        let _ = write!(o, "<title>{}</title>", esc(w));
    }
    if s.lost {
        // Dashed, ending in a ✕ a quarter of the way short of the receiver.
        let f = 0.75;
        let lx = sx + (ex - sx) * f;
        let ly = y + SLOPE * f;
        let _ = write!(
            o,
            r##"<line x1="{sx:.1}" y1="{y:.1}" x2="{lx:.1}" y2="{ly:.1}" class="seg lost"/><text x="{lx:.1}" y="{:.1}" class="x">✕</text><text x="{mid:.1}" y="{:.1}" class="lbl lostl">{lab} (lost)</text>"##,
            ly + 5.0,
            y - 4.0
        );
    } else {
        let (class, marker, lclass) = if rst {
            ("seg rst", "ahr", "lbl rstl")
        } else {
            ("seg", "ah", "lbl")
        };
        let _ = write!(
            o,
            r##"<line x1="{sx:.1}" y1="{y:.1}" x2="{ex:.1}" y2="{y2:.1}" class="{class}" marker-end="url(#{marker})"/><text x="{mid:.1}" y="{:.1}" class="{lclass}">{lab}</text>"##,
            y - 4.0
        );
    }
    let mut n = 0;
    if rst && let Some(w) = &s.why {
        for (i, l) in wrap(w, WHY_WRAP).iter().enumerate() {
            let _ = write!(
                o,
                r##"<text x="{mid:.1}" y="{:.1}" class="why">{}</text>"##,
                y2 + 13.0 + 14.0 * i as f64,
                esc(l)
            );
            n += 1;
        }
    }
    let _ = writeln!(o, "</g>");
    n
}

const STYLE: &str = r##"<defs><marker id="ah" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="10" markerHeight="10" orient="auto"><path d="M0 0 L10 5 L0 10 z" fill="#222"/></marker><marker id="ahr" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="13" markerHeight="13" orient="auto"><path d="M0 0 L10 5 L0 10 z" fill="#d00000"/></marker></defs>
<style>
.title{font-size:17px;font-weight:bold;fill:#111}
.sub{font-size:12px;fill:#555}
.host{stroke:#888;stroke-width:2}
.hostbox{fill:#f2f2f2;stroke:#888}
.hostname{font-size:14px;font-weight:bold;text-anchor:middle;fill:#111}
.addr{font-size:11px;text-anchor:middle;fill:#666}
.time{font-size:10px;fill:#999;font-family:DejaVu Sans Mono,monospace}
.seg{stroke:#222;stroke-width:1.3}
.seg.rst{stroke:#d00000;stroke-width:3}
.seg.lost{stroke:#999;stroke-dasharray:6 4}
.lbl{font-size:12px;text-anchor:middle;fill:#222;font-family:DejaVu Sans Mono,monospace}
.rstl{fill:#d00000;font-weight:bold}
.lostl{fill:#888}
.x{font-size:15px;fill:#d00000;text-anchor:middle;font-weight:bold}
.why{font-size:11px;font-style:italic;text-anchor:middle;fill:#b00000}
.call{font-size:11.5px;fill:#1f4fbf;font-family:DejaVu Sans Mono,monospace}
.call.err{fill:#c00000;font-weight:bold}
.calldot{fill:#1f4fbf}
.state{font-size:11px;font-weight:bold;fill:#17803a}
.tick{fill:#17803a}
.zig{fill:none;stroke:#888;stroke-width:2}
.gap{font-size:12px;font-style:italic;text-anchor:middle;fill:#777}
.foot{font-size:12px;fill:#333}
.legend text{font-size:11px;fill:#444}
</style>
"##;
