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
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv4::{self, Ipv4Packet, MutableIpv4Packet};
use pnet_packet::tcp::{self, MutableTcpPacket, TcpPacket};
use serde::Serialize;
use std::borrow::Cow;
use std::fmt::{self, Write as _};
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
        let mut s = String::new();
        if self.fin() {
            s.push('F');
        }
        if self.syn() {
            s.push('S');
        }
        if self.rst() {
            s.push('R');
        }
        if self.psh() {
            s.push('P');
        }
        if self.ack() {
            s.push('.');
        }
        if self.urg() {
            s.push('U');
        }
        if self.has(Self::ECE) {
            s.push('E');
        }
        if self.has(Self::CWR) {
            s.push('W');
        }
        if s.is_empty() {
            s.push_str("none");
        }
        s
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

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, o: Flags) -> Flags {
        Flags(self.0 | o.0)
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
    fn encode(&self, out: &mut Vec<u8>) {
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
        let mut opts = Vec::new();
        for o in &self.options {
            o.encode(&mut opts);
        }
        while opts.len() % 4 != 0 {
            opts.push(0);
        }
        let tcp_len = 20 + opts.len() + self.len as usize;
        let total = 20 + tcp_len;
        let mut buf = vec![0u8; total];
        {
            let mut tcpbuf = vec![0u8; tcp_len];
            let mut t = MutableTcpPacket::new(&mut tcpbuf).expect("buffer sized for header");
            t.set_source(self.sport);
            t.set_destination(self.dport);
            t.set_sequence(self.seq);
            t.set_acknowledgement(self.ack);
            t.set_data_offset(((20 + opts.len()) / 4) as u8);
            t.set_flags(self.flags.0);
            t.set_window(self.win);
            t.set_urgent_ptr(self.urg_ptr);
            drop(t);
            tcpbuf[20..20 + opts.len()].copy_from_slice(&opts);
            if let Some(p) = &self.payload {
                let n = p.len().min(self.len) as usize;
                let mut bytes = Vec::with_capacity(n);
                p.slice(0, n as u32).write_to(&mut bytes);
                tcpbuf[20 + opts.len()..20 + opts.len() + n].copy_from_slice(&bytes);
            }
            let sum = {
                let t = TcpPacket::new(&tcpbuf).expect("sized");
                tcp::ipv4_checksum(&t, &self.src_addr, &self.dst_addr)
            };
            tcpbuf[16..18].copy_from_slice(&sum.to_be_bytes());
            buf[20..].copy_from_slice(&tcpbuf);
        }
        let mut ip = MutableIpv4Packet::new(&mut buf).expect("sized");
        ip.set_version(4);
        ip.set_header_length(5);
        ip.set_total_length(total as u16);
        ip.set_identification(0);
        ip.set_flags(ipv4::Ipv4Flags::DontFragment);
        ip.set_ttl(64);
        ip.set_next_level_protocol(IpNextHeaderProtocols::Tcp);
        ip.set_source(self.src_addr);
        ip.set_destination(self.dst_addr);
        let c = ipv4::checksum(&ip.to_immutable());
        ip.set_checksum(c);
        buf
    }

    /// Decodes an IPv4 packet carrying TCP. Host names are looked up by
    /// address with `name_of`. Errors say what was wrong with the bytes.
    pub fn decode_ipv4(
        bytes: &[u8],
        time_us: u64,
        name_of: &dyn Fn(Ipv4Addr) -> String,
    ) -> Result<Segment, String> {
        let ip = Ipv4Packet::new(bytes).ok_or("shorter than an IPv4 header")?;
        if ip.get_version() != 4 {
            return Err(format!("IP version {} is not 4", ip.get_version()));
        }
        if ip.get_next_level_protocol() != IpNextHeaderProtocols::Tcp {
            return Err("not TCP".into());
        }
        let hl = ip.get_header_length() as usize * 4;
        let total = (ip.get_total_length() as usize).min(bytes.len());
        if hl < 20 || total < hl + 20 {
            return Err("truncated IPv4/TCP header".into());
        }
        let tb = &bytes[hl..total];
        let t = TcpPacket::new(tb).ok_or("shorter than a TCP header")?;
        let off = t.get_data_offset() as usize * 4;
        if off < 20 || off > tb.len() {
            return Err(format!("TCP data offset {off} out of range"));
        }
        let options = TcpOpt::parse_all(&tb[20..off])?;
        let payload = tb[off..].to_vec();
        Ok(Segment {
            time_us,
            src: name_of(ip.get_source()).into(),
            dst: name_of(ip.get_destination()).into(),
            src_addr: ip.get_source(),
            dst_addr: ip.get_destination(),
            sport: t.get_source(),
            dport: t.get_destination(),
            seq: t.get_sequence(),
            ack: t.get_acknowledgement(),
            flags: Flags(t.get_flags()),
            win: t.get_window(),
            urg_ptr: t.get_urgent_ptr(),
            options,
            len: payload.len() as u32,
            payload: Some(Payload::from_vec(payload)),
            why: None,
            rst_reason: None,
            lost: false,
        })
    }

    /// Verifies the TCP checksum of encoded bytes (used by tests and the
    /// capture paths).
    pub fn checksum_ok(bytes: &[u8]) -> bool {
        let Some(ip) = Ipv4Packet::new(bytes) else {
            return false;
        };
        let hl = ip.get_header_length() as usize * 4;
        let total = (ip.get_total_length() as usize).min(bytes.len());
        if total < hl + 20 {
            return false;
        }
        let Some(t) = TcpPacket::new(&bytes[hl..total]) else {
            return false;
        };
        tcp::ipv4_checksum(&t, &ip.get_source(), &ip.get_destination()) == t.get_checksum()
            && ipv4::checksum(&ip) == ip.get_checksum()
    }

    /// The options as tcpdump prints them: `mss 65495,sackOK,TS val 1 ecr
    /// 0,nop,wscale 10`.
    pub fn options_text(&self, rel_sack: &dyn Fn(u32) -> u32) -> String {
        let mut s = String::new();
        for (i, o) in self.options.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            match o {
                TcpOpt::Nop => s.push_str("nop"),
                TcpOpt::Eol => s.push_str("eol"),
                TcpOpt::Mss(m) => {
                    let _ = write!(s, "mss {m}");
                }
                TcpOpt::WScale(w) => {
                    let _ = write!(s, "wscale {w}");
                }
                TcpOpt::SackPerm => s.push_str("sackOK"),
                TcpOpt::Sack(b) => {
                    let _ = write!(s, "sack {} ", b.len());
                    for (l, r) in b {
                        let _ = write!(s, "{{{}:{}}}", rel_sack(*l), rel_sack(*r));
                    }
                }
                TcpOpt::Timestamp { val, ecr } => {
                    let _ = write!(s, "TS val {val} ecr {ecr}");
                }
                TcpOpt::Unknown { kind, data } => {
                    let _ = write!(s, "opt-{kind}:{}", hex(data));
                }
            }
        }
        s
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

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
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
        write!(
            f,
            "{}.{} > {}.{}: Flags [{}], ",
            self.src, self.sport, self.dst, self.dport, self.flags
        )?;
        // tcpdump prints `seq A:B` when the segment carries data (or SYN/FIN
        // with data), `seq A` otherwise; a bare ACK prints no seq at all.
        // print-tcp.c prints the sequence number only when the segment has
        // data or a SYN, FIN or RST.
        let shows_seq = self.len > 0 || self.flags.contains(['S', 'F', 'R']);
        if shows_seq {
            if self.len > 0 {
                write!(f, "seq {}:{}, ", self.seq, self.seq.wrapping_add(self.len))?;
            } else {
                write!(f, "seq {}, ", self.seq)?;
            }
        }
        if let Some(a) = self.ack {
            write!(f, "ack {a}, ")?;
        }
        write!(f, "win {}, ", self.win)?;
        if let Some(u) = self.urg {
            write!(f, "urg {u}, ")?;
        }
        if !self.options.is_empty() {
            write!(f, "options [{}], ", self.options)?;
        }
        write!(f, "length {}", self.len)
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
