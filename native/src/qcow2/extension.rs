//! Header extensions, stored right after the header in the first cluster
//! (spec section "Header extensions"): a big-endian u32 type, a u32 data
//! length, the data, and zero padding to a multiple of 8 bytes.

use std::path::Path;

use super::error::{Qcow2Error, Result};

pub const END_OF_EXTENSIONS: u32 = 0x0000_0000;
pub const BACKING_FORMAT: u32 = 0xe279_2aca;
pub const FEATURE_NAME_TABLE: u32 = 0x6803_f857;
pub const BITMAPS: u32 = 0x2385_2875;
pub const FULL_DISK_ENCRYPTION: u32 = 0x0537_be77;
pub const EXTERNAL_DATA_FILE: u32 = 0x4441_5441;

/// Bytes of the type and length fields before the data.
pub const EXTENSION_HEADER_SIZE: usize = 8;
/// Bytes of one feature name table entry: type, bit number, 46-byte name.
pub const FEATURE_ENTRY_SIZE: usize = 48;
pub const FEATURE_NAME_SIZE: usize = 46;

/// Feature bitmap selected by a feature name table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureKind {
    Incompatible = 0,
    Compatible = 1,
    Autoclear = 2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureName {
    pub kind: FeatureKind,
    pub bit: u8,
    pub name: String,
}

/// The header extensions this engine interprets. Unknown ones are skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    /// Backing file format name and the byte offset of the extension.
    pub backing_format: Option<(String, u64)>,
    pub feature_names: Vec<FeatureName>,
    /// Byte offset of an external data file name extension, if present.
    pub external_data_file: Option<u64>,
    /// Byte offset of a full disk encryption header pointer, if present.
    pub encryption: Option<u64>,
}

/// Returns the feature name table this engine writes: every bit the spec defines.
pub fn known_feature_names() -> Vec<FeatureName> {
    let entry = |kind, bit, name: &str| FeatureName { kind, bit, name: name.to_string() };
    vec![
        entry(FeatureKind::Incompatible, 0, "dirty bit"),
        entry(FeatureKind::Incompatible, 1, "corrupt bit"),
        entry(FeatureKind::Incompatible, 2, "external data file"),
        entry(FeatureKind::Incompatible, 3, "compression type"),
        entry(FeatureKind::Incompatible, 4, "extended L2 entries"),
        entry(FeatureKind::Compatible, 0, "lazy refcounts"),
        entry(FeatureKind::Autoclear, 0, "bitmaps"),
        entry(FeatureKind::Autoclear, 1, "raw external data"),
    ]
}

fn round_up_8(length: usize) -> usize {
    length.div_ceil(8) * 8
}

impl Extensions {
    /// Decodes the extensions in `cluster` (the whole first cluster) from
    /// `start` (the header length) until the end marker.
    pub fn decode(cluster: &[u8], start: usize, file: &Path) -> Result<Extensions> {
        let mut extensions = Extensions::default();
        let mut position = start;
        loop {
            if position + EXTENSION_HEADER_SIZE > cluster.len() {
                // No end marker before the end of the cluster; QEMU accepts
                // this too, and nothing follows.
                return Ok(extensions);
            }
            let kind = u32::from_be_bytes(cluster[position..position + 4].try_into().expect("4 bytes"));
            let length = u32::from_be_bytes(cluster[position + 4..position + 8].try_into().expect("4 bytes"));
            if kind == END_OF_EXTENSIONS {
                return Ok(extensions);
            }

            let data_start = position + EXTENSION_HEADER_SIZE;
            let data_end = data_start.checked_add(length as usize).filter(|&end| end <= cluster.len());
            let Some(data_end) = data_end else {
                return Err(Qcow2Error::corrupt(
                    file,
                    position as u64 + 4,
                    "header extension length",
                    length.into(),
                    format!("at most {} bytes, the rest of the first cluster", cluster.len() - data_start),
                ));
            };
            extensions.apply(kind, &cluster[data_start..data_end], position as u64, file)?;
            position = data_start + round_up_8(length as usize);
        }
    }

    fn apply(&mut self, kind: u32, data: &[u8], offset: u64, file: &Path) -> Result<()> {
        match kind {
            BACKING_FORMAT => {
                let Ok(name) = std::str::from_utf8(data) else {
                    return Err(Qcow2Error::corrupt(file, offset, "backing file format", 0, "a UTF-8 string"));
                };
                self.backing_format = Some((name.to_string(), offset));
            }
            FEATURE_NAME_TABLE => self.feature_names = decode_feature_names(data),
            EXTERNAL_DATA_FILE => self.external_data_file = Some(offset),
            FULL_DISK_ENCRYPTION => self.encryption = Some(offset),
            // Bitmaps and unknown extensions do not change how data is read.
            BITMAPS => {}
            _ => {}
        }
        Ok(())
    }

