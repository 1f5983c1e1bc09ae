//! `rlft train --config run.toml`: GRPO-family RL on a Hugging Face checkpoint and a JSONL
//! dataset, with any prompt sampler and verifier, full or LoRA, resumable, exporting
//! safetensors. The config format is documented in `docs/cli.md`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use burn::module::Module;
use clap::Args;
use rlft_models::{CausalLm, ChatTokenizer};
use rlft_rollout::{LocalConfig, RolloutEngine};
use rlft_samplers::{BatchShape, DpsConfig, SamplerConfig};
use rlft_tasks::{EnvironmentConfig, VerifierConfig};
use rlft_trainer::{
    EvalReport, MultiTurn, MultiTurnConfig, OnlineConfig, OnlineParts, OnlineTrainer, Rewarder,
    RolloutSource, SingleTurn, TermConfig, VerifierRewarder, evaluate, read_log, svg_chart,
    write_atomic, write_json_atomic,
};
use serde::{Deserialize, Serialize};

use crate::common::{
    DataSection, Encoded, ModelSection, Progress, check_eval, eval_params, export, load_toml,
    local_engine, out_dir, resolve,
};
use crate::device::{Backend, device};

/// Options of `rlft train`.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// The run's TOML config (format: docs/cli.md).
    #[arg(long)]
    pub config: PathBuf,
    /// Run directory, overriding the config's `out` (relative to the current directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Stop after this many steps in this invocation; running again resumes.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Load and check everything, print the plan, and exit without training.
    #[arg(long)]
    pub dry_run: bool,
}

/// The TOML file of `rlft train`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainFile {
    /// Run directory (relative to the config file). An existing run there is resumed.
    pub out: PathBuf,
    /// `flex` (default), `wgpu` or `cuda`, as compiled in.
    #[serde(default)]
    pub device: Backend,
    /// Prompts trained per step (B). Default 8.
    #[serde(default = "eight")]
    pub prompts_per_step: usize,
    /// The checkpoint to finetune.
    pub model: ModelSection,
    /// Prompts and gold answers.
    pub data: DataSection,
    /// How completions are scored (`kind` = `math`, `countdown` or `exact_match`).
    pub verifier: VerifierConfig,
    /// Prompt selection (`kind` = `dps`, `uniform`, `dynamic_sampling`, …). Default DPS.
    #[serde(default = "dps")]
    pub sampler: SamplerConfig,
    /// The online loop: steps, seed, `[train.sampling]` (n = completions per prompt),
    /// `[train.grpo]` (advantage, loss, optim, …), checkpoints.
    #[serde(default)]
    pub train: OnlineConfig,
    /// The local generation engine.
    #[serde(default)]
    pub engine: LocalConfig,
    /// Held-out evaluation (needs `data.test_fraction > 0`).
    #[serde(default)]
    pub eval: Option<EvalSection>,
    /// `[[objective]]` terms (scorer, advantage, sample mask, loss, phase); none: the one
    /// term `[train.grpo]` describes. See docs/cli.md ("Phased objectives").
    #[serde(default)]
    pub objective: Vec<TermConfig>,
    /// `[environment]`: online multi-turn RL (`kind = "try_again"`); absent: single-turn.
    #[serde(default)]
    pub environment: Option<EnvironmentConfig>,
    /// `[episodes]`: return discount, turn bound and which turns carry loss, for
    /// `[environment]` runs.
    #[serde(default)]
    pub episodes: MultiTurnConfig,
}

fn eight() -> usize {
    8
}

fn dps() -> SamplerConfig {
    SamplerConfig::Dps(DpsConfig::default())
}

