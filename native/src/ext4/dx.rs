//! Hash tree (htree) index blocks: the root in a directory's block 0 and
//! interior nodes (kernel `directory.rst`, "Hash Tree Directories").
//!
//! Both hide their index inside directory entries that old code reads as
//! empty space, and both end with an 8-byte `dx_tail` holding a crc32c.

use super::crc32c;
use super::dirent::{DirEntry, FT_DIR};
use super::error::{Ext4Error, Result};
use super::le::*;

// Root block layout: "." at 0, ".." at 12, then `dx_root_info`.
pub const ROOT_DOTDOT: usize = 0xC;
pub const ROOT_INFO: usize = 0x18;
pub const INFO_RESERVED_ZERO: usize = 0x18;
pub const INFO_HASH_VERSION: usize = 0x1C;
pub const INFO_LENGTH: usize = 0x1D;
pub const INFO_INDIRECT_LEVELS: usize = 0x1E;
pub const INFO_UNUSED_FLAGS: usize = 0x1F;
/// `dx_countlimit` of the root: limit and count overlay entry 0's hash.
pub const ROOT_COUNT_LIMIT: usize = 0x20;
/// `dx_countlimit` of an interior node, after its 8-byte empty entry.
pub const NODE_COUNT_LIMIT: usize = 0x8;
// Offsets inside `dx_countlimit` and `dx_entry`.
pub const LIMIT: usize = 0x0;
pub const COUNT: usize = 0x2;
pub const ENTRY_HASH: usize = 0x0;
pub const ENTRY_BLOCK: usize = 0x4;
pub const ENTRY_SIZE: usize = 8;
pub const TAIL_SIZE: usize = 8;
pub const TAIL_CHECKSUM: usize = 0x4;
/// `info_length`: the size of `dx_root_info`.
pub const INFO_LENGTH_VALUE: u8 = 8;
/// Deepest index without `large_dir`: the root plus one node level.
pub const MAX_INDIRECT_LEVELS: u8 = 1;

