//! Reads binary captures: classic pcap (both byte orders, µs and ns
//! timestamps) and pcapng, with the link types people capture TCP on:
//! `RAW` (101, and 12/14/228), Ethernet (`EN10MB`, with VLAN tags),
//! `LINUX_SLL` (`tcpdump -i any`), `LINUX_SLL2`, `NULL` and `LOOP`
//! (BSD/macOS loopback, the address family in either byte order).
//!
//! Every read is bounds-checked: a truncated or corrupt file yields the
//! packets before the damage and a note saying where reading stopped;
//! nothing here panics on any input (a proptest feeds it random bytes).

use super::Packet;
use crate::segment::Flags;
use std::net::Ipv4Addr;

/// What a binary reader found: the TCP/IPv4 packets, and notes on what it
/// could not read.
pub struct Read {
    pub format: String,
    pub packets: Vec<Packet>,
    pub notes: Vec<String>,
}

/// True when the bytes start like a pcap or pcapng file.
pub fn is_binary_capture(b: &[u8]) -> bool {
    matches!(
        b.get(..4),
        Some([0xa1, 0xb2, 0xc3, 0xd4])
            | Some([0xd4, 0xc3, 0xb2, 0xa1])
            | Some([0xa1, 0xb2, 0x3c, 0x4d])
            | Some([0x4d, 0x3c, 0xb2, 0xa1])
            | Some([0x0a, 0x0d, 0x0d, 0x0a])
    )
}

#[derive(Clone, Copy)]
struct Endian {
    big: bool,
}

impl Endian {
    fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let x: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(if self.big {
            u16::from_be_bytes(x)
        } else {
            u16::from_le_bytes(x)
        })
    }
    fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let x: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if self.big {
            u32::from_be_bytes(x)
        } else {
            u32::from_le_bytes(x)
        })
    }
}

/// Reads a pcap or pcapng file.
pub fn read(b: &[u8]) -> Read {
    if b.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        read_pcapng(b)
    } else {
        read_pcap(b)
    }
}

fn read_pcap(b: &[u8]) -> Read {
    let mut r = Read {
        format: "pcap".into(),
        packets: Vec::new(),
        notes: Vec::new(),
    };
    let (e, nanos) = match b.get(..4) {
        Some([0xa1, 0xb2, 0xc3, 0xd4]) => (Endian { big: true }, false),
        Some([0xd4, 0xc3, 0xb2, 0xa1]) => (Endian { big: false }, false),
        Some([0xa1, 0xb2, 0x3c, 0x4d]) => (Endian { big: true }, true),
        Some([0x4d, 0x3c, 0xb2, 0xa1]) => (Endian { big: false }, true),
        _ => {
            r.notes
                .push("not a pcap file (unknown magic number)".into());
            return r;
        }
    };
    let Some(link) = e.u32(b, 20) else {
        r.notes
            .push("pcap truncated in its 24-byte file header: no packets".into());
        return r;
    };
    // The upper bits of the link-type field carry FCS information.
    let link = link & 0xffff;
    r.format = format!(
        "pcap ({}, {} timestamps, link type {})",
        if e.big { "big-endian" } else { "little-endian" },
        if nanos { "ns" } else { "µs" },
        link_name(link)
    );
    let mut at = 24;
    let mut n = 0usize;
    let mut skipped = Skipped::default();
    while at < b.len() {
        let (Some(sec), Some(frac), Some(incl), Some(orig)) = (
            e.u32(b, at),
            e.u32(b, at + 4),
            e.u32(b, at + 8),
            e.u32(b, at + 12),
        ) else {
            r.notes.push(format!(
                "pcap truncated after {n} packets (a record header is cut short)"
            ));
            break;
        };
        let start = at + 16;
        let Some(data) = start
            .checked_add(incl as usize)
            .and_then(|end| b.get(start..end))
        else {
            r.notes.push(format!(
                "pcap truncated after {n} packets (packet {} claims {incl} bytes, {} left)",
                n + 1,
                b.len().saturating_sub(start)
            ));
            break;
        };
        n += 1;
        let us = u64::from(sec) * 1_000_000
            + if nanos {
                u64::from(frac) / 1000
            } else {
                u64::from(frac)
            };
        match decode_link(link, data) {
            Ok(ip) => match decode_ipv4_tcp(ip, orig.saturating_sub(incl)) {
                Ok(mut p) => {
                    p.index = n;
                    p.time_us = Some(us);
                    p.time_text = crate::trace::fmt_time(us);
                    r.packets.push(p);
                }
                Err(why) => skipped.add(n, why),
            },
            Err(why) => skipped.add(n, why),
        }
        at = start + incl as usize;
    }
    skipped.report(&mut r.notes);
    r
}

