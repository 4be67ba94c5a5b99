//! Node-API exports of the qcow2 engine.
//!
//! A chain is handed to JavaScript as a handle holding `Option<Chain>`;
//! `qcow2Close` takes the chain out, so later calls report it closed. Every
//! call that touches files runs on the thread pool and returns a promise.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{CallContext, Export, Reply, Value};
use crate::qcow2::{
    self, AllowedDir, Chain, CreateOptions, FlattenOptions, Format, LayerInfo, OpenOptions, Qcow2Image,
};
use crate::report::ErrorReport;

pub const EXPORTS: &[(&str, Export)] = &[
    ("qcow2Create", create),
    ("qcow2Open", open),
    ("qcow2Read", read),
    ("qcow2Write", write),
    ("qcow2WriteZeroes", write_zeroes),
    ("qcow2Flush", flush),
    ("qcow2Close", close),
    ("qcow2Info", info),
    ("qcow2Flatten", flatten),
    ("qcow2ImportRaw", import_raw),
    ("qcow2BenchReads", bench_reads),
];

type ChainHandle = Arc<Mutex<Option<Chain>>>;

/// Largest single read: 1 GiB, below Node's maximum Buffer length.
const MAX_READ_BYTES: u64 = 1 << 30;

fn optional_u64(context: &CallContext, index: usize) -> Result<Option<u64>, ErrorReport> {
    if context.is_absent(index) {
        Ok(None)
    } else {
        context.u64(index).map(Some)
    }
}

fn optional_string(context: &CallContext, index: usize) -> Result<Option<String>, ErrorReport> {
    if context.is_absent(index) {
        Ok(None)
    } else {
        context.string(index).map(Some)
    }
}

fn parse_format(name: &str) -> Result<Format, ErrorReport> {
    Format::parse(name).ok_or_else(|| {
        ErrorReport::new(
            "ERR_QCOW2_INVALID_ARGUMENT",
            format!("format {name:?} is invalid: expected \"qcow2\" or \"raw\""),
        )
    })
}

/// Runs `work` on the open chain behind `handle`.
fn with_chain<T>(
    handle: &ChainHandle,
    work: impl FnOnce(&mut Chain) -> Result<T, ErrorReport>,
) -> Result<T, ErrorReport> {
    let mut guard = lock_chain(handle)?;
    let chain = guard.as_mut().ok_or_else(|| ErrorReport::new("ERR_QCOW2_CLOSED", "the qcow2 chain is closed"))?;
    work(chain)
}

/// Locks the chain behind `handle`. A panic while the lock was held may have
/// left the chain half updated, so a poisoned chain is discarded without
/// writing its metadata, and later calls report it closed.
fn lock_chain(handle: &ChainHandle) -> Result<MutexGuard<'_, Option<Chain>>, ErrorReport> {
    match handle.lock() {
        Ok(guard) => Ok(guard),
        Err(poisoned) => {
            if let Some(chain) = poisoned.into_inner().take() {
                chain.discard();
            }
            handle.clear_poison();
            let message =
                "an earlier call on this qcow2 chain panicked, so it was closed without flushing; open it again";
            Err(ErrorReport::new("ERR_NATIVE_PANIC", message))
        }
    }
}

/// `qcow2Create(path, virtualSize?, clusterSize?, backingPath?, backingFormat?)`.
fn create(context: &CallContext) -> Result<Reply, ErrorReport> {
    let path = PathBuf::from(context.string(0)?);
    let virtual_size = optional_u64(context, 1)?;
    let cluster_size = optional_u64(context, 2)?.unwrap_or(qcow2::DEFAULT_CLUSTER_SIZE);
    let backing = match optional_string(context, 3)? {
        Some(backing) => {
            let format = parse_format(&optional_string(context, 4)?.unwrap_or_else(|| "qcow2".into()))?;
            Some((PathBuf::from(backing), format))
        }
        None => None,
    };
    let options = CreateOptions { virtual_size, cluster_size, backing };
    Ok(Reply::Task(Box::new(move || {
        Qcow2Image::create(&path, &options)?;
        Ok(Value::Undefined)
    })))
}

