//! The one segment type every engine converts into at its edge.
//!
//! The model builds [`Segment`]s directly; the linux and smoltcp engines
//! decode captured IPv4 bytes into them with [`Segment::decode_ipv4`]. Every
//! segment can be turned back into real IPv4/TCP bytes with valid checksums
//! ([`Segment::encode_ipv4`]), which is what the pcap writer stores, and is
//! printed by one function in tcpdump's style (the `Display` of
//! [`RelSegment`], its numbers relative to each side's ISN).

pub use crate::payload::Payload;
use crate::vocab::RstReason;
use serde::Serialize;
use std::borrow::Cow;
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// TCP header flags, as the bits of byte 13 of the header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Flags(pub u8);

impl Flags {
    pub const FIN: Flags = Flags(0x01);
    pub const SYN: Flags = Flags(0x02);
    pub const RST: Flags = Flags(0x04);
    pub const PSH: Flags = Flags(0x08);
    pub const ACK: Flags = Flags(0x10);
    pub const URG: Flags = Flags(0x20);
    pub const ECE: Flags = Flags(0x40);
    pub const CWR: Flags = Flags(0x80);

    pub fn has(self, f: Flags) -> bool {
        self.0 & f.0 == f.0
    }
    pub fn fin(self) -> bool {
        self.has(Self::FIN)
    }
    pub fn syn(self) -> bool {
        self.has(Self::SYN)
    }
    pub fn rst(self) -> bool {
        self.has(Self::RST)
    }
    pub fn ack(self) -> bool {
        self.has(Self::ACK)
    }
    pub fn psh(self) -> bool {
        self.has(Self::PSH)
    }
    pub fn urg(self) -> bool {
        self.has(Self::URG)
    }

    /// tcpdump's letters in tcpdump's order (`print-tcp.c`'s `tcp_flag_values`
    /// are printed F S R P then `.` for ACK, then U, E, W): `S`, `S.`, `P.`,
    /// `F.`, `R`, `R.`, `P.U`, and `.` for a bare ACK.
    pub fn tcpdump(self) -> String {
        self.text().as_str().to_string()
    }

    /// [`Flags::tcpdump`] without a heap allocation.
    pub fn text(self) -> FlagsText {
        let mut t = FlagsText {
            buf: [0; 8],
            len: 0,
        };
        for (f, c) in [
            (Self::FIN, b'F'),
            (Self::SYN, b'S'),
            (Self::RST, b'R'),
            (Self::PSH, b'P'),
            (Self::ACK, b'.'),
            (Self::URG, b'U'),
            (Self::ECE, b'E'),
            (Self::CWR, b'W'),
        ] {
            if self.has(f) {
                t.buf[t.len as usize] = c;
                t.len += 1;
            }
        }
        if t.len == 0 {
            t.buf[..4].copy_from_slice(b"none");
            t.len = 4;
        }
        t
    }

    /// Parses tcpdump's letters back (`R.`, `P.U`, `.`); `None` on anything
    /// else.
    pub fn from_tcpdump(text: &str) -> Option<Flags> {
        let mut f = 0u8;
        if text == "none" {
            return Some(Flags(0));
        }
        if text.is_empty() {
            return None;
        }
        for c in text.chars() {
            f |= match c {
                'F' => 0x01,
                'S' => 0x02,
                'R' => 0x04,
                'P' => 0x08,
                '.' => 0x10,
                'U' => 0x20,
                'E' => 0x40,
                'W' => 0x80,
                _ => return None,
            };
        }
        Some(Flags(f))
    }
}

/// tcpdump's letters for a set of flags, on the stack ([`Flags::text`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlagsText {
    buf: [u8; 8],
    len: u8,
}

impl FlagsText {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len as usize]).expect("ASCII letters")
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, o: Flags) -> Flags {
        Flags(self.0 | o.0)
    }
}

