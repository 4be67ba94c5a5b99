//! Refcount block entries (spec section "Host cluster management").
//!
//! A refcount block is one cluster of `refcount_bits = 1 << refcount_order`
//! wide entries. Entries of 8 bits or more are big-endian; narrower entries
//! are packed from the least significant bit of each byte.

/// Number of entries in one refcount block.
pub fn entries_per_block(cluster_size: u64, refcount_order: u32) -> u64 {
    cluster_size * 8 >> refcount_order
}

/// Largest refcount an entry can hold.
pub fn max_refcount(refcount_order: u32) -> u64 {
    let bits = 1u32 << refcount_order;
    if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// Reads entry `index` of the raw block `block`.
pub fn get(block: &[u8], index: u64, refcount_order: u32) -> u64 {
    let bits = 1u64 << refcount_order;
    if bits < 8 {
        let per_byte = 8 / bits;
        let byte = block[(index / per_byte) as usize];
        let shift = (index % per_byte) * bits;
        return u64::from(byte >> shift) & max_refcount(refcount_order);
    }

    let width = (bits / 8) as usize;
    let start = index as usize * width;
    block[start..start + width].iter().fold(0u64, |value, &byte| (value << 8) | u64::from(byte))
}

/// Writes `value` to entry `index` of the raw block `block`. The caller
/// checks that `value <= max_refcount(refcount_order)`.
pub fn set(block: &mut [u8], index: u64, refcount_order: u32, value: u64) {
    let bits = 1u64 << refcount_order;
    if bits < 8 {
        let per_byte = 8 / bits;
        let byte = &mut block[(index / per_byte) as usize];
        let shift = (index % per_byte) * bits;
        let mask = (max_refcount(refcount_order) as u8) << shift;
        *byte = (*byte & !mask) | (((value as u8) << shift) & mask);
        return;
    }

    let width = (bits / 8) as usize;
    let start = index as usize * width;
    let bytes = value.to_be_bytes();
    block[start..start + width].copy_from_slice(&bytes[8 - width..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_for_every_order() {
        for order in 0..=6u32 {
            let cluster_size = 512u64;
            let count = entries_per_block(cluster_size, order);
            let mut block = vec![0u8; cluster_size as usize];
            let value_of = |index: u64| (index * 0x9e37_79b9_7f4a_7c15) & max_refcount(order);
            for index in 0..count {
                set(&mut block, index, order, value_of(index));
            }
            for index in 0..count {
                assert_eq!(get(&block, index, order), value_of(index), "order {order} index {index}");
            }
            set(&mut block, count - 1, order, max_refcount(order));
            assert_eq!(get(&block, count - 1, order), max_refcount(order));
        }
    }

    #[test]
    fn layout_matches_the_spec() {
        // 16-bit entries are big-endian.
        let mut block = vec![0u8; 8];
        set(&mut block, 1, 4, 0x0102);
        assert_eq!(block[2..4], [0x01, 0x02]);
        // 1-bit entries start at the least significant bit.
        let mut block = vec![0u8; 1];
        set(&mut block, 0, 0, 1);
        set(&mut block, 3, 0, 1);
        assert_eq!(block[0], 0b0000_1001);
        // 4-bit entries: index 0 is the low nibble.
        let mut block = vec![0u8; 1];
        set(&mut block, 1, 2, 0xa);
        assert_eq!(block[0], 0xa0);
    }
}
