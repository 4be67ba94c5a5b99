//! Block and inode allocation.
//!
//! New blocks and inodes of a layer go to fresh regions: in each group the
//! allocator starts after the last block (or inode) any lower layer used,
//! rounded up to the layer file's cluster size, and moves forward from
//! there. Blocks freed by this or a lower layer lie behind that frontier
//! and are reused only when the fresh region is exhausted, because writing
//! them would dirty clusters that already hold lower-layer data.

use super::bitmap;
use super::error::{Ext4Error, Result};
use super::fs::Filesystem;
use super::group_desc::{FLAG_BLOCK_UNINIT, FLAG_INODE_UNINIT};

/// Search positions of the allocator, cloned into the undo log.
#[derive(Clone, Debug, Default)]
pub(crate) struct AllocState {
    /// Next block to try, or `None` before the first allocation.
    block_cursor: Option<u64>,
    /// Highest group whose frontier has been applied to `block_cursor`.
    block_group: Option<u32>,
    /// The fresh region is used up: allocate first-fit from now on.
    blocks_exhausted: bool,
    inode_cursor: Option<u32>,
    inode_group: Option<u32>,
    inodes_exhausted: bool,
}

fn no_space(what: &'static str) -> Ext4Error {
    Ext4Error::NoSpace { path: String::new(), what }
}

impl Filesystem {
    fn cluster_blocks(&self) -> u64 {
        (self.options.cluster_size / self.block_size as u64).max(1)
    }

    /// Returns the block bitmap of `group`. For an uninitialised group this
    /// is the bitmap it implies: its superblock backup, any metadata placed
    /// in it, and the padding past the end of a short last group.
    pub(crate) fn block_bitmap(&mut self, group: u32) -> Result<Vec<u8>> {
        let desc = self.groups[group as usize];
        if desc.flags & FLAG_BLOCK_UNINIT == 0 {
            self.check_bitmap(group, false)?;
            return Ok(self.read_block(desc.block_bitmap)?.to_vec());
        }
        Ok(self.implied_block_bitmap(group))
    }

    fn implied_block_bitmap(&self, group: u32) -> Vec<u8> {
        let mut bits = vec![0u8; self.block_size];
        bitmap::set_range(&mut bits, 0, self.backup_blocks(group) as usize);
        let first = self.group_first_block(group);
        let count = self.group_block_count(group);
        for desc in &self.groups {
            let table_blocks = (self.sb.inodes_per_group as u64 * self.sb.inode_size as u64).div_ceil(self.block_size as u64);
            let mut mark = |start: u64, len: u64| {
                for block in start..start + len {
                    if block >= first && block < first + count {
                        bitmap::set(&mut bits, (block - first) as usize);
                    }
                }
            };
            mark(desc.block_bitmap, 1);
            mark(desc.inode_bitmap, 1);
            mark(desc.inode_table, table_blocks);
        }
        bitmap::set_range(&mut bits, count as usize, self.sb.blocks_per_group as usize);
        bits
    }

    /// Checks a bitmap from disk against the checksum in its group
    /// descriptor, once per session and before this session changes it.
    fn check_bitmap(&mut self, group: u32, inodes: bool) -> Result<()> {
        let desc = self.groups[group as usize];
        let (block, expected, bits) = if inodes {
            (desc.inode_bitmap, desc.inode_bitmap_csum, self.sb.inodes_per_group as usize)
        } else {
            (desc.block_bitmap, desc.block_bitmap_csum, self.sb.blocks_per_group as usize)
        };
        if !self.sb.has_metadata_csum() || self.verified_bitmaps.contains(&block) {
            return Ok(());
        }
        let seed = self.csum_seed;
        if bitmap::checksum(self.read_block(block)?, bits, seed) != expected {
            let kind = if inodes { "inode" } else { "block" };
            let offset = block * self.block_size as u64;
            return Err(Ext4Error::corrupt(format!("{kind} bitmap of group {group} has a bad checksum"), Some(offset)));
        }
        self.verified_bitmaps.insert(block);
        Ok(())
    }

    /// Returns the group's bitmap for modification, initialising it first
    /// when the group was uninitialised.
    fn block_bitmap_mut(&mut self, group: u32) -> Result<&mut [u8]> {
        let desc = self.groups[group as usize];
        if desc.flags & FLAG_BLOCK_UNINIT != 0 {
            let bits = self.implied_block_bitmap(group);
            self.cache.write_new(desc.block_bitmap).copy_from_slice(&bits);
            self.verified_bitmaps.insert(desc.block_bitmap);
            self.group_mut(group).flags &= !FLAG_BLOCK_UNINIT;
        }
        self.check_bitmap(group, false)?;
        self.write_block(desc.block_bitmap)
    }

