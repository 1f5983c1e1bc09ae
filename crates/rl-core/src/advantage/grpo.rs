//! GRPO and Dr.GRPO: group-centred rewards, optionally divided by a standard deviation.

use super::{Advantages, RewardScale, finish, nan_mean, nan_std};

/// r − mean of its group (NaN rewards excluded from the mean; a NaN reward stays NaN).
pub(super) fn centre(rewards: &[f32], k: usize) -> Vec<f64> {
    rewards
        .chunks(k)
        .flat_map(|g| {
            let (m, _) = nan_mean(g.iter().map(|&r| r as f64));
            g.iter().map(move |&r| r as f64 - m)
        })
        .collect()
}

/// TRL 1.16 `sum_then_normalize` advantages: (r − μ_group) / (σ + ε), σ unbiased over the
/// group (`Group`) or the whole batch (`Batch`), not divided for `None`; NaN → 0.
pub(super) fn grpo(rewards: &[f32], k: usize, scale: RewardScale, eps: f32) -> Advantages {
    let centred = centre(rewards, k);
    let all: Vec<f64> = rewards.iter().map(|&r| r as f64).collect();
    match scale {
        RewardScale::None => finish(centred.into_iter()),
        RewardScale::Batch => {
            let sd = nan_std(&all);
            finish(centred.into_iter().map(|a| a / (sd + eps as f64)))
        }
        RewardScale::Group => {
            let sds: Vec<f64> = all.chunks(k).map(nan_std).collect();
            finish(
                centred
                    .into_iter()
                    .enumerate()
                    .map(|(i, a)| a / (sds[i / k] + eps as f64)),
            )
        }
    }
}
