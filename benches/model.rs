//! Benchmarks of the model engine (a plain harness: `cargo bench`).
//!
//! 1. The whole `sim/` corpus, per scenario and in total (best of several
//!    runs, wall time on one core).
//! 2. A bulk transfer: 100 MB through a 64 KiB receive window, then close:
//!    simulated segments per second and peak heap memory, at two transfer
//!    sizes to show that memory does not grow with virtual time.

use finrst::ModelEngine;
use finrst::engine::{CallCtx, Engine, HostSpec, RunOptions};
use finrst::script::{Call, Data, MsgFlags, SockOpt};
use finrst::{EngineKind, run_file};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Counts live and peak heap bytes.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static A: Counting = Counting;

fn corpus() {
    let mut files: Vec<String> = std::fs::read_dir("sim")
        .expect("run from the crate root")
        .filter_map(|e| e.ok())
        .map(|e| e.path().to_string_lossy().to_string())
        .filter(|p| p.ends_with(".sim"))
        .collect();
    files.sort();
    let opts = RunOptions::default();
    let mut total_best = f64::MAX;
    let mut per: Vec<(String, f64)> = files.iter().map(|f| (f.clone(), f64::MAX)).collect();
    for _ in 0..20 {
        let t0 = Instant::now();
        for (f, best) in per.iter_mut() {
            let t = Instant::now();
            let trace = run_file(f, EngineKind::Model, &opts).expect("corpus runs");
            std::hint::black_box(trace.to_text());
            *best = best.min(t.elapsed().as_secs_f64());
        }
        total_best = total_best.min(t0.elapsed().as_secs_f64());
    }
    println!(
        "corpus on the model ({} scenarios, best of 20, parse + run + render):",
        per.len()
    );
    for (f, t) in &per {
        println!("  {:<44} {:>8.3} ms", f, t * 1e3);
    }
    println!("  {:<44} {:>8.3} ms", "total", total_best * 1e3);
}

/// Moves `bytes` from server to client through the client's 64 KiB window
/// in writes of `chunk` bytes (TCP_NODELAY, so each write is a segment),
/// (SO_RCVBUF 65536 → 128 KiB buffer → 64 KiB window), then both close.
fn bulk(bytes: u64, chunk: u32) -> (u64, f64, usize, u64) {
    let hosts = HostSpec::for_hosts(&["client".into(), "server".into()]);
    let opts = RunOptions {
        keep_payload: false,
        ..RunOptions::default()
    };
    let mut m = ModelEngine::new(&hosts, &opts);
    m.world.record = false;
    let ctx = CallCtx::default();
    m.call(1, "listener", &Call::Socket, &ctx);
    m.call(
        1,
        "listener",
        &Call::Listen {
            port: 9999,
            backlog: 8,
        },
        &ctx,
    );
    m.call(0, "conn", &Call::Socket, &ctx);
    m.call(0, "conn", &Call::SetSockOpt(SockOpt::RcvBuf(65536)), &ctx);
    let cctx = CallCtx {
        local_port: Some(40000),
        peer_addr: Some(hosts[1].addr),
        ..CallCtx::default()
    };
    m.call(
        0,
        "conn",
        &Call::Connect {
            host: "server".into(),
            port: 9999,
            from_port: None,
            nonblock: false,
        },
        &cctx,
    );
    let actx = CallCtx {
        new_name: Some("conn".into()),
        ..CallCtx::default()
    };
    m.call(1, "listener", &Call::Accept, &actx);
    m.call(1, "conn", &Call::SetSockOpt(SockOpt::NoDelay(true)), &ctx);
    let nb = MsgFlags {
        dontwait: true,
        ..MsgFlags::default()
    };
    LIVE.store(0, Ordering::Relaxed);
    PEAK.store(0, Ordering::Relaxed);
    let base = LIVE.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let before = m.world.segments_built;
    let (mut sent, mut got) = (0u64, 0u64);
    while got < bytes {
        if sent < bytes {
            let n = (bytes - sent).min(chunk as u64) as u32;
            let r = m.call(
                1,
                "conn",
                &Call::Send {
                    data: Data::Count(n),
                    flags: nb,
                },
                &ctx,
            );
            if r.ret > 0 {
                sent += r.ret as u64;
            }
        }
        // Let the network run for one round trip, then the reader drains.
        let until = m.world.now + 100;
        m.world.run_until(until);
        let r = m.call(
            0,
            "conn",
            &Call::Recv {
                len: 1 << 20,
                flags: nb,
            },
            &ctx,
        );
        if r.ret > 0 {
            got += r.ret as u64;
        }
    }
    m.call(0, "conn", &Call::Close, &ctx);
    m.call(1, "conn", &Call::Close, &ctx);
    m.finish(m.now_us() + 200_000_000);
    let secs = t0.elapsed().as_secs_f64();
    let segs = m.world.segments_built - before;
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    (segs, secs, peak, m.now_us())
}

/// The kernel's loopback moving `bytes` in writes of `chunk` bytes from
/// one socket to another over 127.0.0.1 (the receiver's buffer set to
/// 64 KiB, as the model's client's), read by a second thread: wall time.
fn loopback(bytes: u64, chunk: u32) -> f64 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let addr = l.local_addr().expect("an address");
    let reader = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0u64;
        while got < bytes {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n as u64,
            }
        }
        got
    });
    let mut c = std::net::TcpStream::connect(addr).expect("connect");
    c.set_nodelay(true).expect("TCP_NODELAY");
    let data: Vec<u8> = (0..chunk).map(|i| b'a' + (i % 26) as u8).collect();
    let t0 = Instant::now();
    let mut sent = 0u64;
    while sent < bytes {
        let n = (bytes - sent).min(chunk as u64) as usize;
        c.write_all(&data[..n]).expect("write");
        sent += n as u64;
    }
    let got = reader.join().expect("the reader");
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(got, bytes);
    secs
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    corpus();
    // Each bulk figure beside the kernel's loopback moving the same bytes
    // in the same writes, measured right after it (the loopback runs in
    // real time; the model's transfer takes the virtual time shown).
    for (mb, chunk) in [(10u64, 1u32 << 20), (100, 1 << 20), (10, 100), (20, 100)] {
        let (segs, secs, peak, vt) = bulk(mb << 20, chunk);
        let lo = loopback(mb << 20, chunk);
        println!(
            "bulk {mb:>3} MB through a 64 KiB window in {chunk}-byte writes: {segs} segments in {:.3} s = {:.0} segments/s, {:.1} s virtual, peak heap {:.0} KiB; kernel loopback, same bytes and writes: {lo:.3} s, the model takes {:.2}x its time",
            secs,
            segs as f64 / secs,
            vt as f64 / 1e6,
            peak as f64 / 1024.0,
            secs / lo
        );
    }
}
