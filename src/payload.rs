//! Payload bytes without copying them: a payload is a short list of
//! pieces, each either a stretch of the fixed `a..z` pattern a script's
//! `send N` writes, or a slice of a shared, reference-counted chunk (a
//! `send "text"`, or bytes an engine captured).
//!
//! Queues and segments carry payloads, so moving a gigabyte through the
//! model moves (offset, length) pairs; bytes are produced only where they
//! are shown (pcap files, `data "..."` previews, the urgent byte).

use std::fmt;
use std::sync::Arc;

const AZ: &[u8; 26] = b"abcdefghijklmnopqrstuvwxyz";

/// The pattern, 160 cycles of it (the bytes of a pattern are copied from
/// here in long stretches).
pub static PATTERN: [u8; 26 * 160] = {
    let mut t = [0u8; 26 * 160];
    let mut i = 0;
    while i < t.len() {
        t[i] = AZ[i % 26];
        i += 1;
    }
    t
};

/// One piece of a payload.
#[derive(Clone, PartialEq, Eq)]
pub enum Piece {
    /// `len` bytes of the `a..z` pattern, starting at letter `phase`.
    Pattern { phase: u8, len: u32 },
    /// `len` bytes of `data` from `off`.
    Bytes { data: Arc<[u8]>, off: u32, len: u32 },
}

impl Piece {
    fn len(&self) -> u32 {
        match self {
            Piece::Pattern { len, .. } | Piece::Bytes { len, .. } => *len,
        }
    }

    /// The part `[from, from + n)` of this piece.
    fn sub(&self, from: u32, n: u32) -> Piece {
        match self {
            Piece::Pattern { phase, .. } => Piece::Pattern {
                phase: ((*phase as u32 + from) % 26) as u8,
                len: n,
            },
            Piece::Bytes { data, off, .. } => Piece::Bytes {
                data: data.clone(),
                off: off + from,
                len: n,
            },
        }
    }

    /// Appends `other` to this piece if they are one contiguous stretch.
    fn try_join(&mut self, other: &Piece) -> bool {
        match (self, other) {
            (Piece::Pattern { phase, len }, Piece::Pattern { phase: p2, len: l2 }) => {
                if (*phase as u32 + *len) % 26 == *p2 as u32 {
                    *len += l2;
                    return true;
                }
                false
            }
            (
                Piece::Bytes { data, off, len },
                Piece::Bytes {
                    data: d2,
                    off: o2,
                    len: l2,
                },
            ) => {
                if Arc::ptr_eq(data, d2) && *off + *len == *o2 {
                    *len += l2;
                    return true;
                }
                false
            }
            _ => false,
        }
    }

    fn byte_at(&self, i: u32) -> u8 {
        match self {
            Piece::Pattern { phase, .. } => AZ[((*phase as u32 + i) % 26) as usize],
            Piece::Bytes { data, off, .. } => data[(off + i) as usize],
        }
    }

    /// The RFC 1071 sum of this piece's bytes placed at an even offset
    /// (`odd` false) or an odd one (see [`crate::segment::sum_be`]).
    fn sum_be(&self, odd: bool) -> u64 {
        match self {
            Piece::Pattern { phase, len } => {
                // A whole cycle of 26 letters puts the letters of one
                // parity of index at even offsets and the others at odd
                // ones (26 is even): a..y (even indexes) sum to 1417, b..z
                // to 1430.
                let (cycles, rem) = (*len / 26, *len % 26);
                let even_first = phase.is_multiple_of(2) != odd;
                let (hi, lo) = if even_first {
                    (1417, 1430)
                } else {
                    (1430, 1417)
                };
                let mut sum = cycles as u64 * ((hi << 8) + lo);
                for i in 0..rem {
                    let b = AZ[((*phase as u32 + i) % 26) as usize] as u64;
                    let at_odd = odd != (i % 2 == 1);
                    sum += if at_odd { b } else { b << 8 };
                }
                sum
            }
            Piece::Bytes { data, off, len } => {
                crate::segment::sum_be(&data[*off as usize..(*off + *len) as usize], odd)
            }
        }
    }

    fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Piece::Pattern { phase, len } => {
                // Stretches of a table of whole cycles: a few memcpys.
                let mut k = *phase as usize;
                let mut left = *len as usize;
                out.reserve(left);
                while left > 0 {
                    let n = (PATTERN.len() - 26).min(left);
                    out.extend_from_slice(&PATTERN[k..k + n]);
                    left -= n;
                    k = (k + n) % 26;
                }
            }
            Piece::Bytes { data, off, len } => {
                out.extend_from_slice(&data[*off as usize..(*off + *len) as usize])
            }
        }
    }
}

/// Payload bytes as pieces. Cloning is cheap (no byte is copied); the
/// pieces of a segment or an skb are usually one or two.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Payload {
    pieces: smallvec::SmallVec<[Piece; 2]>,
    len: u32,
}

impl Payload {
    /// No bytes.
    pub fn empty() -> Payload {
        Payload::default()
    }

    /// `len` bytes of the pattern starting at letter `phase` (0 = `a`).
    pub fn pattern(phase: u32, len: u32) -> Payload {
        let mut p = Payload::default();
        p.push(Piece::Pattern {
            phase: (phase % 26) as u8,
            len,
        });
        p
    }

    /// Shared bytes.
    pub fn shared(data: Arc<[u8]>) -> Payload {
        let len = data.len() as u32;
        let mut p = Payload::default();
        p.push(Piece::Bytes { data, off: 0, len });
        p
    }

    /// Owned bytes (an engine's capture).
    pub fn from_vec(v: Vec<u8>) -> Payload {
        Payload::shared(v.into())
    }

    fn push(&mut self, piece: Piece) {
        let n = piece.len();
        if n == 0 {
            return;
        }
        self.len += n;
        if let Some(last) = self.pieces.last_mut() {
            if last.try_join(&piece) {
                return;
            }
        }
        self.pieces.push(piece);
    }

    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends another payload.
    pub fn append(&mut self, other: &Payload) {
        for p in &other.pieces {
            self.push(p.clone());
        }
    }

    /// Bytes `[off, off + n)` (clamped to the payload).
    pub fn slice(&self, off: u32, n: u32) -> Payload {
        let mut out = Payload::default();
        let end = (off.saturating_add(n)).min(self.len);
        let mut pos = 0u32;
        for p in &self.pieces {
            let pl = p.len();
            let (a, b) = (pos, pos + pl);
            pos = b;
            if b <= off {
                continue;
            }
            if a >= end {
                break;
            }
            let from = off.max(a) - a;
            let to = end.min(b) - a;
            out.push(p.sub(from, to - from));
        }
        out
    }

    /// Removes and returns the bytes from `at` on.
    pub fn split_off(&mut self, at: u32) -> Payload {
        let tail = self.slice(at, self.len.saturating_sub(at));
        self.truncate(at);
        tail
    }

    /// Keeps only the first `n` bytes.
    pub fn truncate(&mut self, n: u32) {
        if n >= self.len {
            return;
        }
        *self = self.slice(0, n);
    }

    /// Drops the first `n` bytes.
    pub fn advance(&mut self, n: u32) {
        if n == 0 {
            return;
        }
        *self = self.slice(n, self.len.saturating_sub(n));
    }

    /// Byte `i`, if there is one.
    pub fn byte_at(&self, mut i: u32) -> Option<u8> {
        for p in &self.pieces {
            if i < p.len() {
                return Some(p.byte_at(i));
            }
            i -= p.len();
        }
        None
    }

