//! The jbd2 journal superblock (kernel `journal.rst`). Unlike the rest of
//! ext4, jbd2 fields are big-endian.
//!
//! The writer creates an empty journal: only this block is written, and
//! `s_start` = 0 marks the journal clean, so the kernel replays nothing.

use super::error::{Ext4Error, Result};

pub const MAGIC: u32 = 0xC03B_3998;
/// `h_blocktype` of a version 2 superblock.
pub const BLOCKTYPE_SUPERBLOCK_V2: u32 = 4;
pub const SUPERBLOCK_SIZE: usize = 1024;

// Field offsets.
pub const H_MAGIC: usize = 0x0;
pub const H_BLOCKTYPE: usize = 0x4;
pub const H_SEQUENCE: usize = 0x8;
pub const S_BLOCKSIZE: usize = 0xC;
pub const S_MAXLEN: usize = 0x10;
pub const S_FIRST: usize = 0x14;
pub const S_SEQUENCE: usize = 0x18;
pub const S_START: usize = 0x1C;
pub const S_ERRNO: usize = 0x20;
pub const S_FEATURE_COMPAT: usize = 0x24;
pub const S_FEATURE_INCOMPAT: usize = 0x28;
pub const S_FEATURE_RO_COMPAT: usize = 0x2C;
pub const S_UUID: usize = 0x30;
pub const S_NR_USERS: usize = 0x40;
pub const S_USERS: usize = 0x100;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalSuperblock {
    pub block_size: u32,
    /// Journal length in blocks, this superblock included.
    pub max_len: u32,
    /// First block of the log area.
    pub first: u32,
    /// Sequence number of the first transaction expected.
    pub sequence: u32,
    /// First block of the log to replay; 0 when the journal is clean.
    pub start: u32,
    pub uuid: [u8; 16],
    pub nr_users: u32,
}

fn get(bytes: &[u8], offset: usize) -> u32 {
    u32::from_be_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"))
}

fn put(bytes: &mut [u8], offset: usize, value: u32) {
    bytes[offset..offset + 4].copy_from_slice(&value.to_be_bytes());
}

impl JournalSuperblock {
    /// Creates the superblock of an empty journal of `max_len` blocks on filesystem `uuid`.
    pub fn new(block_size: u32, max_len: u32, uuid: [u8; 16]) -> Self {
        JournalSuperblock { block_size, max_len, first: 1, sequence: 1, start: 0, uuid, nr_users: 1 }
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if get(bytes, H_MAGIC) != MAGIC || get(bytes, H_BLOCKTYPE) != BLOCKTYPE_SUPERBLOCK_V2 {
            return Err(Ext4Error::corrupt("journal superblock has a bad magic or block type", None));
        }
        Ok(JournalSuperblock {
            block_size: get(bytes, S_BLOCKSIZE),
            max_len: get(bytes, S_MAXLEN),
            first: get(bytes, S_FIRST),
            sequence: get(bytes, S_SEQUENCE),
            start: get(bytes, S_START),
            uuid: bytes[S_UUID..S_UUID + 16].try_into().expect("16 bytes"),
            nr_users: get(bytes, S_NR_USERS),
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![0u8; SUPERBLOCK_SIZE];
        put(&mut bytes, H_MAGIC, MAGIC);
        put(&mut bytes, H_BLOCKTYPE, BLOCKTYPE_SUPERBLOCK_V2);
        put(&mut bytes, S_BLOCKSIZE, self.block_size);
        put(&mut bytes, S_MAXLEN, self.max_len);
        put(&mut bytes, S_FIRST, self.first);
        put(&mut bytes, S_SEQUENCE, self.sequence);
        put(&mut bytes, S_START, self.start);
        bytes[S_UUID..S_UUID + 16].copy_from_slice(&self.uuid);
        put(&mut bytes, S_NR_USERS, self.nr_users);
        bytes
    }
}

/// Journal length in blocks for a filesystem of `blocks` blocks, following
/// the size table of e2fsprogs 1.47 (`ext2fs_default_journal_size`).
pub fn default_journal_blocks(blocks: u64) -> u32 {
    match blocks {
        0..=2047 => 0,
        2048..=32767 => 1024,
        32768..=262143 => 4096,
        262144..=524287 => 8192,
        524288..=4194303 => 16384,
        4194304..=8388607 => 32768,
        8388608..=16777215 => 65536,
        16777216..=33554431 => 131072,
        _ => 262144,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut sb = JournalSuperblock::new(4096, 131072, [9; 16]);
        sb.start = u32::MAX;
        assert_eq!(JournalSuperblock::decode(&sb.encode()).unwrap(), sb);
    }

    #[test]
    fn offsets_and_size() {
        assert_eq!(S_UUID + 16, S_NR_USERS);
        assert_eq!(S_USERS + 16 * 48, SUPERBLOCK_SIZE);
        assert_eq!(JournalSuperblock::new(4096, 1024, [0; 16]).encode()[3], 0x98);
    }

    #[test]
    fn default_sizes() {
        assert_eq!(default_journal_blocks(16384), 1024);
        assert_eq!(default_journal_blocks(16 << 20), 131072);
    }
}
