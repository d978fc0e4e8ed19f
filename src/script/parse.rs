//! The `.sim` parser: a line-oriented tokenizer and a recursive-descent
//! parser over each line. It never panics: every path that could index out
//! of range returns a [`ScriptError`] instead (a proptest checks this).

use super::*;
use crate::limits::{self, MAX_CALL_BYTES, MAX_DURATION_US, MAX_HOSTS, MAX_NESTING, MAX_REPEAT};
use crate::vocab::{Counter, Errno, Policy, Sysctl, SysctlError, Sysctls, TcpState, list};

/// A script error: where, what was found, what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: expected {expected}, found {found}")]
pub struct ScriptError {
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub found: String,
    pub expected: String,
}

/// Why a script file could not become a [`Script`].
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{file}: cannot read the script")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// The text is not a valid script.
    #[error(transparent)]
    Script(#[from] ScriptError),
}

/// Reads and parses a file (at most [`limits::MAX_SCRIPT_BYTES`]).
pub fn parse_file(path: &str) -> Result<Script, LoadError> {
    let bytes = limits::read_script(path).map_err(|source| LoadError::Read {
        file: path.into(),
        source,
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(parse(path, &text)?),
        Err(e) => {
            let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = upto.iter().filter(|&&b| b == b'\n').count() as u32 + 1;
            Err(ScriptError {
                file: path.into(),
                line,
                col: 1,
                found: "bytes that are not UTF-8".into(),
                expected: "a UTF-8 text file".into(),
            }
            .into())
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Str(Vec<u8>),
    Punct(char),
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    col: u32,
}

impl Tok {
    fn show(&self) -> String {
        match self {
            Tok::Word(w) => format!("\"{}\"", limits::quote(w)),
            Tok::Str(s) => format!(
                "the string {:?}",
                limits::quote(&String::from_utf8_lossy(s))
            ),
            Tok::Punct(c) => format!("'{c}'"),
        }
    }
}

const PUNCT: &str = "={},|>()";

/// Splits one line into tokens; stops at a `#` outside a string.
fn tokenize(line: &str, ln: u32, file: &str) -> Result<Vec<Token>, ScriptError> {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let err = |col: usize, found: String, expected: &str| ScriptError {
        file: file.into(),
        line: ln,
        col: col as u32 + 1,
        found,
        expected: expected.into(),
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            break;
        } else if PUNCT.contains(c) {
            out.push(Token {
                tok: Tok::Punct(c),
                col: i as u32 + 1,
            });
            i += 1;
        } else if c == '"' {
            let start = i;
            i += 1;
            let mut s = String::new();
            loop {
                let Some(&c) = chars.get(i) else {
                    return Err(err(
                        start,
                        "an unterminated string".into(),
                        "a closing '\"'",
                    ));
                };
                i += 1;
                match c {
                    '"' => break,
                    '\\' => {
                        let Some(&e) = chars.get(i) else {
                            return Err(err(
                                i - 1,
                                "'\\' at the end of the line".into(),
                                "an escape like \\r \\n \\t \\\\ \\\" \\xNN",
                            ));
                        };
                        i += 1;
                        match e {
                            'n' => s.push('\n'),
                            'r' => s.push('\r'),
                            't' => s.push('\t'),
                            '0' => s.push('\0'),
                            '\\' => s.push('\\'),
                            '"' => s.push('"'),
                            'x' => {
                                let hex: String = chars.iter().skip(i).take(2).collect();
                                match u8::from_str_radix(&hex, 16) {
                                    Ok(b) if hex.len() == 2 => {
                                        s.push(b as char);
                                        i += 2;
                                    }
                                    _ => {
                                        return Err(err(
                                            i - 2,
                                            format!("\\x{hex}"),
                                            "two hex digits after \\x",
                                        ));
                                    }
                                }
                            }
                            other => {
                                return Err(err(
                                    i - 2,
                                    format!("\\{other}"),
                                    "an escape like \\r \\n \\t \\\\ \\\" \\xNN",
                                ));
                            }
                        }
                    }
                    c => s.push(c),
                }
            }
            // \xNN escapes are bytes, everything else UTF-8.
            let bytes = s
                .chars()
                .flat_map(|c| {
                    if (c as u32) < 256 && !c.is_ascii() {
                        vec![c as u32 as u8]
                    } else {
                        let mut b = [0u8; 4];
                        c.encode_utf8(&mut b).as_bytes().to_vec()
                    }
                })
                .collect();
            out.push(Token {
                tok: Tok::Str(bytes),
                col: start as u32 + 1,
            });
        } else {
            let start = i;
            while i < chars.len()
                && !chars[i].is_whitespace()
                && !PUNCT.contains(chars[i])
                && chars[i] != '"'
                && chars[i] != '#'
            {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Word(chars[start..i].iter().collect()),
                col: start as u32 + 1,
            });
        }
    }
    Ok(out)
}

/// A cursor over one line's tokens.
struct Line<'a> {
    file: &'a str,
    ln: u32,
    toks: Vec<Token>,
    pos: usize,
    end_col: u32,
}

