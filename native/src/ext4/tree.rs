//! Extent trees of inodes: reading the mapping, building a tree for a list
//! of extents, and collecting the blocks to free.
//!
//! A tree is rebuilt whole when its extents change. Files are written once,
//! and directories grow by extending their last extent in place, so trees
//! with index blocks are rebuilt rarely.

use super::error::{Ext4Error, Result};
use super::extent::{self, Entries, Extent, Index, Node};
use super::fs::Filesystem;
use super::inode::{Inode, FLAG_EXTENTS, I_BLOCK_SIZE};

impl Filesystem {
    /// Returns every extent of `inode`, in logical order.
    pub(crate) fn read_extents(&mut self, ino: u32, inode: &Inode) -> Result<Vec<Extent>> {
        let mut extents = Vec::new();
        if inode.flags & FLAG_EXTENTS == 0 {
            return Ok(extents);
        }
        let root = Node::decode(&inode.block, 0)?;
        self.walk(ino, inode, &root, &mut extents, &mut Vec::new())?;
        Ok(extents)
    }

    /// Returns the index and leaf blocks of the tree (not the data).
    pub(crate) fn tree_blocks(&mut self, ino: u32, inode: &Inode) -> Result<Vec<u64>> {
        let mut blocks = Vec::new();
        if inode.flags & FLAG_EXTENTS == 0 {
            return Ok(blocks);
        }
        let root = Node::decode(&inode.block, 0)?;
        self.walk(ino, inode, &root, &mut Vec::new(), &mut blocks)?;
        Ok(blocks)
    }

    fn walk(&mut self, ino: u32, inode: &Inode, node: &Node, extents: &mut Vec<Extent>, blocks: &mut Vec<u64>) -> Result<()> {
        match &node.entries {
            Entries::Leaf(leaf) => extents.extend_from_slice(leaf),
            Entries::Interior(indexes) => {
                for index in indexes {
                    blocks.push(index.child);
                    let child = self.read_node(ino, inode, index.child, node.depth - 1)?;
                    self.walk(ino, inode, &child, extents, blocks)?;
                }
            }
        }
        Ok(())
    }

    fn read_node(&mut self, ino: u32, inode: &Inode, block: u64, depth: u16) -> Result<Node> {
        let seed = self.inode_seed(ino, inode);
        let csum = self.sb.has_metadata_csum();
        let offset = block * self.block_size as u64;
        let data = self.read_block(block)?;
        let node = Node::decode(data, offset)?;
        if csum && !extent::verify_checksum(data, seed) {
            return Err(Ext4Error::corrupt(format!("extent block of inode {ino} has a bad checksum"), Some(offset)));
        }
        if node.depth != depth {
            return Err(Ext4Error::corrupt(format!("extent block has depth {}, expected {depth}", node.depth), Some(offset)));
        }
        Ok(node)
    }

    /// Replaces the tree of `inode` with one mapping `extents`: frees the
    /// old index and leaf blocks, allocates new ones, and recounts
    /// `i_blocks` from the data, tree and attribute blocks.
    pub(crate) fn write_extents(&mut self, ino: u32, inode: &mut Inode, extents: &[Extent]) -> Result<()> {
        for block in self.tree_blocks(ino, inode)? {
            self.free_blocks(block, 1)?;
        }
        inode.flags |= FLAG_EXTENTS;

        let root_max = extent::capacity(I_BLOCK_SIZE, false) as usize;
        let block_max = extent::capacity(self.block_size, true);
        let mut depth = 0u16;
        let mut tree_blocks = 0u64;
        let mut level = Entries::Leaf(extents.to_vec());
        while entries_len(&level) > root_max {
            let (indexes, used) = self.write_level(ino, inode, &level, depth, block_max)?;
            tree_blocks += used;
            level = Entries::Interior(indexes);
            depth += 1;
            if depth > extent::MAX_DEPTH {
                return Err(Ext4Error::FileTooLarge { path: String::new(), size: inode.size });
            }
        }
        let root = Node { depth, max: root_max as u16, entries: level };
        root.encode(&mut inode.block);

        let data_blocks: u64 = extents.iter().map(|e| e.len as u64).sum();
        let acl_block = (inode.file_acl != 0) as u64;
        inode.blocks = (data_blocks + tree_blocks + acl_block) * (self.block_size as u64 / 512);
        Ok(())
    }

