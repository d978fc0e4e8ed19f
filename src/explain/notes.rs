//! Notes on what a reader could not use, counted per reason.
//!
//! A capture can hold millions of packets (or lines) that are not TCP over
//! IPv4; a note per packet would make the notes as large as the file. So
//! each reason keeps a count and its first few packet or line numbers, and
//! reasons past [`MAX_REASONS`] share one group: memory is bounded whatever
//! the input.

use smallvec::SmallVec;

/// Distinct reasons kept apart; later ones are counted together. A reason
/// can carry a value from the file (`EtherType 0x86dd`), so junk input
/// could otherwise make a reason per packet.
pub const MAX_REASONS: usize = 32;

/// Packet or line numbers kept per reason.
const EXAMPLES: usize = 5;

/// What the numbers count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Packets of a binary capture: `#4`.
    Packet,
    /// Lines of text: `line 4`.
    Line,
}

/// Whether the packet was left out or used with a caveat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Skipped,
    /// Used, but something about it is unknown.
    Caveat,
}

struct Group {
    kind: Kind,
    reason: String,
    count: u64,
    examples: SmallVec<[u64; EXAMPLES]>,
}

impl Group {
    fn new(kind: Kind, reason: String) -> Group {
        Group {
            kind,
            reason,
            count: 0,
            examples: SmallVec::new(),
        }
    }
    fn add(&mut self, n: u64) {
        self.count += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(n);
        }
    }
}

/// Notes counted per reason, in order of first appearance.
pub struct Tally {
    unit: Unit,
    groups: Vec<Group>,
    /// Reasons past [`MAX_REASONS`], under the first of them.
    other: Option<Group>,
}

impl Tally {
    pub fn new(unit: Unit) -> Tally {
        Tally {
            unit,
            groups: Vec::new(),
            other: None,
        }
    }

    /// Packet or line `n` was skipped, for `why`.
    pub fn skip(&mut self, n: u64, why: &str) {
        self.add(Kind::Skipped, n, why);
    }

    /// Packet or line `n` was used, but `what` (a caveat) holds for it.
    pub fn caveat(&mut self, n: u64, what: &str) {
        self.add(Kind::Caveat, n, what);
    }

    fn add(&mut self, kind: Kind, n: u64, reason: &str) {
        if let Some(g) = self
            .groups
            .iter_mut()
            .find(|g| g.kind == kind && g.reason == reason)
        {
            return g.add(n);
        }
        if self.groups.len() < MAX_REASONS {
            let mut g = Group::new(kind, reason.to_string());
            g.add(n);
            self.groups.push(g);
            return;
        }
        self.other
            .get_or_insert_with(|| {
                Group::new(Kind::Skipped, format!("other reasons; the first: {reason}"))
            })
            .add(n);
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.other.is_none()
    }

    /// The notes, ordered by the first packet or line each one names.
    ///
    /// Packets: one note per reason, `3 packets skipped (why): #2, #5, #9`.
    /// Lines: a reason seen at most five times gets a note per line, as a
    /// person pasting a few lines expects (`line 14: why, skipped`); more
    /// often, one note with the count and the first lines.
    pub fn render(&self) -> Vec<String> {
        let mut out: Vec<(u64, String)> = Vec::new();
        for g in self.groups.iter().chain(&self.other) {
            let first = g.examples.first().copied().unwrap_or(0);
            match self.unit {
                Unit::Packet => out.push((first, packet_note(g))),
                Unit::Line if g.count <= EXAMPLES as u64 => out.extend(
                    g.examples
                        .iter()
                        .map(|&l| (l, line_note(g, &format!("line {l}")))),
                ),
                Unit::Line => {
                    let list: Vec<String> = g.examples.iter().map(u64::to_string).collect();
                    let lines = format!("lines {}, ... ({} lines)", list.join(", "), g.count);
                    out.push((first, line_note(g, &lines)));
                }
            }
        }
        // Stable: two notes on one line keep the order they were made in.
        out.sort_by_key(|(n, _)| *n);
        out.into_iter().map(|(_, s)| s).collect()
    }
}

fn packet_note(g: &Group) -> String {
    let list: Vec<String> = g.examples.iter().map(u64::to_string).collect();
    let more = if g.count > g.examples.len() as u64 {
        ", ..."
    } else {
        ""
    };
    let packets = if g.count == 1 { "packet" } else { "packets" };
    match g.kind {
        Kind::Skipped => format!(
            "{} {packets} skipped ({}): #{}{more}",
            g.count,
            g.reason,
            list.join(", #")
        ),
        Kind::Caveat => format!(
            "{} {packets} {}: #{}{more}",
            g.count,
            g.reason,
            list.join(", #")
        ),
    }
}

/// `where_` is `line 4` or `lines 4, 5, ... (9 lines)`.
fn line_note(g: &Group, where_: &str) -> String {
    match g.kind {
        Kind::Skipped => format!("{where_}: {}, skipped", g.reason),
        Kind::Caveat => format!("{where_}: {}", g.reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_are_counted_per_reason_with_the_first_numbers() {
        let mut t = Tally::new(Unit::Packet);
        for n in 1..=1000 {
            t.skip(n, "IP protocol 17, not TCP");
        }
        t.skip(2000, "IPv6 ESP (encrypted)");
        assert_eq!(
            t.render(),
            [
                "1000 packets skipped (IP protocol 17, not TCP): #1, #2, #3, #4, #5, ...",
                "1 packet skipped (IPv6 ESP (encrypted)): #2000",
            ]
        );
    }

    #[test]
    fn a_few_lines_get_a_note_each_many_share_one() {
        let mut t = Tally::new(Unit::Line);
        t.skip(1, "not a tcpdump TCP line");
        t.caveat(2, "shortened by hand");
        t.skip(3, "not a tcpdump TCP line");
        assert_eq!(
            t.render(),
            [
                "line 1: not a tcpdump TCP line, skipped",
                "line 2: shortened by hand",
                "line 3: not a tcpdump TCP line, skipped",
            ]
        );
        for n in 4..100_000 {
            t.skip(n, "not a tcpdump TCP line");
        }
        assert_eq!(
            t.render(),
            [
                "lines 1, 3, 4, 5, 6, ... (99998 lines): not a tcpdump TCP line, skipped",
                "line 2: shortened by hand",
            ]
        );
    }

    #[test]
    fn distinct_reasons_are_capped() {
        let mut t = Tally::new(Unit::Packet);
        for n in 0..10_000u64 {
            t.skip(n, &format!("EtherType 0x{n:04x}, not IP"));
        }
        let notes = t.render();
        assert_eq!(notes.len(), MAX_REASONS + 1);
        assert_eq!(
            notes[MAX_REASONS],
            "9968 packets skipped (other reasons; the first: EtherType 0x0020, not IP): #32, #33, #34, #35, #36, ..."
        );
    }
}
