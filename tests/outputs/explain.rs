//! `finrst explain` on the seeds' tcpdump excerpts, on pcaps written from
//! constructed traces (in every link type and byte order it claims to
//! read), on tcpdump's own text of those pcaps, and on garbage.

use crate::traces;
use finrst::explain::{Cause, Report, explain_bytes};
use proptest::prelude::*;

fn fixture(name: &str) -> Report {
    let path = format!(
        "{}/tests/fixtures/explain/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).unwrap();
    explain_bytes(name, &bytes)
}

/// One connection's expected reading.
#[track_caller]
fn expect(r: &Report, conn: usize, cause: Cause, text: &str, scenario: &str) {
    let c = &r.connections[conn];
    assert_eq!(c.cause_id, cause, "{}\n{}", r.source, r.to_text());
    assert!(c.cause.contains(text), "cause {:?} lacks {text:?}", c.cause);
    assert_eq!(
        c.scenarios.first().map(String::as_str),
        Some(scenario),
        "{}",
        r.to_text()
    );
    assert!(!c.cannot_tell.is_empty(), "says what it cannot tell");
}

#[test]
fn seed000_client_resets_over_one_unread_byte() {
    let r = fixture("seed000-epollout-unread.txt");
    assert_eq!(r.connections.len(), 1);
    assert!(r.notes.is_empty(), "{:?}", r.notes);
    expect(
        &r,
        0,
        Cause::UnreadData,
        "localhost.37776 sent RST after acknowledging 1 byte: close() with unread data (Linux, RFC 2525 2.17)",
        "seed000-epollout-unread",
    );
}

#[test]
fn seed002_urgent_byte_left_unread() {
    let r = fixture("seed002-oob-kill.txt");
    expect(
        &r,
        0,
        Cause::UnreadData,
        "localhost.tproxy sent RST",
        "seed002-oob-read-close",
    );
    let c = &r.connections[0];
    assert!(c.scenarios.contains(&"seed002-kill-client".to_string()));
    assert!(c.evidence.iter().any(|e| e.contains("urgent")));
    // The kill in the story and a close() look the same on the wire.
    assert!(
        c.cannot_tell
            .iter()
            .any(|e| e.contains("exited or was killed"))
    );
}

#[test]
fn seed003_linger_zero_from_a_shortened_excerpt() {
    let r = fixture("seed003-linger-zero.txt");
    expect(
        &r,
        0,
        Cause::LingerZero,
        "RST right after the handshake with nothing unread: SO_LINGER {1, 0}",
        "seed003-linger-zero",
    );
    // The lines were cut by hand: said, not hidden.
    assert_eq!(r.notes.len(), 4, "{:?}", r.notes);
    assert!(r.notes[0].starts_with("line 1: shortened by hand"));
    let c = &r.connections[0];
    assert_eq!(c.opened_by.as_deref(), Some("17.15.220.199"));
    assert!(c.cannot_tell.iter().any(|e| e.contains("look alike")));
}

#[test]
fn seed004_old_tcpdump_format_unread_response() {
    let r = fixture("seed004-http-unread.txt");
    expect(
        &r,
        0,
        Cause::UnreadData,
        "my031089.sqa.cm4.tbsite.net.19500 sent RST after acknowledging 485 bytes",
        "seed004-http-unread",
    );
    assert!(
        r.connections[0].ended.contains("seq 19 ack 486"),
        "{}",
        r.connections[0].ended
    );
    // The prompt, the banner lines and `...` are named, not silently eaten.
    assert_eq!(
        r.notes,
        [
            "line 1: not a tcpdump TCP line, skipped",
            "line 2: not a tcpdump TCP line, skipped",
            "line 3: not a tcpdump TCP line, skipped",
            "line 14: not a tcpdump TCP line, skipped"
        ]
    );
}

#[test]
fn seed004_drained_response_closes_with_fin() {
    let r = fixture("seed004-http-drained.txt");
    expect(
        &r,
        0,
        Cause::NormalClose,
        "normal close, TIME_WAIT on the side that closed first (my031089.sqa.cm4.tbsite.net.9405",
        "seed004-http-drained",
    );
}

#[test]
fn two_connections_in_one_paste_are_told_apart() {
    let r = fixture("seed004-both.txt");
    assert_eq!(r.connections.len(), 2);
    assert_eq!(r.connections[0].cause_id, Cause::UnreadData);
    assert_eq!(r.connections[1].cause_id, Cause::NormalClose);
    assert_eq!(
        r.connections[0].segments + r.connections[1].segments,
        r.tcp_segments
    );
}

/// The cause each constructed trace was built to show.
fn built_cause(name: &str) -> (Cause, &'static str) {
    match name {
        "unread_close" => (Cause::UnreadData, "seed000-epollout-unread"),
        "clean_close" => (Cause::NormalClose, "seed004-http-drained"),
        "zero_window" => (Cause::ZeroWindowRst, "rfc2525-zero-window"),
        "lost_then_linger_zero" => (Cause::LingerZero, "seed003-linger-zero"),
        "data_after_fin" => (Cause::DataAfterFin, "data-after-close"),
        _ => unreachable!("{name}"),
    }
}

#[test]
fn pcaps_of_constructed_traces_are_explained() {
    for (name, t) in traces::all() {
        let bytes = finrst::pcap::to_bytes(&t).unwrap();
        let r = explain_bytes(name, &bytes);
        assert!(r.notes.is_empty(), "{name}: {:?}", r.notes);
        assert_eq!(r.tcp_segments, t.segments.len());
        assert_eq!(r.connections.len(), 1, "{name}");
        let (cause, scen) = built_cause(name);
        let c = &r.connections[0];
        assert_eq!(c.cause_id, cause, "{name}:\n{}", r.to_text());
        assert_eq!(
            c.scenarios.first().map(String::as_str).unwrap_or(""),
            scen,
            "{name}"
        );
        assert_eq!(c.opened_by.as_deref(), Some("10.0.0.1.40000"));
    }
    // The numbers in the ending are the trace's relative ones.
    let r = explain_bytes(
        "u",
        &finrst::pcap::to_bytes(&traces::unread_close()).unwrap(),
    );
    assert!(
        r.connections[0].ended.contains("[R.] seq 1 ack 2 win 64"),
        "{}",
        r.connections[0].ended
    );
}

// ---- the same capture in every container the reader claims to handle ----

/// (time µs, IPv4 packet) records of a classic RAW pcap written by us.
pub(crate) fn records(pcap: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let (_, cap) = pcap_parser::parse_pcap(pcap).unwrap();
    cap.blocks
        .iter()
        .map(|b| {
            (
                u64::from(b.ts_sec) * 1_000_000 + u64::from(b.ts_usec),
                b.data.to_vec(),
            )
        })
        .collect()
}

/// Writes a classic pcap with any byte order, resolution and link type,
/// `frame` turning each IPv4 packet into a link-layer frame.
pub(crate) fn classic(
    recs: &[(u64, Vec<u8>)],
    big: bool,
    nanos: bool,
    link: u32,
    frame: &dyn Fn(&[u8]) -> Vec<u8>,
) -> Vec<u8> {
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
    let mut o = Vec::new();
    o.extend(w32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    o.extend(w16(2));
    o.extend(w16(4));
    o.extend(w32(0));
    o.extend(w32(0));
    o.extend(w32(65535));
    o.extend(w32(link));
    for (t, ip) in recs {
        let f = frame(ip);
        o.extend(w32((t / 1_000_000) as u32));
        o.extend(w32(if nanos {
            (t % 1_000_000 * 1000) as u32
        } else {
            (t % 1_000_000) as u32
        }));
        o.extend(w32(f.len() as u32));
        o.extend(w32(f.len() as u32));
        o.extend(f);
    }
    o
}

/// A pcapng file: section header, one interface (with if_tsresol = 9, ns),
/// one enhanced packet block per record.
pub(crate) fn pcapng(recs: &[(u64, Vec<u8>)], big: bool) -> Vec<u8> {
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
    let block = |ty: u32, body: Vec<u8>| {
        let mut body = body;
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        let n = (body.len() + 12) as u32;
        let mut b = Vec::new();
        b.extend(w32(ty));
        b.extend(w32(n));
        b.extend(body);
        b.extend(w32(n));
        b
    };
    let mut shb = Vec::new();
    shb.extend(w32(0x1a2b_3c4d));
    shb.extend(w16(1));
    shb.extend(w16(0));
    shb.extend([0xff; 8]);
    let mut idb = Vec::new();
    idb.extend(w16(101));
    idb.extend(w16(0));
    idb.extend(w32(0));
    idb.extend(w16(9)); // if_tsresol
    idb.extend(w16(1));
    idb.extend([9, 0, 0, 0]);
    idb.extend(w16(0)); // opt_endofopt
    idb.extend(w16(0));
    let mut o = block(0x0a0d_0d0a, shb);
    o.extend(block(1, idb));
    for (t, ip) in recs {
        let ns = t * 1000;
        let mut epb = Vec::new();
        epb.extend(w32(0));
        epb.extend(w32((ns >> 32) as u32));
        epb.extend(w32(ns as u32));
        epb.extend(w32(ip.len() as u32));
        epb.extend(w32(ip.len() as u32));
        epb.extend(ip);
        o.extend(block(6, epb));
    }
    o
}

#[test]
fn every_container_and_link_type_reads_the_same() {
    let t = traces::zero_window();
    let raw = finrst::pcap::to_bytes(&t).unwrap();
    let recs = records(&raw);
    let want = explain_bytes("x", &raw);
    let eth = |ip: &[u8]| [&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00][..], ip].concat();
    let vlan = |ip: &[u8]| {
        [
            &[
                2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x81, 0x00, 0, 5, 0x08, 0x00,
            ][..],
            ip,
        ]
        .concat()
    };
    let sll = |ip: &[u8]| {
        [
            &[0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00][..],
            ip,
        ]
        .concat()
    };
    let sll2 = |ip: &[u8]| {
        [
            &[
                0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0,
            ][..],
            ip,
        ]
        .concat()
    };
    let null_le = |ip: &[u8]| [&2u32.to_le_bytes()[..], ip].concat();
    let null_be = |ip: &[u8]| [&2u32.to_be_bytes()[..], ip].concat();
    let plain = |ip: &[u8]| ip.to_vec();
    let variants: Vec<(&str, Vec<u8>)> = vec![
        ("raw big-endian ns", classic(&recs, true, true, 101, &plain)),
        ("ethernet", classic(&recs, false, false, 1, &eth)),
        ("ethernet vlan", classic(&recs, true, false, 1, &vlan)),
        ("linux sll", classic(&recs, false, true, 113, &sll)),
        ("linux sll2", classic(&recs, false, false, 276, &sll2)),
        ("null le", classic(&recs, false, false, 0, &null_le)),
        ("null be", classic(&recs, true, false, 0, &null_be)),
        ("loop", classic(&recs, false, false, 108, &null_be)),
        ("pcapng le", pcapng(&recs, false)),
        ("pcapng be", pcapng(&recs, true)),
    ];
    for (name, bytes) in variants {
        let r = explain_bytes("x", &bytes);
        assert!(r.notes.is_empty(), "{name}: {:?}", r.notes);
        assert_eq!(r.tcp_segments, want.tcp_segments, "{name}");
        let (a, b) = (&r.connections[0], &want.connections[0]);
        assert_eq!(
            (a.cause_id, &a.ended, &a.first, &a.last),
            (b.cause_id, &b.ended, &b.first, &b.last),
            "{name}"
        );
    }
}

#[test]
fn a_truncated_pcap_says_where_it_stopped() {
    let raw = finrst::pcap::to_bytes(&traces::unread_close()).unwrap();
    let recs = records(&raw);
    // Cut in the middle of the fourth record's data.
    let upto: usize = 24 + recs[..3].iter().map(|(_, d)| 16 + d.len()).sum::<usize>() + 16 + 5;
    let r = explain_bytes("cut.pcap", &raw[..upto]);
    assert_eq!(r.tcp_segments, 3);
    assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
    assert!(
        r.notes[0].starts_with("pcap truncated after 3 packets"),
        "{:?}",
        r.notes
    );
    assert_eq!(r.connections[0].cause_id, Cause::StillOpen);
}

#[test]
fn non_tcp_packets_are_counted_not_fatal() {
    let raw = finrst::pcap::to_bytes(&traces::unread_close()).unwrap();
    let mut recs = records(&raw);
    let mut udp = recs[0].1.clone();
    udp[9] = 17;
    recs.insert(1, (recs[0].0, udp));
    recs.insert(2, (recs[0].0, vec![0x60, 0, 0, 0]));
    let r = explain_bytes(
        "x",
        &classic(&recs, false, false, 101, &|ip: &[u8]| ip.to_vec()),
    );
    assert_eq!(r.connections[0].cause_id, Cause::UnreadData);
    assert_eq!(
        r.notes,
        [
            "1 packet skipped (IP protocol 17, not TCP): #2",
            "1 packet skipped (IPv6 header cut short): #3"
        ]
    );
}

/// tcpdump's text of our pcaps, in the flag combinations people use,
/// explains the same as the pcap itself.
#[test]
fn tcpdump_text_in_every_flavour_explains_like_the_pcap() {
    let have = std::process::Command::new("tcpdump")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("tcpdump is not installed, and CI=true requires it");
        }
        println!(
            "SKIPPED tcpdump_text_in_every_flavour_explains_like_the_pcap: tcpdump not installed"
        );
        return;
    }
    let dir = std::env::temp_dir().join(format!("finrst-explain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, t) in traces::all() {
        let path = dir.join(format!("{name}.pcap"));
        finrst::pcap::write_file(&t, path.to_str().unwrap()).unwrap();
        let want = explain_bytes(name, &std::fs::read(&path).unwrap());
        for flags in [
            &["-nn"][..],
            &["-nn", "-S"],
            &["-tt", "-nn"],
            &["-tt", "-S", "-nn"],
            &["-tttt", "-nn"],
            &["-t", "-nn"],
            &["-n"],
        ] {
            let out = std::process::Command::new("tcpdump")
                .args(flags)
                .arg("-r")
                .arg(&path)
                .output()
                .unwrap();
            let r = explain_bytes("text", &out.stdout);
            assert!(r.notes.is_empty(), "{name} {flags:?}: {:?}", r.notes);
            assert_eq!(r.connections.len(), 1, "{name} {flags:?}");
            let (a, b) = (&r.connections[0], &want.connections[0]);
            assert_eq!(a.cause_id, b.cause_id, "{name} {flags:?}\n{}", r.to_text());
            assert_eq!(a.scenarios, b.scenarios, "{name} {flags:?}");
            // Same relative numbers, whatever -S said.
            let strip = |s: &str| s.split(" (").next().unwrap_or("").to_string();
            assert_eq!(strip(&a.ended), strip(&b.ended), "{name} {flags:?}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn json_output_has_the_cause_id() {
    let r = fixture("seed000-epollout-unread.txt");
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(v["connections"][0]["cause_id"], "unread-data");
    assert_eq!(
        v["connections"][0]["scenarios"][0],
        "seed000-epollout-unread"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = explain_bytes("x", &b).to_text();
    }

    #[test]
    fn random_bytes_behind_a_pcap_magic_never_panic(
        magic in 0usize..5,
        b in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let m: [&[u8]; 5] = [&[0xa1, 0xb2, 0xc3, 0xd4], &[0xd4, 0xc3, 0xb2, 0xa1], &[0xa1, 0xb2, 0x3c, 0x4d], &[0x4d, 0x3c, 0xb2, 0xa1], &[0x0a, 0x0d, 0x0d, 0x0a]];
        let bytes = [m[magic], &b[..]].concat();
        let _ = explain_bytes("x", &bytes).to_text();
    }

    #[test]
    fn corrupted_and_truncated_pcaps_never_panic(
        which in 0usize..5,
        cut in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        ng in any::<bool>(),
    ) {
        let t = traces::all().swap_remove(which).1;
        let raw = finrst::pcap::to_bytes(&t).unwrap();
        let mut bytes = if ng { pcapng(&records(&raw), which % 2 == 0) } else { raw };
        for (i, v) in flips {
            let n = bytes.len();
            bytes[i.index(n)] = v;
        }
        let n = bytes.len();
        bytes.truncate(cut.index(n + 1));
        let _ = explain_bytes("x", &bytes).to_text();
    }

    #[test]
    fn random_text_never_panics(s in "\\PC{0,300}") {
        let _ = explain_bytes("x", s.as_bytes()).to_text();
    }

    #[test]
    fn tcpdump_like_text_never_panics(
        lines in proptest::collection::vec(
            "([0-9:.]{0,16} )?(IP6? )?[a-z0-9.]{0,12} > [a-z0-9.]{0,12}:? ?(Flags \\[[SFRPU. ]{0,4}\\]?)?[, ]*(seq [0-9:.]{0,12})?,? ?(ack [0-9.]{0,11})?,? ?(win [0-9]{0,6})?,? ?(length [0-9]{0,5})?( [SFRP.]{1,3} [0-9]{1,10}:[0-9]{1,10}\\([0-9]{0,5}\\)? ack [0-9]{0,10} win [0-9]{0,5} <[a-z ]*>?)?",
            0..12,
        ),
    ) {
        let _ = explain_bytes("x", lines.join("\n").as_bytes()).to_text();
    }
}

/// The client closes; its FIN is acknowledged; the server closes 61 s
/// later, after the client's FIN_WAIT2 orphan expired (tcp_fin_timeout),
/// so its FIN meets no socket: a bare `R`. No scenario in `sim/` sends the
/// late FIN, so the trace is built here.
#[test]
fn late_fin_after_the_fin_wait2_orphan_expired() {
    use finrst::segment::Flags;
    use traces::{Builder, C, S};
    let mut b = Builder::new("fin-wait2-expired");
    b.handshake();
    b.seg(C, Flags::FIN | Flags::ACK, 0, Some("close() → FIN"));
    b.seg(S, Flags::ACK, 0, None);
    b.after(61_000_000);
    b.seg(S, Flags::FIN | Flags::ACK, 0, Some("close() → FIN"));
    b.seg(C, Flags::RST, 0, Some("no socket → R"));
    let r = explain_bytes("late", &finrst::pcap::to_bytes(&b.build()).unwrap());
    let c = &r.connections[0];
    assert_eq!(c.cause_id, Cause::FinWait2Expired, "{}", r.to_text());
    assert!(c.cause.contains("late FIN"), "{}", c.cause);
    assert_eq!(
        c.scenarios.first().map(String::as_str),
        Some("fin-wait2-timeout")
    );
    assert!(
        c.evidence.iter().any(|e| e.contains("61 s later")),
        "{:?}",
        c.evidence
    );

    // The same with late data instead of a FIN: the peer wrote after the
    // close; whether the orphan had expired is only a matter of time, and
    // the explanation says so.
    let mut b = Builder::new("late-data");
    b.handshake();
    b.seg(C, Flags::FIN | Flags::ACK, 0, Some("close() → FIN"));
    b.seg(S, Flags::ACK, 0, None);
    b.after(61_000_000);
    b.seg(S, Flags::PSH | Flags::ACK, 4, None);
    b.seg(C, Flags::RST, 0, Some("no socket → R"));
    let r = explain_bytes("late", &finrst::pcap::to_bytes(&b.build()).unwrap());
    let c = &r.connections[0];
    assert_eq!(c.cause_id, Cause::DataAfterFin, "{}", r.to_text());
    assert_eq!(
        c.scenarios[..2],
        ["data-after-close", "fin-wait2-timeout"],
        "{}",
        r.to_text()
    );
    assert!(
        c.cannot_tell
            .iter()
            .any(|e| e.contains("expired") && e.contains("61 s here")),
        "{:?}",
        c.cannot_tell
    );
}
