//! Configs with the released scripts' defaults, and the [`Term`]s and [`LearnerConfig`] they
//! build on rlft-trainer's learner.
//!
//! Sources: `Trae1ounG/Pretrain_Space_RLVR` at `be255d6` (`run_code/DSRL_qwen3-4b.sh`,
//! `Baseline_qwen3-4b.sh`, `verl/workers/actor/dp_actor.py`) for PreRL and DSRL; Zhu et al.'s
//! `TianHongZXY/RLVR-Decomposed` for PSR / NSR / W-REINFORCE. Spec: `specs/prerl.md`.

use rlft_core::{AdvantageEstimator, LossAggregation, PolicyLossConfig, RewardScale};
use rlft_trainer::{LearnerConfig, LrSchedule, Marginal, OptimConfig, Phase, SampleMask, Term};
use serde::{Deserialize, Serialize};

use crate::error::{PrerlError, Result};

/// Which samples a PreRL term trains on (spec §1.6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreRlVariant {
    /// NSR-PreRL: wrong answers only (push log P(y) down). Default: the DSRL script's.
    #[default]
    Nsr,
    /// PSR-PreRL: right answers only.
    Psr,
    /// Both signs.
    Both,
}

/// How PreRL weights samples (spec §1.4, §1.6, §6.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreRlWeighting {
    /// The released code: A^pre = r − group mean (no std; `pretrain_norm_adv_by_std=False`),
    /// the variant's samples kept by sign, the others removed from the token-mean denominator;
    /// all-right and all-wrong groups contribute nothing. Default.
    #[default]
    Code,
    /// Zhu et al.'s weights (the repo's unused `nsr_pretrain_first` switch): A = −1 on every
    /// wrong sample (all-wrong groups included), +1 on every right one, the batch sub-set to
    /// the variant's samples, coefficient 1.
    Zhu,
}

/// A PreRL term: RL on the marginal log P(y) (the prompt replaced by one context token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PreRlConfig {
    /// PSR, NSR or both. Default NSR (`DSRL_qwen3-4b.sh`).
    pub variant: PreRlVariant,
    /// Sample weights. Default the code's ([`PreRlWeighting::Code`]).
    pub weighting: PreRlWeighting,
    /// Loss coefficient c_pre. Default `None`: 0.01 for the code weighting
    /// (`pretrain_loss_coef=0.01`, `DSRL_qwen3-4b.sh`), 1.0 for Zhu's (`nsr_pretrain_first`).
    pub coef: Option<f64>,
    /// Dual-clip constant c for negative advantages. Default 10 (`clip_ratio_c=10.0`,
    /// `DSRL_qwen3-4b.sh`).
    pub dual_clip: f32,
    /// PPO clip range (low = high). Default 0.2 (`clip_ratio_low/high=0.2`,
    /// `DSRL_qwen3-4b.sh`).
    pub clip: f32,
    /// The context token replacing the prompt. Default `None`: the tokenizer's
    /// `<|im_start|>` (151644 for Qwen, the code's), else BOS ([`Marginal::for_tokenizer`]).
    pub context_token: Option<u32>,
}

impl Default for PreRlConfig {
    fn default() -> Self {
        Self {
            variant: PreRlVariant::Nsr,
            weighting: PreRlWeighting::Code,
            coef: None,
            dual_clip: 10.0,
            clip: 0.2,
            context_token: None,
        }
    }
}

impl PreRlConfig {
    /// The config of `variant` with the code's weights.
    pub fn code(variant: PreRlVariant) -> Self {
        Self {
            variant,
            ..Self::default()
        }
    }

    /// The coefficient in effect (the field `coef`, else the weighting's default).
    pub fn coef(&self) -> f64 {
        self.coef.unwrap_or(match self.weighting {
            PreRlWeighting::Code => 0.01,
            PreRlWeighting::Zhu => 1.0,
        })
    }

