//! `finrst explore` on the race stories (a plain harness: `cargo bench
//! --bench explore`): schedules per second on one core, and the size of
//! each story's schedule space with and without reduction.

use finrst::explore::{Bounds, Explorer, Report, load};
use std::collections::BTreeSet;

fn explore(path: &str, bounds: Bounds) -> Report {
    let (s, props) = load(path).expect("the story loads");
    Explorer::new(&s, props, bounds).explore()
}

fn main() {
    let mut stories: Vec<String> = std::fs::read_dir("sim")
        .expect("run from the crate root")
        .filter_map(|e| e.ok())
        .map(|e| e.path().to_string_lossy().to_string())
        .filter(|p| p.contains("/race-") && p.ends_with(".sim"))
        .collect();
    stories.sort();
    println!(
        "{:<34} {:>10} {:>8} {:>9} {:>8} {:>8} {:>11} {:>8} {:>9}",
        "story",
        "reduced",
        "classes",
        "grid",
        "classes",
        "same?",
        "+faults+dl",
        "classes",
        "runs/s"
    );
    let (mut runs, mut secs) = (0u64, 0f64);
    for p in &stories {
        let name = p.trim_start_matches("sim/").trim_end_matches(".sim");
        let r = explore(p, Bounds::default());
        let g = explore(
            p,
            Bounds {
                reduction: false,
                ..Bounds::default()
            },
        );
        let full = explore(
            p,
            Bounds {
                faults: 1,
                delays: true,
                ..Bounds::default()
            },
        );
        let a: BTreeSet<_> = r.classes.iter().map(|c| &c.outcome).collect();
        let b: BTreeSet<_> = g.classes.iter().map(|c| &c.outcome).collect();
        for x in [&r, &g, &full] {
            runs += x.run + x.probes;
            secs += x.seconds;
        }
        println!(
            "{:<34} {:>10} {:>8} {:>9} {:>8} {:>8} {:>11} {:>8} {:>9.0}",
            name,
            format!("{}+{}", r.run, r.probes),
            r.classes.len(),
            g.run,
            g.classes.len(),
            if a == b { "yes" } else { "NO" },
            format!("{}+{}/{}", full.run, full.probes, full.unreduced),
            full.classes.len(),
            full.rate()
        );
    }
    println!(
        "total: {runs} runs in {secs:.2} s on one core = {:.0} runs/s",
        runs as f64 / secs.max(1e-9)
    );
}
