//! `rlft train --config run.toml`: GRPO-family RL on a Hugging Face checkpoint and a JSONL
//! dataset, with any prompt sampler and verifier, full or LoRA, resumable, exporting
//! safetensors. The config format is documented in `docs/cli.md`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use burn::module::Module;
use clap::Args;
use rlft_core::{AdvantageEstimator, RewardAggregation, RewardScale};
use rlft_models::{CausalLm, ChatTokenizer};
use rlft_rollout::{LocalConfig, RolloutEngine};
use rlft_samplers::{BatchShape, DpsConfig, SamplerConfig};
use rlft_tasks::{EnvironmentConfig, Verifier};
use rlft_trainer::{
    EvalReport, MultiTurn, MultiTurnConfig, NamedReward, OnlineConfig, OnlineParts, OnlineTrainer,
    RewardConfig, RewardFunctions, Rewarder, RolloutSource, SingleTurn, TermConfig,
    VerifierRewarder, evaluate, read_log, reward_names, svg_chart, write_atomic, write_json_atomic,
};
use serde::{Deserialize, Serialize};

use crate::common::{
    DataSection, Encoded, ModelSection, Progress, check_eval, check_generation, eval_params,
    export, load_toml, local_engine, out_dir, resolve,
};
use crate::device::{Backend, device};
use crate::runs::{self, Graceful, Interrupted, RunFlags};
use crate::samples::{FIRST_FAILURES, Recorder, SampleRow, failures_markdown, write_samples};

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
    /// `--force-resume`, `--restart`, `--nan-policy`.
    #[command(flatten)]
    pub run: RunFlags,
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
    /// How completions are scored (`kind` = `math`, `countdown`, `exact_match`, `qa_match`
    /// or `llm_judge`).
    pub verifier: crate::webscale::TrainVerifier,
    /// `[[reward]]` (or one `[reward]`): several weighted reward functions (verifier kinds,
    /// `http`, `command`) whose combined score is the training reward, each one's mean logged
    /// per step as `reward/<name>`; `[verifier]` still decides `correct` and scores the
    /// held-out evaluation. None: the `[verifier]`'s score is the reward. See docs/cli.md
    /// ("Several reward functions").
    #[serde(default, deserialize_with = "one_or_many")]
    pub reward: Vec<RewardConfig>,
    /// How `[[reward]]` scores combine (TRL `multi_objective_aggregation`):
    /// `sum_then_normalize` (default) or `normalize_then_sum` (GDPO; replaces the GRPO
    /// advantage by a batch z-score, ignoring `scale`, as TRL does).
    #[serde(default)]
    pub reward_aggregation: RewardAggregation,
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

/// `[reward]` (one table) or `[[reward]]` (several).
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<RewardConfig>, D::Error> {
    use serde::de::Error;
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Array(a) => a
            .into_iter()
            .map(|v| serde_json::from_value(v).map_err(D::Error::custom))
            .collect(),
        v => Ok(vec![serde_json::from_value(v).map_err(D::Error::custom)?]),
    }
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
        check_generation(&self.train.sampling, "train.sampling", &self.engine)?;
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
        self.validate_rewards()?;
        if self.environment.is_some() && self.episodes.max_turns == 0 {
            bail!("invalid config value for episodes.max_turns: must be ≥ 1, got 0");
        }
        Ok(())
    }
}

