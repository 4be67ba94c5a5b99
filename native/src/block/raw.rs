//! A raw disk image in a sparse file.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{check_range, BlockDevice};

/// Bytes of zeros written at a time when a hole cannot be punched.
const ZERO_CHUNK_BYTES: usize = 1 << 20;

pub struct RawFile {
    file: File,
    size: u64,
}

impl RawFile {
    /// Creates (or truncates) a sparse raw file of `size` bytes.
    pub fn create(path: &Path, size: u64) -> io::Result<RawFile> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
        file.set_len(size)?;
        Ok(RawFile { file, size })
    }

    /// Opens an existing raw file; its length is the device size.
    pub fn open(path: &Path, writable: bool) -> io::Result<RawFile> {
        let file = OpenOptions::new().read(true).write(writable).open(path)?;
        let size = file.metadata()?.len();
        Ok(RawFile { file, size })
    }
}

impl BlockDevice for RawFile {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(self.size, offset, buf.len() as u64)?;
        self.file.read_exact_at(buf, offset)
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        check_range(self.size, offset, buf.len() as u64)?;
        self.file.write_all_at(buf, offset)
    }

    fn write_zeroes(&mut self, offset: u64, length: u64) -> io::Result<()> {
        check_range(self.size, offset, length)?;
        let zeros = vec![0u8; ZERO_CHUNK_BYTES.min(length as usize)];
        let mut done = 0u64;
        while done < length {
            let step = (length - done).min(zeros.len() as u64) as usize;
            self.file.write_all_at(&zeros[..step], offset + done)?;
            done += step as u64;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.sync_all()
    }
}
