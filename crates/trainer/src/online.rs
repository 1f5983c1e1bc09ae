//! The online RL loop: sampler → engine → rewarder → learner, with metrics and exact
//! checkpoint / resume.

use std::path::Path;
use std::time::Instant;

use burn::tensor::Device;
use rand::{SeedableRng, rngs::StdRng};
use rlft_models::CausalLm;
use rlft_rollout::{RolloutEngine, SamplingParams};
use rlft_samplers::{PromptSampler, SamplerState};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{RunDir, StopFlag, checkpoint_due, load_module, stop_requested};
use crate::collect::{RolloutSource, collect_step};
use crate::error::{Result, TrainerError};
use crate::learner::{Learner, LearnerConfig};
use crate::metrics::{MetricsLog, StepRecord};
use crate::terms::Term;

/// Settings of an online run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OnlineConfig {
    /// Training steps (each: one rollout batch, [`LearnerConfig::steps_per_rollout`] updates).
    /// Default 100.
    pub steps: usize,
    /// Run seed: prompt selection and sampling of step t use seeds derived from (seed, t), so
    /// a resumed run repeats them. Default 0.
    pub seed: u64,
    /// Generation settings. `n` is the group size the sampler was built with (the sampler
    /// sets the rollouts of each request). Default [`SamplingParams::default`] with n = 8
    /// (TRL's `num_generations`).
    pub sampling: SamplingParams,
    /// The policy update.
    pub grpo: LearnerConfig,
    /// Write a checkpoint every this many steps (0: only at the end). Default 10.
    pub checkpoint_every: usize,
    /// Keep this many checkpoints on disk. Default 2.
    pub keep_checkpoints: usize,
}

impl Default for OnlineConfig {
    fn default() -> Self {
        Self {
            steps: 100,
            seed: 0,
            sampling: SamplingParams {
                n: 8,
                ..SamplingParams::default()
            },
            grpo: LearnerConfig::default(),
            checkpoint_every: 10,
            keep_checkpoints: 2,
        }
    }
}

/// Builds the generation engine for the current policy at each step: a local engine wraps the
/// model; a remote one may ignore it.
pub type EngineFactory<'a> = Box<dyn FnMut(&CausalLm) -> Result<Box<dyn RolloutEngine + 'a>> + 'a>;

/// A periodic evaluation: the current policy in, named values out (e.g. `heldout/pass1`),
/// added to that step's metrics line. It must be deterministic (greedy decoding, fixed seeds)
/// for a resumed run to log what an uninterrupted one did.
pub type EvalHook<'a> = Box<dyn FnMut(&CausalLm) -> Result<Vec<(String, f64)>> + 'a>;

/// Derives the seed of stream `stream` at step `step` from the run seed (SplitMix64; see
/// [`rlft_util::seed::step_seed`]).
pub use rlft_util::seed::step_seed;

/// An online RL run in a directory: `metrics.jsonl`, `ckpt-NNNNNN/` checkpoints and
/// `latest.json`. Every part is passed in, so any sampler, rollout source, engine or objective
/// composes.
pub struct OnlineTrainer<'a> {
    cfg: OnlineConfig,
    run: RunDir,
    device: Device,
    model: CausalLm,
    reference: Option<CausalLm>,
    reference_synced: bool,
    sampler: Box<dyn PromptSampler + 'a>,
    source: Box<dyn RolloutSource + 'a>,
    engine: EngineFactory<'a>,
    learner: Learner,
    log: MetricsLog,
    step: usize,
    eval: Option<(usize, EvalHook<'a>)>,
    stop: Option<StopFlag>,
}

impl std::fmt::Debug for OnlineTrainer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnlineTrainer")
            .field("dir", &self.run.path())
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

/// The parts of an online run.
pub struct OnlineParts<'a> {
    /// The policy, on an autodiff device.
    pub model: CausalLm,
    /// Reference policy for KL terms (needed when a term has β > 0). A
    /// `sync_reference_at` step sets it to the policy (and creates it if absent).
    pub reference: Option<CausalLm>,
    /// Prompt selection.
    pub sampler: Box<dyn PromptSampler + 'a>,
    /// Where rollouts come from: [`SingleTurn`](crate::SingleTurn) (prompt ids and a
    /// rewarder) or [`MultiTurn`](crate::MultiTurn) (an environment's episodes).
    pub source: Box<dyn RolloutSource + 'a>,
    /// Builds the generation engine for the current policy (a local engine wraps the model;
    /// a remote one may ignore it).
    pub engine: EngineFactory<'a>,
    /// The objective terms; empty: the single term `cfg.grpo` describes (its `advantage` and
    /// `loss` on the conditional scorer).
    pub terms: Vec<Term>,
}

