//! The book (`book/`): every generated trace, table and ladder is up to date
//! with `sim/` and the code, and every file a chapter includes exists.
//!
//! When a generated file is stale the test fails. Outside CI (`CI` unset)
//! it first rewrites the stale files, so running the test again passes and
//! `git diff book/src/generated` shows what changed; under `CI=true` it
//! only fails, naming the files and the command that refreshes them.

use finrst::bookgen::{self, GENERATED_DIR, REFRESH};
use std::path::{Component, Path, PathBuf};

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

/// The chapters `book/src/SUMMARY.md` lists (mdBook renders no other
/// `.md` file), as paths relative to `book/src`.
fn chapters(src: &Path) -> Vec<PathBuf> {
    let summary = std::fs::read_to_string(src.join("SUMMARY.md")).unwrap();
    let mut v = Vec::new();
    let mut rest = summary.as_str();
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        let end = rest.find(')').unwrap();
        if rest[..end].ends_with(".md") {
            v.push(PathBuf::from(&rest[..end]));
        }
        rest = &rest[end..];
    }
    v
}

/// The targets of `open ... close` in `text`, e.g. every `{{#include X}}`.
fn between(text: &str, open: &str, close: &str) -> Vec<String> {
    let mut v = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(open) {
        rest = &rest[i + open.len()..];
        let end = rest.find(close).unwrap_or(rest.len());
        v.push(rest[..end].to_string());
        rest = &rest[end..];
    }
    v
}

/// `a/b/../c` as `a/c`; `None` if it climbs above its start.
fn normalize(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    Some(out)
}

/// Every `{{#include PATH}}` and `<img src="PATH">` of a chapter names a
/// file that exists (mdBook only warns about a missing include).
#[test]
fn chapters_include_only_existing_files() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src");
    let chapters = chapters(&src);
    assert!(
        chapters.len() > 5,
        "only {} chapters in SUMMARY.md",
        chapters.len()
    );
    let mut missing = Vec::new();
    for ch in &chapters {
        let p = src.join(ch);
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let dir = p.parent().unwrap();
        let mut refs = between(&text, "{{#include ", "}}");
        refs.extend(between(&text, "<img src=\"", "\""));
        for r in refs {
            // `{{#include file:anchor}}` / `file:10:20`: the file part.
            let target = r.split(':').next().unwrap().trim();
            if !dir.join(target).is_file() {
                missing.push(format!("{}: {target}", ch.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "missing included files:\n{}",
        missing.join("\n")
    );
}

/// Every link of every chapter stays inside the book: it names a file
/// under `book/src` (a chapter the summary lists, for a `.md`), so that it
/// works under `mdbook serve` and on a hosted copy, not only from a
/// checkout. Links of an included `.md` table count as the including
/// chapter's, as mdBook resolves them. (CI's mdbook-linkcheck2 checks the
/// built book the same way; this finds it without installing mdBook.)
#[test]
fn links_stay_inside_the_book() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src");
    let chapters = chapters(&src);
    let mut bad = Vec::new();
    for ch in &chapters {
        let p = src.join(ch);
        let mut text = std::fs::read_to_string(&p).unwrap();
        let dir = ch.parent().unwrap_or(Path::new(""));
        for inc in between(&text.clone(), "{{#include ", "}}") {
            if inc.ends_with(".md") {
                let body = std::fs::read_to_string(src.join(dir).join(&inc)).unwrap_or_default();
                text = text.replace(&format!("{{{{#include {inc}}}}}"), &body);
            }
        }
        // Links in code blocks are text, not links.
        let prose: String = text.split("```").step_by(2).collect::<Vec<_>>().join("\n");
        let mut targets = between(&prose, "](", ")");
        targets.extend(between(&prose, "href=\"", "\""));
        targets.extend(between(&prose, "src=\"", "\""));
        for t in targets {
            if t.starts_with("http://") || t.starts_with("https://") || t.starts_with('#') {
                continue;
            }
            let file = t.split('#').next().unwrap();
            let ok = normalize(&dir.join(file)).is_some_and(|rel| {
                src.join(&rel).is_file()
                    && (rel.extension().is_none_or(|x| x != "md") || chapters.contains(&rel))
            });
            if !ok {
                bad.push(format!("{}: {t}", ch.display()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "links that leave the book or name no page of it:\n{}",
        bad.join("\n")
    );
}
