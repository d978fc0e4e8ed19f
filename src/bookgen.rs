//! The book's generated files: every trace, table and ladder diagram the
//! mdBook tutorial in `book/` shows, produced from the scenarios in `sim/`
//! by the same code `finrst run`, `finrst compare` and `finrst explain` use.
//!
//! The chapters pull these files in with `{{#include generated/...}}` (text
//! and tables) or `<img src="generated/...svg">` (ladders), so nothing in
//! the book is written by hand. Each scenario of `sim/` also gets a page
//! ([`SCENARIO_PAGES`]), listed at the end of the summary ([`SUMMARY`]):
//! the chapters link there rather than to `sim/`, outside the book, where
//! a served or hosted copy has nothing. [`generate`] returns every file
//! in memory; `finrst book-gen` writes them, `finrst book-gen --check` and
//! `tests/book.rs` fail when a committed file differs.
//!
//! Everything is deterministic: the model and smoltcp engines run on a
//! virtual clock with a fixed seed. The one table that needs the real
//! kernel (model vs Linux) is rendered from a committed JSON file,
//! `book/data/conform-model-linux.json`, written by `finrst conform sim
//! --format json` as root; see [`CONFORM_JSON`].

use crate::compare::{self, Section};
use crate::engine::{HostSpec, Policy, RunOptions};
use crate::trace::{Trace, relative};
use crate::vocab::{Counter, Errno, Sim, TcpState};
use crate::{EngineKind, make_engine, runner, script};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Where the generated files go, relative to the repository root.
pub const GENERATED_DIR: &str = "book/src/generated";
/// The model-vs-kernel conformance result the book renders (relative to the
/// repository root). Refresh it as root with
/// `finrst conform sim --format json > book/data/conform-model-linux.json`.
pub const CONFORM_JSON: &str = "book/data/conform-model-linux.json";
/// The command that rewrites the generated files.
pub const REFRESH: &str = "cargo run -- book-gen";
/// One page per scenario of `sim/`, in this directory under
/// [`GENERATED_DIR`]: the chapters link there, not to `sim/` itself, so
/// that every link stays inside the book when it is served or hosted.
pub const SCENARIO_PAGES: &str = "scenarios";
/// The book's table of contents (relative to the repository root). Its
/// hand-written part ends with [`SUMMARY_MARK`]; [`generate`] writes the
/// rest, the list of scenario pages, since mdBook renders only the pages
/// the summary lists.
pub const SUMMARY: &str = "book/src/SUMMARY.md";
/// The line of [`SUMMARY`] after which the scenario pages are listed.
pub const SUMMARY_MARK: &str =
    "<!-- Everything below this line is written by `cargo run -- book-gen`. -->";

/// One generated file: its path relative to the repository root, and text.
#[derive(Clone, Debug, PartialEq)]
pub struct GenFile {
    pub path: PathBuf,
    pub text: String,
}

/// A run the book shows.
struct Run {
    scenario: Sim,
    engine: EngineKind,
    policy: Policy,
    /// Also draw the ladder diagram.
    ladder: bool,
    /// `--horizon`, seconds (the script's own when `None`).
    horizon_s: Option<u64>,
}

const fn model(scenario: Sim, ladder: bool) -> Run {
    Run {
        scenario,
        engine: EngineKind::Model,
        policy: Policy::Linux,
        ladder,
        horizon_s: None,
    }
}

