//! `finrst explain` in the situations other people's captures bring:
//! a start mid-connection, missing segments, one direction, scans,
//! injected RSTs, hosts that are not Linux, times that rule a cause out,
//! several RSTs. Each capture is built here, segment by segment, as the
//! situation puts it on the wire (the numbers follow what a Linux host
//! sends: no-socket resets take their seq from the ack they answer,
//! active resets carry snd_nxt and rcv_nxt).

use finrst::explain::{Cause, IpInfo, Packet, Report, TcpOptions, explain_packets};
use finrst::segment::Flags;

const C: &str = "10.0.0.1.40000";
const S: &str = "10.0.0.2.80";
const CI: u32 = 1_000_000; // client ISN
const SI: u32 = 5_000_000; // server ISN

/// A segment: `from_client`, tcpdump flags (`S`, `S.`, `.`, `P.`, `F.`,
/// `R`, `R.`), relative seq and ack, length, window, time in ms.
struct Seg<'a> {
    c: bool,
    flags: &'a str,
    seq: u32,
    ack: u32,
    len: u32,
    win: u32,
    ms: u64,
}

fn seg(c: bool, flags: &str, seq: u32, ack: u32, len: u32, ms: u64) -> Seg<'_> {
    Seg {
        c,
        flags,
        seq,
        ack,
        len,
        win: 500,
        ms,
    }
}

fn flags(s: &str) -> Flags {
    let mut f = 0u8;
    for ch in s.chars() {
        f |= match ch {
            'F' => 0x01,
            'S' => 0x02,
            'R' => 0x04,
            'P' => 0x08,
            '.' => 0x10,
            _ => panic!("flag {ch}"),
        };
    }
    Flags(f)
}

fn packet(i: usize, s: &Seg, ttl: [u8; 2]) -> Packet {
    let (src, dst, isn, peer) = if s.c { (C, S, CI, SI) } else { (S, C, SI, CI) };
    let f = flags(s.flags);
    Packet {
        index: i + 1,
        line: None,
        time_ns: Some(1_700_000_000_000_000_000 + s.ms * 1_000_000),
        time_text: String::new(),
        src: src.into(),
        dst: dst.into(),
        flags: f,
        seq: Some(isn.wrapping_add(s.seq)),
        ack: f.ack().then(|| peer.wrapping_add(s.ack)),
        win: Some(s.win),
        len: s.len,
        absolute: true,
        ip: IpInfo {
            version: 4,
            ttl: Some(ttl[usize::from(!s.c)]),
            id: None,
            df: Some(true),
        },
        options: TcpOptions::default(),
        rst_payload: None,
    }
}

fn explain_with(segs: &[Seg], ttl: [u8; 2]) -> Report {
    let packets = segs
        .iter()
        .enumerate()
        .map(|(i, s)| packet(i, s, ttl))
        .collect();
    explain_packets("built", "test", packets, Vec::new())
}

fn explain(segs: &[Seg]) -> Report {
    explain_with(segs, [64, 64])
}

fn handshake() -> Vec<Seg<'static>> {
    vec![
        seg(true, "S", 0, 0, 0, 0),
        seg(false, "S.", 0, 1, 0, 1),
        seg(true, ".", 1, 1, 0, 2),
    ]
}

#[test]
fn a_capture_that_starts_mid_stream_is_not_an_unfinished_handshake() {
    // No SYN: data flowing, then the client resets late in a transfer.
    let r = explain(&[
        seg(false, "P.", 90_001, 201, 1000, 0),
        seg(true, ".", 201, 91_001, 0, 1),
        seg(false, "P.", 91_001, 201, 1000, 2),
        seg(true, ".", 201, 92_001, 0, 3),
    ]);
    let c = &r.connections[0];
    assert_eq!(c.cause_id, Cause::StillOpen, "{}", r.to_text());
    assert!(c.capture.iter().any(|n| n.contains("mid-connection")));
    assert!(c.opened_by.is_none());

    let r = explain(&[
        seg(false, "P.", 90_001, 201, 1000, 0),
        seg(true, ".", 201, 91_001, 0, 1),
        seg(true, "R.", 201, 91_001, 0, 2),
    ]);
    let c = &r.connections[0];
    assert!(
        !c.cause.contains("right after the handshake"),
        "{}",
        r.to_text()
    );
    assert_eq!(c.cause_id, Cause::UnreadData, "{}", r.to_text());
}

