//! The linux engine as a `finrst drill` backend: the local socket is a real
//! kernel socket in a private namespace; the remote host is played by the
//! script. The relay ([`super::relay`]) captures what the kernel sends to
//! the remote and writes nothing on; the script's segments are encoded with
//! the run's real addresses and written into the local host's TUN device
//! ([`super::relay::Relay::inject`]), so the kernel receives them exactly as
//! from a wire. RST reasons come from `tcp:tcp_send_reset` as in every
//! linux run.

use super::LinuxEngine;
use crate::drill::{Backend, hosts};
use crate::engine::{CallCtx, CallOutcome, Engine, RunOptions};
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

pub struct LinuxBackend {
    eng: LinuxEngine,
    pending: Option<(String, Call, CallCtx)>,
    done: Option<(CallOutcome, u64)>,
    /// Segments of `eng.segs` already looked at for outbound ones.
    seen: usize,
    out: Vec<Segment>,
}

impl LinuxBackend {
    pub fn new() -> Result<LinuxBackend, String> {
        let eng = LinuxEngine::new(&hosts(), &RunOptions::default()).map_err(|e| e.0)?;
        eng.relay.shared.lock().unwrap().raw[1] = true;
        Ok(LinuxBackend {
            eng,
            pending: None,
            done: None,
            seen: 0,
            out: Vec::new(),
        })
    }

    /// Pulls the capture and moves the local host's segments to `out`.
    fn pull(&mut self) {
        self.eng.sync();
        let local = hosts()[0].addr;
        for s in &self.eng.segs[self.seen..] {
            if s.src_addr == local {
                self.out.push(s.clone());
            }
        }
        self.seen = self.eng.segs.len();
    }

    fn finish_call(&mut self) -> CallOutcome {
        let (sock, call, ctx) = self.pending.take().expect("a call is pending");
        let t = self.eng.answer_timeout(0, &sock);
        let o = self.eng.end_call(0, &sock, &call, &ctx, t);
        self.pull();
        o
    }
}

impl Backend for LinuxBackend {
    fn name(&self) -> &'static str {
        "linux"
    }
    fn now_us(&mut self) -> u64 {
        self.eng.now_us()
    }
    fn sysctl(&mut self, key: crate::vocab::Sysctl, value: &str) -> Result<(), String> {
        self.eng.sysctl(0, key, value).map_err(|e| e.0)
    }
    fn start(&mut self, sock: &str, call: &Call, ctx: &CallCtx) -> Option<CallOutcome> {
        if let Err(o) = self.eng.start_call(0, sock, call, ctx) {
            return Some(o);
        }
        self.pending = Some((sock.to_string(), call.clone(), ctx.clone()));
        // A call either answers without having slept in the kernel (it did
        // not block, however long the host process took to be scheduled on
        // a loaded machine) or is seen asleep in it. START_GRACE bounds the
        // wait for a process that is neither (it should not happen).
        let t0 = Instant::now();
        loop {
            if self.eng.procs[0].answer_ready() {
                return Some(self.finish_call());
            }
            // Asleep twice, a millisecond apart: a task that waits a moment
            // for its socket lock (held by the softirq) is not blocked.
            if self.eng.procs[0].blocked_in_call() {
                std::thread::sleep(Duration::from_millis(1));
                if self.eng.procs[0].answer_ready() {
                    return Some(self.finish_call());
                }
                if self.eng.procs[0].blocked_in_call() {
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
            if !self.out.is_empty() {
                return;
            }
            if self.pending.is_some() && self.eng.procs[0].answer_ready() {
                let end = self.eng.now_us();
                let o = self.finish_call();
                self.done = Some((o, end));
                return;
            }
            let now = self.eng.now_us();
            if now >= until {
                return;
            }
            std::thread::sleep(Duration::from_micros(until - now).min(POLL));
        }
    }
    fn take_done(&mut self) -> Option<(CallOutcome, u64)> {
        self.done.take()
    }
    fn take_outbound(&mut self) -> Vec<Segment> {
        std::mem::take(&mut self.out)
    }
    fn inject(&mut self, seg: Segment) {
        let mut real = seg.clone();
        real.src_addr = self.eng.real[1];
        real.dst_addr = self.eng.real[0];
        self.eng.relay.inject(0, real.encode_ipv4(), seg);
        // The relay thread writes it into the TUN device, whose write runs
        // the receive path; wait for that, so that the script's next event
        // (a getsockopt after an RST) sees what the segment did.
        let t = std::time::Instant::now();
        while !self.eng.relay.drained() && t.elapsed() < Duration::from_millis(50) {
            std::thread::sleep(Duration::from_micros(20));
        }
    }
    fn trace(&mut self) -> Vec<Segment> {
        self.pull();
        self.eng.segs.clone()
    }
}
