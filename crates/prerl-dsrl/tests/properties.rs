//! Properties P1–P10 of spec prerl.md §7.1.
//!
//! Several are tested where the machinery lives and are not repeated here:
//! - P1 (prompt removal, bit-identical log P(y)) and P2 (scored span):
//!   `crates/trainer/tests/terms.rs::marginal_scores_are_the_same_whatever_the_prompt_and_score_every_response_token`;
//! - P6 (no negatives: loss 0, zero gradient):
//!   `crates/trainer/tests/terms.rs::no_negatives_give_a_finite_zero_loss` (again below through
//!   this crate's builder);
//! - P7 (a term that is off has exactly zero gradient, on either side of S):
//!   `crates/trainer/tests/terms.rs::a_term_that_is_off_contributes_exactly_nothing`;
//! - P8 (token-mean denominator counts only masked tokens):
//!   `crates/trainer/tests/terms.rs::a_negative_sample_mask_keeps_only_wrong_answers_of_mixed_groups`;
//! - P9 (pass@k equals brute-force enumeration): `crates/trainer/src/passk.rs`;
//! - P10 (thought counter): `crates/tasks/src/thoughts.rs`.
//!
//! Here: P3, P4, P5, P6 and P7's reference sync through the builders of this crate.

use burn::tensor::{Device, Tensor};
use proptest::prelude::*;
use rlft_core::{BatchOptions, Completion, LossScale, ObjectiveInput, PolicyBatch, PromptGroup};
use rlft_models::{CausalLm, qwen2};
use rlft_prerl_dsrl::{
    DsrlConfig, PreRlConfig, PreRlVariant, PreRlWeighting, gradient_alignment, released_learner,
};
use rlft_trainer::{Learner, LearnerConfig, Marginal, OptimConfig, Scorer};

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const VOCAB: usize = 24;
const CTX: u32 = 3;

fn model(device: &Device, seed: u64) -> CausalLm {
    device.seed(seed);
    CausalLm::new(&qwen2::tiny(VOCAB), device).init_normal(0.02)
}

