//! smoltcp hosts, the script's sockets on them, and how each script call
//! maps onto smoltcp's API.
//!
//! This part knows nothing about how frames travel or how time passes: the
//! in-process engine ([`super::SmolEngine`]) and the TAP engine
//! ([`super::tap`]) both drive it. A call is *attempted*
//! ([`World::attempt`]); a call that would block in a real program returns
//! [`Attempt::Block`] and the driver moves the network on and attempts it
//! again, until it completes or the driver gives up ([`World::give_up`]).
//!
//! The Linux view a program has of a socket — `sk_err`, `sk_shutdown`,
//! "FIN received" — is not kept by smoltcp, so it is derived here from what
//! the sockets did, in one place ([`Sock`]); `docs-smoltcp-engine.md` has
//! the resulting table.

use crate::engine::{CallCtx, CallOutcome, HostSpec, OpenConn};
use crate::limits::MAX_SMOLTCP_BUFFER;
use crate::script::{Call, Data, How, MsgFlags, SockOpt, epoll};
use crate::segment::Segment;
use crate::vocab::{Errno, TcpState};
use rustc_hash::FxHashMap as HashMap;
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::phy::Device;
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::Instant;
use smoltcp::wire::IpAddress;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// Buffer sizes when the script sets none. 65535 keeps window scaling out
/// of the picture (smoltcp scales only above 64 KiB), so windows read as
/// plain byte counts.
pub const DEFAULT_BUF: usize = 65535;

/// smoltcp sockets accept one connection each; a listener is a pool of
/// listening sockets on its port. Linux lets `backlog + 1` connections
/// complete before accept(); the pool has that many, capped here.
pub const MAX_POOL: u32 = 16;

/// The Linux state (`include/net/tcp_states.h`) of a smoltcp state: the
/// two follow RFC 793's diagram, named differently.
pub fn linux_state(s: State) -> TcpState {
    match s {
        State::Closed => TcpState::Close,
        State::Listen => TcpState::Listen,
        State::SynSent => TcpState::SynSent,
        State::SynReceived => TcpState::SynRecv,
        State::Established => TcpState::Established,
        State::FinWait1 => TcpState::FinWait1,
        State::FinWait2 => TcpState::FinWait2,
        State::CloseWait => TcpState::CloseWait,
        State::Closing => TcpState::Closing,
        State::LastAck => TcpState::LastAck,
        State::TimeWait => TcpState::TimeWait,
    }
}

/// A connection's 4-tuple from one side: (local addr, local port, remote
/// addr, remote port).
pub type Tuple = (Ipv4Addr, u16, Ipv4Addr, u16);

fn v4(a: IpAddress) -> Ipv4Addr {
    match a {
        IpAddress::Ipv4(x) => x,
    }
}

/// One smoltcp host.
pub struct Stack<D: Device> {
    pub iface: Interface,
    pub sockets: SocketSet<'static>,
    pub dev: D,
}

impl<D: Device> Stack<D> {
    pub fn tcp(&self, h: SocketHandle) -> &tcp::Socket<'static> {
        self.sockets.get::<tcp::Socket>(h)
    }
    pub fn tcp_mut(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(h)
    }
    /// The earliest time any socket wants to be polled (µs), as smoltcp
    /// reports it; frames waiting in the device are not included.
    pub fn poll_at(&mut self, now: u64) -> Option<u64> {
        self.iface
            .poll_at(Instant::from_micros(now as i64), &self.sockets)
            .map(|i| i.total_micros().max(0) as u64)
    }
}

/// Options set before smoltcp's socket exists (it takes its buffers at
/// creation and cannot resize them).
#[derive(Clone, Copy, Debug, Default)]
pub struct Opts {
    pub rcvbuf: Option<usize>,
    pub sndbuf: Option<usize>,
    /// SO_LINGER {1, 0}: close() becomes abort().
    pub linger0: bool,
    pub nodelay: bool,
}

#[derive(Debug)]
pub enum Kind {
    /// socket() made, neither listen nor connect yet: no smoltcp socket.
    Fresh,
    /// A pool of listening smoltcp sockets (ids into `World::socks`).
    Listener {
        port: u16,
        pool: Vec<usize>,
        open: bool,
    },
    Conn {
        handle: SocketHandle,
    },
}

/// A script socket (or a pooled, not yet accepted connection) and the
/// Linux-visible facts smoltcp does not keep.
#[derive(Debug)]
pub struct Sock {
    pub host: usize,
    /// The script's name; `None` for a pooled connection not accepted yet.
    pub name: Option<String>,
    /// The listener whose pool this socket is in (until accepted).
    pub parent: Option<usize>,
    pub kind: Kind,
    pub opts: Opts,
    /// The program closed its descriptor (close() or exit): no more calls.
    pub prog_closed: bool,
    /// shutdown(SHUT_WR) or close(): Linux's SEND_SHUTDOWN.
    pub shut_wr: bool,
    /// Linux's `sk_err`, reported once by the next recv/send (and shown as
    /// EPOLLERR until then).
    pub err: Option<Errno>,
    /// An RST closed the connection (Linux: `tcp_done`, SHUTDOWN_MASK).
    pub reset: bool,
    /// A FIN arrived (Linux: RCV_SHUTDOWN + SOCK_DONE).
    pub fin_rcvd: bool,
    /// Last state seen, to record transitions.
    pub last: Option<State>,
    /// When the handshake completed (for FIFO accept).
    pub established_seq: Option<u64>,
    /// A connect() is in progress (blocking connect re-attempts).
    pub connecting: bool,
    /// Why the next FIN / RST from this socket is sent (for the trace).
    pub fin_why: Option<String>,
    pub rst_why: Option<String>,
    /// The 4-tuple while known (smoltcp forgets it on RST).
    pub tuple: Option<Tuple>,
    /// Label for a pooled connection never accepted.
    pub pending_label: Option<String>,
}

