//! `finrst explore`: the thin command over [`finrst::explore`].

use anyhow::Context;
use finrst::EngineKind;
use finrst::explore::{Bounds, Explorer, load, verify};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ExploreArgs {
    /// The scenario (.sim) whose `together { }` blocks are explored; its
    /// `expect always ...` / `expect never ...` lines are checked over
    /// every schedule.
    pub file: String,
    /// Single faults: 1 explores the loss of any one segment.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1))]
    pub faults: u32,
    /// Also delay one segment by each of the stated delays (one more link
    /// delay, just past the delayed-ACK timer, half an RTO, just past a
    /// retransmission).
    #[arg(long)]
    pub delays: bool,
    /// Start phases against the jiffy clock (1 to 16; 1 is the script's own).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub phases: u32,
    /// Run every interleaving at every offset of a fixed grid instead of
    /// reducing (to measure what the reduction saves).
    #[arg(long)]
    pub no_reduction: bool,
    /// Stop after this many schedules.
    #[arg(long, default_value_t = 100_000)]
    pub max_schedules: u64,
    /// Run every class's witness on this engine and report the witnesses
    /// whose outcome differs (`linux`: the real kernel, needs root).
    #[arg(long)]
    pub verify: Option<EngineKind>,
    /// How many witnesses --verify runs at once.
    #[arg(long, default_value_t = 8)]
    pub jobs: usize,
    /// Write each class's witness to DIR/NAME-classK.sim.
    #[arg(long)]
    pub out: Option<String>,
    /// Leave the witnesses out of the printed report.
    #[arg(long)]
    pub no_witnesses: bool,
}

/// Exit 0 when every property holds (and every verified witness agrees),
/// 1 when not.
pub fn explore(a: &ExploreArgs) -> anyhow::Result<ExitCode> {
    let (script, props) = load(&a.file)?;
    let bounds = Bounds {
        faults: a.faults,
        delays: a.delays,
        phases: a.phases,
        reduction: !a.no_reduction,
        max_schedules: a.max_schedules,
        ..Bounds::default()
    };
    let report = Explorer::new(&script, props, bounds).explore();
    print!("{}", report.text(!a.no_witnesses));
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).with_context(|| format!("{dir}: cannot create"))?;
        for (n, c) in report.classes.iter().enumerate() {
            let p = format!("{dir}/{}-class{}.sim", report.scenario, n + 1);
            std::fs::write(&p, &c.witness).with_context(|| format!("{p}: cannot write"))?;
        }
    }
    let mut ok = report.holds();
    if let Some(engine) = a.verify {
        engine.check_available()?;
        println!(
            "\nverify on {engine} (each witness run to its end, {} at a time):",
            a.jobs
        );
        for v in verify(&report, engine, &a.file, a.jobs) {
            match (&v.error, &v.differences) {
                (Some(e), _) => {
                    ok = false;
                    println!("  class {}: could not run: {e}", v.class);
                }
                (None, None) => println!("  class {}: same class", v.class),
                (None, Some(d)) => {
                    ok = false;
                    println!("  class {}: DIFFERS ({engine} vs model):", v.class);
                    for l in d {
                        println!("    {l}");
                    }
                    if !v.fine_timing.is_empty() {
                        println!(
                            "    (its witness asks for timing finer than a call of the {engine} engine takes: {}; the kernel may not be driven into this class)",
                            v.fine_timing.join(", ")
                        );
                    }
                }
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