fn host(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// Groups of 4 completions with `rewards` (0/1), completion lengths 2–4.
fn groups(rewards: &[f32], seed: u32) -> Vec<PromptGroup> {
    rewards
        .chunks(4)
        .enumerate()
        .map(|(g, rs)| PromptGroup {
            prompt_index: g,
            prompt_ids: vec![1 + g as u32, 4],
            completions: rs
                .iter()
                .enumerate()
                .map(|(i, &reward)| Completion {
                    token_ids: (0..2 + (i + g) % 3)
                        .map(|t| 5 + ((seed as usize + 7 * i + 3 * t + g) % 18) as u32)
                        .collect(),
                    reward,
                    correct: Some(reward >= 1.0),
                    ..Completion::default()
                })
                .collect(),
        })
        .collect()
}

/// The PreRL term's batch (advantages, sample mask) for `cfg`.
fn prerl_batch(cfg: &PreRlConfig, groups: &[PromptGroup]) -> PolicyBatch {
    let rewards: Vec<f32> = groups.iter().flat_map(|g| g.rewards()).collect();
    let (est, mask) = cfg.advantage_and_mask();
    let mut adv = est.compute(&rewards, 4).unwrap();
    mask.apply(&mut adv);
    PolicyBatch::from_groups(groups, &adv, &BatchOptions::default()).unwrap()
}

/// ∂L/∂log P(y_{i,t}) of the PreRL objective (coefficient 1) on `batch`, as a host matrix,
/// and the loss.
fn token_grads(cfg: &PreRlConfig, batch: &PolicyBatch, old: bool) -> (Vec<f32>, f32) {
    let device = Device::flex().autodiff();
    let m = model(&device, 5);
    let lp = Marginal { context_token: CTX }
        .score(&m, batch, 1.0, &device, None)
        .unwrap()
        .0;
    let lp = Tensor::<2>::from_data(lp.into_data(), &device).require_grad();
    let mut b = batch.clone();
    if old {
        // Old log-probs from a separate pass, equal to the current ones: ratio exactly 1.
        b.old_logps = Some(host(lp.clone().detach()));
    }
    let tensors = b.to_tensors(&device).unwrap();
    let scale = LossScale {
        token_normalizer: Some(batch.active_tokens().max(1) as f32),
        ..LossScale::default()
    };
    let obj = cfg.loss().init().unwrap();
    let out = rlft_core::Objective::compute(
        &obj,
        ObjectiveInput::new(lp.clone(), &tensors).with_scale(scale),
    )
    .unwrap();
    let loss = out.loss.clone().into_scalar::<f32>();
    let g = lp.grad(&out.loss.backward()).unwrap();
    (g.into_data().try_to_vec::<f32>().unwrap(), loss)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// P4 and P5: with ratio 1 (old log-probs equal to the current ones, or none) the
    /// PPO-clip / dual-clip gradient is REINFORCE's, −A_i M_{i,t} / N_M per token; for
    /// NSR-PreRL with the code's weights that is +p_g / N_M on each token of a wrong answer
    /// of a mixed group and exactly 0 elsewhere (right answers, all-right and all-wrong
    /// groups, padding).
    #[test]
    fn on_policy_the_gradient_is_reinforce_with_the_code_weights(
        rewards in proptest::collection::vec(prop_oneof![Just(0.0f32), Just(1.0f32)], 12),
        variant in prop_oneof![Just(PreRlVariant::Nsr), Just(PreRlVariant::Psr), Just(PreRlVariant::Both)],
        old in any::<bool>(),
    ) {
        let _s = serial();
        let cfg = PreRlConfig::code(variant);
        let gs = groups(&rewards, 1);
        let batch = prerl_batch(&cfg, &gs);
        let (g, _) = token_grads(&cfg, &batch, old);
        let n = batch.active_tokens().max(1) as f32;
        let t = batch.completion_len;
        for r in 0..batch.rows {
            let group = &rewards[(r / 4) * 4..(r / 4) * 4 + 4];
            let p = group.iter().sum::<f32>() / 4.0;
            let a = rewards[r] - p;
            let kept = match variant {
                PreRlVariant::Nsr => a < 0.0,
                PreRlVariant::Psr => a > 0.0,
                PreRlVariant::Both => true,
            };
            for c in 0..t {
                let m = batch.loss_mask[r * t + c];
                let want = if kept { -a * m / n } else { 0.0 };
                prop_assert!((g[r * t + c] - want).abs() < 1e-6, "row {} pos {}: {} vs {}", r, c, g[r * t + c], want);
                if variant == PreRlVariant::Nsr && kept && m > 0.0 {
                    prop_assert!((g[r * t + c] - p / n).abs() < 1e-6, "P4: p_g / N_M");
                }
            }
        }
    }
}

/// P4, the alternative: Zhu's weights give −1 to every wrong answer, all-wrong groups
/// included, and drop right answers.
#[test]
fn zhu_weights_push_down_every_wrong_answer() {
    let _s = serial();
    let cfg = PreRlConfig {
        weighting: PreRlWeighting::Zhu,
        ..PreRlConfig::default()
    };
    let rewards = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0];
    let batch = prerl_batch(&cfg, &groups(&rewards, 2));
    let (g, _) = token_grads(&cfg, &batch, false);
    let n = batch.active_tokens() as f32;
    let t = batch.completion_len;
    for r in 0..12 {
        for c in 0..t {
            let m = batch.loss_mask[r * t + c];
            let want = if rewards[r] == 0.0 { m / n } else { 0.0 };
            assert!((g[r * t + c] - want).abs() < 1e-6);
        }
    }
    // Every token of the 7 wrong answers counts in the denominator.
    let wrong_tokens: usize = groups(&rewards, 2)
        .iter()
        .flat_map(|g| &g.completions)
        .filter(|c| c.reward == 0.0)
        .map(|c| c.token_ids.len())
        .sum();
    assert_eq!(batch.active_tokens(), wrong_tokens);
}

/// P3: NSR-PreRL's loss does not see right answers (changing their tokens leaves it
/// bit-identical), and one small optimiser step lowers log P(y) of the wrong answer.
#[test]
fn nsr_prerl_lowers_log_p_of_the_wrong_answer_and_ignores_right_ones() {
    let _s = serial();
    let cfg = PreRlConfig::default();
    let rewards = [1.0, 1.0, 0.0, 1.0];
    let gs = groups(&rewards, 3);
    let (_, loss) = token_grads(&cfg, &prerl_batch(&cfg, &gs), false);
    let mut other = gs.clone();
    for c in other[0].completions.iter_mut().filter(|c| c.reward == 1.0) {
        for t in &mut c.token_ids {
            *t = 5 + (*t + 4) % 18;
        }
    }
    let (_, loss2) = token_grads(&cfg, &prerl_batch(&cfg, &other), false);
    assert_eq!(loss.to_bits(), loss2.to_bits());
    // On-policy the surrogate is −A · ratio = p_g per token of the wrong answer.
    assert!((loss - 0.75).abs() < 1e-6, "{loss}");

    let device = Device::flex().autodiff();
    let m = model(&device, 9);
    let score = |m: &CausalLm| {
        let b = prerl_batch(&PreRlConfig::code(PreRlVariant::Both), &gs);
        let lp = host(
            Marginal { context_token: CTX }
                .score(m, &b, 1.0, &device, None)
                .unwrap()
                .0,
        );
        (0..b.rows)
            .map(|r| {
                (0..b.completion_len)
                    .map(|c| lp[r * b.completion_len + c] * b.loss_mask[r * b.completion_len + c])
                    .sum::<f32>()
            })
            .collect::<Vec<f32>>()
    };
    let before = score(&m);
    let lc = LearnerConfig {
        optim: OptimConfig {
            lr: 1e-4,
            weight_decay: 0.0,
            ..OptimConfig::default()
        },
        ..LearnerConfig::default()
    };
    let term = cfg
        .term("nsr_prerl", Marginal { context_token: CTX })
        .unwrap();
    let mut learner = Learner::with_terms(lc, 1, vec![term]).unwrap();
    let (m, rec) = learner.update(m, None, &gs, &device).unwrap();
    let after = score(&m);
    assert!(rec.get("grad_norm").unwrap() > 0.0);
    assert!(
        after[2] < before[2],
        "log P(y_wrong): {} → {}",
        before[2],
        after[2]
    );
}

