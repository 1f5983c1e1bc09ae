//! Optimiser settings with torch's semantics: AdamW with torch's defaults, one global gradient
//! norm for clipping (torch `clip_grad_norm_`, TRL `max_grad_norm`), and Hugging Face's
//! learning-rate schedules.

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainerError};

/// Learning-rate schedule after warmup (Hugging Face `lr_scheduler_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    /// Constant after warmup.
    Constant,
    /// Linear decay to 0 at the last step. Default (Hugging Face `TrainingArguments`).
    #[default]
    Linear,
    /// Half-cosine decay to 0 at the last step.
    Cosine,
}

/// What an optimiser step does when its loss or gradient norm is NaN or infinite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NanPolicy {
    /// Stop the run with [`TrainerError::NonFinite`] before the step is applied, so no
    /// checkpoint or export holds it. Default.
    #[default]
    Stop,
    /// Skip the update (the model and AdamW moments stay as they were), count the step and
    /// go on; the step's record has `nonfinite_skipped` = 1.
    SkipStep,
}

/// AdamW, clipping and schedule. Defaults: torch's `AdamW` (β 0.9 / 0.999, ε 1e-8, weight decay
/// 0.01), Hugging Face's `max_grad_norm` 1.0 and linear schedule, TRL's GRPO learning rate 1e-6.
/// Burn's own `AdamWConfig` defaults differ (ε 1e-5, weight decay 1e-4) and its clipping is per
/// parameter; this config never uses either.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimConfig {
    /// Peak learning rate. Default 1e-6 (TRL `GRPOConfig.learning_rate`).
    pub lr: f64,
    /// Adam β1. Default 0.9 (torch).
    pub beta1: f32,
    /// Adam β2. Default 0.999 (torch).
    pub beta2: f32,
    /// Adam ε. Default 1e-8 (torch).
    pub eps: f32,
    /// Decoupled weight decay. Default 0.01 (torch `AdamW`).
    pub weight_decay: f32,
    /// Global gradient-norm clip; `None` disables clipping. Default 1.0 (HF `max_grad_norm`).
    pub max_grad_norm: Option<f32>,
    /// Schedule after warmup. Default linear.
    pub schedule: LrSchedule,
    /// Linear warmup steps from 0. Default 0.
    pub warmup_steps: usize,
    /// A step whose loss or gradient norm is not finite: `stop` (default) or `skip-step`.
    pub nan_policy: NanPolicy,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            lr: 1e-6,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            max_grad_norm: Some(1.0),
            schedule: LrSchedule::Linear,
            warmup_steps: 0,
            nan_policy: NanPolicy::Stop,
        }
    }
}

