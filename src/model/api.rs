//! The system calls a program makes (net/ipv4/tcp.c, af_inet.c, sock.c),
//! with Linux's return values and errnos.

use super::World;
use super::close::{self, CloseOutcome, tcp_close, tcp_close_state, tcp_disconnect};
use super::input::init_connection;
use super::output::{self, send_ack, write_xmit};
use super::sock::*;
use crate::engine::{CallCtx, CallOutcome, DEFAULT_HORIZON_US};
use crate::script::{Call, Data, How, MsgFlags, SockOpt, epoll};

/// How long a blocking call may wait before the model gives up on it (a
/// real program would wait forever).
const BLOCK_LIMIT: Time = DEFAULT_HORIZON_US;

/// Runs one call.
pub fn call(w: &mut World, host: usize, name: &str, call: &Call, ctx: &CallCtx) -> CallOutcome {
    if let Call::Exit = call {
        return exit(w, host);
    }
    if let Call::Socket = call {
        let (r, s) = {
            let sys = &w.hosts[host].sysctl;
            (sys.tcp_rmem[1], sys.tcp_wmem[1])
        };
        let id = SockId(w.socks.len());
        w.socks.push(Sock::new(host, name, r, s));
        w.hosts[host].names.insert(name.to_string(), id);
        w.hosts[host].closed.retain(|n| n != name);
        return CallOutcome::ok(0);
    }
    let Some(id) = w.named(host, name) else {
        return CallOutcome::err("EBADF");
    };
    if w.hosts[host].closed.iter().any(|n| n == name) {
        return CallOutcome::err("EBADF");
    }
    match call {
        Call::Listen { port, backlog } => listen(w, id, *port, *backlog),
        Call::Connect { port, .. } => connect(w, id, *port, ctx),
        Call::Accept => accept(w, id, ctx),
        Call::Send { data, flags } => send(w, id, data, *flags),
        Call::Recv { len, flags } => recv(w, id, *len, *flags),
        Call::Shutdown(how) => shutdown(w, id, *how),
        Call::Close => close(w, host, name, id),
        Call::Poll { interest } => {
            let m = poll(w, id);
            // EPOLLERR and EPOLLHUP are always reported.
            CallOutcome::ok((m & (interest | epoll::EPOLLERR | epoll::EPOLLHUP)) as i64)
        }
        Call::SetSockOpt(o) => setsockopt(w, id, *o),
        Call::Disconnect => {
            if w.sk(id).state == State::Listen {
                w.set_state(id, State::Close);
                close::inet_csk_listen_stop(w, id);
            } else {
                tcp_disconnect(w, id, "connect(AF_UNSPEC): tcp_disconnect -> RST");
            }
            CallOutcome::ok(0)
        }
        Call::GetSockOpt(o) => CallOutcome {
            info: Some(getsockopt(w, id, *o)),
            ..CallOutcome::ok(0)
        },
        Call::Socket | Call::Exit => unreachable!("handled above"),
    }
}

/// `sock_error`: report and clear `sk_err`.
fn take_err(w: &mut World, id: SockId) -> Option<&'static str> {
    w.sk_mut(id).err.take()
}

fn port_in_use(w: &World, id: SockId, port: u16) -> bool {
    let h = w.sk(id).host;
    w.socks.iter().enumerate().any(|(i, s)| {
        i != id.0
            && s.host == h
            && s.local_port == port
            && (s.state == State::Listen || (s.state != State::Close && s.remote.is_none()))
    })
}

/// bind + `inet_csk_listen_start`.
fn listen(w: &mut World, id: SockId, port: u16, backlog: u32) -> CallOutcome {
    let s = w.sk(id);
    if !matches!(s.state, State::Close | State::Listen)
        || s.remote.is_some() && s.state != State::Close
    {
        return CallOutcome::err("EINVAL");
    }
    if s.local_port == 0 {
        if port_in_use(w, id, port) {
            return CallOutcome::err("EADDRINUSE");
        }
        w.sk_mut(id).local_port = port;
    }
    // sk_max_ack_backlog = min(backlog, net.core.somaxconn = 4096)
    w.sk_mut(id).backlog = backlog.min(4096);
    w.set_state(id, State::Listen);
    CallOutcome::ok(0)
}

