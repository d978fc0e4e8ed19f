//! What a capture shows about one connection, gathered packet by packet.
//!
//! This is the first of explain's three layers: [`ConnFacts`] is built one
//! packet at a time and holds only what the rules (`rules.rs`) look
//! at — counts, the segments worth pointing at, sequence holes, the IP
//! layer of each sender — never the packets themselves. A connection of
//! ten million segments costs the same few kilobytes as one of ten.

use super::{Packet, TcpOptions};
use crate::segment::Flags;
use std::collections::VecDeque;
use std::fmt::Write as _;

/// How many RSTs of one connection are kept to be listed; more are counted.
pub use crate::limits::EXPLAIN_RSTS_KEPT as RSTS_KEPT;

/// How many of each side's latest segments are kept (before the first
/// RST) to find the one an RST answers.
const RECENT: usize = 4;

/// A segment an explanation can point at.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    /// 0-based position among this connection's segments.
    pub pos: u64,
    /// 1-based position among the capture's TCP segments (pcap: the
    /// record number, Wireshark's frame number).
    pub index: usize,
    /// The text line (tcpdump text captures).
    pub line: Option<usize>,
    pub time_ns: Option<u64>,
    pub flags: Flags,
    /// Relative to the sender's ISN (or to its first captured byte).
    pub seq: Option<u32>,
    /// Relative to the receiver's ISN.
    pub ack: Option<u32>,
    pub win: Option<u32>,
    pub len: u32,
    pub ttl: Option<u8>,
    pub ip_id: Option<u16>,
}

impl Seen {
    /// Where to find it: `line 6` or `packet #6`.
    pub fn place(&self) -> String {
        match self.line {
            Some(l) => format!("line {l}"),
            None => format!("packet #{}", self.index),
        }
    }

    /// The segment the way tcpdump shows it: `[R.] seq 1 ack 2 win 0`.
    pub fn text(&self) -> String {
        let mut s = format!("[{}]", self.flags.tcpdump());
        if let Some(q) = self.seq {
            if self.len > 0 {
                let _ = write!(s, " seq {}:{}", q, q.wrapping_add(self.len));
            } else {
                let _ = write!(s, " seq {q}");
            }
        }
        if let Some(a) = self.ack {
            let _ = write!(s, " ack {a}");
        }
        if let Some(w) = self.win {
            let _ = write!(s, " win {w}");
        }
        s
    }

    /// The relative sequence number just past it (a SYN and a FIN count
    /// one each, RFC 9293 3.4).
    pub fn end(&self) -> Option<u32> {
        let extra = u32::from(self.flags.syn()) + u32::from(self.flags.fin());
        self.seq
            .map(|q| q.wrapping_add(self.len).wrapping_add(extra))
    }
}

/// One RST of a connection.
#[derive(Clone, Debug, PartialEq)]
pub struct RstSeen {
    /// 0 or 1: which of [`ConnFacts::names`] sent it.
    pub side: usize,
    pub seg: Seen,
    /// The first bytes of its payload, when it had one.
    pub payload: Option<Box<[u8]>>,
}

