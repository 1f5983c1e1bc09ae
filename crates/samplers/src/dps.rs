//! Dynamics-Predictive Sampling (DPS; Mao et al., ICLR 2026, arXiv 2603.10887), exactly as in
//! `recipe/dps/task_sampler.py` (`BayesianHMMSampler`), vectorised as struct-of-arrays.
//!
//! Per prompt: a 3-state chain (1 unsolved, 2 partial, 3 solved) with its own Dirichlet
//! transition counts α[to, from] and a posterior μ^post. Each step, for every tracked prompt:
//!
//! 1. observation: μ^post ← e_o if observed in state o, else μ^post ← μ^prior = Φ̄(α)μ^post;
//! 2. transition counts: ξ(i, j) = μ^post_new(i) Φ̄_old(i, j) μ^post_old(j) / Σ (0 if unobserved),
//!    α ← λα + (1 − λ)α₀ + ξ (every tracked prompt decays, observed or not);
//! 3. prediction: μ^prior_next = Φ̄(α_new) μ^post_new, renormalised.
//!
//! Selection ranks by μ^prior(2) and takes the top B, ties broken uniformly at random.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, RngExt, SeedableRng};
use rlft_util::seed::splitmix64;
use serde::{Deserialize, Serialize};

use crate::epoch::EpochStream;
use crate::error::{Result, SamplerError, config_err};
use crate::sampler::{
    Accounting, BatchShape, Ledger, Outcome, PromptId, PromptSampler, SamplerState, Selection,
};
use crate::uniform::wrong_kind;

/// Initial belief μ₀ over (unsolved, partial, solved), `hmm_prior_pi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitialBelief {
    /// (1/3, 1/3, 1/3), the yaml default and every released script.
    Uniform,
    /// One-hot on unsolved (`'1'`).
    Unsolved,
    /// One-hot on partial (`'2'`).
    Partial,
    /// One-hot on solved (`'3'`).
    Solved,
}

impl InitialBelief {
    fn vector(self) -> [f64; 3] {
        match self {
            InitialBelief::Uniform => [1.0 / 3.0; 3],
            InitialBelief::Unsolved => [1.0, 0.0, 0.0],
            InitialBelief::Partial => [0.0, 1.0, 0.0],
            InitialBelief::Solved => [0.0, 0.0, 1.0],
        }
    }
}

/// Transition prior α₀ in [to][from] layout, `hmm_prior_alpha`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TransitionPrior {
    /// c·ones. The yaml default and every released script use c = 1.0.
    Flat {
        /// The constant c.
        value: f64,
    },
    /// [[1,.5,.5],[1,1,.5],[1,1,1]]: favours moving toward solved.
    Progress,
    /// [[1,.5,.5],[.5,1,.5],[.5,.5,1]]: favours staying put.
    Stability,
    /// [[1,1,0],[1,1,1],[0,1,1]]: forbids 1↔3 jumps (structural zeros; see the zero guard).
    Local,
    /// Any nonnegative matrix whose columns have positive sums.
    Custom {
        /// α₀[to][from].
        matrix: [[f64; 3]; 3],
    },
}

impl TransitionPrior {
    /// The matrix α₀[to][from].
    pub fn matrix(&self) -> [[f64; 3]; 3] {
        match self {
            TransitionPrior::Flat { value } => [[*value; 3]; 3],
            TransitionPrior::Progress => [[1.0, 0.5, 0.5], [1.0, 1.0, 0.5], [1.0, 1.0, 1.0]],
            TransitionPrior::Stability => [[1.0, 0.5, 0.5], [0.5, 1.0, 0.5], [0.5, 0.5, 1.0]],
            TransitionPrior::Local => [[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0]],
            TransitionPrior::Custom { matrix } => *matrix,
        }
    }
}

/// How DPS turns predicted beliefs into a batch, `hmm_sample_strategy`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DpsStrategy {
    /// Top-B by μ^prior(2) (the default and every released script).
    Topk,
    /// Top-B by μ^prior(2) + w·H(μ^prior), natural-log entropy (`hmm_entropy_weight`).
    TopkEntropy {
        /// Entropy weight w.
        weight: f64,
    },
    /// B candidates uniformly at random (the beliefs are still updated).
    Uniform,
}

