//! A custom RL trainer in about 100 lines, assembled from rlft's parts rather than
//! `OnlineTrainer`: DPS picks the prompts, a local engine samples, a verifier written here
//! scores, and Dr.GRPO (advantage r − mean, loss Σ/(B·L)) updates a tiny model.
//!
//! `cargo run --release -p rlft-examples --example custom_trainer -- [GRPO_STEPS]`

use burn::module::Module;
use burn::tensor::Device;
use rand::{SeedableRng, rngs::StdRng};
use rlft_core::{AdvantageEstimator, LossAggregation, PolicyLossConfig};
use rlft_models::{CausalLm, CharTokenizer, ChatTokenizer, qwen2};
use rlft_rollout::{LocalConfig, LocalEngine, SamplingParams};
use rlft_samplers::{BatchShape, Dps, DpsConfig, PromptSampler};
use rlft_tasks::{Reason, TaskError, TaskItem, Verdict, Verifier};
use rlft_trainer::{
    GrpoConfig, GrpoLearner, OptimConfig, SftConfig, SftExample, VerifierRewarder, collect_step,
    sft_train,
};

/// The user's verifier: the model writes the sum's three digits least-significant first.
struct ReversedSum;

impl Verifier for ReversedSum {
    fn verify(&self, item: &TaskItem, completion: &str) -> Result<Verdict, TaskError> {
        let want: String = format!("{:0>3}", item.answer).chars().rev().collect();
        let got = completion.trim().to_string();
        Ok(if got == want {
            Verdict::correct(got)
        } else {
            let reason = Reason::Mismatch {
                expected: want,
                found: got.clone(),
            };
            Verdict::wrong(Some(got), reason)
        })
    }
}

/// What a run reports: rollouts spent and the training accuracy of each GRPO step.
pub struct Report {
    /// Rollouts generated.
    pub rollouts: usize,
    /// Fraction of correct completions per step.
    pub accuracy: Vec<f64>,
}

/// Warm-starts with `sft_steps` of SFT, then runs `steps` GRPO steps of 16 prompts × 8.
pub fn run(sft_steps: usize, steps: usize) -> anyhow::Result<Report> {
    let dev = Device::flex().autodiff();
    dev.seed(0);
    // Task: two-digit sums, prompt "07+45=", answer "52".
    let items: Vec<TaskItem> = (0..1000u32)
        .map(|i| {
            let (a, b) = ((i * 37 + 11) % 100, (i * 91 + 3) % 100);
            TaskItem::new(
                format!("q{i}"),
                format!("{a:02}+{b:02}="),
                (a + b).to_string(),
            )
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("rlft-example-{}", std::process::id()));
    CharTokenizer::new("0123456789+=").save(&dir)?;
    let tok = ChatTokenizer::from_dir(&dir)?;
    let eos = tok.eos_token_id().expect("char tokenizer has EOS");
    let prompts: Vec<Vec<u32>> = items
        .iter()
        .map(|it| tok.encode(&it.prompt, false))
        .collect::<Result<_, _>>()?;

    let mut cfg = qwen2::tiny(tok.vocab_size());
    (cfg.hidden_size, cfg.num_hidden_layers, cfg.eos_token_ids) = (96, 3, vec![eos]);
    let model = CausalLm::new(&cfg, &dev).init_normal(0.02);

    // 1. SFT warm start on the gold answers.
    let verifier = ReversedSum;
    let examples: Vec<SftExample> = (0..sft_steps * 64)
        .map(|i| {
            let it = &items[i % items.len()];
            let mut c = tok.encode(
                &format!("{:0>3}", it.answer)
                    .chars()
                    .rev()
                    .collect::<String>(),
                false,
            )?;
            c.push(eos);
            Ok(SftExample {
                prompt_ids: prompts[i % items.len()].clone(),
                completion_ids: c,
                weight: 1.0,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let optim = |lr| OptimConfig {
        lr,
        weight_decay: 0.0,
        ..OptimConfig::default()
    };
    let sft = SftConfig {
        batch_size: 64,
        optim: optim(1e-3),
        pad_id: eos,
        ..SftConfig::default()
    };
    let mut model = sft_train(model, &examples, &sft, &dev, |_| {})?;

    // 2. GRPO with the parts swapped: DPS, the verifier above, Dr.GRPO.
    let (b, k) = (16, 8);
    let shape = BatchShape {
        num_prompts: items.len(),
        batch_size: b,
        group_size: k,
    };
    let mut sampler = Dps::new(shape, &DpsConfig::default())?;
    let rewarder = VerifierRewarder::new(verifier, items.clone());
    let grpo = GrpoConfig {
        advantage: AdvantageEstimator::DrGrpo,
        loss: PolicyLossConfig {
            aggregation: LossAggregation::DrGrpo {
                max_completion_length: 5,
            },
            ..PolicyLossConfig::default()
        },
        optim: optim(3e-4),
        micro_batch_size: 128,
        pad_id: eos,
        ..GrpoConfig::default()
    };
    let mut learner = GrpoLearner::new(grpo, steps)?;
    let params = SamplingParams {
        max_new_tokens: 5,
        ..SamplingParams::default()
    };
    let mut report = Report {
        rollouts: 0,
        accuracy: Vec::new(),
    };
    for step in 0..steps as u64 {
        let engine = LocalEngine::new(model.valid(), Some(tok.clone()), LocalConfig::default())?;
        let mut rng = StdRng::seed_from_u64(step);
        let p = SamplingParams {
            seed: Some(step),
            ..params.clone()
        };
        let got = collect_step(
            step,
            &mut sampler,
            &mut rng,
            &engine,
            &prompts,
            &rewarder,
            &p,
        )?;
        let (m, rec) = learner.update(model, None, &got.groups, &dev)?;
        model = m;
        report.rollouts += got.rollouts;
        report
            .accuracy
            .push(rec.get("accuracy").unwrap_or(f64::NAN));
        println!(
            "step {step:>3}  accuracy {:.3}  loss {:+.4}  mixed groups {}/{}  effective so far {:.2}",
            report.accuracy[step as usize],
            rec.get("loss").unwrap_or(f64::NAN),
            got.mixed_groups,
            got.groups.len(),
            sampler.accounting().effective_ratio(),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(report)
}

fn main() -> anyhow::Result<()> {
    let steps = std::env::args().nth(1).map_or(Ok(40), |s| s.parse())?;
    let r = run(60, steps)?;
    let n = r.accuracy.len().min(5);
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    println!(
        "accuracy of the first {n} steps {:.3}, last {n} {:.3}; {} rollouts",
        mean(&r.accuracy[..n]),
        mean(&r.accuracy[r.accuracy.len() - n..]),
        r.rollouts
    );
    Ok(())
}

#[test]
fn a_short_run_trains_exactly_the_rollouts_dps_asked_for() {
    let r = run(10, 3).unwrap();
    // DPS trains on what it predicts without screening: B × k rollouts per step.
    assert_eq!(r.rollouts, 3 * 16 * 8);
    assert!(r.accuracy.iter().all(|a| (0.0..=1.0).contains(a)));
}
