//! Supervised finetuning on (prompt, completion, weight) examples: plain SFT with weight 1, or
//! DRIFT's weighted SFT. Uses the same scoring and optimiser machinery as the RL loop.

use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::Device;
use rand::seq::SliceRandom;
use rand::{SeedableRng, rngs::StdRng};
use rlft_core::{
    Advantages, BatchOptions, Completion, LossScale, Objective, ObjectiveInput, PolicyBatch,
    PromptGroup, WeightedNll,
};
use rlft_models::CausalLm;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainerError};
use crate::metrics::StepRecord;
use crate::optim::{OptimConfig, clip_grad_norm};
use crate::policy::completion_logprobs;

/// One training example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SftExample {
    /// Context tokens (no loss).
    pub prompt_ids: Vec<u32>,
    /// Target tokens (loss), usually ending with the end-of-sequence token.
    pub completion_ids: Vec<u32>,
    /// Per-example weight (1 for plain SFT).
    #[serde(default = "one")]
    pub weight: f32,
}

fn one() -> f32 {
    1.0
}

/// SFT settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SftConfig {
    /// Passes over the examples. Default 1.
    pub epochs: usize,
    /// Examples per micro-batch. Default 8.
    pub batch_size: usize,
    /// Micro-batches per optimiser step. Default 1.
    pub grad_accum_steps: usize,
    /// Optimiser. Default [`OptimConfig::default`] with lr 1e-5.
    pub optim: OptimConfig,
    /// Loss normalisation. Default sequence-level (DRIFT).
    pub loss: WeightedNll,
    /// Shuffle seed; examples are reshuffled each epoch. Default 0.
    pub seed: u64,
    /// Token id used to pad batches. Default 0.
    pub pad_id: u32,
}

impl Default for SftConfig {
    fn default() -> Self {
        Self {
            epochs: 1,
            batch_size: 8,
            grad_accum_steps: 1,
            optim: OptimConfig {
                lr: 1e-5,
                ..OptimConfig::default()
            },
            loss: WeightedNll::default(),
            seed: 0,
            pad_id: 0,
        }
    }
}

impl SftConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`TrainerError::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        for (field, v) in [
            ("sft.epochs", self.epochs),
            ("sft.batch_size", self.batch_size),
            ("sft.grad_accum_steps", self.grad_accum_steps),
        ] {
            if v == 0 {
                return Err(TrainerError::Config {
                    field,
                    reason: "must be ≥ 1, got 0".into(),
                });
            }
        }
        self.optim.validate()
    }

    /// Optimiser steps a run over `n` examples takes.
    pub fn total_steps(&self, n: usize) -> usize {
        self.epochs * n.div_ceil(self.batch_size).div_ceil(self.grad_accum_steps)
    }
}

/// Lays examples out as a [`PolicyBatch`] whose per-row advantage is the example weight.
///
/// # Errors
/// [`TrainerError::InvalidBatch`] for an empty slice or an example without tokens.
pub fn sft_batch(examples: &[&SftExample], pad_id: u32) -> Result<PolicyBatch> {
    if let Some(e) = examples
        .iter()
        .find(|e| e.prompt_ids.is_empty() || e.completion_ids.is_empty())
    {
        return Err(TrainerError::InvalidBatch(format!(
            "an example needs prompt and completion tokens, got {} and {}",
            e.prompt_ids.len(),
            e.completion_ids.len()
        )));
    }
    let groups: Vec<PromptGroup> = examples
        .iter()
        .map(|e| PromptGroup {
            prompt_index: 0,
            prompt_ids: e.prompt_ids.clone(),
            completions: vec![Completion {
                token_ids: e.completion_ids.clone(),
                reward: e.weight,
                ..Completion::default()
            }],
        })
        .collect();
    let adv = Advantages {
        values: examples.iter().map(|e| e.weight).collect(),
        keep: vec![true; examples.len()],
    };
    PolicyBatch::from_groups(
        &groups,
        &adv,
        &BatchOptions {
            pad_id,
            mask_truncated: false,
        },
    )
    .map_err(|e| TrainerError::InvalidBatch(e.to_string()))
}

/// Trains `model` (on an autodiff device) on `examples` and returns it. `on_step` receives
/// each optimiser step's record (`loss`, `nll`, `grad_norm`, `lr`, `tokens`).
///
/// # Errors
/// [`TrainerError::Config`] for bad settings, [`TrainerError::InvalidBatch`] for bad examples.
pub fn sft_train(
    mut model: CausalLm,
    examples: &[SftExample],
    cfg: &SftConfig,
    device: &Device,
    mut on_step: impl FnMut(&StepRecord),
) -> Result<CausalLm> {
    cfg.validate()?;
    if examples.is_empty() {
        return Err(TrainerError::InvalidBatch("no SFT examples".into()));
    }
    let total = cfg.total_steps(examples.len());
    let mut opt = cfg.optim.adamw();
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let scale = LossScale {
        grad_accum_steps: cfg.grad_accum_steps,
        ..LossScale::default()
    };
    let mut step = 0;
    for _ in 0..cfg.epochs {
        let mut order: Vec<usize> = (0..examples.len()).collect();
        order.shuffle(&mut rng);
        let micro: Vec<Vec<usize>> = order.chunks(cfg.batch_size).map(<[_]>::to_vec).collect();
        for window in micro.chunks(cfg.grad_accum_steps) {
            let mut acc = GradientsAccumulator::new();
            let (mut loss_sum, mut nll_sum, mut tokens) = (0.0, 0.0, 0usize);
            for mb in window {
                let rows: Vec<&SftExample> = mb.iter().map(|&i| &examples[i]).collect();
                let batch = sft_batch(&rows, cfg.pad_id)?;
                tokens += batch.active_tokens();
                let logps = completion_logprobs(&model, &batch, 1.0, device)?;
                let tensors = batch.to_tensors(device)?;
                let out = cfg
                    .loss
                    .compute(ObjectiveInput::new(logps, &tensors).with_scale(scale))?;
                loss_sum += out.loss.clone().into_scalar::<f32>() as f64;
                nll_sum += out.metrics.get("nll").unwrap_or(f64::NAN) / window.len() as f64;
                acc.accumulate(
                    &model,
                    GradientsParams::from_grads(out.loss.backward(), &model),
                );
            }
            let (grads, norm) = clip_grad_norm(&model, acc.grads(), cfg.optim.max_grad_norm);
            let lr = cfg.optim.lr_at(step, total);
            model = opt.step(lr, model, grads);
            let mut rec = StepRecord::new(step);
            rec.set("loss", loss_sum)
                .set("nll", nll_sum)
                .set("grad_norm", norm as f64)
                .set("lr", lr)
                .set("tokens", tokens as f64);
            on_step(&rec);
            step += 1;
        }
    }
    Ok(model)
}
