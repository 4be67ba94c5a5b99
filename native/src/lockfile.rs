//! Advisory whole-file locks (`flock(2)`) for coordinating processes.
//!
//! The kernel drops a process's locks when it exits, SIGKILL included, so a
//! crashed converter never leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

use crate::report::ErrorReport;

/// A lock, held until this value is dropped or `release` is called.
pub struct FileLock {
    file: Option<File>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// Many holders at once, none while an exclusive lock is held.
    Shared,
    /// One holder at a time.
    Exclusive,
}

impl FileLock {
    /// Takes a lock on `path`, creating the file if needed. When `wait` is
    /// false and the lock is not free, returns `Ok(None)`.
    pub fn acquire(path: &Path, mode: LockMode, wait: bool) -> Result<Option<FileLock>, ErrorReport> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|error| lock_error(path, &error))?;

        if wait {
            let locked = match mode {
                LockMode::Shared => file.lock_shared(),
                LockMode::Exclusive => file.lock(),
            };
            locked.map_err(|error| lock_error(path, &error))?;
            return Ok(Some(FileLock { file: Some(file) }));
        }
        let attempt = match mode {
            LockMode::Shared => file.try_lock_shared(),
            LockMode::Exclusive => file.try_lock(),
        };
        match attempt {
            Ok(()) => Ok(Some(FileLock { file: Some(file) })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(error)) => Err(lock_error(path, &error)),
        }
    }

    /// Releases the lock. Releasing twice is harmless.
    pub fn release(&mut self) {
        // Closing the descriptor releases the flock.
        self.file.take();
    }
}

fn lock_error(path: &Path, error: &io::Error) -> ErrorReport {
    ErrorReport::new("ERR_LOCK_FAILED", format!("could not lock {}: {error}", path.display()))
        .with_file(path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_held_file_would_block() {
        let dir = std::env::temp_dir().join(format!("layerdisk-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.lock");

        let mut first = FileLock::acquire(&path, LockMode::Exclusive, false).unwrap().expect("first lock is free");
        assert!(FileLock::acquire(&path, LockMode::Exclusive, false).unwrap().is_none());
        assert!(FileLock::acquire(&path, LockMode::Shared, false).unwrap().is_none());

        first.release();
        let shared = FileLock::acquire(&path, LockMode::Shared, false).unwrap();
        assert!(shared.is_some());
        assert!(FileLock::acquire(&path, LockMode::Shared, false).unwrap().is_some());
        assert!(FileLock::acquire(&path, LockMode::Exclusive, false).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
