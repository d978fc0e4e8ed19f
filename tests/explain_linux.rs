//! `finrst explain` on every scenario of `sim/` run on the real kernel
//! (`--engine linux`): the pcap, and tcpdump's text of it, must be
//! explained with the cause the scenario was built to show, naming it.
//!
//! Needs root (namespaces, TUN). Without it this FAILS with a message,
//! unless FINRST_SKIP_LINUX=1 says to skip (CI is root and never sets it).
//! The scenarios run in parallel threads: they mostly sleep through
//! TIME_WAIT and timers, and the corpus takes about two minutes.

#[path = "common/explain_corpus.rs"]
mod common;

use common::{Outcome, check_trace, have_tcpdump, name_of, report, sim_files, temp_dir};
use finrst::engine::RunOptions;
use finrst::{EngineKind, run_file};

fn root() -> bool {
    // SAFETY: geteuid is a plain query.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("FINRST_SKIP_LINUX").as_deref() == Ok("1") {
        eprintln!("FINRST_SKIP_LINUX=1: skipping explain over the linux engine (not root)");
        return false;
    }
    panic!(
        "explain over the linux engine needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN): run the tests as root, or set FINRST_SKIP_LINUX=1 to skip them"
    );
}

#[test]
fn linux_pcaps_of_the_corpus_name_the_cause_each_scenario_shows() {
    if !root() {
        return;
    }
    let files = sim_files();
    let dir = temp_dir("explain-corpus-linux");
    let tcpdump = have_tcpdump();
    let outcomes: Vec<Outcome> = std::thread::scope(|s| {
        let handles: Vec<_> = files
            .iter()
            .map(|f| {
                let dir = &dir;
                s.spawn(move || {
                    let name = name_of(f);
                    match run_file(f, EngineKind::Linux, &RunOptions::default()) {
                        Ok(t) => check_trace(&name, &t, dir, tcpdump),
                        Err(e) => Outcome {
                            checked: 0,
                            errors: vec![format!("{name}: the linux engine did not run it: {e}")],
                        },
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .zip(&files)
            .map(|(h, f)| {
                h.join().unwrap_or_else(|_| Outcome {
                    checked: 0,
                    errors: vec![format!("{f}: the thread running it panicked")],
                })
            })
            .collect()
    });
    let _ = std::fs::remove_dir_all(&dir);
    report("linux", files.len(), &outcomes);
}
