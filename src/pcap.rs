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
/// 65535 bytes).
pub const SNAPLEN: u32 = 262_144;

/// Writes the 24-byte global header.
pub fn write_header<W: Write + ?Sized>(w: &mut W) -> io::Result<()> {
    w.write_all(&MAGIC_US.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?; // version 2.4
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&0i32.to_le_bytes())?; // thiszone: timestamps are UTC
    w.write_all(&0u32.to_le_bytes())?; // sigfigs
    w.write_all(&SNAPLEN.to_le_bytes())?;
    w.write_all(&LINKTYPE_RAW.to_le_bytes())
}

/// Writes one record: the segment's real IPv4/TCP bytes at its time.
pub fn write_record<W: Write + ?Sized>(w: &mut W, s: &Segment) -> io::Result<()> {
    let bytes = s.encode_ipv4();
    let secs = u32::try_from(s.time_us / 1_000_000).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "segment time {} µs does not fit a pcap timestamp",
                s.time_us
            ),
        )
    })?;
    w.write_all(&secs.to_le_bytes())?;
    w.write_all(&((s.time_us % 1_000_000) as u32).to_le_bytes())?;
    let n = bytes.len() as u32;
    w.write_all(&n.to_le_bytes())?; // captured length
    w.write_all(&n.to_le_bytes())?; // original length: nothing is cut
    w.write_all(&bytes)
}

/// Writes every segment of `segments` as a pcap stream.
pub fn write_segments<W: Write>(segments: &[Segment], mut w: W) -> io::Result<()> {
    write_header(&mut w)?;
    for s in segments {
        write_record(&mut w, s)?;
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
    let f = std::fs::File::create(path)?;
    write_trace(trace, io::BufWriter::new(f))
}
