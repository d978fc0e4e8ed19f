//! The capture readers of `finrst explain`: every link type and
//! encapsulation they walk, built here byte by byte; the IP layer, TCP
//! options and RST payload they fill in; pcap and pcapng files around
//! them; tcpdump's `-v` and IPv6 text; proptests feeding them arbitrary
//! and mangled frames; and small captures of real programs over IPv6
//! loopback, made with tcpdump for this test (tests/fixtures/readers).

use finrst::explain::capture::Reader;
use finrst::explain::link::{FRAGMENT6, MAX_EXT, MAX_LAYERS, decode_frame};
use finrst::explain::{Cause, Packet, RST_PAYLOAD_KEEP, explain_bytes};
use proptest::prelude::*;

// ---- frame builders ----

const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// A TCP header from port 40000 to 443, seq 1000, ack 2000, window 512,
/// with `opts` (padded with NOPs to 4 bytes) and `data`.
fn tcp(flags: u8, opts: &[u8], data: &[u8]) -> Vec<u8> {
    let mut o = opts.to_vec();
    while !o.len().is_multiple_of(4) {
        o.push(1);
    }
    let off = 20 + o.len();
    let mut t = Vec::new();
    t.extend_from_slice(&40000u16.to_be_bytes());
    t.extend_from_slice(&443u16.to_be_bytes());
    t.extend_from_slice(&1000u32.to_be_bytes());
    t.extend_from_slice(&2000u32.to_be_bytes());
    t.push(((off / 4) as u8) << 4);
    t.push(flags);
    t.extend_from_slice(&512u16.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.extend_from_slice(&o);
    t.extend_from_slice(data);
    t
}

/// IPv4 from 10.0.0.1 to 10.0.0.2: TTL 61, ID 0x1234, DF.
fn ipv4(proto: u8, p: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&((20 + p.len()) as u16).to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34, 0x40, 0, 61, proto, 0, 0]);
    h.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    h.extend_from_slice(p);
    h
}

/// IPv6 from 2001:db8::1 to 2001:db8::2, hop limit 57; `p` starts with
/// whatever `next` names.
fn ipv6(next: u8, p: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0x01, 0x23, 0x45];
    h.extend_from_slice(&(p.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, 57]);
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    a[15] = 1;
    h.extend_from_slice(&a);
    a[15] = 2;
    h.extend_from_slice(&a);
    h.extend_from_slice(p);
    h
}

/// An IPv6 extension header of 8 * (units + 1) bytes (hop-by-hop,
/// routing, destination options) before `p`.
fn ext8(next: u8, units: u8, p: &[u8]) -> Vec<u8> {
    let mut h = vec![next, units];
    h.resize(8 * (usize::from(units) + 1), 0);
    h.extend_from_slice(p);
    h
}

/// A fragment header: `offset` in 8-byte units, `more` fragments.
fn frag6(next: u8, offset: u16, more: bool, p: &[u8]) -> Vec<u8> {
    let mut h = vec![next, 0];
    h.extend_from_slice(&((offset << 3) | u16::from(more)).to_be_bytes());
    h.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    h.extend_from_slice(p);
    h
}

fn eth(et: u16, p: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    f.extend_from_slice(&et.to_be_bytes());
    f.extend_from_slice(p);
    f
}

fn vlan(tpid: u16, vid: u16, et: u16, p: &[u8]) -> Vec<u8> {
    let mut f = tpid.to_be_bytes().to_vec();
    f.extend_from_slice(&vid.to_be_bytes());
    f.extend_from_slice(&et.to_be_bytes());
    f.extend_from_slice(p);
    f
}

/// GRE with `flags` (C, K, S bits), their fields zeroed, and `proto`.
fn gre(flags: u16, proto: u16, p: &[u8]) -> Vec<u8> {
    let mut g = flags.to_be_bytes().to_vec();
    g.extend_from_slice(&proto.to_be_bytes());
    let words = [0x8000u16, 0x2000, 0x1000]
        .iter()
        .filter(|&&b| flags & b != 0)
        .count();
    g.resize(4 + 4 * words, 0);
    g.extend_from_slice(p);
    g
}

/// MPLS label entries for `labels`, the last with bottom of stack.
fn mpls(labels: &[u32], p: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    for (i, l) in labels.iter().enumerate() {
        let s = u32::from(i + 1 == labels.len());
        m.extend_from_slice(&((l << 12) | (s << 8) | 64).to_be_bytes());
    }
    m.extend_from_slice(p);
    m
}

fn decode(link: u32, f: &[u8]) -> Result<Packet, String> {
    decode_frame(link, false, f, 0)
}

/// The segment `tcp(SYN, MSS)` inside IPv4 or IPv6 read right.
fn assert_v4(p: &Packet) {
    assert_eq!(
        (p.src.as_str(), p.dst.as_str()),
        ("10.0.0.1.40000", "10.0.0.2.443")
    );
    assert_eq!(
        (p.ip.version, p.ip.ttl, p.ip.id, p.ip.df),
        (4, Some(61), Some(0x1234), Some(true))
    );
    assert_eq!(
        (p.seq, p.ack, p.win, p.len),
        (Some(1000), None, Some(512), 0)
    );
}

fn assert_v6(p: &Packet) {
    assert_eq!(
        (p.src.as_str(), p.dst.as_str()),
        ("2001:db8::1.40000", "2001:db8::2.443")
    );
    assert_eq!(
        (p.ip.version, p.ip.ttl, p.ip.id, p.ip.df),
        (6, Some(57), None, None)
    );
    assert_eq!(
        (p.seq, p.ack, p.win, p.len),
        (Some(1000), None, Some(512), 0)
    );
    assert_eq!(p.options.mss, Some(1440));
}

const MSS1440: [u8; 4] = [2, 4, 0x05, 0xa0];

fn syn4() -> Vec<u8> {
    ipv4(6, &tcp(SYN, &MSS1440, &[]))
}

fn syn6() -> Vec<u8> {
    ipv6(6, &tcp(SYN, &MSS1440, &[]))
}

// ---- link types ----

