//! Directory contents: lookup, insertion, removal and listing, for linear
//! directories and hash-tree (htree) directories.
//!
//! A directory starts linear in one block. When an insertion finds that
//! block full, it becomes an htree: block 0 turns into the index root and
//! the entries move to leaf blocks, which split by hash as they fill. The
//! index grows to a root plus one node level (`MAX_INDIRECT_LEVELS`).

use super::dirent::{self, DirEntry, FT_DIR};
use super::dx::{self, DxEntry, DxNode, DxRoot};
use super::error::{Ext4Error, Result};
use super::fs::Filesystem;
use super::hash;
use super::inode::{Inode, FLAG_INDEX};
use super::leaf;
use super::superblock::FLAG_UNSIGNED_HASH;
use super::tree::push_extent;

/// The index path a hash follows in an htree: the root, the node (if any), and the leaf.
struct DxPath {
    root: DxRoot,
    /// Position of the followed entry in the root.
    root_pos: usize,
    /// The interior node followed: logical block, node, position.
    node: Option<(u32, DxNode, usize)>,
    leaf: u32,
}

impl Filesystem {
    fn usable(&self) -> usize {
        if self.sb.has_metadata_csum() {
            self.block_size - dirent::TAIL_SIZE
        } else {
            self.block_size
        }
    }

    pub(crate) fn name_hash(&self, name: &[u8]) -> u32 {
        let signed = self.sb.flags & FLAG_UNSIGNED_HASH == 0;
        hash::half_md4(name, &self.sb.hash_seed, signed)
    }

    /// Maps logical block `logical` of a directory to its physical block.
    fn dir_block(&mut self, ino: u32, inode: &Inode, logical: u32) -> Result<u64> {
        let extents = self.read_extents(ino, inode)?;
        for e in &extents {
            if logical >= e.logical && (logical as u64) < e.logical as u64 + e.len as u64 {
                return Ok(e.physical + (logical - e.logical) as u64);
            }
        }
        Err(Ext4Error::corrupt(format!("directory inode {ino} has no block {logical}"), None))
    }

    fn dir_block_count(&self, inode: &Inode) -> u32 {
        (inode.size / self.block_size as u64) as u32
    }

    /// Reads a directory block, verifying its checksum when it is a leaf
    /// with a checksum tail (index blocks carry theirs in `dx_tail`).
    fn read_dir_data(&mut self, ino: u32, inode: &Inode, block: u64) -> Result<&[u8]> {
        let seed = self.inode_seed(ino, inode);
        let csum = self.sb.has_metadata_csum();
        let data = self.read_block(block)?;
        if csum && dirent::has_tail(data) && !dirent::verify_checksum(data, seed) {
            let offset = block * self.block_size as u64;
            return Err(Ext4Error::corrupt(format!("directory block of inode {ino} has a bad checksum"), Some(offset)));
        }
        Ok(self.read_block(block)?)
    }

    /// Sets the tail and checksum of a leaf block after an edit.
    fn seal_leaf(&mut self, ino: u32, inode: &Inode, block: u64) -> Result<()> {
        if !self.sb.has_metadata_csum() {
            return Ok(());
        }
        let seed = self.inode_seed(ino, inode);
        let data = self.write_block(block)?;
        dirent::init_tail(data);
        dirent::set_checksum(data, seed);
        Ok(())
    }

    fn seal_index(&mut self, ino: u32, inode: &Inode, block: u64, count_offset: usize) -> Result<()> {
        if !self.sb.has_metadata_csum() {
            return Ok(());
        }
        let seed = self.inode_seed(ino, inode);
        dx::set_checksum(self.write_block(block)?, count_offset, seed);
        Ok(())
    }

    /// Appends a zeroed block to a directory and returns its logical and
    /// physical numbers. The caller writes its content and the inode.
    fn dir_append_block(&mut self, ino: u32, inode: &mut Inode) -> Result<(u32, u64)> {
        let logical = self.dir_block_count(inode);
        let (physical, _) = self.allocate_blocks(1)?;
        if !self.extend_last_extent(ino, inode, physical)? {
            let mut extents = self.read_extents(ino, inode)?;
            push_extent(&mut extents, logical, physical, 1);
            self.write_extents(ino, inode, &extents)?;
        }
        inode.size += self.block_size as u64;
        self.cache.write_new(physical);
        Ok((logical, physical))
    }

