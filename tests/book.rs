//! The book (`book/`): every generated trace, table and ladder is up to date
//! with `sim/` and the code, and every file a chapter includes exists.
//!
//! When a generated file is stale the test fails. Outside CI (`CI` unset)
//! it first rewrites the stale files, so running the test again passes and
//! `git diff book/src/generated` shows what changed; under `CI=true` it
//! only fails, naming the files and the command that refreshes them.

use finrst::bookgen::{self, GENERATED_DIR, REFRESH};
use std::path::Path;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

#[test]
fn generated_files_are_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = bookgen::generate(root).unwrap_or_else(|e| panic!("book generation failed: {e}"));
    let (stale, extra) = bookgen::stale(root, &files);
    if stale.is_empty() && extra.is_empty() {
        return;
    }
    let mut msg = String::new();
    for p in &stale {
        msg.push_str(&format!("  stale: {}\n", p.display()));
    }
    for p in &extra {
        msg.push_str(&format!("  no longer generated: {}\n", p.display()));
    }
    if in_ci() {
        panic!(
            "the book's generated files in {GENERATED_DIR} are out of date:\n{msg}\
             refresh them with `{REFRESH}` and commit the result"
        );
    }
    let changed: Vec<_> = files
        .into_iter()
        .filter(|f| stale.contains(&f.path))
        .collect();
    bookgen::write(root, &changed, &extra).expect("rewrite the generated files");
    panic!(
        "the book's generated files in {GENERATED_DIR} were out of date and have been \
         rewritten (review and commit them):\n{msg}"
    );
}

#[test]
fn generation_is_deterministic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let a = bookgen::generate(root).unwrap();
    let b = bookgen::generate(root).unwrap();
    assert_eq!(a, b);
}

/// Every `{{#include PATH}}` and `<img src="PATH">` of a chapter names a
/// file that exists (mdBook only warns about a missing include).
#[test]
fn chapters_include_only_existing_files() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src");
    let mut missing = Vec::new();
    let mut chapters = 0;
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "md") {
            continue;
        }
        chapters += 1;
        let text = std::fs::read_to_string(&p).unwrap();
        let mut refs = Vec::new();
        for (open, close) in [("{{#include ", "}}"), ("<img src=\"", "\"")] {
            let mut rest = text.as_str();
            while let Some(i) = rest.find(open) {
                rest = &rest[i + open.len()..];
                let end = rest.find(close).unwrap_or(rest.len());
                // `{{#include file:anchor}}` / `file:10:20`: the file part.
                let target = rest[..end].split(':').next().unwrap().trim();
                refs.push(target.to_string());
                rest = &rest[end..];
            }
        }
        for r in refs {
            if !src.join(&r).is_file() {
                missing.push(format!("{}: {r}", p.display()));
            }
        }
    }
    assert!(chapters > 5, "only {chapters} chapters found in book/src");
    assert!(
        missing.is_empty(),
        "missing included files:\n{}",
        missing.join("\n")
    );
}
