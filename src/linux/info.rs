//! `getsockopt` results as the kernel returns them, decoded into the
//! engine-independent [`SockInfo`].

use crate::vocab::{MemInfo, SockInfo, TcpInfo};
use std::mem::offset_of;

/// `SO_MEMINFO`: a `u32` array indexed by `SK_MEMINFO_*`
/// (include/uapi/linux/sock_diag.h).
pub fn decode_meminfo(b: &[u8]) -> SockInfo {
    // SK_MEMINFO_RMEM_ALLOC, _RCVBUF, _WMEM_ALLOC, _SNDBUF, _FWD_ALLOC,
    // _WMEM_QUEUED are 0..=5.
    let val = |i: usize| -> i64 {
        b.get(4 * i..4 * i + 4)
            .map(|x| u32::from_ne_bytes([x[0], x[1], x[2], x[3]]) as i64)
            .unwrap_or(-1)
    };
    SockInfo::Mem(MemInfo {
        rmem_alloc: val(0),
        rcvbuf: val(1),
        wmem_alloc: val(2),
        sndbuf: val(3),
        fwd_alloc: val(4),
        wmem_queued: val(5),
    })
}

/// `TCP_INFO`: `struct tcp_info` as the C library declares it. A shorter
/// structure (an older kernel) leaves the fields it lacks at -1.
pub fn decode_tcpinfo(b: &[u8]) -> SockInfo {
    let (t, n) = super::sys::tcp_info_from(b);
    macro_rules! field {
        ($f:ident) => {{
            let end = offset_of!(libc::tcp_info, $f) + size_of_val(&t.$f);
            if end <= n { t.$f as i64 } else { -1 }
        }};
    }
    SockInfo::Tcp(TcpInfo {
        state: field!(tcpi_state),
        ca_state: field!(tcpi_ca_state),
        retransmits: field!(tcpi_retransmits),
        probes: field!(tcpi_probes),
        backoff: field!(tcpi_backoff),
        snd_mss: field!(tcpi_snd_mss),
        rcv_mss: field!(tcpi_rcv_mss),
        unacked: field!(tcpi_unacked),
        sacked: field!(tcpi_sacked),
        lost: field!(tcpi_lost),
        retrans: field!(tcpi_retrans),
        rcv_ssthresh: field!(tcpi_rcv_ssthresh),
        snd_ssthresh: field!(tcpi_snd_ssthresh),
        snd_cwnd: field!(tcpi_snd_cwnd),
        advmss: field!(tcpi_advmss),
        reordering: field!(tcpi_reordering),
        rcv_space: field!(tcpi_rcv_space),
        total_retrans: field!(tcpi_total_retrans),
        bytes_acked: field!(tcpi_bytes_acked),
        bytes_received: field!(tcpi_bytes_received),
        notsent_bytes: field!(tcpi_notsent_bytes),
        bytes_retrans: field!(tcpi_bytes_retrans),
        snd_wnd: field!(tcpi_snd_wnd),
        rcv_wnd: field!(tcpi_rcv_wnd),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The offsets the C library gives are the ones the kernel writes
    /// (include/uapi/linux/tcp.h): spot checks of the fields the old
    /// hand-written table had.
    #[test]
    fn offsets_are_the_uapis() {
        assert_eq!(offset_of!(libc::tcp_info, tcpi_snd_mss), 16);
        assert_eq!(offset_of!(libc::tcp_info, tcpi_bytes_acked), 120);
        assert_eq!(offset_of!(libc::tcp_info, tcpi_bytes_retrans), 208);
        assert_eq!(offset_of!(libc::tcp_info, tcpi_rcv_wnd), 232);
    }

    #[test]
    fn a_short_structure_leaves_missing_fields_unknown() {
        let mut b = vec![0u8; 104];
        b[0] = 1;
        b[16..20].copy_from_slice(&1448u32.to_ne_bytes());
        let SockInfo::Tcp(t) = decode_tcpinfo(&b) else {
            panic!("TCP_INFO decodes to TcpInfo")
        };
        assert_eq!((t.state, t.snd_mss, t.total_retrans), (1, 1448, 0));
        assert_eq!((t.bytes_acked, t.rcv_wnd), (-1, -1));
    }
}
