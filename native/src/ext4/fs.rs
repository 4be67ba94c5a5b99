//! An open ext4 filesystem: geometry, inode access, and the commit step.
//!
//! Every metadata change goes through the block cache and the in-memory
//! group descriptors. Each public operation runs under an undo log, so an
//! operation that fails leaves the filesystem as it was before the call.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::alloc::AllocState;
use super::bitmap;
use super::cache::BlockCache;
use super::data::FileWriter;
use super::error::{Ext4Error, Result};
use super::group_desc::{self, GroupDesc, FLAG_BLOCK_UNINIT, FLAG_INODE_UNINIT};
use super::inode::{self, Inode, INODE_SIZE};
use super::superblock::{self, Superblock, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE};
use crate::block::BlockDevice;

/// Clean blocks the cache may hold before it drops them, between operations.
const CACHE_MAX_BLOCKS: usize = 65536;

/// Options for opening an existing filesystem.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// Allocation granularity of the layer file, in bytes: a layer's first
    /// new block or inode in a group starts on a boundary of this size.
    pub cluster_size: u64,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions { cluster_size: 64 * 1024 }
    }
}

/// Changes to group descriptors and allocator state since the undo log began.
pub(crate) struct Undo {
    groups: HashMap<u32, (GroupDesc, bool)>,
    alloc: AllocState,
}

pub struct Filesystem {
    pub(crate) device: Box<dyn BlockDevice + Send>,
    pub(crate) sb: Superblock,
    pub(crate) groups: Vec<GroupDesc>,
    pub(crate) dirty_groups: BTreeSet<u32>,
    pub(crate) cache: BlockCache,
    pub(crate) alloc: AllocState,
    pub(crate) block_size: usize,
    pub(crate) csum_seed: u32,
    pub(crate) options: OpenOptions,
    pub(crate) undo: Option<Undo>,
    pub(crate) writer: Option<FileWriter>,
    /// Bitmap blocks checked against their descriptor checksums, or made
    /// in this session.
    pub(crate) verified_bitmaps: HashSet<u64>,
    /// The superblock as last read or written, to skip unchanged writes.
    written_superblock: Vec<u8>,
}

impl Filesystem {
    /// Opens the filesystem on `device`, checking the superblock and group
    /// descriptors and rejecting features this writer cannot maintain.
    pub fn open(mut device: Box<dyn BlockDevice + Send>, options: OpenOptions) -> Result<Filesystem> {
        let mut raw = vec![0u8; SUPERBLOCK_SIZE];
        device.read_at(SUPERBLOCK_OFFSET, &mut raw)?;
        let sb = Superblock::decode(&raw)?;
        check_supported(&sb, &raw, device.size())?;

        let mut fs = Filesystem::from_parts(device, sb, Vec::new(), options);
        fs.written_superblock = raw;
        fs.groups = fs.read_group_descs()?;
        Ok(fs)
    }

    /// Builds a filesystem from decoded parts; `format` starts here.
    pub(crate) fn from_parts(
        device: Box<dyn BlockDevice + Send>,
        sb: Superblock,
        groups: Vec<GroupDesc>,
        options: OpenOptions,
    ) -> Filesystem {
        let block_size = sb.block_size() as usize;
        let csum_seed = sb.csum_seed();
        Filesystem {
            device,
            groups,
            dirty_groups: BTreeSet::new(),
            cache: BlockCache::new(block_size),
            alloc: AllocState::default(),
            block_size,
            csum_seed,
            options,
            undo: None,
            writer: None,
            verified_bitmaps: HashSet::new(),
            written_superblock: Vec::new(),
            sb,
        }
    }