/// Which prompts are ranked each step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CandidatePool {
    /// Rank the whole dataset every step (the paper; every released config, since
    /// candidate_ratio·B ≥ N there).
    Full,
    /// Rank the next ratio·B prompts of a shuffled epoch stream (the code's enlarged dataloader
    /// batch, spec §7.12). Prompts are tracked from their first appearance as candidates;
    /// tracked prompts keep decaying when they are not candidates.
    Subset {
        /// Candidate ratio (`tasksampler.candidate_ratio`).
        ratio: usize,
    },
}

/// Configuration of [`Dps`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DpsConfig {
    /// λ, `hmm_transition_decay_ratio`. Default 0.7: the released MATH script (Countdown and
    /// Geo3k scripts use 0.5; the yaml default 1.0 means no forgetting).
    pub decay: f64,
    /// α₀, `hmm_prior_alpha`. Default flat 1.0: yaml default and released scripts.
    pub transition_prior: TransitionPrior,
    /// μ₀, `hmm_prior_pi`. Default uniform: yaml default and released scripts.
    pub initial_belief: InitialBelief,
    /// Selection strategy. Default top-k: `hmm_sample_strategy = "topk"`.
    pub strategy: DpsStrategy,
    /// Candidate pool. Default full dataset: the paper, and what the released ratios give.
    pub pool: CandidatePool,
    /// Freeze the model (`hmm_no_update`): observations change nothing. Default false.
    pub frozen: bool,
    /// Worker threads for the per-step pass. Default `None` = available parallelism. The result
    /// does not depend on it.
    pub threads: Option<usize>,
}

impl Default for DpsConfig {
    fn default() -> Self {
        Self {
            decay: 0.7,
            transition_prior: TransitionPrior::Flat { value: 1.0 },
            initial_belief: InitialBelief::Uniform,
            strategy: DpsStrategy::Topk,
            pool: CandidatePool::Full,
            frozen: false,
            threads: None,
        }
    }
}

impl DpsConfig {
    /// Check λ ∈ (0, 1], α₀ ≥ 0 and finite with positive column sums, finite entropy weight,
    /// ratio ≥ 1, threads ≥ 1.
    ///
    /// # Errors
    /// [`SamplerError::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if !(self.decay > 0.0 && self.decay <= 1.0) {
            return Err(config_err(
                "decay",
                format!("must be in (0, 1], got {}", self.decay),
            ));
        }
        let a0 = self.transition_prior.matrix();
        for (j, _) in a0.iter().enumerate() {
            let col: Vec<f64> = (0..3).map(|i| a0[i][j]).collect();
            if col.iter().any(|v| !v.is_finite() || *v < 0.0) {
                return Err(config_err(
                    "transition_prior",
                    format!("entries must be finite and >= 0, column {j} is {col:?}"),
                ));
            }
            if col.iter().sum::<f64>() <= 0.0 {
                return Err(config_err(
                    "transition_prior",
                    format!("column {j} must have a positive sum, got {col:?}"),
                ));
            }
        }
        if let DpsStrategy::TopkEntropy { weight } = self.strategy
            && !weight.is_finite()
        {
            return Err(config_err(
                "strategy.weight",
                format!("must be finite, got {weight}"),
            ));
        }
        if let CandidatePool::Subset { ratio } = self.pool
            && ratio == 0
        {
            return Err(config_err("pool.ratio", "must be at least 1, got 0"));
        }
        if self.threads == Some(0) {
            return Err(config_err("threads", "must be at least 1, got 0"));
        }
        Ok(())
    }
}

const UNTRACKED: u8 = 0;
const FRESH: u8 = 1;
const TRACKED: u8 = 2;
const NEW: u8 = 3;
const CANDIDATE: u8 = 4;
const PRISTINE: u8 = 8;
/// Largest posterior difference snapped away when a forgotten prompt rejoins the cohort.
const REJOIN_TOL: f64 = 1e-15;

