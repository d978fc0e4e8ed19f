//! The capture-reading layer of `finrst explain`: both byte orders of BSD
//! loopback, IPv4 fragments. Every capture is built here or written by
//! `finrst::pcap`.

use crate::explain::{classic, records};
use crate::traces;
use finrst::explain::{Cause, explain_bytes};

/// The unread-data trace as a classic pcap (µs, little-endian, RAW).
fn unread_pcap() -> Vec<u8> {
    finrst::pcap::to_bytes(&traces::unread_close()).unwrap()
}

// ---- BSD loopback ----

#[test]
fn bsd_loopback_families_in_either_byte_order() {
    let raw = unread_pcap();
    let recs = records(&raw);
    let want = explain_bytes("x", &raw);
    for big_file in [false, true] {
        for link in [0, 108] {
            for fam in [2u32.to_le_bytes(), 2u32.to_be_bytes()] {
                let frame = |ip: &[u8]| [&fam[..], ip].concat();
                let r = explain_bytes("x", &classic(&recs, big_file, false, link, &frame));
                assert!(r.notes.is_empty(), "{link} {fam:?}: {:?}", r.notes);
                assert_eq!(r.tcp_segments, want.tcp_segments);
                let (a, b) = (&r.connections[0], &want.connections[0]);
                assert_eq!(
                    (a.cause_id, &a.ended),
                    (b.cause_id, &b.ended),
                    "{link} {fam:?}"
                );
            }
        }
    }
    // AF_INET6 as NetBSD/OpenBSD (24), FreeBSD (28) and macOS (30) write
    // it, in either order: skipped and counted, not misread.
    let mut v6 = vec![(recs[0].0, recs[0].1.clone())];
    for fam in [24u32, 28, 30] {
        v6.push((recs[0].0, [&fam.to_le_bytes()[..], &[0x60; 40]].concat()));
        v6.push((recs[0].0, [&fam.to_be_bytes()[..], &[0x60; 40]].concat()));
    }
    v6.push((recs[0].0, [&7u32.to_le_bytes()[..], &[0x45; 40]].concat()));
    let framed: Vec<(u64, Vec<u8>)> = v6
        .into_iter()
        .enumerate()
        .map(|(i, (t, d))| {
            (
                t,
                if i == 0 {
                    [&2u32.to_le_bytes()[..], &d].concat()
                } else {
                    d
                },
            )
        })
        .collect();
    let r = explain_bytes(
        "x",
        &classic(&framed, false, false, 0, &|f: &[u8]| f.to_vec()),
    );
    assert_eq!(r.tcp_segments, 1);
    assert_eq!(
        r.notes,
        [
            "6 packets skipped (IPv6 (only IPv4 is explained)): #2, #3, #4, #5, #6, ...",
            "1 packet skipped (address family 7, not AF_INET): #8"
        ]
    );
}

// ---- IPv4 fragments ----

#[test]
fn ipv4_fragments_are_counted_not_read_as_segments() {
    let mut recs = records(&unread_pcap());
    let frag = |ip: &[u8], field: u16| {
        let mut ip = ip.to_vec();
        ip[6..8].copy_from_slice(&field.to_be_bytes());
        ip
    };
    let t = recs[0].0;
    // A first fragment (MF, offset 0), a later one (offset 8 x 8 bytes),
    // and a last one (no MF, offset): none is a whole segment.
    let first = frag(&recs[3].1, 0x2000);
    let later = frag(&recs[3].1, 0x2008);
    let last = frag(&recs[3].1, 0x0010);
    // DF alone is a whole packet.
    let whole_df = frag(&recs[0].1, 0x4000);
    recs[0].1 = whole_df;
    recs.insert(1, (t, first));
    recs.insert(2, (t, later));
    recs.insert(3, (t, last));
    let r = explain_bytes(
        "x",
        &classic(&recs, false, false, 101, &|ip: &[u8]| ip.to_vec()),
    );
    assert_eq!(
        r.notes,
        ["3 packets skipped (IPv4 fragments are not reassembled): #2, #3, #4"]
    );
    assert_eq!(r.tcp_segments, recs.len() - 3);
    assert_eq!(r.connections[0].cause_id, Cause::UnreadData);
}
