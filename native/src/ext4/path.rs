//! Path parsing and resolution inside the filesystem.
//!
//! Paths are bytes. Components are separated by `/`; empty components and
//! `.` are skipped, so `a//b/./c` is `a/b/c`. `..` is rejected, since the
//! layer applier never needs it and it could escape a directory.

use super::dirent::{DirEntry, MAX_NAME_LEN};
use super::error::{Ext4Error, Result};
use super::fs::Filesystem;
use super::inode::{Inode, S_IFLNK};

pub const ROOT_INO: u32 = 2;

pub(crate) fn display(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// Splits a path into validated names.
pub(crate) fn components(path: &[u8]) -> Result<Vec<&[u8]>> {
    let mut names = Vec::new();
    for name in path.split(|&b| b == b'/') {
        if name.is_empty() || name == b"." {
            continue;
        }
        if name.len() > MAX_NAME_LEN {
            return Err(Ext4Error::NameTooLong { path: display(path), length: name.len() });
        }
        if name == b".." || name.contains(&0) {
            return Err(Ext4Error::InvalidName { path: display(path) });
        }
        names.push(name);
    }
    Ok(names)
}

/// A path's parent directory and final name.
pub(crate) struct Parent {
    pub ino: u32,
    pub inode: Inode,
    pub name: Vec<u8>,
}

impl Filesystem {
    /// Walks `names` from the root; every one must be a directory.
    fn walk_dirs(&mut self, path: &[u8], names: &[&[u8]]) -> Result<(u32, Inode)> {
        let mut ino = ROOT_INO;
        let mut inode = self.read_inode(ino)?;
        for (depth, name) in names.iter().enumerate() {
            let so_far = names[..=depth].join(&b'/');
            let Some(entry) = self.dir_lookup(ino, &inode, name)? else {
                return Err(Ext4Error::NotFound { path: display(&so_far) });
            };
            ino = entry.inode;
            inode = self.read_inode(ino)?;
            if !inode.is_dir() {
                let _ = path;
                return Err(Ext4Error::NotADirectory { path: display(&so_far) });
            }
        }
        Ok((ino, inode))
    }

    /// Resolves the parent directory of `path`, which must not be the root.
    pub(crate) fn resolve_parent(&mut self, path: &[u8]) -> Result<Parent> {
        let names = components(path)?;
        let Some((name, dirs)) = names.split_last() else {
            return Err(Ext4Error::InvalidName { path: display(path) });
        };
        let (ino, inode) = self.walk_dirs(path, dirs)?;
        Ok(Parent { ino, inode, name: name.to_vec() })
    }

    /// Resolves `path` without following a final symlink; `None` when the
    /// last component does not exist.
    pub(crate) fn resolve(&mut self, path: &[u8]) -> Result<Option<(u32, Inode)>> {
        let names = components(path)?;
        let Some((name, dirs)) = names.split_last() else {
            let inode = self.read_inode(ROOT_INO)?;
            return Ok(Some((ROOT_INO, inode)));
        };
        let (dir, dir_inode) = self.walk_dirs(path, dirs)?;
        let Some(entry) = self.dir_lookup(dir, &dir_inode, name)? else { return Ok(None) };
        let inode = self.read_inode(entry.inode)?;
        Ok(Some((entry.inode, inode)))
    }

    pub(crate) fn resolve_existing(&mut self, path: &[u8]) -> Result<(u32, Inode)> {
        self.resolve(path)?.ok_or_else(|| Ext4Error::NotFound { path: display(path) })
    }

    /// Looks up the entry a parent holds for its final name.
    pub(crate) fn child(&mut self, parent: &Parent) -> Result<Option<DirEntry>> {
        self.dir_lookup(parent.ino, &parent.inode, &parent.name)
    }

    /// Reads a symlink's target.
    pub(crate) fn link_target(&mut self, ino: u32, inode: &Inode) -> Result<Vec<u8>> {
        debug_assert_eq!(inode.file_type(), S_IFLNK);
        let len = inode.size as usize;
        if len < inode.block.len() {
            return Ok(inode.block[..len].to_vec());
        }
        let extents = self.read_extents(ino, inode)?;
        let Some(first) = extents.first() else {
            return Err(Ext4Error::corrupt(format!("symlink inode {ino} has no block"), None));
        };
        let data = self.read_block(first.physical)?;
        Ok(data[..len.min(data.len())].to_vec())
    }
}

/// Most symlinks one resolution follows, as Linux's `MAXSYMLINKS`.
pub const MAX_SYMLINK_HOPS: usize = 40;

impl Filesystem {
    /// Returns `path` with every symlink in it resolved inside the image, as
    /// if the image root were `/` (a chroot): absolute targets start at the
    /// image root and `..` stops there. Components that do not exist are
    /// kept as written, so the result also names where a new entry would go.
    pub fn resolve_symlinks(&mut self, path: &[u8]) -> Result<Vec<u8>> {
        let mut resolved: Vec<Vec<u8>> = Vec::new();
        let mut pending: std::collections::VecDeque<Vec<u8>> = path.split(|&b| b == b'/').map(<[u8]>::to_vec).collect();
        let mut hops = 0;
        let mut exists = true;
        while let Some(name) = pending.pop_front() {
            if name.is_empty() || name == b"." {
                continue;
            }
            if name == b".." {
                resolved.pop();
                continue;
            }
            if name.len() > MAX_NAME_LEN {
                return Err(Ext4Error::NameTooLong { path: display(path), length: name.len() });
            }
            if name.contains(&0) {
                return Err(Ext4Error::InvalidName { path: display(path) });
            }
            resolved.push(name);
            if !exists {
                continue;
            }
            let candidate = resolved.join(&b'/');
            let found = match self.resolve(&candidate) {
                Ok(found) => found,
                Err(Ext4Error::NotADirectory { .. }) => return Err(Ext4Error::NotADirectory { path: display(&candidate) }),
                Err(error) => return Err(error),
            };
            let Some((ino, inode)) = found else {
                exists = false;
                continue;
            };
            if inode.file_type() != S_IFLNK {
                continue;
            }
            hops += 1;
            if hops > MAX_SYMLINK_HOPS {
                return Err(Ext4Error::InvalidArgument { path: display(path), message: format!("more than {MAX_SYMLINK_HOPS} levels of symbolic links") });
            }
            let target = self.link_target(ino, &inode)?;
            resolved.pop();
            if target.starts_with(b"/") {
                resolved.clear();
            }
            for name in target.split(|&b| b == b'/').rev() {
                pending.push_front(name.to_vec());
            }
        }
        Ok(resolved.join(&b'/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_skip_empty_and_dot() {
        assert_eq!(components(b"/a//b/./c/").unwrap(), vec![&b"a"[..], b"b", b"c"]);
        assert!(components(b"/").unwrap().is_empty());
    }

    #[test]
    fn components_reject_bad_names() {
        assert!(matches!(components(&[b'x'; 256]), Err(Ext4Error::NameTooLong { length: 256, .. })));
        assert!(components(&[b'x'; 255]).is_ok());
        assert!(matches!(components(b"a/../b"), Err(Ext4Error::InvalidName { .. })));
        assert!(matches!(components(b"a\0b"), Err(Ext4Error::InvalidName { .. })));
    }
}