impl OptimConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`TrainerError::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, reason: String| Err(TrainerError::Config { field, reason });
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            return bad(
                "optim.lr",
                format!("must be finite and ≥ 0, got {}", self.lr),
            );
        }
        for (field, b) in [("optim.beta1", self.beta1), ("optim.beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return bad(field, format!("must be in [0, 1), got {b}"));
            }
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return bad(
                "optim.eps",
                format!("must be finite and > 0, got {}", self.eps),
            );
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(
                "optim.weight_decay",
                format!("must be finite and ≥ 0, got {}", self.weight_decay),
            );
        }
        if let Some(n) = self.max_grad_norm
            && !(n.is_finite() && n > 0.0)
        {
            return bad(
                "optim.max_grad_norm",
                format!("must be finite and > 0, got {n}"),
            );
        }
        Ok(())
    }

    /// Burn's AdamW with these settings and no per-parameter clipping.
    pub fn adamw(&self) -> ModuleOptimizer {
        AdamWConfig::new()
            .with_beta_1(self.beta1)
            .with_beta_2(self.beta2)
            .with_epsilon(self.eps)
            .with_weight_decay(self.weight_decay)
            .init()
    }

    /// Learning rate for optimiser step `step` (0-based) of `total` (Hugging Face's lambdas:
    /// warmup `lr·step/warmup`, then constant, linear or cosine decay to 0 at `total`).
    pub fn lr_at(&self, step: usize, total: usize) -> f64 {
        let w = self.warmup_steps;
        if step < w {
            return self.lr * step as f64 / w.max(1) as f64;
        }
        let span = total.saturating_sub(w).max(1) as f64;
        let progress = ((step - w) as f64 / span).min(1.0);
        match self.schedule {
            LrSchedule::Constant => self.lr,
            LrSchedule::Linear => self.lr * (1.0 - progress).max(0.0),
            LrSchedule::Cosine => self.lr * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
        }
    }
}

/// Global L2 norm of all gradients of `module`, and the gradients scaled so that norm is at
/// most `max_norm` (torch `clip_grad_norm_`: coef = max_norm / (norm + 1e-6), applied when
/// below 1). Returns the norm before clipping, NaN or infinite when any gradient is. A
/// non-finite norm leaves the gradients as they are; the caller decides whether to skip the
/// step.
pub fn clip_grad_norm<M: Module>(
    module: &M,
    mut grads: GradientsParams,
    max_norm: Option<f32>,
) -> (GradientsParams, f32) {
    let mut sq = SumSquares {
        grads: &grads,
        total: None,
    };
    module.visit(&mut sq);
    let norm = sq
        .total
        // `f32::max` would turn a NaN sum into 0 and hide it.
        .map_or(0.0, |t| t.into_scalar::<f32>().sqrt());
    if let Some(max) = max_norm {
        let coef = max as f64 / (norm as f64 + 1e-6);
        if norm.is_finite() && coef < 1.0 {
            module.visit(&mut Scale {
                grads: &mut grads,
                coef,
            });
        }
    }
    (grads, norm)
}

struct SumSquares<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SumSquares<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let s = g.square().sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + s,
                None => s,
            });
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    coef: f64,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let id: ParamId = param.id;
        if let Some(g) = self.grads.remove::<D>(id) {
            self.grads.register(id, g * self.coef);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::Device;

    #[test]
    fn schedules_follow_hugging_face() {
        let mut c = OptimConfig {
            lr: 1.0,
            warmup_steps: 2,
            ..OptimConfig::default()
        };
        assert_eq!(c.lr_at(0, 10), 0.0);
        assert_eq!(c.lr_at(1, 10), 0.5);
        assert_eq!(c.lr_at(2, 10), 1.0);
        assert!((c.lr_at(6, 10) - 0.5).abs() < 1e-12);
        assert_eq!(c.lr_at(10, 10), 0.0);
        c.schedule = LrSchedule::Cosine;
        assert!((c.lr_at(6, 10) - 0.5).abs() < 1e-12);
        c.schedule = LrSchedule::Constant;
        assert_eq!(c.lr_at(9, 10), 1.0);
    }

    #[test]
    fn validation_names_the_field() {
        let c = OptimConfig {
            beta2: 1.0,
            ..OptimConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(TrainerError::Config {
                field: "optim.beta2",
                ..
            })
        ));
        let c = OptimConfig {
            max_grad_norm: Some(0.0),
            ..OptimConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(TrainerError::Config {
                field: "optim.max_grad_norm",
                ..
            })
        ));
    }

    fn grads_of(lin: &Linear, device: &Device) -> GradientsParams {
        let x = Tensor::<2>::from_floats([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]], device);
        let loss = lin.forward(x).square().sum() * 3.0;
        GradientsParams::from_grads(loss.backward(), lin)
    }

    fn flat(grads: &GradientsParams, lin: &Linear) -> Vec<f32> {
        let mut v: Vec<f32> = grads
            .get::<2>(lin.weight.id)
            .unwrap()
            .into_data()
            .try_to_vec()
            .unwrap();
        v.extend(
            grads
                .get::<1>(lin.bias.as_ref().unwrap().id)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap(),
        );
        v
    }

    #[test]
    fn clipping_uses_one_global_norm() {
        let device = Device::flex().autodiff();
        let lin = LinearConfig::new(3, 2).init(&device);
        let raw = flat(&grads_of(&lin, &device), &lin);
        let norm = raw.iter().map(|g| g * g).sum::<f32>().sqrt();
        assert!(norm > 0.5, "test needs a gradient larger than the clip");

        let (clipped, reported) = clip_grad_norm(&lin, grads_of(&lin, &device), Some(0.5));
        assert!((reported - norm).abs() <= 1e-5 * norm);
        let got = flat(&clipped, &lin);
        let coef = 0.5 / (norm + 1e-6);
        // Every tensor is scaled by the same factor (per-tensor clipping would not be).
        for (g, r) in got.iter().zip(&raw) {
            assert!(
                (g - r * coef).abs() <= 1e-6 * (1.0 + r.abs()),
                "{g} vs {}",
                r * coef
            );
        }
        let new_norm = got.iter().map(|g| g * g).sum::<f32>().sqrt();
        assert!((new_norm - 0.5).abs() < 1e-4);

        // Below the limit: untouched.
        let (same, _) = clip_grad_norm(&lin, grads_of(&lin, &device), Some(norm * 2.0));
        assert_eq!(flat(&same, &lin), raw);
    }
}

/// What one optimiser step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Sum of the micro-batch losses (each already scaled for accumulation).
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f32,
    /// The learning rate the step used.
    pub lr: f64,
    /// Micro-batches that produced a loss (the others had nothing to train on).
    pub micro_batches: usize,
    /// The update was skipped because the loss or gradient norm was not finite
    /// ([`NanPolicy::SkipStep`]).
    pub skipped: bool,
}

/// The one optimiser step that RL and SFT share: accumulate the gradients of a window of
/// micro-batches, clip them by one global norm, take an AdamW step at the scheduled learning
/// rate, count the step. Checkpoints store [`OptimStep::optimizer`] and [`OptimStep::step`];
/// [`OptimStep::restore`] puts them back.
pub struct OptimStep {
    cfg: OptimConfig,
    adamw: ModuleOptimizer,
    step: usize,
    total_steps: usize,
}

impl std::fmt::Debug for OptimStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OptimStep")
            .field("cfg", &self.cfg)
            .field("step", &self.step)
            .field("total_steps", &self.total_steps)
            .finish_non_exhaustive()
    }
}

impl OptimStep {
    /// AdamW for a run of `total_steps` optimiser steps (the schedule's length).
    ///
    /// # Errors
    /// [`TrainerError::Config`] from [`OptimConfig::validate`].
    pub fn new(cfg: OptimConfig, total_steps: usize) -> Result<Self> {
        cfg.validate()?;
        Ok(Self {
            adamw: cfg.adamw(),
            cfg,
            step: 0,
            total_steps,
        })
    }

    /// Optimiser steps taken.
    pub fn step(&self) -> usize {
        self.step
    }

    /// The settings.
    pub fn config(&self) -> &OptimConfig {
        &self.cfg
    }

    /// The AdamW state (for checkpoints).
    pub fn optimizer(&self) -> &ModuleOptimizer {
        &self.adamw
    }

    /// Replaces the AdamW state and the step counter (resume).
    pub fn restore(&mut self, optimizer: ModuleOptimizer, step: usize) {
        self.adamw = optimizer;
        self.step = step;
    }

    /// The learning rate of the next step.
    pub fn next_lr(&self) -> f64 {
        self.cfg.lr_at(self.step, self.total_steps)
    }

    /// Runs `micro_batches` micro-batches through `loss_of` (which returns the loss to
    /// backpropagate, already scaled for accumulation, or `None` when the micro-batch has
    /// nothing to train on), then clips and steps. `model` must be on an autodiff device.
    /// A non-finite loss or gradient norm is handled by [`OptimConfig::nan_policy`].
    ///
    /// # Errors
    /// Whatever `loss_of` returns; [`TrainerError::NonFinite`] under [`NanPolicy::Stop`].
    pub fn run<F>(
        &mut self,
        mut model: rlft_models::CausalLm,
        micro_batches: usize,
        mut loss_of: F,
    ) -> Result<(rlft_models::CausalLm, StepStats)>
    where
        F: FnMut(&rlft_models::CausalLm, usize) -> Result<Option<Tensor<1>>>,
    {
        let mut acc = burn::optim::GradientsAccumulator::new();
        let (mut loss, mut used) = (0.0, 0);
        for i in 0..micro_batches {
            if let Some(l) = loss_of(&model, i)? {
                loss += l.clone().into_scalar::<f32>() as f64;
                used += 1;
                acc.accumulate(&model, GradientsParams::from_grads(l.backward(), &model));
            }
        }
        let (grads, grad_norm) = clip_grad_norm(&model, acc.grads(), self.cfg.max_grad_norm);
        let lr = self.next_lr();
        let bad = if !loss.is_finite() {
            Some(("loss", loss))
        } else if !grad_norm.is_finite() {
            Some(("gradient norm", grad_norm as f64))
        } else {
            None
        };
        let skipped = match (bad, self.cfg.nan_policy) {
            (Some((what, value)), NanPolicy::Stop) => {
                return Err(TrainerError::NonFinite {
                    what,
                    value,
                    step: self.step,
                });
            }
            (Some(_), NanPolicy::SkipStep) => true,
            (None, _) => {
                model = self.adamw.step(lr, model, grads);
                false
            }
        };
        self.step += 1;
        Ok((
            model,
            StepStats {
                loss,
                grad_norm,
                lr,
                micro_batches: used,
                skipped,
            },
        ))
    }
}
