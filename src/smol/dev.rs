//! The devices smoltcp's interfaces run on.
//!
//! [`WireDev`] is one end of the in-process wire: smoltcp reads the frames
//! the engine pushed into `rx`, and every frame it transmits — through a
//! plain transmit token or through the reply token handed out with a
//! received frame (ACKs, RSTs to unknown segments) — lands in `sent`, which
//! *is* the capture: the engine takes the frames from there, records them
//! and moves them across the wire. [`Capture`] wraps a real device (the TAP)
//! and copies both directions, since there the other side is the kernel.
//!
//! Checksums are on (`DeviceCapabilities::default()` computes and verifies
//! them): the bytes recorded are the bytes a capture on a real link shows,
//! and `Segment::decode_ipv4` sees real checksums.

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use std::cell::RefCell;
use std::collections::VecDeque;

/// IP MTU of the in-process wire: Linux loopback's (64 KiB), so that
/// smoltcp announces the same MSS as Linux does on `lo` (65495).
pub const WIRE_MTU: usize = 65535;

/// One host's end of the in-process wire (`Medium::Ip`: frames are bare
/// IPv4 packets, no link header, no ARP).
#[derive(Debug, Default)]
pub struct WireDev {
    /// Frames delivered to this host, not yet read by its interface.
    pub rx: VecDeque<Vec<u8>>,
    /// Frames this host transmitted since the engine last collected them.
    pub sent: Vec<Vec<u8>>,
}

pub struct WireRx(Vec<u8>);
pub struct WireTx<'a>(&'a mut Vec<Vec<u8>>);

impl phy::RxToken for WireRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for WireTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        self.0.push(buf);
        r
    }
}

impl Device for WireDev {
    type RxToken<'a> = WireRx;
    type TxToken<'a> = WireTx<'a>;

    fn receive(&mut self, _t: Instant) -> Option<(WireRx, WireTx<'_>)> {
        let f = self.rx.pop_front()?;
        Some((WireRx(f), WireTx(&mut self.sent)))
    }

    fn transmit(&mut self, _t: Instant) -> Option<WireTx<'_>> {
        Some(WireTx(&mut self.sent))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ip;
        c.max_transmission_unit = WIRE_MTU;
        c
    }
}

/// Which way a captured frame went, seen from the smoltcp host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Out,
    In,
}

/// A device wrapper that records every frame both ways (used on the TAP,
/// where frames from the kernel never pass through a [`WireDev`]).
pub struct Capture<D> {
    pub inner: D,
    pub frames: RefCell<Vec<(Dir, Vec<u8>)>>,
}

impl<D> Capture<D> {
    pub fn new(inner: D) -> Self {
        Capture {
            inner,
            frames: RefCell::new(Vec::new()),
        }
    }
}

pub struct CapRx<'a, T> {
    inner: T,
    frames: &'a RefCell<Vec<(Dir, Vec<u8>)>>,
}
pub struct CapTx<'a, T> {
    inner: T,
    frames: &'a RefCell<Vec<(Dir, Vec<u8>)>>,
}

impl<T: phy::RxToken> phy::RxToken for CapRx<'_, T> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let frames = self.frames;
        self.inner.consume(|b| {
            frames.borrow_mut().push((Dir::In, b.to_vec()));
            f(b)
        })
    }
}

impl<T: phy::TxToken> phy::TxToken for CapTx<'_, T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let frames = self.frames;
        self.inner.consume(len, |b| {
            let r = f(b);
            frames.borrow_mut().push((Dir::Out, b.to_vec()));
            r
        })
    }
}

impl<D: Device> Device for Capture<D> {
    type RxToken<'a>
        = CapRx<'a, D::RxToken<'a>>
    where
        D: 'a;
    type TxToken<'a>
        = CapTx<'a, D::TxToken<'a>>
    where
        D: 'a;

    fn receive(&mut self, t: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let (rx, tx) = self.inner.receive(t)?;
        Some((
            CapRx {
                inner: rx,
                frames: &self.frames,
            },
            CapTx {
                inner: tx,
                frames: &self.frames,
            },
        ))
    }

    fn transmit(&mut self, t: Instant) -> Option<Self::TxToken<'_>> {
        let tx = self.inner.transmit(t)?;
        Some(CapTx {
            inner: tx,
            frames: &self.frames,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.inner.capabilities()
    }
}

/// The IPv4 packet inside a captured frame: the frame itself on
/// `Medium::Ip`; on Ethernet the payload of an IPv4 frame (ARP and anything
/// else is not TCP and yields `None`).
pub fn ipv4_of(medium: Medium, frame: &[u8]) -> Option<&[u8]> {
    match medium {
        Medium::Ip => Some(frame),
        Medium::Ethernet => {
            if frame.len() > 14 && frame[12] == 0x08 && frame[13] == 0x00 {
                Some(&frame[14..])
            } else {
                None
            }
        }
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::{RxToken, TxToken};

    #[test]
    fn reply_tokens_are_captured_like_plain_transmits() {
        let mut d = WireDev::default();
        d.rx.push_back(vec![1, 2, 3]);
        let (rx, tx) = d.receive(Instant::ZERO).unwrap();
        assert_eq!(rx.consume(|b| b.to_vec()), vec![1, 2, 3]);
        tx.consume(2, |b| b.copy_from_slice(&[9, 9]));
        d.transmit(Instant::ZERO).unwrap().consume(1, |b| b[0] = 7);
        assert_eq!(d.sent, vec![vec![9, 9], vec![7]]);
        assert!(d.receive(Instant::ZERO).is_none());
    }

    #[test]
    fn capture_records_both_directions_in_order() {
        let mut inner = WireDev::default();
        inner.rx.push_back(vec![4, 5]);
        let mut c = Capture::new(inner);
        let (rx, tx) = c.receive(Instant::ZERO).unwrap();
        rx.consume(|_| ());
        tx.consume(1, |b| b[0] = 6);
        assert_eq!(
            c.frames.into_inner(),
            vec![(Dir::In, vec![4, 5]), (Dir::Out, vec![6])]
        );
    }

    #[test]
    fn ethernet_frames_yield_their_ipv4_payload_only() {
        let mut f = vec![0u8; 14];
        f[12] = 0x08;
        f.extend_from_slice(&[0x45, 0]);
        assert_eq!(ipv4_of(Medium::Ethernet, &f), Some(&[0x45, 0][..]));
        f[13] = 0x06; // ARP
        assert_eq!(ipv4_of(Medium::Ethernet, &f), None);
        assert_eq!(ipv4_of(Medium::Ip, &[1]), Some(&[1][..]));
    }
}