    /// The bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len as usize);
        self.write_to(&mut v);
        v
    }

    /// Appends the bytes to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        for p in &self.pieces {
            p.write_to(out);
        }
    }

    /// The RFC 1071 sum (see [`crate::segment::sum_be`]) of the first `n`
    /// bytes, the first at an even offset: a pattern's without producing
    /// its bytes.
    pub fn sum_be(&self, n: u32) -> u64 {
        let mut sum = 0;
        let mut at = 0u32;
        for p in &self.pieces {
            if at >= n {
                break;
            }
            let k = p.len().min(n - at);
            let piece = if k < p.len() { p.sub(0, k) } else { p.clone() };
            sum += piece.sum_be(at % 2 == 1);
            at += k;
        }
        sum
    }

    /// The first `n` bytes (for previews).
    pub fn prefix(&self, n: u32) -> Vec<u8> {
        self.slice(0, n).to_vec()
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = String::from_utf8_lossy(&self.prefix(24)).to_string();
        write!(f, "Payload({} bytes, {:?}", self.len, shown)?;
        if self.len > 24 {
            f.write_str("...")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_slices_match_the_bytes() {
        let p = Payload::pattern(0, 100);
        let v = p.to_vec();
        assert_eq!(&v[..3], b"abc");
        assert_eq!(v[26], b'a');
        for (off, n) in [(0, 1), (5, 30), (25, 2), (99, 1), (40, 60)] {
            assert_eq!(
                p.slice(off, n).to_vec(),
                v[off as usize..(off + n) as usize]
            );
        }
        assert_eq!(p.slice(90, 50).len(), 10);
    }

    /// A pattern's sum, computed from its phase and length, is the sum of
    /// its bytes, at either parity and for any cut.
    #[test]
    fn pattern_sums_are_the_sums_of_their_bytes() {
        use crate::segment::fold;
        for phase in 0..26 {
            for len in [0, 1, 2, 3, 25, 26, 27, 51, 52, 53, 1000, 65495] {
                let p = Payload::pattern(phase, len);
                let v = p.to_vec();
                for odd in [false, true] {
                    assert_eq!(
                        fold(p.pieces.first().map_or(0, |x| x.sum_be(odd))),
                        fold(crate::segment::sum_be(&v, odd)),
                        "phase {phase} len {len} odd {odd}"
                    );
                }
                for n in [0, len.min(1), len / 2, len] {
                    assert_eq!(
                        fold(p.sum_be(n)),
                        fold(crate::segment::sum_be(&v[..n as usize], false))
                    );
                }
            }
        }
        let mut q = Payload::pattern(5, 3);
        q.append(&Payload::from_vec(vec![1, 2, 3, 250]));
        q.append(&Payload::pattern(9, 40));
        let v = q.to_vec();
        for n in 0..=q.len() {
            assert_eq!(
                fold(q.sum_be(n)),
                fold(crate::segment::sum_be(&v[..n as usize], false))
            );
        }
    }

    #[test]
    fn pieces_join_and_split() {
        let mut p = Payload::pattern(0, 10);
        p.append(&Payload::pattern(10, 16));
        assert_eq!(p.pieces.len(), 1, "contiguous pattern joins");
        p.append(&Payload::pattern(0, 5));
        assert_eq!(p.len(), 31);
        let mut q = p.clone();
        let tail = q.split_off(20);
        assert_eq!(q.len(), 20);
        assert_eq!(tail.len(), 11);
        let mut joined = q.clone();
        joined.append(&tail);
        assert_eq!(joined.to_vec(), p.to_vec());
        let b = Payload::from_vec(b"hello world".to_vec());
        let mut c = b.slice(0, 5);
        c.append(&b.slice(5, 6));
        assert_eq!(c.pieces.len(), 1, "contiguous slices of one chunk join");
        assert_eq!(c.to_vec(), b"hello world");
        assert_eq!(b.byte_at(4), Some(b'o'));
        let mut d = b.clone();
        d.advance(6);
        assert_eq!(d.to_vec(), b"world");
    }
}
