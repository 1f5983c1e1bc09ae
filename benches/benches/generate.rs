//! Generation throughput of [`LocalEngine`]: batch 64 × 64 new tokens on a tiny Qwen2 over a
//! character vocabulary, Flex backend.

use std::hint::black_box;

use burn::tensor::Device;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rlft_models::{CausalLm, CharTokenizer, qwen2};
use rlft_rollout::{LocalConfig, LocalEngine, Prompt, RolloutEngine, SamplingParams};

fn generate(c: &mut Criterion) {
    let device = Device::flex();
    let chars = CharTokenizer::ascii();
    let model = CausalLm::new(&qwen2::tiny(chars.vocab_size()), &device);
    let engine = LocalEngine::new(model, None, LocalConfig::default()).expect("valid config");
    // 64 prompts of 8–15 tokens; EOS ignored so every row makes exactly 64 tokens.
    let prompts: Vec<Prompt> = (0..64u32)
        .map(|i| Prompt::Tokens((0..8 + i % 8).map(|t| 10 + (i * 7 + t) % 80).collect()))
        .collect();
    let params = SamplingParams {
        max_new_tokens: 64,
        ignore_eos: true,
        seed: Some(0),
        ..Default::default()
    };
    let mut group = c.benchmark_group("local_generate");
    group.sample_size(10);
    group.throughput(Throughput::Elements(64 * 64));
    group.bench_function("tiny_qwen2_flex_64x64", |b| {
        b.iter(|| {
            black_box(
                engine
                    .generate(black_box(&prompts), &params)
                    .expect("generates"),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, generate);
criterion_main!(benches);
