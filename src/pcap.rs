//! Writes a trace as a classic pcap file that Wireshark and tcpdump open.
//!
//! Format choices, and why:
//! - Classic pcap (not pcapng): every tool reads it, and a trace has one
//!   "interface" and nothing per packet that pcapng would add.
//! - Link type `LINKTYPE_RAW` (101): each record is the IPv4 packet itself,
//!   with no fake Ethernet header. The engines produce IPv4 packets
//!   ([`Segment::encode_ipv4`]), so the file holds exactly the bytes the
//!   trace describes, with valid IP and TCP checksums.
//! - Microsecond timestamps, little-endian header (magic `a1b2c3d4` written
//!   in the host's order of the machines this runs on, as libpcap does).
//!   The timestamp is the trace's time: virtual time counted from the epoch
//!   (0 = 1970-01-01 00:00:00 UTC) for the model and smoltcp, the real
//!   offset from the run's start for the linux engine. Wireshark's
//!   "seconds since beginning of capture" column then reads like the trace.
//! - Snap length: whole packets by default (the header says 262144, as
//!   `tcpdump -s 0` writes). `--pcap-snaplen N` keeps the first N bytes
//!   of each packet, as `tcpdump -s N`: each record's captured length is
//!   then at most N and its original length the packet's, and the header's
//!   snap length is N. The checksums stay those of the whole packet (a
//!   pattern payload's sum is computed without producing its bytes), so a
//!   bulk run's capture of headers costs the headers only.
//! - Lost segments (`lost == true`, removed by a fault step) are written
//!   too: they were sent, and a capture taken at the sender's interface
//!   shows them. Classic pcap has no per-packet comment to mark them; the
//!   trace's text (`[lost]`) and the ladder (dashed, ✕) do.

use crate::segment::Segment;
use crate::trace::Trace;
use std::io::{self, Write};

/// `LINKTYPE_RAW`: the packet begins with the IPv4 (or IPv6) header.
pub const LINKTYPE_RAW: u32 = 101;
/// The magic of a classic pcap with microsecond timestamps.
pub const MAGIC_US: u32 = 0xa1b2_c3d4;
/// Large enough for any segment a trace holds (an IPv4 packet is at most
/// 65535 bytes): the header's snap length when packets are kept whole
/// (tcpdump's `-s 0` writes the same).
pub const SNAPLEN: u32 = 262_144;
/// The most header bytes a segment's packet has: IPv4's 20 (no options)
/// and TCP's 60. A snap length at least this large keeps every header.
pub const MAX_HEADERS: u32 = 80;

/// Writes the 24-byte global header of a capture whose packets are whole.
pub fn write_header<W: Write + ?Sized>(w: &mut W) -> io::Result<()> {
    Recorder::new(None).write_header(w)
}

/// Writes one record: the segment's real IPv4/TCP bytes at its time.
pub fn write_record<W: Write + ?Sized>(w: &mut W, s: &Segment) -> io::Result<()> {
    Recorder::new(None).write_record(w, s)
}

/// Writes a capture's header and records with one snap length, reusing one
/// buffer for every packet.
#[derive(Debug, Default)]
pub struct Recorder {
    /// The most bytes kept of each packet (`None`: the whole packet).
    snaplen: Option<u32>,
    buf: Vec<u8>,
}

impl Recorder {
    /// A recorder that cuts each packet to `snaplen` bytes, as `tcpdump -s`
    /// does (`None` or 0: whole packets, as `tcpdump -s 0`). The record
    /// keeps the packet's real length and checksums: a cut packet reads as
    /// one captured with a short snap length.
    pub fn new(snaplen: Option<u32>) -> Recorder {
        Recorder {
            snaplen: snaplen.filter(|&n| n > 0 && n < SNAPLEN),
            buf: Vec::new(),
        }
    }

    /// Whether the records need the payload bytes (a snap length that cuts
    /// into the headers or just past them needs none).
    pub fn needs_payload(&self) -> bool {
        self.snaplen.is_none_or(|n| n > MAX_HEADERS)
    }

    /// Writes the 24-byte global header.
    pub fn write_header<W: Write + ?Sized>(&self, w: &mut W) -> io::Result<()> {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&MAGIC_US.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes()); // version 2.4
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone 0 (timestamps are UTC), sigfigs 0.
        h[16..20].copy_from_slice(&self.snaplen.unwrap_or(SNAPLEN).to_le_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_RAW.to_le_bytes());
        w.write_all(&h)
    }

    /// Writes one record: the segment's real IPv4/TCP bytes at its time,
    /// cut to the snap length.
    pub fn write_record<W: Write + ?Sized>(&mut self, w: &mut W, s: &Segment) -> io::Result<()> {
        let secs = u32::try_from(s.time_us / 1_000_000).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "segment time {} µs does not fit a pcap timestamp",
                    s.time_us
                ),
            )
        })?;
        let b = &mut self.buf;
        b.clear();
        b.extend_from_slice(&secs.to_le_bytes());
        b.extend_from_slice(&((s.time_us % 1_000_000) as u32).to_le_bytes());
        b.extend_from_slice(&[0; 8]);
        let max = self.snaplen.map_or(usize::MAX, |n| n as usize);
        let orig = s.encode_ipv4_prefix(max, b);
        let incl = (b.len() - 16) as u32;
        b[8..12].copy_from_slice(&incl.to_le_bytes()); // captured length
        b[12..16].copy_from_slice(&(orig as u32).to_le_bytes()); // original length
        w.write_all(b)
    }
}

/// Writes every segment of `segments` as a pcap stream.
pub fn write_segments<W: Write>(segments: &[Segment], w: W) -> io::Result<()> {
    write_segments_snaplen(segments, w, None)
}

/// [`write_segments`] with each packet cut to `snaplen` bytes
/// ([`Recorder::new`]).
pub fn write_segments_snaplen<W: Write>(
    segments: &[Segment],
    mut w: W,
    snaplen: Option<u32>,
) -> io::Result<()> {
    let mut r = Recorder::new(snaplen);
    r.write_header(&mut w)?;
    for s in segments {
        r.write_record(&mut w, s)?;
    }
    w.flush()
}

/// Writes a trace as a pcap stream.
pub fn write_trace<W: Write>(trace: &Trace, w: W) -> io::Result<()> {
    write_segments(&trace.segments, w)
}

/// The pcap file of a trace, in memory. Fails only on a time past 2106.
pub fn to_bytes(trace: &Trace) -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    write_trace(trace, &mut v)?;
    Ok(v)
}

/// Writes a trace to a pcap file at `path`.
pub fn write_file(trace: &Trace, path: &str) -> io::Result<()> {
    write_file_snaplen(trace, path, None)
}

/// [`write_file`] with each packet cut to `snaplen` bytes
/// ([`Recorder::new`]).
pub fn write_file_snaplen(trace: &Trace, path: &str, snaplen: Option<u32>) -> io::Result<()> {
    let f = std::fs::File::create(path)?;
    write_segments_snaplen(&trace.segments, io::BufWriter::new(f), snaplen)
}
