//! Flattening: copying what a chain, or its top layers, reads into one
//! standalone qcow2 image or a sparse raw file.

use std::fs::OpenOptions as FileOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::mpsc;

use super::backing::AllowedDir;
use super::chain::{Chain, OpenOptions, Status};
use super::error::{Qcow2Error, Result};
use super::image::{CreateOptions, Qcow2Image};

/// Options of [`flatten_to_qcow2`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlattenOptions {
    /// Number of top layers to merge. `None` (or the chain's length) merges
    /// all of them into a standalone image; fewer keeps the next layer as
    /// the backing file of the result.
    pub layers: Option<usize>,
    /// Cluster size of the result; defaults to the top image's.
    pub cluster_size: Option<u64>,
}

/// Copies the top `options.layers` layers of `chain` into a new qcow2 image
/// at `destination`. Ranges that read as zeros through the whole chain stay
/// unallocated. Over a kept base, ranges zeroed in the merged layers get the
/// zero flag, so the base stays masked.
pub fn flatten_to_qcow2(chain: &mut Chain, destination: &Path, options: &FlattenOptions) -> Result<()> {
    let total = chain.layers.len();
    let merged = options.layers.unwrap_or(total);
    if merged == 0 || merged > total {
        return Err(Qcow2Error::invalid(format!("layers must be between 1 and {total}, got {merged}")));
    }
    check_not_in_chain(chain, destination)?;
    let base = chain.layers.get(merged).map(|layer| (layer.path().to_path_buf(), layer.format()));
    let cluster_size = options.cluster_size.unwrap_or(chain.cluster_size());
    let create = CreateOptions { virtual_size: Some(chain.virtual_size()), cluster_size, backing: base.clone() };
    Qcow2Image::create(destination, &create)?;

    // The base was already checked when `chain` was opened.
    let open = OpenOptions { writable: true, allowed_dir: AllowedDir::Anywhere, ..OpenOptions::default() };
    let mut output = Chain::open(destination, &open)?;
    let size = chain.virtual_size();
    let mut buffer = vec![0u8; cluster_size as usize];
    let mut offset = 0;
    while offset < size {
        let length = cluster_size.min(size - offset);
        let chunk = &mut buffer[..length as usize];
        match chain.status(merged, offset, length)? {
            Status::Data => {
                chain.read(offset, chunk)?;
                copy_chunk(&mut output, offset, chunk, base.is_some())?;
            }
            Status::Zero if base.is_some() => output.write_zeroes(offset, length)?,
            _ => {}
        }
        offset += length;
    }
    output.close()
}

/// Rejects a destination that is one of the chain's own files, which
/// creating the output would truncate.
fn check_not_in_chain(chain: &Chain, destination: &Path) -> Result<()> {
    let Ok(target) = destination.canonicalize() else { return Ok(()) };
    for layer in chain.layers() {
        if layer.path().canonicalize().is_ok_and(|path| path == target) {
            let message = format!("destination {} is part of the chain being flattened", destination.display());
            return Err(Qcow2Error::invalid(message));
        }
    }
    Ok(())
}

/// Writes a data chunk; an all-zero chunk is skipped on a standalone image
/// and written as a zero cluster over a base.
fn copy_chunk(output: &mut Chain, offset: u64, chunk: &[u8], has_base: bool) -> Result<()> {
    if chunk.iter().all(|&byte| byte == 0) {
        if has_base {
            output.write_zeroes(offset, chunk.len() as u64)?;
        }
        return Ok(());
    }
    output.write(offset, chunk)
}

/// Copies everything `chain` reads into a sparse raw file at `destination`.
/// Ranges that are unallocated or zero in every layer, and chunks of data
/// that are all zeros, are left as holes.
pub fn flatten_to_raw(chain: &mut Chain, destination: &Path) -> Result<()> {
    check_not_in_chain(chain, destination)?;
    let io_error = |error| Qcow2Error::io(destination, None, error);
    let file = FileOptions::new().write(true).create(true).truncate(true).open(destination).map_err(io_error)?;
    let size = chain.virtual_size();
    file.set_len(size).map_err(io_error)?;

    let total = chain.layers.len();
    let chunk_size = chain.cluster_size();
    let mut buffer = vec![0u8; chunk_size as usize];
    let mut offset = 0;
    while offset < size {
        let length = chunk_size.min(size - offset);
        let chunk = &mut buffer[..length as usize];
        if chain.status(total, offset, length)? == Status::Data {
            chain.read(offset, chunk)?;
            if chunk.iter().any(|&byte| byte != 0) {
                file.write_all_at(chunk, offset).map_err(|error| Qcow2Error::io(destination, Some(offset), error))?;
            }
        }
        offset += length;
    }
    file.sync_all().map_err(io_error)
}

