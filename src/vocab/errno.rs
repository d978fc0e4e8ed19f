//! errno values as a program on Linux sees them.

use std::fmt;

/// An errno value (Linux's numbers, include/uapi/asm-generic/errno*.h).
///
/// A newtype rather than an enum because the kernel engine may meet any
/// errno: the ones a socket program meets have names here
/// (`Errno::ECONNRESET`), any other prints as `E#n`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Errno(i32);

macro_rules! errnos {
    ($($name:ident = $n:literal),* $(,)?) => {
        impl Errno {
            $(
                #[doc = concat!("`", stringify!($name), "` (", stringify!($n), ")")]
                pub const $name: Errno = Errno($n);
            )*
            /// Every named errno, by number.
            pub const NAMED: &'static [Errno] = &[$(Errno::$name),*];
            /// The Linux name (`ECONNRESET`); `None` for a number without
            /// one here.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($n => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

errnos! {
    EPERM = 1,
    EINTR = 4,
    EBADF = 9,
    EAGAIN = 11,
    ENOMEM = 12,
    EACCES = 13,
    EFAULT = 14,
    EINVAL = 22,
    EPIPE = 32,
    ENOTSOCK = 88,
    EDESTADDRREQ = 89,
    EMSGSIZE = 90,
    ENOPROTOOPT = 92,
    EOPNOTSUPP = 95,
    EAFNOSUPPORT = 97,
    EADDRINUSE = 98,
    EADDRNOTAVAIL = 99,
    ENETUNREACH = 101,
    ECONNABORTED = 103,
    ECONNRESET = 104,
    ENOBUFS = 105,
    EISCONN = 106,
    ENOTCONN = 107,
    ETIMEDOUT = 110,
    ECONNREFUSED = 111,
    EHOSTUNREACH = 113,
    EALREADY = 114,
    EINPROGRESS = 115,
}

impl Errno {
    /// `EWOULDBLOCK` is `EAGAIN` on Linux (one number, two names): a script
    /// may write either, traces print `EAGAIN`.
    pub const EWOULDBLOCK: Errno = Errno::EAGAIN;

    /// The errno with Linux's number `n` (what `errno` holds after a failed
    /// call on this machine).
    pub const fn from_raw(n: i32) -> Errno {
        Errno(n)
    }

    /// Linux's number.
    pub const fn raw(self) -> i32 {
        self.0
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.pad(n),
            None => f.pad(&format!("E#{}", self.0)),
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Errno {
    type Err = super::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "EWOULDBLOCK" {
            return Ok(Errno::EWOULDBLOCK);
        }
        // What `Display` prints for a number without a name reads back.
        if let Some(n) = s.strip_prefix("E#").and_then(|n| n.parse().ok()) {
            return Ok(Errno(n));
        }
        Errno::NAMED
            .iter()
            .copied()
            .find(|e| e.name() == Some(s))
            .ok_or_else(|| super::UnknownName {
                what: "an errno name",
                found: s.to_string(),
            })
    }
}

super::serde_by_name!(Errno);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &e in Errno::NAMED {
            assert_eq!(e.to_string().parse::<Errno>(), Ok(e));
        }
        assert_eq!("EWOULDBLOCK".parse::<Errno>(), Ok(Errno::EAGAIN));
        assert_eq!(Errno::from_raw(4095).to_string(), "E#4095");
        assert_eq!("E#4095".parse::<Errno>(), Ok(Errno::from_raw(4095)));
    }

    /// The numbers are the ABI's: the C library of this machine agrees.
    #[cfg(target_os = "linux")]
    #[test]
    fn numbers_are_linuxs() {
        let libc_names = [
            (libc::EPERM, Errno::EPERM),
            (libc::EINTR, Errno::EINTR),
            (libc::EBADF, Errno::EBADF),
            (libc::EAGAIN, Errno::EAGAIN),
            (libc::ENOMEM, Errno::ENOMEM),
            (libc::EACCES, Errno::EACCES),
            (libc::EFAULT, Errno::EFAULT),
            (libc::EINVAL, Errno::EINVAL),
            (libc::EPIPE, Errno::EPIPE),
            (libc::ENOTSOCK, Errno::ENOTSOCK),
            (libc::EDESTADDRREQ, Errno::EDESTADDRREQ),
            (libc::EMSGSIZE, Errno::EMSGSIZE),
            (libc::ENOPROTOOPT, Errno::ENOPROTOOPT),
            (libc::EOPNOTSUPP, Errno::EOPNOTSUPP),
            (libc::EAFNOSUPPORT, Errno::EAFNOSUPPORT),
            (libc::EADDRINUSE, Errno::EADDRINUSE),
            (libc::EADDRNOTAVAIL, Errno::EADDRNOTAVAIL),
            (libc::ENETUNREACH, Errno::ENETUNREACH),
            (libc::ECONNABORTED, Errno::ECONNABORTED),
            (libc::ECONNRESET, Errno::ECONNRESET),
            (libc::ENOBUFS, Errno::ENOBUFS),
            (libc::EISCONN, Errno::EISCONN),
            (libc::ENOTCONN, Errno::ENOTCONN),
            (libc::ETIMEDOUT, Errno::ETIMEDOUT),
            (libc::ECONNREFUSED, Errno::ECONNREFUSED),
            (libc::EHOSTUNREACH, Errno::EHOSTUNREACH),
            (libc::EALREADY, Errno::EALREADY),
            (libc::EINPROGRESS, Errno::EINPROGRESS),
        ];
        assert_eq!(libc_names.len(), Errno::NAMED.len());
        for (n, e) in libc_names {
            assert_eq!(n, e.raw());
        }
    }
}
