//! Reads a capture as a stream, one TCP segment at a time: classic pcap
//! (both byte orders, µs and ns timestamps, and the "modified" format) and
//! pcapng through `pcap-parser`'s streaming readers, tcpdump's text
//! through [`super::text`], and any of these compressed with gzip.
//!
//! Memory does not grow with the file: the container readers hold one
//! buffer (grown only for a record larger than it, up to
//! [`MAX_RECORD`]), text is read a line at a time, and notes on what was
//! skipped are counted per reason ([`super::notes`]). Link-layer and
//! IP/TCP decoding is [`super::link`].
//!
//! A file damaged part-way (cut short, a corrupt record, a read error)
//! yields the segments before the damage, and [`Stopped`] says where
//! reading stopped. Nothing here panics on any input (proptests feed it
//! random bytes and mangled captures).

use super::Packet;
use super::link::{decode_frame, link_name};
use super::notes::{Tally, Unit};
use super::text;
use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{Block, LegacyPcapReader, OptionCode, PcapBlockOwned, PcapError, PcapNGReader};
use serde::Serialize;
use std::cell::RefCell;
use std::fmt;
use std::io::{self, BufReader, Read};
use std::rc::Rc;

/// The container readers' buffer to start with: several records per read.
const BUFFER: usize = 256 * 1024;

/// The largest record or block read, whatever its header claims. libpcap
/// refuses pcapng blocks over 16 MiB (`MAX_BLOCKSIZE`) and classic records
/// over 256 KiB; a larger claim is a corrupt length, and reading on would
/// only hold more of the file in memory.
pub const MAX_RECORD: usize = 16 * 1024 * 1024;

/// Interfaces kept per pcapng section: real captures have a handful, and
/// each description costs memory.
const MAX_INTERFACES: usize = 65_536;

/// Where and why reading stopped before the end of the capture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stopped {
    /// Offset of the damage in the file (in the decompressed data when the
    /// file is gzip-compressed).
    pub byte: u64,
    /// Packets (pcap records, pcapng packet blocks) or text lines read
    /// before it.
    pub read: u64,
    /// One sentence naming the frame or line and the byte offset.
    pub what: String,
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

/// What a reader says once done.
pub struct Summary {
    pub format: String,
    /// What was not read, counted per reason; where reading stopped first.
    pub notes: Vec<String>,
    pub stopped: Option<Stopped>,
}

/// True when the bytes start like a pcap or pcapng file.
pub fn is_binary_capture(b: &[u8]) -> bool {
    pcap_magic(b).is_some() || b.starts_with(&PCAPNG_MAGIC)
}

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A classic pcap's magic as written: (big-endian, ns timestamps).
fn pcap_magic(b: &[u8]) -> Option<(bool, bool)> {
    match b.get(..4)? {
        [0xa1, 0xb2, 0xc3, 0xd4] => Some((true, false)),
        [0xd4, 0xc3, 0xb2, 0xa1] => Some((false, false)),
        [0xa1, 0xb2, 0x3c, 0x4d] => Some((true, true)),
        [0x4d, 0x3c, 0xb2, 0xa1] => Some((false, true)),
        // Kuznetzov's "modified" pcap (little-endian only, 24-byte records).
        [0x34, 0xcd, 0xb2, 0xa1] => Some((false, false)),
        _ => None,
    }
}

/// A capture being read: an iterator of its TCP segments. [`Reader::finish`]
/// then tells the format, the notes, and where reading stopped, if it did.
pub struct Reader<'a> {
    inner: Inner<'a>,
    gzip: bool,
    stopped: Option<Stopped>,
}

