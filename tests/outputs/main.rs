#![allow(clippy::collapsible_if)]
//! Integration tests of the outputs people look at: pcap files, ladder
//! diagrams and `finrst explain`. The traces are built by hand
//! ([`traces`]) so these tests do not depend on an engine.

mod capture;
mod cli;
mod explain;
mod ladder;
mod pcap;
mod situations;
mod traces;