#[test]
fn an_ack_beyond_the_captured_data_counts_as_received_and_missing() {
    // The server's 235-byte response is not in the capture; the client's
    // R. acknowledges it.
    let mut s = handshake();
    s.push(seg(true, "P.", 1, 1, 20, 3));
    s.push(seg(false, ".", 1, 21, 0, 4));
    s.push(seg(true, "R.", 21, 236, 0, 5));
    let r = explain(&s);
    let c = &r.connections[0];
    assert_eq!(c.cause_id, Cause::UnreadData, "{}", r.to_text());
    assert!(c.cause.contains("235 bytes"), "{}", c.cause);
    assert!(
        c.capture
            .iter()
            .any(|n| n.contains("235 bytes") && n.contains("missing")),
        "{:?}",
        c.capture
    );
}

#[test]
fn a_hole_in_the_sequence_is_said() {
    let mut s = handshake();
    s.push(seg(false, "P.", 1, 1, 100, 3));
    // 101..201 lost to the capture
    s.push(seg(false, "P.", 201, 1, 100, 4));
    s.push(seg(true, ".", 1, 301, 0, 5));
    let r = explain(&s);
    let c = &r.connections[0];
    assert!(
        c.capture
            .iter()
            .any(|n| n.contains("100 bytes of 10.0.0.2.80")),
        "{:?}",
        c.capture
    );
}

#[test]
fn one_direction_is_said_and_no_close_wait_is_claimed() {
    // Only the client's segments: SYN, ACK, request, ACKs, FIN.
    let r = explain(&[
        seg(true, "S", 0, 0, 0, 0),
        seg(true, ".", 1, 1, 0, 2),
        seg(true, "P.", 1, 1, 50, 3),
        seg(true, ".", 51, 301, 0, 5),
        seg(true, "F.", 51, 302, 0, 6),
    ]);
    let c = &r.connections[0];
    assert_eq!(c.cause_id, Cause::OneDirection, "{}", r.to_text());
    assert!(
        !c.cause
            .contains(&format!("{}", finrst::vocab::TcpState::CloseWait))
    );
    assert!(c.capture.iter().any(|n| n.contains("only one direction")));
}

#[test]
fn unanswered_syns_are_a_scan_or_a_filter_not_a_late_capture() {
    let r = explain(&[
        seg(true, "S", 0, 0, 0, 0),
        seg(true, "S", 0, 0, 0, 1000),
        seg(true, "S", 0, 0, 0, 3000),
    ]);
    let c = &r.connections[0];
    assert_eq!(c.cause_id, Cause::NoAnswer, "{}", r.to_text());
    assert!(c.cause.contains("filtered"));
    // A reset at ISN + 1 answers a SYN-ACK the capture does not hold.
    let r = explain(&[seg(true, "S", 0, 0, 0, 0), seg(true, "R", 1, 0, 0, 1)]);
    let c = &r.connections[0];
    assert_eq!(c.cause_id, Cause::SynSentClosed, "{}", r.to_text());
    assert!(c.cause.contains("does not hold"));
}

#[test]
fn an_rst_with_another_ttl_is_not_blamed_on_the_endpoint() {
    let mut s = handshake();
    s.push(seg(true, "P.", 1, 1, 20, 3));
    s.push(seg(false, "P.", 1, 21, 100, 4));
    s.push(seg(true, ".", 21, 101, 0, 5));
    s.push(seg(false, "R.", 101, 21, 0, 6));
    let mut packets: Vec<Packet> = s
        .iter()
        .enumerate()
        .map(|(i, x)| packet(i, x, [64, 52]))
        .collect();
    let last = packets.len() - 1;
    packets[last].ip.ttl = Some(250);
    packets[last].rst_payload = Some(b"TCP RST from remote system".to_vec().into());
    let r = explain_packets("built", "test", packets, Vec::new());
    let c = &r.connections[0];
    assert_eq!(c.cause_id, Cause::Injected, "{}", r.to_text());
    assert!(c.evidence.iter().any(|e| e.contains("TTL is 250")));
    assert!(
        c.evidence
            .iter()
            .any(|e| e.contains("TCP RST from remote system"))
    );
    assert_eq!(
        c.rsts[0].payload.as_deref(),
        Some("TCP RST from remote system")
    );
    // The same RST with the server's own TTL and no payload is the
    // server's own close.
    let r = explain_with(&s, [64, 52]);
    assert_eq!(r.connections[0].cause_id, Cause::UnreadData);
}