/// Bytes copied per step by [`import_raw`].
const IMPORT_CHUNK_BYTES: usize = 4 << 20;

/// Copies the raw file at `source` into `chain` from guest offset 0, like
/// `qemu-img convert -f raw`. Clusters that are all zeros become zero
/// writes, so they stay unallocated without a backing file and mask it with one.
/// The source may be shorter than the disk; it may not be longer.
pub fn import_raw(chain: &mut Chain, source: &Path) -> Result<()> {
    let file = std::fs::File::open(source).map_err(|error| Qcow2Error::io(source, None, error))?;
    let length = file.metadata().map_err(|error| Qcow2Error::io(source, None, error))?.len();
    if length > chain.virtual_size() {
        let message =
            format!("{} is {length} bytes, larger than the {}-byte disk", source.display(), chain.virtual_size());
        return Err(Qcow2Error::invalid(message));
    }

    // A reader thread fills the next chunk while this one is written.
    let (full_sender, full_receiver) = mpsc::sync_channel::<Result<(u64, Vec<u8>)>>(1);
    let (empty_sender, empty_receiver) = mpsc::channel::<Vec<u8>>();
    for _ in 0..2 {
        empty_sender.send(vec![0u8; IMPORT_CHUNK_BYTES]).expect("the receiver is alive");
    }
    // The closure owns the writer's ends of both channels, so an early
    // error drops them before the scope joins the reader, which then stops
    // instead of waiting for a buffer forever.
    std::thread::scope(move |scope| {
        scope.spawn(move || read_chunks(&file, source, length, &empty_receiver, &full_sender));
        for message in &full_receiver {
            let (offset, chunk) = message?;
            write_skipping_zeros(chain, offset, &chunk)?;
            // The reader may already have finished; then the buffer is dropped.
            let _ = empty_sender.send(chunk);
        }
        Ok(())
    })
}

/// Reads `length` bytes of `file` in chunks into buffers from `empty` and
/// sends them to `full`, stopping at the first error or when the writer
/// hangs up.
fn read_chunks(
    file: &std::fs::File,
    source: &Path,
    length: u64,
    empty: &mpsc::Receiver<Vec<u8>>,
    full: &mpsc::SyncSender<Result<(u64, Vec<u8>)>>,
) {
    let mut offset = 0u64;
    while offset < length {
        let Ok(mut buffer) = empty.recv() else { return };
        buffer.resize((length - offset).min(IMPORT_CHUNK_BYTES as u64) as usize, 0);
        let result =
            file.read_exact_at(&mut buffer, offset).map_err(|error| Qcow2Error::io(source, Some(offset), error));
        let failed = result.is_err();
        if full.send(result.map(|()| (offset, buffer))).is_err() || failed {
            return;
        }
        offset += IMPORT_CHUNK_BYTES as u64;
    }
}

/// Writes `data` at `offset` (cluster-aligned), turning each run of
/// all-zero clusters into a zero write and each run of other clusters into
/// one data write.
fn write_skipping_zeros(chain: &mut Chain, offset: u64, data: &[u8]) -> Result<()> {
    let cluster_size = chain.cluster_size() as usize;
    let is_zero = |piece: &[u8]| piece.iter().all(|&byte| byte == 0);
    let mut start = 0;
    while start < data.len() {
        let zero = is_zero(&data[start..(start + cluster_size).min(data.len())]);
        let mut end = (start + cluster_size).min(data.len());
        while end < data.len() && is_zero(&data[end..(end + cluster_size).min(data.len())]) == zero {
            end = (end + cluster_size).min(data.len());
        }
        let position = offset + start as u64;
        if zero {
            chain.write_zeroes(position, (end - start) as u64)?;
        } else {
            chain.write(position, &data[start..end])?;
        }
        start = end;
    }
    Ok(())
}
