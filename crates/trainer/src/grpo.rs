//! The learner half of online RL: scored rollouts in, one or more optimiser steps out.
//!
//! The loop around it (pick prompts, generate, verify) lives in the caller, so any sampler,
//! engine or verifier can drive it; see the crate docs.

use burn::optim::{GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use rlft_core::{
    AdvantageEstimator, BatchOptions, LossScale, Objective, ObjectiveInput, PolicyBatch,
    PolicyLossConfig, PromptGroup,
};
use rlft_models::CausalLm;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainerError};
use crate::metrics::StepRecord;
use crate::optim::{OptimConfig, clip_grad_norm};
use crate::policy::{completion_logprobs, completion_logprobs_and_entropy};

/// Settings of the policy update. Defaults follow TRL 1.16's `GRPOConfig` where it has one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpoConfig {
    /// Advantage estimator. Default GRPO with TRL's group scaling.
    pub advantage: AdvantageEstimator,
    /// The clipped objective. Default TRL's (`dapo`, ε 0.2, β 0).
    pub loss: PolicyLossConfig,
    /// Optimiser. Default [`OptimConfig::default`].
    pub optim: OptimConfig,
    /// Passes over each rollout batch (TRL `num_iterations`, μ). Default 1.
    pub num_iterations: usize,
    /// Optimiser steps per pass over a rollout batch (TRL `steps_per_generation`). Default 1.
    pub steps_per_generation: usize,
    /// Rows per forward pass; a mini-batch larger than this is accumulated. Default 16.
    pub micro_batch_size: usize,
    /// Sampling temperature the log-probs are computed at (TRL `temperature`). Default 1.0.
    pub temperature: f32,
    /// Reward at or above which a completion counts as correct (for accuracy). Default 1.0.
    pub success_threshold: f32,
    /// Drop unfinished completions from the loss (TRL `mask_truncated_completions`). Default
    /// false.
    pub mask_truncated: bool,
    /// Padding token id. Default 0.
    pub pad_id: u32,
}

impl Default for GrpoConfig {
    fn default() -> Self {
        Self {
            advantage: AdvantageEstimator::default(),
            loss: PolicyLossConfig::default(),
            optim: OptimConfig::default(),
            num_iterations: 1,
            steps_per_generation: 1,
            micro_batch_size: 16,
            temperature: 1.0,
            success_threshold: 1.0,
            mask_truncated: false,
            pad_id: 0,
        }
    }
}

impl GrpoConfig {
    /// Checks every field and the nested configs.
    ///
    /// # Errors
    /// [`TrainerError::Config`] naming the field, or a nested config's error.
    pub fn validate(&self) -> Result<()> {
        for (field, v) in [
            ("grpo.num_iterations", self.num_iterations),
            ("grpo.steps_per_generation", self.steps_per_generation),
            ("grpo.micro_batch_size", self.micro_batch_size),
        ] {
            if v == 0 {
                return Err(TrainerError::Config {
                    field,
                    reason: "must be ≥ 1, got 0".into(),
                });
            }
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(TrainerError::Config {
                field: "grpo.temperature",
                reason: format!("must be finite and > 0, got {}", self.temperature),
            });
        }
        self.advantage.validate()?;
        self.loss.validate()?;
        self.optim.validate()
    }

    /// Optimiser steps per rollout batch.
    pub fn steps_per_rollout(&self) -> usize {
        self.num_iterations * self.steps_per_generation
    }
}

/// The policy-update state: optimiser moments and the step counter.
pub struct GrpoLearner {
    cfg: GrpoConfig,
    objective: Box<dyn Objective>,
    optimizer: ModuleOptimizer,
    step: usize,
    total_steps: usize,
}

impl std::fmt::Debug for GrpoLearner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpoLearner")
            .field("cfg", &self.cfg)
            .field("step", &self.step)
            .field("total_steps", &self.total_steps)
            .finish_non_exhaustive()
    }
}

