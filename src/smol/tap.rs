//! `--engine smoltcp-tap`: one host on smoltcp over a TAP device, the other
//! on the real kernel in a private network namespace.
//!
//! Setup, per run: the kernel host is the linux engine's host program
//! ([`super::kernel`] over [`crate::linux::host`]): a forked child unshares
//! an unnamed network namespace, writes the same sysctl defaults, creates
//! a TAP device (Ethernet) there with the kernel host's address, and passes
//! its descriptor back over SCM_RIGHTS; smoltcp takes that descriptor
//! (`TunTapInterface::from_fd`). The child performs the kernel host's
//! socket calls, blocking ones included, while this engine moves smoltcp
//! and the network on. Every frame crosses the TAP, so the [`Capture`]
//! wrapper on smoltcp's side sees both directions; ARP frames are not TCP
//! and are left out of the trace.
//!
//! Time is real here (the kernel does not run on a virtual clock): segment
//! times are microseconds since the run began, and a blocking call waits
//! at most [`TAP_BLOCK_LIMIT_US`]. Nothing is named: the namespace and the
//! TAP die with the child and the descriptors this process holds, so a
//! run, even one killed with SIGKILL, leaves nothing behind (the linux
//! engine's "Cleanup").

use super::dev::{Capture, Dir, ipv4_of};
use super::kernel::KernelHost;
use super::world::{Attempt, Retry, Stack, Tuple, World};
use super::{host_seed, make_iface};
use crate::engine::{
    CallCtx, CallOutcome, Engine, EngineError, Finish, HostSpec, OpenConn, RunOptions,
    SETTLE_QUIET_US,
};
use crate::script::{Call, Fault};
use crate::segment::Segment;
use crate::vocab::{Counter, EngineKind, Sysctl, TcpState};
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fd::{AsFd, IntoRawFd, OwnedFd};
use smoltcp::iface::SocketSet;
use smoltcp::phy::{Medium, TunTapInterface};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a blocking call waits, in real time, before the engine gives
/// up on it.
pub const TAP_BLOCK_LIMIT_US: u64 = 10_000_000;

/// The longest sleep between two looks at the TAP and the kernel sockets.
const SLICE_US: u64 = 2_000;

pub struct TapEngine {
    // Field order is drop order: the TAP closes before the kernel host's
    // program is killed and its namespace goes.
    w: World<Capture<TunTapInterface>>,
    /// A second descriptor of the TAP, to wait on (smoltcp owns the first).
    tap_watch: OwnedFd,
    k: KernelHost,
    /// A call of the kernel host is waiting for its answer.
    pending: bool,
    smol: usize,
    kern: usize,
    start: std::time::Instant,
    segs: Vec<Segment>,
}

