//! MoPPS, Model-Predictive Prompt Selection (Qu et al. 2025, arXiv 2507.04632): a Beta
//! posterior per prompt, Thompson-sampled, picking predicted success rates near 0.5.

use rand::Rng;
use rand::seq::SliceRandom;
use rand_distr::{Beta, Distribution};
use serde::{Deserialize, Serialize};

use crate::epoch::EpochStream;
use crate::error::{Result, SamplerError, config_err};
use crate::sampler::{
    Accounting, BatchShape, Ledger, Outcome, PromptSampler, SamplerState, Selection,
};
use crate::uniform::wrong_kind;

/// How MoPPS turns Thompson samples into a batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MoppsRule {
    /// The B candidates with the smallest (θ̂ − target)² (thu-rllab/MoPPS option `topk`).
    Topk,
    /// A random B of the candidates with θ̂ in [low, high], topped up by distance to the band
    /// (option `threshold`; the repo uses [0.3, 0.7]).
    Threshold {
        /// Lower edge of the band.
        low: f64,
        /// Upper edge of the band.
        high: f64,
    },
}

/// Configuration of [`Mopps`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MoppsConfig {
    /// Candidate pool size as a multiple of B (`ts_ratio`). Default 8: MoPPS scripts for
    /// Countdown and Geo3k (MATH uses 16). The pool is the next ratio·B prompts of a shuffled
    /// epoch stream, like the repo's enlarged dataloader batch; clamped to N.
    pub candidate_ratio: usize,
    /// Selection rule. Default `topk`: MoPPS scripts.
    pub rule: MoppsRule,
    /// Target success rate γ. Default 0.5: MoPPS scripts.
    pub target: f64,
    /// Decay λ. Default 1.0 (no forgetting): MoPPS MATH scripts (0.5 in the Countdown/Geo
    /// "noinit" scripts).
    pub decay: f64,
    /// Prior α₀. Default 1.0: MoPPS scripts.
    pub prior_alpha: f64,
    /// Prior β₀. Default 1.0: MoPPS scripts.
    pub prior_beta: f64,
}

impl Default for MoppsConfig {
    fn default() -> Self {
        Self {
            candidate_ratio: 8,
            rule: MoppsRule::Topk,
            target: 0.5,
            decay: 1.0,
            prior_alpha: 1.0,
            prior_beta: 1.0,
        }
    }
}

/// MoPPS (DPS spec §5, sfl.md §4 "M"): per prompt Beta(a, b); each step draws θ̂ ~ Beta(a, b)
/// for every candidate and trains on the B chosen by [`MoppsRule`]; a trained prompt with s
/// successes of k updates a ← λa + (1−λ)a₀ + s, b ← λb + (1−λ)b₀ + (k − s). Only trained
/// prompts decay. Cost per step B·k (selection spends no rollouts).
///
/// The reference code's update line has an operator-precedence bug (`... if n > 1 else 8`)
/// that is harmless at k = 8; we implement the intended formula for every k.
#[derive(Clone, Debug)]
pub struct Mopps {
    shape: BatchShape,
    config: MoppsConfig,
    state: MoppsState,
}

/// Checkpointable state of [`Mopps`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MoppsState {
    ledger: Ledger,
    stream: EpochStream,
    alpha: Vec<f64>,
    beta: Vec<f64>,
}

impl Mopps {
    /// Build for `shape` with `config`.
    ///
    /// # Errors
    /// [`crate::SamplerError::Config`] for an invalid shape or out-of-range field.
    pub fn new(shape: BatchShape, config: &MoppsConfig) -> Result<Self> {
        shape.validate()?;
        let c = config;
        if c.candidate_ratio == 0 {
            return Err(config_err("candidate_ratio", "must be at least 1, got 0"));
        }
        if !(c.decay > 0.0 && c.decay <= 1.0) {
            return Err(config_err(
                "decay",
                format!("must be in (0, 1], got {}", c.decay),
            ));
        }
        if !(c.prior_alpha > 0.0 && c.prior_alpha.is_finite()) {
            return Err(config_err(
                "prior_alpha",
                format!("must be > 0, got {}", c.prior_alpha),
            ));
        }
        if !(c.prior_beta > 0.0 && c.prior_beta.is_finite()) {
            return Err(config_err(
                "prior_beta",
                format!("must be > 0, got {}", c.prior_beta),
            ));
        }
        if !(0.0..=1.0).contains(&c.target) {
            return Err(config_err(
                "target",
                format!("must be in [0, 1], got {}", c.target),
            ));
        }
        if let MoppsRule::Threshold { low, high } = c.rule
            && !(0.0 <= low && low <= high && high <= 1.0)
        {
            return Err(config_err(
                "rule",
                format!("threshold band needs 0 <= low <= high <= 1, got [{low}, {high}]"),
            ));
        }
        Ok(Self {
            shape,
            config: config.clone(),
            state: MoppsState {
                ledger: Ledger::new(shape.num_prompts),
                stream: EpochStream::default(),
                alpha: vec![c.prior_alpha; shape.num_prompts],
                beta: vec![c.prior_beta; shape.num_prompts],
            },
        })
    }

    /// The Beta posterior (a, b) of `prompt`, or `None` for an unknown id.
    pub fn posterior(&self, prompt: usize) -> Option<(f64, f64)> {
        Some((
            *self.state.alpha.get(prompt)?,
            *self.state.beta.get(prompt)?,
        ))
    }
}

