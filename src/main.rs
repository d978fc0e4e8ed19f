//! The `finrst` command: a thin CLI over the library.

use clap::{CommandFactory, Parser, Subcommand};
use finrst::engine::{Policy, RunOptions};
use finrst::script::parse_duration;
use finrst::{EngineKind, Error, run_file};
use std::process::ExitCode;

/// Why did close() send RST instead of FIN? Run TCP close-path scenarios on a
/// model of the Linux stack, on smoltcp, or on the real kernel, and read the
/// trace segment by segment.
#[derive(Parser)]
#[command(name = "finrst", version, propagate_version = true)]
#[command(after_help = "Examples:
  finrst run sim/seed000-epollout-unread.sim
  finrst run sim/rfc2525-zero-window.sim --policy always-fin --horizon 40s
  finrst run sim/seed004-http-unread.sim --format json
  finrst run sim/seed000-epollout-unread.sim --pcap out.pcap --ladder out.svg
  finrst explain capture.pcap
  tcpdump -nn -r capture.pcap | finrst explain -
  finrst run sim/seed000-epollout-unread.sim --engine smoltcp
  sudo finrst run sim/seed000-epollout-unread.sim --engine smoltcp-tap --tap-host server
  finrst list sim
  finrst compare sim/seed000-epollout-unread.sim --engines model,linux
  finrst conform sim --format json
  finrst fuzz --engines model,linux --seed 1 --count 200 --out fuzz-out

Exit codes: 0 ok, 1 an expectation failed, 2 bad input or the engine could not run.")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run scenario scripts and print their traces.
    Run(RunArgs),
    /// Explain how each TCP connection in a real capture ended, and why.
    ///
    /// Reads a pcap or pcapng file (raw IP, Ethernet, Linux cooked, BSD
    /// loopback) or tcpdump's text output (as pasted in a bug report, with
    /// or without -S, -tt, -nn), gzip-compressed or not, splits it into
    /// connections and names the most likely cause of each ending, what the
    /// capture cannot tell, and the scenario in sim/ that reproduces it. A
    /// capture cut short or corrupt is explained up to the damage, and the
    /// exit status is 2.
    Explain(ExplainArgs),
    /// List the scenarios in a directory with their titles.
    List {
        /// The directory (default: sim).
        #[arg(default_value = "sim")]
        dir: String,
    },
    /// Run scripts on two engines and print a diff of the normalised traces
    /// (segments, windows, calls, counters, states). Exit 0 when every
    /// section is identical, 1 when not.
    Compare(CompareArgs),
    /// Run every script of a directory on two engines, in parallel, and print
    /// a table with one row per scenario and `N/M scenarios identical`.
    /// Exit 0 when every scenario is identical in every column, 1 when not.
    Conform(ConformArgs),
    /// Generate random valid scenarios, run each on two engines, shrink
    /// every difference to a minimal script (written to --out) and print
    /// one line per difference, then `N/M random scenarios identical`.
    /// A difference is run once more first; one that does not come back is
    /// reported as unstable (a difference not in --known is run again
    /// alone, one at a time, up to twice). Exit 0 when every scenario is identical (or
    /// unstable, or named in --known), 1 when not. The same seed gives the
    /// same scenarios.
    Fuzz(FuzzArgs),
    /// Run packetdrill-syntax scripts (.pkt): one local socket driven by
    /// system calls, the remote side written as raw segments, injected
    /// (`<`) and expected (`>`). A directory runs every .pkt in it. Prints
    /// one line per script and `N/M scripts passed`; a failure shows the
    /// script line, what was expected and what was sent. Exit 0 when all
    /// pass.
    Drill(DrillArgs),
    /// Regenerate the book's traces, ladders, tables and scenario pages
    /// (book/src/generated/, and the end of book/src/SUMMARY.md) from sim/;
    /// with --check, only report stale files (exit 1 if any).
    BookGen {
        /// Report stale files without writing them.
        #[arg(long)]
        check: bool,
        /// The repository root (holding sim/ and book/).
        #[arg(long, default_value = ".")]
        root: String,
    },
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Scenario files (.sim).
    #[arg(required = true)]
    files: Vec<String>,
    /// The TCP implementation to run on.
    #[arg(long, value_enum, default_value = "model")]
    engine: EngineKind,
    /// The model's close rule (model engine only).
    #[arg(long, value_enum, default_value = "linux")]
    policy: Policy,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Seed for initial sequence numbers and timestamps.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop the run at this time (e.g. 90s); overrides the script's horizon.
    #[arg(long, value_parser = parse_horizon)]
    horizon: Option<u64>,
    /// Also write the segments as a pcap file (raw IPv4, for Wireshark or
    /// tcpdump -r). With several scenario files, each gets its own file:
    /// OUT-NAME.pcap.
    #[arg(long, value_name = "OUT.pcap")]
    pcap: Option<String>,
    /// With --pcap: keep at most N bytes of each packet, as `tcpdump -s N`
    /// (0, the default: whole packets). 80 keeps every IPv4 and TCP header
    /// and no payload.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "pcap")]
    pcap_snaplen: u32,
    /// Also draw the run as a ladder (sequence) diagram in SVG. With several
    /// scenario files, each gets its own file: OUT-NAME.svg.
    #[arg(long, value_name = "OUT.svg")]
    ladder: Option<String>,
    /// With --engine smoltcp-tap: the host that runs on smoltcp (default:
    /// the script's first host); the other runs on the kernel.
    #[arg(long, value_name = "HOST")]
    tap_host: Option<String>,
}

