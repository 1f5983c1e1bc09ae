//! The CPU experiment of spec prerl.md §7.2–7.3 with rlft's own tiny transformer on the
//! (a+b) mod 10 restatement task ([`rlft_tasks::RestateTask`]).
//!
//! Per seed: SFT a fresh tiny Qwen2-shaped model on traces of the task (all 100 pairs); then,
//! from that same checkpoint, RL on the train pairs with each method (GRPO, PSR, NSR,
//! W-REINFORCE in the conditional space; PSR-PreRL and NSR-PreRL in the marginal space;
//! DSRL); evaluate every model on the held-out pairs with n samples per prompt at T = 1:
//! unbiased pass@k and the reflection rate (share of completions with the retry marker `W`).
//! DSRL is also evaluated at its switch, which is the "NSR-PreRL after S steps" row.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::tensor::Device;
use rand::{SeedableRng, rngs::StdRng};
use rlft_models::{CausalLm, CharTokenizer, ChatTokenizer, qwen2};
use rlft_rollout::{LocalConfig, LocalEngine, RolloutEngine, SamplingParams};
use rlft_samplers::{BatchShape, Uniform};
use rlft_tasks::{RestateConfig, RestateTask, RestateVerifier, restate_correct, restate_reflects};
use rlft_trainer::{
    Learner, LearnerConfig, LrSchedule, OptimConfig, SftConfig, SftExample, SingleTurn, Term,
    VerifierRewarder, collect_step, pass_at_k, sft_train,
};
use serde::{Deserialize, Serialize};

use crate::config::{DsrlConfig, PreRlConfig, PreRlVariant, RlMethod};
use crate::error::{PrerlError, Result};

/// A method of the experiment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Method {
    /// A conditional-space method (log π(y|x)).
    Conditional {
        /// Which.
        method: RlMethod,
    },
    /// A PreRL variant with the code's weights (marginal space, log P(y)).
    PreRl {
        /// Which samples.
        variant: PreRlVariant,
    },
    /// DSRL with its switch at `ExperimentConfig::switch`.
    Dsrl,
}

impl Method {
    /// The row label.
    pub fn label(&self) -> String {
        match self {
            Self::Conditional { method } => match method {
                RlMethod::Grpo { .. } => "GRPO (cond.)".into(),
                RlMethod::Psr => "PSR (cond.)".into(),
                RlMethod::Nsr => "NSR (cond.)".into(),
                RlMethod::WReinforce { lambda } => format!("W-REINFORCE λ={lambda} (cond.)"),
            },
            Self::PreRl { variant } => match variant {
                PreRlVariant::Psr => "PSR-PreRL (marg.)".into(),
                PreRlVariant::Nsr => "NSR-PreRL (marg.)".into(),
                PreRlVariant::Both => "PreRL both (marg.)".into(),
            },
            Self::Dsrl => "DSRL".into(),
        }
    }

    /// The seven methods of spec §7.2.
    pub fn all() -> Vec<Method> {
        let c = |method| Self::Conditional { method };
        vec![
            c(RlMethod::default()),
            c(RlMethod::Psr),
            c(RlMethod::Nsr),
            c(RlMethod::w_reinforce()),
            Self::PreRl {
                variant: PreRlVariant::Psr,
            },
            Self::PreRl {
                variant: PreRlVariant::Nsr,
            },
            Self::Dsrl,
        ]
    }
}

/// Settings of the experiment (rlft's choices for a 2-core CPU; the spec's numpy prototype
/// used 200 steps of 16 prompts × 8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Seeds; each gives its own SFT model, split-independent RL sampling and evaluation.
    /// Default 0, 1, 2.
    pub seeds: Vec<u64>,
    /// The task (split seed, SFT shares).
    pub task: RestateConfig,
    /// SFT traces. Default 30000 (enough for the tiny model to come close to the traces'
    /// own pass@1; see [`Report::sft_target`]).
    pub sft_traces: usize,
    /// SFT epochs over the traces. Default 4.
    pub sft_epochs: usize,
    /// SFT learning rate (AdamW). Default 1e-2.
    pub sft_lr: f64,
    /// RL steps. Default 100.
    pub rl_steps: usize,
    /// Prompts per RL step. Default 16 (spec §7.2).
    pub prompts_per_step: usize,
    /// Completions per prompt G. Default 8 (spec §7.2, the released scripts).
    pub group_size: usize,
    /// RL learning rate (AdamW, constant, no weight decay). Default 1e-3.
    pub rl_lr: f64,
    /// DSRL's switch (0-based rlft step, = verl's S − 1). Default 19 (released S = 20).
    pub switch: usize,
    /// Held-out samples per prompt. Default 256.
    pub eval_samples: usize,
    /// Hidden size of the tiny model. Default 64.
    pub hidden_size: usize,
}

