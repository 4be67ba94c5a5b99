//! The ext4 superblock (kernel `Documentation/filesystems/ext4/super.rst`).
//!
//! It sits at byte 1024 of the device and is 1024 bytes long. Fields this
//! writer does not model are kept in `raw` and written back unchanged.

use super::crc32c;
use super::error::{Ext4Error, Result};
use super::le::*;

pub const SUPERBLOCK_OFFSET: u64 = 1024;
pub const SUPERBLOCK_SIZE: usize = 1024;
pub const MAGIC: u16 = 0xEF53;

// Field offsets, in bytes from the start of the superblock.
pub const INODES_COUNT: usize = 0x0;
pub const BLOCKS_COUNT_LO: usize = 0x4;
pub const R_BLOCKS_COUNT_LO: usize = 0x8;
pub const FREE_BLOCKS_COUNT_LO: usize = 0xC;
pub const FREE_INODES_COUNT: usize = 0x10;
pub const FIRST_DATA_BLOCK: usize = 0x14;
pub const LOG_BLOCK_SIZE: usize = 0x18;
pub const LOG_CLUSTER_SIZE: usize = 0x1C;
pub const BLOCKS_PER_GROUP: usize = 0x20;
pub const CLUSTERS_PER_GROUP: usize = 0x24;
pub const INODES_PER_GROUP: usize = 0x28;
pub const MTIME: usize = 0x2C;
pub const WTIME: usize = 0x30;
pub const MAX_MNT_COUNT: usize = 0x36;
pub const MAGIC_OFFSET: usize = 0x38;
pub const STATE: usize = 0x3A;
pub const ERRORS: usize = 0x3C;
pub const LASTCHECK: usize = 0x40;
pub const REV_LEVEL: usize = 0x4C;
pub const FIRST_INO: usize = 0x54;
pub const INODE_SIZE: usize = 0x58;
pub const BLOCK_GROUP_NR: usize = 0x5A;
pub const FEATURE_COMPAT: usize = 0x5C;
pub const FEATURE_INCOMPAT: usize = 0x60;
pub const FEATURE_RO_COMPAT: usize = 0x64;
pub const UUID: usize = 0x68;
pub const RESERVED_GDT_BLOCKS: usize = 0xCE;
pub const JOURNAL_INUM: usize = 0xE0;
pub const HASH_SEED: usize = 0xEC;
pub const DEF_HASH_VERSION: usize = 0xFC;
pub const JNL_BACKUP_TYPE: usize = 0xFD;
pub const DESC_SIZE: usize = 0xFE;
pub const DEFAULT_MOUNT_OPTS: usize = 0x100;
pub const MKFS_TIME: usize = 0x108;
pub const JNL_BLOCKS: usize = 0x10C;
pub const BLOCKS_COUNT_HI: usize = 0x150;
pub const R_BLOCKS_COUNT_HI: usize = 0x154;
pub const FREE_BLOCKS_COUNT_HI: usize = 0x158;
pub const MIN_EXTRA_ISIZE: usize = 0x15C;
pub const WANT_EXTRA_ISIZE: usize = 0x15E;
pub const FLAGS: usize = 0x160;
pub const LOG_GROUPS_PER_FLEX: usize = 0x174;
pub const CHECKSUM_TYPE: usize = 0x175;
pub const CHECKSUM_SEED: usize = 0x270;
pub const CHECKSUM: usize = 0x3FC;

// Feature flags (super.rst, "s_feature_*").
pub const COMPAT_HAS_JOURNAL: u32 = 0x4;
pub const COMPAT_EXT_ATTR: u32 = 0x8;
pub const COMPAT_RESIZE_INODE: u32 = 0x10;
pub const COMPAT_DIR_INDEX: u32 = 0x20;
pub const INCOMPAT_FILETYPE: u32 = 0x2;
pub const INCOMPAT_RECOVER: u32 = 0x4;
pub const INCOMPAT_EXTENTS: u32 = 0x40;
pub const INCOMPAT_64BIT: u32 = 0x80;
pub const INCOMPAT_FLEX_BG: u32 = 0x200;
pub const INCOMPAT_CSUM_SEED: u32 = 0x2000;
pub const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
pub const RO_COMPAT_LARGE_FILE: u32 = 0x2;
pub const RO_COMPAT_HUGE_FILE: u32 = 0x8;
pub const RO_COMPAT_DIR_NLINK: u32 = 0x20;
pub const RO_COMPAT_EXTRA_ISIZE: u32 = 0x40;
pub const RO_COMPAT_METADATA_CSUM: u32 = 0x400;