    /// First block of the fresh region of `group`: after the last used
    /// block, rounded up to a cluster boundary.
    fn block_frontier(&mut self, group: u32) -> Result<u64> {
        let bits = self.block_bitmap(group)?;
        let used = bitmap::end_of_used(&bits, self.group_block_count(group) as usize) as u64;
        let cluster = self.cluster_blocks();
        Ok((self.group_first_block(group) + used).div_ceil(cluster) * cluster)
    }

    /// Allocates up to `want` contiguous blocks and returns the first block
    /// and the count, which may be less than `want`.
    pub(crate) fn allocate_blocks(&mut self, want: u64) -> Result<(u64, u64)> {
        if !self.alloc.blocks_exhausted {
            if let Some(run) = self.allocate_fresh(want)? {
                return Ok(run);
            }
            self.alloc.blocks_exhausted = true;
        }
        self.allocate_first_fit(want)
    }

    fn allocate_fresh(&mut self, want: u64) -> Result<Option<(u64, u64)>> {
        let mut cursor = self.alloc.block_cursor.unwrap_or(self.sb.first_data_block as u64);
        while cursor < self.sb.blocks_count {
            let group = self.group_of_block(cursor);
            if self.alloc.block_group.map_or(true, |entered| entered < group) {
                cursor = cursor.max(self.block_frontier(group)?);
                self.alloc.block_group = Some(group);
                if cursor >= self.sb.blocks_count || self.group_of_block(cursor) != group {
                    continue;
                }
            }
            let first = self.group_first_block(group);
            let end = first + self.group_block_count(group);
            let run = if self.groups[group as usize].free_blocks_count == 0 {
                None
            } else {
                self.find_run(group, (cursor - first) as usize, want)?
            };
            match run {
                Some((start, len)) => {
                    self.mark_blocks(start, len, true)?;
                    self.alloc.block_cursor = Some(start + len);
                    return Ok(Some((start, len)));
                }
                None => cursor = end,
            }
        }
        self.alloc.block_cursor = Some(cursor);
        Ok(None)
    }

    fn allocate_first_fit(&mut self, want: u64) -> Result<(u64, u64)> {
        for group in 0..self.groups.len() as u32 {
            if self.groups[group as usize].free_blocks_count == 0 {
                continue;
            }
            if let Some((start, len)) = self.find_run(group, 0, want)? {
                self.mark_blocks(start, len, true)?;
                return Ok((start, len));
            }
        }
        Err(no_space("data blocks"))
    }

    /// Finds the first free run in `group` at or after bit `from`.
    fn find_run(&mut self, group: u32, from: usize, want: u64) -> Result<Option<(u64, u64)>> {
        let bits = self.block_bitmap(group)?;
        let count = self.group_block_count(group) as usize;
        let Some(start) = bitmap::find_clear(&bits, from, count) else { return Ok(None) };
        let mut end = start + 1;
        while end < count && (end - start) < want as usize && !bitmap::get(&bits, end) {
            end += 1;
        }
        Ok(Some((self.group_first_block(group) + start as u64, (end - start) as u64)))
    }

    /// Sets (`used`) or clears the bits of `len` blocks from `start` and
    /// adjusts the free counts.
    pub(crate) fn mark_blocks(&mut self, start: u64, len: u64, used: bool) -> Result<()> {
        let mut block = start;
        while block < start + len {
            let group = self.group_of_block(block);
            let first = self.group_first_block(group);
            let end = (first + self.group_block_count(group)).min(start + len);
            let bits = self.block_bitmap_mut(group)?;
            for b in block..end {
                let bit = (b - first) as usize;
                if bitmap::get(bits, bit) == used {
                    let state = if used { "in use" } else { "free" };
                    return Err(Ext4Error::corrupt(format!("block {b} is already {state}"), None));
                }
                if used {
                    bitmap::set(bits, bit);
                } else {
                    bitmap::clear(bits, bit);
                }
            }
            let desc = self.group_mut(group);
            if used {
                desc.free_blocks_count -= (end - block) as u32;
            } else {
                desc.free_blocks_count += (end - block) as u32;
            }
            block = end;
        }
        if !used {
            for b in start..start + len {
                self.cache.forget(b);
            }
        }
        Ok(())
    }

    pub(crate) fn free_blocks(&mut self, start: u64, len: u64) -> Result<()> {
        self.mark_blocks(start, len, false)
    }

    // ---- Inodes ----

    fn inode_bitmap_mut(&mut self, group: u32) -> Result<&mut [u8]> {
        let desc = self.groups[group as usize];
        if desc.flags & FLAG_INODE_UNINIT != 0 {
            let ipg = self.sb.inodes_per_group as usize;
            let bits = self.cache.write_new(desc.inode_bitmap);
            bitmap::set_range(bits, ipg, bits.len() * 8);
            self.verified_bitmaps.insert(desc.inode_bitmap);
            self.group_mut(group).flags &= !FLAG_INODE_UNINIT;
        }
        self.check_bitmap(group, true)?;
        self.write_block(desc.inode_bitmap)
    }

