//! The sysctls finrst knows: name, type, Linux 6.18's default and the
//! range the kernel's proc handler takes, in one table ([`Sysctl`]).
//!
//! The model reads a host's values from [`Sysctls`]; the linux engine
//! writes every per-namespace default into each fresh namespace (so that a
//! tuned machine cannot leak in); the script parser, fuzz and the book read
//! the names from here.

use std::fmt;

/// `CONFIG_HZ` of the kernel the model follows: a jiffy is 4 ms.
pub const HZ: u64 = 250;

/// Where a sysctl lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Per network namespace (`ipv4_net_table`, `netns_core_table`): each
    /// host of a linux run has its own, written to the default first.
    Netns,
    /// One for the machine (`net.core.rmem_max`): the linux engine cannot
    /// give hosts their own; the model uses the default.
    Global,
}

/// A sysctl value that a proc handler would refuse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SysctlError {
    #[error("unknown sysctl {0} (finrst knows {list})", list = Sysctl::names())]
    Unknown(String),
    #[error("the model does not model sysctl {0} (it models {list})", list = Sysctl::modelled_names())]
    NotModelled(Sysctl),
    #[error("sysctl {name}: {why}, found {value:?}")]
    Value {
        name: Sysctl,
        value: String,
        why: String,
    },
}

/// How a sysctl's text is read and printed, and what its proc handler
/// accepts. Each is a type so that the table below says it in one word.
pub trait Kind {
    type Value: Copy + fmt::Debug + PartialEq;
    fn parse(text: &str) -> Result<Self::Value, String>;
    fn show(v: Self::Value) -> String;
}

/// One integer as `proc_get_long` reads it: decimal, or hex with `0x`.
fn one_int(text: &str) -> Result<i64, String> {
    let mut it = text.split_whitespace();
    let (Some(v), None) = (it.next(), it.next()) else {
        return Err("takes one number".into());
    };
    int(v)
}

fn int(v: &str) -> Result<i64, String> {
    let (neg, digits) = match v.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, v),
    };
    let n = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(h) => i64::from_str_radix(h, 16),
        None => digits.parse::<i64>(),
    }
    .map_err(|_| "expected a number".to_string())?;
    Ok(if neg { -n } else { n })
}

/// A boolean knob: 0 off, anything else on (`proc_dointvec`).
pub struct Flag;
impl Kind for Flag {
    type Value = bool;
    fn parse(text: &str) -> Result<bool, String> {
        Ok(one_int(text)? != 0)
    }
    fn show(v: bool) -> String {
        u8::from(v).to_string()
    }
}

/// A non-negative integer in `MIN..=MAX`; outside it the write fails
/// with EINVAL (`proc_dointvec_minmax`, `proc_douintvec`).
pub struct Range<const MIN: i64, const MAX: i64>;
impl<const MIN: i64, const MAX: i64> Kind for Range<MIN, MAX> {
    type Value = u32;
    fn parse(text: &str) -> Result<u32, String> {
        let v = one_int(text)?;
        match u32::try_from(v) {
            Ok(x) if (MIN..=MAX).contains(&v) => Ok(x),
            _ => Err(format!("{v} is out of range ({MIN} to {MAX})")),
        }
    }
    fn show(v: u32) -> String {
        v.to_string()
    }
}

/// A signed integer in `MIN..=MAX` (`tcp_adv_win_scale`).
pub struct SignedRange<const MIN: i64, const MAX: i64>;
impl<const MIN: i64, const MAX: i64> Kind for SignedRange<MIN, MAX> {
    type Value = i32;
    fn parse(text: &str) -> Result<i32, String> {
        let v = one_int(text)?;
        match i32::try_from(v) {
            Ok(x) if (MIN..=MAX).contains(&v) => Ok(x),
            _ => Err(format!("{v} is out of range ({MIN} to {MAX})")),
        }
    }
    fn show(v: i32) -> String {
        v.to_string()
    }
}

