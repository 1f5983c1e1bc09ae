//! One DPS step (observe 256 prompts, update all, score, select) at N = 1e5, 1e6, 1e7.
//!
//! `cargo bench -p rlft-benches --bench dps_step`
//!
//! - `dps_step/full`: the paper's setting (full-dataset pool, λ = 0.7, flat prior, B = 256,
//!   k = 8) after 30 warm-up steps, so scores follow the pattern DPS produces: nearly every
//!   prompt tied at 1/3, a few hundred distinct scores.
//! - `dps_step/dense`: the worst case, every prompt holding its own state
//!   ([`Dps::materialise_all`] after the warm-up), so each step streams all 96 bytes of every
//!   prompt.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rlft_samplers::{BatchShape, Dps, DpsConfig, Outcome, PromptSampler, Selection};

const B: usize = 256;

fn outcome(p: usize, t: u64) -> Outcome {
    Outcome::new(p, ((p as u64 * 2_654_435_761 + t) % 9) as u32, 8)
}

fn warmed(n: usize, dense: bool) -> (Dps, Xoshiro256PlusPlus, Selection, u64) {
    let shape = BatchShape {
        num_prompts: n,
        batch_size: B,
        group_size: 8,
    };
    let mut dps = Dps::new(shape, &DpsConfig::default()).expect("valid config");
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
    let mut sel = dps.select(0, &mut rng).expect("select");
    for t in 1..=30 {
        let outs: Vec<Outcome> = sel.prompts().iter().map(|&p| outcome(p, t)).collect();
        dps.observe(&outs).expect("observe");
        sel = dps.select(t, &mut rng).expect("select");
    }
    if dense {
        dps.materialise_all();
    }
    (dps, rng, sel, 31)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("dps_step");
    group.sample_size(10);
    for (label, n) in [
        ("1e5", 100_000usize),
        ("1e6", 1_000_000),
        ("1e7", 10_000_000),
    ] {
        group.throughput(Throughput::Elements(n as u64));
        for dense in [false, true] {
            let (mut dps, mut rng, mut sel, mut t) = warmed(n, dense);
            let name = if dense { "dense" } else { "full" };
            group.bench_function(BenchmarkId::new(name, label), |b| {
                b.iter(|| {
                    let outs: Vec<Outcome> = sel.prompts().iter().map(|&p| outcome(p, t)).collect();
                    dps.observe(black_box(&outs)).expect("observe");
                    sel = dps.select(t, &mut rng).expect("select");
                    t += 1;
                    black_box(sel.prompts().len())
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
