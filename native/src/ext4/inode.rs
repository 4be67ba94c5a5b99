//! The 256-byte ext4 inode (kernel `inodes.rst`).
//!
//! Bytes 0..128 are the original ext2 inode, 128..160 the extra fields
//! (`i_extra_isize` = 32), and 160..256 hold in-inode extended attributes.

use super::crc32c;
use super::le::*;

pub const INODE_SIZE: usize = 256;
/// Size of the original ext2 inode, where `i_extra_isize` starts.
pub const GOOD_OLD_INODE_SIZE: usize = 128;
/// `i_extra_isize` this writer uses: every extra field through `i_projid`.
pub const EXTRA_ISIZE: u16 = 32;
/// Bytes in `i_block`: extent root, fast symlink target or device number.
pub const I_BLOCK_SIZE: usize = 60;

// Field offsets, in bytes from the start of the inode.
pub const MODE: usize = 0x0;
pub const UID_LO: usize = 0x2;
pub const SIZE_LO: usize = 0x4;
pub const ATIME: usize = 0x8;
pub const CTIME: usize = 0xC;
pub const MTIME: usize = 0x10;
pub const DTIME: usize = 0x14;
pub const GID_LO: usize = 0x18;
pub const LINKS_COUNT: usize = 0x1A;
pub const BLOCKS_LO: usize = 0x1C;
pub const FLAGS: usize = 0x20;
pub const VERSION_LO: usize = 0x24;
pub const BLOCK: usize = 0x28;
pub const GENERATION: usize = 0x64;
pub const FILE_ACL_LO: usize = 0x68;
pub const SIZE_HIGH: usize = 0x6C;
pub const BLOCKS_HIGH: usize = 0x74;
pub const FILE_ACL_HIGH: usize = 0x76;
pub const UID_HIGH: usize = 0x78;
pub const GID_HIGH: usize = 0x7A;
pub const CHECKSUM_LO: usize = 0x7C;
pub const EXTRA_ISIZE_OFFSET: usize = 0x80;
pub const CHECKSUM_HI: usize = 0x82;
pub const CTIME_EXTRA: usize = 0x84;
pub const MTIME_EXTRA: usize = 0x88;
pub const ATIME_EXTRA: usize = 0x8C;
pub const CRTIME: usize = 0x90;
pub const CRTIME_EXTRA: usize = 0x94;
pub const VERSION_HI: usize = 0x98;
pub const PROJID: usize = 0x9C;
/// First byte after the extra fields: the in-inode xattr area.
pub const XATTR_AREA: usize = GOOD_OLD_INODE_SIZE + EXTRA_ISIZE as usize;

// Mode bits (`i_mode`): the file type in the top four bits.
pub const S_IFMT: u16 = 0o170000;
pub const S_IFSOCK: u16 = 0o140000;
pub const S_IFLNK: u16 = 0o120000;
pub const S_IFREG: u16 = 0o100000;
pub const S_IFBLK: u16 = 0o060000;
pub const S_IFDIR: u16 = 0o040000;
pub const S_IFCHR: u16 = 0o020000;
pub const S_IFIFO: u16 = 0o010000;

// Inode flags (`i_flags`).
pub const FLAG_INDEX: u32 = 0x1000;
pub const FLAG_HUGE_FILE: u32 = 0x40000;
pub const FLAG_EXTENTS: u32 = 0x80000;
pub const FLAG_INLINE_DATA: u32 = 0x1000_0000;

/// A timestamp in seconds since 1970 (negative before) and nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timestamp {
    pub seconds: i64,
    pub nanoseconds: u32,
}

/// Minimum second of an ext4 timestamp with extra epoch bits (in 1901).
pub const TIME_MIN: i64 = i32::MIN as i64;
/// Maximum second of an ext4 timestamp with extra epoch bits (in 2446).
pub const TIME_MAX: i64 = i32::MAX as i64 + (3 << 32);

impl Timestamp {
    /// Splits into the 32-bit seconds field and the `_extra` field: two
    /// epoch bits that extend the signed seconds, then 30 bits of
    /// nanoseconds.
    pub fn encode(self) -> (u32, u32) {
        let seconds = self.seconds.clamp(TIME_MIN, TIME_MAX);
        let low = seconds as i32;
        let epoch = ((seconds - low as i64) >> 32) as u32 & 3;
        (low as u32, (self.nanoseconds.min(999_999_999) << 2) | epoch)
    }

