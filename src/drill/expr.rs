//! The `%{ ... }%` blocks of packetdrill scripts, without Python.
//!
//! packetdrill hands these blocks to a Python interpreter, with the local
//! socket's `struct tcp_info` as variables (`tcpi_state`, `tcpi_snd_cwnd`,
//! ...) and the kernel's constants (`TCP_CLOSE_WAIT`, `TCPI_OPT_SACK`, ...).
//! What the scripts do with them is almost always `assert EXPR[, message]`:
//! this module reads exactly that, an integer expression over names with
//! Python's operators and precedence (`or`, `and`, `not`, comparisons,
//! `|`, `^`, `&`, shifts, `+ -`, `* // %`, unary `- ~`, parentheses).
//! Anything else in a block (an `if`, a `print`, an assignment) is an error
//! that names it.
//!
//! The expression is turned into postfix form with a shunting-yard pass and
//! evaluated with a stack: neither step recurses, however deeply a script
//! nests its parentheses. A chain of comparisons (`a < b < c`, which
//! Python reads as `a < b and b < c`) is refused rather than read another
//! way.

use crate::limits::{MAX_NESTING, quote};

/// An operator of the subset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Or,
    And,
    Not,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    BitOr,
    BitXor,
    BitAnd,
    Shl,
    Shr,
    Add,
    Sub,
    Mul,
    FloorDiv,
    Mod,
    Neg,
    Invert,
}

impl Op {
    /// Python's binding strength (the higher, the tighter).
    fn prec(self) -> u8 {
        match self {
            Op::Or => 1,
            Op::And => 2,
            Op::Not => 3,
            Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::Eq | Op::Ne => 4,
            Op::BitOr => 5,
            Op::BitXor => 6,
            Op::BitAnd => 7,
            Op::Shl | Op::Shr => 8,
            Op::Add | Op::Sub => 9,
            Op::Mul | Op::FloorDiv | Op::Mod => 10,
            Op::Neg | Op::Invert => 11,
        }
    }
    fn unary(self) -> bool {
        matches!(self, Op::Not | Op::Neg | Op::Invert)
    }
    fn comparison(self) -> bool {
        self.prec() == 4
    }
}

/// One element of an expression in postfix order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    Int(i64),
    Name(String),
    Op(Op),
}

/// `assert EXPR` at its place in the script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assertion {
    pub line: u32,
    pub col: u32,
    /// The expression as written.
    pub text: String,
    /// Postfix form.
    pub rpn: Vec<Tok>,
    /// `NAME = EXPR`: the value is kept under NAME for the block's later
    /// lines instead of being asserted.
    pub bind: Option<String>,
}

impl Assertion {
    /// The names the expression reads, in order, once each.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = Vec::new();
        for t in &self.rpn {
            if let Tok::Name(n) = t
                && !v.contains(&n.as_str())
            {
                v.push(n);
            }
        }
        v
    }

    /// The value of the expression, names read through `lookup`.
    pub fn eval(&self, lookup: &dyn Fn(&str) -> Result<i64, String>) -> Result<i64, String> {
        let mut st: Vec<i64> = Vec::new();
        let overflow = || format!("`{}` overflows 64 bits", quote(&self.text));
        for t in &self.rpn {
            match t {
                Tok::Int(n) => st.push(*n),
                Tok::Name(n) => st.push(lookup(n)?),
                Tok::Op(op) if op.unary() => {
                    let a = st.pop().ok_or("malformed expression")?;
                    st.push(match op {
                        Op::Not => i64::from(a == 0),
                        Op::Neg => a.checked_neg().ok_or_else(overflow)?,
                        _ => !a,
                    });
                }
                Tok::Op(op) => {
                    let b = st.pop().ok_or("malformed expression")?;
                    let a = st.pop().ok_or("malformed expression")?;
                    let v = match op {
                        Op::Or => i64::from(a != 0 || b != 0),
                        Op::And => i64::from(a != 0 && b != 0),
                        Op::Lt => i64::from(a < b),
                        Op::Le => i64::from(a <= b),
                        Op::Gt => i64::from(a > b),
                        Op::Ge => i64::from(a >= b),
                        Op::Eq => i64::from(a == b),
                        Op::Ne => i64::from(a != b),
                        Op::BitOr => a | b,
                        Op::BitXor => a ^ b,
                        Op::BitAnd => a & b,
                        Op::Shl => u32::try_from(b)
                            .ok()
                            .filter(|b| *b < 63)
                            .and_then(|b| a.checked_mul(1i64 << b))
                            .ok_or_else(overflow)?,
                        Op::Shr => a >> b.clamp(0, 63),
                        Op::Add => a.checked_add(b).ok_or_else(overflow)?,
                        Op::Sub => a.checked_sub(b).ok_or_else(overflow)?,
                        Op::Mul => a.checked_mul(b).ok_or_else(overflow)?,
                        // Python's // and % round towards minus infinity.
                        Op::FloorDiv if b == 0 => return Err("division by zero".into()),
                        Op::Mod if b == 0 => return Err("modulo by zero".into()),
                        Op::FloorDiv => {
                            let q = a.checked_div(b).ok_or_else(overflow)?;
                            q - i64::from(a % b != 0 && ((a < 0) != (b < 0)))
                        }
                        Op::Mod => {
                            let r = a.checked_rem(b).ok_or_else(overflow)?;
                            if r != 0 && ((r < 0) != (b < 0)) {
                                r + b
                            } else {
                                r
                            }
                        }
                        _ => unreachable!("unary handled above"),
                    };
                    st.push(v);
                }
            }
        }
        match st.as_slice() {
            [v] => Ok(*v),
            _ => Err("malformed expression".into()),
        }
    }
}

