//! `rlft drift collect|train|eval|run --config drift.toml`: DRIFT end to end (spec drift.md):
//! K try-again episodes per prompt from a fixed reference policy (local model, or any
//! OpenAI-compatible server), weights exp(R/β) normalised per prompt, weighted SFT on the last
//! assistant turn, multi-turn evaluation (multi@k, repeat and correction rates).
//!
//! Layout of `out/`: `collect/` (shards `shard-NNNNNN.jsonl` + `collect.json`), `train/` (an
//! `rlft sft`-style run directory, `final/` = the trained checkpoint), `eval.json`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use rlft_drift::{
    CollectConfig, EpisodeSetup, MultiTurnReport, WeightConfig, collect, evaluate_multi_turn,
    examples, read_rows, weigh,
};
use rlft_models::{CausalLm, ChatTokenizer};
use rlft_rollout::{HttpConfig, HttpEngine, LocalConfig, RolloutEngine, SamplingParams};
use rlft_tasks::{
    Dataset, DatasetConfig, ExactMatchConfig, SplitConfig, TaskItem, TryAgain, TryAgainConfig,
    VerifierConfig,
};
use rlft_trainer::{
    LossTurns, LrSchedule, OptimConfig, SftConfig, SftTrainer, TemplateRender, write_json_atomic,
};
use serde::{Deserialize, Serialize};

use crate::common::{ModelSection, Progress, export, load_checkpoint, load_toml, out_dir, resolve};
use crate::device::{Backend, device};
use crate::runs::{self, Graceful, Interrupted, RunFlags};

/// `rlft drift <stage>`.
#[derive(Args, Debug, Clone)]
pub struct DriftArgs {
    /// The stage to run.
    #[command(subcommand)]
    pub stage: Stage,
}

/// The stages of DRIFT.
#[derive(Subcommand, Debug, Clone)]
pub enum Stage {
    /// Sample K try-again episodes per prompt from the reference policy (resumable).
    Collect(StageArgs),
    /// Weight the collected (or any DRIFT-format) rows and run weighted SFT (resumable).
    Train(StageArgs),
    /// multi@k, repeat and correction rates of the reference and of the trained model.
    Eval(StageArgs),
    /// collect, then train, then eval.
    Run(StageArgs),
}

/// Options shared by every stage.
#[derive(Args, Debug, Clone)]
pub struct StageArgs {
    /// The TOML config (format: docs/drift.md and docs/cli.md).
    #[arg(long)]
    pub config: PathBuf,
    /// Run directory, overriding the config's `out`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Load and check everything (config, model, data, environment, existing collection),
    /// print the plan, and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// Collection: stop after writing this many shards (run again to resume).
    #[arg(long)]
    pub max_shards: Option<usize>,
    /// Training: stop after this many optimiser steps (run again to resume).
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// `--force-resume`, `--restart` (of the collection and training stages run),
    /// `--nan-policy` (training).
    #[command(flatten)]
    pub run: RunFlags,
}

/// The TOML file of `rlft drift`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftFile {
    /// Run directory (relative to the config file).
    pub out: PathBuf,
    /// `flex` (default), `wgpu` or `cuda`.
    #[serde(default)]
    pub device: Backend,
    /// The reference policy π_ref, also the initial model of training (DRIFT fine-tunes the
    /// checkpoint it sampled from).
    pub model: ModelSection,
    /// The prompts.
    pub data: DriftData,
    /// How answers are checked. Default `exact_match` (DRIFT's lower-case, whitespace-free
    /// string equality).
    #[serde(default = "exact_match")]
    pub verifier: VerifierConfig,
    /// The try-again protocol (defaults: DRIFT's, see docs/tasks.md).
    #[serde(default)]
    pub environment: TryAgainConfig,
    /// `[reference] url`: sample from an OpenAI-compatible server (vLLM, SGLang, `rlft serve`)
    /// instead of the local model.
    #[serde(default)]
    pub reference: Option<HttpConfig>,
    /// K, turns, shard size, seed, sampling (defaults: `run_generate_data.sh`).
    #[serde(default)]
    pub collect: CollectConfig,
    /// β, γ, λ, mode and filter order (defaults: `run_weight_sft.sh`).
    #[serde(default)]
    pub weights: WeightConfig,
    /// Weighted SFT.
    #[serde(default)]
    pub train: TrainSection,
    /// Multi-turn evaluation.
    #[serde(default)]
    pub eval: EvalSection,
    /// The local generation engine.
    #[serde(default)]
    pub engine: LocalConfig,
}

