//! The words finrst shares with the kernel, each spelled once.
//!
//! TCP states, errno names, TcpExt counters, RST reasons, sysctls and the
//! fields of `TCP_INFO` / `SO_MEMINFO` are facts about Linux. Every other
//! module (the model, the engines, the script parser, the trace, explain,
//! fuzz and the book) names them through these types, so a misspelled state
//! or counter does not compile, and the text a user reads (`TIME_WAIT`,
//! `ECONNRESET`, `TCPAbortOnClose`, `net.ipv4.tcp_fin_timeout`) comes from
//! one place: each type's `Display` is the Linux spelling, and `FromStr`
//! reads it back.

mod counter;
mod engine;
mod errno;
mod rst_reason;
mod sim;
mod sockinfo;
mod state;
mod sysctl;

pub use counter::Counter;
pub use engine::{EngineKind, Policy};
pub use errno::Errno;
pub use rst_reason::RstReason;
pub use sim::Sim;
pub use sockinfo::{MemInfo, SockInfo, TcpInfo};
pub use state::TcpState;
pub use sysctl::{HZ, Scope, Sysctl, SysctlError, Sysctls};

/// A name that is not one of a vocabulary's words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{found:?} is not {what}")]
pub struct UnknownName {
    /// What was expected ("a TCP state name", ...).
    pub what: &'static str,
    /// The text that was read.
    pub found: String,
}

/// Serde for a vocabulary type through its Linux name (`Display` and
/// `FromStr`), so JSON shows `"TIME_WAIT"`, not a variant index.
macro_rules! serde_by_name {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use serde_by_name;

/// Declares a C-like enum whose every value has a Linux name, with
/// `name()`, `Display` (the name), `FromStr` (the name back), `ALL` (every
/// value in declaration order) and serde through the name. A variant
/// written `Variant => "NAME"` is spelled `NAME`; a bare `Variant` is
/// spelled as its identifier (counters: `TCPAbortOnClose`).
macro_rules! vocab_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $t:ident ($what:literal) $(as $repr:ty)? {
            $( $(#[$vmeta:meta])* $v:ident $(= $num:literal)? $(=> $name:literal)? ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $(#[repr($repr)])?
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        $vis enum $t {
            $( $(#[$vmeta])* $v $(= $num)? ),*
        }
        impl $t {
            /// Every value, in declaration order.
            pub const ALL: &'static [$t] = &[$($t::$v),*];
            /// The Linux name.
            pub const fn name(self) -> &'static str {
                match self {
                    $( $t::$v => $crate::vocab::vocab_enum!(@name $v $($name)?) ),*
                }
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.name())
            }
        }
        impl std::str::FromStr for $t {
            type Err = $crate::vocab::UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.name() == s)
                    .ok_or_else(|| $crate::vocab::UnknownName {
                        what: $what,
                        found: s.to_string(),
                    })
            }
        }
        $crate::vocab::serde_by_name!($t);
    };
    (@name $v:ident $name:literal) => { $name };
    (@name $v:ident) => { stringify!($v) };
}
pub(crate) use vocab_enum;

/// The names of a vocabulary, comma-separated (for error messages and the
/// book's reference lists).
pub fn list<T: std::fmt::Display>(all: impl Iterator<Item = T>) -> String {
    all.map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
}