    fn read_group_descs(&mut self) -> Result<Vec<GroupDesc>> {
        let count = self.sb.group_count();
        let table = self.gdt_start();
        let per_block = self.block_size / group_desc::DESC_SIZE;
        let mut groups = Vec::with_capacity(count as usize);
        for group in 0..count {
            let block = table + (group as usize / per_block) as u64;
            let at = (group as usize % per_block) * group_desc::DESC_SIZE;
            let bytes = &self.cache.read(self.device.as_mut(), block)?[at..at + group_desc::DESC_SIZE];
            if !group_desc::verify_checksum(bytes, group, self.csum_seed) {
                let offset = block * self.block_size as u64 + at as u64;
                return Err(Ext4Error::corrupt(format!("group descriptor {group} has a bad checksum"), Some(offset)));
            }
            groups.push(GroupDesc::decode(bytes));
        }
        Ok(groups)
    }

    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// First block of the primary group descriptor table.
    pub(crate) fn gdt_start(&self) -> u64 {
        self.sb.first_data_block as u64 + 1
    }

    pub(crate) fn gdt_blocks(&self) -> u64 {
        (self.groups.len().max(self.sb.group_count() as usize) * group_desc::DESC_SIZE).div_ceil(self.block_size) as u64
    }

    pub(crate) fn group_first_block(&self, group: u32) -> u64 {
        self.sb.first_data_block as u64 + group as u64 * self.sb.blocks_per_group as u64
    }

    /// Blocks in `group`; the last group may be short.
    pub(crate) fn group_block_count(&self, group: u32) -> u64 {
        let first = self.group_first_block(group);
        (self.sb.blocks_count - first).min(self.sb.blocks_per_group as u64)
    }

    pub(crate) fn group_of_block(&self, block: u64) -> u32 {
        ((block - self.sb.first_data_block as u64) / self.sb.blocks_per_group as u64) as u32
    }

    /// Blocks at the start of `group` taken by a superblock and descriptor
    /// table backup with its reserved resize blocks, or 0 when the group
    /// has none.
    pub(crate) fn backup_blocks(&self, group: u32) -> u64 {
        if superblock::group_has_backup(group) {
            1 + self.gdt_blocks() + self.sb.reserved_gdt_blocks()
        } else {
            0
        }
    }

    /// Records the descriptor of `group` for the undo log before a change.
    pub(crate) fn group_mut(&mut self, group: u32) -> &mut GroupDesc {
        if let Some(undo) = self.undo.as_mut() {
            let dirty = self.dirty_groups.contains(&group);
            undo.groups.entry(group).or_insert((self.groups[group as usize], dirty));
        }
        self.dirty_groups.insert(group);
        &mut self.groups[group as usize]
    }

    // ---- Inodes ----

    fn inode_location(&self, ino: u32) -> Result<(u64, usize)> {
        if ino == 0 || ino > self.sb.inodes_count {
            return Err(Ext4Error::corrupt(format!("inode number {ino} is out of range"), None));
        }
        let group = (ino - 1) / self.sb.inodes_per_group;
        let index = ((ino - 1) % self.sb.inodes_per_group) as u64;
        let byte = index * self.sb.inode_size as u64;
        let table = self.groups[group as usize].inode_table;
        Ok((table + byte / self.block_size as u64, (byte % self.block_size as u64) as usize))
    }

    pub fn read_inode(&mut self, ino: u32) -> Result<Inode> {
        let (block, at) = self.inode_location(ino)?;
        let size = self.sb.inode_size as usize;
        let bytes = &self.cache.read(self.device.as_mut(), block)?[at..at + size];
        let mut full = [0u8; INODE_SIZE];
        full[..size.min(INODE_SIZE)].copy_from_slice(&bytes[..size.min(INODE_SIZE)]);
        let all_zero = bytes.iter().all(|&b| b == 0);
        if !all_zero && self.sb.has_metadata_csum() && !inode::verify_checksum(&full, ino, self.csum_seed) {
            let offset = block * self.block_size as u64 + at as u64;
            return Err(Ext4Error::corrupt(format!("inode {ino} has a bad checksum"), Some(offset)));
        }
        Ok(Inode::decode(&full))
    }