/// Writes into a fixed buffer; what does not fit is left out.
struct Cursor<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Cursor<'_> {
    fn extend_from_slice(&mut self, b: &[u8]) {
        let n = b.len().min(self.buf.len() - self.at);
        self.buf[self.at..self.at + n].copy_from_slice(&b[..n]);
        self.at += n;
    }
    fn push(&mut self, b: u8) {
        self.extend_from_slice(&[b]);
    }
}

/// One TCP option, in wire order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TcpOpt {
    Nop,
    Eol,
    Mss(u16),
    WScale(u8),
    SackPerm,
    Sack(Vec<(u32, u32)>),
    Timestamp { val: u32, ecr: u32 },
    Unknown { kind: u8, data: Vec<u8> },
}

impl TcpOpt {
    /// Writes the option at `at` in `buf` (a header's 60 bytes at most:
    /// what does not fit is left out) and returns the end.
    fn encode_at(&self, buf: &mut [u8], at: usize) -> usize {
        let mut out = Cursor { buf, at };
        self.encode(&mut out);
        out.at
    }

    fn encode(&self, out: &mut Cursor) {
        match self {
            TcpOpt::Nop => out.push(1),
            TcpOpt::Eol => out.push(0),
            TcpOpt::Mss(m) => {
                out.extend_from_slice(&[2, 4]);
                out.extend_from_slice(&m.to_be_bytes());
            }
            TcpOpt::WScale(w) => out.extend_from_slice(&[3, 3, *w]),
            TcpOpt::SackPerm => out.extend_from_slice(&[4, 2]),
            TcpOpt::Sack(blocks) => {
                out.extend_from_slice(&[5, 2 + 8 * blocks.len() as u8]);
                for (l, r) in blocks {
                    out.extend_from_slice(&l.to_be_bytes());
                    out.extend_from_slice(&r.to_be_bytes());
                }
            }
            TcpOpt::Timestamp { val, ecr } => {
                out.extend_from_slice(&[8, 10]);
                out.extend_from_slice(&val.to_be_bytes());
                out.extend_from_slice(&ecr.to_be_bytes());
            }
            TcpOpt::Unknown { kind, data } => {
                out.push(*kind);
                out.push(2 + data.len() as u8);
                out.extend_from_slice(data);
            }
        }
    }

    /// Parses the option bytes of a header; `Err` names what is malformed.
    pub fn parse_all(mut b: &[u8]) -> Result<Vec<TcpOpt>, String> {
        let mut v = Vec::new();
        while let Some(&kind) = b.first() {
            match kind {
                0 => {
                    v.push(TcpOpt::Eol);
                    break;
                }
                1 => {
                    v.push(TcpOpt::Nop);
                    b = &b[1..];
                    continue;
                }
                _ => {}
            }
            let len = *b.get(1).ok_or("option length missing")? as usize;
            if len < 2 || len > b.len() {
                return Err(format!("option {kind} has bad length {len}"));
            }
            let d = &b[2..len];
            let be32 = |x: &[u8]| u32::from_be_bytes([x[0], x[1], x[2], x[3]]);
            v.push(match (kind, d.len()) {
                (2, 2) => TcpOpt::Mss(u16::from_be_bytes([d[0], d[1]])),
                (3, 1) => TcpOpt::WScale(d[0]),
                (4, 0) => TcpOpt::SackPerm,
                (5, n) if n % 8 == 0 => {
                    TcpOpt::Sack(d.chunks(8).map(|c| (be32(c), be32(&c[4..]))).collect())
                }
                (8, 8) => TcpOpt::Timestamp {
                    val: be32(d),
                    ecr: be32(&d[4..]),
                },
                _ => TcpOpt::Unknown {
                    kind,
                    data: d.to_vec(),
                },
            });
            b = &b[len..];
        }
        Ok(v)
    }
}

/// Where the parts of an IPv4/TCP packet are, read from its fixed headers
/// only ([`Headers::parse`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Headers {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// The IPv4 header's length.
    pub ip_len: usize,
    /// The TCP header's length, options included.
    pub tcp_len: usize,
    /// Where the packet ends: its total length, or the bytes there are.
    pub total: usize,
    pub sport: u16,
    pub dport: u16,
    pub flags: Flags,
}

