//! Objectives: the current policy's log-probs and a batch's training signals in, a scalar loss
//! and named metrics out.

mod aggregation;
mod kl;
mod nll;
mod policy;
mod surrogate;

pub use aggregation::LossAggregation;
pub use kl::{KlEstimator, kl_divergence};
pub use nll::{NllNormalization, WeightedNll};
pub use policy::{ImportanceLevel, PolicyLoss, PolicyLossConfig};
pub use surrogate::Surrogate;

use std::collections::BTreeMap;

use burn::tensor::Tensor;

use crate::batch::PolicyTensors;
use crate::error::Result;

/// Facts from the trainer that normalise a loss: they are inputs, not trainer state, so an
/// objective can be tested alone against golden values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossScale {
    /// Gradient-accumulation steps of the current window. TRL divides the `grpo`, `bnpo`,
    /// `dr_grpo` and `luspo` losses (and the entropy bonus) by it. Default 1.
    pub grad_accum_steps: usize,
    /// Token count the token-level aggregations divide by: TRL `dapo`'s
    /// `num_items_in_batch / num_processes × GA / steps_per_generation`, verl `token-mean`'s
    /// `batch_num_tokens / dp_size`. `None`: the micro-batch's own active-token count.
    pub token_normalizer: Option<f32>,
    /// Sequence count verl's `seq-mean-*` modes divide by (`global_batch_size / dp_size`).
    /// `None`: the micro-batch's own non-empty rows.
    pub sequence_normalizer: Option<f32>,
}

impl Default for LossScale {
    fn default() -> Self {
        Self {
            grad_accum_steps: 1,
            token_normalizer: None,
            sequence_normalizer: None,
        }
    }
}

/// What an [`Objective`] is given.
#[derive(Debug, Clone)]
pub struct ObjectiveInput<'a> {
    /// Log-probs of the completion tokens under the current policy, `[B, T]`, tracked by
    /// autodiff when training.
    pub logps: Tensor<2>,
    /// Per-token entropy of the current policy, `[B, T]`; needed only for an entropy bonus
    /// and the `entropy` metric.
    pub entropy: Option<Tensor<2>>,
    /// Mask, advantages, old and reference log-probs.
    pub batch: &'a PolicyTensors,
    /// Normalisers from the trainer.
    pub scale: LossScale,
    /// The training step the loss is computed at (0-based; the learner's count of rollout
    /// batches, or of optimiser steps in SFT). Objectives whose behaviour depends on the step
    /// read it here; the built-in ones ignore it.
    pub step: usize,
}

impl<'a> ObjectiveInput<'a> {
    /// Input with no entropy and the default scale (one process, no accumulation).
    pub fn new(logps: Tensor<2>, batch: &'a PolicyTensors) -> Self {
        Self {
            logps,
            entropy: None,
            batch,
            scale: LossScale::default(),
            step: 0,
        }
    }

    /// Sets the training step.
    pub fn with_step(mut self, step: usize) -> Self {
        self.step = step;
        self
    }

    /// Sets the per-token entropy.
    pub fn with_entropy(mut self, entropy: Tensor<2>) -> Self {
        self.entropy = Some(entropy);
        self
    }

    /// Sets the trainer's normalisers.
    pub fn with_scale(mut self, scale: LossScale) -> Self {
        self.scale = scale;
        self
    }
}

/// Named scalar metrics, kept on the device until read (reading synchronises).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    entries: Vec<(&'static str, Tensor<1>)>,
}

impl Metrics {
    /// Adds a metric (a one-element tensor).
    pub fn push(&mut self, name: &'static str, value: Tensor<1>) {
        self.entries.push((name, value));
    }

    /// The metric names, in insertion order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.entries.iter().map(|(n, _)| *n)
    }

    /// Reads one metric to the host (NaN when it is undefined, e.g. a min over no rows).
    pub fn get(&self, name: &str) -> Option<f64> {
        self.entries
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| read_scalar(t))
    }

    /// Reads every metric to the host.
    pub fn read(&self) -> BTreeMap<String, f64> {
        self.entries
            .iter()
            .map(|(n, t)| (n.to_string(), read_scalar(t)))
            .collect()
    }
}

fn read_scalar(t: &Tensor<1>) -> f64 {
    let v: f32 = t.clone().into_scalar();
    if v.is_infinite() { f64::NAN } else { v as f64 }
}

/// What an [`Objective`] returns.
#[derive(Debug, Clone)]
pub struct ObjectiveOutput {
    /// The scalar to backpropagate, shape `[1]`.
    pub loss: Tensor<1>,
    /// Diagnostics (clip fractions, KL, entropy, …), detached from the graph.
    pub metrics: Metrics,
}

/// A training objective: the joint between rl-core and the trainer.
///
/// # Contract
/// - `compute` reads `input.logps` (and `input.entropy` if it needs it) with autodiff
///   tracking and returns a loss whose gradient the trainer backpropagates; everything else
///   in the input is a constant.
/// - It never reads trainer state: every normaliser comes in through [`LossScale`].
/// - Masked tokens (mask 0) never change the loss or its gradient.
/// - Shape disagreements and missing inputs are returned as errors, never panics.
///
/// The trait is object-safe, so a trainer can hold a `Box<dyn Objective>` chosen from a config.
pub trait Objective {
    /// Computes the loss and metrics.
    ///
    /// # Errors
    /// [`CoreError::ShapeMismatch`](crate::CoreError::ShapeMismatch) when the log-probs and the
    /// batch disagree; [`CoreError::MissingInput`](crate::CoreError::MissingInput) when a
    /// needed input (reference log-probs, entropy) is absent.
    fn compute(&self, input: ObjectiveInput<'_>) -> Result<ObjectiveOutput>;
}

impl<O: Objective + ?Sized> Objective for &O {
    fn compute(&self, input: ObjectiveInput<'_>) -> Result<ObjectiveOutput> {
        (**self).compute(input)
    }
}

impl<O: Objective + ?Sized> Objective for Box<O> {
    fn compute(&self, input: ObjectiveInput<'_>) -> Result<ObjectiveOutput> {
        (**self).compute(input)
    }
}

/// Σ(x·m) / max(Σm, 1) as a one-element tensor: the masked token mean.
pub(crate) fn masked_mean(x: Tensor<2>, mask: Tensor<2>) -> Tensor<1> {
    (x * mask.clone()).sum() / mask.sum().clamp_min(1.0)
}
