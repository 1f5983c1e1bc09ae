//! DRIFT's claim on CPU (spec drift.md §9): a tiny Qwen2-style model, a synthetic try-again
//! guessing task (rlft-tasks' `GuessConfig`), π_ref trained on single-turn data only, then
//! DRIFT at β ∈ {0.1, 0.3, 1}, uniform SFT (β = ∞), RFT, and online multi-turn GRPO at the same
//! number of gradient steps (and at `--grpo-multiplier` times it), all evaluated greedily on
//! held-out problems. The defaults are the spec's sizes: 2,000 problems × K = 16 trajectories,
//! 2,000 held-out problems; one seed takes about 10 minutes on 2 cores, and
//! `--grpo-multiplier 5` adds the 5×-steps GRPO row (about 12 more minutes per seed).
//!
//! ```sh
//! cargo run --release -p rlft-drift --example reproduce -- [--out runs/drift-repro] [--seed 0]
//!     [--seeds 1] [--prompts 2000] [--k 16] [--heldout 2000] [--grpo-multiplier 1]
//! ```
//!
//! Prints a markdown table and writes `results.json`, `table.md` and `multi_at.svg` to `--out`.

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use rlft_drift::{
    CollectConfig, EpisodeSetup, MultiTurnReport, WeightConfig, WeightMode, collect,
    evaluate_multi_turn, examples, read_rows, weigh,
};
use rlft_models::{CausalLm, CharTokenizer, ChatTokenizer, ModelConfig, qwen2};
use rlft_rollout::{LocalConfig, LocalEngine, RolloutEngine, SamplingParams};
use rlft_samplers::{BatchShape, SamplerConfig};
use rlft_tasks::{
    AnswerSource, ExactMatch, ExactMatchConfig, GuessConfig, Message, Role, TaskItem, TryAgain,
    TryAgainConfig, TurnFormat,
};
use rlft_trainer::{
    LearnerConfig, LossTurns, LrSchedule, MultiTurn, MultiTurnConfig, OnlineConfig, OnlineParts,
    OnlineTrainer, OptimConfig, SftConfig, SftExample, TemplateRender, render_conversation,
    sft_train,
};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Args {
    out: PathBuf,
    seed: u64,
    prompts: usize,
    k: usize,
    heldout: usize,
    grpo_multiplier: usize,
    seeds: usize,
    ref_epochs: usize,
    ref_lr: f64,
    label_noise: u64,
}

