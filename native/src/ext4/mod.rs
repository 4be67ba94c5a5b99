//! An ext4 writer, as specified by the kernel's `Documentation/filesystems/ext4/`.
//!
//! `format` creates a filesystem on a [`BlockDevice`](crate::block::BlockDevice),
//! and [`Filesystem::open`] opens one. The operations in `ops`, `remove` and
//! `query` change and read it, and [`Filesystem::commit`] writes the changes.
//! Format modules (one per on-disk structure) do no I/O; the writer modules
//! build on them.

#![forbid(unsafe_code)]

// On-disk structures.
pub mod acl;
pub mod bitmap;
pub mod crc32c;
pub mod dirent;
pub mod dx;
pub mod extent;
pub mod group_desc;
pub mod hash;
pub mod inode;
pub mod journal;
pub mod le;
pub mod superblock;
pub mod xattr;

// The writer.
mod alloc;
mod attrs;
mod cache;
mod data;
mod dir;
pub mod error;
pub mod format;
mod fs;
mod leaf;
pub mod ops;
mod path;
mod query;
mod remove;
mod tree;

pub use error::{Ext4Error, Result};
pub use format::{format, FormatOptions};
pub use fs::{Filesystem, OpenOptions};
pub use inode::Timestamp;
pub use ops::{Attrs, SpecialKind};
pub use query::{Entry, Stat};