/// The traces and ladders in the chapters.
const RUNS: &[Run] = &[
    model(Sim::CloseFinHandshake, true),
    model(Sim::Seed000EpolloutUnread, true),
    Run {
        engine: EngineKind::Smoltcp,
        ..model(Sim::Seed000EpolloutUnread, false)
    },
    model(Sim::Seed001FullRead, false),
    model(Sim::Seed001PartialRead, true),
    model(Sim::Seed001ShutdownWr, true),
    model(Sim::Seed001ShutdownRd, true),
    model(Sim::Seed002OobReadClose, false),
    model(Sim::Seed002KillClient, true),
    model(Sim::OobInlineDrained, false),
    model(Sim::Seed003LingerZero, true),
    model(Sim::Seed003LingerZeroUnread, false),
    model(Sim::Seed003LingerTimeout, true),
    model(Sim::Seed004HttpUnread, true),
    model(Sim::Seed004HttpDrained, true),
    model(Sim::Rfc2525ZeroWindow, true),
    Run {
        policy: Policy::AlwaysFin,
        horizon_s: Some(120),
        ..model(Sim::Rfc2525ZeroWindow, true)
    },
    Run {
        engine: EngineKind::Smoltcp,
        horizon_s: Some(300),
        ..model(Sim::Rfc2525ZeroWindow, true)
    },
];

impl Run {
    /// `seed000-epollout-unread`, `rfc2525-zero-window.always-fin`,
    /// `rfc2525-zero-window.smoltcp`.
    fn stem(&self) -> String {
        let mut s = self.scenario.to_string();
        if self.engine != EngineKind::Model {
            s.push('.');
            s.push_str(self.engine.name());
        }
        if self.policy != Policy::Linux {
            s.push('.');
            s.push_str(self.policy.name());
        }
        s
    }
}