/// `[eval]`: pass@1 / pass@k on the held-out split before and after training.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSection {
    /// Samples per prompt. Default 1.
    #[serde(default = "one")]
    pub n: usize,
    /// The k of pass@k (each ≤ n). Default [1].
    #[serde(default = "ks")]
    pub k: Vec<usize>,
    /// Sampling temperature; 0 means greedy. Default 0.
    #[serde(default)]
    pub temperature: f32,
    /// Also evaluate the model before training. Default true.
    #[serde(default = "yes")]
    pub before: bool,
}

impl Default for EvalSection {
    fn default() -> Self {
        Self {
            n: 1,
            k: vec![1],
            temperature: 0.0,
            before: true,
        }
    }
}

fn one() -> usize {
    1
}

fn ks() -> Vec<usize> {
    vec![1]
}

fn yes() -> bool {
    true
}

/// What `summary.json` of a train run holds.
#[derive(Debug, Serialize)]
pub struct TrainSummary {
    /// Steps completed.
    pub steps: usize,
    /// Rollouts generated (screening included).
    pub rollouts: u64,
    /// Seconds of this invocation.
    pub seconds: f64,
    /// The exported Hugging Face checkpoint.
    pub model: PathBuf,
    /// Held-out evaluation before training, if any.
    pub eval_before: Option<EvalReport>,
    /// Held-out evaluation after training, if any.
    pub eval_after: Option<EvalReport>,
}

impl TrainFile {
    /// Checks the values serde cannot, naming the field.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.prompts_per_step == 0 {
            bail!("invalid config value for prompts_per_step: must be ≥ 1, got 0");
        }
        if self.train.sampling.n < 2 {
            bail!(
                "invalid config value for train.sampling.n: group-relative advantages need ≥ 2 completions per prompt, got {}",
                self.train.sampling.n
            );
        }
        if self.train.steps == 0 {
            bail!("invalid config value for train.steps: must be ≥ 1, got 0");
        }
        let (ts, tg) = (self.train.sampling.temperature, self.train.grpo.temperature);
        if ts != tg {
            bail!(
                "invalid config value for train.grpo.temperature: the log-probs must be taken at the sampling temperature (train.sampling.temperature = {ts}), got {tg}"
            );
        }
        if !(0.0..1.0).contains(&self.data.test_fraction) {
            bail!(
                "invalid config value for data.test_fraction: must be in [0, 1), got {}",
                self.data.test_fraction
            );
        }
        if let Some(e) = &self.eval {
            if self.data.test_fraction == 0.0 {
                bail!("invalid config value for eval: needs data.test_fraction > 0");
            }
            check_eval(
                e.n,
                &e.k,
                e.temperature,
                ["eval.n", "eval.k", "eval.temperature"],
            )?;
        }
        self.train.grpo.validate()?;
        for t in &self.objective {
            t.validate()?;
        }
        if self.environment.is_some() && self.episodes.max_turns == 0 {
            bail!("invalid config value for episodes.max_turns: must be ≥ 1, got 0");
        }
        Ok(())
    }
}

/// Held-out pass@1 / pass@k.
fn held_out(
    file: &TrainFile,
    e: &EvalSection,
    tok: &ChatTokenizer,
    test: &Encoded,
    rewarder: &dyn Rewarder,
    m: &CausalLm,
) -> anyhow::Result<EvalReport> {
    let params = eval_params(
        file.train.sampling.clone(),
        e.n,
        e.temperature,
        file.train.seed,
    );
    let prompts = test.indexed();
    let engine = local_engine(tok, &file.engine, m)?;
    Ok(evaluate(&engine, &prompts, rewarder, &params, &e.k, 64)?)
}

