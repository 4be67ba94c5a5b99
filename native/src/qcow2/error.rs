//! Errors of the qcow2 engine and their stable `ERR_QCOW2_*` codes.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::report::ErrorReport;

/// Reason a backing file name was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackingRejection {
    /// The name starts with a protocol prefix such as `nbd:` or `http:`.
    Protocol,
    /// The name is a `json:{...}` pseudo-filename.
    Json,
    /// The resolved path lies outside the allowed directory.
    OutsideAllowedDir { resolved: PathBuf, allowed: PathBuf },
    /// The name is empty or not valid UTF-8.
    Invalid,
    /// The path is not a regular file, such as a FIFO, which could block
    /// the open, or a device.
    NotRegularFile,
}

#[derive(Debug)]
pub enum Qcow2Error {
    /// Reading or writing `file` failed at `offset`.
    Io { file: PathBuf, offset: Option<u64>, source: io::Error },
    /// A field contains a value that the specification does not allow.
    Corrupt { file: PathBuf, offset: u64, field: &'static str, value: u64, expected: String },
    /// A valid image uses a feature this engine does not implement.
    Unsupported { file: PathBuf, offset: u64, feature: String, value: u64 },
    /// The dirty bit (incompatible feature bit 0) is set: refcounts may be stale.
    Dirty { file: PathBuf, offset: u64 },
    /// The corrupt bit (incompatible feature bit 1) is set.
    MarkedCorrupt { file: PathBuf, offset: u64 },
    /// A backing file name was rejected by the open policy.
    BackingRejected { file: PathBuf, offset: u64, name: String, reason: BackingRejection },
    /// An image has a backing file but no backing file format extension.
    BackingFormatMissing { file: PathBuf, offset: u64, name: String },
    /// Following backing files would exceed `max_depth` images.
    ChainTooDeep { file: PathBuf, offset: u64, max_depth: usize },
    /// A backing file is already part of the chain above it.
    BackingCycle { file: PathBuf, offset: u64, name: String },
    /// A caller passed an invalid option or range.
    InvalidArgument { message: String },
    /// A write was requested on a chain opened read-only.
    ReadOnly { file: PathBuf },
    /// Another open handle (in this or another process) holds a lock that
    /// conflicts: a writer excludes everyone, readers exclude writers.
    Locked { file: PathBuf, writable: bool },
}

pub type Result<T> = std::result::Result<T, Qcow2Error>;

impl Qcow2Error {
    /// Wraps an I/O error on `file` at `offset`.
    pub fn io(file: &Path, offset: Option<u64>, source: io::Error) -> Self {
        Qcow2Error::Io { file: file.to_path_buf(), offset, source }
    }

    pub fn corrupt(file: &Path, offset: u64, field: &'static str, value: u64, expected: impl Into<String>) -> Self {
        Qcow2Error::Corrupt { file: file.to_path_buf(), offset, field, value, expected: expected.into() }
    }

    pub fn unsupported(file: &Path, offset: u64, feature: impl Into<String>, value: u64) -> Self {
        Qcow2Error::Unsupported { file: file.to_path_buf(), offset, feature: feature.into(), value }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Qcow2Error::InvalidArgument { message: message.into() }
    }

    /// Returns the stable code that JavaScript receives as `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Qcow2Error::Io { .. } => "ERR_QCOW2_IO",
            Qcow2Error::Corrupt { .. } => "ERR_QCOW2_CORRUPT",
            Qcow2Error::Unsupported { .. } => "ERR_QCOW2_UNSUPPORTED",
            Qcow2Error::Dirty { .. } => "ERR_QCOW2_DIRTY",
            Qcow2Error::MarkedCorrupt { .. } => "ERR_QCOW2_MARKED_CORRUPT",
            Qcow2Error::BackingRejected { .. } => "ERR_QCOW2_BACKING_REJECTED",
            Qcow2Error::BackingFormatMissing { .. } => "ERR_QCOW2_BACKING_FORMAT_MISSING",
            Qcow2Error::ChainTooDeep { .. } => "ERR_QCOW2_CHAIN_TOO_DEEP",
            Qcow2Error::BackingCycle { .. } => "ERR_QCOW2_BACKING_CYCLE",
            Qcow2Error::InvalidArgument { .. } => "ERR_QCOW2_INVALID_ARGUMENT",
            Qcow2Error::ReadOnly { .. } => "ERR_QCOW2_READ_ONLY",
            Qcow2Error::Locked { .. } => "ERR_QCOW2_LOCKED",
        }
    }

    /// Returns the image file at fault, when there is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Qcow2Error::Io { file, .. }
            | Qcow2Error::Corrupt { file, .. }
            | Qcow2Error::Unsupported { file, .. }
            | Qcow2Error::Dirty { file, .. }
            | Qcow2Error::MarkedCorrupt { file, .. }
            | Qcow2Error::BackingRejected { file, .. }
            | Qcow2Error::BackingFormatMissing { file, .. }
            | Qcow2Error::ChainTooDeep { file, .. }
            | Qcow2Error::BackingCycle { file, .. }
            | Qcow2Error::ReadOnly { file }
            | Qcow2Error::Locked { file, .. } => Some(file),
            Qcow2Error::InvalidArgument { .. } => None,
        }
    }

    /// Returns the byte offset inside `file()` at fault, when there is one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            Qcow2Error::Io { offset, .. } => *offset,
            Qcow2Error::Corrupt { offset, .. }
            | Qcow2Error::Unsupported { offset, .. }
            | Qcow2Error::Dirty { offset, .. }
            | Qcow2Error::MarkedCorrupt { offset, .. }
            | Qcow2Error::BackingRejected { offset, .. }
            | Qcow2Error::BackingFormatMissing { offset, .. }
            | Qcow2Error::ChainTooDeep { offset, .. }
            | Qcow2Error::BackingCycle { offset, .. } => Some(*offset),
            Qcow2Error::InvalidArgument { .. } | Qcow2Error::ReadOnly { .. } | Qcow2Error::Locked { .. } => None,
        }
    }
}

