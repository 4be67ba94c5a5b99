//! POSIX ACLs: conversion from the xattr format that tar archives carry
//! (`system.posix_acl_*`, version 2) to ext4's compact on-disk format
//! (version 1), which the kernel's `fs/ext4/acl.h` defines.

use super::error::{Ext4Error, Result};
use super::le::*;

/// Version word of the xattr (user-space) ACL format.
pub const XATTR_VERSION: u32 = 2;
/// Version word of the ext4 on-disk ACL format.
pub const EXT4_VERSION: u32 = 1;
pub const HEADER_SIZE: usize = 4;
/// Entries in the xattr format: tag u16, perm u16, id u32.
pub const XATTR_ENTRY_SIZE: usize = 8;
/// ext4 entries with an id (named user or group).
pub const EXT4_FULL_ENTRY_SIZE: usize = 8;
/// ext4 entries without an id (owner, owning group, mask, other).
pub const EXT4_SHORT_ENTRY_SIZE: usize = 4;

// Entry field offsets, the same in both formats.
pub const E_TAG: usize = 0x0;
pub const E_PERM: usize = 0x2;
pub const E_ID: usize = 0x4;

// Tags.
pub const USER_OBJ: u16 = 0x01;
pub const USER: u16 = 0x02;
pub const GROUP_OBJ: u16 = 0x04;
pub const GROUP: u16 = 0x08;
pub const MASK: u16 = 0x10;
pub const OTHER: u16 = 0x20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AclEntry {
    pub tag: u16,
    pub perm: u16,
    /// User or group id; only meaningful for `USER` and `GROUP`.
    pub id: u32,
}

fn invalid(message: &str) -> Ext4Error {
    Ext4Error::InvalidArgument { path: String::new(), message: format!("invalid POSIX ACL: {message}") }
}

/// Decodes the xattr format (version 2).
pub fn decode_xattr(bytes: &[u8]) -> Result<Vec<AclEntry>> {
    if bytes.len() < HEADER_SIZE || (bytes.len() - HEADER_SIZE) % XATTR_ENTRY_SIZE != 0 {
        return Err(invalid("length is not a 4-byte header plus 8-byte entries"));
    }
    if u32_at(bytes, 0) != XATTR_VERSION {
        return Err(invalid("version is not 2"));
    }
    let entries = bytes[HEADER_SIZE..]
        .chunks_exact(XATTR_ENTRY_SIZE)
        .map(|e| AclEntry { tag: u16_at(e, E_TAG), perm: u16_at(e, E_PERM), id: u32_at(e, E_ID) })
        .collect::<Vec<_>>();
    for entry in &entries {
        if ![USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER].contains(&entry.tag) || entry.perm > 7 {
            return Err(invalid("unknown tag or permission bits"));
        }
    }
    Ok(entries)
}

pub fn encode_xattr(entries: &[AclEntry]) -> Vec<u8> {
    let mut bytes = vec![0u8; HEADER_SIZE + entries.len() * XATTR_ENTRY_SIZE];
    put_u32(&mut bytes, 0, XATTR_VERSION);
    for (i, entry) in entries.iter().enumerate() {
        let at = HEADER_SIZE + i * XATTR_ENTRY_SIZE;
        put_u16(&mut bytes, at + E_TAG, entry.tag);
        put_u16(&mut bytes, at + E_PERM, entry.perm);
        let id = if matches!(entry.tag, USER | GROUP) { entry.id } else { u32::MAX };
        put_u32(&mut bytes, at + E_ID, id);
    }
    bytes
}

