//! QCOW2 version 2 and 3 images and backing chains, as specified by QEMU's
//! `docs/interop/qcow2.txt`.
//!
//! - [`Qcow2Image::create`] makes a version 3 image, optionally over a
//!   backing file whose format it records.
//! - [`Chain::open`] opens an image and its backing files and implements
//!   [`crate::block::BlockDevice`]; only the top image is written.
//! - [`flatten_to_qcow2`] and [`flatten_to_raw`] copy a chain into one file.
//!
//! Format modules (`header`, `extension`, `entry`, `refcount`) do no I/O.

#![forbid(unsafe_code)]

mod alloc;
mod backing;
mod cache;
mod chain;
mod checks;
mod entry;
mod error;
mod extension;
mod flatten;
mod header;
mod image;
mod info;
mod refcount;

pub use backing::{AllowedDir, Format};
pub use chain::{Chain, Layer, OpenOptions, DEFAULT_MAX_DEPTH};
pub use error::{BackingRejection, Qcow2Error, Result};
pub use flatten::{flatten_to_qcow2, flatten_to_raw, import_raw, FlattenOptions};
pub use image::{CreateOptions, Qcow2Image, DEFAULT_CLUSTER_SIZE};
pub use info::LayerInfo;
