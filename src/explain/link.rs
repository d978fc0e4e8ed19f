//! From a captured frame to a TCP segment: strips the link-layer header
//! (raw IP, Ethernet with VLAN/QinQ tags, Linux cooked SLL/SLL2, BSD
//! NULL/LOOP, NFLOG), walks whatever encapsulation follows (MPLS label
//! stacks, PPPoE sessions, GRE with ERSPAN II/III or transparent Ethernet,
//! IP-in-IP, 6in4), and decodes IPv4 or IPv6 (extension headers included)
//! and TCP, options and an RST's payload head included.
//!
//! The walk is a loop over layers, never recursion: a frame may nest at
//! most [`MAX_LAYERS`] headers, IPv6 may chain at most [`MAX_EXT`]
//! extension headers, and an MPLS stack may hold at most [`MAX_LABELS`]
//! labels; past a bound the frame is skipped with a reason. Every read is
//! bounds-checked: a frame that is not TCP gives a reason, never a panic.

use super::{IpInfo, Packet, RST_PAYLOAD_KEEP, TcpOptions};
use crate::segment::Flags;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// Why a fragment was skipped: its TCP header (or its data) is split over
/// several IP packets, and counting one as a segment would misread it.
pub const FRAGMENT: &str = "IPv4 fragments are not reassembled";

/// [`FRAGMENT`] for IPv6's Fragment extension header (RFC 8200 4.5).
pub const FRAGMENT6: &str = "IPv6 fragments are not reassembled";

/// Headers one frame may nest (link, tags, labels stack, IP, GRE, ERSPAN,
/// inner Ethernet, ...). The deepest real stacks seen (ERSPAN of a QinQ
/// frame inside QinQ) stay well below it.
pub const MAX_LAYERS: usize = 16;

/// IPv6 extension headers walked in one IPv6 header chain. RFC 8200 4.1
/// allows each kind once (destination options twice): more is junk.
pub const MAX_EXT: usize = 8;

/// Labels in one MPLS stack (RFC 3032 sets no limit; real stacks hold a
/// few).
pub const MAX_LABELS: usize = 32;

/// The name tcpdump gives a link type (`DLT_` without the prefix).
pub fn link_name(link: u32) -> String {
    match link {
        0 => "NULL".into(),
        1 => "EN10MB".into(),
        9 => "PPP".into(),
        12 | 14 | 101 => "RAW".into(),
        108 => "LOOP".into(),
        113 => "LINUX_SLL".into(),
        228 => "IPV4".into(),
        229 => "IPV6".into(),
        239 => "NFLOG".into(),
        276 => "LINUX_SLL2".into(),
        x => format!("{x}"),
    }
}

/// What the bytes at the front of the walk are.
#[derive(Clone, Copy, Debug)]
enum Layer {
    /// An Ethernet header (destination, source, EtherType).
    Ethernet,
    /// What an EtherType (or Linux cooked protocol) names, at the front.
    EtherType(u16),
    /// PPP's protocol number was read; its payload is at the front.
    Ppp(u16),
    /// IP whose version is told by its first nibble.
    Ip,
    Ipv4,
    Ipv6,
    Mpls,
    Gre,
}

