//! Why the kernel sent an RST (`enum sk_rst_reason`,
//! include/net/rstreason.h).

use super::vocab_enum;

vocab_enum! {
    /// The reason the kernel gives an RST, with its number in Linux 6.18
    /// (as the `tcp:tcp_send_reset` tracepoint's format prints them).
    /// The model tags each RST it sends with one; the linux engine reads
    /// the kernel's from that tracepoint.
    #[non_exhaustive]
    pub enum RstReason ("an RST reason (sk_rst_reason)") as u8 {
        NotSpecified = 0 => "NOT_SPECIFIED",
        NoSocket = 1 => "NO_SOCKET",
        TcpInvalidAckSequence = 2 => "TCP_INVALID_ACK_SEQUENCE",
        TcpRfc7323Paws = 3 => "TCP_RFC7323_PAWS",
        TcpTooOldAck = 4 => "TCP_TOO_OLD_ACK",
        TcpAckUnsentData = 5 => "TCP_ACK_UNSENT_DATA",
        TcpFlags = 6 => "TCP_FLAGS",
        TcpOldAck = 7 => "TCP_OLD_ACK",
        TcpAbortOnData = 8 => "TCP_ABORT_ON_DATA",
        TcpTimewaitSocket = 9 => "TCP_TIMEWAIT_SOCKET",
        InvalidSyn = 10 => "INVALID_SYN",
        TcpAbortOnClose = 11 => "TCP_ABORT_ON_CLOSE",
        TcpAbortOnLinger = 12 => "TCP_ABORT_ON_LINGER",
        TcpAbortOnMemory = 13 => "TCP_ABORT_ON_MEMORY",
        TcpState = 14 => "TCP_STATE",
        TcpKeepaliveTimeout = 15 => "TCP_KEEPALIVE_TIMEOUT",
        TcpDisconnectWithData = 16 => "TCP_DISCONNECT_WITH_DATA",
        MptcpRstEunspec = 17 => "MPTCP_RST_EUNSPEC",
        MptcpRstEmptcp = 18 => "MPTCP_RST_EMPTCP",
        MptcpRstEresource = 19 => "MPTCP_RST_ERESOURCE",
        MptcpRstEprohibit = 20 => "MPTCP_RST_EPROHIBIT",
        MptcpRstEwq2big = 21 => "MPTCP_RST_EWQ2BIG",
        MptcpRstEbadperf = 22 => "MPTCP_RST_EBADPERF",
        MptcpRstEmiddlebox = 23 => "MPTCP_RST_EMIDDLEBOX",
        Error = 24 => "ERROR",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &r in RstReason::ALL {
            assert_eq!(r.name().parse::<RstReason>(), Ok(r));
        }
        assert_eq!(RstReason::TcpAbortOnClose as u8, 11);
    }
}
