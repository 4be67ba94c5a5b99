//! Creating entries: directories, regular files, symlinks, hard links and
//! special files, plus attribute changes.
//!
//! Creating an entry where one exists replaces it, as a later image layer
//! replaces what lower layers had. A directory over a directory keeps the
//! old one and takes the new attributes. Anything else removes the old
//! entry first, a directory with everything below it. Each operation is
//! all-or-nothing.

use super::data::FileWriter;
use super::dirent::{self, DirEntry};
use super::error::{Ext4Error, Result};
use super::fs::Filesystem;
use super::inode::*;
use super::path::{display, Parent, ROOT_INO};
use super::superblock::RO_COMPAT_DIR_NLINK;

/// Largest link count of a file; directories use `dir_nlink` past it.
pub const MAX_LINKS: u16 = 65000;
/// Maximum symlink target length, so it fits one block with a terminating NUL.
pub const MAX_SYMLINK_LEN: usize = 4095;
/// Largest device major and minor numbers in the kernel's 32-bit encoding.
pub const MAX_MAJOR: u32 = 0xFFF;
pub const MAX_MINOR: u32 = 0xF_FFFF;

/// Ownership, permissions and times of an inode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attrs {
    /// Permission bits, setuid, setgid and sticky (`0o7777`); the file
    /// type comes from the operation.
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub atime: Timestamp,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
}

/// The kind of a special file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecialKind {
    CharDevice { major: u32, minor: u32 },
    BlockDevice { major: u32, minor: u32 },
    Fifo,
    Socket,
}

pub(crate) fn file_type_code(mode: u16) -> u8 {
    match mode & S_IFMT {
        S_IFREG => dirent::FT_REG_FILE,
        S_IFDIR => dirent::FT_DIR,
        S_IFCHR => dirent::FT_CHRDEV,
        S_IFBLK => dirent::FT_BLKDEV,
        S_IFIFO => dirent::FT_FIFO,
        S_IFSOCK => dirent::FT_SOCK,
        S_IFLNK => dirent::FT_SYMLINK,
        _ => dirent::FT_UNKNOWN,
    }
}

fn apply_attrs(inode: &mut Inode, attrs: &Attrs) {
    inode.mode = (inode.mode & S_IFMT) | (attrs.mode & 0o7777);
    inode.uid = attrs.uid;
    inode.gid = attrs.gid;
    inode.atime = attrs.atime;
    inode.mtime = attrs.mtime;
    inode.ctime = attrs.ctime;
}

/// Encodes a device number into `i_block` as the kernel does: the old
/// 16-bit form when major and minor are below 256, else the new form.
fn encode_device(block: &mut [u8; I_BLOCK_SIZE], major: u32, minor: u32) {
    if major < 256 && minor < 256 {
        block[0..4].copy_from_slice(&((major << 8) | minor).to_le_bytes());
    } else {
        let new = (minor & 0xFF) | (major << 8) | ((minor & !0xFF) << 12);
        block[4..8].copy_from_slice(&new.to_le_bytes());
    }
}

/// Decodes a device number from `i_block`.
pub(crate) fn decode_device(block: &[u8; I_BLOCK_SIZE]) -> (u32, u32) {
    let old = u32::from_le_bytes(block[0..4].try_into().expect("4 bytes"));
    if old != 0 {
        return ((old >> 8) & 0xFF, old & 0xFF);
    }
    let new = u32::from_le_bytes(block[4..8].try_into().expect("4 bytes"));
    ((new >> 8) & 0xFFF, (new & 0xFF) | ((new >> 12) & 0xFFF00))
}

impl Filesystem {
    fn check_no_writer(&self) -> Result<()> {
        if self.writer.is_some() {
            return Err(Ext4Error::InvalidState { message: "a file is open for writing; finish or abort it first".into() });
        }
        Ok(())
    }

    /// Runs a path operation under the undo log, naming `path` in errors
    /// raised below the path layer.
    pub(crate) fn path_op<T>(&mut self, path: &[u8], op: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.check_no_writer()?;
        self.transaction(op).map_err(|e| e.at_path(&display(path)))
    }