impl Headers {
    /// Checks the version, protocol and lengths. Errors say what was wrong
    /// with the bytes.
    pub fn parse(bytes: &[u8]) -> Result<Headers, String> {
        if bytes.len() < 20 {
            return Err("shorter than an IPv4 header".into());
        }
        if bytes[0] >> 4 != 4 {
            return Err(format!("IP version {} is not 4", bytes[0] >> 4));
        }
        if bytes[9] != 6 {
            return Err("not TCP".into());
        }
        let ip_len = (bytes[0] & 15) as usize * 4;
        let total = (u16::from_be_bytes([bytes[2], bytes[3]]) as usize).min(bytes.len());
        if ip_len < 20 || total < ip_len + 20 {
            return Err("truncated IPv4/TCP header".into());
        }
        let tb = &bytes[ip_len..total];
        let tcp_len = (tb[12] >> 4) as usize * 4;
        if tcp_len < 20 || tcp_len > tb.len() {
            return Err(format!("TCP data offset {tcp_len} out of range"));
        }
        let a = |i: usize| Ipv4Addr::new(bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]);
        Ok(Headers {
            src: a(12),
            dst: a(16),
            ip_len,
            tcp_len,
            total,
            sport: u16::from_be_bytes([tb[0], tb[1]]),
            dport: u16::from_be_bytes([tb[2], tb[3]]),
            flags: Flags(tb[13]),
        })
    }
}

/// A TCP segment as one engine saw it leave a host.
///
/// Sequence numbers are absolute here; [`crate::trace`] makes them relative
/// to each side's ISN for display, as tcpdump does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Virtual (model, smoltcp) or real (linux) time since the run began.
    pub time_us: u64,
    /// Host names from the script (shared: a segment is cheap to copy).
    pub src: Arc<str>,
    pub dst: Arc<str>,
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: Flags,
    pub win: u16,
    pub urg_ptr: u16,
    pub options: Vec<TcpOpt>,
    /// Payload length (a SYN or FIN is not counted, as on the wire).
    pub len: u32,
    /// The payload bytes, when the engine kept them (the model keeps them
    /// unless told not to, for the bulk benchmark), as ranges: no byte is
    /// copied until it is shown.
    pub payload: Option<Payload>,
    /// Why the sender sent it: the kernel path that built it (the model),
    /// or what the engine knows of it.
    pub why: Option<Cow<'static, str>>,
    /// For an RST: the kernel's reason (`enum sk_rst_reason`,
    /// include/net/rstreason.h), e.g. `TCP_ABORT_ON_CLOSE`.
    pub rst_reason: Option<RstReason>,
    /// A fault step removed it from the wire: it never arrived.
    pub lost: bool,
}

impl Segment {
    /// Encodes the segment as an IPv4 packet with a TCP header, options and
    /// payload, with valid IP and TCP checksums. A missing payload is written
    /// as zero bytes of the right length.
    pub fn encode_ipv4(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode_ipv4_prefix(usize::MAX, &mut v);
        v
    }