/// A non-negative integer that the model caps at `MIN..=MAX` where the
/// kernel's code caps it when it reads the value (e.g. `tcp_syn_retries`
/// by `max(.., 1)` and `min(.., 127)`), so any write succeeds.
pub struct Clamped<const MIN: i64, const MAX: i64>;
impl<const MIN: i64, const MAX: i64> Kind for Clamped<MIN, MAX> {
    type Value = u32;
    fn parse(text: &str) -> Result<u32, String> {
        let v = one_int(text)?;
        match u32::try_from(v) {
            Ok(_) => Ok(v.clamp(MIN, MAX) as u32),
            Err(_) => Err(format!("{v} is out of range")),
        }
    }
    fn show(v: u32) -> String {
        v.to_string()
    }
}

/// Seconds, kept in jiffies (`proc_dointvec_jiffies`).
pub struct Secs;
impl Kind for Secs {
    type Value = u64;
    fn parse(text: &str) -> Result<u64, String> {
        let v = one_int(text)?;
        u32::try_from(v)
            .map(|s| s as u64 * HZ)
            .map_err(|_| format!("{v} is out of range"))
    }
    fn show(v: u64) -> String {
        (v / HZ).to_string()
    }
}

/// Milliseconds, kept in jiffies (`proc_dointvec_ms_jiffies`).
pub struct Millis;
impl Kind for Millis {
    type Value = u64;
    fn parse(text: &str) -> Result<u64, String> {
        let v = one_int(text)?;
        u32::try_from(v)
            .map(|ms| ms as u64 * HZ / 1000)
            .map_err(|_| format!("{v} is out of range"))
    }
    fn show(v: u64) -> String {
        (v * 1000 / HZ).to_string()
    }
}

/// Three positive numbers, `min default max` (`tcp_rmem`, `tcp_wmem`).
pub struct Triple;
impl Kind for Triple {
    type Value = [u32; 3];
    fn parse(text: &str) -> Result<[u32; 3], String> {
        let v: Vec<i64> = text.split_whitespace().map(int).collect::<Result<_, _>>()?;
        let pos = |x: i64| u32::try_from(x).ok().filter(|x| *x > 0);
        match v.as_slice() {
            [a, b, c] => match (pos(*a), pos(*b), pos(*c)) {
                (Some(a), Some(b), Some(c)) => Ok([a, b, c]),
                _ => Err("takes three positive numbers".into()),
            },
            _ => Err("takes three positive numbers".into()),
        }
    }
    fn show(v: [u32; 3]) -> String {
        format!("{} {} {}", v[0], v[1], v[2])
    }
}

