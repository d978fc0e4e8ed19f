//! The smoltcp ↔ kernel pair over a TAP (root). Without root these tests
//! fail with a clear message, unless FINRST_SKIP_LINUX=1 says to skip them.

use finrst::EngineKind;
use finrst::engine::RunOptions;
use finrst::trace::{Trace, relative};

/// One TAP run at a time, so that "nothing left behind" is checked while
/// no other run of this process has a namespace up.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn root_or_skip(test: &str) -> bool {
    if finrst::smol::tap::is_root() {
        return true;
    }
    if std::env::var("FINRST_SKIP_LINUX").as_deref() == Ok("1") {
        eprintln!("{test}: skipped (not root, FINRST_SKIP_LINUX=1)");
        return false;
    }
    panic!(
        "{test}: the smoltcp-tap tests need root (a TAP device and a network namespace); run them as root or set FINRST_SKIP_LINUX=1 to skip them"
    );
}

fn run_tap(script: &str, smol_host: &str) -> Trace {
    let opts = RunOptions {
        tap_host: Some(smol_host.into()),
        ..RunOptions::default()
    };
    finrst::run_file(script, EngineKind::SmoltcpTap, &opts, None)
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

/// Nothing of this process's runs is left: no namespace, no TAP.
fn assert_nothing_left() {
    let pid = std::process::id();
    let ns = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    let ns = String::from_utf8_lossy(&ns.stdout);
    assert!(
        !ns.contains(&format!("finrst-{pid}-")),
        "namespace left behind:\n{ns}"
    );
    for e in std::fs::read_dir("/sys/class/net").unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().to_string();
        assert!(
            !n.starts_with(&format!("frst{pid}n")),
            "TAP {n} left behind"
        );
    }
}

const UNREAD: &str = "tests/fixtures/smol-tap/unread-close.sim";

#[test]
fn smoltcp_client_kernel_server_fin() {
    if !root_or_skip("smoltcp_client_kernel_server_fin") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let t = run_tap(UNREAD, "client");
    assert!(t.failures.is_empty(), "{}", t.to_text());
    // smoltcp closes with unread data by FIN; the kernel server reads EOF.
    assert_eq!(client_close_flags(&t), "F.", "{}", t.to_text());
    let recv = t.calls.iter().find(|c| c.call.starts_with("recv")).unwrap();
    assert_eq!((recv.ret, recv.errno), (0, None), "{}", t.to_text());
    assert!(t.counters.is_empty(), "{:?}", t.counters);
    drop(t);
    assert_nothing_left();
}

#[test]
fn kernel_client_smoltcp_server_rst() {
    if !root_or_skip("kernel_client_smoltcp_server_rst") {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
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
    assert_nothing_left();
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
    assert_nothing_left();
}