/// Checkpointable state of [`Dps`]: struct-of-arrays, 97 bytes per prompt
/// (9 + 3 f64 and one status byte).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DpsState {
    ledger: Ledger,
    stream: EpochStream,
    /// α[to][from] as nine arrays, index `3·to + from`.
    alpha: [Vec<f64>; 9],
    /// μ^post as three arrays.
    post: [Vec<f64>; 3],
    /// Per prompt: 0 untracked, 1 fresh (created at an earlier step, not yet updated: its prior
    /// is still μ₀), 2 tracked, 3 new (created at this step's selection); bit 4 marks a
    /// candidate of the current selection.
    status: Vec<u8>,
    /// A step's update is owed (a train request was issued and not yet committed).
    update_due: bool,
    /// Observations of the owed update: (prompt, state 0/1/2), sorted by prompt.
    pending: Vec<(u32, u8)>,
    /// Shared state of the pristine prompts (status bit 8): never observed, or forgotten back
    /// to exactly this state. Full pool only.
    cohort: Option<Cohort>,
}

/// Dynamics-Predictive Sampling (DPS spec §1–§3, §7).
///
/// The update for step t is applied lazily, fused with the scoring pass of step t + 1's
/// [`select`](PromptSampler::select): one sweep over the state per step. [`Dps::commit`]
/// applies it eagerly (for inspection); the result is the same.
///
/// Notes on the reference code (spec §7), and what this implementation does:
/// - ties (massive at step 1) are broken uniformly at random, by a counter-based key
///   `splitmix64(seed ⊕ id)` with a per-step seed drawn from the caller's RNG, instead of the
///   code's unstable `argsort` order;
/// - a zero normaliser in ξ (a structural zero in α₀ or a one-hot μ₀ meeting a "forbidden"
///   jump) falls back to ξ = e_o ⊗ μ^post_old instead of producing NaN;
/// - a new prompt's first prior is μ₀ itself (not Φ̄(α₀)μ₀), as in the code;
/// - the decay is written α₀ + λ(α − α₀), algebraically equal to λα + (1 − λ)α₀ but exact at
///   α = α₀, so untouched prompts stay bit-identical (and tied).
#[derive(Clone, Debug)]
pub struct Dps {
    shape: BatchShape,
    config: DpsConfig,
    alpha0: [f64; 9],
    threads: usize,
    state: DpsState,
}