impl TapEngine {
    /// `smol_host` names the host that runs on smoltcp; the other one runs
    /// on the kernel.
    pub fn new(
        hosts: &[HostSpec],
        opts: &RunOptions,
        smol_host: &str,
    ) -> Result<Self, EngineError> {
        crate::linux::check_privileges("smoltcp-tap engine", "smoltcp")?;
        if hosts.len() != 2 {
            return Err(EngineError(format!(
                "--engine smoltcp-tap pairs exactly two hosts; the script has {}",
                hosts.len()
            )));
        }
        let smol = hosts
            .iter()
            .position(|h| h.name == smol_host)
            .ok_or_else(|| {
                EngineError(format!(
                    "--tap-host {smol_host}: the script's hosts are {}",
                    hosts
                        .iter()
                        .map(|h| h.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let kern = 1 - smol;
        let e = |m: String| EngineError(format!("smoltcp-tap setup: {m}"));
        let bound = Duration::from_micros(TAP_BLOCK_LIMIT_US);
        let (k, tap_fd) = KernelHost::spawn(hosts[kern].addr, bound).map_err(e)?;
        let tap_watch = rustix::io::fcntl_dupfd_cloexec(&tap_fd, 0)
            .map_err(|x| e(format!("dup the TAP descriptor: {x}")))?;
        // smoltcp counts the Ethernet header in the MTU.
        let mtu = crate::linux::host::TAP_MTU as usize
            + smoltcp::wire::EthernetFrame::<&[u8]>::header_len();
        let tap = TunTapInterface::from_fd(tap_fd.into_raw_fd(), Medium::Ethernet, mtu)
            .map_err(|x| e(format!("the TAP device: {x}")))?;
        let mut dev = Capture::new(tap);
        let mac = EthernetAddress([0x02, 0, 0, 0, 0, smol as u8 + 1]);
        let iface = make_iface(
            &mut dev,
            HardwareAddress::Ethernet(mac),
            hosts[smol].addr,
            host_seed(opts.seed, smol),
            0,
        );
        let mut stacks: Vec<Option<Stack<Capture<TunTapInterface>>>> = vec![None, None];
        stacks[smol] = Some(Stack {
            iface,
            sockets: SocketSet::new(Vec::new()),
            dev,
        });
        Ok(TapEngine {
            w: World::new(hosts.to_vec(), stacks),
            tap_watch,
            k,
            pending: false,
            smol,
            kern,
            start: std::time::Instant::now(),
            segs: Vec::new(),
        })
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    fn stack(&mut self) -> &mut Stack<Capture<TunTapInterface>> {
        self.w.stacks[self.smol].as_mut().expect("the smoltcp host")
    }

    /// Records the frames captured since the last look; returns the tuple
    /// (receiver's view) of an incoming RST among them.
    fn take_frames(&mut self) -> Option<Tuple> {
        let frames: Vec<(Dir, Vec<u8>)> = {
            let mut f = self.stack().dev.frames.borrow_mut();
            f.drain(..).collect()
        };
        let mut rst = None;
        let now = self.w.now;
        for (dir, f) in frames {
            let Some(ip) = ipv4_of(Medium::Ethernet, &f) else {
                continue;
            };
            let w = &self.w;
            let Ok(mut seg) = Segment::decode_ipv4(ip, now, &|a| w.host_name(a)) else {
                continue; // not TCP (ICMP, ...)
            };
            if dir == Dir::In && seg.flags.rst() {
                rst = Some((seg.dst_addr, seg.dport, seg.src_addr, seg.sport));
            }
            self.w.annotate(&mut seg);
            self.w.delivered(&seg);
            self.w.last_activity = now;
            self.segs.push(seg);
        }
        rst
    }

    /// Polls smoltcp once: every frame waiting on the TAP (one at a time,
    /// to pin state changes on RSTs), then everything it has to send.
    fn pump(&mut self) {
        self.w.now = self.now();
        let t = Instant::from_micros(self.w.now as i64);
        let h = self.smol;
        loop {
            let st = self.stack();
            let r = st
                .iface
                .poll_ingress_single(t, &mut st.dev, &mut st.sockets);
            let rst = self.take_frames();
            self.w.observe(h, rst);
            if r == smoltcp::iface::PollIngressSingleResult::None {
                break;
            }
        }
        let st = self.stack();
        while st.iface.poll_egress(t, &mut st.dev, &mut st.sockets)
            != smoltcp::iface::PollResult::None
        {}
        self.take_frames();
        self.w.observe(h, None);
    }

    /// Runs until `stop` holds or `until` (µs since start) passes.
    fn run(&mut self, until: u64, stop: &mut dyn FnMut(&mut Self) -> bool) -> bool {
        loop {
            self.pump();
            if stop(self) {
                return true;
            }
            let now = self.now();
            if now >= until {
                return false;
            }
            let next = self.stack().poll_at(now).unwrap_or(u64::MAX);
            let d = next.saturating_sub(now).min(until - now).min(SLICE_US);
            self.wait_io(d);
        }
    }

    /// Sleeps at most `us` µs, until a frame waits on the TAP or, while a
    /// call of the kernel host is pending, its answer.
    fn wait_io(&self, us: u64) {
        let mut fds = vec![PollFd::new(&self.tap_watch, PollFlags::IN)];
        if self.pending {
            fds.push(PollFd::from_borrowed_fd(self.k.as_fd(), PollFlags::IN));
        }
        let t = Timespec {
            tv_sec: (us / 1_000_000) as _,
            tv_nsec: (us % 1_000_000) as i64 * 1000,
        };
        let _ = rustix::event::poll(&mut fds, Some(&t));
    }

    fn smol_pending(&mut self) -> bool {
        let now = self.now();
        self.stack().poll_at(now).is_some()
    }

    fn do_call(&mut self, host: usize, sock: &str, call: &Call, ctx: &CallCtx) -> CallOutcome {
        self.pump();
        if host == self.kern {
            if matches!(call, Call::Exit) {
                return self.k.exit();
            }
            if let Err(o) = self.k.start(sock, call, ctx) {
                return o;
            }
            // The program performs the call, blocking if it blocks (at most
            // TAP_BLOCK_LIMIT_US, its SO_RCVTIMEO/SO_SNDTIMEO); smoltcp and
            // the network move on meanwhile.
            let cap = self.now() + self.k.answer_timeout(sock).as_micros() as u64;
            self.pending = true;
            self.run(cap, &mut |e: &mut Self| e.k.answer_ready());
            self.pending = false;
            return self.k.finish(sock, call, ctx);
        }
        let deadline = self.now() + TAP_BLOCK_LIMIT_US;
        let mut retry = Retry::default();
        loop {
            self.w.now = self.now();
            match self.w.attempt(host, sock, call, ctx, &mut retry) {
                Attempt::Done(o) => {
                    self.pump();
                    return o;
                }
                Attempt::Block if self.now() >= deadline => {
                    return self
                        .w
                        .give_up(host, sock, call, &retry, "the engine stopped waiting");
                }
                Attempt::Block => {
                    let until = (self.now() + SLICE_US).min(deadline);
                    self.run(until, &mut |_| false);
                }
            }
        }
    }
}

impl Engine for TapEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::SmoltcpTap
    }

    fn now_us(&self) -> u64 {
        self.now()
    }

    fn sysctl(&mut self, host: usize, key: Sysctl, value: &str) -> Result<(), EngineError> {
        if host == self.kern {
            return self.k.sysctl(key, value).map_err(EngineError);
        }
        self.w
            .note(format!("unsupported on smoltcp: sysctl {key} = {value}"));
        Ok(())
    }

    fn call(&mut self, host: usize, sock: &str, call: &Call, ctx: &CallCtx) -> CallOutcome {
        self.do_call(host, sock, call, ctx)
    }

    fn fault(&mut self, host: usize, fault: &Fault) -> Result<(), EngineError> {
        // The kernel's frames cannot be held back from its side of the TAP
        // without a qdisc; faults are for the virtual engines.
        self.w.note(format!(
            "unsupported on smoltcp-tap: fault {fault:?} on {} (not applied)",
            self.w.hosts[host].name
        ));
        Ok(())
    }

    fn release(&mut self, host: usize) -> Result<(), EngineError> {
        self.w.note(format!(
            "unsupported on smoltcp-tap: release on {} (nothing was held)",
            self.w.hosts[host].name
        ));
        Ok(())
    }

    fn settle(&mut self) {
        let start = self.now();
        self.run(u64::MAX, &mut |e: &mut Self| {
            e.now() >= e.w.last_activity.max(start) + SETTLE_QUIET_US
        });
    }

    fn wait(&mut self, us: u64) {
        let until = self.now() + us;
        self.run(until, &mut |_| false);
    }

    fn state(&mut self, host: usize, sock: &str) -> Option<TcpState> {
        if host == self.kern {
            self.k.state(sock)
        } else {
            self.w.state_of(host, sock)
        }
    }

    fn counters(&mut self, host: usize) -> BTreeMap<Counter, i64> {
        if host == self.kern {
            self.k.counters()
        } else {
            BTreeMap::new()
        }
    }

    fn segments(&self) -> &[Segment] {
        &self.segs
    }

    fn finish(&mut self, horizon_us: u64) -> Finish {
        let quiet_done =
            |e: &mut Self| !e.smol_pending() && e.now() >= e.w.last_activity + SETTLE_QUIET_US;
        let done = self.run(horizon_us, &mut |e: &mut Self| quiet_done(e));
        let mut notes = self.w.notes.clone();
        notes.push(format!(
            "{} runs on smoltcp over a TAP, {} on the kernel in a private network namespace; times are real; the kernel host's state changes are not recorded (its connections at the end are, from /proc/net/tcp)",
            self.w.hosts[self.smol].name, self.w.hosts[self.kern].name
        ));
        if !done {
            notes.push(format!(
                "stopped at the horizon ({}) with timers still pending",
                crate::trace::fmt_time(self.now())
            ));
        }
        let mut open = self.w.open_conns(&self.segs);
        for (lp, ra, rp, st) in self.k.open_lines() {
            open.push(OpenConn {
                host: self.w.hosts[self.kern].name.clone(),
                sock: self.k.name_of(lp, rp).unwrap_or_else(|| "-".into()),
                local_port: lp,
                remote: format!("{}.{rp}", self.w.host_name(ra)),
                state: st,
                detail: "kernel connection (/proc/net/tcp)".into(),
            });
        }
        let mut states = self.w.state_changes();
        states.sort_by_key(|s| s.time_us);
        Finish {
            states,
            open_at_end: open,
            notes,
            end_us: self.now(),
        }
    }
}