impl Default for ExperimentConfig {
    fn default() -> Self {
        Self {
            seeds: vec![0, 1, 2],
            task: RestateConfig::default(),
            sft_traces: 30000,
            sft_epochs: 4,
            sft_lr: 1e-2,
            rl_steps: 100,
            prompts_per_step: 16,
            group_size: 8,
            rl_lr: 1e-3,
            switch: 19,
            eval_samples: 256,
            hidden_size: 64,
        }
    }
}

/// Held-out numbers of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Eval {
    /// Unbiased pass@k for k = 1, 2, 4, …, n.
    pub pass_at_k: BTreeMap<usize, f64>,
    /// Share of completions with the retry marker.
    pub reflection: f64,
}

/// One row: a method's evaluations, one per seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Label.
    pub method: String,
    /// One evaluation per seed, in seed order.
    pub evals: Vec<Eval>,
}

impl Row {
    /// Mean and half-range (max − min)/2 over seeds of pass@k.
    pub fn pass(&self, k: usize) -> (f64, f64) {
        spread(
            self.evals
                .iter()
                .map(|e| e.pass_at_k.get(&k).copied().unwrap_or(f64::NAN)),
        )
    }

    /// Mean and half-range of the reflection rate.
    pub fn reflection(&self) -> (f64, f64) {
        spread(self.evals.iter().map(|e| e.reflection))
    }
}

fn spread(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let v: Vec<f64> = v.collect();
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, (hi - lo) / 2.0)
}

/// The whole result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The settings.
    pub config: ExperimentConfig,
    /// `base`, each method, and `NSR-PreRL after S` (DSRL at its switch).
    pub rows: Vec<Row>,
    /// What a perfect SFT fit would score on the held-out pairs: the trace distribution's
    /// pass@1 and reflection rate, computed exactly from the task's shares.
    pub sft_target: (f64, f64),
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// The held-out pass@1 and reflection rate of the SFT trace distribution itself.
pub fn sft_target(cfg: &RestateConfig, pairs: &[(u8, u8)]) -> (f64, f64) {
    let (mut pass, mut reflect) = (0.0, 0.0);
    for &(a, b) in pairs {
        let good: f64 = (0..3)
            .filter(|&s| rlft_tasks::restate_digit(a, b, s) == (a + b) % 10)
            .map(|s| cfg.strategy_probs[s])
            .sum();
        let retry = (1.0 - good) * cfg.retry_prob;
        pass += good + retry * good;
        reflect += retry;
    }
    let n = pairs.len().max(1) as f64;
    (pass / n, reflect / n)
}

/// Labels of the extra rows.
pub const BASE: &str = "base (SFT)";
/// DSRL evaluated at its switch: NSR-PreRL after S − 1 updates.
pub const AT_SWITCH: &str = "DSRL at switch (S−1 NSR-PreRL steps)";

