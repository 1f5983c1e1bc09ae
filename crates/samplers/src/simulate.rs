//! A learning-dynamics simulator: synthetic prompts whose success probability rises when they
//! are trained on, so samplers can be compared without a GPU.
//!
//! Config in ([`SimConfig`]), report out ([`SimReport`]), both serde. Every sampler trains B
//! prompts × k rollouts per step (equal training compute); screening rollouts are counted as
//! generated. Two worlds:
//!
//! - [`World::DpsToy`], DPS spec §8: logits a_i ~ N(−1.5, 2.5²); a trained prompt whose group is
//!   mixed gets a_i += 0.1·N(1, 0.5²); every prompt drifts by +0.01 × (mixed groups / B).
//! - [`World::SflLogit`], sfl.md §5.2: θ_i = z + u_i − d_i with a shared skill z, per-prompt
//!   progress u_i and difficulty d_i ~ N(0, 6²); a leave-one-out policy-gradient step
//!   (E[g_i] = p_i(1 − p_i)) moves u_i by η_u·g_i and z by η_z·mean g; optional drift; held-out
//!   prompts (u = 0) measure transfer.

use std::fmt::Write as _;

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, RngExt};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::config::SamplerConfig;
use crate::error::{Result, SamplerError, config_err};
use crate::sampler::{BatchShape, Outcome, PromptId, Selection};

/// The DPS spec §8 toy world.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DpsToyWorld {
    /// Number of prompts. Default 4000: DPS spec §8.
    pub num_prompts: usize,
    /// Mean of the initial logits. Default −1.5: DPS spec §8.
    pub logit_mean: f64,
    /// Std of the initial logits. Default 2.5: DPS spec §8.
    pub logit_std: f64,
    /// Learning step scale: a mixed trained group adds `learn_rate`·N(1, `learn_noise`²).
    /// Default 0.1: DPS spec §8.
    pub learn_rate: f64,
    /// Relative noise of the learning step. Default 0.5: DPS spec §8.
    pub learn_noise: f64,
    /// Transfer: every logit moves by `transfer` × (mixed groups / B). Default 0.01: DPS spec §8.
    pub transfer: f64,
}

impl Default for DpsToyWorld {
    fn default() -> Self {
        Self {
            num_prompts: 4000,
            logit_mean: -1.5,
            logit_std: 2.5,
            learn_rate: 0.1,
            learn_noise: 0.5,
            transfer: 0.01,
        }
    }
}

/// The sfl.md §5.2 world.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SflLogitWorld {
    /// Train prompts M. Default 2000: sfl.md §5.2.
    pub num_prompts: usize,
    /// Held-out prompts. Default 500: sfl.md §5.2.
    pub num_heldout: usize,
    /// Std of the difficulties d_i. Default 6: sfl.md §5.2.
    pub difficulty_std: f64,
    /// Initial shared skill z₀. Default −1: sfl.md §5.2.
    pub skill0: f64,
    /// η_u. Default 2.0: sfl.md §5.2.
    pub eta_u: f64,
    /// η_z. Default 0.5: sfl.md §5.2 (0.1 is the low-transfer bracket).
    pub eta_z: f64,
    /// Drift δ: u_i ← (1 − δ)u_i + N(0, σ_d²) per step. Default 0 (off); sfl.md suggests 1e-3.
    pub drift_decay: f64,
    /// Drift σ_d. Default 0 (off); sfl.md suggests 0.02.
    pub drift_std: f64,
}

impl Default for SflLogitWorld {
    fn default() -> Self {
        Self {
            num_prompts: 2000,
            num_heldout: 500,
            difficulty_std: 6.0,
            skill0: -1.0,
            eta_u: 2.0,
            eta_z: 0.5,
            drift_decay: 0.0,
            drift_std: 0.0,
        }
    }
}

/// Which synthetic world to simulate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum World {
    /// DPS spec §8.
    DpsToy(DpsToyWorld),
    /// sfl.md §5.2.
    SflLogit(SflLogitWorld),
}

/// A sampler under a display label.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NamedSampler {
    /// Label in tables and charts.
    pub label: String,
    /// The sampler.
    pub sampler: SamplerConfig,
}

