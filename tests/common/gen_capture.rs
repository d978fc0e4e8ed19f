//! Synthetic captures of many connections, written by the tests and the
//! benchmark themselves (raw IPv4, headers only as `tcpdump -s 40` keeps
//! them; the IP total length still says how much data each carried).
//!
//! Connection `i` opens `i * gap_us` after the start and lasts about
//! 60 ms: handshake, a 100-byte request, a 300-byte response, then one in
//! four clients resets over a response it did not read (R.), the others
//! close with FIN both ways.

use std::io::{self, Write};

fn record(w: &mut impl Write, t_us: u64, hdr: &[u8; 40], len: u16) -> io::Result<()> {
    w.write_all(&((t_us / 1_000_000) as u32).to_le_bytes())?;
    w.write_all(&((t_us % 1_000_000) as u32).to_le_bytes())?;
    w.write_all(&40u32.to_le_bytes())?;
    w.write_all(&(40 + u32::from(len)).to_le_bytes())?;
    w.write_all(hdr)
}

#[allow(clippy::too_many_arguments)]
fn header(
    src: [u8; 4],
    dst: [u8; 4],
    sp: u16,
    dp: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    len: u16,
) -> [u8; 40] {
    let mut h = [0u8; 40];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&(40 + len).to_be_bytes());
    h[6] = 0x40; // DF
    h[8] = 64;
    h[9] = 6;
    h[12..16].copy_from_slice(&src);
    h[16..20].copy_from_slice(&dst);
    let t = &mut h[20..];
    t[0..2].copy_from_slice(&sp.to_be_bytes());
    t[2..4].copy_from_slice(&dp.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&500u16.to_be_bytes());
    h
}

/// Connection `i`'s packet at step `s` (`None`: none at that step).
fn packet_of(i: u32, s: usize) -> Option<([u8; 40], u16)> {
    let (syn, ack, psh, fin, rst) = (0x02u8, 0x10u8, 0x08u8, 0x01u8, 0x04u8);
    let srv = [10, 255, 0, 1];
    let cli = [10, (i >> 16) as u8, (i >> 8) as u8, i as u8];
    let cp = 40000 + (i % 20000) as u16;
    let ci = i.wrapping_mul(2_654_435_761);
    let si = i.wrapping_mul(40_503) ^ 0x5555_0000;
    let reset = i.is_multiple_of(4);
    let h = |src, dst, sp, dp, seq: u32, ackn: u32, f, len| {
        Some((header(src, dst, sp, dp, seq, ackn, f, len), len))
    };
    match s {
        0 => h(cli, srv, cp, 80, ci, 0, syn, 0),
        1 => h(srv, cli, 80, cp, si, ci + 1, syn | ack, 0),
        2 => h(cli, srv, cp, 80, ci + 1, si + 1, ack, 0),
        3 => h(cli, srv, cp, 80, ci + 1, si + 1, psh | ack, 100),
        4 => h(srv, cli, 80, cp, si + 1, ci + 101, psh | ack, 300),
        5 if reset => h(cli, srv, cp, 80, ci + 101, si + 301, rst | ack, 0),
        5 => h(cli, srv, cp, 80, ci + 101, si + 301, fin | ack, 0),
        6 if reset => None,
        6 => h(srv, cli, 80, cp, si + 301, ci + 102, fin | ack, 0),
        7 if reset => None,
        _ => h(cli, srv, cp, 80, ci + 102, si + 302, ack, 0),
    }
}

/// When, after the connection's start, each step's packet goes out (µs).
const OFFSETS_US: [u64; 8] = [0, 100, 200, 300, 10_000, 30_000, 30_100, 60_000];

/// Writes a pcap of `n` connections to `w`, connection `i` starting at
/// `i * gap_us`; returns the packets written.
pub fn write_many(w: &mut impl Write, n: u32, gap_us: u64) -> io::Result<u64> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&[0; 8])?;
    w.write_all(&65535u32.to_le_bytes())?;
    w.write_all(&101u32.to_le_bytes())?; // LINKTYPE_RAW
    // (time, connection, step), earliest first.
    let mut heap = BinaryHeap::new();
    let mut next = 0u32;
    let mut packets = 0;
    loop {
        let horizon = heap.peek().map(|Reverse((t, _, _))| *t);
        // Open every connection that starts before the next packet due.
        while next < n && horizon.is_none_or(|t| u64::from(next) * gap_us <= t) {
            heap.push(Reverse((u64::from(next) * gap_us, next, 0usize)));
            next += 1;
            if horizon.is_none() {
                break;
            }
        }
        let Some(Reverse((t, i, s))) = heap.pop() else {
            break;
        };
        if let Some((h, len)) = packet_of(i, s) {
            record(w, t, &h, len)?;
            packets += 1;
        }
        if s + 1 < OFFSETS_US.len() {
            let start = u64::from(i) * gap_us;
            heap.push(Reverse((start + OFFSETS_US[s + 1], i, s + 1)));
        }
    }
    Ok(packets)
}
