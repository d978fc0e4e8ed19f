//! The system calls a program makes (net/ipv4/tcp.c, net/ipv4/af_inet.c,
//! net/core/sock.c, net/core/stream.c), with Linux's return values and
//! errnos.
//!
//! A call that must wait (a blocking connect, accept, send into a full
//! buffer, recv with nothing to read, close with SO_LINGER) returns
//! [`Progress::Blocked`]: the state of the kernel function where it went
//! to sleep. Time then runs, and the call resumes each time something
//! wakes its socket's wait queue (`sk_state_change`, `sk_data_ready`,
//! `sk_write_space`, `sk_error_report` — counted in `Sock::wakeups`), as
//! `sk_wait_event` does, until it returns, its own timeout passes (the
//! linger time), or the run's horizon cuts it short.

use super::World;
use super::close::{self, CloseOutcome, tcp_close, tcp_disconnect};
use super::input;
use super::mem;
use super::output;
use super::skb::*;
use super::sock::*;
use super::timers::{self, wheel_fire_us};
use super::{Ehash, Key4, PortOwner};
use crate::engine::{CallCtx, CallOutcome};
use crate::payload::Payload;
use crate::script::{Call, Data, GetOpt, How, Ioctl, MsgFlags, SockOpt, epoll};
use crate::vocab::Errno;
use crate::vocab::{MemInfo, SockInfo, TcpInfo};

/// A call's progress: returned, or asleep in the kernel.
pub enum Progress {
    Done(CallOutcome),
    Blocked(Blocked),
}

/// A call asleep in the kernel.
pub struct Blocked {
    pub id: SockId,
    /// `Sock::wakeups` when it went to sleep.
    seen: u64,
    started: Time,
    op: Op,
}

enum Op {
    /// `inet_wait_for_connect`.
    Connect,
    /// `inet_csk_wait_for_connect`.
    Accept { new_name: String },
    /// `sk_stream_wait_connect` at the start of `tcp_sendmsg_locked`.
    SendConnect(SendOp),
    /// `sk_stream_wait_memory`.
    SendMemory(SendOp),
    /// `sk_wait_data`.
    Recv { len: u32, flags: MsgFlags },
    /// `sk_stream_wait_close`: SO_LINGER {1, N}.
    Linger { until: Time, outcome: CloseOutcome },
}

/// The state of a `tcp_sendmsg_locked` call.
struct SendOp {
    data: Payload,
    off: u32,
    flags: MsgFlags,
}

/// The label a child's state changes carry before accept() names it.
pub fn unnamed_label(remote: Option<(usize, u16)>) -> String {
    format!("unaccepted:{}", remote.map_or(0, |r| r.1))
}

/// Runs one call up to its return or its first sleep.
pub fn call(w: &mut World, host: usize, name: &str, call: &Call, ctx: &CallCtx) -> Progress {
    if let Call::Exit = call {
        return Progress::Done(exit(w, host));
    }
    if let Call::Socket = call {
        let sys = &w.hosts[host].sysctl;
        // tcp_init_sock: sk_sndbuf = tcp_wmem[1], sk_rcvbuf = tcp_rmem[1].
        let mut s = Sock::new(
            host,
            name,
            sys.tcp_rmem[1],
            sys.tcp_wmem[1],
            sys.tcp_reordering,
        );
        s.rto_max = msecs_to_jiffies(sys.tcp_rto_max_ms as u64);
        s.rto_min = usecs_to_jiffies(sys.tcp_rto_min_us as u64);
        s.link_mtu = w.link_mtu;
        let id = w.add_sock(s);
        w.hosts[host].names.insert(name.to_string(), id);
        w.hosts[host].closed.retain(|n| n != name);
        return Progress::Done(CallOutcome::ok(0));
    }
    let Some(id) = w.named(host, name) else {
        return Progress::Done(CallOutcome::err(Errno::EBADF));
    };
    if w.hosts[host].closed.iter().any(|n| n == name) {
        return Progress::Done(CallOutcome::err(Errno::EBADF));
    }
    let done = |o| Progress::Done(o);
    match call {
        Call::Listen { port, backlog } => done(listen(w, id, *port, *backlog)),
        Call::Connect { port, nonblock, .. } => connect(w, id, ctx, *port, *nonblock),
        Call::Accept => accept(w, id, ctx.new_name.clone().unwrap_or_else(|| "conn".into())),
        Call::Send { data, flags } => {
            let data = match data {
                Data::Count(n) => Payload::pattern(0, *n),
                Data::Bytes(b) => Payload::shared(b.clone().into()),
            };
            send(
                w,
                id,
                SendOp {
                    data,
                    off: 0,
                    flags: *flags,
                },
                true,
            )
        }
        Call::Recv { len, flags } => recv(w, id, *len, *flags),
        Call::Shutdown(how) => done(shutdown(w, id, *how)),
        Call::Close => {
            w.hosts[host].closed.push(name.to_string());
            close(w, id, true)
        }
        Call::Poll { interest } => {
            let m = poll(w, id);
            // EPOLLERR and EPOLLHUP are always reported.
            done(CallOutcome::ok(
                (m & (interest | epoll::EPOLLERR | epoll::EPOLLHUP)) as i64,
            ))
        }
        Call::SetSockOpt(o) => done(setsockopt(w, id, *o)),
        Call::GetSockOpt(o) => done(CallOutcome {
            info: Some(Box::new(getsockopt(w, id, *o))),
            ..CallOutcome::ok(0)
        }),
        Call::Ioctl(Ioctl::InQ) => done(match tcp_inq(w.sk(id)) {
            Ok(n) => CallOutcome::ok(n),
            Err(e) => CallOutcome::err(e),
        }),
        Call::Disconnect => {
            // inet_stream_connect with AF_UNSPEC.
            w.why_ctx = Some("connect(AF_UNSPEC): tcp_disconnect -> RST".into());
            tcp_disconnect(w, id);
            w.why_ctx = None;
            w.sk_mut(id).sock_state = SockState::Unconnected;
            done(CallOutcome::ok(0))
        }
        Call::Socket | Call::Exit => unreachable!("handled above"),
    }
}