#[derive(clap::Args)]
struct ExplainArgs {
    /// A capture: .pcap, .pcapng, or a text file of tcpdump lines, any of
    /// them gzip-compressed (`-` for standard input).
    capture: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

#[derive(clap::Args)]
struct CompareArgs {
    /// Scenario files (.sim).
    #[arg(required = true)]
    files: Vec<String>,
    /// The two engines, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["model", "linux"])]
    engines: Vec<EngineKind>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Stop each run at this time (e.g. 90s); overrides the script's horizon.
    #[arg(long, value_parser = parse_horizon)]
    horizon: Option<u64>,
    #[command(flatten)]
    clock: ClockArgs,
}

/// How a real-time engine is timed against a virtual-time one.
#[derive(clap::Args)]
struct ClockArgs {
    /// Run the real-time engine on its own clock: by default it makes each
    /// call at the script time the virtual-time engine made it (see the
    /// book's "One clock for both engines"), so the two are compared on
    /// one timeline.
    #[arg(long)]
    own_clock: bool,
}

impl ClockArgs {
    fn run_options(&self) -> RunOptions {
        RunOptions {
            own_clock: self.own_clock,
            ..RunOptions::default()
        }
    }
}

#[derive(clap::Args)]
struct ConformArgs {
    /// The directory of scenarios.
    #[arg(default_value = "sim")]
    dir: String,
    /// The two engines, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["model", "linux"])]
    engines: Vec<EngineKind>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Scenarios run at the same time. Default: four per CPU (real-kernel
    /// runs mostly wait; more than that at once delays the kernel's
    /// softirqs and timers enough to reorder timing-bound scenarios).
    #[arg(long)]
    jobs: Option<usize>,
    #[command(flatten)]
    clock: ClockArgs,
}

#[derive(clap::Args)]
struct FuzzArgs {
    /// The two engines, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["model", "linux"])]
    engines: Vec<EngineKind>,
    /// The seed: scenario i of seed S is always the same script.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many scenarios.
    #[arg(long, default_value_t = 100)]
    count: u64,
    /// Where the shrunk differences are written, one .sim each (and, with
    /// --keep-all, every generated scenario).
    #[arg(long, default_value = "fuzz-out")]
    out: String,
    /// Scenarios (and shrink candidates) run at the same time. Default:
    /// four per CPU. Real-kernel runs mostly wait, but more than that at
    /// once shifts the kernel's timers: seed 1 ×500 on 2 cores gave 8
    /// unstable scenarios at 16 at a time, 1 at 8.
    #[arg(long)]
    jobs: Option<usize>,
    /// Runs allowed for shrinking one difference (0: do not shrink).
    #[arg(long, default_value_t = 200)]
    shrink_budget: usize,
    /// Also write every generated scenario to --out.
    #[arg(long)]
    keep_all: bool,
    /// A file of known differences: one scenario name per line (e.g.
    /// `fuzz-s1-17`), `#` comments. Those may differ (they are still
    /// counted and printed, marked `known`); the exit code is 0 when every
    /// other scenario is identical.
    #[arg(long)]
    known: Option<String>,
    #[command(flatten)]
    clock: ClockArgs,
}

#[derive(clap::Args)]
struct DrillArgs {
    /// .pkt files or directories of them.
    #[arg(required = true)]
    paths: Vec<String>,
    /// The engine the local socket runs on: model or linux.
    #[arg(long, value_enum, default_value = "model")]
    engine: EngineKind,
    /// How far (µs) a packet or a return may be from its script time
    /// (packetdrill's option; a script's own `--tolerance_usecs=` line is
    /// used when this is not given). Default 4000.
    #[arg(long = "tolerance_usecs")]
    tolerance_usecs: Option<u64>,
    /// Scripts run at the same time (linux runs are real time and mostly
    /// wait).
    #[arg(long, default_value_t = 8)]
    jobs: usize,
}

/// `--jobs` of conform and fuzz: as given, or four per CPU.
fn jobs_or_default(jobs: Option<usize>) -> usize {
    jobs.unwrap_or_else(|| {
        4 * std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
    })
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

fn parse_horizon(s: &str) -> Result<u64, String> {
    parse_duration(s).ok_or_else(|| format!("expected a duration like 90s or 500ms, found {s:?}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Run(a) => run(a),
        Cmd::Explain(a) => explain(&a),
        Cmd::List { dir } => list(&dir),
        Cmd::Compare(a) => compare(a),
        Cmd::Conform(a) => conform(a),
        Cmd::Fuzz(a) => fuzz(a),
        Cmd::Drill(a) => drill(a),
        Cmd::BookGen { check, root } => book_gen(check, &root),
        Cmd::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "finrst", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
    }
}

fn run(a: RunArgs) -> ExitCode {
    let opts = RunOptions {
        seed: a.seed,
        policy: a.policy,
        // Payload bytes show only in a pcap (and not past its snap length).
        keep_payload: a.pcap.is_some()
            && finrst::pcap::Recorder::new(Some(a.pcap_snaplen)).needs_payload(),
        tap_host: a.tap_host.clone(),
        schedule: None,
        own_clock: false,
    };
    let mut failed = false;
    for (i, f) in a.files.iter().enumerate() {
        if a.format == Format::Text && i > 0 {
            println!();
        }
        let trace = if a.ladder.is_none() {
            // Streamed: each segment is printed (and written to the pcap)
            // when it is final, so a run of any length runs in the same
            // memory.
            match run_streamed(&a, f, &opts) {
                Ok(t) => t,
                Err(code) => return code,
            }
        } else {
            // The ladder is drawn from the whole trace.
            let trace = match run_file(f, a.engine, &opts, a.horizon) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("finrst: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Err(code) = write_outputs(&a, &trace, f) {
                return code;
            }
            match a.format {
                Format::Text => print!("{}", trace.to_text()),
                Format::Json => println!("{}", trace.to_json()),
            }
            trace
        };
        if let Some(first) = trace.failures.first() {
            eprintln!("finrst: expectation failed: {first}");
            failed = true;
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs one file with its trace streamed to standard output (and its pcap
/// to --pcap).
fn run_streamed(a: &RunArgs, f: &str, opts: &RunOptions) -> Result<finrst::trace::Trace, ExitCode> {
    use finrst::trace::{Format as TF, TraceWriter};
    let format = match a.format {
        Format::Text => TF::Text,
        Format::Json => TF::Json,
    };
    let stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut w = TraceWriter::streaming(stdout, format).map_err(|e| {
        eprintln!("finrst: cannot create a temporary file: {e}");
        ExitCode::from(2)
    })?;
    if let Some(out) = &a.pcap {
        let path = output_path(out, a.files.len() > 1, f);
        let file = std::fs::File::create(&path)
            .map(|f| Box::new(std::io::BufWriter::new(f)) as Box<dyn std::io::Write>);
        w = match file.and_then(|p| w.with_pcap_snaplen(p, Some(a.pcap_snaplen))) {
            Ok(w) => w,
            Err(e) => {
                eprintln!("finrst: cannot write {path}: {e}");
                return Err(ExitCode::from(2));
            }
        };
    }
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("finrst: {e}");
        ExitCode::from(2)
    };
    let script = finrst::script::parse_file(f).map_err(|e| fail(&e))?;
    let hosts = finrst::engine::HostSpec::for_hosts(&script.hosts);
    let mut engine = finrst::make_engine(a.engine, &hosts, opts).map_err(|e| fail(&e))?;
    let steps = finrst::script::step_count(&script.steps);
    // A bar for long runs only (a real-kernel run, or many steps), and only
    // when standard error is a terminal.
    let bar = (std::io::IsTerminal::is_terminal(&std::io::stderr())
        && (a.engine == EngineKind::Linux
            || a.engine == EngineKind::SmoltcpTap
            || steps >= 20_000))
        .then(|| progress_bar(steps, &script.name()));
    let mut sink = WithBar { w: &mut w, bar };
    let result =
        finrst::runner::run_streaming(&script, engine.as_mut(), opts, a.horizon, &mut sink);
    if let Some(b) = &sink.bar {
        b.finish_and_clear();
    }
    let trace = result.map_err(|e| fail(&e))?;
    match w.end(&trace) {
        Ok(mut out) => {
            if a.format == Format::Json {
                let _ = std::io::Write::write_all(&mut out, b"\n");
            }
            let _ = std::io::Write::flush(&mut out);
        }
        Err(e) => {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Err(ExitCode::SUCCESS);
            }
            eprintln!("finrst: cannot write the trace: {e}");
            return Err(ExitCode::from(2));
        }
    }
    Ok(trace)
}

/// A progress bar on standard error: `done/total` steps (or scenarios).
fn progress_bar(total: u64, what: &str) -> indicatif::ProgressBar {
    let b = indicatif::ProgressBar::new(total);
    b.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {pos}/{len} ({elapsed}, ~{eta} left)",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    b.set_message(what.to_string());
    b
}

/// A trace sink that also moves a progress bar.
struct WithBar<'a, W: std::io::Write> {
    w: &'a mut finrst::trace::TraceWriter<W>,
    bar: Option<indicatif::ProgressBar>,
}

impl<W: std::io::Write> finrst::trace::TraceSink for WithBar<'_, W> {
    fn begin(&mut self, head: &finrst::trace::Head) {
        self.w.begin(head);
    }
    fn segment(&mut self, s: &finrst::segment::Segment) {
        self.w.segment(s);
    }
    fn call(&mut self, c: &finrst::trace::CallRecord) {
        self.w.call(c);
    }
    fn step_done(&mut self) {
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }
}

/// The file name for one scenario's output: `OUT` itself for a single
/// scenario, `OUT-NAME.ext` when several share the option.
fn output_path(out: &str, many: bool, scenario_file: &str) -> String {
    if !many {
        return out.to_string();
    }
    let name = std::path::Path::new(scenario_file)
        .file_stem()
        .map_or("scenario".into(), |s| s.to_string_lossy().to_string());
    let p = std::path::Path::new(out);
    let stem = p
        .file_stem()
        .map_or("out".into(), |s| s.to_string_lossy().to_string());
    let ext = p
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    p.with_file_name(format!("{stem}-{name}{ext}"))
        .to_string_lossy()
        .to_string()
}

/// Writes the --pcap and --ladder files of one run.
fn write_outputs(a: &RunArgs, trace: &finrst::trace::Trace, file: &str) -> Result<(), ExitCode> {
    let many = a.files.len() > 1;
    if let Some(out) = &a.pcap {
        let path = output_path(out, many, file);
        if let Err(e) = finrst::pcap::write_file_snaplen(trace, &path, Some(a.pcap_snaplen)) {
            eprintln!("finrst: cannot write {path}: {e}");
            return Err(ExitCode::from(2));
        }
    }
    if let Some(out) = &a.ladder {
        let path = output_path(out, many, file);
        if let Err(e) = std::fs::write(&path, finrst::ladder::render(trace)) {
            eprintln!("finrst: cannot write {path}: {e}");
            return Err(ExitCode::from(2));
        }
    }
    Ok(())
}

fn explain(a: &ExplainArgs) -> ExitCode {
    // Read as a stream: a capture of any size is explained in bounded
    // memory for the file itself (the connections it holds still count).
    let (read, what) = if a.capture == "-" {
        let r = finrst::explain::explain_reader(&a.capture, std::io::stdin().lock());
        (r, "standard input".to_string())
    } else {
        match std::fs::File::open(&a.capture) {
            Ok(f) => (
                finrst::explain::explain_reader(&a.capture, f),
                a.capture.clone(),
            ),
            Err(e) => {
                eprintln!("finrst: cannot read {}: {e}", a.capture);
                return ExitCode::from(2);
            }
        }
    };
    let report = match read {
        Ok(r) => r,
        Err(e) => {
            eprintln!("finrst: cannot read {what}: {e}");
            return ExitCode::from(2);
        }
    };
    match a.format {
        Format::Text => print!("{}", report.to_text()),
        Format::Json => println!("{}", report.to_json()),
    }
    // A damaged capture is explained as far as it goes, and fails.
    if let Some(s) = &report.stopped {
        eprintln!("finrst: {what}: {s}");
        return ExitCode::from(2);
    }
    if report.connections.is_empty() {
        eprintln!("finrst: no TCP connection found in {}", a.capture);
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

fn list(dir: &str) -> ExitCode {
    let mut files: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path().to_string_lossy().to_string())
            .filter(|p| p.ends_with(".sim"))
            .collect(),
        Err(e) => {
            eprintln!("finrst: cannot read directory {dir}: {e}");
            return ExitCode::from(2);
        }
    };
    files.sort();
    let mut bad = false;
    for f in files {
        match finrst::script::parse_file(&f) {
            Ok(s) => println!("{:<36} {}", s.name(), s.title),
            Err(e) => {
                eprintln!("finrst: {}", Error::Script(e));
                bad = true;
            }
        }
    }
    if bad {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

fn two_engines(e: &[EngineKind]) -> Result<(EngineKind, EngineKind), ExitCode> {
    match e {
        [a, b] => Ok((*a, *b)),
        _ => {
            eprintln!("finrst: --engines takes exactly two engines, e.g. --engines model,linux");
            Err(ExitCode::from(2))
        }
    }
}

fn compare(a: CompareArgs) -> ExitCode {
    let (ea, eb) = match two_engines(&a.engines) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let opts = a.clock.run_options();
    let mut all_same = true;
    let mut json = Vec::new();
    for f in &a.files {
        let c = match finrst::compare::compare_file(f, ea, eb, &opts, a.horizon) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("finrst: {e}");
                return ExitCode::from(2);
            }
        };
        all_same &= c.identical();
        match a.format {
            Format::Text => print!("{}", c.diff_text()),
            Format::Json => json.push(c),
        }
    }
    if matches!(a.format, Format::Json) {
        println!(
            "{}",
            serde_json::to_string_pretty(&json).expect("plain data serialises")
        );
    }
    if all_same {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn fuzz(a: FuzzArgs) -> ExitCode {
    use finrst::fuzz::{Gen, Outcome, par_map, run_text, shrink};
    let (ea, eb) = match two_engines(&a.engines) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let out = std::path::PathBuf::from(&a.out);
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("finrst: cannot create {}: {e}", a.out);
        return ExitCode::from(2);
    }
    // Scratch files live in a private directory, removed at the end.
    let work = std::env::temp_dir().join(format!("finrst-fuzz-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&work) {
        eprintln!("finrst: cannot create {}: {e}", work.display());
        return ExitCode::from(2);
    }
    let known: Vec<String> = match &a.known {
        None => Vec::new(),
        Some(f) => match std::fs::read_to_string(f) {
            Ok(t) => t
                .lines()
                .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
                .filter(|l| !l.is_empty())
                .collect(),
            Err(e) => {
                eprintln!("finrst: cannot read {f}: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let opts = a.clock.run_options();
    let jobs = jobs_or_default(a.jobs);
    let scenarios: Vec<_> = (0..a.count).map(|i| Gen::scenario(a.seed, i)).collect();
    if a.keep_all {
        for s in &scenarios {
            let _ = std::fs::write(out.join(format!("{}.sim", s.name)), s.to_sim());
        }
    }
    let bar =
        std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| progress_bar(a.count, "fuzz"));
    let outcomes = par_map(&scenarios, jobs, &|s| {
        let o = run_text(
            &work,
            &format!("{}.sim", s.name),
            &s.to_sim(),
            ea,
            eb,
            &opts,
        );
        if let Some(b) = &bar {
            b.inc(1);
        }
        o
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    // The kernel runs in real time: a difference that a scheduling hiccup
    // caused does not come back. Each difference is run once more; one
    // that is identical then is reported as unstable (neither identical
    // nor a confirmed difference). Known differences are rerun side by
    // side; the others alone, one after another, so that the load of the
    // batch (and of whatever else the machine runs) is not what confirms
    // them: the same rule the linux tests apply to a failing scenario.
    let differing: Vec<usize> = (0..scenarios.len())
        .filter(|&i| matches!(outcomes[i], Outcome::Differs(_)))
        .collect();
    let (known_diff, new_diff): (Vec<usize>, Vec<usize>) = differing
        .iter()
        .partition(|&&i| known.contains(&scenarios[i].name));
    let run_again = |&i: &usize| {
        let s = &scenarios[i];
        run_text(
            &work,
            &format!("{}-again.sim", s.name),
            &s.to_sim(),
            ea,
            eb,
            &opts,
        )
    };
    let mut unstable = vec![false; scenarios.len()];
    // A new difference gets two lone reruns: it counts only if it comes
    // back both times (a burst of load from outside the batch can span
    // one rerun of a few seconds, rarely two).
    for (group, jobs, tries) in [(&known_diff, jobs, 1), (&new_diff, 1, 2)] {
        for _ in 0..tries {
            let left: Vec<usize> = group.iter().copied().filter(|&i| !unstable[i]).collect();
            let again = par_map(&left, jobs, &run_again);
            for (&i, o) in left.iter().zip(&again) {
                unstable[i] = matches!(o, Outcome::Identical);
            }
        }
    }
    let mut same = 0;
    let mut unknown = 0;
    let mut n_unstable = 0;
    for (k, (s, o)) in scenarios.iter().zip(&outcomes).enumerate() {
        let is_known = known.contains(&s.name);
        if unstable[k] {
            n_unstable += 1;
            if let Outcome::Differs(first) = o {
                println!("{}: unstable (identical when run again): {first}", s.name);
            }
            continue;
        }
        if !matches!(o, Outcome::Identical) && !is_known {
            unknown += 1;
        }
        match o {
            Outcome::Identical => same += 1,
            Outcome::Error(e) => println!("{}: could not run: {e}", s.name),
            Outcome::Differs(first) if is_known => {
                println!("{}: differs (known): {first}", s.name)
            }
            Outcome::Differs(first) => {
                let (small, why, runs) = if a.shrink_budget > 0 {
                    shrink(s, first, (ea, eb), &opts, &work, jobs, a.shrink_budget)
                } else {
                    (s.clone(), first.clone(), 0)
                };
                let path = out.join(format!("{}.sim", s.name));
                let mut text = small.to_sim();
                text.insert_str(
                    text.find('\n').map_or(0, |i| i + 1),
                    &format!(
                        "# {} vs {}: first difference: {why}\n# shrunk from {} to {} steps in {runs} runs\n",
                        ea.name(),
                        eb.name(),
                        s.steps.len(),
                        small.steps.len()
                    ),
                );
                let _ = std::fs::write(&path, text);
                println!(
                    "{}: differs ({} -> {} steps, {}): {why}",
                    s.name,
                    s.steps.len(),
                    small.steps.len(),
                    path.display()
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    if n_unstable > 0 {
        println!("{n_unstable} unstable (differed once, identical when run again)");
    }
    println!(
        "{same}/{} random scenarios identical (seed {})",
        a.count, a.seed
    );
    if !known.is_empty() {
        println!(
            "{unknown} differences not in {}",
            a.known.as_deref().unwrap_or("")
        );
    }
    if unknown == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn conform(a: ConformArgs) -> ExitCode {
    let (ea, eb) = match two_engines(&a.engines) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let files = match finrst::compare::sim_files(&a.dir) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => {
            eprintln!("finrst: no .sim files in {}", a.dir);
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("finrst: cannot read directory {}: {e}", a.dir);
            return ExitCode::from(2);
        }
    };
    let bar = std::io::IsTerminal::is_terminal(&std::io::stderr())
        .then(|| progress_bar(files.len() as u64, "conform"));
    let rows = finrst::compare::conform_with(
        &files,
        ea,
        eb,
        &a.clock.run_options(),
        jobs_or_default(a.jobs),
        &|r| {
            if let Some(b) = &bar {
                b.set_message(r.scenario.clone());
                b.inc(1);
            }
        },
    );
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    match a.format {
        Format::Text => print!("{}", finrst::compare::table(&rows)),
        Format::Json => println!("{}", finrst::compare::to_json(&rows)),
    }
    if rows.iter().all(|r| r.identical()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn book_gen(check: bool, root: &str) -> ExitCode {
    use finrst::bookgen;
    let root = std::path::Path::new(root);
    let files = match bookgen::generate(root) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("finrst: book-gen: {e}");
            return ExitCode::from(2);
        }
    };
    let (stale, extra) = bookgen::stale(root, &files);
    for p in &stale {
        println!(
            "{} {}",
            if check { "stale:" } else { "wrote:" },
            p.display()
        );
    }
    for p in &extra {
        println!(
            "{} {}",
            if check { "extra:" } else { "removed:" },
            p.display()
        );
    }
    if check {
        return if stale.is_empty() && extra.is_empty() {
            ExitCode::SUCCESS
        } else {
            eprintln!("finrst: the book's generated files are stale; run `finrst book-gen`");
            ExitCode::from(1)
        };
    }
    let changed: Vec<_> = files
        .into_iter()
        .filter(|f| stale.contains(&f.path))
        .collect();
    if let Err(e) = bookgen::write(root, &changed, &extra) {
        eprintln!("finrst: book-gen: {e}");
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

/// `finrst drill`.
fn drill(a: DrillArgs) -> ExitCode {
    let engine = match a.engine {
        EngineKind::Model => finrst::drill::DrillEngine::Model,
        EngineKind::Linux => finrst::drill::DrillEngine::Linux,
        _ => {
            eprintln!("finrst drill: --engine must be model or linux");
            return ExitCode::from(2);
        }
    };
    let mut files = Vec::new();
    for p in &a.paths {
        match finrst::drill::pkt_files(p) {
            Ok(mut v) => files.append(&mut v),
            Err(e) => {
                eprintln!("finrst: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if files.is_empty() {
        eprintln!("finrst drill: no .pkt files in {}", a.paths.join(" "));
        return ExitCode::from(2);
    }
    let bar = std::io::IsTerminal::is_terminal(&std::io::stderr())
        .then(|| progress_bar(files.len() as u64, "drill"));
    let results = finrst::fuzz::par_map(&files, a.jobs, &|f| {
        let r = finrst::drill::run_file(f, engine, a.tolerance_usecs);
        if let Some(b) = &bar {
            b.inc(1);
        }
        r
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let mut passed = 0;
    let mut bad_input = false;
    for (f, r) in files.iter().zip(&results) {
        match r {
            Ok(p) => {
                passed += 1;
                println!(
                    "{f}: ok ({} events, {:.3} s)",
                    p.events,
                    p.end_us as f64 / 1e6
                );
            }
            Err(finrst::drill::DrillError::Parse(e)) => {
                bad_input = true;
                println!("{f}: error: {e}");
            }
            Err(finrst::drill::DrillError::Engine(e)) => {
                bad_input = true;
                println!("{f}: engine error: {e}");
            }
            Err(finrst::drill::DrillError::Failed(fail, isn)) => {
                println!("{f}: FAILED\n{}", fail.report(*isn));
            }
        }
    }
    println!(
        "{passed}/{} scripts passed ({})",
        files.len(),
        a.engine.name()
    );
    if passed == files.len() {
        ExitCode::SUCCESS
    } else if bad_input && passed + 1 == files.len() && files.len() == 1 {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    }
}
