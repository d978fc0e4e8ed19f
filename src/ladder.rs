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
//! Across, the picture is as wide as its labels need: an SVG cannot size
//! itself to its text, so every label's width is estimated from its
//! characters ([`text_width`], never narrower than the named fonts draw
//! it) and the time column, the host lines and the margins are placed so
//! that no label is clipped at the edge or runs into another.
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
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

/// Gaps longer than this are drawn as a break, not in proportion.
pub const BREAK_US: u64 = 500_000;
/// Pixels per millisecond of time within [`BREAK_US`].
pub const PX_PER_MS: f64 = 0.2;

const ROW_SEG: f64 = 30.0;
const ROW_NOTE: f64 = 18.0;
const BREAK_H: f64 = 44.0;
const SLOPE: f64 = 12.0;
/// The left edge of the time column and of the title and footer.
const MARGIN: f64 = 12.0;
/// From a host's line to the labels beside it.
const LABEL_OFF: f64 = 12.0;
/// Free space between two labels side by side, and at the right edge.
const GAP: f64 = 16.0;
/// The narrowest distance between two host lines: arrows stay long enough
/// to read their slope even when every label is short.
const MIN_SPACING: f64 = 360.0;
const HOSTBOX_W: f64 = 150.0;
/// Characters per line of an RST's reason under its arrow.
const WHY_WRAP: usize = 58;

// Font sizes in px, the same as in [`STYLE`] (tests/outputs/ladder.rs reads
// the sizes from the SVG's style and fails if a label these sizes place
// overflows).
const TIME_PX: f64 = 11.0;
const LBL_PX: f64 = 12.0;
const CALL_PX: f64 = 11.5;
const STATE_PX: f64 = 11.0;
const WHY_PX: f64 = 11.0;
const TITLE_PX: f64 = 17.0;
const SUB_PX: f64 = 12.0;
const HOSTNAME_PX: f64 = 14.0;
const FOOT_PX: f64 = 12.0;
const LEGEND_PX: f64 = 11.0;

/// A conservative estimate of how wide `text` is drawn at `px` pixels:
/// never less than DejaVu Sans (Mono) draws it, the fonts the diagram
/// names first, and wider than the usual fallbacks (Arial, Courier).
///
/// An SVG cannot size itself to its text, so the layout reserves room
/// from this estimate. Chromium's widths of DejaVu Sans at 1 px: most
/// lower-case letters and digits at most 0.64, capitals at most 0.79
/// (except M, W: 0.86, 0.99), `m` 0.97, `i`, `l`, `.`, space about 0.3;
/// bold at most 12% wider (W 1.10); DejaVu Sans Mono 0.602 for every
/// character, bold too.
pub fn text_width(text: &str, px: f64, mono: bool, bold: bool) -> f64 {
    let em: f64 = text
        .chars()
        .map(|c| {
            if !c.is_ascii() {
                // Arrows, ✕, ·, …: at most one em in these fonts.
                1.0
            } else if mono {
                0.62
            } else {
                let w = match c {
                    'i' | 'j' | 'l' | 'I' | 'J' | '.' | ',' | ':' | ';' | '\'' | '|' | '!'
                    | ' ' => 0.42,
                    'm' | 'w' | 'M' | 'W' | '@' | '%' | '#' | '&' | '+' | '<' | '=' | '>' | '^'
                    | '~' => 1.0,
                    'A'..='Z' => 0.8,
                    _ => 0.66,
                };
                if bold { w * 1.12 } else { w }
            }
        })
        .sum();
    em * px
}

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

/// What a row of the diagram shows, with its label text worked out before
/// the layout so that the columns can be sized from the widest label.
enum Row<'a> {
    Seg {
        seg: &'a RelSegment,
        from: usize,
        to: usize,
        /// `S. seq 0 ack 1`, with ` (lost)` for a lost segment.
        label: String,
        /// An RST's reason, wrapped, written under the arrow.
        why: Vec<String>,
    },
    Call {
        call: &'a crate::trace::CallRecord,
        host: usize,
        text: String,
    },
    State {
        state: &'a crate::engine::StateChange,
        host: usize,
        text: String,
    },
}

