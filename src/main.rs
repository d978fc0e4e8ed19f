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
    /// or without -S, -tt, -nn), splits it into connections and names the
    /// most likely cause of each ending, what the capture cannot tell, and
    /// the scenario in sim/ that reproduces it.
    Explain(ExplainArgs),
    /// List the scenarios in a directory with their titles.
    List {
        /// The directory (default: sim).
        #[arg(default_value = "sim")]
        dir: String,
    },
    /// Run scripts on two engines and print a diff of the normalised traces
    /// (segments, windows, calls, counters, states). Exit 0 when identical
    /// (windows aside), 1 when not.
    Compare(CompareArgs),
    /// Run every script of a directory on two engines, in parallel, and print
    /// a table with one row per scenario and `N/M scenarios identical`.
    /// Exit 0 when every scenario is identical in every column, 1 when not.
    Conform(ConformArgs),
    /// Regenerate the book's traces, ladders and tables
    /// (book/src/generated/) from sim/; with --check, only report stale
    /// files (exit 1 if any).
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
    /// A capture: .pcap, .pcapng, or a text file of tcpdump lines (`-` for
    /// standard input).
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
    /// Scenarios run at the same time (real-kernel runs mostly wait).
    #[arg(long, default_value_t = 16)]
    jobs: usize,
}

#[derive(Clone, Copy, clap::ValueEnum)]
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
        keep_payload: true,
        tap_host: a.tap_host.clone(),
    };
    let mut failed = false;
    for (i, f) in a.files.iter().enumerate() {
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
            Format::Text => {
                if i > 0 {
                    println!();
                }
                print!("{}", trace.to_text());
            }
            Format::Json => println!("{}", trace.to_json()),
        }
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
        if let Err(e) = finrst::pcap::write_file(trace, &path) {
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
    let bytes = if a.capture == "-" {
        let mut v = Vec::new();
        if let Err(e) = std::io::Read::read_to_end(&mut std::io::stdin(), &mut v) {
            eprintln!("finrst: cannot read standard input: {e}");
            return ExitCode::from(2);
        }
        v
    } else {
        match std::fs::read(&a.capture) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("finrst: cannot read {}: {e}", a.capture);
                return ExitCode::from(2);
            }
        }
    };
    let report = finrst::explain::explain_bytes(&a.capture, &bytes);
    match a.format {
        Format::Text => print!("{}", report.to_text()),
        Format::Json => println!("{}", report.to_json()),
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
    let opts = RunOptions::default();
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
    let rows = finrst::compare::conform(&files, ea, eb, &RunOptions::default(), a.jobs);
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
