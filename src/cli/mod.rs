//! The command line's own plumbing, beside `main.rs` and not part of the
//! library: progress bars on standard error.

pub mod progress;