impl Row<'_> {
    /// The label beside a host line: its host, text and font (mono, bold).
    fn note(&self) -> Option<(usize, &str, f64, bool, bool)> {
        match self {
            Row::Seg { .. } => None,
            Row::Call { call, host, text } => {
                Some((*host, text, CALL_PX, true, call.errno.is_some()))
            }
            Row::State { host, text, .. } => Some((*host, text, STATE_PX, false, true)),
        }
    }
}

/// The horizontal layout: where each host's line is, and how wide the
/// picture is.
struct Columns {
    xs: Vec<f64>,
    /// Width of each host's box.
    boxes: Vec<f64>,
    width: f64,
}

/// Sizes the columns from the labels so that none is clipped and none runs
/// into another: the time column, then host 0's labels (right-aligned to
/// its line), then between each pair of lines the segment labels and RST
/// reasons (centred) and the labels of the host on the left of the pair
/// (every host but the first writes its labels to its right), then the
/// last host's labels and the right margin.
fn columns(hosts: &[String], rows: &[Row], time_w: f64, min_width: f64) -> Columns {
    let n = hosts.len();
    let boxes: Vec<f64> = hosts
        .iter()
        .map(|h| HOSTBOX_W.max(text_width(h, HOSTNAME_PX, false, true) + 20.0))
        .collect();
    // Widest label beside each host line.
    let mut side = vec![0.0f64; n];
    // Widest label over the space between host i and host i + 1, for
    // segments between neighbours; others are fitted afterwards.
    let mut between = vec![0.0f64; n.saturating_sub(1)];
    let mut spans: Vec<(usize, usize, f64)> = Vec::new();
    for r in rows {
        if let Some((h, text, px, mono, bold)) = r.note() {
            side[h] = side[h].max(text_width(text, px, mono, bold));
        }
        if let Row::Seg {
            from,
            to,
            label,
            why,
            seg,
        } = r
        {
            let (a, b) = ((*from).min(*to), (*from).max(*to));
            if a == b {
                continue;
            }
            let bold = seg.flags.contains('R');
            let mut w = text_width(label, LBL_PX, true, bold) + 2.0 * GAP;
            for l in why {
                w = w.max(text_width(l, WHY_PX, false, false) + 2.0 * GAP);
            }
            if b == a + 1 {
                between[a] = between[a].max(w);
            } else {
                spans.push((a, b, w));
            }
        }
    }
    let beside = |h: usize| {
        if side[h] > 0.0 {
            LABEL_OFF + side[h] + GAP
        } else {
            0.0
        }
    };
    // Host 0 writes to its left when there is a host to its right.
    let first_left = n > 1;
    let time_end = MARGIN + time_w + GAP;
    let x0 = if first_left {
        (time_end + beside(0)).max(boxes[0] / 2.0 + MARGIN)
    } else {
        time_end.max(boxes[0] / 2.0 + MARGIN)
    };
    let mut spacing: Vec<f64> = (0..n.saturating_sub(1))
        .map(|i| {
            let mut s = MIN_SPACING
                .max(between[i])
                .max((boxes[i] + boxes[i + 1]) / 2.0 + GAP);
            if i > 0 || !first_left {
                s = s.max(beside(i));
            }
            s
        })
        .collect();
    // A segment that passes over a host line: widen the last gap it spans
    // until its label fits.
    for (a, b, w) in spans {
        let have: f64 = spacing[a..b].iter().sum();
        if have < w {
            spacing[b - 1] += w - have;
        }
    }
    let mut xs = vec![x0];
    for s in &spacing {
        let x = xs[xs.len() - 1] + s;
        xs.push(x);
    }
    let last = n - 1;
    let mut right = xs[last] + boxes[last] / 2.0 + MARGIN;
    if last > 0 || !first_left {
        right = right.max(xs[last] + beside(last));
    }
    Columns {
        xs,
        boxes,
        width: right.max(min_width).ceil(),
    }
}