#[test]
fn raw_ip_link_types_take_ipv4_and_ipv6() {
    for link in [12, 14, 101] {
        assert_v4(&decode(link, &syn4()).unwrap());
        assert_v6(&decode(link, &syn6()).unwrap());
    }
    assert_v4(&decode(228, &syn4()).unwrap());
    assert_v6(&decode(229, &syn6()).unwrap());
    // LINKTYPE_IPV4 holds IPv4 only, LINKTYPE_IPV6 IPv6 only.
    assert!(decode(228, &syn6()).is_err());
    assert!(decode(229, &syn4()).is_err());
}

#[test]
fn bsd_loopback_takes_every_af_inet6() {
    for fam in [24u32, 28, 30] {
        for head in [fam.to_le_bytes(), fam.to_be_bytes()] {
            for link in [0, 108] {
                let f = [&head[..], &syn6()].concat();
                assert_v6(&decode(link, &f).unwrap());
            }
        }
    }
    let f = [&7u32.to_le_bytes()[..], &syn4()].concat();
    assert_eq!(
        decode(0, &f).unwrap_err(),
        "address family 7, not AF_INET or AF_INET6"
    );
}

#[test]
fn ethernet_with_vlan_and_qinq_tags() {
    assert_v4(&decode(1, &eth(0x0800, &syn4())).unwrap());
    assert_v6(&decode(1, &eth(0x86dd, &syn6())).unwrap());
    let one = eth(0x8100, &vlan(0x8100, 7, 0x86dd, &syn6())[2..]);
    assert_v6(&decode(1, &one).unwrap());
    // 802.1ad outer tag, 802.1Q inner: QinQ.
    let inner = vlan(0x8100, 7, 0x0800, &syn4());
    let qinq = eth(0x88a8, &[&[0, 9][..], &inner].concat());
    assert_v4(&decode(1, &qinq).unwrap());
    assert_eq!(
        decode(1, &eth(0x0806, &[0; 28])).unwrap_err(),
        "EtherType 0x0806, not IP"
    );
}

#[test]
fn linux_cooked_sll_and_sll2() {
    for (et, ip, v6) in [(0x0800u16, syn4(), false), (0x86dd, syn6(), true)] {
        let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
        sll.extend_from_slice(&et.to_be_bytes());
        sll.extend_from_slice(&ip);
        let mut sll2 = et.to_be_bytes().to_vec();
        sll2.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
        sll2.extend_from_slice(&ip);
        for (link, f) in [(113, sll), (276, sll2)] {
            let p = decode(link, &f).unwrap();
            if v6 { assert_v6(&p) } else { assert_v4(&p) }
        }
    }
}

#[test]
fn ppp_and_pppoe_sessions() {
    // PPPoE session: ver/type 0x11, code 0, session 0x0042, length.
    let pppoe = |proto: u16, ip: &[u8]| {
        let mut s = vec![0x11, 0, 0, 0x42];
        s.extend_from_slice(&((ip.len() + 2) as u16).to_be_bytes());
        s.extend_from_slice(&proto.to_be_bytes());
        s.extend_from_slice(ip);
        eth(0x8864, &s)
    };
    assert_v4(&decode(1, &pppoe(0x0021, &syn4())).unwrap());
    assert_v6(&decode(1, &pppoe(0x0057, &syn6())).unwrap());
    assert_eq!(
        decode(1, &pppoe(0xc021, &[0; 8])).unwrap_err(),
        "PPP protocol 0xc021, not IP"
    );
    // LINKTYPE_PPP, with and without HDLC address and control.
    assert_v6(&decode(9, &[&[0xff, 0x03, 0x00, 0x57][..], &syn6()].concat()).unwrap());
    assert_v4(&decode(9, &[&[0x00, 0x21][..], &syn4()].concat()).unwrap());
}

/// NFLOG: a header, then TLVs in the capturing host's byte order, each
/// padded to 4 bytes; the packet is NFULA_PAYLOAD (9).
fn nflog(big: bool, family: u8, ip: &[u8]) -> Vec<u8> {
    let tlv = |kind: u16, v: &[u8]| {
        let len = (4 + v.len()) as u16;
        let (l, k) = if big {
            (len.to_be_bytes(), kind.to_be_bytes())
        } else {
            (len.to_le_bytes(), kind.to_le_bytes())
        };
        let mut t = [&l[..], &k[..], v].concat();
        t.resize(t.len().next_multiple_of(4), 0);
        t
    };
    let mut f = vec![family, 0, 0, 5];
    // NFULA_PACKET_HDR (1), NFULA_PREFIX (10) of an odd length, padded.
    f.extend(tlv(1, &[0x86, 0xdd, 3, 0]));
    f.extend(tlv(10, b"drop\0"));
    f.extend(tlv(9, ip));
    f
}

#[test]
fn nflog_finds_the_payload_tlv_in_either_byte_order() {
    for big in [false, true] {
        assert_v4(&decode_frame(239, big, &nflog(big, 2, &syn4()), 0).unwrap());
        assert_v6(&decode_frame(239, big, &nflog(big, 10, &syn6()), 0).unwrap());
        // An unknown family: the version nibble tells.
        assert_v6(&decode_frame(239, big, &nflog(big, 0, &syn6()), 0).unwrap());
    }
    // Read in the other byte order the first TLV's length is 0x0800:
    // past the frame, no payload found, never a panic.
    assert!(decode_frame(239, true, &nflog(false, 2, &syn4()), 0).is_err());
    let no_payload = vec![2, 0, 0, 5, 8, 0, 1, 0, 0, 0, 0, 0];
    assert_eq!(
        decode_frame(239, false, &no_payload, 0).unwrap_err(),
        "NFLOG record without a packet (no NFULA_PAYLOAD)"
    );
    assert_eq!(
        decode_frame(239, false, &[2, 0, 0, 5, 2, 0, 9, 0], 0).unwrap_err(),
        "NFLOG TLV of length 2"
    );
}

// ---- IPv6 extension headers ----