/// What shows that a scenario reaches a branch of `__tcp_close`.
enum Evidence {
    /// A segment whose reason contains this text.
    Why(&'static str),
    /// A call whose note contains this text.
    Note(&'static str),
    /// The last close() of the host, with no segment from it afterwards.
    SilentLastClose(&'static str),
    /// A counter that moved on a host.
    Counter(&'static str, Counter),
}

/// One row of the branch table: the branch as numbered in
/// `src/model/close.rs`, what it does, the scenario that reaches it.
struct Branch {
    number: &'static str,
    kernel: &'static str,
    scenario: Sim,
    evidence: Evidence,
}

const BRANCHES: &[Branch] = &[
    Branch {
        number: "2",
        kernel: "LISTEN: `inet_csk_listen_stop` resets the accept queue",
        scenario: Sim::ListenCloseAcceptQueue,
        evidence: Evidence::Why("inet_csk_listen_stop"),
    },
    Branch {
        number: "3, 6",
        kernel: "unread data: `tcp_send_active_reset`, TCPAbortOnClose",
        scenario: Sim::CloseUnreadRst,
        evidence: Evidence::Why("RFC 2525 2.17"),
    },
    Branch {
        number: "3, 6",
        kernel: "unread urgent byte (recv(MSG_OOB) does not consume it)",
        scenario: Sim::Seed002OobReadClose,
        evidence: Evidence::Note("unread byte"),
    },
    Branch {
        number: "4",
        kernel: "already CLOSE (an RST came first): nothing sent",
        scenario: Sim::ResetThenSend,
        evidence: Evidence::SilentLastClose("server"),
    },
    Branch {
        number: "5",
        kernel: "TCP_REPAIR: `tcp_disconnect` in repair mode, nothing sent",
        scenario: Sim::RepairClose,
        evidence: Evidence::Note("TCP_REPAIR"),
    },
    Branch {
        number: "7",
        kernel: "SO_LINGER {1, 0}: `tcp_disconnect`, TCPAbortOnData",
        scenario: Sim::CloseLingerZero,
        evidence: Evidence::Why("SO_LINGER {1, 0}"),
    },
    Branch {
        number: "6 before 7",
        kernel: "SO_LINGER {1, 0} and unread data: the unread branch wins",
        scenario: Sim::CloseLingerZeroUnread,
        evidence: Evidence::Counter("client", Counter::TCPAbortOnClose),
    },
    Branch {
        number: "8",
        kernel: "`tcp_close_state` + `tcp_send_fin`: ESTABLISHED -> FIN_WAIT1",
        scenario: Sim::CloseFinHandshake,
        evidence: Evidence::Why("tcp_close_state"),
    },
    Branch {
        number: "8",
        kernel: "`tcp_close_state`: CLOSE_WAIT -> LAST_ACK",
        scenario: Sim::Seed004HttpDrained,
        evidence: Evidence::Why("tcp_close_state"),
    },
    Branch {
        number: "9",
        kernel: "SO_LINGER {1, N}: close() blocks; running out sends no RST",
        scenario: Sim::CloseLingerTimeout,
        evidence: Evidence::Note("linger time ran out"),
    },
    Branch {
        number: "9",
        kernel: "a dying process does not linger (`PF_EXITING`)",
        scenario: Sim::ExitLingerIgnored,
        evidence: Evidence::Why("tcp_close_state"),
    },
    Branch {
        number: "10",
        kernel: "orphan in FIN_WAIT2, TCP_LINGER2 < 0: RST, TCPAbortOnLinger",
        scenario: Sim::Linger2NegativeFinWait2,
        evidence: Evidence::Why("TCP_LINGER2 < 0"),
    },
    Branch {
        number: "10",
        kernel: "orphan in FIN_WAIT2: a time-wait socket for `tcp_fin_time`",
        scenario: Sim::FinWait2Timeout,
        evidence: Evidence::Counter("client", Counter::TWKilled),
    },
];

/// Why a generated file could not be made: the file or scenario, and the
/// error underneath.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct BookError {
    what: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl From<String> for BookError {
    /// A finding of the generator itself (a missing line, a branch whose
    /// evidence the trace lacks).
    fn from(what: String) -> BookError {
        BookError { what, source: None }
    }
}

/// Wraps an error with the file or scenario it concerns.
fn at<E: std::error::Error + Send + Sync + 'static>(
    what: impl ToString,
) -> impl FnOnce(E) -> BookError {
    let what = what.to_string();
    move |e| BookError {
        what,
        source: Some(Box::new(e)),
    }
}

/// Every generated file, in a fixed order. `root` is the repository root
/// (the directory holding `sim/` and `book/`).
pub fn generate(root: &Path) -> Result<Vec<GenFile>, BookError> {
    let mut out = Vec::new();
    let gen_dir = Path::new(GENERATED_DIR);
    let mut put = |name: String, text: String| {
        out.push(GenFile {
            path: gen_dir.join(name),
            text,
        });
    };

    for r in RUNS {
        let horizon = r.horizon_s.map(|s| s * 1_000_000);
        let t = run_with(root, r.scenario.name(), r.engine, r.policy, horizon)?;
        put(format!("{}.trace.txt", r.stem()), t.to_text());
        if r.ladder {
            put(format!("{}.svg", r.stem()), crate::ladder::render(&t));
        }
    }

    put("scenarios.md".into(), scenario_table(root)?);
    for n in sim_names(root)? {
        put(format!("{SCENARIO_PAGES}/{n}.md"), scenario_page(root, &n)?);
    }
    put("close-branches.md".into(), branch_table(root)?);
    put("model-vs-smoltcp.md".into(), smoltcp_table(root)?);
    put("model-vs-linux.md".into(), linux_table(root)?);
    put("script-names.md".into(), script_names());

    // `finrst explain` on a pcap of a model run.
    let t = run(
        root,
        Sim::Seed004HttpUnread.name(),
        EngineKind::Model,
        Policy::Linux,
    )?;
    let pcap = crate::pcap::to_bytes(&t).map_err(at("the seed004 pcap"))?;
    let report = crate::explain::explain_bytes("seed004.pcap", &pcap);
    put("explain-seed004.txt".into(), report.to_text());
    put("explain-causes.md".into(), causes_table());

    out.push(GenFile {
        path: PathBuf::from(SUMMARY),
        text: summary(root)?,
    });
    Ok(out)
}

/// The paths of [`generate`]'s files that differ from what is on disk
/// under `root` (missing files included), and the files in the generated
/// directory that [`generate`] no longer makes.
pub fn stale(root: &Path, files: &[GenFile]) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let differ = files
        .iter()
        .filter(|f| std::fs::read_to_string(root.join(&f.path)).ok().as_deref() != Some(&f.text))
        .map(|f| f.path.clone())
        .collect();
    let mut extra = Vec::new();
    let mut dirs = vec![PathBuf::from(GENERATED_DIR)];
    while let Some(dir) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(root.join(&dir)) else {
            continue;
        };
        for e in rd.flatten() {
            let rel = dir.join(e.file_name());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(rel);
            } else if !files.iter().any(|f| f.path == rel) {
                extra.push(rel);
            }
        }
    }
    extra.sort();
    (differ, extra)
}