    /// Allocates and initialises an inode of type `kind` (an `S_IF*` value).
    fn new_inode(&mut self, kind: u16, attrs: &Attrs) -> Result<(u32, Inode)> {
        let ino = self.allocate_inode(kind == S_IFDIR)?;
        let mut inode = Inode { mode: kind, links_count: 1, ..Inode::default() };
        apply_attrs(&mut inode, attrs);
        inode.crtime = attrs.ctime;
        Ok((ino, inode))
    }

    /// Adds `name` → `ino` to the parent, updating the parent's link count
    /// for a subdirectory.
    fn link_into(&mut self, parent: &mut Parent, ino: u32, mode: u16) -> Result<()> {
        let entry = DirEntry { inode: ino, rec_len: 0, file_type: file_type_code(mode), name: parent.name.clone() };
        self.dir_insert(parent.ino, &mut parent.inode, &entry)?;
        if mode & S_IFMT == S_IFDIR && parent.inode.links_count != 1 {
            if parent.inode.links_count >= MAX_LINKS && self.sb.feature_ro_compat & RO_COMPAT_DIR_NLINK != 0 {
                // dir_nlink: a count of 1 means "too many to count".
                parent.inode.links_count = 1;
            } else if parent.inode.links_count >= MAX_LINKS {
                return Err(Ext4Error::TooManyLinks { path: String::new(), links: parent.inode.links_count as u32 });
            } else {
                parent.inode.links_count += 1;
            }
        }
        self.write_inode(parent.ino, &parent.inode)
    }

    /// Removes whatever `parent.name` names, so a new entry can take its
    /// place. Returns the existing directory instead when `keep_dir` is set
    /// and the entry is one.
    fn clear_target(&mut self, parent: &mut Parent, keep_dir: bool) -> Result<Option<(u32, Inode)>> {
        let Some(entry) = self.child(parent)? else { return Ok(None) };
        let inode = self.read_inode(entry.inode)?;
        if keep_dir && inode.is_dir() {
            return Ok(Some((entry.inode, inode)));
        }
        self.remove_entry(parent, &entry)?;
        Ok(None)
    }

    /// Creates a directory, or sets the attributes of the one already there.
    pub fn mkdir(&mut self, path: &[u8], attrs: &Attrs) -> Result<u32> {
        self.path_op(path, |fs| {
            if super::path::components(path)?.is_empty() {
                return fs.set_inode_attrs(ROOT_INO, attrs).map(|_| ROOT_INO);
            }
            let mut parent = fs.resolve_parent(path)?;
            if let Some((ino, _)) = fs.clear_target(&mut parent, true)? {
                fs.set_inode_attrs(ino, attrs)?;
                return Ok(ino);
            }
            let (ino, mut inode) = fs.new_inode(S_IFDIR, attrs)?;
            inode.links_count = 2;
            fs.dir_init(ino, &mut inode, parent.ino)?;
            fs.write_inode(ino, &inode)?;
            fs.link_into(&mut parent, ino, S_IFDIR)?;
            Ok(ino)
        })
    }

    /// Creates a symlink to `target` (1 to 4095 bytes, no NUL).
    pub fn symlink(&mut self, path: &[u8], target: &[u8], attrs: &Attrs) -> Result<u32> {
        self.path_op(path, |fs| {
            if target.is_empty() || target.len() > MAX_SYMLINK_LEN || target.contains(&0) {
                return Err(Ext4Error::InvalidArgument {
                    path: display(path),
                    message: format!("symlink target must be 1 to {MAX_SYMLINK_LEN} bytes without NUL, got {} bytes", target.len()),
                });
            }
            let mut parent = fs.resolve_parent(path)?;
            fs.clear_target(&mut parent, false)?;
            let (ino, mut inode) = fs.new_inode(S_IFLNK, attrs)?;
            inode.mode = S_IFLNK | 0o777;
            inode.size = target.len() as u64;
            if target.len() < I_BLOCK_SIZE {
                // A fast symlink keeps its target in i_block.
                inode.block[..target.len()].copy_from_slice(target);
            } else {
                let (block, _) = fs.allocate_blocks(1)?;
                fs.cache.write_new(block)[..target.len()].copy_from_slice(target);
                let extents = [super::extent::Extent { logical: 0, len: 1, physical: block }];
                fs.write_extents(ino, &mut inode, &extents)?;
            }
            fs.write_inode(ino, &inode)?;
            fs.link_into(&mut parent, ino, S_IFLNK)?;
            Ok(ino)
        })
    }