enum Inner<'a> {
    Pcap(Pcap<'a>),
    Ng(Ng<'a>),
    Text(text::Lines<BufReader<Box<dyn Read + 'a>>>),
    /// Stopped before the format was known (a corrupt gzip header).
    Nothing,
}

impl<'a> Reader<'a> {
    /// Starts reading `input`, looking at its first bytes for the format.
    /// `Err` only when the first read fails (nothing was read: a
    /// directory, say); damage later on is [`Reader::finish`]'s `stopped`.
    pub fn new(input: impl Read + 'a) -> io::Result<Reader<'a>> {
        let (mut head, mut input) = peek(Box::new(input))?;
        let gzip = head.starts_with(&GZIP_MAGIC);
        if gzip {
            // Several gzip members one after another (`cat a.gz b.gz`)
            // decompress to their concatenation, as with gunzip.
            let unzipped: Box<dyn Read + 'a> = Box::new(flate2::read::MultiGzDecoder::new(input));
            match peek(unzipped) {
                Ok((h, r)) => (head, input) = (h, r),
                Err(e) => {
                    return Ok(Reader {
                        inner: Inner::Nothing,
                        gzip,
                        stopped: Some(Stopped {
                            byte: 0,
                            read: 0,
                            what: format!("the gzip data is unreadable from its start: {e}"),
                        }),
                    });
                }
            }
        }
        let mut r = Reader {
            inner: Inner::Nothing,
            gzip,
            stopped: None,
        };
        let opened = if let Some((big, nanos)) = pcap_magic(&head) {
            Pcap::open(input, big, nanos).map(Inner::Pcap)
        } else if head.starts_with(&PCAPNG_MAGIC) {
            Ng::open(input).map(Inner::Ng)
        } else {
            Ok(Inner::Text(text::Lines::new(BufReader::with_capacity(
                64 * 1024,
                input,
            ))))
        };
        match opened {
            Ok(inner) => r.inner = inner,
            Err(s) => r.stopped = Some(r.located(s)),
        }
        Ok(r)
    }

    /// The format, the notes, and where reading stopped.
    pub fn finish(self) -> Summary {
        let (format, mut notes) = match self.inner {
            Inner::Pcap(p) => (p.format, p.tally.render()),
            Inner::Ng(n) => (n.format(), n.tally.render()),
            Inner::Text(t) => ("tcpdump text".to_string(), t.notes()),
            Inner::Nothing => ("unknown".to_string(), Vec::new()),
        };
        let format = if self.gzip {
            format!("{format}, gzip-compressed")
        } else {
            format
        };
        if let Some(s) = &self.stopped {
            // Text notes may open with what the file looked like; where
            // reading stopped comes before the per-reason counts.
            let at = notes
                .iter()
                .position(|n| n == text::NOT_TEXT)
                .map_or(0, |i| i + 1);
            notes.insert(at, s.what.clone());
        }
        Summary {
            format,
            notes,
            stopped: self.stopped,
        }
    }

    /// A read error's [`Stopped`], said as what failed: the gzip data or
    /// the file.
    fn located(&self, s: Stop) -> Stopped {
        match s {
            Stop::Damage(s) => s,
            Stop::Io {
                byte,
                read,
                unit,
                error,
            } => Stopped {
                byte,
                read,
                what: if self.gzip {
                    format!(
                        "the gzip data fails at byte {byte} of the decompressed data, after \
                         {read} {unit}: {error}"
                    )
                } else {
                    format!("reading failed at byte {byte}, after {read} {unit}: {error}")
                },
            },
        }
    }
}

impl Iterator for Reader<'_> {
    type Item = Packet;

    fn next(&mut self) -> Option<Packet> {
        let got = match &mut self.inner {
            Inner::Pcap(p) => p.next_packet(),
            Inner::Ng(n) => n.next_packet(),
            Inner::Text(t) => t.next_packet().map_err(|(byte, read, error)| Stop::Io {
                byte,
                read,
                unit: "lines",
                error,
            }),
            Inner::Nothing => return None,
        };
        match got {
            Ok(p) => p,
            Err(s) => {
                self.stopped = Some(self.located(s));
                // Keep the notes; read nothing more.
                match &mut self.inner {
                    Inner::Pcap(p) => p.done = true,
                    Inner::Ng(n) => n.done = true,
                    Inner::Text(t) => t.done = true,
                    Inner::Nothing => {}
                }
                None
            }
        }
    }
}

/// Why a container reader stopped.
enum Stop {
    /// The file is cut short or corrupt: said in full.
    Damage(Stopped),
    /// Reading failed (the file, or the gzip data in it).
    Io {
        byte: u64,
        /// What was read before, in `unit`s (`packets`, `lines`).
        read: u64,
        unit: &'static str,
        error: io::Error,
    },
}

/// Reads up to 4 bytes to tell the format, and gives back a reader that
/// still starts with them.
fn peek<'a>(mut r: Box<dyn Read + 'a>) -> io::Result<(Vec<u8>, Box<dyn Read + 'a>)> {
    let mut head = [0u8; 4];
    let n = fill(&mut r, &mut head)?;
    let head = head[..n].to_vec();
    let again: Box<dyn Read + 'a> = Box::new(io::Cursor::new(head.clone()).chain(r));
    Ok((head, again))
}

/// Reads until `buf` is full or the input ends; the count read.
fn fill(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// What `pcap-parser`'s readers read from.
///
/// Each read fills the buffer it is given, as far as the input goes: the
/// readers parse the file header from their very first read, and a pipe
/// or a gzip decoder hands out a few bytes at a time. And the readers
/// reduce any I/O error to `PcapError::ReadError`, so the error itself is
/// kept here to be reported.
struct Source<'a> {
    inner: Box<dyn Read + 'a>,
    error: Rc<RefCell<Option<io::Error>>>,
    /// Once a read failed, every later one fails: a decoder may answer
    /// a read after its error with 0 bytes, which would look like the end.
    failed: Option<io::ErrorKind>,
}

impl Read for Source<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(kind) = self.failed {
            return Err(io::Error::new(kind, "read after an error"));
        }
        let mut n = 0;
        while n < buf.len() {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.failed = Some(e.kind());
                    *self.error.borrow_mut() = Some(e);
                    // What was read is handed over; the next read fails.
                    if n > 0 {
                        break;
                    }
                    return Err(io::Error::new(
                        self.failed.unwrap_or(io::ErrorKind::Other),
                        "read error",
                    ));
                }
            }
        }
        Ok(n)
    }
}

