//! Creating a new filesystem (what `mke2fs -t ext4` does), deterministic in
//! its inputs: the UUID and hash seed derive from a caller seed, and every
//! timestamp the filesystem records is the caller's timestamp.
//!
//! Only metadata in use is written: bitmaps of initialised groups, the
//! descriptor tables, the few inodes in use, the root and `lost+found`
//! directories and the journal superblock. Inode tables are never written;
//! unwritten blocks read as zeros, which is what `ITABLE_ZEROED` promises.

use super::bitmap;
use super::crc32c;
use super::error::{Ext4Error, Result};
use super::fs::{Filesystem, OpenOptions};
use super::group_desc::{self, GroupDesc, FLAG_BLOCK_UNINIT, FLAG_INODE_UNINIT, FLAG_ITABLE_ZEROED};
use super::hash::HASH_HALF_MD4;
use super::inode::{Inode, Timestamp, S_IFDIR, S_IFREG};
use super::journal::{self, JournalSuperblock};
use super::le::put_u32;
use super::ops::Attrs;
use super::path::ROOT_INO;
use super::superblock::{self as sb, Superblock, SUPERBLOCK_SIZE};
use super::tree::push_extent;
use crate::block::BlockDevice;

pub const BLOCK_SIZE: u64 = 4096;
pub const INODE_SIZE: u16 = 256;
/// Groups whose bitmaps and inode tables are packed together (flex_bg).
pub const LOG_GROUPS_PER_FLEX: u8 = 4;
pub const JOURNAL_INO: u32 = 8;
pub const LOST_FOUND_INO: u32 = 11;
pub const FIRST_INO: u32 = 11;
/// Smallest filesystem accepted: room for a 1024-block journal and data.
pub const MIN_BLOCKS: u64 = 2048;
/// A last group shorter than this is dropped, as mke2fs drops it.
const MIN_LAST_GROUP_BLOCKS: u64 = 1024;

#[derive(Clone, Debug)]
pub struct FormatOptions {
    /// Filesystem size in bytes, rounded down to whole blocks.
    pub size: u64,
    /// One inode per this many bytes of filesystem.
    pub bytes_per_inode: u64,
    /// Source of the UUID and hash seed, such as the chain ID.
    pub seed: Vec<u8>,
    /// Seconds since 1970 recorded as the creation and write time.
    pub timestamp: i64,
    /// Blocks reserved for root, in percent.
    pub reserved_percent: u8,
    pub cluster_size: u64,
}

impl Default for FormatOptions {
    fn default() -> Self {
        FormatOptions {
            size: 64 << 30,
            bytes_per_inode: 16384,
            seed: Vec::new(),
            timestamp: 0,
            reserved_percent: 5,
            cluster_size: 64 * 1024,
        }
    }
}

fn invalid(message: String) -> Ext4Error {
    Ext4Error::InvalidArgument { path: String::new(), message }
}

/// Derives `N` words from the seed, separated by `domain`.
fn derive<const N: usize>(seed: &[u8], domain: &[u8]) -> [u32; N] {
    let mut words = [0u32; N];
    for (i, word) in words.iter_mut().enumerate() {
        let crc = crc32c::update(!0, domain);
        let crc = crc32c::update(crc, seed);
        *word = !crc32c::update(crc, &(i as u32).to_le_bytes());
    }
    words
}

fn derive_uuid(seed: &[u8]) -> [u8; 16] {
    let words: [u32; 4] = derive(seed, b"layerdisk ext4 uuid");
    let mut uuid = [0u8; 16];
    for (i, word) in words.iter().enumerate() {
        uuid[i * 4..i * 4 + 4].copy_from_slice(&word.to_le_bytes());
    }
    // RFC 4122 version 4 and variant bits, as a random UUID would have.
    uuid[6] = (uuid[6] & 0x0F) | 0x40;
    uuid[8] = (uuid[8] & 0x3F) | 0x80;
    uuid
}

/// Counts of the new filesystem.
struct Geometry {
    blocks: u64,
    groups: u32,
    inodes_per_group: u32,
    table_blocks: u64,
}

