//! The capture-reading layer of `finrst explain`: captures read as a
//! stream (in any chunking, from a pipe), gzip, both byte orders of BSD
//! loopback, nanosecond timestamps, pcapng timestamps past 64 bits, IPv4
//! fragments, notes counted per reason, and damaged files ending in a
//! one-line error. Every capture is built here or written by
//! `finrst::pcap`.

use crate::explain::{classic, pcapng, records};
use crate::traces;
use finrst::explain::capture::Reader;
use finrst::explain::{Cause, Report, explain_bytes, explain_reader};
use flate2::Compression;
use flate2::write::GzEncoder;
use proptest::prelude::*;
use std::io::{self, Read, Write};

/// The unread-data trace as a classic pcap (µs, little-endian, RAW).
fn unread_pcap() -> Vec<u8> {
    finrst::pcap::to_bytes(&traces::unread_close()).unwrap()
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// Hands out at most `n` bytes per read, as a pipe may.
struct Trickle<'a> {
    b: &'a [u8],
    n: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.n.min(buf.len()).min(self.b.len());
        buf[..k].copy_from_slice(&self.b[..k]);
        self.b = &self.b[k..];
        Ok(k)
    }
}

/// Reads `ok` bytes, then fails.
struct Failing<'a> {
    b: &'a [u8],
}

impl Read for Failing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.b.is_empty() {
            return Err(io::Error::other("the disk went away"));
        }
        let k = buf.len().min(self.b.len());
        buf[..k].copy_from_slice(&self.b[..k]);
        self.b = &self.b[k..];
        Ok(k)
    }
}

/// Everything a report says, to compare two readings of one capture.
fn said(r: &Report) -> String {
    format!("{}\n{:?}", r.to_text(), r.stopped)
}

/// A pcapng file with one interface whose `if_tsresol` and `if_tsoffset`
/// are given, and one enhanced packet block per (raw timestamp, packet).
fn ng(big: bool, tsresol: Option<u8>, tsoffset: Option<i64>, pkts: &[(u64, Vec<u8>)]) -> Vec<u8> {
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
    let block = |ty: u32, mut body: Vec<u8>| {
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        let n = (body.len() + 12) as u32;
        [&w32(ty)[..], &w32(n), &body, &w32(n)].concat()
    };
    let shb = [&w32(0x1a2b_3c4d)[..], &w16(1), &w16(0), &[0xff; 8]].concat();
    let mut idb = [&w16(101)[..], &w16(0), &w32(0)].concat();
    if let Some(r) = tsresol {
        idb.extend(w16(9));
        idb.extend(w16(1));
        idb.extend([r, 0, 0, 0]);
    }
    if let Some(o) = tsoffset {
        idb.extend(w16(14));
        idb.extend(w16(8));
        idb.extend(if big {
            o.to_be_bytes()
        } else {
            o.to_le_bytes()
        });
    }
    idb.extend([0; 4]);
    let mut o = block(0x0a0d_0d0a, shb);
    o.extend(block(1, idb));
    for (ts, ip) in pkts {
        let epb = [
            &w32(0)[..],
            &w32((ts >> 32) as u32),
            &w32(*ts as u32),
            &w32(ip.len() as u32),
            &w32(ip.len() as u32),
            ip,
        ]
        .concat();
        o.extend(block(6, epb));
    }
    o
}

/// The times a reader gives, in ns.
fn times(b: &[u8]) -> Vec<Option<u64>> {
    Reader::new(b).unwrap().map(|p| p.time_ns).collect()
}

// ---- streaming ----

#[test]
fn any_chunking_reads_the_same() {
    let raw = unread_pcap();
    let recs = records(&raw);
    let text = "15:00:00.000001 IP 10.0.0.1.1 > 10.0.0.2.2: Flags [S], seq 1, win 1, length 0\n\
                junk\n\
                15:00:00.000002 IP 10.0.0.2.2 > 10.0.0.1.1: Flags [R.], seq 0, ack 2, win 0, length 0\n";
    for (name, bytes) in [
        ("pcap", raw.clone()),
        ("pcapng", pcapng(&recs, true)),
        ("text", text.as_bytes().to_vec()),
        ("pcap.gz", gzip(&raw)),
    ] {
        let want = explain_bytes("x", &bytes);
        assert!(want.stopped.is_none(), "{name}: {:?}", want.stopped);
        for n in [1, 3, 7, 4096] {
            let r = explain_reader("x", Trickle { b: &bytes, n }).unwrap();
            assert_eq!(said(&r), said(&want), "{name} read {n} bytes at a time");
        }
    }
}