/// `inet_stream_connect` → `tcp_v4_connect` → `tcp_connect`, blocking
/// until the handshake ends.
fn connect(w: &mut World, id: SockId, port: u16, ctx: &CallCtx) -> CallOutcome {
    match w.sk(id).state {
        State::Close => {}
        State::SynSent | State::SynRecv => return CallOutcome::err("EALREADY"),
        State::Listen => return CallOutcome::err("EINVAL"),
        _ => return CallOutcome::err("EISCONN"),
    }
    let Some(peer) = ctx.peer_addr.map(|a| w.host_of_addr(a)) else {
        return CallOutcome::err("EINVAL");
    };
    let lp = ctx.local_port.unwrap_or(0);
    let h = w.sk(id).host;
    let clash = w.socks.iter().enumerate().any(|(i, s)| {
        i != id.0
            && s.host == h
            && s.local_port == lp
            && s.remote == Some((peer, port))
            && s.state != State::Close
    }) || w
        .tws
        .iter()
        .any(|t| t.host == h && t.local_port == lp && t.remote == (peer, port));
    if clash {
        return CallOutcome::err("EADDRNOTAVAIL");
    }
    {
        let s = w.sk_mut(id);
        s.local_port = lp;
        s.remote = Some((peer, port));
        // A fresh connection on a socket that may have been disconnected.
        s.err = None;
        s.shutdown = 0;
        s.done = false;
        s.dead = false;
        s.clear_write_queue();
        s.rcvq.clear();
        s.fin_queued = false;
        s.is_request = false;
    }
    init_connection(w, id, true);
    w.set_state(id, State::SynSent);
    output::send_syn(w, id, "connect(): SYN (tcp_connect)");
    if w.nonblocking {
        return CallOutcome::err("EINPROGRESS");
    }
    let deadline = w.now + BLOCK_LIMIT;
    w.block_until(deadline, &|w: &World| w.sk(id).state != State::SynSent);
    match w.sk(id).state {
        State::SynSent => CallOutcome {
            note: Some("still connecting when the model stopped waiting".into()),
            ..CallOutcome::err("EINPROGRESS")
        },
        State::Close => {
            let e = take_err(w, id).unwrap_or("ECONNREFUSED");
            CallOutcome::err(e)
        }
        _ => CallOutcome::ok(0),
    }
}

/// `inet_csk_accept`: take the oldest child of the accept queue, waiting
/// for one if needed.
fn accept(w: &mut World, lid: SockId, ctx: &CallCtx) -> CallOutcome {
    if w.sk(lid).state != State::Listen {
        return CallOutcome::err("EINVAL");
    }
    let deadline = if w.nonblocking {
        w.now
    } else {
        w.now + BLOCK_LIMIT
    };
    let ready = w.block_until(deadline, &|w: &World| {
        w.sk(lid).state != State::Listen || !w.sk(lid).accept_q.is_empty()
    });
    if !ready || w.sk(lid).state != State::Listen {
        return CallOutcome {
            note: Some("no connection arrived while the model waited".into()),
            ..CallOutcome::err("EAGAIN")
        };
    }
    let Some(c) = w.sk_mut(lid).accept_q.pop_front() else {
        return CallOutcome::err("EAGAIN");
    };
    let h = w.sk(lid).host;
    let name = ctx.new_name.clone().unwrap_or_else(|| "conn".into());
    w.sk_mut(c).name = name.clone();
    w.sk_mut(c).parent = None;
    w.hosts[h].names.insert(name.clone(), c);
    w.hosts[h].closed.retain(|n| n != &name);
    // The states recorded before accept() belonged to an unnamed child.
    for st in w.states.iter_mut() {
        if st.sock == unnamed_label(w.socks[c.0].remote) {
            st.sock = name.clone();
        }
    }
    CallOutcome::ok(0)
}

/// The label a child's state changes carry before accept() names it.
pub fn unnamed_label(remote: Option<(usize, u16)>) -> String {
    format!("unaccepted:{}", remote.map_or(0, |r| r.1))
}

