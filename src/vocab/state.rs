//! TCP states (`include/net/tcp_states.h`).

use super::vocab_enum;

vocab_enum! {
    /// A TCP state with the kernel's number, named as `/proc/net/tcp`'s
    /// readers and `ss` name it (`TIME_WAIT`, `FIN_WAIT2`). `CLOSE` is also
    /// what a socket that is gone reads as; a time-wait socket shows its
    /// sub-state (`FIN_WAIT2` or `TIME_WAIT`, `tw_substate`).
    pub enum TcpState ("a TCP state name") as u8 {
        Established = 1 => "ESTABLISHED",
        SynSent = 2 => "SYN_SENT",
        SynRecv = 3 => "SYN_RECV",
        FinWait1 = 4 => "FIN_WAIT1",
        FinWait2 = 5 => "FIN_WAIT2",
        TimeWait = 6 => "TIME_WAIT",
        Close = 7 => "CLOSE",
        CloseWait = 8 => "CLOSE_WAIT",
        LastAck = 9 => "LAST_ACK",
        Listen = 10 => "LISTEN",
        Closing = 11 => "CLOSING",
        /// A request socket (`inet_reqsk_alloc`): a SYN answered, no child
        /// socket yet.
        NewSynRecv = 12 => "NEW_SYN_RECV",
    }
}

impl TcpState {
    /// The state with the kernel's number `n` (`sk_state`, the
    /// `sock:inet_sock_set_state` tracepoint, `tcpi_state`).
    pub fn from_kernel(n: u32) -> Option<TcpState> {
        Self::ALL.iter().copied().find(|s| *s as u32 == n)
    }

    /// The state by its C name in include/net/tcp_states.h
    /// (`TCP_CLOSE_WAIT`), as packetdrill scripts write it.
    pub fn from_c_name(name: &str) -> Option<TcpState> {
        name.strip_prefix("TCP_")?.parse().ok()
    }

    /// `1 << sk_state` (the kernel's `TCPF_*`), for its state-set tests.
    pub const fn f(self) -> u32 {
        1 << (self as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_numbers_are_the_kernels() {
        for &s in TcpState::ALL {
            assert_eq!(s.name().parse::<TcpState>(), Ok(s));
            assert_eq!(TcpState::from_kernel(s as u32), Some(s));
        }
        assert_eq!(TcpState::TimeWait as u8, 6);
        assert_eq!(TcpState::from_kernel(0), None);
        assert!("TIME-WAIT".parse::<TcpState>().is_err());
        assert_eq!(
            TcpState::from_c_name("TCP_CLOSE_WAIT"),
            Some(TcpState::CloseWait)
        );
        assert_eq!(TcpState::from_c_name("CLOSE_WAIT"), None);
        assert_eq!(
            serde_json::to_string(&TcpState::CloseWait).unwrap(),
            "\"CLOSE_WAIT\""
        );
    }
}
