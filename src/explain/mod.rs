//! `finrst explain CAPTURE`: why did this real connection end the way it
//! did?
//!
//! Reads a capture ([`capture`]: pcap/pcapng; [`text`]: tcpdump's text
//! output), splits it into connections, and for each says how it ended, the
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
pub mod text;

use crate::segment::Flags;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write as _;

/// One TCP segment as a capture shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Packet {
    /// 1-based position among the TCP segments read (pcap: the record
    /// number in the file).
    pub index: usize,
    /// The text line it came from (text captures).
    pub line: Option<usize>,
    pub time_us: Option<u64>,
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
    /// A RST the rules above do not cover.
    OtherRst,
    /// FIN, FIN, ACK.
    NormalClose,
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
}

/// Reads a capture from bytes (pcap, pcapng, or tcpdump text) and explains
/// it. `source` names it in the report.
pub fn explain_bytes(source: &str, bytes: &[u8]) -> Report {
    let (format, packets, notes) = if capture::is_binary_capture(bytes) {
        let r = capture::read(bytes);
        (r.format, r.packets, r.notes)
    } else {
        let text = String::from_utf8_lossy(bytes);
        let r = text::read(&text);
        let mut notes = r.notes;
        if bytes.contains(&0) {
            notes.insert(
                0,
                "the file is neither a pcap/pcapng capture nor text; read as text".into(),
            );
        }
        ("tcpdump text".to_string(), r.packets, notes)
    };
    explain_packets(source, &format, packets, notes)
}

/// Explains packets already read.
pub fn explain_packets(
    source: &str,
    format: &str,
    packets: Vec<Packet>,
    notes: Vec<String>,
) -> Report {
    let n = packets.len();
    let connections = split(packets)
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
    }
}

/// Splits packets into connections by their endpoint pair, in order of
/// first appearance. A new SYN (without ACK) on a pair whose connection
/// already ended (RST, or both FINs) starts a new connection.
fn split(packets: Vec<Packet>) -> Vec<Vec<Packet>> {
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
        if r.p.flags.fin() && me.fin.is_none() {
            me.fin = Some(i);
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
        if with_ack {
            conn.cannot_tell.push(format!(
                "the RST carries ACK: {rn} may have only shut down its sending half \
                 (shutdown(SHUT_WR)) and then closed with {pn}'s data unread \
                 (seed001-shutdown-wr shows that variant)"
            ));
            conn.scenarios.push("seed001-shutdown-wr".into());
        }
        conn.cannot_tell.push(format!(
            "whether {rn}'s program called close() or shutdown(SHUT_WR) then close(), or \
             exited"
        ));
        return;
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
        conn.scenarios.push("rfc2525-zero-window".into());
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
            conn.scenarios.push("seed001-shutdown-wr".into());
            return;
        }
        conn.cause_id = Cause::UnreadData;
        conn.cause = format!("{read}: close() with unread data (Linux, RFC 2525 2.17)");
        conn.evidence.push(format!(
            "the RST acknowledges what {pn} sent (ack {}): {rn}'s socket still held it, \
             it was not a socket that was gone",
            acked_by_r.map_or("?".into(), |x| x.to_string())
        ));
        let r_opened = conn.opened_by.as_deref() == Some(rn.as_str());
        if ps.urgent {
            conn.evidence.push(format!(
                "{pn}'s data was urgent (P.U, MSG_OOB): recv(MSG_OOB) returns the urgent \
                 byte but leaves it counted as unread, so close() still sends RST"
            ));
            conn.scenarios.push("seed002-oob-read-close".into());
            conn.scenarios.push("seed002-kill-client".into());
        } else if r_opened && rs.data > 0 && rs.first_data < ps.first_data {
            conn.evidence.push(format!(
                "{rn} sent a request first and closed without reading the whole response \
                 (read to EOF first to get a FIN: seed004-http-drained)"
            ));
            conn.scenarios.push("seed004-http-unread".into());
            conn.scenarios.push("seed004-http-drained".into());
        } else if r_opened {
            conn.scenarios.push("seed000-epollout-unread".into());
            conn.scenarios.push("seed002-kill-client".into());
        } else {
            conn.scenarios.push("seed001-partial-read".into());
            conn.scenarios.push("seed001-shutdown-rd".into());
        }
        conn.scenarios.push("seed003-linger-zero-unread".into());
        return;
    }

    // R. with nothing received to be unread.
    if rs.fin.is_some() {
        conn.cause_id = Cause::OtherRst;
        conn.cause = format!(
            "{rn} sent FIN, then RST with nothing unread: an abortive close after \
             shutdown(SHUT_WR) (SO_LINGER {{1, 0}}) or an orphan in FIN_WAIT2 with \
             TCP_LINGER2 < 0 (TCPAbortOnLinger)"
        );
        conn.why = "With nothing unread, Linux resets only on an abortive close \
                    (tcp_disconnect) or when an orphan may not wait in FIN_WAIT2."
            .into();
        conn.cannot_tell
            .push("which of the two: both send R. with the same numbers".into());
        conn.scenarios.push("seed003-linger-zero".into());
        return;
    }
    conn.cause_id = Cause::LingerZero;
    conn.cause = if rs.data == 0 && ps.data == 0 {
        format!(
            "RST right after the handshake with nothing unread: SO_LINGER {{1, 0}} \
             (abortive close by {rn}, counter TCPAbortOnData)"
        )
    } else {
        format!(
            "RST with nothing unread: SO_LINGER {{1, 0}} (abortive close by {rn}, counter \
             TCPAbortOnData)"
        )
    };
    conn.why = "With SO_LINGER on and a linger time of 0, __tcp_close() calls \
                tcp_disconnect(), which sends R. for an established connection, throws away \
                anything unsent and skips FIN_WAIT and TIME_WAIT; the counter is \
                TCPAbortOnData."
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
        "other resets with nothing unread send the same R.: a listener closed while the \
         connection waited in its accept queue (inet_csk_listen_stop), memory pressure \
         (TCPAbortOnMemory)"
            .into(),
    );
    conn.cannot_tell.push(CANNOT_CLOSE_OR_EXIT.into());
    conn.scenarios.push("seed003-linger-zero".into());
}

