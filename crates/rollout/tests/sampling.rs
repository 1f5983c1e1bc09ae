//! The logits processor against a naive oracle: distributions, exclusions and empirical
//! frequencies.

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rlft_rollout::{SamplingParams, TokenSampler};

/// The processed distribution, written the slow obvious way: softmax(z/T); drop p < min_p·max;
/// sort by (p desc, id asc); keep k; renormalise; keep while the mass before < top_p;
/// renormalise.
fn oracle(logits: &[f32], p: &SamplingParams) -> Vec<f64> {
    let t = f64::from(p.temperature);
    let z: Vec<f64> = logits.iter().map(|&x| f64::from(x) / t).collect();
    let max = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|x| (x - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    let probs: Vec<f64> = e.iter().map(|x| x / sum).collect();
    let pmax = probs.iter().cloned().fold(0.0, f64::max);
    let mut ids: Vec<usize> = (0..probs.len())
        .filter(|&i| probs[i] >= f64::from(p.min_p) * pmax)
        .collect();
    ids.sort_by(|&a, &b| probs[b].partial_cmp(&probs[a]).unwrap().then(a.cmp(&b)));
    if let Some(k) = p.top_k {
        ids.truncate(k);
    }
    let mass: f64 = ids.iter().map(|&i| probs[i]).sum();
    let mut kept = Vec::new();
    let mut before = 0.0;
    for &i in &ids {
        if before / mass < f64::from(p.top_p) {
            kept.push(i);
            before += probs[i];
        }
    }
    let mass: f64 = kept.iter().map(|&i| probs[i]).sum();
    let mut out = vec![0.0; probs.len()];
    for i in kept {
        out[i] = probs[i] / mass;
    }
    out
}

fn params() -> impl Strategy<Value = SamplingParams> {
    (
        0.2f32..2.0,
        prop::option::of(1usize..6),
        0.05f32..=1.0,
        prop_oneof![Just(0.0f32), 0.0f32..0.5],
    )
        .prop_map(|(temperature, top_k, top_p, min_p)| SamplingParams {
            temperature,
            top_k,
            top_p,
            min_p,
            ..Default::default()
        })
}

proptest! {
    #[test]
    fn distribution_matches_oracle_and_samples_stay_inside(
        logits in prop::collection::vec(-8.0f32..8.0, 2..30),
        p in params(),
        seed in any::<u64>(),
    ) {
        let s = TokenSampler::new(&p).unwrap();
        let dist = s.distribution(&logits).unwrap();
        let want = oracle(&logits, &p);
        for (a, b) in dist.iter().zip(&want) {
            prop_assert!((a - b).abs() < 1e-9, "{dist:?} vs {want:?}");
        }
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        for _ in 0..50 {
            let t = s.sample(&logits, &mut rng).unwrap().token as usize;
            prop_assert!(want[t] > 0.0, "sampled excluded token {t}");
        }
    }
}

/// Pearson's χ² of `counts` against `probs` (categories with p > 0) and its degrees of freedom.
fn chi_square(counts: &[u64], probs: &[f64], draws: u64) -> (f64, usize) {
    let mut chi = 0.0;
    let mut cats = 0usize;
    for (&c, &p) in counts.iter().zip(probs) {
        if p > 0.0 {
            let e = p * draws as f64;
            chi += (c as f64 - e).powi(2) / e;
            cats += 1;
        }
    }
    (chi, cats.saturating_sub(1))
}

#[test]
fn empirical_frequencies_match_the_processed_distribution() {
    let logits = [2.0f32, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0, -3.0];
    let configs = [
        SamplingParams {
            temperature: 1.0,
            ..Default::default()
        },
        SamplingParams {
            temperature: 0.6,
            top_k: Some(3),
            ..Default::default()
        },
        SamplingParams {
            temperature: 1.3,
            top_p: 0.8,
            ..Default::default()
        },
        SamplingParams {
            temperature: 1.0,
            min_p: 0.2,
            ..Default::default()
        },
        SamplingParams {
            temperature: 2.0,
            top_k: Some(6),
            top_p: 0.9,
            min_p: 0.05,
            ..Default::default()
        },
    ];
    let draws = 40_000u64;
    for (c, p) in configs.iter().enumerate() {
        let s = TokenSampler::new(p).unwrap();
        let want = oracle(&logits, p);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1000 + c as u64);
        let mut counts = vec![0u64; logits.len()];
        for _ in 0..draws {
            counts[s.sample(&logits, &mut rng).unwrap().token as usize] += 1;
        }
        for (i, &w) in want.iter().enumerate() {
            if w == 0.0 {
                assert_eq!(counts[i], 0, "config {c}: excluded token {i} drawn");
            }
        }
        let (chi, df) = chi_square(&counts, &want, draws);
        // The 99.99th percentile of χ²(df) is below df + 8·sqrt(2·df) + 8 for df ≤ 7.
        let bound = df as f64 + 8.0 * (2.0 * df as f64).sqrt() + 8.0;
        assert!(
            chi < bound,
            "config {c}: χ² = {chi:.1} over {df} dof (bound {bound:.1}); counts {counts:?}, want {want:?}"
        );
    }
}

#[test]
fn a_wrong_distribution_fails_the_chi_square_bound() {
    // The same check, fed samples from temperature 1.0 while expecting temperature 0.6: the
    // bound must reject it, or the test above could not fail.
    let logits = [2.0f32, 1.5, 1.0, 0.5, 0.0];
    let s = TokenSampler::new(&SamplingParams::default()).unwrap();
    let want = oracle(
        &logits,
        &SamplingParams {
            temperature: 0.6,
            ..Default::default()
        },
    );
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
    let mut counts = vec![0u64; logits.len()];
    let draws = 40_000;
    for _ in 0..draws {
        counts[s.sample(&logits, &mut rng).unwrap().token as usize] += 1;
    }
    let (chi, df) = chi_square(&counts, &want, draws);
    assert!(chi > df as f64 + 8.0 * (2.0 * df as f64).sqrt() + 8.0);
}