fn read_pcapng(b: &[u8]) -> Read {
    let mut r = Read {
        format: "pcapng".into(),
        packets: Vec::new(),
        notes: Vec::new(),
    };
    let mut e = Endian { big: false };
    // Per interface of the current section: link type and the units per
    // second of its timestamps (if_tsresol; default µs).
    let mut ifaces: Vec<(u32, u64)> = Vec::new();
    let mut at = 0usize;
    let mut n = 0usize;
    let mut skipped = Skipped::default();
    let mut links = Vec::new();
    while at < b.len() {
        let Some(btype) = Endian { big: false }.u32(b, at) else {
            r.notes.push(format!("pcapng truncated after {n} packets"));
            break;
        };
        if btype == 0x0a0d_0d0a {
            // A section header: its byte-order magic sets the endianness.
            match b.get(at + 8..at + 12) {
                Some([0x1a, 0x2b, 0x3c, 0x4d]) => e = Endian { big: true },
                Some([0x4d, 0x3c, 0x2b, 0x1a]) => e = Endian { big: false },
                _ => {
                    r.notes.push(format!(
                        "pcapng section header at byte {at} is corrupt; stopped after {n} packets"
                    ));
                    break;
                }
            }
            ifaces.clear();
        }
        let btype = e.u32(b, at).unwrap_or(0);
        let Some(blen) = e.u32(b, at + 4).map(|x| x as usize) else {
            r.notes.push(format!("pcapng truncated after {n} packets"));
            break;
        };
        if blen < 12 || blen % 4 != 0 {
            r.notes.push(format!(
                "pcapng block at byte {at} has a bad length {blen}; stopped after {n} packets"
            ));
            break;
        }
        let Some(block) = at.checked_add(blen).and_then(|end| b.get(at..end)) else {
            r.notes.push(format!(
                "pcapng truncated after {n} packets (a block of {blen} bytes is cut short)"
            ));
            break;
        };
        let body = &block[8..blen - 4];
        match btype {
            // Interface description: link type, then options (if_tsresol = 9).
            1 => {
                let link = u32::from(e.u16(body, 0).unwrap_or(0));
                let mut res = 1_000_000u64;
                let mut o = 8;
                while let (Some(code), Some(olen)) = (e.u16(body, o), e.u16(body, o + 2)) {
                    if code == 0 {
                        break;
                    }
                    if code == 9
                        && let Some(&v) = body.get(o + 4)
                    {
                        res = if v & 0x80 != 0 {
                            1u64.checked_shl(u32::from(v & 0x7f)).unwrap_or(u64::MAX)
                        } else {
                            10u64.checked_pow(u32::from(v)).unwrap_or(u64::MAX)
                        };
                    }
                    o += 4 + usize::from(olen).div_ceil(4) * 4;
                }
                links.push(link_name(link));
                ifaces.push((link, res.max(1)));
            }
            // Enhanced packet: interface, 64-bit timestamp, lengths, data.
            6 | 2 => {
                n += 1;
                let (iface, ts_at, data_at) = if btype == 6 {
                    (e.u32(body, 0).map(|x| x as usize), 4, 20usize)
                } else {
                    (e.u16(body, 0).map(usize::from), 4, 20)
                };
                let (Some(iface), Some(hi), Some(lo), Some(cap), Some(orig)) = (
                    iface,
                    e.u32(body, ts_at),
                    e.u32(body, ts_at + 4),
                    e.u32(body, ts_at + 8),
                    e.u32(body, ts_at + 12),
                ) else {
                    skipped.add(n, "packet block too short".into());
                    at += blen;
                    continue;
                };
                let Some(&(link, res)) = ifaces.get(iface) else {
                    skipped.add(
                        n,
                        format!("names interface {iface}, which was not described"),
                    );
                    at += blen;
                    continue;
                };
                let Some(data) = body.get(data_at..data_at.saturating_add(cap as usize)) else {
                    skipped.add(n, "packet data runs past its block".into());
                    at += blen;
                    continue;
                };
                let ts = (u64::from(hi) << 32) | u64::from(lo);
                let us = (u128::from(ts) * 1_000_000 / u128::from(res)) as u64;
                push_packet(
                    &mut r,
                    &mut skipped,
                    n,
                    us,
                    link,
                    data,
                    orig.saturating_sub(cap),
                );
            }
            // Simple packet: interface 0, no timestamp.
            3 => {
                n += 1;
                let Some(&(link, _)) = ifaces.first() else {
                    skipped.add(n, "no interface described".into());
                    at += blen;
                    continue;
                };
                let orig = e.u32(body, 0).unwrap_or(0) as usize;
                let data = &body[4.min(body.len())..];
                let data = &data[..orig.min(data.len())];
                let cut = orig.saturating_sub(data.len()) as u32;
                push_packet(&mut r, &mut skipped, n, 0, link, data, cut);
            }
            _ => {}
        }
        at += blen;
    }
    links.dedup();
    r.format = format!("pcapng (link type {})", links.join(", "));
    skipped.report(&mut r.notes);
    r
}

