//! The per-token policy-gradient term of [`PolicyLoss`](super::PolicyLoss): PPO's hard clip
//! (GRPO, DAPO, GSPO, verl), or one of TRL 1.16's other loss types (CISPO, SAPO, VESPO).

use burn::tensor::{Tensor, activation::sigmoid};
use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};

fn default_sapo_pos() -> f32 {
    1.0
}
fn default_sapo_neg() -> f32 {
    1.05
}
fn default_vespo_k_pos() -> f32 {
    2.0
}
fn default_vespo_lambda_pos() -> f32 {
    3.0
}
fn default_vespo_k_neg() -> f32 {
    3.0
}
fn default_vespo_lambda_neg() -> f32 {
    2.0
}

/// What multiplies the advantage in the per-token loss. With ρ the importance ratio (per token,
/// or per sequence at `importance_level = "sequence"`), A the advantage and ℓ the current
/// log-prob:
///
/// | `kind` | L_t | TRL 1.16 `loss_type` |
/// |---|---|---|
/// | `clip` (default) | −min(min(ρ, δ)·A, clip(ρ, 1 − ε_low, 1 + ε_high)·A) | `grpo`, `bnpo`, `dr_grpo`, `dapo`, `luspo` |
/// | `cispo` | −sg(min(ρ, ε_high))·A·ℓ | `cispo` (with the `dapo` aggregation) |
/// | `sapo` | −σ(τ·(ρ − 1))·4/τ·A, τ = τ_pos if A > 0 else τ_neg | `sapo` (with the `grpo` aggregation) |
/// | `vespo` | −sg(φ(w))·A·ℓ, φ(w) = e^λ·w^k·e^(−λw) | `vespo` (with the `dapo` aggregation) |
///
/// sg is stop-gradient. For `cispo`, ε_high is the absolute cap on ρ (TRL reuses
/// `epsilon_high`; the ScaleRL paper recommends 5.0), not 1 + ε_high. For `vespo`, w is the
/// sequence ratio exp(Σ_t m·clamp(ℓ − ℓ_old, ±20)) clamped to [1e-8, e^20] whatever the
/// importance level, k and λ are chosen by the sign of A (A ≥ 0: `k_pos`, `lambda_pos`), and a
/// non-finite φ counts as 0, as in TRL's `get_gamma_weights`.
///
/// The loss type's aggregation is not implied: set `aggregation` to TRL's (`dapo` for
/// `cispo` and `vespo`, `grpo` for `sapo`); [`PolicyLossConfig::trl`](super::PolicyLossConfig::trl)
/// does this from a TRL `loss_type` name.
///
/// In a TOML config: `surrogate = { kind = "sapo", temperature_neg = 1.05 }`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Surrogate {
    /// PPO's clipped surrogate, with the optional δ cap and dual clip. Default.
    Clip {},
    /// CISPO (MiniMax-M1): the ratio capped at ε_high and detached, times A times ℓ.
    Cispo {},
    /// SAPO: a sigmoid-gated soft clip.
    Sapo {
        /// τ for tokens with A > 0. Default 1.0 (TRL `sapo_temperature_pos`).
        #[serde(default = "default_sapo_pos")]
        temperature_pos: f32,
        /// τ for tokens with A ≤ 0. Default 1.05 (TRL `sapo_temperature_neg`).
        #[serde(default = "default_sapo_neg")]
        temperature_neg: f32,
    },
    /// VESPO: a detached Gamma weight of the sequence ratio, times A times ℓ.
    Vespo {
        /// Power k for A ≥ 0. Default 2.0 (TRL `vespo_k_pos`).
        #[serde(default = "default_vespo_k_pos")]
        k_pos: f32,
        /// Decay λ for A ≥ 0. Default 3.0 (TRL `vespo_lambda_pos`).
        #[serde(default = "default_vespo_lambda_pos")]
        lambda_pos: f32,
        /// Power k for A < 0. Default 3.0 (TRL `vespo_k_neg`).
        #[serde(default = "default_vespo_k_neg")]
        k_neg: f32,
        /// Decay λ for A < 0. Default 2.0 (TRL `vespo_lambda_neg`).
        #[serde(default = "default_vespo_lambda_neg")]
        lambda_neg: f32,
    },
}

impl Default for Surrogate {
    fn default() -> Self {
        Self::Clip {}
    }
}

impl Surrogate {
    /// TRL's default SAPO temperatures.
    pub fn sapo() -> Self {
        Self::Sapo {
            temperature_pos: default_sapo_pos(),
            temperature_neg: default_sapo_neg(),
        }
    }

    /// TRL's default VESPO parameters.
    pub fn vespo() -> Self {
        Self::Vespo {
            k_pos: default_vespo_k_pos(),
            lambda_pos: default_vespo_lambda_pos(),
            k_neg: default_vespo_k_neg(),
            lambda_neg: default_vespo_lambda_neg(),
        }
    }