impl PromptSampler for Mopps {
    fn name(&self) -> &str {
        "mopps"
    }
    fn num_prompts(&self) -> usize {
        self.shape.num_prompts
    }
    fn select(&mut self, _step: u64, rng: &mut dyn Rng) -> Result<Selection> {
        let st = &mut self.state;
        st.ledger.check_can_select()?;
        let b = self.shape.batch_size;
        let pool = (self.config.candidate_ratio * b).min(self.shape.num_prompts);
        let cands = st.stream.take(pool, self.shape.num_prompts, rng, &|_| true);
        let theta: Vec<f64> = cands
            .iter()
            .map(|&i| thompson(i, st.alpha[i], st.beta[i], rng))
            .collect::<Result<_>>()?;
        let mut order: Vec<usize> = (0..cands.len()).collect();
        let prompts: Vec<usize> = match self.config.rule {
            MoppsRule::Topk => {
                let g = self.config.target;
                order.sort_by(|&x, &y| {
                    let dx = (theta[x] - g) * (theta[x] - g);
                    let dy = (theta[y] - g) * (theta[y] - g);
                    dx.total_cmp(&dy).then(x.cmp(&y))
                });
                order.truncate(b);
                order.into_iter().map(|j| cands[j]).collect()
            }
            MoppsRule::Threshold { low, high } => {
                let dist = |t: f64| (low - t).max(t - high).max(0.0);
                let (mut inside, mut outside): (Vec<usize>, Vec<usize>) =
                    order.into_iter().partition(|&j| dist(theta[j]) == 0.0);
                inside.shuffle(rng);
                inside.truncate(b);
                outside.sort_by(|&x, &y| dist(theta[x]).total_cmp(&dist(theta[y])).then(x.cmp(&y)));
                outside.truncate(b - inside.len());
                inside.extend(outside);
                inside.into_iter().map(|j| cands[j]).collect()
            }
        };
        let sel = Selection::Train {
            prompts,
            rollouts: self.shape.group_size,
        };
        st.ledger.issue(&sel, &[]);
        Ok(sel)
    }
    fn observe(&mut self, outcomes: &[Outcome]) -> Result<()> {
        let st = &mut self.state;
        st.ledger.record(outcomes)?;
        let (l, a0, b0) = (
            self.config.decay,
            self.config.prior_alpha,
            self.config.prior_beta,
        );
        for o in outcomes {
            let i = o.prompt;
            st.alpha[i] = l * st.alpha[i] + (1.0 - l) * a0 + f64::from(o.successes);
            st.beta[i] = l * st.beta[i] + (1.0 - l) * b0 + f64::from(o.k - o.successes);
        }
        Ok(())
    }
    fn accounting(&self) -> Accounting {
        self.state.ledger.accounting().clone()
    }
    fn state(&self) -> SamplerState {
        SamplerState::Mopps(self.state.clone())
    }
    fn restore(&mut self, state: SamplerState) -> Result<()> {
        match state {
            SamplerState::Mopps(s) => {
                s.ledger.check_fits(self.shape.num_prompts)?;
                if s.alpha.len() != self.shape.num_prompts || s.beta.len() != self.shape.num_prompts
                {
                    return Err(SamplerError::State {
                        reason: format!(
                            "posterior arrays do not have {} entries",
                            self.shape.num_prompts
                        ),
                    });
                }
                let valid = |v: f64| v > 0.0 && v.is_finite();
                if let Some(i) =
                    (0..s.alpha.len()).find(|&i| !valid(s.alpha[i]) || !valid(s.beta[i]))
                {
                    return Err(SamplerError::State {
                        reason: format!(
                            "posterior of prompt {i} must have a, b > 0 and finite, got ({}, {})",
                            s.alpha[i], s.beta[i]
                        ),
                    });
                }
                self.state = s;
                Ok(())
            }
            other => Err(wrong_kind("mopps", &other)),
        }
    }
}

/// One Thompson draw θ̂ ~ Beta(a, b) from the posterior of `prompt`.
///
/// # Errors
/// [`SamplerError::State`] when (a, b) is not a valid Beta (checked on restore, so only a
/// broken invariant reaches it).
fn thompson(prompt: usize, a: f64, b: f64, rng: &mut dyn Rng) -> Result<f64> {
    let beta = Beta::new(a, b).map_err(|e| SamplerError::State {
        reason: format!("posterior of prompt {prompt} is not a valid Beta({a}, {b}): {e}"),
    })?;
    Ok(beta.sample(rng))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::Xoshiro256PlusPlus;

    use super::*;

    #[test]
    fn thompson_draws_have_the_posteriors_moments() {
        // Asymmetric posteriors, so swapping a and b would fail.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        for (a, b) in [(2.0, 5.0), (30.0, 10.0), (0.5, 0.5)] {
            let n = 40_000;
            let xs: Vec<f64> = (0..n)
                .map(|_| thompson(0, a, b, &mut rng).unwrap())
                .collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
            let m = a / (a + b);
            let v = a * b / ((a + b) * (a + b) * (a + b + 1.0));
            assert!((mean - m).abs() < 0.01, "Beta({a}, {b}) mean {mean} vs {m}");
            assert!(
                (var - v).abs() < 0.05 * v,
                "Beta({a}, {b}) var {var} vs {v}"
            );
        }
        assert!(matches!(
            thompson(3, 0.0, 1.0, &mut rng),
            Err(SamplerError::State { .. })
        ));
    }

    #[test]
    fn restore_rejects_an_invalid_posterior() {
        let shape = BatchShape {
            num_prompts: 3,
            batch_size: 1,
            group_size: 2,
        };
        let mut m = Mopps::new(shape, &MoppsConfig::default()).unwrap();
        let SamplerState::Mopps(mut st) = m.state() else {
            unreachable!()
        };
        st.beta[1] = f64::NAN;
        let err = m.restore(SamplerState::Mopps(st)).unwrap_err();
        assert!(err.to_string().contains("prompt 1"), "{err}");
    }
}
