//! Phased, multi-term objectives: a learner step minimises
//! Σ_j coef_j(step) · objective_j(scorer_j(batch), advantages_j, sample_mask_j).
//!
//! GRPO is one term. DSRL (spec prerl.md §2) is two: NSR-PreRL (marginal scorer, r − mean
//! advantages, negatives only, coefficient 0.01 while `step < S`) and GRPO (conditional
//! scorer, coefficient 1 from step S), with the reference synced to the policy at S.

use rlft_core::{AdvantageEstimator, Advantages, Objective, PolicyLossConfig};
use rlft_models::ChatTokenizer;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainerError};
use crate::scorer::{Scorer, ScorerConfig};

/// Which samples of a batch a term trains on, decided from the term's own advantages after
/// the estimator ran. Dropped samples leave the term's token-mean denominator (spec prerl.md
/// §1.6), not just its numerator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleMask {
    /// Every sample the estimator kept (default).
    #[default]
    All,
    /// Samples with advantage > 0 (PSR-PreRL).
    Positive,
    /// Samples with advantage < 0 (NSR-PreRL).
    Negative,
}

impl SampleMask {
    /// Applies the mask to `adv.keep`.
    pub fn apply(self, adv: &mut Advantages) {
        for (keep, &a) in adv.keep.iter_mut().zip(&adv.values) {
            *keep &= match self {
                Self::All => true,
                Self::Positive => a > 0.0,
                Self::Negative => a < 0.0,
            };
        }
    }
}

/// A coefficient that is piecewise constant in the step: `coef` for `from ≤ step < until`,
/// 0 elsewhere. Steps are 0-based (the first training step is 0). verl counts from 1 and
/// tests `step < S`, so the released DSRL S = 20 (19 PreRL updates) is `until = 19` here.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Phase {
    /// First step the term is on. Default 0.
    pub from: usize,
    /// First step the term is off again; `None` (default): never.
    pub until: Option<usize>,
    /// The coefficient while on. Default 1.
    pub coef: f64,
}

impl Default for Phase {
    fn default() -> Self {
        Self {
            from: 0,
            until: None,
            coef: 1.0,
        }
    }
}

impl Phase {
    /// The coefficient at `step`.
    pub fn coef_at(&self, step: usize) -> f64 {
        if step >= self.from && self.until.is_none_or(|u| step < u) {
            self.coef
        } else {
            0.0
        }
    }

    /// Checks `from < until` and a finite coefficient.
    ///
    /// # Errors
    /// [`TrainerError::Config`] naming `field`.
    pub fn validate(&self, field: &'static str) -> Result<()> {
        if let Some(u) = self.until
            && u <= self.from
        {
            return Err(TrainerError::Config {
                field,
                reason: format!(
                    "until ({u}) must be greater than from ({}): the term would never be on",
                    self.from
                ),
            });
        }
        if !self.coef.is_finite() {
            return Err(TrainerError::Config {
                field,
                reason: format!("coef must be finite, got {}", self.coef),
            });
        }
        Ok(())
    }
}

/// One term of a learner's objective.
pub struct Term {
    /// Name used in metrics (`coef/<name>`, `loss/<name>`, and the term's objective metrics as
    /// `<name>/<metric>` when there are several terms).
    pub name: String,
    /// How the batch is scored for this term (loss, old and reference log-probs).
    pub scorer: Box<dyn Scorer>,
    /// Advantages from the group rewards.
    pub advantage: AdvantageEstimator,
    /// Which samples carry this term's loss.
    pub sample_mask: SampleMask,
    /// The loss.
    pub objective: Box<dyn Objective>,
    /// The coefficient over steps.
    pub phase: Phase,
    /// Whether the objective reads reference log-probs (a KL term).
    pub needs_reference: bool,
    /// Whether the objective reads the entropy with gradient (an entropy bonus).
    pub entropy_grad: bool,
}

