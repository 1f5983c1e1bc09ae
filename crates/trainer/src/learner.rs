//! The learner half of online RL: scored rollouts in, one or more optimiser steps out, for
//! any sum of phased objective terms (GRPO, PSR/NSR, PreRL, DSRL, …).
//!
//! The loop around it (pick prompts, generate, verify) lives in the caller, so any sampler,
//! engine or verifier can drive it; see the crate docs.

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor, TensorData};
use rlft_core::{
    AdvantageEstimator, BatchOptions, LossScale, Objective, ObjectiveInput, PolicyBatch,
    PolicyLossConfig, PromptGroup,
};
use rlft_models::CausalLm;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainerError};
use crate::metrics::StepRecord;
use crate::optim::{OptimConfig, OptimStep};
use crate::scorer::Scorer;
use crate::terms::Term;

/// Settings of the policy update. Defaults follow TRL 1.16's `GRPOConfig` where it has one.
/// In a run config this is `[train.grpo]`; `advantage` and `loss` are the defaults of every
/// `[[objective]]` term that does not set its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LearnerConfig {
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
    /// Reward at or above which a completion counts as correct, used only for completions
    /// that carry no verifier verdict (`Completion::correct` is `None`). Default 1.0.
    pub success_threshold: f32,
    /// Drop unfinished completions from the loss (TRL `mask_truncated_completions`). Default
    /// false.
    pub mask_truncated: bool,
    /// Padding token id. Default 0.
    pub pad_id: u32,
    /// Training steps (0-based) at whose start the reference model is set to the current
    /// policy (DSRL's "reincarnation" at S; spec prerl.md §2). Default none.
    pub sync_reference_at: Vec<usize>,
}

/// The former name of [`LearnerConfig`].
pub type GrpoConfig = LearnerConfig;

impl Default for LearnerConfig {
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
            sync_reference_at: Vec::new(),
        }
    }
}

impl LearnerConfig {
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

/// The policy-update state: the objective terms, the optimiser and the step counters.
///
/// A step minimises Σ_j coef_j(step) · objective_j(scorer_j(batch), advantages_j, mask_j). A
/// term whose coefficient is 0 at a step is not computed at all, so it contributes exactly
/// zero gradient. Terms see the step through [`ObjectiveInput::step`].
pub struct Learner {
    cfg: LearnerConfig,
    terms: Vec<Term>,
    optim: OptimStep,
    batches: usize,
}

/// The former name of [`Learner`]: it runs every objective, not only GRPO's.
pub type GrpoLearner = Learner;

impl std::fmt::Debug for Learner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Learner")
            .field("cfg", &self.cfg)
            .field("terms", &self.terms)
            .field("optim", &self.optim)
            .field("batches", &self.batches)
            .finish()
    }
}

/// One term's view of a rollout batch.
struct TermBatch {
    term: usize,
    coef: f64,
    batch: PolicyBatch,
    tokens: usize,
}

impl Learner {
    /// A learner with one term: `cfg.advantage` and `cfg.loss` on the conditional scorer, for
    /// a run of `total_steps` optimiser steps (for the LR schedule).
    ///
    /// # Errors
    /// [`TrainerError::Config`] from [`LearnerConfig::validate`].
    pub fn new(cfg: LearnerConfig, total_steps: usize) -> Result<Self> {
        let objective = Box::new(cfg.loss.clone().init()?);
        Self::with_objective(cfg, total_steps, objective)
    }

    /// A one-term learner that minimises `objective` instead of the one `cfg.loss`
    /// describes. The rest of `cfg` still applies; `cfg.loss.beta > 0` still asks for
    /// reference log-probs (set it when `objective` reads them).
    ///
    /// # Errors
    /// [`TrainerError::Config`] from [`LearnerConfig::validate`].
    pub fn with_objective(
        cfg: LearnerConfig,
        total_steps: usize,
        objective: Box<dyn Objective>,
    ) -> Result<Self> {
        let mut term = Term::new("grpo", cfg.advantage.clone(), objective)
            .with_reference(cfg.loss.beta != 0.0);
        term.entropy_grad = cfg.loss.entropy_coef != 0.0;
        Self::with_terms(cfg, total_steps, vec![term])
    }

    /// A learner minimising the sum of `terms` (each with its scorer, advantages, sample
    /// mask, objective and phase). `cfg.advantage` and `cfg.loss` are not used (terms carry
    /// their own); the rest of `cfg` is.
    ///
    /// # Errors
    /// [`TrainerError::Config`] for no terms, duplicate names or a bad config.
    pub fn with_terms(cfg: LearnerConfig, total_steps: usize, terms: Vec<Term>) -> Result<Self> {
        cfg.validate()?;
        if terms.is_empty() {
            return Err(TrainerError::Config {
                field: "objective",
                reason: "a learner needs at least one objective term".into(),
            });
        }
        for (i, t) in terms.iter().enumerate() {
            t.phase.validate("objective.phase")?;
            if terms[..i].iter().any(|u| u.name == t.name) {
                return Err(TrainerError::Config {
                    field: "objective.name",
                    reason: format!("two terms are named {:?}", t.name),
                });
            }
        }
        Ok(Self {
            optim: OptimStep::new(cfg.optim.clone(), total_steps)?,
            cfg,
            terms,
            batches: 0,
        })
    }