    /// Appends the first `max` bytes of [`Segment::encode_ipv4`]'s packet to
    /// `out` and returns the whole packet's length. The checksums are those
    /// of the whole packet; payload bytes past `max` are never produced (a
    /// pattern's checksum is computed from its length and phase), so a
    /// capture cut to its headers costs the headers only.
    pub fn encode_ipv4_prefix(&self, max: usize, out: &mut Vec<u8>) -> usize {
        let mut hdr = [0u8; 20 + 60];
        let mut ol = 20 + 20;
        for o in &self.options {
            ol = o.encode_at(&mut hdr, ol);
        }
        // Padded with zeros (EOL) to a multiple of 4.
        let opts_len = (ol - 40).div_ceil(4) * 4;
        let hl = 40 + opts_len;
        let tcp_len = 20 + opts_len + self.len as usize;
        let total = 20 + tcp_len;
        let t = &mut hdr[20..];
        t[0..2].copy_from_slice(&self.sport.to_be_bytes());
        t[2..4].copy_from_slice(&self.dport.to_be_bytes());
        t[4..8].copy_from_slice(&self.seq.to_be_bytes());
        t[8..12].copy_from_slice(&self.ack.to_be_bytes());
        t[12] = (((20 + opts_len) / 4) as u8) << 4;
        t[13] = self.flags.0;
        t[14..16].copy_from_slice(&self.win.to_be_bytes());
        t[18..20].copy_from_slice(&self.urg_ptr.to_be_bytes());
        // The TCP checksum: pseudo-header, header, payload (bytes past the
        // payload held are zeros and add nothing).
        let mut sum = sum_be(&self.src_addr.octets(), false)
            + sum_be(&self.dst_addr.octets(), false)
            + 6
            + tcp_len as u64
            + sum_be(&hdr[20..hl], false);
        if let Some(p) = &self.payload {
            sum += p.sum_be(self.len);
        }
        let c = !fold(sum);
        hdr[20 + 16..20 + 18].copy_from_slice(&c.to_be_bytes());
        let ip = &mut hdr[..20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        ip[6] = 0x40; // DF
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&self.src_addr.octets());
        ip[16..20].copy_from_slice(&self.dst_addr.octets());
        let c = !fold(sum_be(&hdr[..20], false));
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        let want = total.min(max);
        out.extend_from_slice(&hdr[..hl.min(want)]);
        if want > hl {
            let n = (want - hl) as u32;
            let start = out.len();
            if let Some(p) = &self.payload {
                p.slice(0, n).write_to(out);
            }
            out.resize(start + n as usize, 0);
        }
        total
    }

    /// Decodes an IPv4 packet carrying TCP. Host names are looked up by
    /// address with `name_of`. Errors say what was wrong with the bytes.
    pub fn decode_ipv4(
        bytes: &[u8],
        time_us: u64,
        name_of: &dyn Fn(Ipv4Addr) -> String,
    ) -> Result<Segment, String> {
        Segment::decode_ipv4_with(bytes, time_us, &|a| name_of(a).into(), true)
    }

    /// [`Segment::decode_ipv4`] with names already shared, and the payload
    /// bytes copied only when `keep_payload` (its length is kept anyway).
    pub fn decode_ipv4_with(
        bytes: &[u8],
        time_us: u64,
        name_of: &dyn Fn(Ipv4Addr) -> Arc<str>,
        keep_payload: bool,
    ) -> Result<Segment, String> {
        let h = Headers::parse(bytes)?;
        let tb = &bytes[h.ip_len..h.total];
        let options = TcpOpt::parse_all(&tb[20..h.tcp_len])?;
        let payload = &tb[h.tcp_len..];
        let be16 = |i: usize| u16::from_be_bytes([tb[i], tb[i + 1]]);
        let be32 = |i: usize| u32::from_be_bytes([tb[i], tb[i + 1], tb[i + 2], tb[i + 3]]);
        Ok(Segment {
            time_us,
            src: name_of(h.src),
            dst: name_of(h.dst),
            src_addr: h.src,
            dst_addr: h.dst,
            sport: be16(0),
            dport: be16(2),
            seq: be32(4),
            ack: be32(8),
            flags: Flags(tb[13]),
            win: be16(14),
            urg_ptr: be16(18),
            options,
            len: payload.len() as u32,
            payload: keep_payload.then(|| Payload::shared(payload.into())),
            why: None,
            rst_reason: None,
            lost: false,
        })
    }