impl Report {
    /// The row labelled `label`.
    pub fn row(&self, label: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.method == label)
    }

    /// The spec's acceptance statements (i)–(iv), each as (statement, held), on seed means.
    pub fn acceptance(&self) -> Vec<(String, bool)> {
        let get = |l: &str| self.row(l);
        let (base, psr, nsr, at_s) = (
            get(BASE),
            get(&Method::Conditional {
                method: RlMethod::Psr,
            }
            .label()),
            get(&Method::Conditional {
                method: RlMethod::Nsr,
            }
            .label()),
            get(AT_SWITCH),
        );
        let n = self.config.eval_samples;
        let k64 = 64.min(n);
        let mut out = Vec::new();
        if let (Some(b), Some(p)) = (base, psr) {
            out.push((
                format!(
                    "(i) PSR: pass@1 above base ({:.3} vs {:.3}) and pass@{n} below base ({:.3} vs {:.3})",
                    p.pass(1).0, b.pass(1).0, p.pass(n).0, b.pass(n).0
                ),
                p.pass(1).0 > b.pass(1).0 && p.pass(n).0 < b.pass(n).0,
            ));
        }
        if let (Some(p), Some(q)) = (psr, nsr) {
            out.push((
                format!(
                    "(ii) pass@{n}: NSR {:.3} > PSR {:.3}",
                    q.pass(n).0,
                    p.pass(n).0
                ),
                q.pass(n).0 > p.pass(n).0,
            ));
        }
        if let (Some(b), Some(s)) = (base, at_s) {
            out.push((
                format!(
                    "(iii) after S−1 NSR-PreRL steps: pass@1 {:.3} ≥ base {:.3} and pass@{k64} {:.3} within 0.02 of base {:.3}",
                    s.pass(1).0, b.pass(1).0, s.pass(k64).0, b.pass(k64).0
                ),
                s.pass(1).0 >= b.pass(1).0 && (s.pass(k64).0 - b.pass(k64).0).abs() <= 0.02,
            ));
        }
        if let (Some(p), Some(q)) = (psr, nsr) {
            out.push((
                format!(
                    "(iv) reflection rate: PSR {:.3} < NSR {:.3}",
                    p.reflection().0,
                    q.reflection().0
                ),
                p.reflection().0 < q.reflection().0,
            ));
        }
        out
    }

    /// The results as a Markdown table (mean ± half-range over seeds) and the acceptance
    /// statements.
    pub fn markdown(&self) -> String {
        let n = self.config.eval_samples;
        let ks: Vec<usize> = [1, 64, 256].into_iter().filter(|&k| k <= n).collect();
        let mut s = String::from("| method |");
        for k in &ks {
            s.push_str(&format!(" pass@{k} |"));
        }
        s.push_str(" reflection (W) |\n|---|");
        for _ in &ks {
            s.push_str("---|");
        }
        s.push_str("---|\n");
        for r in &self.rows {
            s.push_str(&format!("| {} |", r.method));
            for &k in &ks {
                let (m, h) = r.pass(k);
                s.push_str(&format!(" {m:.3} ± {h:.3} |"));
            }
            let (m, h) = r.reflection();
            s.push_str(&format!(" {m:.3} ± {h:.3} |\n"));
        }
        s.push_str(&format!(
            "\nThe SFT traces themselves score pass@1 {:.3} and reflection {:.3} on these pairs.\n\n",
            self.sft_target.0, self.sft_target.1
        ));
        for (text, held) in self.acceptance() {
            s.push_str(&format!(
                "- {text}: **{}**\n",
                if held { "held" } else { "not held" }
            ));
        }
        s
    }

    /// Mean pass@k curves, one per row.
    pub fn curves(&self) -> Vec<(String, Vec<(usize, f64)>)> {
        self.rows
            .iter()
            .map(|r| {
                let ks: Vec<usize> = r.evals[0].pass_at_k.keys().copied().collect();
                (
                    r.method.clone(),
                    ks.iter().map(|&k| (k, r.pass(k).0)).collect(),
                )
            })
            .collect()
    }
}

