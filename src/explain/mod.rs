//! `finrst explain CAPTURE`: why did this real connection end the way it
//! did?
//!
//! Reads a capture as a stream ([`capture`]: pcap/pcapng, gzip or not;
//! [`text`]: tcpdump's text output), splits it into connections, and for each says how it ended, the
//! most likely cause on a Linux endpoint (after the kernel facts in
//! `__tcp_close`, `tcp_disconnect`, `tcp_rcv_state_process` and the
//! no-socket reset), what the capture cannot tell apart, and which scenario
//! in `sim/` reproduces the case.
//!
//! Three layers: [`facts`] gathers what the capture shows about each
//! connection packet by packet (memory bounded by the connections still
//! open, not by the file: [`Tracker`]), `rules` turns facts into a cause,
//! what supports it and what the capture cannot show, and the report
//! puts it in words (text, JSON, JSON Lines), a summary first.
//!
//! The reasoning uses only what is on the wire: who sent data, what each
//! side acknowledged, FINs, RSTs with or without the ACK flag, and zero
//! windows. It never sees what a program read, only what its kernel
//! acknowledged: that is the first thing every explanation is careful
//! about.

pub mod capture;
pub mod facts;
pub mod link;
pub mod notes;
mod rules;
pub mod scenarios;
mod stream;
pub mod text;

use crate::segment::Flags;
use serde::Serialize;
use std::fmt::Write as _;
use std::io;

pub use stream::{Filter, Options, Summary, TimeStyle, Tracker};

/// One TCP segment as a capture shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Packet {
    /// 1-based position among the TCP segments read (pcap: the record
    /// number in the file).
    pub index: usize,
    /// The text line it came from (text captures).
    pub line: Option<usize>,
    /// Nanoseconds: since the epoch (pcap), or as the text shows it (a
    /// time of day, epoch seconds). Kept to the nanosecond when the
    /// capture has it (pcap `a1b23c4d`, pcapng `if_tsresol`, `--nano`).
    pub time_ns: Option<u64>,
    /// The time as a text capture shows it; empty for pcap and pcapng,
    /// whose time is `time_ns` (the report writes it in the chosen
    /// [`TimeStyle`]).
    pub time_text: String,
    /// `host.port` as written (`localhost.37776`, `10.0.0.1.40000`,
    /// `my031089.sqa.cm4.tbsite.net.19500`, or a host alone when cut).
    pub src: String,
    pub dst: String,
    pub flags: Flags,
    /// As captured: absolute, or relative when tcpdump made it so.
    pub seq: Option<u32>,
    pub ack: Option<u32>,
    pub win: Option<u32>,
    pub len: u32,
    /// Sequence numbers are known to be absolute (pcap); text may mix.
    pub absolute: bool,
    /// What the IP header says about the sender, when the capture has it
    /// (pcap; tcpdump text with `-v`).
    pub ip: IpInfo,
    /// TCP options, when the capture shows them.
    pub options: TcpOptions,
    /// The first bytes of an RST's payload (RFC 9293 3.5.3 lets an RST
    /// carry diagnostic text; middleboxes such as F5 write their reason
    /// there). Kept for RSTs only, at most [`RST_PAYLOAD_KEEP`] bytes.
    pub rst_payload: Option<Box<[u8]>>,
}

/// How many bytes of an RST's payload a [`Packet`] keeps.
pub const RST_PAYLOAD_KEEP: usize = 64;

/// The IP layer of a captured segment: what tells one sender from another
/// pretending to be it (an injected RST carries the injector's TTL and IP
/// ID, not the host's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpInfo {
    /// 4 or 6; 0 when unknown (tcpdump text without addresses).
    pub version: u8,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: Option<u8>,
    /// IPv4 identification (IPv6 has none outside fragments).
    pub id: Option<u16>,
    /// IPv4 Don't Fragment.
    pub df: Option<bool>,
}

/// The TCP options of a segment that matter to explaining it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOptions {
    /// Whether the options were seen at all (a cut header, or text
    /// without them, leaves this false and every field `None`).
    pub seen: bool,
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_ok: bool,
    /// TSval, TSecr.
    pub ts: Option<(u32, u32)>,
}

impl Packet {
    /// Where to find it: `line 6` or `packet #6`.
    pub fn place(&self) -> String {
        match self.line {
            Some(l) => format!("line {l}"),
            None => format!("packet #{}", self.index),
        }
    }
}

