//! The parser of the packetdrill subset `finrst drill` runs.
//!
//! The grammar follows packetdrill's `parser.y` for what it covers: an
//! event is a time (`0.100`, `+.1`, `+0`, `0.1...0.3`, `*`) followed by an
//! inbound packet (`<`), an outbound packet (`>`), a system call
//! (`name(args) = ret [ERRNO [(text)]]`) or a shell command in backticks.
//! Option lines (`--tolerance_usecs=10000`) may come first; `//` and
//! `/* */` comments go anywhere. Every error names `file:line:col`, what
//! was found and what was expected; anything packetdrill has and this
//! subset has not (`%{ python }%`, IPv6 addresses, `sack` on inbound
//! packets is fine, `ecn`, `mpcapable`, ...) fails with its name.

use crate::limits::{self, MAX_DURATION_US, MAX_NESTING, quote};
use crate::segment::Flags;
use crate::vocab::Errno;
use std::fmt;

/// A parsed `.pkt` file.
#[derive(Clone, Debug, PartialEq)]
pub struct Pkt {
    pub path: String,
    /// `--tolerance_usecs=N` given in the file.
    pub tolerance_us: Option<u64>,
    /// `--local_ip=A` / `--remote_ip=A` given in the file (packetdrill's
    /// defaults, 192.168.0.1 and 192.0.2.1, otherwise).
    pub local_ip: Option<std::net::Ipv4Addr>,
    pub remote_ip: Option<std::net::Ipv4Addr>,
    pub events: Vec<Event>,
}

/// One event, with where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub line: u32,
    pub col: u32,
    /// The source text of the event, whitespace collapsed.
    pub text: String,
    pub time: When,
    pub kind: EventKind,
}

/// When an event happens, in microseconds of script time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// `0.100`: since the script began.
    Abs(i64),
    /// `+0.1`: since the previous event.
    Rel(i64),
    /// `0.1...0.3` or `+0...0.3` (a blocking call: starts at the first,
    /// returns at the second; both have the same base, the script's start
    /// or, with `+`, the previous event, as packetdrill's
    /// RELATIVE_RANGE_TIME; `+0...+0.3` makes the end relative to the
    /// start).
    Range {
        start: i64,
        end: i64,
        rel: bool,
        end_rel: bool,
    },
    /// `a~b` or `+a~+b`: an outbound packet sent anywhere in the window
    /// (packetdrill's ABSOLUTE_RANGE_TIME / RELATIVE_RANGE_TIME of an
    /// outbound packet; with `+`, both ends count from the previous event).
    Window { start: i64, end: i64, rel: bool },
    /// `*`: any time.
    Any,
}

impl When {
    /// The script times (µs) of the event and, for a range, of its end,
    /// `prev` being the previous event's: `None` for `*`. The parser bounds
    /// each time and their sum (MAX_DURATION_US), so these sums stay far
    /// from the ends of the types.
    pub fn resolve(self, prev: u64) -> (Option<u64>, Option<u64>) {
        let at = |d: i64, base: u64| -> u64 { (base as i64).saturating_add(d).max(0) as u64 };
        match self {
            When::Abs(t) => (Some(t.max(0) as u64), None),
            When::Rel(d) => (Some(at(d, prev)), None),
            When::Range {
                start,
                end,
                rel,
                end_rel,
            } => {
                let s = if rel {
                    at(start, prev)
                } else {
                    start.max(0) as u64
                };
                // packetdrill's RELATIVE_RANGE_TIME: `+a...b` offsets both
                // ends by the previous event's time
                // (adjust_relative_event_times); `+a...+b` (ours) is
                // relative to the start.
                let e = if end_rel {
                    at(end, s)
                } else if rel {
                    at(end, prev)
                } else {
                    end.max(0) as u64
                };
                (Some(s), Some(e))
            }
            When::Window { start, end, rel } => {
                if rel {
                    (Some(at(start, prev)), Some(at(end, prev)))
                } else {
                    (Some(start.max(0) as u64), Some(end.max(0) as u64))
                }
            }
            When::Any => (None, None),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    /// `<`: the remote side sends this.
    Inbound(PacketSpec),
    /// `>`: the kernel must send this.
    Outbound(PacketSpec),
    Syscall(Syscall),
    /// A backtick shell command.
    Command(String),
    /// `%{ assert EXPR }%`: checks on the connection's TCP_INFO
    /// ([`super::expr`]).
    Code(Vec<super::expr::Assertion>),
}

/// A packet as a script writes it (sequence numbers relative).
#[derive(Clone, Debug, PartialEq)]
pub struct PacketSpec {
    pub flags: Flags,
    pub start: u32,
    pub end: u32,
    pub len: u32,
    pub ack: Option<u32>,
    pub win: Option<u16>,
    pub urg: Option<u16>,
    /// `None`: no `<...>` written (an outbound check then ignores options;
    /// an inbound packet carries none).
    pub options: Option<Vec<OptSpec>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OptSpec {
    Nop,
    Eol,
    Mss(u16),
    WScale(u8),
    SackOk,
    Sack(Vec<(u32, u32)>),
    Ts { val: u32, ecr: u32 },
}

impl fmt::Display for OptSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptSpec::Nop => write!(f, "nop"),
            OptSpec::Eol => write!(f, "eol"),
            OptSpec::Mss(m) => write!(f, "mss {m}"),
            OptSpec::WScale(w) => write!(f, "wscale {w}"),
            OptSpec::SackOk => write!(f, "sackOK"),
            OptSpec::Sack(b) => {
                write!(f, "sack")?;
                for (l, r) in b {
                    write!(f, " {l}:{r}")?;
                }
                Ok(())
            }
            OptSpec::Ts { val, ecr } => write!(f, "TS val {val} ecr {ecr}"),
        }
    }
}

