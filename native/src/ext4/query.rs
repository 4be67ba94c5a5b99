//! Read-only queries: lstat, directory listing, file content, symlink
//! targets and extended attributes.

use super::attrs::from_stored;
use super::error::{Ext4Error, Result};
use super::fs::Filesystem;
use super::inode::*;
use super::ops::decode_device;
use super::path::display;

/// Metadata of one entry, as `lstat` returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    pub ino: u32,
    /// Full `i_mode`: file type and permission bits.
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub links: u16,
    pub atime: Timestamp,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    /// Symlink target, for symlinks.
    pub target: Option<Vec<u8>>,
    /// Device major and minor, for device files.
    pub device: Option<(u32, u32)>,
}

/// One directory entry as `read_dir` returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: Vec<u8>,
    pub ino: u32,
    /// The `dirent` file type code (1 regular, 2 directory, 7 symlink …).
    pub file_type: u8,
}

impl Filesystem {
    /// Describes the entry at `path` without following a final symlink;
    /// `None` when it does not exist.
    pub fn lstat(&mut self, path: &[u8]) -> Result<Option<Stat>> {
        let Some((ino, inode)) = self.resolve(path)? else { return Ok(None) };
        let target = if inode.file_type() == S_IFLNK { Some(self.link_target(ino, &inode)?) } else { None };
        let device = matches!(inode.file_type(), S_IFCHR | S_IFBLK).then(|| decode_device(&inode.block));
        Ok(Some(Stat {
            ino,
            mode: inode.mode,
            uid: inode.uid,
            gid: inode.gid,
            size: inode.size,
            links: inode.links_count,
            atime: inode.atime,
            mtime: inode.mtime,
            ctime: inode.ctime,
            target,
            device,
        }))
    }

    /// Lists a directory, without `.` and `..`, in on-disk order.
    pub fn read_dir(&mut self, path: &[u8]) -> Result<Vec<Entry>> {
        let (ino, inode) = self.resolve_existing(path)?;
        if !inode.is_dir() {
            return Err(Ext4Error::NotADirectory { path: display(path) });
        }
        Ok(self
            .dir_list(ino, &inode)?
            .into_iter()
            .map(|e| Entry { name: e.name, ino: e.inode, file_type: e.file_type })
            .collect())
    }

    /// Reads a whole regular file; holes read as zeros.
    pub fn read_file(&mut self, path: &[u8]) -> Result<Vec<u8>> {
        let (ino, inode) = self.resolve_existing(path)?;
        if inode.file_type() != S_IFREG {
            return Err(Ext4Error::InvalidArgument { path: display(path), message: "not a regular file".into() });
        }
        let bs = self.block_size as u64;
        let mut data = vec![0u8; inode.size as usize];
        for extent in self.read_extents(ino, &inode)? {
            // A length above 32768 marks an unwritten extent, which reads as zeros.
            if extent.len as u32 > super::extent::MAX_LEN {
                continue;
            }
            let start = extent.logical as u64 * bs;
            if start >= inode.size {
                continue;
            }
            let end = (start + extent.len as u64 * bs).min(inode.size);
            self.device.read_at(extent.physical * bs, &mut data[start as usize..end as usize])?;
        }
        Ok(data)
    }

    /// Returns every extended attribute as full name and value, with ACLs
    /// in the xattr format (version 2).
    pub fn xattrs(&mut self, path: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let (ino, inode) = self.resolve_existing(path)?;
        self.load_xattrs(ino, &inode)?.iter().map(from_stored).collect()
    }
}