/// Simulator input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// The world. Default: the DPS spec §8 toy world.
    pub world: World,
    /// Steps per run. Default 150: DPS spec §8.
    pub steps: u64,
    /// Seeds 0..seeds. Default 3: DPS spec §8.
    pub seeds: u64,
    /// Prompts trained per step B. Default 128: DPS spec §8.
    pub batch_size: usize,
    /// Rollouts per prompt k. Default 8: DPS spec §8.
    pub group_size: u32,
    /// A prompt counts as solved when p ≥ this. Default 0.5: sfl.md §5.2 metric 2.
    pub solved_threshold: f64,
    /// Report steps and rollouts until this share of prompts is solved. Default
    /// [0.4, 0.5, 0.6]: levels the DPS spec §8 world (≈27% solved at start) reaches within 150
    /// steps; sfl.md §5.2 uses [0.5, 0.7, 0.9] (the example's `--world sfl` sets that).
    pub solved_fractions: Vec<f64>,
    /// Samplers to compare. Default: US, DS (cap 4), HR, SFL inline (r = 4), SFL buffer
    /// (defaults), MoPPS (defaults), DPS (λ = 0.5, DPS spec §8).
    pub samplers: Vec<NamedSampler>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            world: World::DpsToy(DpsToyWorld::default()),
            steps: 150,
            seeds: 3,
            batch_size: 128,
            group_size: 8,
            solved_threshold: 0.5,
            solved_fractions: vec![0.4, 0.5, 0.6],
            samplers: default_samplers(),
        }
    }
}

/// The default line-up.
pub fn default_samplers() -> Vec<NamedSampler> {
    use crate::{DpsConfig, DynamicSamplingConfig, MoppsConfig, SflBufferConfig, SflInlineConfig};
    let named = |label: &str, sampler| NamedSampler {
        label: label.to_owned(),
        sampler,
    };
    vec![
        named("US", SamplerConfig::Uniform),
        named(
            "DS",
            SamplerConfig::DynamicSampling(DynamicSamplingConfig::default()),
        ),
        named("HR", SamplerConfig::HistoryResampling),
        named(
            "SFL-inline",
            SamplerConfig::SflInline(SflInlineConfig::default()),
        ),
        named(
            "SFL-buffer",
            SamplerConfig::SflBuffer(SflBufferConfig::default()),
        ),
        named("MoPPS", SamplerConfig::Mopps(MoppsConfig::default())),
        named(
            "DPS",
            SamplerConfig::Dps(DpsConfig {
                decay: 0.5,
                ..DpsConfig::default()
            }),
        ),
    ]
}

/// One step of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Cumulative rollouts generated after this step.
    pub rollouts: u64,
    /// Mean p over train prompts after this step.
    pub mean_p: f64,
    /// Share of train prompts with p ≥ the solved threshold.
    pub solved: f64,
    /// Mean p over held-out prompts (the train mean where the world has none).
    pub heldout_p: f64,
    /// Effective ratio of this step's trained prompts.
    pub effective_ratio: f64,
}

/// Per-sampler results, averaged over seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplerSummary {
    /// Label.
    pub label: String,
    /// Per step, averaged over seeds (index 0 is the state before training).
    pub curve: Vec<StepRecord>,
    /// Cumulative effective ratio, trained mixed groups / trained groups over the whole run
    /// (mean over seeds).
    pub effective_ratio: f64,
    /// Total rollouts generated (mean over seeds).
    pub rollouts: f64,
    /// Mean p at the budget of `steps·B·k` rollouts (interpolated; `None` if never reached).
    pub mean_p_at_budget: Option<f64>,
    /// For each solved fraction: mean first step reaching it (`None` unless every seed did).
    pub steps_to_solved: Vec<Option<f64>>,
    /// For each solved fraction: mean rollouts at that step.
    pub rollouts_to_solved: Vec<Option<f64>>,
}

/// Simulator output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimReport {
    /// The config that produced it.
    pub config: SimConfig,
    /// One entry per sampler, in config order.
    pub samplers: Vec<SamplerSummary>,
}