/// What one side did, up to and including the connection's first RST
/// (what follows an RST is its aftermath, not its cause).
#[derive(Clone, Debug, Default)]
pub struct Side {
    pub segments: u64,
    pub syn: Option<Seen>,
    /// Bytes of data sent: the highest relative end seen, minus the SYN.
    pub data: u32,
    pub first_data: Option<Seen>,
    pub fin: Option<Seen>,
    /// FIN segments sent: more than one means it was retransmitted.
    pub fin_count: u32,
    /// Position of the last FIN it sent.
    pub last_fin_pos: Option<u64>,
    pub rst: Option<Seen>,
    pub max_ack: Option<u32>,
    pub zero_win: Option<Seen>,
    /// The last window it advertised (not counting RSTs).
    pub last_win: Option<u32>,
    pub urgent: bool,
    /// The first data it sent after the other side's FIN.
    pub data_after_peer_fin: Option<Seen>,
    /// The first segment of the OTHER side acknowledging this side's
    /// first FIN.
    pub fin_acked_by_peer: Option<Seen>,
    /// This side sent its FIN again after the peer had acknowledged it.
    pub fin_rexmit_after_ack: bool,
    /// Segments it sent after the peer's first FIN, and whether one of
    /// them carried an ACK.
    pub after_peer_fin: u32,
    pub after_peer_fin_ack: bool,
    /// Segments it sent after the peer advertised a zero window and while
    /// that window stayed closed (zero-window probes, RFC 9293 3.8.6.1).
    pub probes: u32,
    /// Keep-alive probes it sent: bare ACKs (or one old byte) at seq
    /// snd_una - 1, as tcp_write_wakeup sends them (RFC 1122 4.2.3.6).
    pub keepalives: u32,
    pub first_keepalive: Option<Seen>,
    /// Segments the peer sent after this side's first keep-alive probe.
    pub peer_after_keepalive: u32,
    /// Data segments that carried only bytes it had sent before
    /// (retransmissions), and the last of them.
    pub retransmits: u32,
    pub last_retransmit: Option<Seen>,
    /// The ack and window of its last segment other than an RST.
    pub last_ack_win: Option<(u32, u32)>,
    /// Its latest segments, newest last.
    pub recent: VecDeque<Seen>,
    /// Data segments that started past the end of everything seen before
    /// from this side: the capture misses what lies between.
    pub holes: u32,
    pub hole_bytes: u64,
    /// The SYN's options (a host's fingerprint, and what it offered).
    pub syn_options: TcpOptions,
    /// TTL (hop limit) of its segments other than RSTs: the first seen,
    /// and whether every one carried it.
    pub ttl: Option<u8>,
    pub ttl_varies: bool,
    /// IP IDs of its segments other than RSTs: the last seen, and the
    /// largest step between consecutive ones.
    pub last_ip_id: Option<u16>,
    pub max_id_step: u16,
}

/// Everything the rules need about one connection.
#[derive(Clone, Debug)]
pub struct ConnFacts {
    /// 1-based, in order of first appearance in the capture.
    pub id: usize,
    /// The endpoints as written (`10.0.0.1.40000`); side 0 sent the first
    /// captured segment.
    pub names: [String; 2],
    /// Which side sent a SYN without ACK (opened the connection).
    pub opener: Option<usize>,
    /// Which side sent a SYN-ACK: the other one opened, even when its SYN
    /// is not in the capture.
    pub synack_from: Option<usize>,
    pub packets: u64,
    pub first: Seen,
    pub first_text: String,
    pub last: Seen,
    pub last_text: String,
    pub sides: [Side; 2],
    /// The first RST, with its sender.
    pub first_rst: Option<(usize, Seen)>,
    /// Every RST, up to [`RSTS_KEPT`]; `rst_count` counts all.
    pub rsts: Vec<RstSeen>,
    pub rst_count: u64,
    /// A segment other than a SYN was seen.
    pub any_non_syn: bool,
    /// Whether the sequence numbers were absolute (pcap).
    pub absolute: bool,
    /// 4 or 6 (0: unknown), from the first segment.
    pub ip_version: u8,
    /// The side that sent the previous segment.
    prev_side: Option<usize>,
    crafted: Option<Seen>,
    /// After the first RST, the connection went on: a SYN-ACK, or data
    /// acknowledged by an ACK (not an RST) from the other side.
    pub after_first_rst_continued: bool,
    /// After the first RST: the highest data end per side (relative).
    after_rst_data_end: [Option<u32>; 2],
    isn: [Option<u32>; 2],
    fins: [bool; 2],
    ended: bool,
}

impl ConnFacts {
    /// A connection starting with `p`.
    pub fn new(id: usize, p: &Packet) -> ConnFacts {
        let blank = Seen {
            pos: 0,
            index: p.index,
            line: p.line,
            time_ns: p.time_ns,
            flags: p.flags,
            seq: None,
            ack: None,
            win: p.win,
            len: p.len,
            ttl: p.ip.ttl,
            ip_id: p.ip.id,
        };
        ConnFacts {
            id,
            names: [p.src.clone(), p.dst.clone()],
            opener: None,
            synack_from: None,
            packets: 0,
            first: blank.clone(),
            first_text: p.time_text.clone(),
            last: blank,
            last_text: p.time_text.clone(),
            sides: [Side::default(), Side::default()],
            first_rst: None,
            rsts: Vec::new(),
            rst_count: 0,
            any_non_syn: false,
            absolute: p.absolute,
            ip_version: p.ip.version,
            prev_side: None,
            crafted: None,
            after_first_rst_continued: false,
            after_rst_data_end: [None, None],
            isn: [None, None],
            fins: [false, false],
            ended: false,
        }
    }

    /// Which side sent `p` (0 or 1), when it belongs here.
    pub fn side_of(&self, p: &Packet) -> usize {
        usize::from(p.src != self.names[0])
    }

