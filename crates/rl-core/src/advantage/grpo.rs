//! GRPO and Dr.GRPO: group-centred rewards, optionally divided by a standard deviation.

use super::groups::{GroupIndex, SingletonGroups};
use super::{Advantages, RewardScale, finish, nan_mean, nan_std};

/// Per-group statistic of `rewards` (NaN excluded), one value per row.
fn per_row(rewards: &[f32], groups: &GroupIndex, stat: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut out = vec![f64::NAN; rewards.len()];
    for rows in groups.groups() {
        let vals: Vec<f64> = rows.iter().map(|&i| rewards[i] as f64).collect();
        let v = stat(&vals);
        for &i in rows {
            out[i] = v;
        }
    }
    out
}

/// Group means (verl: a group of one has mean 0 under [`SingletonGroups::Verl`]).
fn means(rewards: &[f32], groups: &GroupIndex, singletons: SingletonGroups) -> Vec<f64> {
    per_row(rewards, groups, |g| match (singletons, g.len()) {
        (SingletonGroups::Verl, 1) => 0.0,
        _ => nan_mean(g.iter().copied()).0,
    })
}

/// r − mean of its group (NaN rewards excluded from the mean; a NaN reward stays NaN).
pub(super) fn centre(
    rewards: &[f32],
    groups: &GroupIndex,
    singletons: SingletonGroups,
) -> Vec<f64> {
    let m = means(rewards, groups, singletons);
    rewards.iter().zip(m).map(|(&r, m)| r as f64 - m).collect()
}

/// TRL 1.16 `sum_then_normalize` advantages: (r − μ_group) / (σ + ε), σ unbiased over the
/// group (`Group`) or the whole batch (`Batch`), not divided for `None`; NaN → 0. verl's
/// `compute_grpo_outcome_advantage` is the `Group` case with uid groups (a singleton group:
/// μ = 0, σ = 1).
pub(super) fn grpo(
    rewards: &[f32],
    groups: &GroupIndex,
    singletons: SingletonGroups,
    scale: RewardScale,
    eps: f32,
) -> Advantages {
    let centred = centre(rewards, groups, singletons);
    let all: Vec<f64> = rewards.iter().map(|&r| r as f64).collect();
    match scale {
        RewardScale::None => finish(centred.into_iter()),
        RewardScale::Batch => {
            let sd = nan_std(&all);
            finish(centred.into_iter().map(|a| a / (sd + eps as f64)))
        }
        RewardScale::Group => {
            let sds = per_row(rewards, groups, |g| match (singletons, g.len()) {
                (SingletonGroups::Verl, 1) => 1.0,
                _ => nan_std(g),
            });
            finish(
                centred
                    .into_iter()
                    .zip(sds)
                    .map(|(a, sd)| a / (sd + eps as f64)),
            )
        }
    }
}
