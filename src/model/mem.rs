//! Socket memory accounting (include/net/sock.h, net/core/sock.c): every
//! queued skb is charged its truesize to `sk_rmem_alloc` or
//! `sk_wmem_queued`, and to `sk_forward_alloc`, the socket's reserve of
//! whole pages taken from the protocol's `tcp_memory_allocated`.
//!
//! `__sk_mem_raise_allocated` never refuses here: the machine's `tcp_mem`
//! limits (hundreds of thousands of pages) are out of reach of a scenario,
//! so memory pressure never starts (a departure listed in [`super`]).

use super::sock::Sock;

pub const PAGE_SIZE: i32 = 4096;

/// `sk_mem_pages`.
pub fn sk_mem_pages(amt: i32) -> i32 {
    (amt + PAGE_SIZE - 1) >> 12
}

/// `__sk_mem_schedule`: take enough whole pages for `size` more bytes.
fn sk_mem_schedule(s: &mut Sock, size: i32) -> bool {
    let amt = sk_mem_pages(size);
    s.forward_alloc += amt << 12;
    true
}

/// `sk_wmem_schedule`.
pub fn sk_wmem_schedule(s: &mut Sock, size: u32) -> bool {
    let delta = size as i32 - s.forward_alloc;
    delta <= 0 || sk_mem_schedule(s, delta)
}

/// `sk_rmem_schedule`.
pub fn sk_rmem_schedule(s: &mut Sock, size: u32) -> bool {
    let delta = size as i32 - s.forward_alloc;
    delta <= 0 || sk_mem_schedule(s, delta)
}

/// `sk_forced_mem_schedule` (tcp_output.c): charge without a limit.
pub fn sk_forced_mem_schedule(s: &mut Sock, size: u32) {
    let delta = size as i32 - s.forward_alloc;
    if delta <= 0 {
        return;
    }
    s.forward_alloc += sk_mem_pages(delta) << 12;
}

/// `sk_mem_charge`.
pub fn sk_mem_charge(s: &mut Sock, size: u32) {
    s.forward_alloc -= size as i32;
}

/// `sk_mem_uncharge`, then `sk_mem_reclaim`: give back whole pages so that
/// less than one stays reserved.
pub fn sk_mem_uncharge(s: &mut Sock, size: u32) {
    s.forward_alloc += size as i32;
    sk_mem_reclaim(s);
}

/// `sk_mem_reclaim` / `__sk_mem_reclaim`.
pub fn sk_mem_reclaim(s: &mut Sock) {
    if s.forward_alloc >= PAGE_SIZE {
        let pages = s.forward_alloc >> 12;
        s.forward_alloc -= pages << 12;
    }
}

/// `tcp_wmem_schedule` (tcp.c): how much of `copy` may be charged now.
pub fn tcp_wmem_schedule(s: &mut Sock, copy: u32, wmem0: u32) -> u32 {
    if sk_wmem_schedule(s, copy) {
        return copy;
    }
    let left = wmem0 as i64 - s.wmem_queued as i64;
    if left > 0 {
        sk_forced_mem_schedule(s, (left as u32).min(copy));
    }
    (s.forward_alloc.max(0) as u32).min(copy)
}

/// `skb_set_owner_r`: a received skb joins a queue.
pub fn skb_set_owner_r(s: &mut Sock, truesize: u32) {
    s.rmem_alloc += truesize;
    sk_mem_charge(s, truesize);
}

/// `sock_rfree`: a received skb is freed.
pub fn sock_rfree(s: &mut Sock, truesize: u32) {
    s.rmem_alloc = s.rmem_alloc.saturating_sub(truesize);
    sk_mem_uncharge(s, truesize);
}

/// `sk_wmem_queued_add` + `sk_mem_charge` for a new send-side skb
/// (`tcp_skb_entail`, `tcp_queue_skb`).
pub fn wmem_charge(s: &mut Sock, truesize: u32) {
    s.wmem_queued += truesize;
    sk_mem_charge(s, truesize);
}

/// `tcp_wmem_free_skb`.
pub fn tcp_wmem_free_skb(s: &mut Sock, truesize: u32) {
    s.wmem_queued = s.wmem_queued.saturating_sub(truesize);
    sk_mem_uncharge(s, truesize);
}

/// `__sk_stream_memory_free` with `tcp_stream_memory_free`
/// (tcp_notsent_lowat is UINT_MAX by default, so only the first test
/// matters unless TCP_NOTSENT_LOWAT is set).
pub fn sk_stream_memory_free(s: &Sock) -> bool {
    s.wmem_queued < s.sndbuf
}

/// `sk_stream_wspace` >= `sk_stream_min_wspace` and memory free
/// (`__sk_stream_is_writeable`).
pub fn sk_stream_is_writeable(s: &Sock) -> bool {
    let wspace = s.sndbuf as i64 - s.wmem_queued as i64;
    wspace >= (s.wmem_queued >> 1) as i64 && sk_stream_memory_free(s)
}