    /// Verifies the IP and TCP checksums of encoded bytes (used by tests and
    /// the capture paths): each must be what [`Segment::encode_ipv4`] would
    /// compute over the same bytes.
    pub fn checksum_ok(bytes: &[u8]) -> bool {
        if bytes.len() < 20 {
            return false;
        }
        let hl = (bytes[0] & 15) as usize * 4;
        let total = (u16::from_be_bytes([bytes[2], bytes[3]]) as usize).min(bytes.len());
        if hl < 20 || total < hl + 20 {
            return false;
        }
        // Each sum includes the stored checksum word as one term: taken
        // out (adding its ones' complement), it is the sum the sender
        // complemented. Neither sum is ever 0 (version, protocol).
        let stored = |b: &[u8], i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let without = |sum: u64, c: u16| !fold(sum + (0xffff - c) as u64);
        let ip = &bytes[..hl];
        let ip_ok = without(sum_be(ip, false), stored(ip, 10)) == stored(ip, 10);
        let t = &bytes[hl..total];
        let sum = sum_be(&bytes[12..20], false) + 6 + t.len() as u64 + sum_be(t, false);
        ip_ok && without(sum, stored(t, 16)) == stored(t, 16)
    }

    /// The options as tcpdump prints them: `mss 65495,sackOK,TS val 1 ecr
    /// 0,nop,wscale 10`.
    pub fn options_text(&self, rel_sack: &dyn Fn(u32) -> u32) -> String {
        let mut v = Vec::new();
        self.write_options(rel_sack, &mut v);
        String::from_utf8(v).expect("options text is ASCII")
    }

    /// [`Segment::options_text`], appended to `out`.
    pub fn write_options(&self, rel_sack: impl Fn(u32) -> u32, out: &mut Vec<u8>) {
        for (i, o) in self.options.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match o {
                TcpOpt::Nop => out.extend_from_slice(b"nop"),
                TcpOpt::Eol => out.extend_from_slice(b"eol"),
                TcpOpt::Mss(m) => {
                    out.extend_from_slice(b"mss ");
                    push_num(out, *m);
                }
                TcpOpt::WScale(w) => {
                    out.extend_from_slice(b"wscale ");
                    push_num(out, *w);
                }
                TcpOpt::SackPerm => out.extend_from_slice(b"sackOK"),
                TcpOpt::Sack(b) => {
                    out.extend_from_slice(b"sack ");
                    push_num(out, b.len());
                    out.push(b' ');
                    for (l, r) in b {
                        out.push(b'{');
                        push_num(out, rel_sack(*l));
                        out.push(b':');
                        push_num(out, rel_sack(*r));
                        out.push(b'}');
                    }
                }
                TcpOpt::Timestamp { val, ecr } => {
                    out.extend_from_slice(b"TS val ");
                    push_num(out, *val);
                    out.extend_from_slice(b" ecr ");
                    push_num(out, *ecr);
                }
                TcpOpt::Unknown { kind, data } => {
                    out.extend_from_slice(b"opt-");
                    push_num(out, *kind);
                    out.push(b':');
                    for b in data {
                        const HEX: &[u8; 16] = b"0123456789abcdef";
                        out.push(HEX[(b >> 4) as usize]);
                        out.push(HEX[(b & 15) as usize]);
                    }
                }
            }
        }
    }

    /// How much sequence space the segment occupies (SYN and FIN count one).
    pub fn seq_len(&self) -> u32 {
        self.len + self.flags.syn() as u32 + self.flags.fin() as u32
    }

    /// The timestamp option's (val, ecr), if any.
    pub fn timestamp(&self) -> Option<(u32, u32)> {
        self.options.iter().find_map(|o| match o {
            TcpOpt::Timestamp { val, ecr } => Some((*val, *ecr)),
            _ => None,
        })
    }
}

