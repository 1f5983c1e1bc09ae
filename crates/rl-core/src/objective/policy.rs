//! The clipped policy-gradient objective of the GRPO family (GRPO, DAPO, Dr.GRPO, GSPO, verl's
//! PPO loss), with an optional KL penalty and entropy bonus.

use burn::tensor::{Bool, Tensor};
use serde::{Deserialize, Serialize};

use super::surrogate::{sapo_loss, vespo_weight};
use super::{
    KlEstimator, LossAggregation, Metrics, Objective, ObjectiveInput, ObjectiveOutput, Surrogate,
    kl_divergence, masked_mean,
};
use crate::batch::PolicyTensors;
use crate::error::{CoreError, Result};

/// Where the importance ratio is formed (TRL `importance_sampling_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportanceLevel {
    /// One ratio per token (GRPO, DAPO). Default.
    #[default]
    Token,
    /// One ratio per sequence, the exponential of the masked mean log-ratio (GSPO).
    Sequence,
}

/// Configuration of [`PolicyLoss`]. Defaults are TRL 1.16's `GRPOConfig` defaults; see
/// [`PolicyLossConfig::verl`] for verl's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyLossConfig {
    /// Lower clip range ε_low: ratios below 1 − ε_low are clipped. Default 0.2 (TRL `epsilon`).
    pub epsilon_low: f32,
    /// Upper clip range ε_high: ratios above 1 + ε_high are clipped. Default 0.2 (TRL
    /// `epsilon_high = None` falls back to `epsilon`); DAPO's clip-higher uses 0.28.
    pub epsilon_high: f32,
    /// Token- or sequence-level ratio. Default `token` (TRL).
    pub importance_level: ImportanceLevel,
    /// Optional cap δ on the unclipped ratio (TRL `delta`, two-sided clipping). Default none.
    pub delta: Option<f32>,
    /// Dual-clip constant c: for negative advantages the loss is capped at −A·c (verl
    /// `clip_ratio_c`, 3.0 there). Default none (TRL has no dual clip).
    pub dual_clip: Option<f32>,
    /// Clamp of the log-ratio to ±value before exponentiation (verl uses 20). Default none (TRL
    /// does not clamp).
    pub log_ratio_clamp: Option<f32>,
    /// How per-token losses become a scalar. Default `dapo` (TRL `loss_type` default).
    pub aggregation: LossAggregation,
    /// KL coefficient β. Default 0.0 (TRL `beta`), so no reference model is needed.
    pub beta: f32,
    /// KL estimator. Default `k3` (TRL).
    pub kl_estimator: KlEstimator,
    /// Multiply the KL estimate by the (undetached) importance ratio. Default true (TRL
    /// `use_bias_correction_kl`).
    pub kl_bias_correction: bool,
    /// Entropy bonus coefficient: the loss subtracts coef × masked mean entropy / GA. Default
    /// 0.0 (TRL `entropy_coef`).
    pub entropy_coef: f32,
    /// The per-token policy term: `clip` (default; PPO's clipped surrogate), or TRL 1.16's
    /// `cispo`, `sapo` or `vespo`. See [`Surrogate`].
    pub surrogate: Surrogate,
}

impl Default for PolicyLossConfig {
    fn default() -> Self {
        Self {
            epsilon_low: 0.2,
            epsilon_high: 0.2,
            importance_level: ImportanceLevel::Token,
            delta: None,
            dual_clip: None,
            log_ratio_clamp: None,
            aggregation: LossAggregation::Dapo,
            beta: 0.0,
            kl_estimator: KlEstimator::K3,
            kl_bias_correction: true,
            entropy_coef: 0.0,
            surrogate: Surrogate::Clip {},
        }
    }
}

impl PolicyLossConfig {
    /// verl 0.9.1's actor defaults: `token-mean`, clip 0.2, dual clip c = 3, log-ratio clamped
    /// to ±20, KL (when β is set) as `low_var_kl` without bias correction.
    pub fn verl() -> Self {
        Self {
            dual_clip: Some(3.0),
            log_ratio_clamp: Some(20.0),
            aggregation: LossAggregation::TokenMean,
            kl_estimator: KlEstimator::K3Clamped,
            kl_bias_correction: false,
            ..Self::default()
        }
    }