/// `tcp_sendmsg_locked`.
fn send(w: &mut World, id: SockId, data: &Data, flags: MsgFlags) -> CallOutcome {
    let state = w.sk(id).state;
    if !matches!(state, State::Established | State::CloseWait) {
        // sk_stream_wait_connect
        if matches!(state, State::SynSent | State::SynRecv) {
            let deadline = w.now + BLOCK_LIMIT;
            w.block_until(deadline, &|w: &World| {
                !matches!(w.sk(id).state, State::SynSent | State::SynRecv)
            });
            if !matches!(w.sk(id).state, State::Established | State::CloseWait) {
                return send_error(w, id, flags);
            }
        } else {
            return send_error(w, id, flags);
        }
    }
    if w.sk(id).err.is_some() || w.sk(id).shutdown & SEND_SHUTDOWN != 0 {
        return send_error(w, id, flags);
    }
    let total = data.len();
    let mut done = 0usize;
    loop {
        let s = w.sk(id);
        let room = (s.sndbuf as usize).saturating_sub(s.sndq.len());
        let n = room.min(total - done);
        if n > 0 {
            let chunk = data.range(done, n);
            done += n;
            queue_data(w, id, &chunk, done < total);
        }
        if done == total || total == 0 {
            break;
        }
        if flags.dontwait || w.nonblocking {
            break;
        }
        // sk_stream_wait_memory: block until ACKs free space.
        let deadline = w.now + BLOCK_LIMIT;
        let freed = w.block_until(deadline, &|w: &World| {
            let s = w.sk(id);
            s.sndq.len() < s.sndbuf as usize || s.err.is_some() || s.state == State::Close
        });
        if !freed {
            break;
        }
        let s = w.sk(id);
        if s.err.is_some() || s.state == State::Close || s.shutdown & SEND_SHUTDOWN != 0 {
            if done == 0 {
                return send_error(w, id, flags);
            }
            break;
        }
        write_xmit(w, id);
    }
    if done == 0 && total > 0 {
        return CallOutcome::err("EAGAIN");
    }
    // tcp_push: no MSG_MORE, so the tail skb is marked PSH; MSG_OOB sets
    // the urgent pointer (tcp_mark_urg: "tp->snd_up = tp->write_seq").
    let s = w.sk_mut(id);
    if let Some(tail) = s.skbs.back_mut() {
        if !before(tail.0, s.snd_nxt) {
            tail.1 = true;
        }
    }
    s.pushed_seq = s.write_seq;
    if flags.oob {
        s.snd_up = Some(s.write_seq);
    }
    write_xmit(w, id);
    let mut out = CallOutcome::ok(done as i64);
    if done < total {
        out.note = Some(format!("send buffer full: {done} of {total} bytes queued"));
    }
    out
}

/// The copy loop of `tcp_sendmsg_locked`: fill the unsent tail skb up to
/// `size_goal`, then new skbs; a full skb is pushed at once when more than
/// half the peer's largest window was written since the last push
/// (`forced_push`, which also marks it PSH), or when it is the head of the
/// unsent data (`tcp_push_one`).
fn queue_data(w: &mut World, id: SockId, bytes: &[u8], more_after: bool) {
    let mut off = 0;
    while off < bytes.len() {
        let s = w.sk_mut(id);
        let size_goal = s.send_mss().max(1) as usize;
        let tail = s.skbs.back().copied();
        let tail_start = if s.skbs.len() >= 2 {
            s.skbs[s.skbs.len() - 2].0
        } else {
            s.snd_una
        };
        let room = match tail {
            Some((end, _)) if !before(tail_start, s.snd_nxt) => {
                size_goal.saturating_sub(end.wrapping_sub(tail_start) as usize)
            }
            _ => 0,
        };
        let (n, start) = if room > 0 {
            (room.min(bytes.len() - off), tail_start)
        } else {
            s.skbs.push_back((s.write_seq, false));
            (size_goal.min(bytes.len() - off), s.write_seq)
        };
        s.sndq.extend(bytes[off..off + n].iter());
        s.write_seq = s.write_seq.wrapping_add(n as u32);
        if let Some(t) = s.skbs.back_mut() {
            t.0 = s.write_seq;
        }
        off += n;
        let full = s.write_seq.wrapping_sub(start) as usize >= size_goal;
        if full && (off < bytes.len() || more_after) {
            let forced = after(s.write_seq, s.pushed_seq.wrapping_add(s.max_window >> 1));
            if forced {
                if let Some(t) = s.skbs.back_mut() {
                    t.1 = true;
                }
                s.pushed_seq = s.write_seq;
                write_xmit(w, id);
            } else if start == s.snd_nxt {
                write_xmit(w, id);
            }
        }
    }
}

/// `sk_stream_error`: EPIPE, or the pending socket error.
fn send_error(w: &mut World, id: SockId, flags: MsgFlags) -> CallOutcome {
    match take_err(w, id) {
        Some(e) => CallOutcome::err(e),
        None => {
            let mut o = CallOutcome::err("EPIPE");
            if !flags.nosignal {
                o.note = Some("SIGPIPE raised (finrst programs ignore it)".into());
            }
            o
        }
    }
}

