//! Advantage estimators: per-completion rewards in, one advantage per completion out.
//!
//! Rewards come flat, grouped by prompt: `rewards[g * k .. (g + 1) * k]` are the k completions
//! of prompt g, as TRL lays them out ([`AdvantageEstimator::compute`]), or in groups named by a
//! uid per row, in any order and of any size, as verl does
//! ([`AdvantageEstimator::compute_groups`] with a [`GroupIndex`]). NaN marks an unscorable completion (TRL: every
//! reward function returned `None`): it is left out of every mean and standard deviation and
//! gets advantage 0. Infinite rewards are an error. Statistics are computed in f64 and the
//! result is rounded to f32 once.

mod groups;
mod grpo;
mod multi_reward;
mod reinforce_pp;
mod rloo;
mod sign_weights;

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};

pub use groups::{GroupIndex, SingletonGroups};
pub use multi_reward::{RewardAggregation, RewardTable, trl_advantages};

/// How GRPO divides the centred rewards (TRL `scale_rewards`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardScale {
    /// Divide by the group's standard deviation. TRL default (`scale_rewards="group"`).
    #[default]
    Group,
    /// Divide by the whole batch's standard deviation; the mean subtracted is still the
    /// group's (TRL `scale_rewards="batch"`).
    Batch,
    /// Do not divide (TRL `scale_rewards="none"`; Dr.GRPO).
    None,
}

/// The advantage of each completion and whether it stays in the loss.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Advantages {
    /// One advantage per completion, in input order.
    pub values: Vec<f32>,
    /// False for completions the estimator removes from the batch entirely (PSR keeps only
    /// correct samples, NSR only incorrect ones), so they also leave the token count.
    pub keep: Vec<bool>,
}

impl Advantages {
    fn all_kept(values: Vec<f32>) -> Self {
        let keep = vec![true; values.len()];
        Self { values, keep }
    }
}

fn default_trl_eps() -> f32 {
    1e-4
}
fn default_whiten_eps() -> f32 {
    1e-8
}
fn default_lambda() -> f32 {
    0.1
}
fn default_threshold() -> f32 {
    1.0
}

/// The advantage estimators rlft implements. In a TOML config:
/// `advantage = { kind = "grpo", scale = "batch" }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AdvantageEstimator {
    /// GRPO: (r − mean_group) / (std + ε) with the unbiased std, TRL semantics.
    Grpo {
        /// Which std divides. Default `group` (TRL `scale_rewards`).
        #[serde(default)]
        scale: RewardScale,
        /// Added to the std. Default 1e-4 (TRL); verl uses 1e-6, OpenRLHF 1e-9.
        #[serde(default = "default_trl_eps")]
        epsilon: f32,
    },
    /// Dr.GRPO and PreRL's A^pre: r − mean_group, no std division.
    #[serde(alias = "group_mean")]
    DrGrpo,
    /// RLOO: r_i minus the mean of the other completions of its group.
    Rloo,
    /// REINFORCE++: rewards whitened over the whole batch (verl `masked_whiten`: unbiased
    /// variance, (r − mean)/sqrt(var + ε)). Token-weighted when lengths are given, as verl is.
    ReinforcePlusPlus {
        /// Added to the variance. Default 1e-8 (verl `masked_whiten`).
        #[serde(default = "default_whiten_eps")]
        epsilon: f32,
    },
    /// REINFORCE++ with baseline: subtract the group mean, then whiten over the batch (verl
    /// `reinforce_plus_plus_baseline`).
    ReinforcePlusPlusBaseline {
        /// Added to the variance. Default 1e-8 (verl `masked_whiten`).
        #[serde(default = "default_whiten_eps")]
        epsilon: f32,
    },
    /// (r − batch mean) / (batch std + ε), unbiased std, no grouping: the last step of TRL's
    /// `multi_objective_aggregation = "normalize_then_sum"` (GDPO), applied to the rewards
    /// [`RewardTable::combine`] gives.
    BatchNormalize {
        /// Added to the std. Default 1e-4 (TRL).
        #[serde(default = "default_trl_eps")]
        epsilon: f32,
    },
    /// Positive-sample reinforcement (Zhu et al. 2025): A = 1 on correct samples; incorrect
    /// samples leave the batch.
    Psr {
        /// A reward ≥ this counts as correct. Default 1.0.
        #[serde(default = "default_threshold")]
        success_threshold: f32,
    },
    /// Negative-sample reinforcement: A = −1 on incorrect samples (all-wrong groups included);
    /// correct samples leave the batch.
    Nsr {
        /// A reward ≥ this counts as correct. Default 1.0.
        #[serde(default = "default_threshold")]
        success_threshold: f32,
    },
    /// W-REINFORCE: A = λ on correct samples, −1 on incorrect ones, no baseline.
    WReinforce {
        /// Weight of positive samples. Default 0.1 (Zhu et al.'s recommendation).
        #[serde(default = "default_lambda")]
        lambda: f32,
        /// A reward ≥ this counts as correct. Default 1.0.
        #[serde(default = "default_threshold")]
        success_threshold: f32,
    },
}

