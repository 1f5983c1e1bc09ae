//! The gradient-alignment diagnostic (spec prerl.md §1.8): how well ∇log P(y) (prompt
//! removed) points the same way as ∇log π(y|x), measured with the model's own autodiff
//! gradients over all parameters.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use rlft_core::PolicyBatch;
use rlft_models::CausalLm;
use rlft_trainer::{Conditional, Marginal, Scorer};
use serde::{Deserialize, Serialize};

use crate::error::{PrerlError, Result};

/// The cosine at one completion position.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PositionAlignment {
    /// 0-based completion position t (t = 0 is y_1, predicted from the prompt or the context
    /// token alone).
    pub position: usize,
    /// Rows with a loss token at t.
    pub tokens: usize,
    /// cos(∇ Σ_i log P(y_{i,t} | c, y_{i,<t}), ∇ Σ_i log π(y_{i,t} | x_i, y_{i,<t})).
    pub cosine: f64,
}

/// Result of [`gradient_alignment`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlignmentReport {
    /// Rows of the batch.
    pub rows: usize,
    /// Loss tokens of the batch.
    pub tokens: usize,
    /// cos(∇ Σ log P(y), ∇ Σ log π(y|x)) over all loss tokens of the batch, gradients taken
    /// over every parameter.
    pub overall: f64,
    /// ‖∇ Σ log P(y)‖ and ‖∇ Σ log π(y|x)‖.
    pub norms: (f64, f64),
    /// The cosine at each of the first positions.
    pub by_position: Vec<PositionAlignment>,
}

/// Cosines between the parameter gradients of the marginal (`scorer`, prompt removed) and
/// the conditional log-likelihood of `batch`'s completions (loss-masked tokens), overall and
/// for each of the first `positions` completion positions. `model` must be on an autodiff
/// device; it is not changed. Costs 2 · (1 + positions) forward and backward passes.
///
/// A cosine is NaN when one of the two gradients is exactly zero.
///
/// # Errors
/// [`PrerlError::InvalidBatch`] for a batch without loss tokens; scorer errors.
pub fn gradient_alignment(
    model: &CausalLm,
    batch: &PolicyBatch,
    scorer: Marginal,
    temperature: f64,
    positions: usize,
    device: &Device,
) -> Result<AlignmentReport> {
    let tokens = batch.loss_mask.iter().filter(|&&m| m > 0.0).count();
    if tokens == 0 {
        return Err(PrerlError::InvalidBatch(
            "the batch has no loss tokens to take gradients of".into(),
        ));
    }
    let (b, t) = (batch.rows, batch.completion_len);
    let full = Tensor::<2>::from_data(TensorData::new(batch.loss_mask.clone(), [b, t]), device);
    let grads = |space: &dyn Scorer, mask: Tensor<2>| -> Result<GradientsParams> {
        let (lp, _) = space.score(model, batch, temperature, device, None)?;
        let total = (lp * mask).sum();
        Ok(GradientsParams::from_grads(total.backward(), model))
    };
    let compare = |mask: Tensor<2>| -> Result<Cosine> {
        let gm = grads(&scorer, mask.clone())?;
        let gc = grads(&Conditional, mask)?;
        let mut dots = Dots {
            a: &gm,
            b: &gc,
            ab: 0.0,
            aa: 0.0,
            bb: 0.0,
        };
        model.visit(&mut dots);
        Ok(Cosine {
            ab: dots.ab,
            aa: dots.aa,
            bb: dots.bb,
        })
    };
    let all = compare(full)?;
    let mut by_position = Vec::new();
    for pos in 0..positions.min(t) {
        let mut m = vec![0.0f32; b * t];
        let mut n = 0;
        for r in 0..b {
            let v = batch.loss_mask[r * t + pos];
            m[r * t + pos] = v;
            n += usize::from(v > 0.0);
        }
        if n == 0 {
            continue;
        }
        let d = compare(Tensor::from_data(TensorData::new(m, [b, t]), device))?;
        by_position.push(PositionAlignment {
            position: pos,
            tokens: n,
            cosine: d.cosine(),
        });
    }
    Ok(AlignmentReport {
        rows: b,
        tokens,
        overall: all.cosine(),
        norms: (all.aa.sqrt(), all.bb.sqrt()),
        by_position,
    })
}

/// Dot products of two gradients.
struct Cosine {
    ab: f64,
    aa: f64,
    bb: f64,
}

impl Cosine {
    fn cosine(&self) -> f64 {
        self.ab / (self.aa.sqrt() * self.bb.sqrt())
    }
}

/// Sums of a·b, a·a and b·b over every parameter's gradient.
struct Dots<'a> {
    a: &'a GradientsParams,
    b: &'a GradientsParams,
    ab: f64,
    aa: f64,
    bb: f64,
}

impl ModuleVisitor for Dots<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let (ga, gb) = (self.a.get::<D>(param.id), self.b.get::<D>(param.id));
        let sum = |t: Tensor<D>| t.sum().into_scalar::<f32>() as f64;
        match (ga, gb) {
            (Some(x), Some(y)) => {
                self.ab += sum(x.clone() * y.clone());
                self.aa += sum(x.square());
                self.bb += sum(y.square());
            }
            (Some(x), None) => self.aa += sum(x.square()),
            (None, Some(y)) => self.bb += sum(y.square()),
            (None, None) => {}
        }
    }
}