/// One index entry: names hashing at or above `hash` live under `block`
/// (a logical block of the directory). Entry 0's hash is implicitly 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DxEntry {
    pub hash: u32,
    pub block: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DxRoot {
    pub dot_inode: u32,
    pub dotdot_inode: u32,
    pub hash_version: u8,
    /// Node levels below the root: 0 means the root points at leaves.
    pub indirect_levels: u8,
    pub entries: Vec<DxEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DxNode {
    pub entries: Vec<DxEntry>,
}

/// Entry capacity of a root block, leaving room for the tail.
pub fn root_limit(block_size: usize) -> usize {
    (block_size - ROOT_COUNT_LIMIT) / ENTRY_SIZE - 1
}

/// Entry capacity of an interior node block, leaving room for the tail.
pub fn node_limit(block_size: usize) -> usize {
    (block_size - NODE_COUNT_LIMIT) / ENTRY_SIZE - 1
}

fn decode_entries(block: &[u8], at: usize, location: u64) -> Result<Vec<DxEntry>> {
    let limit = u16_at(block, at + LIMIT) as usize;
    let count = u16_at(block, at + COUNT) as usize;
    if count == 0 || count > limit || at + limit * ENTRY_SIZE > block.len() {
        return Err(Ext4Error::corrupt(format!("htree index has count {count} and limit {limit}"), Some(location + at as u64)));
    }
    Ok((0..count)
        .map(|i| {
            let entry = at + i * ENTRY_SIZE;
            let hash = if i == 0 { 0 } else { u32_at(block, entry + ENTRY_HASH) };
            DxEntry { hash, block: u32_at(block, entry + ENTRY_BLOCK) }
        })
        .collect())
}

fn encode_entries(block: &mut [u8], at: usize, limit: usize, entries: &[DxEntry]) {
    for (i, entry) in entries.iter().enumerate() {
        let offset = at + i * ENTRY_SIZE;
        if i > 0 {
            put_u32(block, offset + ENTRY_HASH, entry.hash);
        }
        put_u32(block, offset + ENTRY_BLOCK, entry.block);
    }
    put_u16(block, at + LIMIT, limit as u16);
    put_u16(block, at + COUNT, entries.len() as u16);
}

impl DxRoot {
    pub fn decode(block: &[u8], location: u64) -> Result<DxRoot> {
        let dot = DirEntry::decode(block, 0, location)?;
        let dotdot = DirEntry::decode(block, ROOT_DOTDOT, location)?;
        if dot.name != b"." || dotdot.name != b".." || block[INFO_LENGTH] != INFO_LENGTH_VALUE {
            return Err(Ext4Error::corrupt("htree root block does not start with . and .. and dx_root_info", Some(location)));
        }
        let indirect_levels = block[INFO_INDIRECT_LEVELS];
        if indirect_levels > MAX_INDIRECT_LEVELS {
            return Err(Ext4Error::Unsupported { message: format!("htree with {indirect_levels} indirect levels needs large_dir") });
        }
        Ok(DxRoot {
            dot_inode: dot.inode,
            dotdot_inode: dotdot.inode,
            hash_version: block[INFO_HASH_VERSION],
            indirect_levels,
            entries: decode_entries(block, ROOT_COUNT_LIMIT, location)?,
        })
    }

    /// Encodes the root into a whole block; the tail checksum is set by
    /// `set_checksum`.
    pub fn encode(&self, block: &mut [u8]) {
        block.fill(0);
        let size = block.len();
        DirEntry { inode: self.dot_inode, rec_len: 12, file_type: FT_DIR, name: b".".to_vec() }.encode(block, 0);
        let dotdot_len = (size - ROOT_DOTDOT) as u16;
        DirEntry { inode: self.dotdot_inode, rec_len: dotdot_len, file_type: FT_DIR, name: b"..".to_vec() }
            .encode(block, ROOT_DOTDOT);
        block[INFO_HASH_VERSION] = self.hash_version;
        block[INFO_LENGTH] = INFO_LENGTH_VALUE;
        block[INFO_INDIRECT_LEVELS] = self.indirect_levels;
        encode_entries(block, ROOT_COUNT_LIMIT, root_limit(size), &self.entries);
    }
}

impl DxNode {
    pub fn decode(block: &[u8], location: u64) -> Result<DxNode> {
        Ok(DxNode { entries: decode_entries(block, NODE_COUNT_LIMIT, location)? })
    }

    pub fn encode(&self, block: &mut [u8]) {
        block.fill(0);
        let size = block.len();
        // An empty entry spanning the block hides the index from linear readers.
        put_u16(block, super::dirent::REC_LEN, size as u16);
        encode_entries(block, NODE_COUNT_LIMIT, node_limit(size), &self.entries);
    }
}

/// Computes an index block checksum: crc32c from the directory's inode
/// seed over the bytes up to the last used entry, then the tail's reserved
/// word and a zero checksum. `count_offset` is the `dx_countlimit` offset.
pub fn compute_checksum(block: &[u8], count_offset: usize, inode_seed: u32) -> u32 {
    let limit = u16_at(block, count_offset + LIMIT) as usize;
    let count = u16_at(block, count_offset + COUNT) as usize;
    let tail = count_offset + limit * ENTRY_SIZE;
    let mut crc = crc32c::update(inode_seed, &block[..count_offset + count * ENTRY_SIZE]);
    crc = crc32c::update(crc, &block[tail..tail + TAIL_CHECKSUM]);
    crc32c::update(crc, &[0; 4])
}

pub fn set_checksum(block: &mut [u8], count_offset: usize, inode_seed: u32) {
    let checksum = compute_checksum(block, count_offset, inode_seed);
    let limit = u16_at(block, count_offset + LIMIT) as usize;
    put_u32(block, count_offset + limit * ENTRY_SIZE + TAIL_CHECKSUM, checksum);
}

pub fn verify_checksum(block: &[u8], count_offset: usize, inode_seed: u32) -> bool {
    let limit = u16_at(block, count_offset + LIMIT) as usize;
    let stored = u32_at(block, count_offset + limit * ENTRY_SIZE + TAIL_CHECKSUM);
    compute_checksum(block, count_offset, inode_seed) == stored
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(count: usize) -> Vec<DxEntry> {
        (0..count).map(|i| DxEntry { hash: if i == 0 { 0 } else { (i as u32) << 20 }, block: i as u32 + 1 }).collect()
    }

    #[test]
    fn root_round_trip() {
        for count in [1, 2, root_limit(4096)] {
            let root = DxRoot { dot_inode: 2, dotdot_inode: 2, hash_version: 1, indirect_levels: 1, entries: entries(count) };
            let mut block = vec![0u8; 4096];
            root.encode(&mut block);
            set_checksum(&mut block, ROOT_COUNT_LIMIT, 7);
            assert_eq!(DxRoot::decode(&block, 0).unwrap(), root);
            assert!(verify_checksum(&block, ROOT_COUNT_LIMIT, 7));
        }
    }

    #[test]
    fn node_round_trip() {
        for count in [1, node_limit(4096)] {
            let node = DxNode { entries: entries(count) };
            let mut block = vec![0u8; 4096];
            node.encode(&mut block);
            set_checksum(&mut block, NODE_COUNT_LIMIT, 9);
            assert_eq!(DxNode::decode(&block, 0).unwrap(), node);
            assert!(verify_checksum(&block, NODE_COUNT_LIMIT, 9));
        }
    }

    #[test]
    fn offsets_and_limits() {
        assert_eq!(ROOT_INFO + INFO_LENGTH_VALUE as usize, ROOT_COUNT_LIMIT);
        assert_eq!(INFO_UNUSED_FLAGS + 1, ROOT_COUNT_LIMIT);
        assert_eq!(root_limit(4096), 507);
        assert_eq!(node_limit(4096), 510);
    }
}