/// Removes `n` bytes from the head of the receive queue, freeing the skbs
/// they used up (their truesize leaves `sk_rmem_alloc`).
fn consume(s: &mut Sock, n: usize) {
    s.rcvq.drain(..n.min(s.rcvq.len()));
    s.copied_seq = s.copied_seq.wrapping_add(n as u32);
    let mut left = n as u32;
    while left > 0 {
        let Some(front) = s.rcvq_skbs.front_mut() else {
            break;
        };
        if front.0 <= left {
            left -= front.0;
            s.rmem_alloc = s.rmem_alloc.saturating_sub(front.1);
            s.rcvq_skbs.pop_front();
        } else {
            front.0 -= left;
            left = 0;
        }
    }
}

/// `tcp_recvmsg` / `tcp_recv_urg`.
fn recv(w: &mut World, id: SockId, len: u32, flags: MsgFlags) -> CallOutcome {
    if w.sk(id).state == State::Listen {
        return CallOutcome::err("ENOTCONN");
    }
    if flags.oob {
        return recv_urg(w, id, flags);
    }
    loop {
        let s = w.sk_mut(id);
        // The urgent byte at the head is skipped when it is not inline.
        if s.urg != Urg::None && s.urg_seq == s.copied_seq && !s.oobinline && !s.rcvq.is_empty() {
            if matches!(s.urg, Urg::Valid(_) | Urg::Read) && !flags.peek {
                consume(s, 1);
                s.urg = Urg::None;
            }
        }
        if !s.rcvq.is_empty() {
            let mut n = (len as usize).min(s.rcvq.len());
            if s.urg != Urg::None {
                let off = s.urg_seq.wrapping_sub(s.copied_seq) as usize;
                if off > 0 && off < n {
                    // Stop before the urgent byte.
                    n = off;
                }
            }
            let data = output::queue_slice(&s.rcvq, 0, n);
            if !flags.peek {
                consume(s, n);
                if s.urg != Urg::None && after(s.copied_seq, s.urg_seq) {
                    s.urg = Urg::None;
                }
                cleanup_rbuf(w, id, n);
            }
            return CallOutcome {
                data: Some(data),
                ..CallOutcome::ok(n as i64)
            };
        }
        if len == 0 {
            return CallOutcome::ok(0);
        }
        let s = w.sk(id);
        if s.done {
            return CallOutcome::ok(0);
        }
        if s.err.is_some() {
            let e = take_err(w, id).unwrap_or("ECONNRESET");
            return CallOutcome::err(e);
        }
        if s.shutdown & RCV_SHUTDOWN != 0 {
            return CallOutcome::ok(0);
        }
        if s.state == State::Close {
            return CallOutcome::err("ENOTCONN");
        }
        if flags.dontwait || w.nonblocking {
            return CallOutcome::err("EAGAIN");
        }
        let deadline = w.now + BLOCK_LIMIT;
        let woke = w.block_until(deadline, &|w: &World| {
            let s = w.sk(id);
            !s.rcvq.is_empty()
                || s.done
                || s.err.is_some()
                || s.shutdown & RCV_SHUTDOWN != 0
                || s.state == State::Close
        });
        if !woke {
            return CallOutcome {
                note: Some("blocked with nothing to read; the model stopped waiting".into()),
                ..CallOutcome::err("EAGAIN")
            };
        }
    }
}

/// `tcp_recv_urg`: the urgent byte, read from `urg_data`; the copy in the
/// receive queue stays (and still counts as unread for close()).
fn recv_urg(w: &mut World, id: SockId, flags: MsgFlags) -> CallOutcome {
    let s = w.sk_mut(id);
    if s.oobinline || matches!(s.urg, Urg::None | Urg::Read) {
        return CallOutcome::err("EINVAL");
    }
    if s.state == State::Close && !s.done {
        return CallOutcome::err("ENOTCONN");
    }
    if let Urg::Valid(b) = s.urg {
        if !flags.peek {
            s.urg = Urg::Read;
        }
        return CallOutcome {
            data: Some(vec![b]),
            ..CallOutcome::ok(1)
        };
    }
    if s.state == State::Close || s.shutdown & RCV_SHUTDOWN != 0 {
        return CallOutcome::ok(0);
    }
    CallOutcome::err("EAGAIN")
}

