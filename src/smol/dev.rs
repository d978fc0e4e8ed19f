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
//! Checksums: smoltcp computes them on transmit, so the bytes recorded are
//! the bytes a capture on a real link shows. They are verified once, where
//! the engine takes a frame off the wire (`Segment::checksum_ok`; a frame
//! that fails is counted and not delivered, as a receiver that verifies
//! would drop it), so the receiving interface does not verify them again:
//! the wire is a NIC with receive checksum offload.
//!
//! Frame buffers are reused: a transmit takes a buffer a received frame
//! left behind (the data a bulk sender's 64 KiB frames need come back as
//! the buffers of its peer's ACKs), so a long run allocates no frames.

use smoltcp::phy::{self, Checksum, Device, DeviceCapabilities, Medium};
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
    pub rx: VecDeque<WireFrame>,
    /// Frames this host transmitted since the engine last collected them.
    pub sent: Vec<WireFrame>,
    /// Buffers of frames read (or dropped), for the next transmits.
    pub free: RefCell<Vec<WireFrame>>,
}

/// A frame's bytes in a buffer that may be longer (a reused one keeps its
/// length, so that its bytes never need zeroing again).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WireFrame {
    buf: Vec<u8>,
    len: usize,
}

impl WireFrame {
    /// Makes the frame `len` bytes long, zeroing only bytes the buffer
    /// never had.
    fn set_len(&mut self, len: usize) {
        if self.buf.len() < len {
            self.buf.resize(len, 0);
        }
        self.len = len;
    }
}

impl From<Vec<u8>> for WireFrame {
    fn from(buf: Vec<u8>) -> WireFrame {
        WireFrame {
            len: buf.len(),
            buf,
        }
    }
}

impl std::ops::Deref for WireFrame {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::ops::DerefMut for WireFrame {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }
}

/// How many spare frame buffers a device keeps.
const FREE_MAX: usize = 8;

impl WireDev {
    /// Gives a frame's buffer back for reuse.
    pub fn recycle(&self, frame: WireFrame) {
        recycle(&self.free, frame);
    }
}

fn recycle(free: &RefCell<Vec<WireFrame>>, frame: WireFrame) {
    let mut f = free.borrow_mut();
    if f.len() < FREE_MAX {
        f.push(frame);
    }
}

pub struct WireRx<'a> {
    frame: WireFrame,
    free: &'a RefCell<Vec<WireFrame>>,
}
pub struct WireTx<'a> {
    sent: &'a mut Vec<WireFrame>,
    free: &'a RefCell<Vec<WireFrame>>,
}

impl phy::RxToken for WireRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let r = f(&self.frame);
        recycle(self.free, self.frame);
        r
    }
}

impl phy::TxToken for WireTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = self.free.borrow_mut().pop().unwrap_or_default();
        // smoltcp writes every byte of the frame it asked for (headers,
        // options padded with EOL, payload): a reused buffer's old bytes
        // are overwritten, so only bytes it never had are zeroed.
        frame.set_len(len);
        let r = f(&mut frame);
        self.sent.push(frame);
        r
    }
}

impl Device for WireDev {
    type RxToken<'a> = WireRx<'a>;
    type TxToken<'a> = WireTx<'a>;

    fn receive(&mut self, _t: Instant) -> Option<(WireRx<'_>, WireTx<'_>)> {
        let frame = self.rx.pop_front()?;
        Some((
            WireRx {
                frame,
                free: &self.free,
            },
            WireTx {
                sent: &mut self.sent,
                free: &self.free,
            },
        ))
    }

    fn transmit(&mut self, _t: Instant) -> Option<WireTx<'_>> {
        Some(WireTx {
            sent: &mut self.sent,
            free: &self.free,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ip;
        c.max_transmission_unit = WIRE_MTU;
        // Computed on transmit, verified once on the wire (see above).
        c.checksum.ipv4 = Checksum::Tx;
        c.checksum.tcp = Checksum::Tx;
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
        d.rx.push_back(vec![1, 2, 3].into());
        let (rx, tx) = d.receive(Instant::ZERO).unwrap();
        assert_eq!(rx.consume(|b| b.to_vec()), vec![1, 2, 3]);
        // The frame read lends its buffer to the reply.
        tx.consume(2, |b| {
            assert_eq!(b, &[1, 2]);
            b.copy_from_slice(&[9, 9])
        });
        d.transmit(Instant::ZERO).unwrap().consume(1, |b| b[0] = 7);
        let sent: Vec<Vec<u8>> = d.sent.iter().map(|f| f.to_vec()).collect();
        assert_eq!(sent, vec![vec![9, 9], vec![7]]);
        assert!(d.receive(Instant::ZERO).is_none());
    }

    #[test]
    fn capture_records_both_directions_in_order() {
        let mut inner = WireDev::default();
        inner.rx.push_back(vec![4, 5].into());
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
