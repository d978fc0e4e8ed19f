//! [`Scenario`]: a script described in Rust.

use super::*;
use std::time::Duration;

/// A scenario described in Rust instead of a `.sim` file. It yields the
/// same [`Script`] the parser does: [`Scenario::build`] prints the steps as
/// `.sim` text ([`Scenario::to_sim`]) and parses that, so a scenario built
/// here is checked exactly as a file would be (declared hosts, names,
/// ranges), its errors point at a line of that text, and it can be saved
/// and run by `finrst run`.
///
/// ```
/// use finrst::{Call, Counter, EngineKind, RunOptions, Scenario};
///
/// let script = Scenario::new("unread-close")
///     .title("the server reads 1 of 2 bytes and closes: RST")
///     .hosts(["client", "server"])
///     .call("server", Call::listen(9999))
///     .call("client", Call::connect("server", 9999))
///     .call("server", Call::Accept)
///     .call("client", Call::send("ab"))
///     .call("server", Call::recv(1))
///     .call("server", Call::Close)
///     .expect_segment("server", "client", "R.")
///     .expect_counter("server", Counter::TCPAbortOnClose, 1)
///     .build()?;
/// let trace = finrst::run(&script, EngineKind::Model, &RunOptions::default())?;
/// assert!(trace.failures.is_empty());
/// let last = trace.relative_segments().pop().unwrap();
/// assert_eq!((last.flags.as_str(), last.seq, last.ack), ("R.", 1, Some(3)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Scenario {
    name: String,
    title: String,
    description: Vec<String>,
    hosts: Vec<String>,
    horizon_us: Option<u64>,
    steps: Vec<Step>,
    /// Builder calls that had nothing to apply to (e.g. `returns` before
    /// any call), reported by [`Scenario::build`].
    misuse: Vec<String>,
}

