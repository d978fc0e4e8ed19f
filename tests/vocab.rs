//! One definition per fact: the Linux names of TCP states, errnos, TcpExt
//! counters, RST reasons and sysctls are spelled in `src/vocab/` only.
//! Everywhere else the code names them through the types (a misspelled
//! `Counter::TCPAbortOnClsoe` does not compile), so this test looks for a
//! string literal that is exactly one of the names anywhere else in `src/`.

use finrst::vocab::{Counter, Errno, RstReason, Sysctl, TcpState};
use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_linux_name_is_spelled_in_the_vocabulary_only() {
    let mut names: Vec<String> = Vec::new();
    names.extend(TcpState::ALL.iter().map(|s| s.name().to_string()));
    names.extend(Counter::ALL.iter().map(|c| c.name().to_string()));
    names.extend(RstReason::ALL.iter().map(|r| r.name().to_string()));
    names.extend(
        Errno::NAMED
            .iter()
            .filter_map(|e| e.name())
            .map(str::to_string),
    );
    names.extend(Sysctl::ALL.iter().map(|s| s.name().to_string()));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut found = Vec::new();
    for f in files {
        if f.starts_with(root.join("src/vocab")) {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            // Comments may name what they explain.
            if line.trim_start().starts_with("//") {
                continue;
            }
            for n in &names {
                if line.contains(&format!("\"{n}\"")) {
                    found.push(format!(
                        "{}:{}: \"{n}\"",
                        f.strip_prefix(root).unwrap().display(),
                        i + 1
                    ));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "Linux names spelled outside src/vocab (use the vocabulary's types):\n{}",
        found.join("\n")
    );
}
