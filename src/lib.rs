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
pub mod limits;
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

use engine::{Engine, EngineError, HostSpec, RunOptions};

pub use vocab::EngineKind;

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

/// Parses and runs one script file.
pub fn run_file(
    path: &str,
    kind: EngineKind,
    opts: &RunOptions,
    horizon_us: Option<u64>,
) -> Result<trace::Trace, Error> {
    let script = script::parse_file(path).map_err(Error::Script)?;
    let hosts = HostSpec::for_hosts(&script.hosts);
    let mut engine = make_engine(kind, &hosts, opts).map_err(Error::Engine)?;
    runner::run(&script, engine.as_mut(), opts, horizon_us).map_err(Error::Run)
}

/// [`run_file`], streaming segments and calls into `sink` as they happen
/// (see [`runner::run_streaming`]).
pub fn run_file_streaming(
    path: &str,
    kind: EngineKind,
    opts: &RunOptions,
    horizon_us: Option<u64>,
    sink: &mut dyn trace::TraceSink,
) -> Result<trace::Trace, Error> {
    let script = script::parse_file(path).map_err(Error::Script)?;
    let hosts = HostSpec::for_hosts(&script.hosts);
    let mut engine = make_engine(kind, &hosts, opts).map_err(Error::Engine)?;
    runner::run_streaming(&script, engine.as_mut(), opts, horizon_us, sink).map_err(Error::Run)
}

/// Everything that can stop a run before it produces a trace.
#[derive(Debug)]
pub enum Error {
    Script(script::ScriptError),
    Run(runner::RunError),
    Engine(EngineError),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Script(e) => write!(f, "{e}"),
            Error::Run(e) => write!(f, "{e}"),
            Error::Engine(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}
