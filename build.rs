//! Turns the file names of `sim/` into `enum Sim` (`$OUT_DIR/sim.rs`), so
//! that code naming a scenario (explain's causes, the book's tables) names
//! a file that exists: a scenario renamed or removed without its mentions
//! does not compile. The directory is the one definition.

use std::fmt::Write as _;

fn main() {
    println!("cargo::rerun-if-changed=sim");
    let mut names: Vec<String> = std::fs::read_dir("sim")
        .expect("sim/ is next to Cargo.toml")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.strip_suffix(".sim").map(str::to_string)
        })
        .collect();
    names.sort();
    // `close-unread-rst` -> `CloseUnreadRst`.
    let variant = |n: &str| -> String {
        n.split(['-', '_'])
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect()
    };
    let mut o = String::new();
    let _ = writeln!(
        o,
        "/// A scenario of `sim/`, by its file name (generated from the directory by build.rs)."
    );
    let _ = writeln!(
        o,
        "#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]"
    );
    let _ = writeln!(o, "pub enum Sim {{");
    for n in &names {
        let _ = writeln!(o, "    /// `sim/{n}.sim`\n    {},", variant(n));
    }
    let _ = writeln!(o, "}}\n\nimpl Sim {{");
    let _ = writeln!(o, "    /// Every scenario, in file-name order.");
    let _ = writeln!(o, "    pub const ALL: &'static [Sim] = &[");
    for n in &names {
        let _ = writeln!(o, "        Sim::{},", variant(n));
    }
    let _ = writeln!(o, "    ];\n\n    /// The file name without `.sim`.");
    let _ = writeln!(
        o,
        "    pub const fn name(self) -> &'static str {{\n        match self {{"
    );
    for n in &names {
        let _ = writeln!(o, "            Sim::{} => {n:?},", variant(n));
    }
    let _ = writeln!(o, "        }}\n    }}\n}}");
    let out = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("sim.rs");
    std::fs::write(out, o).unwrap();
}