/// Writes the given files under `root` and removes the extra ones.
pub fn write(root: &Path, files: &[GenFile], extra: &[PathBuf]) -> std::io::Result<()> {
    for f in files {
        let p = root.join(&f.path);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(p, &f.text)?;
    }
    for p in extra {
        std::fs::remove_file(root.join(p))?;
    }
    Ok(())
}

/// Runs one scenario of `sim/` the way `finrst run` does, but naming the
/// file `sim/NAME.sim` whatever `root` is, so that the output does not
/// depend on where the repository lives.
fn run(
    root: &Path,
    scenario: &str,
    engine: EngineKind,
    policy: Policy,
) -> Result<Trace, BookError> {
    run_with(root, scenario, engine, policy, None)
}

fn run_with(
    root: &Path,
    scenario: &str,
    engine: EngineKind,
    policy: Policy,
    horizon_us: Option<u64>,
) -> Result<Trace, BookError> {
    let shown = format!("sim/{scenario}.sim");
    let text = std::fs::read_to_string(root.join(&shown)).map_err(at(&shown))?;
    let s = script::parse(&shown, &text).map_err(at(&shown))?;
    let opts = RunOptions {
        policy,
        ..RunOptions::default()
    };
    let mut e = make_engine(engine, &HostSpec::for_hosts(&s.hosts), &opts).map_err(at(&shown))?;
    runner::run(&s, e.as_mut(), &opts, horizon_us).map_err(at(&shown))
}

fn sim_names(root: &Path) -> Result<Vec<String>, BookError> {
    let mut v: Vec<String> = std::fs::read_dir(root.join("sim"))
        .map_err(at("sim/"))?
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.strip_suffix(".sim").map(str::to_string)
        })
        .collect();
    v.sort();
    Ok(v)
}

/// Escapes text for a Markdown table cell: `|` everywhere, and `[`/`]`
/// outside code spans, so that a reason tag such as `[TCP_STATE]` is not
/// read as a reference link (mdbook-linkcheck2 warns about those).
fn cell(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    let mut in_code = false;
    for c in s.chars() {
        match c {
            '`' => in_code = !in_code,
            '|' => o.push('\\'),
            '[' | ']' if !in_code => o.push('\\'),
            _ => {}
        }
        o.push(c);
    }
    o
}

/// A segment in one short line: `client > server R. seq 1 ack 2 len 0`.
fn short_segment(s: &crate::segment::RelSegment) -> String {
    let mut l = format!("{} > {} {} seq {}", s.src, s.dst, s.flags, s.seq);
    if let Some(a) = s.ack {
        let _ = write!(l, " ack {a}");
    }
    if s.win == 0 {
        l.push_str(" win 0");
    }
    if s.len > 0 {
        let _ = write!(l, " len {}", s.len);
    }
    l
}

/// The link to a scenario's page from a chapter in `book/src` (the
/// generated tables are included into those chapters, and mdBook resolves
/// an included file's links from the including chapter).
fn scenario_link(name: &str) -> String {
    format!("[`{name}`](generated/{SCENARIO_PAGES}/{name}.md)")
}

fn parse_sim(root: &Path, name: &str) -> Result<script::Script, BookError> {
    let p = format!("sim/{name}.sim");
    let text = std::fs::read_to_string(root.join(&p)).map_err(at(&p))?;
    script::parse(&p, &text).map_err(at(&p))
}

/// Every scenario with its title, as `finrst list` prints them.
fn scenario_table(root: &Path) -> Result<String, BookError> {
    let mut o = String::from("| scenario | title |\n| --- | --- |\n");
    for n in sim_names(root)? {
        let s = parse_sim(root, &n)?;
        let _ = writeln!(o, "| {} | {} |", scenario_link(&n), cell(&s.title));
    }
    Ok(o)
}

