//! Extent tree nodes (kernel `ifork.rst`, "Extent Tree").
//!
//! A node is a 12-byte header followed by 12-byte entries: indexes in
//! interior nodes, extents in leaves. The root lives in the inode's 60-byte
//! `i_block` (4 entries); other nodes fill a block and end with a crc32c tail.

use super::crc32c;
use super::error::{Ext4Error, Result};
use super::le::*;

pub const MAGIC: u16 = 0xF30A;
pub const HEADER_SIZE: usize = 12;
pub const ENTRY_SIZE: usize = 12;
pub const TAIL_SIZE: usize = 4;
/// Deepest tree the kernel accepts (`EXT4_MAX_EXTENT_DEPTH`).
pub const MAX_DEPTH: u16 = 5;
/// Longest initialized extent, in blocks.
pub const MAX_LEN: u32 = 32768;

// Header field offsets.
pub const EH_MAGIC: usize = 0x0;
pub const EH_ENTRIES: usize = 0x2;
pub const EH_MAX: usize = 0x4;
pub const EH_DEPTH: usize = 0x6;
pub const EH_GENERATION: usize = 0x8;
// Index field offsets, relative to the entry.
pub const EI_BLOCK: usize = 0x0;
pub const EI_LEAF_LO: usize = 0x4;
pub const EI_LEAF_HI: usize = 0x8;
// Leaf field offsets, relative to the entry.
pub const EE_BLOCK: usize = 0x0;
pub const EE_LEN: usize = 0x4;
pub const EE_START_HI: usize = 0x6;
pub const EE_START_LO: usize = 0x8;

/// A run of `len` blocks of a file, from logical block `logical` onward
/// stored at physical block `physical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    pub logical: u32,
    pub len: u16,
    pub physical: u64,
}