impl<'a> Line<'a> {
    fn err(&self, expected: impl Into<String>) -> ScriptError {
        let (found, col) = match self.toks.get(self.pos) {
            Some(t) => (t.tok.show(), t.col),
            None => ("the end of the line".to_string(), self.end_col),
        };
        ScriptError {
            file: self.file.into(),
            line: self.ln,
            col,
            found,
            expected: expected.into(),
        }
    }
    fn err_at(&self, pos: usize, expected: impl Into<String>) -> ScriptError {
        let save = Line {
            file: self.file,
            ln: self.ln,
            toks: self.toks.clone(),
            pos,
            end_col: self.end_col,
        };
        save.err(expected)
    }
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }
    fn peek_word(&self) -> Option<&str> {
        match self.peek() {
            Some(Tok::Word(w)) => Some(w),
            _ => None,
        }
    }
    fn at_end(&self) -> bool {
        self.pos >= self.toks.len()
    }
    fn word(&mut self, expected: &str) -> Result<String, ScriptError> {
        match self.peek() {
            Some(Tok::Word(w)) => {
                let w = w.clone();
                self.pos += 1;
                Ok(w)
            }
            _ => Err(self.err(expected)),
        }
    }
    fn eat_word(&mut self, w: &str) -> bool {
        if self.peek_word() == Some(w) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn eat_punct(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Punct(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn punct(&mut self, c: char) -> Result<(), ScriptError> {
        if self.eat_punct(c) {
            Ok(())
        } else {
            Err(self.err(format!("'{c}'")))
        }
    }
    fn int<T: std::str::FromStr>(&mut self, expected: &str) -> Result<T, ScriptError> {
        let pos = self.pos;
        let w = self.word(expected)?;
        w.parse::<T>().map_err(|_| self.err_at(pos, expected))
    }
    fn end(&self) -> Result<(), ScriptError> {
        if self.at_end() {
            Ok(())
        } else {
            Err(self.err("the end of the line (or a # comment)"))
        }
    }
    fn duration(&mut self) -> Result<u64, ScriptError> {
        let pos = self.pos;
        let w = self.word("a duration like 61s, 200ms or 500us")?;
        parse_duration(&w).ok_or_else(|| self.err_at(pos, "a duration like 61s, 200ms or 500us"))
    }
}

/// `61s`, `1.5s`, `200ms`, `500us`, `2m` → microseconds.
pub fn parse_duration(w: &str) -> Option<u64> {
    let (num, mult) = if let Some(n) = w.strip_suffix("ms") {
        (n, 1_000.0)
    } else if let Some(n) = w.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = w.strip_suffix('s') {
        (n, 1_000_000.0)
    } else if let Some(n) = w.strip_suffix('m') {
        (n, 60_000_000.0)
    } else {
        return None;
    };
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let v: f64 = num.parse().ok()?;
    let us = v * mult;
    if !us.is_finite() || us > MAX_DURATION_US as f64 {
        return None;
    }
    Some(us.round() as u64)
}

const VERBS: &str = "socket, listen, connect, accept, send, recv, shutdown, close, exit, poll, setsockopt, getsockopt, ioctl, disconnect, sysctl, drop, delay, hold, release";

/// The kinds of block a script can open.
#[derive(Clone, Copy, PartialEq)]
enum Block {
    /// `repeat N {`: any steps, nests.
    Repeat(u32),
    /// `together {`: calls only, innermost.
    Together,
    /// `when policy NAME {`: expectations only, innermost.
    When(Policy),
}

impl Block {
    /// The block's keyword, for messages (`an empty repeat block`).
    fn word(self) -> &'static str {
        match self {
            Block::Repeat(_) => "repeat",
            Block::Together => "together",
            Block::When(_) => "when",
        }
    }

    /// How the block is written, for messages.
    fn head(self) -> &'static str {
        match self {
            Block::Repeat(_) => "repeat N",
            Block::Together => "together",
            Block::When(_) => "when policy NAME",
        }
    }
}

/// A block being parsed.
struct Open {
    line: u32,
    col: u32,
    text: String,
    kind: Block,
    steps: Vec<Step>,
}

