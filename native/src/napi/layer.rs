//! Node-API exports that open an ext4 filesystem inside a qcow2 layer file,
//! for the layer conversion worker. The qcow2 chain is the ext4 writer's
//! block device: reads fall through to the parent layers, and writes land
//! in the top file only.

use std::path::{Path, PathBuf};

use super::ext4::handle_for;
use super::{CallContext, Export, Reply};
use crate::ext4::{self, FormatOptions};
use crate::qcow2::{AllowedDir, Chain, OpenOptions as ChainOptions, DEFAULT_MAX_DEPTH};
use crate::report::ErrorReport;

pub const EXPORTS: &[(&str, Export)] = &[("layerFormat", layer_format), ("layerOpen", layer_open)];

fn open_chain(top: &str, allowed_dir: String) -> Result<Chain, ErrorReport> {
    let options = ChainOptions {
        writable: true,
        allowed_dir: AllowedDir::Dir(PathBuf::from(allowed_dir)),
        max_depth: DEFAULT_MAX_DEPTH,
    };
    Ok(Chain::open(Path::new(top), &options)?)
}

/// `layerFormat(top, allowedDir, seed, bytesPerInode, clusterSize)`: formats
/// ext4 over the whole virtual disk of the qcow2 file `top` and returns an
/// ext4 handle open on it. Filesystem timestamps are 0, so the bytes depend
/// on the seed (the chain ID) alone.
fn layer_format(context: &CallContext) -> Result<Reply, ErrorReport> {
    let top = context.string(0)?;
    let allowed_dir = context.string(1)?;
    let chain = open_chain(&top, allowed_dir.clone())?;
    let options = FormatOptions {
        size: chain.virtual_size(),
        seed: context.bytes(2)?,
        timestamp: 0,
        bytes_per_inode: context.u64(3)?,
        cluster_size: context.u64(4)?,
        ..FormatOptions::default()
    };
    let cluster_size = options.cluster_size;

    // format() commits and flushes; dropping the result closes the chain.
    drop(ext4::format(Box::new(chain), &options).map_err(|error| ErrorReport::from(error).with_file(&top))?);

    let chain = open_chain(&top, allowed_dir)?;
    let handle = handle_for(Box::new(chain), ext4::OpenOptions { cluster_size })
        .map_err(|error| error.with_file(&top))?;
    Ok(Reply::Value(handle))
}

/// `layerOpen(top, allowedDir, clusterSize)`: opens the ext4 filesystem that
/// the chain under the qcow2 file `top` holds, writing into `top`.
fn layer_open(context: &CallContext) -> Result<Reply, ErrorReport> {
    let top = context.string(0)?;
    let chain = open_chain(&top, context.string(1)?)?;
    let options = ext4::OpenOptions { cluster_size: context.u64(2)? };
    let handle = handle_for(Box::new(chain), options).map_err(|error| error.with_file(&top))?;
    Ok(Reply::Value(handle))
}
