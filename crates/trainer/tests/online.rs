//! The online loop end to end on a tiny model (local engine, DPS, GRPO), and exact resume:
//! a run killed between checkpoints continues exactly as an uninterrupted run.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rlft_models::{CausalLm, CharTokenizer, ChatTokenizer, qwen2};
use rlft_rollout::{LocalConfig, LocalEngine, RolloutEngine, SamplingParams};
use rlft_samplers::{BatchShape, Dps, DpsConfig};
use rlft_trainer::{
    GrpoConfig, LrSchedule, OnlineConfig, OnlineParts, OnlineTrainer, OptimConfig, Result,
    SingleTurn, StepRecord, read_log,
};

struct Fixture {
    dir: PathBuf,
    tok_dir: PathBuf,
    prompts: Vec<Vec<u32>>,
    answers: Vec<String>,
    model: CausalLm,
    device: Device,
}

fn fixture(name: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("rlft-online-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let tok_dir = dir.join("tok");
    let chars = CharTokenizer::new("0123456789+=");
    chars.save(&tok_dir).unwrap();
    let tok = ChatTokenizer::from_dir(&tok_dir).unwrap();
    let pairs = [(1, 2), (2, 2), (3, 1), (0, 4), (2, 5), (4, 4)];
    let prompts = pairs
        .iter()
        .map(|(a, b)| tok.encode(&format!("{a}+{b}="), false).unwrap())
        .collect();
    let answers = pairs.iter().map(|(a, b)| (a + b).to_string()).collect();
    let device = Device::flex().autodiff();
    let mut cfg = qwen2::tiny(chars.vocab_size());
    cfg.eos_token_ids = vec![tok.eos_token_id().unwrap()];
    device.seed(0);
    let model = CausalLm::new(&cfg, &device).init_normal(0.02);
    Fixture {
        dir,
        tok_dir,
        prompts,
        answers,
        model,
        device,
    }
}

fn config() -> OnlineConfig {
    OnlineConfig {
        steps: 4,
        seed: 7,
        sampling: SamplingParams {
            max_new_tokens: 3,
            temperature: 1.0,
            ..SamplingParams::default()
        },
        grpo: GrpoConfig {
            num_iterations: 2,
            micro_batch_size: 4,
            optim: OptimConfig {
                lr: 1e-3,
                schedule: LrSchedule::Linear,
                warmup_steps: 1,
                ..OptimConfig::default()
            },
            ..GrpoConfig::default()
        },
        checkpoint_every: 2,
        keep_checkpoints: 2,
    }
}

fn open<'a>(
    f: &'a Fixture,
    dir: &Path,
    rewarder: &'a dyn rlft_trainer::Rewarder,
) -> OnlineTrainer<'a> {
    let shape = BatchShape {
        num_prompts: f.prompts.len(),
        batch_size: 2,
        group_size: 4,
    };
    let sampler = Box::new(Dps::new(shape, &DpsConfig::default()).unwrap());
    let tok_dir = f.tok_dir.clone();
    let engine = Box::new(move |m: &CausalLm| -> Result<Box<dyn RolloutEngine + 'a>> {
        let tok = ChatTokenizer::from_dir(&tok_dir)?;
        Ok(Box::new(LocalEngine::new(
            m.valid(),
            Some(tok),
            LocalConfig::default(),
        )?))
    });
    OnlineTrainer::open(
        config(),
        dir,
        OnlineParts {
            model: f.model.clone(),
            reference: None,
            sampler,
            source: Box::new(SingleTurn::new(f.prompts.clone(), rewarder)),
            engine,
            terms: Vec::new(),
        },
        &f.device,
    )
    .unwrap()
}

fn probe(model: &CausalLm, device: &Device) -> Vec<f32> {
    let ids = Tensor::<2, Int>::from_data(TensorData::new(vec![4i64, 5, 6, 7, 8], [1, 5]), device);
    let mask = Tensor::<2, Int>::ones([1, 5], device);
    model
        .valid()
        .forward(ids, mask)
        .into_data()
        .try_to_vec()
        .unwrap()
}

/// Metrics without the wall-clock ones.
fn comparable(recs: &[StepRecord]) -> Vec<StepRecord> {
    recs.iter()
        .map(|r| {
            let mut r = r.clone();
            for k in ["seconds", "tokens_per_s", "gen_tokens_per_s"] {
                r.values.remove(k);
            }
            r
        })
        .collect()
}

#[test]
fn killed_run_resumes_exactly() {
    let f = fixture("resume");
    let answers = f.answers.clone();
    let rewarder = move |i: usize, text: &str| -> Result<(f32, bool)> {
        let ok = text.trim() == answers[i];
        Ok((f32::from(u8::from(ok)), ok))
    };

    // Uninterrupted.
    let dir_a = f.dir.join("a");
    let mut a = open(&f, &dir_a, &rewarder);
    a.run(None, |_| {}).unwrap();
    assert_eq!(a.step(), 4);
    let want = probe(a.model(), &f.device);
    let log_a = read_log(&dir_a.join("metrics.jsonl")).unwrap();
    assert_eq!(log_a.len(), 4);
    assert!(
        log_a
            .iter()
            .all(|r| r.get("rollouts").is_some() && r.get("loss").is_some())
    );
    // Reasoning-behaviour counters (spec prerl.md §3) are logged for every run.
    assert!(log_a.iter().all(|r| {
        [
            "thoughts/transition",
            "thoughts/reflection",
            "thoughts/transition_words",
            "thoughts/reflection_words",
        ]
        .iter()
        .all(|k| r.get(k).is_some_and(|v| v.is_finite() && v >= 0.0))
    }));

    // Killed after step 3 (the last checkpoint is at step 2), then resumed by a new process.
    let dir_b = f.dir.join("b");
    let mut b = open(&f, &dir_b, &rewarder);
    b.run(Some(3), |_| {}).unwrap();
    assert_eq!(b.step(), 3);
    drop(b);
    assert_eq!(read_log(&dir_b.join("metrics.jsonl")).unwrap().len(), 3);
    let mut b = open(&f, &dir_b, &rewarder);
    assert_eq!(b.step(), 2, "resumes from the step-2 checkpoint");
    b.run(None, |_| {}).unwrap();
    let got = probe(b.model(), &f.device);
    let log_b = read_log(&dir_b.join("metrics.jsonl")).unwrap();

    assert_eq!(comparable(&log_b), comparable(&log_a));
    assert_eq!(
        got, want,
        "resumed weights differ from the uninterrupted run's"
    );
    // Only the newest checkpoints are kept.
    let ckpts = std::fs::read_dir(&dir_b)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("ckpt-")
        })
        .count();
    assert_eq!(ckpts, 2);
    std::fs::remove_dir_all(&f.dir).unwrap();
}