/// P6 through this crate's builder: no mixed group, no negative: loss 0, zero gradient.
#[test]
fn no_negative_sample_gives_a_finite_zero_step() {
    let _s = serial();
    let device = Device::flex().autodiff();
    let term = PreRlConfig::default()
        .term("nsr_prerl", Marginal { context_token: CTX })
        .unwrap();
    let mut learner = Learner::with_terms(released_learner(), 1, vec![term]).unwrap();
    let gs = groups(&[1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0], 4);
    let (_, rec) = learner
        .update(model(&device, 1), None, &gs, &device)
        .unwrap();
    assert_eq!(
        (rec.get("loss"), rec.get("grad_norm")),
        (Some(0.0), Some(0.0))
    );
}

/// P7: DSRL's reference sync happens once, at rlft step S − 1 (verl's step S).
#[test]
fn the_reference_syncs_once_at_the_switch() {
    let dsrl = DsrlConfig {
        pretrain_loss_disable_step: 6,
        ..DsrlConfig::default()
    };
    let (terms, lc) = dsrl
        .build(Marginal { context_token: CTX }, released_learner())
        .unwrap();
    let opt = lc.optim.adamw();
    let mut learner = Learner::with_terms(lc, 20, terms).unwrap();
    let due: Vec<usize> = (0..20)
        .filter(|&b| {
            learner.restore(opt.clone(), b, b);
            learner.reference_sync_due()
        })
        .collect();
    assert_eq!(due, vec![5]);
    // Verl's steps 1..S−1 are PreRL: 5 updates at rlft steps 0..=4.
    let on: Vec<usize> = (0..20)
        .filter(|&s| learner.terms()[0].phase.coef_at(s) > 0.0)
        .collect();
    assert_eq!(on, (0..5).collect::<Vec<_>>());
}

/// The alignment diagnostic: a model is perfectly aligned with itself when the prompt is
/// the context token, and the cosine is a cosine otherwise.
#[test]
fn gradient_alignment_is_one_when_the_prompt_is_the_context_token() {
    let _s = serial();
    let device = Device::flex().autodiff();
    let m = model(&device, 11);
    let mut gs = groups(&[1.0, 0.0, 1.0, 0.0], 5);
    let rows = 4;
    let all = rlft_core::Advantages {
        values: vec![1.0; rows],
        keep: vec![true; rows],
    };
    gs[0].prompt_ids = vec![CTX];
    let b = PolicyBatch::from_groups(&gs, &all, &BatchOptions::default()).unwrap();
    let r = gradient_alignment(&m, &b, Marginal { context_token: CTX }, 1.0, 3, &device).unwrap();
    assert!((r.overall - 1.0).abs() < 1e-4, "{r:?}");
    assert_eq!(r.by_position.len(), 3);
    assert!(r.by_position.iter().all(|p| (p.cosine - 1.0).abs() < 1e-4));
    gs[0].prompt_ids = vec![1, 4, 9, 9];
    let b = PolicyBatch::from_groups(&gs, &all, &BatchOptions::default()).unwrap();
    let r = gradient_alignment(&m, &b, Marginal { context_token: CTX }, 1.0, 2, &device).unwrap();
    assert!(r.overall.abs() <= 1.0 + 1e-9 && r.overall < 0.9999, "{r:?}");
    assert!(r.norms.0 > 0.0 && r.norms.1 > 0.0);
    let empty = PolicyBatch {
        loss_mask: vec![0.0; b.loss_mask.len()],
        ..b
    };
    assert!(
        gradient_alignment(&m, &empty, Marginal { context_token: CTX }, 1.0, 2, &device).is_err()
    );
}
