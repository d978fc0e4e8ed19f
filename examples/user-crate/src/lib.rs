//! A user of finrst's library: a scenario in Rust, run on the model.

use finrst::{Call, Counter, EngineKind, Errno, RunOptions, Scenario, Trace};

/// A keep-alive server that answers one request, then closes while the
/// client's second request is in flight: the server's close finds unread
/// bytes and sends RST, and the client's read fails.
pub fn second_request_reset() -> Result<Trace, Box<dyn std::error::Error>> {
    let script = Scenario::new("second-request-reset")
        .title("the server closes with the second request unread: RST")
        .hosts(["client", "server"])
        .call("server", Call::listen(8080))
        .call("client", Call::connect("server", 8080))
        .returns(0)
        .call("server", Call::Accept)
        .call("client", Call::send("GET /1\n"))
        .call("server", Call::recv(100))
        .returns(7)
        .call("server", Call::send("200 OK\n"))
        .call("client", Call::recv(100))
        .returns(7)
        .call("client", Call::send("GET /2\n"))
        .call("server", Call::Close)
        .expect_segment("server", "client", "R.")
        .expect_counter("server", Counter::TCPAbortOnClose, 1)
        .call("client", Call::recv(100))
        .fails(Errno::ECONNRESET)
        .build()?;
    Ok(finrst::run(&script, EngineKind::Model, &RunOptions::default())?)
}