impl Sock {
    fn new(host: usize, name: Option<String>, kind: Kind, opts: Opts) -> Sock {
        Sock {
            host,
            name,
            parent: None,
            kind,
            opts,
            prog_closed: false,
            shut_wr: false,
            err: None,
            reset: false,
            fin_rcvd: false,
            last: None,
            established_seq: None,
            connecting: false,
            fin_why: None,
            rst_why: None,
            tuple: None,
            pending_label: None,
        }
    }
    pub fn handle(&self) -> Option<SocketHandle> {
        match self.kind {
            Kind::Conn { handle } => Some(handle),
            _ => None,
        }
    }
}

/// A transition of one socket (named when the run is reported).
#[derive(Clone, Debug)]
pub struct StateRec {
    pub time_us: u64,
    pub sock: usize,
    pub from: TcpState,
    pub to: TcpState,
}

/// What an attempted call did.
#[derive(Debug)]
pub enum Attempt {
    Done(CallOutcome),
    /// A real program would block here; the driver runs the network and
    /// attempts again.
    Block,
}

/// Queues `data` from byte `from` on in the socket's send buffer, as
/// `send_slice` would (the ring may take it in two stretches), and returns
/// how much it took. A `send N`'s pattern is written straight into the
/// buffer.
fn enqueue(t: &mut tcp::Socket<'static>, data: &Data, from: usize) -> usize {
    let bytes = match data {
        Data::Bytes(b) => return t.send_slice(&b[from..]).unwrap_or(0),
        Data::Count(n) => *n as usize,
    };
    let mut done = 0;
    for _ in 0..2 {
        let at = from + done;
        let left = bytes - at;
        if left == 0 {
            break;
        }
        let k = t
            .send(|buf: &mut [u8]| {
                let k = buf.len().min(left);
                let mut phase = at % 26;
                // Stretches of a table of whole cycles: a few memcpys.
                use crate::payload::PATTERN;
                for chunk in buf[..k].chunks_mut(PATTERN.len() - 26) {
                    chunk.copy_from_slice(&PATTERN[phase..phase + chunk.len()]);
                    phase = (phase + chunk.len()) % 26;
                }
                (k, k)
            })
            .unwrap_or(0);
        if k == 0 {
            break;
        }
        done += k;
    }
    done
}

/// What survives between attempts of one blocking call.
#[derive(Debug, Default)]
pub struct Retry {
    /// `send`: bytes queued so far.
    pub sent: usize,
}

/// All smoltcp hosts of a run (a host run by the kernel is `None`).
pub struct World<D: Device> {
    pub hosts: Vec<HostSpec>,
    pub stacks: Vec<Option<Stack<D>>>,
    pub socks: Vec<Sock>,
    pub names: Vec<BTreeMap<String, usize>>,
    pub now: u64,
    pub states: Vec<StateRec>,
    pub notes: Vec<String>,
    /// When something last happened (a frame or a state change).
    pub last_activity: u64,
    next_established: u64,
    /// Per direction, the window the *sender* last heard from its peer
    /// (updated on delivery): a data segment sent into a zero window is a
    /// zero-window probe.
    known_win: HashMap<Tuple, u16>,
    probes: HashMap<Tuple, u32>,
    /// The buffer the last recv() read into, reused once the runner has let
    /// go of the bytes it returned.
    recv_buf: Option<std::sync::Arc<[u8]>>,
}

impl<D: Device> World<D> {
    pub fn new(hosts: Vec<HostSpec>, stacks: Vec<Option<Stack<D>>>) -> Self {
        let names = hosts.iter().map(|_| BTreeMap::new()).collect();
        World {
            hosts,
            stacks,
            socks: Vec::new(),
            names,
            now: 0,
            states: Vec::new(),
            notes: Vec::new(),
            last_activity: 0,
            next_established: 0,
            known_win: HashMap::default(),
            probes: HashMap::default(),
            recv_buf: None,
        }
    }

    pub fn host_name(&self, a: Ipv4Addr) -> String {
        self.hosts
            .iter()
            .find(|h| h.addr == a)
            .map(|h| h.name.clone())
            .unwrap_or_else(|| a.to_string())
    }

    /// Adds a note once (unsupported calls repeat in loops of scripts).
    pub fn note(&mut self, n: String) {
        if !self.notes.contains(&n) {
            self.notes.push(n);
        }
    }

    fn stack(&mut self, h: usize) -> &mut Stack<D> {
        self.stacks[h]
            .as_mut()
            .expect("calls reach only hosts run on smoltcp")
    }

