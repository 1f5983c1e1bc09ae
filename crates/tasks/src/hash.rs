//! A stable 64-bit hash for ids and splits.
//!
//! `std`'s `DefaultHasher` may change between Rust releases, so ids and splits use FNV-1a
//! (64-bit, offset basis 0xcbf29ce484222325, prime 0x100000001b3) followed by the SplitMix64
//! finaliser ([`rlft_util::seed::mix64`]), which spreads FNV's weak low bits. Both are fixed and
//! never change.

pub(crate) use rlft_util::seed::mix64;

/// FNV-1a over `bytes`, then the SplitMix64 finaliser.
pub(crate) fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix64(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_published_vectors() {
        // FNV-1a 64 test vectors from the FNV reference (isthe.com/chongo/tech/comp/fnv):
        // "" -> cbf29ce484222325, "a" -> af63dc4c8601ec8c, "foobar" -> 85944171f73967e8.
        // The local `fnv` mirrors the loop in `stable_hash`; the last line ties the two.
        fn fnv(bytes: &[u8]) -> u64 {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for &b in bytes {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
            h
        }
        assert_eq!(fnv(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(stable_hash(b"foobar"), mix64(0x8594_4171_f739_67e8));
    }

    #[test]
    fn finaliser_matches_splitmix64_reference() {
        // SplitMix64 with seed 0: the first output is mix64(0x9e3779b97f4a7c15) =
        // 0xe220a8397b1dcdaf (reference C code by Vigna, prng.di.unimi.it/splitmix64.c).
        assert_eq!(mix64(0x9e37_79b9_7f4a_7c15), 0xe220_a839_7b1d_cdaf);
    }
}
