//! Scale benchmarks (a plain harness: `cargo bench --bench scale`). Each
//! figure is printed beside a baseline measured in the same run, with the
//! ratio between them and the target of the performance issue:
//!
//! 1. The bulk script — `repeat 20000 { client send 65536 MSG_DONTWAIT;
//!    server recv 65536 MSG_DONTWAIT }`, 1.31 GB — on the model through the
//!    script runner, streamed to a counting sink (the engine and the
//!    runner: the baseline of the outputs), then rendered as `finrst run`
//!    renders it: text, JSON, text with a pcap of whole packets, text with
//!    a pcap cut to 80 bytes (`--pcap-snaplen 80`).
//! 2. The same script on the smoltcp engine, beside plain smoltcp 0.14
//!    moving the same bytes through the same 65535-byte socket buffers (two
//!    interfaces on an in-memory wire, virtual time, no engine and no
//!    trace), and beside the kernel's loopback moving them (a socket pair
//!    over 127.0.0.1, in real time).
//! 3. Peak heap of the text-rendered model run at 20,000, 200,000 and
//!    2,000,000 rounds: memory must not grow with the transfer. (The
//!    runner's step times, 8 bytes a step, are the one thing that still
//!    grows: 32 MB at 2,000,000 rounds; they are the runner's to bound.)
//! 4. As root (skipped otherwise, or with FINRST_BENCH_NO_LINUX=1): the
//!    linux engine on 200 rounds of the script, wall time divided by the
//!    script's own clock; and `conform sim` (model vs linux) wall time,
//!    beside the longest scenario's virtual duration, which bounds it (the
//!    kernel's timers run in real time).
//!
//! The machine is shared: every timing is the median of
//! FINRST_BENCH_RUNS runs (default 5), the runs of all figures of a
//! section interleaved so that a busy neighbour slows them alike; read the
//! ratios. `-- --model-only` stops after section 1 (for profiling the
//! model); `-- --quick` runs 2,000 rounds and skips the 2,000,000-round
//! memory run.

use finrst::EngineKind;
use finrst::engine::{HostSpec, RunOptions};
use finrst::segment::Segment;
use finrst::trace::{CallRecord, Format, Head, TraceSink, TraceWriter};
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

/// Counts what a streamed run hands on, and keeps nothing.
#[derive(Default)]
struct Count {
    segments: u64,
    bytes: u64,
    calls: u64,
}

impl TraceSink for Count {
    fn begin(&mut self, _: &Head) {}
    fn segment(&mut self, s: &Segment) {
        self.segments += 1;
        self.bytes += s.len as u64;
    }
    fn call(&mut self, _: &CallRecord) {
        self.calls += 1;
    }
}

/// Writes the bulk script of `rounds` rounds into `dir`.
fn bulk_script(dir: &tempfile::TempDir, rounds: u32) -> String {
    let path = dir.path().join(format!("bulk{rounds}.sim"));
    std::fs::write(
        &path,
        format!(
            "title bulk: {rounds} rounds of 64 KiB\nhosts client server\nhorizon 1000000s\n\
             server listen 9999\nclient connect server:9999 = 0\nserver accept = 4\n\
             repeat {rounds} {{\n  client send 65536 MSG_DONTWAIT\n  server recv 65536 MSG_DONTWAIT\n}}\n"
        ),
    )
    .expect("write the bulk script");
    path.to_string_lossy().to_string()
}

/// One run: wall time, peak heap above the start, what was counted.
struct Run {
    secs: f64,
    peak_heap: usize,
    segments: u64,
    bytes: u64,
    virtual_us: u64,
}