/// Parses a whole script.
pub fn parse(file: &str, text: &str) -> Result<Script, ScriptError> {
    let mut script = Script {
        path: file.to_string(),
        title: String::new(),
        description: Vec::new(),
        hosts: Vec::new(),
        horizon_us: None,
        steps: Vec::new(),
    };
    // The open blocks, innermost last: `repeat N {` (any steps, nests) and
    // `together {` (calls only, innermost).
    let mut blocks: Vec<Open> = Vec::new();
    let mut hosts_line = false;
    if text.len() > limits::MAX_SCRIPT_BYTES {
        return Err(ScriptError {
            file: file.into(),
            line: 0,
            col: 0,
            found: limits::too_big(),
            expected: "a readable .sim file".into(),
        });
    }
    for (idx, raw) in text.lines().enumerate() {
        let ln = idx as u32 + 1;
        if let Some((_, col)) = limits::long_line(raw) {
            return Err(ScriptError {
                file: file.into(),
                line: ln,
                col,
                found: limits::line_too_long(),
                expected: "a shorter line".into(),
            });
        }
        let toks = tokenize(raw, ln, file)?;
        if toks.is_empty() {
            continue;
        }
        let end_col = raw.chars().count() as u32 + 1;
        let first_col = toks[0].col;
        let mut l = Line {
            file,
            ln,
            toks,
            pos: 0,
            end_col,
        };
        let stripped = strip_comment(raw).trim().to_string();
        let innermost = blocks.last().map(|b| b.kind);
        let in_together = innermost == Some(Block::Together);
        let in_when = matches!(innermost, Some(Block::When(_)));
        let head = match l.peek() {
            Some(Tok::Word(w)) => w.clone(),
            Some(Tok::Punct('}')) => {
                l.pos += 1;
                l.end()?;
                let Some(b) = blocks.pop() else {
                    return Err(l.err_at(
                        0,
                        "a step (there is no open `together {`, `repeat N {` or `when policy NAME {`)",
                    ));
                };
                if b.steps.is_empty() {
                    return Err(ScriptError {
                        file: file.into(),
                        line: ln,
                        col: first_col,
                        found: format!("an empty {} block", b.kind.word()),
                        expected: match b.kind {
                            Block::Repeat(_) => "at least one step inside `repeat N { }`",
                            Block::Together => "at least one call inside `together { }`",
                            Block::When(_) => {
                                "at least one expectation inside `when policy NAME { }`"
                            }
                        }
                        .into(),
                    });
                }
                let step = Step {
                    line: b.line,
                    col: b.col,
                    text: b.text,
                    kind: match b.kind {
                        Block::Repeat(count) => StepKind::Repeat {
                            count,
                            steps: b.steps,
                        },
                        Block::Together => StepKind::Together(b.steps),
                        Block::When(policy) => StepKind::When {
                            policy,
                            steps: b.steps,
                        },
                    },
                };
                match blocks.last_mut() {
                    Some(outer) => outer.steps.push(step),
                    None => script.steps.push(step),
                }
                continue;
            }
            _ => return Err(l.err(format!("a directive (title, description, hosts, horizon, wait, together, repeat, when, expect) or a host name followed by a call ({VERBS})"))),
        };
        // Directives whose argument is the rest of the line.
        if head == "title" || head == "description" {
            let rest = raw
                .chars()
                .skip(first_col as usize - 1 + head.len())
                .collect::<String>()
                .trim()
                .to_string();
            if !blocks.is_empty() {
                return Err(l.err(if in_together {
                    "a call inside `together { }`".to_string()
                } else {
                    format!(
                        "a step inside `{} {{ }}` (title and description stand outside blocks)",
                        innermost.map_or("", Block::head)
                    )
                }));
            }
            if head == "title" {
                if !script.title.is_empty() {
                    return Err(l.err("one title line only"));
                }
                if rest.is_empty() {
                    l.pos = 1;
                    return Err(l.err("the title text"));
                }
                script.title = rest;
            } else {
                script.description.push(rest);
            }
            continue;
        }
        if (head == "hosts" || head == "horizon") && !blocks.is_empty() {
            return Err(l.err_at(0, "a step (`hosts` and `horizon` stand outside blocks)"));
        }
        if head == "hosts" {
            l.pos += 1;
            if hosts_line {
                return Err(l.err_at(0, "one hosts line only"));
            }
            hosts_line = true;
            // A set, and the limit before anything else: a line of 200,000
            // names is refused at the 251st, not searched name by name.
            let mut seen = std::collections::HashSet::new();
            while !l.at_end() {
                let pos = l.pos;
                let h = l.word("a host name")?;
                if script.hosts.len() == MAX_HOSTS {
                    return Err(l.err_at(pos, format!("at most {MAX_HOSTS} hosts")));
                }
                if !valid_name(&h) || RESERVED.contains(&h.as_str()) {
                    return Err(l.err_at(
                        pos,
                        "a host name (letters, digits, '_' or '-', starting with a letter, not a keyword)",
                    ));
                }
                if !seen.insert(h.clone()) {
                    return Err(l.err_at(pos, "a host name not already declared"));
                }
                script.hosts.push(h);
                l.eat_punct(',');
            }
            if script.hosts.is_empty() {
                return Err(l.err("at least one host name"));
            }
            continue;
        }
        // `expect always ...` / `expect never ...`: a property over every
        // schedule of the scenario, which `finrst explore` checks
        // (crate::explore); one run has no schedules to range over.
        if head == "expect"
            && matches!(l.toks.get(1).map(|t| &t.tok), Some(Tok::Word(w)) if w == "always" || w == "never")
        {
            continue;
        }
        if head == "horizon" {
            l.pos += 1;
            script.horizon_us = Some(l.duration()?);
            l.end()?;
            continue;
        }
        if head == "together" || head == "repeat" || head == "when" {
            if in_together {
                return Err(l.err_at(0, "a call (blocks do not nest inside `together { }`)"));
            }
            if in_when {
                return Err(l.err_at(
                    0,
                    "an expectation (blocks do not nest inside `when policy NAME { }`)",
                ));
            }
            if !hosts_line {
                return Err(l.err_at(
                    0,
                    "a `hosts` line (e.g. `hosts client server`) before the first step",
                ));
            }
            l.pos += 1;
            let kind = match head.as_str() {
                "repeat" => {
                    let pos = l.pos;
                    let what = format!("a repeat count (1 to {MAX_REPEAT})");
                    let n: u64 = l.int(&what)?;
                    if !(1..=MAX_REPEAT).contains(&n) {
                        return Err(l.err_at(pos, what));
                    }
                    Block::Repeat(n as u32)
                }
                "when" => {
                    if !l.eat_word("policy") {
                        return Err(l.err("`policy` (as in `when policy always-fin {`)"));
                    }
                    let pos = l.pos;
                    let name = l.word("a policy name")?;
                    let policy = name.parse::<Policy>().map_err(|_| {
                        l.err_at(
                            pos,
                            format!("a policy name ({})", crate::vocab::list(Policy::ALL.iter())),
                        )
                    })?;
                    Block::When(policy)
                }
                _ => Block::Together,
            };
            l.punct('{')?;
            l.end()?;
            // The runner walks blocks with a stack of its own, but the
            // syntax tree is dropped, cloned and compared recursively.
            if blocks.len() == MAX_NESTING {
                return Err(l.err_at(
                    0,
                    format!("a step (blocks nest at most {MAX_NESTING} deep)"),
                ));
            }
            blocks.push(Open {
                line: ln,
                col: first_col,
                text: stripped,
                kind,
                steps: Vec::new(),
            });
            continue;
        }
        if !hosts_line {
            return Err(l.err_at(
                0,
                "a `hosts` line (e.g. `hosts client server`) before the first step",
            ));
        }
        let kind = parse_step(&mut l, &script)?;
        let step = Step {
            line: ln,
            col: first_col,
            text: stripped,
            kind,
        };
        match blocks.last_mut() {
            // Besides calls, a `wait` (time passes between two calls, the
            // network with it: how `finrst explore` writes a call that
            // falls between two deliveries) and a fault (on the segments
            // the calls after it send).
            Some(b) if b.kind == Block::Together => match step.kind {
                StepKind::Call(_) | StepKind::Wait { .. } | StepKind::Fault { .. } => {
                    b.steps.push(step)
                }
                _ => {
                    return Err(l.err_at(
                        0,
                        "a socket call, `wait` or fault (only these may stand in `together { }`)",
                    ));
                }
            },
            // The run is the same under every policy; only what is checked
            // differs.
            Some(b) if matches!(b.kind, Block::When(_)) => match step.kind {
                StepKind::Expect(_) => b.steps.push(step),
                _ => {
                    return Err(l.err_at(
                        0,
                        "an expectation (only `expect` lines stand in `when policy NAME { }`)",
                    ));
                }
            },
            Some(b) => b.steps.push(step),
            None => script.steps.push(step),
        }
    }
    if let Some(b) = blocks.last() {
        return Err(ScriptError {
            file: file.into(),
            line: b.line,
            col: b.col,
            found: format!("a `{} {{` that is never closed", b.kind.head()),
            expected: "a line with `}`".into(),
        });
    }
    if !hosts_line {
        return Err(ScriptError {
            file: file.into(),
            line: text.lines().count() as u32 + 1,
            col: 1,
            found: "the end of the file".into(),
            expected: "a `hosts` line (e.g. `hosts client server`)".into(),
        });
    }
    Ok(script)
}

