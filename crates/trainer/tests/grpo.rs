//! The GRPO learner moves probability toward rewarded completions.

use burn::tensor::{Device, Int, Tensor, TensorData};
use rlft_core::{Completion, PolicyLossConfig, PromptGroup};
use rlft_models::{CausalLm, qwen2};
use rlft_trainer::{GrpoConfig, GrpoLearner, LrSchedule, OptimConfig, TrainerError};

/// Tests in this file share the backend's RNG (seeded per test), so they run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const VOCAB: usize = 32;

/// Two prompts, four completions each: completions starting with token 7 are rewarded.
fn groups() -> Vec<PromptGroup> {
    let c = |ids: &[u32], reward: f32| Completion {
        token_ids: ids.to_vec(),
        reward,
        ..Completion::default()
    };
    vec![
        PromptGroup {
            prompt_index: 0,
            prompt_ids: vec![1, 2],
            completions: vec![
                c(&[7, 3], 1.0),
                c(&[8, 3], 0.0),
                c(&[7, 4], 1.0),
                c(&[9], 0.0),
            ],
        },
        PromptGroup {
            prompt_index: 1,
            prompt_ids: vec![5],
            completions: vec![c(&[8], 0.0), c(&[7], 1.0), c(&[9, 9], 0.0), c(&[8, 7], 0.0)],
        },
    ]
}

fn logp_first(model: &CausalLm, prompt: &[u32], token: u32, device: &Device) -> f32 {
    let n = prompt.len();
    let ids: Vec<i64> = prompt.iter().map(|&x| x as i64).collect();
    let mut tg: Vec<i64> = ids[1..].to_vec();
    tg.push(token as i64);
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, n]), device);
    let tg = Tensor::<2, Int>::from_data(TensorData::new(tg, [1, n]), device);
    let mask = Tensor::<2, Int>::ones([1, n], device);
    let v: Vec<f32> = model
        .token_log_probs(ids, mask, tg, 1.0)
        .into_data()
        .try_to_vec()
        .unwrap();
    v[n - 1]
}

fn run(cfg: GrpoConfig, updates: usize) -> (f32, f32, f32, f32, Vec<rlft_trainer::StepRecord>) {
    let device = Device::flex().autodiff();
    device.seed(0);
    let mut model = CausalLm::new(&qwen2::tiny(VOCAB), &device).init_normal(0.02);
    let reference = model.clone();
    let before = (
        logp_first(&model, &[1, 2], 7, &device),
        logp_first(&model, &[1, 2], 8, &device),
    );
    let mut learner = GrpoLearner::new(cfg.clone(), updates * cfg.steps_per_rollout()).unwrap();
    let mut recs = Vec::new();
    for _ in 0..updates {
        let (m, rec) = learner
            .update(model, Some(&reference), &groups(), &device)
            .unwrap();
        model = m;
        recs.push(rec);
    }
    assert_eq!(learner.step(), updates * cfg.steps_per_rollout());
    let after = (
        logp_first(&model, &[1, 2], 7, &device),
        logp_first(&model, &[1, 2], 8, &device),
    );
    (before.0, after.0, before.1, after.1, recs)
}

fn cfg() -> GrpoConfig {
    GrpoConfig {
        optim: OptimConfig {
            lr: 1e-3,
            weight_decay: 0.0,
            schedule: LrSchedule::Constant,
            ..OptimConfig::default()
        },
        micro_batch_size: 3,
        ..GrpoConfig::default()
    }
}

#[test]
fn rewarded_tokens_gain_probability() {
    let _serial = serial();
    let (b7, a7, b8, a8, recs) = run(cfg(), 8);
    assert!(a7 > b7 + 0.5, "log p(7) {b7} → {a7}");
    assert!(a8 < b8 - 0.5, "log p(8) {b8} → {a8}");
    let r = &recs[0];
    assert_eq!(r.get("accuracy"), Some(3.0 / 8.0));
    assert!(r.get("clip_ratio/region_mean").is_some());
    assert!(r.get("grad_norm").unwrap() > 0.0);
}

#[test]
fn several_passes_with_kl_and_clipping_also_learn() {
    let _serial = serial();
    let c = GrpoConfig {
        num_iterations: 2,
        steps_per_generation: 2,
        loss: PolicyLossConfig {
            beta: 0.04,
            epsilon_high: 0.28,
            ..PolicyLossConfig::default()
        },
        ..cfg()
    };
    let (b7, a7, _, _, recs) = run(c, 4);
    assert!(a7 > b7 + 0.3, "log p(7) {b7} → {a7}");
    // Off-policy passes have a real ratio, so the KL and clip metrics are populated.
    assert!(recs.last().unwrap().get("kl").unwrap() > 0.0);
}

#[test]
fn inverted_rewards_push_the_other_way() {
    let _serial = serial();
    // The same test with rewards flipped must fail the first assertion: the sign is real.
    let device = Device::flex().autodiff();
    device.seed(0);
    let model = CausalLm::new(&qwen2::tiny(VOCAB), &device).init_normal(0.02);
    let b7 = logp_first(&model, &[1, 2], 7, &device);
    let mut g = groups();
    for grp in &mut g {
        for c in &mut grp.completions {
            c.reward = 1.0 - c.reward;
        }
    }
    let mut learner = GrpoLearner::new(cfg(), 8).unwrap();
    let mut model = model;
    for _ in 0..8 {
        model = learner.update(model, None, &g, &device).unwrap().0;
    }
    assert!(logp_first(&model, &[1, 2], 7, &device) < b7 - 0.5);
}

#[test]
fn ragged_groups_and_missing_reference_are_errors() {
    let _serial = serial();
    let device = Device::flex().autodiff();
    device.seed(0);
    let model = CausalLm::new(&qwen2::tiny(VOCAB), &device).init_normal(0.02);
    let mut learner = GrpoLearner::new(cfg(), 1).unwrap();
    let mut g = groups();
    g[1].completions.pop();
    assert!(matches!(
        learner.update(model.clone(), None, &g, &device),
        Err(TrainerError::InvalidBatch(_))
    ));
    let c = GrpoConfig {
        loss: PolicyLossConfig {
            beta: 0.1,
            ..PolicyLossConfig::default()
        },
        ..cfg()
    };
    let mut learner = GrpoLearner::new(c, 1).unwrap();
    assert!(matches!(
        learner.update(model, None, &groups(), &device),
        Err(TrainerError::Config {
            field: "grpo.loss.beta",
            ..
        })
    ));
    assert!(matches!(
        GrpoLearner::new(
            GrpoConfig {
                micro_batch_size: 0,
                ..cfg()
            },
            1
        ),
        Err(TrainerError::Config {
            field: "grpo.micro_batch_size",
            ..
        })
    ));
}
