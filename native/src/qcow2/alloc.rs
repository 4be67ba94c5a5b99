//! Cluster allocation, refcount updates and metadata write-back of a
//! writable image.
//!
//! Allocation appends at `next_free` and never reuses freed clusters, so the
//! same sequence of writes always produces the same file. Refcounts only go
//! from 0 to 1, except for old refcount tables released after a table grows.

use std::os::unix::fs::FileExt;

use super::entry::{RefcountTableEntry, OFFSET_MASK};
use super::error::{Qcow2Error, Result};
use super::image::{Qcow2Image, Refcounts};
use super::refcount;

impl Qcow2Image {
    fn refcounts_mut(&mut self) -> Result<&mut Refcounts> {
        let path = &self.path;
        self.refcounts.as_mut().ok_or_else(|| Qcow2Error::ReadOnly { file: path.clone() })
    }

    fn refcounts_per_block(&self) -> u64 {
        refcount::entries_per_block(self.cluster_size(), self.header.refcount_order)
    }

    /// Reserves `count` contiguous clusters at the end of the file without
    /// setting their refcounts; the caller sets them.
    pub(super) fn reserve_clusters(&mut self, count: u64) -> u64 {
        let cluster_size = self.cluster_size();
        let refcounts = self.refcounts.as_mut().expect("only writable images allocate");
        let offset = refcounts.next_free;
        refcounts.next_free += count * cluster_size;
        self.file_len = self.file_len.max(refcounts.next_free);
        offset
    }

    /// Allocates one cluster with refcount 1 and returns its host offset.
    /// Clusters that already have a refcount (metadata QEMU placed past the
    /// end of the file) are skipped.
    pub(super) fn allocate_cluster(&mut self) -> Result<u64> {
        self.refcounts_mut()?;
        loop {
            let offset = self.reserve_clusters(1);
            if self.refcount(offset)? == 0 {
                self.set_refcount(offset, 1)?;
                return Ok(offset);
            }
        }
    }

    /// Returns the refcount of the cluster at host `offset`.
    pub(super) fn refcount(&mut self, offset: u64) -> Result<u64> {
        let (block_index, entry_index) = self.refcount_indexes(offset);
        let order = self.header.refcount_order;
        let refcounts = self.refcounts_mut()?;
        let block_offset = refcounts.table.get(block_index).copied().unwrap_or(0) & !0x1ff;
        if block_offset == 0 {
            return Ok(0);
        }
        self.load_refcount_block(block_offset)?;
        let block = self.refcounts_mut()?.blocks.get_mut(block_offset).expect("loaded above");
        Ok(refcount::get(&block.value, entry_index, order))
    }

    fn refcount_indexes(&self, offset: u64) -> (usize, u64) {
        let cluster_index = offset / self.cluster_size();
        let per_block = self.refcounts_per_block();
        ((cluster_index / per_block) as usize, cluster_index % per_block)
    }

    /// Sets the refcount of the cluster at host `offset`, growing the
    /// refcount table and allocating a refcount block when needed.
    pub(super) fn set_refcount(&mut self, offset: u64, value: u64) -> Result<()> {
        let order = self.header.refcount_order;
        if value > refcount::max_refcount(order) {
            return Err(Qcow2Error::unsupported(
                &self.path,
                offset,
                "refcount above the refcount_order maximum",
                value,
            ));
        }
        let (block_index, entry_index) = self.refcount_indexes(offset);
        if block_index >= self.refcounts_mut()?.table.len() {
            self.grow_refcount_table(block_index)?;
        }

        let mut block_offset = self.refcounts_mut()?.table[block_index] & !0x1ff;
        if block_offset == 0 {
            block_offset = self.add_refcount_block(block_index)?;
        }
        self.load_refcount_block(block_offset)?;
        let block = self.refcounts_mut()?.blocks.get_mut(block_offset).expect("loaded above");
        refcount::set(&mut block.value, entry_index, order, value);
        block.dirty = true;
        self.unsynced = true;
        Ok(())
    }

    /// Allocates a zeroed refcount block for table entry `block_index` and
    /// counts the block's own cluster.
    fn add_refcount_block(&mut self, block_index: usize) -> Result<u64> {
        self.make_room_for_refcount_block()?;
        let block_offset = self.reserve_clusters(1);
        let cluster_size = self.cluster_size() as usize;
        let refcounts = self.refcounts_mut()?;
        refcounts.table[block_index] = RefcountTableEntry { block_offset }.encode();
        refcounts.table_dirty = true;
        refcounts.blocks.insert(block_offset, vec![0u8; cluster_size], true);
        self.set_refcount(block_offset, 1)?;
        Ok(block_offset)
    }

    fn load_refcount_block(&mut self, block_offset: u64) -> Result<()> {
        if self.refcounts_mut()?.blocks.contains(block_offset) {
            return Ok(());
        }
        let mut block = vec![0u8; self.cluster_size() as usize];
        self.read_host(block_offset, &mut block)?;
        self.make_room_for_refcount_block()?;
        self.refcounts_mut()?.blocks.insert(block_offset, block, false);
        Ok(())
    }

