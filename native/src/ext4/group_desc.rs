//! The 64-byte block group descriptor (kernel `group_descr.rst`).

use super::crc32c;
use super::le::*;

pub const DESC_SIZE: usize = 64;

// Field offsets, in bytes from the start of a descriptor.
pub const BLOCK_BITMAP_LO: usize = 0x0;
pub const INODE_BITMAP_LO: usize = 0x4;
pub const INODE_TABLE_LO: usize = 0x8;
pub const FREE_BLOCKS_COUNT_LO: usize = 0xC;
pub const FREE_INODES_COUNT_LO: usize = 0xE;
pub const USED_DIRS_COUNT_LO: usize = 0x10;
pub const FLAGS: usize = 0x12;
pub const BLOCK_BITMAP_CSUM_LO: usize = 0x18;
pub const INODE_BITMAP_CSUM_LO: usize = 0x1A;
pub const ITABLE_UNUSED_LO: usize = 0x1C;
pub const CHECKSUM: usize = 0x1E;
pub const BLOCK_BITMAP_HI: usize = 0x20;
pub const INODE_BITMAP_HI: usize = 0x24;
pub const INODE_TABLE_HI: usize = 0x28;
pub const FREE_BLOCKS_COUNT_HI: usize = 0x2C;
pub const FREE_INODES_COUNT_HI: usize = 0x2E;
pub const USED_DIRS_COUNT_HI: usize = 0x30;
pub const ITABLE_UNUSED_HI: usize = 0x32;
pub const BLOCK_BITMAP_CSUM_HI: usize = 0x38;
pub const INODE_BITMAP_CSUM_HI: usize = 0x3A;

/// The inode table and bitmap are not initialised: every inode is free.
pub const FLAG_INODE_UNINIT: u16 = 0x1;
/// The block bitmap is not initialised: only the group's own metadata is used.
pub const FLAG_BLOCK_UNINIT: u16 = 0x2;
/// The inode table reads as zeros, so the kernel need not zero it.
pub const FLAG_ITABLE_ZEROED: u16 = 0x4;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupDesc {
    pub block_bitmap: u64,
    pub inode_bitmap: u64,
    pub inode_table: u64,
    pub free_blocks_count: u32,
    pub free_inodes_count: u32,
    pub used_dirs_count: u32,
    pub flags: u16,
    pub block_bitmap_csum: u32,
    pub inode_bitmap_csum: u32,
    pub itable_unused: u32,
}

fn split_u32(bytes: &mut [u8], low: usize, high: usize, value: u32) {
    put_u16(bytes, low, value as u16);
    put_u16(bytes, high, (value >> 16) as u16);
}

fn joined_u32(bytes: &[u8], low: usize, high: usize) -> u32 {
    u16_at(bytes, low) as u32 | (u16_at(bytes, high) as u32) << 16
}

impl GroupDesc {
    pub fn decode(bytes: &[u8]) -> GroupDesc {
        GroupDesc {
            block_bitmap: join(u32_at(bytes, BLOCK_BITMAP_LO), u32_at(bytes, BLOCK_BITMAP_HI)),
            inode_bitmap: join(u32_at(bytes, INODE_BITMAP_LO), u32_at(bytes, INODE_BITMAP_HI)),
            inode_table: join(u32_at(bytes, INODE_TABLE_LO), u32_at(bytes, INODE_TABLE_HI)),
            free_blocks_count: joined_u32(bytes, FREE_BLOCKS_COUNT_LO, FREE_BLOCKS_COUNT_HI),
            free_inodes_count: joined_u32(bytes, FREE_INODES_COUNT_LO, FREE_INODES_COUNT_HI),
            used_dirs_count: joined_u32(bytes, USED_DIRS_COUNT_LO, USED_DIRS_COUNT_HI),
            flags: u16_at(bytes, FLAGS),
            block_bitmap_csum: joined_u32(bytes, BLOCK_BITMAP_CSUM_LO, BLOCK_BITMAP_CSUM_HI),
            inode_bitmap_csum: joined_u32(bytes, INODE_BITMAP_CSUM_LO, INODE_BITMAP_CSUM_HI),
            itable_unused: joined_u32(bytes, ITABLE_UNUSED_LO, ITABLE_UNUSED_HI),
        }
    }

