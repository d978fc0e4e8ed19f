//! The limits finrst holds every input to, in one place.
//!
//! Each one bounds memory, stack depth or output on a hostile input (a
//! mutated script, a resource bomb) and sits far above what any scenario in
//! `sim/` or `tests/pkt/` uses. The parsers and the runner read them from
//! here, and the README's "Limits" section lists them. Past a parser's
//! limit the input is a script error (`file:line:col`, exit 2); the others
//! say what happens past them. Never a crash or a silent cut.

/// The largest script file (`.sim` or `.pkt`) read, in bytes. A script is
/// held whole while it is parsed, so its size bounds the parser's memory.
pub const MAX_SCRIPT_BYTES: usize = 4 << 20;

/// The longest line of a script, in bytes. A line is split into tokens
/// before it is parsed (a `title` of short words costs tens of bytes per
/// word), so this bounds what one line can cost.
pub const MAX_LINE_BYTES: usize = 64 << 10;

/// The deepest nesting: `repeat`/`together` blocks in a `.sim` script, and
/// `[`, `{` and `f(` in a `.pkt` system call's arguments. The drill's
/// argument parser recurses once per level (and so do the derived `Drop`,
/// `Clone` and `Debug` of both syntax trees), so this bounds the stack.
pub const MAX_NESTING: usize = 32;

/// The largest `repeat` count.
pub const MAX_REPEAT: u64 = 100_000_000;

/// The most hosts a script declares: host `i` is 10.0.0.(i+1), and the
/// last usable address of that /24 is 10.0.0.254 (the runner keeps some
/// room).
pub const MAX_HOSTS: usize = 250;

/// The largest `send` byte count and `recv` length (256 MiB): the data of
/// one call is made (or read) whole.
pub const MAX_CALL_BYTES: u32 = 256 << 20;

/// The longest time a script may name (a `wait`, `delay`, `horizon`, or a
/// `.pkt` event's time), in microseconds: about 31.7 years, so that no sum
/// of clock and duration comes near 2^64 µs.
pub const MAX_DURATION_US: u64 = 1_000_000_000_000_000;

/// The expectations that failed in one run which are kept (and printed);
/// the rest are counted (`... and N more`).
pub const MAX_KEPT_FAILURES: usize = 100;

/// The most characters of an input quoted in an error message; a longer
/// text is cut and ends with `…`.
pub const MAX_QUOTED_CHARS: usize = 60;

/// The most bytes the smoltcp engine gives one socket buffer
/// (`SO_RCVBUF`/`SO_SNDBUF` before listen/connect). smoltcp's buffers are
/// allocated whole when the socket is made, a listener makes up to 16 of
/// them, and smoltcp itself refuses a receive buffer over 1 GiB (its
/// window scale stops at 14). Linux, for comparison, clamps to
/// `net.core.rmem_max` (4 MiB here) and doubles it.
pub const MAX_SMOLTCP_BUFFER: usize = 16 << 20;

/// `text`, cut to [`MAX_QUOTED_CHARS`] characters (with `…` when cut), for
/// an error message: a 10 MB token is not worth 10 MB of message.
pub fn quote(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(MAX_QUOTED_CHARS) {
        None => text.into(),
        Some((at, _)) => format!("{}…", &text[..at]).into(),
    }
}

/// `n` with its thousands grouped (`99,999,900`), for counts in messages.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Reads a script file whole, refusing one over [`MAX_SCRIPT_BYTES`]
/// without reading past the limit (a 10 GB file, or `/dev/zero`, costs
/// 4 MiB).
pub fn read_script(path: &str) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    f.take(MAX_SCRIPT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > MAX_SCRIPT_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            too_big(),
        ));
    }
    Ok(bytes)
}

/// The message for a script over [`MAX_SCRIPT_BYTES`].
pub fn too_big() -> String {
    format!(
        "the file is larger than {} bytes, the most a script may be",
        grouped(MAX_SCRIPT_BYTES as u64)
    )
}

/// The first line of `text` longer than [`MAX_LINE_BYTES`]: its number
/// (from 1) and the column (in characters) where it passes the limit.
pub fn long_line(text: &str) -> Option<(u32, u32)> {
    for (i, line) in text.split('\n').enumerate() {
        if line.len() > MAX_LINE_BYTES {
            // The character that crosses the limit.
            let col = line
                .char_indices()
                .take_while(|(at, _)| *at < MAX_LINE_BYTES)
                .count();
            return Some((i as u32 + 1, col as u32 + 1));
        }
    }
    None
}

/// The message for a line over [`MAX_LINE_BYTES`].
pub fn line_too_long() -> String {
    format!(
        "a line longer than {} bytes, the most a script line may be",
        grouped(MAX_LINE_BYTES as u64)
    )
}

/// `explain`: connections tracked at once; past it the least recently
/// active tenth is explained as it stands (counted in the summary).
pub const EXPLAIN_MAX_LIVE: usize = 50_000;

/// `explain`: connections that ended but are kept for their last segments;
/// past it the one that ended first is explained.
pub const EXPLAIN_MAX_ENDED: usize = 4_096;

/// `explain`: capture time after which an ended connection is done (twice
/// TIME_WAIT's 60 s); packets, for a capture with no times.
pub const EXPLAIN_QUIET_NS: u64 = 120_000_000_000;
pub const EXPLAIN_QUIET_PACKETS: u64 = 200_000;

/// `explain`: RSTs of one connection listed; more are counted.
pub const EXPLAIN_RSTS_KEPT: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_cut() {
        assert_eq!(quote("abc"), "abc");
        let long = "é".repeat(100);
        let q = quote(&long);
        assert_eq!(q.chars().count(), MAX_QUOTED_CHARS + 1);
        assert!(q.ends_with('…'));
    }

    #[test]
    fn grouping() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(99_999_900), "99,999,900");
    }

    #[test]
    fn long_lines_are_found() {
        let ok = "a\n".repeat(10);
        assert_eq!(long_line(&ok), None);
        let bad = format!("a\nb\n{}\n", "x".repeat(MAX_LINE_BYTES + 5));
        assert_eq!(long_line(&bad), Some((3, MAX_LINE_BYTES as u32 + 1)));
    }
}
