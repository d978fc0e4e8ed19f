//! Socket states from the kernel itself.
//!
//! Every state change of a full socket goes through `inet_sk_set_state` /
//! `inet_sk_state_store`, which fire the tracepoint
//! `sock:inet_sock_set_state`. We read it with `perf_event_open(2)`
//! (PERF_TYPE_TRACEPOINT, one ring buffer per CPU): the events are lost with
//! the descriptors, so nothing global is left enabled after a run, unlike
//! tracefs' `enable` files. The tracepoint is global across namespaces, so
//! each run uses real addresses no other run uses and keeps only its own
//! events.
//!
//! Time-wait sockets are not full sockets: `tcp_time_wait` hands the
//! connection to an `inet_timewait_sock` and the full socket goes to CLOSE
//! (traced), while the time-wait socket's sub-state (FIN_WAIT2 or
//! TIME_WAIT) changes and its death are not traced. Those we read from
//! `/proc/<pid>/net/tcp` of the host (`get_timewait4_sock` prints
//! `tw_substate`); see [`TcpEntry`].

use super::sys;
use crate::vocab::{Counter, RstReason, TcpState};
use std::collections::BTreeMap;
use std::io;
use std::net::Ipv4Addr;

/// The state with the kernel's number (`include/net/tcp_states.h`);
/// `CLOSE` for a number this kernel should never print.
pub fn state_name(s: u32) -> TcpState {
    TcpState::from_kernel(s).unwrap_or(TcpState::Close)
}

/// One `sock:inet_sock_set_state` event.
#[derive(Clone, Debug)]
pub struct Event {
    /// CLOCK_MONOTONIC ns.
    pub time_ns: u64,
    pub skaddr: u64,
    pub old: u32,
    pub new: u32,
    pub saddr: Ipv4Addr,
    pub sport: u16,
    pub daddr: Ipv4Addr,
    pub dport: u16,
}

/// Field offsets in the raw record, from the tracepoint's `format` file.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    skaddr: usize,
    oldstate: usize,
    newstate: usize,
    sport: usize,
    dport: usize,
    family: usize,
    protocol: usize,
    saddr: usize,
    daddr: usize,
}

impl Layout {
    fn parse(format: &str) -> Result<Layout, String> {
        let mut l = Layout::default();
        let mut found = 0;
        for line in format.lines() {
            let line = line.trim();
            let Some(rest) = line.strip_prefix("field:") else {
                continue;
            };
            let Some((decl, more)) = rest.split_once(';') else {
                continue;
            };
            let name = decl
                .split_whitespace()
                .last()
                .unwrap_or("")
                .split('[')
                .next()
                .unwrap_or("");
            let off = more
                .split(';')
                .find_map(|p| p.trim().strip_prefix("offset:"))
                .and_then(|v| v.parse::<usize>().ok());
            let Some(off) = off else { continue };
            let slot = match name {
                "skaddr" => &mut l.skaddr,
                "oldstate" => &mut l.oldstate,
                "newstate" => &mut l.newstate,
                "sport" => &mut l.sport,
                "dport" => &mut l.dport,
                "family" => &mut l.family,
                "protocol" => &mut l.protocol,
                "saddr" => &mut l.saddr,
                "daddr" => &mut l.daddr,
                _ => continue,
            };
            *slot = off;
            found += 1;
        }
        if found < 9 {
            return Err(format!(
                "sock:inet_sock_set_state has an unexpected format ({found} of 9 fields found)"
            ));
        }
        Ok(l)
    }
}

const PERF_RECORD_LOST: u32 = 2;
const PERF_RECORD_SAMPLE: u32 = 9;
/// 2^4 data pages per CPU: ~64 KiB, thousands of events between drains.
const DATA_PAGES: usize = 16;

/// How a tracepoint's raw record becomes an event.
pub trait Decode {
    type Event;
    /// The tracepoint's name, for errors.
    const NAME: &'static str;
    fn parse(format: &str) -> Result<Self, String>
    where
        Self: Sized;
    fn event(&self, time_ns: u64, raw: &[u8]) -> Option<Self::Event>;
}