/// Encodes the ext4 on-disk format (version 1).
pub fn encode_ext4(entries: &[AclEntry]) -> Vec<u8> {
    let mut bytes = vec![0u8; HEADER_SIZE];
    put_u32(&mut bytes, 0, EXT4_VERSION);
    for entry in entries {
        let full = matches!(entry.tag, USER | GROUP);
        let mut raw = vec![0u8; if full { EXT4_FULL_ENTRY_SIZE } else { EXT4_SHORT_ENTRY_SIZE }];
        put_u16(&mut raw, E_TAG, entry.tag);
        put_u16(&mut raw, E_PERM, entry.perm);
        if full {
            put_u32(&mut raw, E_ID, entry.id);
        }
        bytes.extend_from_slice(&raw);
    }
    bytes
}

pub fn decode_ext4(bytes: &[u8]) -> Result<Vec<AclEntry>> {
    if bytes.len() < HEADER_SIZE || u32_at(bytes, 0) != EXT4_VERSION {
        return Err(Ext4Error::corrupt("ext4 ACL has a bad header", None));
    }
    let mut entries = Vec::new();
    let mut at = HEADER_SIZE;
    while at < bytes.len() {
        if at + EXT4_SHORT_ENTRY_SIZE > bytes.len() {
            return Err(Ext4Error::corrupt("ext4 ACL entry is truncated", None));
        }
        let tag = u16_at(bytes, at + E_TAG);
        let perm = u16_at(bytes, at + E_PERM);
        let full = matches!(tag, USER | GROUP);
        if full && at + EXT4_FULL_ENTRY_SIZE > bytes.len() {
            return Err(Ext4Error::corrupt("ext4 ACL entry is truncated", None));
        }
        let id = if full { u32_at(bytes, at + E_ID) } else { u32::MAX };
        entries.push(AclEntry { tag, perm, id });
        at += if full { EXT4_FULL_ENTRY_SIZE } else { EXT4_SHORT_ENTRY_SIZE };
    }
    Ok(entries)
}

/// Converts an ACL from the xattr format to the ext4 on-disk format.
pub fn xattr_to_ext4(bytes: &[u8]) -> Result<Vec<u8>> {
    Ok(encode_ext4(&decode_xattr(bytes)?))
}

/// Converts an ACL from the ext4 on-disk format back to the xattr format.
pub fn ext4_to_xattr(bytes: &[u8]) -> Result<Vec<u8>> {
    Ok(encode_xattr(&decode_ext4(bytes)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<AclEntry> {
        vec![
            AclEntry { tag: USER_OBJ, perm: 7, id: u32::MAX },
            AclEntry { tag: USER, perm: 5, id: 1000 },
            AclEntry { tag: GROUP_OBJ, perm: 5, id: u32::MAX },
            AclEntry { tag: GROUP, perm: 4, id: u32::MAX - 1 },
            AclEntry { tag: MASK, perm: 7, id: u32::MAX },
            AclEntry { tag: OTHER, perm: 0, id: u32::MAX },
        ]
    }

    #[test]
    fn xattr_round_trip() {
        assert_eq!(decode_xattr(&encode_xattr(&sample())).unwrap(), sample());
    }

    #[test]
    fn ext4_round_trip_and_size() {
        let bytes = encode_ext4(&sample());
        assert_eq!(bytes.len(), HEADER_SIZE + 4 * EXT4_SHORT_ENTRY_SIZE + 2 * EXT4_FULL_ENTRY_SIZE);
        assert_eq!(decode_ext4(&bytes).unwrap(), sample());
        assert_eq!(ext4_to_xattr(&xattr_to_ext4(&encode_xattr(&sample())).unwrap()).unwrap(), encode_xattr(&sample()));
    }

    #[test]
    fn rejects_bad_version_and_length() {
        let mut bytes = encode_xattr(&sample());
        bytes[0] = 1;
        assert!(decode_xattr(&bytes).is_err());
        assert!(decode_xattr(&[2, 0, 0, 0, 1]).is_err());
    }

    #[test]
    fn offsets_and_sizes() {
        assert_eq!(E_ID + 4, XATTR_ENTRY_SIZE);
        assert_eq!(E_PERM + 2, EXT4_SHORT_ENTRY_SIZE);
    }
}