    fn inode_bitmap(&mut self, group: u32) -> Result<Option<Vec<u8>>> {
        let desc = self.groups[group as usize];
        if desc.flags & FLAG_INODE_UNINIT != 0 {
            return Ok(None);
        }
        self.check_bitmap(group, true)?;
        Ok(Some(self.read_block(desc.inode_bitmap)?.to_vec()))
    }

    /// First inode index of the fresh region of `group`: after the last
    /// used inode, rounded so its inode table bytes start a new cluster.
    fn inode_frontier(&mut self, group: u32) -> Result<u32> {
        let ipg = self.sb.inodes_per_group as usize;
        let used = match self.inode_bitmap(group)? {
            Some(bits) => bitmap::end_of_used(&bits, ipg) as u64,
            None => 0,
        };
        let inode_size = self.sb.inode_size as u64;
        let table = self.groups[group as usize].inode_table * self.block_size as u64;
        let cluster = self.options.cluster_size.max(inode_size);
        let aligned = (table + used * inode_size).div_ceil(cluster) * cluster;
        let index = (aligned - table) / inode_size;
        Ok(index.min(ipg as u64) as u32)
    }

    /// Allocates an inode number; `directory` counts it in `used_dirs`.
    pub(crate) fn allocate_inode(&mut self, directory: bool) -> Result<u32> {
        let ino = if self.alloc.inodes_exhausted { None } else { self.allocate_inode_fresh()? };
        let ino = match ino {
            Some(ino) => ino,
            None => {
                self.alloc.inodes_exhausted = true;
                self.allocate_inode_first_fit()?
            }
        };
        self.mark_inode(ino, true, directory)?;
        Ok(ino)
    }

    fn allocate_inode_fresh(&mut self) -> Result<Option<u32>> {
        let ipg = self.sb.inodes_per_group;
        let mut cursor = self.alloc.inode_cursor.unwrap_or(self.sb.first_ino);
        while cursor <= self.sb.inodes_count {
            let group = (cursor - 1) / ipg;
            let first = group * ipg + 1;
            if self.alloc.inode_group.map_or(true, |entered| entered < group) {
                cursor = cursor.max(first + self.inode_frontier(group)?);
                self.alloc.inode_group = Some(group);
                if cursor >= first + ipg {
                    cursor = first + ipg;
                    continue;
                }
            }
            let found = if self.groups[group as usize].free_inodes_count == 0 {
                None
            } else {
                match self.inode_bitmap(group)? {
                    Some(bits) => bitmap::find_clear(&bits, (cursor - first) as usize, ipg as usize),
                    None => Some((cursor - first) as usize),
                }
            };
            match found {
                Some(index) => {
                    let ino = first + index as u32;
                    self.alloc.inode_cursor = Some(ino + 1);
                    return Ok(Some(ino));
                }
                None => cursor = first + ipg,
            }
        }
        self.alloc.inode_cursor = Some(cursor);
        Ok(None)
    }

    fn allocate_inode_first_fit(&mut self) -> Result<u32> {
        let ipg = self.sb.inodes_per_group;
        for group in 0..self.groups.len() as u32 {
            if self.groups[group as usize].free_inodes_count == 0 {
                continue;
            }
            let from = if group == 0 { self.sb.first_ino as usize - 1 } else { 0 };
            let index = match self.inode_bitmap(group)? {
                Some(bits) => bitmap::find_clear(&bits, from, ipg as usize),
                None => Some(from),
            };
            if let Some(index) = index {
                return Ok(group * ipg + 1 + index as u32);
            }
        }
        Err(no_space("inodes"))
    }

    /// Sets or clears the bitmap bit of `ino` and adjusts the counts.
    pub(crate) fn mark_inode(&mut self, ino: u32, used: bool, directory: bool) -> Result<()> {
        let ipg = self.sb.inodes_per_group;
        let group = (ino - 1) / ipg;
        let bit = ((ino - 1) % ipg) as usize;
        let bits = self.inode_bitmap_mut(group)?;
        if bitmap::get(bits, bit) == used {
            return Err(Ext4Error::corrupt(format!("inode {ino} is already {}", if used { "in use" } else { "free" }), None));
        }
        if used {
            bitmap::set(bits, bit);
        } else {
            bitmap::clear(bits, bit);
        }
        let desc = self.group_mut(group);
        if used {
            desc.free_inodes_count -= 1;
            desc.used_dirs_count += directory as u32;
        } else {
            desc.free_inodes_count += 1;
            desc.used_dirs_count -= directory as u32;
        }
        Ok(())
    }
}