    /// Creates a character or block device, FIFO or socket.
    pub fn mknod(&mut self, path: &[u8], kind: SpecialKind, attrs: &Attrs) -> Result<u32> {
        self.path_op(path, |fs| {
            let (mode, device) = match kind {
                SpecialKind::CharDevice { major, minor } => (S_IFCHR, Some((major, minor))),
                SpecialKind::BlockDevice { major, minor } => (S_IFBLK, Some((major, minor))),
                SpecialKind::Fifo => (S_IFIFO, None),
                SpecialKind::Socket => (S_IFSOCK, None),
            };
            if let Some((major, minor)) = device {
                if major > MAX_MAJOR || minor > MAX_MINOR {
                    return Err(Ext4Error::InvalidArgument {
                        path: display(path),
                        message: format!("device {major}:{minor} is out of range; major is at most {MAX_MAJOR} and minor at most {MAX_MINOR}"),
                    });
                }
            }
            let mut parent = fs.resolve_parent(path)?;
            fs.clear_target(&mut parent, false)?;
            let (ino, mut inode) = fs.new_inode(mode, attrs)?;
            if let Some((major, minor)) = device {
                encode_device(&mut inode.block, major, minor);
            }
            fs.write_inode(ino, &inode)?;
            fs.link_into(&mut parent, ino, mode)?;
            Ok(ino)
        })
    }

    /// Makes `path` another name of the inode at `existing`, which may be
    /// anything but a directory.
    pub fn link(&mut self, path: &[u8], existing: &[u8]) -> Result<()> {
        self.path_op(path, |fs| {
            let (ino, inode) = fs.resolve_existing(existing)?;
            if inode.is_dir() {
                return Err(Ext4Error::IsADirectory { path: display(existing) });
            }
            if inode.links_count >= MAX_LINKS {
                return Err(Ext4Error::TooManyLinks { path: display(existing), links: inode.links_count as u32 });
            }
            let mut parent = fs.resolve_parent(path)?;
            if fs.child(&parent)?.is_some_and(|entry| entry.inode == ino) {
                return Ok(());
            }
            fs.clear_target(&mut parent, false)?;
            // Replacing the target may have removed the last other link.
            let (ino, mut inode) = fs.resolve_existing(existing)?;
            inode.links_count += 1;
            fs.write_inode(ino, &inode)?;
            let parent_ino = parent.ino;
            parent.inode = fs.read_inode(parent_ino)?;
            fs.link_into(&mut parent, ino, inode.mode)
        })
    }

    /// Sets mode bits, owner and times of the entry at `path`.
    pub fn set_attrs(&mut self, path: &[u8], attrs: &Attrs) -> Result<()> {
        self.path_op(path, |fs| {
            let (ino, _) = fs.resolve_existing(path)?;
            fs.set_inode_attrs(ino, attrs)
        })
    }

    fn set_inode_attrs(&mut self, ino: u32, attrs: &Attrs) -> Result<()> {
        let mut inode = self.read_inode(ino)?;
        apply_attrs(&mut inode, attrs);
        self.write_inode(ino, &inode)
    }

    /// Sets one extended attribute, given by its full name (such as
    /// `user.mime` or `system.posix_acl_access`) and its value in the form
    /// tar archives carry (ACLs in the xattr format, version 2).
    pub fn set_xattr(&mut self, path: &[u8], name: &[u8], value: &[u8]) -> Result<()> {
        self.path_op(path, |fs| {
            let stored = super::attrs::to_stored(name, value)?;
            let (ino, mut inode) = fs.resolve_existing(path)?;
            let mut xattrs = fs.load_xattrs(ino, &inode)?;
            xattrs.retain(|x| !(x.index == stored.index && x.name == stored.name));
            xattrs.push(stored);
            fs.store_xattrs(&mut inode, xattrs)?;
            fs.write_inode(ino, &inode)
        })
    }

