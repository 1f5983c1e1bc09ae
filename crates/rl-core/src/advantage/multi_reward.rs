//! Several reward functions (TRL's `reward_funcs` with `reward_weights` and
//! `multi_objective_aggregation`): a table of per-function scores in, one reward per
//! completion out.

use serde::{Deserialize, Serialize};

use super::groups::GroupIndex;
use super::{AdvantageEstimator, Advantages, RewardScale, SingletonGroups, nan_mean, nan_std};
use crate::error::{CoreError, Result};

/// How the functions' scores are combined (TRL 1.16 `multi_objective_aggregation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardAggregation {
    /// Σ_f w_f·r_f (skipping functions with no score), then the advantage estimator as
    /// configured (GRPO with `scale_rewards`). Default (TRL).
    #[default]
    SumThenNormalize,
    /// GDPO: z-score each function within its group ((r − mean) / (std + 1e-4), unbiased std),
    /// take the weighted sum skipping missing scores, then z-score over the batch
    /// ([`AdvantageEstimator::BatchNormalize`]); `scale_rewards` plays no part (TRL).
    NormalizeThenSum,
}

/// TRL's ε in `normalize_then_sum` (both z-scores) and in GRPO's std division.
const TRL_EPS: f64 = 1e-4;

/// Scores of F reward functions for N completions, row-major `[N, F]`. NaN means the function
/// gave no score (TRL: it returned `None`).
///
/// ```
/// use rlft_core::{GroupIndex, RewardAggregation, RewardTable};
///
/// // Two completions of one prompt, two functions; the second has no score for row 1.
/// let t = RewardTable::new(vec![1.0, 0.5, 0.0, f32::NAN], 2)?;
/// assert_eq!(t.weighted_sum(&[1.0, 2.0])?, vec![2.0, 0.0]);
/// assert_eq!(t.means(), vec![0.5, 0.5]);
/// let g = GroupIndex::consecutive(2, 2)?;
/// let r = t.combine(&[1.0, 2.0], RewardAggregation::NormalizeThenSum, &g)?;
/// assert!((r[0] - 0.7071).abs() < 1e-3 && (r[1] + 0.7071).abs() < 1e-3);
/// # Ok::<(), rlft_core::CoreError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RewardTable {
    values: Vec<f32>,
    funcs: usize,
}

