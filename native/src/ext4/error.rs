//! Errors of the ext4 writer, each with a stable `ERR_EXT4_` code.

use std::fmt;
use std::io;

use crate::report::ErrorReport;

#[derive(Debug)]
pub enum Ext4Error {
    /// A path component is longer than 255 bytes.
    NameTooLong { path: String, length: usize },
    /// A name is empty, `.` or `..`, or contains `/` or NUL.
    InvalidName { path: String },
    /// A path component before the last one is not a directory.
    NotADirectory { path: String },
    NotFound { path: String },
    IsADirectory { path: String },
    /// A new link would exceed the link limit (65,000 for files).
    TooManyLinks { path: String, links: u32 },
    /// No free block or inode is left, or a directory index is full.
    NoSpace { path: String, what: &'static str },
    /// An argument is out of range, such as a device major above 4095.
    InvalidArgument { path: String, message: String },
    /// A file would exceed the largest size an extent-mapped file can have.
    FileTooLarge { path: String, size: u64 },
    /// The image uses a feature this writer does not handle.
    Unsupported { message: String },
    /// On-disk data is inconsistent: a bad magic, checksum or pointer.
    Corrupt { message: String, offset: Option<u64> },
    /// An operation needs a state the filesystem is not in, such as writing
    /// file data with no file open.
    InvalidState { message: String },
    Io(io::Error),
}

pub type Result<T> = std::result::Result<T, Ext4Error>;

impl Ext4Error {
    pub fn corrupt(message: impl Into<String>, offset: Option<u64>) -> Self {
        Ext4Error::Corrupt { message: message.into(), offset }
    }

    /// Returns the stable code that JavaScript receives as `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Ext4Error::NameTooLong { .. } => "ERR_EXT4_NAME_TOO_LONG",
            Ext4Error::InvalidName { .. } => "ERR_EXT4_INVALID_NAME",
            Ext4Error::NotADirectory { .. } => "ERR_EXT4_NOT_A_DIRECTORY",
            Ext4Error::NotFound { .. } => "ERR_EXT4_NOT_FOUND",
            Ext4Error::IsADirectory { .. } => "ERR_EXT4_IS_A_DIRECTORY",
            Ext4Error::TooManyLinks { .. } => "ERR_EXT4_TOO_MANY_LINKS",
            Ext4Error::NoSpace { .. } => "ERR_EXT4_NO_SPACE",
            Ext4Error::InvalidArgument { .. } => "ERR_EXT4_INVALID_ARGUMENT",
            Ext4Error::FileTooLarge { .. } => "ERR_EXT4_FILE_TOO_LARGE",
            Ext4Error::Unsupported { .. } => "ERR_EXT4_UNSUPPORTED",
            Ext4Error::Corrupt { .. } => "ERR_EXT4_CORRUPT",
            Ext4Error::InvalidState { .. } => "ERR_EXT4_INVALID_STATE",
            Ext4Error::Io(_) => "ERR_EXT4_IO",
        }
    }

    /// Returns the path inside the filesystem that the error is about, if any.
    pub fn path(&self) -> Option<&str> {
        match self {
            Ext4Error::NameTooLong { path, .. }
            | Ext4Error::InvalidName { path }
            | Ext4Error::NotADirectory { path }
            | Ext4Error::NotFound { path }
            | Ext4Error::IsADirectory { path }
            | Ext4Error::TooManyLinks { path, .. }
            | Ext4Error::NoSpace { path, .. }
            | Ext4Error::InvalidArgument { path, .. }
            | Ext4Error::FileTooLarge { path, .. } => Some(path),
            _ => None,
        }
    }

    /// Fills in the path of an error raised below the path layer, which
    /// leaves it empty.
    pub fn at_path(mut self, at: &str) -> Self {
        match &mut self {
            Ext4Error::NoSpace { path, .. }
            | Ext4Error::InvalidArgument { path, .. }
            | Ext4Error::FileTooLarge { path, .. }
            | Ext4Error::TooManyLinks { path, .. }
                if path.is_empty() =>
            {
                *path = at.to_string()
            }
            _ => {}
        }
        self
    }
}

impl fmt::Display for Ext4Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ext4Error::NameTooLong { path, length } => {
                write!(f, "name in {path:?} is {length} bytes long; ext4 names are at most 255 bytes")
            }
            Ext4Error::InvalidName { path } => {
                write!(f, "invalid name in {path:?}: names must be non-empty, not . or .., and contain no / or NUL")
            }
            Ext4Error::NotADirectory { path } => write!(f, "{path:?} is not a directory"),
            Ext4Error::NotFound { path } => write!(f, "{path:?} not found"),
            Ext4Error::IsADirectory { path } => write!(f, "{path:?} is a directory"),
            Ext4Error::TooManyLinks { path, links } => {
                write!(f, "{path:?} already has {links} links, the maximum")
            }
            Ext4Error::NoSpace { path, what } => write!(f, "no space left for {what} while writing {path:?}"),
            Ext4Error::InvalidArgument { path, message } => write!(f, "{message} (at {path:?})"),
            Ext4Error::FileTooLarge { path, size } => write!(
                f,
                "{path:?} would be {size} bytes; an extent-mapped file with 4096-byte blocks holds at most 2^32-1 blocks"
            ),
            Ext4Error::Unsupported { message } => write!(f, "unsupported filesystem: {message}"),
            Ext4Error::Corrupt { message, offset } => match offset {
                Some(offset) => write!(f, "corrupt filesystem at byte {offset}: {message}"),
                None => write!(f, "corrupt filesystem: {message}"),
            },
            Ext4Error::InvalidState { message } => write!(f, "{message}"),
            Ext4Error::Io(error) => write!(f, "I/O error: {error}"),
        }
    }
}

impl std::error::Error for Ext4Error {}

impl From<io::Error> for Ext4Error {
    fn from(error: io::Error) -> Self {
        Ext4Error::Io(error)
    }
}

impl From<Ext4Error> for ErrorReport {
    fn from(error: Ext4Error) -> Self {
        if let Ext4Error::Io(inner) = error {
            return ErrorReport::from(inner);
        }
        let mut report = ErrorReport::new(error.code(), error.to_string());
        if let Some(path) = error.path() {
            report = report.with_path(path);
        }
        if let Ext4Error::Corrupt { offset: Some(offset), .. } = error {
            report = report.with_offset(offset);
        }
        report
    }
}
