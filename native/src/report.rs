//! The error shape that crosses into JavaScript.
//!
//! Every module keeps its own error enum. Each one converts into an
//! `ErrorReport`, which the Node-API boundary turns into a JavaScript `Error`
//! with a stable `code` and the file, byte offset or filesystem path at fault.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReport {
    /// Stable machine-readable code, such as `ERR_QCOW2_CORRUPT`.
    pub code: &'static str,
    pub message: String,
    /// Image file at fault, when one is known.
    pub file: Option<String>,
    /// Byte offset inside `file`, when one is known.
    pub offset: Option<u64>,
    /// Path inside the filesystem image, for ext4 operations.
    pub path: Option<String>,
}

impl ErrorReport {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        ErrorReport { code, message: message.into(), file: None, offset: None, path: None }
    }

    pub fn with_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }

    pub fn with_offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }
}

impl fmt::Display for ErrorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ErrorReport {}

impl From<std::io::Error> for ErrorReport {
    fn from(error: std::io::Error) -> Self {
        // A domain error wrapped in an io::Error (as `BlockDevice` returns
        // them) keeps its own code.
        if error.get_ref().is_some_and(|inner| inner.is::<ErrorReport>()) {
            let inner = error.into_inner().expect("checked above");
            return *inner.downcast::<ErrorReport>().expect("checked above");
        }
        ErrorReport::new("ERR_IO", error.to_string())
    }
}
