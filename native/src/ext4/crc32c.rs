//! CRC-32C (Castagnoli), the checksum of every ext4 `metadata_csum` field.
//!
//! ext4 chains raw CRC values: each checksum starts from a seed and is stored
//! without the final inversion that the standard CRC-32C applies. So
//! `update(!0, data)` is the kernel's `ext4_chksum(~0, data)`, and the
//! standard CRC-32C of `data` is `!update(!0, data)`.

/// Reflected Castagnoli polynomial.
const POLYNOMIAL: u32 = 0x82F6_3B78;

/// Eight 256-entry tables for slicing-by-8: table `k` advances a byte that
/// sits `k` bytes before the end of an 8-byte word.
static TABLES: [[u32; 256]; 8] = build_tables();

const fn build_tables() -> [[u32; 256]; 8] {
    let mut tables = [[0u32; 256]; 8];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = byte as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ POLYNOMIAL } else { crc >> 1 };
            bit += 1;
        }
        tables[0][byte] = crc;
        byte += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut byte = 0;
        while byte < 256 {
            let previous = tables[k - 1][byte];
            tables[k][byte] = (previous >> 8) ^ tables[0][(previous & 0xFF) as usize];
            byte += 1;
        }
        k += 1;
    }
    tables
}

/// Continues a raw CRC-32C from `crc` over `data`, with no final inversion.
pub fn update(mut crc: u32, data: &[u8]) -> u32 {
    let mut words = data.chunks_exact(8);
    for word in &mut words {
        let low = crc ^ u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        let high = u32::from_le_bytes([word[4], word[5], word[6], word[7]]);
        crc = TABLES[7][(low & 0xFF) as usize]
            ^ TABLES[6][((low >> 8) & 0xFF) as usize]
            ^ TABLES[5][((low >> 16) & 0xFF) as usize]
            ^ TABLES[4][(low >> 24) as usize]
            ^ TABLES[3][(high & 0xFF) as usize]
            ^ TABLES[2][((high >> 8) & 0xFF) as usize]
            ^ TABLES[1][((high >> 16) & 0xFF) as usize]
            ^ TABLES[0][(high >> 24) as usize];
    }
    for &byte in words.remainder() {
        crc = (crc >> 8) ^ TABLES[0][((crc ^ byte as u32) & 0xFF) as usize];
    }
    crc
}

/// Returns the standard CRC-32C of `data`.
pub fn checksum(data: &[u8]) -> u32 {
    !update(!0, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_check_value() {
        // The CRC catalogue's check value for CRC-32/ISCSI.
        assert_eq!(checksum(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn chaining_equals_one_pass() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let whole = update(!0, &data);
        let split = update(update(!0, &data[..333]), &data[333..]);
        assert_eq!(whole, split);
    }

    #[test]
    fn slicing_matches_bytewise() {
        let data: Vec<u8> = (0..517u32).map(|i| (i * 31 + 11) as u8).collect();
        let mut bytewise = !0u32;
        for &byte in &data {
            bytewise = (bytewise >> 8) ^ TABLES[0][((bytewise ^ byte as u32) & 0xFF) as usize];
        }
        assert_eq!(update(!0, &data), bytewise);
    }
}