/// Decodes one captured frame of link type `link` into a segment: `Err`
/// says why it is not a TCP segment. `big` is the byte order of the file
/// (or pcapng section), which NFLOG's TLVs follow. `cut` is how many bytes
/// of the frame the capture dropped. The packet's place and time are the
/// caller's to fill in.
pub fn decode_frame(link: u32, big: bool, d: &[u8], cut: u32) -> Result<Packet, String> {
    let (mut layer, mut b) = link_layer(link, big, d)?;
    // Headers read so far. A step that reads no bytes only names what
    // follows (an EtherType, PPP's protocol, an IP version), and always
    // leads to one that does: counting the others bounds the loop.
    let mut depth = 0;
    loop {
        let before = b.len();
        let next = match layer {
            Layer::Ethernet => {
                let et = be16(b, 12).ok_or("Ethernet header cut short")?;
                (Layer::EtherType(et), &b[14..])
            }
            Layer::EtherType(et) => ether_type(et, b)?,
            Layer::Ppp(p) => match p {
                0x0021 => (Layer::Ipv4, b),
                0x0057 => (Layer::Ipv6, b),
                p => return Err(format!("PPP protocol 0x{p:04x}, not IP")),
            },
            Layer::Ip => match b.first().map(|v| v >> 4) {
                Some(4) => (Layer::Ipv4, b),
                Some(6) => (Layer::Ipv6, b),
                Some(v) => return Err(format!("IP version {v}, not 4 or 6")),
                None => return Err("no IP header".into()),
            },
            Layer::Mpls => mpls(b)?,
            Layer::Gre => gre(b)?,
            Layer::Ipv4 => match ipv4(b, cut)? {
                Ip::Tcp(p) => return Ok(p),
                Ip::Inner(l, rest) => (l, rest),
            },
            Layer::Ipv6 => match ipv6(b, cut)? {
                Ip::Tcp(p) => return Ok(p),
                Ip::Inner(l, rest) => (l, rest),
            },
        };
        (layer, b) = next;
        if b.len() < before {
            depth += 1;
            if depth >= MAX_LAYERS {
                return Err(format!("more than {MAX_LAYERS} nested headers"));
            }
        }
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|x| u16::from_be_bytes([x[0], x[1]]))
}

/// The first layer after the link-layer header.
fn link_layer(link: u32, big: bool, d: &[u8]) -> Result<(Layer, &[u8]), String> {
    Ok(match link {
        12 | 14 | 101 => (Layer::Ip, d),
        228 => (Layer::Ipv4, d),
        229 => (Layer::Ipv6, d),
        1 => (Layer::Ethernet, d),
        // PPP in HDLC-like framing may keep its address and control bytes
        // (0xff 0x03) before the protocol (RFC 1662).
        9 => {
            let d = d.strip_prefix(&[0xff, 0x03]).unwrap_or(d);
            let p = be16(d, 0).ok_or("PPP header cut short")?;
            (Layer::Ppp(p), &d[2..])
        }
        113 => {
            let p = be16(d, 14).ok_or("LINUX_SLL header cut short")?;
            (Layer::EtherType(p), &d[16..])
        }
        276 => {
            let p = be16(d, 0).ok_or("LINUX_SLL2 header cut short")?;
            let rest = d.get(20..).ok_or("LINUX_SLL2 header cut short")?;
            (Layer::EtherType(p), rest)
        }
        0 | 108 => {
            let head: [u8; 4] = d
                .get(..4)
                .and_then(|h| h.try_into().ok())
                .ok_or("loopback header cut short")?;
            // NULL holds the address family in the byte order of the host
            // that wrote it, which need not be the file's (a capture can be
            // rewritten on another machine); LOOP is meant to be in network
            // order, but is taken the same way in case a writer got it
            // wrong. An address family is a small number, and byte-swapped
            // it is a large one, so trying both orders is unambiguous.
            let fams = [u32::from_le_bytes(head), u32::from_be_bytes(head)];
            if fams.contains(&AF_INET) {
                (Layer::Ipv4, &d[4..])
            } else if fams.iter().any(|f| AF_INET6.contains(f)) {
                (Layer::Ipv6, &d[4..])
            } else {
                let fam = fams[0].min(fams[1]);
                return Err(format!("address family {fam}, not AF_INET or AF_INET6"));
            }
        }
        239 => nflog(big, d)?,
        x => return Err(format!("link type {} is not supported", link_name(x))),
    })
}

