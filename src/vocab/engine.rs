//! Which TCP implementation runs a script, and which close rule the model
//! follows.

use super::vocab_enum;

vocab_enum! {
    /// The engines a script can run on.
    #[derive(Default)]
    #[non_exhaustive]
    #[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
    pub enum EngineKind ("an engine (model, smoltcp, smoltcp-tap, linux)") {
        /// The pure model of the Linux close path (virtual time, no root).
        #[default]
        Model => "model",
        /// Real smoltcp 0.14 sockets on an in-process wire (virtual time, no root).
        Smoltcp => "smoltcp",
        /// One host on smoltcp over a TAP device, the other on the kernel in a
        /// private network namespace (root; real time; see --tap-host).
        SmoltcpTap => "smoltcp-tap",
        /// The machine's real kernel, in private network namespaces (root).
        Linux => "linux",
    }
}

impl EngineKind {
    /// Whether the engine runs in real time (its step times come from a
    /// real clock, not a virtual one).
    pub fn real_time(self) -> bool {
        matches!(self, EngineKind::Linux | EngineKind::SmoltcpTap)
    }

    /// Whether `finrst drill` can run on it: the engine can leave a host
    /// to the script ([`crate::engine::Engine::raw_peer`]).
    pub fn drills(self) -> bool {
        matches!(self, EngineKind::Model | EngineKind::Linux)
    }
}

vocab_enum! {
    /// Which close rule the model follows.
    #[derive(Default)]
    #[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
    pub enum Policy ("a close policy (linux, always-fin)") {
        /// Linux: close() with unread data sends RST (RFC 2525 section 2.17).
        #[default]
        Linux => "linux",
        /// The same model with that rule switched off: close() always sends FIN.
        AlwaysFin => "always-fin",
    }
}
