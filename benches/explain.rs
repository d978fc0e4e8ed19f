//! `finrst explain` on big captures (a plain harness: `cargo bench --bench
//! explain`), beside `tcpdump -nn -r` and `tshark -q -z conv,tcp` reading
//! the same file in the same run, with the ratios between them.
//!
//! The captures are synthetic (tests/common/gen_capture.rs): headers only,
//! raw IPv4, connections 20 µs apart that each last 60 ms (handshake,
//! request, response, then FIN both ways or an R. over unread data).
//!
//! 1. 300,000 connections (about 2.3 million packets): finrst (text
//!    report, and `--terse`), tcpdump and tshark — wall time (median of
//!    FINRST_BENCH_RUNS, default 3, interleaved) and peak RSS.
//! 2. About 1 GB (2,400,000 connections): finrst alone, wall time and
//!    peak RSS — the target is well under 100 MB.
//!
//! `-- --quick` uses 50,000 and 400,000 connections. Tools that are not
//! installed are reported as missing, not skipped silently.

#[path = "../tests/common/gen_capture.rs"]
mod gen_capture;

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Wall seconds and peak RSS (KiB) of a command, through GNU time.
fn measure(cmd: &[&str]) -> Option<(f64, u64)> {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%e %M"])
        .args(cmd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .ok()?;
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last()?;
    let mut it = last.split_whitespace();
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn capture(dir: &Path, n: u32) -> (PathBuf, u64, u64) {
    let p = dir.join(format!("many-{n}.pcap"));
    let f = std::fs::File::create(&p).expect("create the capture");
    let packets = gen_capture::write_many(&mut BufWriter::new(f), n, 20).expect("write");
    let bytes = std::fs::metadata(&p).map_or(0, |m| m.len());
    (p, packets, bytes)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let runs: usize = std::env::var("FINRST_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let finrst = env!("CARGO_BIN_EXE_finrst");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-explain");
    std::fs::create_dir_all(&dir).expect("a scratch directory");

    let (n1, n2) = if quick {
        (50_000, 400_000)
    } else {
        (300_000, 2_400_000)
    };
    let (file, packets, bytes) = capture(&dir, n1);
    let f = file.to_string_lossy().to_string();
    println!(
        "1. {n1} connections, {packets} packets, {:.0} MB ({runs} runs each, interleaved)",
        bytes as f64 / 1e6
    );
    let tools: Vec<(&str, Vec<&str>)> = vec![
        ("finrst explain", vec![finrst, "explain", &f]),
        (
            "finrst explain --terse",
            vec![finrst, "explain", "--terse", &f],
        ),
        ("tcpdump -nn -r", vec!["tcpdump", "-nn", "-r", &f]),
        (
            "tshark -q -z conv,tcp",
            vec!["tshark", "-r", &f, "-q", "-z", "conv,tcp"],
        ),
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); tools.len()];
    let mut rss = vec![0u64; tools.len()];
    for _ in 0..runs {
        for (i, (name, cmd)) in tools.iter().enumerate() {
            if !have(cmd[0]) && cmd[0] != finrst {
                continue;
            }
            match measure(cmd) {
                Some((t, m)) => {
                    times[i].push(t);
                    rss[i] = rss[i].max(m);
                }
                None => println!("   {name}: did not run"),
            }
        }
    }
    let base = times[0].clone();
    for (i, (name, cmd)) in tools.iter().enumerate() {
        if times[i].is_empty() {
            println!("   {name:<24} not installed ({})", cmd[0]);
            continue;
        }
        let t = median(times[i].clone());
        let ratio = if base.is_empty() {
            String::new()
        } else {
            format!("  {:.2}x finrst's time", t / median(base.clone()))
        };
        println!(
            "   {name:<24} {t:>7.2} s  {:>9.0} packets/s  peak RSS {:>7.1} MB{ratio}",
            packets as f64 / t,
            rss[i] as f64 / 1024.0
        );
    }
    let _ = std::fs::remove_file(&file);

    let (file, packets, bytes) = capture(&dir, n2);
    let f = file.to_string_lossy().to_string();
    println!(
        "2. {n2} connections, {packets} packets, {:.0} MB: finrst explain --terse",
        bytes as f64 / 1e6
    );
    match measure(&[finrst, "explain", "--terse", &f]) {
        Some((t, m)) => println!(
            "   {t:.2} s, {:.0} packets/s, peak RSS {:.1} MB (target: well under 100 MB) {}",
            packets as f64 / t,
            m as f64 / 1024.0,
            if m < 100 * 1024 { "MET" } else { "NOT MET" }
        ),
        None => println!("   did not run"),
    }
    let _ = std::fs::remove_file(&file);
}
