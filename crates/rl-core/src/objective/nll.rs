//! Weighted negative log-likelihood: SFT (all weights 1) and DRIFT's weighted SFT.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::{Metrics, Objective, ObjectiveInput, ObjectiveOutput, masked_mean};

/// How token NLLs are normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NllNormalization {
    /// ℓ_i = Σ_t m·(−log p) / max(M_i, 1) per example, then the batch term over examples
    /// (DRIFT `weight_sft.py`). Default.
    #[default]
    Sequence,
    /// Σ_i w_i Σ_t m·(−log p) / max(Σ M, 1): the usual SFT token mean, weighted per example.
    Token,
}

/// Weighted token NLL. The per-example weight is read from the batch's per-row `advantages`
/// slot (an advantage-weighted regression: DRIFT's weight exp(R/β)/Z, or 1 for plain SFT).
///
/// ```text
/// sequence: L = mean_i(w_i · ℓ_i)            or, normalised, Σ_i w_i ℓ_i / Σ_i w_i
/// token:    L = Σ_i w_i Σ_t m_it·(−ℓ_it) / max(Σ m, 1)
/// ```
/// and L is divided by the accumulation steps. Metrics: `nll` (unweighted masked token mean)
/// and `weight_mean`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WeightedNll {
    /// Normalisation. Default `sequence` (DRIFT).
    pub normalization: NllNormalization,
    /// Divide by the sum of the batch's weights instead of the number of examples (DRIFT
    /// `BATCH_WEIGHT_NORMAL`; sequence normalisation only). Default false.
    pub normalize_weights: bool,
}

impl Objective for WeightedNll {
    fn compute(&self, input: ObjectiveInput<'_>) -> crate::Result<ObjectiveOutput> {
        let [b, t] = input.logps.dims();
        input.batch.check(Some([b, t]))?;
        let mask = input.batch.mask.clone();
        let w = input.batch.advantages.clone();
        // Fill masked positions first so a padding log-prob of −∞ cannot become ∞·0 = NaN.
        let nll = input
            .logps
            .mask_fill(mask.clone().equal_elem(0.0), 0.0)
            .neg()
            * mask.clone();
        let ga = input.scale.grad_accum_steps.max(1) as f64;
        let mut metrics = Metrics::default();
        metrics.push("nll", masked_mean(nll.clone().detach(), mask.clone()));
        metrics.push("weight_mean", w.clone().mean());
        let loss = match self.normalization {
            NllNormalization::Sequence => {
                let per_ex: Tensor<1> =
                    (nll.sum_dim(1) / mask.sum_dim(1).clamp_min(1.0)).squeeze_dim::<1>(1);
                let weighted = (per_ex * w.clone()).sum();
                if self.normalize_weights {
                    weighted / w.sum()
                } else {
                    weighted / b as f64
                }
            }
            NllNormalization::Token => {
                let num = (nll * w.unsqueeze_dim::<2>(1).expand([b, t])).sum();
                num / mask.sum().clamp_min(1.0)
            }
        } / ga;
        Ok(ObjectiveOutput { loss, metrics })
    }
}