    /// Gives a new directory its first block with `.` and `..`.
    pub(crate) fn dir_init(&mut self, ino: u32, inode: &mut Inode, parent: u32) -> Result<()> {
        let (_, block) = self.dir_append_block(ino, inode)?;
        let usable = self.usable();
        let dot = DirEntry { inode: ino, rec_len: 0, file_type: FT_DIR, name: b".".to_vec() };
        let dotdot = DirEntry { inode: parent, rec_len: 0, file_type: FT_DIR, name: b"..".to_vec() };
        leaf::pack(self.write_block(block)?, usable, &[dot, dotdot]);
        self.seal_leaf(ino, inode, block)
    }

    // ---- Lookup ----

    /// Returns the entry named `name` in directory `ino`, if any.
    pub(crate) fn dir_lookup(&mut self, ino: u32, inode: &Inode, name: &[u8]) -> Result<Option<DirEntry>> {
        if inode.flags & FLAG_INDEX != 0 {
            return Ok(self.dx_find(ino, inode, name)?.map(|(_, found)| found.entry));
        }
        Ok(self.linear_find(ino, inode, name)?.map(|(_, found)| found.entry))
    }

    fn linear_find(&mut self, ino: u32, inode: &Inode, name: &[u8]) -> Result<Option<(u64, leaf::Found)>> {
        for logical in 0..self.dir_block_count(inode) {
            let block = self.dir_block(ino, inode, logical)?;
            let location = block * self.block_size as u64;
            let usable = self.usable();
            if let Some(found) = leaf::find(self.read_dir_data(ino, inode, block)?, usable, name, location)? {
                return Ok(Some((block, found)));
            }
        }
        Ok(None)
    }

    /// Lists the live entries of a directory, `.` and `..` excluded.
    pub(crate) fn dir_list(&mut self, ino: u32, inode: &Inode) -> Result<Vec<DirEntry>> {
        let mut entries = Vec::new();
        for logical in 0..self.dir_block_count(inode) {
            let block = self.dir_block(ino, inode, logical)?;
            let location = block * self.block_size as u64;
            let size = self.block_size;
            for entry in leaf::live_entries(self.read_dir_data(ino, inode, block)?, size, location)? {
                if entry.name != b"." && entry.name != b".." {
                    entries.push(entry);
                }
            }
        }
        Ok(entries)
    }

    // ---- Removal ----

    /// Removes the entry `name`; returns whether it existed.
    pub(crate) fn dir_remove(&mut self, ino: u32, inode: &Inode, name: &[u8]) -> Result<bool> {
        let found = if inode.flags & FLAG_INDEX != 0 { self.dx_find(ino, inode, name)? } else { self.linear_find(ino, inode, name)? };
        let Some((block, found)) = found else { return Ok(false) };
        leaf::remove(self.write_block(block)?, &found);
        self.seal_leaf(ino, inode, block)?;
        Ok(true)
    }

    // ---- Insertion ----

    /// Adds an entry; the caller has checked that `name` is not present.
    /// Writes the directory inode when its size or tree changes.
    pub(crate) fn dir_insert(&mut self, ino: u32, inode: &mut Inode, entry: &DirEntry) -> Result<()> {
        if inode.flags & FLAG_INDEX != 0 {
            return self.dx_insert(ino, inode, entry);
        }
        let usable = self.usable();
        for logical in 0..self.dir_block_count(inode) {
            let block = self.dir_block(ino, inode, logical)?;
            let location = block * self.block_size as u64;
            let data = self.read_dir_data(ino, inode, block)?;
            if leaf::packed_size(&leaf::live_entries(data, usable, location)?) + dirent::record_size(entry.name.len()) > usable {
                continue;
            }
            leaf::insert_compacting(self.write_block(block)?, usable, entry, location)?;
            return self.seal_leaf(ino, inode, block);
        }
        if self.dir_block_count(inode) == 1 && self.sb.feature_compat & super::superblock::COMPAT_DIR_INDEX != 0 {
            self.make_indexed(ino, inode)?;
            return self.dx_insert(ino, inode, entry);
        }
        let (_, block) = self.dir_append_block(ino, inode)?;
        leaf::pack(self.write_block(block)?, usable, std::slice::from_ref(entry));
        self.seal_leaf(ino, inode, block)?;
        self.write_inode(ino, inode)
    }