impl Default for AdvantageEstimator {
    fn default() -> Self {
        Self::Grpo {
            scale: RewardScale::Group,
            epsilon: default_trl_eps(),
        }
    }
}

impl AdvantageEstimator {
    /// Whether the estimator normalises within prompt groups (and so needs k ≥ 2).
    pub fn is_group_relative(&self) -> bool {
        matches!(
            self,
            Self::Grpo { .. } | Self::DrGrpo | Self::Rloo | Self::ReinforcePlusPlusBaseline { .. }
        )
    }

    /// Advantages for `rewards`, grouped in consecutive runs of `group_size`.
    ///
    /// # Errors
    /// [`CoreError::EmptyBatch`], [`CoreError::RaggedGroups`], [`CoreError::GroupTooSmall`]
    /// (group-relative estimators with k < 2), [`CoreError::NonFiniteReward`] for ±∞, and
    /// [`CoreError::Config`] for a negative or non-finite ε or λ.
    pub fn compute(&self, rewards: &[f32], group_size: usize) -> Result<Advantages> {
        self.compute_with_lengths(rewards, group_size, None)
    }

    /// As [`compute`](Self::compute), with completion lengths in tokens. Only the REINFORCE++
    /// estimators use them (verl whitens over tokens, so long completions weigh more).
    ///
    /// # Errors
    /// As [`compute`](Self::compute), plus [`CoreError::ShapeMismatch`] when `lengths` has the
    /// wrong length.
    pub fn compute_with_lengths(
        &self,
        rewards: &[f32],
        group_size: usize,
        lengths: Option<&[usize]>,
    ) -> Result<Advantages> {
        if rewards.is_empty() {
            return Err(CoreError::EmptyBatch { what: "rewards" });
        }
        if self.is_group_relative() && group_size < 2 {
            return Err(CoreError::GroupTooSmall { group_size });
        }
        let groups = GroupIndex::consecutive(rewards.len(), group_size)?;
        self.compute_groups(rewards, &groups, lengths, SingletonGroups::Error)
    }

    /// Advantages for `rewards` grouped by `groups` (consecutive runs, sizes, or verl-style uids),
    /// with `singletons` deciding what a group of one gets. Estimators that are not group-relative
    /// ignore the grouping.
    ///
    /// ```
    /// use rlft_core::{AdvantageEstimator, GroupIndex, RewardScale, SingletonGroups};
    ///
    /// let verl = AdvantageEstimator::Grpo { scale: RewardScale::Group, epsilon: 1e-6 };
    /// let groups = GroupIndex::from_uids(&[7, 9, 7, 3]); // {0, 2}, {1}, {3}
    /// let a = verl.compute_groups(&[1.0, 0.5, 0.0, 2.0], &groups, None, SingletonGroups::Verl)?;
    /// assert!((a.values[0] - 0.7071).abs() < 1e-4 && (a.values[2] + 0.7071).abs() < 1e-4);
    /// assert!((a.values[1] - 0.5).abs() < 1e-6); // a singleton: mean 0, std 1
    /// // TRL-style configs reject the singleton.
    /// assert!(verl.compute_groups(&[1.0, 0.5, 0.0, 2.0], &groups, None, SingletonGroups::Error).is_err());
    /// # Ok::<(), rlft_core::CoreError>(())
    /// ```
    ///
    /// # Errors
    /// [`CoreError::EmptyBatch`]; [`CoreError::ShapeMismatch`] when `groups` or `lengths` cover
    /// a different number of rows; [`CoreError::GroupTooSmall`] for an empty group, or a group
    /// of one under [`SingletonGroups::Error`] (group-relative estimators);
    /// [`CoreError::NonFiniteReward`] for ±∞; [`CoreError::Config`] for a bad parameter.
    pub fn compute_groups(
        &self,
        rewards: &[f32],
        groups: &GroupIndex,
        lengths: Option<&[usize]>,
        singletons: SingletonGroups,
    ) -> Result<Advantages> {
        self.validate()?;
        if rewards.is_empty() {
            return Err(CoreError::EmptyBatch { what: "rewards" });
        }
        for (what, len) in [
            ("groups", Some(groups.rows())),
            ("lengths", lengths.map(<[usize]>::len)),
        ] {
            if let Some(len) = len
                && len != rewards.len()
            {
                return Err(CoreError::ShapeMismatch {
                    what,
                    expected: vec![rewards.len()],
                    found: vec![len],
                });
            }
        }
        if self.is_group_relative() {
            groups.check_sizes(singletons)?;
        }
        if let Some((index, &value)) = rewards.iter().enumerate().find(|(_, r)| r.is_infinite()) {
            return Err(CoreError::NonFiniteReward { index, value });
        }
        let out = match *self {
            Self::Grpo { scale, epsilon } => {
                grpo::grpo(rewards, groups, singletons, scale, epsilon)
            }
            Self::DrGrpo => grpo::grpo(rewards, groups, singletons, RewardScale::None, 0.0),
            Self::Rloo => rloo::rloo(rewards, groups, singletons),
            Self::ReinforcePlusPlus { epsilon } => reinforce_pp::whiten(
                rewards.iter().map(|&r| r as f64).collect(),
                lengths,
                epsilon,
            ),
            Self::ReinforcePlusPlusBaseline { epsilon } => {
                let centred = grpo::centre(rewards, groups, singletons);
                reinforce_pp::whiten(centred, lengths, epsilon)
            }
            Self::BatchNormalize { epsilon } => multi_reward::batch_normalize(rewards, epsilon),
            Self::Psr { success_threshold } => {
                sign_weights::sign_weights(rewards, success_threshold, Some(1.0), None)
            }
            Self::Nsr { success_threshold } => {
                sign_weights::sign_weights(rewards, success_threshold, None, Some(-1.0))
            }
            Self::WReinforce {
                lambda,
                success_threshold,
            } => sign_weights::sign_weights(rewards, success_threshold, Some(lambda), Some(-1.0)),
        };
        Ok(out)
    }

