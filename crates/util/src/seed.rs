//! Seed derivation: every seed of a run that is computed from another seed is computed here.
//!
//! All functions are built from SplitMix64 (Steele, Lea and Flood 2014; reference C code by
//! Vigna, <https://prng.di.unimi.it/splitmix64.c>): the increment [`GOLDEN_GAMMA`] and the
//! bijective finaliser [`mix64`]. Their values never change: a resumed run re-derives the seeds
//! of the steps it has not done yet, and published demo numbers depend on them, so the tests
//! below pin exact outputs.
//!
//! | function | used for |
//! |---|---|
//! | [`step_seed`] | the trainer's per-step streams (sampler, rollout, …) from the run seed |
//! | [`round_seed`] | the rollout seed of each generation round within one step |
//! | [`prompt_seed`] | the seed of prompt `i` in a rollout request |
//! | [`sample_seed`] | the stream of completion `j` of a prompt |
//! | [`call_seed`] | a request that carries no seed: an engine's seed and call counter |
//! | [`splitmix64`] | counter-based keys (DPS tie-breaks and its per-step local stream) |
//! | [`mix64`] | hashing (rlft-tasks' stable ids and splits) |

/// The SplitMix64 increment, ⌊2⁶⁴/φ⌋ (odd), `0x9E37_79B9_7F4A_7C15`.
pub const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 finaliser: a bijective mix of 64 bits (`mix64(0) == 0`).
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The next output of a SplitMix64 generator whose state is `state`:
/// `mix64(state + GOLDEN_GAMMA)`. `splitmix64(0)` is the reference generator's first output
/// from seed 0.
#[inline]
pub fn splitmix64(state: u64) -> u64 {
    mix64(state.wrapping_add(GOLDEN_GAMMA))
}

/// The seed of stream `stream` at step `step` of a run seeded with `seed`:
/// `mix64(seed + step·GOLDEN_GAMMA + stream·0xBF58_476D_1CE4_E5B9)` (wrapping).
#[inline]
pub fn step_seed(seed: u64, step: u64, stream: u64) -> u64 {
    mix64(
        seed.wrapping_add(step.wrapping_mul(GOLDEN_GAMMA))
            .wrapping_add(stream.wrapping_mul(0xBF58_476D_1CE4_E5B9)),
    )
}

/// The seed of generation round `round` (0-based) within one step whose rollout seed is
/// `seed`: `seed ⊕ round·GOLDEN_GAMMA`, so round 0 uses `seed` itself.
#[inline]
pub fn round_seed(seed: u64, round: u64) -> u64 {
    seed ^ round.wrapping_mul(GOLDEN_GAMMA)
}

/// The seed of prompt `index` in a request seeded with `seed`: `seed + index·GOLDEN_GAMMA`
/// (wrapping). It is additive, so `prompt_seed(prompt_seed(s, i), 0) == prompt_seed(s, i)`:
/// prompt `i` of a batch draws what the same prompt sent alone with that seed draws.
#[inline]
pub fn prompt_seed(seed: u64, index: u64) -> u64 {
    seed.wrapping_add(index.wrapping_mul(GOLDEN_GAMMA))
}

/// The seed of the random stream of completion `sample` (0-based) of a prompt whose seed is
/// `prompt_seed`: `mix64(prompt_seed ⊕ mix64(sample + 1))`.
#[inline]
pub fn sample_seed(prompt_seed: u64, sample: u64) -> u64 {
    mix64(prompt_seed ^ mix64(sample.wrapping_add(1)))
}

/// A seed for a request that carries none, from an engine's own seed and its call counter:
/// `mix64(engine_seed ⊕ mix64(call + GOLDEN_GAMMA))`.
#[inline]
pub fn call_seed(engine_seed: u64, call: u64) -> u64 {
    mix64(engine_seed ^ splitmix64(call))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values were printed by verbatim copies of the functions these replace
    // (rlft-trainer `online::step_seed` and the round seed in `collect.rs`, rlft-rollout
    // `seed.rs`, rlft-samplers `topk::mix64`, rlft-tasks `hash::mix64`) before they were
    // replaced. They must never change.

    #[test]
    fn splitmix64_matches_the_reference_generator() {
        // splitmix64.c seeded with 0: the first output is 0xe220a8397b1dcdaf.
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
        assert_eq!(mix64(GOLDEN_GAMMA), 0xe220_a839_7b1d_cdaf);
        assert_eq!(splitmix64(42), 0xbdd7_3226_2feb_6e95);
        assert_eq!(splitmix64(u64::MAX), 0xe4d9_7177_1b65_2c20);
        assert_eq!(splitmix64(0x7469_6573), 0xe52c_e25a_0912_bdd4);
    }

    #[test]
    fn mix64_values_are_pinned() {
        assert_eq!(mix64(0), 0);
        assert_eq!(mix64(42), 0xa759_ea27_d472_7622);
        assert_eq!(mix64(u64::MAX), 0xb4d0_55fc_f2cb_bd7b);
    }

    #[test]
    fn step_seed_values_are_pinned() {
        assert_eq!(step_seed(0, 0, 0), 0);
        assert_eq!(step_seed(42, 7, 1), 0x3063_c4e5_b3f0_dad1);
        assert_eq!(step_seed(u64::MAX, 3, 2), 0x0250_bba1_1a46_c036);
        assert_eq!(step_seed(1234, 100_000, 0), 0xf44b_939a_747d_4b29);
    }

    #[test]
    fn round_seed_values_are_pinned() {
        assert_eq!(round_seed(0, 0), 0);
        assert_eq!(round_seed(42, 0), 42);
        assert_eq!(round_seed(42, 1), 0x9e37_79b9_7f4a_7c3f);
        assert_eq!(round_seed(u64::MAX, 5), 0xe8ea_9f60_838b_9396);
    }

    #[test]
    fn rollout_seeds_are_pinned() {
        assert_eq!(prompt_seed(0, 0), 0);
        assert_eq!(prompt_seed(42, 3), 0xdaa6_6d2c_7ddf_7469);
        assert_eq!(prompt_seed(u64::MAX, 7), 0x5384_5412_7b09_6492);
        assert_eq!(sample_seed(0, 0), 0x7ab4_0e09_0f36_3a7d);
        assert_eq!(sample_seed(42, 3), 0x117b_dba5_bf9a_cb03);
        assert_eq!(sample_seed(u64::MAX, 7), 0x892d_65be_bc95_fd91);
        assert_eq!(call_seed(0, 0), 0x4821_8226_ff3c_d4bf);
        assert_eq!(call_seed(42, 3), 0x602b_6650_33f3_b406);
        assert_eq!(call_seed(u64::MAX, 7), 0x69a9_7e86_0828_cdd5);
    }

    #[test]
    fn prompt_seed_composes() {
        for (s, i) in [(0u64, 3u64), (u64::MAX, 7), (42, 0)] {
            assert_eq!(prompt_seed(prompt_seed(s, i), 0), prompt_seed(s, i));
            assert_eq!(
                prompt_seed(prompt_seed(s, i), 1),
                prompt_seed(s, i.wrapping_add(1))
            );
        }
    }
}
