//! Supervised finetuning on (prompt, completion, weight) examples: plain SFT with weight 1, or
//! DRIFT's weighted SFT, with per-token loss masks for multi-turn conversations. Uses the same
//! scorer and optimiser step as the RL learner, and the same checkpoint / resume.

use std::path::Path;

use burn::tensor::Device;
use rand::seq::SliceRandom;
use rand::{SeedableRng, rngs::StdRng};
use rlft_core::{
    Advantages, BatchOptions, Completion, LossScale, Objective, ObjectiveInput, PolicyBatch,
    PromptGroup, WeightedNll,
};
use rlft_models::CausalLm;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{RunDir, StopFlag, checkpoint_due, stop_requested};
use crate::error::{Result, TrainerError};
use crate::metrics::{MetricsLog, StepRecord};
use crate::optim::{OptimConfig, OptimStep};
use crate::scorer::{Conditional, Scorer};

/// One training example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SftExample {
    /// Context tokens (no loss).
    pub prompt_ids: Vec<u32>,
    /// Target tokens, usually ending with the end-of-sequence token. All of them carry loss
    /// unless `loss_mask` says otherwise.
    pub completion_ids: Vec<u32>,
    /// Per-token loss mask over `completion_ids` (1: loss, 0: context only), e.g. only the
    /// chosen assistant turns of a multi-turn conversation. Empty (default): every token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loss_mask: Vec<f32>,
    /// Per-example weight (1 for plain SFT).
    #[serde(default = "one")]
    pub weight: f32,
}

impl Default for SftExample {
    /// No tokens, every token trained, weight 1.
    fn default() -> Self {
        Self {
            prompt_ids: Vec::new(),
            completion_ids: Vec::new(),
            loss_mask: Vec::new(),
            weight: 1.0,
        }
    }
}

fn one() -> f32 {
    1.0
}

fn yes() -> bool {
    true
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
    /// Shuffle the examples each epoch. Default true; false keeps file order (DRIFT's
    /// released training uses `--disable_shuffle`).
    #[serde(default = "yes")]
    pub shuffle: bool,
    /// Token id used to pad batches. Default 0.
    pub pad_id: u32,
    /// Write a checkpoint every this many optimiser steps in a run directory (0: only at the
    /// end). Default 50.
    pub checkpoint_every: usize,
    /// Checkpoints kept on disk. Default 2.
    pub keep_checkpoints: usize,
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
            shuffle: true,
            pad_id: 0,
            checkpoint_every: 50,
            keep_checkpoints: 2,
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

    /// Optimiser steps of one pass over `n` examples.
    pub fn steps_per_epoch(&self, n: usize) -> usize {
        n.div_ceil(self.batch_size).div_ceil(self.grad_accum_steps)
    }

    /// Optimiser steps a run over `n` examples takes.
    pub fn total_steps(&self, n: usize) -> usize {
        self.epochs * self.steps_per_epoch(n)
    }
}

/// Lays examples out as a [`PolicyBatch`] whose per-row advantage is the example weight and
/// whose loss mask is each example's own.
///
/// # Errors
/// [`TrainerError::InvalidBatch`] for an empty slice, an example without tokens, or a loss
/// mask whose length is not the completion's.
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
                loss_mask: e.loss_mask.clone(),
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

/// The SFT loop's state, shared by [`sft_train`] (in memory) and [`SftTrainer`] (in a run
/// directory): which examples each optimiser step trains on, and the step itself.
struct SftLoop<'e> {
    cfg: SftConfig,
    examples: &'e [SftExample],
    optim: OptimStep,
    epoch_order: Option<(usize, Vec<usize>)>,
}

impl<'e> SftLoop<'e> {
    fn new(cfg: SftConfig, examples: &'e [SftExample]) -> Result<Self> {
        cfg.validate()?;
        if examples.is_empty() {
            return Err(TrainerError::InvalidBatch("no SFT examples".into()));
        }
        let total = cfg.total_steps(examples.len());
        Ok(Self {
            optim: OptimStep::new(cfg.optim.clone(), total)?,
            cfg,
            examples,
            epoch_order: None,
        })
    }