    fn tcp(&self, id: usize) -> Option<&tcp::Socket<'static>> {
        let s = &self.socks[id];
        let h = s.handle()?;
        Some(self.stacks[s.host].as_ref()?.tcp(h))
    }

    fn tcp_mut(&mut self, id: usize) -> Option<&mut tcp::Socket<'static>> {
        let (host, h) = (self.socks[id].host, self.socks[id].handle()?);
        Some(self.stacks[host].as_mut()?.tcp_mut(h))
    }

    /// Creates a smoltcp socket with the buffer sizes the options ask for.
    fn new_tcp(&mut self, host: usize, o: &Opts) -> SocketHandle {
        let rx = tcp::SocketBuffer::new(vec![0u8; o.rcvbuf.unwrap_or(DEFAULT_BUF).max(1)]);
        let tx = tcp::SocketBuffer::new(vec![0u8; o.sndbuf.unwrap_or(DEFAULT_BUF).max(1)]);
        let mut s = tcp::Socket::new(rx, tx);
        s.set_nagle_enabled(!o.nodelay);
        self.stack(host).sockets.add(s)
    }

    fn add_sock(&mut self, s: Sock) -> usize {
        self.socks.push(s);
        self.socks.len() - 1
    }

    /// The smoltcp state of a socket, `None` before it has one.
    pub fn smol_state(&self, id: usize) -> Option<State> {
        self.tcp(id).map(|t| t.state())
    }

    /// The state a script's `expect ... state` sees.
    pub fn state_of(&self, host: usize, name: &str) -> Option<TcpState> {
        let id = *self.names[host].get(name)?;
        Some(self.state_name(id))
    }

    fn state_name(&self, id: usize) -> TcpState {
        match &self.socks[id].kind {
            Kind::Fresh => TcpState::Close,
            Kind::Listener { open, .. } => {
                if *open {
                    TcpState::Listen
                } else {
                    TcpState::Close
                }
            }
            Kind::Conn { .. } => self
                .smol_state(id)
                .map(linux_state)
                .unwrap_or(TcpState::Close),
        }
    }

    /// Records every state change on host `h` since the last look. `rst`
    /// is the tuple (as the receiver sees it) of an RST segment that was
    /// just processed: a socket of that tuple that closed was reset, which
    /// Linux reports as `sk_err` (ECONNRESET, or ECONNREFUSED in SYN_SENT).
    pub fn observe(&mut self, h: usize, rst: Option<Tuple>) {
        for id in 0..self.socks.len() {
            if self.socks[id].host != h {
                continue;
            }
            let Some(t) = self.tcp(id) else { continue };
            let st = t.state();
            let tuple = match (t.local_endpoint(), t.remote_endpoint()) {
                (Some(l), Some(r)) => Some((v4(l.addr), l.port, v4(r.addr), r.port)),
                _ => None,
            };
            let s = &mut self.socks[id];
            if tuple.is_some() {
                s.tuple = tuple;
            }
            let prev = s.last;
            if prev == Some(st) {
                continue;
            }
            s.last = Some(st);
            if matches!(
                st,
                State::CloseWait | State::LastAck | State::Closing | State::TimeWait
            ) {
                s.fin_rcvd = true;
            }
            if !matches!(
                st,
                State::Listen | State::SynReceived | State::SynSent | State::Closed
            ) && s.established_seq.is_none()
            {
                s.established_seq = Some(self.next_established);
                self.next_established += 1;
            }
            let reset_here = st == State::Closed && rst.is_some() && rst == s.tuple;
            if reset_here {
                match prev {
                    Some(State::SynSent) => s.err = Some(Errno::ECONNREFUSED),
                    // An RST ends a connection the program already left
                    // silently for the program, but Linux still marks it.
                    _ => s.err = Some(Errno::ECONNRESET),
                }
                s.reset = true;
            }
            // A pooled socket's own LISTEN is bookkeeping, not a transition
            // a program could see: the listener's LISTEN is recorded once.
            let pooled_listen = s.parent.is_some() && st == State::Listen && prev.is_none();
            if !pooled_listen {
                let from = prev.map(linux_state).unwrap_or(TcpState::Close);
                self.states.push(StateRec {
                    time_us: self.now,
                    sock: id,
                    from,
                    to: linux_state(st),
                });
                self.last_activity = self.now;
            }
        }
    }

    fn record_state(&mut self, id: usize, from: TcpState, to: TcpState) {
        self.states.push(StateRec {
            time_us: self.now,
            sock: id,
            from,
            to,
        });
        self.last_activity = self.now;
    }

    /// The name a socket has in the trace.
    pub fn display_name(&self, id: usize) -> String {
        let s = &self.socks[id];
        if let Some(n) = &s.name {
            return n.clone();
        }
        if let Some(l) = &s.pending_label {
            return l.clone();
        }
        let parent = s.parent.and_then(|p| self.socks[p].name.clone());
        format!(
            "{}[unaccepted]",
            parent.unwrap_or_else(|| "listener".into())
        )
    }

    // ---- frames --------------------------------------------------------

    /// A segment reached its receiver: the sender's next data into a zero
    /// window is a probe.
    pub fn delivered(&mut self, seg: &Segment) {
        // Keyed by the direction the *receiver* sends in.
        let k = (seg.dst_addr, seg.dport, seg.src_addr, seg.sport);
        self.heard(k, seg.flags, seg.win);
    }

    /// [`World::delivered`], from the receiver's tuple `k` and what it
    /// reads of the segment.
    pub fn heard(&mut self, k: Tuple, flags: crate::segment::Flags, win: u16) {
        if flags.rst() {
            self.known_win.remove(&k);
        } else if flags.ack() {
            self.known_win.insert(k, win);
        }
    }

    /// Says why smoltcp sent a segment, where the engine knows: the close()
    /// or abort() behind a FIN or RST, a zero-window probe, the interface's
    /// reply to a segment no socket took.
    pub fn annotate(&mut self, seg: &mut Segment) {
        let k: Tuple = (seg.src_addr, seg.sport, seg.dst_addr, seg.dport);
        let Some(h) = self.hosts.iter().position(|x| x.addr == seg.src_addr) else {
            return;
        };
        // A segment from a host not on smoltcp (the kernel of a TAP pair):
        // only the wire-level probe label applies.
        let from_smol = self.stacks.get(h).is_some_and(|s| s.is_some());
        let owner = (0..self.socks.len())
            .find(|&i| self.socks[i].host == h && self.socks[i].tuple == Some(k));
        if seg.flags.rst() && from_smol {
            if let Some(i) = owner
                && let Some(w) = self.socks[i].rst_why.take()
            {
                seg.why = Some(w.into());
                return;
            }
            let live = owner.is_some_and(|i| {
                self.smol_state(i)
                    .is_some_and(|s| !matches!(s, State::Closed | State::Listen))
            });
            seg.why = Some(if live {
                "the socket rejects the segment (RFC 9293 reset generation)".into()
            } else {
                "no live socket for the segment (or a socket reset before it was used) → RST".into()
            });
            return;
        }
        if seg.flags.fin()
            && let Some(i) = owner
            && let Some(w) = self.socks[i].fin_why.take()
        {
            seg.why = Some(w.into());
            return;
        }
        if seg.len > 0 && self.known_win.get(&k) == Some(&0) {
            let n = self.probes.entry(k).or_insert(0);
            *n += 1;
            seg.why = Some(format!("zero-window probe #{n}").into());
        }
    }

    // ---- calls ---------------------------------------------------------

    /// Performs (or re-attempts) one call.
    pub fn attempt(
        &mut self,
        host: usize,
        name: &str,
        call: &Call,
        ctx: &CallCtx,
        retry: &mut Retry,
    ) -> Attempt {
        if let Call::Exit = call {
            return Attempt::Done(self.exit(host));
        }
        if let Call::Socket = call {
            let id = self.add_sock(Sock::new(
                host,
                Some(name.into()),
                Kind::Fresh,
                Opts::default(),
            ));
            self.names[host].insert(name.into(), id);
            return Attempt::Done(CallOutcome::ok(0));
        }
        let Some(&id) = self.names[host].get(name) else {
            return Attempt::Done(CallOutcome::err(Errno::EBADF));
        };
        if self.socks[id].prog_closed {
            return Attempt::Done(CallOutcome::err(Errno::EBADF));
        }
        match call {
            Call::Socket | Call::Exit => unreachable!("handled above"),
            Call::Listen { port, backlog } => Attempt::Done(self.listen(id, *port, *backlog)),
            Call::Connect { port, .. } => self.connect(id, *port, ctx),
            Call::Accept => self.accept(id, ctx),
            Call::Send { data, flags } => self.send(id, data, flags, retry),
            Call::Recv { len, flags } => self.recv(id, *len as usize, flags),
            Call::Shutdown(how) => Attempt::Done(self.shutdown(id, *how)),
            Call::Close => Attempt::Done(self.close(id, "close()")),
            Call::Poll { interest } => Attempt::Done(self.poll(id, *interest)),
            Call::SetSockOpt(o) => Attempt::Done(self.setsockopt(id, o)),
            Call::Disconnect => Attempt::Done(self.disconnect(id)),
            Call::GetSockOpt(o) => Attempt::Done(CallOutcome::unsupported(
                "smoltcp",
                &format!("getsockopt {}", o.name()),
            )),
            Call::Ioctl(r) => Attempt::Done(CallOutcome::unsupported(
                "smoltcp",
                &format!("ioctl {}", r.name()),
            )),
        }
    }

    /// The result of a blocking call the driver stopped waiting for.
    pub fn give_up(
        &mut self,
        host: usize,
        name: &str,
        call: &Call,
        retry: &Retry,
        why: &str,
    ) -> CallOutcome {
        let mut o = match call {
            Call::Connect { .. } => CallOutcome::err(Errno::ETIMEDOUT),
            Call::Send { .. } => CallOutcome::ok(retry.sent as i64),
            _ => CallOutcome::err(Errno::EAGAIN),
        };
        o.note = Some(format!("{} would block: {why}", call.verb()));
        if let (Call::Connect { .. }, Some(&id)) = (call, self.names[host].get(name)) {
            self.socks[id].connecting = false;
        }
        o
    }

    fn unsupported(&mut self, what: &str) -> CallOutcome {
        let o = CallOutcome::unsupported("smoltcp", what);
        if let Some(n) = &o.note {
            self.note(n.clone());
        }
        o
    }

    fn listen(&mut self, id: usize, port: u16, backlog: u32) -> CallOutcome {
        match self.socks[id].kind {
            Kind::Fresh => {}
            Kind::Listener { open: true, .. } => return CallOutcome::ok(0),
            // A listener stopped by connect(AF_UNSPEC) still holds its
            // explicitly bound port (tcp_disconnect keeps it under
            // SOCK_BINDPORT_LOCK), so the script's bind-then-listen fails
            // in __inet_bind, as it does for a connection.
            Kind::Listener { open: false, .. } | Kind::Conn { .. } => {
                return CallOutcome::err(Errno::EINVAL);
            }
        }
        let host = self.socks[id].host;
        let in_use = self.socks.iter().any(|s| {
            s.host == host
                && matches!(s.kind, Kind::Listener { port: p, open: true, .. } if p == port)
        });
        if in_use {
            return CallOutcome::err(Errno::EADDRINUSE);
        }
        let n = backlog.saturating_add(1).min(MAX_POOL);
        let opts = self.socks[id].opts;
        let mut pool = Vec::new();
        for _ in 0..n {
            pool.push(self.new_pooled(id, host, port, opts));
        }
        self.socks[id].kind = Kind::Listener {
            port,
            pool,
            open: true,
        };
        self.record_state(id, TcpState::Close, TcpState::Listen);
        let mut o = CallOutcome::ok(0);
        if backlog.saturating_add(1) > MAX_POOL {
            o.note = Some(format!(
                "backlog emulated by {MAX_POOL} listening smoltcp sockets"
            ));
        }
        o
    }

    fn new_pooled(&mut self, parent: usize, host: usize, port: u16, opts: Opts) -> usize {
        let h = self.new_tcp(host, &opts);
        self.stack(host)
            .tcp_mut(h)
            .listen(port)
            .expect("a fresh socket listens on a non-zero port");
        let mut s = Sock::new(host, None, Kind::Conn { handle: h }, opts);
        s.parent = Some(parent);
        s.last = None;
        let id = self.add_sock(s);
        // Seen as LISTEN from the start (not recorded: see `observe`).
        self.socks[id].last = Some(State::Listen);
        id
    }

    fn connect(&mut self, id: usize, port: u16, ctx: &CallCtx) -> Attempt {
        if self.socks[id].connecting {
            let st = self.smol_state(id).unwrap_or(State::Closed);
            return match st {
                State::SynSent => Attempt::Block,
                State::Closed => {
                    self.socks[id].connecting = false;
                    let e = self.socks[id].err.take().unwrap_or(Errno::ECONNREFUSED);
                    Attempt::Done(CallOutcome::err(e))
                }
                _ => {
                    self.socks[id].connecting = false;
                    Attempt::Done(CallOutcome::ok(0))
                }
            };
        }
        match self.socks[id].kind {
            Kind::Fresh => {}
            Kind::Listener { .. } => return Attempt::Done(CallOutcome::err(Errno::EINVAL)),
            Kind::Conn { .. } => return Attempt::Done(CallOutcome::err(Errno::EISCONN)),
        }
        let (Some(peer), Some(lport)) = (ctx.peer_addr, ctx.local_port) else {
            return Attempt::Done(CallOutcome::err(Errno::ENETUNREACH));
        };
        let host = self.socks[id].host;
        let opts = self.socks[id].opts;
        let h = self.new_tcp(host, &opts);
        self.socks[id].kind = Kind::Conn { handle: h };
        let st = self.stack(host);
        let (iface, sockets) = (&mut st.iface, &mut st.sockets);
        let r = sockets.get_mut::<tcp::Socket>(h).connect(
            iface.context(),
            (IpAddress::Ipv4(peer), port),
            lport,
        );
        if r.is_err() {
            return Attempt::Done(CallOutcome::err(Errno::EADDRNOTAVAIL));
        }
        self.socks[id].connecting = true;
        self.observe(host, None);
        Attempt::Block
    }

    /// The pooled connection accept() would return: completed handshakes in
    /// the order they completed (Linux's accept queue is FIFO).
    fn acceptable(&self, lid: usize) -> Option<usize> {
        let Kind::Listener { pool, .. } = &self.socks[lid].kind else {
            return None;
        };
        pool.iter()
            .copied()
            .filter(|&c| self.socks[c].established_seq.is_some())
            .min_by_key(|&c| self.socks[c].established_seq)
    }

    fn accept(&mut self, lid: usize, ctx: &CallCtx) -> Attempt {
        let (port, open) = match &self.socks[lid].kind {
            Kind::Listener { port, open, .. } => (*port, *open),
            _ => return Attempt::Done(CallOutcome::err(Errno::EINVAL)),
        };
        if !open {
            return Attempt::Done(CallOutcome::err(Errno::EINVAL));
        }
        let Some(c) = self.acceptable(lid) else {
            return Attempt::Block;
        };
        let host = self.socks[lid].host;
        let opts = self.socks[lid].opts;
        // Take it out of the pool and put a fresh listening socket in, so
        // the pool keeps its size (the backlog).
        let fresh = self.new_pooled(lid, host, port, opts);
        if let Kind::Listener { pool, .. } = &mut self.socks[lid].kind {
            pool.retain(|&x| x != c);
            pool.push(fresh);
        }
        let name = ctx.new_name.clone().unwrap_or_else(|| "conn".into());
        self.socks[c].parent = None;
        self.socks[c].name = Some(name.clone());
        self.names[host].insert(name, c);
        Attempt::Done(CallOutcome::ok(0))
    }

    fn send(&mut self, id: usize, data: &Data, flags: &MsgFlags, retry: &mut Retry) -> Attempt {
        if flags.oob {
            return Attempt::Done(
                self.unsupported("send(MSG_OOB): smoltcp never sends urgent data"),
            );
        }
        let epipe = |nosignal: bool| {
            let mut o = CallOutcome::err(Errno::EPIPE);
            if !nosignal {
                o.note = Some("Linux also raises SIGPIPE (no MSG_NOSIGNAL)".into());
            }
            o
        };
        if !matches!(self.socks[id].kind, Kind::Conn { .. }) {
            // tcp_sendmsg → sk_stream_wait_connect: not connecting → -EPIPE.
            return Attempt::Done(epipe(flags.nosignal));
        }
        if let Some(e) = self.socks[id].err.take() {
            return Attempt::Done(CallOutcome::err(e));
        }
        let st = self.smol_state(id).unwrap_or(State::Closed);
        match st {
            State::SynSent | State::SynReceived => {
                return if flags.dontwait {
                    Attempt::Done(CallOutcome::err(Errno::EAGAIN))
                } else {
                    Attempt::Block
                };
            }
            State::Established | State::CloseWait if !self.socks[id].shut_wr => {}
            _ => return Attempt::Done(epipe(flags.nosignal)),
        }
        let from = retry.sent.min(data.len());
        let n = self.tcp_mut(id).map_or(0, |t| enqueue(t, data, from));
        retry.sent += n;
        if retry.sent == data.len() {
            return Attempt::Done(CallOutcome::ok(retry.sent as i64));
        }
        if flags.dontwait {
            return Attempt::Done(if retry.sent == 0 {
                CallOutcome::err(Errno::EAGAIN)
            } else {
                CallOutcome::ok(retry.sent as i64)
            });
        }
        Attempt::Block
    }

    fn recv(&mut self, id: usize, len: usize, flags: &MsgFlags) -> Attempt {
        if flags.oob {
            return Attempt::Done(
                self.unsupported("recv(MSG_OOB): smoltcp ignores the urgent pointer"),
            );
        }
        if !matches!(self.socks[id].kind, Kind::Conn { .. }) {
            return Attempt::Done(CallOutcome::err(Errno::ENOTCONN));
        }
        let queued = self.tcp(id).map(|t| t.recv_queue()).unwrap_or(0);
        if queued > 0 && len > 0 {
            let want = len.min(queued);
            let fresh = || std::iter::repeat_n(0u8, want.max(1 << 16)).collect();
            let mut data: std::sync::Arc<[u8]> = match self.recv_buf.take() {
                Some(mut b) if b.len() >= want => {
                    if std::sync::Arc::get_mut(&mut b).is_some() {
                        b
                    } else {
                        fresh()
                    }
                }
                _ => fresh(),
            };
            let buf = &mut std::sync::Arc::get_mut(&mut data).expect("held only here")[..want];
            let t = self.tcp_mut(id).expect("a connection has a socket");
            // The receive ring may wrap: read until the request or the
            // queue is exhausted, as one recv() on Linux copies across skbs.
            let n = if flags.peek {
                t.peek_slice(buf).unwrap_or(0)
            } else {
                let mut got = 0;
                while got < buf.len() {
                    match t.recv_slice(&mut buf[got..]) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => got += k,
                    }
                }
                got
            };
            let mut o = CallOutcome::ok(n as i64);
            o.data = Some(Box::new(
                crate::payload::Payload::shared(data.clone()).slice(0, n as u32),
            ));
            self.recv_buf = Some(data);
            return Attempt::Done(o);
        }
        if queued > 0 {
            return Attempt::Done(CallOutcome::ok(0));
        }
        // tcp_recvmsg with nothing queued: SOCK_DONE (FIN) → 0 first, then
        // sk_err, then RCV_SHUTDOWN → 0, then TCP_CLOSE → ENOTCONN.
        let s = &mut self.socks[id];
        if s.fin_rcvd {
            return Attempt::Done(CallOutcome::ok(0));
        }
        if let Some(e) = s.err.take() {
            return Attempt::Done(CallOutcome::err(e));
        }
        if s.reset {
            return Attempt::Done(CallOutcome::ok(0));
        }
        match self.smol_state(id).unwrap_or(State::Closed) {
            State::Closed | State::Listen => Attempt::Done(CallOutcome::err(Errno::ENOTCONN)),
            _ if flags.dontwait => Attempt::Done(CallOutcome::err(Errno::EAGAIN)),
            _ => Attempt::Block,
        }
    }

    fn shutdown(&mut self, id: usize, how: How) -> CallOutcome {
        if !matches!(self.socks[id].kind, Kind::Conn { .. }) {
            return CallOutcome::err(Errno::ENOTCONN);
        }
        match how {
            How::Rd => self.unsupported("shutdown(SHUT_RD): smoltcp cannot close the receive half"),
            How::Wr | How::RdWr => {
                self.half_close(id, "shutdown(SHUT_WR) → Socket::close() → FIN");
                if how == How::RdWr {
                    let mut o = CallOutcome::ok(0);
                    let n = "unsupported on smoltcp: the SHUT_RD half of shutdown(SHUT_RDWR) (only the SHUT_WR half was done)".to_string();
                    self.note(n.clone());
                    o.note = Some(n);
                    o
                } else {
                    CallOutcome::ok(0)
                }
            }
        }
    }

    /// `Socket::close()`: FIN after the queued data, whatever is unread.
    fn half_close(&mut self, id: usize, why: &str) {
        let host = self.socks[id].host;
        let unread = self.tcp(id).map(|t| t.recv_queue()).unwrap_or(0);
        let st = self.smol_state(id);
        self.socks[id].shut_wr = true;
        if matches!(
            st,
            Some(State::Established | State::SynReceived | State::CloseWait)
        ) {
            self.socks[id].fin_why = Some(if unread > 0 {
                format!(
                    "{why} with {unread} unread byte{} (smoltcp has no RFC 2525 rule)",
                    if unread == 1 { "" } else { "s" }
                )
            } else {
                why.to_string()
            });
        }
        if let Some(t) = self.tcp_mut(id) {
            t.close();
        }
        self.observe(host, None);
    }

    fn abort(&mut self, id: usize, why: String) {
        let host = self.socks[id].host;
        let active = self.tcp(id).is_some_and(|t| t.is_active());
        if active {
            self.socks[id].rst_why = Some(why);
        }
        if let Some(t) = self.tcp_mut(id) {
            t.abort();
        }
        self.observe(host, None);
    }

    /// inet_csk_listen_stop: the listener leaves LISTEN; its idle
    /// listening sockets stop, and every connection nobody accepted is
    /// dropped with an RST. Both close() and connect(AF_UNSPEC)
    /// (tcp_disconnect on a listener) come here.
    fn stop_listening(&mut self, id: usize, what: &str) {
        let host = self.socks[id].host;
        let pool = match &mut self.socks[id].kind {
            Kind::Listener { pool, open, .. } if *open => {
                *open = false;
                pool.clone()
            }
            _ => return,
        };
        self.record_state(id, TcpState::Listen, TcpState::Close);
        let mut k = 0;
        for c in pool {
            match self.smol_state(c) {
                // An idle listening socket just stops listening.
                Some(State::Listen) => {
                    if let Some(t) = self.tcp_mut(c) {
                        t.close();
                    }
                    self.socks[c].last = Some(State::Closed);
                }
                // A connection nobody accepted: the program never had it,
                // so it is dropped with an RST, as Linux's
                // inet_csk_listen_stop does.
                Some(_) => {
                    k += 1;
                    let label = format!("{}[unaccepted {k}]", self.display_name(id));
                    self.socks[c].pending_label = Some(label);
                    self.abort(
                        c,
                        format!("{what} of the listener: un-accepted connection abort()ed (backlog emulation)"),
                    );
                }
                None => {}
            }
        }
        self.observe(host, None);
    }

    fn close(&mut self, id: usize, what: &str) -> CallOutcome {
        self.socks[id].prog_closed = true;
        match &self.socks[id].kind {
            Kind::Fresh => {}
            Kind::Listener { .. } => self.stop_listening(id, what),
            Kind::Conn { .. } => {
                if self.socks[id].opts.linger0 {
                    self.abort(
                        id,
                        format!("{what} with SO_LINGER {{1, 0}} → Socket::abort() → RST"),
                    );
                } else {
                    self.half_close(id, &format!("{what} → Socket::close() → FIN"));
                }
            }
        }
        CallOutcome::ok(0)
    }

    /// A dying process: every descriptor it still has closes as by close()
    /// (SO_LINGER {1, 0} still aborts); nothing lingers.
    fn exit(&mut self, host: usize) -> CallOutcome {
        let ids: Vec<usize> = self.names[host].values().copied().collect();
        let mut ids: Vec<usize> = ids
            .into_iter()
            .filter(|&i| !self.socks[i].prog_closed)
            .collect();
        ids.sort();
        for id in ids {
            self.close(id, "exit()");
        }
        CallOutcome::ok(0)
    }

    fn disconnect(&mut self, id: usize) -> CallOutcome {
        match self.socks[id].kind {
            Kind::Conn { .. } => {}
            // tcp_disconnect on a listener: inet_csk_listen_stop, then CLOSE
            // (the descriptor stays; listen() may be called again).
            Kind::Listener { .. } => {
                self.stop_listening(id, "connect(AF_UNSPEC)");
                return CallOutcome::ok(0);
            }
            Kind::Fresh => return CallOutcome::ok(0),
        }
        // tcp_disconnect sends RST from a synchronized state and leaves the
        // socket CLOSE: abort() does both.
        self.abort(id, "connect(AF_UNSPEC) → Socket::abort() → RST".into());
        CallOutcome::ok(0)
    }

    fn setsockopt(&mut self, id: usize, o: &SockOpt) -> CallOutcome {
        let created = matches!(
            self.socks[id].kind,
            Kind::Conn { .. } | Kind::Listener { .. }
        );
        match *o {
            SockOpt::Linger { on: false, .. } => self.socks[id].opts.linger0 = false,
            SockOpt::Linger { on: true, secs: 0 } => self.socks[id].opts.linger0 = true,
            SockOpt::Linger { on: true, secs } => {
                return self.unsupported(&format!(
                    "SO_LINGER {{1, {secs}}}: smoltcp has no lingering close"
                ));
            }
            SockOpt::RcvBuf(n) | SockOpt::SndBuf(n) => {
                if created || n < 0 {
                    let which = if matches!(o, SockOpt::RcvBuf(_)) {
                        "SO_RCVBUF"
                    } else {
                        "SO_SNDBUF"
                    };
                    return self.unsupported(&format!(
                        "{which} after listen/connect: smoltcp sockets keep the buffers they were made with"
                    ));
                }
                // smoltcp panics on a receive buffer over 1 GiB, and both
                // buffers are allocated whole when the socket is made
                // (16 of them for a listener): a size past the engine's
                // bound is refused, as an unsupported option, not a panic.
                if n as usize > MAX_SMOLTCP_BUFFER {
                    let which = if matches!(o, SockOpt::RcvBuf(_)) {
                        "SO_RCVBUF"
                    } else {
                        "SO_SNDBUF"
                    };
                    return self.unsupported(&format!(
                        "{which} {n}: the smoltcp engine allocates its buffers up front and takes at most {MAX_SMOLTCP_BUFFER} bytes (smoltcp itself refuses a receive buffer over 1 GiB)"
                    ));
                }
                // The size as given (Linux doubles it for overhead): the
                // smoltcp buffer holds exactly n bytes of payload.
                if let SockOpt::RcvBuf(_) = o {
                    self.socks[id].opts.rcvbuf = Some(n as usize);
                } else {
                    self.socks[id].opts.sndbuf = Some(n as usize);
                }
            }
            SockOpt::NoDelay(on) => {
                self.socks[id].opts.nodelay = on;
                if let Some(t) = self.tcp_mut(id) {
                    t.set_nagle_enabled(!on);
                }
            }
            SockOpt::OobInline(_) => {
                return self.unsupported("SO_OOBINLINE: smoltcp has no urgent data");
            }
            SockOpt::Repair(_) => return self.unsupported("TCP_REPAIR"),
            SockOpt::Linger2(_) => {
                return self.unsupported("TCP_LINGER2: smoltcp has no FIN_WAIT2 timeout");
            }
            // smoltcp's keep_alive is one interval (first probe and every
            // next one) and its timeout one deadline for any unanswered
            // segment: neither has Linux's idle/interval/count split nor
            // TCP_USER_TIMEOUT's retransmission clock, so a mapping would
            // send other segments at other times than the script asks for.
            SockOpt::KeepAlive(_)
            | SockOpt::KeepIdle(_)
            | SockOpt::KeepIntvl(_)
            | SockOpt::KeepCnt(_) => {
                return self.unsupported(&format!(
                    "{}: smoltcp's keep-alive is one interval, without Linux's idle time, interval and probe count",
                    o.display()
                ));
            }
            SockOpt::UserTimeout(_) => {
                return self.unsupported(
                    "TCP_USER_TIMEOUT: smoltcp's timeout is one deadline for any unanswered segment, not Linux's retransmission clock",
                );
            }
            SockOpt::SynCnt(_) => {
                return self.unsupported("TCP_SYNCNT: smoltcp has no SYN retry limit");
            }
            SockOpt::Inq(_) => {
                return self.unsupported("TCP_INQ: smoltcp's recv has no control messages");
            }
        }
        CallOutcome::ok(0)
    }

    /// epoll events as `tcp_poll` (net/ipv4/tcp.c, Linux 6.18) computes them
    /// from the Linux view of the socket.
    pub fn poll_mask(&self, id: usize) -> u32 {
        use epoll::*;
        let s = &self.socks[id];
        match &s.kind {
            Kind::Fresh => return EPOLLOUT | EPOLLHUP,
            Kind::Listener { open, .. } => {
                // inet_csk_listen_poll: readable when the accept queue is not
                // empty.
                return if *open && self.acceptable(id).is_some() {
                    EPOLLIN
                } else {
                    0
                };
            }
            Kind::Conn { .. } => {}
        }
        let st = self.smol_state(id).unwrap_or(State::Closed);
        let rcv_shut = s.fin_rcvd || s.reset;
        let send_shut = s.shut_wr || s.reset;
        let mut m = 0;
        if (rcv_shut && send_shut) || st == State::Closed {
            m |= EPOLLHUP;
        }
        if rcv_shut {
            m |= EPOLLIN | EPOLLRDHUP;
        }
        if !matches!(st, State::SynSent | State::SynReceived) {
            let t = self.tcp(id).expect("a connection has a socket");
            if t.recv_queue() > 0 {
                m |= EPOLLIN;
            }
            // Writable when not shut down and there is room (Linux wants a
            // third of the buffer free; smoltcp's can_send wants one byte);
            // after SEND_SHUTDOWN Linux reports EPOLLOUT so that the writer
            // meets the error.
            if !send_shut {
                if t.send_capacity() - t.send_queue() > 0 {
                    m |= EPOLLOUT;
                }
            } else {
                m |= EPOLLOUT;
            }
        }
        if s.err.is_some() {
            m |= EPOLLERR;
        }
        m
    }

    fn poll(&mut self, id: usize, interest: u32) -> CallOutcome {
        let m = self.poll_mask(id);
        // EPOLLERR and EPOLLHUP are reported whatever the interest.
        let interest = if interest == 0 { epoll::ALL } else { interest };
        CallOutcome::ok((m & (interest | epoll::EPOLLERR | epoll::EPOLLHUP)) as i64)
    }

    // ---- the end -------------------------------------------------------

    /// Connections not closed when the run ends, with what they wait for.
    /// Listening sockets are not connections and are not listed.
    pub fn open_conns(&self, segs: &[Segment]) -> Vec<OpenConn> {
        let mut v = Vec::new();
        for id in 0..self.socks.len() {
            let Some(t) = self.tcp(id) else { continue };
            let st = t.state();
            if matches!(st, State::Closed | State::Listen) {
                continue;
            }
            let s = &self.socks[id];
            let Some((la, lp, ra, rp)) = s.tuple else {
                continue;
            };
            let mut detail = Vec::new();
            let probes: Vec<&Segment> = segs
                .iter()
                .filter(|g| {
                    g.src_addr == la
                        && g.sport == lp
                        && g.dst_addr == ra
                        && g.dport == rp
                        && g.why
                            .as_deref()
                            .is_some_and(|w| w.starts_with("zero-window probe"))
                })
                .collect();
            if !probes.is_empty() {
                let times: Vec<String> = probes
                    .iter()
                    .map(|g| crate::trace::fmt_time(g.time_us))
                    .collect();
                detail.push(format!(
                    "probing a zero window ({} unsent bytes): {} probes at {}",
                    t.send_queue(),
                    probes.len(),
                    times.join(", ")
                ));
            } else if t.send_queue() > 0 {
                detail.push(format!("{} bytes not yet acknowledged", t.send_queue()));
            }
            if t.recv_queue() > 0 {
                detail.push(format!("{} bytes unread", t.recv_queue()));
            }
            if s.prog_closed {
                detail.push("closed by the program".into());
            }
            match st {
                State::FinWait2 => detail.push("smoltcp has no FIN_WAIT2 timeout".into()),
                State::TimeWait => detail.push("TIME_WAIT timer (10 s on smoltcp)".into()),
                _ => {}
            }
            v.push(OpenConn {
                host: self.hosts[s.host].name.clone(),
                sock: self.display_name(id),
                local_port: lp,
                remote: format!("{}.{}", self.host_name(ra), rp),
                state: linux_state(st),
                detail: detail.join("; "),
            });
        }
        v
    }

    /// Every socket whose state ever changed, with its name in the trace.
    pub fn state_changes(&self) -> Vec<crate::engine::StateChange> {
        self.states
            .iter()
            .map(|r| crate::engine::StateChange {
                time_us: r.time_us,
                host: self.hosts[self.socks[r.sock].host].name.clone(),
                sock: self.display_name(r.sock),
                from: r.from,
                to: r.to,
            })
            .collect()
    }
}