/// Why a connection ended, as a stable id (JSON `cause_id`, tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// `R.` acknowledging data: close() (or exit) with unread data.
    UnreadData,
    /// FIN first (shutdown(SHUT_WR)), later `R.` over unread data.
    ShutdownWrThenUnread,
    /// `R.` with nothing received: SO_LINGER {1, 0}.
    LingerZero,
    /// The receiver advertised a zero window, then reset.
    ZeroWindowRst,
    /// FIN from one side, data from the other, then RST: wrote after close.
    DataAfterFin,
    /// `R` without ACK answering a segment: no socket any more.
    NoSocket,
    /// `R` answering a SYN-ACK: the connecting side gave up in SYN_SENT.
    SynSentClosed,
    /// RST answering a SYN: nothing listening.
    Refused,
    /// `R` from the connecting side answering an ACK that does not
    /// acknowledge its SYN (SYN_SENT's reset_and_undo): it goes on
    /// connecting.
    SynSentBadAck,
    /// FIN, then `R.` with nothing unread: close() in FIN_WAIT2 with
    /// TCP_LINGER2 < 0, or an abortive close after shutdown(SHUT_WR).
    AbortAfterFin,
    /// FIN, the peer's ACK of it, then a bare `R` answering that ACK: an
    /// orphan that may not wait in FIN_WAIT2 (TCP_LINGER2 < 0).
    Linger2Orphan,
    /// FIN acknowledged, then the peer's later FIN or ACK gets a bare `R`:
    /// the FIN_WAIT2 orphan had expired (tcp_fin_timeout).
    FinWait2Expired,
    /// `R.` from the accepting side with nothing exchanged: the listener
    /// was closed with the connection in its accept queue.
    ListenerClosed,
    /// Keep-alive probes unanswered, then `R.` from the prober:
    /// tcp_keepalive_timer gave up (TCP_KEEPCNT, or TCP_USER_TIMEOUT).
    KeepaliveTimeout,
    /// An RST whose TTL, IP ID or payload says it did not come from the
    /// host it names: a middlebox or an injector.
    Injected,
    /// FIN, FIN, ACK.
    NormalClose,
    /// Both FINs crossed: each side closed before it had the other's FIN.
    SimultaneousClose,
    /// One FIN only: half-closed at the end of the capture.
    HalfClosed,
    /// A zero window being probed, no end.
    ZeroWindowHang,
    /// Data retransmitted without an acknowledgment, then silence: the
    /// retransmission timer gave up (tcp_retries2 or TCP_USER_TIMEOUT),
    /// which sends no RST.
    RetransmitTimeout,
    /// SYN and SYN-ACK without the handshake's last ACK.
    HandshakeIncomplete,
    /// SYNs from one side and nothing back.
    NoAnswer,
    /// Only one side's segments are in the capture.
    OneDirection,
    /// No FIN, no RST.
    StillOpen,
}

/// How a connection ended, in the summary's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ending {
    /// A FIN each way.
    Fin,
    /// An RST.
    Rst,
    /// One FIN.
    HalfClosed,
    /// Neither FIN nor RST.
    Open,
    /// The handshake did not complete, or was not answered.
    NoHandshake,
    /// One direction captured: the ending cannot be seen.
    Unknown,
}

impl Cause {
    /// The JSON id (`unread-data`): the serde name, the one definition.
    pub fn id(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Which kind of ending this cause explains.
    pub fn ending(self) -> Ending {
        use Cause::*;
        match self {
            UnreadData | ShutdownWrThenUnread | LingerZero | ZeroWindowRst | DataAfterFin
            | NoSocket | SynSentClosed | SynSentBadAck | Refused | AbortAfterFin
            | Linger2Orphan | FinWait2Expired | ListenerClosed | KeepaliveTimeout | Injected => {
                Ending::Rst
            }
            NormalClose | SimultaneousClose => Ending::Fin,
            HalfClosed => Ending::HalfClosed,
            ZeroWindowHang | StillOpen | RetransmitTimeout => Ending::Open,
            HandshakeIncomplete | NoAnswer => Ending::NoHandshake,
            OneDirection => Ending::Unknown,
        }
    }
}

impl Ending {
    /// Words for the summary.
    pub fn words(self) -> &'static str {
        match self {
            Ending::Fin => "closed with FIN both ways",
            Ending::Rst => "reset (RST)",
            Ending::HalfClosed => "half-closed (one FIN)",
            Ending::Open => "still open (no FIN or RST)",
            Ending::NoHandshake => "no handshake (unanswered or incomplete)",
            Ending::Unknown => "one direction captured (ending not seen)",
        }
    }
}

/// One RST segment of a connection, as typed fields.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RstReport {
    /// The endpoint that sent it (`10.0.0.1.80`).
    pub from: String,
    /// Frame number (pcap record, 1-based as Wireshark shows it).
    pub frame: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_ns: Option<u64>,
    /// `R` or `R.` (tcpdump's letters).
    pub flags: String,
    /// Relative sequence and acknowledgment numbers.
    pub seq: Option<u32>,
    pub ack: Option<u32>,
    pub win: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u8>,
    /// Its payload as text, when it carried readable text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

