//! Forward + backward throughput (tokens/s) of the scoring path used in RL training
//! (`token_log_probs(..).sum().backward()`), on Flex, batch 8 × 256 tokens, for a tiny
//! config and a ~50M-parameter Qwen2-shaped config.
//!
//! Run: `cargo bench -p rlft-benches --bench model_forward`

use burn::tensor::{Device, Int, Tensor, TensorData};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rlft_models::{CausalLm, ModelConfig, qwen2};
use std::hint::black_box;

const BATCH: usize = 8;
const SEQ: usize = 256;

/// Qwen2-shaped, 10 layers of width 512, vocabulary 32768, tied embeddings: ~48M parameters.
fn mid_50m() -> ModelConfig {
    ModelConfig {
        hidden_size: 512,
        intermediate_size: 1536,
        num_hidden_layers: 10,
        num_attention_heads: 8,
        num_key_value_heads: 4,
        head_dim: 64,
        ..qwen2::tiny(32768)
    }
}

fn bench(c: &mut Criterion) {
    let device = Device::flex().autodiff();
    let mut group = c.benchmark_group("forward_backward");
    group.sample_size(10);
    group.throughput(Throughput::Elements((BATCH * SEQ) as u64));
    for (name, config) in [("tiny", qwen2::tiny(256)), ("50m", mid_50m())] {
        let model = CausalLm::new(&config, &device);
        let vocab = config.vocab_size as i64;
        let ids: Vec<i64> = (0..BATCH * SEQ)
            .map(|i| (i as i64 * 7919) % vocab)
            .collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [BATCH, SEQ]), &device);
        let mask = Tensor::<2, Int>::ones([BATCH, SEQ], &device);
        group.bench_function(BenchmarkId::new(name, format!("{BATCH}x{SEQ}")), |b| {
            b.iter(|| {
                let lp =
                    model.token_log_probs(black_box(ids.clone()), mask.clone(), ids.clone(), 1.0);
                let grads = lp.sum().backward();
                black_box(grads);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