    /// Checks the fields.
    ///
    /// # Errors
    /// [`PrerlError::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let c = self.coef();
        if !(c.is_finite() && c > 0.0) {
            return Err(config(
                "prerl.coef",
                format!("must be finite and > 0, got {c}"),
            ));
        }
        if !(self.dual_clip.is_finite() && self.dual_clip > 1.0) {
            return Err(config(
                "prerl.dual_clip",
                format!("must be finite and > 1, got {}", self.dual_clip),
            ));
        }
        if !(self.clip.is_finite() && (0.0..1.0).contains(&self.clip)) {
            return Err(config(
                "prerl.clip",
                format!("must be in [0, 1), got {}", self.clip),
            ));
        }
        Ok(())
    }

    /// The advantage estimator and sample mask of this config.
    pub fn advantage_and_mask(&self) -> (AdvantageEstimator, SampleMask) {
        let t = 1.0;
        match (self.weighting, self.variant) {
            (PreRlWeighting::Code, v) => (
                AdvantageEstimator::DrGrpo,
                match v {
                    PreRlVariant::Nsr => SampleMask::Negative,
                    PreRlVariant::Psr => SampleMask::Positive,
                    PreRlVariant::Both => SampleMask::All,
                },
            ),
            (PreRlWeighting::Zhu, PreRlVariant::Nsr) => (
                AdvantageEstimator::Nsr {
                    success_threshold: t,
                },
                SampleMask::All,
            ),
            (PreRlWeighting::Zhu, PreRlVariant::Psr) => (
                AdvantageEstimator::Psr {
                    success_threshold: t,
                },
                SampleMask::All,
            ),
            (PreRlWeighting::Zhu, PreRlVariant::Both) => (
                AdvantageEstimator::WReinforce {
                    lambda: 1.0,
                    success_threshold: t,
                },
                SampleMask::All,
            ),
        }
    }

    /// The loss: verl's `vanilla` PPO-clip with clip `clip`, dual clip, log-ratio clamp ±20,
    /// token-mean (`loss_agg_mode=token-mean`).
    pub fn loss(&self) -> PolicyLossConfig {
        PolicyLossConfig {
            epsilon_low: self.clip,
            epsilon_high: self.clip,
            dual_clip: Some(self.dual_clip),
            ..PolicyLossConfig::verl()
        }
    }

    /// The term `name` on `scorer` (a [`Marginal`] scorer), on at every step (set a phase
    /// with [`Term::with_phase`]; the coefficient is [`PreRlConfig::coef()`]).
    ///
    /// # Errors
    /// [`PrerlError::Config`]; loss config errors.
    pub fn term(&self, name: &str, scorer: Marginal) -> Result<Term> {
        self.validate()?;
        let (advantage, mask) = self.advantage_and_mask();
        Ok(Term::new(name, advantage, Box::new(self.loss().init()?))
            .with_scorer(Box::new(scorer))
            .with_sample_mask(mask)
            .with_phase(Phase {
                coef: self.coef(),
                ..Phase::default()
            }))
    }

    /// The marginal scorer: `context_token` when set, else from `tokenizer`.
    ///
    /// # Errors
    /// [`PrerlError::Config`] when neither gives a token.
    pub fn scorer(&self, tokenizer: Option<&rlft_models::ChatTokenizer>) -> Result<Marginal> {
        match (self.context_token, tokenizer) {
            (Some(context_token), _) => Ok(Marginal { context_token }),
            (None, Some(t)) => Ok(Marginal::for_tokenizer(t)?),
            (None, None) => Err(config(
                "prerl.context_token",
                "set it, or pass a tokenizer that has <|im_start|> or BOS".into(),
            )),
        }
    }
}

/// A conditional-space method (post-train space, log π(y|x)): the baselines and DSRL's
/// second phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RlMethod {
    /// GRPO: (r − mean)/(std + 1e-6) (verl, `norm_adv_by_std_in_grpo=True`), PPO clip
    /// `clip_low`/`clip_high`, dual clip 10, token-mean.
    Grpo {
        /// Default 0.2 (both scripts).
        clip_low: f32,
        /// Default 0.2 in `DSRL_qwen3-4b.sh`'s second phase; `Baseline_qwen3-4b.sh` uses
        /// 0.28 ([`RlMethod::grpo_baseline`]).
        clip_high: f32,
    },
    /// Zhu et al.'s PSR: A = 1 on right samples, wrong ones leave the batch.
    Psr,
    /// Zhu et al.'s NSR: A = −1 on wrong samples (all-wrong groups included).
    Nsr,
    /// W-REINFORCE: A = λ on right samples, −1 on wrong ones.
    WReinforce {
        /// Default 0.1 (Zhu et al.'s recommendation).
        lambda: f32,
    },
}