#[test]
fn ipv6_extension_headers_are_walked() {
    let t = tcp(SYN, &MSS1440, &[]);
    // Hop-by-hop (0) -> routing (43) -> destination options (60) ->
    // atomic fragment (44) -> AH (51, 16 bytes: length field 2) -> TCP.
    let mut ah = vec![6, 2, 0, 0];
    ah.resize(16, 0);
    ah.extend_from_slice(&t);
    let chain = ext8(43, 0, &ext8(60, 1, &ext8(44, 0, &frag6(51, 0, false, &ah))));
    let p = decode(229, &ipv6(0, &chain)).unwrap();
    assert_v6(&p);
    // The payload length counts the extension headers: not data.
    assert_eq!(p.len, 0);
    // A first fragment and a later one are pieces: skipped.
    for (off, more) in [(0, true), (185, true), (185, false)] {
        let f = ipv6(44, &frag6(6, off, more, &t));
        assert_eq!(decode(229, &f).unwrap_err(), FRAGMENT6, "{off} {more}");
    }
    assert_eq!(
        decode(229, &ipv6(50, &[0; 16])).unwrap_err(),
        "IPv6 ESP (encrypted)"
    );
    assert_eq!(
        decode(229, &ipv6(17, &[0; 8])).unwrap_err(),
        "IP protocol 17, not TCP"
    );
    // A chain longer than any real one: bounded, not walked to its end.
    let mut long = t.clone();
    for _ in 0..MAX_EXT + 1 {
        long = ext8(if long == t { 6 } else { 60 }, 0, &long);
    }
    assert_eq!(
        decode(229, &ipv6(60, &long)).unwrap_err(),
        format!("more than {MAX_EXT} IPv6 extension headers")
    );
    // A header running past the capture.
    let cut = ipv6(0, &[6, 3, 0, 0]);
    assert_eq!(
        decode(229, &cut).unwrap_err(),
        "IPv6 extension header cut short"
    );
}

