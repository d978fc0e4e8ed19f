//! What each scenario in `sim/` was built to show, as one of explain's
//! causes: the contract between the scenario corpus and `finrst explain`.
//!
//! Every `sim/*.sim` has one row. Run on the model or the linux engine and
//! written as a pcap (or rendered by `tcpdump -nn -r`), the scenario's
//! capture must be explained with that cause, the cause sentence must
//! contain `phrase` (what sets the scenario apart when the id is shared),
//! and the scenario must be among those the explanation names (the one to
//! run, or a related one that looks the same on the wire).
//! `tests/explain_corpus.rs` and `tests/explain_linux.rs` hold explain to it.

use super::{Cause, Report};
use crate::vocab::Sim;

/// One scenario's expected explanation.
#[derive(Clone, Copy, Debug)]
pub struct BuiltToShow {
    /// The scenario.
    pub name: Sim,
    /// The cause of every connection in its capture.
    pub cause: Cause,
    /// Text the cause sentence must contain.
    pub phrase: &'static str,
    /// What the scenario shows, in a few words.
    pub shows: &'static str,
    /// The causes of the connections after the first, for a scenario that
    /// opens several (a reconnect on the same 4-tuple); empty: every
    /// connection has `cause`.
    pub later: &'static [Cause],
}

const fn row(name: Sim, cause: Cause, phrase: &'static str, shows: &'static str) -> BuiltToShow {
    row_then(name, cause, phrase, shows, &[])
}

/// A row for a scenario with several connections: the first has `cause`
/// (and `phrase`), the next ones `later`, in order.
const fn row_then(
    name: Sim,
    cause: Cause,
    phrase: &'static str,
    shows: &'static str,
    later: &'static [Cause],
) -> BuiltToShow {
    BuiltToShow {
        name,
        cause,
        phrase,
        shows,
        later,
    }
}