/// An interior entry: the subtree at `child` maps blocks from `logical` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Index {
    pub logical: u32,
    pub child: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entries {
    Leaf(Vec<Extent>),
    Interior(Vec<Index>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Height above the leaves: 0 for a leaf.
    pub depth: u16,
    /// Entry capacity: 4 in the inode, 340 in a 4096-byte block.
    pub max: u16,
    pub entries: Entries,
}

/// Returns how many entries a node of `space` bytes holds.
pub fn capacity(space: usize, in_block: bool) -> u16 {
    let tail = if in_block { TAIL_SIZE } else { 0 };
    ((space - HEADER_SIZE - tail) / ENTRY_SIZE) as u16
}

impl Node {
    pub fn len(&self) -> usize {
        match &self.entries {
            Entries::Leaf(extents) => extents.len(),
            Entries::Interior(indexes) => indexes.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decodes a node; `location` names the byte offset for errors.
    pub fn decode(bytes: &[u8], location: u64) -> Result<Node> {
        let magic = u16_at(bytes, EH_MAGIC);
        if magic != MAGIC {
            return Err(Ext4Error::corrupt(format!("extent header magic is {magic:#06x}, expected {MAGIC:#06x}"), Some(location)));
        }
        let count = u16_at(bytes, EH_ENTRIES) as usize;
        let max = u16_at(bytes, EH_MAX);
        let depth = u16_at(bytes, EH_DEPTH);
        if count > max as usize || HEADER_SIZE + max as usize * ENTRY_SIZE > bytes.len() || depth > MAX_DEPTH {
            return Err(Ext4Error::corrupt(
                format!("extent header has {count} entries, capacity {max} and depth {depth}, which do not fit"),
                Some(location),
            ));
        }
        let entry = |index: usize| &bytes[HEADER_SIZE + index * ENTRY_SIZE..HEADER_SIZE + (index + 1) * ENTRY_SIZE];
        let entries = if depth == 0 {
            Entries::Leaf((0..count).map(|i| decode_extent(entry(i))).collect())
        } else {
            Entries::Interior((0..count).map(|i| decode_index(entry(i))).collect())
        };
        Ok(Node { depth, max, entries })
    }

    /// Encodes the node into `bytes` (60 bytes for the inode root, a whole
    /// block otherwise). Block checksums are set by `set_checksum`.
    pub fn encode(&self, bytes: &mut [u8]) {
        bytes.fill(0);
        put_u16(bytes, EH_MAGIC, MAGIC);
        put_u16(bytes, EH_ENTRIES, self.len() as u16);
        put_u16(bytes, EH_MAX, self.max);
        put_u16(bytes, EH_DEPTH, self.depth);
        match &self.entries {
            Entries::Leaf(extents) => {
                for (i, extent) in extents.iter().enumerate() {
                    encode_extent(extent, &mut bytes[HEADER_SIZE + i * ENTRY_SIZE..]);
                }
            }
            Entries::Interior(indexes) => {
                for (i, index) in indexes.iter().enumerate() {
                    encode_index(index, &mut bytes[HEADER_SIZE + i * ENTRY_SIZE..]);
                }
            }
        }
    }
}

fn decode_extent(bytes: &[u8]) -> Extent {
    Extent {
        logical: u32_at(bytes, EE_BLOCK),
        len: u16_at(bytes, EE_LEN),
        physical: join(u32_at(bytes, EE_START_LO), u16_at(bytes, EE_START_HI) as u32),
    }
}

fn encode_extent(extent: &Extent, bytes: &mut [u8]) {
    put_u32(bytes, EE_BLOCK, extent.logical);
    put_u16(bytes, EE_LEN, extent.len);
    put_u16(bytes, EE_START_HI, (extent.physical >> 32) as u16);
    put_u32(bytes, EE_START_LO, extent.physical as u32);
}

fn decode_index(bytes: &[u8]) -> Index {
    Index { logical: u32_at(bytes, EI_BLOCK), child: join(u32_at(bytes, EI_LEAF_LO), u16_at(bytes, EI_LEAF_HI) as u32) }
}

fn encode_index(index: &Index, bytes: &mut [u8]) {
    put_u32(bytes, EI_BLOCK, index.logical);
    put_u32(bytes, EI_LEAF_LO, index.child as u32);
    put_u16(bytes, EI_LEAF_HI, (index.child >> 32) as u16);
}

/// Byte offset of the checksum tail: right after `eh_max` entries.
fn tail_offset(bytes: &[u8]) -> usize {
    HEADER_SIZE + u16_at(bytes, EH_MAX) as usize * ENTRY_SIZE
}

/// Computes an extent block checksum: crc32c from the inode's seed over
/// the header and all `eh_max` entry slots.
pub fn compute_checksum(bytes: &[u8], inode_seed: u32) -> u32 {
    crc32c::update(inode_seed, &bytes[..tail_offset(bytes)])
}

pub fn set_checksum(bytes: &mut [u8], inode_seed: u32) {
    let checksum = compute_checksum(bytes, inode_seed);
    let at = tail_offset(bytes);
    put_u32(bytes, at, checksum);
}

pub fn verify_checksum(bytes: &[u8], inode_seed: u32) -> bool {
    compute_checksum(bytes, inode_seed) == u32_at(bytes, tail_offset(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_round_trip() {
        let node = Node {
            depth: 0,
            max: capacity(4096, true),
            entries: Entries::Leaf(vec![
                Extent { logical: 0, len: 32768, physical: (1 << 48) - 1 },
                Extent { logical: u32::MAX - 1, len: 1, physical: 5 },
            ]),
        };
        let mut bytes = vec![0u8; 4096];
        node.encode(&mut bytes);
        set_checksum(&mut bytes, 99);
        assert_eq!(Node::decode(&bytes, 0).unwrap(), node);
        assert!(verify_checksum(&bytes, 99));
    }

    #[test]
    fn interior_round_trip_in_inode() {
        let node = Node {
            depth: MAX_DEPTH,
            max: capacity(60, false),
            entries: Entries::Interior(vec![Index { logical: 7, child: (1 << 40) + 3 }; 4]),
        };
        let mut bytes = vec![0u8; 60];
        node.encode(&mut bytes);
        assert_eq!(Node::decode(&bytes, 0).unwrap(), node);
    }

    #[test]
    fn offsets_and_sizes() {
        assert_eq!(capacity(60, false), 4);
        assert_eq!(capacity(4096, true), 340);
        assert_eq!(EE_START_LO + 4, ENTRY_SIZE);
        assert_eq!(EH_GENERATION + 4, HEADER_SIZE);
    }

    #[test]
    fn bad_magic_is_corrupt() {
        let bytes = vec![0u8; 60];
        assert!(matches!(Node::decode(&bytes, 40), Err(Ext4Error::Corrupt { offset: Some(40), .. })));
    }
}