macro_rules! sysctl_table {
    ($(
        $(#[$m:meta])*
        $var:ident $field:ident: $kind:ty = $default:expr, $name:literal, $scope:ident, $model:ident;
    )*) => {
        /// A sysctl finrst knows, by its `sysctl` name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Sysctl {
            $( $(#[$m])* $var ),*
        }

        impl Sysctl {
            /// Every sysctl of the table, in its order.
            pub const ALL: &'static [Sysctl] = &[$(Sysctl::$var),*];

            /// The name as `sysctl` spells it (`net.ipv4.tcp_fin_timeout`).
            pub const fn name(self) -> &'static str {
                match self { $(Sysctl::$var => $name),* }
            }

            pub const fn scope(self) -> Scope {
                match self { $(Sysctl::$var => Scope::$scope),* }
            }

            /// Whether the model reads it (and a script may set it on the
            /// model); the others are written by the linux engine only.
            pub const fn modelled(self) -> bool {
                match self { $(Sysctl::$var => sysctl_table!(@model $model)),* }
            }
        }

        /// One host's sysctl values, typed as the model reads them.
        #[derive(Clone, Debug, PartialEq)]
        pub struct Sysctls {
            $( $(#[$m])* pub $field: <$kind as Kind>::Value ),*
        }

        impl Default for Sysctls {
            /// Linux 6.18's defaults (`tcp_sk_init`, net/ipv4/tcp_ipv4.c,
            /// and the tables of net/ipv4/sysctl_net_ipv4.c), as a fresh
            /// namespace on a 24 GiB machine reads them.
            fn default() -> Self {
                Sysctls { $( $field: $default ),* }
            }
        }

        impl Sysctls {
            /// The value as `sysctl -n` prints it.
            pub fn get(&self, k: Sysctl) -> String {
                match k { $(Sysctl::$var => <$kind as Kind>::show(self.$field)),* }
            }

            /// Writes a value as `sysctl -w` would, refusing what the
            /// kernel's proc handler refuses.
            pub fn set(&mut self, k: Sysctl, text: &str) -> Result<(), SysctlError> {
                let err = |why: String| SysctlError::Value {
                    name: k,
                    value: text.to_string(),
                    why,
                };
                match k {
                    $(Sysctl::$var => self.$field = <$kind as Kind>::parse(text).map_err(err)?),*
                }
                Ok(())
            }
        }
    };
    (@model model) => { true };
    (@model kernel) => { false };
}

sysctl_table! {
    /// How long an orphan stays in FIN_WAIT2 (`tcp_fin_time`).
    TcpFinTimeout tcp_fin_timeout: Secs = 60 * HZ, "net.ipv4.tcp_fin_timeout", Netns, model;
    TcpRmem tcp_rmem: Triple = [4096, 131072, 33554432], "net.ipv4.tcp_rmem", Netns, model;
    TcpWmem tcp_wmem: Triple = [4096, 16384, 4194304], "net.ipv4.tcp_wmem", Netns, model;
    /// Retries of an orphan's retransmissions; 0 means 8 (`tcp_orphan_retries`).
    TcpOrphanRetries tcp_orphan_retries: Range<0, 255> = 0, "net.ipv4.tcp_orphan_retries", Netns, model;
    TcpRetries1 tcp_retries1: Clamped<0, 255> = 3, "net.ipv4.tcp_retries1", Netns, model;
    TcpRetries2 tcp_retries2: Range<0, 2147483647> = 15, "net.ipv4.tcp_retries2", Netns, model;
    TcpSynRetries tcp_syn_retries: Clamped<1, 127> = 6, "net.ipv4.tcp_syn_retries", Netns, model;
    TcpSynackRetries tcp_synack_retries: Range<0, 2147483647> = 5, "net.ipv4.tcp_synack_retries", Netns, model;
    TcpSynLinearTimeouts tcp_syn_linear_timeouts: Clamped<0, 127> = 4, "net.ipv4.tcp_syn_linear_timeouts", Netns, model;
    TcpTimestamps tcp_timestamps: Flag = true, "net.ipv4.tcp_timestamps", Netns, model;
    TcpSack tcp_sack: Flag = true, "net.ipv4.tcp_sack", Netns, model;
    TcpDsack tcp_dsack: Flag = true, "net.ipv4.tcp_dsack", Netns, model;
    TcpWindowScaling tcp_window_scaling: Flag = true, "net.ipv4.tcp_window_scaling", Netns, model;
    /// RFC 1337: a time-wait socket ignores RSTs.
    TcpRfc1337 tcp_rfc1337: Flag = false, "net.ipv4.tcp_rfc1337", Netns, model;
    /// A full accept queue resets the handshake's last ACK instead of
    /// dropping it.
    TcpAbortOnOverflow tcp_abort_on_overflow: Flag = false, "net.ipv4.tcp_abort_on_overflow", Netns, model;
    TcpAdvWinScale tcp_adv_win_scale: SignedRange<-31, 31> = 1, "net.ipv4.tcp_adv_win_scale", Netns, kernel;
    TcpAppWin tcp_app_win: Clamped<0, 31> = 31, "net.ipv4.tcp_app_win", Netns, model;
    TcpModerateRcvbuf tcp_moderate_rcvbuf: Flag = true, "net.ipv4.tcp_moderate_rcvbuf", Netns, model;
    TcpAutocorking tcp_autocorking: Flag = true, "net.ipv4.tcp_autocorking", Netns, kernel;
    TcpSlowStartAfterIdle tcp_slow_start_after_idle: Flag = true, "net.ipv4.tcp_slow_start_after_idle", Netns, model;
    TcpNoMetricsSave tcp_no_metrics_save: Flag = false, "net.ipv4.tcp_no_metrics_save", Netns, kernel;
    TcpMtuProbing tcp_mtu_probing: Range<0, 2> = 0, "net.ipv4.tcp_mtu_probing", Netns, kernel;
    TcpBaseMss tcp_base_mss: Range<0, 2147483647> = 1024, "net.ipv4.tcp_base_mss", Netns, kernel;
    TcpEarlyRetrans tcp_early_retrans: Clamped<0, 4> = 3, "net.ipv4.tcp_early_retrans", Netns, model;
    TcpRecovery tcp_recovery: Range<0, 2147483647> = 1, "net.ipv4.tcp_recovery", Netns, model;
    TcpFrto tcp_frto: Range<0, 2147483647> = 2, "net.ipv4.tcp_frto", Netns, model;
    TcpReordering tcp_reordering: Range<0, 2147483647> = 3, "net.ipv4.tcp_reordering", Netns, model;
    TcpMaxReordering tcp_max_reordering: Range<0, 2147483647> = 300, "net.ipv4.tcp_max_reordering", Netns, model;
    TcpRetransCollapse tcp_retrans_collapse: Flag = true, "net.ipv4.tcp_retrans_collapse", Netns, model;
    TcpTwReuse tcp_tw_reuse: Range<0, 2> = 2, "net.ipv4.tcp_tw_reuse", Netns, model;
    /// RFC 1122's reading of the urgent pointer (the byte it points at,
    /// not the byte after).
    TcpStdurg tcp_stdurg: Flag = false, "net.ipv4.tcp_stdurg", Netns, model;
    TcpShrinkWindow tcp_shrink_window: Flag = false, "net.ipv4.tcp_shrink_window", Netns, kernel;
    TcpEcn tcp_ecn: Range<0, 5> = 2, "net.ipv4.tcp_ecn", Netns, kernel;
    TcpSyncookies tcp_syncookies: Range<0, 2> = 1, "net.ipv4.tcp_syncookies", Netns, model;
    TcpFastopen tcp_fastopen: Range<0, 2147483647> = 1, "net.ipv4.tcp_fastopen", Netns, kernel;
    TcpKeepaliveTime tcp_keepalive_time: Secs = 7200 * HZ, "net.ipv4.tcp_keepalive_time", Netns, model;
    TcpKeepaliveIntvl tcp_keepalive_intvl: Secs = 75 * HZ, "net.ipv4.tcp_keepalive_intvl", Netns, model;
    TcpKeepaliveProbes tcp_keepalive_probes: Range<0, 127> = 9, "net.ipv4.tcp_keepalive_probes", Netns, model;
    TcpNotsentLowat tcp_notsent_lowat: Range<0, 4294967295> = 4294967295, "net.ipv4.tcp_notsent_lowat", Netns, model;
    TcpLimitOutputBytes tcp_limit_output_bytes: Range<0, 2147483647> = 4194304, "net.ipv4.tcp_limit_output_bytes", Netns, kernel;
    TcpCompSackNr tcp_comp_sack_nr: Range<0, 255> = 44, "net.ipv4.tcp_comp_sack_nr", Netns, model;
    TcpBacklogAckDefer tcp_backlog_ack_defer: Flag = true, "net.ipv4.tcp_backlog_ack_defer", Netns, kernel;
    TcpMinTsoSegs tcp_min_tso_segs: Range<1, 255> = 2, "net.ipv4.tcp_min_tso_segs", Netns, model;
    TcpTsoWinDivisor tcp_tso_win_divisor: Range<0, 255> = 3, "net.ipv4.tcp_tso_win_divisor", Netns, model;
    /// The minimum gap between two out-of-window ACKs
    /// (`tcp_oow_rate_limited`).
    TcpInvalidRatelimit tcp_invalid_ratelimit: Millis = HZ / 2, "net.ipv4.tcp_invalid_ratelimit", Netns, model;
    TcpPingpongThresh tcp_pingpong_thresh: Range<1, 255> = 1, "net.ipv4.tcp_pingpong_thresh", Netns, model;
    TcpMinRttWlen tcp_min_rtt_wlen: Range<0, 86400> = 300, "net.ipv4.tcp_min_rtt_wlen", Netns, model;
    /// Read into `icsk_rto_min` when a socket is created (`tcp_init_sock`).
    TcpRtoMinUs tcp_rto_min_us: Range<1, 2147483647> = 200_000, "net.ipv4.tcp_rto_min_us", Netns, model;
    /// Read into `icsk_rto_max` when a socket is created (`tcp_init_sock`).
    TcpRtoMaxMs tcp_rto_max_ms: Range<1000, 120000> = 120_000, "net.ipv4.tcp_rto_max_ms", Netns, model;
    /// The cap of a listen backlog (`__sys_listen`).
    Somaxconn somaxconn: Range<0, 2147483647> = 4096, "net.core.somaxconn", Netns, model;
    /// Derived from the hash table's size on the running machine
    /// (`tcp_set_hashinfo`); the value a 24 GiB machine's namespaces have.
    TcpMaxSynBacklog tcp_max_syn_backlog: Range<0, 2147483647> = 2048, "net.ipv4.tcp_max_syn_backlog", Netns, model;
    /// The size of the established hash of namespaces created from this
    /// one (0: share init_net's, `tcp_set_hashinfo`). The linux engine
    /// gives its hosts small private tables with it.
    TcpChildEhashEntries tcp_child_ehash_entries: Range<0, 16777216> = 0, "net.ipv4.tcp_child_ehash_entries", Netns, kernel;
    /// As `tcp_max_syn_backlog`, derived from the hash table's size.
    TcpMaxTwBuckets tcp_max_tw_buckets: Range<0, 2147483647> = 131072, "net.ipv4.tcp_max_tw_buckets", Netns, kernel;
    /// The cap for SO_RCVBUF and the window scale (machine-wide).
    RmemMax rmem_max: Range<0, 2147483647> = 4194304, "net.core.rmem_max", Global, model;
    /// The cap for SO_SNDBUF (machine-wide).
    WmemMax wmem_max: Range<0, 2147483647> = 4194304, "net.core.wmem_max", Global, model;
}

impl Sysctl {
    /// Linux 6.18's default, as `sysctl -n` prints it.
    pub fn default_text(self) -> String {
        Sysctls::default().get(self)
    }

    /// Every name, comma-separated.
    pub fn names() -> String {
        super::list(Sysctl::ALL.iter().map(|s| s.name()))
    }

    /// The names the model reads, comma-separated.
    pub fn modelled_names() -> String {
        super::list(
            Sysctl::ALL
                .iter()
                .filter(|s| s.modelled())
                .map(|s| s.name()),
        )
    }
}

impl fmt::Display for Sysctl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl std::str::FromStr for Sysctl {
    type Err = SysctlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Sysctl::ALL
            .iter()
            .copied()
            .find(|k| k.name() == s)
            .ok_or_else(|| SysctlError::Unknown(s.to_string()))
    }
}

super::serde_by_name!(Sysctl);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_read_back_as_written() {
        let d = Sysctls::default();
        for &k in Sysctl::ALL {
            let mut s = d.clone();
            s.set(k, &d.get(k)).unwrap();
            assert_eq!(s, d, "{k}");
            assert_eq!(k.name().parse::<Sysctl>(), Ok(k));
        }
        assert_eq!(Sysctl::TcpFinTimeout.default_text(), "60");
        assert_eq!(Sysctl::TcpInvalidRatelimit.default_text(), "500");
        assert_eq!(Sysctl::TcpRmem.default_text(), "4096 131072 33554432");
    }

    #[test]
    fn the_proc_handlers_limits() {
        let mut s = Sysctls::default();
        assert!(s.set(Sysctl::TcpRtoMaxMs, "999").is_err());
        s.set(Sysctl::TcpSynRetries, "0").unwrap();
        assert_eq!(s.tcp_syn_retries, 1);
        s.set(Sysctl::TcpFinTimeout, "0x10").unwrap();
        assert_eq!(s.tcp_fin_timeout, 16 * HZ);
        assert!(s.set(Sysctl::TcpRmem, "1 2").is_err());
        assert!(s.set(Sysctl::TcpRetries2, "-1").is_err());
        assert!("net.ipv4.tcp_nonsense".parse::<Sysctl>().is_err());
    }
}