/// Runs `rlft train` and returns the path of `summary.json`.
pub fn run(args: &TrainArgs) -> anyhow::Result<PathBuf> {
    let t0 = Instant::now();
    let file: TrainFile = load_toml(&args.config)?;
    file.validate()
        .with_context(|| format!("config {}", args.config.display()))?;
    let out = out_dir(args.out.as_deref(), &args.config, &file.out);
    let dev = device(file.device)?.autodiff();
    let (model, tok) = file.model.load(&args.config, &dev)?;
    let (train, test) = file.data.load(&args.config, &tok)?;
    let verifier = file.verifier.build()?;
    let eval = match (&file.eval, &test) {
        (Some(e), _) => Some(e.clone()),
        (None, Some(_)) => Some(EvalSection::default()),
        (None, None) => None,
    };
    let shape = BatchShape {
        num_prompts: train.items.len(),
        batch_size: file.prompts_per_step,
        group_size: file.train.sampling.n as u32,
    };
    if shape.batch_size > shape.num_prompts {
        bail!(
            "invalid config value for prompts_per_step: {} is more than the {} training prompts",
            shape.batch_size,
            shape.num_prompts
        );
    }
    let sampler = file.sampler.build(shape)?;
    let terms = file
        .objective
        .iter()
        .enumerate()
        .map(|(i, t)| {
            t.build(
                i,
                &file.train.grpo.advantage,
                &file.train.grpo.loss,
                Some(&tok),
            )
        })
        .collect::<rlft_trainer::Result<Vec<_>>>()?;
    let env = file
        .environment
        .as_ref()
        .map(|e| e.build(file.verifier.build()?))
        .transpose()?;
    eprintln!(
        "rlft train: {} parameters ({} trainable), {} training prompts, {} held out, sampler {}, {} steps of {} prompts × {} completions → {}",
        model.num_params(),
        trainable_params(&model),
        train.items.len(),
        test.as_ref().map_or(0, |t| t.items.len()),
        file.sampler.kind(),
        file.train.steps,
        file.prompts_per_step,
        file.train.sampling.n,
        out.display()
    );
    if args.dry_run {
        return Ok(out);
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    write_json_atomic(&out.join("config.json"), &file)?;

    let test_rewarder = test
        .as_ref()
        .map(|t| VerifierRewarder::new(&verifier, t.items.clone()));
    let before_path = out.join("eval_before.json");
    let mut eval_before: Option<EvalReport> = if before_path.exists() {
        Some(serde_json::from_slice(&std::fs::read(&before_path)?)?)
    } else {
        None
    };
    if let (Some(e), Some(t), Some(r), None) = (&eval, &test, &test_rewarder, &eval_before)
        && e.before
        && !out.join("latest.json").exists()
    {
        let rep = held_out(&file, e, &tok, t, r, &model)?;
        eprintln!(
            "held-out pass@1 before training: {:.2}% ({} prompts)",
            100.0 * rep.pass1,
            rep.prompts
        );
        write_json_atomic(&before_path, &rep)?;
        eval_before = Some(rep);
    }

    let needs_reference = if terms.is_empty() {
        file.train.grpo.loss.beta != 0.0
    } else {
        terms.iter().any(|t| t.needs_reference)
    };
    let reference = needs_reference.then(|| model.clone());
    let rewarder = VerifierRewarder::new(&verifier, train.items.clone());
    let source: Box<dyn RolloutSource> = match &env {
        Some(env) => Box::new(MultiTurn::new(
            env.as_ref(),
            train.items.clone(),
            tok.clone(),
            file.episodes,
        )?),
        None => Box::new(SingleTurn::new(train.prompt_ids.clone(), &rewarder)),
    };
    let engine_cfg = file.engine.clone();
    let tok_engine = tok.clone();
    let engine = Box::new(
        move |m: &CausalLm| -> rlft_trainer::Result<Box<dyn RolloutEngine>> {
            Ok(Box::new(local_engine(&tok_engine, &engine_cfg, m)?))
        },
    );
    let mut trainer = OnlineTrainer::open(
        file.train.clone(),
        &out,
        OnlineParts {
            model,
            reference,
            sampler,
            source,
            engine,
            terms,
        },
        &dev,
    )?;
    let total = file.train.steps as u64;
    let bar = Progress::new("train", trainer.step() as u64, total);
    trainer.run(args.max_steps, |r| {
        let g = |k: &str| r.get(k).unwrap_or(f64::NAN);
        bar.set(
            r.step as u64 + 1,
            format!(
                "reward {:.3}  acc {:.3}  effective {:.2}  loss {:+.4}  rollouts {}",
                g("reward"),
                g("accuracy"),
                g("effective_ratio"),
                g("loss"),
                g("rollouts")
            ),
        );
    })?;
    bar.finish();
    let steps = trainer.step();
    let records = read_log(&out.join("metrics.jsonl"))?;
    let rollouts = records
        .last()
        .and_then(|r| r.get("rollouts"))
        .unwrap_or(0.0) as u64;
    if steps < file.train.steps {
        eprintln!(
            "stopped after step {steps} of {}; run the same command again to resume",
            file.train.steps
        );
        return Ok(out.join("latest.json"));
    }
    let model = trainer.into_model();
    let final_dir = out.join("final");
    export(&model, &resolve(&args.config, &file.model.path), &final_dir)?;
    let eval_after = match (&eval, &test, &test_rewarder) {
        (Some(e), Some(t), Some(r)) => {
            let rep = held_out(&file, e, &tok, t, r, &model)?;
            eprintln!(
                "held-out pass@1 after training: {:.2}% ({} prompts)",
                100.0 * rep.pass1,
                rep.prompts
            );
            Some(rep)
        }
        _ => None,
    };
    let summary = TrainSummary {
        steps,
        rollouts,
        seconds: t0.elapsed().as_secs_f64(),
        model: final_dir,
        eval_before,
        eval_after,
    };
    report(&out, &records, &file, &summary)?;
    let path = out.join("summary.json");
    write_json_atomic(&path, &summary)?;
    Ok(path)
}

fn trainable_params(m: &CausalLm) -> usize {
    use burn::module::{ModuleVisitor, Param};
    use burn::tensor::Tensor;
    struct Count(usize);
    impl ModuleVisitor for Count {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            let t = p.val();
            if t.is_require_grad() {
                self.0 += t.shape().num_elements();
            }
        }
    }
    let mut c = Count(0);
    m.visit(&mut c);
    c.0
}