/// The declared hosts for a message, cut short when there are many.
fn host_list(script: &Script) -> String {
    limits::quote(&script.hosts.join(", ")).into_owned()
}

const RESERVED: [&str; 10] = [
    "title",
    "repeat",
    "when",
    "description",
    "hosts",
    "horizon",
    "wait",
    "together",
    "expect",
    "no",
];

fn valid_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic())
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn strip_comment(raw: &str) -> &str {
    let mut in_str = false;
    let mut esc = false;
    for (i, c) in raw.char_indices() {
        if in_str {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
        } else if c == '#' {
            return &raw[..i];
        }
    }
    raw
}

fn host_ref(l: &mut Line, script: &Script) -> Result<(String, Option<String>), ScriptError> {
    let pos = l.pos;
    let w = l.word("a host name")?;
    let (h, s) = match w.split_once('.') {
        Some((h, s)) => (h.to_string(), Some(s.to_string())),
        None => (w.clone(), None),
    };
    if !script.hosts.contains(&h) {
        return Err(l.err_at(
            pos,
            format!("a host declared on the hosts line ({})", host_list(script)),
        ));
    }
    if let Some(s) = &s {
        if !valid_name(s) {
            return Err(l.err_at(
                pos,
                "HOST.SOCKET with a socket name of letters, digits, '_' or '-'",
            ));
        }
    }
    Ok((h, s))
}