    /// Evicts the least recently used refcount block when the cache is
    /// full; a dirty victim is written with all other dirty metadata.
    fn make_room_for_refcount_block(&mut self) -> Result<()> {
        let refcounts = self.refcounts_mut()?;
        if !refcounts.blocks.is_full() || refcounts.growing {
            return Ok(());
        }
        let victim = refcounts.blocks.oldest().expect("a full cache has entries");
        if refcounts.blocks.get_mut(victim).is_some_and(|entry| entry.dirty) {
            self.write_metadata(false)?;
        }
        self.refcounts_mut()?.blocks.remove(victim);
        Ok(())
    }

    /// Moves the refcount table to a larger run of clusters at the end of
    /// the file, so that it has an entry for `needed_index`. The new table
    /// covers its own clusters and the blocks that count them; the old
    /// table's clusters are released once the header points elsewhere.
    fn grow_refcount_table(&mut self, needed_index: usize) -> Result<()> {
        let cluster_size = self.cluster_size();
        let entries_per_cluster = cluster_size / 8;
        let per_block = self.refcounts_per_block();
        let old_offset = self.header.refcount_table_offset;
        let old_clusters = u64::from(self.header.refcount_table_clusters);

        let mut clusters = (old_clusters * 2).max((needed_index as u64 + 1).div_ceil(entries_per_cluster));
        let next_cluster = self.refcounts_mut()?.next_free / cluster_size;
        while clusters * entries_per_cluster * per_block < next_cluster + 2 * clusters + 2 {
            clusters *= 2;
        }
        if clusters * cluster_size > super::image::MAX_REFCOUNT_TABLE_BYTES {
            return Err(Qcow2Error::invalid(format!("refcount table of {clusters} clusters exceeds 8 MiB")));
        }

        let new_offset = self.reserve_clusters(clusters);
        let refcounts = self.refcounts_mut()?;
        refcounts.table.resize((clusters * entries_per_cluster) as usize, 0);
        refcounts.table_dirty = true;
        refcounts.table_moved = true;
        refcounts.pending_free.extend((0..old_clusters).map(|index| old_offset + index * cluster_size));
        self.header.refcount_table_offset = new_offset;
        self.header.refcount_table_clusters = clusters as u32;

        self.refcounts_mut()?.growing = true;
        let counted = (0..clusters).try_for_each(|index| self.set_refcount(new_offset + index * cluster_size, 1));
        self.refcounts_mut()?.growing = false;
        counted
    }

    /// Rejects a write of `length` bytes at host `offset` that would land on
    /// the header cluster, the L1 table or the refcount table, which only
    /// happens when a corrupt table points there. `field_offset` is where
    /// the offending pointer is stored.
    pub(super) fn check_overlap(&self, offset: u64, length: u64, field: &'static str, field_offset: u64) -> Result<()> {
        let cluster_size = self.cluster_size();
        let l1_bytes = (u64::from(self.header.l1_size) * 8).div_ceil(cluster_size) * cluster_size;
        let refcount_bytes = u64::from(self.header.refcount_table_clusters) * cluster_size;
        let protected = [
            (0, cluster_size),
            (self.header.l1_table_offset, l1_bytes),
            (self.header.refcount_table_offset, refcount_bytes),
        ];
        let end = offset.saturating_add(length);
        for (start, size) in protected {
            if offset < start + size && start < end {
                let expected = "a cluster outside the header, L1 table and refcount table";
                return Err(Qcow2Error::corrupt(&self.path, field_offset, field, offset, expected));
            }
        }
        Ok(())
    }

    fn write_at(&self, offset: u64, bytes: &[u8]) -> Result<()> {
        self.file.write_all_at(bytes, offset).map_err(|error| Qcow2Error::io(&self.path, Some(offset), error))
    }

    /// Waits until everything written so far is on stable storage, when
    /// `barrier` is set.
    fn barrier(&self, barrier: bool) -> Result<()> {
        if !barrier {
            return Ok(());
        }
        self.file.sync_data().map_err(|error| Qcow2Error::io(&self.path, None, error))
    }