/// The explanation of one connection.
#[derive(Clone, Debug, Serialize)]
pub struct Connection {
    /// 1-based, in order of first appearance.
    pub id: usize,
    /// Wireshark's `tcp.stream` number for the same connection (0-based).
    pub stream: usize,
    /// The two endpoints, the opener (SYN sender) first when known.
    pub a: String,
    pub b: String,
    pub opened_by: Option<String>,
    pub segments: usize,
    /// Times as the capture shows them (text) or as chosen ([`TimeStyle`]).
    pub first: String,
    pub last: String,
    pub first_frame: usize,
    pub last_frame: usize,
    pub first_time_ns: Option<u64>,
    pub last_time_ns: Option<u64>,
    /// Bytes of data seen from `a` and from `b`.
    pub bytes: [u64; 2],
    /// How it ended, on the wire.
    pub ended: String,
    pub cause_id: Cause,
    /// The most likely reason, one sentence.
    pub cause: String,
    /// The kernel path behind it.
    pub why: String,
    /// What in the capture supports it.
    pub evidence: Vec<String>,
    /// What the capture cannot tell apart.
    pub cannot_tell: Vec<String>,
    /// What the capture itself lacks: a start mid-connection, one
    /// direction, missing segments, a host that may not be Linux.
    pub capture: Vec<String>,
    /// Scenario names in `sim/` (without `.sim`), the closest first.
    pub scenarios: Vec<String>,
    /// Every RST (up to [`facts::RSTS_KEPT`]); `rst_count` counts all.
    pub rsts: Vec<RstReport>,
    pub rst_count: u64,
}

impl Connection {
    /// The Wireshark display filter that shows this connection.
    pub fn display_filter(&self) -> String {
        format!("tcp.stream eq {}", self.stream)
    }
}

/// Everything `finrst explain` says about one capture.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub source: String,
    pub format: String,
    pub tcp_segments: usize,
    pub summary: Summary,
    pub connections: Vec<Connection>,
    /// What could not be read.
    pub notes: Vec<String>,
    /// Where reading stopped, when the capture is cut short or corrupt:
    /// the connections are those of the packets before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<capture::Stopped>,
}

/// Reads a capture (pcap, pcapng, or tcpdump text, any of them gzip-
/// compressed) from `input` as a stream, and explains it. `source` names
/// it in the report. `Err` only when the first read fails; a capture
/// damaged later on gives a report of what came before, and says where
/// it stopped ([`Report::stopped`]).
///
/// The report holds every connection: for captures too large for that,
/// [`explain_stream`] hands each connection over as it is explained.
pub fn explain_reader(source: &str, input: impl io::Read) -> io::Result<Report> {
    explain_reader_with(source, input, &Options::default())
}

/// [`explain_reader`] with options (filters, time style).
pub fn explain_reader_with(
    source: &str,
    input: impl io::Read,
    opts: &Options,
) -> io::Result<Report> {
    let mut connections = Vec::new();
    let end = explain_stream(input, opts, |c| connections.push(c))?;
    Ok(Report {
        source: source.into(),
        format: end.format,
        tcp_segments: end.summary.segments as usize,
        summary: end.summary,
        connections,
        notes: end.notes,
        stopped: end.stopped,
    })
}

/// What [`explain_stream`] returns once the capture is read.
#[derive(Clone, Debug)]
pub struct StreamEnd {
    pub format: String,
    pub summary: Summary,
    pub notes: Vec<String>,
    pub stopped: Option<capture::Stopped>,
}

/// Reads a capture as a stream and hands each connection that passes
/// `opts.filter` to `sink` as soon as it is explained: memory is bounded
/// by the connections still open at a point of the capture, not by its
/// size. Connections come in order of first appearance as long as no
/// more than 4,096 explained ones wait behind a long one.
pub fn explain_stream(
    input: impl io::Read,
    opts: &Options,
    sink: impl FnMut(Connection),
) -> io::Result<StreamEnd> {
    let mut packets = capture::Reader::new(input)?;
    let mut t = Tracker::new(opts.clone(), sink);
    for p in &mut packets {
        t.push(p);
    }
    let summary = t.finish();
    let read = packets.finish();
    Ok(StreamEnd {
        format: read.format,
        summary,
        notes: read.notes,
        stopped: read.stopped,
    })
}

