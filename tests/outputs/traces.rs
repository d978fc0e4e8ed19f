//! Builds realistic traces by hand, the way the model will produce them, so
//! the outputs (pcap, ladder, explain) can be tested before and
//! independently of any engine.
//!
//! Two hosts: host 0 `client` 10.0.0.1:40000, host 1 `server`
//! 10.0.0.2:9999, Linux-like ISNs, options and windows (wscale 7).

use finrst::engine::{HostSpec, StateChange};
use finrst::segment::{Flags, Segment, TcpOpt};
use finrst::trace::{CallRecord, Trace};
pub use finrst::vocab::{Counter, EngineKind, Errno, Policy, TcpState};
use std::net::Ipv4Addr;

pub const C: usize = 0;
pub const S: usize = 1;

pub struct Builder {
    t: Trace,
    now: u64,
    names: [&'static str; 2],
    addrs: [Ipv4Addr; 2],
    ports: [u16; 2],
    /// Next sequence number each host sends.
    snd_nxt: [u32; 2],
    /// Next sequence number each host expects (what it ACKs).
    rcv_nxt: [u32; 2],
    /// The window each host advertises (already scaled down, as on the wire).
    win: [u16; 2],
    ts: u32,
}

impl Builder {
    pub fn new(scenario: &str) -> Builder {
        let hosts = HostSpec::for_hosts(&["client".to_string(), "server".to_string()]);
        Builder {
            t: Trace {
                scenario: scenario.into(),
                title: format!("constructed trace {scenario}"),
                engine: EngineKind::Model,
                policy: Policy::Linux,
                hosts,
                ..Default::default()
            },
            now: 0,
            names: ["client", "server"],
            addrs: [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)],
            ports: [40000, 9999],
            snd_nxt: [2_786_125_487, 1_338_547_838],
            rcv_nxt: [1_338_547_838, 2_786_125_487],
            win: [64, 64],
            ts: 34_912_846,
        }
    }

    /// Moves the clock forward.
    pub fn after(&mut self, us: u64) -> &mut Self {
        self.now += us;
        self.ts += (us / 1000) as u32;
        self
    }

    pub fn set_win(&mut self, host: usize, win: u16) -> &mut Self {
        self.win[host] = win;
        self
    }

    /// Sends one segment from `from` with the builder's bookkeeping and
    /// returns its index.
    pub fn seg(&mut self, from: usize, flags: Flags, len: u32, why: Option<&str>) -> usize {
        let to = 1 - from;
        let options = if flags.syn() {
            vec![
                TcpOpt::Mss(65495),
                TcpOpt::SackPerm,
                TcpOpt::Timestamp {
                    val: self.ts,
                    ecr: if flags.ack() { self.ts } else { 0 },
                },
                TcpOpt::Nop,
                TcpOpt::WScale(7),
            ]
        } else if flags.rst() {
            vec![]
        } else {
            vec![
                TcpOpt::Nop,
                TcpOpt::Nop,
                TcpOpt::Timestamp {
                    val: self.ts,
                    ecr: self.ts,
                },
            ]
        };
        let s = Segment {
            time_us: self.now,
            src: self.names[from].into(),
            dst: self.names[to].into(),
            src_addr: self.addrs[from],
            dst_addr: self.addrs[to],
            sport: self.ports[from],
            dport: self.ports[to],
            seq: self.snd_nxt[from],
            ack: if flags.ack() { self.rcv_nxt[from] } else { 0 },
            flags,
            win: if flags.syn() { 65495 } else { self.win[from] },
            urg_ptr: if flags.urg() { 1 } else { 0 },
            options,
            len,
            payload: Some(finrst::segment::Payload::from_vec(
                (0..len).map(|i| b'a' + (i % 26) as u8).collect(),
            )),
            why: why.map(|w| w.to_string().into()),
            rst_reason: None,
            lost: false,
        };
        let n = s.seq_len();
        self.snd_nxt[from] = self.snd_nxt[from].wrapping_add(n);
        self.rcv_nxt[to] = self.rcv_nxt[to].wrapping_add(n);
        self.t.segments.push(s);
        self.after(20);
        self.t.segments.len() - 1
    }

    /// Marks the last segment lost: the receiver never saw it, so its
    /// sequence space is not acknowledged, and the sender will resend it.
    pub fn lose_last(&mut self) -> &mut Self {
        let s = self.t.segments.last_mut().expect("a segment to lose");
        s.lost = true;
        let n = s.seq_len();
        let to = if &*s.src == "client" { S } else { C };
        self.rcv_nxt[to] = self.rcv_nxt[to].wrapping_sub(n);
        self
    }