    /// The connection has ended on the wire: an RST, or a FIN each way.
    /// A fresh SYN on the same endpoints then starts a new connection.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Whether a SYN is this connection's own SYN again (its opener, its
    /// ISN): a retransmission of the same attempt, not a new connection.
    /// Wireshark keeps such a SYN in the same `tcp.stream` too.
    pub fn same_syn(&self, p: &Packet) -> bool {
        let s = self.side_of(p);
        self.opener == Some(s) && p.seq.is_some() && self.isn[s] == p.seq
    }

    /// The ISN of a direction, or the number its first byte is counted
    /// from, once seen.
    fn base(&mut self, dir: usize, first: u32, absolute: bool) -> u32 {
        *self.isn[dir].get_or_insert(if !absolute && first < 1 << 20 {
            0
        } else {
            first.wrapping_sub(1)
        })
    }

    /// Relative sequence numbers per direction, whatever mix of absolute
    /// and tcpdump-relative numbers the capture holds.
    ///
    /// tcpdump without `-S` prints the SYN and the first ACK-bearing
    /// segment with absolute numbers and the rest relative; with `-S` all
    /// absolute. Each direction's ISN comes from its SYN, or is inferred
    /// from the first number seen. A text value is then read as whichever
    /// of "already relative" (`v`) and "absolute" (`v - isn`) is smaller:
    /// real ISNs are random 32-bit numbers, so the two readings are far
    /// apart. A first value below 2^20 seen without a SYN is taken as
    /// already relative (a paste that starts mid-connection): a random ISN
    /// is that small once in 4096.
    fn relative(&mut self, s: usize, p: &Packet) -> (Option<u32>, Option<u32>) {
        let rel = |v: u32, base: u32, absolute: bool| {
            let abs = v.wrapping_sub(base);
            if absolute { abs } else { abs.min(v) }
        };
        if p.flags.syn() {
            if let Some(q) = p.seq {
                self.isn[s] = Some(q);
            }
            if let (true, Some(a)) = (p.flags.ack(), p.ack) {
                self.isn[1 - s].get_or_insert(a.wrapping_sub(1));
            }
        }
        let seq = p.seq.map(|q| {
            let b = self.base(s, q, p.absolute);
            rel(q, b, p.absolute)
        });
        let ack = p.ack.filter(|_| p.flags.ack()).map(|a| {
            let b = self.base(1 - s, a, p.absolute);
            rel(a, b, p.absolute)
        });
        (seq, ack)
    }

    /// Adds the next segment of this connection.
    pub fn push(&mut self, p: &Packet) {
        let s = self.side_of(p);
        let (seq, ack) = self.relative(s, p);
        let seen = Seen {
            pos: self.packets,
            index: p.index,
            line: p.line,
            time_ns: p.time_ns,
            flags: p.flags,
            seq,
            ack,
            win: p.win,
            len: p.len,
            ttl: p.ip.ttl,
            ip_id: p.ip.id,
        };
        self.packets += 1;
        if self.packets == 1 {
            self.first = seen.clone();
            self.first_text = p.time_text.clone();
        }
        if !p.time_text.is_empty() {
            self.last_text.clone_from(&p.time_text);
        }
        let f = p.flags;
        if f.syn() && !f.ack() && self.opener.is_none() {
            self.opener = Some(s);
        }
        // A SYN-ACK answers the other side's SYN, captured or not.
        if f.syn() && f.ack() && self.synack_from.is_none() {
            self.synack_from = Some(s);
        }
        if !f.syn() {
            self.any_non_syn = true;
        }
        if f.rst() {
            self.ended = true;
            self.rst_count += 1;
            if self.rsts.len() < RSTS_KEPT {
                self.rsts.push(RstSeen {
                    side: s,
                    seg: seen.clone(),
                    payload: p.rst_payload.clone(),
                });
            }
        }
        if f.fin() {
            self.fins[s] = true;
            if self.fins == [true, true] {
                self.ended = true;
            }
        }
        if self.crafted.is_none() && ((f.syn() && (f.fin() || f.rst())) || (f.fin() && f.rst())) {
            self.crafted = Some(seen.clone());
        }
        if self.first_rst.is_some() && !f.rst() {
            if f.syn() && f.ack() {
                self.after_first_rst_continued = true;
            }
            if p.len > 0 {
                let end = seen.seq.map(|q| q.wrapping_add(p.len));
                self.after_rst_data_end[s] = self.after_rst_data_end[s].max(end);
            }
            // The other side acknowledges data sent after the RST.
            if let (Some(e), Some(a)) = (self.after_rst_data_end[1 - s], seen.ack)
                && a >= e
                && f.ack()
            {
                self.after_first_rst_continued = true;
            }
        }
        if self.first_rst.is_none() {
            self.side_facts(s, p, &seen);
            if f.rst() {
                self.first_rst = Some((s, seen.clone()));
            }
        }
        self.last = seen;
    }