    pub fn decode(seconds: u32, extra: u32) -> Timestamp {
        let epoch = (extra & 3) as i64;
        Timestamp { seconds: seconds as i32 as i64 + (epoch << 32), nanoseconds: extra >> 2 }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inode {
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub atime: Timestamp,
    pub ctime: Timestamp,
    pub mtime: Timestamp,
    pub crtime: Timestamp,
    pub dtime: u32,
    pub links_count: u16,
    /// Storage charged to the inode, in 512-byte sectors.
    pub blocks: u64,
    pub flags: u32,
    pub block: [u8; I_BLOCK_SIZE],
    pub generation: u32,
    pub file_acl: u64,
    pub extra_isize: u16,
    /// Bytes from `XATTR_AREA` to the end of the inode.
    pub xattr_area: Vec<u8>,
}

impl Default for Inode {
    fn default() -> Self {
        Inode {
            mode: 0,
            uid: 0,
            gid: 0,
            size: 0,
            atime: Timestamp::default(),
            ctime: Timestamp::default(),
            mtime: Timestamp::default(),
            crtime: Timestamp::default(),
            dtime: 0,
            links_count: 0,
            blocks: 0,
            flags: 0,
            block: [0; I_BLOCK_SIZE],
            generation: 0,
            file_acl: 0,
            extra_isize: EXTRA_ISIZE,
            xattr_area: vec![0; INODE_SIZE - XATTR_AREA],
        }
    }
}

impl Inode {
    pub fn file_type(&self) -> u16 {
        self.mode & S_IFMT
    }

    pub fn is_dir(&self) -> bool {
        self.file_type() == S_IFDIR
    }

    pub fn decode(bytes: &[u8]) -> Inode {
        let extra_isize = u16_at(bytes, EXTRA_ISIZE_OFFSET);
        let extra = |offset: usize| if extra_isize as usize + GOOD_OLD_INODE_SIZE >= offset + 4 { u32_at(bytes, offset) } else { 0 };
        Inode {
            mode: u16_at(bytes, MODE),
            uid: u16_at(bytes, UID_LO) as u32 | (u16_at(bytes, UID_HIGH) as u32) << 16,
            gid: u16_at(bytes, GID_LO) as u32 | (u16_at(bytes, GID_HIGH) as u32) << 16,
            size: join(u32_at(bytes, SIZE_LO), u32_at(bytes, SIZE_HIGH)),
            atime: Timestamp::decode(u32_at(bytes, ATIME), extra(ATIME_EXTRA)),
            ctime: Timestamp::decode(u32_at(bytes, CTIME), extra(CTIME_EXTRA)),
            mtime: Timestamp::decode(u32_at(bytes, MTIME), extra(MTIME_EXTRA)),
            crtime: Timestamp::decode(extra(CRTIME), extra(CRTIME_EXTRA)),
            dtime: u32_at(bytes, DTIME),
            links_count: u16_at(bytes, LINKS_COUNT),
            blocks: u32_at(bytes, BLOCKS_LO) as u64 | (u16_at(bytes, BLOCKS_HIGH) as u64) << 32,
            flags: u32_at(bytes, FLAGS),
            block: bytes[BLOCK..BLOCK + I_BLOCK_SIZE].try_into().expect("60 bytes"),
            generation: u32_at(bytes, GENERATION),
            file_acl: u32_at(bytes, FILE_ACL_LO) as u64 | (u16_at(bytes, FILE_ACL_HIGH) as u64) << 32,
            extra_isize,
            xattr_area: bytes[XATTR_AREA..INODE_SIZE].to_vec(),
        }
    }

    /// Encodes inode number `ino` with its checksum set.
    pub fn encode(&self, ino: u32, csum_seed: u32) -> [u8; INODE_SIZE] {
        let mut bytes = [0u8; INODE_SIZE];
        put_u16(&mut bytes, MODE, self.mode);
        put_u16(&mut bytes, UID_LO, self.uid as u16);
        put_u16(&mut bytes, UID_HIGH, (self.uid >> 16) as u16);
        put_u16(&mut bytes, GID_LO, self.gid as u16);
        put_u16(&mut bytes, GID_HIGH, (self.gid >> 16) as u16);
        put_u32(&mut bytes, SIZE_LO, self.size as u32);
        put_u32(&mut bytes, SIZE_HIGH, (self.size >> 32) as u32);
        self.put_time(&mut bytes, ATIME, ATIME_EXTRA, self.atime);
        self.put_time(&mut bytes, CTIME, CTIME_EXTRA, self.ctime);
        self.put_time(&mut bytes, MTIME, MTIME_EXTRA, self.mtime);
        self.put_time(&mut bytes, CRTIME, CRTIME_EXTRA, self.crtime);
        put_u32(&mut bytes, DTIME, self.dtime);
        put_u16(&mut bytes, LINKS_COUNT, self.links_count);
        put_u32(&mut bytes, BLOCKS_LO, self.blocks as u32);
        put_u16(&mut bytes, BLOCKS_HIGH, (self.blocks >> 32) as u16);
        put_u32(&mut bytes, FLAGS, self.flags);
        bytes[BLOCK..BLOCK + I_BLOCK_SIZE].copy_from_slice(&self.block);
        put_u32(&mut bytes, GENERATION, self.generation);
        put_u32(&mut bytes, FILE_ACL_LO, self.file_acl as u32);
        put_u16(&mut bytes, FILE_ACL_HIGH, (self.file_acl >> 32) as u16);
        put_u16(&mut bytes, EXTRA_ISIZE_OFFSET, self.extra_isize);
        bytes[XATTR_AREA..].copy_from_slice(&self.xattr_area);
        set_checksum(&mut bytes, ino, self.generation, csum_seed);
        bytes
    }

    fn put_time(&self, bytes: &mut [u8], seconds_at: usize, extra_at: usize, time: Timestamp) {
        let (seconds, extra) = time.encode();
        if seconds_at != CRTIME {
            put_u32(bytes, seconds_at, seconds);
        } else if self.extra_isize as usize + GOOD_OLD_INODE_SIZE >= CRTIME + 4 {
            put_u32(bytes, CRTIME, seconds);
        }
        if self.extra_isize as usize + GOOD_OLD_INODE_SIZE >= extra_at + 4 {
            put_u32(bytes, extra_at, extra);
        }
    }
}

/// Returns the per-inode checksum seed: crc32c of the inode number and
/// generation, continued from the filesystem seed. Extent blocks, directory
/// blocks and htree nodes of the inode start from it.
pub fn inode_csum_seed(csum_seed: u32, ino: u32, generation: u32) -> u32 {
    let crc = crc32c::update(csum_seed, &ino.to_le_bytes());
    crc32c::update(crc, &generation.to_le_bytes())
}

/// Computes an inode checksum over all 256 bytes with both checksum fields
/// read as zero.
pub fn compute_checksum(bytes: &[u8], ino: u32, generation: u32, csum_seed: u32) -> u32 {
    let mut crc = inode_csum_seed(csum_seed, ino, generation);
    crc = crc32c::update(crc, &bytes[..CHECKSUM_LO]);
    crc = crc32c::update(crc, &[0, 0]);
    crc = crc32c::update(crc, &bytes[CHECKSUM_LO + 2..CHECKSUM_HI]);
    crc = crc32c::update(crc, &[0, 0]);
    crc32c::update(crc, &bytes[CHECKSUM_HI + 2..INODE_SIZE])
}

pub fn set_checksum(bytes: &mut [u8], ino: u32, generation: u32, csum_seed: u32) {
    let checksum = compute_checksum(bytes, ino, generation, csum_seed);
    put_u16(bytes, CHECKSUM_LO, checksum as u16);
    put_u16(bytes, CHECKSUM_HI, (checksum >> 16) as u16);
}

pub fn verify_checksum(bytes: &[u8], ino: u32, csum_seed: u32) -> bool {
    let generation = u32_at(bytes, GENERATION);
    let stored = u16_at(bytes, CHECKSUM_LO) as u32 | (u16_at(bytes, CHECKSUM_HI) as u32) << 16;
    compute_checksum(bytes, ino, generation, csum_seed) == stored
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut inode = Inode {
            mode: S_IFREG | 0o4755,
            uid: 100_000,
            gid: u32::MAX,
            size: (16 << 40) - 4096,
            atime: Timestamp { seconds: -1_000_000_000, nanoseconds: 999_999_999 },
            ctime: Timestamp { seconds: 4_000_000_000, nanoseconds: 1 },
            mtime: Timestamp { seconds: TIME_MAX, nanoseconds: 0 },
            crtime: Timestamp { seconds: TIME_MIN, nanoseconds: 5 },
            dtime: 0,
            links_count: 65000,
            blocks: (1 << 48) - 1,
            flags: FLAG_EXTENTS | FLAG_HUGE_FILE,
            generation: 77,
            file_acl: (1 << 48) - 1,
            ..Inode::default()
        };
        inode.block[0] = 0x0A;
        inode.xattr_area[0] = 0xEA;
        let bytes = inode.encode(12, 0x5555);
        assert_eq!(Inode::decode(&bytes), inode);
        assert!(verify_checksum(&bytes, 12, 0x5555));
        assert!(!verify_checksum(&bytes, 13, 0x5555));
    }

    #[test]
    fn timestamps_round_trip() {
        for seconds in [TIME_MIN, -1, 0, 1, i32::MAX as i64, 1 << 31, 1 << 32, 4_102_444_800, TIME_MAX] {
            let time = Timestamp { seconds, nanoseconds: 123_456_789 };
            let (low, extra) = time.encode();
            assert_eq!(Timestamp::decode(low, extra), time, "seconds {seconds}");
        }
    }

    #[test]
    fn offsets_and_size() {
        assert_eq!(BLOCK, 40);
        assert_eq!(BLOCK + I_BLOCK_SIZE, GENERATION);
        assert_eq!(CHECKSUM_LO, 124);
        assert_eq!(EXTRA_ISIZE_OFFSET, GOOD_OLD_INODE_SIZE);
        assert_eq!(PROJID + 4, XATTR_AREA);
        assert_eq!(XATTR_AREA, 160);
    }
}