    /// Turns a full one-block linear directory into an htree: block 0
    /// becomes the root and its entries move to a new leaf.
    fn make_indexed(&mut self, ino: u32, inode: &mut Inode) -> Result<()> {
        let usable = self.usable();
        let root_block = self.dir_block(ino, inode, 0)?;
        let location = root_block * self.block_size as u64;
        let all = leaf::live_entries(self.read_block(root_block)?, usable, location)?;
        let parent = all.iter().find(|e| e.name == b"..").map_or(ino, |e| e.inode);
        let mut entries: Vec<DirEntry> = all.into_iter().filter(|e| e.name != b"." && e.name != b"..").collect();
        entries.sort_by_key(|e| self.name_hash(&e.name));

        let (leaf_logical, leaf_block) = self.dir_append_block(ino, inode)?;
        leaf::pack(self.write_block(leaf_block)?, usable, &entries);
        self.seal_leaf(ino, inode, leaf_block)?;

        let root = DxRoot {
            dot_inode: ino,
            dotdot_inode: parent,
            hash_version: self.sb.def_hash_version,
            indirect_levels: 0,
            entries: vec![DxEntry { hash: 0, block: leaf_logical }],
        };
        root.encode(self.write_block(root_block)?);
        inode.flags |= FLAG_INDEX;
        self.seal_index(ino, inode, root_block, dx::ROOT_COUNT_LIMIT)?;
        self.write_inode(ino, inode)
    }

    fn read_root(&mut self, ino: u32, inode: &Inode) -> Result<(u64, DxRoot)> {
        let block = self.dir_block(ino, inode, 0)?;
        let location = block * self.block_size as u64;
        self.verify_index(ino, inode, block, dx::ROOT_COUNT_LIMIT)?;
        let root = DxRoot::decode(self.read_block(block)?, location)?;
        if root.hash_version != hash::HASH_HALF_MD4 {
            return Err(Ext4Error::Unsupported { message: format!("directory hash version {} (only half_md4 is supported)", root.hash_version) });
        }
        Ok((block, root))
    }

    fn read_dx_node(&mut self, ino: u32, inode: &Inode, logical: u32) -> Result<DxNode> {
        let block = self.dir_block(ino, inode, logical)?;
        let location = block * self.block_size as u64;
        self.verify_index(ino, inode, block, dx::NODE_COUNT_LIMIT)?;
        DxNode::decode(self.read_block(block)?, location)
    }

    fn verify_index(&mut self, ino: u32, inode: &Inode, block: u64, count_offset: usize) -> Result<()> {
        if !self.sb.has_metadata_csum() {
            return Ok(());
        }
        let seed = self.inode_seed(ino, inode);
        let data = self.read_block(block)?;
        let limit = super::le::u16_at(data, count_offset + dx::LIMIT) as usize;
        if count_offset + (limit + 1) * dx::ENTRY_SIZE > data.len() || !dx::verify_checksum(data, count_offset, seed) {
            let offset = block * self.block_size as u64;
            return Err(Ext4Error::corrupt(format!("htree index block of inode {ino} has a bad checksum or limit"), Some(offset)));
        }
        Ok(())
    }

    fn dx_probe(&mut self, ino: u32, inode: &Inode, hash: u32) -> Result<DxPath> {
        let (_, root) = self.read_root(ino, inode)?;
        let root_pos = position(&root.entries, hash);
        let child = root.entries[root_pos].block;
        if root.indirect_levels == 0 {
            return Ok(DxPath { root, root_pos, node: None, leaf: child });
        }
        let node = self.read_dx_node(ino, inode, child)?;
        let node_pos = position(&node.entries, hash);
        let leaf = node.entries[node_pos].block;
        Ok(DxPath { root, root_pos, node: Some((child, node, node_pos)), leaf })
    }

