//! `finrst explain` on every scenario of `sim/` run on the model engine:
//! the pcap written by the library, and tcpdump's text of it, must be
//! explained with the cause the scenario was built to show
//! (`finrst::explain::scenarios::BUILT_TO_SHOW`), naming the scenario.
//! The same over the real kernel is `tests/explain_linux.rs`.

#[path = "common/explain_corpus.rs"]
mod common;

use common::{check_trace, have_tcpdump, name_of, report, sim_files, temp_dir};
use finrst::engine::RunOptions;
use finrst::explain::scenarios::BUILT_TO_SHOW;
use finrst::{EngineKind, run_file};
use std::collections::BTreeSet;

#[test]
fn every_scenario_has_one_row_and_every_row_a_scenario() {
    let files: BTreeSet<String> = sim_files().iter().map(|f| name_of(f)).collect();
    let rows: Vec<&str> = BUILT_TO_SHOW.iter().map(|b| b.name.name()).collect();
    let unique: BTreeSet<String> = rows.iter().map(|s| s.to_string()).collect();
    assert_eq!(unique.len(), rows.len(), "a scenario has two rows");
    let no_row: Vec<&String> = files.difference(&unique).collect();
    let no_file: Vec<&String> = unique.difference(&files).collect();
    assert!(no_row.is_empty(), "scenarios without a row: {no_row:?}");
    assert!(no_file.is_empty(), "rows without a scenario: {no_file:?}");
    assert!(BUILT_TO_SHOW.iter().all(|b| !b.phrase.is_empty()));
}

#[test]
fn model_pcaps_of_the_corpus_name_the_cause_each_scenario_shows() {
    let files = sim_files();
    let dir = temp_dir("explain-corpus-model");
    let tcpdump = have_tcpdump();
    let outcomes: Vec<_> = files
        .iter()
        .map(|f| {
            let name = name_of(f);
            match run_file(f, EngineKind::Model, &RunOptions::default()) {
                Ok(t) => check_trace(&name, &t, &dir, tcpdump),
                Err(e) => common::Outcome {
                    checked: 0,
                    errors: vec![format!("{name}: the model did not run it: {e}")],
                },
            }
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    report("model", files.len(), &outcomes);
}
