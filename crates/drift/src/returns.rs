//! The trajectory return of spec drift.md §2.2, from a row's stored per-turn fields.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{DriftError, Result};
use crate::row::DriftRow;

/// Settings of the return R = Σ_t γ^(t−1)·r_t + P_fmt − P_rep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReturnConfig {
    /// Turn discount γ. Default 0.9: DRIFT `scripts/run_weight_sft.sh` (argparse: 0.7).
    pub gamma: f64,
    /// Repetition penalty λ in P_rep = λ·(1 − U/N). Default 0.5: DRIFT `weight_sft.py`
    /// (a constant there).
    pub repetition_penalty: f64,
}

impl Default for ReturnConfig {
    fn default() -> Self {
        Self {
            gamma: 0.9,
            repetition_penalty: 0.5,
        }
    }
}

impl ReturnConfig {
    /// Checks that γ and λ are finite.
    ///
    /// # Errors
    /// [`DriftError::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        for (field, v) in [
            ("weights.gamma", self.gamma),
            ("weights.repetition_penalty", self.repetition_penalty),
        ] {
            if !v.is_finite() {
                return Err(DriftError::Config {
                    field,
                    reason: format!("must be finite, got {v}"),
                });
            }
        }
        Ok(())
    }

    /// The return of `row`: [`discounted_success`] + `format_penalty` −
    /// [`repetition_penalty`].
    pub fn of(&self, row: &DriftRow) -> f64 {
        discounted_success(&row.turn_rewards, self.gamma) + row.format_penalty
            - repetition_penalty(&row.answer_norms, self.repetition_penalty)
    }
}

/// Σ_t γ^(t−1)·r_t over the keys `t<digits>` of `turn_rewards`, t taken from the key (spec §7
/// item 5): absent turns count 0, a value that is not a JSON number counts 0 (DRIFT's code
/// would also read `"1"` or `"true"` as numbers; the spec does not), keys of any other form are
/// ignored, and so is `t0` (turns are numbered from 1) and a number too large for `u32`.
pub fn discounted_success(turn_rewards: &Map<String, Value>, gamma: f64) -> f64 {
    let mut turns: Vec<(u32, f64)> = turn_rewards
        .iter()
        .filter_map(|(k, v)| Some((turn_number(k)?, v.as_f64().unwrap_or(0.0))))
        .collect();
    turns.sort_by_key(|&(t, _)| t);
    turns
        .iter()
        .map(|&(t, r)| gamma.powi((t - 1) as i32) * r)
        .sum()
}

/// The turn number of a key `t<digits>` (≥ 1), else `None`.
pub fn turn_number(key: &str) -> Option<u32> {
    let digits = key.strip_prefix('t')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&t| t >= 1)
}

/// P_rep = λ·(1 − U/N) over the executed answers (N of them, U distinct); 0 when N = 0.
pub fn repetition_penalty(answer_norms: &[String], lambda: f64) -> f64 {
    if answer_norms.is_empty() {
        return 0.0;
    }
    let distinct: BTreeSet<&str> = answer_norms.iter().map(String::as_str).collect();
    lambda * (1.0 - distinct.len() as f64 / answer_norms.len() as f64)
}

/// Whether the row solved its problem: some `t<k>` reward is a number > 0 (what RFT keeps).
pub fn succeeded(row: &DriftRow) -> bool {
    row.turn_rewards
        .iter()
        .any(|(k, v)| turn_number(k).is_some() && v.as_f64().is_some_and(|r| r > 0.0))
}