/// The table, in file-name order.
pub const BUILT_TO_SHOW: &[BuiltToShow] = &[
    row(
        Sim::BulkNonreaderClose,
        Cause::ZeroWindowHang,
        "keeps probing",
        "1 MB into a non-reader, then close(): the FIN waits behind the data; the orphan probes, then gives up silently",
    ),
    row(
        Sim::BulkNonreaderLinger,
        Cause::ZeroWindowHang,
        "keeps probing",
        "1 MB into a non-reader, SO_LINGER {1, 5}: close() blocks 5 s, then the orphan probes and gives up",
    ),
    row(
        Sim::BulkRepeatClose,
        Cause::NormalClose,
        "normal close",
        "20 x 64 KiB written and read in a repeat block, then both close: FIN handshake, TIME_WAIT on the client",
    ),
    row(
        Sim::Bulk200kClose,
        Cause::ZeroWindowHang,
        "keeps probing",
        "200 kB into a non-reader: the window grows, closes, and is probed",
    ),
    row(
        Sim::CloseFinHandshake,
        Cause::NormalClose,
        "normal close",
        "all data read: FIN handshake, TIME_WAIT on the closer",
    ),
    row(
        Sim::CloseLingerTimeout,
        Cause::HalfClosed,
        "retransmitted",
        "SO_LINGER {1, 2}: close() blocks in FIN_WAIT1 while the FIN's ACK is held; no RST",
    ),
    row(
        Sim::CloseLingerZero,
        Cause::LingerZero,
        "SO_LINGER {1, 0}",
        "SO_LINGER {1, 0}: abortive close, R. (TCPAbortOnData)",
    ),
    row(
        Sim::CloseLingerZeroUnread,
        Cause::UnreadData,
        "close() with unread data",
        "SO_LINGER {1, 0} with unread data: the unread-data R. (TCPAbortOnClose)",
    ),
    row(
        Sim::CloseSimultaneous,
        Cause::SimultaneousClose,
        "FINs crossed",
        "simultaneous close: both sides CLOSING then TIME_WAIT",
    ),
    row(
        Sim::CloseSynSent,
        Cause::SynSentClosed,
        "close() in SYN_SENT",
        "close() while connecting: nothing sent; the SYN-ACK gets a bare R",
    ),
    row(
        Sim::CloseUnreadRst,
        Cause::UnreadData,
        "acknowledging 1 byte: close() with unread data",
        "close() with one unread byte: R.",
    ),
    row(
        Sim::DataAfterClose,
        Cause::DataAfterFin,
        "wrote after",
        "data for a closed (orphaned) socket: bare R",
    ),
    row(
        Sim::Disconnect,
        Cause::LingerZero,
        "connect(AF_UNSPEC)",
        "connect(AF_UNSPEC): tcp_disconnect sends R.",
    ),
    row_then(
        Sim::DisconnectFinWait2,
        Cause::AbortAfterFin,
        "SO_LINGER {1, 0}",
        "connect(AF_UNSPEC) in FIN_WAIT2: R. after the FIN (seq counts it), then a reconnect",
        &[Cause::StillOpen],
    ),
    row(
        Sim::DisconnectLastAckFinSent,
        Cause::Linger2Orphan,
        "bare R",
        "connect(AF_UNSPEC) in LAST_ACK with the FIN sent: silent; the ACK gets R",
    ),
    row(
        Sim::DisconnectLastAckFinUnsent,
        Cause::LingerZero,
        "connect(AF_UNSPEC)",
        "connect(AF_UNSPEC) in LAST_ACK with the FIN unsent (snd_nxt != write_seq): R.",
    ),
    row(
        Sim::DisconnectListener,
        Cause::Refused,
        "refused the connection",
        "connect(AF_UNSPEC) on a listener stops it: the next SYN gets R.",
    ),
    row_then(
        Sim::DisconnectReconnect,
        Cause::LingerZero,
        "connect(AF_UNSPEC)",
        "connect(AF_UNSPEC) then connect() again from the same port: R., then a new connection",
        &[Cause::StillOpen],
    ),
    row_then(
        Sim::DisconnectReconnectRunnerPort,
        Cause::LingerZero,
        "connect(AF_UNSPEC)",
        "connect(AF_UNSPEC), then connect() without `from`: the bound port again, names by socket",
        &[Cause::StillOpen],
    ),
    row(
        Sim::DelayedFinThenCloseUnread,
        Cause::UnreadData,
        "close() with unread data",
        "a delayed FIN is waited for, then close() with unread data: R.",
    ),
    row(
        Sim::DropFinRetransmit,
        Cause::HalfClosed,
        "retransmitted",
        "a lost FIN is retransmitted by the RTO timer",
    ),
    row(
        Sim::ExitLingerIgnored,
        Cause::HalfClosed,
        "closed its sending half",
        "an exiting process does not linger: a FIN",
    ),
    row(
        Sim::ExitUnread,
        Cause::UnreadData,
        "unread data",
        "a killed process with unread data: R.",
    ),
    row(
        Sim::FinAfterCloseOutOfOrder,
        Cause::DataAfterFin,
        "wrote after",
        "a bare FIN past a hole, after close(): R",
    ),
    row(
        Sim::FinWait2Timeout,
        Cause::HalfClosed,
        "tcp_fin_timeout",
        "an orphan in FIN_WAIT2 expires silently",
    ),
    row(
        Sim::HalfDrainedClose,
        Cause::UnreadData,
        "close() with unread data",
        "a reader drains half of 128 kB and closes: R.",
    ),
    row(
        Sim::HorizonBlockingRecv,
        Cause::StillOpen,
        "still open",
        "a blocking recv() cut short by the horizon",
    ),
    row(
        Sim::HttpUnread,
        Cause::UnreadData,
        "485 bytes",
        "HTTP response left unread: R. seq 19 ack 486",
    ),
    row(
        Sim::KeepaliveAnswered,
        Cause::StillOpen,
        "still open",
        "keep-alive probes answered: the connection stays open",
    ),
    row(
        Sim::KeepaliveUnanswered,
        Cause::KeepaliveTimeout,
        "keep-alive probes went unanswered",
        "TCP_KEEPCNT unanswered probes, then RST and ETIMEDOUT",
    ),
    row(
        Sim::KeepaliveUserTimeout,
        Cause::KeepaliveTimeout,
        "keep-alive probes went unanswered",
        "keep-alive under TCP_USER_TIMEOUT: it gives up by time",
    ),
    row(
        Sim::LingerCloseTogether,
        Cause::HalfClosed,
        "half-closed",
        "a lingering close() inside together { } blocks until the FIN's ACK",
    ),
    row(
        Sim::LingerZeroAfterRead,
        Cause::UnreadData,
        "or an abortive close (SO_LINGER {1, 0}) whether or not anything was unread",
        "SO_LINGER {1, 0} after reading everything: the same R. as unread data",
    ),
    row(
        Sim::Linger2NegativeFinWait2,
        Cause::AbortAfterFin,
        "TCP_LINGER2 < 0",
        "TCP_LINGER2 -1 and close() in FIN_WAIT2: R. (TCPAbortOnLinger)",
    ),
    row(
        Sim::Linger2NegativeOrphan,
        Cause::Linger2Orphan,
        "TCP_LINGER2 < 0",
        "TCP_LINGER2 -1, the orphan's FIN is acknowledged: bare R",
    ),
    row(
        Sim::ListenCloseAcceptQueue,
        Cause::ListenerClosed,
        "accept queue",
        "closing a listener resets the connections nobody accepted",
    ),
    row(
        Sim::OobInlineDrained,
        Cause::HalfClosed,
        "urgent",
        "SO_OOBINLINE: the urgent byte read inline, close() sends F.",
    ),
    row(
        Sim::OobReadClose,
        Cause::UnreadData,
        "unread data",
        "the urgent byte read with MSG_OOB still counts as unread: R.",
    ),
    row(
        Sim::RaceEarly413LingeringClose,
        Cause::HalfClosed,
        "half-closed",
        "race: an early 413 with nginx-style lingering close",
    ),
    row(
        Sim::RaceEarly413UnreadBody,
        Cause::DataAfterFin,
        "wrote after",
        "race: an early 413 while the request body still comes",
    ),
    row(
        Sim::RaceExitWhilePeerWrites,
        Cause::DataAfterFin,
        "wrote after",
        "race: a process exits while its peer writes",
    ),
    row(
        Sim::RaceKeepaliveIdleClose,
        Cause::DataAfterFin,
        "wrote after",
        "race: the idle-close FIN crosses a keep-alive request",
    ),
    row(
        Sim::RaceLingerTimeoutLastAck,
        Cause::HalfClosed,
        "half-closed",
        "race: SO_LINGER {1, N} expiring against the last ACK",
    ),
    row(
        Sim::RaceLingeringCloseLastWrite,
        Cause::DataAfterFin,
        "wrote after",
        "race: a lingering close against the peer's last write",
    ),
    row(
        Sim::RaceSimultaneousClose,
        Cause::SimultaneousClose,
        "simultaneous close",
        "race: which side gets TIME_WAIT",
    ),
    row(
        Sim::RcvbufListener,
        Cause::ZeroWindowRst,
        "zero window then RST",
        "SO_RCVBUF on the listener: a small window from the SYN-ACK on, zero window, then R.",
    ),
    row(
        Sim::RepairFinWait2,
        Cause::HalfClosed,
        "half-closed",
        "TCP_REPAIR on a FIN_WAIT2 socket (only a listener is refused), then close(): nothing sent",
    ),
    row(
        Sim::RepairClose,
        Cause::StillOpen,
        "TCP_REPAIR",
        "close() in TCP_REPAIR mode sends nothing",
    ),
    row(
        Sim::ResetThenSend,
        Cause::UnreadData,
        "unread data",
        "after an RST: ECONNRESET once, then 0, then EPIPE; close() sends nothing",
    ),
    row(
        Sim::Rfc2525Bulk,
        Cause::ZeroWindowRst,
        "zero window then RST",
        "RFC 2525 zero-window with 1 MB: R. over the unread data",
    ),
    row(
        Sim::RepairZeroWindowProbes,
        Cause::ZeroWindowHang,
        "keeps probing",
        "TCP_REPAIR on a socket probing a zero window: the probes go on, nothing else is sent",
    ),
    row(
        Sim::Rfc2525ZeroWindow,
        Cause::ZeroWindowRst,
        "zero window then RST",
        "RFC 2525 2.17: zero window, the receiver dies with its queue full: R.",
    ),
    row(
        Sim::Seed000EpolloutUnread,
        Cause::UnreadData,
        "acknowledging 1 byte: close() with unread data",
        "the server writes a byte on EPOLLOUT; the client closes unread: R.",
    ),
    row(
        Sim::Seed001FullRead,
        Cause::NormalClose,
        "normal close",
        "everything read: FIN handshake, TIME_WAIT on the server",
    ),
    row(
        Sim::Seed001PartialRead,
        Cause::UnreadData,
        "unread data",
        "the server reads 1 of 2 bytes and closes: R.",
    ),
    row(
        Sim::Seed001ShutdownRd,
        Cause::UnreadData,
        "unread data",
        "shutdown(SHUT_RD) does not purge: close() still sends R.",
    ),
    row(
        Sim::Seed001ShutdownWr,
        Cause::ShutdownWrThenUnread,
        "shutdown(SHUT_WR)",
        "shutdown(SHUT_WR) sends FIN; close() with unread data then R.",
    ),
    row(
        Sim::Seed002KillClient,
        Cause::UnreadData,
        "unread data",
        "urgent bytes read with MSG_OOB only, the client is killed: R.",
    ),
    row(
        Sim::Seed002OobReadClose,
        Cause::UnreadData,
        "unread data",
        "the urgent byte read only with MSG_OOB, then close: R.",
    ),
    row(
        Sim::Seed003LingerTimeout,
        Cause::HalfClosed,
        "closed its sending half",
        "SO_LINGER {1, 5}: close() waits for the FIN's ACK; no RST on timeout",
    ),
    row(
        Sim::Seed003LingerZero,
        Cause::LingerZero,
        "SO_LINGER {1, 0}",
        "SO_LINGER {1, 0} right after connect: R. (TCPAbortOnData)",
    ),
    row(
        Sim::Seed003LingerZeroUnread,
        Cause::UnreadData,
        "unread data",
        "SO_LINGER {1, 0} with unread data: R. (TCPAbortOnClose)",
    ),
    row(
        Sim::Seed004HttpDrained,
        Cause::NormalClose,
        "normal close",
        "the response read to EOF: FIN, TIME_WAIT on the client",
    ),
    row(
        Sim::Seed004HttpUnread,
        Cause::UnreadData,
        "485 bytes",
        "the 485-byte response left unread: R. seq 19 ack 486",
    ),
    row(
        Sim::ShutdownRdUnread,
        Cause::UnreadData,
        "unread data",
        "shutdown(SHUT_RD) does not purge: close() still sends R.",
    ),
    row(
        Sim::ShutdownWrUnread,
        Cause::ShutdownWrThenUnread,
        "shutdown(SHUT_WR)",
        "shutdown(SHUT_WR) sends F.; close() with unread data then R.",
    ),
    row(
        Sim::SiocinqFin,
        Cause::HalfClosed,
        "half-closed",
        "SIOCINQ counts the bytes a read returns, not the FIN",
    ),
    row(
        Sim::SndbufSmallEagain,
        Cause::ZeroWindowHang,
        "keeps probing",
        "small SO_SNDBUF and SO_RCVBUF: 32741-byte sends, EAGAIN, drops beyond rcvbuf",
    ),
    row(
        Sim::SyncntConnectTimeout,
        Cause::NoAnswer,
        "no answer",
        "TCP_SYNCNT 2: three SYNs, then ETIMEDOUT",
    ),
    row(
        Sim::TimewaitFinRetransmitAcked,
        Cause::NormalClose,
        "normal close",
        "a FIN retransmitted into TIME_WAIT is answered every time (a FIN is data to the ACK rate limit)",
    ),
    row(
        Sim::TwDescriptorOpen,
        Cause::NormalClose,
        "normal close",
        "TIME_WAIT with the descriptor open: the full socket is CLOSE, close() sends nothing",
    ),
    row_then(
        Sim::TwFinTimeoutIgnored,
        Cause::NormalClose,
        "normal close",
        "TIME_WAIT lasts 60 s with tcp_fin_timeout 5; the port is free after it",
        &[Cause::StillOpen],
    ),
    row(
        Sim::TwOwnPortEaddrinuse,
        Cause::NormalClose,
        "normal close",
        "connect() from a port our TIME_WAIT holds: EADDRINUSE",
    ),
    row_then(
        Sim::TwReconnectServerTimewait,
        Cause::NormalClose,
        "normal close",
        "reconnect on the 4-tuple the server holds in TIME_WAIT: accepted at once",
        &[Cause::StillOpen],
    ),
    row(
        Sim::UserTimeoutData,
        Cause::RetransmitTimeout,
        "retransmitted data",
        "TCP_USER_TIMEOUT ends a connection whose data gets no ACK, silently",
    ),
    row(
        Sim::UserTimeoutZeroWindow,
        Cause::ZeroWindowHang,
        "zero window",
        "TCP_USER_TIMEOUT ends zero-window probing, silently",
    ),
    row(
        Sim::ZeroWindowExit,
        Cause::ZeroWindowRst,
        "zero window then RST",
        "zero window, receiver killed: R.",
    ),
];

