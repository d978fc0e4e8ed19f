//! What `getsockopt SO_MEMINFO` and `getsockopt TCP_INFO` report, in one
//! order for every engine, so that `compare` can hold the model's memory
//! accounting and window state to the kernel's field by field.
//!
//! The kernel side decodes the raw structures (`sk_get_meminfo`,
//! `tcp_get_info` in net/ipv4/tcp.c); the model fills the same names from
//! its own socket. `TCP_INFO` is reduced to fields that do not depend on
//! timing: no RTTs, RTO, ato, timestamps or rates.

use crate::script::SockInfo;

/// `SK_MEMINFO_*` (include/uapi/linux/sock_diag.h), in the kernel's order.
pub const MEMINFO_FIELDS: [&str; 9] = [
    "rmem_alloc",
    "rcvbuf",
    "wmem_alloc",
    "sndbuf",
    "fwd_alloc",
    "wmem_queued",
    "optmem",
    "backlog",
    "drops",
];

/// The `SO_MEMINFO` fields a script sees (optmem, backlog and drops are
/// left out: the first two are bookkeeping of other features, drops
/// counts every drop reason).
pub const MEMINFO_SHOWN: [&str; 6] = [
    "rmem_alloc",
    "rcvbuf",
    "wmem_alloc",
    "sndbuf",
    "fwd_alloc",
    "wmem_queued",
];

/// The `TCP_INFO` fields a script sees, with their byte offset and size in
/// `struct tcp_info` (include/uapi/linux/tcp.h). Offsets 6 is the byte
/// holding `snd_wscale:4, rcv_wscale:4`.
pub const TCPINFO_FIELDS: [(&str, usize, usize); 24] = [
    ("state", 0, 1),
    ("ca_state", 1, 1),
    ("retransmits", 2, 1),
    ("probes", 3, 1),
    ("backoff", 4, 1),
    ("snd_mss", 16, 4),
    ("rcv_mss", 20, 4),
    ("unacked", 24, 4),
    ("sacked", 28, 4),
    ("lost", 32, 4),
    ("retrans", 36, 4),
    ("rcv_ssthresh", 64, 4),
    ("snd_ssthresh", 76, 4),
    ("snd_cwnd", 80, 4),
    ("advmss", 84, 4),
    ("reordering", 88, 4),
    ("rcv_space", 96, 4),
    ("total_retrans", 100, 4),
    ("bytes_acked", 120, 8),
    ("bytes_received", 128, 8),
    ("notsent_bytes", 144, 4),
    ("bytes_retrans", 208, 8),
    ("snd_wnd", 228, 4),
    ("rcv_wnd", 232, 4),
];

/// Decodes the `u32` array `SO_MEMINFO` returns.
pub fn decode_meminfo(b: &[u8]) -> SockInfo {
    let val = |i: usize| -> i64 {
        b.get(4 * i..4 * i + 4)
            .map(|x| u32::from_ne_bytes([x[0], x[1], x[2], x[3]]) as i64)
            .unwrap_or(-1)
    };
    MEMINFO_SHOWN
        .iter()
        .map(|name| {
            let i = MEMINFO_FIELDS.iter().position(|f| f == name).unwrap_or(0);
            (*name, val(i))
        })
        .collect()
}

/// Decodes `struct tcp_info` (a shorter, older structure leaves the
/// missing fields at -1).
pub fn decode_tcpinfo(b: &[u8]) -> SockInfo {
    TCPINFO_FIELDS
        .iter()
        .map(|&(name, off, size)| {
            let v = match b.get(off..off + size) {
                Some(x) if size == 1 => x[0] as i64,
                Some(x) if size == 4 => u32::from_ne_bytes([x[0], x[1], x[2], x[3]]) as i64,
                Some(x) if size == 8 => {
                    u64::from_ne_bytes([x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]]) as i64
                }
                _ => -1,
            };
            (name, v)
        })
        .collect()
}