#[test]
fn ipv6_addresses_as_tcpdump_prints_them() {
    let mut f = syn6();
    // ::1 -> ::ffff:10.0.0.1
    f[8..24].copy_from_slice(&"::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
    let mapped: std::net::Ipv6Addr = "::ffff:10.0.0.1".parse().unwrap();
    f[24..40].copy_from_slice(&mapped.octets());
    let p = decode(229, &f).unwrap();
    assert_eq!(
        (p.src.as_str(), p.dst.as_str()),
        ("::1.40000", "::ffff:10.0.0.1.443")
    );
}

// ---- tunnels ----

#[test]
fn gre_carries_ip_ethernet_and_erspan() {
    // Plain GRE, and with checksum, key and sequence number.
    for flags in [0, 0x8000, 0x2000, 0x1000, 0xb000] {
        assert_v4(&decode(101, &ipv4(47, &gre(flags, 0x0800, &syn4()))).unwrap());
        assert_v6(&decode(101, &ipv4(47, &gre(flags, 0x86dd, &syn6()))).unwrap());
        assert_v6(&decode(101, &ipv6(47, &gre(flags, 0x86dd, &syn6()))).unwrap());
    }
    // Transparent Ethernet bridging.
    let teb = ipv4(47, &gre(0x2000, 0x6558, &eth(0x86dd, &syn6())));
    assert_v6(&decode(1, &eth(0x0800, &teb)).unwrap());
    // ERSPAN type II: GRE with a sequence number, an 8-byte header.
    let mut e2 = vec![0x10, 0x07, 0, 0x2a, 0, 0, 0, 0];
    e2.extend(eth(0x0800, &syn4()));
    assert_v4(&decode(101, &ipv4(47, &gre(0x1000, 0x88be, &e2))).unwrap());
    // ERSPAN type I: no sequence number, no header.
    let e1 = eth(0x0800, &syn4());
    assert_v4(&decode(101, &ipv4(47, &gre(0, 0x88be, &e1))).unwrap());
    // ERSPAN type III, without and with the platform subheader (O bit).
    for o in [false, true] {
        let mut e3 = vec![0x20, 0x07, 0, 0x2a, 1, 2, 3, 4, 0, 0, 0, u8::from(o)];
        if o {
            e3.extend_from_slice(&[0xaa; 8]);
        }
        e3.extend(eth(0x86dd, &syn6()));
        assert_v6(&decode(101, &ipv4(47, &gre(0x1000, 0x22eb, &e3))).unwrap());
    }
    // ERSPAN III carrying IP frames (FT 2) is said, not misread.
    let e3ip = [
        &[0x20, 0x07, 0, 0x2a, 1, 2, 3, 4, 0, 0, 2 << 2, 0][..],
        &syn4(),
    ]
    .concat();
    assert_eq!(
        decode(101, &ipv4(47, &gre(0x1000, 0x22eb, &e3ip))).unwrap_err(),
        "ERSPAN III frame type 2, not Ethernet"
    );
    assert_eq!(
        decode(101, &ipv4(47, &gre(1, 0x880b, &[0; 8]))).unwrap_err(),
        "GRE version 1 (PPTP?)"
    );
    assert_eq!(
        decode(101, &ipv4(47, &gre(0, 0x1234, &[0; 8]))).unwrap_err(),
        "GRE protocol 0x1234, not IP or Ethernet"
    );
}

#[test]
fn ip_in_ip_and_6in4() {
    assert_v4(&decode(101, &ipv4(4, &syn4())).unwrap());
    assert_v6(&decode(101, &ipv4(41, &syn6())).unwrap());
    assert_v4(&decode(101, &ipv6(4, &syn4())).unwrap());
    assert_v6(&decode(101, &ipv6(41, &syn6())).unwrap());
    // The outer packet's fragment is a fragment whatever it carries.
    let mut f = ipv4(4, &syn4());
    f[6] = 0x20;
    assert_eq!(
        decode(101, &f).unwrap_err(),
        "IPv4 fragments are not reassembled"
    );
}

#[test]
fn mpls_label_stacks_to_the_bottom() {
    for labels in [&[16][..], &[16, 17, 18]] {
        assert_v4(&decode(1, &eth(0x8847, &mpls(labels, &syn4()))).unwrap());
        assert_v6(&decode(1, &eth(0x8848, &mpls(labels, &syn6()))).unwrap());
    }
    // MPLS over GRE.
    let g = ipv4(47, &gre(0, 0x8847, &mpls(&[100, 200], &syn6())));
    assert_v6(&decode(101, &g).unwrap());
    // A pseudowire control word (first nibble 0) is not IP.
    let pw = eth(0x8847, &mpls(&[16], &[0, 0, 0, 0, 1, 2, 3]));
    assert_eq!(
        decode(1, &pw).unwrap_err(),
        "MPLS payload is not IP (a pseudowire?)"
    );
    // No bottom of stack, ever: bounded.
    let endless: Vec<u8> = std::iter::repeat_n([0, 1, 0, 64], 1000).flatten().collect();
    assert!(
        decode(1, &eth(0x8847, &endless))
            .unwrap_err()
            .contains("deeper than")
    );
}

#[test]
fn nesting_is_bounded() {
    // IPv4 in IPv4, 40 deep: iterative, stopped at the bound.
    let mut f = syn4();
    for _ in 0..40 {
        f = ipv4(4, &f);
    }
    assert_eq!(
        decode(101, &f).unwrap_err(),
        format!("more than {MAX_LAYERS} nested headers")
    );
    // Just inside the bound it is read.
    let mut f = syn6();
    for _ in 0..MAX_LAYERS - 1 {
        f = ipv6(41, &f);
    }
    assert_v6(&decode(101, &f).unwrap());
}

// ---- what the segment carries ----

#[test]
fn options_ip_fields_and_the_rst_payload_are_filled() {
    // mss 1460, sackOK, TS val 7 ecr 9, nop, wscale 7.
    let opts = [
        2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9, 1, 3, 3, 7,
    ];
    let p = decode(101, &ipv4(6, &tcp(SYN, &opts, &[]))).unwrap();
    assert!(p.options.seen);
    assert_eq!(
        (
            p.options.mss,
            p.options.sack_ok,
            p.options.ts,
            p.options.wscale
        ),
        (Some(1460), true, Some((7, 9)), Some(7))
    );
    // An RST carrying text (RFC 9293 3.5.3): kept, at most 64 bytes.
    let why: Vec<u8> = b"BIG-IP: [0x2409eee:704] Flow expired (sweeper) "
        .iter()
        .cycle()
        .take(100)
        .copied()
        .collect();
    let p = decode(1, &eth(0x0800, &ipv4(6, &tcp(RST | ACK, &[], &why)))).unwrap();
    assert_eq!(p.len, 100);
    assert_eq!(p.rst_payload.as_deref(), Some(&why[..RST_PAYLOAD_KEEP]));
    // Short, and with Ethernet padding after the IP packet: the padding
    // is not payload.
    let mut f = eth(0x86dd, &ipv6(6, &tcp(RST, &[], b"bye")));
    f.extend_from_slice(&[0xee; 10]);
    let p = decode(1, &f).unwrap();
    assert_eq!((p.len, p.rst_payload.as_deref()), (3, Some(&b"bye"[..])));
    // A bare RST padded to 60 bytes carries nothing.
    let mut f = eth(0x0800, &ipv4(6, &tcp(RST, &[], &[])));
    f.resize(60, 0);
    let p = decode(1, &f).unwrap();
    assert_eq!((p.len, p.rst_payload), (0, None));
    // Data on a segment that is not an RST is not kept.
    let p = decode(101, &ipv4(6, &tcp(ACK, &[], b"data"))).unwrap();
    assert_eq!((p.len, p.rst_payload), (4, None));
    // Cut by the snap length: what was captured, the length from IP.
    let f = ipv6(6, &tcp(RST, &[], &why));
    let p = decode_frame(229, false, &f[..f.len() - 90], 90).unwrap();
    assert_eq!((p.len, p.rst_payload.as_deref()), (100, Some(&why[..10])));
}

// ---- files ----

/// A classic pcap of `frames` on `link`, in either byte order.
fn pcap(big: bool, link: u32, frames: &[Vec<u8>]) -> Vec<u8> {
    let w32 = |b: &mut Vec<u8>, v: u32| {
        b.extend_from_slice(&if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        })
    };
    let w16 = |b: &mut Vec<u8>, v: u16| {
        b.extend_from_slice(&if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        })
    };
    let mut b = Vec::new();
    w32(&mut b, 0xa1b2c3d4);
    w16(&mut b, 2);
    w16(&mut b, 4);
    w32(&mut b, 0);
    w32(&mut b, 0);
    w32(&mut b, 65535);
    w32(&mut b, link);
    for (i, f) in frames.iter().enumerate() {
        w32(&mut b, 1_700_000_000 + i as u32);
        w32(&mut b, 0);
        w32(&mut b, f.len() as u32);
        w32(&mut b, f.len() as u32);
        b.extend_from_slice(f);
    }
    b
}

/// A pcapng (one section, one interface on `link`) of `frames`.
fn pcapng(big: bool, link: u16, frames: &[Vec<u8>]) -> Vec<u8> {
    let w32 = |v: u32| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let w16 = |v: u16| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let block = |kind: u32, body: &[u8]| {
        let mut body = body.to_vec();
        body.resize(body.len().next_multiple_of(4), 0);
        let len = 12 + body.len() as u32;
        [&w32(kind)[..], &w32(len), &body, &w32(len)].concat()
    };
    let mut b = block(
        0x0a0d0d0a,
        &[&w32(0x1a2b3c4d)[..], &w16(1), &w16(0), &[0xff; 8]].concat(),
    );
    b.extend(block(1, &[&w16(link)[..], &w16(0), &w32(0)].concat()));
    for (i, f) in frames.iter().enumerate() {
        let ts = 1_700_000_000_000_000u64 + i as u64;
        let body = [
            &w32(0)[..],
            &w32((ts >> 32) as u32),
            &w32(ts as u32),
            &w32(f.len() as u32),
            &w32(f.len() as u32),
            f,
        ]
        .concat();
        b.extend(block(6, &body));
    }
    b
}

