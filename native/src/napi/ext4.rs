//! Node-API exports of the ext4 writer.
//!
//! The layer applier calls these synchronously, once or a few times per
//! tar entry, from a worker thread: every export taking a filesystem
//! handle returns at once (`Reply::Value`). Paths, names, symlink targets
//! and attribute values cross as Buffers, since ext4 names are bytes.
//! Ownership, mode and times cross as one packed Buffer (see `ATTRS_SIZE`),
//! so each call stays within the argument limit and keeps signed 64-bit
//! seconds exact.

use std::path::Path;

use super::{CallContext, Export, Reply, Value};
use crate::block::{BlockDevice, RawFile};
use crate::ext4::{self, Attrs, Filesystem, FormatOptions, OpenOptions, SpecialKind, Stat, Timestamp};
use crate::report::ErrorReport;

pub const EXPORTS: &[(&str, Export)] = &[
    ("ext4Format", format),
    ("ext4Open", open),
    ("ext4Commit", commit),
    ("ext4Close", close),
    ("ext4Mkdir", mkdir),
    ("ext4Symlink", symlink),
    ("ext4Link", link),
    ("ext4Mknod", mknod),
    ("ext4FileBegin", file_begin),
    ("ext4FileWrite", file_write),
    ("ext4FileSkip", file_skip),
    ("ext4FileFinish", file_finish),
    ("ext4FileAbort", file_abort),
    ("ext4Remove", remove),
    ("ext4ClearDir", clear_dir),
    ("ext4SetAttrs", set_attrs),
    ("ext4SetXattr", set_xattr),
    ("ext4RemoveXattr", remove_xattr),
    ("ext4Xattrs", xattrs),
    ("ext4Lstat", lstat),
    ("ext4ReadDir", read_dir),
    ("ext4ReadFile", read_file),
    ("ext4ResolveSymlinks", resolve_symlinks),
];

/// Bytes of the packed attributes Buffer. All fields are little-endian:
/// mode, uid and gid as u32 at 0, 4 and 8, then 4 reserved bytes. Then
/// come atime, mtime and ctime seconds as i64 at 16, 24 and 32, and their
/// nanoseconds as u32 at 40, 44 and 48, then 4 reserved bytes.
pub const ATTRS_SIZE: usize = 56;

/// The native object behind a filesystem handle; `None` once closed.
pub struct Ext4Handle {
    fs: Option<Filesystem>,
}

/// Wraps an open filesystem on any device as a JavaScript handle. A qcow2
/// chain plugs in here once its binding exists.
pub fn handle_for(device: Box<dyn BlockDevice + Send>, options: OpenOptions) -> Result<Value, ErrorReport> {
    let fs = Filesystem::open(device, options)?;
    Ok(Value::handle(Ext4Handle { fs: Some(fs) }))
}

fn with_fs<T>(context: &CallContext, f: impl FnOnce(&mut Filesystem) -> ext4::Result<T>) -> Result<T, ErrorReport> {
    let handle = context.handle::<Ext4Handle>(0)?;
    let mut guard = handle.lock().map_err(|_| ErrorReport::new("ERR_EXT4_INVALID_STATE", "filesystem handle was poisoned by an earlier panic"))?;
    let fs = guard.fs.as_mut().ok_or_else(|| ErrorReport::new("ERR_EXT4_INVALID_STATE", "filesystem handle is closed"))?;
    Ok(f(fs)?)
}

fn value(v: Value) -> Result<Reply, ErrorReport> {
    Ok(Reply::Value(v))
}

fn attrs(context: &CallContext, index: usize) -> Result<Attrs, ErrorReport> {
    let bytes = context.bytes(index)?;
    if bytes.len() != ATTRS_SIZE {
        return Err(ErrorReport::new("ERR_INVALID_ARG_VALUE", format!("argument {index} must be a {ATTRS_SIZE}-byte attributes Buffer")));
    }
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let i64_at = |at: usize| i64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let time = |seconds: usize, nanoseconds: usize| Timestamp { seconds: i64_at(seconds), nanoseconds: u32_at(nanoseconds) };
    Ok(Attrs {
        mode: (u32_at(0) & 0o7777) as u16,
        uid: u32_at(4),
        gid: u32_at(8),
        atime: time(16, 40),
        mtime: time(24, 44),
        ctime: time(32, 48),
    })
}