    /// The settings.
    pub fn config(&self) -> &LearnerConfig {
        &self.cfg
    }

    /// The objective terms.
    pub fn terms(&self) -> &[Term] {
        &self.terms
    }

    /// Optimiser steps taken so far.
    pub fn step(&self) -> usize {
        self.optim.step()
    }

    /// Rollout batches trained on so far: the training step the next [`Learner::update`]
    /// runs at, which term phases and reference syncs are keyed on.
    pub fn batches(&self) -> usize {
        self.batches
    }

    /// The optimiser (for checkpoints).
    pub fn optimizer(&self) -> &burn::optim::ModuleOptimizer {
        self.optim.optimizer()
    }

    /// Replaces the optimiser state and both counters (resume).
    pub fn restore(
        &mut self,
        optimizer: burn::optim::ModuleOptimizer,
        optimizer_step: usize,
        batches: usize,
    ) {
        self.optim.restore(optimizer, optimizer_step);
        self.batches = batches;
    }

    /// Whether any term that is on at the next step reads reference log-probs.
    pub fn needs_reference(&self) -> bool {
        self.terms
            .iter()
            .any(|t| t.needs_reference && t.phase.coef_at(self.batches) != 0.0)
    }

    /// Whether the reference model should be set to the current policy before the next
    /// [`Learner::update`] (a `sync_reference_at` step).
    pub fn reference_sync_due(&self) -> bool {
        self.cfg.sync_reference_at.contains(&self.batches)
    }

    /// Turns scored `groups` (k completions each, rewards set) into each active term's
    /// advantages and batch, and takes [`LearnerConfig::steps_per_rollout`] optimiser steps on
    /// `model` (on an autodiff device). `reference` scores terms that read reference
    /// log-probs. Returns the updated model and the metrics of the update: `reward`,
    /// `accuracy`, `loss`, `grad_norm`, `lr`, `tokens`, the objective's metrics (`clip_ratio/*`,
    /// `kl`, …) averaged over micro-batches, and with several terms `coef/<term>`,
    /// `loss/<term>` and `<term>/<metric>`.
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
        let k = groups.first().map_or(0, |g| g.completions.len());
        if k == 0 || groups.iter().any(|g| g.completions.len() != k) {
            return Err(TrainerError::InvalidBatch(
                "every prompt group needs the same non-zero number of completions".into(),
            ));
        }
        let cfg = &self.cfg;
        let t_step = self.batches;
        let rewards: Vec<f32> = groups.iter().flat_map(|g| g.rewards()).collect();
        let lengths: Vec<usize> = groups
            .iter()
            .flat_map(|g| g.completions.iter().map(|c| c.token_ids.len()))
            .collect();
        let temp = cfg.temperature as f64;
        let opts = BatchOptions {
            pad_id: cfg.pad_id,
            mask_truncated: cfg.mask_truncated,
        };
        let mut active = Vec::new();
        for (ti, term) in self.terms.iter().enumerate() {
            let coef = term.phase.coef_at(t_step);
            if coef == 0.0 {
                continue;
            }
            let mut adv = term
                .advantage
                .compute_with_lengths(&rewards, k, Some(&lengths))?;
            term.sample_mask.apply(&mut adv);
            let mut batch = PolicyBatch::from_groups(groups, &adv, &opts)?;
            // Old log-probs are needed once the policy moves within a rollout batch (TRL
            // computes them whenever num_iterations > 1 or steps_per_generation > 1); they are
            // scored by the term's own scorer from the trained model, never taken from the
            // engine's numbers. On-policy, objectives use the detached current log-probs.
            if cfg.steps_per_rollout() > 1 {
                batch.old_logps = Some(score_detached(
                    term.scorer.as_ref(),
                    &model,
                    &batch,
                    temp,
                    device,
                )?);
            }
            if term.needs_reference {
                let r = reference.ok_or(TrainerError::Config {
                    field: "grpo.loss.beta",
                    reason: format!("term {:?} has β > 0 and needs a reference model", term.name),
                })?;
                batch.ref_logps = Some(score_detached(
                    term.scorer.as_ref(),
                    r,
                    &batch,
                    temp,
                    device,
                )?);
            }
            let tokens = batch.active_tokens();
            active.push(TermBatch {
                term: ti,
                coef,
                batch,
                tokens,
            });
        }