/// `tcp_cleanup_rbuf`: after a read, ACK at once if a delayed ACK is owed
/// for a pushed segment, or if the window can grow a lot.
fn cleanup_rbuf(w: &mut World, id: SockId, copied: usize) {
    let s = w.sk(id);
    let mut time_to_ack = false;
    if s.ack_pending {
        if s.rcv_nxt.wrapping_sub(s.rcv_wup) > s.rcv_mss
            || (copied > 0 && s.ack_pushed && !s.pingpong && s.rmem_alloc == 0)
        {
            time_to_ack = true;
        }
    }
    if copied > 0 && !time_to_ack && s.shutdown & RCV_SHUTDOWN == 0 {
        let now_win = s.receive_window();
        if 2 * now_win <= s.window_clamp {
            let new_win = output::raw_select_window(s);
            if new_win > 0 && new_win >= 2 * now_win {
                time_to_ack = true;
            }
        }
    }
    if time_to_ack && !matches!(s.state, State::Close | State::Listen) {
        let why = if s.ack_pending {
            "ACK after the program read the data (tcp_cleanup_rbuf)"
        } else {
            "window update after the program read (tcp_cleanup_rbuf)"
        };
        send_ack(w, id, why);
    }
}

/// `inet_shutdown` → `tcp_shutdown`.
fn shutdown(w: &mut World, id: SockId, how: How) -> CallOutcome {
    let bits = match how {
        How::Rd => RCV_SHUTDOWN,
        How::Wr => SEND_SHUTDOWN,
        How::RdWr => SHUTDOWN_MASK,
    };
    match w.sk(id).state {
        State::Close => {
            w.sk_mut(id).shutdown |= bits;
            return CallOutcome::err("ENOTCONN");
        }
        State::Listen => {
            if bits & RCV_SHUTDOWN != 0 {
                w.set_state(id, State::Close);
                close::inet_csk_listen_stop(w, id);
            }
            return CallOutcome::ok(0);
        }
        State::SynSent => {
            tcp_disconnect(w, id, "");
            return CallOutcome::ok(0);
        }
        _ => {}
    }
    // SHUT_RD only sets RCV_SHUTDOWN: the queue is NOT purged.
    w.sk_mut(id).shutdown |= bits;
    if bits & SEND_SHUTDOWN != 0
        && matches!(
            w.sk(id).state,
            State::Established | State::SynSent | State::SynRecv | State::CloseWait
        )
        && tcp_close_state(w, id)
    {
        let why = if w.sk(id).state == State::LastAck {
            "FIN: shutdown(SHUT_WR) after the peer's FIN (tcp_shutdown -> tcp_close_state)"
        } else {
            "FIN: shutdown(SHUT_WR) (tcp_shutdown -> tcp_close_state)"
        };
        output::send_fin(w, id, why);
    }
    CallOutcome::ok(0)
}

/// close(2): `__tcp_close`, blocking while SO_LINGER says so.
fn close(w: &mut World, host: usize, name: &str, id: SockId) -> CallOutcome {
    w.hosts[host].closed.push(name.to_string());
    let (outcome, block) = tcp_close(w, id, w.nonblocking);
    let mut out = CallOutcome::ok(0);
    if let Some(limit) = block {
        let start = w.now;
        w.sk_mut(id).lingering_until = Some(start + limit);
        let deadline = start + limit;
        let done = w.block_until(deadline, &|w: &World| {
            !matches!(
                w.sk(id).state,
                State::FinWait1 | State::Closing | State::LastAck
            )
        });
        let waited = w.now - start;
        out.note = Some(if done {
            format!(
                "SO_LINGER: blocked {} ms until the FIN was acknowledged",
                waited / MS
            )
        } else {
            format!(
                "SO_LINGER: linger time ran out after {} ms with the FIN unacknowledged; no RST",
                waited / MS
            )
        });
        close::finish_close(w, id);
    }
    match outcome {
        CloseOutcome::UnreadData(n) => {
            out.note = Some(format!(
                "{n} unread byte{} discarded",
                if n == 1 { "" } else { "s" }
            ));
        }
        CloseOutcome::Repair => out.note = Some("TCP_REPAIR: nothing sent".into()),
        _ => {}
    }
    out
}

/// A process dies (kill -9): its descriptors close in order, without
/// lingering (`PF_EXITING`).
fn exit(w: &mut World, host: usize) -> CallOutcome {
    let mut open: Vec<(SockId, String)> = w.hosts[host]
        .names
        .iter()
        .filter(|(n, _)| !w.hosts[host].closed.contains(n))
        .map(|(n, id)| (*id, n.clone()))
        .collect();
    open.sort();
    for (id, name) in open {
        w.hosts[host].closed.push(name);
        let (_, block) = tcp_close(w, id, true);
        debug_assert!(block.is_none());
    }
    CallOutcome::ok(0)
}