impl Dps {
    /// Build for `shape` with `config`. Allocates the per-prompt arrays (97 bytes per prompt).
    ///
    /// # Errors
    /// [`SamplerError::Config`] for an invalid shape or config.
    pub fn new(shape: BatchShape, config: &DpsConfig) -> Result<Self> {
        shape.validate()?;
        config.validate()?;
        if shape.num_prompts > u32::MAX as usize {
            return Err(config_err(
                "num_prompts",
                format!("must be <= {}, got {}", u32::MAX, shape.num_prompts),
            ));
        }
        let m = config.transition_prior.matrix();
        let mut alpha0 = [0.0; 9];
        for i in 0..3 {
            for j in 0..3 {
                alpha0[3 * i + j] = m[i][j];
            }
        }
        let mu0 = config.initial_belief.vector();
        let n = shape.num_prompts;
        let threads = config
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |p| p.get()))
            .max(1);
        Ok(Self {
            shape,
            config: config.clone(),
            alpha0,
            threads,
            state: DpsState {
                ledger: Ledger::new(n),
                stream: EpochStream::default(),
                alpha: std::array::from_fn(|k| vec![alpha0[k]; n]),
                post: std::array::from_fn(|k| vec![mu0[k]; n]),
                status: vec![UNTRACKED; n],
                update_due: false,
                pending: Vec::new(),
                cohort: None,
            },
        })
    }

    /// Apply the owed update of the last step now (a no-op if none is owed).
    pub fn commit(&mut self) {
        if self.state.update_due {
            self.sweep(None);
        }
    }

    /// True iff `prompt` has been a candidate at least once.
    pub fn is_tracked(&self, prompt: PromptId) -> bool {
        self.state
            .status
            .get(prompt)
            .is_some_and(|&s| s != UNTRACKED)
    }

    /// α[to][from] of `prompt` as committed (call [`commit`](Self::commit) first to include the
    /// last step), or `None` for an unknown id.
    pub fn alpha(&self, prompt: PromptId) -> Option<[[f64; 3]; 3]> {
        let (a, _, _) = self.local(prompt)?;
        Some(std::array::from_fn(|i| {
            std::array::from_fn(|j| a[3 * i + j])
        }))
    }

    /// μ^post of `prompt` as committed, or `None` for an unknown id.
    pub fn posterior(&self, prompt: PromptId) -> Option<[f64; 3]> {
        self.local(prompt).map(|(_, m, _)| m)
    }

    /// μ^prior for the next selection (μ₀ for an untracked or fresh prompt), as committed, or
    /// `None` for an unknown id.
    pub fn prior(&self, prompt: PromptId) -> Option<[f64; 3]> {
        let (a, m, lvl) = self.local(prompt)?;
        Some(if lvl == TRACKED { predict(&a, &m) } else { m })
    }

    /// The selection score of `prompt` for the next step, as committed.
    pub fn score(&self, prompt: PromptId) -> Option<f64> {
        let (a, m, lvl) = self.local(prompt)?;
        Some(score_one(&a, &m, lvl, &self.config.strategy))
    }

    /// Write the shared never-observed state into every pristine prompt's own arrays and stop
    /// sharing from now on. The model's values do not change; only their storage does, and
    /// each later step then touches every prompt's 96 bytes (the dense worst case the bench
    /// measures).
    pub fn materialise_all(&mut self) {
        let Some(c) = self.state.cohort.take() else {
            return;
        };
        let st = &mut self.state;
        for i in 0..st.status.len() {
            if st.status[i] & PRISTINE != 0 {
                for k in 0..9 {
                    st.alpha[k][i] = c.alpha[k];
                }
                for k in 0..3 {
                    st.post[k][i] = c.post[k];
                }
                st.status[i] = c.level | (st.status[i] & CANDIDATE);
            }
        }
    }

    /// Prompts whose state is stored in their own arrays (not shared with the pristine cohort).
    pub fn num_materialised(&self) -> usize {
        self.state
            .status
            .iter()
            .filter(|&&s| s & 3 != UNTRACKED && s & PRISTINE == 0)
            .count()
    }

    /// One pass over all prompts: apply the owed update (if any), then, when `seed` is given,
    /// score the candidates and return the top B by (score, splitmix64(seed ⊕ id)).
    fn sweep(&mut self, seed: Option<u64>) -> Vec<PromptId> {
        let n = self.shape.num_prompts;
        let update = self.state.update_due && !self.config.frozen;
        let full = matches!(self.config.pool, CandidatePool::Full);
        let b = self.shape.batch_size;
        let strategy = self.config.strategy.clone();
        let (cohort_old, cohort_new) = match self.state.cohort {
            Some(c) => {
                let mut next = c;
                if update && c.level != NEW {
                    update_one(
                        &mut next.alpha,
                        &mut next.post,
                        &mut next.level,
                        None,
                        &self.alpha0,
                        self.config.decay,
                    );
                }
                if next.level == NEW {
                    next.level = FRESH;
                }
                (Some(c), Some(next))
            }
            None => (None, None),
        };
        let cohort_score =
            cohort_new.map(|c| sanitize(score_one(&c.alpha, &c.post, c.level, &strategy)));
        let ctx = PassCtx {
            update,
            full,
            lambda: self.config.decay,
            alpha0: self.alpha0,
            strategy,
            seed,
            b,
            cohort_old,
            cohort_new,
            cohort_score,
        };
        let chunk = n.div_ceil(self.threads).max(1);
        let st = &mut self.state;
        let pending = &st.pending;
        let mut alpha_chunks: Vec<std::slice::ChunksMut<'_, f64>> =
            st.alpha.iter_mut().map(|v| v.chunks_mut(chunk)).collect();
        let mut post_chunks: Vec<std::slice::ChunksMut<'_, f64>> =
            st.post.iter_mut().map(|v| v.chunks_mut(chunk)).collect();
        let status_chunks = st.status.chunks_mut(chunk);
        let mut jobs: Vec<Chunk<'_>> = Vec::new();
        let mut offset = 0;
        for status in status_chunks {
            let alpha: [&mut [f64]; 9] =
                std::array::from_fn(|k| alpha_chunks[k].next().unwrap_or_default());
            let post: [&mut [f64]; 3] =
                std::array::from_fn(|k| post_chunks[k].next().unwrap_or_default());
            let len = status.len();
            let lo = pending.partition_point(|&(p, _)| (p as usize) < offset);
            let hi = pending.partition_point(|&(p, _)| (p as usize) < offset + len);
            jobs.push(Chunk {
                offset,
                alpha,
                post,
                status,
                obs: &pending[lo..hi],
            });
            offset += len;
        }
        let mut tops: Vec<ChunkOut> = if jobs.len() == 1 {
            jobs.into_iter().map(|c| c.run(&ctx)).collect()
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = jobs
                    .into_iter()
                    .map(|c| {
                        let ctx = &ctx;
                        s.spawn(move || c.run(ctx))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect()
            })
        };
        st.update_due = false;
        st.pending.clear();
        st.cohort = cohort_new;
        let mut all: Vec<Key> = Vec::new();
        let mut tied: Vec<u32> = Vec::new();
        let mut pristine = 0usize;
        for o in tops.drain(..) {
            all.extend(o.keys);
            tied.extend(o.tied);
            pristine += o.pristine;
        }
        all.sort_unstable_by(|x, y| y.cmp(x));
        let (Some(cs), Some(seed)) = (cohort_score, seed) else {
            all.truncate(b);
            return all.into_iter().map(|k| k.id as PromptId).collect();
        };
        // Prompts scoring above the cohort first; then the tie pool (materialised prompts
        // scoring exactly the cohort's score, plus every pristine prompt) sampled uniformly;
        // then the rest.
        let above = all.iter().take_while(|k| k.score > cs).count().min(b);
        let mut chosen: Vec<PromptId> = all[..above].iter().map(|k| k.id as PromptId).collect();
        let need = b - above;
        let pool = tied.len() + pristine;
        let mut local = Xoshiro256PlusPlus::seed_from_u64(splitmix64(seed ^ 0x7469_6573));
        if need > 0 {
            tied.sort_unstable();
            if pool <= need {
                chosen.extend(tied.iter().map(|&t| t as PromptId));
                chosen.extend((0..n).filter(|&i| self.state.status[i] & PRISTINE != 0));
                chosen.extend(
                    all[above..]
                        .iter()
                        .filter(|k| k.score < cs)
                        .take(need - pool)
                        .map(|k| k.id as PromptId),
                );
            } else {
                // Floyd's algorithm: `need` distinct slots of 0..pool, uniformly.
                let mut slots: Vec<usize> = Vec::with_capacity(need);
                for j in pool - need..pool {
                    let t = local.random_range(0..=j);
                    if slots.contains(&t) {
                        slots.push(j);
                    } else {
                        slots.push(t);
                    }
                }
                let mut from_pristine = 0;
                for &sl in &slots {
                    if sl < tied.len() {
                        chosen.push(tied[sl] as PromptId);
                    } else {
                        from_pristine += 1;
                    }
                }
                // The pristine share: distinct pristine prompts by rejection (they are most of
                // the dataset whenever this path is hot).
                let start = chosen.len();
                while chosen.len() - start < from_pristine {
                    let id = local.random_range(0..n);
                    if self.state.status[id] & PRISTINE != 0 && !chosen[start..].contains(&id) {
                        chosen.push(id);
                    }
                }
            }
        }
        chosen
    }

    /// (α, μ^post, level) of a prompt, reading the shared cohort for pristine prompts.
    fn local(&self, prompt: PromptId) -> Option<([f64; 9], [f64; 3], u8)> {
        let st = *self.state.status.get(prompt)?;
        if st & PRISTINE != 0
            && let Some(c) = self.state.cohort
        {
            return Some((c.alpha, c.post, c.level));
        }
        Some((
            std::array::from_fn(|k| self.state.alpha[k][prompt]),
            std::array::from_fn(|k| self.state.post[k][prompt]),
            st & 3,
        ))
    }
}