/// A cause of `finrst explain` as its JSON `cause_id` (`unread-data`).
fn cause_id(c: crate::explain::Cause) -> String {
    c.id()
}

/// One scenario's page: its title, its script, what `finrst explain`
/// must say of its capture, and the traces and ladders the book generates
/// for it.
fn scenario_page(root: &Path, name: &str) -> Result<String, BookError> {
    let s = parse_sim(root, name)?;
    let mut o = format!("# {name}\n\n");
    if !s.title.is_empty() {
        let _ = writeln!(o, "{}\n", cell(&s.title));
    }
    // The script itself, included at build time (this page is four
    // directories below the repository root).
    let _ = writeln!(
        o,
        "`sim/{name}.sim`:\n\n```text\n{{{{#include ../../../../sim/{name}.sim}}}}\n```\n"
    );
    if let Some(b) = crate::explain::scenarios::built_to_show(name) {
        let _ = writeln!(
            o,
            "Built to show: {} (`finrst explain` of its capture: `{}`).\n",
            cell(b.shows),
            cause_id(b.cause)
        );
    }
    let _ = writeln!(
        o,
        "Run it from a checkout of finrst (see [Getting started](../../start.md)):\n\n\
         ```sh\ncargo run -- run sim/{name}.sim --ladder {name}.svg\n```"
    );
    for r in RUNS.iter().filter(|r| r.scenario.name() == name) {
        let stem = r.stem();
        let mut how = format!("on the {} engine", r.engine.name());
        if r.engine == EngineKind::Model {
            let _ = write!(how, ", {} policy", r.policy.name());
        }
        if let Some(h) = r.horizon_s {
            let _ = write!(how, ", `--horizon {h}`");
        }
        let _ = writeln!(
            o,
            "\n## The trace {how}\n\n```text\n{{{{#include ../{stem}.trace.txt}}}}\n```"
        );
        if r.ladder {
            let _ = writeln!(
                o,
                "\n<div class=\"ladder\"><a href=\"../{stem}.svg\"><img src=\"../{stem}.svg\" alt=\"ladder diagram of {stem}\"></a></div>"
            );
        }
    }
    Ok(o)
}

/// The causes `finrst explain` knows, each with the scenarios built to
/// show it (from [`crate::explain::scenarios::BUILT_TO_SHOW`]).
fn causes_table() -> String {
    let mut by_cause: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for b in crate::explain::scenarios::BUILT_TO_SHOW {
        by_cause
            .entry(cause_id(b.cause))
            .or_default()
            .push(scenario_link(b.name.name()));
    }
    let mut o = String::from("| `cause_id` | scenarios built to show it |\n| --- | --- |\n");
    for (c, names) in &by_cause {
        let _ = writeln!(o, "| `{c}` | {} |", names.join(", "));
    }
    o
}

/// [`SUMMARY`]: its hand-written part, up to and including
/// [`SUMMARY_MARK`], then the scenarios chapter (`book/src/scenarios.md`)
/// with one entry per scenario page under it. The chapter's own line is
/// written here too: mdBook drops the nested entries of an item that an
/// HTML comment (the mark) separates from them.
fn summary(root: &Path) -> Result<String, BookError> {
    let text = std::fs::read_to_string(root.join(SUMMARY)).map_err(at(SUMMARY))?;
    let end = text
        .find(SUMMARY_MARK)
        .ok_or_else(|| format!("{SUMMARY}: no line {SUMMARY_MARK}"))?;
    let mut o = text[..end + SUMMARY_MARK.len()].to_string();
    o.push_str("\n- [Every scenario](scenarios.md)\n");
    for n in sim_names(root)? {
        let _ = writeln!(o, "    - [{n}](generated/{SCENARIO_PAGES}/{n}.md)");
    }
    Ok(o)
}