#[test]
fn a_host_with_ttl_128_is_not_assumed_to_be_linux() {
    let mut s = handshake();
    s.push(seg(false, "P.", 1, 1, 100, 3));
    s.push(seg(true, ".", 1, 101, 0, 4));
    s.push(Seg {
        win: 0,
        ..seg(true, "R.", 1, 101, 0, 5)
    });
    let r = explain_with(&s, [128, 64]);
    let c = &r.connections[0];
    let note = c
        .capture
        .iter()
        .find(|n| n.contains("may not be Linux"))
        .unwrap_or_else(|| panic!("{}", r.to_text()));
    assert!(note.contains("TTL 128") && note.contains("win 0"), "{note}");
    // 64 and an RST carrying its window: nothing said.
    let mut s = handshake();
    s.push(seg(false, "P.", 1, 1, 100, 3));
    s.push(seg(true, "R.", 1, 101, 0, 5));
    let r = explain(&s);
    assert!(r.connections[0].capture.is_empty(), "{}", r.to_text());
}

#[test]
fn a_socket_gone_in_a_tenth_of_a_second_did_not_expire_in_fin_wait2() {
    // The client closes; the server acknowledges the FIN, then its own
    // FIN 97 ms later gets a bare R.
    let close = |gap_ms: u64| {
        let mut s = handshake();
        s.push(seg(true, "F.", 1, 1, 0, 10));
        s.push(seg(false, ".", 1, 2, 0, 11));
        s.push(seg(false, "F.", 1, 2, 0, 11 + gap_ms));
        s.push(seg(true, "R", 2, 0, 0, 12 + gap_ms));
        explain(&s)
    };
    let r = close(97);
    let c = &r.connections[0];
    assert_eq!(c.cause_id, Cause::Linger2Orphan, "{}", r.to_text());
    assert!(c.cause.contains("too soon"), "{}", c.cause);
    let r = close(61_000);
    assert_eq!(r.connections[0].cause_id, Cause::FinWait2Expired);
}

#[test]
fn a_bare_rst_is_matched_to_the_segment_whose_ack_it_carries() {
    // The client closes; the server's data crosses the FIN (it does not
    // acknowledge it); the server then acknowledges the FIN. The client's
    // bare R carries the data's ack: it answers the data.
    let mut s = handshake();
    s.push(seg(true, "F.", 1, 1, 0, 10));
    s.push(seg(false, "P.", 1, 1, 10, 11));
    s.push(seg(false, ".", 11, 2, 0, 12));
    s.push(seg(true, "R", 1, 0, 0, 13));
    let r = explain(&s);
    let c = &r.connections[0];
    assert_eq!(c.cause_id, Cause::DataAfterFin, "{}", r.to_text());
    assert!(
        c.evidence.iter().any(|e| e.contains("crossed")),
        "{}",
        r.to_text()
    );
}

#[test]
fn every_rst_of_a_connection_is_listed() {
    let mut s = handshake();
    s.push(seg(false, "P.", 1, 1, 100, 3));
    s.push(seg(true, ".", 1, 101, 0, 4));
    s.push(seg(true, "R.", 1, 101, 0, 5));
    s.push(seg(false, "P.", 101, 1, 100, 6));
    s.push(seg(true, "R", 1, 0, 0, 7));
    s.push(seg(false, "P.", 201, 1, 100, 8));
    s.push(seg(true, "R", 1, 0, 0, 9));
    let r = explain(&s);
    let c = &r.connections[0];
    assert_eq!(c.rst_count, 3);
    assert_eq!(c.rsts.len(), 3);
    assert!(c.evidence.iter().any(|e| e.starts_with("3 RSTs in all")));
    assert_eq!(r.summary.rsts, 3);
}