fn blocked(w: &mut World, id: SockId, op: Op) -> Progress {
    if matches!(op, Op::SendConnect(_) | Op::SendMemory(_)) {
        w.sk_mut(id).write_pending += 1;
    }
    let s = w.sk(id);
    Progress::Blocked(Blocked {
        id,
        seen: s.wakeups,
        started: w.now,
        op,
    })
}

/// Re-evaluates a sleeping call after a wake-up or its timeout.
pub fn resume(w: &mut World, b: Blocked) -> Progress {
    let id = b.id;
    if matches!(b.op, Op::SendConnect(_) | Op::SendMemory(_)) {
        let s = w.sk_mut(id);
        s.write_pending = s.write_pending.saturating_sub(1);
    }
    match b.op {
        Op::Connect => connect_wait(w, id, b),
        Op::Accept { new_name } => accept(w, id, new_name),
        Op::SendConnect(op) => send(w, id, op, true),
        Op::SendMemory(op) => {
            let s = w.sk(id);
            if s.sk_err.is_some() || s.sk_shutdown & SEND_SHUTDOWN != 0 {
                return Progress::Done(send_error(w, id, op, Errno::EPIPE));
            }
            if !mem::sk_stream_memory_free(s) {
                let seen = s.wakeups;
                w.sk_mut(id).write_pending += 1;
                return Progress::Blocked(Blocked {
                    seen,
                    op: Op::SendMemory(op),
                    ..b
                });
            }
            send_loop(w, id, op)
        }
        Op::Recv { len, flags } => recv(w, id, len, flags),
        Op::Linger { until, outcome } => {
            let s = w.sk(id);
            if close::sk_stream_closing(s) && w.now < until {
                let seen = s.wakeups;
                return Progress::Blocked(Blocked {
                    seen,
                    op: Op::Linger { until, outcome },
                    ..b
                });
            }
            let waited = w.now - b.started;
            let acked = !close::sk_stream_closing(w.sk(id));
            close::finish_close(w, id);
            let mut out = close_outcome(outcome);
            out.note = Some(if acked {
                format!(
                    "SO_LINGER: blocked {} ms until the FIN was acknowledged",
                    waited / MS
                )
            } else {
                format!(
                    "SO_LINGER: the linger time ran out after {} ms with the FIN unacknowledged; no RST",
                    waited / MS
                )
            });
            Progress::Done(out)
        }
    }
}

/// Whether a sleeping call must be looked at again now.
pub fn due(w: &World, b: &Blocked) -> bool {
    if w.sk(b.id).wakeups != b.seen {
        return true;
    }
    matches!(b.op, Op::Linger { until, .. } if w.now >= until)
}

/// The call's own timeout, if it has one.
pub fn own_deadline(b: &Blocked) -> Option<Time> {
    match b.op {
        Op::Linger { until, .. } => Some(until),
        _ => None,
    }
}

/// A call the horizon cut short: what the kernel's call would return if
/// its timeout (SO_RCVTIMEO / SO_SNDTIMEO) ran out now.
fn cut_short(w: &mut World, b: Blocked) -> CallOutcome {
    let at = crate::trace::fmt_time(w.now);
    let note = format!("still blocked at the horizon ({at}); the call was cut short there");
    let id = b.id;
    let mut out = match b.op {
        // inet_stream_connect: "if (!timeo || !inet_wait_for_connect(..))
        // goto out" with err = -EINPROGRESS.
        Op::Connect => CallOutcome::err(Errno::EINPROGRESS),
        Op::Accept { .. } | Op::Recv { .. } => CallOutcome::err(Errno::EAGAIN),
        Op::SendConnect(op) | Op::SendMemory(op) => {
            if op.off > 0 {
                send_out(w, id, &op);
                CallOutcome::ok(op.off as i64)
            } else {
                CallOutcome::err(Errno::EAGAIN)
            }
        }
        Op::Linger { outcome, .. } => {
            close::finish_close(w, id);
            close_outcome(outcome)
        }
    };
    out.note = Some(note);
    out
}

/// Runs time until a sleeping call returns (or the horizon).
pub fn wait(w: &mut World, b: Blocked) -> CallOutcome {
    let mut out = wait_all(w, vec![(0, b)]);
    out.pop().map(|x| x.1).unwrap_or_default()
}

/// Runs time until every sleeping call returns (or the horizon), each
/// resumed on its socket's wake-ups in the order the calls were made.
pub fn wait_all(w: &mut World, mut blocked: Vec<(usize, Blocked)>) -> Vec<(usize, CallOutcome)> {
    let mut done = Vec::new();
    loop {
        // Resume every call something woke, until none moves.
        let mut moved = true;
        while moved {
            moved = false;
            let mut still = Vec::new();
            for (i, b) in blocked {
                if due(w, &b) {
                    moved = true;
                    match resume(w, b) {
                        Progress::Done(o) => done.push((i, o)),
                        Progress::Blocked(b) => still.push((i, b)),
                    }
                } else {
                    still.push((i, b));
                }
            }
            blocked = still;
        }
        if blocked.is_empty() {
            break;
        }
        // At (or past) the horizon a blocked call still sees the segments
        // already on the wire and what they cause at once, as a call on
        // the linux engine does in real time (a connect() made after the
        // horizon completes its handshake): it is cut only when nothing
        // is in flight (the wait runs to the next arrival, never to a
        // timer of its own past the horizon).
        let mut horizon = w.horizon.max(w.now);
        if let Some(t) = w.next_arrival()
            && t >= horizon
        {
            horizon = t;
        }
        let limit = blocked
            .iter()
            .filter_map(|(_, b)| own_deadline(b))
            .min()
            .unwrap_or(horizon)
            .min(horizon);
        if w.step(limit) {
            continue;
        }
        // Nothing happens before the limit: jump there.
        w.now = w.now.max(limit);
        if limit >= horizon && blocked.iter().all(|(_, b)| !due(w, b)) {
            for (i, b) in blocked {
                done.push((i, cut_short(w, b)));
            }
            break;
        }
    }
    done.sort_by_key(|x| x.0);
    done
}

