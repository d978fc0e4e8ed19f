//! The rules: from a connection's facts to its cause, in words.
//!
//! Each branch is one kernel (or RFC) behaviour, with the facts it needs
//! and the facts that rule it out, and names the scenarios in `sim/` that
//! show it (through [`Sim`], from one place). What the capture itself
//! cannot show — a start mid-connection, one direction only, missing
//! segments, a sender that is not Linux or not the endpoint at all — is
//! gathered first ([`limits`]) and both shapes the cause and is said.

use super::facts::{ConnFacts, RstSeen, Seen, Side};
use super::stream::{TimeStyle, time_text};
use super::{Cause, Connection, RstReport};
use crate::vocab::{Sim, TcpState};
use std::fmt::Write as _;

fn plural(n: impl Into<u64>, one: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// Nanoseconds between two segments, when both have a time.
fn gap_ns(a: &Seen, b: &Seen) -> Option<u64> {
    b.time_ns?.checked_sub(a.time_ns?)
}

/// `0.250 s` between two segments, when both have a time.
fn gap(a: &Seen, b: &Seen) -> Option<String> {
    let d = gap_ns(a, b)?;
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

/// The shortest time an orphan can wait in FIN_WAIT2: tcp_fin_timeout and
/// TCP_LINGER2 are whole seconds (proc_dointvec_jiffies; `val * HZ` in
/// do_tcp_setsockopt), so an expiry sooner than 1 s is not an expiry.
const MIN_FIN_TIMEOUT_NS: u64 = 1_000_000_000;

/// The initial TTL a host most likely used, from one it was seen with:
/// stacks start at 64 (Linux, the BSDs, macOS), 128 (Windows) or 255
/// (network equipment, Solaris), and each router takes one off.
fn initial_ttl(seen: u8) -> u8 {
    match seen {
        0..=64 => 64,
        65..=128 => 128,
        _ => 255,
    }
}

/// What the capture itself cannot show about this connection.
pub(super) struct Limits {
    /// No SYN from either side: the capture began mid-connection.
    pub mid_stream: bool,
    /// Only one side's segments are in the capture.
    pub one_way: Option<usize>,
    /// Per side: bytes the other side acknowledged that the capture does
    /// not hold, and holes in what it does hold.
    pub unseen: [u64; 2],
    /// Per side: the host looks like it is not Linux (and why).
    pub not_linux: [Option<String>; 2],
}

pub(super) fn limits(f: &ConnFacts) -> Limits {
    let s = &f.sides;
    let mid_stream = s[0].syn.is_none() && s[1].syn.is_none();
    let one_way = match (s[0].segments, s[1].segments) {
        (_, 0) => Some(0),
        (0, _) => Some(1),
        _ => None,
    };
    let mut unseen = [0u64; 2];
    for x in 0..2 {
        let y = 1 - x;
        let mut acked = u64::from(acked_bytes(s[y].max_ack, &s[x]));
        if let Some((r, rst)) = &f.first_rst
            && *r == y
            && rst.flags.ack()
        {
            acked = acked.max(u64::from(acked_bytes(rst.ack, &s[x])));
        }
        unseen[x] = acked
            .saturating_sub(u64::from(s[x].data))
            .max(s[x].hole_bytes);
        if one_way.is_some() {
            unseen[x] = 0;
        }
    }
    let not_linux = [0, 1].map(|x| {
        let side = &s[x];
        let mut why = Vec::new();
        if let Some(t) = side.ttl {
            let init = initial_ttl(t);
            if init != 64 {
                why.push(format!(
                    "its segments arrive with TTL {t}, so it most likely started at {init} \
                     ({})",
                    if init == 128 {
                        "Windows does"
                    } else {
                        "network equipment and Solaris do"
                    }
                ));
            }
        }
        // Linux's reset from a live socket (tcp_send_active_reset through
        // tcp_transmit_skb) carries the socket's window; only its
        // no-socket reset (tcp_v4_send_reset) carries 0, and that one has
        // no ACK flag unless it answers a segment without ACK (a SYN).
        for r in f.rsts.iter().filter(|r| r.side == x) {
            if r.seg.flags.ack() && r.seg.win == Some(0) && side.last_win.is_some_and(|w| w > 0) {
                let answers_syn = f.sides[1 - x]
                    .recent
                    .back()
                    .is_some_and(|a| a.flags.syn() && !a.flags.ack());
                if !answers_syn {
                    why.push(format!(
                        "its R. ({}) carries win 0 though its window was open: Linux's reset \
                         from a live socket carries the socket's window, Windows' carries 0",
                        r.seg.place()
                    ));
                    break;
                }
            }
        }
        (!why.is_empty()).then(|| why.join("; "))
    });
    Limits {
        mid_stream,
        one_way,
        unseen,
        not_linux,
    }
}

/// Bytes of `sender`'s data an ACK number acknowledges: the relative ack
/// minus the SYN, and minus the FIN when it covers one. The capture may
/// hold fewer (segments it missed); numbers that cannot be right (a
/// failed inference, beyond 1 GiB) count what was seen instead.
fn acked_bytes(ack: Option<u32>, sender: &Side) -> u32 {
    let Some(a) = ack else { return 0 };
    let mut n = a.saturating_sub(1);
    if let Some(e) = sender.fin.as_ref().and_then(Seen::end)
        && a >= e
    {
        n = n.saturating_sub(1);
    }
    if n >= 1 << 30 { sender.data } else { n }
}

/// Why an RST looks like it did not come from the host it names: a TTL
/// other than that host's, an IP ID out of its sequence, a payload (Linux
/// never puts data in an RST; F5 BIG-IP writes its reset cause there).
pub(super) fn suspect(rst: &RstSeen, sender: &Side) -> Vec<String> {
    let mut why = Vec::new();
    if let (Some(t), Some(usual), false) = (rst.seg.ttl, sender.ttl, sender.ttl_varies)
        && t != usual
    {
        why.push(format!(
            "its TTL is {t}, while every other segment from that address came with TTL {usual}"
        ));
    }
    // The IP ID only supports a TTL that differs: Linux sends its
    // no-socket and TIME_WAIT resets with ID 0, and Windows counts IDs per
    // host, across connections, so an ID alone proves nothing.
    if let (false, Some(id), Some(last)) = (why.is_empty(), rst.seg.ip_id, sender.last_ip_id)
        && id != 0
        && sender.max_id_step < 64
        && sender.segments > 2
    {
        let d = id.wrapping_sub(last).min(last.wrapping_sub(id));
        if d > 1024 {
            why.push(format!(
                "its IP ID {id} is far from that host's sequence (last {last})"
            ));
        }
    }
    if let Some(p) = &rst.payload {
        why.push(format!(
            "it carries {} of payload{} (a Linux RST never does; load balancers and \
             firewalls write their reason there)",
            plural(p.len() as u64, "byte"),
            printable(p).map_or(String::new(), |t| format!(": \"{t}\""))
        ));
    }
    why
}

/// The payload as text when it is mostly printable.
pub(super) fn printable(b: &[u8]) -> Option<String> {
    let text: String = b
        .iter()
        .map(|&c| {
            if (0x20..0x7f).contains(&c) {
                c as char
            } else {
                '.'
            }
        })
        .collect();
    let letters = b
        .iter()
        .filter(|c| c.is_ascii_alphanumeric() || **c == b' ')
        .count();
    (letters * 2 >= b.len() && !b.is_empty()).then(|| text.trim_matches('.').to_string())
}

/// The kernel function that sends the no-socket reset: IPv6 has its own
/// (net/ipv6/tcp_ipv6.c).
fn no_socket_reset(f: &ConnFacts) -> &'static str {
    if f.ip_version == 6 {
        "tcp_v6_send_reset"
    } else {
        "tcp_v4_send_reset"
    }
}

/// Explains one connection from its facts.
pub(super) fn analyse(f: &ConnFacts, times: TimeStyle) -> Connection {
    // Text captures keep their time as written; pcap times are numbers.
    let when = |text: &str, s: &Seen| match (text.is_empty(), s.time_ns) {
        (true, Some(ns)) => time_text(ns, times),
        _ => text.to_string(),
    };
    let lim = limits(f);
    let a = f.a_side();
    let names = &f.names;
    let mut conn = Connection {
        id: f.id,
        stream: f.id - 1,
        a: names[a].clone(),
        b: names[1 - a].clone(),
        opened_by: f.opened_by().map(|o| names[o].clone()),
        segments: f.packets as usize,
        first: when(&f.first_text, &f.first),
        last: when(&f.last_text, &f.last),
        first_frame: f.first.index,
        last_frame: f.last.index,
        first_time_ns: f.first.time_ns,
        last_time_ns: f.last.time_ns,
        bytes: [f.sides[a].data.into(), f.sides[1 - a].data.into()],
        ended: String::new(),
        cause_id: Cause::StillOpen,
        cause: String::new(),
        why: String::new(),
        evidence: Vec::new(),
        cannot_tell: Vec::new(),
        capture: Vec::new(),
        scenarios: Vec::new(),
        rsts: f
            .rsts
            .iter()
            .map(|r| RstReport {
                from: names[r.side].clone(),
                frame: r.seg.index,
                line: r.seg.line,
                time_ns: r.seg.time_ns,
                flags: r.seg.flags.tcpdump(),
                seq: r.seg.seq,
                ack: r.seg.ack,
                win: r.seg.win,
                ttl: r.seg.ttl,
                payload: r.payload.as_deref().and_then(printable),
            })
            .collect(),
        rst_count: f.rst_count,
    };
    match &f.first_rst {
        Some((r, rst)) => explain_rst(&mut conn, f, &lim, *r, rst),
        None => explain_no_rst(&mut conn, f, &lim),
    }
    say_limits(&mut conn, f, &lim);
    conn
}

/// Says what the capture cannot show, and lists every RST past the first.
fn say_limits(conn: &mut Connection, f: &ConnFacts, lim: &Limits) {
    let names = &f.names;
    if lim.mid_stream {
        conn.capture.push(
            "the capture began mid-connection (no SYN from either side): byte counts start \
             at the first captured segment, and what came before is not known"
                .into(),
        );
    }
    if let Some(x) = lim.one_way {
        let y = 1 - x;
        if conn.cause_id != Cause::NoAnswer {
            conn.capture.push(format!(
                "only one direction is in the capture: {} sent {} and nothing from {} was \
                 captured (a filter, asymmetric routing, or a tap on one side); what {} did \
                 shows only through {}'s ACK numbers",
                names[x],
                plural(f.sides[x].segments, "segment"),
                names[y],
                names[y],
                names[x]
            ));
        }
    }
    for (name, &unseen) in names.iter().zip(&lim.unseen) {
        if unseen > 0 {
            conn.capture.push(format!(
                "segments are missing: {} of {name}'s data {} not in the capture (dropped by \
                 the capture, or lost before the capture point and retransmitted unseen); the \
                 counts here use what was acknowledged",
                plural(unseen, "byte"),
                if unseen == 1 { "is" } else { "are" }
            ));
        }
    }
    for (name, why) in names.iter().zip(&lim.not_linux) {
        if let Some(why) = why {
            conn.capture.push(format!(
                "{name} may not be Linux: {why}. The kernel functions and counters named here \
                 are Linux's; other stacks decide RST or FIN by rules of their own"
            ));
        }
    }
    if let Some(c) = f.crafted() {
        conn.capture.push(format!(
            "{} carries [{}]: no TCP stack sends these flags together; a scanner or a test \
             tool crafted it, and no kernel path explains it",
            c.place(),
            c.flags.tcpdump()
        ));
    }
    if f.rst_count > 1 {
        let more = f.rst_count - f.rsts.len() as u64;
        let list: Vec<String> = f
            .rsts
            .iter()
            .skip(1)
            .map(|r| format!("{} {} ({})", names[r.side], r.seg.text(), r.seg.place()))
            .collect();
        conn.evidence.push(format!(
            "{} RSTs in all; after the first: {}{}",
            f.rst_count,
            list.join(", "),
            if more > 0 {
                format!(", and {more} more")
            } else {
                String::new()
            }
        ));
    }
}

const CANNOT_CLOSE_OR_EXIT: &str = "whether the program called close() or exited or was killed: \
     the kernel closes a dying process's sockets the same way (no lingering)";

fn explain_rst(conn: &mut Connection, fa: &ConnFacts, lim: &Limits, r: usize, rst: &Seen) {
    let p = 1 - r;
    let names = &fa.names;
    let sides = &fa.sides;
    let (rn, pn) = (&names[r], &names[p]);
    conn.ended = format!("{rn} sent RST {} ({})", rst.text(), rst.place());
    let with_ack = rst.flags.ack();
    let rs = &sides[r];
    let ps = &sides[p];
    // What the RST answered. A bare R comes from the no-socket reset
    // (tcp_v4_send_reset), whose seq is the ack of the segment it answers:
    // the latest of the peer's segments with that ack. Otherwise the
    // peer's last segment before it.
    let answered = ps
        .recent
        .iter()
        .rev()
        .find(|x| !with_ack && x.ack.is_some() && x.ack == rst.seq)
        .or_else(|| ps.recent.back());
    // Data from the peer that the RST's sender acknowledged: what its
    // ACK numbers say, even when the capture missed some of the data.
    let acked_by_r = if with_ack {
        rst.ack.or(rs.max_ack)
    } else {
        rs.max_ack
    };
    let acked_data = acked_bytes(acked_by_r, ps);
    let handshake_seen = rs.syn.is_some() && ps.syn.is_some();

    // The connecting side, still in SYN_SENT (no SYN-ACK yet), answers
    // an ACK that does not acknowledge its SYN with R, seq = that ack:
    // tcp_rcv_synsent_state_process's reset_and_undo (RFC 9293 3.10.7.3).
    // The socket lives on and retransmits its SYN.
    if !with_ack
        && fa.opener == Some(r)
        && rs.syn.is_some()
        && ps.syn.is_none()
        && let Some(ans) = answered
        && ans.flags.ack()
        && !ans.flags.syn()
        && ans.ack != Some(1)
    {
        conn.cause_id = Cause::SynSentBadAck;
        conn.cause = format!(
            "{rn} was still connecting (SYN_SENT) and {pn} answered its SYN with an ACK that \
             does not acknowledge it: {rn}'s kernel reset that ACK and kept its connection \
             attempt{}",
            if fa.after_first_rst_continued {
                " (the handshake went on afterwards)"
            } else {
                ""
            }
        );
        conn.why = "In SYN_SENT an ACK whose ack is not ISN + 1 is unacceptable: \
                    tcp_rcv_synsent_state_process() answers it with a reset whose seq is that \
                    ack and drops it, and the socket keeps retransmitting its SYN (RFC 9293 \
                    3.10.7.3). Such an ACK comes from a peer holding stale state for the same \
                    endpoints (an old connection it still believes in), or a challenge ACK."
            .into();
        conn.evidence.push(format!(
            "{pn}'s {} ({}) answered {rn}'s SYN, and the R carries its ack",
            ans.text(),
            ans.place()
        ));
        conn.cannot_tell.push(format!(
            "why {pn} had state for these endpoints: an old connection it had not closed, or a \
             middlebox answering for it"
        ));
        return;
    }

    // Did the connection carry on after it? Then it ended nothing.
    if fa.after_first_rst_continued {
        conn.cause_id = Cause::Injected;
        conn.cause = format!(
            "an RST from {rn} ({}) that did not end the connection: both sides carried on \
             after it, so it was out of window, forged by a middlebox or an injector, or \
             ignored (RFC 5961 3.2: an RST not at rcv_nxt only draws a challenge ACK)",
            rst.place()
        );
        conn.why = "A reset the receiver accepts ends the connection at once; one whose seq \
                    is not exactly rcv_nxt is answered with a challenge ACK and dropped \
                    (tcp_validate_incoming, tcp_send_challenge_ack), and one that answers a \
                    SYN with the wrong ack is ignored in SYN_SENT (tcp_rcv_synsent_state_process)."
            .into();
        conn.evidence.push(format!(
            "segments after the RST carry new data or a new handshake step ({} in all after it)",
            fa.packets - 1 - rst.pos
        ));
        conn.cannot_tell
            .push("how the connection ended after it: see the later segments and RSTs".into());
        return;
    }

    // Did the RST come from the host it names at all?
    if let Some(first) = fa.rsts.first() {
        let why = suspect(first, rs);
        if !why.is_empty() {
            conn.cause_id = Cause::Injected;
            conn.cause = format!(
                "an RST that {rn} probably did not send: a middlebox (firewall, load \
                 balancer) or an on-path injector sent it in {rn}'s name"
            );
            conn.why = "An endpoint's resets come from its own stack, with the TTL and IP ID \
                        sequence of its other segments and no payload. A device on the path \
                        that ends a connection (a firewall's reject, a load balancer's reset, \
                        an injected reset) forges the address but not those."
                .into();
            for w in why {
                conn.evidence
                    .push(format!("the RST ({}): {w}", rst.place()));
            }
            conn.cannot_tell.push(format!(
                "whether {rn} also ended the connection: after a forged RST, {pn} resets or \
                 drops whatever {rn} sends next"
            ));
            return;
        }
    }

    // Keep-alive probes went unanswered, then R. from the prober.
    if with_ack
        && let Some(k) = &rs.first_keepalive
        && rs.peer_after_keepalive == 0
    {
        conn.cause_id = Cause::KeepaliveTimeout;
        conn.cause = format!(
            "{rn}'s keep-alive probes went unanswered ({} sent) and it gave up: \
             tcp_keepalive_timer resets the connection after TCP_KEEPCNT probes (or once \
             TCP_USER_TIMEOUT has passed), and the program's next call fails with ETIMEDOUT",
            rs.keepalives
        );
        conn.why = "With SO_KEEPALIVE, an idle connection is probed after TCP_KEEPIDLE \
                    (tcp_keepalive_time, 2 h by default) every TCP_KEEPINTVL with a segment \
                    at snd_una - 1 that the peer must acknowledge (tcp_write_wakeup, RFC 1122 \
                    4.2.3.6). When TCP_KEEPCNT probes are unanswered, tcp_keepalive_timer \
                    sends RST (tcp_send_active_reset) and reports ETIMEDOUT \
                    (TCPKeepAlive counts the probes, TCPAbortOnTimeout the end)."
            .into();
        conn.evidence.push(format!(
            "{rn} sent {} at seq snd_una - 1 from {} on, {pn} sent nothing after the first",
            plural(rs.keepalives, "keep-alive probe"),
            k.place()
        ));
        conn.cannot_tell.push(format!(
            "whether {pn} was down, unreachable, or its answers were lost on the way back"
        ));
        add_scenarios(conn, &[Sim::KeepaliveUnanswered, Sim::KeepaliveUserTimeout]);
        return;
    }

    // RST answering a SYN: nothing listening.
    if let Some(ans) = answered {
        if ans.flags.syn() && !ans.flags.ack() && rs.segments == 1 {
            conn.cause_id = Cause::Refused;
            conn.cause = format!("{rn} refused the connection: RST answering {pn}'s SYN");
            conn.why = "No socket listens on that port (or a firewall rejects with RST): the \
                        kernel's no-socket reset answers a SYN with R. ack = its seq + 1."
                .into();
            conn.evidence
                .push(format!("{pn}'s SYN ({}) was answered by RST", ans.place()));
            conn.cannot_tell
                .push("whether a program ever listened there, or a firewall answered".into());
            add_scenarios(conn, &[Sim::DisconnectListener]);
            return;
        }
        if ans.flags.syn() && ans.flags.ack() && !with_ack {
            conn.cause_id = Cause::SynSentClosed;
            conn.cause = format!(
                "RST with no ACK flag answering the SYN-ACK: {rn} gave up connecting \
                 (close() in SYN_SENT) before the SYN-ACK came"
            );
            conn.why = "close() in SYN_SENT sends nothing and frees the socket; the SYN-ACK \
                        then meets no socket, and the no-socket reset answers a segment \
                        carrying an ACK with R, seq = its ack."
                .into();
            conn.evidence
                .push(format!("the RST follows {pn}'s SYN-ACK ({})", ans.place()));
            conn.cannot_tell
                .push("whether the connect() timed out in the program or the process died".into());
            add_scenarios(conn, &[Sim::CloseSynSent]);
            return;
        }
    }
    // A bare R from the opener at ISN + 1 with no SYN-ACK in the capture:
    // it answers a SYN-ACK that arrived uncaptured (its seq is that
    // SYN-ACK's ack, tcp_v4_send_reset).
    if !with_ack
        && fa.opener == Some(r)
        && rs.syn.is_some()
        && ps.syn.is_none()
        && rst.seq == Some(1)
        && rs.data == 0
    {
        conn.cause_id = Cause::SynSentClosed;
        conn.cause = format!(
            "RST with no ACK flag at {rn}'s ISN + 1: it answers a SYN-ACK from {pn} that \
             the capture does not hold; {rn} had given up connecting (close() in \
             SYN_SENT), or it is a SYN scan (nmap -sS resets every port that answers)"
        );
        conn.why = "A no-socket reset takes its seq from the ack of the segment it answers; \
                    seq = ISN + 1 is the ack of a SYN-ACK. close() in SYN_SENT frees the \
                    socket silently, and the SYN-ACK then meets no socket. A half-open scanner \
                    sends its SYNs from a raw socket, so its kernel has no socket either."
            .into();
        conn.evidence.push(format!(
            "{rn}'s SYN ({}), then R seq 1 ({}) with nothing from {pn} captured",
            rs.syn.as_ref().map_or("?".into(), Seen::place),
            rst.place()
        ));
        conn.cannot_tell
            .push("whether a program gave up or a scanner probed the port".into());
        add_scenarios(conn, &[Sim::CloseSynSent]);
        return;
    }

    // A FIN from R, then data from P, then the RST: P wrote after R's close.
    if let (Some(f), Some(d)) = (&rs.fin, &ps.data_after_peer_fin)
        && f.pos < d.pos
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
        conn.evidence.push(format!("{rn} sent FIN ({})", f.place()));
        conn.evidence
            .push(format!("{pn} sent data after it ({})", d.place()));
        // Data that does not acknowledge the FIN left before the FIN
        // arrived: the two crossed, and the writer could not have known.
        if d.ack.is_some_and(|a| f.end().is_some_and(|e| a < e)) {
            conn.evidence.push(format!(
                "the data does not acknowledge {rn}'s FIN: {pn} sent it before the FIN \
                 reached it (they crossed)"
            ));
        }
        conn.scenarios.push(Sim::DataAfterClose.name().into());
        if !with_ack {
            // How long the orphan had been in FIN_WAIT2 when the data came.
            let since = rs
                .fin_acked_by_peer
                .as_ref()
                .filter(|k| k.pos < d.pos)
                .and_then(|k| gap(k, d));
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
            && ans.flags.fin()
            && ans.len == 0
        {
            conn.cannot_tell.push(format!(
                "whether {pn}'s data reached {rn}: the RST answers {pn}'s FIN ({}), and a \
                 FIN landing past a hole (the data lost) is reset just the same \
                 (fin-after-close-out-of-order shows that variant)",
                ans.place()
            ));
            add_scenarios(conn, &[Sim::FinAfterCloseOutOfOrder]);
        }
        conn.cannot_tell.push(format!(
            "whether {rn}'s program called close() or shutdown(SHUT_WR) then close(), or \
             exited"
        ));
        add_scenarios(
            conn,
            &[
                Sim::RaceKeepaliveIdleClose,
                Sim::RaceEarly413UnreadBody,
                Sim::RaceLingeringCloseLastWrite,
                Sim::RaceExitWhilePeerWrites,
            ],
        );
        return;
    }

    // A bare R from the side that sent FIN, answering a segment without
    // data (a FIN or an ACK) from the peer.
    if let (false, Some(f), Some(ans)) = (with_ack, &rs.fin, answered)
        && ans.len == 0
        && !ans.flags.syn()
    {
        let first_ack = rs.fin_acked_by_peer.as_ref();
        // The RST answers the first ACK of the FIN to arrive. A capture
        // shows segments as they were sent: when that ACK was delayed on
        // the way, the FIN was retransmitted meanwhile and its duplicate
        // ACK may be the last segment before the RST. A FIN retransmitted
        // after the first ACK was sent means that ACK had not arrived: the
        // socket was still in FIN_WAIT1, not an expired FIN_WAIT2.
        let fin_retransmitted_after_ack = rs.fin_rexmit_after_ack;
        let answers_first_ack = first_ack.is_some_and(|k| k.pos == ans.pos)
            || (fin_retransmitted_after_ack && ans.ack == first_ack.and_then(|k| k.ack));
        if answers_first_ack && !ans.flags.fin() {
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
            conn.evidence.push(format!("{rn} sent FIN ({})", f.place()));
            conn.evidence.push(format!(
                "the RST answers {pn}'s first ACK of that FIN, {} ({})",
                ans.text(),
                ans.place()
            ));
            conn.evidence.push(format!(
                "no ACK flag on the RST: {rn}'s socket was gone when the ACK arrived"
            ));
            conn.cannot_tell.push(format!(
                "whether TCP_LINGER2 was set on the socket or the orphan was dropped for \
                 another reason before the ACK came (it gave up retransmitting its FIN, \
                 tcp_orphan_retries; too many orphans): the FIN was acknowledged {} after it \
                 was sent",
                gap(f, ans).unwrap_or_else(|| "some time".into())
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
        if let Some(k) = first_ack.filter(|k| k.pos < ans.pos) {
            let late = if ans.flags.fin() { "FIN" } else { "ACK" };
            // An orphan waits whole seconds in FIN_WAIT2: a socket gone
            // sooner did not expire there.
            if let Some(d) = gap_ns(k, ans).filter(|&d| d < MIN_FIN_TIMEOUT_NS) {
                conn.cause_id = Cause::Linger2Orphan;
                conn.cause = format!(
                    "{rn}'s FIN was acknowledged and {:.3} s later {pn}'s {late} got a bare R: \
                     too soon for an orphan to expire in FIN_WAIT2 (tcp_fin_timeout and \
                     TCP_LINGER2 are whole seconds); the orphan was not allowed to wait \
                     (TCP_LINGER2 < 0: tcp_done as its FIN was acknowledged) or its state was \
                     lost",
                    d as f64 / 1e9
                );
                conn.why = "With TCP_LINGER2 < 0, tcp_rcv_state_process() frees an orphan the \
                            moment the ACK of its FIN arrives (tcp_done, TCPAbortOnData); any \
                            later segment meets no socket and gets the no-socket reset: R \
                            without ACK, seq = its ack."
                    .into();
                conn.evidence.push(format!(
                    "{rn} sent FIN ({}), {pn} acknowledged it ({}), and {pn}'s {late} ({}) \
                     came {:.3} s later",
                    f.place(),
                    k.place(),
                    ans.place(),
                    d as f64 / 1e9
                ));
                conn.cannot_tell.push(format!(
                    "why the R did not answer the first ACK: it may have been lost or \
                     reordered on the way to {rn}"
                ));
                conn.cannot_tell.push(CANNOT_CLOSE_OR_EXIT.into());
                add_scenarios(conn, &[Sim::Linger2NegativeOrphan, Sim::FinWait2Timeout]);
                return;
            }
            conn.cause_id = Cause::FinWait2Expired;
            conn.cause = format!(
                "{rn}'s FIN was acknowledged, then {pn}'s late {late} got a bare R: {rn} \
                 had closed and its orphan had expired in FIN_WAIT2 (tcp_fin_timeout) \
                 before {pn} {}",
                if ans.flags.fin() {
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
            conn.evidence.push(format!(
                "{rn} sent FIN ({}), {pn} acknowledged it ({})",
                f.place(),
                k.place()
            ));
            conn.evidence.push(format!(
                "{pn}'s {late} ({}) came {} later and was answered by R without ACK",
                ans.place(),
                gap(k, ans).unwrap_or_else(|| "some time".into())
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
            Some(a) if a.len > 0 => "answering data",
            Some(a) if a.flags.fin() => "answering a FIN",
            Some(_) => "answering a segment",
            None if lim.one_way.is_some() => "answering a segment the capture does not hold",
            None => "out of the blue",
        };
        conn.cause = format!(
            "RST with no ACK flag {what}: the socket was already gone (closed and orphaned, \
             or timed out)"
        );
        conn.why = format!(
            "A socket that still exists answers with R. (ACK set). A bare R comes from the \
             kernel's no-socket reset ({}: seq = the ack of the segment it answers) or from a \
             time-wait socket in its FIN_WAIT2 sub-state: the connection had ended on that \
             side before this segment came.",
            no_socket_reset(fa)
        );
        if let Some(a) = answered {
            conn.evidence.push(format!(
                "the RST answers {pn}'s {} ({})",
                a.text(),
                a.place()
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
    if let Some(z) = &rs.zero_win {
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
            .push(format!("{rn} advertised win 0 ({})", z.place()));
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
        let read = format!(
            "{rn} sent RST after acknowledging {}",
            plural(acked_data, "byte")
        );
        conn.why = "__tcp_close() (net/ipv4/tcp.c) empties the receive queue; if any byte in \
                    it was never read it counts TCPAbortOnClose, moves the socket straight to \
                    CLOSE and sends RST (tcp_send_active_reset: seq = snd_nxt, ack = rcv_nxt) \
                    instead of FIN, so the peer learns that data was lost (RFC 2525 2.17)."
            .into();
        conn.evidence.push(if acked_data > ps.data {
            format!(
                "{rn} acknowledged {} from {pn} (ack {}), {} of them in the capture",
                plural(acked_data, "byte"),
                acked_by_r.map_or("?".into(), |x| x.to_string()),
                ps.data
            )
        } else {
            format!(
                "{pn} sent {} (from {}); {rn} acknowledged {} (ack {})",
                plural(ps.data, "byte"),
                ps.first_data.as_ref().map_or("?".into(), Seen::place),
                if acked_data < ps.data {
                    format!("{acked_data} of them")
                } else if ps.data == 1 {
                    "it".into()
                } else {
                    "them".into()
                },
                acked_by_r.map_or("?".into(), |x| x.to_string())
            )
        });
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
        conn.cannot_tell.push(format!(
            "whether anything was unread at all: an abortive close (SO_LINGER {{1, 0}}, or \
             connect(AF_UNSPEC)) after {rn} read everything sends the same R. with ack = \
             rcv_nxt (tcp_disconnect; counter TCPAbortOnData instead of TCPAbortOnClose): \
             linger-zero-after-read"
        ));
        if let Some(f) = &rs.fin {
            conn.cause_id = Cause::ShutdownWrThenUnread;
            conn.cause = format!(
                "{rn} sent FIN, then RST: shutdown(SHUT_WR) and later close() with unread \
                 data ({} acknowledged, Linux, RFC 2525 2.17)",
                plural(acked_data, "byte")
            );
            conn.evidence.push(format!(
                "{rn}'s FIN ({}) came before the RST: the sending half was shut first",
                f.place()
            ));
            add_scenarios(conn, &[Sim::Seed001ShutdownWr, Sim::ShutdownWrUnread]);
            return;
        }
        conn.cause_id = Cause::UnreadData;
        conn.cause = format!(
            "{read}: close() with unread data (Linux, RFC 2525 2.17), or an abortive close \
             (SO_LINGER {{1, 0}}) whether or not anything was unread: the two send the same R."
        );
        conn.evidence.push(format!(
            "the RST acknowledges what {pn} sent (ack {}): {rn}'s socket still held it, \
             it was not a socket that was gone",
            acked_by_r.map_or("?".into(), |x| x.to_string())
        ));
        // ack = data + SYN + FIN: the FIN came in before the RST went out,
        // so the socket closed from CLOSE_WAIT. __tcp_close tests the
        // receive queue, not the state: the peer's close does not save it.
        let peer_fin_acked = ps.fin.is_some() && acked_by_r == Some(ps.data.saturating_add(2));
        if peer_fin_acked {
            conn.evidence.push(format!(
                "the RST acknowledges {pn}'s FIN too (ack {}): {rn} was in CLOSE_WAIT; a peer \
                 that has closed does not make a FIN possible, the unread bytes still do",
                ps.data.saturating_add(2)
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
        } else if r_opened
            && rs.data > 0
            && rs.first_data.as_ref().map(|s| s.pos) < ps.first_data.as_ref().map(|s| s.pos)
        {
            conn.evidence.push(format!(
                "{rn} sent a request first and reset after the response came: it closed with \
                 some of the response unread, or aborted after reading it (a client that reads \
                 to EOF before close() sends FIN: seed004-http-drained)"
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
            &[
                Sim::Seed003LingerZeroUnread,
                Sim::CloseLingerZeroUnread,
                Sim::LingerZeroAfterRead,
            ],
        );
        return;
    }

    // R. with nothing received to be unread.
    if let Some(f) = &rs.fin {
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
            f.place()
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
    conn.cause = if rs.data == 0 && ps.data == 0 && handshake_seen {
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
    conn.cannot_tell.push(if lim.mid_stream {
        "a RST after unread data and an abortive close look alike; the capture began \
         mid-connection, so what was received before it is unknown and unread data is as \
         likely"
            .into()
    } else {
        "a RST after unread data and an abortive close look alike when nothing was \
         received; here nothing was, so SO_LINGER {1, 0} is the likely one"
            .into()
    });
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

fn explain_no_rst(conn: &mut Connection, fa: &ConnFacts, lim: &Limits) {
    let sides = &fa.sides;
    let names = &fa.names;
    // Only SYNs from one side and nothing back: a scan, a firewall that
    // drops, a host that is down.
    if let Some(x) = lim.one_way
        && !fa.any_non_syn
    {
        let n = sides[x].segments;
        conn.ended = "no answer".into();
        conn.cause_id = Cause::NoAnswer;
        conn.cause = format!(
            "no answer to {}'s SYN (sent {}): the port is filtered (a firewall drops the \
             SYN), the host is down or unreachable, or the answer was not captured",
            names[x],
            plural(n, "time")
        );
        conn.why = "A closed port on a reachable Linux host answers a SYN with R. (the \
                    no-socket reset); silence means the SYN or the answer was dropped on the \
                    way. The connecting side retransmits its SYN with backoff (1 s, 2 s, 4 s \
                    ...; tcp_syn_retries) and connect() fails with ETIMEDOUT."
            .into();
        if n > 1 {
            conn.evidence.push(format!(
                "{} sent its SYN {} times: it did not hear an answer either",
                names[x], n
            ));
        }
        conn.cannot_tell.push(
            "whether the SYN was dropped, the host is down, or only the capture missed the \
             answer (one direction captured)"
                .into(),
        );
        add_scenarios(conn, &[Sim::SyncntConnectTimeout]);
        return;
    }
    // One direction only, past the handshake: say what the one side did,
    // and read the other side's only through its ACK numbers.
    if let Some(x) = lim.one_way {
        let y = 1 - x;
        let xs = &sides[x];
        conn.cause_id = Cause::OneDirection;
        conn.ended = match &xs.fin {
            Some(f) => format!(
                "{} sent FIN ({}); {}'s side is not in the capture",
                names[x],
                f.place(),
                names[y]
            ),
            None => format!(
                "no FIN or RST from {}; {}'s side is not in the capture",
                names[x], names[y]
            ),
        };
        conn.cause = format!(
            "only {}'s segments were captured: {}{}; how {} ended cannot be seen",
            names[x],
            if xs.fin.is_some() {
                "it closed its sending half (FIN)"
            } else {
                "it did not close"
            },
            match xs.max_ack {
                Some(a) if a > 1 && a < 1 << 30 => format!(
                    ", and its ACKs acknowledge {} of {}'s sequence space (data, and a FIN \
                     if {} closed)",
                    plural(a - 1, "number"),
                    names[y],
                    names[y]
                ),
                _ => String::new(),
            },
            names[y]
        );
        conn.why = "A capture with one direction (a capture filter on one host, asymmetric \
                    routing, a one-way tap) shows what one side sent; the other side's FIN or \
                    RST, its data and its window show only as the first side's ACK numbers, and \
                    a RST from it not at all."
            .into();
        conn.cannot_tell.push(format!(
            "whether {} sent FIN or RST, or is still open: none of its segments is in the capture",
            names[y]
        ));
        return;
    }
    let fins = [sides[0].fin.clone(), sides[1].fin.clone()];
    match &fins {
        [Some(fa0), Some(fb0)] => {
            let (first, second) = if fa0.pos <= fb0.pos { (0, 1) } else { (1, 0) };
            let (first_fin, second_fin) = if first == 0 {
                (&fa0, &fb0)
            } else {
                (&fb0, &fa0)
            };
            let (x, y) = (&names[first], &names[second]);
            // The ACK of the second FIN: a segment from the first closer
            // after it.
            let last_ack = sides[first].after_peer_fin_ack;
            conn.ended = format!(
                "{x} sent FIN ({}), {y} sent FIN ({}){}",
                first_fin.place(),
                second_fin.place(),
                if last_ack {
                    ", and the last FIN was acknowledged"
                } else {
                    "; the last ACK is not in the capture"
                }
            );
            // Crossing FINs: the second FIN does not acknowledge the first,
            // so its sender had not received it when it closed.
            let crossed = match (first_fin.seq, second_fin.ack) {
                (Some(q), Some(ak)) => ak < q.wrapping_add(first_fin.len).wrapping_add(1),
                _ => false,
            };
            let unacked = [first, second]
                .into_iter()
                .find(|&z| sides[z].fin_acked_by_peer.is_none() && sides[z].fin_count > 1);
            if let (true, Some(z)) = (crossed, unacked) {
                let (zn, on) = (&names[z], &names[1 - z]);
                conn.cause_id = Cause::SimultaneousClose;
                conn.cause = format!(
                    "the FINs crossed, but {zn}'s FIN was never acknowledged (sent {} times): \
                     {on} was gone, or what {zn} sent no longer reached it; {zn} retransmits \
                     until it gives up (tcp_orphan_retries, tcp_retries2)",
                    sides[z].fin_count
                );
                conn.why = "In a simultaneous close each FIN is acknowledged and both sides \
                            reach TIME_WAIT; a FIN that is retransmitted and never acknowledged \
                            means the other side (or the path to it) stopped answering."
                    .into();
                conn.evidence.push(format!(
                    "{zn}'s FIN ({}) was sent {} times with no ACK of it in the capture",
                    sides[z].fin.as_ref().map_or("?".into(), Seen::place),
                    sides[z].fin_count
                ));
                conn.cannot_tell.push(format!(
                    "whether {on}'s host went away or only the capture or the path lost the ACKs"
                ));
                add_scenarios(conn, &[Sim::CloseSimultaneous, Sim::DropFinRetransmit]);
                return;
            }
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
                    second_fin.text(),
                    second_fin.place(),
                    first_fin.text(),
                    first_fin.place()
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
                add_scenarios(conn, &[Sim::CloseSimultaneous, Sim::RaceSimultaneousClose]);
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
                let answers = sides[first].after_peer_fin;
                conn.evidence.push(format!(
                    "{y} sent its FIN {copies} times and {x} answered {}: {y} sending \
                     again means the earlier answers did not reach it; in TIME_WAIT every \
                     copy of the FIN is answered (to tcp_oow_rate_limited a FIN is data, \
                     so the 500 ms ACK rate limit does not hold the answer back)",
                    plural(answers, "time")
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
            conn.ended = format!("only {x} sent FIN ({})", f.place());
            // The FIN went out with the window shut and the peer probes
            // it: the closer left data unread and sent FIN anyway, the
            // hang RFC 2525 2.17 describes (Linux sends RST instead,
            // __tcp_close; shutdown(SHUT_WR) sends FIN whatever is unread).
            if xs.last_win == Some(0) && ys.probes > 0 {
                conn.cause_id = Cause::ZeroWindowHang;
                conn.cause = format!(
                    "{x} sent FIN with its window at 0 and {y} keeps probing it: {x} closed \
                     with data unread, and the FIN instead of an RST leaves {y} probing the \
                     zero window forever (the hang of RFC 2525 2.17); a Linux close() would \
                     have sent RST, so {x} is not Linux or only called shutdown(SHUT_WR)"
                );
                conn.why = "__tcp_close() sends RST when unread data is left so that the peer \
                            learns it (RFC 2525 2.17); a stack that always sends FIN leaves the \
                            unread bytes filling the window, and the peer's zero-window probes \
                            (tcp_probe_timer) are answered with win 0 as long as the host lives."
                    .into();
                conn.evidence.push(format!(
                    "{x}'s FIN ({}) and its last window: win 0{}",
                    f.place(),
                    xs.zero_win
                        .as_ref()
                        .map_or(String::new(), |z| format!(", shut since {}", z.place()))
                ));
                conn.evidence.push(format!(
                    "{y} sent {} into the closed window while it stayed shut (zero-window probes)",
                    plural(ys.probes, "segment")
                ));
                conn.cannot_tell.push(format!(
                    "whether {x}'s program closed or only shut down its sending half: either \
                     way nobody reads the {} {y} sent",
                    plural(ys.data, "byte")
                ));
                add_scenarios(conn, &[Sim::Rfc2525ZeroWindow, Sim::BulkNonreaderClose]);
                return;
            }
            conn.cause_id = Cause::HalfClosed;
            let acked = xs.fin_acked_by_peer.as_ref();
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
                let acks_before_last = xs
                    .last_fin_pos
                    .is_some_and(|last| acked.is_some_and(|k| k.pos < last));
                conn.evidence.push(format!(
                    "{x} sent its FIN {} times ({} first){}",
                    xs.fin_count,
                    f.place(),
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
            } else if ys.data > 0 && xs.zero_win.is_none() {
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
                    Sim::SiocinqFin,
                    Sim::RaceEarly413LingeringClose,
                    Sim::RaceLingerTimeoutLastAck,
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
                    sides[z].zero_win.as_ref().map_or("?".into(), Seen::place)
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
                        Sim::UserTimeoutZeroWindow,
                    ],
                );
            } else if let Some(x) = (0..2).find(|&x| {
                let (xs, ys) = (&sides[x], &sides[1 - x]);
                xs.retransmits >= 2
                    && fa.last.pos == xs.last_retransmit.as_ref().map_or(u64::MAX, |r| r.pos)
                    && ys.max_ack.is_none_or(|a| a <= xs.data)
            }) {
                let (xn, yn) = (&names[x], &names[1 - x]);
                let xs = &sides[x];
                conn.ended = format!("{xn}'s retransmissions, then nothing");
                conn.cause_id = Cause::RetransmitTimeout;
                conn.cause = format!(
                    "{xn} retransmitted data {} without an acknowledgment from {yn}, and the \
                     capture ends there: its retransmission timer gives up without a segment \
                     (tcp_retries2, or TCP_USER_TIMEOUT), and the program gets ETIMEDOUT",
                    plural(xs.retransmits, "time")
                );
                conn.why = "tcp_retransmit_timer() backs off on each retransmission; once \
                            tcp_write_timeout() finds the connection timed out (TCP_USER_TIMEOUT \
                            if set, else about 15 minutes of tcp_retries2), tcp_write_err() \
                            closes the socket with ETIMEDOUT. No RST is sent: the peer, if it is \
                            alive, never learns."
                    .into();
                conn.evidence.push(format!(
                    "the last segment of the capture is {xn}'s retransmission ({})",
                    xs.last_retransmit.as_ref().map_or("?".into(), Seen::place)
                ));
                conn.cannot_tell.push(format!(
                    "whether {xn} gave up or the capture ended first: the timeout leaves nothing \
                     on the wire"
                ));
                add_scenarios(conn, &[Sim::UserTimeoutData]);
            } else if !fa.any_non_syn {
                conn.ended = "no FIN or RST".into();
                conn.cause_id = Cause::HandshakeIncomplete;
                conn.cause = "the handshake did not complete in the capture".into();
                conn.why = "Only SYN and SYN-ACK segments were seen: the handshake's last ACK \
                            never came (or was not captured); the answering side retransmits \
                            its SYN-ACK (tcp_synack_retries) and drops the request."
                    .into();
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
                        Sim::KeepaliveAnswered,
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