fn explain_no_rst(conn: &mut Connection, rp: &[RelPacket], sides: &[Side; 2], names: &[String; 2]) {
    let [a, b] = names;
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
            conn.cause_id = Cause::NormalClose;
            conn.cause =
                format!("normal close, TIME_WAIT on the side that closed first ({x}, for 60 s)");
            conn.why = "Both programs closed with nothing unread: each close() sent FIN \
                        (tcp_close_state); the side that sent the first FIN waits in \
                        TIME_WAIT (TCP_TIMEWAIT_LEN, 60 s), the other goes from LAST_ACK to \
                        CLOSE."
                .into();
            conn.cannot_tell.push(
                "whether each FIN came from close(), shutdown(SHUT_WR) or the process \
                 exiting"
                    .into(),
            );
            let closer_opened = conn.opened_by.as_deref() == Some(x.as_str());
            if closer_opened {
                conn.scenarios.push("seed004-http-drained".into());
            }
            conn.scenarios.push("seed001-full-read".into());
            if !closer_opened {
                conn.scenarios.push("seed004-http-drained".into());
            }
        }
        [Some(f), None] | [None, Some(f)] => {
            let (x, y) = if fins[0].is_some() { (a, b) } else { (b, a) };
            conn.ended = format!("only {x} sent FIN ({})", rp[f].p.place());
            conn.cause_id = Cause::HalfClosed;
            conn.cause = format!(
                "half-closed and still open at the end of the capture: {x} closed its \
                 sending half, {y} has not closed ({y} in CLOSE_WAIT, {x} in FIN_WAIT2)"
            );
            conn.why = format!(
                "{y}'s program has not called close() yet, or the capture stopped before it \
                 did; if {x} only called shutdown(SHUT_WR), it can still receive."
            );
            conn.cannot_tell.push(format!(
                "whether {x} called close() or shutdown(SHUT_WR); an orphan in FIN_WAIT2 \
                 gives up after tcp_fin_timeout (60 s) without sending anything"
            ));
            conn.scenarios.push("seed001-shutdown-wr".into());
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
                conn.scenarios.push("rfc2525-zero-window".into());
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
                conn.cause = "still open at the end of the capture".into();
                conn.why = "Neither side closed while the capture ran.".into();
                conn.cannot_tell
                    .push("whether the capture ended before the connection did".into());
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
