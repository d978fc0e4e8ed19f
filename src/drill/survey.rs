//! `finrst drill --table DIR`: every .pkt under a directory, run as
//! written on the model and (as root) on the linux engine, counted per
//! directory: accepted, passed on each engine, the engines' verdicts
//! agreeing, and rejected with the construct that stopped the script.
//!
//! This is how the drill is measured against packetdrill's own suite
//! (gtests/net/tcp): its files are read where they are, never copied.

use super::{DrillError, Env, pkt_files, run_file_in};
use crate::EngineKind;
use std::collections::BTreeMap;

/// What one script did on one engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Ran, and an expectation failed (the first line of the failure).
    Fail(String),
    /// Not run as written: a construct the drill or the engine lacks.
    Rejected(String),
}

impl Verdict {
    fn of(r: &Result<super::Pass, DrillError>) -> Verdict {
        match r {
            Ok(_) => Verdict::Pass,
            Err(DrillError::Parse(e)) => Verdict::Rejected(e.to_string()),
            Err(DrillError::Failed(f, _)) if is_rejection(&f.msg) => Verdict::Rejected(format!(
                "{}:{}:{}: {}",
                f.file,
                f.line,
                f.col,
                first_line(&f.msg)
            )),
            Err(DrillError::Failed(f, _)) => {
                Verdict::Fail(format!("{}:{}: {}", f.file, f.line, first_line(&f.msg)))
            }
            Err(e) => Verdict::Rejected(first_line(&e.to_string()).to_string()),
        }
    }
    pub fn passed(&self) -> bool {
        *self == Verdict::Pass
    }
    pub fn rejected(&self) -> bool {
        matches!(self, Verdict::Rejected(_))
    }
}

