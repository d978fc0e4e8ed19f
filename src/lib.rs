//! finrst: why did close() send RST instead of FIN?
//!
//! A TCP close-path simulator. A scenario script ([`script`]) runs on an
//! engine ([`engine::Engine`]): the pure Linux [`model`], real smoltcp
//! sockets ([`smol`]), or the machine's kernel. The [`runner`] turns what
//! the engine did into a [`trace::Trace`] of [`segment::Segment`]s, calls,
//! states and counters.

// The model mirrors the kernel's nested conditions one for one; collapsing
// them into let-chains would hide that correspondence.
#![allow(clippy::collapsible_if, clippy::collapsible_match)]

pub mod bookgen;
pub mod compare;
pub mod drill;
pub mod engine;
pub mod explain;
pub mod fuzz;
pub mod ladder;
pub mod linux;
pub mod model;
pub mod payload;
pub mod pcap;
pub mod runner;
pub mod script;
pub mod segment;
pub mod smol;
pub mod trace;
pub mod vocab;

use engine::{Engine, EngineError, HostSpec};

pub use engine::RunOptions;
pub use script::{Call, Scenario, Script};
pub use trace::Trace;
pub use vocab::{Counter, EngineKind, Errno, Policy, RstReason, TcpState};

impl EngineKind {
    /// Whether this engine can run on this machine, checked by building
    /// one for two idle hosts and dropping it: the answer is the engine's
    /// own (for `linux`, its one line naming the missing capability), and
    /// a command that runs many scripts can fail once, up front, instead
    /// of once per script.
    pub fn check_available(self) -> Result<(), EngineError> {
        if !self.real_time() {
            return Ok(());
        }
        let hosts = HostSpec::for_hosts(&["a".to_string(), "b".to_string()]);
        make_engine(self, &hosts, &RunOptions::default()).map(drop)
    }
}

/// Builds an engine for a script's hosts.
pub fn make_engine(
    kind: EngineKind,
    hosts: &[HostSpec],
    opts: &RunOptions,
) -> Result<Box<dyn Engine>, EngineError> {
    match kind {
        EngineKind::Model => Ok(Box::new(model::ModelEngine::new(hosts, opts))),
        EngineKind::Smoltcp => Ok(Box::new(smol::SmolEngine::new(hosts, opts))),
        EngineKind::SmoltcpTap => {
            let first = hosts.first().map(|h| h.name.clone()).unwrap_or_default();
            let smol_host = opts.tap_host.clone().unwrap_or(first);
            Ok(Box::new(smol::tap::TapEngine::new(
                hosts, opts, &smol_host,
            )?))
        }
        EngineKind::Linux => Ok(Box::new(linux::LinuxEngine::new(hosts, opts)?)),
    }
}

/// Runs a script (parsed from a file, or built with [`Scenario`]) on an
/// engine, to its end or its horizon.
pub fn run(
    script: &script::Script,
    kind: EngineKind,
    opts: &RunOptions,
) -> Result<trace::Trace, Error> {
    let hosts = HostSpec::for_hosts(&script.hosts);
    let mut engine = make_engine(kind, &hosts, opts).map_err(Error::Engine)?;
    runner::run(script, engine.as_mut(), opts, opts.horizon_us).map_err(Error::Run)
}

/// Parses and runs one script file.
pub fn run_file(path: &str, kind: EngineKind, opts: &RunOptions) -> Result<trace::Trace, Error> {
    run(&script::parse_file(path)?, kind, opts)
}

/// [`run_file`], streaming segments and calls into `sink` as they happen
/// (see [`runner::run_streaming`]). `started` is called once the script is
/// parsed and the engine is up, before the first step: with the script's
/// name and [`script::step_count`], e.g. to size a progress bar that the
/// sink's [`trace::TraceSink::step_done`] then moves.
pub fn run_file_streaming(
    path: &str,
    kind: EngineKind,
    opts: &RunOptions,
    sink: &mut dyn trace::TraceSink,
    started: &mut dyn FnMut(&str, u64),
) -> Result<trace::Trace, Error> {
    let script = script::parse_file(path)?;
    let hosts = HostSpec::for_hosts(&script.hosts);
    let mut engine = make_engine(kind, &hosts, opts).map_err(Error::Engine)?;
    started(&script.name(), script::step_count(&script.steps));
    runner::run_streaming(&script, engine.as_mut(), opts, opts.horizon_us, sink).map_err(Error::Run)
}

/// Everything that can stop a run before it produces a trace.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The script could not be read or is not valid.
    #[error(transparent)]
    Script(#[from] script::LoadError),
    /// The script went wrong as it ran (e.g. a socket name never created).
    #[error(transparent)]
    Run(#[from] runner::RunError),
    /// The engine cannot run (e.g. no root for `linux`).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// An error and its causes on one line (`a: b: c`), for a row or a note
/// that cannot print a chain.
pub fn error_text(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

impl From<script::ScriptError> for Error {
    fn from(e: script::ScriptError) -> Error {
        Error::Script(e.into())
    }
}
