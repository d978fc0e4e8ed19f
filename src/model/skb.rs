//! Socket buffers: what the kernel queues on the send side (`sk_write_queue`
//! and `tcp_rtx_queue`) and the receive side (`sk_receive_queue` and the
//! out-of-order queue), with the memory each one is charged.
//!
//! Memory is charged as the kernel charges it, in `skb->truesize`: the
//! data area allocated for the skb's head (rounded by the allocator), the
//! `struct sk_buff` and `struct skb_shared_info`, and any page fragments.
//! Received skbs are sized as the linux engine's link allocates them:
//! `tun_get_user` → `tun_alloc_skb` → `sock_alloc_send_pskb` →
//! `alloc_skb_with_frags` (drivers/net/tun.c, net/core/skbuff.c). These
//! sizes were checked against the running kernel with SO_MEMINFO.

use crate::payload::Payload;

/// `SKB_DATA_ALIGN` (SMP_CACHE_BYTES = 64).
pub const fn skb_data_align(x: u32) -> u32 {
    (x + 63) & !63
}
/// `SKB_DATA_ALIGN(sizeof(struct sk_buff))` on x86_64.
pub const SK_BUFF_SIZE: u32 = 256;
/// `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` (MAX_SKB_FRAGS = 17).
pub const SHINFO_SIZE: u32 = 320;
/// `SKB_TRUESIZE(X)`.
pub const fn skb_truesize(x: u32) -> u32 {
    x + SK_BUFF_SIZE + SHINFO_SIZE
}
/// `MAX_TCP_HEADER` = L1_CACHE_ALIGN(128 + MAX_HEADER) on this config.
pub const MAX_TCP_HEADER: u32 = 256;
/// `SKB_SMALL_HEAD_CACHE_SIZE`: `SKB_HEAD_ALIGN(MAX_TCP_HEADER)`.
pub const SKB_SMALL_HEAD_CACHE_SIZE: u32 = MAX_TCP_HEADER + SHINFO_SIZE;
pub const PAGE_SIZE: u32 = 4096;
/// `PAGE_ALLOC_COSTLY_ORDER`.
const COSTLY_ORDER: u32 = 3;
/// `NET_SKB_PAD`: the headroom the TUN device reserves (`tun->align`).
const NET_SKB_PAD: u32 = 64;
/// `SKB_WITH_OVERHEAD(X)`.
pub const fn skb_with_overhead(x: u32) -> u32 {
    x - SHINFO_SIZE
}
/// `SKB_MAX_ORDER(X, 0)` = `SKB_MAX_HEAD(X)`.
pub const fn skb_max_head(x: u32) -> u32 {
    skb_with_overhead(PAGE_SIZE - x)
}

/// `kmalloc_reserve`: the object size the allocator hands out for a head of
/// `size` bytes plus shared info (the small-head cache, then kmalloc's
/// power-of-two classes, then whole pages).
fn kmalloc_reserve(size: u32) -> u32 {
    let obj = skb_data_align(size) + SHINFO_SIZE;
    if obj <= SKB_SMALL_HEAD_CACHE_SIZE {
        return SKB_SMALL_HEAD_CACHE_SIZE;
    }
    // kmalloc_size_roundup: past the small-head cache every size class is
    // a power of two (and so is a page-allocator block).
    obj.next_power_of_two()
}

/// `__alloc_skb(size)`: (truesize, skb_end_offset).
pub fn alloc_skb(size: u32) -> (u32, u32) {
    let obj = kmalloc_reserve(size);
    let end = skb_with_overhead(obj);
    (skb_truesize(end), end)
}

/// What the TUN device's receive path allocated for one packet of
/// `pkt_len` bytes (IP header included): the skb's truesize, the size of
/// its linear area (`skb_end_offset`), how many bytes of the packet are
/// linear, and its page fragments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxAlloc {
    pub truesize: u32,
    pub end_offset: u32,
    /// Bytes of the packet in the head (from `NET_SKB_PAD`).
    pub linear: u32,
    pub nr_frags: u32,
}

/// `tun_get_user` for a packet without virtio-net header: `linear =
/// min(SKB_MAX_HEAD(align), len)`, all of it when `align + len` is under a
/// page (`tun_alloc_skb`), the rest in pages of order up to 3
/// (`alloc_skb_with_frags`).
pub fn tun_rx_alloc(pkt_len: u32) -> RxAlloc {
    let good_linear = skb_max_head(NET_SKB_PAD);
    let linear = if NET_SKB_PAD + pkt_len < PAGE_SIZE {
        pkt_len
    } else {
        good_linear.min(pkt_len)
    };
    let (mut truesize, end_offset) = alloc_skb(NET_SKB_PAD + linear);
    let mut data_len = pkt_len - linear;
    let mut nr_frags = 0;
    let mut order = COSTLY_ORDER;
    while data_len > 0 {
        let aligned = data_len.div_ceil(PAGE_SIZE) * PAGE_SIZE;
        while order > 0 && aligned < (PAGE_SIZE << order) {
            order -= 1;
        }
        let chunk = data_len.min(PAGE_SIZE << order);
        truesize += PAGE_SIZE << order;
        data_len -= chunk;
        nr_frags += 1;
    }
    RxAlloc {
        truesize,
        end_offset,
        linear,
        nr_frags,
    }
}

