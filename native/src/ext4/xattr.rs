//! Extended attribute storage (kernel `attributes.rst`): entries in the
//! inode after `i_extra_isize`, and in one external block with a header.
//!
//! Both places hold a table of entries growing down from the start and
//! values growing up from the end. Entries are sorted by name index, name
//! length and name, which the kernel's block lookup relies on.

use super::crc32c;
use super::error::{Ext4Error, Result};
use super::le::*;

pub const MAGIC: u32 = 0xEA02_0000;
/// The in-inode area starts with the magic; entries follow it.
pub const IBODY_HEADER_SIZE: usize = 4;

// Block header (`ext4_xattr_header`) field offsets.
pub const H_MAGIC: usize = 0x0;
pub const H_REFCOUNT: usize = 0x4;
pub const H_BLOCKS: usize = 0x8;
pub const H_HASH: usize = 0xC;
pub const H_CHECKSUM: usize = 0x10;
pub const BLOCK_HEADER_SIZE: usize = 32;

// Entry (`ext4_xattr_entry`) field offsets.
pub const E_NAME_LEN: usize = 0x0;
pub const E_NAME_INDEX: usize = 0x1;
pub const E_VALUE_OFFS: usize = 0x2;
pub const E_VALUE_INUM: usize = 0x4;
pub const E_VALUE_SIZE: usize = 0x8;
pub const E_HASH: usize = 0xC;
pub const E_NAME: usize = 0x10;
/// An all-zero 4-byte word ends the entry table.
pub const END_MARKER_SIZE: usize = 4;

// Name indexes: the prefix each entry's name is stored without.
pub const INDEX_USER: u8 = 1;
pub const INDEX_POSIX_ACL_ACCESS: u8 = 2;
pub const INDEX_POSIX_ACL_DEFAULT: u8 = 3;
pub const INDEX_TRUSTED: u8 = 4;
pub const INDEX_SECURITY: u8 = 6;
pub const INDEX_SYSTEM: u8 = 7;