    /// TRL 1.16's `loss_type` as a surrogate and an aggregation, the other fields at TRL's
    /// defaults: `grpo`, `bnpo`, `dr_grpo` (with `max_completion_length`), `dapo`, `luspo`,
    /// `cispo` (= `cispo` surrogate + `dapo` aggregation), `sapo` (+ `grpo`), `vespo`
    /// (+ `dapo`).
    ///
    /// # Errors
    /// [`CoreError::Config`] for any other name.
    pub fn trl(loss_type: &str, max_completion_length: usize) -> Result<Self> {
        let (surrogate, aggregation) = match loss_type {
            "grpo" => (Surrogate::Clip {}, LossAggregation::Grpo),
            "bnpo" => (Surrogate::Clip {}, LossAggregation::Bnpo),
            "dr_grpo" => (
                Surrogate::Clip {},
                LossAggregation::DrGrpo {
                    max_completion_length,
                },
            ),
            "dapo" => (Surrogate::Clip {}, LossAggregation::Dapo),
            "luspo" => (Surrogate::Clip {}, LossAggregation::Luspo),
            "cispo" => (Surrogate::Cispo {}, LossAggregation::Dapo),
            "sapo" => (Surrogate::sapo(), LossAggregation::Grpo),
            "vespo" => (Surrogate::vespo(), LossAggregation::Dapo),
            other => {
                return Err(CoreError::Config {
                    field: "loss_type",
                    reason: format!(
                        "expected one of grpo, bnpo, dr_grpo, dapo, luspo, cispo, sapo, vespo, \
                         got {other:?}"
                    ),
                });
            }
        };
        Ok(Self {
            surrogate,
            aggregation,
            ..Self::default()
        })
    }

    /// Checks every field; the error names the field and says what was expected.
    ///
    /// # Errors
    /// [`CoreError::Config`].
    pub fn validate(&self) -> Result<()> {
        let err = |field, reason: String| Err(CoreError::Config { field, reason });
        if !(self.epsilon_low.is_finite() && (0.0..1.0).contains(&self.epsilon_low)) {
            return err(
                "epsilon_low",
                format!("must be in [0, 1), got {}", self.epsilon_low),
            );
        }
        if !(self.epsilon_high.is_finite() && self.epsilon_high >= 0.0) {
            return err(
                "epsilon_high",
                format!("must be finite and ≥ 0, got {}", self.epsilon_high),
            );
        }
        if let Some(d) = self.delta
            && !(d.is_finite() && d > 1.0)
        {
            return err("delta", format!("must be finite and > 1, got {d}"));
        }
        if let Some(c) = self.dual_clip
            && !(c.is_finite() && c > 1.0)
        {
            return err("dual_clip", format!("must be finite and > 1, got {c}"));
        }
        if let Some(c) = self.log_ratio_clamp
            && !(c.is_finite() && c > 0.0)
        {
            return err(
                "log_ratio_clamp",
                format!("must be finite and > 0, got {c}"),
            );
        }
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            return err("beta", format!("must be finite and ≥ 0, got {}", self.beta));
        }
        if !self.entropy_coef.is_finite() {
            return err(
                "entropy_coef",
                format!("must be finite, got {}", self.entropy_coef),
            );
        }
        if let LossAggregation::DrGrpo {
            max_completion_length: 0,
        } = self.aggregation
        {
            return err(
                "aggregation.max_completion_length",
                "must be ≥ 1, got 0".into(),
            );
        }
        if let LossAggregation::SeqMeanTokenSumNorm { horizon: Some(0) } = self.aggregation {
            return err("aggregation.horizon", "must be ≥ 1, got 0".into());
        }
        self.surrogate.validate()?;
        if !matches!(self.surrogate, Surrogate::Clip {}) {
            let name = self.surrogate.name();
            if let Some(d) = self.delta {
                return err(
                    "delta",
                    format!("the δ cap applies to surrogate clip only, got {d} with {name}"),
                );
            }
            if let Some(c) = self.dual_clip {
                return err(
                    "dual_clip",
                    format!("the dual clip applies to surrogate clip only, got {c} with {name}"),
                );
            }
        }
        if matches!(self.surrogate, Surrogate::Cispo {}) && self.epsilon_high <= 0.0 {
            return err(
                "epsilon_high",
                format!(
                    "cispo caps the ratio at epsilon_high, so it must be > 0 (ScaleRL uses 5.0), \
                     got {}",
                    self.epsilon_high
                ),
            );
        }
        Ok(())
    }

    /// Validates and builds the objective.
    ///
    /// # Errors
    /// [`CoreError::Config`] from [`validate`](Self::validate).
    pub fn init(self) -> Result<PolicyLoss> {
        self.validate()?;
        Ok(PolicyLoss { config: self })
    }
}