/// Incompatible features this writer can modify safely.
pub const INCOMPAT_SUPPORTED: u32 =
    INCOMPAT_FILETYPE | INCOMPAT_EXTENTS | INCOMPAT_64BIT | INCOMPAT_FLEX_BG | INCOMPAT_CSUM_SEED;
/// Read-only-compatible features this writer can modify safely.
pub const RO_COMPAT_SUPPORTED: u32 = RO_COMPAT_SPARSE_SUPER
    | RO_COMPAT_LARGE_FILE
    | RO_COMPAT_HUGE_FILE
    | RO_COMPAT_DIR_NLINK
    | RO_COMPAT_EXTRA_ISIZE
    | RO_COMPAT_METADATA_CSUM;

/// `s_flags` bit: directory hashes treat name bytes as signed chars.
pub const FLAG_SIGNED_HASH: u32 = 0x1;
/// `s_flags` bit: directory hashes treat name bytes as unsigned chars.
pub const FLAG_UNSIGNED_HASH: u32 = 0x2;
/// `s_checksum_type` value for crc32c.
pub const CHECKSUM_TYPE_CRC32C: u8 = 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Superblock {
    pub inodes_count: u32,
    pub blocks_count: u64,
    pub reserved_blocks_count: u64,
    pub free_blocks_count: u64,
    pub free_inodes_count: u32,
    pub first_data_block: u32,
    /// Block size is `1024 << log_block_size` bytes.
    pub log_block_size: u32,
    pub blocks_per_group: u32,
    pub inodes_per_group: u32,
    pub first_ino: u32,
    pub inode_size: u16,
    pub feature_compat: u32,
    pub feature_incompat: u32,
    pub feature_ro_compat: u32,
    pub uuid: [u8; 16],
    pub hash_seed: [u32; 4],
    pub def_hash_version: u8,
    pub desc_size: u16,
    pub flags: u32,
    pub log_groups_per_flex: u8,
    pub checksum_seed: u32,
    /// The whole 1024 bytes as read, for fields not modelled above.
    pub raw: Vec<u8>,
}

impl Superblock {
    pub fn block_size(&self) -> u64 {
        1024 << self.log_block_size
    }

    pub fn group_count(&self) -> u32 {
        let data_blocks = self.blocks_count - self.first_data_block as u64;
        data_blocks.div_ceil(self.blocks_per_group as u64) as u32
    }

    /// Seed of every metadata checksum: crc32c of the UUID, or the stored
    /// seed when `metadata_csum_seed` is set.
    pub fn csum_seed(&self) -> u32 {
        if self.feature_incompat & INCOMPAT_CSUM_SEED != 0 {
            self.checksum_seed
        } else {
            crc32c::update(!0, &self.uuid)
        }
    }

    /// Blocks reserved after each descriptor table copy for online resize
    /// (`resize_inode`); this writer leaves them alone.
    pub fn reserved_gdt_blocks(&self) -> u64 {
        u16_at(&self.raw, RESERVED_GDT_BLOCKS) as u64
    }

    pub fn has_metadata_csum(&self) -> bool {
        self.feature_ro_compat & RO_COMPAT_METADATA_CSUM != 0
    }

