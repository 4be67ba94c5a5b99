//! Checks that run when an image is opened: feature bits, extensions, the
//! backing file name, and the L1 and refcount tables. Each error names the
//! file and the byte offset of the field at fault.

use std::fs::File;
use std::path::Path;

use super::entry::{L1Entry, RefcountTableEntry};
use super::error::{BackingRejection, Qcow2Error, Result};
use super::extension::{self, Extensions};
use super::header::*;
use super::image::{entry_error, past_end, read_padded, MAX_L1_BYTES, MAX_REFCOUNT_TABLE_BYTES};

/// Rejects images whose incompatible features or encryption this engine
/// cannot honor. All errors point at the field's byte offset.
pub(super) fn check_features(header: &Header, extensions: &Extensions, path: &Path) -> Result<()> {
    let at = INCOMPATIBLE_FEATURES_OFFSET as u64;
    let features = header.incompatible_features;
    let known = INCOMPAT_DIRTY
        | INCOMPAT_CORRUPT
        | INCOMPAT_EXTERNAL_DATA_FILE
        | INCOMPAT_COMPRESSION_TYPE
        | INCOMPAT_EXTENDED_L2;

    let unknown = features & !known;
    if unknown != 0 {
        let feature = match extensions.incompatible_feature_names(unknown).as_slice() {
            [] => "unknown incompatible feature bits".to_string(),
            names => format!("unknown incompatible feature bits ({})", names.join(", ")),
        };
        return Err(Qcow2Error::unsupported(path, at, feature, unknown));
    }
    if features & INCOMPAT_DIRTY != 0 {
        return Err(Qcow2Error::Dirty { file: path.to_path_buf(), offset: at });
    }
    if features & INCOMPAT_CORRUPT != 0 {
        return Err(Qcow2Error::MarkedCorrupt { file: path.to_path_buf(), offset: at });
    }
    if features & INCOMPAT_EXTERNAL_DATA_FILE != 0 {
        return Err(Qcow2Error::unsupported(path, at, "external data file (incompatible feature bit 2)", features));
    }
    if features & INCOMPAT_COMPRESSION_TYPE != 0 {
        return Err(Qcow2Error::unsupported(path, at, "compression type (incompatible feature bit 3)", features));
    }
    if features & INCOMPAT_EXTENDED_L2 != 0 {
        return Err(Qcow2Error::unsupported(path, at, "extended L2 entries (incompatible feature bit 4)", features));
    }
    if header.crypt_method != CRYPT_NONE {
        let method = header.crypt_method.into();
        return Err(Qcow2Error::unsupported(path, CRYPT_METHOD_OFFSET as u64, "encryption (crypt_method)", method));
    }
    Ok(())
}

pub(super) fn check_extensions(extensions: &Extensions, path: &Path) -> Result<()> {
    if let Some(offset) = extensions.external_data_file {
        return Err(Qcow2Error::unsupported(
            path,
            offset,
            "external data file name extension",
            extension::EXTERNAL_DATA_FILE.into(),
        ));
    }
    if let Some(offset) = extensions.encryption {
        return Err(Qcow2Error::unsupported(
            path,
            offset,
            "full disk encryption header extension",
            extension::FULL_DISK_ENCRYPTION.into(),
        ));
    }
    Ok(())
}

pub(super) fn check_writable(header: &Header, path: &Path) -> Result<()> {
    if header.version < 3 {
        return Err(Qcow2Error::unsupported(
            path,
            VERSION_OFFSET as u64,
            "writing version 2 images (upgrade with `qemu-img amend -o compat=1.1`)",
            header.version.into(),
        ));
    }
    if header.nb_snapshots != 0 {
        return Err(Qcow2Error::unsupported(
            path,
            NB_SNAPSHOTS_OFFSET as u64,
            "writing images with internal snapshots",
            header.nb_snapshots.into(),
        ));
    }
    Ok(())
}

pub(super) fn decode_backing_name(
    header: &Header,
    cluster: &[u8],
    file_len: u64,
    path: &Path,
) -> Result<Option<String>> {
    if header.backing_file_offset == 0 {
        return Ok(None);
    }
    let start = header.backing_file_offset;
    let end = start.saturating_add(u64::from(header.backing_file_size));
    if end > cluster.len() as u64 || end > file_len {
        return Err(Qcow2Error::corrupt(
            path,
            BACKING_FILE_OFFSET_OFFSET as u64,
            "backing_file_offset",
            start,
            "a backing file name inside the first cluster",
        ));
    }
    let bytes = &cluster[start as usize..end as usize];
    match std::str::from_utf8(bytes) {
        Ok(name) => Ok(Some(name.to_string())),
        Err(_) => Err(Qcow2Error::BackingRejected {
            file: path.to_path_buf(),
            offset: start,
            name: String::from_utf8_lossy(bytes).into_owned(),
            reason: BackingRejection::Invalid,
        }),
    }
}

