//! The table of functions the addon exports, and their argument handling.

use super::{CallContext, Export, Reply, Value};
use crate::report::ErrorReport;

pub const EXPORTS: &[(&str, Export)] = &[
    ("version", version),
    ("panicForTest", panic_for_test),
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
