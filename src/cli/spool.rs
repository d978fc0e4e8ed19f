//! Output that must wait for something printed before it (explain's
//! summary comes first but is known last): held in memory up to
//! [`IN_MEMORY`] bytes, then in an unlinked temporary file, so a report of
//! a million connections costs disk, not memory.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};

/// Bytes kept in memory before the spool moves to a temporary file.
pub const IN_MEMORY: usize = 8 * 1024 * 1024;

#[derive(Default)]
pub struct Spool {
    mem: Vec<u8>,
    file: Option<File>,
}

impl Spool {
    pub fn new() -> Spool {
        Spool::default()
    }

    /// Writes everything spooled to `out`, in order.
    pub fn copy_to(&mut self, out: &mut impl Write) -> io::Result<()> {
        if let Some(f) = &mut self.file {
            f.write_all(&self.mem)?;
            self.mem.clear();
            f.seek(SeekFrom::Start(0))?;
            io::copy(f, out)?;
            Ok(())
        } else {
            out.write_all(&self.mem)
        }
    }
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.mem.extend_from_slice(buf);
        if self.mem.len() > IN_MEMORY {
            let f = match &mut self.file {
                Some(f) => f,
                None => self.file.insert(tempfile::tempfile()?),
            };
            f.write_all(&self.mem)?;
            self.mem.clear();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_goes_in_comes_out_in_order_past_the_memory_bound() {
        let mut s = Spool::new();
        let chunk: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
        for _ in 0..10 {
            s.write_all(&chunk).unwrap();
        }
        assert!(s.file.is_some(), "10 MiB went to the file");
        let mut out = Vec::new();
        s.copy_to(&mut out).unwrap();
        assert_eq!(out.len(), 10 << 20);
        assert!(out.chunks(1 << 20).all(|c| c == chunk));
    }
}