/// The update of one prompt for one step (spec §1.3 (i)–(ii)); `obs` is the observed state
/// 0/1/2. A `FRESH` prompt's prior is its posterior (μ₀), as in the reference code.
#[inline(always)]
fn update_one(
    a: &mut [f64; 9],
    m: &mut [f64; 3],
    lvl: &mut u8,
    obs: Option<usize>,
    a0: &[f64; 9],
    lam: f64,
) {
    match obs {
        Some(o) => {
            // ξ(o, j) ∝ Φ̄_old(o, j)·μ^post_old(j), computed before the decay.
            let mut xi = [0.0; 3];
            let mut z = 0.0;
            for j in 0..3 {
                let col = a[j] + a[3 + j] + a[6 + j];
                xi[j] = a[3 * o + j] / col * m[j];
                z += xi[j];
            }
            if z > 0.0 && z.is_finite() {
                for x in &mut xi {
                    *x /= z;
                }
            } else {
                // Zero-probability jump (structural zeros, spec §7.5): ξ = e_o ⊗ μ^post_old.
                xi = *m;
            }
            for k in 0..9 {
                a[k] = a0[k] + lam * (a[k] - a0[k]);
            }
            for j in 0..3 {
                a[3 * o + j] += xi[j];
            }
            *m = [0.0; 3];
            m[o] = 1.0;
        }
        None => {
            if *lvl == TRACKED {
                *m = predict(a, m);
            }
            for k in 0..9 {
                a[k] = a0[k] + lam * (a[k] - a0[k]);
            }
        }
    }
    *lvl = TRACKED;
}