/// `sock_error`: report and clear `sk_err`.
fn sock_error(w: &mut World, id: SockId) -> Option<Errno> {
    w.sk_mut(id).sk_err.take()
}

// ---- bind, listen, connect, accept ----

/// `inet_bind` → `inet_csk_get_port`: no SO_REUSEADDR, so any owner of
/// the port — a listener, a connection, a time-wait socket — conflicts
/// (`inet_csk_bind_conflict`), unless TCP_REPAIR forces reuse.
fn bind(w: &mut World, id: SockId, port: u16) -> Result<(), Errno> {
    let s = w.sk(id);
    if s.local_port != 0 {
        return Err(Errno::EINVAL);
    }
    let h = s.host;
    let force = s.repair;
    if !force && w.hosts[h].ports.get(&port).is_some_and(|o| !o.is_empty()) {
        return Err(Errno::EADDRINUSE);
    }
    let s = w.sk_mut(id);
    s.local_port = port;
    s.bindport_locked = true;
    w.hosts[h]
        .ports
        .entry(port)
        .or_default()
        .push(PortOwner::Sock(id));
    Ok(())
}

/// bind() then `inet_listen` → `inet_csk_listen_start`.
fn listen(w: &mut World, id: SockId, port: u16, backlog: u32) -> CallOutcome {
    if let Err(e) = bind(w, id, port) {
        return CallOutcome::err(e);
    }
    let s = w.sk(id);
    if s.sock_state != SockState::Unconnected || !matches!(s.state, State::Close | State::Listen) {
        return CallOutcome::err(Errno::EINVAL);
    }
    // __sys_listen: min(backlog, net.core.somaxconn)
    let somax = w.sys(id).somaxconn;
    w.sk_mut(id).max_ack_backlog = backlog.min(somax);
    if w.sk(id).state != State::Listen {
        let h = w.sk(id).host;
        w.sk_mut(id).sk_err = None;
        close::tcp_set_state(w, id, State::Listen);
        w.lhash.insert((h, port), id);
    }
    CallOutcome::ok(0)
}

/// `secure_tcp_seq` and `secure_tcp_ts_off`, then `tcp_v4_connect`.
fn connect(w: &mut World, id: SockId, ctx: &CallCtx, dport: u16, nonblock: bool) -> Progress {
    let done = Progress::Done;
    // The program binds the port the script names first (a socket that
    // is bound already — a disconnected one — keeps its port).
    if w.sk(id).local_port == 0 {
        if let Err(e) = bind(w, id, ctx.local_port.unwrap_or(0)) {
            return done(CallOutcome::err(e));
        }
    }
    match w.sk(id).sock_state {
        SockState::Connected => return done(CallOutcome::err(Errno::EISCONN)),
        SockState::Connecting => return done(CallOutcome::err(Errno::EALREADY)),
        SockState::Disconnecting => return done(CallOutcome::err(Errno::EINVAL)),
        SockState::Unconnected => {}
    }
    if w.sk(id).state != State::Close {
        return done(CallOutcome::err(Errno::EISCONN));
    }
    let Some(peer) = ctx.peer_addr.map(|a| w.host_of_addr(a)) else {
        return done(CallOutcome::err(Errno::EINVAL));
    };
    // tcp_v4_connect
    let h = w.sk(id).host;
    let (saddr, daddr) = (w.hosts[h].addr, w.hosts[peer].addr);
    {
        let s = w.sk_mut(id);
        s.remote = Some((peer, dport));
        s.mss_clamp = TCP_MSS_DEFAULT as u16;
    }
    close::tcp_set_state(w, id, State::SynSent);
    // inet_hash_connect: the sole owner of its bind bucket needs no check;
    // otherwise __inet_check_established: a live connection or a time-wait
    // socket of the 4-tuple (tcp_twsk_unique reuses time-wait only on
    // loopback, tcp_tw_reuse = 2) makes the tuple unavailable.
    let lport = w.sk(id).local_port;
    let key: Key4 = (h, lport, peer, dport);
    let sole = w.hosts[h]
        .ports
        .get(&lport)
        .is_some_and(|o| o.len() == 1 && o[0] == PortOwner::Sock(id));
    if !sole && w.ehash.contains_key(&key) {
        close::tcp_set_state(w, id, State::Close);
        w.sk_mut(id).remote = None;
        return done(CallOutcome::err(Errno::EADDRNOTAVAIL));
    }
    w.ehash.insert(key, Ehash::Sock(id));
    let sport = lport;
    let isn = w.secure_tcp_seq(saddr, daddr, sport, dport);
    let tso = w.secure_tcp_ts_off(saddr, daddr);
    let s = w.sk_mut(id);
    if !s.repair {
        if s.write_seq == 0 {
            s.write_seq = isn;
        }
        s.tsoffset = tso;
    }
    output::tcp_connect(w, id);
    w.sk_mut(id).sock_state = SockState::Connecting;
    if nonblock {
        return done(CallOutcome::err(Errno::EINPROGRESS));
    }
    let b = match blocked(w, id, Op::Connect) {
        Progress::Blocked(b) => b,
        p => return p,
    };
    connect_wait(w, id, b)
}