const PREFIXES: [(&[u8], u8); 6] = [
    (b"system.posix_acl_access", INDEX_POSIX_ACL_ACCESS),
    (b"system.posix_acl_default", INDEX_POSIX_ACL_DEFAULT),
    (b"user.", INDEX_USER),
    (b"trusted.", INDEX_TRUSTED),
    (b"security.", INDEX_SECURITY),
    (b"system.", INDEX_SYSTEM),
];

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Xattr {
    pub index: u8,
    /// The name without its prefix.
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

/// Splits a full attribute name such as `user.mime` into index and suffix.
pub fn split_name(full: &[u8]) -> Option<(u8, Vec<u8>)> {
    for (prefix, index) in PREFIXES {
        let whole_acl = index == INDEX_POSIX_ACL_ACCESS || index == INDEX_POSIX_ACL_DEFAULT;
        if whole_acl && full == prefix {
            return Some((index, Vec::new()));
        }
        if !whole_acl && full.len() > prefix.len() && full.starts_with(prefix) {
            let suffix = full[prefix.len()..].to_vec();
            return (suffix.len() <= 255).then_some((index, suffix));
        }
    }
    None
}

/// Joins index and suffix back into the full attribute name.
pub fn full_name(index: u8, name: &[u8]) -> Vec<u8> {
    let prefix = PREFIXES.iter().find(|(_, i)| *i == index).map(|(p, _)| *p).unwrap_or(b"unknown.");
    [prefix, name].concat()
}

/// Bytes one entry takes in the table, rounded up to 4.
pub fn entry_size(name_len: usize) -> usize {
    (E_NAME + name_len + 3) & !3
}

/// Bytes a value takes, rounded up to 4.
pub fn value_size(len: usize) -> usize {
    (len + 3) & !3
}

/// Bytes a set of attributes needs in a table, end marker included.
pub fn table_size(xattrs: &[Xattr]) -> usize {
    xattrs.iter().map(|x| entry_size(x.name.len()) + value_size(x.value.len())).sum::<usize>() + END_MARKER_SIZE
}

/// Returns the entry hash over the name bytes and the value's 32-bit words.
pub fn entry_hash(xattr: &Xattr) -> u32 {
    let mut hash = 0u32;
    for &byte in &xattr.name {
        hash = (hash << 5) ^ (hash >> 27) ^ byte as u32;
    }
    let mut padded = xattr.value.clone();
    padded.resize(value_size(padded.len()), 0);
    for word in padded.chunks_exact(4) {
        hash = (hash << 16) ^ (hash >> 16) ^ u32_at(word, 0);
    }
    hash
}

/// Returns the block header hash, combined from every entry hash.
fn block_hash(hashes: &[u32]) -> u32 {
    let mut hash = 0u32;
    for &entry in hashes {
        if entry == 0 {
            return 0;
        }
        hash = (hash << 16) ^ (hash >> 16) ^ entry;
    }
    hash
}

/// Writes `xattrs` (sorted) as a table into `area`: entries from
/// `entries_at`, values packed at the end. Value offsets count from
/// `value_base`. With `hashed`, entries carry their hash. Returns the
/// entry hashes, or `None` when the table does not fit.
fn encode_table(area: &mut [u8], entries_at: usize, value_base: usize, xattrs: &[Xattr], hashed: bool) -> Option<Vec<u32>> {
    if entries_at + table_size(xattrs) > area.len() {
        return None;
    }
    let mut entry_at = entries_at;
    let mut value_end = area.len();
    let mut hashes = Vec::with_capacity(xattrs.len());
    for xattr in xattrs {
        let padded = value_size(xattr.value.len());
        value_end -= padded;
        area[value_end..value_end + padded].fill(0);
        area[value_end..value_end + xattr.value.len()].copy_from_slice(&xattr.value);
        let offset = if xattr.value.is_empty() { 0 } else { value_end - value_base };

        let hash = if hashed { entry_hash(xattr) } else { 0 };
        hashes.push(hash);
        area[entry_at + E_NAME_LEN] = xattr.name.len() as u8;
        area[entry_at + E_NAME_INDEX] = xattr.index;
        put_u16(area, entry_at + E_VALUE_OFFS, offset as u16);
        put_u32(area, entry_at + E_VALUE_INUM, 0);
        put_u32(area, entry_at + E_VALUE_SIZE, xattr.value.len() as u32);
        put_u32(area, entry_at + E_HASH, hash);
        let name_end = entry_at + E_NAME + xattr.name.len();
        area[entry_at + E_NAME..name_end].copy_from_slice(&xattr.name);
        area[name_end..entry_at + entry_size(xattr.name.len())].fill(0);
        entry_at += entry_size(xattr.name.len());
    }
    area[entry_at..entry_at + END_MARKER_SIZE].fill(0);
    area[entry_at + END_MARKER_SIZE..value_end].fill(0);
    Some(hashes)
}

fn decode_table(area: &[u8], entries_at: usize, value_base: usize, location: u64) -> Result<Vec<Xattr>> {
    let corrupt = |what: &str, at: usize| Ext4Error::corrupt(format!("extended attribute {what}"), Some(location + at as u64));
    let mut xattrs = Vec::new();
    let mut at = entries_at;
    loop {
        if at + END_MARKER_SIZE > area.len() {
            return Err(corrupt("table has no end marker", at));
        }
        if u32_at(area, at) == 0 {
            return Ok(xattrs);
        }
        let name_len = area[at + E_NAME_LEN] as usize;
        if at + entry_size(name_len) > area.len() {
            return Err(corrupt("entry runs past its area", at));
        }
        if u32_at(area, at + E_VALUE_INUM) != 0 {
            return Err(Ext4Error::Unsupported { message: "extended attribute values in inodes (ea_inode)".into() });
        }
        let size = u32_at(area, at + E_VALUE_SIZE) as usize;
        let start = value_base + u16_at(area, at + E_VALUE_OFFS) as usize;
        if size > 0 && start + size > area.len() {
            return Err(corrupt("value runs past its area", at));
        }
        let value = if size == 0 { Vec::new() } else { area[start..start + size].to_vec() };
        let name = area[at + E_NAME..at + E_NAME + name_len].to_vec();
        xattrs.push(Xattr { index: area[at + E_NAME_INDEX], name, value });
        at += entry_size(name_len);
    }
}

/// Encodes the in-inode attribute area (the bytes after the extra fields).
/// Returns `false` when the attributes do not fit.
pub fn encode_ibody(area: &mut [u8], xattrs: &[Xattr]) -> bool {
    if xattrs.is_empty() {
        area.fill(0);
        return true;
    }
    if encode_table(area, IBODY_HEADER_SIZE, IBODY_HEADER_SIZE, xattrs, false).is_none() {
        return false;
    }
    put_u32(area, 0, MAGIC);
    true
}

pub fn decode_ibody(area: &[u8], location: u64) -> Result<Vec<Xattr>> {
    if area.len() < IBODY_HEADER_SIZE || u32_at(area, 0) != MAGIC {
        return Ok(Vec::new());
    }
    decode_table(area, IBODY_HEADER_SIZE, IBODY_HEADER_SIZE, location)
}

/// Encodes an attribute block with refcount 1. The checksum is set by
/// `set_checksum` once the block number is known. Returns `false` when
/// the attributes do not fit.
pub fn encode_block(block: &mut [u8], xattrs: &[Xattr]) -> bool {
    block.fill(0);
    let Some(hashes) = encode_table(block, BLOCK_HEADER_SIZE, 0, xattrs, true) else { return false };
    put_u32(block, H_MAGIC, MAGIC);
    put_u32(block, H_REFCOUNT, 1);
    put_u32(block, H_BLOCKS, 1);
    put_u32(block, H_HASH, block_hash(&hashes));
    true
}

pub fn decode_block(block: &[u8], location: u64) -> Result<Vec<Xattr>> {
    if u32_at(block, H_MAGIC) != MAGIC || u32_at(block, H_BLOCKS) != 1 {
        return Err(Ext4Error::corrupt("attribute block has a bad magic or block count", Some(location)));
    }
    decode_table(block, BLOCK_HEADER_SIZE, 0, location)
}

/// Reference count of an attribute block; blocks may be shared.
pub fn block_refcount(block: &[u8]) -> u32 {
    u32_at(block, H_REFCOUNT)
}

/// Computes an attribute block checksum: crc32c over the 64-bit block
/// number, then the block with `h_checksum` zeroed.
pub fn compute_checksum(block: &[u8], block_number: u64, csum_seed: u32) -> u32 {
    let mut crc = crc32c::update(csum_seed, &block_number.to_le_bytes());
    crc = crc32c::update(crc, &block[..H_CHECKSUM]);
    crc = crc32c::update(crc, &[0; 4]);
    crc32c::update(crc, &block[H_CHECKSUM + 4..])
}

pub fn set_checksum(block: &mut [u8], block_number: u64, csum_seed: u32) {
    let checksum = compute_checksum(block, block_number, csum_seed);
    put_u32(block, H_CHECKSUM, checksum);
}

pub fn verify_checksum(block: &[u8], block_number: u64, csum_seed: u32) -> bool {
    compute_checksum(block, block_number, csum_seed) == u32_at(block, H_CHECKSUM)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Xattr> {
        let mut xattrs = vec![
            Xattr { index: INDEX_USER, name: b"a".to_vec(), value: b"1".to_vec() },
            Xattr { index: INDEX_USER, name: b"empty".to_vec(), value: Vec::new() },
            Xattr { index: INDEX_SECURITY, name: b"capability".to_vec(), value: vec![1; 20] },
            Xattr { index: INDEX_TRUSTED, name: vec![b'n'; 255], value: vec![2; 1000] },
        ];
        xattrs.sort();
        xattrs
    }

    #[test]
    fn block_round_trip() {
        let mut block = vec![0u8; 4096];
        assert!(encode_block(&mut block, &sample()));
        set_checksum(&mut block, 1234, 5);
        assert_eq!(decode_block(&block, 0).unwrap(), sample());
        assert!(verify_checksum(&block, 1234, 5));
        assert!(!verify_checksum(&block, 1235, 5));
    }

    #[test]
    fn ibody_round_trip_and_overflow() {
        let mut area = vec![0u8; 96];
        let small = sample()[..2].to_vec();
        assert!(encode_ibody(&mut area, &small));
        assert_eq!(decode_ibody(&area, 0).unwrap(), small);
        assert!(!encode_ibody(&mut area, &sample()));
    }

    #[test]
    fn names_split_and_join() {
        assert_eq!(split_name(b"user.x"), Some((INDEX_USER, b"x".to_vec())));
        assert_eq!(split_name(b"system.posix_acl_access"), Some((INDEX_POSIX_ACL_ACCESS, Vec::new())));
        assert_eq!(split_name(b"security.capability"), Some((INDEX_SECURITY, b"capability".to_vec())));
        assert_eq!(split_name(b"user."), None);
        assert_eq!(split_name(b"bogus.x"), None);
        assert_eq!(full_name(INDEX_TRUSTED, b"t"), b"trusted.t".to_vec());
        assert_eq!(full_name(INDEX_POSIX_ACL_DEFAULT, b""), b"system.posix_acl_default".to_vec());
    }

    #[test]
    fn offsets_and_sizes() {
        assert_eq!(H_CHECKSUM + 4 + 12, BLOCK_HEADER_SIZE);
        assert_eq!(E_NAME, 16);
        assert_eq!(entry_size(1), 20);
        assert_eq!(entry_size(4), 20);
        assert_eq!(value_size(5), 8);
    }
}
