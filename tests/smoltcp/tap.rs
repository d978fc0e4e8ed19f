//! The smoltcp ↔ kernel pair over a TAP (root). Without root these tests
//! fail with a clear message, unless FINRST_SKIP_LINUX=1 says to skip them.

use finrst::EngineKind;
use finrst::engine::RunOptions;
use finrst::trace::{Trace, relative};

/// One TAP run at a time, so that "nothing left behind" is checked while
/// no other run of this process has a namespace up.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn root_or_skip(test: &str) -> bool {
    let Err(why) = EngineKind::SmoltcpTap.check_available() else {
        return true;
    };
    if std::env::var("FINRST_SKIP_LINUX").as_deref() == Ok("1") {
        eprintln!("{test}: skipped (FINRST_SKIP_LINUX=1): {why}");
        return false;
    }
    panic!(
        "{test}: the smoltcp-tap tests need root (a TAP device and a network namespace): {why}; run them as root or set FINRST_SKIP_LINUX=1 to skip them"
    );
}

fn run_tap(script: &str, smol_host: &str) -> Trace {
    let opts = RunOptions {
        tap_host: Some(smol_host.into()),
        ..RunOptions::default()
    };
    finrst::run_file(script, EngineKind::SmoltcpTap, &opts)
        .unwrap_or_else(|e| panic!("{script} with {smol_host} on smoltcp: {e}"))
}

/// The client's last segment to the server.
fn client_close_flags(t: &Trace) -> String {
    relative(&t.segments)
        .iter()
        .rev()
        .find(|s| &*s.src == "client" && (s.flags.contains('F') || s.flags.contains('R')))
        .map(|s| s.flags.clone())
        .unwrap_or_else(|| panic!("no FIN or RST from the client:\n{}", t.to_text()))
}

/// Every network namespace a process holds (`/proc/*/ns/net`) or a
/// descriptor refers to (`net:[inode]`).
fn referenced_netns() -> std::collections::HashSet<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut s = std::collections::HashSet::new();
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let path = p.path();
        if let Ok(m) = std::fs::metadata(path.join("ns/net")) {
            s.insert(m.ino());
        }
        for fd in std::fs::read_dir(path.join("fd"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(l) = std::fs::read_link(fd.path()) {
                let l = l.to_string_lossy().to_string();
                if let Some(n) = l.strip_prefix("net:[").and_then(|x| x.strip_suffix(']')) {
                    s.insert(n.parse().unwrap_or(0));
                }
            }
        }
    }
    s
}

/// Nothing of the run is left: every namespace it made has no process and
/// no descriptor left (an unnamed namespace then ceases to exist), no
/// child of this process lives on, and nothing was named in /run/netns.
fn assert_nothing_left(before: &std::collections::HashSet<u64>) {
    let new: Vec<u64> = referenced_netns().difference(before).copied().collect();
    assert!(new.is_empty(), "namespaces left behind: {new:?}");
    let me = std::process::id().to_string();
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(p.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: the fields after the last ')'.
        let rest: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |x| x.1)
            .split_whitespace()
            .collect();
        if rest.get(1) == Some(&me.as_str()) && rest.first() != Some(&"Z") {
            panic!("a child of the test lives on: {stat}");
        }
    }
    let named = std::fs::read_dir("/run/netns")
        .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
        .unwrap_or_default();
    assert!(named.is_empty(), "named namespaces: {named:?}");
}

const UNREAD: &str = "tests/fixtures/smol-tap/unread-close.sim";

#[test]
fn smoltcp_client_kernel_server_fin() {
    if !root_or_skip("smoltcp_client_kernel_server_fin") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let before = referenced_netns();
    let t = run_tap(UNREAD, "client");
    assert!(t.failures.is_empty(), "{}", t.to_text());
    // smoltcp closes with unread data by FIN; the kernel server reads EOF.
    assert_eq!(client_close_flags(&t), "F.", "{}", t.to_text());
    let recv = t.calls.iter().find(|c| c.call.starts_with("recv")).unwrap();
    assert_eq!((recv.ret, recv.errno), (0, None), "{}", t.to_text());
    assert!(t.counters.is_empty(), "{:?}", t.counters);
    drop(t);
    assert_nothing_left(&before);
}

#[test]
fn kernel_client_smoltcp_server_rst() {
    if !root_or_skip("kernel_client_smoltcp_server_rst") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let before = referenced_netns();
    let t = run_tap(UNREAD, "server");
    assert!(t.failures.is_empty(), "{}", t.to_text());
    // The kernel closes with unread data by RST (TCPAbortOnClose), and the
    // smoltcp server's recv reports it as ECONNRESET.
    assert_eq!(client_close_flags(&t), "R.", "{}", t.to_text());
    assert_eq!(
        t.counters["client"][&finrst::vocab::Counter::TCPAbortOnClose],
        1,
        "{}",
        t.to_text()
    );
    let recv = t.calls.iter().find(|c| c.call.starts_with("recv")).unwrap();
    assert_eq!(
        recv.errno,
        Some(finrst::vocab::Errno::ECONNRESET),
        "{}",
        t.to_text()
    );
    assert_nothing_left(&before);
}

#[test]
fn three_hosts_are_refused_with_one_line() {
    if !root_or_skip("three_hosts_are_refused_with_one_line") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let hosts = finrst::engine::HostSpec::for_hosts(&["a".into(), "b".into(), "c".into()]);
    let e = finrst::make_engine(EngineKind::SmoltcpTap, &hosts, &RunOptions::default())
        .err()
        .expect("three hosts cannot pair");
    assert!(
        e.0.contains("exactly two hosts") && !e.0.contains('\n'),
        "{e}"
    );
}

#[test]
fn urgent_byte_arrives_inline_on_smoltcp() {
    if !root_or_skip("urgent_byte_arrives_inline_on_smoltcp") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let before = referenced_netns();
    let t = run_tap("tests/fixtures/smol-tap/urgent-to-smoltcp.sim", "server");
    assert!(t.failures.is_empty(), "{}", t.to_text());
    // The kernel really sent URG; smoltcp ignored it and read "c" inline.
    assert!(
        relative(&t.segments)
            .iter()
            .any(|s| s.flags == "P.U" && s.urg == Some(1)),
        "{}",
        t.to_text()
    );
    let recv = t.calls.iter().find(|c| c.call.starts_with("recv")).unwrap();
    assert_eq!(
        recv.note.as_deref(),
        Some("data \"abc\""),
        "{}",
        t.to_text()
    );
    assert_nothing_left(&before);
}
