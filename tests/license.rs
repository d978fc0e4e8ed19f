//! finrst is GPL-2.0-only (the model follows Linux's GPL-2.0 TCP code), so
//! every crate it links must offer a licence that GPL-2.0 can take in. This
//! test reads the dependency graph from `cargo metadata` and fails on a
//! crate that does not (Apache-2.0 alone is the usual trap: it is not
//! compatible with GPL version 2).

use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::process::Command;

/// SPDX identifiers compatible with GPL-2.0-only (FSF's list).
const COMPATIBLE: &[&str] = &[
    "MIT",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "ISC",
    "Zlib",
    "0BSD",
    "Unlicense",
    "CC0-1.0",
    "Unicode-3.0",
    "Unicode-DFS-2016",
    "GPL-2.0",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "LGPL-2.1-or-later",
];

/// Whether an SPDX expression (`MIT OR Apache-2.0`, `(MIT OR Apache-2.0)
/// AND Unicode-3.0`, the old `MIT/Apache-2.0`) leaves a GPL-2.0-compatible
/// choice: an `OR` needs one compatible side, an `AND` both.
fn compatible(expr: &str) -> bool {
    let e = expr.replace('/', " OR ");
    // Split the top-level ANDs (parentheses group ORs only, in practice).
    let mut depth = 0;
    let mut parts = vec![String::new()];
    let words: Vec<&str> = e.split_whitespace().collect();
    for w in words {
        depth += w.matches('(').count() as i32 - w.matches(')').count() as i32;
        if w == "AND" && depth == 0 {
            parts.push(String::new());
        } else {
            parts.last_mut().unwrap().push_str(&format!("{w} "));
        }
    }
    parts.iter().all(|p| {
        p.replace(['(', ')'], " ")
            .split(" OR ")
            .any(|alt| COMPATIBLE.contains(&alt.trim()))
    })
}

#[test]
fn the_license_rule_reads_spdx() {
    assert!(compatible("MIT OR Apache-2.0"));
    assert!(compatible("MIT/Apache-2.0"));
    assert!(compatible("(MIT OR Apache-2.0) AND Unicode-3.0"));
    assert!(!compatible("Apache-2.0"));
    assert!(!compatible("MIT AND Apache-2.0"));
}

#[test]
fn every_linked_crate_is_gpl2_compatible() {
    let root = env!("CARGO_MANIFEST_DIR");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(format!("{root}/Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages: HashMap<&str, &Value> = m["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p))
        .collect();
    let nodes: HashMap<&str, &Value> = m["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    // What the library and the binary link: normal and build dependencies,
    // not dev-dependencies.
    let root_id = m["resolve"]["root"].as_str().unwrap();
    let mut seen = BTreeSet::new();
    let mut todo = vec![root_id];
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        for d in nodes[id]["deps"].as_array().unwrap() {
            let linked = d["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null() || k["kind"] == "build");
            if linked {
                todo.push(d["pkg"].as_str().unwrap());
            }
        }
    }
    let bad: Vec<String> = seen
        .iter()
        .filter(|id| **id != root_id)
        .map(|id| packages[id])
        .filter(|p| !compatible(p["license"].as_str().unwrap_or("")))
        .map(|p| format!("{} {}: {}", p["name"], p["version"], p["license"]))
        .collect();
    assert!(seen.len() > 20, "the graph looks empty: {seen:?}");
    assert!(
        bad.is_empty(),
        "not GPL-2.0-compatible:\n{}",
        bad.join("\n")
    );
}
