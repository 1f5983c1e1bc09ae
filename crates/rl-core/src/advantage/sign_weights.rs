//! PSR, NSR and W-REINFORCE (Zhu et al. 2025, "The Surprising Effectiveness of Negative
//! Reinforcement"): fixed per-sample weights by correctness, no baseline.

use super::Advantages;

/// Correct samples (reward ≥ `threshold`) get `pos`, incorrect ones `neg`; a `None` weight
/// removes those samples from the batch (`keep = false`). NaN rewards are always removed.
pub(super) fn sign_weights(
    rewards: &[f32],
    threshold: f32,
    pos: Option<f32>,
    neg: Option<f32>,
) -> Advantages {
    let (values, keep) = rewards
        .iter()
        .map(|&r| {
            let w = if r.is_nan() {
                None
            } else if r >= threshold {
                pos
            } else {
                neg
            };
            (w.unwrap_or(0.0), w.is_some())
        })
        .unzip();
    Advantages { values, keep }
}
