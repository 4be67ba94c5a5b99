//! Block and inode bitmaps (kernel `blockgroup.rst`): one bit per block or
//! inode of a group, bit `i` at byte `i / 8`, bit `i % 8`.

use super::crc32c;

pub fn get(bitmap: &[u8], bit: usize) -> bool {
    bitmap[bit / 8] & (1 << (bit % 8)) != 0
}

pub fn set(bitmap: &mut [u8], bit: usize) {
    bitmap[bit / 8] |= 1 << (bit % 8);
}

pub fn clear(bitmap: &mut [u8], bit: usize) {
    bitmap[bit / 8] &= !(1 << (bit % 8));
}

/// Marks bits `from..to` used.
pub fn set_range(bitmap: &mut [u8], from: usize, to: usize) {
    for bit in from..to {
        set(bitmap, bit);
    }
}

/// Returns the first clear bit in `from..to`.
pub fn find_clear(bitmap: &[u8], from: usize, to: usize) -> Option<usize> {
    let mut bit = from;
    while bit < to {
        if bit % 64 == 0 && bit + 64 <= to {
            let word = u64::from_le_bytes(bitmap[bit / 8..bit / 8 + 8].try_into().expect("8 bytes"));
            if word == u64::MAX {
                bit += 64;
                continue;
            }
        }
        if !get(bitmap, bit) {
            return Some(bit);
        }
        bit += 1;
    }
    None
}

/// Returns one past the highest set bit below `to`, or 0 when none is set.
pub fn end_of_used(bitmap: &[u8], to: usize) -> usize {
    (0..to).rev().find(|&bit| get(bitmap, bit)).map_or(0, |bit| bit + 1)
}

pub fn count_set(bitmap: &[u8], to: usize) -> usize {
    (0..to).filter(|&bit| get(bitmap, bit)).count()
}

/// Computes a bitmap checksum: crc32c over the `bits / 8` bytes in use.
pub fn checksum(bitmap: &[u8], bits: usize, csum_seed: u32) -> u32 {
    crc32c::update(csum_seed, &bitmap[..bits / 8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_find_clear() {
        let mut bitmap = vec![0u8; 4096];
        set_range(&mut bitmap, 0, 130);
        assert_eq!(find_clear(&bitmap, 0, 32768), Some(130));
        assert_eq!(end_of_used(&bitmap, 32768), 130);
        clear(&mut bitmap, 64);
        assert_eq!(find_clear(&bitmap, 0, 32768), Some(64));
        assert_eq!(count_set(&bitmap, 32768), 129);
        assert_eq!(find_clear(&bitmap, 0, 64), None);
    }

    #[test]
    fn checksum_covers_used_bytes_only() {
        let mut bitmap = vec![0u8; 4096];
        let before = checksum(&bitmap, 8192, 1);
        bitmap[2000] = 1;
        assert_eq!(checksum(&bitmap, 8192, 1), before);
        bitmap[1000] = 1;
        assert_ne!(checksum(&bitmap, 8192, 1), before);
    }
}