fn exact_match() -> VerifierConfig {
    VerifierConfig::ExactMatch {
        config: ExactMatchConfig::default(),
        format_score: None,
    }
}

/// `[data]`: prompts and gold answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftData {
    /// JSONL of task items.
    pub path: PathBuf,
    /// Field names.
    #[serde(default)]
    pub fields: DatasetConfig,
    /// Held-out fraction for evaluation (hash split on ids). Default 0: evaluate on the
    /// collected prompts.
    #[serde(default)]
    pub test_fraction: f64,
    /// Split seed. Default 42.
    #[serde(default = "seed42")]
    pub split_seed: u64,
    /// Use only the first N training prompts (DRIFT: 1800). Default all.
    #[serde(default)]
    pub limit: Option<usize>,
}

fn seed42() -> u64 {
    42
}

/// `[train]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    /// Train on these DRIFT rows (a JSONL file or a directory of shards, e.g. made by the
    /// paper's Python code) instead of `out/collect`.
    #[serde(default)]
    pub rows: Option<PathBuf>,
    /// `last` (DRIFT) or `all` assistant turns carry loss.
    #[serde(default)]
    pub loss_turns: LossTurns,
    /// Warmup as a fraction of the optimiser steps, used when `sft.optim.warmup_steps` is 0.
    /// Default 0.1: `run_weight_sft.sh`.
    #[serde(default = "warmup_ratio")]
    pub warmup_ratio: f64,
    /// The SFT loop. Default: DRIFT's `run_weight_sft.sh` (lr 5e-6, constant schedule after
    /// warmup, weight decay 0.1, clip 1.0, 1 epoch, batch 128, no shuffle, seed 42). A table
    /// that is given starts from `rlft sft`'s defaults for the keys it omits.
    #[serde(default = "drift_sft")]
    pub sft: SftConfig,
}

impl Default for TrainSection {
    fn default() -> Self {
        Self {
            rows: None,
            loss_turns: LossTurns::Last,
            warmup_ratio: warmup_ratio(),
            sft: drift_sft(),
        }
    }
}

fn warmup_ratio() -> f64 {
    0.1
}

/// DRIFT's training settings (`scripts/run_weight_sft.sh`, spec §3–4).
pub fn drift_sft() -> SftConfig {
    SftConfig {
        epochs: 1,
        batch_size: 128,
        grad_accum_steps: 1,
        optim: OptimConfig {
            lr: 5e-6,
            weight_decay: 0.1,
            max_grad_norm: Some(1.0),
            schedule: LrSchedule::Constant,
            ..OptimConfig::default()
        },
        seed: 42,
        shuffle: false,
        ..SftConfig::default()
    }
}

/// `[eval]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSection {
    /// Most new tokens per turn. Default 1024: `run_all_benchmark.sh`.
    #[serde(default = "tokens1024")]
    pub max_new_tokens: usize,
    /// Episodes run as one batch. Default 64.
    #[serde(default = "chunk")]
    pub chunk: usize,
    /// Evaluate the reference policy too. Default true.
    #[serde(default = "yes")]
    pub reference: bool,
}

impl Default for EvalSection {
    fn default() -> Self {
        Self {
            max_new_tokens: tokens1024(),
            chunk: chunk(),
            reference: true,
        }
    }
}

fn tokens1024() -> usize {
    1024
}

fn chunk() -> usize {
    64
}

fn yes() -> bool {
    true
}

/// What `eval.json` holds.
#[derive(Debug, Serialize, Deserialize)]
pub struct EvalOutput {
    /// The reference policy's scores.
    pub reference: Option<MultiTurnReport>,
    /// The trained model's scores (absent before training finished).
    pub trained: Option<MultiTurnReport>,
}

struct Loaded {
    file: DriftFile,
    out: PathBuf,
    train_items: Vec<TaskItem>,
    test_items: Vec<TaskItem>,
}