impl TrainFile {
    /// The `[[reward]]` rules: names, not with `[environment]`, and what `normalize_then_sum`
    /// needs.
    fn validate_rewards(&self) -> anyhow::Result<()> {
        reward_names(&self.reward)?;
        for r in &self.reward {
            // Checks each entry's settings; starts no process and opens no connection.
            r.build()?;
        }
        if !self.reward.is_empty() && self.environment.is_some() {
            bail!(
                "invalid config value for reward: an [environment] run takes its rewards from the environment; remove [[reward]] or [environment]"
            );
        }
        if self.reward_aggregation == RewardAggregation::NormalizeThenSum {
            if self.reward.is_empty() {
                bail!(
                    "invalid config value for reward_aggregation: normalize_then_sum combines [[reward]] entries, and there are none"
                );
            }
            if !self.objective.is_empty() {
                bail!(
                    "invalid config value for reward_aggregation: normalize_then_sum sets the advantage itself and cannot be combined with [[objective]] terms"
                );
            }
            if !matches!(self.train.grpo.advantage, AdvantageEstimator::Grpo { .. }) {
                bail!(
                    "invalid config value for train.grpo.advantage: normalize_then_sum replaces GRPO's advantage by a batch z-score (TRL), so the advantage must be kind = \"grpo\", got {:?}",
                    self.train.grpo.advantage
                );
            }
        }
        Ok(())
    }
}

/// Held-out pass@1 / pass@k; every sample (prompt, completion, extracted answer, verdict,
/// reason, score) is written to `samples` as JSONL and returned.
fn held_out(
    file: &TrainFile,
    e: &EvalSection,
    tok: &ChatTokenizer,
    test: &Encoded,
    verifier: &dyn Verifier,
    m: &CausalLm,
    samples: &Path,
) -> anyhow::Result<(EvalReport, Vec<SampleRow>)> {
    let params = eval_params(
        file.train.sampling.clone(),
        e.n,
        e.temperature,
        file.train.seed,
    );
    let prompts = test.indexed();
    let engine = local_engine(tok, &file.engine, m)?;
    let recorder = Recorder::new(verifier, &test.items);
    let report = evaluate(&engine, &prompts, &recorder, &params, &e.k, 64)?;
    let rows = recorder.rows(tok, &test.prompt_ids)?;
    write_samples(samples, &rows)?;
    Ok((report, rows))
}

/// Held-out samples before and after training, beside `report.md`.
const BEFORE_SAMPLES: &str = "eval_before_samples.jsonl";
const AFTER_SAMPLES: &str = "eval_after_samples.jsonl";

