//! Per-file facts of a chain, as `qemu-img info --backing-chain` reports them.

use std::os::unix::fs::MetadataExt;

use super::chain::{Chain, Layer};

/// Facts about one file of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// Path the file was opened with.
    pub filename: String,
    /// "qcow2" or "raw".
    pub format: &'static str,
    /// Virtual size in bytes.
    pub virtual_size: u64,
    /// Bytes the file occupies on disk (allocated blocks).
    pub actual_size: u64,
    /// Cluster size in bytes; `None` for raw files.
    pub cluster_size: Option<u64>,
    /// Backing file name as stored in the header.
    pub backing_filename: Option<String>,
    /// Backing file path as resolved against the image's directory.
    pub full_backing_filename: Option<String>,
    /// Backing file format as recorded in the header extension.
    pub backing_filename_format: Option<String>,
    /// "0.10" for version 2, "1.1" for version 3; `None` for raw files.
    pub compat: Option<&'static str>,
    /// Width of refcount entries in bits; `None` for raw files.
    pub refcount_bits: Option<u64>,
    /// Whether the lazy refcounts compatible feature bit is set.
    pub lazy_refcounts: bool,
}

impl Chain {
    /// Returns one entry per file, top first.
    pub fn info(&self) -> Vec<LayerInfo> {
        self.layers.iter().map(layer_info).collect()
    }
}

fn layer_info(layer: &Layer) -> LayerInfo {
    let path = layer.path();
    let actual_size = std::fs::metadata(path).map(|metadata| metadata.blocks() * 512).unwrap_or(0);
    let mut info = LayerInfo {
        filename: path.display().to_string(),
        format: layer.format().name(),
        virtual_size: layer.virtual_size(),
        actual_size,
        cluster_size: None,
        backing_filename: None,
        full_backing_filename: None,
        backing_filename_format: None,
        compat: None,
        refcount_bits: None,
        lazy_refcounts: false,
    };
    if let Layer::Qcow2(image) = layer {
        info.cluster_size = Some(image.cluster_size());
        info.backing_filename = image.backing_name().map(str::to_string);
        info.full_backing_filename =
            image.backing_name().map(|name| super::backing::resolve(path, name).display().to_string());
        info.backing_filename_format = image.backing_format().map(str::to_string);
        info.compat = Some(if image.version() >= 3 { "1.1" } else { "0.10" });
        info.refcount_bits = Some(image.refcount_bits());
        info.lazy_refcounts = image.header.compatible_features & super::header::COMPAT_LAZY_REFCOUNTS != 0;
    }
    info
}