/// The row of a scenario.
pub fn built_to_show(name: &str) -> Option<&'static BuiltToShow> {
    BUILT_TO_SHOW.iter().find(|b| b.name.name() == name)
}

/// Whether `report` (the explanation of scenario `name`'s capture) names
/// the cause the scenario was built to show, for every connection; the
/// error says what differs.
pub fn check(name: &str, report: &Report) -> Result<(), String> {
    let want = built_to_show(name).ok_or_else(|| format!("{name}: not in BUILT_TO_SHOW"))?;
    if report.connections.is_empty() {
        return Err(format!("{name}: no connection explained"));
    }
    let mut errs = Vec::new();
    if !want.later.is_empty() && report.connections.len() != 1 + want.later.len() {
        errs.push(format!(
            "{} connections explained, want {}",
            report.connections.len(),
            1 + want.later.len()
        ));
    }
    for (i, c) in report.connections.iter().enumerate() {
        let cause = match i {
            0 => want.cause,
            _ => want.later.get(i - 1).copied().unwrap_or(want.cause),
        };
        if c.cause_id != cause {
            errs.push(format!(
                "connection {}: cause {:?}, want {:?}",
                c.id, c.cause_id, cause
            ));
        }
        if (i == 0 || want.later.is_empty()) && !c.cause.contains(want.phrase) {
            errs.push(format!(
                "connection {}: the cause does not say {:?}: {}",
                c.id, want.phrase, c.cause
            ));
        }
        if !c.scenarios.iter().any(|s| s == name) {
            errs.push(format!(
                "connection {}: {name} is not among the scenarios named {:?}",
                c.id, c.scenarios
            ));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{name} ({}):\n  {}\n{}",
            want.shows,
            errs.join("\n  "),
            report.to_text()
        ))
    }
}
