//! One learner for every method: marginal scoring (PreRL), phased multi-term objectives
//! (DSRL), sample masks, SFT loss masks and multi-turn rendering.

use burn::tensor::{Device, Int, Tensor, TensorData};
use proptest::prelude::*;
use rlft_core::{
    AdvantageEstimator, Advantages, BatchOptions, Completion, LossAggregation, Objective,
    ObjectiveInput, PolicyBatch, PolicyLossConfig, PromptGroup, WeightedNll,
};
use rlft_models::{CausalLm, CharTokenizer, ChatTokenizer, qwen2};
use rlft_tasks::{Message, Role};
use rlft_trainer::{
    Conditional, Learner, LearnerConfig, LossTurns, Marginal, OptimConfig, Phase, SampleMask,
    Scorer, SftExample, Term, TrainerError, render_conversation, sft_batch,
};

/// Tests in this file share the backend's RNG (seeded per test), so they run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const VOCAB: usize = 24;

fn model(device: &Device, seed: u64) -> CausalLm {
    device.seed(seed);
    CausalLm::new(&qwen2::tiny(VOCAB), device).init_normal(0.02)
}

fn host(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

fn group(prompt: &[u32], comps: &[(&[u32], f32)]) -> PromptGroup {
    PromptGroup {
        prompt_index: 0,
        prompt_ids: prompt.to_vec(),
        completions: comps
            .iter()
            .map(|&(ids, reward)| Completion {
                token_ids: ids.to_vec(),
                reward,
                correct: Some(reward >= 1.0),
                ..Completion::default()
            })
            .collect(),
    }
}

fn batch(groups: &[PromptGroup]) -> PolicyBatch {
    let rows: usize = groups.iter().map(|g| g.completions.len()).sum();
    let adv = Advantages {
        values: vec![1.0; rows],
        keep: vec![true; rows],
    };
    PolicyBatch::from_groups(groups, &adv, &BatchOptions::default()).unwrap()
}

#[test]
fn marginal_scores_are_the_same_whatever_the_prompt_and_score_every_response_token() {
    let _s = serial();
    let device = Device::flex();
    let m = model(&device, 1);
    let marginal = Marginal { context_token: 3 };
    let with = |prompt: &[u32]| batch(&[group(prompt, &[(&[7, 8, 9, 2], 1.0), (&[10, 2], 0.0)])]);
    let a = with(&[1, 4, 5, 6]);
    let b = with(&[11]);
    let la = host(marginal.score(&m, &a, 1.0, &device, None).unwrap().0);
    let lb = host(marginal.score(&m, &b, 1.0, &device, None).unwrap().0);
    assert_eq!(la, lb, "P1: log P(y) must not depend on the prompt");
    // The conditional scores read the prompt.
    let ca = host(Conditional.score(&m, &a, 1.0, &device, None).unwrap().0);
    let cb = host(Conditional.score(&m, &b, 1.0, &device, None).unwrap().0);
    assert_ne!(ca, cb);
    // Exactly [context] ++ y, positions from 0: y_1 is predicted from the context token alone,
    // and the last (EOS) token is scored too.
    let ids = Tensor::<2, Int>::from_data(TensorData::new(vec![3i64, 7, 8, 9, 2], [1, 5]), &device);
    let tg = Tensor::<2, Int>::from_data(TensorData::new(vec![7i64, 8, 9, 2, 0], [1, 5]), &device);
    let mask = Tensor::<2, Int>::ones([1, 5], &device);
    let direct = host(m.token_log_probs(ids, mask, tg, 1.0));
    assert_eq!(&la[..4], &direct[..4]);
    // P2: the scored span is the completion mask; the view keeps the loss mask as it was.
    let view = marginal.view(&a);
    assert_eq!((view.prompt_len, view.prompt_ids.clone()), (1, vec![3, 3]));
    assert_eq!(view.loss_mask, a.loss_mask);
    assert_eq!(view.active_tokens(), 4 + 2);
}

#[test]
fn phases_switch_at_step_s_and_reject_empty_ranges() {
    let pre = Phase {
        until: Some(5),
        coef: 0.01,
        ..Phase::default()
    };
    let rl = Phase {
        from: 5,
        ..Phase::default()
    };
    assert_eq!(
        (pre.coef_at(0), pre.coef_at(4), pre.coef_at(5)),
        (0.01, 0.01, 0.0)
    );
    assert_eq!(
        (rl.coef_at(4), rl.coef_at(5), rl.coef_at(500)),
        (0.0, 1.0, 1.0)
    );
    let empty = Phase {
        from: 3,
        until: Some(3),
        coef: 1.0,
    };
    assert!(matches!(
        empty.validate("objective.phase"),
        Err(TrainerError::Config { .. })
    ));
}

#[test]
fn a_negative_sample_mask_keeps_only_wrong_answers_of_mixed_groups() {
    // r − mean: a wrong answer of a mixed group gets −p_g; all-wrong and all-right groups 0.
    let rewards = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0];
    let mut adv = AdvantageEstimator::DrGrpo.compute(&rewards, 4).unwrap();
    SampleMask::Negative.apply(&mut adv);
    assert_eq!(
        adv.keep,
        [
            false, true, true, true, false, false, false, false, false, false, false, false
        ]
    );
    assert!((adv.values[1] + 0.25).abs() < 1e-6, "P4: weight −p_g");
    let mut pos = AdvantageEstimator::DrGrpo.compute(&rewards, 4).unwrap();
    SampleMask::Positive.apply(&mut pos);
    assert_eq!(pos.keep.iter().filter(|&&k| k).count(), 1);
    // P8: the denominator counts only the masked samples' tokens.
    let groups: Vec<PromptGroup> = rewards
        .chunks(4)
        .map(|rs| {
            let comps: Vec<(&[u32], f32)> = rs.iter().map(|&r| (&[5u32, 6, 7][..], r)).collect();
            group(&[1], &comps)
        })
        .collect();
    let b = PolicyBatch::from_groups(&groups, &adv, &BatchOptions::default()).unwrap();
    assert_eq!(b.active_tokens(), 3 * 3);
}