    /// Resends `len` bytes from `from` starting at its oldest unacked byte.
    pub fn retransmit(&mut self, from: usize, len: u32, why: &str) -> usize {
        self.snd_nxt[from] = self.snd_nxt[from].wrapping_sub(len);
        self.seg(from, Flags::PSH | Flags::ACK, len, Some(why))
    }

    pub fn state(&mut self, host: usize, from: TcpState, to: TcpState) -> &mut Self {
        self.t.states.push(StateChange {
            time_us: self.now,
            host: self.names[host].into(),
            sock: if host == C { "conn" } else { "peer" }.into(),
            from,
            to,
        });
        self
    }

    pub fn call(&mut self, host: usize, call: &str, ret: i64, errno: Option<Errno>) -> &mut Self {
        self.t.calls.push(CallRecord {
            time_us: self.now,
            host: self.names[host].into(),
            sock: if host == C { "conn" } else { "peer" }.into(),
            call: call.into(),
            ret,
            errno,
            line: self.t.calls.len() as u32 + 1,
            note: None,
            events: None,
            info: None,
        });
        self
    }

    pub fn counter(&mut self, host: usize, name: Counter) -> &mut Self {
        *self
            .t
            .counters
            .entry(self.names[host].into())
            .or_default()
            .entry(name)
            .or_default() += 1;
        self
    }

    /// SYN, SYN-ACK, ACK with the calls and states around them.
    pub fn handshake(&mut self) -> &mut Self {
        self.call(S, "listen(9999, backlog 128)", 0, None);
        self.state(S, TcpState::Close, TcpState::Listen);
        self.call(C, "connect(server:9999)", 0, None);
        self.state(C, TcpState::Close, TcpState::SynSent);
        self.seg(C, Flags::SYN, 0, None);
        self.state(S, TcpState::Listen, TcpState::SynRecv);
        self.seg(S, Flags::SYN | Flags::ACK, 0, None);
        self.state(C, TcpState::SynSent, TcpState::Established);
        self.seg(C, Flags::ACK, 0, None);
        self.state(S, TcpState::SynRecv, TcpState::Established);
        self.call(S, "accept()", 4, None);
        self
    }

    /// Data from `from` and the receiver's immediate ACK (quick-ack mode).
    pub fn data(&mut self, from: usize, len: u32) -> &mut Self {
        self.seg(from, Flags::PSH | Flags::ACK, len, None);
        self.seg(1 - from, Flags::ACK, 0, None);
        self
    }

    pub fn build(&mut self) -> Trace {
        let mut t = self.t.clone();
        t.end_us = self.now;
        t
    }
}

/// seed 000: the server writes 1 byte, the client closes without reading
/// it: `R.` from the client.
pub fn unread_close() -> Trace {
    let mut b = Builder::new("seed000-epollout-unread");
    b.handshake();
    b.after(1_400);
    b.call(S, "send(1)", 1, None);
    b.data(S, 1);
    b.after(1_000);
    b.call(C, "close()", 0, None);
    b.seg(
        C,
        Flags::RST | Flags::ACK,
        0,
        Some("close() with 1 unread byte → RST (TCPAbortOnClose)"),
    );
    b.state(C, TcpState::Established, TcpState::Close);
    b.counter(C, Counter::TCPAbortOnClose);
    b.after(1_000);
    b.call(S, "recv(10)", -1, Some(Errno::ECONNRESET));
    b.state(S, TcpState::Established, TcpState::Close);
    b.build()
}

/// seed 004 drained: request, 485-byte response read to EOF, FIN from the
/// client, FIN from the server, 60 s of TIME_WAIT.
pub fn clean_close() -> Trace {
    let mut b = Builder::new("seed004-http-drained");
    b.handshake();
    b.after(3_000);
    b.call(C, "send(18)", 18, None);
    b.data(C, 18);
    b.call(S, "recv(100)", 18, None);
    b.call(S, "send(485)", 485, None);
    b.data(S, 485);
    b.call(C, "recv(1000)", 485, None);
    b.after(9_000);
    b.call(C, "close()", 0, None);
    b.seg(C, Flags::FIN | Flags::ACK, 0, Some("close() → FIN"));
    b.state(C, TcpState::Established, TcpState::FinWait1);
    b.seg(S, Flags::ACK, 0, None);
    b.state(C, TcpState::FinWait1, TcpState::FinWait2);
    b.state(S, TcpState::Established, TcpState::CloseWait);
    b.call(S, "recv(100)", 0, None);
    b.call(S, "close()", 0, None);
    b.seg(S, Flags::FIN | Flags::ACK, 0, Some("close() → FIN"));
    b.state(S, TcpState::CloseWait, TcpState::LastAck);
    b.seg(C, Flags::ACK, 0, None);
    b.state(C, TcpState::FinWait2, TcpState::TimeWait);
    b.state(S, TcpState::LastAck, TcpState::Close);
    b.counter(C, Counter::TW);
    b.after(60_000_000);
    b.state(C, TcpState::TimeWait, TcpState::Close);
    b.build()
}

