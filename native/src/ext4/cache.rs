//! The block cache between the ext4 writer and its device.
//!
//! Metadata blocks are read once and modified in memory. Dirty blocks stay
//! here until `flush`, which writes them in ascending order and merges
//! neighbours, so each touched qcow2 cluster is written once per layer.
//! An undo log lets a failed operation put every block back as it was.

use std::collections::{BTreeSet, HashMap};

use super::error::Result;
use crate::block::BlockDevice;

/// Largest single device write when flushing, in bytes.
const MAX_WRITE_BYTES: usize = 1 << 20;

struct Entry {
    data: Vec<u8>,
    dirty: bool,
}

/// NOTE: dirty blocks stay in memory until `flush`, so a layer that touches
/// millions of inodes keeps all their inode table blocks in memory.
pub struct BlockCache {
    block_size: usize,
    entries: HashMap<u64, Entry>,
    dirty: BTreeSet<u64>,
    /// Blocks changed since `begin`, with their earlier content and
    /// dirtiness, or `None` when they were not cached.
    undo: Option<HashMap<u64, Option<(Vec<u8>, bool)>>>,
}

impl BlockCache {
    pub fn new(block_size: usize) -> Self {
        BlockCache { block_size, entries: HashMap::new(), dirty: BTreeSet::new(), undo: None }
    }

    fn load(&mut self, device: &mut dyn BlockDevice, block: u64) -> Result<()> {
        if !self.entries.contains_key(&block) {
            let mut data = vec![0u8; self.block_size];
            device.read_at(block * self.block_size as u64, &mut data)?;
            self.entries.insert(block, Entry { data, dirty: false });
        }
        Ok(())
    }

    fn remember(&mut self, block: u64) {
        let Some(undo) = self.undo.as_mut() else { return };
        if undo.contains_key(&block) {
            return;
        }
        let before = self.entries.get(&block).map(|entry| (entry.data.clone(), entry.dirty));
        undo.insert(block, before);
    }

    pub fn read(&mut self, device: &mut dyn BlockDevice, block: u64) -> Result<&[u8]> {
        self.load(device, block)?;
        Ok(&self.entries[&block].data)
    }

    /// Returns the block for modification and marks it dirty.
    pub fn write(&mut self, device: &mut dyn BlockDevice, block: u64) -> Result<&mut [u8]> {
        self.load(device, block)?;
        self.remember(block);
        self.dirty.insert(block);
        let entry = self.entries.get_mut(&block).expect("loaded above");
        entry.dirty = true;
        Ok(&mut entry.data)
    }

    /// Returns a newly allocated block, zeroed without reading the device.
    pub fn write_new(&mut self, block: u64) -> &mut [u8] {
        self.remember(block);
        self.dirty.insert(block);
        let entry = Entry { data: vec![0u8; self.block_size], dirty: true };
        let entry = self.entries.entry(block).and_modify(|e| *e = Entry { data: vec![0u8; e.data.len()], dirty: true }).or_insert(entry);
        &mut entry.data
    }

    /// Drops a freed block, so a flush never writes it over new file data.
    pub fn forget(&mut self, block: u64) {
        if self.entries.contains_key(&block) {
            self.remember(block);
            self.entries.remove(&block);
            self.dirty.remove(&block);
        }
    }

    /// Starts recording changes for `rollback`.
    pub fn begin(&mut self) {
        self.undo = Some(HashMap::new());
    }

    /// Keeps the changes made since `begin`.
    pub fn end(&mut self) {
        self.undo = None;
    }

    /// Restores every block changed since `begin`.
    pub fn rollback(&mut self) {
        let Some(undo) = self.undo.take() else { return };
        for (block, before) in undo {
            match before {
                Some((data, dirty)) => {
                    if dirty {
                        self.dirty.insert(block);
                    } else {
                        self.dirty.remove(&block);
                    }
                    self.entries.insert(block, Entry { data, dirty });
                }
                None => {
                    self.entries.remove(&block);
                    self.dirty.remove(&block);
                }
            }
        }
    }

    /// Writes dirty blocks in ascending order, merging runs of adjacent
    /// blocks into single writes.
    pub fn flush(&mut self, device: &mut dyn BlockDevice) -> Result<()> {
        let blocks: Vec<u64> = std::mem::take(&mut self.dirty).into_iter().collect();
        let mut run: Vec<u8> = Vec::new();
        let mut run_start = 0u64;
        for block in blocks {
            let contiguous = !run.is_empty() && run_start + (run.len() / self.block_size) as u64 == block;
            if !run.is_empty() && (!contiguous || run.len() >= MAX_WRITE_BYTES) {
                device.write_at(run_start * self.block_size as u64, &run)?;
                run.clear();
            }
            if run.is_empty() {
                run_start = block;
            }
            let entry = self.entries.get_mut(&block).expect("dirty blocks are cached");
            entry.dirty = false;
            run.extend_from_slice(&entry.data);
        }
        if !run.is_empty() {
            device.write_at(run_start * self.block_size as u64, &run)?;
        }
        Ok(())
    }

    /// Drops clean blocks when the cache holds more than `max_blocks`.
    pub fn trim(&mut self, max_blocks: usize) {
        if self.entries.len() > max_blocks && self.undo.is_none() {
            self.entries.retain(|_, entry| entry.dirty);
        }
    }
}