/// An error in a block: the offset (in bytes from the block's start) and
/// the message.
#[derive(Debug)]
pub struct BlockError {
    pub offset: usize,
    pub msg: String,
}

/// Reads the inside of `%{ ... }%`: `assert` lines, comments and blank
/// lines. Returns each assertion with its byte offset in `text`.
pub fn parse_block(text: &str) -> Result<Vec<(usize, Assertion)>, BlockError> {
    // A backslash before a newline joins the lines (Python's explicit
    // line joining); two spaces keep every offset where it was.
    let joined = text.replace("\\\n", "  ");
    let mut out = Vec::new();
    let mut off = 0;
    for raw in joined.split_inclusive('\n') {
        let line_off = off;
        off += raw.len();
        let code = strip_comment(raw);
        let mut from = 0;
        for piece in split_top_level(code, ';') {
            let piece_off = from;
            from += piece.len() + 1;
            let lead = piece.len() - piece.trim_start().len();
            let stmt = piece.trim();
            if stmt.is_empty() {
                continue;
            }
            let at = line_off + piece_off + lead;
            if let Some(a) = statement(stmt, at)? {
                out.push((at, a));
            }
        }
    }
    // A block of names only is fine (later blocks read them: packetdrill
    // runs every block in one interpreter); one with nothing at all is a
    // mistake.
    if out.is_empty() && joined.lines().all(|l| strip_comment(l).trim().is_empty()) {
        return Err(BlockError {
            offset: 0,
            msg: "an empty `%{ }%` block".into(),
        });
    }
    Ok(out)
}

/// One statement at byte `at` of the block: an assertion, a binding, or
/// `None` for a `print(...)` (output only; it decides nothing).
fn statement(stmt: &str, at: usize) -> Result<Option<Assertion>, BlockError> {
    let unsupported = || BlockError {
        offset: at,
        msg: format!(
            "unsupported Python in `%{{ }}%`: `{}` (this subset runs `assert EXPR[, message]`, `NAME = EXPR` and print over TCP_INFO fields)",
            quote(stmt)
        ),
    };
    let expr_of = |e: &str, e_at: usize, bind: Option<String>| {
        let rpn = to_rpn(e).map_err(|(o, msg)| BlockError {
            offset: e_at + o,
            msg,
        })?;
        Ok(Some(Assertion {
            line: 0,
            col: 0,
            text: e.to_string(),
            rpn,
            bind,
        }))
    };
    if let Some(rest) = stmt
        .strip_prefix("assert")
        .filter(|r| r.starts_with([' ', '\t', '(']))
    {
        let expr_at = at + "assert".len() + (rest.len() - rest.trim_start().len());
        let rest = rest.trim_start();
        let expr = top_level_comma(rest)
            .map_or(rest, |i| &rest[..i])
            .trim_end();
        return expr_of(expr, expr_at, None);
    }
    if stmt.starts_with("print(") && stmt.ends_with(')') {
        return Ok(None);
    }
    // `NAME = EXPR` (not `==`).
    let name_len = stmt
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    let name = &stmt[..name_len];
    let after = &stmt[name_len..];
    let eq = after.len() - after.trim_start().len();
    if name_len > 0
        && !name.as_bytes()[0].is_ascii_digit()
        && after[eq..].starts_with('=')
        && !after[eq..].starts_with("==")
    {
        let rhs = &after[eq + 1..];
        let rhs_at = at + name_len + eq + 1 + (rhs.len() - rhs.trim_start().len());
        return expr_of(rhs.trim(), rhs_at, Some(name.to_string()));
    }
    Err(unsupported())
}