/// A client at 2001:db8::1 that sent 5 bytes and got an `R.` from the
/// server, which had read none of them.
fn unread_v6() -> Vec<Vec<u8>> {
    let seg = |from_client: bool, flags: u8, seq: u32, ack: u32, data: &[u8]| {
        let mut t = tcp(flags, &[], data);
        if !from_client {
            t[0..2].copy_from_slice(&443u16.to_be_bytes());
            t[2..4].copy_from_slice(&40000u16.to_be_bytes());
        }
        t[4..8].copy_from_slice(&seq.to_be_bytes());
        t[8..12].copy_from_slice(&ack.to_be_bytes());
        let mut ip = ipv6(6, &t);
        if !from_client {
            ip[23] = 2;
            ip[39] = 1;
        }
        eth(0x86dd, &ip)
    };
    vec![
        seg(true, SYN, 100, 0, &[]),
        seg(false, SYN | ACK, 500, 101, &[]),
        seg(true, ACK, 101, 501, &[]),
        seg(true, ACK | 0x08, 101, 501, b"hello"),
        seg(false, ACK, 501, 106, &[]),
        seg(false, RST | ACK, 501, 106, &[]),
    ]
}

#[test]
fn ipv6_pcap_and_pcapng_files_in_both_byte_orders() {
    for big in [false, true] {
        for file in [pcap(big, 1, &unread_v6()), pcapng(big, 1, &unread_v6())] {
            let r = explain_bytes("v6", &file);
            assert!(r.notes.is_empty(), "{:?}", r.notes);
            assert_eq!((r.tcp_segments, r.connections.len()), (6, 1));
            let c = &r.connections[0];
            assert_eq!(
                (c.a.as_str(), c.b.as_str()),
                ("2001:db8::1.40000", "2001:db8::2.443")
            );
            assert_eq!(c.cause_id, Cause::UnreadData, "{}", c.cause);
        }
    }
}

#[test]
fn nflog_files_follow_the_file_byte_order() {
    for big in [false, true] {
        let frames: Vec<Vec<u8>> = unread_v6()
            .iter()
            .map(|f| nflog(big, 10, &f[14..]))
            .collect();
        for file in [pcap(big, 239, &frames), pcapng(big, 239, &frames)] {
            let r = explain_bytes("nflog", &file);
            assert!(r.notes.is_empty(), "{:?}", r.notes);
            assert_eq!(r.tcp_segments, 6);
            assert_eq!(r.connections[0].cause_id, Cause::UnreadData);
        }
    }
}

#[test]
fn unknown_frames_are_counted_per_reason() {
    let mut frames = unread_v6();
    frames.insert(1, eth(0x0806, &[0; 28]));
    frames.insert(2, eth(0x86dd, &ipv6(17, &[0; 8])));
    frames.insert(3, eth(0x86dd, &ipv6(17, &[0; 8])));
    frames.insert(4, eth(0x86dd, &ipv6(44, &frag6(6, 1, false, &[0; 24]))));
    let r = explain_bytes("x", &pcap(false, 1, &frames));
    assert_eq!(r.tcp_segments, 6);
    assert_eq!(
        r.notes,
        [
            "1 packet skipped (EtherType 0x0806, not IP): #2",
            "2 packets skipped (IP protocol 17, not TCP): #3, #4",
            "1 packet skipped (IPv6 fragments are not reassembled): #5",
        ]
    );
}

// ---- tcpdump text ----

#[test]
fn tcpdump_v_text_fills_the_ip_layer_and_options() {
    // As tcpdump -nn -v prints IPv4 (two lines) and IPv6 (one).
    let text = "\
23:31:08.751477 IP (tos 0x0, ttl 64, id 54188, offset 0, flags [DF], proto TCP (6), length 60)
    127.0.0.1.46696 > 127.0.0.1.18081: Flags [S], cksum 0xfe30 (incorrect -> 0x436b), seq 2251488286, win 65495, options [mss 65495,sackOK,TS val 2755848437 ecr 0,nop,wscale 10], length 0
23:31:08.751495 IP (tos 0x0, ttl 63, id 0, offset 0, flags [none], proto TCP (6), length 40)
    127.0.0.1.18081 > 127.0.0.1.46696: Flags [R.], cksum 0xfe30 (incorrect -> 0xbd54), seq 0, ack 2251488287, win 0, length 0
23:30:31.846254 IP6 (flowlabel 0x68f32, hlim 64, next-header TCP (6) payload length: 40) ::1.58354 > ::1.18080: Flags [S], cksum 0x0030 (incorrect -> 0x758b), seq 3024462292, win 65476, options [mss 65476,sackOK,TS val 163204659 ecr 0,nop,wscale 10], length 0
23:30:31.846290 IP6 ::1.18080 > ::1.58354: Flags [S.], seq 243469398, ack 3024462293, win 65464, length 0
23:30:31.846299 IP (tos 0x0, ttl 64, id 1, offset 0, flags [DF], proto UDP (17), length 40)
    127.0.0.1.53 > 127.0.0.1.5353: 1234+ A? example.
10:00:00.000000 IP 10.0.0.1.1 > 10.0.0.2.2: S 1:1(0) win 5840 <mss 1460,sackOK,timestamp 5 6,nop,wscale 2>
";
    let packets: Vec<Packet> = Reader::new(text.as_bytes()).unwrap().collect();
    assert_eq!(packets.len(), 5);
    let p = &packets[0];
    assert_eq!((p.line, p.src.as_str()), (Some(2), "127.0.0.1.46696"));
    assert_eq!(
        (p.ip.version, p.ip.ttl, p.ip.id, p.ip.df),
        (4, Some(64), Some(54188), Some(true))
    );
    assert_eq!(
        (
            p.options.seen,
            p.options.mss,
            p.options.sack_ok,
            p.options.ts,
            p.options.wscale
        ),
        (true, Some(65495), true, Some((2755848437, 0)), Some(10))
    );
    let p = &packets[1];
    assert_eq!(
        (p.ip.ttl, p.ip.id, p.ip.df, p.options.seen),
        (Some(63), Some(0), Some(false), false)
    );
    let p = &packets[2];
    assert_eq!((p.src.as_str(), p.dst.as_str()), ("::1.58354", "::1.18080"));
    assert_eq!(
        (p.ip.version, p.ip.ttl, p.ip.id, p.options.mss),
        (6, Some(64), None, Some(65476))
    );
    assert_eq!((packets[3].ip.version, packets[3].ip.ttl), (6, None));
    let p = &packets[4];
    assert_eq!(
        (
            p.options.mss,
            p.options.sack_ok,
            p.options.ts,
            p.options.wscale
        ),
        (Some(1460), true, Some((5, 6)), Some(2))
    );
    // The UDP pair is one skipped header line and one skipped line.
    let mut rd = Reader::new(text.as_bytes()).unwrap();
    rd.by_ref().for_each(drop);
    let notes = rd.finish().notes;
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes[0].starts_with("line 7: a `-v` IP header line"),
        "{notes:?}"
    );
    assert!(notes[1].starts_with("line 8: "), "{notes:?}");
}