    /// Writes `level` into blocks of `max` entries and returns one index
    /// entry per block, plus the number of blocks used.
    fn write_level(&mut self, ino: u32, inode: &Inode, level: &Entries, depth: u16, max: u16) -> Result<(Vec<Index>, u64)> {
        let seed = self.inode_seed(ino, inode);
        let chunks: Vec<Entries> = match level {
            Entries::Leaf(all) => all.chunks(max as usize).map(|c| Entries::Leaf(c.to_vec())).collect(),
            Entries::Interior(all) => all.chunks(max as usize).map(|c| Entries::Interior(c.to_vec())).collect(),
        };
        let mut indexes = Vec::with_capacity(chunks.len());
        for entries in chunks {
            let logical = match &entries {
                Entries::Leaf(extents) => extents[0].logical,
                Entries::Interior(children) => children[0].logical,
            };
            let (block, _) = self.allocate_blocks(1)?;
            let node = Node { depth, max, entries };
            let data = self.cache.write_new(block);
            node.encode(data);
            extent::set_checksum(data, seed);
            indexes.push(Index { logical, child: block });
        }
        let used = indexes.len() as u64;
        Ok((indexes, used))
    }

    /// Appends block `physical` to the file's last extent in place when it
    /// continues that extent, so only the rightmost leaf changes. Returns
    /// `false` when the tree must be rebuilt instead.
    pub(crate) fn extend_last_extent(&mut self, ino: u32, inode: &mut Inode, physical: u64) -> Result<bool> {
        if inode.flags & FLAG_EXTENTS == 0 {
            return Ok(false);
        }
        let mut node = Node::decode(&inode.block, 0)?;
        let mut leaf_block = None;
        while let Entries::Interior(indexes) = &node.entries {
            let Some(last) = indexes.last() else { return Ok(false) };
            let child = last.child;
            node = self.read_node(ino, inode, child, node.depth - 1)?;
            leaf_block = Some(child);
        }
        let Entries::Leaf(extents) = &mut node.entries else { unreachable!("the loop stops at a leaf") };
        let Some(last) = extents.last_mut() else { return Ok(false) };
        if last.physical + last.len as u64 != physical || last.len as u32 >= extent::MAX_LEN {
            return Ok(false);
        }
        last.len += 1;

        match leaf_block {
            None => node.encode(&mut inode.block),
            Some(block) => {
                let seed = self.inode_seed(ino, inode);
                let data = self.write_block(block)?;
                node.encode(data);
                extent::set_checksum(data, seed);
            }
        }
        inode.blocks += self.block_size as u64 / 512;
        Ok(true)
    }

    /// Frees the data, tree and attribute blocks of an inode being deleted.
    pub(crate) fn free_inode_storage(&mut self, ino: u32, inode: &Inode) -> Result<()> {
        for extent in self.read_extents(ino, inode)? {
            // Bit 15 of the length marks an unwritten extent.
            let len = if extent.len > extent::MAX_LEN as u16 { extent.len - extent::MAX_LEN as u16 } else { extent.len };
            self.free_blocks(extent.physical, len as u64)?;
        }
        for block in self.tree_blocks(ino, inode)? {
            self.free_blocks(block, 1)?;
        }
        if inode.file_acl != 0 {
            self.release_xattr_block(inode.file_acl)?;
        }
        Ok(())
    }
}

fn entries_len(entries: &Entries) -> usize {
    match entries {
        Entries::Leaf(extents) => extents.len(),
        Entries::Interior(indexes) => indexes.len(),
    }
}