impl GrpoLearner {
    /// A learner for a run of `total_steps` optimiser steps (for the LR schedule).
    ///
    /// # Errors
    /// [`TrainerError::Config`] from [`GrpoConfig::validate`].
    pub fn new(cfg: GrpoConfig, total_steps: usize) -> Result<Self> {
        let objective = Box::new(cfg.loss.clone().init()?);
        Self::with_objective(cfg, total_steps, objective)
    }

    /// A learner that minimises `objective` instead of the one `cfg.loss` describes. The rest
    /// of `cfg` still applies; `cfg.loss.beta > 0` still asks for reference log-probs (set it
    /// when `objective` reads them).
    ///
    /// # Errors
    /// [`TrainerError::Config`] from [`GrpoConfig::validate`].
    pub fn with_objective(
        cfg: GrpoConfig,
        total_steps: usize,
        objective: Box<dyn Objective>,
    ) -> Result<Self> {
        cfg.validate()?;
        Ok(Self {
            objective,
            optimizer: cfg.optim.adamw(),
            cfg,
            step: 0,
            total_steps,
        })
    }

    /// Optimiser steps taken so far.
    pub fn step(&self) -> usize {
        self.step
    }

    /// The optimiser (for checkpoints).
    pub fn optimizer(&self) -> &ModuleOptimizer {
        &self.optimizer
    }

    /// Replaces the optimiser state and step counter (resume).
    pub fn restore(&mut self, optimizer: ModuleOptimizer, step: usize) {
        self.optimizer = optimizer;
        self.step = step;
    }

