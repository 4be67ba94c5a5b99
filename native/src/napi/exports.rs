//! The table of functions the addon exports, and their argument handling.

use std::path::PathBuf;

use super::{CallContext, Export, Reply, Value};
use crate::lockfile::{FileLock, LockMode};
use crate::report::ErrorReport;

pub const EXPORTS: &[(&str, Export)] = &[
    ("version", version),
    ("panicForTest", panic_for_test),
    ("lockFile", lock_file),
    ("unlockFile", unlock_file),
];

fn version(_: &CallContext) -> Result<Reply, ErrorReport> {
    Ok(Reply::Value(Value::String(env!("CARGO_PKG_VERSION").to_string())))
}

/// Panics, on the calling thread or on the thread pool, so tests can check
/// that a panic becomes a JavaScript error instead of aborting Node.
fn panic_for_test(context: &CallContext) -> Result<Reply, ErrorReport> {
    if context.bool(0)? {
        return Ok(Reply::Task(Box::new(|| panic!("test panic on the thread pool"))));
    }
    panic!("test panic on the main thread")
}

/// `lockFile(path, shared, wait)`: resolves to a lock handle, or to `null`
/// when `wait` is false and the lock is not free.
fn lock_file(context: &CallContext) -> Result<Reply, ErrorReport> {
    let path = PathBuf::from(context.string(0)?);
    let mode = if context.bool(1)? { LockMode::Shared } else { LockMode::Exclusive };
    let wait = context.bool(2)?;
    Ok(Reply::Task(Box::new(move || {
        Ok(match FileLock::acquire(&path, mode, wait)? {
            Some(lock) => Value::handle(lock),
            None => Value::Null,
        })
    })))
}

/// `unlockFile(handle)`: releases a lock taken with `lockFile`.
fn unlock_file(context: &CallContext) -> Result<Reply, ErrorReport> {
    let lock = context.handle::<FileLock>(0)?;
    lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).release();
    Ok(Reply::Value(Value::Undefined))
}