/// Rewards for two prompts × 4 completions.
fn two_groups(rewards: &[f32]) -> Vec<PromptGroup> {
    let comps = [&[7u32, 8][..], &[9, 2], &[7, 2], &[10, 11, 2]];
    (0..2)
        .map(|g| {
            let c: Vec<(&[u32], f32)> = (0..4).map(|i| (comps[i], rewards[4 * g + i])).collect();
            group(&[1 + g as u32, 4], &c)
        })
        .collect()
}

fn cfg() -> LearnerConfig {
    LearnerConfig {
        optim: OptimConfig {
            lr: 0.05,
            ..OptimConfig::default()
        },
        micro_batch_size: 3,
        ..LearnerConfig::default()
    }
}

fn grpo_term(phase: Phase) -> Term {
    Term::new(
        "grpo",
        AdvantageEstimator::default(),
        Box::new(PolicyLossConfig::default().init().unwrap()),
    )
    .with_phase(phase)
}

fn nsr_prerl_term(phase: Phase) -> Term {
    let loss = PolicyLossConfig {
        dual_clip: Some(10.0),
        aggregation: LossAggregation::TokenMean,
        ..PolicyLossConfig::default()
    };
    Term::new(
        "nsr_prerl",
        AdvantageEstimator::DrGrpo,
        Box::new(loss.init().unwrap()),
    )
    .with_scorer(Box::new(Marginal { context_token: 3 }))
    .with_sample_mask(SampleMask::Negative)
    .with_phase(phase)
}

