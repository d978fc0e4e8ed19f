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
//! The reasoning uses only what is on the wire: who sent data, what each
//! side acknowledged, FINs, RSTs with or without the ACK flag, and zero
//! windows. It never sees what a program read, only what its kernel
//! acknowledged: that is the first thing every explanation is careful
//! about.

pub mod capture;
pub mod link;
pub mod notes;
pub mod scenarios;
pub mod text;

use crate::segment::Flags;
use crate::vocab::{Sim, TcpState};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;

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
    /// The time as the capture shows it (text) or as `-tt` would (pcap).
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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
    /// FIN, FIN, ACK.
    NormalClose,
    /// Both FINs crossed: each side closed before it had the other's FIN.
    SimultaneousClose,
    /// One FIN only: half-closed at the end of the capture.
    HalfClosed,
    /// A zero window being probed, no end.
    ZeroWindowHang,
    /// SYN without a completed handshake.
    HandshakeIncomplete,
    /// No FIN, no RST.
    StillOpen,
}

/// The explanation of one connection.
#[derive(Clone, Debug, Serialize)]
pub struct Connection {
    pub id: usize,
    /// The two endpoints, the opener (SYN sender) first when known.
    pub a: String,
    pub b: String,
    pub opened_by: Option<String>,
    pub segments: usize,
    pub first: String,
    pub last: String,
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
    /// Scenario names in `sim/` (without `.sim`), the closest first.
    pub scenarios: Vec<String>,
}

/// Everything `finrst explain` says about one capture.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub source: String,
    pub format: String,
    pub tcp_segments: usize,
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
pub fn explain_reader(source: &str, input: impl io::Read) -> io::Result<Report> {
    let mut packets = capture::Reader::new(input)?;
    let conns = split(&mut packets);
    let read = packets.finish();
    let mut r = report(source, &read.format, conns, read.notes);
    r.stopped = read.stopped;
    Ok(r)
}

/// Reads a capture held in memory (see [`explain_reader`]).
pub fn explain_bytes(source: &str, bytes: &[u8]) -> Report {
    match explain_reader(source, bytes) {
        Ok(r) => r,
        // Reading a byte slice does not fail; said anyway, not panicked.
        Err(e) => report(source, "unknown", Vec::new(), vec![e.to_string()]),
    }
}

/// Explains packets already read.
pub fn explain_packets(
    source: &str,
    format: &str,
    packets: Vec<Packet>,
    notes: Vec<String>,
) -> Report {
    report(source, format, split(packets), notes)
}

fn report(source: &str, format: &str, conns: Vec<Vec<Packet>>, notes: Vec<String>) -> Report {
    let n = conns.iter().map(Vec::len).sum();
    let connections = conns
        .into_iter()
        .enumerate()
        .map(|(i, c)| analyse(i + 1, &c))
        .collect();
    Report {
        source: source.into(),
        format: format.into(),
        tcp_segments: n,
        connections,
        notes,
        stopped: None,
    }
}

/// Splits packets into connections by their endpoint pair, in order of
/// first appearance. A new SYN (without ACK) on a pair whose connection
/// already ended (RST, or both FINs) starts a new connection.
fn split(packets: impl IntoIterator<Item = Packet>) -> Vec<Vec<Packet>> {
    let mut conns: Vec<Vec<Packet>> = Vec::new();
    let mut current: HashMap<(String, String), usize> = HashMap::new();
    let mut ended: Vec<bool> = Vec::new();
    let mut fins: Vec<(bool, bool)> = Vec::new();
    for p in packets {
        let key = if p.src <= p.dst {
            (p.src.clone(), p.dst.clone())
        } else {
            (p.dst.clone(), p.src.clone())
        };
        let fresh_syn = p.flags.syn() && !p.flags.ack();
        let idx = match current.get(&key) {
            Some(&i) if !(fresh_syn && ended[i]) => i,
            _ => {
                conns.push(Vec::new());
                ended.push(false);
                fins.push((false, false));
                current.insert(key.clone(), conns.len() - 1);
                conns.len() - 1
            }
        };
        if p.flags.rst() {
            ended[idx] = true;
        }
        if p.flags.fin() {
            if p.src == key.0 {
                fins[idx].0 = true;
            } else {
                fins[idx].1 = true;
            }
            if fins[idx].0 && fins[idx].1 {
                ended[idx] = true;
            }
        }
        conns[idx].push(p);
    }
    conns
}

/// Relative sequence numbers per direction, whatever mix of absolute and
/// tcpdump-relative numbers the capture holds.
///
/// tcpdump without `-S` prints the SYN and the first ACK-bearing segment
/// with absolute numbers and the rest relative; with `-S` all absolute.
/// Each direction's ISN comes from its SYN, or is inferred from the first
/// number seen. A text value is then read as whichever of "already
/// relative" (`v`) and "absolute" (`v - isn`) is smaller: real ISNs are
/// random 32-bit numbers, so the two readings are far apart. A first value
/// below 2^20 seen without a SYN is taken as already relative (a paste
/// that starts mid-connection): a random ISN is that small once in 4096.
struct Rel {
    isn: HashMap<(String, String), u32>,
}

impl Rel {
    fn base(&mut self, dir: &(String, String), first: u32, absolute: bool) -> u32 {
        *self.isn.entry(dir.clone()).or_insert_with(|| {
            if !absolute && first < 1 << 20 {
                0
            } else {
                first.wrapping_sub(1)
            }
        })
    }
    fn rel(v: u32, base: u32, absolute: bool) -> u32 {
        let abs = v.wrapping_sub(base);
        if absolute { abs } else { abs.min(v) }
    }
}

/// A packet with relative numbers.
struct RelPacket<'a> {
    p: &'a Packet,
    seq: Option<u32>,
    ack: Option<u32>,
}

fn relativise(c: &[Packet]) -> Vec<RelPacket<'_>> {
    let mut r = Rel {
        isn: HashMap::new(),
    };
    c.iter()
        .map(|p| {
            let dir = (p.src.clone(), p.dst.clone());
            let rev = (p.dst.clone(), p.src.clone());
            if p.flags.syn() {
                if let Some(s) = p.seq {
                    r.isn.insert(dir.clone(), s);
                }
                if let (true, Some(a)) = (p.flags.ack(), p.ack) {
                    r.isn.entry(rev.clone()).or_insert(a.wrapping_sub(1));
                }
            }
            let seq = p.seq.map(|s| {
                let b = r.base(&dir, s, p.absolute);
                Rel::rel(s, b, p.absolute)
            });
            let ack = p.ack.filter(|_| p.flags.ack()).map(|a| {
                let b = r.base(&rev, a, p.absolute);
                Rel::rel(a, b, p.absolute)
            });
            RelPacket { p, seq, ack }
        })
        .collect()
}

