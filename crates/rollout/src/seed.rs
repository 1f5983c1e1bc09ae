//! Seeds of the per-completion random streams.
//!
//! Completion `j` of prompt `i` in a request with seed `s` draws from its own
//! [`Xoshiro256PlusPlus`] stream, [`stream_rng`]`(`[`prompt_seed`]`(s, i), j)`. Because
//! `prompt_seed` is additive in `i`, prompt `i` of a batch gives the same completions as the
//! same prompt sent alone with seed `prompt_seed(s, i)`: the HTTP engine sends one prompt per
//! request with that seed, so a batch through this crate's server equals the batch run
//! directly on the engine behind it, whatever the chunking and thread scheduling.

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

/// The golden-ratio increment of SplitMix64.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's finaliser: a bijective mix of 64 bits.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of prompt `index` in a request seeded with `seed`: `seed + index · φ·2⁶⁴`
/// (wrapping), so `prompt_seed(prompt_seed(s, i), 0) == prompt_seed(s, i)`.
pub fn prompt_seed(seed: u64, index: usize) -> u64 {
    seed.wrapping_add((index as u64).wrapping_mul(GOLDEN))
}

/// The random stream of sample `sample` (0-based, < n) of a prompt whose seed is `prompt_seed`.
pub fn stream_rng(prompt_seed: u64, sample: usize) -> Xoshiro256PlusPlus {
    let key = mix64(prompt_seed ^ mix64((sample as u64).wrapping_add(1)));
    Xoshiro256PlusPlus::seed_from_u64(key)
}

/// A seed for a request that carries none: mixes an engine's own seed with its call counter.
pub(crate) fn call_seed(engine_seed: u64, call: u64) -> u64 {
    mix64(engine_seed ^ mix64(call.wrapping_add(GOLDEN)))
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;

    #[test]
    fn prompt_seed_composes() {
        for (s, i) in [(0u64, 3usize), (u64::MAX, 7), (42, 0)] {
            assert_eq!(prompt_seed(prompt_seed(s, i), 0), prompt_seed(s, i));
        }
    }

    #[test]
    fn streams_differ_between_samples_and_prompts_and_repeat_per_seed() {
        let draw = |p: u64, j: usize| stream_rng(p, j).next_u64();
        assert_eq!(draw(prompt_seed(5, 1), 2), draw(prompt_seed(5, 1), 2));
        assert_ne!(draw(prompt_seed(5, 1), 2), draw(prompt_seed(5, 1), 3));
        assert_ne!(draw(prompt_seed(5, 1), 2), draw(prompt_seed(5, 2), 2));
        assert_ne!(draw(prompt_seed(5, 1), 0), draw(prompt_seed(6, 1), 0));
    }
}
