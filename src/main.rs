//! The `finrst` command: a thin CLI over the library. Each subcommand
//! calls the library and prints what it returns; every error reaches
//! [`main`] as one `anyhow::Error` and becomes one line on standard error
//! and exit code 2.

use anyhow::{Context, bail};
use clap::{CommandFactory, Parser, Subcommand};
use finrst::engine::{Policy, RunOptions};
use finrst::fuzz::{CampaignConfig, CampaignEvent, KnownList, Verdict};
use finrst::script::parse_duration;
use finrst::trace::{Trace, TraceWriter};
use finrst::{EngineKind, run_file, run_file_streaming};
use std::io::Write;
use std::process::ExitCode;

mod cli;
use cli::progress;

/// Why did close() send RST instead of FIN? Run TCP close-path scenarios on a
/// model of the Linux stack, on smoltcp, or on the real kernel, and read the
/// trace segment by segment.
#[derive(Parser)]
#[command(name = "finrst", version, propagate_version = true)]
#[command(after_help = "Examples:
  finrst run sim/seed000-epollout-unread.sim
  finrst run sim/rfc2525-zero-window.sim --policy always-fin --horizon 40s
  finrst run sim/seed004-http-unread.sim --format json
  finrst run sim/*.sim --format json | jq .scenario
  finrst run sim/seed000-epollout-unread.sim --pcap out.pcap --ladder out.svg
  finrst explain capture.pcap
  tcpdump -nn -r capture.pcap | finrst explain -
  finrst run sim/seed000-epollout-unread.sim --engine smoltcp
  sudo finrst run sim/seed000-epollout-unread.sim --engine smoltcp-tap --tap-host server
  finrst list sim
  finrst compare sim/seed000-epollout-unread.sim --engines model,linux
  finrst conform sim --format json
  finrst fuzz --engines model,linux --seed 1 --count 200 --out fuzz-out
  finrst explore sim/race-keepalive-idle-close.sim --faults 1 --delays

Exit codes: 0 ok, 1 an expectation failed (or the engines differ), 2 bad input or the engine could not run.")]
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
    /// loopback, NFLOG; IPv4 and IPv6, through VLAN, MPLS, PPPoE, GRE,
    /// ERSPAN and IP-in-IP) or tcpdump's text output (as pasted in a bug
    /// report, with or without -S, -tt, -nn, -v), gzip-compressed or not, splits it into
    /// connections and names the most likely cause of each ending, what the
    /// capture cannot tell, and the scenario in sim/ that reproduces it. A
    /// capture cut short or corrupt is explained up to the damage, and the
    /// exit status is 2.
    Explain(ExplainArgs),
    /// List the scenarios in a directory with their titles.
    List {
        /// The directory.
        #[arg(default_value = "sim")]
        dir: String,
    },
    /// Run scripts on two engines and print a diff of the normalised traces
    /// (segments, windows, calls, counters, states). Exit 0 when every
    /// section is identical, 1 when not.
    Compare(CompareArgs),
    /// Run every script of a directory on two engines, in parallel, and print
    /// a table with one row per scenario and `N/M scenarios identical`.
    /// The longest scenarios start first. Exit 0 when every scenario is
    /// identical in every column, 1 when not.
    Conform(ConformArgs),
    /// Generate random valid scenarios, run each on two engines, shrink
    /// every difference to a minimal script (written to --out) and print
    /// one line per difference, then `N/M random scenarios identical`.
    /// A difference is run once more first; one that does not come back is
    /// reported as unstable (a difference not in --known is run again
    /// alone, one at a time, up to twice). Exit 0 when every scenario is
    /// identical (or unstable, or named in --known), 1 when not. The same
    /// seed gives the same scenarios.
    Fuzz(FuzzArgs),
    /// Run packetdrill-syntax scripts (.pkt): one local socket driven by
    /// system calls, the remote side written as raw segments, injected
    /// (`<`) and expected (`>`). A directory runs every .pkt in it. Prints
    /// one line per script and `N/M scripts passed`; a failure shows the
    /// script line, what was expected and what was sent. Exit 0 when all
    /// pass.
    Drill(DrillArgs),
    /// Explore the schedule space of a scenario on the model: the
    /// interleavings of its `together { }` blocks, where each call falls
    /// between deliveries, optionally delayed or lost segments and timer
    /// phases. Prints the outcome classes, how many schedules reach each,
    /// the timing that leads there and a witness .sim per class; checks
    /// `expect always|never` lines over every schedule. Exit 0 when every
    /// property holds (and, with --verify, every witness reaches its class
    /// on that engine), 1 when not.
    Explore(cli::explore::ExploreArgs),
    /// Regenerate the book's traces, ladders, tables and scenario pages
    /// (book/src/generated/, and the end of book/src/SUMMARY.md) from sim/;
    /// with --check, only report stale files (exit 1 if any). A
    /// maintainer's command: hidden from --help.
    #[command(hide = true)]
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
    /// Output format. JSON: one object for one file; with several files,
    /// JSON Lines (one compact object per line, one line per file).
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
    /// Output format: text (a summary, then each connection), json (one
    /// object), jsonl (one line per connection as it is explained, then a
    /// line with the summary).
    #[arg(long, value_enum, default_value = "text")]
    format: ExplainFormat,
    /// Only the connection with this Wireshark `tcp.stream` number.
    #[arg(long)]
    stream: Option<usize>,
    /// Only connections with this endpoint (`10.0.0.1:80`, `[::1]:80`,
    /// `10.0.0.1.80`) or host (`10.0.0.1`) on either side.
    #[arg(long, value_name = "ADDR:PORT")]
    conn: Option<String>,
    /// Only connections with an RST.
    #[arg(long)]
    rst_only: bool,
    /// One line per connection: stream, endpoints, segments, cause id,
    /// how it ended.
    #[arg(long)]
    terse: bool,
    /// Detail every connection. Without it, a text report of more than
    /// 50 connections details only those that did not close normally
    /// (FIN both ways), and counts the others in the summary.
    #[arg(long)]
    all: bool,
    /// Times of pcap captures as seconds since the epoch (tcpdump -tt)
    /// instead of UTC date and time (tcpdump -tttt with TZ=UTC).
    #[arg(long)]
    tt: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExplainFormat {
    Text,
    Json,
    Jsonl,
}

/// The two engines of compare, conform and fuzz.
#[derive(clap::Args)]
struct EnginesArg {
    /// The two engines, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "model,linux")]
    engines: Vec<EngineKind>,
}

impl EnginesArg {
    fn pair(&self) -> anyhow::Result<(EngineKind, EngineKind)> {
        match self.engines[..] {
            [a, b] => Ok((a, b)),
            _ => bail!("--engines takes exactly two engines, e.g. --engines model,linux"),
        }
    }

    /// The pair, once each engine is known to run here: a command that
    /// runs many scripts fails once, up front, not once per script.
    fn available(&self) -> anyhow::Result<(EngineKind, EngineKind)> {
        let (a, b) = self.pair()?;
        a.check_available()?;
        if b != a {
            b.check_available()?;
        }
        Ok((a, b))
    }
}

#[derive(clap::Args)]
struct CompareArgs {
    /// Scenario files (.sim).
    #[arg(required = true)]
    files: Vec<String>,
    #[command(flatten)]
    engines: EnginesArg,
    /// Output format (JSON: one array, one object per file).
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
    #[command(flatten)]
    engines: EnginesArg,
    /// Output format (JSON: one object).
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
    #[command(flatten)]
    engines: EnginesArg,
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
    /// The engine the local socket runs on.
    #[arg(long, default_value = "model", value_parser = drill_engines())]
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
    /// The link: packetdrill's (192.168.0.1 and 192.0.2.1, MTU 1500 with
    /// TSO: `mss 1460`) or finrst's (10.0.0.1 and 10.0.0.2, MTU 65535).
    #[arg(long, value_enum, default_value = "packetdrill")]
    env: DrillEnv,
    /// Walk the directories, run every .pkt as written on the model and,
    /// as root, on the kernel, and print a table per directory (accepted,
    /// passed on each engine, agreeing, rejected with the construct).
    #[arg(long)]
    table: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DrillEnv {
    Packetdrill,
    Finrst,
}

/// The engines a drill runs on: those that can leave a host to the
/// script ([`EngineKind::drills`]), with --engine's help for each.
fn drill_engines() -> impl clap::builder::TypedValueParser<Value = EngineKind> {
    use clap::ValueEnum;
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(
        EngineKind::ALL
            .iter()
            .filter(|k| k.drills())
            .filter_map(|k| k.to_possible_value()),
    )
    .map(|s| {
        s.parse::<EngineKind>()
            .expect("a possible value is an engine")
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

/// Exit 1: an expectation failed, the engines differ, a drill failed.
const FAILED: u8 = 1;
/// Exit 2: bad input, or an engine that cannot run (every `Err`).
const CANNOT_RUN: u8 = 2;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            // `{:#}`: the error and its causes on one line.
            eprintln!("finrst: {e:#}");
            ExitCode::from(CANNOT_RUN)
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    match Cli::parse().cmd {
        Cmd::Run(a) => run_cmd(&a),
        Cmd::Explain(a) => explain(&a),
        Cmd::List { dir } => list(&dir),
        Cmd::Compare(a) => compare(&a),
        Cmd::Conform(a) => conform(&a),
        Cmd::Fuzz(a) => fuzz(&a),
        Cmd::Drill(a) => drill(&a),
        Cmd::Explore(a) => cli::explore::explore(&a),
        Cmd::BookGen { check, root } => book_gen(check, &root),
        Cmd::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "finrst", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// 0 when `ok`, else 1.
fn verdict(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILED)
    }
}

fn run_cmd(a: &RunArgs) -> anyhow::Result<ExitCode> {
    let opts = RunOptions {
        seed: a.seed,
        policy: a.policy,
        tap_host: a.tap_host.clone(),
        horizon_us: a.horizon,
        // Payload bytes show only in a pcap (and not past its snap length).
        keep_payload: a.pcap.is_some()
            && finrst::pcap::Recorder::new(Some(a.pcap_snaplen)).needs_payload(),
        ..RunOptions::default()
    };
    let mut failed = false;
    for (i, f) in a.files.iter().enumerate() {
        if a.format == Format::Text && i > 0 {
            println!();
        }
        let Some(trace) = run_one(a, f, &opts)? else {
            // Standard output was closed (`| head`): nothing more to do.
            return Ok(ExitCode::SUCCESS);
        };
        if let Some(first) = trace.failures.first() {
            eprintln!("finrst: expectation failed: {first}");
            failed = true;
        }
    }
    Ok(verdict(!failed))
}

/// Runs one file and prints its trace; `None` when standard output was
/// closed.
fn run_one(a: &RunArgs, f: &str, opts: &RunOptions) -> anyhow::Result<Option<Trace>> {
    use finrst::trace::Format as TF;
    // One object for one file; JSON Lines for several, so that the output
    // is one stream a reader can split (`jq`, `json.loads` per line).
    let one_line = a.format == Format::Json && a.files.len() > 1;
    let stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut out: Box<dyn Write> = if one_line {
        Box::new(cli::json_lines::OneLine::new(stdout))
    } else {
        Box::new(stdout)
    };
    let format = match a.format {
        Format::Text => TF::Text,
        Format::Json => TF::Json,
    };
    let many = a.files.len() > 1;
    let trace = if let Some(svg) = &a.ladder {
        // The ladder is drawn from the whole trace.
        let trace = run_file(f, a.engine, opts)?;
        if let Some(pcap) = &a.pcap {
            let path = output_path(pcap, many, f);
            finrst::pcap::write_file_snaplen(&trace, &path, Some(a.pcap_snaplen))
                .with_context(|| format!("cannot write {path}"))?;
        }
        let path = output_path(svg, many, f);
        std::fs::write(&path, finrst::ladder::render(&trace))
            .with_context(|| format!("cannot write {path}"))?;
        let text = match a.format {
            Format::Text => trace.to_text(),
            Format::Json => trace.to_json(),
        };
        if !print_end(out.write_all(text.as_bytes()), &mut out, a.format)? {
            return Ok(None);
        }
        trace
    } else {
        // Streamed: each segment is printed (and written to the pcap) when
        // it is final, so a run of any length runs in the same memory.
        let mut w =
            TraceWriter::streaming(&mut out, format).context("cannot create a temporary file")?;
        if let Some(pcap) = &a.pcap {
            let path = output_path(pcap, many, f);
            let file = std::fs::File::create(&path)
                .map(|f| Box::new(std::io::BufWriter::new(f)) as Box<dyn Write>);
            w = file
                .and_then(|p| w.with_pcap_snaplen(p, Some(a.pcap_snaplen)))
                .with_context(|| format!("cannot write {path}"))?;
        }
        let mut sink = progress::Steps::new(&mut w);
        let mut started = progress::starter(sink.bar(), a.engine.real_time());
        let result = run_file_streaming(f, a.engine, opts, &mut sink, &mut started);
        drop(sink);
        let trace = result?;
        let ended = w.end(&trace).map(drop);
        if !print_end(ended, &mut out, a.format)? {
            return Ok(None);
        }
        trace
    };
    Ok(Some(trace))
}

/// Ends one trace's output: a newline after JSON, flushed. `Ok(false)`
/// when the reader went away (a broken pipe is how `| head` says so).
fn print_end(
    written: std::io::Result<()>,
    out: &mut dyn Write,
    format: Format,
) -> anyhow::Result<bool> {
    let r = written
        .and_then(|()| match format {
            Format::Json => out.write_all(b"\n"),
            Format::Text => Ok(()),
        })
        .and_then(|()| out.flush());
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        r => r.context("cannot write the trace").map(|()| true),
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

/// Connections a text report details whatever their ending; past it,
/// only those that did not close normally (`--all`: every one).
const DETAIL_ALL: usize = 50;

fn explain(a: &ExplainArgs) -> anyhow::Result<ExitCode> {
    use finrst::explain::{Filter, Options, TimeStyle};
    use std::io::Write as _;
    let opts = Options {
        filter: Filter {
            stream: a.stream,
            conn: a.conn.clone(),
            rst_only: a.rst_only,
        },
        times: if a.tt {
            TimeStyle::Epoch
        } else {
            TimeStyle::Wall
        },
    };
    let input: Box<dyn std::io::Read> = if a.capture == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(&a.capture)
                .with_context(|| format!("cannot read {}", a.capture))?,
        )
    };
    let what = if a.capture == "-" {
        "standard input".to_string()
    } else {
        a.capture.clone()
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    // Connections are explained while the capture streams by; the text
    // and JSON reports put the summary first, so what comes before it
    // waits in a spool (memory up to a bound, then a temporary file).
    let mut spool = cli::Spool::new();
    // Text: past DETAIL_ALL connections, only those that did not close
    // normally are detailed (`notable`); the first ones are kept in
    // `spool` in case the capture has no more.
    let mut notable = cli::Spool::new();
    let mut shown = 0usize;
    let mut first = true;
    let format = a.format;
    let terse = a.terse;
    let all = a.all || a.terse;
    let mut failed: Option<std::io::Error> = None;
    let end = finrst::explain::explain_stream(input, &opts, |c| {
        let r = match format {
            ExplainFormat::Jsonl => serde_json::to_writer(&mut out, &c)
                .map_err(std::io::Error::other)
                .and_then(|()| out.write_all(b"\n")),
            ExplainFormat::Json => {
                let sep: &[u8] = if first { b"\n    " } else { b",\n    " };
                first = false;
                spool.write_all(sep).and_then(|()| {
                    serde_json::to_writer(&mut spool, &c).map_err(std::io::Error::other)
                })
            }
            ExplainFormat::Text => {
                shown += 1;
                let text = if terse { c.to_terse() } else { c.to_text() };
                let normal = c.cause_id.ending() == finrst::explain::Ending::Fin;
                let mut r = Ok(());
                if all || shown <= DETAIL_ALL {
                    r = spool.write_all(text.as_bytes());
                }
                if !all && !normal && r.is_ok() {
                    r = notable.write_all(text.as_bytes());
                }
                r
            }
        };
        if let Err(e) = r
            && failed.is_none()
        {
            failed = Some(e);
        }
    })
    .with_context(|| format!("cannot read {what}"))?;
    if let Some(e) = failed {
        return Err(e).context("cannot write the report");
    }
    match a.format {
        ExplainFormat::Jsonl => {
            let tail = serde_json::json!({
                "source": a.capture,
                "format": end.format,
                "summary": end.summary,
                "notes": end.notes,
                "stopped": end.stopped.as_ref().map(|s| s.to_string()),
            });
            writeln!(out, "{tail}")?;
        }
        ExplainFormat::Json => {
            let head = serde_json::json!({
                "source": a.capture,
                "format": end.format,
                "tcp_segments": end.summary.segments,
                "summary": end.summary,
                "notes": end.notes,
                "stopped": end.stopped,
            });
            // The head object without its closing brace, then the
            // spooled connections as its last member.
            let head = serde_json::to_string_pretty(&head)?;
            let head = head
                .trim_end()
                .strip_suffix('}')
                .unwrap_or(&head)
                .trim_end();
            write!(out, "{head},\n  \"connections\": [")?;
            spool.copy_to(&mut out)?;
            writeln!(out, "{}]\n}}", if first { "" } else { "\n  " })?;
        }
        ExplainFormat::Text => {
            out.write_all(
                finrst::explain::header_text(&a.capture, &end.format, &end.summary).as_bytes(),
            )?;
            if end.summary.connections == 0 {
                writeln!(out, "\nno TCP connection found")?;
            } else if end.summary.connections > 1 || end.summary.shown != end.summary.connections {
                out.write_all(end.summary.to_text().as_bytes())?;
            }
            if terse && end.summary.shown > 0 {
                writeln!(out)?;
            }
            if all || shown <= DETAIL_ALL {
                spool.copy_to(&mut out)?;
            } else {
                notable.copy_to(&mut out)?;
                let normal = end
                    .summary
                    .endings
                    .get(&finrst::explain::Ending::Fin)
                    .copied()
                    .unwrap_or(0);
                writeln!(
                    out,
                    "\n({normal} connections that closed normally, FIN both ways, are not \
                     detailed: --all details every one)"
                )?;
            }
            out.write_all(finrst::explain::notes_text(&end.notes).as_bytes())?;
        }
    }
    out.flush()?;
    // A damaged capture is explained as far as it goes, and fails.
    if let Some(s) = &end.stopped {
        bail!("{what}: {s}");
    }
    if end.summary.connections == 0 {
        bail!("no TCP connection found in {}", a.capture);
    }
    Ok(ExitCode::SUCCESS)
}

/// The `.sim` files of a directory; an error when there is none.
fn sim_files(dir: &str) -> anyhow::Result<Vec<String>> {
    let files =
        finrst::compare::sim_files(dir).with_context(|| format!("cannot read directory {dir}"))?;
    if files.is_empty() {
        bail!("no .sim files in {dir}");
    }
    Ok(files)
}

fn list(dir: &str) -> anyhow::Result<ExitCode> {
    let mut errors = Vec::new();
    for f in sim_files(dir)? {
        match finrst::script::parse_file(&f) {
            Ok(s) => println!("{:<36} {}", s.name(), s.title),
            Err(e) => errors.push(e),
        }
    }
    // Every script that does not parse gets its line; the last is the
    // command's error.
    match errors.pop() {
        None => Ok(ExitCode::SUCCESS),
        Some(last) => {
            for e in errors {
                eprintln!("finrst: {e}");
            }
            Err(last.into())
        }
    }
}

fn compare(a: &CompareArgs) -> anyhow::Result<ExitCode> {
    let (ea, eb) = a.engines.available()?;
    let opts = RunOptions {
        horizon_us: a.horizon,
        ..a.clock.run_options()
    };
    let mut all_same = true;
    let mut json = Vec::new();
    for f in &a.files {
        let c = finrst::compare::compare_file(f, ea, eb, &opts)?;
        all_same &= c.identical();
        match a.format {
            Format::Text => print!("{}", c.diff_text()),
            Format::Json => json.push(c),
        }
    }
    if a.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    Ok(verdict(all_same))
}

fn fuzz(a: &FuzzArgs) -> anyhow::Result<ExitCode> {
    let mut cfg = CampaignConfig::new(a.engines.pair()?, a.seed, a.count, &a.out);
    cfg.jobs = a.jobs.unwrap_or_else(finrst::fuzz::default_jobs);
    cfg.shrink_budget = a.shrink_budget;
    cfg.keep_all = a.keep_all;
    cfg.opts = a.clock.run_options();
    if let Some(known) = &a.known {
        cfg.known = KnownList::read(known.as_ref())?;
    }
    let bar = progress::Batch::new("fuzz");
    let report = finrst::fuzz::campaign(&cfg, &|event| {
        let Some(b) = &bar else { return };
        match event {
            CampaignEvent::Batch { scenario, progress } => b.show(progress, scenario),
            CampaignEvent::Confirming { differences } => {
                b.say(format!("running {differences} differences again"))
            }
            CampaignEvent::Shrinking { scenario, k, n } => {
                b.say(format!("shrinking {scenario} ({k}/{n})"))
            }
        }
    });
    if let Some(b) = &bar {
        b.clear();
    }
    let report = report?;
    for r in &report.scenarios {
        let name = &r.name;
        match &r.verdict {
            Verdict::Identical => {}
            Verdict::Unstable(first) => {
                println!("{name}: unstable (identical when run again): {first}")
            }
            Verdict::CouldNotRun(e) => println!("{name}: could not run: {e}"),
            Verdict::Known(first) => println!("{name}: differs (known): {first}"),
            Verdict::Differs(d) => println!(
                "{name}: differs ({} -> {} steps, {}): {}",
                d.steps,
                d.shrunk_steps,
                d.file.display(),
                d.why
            ),
        }
    }
    let unstable = report.unstable();
    if unstable > 0 {
        println!("{unstable} unstable (differed once, identical when run again)");
    }
    println!(
        "{}/{} random scenarios identical (seed {})",
        report.identical(),
        report.scenarios.len(),
        report.seed
    );
    if let Some(known) = &a.known {
        println!("{} differences not in {known}", report.unexplained());
    }
    Ok(verdict(report.passed()))
}

fn conform(a: &ConformArgs) -> anyhow::Result<ExitCode> {
    let files = sim_files(&a.dir)?;
    let (ea, eb) = a.engines.available()?;
    let bar = progress::Batch::new("conform");
    let rows = finrst::compare::conform_with(
        &files,
        ea,
        eb,
        &a.clock.run_options(),
        a.jobs.unwrap_or_else(finrst::fuzz::default_jobs),
        &|p, row| {
            if let Some(b) = &bar {
                b.show(p, row.map(|r| r.scenario.as_str()));
            }
        },
    );
    if let Some(b) = &bar {
        b.clear();
    }
    match a.format {
        Format::Text => print!("{}", finrst::compare::table(&rows)),
        Format::Json => println!("{}", finrst::compare::to_json(&rows)),
    }
    Ok(verdict(rows.iter().all(|r| r.identical())))
}

fn book_gen(check: bool, root: &str) -> anyhow::Result<ExitCode> {
    use finrst::bookgen;
    let root = std::path::Path::new(root);
    let files = bookgen::generate(root).context("book-gen")?;
    let (stale, extra) = bookgen::stale(root, &files);
    let (stale_word, extra_word) = if check {
        ("stale:", "extra:")
    } else {
        ("wrote:", "removed:")
    };
    for p in &stale {
        println!("{stale_word} {}", p.display());
    }
    for p in &extra {
        println!("{extra_word} {}", p.display());
    }
    if check {
        let fresh = stale.is_empty() && extra.is_empty();
        if !fresh {
            eprintln!("finrst: the book's generated files are stale; run `finrst book-gen`");
        }
        return Ok(verdict(fresh));
    }
    let changed: Vec<_> = files
        .into_iter()
        .filter(|f| stale.contains(&f.path))
        .collect();
    bookgen::write(root, &changed, &extra).context("book-gen")?;
    Ok(ExitCode::SUCCESS)
}

fn drill(a: &DrillArgs) -> anyhow::Result<ExitCode> {
    use finrst::drill::DrillError;
    let kind = a.engine;
    let env = match a.env {
        DrillEnv::Packetdrill => finrst::drill::Env::Packetdrill,
        DrillEnv::Finrst => finrst::drill::Env::Finrst,
    };
    if a.table {
        let kernel = unsafe { libc::geteuid() } == 0
            && std::env::var("FINRST_SKIP_LINUX").as_deref() != Ok("1");
        for root in &a.paths {
            let files = finrst::drill::survey::pkt_tree(root)?;
            let rows = finrst::drill::survey::survey(&files, kernel, a.jobs, env);
            print!("{}", finrst::drill::survey::table(root, &rows, kernel));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut files = Vec::new();
    for p in &a.paths {
        files.extend(finrst::drill::pkt_files(p)?);
    }
    if files.is_empty() {
        bail!("no .pkt files in {}", a.paths.join(" "));
    }
    kind.check_available()?;
    let bar = progress::count("drill", files.len() as u64);
    let results = finrst::fuzz::par_map(&files, a.jobs, &|f| {
        let r = finrst::drill::run_file_in(f, kind, a.tolerance_usecs, env);
        if let Some(b) = &bar {
            b.inc(1);
        }
        r
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    // The kernel runs in real time, and scripts run side by side share the
    // machine: a script that failed there is run again alone (up to twice)
    // before it is reported.
    let mut results = results;
    if kind == EngineKind::Linux {
        for (f, r) in files.iter().zip(results.iter_mut()) {
            for _ in 0..2 {
                if !matches!(r, Err(DrillError::Failed(..))) {
                    break;
                }
                *r = finrst::drill::run_file_in(f, kind, a.tolerance_usecs, env);
            }
        }
    }
    // A lone script that cannot run is bad input, not a failed drill.
    if let [Err(e @ (DrillError::Read { .. } | DrillError::Parse(_) | DrillError::Engine(_)))] =
        &results[..]
    {
        bail!("{}", finrst::error_text(e));
    }
    let mut passed = 0;
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
            Err(e @ DrillError::Read { .. }) => println!("error: {}", finrst::error_text(e)),
            Err(DrillError::Parse(e)) => println!("{f}: error: {e}"),
            Err(DrillError::Engine(e)) => println!("{f}: engine error: {e}"),
            Err(DrillError::Failed(fail, isn)) => {
                println!("{f}: FAILED\n{}", fail.report(*isn));
            }
        }
    }
    println!("{passed}/{} scripts passed ({})", files.len(), kind.name());
    Ok(verdict(passed == files.len()))
}