fn format(context: &CallContext) -> Result<Reply, ErrorReport> {
    let path = context.string(0)?;
    let options = FormatOptions {
        size: context.u64(1)?,
        seed: context.bytes(2)?,
        timestamp: context.u64(3)? as i64,
        bytes_per_inode: context.u64(4)?,
        cluster_size: context.u64(5)?,
        ..FormatOptions::default()
    };
    let device = RawFile::create(Path::new(&path), options.size).map_err(|e| ErrorReport::from(e).with_file(&path))?;
    ext4::format(Box::new(device), &options).map_err(|e| ErrorReport::from(e).with_file(&path))?;
    value(Value::Undefined)
}

fn open(context: &CallContext) -> Result<Reply, ErrorReport> {
    let path = context.string(0)?;
    let options = OpenOptions { cluster_size: context.u64(1)? };
    let device = RawFile::open(Path::new(&path), true).map_err(|e| ErrorReport::from(e).with_file(&path))?;
    value(handle_for(Box::new(device), options).map_err(|e| e.with_file(&path))?)
}

fn commit(context: &CallContext) -> Result<Reply, ErrorReport> {
    with_fs(context, |fs| fs.commit())?;
    value(Value::Undefined)
}

/// Drops the filesystem without committing, closing its device.
fn close(context: &CallContext) -> Result<Reply, ErrorReport> {
    let handle = context.handle::<Ext4Handle>(0)?;
    let mut guard = handle.lock().map_err(|_| ErrorReport::new("ERR_EXT4_INVALID_STATE", "filesystem handle was poisoned"))?;
    guard.fs = None;
    value(Value::Undefined)
}

fn ino(number: u32) -> Result<Reply, ErrorReport> {
    value(Value::Number(number as f64))
}

fn mkdir(context: &CallContext) -> Result<Reply, ErrorReport> {
    let (path, attrs) = (context.bytes(1)?, attrs(context, 2)?);
    ino(with_fs(context, |fs| fs.mkdir(&path, &attrs))?)
}

fn symlink(context: &CallContext) -> Result<Reply, ErrorReport> {
    let (path, target, attrs) = (context.bytes(1)?, context.bytes(2)?, attrs(context, 3)?);
    ino(with_fs(context, |fs| fs.symlink(&path, &target, &attrs))?)
}

fn link(context: &CallContext) -> Result<Reply, ErrorReport> {
    let (path, existing) = (context.bytes(1)?, context.bytes(2)?);
    with_fs(context, |fs| fs.link(&path, &existing))?;
    value(Value::Undefined)
}

/// Arguments: handle, path, file type (`S_IFCHR`, `S_IFBLK`, `S_IFIFO` or
/// `S_IFSOCK` as a number), major, minor, attributes.
fn mknod(context: &CallContext) -> Result<Reply, ErrorReport> {
    let path = context.bytes(1)?;
    let (kind, major, minor) = (context.u64(2)?, context.u64(3)? as u32, context.u64(4)? as u32);
    let attrs = attrs(context, 5)?;
    let kind = match kind as u16 {
        ext4::inode::S_IFCHR => SpecialKind::CharDevice { major, minor },
        ext4::inode::S_IFBLK => SpecialKind::BlockDevice { major, minor },
        ext4::inode::S_IFIFO => SpecialKind::Fifo,
        ext4::inode::S_IFSOCK => SpecialKind::Socket,
        other => return Err(ErrorReport::new("ERR_INVALID_ARG_VALUE", format!("file type {other:#o} is not a device, FIFO or socket"))),
    };
    ino(with_fs(context, |fs| fs.mknod(&path, kind, &attrs))?)
}

fn file_begin(context: &CallContext) -> Result<Reply, ErrorReport> {
    let (path, attrs) = (context.bytes(1)?, attrs(context, 2)?);
    with_fs(context, |fs| fs.begin_file(&path, &attrs))?;
    value(Value::Undefined)
}

fn file_write(context: &CallContext) -> Result<Reply, ErrorReport> {
    let data = context.bytes(1)?;
    with_fs(context, |fs| fs.write_file(&data))?;
    value(Value::Undefined)
}

fn file_skip(context: &CallContext) -> Result<Reply, ErrorReport> {
    let length = context.u64(1)?;
    with_fs(context, |fs| fs.skip_file(length))?;
    value(Value::Undefined)
}

fn file_finish(context: &CallContext) -> Result<Reply, ErrorReport> {
    ino(with_fs(context, |fs| fs.finish_file())?)
}

fn file_abort(context: &CallContext) -> Result<Reply, ErrorReport> {
    with_fs(context, |fs| {
        fs.abort_file();
        Ok(())
    })?;
    value(Value::Undefined)
}