fn source<'a>(inner: Box<dyn Read + 'a>) -> (Source<'a>, Rc<RefCell<Option<io::Error>>>) {
    let error = Rc::new(RefCell::new(None));
    (
        Source {
            inner,
            error: error.clone(),
            failed: None,
        },
        error,
    )
}

/// The stop when the reader could not read a capture's header: the I/O
/// error the source kept (pcap-parser reports only that reading failed).
fn read_failed_at_start(error: &RefCell<Option<io::Error>>) -> Stop {
    Stop::Io {
        byte: 0,
        read: 0,
        unit: "packets",
        error: error
            .borrow_mut()
            .take()
            .unwrap_or_else(|| io::Error::other("read error")),
    }
}

/// What the pcap and pcapng readers do when `pcap-parser` asks for more
/// data: refill the buffer, growing it for a record larger than it.
trait Refill {
    fn reader(&mut self) -> &mut dyn PcapReaderIterator;
    fn io_error(&self) -> Option<io::Error>;
    /// Packets read so far.
    fn read(&self) -> u64;
    /// The size the record at the front of the buffer claims, header
    /// included, when its header is there; and that claim in words
    /// (`packet 4 at byte 222 claims 60 bytes`).
    fn claim(&mut self) -> Option<(usize, String)>;

    /// Reads more after `Incomplete`; grows the buffer after
    /// `BufferTooSmall` (`grow`), or when a refill brought nothing new.
    fn more(&mut self, cap: &mut usize, grow: bool) -> Result<(), Stop> {
        let before = self.reader().data().len();
        if grow || before >= *cap {
            let Some((need, what)) = self.claim() else {
                let at = self.reader().consumed();
                let why = format!("the record at byte {at} is larger than the buffer");
                return Err(self.damage(&why));
            };
            if need > MAX_RECORD {
                let why = format!("{what}, more than any capture holds: the file is corrupt");
                return Err(self.damage(&why));
            }
            // Room for the record, and the next ones behind it.
            let want = need.saturating_add(BUFFER).min(MAX_RECORD + BUFFER);
            if want > *cap && self.reader().grow(want) {
                *cap = want;
            }
        }
        if self.reader().refill().is_err() {
            let at = self.reader().consumed() as u64 + before as u64;
            let error = self
                .io_error()
                .unwrap_or_else(|| io::Error::other("read error"));
            return Err(Stop::Io {
                byte: at,
                read: self.read(),
                unit: "packets",
                error,
            });
        }
        Ok(())
    }

