//! The qcow2 header at byte 0 of the file (spec section "Header").
//!
//! All fields are big-endian. Version 2 headers end at byte 72; version 3
//! headers are `header_length` bytes long, at least 104.

use std::path::Path;

use super::error::{Qcow2Error, Result};

/// "QFI\xfb".
pub const MAGIC: u32 = 0x5146_49fb;

// Byte offsets of the header fields.
pub const MAGIC_OFFSET: usize = 0;
pub const VERSION_OFFSET: usize = 4;
pub const BACKING_FILE_OFFSET_OFFSET: usize = 8;
pub const BACKING_FILE_SIZE_OFFSET: usize = 16;
pub const CLUSTER_BITS_OFFSET: usize = 20;
pub const SIZE_OFFSET: usize = 24;
pub const CRYPT_METHOD_OFFSET: usize = 32;
pub const L1_SIZE_OFFSET: usize = 36;
pub const L1_TABLE_OFFSET_OFFSET: usize = 40;
pub const REFCOUNT_TABLE_OFFSET_OFFSET: usize = 48;
pub const REFCOUNT_TABLE_CLUSTERS_OFFSET: usize = 56;
pub const NB_SNAPSHOTS_OFFSET: usize = 60;
pub const SNAPSHOTS_OFFSET_OFFSET: usize = 64;
pub const INCOMPATIBLE_FEATURES_OFFSET: usize = 72;
pub const COMPATIBLE_FEATURES_OFFSET: usize = 80;
pub const AUTOCLEAR_FEATURES_OFFSET: usize = 88;
pub const REFCOUNT_ORDER_OFFSET: usize = 96;
pub const HEADER_LENGTH_OFFSET: usize = 100;

/// Length in bytes of a version 2 header.
pub const V2_HEADER_LENGTH: u32 = 72;
/// Minimum length in bytes of a version 3 header; the length this engine writes.
pub const V3_HEADER_LENGTH: u32 = 104;

/// Smallest and largest cluster_bits: 512 B (spec minimum) to 2 MiB (QEMU's limit).
pub const MIN_CLUSTER_BITS: u32 = 9;
pub const MAX_CLUSTER_BITS: u32 = 21;
/// Largest refcount_order the spec allows (64-bit refcounts).
pub const MAX_REFCOUNT_ORDER: u32 = 6;
/// refcount_order assumed for version 2 and written for new images (16-bit refcounts).
pub const DEFAULT_REFCOUNT_ORDER: u32 = 4;
/// Maximum length in bytes of the backing file name.
pub const MAX_BACKING_FILE_SIZE: u32 = 1023;

// incompatible_features bits.
pub const INCOMPAT_DIRTY: u64 = 1 << 0;
pub const INCOMPAT_CORRUPT: u64 = 1 << 1;
pub const INCOMPAT_EXTERNAL_DATA_FILE: u64 = 1 << 2;
pub const INCOMPAT_COMPRESSION_TYPE: u64 = 1 << 3;
pub const INCOMPAT_EXTENDED_L2: u64 = 1 << 4;
// compatible_features bits.
pub const COMPAT_LAZY_REFCOUNTS: u64 = 1 << 0;

/// crypt_method value for "no encryption".
pub const CRYPT_NONE: u32 = 0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub backing_file_offset: u64,
    pub backing_file_size: u32,
    pub cluster_bits: u32,
    /// Virtual disk size in bytes.
    pub size: u64,
    pub crypt_method: u32,
    /// Number of entries in the active L1 table.
    pub l1_size: u32,
    pub l1_table_offset: u64,
    pub refcount_table_offset: u64,
    pub refcount_table_clusters: u32,
    pub nb_snapshots: u32,
    pub snapshots_offset: u64,
    pub incompatible_features: u64,
    pub compatible_features: u64,
    pub autoclear_features: u64,
    pub refcount_order: u32,
    pub header_length: u32,
}

fn be32(bytes: &[u8], offset: usize) -> u32 {
    u32::from_be_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"))
}

fn be64(bytes: &[u8], offset: usize) -> u64 {
    u64::from_be_bytes(bytes[offset..offset + 8].try_into().expect("8 bytes"))
}

