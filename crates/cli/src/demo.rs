//! `rlft demo`: the whole pipeline on a laptop-class CPU in minutes.
//!
//! 1. Generate an arithmetic task (sums of 1–2 digit numbers) with rlft-tasks, split train /
//!    held-out (10%).
//! 2. Write a character-level tokenizer and build a tiny Qwen2-style model.
//! 3. Warm-start it with SFT on demonstrations from an imperfect teacher, who forgets the
//!    carry out of the units digit in 60% of the sums that have one.
//! 4. Greedy held-out accuracy ("before").
//! 5. GRPO with DPS choosing the prompts (ranking a 4·B candidate pool from a shuffled epoch
//!    stream each step, the released code's enlarged dataloader batch), k completions each,
//!    reward 1 for the true sum (the verifier knows arithmetic; the teacher did not).
//!    Held-out accuracy is logged every 25 steps.
//! 6. Greedy held-out accuracy ("after") with standard errors; `summary.json`, metrics, chart
//!    and report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use burn::module::Module;
use burn::tensor::Device;
use clap::Args;
use rlft_models::{CausalLm, CharTokenizer, ChatTokenizer, ModelConfig, qwen2};
use rlft_rollout::{LocalConfig, RolloutEngine, SamplingParams};
use rlft_samplers::{BatchShape, SamplerConfig};
use rlft_tasks::{ArithOp, ArithmeticConfig, Difficulty, SplitConfig, TaskItem};
use rlft_trainer::{
    LearnerConfig, LrSchedule, OnlineConfig, OnlineParts, OnlineTrainer, OptimConfig, Rewarder,
    SftConfig, SftExample, SingleTurn, read_log, sft_train, svg_chart, write_atomic,
    write_json_atomic,
};
use serde::Serialize;

use crate::common::{Progress, local_engine};
use crate::device::{Backend, device};

/// Options of `rlft demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Run directory (created; an existing run there is resumed).
    #[arg(long, default_value = "runs/demo")]
    pub out: PathBuf,
    /// Seed of the task, the model initialisation order and every sampling step.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Problems generated (train + held-out).
    #[arg(long, default_value_t = 4000)]
    pub problems: usize,
    /// SFT optimiser steps of the warm start (batches of 64 demonstrations).
    #[arg(long, default_value_t = 700)]
    pub sft_steps: usize,
    /// The SFT teacher's error: the fraction of demonstrations of a sum with a carry out of
    /// the units in which the teacher forgets that carry (07+45= demonstrated as 42, not 52).
    /// GRPO's reward checks the true sum. 0 gives perfect demonstrations.
    #[arg(long, default_value_t = 0.6)]
    pub teacher_carry_drop: f64,
    /// GRPO steps.
    #[arg(long, default_value_t = 200)]
    pub grpo_steps: usize,
    /// Prompts per GRPO step.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Completions per prompt.
    #[arg(long, default_value_t = 8)]
    pub k: usize,
    /// Prompt sampler for GRPO, as JSON (e.g. '{"kind":"uniform"}'). Default: DPS with a
    /// candidate pool of 4·B prompts per step.
    #[arg(long)]
    pub sampler: Option<String>,
    /// Learning rate of the SFT warm start.
    #[arg(long, default_value_t = 1e-3)]
    pub sft_lr: f64,
    /// Learning rate of GRPO.
    #[arg(long, default_value_t = 1e-4)]
    pub rl_lr: f64,
    /// GRPO's learning-rate schedule after warmup: `constant` (default), `linear` (to 0 at the
    /// last step; TRL's default) or `cosine`.
    #[arg(long, value_enum, default_value_t = Schedule::Constant)]
    pub rl_schedule: Schedule,
    /// GRPO's linear warmup steps.
    #[arg(long, default_value_t = 0)]
    pub rl_warmup: usize,
    /// GRPO's reward: `exact` (default), 1 for the whole answer and 0 otherwise, or `digits`,
    /// the fraction of the three answer digits in the right place. Either way a rollout counts
    /// as correct (for samplers and accuracy) only when the whole answer is right.
    #[arg(long, value_enum, default_value_t = Reward::Exact)]
    pub reward: Reward,
    /// Sampling temperature of the GRPO rollouts (the objective's log-probs use the same).
    #[arg(long, default_value_t = 0.7)]
    pub temperature: f32,
    /// Fraction of the problems held out for the accuracy check.
    #[arg(long, default_value_t = 0.1)]
    pub heldout_fraction: f64,
    /// Evaluate held-out greedy accuracy every this many GRPO steps (for the chart).
    #[arg(long, default_value_t = 25)]
    pub eval_every: usize,
    /// Run uniform, Dynamic Sampling, SFL and DPS from the same warm start on every seed of
    /// `--seeds` and print a table (accuracy mean ± spread, rollouts spent).
    #[arg(long)]
    pub compare: bool,
    /// Seeds of `--compare`.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    pub seeds: Vec<u64>,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub device: Backend,
}