    /// Finds `name` in an htree, following leaves whose start hash marks a
    /// collision continued from the previous leaf.
    fn dx_find(&mut self, ino: u32, inode: &Inode, name: &[u8]) -> Result<Option<(u64, leaf::Found)>> {
        let hash = self.name_hash(name);
        let path = self.dx_probe(ino, inode, hash)?;
        let leaves = self.leaves_from(ino, inode, &path, hash)?;
        let usable = self.usable();
        for logical in leaves {
            let block = self.dir_block(ino, inode, logical)?;
            let location = block * self.block_size as u64;
            if let Some(found) = leaf::find(self.read_dir_data(ino, inode, block)?, usable, name, location)? {
                return Ok(Some((block, found)));
            }
        }
        Ok(None)
    }

    /// Returns the probed leaf and any following leaves that continue the
    /// same hash (start hash with the low bit set).
    fn leaves_from(&mut self, ino: u32, inode: &Inode, path: &DxPath, hash: u32) -> Result<Vec<u32>> {
        let mut flat: Vec<DxEntry> = Vec::new();
        match &path.node {
            None => flat.extend_from_slice(&path.root.entries[path.root_pos..]),
            Some((_, node, pos)) => {
                flat.extend_from_slice(&node.entries[*pos..]);
                if let Some(next) = path.root.entries.get(path.root_pos + 1) {
                    if next.hash & !1 == hash && next.hash & 1 == 1 {
                        let mut following = self.read_dx_node(ino, inode, next.block)?.entries;
                        following[0].hash = next.hash;
                        flat.extend(following);
                    }
                }
            }
        }
        let mut leaves = vec![flat[0].block];
        for entry in &flat[1..] {
            if entry.hash & 1 == 1 && entry.hash & !1 == hash {
                leaves.push(entry.block);
            } else {
                break;
            }
        }
        Ok(leaves)
    }

    fn dx_insert(&mut self, ino: u32, inode: &mut Inode, entry: &DirEntry) -> Result<()> {
        let usable = self.usable();
        let hash = self.name_hash(&entry.name);
        let path = self.dx_probe(ino, inode, hash)?;
        let block = self.dir_block(ino, inode, path.leaf)?;
        let location = block * self.block_size as u64;
        let data = self.read_dir_data(ino, inode, block)?;
        let fits = leaf::packed_size(&leaf::live_entries(data, usable, location)?) + dirent::record_size(entry.name.len()) <= usable;
        if fits {
            leaf::insert_compacting(self.write_block(block)?, usable, entry, location)?;
            return self.seal_leaf(ino, inode, block);
        }

        let (split_hash, new_block) = self.split_leaf(ino, inode, block, &path)?;
        let target = if hash >= split_hash { new_block } else { block };
        let location = target * self.block_size as u64;
        if !leaf::insert(self.write_block(target)?, usable, entry, location)? {
            return Err(Ext4Error::NoSpace { path: String::new(), what: "directory entries with one hash" });
        }
        self.seal_leaf(ino, inode, target)?;
        self.write_inode(ino, inode)
    }

    /// Moves the upper half (by hash) of a full leaf to a new block, adds
    /// it to the index, and returns its start hash and physical block.
    fn split_leaf(&mut self, ino: u32, inode: &mut Inode, block: u64, path: &DxPath) -> Result<(u32, u64)> {
        let usable = self.usable();
        let location = block * self.block_size as u64;
        let mut entries: Vec<(u32, DirEntry)> = leaf::live_entries(self.read_block(block)?, usable, location)?
            .into_iter()
            .map(|e| (self.name_hash(&e.name), e))
            .collect();
        entries.sort_by_key(|(hash, _)| *hash);
        let split = split_point(&entries);
        let mut split_hash = entries[split].0;
        if split > 0 && entries[split - 1].0 == split_hash {
            split_hash |= 1;
        }

        let (new_logical, new_block) = self.dir_append_block(ino, inode)?;
        let lower: Vec<DirEntry> = entries[..split].iter().map(|(_, e)| e.clone()).collect();
        let upper: Vec<DirEntry> = entries[split..].iter().map(|(_, e)| e.clone()).collect();
        leaf::pack(self.write_block(block)?, usable, &lower);
        leaf::pack(self.write_block(new_block)?, usable, &upper);
        self.seal_leaf(ino, inode, block)?;
        self.seal_leaf(ino, inode, new_block)?;

        self.dx_add_index(ino, inode, path, DxEntry { hash: split_hash, block: new_logical })?;
        Ok((split_hash, new_block))
    }