/// The selection score of a prompt in state (α, μ^post, level).
#[inline(always)]
fn score_one(a: &[f64; 9], m: &[f64; 3], lvl: u8, strategy: &DpsStrategy) -> f64 {
    let p = if lvl == TRACKED { predict(a, m) } else { *m };
    match strategy {
        DpsStrategy::Topk => p[1],
        DpsStrategy::TopkEntropy { weight } => p[1] + weight * entropy(&p),
        DpsStrategy::Uniform => 0.0,
    }
}

/// NaN ranks last.
#[inline(always)]
fn sanitize(x: f64) -> f64 {
    if x.is_nan() { f64::NEG_INFINITY } else { x }
}

/// Φ̄(α)·m renormalised; α flat in [to][from] order.
#[inline(always)]
fn predict(a: &[f64; 9], m: &[f64; 3]) -> [f64; 3] {
    let inv = [
        1.0 / (a[0] + a[3] + a[6]),
        1.0 / (a[1] + a[4] + a[7]),
        1.0 / (a[2] + a[5] + a[8]),
    ];
    let w = [m[0] * inv[0], m[1] * inv[1], m[2] * inv[2]];
    let p0 = a[0] * w[0] + a[1] * w[1] + a[2] * w[2];
    let p1 = a[3] * w[0] + a[4] * w[1] + a[5] * w[2];
    let p2 = a[6] * w[0] + a[7] * w[1] + a[8] * w[2];
    let z = 1.0 / (p0 + p1 + p2);
    [p0 * z, p1 * z, p2 * z]
}

/// Natural-log entropy with 0·ln 0 = 0.
fn entropy(p: &[f64; 3]) -> f64 {
    p.iter().filter(|&&x| x > 0.0).map(|&x| -x * x.ln()).sum()
}

/// A ranking key: larger is better. Ordered by score, then tie-break hash, then id.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Key {
    score: f64,
    tie: u64,
    id: u32,
}

impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.score
            .total_cmp(&other.score)
            .then(self.tie.cmp(&other.tie))
            .then(other.id.cmp(&self.id))
    }
}

/// The shared state of every pristine prompt (full pool only): all prompts created together
/// and never observed evolve identically, so they are stored once.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct Cohort {
    alpha: [f64; 9],
    post: [f64; 3],
    level: u8,
}

/// Everything a chunk needs to know about the pass.
struct PassCtx {
    update: bool,
    full: bool,
    lambda: f64,
    alpha0: [f64; 9],
    strategy: DpsStrategy,
    seed: Option<u64>,
    b: usize,
    cohort_old: Option<Cohort>,
    cohort_new: Option<Cohort>,
    cohort_score: Option<f64>,
}