impl fmt::Display for BackingRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackingRejection::Protocol => write!(f, "protocol prefixes are not allowed in backing file names"),
            BackingRejection::Json => write!(f, "json: pseudo-filenames are not allowed as backing files"),
            BackingRejection::OutsideAllowedDir { resolved, allowed } => write!(
                f,
                "it resolves to {} outside the allowed directory {}; pass a wider allowedDir or allow any directory",
                resolved.display(),
                allowed.display()
            ),
            BackingRejection::Invalid => write!(f, "the name is empty or not valid UTF-8"),
            BackingRejection::NotRegularFile => write!(f, "it is not a regular file"),
        }
    }
}

impl fmt::Display for Qcow2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Qcow2Error::Io { file, offset, source } => match offset {
                Some(offset) => write!(f, "I/O on {} at byte {offset} failed: {source}", file.display()),
                None => write!(f, "I/O on {} failed: {source}", file.display()),
            },
            Qcow2Error::Corrupt { file, offset, field, value, expected } => {
                write!(f, "invalid {field} {value:#x} at byte {offset} of {}: expected {expected}", file.display())
            }
            Qcow2Error::Unsupported { file, offset, feature, value } => {
                write!(f, "{feature} (value {value:#x} at byte {offset} of {}) is not supported", file.display())
            }
            Qcow2Error::Dirty { file, .. } => write!(
                f,
                "{} has the dirty bit set, so its refcounts may be stale; repair it with `qemu-img check -r all`",
                file.display()
            ),
            Qcow2Error::MarkedCorrupt { file, .. } => write!(
                f,
                "{} has the corrupt bit set; repair it with `qemu-img check -r all` before use",
                file.display()
            ),
            Qcow2Error::BackingRejected { file, name, reason, .. } => {
                write!(f, "backing file {name:?} of {} rejected: {reason}", file.display())
            }
            Qcow2Error::BackingFormatMissing { file, name, .. } => write!(
                f,
                "{} names backing file {name:?} without a backing file format; record it with \
                 `qemu-img rebase -u -b {name} -F <format>` instead of letting a reader probe it",
                file.display()
            ),
            Qcow2Error::ChainTooDeep { file, max_depth, .. } => {
                write!(f, "backing chain below {} is longer than the maximum of {max_depth} images", file.display())
            }
            Qcow2Error::BackingCycle { file, name, .. } => {
                write!(f, "backing file {name:?} of {} is already in the chain above it (a cycle)", file.display())
            }
            Qcow2Error::InvalidArgument { message } => write!(f, "{message}"),
            Qcow2Error::Locked { file, writable: true } => write!(
                f,
                "{} is open elsewhere, so it cannot be opened for writing; close the other handle first",
                file.display()
            ),
            Qcow2Error::Locked { file, writable: false } => write!(
                f,
                "{} is open for writing elsewhere, so it cannot be read consistently; close the writer first",
                file.display()
            ),
            Qcow2Error::ReadOnly { file } => {
                write!(f, "{} was opened read-only; open it with writable: true to write", file.display())
            }
        }
    }
}

impl std::error::Error for Qcow2Error {}

impl From<Qcow2Error> for ErrorReport {
    fn from(error: Qcow2Error) -> Self {
        let mut report = ErrorReport::new(error.code(), error.to_string());
        if let Some(file) = error.file() {
            report = report.with_file(file.display().to_string());
        }
        if let Some(offset) = error.offset() {
            report = report.with_offset(offset);
        }
        report
    }
}

impl From<Qcow2Error> for io::Error {
    /// Carries the error through `BlockDevice`'s `io::Result`; converting the
    /// `io::Error` back into an `ErrorReport` restores the code.
    fn from(error: Qcow2Error) -> Self {
        io::Error::other(ErrorReport::from(error))
    }
}