/// The tokenizer of the task: digits, `+`, `=`, strategies, the retry marker.
///
/// # Errors
/// I/O or tokenizer errors.
pub fn tokenizer() -> Result<ChatTokenizer> {
    let dir = std::env::temp_dir().join(format!(
        "rlft-prerl-tok-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    CharTokenizer::new("0123456789+=ABCW").save(&dir)?;
    let tok = ChatTokenizer::from_dir(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(tok?)
}

/// Runs the experiment on `device` (an autodiff device); `log` receives progress lines.
///
/// # Errors
/// Config, model, engine and learner errors.
pub fn run(cfg: &ExperimentConfig, device: &Device, mut log: impl FnMut(&str)) -> Result<Report> {
    let t0 = std::time::Instant::now();
    if cfg.seeds.is_empty() || cfg.eval_samples == 0 || cfg.rl_steps <= cfg.switch {
        return Err(PrerlError::Config {
            field: "experiment",
            reason: format!(
                "need ≥ 1 seed, eval_samples ≥ 1 and rl_steps ({}) > switch ({})",
                cfg.rl_steps, cfg.switch
            ),
        });
    }
    let task = cfg.task.generate()?;
    let tok = tokenizer()?;
    let eos = tok.eos_token_id().ok_or(PrerlError::Config {
        field: "tokenizer",
        reason: "no EOS token".into(),
    })?;
    let methods = Method::all();
    let mut rows: Vec<Row> = [BASE.to_string()]
        .into_iter()
        .chain(methods.iter().map(Method::label))
        .chain([AT_SWITCH.to_string()])
        .map(|method| Row {
            method,
            evals: Vec::new(),
        })
        .collect();
    for &seed in &cfg.seeds {
        let base = sft(cfg, &task, &tok, eos, seed, device)?;
        let e = evaluate(cfg, &task, &tok, &base, seed)?;
        log(&format!(
            "seed {seed} base: pass@1 {:.3}  reflection {:.3}  ({:.0} s)",
            e.pass_at_k[&1],
            e.reflection,
            t0.elapsed().as_secs_f64()
        ));
        rows[0].evals.push(e);
        for (mi, method) in methods.iter().enumerate() {
            let (model, at_switch) =
                train(cfg, &task, &tok, eos, base.clone(), *method, seed, device)?;
            if let Some(m) = at_switch {
                let e = evaluate(cfg, &task, &tok, &m, seed)?;
                rows.last_mut().expect("rows").evals.push(e);
            }
            let e = evaluate(cfg, &task, &tok, &model, seed)?;
            log(&format!(
                "seed {seed} {}: pass@1 {:.3}  reflection {:.3}  ({:.0} s)",
                method.label(),
                e.pass_at_k[&1],
                e.reflection,
                t0.elapsed().as_secs_f64()
            ));
            rows[mi + 1].evals.push(e);
        }
    }
    Ok(Report {
        config: cfg.clone(),
        rows,
        sft_target: sft_target(&cfg.task, &task.test),
        seconds: t0.elapsed().as_secs_f64(),
    })
}

fn prompt_ids(tok: &ChatTokenizer, pairs: &[(u8, u8)]) -> Result<Vec<Vec<u32>>> {
    Ok(RestateTask::items(pairs)
        .iter()
        .map(|it| tok.encode(&it.prompt, false))
        .collect::<std::result::Result<_, _>>()?)
}

fn sft(
    cfg: &ExperimentConfig,
    task: &RestateTask,
    tok: &ChatTokenizer,
    eos: u32,
    seed: u64,
    device: &Device,
) -> Result<CausalLm> {
    device.seed(seed);
    let mut mc = qwen2::tiny(tok.vocab_size());
    (mc.hidden_size, mc.eos_token_ids) = (cfg.hidden_size, vec![eos]);
    let model = CausalLm::new(&mc, device).init_normal(0.02);
    let mut examples = Vec::with_capacity(cfg.sft_traces);
    for (p, c) in task.sft_traces(cfg.sft_traces, seed) {
        examples.push(SftExample {
            prompt_ids: tok.encode(&p, false)?,
            completion_ids: [tok.encode(&c, false)?, vec![eos]].concat(),
            ..SftExample::default()
        });
    }
    let sc = SftConfig {
        epochs: cfg.sft_epochs,
        batch_size: 64,
        optim: OptimConfig {
            lr: cfg.sft_lr,
            weight_decay: 0.0,
            ..OptimConfig::default()
        },
        seed,
        pad_id: eos,
        ..SftConfig::default()
    };
    Ok(sft_train(model, &examples, &sc, device, |_| {})?)
}

#[allow(clippy::too_many_arguments)]
fn train(
    cfg: &ExperimentConfig,
    task: &RestateTask,
    tok: &ChatTokenizer,
    eos: u32,
    mut model: CausalLm,
    method: Method,
    seed: u64,
    device: &Device,
) -> Result<(CausalLm, Option<CausalLm>)> {
    let scorer = crate::config::PreRlConfig::default().scorer(Some(tok))?;
    let learner = LearnerConfig {
        optim: OptimConfig {
            lr: cfg.rl_lr,
            weight_decay: 0.0,
            schedule: LrSchedule::Constant,
            ..OptimConfig::default()
        },
        micro_batch_size: cfg.prompts_per_step * cfg.group_size,
        pad_id: eos,
        ..LearnerConfig::default()
    };
    let (terms, learner): (Vec<Term>, LearnerConfig) = match method {
        Method::Conditional { method } => (vec![method.term(method.name())?], learner),
        Method::PreRl { variant } => (
            vec![PreRlConfig::code(variant).term("prerl", scorer)?],
            learner,
        ),
        Method::Dsrl => DsrlConfig::switching_at(cfg.switch).build(scorer, learner)?,
    };
    let mut learner = Learner::with_terms(learner, cfg.rl_steps, terms)?;
    let items = RestateTask::items(&task.train);
    let prompts = prompt_ids(tok, &task.train)?;
    let shape = BatchShape {
        num_prompts: items.len(),
        batch_size: cfg.prompts_per_step,
        group_size: cfg.group_size as u32,
    };
    let mut sampler = Uniform::new(shape).map_err(|e| PrerlError::Config {
        field: "experiment.prompts_per_step",
        reason: e.to_string(),
    })?;
    let rewarder = VerifierRewarder::new(RestateVerifier, items);
    let source = SingleTurn::new(prompts, &rewarder);
    let mut reference: Option<CausalLm> = None;
    let mut at_switch = None;
    for step in 0..cfg.rl_steps as u64 {
        let engine = LocalEngine::new(model.valid(), Some(tok.clone()), LocalConfig::default())?;
        let params = SamplingParams {
            n: cfg.group_size,
            max_new_tokens: 8,
            temperature: 1.0,
            seed: Some(seed * 1_000_003 + step),
            ..SamplingParams::default()
        };
        let mut rng = StdRng::seed_from_u64(seed * 1_000_003 + step);
        let got = collect_step(step, &mut sampler, &mut rng, &engine, &source, &params)?;
        if learner.reference_sync_due() {
            reference = Some(model.clone());
            if method == Method::Dsrl {
                at_switch = Some(model.clone());
            }
        }
        model = learner
            .update(model, reference.as_ref(), &got.groups, device)?
            .0;
    }
    Ok((model, at_switch))
}

fn evaluate(
    cfg: &ExperimentConfig,
    task: &RestateTask,
    tok: &ChatTokenizer,
    model: &CausalLm,
    seed: u64,
) -> Result<Eval> {
    let engine = LocalEngine::new(model.valid(), Some(tok.clone()), LocalConfig::default())?;
    let prompts: Vec<(usize, Vec<u32>)> = prompt_ids(tok, &task.test)?
        .into_iter()
        .enumerate()
        .collect();
    let n = cfg.eval_samples;
    let params = SamplingParams {
        n,
        max_new_tokens: 8,
        temperature: 1.0,
        seed: Some(0xe7a1 ^ seed),
        ..SamplingParams::default()
    };
    let (mut correct, mut reflect, mut total) = (Vec::new(), 0usize, 0usize);
    for chunk in prompts.chunks(8) {
        for g in engine.generate_groups(chunk, &params)? {
            let (a, b) = task.test[g.prompt_index];
            let mut c = 0;
            for comp in &g.completions {
                c += usize::from(restate_correct(a, b, &comp.text));
                reflect += usize::from(restate_reflects(&comp.text));
                total += 1;
            }
            correct.push(c);
        }
    }
    let m = correct.len().max(1) as f64;
    let mut pass = BTreeMap::new();
    let mut k = 1;
    while k <= n {
        pass.insert(
            k,
            correct.iter().map(|&c| pass_at_k(n, c, k)).sum::<f64>() / m,
        );
        k *= 2;
    }
    pass.insert(
        n,
        correct.iter().map(|&c| pass_at_k(n, c, n)).sum::<f64>() / m,
    );
    Ok(Eval {
        pass_at_k: pass,
        reflection: reflect as f64 / total.max(1) as f64,
    })
}