/// One thread's share of the state.
struct Chunk<'a> {
    offset: usize,
    alpha: [&'a mut [f64]; 9],
    post: [&'a mut [f64]; 3],
    status: &'a mut [u8],
    obs: &'a [(u32, u8)],
}

/// What one chunk found.
#[derive(Default)]
struct ChunkOut {
    /// Its top B materialised candidates.
    keys: Vec<Key>,
    /// Materialised candidates whose score equals the cohort's exactly.
    tied: Vec<u32>,
    /// Pristine prompts (all candidates: the cohort exists only for the full pool).
    pristine: usize,
}

/// Streaming top-B by [`Key`].
struct TopB {
    heap: std::collections::BinaryHeap<std::cmp::Reverse<Key>>,
    floor: Option<Key>,
    b: usize,
    seed: u64,
}

impl TopB {
    #[inline(always)]
    fn offer(&mut self, score: f64, id: u32) {
        if let Some(f) = self.floor
            && score < f.score
        {
            return;
        }
        let key = Key {
            score,
            tie: splitmix64(self.seed ^ u64::from(id)),
            id,
        };
        match self.floor {
            None => {
                self.heap.push(std::cmp::Reverse(key));
                if self.heap.len() == self.b {
                    self.floor = self.heap.peek().map(|r| r.0);
                }
            }
            Some(f) if key > f => {
                self.heap.pop();
                self.heap.push(std::cmp::Reverse(key));
                self.floor = self.heap.peek().map(|r| r.0);
            }
            Some(_) => {}
        }
    }
}

impl Chunk<'_> {
    /// Update (if owed) and score this chunk; return its top-B keys.
    fn run(self, ctx: &PassCtx) -> ChunkOut {
        let Chunk {
            offset,
            alpha,
            post,
            status,
            obs,
        } = self;
        // Equal lengths, stated once, so the loop's index checks can be elided.
        let len = status.len();
        let alpha = alpha.map(|s| &mut s[..len]);
        let [p0, p1, p2] = post;
        let post = [&mut p0[..len], &mut p1[..len], &mut p2[..len]];
        let mut top = TopB {
            heap: std::collections::BinaryHeap::with_capacity(ctx.b + 1),
            floor: None,
            b: ctx.b,
            seed: ctx.seed.unwrap_or(0),
        };
        let mut next_obs = 0usize;
        let a0 = ctx.alpha0;
        let mut out = ChunkOut::default();
        let pristine_shared = ctx.cohort_score.is_some();
        let mut i = 0;
        while i < status.len() {
            // Pristine prompts with no observation are only counted, eight at a time.
            if pristine_shared
                && i + 8 <= status.len()
                && obs
                    .get(next_obs)
                    .is_none_or(|o| o.0 as usize >= offset + i + 8)
            {
                let word = u64::from_le_bytes(status[i..i + 8].try_into().unwrap_or([0; 8]));
                const MASK: u64 = 0x0808_0808_0808_0808;
                if word & MASK == MASK {
                    out.pristine += 8;
                    i += 8;
                    continue;
                }
            }
            let st = status[i];
            i += 1;
            let i = i - 1;
            if st & 3 == UNTRACKED {
                continue;
            }
            let observed = if next_obs < obs.len() && obs[next_obs].0 as usize == offset + i {
                next_obs += 1;
                Some(obs[next_obs - 1].1 as usize)
            } else {
                None
            };
            let (mut a, mut m, mut lvl) = if st & PRISTINE != 0 {
                if observed.is_none() || !ctx.update {
                    // Shares the cohort's state: nothing to read or write.
                    out.pristine += 1;
                    continue;
                }
                let Some(c) = ctx.cohort_old else { continue };
                (c.alpha, c.post, c.level)
            } else {
                (
                    std::array::from_fn(|k| alpha[k][i]),
                    [post[0][i], post[1][i], post[2][i]],
                    st & 3,
                )
            };
            let (a_in, m_in) = (a, m);
            if ctx.update && lvl != NEW {
                update_one(&mut a, &mut m, &mut lvl, observed, &a0, ctx.lambda);
            }
            if lvl == NEW {
                lvl = FRESH;
            }
            // α is back at exactly the cohort's (decay underflowed) and μ within rounding of it:
            // snap to the cohort (≤ 1e-15 change), so forgotten prompts tie exactly again.
            let rejoin = ctx.cohort_new.is_some_and(|c| {
                c.level == lvl
                    && c.alpha == a
                    && (0..3).all(|k| (c.post[k] - m[k]).abs() <= REJOIN_TOL)
            });
            if rejoin {
                // Forgotten back to exactly the cohort's state: share it again.
                status[i] = lvl | PRISTINE;
                out.pristine += 1;
                continue;
            }
            {
                // Skip the store when nothing changed (forgotten prompts at a fixed point):
                // that halves the memory traffic of the dense case.
                if st & PRISTINE != 0 || a != a_in || m != m_in {
                    for k in 0..9 {
                        alpha[k][i] = a[k];
                    }
                    post[0][i] = m[0];
                    post[1][i] = m[1];
                    post[2][i] = m[2];
                }
                status[i] = lvl;
            }
            if ctx.seed.is_none() || !(ctx.full || st & CANDIDATE != 0) {
                continue;
            }
            let score = sanitize(score_one(&a, &m, lvl, &ctx.strategy));
            if ctx.cohort_score == Some(score) {
                out.tied.push((offset + i) as u32);
            }
            top.offer(score, (offset + i) as u32);
        }
        out.keys = top.heap.into_iter().map(|r| r.0).collect();
        out
    }
}