/// The mutable world of one run: p_i = σ(skill + progress_i + offset_i).
struct WorldState {
    /// Per-prompt learned progress (u_i).
    progress: Vec<f64>,
    /// Fixed per-prompt offset (DpsToy: the initial logit a_i; SflLogit: −d_i).
    offset: Vec<f64>,
    /// Held-out offsets (SflLogit only; their progress stays 0).
    heldout: Vec<f64>,
    /// Shared skill (DpsToy: the accumulated transfer drift; SflLogit: z).
    skill: f64,
}

/// A standard normal draw.
fn standard_normal(rng: &mut dyn Rng) -> f64 {
    rng.sample(StandardNormal)
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl WorldState {
    fn new(world: &World, rng: &mut dyn Rng) -> Self {
        match world {
            World::DpsToy(w) => Self {
                progress: vec![0.0; w.num_prompts],
                offset: (0..w.num_prompts)
                    .map(|_| w.logit_mean + w.logit_std * standard_normal(rng))
                    .collect(),
                heldout: Vec::new(),
                skill: 0.0,
            },
            World::SflLogit(w) => Self {
                progress: vec![0.0; w.num_prompts],
                offset: (0..w.num_prompts)
                    .map(|_| -w.difficulty_std * standard_normal(rng))
                    .collect(),
                heldout: (0..w.num_heldout)
                    .map(|_| -w.difficulty_std * standard_normal(rng))
                    .collect(),
                skill: w.skill0,
            },
        }
    }

    fn len(&self) -> usize {
        self.offset.len()
    }

    fn p(&self, i: usize) -> f64 {
        sigmoid(self.skill + self.progress[i] + self.offset[i])
    }

    fn rollout(&self, prompts: &[PromptId], k: u32, rng: &mut dyn Rng) -> Vec<Outcome> {
        prompts
            .iter()
            .map(|&i| {
                let p = self.p(i);
                let s = (0..k).filter(|_| rng.random::<f64>() < p).count() as u32;
                Outcome::new(i, s, k)
            })
            .collect()
    }

    fn learn(&mut self, world: &World, trained: &[Outcome], batch: usize, rng: &mut dyn Rng) {
        match world {
            World::DpsToy(w) => {
                let mut mixed = 0usize;
                for o in trained {
                    if o.is_mixed() {
                        mixed += 1;
                        self.progress[o.prompt] +=
                            w.learn_rate * (1.0 + w.learn_noise * standard_normal(rng));
                    }
                }
                self.skill += w.transfer * mixed as f64 / batch as f64;
            }
            World::SflLogit(w) => {
                let mut gsum = 0.0;
                let grads: Vec<f64> = trained
                    .iter()
                    .map(|o| loo_gradient(o.successes, o.k, self.p(o.prompt)))
                    .collect();
                for (o, g) in trained.iter().zip(&grads) {
                    self.progress[o.prompt] += w.eta_u * g;
                    gsum += g;
                }
                self.skill += w.eta_z * gsum / batch as f64;
                if w.drift_decay > 0.0 || w.drift_std > 0.0 {
                    for u in &mut self.progress {
                        *u = (1.0 - w.drift_decay) * *u + w.drift_std * standard_normal(rng);
                    }
                }
            }
        }
    }

    fn metrics(&self, threshold: f64) -> (f64, f64, f64) {
        let n = self.len() as f64;
        let ps = (0..self.len()).map(|i| self.p(i));
        let (sum, solved) = ps.fold((0.0, 0usize), |(s, c), p| {
            (s + p, c + usize::from(p >= threshold))
        });
        let held = if self.heldout.is_empty() {
            sum / n
        } else {
            self.heldout
                .iter()
                .map(|&x| sigmoid(self.skill + x))
                .sum::<f64>()
                / self.heldout.len() as f64
        };
        (sum / n, solved as f64 / n, held)
    }
}

/// Leave-one-out policy gradient of a Bernoulli policy for a group with `s` successes of `k`
/// (sfl.md §5.2): g = (1/k) Σ_j (r_j − mean_{j'≠j} r_j')(r_j − p). Zero when the group is not
/// mixed. Returns 0 for k < 2.
pub fn loo_gradient(s: u32, k: u32, p: f64) -> f64 {
    if k < 2 {
        return 0.0;
    }
    let (s, k) = (f64::from(s), f64::from(k));
    let a_succ = 1.0 - (s - 1.0) / (k - 1.0);
    let a_fail = -s / (k - 1.0);
    (s * a_succ * (1.0 - p) + (k - s) * a_fail * (-p)) / k
}

/// Run one sampler for one seed; returns the per-step records (index 0 = before training).
fn run_one(
    config: &SimConfig,
    sampler: &SamplerConfig,
    seed: u64,
) -> Result<(Vec<StepRecord>, f64)> {
    let mut world_rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut world = WorldState::new(&config.world, &mut world_rng);
    let mut rollout_rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x5151_5151);
    let mut sampler_rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0xA5A5_A5A5_0000);
    let shape = BatchShape {
        num_prompts: world.len(),
        batch_size: config.batch_size,
        group_size: config.group_size,
    };
    let mut s = sampler.build(shape)?;
    let (m, solved, held) = world.metrics(config.solved_threshold);
    let mut records = vec![StepRecord {
        rollouts: 0,
        mean_p: m,
        solved,
        heldout_p: held,
        effective_ratio: 0.0,
    }];
    for step in 0..config.steps {
        let mut screened: Vec<Outcome> = Vec::new();
        let trained: Vec<Outcome>;
        let mut requests = 0;
        loop {
            requests += 1;
            if requests > 10_000 {
                return Err(SamplerError::State {
                    reason: format!("sampler made over 10000 requests in step {step}"),
                });
            }
            match s.select(step, &mut sampler_rng)? {
                Selection::Screen { prompts, rollouts } => {
                    let out = world.rollout(&prompts, rollouts, &mut rollout_rng);
                    s.observe(&out)?;
                    screened.extend(out);
                }
                Selection::Train { prompts, rollouts } => {
                    let out = world.rollout(&prompts, rollouts, &mut rollout_rng);
                    s.observe(&out)?;
                    trained = out;
                    break;
                }
                Selection::TrainScreened { prompts } => {
                    trained = prompts
                        .iter()
                        .filter_map(|p| screened.iter().rev().find(|o| o.prompt == *p).copied())
                        .collect();
                    break;
                }
            }
        }
        world.learn(&config.world, &trained, config.batch_size, &mut world_rng);
        let (m, solved, held) = world.metrics(config.solved_threshold);
        let mixed = trained.iter().filter(|o| o.is_mixed()).count();
        records.push(StepRecord {
            rollouts: s.accounting().rollouts_generated,
            mean_p: m,
            solved,
            heldout_p: held,
            effective_ratio: if trained.is_empty() {
                0.0
            } else {
                mixed as f64 / trained.len() as f64
            },
        });
    }
    Ok((records, s.accounting().effective_ratio()))
}

