//! Reads tcpdump's text output as people paste it: with or without `-S`
//! (absolute sequence numbers), `-tt` (epoch seconds), `-tttt` (date and
//! time), `-t` (no time), `-nn` (numbers, not names), `-i any` (an
//! interface and direction before `IP`), leading blanks or tabs, host names
//! and port names (`localhost.http-alt`), both the current format
//! (`Flags [R.], seq 19, ack 486, win 7504, length 0`) and the old one
//! (`R 19:19(0) ack 486 win 7504`), and lines shortened by hand (`seq
//! 12771346 ..`, `Flags [R .] ...`): what is there is used, the rest is
//! unknown. IPv6 lines (`IP6 ::1.37776 > ::1.8080: ...`) read like IPv4
//! ones; `-v`'s IP header (`IP (tos 0x0, ttl 64, id 1, ...)` on a line of
//! its own above the addresses, `IP6 (flowlabel ..., hlim 64, ...)` on
//! the same line) fills the TTL, IP ID and DF, and the options text
//! (`options [mss 65495,sackOK,TS val 1 ecr 0,nop,wscale 7]`) the
//! options.
//!
//! Lines that are not TCP segments are skipped, counted per reason with
//! the first line numbers ([`super::notes`]).

use super::notes::{Tally, Unit};
use super::{IpInfo, Packet, TcpOptions};
use crate::segment::Flags;
use std::io::{self, BufRead};

/// The longest line read. tcpdump's lines are a few hundred bytes; a
/// longer one is skipped unread, so that a file without newlines is not
/// held in memory whole.
pub const MAX_LINE: usize = 64 * 1024;

/// The note opening the notes of a file with NUL bytes in it.
pub const NOT_TEXT: &str = "the file is neither a pcap/pcapng capture nor text; read as text";

/// tcpdump text read a line at a time: an iterator of its TCP segments
/// (through [`Lines::next_packet`]), with notes on the lines it skipped
/// counted per reason.
pub struct Lines<R> {
    input: R,
    line: Vec<u8>,
    /// Lines read.
    lineno: u64,
    /// Segments read.
    packets: usize,
    /// Bytes read.
    offset: u64,
    nul: bool,
    tally: Tally,
    /// A `-v` IPv4 header line (`IP (tos 0x0, ttl 64, ...)`) and its line
    /// number, waiting for the address line that tcpdump prints under it.
    header: Option<(String, u64)>,
    /// Set when reading failed: nothing more is read.
    pub done: bool,
}

impl<R: BufRead> Lines<R> {
    pub fn new(input: R) -> Lines<R> {
        Lines {
            input,
            line: Vec::new(),
            lineno: 0,
            packets: 0,
            offset: 0,
            nul: false,
            tally: Tally::new(Unit::Line),
            header: None,
            done: false,
        }
    }