impl Header {
    pub fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }

    /// Decodes the header from the first bytes of `file`, which must hold
    /// at least `V3_HEADER_LENGTH` bytes (zero-padded if the file is shorter).
    /// Checks each field on its own; checks against the file length and the
    /// feature policy are done by the image that opens it.
    pub fn decode(bytes: &[u8], file: &Path) -> Result<Header> {
        let magic = be32(bytes, MAGIC_OFFSET);
        if magic != MAGIC {
            return Err(Qcow2Error::corrupt(file, 0, "magic", magic.into(), "\"QFI\\xfb\" (0x514649fb)"));
        }

        let version = be32(bytes, VERSION_OFFSET);
        if version != 2 && version != 3 {
            return Err(Qcow2Error::unsupported(file, VERSION_OFFSET as u64, "qcow2 version", version.into()));
        }

        let v3 = version == 3;
        let header = Header {
            version,
            backing_file_offset: be64(bytes, BACKING_FILE_OFFSET_OFFSET),
            backing_file_size: be32(bytes, BACKING_FILE_SIZE_OFFSET),
            cluster_bits: be32(bytes, CLUSTER_BITS_OFFSET),
            size: be64(bytes, SIZE_OFFSET),
            crypt_method: be32(bytes, CRYPT_METHOD_OFFSET),
            l1_size: be32(bytes, L1_SIZE_OFFSET),
            l1_table_offset: be64(bytes, L1_TABLE_OFFSET_OFFSET),
            refcount_table_offset: be64(bytes, REFCOUNT_TABLE_OFFSET_OFFSET),
            refcount_table_clusters: be32(bytes, REFCOUNT_TABLE_CLUSTERS_OFFSET),
            nb_snapshots: be32(bytes, NB_SNAPSHOTS_OFFSET),
            snapshots_offset: be64(bytes, SNAPSHOTS_OFFSET_OFFSET),
            incompatible_features: if v3 { be64(bytes, INCOMPATIBLE_FEATURES_OFFSET) } else { 0 },
            compatible_features: if v3 { be64(bytes, COMPATIBLE_FEATURES_OFFSET) } else { 0 },
            autoclear_features: if v3 { be64(bytes, AUTOCLEAR_FEATURES_OFFSET) } else { 0 },
            refcount_order: if v3 { be32(bytes, REFCOUNT_ORDER_OFFSET) } else { DEFAULT_REFCOUNT_ORDER },
            header_length: if v3 { be32(bytes, HEADER_LENGTH_OFFSET) } else { V2_HEADER_LENGTH },
        };
        header.validate_fields(file)?;
        Ok(header)
    }

    fn validate_fields(&self, file: &Path) -> Result<()> {
        if !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&self.cluster_bits) {
            return Err(Qcow2Error::unsupported(
                file,
                CLUSTER_BITS_OFFSET as u64,
                "cluster_bits outside 9..=21 (512 B to 2 MiB clusters)",
                self.cluster_bits.into(),
            ));
        }
        if self.refcount_order > MAX_REFCOUNT_ORDER {
            return Err(Qcow2Error::corrupt(
                file,
                REFCOUNT_ORDER_OFFSET as u64,
                "refcount_order",
                self.refcount_order.into(),
                "at most 6",
            ));
        }
        if self.version == 3 {
            let length = self.header_length;
            if length < V3_HEADER_LENGTH || length % 8 != 0 || u64::from(length) > self.cluster_size() {
                return Err(Qcow2Error::corrupt(
                    file,
                    HEADER_LENGTH_OFFSET as u64,
                    "header_length",
                    length.into(),
                    "a multiple of 8, at least 104 and at most the cluster size",
                ));
            }
        }
        if self.backing_file_offset != 0 && self.backing_file_size > MAX_BACKING_FILE_SIZE {
            return Err(Qcow2Error::corrupt(
                file,
                BACKING_FILE_SIZE_OFFSET as u64,
                "backing_file_size",
                self.backing_file_size.into(),
                "at most 1023 bytes",
            ));
        }
        Ok(())
    }

    /// Encodes the header into `header_length` bytes. Version 2 headers
    /// are 72 bytes and carry no feature fields.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![0u8; self.header_length as usize];
        let put32 = |bytes: &mut Vec<u8>, offset: usize, value: u32| {
            bytes[offset..offset + 4].copy_from_slice(&value.to_be_bytes())
        };
        put32(&mut bytes, MAGIC_OFFSET, MAGIC);
        put32(&mut bytes, VERSION_OFFSET, self.version);
        put32(&mut bytes, BACKING_FILE_SIZE_OFFSET, self.backing_file_size);
        put32(&mut bytes, CLUSTER_BITS_OFFSET, self.cluster_bits);
        put32(&mut bytes, CRYPT_METHOD_OFFSET, self.crypt_method);
        put32(&mut bytes, L1_SIZE_OFFSET, self.l1_size);
        put32(&mut bytes, REFCOUNT_TABLE_CLUSTERS_OFFSET, self.refcount_table_clusters);
        put32(&mut bytes, NB_SNAPSHOTS_OFFSET, self.nb_snapshots);

        let put64 = |bytes: &mut Vec<u8>, offset: usize, value: u64| {
            bytes[offset..offset + 8].copy_from_slice(&value.to_be_bytes())
        };
        put64(&mut bytes, BACKING_FILE_OFFSET_OFFSET, self.backing_file_offset);
        put64(&mut bytes, SIZE_OFFSET, self.size);
        put64(&mut bytes, L1_TABLE_OFFSET_OFFSET, self.l1_table_offset);
        put64(&mut bytes, REFCOUNT_TABLE_OFFSET_OFFSET, self.refcount_table_offset);
        put64(&mut bytes, SNAPSHOTS_OFFSET_OFFSET, self.snapshots_offset);

        if self.version >= 3 {
            put64(&mut bytes, INCOMPATIBLE_FEATURES_OFFSET, self.incompatible_features);
            put64(&mut bytes, COMPATIBLE_FEATURES_OFFSET, self.compatible_features);
            put64(&mut bytes, AUTOCLEAR_FEATURES_OFFSET, self.autoclear_features);
            put32(&mut bytes, REFCOUNT_ORDER_OFFSET, self.refcount_order);
            put32(&mut bytes, HEADER_LENGTH_OFFSET, self.header_length);
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(version: u32) -> Header {
        Header {
            version,
            backing_file_offset: 0x1f0,
            backing_file_size: 1023,
            cluster_bits: 16,
            size: u64::MAX >> 8,
            crypt_method: 0,
            l1_size: u32::MAX,
            l1_table_offset: 0x3_0000,
            refcount_table_offset: 0x1_0000,
            refcount_table_clusters: u32::MAX,
            nb_snapshots: 7,
            snapshots_offset: 0x7_0000,
            incompatible_features: if version == 3 { INCOMPAT_EXTENDED_L2 } else { 0 },
            compatible_features: if version == 3 { u64::MAX } else { 0 },
            autoclear_features: if version == 3 { 3 } else { 0 },
            refcount_order: 4,
            header_length: if version == 3 { 104 } else { 72 },
        }
    }

    #[test]
    fn field_offsets_follow_the_spec() {
        assert_eq!(
            [VERSION_OFFSET, BACKING_FILE_OFFSET_OFFSET, BACKING_FILE_SIZE_OFFSET, CLUSTER_BITS_OFFSET, SIZE_OFFSET],
            [4, 8, 16, 20, 24]
        );
        assert_eq!([CRYPT_METHOD_OFFSET, L1_SIZE_OFFSET, L1_TABLE_OFFSET_OFFSET], [32, 36, 40]);
        assert_eq!([REFCOUNT_TABLE_OFFSET_OFFSET, REFCOUNT_TABLE_CLUSTERS_OFFSET, NB_SNAPSHOTS_OFFSET], [48, 56, 60]);
        assert_eq!([SNAPSHOTS_OFFSET_OFFSET, INCOMPATIBLE_FEATURES_OFFSET, COMPATIBLE_FEATURES_OFFSET], [64, 72, 80]);
        assert_eq!([AUTOCLEAR_FEATURES_OFFSET, REFCOUNT_ORDER_OFFSET, HEADER_LENGTH_OFFSET], [88, 96, 100]);
        assert_eq!(sample(2).encode().len(), 72);
        assert_eq!(sample(3).encode().len(), 104);
    }

    #[test]
    fn header_round_trips_for_both_versions() {
        for version in [2, 3] {
            let header = sample(version);
            let mut bytes = header.encode();
            bytes.resize(512, 0);
            assert_eq!(Header::decode(&bytes, Path::new("x")).unwrap(), header);
        }
    }

    #[test]
    fn header_round_trips_every_cluster_and_refcount_order() {
        for cluster_bits in MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS {
            for refcount_order in 0..=MAX_REFCOUNT_ORDER {
                let header = Header { cluster_bits, refcount_order, ..sample(3) };
                let mut bytes = header.encode();
                bytes.resize(512, 0);
                assert_eq!(Header::decode(&bytes, Path::new("x")).unwrap(), header);
            }
        }
    }

    #[test]
    fn bad_magic_is_corrupt_at_byte_zero() {
        let mut bytes = sample(3).encode();
        bytes[0] = b'X';
        let error = Header::decode(&bytes, Path::new("x")).unwrap_err();
        assert_eq!((error.code(), error.offset()), ("ERR_QCOW2_CORRUPT", Some(0)));
    }
}