fn load(args: &StageArgs) -> anyhow::Result<Loaded> {
    let file: DriftFile = load_toml(&args.config)?;
    let ctx = || format!("config {}", args.config.display());
    file.collect.validate().with_context(ctx)?;
    file.weights.validate().with_context(ctx)?;
    file.environment.validate().with_context(ctx)?;
    file.train.sft.validate().with_context(ctx)?;
    if !(0.0..1.0).contains(&file.train.warmup_ratio) {
        bail!(
            "{}: invalid config value for train.warmup_ratio: must be in [0, 1), got {}",
            ctx(),
            file.train.warmup_ratio
        );
    }
    crate::common::check_generation(&file.collect.sampling, "collect.sampling", &file.engine)
        .with_context(ctx)?;
    if file.eval.chunk == 0 {
        bail!(
            "{}: invalid config value for eval.chunk: must be ≥ 1, got 0",
            ctx()
        );
    }
    let path = resolve(&args.config, &file.data.path);
    let data = Dataset::from_jsonl(&path, &file.data.fields)?;
    let (mut train, test) = if file.data.test_fraction > 0.0 {
        let s = data.split(&SplitConfig {
            test_fraction: file.data.test_fraction,
            seed: file.data.split_seed,
        })?;
        (s.train.into_items(), s.test.into_items())
    } else {
        (data.into_items(), Vec::new())
    };
    if let Some(n) = file.data.limit {
        train.truncate(n);
    }
    if train.is_empty() {
        bail!("data.path {}: no training prompts", path.display());
    }
    let test_items = if test.is_empty() { train.clone() } else { test };
    Ok(Loaded {
        out: out_dir(args.out.as_deref(), &args.config, &file.out),
        file,
        train_items: train,
        test_items,
    })
}

fn environment(file: &DriftFile) -> anyhow::Result<TryAgain<rlft_tasks::DynVerifier>> {
    Ok(TryAgain::new(
        file.verifier.build()?,
        file.environment.clone(),
    )?)
}

/// Runs `rlft drift <stage>`; returns the path of what the stage wrote last. `out` is locked
/// for the whole command, and never inside the model directory.
pub fn run(args: &DriftArgs) -> anyhow::Result<PathBuf> {
    let a = match &args.stage {
        Stage::Collect(a) | Stage::Train(a) | Stage::Eval(a) | Stage::Run(a) => a,
    };
    let l = load(a)?;
    rlft_trainer::check_out_dir(&l.out, &resolve(&a.config, &l.file.model.path))?;
    runs::stop_flag();
    let _lock = if a.dry_run {
        None
    } else {
        Some(rlft_trainer::RunLock::acquire(&l.out)?)
    };
    match &args.stage {
        Stage::Collect(_) => stage_collect(&l, a),
        Stage::Train(_) => stage_train(&l, a),
        Stage::Eval(_) => stage_eval(&l, a),
        Stage::Run(_) => {
            let c = stage_collect(&l, a)?;
            if a.dry_run || a.max_shards.is_some() && !collection_complete(&l)? {
                return Ok(c);
            }
            let t = stage_train(&l, a)?;
            if a.dry_run || !l.out.join("train/final").exists() {
                return Ok(t);
            }
            stage_eval(&l, a)
        }
    }
}

fn collection_complete(l: &Loaded) -> anyhow::Result<bool> {
    let shards = l
        .train_items
        .len()
        .div_ceil(l.file.collect.prompts_per_shard);
    Ok((0..shards).all(|s| rlft_drift::shard_path(&l.out.join("collect"), s).exists()))
}

fn engine_for(
    l: &Loaded,
    model: &CausalLm,
    tok: &ChatTokenizer,
) -> anyhow::Result<Box<dyn RolloutEngine>> {
    Ok(match &l.file.reference {
        Some(http) => Box::new(HttpEngine::new(http.clone())?),
        None => Box::new(crate::common::local_engine(tok, &l.file.engine, model)?),
    })
}

