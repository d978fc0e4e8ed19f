//! `expect always ...` / `expect never ...`: properties over every schedule
//! of a scenario (the run parser skips these lines; one run has no
//! schedules to range over).

use super::Summary;
use crate::script::ScriptError;
use crate::vocab::{Counter, TcpState};

/// A property line of a scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Property {
    pub line: u32,
    /// The line as written, without its comment.
    pub text: String,
    /// `always` (every schedule must satisfy it) or `never` (none may).
    pub always: bool,
    pub pred: Pred,
}

/// What a property says about one schedule's run.
#[derive(Clone, Debug, PartialEq)]
pub enum Pred {
    /// `HOST[.SOCK] VERB [= RESULT]`: a call of that verb returned that
    /// (any result if none is written).
    Call {
        host: String,
        sock: Option<String>,
        verb: String,
        result: Option<String>,
    },
    /// `HOST[.SOCK] state STATE`: a socket of the host (that one, if
    /// named) is in that state once the steps are over.
    State {
        host: String,
        sock: Option<String>,
        state: TcpState,
    },
    /// `SRC > DST FLAGS`: a segment from SRC to DST carried every one of
    /// these flags (tcpdump letters: `R`, `F.`, ...).
    Segment {
        src: String,
        dst: String,
        flags: String,
    },
    /// `HOST COUNTER = N`: the counter changed by N over the run.
    Counter {
        host: String,
        name: Counter,
        value: i64,
    },
}

impl Pred {
    /// Whether the run summarised holds it.
    pub fn holds(&self, s: &Summary) -> bool {
        let sock_ok = |want: &Option<String>, got: &str| want.as_deref().is_none_or(|w| w == got);
        match self {
            Pred::Call {
                host,
                sock,
                verb,
                result,
            } => s.outcome.calls.iter().any(|c| {
                &c.host == host
                    && sock_ok(sock, &c.sock)
                    && &c.verb == verb
                    && result.as_deref().is_none_or(|r| r == c.result)
            }),
            Pred::State { host, sock, state } => s
                .outcome
                .states
                .iter()
                .any(|(h, k, st)| h == host && sock_ok(sock, k) && st == state),
            Pred::Segment { src, dst, flags } => s
                .flags_seen
                .iter()
                .any(|(a, b, f)| a == src && b == dst && flags.chars().all(|c| f.contains(c))),
            Pred::Counter { host, name, value } => {
                let got = s
                    .outcome
                    .counters
                    .iter()
                    .find(|(h, n, _)| h == host && n == name)
                    .map_or(0, |x| x.2);
                got == *value
            }
        }
    }
}

fn counter(name: &str) -> Option<Counter> {
    name.parse().ok()
}

/// The property lines of a script's text, each checked against the
/// script's hosts.
pub fn parse(file: &str, text: &str, hosts: &[String]) -> Result<Vec<Property>, ScriptError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i as u32 + 1;
        let body = raw.split('#').next().unwrap_or("");
        let words: Vec<&str> = body.split_whitespace().collect();
        let always = match words.as_slice() {
            ["expect", "always", ..] => true,
            ["expect", "never", ..] => false,
            _ => continue,
        };
        let col = raw.find("expect").unwrap_or(0) as u32 + 1;
        let err = |found: &str, expected: &str| ScriptError {
            file: file.into(),
            line,
            col,
            found: crate::limits::quote(found).to_string(),
            expected: expected.into(),
        };
        let rest = &words[2..];
        let host_ok = |h: &str| hosts.iter().any(|x| x == h);
        let split_sock = |w: &str| match w.split_once('.') {
            Some((h, s)) => (h.to_string(), Some(s.to_string())),
            None => (w.to_string(), None),
        };
        let pred = match rest {
            [src, ">", dst, flags] => {
                for h in [src, dst] {
                    if !host_ok(h) {
                        return Err(err(h, "a host of the `hosts` line"));
                    }
                }
                if flags.is_empty() || !flags.chars().all(|c| "FSRPU.EW".contains(c)) {
                    return Err(err(flags, "tcpdump flags such as R, R., F."));
                }
                Pred::Segment {
                    src: src.to_string(),
                    dst: dst.to_string(),
                    flags: flags.to_string(),
                }
            }
            [hs, "state", st] => {
                let (host, sock) = split_sock(hs);
                if !host_ok(&host) {
                    return Err(err(&host, "a host of the `hosts` line"));
                }
                let state = st
                    .parse::<TcpState>()
                    .map_err(|_| err(st, "a TCP state such as TIME_WAIT"))?;
                Pred::State { host, sock, state }
            }
            [h, name, "=", v] if counter(name).is_some() => {
                if !host_ok(h) {
                    return Err(err(h, "a host of the `hosts` line"));
                }
                let value = v
                    .parse::<i64>()
                    .map_err(|_| err(v, "a counter value (an integer)"))?;
                match counter(name) {
                    Some(name) => Pred::Counter {
                        host: h.to_string(),
                        name,
                        value,
                    },
                    None => continue,
                }
            }
            [hs, verb, tail @ ..] => {
                let (host, sock) = split_sock(hs);
                if !host_ok(&host) {
                    return Err(err(&host, "a host of the `hosts` line"));
                }
                if !super::VERBS.contains(verb) {
                    return Err(err(
                        verb,
                        "a call verb, `state`, a counter or `> HOST FLAGS` after the host",
                    ));
                }
                let result = match tail {
                    [] => None,
                    ["=", r @ ..] if !r.is_empty() => Some(r.join(" ")),
                    _ => return Err(err(&tail.join(" "), "`= RESULT` or the end of the line")),
                };
                Pred::Call {
                    host,
                    sock,
                    verb: verb.to_string(),
                    result,
                }
            }
            _ => {
                return Err(err(
                    body.trim(),
                    "`expect always|never` then HOST CALL [= RESULT], HOST state STATE, HOST COUNTER = N or SRC > DST FLAGS",
                ));
            }
        };
        out.push(Property {
            line,
            text: body.trim().to_string(),
            always,
            pred,
        });
    }
    Ok(out)
}