fn args() -> Res<Args> {
    let mut a = Args {
        out: PathBuf::from("runs/drift-repro"),
        seed: 0,
        prompts: 2000,
        k: 16,
        heldout: 2000,
        grpo_multiplier: 1,
        seeds: 1,
        ref_epochs: 6,
        ref_lr: 1e-3,
        label_noise: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--out" => a.out = v.into(),
            "--seed" => a.seed = v.parse()?,
            "--seeds" => a.seeds = v.parse()?,
            "--prompts" => a.prompts = v.parse()?,
            "--k" => a.k = v.parse()?,
            "--heldout" => a.heldout = v.parse()?,
            "--grpo-multiplier" => a.grpo_multiplier = v.parse()?,
            "--ref-epochs" => a.ref_epochs = v.parse()?,
            "--ref-lr" => a.ref_lr = v.parse()?,
            "--label-noise-tenths" => a.label_noise = v.parse()?,
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    Ok(a)
}

const TURNS: usize = 5;
const COMPACT_TEMPLATE: &str = "{% for message in messages %}{% if message['role'] == 'assistant' %}{{ message['content'] + '<|im_end|>' }}{% else %}{{ '<|im_start|>' + message['content'] + '\n' }}{% endif %}{% endfor %}";
const LR: f64 = 5e-4;
const BATCH: usize = 64;

fn model_config(vocab: usize, im_end: u32) -> ModelConfig {
    let mut c = qwen2::tiny(vocab);
    c.hidden_size = 64;
    c.intermediate_size = 192;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 16;
    c.eos_token_ids = vec![im_end];
    c.pad_token_id = Some(0);
    c
}

fn env() -> Res<TryAgain<ExactMatch>> {
    Ok(TryAgain::new(
        ExactMatch::new(ExactMatchConfig {
            sources: vec![AnswerSource::Whole],
            ..ExactMatchConfig::default()
        }),
        TryAgainConfig {
            max_turns: TURNS,
            feedback: "no".into(),
            system_prompt: None,
            turn_format: TurnFormat::Free,
            ..TryAgainConfig::default()
        },
    )?)
}

fn engine(model: &CausalLm, tok: &ChatTokenizer) -> Res<LocalEngine> {
    Ok(LocalEngine::new(
        model.valid(),
        Some(tok.clone()),
        LocalConfig {
            max_batch_rows: 1024,
            ..LocalConfig::default()
        },
    )?)
}

fn eval(model: &CausalLm, tok: &ChatTokenizer, items: &[TaskItem]) -> Res<MultiTurnReport> {
    let e = engine(model, tok)?;
    let env = env()?;
    let render = TemplateRender(tok);
    let setup = EpisodeSetup {
        engine: &e,
        env: &env,
        render: &render,
    };
    let params = SamplingParams {
        greedy: true,
        max_new_tokens: 2,
        ..SamplingParams::default()
    };
    Ok(evaluate_multi_turn(&setup, items, &params, TURNS, 1000)?)
}

fn sft(
    model: &CausalLm,
    ex: &[SftExample],
    epochs: usize,
    schedule: LrSchedule,
    lr: f64,
    dev: &Device,
) -> Res<CausalLm> {
    let cfg = SftConfig {
        epochs,
        batch_size: BATCH,
        optim: OptimConfig {
            lr,
            weight_decay: 0.0,
            schedule,
            warmup_steps: SftConfig {
                epochs,
                batch_size: BATCH,
                ..SftConfig::default()
            }
            .total_steps(ex.len())
                / 10,
            ..OptimConfig::default()
        },
        shuffle: true,
        ..SftConfig::default()
    };
    let mut last = f64::NAN;
    let m = sft_train(model.clone(), ex, &cfg, dev, |r| {
        last = r.get("nll").unwrap_or(last)
    })?;
    eprintln!("  sft: {} examples, final nll {last:.3}", ex.len());
    Ok(m)
}

struct Row {
    name: String,
    steps: usize,
    rollouts: usize,
    seconds: f64,
    report: MultiTurnReport,
}

fn main() -> Res<()> {
    let a = args()?;
    let t_all = Instant::now();
    let mut all = Vec::new();
    for seed in a.seed..a.seed + a.seeds as u64 {
        let out = if a.seeds > 1 {
            a.out.join(format!("seed-{seed}"))
        } else {
            a.out.clone()
        };
        let rows = run_seed(&a, seed, &out)?;
        let table = table(&rows);
        println!("seed {seed}\n\n{table}");
        std::fs::write(out.join("table.md"), &table)?;
        std::fs::write(out.join("multi_at.svg"), chart(&rows))?;
        let json: Vec<_> = rows
            .iter()
            .map(|r| serde_json::json!({"method": r.name, "steps": r.steps, "rollouts": r.rollouts, "seconds": r.seconds, "report": r.report}))
            .collect();
        std::fs::write(
            out.join("results.json"),
            serde_json::to_string_pretty(&json)?,
        )?;
        all.push(rows);
    }
    if all.len() > 1 {
        let summary = mean_table(&all);
        println!("mean ± std over {} seeds\n\n{summary}", all.len());
        std::fs::write(a.out.join("table.md"), &summary)?;
    }
    eprintln!(
        "total {:.0}s → {}",
        t_all.elapsed().as_secs_f64(),
        a.out.display()
    );
    Ok(())
}

/// Everything for one seed: task, π_ref, collection, the offline variants, online GRPO.
fn run_seed(a: &Args, seed: u64, out: &std::path::Path) -> Res<Vec<Row>> {
    std::fs::create_dir_all(out)?;
    let dev = Device::flex().autodiff();
    dev.seed(seed);

    // Task: training prompts for collection / online RL, held-out problems, and separate
    // single-turn data for π_ref. Prompts show the answers ranked by noisy evidence.
    let task = |count, seed| {
        GuessConfig {
            count,
            seed,
            ranked: true,
            ..GuessConfig::default()
        }
        .generate()
    };
    let train = task(a.prompts, 1000 + seed)?.into_items();
    let heldout = task(a.heldout, 2000 + seed)?.into_items();
    let single = task(4000, 3000 + seed)?.into_items();

    // A compact chat template (user turns "<|im_start|>text\n", assistant turns
    // "text<|im_end|>", no headers) keeps an episode at ~40 tokens instead of ~150 with ChatML.
    let tok_dir = out.join("tokenizer");
    CharTokenizer {
        chat_template: COMPACT_TEMPLATE.into(),
        ..CharTokenizer::new("0123456789no\n")
    }
    .save(&tok_dir)?;
    let tok = ChatTokenizer::from_dir(&tok_dir)?;
    let im_end = tok
        .inner()
        .token_to_id("<|im_end|>")
        .ok_or("no <|im_end|>")?;
    let model = CausalLm::new(&model_config(tok.vocab_size(), im_end), &dev).init_normal(0.02);

    // π_ref: SFT on turn-1 inputs only, label a* with label noise (uniform over answers).
    let t = Instant::now();
    let mut noise = rlft_util::seed::splitmix64(seed ^ 0x5eed);
    let single_ex: Vec<SftExample> = single
        .iter()
        .map(|it| {
            noise = rlft_util::seed::splitmix64(noise);
            let label = if noise % 10 < a.label_noise {
                ((noise >> 8) % 8).to_string()
            } else {
                it.answer.clone()
            };
            let msgs = [
                Message::new(Role::User, it.prompt.clone()),
                Message::new(Role::Assistant, label),
            ];
            Ok(render_conversation(&tok, &msgs, LossTurns::Last)?.into_example(1.0))
        })
        .collect::<Res<_>>()?;
    let pi_ref = sft(
        &model,
        &single_ex,
        a.ref_epochs,
        LrSchedule::Cosine,
        a.ref_lr,
        &dev,
    )?;
    eprintln!("[seed {seed}] π_ref: {:.0}s", t.elapsed().as_secs_f64());
    let mut rows: Vec<Row> = Vec::new();
    let r = eval(&pi_ref, &tok, &heldout)?;
    eprintln!("π_ref multi@k {:?} repeat {:.3}", r.multi_at, r.repeat_rate);
    rows.push(Row {
        name: "π_ref".into(),
        steps: 0,
        rollouts: 0,
        seconds: 0.0,
        report: r,
    });

    // Collection from π_ref, once.
    let t = Instant::now();
    let env = env()?;
    let render = TemplateRender(&tok);
    let e = engine(&pi_ref, &tok)?;
    let setup = EpisodeSetup {
        engine: &e,
        env: &env,
        render: &render,
    };
    let dir = out.join("collect");
    let _ = std::fs::remove_dir_all(&dir);
    let ccfg = CollectConfig {
        k: a.k,
        max_turns: TURNS,
        prompts_per_shard: 64,
        seed,
        sampling: SamplingParams {
            temperature: 1.0,
            max_new_tokens: 2,
            ..SamplingParams::default()
        },
    };
    let sum = collect(&setup, &train, &dir, &ccfg, None, &mut |_| {})?;
    let collect_s = t.elapsed().as_secs_f64();
    eprintln!(
        "collect: {} trajectories, {} turns, {collect_s:.0}s",
        sum.trajectories, sum.turns
    );
    let data = read_rows(&dir)?;

    // Spec §9 step 3: the last turn carries loss (DRIFT as released); all turns as an ablation.
    let (last, all) = (LossTurns::Last, LossTurns::All);
    let variants: [(&str, f64, WeightMode, LossTurns); 7] = [
        ("DRIFT β=0.1", 0.1, WeightMode::Drift, last),
        ("DRIFT β=0.3", 0.3, WeightMode::Drift, last),
        ("DRIFT β=1", 1.0, WeightMode::Drift, last),
        ("uniform SFT (β=∞)", f64::INFINITY, WeightMode::Drift, last),
        ("RFT", 0.1, WeightMode::Rft, last),
        ("DRIFT β=0.1, all turns", 0.1, WeightMode::Drift, all),
        ("DRIFT β=0.3, all turns", 0.3, WeightMode::Drift, all),
    ];
    let mut drift_steps = 0;
    for (name, beta, mode, turns) in variants {
        let t = Instant::now();
        let w = weigh(
            &data,
            &WeightConfig {
                beta,
                mode,
                ..WeightConfig::default()
            },
        )?;
        let ex = examples(&data, &w, &tok, turns)?;
        let steps = SftConfig {
            batch_size: BATCH,
            ..SftConfig::default()
        }
        .total_steps(ex.len());
        if mode == WeightMode::Drift && beta == 0.1 && turns == last {
            drift_steps = steps;
        }
        let m = sft(&pi_ref, &ex, 1, LrSchedule::Constant, LR, &dev)?;
        let secs = collect_s + t.elapsed().as_secs_f64();
        let r = eval(&m, &tok, &heldout)?;
        eprintln!(
            "{name}: {steps} steps, multi@k {:?} repeat {:.3}",
            r.multi_at, r.repeat_rate
        );
        rows.push(Row {
            name: name.into(),
            steps,
            rollouts: sum.trajectories,
            seconds: secs,
            report: r,
        });
    }

    // Online multi-turn GRPO (8 prompts × K episodes per step, fresh rollouts every step), at
    // DRIFT's number of gradient steps and at `grpo_multiplier` times it.
    let mut budgets = vec![1];
    if a.grpo_multiplier > 1 {
        budgets.push(a.grpo_multiplier);
    }
    for mult in budgets {
        let t = Instant::now();
        let steps = drift_steps * mult;
        let source = MultiTurn::new(
            &env,
            train.clone(),
            tok.clone(),
            MultiTurnConfig {
                max_turns: TURNS,
                gamma: 0.9,
                loss_turns: LossTurns::All,
            },
        )?;
        let shape = BatchShape {
            num_prompts: train.len(),
            batch_size: 8,
            group_size: a.k as u32,
        };
        let cfg = OnlineConfig {
            steps,
            seed,
            sampling: SamplingParams {
                n: a.k,
                max_new_tokens: 2,
                temperature: 1.0,
                ..SamplingParams::default()
            },
            grpo: LearnerConfig {
                micro_batch_size: 128,
                optim: OptimConfig {
                    lr: LR,
                    weight_decay: 0.0,
                    schedule: LrSchedule::Constant,
                    ..OptimConfig::default()
                },
                ..LearnerConfig::default()
            },
            checkpoint_every: 0,
            keep_checkpoints: 1,
        };
        let tok_e = tok.clone();
        let factory = Box::new(
            move |m: &CausalLm| -> rlft_trainer::Result<Box<dyn RolloutEngine>> {
                Ok(Box::new(LocalEngine::new(
                    m.valid(),
                    Some(tok_e.clone()),
                    LocalConfig::default(),
                )?))
            },
        );
        let run_dir = out.join(format!("grpo-x{mult}"));
        let _ = std::fs::remove_dir_all(&run_dir);
        let mut trainer = OnlineTrainer::open(
            cfg,
            &run_dir,
            OnlineParts {
                model: pi_ref.clone(),
                reference: None,
                sampler: SamplerConfig::Uniform.build(shape)?,
                source: Box::new(source),
                engine: factory,
                terms: Vec::new(),
            },
            &dev,
        )?;
        let mut rollouts = 0.0;
        trainer.run(None, |rec| {
            rollouts = rec.get("rollouts").unwrap_or(rollouts)
        })?;
        let m = trainer.into_model();
        let r = eval(&m, &tok, &heldout)?;
        let name = format!("online GRPO ({mult}× steps)");
        eprintln!(
            "{name}: multi@k {:?} repeat {:.3}",
            r.multi_at, r.repeat_rate
        );
        rows.push(Row {
            name,
            steps,
            rollouts: rollouts as usize,
            seconds: t.elapsed().as_secs_f64(),
            report: r,
        });
    }
    Ok(rows)
}

fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| method | multi@1 | multi@2 | multi@3 | multi@4 | multi@5 | repeat rate | correction rate | gradient steps | rollouts (episodes) | seconds |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let m: Vec<String> = r
            .report
            .multi_at
            .iter()
            .map(|v| format!("{:.1}", 100.0 * v))
            .collect();
        s += &format!(
            "| {} | {} | {:.1} | {:.1} | {} | {} | {:.0} |\n",
            r.name,
            m.join(" | "),
            100.0 * r.report.repeat_rate,
            100.0 * r.report.correction_rate_overall,
            r.steps,
            r.rollouts,
            r.seconds
        );
    }
    s
}