/// The end of `__inet_stream_connect`, once the handshake is over.
fn connect_wait(w: &mut World, id: SockId, b: Blocked) -> Progress {
    let s = w.sk(id);
    if s.state.f() & (TCPF_SYN_SENT | TCPF_SYN_RECV) != 0 {
        let seen = s.wakeups;
        return Progress::Blocked(Blocked { seen, ..b });
    }
    if s.state == State::Close {
        // "Connection was closed by RST, timeout, ICMP error or another
        // process disconnected us."
        let e = sock_error(w, id).unwrap_or(Errno::ECONNABORTED);
        w.sk_mut(id).sock_state = SockState::Unconnected;
        tcp_disconnect(w, id);
        return Progress::Done(CallOutcome::err(e));
    }
    w.sk_mut(id).sock_state = SockState::Connected;
    Progress::Done(CallOutcome::ok(0))
}

/// `inet_accept` → `inet_csk_accept`: the oldest child of the accept
/// queue, waiting for one if needed.
fn accept(w: &mut World, lid: SockId, new_name: String) -> Progress {
    if w.sk(lid).state != State::Listen {
        return Progress::Done(CallOutcome::err(Errno::EINVAL));
    }
    let Some(c) = w.sk_mut(lid).accept_queue.pop_front() else {
        return blocked(w, lid, Op::Accept { new_name });
    };
    let h = w.sk(lid).host;
    let label = unnamed_label(w.sk(c).remote);
    let s = w.sk_mut(c);
    s.name = new_name.clone();
    s.parent = None;
    // sock_graft, newsock->state = SS_CONNECTED
    s.has_socket = true;
    s.sock_state = SockState::Connected;
    w.hosts[h].names.insert(new_name.clone(), c);
    w.hosts[h].closed.retain(|n| n != &new_name);
    // The states recorded before accept() belonged to an unnamed child.
    for st in w.states.iter_mut() {
        if st.sock == label && *st.host == *w.hosts[h].name {
            st.sock = new_name.clone();
        }
    }
    Progress::Done(CallOutcome::ok(0))
}

// ---- send ----

/// `tcp_rate_check_app_limited`.
fn rate_check_app_limited(s: &mut Sock) {
    if s.write_seq.wrapping_sub(s.snd_nxt) < s.mss_cache
        && s.packets_in_flight() < s.snd_cwnd
        && s.lost_out <= s.retrans_out
    {
        let v = s.delivered + s.packets_in_flight();
        s.app_limited = if v == 0 { 1 } else { v };
    }
}

/// `tcp_sendmsg_locked` up to the copy loop. `first` is false when the
/// call resumes from `sk_stream_wait_connect`.
fn send(w: &mut World, id: SockId, op: SendOp, _first: bool) -> Progress {
    rate_check_app_limited(w.sk_mut(id));
    let s = w.sk(id);
    if s.state.f() & !(TCPF_ESTABLISHED | TCPF_CLOSE_WAIT) != 0 {
        // sk_stream_wait_connect
        if let Some(e) = sock_error(w, id) {
            return Progress::Done(send_error(w, id, op, e));
        }
        let s = w.sk(id);
        if s.state.f() & !(TCPF_SYN_SENT | TCPF_SYN_RECV) != 0 {
            return Progress::Done(send_error(w, id, op, Errno::EPIPE));
        }
        if op.flags.dontwait {
            return Progress::Done(send_error(w, id, op, Errno::EAGAIN));
        }
        return blocked(w, id, Op::SendConnect(op));
    }
    if w.sk(id).repair {
        // TCP_REPAIR without TCP_REPAIR_QUEUE: repair_queue is
        // TCP_NO_QUEUE.
        return Progress::Done(CallOutcome::err(Errno::EINVAL));
    }
    send_loop(w, id, op)
}

/// The copy loop of `tcp_sendmsg_locked` (from `restart:`): fill the tail
/// skb of the write queue up to `size_goal`, then new skbs while
/// `sk_stream_memory_free`; a full skb is pushed when more than half the
/// peer's largest window was written since the last push (`forced_push`)
/// or when it is the head of the unsent data (`tcp_push_one`).
fn send_loop(w: &mut World, id: SockId, mut op: SendOp) -> Progress {
    let oob = op.flags.oob;
    let (mut mss_now, mut size_goal) = output::send_mss(w.sk_mut(id), oob);
    let s = w.sk(id);
    if s.sk_err.is_some() || s.sk_shutdown & SEND_SHUTDOWN != 0 {
        return Progress::Done(send_error(w, id, op, Errno::EPIPE));
    }
    let total = op.data.len();
    while op.off < total {
        let s = w.sk(id);
        let mut copy: i64 = 0;
        let tail_ok = match s.write_queue.back() {
            Some(t) => {
                copy = size_goal as i64 - t.len() as i64;
                !t.eor // tcp_skb_can_collapse_to
            }
            None => false,
        };
        if copy <= 0 || !tail_ok {
            // new_segment:
            if !mem::sk_stream_memory_free(s) {
                match wait_for_space(w, id, op, mss_now, size_goal) {
                    Ok(o) => {
                        op = o;
                        (mss_now, size_goal) = output::send_mss(w.sk_mut(id), oob);
                        continue;
                    }
                    Err(p) => return p,
                }
            }
            let first_skb = s.rtx_and_write_queues_empty();
            // tcp_stream_alloc_skb: alloc_skb_fclone(MAX_TCP_HEADER)
            let (truesize, _) = alloc_skb(MAX_TCP_HEADER);
            let s = w.sk_mut(id);
            if first_skb {
                mem::sk_forced_mem_schedule(s, truesize);
            } else {
                mem::sk_wmem_schedule(s, truesize);
            }
            output::skb_entail(w, id, truesize);
            copy = size_goal as i64;
        }
        let left = total - op.off;
        let copy = (copy as u32).min(left);
        // tcp_wmem_schedule never refuses here (no memory pressure).
        let wmem0 = w.sys(id).tcp_wmem[0];
        let copy = mem::tcp_wmem_schedule(w.sk_mut(id), copy, wmem0);
        let piece = op.data.slice(op.off, copy);
        let copied_before = op.off;
        let s = w.sk_mut(id);
        {
            let skb = s.write_queue.back_mut().expect("entailed");
            skb.payload.append(&piece);
            skb.truesize += copy;
            if copied_before == 0 {
                skb.flags &= !TCPHDR_PSH;
            }
            skb.end_seq = skb.end_seq.wrapping_add(copy);
            skb.pcount = 0;
        }
        s.wmem_queued += copy;
        mem::sk_mem_charge(s, copy);
        s.write_seq = s.write_seq.wrapping_add(copy);
        op.off += copy;
        if op.off >= total {
            break;
        }
        let s = w.sk(id);
        let skb_len = s.write_queue.back().map_or(0, |k| k.len());
        if skb_len < size_goal || oob || s.repair {
            continue;
        }
        if output::forced_push(s) {
            output::mark_push(w.sk_mut(id));
            output::push_pending_frames_mss(w, id, mss_now, TCP_NAGLE_PUSH);
        } else if w.sk(id).write_queue.len() == 1 {
            // "skb == tcp_send_head(sk)"
            output::push_one(w, id, mss_now);
        }
    }
    // out:
    send_out(w, id, &op);
    Progress::Done(CallOutcome::ok(op.off as i64))
}