    pub(crate) fn write_inode(&mut self, ino: u32, inode: &Inode) -> Result<()> {
        let (block, at) = self.inode_location(ino)?;
        let bytes = inode.encode(ino, self.csum_seed);
        let data = self.cache.write(self.device.as_mut(), block)?;
        data[at..at + INODE_SIZE].copy_from_slice(&bytes);
        Ok(())
    }

    /// Per-inode checksum seed for the blocks an inode owns.
    pub(crate) fn inode_seed(&self, ino: u32, inode: &Inode) -> u32 {
        inode::inode_csum_seed(self.csum_seed, ino, inode.generation)
    }

    // ---- Block I/O ----

    pub(crate) fn read_block(&mut self, block: u64) -> Result<&[u8]> {
        self.check_block(block)?;
        self.cache.read(self.device.as_mut(), block)
    }

    pub(crate) fn write_block(&mut self, block: u64) -> Result<&mut [u8]> {
        self.check_block(block)?;
        self.cache.write(self.device.as_mut(), block)
    }

    fn check_block(&self, block: u64) -> Result<()> {
        if block == 0 || block >= self.sb.blocks_count {
            return Err(Ext4Error::corrupt(format!("block number {block} is outside the filesystem"), None));
        }
        Ok(())
    }

    // ---- Undo log ----

    /// Runs `operation` under the undo log: on error, every change it made
    /// to metadata is rolled back before the error is returned.
    pub(crate) fn transaction<T>(&mut self, operation: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.begin();
        let result = operation(self);
        match result {
            Ok(value) => {
                self.end();
                Ok(value)
            }
            Err(error) => {
                self.rollback();
                Err(error)
            }
        }
    }

    pub(crate) fn begin(&mut self) {
        self.cache.begin();
        self.undo = Some(Undo { groups: HashMap::new(), alloc: self.alloc.clone() });
    }

    pub(crate) fn end(&mut self) {
        self.cache.end();
        self.undo = None;
        self.cache.trim(CACHE_MAX_BLOCKS);
    }

    pub(crate) fn rollback(&mut self) {
        self.cache.rollback();
        let Some(undo) = self.undo.take() else { return };
        for (group, (desc, dirty)) in undo.groups {
            self.groups[group as usize] = desc;
            if !dirty {
                self.dirty_groups.remove(&group);
            }
        }
        self.alloc = undo.alloc;
    }

    // ---- Commit ----

    /// Writes every change to the device: bitmaps with their checksums,
    /// group descriptors, inodes and directory blocks, then the superblock
    /// with recounted free totals, and flushes the device.
    pub fn commit(&mut self) -> Result<()> {
        if self.writer.is_some() {
            return Err(Ext4Error::InvalidState { message: "a file is still open for writing; finish or abort it before commit".into() });
        }
        self.update_group_checksums()?;
        self.encode_group_descs()?;
        self.encode_superblock()?;

        // Blocks go out in ascending order, so each cluster of the layer
        // file is written once. Nothing is durable until the flush.
        self.cache.flush(self.device.as_mut())?;
        self.device.flush()?;
        Ok(())
    }

    /// Recomputes bitmap checksums and `itable_unused` of changed groups.
    fn update_group_checksums(&mut self) -> Result<()> {
        let groups: Vec<u32> = self.dirty_groups.iter().copied().collect();
        let blocks_bits = self.sb.blocks_per_group as usize;
        let inode_bits = self.sb.inodes_per_group as usize;
        for group in groups {
            let desc = self.groups[group as usize];
            if desc.flags & FLAG_BLOCK_UNINIT == 0 {
                let data = self.cache.read(self.device.as_mut(), desc.block_bitmap)?;
                self.groups[group as usize].block_bitmap_csum = bitmap::checksum(data, blocks_bits, self.csum_seed);
            }
            if desc.flags & FLAG_INODE_UNINIT == 0 {
                let data = self.cache.read(self.device.as_mut(), desc.inode_bitmap)?;
                let checksum = bitmap::checksum(data, inode_bits, self.csum_seed);
                let used = bitmap::end_of_used(data, inode_bits);
                let desc = &mut self.groups[group as usize];
                desc.inode_bitmap_csum = checksum;
                desc.itable_unused = (inode_bits - used) as u32;
            }
        }
        Ok(())
    }