    fn total_steps(&self) -> usize {
        self.cfg.total_steps(self.examples.len())
    }

    /// The example order of `epoch`: the seeded generator replayed through every earlier
    /// epoch's shuffle, so a resumed run sees exactly the order an uninterrupted one did.
    fn order(&mut self, epoch: usize) -> &[usize] {
        if self.epoch_order.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let mut order: Vec<usize> = (0..self.examples.len()).collect();
            if self.cfg.shuffle {
                let mut rng = StdRng::seed_from_u64(self.cfg.seed);
                for _ in 0..=epoch {
                    order = (0..self.examples.len()).collect();
                    order.shuffle(&mut rng);
                }
            }
            self.epoch_order = Some((epoch, order));
        }
        &self.epoch_order.as_ref().expect("set above").1
    }

    /// Optimiser step `step` (0-based): its window of micro-batches, one accumulated update.
    fn train_step(
        &mut self,
        model: CausalLm,
        step: usize,
        device: &Device,
    ) -> Result<(CausalLm, StepRecord)> {
        let per_epoch = self.cfg.steps_per_epoch(self.examples.len());
        let (epoch, index) = (step / per_epoch, step % per_epoch);
        let (bs, ga) = (self.cfg.batch_size, self.cfg.grad_accum_steps);
        let order = self.order(epoch).to_vec();
        let micro: Vec<&[usize]> = order.chunks(bs).collect();
        let window: Vec<&[usize]> = micro
            .chunks(ga)
            .nth(index)
            .ok_or_else(|| TrainerError::InvalidBatch(format!("SFT step {step} is past the data")))?
            .to_vec();
        let scale = LossScale {
            grad_accum_steps: ga,
            ..LossScale::default()
        };
        let examples = self.examples;
        let (pad_id, loss) = (self.cfg.pad_id, self.cfg.loss);
        let (mut nll_sum, mut tokens) = (0.0, 0usize);
        let n = window.len();
        let (model, stats) = self.optim.run(model, n, |model, i| {
            let rows: Vec<&SftExample> = window[i].iter().map(|&j| &examples[j]).collect();
            let batch = sft_batch(&rows, pad_id)?;
            tokens += batch.active_tokens();
            let (logps, _) = Conditional.score(model, &batch, 1.0, device, None)?;
            let tensors = batch.to_tensors(device)?;
            let out = loss.compute(
                ObjectiveInput::new(logps, &tensors)
                    .with_scale(scale)
                    .with_step(step),
            )?;
            nll_sum += out.metrics.get("nll").unwrap_or(f64::NAN) / n as f64;
            Ok(Some(out.loss))
        })?;
        let mut rec = StepRecord::new(step);
        rec.set("loss", stats.loss)
            .set("nll", nll_sum)
            .set("grad_norm", stats.grad_norm as f64)
            .set("lr", stats.lr)
            .set("tokens", tokens as f64)
            .set("epoch", epoch as f64);
        if stats.skipped {
            rec.set("nonfinite_skipped", 1.0);
        }
        Ok((model, rec))
    }
}

/// Trains `model` (on an autodiff device) on `examples` in memory and returns it. `on_step`
/// receives each optimiser step's record (`loss`, `nll`, `grad_norm`, `lr`, `tokens`,
/// `epoch`). For a resumable run in a directory use [`SftTrainer`].
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
    let mut lp = SftLoop::new(cfg.clone(), examples)?;
    for step in 0..lp.total_steps() {
        let (m, rec) = lp.train_step(model, step, device)?;
        model = m;
        on_step(&rec);
    }
    Ok(model)
}