fn geometry(options: &FormatOptions, device_size: u64) -> Result<Geometry> {
    let bpg = BLOCK_SIZE * 8;
    let mut blocks = options.size.min(device_size) / BLOCK_SIZE;
    if blocks < MIN_BLOCKS {
        return Err(invalid(format!("filesystem size {} is below the minimum of {} bytes", options.size, MIN_BLOCKS * BLOCK_SIZE)));
    }
    if blocks > (1 << 32) * bpg {
        return Err(invalid(format!("filesystem size {} is above the maximum this writer supports", options.size)));
    }
    if blocks % bpg != 0 && blocks % bpg < MIN_LAST_GROUP_BLOCKS && blocks > bpg {
        blocks -= blocks % bpg;
    }
    let groups = blocks.div_ceil(bpg) as u32;
    if options.bytes_per_inode < 1024 {
        return Err(invalid(format!("bytes per inode {} is below 1024", options.bytes_per_inode)));
    }
    let per_block = BLOCK_SIZE / INODE_SIZE as u64;
    let requested = (blocks * BLOCK_SIZE / options.bytes_per_inode).div_ceil(groups as u64);
    let inodes_per_group = (requested.div_ceil(per_block) * per_block).clamp(per_block, bpg);
    if inodes_per_group * groups as u64 > u32::MAX as u64 {
        return Err(invalid("too many inodes; raise bytes per inode".into()));
    }
    let table_blocks = inodes_per_group * INODE_SIZE as u64 / BLOCK_SIZE;
    Ok(Geometry { blocks, groups, inodes_per_group: inodes_per_group as u32, table_blocks })
}

fn new_superblock(options: &FormatOptions, geometry: &Geometry) -> Superblock {
    let mut raw = vec![0u8; SUPERBLOCK_SIZE];
    let time = options.timestamp.clamp(0, u32::MAX as i64) as u32;
    put_u32(&mut raw, sb::MTIME, 0);
    put_u32(&mut raw, sb::WTIME, time);
    put_u32(&mut raw, sb::LASTCHECK, time);
    put_u32(&mut raw, sb::MKFS_TIME, time);
    raw[sb::MAX_MNT_COUNT..sb::MAX_MNT_COUNT + 2].copy_from_slice(&u16::MAX.to_le_bytes());
    raw[sb::STATE..sb::STATE + 2].copy_from_slice(&1u16.to_le_bytes());
    raw[sb::ERRORS..sb::ERRORS + 2].copy_from_slice(&1u16.to_le_bytes());
    put_u32(&mut raw, sb::REV_LEVEL, 1);
    // Mount options mke2fs records by default: user_xattr and acl.
    put_u32(&mut raw, sb::DEFAULT_MOUNT_OPTS, 0x0004 | 0x0008);
    raw[sb::MIN_EXTRA_ISIZE..sb::MIN_EXTRA_ISIZE + 2].copy_from_slice(&32u16.to_le_bytes());
    raw[sb::WANT_EXTRA_ISIZE..sb::WANT_EXTRA_ISIZE + 2].copy_from_slice(&32u16.to_le_bytes());
    raw[sb::CHECKSUM_TYPE] = sb::CHECKSUM_TYPE_CRC32C;
    raw[sb::MAGIC_OFFSET..sb::MAGIC_OFFSET + 2].copy_from_slice(&sb::MAGIC.to_le_bytes());

    let mut superblock = Superblock::decode(&raw).expect("magic set above");
    superblock.inodes_count = geometry.inodes_per_group * geometry.groups;
    superblock.blocks_count = geometry.blocks;
    superblock.reserved_blocks_count = geometry.blocks * options.reserved_percent.min(50) as u64 / 100;
    superblock.log_block_size = 2;
    superblock.blocks_per_group = (BLOCK_SIZE * 8) as u32;
    superblock.inodes_per_group = geometry.inodes_per_group;
    superblock.first_ino = FIRST_INO;
    superblock.inode_size = INODE_SIZE;
    superblock.feature_compat = sb::COMPAT_EXT_ATTR | sb::COMPAT_DIR_INDEX;
    superblock.feature_incompat = sb::INCOMPAT_FILETYPE | sb::INCOMPAT_EXTENTS | sb::INCOMPAT_64BIT | sb::INCOMPAT_FLEX_BG;
    superblock.feature_ro_compat = sb::RO_COMPAT_SPARSE_SUPER
        | sb::RO_COMPAT_LARGE_FILE
        | sb::RO_COMPAT_HUGE_FILE
        | sb::RO_COMPAT_DIR_NLINK
        | sb::RO_COMPAT_EXTRA_ISIZE
        | sb::RO_COMPAT_METADATA_CSUM;
    superblock.uuid = derive_uuid(&options.seed);
    superblock.hash_seed = derive(&options.seed, b"layerdisk ext4 hash seed");
    superblock.def_hash_version = HASH_HALF_MD4;
    superblock.desc_size = group_desc::DESC_SIZE as u16;
    superblock.flags = sb::FLAG_SIGNED_HASH;
    superblock.log_groups_per_flex = LOG_GROUPS_PER_FLEX;
    superblock
}