    /// Turns scored `groups` (k completions each, rewards set) into advantages and takes
    /// [`GrpoConfig::steps_per_rollout`] optimiser steps on `model` (on an autodiff device).
    /// `reference` scores the KL term when β > 0. Returns the updated model and the metrics of
    /// the update: `reward`, `accuracy`, `loss`, `grad_norm`, `lr`, `tokens`, and the
    /// objective's metrics (`clip_ratio/*`, `kl`, …) averaged over micro-batches.
    ///
    /// # Errors
    /// [`TrainerError::InvalidBatch`] for empty or ragged groups; estimator and objective
    /// errors.
    pub fn update(
        &mut self,
        mut model: CausalLm,
        reference: Option<&CausalLm>,
        groups: &[PromptGroup],
        device: &Device,
    ) -> Result<(CausalLm, StepRecord)> {
        let cfg = &self.cfg;
        let k = groups.first().map_or(0, |g| g.completions.len());
        if k == 0 || groups.iter().any(|g| g.completions.len() != k) {
            return Err(TrainerError::InvalidBatch(
                "every prompt group needs the same non-zero number of completions".into(),
            ));
        }
        let rewards: Vec<f32> = groups.iter().flat_map(|g| g.rewards()).collect();
        let lengths: Vec<usize> = groups
            .iter()
            .flat_map(|g| g.completions.iter().map(|c| c.token_ids.len()))
            .collect();
        let adv = cfg
            .advantage
            .compute_with_lengths(&rewards, k, Some(&lengths))?;
        let mut batch = PolicyBatch::from_groups(
            groups,
            &adv,
            &BatchOptions {
                pad_id: cfg.pad_id,
                mask_truncated: cfg.mask_truncated,
            },
        )?;
        let temp = cfg.temperature as f64;
        // Old log-probs are needed once the policy moves within a rollout batch (TRL computes
        // them whenever num_iterations > 1 or steps_per_generation > 1); they are always
        // recomputed by the trained model, never taken from the sampler's numbers.
        batch.old_logps = if cfg.steps_per_rollout() > 1 {
            Some(score_detached(&model, &batch, temp, device)?)
        } else {
            None
        };
        if cfg.loss.beta != 0.0 {
            let r = reference.ok_or(TrainerError::Config {
                field: "grpo.loss.beta",
                reason: "β > 0 needs a reference model".into(),
            })?;
            batch.ref_logps = Some(score_detached(r, &batch, temp, device)?);
        }

        let total_tokens = batch.active_tokens();
        let rows: Vec<usize> = (0..batch.rows).collect();
        let per_step = batch.rows.div_ceil(cfg.steps_per_generation);
        let mut record = StepRecord::new(self.step);
        let mut sums: std::collections::BTreeMap<String, (f64, usize)> = Default::default();
        let (mut loss_total, mut norm_last, mut lr_last) = (0.0, 0.0, 0.0);
        for _ in 0..cfg.num_iterations {
            for mini in rows.chunks(per_step) {
                let micros: Vec<&[usize]> = mini.chunks(cfg.micro_batch_size).collect();
                let ga = micros.len();
                // TRL dapo divides every micro-batch by num_items_in_batch × GA /
                // steps_per_generation, where TRL counts steps_per_generation in micro-batches
                // (GA per optimiser step); in this config's units that is the rollout batch's
                // active tokens / steps_per_generation, so the summed micro-batch gradients of
                // one optimiser step form a token mean over its mini-batch.
                let scale = LossScale {
                    grad_accum_steps: ga,
                    token_normalizer: Some(
                        (total_tokens as f32 / cfg.steps_per_generation as f32).max(1.0),
                    ),
                    sequence_normalizer: None,
                };
                let mut acc = GradientsAccumulator::new();
                let mut loss_step = 0.0;
                for micro in micros {
                    let mb = batch.select_rows(micro)?;
                    let (logps, entropy) = completion_logprobs_and_entropy(
                        &model,
                        &mb,
                        temp,
                        device,
                        cfg.loss.entropy_coef != 0.0,
                    )?;
                    let tensors = mb.to_tensors(device)?;
                    let out = self.objective.compute(
                        ObjectiveInput::new(logps, &tensors)
                            .with_scale(scale)
                            .with_entropy(entropy),
                    )?;
                    loss_step += out.loss.clone().into_scalar::<f32>() as f64;
                    for (name, v) in out.metrics.read() {
                        if v.is_finite() {
                            let e = sums.entry(name).or_insert((0.0, 0));
                            e.0 += v;
                            e.1 += 1;
                        }
                    }
                    acc.accumulate(
                        &model,
                        GradientsParams::from_grads(out.loss.backward(), &model),
                    );
                }
                let (grads, norm) = clip_grad_norm(&model, acc.grads(), cfg.optim.max_grad_norm);
                let lr = cfg.optim.lr_at(self.step, self.total_steps);
                model = self.optimizer.step(lr, model, grads);
                self.step += 1;
                loss_total += loss_step;
                norm_last = norm as f64;
                lr_last = lr;
            }
        }
        let n = rewards.iter().filter(|r| !r.is_nan()).count().max(1) as f64;
        record
            .set(
                "reward",
                rewards
                    .iter()
                    .filter(|r| !r.is_nan())
                    .map(|&r| r as f64)
                    .sum::<f64>()
                    / n,
            )
            .set(
                "accuracy",
                rewards
                    .iter()
                    .filter(|&&r| r >= cfg.success_threshold)
                    .count() as f64
                    / rewards.len() as f64,
            )
            .set("loss", loss_total / cfg.steps_per_rollout() as f64)
            .set("grad_norm", norm_last)
            .set("lr", lr_last)
            .set("tokens", total_tokens as f64);
        for (name, (s, c)) in sums {
            record.set(name, s / c as f64);
        }
        Ok((model, record))
    }
}

/// Log-probs of the batch's completions under `model`, without a graph, as host data.
fn score_detached(
    model: &CausalLm,
    batch: &PolicyBatch,
    temperature: f64,
    device: &Device,
) -> Result<Vec<f32>> {
    let lp: Tensor<2> = completion_logprobs(model, batch, temperature, device)?.detach();
    let data: TensorData = lp.into_data();
    data.try_to_vec::<f32>()
        .map_err(|e| TrainerError::InvalidBatch(format!("reading log-probs: {e:?}")))
}