/// `tcp_sendmsg_locked`'s `out:`: push what was written.
fn send_out(w: &mut World, id: SockId, op: &SendOp) {
    if op.off > 0 {
        let (mss_now, _) = output::send_mss(w.sk_mut(id), op.flags.oob);
        let nonagle = w.sk(id).nonagle;
        output::tcp_push(w, id, false, op.flags.oob, mss_now, nonagle);
    }
}

/// `wait_for_space:` and `sk_stream_wait_memory`. Ok: go on copying;
/// Err: the call returned or went to sleep.
fn wait_for_space(
    w: &mut World,
    id: SockId,
    op: SendOp,
    mss_now: u32,
    _size_goal: u32,
) -> Result<SendOp, Progress> {
    w.sk_mut(id).nospace = true;
    remove_empty_skb(w, id);
    if op.off > 0 {
        output::tcp_push(w, id, false, op.flags.oob, mss_now, TCP_NAGLE_PUSH);
    }
    let s = w.sk(id);
    if s.sk_err.is_some() || s.sk_shutdown & SEND_SHUTDOWN != 0 {
        return Err(Progress::Done(send_error(w, id, op, Errno::EPIPE)));
    }
    if op.flags.dontwait {
        // do_eagain: "Make sure that whenever EAGAIN is returned, EPOLLOUT
        // event can be generated later."
        w.sk_mut(id).nospace = true;
        return Err(Progress::Done(send_error(w, id, op, Errno::EAGAIN)));
    }
    if mem::sk_stream_memory_free(w.sk(id)) {
        return Ok(op);
    }
    Err(blocked(w, id, Op::SendMemory(op)))
}

/// `tcp_remove_empty_skb`.
fn remove_empty_skb(w: &mut World, id: SockId) {
    let s = w.sk_mut(id);
    if let Some(t) = s.write_queue.back() {
        if t.seq == t.end_seq {
            let t = s.write_queue.pop_back().expect("present");
            mem::tcp_wmem_free_skb(s, t.truesize);
        }
    }
}

/// `do_error:` / `out_err:` of `tcp_sendmsg_locked` with
/// `sk_stream_error`.
fn send_error(w: &mut World, id: SockId, op: SendOp, err: Errno) -> CallOutcome {
    remove_empty_skb(w, id);
    if op.off > 0 {
        send_out(w, id, &op);
        return CallOutcome::ok(op.off as i64);
    }
    let mut err = err;
    if err == Errno::EPIPE {
        if let Some(e) = sock_error(w, id) {
            err = e;
        }
    }
    let mut o = CallOutcome::err(err);
    if err == Errno::EPIPE && !op.flags.nosignal {
        o.note = Some("SIGPIPE raised (finrst programs ignore it)".into());
    }
    if err == Errno::EAGAIN && w.sk(id).rtx_and_write_queues_empty() {
        w.sk_mut(id).wakeups += 1; // sk_write_space
    }
    o
}

// ---- recv ----