/// Linear interpolation of mean p at `budget` cumulative rollouts.
fn mean_p_at(records: &[StepRecord], budget: f64) -> Option<f64> {
    let mut prev = records.first()?;
    for r in records.iter().skip(1) {
        let x = r.rollouts as f64;
        if x >= budget {
            let x0 = prev.rollouts as f64;
            let t = if x > x0 {
                (budget - x0) / (x - x0)
            } else {
                1.0
            };
            return Some(prev.mean_p + t * (r.mean_p - prev.mean_p));
        }
        prev = r;
    }
    None
}

impl SimConfig {
    /// Check the config.
    ///
    /// # Errors
    /// [`SamplerError::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 {
            return Err(config_err("steps", "must be at least 1, got 0"));
        }
        if self.seeds == 0 {
            return Err(config_err("seeds", "must be at least 1, got 0"));
        }
        if self.samplers.is_empty() {
            return Err(config_err("samplers", "must name at least one sampler"));
        }
        if self
            .solved_fractions
            .iter()
            .any(|f| !(0.0..=1.0).contains(f))
        {
            return Err(config_err("solved_fractions", "each must be in [0, 1]"));
        }
        let n = match &self.world {
            World::DpsToy(w) => w.num_prompts,
            World::SflLogit(w) => w.num_prompts,
        };
        BatchShape {
            num_prompts: n,
            batch_size: self.batch_size,
            group_size: self.group_size,
        }
        .validate()
    }
}