fn report(
    out: &Path,
    records: &[rlft_trainer::StepRecord],
    file: &TrainFile,
    s: &TrainSummary,
) -> anyhow::Result<()> {
    let svg = svg_chart(
        records,
        &["reward", "accuracy", "effective_ratio", "loss", "grad_norm"],
        &format!("rlft train: GRPO with {}", file.sampler.kind()),
    );
    write_atomic(&out.join("curves.svg"), svg.as_bytes())?;
    let pct = |r: &Option<EvalReport>| {
        r.as_ref()
            .map_or("–".to_string(), |r| format!("{:.2}%", 100.0 * r.pass1))
    };
    let last = records.last();
    let g = |k: &str| last.and_then(|r| r.get(k)).unwrap_or(f64::NAN);
    let md = format!(
        "# rlft train\n\n| | value |\n|---|---|\n| model | {} |\n| LoRA | {} |\n| sampler | {} |\n| steps | {} |\n| rollouts | {} |\n| final train reward | {:.3} |\n| held-out pass@1 before | {} |\n| held-out pass@1 after | {} |\n| seconds (this invocation) | {:.0} |\n| exported to | {} |\n\n![curves](curves.svg)\n",
        file.model.path.display(),
        file.model
            .lora
            .as_ref()
            .map_or("no".to_string(), |l| format!(
                "rank {}, α {}",
                l.rank, l.alpha
            )),
        file.sampler.kind(),
        s.steps,
        s.rollouts,
        g("reward"),
        pct(&s.eval_before),
        pct(&s.eval_after),
        s.seconds,
        s.model.display()
    );
    write_atomic(&out.join("report.md"), md.as_bytes())?;
    Ok(())
}