    /// The file is corrupt where the buffer starts; `why` names the byte.
    fn damage(&mut self, why: &str) -> Stop {
        let byte = self.reader().consumed() as u64;
        Stop::Damage(Stopped {
            byte,
            read: self.read(),
            what: format!("{why}; stopped after {} packets", self.read()),
        })
    }
}

/// A classic pcap file.
struct Pcap<'a> {
    rd: LegacyPcapReader<Source<'a>>,
    error: Rc<RefCell<Option<io::Error>>>,
    cap: usize,
    big: bool,
    nanos: bool,
    /// Bytes of a record header: 16, or 24 in the modified format.
    record_header: usize,
    link: u32,
    format: String,
    /// Records read.
    n: u64,
    tally: Tally,
    done: bool,
}

impl<'a> Pcap<'a> {
    fn open(input: Box<dyn Read + 'a>, big: bool, nanos: bool) -> Result<Pcap<'a>, Stop> {
        let (src, error) = source(input);
        let rd = match LegacyPcapReader::new(BUFFER, src) {
            Ok(rd) => rd,
            Err(PcapError::ReadError) => {
                return Err(read_failed_at_start(&error));
            }
            Err(_) => {
                return Err(Stop::Damage(Stopped {
                    byte: 0,
                    read: 0,
                    what: "pcap truncated in its 24-byte file header: no packets".into(),
                }));
            }
        };
        Ok(Pcap {
            rd,
            error,
            cap: BUFFER,
            big,
            nanos,
            record_header: 16,
            link: 0,
            format: "pcap".into(),
            n: 0,
            tally: Tally::new(Unit::Packet),
            done: false,
        })
    }

    fn next_packet(&mut self) -> Result<Option<Packet>, Stop> {
        while !self.done {
            let (used, packet) = match self.rd.next() {
                Ok((used, PcapBlockOwned::LegacyHeader(h))) => {
                    if h.is_modified_format() {
                        self.record_header = 24;
                    }
                    // The upper bits of the link-type field carry FCS
                    // information.
                    self.link = (h.network.0 as u32) & 0xffff;
                    self.format = format!(
                        "pcap ({}, {} timestamps, link type {})",
                        if self.big {
                            "big-endian"
                        } else {
                            "little-endian"
                        },
                        if self.nanos { "ns" } else { "µs" },
                        link_name(self.link)
                    );
                    (used, None)
                }
                Ok((used, PcapBlockOwned::Legacy(b))) => {
                    self.n += 1;
                    let frac = if self.nanos {
                        u64::from(b.ts_usec)
                    } else {
                        u64::from(b.ts_usec) * 1000
                    };
                    // At most 2^32 s * 10^9 + 2^32 * 1000: no overflow.
                    let ns = u64::from(b.ts_sec) * 1_000_000_000 + frac;
                    let cut = b.origlen.saturating_sub(b.caplen);
                    let p = packet(
                        &mut self.tally,
                        self.n,
                        Some(ns),
                        (self.link, self.big),
                        b.data,
                        cut,
                    );
                    (used, p)
                }
                Ok((used, PcapBlockOwned::NG(_))) => (used, None),
                Err(PcapError::Eof) => return Ok(None),
                Err(PcapError::Incomplete(_)) => {
                    let mut cap = self.cap;
                    let r = self.more(&mut cap, false);
                    self.cap = cap;
                    r?;
                    continue;
                }
                Err(PcapError::BufferTooSmall) => {
                    let mut cap = self.cap;
                    let r = self.more(&mut cap, true);
                    self.cap = cap;
                    r?;
                    continue;
                }
                Err(PcapError::UnexpectedEof) => return Err(self.truncated()),
                // pcap-parser's error would print the buffer: not shown.
                Err(_) => {
                    let why = format!("pcap record at byte {} is corrupt", self.rd.consumed());
                    return Err(self.damage(&why));
                }
            };
            self.rd.consume(used);
            if packet.is_some() {
                return Ok(packet);
            }
        }
        Ok(None)
    }

    /// The file ends inside a record.
    fn truncated(&mut self) -> Stop {
        let (n, at) = (self.n, self.rd.consumed());
        let left = self.rd.data().len();
        let what = match self.claim() {
            Some((_, claim)) => format!(
                "pcap truncated after {n} packets ({claim}, {} left)",
                left.saturating_sub(self.record_header)
            ),
            None => format!(
                "pcap truncated after {n} packets (a record header at byte {at} is cut short)"
            ),
        };
        Stop::Damage(Stopped {
            byte: at as u64,
            read: n,
            what,
        })
    }
}

impl Refill for Pcap<'_> {
    fn reader(&mut self) -> &mut dyn PcapReaderIterator {
        &mut self.rd
    }
    fn io_error(&self) -> Option<io::Error> {
        self.error.borrow_mut().take()
    }
    fn read(&self) -> u64 {
        self.n
    }
    fn claim(&mut self) -> Option<(usize, String)> {
        let d = self.rd.data();
        let caplen: [u8; 4] = d.get(8..12)?.try_into().ok()?;
        let caplen = if self.big {
            u32::from_be_bytes(caplen)
        } else {
            u32::from_le_bytes(caplen)
        };
        let what = format!(
            "packet {} at byte {} claims {caplen} bytes",
            self.n + 1,
            self.rd.consumed()
        );
        Some((self.record_header + caplen as usize, what))
    }
}

