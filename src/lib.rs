//! finrst: *why did close() send RST instead of FIN?*
//!
//! A TCP close-path simulator. A scenario (a `.sim` script, or a
//! [`Scenario`] built in Rust) says what two programs do with their sockets
//! — connect, send, read or not, shutdown, SO_LINGER, close, exit — and runs
//! on an engine ([`EngineKind`]): a deterministic model of Linux 6.18's TCP
//! on a virtual clock (no root, no sleeping), real smoltcp sockets, or the
//! machine's kernel in private network namespaces. The result is a
//! [`Trace`]: every segment, each with the kernel path that sent it, the
//! calls and what they returned, state changes and TcpExt counters.
//!
//! ```
//! use finrst::{Call, EngineKind, RunOptions, Scenario};
//!
//! // The client sends two bytes; the server reads one and closes.
//! let script = Scenario::new("unread")
//!     .hosts(["client", "server"])
//!     .call("server", Call::listen(9999))
//!     .call("client", Call::connect("server", 9999))
//!     .call("server", Call::Accept)
//!     .call("client", Call::send("ab"))
//!     .call("server", Call::recv(1))
//!     .call("server", Call::Close)
//!     .build()?;
//! let trace = finrst::run(&script, EngineKind::Model, &RunOptions::default())?;
//! let last = trace.relative_segments().pop().unwrap();
//! // One byte was never read: close() answers with RST, not FIN.
//! assert_eq!(last.flags, "R.");
//! assert!(last.why.unwrap().contains("RFC 2525"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The pieces:
//! - [`script`]: the `.sim` language (parser, printer, the [`Scenario`]
//!   builder); [`vocab`]: the Linux names (states, errnos, counters, RST
//!   reasons, sysctls) as types.
//! - [`run`], [`run_file`], [`run_streaming`] and [`make_engine`]: a
//!   script on an engine; [`trace`]: what a run produced, as text (like
//!   tcpdump) or JSON; [`segment`]: one segment.
//! - [`compare`]: two engines side by side (`finrst compare`, `conform`);
//!   [`fuzz`]: random scenarios on two engines; [`drill`]: packetdrill
//!   scripts; [`explain`]: why each connection of a capture ended;
//!   [`pcap`] and [`ladder`]: a run as a capture or a picture.
//!
//! Features: `smoltcp` and `linux` (the engines), `cli` (the command); all
//! on by default. `default-features = false` gives the model alone, with no
//! system calls and no command-line crates.

// The model mirrors the kernel's nested conditions one for one; collapsing
// them into let-chains would hide that correspondence.
#![allow(clippy::collapsible_if, clippy::collapsible_match)]

pub mod compare;
pub mod drill;
pub mod engine;
pub mod explain;
pub mod explore;
pub mod fuzz;
pub mod ladder;
pub mod limits;
pub mod pcap;
pub mod script;
pub mod segment;
pub mod trace;
pub mod vocab;

// The maintainer's `finrst book-gen`: public for the binary, not part of
// the library's interface.
#[doc(hidden)]
pub mod bookgen;

#[cfg(feature = "linux")]
mod linux;
mod model;
mod payload;
mod runner;
#[cfg(feature = "smoltcp")]
mod smol;

use engine::{Engine, EngineError, HostSpec};

pub use engine::RunOptions;
pub use runner::RunError;
pub use script::{Call, Scenario, Script};
pub use trace::Trace;
pub use vocab::{Counter, EngineKind, Errno, Policy, RstReason, TcpState};

/// The kernel engine itself, for tests that look at what it leaves behind
/// (its host processes and namespaces); not part of the interface.
#[cfg(feature = "linux")]
#[doc(hidden)]
pub use linux::LinuxEngine;
/// The model engine itself, for the benchmarks that drive its calls
/// without the runner and read its counters; not part of the interface.
#[doc(hidden)]
pub use model::ModelEngine;

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
        #[cfg(feature = "smoltcp")]
        EngineKind::Smoltcp => Ok(Box::new(smol::SmolEngine::new(hosts, opts))),
        #[cfg(all(feature = "smoltcp", feature = "linux"))]
        EngineKind::SmoltcpTap => {
            let first = hosts.first().map(|h| h.name.clone()).unwrap_or_default();
            let smol_host = opts.tap_host.clone().unwrap_or(first);
            Ok(Box::new(smol::tap::TapEngine::new(
                hosts, opts, &smol_host,
            )?))
        }
        #[cfg(feature = "linux")]
        EngineKind::Linux => Ok(Box::new(linux::LinuxEngine::new(hosts, opts)?)),
        #[allow(unreachable_patterns)]
        _ => Err(EngineError(format!(
            "this finrst was built without the {kind} engine (cargo features `smoltcp`, `linux`)"
        ))),
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
    let mut engine = make_engine(kind, &hosts, opts)?;
    run_on(script, engine.as_mut(), opts)
}

/// [`run`] on an engine the caller made ([`make_engine`] with the script's
/// hosts, [`engine::HostSpec::for_hosts`]), e.g. to look at it afterwards.
pub fn run_on(
    script: &script::Script,
    engine: &mut dyn Engine,
    opts: &RunOptions,
) -> Result<trace::Trace, Error> {
    Ok(runner::run(script, engine, opts, opts.horizon_us)?)
}

/// [`run`], handing each segment and call to `sink` as it happens instead
/// of keeping it (a run of any length holds only the current step's
/// segments): the trace returned has no segments and no calls.
pub fn run_streaming(
    script: &script::Script,
    kind: EngineKind,
    opts: &RunOptions,
    sink: &mut dyn trace::TraceSink,
) -> Result<trace::Trace, Error> {
    let hosts = HostSpec::for_hosts(&script.hosts);
    let mut engine = make_engine(kind, &hosts, opts)?;
    run_streaming_on(script, engine.as_mut(), opts, sink)
}

/// [`run_streaming`] on an engine the caller made (see [`run_on`]).
pub fn run_streaming_on(
    script: &script::Script,
    engine: &mut dyn Engine,
    opts: &RunOptions,
    sink: &mut dyn trace::TraceSink,
) -> Result<trace::Trace, Error> {
    Ok(runner::run_streaming(
        script,
        engine,
        opts,
        opts.horizon_us,
        sink,
    )?)
}

/// Parses and runs one script file.
pub fn run_file(path: &str, kind: EngineKind, opts: &RunOptions) -> Result<trace::Trace, Error> {
    run(&script::parse_file(path)?, kind, opts)
}

/// [`run_file`], streaming segments and calls into `sink` as they happen
/// (see [`run_streaming`]). `started` is called once the script is
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
    Run(#[from] RunError),
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
