//! Run safety for the commands that own a run directory (`train`, `sft`, `drift`): the
//! `--force-resume` / `--restart` / `--nan-policy` flags, opening a run directory through
//! [`RunGuard`] (lock, fingerprint, out outside the model), and Ctrl-C (finish the step,
//! checkpoint, say how to resume). The logic itself lives in rlft-trainer's `run_guard`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use clap::{Args, ValueEnum};
use rlft_trainer::{Fingerprint, NanPolicy, OptimConfig, ResumePolicy, RunGuard, StopFlag};
use serde::Serialize;

/// Flags of every command that owns a run directory.
#[derive(Args, Debug, Clone, Default)]
pub struct RunFlags {
    /// Resume the run in the run directory even though its config, model or data differ from
    /// those it was started with (the differences are printed).
    #[arg(long, conflicts_with = "restart")]
    pub force_resume: bool,
    /// Delete the run in the run directory (checkpoints, metrics, outputs) and start over.
    #[arg(long)]
    pub restart: bool,
    /// A step whose loss or gradient norm is NaN or infinite: `stop` the run before applying
    /// it (default) or `skip-step` (leave the model unchanged and go on). Overrides the
    /// config's `optim.nan_policy`.
    #[arg(long, value_enum)]
    pub nan_policy: Option<NanFlag>,
}

/// `--nan-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NanFlag {
    /// Stop with an error before the step is applied.
    Stop,
    /// Skip the update and go on.
    SkipStep,
}

impl RunFlags {
    /// What to do with a run whose fingerprint differs.
    pub fn policy(&self) -> ResumePolicy {
        if self.restart {
            ResumePolicy::Restart
        } else if self.force_resume {
            ResumePolicy::Force
        } else {
            ResumePolicy::Check
        }
    }

    /// Applies `--nan-policy` to `optim`.
    pub fn apply_nan_policy(&self, optim: &mut OptimConfig) {
        if let Some(f) = self.nan_policy {
            optim.nan_policy = match f {
                NanFlag::Stop => NanPolicy::Stop,
                NanFlag::SkipStep => NanPolicy::SkipStep,
            };
        }
    }
}

/// Config keys left out of fingerprints: the run directory itself, and the NaN policy (which
/// a resume may change, e.g. to skip the step a run stopped at).
pub const IGNORED_KEYS: [&str; 2] = ["out", "*.nan_policy"];

/// The fingerprint of a run: `config` without `ignore` keys (plus [`IGNORED_KEYS`]), and the
/// contents of each named input path (a model directory, a data file).
pub fn fingerprint<T: Serialize>(
    config: &T,
    ignore: &[&str],
    inputs: &[(&str, &Path)],
) -> anyhow::Result<Fingerprint> {
    let keys: Vec<&str> = IGNORED_KEYS.iter().chain(ignore).copied().collect();
    let mut fp = Fingerprint::of_config(config, &keys)?;
    for (name, path) in inputs {
        fp = fp.path(name, path)?;
    }
    Ok(fp)
}

/// Opens `out` for a run: refuses it inside a model directory, locks it, checks and records
/// the fingerprint (see [`RunGuard::open`]) and prints the differences `--force-resume`
/// accepted. Hold the guard until the run ends.
pub fn open_run(
    out: &Path,
    models: &[&Path],
    fp: &Fingerprint,
    flags: &RunFlags,
) -> anyhow::Result<RunGuard> {
    let guard = RunGuard::open(out, models, fp, flags.policy())?;
    if !guard.accepted_changes().is_empty() {
        eprintln!(
            "--force-resume: resuming {} although it was started with a different setup:\n  {}",
            out.display(),
            guard.accepted_changes().join("\n  ")
        );
    }
    Ok(guard)
}

/// A run stopped by Ctrl-C after checkpointing; `main` exits with 130 on it.
#[derive(Debug)]
pub struct Interrupted {
    /// Steps completed.
    pub step: usize,
    /// Steps of the whole run.
    pub total: usize,
    /// The run directory.
    pub dir: std::path::PathBuf,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "interrupted: finished step {} of {} and checkpointed it in {}; run the same command again to resume",
            self.step,
            self.total,
            self.dir.display()
        )
    }
}

impl std::error::Error for Interrupted {}

static GRACEFUL: AtomicBool = AtomicBool::new(false);
static STOP: OnceLock<StopFlag> = OnceLock::new();

/// Installs the Ctrl-C handler (once) and returns the flag it sets. Outside a training loop
/// ([`Graceful`]) Ctrl-C stops the process at once with a message (completed checkpoints and
/// shards are kept); inside one the first Ctrl-C sets the flag, so the loop finishes its step
/// and checkpoints, and a second one stops at once.
pub fn stop_flag() -> StopFlag {
    STOP.get_or_init(|| {
        let flag: StopFlag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        let installed = ctrlc::set_handler(move || {
            if GRACEFUL.load(Ordering::SeqCst) && !f.swap(true, Ordering::SeqCst) {
                eprintln!(
                    "\ninterrupt: finishing the current step, then checkpointing (Ctrl-C again stops at once)"
                );
            } else {
                eprintln!(
                    "\ninterrupted: stopped at once; completed checkpoints and shards are kept, so running the same command again resumes from the last one"
                );
                std::process::exit(130);
            }
        });
        if let Err(e) = installed {
            eprintln!("warning: Ctrl-C will stop the run without a checkpoint: {e}");
        }
        flag
    })
    .clone()
}

/// While alive, Ctrl-C asks the training loop to stop after its step instead of ending the
/// process.
pub struct Graceful;

impl Graceful {
    /// Enters graceful mode.
    pub fn new() -> Self {
        stop_flag();
        GRACEFUL.store(true, Ordering::SeqCst);
        Graceful
    }
}

impl Drop for Graceful {
    fn drop(&mut self) {
        GRACEFUL.store(false, Ordering::SeqCst);
    }
}

/// Whether Ctrl-C asked the run to stop.
pub fn interrupted() -> bool {
    STOP.get().is_some_and(|f| f.load(Ordering::SeqCst))
}