/// tcpdump prints a tunnel's outer layers before the segment, on its line
/// (or, with `-v`, on lines of their own): the segment is the last `IP`
/// or `IP6` of the line. (Lines as tcpdump 4.99 printed frames of ours.)
#[test]
fn tunnelled_segments_in_tcpdump_text() {
    let text = "\
23:35:27.577646 MPLS (label 100, tc 0, ttl 64) (label 200, tc 0, [S], ttl 64) IP6 fd00:1::1.60432 > fd00:1::2.18082: Flags [S], seq 584044926, win 64800, options [mss 1440,sackOK,TS val 2135537139 ecr 0,nop,wscale 10], length 0
23:35:27.577646 PPPoE  [ses 0x42] IP6 fd00:1::1.60432 > fd00:1::2.18082: Flags [S], seq 584044926, win 64800, length 0
23:35:27.577646 IP 192.0.2.1 > 192.0.2.2: GREv0, key=0x5, seq 0, length 92: IP6 fd00:1::1.60432 > fd00:1::2.18082: Flags [S], seq 584044926, win 64800, length 0
23:35:27.577646 IP6 2001:db8::1 > 2001:db8::2: HBH DSTOPT GREv0, length 84: IP6 fd00:1::1.60432 > fd00:1::2.18082: Flags [S], seq 584044926, win 64800, length 0
23:35:27.577646 IP 192.0.2.1 > 192.0.2.2: IP 10.0.0.1.5 > 10.0.0.2.6: Flags [R], seq 1, win 0, length 0
23:35:27.577646 MPLS (label 100, tc 0, ttl 64)
\t(label 200, tc 0, [S], ttl 64)
\tIP6 (flowlabel 0xcef51, hlim 63, next-header TCP (6) payload length: 40) fd00:1::1.60432 > fd00:1::2.18082: Flags [S], cksum 0xfa34 (incorrect -> 0xf4ab), seq 584044926, win 64800, length 0
";
    let packets: Vec<Packet> = Reader::new(text.as_bytes()).unwrap().collect();
    assert_eq!(packets.len(), 6);
    for p in &packets[..4] {
        assert_eq!(
            (p.src.as_str(), p.dst.as_str()),
            ("fd00:1::1.60432", "fd00:1::2.18082")
        );
        assert_eq!(
            (p.ip.version, p.seq, p.win),
            (6, Some(584044926), Some(64800))
        );
    }
    assert_eq!(packets[0].options.wscale, Some(10));
    assert_eq!(
        (packets[4].src.as_str(), packets[4].ip.version),
        ("10.0.0.1.5", 4)
    );
    assert_eq!((packets[5].line, packets[5].ip.ttl), (Some(8), Some(63)));
}

// ---- proptests: any bytes, never a panic, always bounded ----

const LINKS: [u32; 13] = [0, 1, 9, 12, 14, 101, 108, 113, 228, 229, 239, 276, 147];

/// Valid frames of every kind, for mutation.
fn seeds() -> Vec<(u32, Vec<u8>)> {
    let mut e2 = vec![0x10, 0x07, 0, 0x2a, 0, 0, 0, 0];
    e2.extend(eth(0x0800, &syn4()));
    let chain = ext8(
        43,
        0,
        &ext8(60, 1, &frag6(6, 0, false, &tcp(RST, &[], b"x"))),
    );
    vec![
        (1, eth(0x86dd, &syn6())),
        (1, eth(0x8100, &vlan(0x8100, 7, 0x0800, &syn4())[2..])),
        (1, eth(0x8847, &mpls(&[16, 17], &syn6()))),
        (101, ipv4(47, &gre(0xb000, 0x88be, &e2))),
        (101, ipv4(47, &gre(0x2000, 0x6558, &eth(0x86dd, &syn6())))),
        (229, ipv6(0, &chain)),
        (239, nflog(false, 10, &syn6())),
        (0, [&30u32.to_le_bytes()[..], &syn6()].concat()),
    ]
}