/// `qcow2Open(path, writable, allowedDir?, anyDir, maxDepth?)`.
fn open(context: &CallContext) -> Result<Reply, ErrorReport> {
    let path = PathBuf::from(context.string(0)?);
    let writable = context.bool(1)?;
    let allowed_dir = match (optional_string(context, 2)?, context.bool(3)?) {
        (_, true) => AllowedDir::Anywhere,
        (Some(dir), false) => AllowedDir::Dir(PathBuf::from(dir)),
        (None, false) => AllowedDir::TopImageDir,
    };
    let max_depth = optional_u64(context, 4)?.map_or(qcow2::DEFAULT_MAX_DEPTH, |depth| depth as usize);
    let options = OpenOptions { writable, allowed_dir, max_depth };
    Ok(Reply::Task(Box::new(move || {
        let chain = Chain::open(&path, &options)?;
        Ok(Value::handle(Some(chain)))
    })))
}

/// `qcow2Read(handle, offset, length)` resolves to a Buffer.
fn read(context: &CallContext) -> Result<Reply, ErrorReport> {
    let handle = context.handle::<Option<Chain>>(0)?;
    let offset = context.u64(1)?;
    let length = context.u64(2)?;
    Ok(Reply::Task(Box::new(move || {
        with_chain(&handle, |chain| {
            if length > MAX_READ_BYTES {
                let message = format!("read length {length} is over the {MAX_READ_BYTES}-byte maximum; read in pieces");
                return Err(ErrorReport::new("ERR_QCOW2_INVALID_ARGUMENT", message));
            }
            let mut buffer = vec![0u8; length as usize];
            chain.read(offset, &mut buffer)?;
            Ok(Value::Buffer(buffer))
        })
    })))
}

/// `qcow2Write(handle, offset, buffer)`.
fn write(context: &CallContext) -> Result<Reply, ErrorReport> {
    let handle = context.handle::<Option<Chain>>(0)?;
    let offset = context.u64(1)?;
    let data = context.bytes(2)?;
    Ok(Reply::Task(Box::new(move || {
        with_chain(&handle, |chain| Ok(chain.write(offset, &data)?))?;
        Ok(Value::Undefined)
    })))
}

/// `qcow2WriteZeroes(handle, offset, length)`.
fn write_zeroes(context: &CallContext) -> Result<Reply, ErrorReport> {
    let handle = context.handle::<Option<Chain>>(0)?;
    let offset = context.u64(1)?;
    let length = context.u64(2)?;
    Ok(Reply::Task(Box::new(move || {
        with_chain(&handle, |chain| Ok(chain.write_zeroes(offset, length)?))?;
        Ok(Value::Undefined)
    })))
}

fn flush(context: &CallContext) -> Result<Reply, ErrorReport> {
    let handle = context.handle::<Option<Chain>>(0)?;
    Ok(Reply::Task(Box::new(move || {
        with_chain(&handle, |chain| Ok(chain.flush()?))?;
        Ok(Value::Undefined)
    })))
}

/// `qcow2Close(handle)`: flushes and closes; closing twice is harmless.
fn close(context: &CallContext) -> Result<Reply, ErrorReport> {
    let handle = context.handle::<Option<Chain>>(0)?;
    Ok(Reply::Task(Box::new(move || {
        let chain = lock_chain(&handle)?.take();
        if let Some(chain) = chain {
            chain.close()?;
        }
        Ok(Value::Undefined)
    })))
}

fn optional_value<T>(value: Option<T>, convert: impl FnOnce(T) -> Value) -> Value {
    value.map_or(Value::Null, convert)
}

