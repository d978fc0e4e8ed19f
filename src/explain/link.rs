//! From a captured frame to a TCP segment: strips the link-layer header
//! (raw IP, Ethernet with VLAN tags, Linux cooked SLL/SLL2, BSD NULL/LOOP)
//! and decodes the IPv4 and TCP headers. Every read is bounds-checked: a
//! frame that is not TCP over IPv4 gives a reason, never a panic.

use super::Packet;
use crate::segment::Flags;
use std::net::Ipv4Addr;

/// Why a packet was skipped when it was IPv6, whatever the link type said.
pub const IPV6: &str = "IPv6 (only IPv4 is explained)";

/// Why a fragment was skipped: its TCP header (or its data) is split over
/// several IP packets, and counting one as a segment would misread it.
pub const FRAGMENT: &str = "IPv4 fragments are not reassembled";

/// The name tcpdump gives a link type (`DLT_` without the prefix).
pub fn link_name(link: u32) -> String {
    match link {
        0 => "NULL".into(),
        1 => "EN10MB".into(),
        12 | 14 | 101 => "RAW".into(),
        108 => "LOOP".into(),
        113 => "LINUX_SLL".into(),
        228 => "IPV4".into(),
        276 => "LINUX_SLL2".into(),
        x => format!("{x}"),
    }
}

/// Strips the link-layer header; `Err` says why a packet is not IPv4.
pub fn decode_link(link: u32, d: &[u8]) -> Result<&[u8], String> {
    let be16 = |at: usize| d.get(at..at + 2).map(|x| u16::from_be_bytes([x[0], x[1]]));
    let ip = match link {
        12 | 14 | 101 | 228 => d,
        1 => {
            let mut off = 12;
            let mut et = be16(off).ok_or("Ethernet header cut short")?;
            // 802.1Q / 802.1ad tags: skip them to the inner EtherType.
            while et == 0x8100 || et == 0x88a8 {
                off += 4;
                et = be16(off).ok_or("VLAN tag cut short")?;
            }
            if et != 0x0800 {
                return Err(format!("EtherType 0x{et:04x}, not IPv4"));
            }
            d.get(off + 2..).unwrap_or(&[])
        }
        113 => {
            let p = be16(14).ok_or("LINUX_SLL header cut short")?;
            if p != 0x0800 {
                return Err(format!("protocol 0x{p:04x}, not IPv4"));
            }
            d.get(16..).unwrap_or(&[])
        }
        276 => {
            let p = be16(0).ok_or("LINUX_SLL2 header cut short")?;
            if p != 0x0800 {
                return Err(format!("protocol 0x{p:04x}, not IPv4"));
            }
            d.get(20..).unwrap_or(&[])
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
                &d[4..]
            } else if fams.iter().any(|f| AF_INET6.contains(f)) {
                return Err(IPV6.into());
            } else {
                let fam = fams[0].min(fams[1]);
                return Err(format!("address family {fam}, not AF_INET"));
            }
        }
        x => return Err(format!("link type {} is not supported", link_name(x))),
    };
    match ip.first().map(|v| v >> 4) {
        Some(4) => Ok(ip),
        Some(6) => Err(IPV6.into()),
        _ => Err("not an IP packet".into()),
    }
}

/// `AF_INET` on every BSD, macOS and Linux.
const AF_INET: u32 = 2;
/// `AF_INET6` differs: 24 on NetBSD and OpenBSD, 28 on FreeBSD, 30 on
/// macOS (libpcap's `BSD_AFNUM_INET6_*`).
const AF_INET6: [u32; 3] = [24, 28, 30];

/// Decodes the IPv4 and TCP headers. The payload length comes from the IP
/// total length, not from what was captured, so a short snap length (the
/// seeds' `capture size 96 bytes`) still gives the right length. `cut` is
/// how many bytes of the packet the capture dropped. The packet's place
/// and time are the caller's to fill in.
pub fn decode_ipv4_tcp(b: &[u8], cut: u32) -> Result<Packet, String> {
    if b.len() < 20 {
        return Err("IPv4 header cut short".into());
    }
    let ihl = usize::from(b[0] & 0xf) * 4;
    if b[9] != 6 {
        return Err(format!("IP protocol {}, not TCP", b[9]));
    }
    // A fragment offset, or More Fragments on the first piece: the
    // segment is split over several packets.
    if u16::from_be_bytes([b[6], b[7]]) & 0x3fff != 0 {
        return Err(FRAGMENT.into());
    }
    let total = usize::from(u16::from_be_bytes([b[2], b[3]]));
    // A total length of 0 is what TSO captures show: trust the bytes.
    let total = if total == 0 {
        b.len() + cut as usize
    } else {
        total
    };
    let t = b.get(ihl..).filter(|t| ihl >= 20 && t.len() >= 20);
    let Some(t) = t else {
        return Err("TCP header cut short".into());
    };
    let be16 = |at: usize| u16::from_be_bytes([t[at], t[at + 1]]);
    let be32 = |at: usize| u32::from_be_bytes([t[at], t[at + 1], t[at + 2], t[at + 3]]);
    let off = usize::from(t[12] >> 4) * 4;
    if off < 20 {
        return Err(format!("TCP data offset {off} is too small"));
    }
    let len = total.saturating_sub(ihl + off) as u32;
    let src = Ipv4Addr::new(b[12], b[13], b[14], b[15]);
    let dst = Ipv4Addr::new(b[16], b[17], b[18], b[19]);
    let flags = Flags(t[13]);
    Ok(Packet {
        index: 0,
        line: None,
        time_ns: None,
        time_text: String::new(),
        src: format!("{src}.{}", be16(0)),
        dst: format!("{dst}.{}", be16(2)),
        flags,
        seq: Some(be32(4)),
        ack: if flags.ack() { Some(be32(8)) } else { None },
        win: Some(u32::from(be16(14))),
        len,
        absolute: true,
        ip: Default::default(),
        options: Default::default(),
        rst_payload: None,
    })
}
