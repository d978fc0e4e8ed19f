//! The backtick commands of packetdrill scripts, read without a shell.
//!
//! packetdrill runs `` `...` `` with /bin/sh. The scripts of its own suite
//! use a handful of commands: sourcing `../common/defaults.sh` (a file of
//! `sysctl -q KEY=VALUE` lines, a metrics flush and a qdisc), writing
//! sysctls through `set_sysctls.py /proc/sys/...=V` or `echo V >
//! /proc/sys/...`, and running the restore script set_sysctls.py wrote.
//! This module turns such a command into the sysctl writes it makes, and
//! names the commands it accepts without doing anything, with why each
//! changes nothing on the drill engines. Anything else is an error that
//! names the command.
//!
//! The shell syntax understood: lines (a trailing `\` joins the next),
//! `#` comments, words with '...' or "..." quoting, `$((...))` integer
//! arithmetic, and the redirections `> /dev/null` and `2>&1`.

use crate::limits::quote;

/// What one command does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write `value` into the sysctl `key` (`net.ipv4.tcp_rmem`).
    Sysctl {
        key: String,
        value: String,
        /// Where it was written (`defaults.sh:9`), for messages.
        origin: String,
    },
    /// A command that changes nothing here, and why.
    Nothing { what: String, why: &'static str },
}

/// Reads a command's text. `script` is the path of the .pkt file (files a
/// command names are relative to its directory, as packetdrill runs the
/// command there).
pub fn interpret(cmd: &str, script: &str) -> Result<Vec<Action>, String> {
    let mut out = Vec::new();
    run_text(cmd, script, "the command", 0, &mut out)?;
    Ok(out)
}

fn run_text(
    text: &str,
    script: &str,
    origin: &str,
    depth: usize,
    out: &mut Vec<Action>,
) -> Result<(), String> {
    let mut joined = String::new();
    let mut first_line = 0;
    for (i, raw) in text.lines().enumerate() {
        if joined.is_empty() {
            first_line = i + 1;
        }
        if let Some(head) = raw.strip_suffix('\\') {
            joined.push_str(head);
            joined.push(' ');
            continue;
        }
        joined.push_str(raw);
        let line = std::mem::take(&mut joined);
        let at = format!("{origin}:{first_line}");
        run_line(&line, script, &at, depth, out)?;
    }
    if !joined.is_empty() {
        let at = format!("{origin}:{first_line}");
        run_line(&joined, script, &at, depth, out)?;
    }
    Ok(())
}

fn run_line(
    line: &str,
    script: &str,
    at: &str,
    depth: usize,
    out: &mut Vec<Action>,
) -> Result<(), String> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return Ok(());
    }
    let words = words(t).map_err(|e| format!("{at}: {e}: `{}`", quote(t)))?;
    let mut words: Vec<String> = words;
    // The redirections the suite uses only silence output.
    let mut redirect_to: Option<String> = None;
    let mut i = 0;
    while i < words.len() {
        match words[i].as_str() {
            "2>&1" | ">/dev/null" | "2>/dev/null" => {
                words.remove(i);
            }
            ">" if i + 1 < words.len() => {
                let target = words.remove(i + 1);
                words.remove(i);
                if target != "/dev/null" {
                    redirect_to = Some(target);
                }
            }
            _ => i += 1,
        }
    }
    let Some(cmd) = words.first().cloned() else {
        return Ok(());
    };
    let unsupported = || {
        format!(
            "{at}: unsupported shell command `{}` (drill runs sysctl, set_sysctls.py, echo V > /proc/sys/..., a sourced .sh file of those, `ip tcp_metrics flush` and `tc qdisc add dev tun0 root pfifo`)",
            quote(t)
        )
    };
    if let Some(target) = redirect_to {
        // `echo V > /proc/sys/net/ipv4/tcp_x`.
        let key = target
            .strip_prefix("/proc/sys/")
            .filter(|_| cmd == "echo")
            .ok_or_else(unsupported)?;
        out.push(Action::Sysctl {
            key: key.replace('/', "."),
            value: words[1..].join(" "),
            origin: at.to_string(),
        });
        return Ok(());
    }
    match cmd.as_str() {
        "sysctl" => {
            let mut any = false;
            for w in &words[1..] {
                if w.starts_with('-') {
                    continue;
                }
                let (k, v) = w
                    .split_once('=')
                    .ok_or_else(|| format!("{at}: `{}`: expected KEY=VALUE", quote(w)))?;
                out.push(Action::Sysctl {
                    key: k.trim().to_string(),
                    value: v.trim().to_string(),
                    origin: at.to_string(),
                });
                any = true;
            }
            if !any {
                return Err(format!("{at}: sysctl without KEY=VALUE"));
            }
        }
        "ip" if words[1..] == ["tcp_metrics", "flush", "all"] => out.push(Action::Nothing {
            what: t.to_string(),
            why: "each drill starts on a new host whose TCP metrics cache is empty",
        }),
        "tc" if words.len() == 7
            && words[1..5] == ["qdisc", "add", "dev", "tun0"]
            && words[5] == "root"
            && (words[6] == "pfifo" || words[6] == "pfifo_fast") =>
        {
            out.push(Action::Nothing {
                what: t.to_string(),
                why: "packetdrill puts a plain FIFO on its device so that fq does not pace; neither drill engine paces or drops on the local link",
            })
        }
        c if c.starts_with("/tmp/sysctl_restore_") && c.ends_with(".sh") => {
            out.push(Action::Nothing {
                what: t.to_string(),
                why: "it restores what set_sysctls.py changed; a drill's host is discarded when the script ends",
            })
        }
        c if c.ends_with("set_sysctls.py") => {
            for w in &words[1..] {
                let (k, v) = w.split_once('=').ok_or_else(|| {
                    format!("{at}: set_sysctls.py `{}`: expected /proc/sys/KEY=VALUE", quote(w))
                })?;
                let key = k.strip_prefix("/proc/sys/").ok_or_else(|| {
                    format!("{at}: set_sysctls.py `{}`: expected a file under /proc/sys", quote(k))
                })?;
                out.push(Action::Sysctl {
                    key: key.replace('/', "."),
                    value: v.to_string(),
                    origin: at.to_string(),
                });
            }
        }
        c if c.ends_with(".sh") && words.len() == 1 => {
            if depth > 0 {
                return Err(format!(
                    "{at}: `{}`: a sourced file runs no further .sh files here",
                    quote(c)
                ));
            }
            let dir = std::path::Path::new(script)
                .parent()
                .unwrap_or(std::path::Path::new("."));
            let path = dir.join(c);
            let text = read_small(&path).map_err(|e| {
                format!("{at}: cannot read `{}`: {e}", quote(&path.display().to_string()))
            })?;
            run_text(&text, script, c, depth + 1, out)?;
        }
        _ => return Err(unsupported()),
    }
    Ok(())
}