/// The branches of `__tcp_close`, each with a scenario that reaches it and
/// the line of its trace that shows it. Fails if a scenario no longer
/// shows its branch.
fn branch_table(root: &Path) -> Result<String, BookError> {
    let mut o = String::from(
        "| branch | what the kernel does | scenario | what the model's trace shows |\n| --- | --- | --- | --- |\n",
    );
    for b in BRANCHES {
        let t = run(root, b.scenario.name(), EngineKind::Model, Policy::Linux)?;
        let shown = evidence(&t, &b.evidence).ok_or_else(|| {
            format!(
                "sim/{}.sim no longer shows branch {} of __tcp_close ({})",
                b.scenario, b.number, b.kernel
            )
        })?;
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} |",
            b.number,
            b.kernel.replace('|', "\\|"),
            scenario_link(b.scenario.name()),
            cell(&shown)
        );
    }
    Ok(o)
}

fn evidence(t: &Trace, e: &Evidence) -> Option<String> {
    let segs = relative(&t.segments);
    match e {
        Evidence::Why(w) => segs.iter().find_map(|s| {
            let why = s.why.as_deref()?;
            why.contains(w).then(|| {
                format!(
                    "`{}` at {}: {why}",
                    short_segment(s),
                    crate::trace::fmt_time(s.time_us)
                )
            })
        }),
        Evidence::Note(n) => t.calls.iter().find_map(|c| {
            let note = c.note.as_deref()?;
            note.contains(n).then(|| {
                format!(
                    "`{}.{} {} = {}` ({note})",
                    c.host,
                    c.sock,
                    c.call,
                    c.result_text()
                )
            })
        }),
        Evidence::SilentLastClose(h) => {
            let c = t
                .calls
                .iter()
                .rev()
                .find(|c| c.host == *h && c.call == "close()")?;
            let after = segs
                .iter()
                .filter(|s| s.src == *h && s.time_us >= c.time_us)
                .count();
            (after == 0).then(|| {
                format!(
                    "`{}.{} close() = {}` at {}, and no segment from {h} after it",
                    c.host,
                    c.sock,
                    c.result_text(),
                    crate::trace::fmt_time(c.time_us)
                )
            })
        }
        Evidence::Counter(h, n) => {
            let v = *t.counters.get(*h)?.get(n)?;
            (v != 0).then(|| format!("counter `{h} {n} {v:+}`"))
        }
    }
}

/// The first line where two sections part, as (a's line, b's line).
fn first_difference(s: &Section) -> Option<(String, String)> {
    let n = s.a.len().max(s.b.len());
    (0..n).find_map(|i| {
        let a = s.a.get(i);
        let b = s.b.get(i);
        (a != b).then(|| {
            (
                a.cloned().unwrap_or_else(|| "(nothing)".into()),
                b.cloned().unwrap_or_else(|| "(nothing)".into()),
            )
        })
    })
}

