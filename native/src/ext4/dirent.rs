//! Linear directory entries and the checksum tail of a directory block
//! (kernel `directory.rst`, "Linear (Classic) Directories").

use super::crc32c;
use super::error::{Ext4Error, Result};
use super::le::*;

// Field offsets of `ext4_dir_entry_2`.
pub const INODE: usize = 0x0;
pub const REC_LEN: usize = 0x4;
pub const NAME_LEN: usize = 0x6;
pub const FILE_TYPE: usize = 0x7;
pub const NAME: usize = 0x8;
pub const HEADER_SIZE: usize = 8;
pub const MAX_NAME_LEN: usize = 255;

/// The checksum tail: a 12-byte fake entry at the end of each leaf block.
pub const TAIL_SIZE: usize = 12;
pub const TAIL_FILE_TYPE: u8 = 0xDE;
pub const TAIL_CHECKSUM: usize = 0x8;

// File type codes stored in `file_type`.
pub const FT_UNKNOWN: u8 = 0;
pub const FT_REG_FILE: u8 = 1;
pub const FT_DIR: u8 = 2;
pub const FT_CHRDEV: u8 = 3;
pub const FT_BLKDEV: u8 = 4;
pub const FT_FIFO: u8 = 5;
pub const FT_SOCK: u8 = 6;
pub const FT_SYMLINK: u8 = 7;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// 0 marks an unused record.
    pub inode: u32,
    /// Bytes from this entry to the next, a multiple of 4.
    pub rec_len: u16,
    pub file_type: u8,
    pub name: Vec<u8>,
}

/// Bytes an entry with a name of `name_len` bytes needs, rounded up to 4.
pub fn record_size(name_len: usize) -> usize {
    (HEADER_SIZE + name_len + 3) & !3
}

impl DirEntry {
    /// Decodes the entry at `offset` of `block`; `location` is the block's
    /// byte offset on the device, for errors.
    pub fn decode(block: &[u8], offset: usize, location: u64) -> Result<DirEntry> {
        let corrupt = |what: String| Ext4Error::corrupt(what, Some(location + offset as u64));
        if offset + HEADER_SIZE > block.len() {
            return Err(corrupt(format!("directory entry at {offset} runs past the block")));
        }
        let rec_len = u16_at(block, offset + REC_LEN);
        let name_len = block[offset + NAME_LEN] as usize;
        if rec_len % 4 != 0 || (rec_len as usize) < record_size(name_len) || offset + rec_len as usize > block.len() {
            return Err(corrupt(format!("directory entry has rec_len {rec_len} for a {name_len}-byte name")));
        }
        Ok(DirEntry {
            inode: u32_at(block, offset + INODE),
            rec_len,
            file_type: block[offset + FILE_TYPE],
            name: block[offset + NAME..offset + NAME + name_len].to_vec(),
        })
    }

    /// Encodes the entry at `offset`; its record spans `rec_len` bytes.
    pub fn encode(&self, block: &mut [u8], offset: usize) {
        put_u32(block, offset + INODE, self.inode);
        put_u16(block, offset + REC_LEN, self.rec_len);
        block[offset + NAME_LEN] = self.name.len() as u8;
        block[offset + FILE_TYPE] = self.file_type;
        block[offset + NAME..offset + NAME + self.name.len()].copy_from_slice(&self.name);
        let padding_end = offset + record_size(self.name.len());
        block[offset + NAME + self.name.len()..padding_end].fill(0);
    }

    pub fn is_tail(&self) -> bool {
        self.inode == 0 && self.rec_len as usize == TAIL_SIZE && self.name.is_empty() && self.file_type == TAIL_FILE_TYPE
    }
}

/// Writes the checksum tail's fixed fields into the last 12 bytes.
pub fn init_tail(block: &mut [u8]) {
    let at = block.len() - TAIL_SIZE;
    block[at..].fill(0);
    put_u16(block, at + REC_LEN, TAIL_SIZE as u16);
    block[at + FILE_TYPE] = TAIL_FILE_TYPE;
}

/// Returns whether the block ends with a checksum tail.
pub fn has_tail(block: &[u8]) -> bool {
    let at = block.len() - TAIL_SIZE;
    u32_at(block, at + INODE) == 0
        && u16_at(block, at + REC_LEN) as usize == TAIL_SIZE
        && block[at + NAME_LEN] == 0
        && block[at + FILE_TYPE] == TAIL_FILE_TYPE
}

/// Computes a leaf block checksum: crc32c from the directory inode's seed
/// over everything before the tail.
pub fn compute_checksum(block: &[u8], inode_seed: u32) -> u32 {
    crc32c::update(inode_seed, &block[..block.len() - TAIL_SIZE])
}

pub fn set_checksum(block: &mut [u8], inode_seed: u32) {
    let checksum = compute_checksum(block, inode_seed);
    let at = block.len() - TAIL_SIZE + TAIL_CHECKSUM;
    put_u32(block, at, checksum);
}

pub fn verify_checksum(block: &[u8], inode_seed: u32) -> bool {
    compute_checksum(block, inode_seed) == u32_at(block, block.len() - TAIL_SIZE + TAIL_CHECKSUM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_name_length() {
        for name_len in 1..=MAX_NAME_LEN {
            let mut block = vec![0xFFu8; 4096];
            let entry = DirEntry {
                inode: u32::MAX,
                rec_len: record_size(name_len) as u16,
                file_type: FT_SYMLINK,
                name: vec![b'x'; name_len],
            };
            entry.encode(&mut block, 4);
            assert_eq!(DirEntry::decode(&block, 4, 0).unwrap(), entry);
        }
    }

    #[test]
    fn tail_round_trip() {
        let mut block = vec![0u8; 4096];
        init_tail(&mut block);
        set_checksum(&mut block, 42);
        assert!(has_tail(&block));
        assert!(verify_checksum(&block, 42));
        let tail = DirEntry::decode(&block, 4096 - TAIL_SIZE, 0).unwrap();
        assert!(tail.is_tail());
    }

    #[test]
    fn offsets_and_sizes() {
        assert_eq!(NAME, HEADER_SIZE);
        assert_eq!(record_size(1), 12);
        assert_eq!(record_size(4), 12);
        assert_eq!(record_size(5), 16);
        assert_eq!(record_size(255), 264);
        assert_eq!(TAIL_CHECKSUM + 4, TAIL_SIZE);
    }

    #[test]
    fn short_rec_len_is_corrupt() {
        let mut block = vec![0u8; 4096];
        DirEntry { inode: 2, rec_len: 8, file_type: 2, name: b"abcd".to_vec() }.encode(&mut block, 0);
        assert!(DirEntry::decode(&block, 0, 0).is_err());
    }
}