/// What one side did, up to the end of the connection.
#[derive(Default)]
struct Side {
    segments: usize,
    syn: Option<usize>,
    /// Bytes of data sent (highest relative end seen, minus the SYN).
    data: u32,
    first_data: Option<usize>,
    fin: Option<usize>,
    /// FIN segments sent: more than one means it was retransmitted.
    fin_count: u32,
    rst: Option<usize>,
    max_ack: Option<u32>,
    zero_win: Option<usize>,
    urgent: bool,
    /// First data it sent after the other side's FIN.
    data_after_peer_fin: Option<usize>,
}

fn plural(n: u32, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// One segment the way tcpdump shows it: `R. seq 1 ack 2`.
fn seg_text(r: &RelPacket) -> String {
    let mut s = format!("[{}]", r.p.flags.tcpdump());
    if let Some(q) = r.seq {
        if r.p.len > 0 {
            let _ = write!(s, " seq {}:{}", q, q.wrapping_add(r.p.len));
        } else {
            let _ = write!(s, " seq {q}");
        }
    }
    if let Some(a) = r.ack {
        let _ = write!(s, " ack {a}");
    }
    if let Some(w) = r.p.win {
        let _ = write!(s, " win {w}");
    }
    s
}

/// The first segment after the FIN at `f` that acknowledges it (its ack
/// passes the FIN's sequence number), sent by the other side.
fn fin_acked_at(rp: &[RelPacket], f: usize, upto: usize) -> Option<usize> {
    let fin = &rp[f];
    let fin_end = fin.seq?.wrapping_add(fin.p.len).wrapping_add(1);
    (f + 1..upto).find(|&j| {
        let r = &rp[j];
        r.p.src == fin.p.dst && r.ack.is_some_and(|a| a >= fin_end)
    })
}

/// `0.250 s` between two packets, when both have a time.
fn gap(a: &Packet, b: &Packet) -> Option<String> {
    let (x, y) = (a.time_ns?, b.time_ns?);
    let d = y.checked_sub(x)?;
    Some(if d >= 10_000_000_000 {
        format!("{} s", d / 1_000_000_000)
    } else {
        format!("{:.3} s", d as f64 / 1e9)
    })
}

/// Adds scenario names, each once, in order.
fn add_scenarios(conn: &mut Connection, names: &[Sim]) {
    for n in names {
        if !conn.scenarios.iter().any(|s| s == n.name()) {
            conn.scenarios.push(n.name().to_string());
        }
    }
}

fn analyse(id: usize, c: &[Packet]) -> Connection {
    let rp = relativise(c);
    // The opener sent a SYN without ACK; else the first sender.
    let opener = c
        .iter()
        .find(|p| p.flags.syn() && !p.flags.ack())
        .map(|p| p.src.clone());
    let first_src = c[0].src.clone();
    let (a, b) = {
        let o = opener.clone().unwrap_or_else(|| first_src.clone());
        let other = if c[0].src == o {
            c[0].dst.clone()
        } else {
            c[0].src.clone()
        };
        (o, other)
    };
    let side_of = |p: &Packet| usize::from(p.src != a);
    let names = [a.clone(), b.clone()];

    // Stats up to and including the first RST: what follows it is the
    // aftermath (more RSTs for data in flight), not the cause.
    let end = c
        .iter()
        .position(|p| p.flags.rst())
        .map_or(c.len(), |i| i + 1);
    let mut sides = [Side::default(), Side::default()];
    for (i, r) in rp[..end].iter().enumerate() {
        let s = side_of(r.p);
        let peer_fin = sides[1 - s].fin;
        let me = &mut sides[s];
        me.segments += 1;
        if r.p.flags.syn() && me.syn.is_none() {
            me.syn = Some(i);
        }
        if r.p.len > 0 {
            me.first_data.get_or_insert(i);
            let end_rel = r.seq.map(|q| q.wrapping_add(r.p.len).saturating_sub(1));
            me.data = match end_rel {
                // Relative numbers beyond 1 GiB mean the inference failed;
                // fall back to counting lengths.
                Some(e) if e < 1 << 30 => me.data.max(e),
                _ => me.data.saturating_add(r.p.len),
            };
            if r.p.flags.urg() {
                me.urgent = true;
            }
            if peer_fin.is_some() && me.data_after_peer_fin.is_none() {
                me.data_after_peer_fin = Some(i);
            }
        }
        if r.p.flags.fin() {
            me.fin_count += 1;
            if me.fin.is_none() {
                me.fin = Some(i);
            }
        }
        if r.p.flags.rst() && me.rst.is_none() {
            me.rst = Some(i);
        }
        if !r.p.flags.rst() {
            if let Some(ak) = r.ack {
                me.max_ack = Some(me.max_ack.map_or(ak, |m| m.max(ak)));
            }
            if r.p.win == Some(0) && !r.p.flags.syn() && me.zero_win.is_none() {
                me.zero_win = Some(i);
            }
        }
    }

    let mut conn = Connection {
        id,
        a: a.clone(),
        b: b.clone(),
        opened_by: opener.clone(),
        segments: c.len(),
        first: c[0].time_text.clone(),
        last: c[c.len() - 1].time_text.clone(),
        ended: String::new(),
        cause_id: Cause::StillOpen,
        cause: String::new(),
        why: String::new(),
        evidence: Vec::new(),
        cannot_tell: Vec::new(),
        scenarios: Vec::new(),
    };

    let rst_at = c.iter().position(|p| p.flags.rst());
    match rst_at {
        Some(i) => explain_rst(&mut conn, &rp, i, &sides, &names, side_of(&c[i])),
        None => explain_no_rst(&mut conn, &rp, &sides, &names),
    }
    conn
}

const CANNOT_CLOSE_OR_EXIT: &str = "whether the program called close() or exited or was killed: \
     the kernel closes a dying process's sockets the same way (no lingering)";

fn explain_rst(
    conn: &mut Connection,
    rp: &[RelPacket],
    i: usize,
    sides: &[Side; 2],
    names: &[String; 2],
    r: usize,
) {
    let p = 1 - r;
    let (rn, pn) = (&names[r], &names[p]);
    let rst = &rp[i];
    conn.ended = format!("{rn} sent RST {} ({})", seg_text(rst), rst.p.place());
    let with_ack = rst.p.flags.ack();
    // What the RST answered: the peer's last segment before it.
    let answered = rp[..i].iter().rev().find(|x| x.p.src == *pn);
    let rs = &sides[r];
    let ps = &sides[p];
    // Data from the peer that the RST's sender acknowledged.
    let acked_by_r = if with_ack {
        rst.ack.or(rs.max_ack)
    } else {
        rs.max_ack
    };
    let acked_data = acked_by_r.map_or(0, |a| a.saturating_sub(1).min(ps.data));

    // RST answering a SYN: nothing listening.
    if let Some(ans) = answered {
        if ans.p.flags.syn() && !ans.p.flags.ack() && rs.segments == 1 {
            conn.cause_id = Cause::Refused;
            conn.cause = format!("{rn} refused the connection: RST answering {pn}'s SYN");
            conn.why = "No socket listens on that port (or a firewall rejects with RST): the \
                        kernel's no-socket reset answers a SYN with R. ack = its seq + 1."
                .into();
            conn.evidence.push(format!(
                "{pn}'s SYN ({}) was answered by RST",
                ans.p.place()
            ));
            conn.cannot_tell
                .push("whether a program ever listened there, or a firewall answered".into());
            add_scenarios(conn, &[Sim::DisconnectListener]);
            return;
        }
        if ans.p.flags.syn() && ans.p.flags.ack() && !with_ack {
            conn.cause_id = Cause::SynSentClosed;
            conn.cause = format!(
                "RST with no ACK flag answering the SYN-ACK: {rn} gave up connecting \
                 (close() in SYN_SENT) before the SYN-ACK came"
            );
            conn.why = "close() in SYN_SENT sends nothing and frees the socket; the SYN-ACK \
                        then meets no socket, and the no-socket reset answers a segment \
                        carrying an ACK with R, seq = its ack."
                .into();
            conn.evidence.push(format!(
                "the RST follows {pn}'s SYN-ACK ({})",
                ans.p.place()
            ));
            conn.cannot_tell
                .push("whether the connect() timed out in the program or the process died".into());
            add_scenarios(conn, &[Sim::CloseSynSent]);
            return;
        }
    }

    // A FIN from R, then data from P, then the RST: P wrote after R's close.
    if let (Some(f), Some(d)) = (rs.fin, ps.data_after_peer_fin)
        && f < d
        && d < i
    {
        conn.cause_id = Cause::DataAfterFin;
        conn.cause = format!(
            "a FIN then data then RST: {pn} wrote after {rn}'s close ({rn} closed, \
             {pn} kept sending, {rn} reset)"
        );
        conn.why = format!(
            "After close() the socket takes no more data: data reaching a closed socket \
             in FIN_WAIT1/FIN_WAIT2 makes tcp_rcv_state_process() reset it (counter \
             TCPAbortOnData, RFC 1122 4.2.2.13), and once it is an orphan or gone the \
             reset comes from the time-wait socket or the no-socket path, as R without \
             ACK. {pn}'s next recv()/send() fails with ECONNRESET (or EPIPE)."
        );
        conn.evidence
            .push(format!("{rn} sent FIN ({})", rp[f].p.place()));
        conn.evidence
            .push(format!("{pn} sent data after it ({})", rp[d].p.place()));
        conn.scenarios.push(Sim::DataAfterClose.name().into());
        if !with_ack {
            // How long the orphan had been in FIN_WAIT2 when the data came.
            let since = fin_acked_at(rp, f, d).and_then(|k| gap(rp[k].p, rp[d].p));
            if let Some(g) = &since {
                conn.evidence.push(format!(
                    "the data came {g} after {pn} acknowledged {rn}'s FIN"
                ));
            }
            conn.cannot_tell.push(format!(
                "whether {rn}'s orphan was still in FIN_WAIT2 (its time-wait socket answers \
                 data with this R) or had already expired after tcp_fin_timeout (60 s by \
                 default; then the no-socket reset sends the same R): only the time{} tells, \
                 and the timeout is a setting (fin-wait2-timeout shows the expiry)",
                since.map_or(String::new(), |g| format!(" ({g} here)"))
            ));
            conn.scenarios.push(Sim::FinWait2Timeout.name().into());
        }
        if with_ack {
            conn.cannot_tell.push(format!(
                "the RST carries ACK: {rn} may have only shut down its sending half \
                 (shutdown(SHUT_WR)) and then closed with {pn}'s data unread \
                 (seed001-shutdown-wr shows that variant)"
            ));
            conn.scenarios.push(Sim::Seed001ShutdownWr.name().into());
        }
        // The RST answers a bare FIN sent after the data: the FIN alone
        // resets a socket that shut down reception when it lands past
        // rcv_nxt (tcp_rcv_state_process step 7 tests end_seq != seq), so
        // the data may never have arrived at all.
        if let Some(ans) = answered
            && ans.p.flags.fin()
            && ans.p.len == 0
        {
            conn.cannot_tell.push(format!(
                "whether {pn}'s data reached {rn}: the RST answers {pn}'s FIN ({}), and a \
                 FIN landing past a hole (the data lost) is reset just the same \
                 (fin-after-close-out-of-order shows that variant)",
                ans.p.place()
            ));
            add_scenarios(conn, &[Sim::FinAfterCloseOutOfOrder]);
        }
        conn.cannot_tell.push(format!(
            "whether {rn}'s program called close() or shutdown(SHUT_WR) then close(), or \
             exited"
        ));
        return;
    }

    // A bare R from the side that sent FIN, answering a segment without
    // data (a FIN or an ACK) from the peer.
    if let (false, Some(f), Some(ans)) = (with_ack, rs.fin, answered)
        && ans.p.len == 0
        && !ans.p.flags.syn()
    {
        let ans_at = rp[..i].iter().rposition(|x| x.p.src == *pn).unwrap_or(0);
        let first_ack = fin_acked_at(rp, f, i);
        // The RST answers the first ACK of the FIN to arrive. A capture
        // shows segments as they were sent: when that ACK was delayed on
        // the way, the FIN was retransmitted meanwhile and its duplicate
        // ACK may be the last segment before the RST. A FIN retransmitted
        // after the first ACK was sent means that ACK had not arrived: the
        // socket was still in FIN_WAIT1, not an expired FIN_WAIT2.
        let fin_retransmitted_after_ack = first_ack.is_some_and(|a| {
            rp[a..i]
                .iter()
                .any(|x| x.p.src == *rn && x.p.flags.fin() && x.seq == rp[f].seq)
        });
        let answers_first_ack = first_ack == Some(ans_at)
            || (fin_retransmitted_after_ack && ans.ack == first_ack.and_then(|a| rp[a].ack));
        if answers_first_ack && !ans.p.flags.fin() {
            conn.cause_id = Cause::Linger2Orphan;
            conn.cause = format!(
                "{rn} sent FIN, then answered the ACK of it with a bare R: an orphan that may \
                 not wait in FIN_WAIT2 (TCP_LINGER2 < 0), closed by tcp_done the moment its \
                 FIN was acknowledged (counter TCPAbortOnData)"
            );
            conn.why = "When the ACK of an orphan's FIN arrives in FIN_WAIT1, \
                        tcp_rcv_state_process() moves it to FIN_WAIT2; with TCP_LINGER2 < 0 \
                        it may not stay there, so it calls tcp_done() and returns 1, and the \
                        caller answers the ACK like a segment for no socket: R without the \
                        ACK flag, seq = the ACK's ack."
                .into();
            conn.evidence
                .push(format!("{rn} sent FIN ({})", rp[f].p.place()));
            conn.evidence.push(format!(
                "the RST answers {pn}'s first ACK of that FIN, {} ({})",
                seg_text(ans),
                ans.p.place()
            ));
            conn.evidence.push(format!(
                "no ACK flag on the RST: {rn}'s socket was gone when the ACK arrived"
            ));
            conn.cannot_tell.push(format!(
                "whether TCP_LINGER2 was set on the socket or the orphan was dropped for \
                 another reason before the ACK came (it gave up retransmitting its FIN, \
                 tcp_orphan_retries; too many orphans): the FIN was acknowledged {} after it \
                 was sent",
                gap(rp[f].p, ans.p).unwrap_or_else(|| "some time".into())
            ));
            conn.cannot_tell.push(
                "a close() made in FIN_WAIT2 (after shutdown(SHUT_WR)) with TCP_LINGER2 < 0 \
                 sends R. at once instead (linger2-negative-fin-wait2)"
                    .into(),
            );
            conn.cannot_tell.push(
                "connect(AF_UNSPEC) in LAST_ACK once the FIN is sent closes just as \
                 silently, and the ACK of that FIN gets the same bare R \
                 (disconnect-last-ack-fin-sent)"
                    .into(),
            );
            conn.cannot_tell.push(CANNOT_CLOSE_OR_EXIT.into());
            add_scenarios(
                conn,
                &[
                    Sim::Linger2NegativeOrphan,
                    Sim::Linger2NegativeFinWait2,
                    Sim::DisconnectLastAckFinSent,
                ],
            );
            return;
        }
        if first_ack.is_some_and(|k| k < ans_at) {
            let late = if ans.p.flags.fin() { "FIN" } else { "ACK" };
            conn.cause_id = Cause::FinWait2Expired;
            conn.cause = format!(
                "{rn}'s FIN was acknowledged, then {pn}'s late {late} got a bare R: {rn} \
                 had closed and its orphan had expired in FIN_WAIT2 (tcp_fin_timeout) \
                 before {pn} {}",
                if ans.p.flags.fin() {
                    "closed"
                } else {
                    "spoke again"
                }
            );
            conn.why = "After close(), an orphan in FIN_WAIT2 waits tcp_fin_timeout (60 s by \
                        default, TCP_LINGER2 per socket) for the peer's FIN, as a time-wait \
                        socket in its FIN_WAIT2 sub-state, then disappears without a \
                        segment. A FIN arriving in time would have been acknowledged \
                        (TIME_WAIT); one arriving later meets no socket and gets the \
                        no-socket reset: R without ACK, seq = its ack."
                .into();
            let k = first_ack.unwrap_or(f);
            conn.evidence.push(format!(
                "{rn} sent FIN ({}), {pn} acknowledged it ({})",
                rp[f].p.place(),
                rp[k].p.place()
            ));
            conn.evidence.push(format!(
                "{pn}'s {late} ({}) came {} later and was answered by R without ACK",
                ans.p.place(),
                gap(rp[k].p, ans.p).unwrap_or_else(|| "some time".into())
            ));
            conn.cannot_tell.push(format!(
                "whether the orphan expired or {rn}'s host lost the connection's state \
                 (reboot, a middlebox): both leave nothing to answer but the no-socket reset"
            ));
            conn.cannot_tell.push(CANNOT_CLOSE_OR_EXIT.into());
            add_scenarios(conn, &[Sim::FinWait2Timeout, Sim::DataAfterClose]);
            return;
        }
    }

    if !with_ack {
        conn.cause_id = Cause::NoSocket;
        let what = match answered {
            Some(a) if a.p.len > 0 => "answering data",
            Some(a) if a.p.flags.fin() => "answering a FIN",
            Some(_) => "answering a segment",
            None => "out of the blue",
        };
        conn.cause = format!(
            "RST with no ACK flag {what}: the socket was already gone (closed and orphaned, \
             or timed out)"
        );
        conn.why = "A socket that still exists answers with R. (ACK set). A bare R comes from \
                    the kernel's no-socket reset (tcp_v4_send_reset: seq = the ack of the \
                    segment it answers) or from a time-wait socket in its FIN_WAIT2 \
                    sub-state: the connection had ended on that side before this segment came."
            .into();
        if let Some(a) = answered {
            conn.evidence.push(format!(
                "the RST answers {pn}'s {} ({})",
                seg_text(a),
                a.p.place()
            ));
        }
        conn.cannot_tell.push(
            "how the socket went away: closed and orphaned then expired (tcp_fin_timeout), \
             retransmissions timed out, the host rebooted, or a middlebox dropped its state"
                .into(),
        );
        return;
    }

    // R. from the receiver of a zero window.
    if let Some(z) = rs.zero_win {
        conn.cause_id = Cause::ZeroWindowRst;
        conn.cause = format!(
            "zero window then RST from the receiver: {rn} stopped reading, its window fell \
             to 0, then it closed (or died) with {} unread (RFC 2525 2.17)",
            plural(acked_data.max(1), "byte")
        );
        conn.why = format!(
            "__tcp_close() finds the receive queue full of unread data and sends RST \
             (TCPAbortOnClose). This is the case RFC 2525 2.17 and the kernel's comment \
             describe: a FIN here would leave {pn} probing the zero window forever."
        );
        conn.evidence
            .push(format!("{rn} advertised win 0 ({})", rp[z].p.place()));
        conn.evidence.push(format!(
            "{pn} sent {} that {rn} acknowledged",
            plural(acked_data, "byte")
        ));
        conn.cannot_tell.push(CANNOT_CLOSE_OR_EXIT.into());
        add_scenarios(
            conn,
            &[
                Sim::Rfc2525ZeroWindow,
                Sim::ZeroWindowExit,
                Sim::Rfc2525Bulk,
                Sim::RcvbufListener,
            ],
        );
        return;
    }

    if acked_data > 0 {
        let read = if acked_data == 1 {
            format!("{rn} sent RST after acknowledging 1 byte it never read")
        } else {
            format!(
                "{rn} sent RST after acknowledging {acked_data} bytes, some or all of which it \
                 never read"
            )
        };
        conn.why = "__tcp_close() (net/ipv4/tcp.c) empties the receive queue; if any byte in \
                    it was never read it counts TCPAbortOnClose, moves the socket straight to \
                    CLOSE and sends RST (tcp_send_active_reset: seq = snd_nxt, ack = rcv_nxt) \
                    instead of FIN, so the peer learns that data was lost (RFC 2525 2.17)."
            .into();
        conn.evidence.push(format!(
            "{pn} sent {} ({}); {rn} acknowledged {} (ack {})",
            plural(ps.data, "byte"),
            ps.first_data.map_or("?".into(), |d| rp[d].p.place()),
            if ps.data == 1 { "it" } else { "them" },
            acked_by_r.map_or("?".into(), |x| x.to_string())
        ));
        conn.cannot_tell.push(format!(
            "how much {rn}'s program read: the capture shows what its kernel acknowledged, \
             not what recv() returned; one unread byte is enough"
        ));
        conn.cannot_tell.push(CANNOT_CLOSE_OR_EXIT.into());
        conn.cannot_tell.push(
            "SO_LINGER {1, 0} with unread data sends the same R. (the kernel checks unread \
             data first and counts TCPAbortOnClose, not TCPAbortOnData): \
             seed003-linger-zero-unread"
                .into(),
        );
        if let Some(f) = rs.fin {
            conn.cause_id = Cause::ShutdownWrThenUnread;
            conn.cause = format!(
                "{rn} sent FIN, then RST: shutdown(SHUT_WR) and later close() with unread \
                 data ({} acknowledged, Linux, RFC 2525 2.17)",
                plural(acked_data, "byte")
            );
            conn.evidence.push(format!(
                "{rn}'s FIN ({}) came before the RST: the sending half was shut first",
                rp[f].p.place()
            ));
            add_scenarios(conn, &[Sim::Seed001ShutdownWr, Sim::ShutdownWrUnread]);
            return;
        }
        conn.cause_id = Cause::UnreadData;
        conn.cause = format!("{read}: close() with unread data (Linux, RFC 2525 2.17)");
        conn.evidence.push(format!(
            "the RST acknowledges what {pn} sent (ack {}): {rn}'s socket still held it, \
             it was not a socket that was gone",
            acked_by_r.map_or("?".into(), |x| x.to_string())
        ));
        // ack = data + SYN + FIN: the FIN came in before the RST went out,
        // so the socket closed from CLOSE_WAIT. __tcp_close tests the
        // receive queue, not the state: the peer's close does not save it.
        let peer_fin_acked = ps.fin.is_some() && acked_by_r == Some(ps.data + 2);
        if peer_fin_acked {
            conn.evidence.push(format!(
                "the RST acknowledges {pn}'s FIN too (ack {}): {rn} was in CLOSE_WAIT; a peer \
                 that has closed does not make a FIN possible, the unread bytes still do",
                ps.data + 2
            ));
        }
        let r_opened = conn.opened_by.as_deref() == Some(rn.as_str());
        if ps.urgent {
            conn.evidence.push(format!(
                "{pn}'s data was urgent (P.U, MSG_OOB): recv(MSG_OOB) returns the urgent \
                 byte but leaves it counted as unread, so close() still sends RST"
            ));
            add_scenarios(
                conn,
                &[
                    Sim::Seed002OobReadClose,
                    Sim::OobReadClose,
                    Sim::Seed002KillClient,
                ],
            );
        } else if r_opened && rs.data > 0 && rs.first_data < ps.first_data {
            conn.evidence.push(format!(
                "{rn} sent a request first and closed without reading the whole response \
                 (read to EOF first to get a FIN: seed004-http-drained)"
            ));
            add_scenarios(
                conn,
                &[
                    Sim::Seed004HttpUnread,
                    Sim::HttpUnread,
                    Sim::Seed004HttpDrained,
                ],
            );
        } else if r_opened {
            add_scenarios(
                conn,
                &[
                    Sim::Seed000EpolloutUnread,
                    Sim::CloseUnreadRst,
                    Sim::ExitUnread,
                    Sim::ResetThenSend,
                    Sim::Seed002KillClient,
                ],
            );
        } else {
            conn.cannot_tell.push(format!(
                "whether {rn}'s program ever accepted the connection: closing a listener \
                 resets the connections still in its accept queue, and one holding unread \
                 data gets the same R. (listen-close-accept-queue)"
            ));
            add_scenarios(
                conn,
                &[
                    Sim::Seed001PartialRead,
                    Sim::Seed001ShutdownRd,
                    Sim::ShutdownRdUnread,
                    Sim::ListenCloseAcceptQueue,
                    Sim::HalfDrainedClose,
                ],
            );
        }
        if peer_fin_acked {
            add_scenarios(conn, &[Sim::DelayedFinThenCloseUnread]);
        }
        add_scenarios(
            conn,
            &[Sim::Seed003LingerZeroUnread, Sim::CloseLingerZeroUnread],
        );
        return;
    }

    // R. with nothing received to be unread.
    if let Some(f) = rs.fin {
        conn.cause_id = Cause::AbortAfterFin;
        conn.cause = format!(
            "{rn} sent FIN, then RST with nothing unread: close() in FIN_WAIT2 with \
             TCP_LINGER2 < 0 (TCPAbortOnLinger), or an abortive close (SO_LINGER {{1, 0}}) \
             after shutdown(SHUT_WR)"
        );
        conn.why = "With nothing unread, Linux resets a connection whose FIN is out only \
                    when close() finds it in FIN_WAIT2 with TCP_LINGER2 < 0 \
                    (tcp_set_state(CLOSE) + tcp_send_active_reset, TCPAbortOnLinger), on an \
                    abortive close (tcp_disconnect, TCPAbortOnData), or under memory \
                    pressure (tcp_check_oom, TCPAbortOnMemory). The R. carries seq = \
                    snd_nxt, after the FIN."
            .into();
        conn.evidence.push(format!(
            "{rn}'s FIN ({}) came first: its sending half was shut (shutdown(SHUT_WR)) \
             before the RST",
            rp[f].p.place()
        ));
        conn.evidence.push(format!(
            "the RST acknowledges nothing {rn} could have left unread ({} from {pn})",
            plural(acked_data, "byte")
        ));
        conn.cannot_tell.push(
            "which of them: TCP_LINGER2 < 0 and SO_LINGER {1, 0} send the same R. with the \
             same numbers; only the counter differs"
                .into(),
        );
        conn.cannot_tell.push(CANNOT_CLOSE_OR_EXIT.into());
        add_scenarios(
            conn,
            &[
                Sim::Linger2NegativeFinWait2,
                Sim::Seed003LingerZero,
                Sim::DisconnectFinWait2,
            ],
        );
        return;
    }
    // Nothing received, nothing sent by the resetting side, and it is the
    // side that accepted: the listener may have been closed with the
    // connection still in its accept queue.
    let r_accepted = conn.opened_by.as_deref() == Some(pn.as_str());
    if r_accepted && rs.data == 0 {
        conn.cause_id = Cause::ListenerClosed;
        conn.cause = format!(
            "RST from the accepting side ({rn}) with nothing exchanged: the listener was \
             closed while the connection waited in its accept queue (never accepted), or \
             {rn}'s program accepted it and aborted it with SO_LINGER {{1, 0}}"
        );
        conn.why = "close() of a LISTEN socket runs inet_csk_listen_stop(), which \
                    disconnects every child still in the accept queue (tcp_disconnect): an \
                    established child sends R. (seq = snd_nxt, ack = rcv_nxt). {pn} believed \
                    it was connected and gets ECONNRESET. An abortive close of an accepted \
                    socket (SO_LINGER {1, 0}: tcp_disconnect, TCPAbortOnData) sends the same."
            .replace("{pn}", pn);
        conn.evidence.push(format!(
            "{rn} accepted the handshake ({pn} sent the SYN) and reset without sending or \
             receiving a byte"
        ));
        conn.cannot_tell.push(format!(
            "whether {rn}'s program ever called accept(): a listener closed with the \
             connection in its queue and an accepted socket closed with SO_LINGER {{1, 0}} \
             send the same R.; only the counter differs (none for the listener, \
             TCPAbortOnData for the abortive close)"
        ));
        conn.cannot_tell
            .push("memory pressure (TCPAbortOnMemory) also resets with nothing unread".into());
        conn.cannot_tell.push(CANNOT_CLOSE_OR_EXIT.into());
        add_scenarios(
            conn,
            &[
                Sim::ListenCloseAcceptQueue,
                Sim::Seed003LingerZero,
                Sim::CloseLingerZero,
            ],
        );
        return;
    }
    conn.cause_id = Cause::LingerZero;
    let how = format!(
        "SO_LINGER {{1, 0}} (abortive close by {rn}, counter TCPAbortOnData) or \
         connect(AF_UNSPEC) (tcp_disconnect, no counter)"
    );
    conn.cause = if rs.data == 0 && ps.data == 0 {
        format!("RST right after the handshake with nothing unread: {how}")
    } else {
        format!("RST with nothing unread: {how}")
    };
    conn.why = "With SO_LINGER on and a linger time of 0, __tcp_close() calls \
                tcp_disconnect(), which sends R. for an established connection, throws away \
                anything unsent and skips FIN_WAIT and TIME_WAIT; the counter is \
                TCPAbortOnData. connect() with AF_UNSPEC runs the same tcp_disconnect() on a \
                socket the program keeps (it can connect again)."
        .into();
    conn.evidence.push(format!(
        "{pn} sent no data {rn} could have left unread ({} acknowledged)",
        plural(acked_data, "byte")
    ));
    conn.cannot_tell.push(
        "a RST after unread data and an abortive close look alike when nothing was \
         received; here nothing was, so SO_LINGER {1, 0} is the likely one"
            .into(),
    );
    conn.cannot_tell.push(
        "whether it was close() with SO_LINGER {1, 0} or connect(AF_UNSPEC): both run \
         tcp_disconnect and send the same R. (disconnect)"
            .into(),
    );
    conn.cannot_tell.push(
        "other resets with nothing unread send the same R.: a listener closed while the \
         connection waited in its accept queue (inet_csk_listen_stop), memory pressure \
         (TCPAbortOnMemory)"
            .into(),
    );
    conn.cannot_tell.push(CANNOT_CLOSE_OR_EXIT.into());
    add_scenarios(
        conn,
        &[
            Sim::Seed003LingerZero,
            Sim::CloseLingerZero,
            Sim::Disconnect,
            Sim::DisconnectReconnect,
            Sim::DisconnectReconnectRunnerPort,
            Sim::DisconnectLastAckFinUnsent,
        ],
    );
}

fn explain_no_rst(conn: &mut Connection, rp: &[RelPacket], sides: &[Side; 2], names: &[String; 2]) {
    let fins = [sides[0].fin, sides[1].fin];
    match fins {
        [Some(fa), Some(fb)] => {
            let (first, second, sf) = if fa <= fb { (0, 1, fb) } else { (1, 0, fa) };
            let (x, y) = (&names[first], &names[second]);
            // The ACK of the second FIN: a segment from the first closer
            // after it.
            let last_ack = rp[sf + 1..]
                .iter()
                .any(|r| r.p.src == *x && r.p.flags.ack());
            conn.ended = format!(
                "{x} sent FIN ({}), {y} sent FIN ({}){}",
                rp[fins[first].unwrap_or(0)].p.place(),
                rp[sf].p.place(),
                if last_ack {
                    ", and the last FIN was acknowledged"
                } else {
                    "; the last ACK is not in the capture"
                }
            );
            // Crossing FINs: the second FIN does not acknowledge the first,
            // so its sender had not received it when it closed.
            let first_fin = &rp[fins[first].unwrap_or(0)];
            let crossed = match (first_fin.seq, rp[sf].ack) {
                (Some(q), Some(ak)) => ak < q.wrapping_add(first_fin.p.len).wrapping_add(1),
                _ => false,
            };
            if crossed {
                conn.cause_id = Cause::SimultaneousClose;
                conn.cause = format!(
                    "simultaneous close: the FINs crossed ({y} sent its FIN before it had \
                     {x}'s), so both sides go through CLOSING to TIME_WAIT"
                );
                conn.why = "Each side closed while in ESTABLISHED (tcp_close_state: FIN_WAIT1, \
                            a FIN). A FIN arriving in FIN_WAIT1 moves the receiver to CLOSING \
                            (tcp_fin); the ACK of its own FIN then takes it to TIME_WAIT \
                            (tcp_rcv_state_process, tcp_time_wait). Both sides keep a \
                            TIME_WAIT socket for 60 s; nothing was unread, so no RST."
                    .into();
                conn.evidence.push(format!(
                    "{y}'s FIN {} ({}) does not acknowledge {x}'s FIN {} ({})",
                    seg_text(&rp[sf]),
                    rp[sf].p.place(),
                    seg_text(first_fin),
                    first_fin.p.place()
                ));
                conn.cannot_tell.push(
                    "which program called close() first: each FIN left before the other \
                     arrived, and a capture at one host sees its own FIN first"
                        .into(),
                );
                conn.cannot_tell.push(
                    "whether each FIN came from close(), shutdown(SHUT_WR) or the process \
                     exiting"
                        .into(),
                );
                add_scenarios(conn, &[Sim::CloseSimultaneous]);
                return;
            }
            conn.cause_id = Cause::NormalClose;
            conn.cause =
                format!("normal close, TIME_WAIT on the side that closed first ({x}, for 60 s)");
            conn.why = "Both programs closed with nothing unread: each close() sent FIN \
                        (tcp_close_state); the side that sent the first FIN waits in \
                        TIME_WAIT (TCP_TIMEWAIT_LEN, 60 s), the other goes from LAST_ACK to \
                        CLOSE."
                .into();
            // A FIN retransmitted into TIME_WAIT: tcp_timewait_state_process
            // answers every copy, because tcp_oow_rate_limited never limits a
            // segment with end_seq != seq and no SYN, and a FIN is one.
            let copies = sides[second].fin_count;
            if copies > 1 {
                let answers = rp[sf + 1..].iter().filter(|r| r.p.src == *x).count();
                conn.evidence.push(format!(
                    "{y} sent its FIN {copies} times and {x} answered {}: {y} sending \
                     again means the earlier answers did not reach it; in TIME_WAIT every \
                     copy of the FIN is answered (to tcp_oow_rate_limited a FIN is data, \
                     so the 500 ms ACK rate limit does not hold the answer back)",
                    plural(answers as u32, "time")
                ));
                add_scenarios(conn, &[Sim::TimewaitFinRetransmitAcked]);
            }
            conn.cannot_tell.push(
                "whether each FIN came from close(), shutdown(SHUT_WR) or the process \
                 exiting"
                    .into(),
            );
            let closer_opened = conn.opened_by.as_deref() == Some(x.as_str());
            if closer_opened {
                add_scenarios(conn, &[Sim::Seed004HttpDrained, Sim::CloseFinHandshake]);
                add_scenarios(
                    conn,
                    &[
                        Sim::TwDescriptorOpen,
                        Sim::TwOwnPortEaddrinuse,
                        Sim::TwReconnectServerTimewait,
                        Sim::TwFinTimeoutIgnored,
                    ],
                );
            }
            add_scenarios(
                conn,
                &[
                    Sim::Seed001FullRead,
                    Sim::Seed004HttpDrained,
                    Sim::TwDescriptorOpen,
                    Sim::TwOwnPortEaddrinuse,
                    Sim::TwReconnectServerTimewait,
                    Sim::TwFinTimeoutIgnored,
                    Sim::CloseFinHandshake,
                    Sim::BulkRepeatClose,
                ],
            );
        }
        [Some(f), None] | [None, Some(f)] => {
            let xi = usize::from(fins[0].is_none());
            let (x, y) = (&names[xi], &names[1 - xi]);
            let (xs, ys) = (&sides[xi], &sides[1 - xi]);
            conn.ended = format!("only {x} sent FIN ({})", rp[f].p.place());
            conn.cause_id = Cause::HalfClosed;
            let acked = fin_acked_at(rp, f, rp.len());
            let x_state = if acked.is_some() {
                TcpState::FinWait2.to_string()
            } else {
                format!(
                    "{}: its FIN is not acknowledged in the capture",
                    TcpState::FinWait1
                )
            };
            let mut cause = format!(
                "half-closed and still open at the end of the capture: {x} closed its \
                 sending half, {y} has not closed ({y} in CLOSE_WAIT, {x} in {x_state}); if \
                 {x}'s program closed, its orphan goes away silently after tcp_fin_timeout"
            );
            conn.why = format!(
                "{y}'s program has not called close() yet, or the capture stopped before it \
                 did; if {x} only called shutdown(SHUT_WR), it can still receive. After \
                 close(), an orphan waits in FIN_WAIT2 for tcp_fin_timeout (60 s by default) \
                 as a time-wait socket and then disappears without sending anything."
            );
            // A FIN sent more than once: lost, or its ACK was.
            if xs.fin_count > 1 {
                let _ = write!(
                    cause,
                    "; {x}'s FIN was retransmitted (sent {} times)",
                    xs.fin_count
                );
                let acks_before_last = rp
                    .iter()
                    .rposition(|r| r.p.src == *x && r.p.flags.fin())
                    .is_some_and(|last| acked.is_some_and(|k| k < last));
                conn.evidence.push(format!(
                    "{x} sent its FIN {} times ({} first){}",
                    xs.fin_count,
                    rp[f].p.place(),
                    if acks_before_last {
                        format!(
                            ", although {y} acknowledged it: the ACKs did not reach {x} \
                             (lost after the capture point, or held back)"
                        )
                    } else {
                        ": the first was lost (or never acknowledged) and the RTO timer \
                         (tcp_retransmit_timer) sent it again"
                            .into()
                    }
                ));
                conn.cannot_tell.push(format!(
                    "whether {x}'s close() was blocked meanwhile: with SO_LINGER {{1, N}} \
                     close() waits up to N s for the ACK of its FIN and then returns 0 \
                     without RST (close-linger-timeout); an exiting process never lingers \
                     (exit-linger-ignored)"
                ));
                add_scenarios(
                    conn,
                    &[
                        Sim::DropFinRetransmit,
                        Sim::CloseLingerTimeout,
                        Sim::LingerCloseTogether,
                        Sim::Seed003LingerTimeout,
                        Sim::RepairFinWait2,
                    ],
                );
            }
            // Urgent data acknowledged before the FIN.
            if ys.urgent && xs.max_ack.is_some_and(|a| a > 1) {
                let _ = write!(
                    cause,
                    "; {x} sent FIN after acknowledging {y}'s urgent data: if that FIN came \
                     from close(), nothing was unread, so the urgent byte had been consumed \
                     (e.g. read inline with SO_OOBINLINE)"
                );
                conn.evidence.push(format!(
                    "{y} sent urgent data (P.U, MSG_OOB); read only with recv(MSG_OOB) it \
                     stays unread and close() sends RST instead (oob-read-close)"
                ));
                add_scenarios(conn, &[Sim::OobInlineDrained, Sim::OobReadClose]);
            } else if ys.data > 0 {
                conn.evidence.push(format!(
                    "{x} acknowledged {} from {y} before its FIN: if the FIN came from \
                     close(), its program had read them all (unread data would have made \
                     close() send RST)",
                    plural(ys.data, "byte")
                ));
            }
            conn.cause = cause;
            conn.cannot_tell.push(format!(
                "whether {x} called close() or shutdown(SHUT_WR) (shutdown sends FIN whatever \
                 is unread: seed001-shutdown-wr), or exited; an orphan in FIN_WAIT2 gives up \
                 after tcp_fin_timeout (60 s) without sending anything (fin-wait2-timeout)"
            ));
            add_scenarios(
                conn,
                &[
                    Sim::FinWait2Timeout,
                    Sim::Seed001ShutdownWr,
                    Sim::ExitLingerIgnored,
                    Sim::CloseLingerTimeout,
                    Sim::Seed003LingerTimeout,
                    Sim::RepairFinWait2,
                ],
            );
        }
        [None, None] => {
            let zero = (0..2).find(|&s| sides[s].zero_win.is_some());
            if let Some(z) = zero {
                let (x, y) = (&names[z], &names[1 - z]);
                conn.ended = "no FIN or RST".into();
                conn.cause_id = Cause::ZeroWindowHang;
                conn.cause = format!(
                    "still open: {x} advertises a zero window and {y} keeps probing it; if \
                     {x}'s program is gone, this is the hang RFC 2525 2.17 warns of"
                );
                conn.why = "A receiver that stops reading closes its window; the sender \
                            probes with backoff (up to 120 s) indefinitely. Linux's RST on \
                            close with unread data is what ends this."
                    .into();
                conn.evidence.push(format!(
                    "{x} advertised win 0 ({})",
                    rp[sides[z].zero_win.unwrap_or(0)].p.place()
                ));
                conn.cannot_tell
                    .push(format!("whether {x}'s program is alive and just slow"));
                conn.cannot_tell.push(format!(
                    "whether {x}'s peer has closed: a FIN queued behind unsent data waits for \
                     the window like the data (bulk-nonreader-close)"
                ));
                add_scenarios(
                    conn,
                    &[
                        Sim::Rfc2525ZeroWindow,
                        Sim::BulkNonreaderClose,
                        Sim::BulkNonreaderLinger,
                        Sim::Bulk200kClose,
                        Sim::SndbufSmallEagain,
                        Sim::RepairZeroWindowProbes,
                    ],
                );
            } else if sides[1].syn.is_none()
                || sides[0].segments == 0
                || !rp.iter().any(|r| !r.p.flags.syn())
            {
                conn.ended = "no FIN or RST".into();
                conn.cause_id = Cause::HandshakeIncomplete;
                conn.cause = "the handshake did not complete in the capture".into();
                conn.why = "Only SYN or SYN-ACK segments were seen.".into();
                conn.cannot_tell
                    .push("whether the capture began late or ended early".into());
            } else {
                conn.ended = "no FIN or RST".into();
                conn.cause_id = Cause::StillOpen;
                conn.cause = "still open at the end of the capture (or closed without a \
                              segment: close() in TCP_REPAIR mode sends nothing)"
                    .into();
                conn.why = "Neither side closed while the capture ran, as far as the wire \
                            shows. One close sends nothing at all: with TCP_REPAIR set (CRIU \
                            taking a connection away), __tcp_close() runs tcp_disconnect() in \
                            repair mode, and the peer stays ESTABLISHED."
                    .into();
                conn.cannot_tell
                    .push("whether the capture ended before the connection did".into());
                conn.cannot_tell.push(
                    "whether a program closed it in TCP_REPAIR mode: nothing goes on the \
                     wire (repair-close)"
                        .into(),
                );
                add_scenarios(
                    conn,
                    &[
                        Sim::RepairClose,
                        Sim::HorizonBlockingRecv,
                        Sim::DisconnectReconnect,
                        Sim::DisconnectReconnectRunnerPort,
                        Sim::DisconnectFinWait2,
                        Sim::TwReconnectServerTimewait,
                        Sim::TwFinTimeoutIgnored,
                    ],
                );
            }
        }
    }
}

impl Report {
    /// The report as text, one block per connection.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "{}: {}, {} TCP segment{} in {} connection{}",
            self.source,
            self.format,
            self.tcp_segments,
            if self.tcp_segments == 1 { "" } else { "s" },
            self.connections.len(),
            if self.connections.len() == 1 { "" } else { "s" }
        );
        if self.connections.is_empty() {
            let _ = writeln!(o, "\nno TCP connection found");
        }
        for c in &self.connections {
            let _ = writeln!(o);
            let opened = match &c.opened_by {
                Some(x) => format!(", opened by {x}"),
                None => ", opening not captured".into(),
            };
            let _ = writeln!(o, "connection {}: {} <-> {}{opened}", c.id, c.a, c.b);
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
        }
        if !self.notes.is_empty() {
            let _ = writeln!(o, "\nnot read:");
            for n in self.notes.iter().take(20) {
                let _ = writeln!(o, "  {n}");
            }
            if self.notes.len() > 20 {
                let _ = writeln!(o, "  ... and {} more", self.notes.len() - 20);
            }
        }
        o
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain data serialises")
    }
}
