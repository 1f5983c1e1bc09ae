//! Policy objective forward + backward on Flex: 256 sequences × 1024 tokens, the size of a
//! typical GRPO micro-batch's loss computation (the model's own forward is benched elsewhere).

use std::hint::black_box;

use burn::tensor::{Device, Distribution, Tensor};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rlft_core::{
    ImportanceLevel, LossAggregation, Objective, ObjectiveInput, PolicyLossConfig, PolicyTensors,
};

const B: usize = 256;
const T: usize = 1024;

fn bench(c: &mut Criterion) {
    let device = Device::flex().autodiff();
    let logps = Tensor::<2>::random([B, T], Distribution::Uniform(-5.0, -0.01), &device);
    let noise = Tensor::<2>::random([B, T], Distribution::Normal(0.0, 0.2), &device);
    let old = logps.clone() + noise;
    let reference = logps.clone() - 0.05;
    let mask = Tensor::<2>::random([B, T], Distribution::Uniform(0.0, 1.0), &device)
        .lower_elem(0.9)
        .float();
    let adv = Tensor::<1>::random([B], Distribution::Normal(0.0, 1.0), &device);
    let batch = PolicyTensors::new(mask, adv, Some(old), Some(reference)).unwrap();

    let mut group = c.benchmark_group("objective_fwd_bwd_256x1024");
    group.sample_size(10);
    group.throughput(Throughput::Elements((B * T) as u64));
    let cases = [
        (
            "dapo_token",
            LossAggregation::Dapo,
            ImportanceLevel::Token,
            0.0,
        ),
        (
            "dapo_token_kl",
            LossAggregation::Dapo,
            ImportanceLevel::Token,
            0.04,
        ),
        (
            "grpo_sequence",
            LossAggregation::Grpo,
            ImportanceLevel::Sequence,
            0.0,
        ),
    ];
    for (name, aggregation, level, beta) in cases {
        let loss = PolicyLossConfig {
            aggregation,
            importance_level: level,
            beta,
            epsilon_high: 0.28,
            ..PolicyLossConfig::default()
        }
        .init()
        .unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                let x = logps.clone().detach().require_grad();
                let out = loss
                    .compute(ObjectiveInput::new(x.clone(), &batch))
                    .unwrap();
                let g = x.grad(&out.loss.backward()).unwrap();
                // Read back one value so the (possibly lazy) backend finishes the work.
                black_box(g.slice([0..1, 0..1]).into_scalar::<f32>())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