    pub fn decode(bytes: &[u8]) -> Result<Superblock> {
        assert_eq!(bytes.len(), SUPERBLOCK_SIZE);
        if u16_at(bytes, MAGIC_OFFSET) != MAGIC {
            return Err(Ext4Error::corrupt(
                format!("superblock magic is {:#06x}, expected {MAGIC:#06x}", u16_at(bytes, MAGIC_OFFSET)),
                Some(SUPERBLOCK_OFFSET + MAGIC_OFFSET as u64),
            ));
        }
        let mut hash_seed = [0u32; 4];
        for (index, word) in hash_seed.iter_mut().enumerate() {
            *word = u32_at(bytes, HASH_SEED + 4 * index);
        }
        Ok(Superblock {
            inodes_count: u32_at(bytes, INODES_COUNT),
            blocks_count: join(u32_at(bytes, BLOCKS_COUNT_LO), u32_at(bytes, BLOCKS_COUNT_HI)),
            reserved_blocks_count: join(u32_at(bytes, R_BLOCKS_COUNT_LO), u32_at(bytes, R_BLOCKS_COUNT_HI)),
            free_blocks_count: join(u32_at(bytes, FREE_BLOCKS_COUNT_LO), u32_at(bytes, FREE_BLOCKS_COUNT_HI)),
            free_inodes_count: u32_at(bytes, FREE_INODES_COUNT),
            first_data_block: u32_at(bytes, FIRST_DATA_BLOCK),
            log_block_size: u32_at(bytes, LOG_BLOCK_SIZE),
            blocks_per_group: u32_at(bytes, BLOCKS_PER_GROUP),
            inodes_per_group: u32_at(bytes, INODES_PER_GROUP),
            first_ino: u32_at(bytes, FIRST_INO),
            inode_size: u16_at(bytes, INODE_SIZE),
            feature_compat: u32_at(bytes, FEATURE_COMPAT),
            feature_incompat: u32_at(bytes, FEATURE_INCOMPAT),
            feature_ro_compat: u32_at(bytes, FEATURE_RO_COMPAT),
            uuid: bytes[UUID..UUID + 16].try_into().expect("16 bytes"),
            hash_seed,
            def_hash_version: bytes[DEF_HASH_VERSION],
            desc_size: u16_at(bytes, DESC_SIZE),
            flags: u32_at(bytes, FLAGS),
            log_groups_per_flex: bytes[LOG_GROUPS_PER_FLEX],
            checksum_seed: u32_at(bytes, CHECKSUM_SEED),
            raw: bytes.to_vec(),
        })
    }

    /// Encodes the superblock with its checksum set.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = self.raw.clone();
        bytes.resize(SUPERBLOCK_SIZE, 0);
        put_u32(&mut bytes, INODES_COUNT, self.inodes_count);
        put_u32(&mut bytes, BLOCKS_COUNT_LO, self.blocks_count as u32);
        put_u32(&mut bytes, BLOCKS_COUNT_HI, (self.blocks_count >> 32) as u32);
        put_u32(&mut bytes, R_BLOCKS_COUNT_LO, self.reserved_blocks_count as u32);
        put_u32(&mut bytes, R_BLOCKS_COUNT_HI, (self.reserved_blocks_count >> 32) as u32);
        put_u32(&mut bytes, FREE_BLOCKS_COUNT_LO, self.free_blocks_count as u32);
        put_u32(&mut bytes, FREE_BLOCKS_COUNT_HI, (self.free_blocks_count >> 32) as u32);
        put_u32(&mut bytes, FREE_INODES_COUNT, self.free_inodes_count);
        put_u32(&mut bytes, FIRST_DATA_BLOCK, self.first_data_block);
        put_u32(&mut bytes, LOG_BLOCK_SIZE, self.log_block_size);
        put_u32(&mut bytes, LOG_CLUSTER_SIZE, self.log_block_size);
        put_u32(&mut bytes, BLOCKS_PER_GROUP, self.blocks_per_group);
        put_u32(&mut bytes, CLUSTERS_PER_GROUP, self.blocks_per_group);
        put_u32(&mut bytes, INODES_PER_GROUP, self.inodes_per_group);
        put_u16(&mut bytes, MAGIC_OFFSET, MAGIC);
        put_u32(&mut bytes, FIRST_INO, self.first_ino);
        put_u16(&mut bytes, INODE_SIZE, self.inode_size);
        put_u32(&mut bytes, FEATURE_COMPAT, self.feature_compat);
        put_u32(&mut bytes, FEATURE_INCOMPAT, self.feature_incompat);
        put_u32(&mut bytes, FEATURE_RO_COMPAT, self.feature_ro_compat);
        bytes[UUID..UUID + 16].copy_from_slice(&self.uuid);
        for (index, word) in self.hash_seed.iter().enumerate() {
            put_u32(&mut bytes, HASH_SEED + 4 * index, *word);
        }
        bytes[DEF_HASH_VERSION] = self.def_hash_version;
        put_u16(&mut bytes, DESC_SIZE, self.desc_size);
        put_u32(&mut bytes, FLAGS, self.flags);
        bytes[LOG_GROUPS_PER_FLEX] = self.log_groups_per_flex;
        put_u32(&mut bytes, CHECKSUM_SEED, self.checksum_seed);
        set_checksum(&mut bytes);
        bytes
    }
}