/// Creates a filesystem on `device` and returns it open, committed.
pub fn format(device: Box<dyn BlockDevice + Send>, options: &FormatOptions) -> Result<Filesystem> {
    let geometry = geometry(options, device.size())?;
    let superblock = new_superblock(options, &geometry);
    let open = OpenOptions { cluster_size: options.cluster_size };
    let mut fs = Filesystem::from_parts(device, superblock, Vec::new(), open);
    fs.groups = vec![GroupDesc::default(); geometry.groups as usize];

    lay_out_groups(&mut fs, &geometry)?;
    init_bitmaps(&mut fs)?;
    let time = Timestamp { seconds: options.timestamp, nanoseconds: 0 };
    write_reserved_inodes(&mut fs, time)?;
    create_journal(&mut fs, time)?;
    create_root(&mut fs, time)?;
    fs.commit()?;
    write_backups(&mut fs)?;
    Ok(fs)
}

/// Places each flex group's block bitmaps, inode bitmaps and inode tables
/// at the start of its first group, after any superblock backup.
fn lay_out_groups(fs: &mut Filesystem, geometry: &Geometry) -> Result<()> {
    let flex = 1u32 << LOG_GROUPS_PER_FLEX;
    for leader in (0..geometry.groups).step_by(flex as usize) {
        let members: Vec<u32> = (leader..(leader + flex).min(geometry.groups)).collect();
        let mut cursor = fs.group_first_block(leader) + fs.backup_blocks(leader);
        let count = members.len() as u64;
        let block_bitmaps = place(fs, &mut cursor, count)?;
        let inode_bitmaps = place(fs, &mut cursor, count)?;
        for (i, &group) in members.iter().enumerate() {
            let table = place(fs, &mut cursor, geometry.table_blocks)?;
            let desc = &mut fs.groups[group as usize];
            desc.block_bitmap = block_bitmaps + i as u64;
            desc.inode_bitmap = inode_bitmaps + i as u64;
            desc.inode_table = table;
        }
    }
    Ok(())
}

/// Reserves `len` contiguous blocks at or after `cursor`, stepping over
/// superblock backups, and returns the first.
fn place(fs: &Filesystem, cursor: &mut u64, len: u64) -> Result<u64> {
    loop {
        let start = *cursor;
        let end = start + len;
        if end > fs.sb.blocks_count {
            return Err(invalid("the filesystem is too small for its inode tables; raise bytes per inode".into()));
        }
        let mut moved = false;
        for group in fs.group_of_block(start)..=fs.group_of_block(end - 1) {
            let backup_start = fs.group_first_block(group);
            let backup_end = backup_start + fs.backup_blocks(group);
            if start < backup_end && backup_start < end {
                *cursor = backup_end;
                moved = true;
                break;
            }
        }
        if !moved {
            *cursor = end;
            return Ok(start);
        }
    }
}

/// Sets flags and free counts of every group and writes the bitmaps of
/// groups that hold metadata (their own or their flex group's).
fn init_bitmaps(fs: &mut Filesystem) -> Result<()> {
    let groups = fs.groups.len() as u32;
    let ipg = fs.sb.inodes_per_group;
    for group in 0..groups {
        let desc = &mut fs.groups[group as usize];
        desc.flags = FLAG_ITABLE_ZEROED | FLAG_INODE_UNINIT | FLAG_BLOCK_UNINIT;
        desc.free_inodes_count = ipg;
        desc.itable_unused = ipg;
    }
    for group in 0..groups {
        let bits = fs.block_bitmap(group)?;
        let count = fs.group_block_count(group) as usize;
        let used = bitmap::count_set(&bits, count);
        let holds_metadata = used as u64 > fs.backup_blocks(group);
        let desc = &mut fs.groups[group as usize];
        desc.free_blocks_count = (count - used) as u32;
        if holds_metadata || group == 0 || group == groups - 1 {
            desc.flags &= !FLAG_BLOCK_UNINIT;
            let location = desc.block_bitmap;
            fs.cache.write_new(location).copy_from_slice(&bits);
            fs.verified_bitmaps.insert(location);
        }
        fs.dirty_groups.insert(group);
    }
    Ok(())
}

fn write_reserved_inodes(fs: &mut Filesystem, time: Timestamp) -> Result<()> {
    for ino in 1..FIRST_INO {
        fs.mark_inode(ino, true, false)?;
        if ino != ROOT_INO && ino != JOURNAL_INO {
            let inode = Inode { atime: time, ctime: time, mtime: time, crtime: time, ..Inode::default() };
            fs.write_inode(ino, &inode)?;
        }
    }
    Ok(())
}

