//! JSON Lines out of the trace writer's pretty JSON.

use std::io::Write;

/// Writes JSON values without their insignificant whitespace, as they
/// stream: the trace writer's pretty JSON becomes one compact line, and
/// what is written between two values (the newline) is kept, so each
/// value is one line (JSON Lines). Whitespace is dropped only inside a
/// value and outside strings; in a string, a `"` after a backslash does
/// not end it. Streaming is why it is a filter and not a second
/// serialisation: a trace is printed while its run goes on.
pub struct OneLine<W: Write> {
    out: W,
    depth: usize,
    in_string: bool,
    escaped: bool,
    buf: Vec<u8>,
}

impl<W: Write> OneLine<W> {
    pub fn new(out: W) -> Self {
        OneLine {
            out,
            depth: 0,
            in_string: false,
            escaped: false,
            buf: Vec::new(),
        }
    }
}

impl<W: Write> Write for OneLine<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.clear();
        for &b in bytes {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
            } else {
                match b {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => self.depth = self.depth.saturating_sub(1),
                    _ if b.is_ascii_whitespace() && self.depth > 0 => continue,
                    _ => {}
                }
            }
            self.buf.push(b);
        }
        self.out.write_all(&self.buf)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_line(chunks: &[&str]) -> String {
        let mut w = OneLine::new(Vec::new());
        for c in chunks {
            w.write_all(c.as_bytes()).unwrap();
        }
        String::from_utf8(w.out).unwrap()
    }

    #[test]
    fn pretty_json_becomes_one_line_and_strings_keep_their_spaces() {
        let v = serde_json::json!({"a": [1, {"b": "x y \" { ] \\"}], "c": "  "});
        let pretty = serde_json::to_string_pretty(&v).unwrap();
        // Cut anywhere, as a streamed write is.
        let (x, y) = pretty.split_at(17);
        let got = one_line(&[x, y, "\n", &pretty, "\n"]);
        let compact = serde_json::to_string(&v).unwrap();
        assert_eq!(got, format!("{compact}\n{compact}\n"));
    }
}