/// The clipped surrogate of the GRPO family. With ℓ the current and ℓ_old the sampling
/// log-probs, A the advantage and ρ the importance ratio (per token, or per sequence as
/// exp(Σ m·(ℓ − ℓ_old) / max(Σ m, 1))):
///
/// ```text
/// L_t = −min(min(ρ, δ)·A, clip(ρ, 1 − ε_low, 1 + ε_high)·A)      (δ optional; surrogate `clip`,
///                                                                 see [`Surrogate`] for the others)
/// L_t = min(L_t, −c·A) where A < 0                               (dual clip c, optional)
/// L_t += β · KL_t · ρ                                            (KL, ρ only with bias correction)
/// loss = aggregate(L, mask) − coef · mean_masked(entropy) / GA
/// ```
///
/// Metrics use TRL's names: `clip_ratio/low_mean`, `clip_ratio/high_mean`,
/// `clip_ratio/region_mean`, `clip_ratio/low_min`, `clip_ratio/high_max`, `kl` (when β > 0),
/// `entropy` (when given), plus `ratio_mean`, `policy_loss`, and verl's `pg_clipfrac`,
/// `ppo_kl` and, with dual clip, `pg_clipfrac_lower`. The clip fractions are reported for the
/// `clip` surrogate only; `cispo` reports TRL's `cispo_clip_ratio` and `vespo`
/// `vespo/phi_seq_mean`.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyLoss {
    config: PolicyLossConfig,
}

impl PolicyLoss {
    /// The validated configuration.
    pub fn config(&self) -> &PolicyLossConfig {
        &self.config
    }
}

/// Intermediate tensors of one forward pass, shared by the loss and the diagnostics.
struct Forward {
    per_token: Tensor<2>,
    kl: Option<Tensor<2>>,
    log_ratio: Tensor<2>,
    ratio: Tensor<2>,
    adv: Tensor<2>,
    clip: Option<ClipParts>,
    /// VESPO's per-row weight φ, `[B, 1]`.
    phi: Option<Tensor<2>>,
}

/// The clip surrogate's pieces, for TRL's and verl's clip metrics.
struct ClipParts {
    capped: Tensor<2>,
    surrogate: Tensor<2>,
    clipped_surrogate: Tensor<2>,
}

impl PolicyLoss {
    /// The per-token loss L_t before aggregation, `[B, T]` (masked tokens included, unmasked
    /// by the aggregation). Useful for diagnostics and tolerance scaling.
    ///
    /// # Errors
    /// As [`Objective::compute`].
    pub fn per_token_loss(&self, logps: Tensor<2>, batch: &PolicyTensors) -> Result<Tensor<2>> {
        Ok(self.forward(logps, batch)?.per_token)
    }