/// `AF_INET` on every BSD, macOS and Linux.
const AF_INET: u32 = 2;
/// `AF_INET6` differs: 24 on NetBSD and OpenBSD, 28 on FreeBSD, 30 on
/// macOS (libpcap's `BSD_AFNUM_INET6_*`).
const AF_INET6: [u32; 3] = [24, 28, 30];

/// NFLOG (linktype 239): a 4-byte header (family, version, resource id),
/// then TLVs whose length and type are in the capturing host's byte order
/// (libpcap swaps them along with the file header), each padded to 4
/// bytes. The packet is the value of `NFULA_PAYLOAD` (type 9).
fn nflog(big: bool, d: &[u8]) -> Result<(Layer, &[u8]), String> {
    const NFULA_PAYLOAD: u16 = 9;
    let family = *d.first().ok_or("NFLOG header cut short")?;
    let mut at = 4;
    let host16 = |at: usize| -> Option<u16> {
        let x = d.get(at..at + 2)?;
        let x = [x[0], x[1]];
        Some(if big {
            u16::from_be_bytes(x)
        } else {
            u16::from_le_bytes(x)
        })
    };
    // Each TLV is at least 4 bytes: the loop ends within the frame.
    while at < d.len() {
        let (Some(len), Some(kind)) = (host16(at), host16(at + 2)) else {
            return Err("NFLOG TLV cut short".into());
        };
        let len = usize::from(len);
        if len < 4 {
            return Err(format!("NFLOG TLV of length {len}"));
        }
        // The top two bits of the type are netlink's nested and
        // byte-order flags (`NLA_TYPE_MASK`).
        if kind & 0x3fff == NFULA_PAYLOAD {
            let v = d.get(at + 4..(at + len).min(d.len())).unwrap_or(&[]);
            let layer = match family {
                2 => Layer::Ipv4,
                10 => Layer::Ipv6,
                _ => Layer::Ip,
            };
            return Ok((layer, v));
        }
        at = at.saturating_add(len.next_multiple_of(4));
    }
    Err("NFLOG record without a packet (no NFULA_PAYLOAD)".into())
}

/// What follows an EtherType.
fn ether_type(et: u16, b: &[u8]) -> Result<(Layer, &[u8]), String> {
    Ok(match et {
        0x0800 => (Layer::Ipv4, b),
        0x86dd => (Layer::Ipv6, b),
        // 802.1Q, 802.1ad, and the pre-standard QinQ 0x9100: a 16-bit tag
        // control, then the next EtherType.
        0x8100 | 0x88a8 | 0x9100 => {
            let et = be16(b, 2).ok_or("VLAN tag cut short")?;
            (Layer::EtherType(et), &b[4..])
        }
        0x8847 | 0x8848 => (Layer::Mpls, b),
        // PPPoE session stage (RFC 2516 5): version/type, code, session
        // id, length, then the PPP protocol.
        0x8864 => {
            let p = be16(b, 6).ok_or("PPPoE header cut short")?;
            (Layer::Ppp(p), &b[8..])
        }
        0x8863 => return Err("PPPoE discovery, not a session packet".into()),
        et => return Err(format!("EtherType 0x{et:04x}, not IP")),
    })
}

/// An MPLS label stack (RFC 3032 2.1): 4-byte entries to the one with the
/// bottom-of-stack bit; what follows carries no type, so IP is told by
/// its version nibble, as tcpdump and Wireshark do.
fn mpls(mut b: &[u8]) -> Result<(Layer, &[u8]), String> {
    for _ in 0..MAX_LABELS {
        let e = b.get(..4).ok_or("MPLS label stack cut short")?;
        let bottom = e[2] & 1 == 1;
        b = &b[4..];
        if bottom {
            return match b.first().map(|v| v >> 4) {
                Some(4) => Ok((Layer::Ipv4, b)),
                Some(6) => Ok((Layer::Ipv6, b)),
                _ => Err("MPLS payload is not IP (a pseudowire?)".into()),
            };
        }
    }
    Err(format!("MPLS label stack deeper than {MAX_LABELS}"))
}