impl Decode for Layout {
    type Event = Event;
    const NAME: &'static str = "sock:inet_sock_set_state";
    fn parse(format: &str) -> Result<Self, String> {
        Layout::parse(format)
    }
    fn event(&self, time_ns: u64, raw: &[u8]) -> Option<Event> {
        Layout::event(self, time_ns, raw)
    }
}

/// Per-CPU ring buffers of one tracepoint (by default
/// `sock:inet_sock_set_state`).
pub struct Tracer<L: Decode = Layout> {
    rings: Vec<sys::PerfRing>,
    layout: L,
    /// PERF_RECORD_LOST totals (reported in the notes).
    pub lost: u64,
}

impl<L: Decode> Tracer<L> {
    pub fn open(id: u64, format: &str) -> Result<Tracer<L>, String> {
        let layout = L::parse(format)?;
        let mut rings = Vec::new();
        for cpu in 0..sys::cpus_configured() {
            let fd = match sys::perf_tracepoint_open(id, cpu) {
                Ok(fd) => fd,
                Err(e)
                    if e.raw_os_error() == Some(libc::ENODEV)
                        || e.raw_os_error() == Some(libc::EINVAL) && cpu > 0 =>
                {
                    continue; // an offline CPU
                }
                Err(e) => return Err(format!("perf_event_open({}, cpu {cpu}): {e}", L::NAME)),
            };
            rings.push(sys::PerfRing::map(fd, DATA_PAGES).map_err(|e| e.to_string())?);
        }
        Ok(Tracer {
            rings,
            layout,
            lost: 0,
        })
    }

    /// Takes every event recorded so far, all CPUs merged in time order.
    pub fn drain(&mut self) -> Vec<L::Event> {
        let mut out = Vec::new();
        for r in &mut self.rings {
            for (typ, rec) in r.take() {
                if typ == PERF_RECORD_SAMPLE && rec.len() >= 12 {
                    let time_ns = u64::from_ne_bytes(rec[0..8].try_into().unwrap_or_default());
                    let rsize =
                        u32::from_ne_bytes(rec[8..12].try_into().unwrap_or_default()) as usize;
                    let raw = &rec[12..(12 + rsize).min(rec.len())];
                    if let Some(e) = self.layout.event(time_ns, raw) {
                        out.push((time_ns, e));
                    }
                } else if typ == PERF_RECORD_LOST && rec.len() >= 16 {
                    self.lost += u64::from_ne_bytes(rec[8..16].try_into().unwrap_or_default());
                }
            }
        }
        out.sort_by_key(|(t, _)| *t);
        out.into_iter().map(|(_, e)| e).collect()
    }
}

impl Layout {
    fn event(&self, time_ns: u64, raw: &[u8]) -> Option<Event> {
        let get = |off: usize, n: usize| raw.get(off..off + n);
        let u16_at = |off| get(off, 2).map(|b| u16::from_ne_bytes([b[0], b[1]]));
        let u32_at = |off| get(off, 4).map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
        let family = u16_at(self.family)?;
        let protocol = u16_at(self.protocol)?;
        if family != libc::AF_INET as u16 || protocol != libc::IPPROTO_TCP as u16 {
            return None;
        }
        let ip = |off| get(off, 4).map(|b| Ipv4Addr::new(b[0], b[1], b[2], b[3]));
        Some(Event {
            time_ns,
            skaddr: get(self.skaddr, 8)
                .map(|b| u64::from_ne_bytes(b.try_into().unwrap_or_default()))?,
            old: u32_at(self.oldstate)?,
            new: u32_at(self.newstate)?,
            sport: u16_at(self.sport)?,
            dport: u16_at(self.dport)?,
            saddr: ip(self.saddr)?,
            daddr: ip(self.daddr)?,
        })
    }
}

/// One `tcp:tcp_send_reset` event: the kernel's own name for why it sent
/// an RST (`enum sk_rst_reason`, include/net/rstreason.h). It fires in
/// `tcp_v4_send_reset` (no full socket, or one that answers a bad segment)
/// and `tcp_send_active_reset` (close, linger, disconnect, abort); the
/// addresses are the RST's own (with no socket, the tracepoint reverses the
/// offending segment's 4-tuple).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResetEvent {
    pub time_ns: u64,
    pub saddr: Ipv4Addr,
    pub sport: u16,
    pub daddr: Ipv4Addr,
    pub dport: u16,
    /// The reason, by the name this kernel prints for its number (`print
    /// fmt`); `None` for a number or name the vocabulary does not know (a
    /// newer kernel): the RST is then shown without a reason rather than
    /// with a guessed one.
    pub reason: Option<RstReason>,
}