    /// The name TRL's metrics and this crate's docs use.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Clip {} => "clip",
            Self::Cispo {} => "cispo",
            Self::Sapo { .. } => "sapo",
            Self::Vespo { .. } => "vespo",
        }
    }

    pub(super) fn validate(&self) -> Result<()> {
        let positive = |field, v: f32| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(CoreError::Config {
                    field,
                    reason: format!("must be finite and > 0, got {v}"),
                })
            }
        };
        let finite = |field, v: f32| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(CoreError::Config {
                    field,
                    reason: format!("must be finite, got {v}"),
                })
            }
        };
        match *self {
            Self::Clip {} | Self::Cispo {} => Ok(()),
            Self::Sapo {
                temperature_pos,
                temperature_neg,
            } => {
                positive("surrogate.temperature_pos", temperature_pos)?;
                positive("surrogate.temperature_neg", temperature_neg)
            }
            Self::Vespo {
                k_pos,
                lambda_pos,
                k_neg,
                lambda_neg,
            } => {
                finite("surrogate.k_pos", k_pos)?;
                finite("surrogate.k_neg", k_neg)?;
                positive("surrogate.lambda_pos", lambda_pos)?;
                positive("surrogate.lambda_neg", lambda_neg)
            }
        }
    }
}

/// SAPO's soft gate σ(τ·(ρ − 1))·4/τ times A, negated; `ratio` and `adv` of one shape.
pub(super) fn sapo_loss(ratio: Tensor<2>, adv: Tensor<2>, pos: f32, neg: f32) -> Tensor<2> {
    let positive = adv.clone().greater_elem(0.0);
    let tau = adv.zeros_like().add_scalar(neg).mask_fill(positive, pos);
    let gate = sigmoid((ratio - 1.0) * tau.clone()) * 4.0 / tau;
    (gate * adv).neg()
}

/// VESPO's Gamma weight φ(w) per row, `[B, 1]`, without gradient. `log_ratio` is the per-token
/// ℓ − ℓ_old (`[B, T]`, 0 where masked), `adv` the per-row advantages `[B, 1]`.
pub(super) fn vespo_weight(
    log_ratio: Tensor<2>,
    mask: Tensor<2>,
    adv: Tensor<2>,
    (k_pos, lambda_pos, k_neg, lambda_neg): (f32, f32, f32, f32),
) -> Tensor<2> {
    let lower = 1e-8f64.ln();
    let seq = (log_ratio.detach().clamp(-20.0, 20.0) * mask).sum_dim(1);
    let log_w = seq.clamp(lower, 20.0);
    let w = log_w.clone().exp();
    let nonneg = adv.greater_equal_elem(0.0);
    let k = log_w
        .zeros_like()
        .add_scalar(k_neg)
        .mask_fill(nonneg.clone(), k_pos);
    let lambda = log_w
        .zeros_like()
        .add_scalar(lambda_neg.max(1e-4))
        .mask_fill(nonneg, lambda_pos.max(1e-4));
    let log_phi = lambda.clone() + k * log_w - lambda * w;
    let phi = log_phi.exp();
    let bad = phi.clone().is_nan().bool_or(phi.clone().is_inf());
    phi.mask_fill(bad, 0.0).detach()
}

#[cfg(test)]
mod tests {
    use crate::{CoreError, PolicyLossConfig, Surrogate};

    fn field(cfg: PolicyLossConfig) -> &'static str {
        match cfg.validate() {
            Err(CoreError::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn bad_surrogate_settings_name_the_field() {
        let base = PolicyLossConfig::default;
        let sapo = |pos, neg| PolicyLossConfig {
            surrogate: Surrogate::Sapo {
                temperature_pos: pos,
                temperature_neg: neg,
            },
            ..base()
        };
        assert_eq!(field(sapo(0.0, 1.0)), "surrogate.temperature_pos");
        assert_eq!(field(sapo(1.0, f32::NAN)), "surrogate.temperature_neg");
        let mut vespo = PolicyLossConfig::trl("vespo", 16).unwrap();
        if let Surrogate::Vespo { lambda_neg, .. } = &mut vespo.surrogate {
            *lambda_neg = -1.0;
        }
        assert_eq!(field(vespo), "surrogate.lambda_neg");
        let cispo = PolicyLossConfig {
            epsilon_high: 0.0,
            ..PolicyLossConfig::trl("cispo", 16).unwrap()
        };
        assert_eq!(field(cispo), "epsilon_high");
        let delta = PolicyLossConfig {
            delta: Some(2.0),
            ..PolicyLossConfig::trl("sapo", 16).unwrap()
        };
        assert_eq!(field(delta), "delta");
        let dual = PolicyLossConfig {
            dual_clip: Some(3.0),
            ..PolicyLossConfig::trl("cispo", 16).unwrap()
        };
        assert_eq!(field(dual), "dual_clip");
        assert!(PolicyLossConfig::trl("ppo", 16).is_err());
    }

    #[test]
    fn toml_style_surrogates_parse_with_trl_defaults() {
        let s: Surrogate = serde_json::from_str(r#"{"kind":"sapo"}"#).unwrap();
        assert_eq!(s, Surrogate::sapo());
        let s: Surrogate = serde_json::from_str(r#"{"kind":"vespo","k_pos":1.5}"#).unwrap();
        assert!(
            matches!(s, Surrogate::Vespo { k_pos, lambda_pos, .. } if k_pos == 1.5 && lambda_pos == 3.0)
        );
        assert!(serde_json::from_str::<Surrogate>(r#"{"kind":"cispo","cap":5}"#).is_err());
    }
}
