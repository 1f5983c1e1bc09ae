//! Per-prompt importance weights w = K·softmax(R/β) (spec drift.md §1, §2.2, §7).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{DriftError, Result};
use crate::returns::{ReturnConfig, succeeded};
use crate::row::DriftRow;

/// The constant DRIFT adds to the group mean of exp(R/β − max) (`weight_sft.py`).
pub const NORMALISER_EPS: f64 = 1e-12;

/// How rows are weighted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightMode {
    /// DRIFT: w = K·softmax(R/β) within each prompt's group; β = ∞ gives uniform weights
    /// (plain SFT on every reference sample). Default.
    #[default]
    Drift,
    /// Rejection-sampling fine-tuning: weight 1 on trajectories that solved the problem
    /// (some turn reward > 0), 0 otherwise; all-fail prompts drop out. A different method
    /// than DRIFT's β → 0 limit (spec §7 item 3), kept as a baseline.
    Rft,
}

/// When rows that cannot be trained on (no assistant message, or an empty last one) are
/// dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterOrder {
    /// Weights are computed on every row, then such rows are dropped, so their group's
    /// weights no longer sum to K. DRIFT's `weight_sft.py` does this. Default.
    #[default]
    AfterWeighting,
    /// Such rows are dropped first, so every group's kept weights sum to its size.
    BeforeWeighting,
}

/// Everything that turns rows into weights.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WeightConfig {
    /// KL strength and softmax temperature β; `inf` for uniform weights. Default 0.1: DRIFT
    /// `scripts/run_weight_sft.sh` (argparse: 0.2).
    pub beta: f64,
    /// Turn discount γ of the return. Default 0.9: DRIFT `scripts/run_weight_sft.sh`
    /// (argparse: 0.7).
    pub gamma: f64,
    /// Repetition penalty λ of the return. Default 0.5: DRIFT `weight_sft.py` (a constant).
    pub repetition_penalty: f64,
    /// DRIFT or RFT. Default DRIFT.
    pub mode: WeightMode,
    /// Whether unusable rows are dropped before or after weighting. Default after (DRIFT).
    pub filter: FilterOrder,
}

impl Default for WeightConfig {
    fn default() -> Self {
        Self {
            beta: 0.1,
            gamma: ReturnConfig::default().gamma,
            repetition_penalty: ReturnConfig::default().repetition_penalty,
            mode: WeightMode::Drift,
            filter: FilterOrder::AfterWeighting,
        }
    }
}

impl WeightConfig {
    /// Checks β > 0 (∞ allowed, NaN not) and the return's settings.
    ///
    /// # Errors
    /// [`DriftError::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        check_beta(self.beta)?;
        self.returns().validate()
    }

    /// The return's settings.
    pub fn returns(&self) -> ReturnConfig {
        ReturnConfig {
            gamma: self.gamma,
            repetition_penalty: self.repetition_penalty,
        }
    }
}

fn check_beta(beta: f64) -> Result<()> {
    if beta.is_nan() || beta <= 0.0 {
        return Err(DriftError::Config {
            field: "weights.beta",
            reason: format!("must be > 0 (inf for uniform weights), got {beta}"),
        });
    }
    Ok(())
}

/// DRIFT's weights of one prompt group with returns `returns`:
/// s_i = R_i/β, e_i = exp(s_i − max_j s_j), w_i = e_i / ((1/K)·Σ_j e_j + 1e-12), so
/// Σ w = K and w ≈ K·softmax(R/β). β = ∞ gives all 1. An empty group gives no weights.
///
/// ```
/// let w = rlft_drift::group_weights(&[1.0, 0.9, 0.0], 1.0)?;
/// assert!((w.iter().sum::<f64>() - 3.0).abs() < 1e-9);
/// assert!(w[0] > w[1] && w[1] > w[2]);
/// # Ok::<(), rlft_drift::DriftError>(())
/// ```
///
/// # Errors
/// [`DriftError::Config`] for β ≤ 0 or NaN, or a non-finite return.
pub fn group_weights(returns: &[f64], beta: f64) -> Result<Vec<f64>> {
    check_beta(beta)?;
    if let Some(r) = returns.iter().find(|r| !r.is_finite()) {
        return Err(DriftError::Config {
            field: "weights.returns",
            reason: format!("every return must be finite, got {r}"),
        });
    }
    if beta.is_infinite() {
        return Ok(vec![1.0; returns.len()]);
    }
    let s: Vec<f64> = returns.iter().map(|r| r / beta).collect();
    let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
    let z = e.iter().sum::<f64>() / e.len().max(1) as f64 + NORMALISER_EPS;
    Ok(e.iter().map(|x| x / z).collect())
}

/// One row's place in training: its index in the input, its return and its weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weighted {
    /// Index of the row in the slice given to [`weigh`].
    pub row: usize,
    /// Its return R.
    pub ret: f64,
    /// Its weight.
    pub weight: f64,
}

/// Weights every row of `rows` per `cfg`, grouping by `prompt_id` across the whole slice
/// (weights are computed on the whole file, as DRIFT does before its eval split). Returns the
/// rows to train on, in input order: rows that cannot be trained on are dropped (before or
/// after weighting, per [`FilterOrder`]), and in RFT mode so are rows of weight 0.
///
/// # Errors
/// [`DriftError::Config`] for invalid settings.
pub fn weigh(rows: &[DriftRow], cfg: &WeightConfig) -> Result<Vec<Weighted>> {
    cfg.validate()?;
    let considered: Vec<usize> = (0..rows.len())
        .filter(|&i| cfg.filter == FilterOrder::AfterWeighting || rows[i].trainable())
        .collect();
    let returns = cfg.returns();
    let rets: Vec<f64> = rows.iter().map(|r| returns.of(r)).collect();
    let mut weight = vec![0.0; rows.len()];
    match cfg.mode {
        WeightMode::Rft => {
            for &i in &considered {
                weight[i] = f64::from(u8::from(succeeded(&rows[i])));
            }
        }
        WeightMode::Drift => {
            let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
            for &i in &considered {
                groups
                    .entry(rows[i].prompt_id.as_str())
                    .or_default()
                    .push(i);
            }
            for members in groups.values() {
                let r: Vec<f64> = members.iter().map(|&i| rets[i]).collect();
                for (&i, w) in members.iter().zip(group_weights(&r, cfg.beta)?) {
                    weight[i] = w;
                }
            }
        }
    }
    Ok(considered
        .into_iter()
        .filter(|&i| rows[i].trainable())
        .filter(|&i| cfg.mode == WeightMode::Drift || weight[i] > 0.0)
        .map(|i| Weighted {
            row: i,
            ret: rets[i],
            weight: weight[i],
        })
        .collect())
}