#[test]
fn the_rfc2525_hang_with_a_fin_is_not_called_half_closed() {
    // The model's always-FIN run of the scenario, written as a pcap and
    // read back.
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/sim/rfc2525-zero-window.sim");
    let opts = finrst::RunOptions {
        policy: finrst::Policy::AlwaysFin,
        ..Default::default()
    };
    let t = finrst::run_file(file, finrst::EngineKind::Model, &opts).unwrap();
    let pcap = finrst::pcap::to_bytes(&t).unwrap();
    let r = finrst::explain::explain_bytes("af.pcap", &pcap);
    let c = &r.connections[0];
    assert_eq!(c.cause_id, Cause::ZeroWindowHang, "{}", r.to_text());
    assert!(c.cause.contains("RFC 2525"));
    assert!(!c.evidence.iter().any(|e| e.contains("had read them all")));
}

#[path = "../common/gen_capture.rs"]
mod gen_capture;

#[test]
fn connections_are_handed_over_while_the_capture_is_still_being_read() {
    use std::cell::Cell;
    use std::io::Read;
    use std::rc::Rc;
    struct Counted<'a>(&'a [u8], Rc<Cell<usize>>);
    impl Read for Counted<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.read(buf)?;
            self.1.set(self.1.get() + n);
            Ok(n)
        }
    }
    let mut pcap = Vec::new();
    gen_capture::write_many(&mut pcap, 20_000, 20).unwrap();
    let read = Rc::new(Cell::new(0));
    let (mut early, mut all, mut in_order) = (0u32, 0u32, true);
    let mut last_id = 0;
    let end =
        finrst::explain::explain_stream(Counted(&pcap, read.clone()), &Default::default(), |c| {
            all += 1;
            if read.get() < pcap.len() / 2 {
                early += 1;
            }
            in_order &= c.id == last_id + 1;
            last_id = c.id;
            // One in four resets over an unread response, the rest close.
            let want = if c.id % 4 == 1 {
                Cause::UnreadData
            } else {
                Cause::NormalClose
            };
            assert_eq!(c.cause_id, want, "{}", c.to_text());
        })
        .unwrap();
    assert_eq!(all, 20_000);
    assert!(early > 5_000, "{early} handed over in the first half");
    assert!(in_order, "connections come in order of first appearance");
    assert_eq!(end.summary.connections, 20_000);
    assert_eq!(end.summary.causes[&Cause::UnreadData], 5_000);
}