/// A sourced file, at most [`crate::limits::MAX_SCRIPT_BYTES`].
fn read_small(p: &std::path::Path) -> Result<String, String> {
    let b = crate::limits::read_script(&p.display().to_string()).map_err(|e| e.to_string())?;
    String::from_utf8(b).map_err(|_| "not UTF-8 text".into())
}

/// Splits a line into shell words: quotes removed, `$((...))` evaluated.
fn words(line: &str) -> Result<Vec<String>, String> {
    let line = arith(line)?;
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut q: Option<char> = None;
    for c in line.chars() {
        match (q, c) {
            (None, '\'' | '"') => {
                q = Some(c);
                has = true;
            }
            (Some(x), c) if c == x => q = None,
            (None, c) if c.is_whitespace() => {
                if has {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            (_, c) => {
                cur.push(c);
                has = true;
            }
        }
    }
    if q.is_some() {
        return Err("an unterminated quote".into());
    }
    if has {
        out.push(cur);
    }
    Ok(out)
}

/// `$((15*1024*1024))` → `15728640`: shell integer arithmetic (`/` is
/// integer division), through the same expression reader as `%{ }%`.
fn arith(line: &str) -> Result<String, String> {
    let mut s = line.to_string();
    while let Some(i) = s.find("$((") {
        let Some(len) = s[i + 3..].find("))") else {
            return Err("an unterminated `$((`".into());
        };
        let e = &s[i + 3..i + 3 + len];
        // The shell's `/` truncates; on the non-negative numbers of these
        // scripts that is Python's `//`.
        let py = e.replace("//", "/").replace('/', "//");
        let rpn = super::expr::to_rpn(&py).map_err(|(_, m)| format!("`$(({}))`: {m}", quote(e)))?;
        let a = super::expr::Assertion {
            line: 0,
            col: 0,
            text: e.to_string(),
            rpn,
            bind: None,
        };
        let v = a.eval(&|n: &str| Err(format!("shell variable `{}` in `$(( ))`", quote(n))))?;
        s.replace_range(i..i + 3 + len + 2, &v.to_string());
    }
    if s.contains('$') && !s.contains("${PPID}") {
        return Err("a shell expansion `$` (only `$((...))` is read)".into());
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::Sysctl;

    #[test]
    fn sysctl_lines_and_arithmetic() {
        let a = interpret(
            "sysctl -q net.ipv4.tcp_rmem=\"4096 540000 $((15*1024*1024))\" > /dev/null 2>&1\n\
             ip tcp_metrics flush all > /dev/null 2>&1\n\
             # a comment\n\
             sysctl -q net.ipv4.tcp_early_retrans=4 \\\n net.ipv4.tcp_recovery=1",
            "x.pkt",
        )
        .unwrap();
        assert_eq!(
            a[0],
            Action::Sysctl {
                key: Sysctl::TcpRmem.name().into(),
                value: "4096 540000 15728640".into(),
                origin: "the command:1".into()
            }
        );
        assert!(matches!(a[1], Action::Nothing { .. }));
        assert_eq!(a.len(), 4);
    }

    #[test]
    fn proc_writes() {
        let a = interpret(
            "../common/set_sysctls.py /proc/sys/net/ipv4/tcp_min_tso_segs=10 /proc/sys/net/ipv4/tcp_wmem=\"4096 50000 4194304\"\n\
             echo 0x70403 > /proc/sys/net/ipv4/tcp_fastopen",
            "x.pkt",
        )
        .unwrap();
        let kv: Vec<(String, String)> = a
            .into_iter()
            .map(|x| match x {
                Action::Sysctl { key, value, .. } => (key, value),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(kv[0].0, Sysctl::TcpMinTsoSegs.name());
        assert_eq!(kv[1].1, "4096 50000 4194304");
        assert_eq!(kv[2], (Sysctl::TcpFastopen.name().into(), "0x70403".into()));
    }

    #[test]
    fn the_rest_is_named() {
        let e = interpret("tc qdisc replace dev tun0 root fq", "x.pkt").unwrap_err();
        assert!(
            e.contains("unsupported shell command `tc qdisc replace"),
            "{e}"
        );
        let e = interpret("echo 3 > /sys/module/tcp_cubic/parameters/x", "x.pkt").unwrap_err();
        assert!(e.contains("unsupported"), "{e}");
        let e = interpret("missing-file.sh", "/nonexistent/x.pkt").unwrap_err();
        assert!(e.contains("cannot read"), "{e}");
    }
}