/// Reads a capture held in memory (see [`explain_reader`]).
pub fn explain_bytes(source: &str, bytes: &[u8]) -> Report {
    match explain_reader(source, bytes) {
        Ok(r) => r,
        // Reading a byte slice does not fail; said anyway, not panicked.
        Err(e) => explain_packets(source, "unknown", Vec::new(), vec![e.to_string()]),
    }
}

/// Explains packets already read.
pub fn explain_packets(
    source: &str,
    format: &str,
    packets: Vec<Packet>,
    notes: Vec<String>,
) -> Report {
    let mut connections = Vec::new();
    let mut t = Tracker::new(Options::default(), |c| connections.push(c));
    for p in packets {
        t.push(p);
    }
    let summary = t.finish();
    Report {
        source: source.into(),
        format: format.into(),
        tcp_segments: summary.segments as usize,
        summary,
        connections,
        notes,
        stopped: None,
    }
}

/// The header line: `x.pcap: pcap, 12 TCP segments in 2 connections`.
pub fn header_text(source: &str, format: &str, s: &Summary) -> String {
    format!(
        "{source}: {format}, {} TCP segment{} in {} connection{}\n",
        s.segments,
        if s.segments == 1 { "" } else { "s" },
        s.connections,
        if s.connections == 1 { "" } else { "s" }
    )
}

/// The "not read" block of notes, at most 20 of them.
pub fn notes_text(notes: &[String]) -> String {
    let mut o = String::new();
    if !notes.is_empty() {
        let _ = writeln!(o, "\nnot read:");
        for n in notes.iter().take(20) {
            let _ = writeln!(o, "  {n}");
        }
        if notes.len() > 20 {
            let _ = writeln!(o, "  ... and {} more", notes.len() - 20);
        }
    }
    o
}

impl Connection {
    /// This connection as the text report shows it (a blank line first).
    pub fn to_text(&self) -> String {
        let c = self;
        let mut o = String::from("\n");
        let opened = match &c.opened_by {
            Some(x) => format!(", opened by {x}"),
            None => ", opening not captured".into(),
        };
        let _ = writeln!(
            o,
            "connection {}: {} <-> {}{opened}  [{}]",
            c.id,
            c.a,
            c.b,
            c.display_filter()
        );
        let when = if c.first.is_empty() {
            String::new()
        } else {
            format!(", {} to {}", c.first, c.last)
        };
        let _ = writeln!(
            o,
            "  {} segment{}{when}",
            c.segments,
            if c.segments == 1 { "" } else { "s" }
        );
        let _ = writeln!(o, "  ended:     {}", c.ended);
        let _ = writeln!(o, "  cause:     {}", c.cause);
        let _ = writeln!(o, "  why:       {}", c.why);
        if !c.evidence.is_empty() {
            let _ = writeln!(o, "  evidence:");
            for e in &c.evidence {
                let _ = writeln!(o, "    - {e}");
            }
        }
        if !c.capture.is_empty() {
            let _ = writeln!(o, "  the capture itself:");
            for e in &c.capture {
                let _ = writeln!(o, "    - {e}");
            }
        }
        if !c.cannot_tell.is_empty() {
            let _ = writeln!(o, "  the capture cannot tell:");
            for e in &c.cannot_tell {
                let _ = writeln!(o, "    - {e}");
            }
        }
        match c.scenarios.split_first() {
            Some((first, rest)) => {
                let _ = writeln!(o, "  reproduce: finrst run sim/{first}.sim");
                if !rest.is_empty() {
                    let r: Vec<String> = rest.iter().map(|s| format!("sim/{s}.sim")).collect();
                    let _ = writeln!(o, "  related:   {}", r.join(", "));
                }
            }
            None => {
                let _ = writeln!(o, "  reproduce: no scenario in sim/ shows this case yet");
            }
        }
        o
    }

    /// One line: `3 10.0.0.1.40000 <-> 10.0.0.2.80 rst unread-data: ...`.
    pub fn to_terse(&self) -> String {
        format!(
            "{} {} <-> {} {} {}: {}\n",
            self.stream,
            self.a,
            self.b,
            self.segments,
            self.cause_id.id(),
            self.ended
        )
    }
}

impl Report {
    /// The report as text: the header, the summary, one block per
    /// connection, the notes.
    pub fn to_text(&self) -> String {
        let mut o = header_text(&self.source, &self.format, &self.summary);
        if self.connections.is_empty() && self.summary.connections == 0 {
            let _ = writeln!(o, "\nno TCP connection found");
        }
        if self.summary.connections > 1 {
            o.push_str(&self.summary.to_text());
        }
        for c in &self.connections {
            o.push_str(&c.to_text());
        }
        o.push_str(&notes_text(&self.notes));
        o
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain data serialises")
    }
}