/// Runs a script streamed into `sink`, measuring wall time and peak heap.
fn measure(path: &str, engine: EngineKind, keep_payload: bool, sink: &mut dyn TraceSink) -> Run {
    let opts = RunOptions {
        keep_payload,
        ..RunOptions::default()
    };
    let script = finrst::script::parse_file(path).expect("the bench script parses");
    let hosts = HostSpec::for_hosts(&script.hosts);
    let mut e = finrst::make_engine(engine, &hosts, &opts).expect("the engine starts");
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let t0 = Instant::now();
    let trace =
        finrst::run_streaming_on(&script, e.as_mut(), &opts, sink).expect("the bench script runs");
    let secs = t0.elapsed().as_secs_f64();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    assert!(trace.failures.is_empty(), "{:?}", trace.failures);
    Run {
        secs,
        peak_heap: peak,
        segments: 0,
        bytes: 0,
        virtual_us: trace.end_us,
    }
}

fn counted(path: &str, engine: EngineKind) -> Run {
    let mut c = Count::default();
    let mut r = measure(path, engine, false, &mut c);
    r.segments = c.segments;
    r.bytes = c.bytes;
    r
}

/// How `finrst run` renders a run, into a sink: the trace in `format`,
/// and a pcap when `pcap` (`Some(None)`: whole packets; `Some(Some(n))`:
/// cut to n bytes). The payload is kept only when the pcap needs it, as
/// the CLI does.
fn rendered(path: &str, engine: EngineKind, format: Format, pcap: Option<Option<u32>>) -> Run {
    let out = std::io::BufWriter::with_capacity(1 << 16, std::io::sink());
    let mut w = TraceWriter::streaming(out, format).expect("a spool");
    let mut keep = false;
    if let Some(snaplen) = pcap {
        keep = finrst::pcap::Recorder::new(snaplen).needs_payload();
        let p = Box::new(std::io::BufWriter::new(std::io::sink()));
        w = w.with_pcap_snaplen(p, snaplen).expect("a pcap sink");
    }
    let r = measure(path, engine, keep, &mut w);
    drop(w);
    r
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs every figure `n` times, interleaved, and returns each one's
/// median time.
fn interleaved(n: usize, figures: &mut [(&str, &mut dyn FnMut() -> f64)]) -> Vec<f64> {
    let mut times: Vec<Vec<f64>> = figures.iter().map(|_| Vec::new()).collect();
    for _ in 0..n {
        for (i, (_, f)) in figures.iter_mut().enumerate() {
            times[i].push(f());
        }
    }
    times.into_iter().map(median).collect()
}

fn mib(b: usize) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT MET" }
}

