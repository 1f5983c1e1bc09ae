//! A custom RL trainer in about 100 lines, assembled from rlft's parts rather than
//! `OnlineTrainer`: DPS picks the prompts, a local engine samples, a verifier written here
//! scores, and Dr.GRPO (advantage r − mean, loss Σ/(B·L)) updates a tiny model.
//!
//! `cargo run --release -p rlft-examples --example custom_trainer -- [GRPO_STEPS]`

use burn::{module::Module, tensor::Device};
use rand::{SeedableRng, rngs::StdRng};
use rlft_core::{AdvantageEstimator, LossAggregation, PolicyLossConfig};
use rlft_models::{CausalLm, CharTokenizer, ChatTokenizer, qwen2};
use rlft_rollout::{LocalConfig, LocalEngine, SamplingParams};
use rlft_samplers::{BatchShape, Dps, DpsConfig, PromptSampler};
use rlft_tasks::{Reason, TaskError, TaskItem, Verdict, Verifier};
use rlft_trainer::{Learner, LearnerConfig, OptimConfig, SftConfig, SftExample, SingleTurn};
use rlft_trainer::{VerifierRewarder, collect_step, sft_train};

/// The sum's three digits, least-significant first: "52" → "250".
fn reversed(answer: &str) -> String {
    format!("{answer:0>3}").chars().rev().collect()
}

/// The user's verifier: the completion must be the reversed sum.
struct ReversedSum;

impl Verifier for ReversedSum {
    fn verify(&self, item: &TaskItem, completion: &str) -> Result<Verdict, TaskError> {
        let (want, got) = (reversed(&item.answer), completion.trim().to_string());
        Ok(match got == want {
            true => Verdict::correct(got),
            false => {
                Verdict::wrong(Some(got.clone()), Reason::Mismatch { expected: want, found: got })
            }
        })
    }
}

/// Warm-starts with `sft_steps` of SFT, then runs `steps` GRPO steps of 16 prompts × 8
/// completions. Returns the rollouts spent and each step's training accuracy.
pub fn run(sft_steps: usize, steps: usize) -> anyhow::Result<(usize, Vec<f64>)> {
    let dev = Device::flex().autodiff();
    dev.seed(0);
    let items: Vec<TaskItem> = (0..1000u32)
        .map(|i| {
            let (a, b) = ((i * 37 + 11) % 100, (i * 91 + 3) % 100);
            TaskItem::new(format!("q{i}"), format!("{a:02}+{b:02}="), (a + b).to_string())
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("rlft-example-{}", std::process::id()));
    CharTokenizer::new("0123456789+=").save(&dir)?;
    let tok = ChatTokenizer::from_dir(&dir)?;
    let _ = std::fs::remove_dir_all(&dir);
    let eos = tok.eos_token_id().expect("char tokenizer has EOS");
    let encode = |s: &str| tok.encode(s, false);
    let prompts: Vec<Vec<u32>> =
        items.iter().map(|it| encode(&it.prompt)).collect::<Result<_, _>>()?;
    let mut cfg = qwen2::tiny(tok.vocab_size());
    (cfg.hidden_size, cfg.num_hidden_layers, cfg.eos_token_ids) = (96, 3, vec![eos]);
    let model = CausalLm::new(&cfg, &dev).init_normal(0.02);

    // 1. SFT warm start on the gold answers.
    let mut examples = Vec::new();
    for (it, p) in items.iter().zip(&prompts).cycle().take(sft_steps * 64) {
        let completion_ids = [encode(&reversed(&it.answer))?, vec![eos]].concat();
        examples.push(SftExample {
            prompt_ids: p.clone(),
            completion_ids,
            ..SftExample::default()
        });
    }
    let optim = |lr| OptimConfig { lr, weight_decay: 0.0, ..OptimConfig::default() };
    let sft = SftConfig { batch_size: 64, optim: optim(1e-3), pad_id: eos, ..SftConfig::default() };
    let mut model = sft_train(model, &examples, &sft, &dev, |_| {})?;

    // 2. GRPO from swapped parts: DPS, the verifier above, Dr.GRPO advantages and loss.
    let shape = BatchShape { num_prompts: items.len(), batch_size: 16, group_size: 8 };
    let mut sampler = Dps::new(shape, &DpsConfig::default())?;
    let rewarder = VerifierRewarder::new(ReversedSum, items.clone());
    let source = SingleTurn::new(prompts, &rewarder);
    let mut learner = Learner::new(
        LearnerConfig {
            advantage: AdvantageEstimator::DrGrpo,
            loss: PolicyLossConfig {
                aggregation: LossAggregation::DrGrpo { max_completion_length: 5 },
                ..PolicyLossConfig::default()
            },
            optim: optim(3e-4),
            micro_batch_size: 128,
            pad_id: eos,
            ..LearnerConfig::default()
        },
        steps,
    )?;
    let (mut rollouts, mut accuracy) = (0, Vec::new());
    for step in 0..steps as u64 {
        let engine = LocalEngine::new(model.valid(), Some(tok.clone()), LocalConfig::default())?;
        let params = SamplingParams { max_new_tokens: 5, seed: Some(step), ..Default::default() };
        let mut rng = StdRng::seed_from_u64(step);
        let got = collect_step(step, &mut sampler, &mut rng, &engine, &source, &params)?;
        let (m, rec) = learner.update(model, None, &got.groups, &dev)?;
        model = m;
        rollouts += got.rollouts;
        accuracy.push(rec.get("accuracy").unwrap_or(f64::NAN));
        println!(
            "step {step:>3}  accuracy {:.3}  loss {:+.4}  mixed groups {}/{}  effective so far {:.2}",
            accuracy[step as usize],
            rec.get("loss").unwrap_or(f64::NAN),
            got.mixed_groups,
            got.groups.len(),
            sampler.accounting().effective_ratio(),
        );
    }
    Ok((rollouts, accuracy))
}

fn main() -> anyhow::Result<()> {
    let steps = std::env::args().nth(1).map_or(Ok(40), |s| s.parse())?;
    let (rollouts, acc) = run(60, steps)?;
    let n = acc.len().min(5);
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    let (first, last) = (mean(&acc[..n]), mean(&acc[acc.len() - n..]));
    println!("accuracy of the first {n} steps {first:.3}, last {n} {last:.3}; {rollouts} rollouts");
    Ok(())
}

#[test]
fn a_short_run_trains_exactly_the_rollouts_dps_asked_for() {
    let (rollouts, acc) = run(10, 3).unwrap();
    // DPS trains on what it predicts, without screening: B × k rollouts per step.
    assert_eq!(rollouts, 3 * 16 * 8);
    assert!(acc.iter().all(|a| (0.0..=1.0).contains(a)));
}
