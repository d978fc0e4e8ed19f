//! The command line's own plumbing, beside `main.rs` and not part of the
//! library: progress bars on standard error, and the JSON Lines writer.

pub mod explore;
pub mod json_lines;
pub mod progress;
pub mod spool;

pub use spool::Spool;