/// GRPO's learning-rate schedule in the demo.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Constant after warmup.
    Constant,
    /// Linear decay to 0.
    Linear,
    /// Half-cosine decay to 0.
    Cosine,
}

impl From<Schedule> for LrSchedule {
    fn from(s: Schedule) -> Self {
        match s {
            Schedule::Constant => LrSchedule::Constant,
            Schedule::Linear => LrSchedule::Linear,
            Schedule::Cosine => LrSchedule::Cosine,
        }
    }
}

/// GRPO's reward in the demo.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reward {
    /// Fraction of answer digits in the right place (partial credit).
    Digits,
    /// 1 for an exact answer, else 0.
    Exact,
}

/// The seed stream that decides which demonstrations the teacher gets wrong.
const TEACHER_STREAM: u64 = 11;

/// DPS as the demo runs it (see the module docs).
pub const DEFAULT_SAMPLER: &str = r#"{"kind":"dps","pool":{"kind":"subset","ratio":4}}"#;

/// What `summary.json` holds.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// The seed.
    pub seed: u64,
    /// Greedy held-out accuracy after SFT, before GRPO.
    pub accuracy_before: f64,
    /// Its standard error, √(p(1−p)/n).
    pub accuracy_before_se: f64,
    /// Greedy held-out accuracy after GRPO.
    pub accuracy_after: f64,
    /// Its standard error.
    pub accuracy_after_se: f64,
    /// accuracy_after − accuracy_before.
    pub gain: f64,
    /// Standard error of the gain, paired over the same held-out problems.
    pub gain_se: f64,
    /// Rollouts generated by GRPO (screening included).
    pub rollouts: u64,
    /// Wall-clock seconds of the whole demo.
    pub seconds: f64,
    /// Seconds of the SFT warm start.
    pub sft_seconds: f64,
    /// Seconds of GRPO.
    pub grpo_seconds: f64,
    /// Held-out problems.
    pub heldout: usize,
    /// Training problems.
    pub train: usize,
    /// The sampler used.
    pub sampler: String,
    /// Model parameters.
    pub parameters: usize,
}

fn model_config(vocab: usize, eos: u32) -> ModelConfig {
    let mut c = qwen2::tiny(vocab);
    c.hidden_size = 96;
    c.intermediate_size = 256;
    c.num_hidden_layers = 3;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 24;
    c.eos_token_ids = vec![eos];
    c.pad_token_id = Some(eos);
    c
}

/// Compact prompt for a character-level model, operands zero-padded to two digits: "07+45=".
fn compact(item: &TaskItem) -> anyhow::Result<String> {
    let (a, op, b) = operands(item)?;
    Ok(format!("{a:0>2}{op}{b:0>2}="))
}

/// The operands and operator of an arithmetic item.
fn operands(item: &TaskItem) -> anyhow::Result<(String, String, String)> {
    let get = |k: &str| {
        item.meta
            .get(k)
            .map(|v| v.to_string().trim_matches('"').to_string())
            .with_context(|| format!("arithmetic item {} has no field {k}", item.id))
    };
    Ok((get("a")?, get("op")?, get("b")?))
}

/// What the demo's SFT teacher writes for `item`: the true sum, except that for a sum with a
/// carry out of the units digit it forgets that carry when `forget` is true (07+45 → 42).
fn teacher_answer(item: &TaskItem, forget: bool) -> anyhow::Result<String> {
    let (a, _, b) = operands(item)?;
    let parse = |x: &str| {
        x.parse::<u32>()
            .with_context(|| format!("arithmetic item {} has a non-numeric operand", item.id))
    };
    let (a, b) = (parse(&a)?, parse(&b)?);
    if forget && a % 10 + b % 10 >= 10 {
        Ok(((a % 10 + b % 10) % 10 + 10 * (a / 10 + b / 10)).to_string())
    } else {
        Ok(item.answer.clone())
    }
}