/// The policy after one update at training step `step` with `terms`.
fn updated(terms: Vec<Term>, step: usize, rewards: &[f32]) -> (Vec<f32>, rlft_trainer::StepRecord) {
    let device = Device::flex().autodiff();
    let m = model(&device, 7);
    let c = cfg();
    let mut learner = Learner::with_terms(c.clone(), 10, terms).unwrap();
    learner.restore(c.optim.adamw(), step, step);
    let (m, rec) = learner
        .update(m, None, &two_groups(rewards), &device)
        .unwrap();
    assert_eq!(learner.batches(), step + 1);
    let probe = batch(&two_groups(rewards));
    (
        host(Conditional.score(&m, &probe, 1.0, &device, None).unwrap().0),
        rec,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// P7: for step < S the update equals the NSR-PreRL term's alone (the GRPO term gives
    /// exactly zero gradient); from S on it equals GRPO's alone.
    #[test]
    fn a_term_that_is_off_contributes_exactly_nothing(
        s in 1usize..4,
        step in 0usize..5,
        rewards in proptest::collection::vec(prop_oneof![Just(0.0f32), Just(1.0f32)], 8),
    ) {
        let _g = serial();
        let pre = Phase { until: Some(s), coef: 0.01, ..Phase::default() };
        let rl = Phase { from: s, ..Phase::default() };
        let (both, rec) = updated(vec![nsr_prerl_term(pre), grpo_term(rl)], step, &rewards);
        let (alone, _) = if step < s {
            updated(vec![nsr_prerl_term(pre)], step, &rewards)
        } else {
            updated(vec![grpo_term(rl)], step, &rewards)
        };
        prop_assert_eq!(both, alone);
        let (c_pre, c_rl) = (rec.get("coef/nsr_prerl"), rec.get("coef/grpo"));
        if step < s {
            prop_assert_eq!((c_pre, c_rl), (Some(0.01), Some(0.0)));
            prop_assert!(rec.get("loss/grpo").is_none());
        } else {
            prop_assert_eq!((c_pre, c_rl), (Some(0.0), Some(1.0)));
            prop_assert!(rec.get("loss/nsr_prerl").is_none());
        }
    }
}

#[test]
fn no_negatives_give_a_finite_zero_loss() {
    let _s = serial();
    // P6: every group all-right or all-wrong: the NSR-PreRL term has nothing to push down.
    let (_, rec) = updated(
        vec![nsr_prerl_term(Phase::default())],
        0,
        &[1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0],
    );
    assert_eq!(rec.get("loss"), Some(0.0));
    assert_eq!(rec.get("grad_norm"), Some(0.0));
    // Accuracy counts verdicts.
    assert_eq!(rec.get("accuracy"), Some(0.5));
}

#[test]
fn a_learner_rejects_no_terms_and_duplicate_names() {
    assert!(Learner::with_terms(cfg(), 1, vec![]).is_err());
    assert!(
        Learner::with_terms(
            cfg(),
            1,
            vec![grpo_term(Phase::default()), grpo_term(Phase::default())]
        )
        .is_err()
    );
}

#[test]
fn sft_loss_masks_leave_masked_tokens_out_of_the_loss() {
    let _s = serial();
    let device = Device::flex();
    let m = model(&device, 3);
    let ex = SftExample {
        prompt_ids: vec![1, 4],
        completion_ids: vec![7, 8, 9, 2],
        loss_mask: vec![1.0, 0.0, 0.0, 1.0],
        weight: 2.0,
    };
    let b = sft_batch(&[&ex], 0).unwrap();
    assert_eq!(b.loss_mask, vec![1.0, 0.0, 0.0, 1.0]);
    let (lp, _) = Conditional.score(&m, &b, 1.0, &device, None).unwrap();
    let v = host(lp.clone());
    let t = b.to_tensors(&device).unwrap();
    let out = WeightedNll::default()
        .compute(ObjectiveInput::new(lp, &t))
        .unwrap();
    let loss: f32 = out.loss.into_scalar();
    // Sequence-level: w · (−Σ masked log-probs / masked count).
    let want = -2.0 * (v[0] + v[3]) / 2.0;
    assert!((loss - want).abs() < 1e-5, "{loss} vs {want}");
    let bad = SftExample {
        loss_mask: vec![1.0],
        ..ex
    };
    assert!(matches!(
        sft_batch(&[&bad], 0),
        Err(TrainerError::InvalidBatch(_))
    ));
}

fn chat_tokenizer(name: &str) -> ChatTokenizer {
    let dir = std::env::temp_dir().join(format!("rlft-terms-{name}-{}", std::process::id()));
    CharTokenizer::ascii().save(&dir).unwrap();
    let tok = ChatTokenizer::from_dir(&dir).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    tok
}

#[test]
fn conversations_render_through_the_template_with_loss_on_chosen_assistant_turns() {
    let tok = chat_tokenizer("render");
    let msgs = vec![
        Message::new(Role::System, "s"),
        Message::new(Role::User, "1 2"),
        Message::new(Role::Assistant, "4"),
        Message::new(Role::User, "try again"),
        Message::new(Role::Assistant, "3"),
    ];
    let text = |ids: &[u32]| tok.decode(ids, false).unwrap();
    let last = render_conversation(&tok, &msgs, LossTurns::Last).unwrap();
    // DRIFT: the prompt is everything before the last assistant message, with its header;
    // the target is that message and its end-of-turn token.
    assert!(text(&last.prompt_ids).ends_with("try again<|im_end|>\n<|im_start|>assistant\n"));
    assert_eq!(text(&last.completion_ids), "3<|im_end|>");
    assert_eq!(last.loss_mask, vec![1.0, 1.0]);
    let all = render_conversation(&tok, &msgs, LossTurns::All).unwrap();
    assert!(text(&all.prompt_ids).ends_with("1 2<|im_end|>\n<|im_start|>assistant\n"));
    let trained: Vec<u32> = all
        .completion_ids
        .iter()
        .zip(&all.loss_mask)
        .filter(|(_, m)| **m > 0.0)
        .map(|(&t, _)| t)
        .collect();
    // Both answers and their end-of-turn tokens, and nothing of the feedback.
    assert_eq!(text(&trained), "4<|im_end|>3<|im_end|>");
    assert_eq!(
        [all.prompt_ids.clone(), all.completion_ids.clone()].concat(),
        [last.prompt_ids.clone(), last.completion_ids.clone()].concat()
    );
    let no_assistant = [Message::new(Role::User, "1")];
    assert!(render_conversation(&tok, &no_assistant, LossTurns::All).is_err());
}