/// A failure that says the script uses what this drill does not run
/// (every such message of the executor says "unsupported").
fn is_rejection(msg: &str) -> bool {
    msg.contains("unsupported") || msg.contains("not a sysctl finrst knows")
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// One script's verdicts.
#[derive(Clone, Debug)]
pub struct Row {
    pub file: String,
    pub model: Verdict,
    pub kernel: Option<Verdict>,
}

/// Every .pkt under `root` (recursively, sorted).
pub fn pkt_tree(root: &str) -> Result<Vec<String>, DrillError> {
    let mut out = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(root)];
    while let Some(d) = dirs.pop() {
        let ds = d.display().to_string();
        out.extend(pkt_files(&ds)?);
        let rd = std::fs::read_dir(&d).map_err(|source| DrillError::Read {
            file: ds.clone(),
            source,
        })?;
        for e in rd.flatten() {
            if e.path().is_dir() {
                dirs.push(e.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Runs every script on the model, and on the kernel when `kernel`: up
/// to `jobs` at a time there, then each failure again alone, up to
/// twice (the kernel runs in real time on a shared machine).
pub fn survey(files: &[String], kernel: bool, jobs: usize, env: Env) -> Vec<Row> {
    let model: Vec<Verdict> = crate::fuzz::par_map(files, jobs.max(1), &|f| {
        Verdict::of(&run_file_in(f, EngineKind::Model, None, env))
    });
    let mut kern: Vec<Option<Verdict>> = vec![None; files.len()];
    if kernel {
        let first: Vec<Verdict> = crate::fuzz::par_map(files, jobs.max(1), &|f| {
            Verdict::of(&run_file_in(f, EngineKind::Linux, None, env))
        });
        for (i, v) in first.into_iter().enumerate() {
            let mut v = v;
            for _ in 0..2 {
                if !matches!(v, Verdict::Fail(_)) {
                    break;
                }
                v = Verdict::of(&run_file_in(&files[i], EngineKind::Linux, None, env));
            }
            kern[i] = Some(v);
        }
    }
    files
        .iter()
        .zip(model)
        .zip(kern)
        .map(|((f, m), k)| Row {
            file: f.clone(),
            model: m,
            kernel: k,
        })
        .collect()
}

/// The construct a rejection names: its message without the place.
fn construct(why: &str) -> String {
    // `file:line:col: message` → message.
    let mut it = why.splitn(4, ':');
    let (a, b, c, d) = (it.next(), it.next(), it.next(), it.next());
    let msg = match (a, b, c, d) {
        (Some(_), Some(l), Some(c), Some(m))
            if l.trim().parse::<u32>().is_ok() && c.trim().parse::<u32>().is_ok() =>
        {
            m.trim()
        }
        _ => why,
    };
    let msg = msg.split(" (this subset").next().unwrap_or(msg).trim();
    msg.chars().take(90).collect()
}

/// The table: one line per directory under `root`, a total, the rows
/// that did not pass, and the constructs that stopped scripts, most
/// frequent first.
pub fn table(root: &str, rows: &[Row], kernel: bool) -> String {
    #[derive(Default)]
    struct Count {
        n: usize,
        accepted: usize,
        model: usize,
        kernel: usize,
        both_ran: usize,
        agree: usize,
        rejected: usize,
    }
    let mut per: BTreeMap<String, Count> = BTreeMap::new();
    let mut constructs: BTreeMap<String, usize> = BTreeMap::new();
    let mut total = Count::default();
    for r in rows {
        let rel = r
            .file
            .strip_prefix(root)
            .unwrap_or(&r.file)
            .trim_start_matches('/');
        let dir = match rel.rfind('/') {
            Some(i) => rel[..i].to_string(),
            None => ".".to_string(),
        };
        for c in [per.entry(dir).or_default(), &mut total] {
            c.n += 1;
            if r.model.rejected() {
                c.rejected += 1;
            } else {
                c.accepted += 1;
            }
            c.model += usize::from(r.model.passed());
            if let Some(k) = &r.kernel {
                c.kernel += usize::from(k.passed());
                if !k.rejected() && !r.model.rejected() {
                    c.both_ran += 1;
                    c.agree += usize::from(k.passed() == r.model.passed());
                }
            }
        }
        if let Verdict::Rejected(why) = &r.model {
            *constructs.entry(construct(why)).or_default() += 1;
        }
    }
    let mut s = String::new();
    s.push_str(&format!(
        "{:<24} {:>5} {:>8} {:>10} {:>11} {:>9} {:>8}\n",
        "directory", "files", "accepted", "model pass", "kernel pass", "agree", "rejected"
    ));
    let line = |name: &str, c: &Count| {
        format!(
            "{:<24} {:>5} {:>8} {:>10} {:>11} {:>9} {:>8}\n",
            name,
            c.n,
            c.accepted,
            c.model,
            if kernel {
                c.kernel.to_string()
            } else {
                "-".into()
            },
            if kernel {
                format!("{}/{}", c.agree, c.both_ran)
            } else {
                "-".into()
            },
            c.rejected
        )
    };
    for (d, c) in &per {
        s.push_str(&line(d, c));
    }
    s.push_str(&line("total", &total));
    s.push_str("\nscripts that did not pass:\n");
    for r in rows {
        if r.model.passed() && r.kernel.as_ref().is_none_or(|k| k.passed()) {
            continue;
        }
        let show = |v: &Verdict| match v {
            Verdict::Pass => "pass".to_string(),
            Verdict::Fail(m) => format!("FAIL {m}"),
            Verdict::Rejected(m) => format!("rejected {m}"),
        };
        s.push_str(&format!("  {}\n    model:  {}\n", r.file, show(&r.model)));
        if let Some(k) = &r.kernel {
            s.push_str(&format!("    kernel: {}\n", show(k)));
        }
    }
    let mut c: Vec<(String, usize)> = constructs.into_iter().collect();
    c.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    s.push_str("\nconstructs that stopped scripts (model):\n");
    for (k, n) in c {
        s.push_str(&format!("  {n:>3}  {k}\n"));
    }
    s
}