impl PromptSampler for Dps {
    fn name(&self) -> &str {
        "dps"
    }
    fn num_prompts(&self) -> usize {
        self.shape.num_prompts
    }
    fn select(&mut self, _step: u64, rng: &mut dyn Rng) -> Result<Selection> {
        self.state.ledger.check_can_select()?;
        let n = self.shape.num_prompts;
        match self.config.pool {
            CandidatePool::Full => {
                if self.state.status.first().is_some_and(|&s| s == UNTRACKED) {
                    for s in &mut self.state.status {
                        *s = NEW | PRISTINE;
                    }
                    let c = &self.alpha0;
                    self.state.cohort = Some(Cohort {
                        alpha: *c,
                        post: self.config.initial_belief.vector(),
                        level: NEW,
                    });
                }
            }
            CandidatePool::Subset { ratio } => {
                let pool = (ratio * self.shape.batch_size).min(n);
                let cands = self.state.stream.take(pool, n, rng, &|_| true);
                for id in cands {
                    let s = &mut self.state.status[id];
                    if *s == UNTRACKED {
                        *s = NEW;
                    }
                    *s |= CANDIDATE;
                }
            }
        }
        let seed: u64 = rng.random();
        let prompts = self.sweep(Some(seed));
        let sel = Selection::Train {
            prompts,
            rollouts: self.shape.group_size,
        };
        self.state.ledger.issue(&sel, &[]);
        self.state.update_due = true;
        Ok(sel)
    }
    fn observe(&mut self, outcomes: &[Outcome]) -> Result<()> {
        self.state.ledger.record(outcomes)?;
        for o in outcomes {
            let level = if o.successes == 0 {
                0
            } else if o.successes == o.k {
                2
            } else {
                1
            };
            self.state.pending.push((o.prompt as u32, level));
        }
        self.state.pending.sort_unstable();
        Ok(())
    }
    fn accounting(&self) -> Accounting {
        self.state.ledger.accounting().clone()
    }
    fn state(&self) -> SamplerState {
        SamplerState::Dps(Box::new(self.state.clone()))
    }
    fn restore(&mut self, state: SamplerState) -> Result<()> {
        match state {
            SamplerState::Dps(s) => {
                s.ledger.check_fits(self.shape.num_prompts)?;
                let n = self.shape.num_prompts;
                let lens_ok = s.alpha.iter().all(|v| v.len() == n)
                    && s.post.iter().all(|v| v.len() == n)
                    && s.status.len() == n;
                if !lens_ok {
                    return Err(SamplerError::State {
                        reason: format!("per-prompt arrays do not all have {n} entries"),
                    });
                }
                if s.pending.iter().any(|&(p, l)| p as usize >= n || l > 2) {
                    return Err(SamplerError::State {
                        reason: "pending observation out of range".to_owned(),
                    });
                }
                self.state = *s;
                Ok(())
            }
            other => Err(wrong_kind("dps", &other)),
        }
    }
}