    /// Flags no TCP stack sends together (SYN with FIN or RST, FIN with
    /// RST): the first segment with such a combination.
    pub fn crafted(&self) -> Option<&Seen> {
        self.crafted.as_ref()
    }

    /// The per-side facts, before the first RST.
    fn side_facts(&mut self, s: usize, p: &Packet, r: &Seen) {
        let f = p.flags;
        let prev_side = self.prev_side;
        self.prev_side = Some(s);
        let peer = &self.sides[1 - s];
        let peer_fin = peer.fin.clone();
        let peer_zero = peer.zero_win.is_some() && peer.last_win == Some(0);
        // Does this segment acknowledge the peer's first FIN?
        let acks_peer_fin = peer.fin_acked_by_peer.is_none()
            && !f.rst()
            && matches!((&peer_fin, r.ack), (Some(pf), Some(a)) if pf.end().is_some_and(|e| a >= e));
        if acks_peer_fin {
            self.sides[1 - s].fin_acked_by_peer = Some(r.clone());
        }
        if self.sides[1 - s].first_keepalive.is_some() {
            let k = &mut self.sides[1 - s].peer_after_keepalive;
            *k = k.saturating_add(1);
        }
        let me = &mut self.sides[s];
        me.segments += 1;
        // A keep-alive probe: one below the next byte to send, with
        // everything before it acknowledged (snd_una - 1), no SYN, FIN or
        // RST, at most one byte.
        let next = me.data.wrapping_add(1);
        // tcpdump's text prints no seq for a bare ACK: there, a bare ACK
        // repeating this side's last ack and window with nothing from the
        // peer in between is taken for a probe (a window update changes
        // the window; a duplicate ACK answers a peer segment).
        let repeats_itself = r.seq.is_none()
            && p.len == 0
            && prev_side == Some(s)
            && me.last_ack_win.is_some()
            && me.last_ack_win == r.ack.zip(p.win);
        if f.ack()
            && !f.syn()
            && !f.fin()
            && !f.rst()
            && p.len <= 1
            && me.syn.is_some()
            && (r.seq == Some(next.wrapping_sub(1)) || repeats_itself)
        {
            me.keepalives = me.keepalives.saturating_add(1);
            if me.first_keepalive.is_none() {
                me.first_keepalive = Some(r.clone());
            }
        }
        if p.len > 1
            && r.seq.is_some_and(|q| {
                // Entirely before the next new byte, and not by a
                // wrapped-around distance.
                let back = next.wrapping_sub(q);
                back >= p.len && back < 1 << 30
            })
        {
            me.retransmits = me.retransmits.saturating_add(1);
            me.last_retransmit = Some(r.clone());
        }
        if f.syn() && me.syn.is_none() {
            me.syn = Some(r.clone());
            me.syn_options = p.options;
        }
        if !f.rst() {
            if let Some(t) = p.ip.ttl {
                match me.ttl {
                    None => me.ttl = Some(t),
                    Some(x) if x != t => me.ttl_varies = true,
                    Some(_) => {}
                }
            }
            if let Some(id) = p.ip.id {
                if let Some(prev) = me.last_ip_id {
                    me.max_id_step = me.max_id_step.max(id.wrapping_sub(prev));
                }
                me.last_ip_id = Some(id);
            }
        }
        if p.len > 0 {
            if me.first_data.is_none() {
                me.first_data = Some(r.clone());
            }
            // Counted from the SYN, data starts at relative 1: a segment
            // starting past the end of all seen so far leaves a hole.
            if let Some(q) = r.seq {
                let seen_end = me.data.wrapping_add(1);
                if q > seen_end && q - seen_end < 1 << 30 {
                    me.holes = me.holes.saturating_add(1);
                    me.hole_bytes = me.hole_bytes.saturating_add(u64::from(q - seen_end));
                }
            }
            let end_rel = r.seq.map(|q| q.wrapping_add(p.len).saturating_sub(1));
            me.data = match end_rel {
                // Relative numbers beyond 1 GiB mean the inference failed;
                // fall back to counting lengths.
                Some(e) if e < 1 << 30 => me.data.max(e),
                _ => me.data.saturating_add(p.len),
            };
            if f.urg() {
                me.urgent = true;
            }
            if peer_fin.is_some() && me.data_after_peer_fin.is_none() {
                me.data_after_peer_fin = Some(r.clone());
            }
        }
        if peer_zero && !f.rst() && !f.syn() {
            me.probes = me.probes.saturating_add(1);
        }
        if peer_fin.is_some() {
            me.after_peer_fin = me.after_peer_fin.saturating_add(1);
            me.after_peer_fin_ack |= f.ack();
        }
        if f.fin() {
            me.fin_count = me.fin_count.saturating_add(1);
            me.last_fin_pos = Some(r.pos);
            match &me.fin {
                None => me.fin = Some(r.clone()),
                Some(first) => {
                    if me.fin_acked_by_peer.is_some() && r.seq == first.seq {
                        me.fin_rexmit_after_ack = true;
                    }
                }
            }
        }
        if f.rst() && me.rst.is_none() {
            me.rst = Some(r.clone());
        }
        if !f.rst() {
            me.last_ack_win = r.ack.zip(p.win);
        }
        if !f.rst() {
            if let Some(ak) = r.ack {
                me.max_ack = Some(me.max_ack.map_or(ak, |m| m.max(ak)));
            }
            if p.win.is_some() && !f.syn() {
                me.last_win = p.win;
            }
            if p.win == Some(0) && !f.syn() && me.zero_win.is_none() {
                me.zero_win = Some(r.clone());
            }
        }
        if me.recent.len() == RECENT {
            me.recent.pop_front();
        }
        me.recent.push_back(r.clone());
    }