    /// Checks the estimator's parameters.
    ///
    /// # Errors
    /// [`CoreError::Config`] naming the bad field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, v: f32| -> Result<()> {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(CoreError::Config {
                    field,
                    reason: format!("must be finite and ≥ 0, got {v}"),
                })
            }
        };
        match *self {
            Self::Grpo { epsilon, .. } | Self::BatchNormalize { epsilon } => {
                bad("advantage.epsilon", epsilon)
            }
            Self::ReinforcePlusPlus { epsilon } | Self::ReinforcePlusPlusBaseline { epsilon } => {
                bad("advantage.epsilon", epsilon)
            }
            Self::WReinforce {
                lambda,
                success_threshold,
            } => {
                bad("advantage.lambda", lambda)?;
                finite("advantage.success_threshold", success_threshold)
            }
            Self::Psr { success_threshold } | Self::Nsr { success_threshold } => {
                finite("advantage.success_threshold", success_threshold)
            }
            Self::DrGrpo | Self::Rloo => Ok(()),
        }
    }
}

fn finite(field: &'static str, v: f32) -> Result<()> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(CoreError::Config {
            field,
            reason: format!("must be finite, got {v}"),
        })
    }
}

/// Mean of the non-NaN values, with their count (NaN mean when there are none).
pub(crate) fn nan_mean(xs: impl Iterator<Item = f64>) -> (f64, usize) {
    let (mut s, mut n) = (0.0, 0usize);
    for x in xs.filter(|x| !x.is_nan()) {
        s += x;
        n += 1;
    }
    (if n == 0 { f64::NAN } else { s / n as f64 }, n)
}

/// Unbiased std of the non-NaN values (TRL `nanstd`): NaN for fewer than two values.
pub(crate) fn nan_std(xs: &[f64]) -> f64 {
    let (m, n) = nan_mean(xs.iter().copied());
    if n < 2 {
        return f64::NAN;
    }
    let ss: f64 = xs
        .iter()
        .filter(|x| !x.is_nan())
        .map(|x| (x - m).powi(2))
        .sum();
    (ss / (n as f64 - 1.0)).sqrt()
}