    /// Writes all dirty metadata in the order that keeps the file
    /// consistent after each step: nothing on disk refers to a cluster
    /// before the cluster's contents and refcount are there.
    ///
    /// 1. data clusters (already written by the write path),
    /// 2. refcount blocks,
    /// 3. the refcount table, then the header if the table moved,
    /// 4. L2 tables,
    /// 5. the L1 table,
    /// 6. the header,
    /// 7. refcounts of released clusters (old refcount tables), which drop
    ///    only after the header stops pointing at them.
    ///
    /// With `barrier`, each step is synced before the next starts; without
    /// it (cache evictions), the order is kept only for the page cache.
    pub(super) fn write_metadata(&mut self, barrier: bool) -> Result<()> {
        let Some(refcounts) = self.refcounts.as_ref() else { return Ok(()) };
        if !self.unsynced {
            return Ok(());
        }
        let next_free = refcounts.next_free;
        if self.file.metadata().map_err(|error| Qcow2Error::io(&self.path, None, error))?.len() < next_free {
            self.file.set_len(next_free).map_err(|error| Qcow2Error::io(&self.path, None, error))?;
        }
        self.barrier(barrier)?;

        let table_moved = self.write_refcounts()?;
        if table_moved {
            self.write_header()?;
        }
        self.barrier(barrier)?;

        self.write_l2_tables()?;
        self.barrier(barrier)?;

        self.write_l1()?;
        if self.header_dirty {
            self.write_header()?;
        }
        self.barrier(barrier)?;

        self.release_pending()?;
        self.barrier(barrier)?;
        self.unsynced = !barrier;
        Ok(())
    }

    /// Writes dirty refcount blocks, then the table; returns whether the
    /// table moved since the last write.
    fn write_refcounts(&mut self) -> Result<bool> {
        let dirty = self.refcounts.as_ref().expect("checked by the caller").blocks.dirty_offsets();
        for offset in dirty {
            let refcounts = self.refcounts.as_mut().expect("checked by the caller");
            let entry = refcounts.blocks.get_mut(offset).expect("listed as dirty");
            entry.dirty = false;
            let bytes = entry.value.clone();
            self.check_overlap(offset, bytes.len() as u64, "refcount table entry", self.header.refcount_table_offset)?;
            self.write_at(offset, &bytes)?;
        }

        let refcounts = self.refcounts.as_mut().expect("checked by the caller");
        if !refcounts.table_dirty {
            return Ok(false);
        }
        let bytes: Vec<u8> = refcounts.table.iter().flat_map(|raw| raw.to_be_bytes()).collect();
        let moved = refcounts.table_moved;
        refcounts.table_dirty = false;
        refcounts.table_moved = false;
        self.write_at(self.header.refcount_table_offset, &bytes)?;
        Ok(moved)
    }

    fn write_l2_tables(&mut self) -> Result<()> {
        for offset in self.l2_cache.dirty_offsets() {
            let entry = self.l2_cache.get_mut(offset).expect("listed as dirty");
            entry.dirty = false;
            let bytes: Vec<u8> = entry.value.iter().flat_map(|raw| raw.to_be_bytes()).collect();
            self.check_overlap(offset, bytes.len() as u64, "L1 entry", self.header.l1_table_offset)?;
            self.write_at(offset, &bytes)?;
        }
        Ok(())
    }

    fn write_l1(&mut self) -> Result<()> {
        if !self.l1_dirty {
            return Ok(());
        }
        let bytes: Vec<u8> = self.l1.iter().flat_map(|raw| raw.to_be_bytes()).collect();
        self.write_at(self.header.l1_table_offset, &bytes)?;
        self.l1_dirty = false;
        Ok(())
    }

    /// Writes the header fields this engine decodes (the first 72 or 104
    /// bytes), preserving additional fields and extensions after them.
    fn write_header(&mut self) -> Result<()> {
        let bytes = self.header.encode();
        let known = bytes.len().min(super::header::V3_HEADER_LENGTH as usize);
        self.write_at(0, &bytes[..known])?;
        self.header_dirty = false;
        Ok(())
    }

    fn release_pending(&mut self) -> Result<()> {
        let pending = std::mem::take(&mut self.refcounts.as_mut().expect("checked by the caller").pending_free);
        if pending.is_empty() {
            return Ok(());
        }
        for offset in pending {
            let count = self.refcount(offset)?;
            self.set_refcount(offset, count.saturating_sub(1))?;
        }
        self.write_refcounts()?;
        Ok(())
    }

    /// Writes all metadata with barriers and syncs the file. Images opened
    /// read-only have nothing to write.
    pub fn flush(&mut self) -> Result<()> {
        self.write_metadata(true)
    }

    /// Forgets unwritten metadata, so that dropping the image writes nothing.
    pub(super) fn discard(&mut self) {
        self.refcounts = None;
        self.unsynced = false;
    }

    /// Flushes and closes the image. The dirty bit is never set by this
    /// engine (lazy refcounts are not used), so nothing is left to clear.
    pub fn close(mut self) -> Result<()> {
        self.flush()
    }

    /// Returns the host offset of the L2 entry for the guest offset, or 0
    /// when its L2 table is unallocated.
    pub(super) fn l2_entry_offset(&self, guest_offset: u64) -> u64 {
        let (l1_index, l2_index) = self.table_indexes(guest_offset);
        match self.l1.get(l1_index).map_or(0, |raw| raw & OFFSET_MASK) {
            0 => 0,
            l2_offset => l2_offset + l2_index as u64 * 8,
        }
    }
}