/// GRE (RFC 2784, with RFC 2890's key and sequence number), and the
/// ERSPAN headers that follow GRE for mirrored traffic.
fn gre(b: &[u8]) -> Result<(Layer, &[u8]), String> {
    let flags = be16(b, 0).ok_or("GRE header cut short")?;
    let proto = be16(b, 2).ok_or("GRE header cut short")?;
    if flags & 7 != 0 {
        return Err(format!("GRE version {} (PPTP?)", flags & 7));
    }
    if flags & 0x4000 != 0 {
        return Err("GRE with source routing (RFC 1701)".into());
    }
    let seq = flags & 0x1000 != 0;
    // Checksum (with its reserved half), key, sequence number.
    let len = 4
        + 4 * usize::from(flags & 0x8000 != 0)
        + 4 * usize::from(flags & 0x2000 != 0)
        + 4 * usize::from(seq);
    let b = b.get(len..).ok_or("GRE header cut short")?;
    Ok(match proto {
        0x0800 => (Layer::Ipv4, b),
        0x86dd => (Layer::Ipv6, b),
        0x6558 => (Layer::Ethernet, b),
        0x8847 | 0x8848 => (Layer::Mpls, b),
        // ERSPAN type II has an 8-byte header; type I (no sequence
        // number in GRE) has none.
        0x88be if seq => (
            Layer::Ethernet,
            b.get(8..).ok_or("ERSPAN II header cut short")?,
        ),
        0x88be => (Layer::Ethernet, b),
        // ERSPAN type III: 12 bytes, and 8 more of platform-specific
        // subheader when the O bit (the last bit) is set; the frame type
        // (FT, 5 bits of byte 10) is 0 for Ethernet.
        0x22eb => {
            let h = b.get(..12).ok_or("ERSPAN III header cut short")?;
            let ft = (h[10] >> 2) & 0x1f;
            let len = if h[11] & 1 == 1 { 20 } else { 12 };
            let rest = b.get(len..).ok_or("ERSPAN III header cut short")?;
            match ft {
                0 => (Layer::Ethernet, rest),
                ft => return Err(format!("ERSPAN III frame type {ft}, not Ethernet")),
            }
        }
        p => return Err(format!("GRE protocol 0x{p:04x}, not IP or Ethernet")),
    })
}

/// An IP header's outcome: the segment, or the next layer inside it.
enum Ip<'a> {
    Tcp(Packet),
    Inner(Layer, &'a [u8]),
}

/// What an IP protocol number leads to, other than TCP.
fn inner(proto: u8, payload: &[u8]) -> Result<Ip<'_>, String> {
    match proto {
        4 => Ok(Ip::Inner(Layer::Ipv4, payload)),
        41 => Ok(Ip::Inner(Layer::Ipv6, payload)),
        47 => Ok(Ip::Inner(Layer::Gre, payload)),
        p => Err(format!("IP protocol {p}, not TCP")),
    }
}