#[test]
fn a_big_text_report_details_only_what_did_not_close_normally() {
    let mut pcap = Vec::new();
    gen_capture::write_many(&mut pcap, 80, 20).unwrap();
    let dir = std::env::temp_dir().join(format!("finrst-situations-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("eighty.pcap");
    std::fs::write(&f, &pcap).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_finrst"))
            .arg("explain")
            .arg(&f)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let text = run(&[]);
    // 80 connections, one in four reset: 20 detailed, 60 counted.
    assert_eq!(text.matches("\nconnection ").count(), 20, "{text}");
    assert!(
        text.contains("60 connections that closed normally"),
        "{text}"
    );
    assert_eq!(run(&["--all"]).matches("\nconnection ").count(), 80);
    let terse = run(&["--terse"]);
    assert_eq!(terse.lines().filter(|l| l.contains(" <-> ")).count(), 80);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_ip_id_of_zero_on_a_bare_rst_is_linux_not_an_injector() {
    // Linux's no-socket reset goes out with IP ID 0, same TTL.
    let mut s = handshake();
    s.push(seg(true, "F.", 1, 1, 0, 10));
    s.push(seg(false, ".", 1, 2, 0, 11));
    s.push(seg(false, "P.", 1, 2, 10, 12));
    s.push(seg(true, "R", 2, 0, 0, 13));
    let mut packets: Vec<Packet> = s
        .iter()
        .enumerate()
        .map(|(i, x)| packet(i, x, [64, 64]))
        .collect();
    for (i, p) in packets.iter_mut().enumerate() {
        p.ip.id = Some(if p.flags.rst() { 0 } else { 1000 + i as u16 });
    }
    let r = explain_packets("built", "test", packets, Vec::new());
    assert_eq!(
        r.connections[0].cause_id,
        Cause::DataAfterFin,
        "{}",
        r.to_text()
    );
}

#[test]
fn an_rst_the_connection_survives_did_not_end_it() {
    let mut s = handshake();
    s.push(seg(true, "R.", 1, 1, 0, 3));
    s.push(seg(true, "P.", 1, 1, 100, 4));
    s.push(seg(false, ".", 1, 101, 0, 5));
    let r = explain(&s);
    let c = &r.connections[0];
    assert_eq!(c.cause_id, Cause::Injected, "{}", r.to_text());
    assert!(
        c.cause.contains("did not end the connection"),
        "{}",
        c.cause
    );
}

#[test]
fn a_lone_rst_mid_stream_does_not_prefer_linger_zero() {
    let r = explain(&[seg(true, "R.", 5000, 9000, 0, 0)]);
    let c = &r.connections[0];
    assert!(
        c.cannot_tell.iter().any(|t| t.contains("mid-connection")),
        "{}",
        r.to_text()
    );
    assert!(!c.cannot_tell.iter().any(|t| t.contains("likely one")));
}

#[test]
fn a_reset_from_syn_sent_is_the_connecting_socket_not_a_gone_one() {
    // SYN; a stale ACK (ack 7777, not ISN + 1); the client's R carries
    // that ack; the same SYN again completes the handshake.
    let r = explain(&[
        seg(true, "S", 0, 0, 0, 0),
        seg(false, ".", 300, 7777, 0, 1),
        seg(true, "R", 7777, 0, 0, 2),
        seg(true, "S", 0, 0, 0, 1000),
        seg(false, "S.", 0, 1, 0, 1001),
        seg(true, ".", 1, 1, 0, 1002),
    ]);
    assert_eq!(r.connections.len(), 1, "{}", r.to_text());
    let c = &r.connections[0];
    assert_eq!(c.cause_id, Cause::SynSentBadAck, "{}", r.to_text());
    assert!(c.cause.contains("went on"), "{}", c.cause);
}

#[test]
fn crossed_fins_with_one_never_acknowledged_are_not_two_time_waits() {
    let mut s = handshake();
    s.push(seg(true, "F.", 1, 1, 0, 10));
    s.push(seg(false, "F.", 1, 1, 0, 10));
    s.push(seg(false, ".", 2, 2, 0, 11));
    s.push(seg(false, "F.", 1, 2, 0, 300));
    s.push(seg(false, "F.", 1, 2, 0, 900));
    let r = explain(&s);
    let c = &r.connections[0];
    assert!(c.cause.contains("never acknowledged"), "{}", r.to_text());
}

#[test]
fn impossible_flags_are_called_crafted() {
    let r = explain(&[seg(true, "SR", 0, 0, 0, 0)]);
    let c = &r.connections[0];
    assert!(
        c.capture.iter().any(|n| n.contains("crafted")),
        "{}",
        r.to_text()
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
    /// Any sequence of segments — any flags, numbers near the wrap,
    /// lengths, windows, TTLs, IDs, times going backwards — is explained
    /// without a panic, and every connection gets a cause in words.
    #[test]
    fn any_segments_are_explained_without_a_panic(
        segs in proptest::collection::vec(
            (
                proptest::prelude::any::<bool>(),
                proptest::prelude::any::<u8>(),
                proptest::prelude::any::<u32>(),
                proptest::prelude::any::<u32>(),
                0u32..70_000,
                proptest::prelude::any::<(u16, u8, u16, u64)>(),
                proptest::option::of(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)),
            ),
            1..40,
        )
    ) {
        let packets: Vec<Packet> = segs
            .iter()
            .enumerate()
            .map(|(i, (c, fl, seq, ack, len, (win, ttl, id, t), payload))| Packet {
                index: i + 1,
                line: None,
                time_ns: Some(*t),
                time_text: String::new(),
                src: if *c { C } else { S }.into(),
                dst: if *c { S } else { C }.into(),
                flags: Flags(*fl),
                seq: Some(*seq),
                ack: Some(*ack),
                win: Some(u32::from(*win)),
                len: *len,
                absolute: true,
                ip: IpInfo { version: 4, ttl: Some(*ttl), id: Some(*id), df: None },
                options: TcpOptions::default(),
                rst_payload: payload.clone().map(Into::into),
            })
            .collect();
        let r = explain_packets("random", "test", packets, Vec::new());
        for c in &r.connections {
            proptest::prop_assert!(!c.cause.is_empty(), "{}", r.to_text());
        }
        let _ = r.to_json();
    }
}
