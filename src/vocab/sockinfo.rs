//! What `getsockopt SO_MEMINFO` and `getsockopt TCP_INFO` report, in one
//! order for every engine, so that `compare` can hold the model's memory
//! accounting and window state to the kernel's field by field.
//!
//! The kernel engine decodes the raw structures (`sk_get_meminfo`,
//! `tcp_get_info` in net/ipv4/tcp.c); the model fills the same fields from
//! its own socket. `TCP_INFO` is reduced to fields that do not depend on
//! timing: no RTTs, RTO, ato, timestamps or rates.

/// A struct of `i64` facts whose field names are the names traces print
/// (`name=value`), in declaration order. -1 stands for a field the engine
/// could not read (an older kernel's shorter structure).
macro_rules! info_struct {
    ($(#[$m:meta])* pub struct $t:ident { $($(#[$fm:meta])* $f:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $t {
            $($(#[$fm])* pub $f: i64),*
        }
        impl $t {
            /// `(name, value)` of every field, in order.
            pub fn fields(&self) -> Vec<(&'static str, i64)> {
                vec![$((stringify!($f), self.$f)),*]
            }
        }
    };
}

info_struct! {
    /// `SO_MEMINFO` (`sk_get_meminfo`, the `SK_MEMINFO_*` of
    /// include/uapi/linux/sock_diag.h), without optmem, backlog and drops
    /// (bookkeeping of other features; drops counts every drop reason).
    pub struct MemInfo {
        /// `sk_rmem_alloc`: bytes charged to the receive queue.
        rmem_alloc,
        /// `sk_rcvbuf`.
        rcvbuf,
        /// `sk_wmem_alloc`: bytes in flight below TCP (qdisc, device).
        wmem_alloc,
        /// `sk_sndbuf`.
        sndbuf,
        /// `sk_forward_alloc`.
        fwd_alloc,
        /// `sk_wmem_queued`: bytes in the write and retransmit queues.
        wmem_queued,
    }
}

info_struct! {
    /// The timing-free part of `struct tcp_info` (include/uapi/linux/tcp.h),
    /// without the `tcpi_` prefix.
    pub struct TcpInfo {
        state,
        ca_state,
        retransmits,
        probes,
        backoff,
        snd_mss,
        rcv_mss,
        /// Packets out; on a listener, the accept queue's length.
        unacked,
        /// SACKed packets; on a listener, the backlog limit.
        sacked,
        lost,
        retrans,
        rcv_ssthresh,
        snd_ssthresh,
        snd_cwnd,
        advmss,
        reordering,
        rcv_space,
        total_retrans,
        bytes_acked,
        bytes_received,
        notsent_bytes,
        bytes_retrans,
        snd_wnd,
        rcv_wnd,
    }
}

/// What a `getsockopt` step reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockInfo {
    Mem(MemInfo),
    Tcp(TcpInfo),
}

impl SockInfo {
    /// `(name, value)` of every field, in the order traces show them.
    pub fn fields(&self) -> Vec<(&'static str, i64)> {
        match self {
            SockInfo::Mem(m) => m.fields(),
            SockInfo::Tcp(t) => t.fields(),
        }
    }
}

impl serde::Serialize for SockInfo {
    /// A map `{name: value}` in field order.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let f = self.fields();
        let mut m = s.serialize_map(Some(f.len()))?;
        for (k, v) in f {
            m.serialize_entry(k, &v)?;
        }
        m.end()
    }
}

impl std::fmt::Display for SockInfo {
    /// `name=value ...`, as traces print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (k, v)) in self.fields().into_iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}
