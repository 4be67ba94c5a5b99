//! Extended attributes of inodes: loading, placing (in the inode first,
//! then one external block), and releasing attribute blocks.

use super::acl;
use super::error::{Ext4Error, Result};
use super::fs::Filesystem;
use super::inode::{Inode, XATTR_AREA};
use super::xattr::{self, Xattr, INDEX_POSIX_ACL_ACCESS, INDEX_POSIX_ACL_DEFAULT};

impl Filesystem {
    /// Returns every attribute of an inode, in-inode ones first.
    pub(crate) fn load_xattrs(&mut self, ino: u32, inode: &Inode) -> Result<Vec<Xattr>> {
        let mut xattrs = xattr::decode_ibody(&inode.xattr_area, XATTR_AREA as u64)?;
        if inode.file_acl != 0 {
            let block = inode.file_acl;
            let location = block * self.block_size as u64;
            let csum = self.sb.has_metadata_csum();
            let seed = self.csum_seed;
            let data = self.read_block(block)?;
            if csum && !xattr::verify_checksum(data, block, seed) {
                return Err(Ext4Error::corrupt(format!("attribute block of inode {ino} has a bad checksum"), Some(location)));
            }
            xattrs.extend(xattr::decode_block(data, location)?);
        }
        Ok(xattrs)
    }

    /// Stores `xattrs` for an inode, replacing what it had: as many as fit
    /// in the inode, the rest in an attribute block. The caller writes the
    /// inode afterwards.
    pub(crate) fn store_xattrs(&mut self, inode: &mut Inode, mut xattrs: Vec<Xattr>) -> Result<()> {
        xattrs.sort();
        let area_len = inode.xattr_area.len();
        let mut in_inode = Vec::new();
        let mut used = xattr::IBODY_HEADER_SIZE + xattr::END_MARKER_SIZE;
        let mut rest = Vec::new();
        for x in xattrs {
            let size = xattr::entry_size(x.name.len()) + xattr::value_size(x.value.len());
            if rest.is_empty() && used + size <= area_len {
                used += size;
                in_inode.push(x);
            } else {
                rest.push(x);
            }
        }
        let written = xattr::encode_ibody(&mut inode.xattr_area, &in_inode);
        debug_assert!(written, "in-inode attributes were sized to fit");

        let mut block_data = vec![0u8; self.block_size];
        if !rest.is_empty() && !xattr::encode_block(&mut block_data, &rest) {
            return Err(Ext4Error::NoSpace { path: String::new(), what: "extended attributes (more than one block)" });
        }
        self.place_xattr_block(inode, if rest.is_empty() { None } else { Some(block_data) })
    }

    /// Points the inode at a block holding `data`, reusing its own block
    /// when no other inode shares it, or at no block.
    fn place_xattr_block(&mut self, inode: &mut Inode, data: Option<Vec<u8>>) -> Result<()> {
        let sectors = self.block_size as u64 / 512;
        let old = inode.file_acl;
        let reusable = old != 0 && xattr::block_refcount(self.read_block(old)?) == 1;
        let Some(mut data) = data else {
            if old != 0 {
                self.release_xattr_block(old)?;
                inode.file_acl = 0;
                inode.blocks -= sectors;
            }
            return Ok(());
        };
        let block = if reusable {
            old
        } else {
            if old != 0 {
                self.release_xattr_block(old)?;
                inode.blocks -= sectors;
            }
            let (block, _) = self.allocate_blocks(1)?;
            inode.blocks += sectors;
            block
        };
        xattr::set_checksum(&mut data, block, self.csum_seed);
        self.cache.write_new(block).copy_from_slice(&data);
        inode.file_acl = block;
        Ok(())
    }

    /// Drops one reference to an attribute block, freeing it at zero.
    pub(crate) fn release_xattr_block(&mut self, block: u64) -> Result<()> {
        let refcount = xattr::block_refcount(self.read_block(block)?);
        if refcount <= 1 {
            return self.free_blocks(block, 1);
        }
        let seed = self.csum_seed;
        let data = self.write_block(block)?;
        super::le::put_u32(data, xattr::H_REFCOUNT, refcount - 1);
        xattr::set_checksum(data, block, seed);
        Ok(())
    }
}

/// Converts a full attribute name and value from the tar/xattr form to the
/// stored form: splits off the prefix and converts ACLs to ext4's format.
pub(crate) fn to_stored(name: &[u8], value: &[u8]) -> Result<Xattr> {
    let Some((index, suffix)) = xattr::split_name(name) else {
        return Err(Ext4Error::InvalidArgument {
            path: String::new(),
            message: format!(
                "unsupported extended attribute name {:?}; expected a user., trusted., security. or system. name",
                String::from_utf8_lossy(name)
            ),
        });
    };
    let value = match index {
        INDEX_POSIX_ACL_ACCESS | INDEX_POSIX_ACL_DEFAULT => acl::xattr_to_ext4(value)?,
        _ => value.to_vec(),
    };
    Ok(Xattr { index, name: suffix, value })
}

/// Converts a stored attribute back to its full name and xattr-form value.
pub(crate) fn from_stored(xattr: &Xattr) -> Result<(Vec<u8>, Vec<u8>)> {
    let value = match xattr.index {
        INDEX_POSIX_ACL_ACCESS | INDEX_POSIX_ACL_DEFAULT => acl::ext4_to_xattr(&xattr.value)?,
        _ => xattr.value.clone(),
    };
    Ok((xattr::full_name(xattr.index, &xattr.name), value))
}