/// Run every sampler over every seed and summarise.
///
/// # Errors
/// [`SamplerError::Config`] for an invalid config or sampler; any sampler error.
pub fn run(config: &SimConfig) -> Result<SimReport> {
    config.validate()?;
    let budget = config.steps as f64 * config.batch_size as f64 * f64::from(config.group_size);
    let mut samplers = Vec::new();
    for named in &config.samplers {
        let results: Vec<(Vec<StepRecord>, f64)> = (0..config.seeds)
            .map(|seed| run_one(config, &named.sampler, seed))
            .collect::<Result<_>>()?;
        let effective_ratio = results.iter().map(|r| r.1).sum::<f64>() / results.len() as f64;
        let runs: Vec<Vec<StepRecord>> = results.into_iter().map(|r| r.0).collect();
        let ns = runs.len() as f64;
        let steps = runs[0].len();
        let curve: Vec<StepRecord> = (0..steps)
            .map(|t| {
                let avg = |f: &dyn Fn(&StepRecord) -> f64| {
                    runs.iter().map(|r| f(&r[t])).sum::<f64>() / ns
                };
                StepRecord {
                    rollouts: avg(&|r| r.rollouts as f64).round() as u64,
                    mean_p: avg(&|r| r.mean_p),
                    solved: avg(&|r| r.solved),
                    heldout_p: avg(&|r| r.heldout_p),
                    effective_ratio: avg(&|r| r.effective_ratio),
                }
            })
            .collect();
        let rollouts = runs
            .iter()
            .map(|r| r.last().map_or(0.0, |x| x.rollouts as f64))
            .sum::<f64>()
            / ns;
        let at_budget: Option<Vec<f64>> = runs.iter().map(|r| mean_p_at(r, budget)).collect();
        let mean_p_at_budget = at_budget.map(|v| v.iter().sum::<f64>() / ns);
        let mut steps_to_solved = Vec::new();
        let mut rollouts_to_solved = Vec::new();
        for &frac in &config.solved_fractions {
            let hits: Option<Vec<(f64, f64)>> = runs
                .iter()
                .map(|r| {
                    r.iter()
                        .position(|x| x.solved >= frac)
                        .map(|t| (t as f64, r[t].rollouts as f64))
                })
                .collect();
            steps_to_solved.push(
                hits.as_ref()
                    .map(|h| h.iter().map(|x| x.0).sum::<f64>() / ns),
            );
            rollouts_to_solved.push(hits.map(|h| h.iter().map(|x| x.1).sum::<f64>() / ns));
        }
        samplers.push(SamplerSummary {
            label: named.label.clone(),
            curve,
            effective_ratio,
            rollouts,
            mean_p_at_budget,
            steps_to_solved,
            rollouts_to_solved,
        });
    }
    Ok(SimReport {
        config: config.clone(),
        samplers,
    })
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "—".to_owned(), |x| format!("{x:.digits$}"))
}

fn fmt_k(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |x| format!("{:.0}k", x / 1000.0))
}

impl SimReport {
    /// A markdown table: mean p at a third, two thirds and all of the steps; mean p at the
    /// uniform budget; total rollouts; effective ratio; steps and rollouts to each solved share.
    pub fn markdown_table(&self) -> String {
        let c = &self.config;
        let t1 = (c.steps / 3) as usize;
        let t2 = (2 * c.steps / 3) as usize;
        let t3 = c.steps as usize;
        let budget = c.steps * c.batch_size as u64 * u64::from(c.group_size);
        let mut s = String::new();
        let _ = write!(
            s,
            "| sampler | mean p @{t1} | @{t2} | @{t3} | mean p @{}k rollouts | rollouts | effective ratio |",
            budget / 1000
        );
        for f in &c.solved_fractions {
            let _ = write!(
                s,
                " steps to {:.0}% solved | rollouts to {:.0}% |",
                f * 100.0,
                f * 100.0
            );
        }
        s.push('\n');
        s.push_str("|---|---|---|---|---|---|---|");
        for _ in &c.solved_fractions {
            s.push_str("---|---|");
        }
        s.push('\n');
        for r in &self.samplers {
            let at = |t: usize| r.curve.get(t).map_or(f64::NAN, |x| x.mean_p);
            let _ = write!(
                s,
                "| {} | {:.3} | {:.3} | {:.3} | {} | {:.0}k | {:.2} |",
                r.label,
                at(t1),
                at(t2),
                at(t3),
                fmt_opt(r.mean_p_at_budget, 3),
                r.rollouts / 1000.0,
                r.effective_ratio
            );
            for (st, ro) in r.steps_to_solved.iter().zip(&r.rollouts_to_solved) {
                let _ = write!(s, " {} | {} |", fmt_opt(*st, 0), fmt_k(*ro));
            }
            s.push('\n');
        }
        s
    }