impl Default for RlMethod {
    fn default() -> Self {
        Self::Grpo {
            clip_low: 0.2,
            clip_high: 0.2,
        }
    }
}

impl RlMethod {
    /// `Baseline_qwen3-4b.sh`'s GRPO (clip-high 0.28).
    pub fn grpo_baseline() -> Self {
        Self::Grpo {
            clip_low: 0.2,
            clip_high: 0.28,
        }
    }

    /// W-REINFORCE with λ = 0.1.
    pub fn w_reinforce() -> Self {
        Self::WReinforce { lambda: 0.1 }
    }

    /// A short name (`grpo`, `psr`, `nsr`, `w_reinforce`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Grpo { .. } => "grpo",
            Self::Psr => "psr",
            Self::Nsr => "nsr",
            Self::WReinforce { .. } => "w_reinforce",
        }
    }

    /// The term `name` on the conditional scorer, coefficient 1 at every step. The loss is
    /// verl's token-mean PPO-clip with log-ratio clamp ±20; GRPO uses dual clip 10 (the
    /// PreRL scripts' `clip_ratio_c`), PSR/NSR/W-REINFORCE verl's default 3 (Zhu et al. keep
    /// verl's actor defaults).
    ///
    /// # Errors
    /// Loss config errors.
    pub fn term(&self, name: &str) -> Result<Term> {
        let t = 1.0;
        let (advantage, loss) = match *self {
            Self::Grpo {
                clip_low,
                clip_high,
            } => (
                AdvantageEstimator::Grpo {
                    scale: RewardScale::Group,
                    epsilon: 1e-6,
                },
                PolicyLossConfig {
                    epsilon_low: clip_low,
                    epsilon_high: clip_high,
                    dual_clip: Some(10.0),
                    ..PolicyLossConfig::verl()
                },
            ),
            Self::Psr => (
                AdvantageEstimator::Psr {
                    success_threshold: t,
                },
                PolicyLossConfig::verl(),
            ),
            Self::Nsr => (
                AdvantageEstimator::Nsr {
                    success_threshold: t,
                },
                PolicyLossConfig::verl(),
            ),
            Self::WReinforce { lambda } => (
                AdvantageEstimator::WReinforce {
                    lambda,
                    success_threshold: t,
                },
                PolicyLossConfig::verl(),
            ),
        };
        debug_assert_eq!(loss.aggregation, LossAggregation::TokenMean);
        advantage.validate()?;
        Ok(Term::new(name, advantage, Box::new(loss.init()?)))
    }
}

/// Dual Space RL (spec §2): PreRL (NSR, code weights) for the first steps, then GRPO on the
/// conditional policy, the reference set to the policy at the switch. Optimiser state, LR,
/// data order and the step counter continue across it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DsrlConfig {
    /// verl's `pretrain_loss_disable_step` S, in verl's 1-based steps: steps 1..S−1 train
    /// PreRL only, so there are S − 1 PreRL updates. Default 20 (`DSRL_qwen3-4b.sh`; README:
    /// 10–25). rlft counts steps from 0, so GRPO starts (and the reference syncs) at rlft
    /// step S − 1 ([`DsrlConfig::switch_step`]): released S = 20 → 19 PreRL updates, rlft
    /// steps 0..=18.
    pub pretrain_loss_disable_step: usize,
    /// The first phase. Default NSR-PreRL with the code's weights.
    pub prerl: PreRlConfig,
    /// The second phase. Default GRPO, clip 0.2 / 0.2 (`DSRL_qwen3-4b.sh`).
    pub rl: RlMethod,
}

impl Default for DsrlConfig {
    fn default() -> Self {
        Self {
            pretrain_loss_disable_step: 20,
            prerl: PreRlConfig::default(),
            rl: RlMethod::default(),
        }
    }
}

impl DsrlConfig {
    /// The DSRL config whose switch falls on rlft step `switch` (0-based), i.e. verl's
    /// S = `switch` + 1.
    pub fn switching_at(switch: usize) -> Self {
        Self {
            pretrain_loss_disable_step: switch + 1,
            ..Self::default()
        }
    }

    /// The 0-based rlft step at which GRPO starts and the reference syncs: S − 1.
    pub fn switch_step(&self) -> usize {
        self.pretrain_loss_disable_step.saturating_sub(1)
    }

