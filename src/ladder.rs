//! Ladder (sequence) diagrams of a trace, as SVG.

use crate::trace::Trace;

/// The diagram of a trace as SVG text.
pub fn render(trace: &Trace) -> String {
    let _ = trace;
    String::new()
}