    /// Returns the names that the feature name table gives to the set bits
    /// of `bits` in incompatible_features.
    pub fn incompatible_feature_names(&self, bits: u64) -> Vec<String> {
        self.feature_names
            .iter()
            .filter(|feature| feature.kind == FeatureKind::Incompatible && feature.bit < 64)
            .filter(|feature| bits & (1u64 << feature.bit) != 0)
            .map(|feature| feature.name.clone())
            .collect()
    }

    /// Encodes the backing format and feature name table, then the end
    /// marker. Each extension is padded to a multiple of 8 bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        if let Some((format, _)) = &self.backing_format {
            push_extension(&mut bytes, BACKING_FORMAT, format.as_bytes());
        }
        if !self.feature_names.is_empty() {
            push_extension(&mut bytes, FEATURE_NAME_TABLE, &encode_feature_names(&self.feature_names));
        }
        push_extension(&mut bytes, END_OF_EXTENSIONS, &[]);
        bytes
    }
}

fn push_extension(bytes: &mut Vec<u8>, kind: u32, data: &[u8]) {
    bytes.extend_from_slice(&kind.to_be_bytes());
    bytes.extend_from_slice(&(data.len() as u32).to_be_bytes());
    bytes.extend_from_slice(data);
    bytes.resize(round_up_8(bytes.len()), 0);
}

fn decode_feature_names(data: &[u8]) -> Vec<FeatureName> {
    data.chunks_exact(FEATURE_ENTRY_SIZE)
        .filter_map(|entry| {
            let kind = match entry[0] {
                0 => FeatureKind::Incompatible,
                1 => FeatureKind::Compatible,
                2 => FeatureKind::Autoclear,
                _ => return None,
            };
            let name = &entry[2..];
            let length = name.iter().position(|&byte| byte == 0).unwrap_or(name.len());
            Some(FeatureName { kind, bit: entry[1], name: String::from_utf8_lossy(&name[..length]).into_owned() })
        })
        .collect()
}

fn encode_feature_names(names: &[FeatureName]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(names.len() * FEATURE_ENTRY_SIZE);
    for feature in names {
        let mut entry = [0u8; FEATURE_ENTRY_SIZE];
        entry[0] = feature.kind as u8;
        entry[1] = feature.bit;
        let name = feature.name.as_bytes();
        let length = name.len().min(FEATURE_NAME_SIZE);
        entry[2..2 + length].copy_from_slice(&name[..length]);
        bytes.extend_from_slice(&entry);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_round_trip() {
        let extensions = Extensions {
            backing_format: Some(("qcow2".into(), 104)),
            feature_names: known_feature_names(),
            ..Extensions::default()
        };
        let mut cluster = vec![0u8; 104];
        cluster.extend_from_slice(&extensions.encode());
        cluster.resize(4096, 0xff);
        assert_eq!(Extensions::decode(&cluster, 104, Path::new("x")).unwrap(), extensions);
    }

    #[test]
    fn encoded_sizes_follow_the_spec() {
        let extensions = Extensions { backing_format: Some(("raw".into(), 0)), ..Extensions::default() };
        // 8-byte extension header, "raw" padded to 8, then an 8-byte end marker.
        assert_eq!(extensions.encode().len(), 24);
        assert_eq!(encode_feature_names(&known_feature_names()).len(), 8 * 48);
    }

    #[test]
    fn feature_names_name_unknown_bits() {
        let mut extensions = Extensions { feature_names: known_feature_names(), ..Extensions::default() };
        extensions.feature_names.push(FeatureName { kind: FeatureKind::Incompatible, bit: 9, name: "future".into() });
        assert_eq!(extensions.incompatible_feature_names(1 << 9 | 1 << 20), vec!["future".to_string()]);
        assert_eq!(extensions.incompatible_feature_names(1 << 1), vec!["corrupt bit".to_string()]);
    }

    #[test]
    fn unknown_extension_is_skipped() {
        let mut cluster = vec![0u8; 104];
        push_extension(&mut cluster, 0x1234_5678, b"future data");
        push_extension(&mut cluster, BACKING_FORMAT, b"raw");
        push_extension(&mut cluster, END_OF_EXTENSIONS, &[]);
        cluster.resize(512, 0);
        let extensions = Extensions::decode(&cluster, 104, Path::new("x")).unwrap();
        assert_eq!(extensions.backing_format, Some(("raw".into(), 128)));
    }

    #[test]
    fn overlong_extension_is_corrupt() {
        let mut cluster = vec![0u8; 104];
        cluster.extend_from_slice(&BACKING_FORMAT.to_be_bytes());
        cluster.extend_from_slice(&1000u32.to_be_bytes());
        cluster.resize(512, 0);
        let error = Extensions::decode(&cluster, 104, Path::new("x")).unwrap_err();
        assert_eq!((error.code(), error.offset()), ("ERR_QCOW2_CORRUPT", Some(108)));
    }
}