fn check(p: &Packet, frame_len: usize) {
    assert!(
        p.rst_payload
            .as_ref()
            .is_none_or(|d| d.len() <= RST_PAYLOAD_KEEP && d.len() <= frame_len)
    );
    assert!(p.src.len() < 64 && p.dst.len() < 64);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn arbitrary_bytes_never_panic(
        link in prop::sample::select(&LINKS[..]),
        big in any::<bool>(),
        cut in any::<u32>(),
        bytes in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        if let Ok(p) = decode_frame(link, big, &bytes, cut) {
            check(&p, bytes.len());
        }
    }

    #[test]
    fn mangled_frames_never_panic(
        which in 0usize..8,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        keep in any::<prop::sample::Index>(),
        big in any::<bool>(),
    ) {
        let (link, mut f) = seeds().swap_remove(which);
        for (at, v) in edits {
            let i = at.index(f.len());
            f[i] = v;
        }
        let f = &f[..keep.index(f.len() + 1)];
        if let Ok(p) = decode_frame(link, big, f, 0) {
            check(&p, f.len());
        }
    }

    #[test]
    fn mangled_files_never_panic(
        ng in any::<bool>(),
        big in any::<bool>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        keep in any::<prop::sample::Index>(),
    ) {
        let frames: Vec<Vec<u8>> = seeds().into_iter().filter(|(l, _)| *l == 1).map(|(_, f)| f).collect();
        let mut file = if ng { pcapng(big, 1, &frames) } else { pcap(big, 1, &frames) };
        for (at, v) in edits {
            let i = at.index(file.len());
            file[i] = v;
        }
        let file = &file[..keep.index(file.len() + 1)];
        let mut rd = Reader::new(file).unwrap();
        let n = rd.by_ref().map(|p| check(&p, file.len())).count();
        prop_assert!(n <= frames.len());
        prop_assert!(rd.finish().notes.len() <= 40);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Lines made of tcpdump's own words in any order (`-v` headers left
    /// open, parentheses unbalanced, tunnels, addresses): never a panic,
    /// at most one segment a line.
    #[test]
    fn tcpdump_like_text_never_panics(
        lines in prop::collection::vec(
            prop::collection::vec(
                prop::sample::select(&[
                    "IP", "IP6", "(tos", "0x0,", "ttl", "64,", "id", "flags", "[DF],", "proto",
                    "TCP", "(6),", "length", "60)", "(", ")", "((", "hlim", "::1.80", ">",
                    "::1.81:", "10.0.0.1.5", "Flags", "[S.],", "seq", "1:2,", "ack", "win",
                    "options", "[mss", "1460,sackOK,TS", "val", "1", "ecr", "2,nop,wscale",
                    "7]", "<mss", "1460>", "MPLS", "GREv0,", "12:00:00.000001", "..", "R",
                ][..]),
                0..24,
            ),
            0..12,
        ),
    ) {
        let text: String = lines.iter().map(|l| l.join(" ") + "\n").collect();
        let mut rd = Reader::new(text.as_bytes()).unwrap();
        let n = rd.by_ref().count();
        prop_assert!(n <= lines.len());
        prop_assert!(rd.finish().notes.len() <= 2 * lines.len() + 1);
    }
}

// ---- real captures (made with tcpdump on this project's own programs) ----

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/readers");

fn read_packets(name: &str) -> Vec<Packet> {
    let f = std::fs::File::open(format!("{FIXTURES}/{name}")).unwrap();
    let mut rd = Reader::new(f).unwrap();
    let packets: Vec<Packet> = rd.by_ref().collect();
    let s = rd.finish();
    assert!(
        s.notes.is_empty() && s.stopped.is_none(),
        "{name}: {:?}",
        s.notes
    );
    packets
}

/// Segments and connections as `tshark -q -z conv,tcp` counted them when
/// the captures were made, and how each connection ended (the programs:
/// a client closing with the reply unread, curl reading to the end, a
/// connection to a closed port).
#[test]
fn real_captures_are_read_whole() {
    use Cause::*;
    for (name, segments, causes) in [
        (
            "v6-loopback.pcap",
            26,
            &[NormalClose, UnreadData, Refused][..],
        ),
        (
            "v6-loopback.pcapng",
            26,
            &[NormalClose, UnreadData, Refused],
        ),
        ("v6-loopback.txt", 26, &[NormalClose, UnreadData, Refused]),
        (
            "veth-any-sll2.pcap",
            36,
            &[UnreadData, UnreadData, NormalClose],
        ),
        ("veth-any-v.txt", 36, &[UnreadData, UnreadData, NormalClose]),
        ("nflog.pcap", 24, &[UnreadData, UnreadData]),
    ] {
        let bytes = std::fs::read(format!("{FIXTURES}/{name}")).unwrap();
        let r = explain_bytes(name, &bytes);
        assert!(r.notes.is_empty(), "{name}: {:?}", r.notes);
        assert_eq!(r.tcp_segments, segments, "{name}");
        let got: Vec<Cause> = r.connections.iter().map(|c| c.cause_id).collect();
        assert_eq!(got, causes, "{name}");
    }
}

/// `tcpdump -nn -v`'s text of a capture gives each segment the same IP
/// layer and options as the capture's bytes.
#[test]
fn v_text_and_bytes_agree_on_ip_and_options() {
    let bin = read_packets("veth-any-sll2.pcap");
    let text = read_packets("veth-any-v.txt");
    assert_eq!(bin.len(), text.len());
    let mut v4 = 0;
    for (b, t) in bin.iter().zip(&text) {
        assert_eq!(
            (&b.src, &b.dst, b.flags, b.len),
            (&t.src, &t.dst, t.flags, t.len)
        );
        assert_eq!(b.ip, t.ip, "{} / {}", b.place(), t.place());
        let o = |p: &Packet| {
            (
                p.options.mss,
                p.options.wscale,
                p.options.sack_ok,
                p.options.ts,
            )
        };
        assert_eq!(o(b), o(t), "{} / {}", b.place(), t.place());
        v4 += usize::from(b.ip.version == 4);
    }
    assert!(v4 > 0 && v4 < bin.len(), "both IPv4 and IPv6 are in it");
}

/// Every segment of the real captures field by field against tshark's
/// dissection, when tshark is installed (it is not a build dependency).
#[test]
fn real_captures_match_tshark_field_by_field() {
    let fields = [
        "ip.src",
        "ipv6.src",
        "tcp.srcport",
        "ip.dst",
        "ipv6.dst",
        "tcp.dstport",
        "tcp.seq_raw",
        "tcp.ack_raw",
        "tcp.len",
        "ip.ttl",
        "ipv6.hlim",
        "ip.id",
        "ip.flags.df",
        "tcp.options.mss_val",
        "tcp.options.wscale.shift",
        "tcp.options.timestamp.tsval",
        "tcp.options.timestamp.tsecr",
        "tcp.options.sack_perm",
    ];
    for name in [
        "v6-loopback.pcap",
        "v6-loopback.pcapng",
        "veth-any-sll2.pcap",
        "nflog.pcap",
    ] {
        let mut cmd = std::process::Command::new("tshark");
        cmd.args([
            "-r",
            &format!("{FIXTURES}/{name}"),
            "-Y",
            "tcp",
            "-T",
            "fields",
        ]);
        cmd.args(["-E", "separator=;"]);
        for f in fields {
            cmd.args(["-e", f]);
        }
        let Ok(out) = cmd.output() else {
            eprintln!("tshark is not installed: field comparison skipped");
            return;
        };
        let out = String::from_utf8(out.stdout).unwrap();
        let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split(';').collect()).collect();
        let packets = read_packets(name);
        assert_eq!(rows.len(), packets.len(), "{name}");
        for (r, p) in rows.iter().zip(&packets) {
            let at = format!("{name} {}", p.place());
            let host = |a: &str, b: &str| {
                if a.is_empty() {
                    b.to_string()
                } else {
                    a.to_string()
                }
            };
            let num = |s: &str| -> Option<u64> {
                match s.strip_prefix("0x") {
                    Some(h) => u64::from_str_radix(h, 16).ok(),
                    None => s.parse().ok(),
                }
            };
            assert_eq!(p.src, format!("{}.{}", host(r[0], r[1]), r[2]), "{at}");
            assert_eq!(p.dst, format!("{}.{}", host(r[3], r[4]), r[5]), "{at}");
            assert_eq!(p.seq.map(u64::from), num(r[6]), "{at}");
            if let Some(a) = p.ack {
                assert_eq!(Some(u64::from(a)), num(r[7]), "{at}");
            }
            assert_eq!(Some(u64::from(p.len)), num(r[8]), "{at}");
            assert_eq!(p.ip.ttl.map(u64::from), num(&host(r[9], r[10])), "{at}");
            assert_eq!(p.ip.id.map(u64::from), num(r[11]), "{at}");
            assert_eq!(p.ip.df, num(r[12]).map(|d| d == 1), "{at}");
            assert_eq!(p.options.mss.map(u64::from), num(r[13]), "{at}");
            assert_eq!(p.options.wscale.map(u64::from), num(r[14]), "{at}");
            assert_eq!(p.options.ts.map(|t| u64::from(t.0)), num(r[15]), "{at}");
            assert_eq!(p.options.ts.map(|t| u64::from(t.1)), num(r[16]), "{at}");
            assert_eq!(p.options.sack_ok, !r[17].is_empty(), "{at}");
        }
    }
}