/// Rounds to f32 and maps NaN to 0 (TRL `nan_to_num`).
pub(crate) fn finish(values: impl Iterator<Item = f64>) -> Advantages {
    Advantages::all_kept(
        values
            .map(|a| if a.is_nan() { 0.0 } else { a as f32 })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grpo(scale: RewardScale) -> AdvantageEstimator {
        AdvantageEstimator::Grpo {
            scale,
            epsilon: 1e-4,
        }
    }

    #[test]
    fn trl_worked_examples() {
        // toolchain.md §4, checked with Python's statistics module.
        let a = grpo(RewardScale::Group)
            .compute(&[1.0, 0.0, 0.0, 1.0], 4)
            .unwrap();
        for (x, e) in a
            .values
            .iter()
            .zip([0.865875, -0.865875, -0.865875, 0.865875])
        {
            assert!((x - e).abs() < 1e-5, "{x} vs {e}");
        }
        let a = grpo(RewardScale::Group)
            .compute(&[1.0, 0.0, 0.0, 0.0], 4)
            .unwrap();
        for (x, e) in a.values.iter().zip([1.4997, -0.4999, -0.4999, -0.4999]) {
            assert!((x - e).abs() < 1e-4, "{x} vs {e}");
        }
    }

    #[test]
    fn rloo_is_leave_one_out() {
        let a = AdvantageEstimator::Rloo
            .compute(&[1.0, 0.0, 0.0, 2.0], 4)
            .unwrap();
        // r_0 - mean(0, 0, 2) = 1 - 2/3
        assert!((a.values[0] - (1.0 - 2.0 / 3.0)).abs() < 1e-6);
        assert!((a.values[3] - (2.0 - 1.0 / 3.0)).abs() < 1e-6);
    }

    #[test]
    fn sign_weights_subset_rows() {
        let r = [1.0, 0.0, f32::NAN, 1.0];
        let psr = AdvantageEstimator::Psr {
            success_threshold: 1.0,
        }
        .compute(&r, 4)
        .unwrap();
        assert_eq!(psr.values, vec![1.0, 0.0, 0.0, 1.0]);
        assert_eq!(psr.keep, vec![true, false, false, true]);
        let nsr = AdvantageEstimator::Nsr {
            success_threshold: 1.0,
        }
        .compute(&r, 4)
        .unwrap();
        assert_eq!(nsr.values, vec![0.0, -1.0, 0.0, 0.0]);
        assert_eq!(nsr.keep, vec![false, true, false, false]);
        let w = AdvantageEstimator::WReinforce {
            lambda: 0.1,
            success_threshold: 1.0,
        }
        .compute(&r, 4)
        .unwrap();
        assert_eq!(w.values, vec![0.1, -1.0, 0.0, 0.1]);
        assert_eq!(w.keep, vec![true, true, false, true]);
    }

    #[test]
    fn reinforce_pp_whitens_and_weights_tokens() {
        let est = AdvantageEstimator::ReinforcePlusPlus { epsilon: 0.0 };
        let a = est.compute(&[1.0, 0.0, 1.0, 0.0], 2).unwrap();
        let s: f32 = a.values.iter().sum();
        assert!(s.abs() < 1e-6);
        // unbiased var of [1,0,1,0] = 1/3 → (1 - 0.5)/sqrt(1/3)
        assert!((a.values[0] - 0.5 / (1.0f32 / 3.0).sqrt()).abs() < 1e-6);
        // Token weighting: the long completion pulls the mean toward its reward.
        let a = est
            .compute_with_lengths(&[1.0, 0.0], 2, Some(&[3, 1]))
            .unwrap();
        // mean = 0.75, var = (3·0.0625 + 0.5625)/4 · 4/3 = 0.25
        assert!((a.values[0] - 0.25 / 0.5).abs() < 1e-6);
        assert!((a.values[1] + 0.75 / 0.5).abs() < 1e-6);
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let e = grpo(RewardScale::Group);
        assert_eq!(
            e.compute(&[], 2),
            Err(CoreError::EmptyBatch { what: "rewards" })
        );
        assert_eq!(
            e.compute(&[1.0, 0.0], 1),
            Err(CoreError::GroupTooSmall { group_size: 1 })
        );
        assert_eq!(
            e.compute(&[1.0, 0.0, 1.0], 2),
            Err(CoreError::RaggedGroups {
                len: 3,
                group_size: 2
            })
        );
        assert!(matches!(
            e.compute(&[1.0, f32::INFINITY], 2),
            Err(CoreError::NonFiniteReward { index: 1, .. })
        ));
        let bad = AdvantageEstimator::Grpo {
            scale: RewardScale::Group,
            epsilon: -1.0,
        };
        assert!(matches!(
            bad.compute(&[1.0, 0.0], 2),
            Err(CoreError::Config {
                field: "advantage.epsilon",
                ..
            })
        ));
        // Non-group estimators accept k = 1.
        assert!(
            AdvantageEstimator::Nsr {
                success_threshold: 1.0
            }
            .compute(&[1.0, 0.0], 1)
            .is_ok()
        );
    }

    #[test]
    fn toml_style_config_parses() {
        let e: AdvantageEstimator =
            serde_json::from_str(r#"{"kind":"grpo","scale":"batch"}"#).unwrap();
        assert_eq!(
            e,
            AdvantageEstimator::Grpo {
                scale: RewardScale::Batch,
                epsilon: 1e-4
            }
        );
        let e: AdvantageEstimator = serde_json::from_str(r#"{"kind":"group_mean"}"#).unwrap();
        assert_eq!(e, AdvantageEstimator::DrGrpo);
        assert!(
            serde_json::from_str::<AdvantageEstimator>(r#"{"kind":"grpo","epsilom":1}"#).is_err()
        );
    }
}
