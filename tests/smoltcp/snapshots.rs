//! Text traces on smoltcp, snapshotted. The fixtures under
//! `tests/fixtures/smol/` are written for smoltcp, so their expectations
//! must all hold as well; the `sim/` scripts are written for Linux, and
//! where smoltcp parts from it the failed expectations are part of the
//! snapshot (that is the finding).

use super::run_smol;
use std::path::Path;

#[test]
fn smoltcp_fixtures() {
    insta::with_settings!({
        snapshot_path => "../../snapshots/smoltcp/fixtures",
        prepend_module_to_snapshot => false,
    }, {
        insta::glob!("../fixtures/smol", "*.sim", |p| {
            let t = run_smol(p, 1);
            assert!(
                t.failures.is_empty(),
                "{}: {}",
                p.display(),
                t.failures.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("\n")
            );
            insta::assert_snapshot!(t.to_text());
        });
    });
}

#[test]
fn smoltcp_sim_corpus() {
    // sim/ is filled by the core issue; until it has scripts there is
    // nothing to snapshot (insta's glob! fails on an empty match).
    let sim = Path::new(env!("CARGO_MANIFEST_DIR")).join("sim");
    let any = std::fs::read_dir(&sim)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .any(|e| e.path().extension().is_some_and(|x| x == "sim"))
        })
        .unwrap_or(false);
    if !any {
        return;
    }
    insta::with_settings!({
        snapshot_path => "../../snapshots/smoltcp",
        prepend_module_to_snapshot => false,
    }, {
        insta::glob!("../../sim", "*.sim", |p| {
            insta::assert_snapshot!(run_smol(p, 1).to_text());
        });
    });
}