#[test]
fn a_record_larger_than_the_buffer_is_read() {
    // A 1 MiB snap of a 40-byte packet: the reader's buffer grows for it.
    let mut recs = records(&unread_pcap());
    recs[1].1.resize(1 << 20, 0xee);
    let b = classic(&recs, false, false, 101, &|ip: &[u8]| ip.to_vec());
    let r = explain_bytes("big", &b);
    assert!(r.stopped.is_none() && r.notes.is_empty(), "{:?}", r.notes);
    assert_eq!(r.tcp_segments, recs.len());
    assert_eq!(r.connections[0].cause_id, Cause::UnreadData);
}

// ---- gzip ----

#[test]
fn gzip_captures_read_like_the_plain_ones() {
    let raw = unread_pcap();
    let text = std::fs::read(format!(
        "{}/tests/fixtures/explain/seed004-http-unread.txt",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    for (name, plain) in [
        ("pcap", raw.clone()),
        ("pcapng", pcapng(&records(&raw), false)),
        ("text", text),
    ] {
        let want = explain_bytes("x", &plain);
        let r = explain_bytes("x", &gzip(&plain));
        assert_eq!(
            r.format,
            format!("{}, gzip-compressed", want.format),
            "{name}"
        );
        assert_eq!(r.notes, want.notes, "{name}");
        assert_eq!(r.tcp_segments, want.tcp_segments, "{name}");
        let (a, b) = (&r.connections[0], &want.connections[0]);
        assert_eq!((a.cause_id, &a.ended), (b.cause_id, &b.ended), "{name}");
    }
    // Two members one after the other (`cat a.gz b.gz`): one stream.
    let half = raw.len() / 2;
    let two = [gzip(&raw[..half]), gzip(&raw[half..])].concat();
    assert_eq!(
        said(&explain_bytes("x", &two)),
        said(&explain_bytes("x", &gzip(&raw)))
    );
}

#[test]
fn a_damaged_gzip_capture_stops_with_what_it_read() {
    let z = gzip(&unread_pcap());
    // Cut in the middle of the compressed data.
    let r = explain_bytes("cut.pcap.gz", &z[..z.len() / 2]);
    let s = r.stopped.as_ref().expect("a cut gzip stream is damage");
    assert!(s.what.contains("gzip"), "{s}");
    // A corrupt header: nothing is read.
    let mut bad = z.clone();
    bad[3] = 0xff; // reserved flag bits
    let r = explain_bytes("bad.gz", &bad);
    assert!(r.stopped.is_some(), "{}", r.to_text());
    assert_eq!(r.tcp_segments, 0);
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
    // it, in either order: read as IPv6 (these headers name protocol 96,
    // so they are counted as not TCP), not misread as IPv4.
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
            "6 packets skipped (IP protocol 96, not TCP): #2, #3, #4, #5, #6, ...",
            "1 packet skipped (address family 7, not AF_INET or AF_INET6): #8"
        ]
    );
}

// ---- time ----

#[test]
fn nanosecond_timestamps_are_kept_whole() {
    let recs = records(&unread_pcap());
    // Classic pcap, ns magic, both byte orders.
    let t0 = 1_700_000_000u64;
    let ns_recs: Vec<(u64, Vec<u8>)> = recs.iter().map(|(_, ip)| (0, ip.clone())).collect();
    for big in [false, true] {
        let mut b = classic(&ns_recs, big, true, 101, &|ip: &[u8]| ip.to_vec());
        // Patch each record's time to t0 s + (i * 1001 + 7) ns.
        let mut at = 24;
        for (i, (_, ip)) in ns_recs.iter().enumerate() {
            let (s, f) = (t0 as u32, (i as u32) * 1001 + 7);
            let (s, f) = if big {
                (s.to_be_bytes(), f.to_be_bytes())
            } else {
                (s.to_le_bytes(), f.to_le_bytes())
            };
            b[at..at + 4].copy_from_slice(&s);
            b[at + 4..at + 8].copy_from_slice(&f);
            at += 16 + ip.len();
        }
        let want: Vec<Option<u64>> = (0..ns_recs.len() as u64)
            .map(|i| Some(t0 * 1_000_000_000 + i * 1001 + 7))
            .collect();
        assert_eq!(times(&b), want, "big-endian {big}");
    }
    // pcapng: ns (10^-9), 2^-30 and µs resolutions, and an offset.
    let pkts: Vec<(u64, Vec<u8>)> = vec![(1_234_567_891, recs[0].1.clone())];
    assert_eq!(
        times(&ng(false, Some(9), None, &pkts)),
        [Some(1_234_567_891)]
    );
    assert_eq!(
        times(&ng(true, Some(0x80 | 30), None, &pkts)),
        [Some((1_234_567_891u64 * 1_000_000_000) >> 30)]
    );
    assert_eq!(
        times(&ng(false, None, Some(10), &pkts)),
        [Some(1_234_567_891_000 + 10_000_000_000)]
    );
}