/// Plain smoltcp 0.14: two interfaces on an in-memory wire, one TCP
/// connection, `bytes` moved from one to the other through `buf`-byte
/// socket buffers, on a virtual clock that jumps to the next timer when
/// nothing moves. Frame buffers are reused, checksums computed and verified
/// as smoltcp does by default: the least an engine built on smoltcp has to
/// pay, without scripts, traces or Linux semantics.
mod plain {
    use smoltcp::iface::{Config, Interface, SocketSet};
    use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
    use smoltcp::socket::tcp;
    use smoltcp::time::Instant;
    use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, Ipv4Address};
    use std::cell::RefCell;
    use std::collections::VecDeque;

    /// A frame in a buffer that may be longer (reused buffers keep their
    /// length, so they are never zeroed again).
    #[derive(Default)]
    struct Frame {
        buf: Vec<u8>,
        len: usize,
    }

    #[derive(Default)]
    struct Dev {
        rx: VecDeque<Frame>,
        sent: Vec<Frame>,
        spare: RefCell<Vec<Frame>>,
    }

    struct Rx<'a>(Frame, &'a RefCell<Vec<Frame>>);
    struct Tx<'a>(&'a mut Vec<Frame>, &'a RefCell<Vec<Frame>>);

    impl phy::RxToken for Rx<'_> {
        fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
            let r = f(&self.0.buf[..self.0.len]);
            self.1.borrow_mut().push(self.0);
            r
        }
    }

    impl phy::TxToken for Tx<'_> {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
            let mut fr = self.1.borrow_mut().pop().unwrap_or_default();
            if fr.buf.len() < len {
                fr.buf.resize(len, 0);
            }
            fr.len = len;
            let r = f(&mut fr.buf[..len]);
            self.0.push(fr);
            r
        }
    }

    impl Device for Dev {
        type RxToken<'a> = Rx<'a>;
        type TxToken<'a> = Tx<'a>;
        fn receive(&mut self, _: Instant) -> Option<(Rx<'_>, Tx<'_>)> {
            let f = self.rx.pop_front()?;
            Some((Rx(f, &self.spare), Tx(&mut self.sent, &self.spare)))
        }
        fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
            Some(Tx(&mut self.sent, &self.spare))
        }
        fn capabilities(&self) -> DeviceCapabilities {
            let mut c = DeviceCapabilities::default();
            c.medium = Medium::Ip;
            c.max_transmission_unit = 65535;
            c
        }
    }

    fn iface(dev: &mut Dev, last: u8, seed: u64) -> Interface {
        let mut cfg = Config::new(HardwareAddress::Ip);
        cfg.random_seed = seed;
        let mut i = Interface::new(cfg, dev, Instant::ZERO);
        i.update_ip_addrs(|a| {
            a.push(IpCidr::new(
                IpAddress::Ipv4(Ipv4Address::new(10, 0, 0, last)),
                24,
            ))
            .expect("one address fits");
        });
        i
    }

    fn socket(buf: usize) -> tcp::Socket<'static> {
        tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0u8; buf]),
            tcp::SocketBuffer::new(vec![0u8; buf]),
        )
    }

    /// Moves `bytes` and returns the wall time and the frames sent.
    pub fn transfer(bytes: u64, buf: usize) -> (f64, u64) {
        let (mut da, mut db) = (Dev::default(), Dev::default());
        let mut ia = iface(&mut da, 1, 1);
        let mut ib = iface(&mut db, 2, 2);
        let (mut sa, mut sb) = (SocketSet::new(Vec::new()), SocketSet::new(Vec::new()));
        let mut server = socket(buf);
        server.listen(9999).expect("listen");
        let hs = sb.add(server);
        let mut client = socket(buf);
        client
            .connect(
                ia.context(),
                (IpAddress::Ipv4(Ipv4Address::new(10, 0, 0, 2)), 9999),
                40000,
            )
            .expect("connect");
        let hc = sa.add(client);
        let pattern: Vec<u8> = (0..buf).map(|i| b'a' + (i % 26) as u8).collect();
        let mut sink = vec![0u8; buf];
        let (mut sent, mut got, mut frames) = (0u64, 0u64, 0u64);
        let mut now = 0i64;
        let t0 = std::time::Instant::now();
        while got < bytes {
            let t = Instant::from_micros(now);
            ia.poll(t, &mut da, &mut sa);
            let mut moved = !da.sent.is_empty();
            frames += da.sent.len() as u64;
            db.rx.extend(da.sent.drain(..));
            ib.poll(t, &mut db, &mut sb);
            moved |= !db.sent.is_empty();
            frames += db.sent.len() as u64;
            da.rx.extend(db.sent.drain(..));
            let c = sa.get_mut::<tcp::Socket>(hc);
            if sent < bytes && c.may_send() {
                let n = c
                    .send_slice(&pattern[..(bytes - sent).min(buf as u64) as usize])
                    .unwrap_or(0);
                sent += n as u64;
                moved |= n > 0;
            }
            let s = sb.get_mut::<tcp::Socket>(hs);
            while let Ok(n) = s.recv_slice(&mut sink) {
                if n == 0 {
                    break;
                }
                got += n as u64;
                moved = true;
            }
            if !moved && da.rx.is_empty() {
                let next = [ia.poll_at(t, &sa), ib.poll_at(t, &sb)]
                    .into_iter()
                    .flatten()
                    .map(|i| i.total_micros())
                    .min()
                    .expect("a transfer under way has a timer");
                now = next.max(now + 1);
            }
        }
        std::hint::black_box(&sink);
        (t0.elapsed().as_secs_f64(), frames)
    }
}