fn info_value(info: LayerInfo) -> Value {
    Value::Object(vec![
        ("filename", Value::String(info.filename)),
        ("format", Value::String(info.format.to_string())),
        ("virtualSize", Value::Number(info.virtual_size as f64)),
        ("actualSize", Value::Number(info.actual_size as f64)),
        ("clusterSize", optional_value(info.cluster_size, |size| Value::Number(size as f64))),
        ("backingFilename", optional_value(info.backing_filename, Value::String)),
        ("fullBackingFilename", optional_value(info.full_backing_filename, Value::String)),
        ("backingFilenameFormat", optional_value(info.backing_filename_format, Value::String)),
        ("compat", optional_value(info.compat, |compat| Value::String(compat.to_string()))),
        ("refcountBits", optional_value(info.refcount_bits, |bits| Value::Number(bits as f64))),
        ("lazyRefcounts", Value::Bool(info.lazy_refcounts)),
    ])
}

/// `qcow2Info(handle)` resolves to one object per file, top first.
fn info(context: &CallContext) -> Result<Reply, ErrorReport> {
    let handle = context.handle::<Option<Chain>>(0)?;
    Ok(Reply::Task(Box::new(move || {
        let layers = with_chain(&handle, |chain| Ok(chain.info()))?;
        Ok(Value::Array(layers.into_iter().map(info_value).collect()))
    })))
}

/// `qcow2Flatten(handle, destination, format, layers?, clusterSize?)`.
fn flatten(context: &CallContext) -> Result<Reply, ErrorReport> {
    let handle = context.handle::<Option<Chain>>(0)?;
    let destination = PathBuf::from(context.string(1)?);
    let format = parse_format(&context.string(2)?)?;
    let layers = optional_u64(context, 3)?.map(|layers| layers as usize);
    let cluster_size = optional_u64(context, 4)?;
    if format == Format::Raw && layers.is_some() {
        let message = "a raw file has no backing file, so it takes the whole chain: omit layers";
        return Err(ErrorReport::new("ERR_QCOW2_INVALID_ARGUMENT", message));
    }
    Ok(Reply::Task(Box::new(move || {
        with_chain(&handle, |chain| match format {
            Format::Qcow2 => {
                Ok(qcow2::flatten_to_qcow2(chain, &destination, &FlattenOptions { layers, cluster_size })?)
            }
            Format::Raw => Ok(qcow2::flatten_to_raw(chain, &destination)?),
        })?;
        Ok(Value::Undefined)
    })))
}

/// `qcow2ImportRaw(handle, source)` copies a raw file into the chain from offset 0.
fn import_raw(context: &CallContext) -> Result<Reply, ErrorReport> {
    let handle = context.handle::<Option<Chain>>(0)?;
    let source = PathBuf::from(context.string(1)?);
    Ok(Reply::Task(Box::new(move || {
        with_chain(&handle, |chain| Ok(qcow2::import_raw(chain, &source)?))?;
        Ok(Value::Undefined)
    })))
}

/// `qcow2BenchReads(handle, count, size, step)` reads `count` blocks of
/// `size` bytes at offsets 0, step, 2 × step, … modulo the virtual size,
/// the pattern of `qemu-img bench -d 1`, and resolves to the seconds taken.
/// It exists for the benchmark, which compares the engine without the
/// per-call cost of Node-API.
fn bench_reads(context: &CallContext) -> Result<Reply, ErrorReport> {
    let handle = context.handle::<Option<Chain>>(0)?;
    let count = context.u64(1)?;
    let size = context.u64(2)?;
    let step = context.u64(3)?;
    Ok(Reply::Task(Box::new(move || {
        let seconds = with_chain(&handle, |chain| {
            let disk = chain.virtual_size();
            if size == 0 || size > disk.min(MAX_READ_BYTES) {
                return Err(ErrorReport::new("ERR_QCOW2_INVALID_ARGUMENT", format!("block size {size} is invalid")));
            }
            let mut buffer = vec![0u8; size as usize];
            let start = std::time::Instant::now();
            let mut offset = 0u64;
            for _ in 0..count {
                chain.read(offset.min(disk - size), &mut buffer)?;
                offset = (offset + step) % disk;
            }
            Ok(start.elapsed().as_secs_f64())
        })?;
        Ok(Value::Number(seconds))
    })))
}