/// Field offsets of `tcp:tcp_send_reset` and the reason names of the
/// running kernel, from the `__print_symbolic(REC->reason, ...)` table of
/// its format (the enum's values differ between kernel versions).
#[derive(Clone, Debug, Default)]
pub struct ResetLayout {
    reason: usize,
    saddr: usize,
    daddr: usize,
    names: Vec<(u32, Option<RstReason>)>,
}

impl Decode for ResetLayout {
    type Event = ResetEvent;
    const NAME: &'static str = "tcp:tcp_send_reset";
    fn parse(format: &str) -> Result<Self, String> {
        let mut l = ResetLayout::default();
        let mut found = 0;
        for line in format.lines() {
            let Some(rest) = line.trim().strip_prefix("field:") else {
                continue;
            };
            let Some((decl, more)) = rest.split_once(';') else {
                continue;
            };
            let name = decl
                .split_whitespace()
                .last()
                .unwrap_or("")
                .split('[')
                .next()
                .unwrap_or("");
            let Some(off) = more
                .split(';')
                .find_map(|p| p.trim().strip_prefix("offset:"))
                .and_then(|v| v.parse::<usize>().ok())
            else {
                continue;
            };
            match name {
                "reason" => l.reason = off,
                "saddr" => l.saddr = off,
                "daddr" => l.daddr = off,
                _ => continue,
            }
            found += 1;
        }
        if found < 3 {
            return Err(format!(
                "tcp:tcp_send_reset has an unexpected format ({found} of 3 fields: reason, saddr, daddr)"
            ));
        }
        // `__print_symbolic(REC->reason, { 0, "<name>" }, ...)`
        let table = format
            .split_once("__print_symbolic(REC->reason,")
            .map(|(_, t)| t)
            .ok_or("tcp:tcp_send_reset: no reason table in its print fmt")?;
        for part in table.split('{').skip(1) {
            let Some((num, rest)) = part.split_once(',') else {
                continue;
            };
            let Ok(n) = num.trim().parse::<u32>() else {
                continue;
            };
            if let Some(name) = rest.split('"').nth(1) {
                l.names.push((n, name.parse().ok()));
            }
        }
        if l.names.is_empty() {
            return Err("tcp:tcp_send_reset: an empty reason table".into());
        }
        Ok(l)
    }

    fn event(&self, time_ns: u64, raw: &[u8]) -> Option<ResetEvent> {
        // saddr/daddr are `struct sockaddr_in6`-sized buffers holding a
        // `sockaddr_in` for IPv4: family, port (network order), address.
        let sa = |off: usize| -> Option<(Ipv4Addr, u16)> {
            let b = raw.get(off..off + 8)?;
            if u16::from_ne_bytes([b[0], b[1]]) != libc::AF_INET as u16 {
                return None;
            }
            Some((
                Ipv4Addr::new(b[4], b[5], b[6], b[7]),
                u16::from_be_bytes([b[2], b[3]]),
            ))
        };
        let (saddr, sport) = sa(self.saddr)?;
        let (daddr, dport) = sa(self.daddr)?;
        let r = raw.get(self.reason..self.reason + 4)?;
        let r = u32::from_ne_bytes([r[0], r[1], r[2], r[3]]);
        let reason = self.names.iter().find(|(n, _)| *n == r).and_then(|x| x.1);
        Some(ResetEvent {
            time_ns,
            saddr,
            sport,
            daddr,
            dport,
            reason,
        })
    }
}

