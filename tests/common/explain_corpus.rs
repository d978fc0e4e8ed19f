//! Shared by `tests/explain_corpus.rs` (model engine) and
//! `tests/explain_linux.rs` (real kernel): write a scenario's trace as a
//! pcap, explain it (and tcpdump's text of it), and hold the explanation to
//! the scenario's row in `finrst::explain::scenarios::BUILT_TO_SHOW`.

use finrst::explain::scenarios::check;
use finrst::explain::{Report, explain_bytes};
use finrst::trace::Trace;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The `.sim` files of the corpus, sorted.
pub fn sim_files() -> Vec<String> {
    let dir = format!("{}/sim", env!("CARGO_MANIFEST_DIR"));
    let files = finrst::compare::sim_files(&dir).expect("sim/ is readable");
    assert!(
        files.len() >= 30,
        "expected the sim/ corpus, found {} files",
        files.len()
    );
    files
}

/// `sim/foo.sim` → `foo`.
pub fn name_of(path: &str) -> String {
    Path::new(path)
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default()
}

/// Whether tcpdump can be run; missing it is a failure under `CI=true`.
pub fn have_tcpdump() -> bool {
    let ok = Command::new("tcpdump")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok && std::env::var("CI").as_deref() == Ok("true") {
        panic!("tcpdump is not installed, and CI=true requires it");
    }
    if !ok {
        println!("tcpdump not installed: the text renderings are not checked");
    }
    ok
}

/// A fresh temporary directory for one test binary's pcaps.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("finrst-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Every scenario an explanation names must exist in `sim/`.
fn named_scenarios_exist(r: &Report, known: &BTreeSet<String>) -> Result<(), String> {
    let missing: Vec<&String> = r
        .connections
        .iter()
        .flat_map(|c| &c.scenarios)
        .filter(|s| !known.contains(*s))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}: names scenarios not in sim/: {missing:?}",
            r.source
        ))
    }
}

/// What was checked for one scenario.
#[derive(Default)]
pub struct Outcome {
    /// Explanations checked (the pcap, and tcpdump's text when run).
    pub checked: usize,
    pub errors: Vec<String>,
}

/// Writes `trace` as `dir/NAME.pcap` through the library, explains it, and
/// explains `tcpdump -nn -r` of it when `tcpdump` is true.
pub fn check_trace(name: &str, trace: &Trace, dir: &Path, tcpdump: bool) -> Outcome {
    let known: BTreeSet<String> = sim_files().iter().map(|f| name_of(f)).collect();
    let mut out = Outcome::default();
    let path = dir.join(format!("{name}.pcap"));
    if let Err(e) = finrst::pcap::write_file(trace, path.to_str().expect("utf-8 path")) {
        out.errors.push(format!("{name}: writing the pcap: {e}"));
        return out;
    }
    let bytes = std::fs::read(&path).expect("the pcap just written");
    let mut reports = vec![explain_bytes(&format!("{name}.pcap"), &bytes)];
    if tcpdump {
        match Command::new("tcpdump")
            .arg("-nn")
            .arg("-r")
            .arg(&path)
            .output()
        {
            Ok(o) if o.status.success() => reports.push(explain_bytes(
                &format!("tcpdump -nn -r {name}.pcap"),
                &o.stdout,
            )),
            Ok(o) => out.errors.push(format!(
                "{name}: tcpdump failed: {}",
                String::from_utf8_lossy(&o.stderr)
            )),
            Err(e) => out.errors.push(format!("{name}: running tcpdump: {e}")),
        }
    }
    for r in &reports {
        out.checked += 1;
        if r.tcp_segments != trace.segments.len() {
            out.errors.push(format!(
                "{}: read {} TCP segments, the trace has {}",
                r.source,
                r.tcp_segments,
                trace.segments.len()
            ));
        }
        if !r.notes.is_empty() {
            out.errors.push(format!(
                "{}: could not read everything: {:?}",
                r.source, r.notes
            ));
        }
        if let Err(e) = check(name, r) {
            out.errors.push(format!("[{}] {e}", r.source));
        }
        if let Err(e) = named_scenarios_exist(r, &known) {
            out.errors.push(e);
        }
    }
    out
}

/// Fails with every error at once, after saying how much was checked.
pub fn report(engine: &str, scenarios: usize, outcomes: &[Outcome]) {
    let checked: usize = outcomes.iter().map(|o| o.checked).sum();
    let errors: Vec<&String> = outcomes.iter().flat_map(|o| &o.errors).collect();
    println!(
        "{engine}: {scenarios} scenarios, {checked} explanations checked, {} failures",
        errors.len()
    );
    assert!(
        checked >= scenarios,
        "every scenario was explained at least once"
    );
    assert!(
        errors.is_empty(),
        "{engine}: {} failures:\n\n{}",
        errors.len(),
        errors
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}
