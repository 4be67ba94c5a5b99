//! Removing entries: unlinking files, removing directory trees, and
//! emptying a directory (an opaque directory in a layer).

use super::dirent::DirEntry;
use super::error::{Ext4Error, Result};
use super::fs::Filesystem;
use super::inode::{Inode, INODE_SIZE};
use super::path::{display, Parent};

impl Filesystem {
    /// Removes the entry at `path`; a directory goes with everything below
    /// it. Hard-linked inodes lose one link and survive if others remain.
    pub fn remove(&mut self, path: &[u8]) -> Result<()> {
        self.path_op(path, |fs| {
            let mut parent = fs.resolve_parent(path)?;
            let Some(entry) = fs.child(&parent)? else {
                return Err(Ext4Error::NotFound { path: display(path) });
            };
            fs.remove_entry(&mut parent, &entry)
        })
    }

    /// Removes every entry inside the directory at `path`, keeping the
    /// directory itself.
    pub fn clear_dir(&mut self, path: &[u8]) -> Result<()> {
        self.path_op(path, |fs| {
            let (ino, inode) = fs.resolve_existing(path)?;
            if !inode.is_dir() {
                return Err(Ext4Error::NotADirectory { path: display(path) });
            }
            fs.remove_children(ino)
        })
    }

    fn remove_children(&mut self, ino: u32) -> Result<()> {
        let inode = self.read_inode(ino)?;
        for entry in self.dir_list(ino, &inode)? {
            let inode = self.read_inode(ino)?;
            let mut parent = Parent { ino, inode, name: entry.name.clone() };
            self.remove_entry(&mut parent, &entry)?;
        }
        Ok(())
    }

    /// Removes `entry` from `parent` and releases what it named. Updates
    /// and writes `parent.inode`.
    pub(crate) fn remove_entry(&mut self, parent: &mut Parent, entry: &DirEntry) -> Result<()> {
        let child = self.read_inode(entry.inode)?;
        let is_dir = child.is_dir();
        if is_dir {
            self.remove_children(entry.inode)?;
            let child = self.read_inode(entry.inode)?;
            self.release_inode(entry.inode, &child)?;
            if parent.inode.links_count > 2 {
                parent.inode.links_count -= 1;
            }
        } else {
            self.unlink_inode(entry.inode, child)?;
        }
        self.dir_remove(parent.ino, &parent.inode, &entry.name)?;
        if is_dir && parent.inode.links_count == 1 {
            self.recount_links(parent)?;
        }
        self.write_inode(parent.ino, &parent.inode)
    }

    /// Restores an exact link count once a directory whose count `dir_nlink`
    /// had set to 1 (more than 65,000 links) falls back under the limit, as
    /// e2fsck expects.
    fn recount_links(&mut self, parent: &mut Parent) -> Result<()> {
        let subdirs = self.dir_list(parent.ino, &parent.inode)?.iter().filter(|e| e.file_type == super::dirent::FT_DIR).count();
        let links = 2 + subdirs;
        if links <= super::ops::MAX_LINKS as usize {
            parent.inode.links_count = links as u16;
        }
        Ok(())
    }

    fn unlink_inode(&mut self, ino: u32, mut inode: Inode) -> Result<()> {
        if inode.links_count > 1 {
            inode.links_count -= 1;
            return self.write_inode(ino, &inode);
        }
        self.release_inode(ino, &inode)
    }

    /// Frees an inode's blocks and the inode itself, zeroing its slot.
    fn release_inode(&mut self, ino: u32, inode: &Inode) -> Result<()> {
        self.free_inode_storage(ino, inode)?;
        self.clear_inode_slot(ino)?;
        self.mark_inode(ino, false, inode.is_dir())
    }

    fn clear_inode_slot(&mut self, ino: u32) -> Result<()> {
        let group = (ino - 1) / self.sb.inodes_per_group;
        let index = ((ino - 1) % self.sb.inodes_per_group) as u64 * self.sb.inode_size as u64;
        let table = self.groups[group as usize].inode_table;
        let block = table + index / self.block_size as u64;
        let at = (index % self.block_size as u64) as usize;
        self.write_block(block)?[at..at + INODE_SIZE].fill(0);
        Ok(())
    }
}
