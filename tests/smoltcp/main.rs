//! Tests of the smoltcp engines: snapshots of every fixture and `sim/`
//! script, determinism, and the TAP pair (root only).

mod determinism;
mod snapshots;
mod tap;

use finrst::EngineKind;
use finrst::engine::RunOptions;
use finrst::trace::Trace;
use std::path::Path;

/// Runs a script on the smoltcp engine by its path relative to the crate
/// root (traces carry the path, and snapshots must not depend on where
/// the checkout lives).
pub fn run_smol(abs: &Path, seed: u64) -> Trace {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rel = abs.strip_prefix(root).unwrap_or(abs);
    let opts = RunOptions {
        seed,
        ..RunOptions::default()
    };
    finrst::run_file(&rel.to_string_lossy(), EngineKind::Smoltcp, &opts)
        .unwrap_or_else(|e| panic!("{}: {e}", rel.display()))
}