/// One line of `/proc/<pid>/net/tcp` (`tcp4_seq_show`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpEntry {
    pub laddr: Ipv4Addr,
    pub lport: u16,
    pub raddr: Ipv4Addr,
    pub rport: u16,
    /// For a time-wait socket, its sub-state (`tw_substate`).
    pub state: u32,
    pub tx_queue: u32,
    pub rx_queue: u32,
    /// 0 none, 1 retransmit/loss probe, 2 keepalive/FIN_WAIT2 (`sk_timer`),
    /// 3 time-wait socket, 4 zero-window probe.
    pub timer: u32,
    /// Jiffies-as-clock_t until the timer fires.
    pub when: u64,
    pub retransmits: u32,
    pub inode: u64,
}

impl TcpEntry {
    /// A time-wait socket (`get_timewait4_sock` always prints timer 3).
    pub fn is_tw(&self) -> bool {
        self.timer == 3
    }
}

fn hex_addr(s: &str) -> Option<(Ipv4Addr, u16)> {
    let (a, p) = s.split_once(':')?;
    // The address is the __be32 printed as a host-order %08X.
    let a = u32::from_str_radix(a, 16).ok()?;
    Some((
        Ipv4Addr::from(a.to_ne_bytes()),
        u16::from_str_radix(p, 16).ok()?,
    ))
}

/// Parses `/proc/<pid>/net/tcp` of a host's namespace.
pub fn read_proc_tcp(pid: libc::pid_t) -> io::Result<Vec<TcpEntry>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/tcp"))?;
    Ok(parse_proc_tcp(&text))
}

pub fn parse_proc_tcp(text: &str) -> Vec<TcpEntry> {
    let mut v = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        let (Some((la, lp)), Some((ra, rp))) = (hex_addr(f[1]), hex_addr(f[2])) else {
            continue;
        };
        let (tx, rx) = f[4].split_once(':').unwrap_or(("0", "0"));
        let (tr, when) = f[5].split_once(':').unwrap_or(("0", "0"));
        v.push(TcpEntry {
            laddr: la,
            lport: lp,
            raddr: ra,
            rport: rp,
            state: u32::from_str_radix(f[3], 16).unwrap_or(0),
            tx_queue: u32::from_str_radix(tx, 16).unwrap_or(0),
            rx_queue: u32::from_str_radix(rx, 16).unwrap_or(0),
            timer: u32::from_str_radix(tr, 16).unwrap_or(0),
            when: u64::from_str_radix(when, 16).unwrap_or(0),
            retransmits: u32::from_str_radix(f[6], 16).unwrap_or(0),
            inode: f[9].parse().unwrap_or(0),
        });
    }
    v
}

/// TcpExt counters of a host's namespace (`/proc/<pid>/net/netstat`).
pub fn read_tcpext(pid: libc::pid_t) -> io::Result<Vec<(String, i64)>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/netstat"))?;
    Ok(parse_tcpext(&text))
}

/// The reported counters ([`Counter::reported`]) of a host's namespace.
pub fn read_counters(pid: libc::pid_t) -> io::Result<BTreeMap<Counter, i64>> {
    Ok(read_tcpext(pid)?
        .into_iter()
        .filter_map(|(k, v)| Some((k.parse::<Counter>().ok().filter(|c| c.reported())?, v)))
        .collect())
}

/// What changed between two readings of [`read_counters`] (non-zero only):
/// the counters a script checks are changes since the run began.
pub fn counter_changes(
    now: &BTreeMap<Counter, i64>,
    start: &BTreeMap<Counter, i64>,
) -> BTreeMap<Counter, i64> {
    now.iter()
        .map(|(k, v)| (*k, v - start.get(k).copied().unwrap_or(0)))
        .filter(|(_, d)| *d != 0)
        .collect()
}