    /// Encodes descriptor `group` with its checksum set.
    pub fn encode(&self, group: u32, csum_seed: u32) -> [u8; DESC_SIZE] {
        let mut bytes = [0u8; DESC_SIZE];
        put_u32(&mut bytes, BLOCK_BITMAP_LO, self.block_bitmap as u32);
        put_u32(&mut bytes, BLOCK_BITMAP_HI, (self.block_bitmap >> 32) as u32);
        put_u32(&mut bytes, INODE_BITMAP_LO, self.inode_bitmap as u32);
        put_u32(&mut bytes, INODE_BITMAP_HI, (self.inode_bitmap >> 32) as u32);
        put_u32(&mut bytes, INODE_TABLE_LO, self.inode_table as u32);
        put_u32(&mut bytes, INODE_TABLE_HI, (self.inode_table >> 32) as u32);
        split_u32(&mut bytes, FREE_BLOCKS_COUNT_LO, FREE_BLOCKS_COUNT_HI, self.free_blocks_count);
        split_u32(&mut bytes, FREE_INODES_COUNT_LO, FREE_INODES_COUNT_HI, self.free_inodes_count);
        split_u32(&mut bytes, USED_DIRS_COUNT_LO, USED_DIRS_COUNT_HI, self.used_dirs_count);
        put_u16(&mut bytes, FLAGS, self.flags);
        split_u32(&mut bytes, BLOCK_BITMAP_CSUM_LO, BLOCK_BITMAP_CSUM_HI, self.block_bitmap_csum);
        split_u32(&mut bytes, INODE_BITMAP_CSUM_LO, INODE_BITMAP_CSUM_HI, self.inode_bitmap_csum);
        split_u32(&mut bytes, ITABLE_UNUSED_LO, ITABLE_UNUSED_HI, self.itable_unused);
        set_checksum(&mut bytes, group, csum_seed);
        bytes
    }
}

/// Computes a descriptor checksum: the low 16 bits of crc32c over the
/// group number and the descriptor with its checksum field zeroed.
pub fn compute_checksum(bytes: &[u8], group: u32, csum_seed: u32) -> u16 {
    let mut crc = crc32c::update(csum_seed, &group.to_le_bytes());
    crc = crc32c::update(crc, &bytes[..CHECKSUM]);
    crc = crc32c::update(crc, &[0, 0]);
    crc = crc32c::update(crc, &bytes[CHECKSUM + 2..DESC_SIZE]);
    crc as u16
}

pub fn set_checksum(bytes: &mut [u8], group: u32, csum_seed: u32) {
    let checksum = compute_checksum(bytes, group, csum_seed);
    put_u16(bytes, CHECKSUM, checksum);
}

pub fn verify_checksum(bytes: &[u8], group: u32, csum_seed: u32) -> bool {
    compute_checksum(bytes, group, csum_seed) == u16_at(bytes, CHECKSUM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let desc = GroupDesc {
            block_bitmap: (1 << 40) + 1,
            inode_bitmap: 17,
            inode_table: u64::MAX >> 16,
            free_blocks_count: 32768,
            free_inodes_count: 70000,
            used_dirs_count: 3,
            flags: FLAG_ITABLE_ZEROED | FLAG_BLOCK_UNINIT,
            block_bitmap_csum: 0xDEAD_BEEF,
            inode_bitmap_csum: 0x1234_5678,
            itable_unused: 8000,
        };
        let bytes = desc.encode(5, 0xABCD);
        assert_eq!(GroupDesc::decode(&bytes), desc);
        assert!(verify_checksum(&bytes, 5, 0xABCD));
        assert!(!verify_checksum(&bytes, 6, 0xABCD));
    }

    #[test]
    fn offsets_and_size() {
        assert_eq!(CHECKSUM, 30);
        assert_eq!(BLOCK_BITMAP_HI, 32);
        assert_eq!(INODE_BITMAP_CSUM_HI + 2 + 4, DESC_SIZE);
    }
}