/// `s` cut at each `sep` outside quotes and parentheses.
fn split_top_level(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut q: Option<char> = None;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match (q, c) {
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, '\'' | '"') => q = Some(c),
            (Some(x), c) if c == x => q = None,
            (None, c) if c == sep && depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// The line without a `#` comment (a `#` inside quotes stays).
fn strip_comment(l: &str) -> &str {
    let mut q: Option<char> = None;
    for (i, c) in l.char_indices() {
        match (q, c) {
            (None, '#') => return &l[..i],
            (None, '\'' | '"') => q = Some(c),
            (Some(x), c) if c == x => q = None,
            _ => {}
        }
    }
    l
}

/// Where the expression ends and `, message` begins.
fn top_level_comma(s: &str) -> Option<usize> {
    let mut depth = 0i32;
    let mut q: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (q, c) {
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ',') if depth == 0 => return Some(i),
            (None, '\'' | '"') => q = Some(c),
            (Some(x), c) if c == x => q = None,
            _ => {}
        }
    }
    None
}

/// Shunting-yard: the expression in postfix order, or the byte offset of
/// the mistake and what it is.
pub fn to_rpn(s: &str) -> Result<Vec<Tok>, (usize, String)> {
    enum Stack {
        Op(Op),
        Paren,
    }
    let b = s.as_bytes();
    let mut out: Vec<Tok> = Vec::new();
    let mut ops: Vec<(Stack, usize)> = Vec::new();
    let mut i = 0;
    // True when an operand is expected (at the start, after an operator or
    // `(`): a `-` there is unary.
    let mut want_operand = true;
    let mut depth = 0usize;
    let push_op = |op: Op, out: &mut Vec<Tok>, ops: &mut Vec<(Stack, usize)>| {
        while let Some((Stack::Op(top), _)) = ops.last() {
            if top.prec() >= op.prec() && !op.unary() {
                out.push(Tok::Op(*top));
                ops.pop();
            } else {
                break;
            }
        }
    };
    // The previous binary operator at this nesting level was a comparison.
    let mut compared: Vec<bool> = vec![false];
    while i < b.len() {
        let c = b[i];
        let at = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let w = &s[start..i];
            let v = if let Some(h) = w.strip_prefix("0x").or_else(|| w.strip_prefix("0X")) {
                i64::from_str_radix(h, 16).ok()
            } else {
                w.parse::<i64>().ok()
            };
            let Some(v) = v else {
                return Err((at, format!("`{}` is not an integer", quote(w))));
            };
            if !want_operand {
                return Err((at, format!("expected an operator, found `{}`", quote(w))));
            }
            out.push(Tok::Int(v));
            want_operand = false;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let w = &s[start..i];
            let op = match w {
                "and" => Some(Op::And),
                "or" => Some(Op::Or),
                "not" => Some(Op::Not),
                "True" | "False" => {
                    if !want_operand {
                        return Err((at, format!("expected an operator, found `{w}`")));
                    }
                    out.push(Tok::Int(i64::from(w == "True")));
                    want_operand = false;
                    continue;
                }
                "in" | "is" | "if" | "else" | "lambda" => {
                    return Err((
                        at,
                        format!(
                            "unsupported Python `{w}` (this subset has integer arithmetic, comparisons, and/or/not)"
                        ),
                    ));
                }
                _ => None,
            };
            match op {
                Some(Op::Not) if want_operand => {
                    if ops.len() >= MAX_NESTING * 4 {
                        return Err((at, "too many operators in a row".into()));
                    }
                    ops.push((Stack::Op(Op::Not), at));
                }
                Some(op) if !want_operand => {
                    push_op(op, &mut out, &mut ops);
                    ops.push((Stack::Op(op), at));
                    want_operand = true;
                    *compared.last_mut().expect("one level at least") = false;
                }
                Some(_) => return Err((at, format!("expected an operand, found `{w}`"))),
                None => {
                    if !want_operand {
                        return Err((at, format!("expected an operator, found `{}`", quote(w))));
                    }
                    // A call (`len(x)`) is Python this subset lacks.
                    let mut j = i;
                    while j < b.len() && b[j] == b' ' {
                        j += 1;
                    }
                    if b.get(j) == Some(&b'(') {
                        return Err((at, format!("unsupported Python call `{}(...)`", quote(w))));
                    }
                    out.push(Tok::Name(w.to_string()));
                    want_operand = false;
                }
            }
            continue;
        }
        if c == b'(' {
            if !want_operand {
                return Err((at, "expected an operator, found `(`".into()));
            }
            depth += 1;
            if depth > MAX_NESTING {
                return Err((at, format!("parentheses nest at most {MAX_NESTING} deep")));
            }
            ops.push((Stack::Paren, at));
            compared.push(false);
            i += 1;
            continue;
        }
        if c == b')' {
            if want_operand {
                return Err((at, "expected an operand before `)`".into()));
            }
            loop {
                match ops.pop() {
                    Some((Stack::Op(o), _)) => out.push(Tok::Op(o)),
                    Some((Stack::Paren, _)) => break,
                    None => return Err((at, "a `)` without its `(`".into())),
                }
            }
            depth -= 1;
            compared.pop();
            i += 1;
            continue;
        }
        let two = s.get(i..i + 2).unwrap_or("");
        let (op, len) = match (two, c) {
            ("==", _) => (Op::Eq, 2),
            ("!=", _) => (Op::Ne, 2),
            ("<=", _) => (Op::Le, 2),
            (">=", _) => (Op::Ge, 2),
            ("<<", _) => (Op::Shl, 2),
            (">>", _) => (Op::Shr, 2),
            ("//", _) => (Op::FloorDiv, 2),
            ("**", _) => return Err((at, "unsupported Python operator `**`".into())),
            (_, b'<') => (Op::Lt, 1),
            (_, b'>') => (Op::Gt, 1),
            (_, b'|') => (Op::BitOr, 1),
            (_, b'^') => (Op::BitXor, 1),
            (_, b'&') => (Op::BitAnd, 1),
            (_, b'+') => (Op::Add, 1),
            (_, b'-') => (Op::Sub, 1),
            (_, b'*') => (Op::Mul, 1),
            (_, b'%') => (Op::Mod, 1),
            (_, b'~') => (Op::Invert, 1),
            (_, b'/') => {
                return Err((
                    at,
                    "unsupported: `/` is Python's true division (floats); write `//`".into(),
                ));
            }
            _ => {
                let ch = s[i..].chars().next().unwrap_or(' ');
                return Err((
                    at,
                    format!("unexpected `{}` in an expression", quote(&ch.to_string())),
                ));
            }
        };
        i += len;
        if want_operand {
            let u = match op {
                Op::Sub => Op::Neg,
                Op::Add => continue,
                Op::Invert => Op::Invert,
                _ => {
                    return Err((
                        at,
                        format!("expected an operand, found `{}`", &s[at..at + len]),
                    ));
                }
            };
            if ops.len() >= MAX_NESTING * 4 {
                return Err((at, "too many operators in a row".into()));
            }
            ops.push((Stack::Op(u), at));
            continue;
        }
        if op == Op::Invert {
            return Err((at, "expected an operator, found `~`".into()));
        }
        let level = compared.last_mut().expect("one level at least");
        if op.comparison() {
            if *level {
                return Err((
                    at,
                    "unsupported: a chain of comparisons (`a < b < c`); write `a < b and b < c`"
                        .into(),
                ));
            }
            *level = true;
        } else if op.prec() < 4 {
            *level = false;
        }
        push_op(op, &mut out, &mut ops);
        ops.push((Stack::Op(op), at));
        want_operand = true;
    }
    if want_operand {
        return Err((
            s.len(),
            "the expression ends where an operand was expected".into(),
        ));
    }
    while let Some((o, at)) = ops.pop() {
        match o {
            Stack::Op(o) => out.push(Tok::Op(o)),
            Stack::Paren => return Err((at, "a `(` that is never closed".into())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(s: &str, vars: &[(&str, i64)]) -> Result<i64, String> {
        let rpn = to_rpn(s).map_err(|(_, m)| m)?;
        let a = Assertion {
            line: 1,
            col: 1,
            text: s.into(),
            rpn,
            bind: None,
        };
        a.eval(&|n: &str| {
            vars.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| *v)
                .ok_or_else(|| format!("unknown {n}"))
        })
    }

    #[test]
    fn python_precedence() {
        assert_eq!(eval("1 + 2 * 3", &[]), Ok(7));
        assert_eq!(eval("(1 + 2) * 3", &[]), Ok(9));
        assert_eq!(eval("-7 // 2", &[]), Ok(-4));
        assert_eq!(eval("-7 % 3", &[]), Ok(2));
        assert_eq!(eval("7 % -3", &[]), Ok(-2));
        assert_eq!(eval("not 1 == 2", &[]), Ok(1));
        // Python's & binds tighter than != (C's does not).
        assert_eq!(eval("x & 4 != 0", &[("x", 4)]), Ok(1));
        assert_eq!(eval("(x & 4) != 0", &[("x", 4)]), Ok(1));
        assert_eq!(
            eval("a == 1 or b == 2 and c", &[("a", 0), ("b", 2), ("c", 0)]),
            Ok(0)
        );
        assert_eq!(eval("1 << 3 | 1", &[]), Ok(9));
        assert_eq!(eval("~0", &[]), Ok(-1));
        assert_eq!(eval("- - 3", &[]), Ok(3));
    }

    #[test]
    fn mistakes_are_named() {
        assert!(eval("1 < 2 < 3", &[]).unwrap_err().contains("chain"));
        assert!(eval("1 / 2", &[]).unwrap_err().contains("//"));
        assert!(eval("len(x)", &[]).unwrap_err().contains("call"));
        assert!(eval("(1", &[]).unwrap_err().contains("never closed"));
        assert!(eval("1 +", &[]).unwrap_err().contains("operand"));
        assert!(eval("1 // 0", &[]).unwrap_err().contains("zero"));
        let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(eval(&deep, &[]).unwrap_err().contains("nest"));
        let nots = format!("{}1", "not ".repeat(100_000));
        assert!(eval(&nots, &[]).is_err());
    }

    #[test]
    fn blocks_keep_assertions_only() {
        let b = parse_block("\nassert tcpi_state == 8, tcpi_state  # comment\n# only\n").unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].1.text, "tcpi_state == 8");
        let e = parse_block("if x: pass\n").err().unwrap();
        assert!(e.msg.contains("if x: pass"), "{}", e.msg);
        let e = parse_block(" # nothing\n").err().unwrap();
        assert!(e.msg.contains("empty"), "{}", e.msg);
        let b = parse_block("LIMIT = 0x10 ; print(x); assert y < LIMIT, \\\n 'm;'\n").unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].1.bind.as_deref(), Some("LIMIT"));
        assert_eq!(b[1].1.text, "y < LIMIT");
        assert_eq!(b[1].0, 25);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

        /// Any text of expression tokens: an error or a value, never a
        /// panic (nor an overflow, nor deep recursion).
        #[test]
        fn any_expression_reads_or_fails(toks in proptest::collection::vec(
            proptest::sample::select(vec![
                "1", "0", "-", "+", "*", "//", "%", "<<", ">>", "&", "|", "^", "~",
                "==", "!=", "<", ">=", "(", ")", "and", "or", "not", "x",
                "9223372036854775807", "0x7fffffff", "/", "**", ",", "print(",
            ]),
            0..40,
        )) {
            let text = toks.join(" ");
            if let Ok(rpn) = to_rpn(&text) {
                let a = Assertion { line: 1, col: 1, text: text.clone(), rpn, bind: None };
                let _ = a.eval(&|_| Ok(i64::MIN));
                let _ = a.eval(&|_| Ok(-1));
            }
            let _ = parse_block(&format!("assert {text}\n# c\n{text}"));
        }

        #[test]
        fn any_shell_text_reads_or_fails(s in "[ -~\n]{0,120}") {
            let _ = super::super::shell::interpret(&s, "/nonexistent/x.pkt");
        }
    }
}