fn parse_step(l: &mut Line, script: &Script) -> Result<StepKind, ScriptError> {
    match l.peek_word() {
        Some("wait") => {
            l.pos += 1;
            let us = l.duration()?;
            l.end()?;
            return Ok(StepKind::Wait { us });
        }
        Some("expect") => {
            l.pos += 1;
            let e = parse_expect(l, script)?;
            l.end()?;
            return Ok(StepKind::Expect(e));
        }
        _ => {}
    }
    let (host, sock) = host_ref(l, script)?;
    let verb_pos = l.pos;
    let verb = l.word(&format!("a call ({VERBS})"))?;
    let no_sock = |l: &Line| -> Result<(), ScriptError> {
        if sock.is_some() {
            Err(l.err_at(verb_pos - 1, "a host name without .SOCKET for this step"))
        } else {
            Ok(())
        }
    };
    // Host-level steps first.
    match verb.as_str() {
        "sysctl" => {
            no_sock(l)?;
            let pos = l.pos;
            let name = l.word("a sysctl name like net.ipv4.tcp_fin_timeout")?;
            let key: Sysctl = name
                .parse()
                .map_err(|_| l.err_at(pos, format!("a sysctl name ({})", Sysctl::names())))?;
            l.eat_punct('=');
            let pos = l.pos;
            let mut value = l.word("a sysctl value")?;
            // Vector sysctls such as tcp_rmem take several numbers.
            while let Some(w) = l.peek_word() {
                value.push(' ');
                value.push_str(w);
                l.pos += 1;
            }
            l.end()?;
            // A value the kernel's proc handler would refuse is a script
            // error, whichever engine runs it.
            if let Err(SysctlError::Value { why, .. }) = Sysctls::default().set(key, &value) {
                return Err(l.err_at(pos, format!("a value for {key} ({why})")));
            }
            return Ok(StepKind::Sysctl { host, key, value });
        }
        "drop" | "delay" | "hold" | "release" => {
            no_sock(l)?;
            let fault = match verb.as_str() {
                "drop" => Fault::Drop {
                    count: opt_count(l)?.unwrap_or(1),
                },
                "delay" => {
                    let us = l.duration()?;
                    Fault::Delay {
                        us,
                        count: opt_count(l)?.unwrap_or(1),
                    }
                }
                "hold" => Fault::Hold {
                    count: opt_count(l)?,
                },
                _ => {
                    l.end()?;
                    return Ok(StepKind::Release { host });
                }
            };
            l.end()?;
            return Ok(StepKind::Fault { host, fault });
        }
        _ => {}
    }
    let call = match verb.as_str() {
        "socket" => Call::Socket,
        "listen" => {
            let port = l.int::<u16>("a port number (1-65535)")?;
            if port == 0 {
                return Err(l.err_at(l.pos - 1, "a port number (1-65535)"));
            }
            let backlog = if l.eat_word("backlog") {
                l.int::<u32>("a backlog (a number)")?
            } else {
                DEFAULT_BACKLOG
            };
            Call::Listen { port, backlog }
        }
        "connect" => {
            let pos = l.pos;
            let target = l.word("HOST:PORT")?;
            let Some((h, p)) = target.split_once(':') else {
                return Err(l.err_at(pos, "HOST:PORT, e.g. server:9999"));
            };
            if !script.hosts.iter().any(|x| x == h) {
                return Err(l.err_at(
                    pos,
                    format!("HOST:PORT with a declared host ({})", host_list(script)),
                ));
            }
            let port = match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(l.err_at(pos, "HOST:PORT with a port from 1 to 65535")),
            };
            let from_port = if l.eat_word("from") {
                let pos = l.pos;
                let p = l.int::<u16>("a local port number")?;
                if p == 0 {
                    return Err(l.err_at(pos, "a local port number from 1 to 65535"));
                }
                Some(p)
            } else {
                None
            };
            // O_NONBLOCK: connect returns EINPROGRESS at once (a program
            // that sets the descriptor non-blocking first).
            let nonblock = l.eat_word("O_NONBLOCK");
            Call::Connect {
                host: h.to_string(),
                port,
                from_port,
                nonblock,
            }
        }
        "accept" => Call::Accept,
        "send" => {
            let data = match l.peek().cloned() {
                Some(Tok::Str(b)) => {
                    l.pos += 1;
                    Data::Bytes(b)
                }
                Some(Tok::Word(_)) => Data::Count(l.int::<u32>("a byte count or a quoted string")?),
                _ => return Err(l.err("a byte count or a quoted string")),
            };
            if data.len() > MAX_CALL_BYTES as usize {
                return Err(l.err_at(
                    l.pos - 1,
                    format!("a byte count of at most {MAX_CALL_BYTES}"),
                ));
            }
            let flags = msg_flags(l, &["MSG_OOB", "MSG_NOSIGNAL", "MSG_DONTWAIT"])?;
            Call::Send { data, flags }
        }
        "recv" => {
            let len = l.int::<u32>("a buffer length (a number)")?;
            if len > MAX_CALL_BYTES {
                return Err(l.err_at(l.pos - 1, format!("a length of at most {MAX_CALL_BYTES}")));
            }
            let flags = msg_flags(l, &["MSG_OOB", "MSG_PEEK", "MSG_DONTWAIT"])?;
            Call::Recv { len, flags }
        }
        "shutdown" => {
            let pos = l.pos;
            let w = l.word("SHUT_RD, SHUT_WR or SHUT_RDWR")?;
            Call::Shutdown(match w.as_str() {
                "SHUT_RD" => How::Rd,
                "SHUT_WR" => How::Wr,
                "SHUT_RDWR" => How::RdWr,
                _ => return Err(l.err_at(pos, "SHUT_RD, SHUT_WR or SHUT_RDWR")),
            })
        }
        "close" => Call::Close,
        "exit" => {
            no_sock(l)?;
            Call::Exit
        }
        "disconnect" => Call::Disconnect,
        "poll" => {
            let interest = if matches!(l.peek(), Some(Tok::Word(_))) {
                events(l)?
            } else {
                epoll::ALL
            };
            Call::Poll { interest }
        }
        "setsockopt" => Call::SetSockOpt(sockopt(l)?),
        "getsockopt" => {
            let pos = l.pos;
            match l.word("SO_MEMINFO or TCP_INFO")?.as_str() {
                "SO_MEMINFO" => Call::GetSockOpt(GetOpt::MemInfo),
                "TCP_INFO" => Call::GetSockOpt(GetOpt::TcpInfo),
                _ => return Err(l.err_at(pos, "SO_MEMINFO or TCP_INFO")),
            }
        }
        "ioctl" => {
            let pos = l.pos;
            match l.word("SIOCINQ (or FIONREAD)")?.as_str() {
                "SIOCINQ" | "FIONREAD" => Call::Ioctl(Ioctl::InQ),
                _ => return Err(l.err_at(pos, "SIOCINQ (or FIONREAD)")),
            }
        }
        _ => return Err(l.err_at(verb_pos, format!("a call ({VERBS})"))),
    };
    let name_as = if l.eat_word("as") {
        if !matches!(
            call,
            Call::Socket | Call::Listen { .. } | Call::Connect { .. } | Call::Accept
        ) {
            return Err(l.err_at(
                l.pos - 1,
                "`as NAME` only after socket, listen, connect or accept",
            ));
        }
        let pos = l.pos;
        let n = l.word("a socket name")?;
        if !valid_name(&n) {
            return Err(l.err_at(pos, "a socket name of letters, digits, '_' or '-'"));
        }
        Some(n)
    } else {
        None
    };
    let expected = if l.eat_punct('=') {
        Some(expected(l, &call)?)
    } else {
        None
    };
    l.end()?;
    Ok(StepKind::Call(CallStep {
        host,
        sock,
        call,
        name_as,
        expected,
    }))
}