    /// Inserts an index entry right after the one the path followed,
    /// growing the root into a node level or splitting a node when full.
    fn dx_add_index(&mut self, ino: u32, inode: &mut Inode, path: &DxPath, new: DxEntry) -> Result<()> {
        let root_limit = dx::root_limit(self.block_size);
        let node_limit = dx::node_limit(self.block_size);
        let mut root = path.root.clone();
        let root_block = self.dir_block(ino, inode, 0)?;

        let Some((node_logical, node, node_pos)) = &path.node else {
            if root.entries.len() < root_limit {
                root.entries.insert(path.root_pos + 1, new);
                return self.write_root(ino, inode, root_block, &root);
            }
            // The root is full: its entries move to a new node below it.
            let mut entries = std::mem::take(&mut root.entries);
            entries.insert(path.root_pos + 1, new);
            let (logical, _) = self.dir_append_block(ino, inode)?;
            self.write_node(ino, inode, logical, &DxNode { entries })?;
            root.entries = vec![DxEntry { hash: 0, block: logical }];
            root.indirect_levels = 1;
            return self.write_root(ino, inode, root_block, &root);
        };

        let mut entries = node.entries.clone();
        entries.insert(node_pos + 1, new);
        if entries.len() <= node_limit {
            return self.write_node(ino, inode, *node_logical, &DxNode { entries });
        }
        if root.entries.len() >= root_limit {
            return Err(Ext4Error::NoSpace { path: String::new(), what: "directory index entries" });
        }
        let upper = entries.split_off(entries.len() / 2);
        let (upper_logical, _) = self.dir_append_block(ino, inode)?;
        let upper_hash = upper[0].hash;
        self.write_node(ino, inode, *node_logical, &DxNode { entries })?;
        self.write_node(ino, inode, upper_logical, &DxNode { entries: upper })?;
        root.entries.insert(path.root_pos + 1, DxEntry { hash: upper_hash, block: upper_logical });
        self.write_root(ino, inode, root_block, &root)
    }

    fn write_root(&mut self, ino: u32, inode: &Inode, block: u64, root: &DxRoot) -> Result<()> {
        root.encode(self.write_block(block)?);
        self.seal_index(ino, inode, block, dx::ROOT_COUNT_LIMIT)
    }

    fn write_node(&mut self, ino: u32, inode: &Inode, logical: u32, node: &DxNode) -> Result<()> {
        let block = self.dir_block(ino, inode, logical)?;
        node.encode(self.write_block(block)?);
        self.seal_index(ino, inode, block, dx::NODE_COUNT_LIMIT)
    }
}

/// Returns the position of the last index entry whose hash is at most
/// `hash`; entry 0 covers everything below entry 1.
fn position(entries: &[DxEntry], hash: u32) -> usize {
    let mut low = 1;
    let mut high = entries.len();
    while low < high {
        let mid = (low + high) / 2;
        if entries[mid].hash > hash {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    low - 1
}

/// Picks where to split hash-sorted entries: near half the bytes, moved
/// off a run of equal hashes when possible, and never at either end.
fn split_point(entries: &[(u32, DirEntry)]) -> usize {
    let total: usize = entries.iter().map(|(_, e)| dirent::record_size(e.name.len())).sum();
    let mut size = 0;
    let mut middle = entries.len() / 2;
    for (i, (_, e)) in entries.iter().enumerate() {
        size += dirent::record_size(e.name.len());
        if size >= total / 2 {
            middle = i + 1;
            break;
        }
    }
    let middle = middle.clamp(1, entries.len() - 1);
    let mut split = middle;
    while split < entries.len() && entries[split].0 == entries[split - 1].0 {
        split += 1;
    }
    if split < entries.len() {
        return split;
    }
    split = middle;
    while split > 1 && entries[split].0 == entries[split - 1].0 {
        split -= 1;
    }
    if entries[split].0 != entries[split - 1].0 {
        split
    } else {
        middle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_finds_last_not_above() {
        let entries = vec![DxEntry { hash: 0, block: 1 }, DxEntry { hash: 100, block: 2 }, DxEntry { hash: 200, block: 3 }];
        assert_eq!(position(&entries, 0), 0);
        assert_eq!(position(&entries, 99), 0);
        assert_eq!(position(&entries, 100), 1);
        assert_eq!(position(&entries, 250), 2);
    }
}