/// The RFC 1071 sum of `b` read as big-endian 16-bit words, as a number
/// that folds ([`fold`]) to what the plain sum folds to (and is 0 only when
/// every byte is): sums of parts add up, and one fold at the end gives the
/// checksum. `odd` when `b` starts at an odd offset of the summed data (its
/// first byte is then a word's low byte).
///
/// The words are added in the machine's order (which the compiler
/// vectorises), and the folded sum swapped back: a
/// ones'-complement sum does not depend on byte order (RFC 1071 §2(B)).
pub fn sum_be(mut b: &[u8], odd: bool) -> u64 {
    let mut edges = 0u64;
    if odd && let Some((&first, rest)) = b.split_first() {
        edges += first as u64;
        b = rest;
    }
    if b.len() % 2 == 1 {
        edges += (b[b.len() - 1] as u64) << 8;
        b = &b[..b.len() - 1];
    }
    let mut native = 0u64;
    // 32 KiB blocks: a u32 holds the sum of 16 Ki words.
    for block in b.chunks(1 << 15) {
        let mut s = 0u32;
        let (quads, rest) = block.as_chunks::<4>();
        for q in quads {
            s += u16::from_ne_bytes([q[0], q[1]]) as u32;
            s += u16::from_ne_bytes([q[2], q[3]]) as u32;
        }
        for w in rest.as_chunks::<2>().0 {
            s += u16::from_ne_bytes(*w) as u32;
        }
        native += s as u64;
    }
    u16::from_be(fold(native)) as u64 + edges
}

/// Folds a [`sum_be`] into 16 bits with end-around carries.
pub fn fold(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum >> 16) + (sum & 0xffff);
    }
    sum as u16
}

/// Appends the decimal digits of `n`.
pub fn push_num<I: itoa::Integer>(out: &mut Vec<u8>, n: I) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// The numbers of one tcpdump line, and the names it prints (see
/// [`write_tcpdump_line`]).
#[derive(Clone, Copy, Debug)]
pub struct LineParts<'a> {
    pub src: &'a str,
    pub sport: u16,
    pub dst: &'a str,
    pub dport: u16,
    pub flags: &'a str,
    /// Relative, as every number below.
    pub seq: u32,
    pub ack: Option<u32>,
    pub win: u16,
    pub urg: Option<u16>,
    pub len: u32,
    /// tcpdump's text of the options (empty: none).
    pub options: &'a [u8],
}

/// Appends one line in tcpdump's style (without the timestamp):
/// `client.40000 > server.9999: Flags [R.], seq 1, ack 2, win 64, options
/// [nop,nop,TS val 7 ecr 5], length 0`. The one renderer of a segment:
/// [`RelSegment`]'s `Display` and the streamed trace both call it.
pub fn write_tcpdump_line(p: &LineParts, out: &mut Vec<u8>) {
    write_tcpdump_prefix(p.src, p.sport, p.dst, p.dport, out);
    write_tcpdump_rest(p, out);
}

/// The part of a tcpdump line that is the same for every segment of one
/// direction: `client.40000 > server.9999: Flags [`.
pub fn write_tcpdump_prefix(src: &str, sport: u16, dst: &str, dport: u16, out: &mut Vec<u8>) {
    out.extend_from_slice(src.as_bytes());
    out.push(b'.');
    push_num(out, sport);
    out.extend_from_slice(b" > ");
    out.extend_from_slice(dst.as_bytes());
    out.push(b'.');
    push_num(out, dport);
    out.extend_from_slice(b": Flags [");
}

