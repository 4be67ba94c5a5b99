//! L1, L2 and refcount table entries (spec sections "Cluster mapping" and
//! "Host cluster management"). Each is a big-endian u64 on disk and a
//! newtype in memory; decoding rejects reserved bits and unaligned offsets.

/// Bits 9-55 of L1 and standard L2 entries: a host cluster offset.
pub const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// Bit 63: the refcount of the cluster is exactly one (writes go in place).
pub const COPIED: u64 = 1 << 63;
/// Bit 62 of L2 entries: a compressed cluster descriptor follows.
pub const COMPRESSED: u64 = 1 << 62;
/// Bit 0 of standard L2 entries (version 3 only): the cluster reads as zeros.
pub const ZERO: u64 = 1 << 0;

/// Bits that must be zero in an L1 entry: 0-8 and 56-62.
pub const L1_RESERVED_MASK: u64 = !(OFFSET_MASK | COPIED);
/// Bits that must be zero in a standard L2 entry: 1-8 and 56-61.
pub const L2_RESERVED_MASK: u64 = !(OFFSET_MASK | COPIED | COMPRESSED | ZERO);
/// Bits 9-63 of a refcount table entry: the refcount block offset; 0-8 are reserved.
pub const REFCOUNT_TABLE_OFFSET_MASK: u64 = !0x1ff;

/// Reason a raw entry failed to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryError {
    /// A reserved bit is set; carries the reserved mask that was checked.
    ReservedBits(u64),
    /// The offset is not a multiple of the cluster size.
    Unaligned(u64),
}

fn check(raw: u64, reserved: u64, offset: u64, cluster_size: u64) -> Result<(), EntryError> {
    if raw & reserved != 0 {
        return Err(EntryError::ReservedBits(reserved));
    }
    if offset % cluster_size != 0 {
        return Err(EntryError::Unaligned(offset));
    }
    Ok(())
}

/// An L1 entry: offset of an L2 table, or 0 if the L2 table is unallocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L1Entry {
    pub l2_offset: u64,
    pub copied: bool,
}

impl L1Entry {
    pub fn decode(raw: u64, cluster_size: u64) -> Result<L1Entry, EntryError> {
        let l2_offset = raw & OFFSET_MASK;
        check(raw, L1_RESERVED_MASK, l2_offset, cluster_size)?;
        Ok(L1Entry { l2_offset, copied: raw & COPIED != 0 })
    }

    pub fn encode(self) -> u64 {
        self.l2_offset | if self.copied { COPIED } else { 0 }
    }
}

/// A decoded L2 entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L2Entry {
    /// No data here: read from the backing file, or zeros without one.
    Unallocated,
    /// Reads as zeros; `host_offset` is kept allocated when nonzero.
    Zero { host_offset: u64, copied: bool },
    /// Guest data at `host_offset`.
    Data { host_offset: u64, copied: bool },
    /// A compressed cluster; this engine does not read them.
    Compressed,
}

impl L2Entry {
    /// Decodes a raw entry. Version 2 images have no zero flag, so bit 0
    /// is reserved there.
    pub fn decode(raw: u64, cluster_size: u64, version: u32) -> Result<L2Entry, EntryError> {
        if raw & COMPRESSED != 0 {
            return Ok(L2Entry::Compressed);
        }

        let reserved = if version >= 3 { L2_RESERVED_MASK } else { L2_RESERVED_MASK | ZERO };
        let host_offset = raw & OFFSET_MASK;
        check(raw, reserved, host_offset, cluster_size)?;

        let copied = raw & COPIED != 0;
        Ok(match (raw & ZERO != 0, host_offset) {
            (true, _) => L2Entry::Zero { host_offset, copied },
            (false, 0) => L2Entry::Unallocated,
            (false, _) => L2Entry::Data { host_offset, copied },
        })
    }

    /// Encodes a standard entry. `Compressed` has no standard encoding.
    pub fn encode(self) -> u64 {
        let copied = |flag: bool| if flag { COPIED } else { 0 };
        match self {
            L2Entry::Unallocated => 0,
            L2Entry::Zero { host_offset, copied: flag } => host_offset | ZERO | copied(flag),
            L2Entry::Data { host_offset, copied: flag } => host_offset | copied(flag),
            L2Entry::Compressed => panic!("compressed L2 entries are never written"),
        }
    }
}

/// A refcount table entry: offset of a refcount block, or 0 if unallocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefcountTableEntry {
    pub block_offset: u64,
}

impl RefcountTableEntry {
    pub fn decode(raw: u64, cluster_size: u64) -> Result<RefcountTableEntry, EntryError> {
        let block_offset = raw & REFCOUNT_TABLE_OFFSET_MASK;
        check(raw, !REFCOUNT_TABLE_OFFSET_MASK, block_offset, cluster_size)?;
        Ok(RefcountTableEntry { block_offset })
    }

    pub fn encode(self) -> u64 {
        self.block_offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_OFFSET: u64 = OFFSET_MASK & !0xffff;

    #[test]
    fn masks_match_the_spec_bit_tables() {
        assert_eq!(L1_RESERVED_MASK, 0x7f00_0000_0000_01ff);
        assert_eq!(L2_RESERVED_MASK, 0x3f00_0000_0000_01fe);
        assert_eq!(REFCOUNT_TABLE_OFFSET_MASK & 0x1ff, 0);
    }

    #[test]
    fn l1_entry_round_trips() {
        for l2_offset in [0, 0x1_0000, MAX_OFFSET] {
            for copied in [false, true] {
                let entry = L1Entry { l2_offset, copied };
                assert_eq!(L1Entry::decode(entry.encode(), 0x1_0000), Ok(entry));
            }
        }
    }

    #[test]
    fn l2_entry_round_trips() {
        let entries = [
            L2Entry::Unallocated,
            L2Entry::Zero { host_offset: 0, copied: false },
            L2Entry::Zero { host_offset: MAX_OFFSET, copied: true },
            L2Entry::Data { host_offset: 0x200, copied: true },
            L2Entry::Data { host_offset: MAX_OFFSET, copied: false },
        ];
        for entry in entries {
            assert_eq!(L2Entry::decode(entry.encode(), 0x200, 3), Ok(entry));
        }
    }

    #[test]
    fn refcount_table_entry_round_trips() {
        for block_offset in [0, 0x200, u64::MAX & !0x1ff] {
            let entry = RefcountTableEntry { block_offset };
            assert_eq!(RefcountTableEntry::decode(entry.encode(), 0x200), Ok(entry));
        }
    }

    #[test]
    fn decoding_rejects_reserved_bits_and_misalignment() {
        assert_eq!(L1Entry::decode(1 << 60, 0x1_0000), Err(EntryError::ReservedBits(L1_RESERVED_MASK)));
        assert_eq!(L1Entry::decode(0x200, 0x1_0000), Err(EntryError::Unaligned(0x200)));
        assert_eq!(L2Entry::decode(1 << 3, 0x1_0000, 3), Err(EntryError::ReservedBits(L2_RESERVED_MASK)));
        assert!(L2Entry::decode(ZERO, 0x1_0000, 2).is_err(), "bit 0 is reserved in version 2");
        assert_eq!(L2Entry::decode(COMPRESSED | 5, 0x1_0000, 3), Ok(L2Entry::Compressed));
        assert!(RefcountTableEntry::decode(0x1_0001, 0x1_0000).is_err());
    }
}