    /// The next TCP segment, `None` at the end. Every unusable non-blank
    /// line is counted in the notes. `Err` when reading failed: the byte
    /// offset, the lines read before, and the error.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, (u64, u64, io::Error)> {
        while !self.done {
            let too_long = match self.read_line() {
                Ok(Some(too_long)) => too_long,
                Ok(None) => break,
                Err(e) => {
                    self.done = true;
                    return Err((self.offset, self.lineno, e));
                }
            };
            self.lineno += 1;
            if too_long {
                let why = format!("longer than {MAX_LINE} bytes");
                self.tally.skip(self.lineno, &why);
                continue;
            }
            let text = String::from_utf8_lossy(&self.line);
            let line = text.trim();
            if line.is_empty() {
                continue;
            }
            // Under a `-v` IPv4 header line, the address line completes
            // it: the two are read as one.
            let parsed = match self.header.take() {
                Some((head, at)) => match parse_line(&format!("{head} {line}")) {
                    Ok(Line::Packet(p, e)) => Ok(Line::Packet(p, e)),
                    _ => {
                        self.tally.skip(at, HEADER_ALONE);
                        parse_line(line)
                    }
                },
                None => parse_line(line),
            };
            match parsed {
                Ok(Line::Header) => {
                    self.header = Some((line.to_string(), self.lineno));
                }
                Ok(Line::Packet(mut p, elided)) => {
                    p.line = Some(self.lineno as usize);
                    self.packets += 1;
                    p.index = self.packets;
                    if elided {
                        self.tally.caveat(
                            self.lineno,
                            "shortened by hand (`..`); the missing fields are unknown",
                        );
                    }
                    return Ok(Some(p));
                }
                Err(why) => self.tally.skip(self.lineno, &why),
            }
        }
        if let Some((_, at)) = self.header.take() {
            self.tally.skip(at, HEADER_ALONE);
        }
        Ok(None)
    }

    /// Reads the next line into `self.line`, without its newline and cut
    /// at [`MAX_LINE`]; `Some(true)` when it was longer, `None` at the end.
    fn read_line(&mut self) -> io::Result<Option<bool>> {
        self.line.clear();
        let (mut any, mut too_long) = (false, false);
        loop {
            let buf = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                return Ok(any.then_some(too_long));
            }
            any = true;
            let end = buf.iter().position(|&c| c == b'\n');
            let part = &buf[..end.unwrap_or(buf.len())];
            self.nul |= part.contains(&0);
            let room = MAX_LINE - self.line.len();
            if part.len() > room {
                too_long = true;
            }
            self.line.extend_from_slice(&part[..part.len().min(room)]);
            let used = part.len() + usize::from(end.is_some());
            self.input.consume(used);
            self.offset += used as u64;
            if end.is_some() {
                return Ok(Some(too_long));
            }
        }
    }

    /// The notes, in line order; first, when the file had NUL bytes, that
    /// it did not look like text.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = self.tally.render();
        if self.nul {
            notes.insert(0, NOT_TEXT.into());
        }
        notes
    }
}

/// A time of day `HH:MM:SS[.frac]` or epoch seconds `N.frac`: `None` when
/// the token is not a time, `Some(None)` when it is one too large for
/// 64-bit nanoseconds.
fn parse_time(tok: &str) -> Option<Option<u64>> {
    // Up to 9 digits (`tcpdump --nano`), kept to the nanosecond.
    let frac_ns = |f: &str| -> Option<u64> {
        if f.is_empty() || f.len() > 9 || !f.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let v: u64 = f.parse().ok()?;
        Some(v * 10u64.pow(9 - f.len() as u32))
    };
    let (whole, frac) = match tok.split_once('.') {
        Some((w, f)) => (w, frac_ns(f)?),
        None => (tok, 0),
    };
    let parts: Vec<&str> = whole.split(':').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || p.len() > 10 || !p.bytes().all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    let secs = match parts.as_slice() {
        [s] if tok.contains('.') => s.parse::<u64>().ok()?,
        [h, m, s] => {
            h.parse::<u64>().ok()? * 3600 + m.parse::<u64>().ok()? * 60 + s.parse::<u64>().ok()?
        }
        _ => return None,
    };
    Some(
        secs.checked_mul(1_000_000_000)
            .and_then(|ns| ns.checked_add(frac)),
    )
}

fn is_date(tok: &str) -> bool {
    let p: Vec<&str> = tok.split('-').collect();
    p.len() == 3
        && p.iter()
            .all(|x| !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit()))
}

/// Why a `-v` header line was skipped: no address line followed it.
const HEADER_ALONE: &str = "a `-v` IP header line without its address line";

/// What a line holds.
enum Line {
    /// A segment; the bool says the line was shortened by hand.
    Packet(Packet, bool),
    /// `tcpdump -v`'s IPv4 header line, its addresses on the next line.
    Header,
}