/// The rest of a tcpdump line, after [`write_tcpdump_prefix`].
pub fn write_tcpdump_rest(p: &LineParts, out: &mut Vec<u8>) {
    out.extend_from_slice(p.flags.as_bytes());
    out.extend_from_slice(b"], ");
    // tcpdump prints `seq A:B` when the segment carries data (or SYN/FIN
    // with data), `seq A` otherwise; a bare ACK prints no seq at all.
    // print-tcp.c prints the sequence number only when the segment has
    // data or a SYN, FIN or RST.
    let shows_seq = p.len > 0 || p.flags.contains(['S', 'F', 'R']);
    if shows_seq {
        out.extend_from_slice(b"seq ");
        push_num(out, p.seq);
        if p.len > 0 {
            out.push(b':');
            push_num(out, p.seq.wrapping_add(p.len));
        }
        out.extend_from_slice(b", ");
    }
    if let Some(a) = p.ack {
        out.extend_from_slice(b"ack ");
        push_num(out, a);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(b"win ");
    push_num(out, p.win);
    out.extend_from_slice(b", ");
    if let Some(u) = p.urg {
        out.extend_from_slice(b"urg ");
        push_num(out, u);
        out.extend_from_slice(b", ");
    }
    if !p.options.is_empty() {
        out.extend_from_slice(b"options [");
        out.extend_from_slice(p.options);
        out.extend_from_slice(b"], ");
    }
    out.extend_from_slice(b"length ");
    push_num(out, p.len);
}

/// A segment with relative sequence numbers, ready to print or serialise.
/// `seq` is relative to the sender's ISN, `ack` to the receiver's (SYN = 0).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RelSegment {
    pub time_us: u64,
    pub src: String,
    pub dst: String,
    pub sport: u16,
    pub dport: u16,
    pub flags: String,
    pub seq: u32,
    pub ack: Option<u32>,
    pub win: u16,
    pub len: u32,
    pub urg: Option<u16>,
    pub options: String,
    pub why: Option<String>,
    /// The kernel's name for an RST's reason (`sk_rst_reason`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rst_reason: Option<RstReason>,
    pub lost: bool,
}