impl RewardTable {
    /// A table from row-major values with `funcs` columns.
    ///
    /// # Errors
    /// [`CoreError::EmptyBatch`] for no values or no functions; [`CoreError::ShapeMismatch`]
    /// when the values do not fill whole rows; [`CoreError::NonFiniteReward`] for ±∞ (NaN is
    /// "no score").
    pub fn new(values: Vec<f32>, funcs: usize) -> Result<Self> {
        if values.is_empty() || funcs == 0 {
            return Err(CoreError::EmptyBatch {
                what: "reward table",
            });
        }
        if !values.len().is_multiple_of(funcs) {
            return Err(CoreError::ShapeMismatch {
                what: "reward table",
                expected: vec![values.len() / funcs + 1, funcs],
                found: vec![values.len()],
            });
        }
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| v.is_infinite()) {
            return Err(CoreError::NonFiniteReward {
                index: index / funcs,
                value,
            });
        }
        Ok(Self { values, funcs })
    }

    /// Number of completions (rows).
    pub fn rows(&self) -> usize {
        self.values.len() / self.funcs
    }

    /// Number of reward functions (columns).
    pub fn funcs(&self) -> usize {
        self.funcs
    }

    /// Row `i`: each function's score of completion `i`.
    ///
    /// # Panics
    /// If `i ≥ rows()`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.funcs..(i + 1) * self.funcs]
    }

    fn column(&self, f: usize) -> impl Iterator<Item = f64> + '_ {
        self.values
            .iter()
            .skip(f)
            .step_by(self.funcs)
            .map(|&v| v as f64)
    }

    /// Each function's mean over the completions it scored (NaN when it scored none): TRL's
    /// `rewards/<name>/mean`.
    pub fn means(&self) -> Vec<f64> {
        (0..self.funcs)
            .map(|f| nan_mean(self.column(f)).0)
            .collect()
    }

    /// Each function's unbiased std over the completions it scored: TRL's `rewards/<name>/std`.
    pub fn stds(&self) -> Vec<f64> {
        (0..self.funcs)
            .map(|f| nan_std(&self.column(f).collect::<Vec<_>>()))
            .collect()
    }

    fn check_weights(&self, weights: &[f32]) -> Result<()> {
        if weights.len() != self.funcs {
            return Err(CoreError::ShapeMismatch {
                what: "reward_weights",
                expected: vec![self.funcs],
                found: vec![weights.len()],
            });
        }
        if let Some(w) = weights.iter().find(|w| !w.is_finite()) {
            return Err(CoreError::Config {
                field: "reward_weights",
                reason: format!("must be finite, got {w}"),
            });
        }
        Ok(())
    }

    /// Σ_f w_f·r_f over the functions that scored the completion; NaN when none did (TRL's
    /// `nansum` with unscorable rows set to NaN, which then get advantage 0).
    ///
    /// # Errors
    /// [`CoreError::ShapeMismatch`] when there is not one weight per function;
    /// [`CoreError::Config`] for a non-finite weight.
    pub fn weighted_sum(&self, weights: &[f32]) -> Result<Vec<f32>> {
        self.check_weights(weights)?;
        Ok((0..self.rows())
            .map(|i| weighted_nansum(self.row(i).iter().map(|&v| v as f64), weights) as f32)
            .collect())
    }

    /// The reward per completion that the advantage estimator receives: [`weighted_sum`] for
    /// `sum_then_normalize`; for `normalize_then_sum`, each function z-scored within its group
    /// (a function's score in a group where it scored fewer than two completions contributes
    /// nothing, as TRL's NaN std makes it) and then weighted and summed. NaN where no function
    /// scored the completion.
    ///
    /// [`weighted_sum`]: Self::weighted_sum
    ///
    /// # Errors
    /// As [`weighted_sum`](Self::weighted_sum), and [`CoreError::ShapeMismatch`] when `groups`
    /// covers a different number of rows.
    pub fn combine(
        &self,
        weights: &[f32],
        aggregation: RewardAggregation,
        groups: &GroupIndex,
    ) -> Result<Vec<f32>> {
        if groups.rows() != self.rows() {
            return Err(CoreError::ShapeMismatch {
                what: "groups",
                expected: vec![self.rows()],
                found: vec![groups.rows()],
            });
        }
        if aggregation == RewardAggregation::SumThenNormalize {
            return self.weighted_sum(weights);
        }
        self.check_weights(weights)?;
        let mut z = vec![f64::NAN; self.values.len()];
        for rows in groups.groups() {
            for f in 0..self.funcs {
                let vals: Vec<f64> = rows
                    .iter()
                    .map(|&i| self.values[i * self.funcs + f] as f64)
                    .collect();
                let (mean, _) = nan_mean(vals.iter().copied());
                // TRL: std 0 for a group of one generation, else the (NaN-aware) unbiased std.
                let sd = if rows.len() > 1 { nan_std(&vals) } else { 0.0 };
                for (&i, v) in rows.iter().zip(vals) {
                    z[i * self.funcs + f] = (v - mean) / (sd + TRL_EPS);
                }
            }
        }
        Ok((0..self.rows())
            .map(|i| {
                if self.row(i).iter().all(|v| v.is_nan()) {
                    return f32::NAN;
                }
                let zs = &z[i * self.funcs..(i + 1) * self.funcs];
                let s: f64 = zs
                    .iter()
                    .zip(weights)
                    .filter(|(z, _)| !z.is_nan())
                    .map(|(z, &w)| z * w as f64)
                    .sum();
                s as f32
            })
            .collect())
    }
}

/// Σ w·v over non-NaN v; NaN when every v is NaN.
fn weighted_nansum(values: impl Iterator<Item = f64>, weights: &[f32]) -> f64 {
    let (mut s, mut any) = (0.0, false);
    for (v, &w) in values.zip(weights) {
        if !v.is_nan() {
            s += v * w as f64;
            any = true;
        }
    }
    if any { s } else { f64::NAN }
}