/// Parses one line.
fn parse_line(line: &str) -> Result<Line, String> {
    let toks: Vec<&str> = line.split_whitespace().collect();
    // The time, if any: `-tttt` puts a date first.
    let mut k = 0;
    let mut time_ns = None;
    let mut time_text = String::new();
    if toks.first().is_some_and(|t| is_date(t)) {
        k = 1;
    }
    if let Some(ns) = toks.get(k).and_then(|t| parse_time(t)) {
        time_text = toks[..=k].join(" ");
        time_ns = ns;
        k += 1;
    } else {
        k = 0;
    }
    // `IP` or `IP6`: `-i any` puts `lo In` before it, a tunnel its outer
    // layers (`MPLS (label 100, ...) IP6 ...`, `IP 192.0.2.1 > 192.0.2.2:
    // GREv0, length 84: IP6 ...`): the last one is the segment's.
    let Some(ip_at) = toks.iter().skip(k).rposition(|t| *t == "IP" || *t == "IP6") else {
        return Err("not a tcpdump TCP line".into());
    };
    let mut ip = IpInfo {
        version: if toks[k + ip_at] == "IP6" { 6 } else { 4 },
        ..IpInfo::default()
    };
    let mut rest = &toks[k + ip_at + 1..];
    // `-v`: the IP header in parentheses, `IP (tos 0x0, ttl 64, ...)` or
    // `IP6 (flowlabel 0x1, hlim 64, ...)`. IPv4's ends the line, the
    // addresses following on the next.
    if rest.first().is_some_and(|t| t.starts_with('(')) {
        let mut depth = 0i64;
        let mut end = None;
        for (i, t) in rest.iter().enumerate() {
            depth += t.matches('(').count() as i64 - t.matches(')').count() as i64;
            if depth <= 0 {
                end = Some(i);
                break;
            }
        }
        let Some(end) = end else {
            return Err("IP header in parentheses not closed".into());
        };
        ip_header(&rest[..=end].join(" "), &mut ip);
        rest = &rest[end + 1..];
        if rest.is_empty() {
            return Ok(Line::Header);
        }
    }
    // `SRC > DST:` (the colon may stand alone: `localhost.localdomain :`).
    let (Some(src), Some(&">"), Some(dst_tok)) = (rest.first(), rest.get(1), rest.get(2)) else {
        return Err("not a tcpdump TCP line (no `SRC > DST:`)".into());
    };
    let mut j = 3;
    let dst = match dst_tok.strip_suffix(':') {
        Some(d) => d,
        None => {
            if rest.get(3) == Some(&":") {
                j = 4;
            }
            dst_tok
        }
    };
    if dst.is_empty() {
        return Err("not a tcpdump TCP line (no destination)".into());
    }
    let body = rest[j..].join(" ");
    // Host names have single dots; `..` and `...` mark a line cut by hand.
    let elided = body.contains("..");
    let mut p = Packet {
        index: 0,
        line: None,
        time_ns,
        time_text,
        src: src.to_string(),
        dst: dst.to_string(),
        flags: Flags(0),
        seq: None,
        ack: None,
        win: None,
        len: 0,
        absolute: false,
        ip,
        options: Default::default(),
        rst_payload: None,
    };
    let b = body.trim_start();
    if let Some(after) = b.strip_prefix("Flags [") {
        parse_new(after, &mut p)?;
    } else {
        parse_old(b, &mut p)?;
    }
    Ok(Line::Packet(p, elided))
}

/// The fields of `-v`'s IP header text that say who sent it: `ttl 64,
/// id 123, ..., flags [DF]` (IPv4, `print_ipv4`), `hlim 64` (IPv6,
/// `ip6_print`). A field that does not parse stays unknown.
fn ip_header(h: &str, ip: &mut IpInfo) {
    let h = h.trim_start_matches('(');
    let h = h.strip_suffix(')').unwrap_or(h);
    for field in h.split(',') {
        let mut w = field.split_whitespace();
        match (w.next(), w.next()) {
            (Some("ttl" | "hlim"), Some(v)) => ip.ttl = v.parse().ok(),
            (Some("id"), Some(v)) => ip.id = v.parse().ok(),
            // `[DF]`, `[none]`, `[+]` (more fragments), `[DF+]`.
            (Some("flags"), Some(v)) if v.starts_with('[') => ip.df = Some(v.contains("DF")),
            _ => {}
        }
    }
}

/// tcpdump's options text: `mss 65495,sackOK,TS val 1 ecr 0,nop,wscale 7`
/// (`print_tcp_options`), or before 4.0 `mss 1460,sackOK,timestamp 1 0`.
/// Options it does not name are passed over.
fn options_text(o: &str) -> TcpOptions {
    let mut r = TcpOptions {
        seen: true,
        ..TcpOptions::default()
    };
    for opt in o.split(',') {
        let w: Vec<&str> = opt.split_whitespace().collect();
        match w.as_slice() {
            ["mss", v] => r.mss = v.parse().ok(),
            ["wscale", v] => r.wscale = v.parse().ok(),
            ["sackOK"] => r.sack_ok = true,
            ["TS", "val", a, "ecr", b] | ["timestamp", a, b] => {
                r.ts = a.parse().ok().zip(b.parse().ok());
            }
            _ => {}
        }
    }
    r
}