    /// Checks the fields.
    ///
    /// # Errors
    /// [`PrerlError::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.pretrain_loss_disable_step < 2 {
            return Err(config(
                "dsrl.pretrain_loss_disable_step",
                format!(
                    "must be ≥ 2 (S − 1 PreRL updates), got {}",
                    self.pretrain_loss_disable_step
                ),
            ));
        }
        self.prerl.validate()
    }

    /// The two phased terms (`prerl` for steps < S − 1, `rl` from S − 1) on `scorer`, and
    /// `learner` with `sync_reference_at = [S − 1]`.
    ///
    /// # Errors
    /// [`PrerlError::Config`]; loss config errors.
    pub fn build(
        &self,
        scorer: Marginal,
        learner: LearnerConfig,
    ) -> Result<(Vec<Term>, LearnerConfig)> {
        self.validate()?;
        let s = self.switch_step();
        let pre = self.prerl.term("prerl", scorer)?.with_phase(Phase {
            from: 0,
            until: Some(s),
            coef: self.prerl.coef(),
        });
        let rl = self.rl.term(self.rl.name())?.with_phase(Phase {
            from: s,
            until: None,
            coef: 1.0,
        });
        let mut learner = learner;
        learner.sync_reference_at = vec![s];
        Ok((vec![pre, rl], learner))
    }
}

/// The released scripts' optimiser and update settings: AdamW lr 1e-6 constant, no warm-up,
/// weight decay 0.01, grad-norm clip 1.0, one optimiser step per rollout batch
/// (`DSRL_qwen3-4b.sh`: `ppo_mini_batch_size` = batch, `ppo_epochs=1`), T = 1.0.
pub fn released_learner() -> LearnerConfig {
    LearnerConfig {
        optim: OptimConfig {
            lr: 1e-6,
            weight_decay: 0.01,
            max_grad_norm: Some(1.0),
            schedule: LrSchedule::Constant,
            warmup_steps: 0,
            ..OptimConfig::default()
        },
        num_iterations: 1,
        steps_per_generation: 1,
        temperature: 1.0,
        ..LearnerConfig::default()
    }
}

fn config(field: &'static str, reason: String) -> PrerlError {
    PrerlError::Config { field, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_released_scripts() {
        let p = PreRlConfig::default();
        assert_eq!(
            (p.variant, p.weighting, p.coef()),
            (PreRlVariant::Nsr, PreRlWeighting::Code, 0.01)
        );
        let l = p.loss();
        assert_eq!((l.dual_clip, l.log_ratio_clamp), (Some(10.0), Some(20.0)));
        assert_eq!(l.aggregation, LossAggregation::TokenMean);
        let d = DsrlConfig::default();
        assert_eq!((d.pretrain_loss_disable_step, d.switch_step()), (20, 19));
        let (terms, learner) = d
            .build(Marginal { context_token: 1 }, released_learner())
            .unwrap();
        assert_eq!(learner.sync_reference_at, vec![19]);
        assert_eq!(terms[0].phase.coef_at(18), 0.01);
        assert_eq!(terms[0].phase.coef_at(19), 0.0);
        assert_eq!(
            (terms[1].phase.coef_at(18), terms[1].phase.coef_at(19)),
            (0.0, 1.0)
        );
        assert_eq!(terms[0].sample_mask, SampleMask::Negative);
        let zhu = PreRlConfig {
            weighting: PreRlWeighting::Zhu,
            ..PreRlConfig::default()
        };
        assert_eq!(zhu.coef(), 1.0);
        assert!(DsrlConfig::switching_at(0).validate().is_err());
        let bad = PreRlConfig {
            coef: Some(f64::NAN),
            ..PreRlConfig::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(PrerlError::Config {
                field: "prerl.coef",
                ..
            })
        ));
    }

    #[test]
    fn configs_read_from_toml_and_reject_unknown_keys() {
        let d: DsrlConfig = serde_json::from_str(
            r#"{"pretrain_loss_disable_step": 5, "prerl": {"variant": "psr", "weighting": "zhu"}}"#,
        )
        .unwrap();
        assert_eq!(d.prerl.variant, PreRlVariant::Psr);
        assert_eq!(d.rl, RlMethod::default());
        assert!(serde_json::from_str::<DsrlConfig>(r#"{"s": 5}"#).is_err());
    }
}