/// The kernel's loopback moving `rounds` writes of `chunk` bytes from one
/// socket to another over 127.0.0.1, read by a second thread: wall time.
fn loopback(rounds: u32, chunk: usize) -> f64 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let addr = l.local_addr().expect("an address");
    let total = rounds as u64 * chunk as u64;
    let reader = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0u64;
        while got < total {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n as u64,
            }
        }
        got
    });
    let mut c = std::net::TcpStream::connect(addr).expect("connect");
    let data: Vec<u8> = (0..chunk).map(|i| b'a' + (i % 26) as u8).collect();
    let t0 = Instant::now();
    for _ in 0..rounds {
        c.write_all(&data).expect("write");
    }
    let got = reader.join().expect("the reader");
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(got, total);
    secs
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let runs: usize = std::env::var("FINRST_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(5);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let rounds: u32 = if quick { 2_000 } else { 20_000 };
    let bulk = bulk_script(&dir, rounds);
    let gb = rounds as f64 * 65536.0 / 1e9;

    // 1. The model: counted, then rendered as the CLI renders it.
    let shape = counted(&bulk, EngineKind::Model);
    let segs = shape.segments as f64;
    let b = bulk.as_str();
    let fig = |format, pcap| move || rendered(b, EngineKind::Model, format, pcap).secs;
    let mut count = || counted(&bulk, EngineKind::Model).secs;
    let (mut text, mut json) = (fig(Format::Text, None), fig(Format::Json, None));
    let (mut pcap, mut pcap80) = (
        fig(Format::Text, Some(None)),
        fig(Format::Text, Some(Some(80))),
    );
    let t = interleaved(
        runs,
        &mut [
            ("count", &mut count),
            ("text", &mut text),
            ("json", &mut json),
            ("pcap", &mut pcap),
            ("pcap80", &mut pcap80),
        ],
    );
    println!(
        "model, bulk {gb:.2} GB ({rounds} rounds of 64 KiB): {} segments, {} payload bytes, {:.1} s virtual; medians of {runs} interleaved runs:",
        shape.segments,
        shape.bytes,
        shape.virtual_us as f64 / 1e6
    );
    println!(
        "  streamed to a counter (engine + runner)  {:.3} s = {:>9.0} segments/s  (baseline)",
        t[0],
        segs / t[0]
    );
    for (i, what) in [
        (1, "text trace rendered                    "),
        (2, "JSON trace rendered                    "),
        (3, "text + pcap, whole packets             "),
        (4, "text + pcap, --pcap-snaplen 80         "),
    ] {
        let target = if i <= 2 {
            format!(
                " [target >= 1,000,000 segments/s: {}]",
                verdict(segs / t[i] >= 1e6)
            )
        } else {
            String::new()
        };
        println!(
            "  {what}  {:.3} s = {:>9.0} segments/s  {:.2}x the counter's time{target}",
            t[i],
            segs / t[i],
            t[i] / t[0]
        );
    }
    if std::env::args().any(|a| a == "--model-only") {
        return;
    }

    // 2. smoltcp, beside plain smoltcp and the kernel's loopback moving the
    //    same bytes.
    let sm = counted(&bulk, EngineKind::Smoltcp);
    let mut smol = || counted(&bulk, EngineKind::Smoltcp).secs;
    let mut smol_text = || rendered(&bulk, EngineKind::Smoltcp, Format::Text, None).secs;
    let plain_frames = std::cell::Cell::new(0);
    let mut plain = || {
        let (s, f) = plain::transfer(sm.bytes, 65535);
        plain_frames.set(f);
        s
    };
    let mut model_text = fig(Format::Text, None);
    let mut lo = || loopback(rounds, 65536);
    let t = interleaved(
        runs,
        &mut [
            ("smoltcp", &mut smol),
            ("smoltcp text", &mut smol_text),
            ("plain", &mut plain),
            ("model text", &mut model_text),
            ("loopback", &mut lo),
        ],
    );
    let (smol, smol_text, plain, model_text, lo) = (t[0], t[1], t[2], t[3], t[4]);
    println!(
        "smoltcp, same script: {} segments, {} payload bytes; medians of {runs} interleaved runs:",
        sm.segments, sm.bytes
    );
    println!(
        "  plain smoltcp 0.14, the same bytes through 65535-byte buffers ({} frames)  {plain:.3} s  (baseline)",
        plain_frames.get()
    );
    println!(
        "  smoltcp engine, streamed to a counter  {smol:.3} s = {:.2}x plain smoltcp [target <= 2x: {}]",
        smol / plain,
        verdict(smol / plain <= 2.0)
    );
    println!(
        "  smoltcp engine, text trace rendered    {smol_text:.3} s = {:.2}x plain smoltcp",
        smol_text / plain
    );
    println!(
        "  kernel loopback (127.0.0.1), {rounds} writes of 64 KiB  {lo:.3} s; model text {:.2}x, smoltcp engine {:.2}x, plain smoltcp {:.2}x its time",
        model_text / lo,
        smol / lo,
        plain / lo
    );

    // 3. Memory: the text-rendered run at 10x and 100x the rounds.
    let mut sizes = vec![rounds, rounds * 10];
    if !quick {
        sizes.push(rounds * 100);
    }
    let peaks: Vec<(u32, Run)> = sizes
        .iter()
        .map(|&n| {
            let s = bulk_script(&dir, n);
            let r = rendered(&s, EngineKind::Model, Format::Text, None);
            let _ = std::fs::remove_file(&s);
            (n, r)
        })
        .collect();
    let first = peaks[0].1.peak_heap;
    let last = peaks.last().expect("sizes").1.peak_heap;
    // The runner's step times: 8 bytes a step, two steps a round, in a Vec
    // that doubles (the old and the new buffer are both counted while it
    // grows: up to 3x its length).
    let steps_bytes = 8 * 2 * sizes.last().copied().unwrap_or(0) as usize;
    print!("model peak heap, text rendered:");
    for (n, r) in &peaks {
        print!(" {n} rounds {:.2} MiB ({:.1} s);", mib(r.peak_heap), r.secs);
    }
    println!(
        " growth {:.2} MiB; the runner's step times hold {:.2} MiB, up to 3x that while their Vec grows [target: flat but for the step times: {}]",
        mib(last.saturating_sub(first)),
        mib(steps_bytes),
        verdict(last <= first + 3 * steps_bytes + (1 << 20))
    );

    // 4. The linux engine.
    let root = unsafe { libc::geteuid() } == 0;
    if !root || std::env::var_os("FINRST_BENCH_NO_LINUX").is_some() {
        println!(
            "linux engine: skipped ({})",
            if root {
                "FINRST_BENCH_NO_LINUX is set"
            } else {
                "needs root"
            }
        );
        return;
    }
    let s200 = bulk_script(&dir, 200);
    // The script's own clock is the model's virtual time (the linux
    // engine's trace times are real, so its own end time would compare
    // the wall clock with itself).
    let clock = counted(&s200, EngineKind::Model).virtual_us as f64 / 1e6;
    let l = counted(&s200, EngineKind::Linux);
    let r = l.secs / clock;
    println!(
        "linux engine, bulk 200 rounds: {:.2} s wall for {:.2} s of the script's clock (the model's virtual time) = {:.2}x [target <= 1.5x: {}]",
        l.secs,
        clock,
        r,
        verdict(r <= 1.5)
    );
    let files = finrst::compare::sim_files("sim").expect("run from the crate root");
    let longest = files
        .iter()
        .filter_map(|f| finrst::run_file(f, EngineKind::Model, &RunOptions::default()).ok())
        .map(|t| t.end_us)
        .max()
        .unwrap_or(0);
    let t0 = Instant::now();
    let rows = finrst::compare::conform(
        &files,
        EngineKind::Model,
        EngineKind::Linux,
        &RunOptions::default(),
        16,
    );
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "conform sim (model vs linux, {} scenarios, 16 jobs): {:.1} s wall; longest scenario {:.1} s of virtual time, so {:.2}x the bound; {}",
        files.len(),
        secs,
        longest as f64 / 1e6,
        secs / (longest as f64 / 1e6),
        finrst::compare::summary(&rows)
    );
}