    /// Removes one extended attribute; returns whether it existed.
    pub fn remove_xattr(&mut self, path: &[u8], name: &[u8]) -> Result<bool> {
        self.path_op(path, |fs| {
            let Some((index, suffix)) = super::xattr::split_name(name) else { return Ok(false) };
            let (ino, mut inode) = fs.resolve_existing(path)?;
            let mut xattrs = fs.load_xattrs(ino, &inode)?;
            let before = xattrs.len();
            xattrs.retain(|x| !(x.index == index && x.name == suffix));
            if xattrs.len() == before {
                return Ok(false);
            }
            fs.store_xattrs(&mut inode, xattrs)?;
            fs.write_inode(ino, &inode)?;
            Ok(true)
        })
    }

    // ---- Regular files ----

    /// Starts a regular file at `path`; its content follows through
    /// `write_file` and `skip_file`, and `finish_file` links it in. Until
    /// then no other operation may run.
    pub fn begin_file(&mut self, path: &[u8], attrs: &Attrs) -> Result<()> {
        self.check_no_writer()?;
        self.resolve_parent(path)?;
        self.begin();
        match self.new_inode(S_IFREG, attrs) {
            Ok((ino, inode)) => {
                self.writer = Some(FileWriter { path: path.to_vec(), ino, inode, extents: Vec::new(), size: 0, pending: Vec::new() });
                Ok(())
            }
            Err(error) => {
                self.rollback();
                Err(error.at_path(&display(path)))
            }
        }
    }

    fn take_writer(&mut self) -> Result<FileWriter> {
        self.writer.take().ok_or_else(|| Ext4Error::InvalidState { message: "no file is open for writing; call begin_file first".into() })
    }

    /// Runs a step of the open file; on error the whole file is dropped.
    fn writer_step(&mut self, step: impl FnOnce(&mut Self, &mut FileWriter) -> Result<()>) -> Result<()> {
        let mut writer = self.take_writer()?;
        match step(self, &mut writer) {
            Ok(()) => {
                self.writer = Some(writer);
                Ok(())
            }
            Err(error) => {
                self.rollback();
                Err(error.at_path(&display(&writer.path)))
            }
        }
    }

    /// Appends bytes to the open file.
    pub fn write_file(&mut self, data: &[u8]) -> Result<()> {
        self.writer_step(|fs, writer| fs.writer_append(writer, data))
    }

    /// Appends a hole of `length` bytes to the open file.
    pub fn skip_file(&mut self, length: u64) -> Result<()> {
        self.writer_step(|fs, writer| fs.writer_skip(writer, length))
    }

    /// Writes the open file's inode and links it at its path, replacing
    /// what was there. Returns the inode number.
    pub fn finish_file(&mut self) -> Result<u32> {
        let mut writer = self.take_writer()?;
        let result = self.finish_writer(&mut writer);
        match result {
            Ok(()) => {
                self.end();
                Ok(writer.ino)
            }
            Err(error) => {
                self.rollback();
                Err(error.at_path(&display(&writer.path)))
            }
        }
    }

    fn finish_writer(&mut self, writer: &mut FileWriter) -> Result<()> {
        self.writer_flush_tail(writer)?;
        let mut inode = writer.inode.clone();
        inode.size = writer.size;
        self.write_extents(writer.ino, &mut inode, &writer.extents)?;
        self.write_inode(writer.ino, &inode)?;
        let mut parent = self.resolve_parent(&writer.path)?;
        self.clear_target(&mut parent, false)?;
        let parent_ino = parent.ino;
        parent.inode = self.read_inode(parent_ino)?;
        self.link_into(&mut parent, writer.ino, S_IFREG)
    }

    /// Drops the open file and everything allocated for it.
    pub fn abort_file(&mut self) {
        if self.writer.take().is_some() {
            self.rollback();
        }
    }

    /// Writes a whole regular file from memory.
    pub fn write_whole_file(&mut self, path: &[u8], attrs: &Attrs, data: &[u8]) -> Result<u32> {
        self.begin_file(path, attrs)?;
        self.write_file(data)?;
        self.finish_file()
    }
}
