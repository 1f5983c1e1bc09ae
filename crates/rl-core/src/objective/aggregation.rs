//! Turning a per-token loss matrix into the scalar that is backpropagated.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::LossScale;

/// How per-token losses are reduced to one scalar. Notation: S_i = Σ_t m_it·L_it, M_i = Σ_t m_it,
/// B = rows of the micro-batch, GA = [`LossScale::grad_accum_steps`].
///
/// In a TOML config: `aggregation = { kind = "dr_grpo", max_completion_length = 1024 }`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LossAggregation {
    /// TRL `grpo`: mean_i(S_i / max(M_i, 1)) / GA. Fully masked rows count in the mean.
    Grpo,
    /// TRL `bnpo`: Σ S_i / max(Σ M_i, 1) / GA over the micro-batch.
    Bnpo,
    /// TRL `dr_grpo`: Σ S_i / (B · max_completion_length) / GA, with the configured length,
    /// not the padded one.
    DrGrpo {
        /// TRL `max_completion_length`. Default 256 (TRL `GRPOConfig`).
        #[serde(default = "default_max_len")]
        max_completion_length: usize,
    },
    /// TRL `dapo` (TRL's default): Σ S_i / N with N = [`LossScale::token_normalizer`]
    /// (the generation batch's active tokens per accumulation window), or the micro-batch's own
    /// count clamped to ≥ 1 when not given.
    #[default]
    Dapo,
    /// TRL `luspo`: mean_i(S_i) / GA.
    Luspo,
    /// verl `token-mean` (verl's default): Σ S_i / N, N = the token normaliser or the
    /// micro-batch's active tokens. Same formula as `dapo`; kept as its own name so verl configs
    /// read as they do in verl.
    TokenMean,
    /// verl `token-sum`: Σ S_i.
    TokenSum,
    /// verl `seq-mean-token-mean`: Σ_i S_i/(M_i + 1e-8) over non-empty rows, divided by the
    /// sequence normaliser or the number of non-empty rows.
    SeqMeanTokenMean,
    /// verl `seq-mean-token-sum`: Σ_i S_i over non-empty rows, divided as above.
    SeqMeanTokenSum,
    /// verl `seq-mean-token-sum-norm`: `seq-mean-token-sum` divided by a horizon (verl
    /// `loss_scale_factor`; default: the padded length T).
    SeqMeanTokenSumNorm {
        /// Constant horizon; `None` uses the padded completion length.
        #[serde(default)]
        horizon: Option<usize>,
    },
}

fn default_max_len() -> usize {
    256
}

impl LossAggregation {
    /// Reduces `per_token` (`[B, T]`) under `mask` (`[B, T]`) to a one-element tensor.
    ///
    /// Where verl would divide by zero (a micro-batch with no active token or no non-empty
    /// row) the denominator is clamped to 1 and the loss is 0 instead of NaN.
    ///
    /// # Panics
    /// If the two tensors differ in shape (a programming error; objectives check shapes first).
    pub fn aggregate(&self, per_token: Tensor<2>, mask: Tensor<2>, scale: &LossScale) -> Tensor<1> {
        assert_eq!(
            per_token.dims(),
            mask.dims(),
            "per-token loss and mask shapes"
        );
        let [b, t] = mask.dims();
        let ga = scale.grad_accum_steps.max(1) as f64;
        let masked = per_token * mask.clone();
        let tokens = || match scale.token_normalizer {
            Some(n) => Tensor::<1>::from_floats([n.max(1.0)], &mask.device()),
            None => mask.clone().sum().clamp_min(1.0),
        };
        let seq_mean = |row_values: Tensor<2>| {
            let nonempty = mask.clone().sum_dim(1).greater_elem(0.0).float();
            let num = (row_values * nonempty.clone()).sum();
            match scale.sequence_normalizer {
                Some(n) => num / n.max(1.0) as f64,
                None => num / nonempty.sum().clamp_min(1.0),
            }
        };
        match self {
            Self::Grpo => {
                let rows = masked.sum_dim(1) / mask.clone().sum_dim(1).clamp_min(1.0);
                rows.mean() / ga
            }
            Self::Bnpo => masked.sum() / mask.clone().sum().clamp_min(1.0) / ga,
            Self::DrGrpo {
                max_completion_length,
            } => masked.sum() / (b * max_completion_length.max(&1)) as f64 / ga,
            Self::Dapo | Self::TokenMean => masked.sum() / tokens(),
            Self::Luspo => masked.sum_dim(1).mean() / ga,
            Self::TokenSum => masked.sum(),
            Self::SeqMeanTokenMean => {
                let rows = masked.sum_dim(1) / (mask.clone().sum_dim(1) + 1e-8);
                seq_mean(rows)
            }
            Self::SeqMeanTokenSum => seq_mean(masked.sum_dim(1)),
            Self::SeqMeanTokenSumNorm { horizon } => {
                seq_mean(masked.sum_dim(1)) / horizon.unwrap_or(t).max(1) as f64
            }
        }
    }

    /// Whether this aggregation divides by the accumulation steps itself (TRL's sequence- and
    /// micro-batch-normalised losses) rather than through the token normaliser.
    pub fn divides_by_grad_accum(&self) -> bool {
        matches!(
            self,
            Self::Grpo | Self::Bnpo | Self::DrGrpo { .. } | Self::Luspo
        )
    }
}