/// Computes the superblock checksum: crc32c over every byte before it.
pub fn compute_checksum(bytes: &[u8]) -> u32 {
    crc32c::update(!0, &bytes[..CHECKSUM])
}

pub fn set_checksum(bytes: &mut [u8]) {
    let checksum = compute_checksum(bytes);
    put_u32(bytes, CHECKSUM, checksum);
}

pub fn verify_checksum(bytes: &[u8]) -> bool {
    compute_checksum(bytes) == u32_at(bytes, CHECKSUM)
}

/// Returns whether group `group` holds a superblock backup under
/// `sparse_super`: groups 0 and 1 and the powers of 3, 5 and 7.
pub fn group_has_backup(group: u32) -> bool {
    if group <= 1 {
        return true;
    }
    [3u32, 5, 7].iter().any(|&base| {
        let mut power = base;
        while power < group {
            power = power.saturating_mul(base);
        }
        power == group
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Superblock {
        let mut raw = vec![0u8; SUPERBLOCK_SIZE];
        put_u16(&mut raw, MAGIC_OFFSET, MAGIC);
        let mut sb = Superblock::decode(&raw).unwrap();
        sb.inodes_count = 4096;
        sb.blocks_count = (1 << 40) + 5;
        sb.reserved_blocks_count = u64::MAX >> 16;
        sb.free_blocks_count = 123_456_789_012;
        sb.free_inodes_count = u32::MAX;
        sb.log_block_size = 2;
        sb.blocks_per_group = 32768;
        sb.inodes_per_group = 8192;
        sb.first_ino = 11;
        sb.inode_size = 256;
        sb.feature_compat = COMPAT_HAS_JOURNAL;
        sb.feature_incompat = INCOMPAT_SUPPORTED;
        sb.feature_ro_compat = RO_COMPAT_SUPPORTED;
        sb.uuid = [7; 16];
        sb.hash_seed = [1, 2, 3, u32::MAX];
        sb.def_hash_version = 1;
        sb.desc_size = 64;
        sb.flags = FLAG_SIGNED_HASH;
        sb.log_groups_per_flex = 4;
        sb
    }

    #[test]
    fn round_trip() {
        let sb = sample();
        let bytes = sb.encode();
        let decoded = Superblock::decode(&bytes).unwrap();
        assert_eq!(decoded.encode(), bytes);
        let mut expected = sb.clone();
        expected.raw = bytes.clone();
        assert_eq!(decoded, expected);
        assert!(verify_checksum(&bytes));
    }

    #[test]
    fn offsets_and_size() {
        assert_eq!(SUPERBLOCK_SIZE, 1024);
        assert_eq!(MAGIC_OFFSET, 56);
        assert_eq!(FEATURE_COMPAT, 92);
        assert_eq!(UUID, 104);
        assert_eq!(HASH_SEED, 236);
        assert_eq!(JNL_BLOCKS + 17 * 4, BLOCKS_COUNT_HI);
        assert_eq!(CHECKSUM_SEED, 0x270);
        assert_eq!(CHECKSUM + 4, SUPERBLOCK_SIZE);
    }

    #[test]
    fn bad_magic_is_corrupt() {
        let mut bytes = sample().encode();
        bytes[MAGIC_OFFSET] ^= 1;
        assert!(matches!(Superblock::decode(&bytes), Err(Ext4Error::Corrupt { offset: Some(1080), .. })));
    }

    #[test]
    fn backup_groups() {
        let groups: Vec<u32> = (0..100).filter(|&g| group_has_backup(g)).collect();
        assert_eq!(groups, vec![0, 1, 3, 5, 7, 9, 25, 27, 49, 81]);
    }
}
