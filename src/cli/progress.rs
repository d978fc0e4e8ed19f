//! Progress bars on standard error, drawn only when it is a terminal.

use finrst::trace::{CallRecord, Head, TraceSink, TraceWriter};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("a valid template")
        .progress_chars("=> ")
}

/// A bar that counts items (`drill`'s scripts), or `None` when standard
/// error is not a terminal.
pub fn count(what: &str, total: u64) -> Option<ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let b = ProgressBar::new(total);
        b.set_style(style(
            "{msg} [{bar:30}] {pos}/{len} ({elapsed}, ~{eta} left)",
        ));
        b.set_message(what.to_string());
        b
    })
}

/// A bar for a batch of scenarios (`conform`, `fuzz`), or `None` when
/// standard error is not a terminal. It counts estimated run time
/// ([`finrst::fuzz::Progress`]), not scenarios, so its time left holds
/// when one scenario is much longer than the rest.
pub struct Batch {
    bar: ProgressBar,
    what: &'static str,
}

impl Batch {
    pub fn new(what: &'static str) -> Option<Batch> {
        std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(style(
                "{prefix} [{bar:30}] {percent:>3}% ({elapsed}, ~{eta} left) {msg}",
            ));
            bar.set_prefix(what);
            Batch { bar, what }
        })
    }

    /// The batch is this far; `last` just finished.
    pub fn show(&self, p: finrst::fuzz::Progress, last: Option<&str>) {
        self.bar.set_length(p.total_us);
        self.bar.set_position(p.done_us);
        self.bar
            .set_prefix(format!("{} {}/{}", self.what, p.finished, p.count));
        if let Some(name) = last {
            self.bar.set_message(name.to_string());
        }
    }

    /// What is happening once the batch is done (reruns, shrinking).
    pub fn say(&self, msg: String) {
        self.bar.set_prefix(self.what);
        self.bar.set_message(msg);
    }

    pub fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

/// A trace sink that writes the trace and moves a bar of the run's steps.
/// The bar stays hidden unless the run is long (a real-time engine, or
/// many steps) and standard error a terminal; it is cleared when the sink
/// is dropped.
pub struct Steps<'a, W: Write> {
    w: &'a mut TraceWriter<W>,
    bar: ProgressBar,
}

impl<'a, W: Write> Steps<'a, W> {
    pub fn new(w: &'a mut TraceWriter<W>) -> Self {
        Steps {
            w,
            bar: ProgressBar::hidden(),
        }
    }

    /// A handle to the bar, for [`starter`].
    pub fn bar(&self) -> ProgressBar {
        self.bar.clone()
    }
}

/// What a streamed run calls when it begins, with the scenario's name and
/// step count (`run_file_streaming`'s `started`): shows a [`Steps`] bar if
/// the run is long.
pub fn starter(bar: ProgressBar, real_time: bool) -> impl FnMut(&str, u64) {
    move |name, steps| {
        if std::io::stderr().is_terminal() && (real_time || steps >= 20_000) {
            bar.set_length(steps);
            bar.set_style(style(
                "{msg} [{bar:30}] {pos}/{len} ({elapsed}, ~{eta} left)",
            ));
            bar.set_message(name.to_string());
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }
}

impl<W: Write> Drop for Steps<'_, W> {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

impl<W: Write> TraceSink for Steps<'_, W> {
    fn begin(&mut self, head: &Head) {
        self.w.begin(head);
    }
    fn segment(&mut self, s: &finrst::segment::Segment) {
        self.w.segment(s);
    }
    fn call(&mut self, c: &CallRecord) {
        self.w.call(c);
    }
    fn step_done(&mut self) {
        self.bar.inc(1);
    }
}