/// Checks the L1, refcount table and snapshot table fields of the header.
pub(super) fn check_tables(header: &Header, file_len: u64, path: &Path) -> Result<()> {
    let cluster_size = header.cluster_size();
    let aligned = |offset: u64| offset % cluster_size == 0;
    let expected_alignment = format!("a multiple of the cluster size {cluster_size}");

    let needed_l1 = header.size.div_ceil(cluster_size * (cluster_size / 8));
    if u64::from(header.l1_size) < needed_l1 {
        return Err(Qcow2Error::corrupt(
            path,
            L1_SIZE_OFFSET as u64,
            "l1_size",
            header.l1_size.into(),
            format!("at least {needed_l1} for the virtual size"),
        ));
    }
    if u64::from(header.l1_size) * 8 > MAX_L1_BYTES {
        return Err(Qcow2Error::unsupported(
            path,
            L1_SIZE_OFFSET as u64,
            "L1 table over 32 MiB",
            header.l1_size.into(),
        ));
    }
    let l1_offset = header.l1_table_offset;
    if !aligned(l1_offset) {
        return Err(Qcow2Error::corrupt(
            path,
            L1_TABLE_OFFSET_OFFSET as u64,
            "l1_table_offset",
            l1_offset,
            expected_alignment,
        ));
    }
    if header.l1_size > 0 && l1_offset.saturating_add(u64::from(header.l1_size) * 8) > file_len {
        return Err(past_end(path, L1_TABLE_OFFSET_OFFSET as u64, "l1_table_offset", l1_offset, file_len));
    }

    let table_bytes = u64::from(header.refcount_table_clusters) * cluster_size;
    let refcount_offset = header.refcount_table_offset;
    if header.refcount_table_clusters == 0 || table_bytes > MAX_REFCOUNT_TABLE_BYTES {
        let clusters = header.refcount_table_clusters.into();
        return Err(Qcow2Error::corrupt(
            path,
            REFCOUNT_TABLE_CLUSTERS_OFFSET as u64,
            "refcount_table_clusters",
            clusters,
            "between 1 and 8 MiB of clusters",
        ));
    }
    if !aligned(refcount_offset) {
        return Err(Qcow2Error::corrupt(
            path,
            REFCOUNT_TABLE_OFFSET_OFFSET as u64,
            "refcount_table_offset",
            refcount_offset,
            expected_alignment,
        ));
    }
    if refcount_offset.saturating_add(table_bytes) > file_len {
        return Err(past_end(
            path,
            REFCOUNT_TABLE_OFFSET_OFFSET as u64,
            "refcount_table_offset",
            refcount_offset,
            file_len,
        ));
    }

    if header.nb_snapshots > 0 && !aligned(header.snapshots_offset) {
        return Err(Qcow2Error::corrupt(
            path,
            SNAPSHOTS_OFFSET_OFFSET as u64,
            "snapshots_offset",
            header.snapshots_offset,
            expected_alignment,
        ));
    }
    Ok(())
}

pub(super) fn read_table(file: &File, path: &Path, offset: u64, entries: usize) -> Result<Vec<u64>> {
    let mut bytes = vec![0u8; entries * 8];
    read_padded(file, path, offset, &mut bytes)?;
    Ok(bytes.chunks_exact(8).map(|raw| u64::from_be_bytes(raw.try_into().expect("8 bytes"))).collect())
}

/// Reads the L1 table and checks that every L2 table offset is aligned and
/// inside the file.
pub(super) fn read_l1(file: &File, header: &Header, file_len: u64, path: &Path) -> Result<Vec<u64>> {
    let table = read_table(file, path, header.l1_table_offset, header.l1_size as usize)?;
    let cluster_size = header.cluster_size();
    for (index, &raw) in table.iter().enumerate() {
        let at = header.l1_table_offset + index as u64 * 8;
        let entry =
            L1Entry::decode(raw, cluster_size).map_err(|error| entry_error(path, at, "L1 entry", raw, error))?;
        if entry.l2_offset != 0 && entry.l2_offset + cluster_size > file_len {
            return Err(past_end(path, at, "L1 entry", raw, file_len));
        }
    }
    Ok(table)
}

/// Reads the refcount table and checks that every refcount block offset is
/// aligned and inside the file.
pub(super) fn read_refcount_table(file: &File, header: &Header, file_len: u64, path: &Path) -> Result<Vec<u64>> {
    let cluster_size = header.cluster_size();
    let entries = (u64::from(header.refcount_table_clusters) * cluster_size / 8) as usize;
    let table = read_table(file, path, header.refcount_table_offset, entries)?;
    for (index, &raw) in table.iter().enumerate() {
        let at = header.refcount_table_offset + index as u64 * 8;
        let entry = RefcountTableEntry::decode(raw, cluster_size)
            .map_err(|error| entry_error(path, at, "refcount table entry", raw, error))?;
        if entry.block_offset != 0 && entry.block_offset + cluster_size > file_len {
            return Err(past_end(path, at, "refcount table entry", raw, file_len));
        }
    }
    Ok(table)
}
