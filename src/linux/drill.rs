//! The linux engine with a raw peer (`finrst drill`): the local socket is a real
//! kernel socket in a private namespace; the remote host is played by the
//! script. The relay ([`super::relay`]) captures what the kernel sends to
//! the remote and writes nothing on; the script's segments are encoded with
//! the run's real addresses and written into the local host's TUN device
//! ([`super::relay::Relay::inject`]), so the kernel receives them exactly as
//! from a wire. RST reasons come from `tcp:tcp_send_reset` as in every
//! linux run.

use super::LinuxEngine;
use crate::engine::{CallCtx, CallOutcome, Engine, RawPeer};
use crate::script::Call;
use crate::segment::Segment;
use std::time::{Duration, Instant};

/// How long a call may take to either return or be seen asleep before it
/// counts as blocking (the answer of a call that does not block comes back
/// in well under a millisecond on an idle machine, in tens of milliseconds
/// on a loaded one).
const START_GRACE: Duration = Duration::from_secs(2);
/// How often time is looked at while it passes.
const POLL: Duration = Duration::from_micros(300);

/// The raw-peer side of a linux run: the local program's call in
/// progress, one that has returned, and the local host's segments not yet
/// handed over.
#[derive(Default)]
pub(super) struct Raw {
    pending: Option<(String, Call, CallCtx)>,
    done: Option<(CallOutcome, u64)>,
    /// Segments of `segs` already looked at for outbound ones.
    seen: usize,
    out: Vec<Segment>,
}

impl LinuxEngine {
    /// Leaves host `peer` to the script: the relay captures what is sent
    /// to it and writes nothing on.
    pub(super) fn make_raw(&mut self, peer: usize) {
        if self.raw.is_none() {
            self.relay.shared.lock().unwrap().raw[peer] = true;
            self.raw = Some(Raw::default());
        }
    }

    fn raw(&mut self) -> &mut Raw {
        self.raw.as_mut().expect("raw_peer set the run up")
    }

    /// Pulls the capture and moves the local host's segments to `out`.
    fn pull(&mut self) {
        self.sync();
        let local = self.hosts[0].addr;
        let mut raw = self.raw.take().expect("raw_peer set the run up");
        for s in &self.segs[raw.seen..] {
            if s.src_addr == local {
                raw.out.push(s.clone());
            }
        }
        raw.seen = self.segs.len();
        self.raw = Some(raw);
    }

    fn finish_call(&mut self) -> CallOutcome {
        let (sock, call, ctx) = self.raw().pending.take().expect("a call is pending");
        let t = self.answer_timeout(0, &sock);
        let o = self.end_call(0, &sock, &call, &ctx, t);
        self.pull();
        o
    }
}

impl RawPeer for LinuxEngine {
    fn start(&mut self, sock: &str, call: &Call, ctx: &CallCtx) -> Option<CallOutcome> {
        if let Err(o) = self.start_call(0, sock, call, ctx) {
            return Some(o);
        }
        self.raw().pending = Some((sock.to_string(), call.clone(), ctx.clone()));
        // A call either answers without having slept in the kernel (it did
        // not block, however long the host process took to be scheduled on
        // a loaded machine) or is seen asleep in it. START_GRACE bounds the
        // wait for a process that is neither (it should not happen).
        let t0 = Instant::now();
        loop {
            if self.procs[0].answer_ready() {
                return Some(self.finish_call());
            }
            // Asleep twice, a millisecond apart: a task that waits a moment
            // for its socket lock (held by the softirq) is not blocked.
            if self.procs[0].blocked_in_call() {
                std::thread::sleep(Duration::from_millis(1));
                if self.procs[0].answer_ready() {
                    return Some(self.finish_call());
                }
                if self.procs[0].blocked_in_call() {
                    self.pull();
                    return None;
                }
            }
            if t0.elapsed() >= START_GRACE {
                self.pull();
                return None;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    fn advance(&mut self, until: u64) {
        loop {
            self.pull();
            if !self.raw().out.is_empty() {
                return;
            }
            if self.raw().pending.is_some() && self.procs[0].answer_ready() {
                let end = self.now_us();
                let o = self.finish_call();
                self.raw().done = Some((o, end));
                return;
            }
            let now = self.now_us();
            if now >= until {
                return;
            }
            std::thread::sleep(Duration::from_micros(until - now).min(POLL));
        }
    }
    fn take_done(&mut self) -> Option<(CallOutcome, u64)> {
        self.raw().done.take()
    }
    fn take_outbound(&mut self) -> Vec<Segment> {
        std::mem::take(&mut self.raw().out)
    }
    fn inject(&mut self, seg: Segment) {
        let mut real = seg.clone();
        real.src_addr = self.real[1];
        real.dst_addr = self.real[0];
        self.relay.inject(0, real.encode_ipv4(), seg);
        // The relay thread writes it into the TUN device, whose write runs
        // the receive path; wait for that, so that the script's next event
        // (a getsockopt after an RST) sees what the segment did.
        let t = std::time::Instant::now();
        while !self.relay.drained() && t.elapsed() < Duration::from_millis(50) {
            std::thread::sleep(Duration::from_micros(20));
        }
    }
    fn trace(&mut self) -> Vec<Segment> {
        self.pull();
        self.segs.clone()
    }
}