    fn encode_group_descs(&mut self) -> Result<()> {
        let per_block = self.block_size / group_desc::DESC_SIZE;
        let table = self.gdt_start();
        let groups: Vec<u32> = std::mem::take(&mut self.dirty_groups).into_iter().collect();
        for group in groups {
            let block = table + (group as usize / per_block) as u64;
            let at = (group as usize % per_block) * group_desc::DESC_SIZE;
            let bytes = self.groups[group as usize].encode(group, self.csum_seed);
            self.cache.write(self.device.as_mut(), block)?[at..at + group_desc::DESC_SIZE].copy_from_slice(&bytes);
        }
        Ok(())
    }

    fn encode_superblock(&mut self) -> Result<()> {
        self.sb.free_blocks_count = self.groups.iter().map(|g| g.free_blocks_count as u64).sum();
        self.sb.free_inodes_count = self.groups.iter().map(|g| g.free_inodes_count).sum();
        let bytes = self.sb.encode();
        if bytes == self.written_superblock {
            return Ok(());
        }
        let block = SUPERBLOCK_OFFSET / self.block_size as u64;
        let at = (SUPERBLOCK_OFFSET % self.block_size as u64) as usize;
        self.cache.write(self.device.as_mut(), block)?[at..at + SUPERBLOCK_SIZE].copy_from_slice(&bytes);
        self.written_superblock = bytes;
        Ok(())
    }

    /// Flushes and returns the device, for callers that wrap it.
    pub fn into_device(self) -> Box<dyn BlockDevice + Send> {
        self.device
    }
}

fn check_supported(sb: &Superblock, raw: &[u8], device_size: u64) -> Result<()> {
    let unsupported = |message: String| Err(Ext4Error::Unsupported { message });
    if sb.has_metadata_csum() && !superblock::verify_checksum(raw) {
        return Err(Ext4Error::corrupt("superblock checksum does not match", Some(SUPERBLOCK_OFFSET + superblock::CHECKSUM as u64)));
    }

    if sb.block_size() != 4096 {
        return unsupported(format!("block size {} (only 4096 is supported)", sb.block_size()));
    }

    if sb.inode_size as usize != INODE_SIZE {
        return unsupported(format!("inode size {} (only 256 is supported)", sb.inode_size));
    }

    let incompat = sb.feature_incompat & !superblock::INCOMPAT_SUPPORTED;
    if incompat != 0 {
        let hint = if incompat & superblock::INCOMPAT_RECOVER != 0 { "; the journal needs recovery, run e2fsck first" } else { "" };
        return unsupported(format!("incompatible features {incompat:#x}{hint}"));
    }

    let ro_compat = sb.feature_ro_compat & !superblock::RO_COMPAT_SUPPORTED;
    if ro_compat != 0 {
        return unsupported(format!("read-only-compatible features {ro_compat:#x}"));
    }

    if sb.feature_incompat & superblock::INCOMPAT_64BIT == 0 || sb.desc_size as usize != group_desc::DESC_SIZE {
        return unsupported("group descriptors other than 64-byte (64bit)".into());
    }

    if sb.blocks_per_group as u64 != sb.block_size() * 8 || sb.inodes_per_group == 0 || sb.inodes_per_group as u64 > sb.block_size() * 8 {
        return Err(Ext4Error::corrupt("blocks or inodes per group are out of range", Some(SUPERBLOCK_OFFSET)));
    }

    if sb.blocks_count * sb.block_size() > device_size {
        return Err(Ext4Error::corrupt(
            format!("filesystem has {} blocks but the device holds {device_size} bytes", sb.blocks_count),
            Some(SUPERBLOCK_OFFSET + superblock::BLOCKS_COUNT_LO as u64),
        ));
    }

    Ok(())
}