/// `client.40000 > server.9999 [R.] seq 1 ack 2 len 0` without ports.
fn drop_ports(l: &str) -> String {
    l.split(' ')
        .map(|w| match w.rsplit_once('.') {
            Some((h, p))
                if !h.is_empty() && p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty() =>
            {
                h.to_string()
            }
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The model (Linux) vs smoltcp on every scenario: segments, calls and
/// states, and the first segment where they part.
fn smoltcp_table(root: &Path) -> Result<String, BookError> {
    let mut o = String::from(
        "| scenario | segments | calls | first segment that differs: model (Linux) / smoltcp |\n| --- | --- | --- | --- |\n",
    );
    let mut same_segs = 0;
    let names = sim_names(root)?;
    for n in &names {
        let a = run(root, n, EngineKind::Model, Policy::Linux)?;
        let b = run(root, n, EngineKind::Smoltcp, Policy::Linux)?;
        let c = compare::compare(&a, &b);
        let mark = |s: &Section| if s.same() { "same" } else { "differ" };
        if c.segments.same() {
            same_segs += 1;
        }
        let first = match first_difference(&c.segments) {
            Some((x, y)) => format!("`{}` / `{}`", drop_ports(&x), drop_ports(&y)),
            None => String::new(),
        };
        let _ = writeln!(
            o,
            "| `{n}` | {} | {} | {} |",
            mark(&c.segments),
            mark(&c.calls),
            cell(&first)
        );
    }
    let _ = writeln!(
        o,
        "\nSegments (flags, seq, ack, length) identical in {same_segs} of {} scenarios.",
        names.len()
    );
    Ok(o)
}

#[derive(serde::Deserialize)]
struct ConformJson {
    summary: String,
    scenarios: Vec<ConformRow>,
}

#[derive(serde::Deserialize)]
struct ConformRow {
    scenario: String,
    segments: Option<bool>,
    windows: Option<bool>,
    calls: Option<bool>,
    counters: Option<bool>,
    states: Option<bool>,
    error: Option<String>,
    #[serde(default)]
    diffs: BTreeMap<String, Vec<String>>,
}

/// The model vs the real kernel, from the committed `finrst conform` JSON.
fn linux_table(root: &Path) -> Result<String, BookError> {
    let text = std::fs::read_to_string(root.join(CONFORM_JSON)).map_err(at(CONFORM_JSON))?;
    let j: ConformJson = serde_json::from_str(&text).map_err(at(CONFORM_JSON))?;
    let mut o = String::from(
        "| scenario | segments | windows | calls | counters | states |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    let mark = |b: Option<bool>| match b {
        Some(true) => "same",
        Some(false) => "**differ**",
        None => "-",
    };
    for r in &j.scenarios {
        if let Some(e) = &r.error {
            let _ = writeln!(o, "| `{}` | error: {} | | | | |", r.scenario, cell(e));
            continue;
        }
        let _ = writeln!(
            o,
            "| `{}` | {} | {} | {} | {} | {} |",
            r.scenario,
            mark(r.segments),
            mark(r.windows),
            mark(r.calls),
            mark(r.counters),
            mark(r.states)
        );
    }
    let _ = writeln!(o, "\n{}.", j.summary);
    let missing: Vec<String> = sim_names(root)?
        .into_iter()
        .filter(|n| !j.scenarios.iter().any(|r| &r.scenario == n))
        .collect();
    if !missing.is_empty() {
        let _ = writeln!(
            o,
            "\nNot in this run (added to `sim/` since): {}.",
            missing
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let differing: Vec<&ConformRow> = j.scenarios.iter().filter(|r| !r.diffs.is_empty()).collect();
    if !differing.is_empty() {
        let _ = writeln!(o, "\nWhere they differ (`-` the model, `+` the kernel):\n");
        o.push_str("```text\n");
        for r in differing {
            let _ = writeln!(o, "{}:", r.scenario);
            for (k, lines) in &r.diffs {
                let _ = writeln!(o, "  {k}:");
                for l in lines.iter().take(20) {
                    let _ = writeln!(o, "    {l}");
                }
                if lines.len() > 20 {
                    let _ = writeln!(o, "    ... {} more lines", lines.len() - 20);
                }
            }
        }
        o.push_str("```\n");
    }
    Ok(o)
}

/// The names scripts may use, from the parser's own lists.
fn script_names() -> String {
    let mut o = String::new();
    let list = |v: &[&str]| {
        v.iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let states: Vec<&str> = TcpState::ALL.iter().map(|s| s.name()).collect();
    let errnos: Vec<&str> = Errno::NAMED.iter().filter_map(|e| e.name()).collect();
    let counters: Vec<&str> = Counter::ALL
        .iter()
        .filter(|c| c.reported())
        .map(|c| c.name())
        .collect();
    let _ = writeln!(o, "- states: {}", list(&states));
    let _ = writeln!(o, "- errnos: {}", list(&errnos));
    let _ = writeln!(o, "- counters: {}", list(&counters));
    let ev: Vec<&str> = script::epoll::NAMES.iter().map(|(n, _)| *n).collect();
    let _ = writeln!(o, "- epoll events: {}", list(&ev));
    o
}