/// Mean ± standard deviation over seeds of each method's multi@k and repeat rate.
fn mean_table(all: &[Vec<Row>]) -> String {
    let stat = |xs: Vec<f64>| {
        let n = xs.len() as f64;
        let m = xs.iter().sum::<f64>() / n;
        let sd = (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
        format!("{:.1} ± {:.1}", 100.0 * m, 100.0 * sd)
    };
    let mut s = String::from(
        "| method | multi@1 | multi@2 | multi@3 | multi@4 | multi@5 | repeat rate | gradient steps | rollouts (episodes) |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for (i, r) in all[0].iter().enumerate() {
        let cells: Vec<String> = (0..TURNS)
            .map(|k| stat(all.iter().map(|rows| rows[i].report.multi_at[k]).collect()))
            .collect();
        s += &format!(
            "| {} | {} | {} | {} | {} |\n",
            r.name,
            cells.join(" | "),
            stat(all.iter().map(|rows| rows[i].report.repeat_rate).collect()),
            r.steps,
            r.rollouts
        );
    }
    s
}

/// multi@k against k, one line per method.
fn chart(rows: &[Row]) -> String {
    let (w, h, left, top) = (640.0, 360.0, 50.0, 20.0);
    let (pw, ph) = (w - left - 220.0, h - top - 40.0);
    let colors = [
        "#000", "#d62728", "#ff7f0e", "#bcbd22", "#7f7f7f", "#9467bd", "#8c564b", "#e377c2",
        "#1f77b4", "#17becf",
    ];
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">"#
    );
    s += &format!(
        r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>"##
    );
    for i in 0..=5 {
        let y = top + ph - ph * i as f64 / 5.0;
        s += &format!(
            r#"<text x="{}" y="{}" text-anchor="end">{}%</text>"#,
            left - 4.0,
            y + 4.0,
            i * 20
        );
    }
    for k in 1..=TURNS {
        let x = left + pw * (k - 1) as f64 / (TURNS - 1) as f64;
        s += &format!(
            r#"<text x="{x}" y="{}" text-anchor="middle">multi@{k}</text>"#,
            top + ph + 16.0
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let c = colors[i % colors.len()];
        let pts: Vec<String> = r
            .report
            .multi_at
            .iter()
            .enumerate()
            .map(|(k, v)| {
                format!(
                    "{:.1},{:.1}",
                    left + pw * k as f64 / (TURNS - 1) as f64,
                    top + ph - ph * v
                )
            })
            .collect();
        s += &format!(
            r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"/>"#,
            pts.join(" ")
        );
        let y = top + 14.0 * i as f64 + 8.0;
        s += &format!(
            r#"<text x="{}" y="{y}" fill="{c}">{}</text>"#,
            left + pw + 10.0,
            r.name
        );
    }
    s + "</svg>\n"
}