    fn forward(&self, logps: Tensor<2>, batch: &PolicyTensors) -> Result<Forward> {
        let cfg = &self.config;
        let [b, t] = logps.dims();
        batch.check(Some([b, t]))?;
        let mask = batch.mask.clone();
        let old = match &batch.old_logps {
            Some(old) => old.clone(),
            None => logps.clone().detach(),
        };
        // Masked positions are set to a neutral value before any non-linearity, so that a
        // padding log-prob of ±∞ cannot turn into ∞·0 = NaN (a trap in TRL, which multiplies
        // by the mask afterwards).
        let masked = mask.clone().equal_elem(0.0);
        let mut log_ratio = (logps.clone() - old).mask_fill(masked.clone(), 0.0);
        if let Some(c) = cfg.log_ratio_clamp {
            log_ratio = log_ratio.clamp(-c, c);
        }
        // [B, T] at token level, [B, 1] at sequence level.
        let log_w = match cfg.importance_level {
            ImportanceLevel::Token => log_ratio.clone(),
            ImportanceLevel::Sequence => {
                (log_ratio.clone() * mask.clone()).sum_dim(1)
                    / mask.clone().sum_dim(1).clamp_min(1.0)
            }
        };
        let w = log_w.dims()[1];
        let ratio = log_w.exp();
        let adv = batch
            .advantages
            .clone()
            .unsqueeze_dim::<2>(1)
            .expand([b, w]);
        let mut clip = None;
        let mut phi = None;
        // ℓ with masked positions neutralised, for the surrogates that multiply by it.
        let logps_active = || logps.clone().mask_fill(masked.clone(), 0.0);
        let mut per_token = match cfg.surrogate {
            Surrogate::Clip {} => {
                let clipped = ratio
                    .clone()
                    .clamp(1.0 - cfg.epsilon_low, 1.0 + cfg.epsilon_high);
                let capped = match cfg.delta {
                    Some(d) => ratio.clone().clamp_max(d),
                    None => ratio.clone(),
                };
                let surrogate = capped.clone() * adv.clone();
                let clipped_surrogate = clipped * adv.clone();
                let mut per_token = surrogate.clone().min_pair(clipped_surrogate.clone()).neg();
                if let Some(c) = cfg.dual_clip {
                    let floor = adv.clone().neg() * c;
                    let dual = per_token.clone().min_pair(floor);
                    per_token = per_token.mask_where(adv.clone().lower_elem(0.0), dual);
                }
                clip = Some(ClipParts {
                    capped,
                    surrogate,
                    clipped_surrogate,
                });
                per_token.expand([b, t])
            }
            Surrogate::Cispo {} => {
                let weight = ratio.clone().clamp_max(cfg.epsilon_high).detach();
                (weight * adv.clone()).expand([b, t]).neg() * logps_active()
            }
            Surrogate::Sapo {
                temperature_pos,
                temperature_neg,
            } => sapo_loss(ratio.clone(), adv.clone(), temperature_pos, temperature_neg)
                .expand([b, t]),
            Surrogate::Vespo {
                k_pos,
                lambda_pos,
                k_neg,
                lambda_neg,
            } => {
                let row_adv = batch.advantages.clone().unsqueeze_dim::<2>(1);
                let w = vespo_weight(
                    log_ratio.clone(),
                    mask.clone(),
                    row_adv.clone(),
                    (k_pos, lambda_pos, k_neg, lambda_neg),
                );
                phi = Some(w.clone());
                (w * row_adv).expand([b, t]).neg() * logps_active()
            }
        };
        let mut kl_out = None;
        if cfg.beta != 0.0 {
            let r = batch.ref_logps.clone().ok_or(CoreError::MissingInput {
                what: "ref_logps",
                reason: "the KL coefficient beta is non-zero",
            })?;
            let r = r.mask_where(masked.clone(), logps.clone().detach());
            let logps = logps.mask_where(masked, r.clone().detach());
            let mut kl = kl_divergence(logps, r, cfg.kl_estimator);
            if cfg.kl_bias_correction {
                kl = kl * ratio.clone().expand([b, t]);
            }
            per_token = per_token + kl.clone() * cfg.beta as f64;
            kl_out = Some(kl);
        }
        Ok(Forward {
            per_token,
            kl: kl_out,
            log_ratio,
            ratio,
            adv,
            clip,
            phi,
        })
    }
}

impl Objective for PolicyLoss {
    fn compute(&self, input: ObjectiveInput<'_>) -> Result<ObjectiveOutput> {
        let cfg = &self.config;
        let [b, t] = input.logps.dims();
        let entropy = match (&input.entropy, cfg.entropy_coef != 0.0) {
            (Some(h), _) => {
                check_dims("entropy", h.dims(), [b, t])?;
                Some(h.clone())
            }
            (None, true) => {
                return Err(CoreError::MissingInput {
                    what: "entropy",
                    reason: "entropy_coef is non-zero",
                });
            }
            (None, false) => None,
        };
        let f = self.forward(input.logps, input.batch)?;
        let mask = input.batch.mask.clone();
        let mut metrics = Metrics::default();
        if let Some(kl) = &f.kl {
            metrics.push("kl", masked_mean(kl.clone().detach(), mask.clone()));
        }
        let mut loss = cfg
            .aggregation
            .aggregate(f.per_token, mask.clone(), &input.scale);
        metrics.push("policy_loss", loss.clone().detach());
        if let Some(h) = entropy {
            let mean_h = masked_mean(h, mask.clone());
            metrics.push("entropy", mean_h.clone().detach());
            if cfg.entropy_coef != 0.0 {
                let ga = input.scale.grad_accum_steps.max(1) as f64;
                loss = loss - mean_h * (cfg.entropy_coef as f64 / ga);
            }
        }

        // Diagnostics, on detached tensors.
        let w = f.ratio.dims()[1];
        let (ratio, adv) = (f.ratio.detach(), f.adv.detach());
        let rows = RowStats::new(&mask, w);
        metrics.push("ratio_mean", rows.mean(ratio.clone()));
        metrics.push(
            "ppo_kl",
            masked_mean(f.log_ratio.detach().neg(), mask.clone()),
        );
        match cfg.surrogate {
            Surrogate::Cispo {} => {
                // TRL: ratio above the cap where A > 0.
                let capped = ratio
                    .greater_elem(cfg.epsilon_high)
                    .bool_and(adv.clone().greater_elem(0.0));
                metrics.push("cispo_clip_ratio", rows.mean(capped.float()));
            }
            Surrogate::Vespo { .. } => {
                if let Some(phi) = f.phi {
                    metrics.push("vespo/phi_seq_mean", phi.mean());
                }
            }
            Surrogate::Clip {} | Surrogate::Sapo { .. } => {}
        }
        if let Some(clip) = f.clip {
            clip_metrics(cfg, clip, adv, &mask, [b, t], &mut metrics);
        }
        Ok(ObjectiveOutput { loss, metrics })
    }
}