impl fmt::Display for PacketSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}:{}({})",
            self.flags.tcpdump(),
            self.start,
            self.end,
            self.len
        )?;
        if let Some(a) = self.ack {
            write!(f, " ack {a}")?;
        }
        if let Some(w) = self.win {
            write!(f, " win {w}")?;
        }
        if let Some(u) = self.urg {
            write!(f, " urg {u}")?;
        }
        if let Some(o) = &self.options {
            let v: Vec<String> = o.iter().map(|x| x.to_string()).collect();
            write!(f, " <{}>", v.join(","))?;
        }
        Ok(())
    }
}

/// `name(args) = ret [ERRNO]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Syscall {
    pub name: String,
    pub args: Vec<Arg>,
    pub ret: i64,
    /// `= -1 ERRNO`; `None` after `= -1` alone: any errno (packetdrill
    /// checks only the -1 then).
    pub errno: Option<Errno>,
}

/// A system call argument.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    /// `...`: whatever the call needs.
    Ellipsis,
    Int(i64),
    /// `SOCK_STREAM`, `O_RDWR|O_NONBLOCK`.
    Ident(Vec<String>),
    /// `[1]`, `[MSG_OOB]`.
    List(Vec<Arg>),
    /// `{l_onoff=1, l_linger=0}`.
    Struct(Vec<(String, Arg)>),
    Str(String),
    /// `htons(8080)`.
    Call(String, Vec<Arg>),
}

/// A parse error: `file:line:col: message`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: {msg}")]
pub struct PktError {
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub msg: String,
}

/// Reads and parses a file (at most [`limits::MAX_SCRIPT_BYTES`]).
pub fn parse_file(path: &str) -> Result<Pkt, super::DrillError> {
    let bytes = limits::read_script(path).map_err(|source| super::DrillError::Read {
        file: path.into(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        PktError {
            file: path.into(),
            line: upto.iter().filter(|&&b| b == b'\n').count() as u32 + 1,
            col: 1,
            msg: "bytes that are not UTF-8 (a script is UTF-8 text)".into(),
        }
    })?;
    Ok(parse(path, &text)?)
}

/// Parses the text of a script. A script with no event is an error: it
/// would pass while checking nothing.
pub fn parse(path: &str, text: &str) -> Result<Pkt, PktError> {
    if text.len() > limits::MAX_SCRIPT_BYTES {
        return Err(PktError {
            file: path.into(),
            line: 0,
            col: 0,
            msg: format!("cannot read: {}", limits::too_big()),
        });
    }
    if let Some((line, col)) = limits::long_line(text) {
        return Err(PktError {
            file: path.into(),
            line,
            col,
            msg: limits::line_too_long(),
        });
    }
    let mut c = Cursor {
        file: path,
        b: text.as_bytes(),
        src: text,
        pos: 0,
        line: 1,
        col: 1,
        depth: 0,
    };
    let mut pkt = Pkt {
        path: path.into(),
        tolerance_us: None,
        local_ip: None,
        remote_ip: None,
        events: Vec::new(),
    };
    // The latest script time an event names so far (relative times add
    // up): bounded, so that the executor's sums cannot overflow.
    let mut latest: i64 = 0;
    loop {
        c.skip_ws()?;
        if c.eof() {
            break;
        }
        if c.starts_with("--") {
            let (line, col) = (c.line, c.col);
            let word = c.take_while(|b| !b.is_ascii_whitespace());
            let (k, v) = word.split_once('=').unwrap_or((word, ""));
            match k {
                "--tolerance_usecs" => {
                    let t = v.parse().ok().filter(|t| *t <= MAX_DURATION_US);
                    pkt.tolerance_us = Some(t.ok_or_else(|| PktError {
                        file: path.into(),
                        line,
                        col,
                        msg: format!(
                            "`{}`: expected --tolerance_usecs=N with N a number of microseconds (at most {MAX_DURATION_US})",
                            quote(word)
                        ),
                    })?)
                }
                "--ip_version" if v == "ipv4" => {}
                "--ip_version" => {
                    return Err(PktError {
                        file: path.into(),
                        line,
                        col,
                        msg: format!(
                            "unsupported: `{}` (IPv6; the drill engines run IPv4 only)",
                            quote(word)
                        ),
                    });
                }
                "--local_ip" | "--remote_ip" => {
                    let a: std::net::Ipv4Addr = v.parse().map_err(|_| PktError {
                        file: path.into(),
                        line,
                        col,
                        msg: format!(
                            "`{}`: expected an IPv4 address (IPv6 is not supported)",
                            quote(word)
                        ),
                    })?;
                    if k == "--local_ip" {
                        pkt.local_ip = Some(a);
                    } else {
                        pkt.remote_ip = Some(a);
                    }
                }
                // The outbound TS val is never checked here (see the
                // module doc of `drill`), so its clock's tick changes
                // nothing; the value is still read.
                "--tcp_ts_tick_usecs" if v.parse::<u64>().is_ok() => {}
                // packetdrill's own routing setup for its tun device: the
                // engines set their own link up.
                "--gateway_ip" | "--netmask_ip" => {}
                _ => {
                    let why = match k {
                        "--mss" => {
                            " (packetdrill injects larger packets as GSO segments of that size; here each goes in whole)"
                        }
                        "--strict_segments" => {
                            " (packetdrill then rejects TSO super-segments; here segments are compared as sent)"
                        }
                        "--tcp_ts_ecr_scaled" => {
                            " (packetdrill then scales inbound TS ecr by the tick; not supported)"
                        }
                        _ => "",
                    };
                    return Err(PktError {
                        file: path.into(),
                        line,
                        col,
                        msg: format!(
                            "unsupported option `{}`{why} (this subset knows --tolerance_usecs=N, --ip_version=ipv4, --local_ip=A, --remote_ip=A, --tcp_ts_tick_usecs=N)",
                            quote(word)
                        ),
                    });
                }
            }
            continue;
        }
        // packetdrill's untimed commands: an init command before the first
        // event and a cleanup command after the last (parser.y's
        // opt_init_command and opt_cleanup_command). Both run when they
        // come, as a command at `+0`.
        if c.peek() == Some(b'`') {
            let (line, col, p0) = (c.line, c.col, c.pos);
            let cmd = c.backticks()?;
            let text = c.src[p0..c.pos]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            if !pkt.events.is_empty() {
                c.skip_ws()?;
                if !c.eof() {
                    return Err(c.err_at(
                        line,
                        col,
                        "an untimed `command` comes first (packetdrill's init command) or last (its cleanup command); give this one a time".into(),
                    ));
                }
            }
            pkt.events.push(Event {
                line,
                col,
                text,
                time: When::Rel(0),
                kind: EventKind::Command(cmd),
            });
            continue;
        }
        let ev = c.event()?;
        latest = latest_time(latest, ev.time);
        if latest > MAX_DURATION_US as i64 {
            return Err(c.err_at(
                ev.line,
                ev.col,
                format!(
                    "the script's times add up past {MAX_DURATION_US} us (about 31 years), the longest a drill runs"
                ),
            ));
        }
        pkt.events.push(ev);
    }
    if pkt.events.is_empty() {
        return Err(c.err(
            "no events: a script needs at least one (a time, then a packet, a system call or a `command`)".into(),
        ));
    }
    Ok(pkt)
}

/// The latest script time once an event at `t` has run, `latest` being
/// the latest before it (as the executor reckons relative times).
fn latest_time(latest: i64, t: When) -> i64 {
    let (at, end) = t.resolve(latest.max(0) as u64);
    let later = at.unwrap_or(0).max(end.unwrap_or(0));
    latest.max(i64::try_from(later).unwrap_or(i64::MAX))
}

struct Cursor<'a> {
    file: &'a str,
    b: &'a [u8],
    src: &'a str,
    pos: usize,
    line: u32,
    col: u32,
    /// How deep [`Cursor::arg`] is in `[`, `{` and `f(` (it recurses).
    depth: usize,
}

