//! Streaming a regular file's content into newly allocated blocks.
//!
//! Data bypasses the block cache: each run of non-zero blocks is written
//! straight to the device where it is allocated. Whole blocks of zeros and
//! explicit holes stay unallocated, so the file is sparse there.

use super::error::{Ext4Error, Result};
use super::extent::Extent;
use super::fs::Filesystem;
use super::inode::Inode;
use super::tree::push_extent;

/// Largest number of blocks an extent-mapped file may span: logical block
/// numbers are 32-bit and the kernel caps files at 2^32 - 1 blocks.
pub const MAX_FILE_BLOCKS: u64 = (1 << 32) - 1;

/// A regular file being written; the directory entry is added at finish.
pub(crate) struct FileWriter {
    pub path: Vec<u8>,
    pub ino: u32,
    pub inode: Inode,
    pub extents: Vec<Extent>,
    /// Bytes of the file so far, holes included.
    pub size: u64,
    /// Bytes of the last, partial block; they belong at `size - pending.len()`.
    pub pending: Vec<u8>,
}

fn is_zero(block: &[u8]) -> bool {
    block.chunks_exact(8).all(|word| u64::from_ne_bytes(word.try_into().expect("8 bytes")) == 0)
}

impl Filesystem {
    pub(crate) fn max_file_size(&self) -> u64 {
        MAX_FILE_BLOCKS * self.block_size as u64
    }

    /// Appends `data` to the open file.
    pub(crate) fn writer_append(&mut self, writer: &mut FileWriter, mut data: &[u8]) -> Result<()> {
        let bs = self.block_size;
        self.check_size(writer, writer.size + data.len() as u64)?;
        if !writer.pending.is_empty() {
            let take = (bs - writer.pending.len()).min(data.len());
            writer.pending.extend_from_slice(&data[..take]);
            writer.size += take as u64;
            data = &data[take..];
            if writer.pending.len() < bs {
                return Ok(());
            }
            let block = std::mem::take(&mut writer.pending);
            let logical = (writer.size - bs as u64) / bs as u64;
            self.emit_blocks(writer, logical, &block)?;
        }
        let whole = data.len() / bs * bs;
        if whole > 0 {
            let logical = writer.size / bs as u64;
            self.emit_blocks(writer, logical, &data[..whole])?;
            writer.size += whole as u64;
        }
        writer.pending.extend_from_slice(&data[whole..]);
        writer.size += (data.len() - whole) as u64;
        Ok(())
    }

    /// Appends `length` bytes of hole to the open file.
    pub(crate) fn writer_skip(&mut self, writer: &mut FileWriter, mut length: u64) -> Result<()> {
        let bs = self.block_size as u64;
        self.check_size(writer, writer.size + length)?;
        if !writer.pending.is_empty() {
            let take = (bs - writer.pending.len() as u64).min(length);
            let zeros = vec![0u8; take as usize];
            self.writer_append(writer, &zeros)?;
            length -= take;
        }
        let whole = length / bs * bs;
        writer.size += whole;
        // Pending bytes remain only when the hole ended inside their block,
        // and then `rest` is 0; otherwise they were flushed above.
        let rest = (length - whole) as usize;
        let pending = writer.pending.len() + rest;
        writer.pending.resize(pending, 0);
        writer.size += rest as u64;
        Ok(())
    }

    /// Writes the last partial block, zero-padded.
    pub(crate) fn writer_flush_tail(&mut self, writer: &mut FileWriter) -> Result<()> {
        if writer.pending.is_empty() {
            return Ok(());
        }
        let bs = self.block_size;
        let mut block = std::mem::take(&mut writer.pending);
        let logical = (writer.size - block.len() as u64) / bs as u64;
        block.resize(bs, 0);
        self.emit_blocks(writer, logical, &block)
    }

    fn check_size(&self, writer: &FileWriter, size: u64) -> Result<()> {
        if size > self.max_file_size() {
            return Err(Ext4Error::FileTooLarge { path: String::from_utf8_lossy(&writer.path).into_owned(), size });
        }
        Ok(())
    }

    /// Allocates and writes whole blocks starting at logical block
    /// `logical`, skipping blocks of zeros.
    fn emit_blocks(&mut self, writer: &mut FileWriter, logical: u64, data: &[u8]) -> Result<()> {
        let bs = self.block_size;
        let blocks: Vec<&[u8]> = data.chunks_exact(bs).collect();
        let mut i = 0;
        while i < blocks.len() {
            if is_zero(blocks[i]) {
                i += 1;
                continue;
            }
            let mut end = i + 1;
            while end < blocks.len() && !is_zero(blocks[end]) {
                end += 1;
            }
            while i < end {
                let (start, got) = self.allocate_blocks((end - i) as u64)?;
                let bytes = &data[i * bs..(i + got as usize) * bs];
                self.device.write_at(start * bs as u64, bytes)?;
                push_extent(&mut writer.extents, (logical + i as u64) as u32, start, got);
                i += got as usize;
            }
        }
        Ok(())
    }
}