fn stage_collect(l: &Loaded, a: &StageArgs) -> anyhow::Result<PathBuf> {
    let dir = l.out.join("collect");
    let dev = device(l.file.device)?;
    let (model, tok) = l.file.model.load(&a.config, &dev)?;
    let env = environment(&l.file)?;
    let cfg = &l.file.collect;
    if a.dry_run {
        eprintln!(
            "drift collect (dry run): {} prompts × K = {} trajectories, ≤ {} turns, {} shards of {} prompts → {}; reference {}",
            l.train_items.len(),
            cfg.k,
            cfg.max_turns,
            l.train_items.len().div_ceil(cfg.prompts_per_shard),
            cfg.prompts_per_shard,
            dir.display(),
            l.file
                .reference
                .as_ref()
                .map_or("local model".to_string(), |h| h.base_url.clone())
        );
        return Ok(dir);
    }
    // The collection's own manifest (collect.json) refuses other settings or prompts; the
    // fingerprint adds the model and the data, and --force-resume / --restart.
    let fp = runs::fingerprint(
        &l.file,
        &["train", "eval"],
        &[
            ("model", &resolve(&a.config, &l.file.model.path)),
            ("data", &resolve(&a.config, &l.file.data.path)),
        ],
    )?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let resumable = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().starts_with("shard-"));
    rlft_trainer::check_fingerprint(&dir, &fp, resumable, a.run.policy())?;
    let engine = engine_for(l, &model, &tok)?;
    let render = TemplateRender(&tok);
    let setup = EpisodeSetup {
        engine: engine.as_ref(),
        env: &env,
        render: &render,
    };
    let t0 = Instant::now();
    let bar = Progress::new("collect", 0, l.train_items.len() as u64);
    let sum = collect(&setup, &l.train_items, &dir, cfg, a.max_shards, &mut |p| {
        bar.set(
            p.prompts_done as u64,
            format!(
                "{:.2} prompts/s, {:.1} trajectories/s",
                (p.trajectories / cfg.k) as f64 / p.seconds.max(1e-9),
                p.trajectories as f64 / p.seconds.max(1e-9)
            ),
        )
    })?;
    bar.finish();
    eprintln!(
        "drift collect: {} shards written, {} skipped, {} trajectories, {} turns in {:.0}s{}",
        sum.shards_written,
        sum.shards_skipped,
        sum.trajectories,
        sum.turns,
        t0.elapsed().as_secs_f64(),
        if sum.complete {
            String::new()
        } else {
            "; run the same command again to resume".into()
        }
    );
    write_json_atomic(&dir.join("summary.json"), &sum)?;
    Ok(dir)
}

fn stage_train(l: &Loaded, a: &StageArgs) -> anyhow::Result<PathBuf> {
    let rows_path = l
        .file
        .train
        .rows
        .as_ref()
        .map_or_else(|| l.out.join("collect"), |p| resolve(&a.config, p));
    let dev = device(l.file.device)?.autodiff();
    let (model, tok) = l.file.model.load(&a.config, &dev)?;
    if a.dry_run && !rows_path.exists() {
        eprintln!(
            "drift train (dry run): rows {} do not exist yet (collect first)",
            rows_path.display()
        );
        return Ok(rows_path);
    }
    let rows = read_rows(&rows_path)?;
    if rows.is_empty() {
        bail!("{}: no DRIFT rows", rows_path.display());
    }
    let weighted = weigh(&rows, &l.file.weights)?;
    let ex = examples(&rows, &weighted, &tok, l.file.train.loss_turns)?;
    if ex.is_empty() {
        bail!(
            "{}: no row can be trained on with these weights",
            rows_path.display()
        );
    }
    let mut cfg = l.file.train.sft.clone();
    if let Some(pad) = tok.pad_token_id() {
        cfg.pad_id = pad;
    }
    if cfg.optim.warmup_steps == 0 {
        cfg.optim.warmup_steps =
            (l.file.train.warmup_ratio * cfg.total_steps(ex.len()) as f64).ceil() as usize;
    }
    let dir = l.out.join("train");
    if a.dry_run {
        eprintln!(
            "drift train (dry run): {} rows, {} trained (β = {}, mode {:?}), {} optimiser steps → {}",
            rows.len(),
            ex.len(),
            l.file.weights.beta,
            l.file.weights.mode,
            cfg.total_steps(ex.len()),
            dir.display()
        );
        return Ok(dir);
    }
    let fp = rlft_trainer::Fingerprint::of_config(
        &l.file,
        &[&runs::IGNORED_KEYS[..], &["collect", "eval", "reference"]].concat(),
    )?
    .path("model", &resolve(&a.config, &l.file.model.path))?
    .path_with("rows", &rows_path, |n| n.ends_with(".jsonl"))?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    rlft_trainer::check_fingerprint(&dir, &fp, dir.join("latest.json").exists(), a.run.policy())?;
    a.run.apply_nan_policy(&mut cfg.optim);
    let mut trainer = SftTrainer::open(cfg, &dir, model, &ex, &dev)?.with_stop(runs::stop_flag());
    let total = trainer.total_steps();
    let bar = Progress::new("drift train", trainer.step() as u64, total as u64);
    let graceful = Graceful::new();
    trainer.run(a.max_steps, |r| {
        bar.set(
            r.step as u64 + 1,
            format!("nll {:.4}", r.get("nll").unwrap_or(f64::NAN)),
        )
    })?;
    bar.finish();
    drop(graceful);
    if runs::interrupted() && trainer.step() < total {
        return Err(Interrupted {
            step: trainer.step(),
            total,
            dir,
        }
        .into());
    }
    if trainer.step() < total {
        eprintln!(
            "stopped after step {} of {total}; run the same command again to resume",
            trainer.step()
        );
        return Ok(dir.join("latest.json"));
    }
    let final_dir = dir.join("final");
    export(
        &trainer.into_model(),
        &resolve(&a.config, &l.file.model.path),
        &final_dir,
    )?;
    eprintln!(
        "drift train: {} examples, {total} steps → {}",
        ex.len(),
        final_dir.display()
    );
    Ok(final_dir)
}