#[test]
fn pcapng_times_past_64_bits_are_said_not_wrapped() {
    let ip = records(&unread_pcap())[0].1.clone();
    for (name, resol, offset, ts) in [
        // 2^64 - 1 seconds.
        ("seconds", Some(0u8), None, u64::MAX),
        // Valid, moved before 1970 by the offset.
        ("offset", Some(9), Some(-10i64), 5),
        // Units of 10^-39 s do not fit in 128 bits.
        ("resolution", Some(39), None, 1),
    ] {
        let b = ng(false, resol, offset, &[(ts, ip.clone())]);
        assert_eq!(times(&b), [None], "{name}");
        let r = explain_bytes("x", &b);
        assert_eq!(r.tcp_segments, 1, "{name}: the packet is kept");
        assert_eq!(r.notes.len(), 1, "{name}: {:?}", r.notes);
        assert!(
            r.notes[0].starts_with("1 packet kept without a time"),
            "{name}: {:?}",
            r.notes
        );
    }
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

// ---- notes ----

#[test]
fn notes_are_counted_per_reason_not_per_packet() {
    let recs = records(&unread_pcap());
    let mut many = recs.clone();
    let mut udp = recs[0].1.clone();
    udp[9] = 17;
    for _ in 0..20_000 {
        many.push((recs[0].0, udp.clone()));
    }
    // Packets with a reason each (an EtherType per packet) share a group
    // past the first few dozen.
    for et in 0..5_000u16 {
        many.push((recs[0].0, et.to_be_bytes().to_vec()));
    }
    let eth = |ip: &[u8]| {
        if ip.len() == 2 {
            [&[0; 12][..], ip].concat()
        } else {
            [&[0; 12][..], &[0x08, 0x00], ip].concat()
        }
    };
    let r = explain_bytes("x", &classic(&many, false, false, 1, &eth));
    assert_eq!(r.connections[0].cause_id, Cause::UnreadData);
    assert_eq!(
        r.notes[0],
        format!(
            "20000 packets skipped (IP protocol 17, not TCP): #{}, #{}, #{}, #{}, #{}, ...",
            recs.len() + 1,
            recs.len() + 2,
            recs.len() + 3,
            recs.len() + 4,
            recs.len() + 5
        )
    );
    assert_eq!(r.notes.len(), finrst::explain::notes::MAX_REASONS + 1);
    assert!(
        r.notes.last().unwrap().contains("other reasons"),
        "{:?}",
        r.notes.last()
    );

    // Junk text: one note, however many lines.
    let mut junk = String::new();
    for i in 0..200_000 {
        junk.push_str(&format!("junk line {i}\n"));
    }
    junk.push_str(&"x".repeat(100_000));
    let r = explain_bytes("junk.txt", junk.as_bytes());
    assert_eq!(
        r.notes,
        [
            "lines 1, 2, 3, 4, 5, ... (200000 lines): not a tcpdump TCP line, skipped",
            "line 200001: longer than 65536 bytes, skipped"
        ]
    );
}

// ---- damage ----

#[test]
fn a_truncated_capture_names_the_frame_and_the_byte() {
    let raw = unread_pcap();
    let recs = records(&raw);
    let fourth: usize = 24 + recs[..3].iter().map(|(_, d)| 16 + d.len()).sum::<usize>();
    let r = explain_bytes("cut.pcap", &raw[..fourth + 16 + 5]);
    let s = r.stopped.as_ref().unwrap();
    assert_eq!(s.byte, fourth as u64);
    assert_eq!(s.read, 3);
    assert_eq!(
        s.what,
        format!(
            "pcap truncated after 3 packets (packet 4 at byte {fourth} claims {} bytes, 5 left)",
            recs[3].1.len()
        )
    );
    // pcapng: cut inside the third packet block.
    let b = pcapng(&recs, false);
    let r = explain_bytes("cut.pcapng", &b[..b.len() - 300]);
    let s = r.stopped.as_ref().unwrap();
    assert!(s.what.starts_with("pcapng truncated after"), "{s}");
    assert!(s.what.contains(&format!("at byte {}", s.byte)), "{s}");
    // A header cut short, and a block whose length is corrupt.
    let r = explain_bytes("x", &raw[..10]);
    assert_eq!(
        r.stopped.unwrap().what,
        "pcap truncated in its 24-byte file header: no packets"
    );
    let mut bad = b.clone();
    let second = u32::from_le_bytes(bad[4..8].try_into().unwrap()) as usize;
    bad[second + 4..second + 8].copy_from_slice(&7u32.to_le_bytes());
    let r = explain_bytes("x", &bad);
    let s = r.stopped.unwrap();
    assert_eq!(s.byte, second as u64);
    assert!(
        s.what
            .starts_with(&format!("pcapng block at byte {second}")),
        "{s}"
    );
    // A length past anything a capture holds: corrupt, not read on.
    let mut huge = raw.clone();
    huge[24 + 8..24 + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let s = explain_bytes("x", &huge).stopped.unwrap();
    assert_eq!(
        s.what,
        "packet 1 at byte 24 claims 2147483647 bytes, more than any capture holds: the file is \
         corrupt; stopped after 0 packets"
    );
}

#[test]
fn a_read_error_part_way_stops_with_what_came_before() {
    let raw = unread_pcap();
    let r = explain_reader("x", Failing { b: &raw[..200] }).unwrap();
    let s = r.stopped.unwrap();
    assert!(s.what.starts_with("reading failed at byte 200"), "{s}");
    assert!(s.what.ends_with("the disk went away"), "{s}");
    // Nothing readable at all is an error of its own.
    assert!(explain_reader("x", Failing { b: &[] }).is_err());
}

fn finrst() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_finrst"))
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("finrst-capture-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[test]
fn cli_damaged_capture_is_one_line_and_exit_2() {
    let raw = unread_pcap();
    let p = tmp("cut.pcap");
    std::fs::write(&p, &raw[..raw.len() - 3]).unwrap();
    let out = finrst()
        .args(["explain", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("finrst: {}: pcap truncated after", p.display())),
        "{err}"
    );
    assert!(err.contains(" at byte "), "{err}");
    // What came before is still explained.
    assert!(String::from_utf8_lossy(&out.stdout).contains("connection 1:"));

    // gzip from standard input, and a plain pcap through a pipe.
    for bytes in [gzip(&raw), raw.clone()] {
        let mut child = finrst()
            .args(["explain", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("sent RST after acknowledging"));
    }
    let _ = std::fs::remove_dir_all(p.parent().unwrap());
}

// ---- never a panic ----

/// A clean ending: a report, and if reading stopped, one line that says
/// where (a byte offset) and matches the report's first word of damage.
fn clean(r: &Report) -> Result<(), TestCaseError> {
    let _ = r.to_text();
    if let Some(s) = &r.stopped {
        prop_assert!(!s.what.contains('\n'), "one line: {s}");
        prop_assert!(
            s.what.contains("byte") || s.what.contains("header") || s.what.contains("gzip"),
            "says where: {s}"
        );
        prop_assert!(r.notes.contains(&s.what), "noted too: {:?}", r.notes);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_end_cleanly(
        b in proptest::collection::vec(any::<u8>(), 0..2000),
        magic in 0usize..7,
        chunk in 1usize..64,
    ) {
        let m: [&[u8]; 7] = [
            &[], &[0xd4, 0xc3, 0xb2, 0xa1], &[0x4d, 0x3c, 0xb2, 0xa1], &[0xa1, 0xb2, 0xc3, 0xd4],
            &[0x0a, 0x0d, 0x0d, 0x0a], &[0x1f, 0x8b], &[0x34, 0xcd, 0xb2, 0xa1],
        ];
        let bytes = [m[magic], &b[..]].concat();
        let r = explain_reader("x", Trickle { b: &bytes, n: chunk }).unwrap();
        clean(&r)?;
    }

    #[test]
    fn mangled_captures_end_cleanly(
        which in 0usize..5,
        form in 0usize..6,
        cut in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        chunk in 1usize..512,
    ) {
        let t = traces::all().swap_remove(which).1;
        let raw = finrst::pcap::to_bytes(&t).unwrap();
        let recs = records(&raw);
        let eth = |ip: &[u8]| [&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x81, 0x00, 0, 5, 0x08, 0x00][..], ip].concat();
        let mut bytes = match form {
            0 => raw,
            1 => pcapng(&recs, which % 2 == 0),
            2 => classic(&recs, true, true, 1, &eth),
            3 => gzip(&raw),
            4 => gzip(&pcapng(&recs, false)),
            _ => ng(which % 2 == 1, Some(which as u8 * 40), Some(-(which as i64)), &recs),
        };
        for (i, v) in flips {
            let n = bytes.len();
            bytes[i.index(n)] = v;
        }
        let n = bytes.len();
        bytes.truncate(cut.index(n + 1));
        let whole = explain_bytes("x", &bytes);
        clean(&whole)?;
        // The same bytes in small reads say the same.
        let r = explain_reader("x", Trickle { b: &bytes, n: chunk }).unwrap();
        prop_assert_eq!(said(&r), said(&whole));
    }
}