/// Decodes an IPv4 header. The payload length comes from the IP total
/// length, not from what was captured, so a short snap length (the seeds'
/// `capture size 96 bytes`) still gives the right length. `cut` is how
/// many bytes of the frame the capture dropped.
fn ipv4(b: &[u8], cut: u32) -> Result<Ip<'_>, String> {
    if b.len() < 20 {
        return Err("IPv4 header cut short".into());
    }
    if b[0] >> 4 != 4 {
        return Err(format!("IP version {} in an IPv4 place", b[0] >> 4));
    }
    let ihl = usize::from(b[0] & 0xf) * 4;
    if ihl < 20 {
        return Err(format!("IPv4 header length {ihl} is too small"));
    }
    // A fragment offset, or More Fragments on the first piece: the
    // segment is split over several packets.
    let frag = u16::from_be_bytes([b[6], b[7]]);
    if frag & 0x3fff != 0 {
        return Err(FRAGMENT.into());
    }
    let total = usize::from(u16::from_be_bytes([b[2], b[3]]));
    // A total length of 0 is what TSO captures show: trust the bytes.
    let total = if total == 0 {
        b.len() + cut as usize
    } else {
        total
    };
    let Some(payload) = b.get(ihl..) else {
        return Err("IPv4 header cut short".into());
    };
    // Ethernet pads short frames: what lies past the total length is not
    // the packet's.
    let payload = &payload[..payload.len().min(total.saturating_sub(ihl))];
    if b[9] != 6 {
        return inner(b[9], payload);
    }
    let ip = IpInfo {
        version: 4,
        ttl: Some(b[8]),
        id: Some(u16::from_be_bytes([b[4], b[5]])),
        df: Some(frag & 0x4000 != 0),
    };
    let src = dotted(&b[12..16]);
    let dst = dotted(&b[16..20]);
    tcp(payload, total.saturating_sub(ihl), ip, &src, &dst).map(Ip::Tcp)
}

/// Decodes an IPv6 header and its extension headers (RFC 8200 4), one
/// after another in a bounded loop.
fn ipv6(b: &[u8], cut: u32) -> Result<Ip<'_>, String> {
    if b.len() < 40 {
        return Err("IPv6 header cut short".into());
    }
    if b[0] >> 4 != 6 {
        return Err(format!("IP version {} in an IPv6 place", b[0] >> 4));
    }
    let plen = usize::from(u16::from_be_bytes([b[4], b[5]]));
    // 0 is a jumbogram (RFC 2675) or a TSO capture: trust the bytes.
    let plen = if plen == 0 {
        b.len() - 40 + cut as usize
    } else {
        plen
    };
    let mut next = b[6];
    let mut rest = &b[40..];
    rest = &rest[..rest.len().min(plen)];
    let mut left = plen;
    for _ in 0..=MAX_EXT {
        let hlen = match next {
            6 => {
                let ip = IpInfo {
                    version: 6,
                    ttl: Some(b[7]),
                    id: None,
                    df: None,
                };
                let src = ipv6_text(b[8..24].try_into().unwrap_or_default());
                let dst = ipv6_text(b[24..40].try_into().unwrap_or_default());
                return tcp(rest, left, ip, &src, &dst).map(Ip::Tcp);
            }
            // Hop-by-hop, routing, destination options: length in 8-byte
            // units past the first 8.
            0 | 43 | 60 => {
                let l = rest.get(1).ok_or("IPv6 extension header cut short")?;
                (usize::from(*l) + 1) * 8
            }
            44 => {
                let h = rest.get(..8).ok_or("IPv6 fragment header cut short")?;
                // Offset, or More Fragments: a piece of a larger packet.
                // Offset 0 without M is an atomic fragment (RFC 6946):
                // whole, read on.
                if u16::from_be_bytes([h[2], h[3]]) & 0xfff9 != 0 {
                    return Err(FRAGMENT6.into());
                }
                8
            }
            // AH (RFC 4302 2.2): length in 4-byte units, minus 2.
            51 => {
                let l = rest.get(1).ok_or("IPv6 AH header cut short")?;
                (usize::from(*l) + 2) * 4
            }
            50 => return Err("IPv6 ESP (encrypted)".into()),
            59 => return Err("IPv6 with no next header".into()),
            p => return inner(p, rest),
        };
        let h = rest.get(..hlen).ok_or("IPv6 extension header cut short")?;
        next = h[0];
        rest = &rest[hlen..];
        left = left.saturating_sub(hlen);
    }
    Err(format!("more than {MAX_EXT} IPv6 extension headers"))
}

