//! The `sim/` corpus on the model engine: one insta snapshot per script
//! (text trace) under `snapshots/model/`, every script's expectations met,
//! and byte-identical output when run twice.

use finrst::engine::{Policy, RunOptions};
use finrst::{EngineKind, run_file};
use std::path::Path;

fn run(path: &Path, policy: Policy) -> finrst::trace::Trace {
    let opts = RunOptions {
        policy,
        ..RunOptions::default()
    };
    run_file(path.to_str().unwrap(), EngineKind::Model, &opts)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn model_traces_match_snapshots() {
    insta::glob!("../sim", "*.sim", |path| {
        let trace = run(path, Policy::Linux);
        insta::with_settings!({
            snapshot_path => "../snapshots/model",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(trace.to_text());
        });
    });
}

#[test]
fn every_scenario_meets_its_expectations_on_the_model() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir("sim").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "sim") {
            let t = run(&path, Policy::Linux);
            checked += t.expectations_checked;
            failures.extend(t.failures.iter().map(|f| f.to_string()));
        }
    }
    assert!(checked > 100, "only {checked} expectations in the corpus");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn runs_are_byte_identical() {
    for entry in std::fs::read_dir("sim").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "sim") {
            let a = run(&path, Policy::Linux);
            let b = run(&path, Policy::Linux);
            assert_eq!(a.to_json(), b.to_json(), "{}", path.display());
            assert_eq!(a.to_text(), b.to_text(), "{}", path.display());
        }
    }
}

#[test]
fn always_fin_hangs_on_the_zero_window() {
    let t = run(Path::new("sim/rfc2525-zero-window.sim"), Policy::AlwaysFin);
    // The client sent FIN, not RST ...
    assert!(
        t.segments
            .iter()
            .any(|s| &*s.src == "client" && s.flags.fin())
    );
    assert!(
        !t.segments
            .iter()
            .any(|s| &*s.src == "client" && s.flags.rst())
    );
    // ... and the server is still probing a zero window at the horizon.
    let server = t
        .open_at_end
        .iter()
        .find(|c| c.host == "server")
        .expect("server connection open at the horizon");
    assert_eq!(server.state, finrst::vocab::TcpState::CloseWait);
    assert!(
        server.detail.contains("probing a zero window"),
        "{}",
        server.detail
    );
    let probes = t
        .segments
        .iter()
        .filter(|s| {
            s.why
                .as_deref()
                .is_some_and(|w| w.starts_with("zero-window probe"))
        })
        .count();
    assert!(probes >= 6, "{probes} probes");
    insta::with_settings!({
        snapshot_path => "../snapshots/model",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!("rfc2525-zero-window-always-fin", t.to_text());
    });
}

/// Every snapshot file belongs to a script that still exists: a renamed or
/// deleted scenario must take its snapshots with it.
#[test]
fn no_orphaned_snapshots() {
    let names = |dir: &str| -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect()
    };
    let sims = names("sim");
    let fixtures = names("tests/fixtures/smol");
    let extra = ["rfc2525-zero-window-always-fin.snap"];
    for (dir, prefix, scripts) in [
        ("snapshots/model", "model_traces_match_snapshots@", &sims),
        ("snapshots/smoltcp", "smoltcp_sim_corpus@", &sims),
        ("snapshots/smoltcp/fixtures", "smoltcp_fixtures@", &fixtures),
    ] {
        for name in names(dir) {
            if extra.contains(&name.as_str()) || std::path::Path::new(dir).join(&name).is_dir() {
                continue;
            }
            let sim = name
                .strip_prefix(prefix)
                .and_then(|n| n.strip_suffix(".snap"))
                .unwrap_or_else(|| panic!("unexpected file {dir}/{name}"));
            assert!(
                scripts.iter().any(|s| s == sim),
                "{dir}/{name} belongs to no script: delete it"
            );
        }
    }
}