fn opt_count(l: &mut Line) -> Result<Option<u32>, ScriptError> {
    if l.at_end() {
        return Ok(None);
    }
    l.eat_word("next");
    let pos = l.pos;
    let n = l.int::<u32>("a segment count")?;
    if n == 0 {
        return Err(l.err_at(pos, "a segment count of at least 1"));
    }
    Ok(Some(n))
}

fn msg_flags(l: &mut Line, allowed: &[&str]) -> Result<MsgFlags, ScriptError> {
    let mut f = MsgFlags::default();
    while let Some(w) = l.peek_word() {
        if w == "as" {
            break;
        }
        if !allowed.contains(&w) {
            return Err(l.err(format!("a flag ({}) or '='", allowed.join(", "))));
        }
        match w {
            "MSG_OOB" => f.oob = true,
            "MSG_NOSIGNAL" => f.nosignal = true,
            "MSG_PEEK" => f.peek = true,
            _ => f.dontwait = true,
        }
        l.pos += 1;
        l.eat_punct('|');
    }
    Ok(f)
}

fn events(l: &mut Line) -> Result<u32, ScriptError> {
    let mut m = 0;
    loop {
        let pos = l.pos;
        let w = l.word(
            "an epoll event (EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLHUP, EPOLLERR, EPOLLPRI) or 0",
        )?;
        if w == "0" {
            return Ok(0);
        }
        match epoll::NAMES.iter().find(|(n, _)| *n == w) {
            Some((_, b)) => m |= b,
            None => {
                return Err(l.err_at(
                    pos,
                    "an epoll event (EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLHUP, EPOLLERR, EPOLLPRI)",
                ));
            }
        }
        if !l.eat_punct('|') {
            return Ok(m);
        }
    }
}

fn bool_arg(l: &mut Line) -> Result<bool, ScriptError> {
    let pos = l.pos;
    match l.word("0 or 1")?.as_str() {
        "0" | "off" => Ok(false),
        "1" | "on" => Ok(true),
        _ => Err(l.err_at(pos, "0 or 1")),
    }
}