/// One pcapng interface: its link type, and how to turn its timestamps
/// into nanoseconds.
#[derive(Clone, Copy)]
struct Iface {
    link: u32,
    /// Timestamp units per second (`if_tsresol`; µs by default), or `None`
    /// when that does not fit in 128 bits (10^39 and beyond).
    units: Option<u128>,
    /// Seconds added to every timestamp (`if_tsoffset`).
    offset: i64,
}

/// A pcapng file.
struct Ng<'a> {
    rd: PcapNGReader<Source<'a>>,
    error: Rc<RefCell<Option<io::Error>>>,
    cap: usize,
    /// The current section's byte order.
    big: bool,
    /// The current section's interfaces.
    ifaces: Vec<Iface>,
    /// Link types seen, each once, for the format line.
    links: Vec<String>,
    /// Packet blocks read.
    n: u64,
    tally: Tally,
    done: bool,
}

impl<'a> Ng<'a> {
    fn open(input: Box<dyn Read + 'a>) -> Result<Ng<'a>, Stop> {
        let (src, error) = source(input);
        let rd = match PcapNGReader::new(BUFFER, src) {
            Ok(rd) => rd,
            Err(PcapError::ReadError) => {
                return Err(read_failed_at_start(&error));
            }
            Err(PcapError::Incomplete(_)) => {
                return Err(Stop::Damage(Stopped {
                    byte: 0,
                    read: 0,
                    what: "pcapng truncated in its section header: no packets".into(),
                }));
            }
            Err(_) => {
                return Err(Stop::Damage(Stopped {
                    byte: 0,
                    read: 0,
                    what: "pcapng section header at byte 0 is corrupt: no packets".into(),
                }));
            }
        };
        Ok(Ng {
            rd,
            error,
            cap: BUFFER,
            big: false,
            ifaces: Vec::new(),
            links: Vec::new(),
            n: 0,
            tally: Tally::new(Unit::Packet),
            done: false,
        })
    }

    fn format(&self) -> String {
        format!("pcapng (link type {})", self.links.join(", "))
    }

    fn next_packet(&mut self) -> Result<Option<Packet>, Stop> {
        while !self.done {
            let (used, packet) = match self.rd.next() {
                Ok((used, PcapBlockOwned::NG(b))) => {
                    let p = match b {
                        Block::SectionHeader(shb) => {
                            self.big = shb.big_endian();
                            self.ifaces.clear();
                            None
                        }
                        Block::InterfaceDescription(idb) => {
                            let link = (idb.linktype.0 as u32) & 0xffff;
                            let offset = idb
                                .options
                                .iter()
                                .find(|o| o.code == OptionCode::IfTsoffset)
                                .and_then(|o| o.value().get(..8)?.try_into().ok())
                                .map_or(0, |v: [u8; 8]| {
                                    if self.big {
                                        i64::from_be_bytes(v)
                                    } else {
                                        i64::from_le_bytes(v)
                                    }
                                });
                            let name = link_name(link);
                            if !self.links.contains(&name) && self.links.len() < 16 {
                                self.links.push(name);
                            }
                            if self.ifaces.len() < MAX_INTERFACES {
                                self.ifaces.push(Iface {
                                    link,
                                    units: units_per_second(idb.if_tsresol),
                                    offset,
                                });
                            }
                            None
                        }
                        Block::EnhancedPacket(epb) => {
                            self.n += 1;
                            let ts = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                            let cut = epb.origlen.saturating_sub(epb.caplen);
                            let at = (epb.if_id as usize, ts);
                            stamped(
                                &mut self.tally,
                                (&self.ifaces, self.big),
                                self.n,
                                at,
                                epb.packet_data(),
                                cut,
                            )
                        }
                        Block::SimplePacket(spb) => {
                            self.n += 1;
                            match self.ifaces.first() {
                                Some(i) => {
                                    let data = spb.packet_data();
                                    let cut = (spb.origlen as usize).saturating_sub(data.len());
                                    // No timestamp in a simple packet block.
                                    packet(
                                        &mut self.tally,
                                        self.n,
                                        Some(0),
                                        (i.link, self.big),
                                        data,
                                        cut as u32,
                                    )
                                }
                                None => {
                                    self.tally.skip(self.n, "no interface described");
                                    None
                                }
                            }
                        }
                        // The obsolete Packet Block (type 2), which older
                        // tools still write: like an enhanced packet block
                        // with a 16-bit interface id.
                        Block::Unknown(ub) if section_u32(self.big, ub.block_type) == 2 => {
                            self.n += 1;
                            obsolete_packet(
                                &mut self.tally,
                                &self.ifaces,
                                self.n,
                                self.big,
                                ub.data,
                            )
                        }
                        _ => None,
                    };
                    (used, p)
                }
                Ok((used, _)) => (used, None),
                Err(PcapError::Eof) => return Ok(None),
                Err(PcapError::Incomplete(_)) => {
                    let mut cap = self.cap;
                    let r = self.more(&mut cap, false);
                    self.cap = cap;
                    r?;
                    continue;
                }
                Err(PcapError::BufferTooSmall) => {
                    let mut cap = self.cap;
                    let r = self.more(&mut cap, true);
                    self.cap = cap;
                    r?;
                    continue;
                }
                Err(PcapError::UnexpectedEof) => {
                    let at = self.rd.consumed();
                    let what = match self.claim() {
                        Some((len, _)) => format!(
                            "pcapng truncated after {} packets (the block at byte {at}, of {len} \
                             bytes, is cut short)",
                            self.n
                        ),
                        None => format!(
                            "pcapng truncated after {} packets (a block header at byte {at} is \
                             cut short)",
                            self.n
                        ),
                    };
                    return Err(Stop::Damage(Stopped {
                        byte: at as u64,
                        read: self.n,
                        what,
                    }));
                }
                Err(_) => {
                    let at = self.rd.consumed();
                    let what = match self.claim() {
                        Some((len, _)) if len < 12 || len % 4 != 0 => {
                            format!("pcapng block at byte {at} has a bad length {len}")
                        }
                        _ => format!("pcapng block at byte {at} is corrupt"),
                    };
                    return Err(self.damage(&what));
                }
            };
            self.rd.consume(used);
            if packet.is_some() {
                return Ok(packet);
            }
        }
        Ok(None)
    }
}

/// A number as the section's byte order reads it (`pcap-parser` reads
/// an unknown block's type as little-endian).
fn section_u32(big: bool, le: u32) -> u32 {
    if big { le.swap_bytes() } else { le }
}

/// A packet with a 64-bit timestamp `ts` on interface `iface`.
fn stamped(
    tally: &mut Tally,
    (ifaces, big): (&[Iface], bool),
    n: u64,
    (iface, ts): (usize, u64),
    data: &[u8],
    cut: u32,
) -> Option<Packet> {
    let Some(&i) = ifaces.get(iface) else {
        let why = format!("names interface {iface}, which was not described");
        tally.skip(n, &why);
        return None;
    };
    let ns = i.units.and_then(|units| {
        // ts / units seconds, exact in 128 bits, then the offset.
        let ns = u128::from(ts) * 1_000_000_000 / units;
        let ns = i128::try_from(ns).ok()? + i128::from(i.offset) * 1_000_000_000;
        u64::try_from(ns).ok()
    });
    if ns.is_none() {
        tally.caveat(
            n,
            "kept without a time (the timestamp, scaled by if_tsresol and if_tsoffset, \
             is outside 64-bit nanoseconds since 1970)",
        );
    }
    packet(tally, n, ns, (i.link, big), data, cut)
}

/// The obsolete Packet Block's body: interface (16 bits), drops (16),
/// timestamp (2 x 32), captured and original lengths, data.
fn obsolete_packet(
    tally: &mut Tally,
    ifaces: &[Iface],
    n: u64,
    big: bool,
    body: &[u8],
) -> Option<Packet> {
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = body.get(at..at + 4)?.try_into().ok()?;
        Some(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let iface = body.get(..2).map(|b| {
        let b = [b[0], b[1]];
        usize::from(if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    });
    let (Some(iface), Some(hi), Some(lo), Some(caplen), Some(orig)) =
        (iface, u32_at(4), u32_at(8), u32_at(12), u32_at(16))
    else {
        tally.skip(n, "packet block too short");
        return None;
    };
    let Some(data) = body.get(20..20usize.saturating_add(caplen as usize)) else {
        tally.skip(n, "packet data runs past its block");
        return None;
    };
    let ts = (u64::from(hi) << 32) | u64::from(lo);
    stamped(
        tally,
        (ifaces, big),
        n,
        (iface, ts),
        data,
        orig.saturating_sub(caplen),
    )
}

impl Refill for Ng<'_> {
    fn reader(&mut self) -> &mut dyn PcapReaderIterator {
        &mut self.rd
    }
    fn io_error(&self) -> Option<io::Error> {
        self.error.borrow_mut().take()
    }
    fn read(&self) -> u64 {
        self.n
    }
    fn claim(&mut self) -> Option<(usize, String)> {
        let d = self.rd.data();
        let len: [u8; 4] = d.get(4..8)?.try_into().ok()?;
        // A section header sets its own byte order.
        let big = if d.get(..4) == Some(&PCAPNG_MAGIC[..]) {
            d.get(8..12) == Some(&[0x1a, 0x2b, 0x3c, 0x4d][..])
        } else {
            self.big
        };
        let len = if big {
            u32::from_be_bytes(len)
        } else {
            u32::from_le_bytes(len)
        };
        let what = format!(
            "the block at byte {} claims {len} bytes",
            self.rd.consumed()
        );
        Some((len as usize, what))
    }
}

/// `if_tsresol` as units per second: 10^v, or 2^v when the top bit is
/// set. `pcap-parser`'s own `build_ts_resolution` refuses every power of
/// two, and its `build_ts` cuts seconds to 32 bits, so they are not used.
fn units_per_second(v: u8) -> Option<u128> {
    if v & 0x80 != 0 {
        1u128.checked_shl(u32::from(v & 0x7f))
    } else {
        10u128.checked_pow(u32::from(v))
    }
    .filter(|&u| u > 0)
}

/// Decodes one captured frame of link type `link`, in a file (or pcapng
/// section) of byte order `big`, into a segment, or counts why not.
fn packet(
    tally: &mut Tally,
    n: u64,
    ns: Option<u64>,
    (link, big): (u32, bool),
    data: &[u8],
    cut: u32,
) -> Option<Packet> {
    match decode_frame(link, big, data, cut) {
        Ok(mut p) => {
            p.index = n as usize;
            p.time_ns = ns;
            // The text is made once per connection, when it is reported
            // (explain's TimeStyle), not for every packet.
            Some(p)
        }
        Err(why) => {
            tally.skip(n, &why);
            None
        }
    }
}