    /// The side that opened the connection when known, else the first
    /// sender: the explanation's `a`.
    pub fn a_side(&self) -> usize {
        self.opened_by().unwrap_or(0)
    }

    /// The side that opened: it sent the SYN, or was sent the SYN-ACK.
    pub fn opened_by(&self) -> Option<usize> {
        self.opener.or(self.synack_from.map(|s| 1 - s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::IpInfo;

    fn pkt(src: &str, dst: &str, flags: u8, seq: u32, ack: u32, len: u32) -> Packet {
        Packet {
            index: 0,
            line: None,
            time_ns: None,
            time_text: String::new(),
            src: src.into(),
            dst: dst.into(),
            flags: Flags(flags),
            seq: Some(seq),
            ack: Some(ack),
            win: Some(100),
            len,
            absolute: true,
            ip: IpInfo::default(),
            options: TcpOptions::default(),
            rst_payload: None,
        }
    }

    #[test]
    fn a_data_segment_past_the_seen_end_is_a_hole() {
        let (syn, ack, psh) = (0x02, 0x10, 0x18);
        let mut c = ConnFacts::new(1, &pkt("a.1", "b.2", syn, 1000, 0, 0));
        for p in [
            pkt("a.1", "b.2", syn, 1000, 0, 0),
            pkt("b.2", "a.1", syn | ack, 5000, 1001, 0),
            pkt("a.1", "b.2", psh, 1001, 5001, 10),
            // 1011..1021 missing
            pkt("a.1", "b.2", psh, 1021, 5001, 10),
        ] {
            c.push(&p);
        }
        let a = &c.sides[0];
        assert_eq!((a.data, a.holes, a.hole_bytes), (30, 1, 10));
        assert_eq!(c.opener, Some(0));
    }

    #[test]
    fn the_ack_of_a_fin_is_found_as_it_arrives() {
        let (syn, ack, fin) = (0x02, 0x10, 0x01);
        let mut c = ConnFacts::new(1, &pkt("a.1", "b.2", syn, 0, 0, 0));
        for p in [
            pkt("a.1", "b.2", syn, 0, 0, 0),
            pkt("b.2", "a.1", syn | ack, 0, 1, 0),
            pkt("a.1", "b.2", ack, 1, 1, 0),
            pkt("a.1", "b.2", fin | ack, 1, 1, 0),
            pkt("b.2", "a.1", ack, 1, 1, 0),
            pkt("b.2", "a.1", ack, 1, 2, 0),
        ] {
            c.push(&p);
        }
        assert_eq!(
            c.sides[0].fin_acked_by_peer.as_ref().map(|s| s.pos),
            Some(5)
        );
        assert_eq!(c.sides[1].after_peer_fin, 2);
    }
}