/// A (weighted) SFT run in a directory: `metrics.jsonl`, `ckpt-NNNNNN/` checkpoints and
/// `latest.json`, as [`OnlineTrainer`](crate::OnlineTrainer) writes them. Opening a directory
/// that holds a checkpoint resumes from it: model, optimiser, step, and the data order (the
/// epoch shuffles are replayed from the seed), so a killed run finishes with the same
/// metrics and weights as an uninterrupted one.
pub struct SftTrainer<'e> {
    inner: SftLoop<'e>,
    run: RunDir,
    device: Device,
    model: CausalLm,
    log: MetricsLog,
    step: usize,
    stop: Option<StopFlag>,
}

impl std::fmt::Debug for SftTrainer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SftTrainer")
            .field("dir", &self.run.path())
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct SftState {
    examples: usize,
}

impl<'e> SftTrainer<'e> {
    /// Starts a run in `dir`, or resumes the one there.
    ///
    /// # Errors
    /// Config validation, I/O and checkpoint errors; [`TrainerError::Checkpoint`] when the
    /// checkpoint was written for a different number of examples.
    pub fn open(
        cfg: SftConfig,
        dir: &Path,
        model: CausalLm,
        examples: &'e [SftExample],
        device: &Device,
    ) -> Result<Self> {
        let run = RunDir::create(dir, cfg.keep_checkpoints)?;
        let mut inner = SftLoop::new(cfg, examples)?;
        let mut model = model;
        let mut step = 0;
        if let Some(r) = run.restore::<SftState>(model.clone(), &inner.cfg.optim)? {
            if r.state.examples != examples.len() {
                return Err(TrainerError::Checkpoint {
                    path: r.dir,
                    reason: format!(
                        "written for {} examples, but {} were given",
                        r.state.examples,
                        examples.len()
                    ),
                });
            }
            model = r.model;
            inner.optim.restore(r.optimizer, r.info.optimizer_step);
            step = r.info.step;
        }
        let log = MetricsLog::open(&dir.join("metrics.jsonl"), step)?;
        Ok(Self {
            inner,
            run,
            device: device.clone(),
            model,
            log,
            step,
            stop: None,
        })
    }

    /// Stops [`run`](Self::run) after the step in progress once `flag` is set (e.g. by a
    /// SIGINT handler), with a checkpoint of that step.
    pub fn with_stop(mut self, flag: StopFlag) -> Self {
        self.stop = Some(flag);
        self
    }

    /// Optimiser steps completed.
    pub fn step(&self) -> usize {
        self.step
    }

    /// Optimiser steps of the whole run.
    pub fn total_steps(&self) -> usize {
        self.inner.total_steps()
    }

    /// The current model.
    pub fn model(&self) -> &CausalLm {
        &self.model
    }

    /// Consumes the trainer, returning the model.
    pub fn into_model(self) -> CausalLm {
        self.model
    }

    /// Trains until the run is done or `stop_after` more steps have run, logging each step
    /// and checkpointing every `checkpoint_every` steps and at the end.
    ///
    /// # Errors
    /// Batch, I/O and checkpoint errors.
    pub fn run(
        &mut self,
        stop_after: Option<usize>,
        mut on_step: impl FnMut(&StepRecord),
    ) -> Result<()> {
        let total = self.total_steps();
        let end = stop_after.map_or(total, |n| (self.step + n).min(total));
        while self.step < end {
            let (model, rec) =
                self.inner
                    .train_step(self.model.clone(), self.step, &self.device)?;
            self.model = model;
            self.log.append(&rec)?;
            on_step(&rec);
            self.step += 1;
            let stop = stop_requested(self.stop.as_ref());
            if stop || checkpoint_due(self.step, self.inner.cfg.checkpoint_every, total) {
                self.checkpoint()?;
            }
            if stop {
                break;
            }
        }
        Ok(())
    }

    /// Writes a checkpoint of the current state.
    ///
    /// # Errors
    /// I/O and serialisation errors.
    pub fn checkpoint(&self) -> Result<()> {
        self.run.save(
            self.step,
            self.inner.optim.step(),
            &self.model,
            self.inner.optim.optimizer(),
            &SftState {
                examples: self.inner.examples.len(),
            },
            &[],
        )
    }
}