/// A number, or `None` for an elided `..` / `...`.
fn num(s: &str) -> Option<u32> {
    s.trim_end_matches([',', ':']).parse().ok()
}

/// `R.], seq 19, ack 486, win 7504, options [...], length 0`.
fn parse_new(after: &str, p: &mut Packet) -> Result<(), String> {
    let Some((flags, rest)) = after.split_once(']') else {
        return Err("flags not closed by `]`".into());
    };
    let letters: String = flags.chars().filter(|c| !c.is_whitespace()).collect();
    p.flags = Flags::from_tcpdump(&letters).ok_or(format!("unknown TCP flags [{flags}]"))?;
    // Options hold commas of their own: cut them out first.
    let mut rest = rest.to_string();
    if let Some(s) = rest.find("options [") {
        match rest[s..].find(']') {
            Some(e) => {
                p.options = options_text(&rest[s + "options [".len()..s + e]);
                rest.replace_range(s..s + e + 1, "");
            }
            None => rest.truncate(s),
        }
    }
    let mut seq_end = None;
    for field in rest.split(',') {
        let mut w = field.split_whitespace();
        match (w.next(), w.next()) {
            (Some("seq"), Some(v)) => match v.split_once(':') {
                Some((a, b)) => {
                    p.seq = num(a);
                    seq_end = num(b);
                }
                None => p.seq = num(v),
            },
            (Some("ack"), Some(v)) => p.ack = num(v),
            (Some("win"), Some(v)) => p.win = num(v),
            (Some("length"), Some(v)) => {
                if let Some(l) = num(v) {
                    p.len = l;
                }
            }
            _ => {}
        }
    }
    // Without a `length` field, `seq A:B` still tells the length.
    if p.len == 0
        && let (Some(a), Some(b)) = (p.seq, seq_end)
    {
        p.len = b.wrapping_sub(a);
    }
    // tcpdump shows `ack` only with the ACK flag, and the flag letters are
    // authoritative; a shortened `Flags [R .] ...` line keeps its flags.
    Ok(())
}

/// Old tcpdump (before 4.0): `P 1:19(18) ack 1 win 5840 <nop,...>`,
/// `. ack 1 win 5840`, `S 2228211568:2228211568(0) win 5840 <mss 1460>`.
/// The ACK flag is not printed as `.` beside other flags: an `ack` field
/// means it was set.
fn parse_old(b: &str, p: &mut Packet) -> Result<(), String> {
    let mut w = b.split_whitespace();
    let first = w
        .next()
        .ok_or("not a tcpdump TCP line (nothing after `SRC > DST:`)")?;
    let mut f = crate::segment::Flags::from_tcpdump(first)
        .ok_or("not a tcpdump TCP line")?
        .0;
    let toks: Vec<&str> = w.collect();
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i];
        if t.starts_with('<') {
            // Options run to the closing `>`.
            let from = i;
            while i < toks.len() && !toks[i].ends_with('>') {
                i += 1;
            }
            if i < toks.len() {
                let o = toks[from..=i].join(" ");
                p.options = options_text(o.trim_start_matches('<').trim_end_matches('>'));
            }
        } else if let Some((a, bl)) = t.split_once(':') {
            // `A:B(L)`
            p.seq = num(a);
            if let Some((_, l)) = bl.split_once('(') {
                p.len = num(l.trim_end_matches(')')).unwrap_or(0);
            }
        } else {
            match (t, toks.get(i + 1)) {
                ("ack", Some(v)) => {
                    p.ack = num(v);
                    f |= 0x10;
                    i += 1;
                }
                ("win", Some(v)) => {
                    p.win = num(v);
                    i += 1;
                }
                ("urg", Some(_)) => {
                    f |= 0x20;
                    i += 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    p.flags = Flags(f);
    Ok(())
}