/// `tcp_poll`.
pub fn poll(w: &World, id: SockId) -> u32 {
    use epoll::*;
    let s = w.sk(id);
    if s.state == State::Listen {
        return if s.accept_q.is_empty() { 0 } else { EPOLLIN };
    }
    let mut mask = 0;
    let state = w.state_of(id);
    let closed = s.state == State::Close;
    if s.shutdown == SHUTDOWN_MASK || (closed && state == "CLOSE") {
        mask |= EPOLLHUP;
    }
    if s.shutdown & RCV_SHUTDOWN != 0 {
        mask |= EPOLLIN | EPOLLRDHUP;
    }
    if !matches!(s.state, State::SynSent | State::SynRecv) {
        let mut target = 1;
        if s.urg != Urg::None && s.urg_seq == s.copied_seq && !s.oobinline {
            target += 1;
        }
        // tcp_stream_is_readable
        if s.rcvq.len() >= target {
            mask |= EPOLLIN;
        }
        if s.shutdown & SEND_SHUTDOWN == 0 {
            // __sk_stream_is_writeable: free space >= a third of sndbuf.
            let free = s.sndbuf as i64 - s.sndq.len() as i64;
            if free >= (s.sndq.len() as i64 / 2).max(1) && !closed {
                mask |= EPOLLOUT;
            }
        } else {
            mask |= EPOLLOUT;
        }
        if matches!(s.urg, Urg::Valid(_)) {
            mask |= EPOLLPRI;
        }
    }
    if s.err.is_some() {
        mask |= EPOLLERR;
    }
    mask
}

/// `sk_setsockopt` / `do_tcp_setsockopt`.
fn setsockopt(w: &mut World, id: SockId, o: SockOpt) -> CallOutcome {
    let sys = w.hosts[w.sk(id).host].sysctl.clone();
    let s = w.sk_mut(id);
    match o {
        SockOpt::Linger { on, secs } => {
            s.linger = if on {
                Some(if secs < 0 { u32::MAX / 2 } else { secs as u32 })
            } else {
                None
            };
        }
        SockOpt::RcvBuf(v) => {
            // __sock_set_rcvbuf: doubled for bookkeeping overhead, capped
            // by net.core.rmem_max first.
            let v = (v.max(0) as u32).min(sys.rmem_max);
            s.rcvbuf = (v * 2).max(SOCK_MIN_RCVBUF);
            s.rcvbuf_locked = true;
        }
        SockOpt::SndBuf(v) => {
            let v = (v.max(0) as u32).min(sys.wmem_max);
            s.sndbuf = (v * 2).max(SOCK_MIN_SNDBUF);
            s.sndbuf_locked = true;
        }
        SockOpt::OobInline(b) => s.oobinline = b,
        SockOpt::NoDelay(b) => {
            s.nodelay = b;
            if b {
                write_xmit(w, id);
            }
        }
        SockOpt::Repair(b) => s.repair = b,
        SockOpt::Linger2(v) => {
            s.linger2 = if v < 0 {
                -1
            } else if v as Time * SEC > TCP_FIN_TIMEOUT_MAX {
                TCP_FIN_TIMEOUT_MAX as i64
            } else {
                v as i64 * SEC as i64
            };
        }
    }
    CallOutcome::ok(0)
}

/// `getsockopt SO_MEMINFO` (`sk_get_meminfo`) and `TCP_INFO`
/// (`tcp_get_info`), the fields [`crate::sockinfo`] names.
fn getsockopt(w: &World, id: SockId, o: crate::script::GetOpt) -> crate::script::SockInfo {
    let s = w.sk(id);
    match o {
        crate::script::GetOpt::MemInfo => vec![
            ("rmem_alloc", s.rmem_alloc as i64),
            ("rcvbuf", s.rcvbuf as i64),
            ("wmem_alloc", 0),
            ("sndbuf", s.sndbuf as i64),
            ("fwd_alloc", 0),
            ("wmem_queued", s.sndq.len() as i64),
        ],
        crate::script::GetOpt::TcpInfo => vec![
            ("state", s.state as i64),
            ("rcv_ssthresh", s.rcv_ssthresh as i64),
            ("snd_wnd", s.snd_wnd as i64),
            ("rcv_wnd", s.rcv_wnd as i64),
        ],
    }
}