fn eval_one(
    l: &Loaded,
    model: &CausalLm,
    tok: &ChatTokenizer,
    engine: Option<Box<dyn RolloutEngine>>,
) -> anyhow::Result<MultiTurnReport> {
    let env = environment(&l.file)?;
    let engine = match engine {
        Some(e) => e,
        None => Box::new(crate::common::local_engine(tok, &l.file.engine, model)?),
    };
    let render = TemplateRender(tok);
    let setup = EpisodeSetup {
        engine: engine.as_ref(),
        env: &env,
        render: &render,
    };
    let params = SamplingParams {
        greedy: true,
        max_new_tokens: l.file.eval.max_new_tokens,
        seed: Some(0),
        ..SamplingParams::default()
    };
    Ok(evaluate_multi_turn(
        &setup,
        &l.test_items,
        &params,
        l.file.collect.max_turns,
        l.file.eval.chunk,
    )?)
}

fn print_report(name: &str, r: &MultiTurnReport) {
    let m: Vec<String> = r
        .multi_at
        .iter()
        .enumerate()
        .map(|(k, v)| format!("@{} {:.3}", k + 1, v))
        .collect();
    eprintln!(
        "{name}: multi {} | repeat {:.3} | correction {:.3} | {} problems",
        m.join(" "),
        r.repeat_rate,
        r.correction_rate_overall,
        r.problems
    );
}

fn stage_eval(l: &Loaded, a: &StageArgs) -> anyhow::Result<PathBuf> {
    let dev = device(l.file.device)?;
    let trained_dir = l.out.join("train/final");
    if a.dry_run {
        eprintln!(
            "drift eval (dry run): {} problems, greedy, ≤ {} turns; reference {}, trained {}",
            l.test_items.len(),
            l.file.collect.max_turns,
            l.file.eval.reference,
            if trained_dir.exists() {
                "present"
            } else {
                "not yet trained"
            }
        );
        return Ok(l.out.join("eval.json"));
    }
    let reference = if l.file.eval.reference {
        let (model, tok) = l.file.model.load(&a.config, &dev)?;
        let engine = l
            .file
            .reference
            .as_ref()
            .map(|h| HttpEngine::new(h.clone()).map(|e| Box::new(e) as Box<dyn RolloutEngine>))
            .transpose()?;
        let r = eval_one(l, &model, &tok, engine)?;
        print_report("reference", &r);
        Some(r)
    } else {
        None
    };
    let trained = if trained_dir.exists() {
        let (model, tok) = load_checkpoint(&trained_dir, &dev)?;
        let r = eval_one(l, &model, &tok, None)?;
        print_report("drift", &r);
        Some(r)
    } else {
        None
    };
    let path = l.out.join("eval.json");
    std::fs::create_dir_all(&l.out).with_context(|| format!("creating {}", l.out.display()))?;
    write_json_atomic(&path, &EvalOutput { reference, trained })?;
    Ok(path)
}