/// `TCP_SKB_CB(skb)->sacked` bits.
pub const TCPCB_SACKED_ACKED: u8 = 0x01;
pub const TCPCB_SACKED_RETRANS: u8 = 0x02;
pub const TCPCB_LOST: u8 = 0x04;
pub const TCPCB_REPAIRED: u8 = 0x10;
pub const TCPCB_EVER_RETRANS: u8 = 0x80;
pub const TCPCB_RETRANS: u8 = TCPCB_SACKED_RETRANS | TCPCB_EVER_RETRANS | TCPCB_REPAIRED;

/// `TCPHDR_*` flag bits (`tcp_skb_cb->tcp_flags`).
pub const TCPHDR_FIN: u8 = 0x01;
pub const TCPHDR_SYN: u8 = 0x02;
pub const TCPHDR_RST: u8 = 0x04;
pub const TCPHDR_PSH: u8 = 0x08;
pub const TCPHDR_ACK: u8 = 0x10;
pub const TCPHDR_URG: u8 = 0x20;

/// The rate-sampling snapshot taken when an skb is sent
/// (`tcp_skb_cb->tx`, net/ipv4/tcp_rate.c).
#[derive(Clone, Copy, Debug, Default)]
pub struct TxRate {
    pub delivered_mstamp: u64,
    pub delivered: u32,
}

/// An skb on the send side.
#[derive(Clone, Debug)]
pub struct TxSkb {
    pub seq: u32,
    /// `end_seq`: seq + payload + SYN + FIN.
    pub end_seq: u32,
    pub flags: u8,
    pub payload: Payload,
    pub truesize: u32,
    /// `tcp_skb_pcount` and `tcp_gso_size`.
    pub pcount: u32,
    pub gso_size: u32,
    pub sacked: u8,
    /// `skb_mstamp_ns` in microseconds: when it was last (re)sent.
    pub mstamp: u64,
    pub eor: bool,
    pub tx: TxRate,
    /// Why the FIN this skb carries was queued (close() or shutdown()),
    /// shown beside the segment.
    pub why: Option<&'static str>,
}

impl TxSkb {
    /// `skb->len`.
    pub fn len(&self) -> u32 {
        self.payload.len()
    }
    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }
    pub fn fin(&self) -> bool {
        self.flags & TCPHDR_FIN != 0
    }
    pub fn syn(&self) -> bool {
        self.flags & TCPHDR_SYN != 0
    }
}

/// An skb on the receive side (headers pulled: `len` is payload only).
#[derive(Clone, Debug)]
pub struct RxSkb {
    pub seq: u32,
    /// seq + payload + FIN.
    pub end_seq: u32,
    pub flags: u8,
    pub payload: Payload,
    pub truesize: u32,
    /// `skb_end_offset`: size of the linear area.
    pub end_offset: u32,
    /// Where the linear data ends (`skb->tail`), from the start of the
    /// area: the tailroom is `end_offset - tail`.
    pub tail: u32,
    /// Payload bytes in the linear area (`skb_headlen` after the headers
    /// were pulled).
    pub headlen: u32,
}

impl RxSkb {
    pub fn len(&self) -> u32 {
        self.payload.len()
    }
    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }
    pub fn fin(&self) -> bool {
        self.flags & TCPHDR_FIN != 0
    }
    pub fn tailroom(&self) -> u32 {
        self.end_offset.saturating_sub(self.tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Truesizes read with SO_MEMINFO on Linux 6.18 after one segment of
    /// each payload size arrived over the linux engine's TUN link
    /// (52 bytes of IP, TCP and timestamp headers).
    #[test]
    fn tun_truesize_matches_the_kernel() {
        for (payload, truesize) in [
            (1, 832),
            (100, 832),
            (500, 1280),
            (1000, 2304),
            (1500, 2304),
            (2000, 4352),
            (3500, 4352),
            (3700, 8448),
            (4000, 8448),
            (5000, 8448),
            (8000, 12544),
            (12000, 16640),
            (16000, 20736),
            (20000, 20736),
            (32741, 37120),
        ] {
            assert_eq!(tun_rx_alloc(payload + 52).truesize, truesize, "{payload}");
        }
    }

    #[test]
    fn stream_skb_head_is_the_small_cache() {
        // tcp_stream_alloc_skb: alloc_skb_fclone(MAX_TCP_HEADER).
        assert_eq!(alloc_skb(MAX_TCP_HEADER), (832, 256));
    }
}
