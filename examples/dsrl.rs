//! DSRL (Dual Space RL) as a custom trainer from public parts: NSR-PreRL with marginal
//! scoring (the prompt replaced by one context token) for the first S steps, then GRPO, with
//! the reference synced to the policy at S. Optimiser state, LR, data order and the step
//! counter carry across the switch.
//!
//! `cargo run --release -p rlft-examples --example dsrl -- [STEPS] [S]`

use burn::{module::Module, tensor::Device};
use rand::{SeedableRng, rngs::StdRng};
use rlft_core::{AdvantageEstimator, LossAggregation, PolicyLossConfig};
use rlft_models::{CausalLm, CharTokenizer, ChatTokenizer, qwen2};
use rlft_rollout::{LocalConfig, LocalEngine, SamplingParams};
use rlft_samplers::{BatchShape, Uniform};
use rlft_tasks::{AnswerSource, ExactMatch, ExactMatchConfig, TaskItem};
use rlft_trainer::{Learner, LearnerConfig, Marginal, OptimConfig, Phase, SampleMask, Term};
use rlft_trainer::{SftConfig, SftExample, SingleTurn, VerifierRewarder, collect_step, sft_train};

/// SFT warm start, then `steps` DSRL steps of 16 prompts × 8 completions, switching at `s`.
/// Returns per step: (coef of NSR-PreRL, coef of GRPO, reference synced, accuracy).
pub fn run(sft_steps: usize, steps: usize, s: usize) -> anyhow::Result<Vec<(f64, f64, bool, f64)>> {
    let dev = Device::flex().autodiff();
    dev.seed(0);
    // The (a+b) mod 10 task, answered as one digit.
    let item = |i: u32| {
        TaskItem::new(
            i.to_string(),
            format!("{}+{}=", i / 10, i % 10),
            ((i / 10 + i % 10) % 10).to_string(),
        )
    };
    let items: Vec<TaskItem> = (0..100).map(item).collect();
    let dir = std::env::temp_dir().join(format!("rlft-dsrl-{}", std::process::id()));
    CharTokenizer::new("0123456789+=").save(&dir)?;
    let tok = ChatTokenizer::from_dir(&dir)?;
    let _ = std::fs::remove_dir_all(&dir);
    let eos = tok.eos_token_id().expect("char tokenizer has EOS");
    let prompts: Vec<Vec<u32>> =
        items.iter().map(|it| tok.encode(&it.prompt, false)).collect::<Result<_, _>>()?;
    let mut cfg = qwen2::tiny(tok.vocab_size());
    (cfg.hidden_size, cfg.eos_token_ids) = (96, vec![eos]);
    let model = CausalLm::new(&cfg, &dev).init_normal(0.02);

    // 1. A short SFT warm start, so that groups are mixed.
    let mut examples = Vec::new();
    for (it, p) in items.iter().zip(&prompts).cycle().take(sft_steps * 32) {
        let completion_ids = [tok.encode(&it.answer, false)?, vec![eos]].concat();
        examples.push(SftExample { prompt_ids: p.clone(), completion_ids, ..Default::default() });
    }
    let optim = |lr| OptimConfig { lr, weight_decay: 0.0, ..OptimConfig::default() };
    let sft = SftConfig { batch_size: 32, optim: optim(1e-2), pad_id: eos, ..SftConfig::default() };
    let mut model = sft_train(model, &examples, &sft, &dev, |_| {})?;

    // 2. Two phased terms on one learner (spec prerl.md §2).
    let pre_loss = PolicyLossConfig { dual_clip: Some(10.0), ..Default::default() };
    let pre_loss = PolicyLossConfig { aggregation: LossAggregation::TokenMean, ..pre_loss };
    // A = r − group mean (no std), marginal scoring of <|im_start|> + y, wrong answers only.
    let nsr_prerl = Term::new("nsr_prerl", AdvantageEstimator::DrGrpo, Box::new(pre_loss.init()?))
        .with_scorer(Box::new(Marginal::for_tokenizer(&tok)?))
        .with_sample_mask(SampleMask::Negative)
        .with_phase(Phase { until: Some(s), coef: 0.01, ..Phase::default() });
    let grpo_loss = Box::new(PolicyLossConfig::default().init()?);
    let grpo = Term::new("grpo", AdvantageEstimator::default(), grpo_loss)
        .with_phase(Phase { from: s, ..Phase::default() });
    let config = LearnerConfig {
        optim: OptimConfig { schedule: rlft_trainer::LrSchedule::Constant, ..optim(1e-3) },
        micro_batch_size: 128,
        pad_id: eos,
        sync_reference_at: vec![s],
        ..LearnerConfig::default()
    };
    let mut learner = Learner::with_terms(config, steps, vec![nsr_prerl, grpo])?;

    // 3. The loop: sample, score, sync the reference at S, update.
    let shape = BatchShape { num_prompts: items.len(), batch_size: 16, group_size: 8 };
    let mut sampler = Uniform::new(shape)?;
    let exact = ExactMatchConfig { sources: vec![AnswerSource::Whole], ..Default::default() };
    let rewarder = VerifierRewarder::new(ExactMatch::new(exact), items.clone());
    let source = SingleTurn::new(prompts, &rewarder);
    let mut reference: Option<CausalLm> = None;
    let mut rows = Vec::new();
    for step in 0..steps as u64 {
        let engine = LocalEngine::new(model.valid(), Some(tok.clone()), LocalConfig::default())?;
        let params = SamplingParams { max_new_tokens: 2, seed: Some(step), ..Default::default() };
        let mut rng = StdRng::seed_from_u64(step);
        let got = collect_step(step, &mut sampler, &mut rng, &engine, &source, &params)?;
        let synced = learner.reference_sync_due();
        if synced {
            reference = Some(model.clone()); // "reincarnation": reference ← current policy
        }
        let (m, rec) = learner.update(model, reference.as_ref(), &got.groups, &dev)?;
        model = m;
        let g = |k: &str| rec.get(k).unwrap_or(0.0);
        let (pre, rl, acc) = (g("coef/nsr_prerl"), g("coef/grpo"), g("accuracy"));
        println!(
            "step {step:>2}  coef nsr_prerl {pre:.2}  grpo {rl:.0}  accuracy {acc:.3}  synced {synced}"
        );
        rows.push((pre, rl, synced, acc));
    }
    Ok(rows)
}

fn main() -> anyhow::Result<()> {
    let arg = |i: usize, d: usize| std::env::args().nth(i).map_or(Ok(d), |s| s.parse());
    let rows = run(300, arg(1, 30)?, arg(2, 5)?)?;
    let mean = |r: &[(f64, f64, bool, f64)]| r.iter().map(|x| x.3).sum::<f64>() / r.len() as f64;
    println!(
        "accuracy: first 5 steps {:.3}, last 5 {:.3}",
        mean(&rows[..5]),
        mean(&rows[rows.len() - 5..])
    );
    Ok(())
}

#[test]
fn dsrl_runs_nsr_prerl_before_s_and_grpo_from_s() {
    for (t, &(pre, rl, synced, _)) in run(5, 7, 5).unwrap().iter().enumerate() {
        assert_eq!((pre, rl, synced), if t < 5 { (0.01, 0.0, false) } else { (0.0, 1.0, t == 5) });
    }
}
