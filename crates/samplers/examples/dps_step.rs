//! Time DPS steps at a given N, for peak-RSS measurement with `/usr/bin/time -v`.
//!
//! `cargo run --release -p rlft-samplers --example dps_step -- 10000000 20`
//!
//! Builds DPS (λ = 0.7, flat prior, full pool, B = 256, k = 8), runs 30 warm-up steps with
//! pseudo-random outcomes (so most prompts are tied at 1/3 and a few hundred scores are
//! distinct, as in a real run), then times `steps` steps of observe 256 + update all + score +
//! select. With `DENSE=1` every prompt is materialised first (the worst case); `THREADS=n` sets
//! the worker count.

use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rlft_samplers::{BatchShape, Dps, DpsConfig, Outcome, PromptSampler};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(10_000_000), |s| s.parse())?;
    let steps: u64 = args.next().map_or(Ok(20), |s| s.parse())?;
    let shape = BatchShape {
        num_prompts: n,
        batch_size: 256,
        group_size: 8,
    };
    let t0 = Instant::now();
    let mut dps = Dps::new(
        shape,
        &DpsConfig {
            threads: std::env::var("THREADS").ok().and_then(|s| s.parse().ok()),
            ..DpsConfig::default()
        },
    )?;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
    let outcome =
        |p: usize, t: u64| Outcome::new(p, ((p as u64 * 2_654_435_761 + t) % 9) as u32, 8);
    let mut sel = dps.select(0, &mut rng)?;
    println!("build + first select: {:.3} s", t0.elapsed().as_secs_f64());
    for t in 1..=30 {
        let outs: Vec<Outcome> = sel.prompts().iter().map(|&p| outcome(p, t)).collect();
        dps.observe(&outs)?;
        sel = dps.select(t, &mut rng)?;
    }
    if std::env::var("DENSE").is_ok_and(|v| v == "1") {
        dps.materialise_all();
    }
    let t1 = Instant::now();
    for t in 31..31 + steps {
        let outs: Vec<Outcome> = sel.prompts().iter().map(|&p| outcome(p, t)).collect();
        dps.observe(&outs)?;
        sel = dps.select(t, &mut rng)?;
    }
    let per = t1.elapsed().as_secs_f64() / steps as f64;
    println!(
        "N = {n}: {per:.4} s per step (mean of {steps}); materialised prompts: {}",
        dps.num_materialised()
    );
    Ok(())
}