impl<'a> Cursor<'a> {
    fn eof(&self) -> bool {
        self.pos >= self.b.len()
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }
    fn peek_at(&self, k: usize) -> Option<u8> {
        self.b.get(self.pos + k).copied()
    }
    fn starts_with(&self, s: &str) -> bool {
        self.b[self.pos..].starts_with(s.as_bytes())
    }
    fn bump(&mut self) {
        if let Some(ch) = self.src[self.pos..].chars().next() {
            self.pos += ch.len_utf8();
            if ch == '\n' {
                self.line += 1;
                self.col = 1;
            } else {
                self.col += 1;
            }
        }
    }
    fn err_at(&self, line: u32, col: u32, msg: String) -> PktError {
        PktError {
            file: self.file.into(),
            line,
            col,
            msg,
        }
    }
    fn err(&self, msg: String) -> PktError {
        self.err_at(self.line, self.col, msg)
    }
    /// What is at the cursor, for messages.
    fn found(&self) -> String {
        if self.eof() {
            return "the end of the file".into();
        }
        let rest = &self.src[self.pos..];
        let w: String = rest
            .chars()
            .take_while(|c| !c.is_whitespace())
            .take(24)
            .collect();
        format!("`{w}`")
    }
    fn expected(&self, what: &str) -> PktError {
        self.err(format!("expected {what}, found {}", self.found()))
    }
    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if !f(b) {
                break;
            }
            self.bump();
        }
        &self.src[start..self.pos]
    }
    /// Skips whitespace and comments.
    fn skip_ws(&mut self) -> Result<(), PktError> {
        loop {
            match self.peek() {
                Some(b) if b.is_ascii_whitespace() => self.bump(),
                Some(b'/') if self.peek_at(1) == Some(b'/') => {
                    while !matches!(self.peek(), None | Some(b'\n')) {
                        self.bump();
                    }
                }
                Some(b'/') if self.peek_at(1) == Some(b'*') => {
                    let (l, c) = (self.line, self.col);
                    self.bump();
                    self.bump();
                    loop {
                        if self.eof() {
                            return Err(self.err_at(l, c, "unterminated /* comment".into()));
                        }
                        if self.starts_with("*/") {
                            self.bump();
                            self.bump();
                            break;
                        }
                        self.bump();
                    }
                }
                _ => return Ok(()),
            }
        }
    }
    /// Skips spaces and comments on the current line only.
    fn skip_inline(&mut self) -> Result<(), PktError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r') => self.bump(),
                Some(b'/') if self.peek_at(1) == Some(b'*') => {
                    let (l, _) = (self.line, self.col);
                    self.skip_ws()?;
                    if self.line != l {
                        return Ok(());
                    }
                }
                _ => return Ok(()),
            }
        }
    }
    fn eat(&mut self, s: &str) -> Result<bool, PktError> {
        self.skip_ws()?;
        if self.starts_with(s) {
            for _ in 0..s.len() {
                self.bump();
            }
            Ok(true)
        } else {
            Ok(false)
        }
    }
    fn expect(&mut self, s: &str, what: &str) -> Result<(), PktError> {
        if !self.eat(s)? {
            return Err(self.expected(what));
        }
        Ok(())
    }
    fn word(&mut self) -> &'a str {
        self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_')
    }

    /// A time in seconds (`0.100`, `.1`, `2`), as microseconds.
    fn seconds(&mut self) -> Result<i64, PktError> {
        let (l, c) = (self.line, self.col);
        let int = self.take_while(|b| b.is_ascii_digit());
        let mut frac = "";
        if self.peek() == Some(b'.') && self.peek_at(1) != Some(b'.') {
            self.bump();
            frac = self.take_while(|b| b.is_ascii_digit());
        }
        if int.is_empty() && frac.is_empty() {
            return Err(self.err_at(
                l,
                c,
                format!(
                    "expected a time in seconds (`0.100`, `+.1`), found {}",
                    self.found()
                ),
            ));
        }
        if frac.len() > 6 {
            return Err(self.err_at(
                l,
                c,
                "a time has at most six decimals (microseconds)".into(),
            ));
        }
        let i: i64 = if int.is_empty() {
            0
        } else {
            int.parse()
                .map_err(|_| self.err_at(l, c, format!("time `{}` is too large", quote(int))))?
        };
        let mut f: i64 = if frac.is_empty() {
            0
        } else {
            frac.parse().unwrap_or(0)
        };
        for _ in frac.len()..6 {
            f *= 10;
        }
        // Bounded so that the executor's sums of times stay far from
        // overflow.
        i.checked_mul(1_000_000)
            .and_then(|x| x.checked_add(f))
            .filter(|t| *t <= MAX_DURATION_US as i64)
            .ok_or_else(|| {
                self.err_at(
                    l,
                    c,
                    format!("time too large (at most {MAX_DURATION_US} us)"),
                )
            })
    }

    fn when(&mut self) -> Result<When, PktError> {
        if self.peek() == Some(b'*') {
            self.bump();
            return Ok(When::Any);
        }
        let rel = self.peek() == Some(b'+');
        if rel {
            self.bump();
        }
        let start = self.seconds()?;
        // `+.002 ... 0.004`: packetdrill's lexer reads `...` as a token,
        // spaces around it or not.
        let save = (self.pos, self.line, self.col);
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.bump();
        }
        if !self.starts_with("...") {
            (self.pos, self.line, self.col) = save;
        }
        if self.starts_with("...") {
            self.bump();
            self.bump();
            self.bump();
            while matches!(self.peek(), Some(b' ' | b'\t')) {
                self.bump();
            }
            let end_rel = self.peek() == Some(b'+');
            if end_rel {
                self.bump();
            }
            let end = self.seconds()?;
            if !end_rel && end < start {
                return Err(self.err("the end of a time range comes before its start".into()));
            }
            return Ok(When::Range {
                start,
                end,
                rel,
                end_rel,
            });
        }
        if self.peek() == Some(b'~') {
            // packetdrill: `a~b`, or `+a~+b` (both ends relative).
            let (l, c) = (self.line, self.col);
            self.bump();
            let end_rel = self.peek() == Some(b'+');
            if end_rel {
                self.bump();
            }
            if end_rel != rel {
                return Err(self.err_at(
                    l,
                    c,
                    "a time window is `a~b` or `+a~+b` (both ends absolute or both relative)"
                        .into(),
                ));
            }
            let end = self.seconds()?;
            if end < start {
                return Err(self.err_at(
                    l,
                    c,
                    "the end of a time window comes before its start".into(),
                ));
            }
            return Ok(When::Window { start, end, rel });
        }
        Ok(if rel {
            When::Rel(start)
        } else {
            When::Abs(start)
        })
    }

    fn event(&mut self) -> Result<Event, PktError> {
        let (line, col, p0) = (self.line, self.col, self.pos);
        if self.starts_with("%{") {
            return Err(
                self.err("a `%{ }%` block needs a time before it (`+0 %{ assert ... }%`)".into())
            );
        }
        if !matches!(self.peek(), Some(b'0'..=b'9' | b'+' | b'.' | b'*')) {
            return Err(self.expected("an event starting with a time (`0.000`, `+0.1`, `*`)"));
        }
        let time = self.when()?;
        self.skip_inline()?;
        let kind = match self.peek() {
            Some(b'<') => {
                self.bump();
                EventKind::Inbound(self.packet(true)?)
            }
            Some(b'>') => {
                self.bump();
                EventKind::Outbound(self.packet(false)?)
            }
            Some(b'`') => EventKind::Command(self.backticks()?),
            Some(b'%') if self.peek_at(1) == Some(b'{') => EventKind::Code(self.code_block()?),
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => EventKind::Syscall(self.syscall()?),
            _ => {
                return Err(self.expected(
                    "`<` (inbound packet), `>` (outbound packet), a system call or a `command` after the time",
                ));
            }
        };
        if matches!(time, When::Window { .. }) && !matches!(kind, EventKind::Outbound(_)) {
            return Err(self.err_at(
                line,
                col,
                "a time window `a~b` can only be used with outbound packets (as in packetdrill)"
                    .into(),
            ));
        }
        let text = self.src[p0..self.pos]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Event {
            line,
            col,
            text,
            time,
            kind,
        })
    }

    /// `` `command` ``, at the opening backtick: the command's text.
    fn backticks(&mut self) -> Result<String, PktError> {
        self.bump();
        let (l, c) = (self.line, self.col);
        let cmd = self.take_while(|b| b != b'`').to_string();
        if self.peek() != Some(b'`') {
            return Err(self.err_at(l, c, "unterminated backtick command".into()));
        }
        self.bump();
        Ok(cmd.trim().to_string())
    }

    /// `%{ ... }%`: the assertions of the block, each at its line and
    /// column.
    fn code_block(&mut self) -> Result<Vec<super::expr::Assertion>, PktError> {
        let (l0, c0) = (self.line, self.col);
        self.bump();
        self.bump();
        let start = self.pos;
        let Some(len) = self.src[start..].find("}%") else {
            return Err(self.err_at(l0, c0, "unterminated `%{` block (no `}%`)".into()));
        };
        let body = &self.src[start..start + len];
        let (bl, bc) = (self.line, self.col);
        // The line and column of a byte offset into the body.
        let place = |off: usize| -> (u32, u32) {
            let before = &body[..off.min(body.len())];
            match before.rfind('\n') {
                Some(nl) => (
                    bl + before.matches('\n').count() as u32,
                    before[nl + 1..].chars().count() as u32 + 1,
                ),
                None => (bl, bc + before.chars().count() as u32),
            }
        };
        let asserts = super::expr::parse_block(body).map_err(|e| {
            let (l, c) = place(e.offset);
            self.err_at(l, c, e.msg)
        })?;
        let out = asserts
            .into_iter()
            .map(|(off, mut a)| {
                (a.line, a.col) = place(off);
                a
            })
            .collect();
        while self.pos < start + len + 2 {
            self.bump();
        }
        Ok(out)
    }

    fn u32_num(&mut self, what: &str) -> Result<u32, PktError> {
        self.skip_ws()?;
        let (l, c) = (self.line, self.col);
        let w = self.take_while(|b| b.is_ascii_alphanumeric());
        let v = if let Some(h) = w.strip_prefix("0x") {
            u64::from_str_radix(h, 16).ok()
        } else {
            w.parse::<u64>().ok()
        };
        match v {
            Some(v) if v <= u32::MAX as u64 => Ok(v as u32),
            _ => Err(self.err_at(
                l,
                c,
                format!(
                    "expected {what} (a number up to 4294967295), found `{}`{}",
                    quote(w),
                    if w.is_empty() {
                        self.found()
                    } else {
                        String::new()
                    }
                ),
            )),
        }
    }

    fn packet(&mut self, inbound: bool) -> Result<PacketSpec, PktError> {
        self.skip_inline()?;
        let (l, c) = (self.line, self.col);
        let ftext = self.take_while(|b| !b.is_ascii_whitespace());
        let other = match ftext {
            "icmp" | "icmpv6" => {
                Some("ICMP packets (the drill injects and checks TCP segments only)")
            }
            "udp" | "udplite" | "gre" | "mpls" => {
                Some("non-TCP packets (the drill injects and checks TCP segments only)")
            }
            t if t.starts_with('[') => Some("an IP ECN field `[...]` (ECN is not supported)"),
            _ => None,
        };
        if let Some(why) = other {
            return Err(self.err_at(l, c, format!("unsupported: `{}`: {why}", quote(ftext))));
        }
        let flags = parse_flags(ftext).ok_or_else(|| {
            self.err_at(
                l,
                c,
                format!(
                    "expected TCP flags (`S`, `S.`, `.`, `P.`, `F.`, `R`, `R.`, `U`, `E`, `W`, `-`), found `{}`",
                    quote(ftext)
                ),
            )
        })?;
        let start = self.u32_num("the first sequence number of `start:end(len)`")?;
        self.expect(":", "`:` in `start:end(len)`")?;
        let end = self.u32_num("the end sequence number of `start:end(len)`")?;
        self.expect("(", "`(len)` after `start:end`")?;
        let len = self.u32_num("the payload length")?;
        self.expect(")", "`)` after the payload length")?;
        if end.wrapping_sub(start) != len {
            return Err(self.err_at(
                l,
                c,
                format!("`{start}:{end}({len})`: end - start must equal the length"),
            ));
        }
        let mut p = PacketSpec {
            flags,
            start,
            end,
            len,
            ack: None,
            win: None,
            urg: None,
            options: None,
        };
        loop {
            self.skip_inline()?;
            let save = (self.pos, self.line, self.col);
            let w = self.word();
            match w {
                "ack" => p.ack = Some(self.u32_num("the acknowledgement number")?),
                "win" => {
                    let (l, c) = (self.line, self.col);
                    let v = self.u32_num("the window")?;
                    p.win = Some(u16::try_from(v).map_err(|_| {
                        self.err_at(l, c, format!("window {v} does not fit the 16-bit field"))
                    })?);
                }
                "urg" => {
                    let v = self.u32_num("the urgent pointer")?;
                    p.urg = Some(v as u16);
                }
                "ecn" | "ect0" | "ect1" | "ce" | "noecn" | "ect01" => {
                    return Err(self.err_at(
                        save.1,
                        save.2,
                        format!("unsupported: `{}` (ECN markings)", quote(w)),
                    ));
                }
                "" if self.peek() == Some(b'<') => {
                    self.bump();
                    // `<...>`: any options, not checked (packetdrill's
                    // FLAG_OPTIONS_NOCHECK); an inbound packet carries none.
                    p.options = self.options()?;
                }
                "" => break,
                _ => {
                    // The next event's text (or a mistake): leave it.
                    (self.pos, self.line, self.col) = save;
                    break;
                }
            }
        }
        let _ = inbound;
        Ok(p)
    }

    /// The option list after `<`: `None` for `<...>`.
    fn options(&mut self) -> Result<Option<Vec<OptSpec>>, PktError> {
        let mut v = Vec::new();
        if self.eat(">")? {
            return Ok(Some(v));
        }
        if self.eat("...")? {
            self.expect(">", "`>` after `<...`")?;
            return Ok(None);
        }
        loop {
            self.skip_ws()?;
            let (l, c) = (self.line, self.col);
            let w = self.word();
            let o = match w {
                "nop" => OptSpec::Nop,
                "eol" => OptSpec::Eol,
                "sackOK" => OptSpec::SackOk,
                "mss" => {
                    let n = self.u32_num("the MSS")?;
                    OptSpec::Mss(
                        u16::try_from(n).map_err(|_| {
                            self.err_at(l, c, format!("mss {n} does not fit 16 bits"))
                        })?,
                    )
                }
                "wscale" => {
                    let n = self.u32_num("the window scale")?;
                    OptSpec::WScale(u8::try_from(n).map_err(|_| {
                        self.err_at(l, c, format!("wscale {n} does not fit 8 bits"))
                    })?)
                }
                "TS" => {
                    self.skip_ws()?;
                    if self.word() != "val" {
                        return Err(self.expected("`val` in `TS val N ecr N`"));
                    }
                    let val = self.u32_num("the TS value")?;
                    self.skip_ws()?;
                    if self.word() != "ecr" {
                        return Err(self.expected("`ecr` in `TS val N ecr N`"));
                    }
                    let ecr = self.u32_num("the TS echo reply")?;
                    OptSpec::Ts { val, ecr }
                }
                "sack" => {
                    let mut blocks = Vec::new();
                    loop {
                        self.skip_ws()?;
                        if !matches!(self.peek(), Some(b'0'..=b'9')) {
                            break;
                        }
                        let a = self.u32_num("a SACK block start")?;
                        self.expect(":", "`:` in a SACK block `a:b`")?;
                        let b = self.u32_num("a SACK block end")?;
                        blocks.push((a, b));
                    }
                    if blocks.is_empty() {
                        return Err(self.expected("SACK blocks `a:b` after `sack`"));
                    }
                    OptSpec::Sack(blocks)
                }
                "" => {
                    return Err(
                        self.expected("a TCP option (mss, sackOK, TS, nop, wscale, sack, eol)")
                    );
                }
                "FO" | "FOEXP" => {
                    return Err(self.err_at(
                        l,
                        c,
                        format!(
                            "unsupported: the TCP Fast Open option `{}` (neither drill engine has TCP Fast Open)",
                            quote(w)
                        ),
                    ));
                }
                other => {
                    return Err(self.err_at(
                        l,
                        c,
                        format!(
                            "unsupported TCP option `{}` (this subset knows mss, sackOK, TS val/ecr, nop, wscale, sack, eol)",
                            quote(other)
                        ),
                    ));
                }
            };
            v.push(o);
            if self.eat(",")? {
                continue;
            }
            self.expect(">", "`,` or `>` in the option list")?;
            return Ok(Some(v));
        }
    }

    fn syscall(&mut self) -> Result<Syscall, PktError> {
        let name = self.word().to_string();
        self.expect(
            "(",
            &format!("`(` after the system call `{}`", quote(&name)),
        )?;
        let mut args = Vec::new();
        if !self.eat(")")? {
            loop {
                args.push(self.arg()?);
                if self.eat(",")? {
                    continue;
                }
                self.expect(")", "`,` or `)` in the argument list")?;
                break;
            }
        }
        self.expect("=", "`= RESULT` after the system call")?;
        self.skip_ws()?;
        let (l, c) = (self.line, self.col);
        let neg = self.eat("-")?;
        let w = self.take_while(|b| b.is_ascii_alphanumeric());
        let parsed = match w.strip_prefix("0x").or_else(|| w.strip_prefix("0X")) {
            Some(h) => i64::from_str_radix(h, 16),
            None => w.parse::<i64>(),
        };
        let mut ret: i64 = match parsed {
            Ok(v) => v,
            Err(_) => {
                return Err(self.err_at(
                    l,
                    c,
                    format!(
                        "expected the return value (a number, e.g. `0` or `-1 ECONNRESET`), found `{}`",
                        quote(w)
                    ),
                ));
            }
        };
        if neg {
            ret = -ret;
        }
        let mut errno = None;
        if ret != -1 {
            // `= 0x2 (flags O_RDWR)`: a note after a result, as after an
            // errno.
            self.skip_inline()?;
            if self.peek() == Some(b'(') {
                let (l, c) = (self.line, self.col);
                self.take_while(|b| b != b')' && b != b'\n');
                if self.peek() != Some(b')') {
                    return Err(self.err_at(l, c, "unterminated `(` after the result".into()));
                }
                self.bump();
            }
        }
        if ret == -1 {
            self.skip_inline()?;
            let save = (self.pos, self.line, self.col);
            let e = self.word();
            match e.parse::<Errno>() {
                Ok(e) => errno = Some(e),
                // `= -1` alone: any errno (what follows is the next line).
                Err(_) if e.is_empty() => {
                    (self.pos, self.line, self.col) = save;
                    return Ok(Syscall {
                        name,
                        args,
                        ret,
                        errno,
                    });
                }
                Err(_) => {
                    return Err(self.expected("an errno name after `= -1` (e.g. `ECONNRESET`)"));
                }
            }
            self.skip_inline()?;
            if self.peek() == Some(b'(') {
                let (l, c) = (self.line, self.col);
                self.take_while(|b| b != b')' && b != b'\n');
                if self.peek() != Some(b')') {
                    return Err(self.err_at(l, c, "unterminated `(` after the errno".into()));
                }
                self.bump();
            }
        }
        Ok(Syscall {
            name,
            args,
            ret,
            errno,
        })
    }

    /// One argument; `[`, `{` and `f(` recurse, at most
    /// [`MAX_NESTING`] deep.
    fn arg(&mut self) -> Result<Arg, PktError> {
        if self.depth == MAX_NESTING {
            return Err(self.err(format!(
                "arguments nest at most {MAX_NESTING} deep (`[`, `{{` and `f(` inside one another)"
            )));
        }
        self.depth += 1;
        let a = self.arg_at_depth();
        self.depth -= 1;
        a
    }

    fn arg_at_depth(&mut self) -> Result<Arg, PktError> {
        self.skip_ws()?;
        if self.eat("...")? {
            return Ok(Arg::Ellipsis);
        }
        match self.peek() {
            Some(b'[') => {
                self.bump();
                let mut v = Vec::new();
                if !self.eat("]")? {
                    loop {
                        v.push(self.arg()?);
                        if self.eat(",")? {
                            continue;
                        }
                        self.expect("]", "`,` or `]` in a list")?;
                        break;
                    }
                }
                Ok(Arg::List(v))
            }
            Some(b'{') => {
                self.bump();
                let mut v = Vec::new();
                if !self.eat("}")? {
                    loop {
                        self.skip_ws()?;
                        if self.eat("...")? {
                            v.push(("...".to_string(), Arg::Ellipsis));
                        } else {
                            if !matches!(self.peek(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
                            {
                                // A positional member: `{..., 2000}` (an iovec).
                                v.push((String::new(), self.arg()?));
                            } else {
                                let k = self.word().to_string();
                                // `msg_iov(1)=`, `msg_name(...)=`: the count in
                                // parentheses is packetdrill's; the value says it.
                                if self.peek() == Some(b'(') {
                                    self.bump();
                                    if !self.eat(")")? {
                                        loop {
                                            self.arg()?;
                                            if self.eat(",")? {
                                                continue;
                                            }
                                            self.expect(")", "`)` after the field's count")?;
                                            break;
                                        }
                                    }
                                }
                                self.expect("=", &format!("`=` after the field `{}`", quote(&k)))?;
                                v.push((k, self.arg()?));
                            }
                        }
                        if self.eat(",")? {
                            continue;
                        }
                        self.expect("}", "`,` or `}` in a struct")?;
                        break;
                    }
                }
                Ok(Arg::Struct(v))
            }
            Some(b'"') => {
                self.bump();
                let (l, c) = (self.line, self.col);
                let mut s = String::new();
                loop {
                    match self.peek() {
                        None | Some(b'\n') => {
                            return Err(self.err_at(l, c, "unterminated string".into()));
                        }
                        Some(b'"') => {
                            self.bump();
                            break;
                        }
                        Some(b'\\') => {
                            self.bump();
                            let e = self.peek();
                            self.bump();
                            s.push(match e {
                                Some(b'n') => '\n',
                                Some(b't') => '\t',
                                Some(b'0') => '\0',
                                Some(x) => x as char,
                                None => break,
                            });
                        }
                        Some(_) => {
                            let ch = self.src[self.pos..].chars().next().unwrap_or(' ');
                            s.push(ch);
                            self.bump();
                        }
                    }
                }
                Ok(Arg::Str(s))
            }
            Some(b'-' | b'0'..=b'9') => {
                let (l, c) = (self.line, self.col);
                let neg = self.peek() == Some(b'-');
                if neg {
                    self.bump();
                }
                let w = self.take_while(|b| b.is_ascii_alphanumeric());
                let v = if let Some(h) = w.strip_prefix("0x") {
                    i64::from_str_radix(h, 16).ok()
                } else {
                    w.parse::<i64>().ok()
                };
                let v = v.ok_or_else(|| {
                    self.err_at(l, c, format!("expected a number, found `{}`", quote(w)))
                })?;
                Ok(Arg::Int(if neg { -v } else { v }))
            }
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => {
                let mut names = vec![self.word().to_string()];
                self.skip_inline()?;
                if self.peek() == Some(b'(') {
                    self.bump();
                    let mut v = Vec::new();
                    if !self.eat(")")? {
                        loop {
                            v.push(self.arg()?);
                            if self.eat(",")? {
                                continue;
                            }
                            self.expect(")", "`,` or `)`")?;
                            break;
                        }
                    }
                    return Ok(Arg::Call(names.remove(0), v));
                }
                while self.eat("|")? {
                    self.skip_ws()?;
                    let w = self.word();
                    if w.is_empty() {
                        return Err(self.expected("a flag name after `|`"));
                    }
                    names.push(w.to_string());
                }
                Ok(Arg::Ident(names))
            }
            _ => Err(self.expected(
                "an argument (`...`, a number, a NAME, `[N]`, `{field=value}` or a \"string\")",
            )),
        }
    }
}

/// packetdrill's flag letters: F S R P . U E W, any order, or `-`.
fn parse_flags(t: &str) -> Option<Flags> {
    if t.is_empty() {
        return None;
    }
    // `-`: no flag at all (parser.y's "no TCP flags set in segment").
    if t == "-" {
        return Some(Flags(0));
    }
    let mut f = 0u8;
    for ch in t.chars() {
        f |= match ch {
            'F' => 0x01,
            'S' => 0x02,
            'R' => 0x04,
            'P' => 0x08,
            '.' => 0x10,
            'U' => 0x20,
            'E' => 0x40,
            'W' => 0x80,
            _ => return None,
        };
    }
    Some(Flags(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_handshake_and_calls() {
        let p = parse(
            "t.pkt",
            "--tolerance_usecs=10000\n\
             // a comment\n\
             0.000 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
             +0 setsockopt(3, SOL_SOCKET, SO_LINGER, {l_onoff=1, l_linger=0}, 8) = 0\n\
             +0 bind(3, ..., ...) = 0\n\
             +0 listen(3, 1) = 0\n\
             +0 < S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>\n\
             +0 > S. 0:0(0) ack 1 <mss 65495,sackOK,TS val 1 ecr 100,nop,wscale 7>\n\
             +.1 < . 1:1(0) ack 1 win 257 /* inline */\n\
             0.1...0.3 read(4, ..., 10) = -1 ECONNRESET (Connection reset by peer)\n\
             +0 `sysctl -q net.ipv4.tcp_fin_timeout=5`\n",
        )
        .unwrap();
        assert_eq!(p.tolerance_us, Some(10000));
        assert_eq!(p.events.len(), 9);
        assert_eq!(p.events[0].time, When::Abs(0));
        assert_eq!(p.events[6].time, When::Rel(100_000));
        match &p.events[5].kind {
            EventKind::Outbound(s) => {
                assert_eq!(s.flags, Flags::SYN | Flags::ACK);
                assert_eq!(s.ack, Some(1));
                assert_eq!(s.options.as_ref().unwrap().len(), 5);
            }
            k => panic!("{k:?}"),
        }
        match &p.events[7].kind {
            EventKind::Syscall(s) => {
                assert_eq!(s.name, "read");
                assert_eq!(s.ret, -1);
                assert_eq!(s.errno, Some(Errno::ECONNRESET));
            }
            k => panic!("{k:?}"),
        }
        assert_eq!(
            p.events[7].time,
            When::Range {
                start: 100_000,
                end: 300_000,
                rel: false,
                end_rel: false
            }
        );
        assert_eq!(
            p.events[8].kind,
            EventKind::Command("sysctl -q net.ipv4.tcp_fin_timeout=5".into())
        );
    }

    #[test]
    fn packetdrill_constructs() {
        let p = parse(
            "t.pkt",
            "--tcp_ts_tick_usecs=1000 --local_ip=192.168.0.2\n\
             `../common/defaults.sh\n more`\n\
             0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 5\n\
             +0 > S 0:0(0) <...>\n\
             +.1~+.2 > S 0:0(0) <>\n\
             0.3~0.4 > S 0:0(0)\n\
             +0 ... 0.5 close(5) = 0\n\
             +0 write(5, ..., 10) = -1\n\
             +0 %{ assert tcpi_state == TCP_CLOSE # c\n  assert (tcpi_options & 2) != 0, 'x' }%\n\
             `/tmp/sysctl_restore_${PPID}.sh`\n",
        )
        .unwrap();
        assert_eq!(p.local_ip, Some(std::net::Ipv4Addr::new(192, 168, 0, 2)));
        assert_eq!(
            p.events[0].kind,
            EventKind::Command("../common/defaults.sh\n more".into())
        );
        let opts = |k: &EventKind| match k {
            EventKind::Outbound(s) => s.options.clone(),
            k => panic!("{k:?}"),
        };
        assert_eq!(opts(&p.events[2].kind), None);
        assert_eq!(opts(&p.events[3].kind), Some(vec![]));
        assert_eq!(
            p.events[3].time,
            When::Window {
                start: 100_000,
                end: 200_000,
                rel: true
            }
        );
        assert_eq!(
            p.events[4].time,
            When::Window {
                start: 300_000,
                end: 400_000,
                rel: false
            }
        );
        assert_eq!(
            p.events[5].time,
            When::Range {
                start: 0,
                end: 500_000,
                rel: true,
                end_rel: false
            }
        );
        match &p.events[6].kind {
            EventKind::Syscall(s) => assert_eq!((s.ret, s.errno), (-1, None)),
            k => panic!("{k:?}"),
        }
        match &p.events[7].kind {
            EventKind::Code(a) => {
                assert_eq!(a.len(), 2);
                assert_eq!((a[1].line, a[1].col), (11, 3));
                assert_eq!(a[1].text, "(tcpi_options & 2) != 0");
            }
            k => panic!("{k:?}"),
        }
        assert!(matches!(p.events[8].kind, EventKind::Command(_)));
    }

    #[test]
    fn errors_carry_line_and_column() {
        let e = parse(
            "x.pkt",
            "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < Q 0:0(0) win 1\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.col), (2, 6));
        assert!(e.msg.contains("TCP flags"), "{e}");
        let e = parse("x.pkt", "+0 < S 0:1(0) win 1\n").unwrap_err();
        assert!(e.msg.contains("end - start"), "{e}");
        let e = parse(
            "x.pkt",
            "+0 < icmp unreachable frag_needed mtu 1200 [0:0(0)]\n",
        )
        .unwrap_err();
        assert!(e.msg.contains("ICMP"), "{e}");
        let e = parse("x.pkt", "+0 < S 0:0(0) win 1 <md5 1>\n").unwrap_err();
        assert!(e.msg.contains("unsupported TCP option `md5`"), "{e}");
        let e = parse("x.pkt", "%{ print(1) }%\n").unwrap_err();
        assert!(e.msg.contains("needs a time"), "{e}");
        let e = parse("x.pkt", "+0 %{\nassert tcpi_state == 1\nx += 1\n}%\n").unwrap_err();
        assert_eq!((e.line, e.col), (3, 1), "{e}");
        assert!(e.msg.contains("unsupported Python"), "{e}");
        let e = parse("x.pkt", "+0 close(3) = 0\n`a`\n+0 close(4) = 0\n").unwrap_err();
        assert!(e.msg.contains("untimed"), "{e}");
        let e = parse("x.pkt", "+0.1~+0.2 close(3) = 0\n").unwrap_err();
        assert!(e.msg.contains("outbound"), "{e}");
        let e = parse("x.pkt", "--ip_version=ipv6\n+0 close(3) = 0\n").unwrap_err();
        assert!(e.msg.contains("IPv6"), "{e}");
        let e = parse("x.pkt", "+0 close(3) = \n").unwrap_err();
        assert!(e.msg.contains("return value"), "{e}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Lines made of the constructs this parser reads, shuffled and cut
        /// anywhere: a script or a file:line:col error, never a panic.
        #[test]
        fn any_mix_of_constructs_parses_or_fails(parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n", "`../common/defaults.sh`\n",
                "`a\nb`", "+0 %{ assert tcpi_state == TCP_CLOSE }%\n", "%{", "}%", "+.1~+.2 > F. 1:1(0) ack 1\n",
                "0.1~0.2", "> S 0:0(0) <...>\n", "<...", "= -1\n", "= 0x2 (flags O_RDWR)\n",
                "--local_ip=192.168.0.1 ", "--tcp_ts_tick_usecs=1000\n", "recvmsg(4, {msg_name(...)=..., msg_iov(1)=[{..., 5}], msg_flags=0}, 0) = 5\n",
                "+0 ", "(", ")", "{", "}", "[", "]", "~", "+", "\n", " ", "`",
            ]),
            0..30,
        )) {
            let text: String = parts.concat();
            let _ = parse("p.pkt", &text);
        }
    }
}