/// The frames of a little-endian classic pcap (what tcpdump wrote).
fn pcap_frames(name: &str) -> Vec<Vec<u8>> {
    let b = std::fs::read(format!("{FIXTURES}/{name}")).unwrap();
    let le = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    assert_eq!(le(0), 0xa1b2c3d4);
    let (mut at, mut out) = (24, Vec::new());
    while at + 16 <= b.len() {
        let n = le(at + 8);
        out.push(b[at + 16..at + 16 + n].to_vec());
        at += 16 + n;
    }
    out
}

/// Each real frame wrapped in each tunnel (as mirrored or provider
/// traffic carries it) reads as the same segment, and the capture as the
/// same connections.
#[test]
fn real_frames_read_the_same_through_every_tunnel() {
    // Snapped at 160 bytes: the IP lengths still count the whole packets.
    let frames = pcap_frames("v6-loopback.pcap");
    let plain = explain_bytes("plain", &pcap(false, 1, &frames));
    let plain_packets: Vec<Packet> = Reader::new(&pcap(false, 1, &frames)[..]).unwrap().collect();
    let ip = |f: &Vec<u8>| f[14..].to_vec();
    let et = |f: &Vec<u8>| u16::from_be_bytes([f[12], f[13]]);
    let erspan3 = |f: &Vec<u8>| {
        // Hardware ID 7, the O bit set: an 8-byte platform subheader.
        let mut h = vec![0x20, 0x64, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0x71];
        h.extend_from_slice(&[0x08, 0, 0, 0, 0, 0, 0, 9]);
        h.extend_from_slice(f);
        eth(0x0800, &ipv4(47, &gre(0x1000, 0x22eb, &h)))
    };
    type Wrap<'a> = (&'a str, u32, Box<dyn Fn(&Vec<u8>) -> Vec<u8> + 'a>);
    let wraps: Vec<Wrap> = vec![
        (
            "QinQ",
            1,
            Box::new(|f| {
                eth(
                    0x88a8,
                    &[&[0, 2][..], &vlan(0x8100, 3, et(f), &ip(f))].concat(),
                )
            }),
        ),
        (
            "MPLS",
            1,
            Box::new(|f| eth(0x8847, &mpls(&[16, 17, 18], &ip(f)))),
        ),
        (
            "GRE",
            1,
            Box::new(|f| eth(0x0800, &ipv4(47, &gre(0xb000, et(f), &ip(f))))),
        ),
        (
            "GRE over IPv6",
            101,
            Box::new(|f| ipv6(47, &gre(0, et(f), &ip(f)))),
        ),
        (
            "gretap",
            229,
            Box::new(|f| ipv6(0, &ext8(47, 0, &gre(0x2000, 0x6558, f)))),
        ),
        (
            "ERSPAN II",
            1,
            Box::new(|f| {
                let h = [&[0x10, 0x64, 0, 12, 0, 0, 0, 0][..], f].concat();
                eth(0x0800, &ipv4(47, &gre(0x1000, 0x88be, &h)))
            }),
        ),
        ("ERSPAN III", 1, Box::new(erspan3)),
        ("6in4", 228, Box::new(|f| ipv4(41, &ip(f)))),
        ("NFLOG", 239, Box::new(|f| nflog(false, 10, &ip(f)))),
    ];
    for (name, link, wrap) in &wraps {
        let wrapped: Vec<Vec<u8>> = frames.iter().map(wrap).collect();
        let file = pcap(false, *link, &wrapped);
        let r = explain_bytes(name, &file);
        assert!(r.notes.is_empty(), "{name}: {:?}", r.notes);
        assert_eq!(r.tcp_segments, plain.tcp_segments, "{name}");
        let causes = |r: &finrst::explain::Report| -> Vec<Cause> {
            r.connections.iter().map(|c| c.cause_id).collect()
        };
        assert_eq!(causes(&r), causes(&plain), "{name}");
        let packets: Vec<Packet> = Reader::new(&file[..]).unwrap().collect();
        assert_eq!(packets, plain_packets, "{name}");
    }
}