impl<'a> OnlineTrainer<'a> {
    /// Starts a run in `dir`, or resumes it from `latest.json` if one is there (model,
    /// optimiser, sampler, step counters and a synced reference; the metrics log is cut back
    /// to the checkpoint).
    ///
    /// # Errors
    /// Config validation, I/O and checkpoint errors.
    pub fn open(
        cfg: OnlineConfig,
        dir: &Path,
        parts: OnlineParts<'a>,
        device: &Device,
    ) -> Result<Self> {
        cfg.grpo.validate()?;
        if parts.sampler.num_prompts() != parts.source.num_prompts() {
            return Err(TrainerError::Config {
                field: "sampler",
                reason: format!(
                    "sampler tracks {} prompts but the rollout source has {}",
                    parts.sampler.num_prompts(),
                    parts.source.num_prompts()
                ),
            });
        }
        let run = RunDir::create(dir, cfg.keep_checkpoints)?;
        let total = cfg.steps * cfg.grpo.steps_per_rollout();
        let mut learner = if parts.terms.is_empty() {
            Learner::new(cfg.grpo.clone(), total)?
        } else {
            Learner::with_terms(cfg.grpo.clone(), total, parts.terms)?
        };
        let mut model = parts.model;
        let mut reference = parts.reference;
        let mut reference_synced = false;
        let mut sampler = parts.sampler;
        let mut step = 0;
        if let Some(r) = run.restore::<ResumeState>(model.clone(), &cfg.grpo.optim)? {
            model = r.model;
            learner.restore(r.optimizer, r.info.optimizer_step, r.info.step);
            sampler.restore(r.state.sampler)?;
            if r.state.reference_synced {
                reference = Some(load_module(&r.dir, "reference.bpk", model.clone())?);
                reference_synced = true;
            }
            step = r.info.step;
        }
        let log = MetricsLog::open(&dir.join("metrics.jsonl"), step)?;
        Ok(Self {
            cfg,
            run,
            device: device.clone(),
            model,
            reference,
            reference_synced,
            sampler,
            source: parts.source,
            engine: parts.engine,
            learner,
            log,
            step,
            eval: None,
            stop: None,
        })
    }

    /// Runs `hook` on the policy after every `every` steps and after the last one, adding
    /// its values to that step's metrics line (e.g. held-out accuracy during training).
    pub fn with_eval(mut self, every: usize, hook: EvalHook<'a>) -> Self {
        self.eval = Some((every.max(1), hook));
        self
    }

    /// Stops [`run`](Self::run) after the step in progress once `flag` is set (e.g. by a
    /// SIGINT handler), with a checkpoint of that step.
    pub fn with_stop(mut self, flag: StopFlag) -> Self {
        self.stop = Some(flag);
        self
    }

    /// Steps completed.
    pub fn step(&self) -> usize {
        self.step
    }

    /// The current policy.
    pub fn model(&self) -> &CausalLm {
        &self.model
    }

    /// The reference policy, if any.
    pub fn reference(&self) -> Option<&CausalLm> {
        self.reference.as_ref()
    }

    /// The learner (terms, counters).
    pub fn learner(&self) -> &Learner {
        &self.learner
    }

    /// Consumes the trainer, returning the policy.
    pub fn into_model(self) -> CausalLm {
        self.model
    }