impl std::fmt::Debug for Term {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Term")
            .field("name", &self.name)
            .field("scorer", &self.scorer.name())
            .field("advantage", &self.advantage)
            .field("sample_mask", &self.sample_mask)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl Term {
    /// A term with the conditional scorer, all samples, coefficient 1 at every step.
    pub fn new(
        name: impl Into<String>,
        advantage: AdvantageEstimator,
        objective: Box<dyn Objective>,
    ) -> Self {
        Self {
            name: name.into(),
            scorer: Box::new(crate::scorer::Conditional),
            advantage,
            sample_mask: SampleMask::All,
            objective,
            phase: Phase::default(),
            needs_reference: false,
            entropy_grad: false,
        }
    }

    /// Sets the scorer.
    pub fn with_scorer(mut self, scorer: Box<dyn Scorer>) -> Self {
        self.scorer = scorer;
        self
    }

    /// Sets the sample mask.
    pub fn with_sample_mask(mut self, mask: SampleMask) -> Self {
        self.sample_mask = mask;
        self
    }

    /// Sets the phase.
    pub fn with_phase(mut self, phase: Phase) -> Self {
        self.phase = phase;
        self
    }

    /// Declares that the objective reads reference log-probs.
    pub fn with_reference(mut self, needs: bool) -> Self {
        self.needs_reference = needs;
        self
    }
}

/// One `[[objective]]` table of a run config.
///
/// ```toml
/// [[objective]]            # NSR-PreRL for steps 0..4 (DSRL's first phase)
/// name = "nsr_prerl"
/// scorer = { marginal = {} }
/// advantage = { kind = "dr_grpo" }
/// sample_mask = "negative"
/// loss = { epsilon_high = 0.2, dual_clip = 10.0, aggregation = { kind = "token_mean" } }
/// phase = { until = 5, coef = 0.01 }
///
/// [[objective]]            # GRPO from step 5 on
/// name = "grpo"
/// phase = { from = 5 }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TermConfig {
    /// Name in metrics. Default `term<j>`.
    #[serde(default)]
    pub name: Option<String>,
    /// Scorer. Default conditional.
    #[serde(default)]
    pub scorer: ScorerConfig,
    /// Advantage estimator. Default: the learner's `advantage` (GRPO).
    #[serde(default)]
    pub advantage: Option<AdvantageEstimator>,
    /// Sample mask. Default all.
    #[serde(default)]
    pub sample_mask: SampleMask,
    /// Loss. Default: the learner's `loss`.
    #[serde(default)]
    pub loss: Option<PolicyLossConfig>,
    /// When the term is on, and its coefficient. Default: always, coefficient 1.
    #[serde(default)]
    pub phase: Phase,
}

impl TermConfig {
    /// Checks the term.
    ///
    /// # Errors
    /// [`TrainerError::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        self.phase.validate("objective.phase")?;
        if let Some(a) = &self.advantage {
            a.validate()?;
        }
        if let Some(l) = &self.loss {
            l.validate()?;
        }
        Ok(())
    }

    /// Builds term `index`, filling unset parts from the learner's defaults.
    ///
    /// # Errors
    /// Config errors of the parts.
    pub fn build(
        &self,
        index: usize,
        default_advantage: &AdvantageEstimator,
        default_loss: &PolicyLossConfig,
        tokenizer: Option<&ChatTokenizer>,
    ) -> Result<Term> {
        self.validate()?;
        let loss = self.loss.clone().unwrap_or_else(|| default_loss.clone());
        Ok(Term {
            name: self.name.clone().unwrap_or_else(|| format!("term{index}")),
            scorer: self.scorer.build(tokenizer)?,
            advantage: self
                .advantage
                .clone()
                .unwrap_or_else(|| default_advantage.clone()),
            sample_mask: self.sample_mask,
            needs_reference: loss.beta != 0.0,
            entropy_grad: loss.entropy_coef != 0.0,
            objective: Box::new(loss.init()?),
            phase: self.phase,
        })
    }
}
