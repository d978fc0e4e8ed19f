//! Scale benchmarks (a plain harness: `cargo bench --bench scale`), with
//! the targets of the performance issue printed beside each figure:
//!
//! 1. The bulk script — `repeat 20000 { client send 65536 MSG_DONTWAIT;
//!    server recv 65536 MSG_DONTWAIT }`, 1.31 GB — on the model through the
//!    script runner: segments/s and bytes/s with the trace streamed to a
//!    counting sink (the engine and the runner), and with the text trace
//!    rendered (what `finrst run > file` costs).
//! 2. Peak heap of that run and of the same script at 160,000 rounds
//!    (10.5 GB): memory must not grow with the transfer.
//! 3. The same 1.31 GB script on the smoltcp engine: the model's speed-up.
//! 4. As root (skipped otherwise, or with FINRST_BENCH_NO_LINUX=1): the
//!    linux engine on 200 rounds of the script, wall time divided by the
//!    script's own clock; and `conform sim` (model vs linux) wall time,
//!    beside the longest scenario's virtual duration, which bounds it (the
//!    kernel's timers run in real time).
//!
//! Figures are single runs on a shared machine: read the ratios.
//! `cargo bench --bench scale -- --model-only` stops after the first line
//! (for profiling the model).

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

fn bulk_script(rounds: u32) -> String {
    let dir = std::env::temp_dir().join(format!("finrst-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let path = dir.join(format!("bulk{rounds}.sim"));
    std::fs::write(
        &path,
        format!(
            "title bulk: {rounds} rounds of 64 KiB\nhosts client server\nhorizon 100000s\n\
             server listen 9999\nclient connect server:9999 = 0\nserver accept = 4\n\
             repeat {rounds} {{\n  client send 65536 MSG_DONTWAIT\n  server recv 65536 MSG_DONTWAIT\n}}\n"
        ),
    )
    .expect("write the bulk script");
    path.to_string_lossy().to_string()
}

struct Figures {
    segments: u64,
    bytes: u64,
    secs: f64,
    peak_heap: usize,
    virtual_us: u64,
}

/// Runs a script streamed into `sink`, measuring wall time and peak heap.
fn measure(path: &str, engine: EngineKind, sink: &mut dyn TraceSink) -> (Figures, f64) {
    let opts = RunOptions {
        keep_payload: false,
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
    (
        Figures {
            segments: 0,
            bytes: 0,
            secs,
            peak_heap: peak,
            virtual_us: trace.end_us,
        },
        secs,
    )
}

fn counted(path: &str, engine: EngineKind) -> Figures {
    let mut c = Count::default();
    let (mut f, _) = measure(path, engine, &mut c);
    f.segments = c.segments;
    f.bytes = c.bytes;
    f
}

/// The fastest of `n` runs (the machine is shared: the slower runs measure
/// the neighbours).
fn best_of(n: usize, path: &str, engine: EngineKind) -> Figures {
    (0..n)
        .map(|_| counted(path, engine))
        .min_by(|a, b| a.secs.total_cmp(&b.secs))
        .expect("n > 0")
}

fn mib(b: usize) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT MET" }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let s20k = bulk_script(20_000);
    let s160k = bulk_script(160_000);

    // 1. The model, counting only.
    let m = best_of(5, &s20k, EngineKind::Model);
    let segs_per_s = m.segments as f64 / m.secs;
    println!(
        "model, bulk 1.31 GB (20,000 x 64 KiB), streamed to a counter, best of 5: {} segments, {} payload bytes in {:.3} s = {:.0} segments/s, {:.2} GB/s ({:.1} s virtual) [target >= 1,000,000 segments/s: {}]",
        m.segments,
        m.bytes,
        m.secs,
        segs_per_s,
        m.bytes as f64 / m.secs / 1e9,
        m.virtual_us as f64 / 1e6,
        verdict(segs_per_s >= 1e6)
    );
    if std::env::args().any(|a| a == "--model-only") {
        return;
    }
    // ... and with the text trace rendered.
    let mut w = TraceWriter::streaming(std::io::sink(), Format::Text).expect("a spool file");
    let (_, text_secs) = measure(&s20k, EngineKind::Model, &mut w);
    drop(w);
    println!(
        "model, same script, text trace rendered to a sink: {:.3} s = {:.0} segments/s",
        text_secs,
        m.segments as f64 / text_secs
    );

    // 2. Memory: 1.31 GB and 10.5 GB.
    let big = counted(&s160k, EngineKind::Model);
    println!(
        "model peak heap: 1.31 GB run {:.2} MiB, 10.5 GB run (160,000 rounds, {} segments, {:.2} s) {:.2} MiB [target < 64 MiB and flat: {}]",
        mib(m.peak_heap),
        big.segments,
        big.secs,
        mib(big.peak_heap),
        verdict(
            m.peak_heap < 64 << 20
                && big.peak_heap < 64 << 20
                && big.peak_heap <= m.peak_heap + (1 << 20)
        )
    );

    // 3. smoltcp on the same script.
    let sm = best_of(3, &s20k, EngineKind::Smoltcp);
    let ratio = sm.secs / m.secs;
    println!(
        "smoltcp, same 1.31 GB script, best of 3: {} segments in {:.3} s = {:.0} segments/s, peak heap {:.2} MiB; model speed-up {:.1}x [target >= 10x: {}]",
        sm.segments,
        sm.secs,
        sm.segments as f64 / sm.secs,
        mib(sm.peak_heap),
        ratio,
        verdict(ratio >= 10.0)
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
    let s200 = bulk_script(200);
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
