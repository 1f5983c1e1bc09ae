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
use rlft_util::seed;

/// The seed of prompt `index` in a request seeded with `seed`: `seed + index · φ·2⁶⁴`
/// (wrapping), so `prompt_seed(prompt_seed(s, i), 0) == prompt_seed(s, i)`
/// ([`rlft_util::seed::prompt_seed`]).
pub fn prompt_seed(seed: u64, index: usize) -> u64 {
    seed::prompt_seed(seed, index as u64)
}

/// The random stream of sample `sample` (0-based, < n) of a prompt whose seed is `prompt_seed`
/// ([`rlft_util::seed::sample_seed`]).
pub fn stream_rng(prompt_seed: u64, sample: usize) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed::sample_seed(prompt_seed, sample as u64))
}

/// A seed for a request that carries none: mixes an engine's own seed with its call counter
/// ([`rlft_util::seed::call_seed`]).
pub(crate) fn call_seed(engine_seed: u64, call: u64) -> u64 {
    seed::call_seed(engine_seed, call)
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
