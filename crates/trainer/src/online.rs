//! The online RL loop: sampler → engine → rewarder → learner, with metrics and exact
//! checkpoint / resume.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Bytes, Device};
use rand::{SeedableRng, rngs::StdRng};
use rlft_models::CausalLm;
use rlft_rollout::{RolloutEngine, SamplingParams};
use rlft_samplers::{PromptSampler, SamplerState};
use serde::{Deserialize, Serialize};

use crate::atomic::{write_atomic, write_json_atomic};
use crate::collect::{Rewarder, collect_step};
use crate::error::{Result, TrainerError};
use crate::grpo::{GrpoConfig, GrpoLearner};
use crate::metrics::{MetricsLog, StepRecord};

/// Settings of an online run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OnlineConfig {
    /// Training steps (each: one rollout batch, [`GrpoConfig::steps_per_rollout`] updates).
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
    pub grpo: GrpoConfig,
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
            grpo: GrpoConfig::default(),
            checkpoint_every: 10,
            keep_checkpoints: 2,
        }
    }
}

/// Builds the generation engine for the current policy at each step: a local engine wraps the
/// model; a remote one may ignore it.
pub type EngineFactory<'a> = Box<dyn FnMut(&CausalLm) -> Result<Box<dyn RolloutEngine + 'a>> + 'a>;

/// What `latest.json` in a run directory records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// Steps completed when the checkpoint was written.
    pub step: usize,
    /// Optimiser steps taken.
    pub optimizer_step: usize,
    /// The checkpoint's directory, relative to the run directory.
    pub dir: String,
}