/// RFC 2525 2.17: a bulk sender fills the receiver's window, the receiver
/// stops reading and advertises a zero window; the sender probes with
/// backoff; the receiver dies with unread data: `R.`.
pub fn zero_window() -> Trace {
    let mut b = Builder::new("rfc2525-zero-window");
    b.handshake();
    b.call(C, "send(65536)", 65536, None);
    for _ in 0..3 {
        b.seg(C, Flags::PSH | Flags::ACK, 16384, None);
    }
    b.set_win(S, 0);
    b.seg(S, Flags::ACK, 0, Some("receive buffer full → zero window"));
    let mut rto = 200_000;
    for i in 1..=5 {
        b.after(rto);
        // A zero-window probe re-sends no new data: seq = snd_una - 1.
        b.snd_nxt[C] = b.snd_nxt[C].wrapping_sub(1);
        b.rcv_nxt[S] = b.rcv_nxt[S].wrapping_sub(1);
        b.seg(C, Flags::ACK, 0, Some(&format!("zero-window probe #{i}")));
        b.seg(S, Flags::ACK, 0, None);
        rto *= 2;
    }
    b.after(2_000_000);
    b.call(S, "exit()", 0, None);
    b.seg(
        S,
        Flags::RST | Flags::ACK,
        0,
        Some("close() with 49152 unread bytes → RST (TCPAbortOnClose)"),
    );
    b.state(S, TcpState::Established, TcpState::Close);
    b.counter(S, Counter::TCPAbortOnClose);
    b.state(C, TcpState::Established, TcpState::Close);
    b.build()
}

/// A dropped data segment, retransmitted after the RTO, then SO_LINGER
/// {1, 0}: `R.` with nothing unread.
pub fn lost_then_linger_zero() -> Trace {
    let mut b = Builder::new("lost-then-linger-zero");
    b.handshake();
    b.call(C, "setsockopt(SO_LINGER, {1, 0})", 0, None);
    b.call(C, "send(100)", 100, None);
    b.seg(C, Flags::PSH | Flags::ACK, 100, None);
    b.lose_last();
    b.after(204_000);
    b.retransmit(C, 100, "retransmission #1 (RTO 204 ms)");
    b.seg(S, Flags::ACK, 0, None);
    b.after(5_000);
    b.call(C, "close()", 0, None);
    b.seg(
        C,
        Flags::RST | Flags::ACK,
        0,
        Some("close() with SO_LINGER {1, 0} → tcp_disconnect → RST (TCPAbortOnData)"),
    );
    b.state(C, TcpState::Established, TcpState::Close);
    b.counter(C, Counter::TCPAbortOnData);
    b.call(S, "recv(100)", 100, None);
    b.call(S, "recv(100)", -1, Some(Errno::ECONNRESET));
    b.build()
}

/// The server shuts its sending half (FIN), the client keeps writing; the
/// server, now closed, answers the data with a bare `R`.
pub fn data_after_fin() -> Trace {
    let mut b = Builder::new("data-after-fin");
    b.handshake();
    b.call(S, "close()", 0, None);
    b.seg(S, Flags::FIN | Flags::ACK, 0, Some("close() → FIN"));
    b.state(S, TcpState::Established, TcpState::FinWait1);
    b.seg(C, Flags::ACK, 0, None);
    b.state(S, TcpState::FinWait1, TcpState::FinWait2);
    b.state(C, TcpState::Established, TcpState::CloseWait);
    b.call(C, "send(5)", 5, None);
    b.seg(C, Flags::PSH | Flags::ACK, 5, None);
    // tcp_v4_send_reset answers a segment carrying an ACK with seq = that
    // ack (here the server's snd_nxt, which `seg` uses) and no ACK flag.
    b.seg(
        S,
        Flags::RST,
        0,
        Some("data for a closed socket → RST (TCPAbortOnData)"),
    );
    b.state(S, TcpState::FinWait2, TcpState::Close);
    b.state(C, TcpState::CloseWait, TcpState::Close);
    b.build()
}

pub fn all() -> Vec<(&'static str, Trace)> {
    vec![
        ("unread_close", unread_close()),
        ("clean_close", clean_close()),
        ("zero_window", zero_window()),
        ("lost_then_linger_zero", lost_then_linger_zero()),
        ("data_after_fin", data_after_fin()),
    ]
}
