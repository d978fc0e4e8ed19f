//! The pcap writer, checked by readers that share no code with it: the
//! pcap-parser crate for the container, hand-written offsets and checksums
//! for the IPv4/TCP bytes, and tcpdump itself when it is installed.

use crate::traces;
use finrst::segment::Segment;
use finrst::trace::Trace;
use std::net::Ipv4Addr;

/// RFC 1071 ones'-complement sum, written here rather than taken from the
/// crate so that a wrong checksum in the writer cannot hide behind the same
/// wrong code in the check.
fn ones_sum(chunks: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for c in chunks {
        let mut i = 0;
        while i + 1 < c.len() {
            sum += u32::from(u16::from_be_bytes([c[i], c[i + 1]]));
            i += 2;
        }
        if i < c.len() {
            sum += u32::from(c[i]) << 8;
        }
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Checks one packet's bytes field by field against the segment it was
/// written from.
#[track_caller]
fn check_packet(p: &[u8], s: &Segment, i: usize) {
    assert_eq!(p[0] >> 4, 4, "#{i}: IPv4");
    let ihl = usize::from(p[0] & 0xf) * 4;
    assert_eq!(ihl, 20, "#{i}: no IP options");
    assert_eq!(usize::from(be16(p, 2)), p.len(), "#{i}: IP total length");
    assert_eq!(p[9], 6, "#{i}: protocol TCP");
    assert_eq!(ones_sum(&[&p[..ihl]]), 0, "#{i}: IP header checksum");
    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    assert_eq!((src, dst), (s.src_addr, s.dst_addr), "#{i}: addresses");
    let t = &p[ihl..];
    assert_eq!((be16(t, 0), be16(t, 2)), (s.sport, s.dport), "#{i}: ports");
    assert_eq!(be32(t, 4), s.seq, "#{i}: seq");
    assert_eq!(be32(t, 8), s.ack, "#{i}: ack");
    assert_eq!(t[13], s.flags.0, "#{i}: flags");
    assert_eq!(be16(t, 14), s.win, "#{i}: window");
    assert_eq!(be16(t, 18), s.urg_ptr, "#{i}: urgent pointer");
    let off = usize::from(t[12] >> 4) * 4;
    assert_eq!(t.len() - off, s.len as usize, "#{i}: payload length");
    if let Some(pl) = &s.payload {
        assert_eq!(&t[off..], &pl.to_vec()[..], "#{i}: payload bytes");
    }
    // TCP checksum over the pseudo-header and the segment: the sum of a
    // correct segment, checksum field included, is zero.
    let tcp_len = (t.len() as u16).to_be_bytes();
    let pseudo = [&p[12..20], &[0, 6], &tcp_len[..]].concat();
    assert_eq!(ones_sum(&[&pseudo, t]), 0, "#{i}: TCP checksum");
}

fn check_trace(name: &str, trace: &Trace) {
    let bytes = finrst::pcap::to_bytes(trace).unwrap();
    let (rest, cap) = pcap_parser::parse_pcap(&bytes).expect("pcap-parser reads the file");
    assert!(
        rest.is_empty(),
        "{name}: {} bytes after the last record",
        rest.len()
    );
    assert_eq!(cap.header.network.0, 101, "{name}: LINKTYPE_RAW");
    assert_eq!(cap.header.magic_number, 0xa1b2_c3d4, "{name}: µs magic");
    assert_eq!(
        cap.blocks.len(),
        trace.segments.len(),
        "{name}: one record per segment"
    );
    for (i, (b, s)) in cap.blocks.iter().zip(&trace.segments).enumerate() {
        let us = u64::from(b.ts_sec) * 1_000_000 + u64::from(b.ts_usec);
        assert_eq!(us, s.time_us, "{name} #{i}: timestamp");
        assert_eq!(b.caplen, b.origlen, "{name} #{i}: nothing cut");
        check_packet(b.data, s, i);
    }
}

#[test]
fn every_segment_reads_back_with_an_independent_reader() {
    for (name, t) in traces::all() {
        check_trace(name, &t);
    }
}

#[test]
fn lost_segments_are_written_because_they_were_sent() {
    let t = traces::lost_then_linger_zero();
    assert!(t.segments.iter().any(|s| s.lost));
    let bytes = finrst::pcap::to_bytes(&t).unwrap();
    let (_, cap) = pcap_parser::parse_pcap(&bytes).unwrap();
    assert_eq!(cap.blocks.len(), t.segments.len());
}

/// `--pcap-snaplen`: each record is the whole packet's first N bytes, with
/// its real length beside; the header says N. 0 and lengths past any
/// packet keep packets whole.
#[test]
fn a_snap_length_cuts_each_packet_and_keeps_its_length() {
    for (name, t) in traces::all() {
        let whole = finrst::pcap::to_bytes(&t).unwrap();
        let (_, full) = pcap_parser::parse_pcap(&whole).unwrap();
        for snaplen in [20u32, 40, 52, 60, 80, 100] {
            let mut bytes = Vec::new();
            finrst::pcap::write_segments_snaplen(&t.segments, &mut bytes, Some(snaplen)).unwrap();
            let (rest, cap) = pcap_parser::parse_pcap(&bytes).expect("pcap-parser reads the file");
            assert!(rest.is_empty());
            assert_eq!(
                cap.header.snaplen, snaplen,
                "{name}: the header's snap length"
            );
            assert_eq!(cap.blocks.len(), full.blocks.len());
            for (i, (b, f)) in cap.blocks.iter().zip(&full.blocks).enumerate() {
                assert_eq!(b.origlen, f.origlen, "{name} #{i}: original length");
                assert_eq!(
                    b.caplen,
                    f.caplen.min(snaplen),
                    "{name} #{i}: captured length"
                );
                assert_eq!(
                    b.data,
                    &f.data[..b.caplen as usize],
                    "{name} #{i}: a prefix"
                );
                assert_eq!((b.ts_sec, b.ts_usec), (f.ts_sec, f.ts_usec));
            }
        }
        for whole_again in [None, Some(0), Some(262_144), Some(u32::MAX)] {
            let mut bytes = Vec::new();
            finrst::pcap::write_segments_snaplen(&t.segments, &mut bytes, whole_again).unwrap();
            assert_eq!(bytes, whole, "{name}: {whole_again:?} keeps packets whole");
        }
    }
}

/// tcpdump's own reading of the file: one line per segment, with the
/// flags, relative seq/ack and lengths the trace shows. CI installs
/// tcpdump, so there a missing tcpdump is a failure, not a skip.
#[test]
fn tcpdump_reads_the_file_like_the_trace() {
    let have = std::process::Command::new("tcpdump")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "tcpdump is not installed, and CI=true requires it (apt-get install -y tcpdump)"
            );
        }
        println!("SKIPPED tcpdump_reads_the_file_like_the_trace: tcpdump not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, t) in traces::all() {
        let path = dir.path().join(format!("{name}.pcap"));
        finrst::pcap::write_file(&t, path.to_str().unwrap()).unwrap();
        // -nn: numbers not names; -tt: seconds since the epoch (our virtual
        // time); -vv would verify checksums too, we check those above.
        let out = std::process::Command::new("tcpdump")
            .args(["-nn", "-tt", "-r"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: tcpdump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let rel = finrst::trace::relative(&t.segments);
        assert_eq!(lines.len(), rel.len(), "{name}: tcpdump printed\n{text}");
        for (line, r) in lines.iter().zip(&rel) {
            let want_time = finrst::trace::fmt_time(r.time_us);
            assert!(line.starts_with(&want_time), "{name}: time in {line}");
            assert!(
                line.contains(&format!("Flags [{}]", r.flags)),
                "{name}: flags in {line}"
            );
            assert!(
                line.contains(&format!("length {}", r.len)),
                "{name}: length in {line}"
            );
            assert!(
                line.contains(&format!("win {}", r.win)),
                "{name}: win in {line}"
            );
            // tcpdump makes seq/ack relative from the first ACK-bearing
            // segment; once the handshake is over they match the trace's.
            if !r.flags.contains('S') {
                if let Some(a) = r.ack {
                    assert!(
                        line.contains(&format!("ack {a},")),
                        "{name}: ack {a} in {line}"
                    );
                }
            }
        }
        // And tcpdump's checksum verification (-vv) finds nothing wrong.
        let vv = std::process::Command::new("tcpdump")
            .args(["-nn", "-vv", "-r"])
            .arg(&path)
            .output()
            .unwrap();
        let vtext = String::from_utf8_lossy(&vv.stdout);
        assert!(
            !vtext.contains("incorrect"),
            "{name}: tcpdump -vv:\n{vtext}"
        );
        assert!(
            vtext.contains("cksum"),
            "{name}: tcpdump -vv shows checksums"
        );
        // Cut to its headers, the file reads the same way, each packet
        // marked as cut short.
        let cut = dir.path().join(format!("{name}-80.pcap"));
        finrst::pcap::write_file_snaplen(&t, cut.to_str().unwrap(), Some(80)).unwrap();
        let out = std::process::Command::new("tcpdump")
            .args(["-nn", "-tt", "-r"])
            .arg(&cut)
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: tcpdump on the cut file");
        let cut_text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(cut_text, text, "{name}: headers are all tcpdump prints");
    }
}
