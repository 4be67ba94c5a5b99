//! The block device interface between the ext4 writer and its storage.
//!
//! The ext4 writer reads and writes byte ranges of a virtual disk through this
//! trait. A qcow2 chain implements it, and so does a plain raw file for tests
//! and for export.

mod raw;

pub use raw::RawFile;

use std::io;

pub trait BlockDevice {
    /// Virtual size of the device in bytes.
    fn size(&self) -> u64;

    /// Fills `buf` from byte `offset`. Reading past `size()` is an error.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// Writes `buf` at byte `offset`. Writing past `size()` is an error.
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()>;

    /// Makes `length` bytes from `offset` read as zeros. A device may do this
    /// without storing data, such as with qcow2 zero clusters or file holes.
    fn write_zeroes(&mut self, offset: u64, length: u64) -> io::Result<()>;

    /// Makes every completed write durable.
    fn flush(&mut self) -> io::Result<()>;
}

/// Checks that `length` bytes at `offset` lie inside a device of `size` bytes.
pub fn check_range(size: u64, offset: u64, length: u64) -> io::Result<()> {
    match offset.checked_add(length) {
        Some(end) if end <= size => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("range {offset}+{length} is outside the {size}-byte device"),
        )),
    }
}
