//! The half-MD4 directory hash used by htree directories (kernel
//! `directory.rst`, "Hash Tree Directories"; `s_def_hash_version` 1).

/// `s_def_hash_version` / `dx_root_info.hash_version` for half-MD4.
pub const HASH_HALF_MD4: u8 = 1;

/// Largest 32-bit hash; the hash of a name is never this value shifted.
const HTREE_EOF_32BIT: u32 = 0x7FFF_FFFF;
const DEFAULT_SEED: [u32; 4] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476];
/// Round constants of MD4's second and third rounds.
const ROUND2: u32 = 0x5A82_7999;
const ROUND3: u32 = 0x6ED9_EBA1;

/// Packs up to `words * 4` name bytes into 32-bit words, most significant
/// byte first, padding with a word derived from the length.
fn pack(name: &[u8], words: usize, signed: bool) -> [u32; 8] {
    let length = name.len() as u32;
    let mut pad = length | (length << 8);
    pad |= pad << 16;

    let mut out = [pad; 8];
    let mut value = pad;
    let take = name.len().min(words * 4);
    let mut filled = 0;
    for (i, &byte) in name[..take].iter().enumerate() {
        let c = if signed { byte as i8 as i32 as u32 } else { byte as u32 };
        value = c.wrapping_add(value << 8);
        if i % 4 == 3 {
            out[filled] = value;
            filled += 1;
            value = pad;
        }
    }
    if filled < words && take % 4 != 0 {
        out[filled] = value;
    }
    out
}

fn f(x: u32, y: u32, z: u32) -> u32 {
    z ^ (x & (y ^ z))
}

fn g(x: u32, y: u32, z: u32) -> u32 {
    (x & y).wrapping_add((x ^ y) & z)
}

fn h(x: u32, y: u32, z: u32) -> u32 {
    x ^ y ^ z
}

/// Compresses eight input words into the 4-word state.
fn transform(state: &mut [u32; 4], input: &[u32; 8]) {
    let [mut a, mut b, mut c, mut d] = *state;
    let step = |func: fn(u32, u32, u32) -> u32, a: &mut u32, b: u32, c: u32, d: u32, x: u32, shift: u32| {
        *a = a.wrapping_add(func(b, c, d)).wrapping_add(x).rotate_left(shift);
    };
    // Each round visits the words in its own order with its own shifts.
    for (i, &k) in [0usize, 1, 2, 3, 4, 5, 6, 7].iter().enumerate() {
        let shift = [3, 7, 11, 19][i % 4];
        match i % 4 {
            0 => step(f, &mut a, b, c, d, input[k], shift),
            1 => step(f, &mut d, a, b, c, input[k], shift),
            2 => step(f, &mut c, d, a, b, input[k], shift),
            _ => step(f, &mut b, c, d, a, input[k], shift),
        }
    }
    for (i, &k) in [1usize, 3, 5, 7, 0, 2, 4, 6].iter().enumerate() {
        let shift = [3, 5, 9, 13][i % 4];
        let x = input[k].wrapping_add(ROUND2);
        match i % 4 {
            0 => step(g, &mut a, b, c, d, x, shift),
            1 => step(g, &mut d, a, b, c, x, shift),
            2 => step(g, &mut c, d, a, b, x, shift),
            _ => step(g, &mut b, c, d, a, x, shift),
        }
    }
    for (i, &k) in [3usize, 7, 2, 6, 1, 5, 0, 4].iter().enumerate() {
        let shift = [3, 9, 11, 15][i % 4];
        let x = input[k].wrapping_add(ROUND3);
        match i % 4 {
            0 => step(h, &mut a, b, c, d, x, shift),
            1 => step(h, &mut d, a, b, c, x, shift),
            2 => step(h, &mut c, d, a, b, x, shift),
            _ => step(h, &mut b, c, d, a, x, shift),
        }
    }
    state[0] = state[0].wrapping_add(a);
    state[1] = state[1].wrapping_add(b);
    state[2] = state[2].wrapping_add(c);
    state[3] = state[3].wrapping_add(d);
}

/// Returns the major hash of `name` (low bit clear), as the htree index
/// orders it. `signed` follows the superblock's signed-hash flag.
pub fn half_md4(name: &[u8], seed: &[u32; 4], signed: bool) -> u32 {
    let mut state = if seed.iter().all(|&word| word == 0) { DEFAULT_SEED } else { *seed };
    let mut rest = name;
    loop {
        let input = pack(rest, 8, signed);
        transform(&mut state, &input);
        if rest.len() <= 32 {
            break;
        }
        rest = &rest[32..];
    }
    let hash = state[1] & !1;
    if hash == HTREE_EOF_32BIT << 1 {
        (HTREE_EOF_32BIT - 1) << 1
    } else {
        hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_pads_with_length() {
        let words = pack(b"ab", 8, false);
        let pad = 0x0202_0202u32;
        assert_eq!(words[0], (pad << 16) | 0x6162);
        assert!(words[1..].iter().all(|&w| w == pad));
    }

    #[test]
    fn signedness_matters_only_above_127() {
        let seed = [1, 2, 3, 4];
        assert_eq!(half_md4(b"plain", &seed, true), half_md4(b"plain", &seed, false));
        assert_ne!(half_md4(b"caf\xc3\xa9", &seed, true), half_md4(b"caf\xc3\xa9", &seed, false));
    }

    #[test]
    fn hash_has_low_bit_clear() {
        for name in [&b"a"[..], b"lost+found", &[b'z'; 255]] {
            assert_eq!(half_md4(name, &[0; 4], true) & 1, 0);
        }
    }
}