    /// Runs until `cfg.steps` steps are done or `stop_after` more steps have run, writing a
    /// metrics line per step and checkpoints. `on_step` sees each record. A set
    /// [`with_stop`](Self::with_stop) flag ends the loop after the current step, checkpointed.
    ///
    /// # Errors
    /// Any error of the parts; I/O.
    pub fn run(
        &mut self,
        stop_after: Option<usize>,
        mut on_step: impl FnMut(&StepRecord),
    ) -> Result<()> {
        let end = stop_after.map_or(self.cfg.steps, |n| (self.step + n).min(self.cfg.steps));
        while self.step < end {
            let mut rec = self.train_step()?;
            if let Some((every, hook)) = self.eval.as_mut()
                && (self.step.is_multiple_of(*every) || self.step == self.cfg.steps)
            {
                for (name, v) in hook(&self.model)? {
                    rec.set(name, v);
                }
            }
            self.log.append(&rec)?;
            on_step(&rec);
            let stop = stop_requested(self.stop.as_ref());
            if stop || checkpoint_due(self.step, self.cfg.checkpoint_every, self.cfg.steps) {
                self.checkpoint()?;
            }
            if stop {
                break;
            }
        }
        Ok(())
    }

    fn train_step(&mut self) -> Result<StepRecord> {
        let t0 = Instant::now();
        let step = self.step as u64;
        let mut rng = StdRng::seed_from_u64(step_seed(self.cfg.seed, step, 1));
        let mut params = self.cfg.sampling.clone();
        params.seed = Some(step_seed(self.cfg.seed, step, 2));
        let engine = (self.engine)(&self.model)?;
        let collected = collect_step(
            step,
            self.sampler.as_mut(),
            &mut rng,
            engine.as_ref(),
            self.source.as_ref(),
            &params,
        )?;
        drop(engine);
        let t_gen = t0.elapsed().as_secs_f64();
        let synced = self.learner.reference_sync_due();
        if synced {
            // DSRL's reincarnation: the reference becomes the current policy, exactly.
            self.reference = Some(self.model.clone());
            self.reference_synced = true;
        }
        let model = self.model.clone();
        let (model, mut rec) = self.learner.update(
            model,
            self.reference.as_ref(),
            &collected.groups,
            &self.device,
        )?;
        self.model = model;
        let secs = t0.elapsed().as_secs_f64();
        rec.step = self.step;
        rec.set(
            "rollouts",
            self.sampler.accounting().rollouts_generated as f64,
        )
        .set(
            "effective_ratio",
            collected.mixed_groups as f64 / collected.groups.len().max(1) as f64,
        )
        .set(
            "gen_tokens_per_s",
            collected.tokens as f64 / t_gen.max(1e-9),
        )
        .set("tokens_per_s", collected.tokens as f64 / secs.max(1e-9))
        .set("seconds", secs);
        // Per-reward-function means (`reward/<name>`) and other values the source reports.
        for (name, v) in self.source.take_metrics() {
            rec.set(name, v);
        }
        // Reasoning-behaviour counters (spec prerl.md §3), mean per trained completion: SEAL's
        // substring matching, and whole words (`_words`).
        let texts = || {
            collected
                .groups
                .iter()
                .flat_map(|g| g.completions.iter().map(|c| c.text.as_str()))
        };
        let (transition, reflection) = rlft_tasks::mean_thoughts(texts());
        let (transition_w, reflection_w) =
            rlft_tasks::mean_thoughts_with(texts(), rlft_tasks::KeywordMatch::Words);
        rec.set("thoughts/transition", transition)
            .set("thoughts/reflection", reflection)
            .set("thoughts/transition_words", transition_w)
            .set("thoughts/reflection_words", reflection_w);
        if !self.cfg.grpo.sync_reference_at.is_empty() {
            rec.set("reference_synced", if synced { 1.0 } else { 0.0 });
        }
        self.step += 1;
        Ok(rec)
    }

    /// Writes `ckpt-NNNNNN/` (model, optimiser, sampler state, counters, a synced reference)
    /// and then points `latest.json` at it; a crash at any moment leaves the previous
    /// checkpoint usable.
    ///
    /// # Errors
    /// I/O and serialisation errors.
    pub fn checkpoint(&self) -> Result<()> {
        let reference = self
            .reference
            .as_ref()
            .filter(|_| self.reference_synced)
            .map(|r| ("reference.bpk", r));
        self.run.save(
            self.step,
            self.learner.step(),
            &self.model,
            self.learner.optimizer(),
            &ResumeState {
                sampler: self.sampler.state(),
                reference_synced: self.reference_synced,
            },
            reference.as_slice(),
        )
    }
}

#[derive(Serialize, Deserialize)]
struct ResumeState {
    sampler: SamplerState,
    #[serde(default)]
    reference_synced: bool,
}