/// Splits text into lines no wider than `max_w` px by the estimate of
/// [`text_width`]; a single word wider than that gets a line of its own.
fn wrap_px(text: &str, max_w: f64, px: f64, bold: bool) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for w in text.split(' ') {
        let next = if cur.is_empty() {
            w.to_string()
        } else {
            format!("{cur} {w}")
        };
        if !cur.is_empty() && text_width(&next, px, false, bold) > max_w {
            lines.push(std::mem::replace(&mut cur, w.to_string()));
        } else {
            cur = next;
        }
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

/// The legend's items at their x offsets: each item's x is where the
/// previous one ends, by the width estimate, plus a gap.
fn legend() -> (String, f64) {
    let mut o = String::new();
    let mut x = 0.0;
    let text_gap = 8.0;
    let text = |o: &mut String, x: &mut f64, t: &str, class: &str, mono: bool, bold: bool| {
        let c = if class.is_empty() {
            String::new()
        } else {
            format!(r#" class="{class}""#)
        };
        let px = if class == "call" { CALL_PX } else { LEGEND_PX };
        let _ = write!(o, r#"<text x="{x:.1}" y="4"{c}>{}</text>"#, esc(t));
        *x += text_width(t, px, mono, bold) + 2.0 * GAP;
    };
    let _ = write!(
        o,
        r##"<line x1="{x:.1}" y1="0" x2="{:.1}" y2="0" class="seg" marker-end="url(#ah)"/>"##,
        x + 40.0
    );
    x += 40.0 + text_gap;
    text(&mut o, &mut x, "segment", "", false, false);
    let _ = write!(
        o,
        r##"<line x1="{x:.1}" y1="0" x2="{:.1}" y2="0" class="seg rst" marker-end="url(#ahr)"/>"##,
        x + 40.0
    );
    x += 40.0 + text_gap;
    text(&mut o, &mut x, "RST", "rstl", false, true);
    let _ = write!(
        o,
        r##"<line x1="{x:.1}" y1="0" x2="{:.1}" y2="0" class="seg lost"/><text x="{:.1}" y="5" class="x">✕</text>"##,
        x + 32.0,
        x + 32.0
    );
    x += 32.0 + text_width("✕", LEGEND_PX, false, true) / 2.0 + text_gap;
    text(&mut o, &mut x, "lost", "", false, false);
    text(&mut o, &mut x, "call() = result", "call", true, false);
    text(&mut o, &mut x, "TCP STATE", "state", false, true);
    let _ = write!(
        o,
        r##"<path d="M{:.1} -8 l-7 5 l14 6 l-7 5" class="zig"/>"##,
        x + 7.0
    );
    x += 14.0 + text_gap;
    text(&mut o, &mut x, "time break", "", false, false);
    let hover = "hover a segment for why it was sent";
    let _ = write!(o, r#"<text x="{x:.1}" y="4">{hover}</text>"#);
    x += text_width(hover, LEGEND_PX, false, false);
    (o, x)
}

/// The diagram of a trace as SVG text.
pub fn render(trace: &Trace) -> String {
    let segs = relative(&trace.segments);
    // Hosts: the script's, then any other name a record mentions.
    let mut hosts: Vec<String> = Vec::new();
    // Each host's column, by name (looked up per record).
    let mut column: HashMap<String, usize> = HashMap::new();
    let mut add = |h: &str| {
        if !column.contains_key(h) {
            column.insert(h.to_string(), hosts.len());
            hosts.push(h.to_string());
        }
    };
    for h in &trace.hosts {
        add(&h.name);
    }
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
    let hi = |h: &str| column.get(h).copied().unwrap_or(0);
    let last = hosts.len() - 1;
    // Hosts with more than one socket name their socket in state labels.
    // Worked out once for all hosts, in one pass: asked per label, it
    // made the ladder quadratic in the calls.
    let mut first_sock: HashMap<&str, &str> = HashMap::new();
    let mut multi: HashSet<&str> = HashSet::new();
    let named = trace
        .states
        .iter()
        .map(|s| (s.host.as_str(), s.sock.as_str()))
        .chain(
            trace
                .calls
                .iter()
                .filter(|c| c.sock != "-")
                .map(|c| (c.host.as_str(), c.sock.as_str())),
        );
    for (h, sock) in named {
        if *first_sock.entry(h).or_insert(sock) != sock {
            multi.insert(h);
        }
    }
    let multi_sock = |h: &str| multi.contains(h);

    let mut evs: Vec<Ev> = segs.iter().map(Ev::Seg).collect();
    evs.extend(trace.calls.iter().map(Ev::Call));
    evs.extend(trace.states.iter().map(Ev::State));
    // Stable: records of one kind keep the trace's order.
    evs.sort_by_key(|e| (e.time(), e.order()));

    let rows: Vec<Row> = evs
        .iter()
        .map(|e| match e {
            Ev::Seg(s) => {
                let mut label = label(s);
                if s.lost {
                    label.push_str(" (lost)");
                }
                let why = match &s.why {
                    Some(w) if s.flags.contains('R') => wrap(w, WHY_WRAP),
                    _ => Vec::new(),
                };
                Row::Seg {
                    seg: s,
                    from: hi(&s.src),
                    to: hi(&s.dst),
                    label,
                    why,
                }
            }
            Ev::Call(c) => {
                let who = if c.sock == "-" || c.sock.is_empty() || !multi_sock(&c.host) {
                    String::new()
                } else {
                    format!("{}: ", c.sock)
                };
                let mut text = format!("{who}{} = {}", c.call, c.result_text());
                if let Some(n) = &c.note
                    && n.len() <= 40
                {
                    let _ = write!(text, " ({n})");
                }
                Row::Call {
                    call: c,
                    host: hi(&c.host),
                    text,
                }
            }
            Ev::State(s) => {
                let who = if multi_sock(&s.host) {
                    format!("{}: ", s.sock)
                } else {
                    String::new()
                };
                Row::State {
                    state: s,
                    host: hi(&s.host),
                    text: format!("{who}{}", s.to),
                }
            }
        })
        .collect();

    // The width: the columns, but never narrower than the title or the
    // legend; the subtitle and the footer wrap to it.
    let times: Vec<String> = evs.iter().map(|e| fmt_time(e.time())).collect();
    let time_w = times
        .iter()
        .map(|t| text_width(t, TIME_PX, true, false))
        .fold(0.0, f64::max);
    let (legend, legend_w) = legend();
    let min_width = (MARGIN + legend_w)
        .max(MARGIN + text_width(&trace.scenario, TITLE_PX, false, true))
        + MARGIN;
    let cols = columns(&hosts, &rows, time_w, min_width);
    let width = cols.width;
    let text_w = width - 2.0 * MARGIN;
    let hx = |h: usize| cols.xs[h];
    // Labels beside a line go outward: left of the first host, right of
    // the others.
    let outward = |h: usize| h != 0 || last == 0;

    let policy = if trace.engine == EngineKind::Model {
        format!(", {} policy", trace.policy)
    } else {
        String::new()
    };
    // The subtitle: the script's title, then the engine; when it does not
    // fit the title wraps, and the engine goes on the last line if it fits
    // there, else on a line of its own.
    let engine = format!("{} engine{policy}", trace.engine);
    let mut sub_lines = if trace.title.is_empty() {
        Vec::new()
    } else {
        wrap_px(&trace.title, text_w, SUB_PX, false)
    };
    match sub_lines.last_mut() {
        Some(l) if text_width(&format!("{l} · {engine}"), SUB_PX, false, false) <= text_w => {
            l.push_str(" · ");
            l.push_str(&engine);
        }
        _ => sub_lines.push(engine),
    }
    // Everything below the subtitle moves down by its extra lines.
    let shift = 16.0 * (sub_lines.len() - 1) as f64;
    let top = 110.0 + shift;

    let mut body = String::new();
    let mut y = top;
    let mut prev_t: Option<u64> = None;
    // Vertical extents of each host line between breaks.
    let mut line_start = top - 20.0;
    let mut line_pieces: Vec<(f64, f64)> = Vec::new();
    let mut last_time_label = String::new();

    for (row, tl) in rows.iter().zip(times) {
        let t = match row {
            Row::Seg { seg, .. } => seg.time_us,
            Row::Call { call, .. } => call.time_us,
            Row::State { state, .. } => state.time_us,
        };
        if let Some(p) = prev_t {
            let gap = t - p;
            if gap > BREAK_US {
                // A break: close the host lines, draw the zigzag and the
                // gap's length, and start the lines again below.
                line_pieces.push((line_start, y + 4.0));
                let mid = y + BREAK_H / 2.0;
                for x in &cols.xs {
                    let _ = writeln!(
                        body,
                        r##"<path d="M{:.1} {:.1} l-7 5 l14 6 l-7 5" class="zig"/>"##,
                        x,
                        mid - 8.0
                    );
                }
                let cx = (hx(0) + hx(last)) / 2.0;
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
        y += match row {
            Row::Seg { .. } => ROW_SEG,
            _ => ROW_NOTE,
        };
        // The time at the left edge, once per distinct time.
        if tl != last_time_label {
            let ty = match row {
                Row::Seg { .. } => y,
                _ => y + 4.0,
            };
            let _ = writeln!(
                body,
                r##"<text x="{MARGIN}" y="{ty:.1}" class="time">{tl}</text>"##
            );
            last_time_label = tl;
        }
        match row {
            Row::Seg {
                seg,
                from,
                to,
                label,
                why,
            } => {
                draw_segment(&mut body, seg, label, why, hx(*from), hx(*to), y);
                // Room for the reason written under an RST.
                y += 14.0 * why.len() as f64;
            }
            Row::Call { call, host, text } => {
                let x = hx(*host);
                let (tx, anchor) = if outward(*host) {
                    (x + LABEL_OFF, "start")
                } else {
                    (x - LABEL_OFF, "end")
                };
                let class = if call.errno.is_some() {
                    "call err"
                } else {
                    "call"
                };
                let _ = writeln!(
                    body,
                    r##"<circle cx="{x:.1}" cy="{:.1}" r="3.5" class="calldot"/><text x="{tx:.1}" y="{:.1}" text-anchor="{anchor}" class="{class}">{}</text>"##,
                    y,
                    y + 4.0,
                    esc(text)
                );
            }
            Row::State { state, host, text } => {
                let x = hx(*host);
                let (tx, anchor) = if outward(*host) {
                    (x + LABEL_OFF, "start")
                } else {
                    (x - LABEL_OFF, "end")
                };
                let _ = writeln!(
                    body,
                    r##"<rect x="{:.1}" y="{:.1}" width="8" height="3" class="tick"/><text x="{tx:.1}" y="{:.1}" text-anchor="{anchor}" class="state"><title>{} → {}</title>{}</text>"##,
                    x - 4.0,
                    y - 1.5,
                    y + 4.0,
                    esc(state.from.name()),
                    esc(state.to.name()),
                    esc(text)
                );
            }
        }
    }
    y += 30.0;
    line_pieces.push((line_start, y));

    // Host lines and headers.
    let mut lines = String::new();
    for (i, h) in hosts.iter().enumerate() {
        let x = hx(i);
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
        let bw = cols.boxes[i];
        let _ = writeln!(
            lines,
            r##"<rect x="{:.1}" y="{:.1}" width="{bw:.1}" height="36" rx="5" class="hostbox"/><text x="{x:.1}" y="{:.1}" class="hostname">{}</text><text x="{x:.1}" y="{:.1}" class="addr">{}</text>"##,
            x - bw / 2.0,
            56.0 + shift,
            72.0 + shift,
            esc(h),
            86.0 + shift,
            esc(&addr)
        );
    }

    // Footer: counters, what was left open, the legend; long lines wrap.
    let mut foot = String::new();
    let mut fy = y + 10.0;
    let mut foot_line = |foot: &mut String, text: &str| {
        for l in wrap_px(text, text_w, FOOT_PX, false) {
            let _ = writeln!(
                foot,
                r##"<text x="{MARGIN}" y="{fy:.1}" class="foot">{}</text>"##,
                esc(&l)
            );
            fy += 18.0;
        }
    };
    let mut counters = Vec::new();
    for (h, m) in &trace.counters {
        for (k, v) in m {
            counters.push(format!("{h} {k} {v:+}"));
        }
    }
    if !counters.is_empty() {
        foot_line(&mut foot, &format!("counters: {}", counters.join(", ")));
    }
    for c in &trace.open_at_end {
        foot_line(
            &mut foot,
            &format!(
                "open at end: {}.{} {} {}",
                c.host, c.sock, c.state, c.detail
            ),
        );
    }
    fy += 8.0;
    let _ = write!(
        foot,
        r##"<g class="legend" transform="translate({MARGIN} {fy:.1})">{legend}</g>"##
    );
    fy += 20.0;

    let height = fy.ceil();
    let mut o = String::new();
    let _ = writeln!(
        o,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="DejaVu Sans, Arial, sans-serif">"##
    );
    o.push_str(STYLE);
    let _ = writeln!(o, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = write!(
        o,
        r##"<text x="{MARGIN}" y="24" class="title">{}</text>"##,
        esc(&trace.scenario)
    );
    for (i, l) in sub_lines.iter().enumerate() {
        let _ = write!(
            o,
            r##"<text x="{MARGIN}" y="{:.1}" class="sub">{}</text>"##,
            42.0 + 16.0 * i as f64,
            esc(l)
        );
    }
    o.push('\n');
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

/// Draws one segment with its label and, under the arrow, an RST's
/// reason (`why`, already wrapped).
fn draw_segment(
    o: &mut String,
    s: &RelSegment,
    label: &str,
    why: &[String],
    x1: f64,
    x2: f64,
    y: f64,
) {
    let rst = s.flags.contains('R');
    let dir = if x2 >= x1 { 1.0 } else { -1.0 };
    // Stop short of the line so the arrowhead touches it.
    let (sx, ex) = (x1 + dir * 2.0, x2 - dir * 2.0);
    let y2 = y + SLOPE;
    let mid = (x1 + x2) / 2.0;
    let lab = esc(label);
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
            r##"<line x1="{sx:.1}" y1="{y:.1}" x2="{lx:.1}" y2="{ly:.1}" class="seg lost"/><text x="{lx:.1}" y="{:.1}" class="x">✕</text><text x="{mid:.1}" y="{:.1}" class="lbl lostl">{lab}</text>"##,
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
    for (i, l) in why.iter().enumerate() {
        let _ = write!(
            o,
            r##"<text x="{mid:.1}" y="{:.1}" class="why">{}</text>"##,
            y2 + 13.0 + 14.0 * i as f64,
            esc(l)
        );
    }
    let _ = writeln!(o, "</g>");
}

const STYLE: &str = r##"<defs><marker id="ah" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="10" markerHeight="10" orient="auto"><path d="M0 0 L10 5 L0 10 z" fill="#222"/></marker><marker id="ahr" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="13" markerHeight="13" orient="auto"><path d="M0 0 L10 5 L0 10 z" fill="#d00000"/></marker></defs>
<style>
.title{font-size:17px;font-weight:bold;fill:#111}
.sub{font-size:12px;fill:#555}
.host{stroke:#888;stroke-width:2}
.hostbox{fill:#f2f2f2;stroke:#888}
.hostname{font-size:14px;font-weight:bold;text-anchor:middle;fill:#111}
.addr{font-size:11px;text-anchor:middle;fill:#666}
.time{font-size:11px;fill:#999;font-family:DejaVu Sans Mono,monospace}
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