/// The target text the model writes for `answer`: three digits, zero-padded, least-significant
/// first ("52" → "250"): the order in which carries propagate, with every digit at a fixed
/// position, which a small transformer learns far faster than the usual order.
fn target(answer: &str) -> String {
    format!("{answer:0>3}").chars().rev().collect()
}

/// Greedy answers on the held-out problems: which were right.
#[derive(Debug, Clone)]
struct Heldout {
    correct: Vec<bool>,
}

impl Heldout {
    fn accuracy(&self) -> f64 {
        self.correct.iter().filter(|&&c| c).count() as f64 / self.correct.len().max(1) as f64
    }

    /// √(p(1−p)/n): the binomial standard error of the accuracy.
    fn se(&self) -> f64 {
        let (p, n) = (self.accuracy(), self.correct.len().max(1) as f64);
        (p * (1.0 - p) / n).sqrt()
    }

    /// The gain over `before` on the same problems and its paired standard error
    /// (the standard error of the mean per-problem difference).
    fn gain_over(&self, before: &Heldout) -> (f64, f64) {
        let d: Vec<f64> = self
            .correct
            .iter()
            .zip(&before.correct)
            .map(|(&a, &b)| f64::from(u8::from(a)) - f64::from(u8::from(b)))
            .collect();
        let n = d.len().max(2) as f64;
        let mean = d.iter().sum::<f64>() / n;
        let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, (var / n).sqrt())
    }
}

/// Everything the GRPO runs share: data, tokenizer, the SFT-warmed model and its accuracy.
struct Prepared {
    dev: Device,
    tok: ChatTokenizer,
    eos: u32,
    seed: u64,
    train_prompts: Vec<Vec<u32>>,
    train_answers: Vec<String>,
    test_prompts: Vec<Vec<u32>>,
    test_answers: Vec<String>,
    model: CausalLm,
    before: Heldout,
    sft_seconds: f64,
    parameters: usize,
}