/// Derives the seed of stream `stream` at step `step` from the run seed (SplitMix64).
pub fn step_seed(seed: u64, step: u64, stream: u64) -> u64 {
    let mut z = seed
        .wrapping_add(step.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(stream.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// An online RL run in a directory: `metrics.jsonl`, `ckpt-NNNNNN/` checkpoints and
/// `latest.json`. Every part is passed in, so any sampler, engine or rewarder composes.
pub struct OnlineTrainer<'a> {
    cfg: OnlineConfig,
    dir: PathBuf,
    device: Device,
    model: CausalLm,
    reference: Option<CausalLm>,
    sampler: Box<dyn PromptSampler + 'a>,
    prompt_ids: Vec<Vec<u32>>,
    rewarder: &'a dyn Rewarder,
    engine: EngineFactory<'a>,
    learner: GrpoLearner,
    log: MetricsLog,
    step: usize,
    rollouts: u64,
}

impl std::fmt::Debug for OnlineTrainer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnlineTrainer")
            .field("dir", &self.dir)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

/// The parts of an online run.
pub struct OnlineParts<'a> {
    /// The policy, on an autodiff device.
    pub model: CausalLm,
    /// Reference policy for the KL term (needed when β > 0).
    pub reference: Option<CausalLm>,
    /// Prompt selection.
    pub sampler: Box<dyn PromptSampler + 'a>,
    /// Token ids of every training prompt, indexed by prompt id.
    pub prompt_ids: Vec<Vec<u32>>,
    /// Scores completions.
    pub rewarder: &'a dyn Rewarder,
    /// Builds the generation engine for the current policy (a local engine wraps the model;
    /// a remote one may ignore it).
    pub engine: EngineFactory<'a>,
}

impl<'a> OnlineTrainer<'a> {
    /// Starts a run in `dir`, or resumes it from `latest.json` if one is there (model,
    /// optimiser, sampler, step and rollout count; the metrics log is cut back to the
    /// checkpoint).
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
        if parts.sampler.num_prompts() != parts.prompt_ids.len() {
            return Err(TrainerError::Config {
                field: "sampler",
                reason: format!(
                    "sampler tracks {} prompts but {} prompt token lists were given",
                    parts.sampler.num_prompts(),
                    parts.prompt_ids.len()
                ),
            });
        }
        std::fs::create_dir_all(dir).map_err(|source| TrainerError::Io {
            op: "create",
            path: dir.to_path_buf(),
            source,
        })?;
        let total = cfg.steps * cfg.grpo.steps_per_rollout();
        let mut learner = GrpoLearner::new(cfg.grpo.clone(), total)?;
        let mut model = parts.model;
        let mut sampler = parts.sampler;
        let (mut step, mut rollouts) = (0, 0);
        if let Some(info) = read_latest(dir)? {
            let ck = dir.join(&info.dir);
            model = model
                .try_load_file(ck.join("model.bpk"))
                .map_err(|e| record_err(&ck, e))?;
            let bytes = read(&ck.join("optimizer.bpk"))?;
            let opt = cfg
                .grpo
                .optim
                .adamw()
                .from_bytes(Bytes::from_bytes_vec(bytes))
                .map_err(|e| record_err(&ck, e))?;
            learner.restore(opt, info.optimizer_step);
            let state: ResumeState = read_json(&ck.join("state.json"))?;
            sampler.restore(state.sampler)?;
            step = info.step;
            rollouts = state.rollouts;
        }
        let log = MetricsLog::open(&dir.join("metrics.jsonl"), step)?;
        Ok(Self {
            cfg,
            dir: dir.to_path_buf(),
            device: device.clone(),
            model,
            reference: parts.reference,
            sampler,
            prompt_ids: parts.prompt_ids,
            rewarder: parts.rewarder,
            engine: parts.engine,
            learner,
            log,
            step,
            rollouts,
        })
    }

    /// Steps completed.
    pub fn step(&self) -> usize {
        self.step
    }

    /// The current policy.
    pub fn model(&self) -> &CausalLm {
        &self.model
    }

    /// Consumes the trainer, returning the policy.
    pub fn into_model(self) -> CausalLm {
        self.model
    }

    /// Runs until `cfg.steps` steps are done or `stop_after` more steps have run, writing a
    /// metrics line per step and checkpoints. `on_step` sees each record.
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
            let rec = self.train_step()?;
            self.log.append(&rec)?;
            on_step(&rec);
            let every = self.cfg.checkpoint_every;
            if (every > 0 && self.step.is_multiple_of(every)) || self.step == self.cfg.steps {
                self.checkpoint()?;
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
            &self.prompt_ids,
            self.rewarder,
            &params,
        )?;
        drop(engine);
        let t_gen = t0.elapsed().as_secs_f64();
        self.rollouts += collected.rollouts as u64;
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
        rec.set("rollouts", self.rollouts as f64)
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
        self.step += 1;
        Ok(rec)
    }

    /// Writes `ckpt-NNNNNN/` (model, optimiser, sampler state, counters) and then points
    /// `latest.json` at it; a crash at any moment leaves the previous checkpoint usable.
    ///
    /// # Errors
    /// I/O and serialisation errors.
    pub fn checkpoint(&self) -> Result<()> {
        let name = format!("ckpt-{:06}", self.step);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let fin = self.dir.join(&name);
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|source| TrainerError::Io {
            op: "create",
            path: tmp.clone(),
            source,
        })?;
        self.model
            .clone()
            .save_file(tmp.join("model.bpk"))
            .map_err(|e| record_err(&tmp, e))?;
        let opt = self
            .learner
            .optimizer()
            .into_bytes()
            .map_err(|e| record_err(&tmp, e))?;
        write_atomic(&tmp.join("optimizer.bpk"), &opt)?;
        write_json_atomic(
            &tmp.join("state.json"),
            &ResumeState {
                sampler: self.sampler.state(),
                rollouts: self.rollouts,
            },
        )?;
        let _ = std::fs::remove_dir_all(&fin);
        std::fs::rename(&tmp, &fin).map_err(|source| TrainerError::Io {
            op: "rename",
            path: fin.clone(),
            source,
        })?;
        write_json_atomic(
            &self.dir.join("latest.json"),
            &CheckpointInfo {
                step: self.step,
                optimizer_step: self.learner.step(),
                dir: name,
            },
        )?;
        self.prune()
    }

    fn prune(&self) -> Result<()> {
        let mut ckpts: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map_err(|source| TrainerError::Io {
                op: "list",
                path: self.dir.clone(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("ckpt-"))
            })
            .collect();
        ckpts.sort();
        let keep = self.cfg.keep_checkpoints.max(1);
        for old in ckpts.iter().take(ckpts.len().saturating_sub(keep)) {
            let _ = std::fs::remove_dir_all(old);
        }
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct ResumeState {
    sampler: SamplerState,
    rollouts: u64,
}

fn record_err(path: &Path, e: burn::store::RecordError) -> TrainerError {
    TrainerError::Checkpoint {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| TrainerError::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    serde_json::from_slice(&read(path)?).map_err(|source| TrainerError::Json {
        path: path.to_path_buf(),
        source,
    })
}

fn read_latest(dir: &Path) -> Result<Option<CheckpointInfo>> {
    let p = dir.join("latest.json");
    if p.exists() {
        read_json(&p).map(Some)
    } else {
        Ok(None)
    }
}