fn remove(context: &CallContext) -> Result<Reply, ErrorReport> {
    let path = context.bytes(1)?;
    with_fs(context, |fs| fs.remove(&path))?;
    value(Value::Undefined)
}

fn clear_dir(context: &CallContext) -> Result<Reply, ErrorReport> {
    let path = context.bytes(1)?;
    with_fs(context, |fs| fs.clear_dir(&path))?;
    value(Value::Undefined)
}

fn set_attrs(context: &CallContext) -> Result<Reply, ErrorReport> {
    let (path, attrs) = (context.bytes(1)?, attrs(context, 2)?);
    with_fs(context, |fs| fs.set_attrs(&path, &attrs))?;
    value(Value::Undefined)
}

fn set_xattr(context: &CallContext) -> Result<Reply, ErrorReport> {
    let (path, name, data) = (context.bytes(1)?, context.bytes(2)?, context.bytes(3)?);
    with_fs(context, |fs| fs.set_xattr(&path, &name, &data))?;
    value(Value::Undefined)
}

fn remove_xattr(context: &CallContext) -> Result<Reply, ErrorReport> {
    let (path, name) = (context.bytes(1)?, context.bytes(2)?);
    value(Value::Bool(with_fs(context, |fs| fs.remove_xattr(&path, &name))?))
}

fn xattrs(context: &CallContext) -> Result<Reply, ErrorReport> {
    let path = context.bytes(1)?;
    let list = with_fs(context, |fs| fs.xattrs(&path))?;
    let items = list
        .into_iter()
        .map(|(name, data)| Value::Object(vec![("name", Value::Buffer(name)), ("value", Value::Buffer(data))]))
        .collect();
    value(Value::Array(items))
}

fn type_name(mode: u16) -> &'static str {
    use ext4::inode::*;
    match mode & S_IFMT {
        S_IFREG => "file",
        S_IFDIR => "directory",
        S_IFLNK => "symlink",
        S_IFCHR => "char-device",
        S_IFBLK => "block-device",
        S_IFIFO => "fifo",
        S_IFSOCK => "socket",
        _ => "unknown",
    }
}

fn stat_value(stat: Stat) -> Value {
    let time = |t: Timestamp| Value::Number(t.seconds as f64);
    let nanos = |t: Timestamp| Value::Number(t.nanoseconds as f64);
    let mut fields = vec![
        ("ino", Value::Number(stat.ino as f64)),
        ("type", Value::String(type_name(stat.mode).into())),
        ("mode", Value::Number(stat.mode as f64)),
        ("uid", Value::Number(stat.uid as f64)),
        ("gid", Value::Number(stat.gid as f64)),
        ("size", Value::Number(stat.size as f64)),
        ("nlink", Value::Number(stat.links as f64)),
        ("atime", time(stat.atime)),
        ("atimeNs", nanos(stat.atime)),
        ("mtime", time(stat.mtime)),
        ("mtimeNs", nanos(stat.mtime)),
        ("ctime", time(stat.ctime)),
        ("ctimeNs", nanos(stat.ctime)),
    ];
    if let Some(target) = stat.target {
        fields.push(("target", Value::Buffer(target)));
    }
    if let Some((major, minor)) = stat.device {
        fields.push(("rdevMajor", Value::Number(major as f64)));
        fields.push(("rdevMinor", Value::Number(minor as f64)));
    }
    Value::Object(fields)
}

fn lstat(context: &CallContext) -> Result<Reply, ErrorReport> {
    let path = context.bytes(1)?;
    let stat = with_fs(context, |fs| fs.lstat(&path))?;
    value(stat.map_or(Value::Null, stat_value))
}

fn read_dir(context: &CallContext) -> Result<Reply, ErrorReport> {
    let path = context.bytes(1)?;
    let entries = with_fs(context, |fs| fs.read_dir(&path))?;
    let items = entries
        .into_iter()
        .map(|e| {
            Value::Object(vec![
                ("name", Value::Buffer(e.name)),
                ("ino", Value::Number(e.ino as f64)),
                ("fileType", Value::Number(e.file_type as f64)),
            ])
        })
        .collect();
    value(Value::Array(items))
}

fn read_file(context: &CallContext) -> Result<Reply, ErrorReport> {
    let path = context.bytes(1)?;
    value(Value::Buffer(with_fs(context, |fs| fs.read_file(&path))?))
}

fn resolve_symlinks(context: &CallContext) -> Result<Reply, ErrorReport> {
    let path = context.bytes(1)?;
    value(Value::Buffer(with_fs(context, |fs| fs.resolve_symlinks(&path))?))
}