/// Appends a run of blocks to an extent list, merging with the last extent
/// when it continues both logically and physically.
pub(crate) fn push_extent(extents: &mut Vec<Extent>, logical: u32, physical: u64, len: u64) {
    let mut logical = logical;
    let mut physical = physical;
    let mut len = len;
    if let Some(last) = extents.last_mut() {
        let contiguous = last.logical as u64 + last.len as u64 == logical as u64 && last.physical + last.len as u64 == physical;
        if contiguous && (last.len as u32) < extent::MAX_LEN {
            let take = len.min((extent::MAX_LEN - last.len as u32) as u64);
            last.len += take as u16;
            logical += take as u32;
            physical += take;
            len -= take;
        }
    }
    while len > 0 {
        let take = len.min(extent::MAX_LEN as u64);
        extents.push(Extent { logical, len: take as u16, physical });
        logical = logical.wrapping_add(take as u32);
        physical += take;
        len -= take;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::RawFile;
    use crate::ext4::format::{format, FormatOptions};
    use crate::ext4::inode::S_IFREG;

    /// Builds a file of one-block extents at every other block: more than
    /// 4 × 340 leaves, so its tree needs three index levels below the
    /// root's own entries (depth 3). No data is written; e2fsck checks the
    /// mapping and the block accounting.
    #[test]
    fn depth_three_tree_is_clean() {
        let dir = std::env::temp_dir().join(format!("layerdisk-ext4-deep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let image = dir.join("fs.img");
        let size = 8u64 << 30;
        let options = FormatOptions { size, seed: b"deep".to_vec(), ..FormatOptions::default() };
        let mut fs = format(Box::new(RawFile::create(&image, size).unwrap()), &options).unwrap();

        let count = 4 * 340 * 340 + 1000;
        let mut extents = Vec::with_capacity(count);
        while extents.len() < count {
            let (start, len) = fs.allocate_blocks(2 * (count - extents.len()) as u64).unwrap();
            for pair in 0..len / 2 {
                let physical = start + 2 * pair;
                extents.push(Extent { logical: 2 * extents.len() as u32, len: 1, physical });
                fs.free_blocks(physical + 1, 1).unwrap();
            }
            if len % 2 == 1 {
                fs.free_blocks(start + len - 1, 1).unwrap();
            }
        }

        let ino = fs.allocate_inode(false).unwrap();
        let mut inode = Inode { mode: S_IFREG | 0o644, links_count: 1, ..Inode::default() };
        inode.size = 2 * count as u64 * 4096;
        fs.write_extents(ino, &mut inode, &extents).unwrap();
        assert_eq!(Node::decode(&inode.block, 0).unwrap().depth, 3);
        fs.write_inode(ino, &inode).unwrap();
        let mut root = fs.read_inode(2).unwrap();
        let entry = crate::ext4::dirent::DirEntry { inode: ino, rec_len: 0, file_type: 1, name: b"deep".to_vec() };
        fs.dir_insert(2, &mut root, &entry).unwrap();
        assert_eq!(fs.read_extents(ino, &inode).unwrap(), extents);
        fs.commit().unwrap();
        drop(fs);

        let fsck = |image: &std::path::Path| {
            let output = std::process::Command::new("e2fsck").arg("-fn").arg(image).output().unwrap();
            (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned())
        };
        let (clean, text) = fsck(&image);
        assert!(clean, "{text}");

        // Removing the file frees every leaf and index block.
        let device = RawFile::open(&image, true).unwrap();
        let mut fs = Filesystem::open(Box::new(device), Default::default()).unwrap();
        let free_before = fs.superblock().free_blocks_count;
        fs.remove(b"deep").unwrap();
        fs.commit().unwrap();
        let freed = fs.superblock().free_blocks_count - free_before;
        drop(fs);
        let (clean, text) = fsck(&image);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(clean, "{text}");
        assert!(freed > count as u64 + 1363, "freed only {freed} blocks");
    }
}