#[allow(clippy::too_many_arguments)]
fn push_packet(
    r: &mut Read,
    skipped: &mut Skipped,
    n: usize,
    us: u64,
    link: u32,
    data: &[u8],
    cut: u32,
) {
    match decode_link(link, data).and_then(|ip| decode_ipv4_tcp(ip, cut)) {
        Ok(mut p) => {
            p.index = n;
            p.time_us = Some(us);
            p.time_text = crate::trace::fmt_time(us);
            r.packets.push(p);
        }
        Err(why) => skipped.add(n, why),
    }
}

/// Packets that were read but are not IPv4/TCP, grouped by reason.
#[derive(Default)]
struct Skipped {
    by_reason: Vec<(String, Vec<usize>)>,
}

impl Skipped {
    fn add(&mut self, n: usize, why: String) {
        match self.by_reason.iter_mut().find(|(w, _)| *w == why) {
            Some((_, v)) => v.push(n),
            None => self.by_reason.push((why, vec![n])),
        }
    }
    fn report(self, notes: &mut Vec<String>) {
        for (why, v) in self.by_reason {
            let list: Vec<String> = v.iter().take(5).map(|x| x.to_string()).collect();
            let more = if v.len() > 5 { ", ..." } else { "" };
            notes.push(format!(
                "{} packet{} skipped ({why}): #{}{more}",
                v.len(),
                if v.len() == 1 { "" } else { "s" },
                list.join(", #")
            ));
        }
    }
}

fn link_name(link: u32) -> String {
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
fn decode_link(link: u32, d: &[u8]) -> Result<&[u8], String> {
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

/// Why a packet was skipped when it was IPv6, whatever the link type said.
const IPV6: &str = "IPv6 (only IPv4 is explained)";

/// Why a fragment was skipped: its TCP header (or its data) is split over
/// several IP packets, and counting one as a segment would misread it.
const FRAGMENT: &str = "IPv4 fragments are not reassembled";

/// `AF_INET` on every BSD, macOS and Linux.
const AF_INET: u32 = 2;
/// `AF_INET6` differs: 24 on NetBSD and OpenBSD, 28 on FreeBSD, 30 on
/// macOS (libpcap's `BSD_AFNUM_INET6_*`).
const AF_INET6: [u32; 3] = [24, 28, 30];

/// Decodes the IPv4 and TCP headers. The payload length comes from the IP
/// total length, not from what was captured, so a short snap length (the
/// seeds' `capture size 96 bytes`) still gives the right length. `cut` is
/// how many bytes of the packet the capture dropped.
fn decode_ipv4_tcp(b: &[u8], cut: u32) -> Result<Packet, String> {
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
        time_us: None,
        time_text: String::new(),
        src: format!("{src}.{}", be16(0)),
        dst: format!("{dst}.{}", be16(2)),
        flags,
        seq: Some(be32(4)),
        ack: if flags.ack() { Some(be32(8)) } else { None },
        win: Some(u32::from(be16(14))),
        len,
        absolute: true,
    })
}