/// TRL 1.16's whole advantage computation for several reward functions
/// (`_generate_and_score_completions`): `sum_then_normalize` is the weighted sum followed by
/// GRPO with `scale` (ε = 1e-4); `normalize_then_sum` ignores `scale` and z-scores the
/// combined reward over the batch. Unscorable completions get advantage 0.
///
/// # Errors
/// As [`RewardTable::combine`] and [`AdvantageEstimator::compute_groups`].
pub fn trl_advantages(
    table: &RewardTable,
    weights: &[f32],
    aggregation: RewardAggregation,
    scale: RewardScale,
    groups: &GroupIndex,
) -> Result<Advantages> {
    let rewards = table.combine(weights, aggregation, groups)?;
    aggregation
        .estimator(scale)
        .compute_groups(&rewards, groups, None, SingletonGroups::Error)
}

impl RewardAggregation {
    /// The advantage estimator TRL applies to the combined rewards: GRPO with `scale` for
    /// `sum_then_normalize`, the batch z-score for `normalize_then_sum`.
    pub fn estimator(self, scale: RewardScale) -> AdvantageEstimator {
        match self {
            Self::SumThenNormalize => AdvantageEstimator::Grpo {
                scale,
                epsilon: TRL_EPS as f32,
            },
            Self::NormalizeThenSum => AdvantageEstimator::BatchNormalize {
                epsilon: TRL_EPS as f32,
            },
        }
    }
}

/// (r − batch mean) / (batch std + ε), NaN excluded and mapped to 0.
pub(super) fn batch_normalize(rewards: &[f32], eps: f32) -> Advantages {
    let all: Vec<f64> = rewards.iter().map(|&r| r as f64).collect();
    let (mean, _) = nan_mean(all.iter().copied());
    let sd = nan_std(&all);
    super::finish(all.into_iter().map(|r| (r - mean) / (sd + eps as f64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_tables_and_weights_are_typed_errors() {
        assert!(matches!(
            RewardTable::new(vec![], 2),
            Err(CoreError::EmptyBatch { .. })
        ));
        assert!(matches!(
            RewardTable::new(vec![1.0, 2.0, 3.0], 2),
            Err(CoreError::ShapeMismatch { .. })
        ));
        assert!(matches!(
            RewardTable::new(vec![1.0, f32::INFINITY], 1),
            Err(CoreError::NonFiniteReward { index: 1, .. })
        ));
        let t = RewardTable::new(vec![1.0, 0.0, 0.5, 0.5], 2).unwrap();
        assert!(matches!(
            t.weighted_sum(&[1.0]),
            Err(CoreError::ShapeMismatch {
                what: "reward_weights",
                ..
            })
        ));
        assert!(matches!(
            t.weighted_sum(&[1.0, f32::NAN]),
            Err(CoreError::Config {
                field: "reward_weights",
                ..
            })
        ));
        let g = GroupIndex::consecutive(4, 2).unwrap();
        assert!(matches!(
            t.combine(&[1.0, 1.0], RewardAggregation::NormalizeThenSum, &g),
            Err(CoreError::ShapeMismatch { what: "groups", .. })
        ));
    }

    #[test]
    fn missing_scores_are_skipped_and_all_missing_is_nan() {
        let t = RewardTable::new(vec![1.0, f32::NAN, f32::NAN, f32::NAN, 0.0, 2.0], 2).unwrap();
        let r = t.weighted_sum(&[1.0, -0.5]).unwrap();
        assert_eq!(r[0], 1.0);
        assert!(r[1].is_nan());
        assert_eq!(r[2], -1.0);
        assert_eq!(t.means(), vec![0.5, 2.0]);
        // An unscorable row gets advantage 0 and stays out of the statistics.
        let a = trl_advantages(
            &t,
            &[1.0, -0.5],
            RewardAggregation::SumThenNormalize,
            RewardScale::Batch,
            &GroupIndex::consecutive(3, 3).unwrap(),
        )
        .unwrap();
        assert_eq!(a.values[1], 0.0);
        assert!(a.values[0] > 0.0 && a.values[2] < 0.0);
    }
}