/// Steps 1–4: task, tokenizer, model, SFT warm start, held-out accuracy, for `seed`.
fn prepare(args: &DemoArgs, seed: u64, out: &Path) -> anyhow::Result<Prepared> {
    if args.batch == 0 || args.k < 2 || args.grpo_steps == 0 {
        anyhow::bail!(
            "invalid demo settings: --batch must be ≥ 1, --k ≥ 2 and --grpo-steps ≥ 1 (got {}, {}, {})",
            args.batch,
            args.k,
            args.grpo_steps
        );
    }
    if !(0.0..=1.0).contains(&args.teacher_carry_drop) {
        anyhow::bail!(
            "invalid demo setting --teacher-carry-drop: must be in [0, 1], got {}",
            args.teacher_carry_drop
        );
    }
    if !(args.heldout_fraction > 0.0 && args.heldout_fraction < 1.0) {
        anyhow::bail!(
            "invalid demo setting --heldout-fraction: must be in (0, 1), got {}",
            args.heldout_fraction
        );
    }
    if !(args.temperature.is_finite() && args.temperature > 0.0) {
        anyhow::bail!(
            "invalid demo setting --temperature: must be finite and > 0, got {}",
            args.temperature
        );
    }
    for (flag, lr) in [("--sft-lr", args.sft_lr), ("--rl-lr", args.rl_lr)] {
        if !(lr.is_finite() && lr >= 0.0) {
            anyhow::bail!("invalid demo setting {flag}: must be finite and ≥ 0, got {lr}");
        }
    }
    let dev: Device = device(args.device)?.autodiff();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;

    let data = ArithmeticConfig {
        count: args.problems,
        seed,
        ops: vec![ArithOp::Add],
        ..ArithmeticConfig::for_difficulty(Difficulty::Easy)
    }
    .generate()?;
    data.write_jsonl(out.join("task.jsonl"))?;
    let split = data.split(&SplitConfig {
        test_fraction: args.heldout_fraction,
        seed,
    })?;
    let (train, test) = (split.train.items(), split.test.items());
    // What GRPO needs is checked here, before the minutes of the SFT warm start.
    if args.batch > train.len() {
        anyhow::bail!(
            "invalid demo settings: --batch {} is more than the {} training problems (--problems {} less the --heldout-fraction {})",
            args.batch,
            train.len(),
            args.problems,
            args.heldout_fraction
        );
    }

    let tok_dir = out.join("tokenizer");
    let chars = CharTokenizer::new("0123456789+-=");
    chars.save(&tok_dir)?;
    let tok = ChatTokenizer::from_dir(&tok_dir)?;
    let eos = tok.eos_token_id().context("tokenizer has no EOS token")?;
    let encode = |items: &[TaskItem]| -> anyhow::Result<Vec<Vec<u32>>> {
        items
            .iter()
            .map(|it| Ok(tok.encode(&compact(it)?, false)?))
            .collect()
    };
    let train_prompts = encode(train)?;
    let test_prompts = encode(test)?;
    let train_answers: Vec<String> = train.iter().map(|it| target(&it.answer)).collect();
    let test_answers: Vec<String> = test.iter().map(|it| target(&it.answer)).collect();

    dev.seed(seed);
    let model = CausalLm::new(&model_config(chars.vocab_size(), eos), &dev).init_normal(0.02);
    let parameters = model.num_params();

    // SFT warm start: `sft_steps` batches of 64 demonstrations, cycling through the training
    // set, written by a teacher that forgets a units carry in a fraction of its
    // demonstrations (decided per demonstration from the seed).
    let t_sft = Instant::now();
    let batch_size = 64;
    let threshold = (args.teacher_carry_drop.clamp(0.0, 1.0) * u64::MAX as f64) as u64;
    let examples: Vec<SftExample> = train
        .iter()
        .zip(&train_prompts)
        .cycle()
        .take(args.sft_steps * batch_size)
        .enumerate()
        .map(|(i, (item, p))| {
            let forget = threshold > 0
                && rlft_util::seed::step_seed(seed, i as u64, TEACHER_STREAM) <= threshold;
            let mut c = tok.encode(&target(&teacher_answer(item, forget)?), false)?;
            c.push(eos);
            Ok(SftExample {
                prompt_ids: p.clone(),
                completion_ids: c,
                ..SftExample::default()
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let sft = SftConfig {
        epochs: 1,
        batch_size,
        optim: OptimConfig {
            lr: args.sft_lr,
            weight_decay: 0.0,
            warmup_steps: 10,
            schedule: LrSchedule::Cosine,
            ..OptimConfig::default()
        },
        seed,
        pad_id: eos,
        ..SftConfig::default()
    };
    let bar = Progress::new(
        &format!("[seed {seed}] 1/3 SFT warm start"),
        0,
        args.sft_steps as u64,
    );
    let model = sft_train(model, &examples, &sft, &dev, |r| {
        bar.set(
            r.step as u64 + 1,
            format!("nll {:.3}", r.get("nll").unwrap_or(f64::NAN)),
        );
    })?;
    bar.finish();
    let sft_seconds = t_sft.elapsed().as_secs_f64();
    let before = heldout(&tok, &test_prompts, &test_answers, &model)?;
    eprintln!(
        "[seed {seed}] held-out accuracy after SFT: {:.1}% ± {:.1} ({} problems, SFT {:.0}s)",
        100.0 * before.accuracy(),
        100.0 * before.se(),
        test_prompts.len(),
        sft_seconds
    );
    Ok(Prepared {
        dev,
        tok,
        eos,
        seed,
        train_prompts,
        train_answers,
        test_prompts,
        test_answers,
        model,
        before,
        sft_seconds,
        parameters,
    })
}

/// The demo's rewarder: correct = the exact answer; reward = the same (`exact`) or the fraction
/// of answer positions holding the right digit (`digits`; a longer text counts its extra
/// characters as wrong positions).
fn rewarder(
    answers: &[String],
    kind: Reward,
) -> impl Fn(usize, &str) -> rlft_trainer::Result<(f32, bool)> + '_ {
    move |i, text| {
        let Some(a) = answers.get(i) else {
            return Ok((0.0, false));
        };
        let t = text.trim();
        let ok = t == a;
        let reward = match kind {
            Reward::Exact => f32::from(u8::from(ok)),
            Reward::Digits => {
                let hits = t.chars().zip(a.chars()).filter(|(x, y)| x == y).count();
                hits as f32 / t.chars().count().max(a.chars().count()).max(1) as f32
            }
        };
        Ok((reward, ok))
    }
}

/// Greedy held-out answers, problem by problem.
fn heldout(
    tok: &ChatTokenizer,
    prompts: &[Vec<u32>],
    answers: &[String],
    m: &CausalLm,
) -> rlft_trainer::Result<Heldout> {
    let engine = local_engine(tok, &LocalConfig::default(), m)?;
    let indexed: Vec<(usize, Vec<u32>)> = prompts.iter().cloned().enumerate().collect();
    let mut correct = vec![false; prompts.len()];
    for part in indexed.chunks(256) {
        for g in engine.generate_groups(part, &SamplingParams::greedy(6))? {
            correct[g.prompt_index] = g.completions.first().is_some_and(|c| {
                answers
                    .get(g.prompt_index)
                    .is_some_and(|a| c.text.trim() == a)
            });
        }
    }
    Ok(Heldout { correct })
}

impl Prepared {
    /// Greedy held-out answers of `m`.
    fn heldout(&self, m: &CausalLm) -> rlft_trainer::Result<Heldout> {
        heldout(&self.tok, &self.test_prompts, &self.test_answers, m)
    }

    /// Step 5: GRPO from the warm-started model with `sampler`, in `dir` (started afresh).
    /// Held-out accuracy is logged every `eval_every` steps as `heldout/accuracy`.
    fn grpo(
        &self,
        args: &DemoArgs,
        sampler: &SamplerConfig,
        dir: &Path,
    ) -> anyhow::Result<(CausalLm, u64, f64)> {
        let t = Instant::now();
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        let shape = BatchShape {
            num_prompts: self.train_prompts.len(),
            batch_size: args.batch,
            group_size: args.k as u32,
        };
        let rewarder = rewarder(&self.train_answers, args.reward);
        let online = OnlineConfig {
            steps: args.grpo_steps,
            seed: self.seed,
            sampling: SamplingParams {
                max_new_tokens: 5,
                temperature: args.temperature,
                ..SamplingParams::default()
            },
            grpo: LearnerConfig {
                micro_batch_size: 128,
                pad_id: self.eos,
                temperature: args.temperature,
                optim: OptimConfig {
                    lr: args.rl_lr,
                    weight_decay: 0.0,
                    schedule: args.rl_schedule.into(),
                    warmup_steps: args.rl_warmup,
                    ..OptimConfig::default()
                },
                ..LearnerConfig::default()
            },
            checkpoint_every: 50,
            keep_checkpoints: 1,
        };
        let engine = Box::new(
            |m: &CausalLm| -> rlft_trainer::Result<Box<dyn RolloutEngine>> {
                Ok(Box::new(local_engine(
                    &self.tok,
                    &LocalConfig::default(),
                    m,
                )?))
            },
        );
        let eval = Box::new(|m: &CausalLm| -> rlft_trainer::Result<Vec<(String, f64)>> {
            Ok(vec![(
                "heldout/accuracy".to_string(),
                self.heldout(m)?.accuracy(),
            )])
        });
        let mut trainer = OnlineTrainer::open(
            online,
            dir,
            OnlineParts {
                model: self.model.clone(),
                reference: None,
                sampler: sampler.build(shape)?,
                source: Box::new(SingleTurn::new(
                    self.train_prompts.clone(),
                    &rewarder as &dyn Rewarder,
                )),
                engine,
                terms: Vec::new(),
            },
            &self.dev,
        )?
        .with_eval(args.eval_every, eval);
        let label = format!("[seed {}] 2/3 GRPO ({})", self.seed, sampler.kind());
        let bar = Progress::new(&label, 0, args.grpo_steps as u64);
        let mut heldout = self.before.accuracy();
        trainer.run(None, |r| {
            if let Some(h) = r.get("heldout/accuracy") {
                heldout = h;
            }
            bar.set(
                r.step as u64 + 1,
                format!(
                    "train acc {:.2}  held-out {:.1}%  rollouts {}",
                    r.get("accuracy").unwrap_or(f64::NAN),
                    100.0 * heldout,
                    r.get("rollouts").unwrap_or(0.0),
                ),
            );
        })?;
        bar.finish();
        let rollouts = read_log(&dir.join("metrics.jsonl"))?
            .last()
            .and_then(|r| r.get("rollouts"))
            .unwrap_or(0.0) as u64;
        Ok((trainer.into_model(), rollouts, t.elapsed().as_secs_f64()))
    }
}

/// Runs the demo and returns the path of `summary.json` (or, with `--compare`, of
/// `compare.md`).
pub fn run(args: &DemoArgs) -> anyhow::Result<PathBuf> {
    let t0 = Instant::now();
    if args.compare {
        return compare(args, t0);
    }
    let sampler_cfg: SamplerConfig = match &args.sampler {
        Some(json) => serde_json::from_str(json).context("parsing --sampler")?,
        None => serde_json::from_str(DEFAULT_SAMPLER)?,
    };
    let p = prepare(args, args.seed, &args.out)?;
    let rl_dir = args.out.join("grpo");
    let (model, rollouts, grpo_seconds) = p.grpo(args, &sampler_cfg, &rl_dir)?;
    eprintln!("[seed {}] 3/3 held-out evaluation", args.seed);
    let after = p.heldout(&model)?;
    let (gain, gain_se) = after.gain_over(&p.before);
    let summary = Summary {
        seed: args.seed,
        accuracy_before: p.before.accuracy(),
        accuracy_before_se: p.before.se(),
        accuracy_after: after.accuracy(),
        accuracy_after_se: after.se(),
        gain,
        gain_se,
        rollouts,
        seconds: t0.elapsed().as_secs_f64(),
        sft_seconds: p.sft_seconds,
        grpo_seconds,
        heldout: p.test_prompts.len(),
        train: p.train_prompts.len(),
        sampler: sampler_cfg.kind().to_string(),
        parameters: p.parameters,
    };
    report(&args.out, &rl_dir, &summary)?;
    eprintln!(
        "held-out accuracy: {:.1}% ± {:.1} → {:.1}% ± {:.1} (gain {:+.1} ± {:.1} points, {} problems) with {} rollouts in {:.0}s",
        100.0 * summary.accuracy_before,
        100.0 * summary.accuracy_before_se,
        100.0 * summary.accuracy_after,
        100.0 * summary.accuracy_after_se,
        100.0 * gain,
        100.0 * gain_se,
        summary.heldout,
        summary.rollouts,
        summary.seconds
    );
    let path = args.out.join("summary.json");
    write_json_atomic(&path, &summary)?;
    Ok(path)
}

/// The samplers `--compare` runs, in table order.
const COMPARED: [&str; 4] = [
    r#"{"kind":"uniform"}"#,
    r#"{"kind":"dynamic_sampling"}"#,
    r#"{"kind":"sfl_inline"}"#,
    DEFAULT_SAMPLER,
];

/// `--compare`: uniform, Dynamic Sampling, SFL and DPS from the same warm start, seed and
/// number of training steps, on every seed; a table of held-out accuracy (mean, min–max over
/// seeds) and rollouts spent.
fn compare(args: &DemoArgs, t0: Instant) -> anyhow::Result<PathBuf> {
    if args.seeds.is_empty() {
        anyhow::bail!("invalid demo setting --seeds: give at least one seed");
    }
    let samplers = COMPARED
        .iter()
        .map(|j| serde_json::from_str::<SamplerConfig>(j))
        .collect::<Result<Vec<_>, _>>()?;
    // rows[sampler][seed] = (gain, after, rollouts, seconds)
    let mut rows = vec![Vec::new(); samplers.len()];
    let mut before = Vec::new();
    for &seed in &args.seeds {
        let out = args.out.join(format!("seed-{seed}"));
        let p = prepare(args, seed, &out)?;
        before.push(p.before.accuracy());
        for (i, cfg) in samplers.iter().enumerate() {
            let dir = out.join(format!("grpo-{}", cfg.kind()));
            let (model, rollouts, secs) = p.grpo(args, cfg, &dir)?;
            let after = p.heldout(&model)?;
            let (gain, se) = after.gain_over(&p.before);
            eprintln!(
                "[seed {seed}] [{}] held-out {:.1}% → {:.1}% ({:+.1} ± {:.1}), {} rollouts, {:.0}s",
                cfg.kind(),
                100.0 * p.before.accuracy(),
                100.0 * after.accuracy(),
                100.0 * gain,
                100.0 * se,
                rollouts,
                secs
            );
            rows[i].push((gain, after.accuracy(), rollouts as f64, secs));
        }
    }
    let stats = |v: Vec<f64>| {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let (lo, hi) = v
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        (mean, lo, hi)
    };
    let seeds: Vec<String> = args.seeds.iter().map(u64::to_string).collect();
    let (b, blo, bhi) = stats(before.clone());
    let mut md = format!(
        "# rlft demo --compare\n\nSeeds {}; per seed one task, one SFT warm start (held-out {:.1}%, {:.1}–{:.1}% over seeds) and {} GRPO steps of {} prompts × {} completions for every sampler. Mean over seeds, min–max in brackets.\n\n| sampler | held-out accuracy after | gain (points) | rollouts | GRPO seconds |\n|---|---|---|---|---|\n",
        seeds.join(", "),
        100.0 * b,
        100.0 * blo,
        100.0 * bhi,
        args.grpo_steps,
        args.batch,
        args.k
    );
    for (cfg, r) in samplers.iter().zip(rows) {
        let (g, glo, ghi) = stats(r.iter().map(|x| 100.0 * x.0).collect());
        let (a, alo, ahi) = stats(r.iter().map(|x| 100.0 * x.1).collect());
        let (ro, _, _) = stats(r.iter().map(|x| x.2).collect());
        let (secs, _, _) = stats(r.iter().map(|x| x.3).collect());
        md.push_str(&format!(
            "| {} | {a:.1}% [{alo:.1}–{ahi:.1}] | {g:+.1} [{glo:+.1}, {ghi:+.1}] | {ro:.0} | {secs:.0} |\n",
            cfg.kind()
        ));
    }
    md.push_str(&format!("\nTotal {:.0}s.\n", t0.elapsed().as_secs_f64()));
    print!("{md}");
    let path = args.out.join("compare.md");
    write_atomic(&path, md.as_bytes())?;
    Ok(path)
}

fn report(out: &Path, rl_dir: &Path, s: &Summary) -> anyhow::Result<()> {
    let mut recs = read_log(&rl_dir.join("metrics.jsonl"))?;
    // The held-out curve starts at the warm start's accuracy (step 0, before any update).
    // Record k holds the state after k + 1 updates; plot it at x = k + 1.
    for r in recs.iter_mut() {
        r.step += 1;
    }
    let mut start = rlft_trainer::StepRecord::new(0);
    start
        .set("heldout/accuracy", s.accuracy_before)
        .set("rollouts", 0.0);
    recs.insert(0, start);
    let svg = svg_chart(
        &recs,
        &["heldout/accuracy", "reward", "rollouts", "effective_ratio"],
        &format!(
            "rlft demo (seed {}): GRPO with {} — held-out accuracy {:.1}% → {:.1}%",
            s.seed,
            s.sampler,
            100.0 * s.accuracy_before,
            100.0 * s.accuracy_after
        ),
    );
    write_atomic(&out.join("curves.svg"), svg.as_bytes())?;
    let md = format!(
        "# rlft demo (seed {})\n\nGRPO steps on the x-axis of every chart: held-out greedy accuracy (evaluated every few steps), mean training reward, rollouts spent so far, and the fraction of prompt groups with mixed outcomes (the ones that carry gradient).\n\n| | value |\n|---|---|\n| held-out accuracy before GRPO | {:.1}% ± {:.1} |\n| held-out accuracy after GRPO | {:.1}% ± {:.1} |\n| gain | {:+.1} ± {:.1} points (paired, {} problems) |\n| GRPO rollouts | {} |\n| sampler | {} |\n| SFT seconds | {:.0} |\n| GRPO seconds | {:.0} |\n| total seconds | {:.0} |\n| parameters | {} |\n\n![curves](curves.svg)\n",
        s.seed,
        100.0 * s.accuracy_before,
        100.0 * s.accuracy_before_se,
        100.0 * s.accuracy_after,
        100.0 * s.accuracy_after_se,
        100.0 * s.gain,
        100.0 * s.gain_se,
        s.heldout,
        s.rollouts,
        s.sampler,
        s.sft_seconds,
        s.grpo_seconds,
        s.seconds,
        s.parameters
    );
    write_atomic(&out.join("report.md"), md.as_bytes())?;
    Ok(())
}