fn sockopt(l: &mut Line) -> Result<SockOpt, ScriptError> {
    const OPTS: &str = "SO_LINGER, SO_RCVBUF, SO_SNDBUF, SO_OOBINLINE, SO_KEEPALIVE, TCP_NODELAY, TCP_REPAIR, TCP_LINGER2, TCP_USER_TIMEOUT, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, TCP_SYNCNT or TCP_INQ";
    let pos = l.pos;
    let name = l.word(&format!("an option ({OPTS})"))?;
    l.eat_punct(',');
    Ok(match name.as_str() {
        "SO_LINGER" => {
            let braced = l.eat_punct('{');
            let on = bool_arg(l)?;
            l.eat_punct(',');
            let secs = l.int::<i32>("the linger time in seconds")?;
            if braced {
                l.punct('}')?;
            }
            SockOpt::Linger { on, secs }
        }
        "SO_RCVBUF" => SockOpt::RcvBuf(l.int("a buffer size in bytes")?),
        "SO_SNDBUF" => SockOpt::SndBuf(l.int("a buffer size in bytes")?),
        "SO_OOBINLINE" => SockOpt::OobInline(bool_arg(l)?),
        "TCP_NODELAY" => SockOpt::NoDelay(bool_arg(l)?),
        "TCP_REPAIR" => SockOpt::Repair(bool_arg(l)?),
        "TCP_LINGER2" => SockOpt::Linger2(l.int("a time in seconds (negative: reset at once)")?),
        "TCP_USER_TIMEOUT" => SockOpt::UserTimeout(l.int("a time in milliseconds")?),
        "SO_KEEPALIVE" => SockOpt::KeepAlive(bool_arg(l)?),
        "TCP_KEEPIDLE" => SockOpt::KeepIdle(l.int("a time in seconds")?),
        "TCP_KEEPINTVL" => SockOpt::KeepIntvl(l.int("a time in seconds")?),
        "TCP_KEEPCNT" => SockOpt::KeepCnt(l.int("a number of probes")?),
        "TCP_SYNCNT" => SockOpt::SynCnt(l.int("a number of SYN retransmissions")?),
        "TCP_INQ" => SockOpt::Inq(bool_arg(l)?),
        _ => return Err(l.err_at(pos, format!("an option ({OPTS})"))),
    })
}

fn expected(l: &mut Line, call: &Call) -> Result<Expected, ScriptError> {
    if matches!(call, Call::Poll { .. }) {
        return Ok(Expected::Events(events(l)?));
    }
    let pos = l.pos;
    let v = l.int::<i64>("a result (a number, or -1 and an errno name)")?;
    if v == -1 {
        let pos = l.pos;
        let e: Errno = l
            .word("an errno name after -1 (e.g. ECONNRESET)")?
            .parse()
            .map_err(|_| {
                l.err_at(
                    pos,
                    format!("an errno name ({})", list(Errno::NAMED.iter())),
                )
            })?;
        // packetdrill's `(Connection reset by peer)` may follow.
        if l.eat_punct('(') {
            while !l.at_end() && !l.eat_punct(')') {
                l.pos += 1;
            }
        }
        return Ok(Expected::Errno(e));
    }
    if v < -1 {
        return Err(l.err_at(pos, "a result of -1 (with an errno) or at least 0"));
    }
    Ok(Expected::Value(v))
}