/// `tcp_recvmsg_locked`.
fn recv(w: &mut World, id: SockId, mut len: u32, flags: MsgFlags) -> Progress {
    let s = w.sk(id);
    if s.state == State::Listen {
        return Progress::Done(CallOutcome::err(Errno::ENOTCONN));
    }
    if flags.oob {
        return Progress::Done(recv_urg(w, id, len, flags));
    }
    if s.repair {
        // "if (!(flags & MSG_PEEK)) goto out" with EPERM; a peek with
        // TCP_NO_QUEUE is EINVAL.
        return Progress::Done(CallOutcome::err(if flags.peek {
            Errno::EINVAL
        } else {
            Errno::EPERM
        }));
    }
    let nonblock = flags.dontwait;
    let mut seq = s.copied_seq; // peek_seq for MSG_PEEK
    let target: u32 = 1; // sock_rcvlowat: SO_RCVLOWAT is 1
    let mut copied: u32 = 0;
    let mut out = Payload::empty();
    let mut result: Option<CallOutcome> = None;
    loop {
        let s = w.sk(id);
        // "Are we at urgent data? Stop if we have read anything"
        if s.urg_data != 0 && s.urg_seq == seq && copied > 0 {
            break;
        }
        // Next get a buffer.
        let mut found = None;
        for (i, skb) in s.receive_queue.iter().enumerate() {
            if before(seq, skb.seq) {
                break;
            }
            let offset = seq.wrapping_sub(skb.seq);
            if offset < skb.len() {
                found = Some((i, offset, false));
                break;
            }
            if skb.fin() {
                found = Some((i, offset, true));
                break;
            }
        }
        let Some((i, mut offset, fin_only)) = found else {
            if copied >= target {
                break;
            }
            if copied > 0 {
                if nonblock
                    || s.sk_err.is_some()
                    || s.state == State::Close
                    || s.sk_shutdown & RCV_SHUTDOWN != 0
                {
                    break;
                }
            } else {
                if s.done {
                    break;
                }
                if s.sk_err.is_some() {
                    let e = sock_error(w, id).unwrap_or(Errno::ECONNRESET);
                    result = Some(CallOutcome::err(e));
                    break;
                }
                if s.sk_shutdown & RCV_SHUTDOWN != 0 {
                    break;
                }
                if s.state == State::Close {
                    // "This occurs when user tries to read from never
                    // connected socket."
                    result = Some(CallOutcome::err(Errno::ENOTCONN));
                    break;
                }
                if nonblock {
                    result = Some(CallOutcome::err(Errno::EAGAIN));
                    break;
                }
            }
            // sk_wait_data, after tcp_cleanup_rbuf.
            input::cleanup_rbuf(w, id, copied as i64);
            return blocked(w, id, Op::Recv { len, flags });
        };
        if !fin_only {
            // found_ok_skb:
            let skb_len = w.sk(id).receive_queue[i].len();
            let mut used = (skb_len - offset).min(len);
            let mut skip = false;
            let s = w.sk(id);
            if s.urg_data != 0 {
                let urg_offset = s.urg_seq.wrapping_sub(seq);
                if urg_offset < used {
                    if urg_offset == 0 {
                        if !s.urginline {
                            seq = seq.wrapping_add(1);
                            if !flags.peek {
                                w.sk_mut(id).copied_seq = seq;
                            }
                            offset += 1;
                            used -= 1;
                            if used == 0 {
                                skip = true;
                            }
                        }
                    } else {
                        used = urg_offset;
                    }
                }
            }
            if !skip {
                let piece = w.sk(id).receive_queue[i].payload.slice(offset, used);
                out.append(&piece);
                seq = seq.wrapping_add(used);
                if !flags.peek {
                    w.sk_mut(id).copied_seq = seq;
                }
                copied += used;
                len -= used;
                input::rcv_space_adjust(w, id);
            }
            // skip_copy:
            let s = w.sk_mut(id);
            if s.urg_data != 0 && after(s.copied_seq, s.urg_seq) {
                s.urg_data = 0;
                input::fast_path_check(s);
            }
            let s = w.sk(id);
            let skb = &s.receive_queue[i];
            if used + offset < skb.len() {
                if len == 0 {
                    break;
                }
                continue;
            }
            if !skb.fin() {
                if !flags.peek {
                    input::eat_recv_skb(w.sk_mut(id));
                }
                if len == 0 {
                    break;
                }
                continue;
            }
        }
        // found_fin_ok: "Process the FIN."
        seq = seq.wrapping_add(1);
        if !flags.peek {
            w.sk_mut(id).copied_seq = seq;
            input::eat_recv_skb(w.sk_mut(id));
        }
        break;
    }
    if let Some(r) = result {
        input::cleanup_rbuf(w, id, 0);
        return Progress::Done(r);
    }
    // "Clean up data we have read: This will do ACK frames."
    input::cleanup_rbuf(w, id, copied as i64);
    Progress::Done(CallOutcome {
        data: (copied > 0).then(|| Box::new(out)),
        ..CallOutcome::ok(copied as i64)
    })
}

/// `tcp_recv_urg`: the urgent byte, from `urg_data`; its copy in the
/// receive queue stays (and still counts as unread for close()).
fn recv_urg(w: &mut World, id: SockId, len: u32, flags: MsgFlags) -> CallOutcome {
    let s = w.sk_mut(id);
    if s.urginline || s.urg_data == 0 || s.urg_data == TCP_URG_READ {
        return CallOutcome::err(Errno::EINVAL); // "Yes this is right !"
    }
    if s.state == State::Close && !s.done {
        return CallOutcome::err(Errno::ENOTCONN);
    }
    if s.urg_data & TCP_URG_VALID != 0 {
        let c = (s.urg_data & 0xff) as u8;
        if !flags.peek {
            s.urg_data = TCP_URG_READ;
        }
        if len > 0 {
            return CallOutcome {
                data: Some(Box::new(crate::payload::Payload::from_vec(vec![c]))),
                ..CallOutcome::ok(1)
            };
        }
        return CallOutcome::ok(0);
    }
    if s.state == State::Close || s.sk_shutdown & RCV_SHUTDOWN != 0 {
        return CallOutcome::ok(0);
    }
    // "this call should never block"
    CallOutcome::err(Errno::EAGAIN)
}

// ---- shutdown, close, exit ----

/// `inet_shutdown` → `tcp_shutdown`.
fn shutdown(w: &mut World, id: SockId, how: How) -> CallOutcome {
    let how = match how {
        How::Rd => RCV_SHUTDOWN,
        How::Wr => SEND_SHUTDOWN,
        How::RdWr => SHUTDOWN_MASK,
    };
    let s = w.sk_mut(id);
    if s.sock_state == SockState::Connecting {
        s.sock_state = if s.state.f() & (TCPF_SYN_SENT | TCPF_SYN_RECV | TCPF_CLOSE) != 0 {
            SockState::Disconnecting
        } else {
            SockState::Connected
        };
    }
    let mut out = CallOutcome::ok(0);
    match w.sk(id).state {
        State::Listen if how & RCV_SHUTDOWN == 0 => {}
        State::Listen | State::SynSent => {
            // "Remaining two branches are temporary solution for missing
            // close() in multithreaded environment."
            w.why_ctx = Some("shutdown(): tcp_disconnect".into());
            tcp_disconnect(w, id);
            w.why_ctx = None;
            w.sk_mut(id).sock_state = SockState::Unconnected;
        }
        st => {
            if st == State::Close {
                out = CallOutcome::err(Errno::ENOTCONN);
            }
            // SHUT_RD only sets RCV_SHUTDOWN: the queue is not purged.
            w.sk_mut(id).sk_shutdown |= how;
            close::tcp_shutdown(w, id, how);
        }
    }
    // "Wake up anyone sleeping in poll."
    w.sk_mut(id).wakeups += 1;
    out
}

