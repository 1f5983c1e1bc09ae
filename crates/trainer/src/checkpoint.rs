//! Run directories: `ckpt-NNNNNN/` checkpoints (model, optimiser, trainer state) and
//! `latest.json`, written so that a crash at any moment leaves the previous checkpoint usable.
//! Shared by the online RL trainer and the SFT trainer.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::Bytes;
use rlft_models::CausalLm;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::atomic::{write_atomic, write_json_atomic};
use crate::error::{Result, TrainerError};
use crate::optim::OptimConfig;

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

/// Whether a run that has completed `step` of `total` steps checkpoints now: every `every`
/// steps (0: never on a cadence) and always at the end.
pub(crate) fn checkpoint_due(step: usize, every: usize, total: usize) -> bool {
    (every > 0 && step.is_multiple_of(every)) || step == total
}

/// A flag that asks a training loop to stop after the step in progress (set from a signal
/// handler, another thread, a test).
pub type StopFlag = std::sync::Arc<std::sync::atomic::AtomicBool>;

pub(crate) fn stop_requested(flag: Option<&StopFlag>) -> bool {
    flag.is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst))
}

/// A checkpoint read back.
pub(crate) struct Restored<S> {
    pub info: CheckpointInfo,
    pub dir: PathBuf,
    pub model: CausalLm,
    pub optimizer: ModuleOptimizer,
    pub state: S,
}

/// A run directory holding checkpoints.
#[derive(Debug, Clone)]
pub(crate) struct RunDir {
    dir: PathBuf,
    keep: usize,
}

impl RunDir {
    /// Opens (and creates) `dir`, keeping the newest `keep` checkpoints (at least 1).
    pub(crate) fn create(dir: &Path, keep: usize) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| TrainerError::Io {
            op: "create",
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            keep: keep.max(1),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }

    /// The newest checkpoint, loaded into `model`'s structure, if there is one.
    pub(crate) fn restore<S: DeserializeOwned>(
        &self,
        model: CausalLm,
        optim: &OptimConfig,
    ) -> Result<Option<Restored<S>>> {
        let p = self.dir.join("latest.json");
        if !p.exists() {
            return Ok(None);
        }
        let info: CheckpointInfo = read_json(&p)?;
        let ck = self.dir.join(&info.dir);
        let model = model
            .try_load_file(ck.join("model.bpk"))
            .map_err(|e| record_err(&ck, e))?;
        let bytes = read(&ck.join("optimizer.bpk"))?;
        let optimizer = optim
            .adamw()
            .from_bytes(Bytes::from_bytes_vec(bytes))
            .map_err(|e| record_err(&ck, e))?;
        let state = read_json(&ck.join("state.json"))?;
        Ok(Some(Restored {
            info,
            dir: ck,
            model,
            optimizer,
            state,
        }))
    }

    /// Writes `ckpt-NNNNNN/` (model, optimiser, `state`) and then points `latest.json` at it.
    pub(crate) fn save<S: Serialize>(
        &self,
        step: usize,
        optimizer_step: usize,
        model: &CausalLm,
        optimizer: &ModuleOptimizer,
        state: &S,
        extra: &[(&str, &CausalLm)],
    ) -> Result<()> {
        let name = format!("ckpt-{step:06}");
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let fin = self.dir.join(&name);
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|source| TrainerError::Io {
            op: "create",
            path: tmp.clone(),
            source,
        })?;
        model
            .clone()
            .save_file(tmp.join("model.bpk"))
            .map_err(|e| record_err(&tmp, e))?;
        let opt = optimizer.into_bytes().map_err(|e| record_err(&tmp, e))?;
        write_atomic(&tmp.join("optimizer.bpk"), &opt)?;
        write_json_atomic(&tmp.join("state.json"), state)?;
        for (file, m) in extra {
            save_module(&tmp, file, m)?;
        }
        let _ = std::fs::remove_dir_all(&fin);
        std::fs::rename(&tmp, &fin).map_err(|source| TrainerError::Io {
            op: "rename",
            path: fin.clone(),
            source,
        })?;
        write_json_atomic(
            &self.dir.join("latest.json"),
            &CheckpointInfo {
                step,
                optimizer_step,
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
        for old in ckpts.iter().take(ckpts.len().saturating_sub(self.keep)) {
            let _ = std::fs::remove_dir_all(old);
        }
        Ok(())
    }
}

/// Writes a model to `dir/name` (a checkpoint's extra module, e.g. a synced reference).
pub(crate) fn save_module(dir: &Path, name: &str, model: &CausalLm) -> Result<()> {
    model
        .clone()
        .save_file(dir.join(name))
        .map_err(|e| record_err(dir, e))
}

/// Reads a model written by [`save_module`] into `template`'s structure.
pub(crate) fn load_module(dir: &Path, name: &str, template: CausalLm) -> Result<CausalLm> {
    template
        .try_load_file(dir.join(name))
        .map_err(|e| record_err(dir, e))
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

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    serde_json::from_slice(&read(path)?).map_err(|source| TrainerError::Json {
        path: path.to_path_buf(),
        source,
    })
}