    /// A hand-written SVG with two panels: mean p against steps and against rollouts.
    pub fn svg(&self) -> String {
        const W: f64 = 900.0;
        const H: f64 = 380.0;
        const COLORS: [&str; 8] = [
            "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#ff7f0e", "#17becf",
        ];
        let (pw, ph, top, left) = (360.0, 280.0, 40.0, 60.0);
        let panels = [
            (left, "training step"),
            (left + pw + 80.0, "rollouts generated"),
        ];
        let all_p = self
            .samplers
            .iter()
            .flat_map(|r| r.curve.iter().map(|x| x.mean_p));
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for p in all_p {
            lo = lo.min(p);
            hi = hi.max(p);
        }
        if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
            hi = lo + 1.0;
        }
        let pad = 0.05 * (hi - lo);
        let (lo, hi) = (lo - pad, hi + pad);
        let max_step = self.config.steps as f64;
        let max_roll = self
            .samplers
            .iter()
            .flat_map(|r| r.curve.last().map(|x| x.rollouts as f64))
            .fold(1.0, f64::max);
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        );
        for (pi, (x0, xlabel)) in panels.iter().enumerate() {
            let xmax = if pi == 0 { max_step } else { max_roll };
            let _ = writeln!(
                s,
                "<rect x=\"{x0}\" y=\"{top}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#333\"/>"
            );
            let _ = writeln!(
                s,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{xlabel}</text>",
                x0 + pw / 2.0,
                top + ph + 34.0
            );
            for k in 0..=4 {
                let v = lo + (hi - lo) * f64::from(k) / 4.0;
                let y = top + ph - ph * f64::from(k) / 4.0;
                let _ = writeln!(
                    s,
                    "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{v:.2}</text><line x1=\"{x0}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#ddd\"/>",
                    x0 - 4.0,
                    y + 4.0,
                    x0 + pw
                );
                let xv = xmax * f64::from(k) / 4.0;
                let label = if pi == 0 {
                    format!("{xv:.0}")
                } else {
                    format!("{:.0}k", xv / 1000.0)
                };
                let _ = writeln!(
                    s,
                    "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
                    x0 + pw * f64::from(k) / 4.0,
                    top + ph + 16.0
                );
            }
            for (ri, r) in self.samplers.iter().enumerate() {
                let pts: Vec<String> = r
                    .curve
                    .iter()
                    .enumerate()
                    .map(|(t, x)| {
                        let xv = if pi == 0 { t as f64 } else { x.rollouts as f64 };
                        let px = x0 + pw * xv / xmax;
                        let py = top + ph - ph * (x.mean_p - lo) / (hi - lo);
                        format!("{px:.1},{py:.1}")
                    })
                    .collect();
                let _ = writeln!(
                    s,
                    "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\" points=\"{}\"/>",
                    COLORS[ri % COLORS.len()],
                    pts.join(" ")
                );
            }
        }
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">mean success probability over train prompts (mean of {} seeds)</text>",
            W / 2.0,
            self.config.seeds
        );
        for (ri, r) in self.samplers.iter().enumerate() {
            let y = top + 12.0 + 16.0 * ri as f64;
            let x = left + 8.0;
            let _ = writeln!(
                s,
                "<line x1=\"{x}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"{}\" stroke-width=\"3\"/><text x=\"{}\" y=\"{}\">{}</text>",
                x + 18.0,
                COLORS[ri % COLORS.len()],
                x + 24.0,
                y + 4.0,
                xml_escape(&r.label)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Write `contents` to `path` atomically with [`rlft_util::fs::write_atomic`] (temporary file
/// in the same directory, fsync, rename).
///
/// # Errors
/// [`SamplerError::Io`] naming the path.
pub fn write_atomic(path: &std::path::Path, contents: &str) -> Result<()> {
    rlft_util::fs::write_atomic(path, contents).map_err(|source| SamplerError::Io {
        path: path.display().to_string(),
        source,
    })
}