fn close_outcome(outcome: CloseOutcome) -> CallOutcome {
    let mut out = CallOutcome::ok(0);
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

/// close(2): `inet_release` → `tcp_close`, sleeping in
/// `sk_stream_wait_close` while SO_LINGER says so (not when the process
/// is exiting: `PF_EXITING`).
fn close(w: &mut World, id: SockId, may_linger: bool) -> Progress {
    let linger = w.sk(id).linger;
    let lingering = may_linger && linger.is_some_and(|t| t > 0);
    let (outcome, wait) = tcp_close(w, id, lingering);
    if !wait {
        return Progress::Done(close_outcome(outcome));
    }
    // sk_lingertime is a schedule_timeout(): the timer wheel rounds it.
    let now_j = w.jiffies();
    let t = linger.unwrap_or(0).min(u64::MAX / 4 - now_j);
    let until = wheel_fire_us(now_j, now_j + t);
    w.sk_mut(id).lingering_until = Some(until);
    blocked(w, id, Op::Linger { until, outcome })
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
    // do_exit -> exit_files -> close_files walks the descriptor table
    // upwards, but each filp_close's fput() only queues ____fput with
    // task_work_add, and task_work_run runs that stack last-in first-out
    // (kernel/task_work.c keeps no FIFO order): the sockets are released,
    // and their FIN or RST sent, from the highest descriptor down.
    open.sort();
    open.reverse();
    for (id, name) in open {
        w.hosts[host].closed.push(name);
        match close(w, id, false) {
            Progress::Done(_) => {}
            Progress::Blocked(_) => unreachable!("an exiting process does not linger"),
        }
    }
    CallOutcome::ok(0)
}

// ---- poll, options ----

/// `tcp_poll`.
pub fn poll(w: &World, id: SockId) -> u32 {
    use epoll::*;
    let s = w.sk(id);
    if s.state == State::Listen {
        // inet_csk_listen_poll
        return if s.accept_queue.is_empty() {
            0
        } else {
            EPOLLIN
        };
    }
    let mut mask = 0;
    let shutdown = s.sk_shutdown;
    if shutdown == SHUTDOWN_MASK || s.state == State::Close {
        mask |= EPOLLHUP;
    }
    if shutdown & RCV_SHUTDOWN != 0 {
        mask |= EPOLLIN | EPOLLRDHUP;
    }
    if s.state != State::SynSent && s.state != State::SynRecv {
        let mut target: u32 = 1;
        if s.urg_data != 0 && s.urg_seq == s.copied_seq && !s.urginline {
            target += 1;
        }
        // tcp_stream_is_readable → tcp_epollin_ready
        let avail = s.rcv_nxt.wrapping_sub(s.copied_seq) as i32;
        let pressure = s.rmem_alloc > s.rcvbuf - (s.rcvbuf >> 3);
        if avail > 0 && (avail as u32 >= target || pressure || s.receive_window() <= s.ack_rcv_mss)
        {
            mask |= EPOLLIN;
        }
        if shutdown & SEND_SHUTDOWN == 0 {
            if mem::sk_stream_is_writeable(s) {
                mask |= EPOLLOUT;
            }
        } else {
            mask |= EPOLLOUT;
        }
        if s.urg_data & TCP_URG_VALID != 0 {
            mask |= EPOLLPRI;
        }
    }
    if s.sk_err.is_some() {
        mask |= EPOLLERR;
    }
    mask
}

/// `sk_setsockopt` / `do_tcp_setsockopt`.
fn setsockopt(w: &mut World, id: SockId, o: SockOpt) -> CallOutcome {
    let sys = w.sys(id).clone();
    let s = w.sk_mut(id);
    match o {
        SockOpt::Linger { on, secs } => {
            s.linger = if on {
                // "(unsigned int)ling.l_linger >= MAX_SCHEDULE_TIMEOUT/HZ"
                let v = secs as u32 as u64;
                Some(if v >= (i64::MAX as u64) / HZ {
                    u64::MAX / 4
                } else {
                    v * HZ
                })
            } else {
                None
            };
        }
        SockOpt::RcvBuf(v) => {
            // __sock_set_rcvbuf(sk, min_t(u32, val, rmem_max)): doubled
            // "to account for struct sk_buff etc. overhead".
            let v = (v as u32).min(sys.rmem_max).min(i32::MAX as u32 / 2);
            s.rcvbuf_locked = true;
            s.rcvbuf = (v * 2).max(SOCK_MIN_RCVBUF);
        }
        SockOpt::SndBuf(v) => {
            let v = (v as u32).min(sys.wmem_max).min(i32::MAX as u32 / 2);
            s.sndbuf_locked = true;
            s.sndbuf = (v * 2).max(SOCK_MIN_SNDBUF);
            // "Wake up sending tasks if we upped the value."
            if mem::sk_stream_is_writeable(s) && s.has_socket {
                s.nospace = false;
            }
            s.wakeups += 1;
        }
        SockOpt::OobInline(b) => s.urginline = b,
        SockOpt::NoDelay(b) => {
            // __tcp_sock_set_nodelay
            if b {
                s.nonagle |= TCP_NAGLE_OFF | TCP_NAGLE_PUSH;
                output::push_pending_frames(w, id);
            } else {
                s.nonagle &= !TCP_NAGLE_OFF;
            }
        }
        SockOpt::Repair(b) => {
            // tcp_can_repair_sock: CAP_NET_ADMIN and any state but
            // LISTEN (checked on 6.18: FIN_WAIT2, CLOSE_WAIT, SYN_SENT and
            // CLOSE are accepted, a listener gets EPERM).
            if s.state == State::Listen {
                return CallOutcome::err(Errno::EPERM);
            }
            if b {
                s.repair = true;
            } else {
                s.repair = false;
                output::send_window_probe(w, id);
            }
        }
        SockOpt::Linger2(v) => {
            s.linger2 = if v < 0 {
                -1
            } else if v as u64 > TCP_FIN_TIMEOUT_MAX / HZ {
                TCP_FIN_TIMEOUT_MAX as i64
            } else {
                v as i64 * HZ as i64
            };
        }
        SockOpt::UserTimeout(v) => {
            // do_tcp_setsockopt: "Cap the max time in ms TCP will retry or
            // probe the window before giving up and aborting (ETIMEDOUT)".
            if v < 0 {
                return CallOutcome::err(Errno::EINVAL);
            }
            s.user_timeout = v as u32;
        }
        SockOpt::KeepAlive(on) => {
            // sk_setsockopt → sock_set_keepalive → tcp_set_keepalive, then
            // the flag.
            let armed = !matches!(s.state, State::Close | State::Listen);
            let was = s.keepopen;
            s.keepopen = on;
            if armed && on && !was {
                let when = keepalive_time_when(s, &sys);
                timers::reset_keepalive_timer(w, id, when);
            } else if armed && !on {
                timers::delete_keepalive_timer(w, id);
            }
        }
        SockOpt::KeepIdle(v) => {
            // tcp_sock_set_keepidle_locked
            if !(1..=MAX_TCP_KEEPIDLE).contains(&v) {
                return CallOutcome::err(Errno::EINVAL);
            }
            s.keepalive_time = v as Jiffies * HZ;
            if s.keepopen && !matches!(s.state, State::Close | State::Listen) {
                let now_j = w.jiffies();
                let s = w.sk(id);
                let elapsed = keepalive_time_elapsed(s, now_j);
                let left = s.keepalive_time.saturating_sub(elapsed);
                timers::reset_keepalive_timer(w, id, left);
            }
        }
        SockOpt::KeepIntvl(v) => {
            if !(1..=MAX_TCP_KEEPINTVL).contains(&v) {
                return CallOutcome::err(Errno::EINVAL);
            }
            s.keepalive_intvl = v as Jiffies * HZ;
        }
        SockOpt::KeepCnt(v) => {
            if !(1..=MAX_TCP_KEEPCNT).contains(&v) {
                return CallOutcome::err(Errno::EINVAL);
            }
            s.keepalive_probes = v as u8;
        }
        SockOpt::SynCnt(v) => {
            // tcp_sock_set_syncnt
            if !(1..=MAX_TCP_SYNCNT).contains(&v) {
                return CallOutcome::err(Errno::EINVAL);
            }
            s.syn_retries = v as u8;
        }
        SockOpt::Inq(on) => s.recvmsg_inq = on,
    }
    CallOutcome::ok(0)
}

/// `tcp_inq` (the `SIOCINQ` of `tcp_ioctl`): the bytes a read would
/// return — up to the urgent byte when one is pending out of line, less
/// the FIN's sequence number once it came.
fn tcp_inq(s: &Sock) -> Result<i64, Errno> {
    if s.state == State::Listen {
        return Err(Errno::EINVAL);
    }
    if matches!(s.state, State::SynSent | State::SynRecv) {
        return Ok(0);
    }
    let answ = if s.urginline
        || s.urg_data == 0
        || before(s.urg_seq, s.copied_seq)
        || !before(s.urg_seq, s.rcv_nxt)
    {
        let mut a = s.rcv_nxt.wrapping_sub(s.copied_seq);
        // "Subtract 1, if FIN was received"
        if a != 0 && s.done {
            a -= 1;
        }
        a
    } else {
        s.urg_seq.wrapping_sub(s.copied_seq)
    };
    Ok(answ as i32 as i64)
}

/// `getsockopt SO_MEMINFO` (`sk_get_meminfo`) and `TCP_INFO`
/// (`tcp_get_info`), the fields [`crate::sockinfo`] names.
fn getsockopt(w: &World, id: SockId, o: GetOpt) -> SockInfo {
    let s = w.sk(id);
    match o {
        GetOpt::MemInfo => SockInfo::Mem(MemInfo {
            rmem_alloc: s.rmem_alloc as i64,
            rcvbuf: s.rcvbuf as i64,
            // TX completes inside dev_queue_xmit on the link: nothing is
            // ever charged to sk_wmem_alloc when a call returns.
            wmem_alloc: 0,
            sndbuf: s.sndbuf as i64,
            fwd_alloc: s.forward_alloc as i64,
            wmem_queued: s.wmem_queued as i64,
        }),
        GetOpt::TcpInfo => {
            // On a listener, tcp_get_info reports the accept queue in
            // tcpi_unacked and the backlog limit in tcpi_sacked.
            let listen = s.state == State::Listen;
            SockInfo::Tcp(TcpInfo {
                state: s.state as i64,
                ca_state: s.ca_state as i64,
                retransmits: s.retransmits as i64,
                probes: s.probes_out as i64,
                backoff: s.backoff as i64,
                snd_mss: s.mss_cache as i64,
                rcv_mss: s.ack_rcv_mss as i64,
                unacked: if listen {
                    s.accept_queue.len() as i64
                } else {
                    s.packets_out as i64
                },
                sacked: if listen {
                    s.max_ack_backlog as i64
                } else {
                    s.sacked_out as i64
                },
                lost: s.lost_out as i64,
                retrans: s.retrans_out as i64,
                rcv_ssthresh: s.rcv_ssthresh as i64,
                snd_ssthresh: s.snd_ssthresh as i64,
                snd_cwnd: s.snd_cwnd as i64,
                advmss: s.advmss as i64,
                reordering: s.reordering as i64,
                rcv_space: s.rcvq_space_space as i64,
                total_retrans: s.total_retrans as i64,
                bytes_acked: s.bytes_acked as i64,
                bytes_received: s.bytes_received as i64,
                notsent_bytes: (s.write_seq.wrapping_sub(s.snd_nxt) as i32).max(0) as i64,
                bytes_retrans: s.bytes_retrans as i64,
                snd_wnd: s.snd_wnd as i64,
                rcv_wnd: s.rcv_wnd as i64,
            })
        }
    }
}