/// Runs `rlft train` and returns the path of `summary.json`.
pub fn run(args: &TrainArgs) -> anyhow::Result<PathBuf> {
    let t0 = Instant::now();
    let file: TrainFile = load_toml(&args.config)?;
    file.validate()
        .with_context(|| format!("config {}", args.config.display()))?;
    let out = out_dir(args.out.as_deref(), &args.config, &file.out);
    let model_dir = resolve(&args.config, &file.model.path);
    rlft_trainer::check_out_dir(&out, &model_dir)?;
    let stop = runs::stop_flag();
    let dev = device(file.device)?.autodiff();
    let (model, tok) = file.model.load(&args.config, &dev)?;
    let (train, test) = file.data.load(&args.config, &tok)?;
    if file.environment.is_some()
        && let Some(it) = train.items.iter().find(|it| it.messages.is_some())
    {
        bail!(
            "invalid config value for environment: item {} has a conversational prompt; multi-turn environments start from a text prompt",
            it.id
        );
    }
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
    let fp = runs::fingerprint(
        &file,
        &[],
        &[
            ("model", &model_dir),
            ("data", &resolve(&args.config, &file.data.path)),
        ],
    )?;
    // Lock and fingerprint check first: a refused attempt leaves config.json as it was.
    let _guard = runs::open_run(&out, &[&model_dir], &fp, &args.run)?;
    write_json_atomic(&out.join("config.json"), &file)?;
    let mut train_cfg = file.train.clone();
    args.run.apply_nan_policy(&mut train_cfg.grpo.optim);

    let before_path = out.join("eval_before.json");
    let mut eval_before: Option<EvalReport> = if before_path.exists() {
        Some(serde_json::from_slice(&std::fs::read(&before_path)?)?)
    } else {
        None
    };
    if let (Some(e), Some(t), None) = (&eval, &test, &eval_before)
        && e.before
        && !out.join("latest.json").exists()
    {
        let samples = out.join(BEFORE_SAMPLES);
        let (rep, _) = held_out(&file, e, &tok, t, &verifier, &model, &samples)?;
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
    let verifier_rewarder = VerifierRewarder::new(&verifier, train.items.clone());
    let reward_fns = if file.reward.is_empty() {
        None
    } else {
        let funcs = reward_names(&file.reward)?
            .into_iter()
            .zip(&file.reward)
            .map(|(name, r)| {
                Ok(NamedReward {
                    name,
                    weight: r.weight,
                    function: r.build()?,
                })
            })
            .collect::<rlft_trainer::Result<Vec<_>>>()?;
        Some(RewardFunctions::new(
            funcs,
            file.reward_aggregation,
            &verifier,
            train.items.clone(),
        ))
    };
    let rewarder: &dyn Rewarder = match &reward_fns {
        Some(r) => r,
        None => &verifier_rewarder,
    };
    if file.reward_aggregation == RewardAggregation::NormalizeThenSum {
        // TRL: normalize_then_sum z-scores the combined reward over the batch, whatever
        // `scale_rewards` says (checked in validate: the advantage is GRPO).
        train_cfg.grpo.advantage = file.reward_aggregation.estimator(RewardScale::Group);
    }
    let source: Box<dyn RolloutSource> = match &env {
        Some(env) => Box::new(MultiTurn::new(
            env.as_ref(),
            train.items.clone(),
            tok.clone(),
            file.episodes,
        )?),
        None => Box::new(SingleTurn::new(train.prompt_ids.clone(), rewarder)),
    };
    let engine_cfg = file.engine.clone();
    let tok_engine = tok.clone();
    let engine = Box::new(
        move |m: &CausalLm| -> rlft_trainer::Result<Box<dyn RolloutEngine>> {
            Ok(Box::new(local_engine(&tok_engine, &engine_cfg, m)?))
        },
    );
    let mut trainer = OnlineTrainer::open(
        train_cfg,
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
    )?
    .with_stop(stop);
    let total = file.train.steps as u64;
    let bar = Progress::new("train", trainer.step() as u64, total);
    let graceful = Graceful::new();
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
    drop(graceful);
    let steps = trainer.step();
    if runs::interrupted() && steps < file.train.steps {
        return Err(Interrupted {
            step: steps,
            total: file.train.steps,
            dir: out,
        }
        .into());
    }
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
    let mut after_rows = None;
    let eval_after = match (&eval, &test) {
        (Some(e), Some(t)) => {
            let samples = out.join(AFTER_SAMPLES);
            let (rep, rows) = held_out(&file, e, &tok, t, &verifier, &model, &samples)?;
            after_rows = Some(rows);
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
    report(&out, &records, &file, &summary, after_rows.as_deref())?;
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
    after: Option<&[SampleRow]>,
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
    let mut md = format!(
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
    md.push_str(&samples_section(out, after));
    write_atomic(&out.join("report.md"), md.as_bytes())?;
    Ok(())
}

/// The report's links to the held-out samples files that exist and the first failures after
/// training.
fn samples_section(out: &Path, after: Option<&[SampleRow]>) -> String {
    let links: Vec<String> = [
        ("before training", BEFORE_SAMPLES),
        ("after training", AFTER_SAMPLES),
    ]
    .iter()
    .filter(|(_, f)| out.join(f).exists())
    .map(|(when, f)| format!("- {when}: [{f}]({f})"))
    .collect();
    if links.is_empty() {
        return String::new();
    }
    let mut md = format!(
        "\n## Held-out samples\n\nEvery prompt, completion, extracted answer, verdict, reason and score:\n\n{}\n",
        links.join("\n")
    );
    if let Some(rows) = after {
        md.push_str(&format!(
            "\n### First failures after training\n\n{}",
            failures_markdown(rows, FIRST_FAILURES)
        ));
    }
    md
}