/// Creates the journal inode over contiguous runs of blocks and writes
/// only its superblock; the rest of the journal reads as zeros.
fn create_journal(fs: &mut Filesystem, time: Timestamp) -> Result<()> {
    let length = journal::default_journal_blocks(fs.sb.blocks_count) as u64;
    let mut extents = Vec::new();
    let mut mapped = 0u64;
    while mapped < length {
        let (start, got) = fs.allocate_blocks(length - mapped)?;
        push_extent(&mut extents, mapped as u32, start, got);
        mapped += got;
    }
    let mut inode = Inode { mode: S_IFREG | 0o600, links_count: 1, atime: time, ctime: time, mtime: time, crtime: time, ..Inode::default() };
    inode.size = length * BLOCK_SIZE;
    fs.write_extents(JOURNAL_INO, &mut inode, &extents)?;
    fs.write_inode(JOURNAL_INO, &inode)?;

    let first = extents[0].physical;
    let journal_sb = JournalSuperblock::new(BLOCK_SIZE as u32, length as u32, fs.sb.uuid);
    fs.cache.write_new(first)[..journal::SUPERBLOCK_SIZE].copy_from_slice(&journal_sb.encode());

    fs.sb.feature_compat |= sb::COMPAT_HAS_JOURNAL;
    let raw = &mut fs.sb.raw;
    put_u32(raw, sb::JOURNAL_INUM, JOURNAL_INO);
    // The superblock keeps a copy of the journal inode's i_block and size,
    // so e2fsck can rebuild a damaged journal inode.
    raw[sb::JNL_BACKUP_TYPE] = 1;
    raw[sb::JNL_BLOCKS..sb::JNL_BLOCKS + 60].copy_from_slice(&inode.block);
    put_u32(raw, sb::JNL_BLOCKS + 60, (inode.size >> 32) as u32);
    put_u32(raw, sb::JNL_BLOCKS + 64, inode.size as u32);
    Ok(())
}

fn create_root(fs: &mut Filesystem, time: Timestamp) -> Result<()> {
    let attrs = Attrs { mode: 0o755, uid: 0, gid: 0, atime: time, mtime: time, ctime: time };
    let mut root = Inode { mode: S_IFDIR | attrs.mode, links_count: 3, atime: time, ctime: time, mtime: time, crtime: time, ..Inode::default() };
    fs.group_mut(0).used_dirs_count += 1;
    fs.dir_init(ROOT_INO, &mut root, ROOT_INO)?;

    fs.mark_inode(LOST_FOUND_INO, true, true)?;
    let mut lost = Inode { mode: S_IFDIR | 0o700, links_count: 2, atime: time, ctime: time, mtime: time, crtime: time, ..Inode::default() };
    fs.dir_init(LOST_FOUND_INO, &mut lost, ROOT_INO)?;
    fs.write_inode(LOST_FOUND_INO, &lost)?;

    let entry = super::dirent::DirEntry { inode: LOST_FOUND_INO, rec_len: 0, file_type: super::dirent::FT_DIR, name: b"lost+found".to_vec() };
    fs.dir_insert(ROOT_INO, &mut root, &entry)?;
    fs.write_inode(ROOT_INO, &root)
}

/// Copies the superblock and descriptor table to every backup group.
fn write_backups(fs: &mut Filesystem) -> Result<()> {
    let gdt_blocks = fs.gdt_blocks();
    let mut table = Vec::with_capacity((gdt_blocks * BLOCK_SIZE) as usize);
    for block in fs.gdt_start()..fs.gdt_start() + gdt_blocks {
        table.extend_from_slice(fs.read_block(block)?);
    }
    for group in 1..fs.groups.len() as u32 {
        if !sb::group_has_backup(group) {
            continue;
        }
        let mut superblock = fs.sb.encode();
        superblock[sb::BLOCK_GROUP_NR..sb::BLOCK_GROUP_NR + 2].copy_from_slice(&(group as u16).to_le_bytes());
        sb::set_checksum(&mut superblock);
        let mut first = vec![0u8; BLOCK_SIZE as usize];
        first[..SUPERBLOCK_SIZE].copy_from_slice(&superblock);
        let at = fs.group_first_block(group) * BLOCK_SIZE;
        fs.device.write_at(at, &first)?;
        fs.device.write_at(at + BLOCK_SIZE, &table)?;
    }
    fs.device.flush()?;
    Ok(())
}