        let rows: Vec<usize> = (0..groups.len() * k).collect();
        let per_step = rows.len().div_ceil(cfg.steps_per_generation);
        let multi = self.terms.len() > 1;
        let mut sums: BTreeMap<String, (f64, usize)> = BTreeMap::new();
        let mut term_loss = vec![0.0f64; active.len()];
        let (mut loss_total, mut norm_last, mut skipped) = (0.0, 0.0, 0usize);
        let mut lr_last = self.optim.next_lr();
        for _ in 0..cfg.num_iterations {
            for mini in rows.chunks(per_step) {
                let micros: Vec<&[usize]> = mini.chunks(cfg.micro_batch_size).collect();
                let ga = micros.len();
                let terms = &self.terms;
                let (m, stats) = self.optim.run(model, ga, |model, i| {
                    let mut total: Option<Tensor<1>> = None;
                    for (ai, tb) in active.iter().enumerate() {
                        let term = &terms[tb.term];
                        // TRL dapo divides every micro-batch by num_items_in_batch × GA /
                        // steps_per_generation, where TRL counts steps_per_generation in
                        // micro-batches (GA per optimiser step); in this config's units that
                        // is the term's active tokens / steps_per_generation, so the summed
                        // micro-batch gradients of one optimiser step form a token mean over
                        // its mini-batch. A sample mask shrinks the count (spec prerl.md §1.6).
                        let scale = LossScale {
                            grad_accum_steps: ga,
                            token_normalizer: Some(
                                (tb.tokens as f32 / cfg.steps_per_generation as f32).max(1.0),
                            ),
                            sequence_normalizer: None,
                        };
                        let mb = tb.batch.select_rows(micros[i])?;
                        let (logps, entropy) =
                            term.scorer
                                .score(model, &mb, temp, device, Some(term.entropy_grad))?;
                        let tensors = mb.to_tensors(device)?;
                        let mut input = ObjectiveInput::new(logps, &tensors)
                            .with_scale(scale)
                            .with_step(t_step);
                        if let Some(h) = entropy {
                            input = input.with_entropy(h);
                        }
                        let out = term.objective.compute(input)?;
                        let l = if tb.coef == 1.0 {
                            out.loss
                        } else {
                            out.loss * (tb.coef as f32)
                        };
                        term_loss[ai] += l.clone().into_scalar::<f32>() as f64;
                        for (name, v) in out.metrics.read() {
                            if v.is_finite() {
                                let key = if multi {
                                    format!("{}/{name}", term.name)
                                } else {
                                    name
                                };
                                let e = sums.entry(key).or_insert((0.0, 0));
                                e.0 += v;
                                e.1 += 1;
                            }
                        }
                        total = Some(match total {
                            None => l,
                            Some(t) => t + l,
                        });
                    }
                    Ok(total)
                })?;
                model = m;
                loss_total += stats.loss;
                norm_last = stats.grad_norm as f64;
                lr_last = stats.lr;
                skipped += usize::from(stats.skipped);
            }
        }
        self.batches += 1;

        let mut record = StepRecord::new(t_step);
        let scored: Vec<f64> = rewards
            .iter()
            .filter(|r| !r.is_nan())
            .map(|&r| r as f64)
            .collect();
        let correct = groups
            .iter()
            .flat_map(|g| &g.completions)
            .filter(|c| c.correct.unwrap_or(c.reward >= self.cfg.success_threshold))
            .count();
        record
            .set(
                "reward",
                scored.iter().sum::<f64>() / scored.len().max(1) as f64,
            )
            .set("accuracy", correct as f64 / rewards.len() as f64)
            .set("loss", loss_total / self.cfg.steps_per_rollout() as f64)
            .set("grad_norm", norm_last)
            .set("lr", lr_last)
            .set("tokens", active.first().map_or(0, |t| t.tokens) as f64);
        if skipped > 0 {
            record.set("nonfinite_skipped", skipped as f64);
        }
        if multi {
            for term in &self.terms {
                record.set(format!("coef/{}", term.name), term.phase.coef_at(t_step));
            }
            for (tb, l) in active.iter().zip(&term_loss) {
                record.set(
                    format!("loss/{}", self.terms[tb.term].name),
                    l / self.cfg.steps_per_rollout() as f64,
                );
            }
        }
        for (name, (s, c)) in sums {
            record.set(name, s / c as f64);
        }
        Ok((model, record))
    }
}

/// Log-probs of the batch's completions under `model` by `scorer`, without a graph, as host
/// data.
fn score_detached(
    scorer: &dyn Scorer,
    model: &CausalLm,
    batch: &PolicyBatch,
    temperature: f64,
    device: &Device,
) -> Result<Vec<f32>> {
    let lp: Tensor<2> = scorer
        .score(model, batch, temperature, device, None)?
        .0
        .detach();
    let data: TensorData = lp.into_data();
    data.try_to_vec::<f32>()
        .map_err(|e| TrainerError::InvalidBatch(format!("reading log-probs: {e:?}")))
}