impl fmt::Display for RelSegment {
    /// One line in tcpdump's style (without the timestamp):
    /// `client.40000 > server.9999: Flags [R.], seq 1, ack 2, win 64, options
    /// [nop,nop,TS val 7 ecr 5], length 0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = Vec::with_capacity(160);
        write_tcpdump_line(
            &LineParts {
                src: &self.src,
                sport: self.sport,
                dst: &self.dst,
                dport: self.dport,
                flags: &self.flags,
                seq: self.seq,
                ack: self.ack,
                win: self.win,
                urg: self.urg,
                len: self.len,
                options: self.options.as_bytes(),
            },
            &mut v,
        );
        f.write_str(std::str::from_utf8(&v).map_err(|_| fmt::Error)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Segment {
        Segment {
            time_us: 5,
            src: "client".into(),
            dst: "server".into(),
            src_addr: Ipv4Addr::new(10, 0, 0, 1),
            dst_addr: Ipv4Addr::new(10, 0, 0, 2),
            sport: 40000,
            dport: 9999,
            seq: 1000,
            ack: 2000,
            flags: Flags::PSH | Flags::ACK,
            win: 64,
            urg_ptr: 0,
            options: vec![
                TcpOpt::Nop,
                TcpOpt::Nop,
                TcpOpt::Timestamp { val: 7, ecr: 9 },
            ],
            len: 3,
            payload: Some(Payload::from_vec(b"abc".to_vec())),
            why: None,
            rst_reason: None,
            lost: false,
        }
    }

    #[test]
    fn encode_decode_round_trip_with_valid_checksums() {
        let s = sample();
        let bytes = s.encode_ipv4();
        assert!(Segment::checksum_ok(&bytes));
        let names = |a: Ipv4Addr| {
            if a.octets()[3] == 1 {
                "client".to_string()
            } else {
                "server".to_string()
            }
        };
        let d = Segment::decode_ipv4(&bytes, 5, &names).unwrap();
        assert_eq!(d, s);
    }

    /// The encoder's checksums are the ones pnet computes over the same
    /// bytes, for payloads of every phase and parity, in pieces or not,
    /// held or missing; and a prefix is a prefix of the whole packet.
    #[test]
    fn encoding_agrees_with_pnet_and_cuts_anywhere() {
        use pnet_packet::Packet as _;
        use pnet_packet::ipv4::{self, Ipv4Packet};
        use pnet_packet::tcp::{self, TcpPacket};
        let mut payloads: Vec<Option<Payload>> = vec![None];
        for phase in [0, 1, 7, 25] {
            for len in [0, 1, 2, 25, 26, 27, 53, 1000, 65000] {
                payloads.push(Some(Payload::pattern(phase, len)));
            }
        }
        let mut mixed = Payload::pattern(3, 5);
        mixed.append(&Payload::from_vec(b"xyz\xff\x00\x80".to_vec()));
        mixed.append(&Payload::pattern(0, 31));
        payloads.push(Some(mixed.clone()));
        payloads.push(Some(Payload::from_vec(vec![0xff; 4097])));
        let options = [
            vec![],
            vec![TcpOpt::WScale(7)],
            vec![
                TcpOpt::Mss(65495),
                TcpOpt::SackPerm,
                TcpOpt::Timestamp { val: 1, ecr: 0 },
                TcpOpt::Nop,
                TcpOpt::WScale(10),
            ],
            vec![TcpOpt::Nop, TcpOpt::Nop, TcpOpt::Sack(vec![(1, 2), (3, 4)])],
        ];
        for p in &payloads {
            for o in &options {
                let mut s = sample();
                s.options = o.clone();
                s.len = p.as_ref().map_or(300, |p| p.len());
                s.payload = p.clone();
                let full = s.encode_ipv4();
                let ip = Ipv4Packet::new(&full).unwrap();
                assert_eq!(ipv4::checksum(&ip), ip.get_checksum());
                let t = TcpPacket::new(&full[20..]).unwrap();
                assert_eq!(
                    tcp::ipv4_checksum(&t, &s.src_addr, &s.dst_addr),
                    t.get_checksum(),
                    "{p:?} {o:?}"
                );
                let held = p.as_ref().map_or(vec![0; 300], |p| p.to_vec());
                assert_eq!(t.payload(), &held[..]);
                assert!(Segment::checksum_ok(&full), "{p:?} {o:?} {full:?}");
                let n = full.len();
                for max in [0, 1, 20, 39, 40, 41, 52, 60, 61, 80, n - 1, n, n + 5] {
                    let mut v = vec![9];
                    assert_eq!(s.encode_ipv4_prefix(max, &mut v), n);
                    assert_eq!(v[1..], full[..max.min(n)], "{p:?} cut at {max}");
                }
            }
        }
    }

    /// The vectorised sum folds to what the plain big-endian sum folds to,
    /// at any length and parity.
    #[test]
    fn sums_fold_like_the_plain_sum() {
        let bytes: Vec<u8> = (0..300u32).map(|i| (i * 37 + 11) as u8).collect();
        for len in 0..bytes.len() {
            for odd in [false, true] {
                let b = &bytes[..len];
                let mut plain = 0u64;
                for (i, &x) in b.iter().enumerate() {
                    let high = (i % 2 == 0) != odd;
                    plain += if high { (x as u64) << 8 } else { x as u64 };
                }
                assert_eq!(fold(sum_be(b, odd)), fold(plain), "{len} {odd}");
                assert_eq!(sum_be(b, odd) == 0, plain == 0);
            }
        }
        assert_eq!(sum_be(&[0; 100], false), 0);
    }

    #[test]
    fn corrupt_bytes_fail_the_checksum() {
        let mut bytes = sample().encode_ipv4();
        let n = bytes.len();
        bytes[n - 1] ^= 0xff;
        assert!(!Segment::checksum_ok(&bytes));
    }

    #[test]
    fn flags_in_tcpdump_order() {
        assert_eq!((Flags::RST | Flags::ACK).tcpdump(), "R.");
        assert_eq!((Flags::PSH | Flags::ACK | Flags::URG).tcpdump(), "P.U");
        assert_eq!((Flags::SYN | Flags::ACK).tcpdump(), "S.");
        assert_eq!((Flags::FIN | Flags::PSH | Flags::ACK).tcpdump(), "FP.");
        for s in ["S", "S.", "P.", "F.", "R", "R.", "P.U", "."] {
            assert_eq!(Flags::from_tcpdump(s).unwrap().tcpdump(), s);
        }
        assert_eq!(Flags::from_tcpdump("X"), None);
    }
}