fn parse_expect(l: &mut Line, script: &Script) -> Result<Expect, ScriptError> {
    let negated = l.eat_word("no");
    let (host, sock) = host_ref(l, script)?;
    if l.eat_punct('>') {
        if sock.is_some() {
            return Err(l.err_at(
                l.pos - 2,
                "a host name without .SOCKET in a segment expectation",
            ));
        }
        let pos = l.pos;
        let dst = l.word("the receiving host")?;
        if !script.hosts.contains(&dst) {
            return Err(l.err_at(pos, format!("a declared host ({})", host_list(script))));
        }
        let pos = l.pos;
        let fw = l.word("tcpdump flags like S, S., P., F., R, R., P.U or .")?;
        let flags = Flags::from_tcpdump(&fw)
            .ok_or_else(|| l.err_at(pos, "tcpdump flags like S, S., P., F., R, R., P.U or ."))?;
        let (mut seq, mut ack, mut win, mut len) = (None, None, None, None);
        while let Some(w) = l.peek_word() {
            let field = w.to_string();
            l.pos += 1;
            match field.as_str() {
                "seq" => seq = Some(l.int::<u32>("a relative sequence number")?),
                "ack" => ack = Some(l.int::<u32>("a relative ack number")?),
                "win" => win = Some(l.int::<u16>("a window (as on the wire)")?),
                "len" | "length" => len = Some(l.int::<u32>("a payload length")?),
                _ => return Err(l.err_at(l.pos - 1, "seq, ack, win or len")),
            }
            l.eat_punct(',');
        }
        return Ok(Expect::Segment {
            negated,
            src: host,
            dst,
            flags,
            seq,
            ack,
            win,
            len,
        });
    }
    if negated {
        return Err(l.err("'>' (`expect no` takes a segment: expect no client > server F.)"));
    }
    if l.eat_word("state") {
        let pos = l.pos;
        let state: TcpState = l.word("a TCP state name")?.parse().map_err(|_| {
            l.err_at(
                pos,
                format!("a TCP state name ({})", list(TcpState::ALL.iter())),
            )
        })?;
        return Ok(Expect::State { host, sock, state });
    }
    let pos = l.pos;
    let name = l
        .word("'>', `state` or a counter name")?
        .parse::<Counter>()
        .ok()
        .filter(|c| c.reported())
        .ok_or_else(|| {
            l.err_at(
                pos,
                format!(
                    "'>' for a segment, `state`, or a counter ({})",
                    list(Counter::ALL.iter().filter(|c| c.reported()))
                ),
            )
        })?;
    if sock.is_some() {
        return Err(l.err_at(pos - 1, "a host name without .SOCKET for a counter"));
    }
    l.punct('=')?;
    let value = l.int::<i64>("the counter's change (a number)")?;
    Ok(Expect::Counter { host, name, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> ScriptError {
        parse("t.sim", text).unwrap_err()
    }

    #[test]
    fn when_policy_holds_expectations_only() {
        let s = parse(
            "t.sim",
            "hosts a b\nb listen 9\nwhen policy always-fin {\n  expect a > b F.\n}\n",
        )
        .unwrap();
        assert!(matches!(
            &s.steps[1].kind,
            StepKind::When { policy: Policy::AlwaysFin, steps } if steps.len() == 1
        ));
        let e = err("hosts a\nwhen policy always-fin {\n a close\n}\n");
        assert_eq!((e.line, e.col), (3, 2));
        assert!(e.expected.contains("only `expect` lines"), "{e}");
        let e = err("hosts a\nwhen policy sometimes {\n}\n");
        assert_eq!((e.line, e.col), (2, 13));
        assert!(e.expected.contains("always-fin"), "{e}");
        let e = err("hosts a\nwhen policy linux {\n}\n");
        assert!(e.found.contains("empty when block"), "{e}");
        let e = err("hosts a\nwhen policy linux {\nrepeat 2 {\n");
        assert_eq!(e.line, 3);
        let e = err("hosts a\nwhen policy linux {\nexpect a TW = 1\n");
        assert!(e.found.contains("never closed"), "{e}");
    }

    #[test]
    fn parses_a_full_script() {
        let s = parse(
            "t.sim",
            "title demo\n# c\nhosts client server\nhorizon 300s\nserver listen 9999\n\
             client connect server:9999 = 0\nserver accept = 4 # fd\n\
             server send \"ab\\r\\n\" MSG_OOB = 4\nclient recv 10 MSG_PEEK|MSG_DONTWAIT = -1 EAGAIN\n\
             client setsockopt SO_LINGER {1, 5}\ntogether {\n client close\n server close\n}\n\
             wait 1.5s\nexpect client > server R. seq 1 ack 2\nexpect client state TIME_WAIT\n\
             expect client TCPAbortOnClose = 1\nserver poll = EPOLLIN|EPOLLRDHUP\nclient drop 2\nclient release\n\
             server sysctl net.ipv4.tcp_fin_timeout = 5\n",
        )
        .unwrap();
        assert_eq!(s.title, "demo");
        assert_eq!(s.hosts, vec!["client", "server"]);
        assert_eq!(s.horizon_us, Some(300_000_000));
        assert_eq!(s.steps.len(), 15);
        match &s.steps[3].kind {
            StepKind::Call(c) => {
                assert_eq!(
                    c.call,
                    Call::Send {
                        data: Data::Bytes(b"ab\r\n".to_vec()),
                        flags: MsgFlags {
                            oob: true,
                            ..Default::default()
                        }
                    }
                );
                assert_eq!(c.expected, Some(Expected::Value(4)));
            }
            k => panic!("{k:?}"),
        }
        assert!(matches!(&s.steps[6].kind, StepKind::Together(v) if v.len() == 2));
        assert_eq!(s.steps[7].kind, StepKind::Wait { us: 1_500_000 });
    }

    #[test]
    fn errors_name_line_column_and_what_was_expected() {
        let e = err("hosts client server\nclient conect server:1\n");
        assert_eq!((e.line, e.col), (2, 8));
        assert!(e.expected.contains("a call"), "{e}");
        assert!(e.found.contains("conect"));
        let e = err("hosts a b\nwait 6l\n");
        assert_eq!((e.line, e.col), (2, 6));
        assert!(e.to_string().starts_with("t.sim:2:6: expected a duration"));
        let e = err("hosts a\na recv 10 = -1 ECONNRESTE\n");
        assert_eq!(e.col, 16);
        let e = err("hosts a\ntogether {\na close\n");
        assert_eq!(e.line, 2);
        let e = err("a close\n");
        assert!(e.expected.contains("hosts"));
        let e = err("hosts a\nb close\n");
        assert!(e.expected.contains("declared"));
        let e = err("hosts a\na send \"abc\n");
        assert!(e.expected.contains("closing"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("61s"), Some(61_000_000));
        assert_eq!(parse_duration("200ms"), Some(200_000));
        assert_eq!(parse_duration("7us"), Some(7));
        assert_eq!(parse_duration("2m"), Some(120_000_000));
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("1e99s"), None);
    }
}