/// Decodes a TCP header: `t` is what was captured of it (and of its data,
/// no further than the IP length says), `len` what the IP header says
/// the TCP header and data take.
fn tcp(t: &[u8], len: usize, ip: IpInfo, src: &str, dst: &str) -> Result<Packet, String> {
    if t.len() < 20 {
        return Err("TCP header cut short".into());
    }
    let be16 = |at: usize| u16::from_be_bytes([t[at], t[at + 1]]);
    let be32 = |at: usize| u32::from_be_bytes([t[at], t[at + 1], t[at + 2], t[at + 3]]);
    let off = usize::from(t[12] >> 4) * 4;
    if off < 20 {
        return Err(format!("TCP data offset {off} is too small"));
    }
    let flags = Flags(t[13]);
    let data_len = len.saturating_sub(off);
    let options = match t.get(20..off) {
        Some(o) => tcp_options(o),
        None => TcpOptions::default(),
    };
    let rst_payload = if flags.rst() && data_len > 0 {
        t.get(off..)
            .map(|d| &d[..d.len().min(data_len).min(RST_PAYLOAD_KEEP)])
            .filter(|d| !d.is_empty())
            .map(Box::from)
    } else {
        None
    };
    Ok(Packet {
        index: 0,
        line: None,
        time_ns: None,
        time_text: String::new(),
        src: endpoint(src, be16(0)),
        dst: endpoint(dst, be16(2)),
        flags,
        seq: Some(be32(4)),
        ack: if flags.ack() { Some(be32(8)) } else { None },
        win: Some(u32::from(be16(14))),
        len: u32::try_from(data_len).unwrap_or(u32::MAX),
        absolute: true,
        ip,
        options,
        rst_payload,
    })
}