pub fn parse_tcpext(text: &str) -> Vec<(String, i64)> {
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("TcpExt:")).collect();
    if lines.len() < 2 {
        return Vec::new();
    }
    let names = lines[0].split_whitespace().skip(1);
    let vals = lines[1].split_whitespace().skip(1);
    names
        .zip(vals)
        .map(|(n, v)| (n.to_string(), v.parse().unwrap_or(0)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_tcp_line_with_a_time_wait_socket() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100000A:9C40 0200000A:270F 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000\n";
        let e = &parse_proc_tcp(t)[0];
        assert_eq!(e.laddr, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!((e.lport, e.rport), (40000, 9999));
        assert_eq!(e.state, 6);
        assert!(e.is_tw());
    }

    #[test]
    fn tcpext_pairs_names_with_values() {
        let t =
            "TcpExt: SyncookiesSent TCPAbortOnClose\nTcpExt: 0 3\nIpExt: InNoRoutes\nIpExt: 0\n";
        assert_eq!(
            parse_tcpext(t),
            vec![
                ("SyncookiesSent".into(), 0),
                (Counter::TCPAbortOnClose.name().into(), 3)
            ]
        );
    }

    #[test]
    fn reset_tracepoint_format_and_reason_table() {
        // The format of tcp:tcp_send_reset on Linux 6.18 (reason table cut
        // short).
        let f = "name: tcp_send_reset\nID: 2280\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:const void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;\n\
\tfield:const void * skaddr;\toffset:16;\tsize:8;\tsigned:0;\n\
\tfield:int state;\toffset:24;\tsize:4;\tsigned:1;\n\
\tfield:enum sk_rst_reason reason;\toffset:28;\tsize:4;\tsigned:0;\n\
\tfield:__u8 saddr[28];\toffset:32;\tsize:28;\tsigned:0;\n\
\tfield:__u8 daddr[28];\toffset:60;\tsize:28;\tsigned:0;\n\n\
print fmt: \"skbaddr=%p state=%s reason=%s\", REC->state ? __print_symbolic(REC->state, { TCP_ESTABLISHED, \"TCP_ESTABLISHED\" }) : \"UNKNOWN\", __print_symbolic(REC->reason, { 0, \"NOT_SPECIFIED\" }, { 1, \"NO_SOCKET\" }, { 11, \"TCP_ABORT_ON_CLOSE\" })\n";
        let l = ResetLayout::parse(f).unwrap();
        assert_eq!((l.reason, l.saddr, l.daddr), (28, 32, 60));
        assert_eq!(l.names.len(), 3);
        let mut raw = vec![0u8; 88];
        let close = RstReason::TcpAbortOnClose;
        raw[28..32].copy_from_slice(&11u32.to_ne_bytes());
        let af = (libc::AF_INET as u16).to_ne_bytes();
        raw[32..34].copy_from_slice(&af);
        raw[34..36].copy_from_slice(&40000u16.to_be_bytes());
        raw[36..40].copy_from_slice(&[10, 1, 2, 1]);
        raw[60..62].copy_from_slice(&af);
        raw[62..64].copy_from_slice(&9999u16.to_be_bytes());
        raw[64..68].copy_from_slice(&[10, 1, 2, 2]);
        let e = l.event(5, &raw).unwrap();
        assert_eq!(e.reason, Some(close));
        assert_eq!((e.saddr, e.sport), (Ipv4Addr::new(10, 1, 2, 1), 40000));
        assert_eq!((e.daddr, e.dport), (Ipv4Addr::new(10, 1, 2, 2), 9999));
        raw[28..32].copy_from_slice(&7u32.to_ne_bytes());
        assert_eq!(l.event(5, &raw).unwrap().reason, None);
        // An IPv6 RST is not ours.
        raw[32..34].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        assert!(l.event(5, &raw).is_none());
        assert!(ResetLayout::parse("format:\n").is_err());
    }

    #[test]
    fn tracepoint_format_offsets() {
        let f = "name: inet_sock_set_state\nID: 1\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:const void * skaddr;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:int oldstate;\toffset:16;\tsize:4;\tsigned:1;\n\tfield:int newstate;\toffset:20;\tsize:4;\tsigned:1;\n\tfield:__u16 sport;\toffset:24;\tsize:2;\tsigned:0;\n\tfield:__u16 dport;\toffset:26;\tsize:2;\tsigned:0;\n\tfield:__u16 family;\toffset:28;\tsize:2;\tsigned:0;\n\tfield:__u16 protocol;\toffset:30;\tsize:2;\tsigned:0;\n\tfield:__u8 saddr[4];\toffset:32;\tsize:4;\tsigned:0;\n\tfield:__u8 daddr[4];\toffset:36;\tsize:4;\tsigned:0;\n";
        let l = Layout::parse(f).unwrap();
        assert_eq!((l.skaddr, l.saddr, l.daddr, l.protocol), (8, 32, 36, 30));
    }
}