fn step(kind: StepKind) -> Step {
    Step {
        line: 0,
        col: 0,
        text: String::new(),
        kind,
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Scenario {
    /// A scenario named `name` (what traces and messages call it, as the
    /// file name of a `.sim`).
    pub fn new(name: impl Into<String>) -> Scenario {
        Scenario {
            name: name.into(),
            ..Scenario::default()
        }
    }

    /// The `title` line.
    pub fn title(mut self, title: impl Into<String>) -> Scenario {
        self.title = title.into();
        self
    }

    /// A `description` line (may repeat).
    pub fn description(mut self, text: impl Into<String>) -> Scenario {
        self.description.push(text.into());
        self
    }

    /// The hosts, in address order (host *i* is 10.0.0.*i+1*).
    pub fn hosts<I, S>(mut self, hosts: I) -> Scenario
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.hosts = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// Stop the run here at the latest.
    pub fn horizon(mut self, d: Duration) -> Scenario {
        self.horizon_us = Some(micros(d));
        self
    }

    /// A socket call by `host`'s program on its default socket.
    pub fn call(mut self, host: &str, call: Call) -> Scenario {
        self.steps.push(step(StepKind::Call(CallStep {
            host: host.into(),
            sock: None,
            call,
            name_as: None,
            expected: None,
        })));
        self
    }

    /// A socket call on the socket named `sock` (`HOST.SOCK CALL`).
    pub fn call_on(mut self, host: &str, sock: &str, call: Call) -> Scenario {
        self.steps.push(step(StepKind::Call(CallStep {
            host: host.into(),
            sock: Some(sock.into()),
            call,
            name_as: None,
            expected: None,
        })));
        self
    }

    fn last_call(&mut self, what: &str) -> Option<&mut CallStep> {
        match self.steps.last_mut().map(|s| &mut s.kind) {
            Some(StepKind::Call(c)) => Some(c),
            _ => {
                self.misuse.push(format!(
                    "`{what}` follows no call (it applies to the call before it)"
                ));
                None
            }
        }
    }

    /// The call before expects to return `v` (`= v`).
    pub fn returns(mut self, v: i64) -> Scenario {
        if let Some(c) = self.last_call("returns") {
            c.expected = Some(Expected::Value(v));
        }
        self
    }

    /// The call before expects to fail with `e` (`= -1 E...`).
    pub fn fails(mut self, e: Errno) -> Scenario {
        if let Some(c) = self.last_call("fails") {
            c.expected = Some(Expected::Errno(e));
        }
        self
    }

    /// The call before (`socket`, `listen`, `connect`, `accept`) names
    /// the socket it makes (`as NAME`).
    pub fn named(mut self, name: &str) -> Scenario {
        if let Some(c) = self.last_call("named") {
            c.name_as = Some(name.into());
        }
        self
    }

    /// Calls made at one instant: nothing is delivered between them.
    pub fn together(mut self, calls: impl FnOnce(Scenario) -> Scenario) -> Scenario {
        let inner = calls(Scenario::default());
        self.misuse.extend(inner.misuse);
        self.steps.push(step(StepKind::Together(inner.steps)));
        self
    }

    /// The steps `body` adds, `count` times over.
    pub fn repeat(mut self, count: u32, body: impl FnOnce(Scenario) -> Scenario) -> Scenario {
        let inner = body(Scenario::default());
        self.misuse.extend(inner.misuse);
        self.steps.push(step(StepKind::Repeat {
            count,
            steps: inner.steps,
        }));
        self
    }

    /// Expectations checked only when the run follows `policy`.
    pub fn when_policy(
        mut self,
        policy: Policy,
        expectations: impl FnOnce(Scenario) -> Scenario,
    ) -> Scenario {
        let inner = expectations(Scenario::default());
        self.misuse.extend(inner.misuse);
        self.steps.push(step(StepKind::When {
            policy,
            steps: inner.steps,
        }));
        self
    }

    /// Let time pass.
    pub fn wait(mut self, d: Duration) -> Scenario {
        self.steps.push(step(StepKind::Wait { us: micros(d) }));
        self
    }

    /// A sysctl of `host` (`net.ipv4.tcp_fin_timeout = 5`).
    pub fn sysctl(mut self, host: &str, key: Sysctl, value: impl ToString) -> Scenario {
        self.steps.push(step(StepKind::Sysctl {
            host: host.into(),
            key,
            value: value.to_string(),
        }));
        self
    }

    /// A fault on the next segments `host` sends.
    pub fn fault(mut self, host: &str, fault: Fault) -> Scenario {
        self.steps.push(step(StepKind::Fault {
            host: host.into(),
            fault,
        }));
        self
    }

    /// Releases the segments held from `host`.
    pub fn release(mut self, host: &str) -> Scenario {
        self.steps
            .push(step(StepKind::Release { host: host.into() }));
        self
    }

    /// Any expectation.
    pub fn expect(mut self, e: Expect) -> Scenario {
        self.steps.push(step(StepKind::Expect(e)));
        self
    }

    /// A segment `src > dst` with tcpdump's flags (`R.`, `F.`, `S`) sent
    /// since the step before began.
    pub fn expect_segment(mut self, src: &str, dst: &str, flags: &str) -> Scenario {
        match Flags::from_tcpdump(flags) {
            Some(flags) => self.steps.push(step(StepKind::Expect(Expect::Segment {
                negated: false,
                src: src.into(),
                dst: dst.into(),
                flags,
                seq: None,
                ack: None,
                win: None,
                len: None,
            }))),
            None => self.misuse.push(format!(
                "`{flags}` is not tcpdump's flags (S, S., P., F., R, R., .)"
            )),
        }
        self
    }

    /// A socket's TCP state (`CLOSE` once it is gone). `sock` `None`: the
    /// host's default socket.
    pub fn expect_state(mut self, host: &str, sock: Option<&str>, state: TcpState) -> Scenario {
        self.steps.push(step(StepKind::Expect(Expect::State {
            host: host.into(),
            sock: sock.map(Into::into),
            state,
        })));
        self
    }

    /// A TcpExt counter's change since the run began.
    pub fn expect_counter(mut self, host: &str, name: Counter, value: i64) -> Scenario {
        self.steps.push(step(StepKind::Expect(Expect::Counter {
            host: host.into(),
            name,
            value,
        })));
        self
    }

    fn script(&self) -> Script {
        Script {
            path: format!("{}.sim", self.name),
            title: self.title.clone(),
            description: self.description.clone(),
            hosts: self.hosts.clone(),
            horizon_us: self.horizon_us,
            steps: self.steps.clone(),
        }
    }

    /// The scenario as `.sim` text.
    pub fn to_sim(&self) -> String {
        self.script().to_string()
    }

    /// The script, checked as the parser checks a file.
    pub fn build(&self) -> Result<Script, ScriptError> {
        let path = format!("{}.sim", self.name);
        if let Some(m) = self.misuse.first() {
            return Err(ScriptError {
                file: path,
                line: 0,
                col: 0,
                found: m.clone(),
                expected: "a builder call after the call it applies to".into(),
            });
        }
        parse(&path, &self.to_sim())
    }
}

/// Constructors for the calls a scenario makes most.
impl Call {
    /// `listen PORT` (backlog 128).
    pub fn listen(port: u16) -> Call {
        Call::Listen {
            port,
            backlog: DEFAULT_BACKLOG,
        }
    }
    /// `connect HOST:PORT` (blocking, from the runner's next port).
    pub fn connect(host: &str, port: u16) -> Call {
        Call::Connect {
            host: host.into(),
            port,
            from_port: None,
            nonblock: false,
        }
    }
    /// `send "..."`: these bytes.
    pub fn send(bytes: impl Into<Vec<u8>>) -> Call {
        Call::Send {
            data: Data::Bytes(bytes.into()),
            flags: MsgFlags::default(),
        }
    }
    /// `send N`: N bytes of the `a..z` pattern.
    pub fn send_n(n: u32) -> Call {
        Call::Send {
            data: Data::Count(n),
            flags: MsgFlags::default(),
        }
    }
    /// `recv N`.
    pub fn recv(len: u32) -> Call {
        Call::Recv {
            len,
            flags: MsgFlags::default(),
        }
    }
    /// `setsockopt SO_LINGER {on, secs}`.
    pub fn linger(on: bool, secs: i32) -> Call {
        Call::SetSockOpt(SockOpt::Linger { on, secs })
    }
}