/// The TCP options (RFC 9293 3.1) that matter here: MSS, window scale
/// (RFC 7323 2), SACK permitted (RFC 2018), timestamps (RFC 7323 3). A
/// malformed option (a length under 2, or past the header) ends the walk,
/// as `tcp_parse_options` does; what was read before it is kept.
pub fn tcp_options(o: &[u8]) -> TcpOptions {
    let mut r = TcpOptions {
        seen: true,
        ..TcpOptions::default()
    };
    let mut i = 0;
    // Each step moves at least one byte: the loop is bounded by 40 bytes.
    while let Some(&kind) = o.get(i) {
        match kind {
            0 => break,
            1 => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let Some(&len) = o.get(i + 1) else { break };
        let len = usize::from(len);
        let Some(v) = o.get(i + 2..i + len).filter(|_| len >= 2) else {
            break;
        };
        match (kind, v.len()) {
            (2, 2) => r.mss = Some(u16::from_be_bytes([v[0], v[1]])),
            (3, 1) => r.wscale = Some(v[0]),
            (4, 0) => r.sack_ok = true,
            (8, 8) => {
                r.ts = Some((
                    u32::from_be_bytes([v[0], v[1], v[2], v[3]]),
                    u32::from_be_bytes([v[4], v[5], v[6], v[7]]),
                ))
            }
            _ => {}
        }
        i += len;
    }
    r
}

/// An IPv6 address as tcpdump prints it (its `addrtostr6`, after BIND's
/// `inet_ntop6`): lower-case hex words, the longest run of two or more
/// zero words (the first on a tie) as `::`, and the last 32 bits in
/// dotted decimal when the address is IPv4-compatible (`::10.0.0.1`, the
/// zero run being exactly words 0-5) or IPv4-mapped (`::ffff:10.0.0.1`).
pub fn ipv6_text(a: [u8; 16]) -> String {
    let w: [u16; 8] = std::array::from_fn(|i| u16::from_be_bytes([a[2 * i], a[2 * i + 1]]));
    // The longest run of zero words.
    let (mut best, mut best_len) = (0, 0);
    let mut i = 0;
    while i < 8 {
        if w[i] == 0 {
            let start = i;
            while i < 8 && w[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                (best, best_len) = (start, i - start);
            }
        } else {
            i += 1;
        }
    }
    if best_len < 2 {
        best_len = 0;
    }
    let v4_tail = best == 0 && (best_len == 6 || (best_len == 5 && w[5] == 0xffff));
    let mut s = String::new();
    let mut i = 0;
    while i < 8 {
        if best_len > 0 && i == best {
            s.push_str("::");
            i += best_len;
            continue;
        }
        if i == 6 && v4_tail {
            if !s.ends_with(':') {
                s.push(':');
            }
            let _ = write!(s, "{}", Ipv4Addr::new(a[12], a[13], a[14], a[15]));
            break;
        }
        if !s.is_empty() && !s.ends_with(':') {
            s.push(':');
        }
        let _ = write!(s, "{:x}", w[i]);
        i += 1;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_read_as_tcpdump_prints_them() {
        let a = |s: &str| ipv6_text(s.parse::<std::net::Ipv6Addr>().unwrap().octets());
        // (address, tcpdump -n's text)
        for (addr, want) in [
            ("::1", "::1"),
            ("::", "::"),
            ("2001:db8::1", "2001:db8::1"),
            ("fe80::1:2:3:4", "fe80::1:2:3:4"),
            ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
            ("::10.0.0.1", "::10.0.0.1"),
            ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
            ("1:0:0:2:0:0:3:4", "1::2:0:0:3:4"),
            ("1:2:3:4:5:6:7:0", "1:2:3:4:5:6:7:0"),
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
            ("1::", "1::"),
        ] {
            assert_eq!(a(addr), want, "{addr}");
        }
    }

    #[test]
    fn options_stop_at_a_malformed_one_and_keep_what_came_before() {
        // mss 1460, sackOK, TS val 1 ecr 0, nop, wscale 7.
        let o = [
            2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ];
        let r = tcp_options(&o);
        assert_eq!(
            (r.seen, r.mss, r.sack_ok, r.ts, r.wscale),
            (true, Some(1460), true, Some((1, 0)), Some(7))
        );
        // A length of 0 or 1 would loop forever in a naive walk; one past
        // the end reads nothing more.
        for bad in [[2, 0, 3, 3], [2, 1, 3, 3], [3, 3, 7, 9]] {
            let mut o = vec![2, 4, 5, 180];
            o.extend_from_slice(&bad);
            let r = tcp_options(&o);
            assert_eq!(r.mss, Some(1460));
            assert_eq!(r.wscale, if bad[0] == 3 { Some(7) } else { None });
        }
        let r = tcp_options(&[8, 12, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(r.ts, None, "a length past the end is not read");
    }
}

/// Appends `v` in decimal. Addresses are written for every packet, and
/// `format!` through `Display` was a tenth of explain's time.
fn push_dec(s: &mut String, v: u32) {
    let mut buf = [0u8; 10];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for &c in &buf[i..] {
        s.push(char::from(c));
    }
}

/// `10.0.0.1` from four bytes, as `Ipv4Addr`'s `Display` writes it.
fn dotted(a: &[u8]) -> String {
    let mut s = String::with_capacity(15);
    for (i, &x) in a.iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        push_dec(&mut s, u32::from(x));
    }
    s
}

/// `host.port`, as tcpdump writes an endpoint.
fn endpoint(host: &str, port: u16) -> String {
    let mut s = String::with_capacity(host.len() + 6);
    s.push_str(host);
    s.push('.');
    push_dec(&mut s, u32::from(port));
    s
}

#[cfg(test)]
mod fast_text_tests {
    use super::*;

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for a in [
            [0, 0, 0, 0],
            [10, 0, 0, 1],
            [255, 255, 255, 255],
            [192, 168, 100, 9],
        ] {
            assert_eq!(dotted(&a), Ipv4Addr::from(a).to_string());
        }
        assert_eq!(endpoint("::1", 0), "::1.0");
        assert_eq!(endpoint("10.0.0.1", 65535), "10.0.0.1.65535");
    }
}