/// TRL's clip fractions (`clip_ratio/*`) and verl's (`pg_clipfrac`, `pg_clipfrac_lower`).
fn clip_metrics(
    cfg: &PolicyLossConfig,
    clip: ClipParts,
    adv: Tensor<2>,
    mask: &Tensor<2>,
    [b, t]: [usize; 2],
    metrics: &mut Metrics,
) {
    let capped = clip.capped.detach();
    let w = capped.dims()[1];
    let negative_adv = adv.clone().lower_elem(0.0);
    let low = capped
        .clone()
        .lower_elem(1.0 - cfg.epsilon_low)
        .bool_and(negative_adv.clone());
    let high = capped
        .greater_elem(1.0 + cfg.epsilon_high)
        .bool_and(adv.clone().greater_elem(0.0));
    let region = low.clone().bool_or(high.clone());
    let rows = RowStats::new(mask, w);
    metrics.push("clip_ratio/low_mean", rows.mean(low.clone().float()));
    metrics.push("clip_ratio/high_mean", rows.mean(high.clone().float()));
    metrics.push("clip_ratio/region_mean", rows.mean(region.float()));
    metrics.push("clip_ratio/low_min", rows.row_extreme(low.float(), false));
    metrics.push("clip_ratio/high_max", rows.row_extreme(high.float(), true));
    let s1 = clip.surrogate.detach().neg();
    let s2 = clip.clipped_surrogate.detach().neg();
    let token_rows = RowStats::new(mask, t);
    let clipfrac = s2.clone().greater(s1.clone()).float().expand([b, t]);
    metrics.push("pg_clipfrac", token_rows.mean(clipfrac));
    if let Some(c) = cfg.dual_clip {
        let l1 = s1.max_pair(s2);
        let lower = l1
            .greater(adv.neg() * c)
            .bool_and(negative_adv)
            .float()
            .expand([b, t]);
        metrics.push("pg_clipfrac_lower", token_rows.mean(lower));
    }
}

fn check_dims(what: &'static str, found: [usize; 2], expected: [usize; 2]) -> Result<()> {
    if found == expected {
        Ok(())
    } else {
        Err(CoreError::ShapeMismatch {
            what,
            expected: expected.to_vec(),
            found: found.to_vec(),
        })
    }
}

/// TRL's metric reductions for a quantity that is per token (`[B, T]`) or per sequence
/// (`[B, 1]`).
struct RowStats {
    mask: Tensor<2>,
    per_sequence: bool,
}

impl RowStats {
    fn new(mask: &Tensor<2>, width: usize) -> Self {
        Self {
            mask: mask.clone(),
            per_sequence: width == 1 && mask.dims()[1] != 1,
        }
    }

    /// TRL `global_masked_mean`: masked token mean, or the plain mean over all rows for
    /// per-sequence values.
    fn mean(&self, x: Tensor<2>) -> Tensor<1> {
        if self.per_sequence {
            x.mean()
        } else {
            masked_mean(x, self.mask.clone())
        }
    }

    /// TRL `nanmin` / `nanmax` over per-row masked means; rows without active tokens are
    /// skipped (±∞ here, read back as NaN when every row is skipped).
    fn row_extreme(&self, x: Tensor<2>, max: bool) -> Tensor<1> {
        let (per_row, empty): (Tensor<2>, Tensor<2, Bool>) = if self.per_sequence {
            let e = x.clone().lower_elem(f32::NEG_INFINITY);
            (x, e)
        } else {
            let count = self.mask.clone().sum_dim(1);
            let e = count.clone().equal_elem(0.0);
            ((x * self.mask.clone()).sum_dim(1) / count.clamp_min(1.0), e)
        };
        if max {
            per_row.mask_fill(empty, f32::NEG_INFINITY).max()
        } else {
            per_row.mask_fill(empty, f32::INFINITY).min()
        }
    }
}
