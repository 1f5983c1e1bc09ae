//! Property tests of the objectives and estimators (issue: rlft-core, point 5).

// Parallel arrays are compared index by index.
#![allow(clippy::needless_range_loop)]

use burn::tensor::{Device, Tensor, TensorData};
use proptest::prelude::*;
use rlft_core::{
    AdvantageEstimator, ImportanceLevel, KlEstimator, LossAggregation, Objective, ObjectiveInput,
    PolicyLossConfig, PolicyTensors, RewardScale, kl_divergence,
};

fn dev() -> Device {
    Device::flex().autodiff()
}

fn mat(v: &[f32], b: usize, t: usize) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v.to_vec(), [b, t]), &dev())
}

fn vec1(v: &[f32]) -> Tensor<1> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &dev())
}

fn read(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

fn aggregations() -> Vec<LossAggregation> {
    vec![
        LossAggregation::Grpo,
        LossAggregation::Bnpo,
        LossAggregation::DrGrpo {
            max_completion_length: 9,
        },
        LossAggregation::Dapo,
        LossAggregation::Luspo,
        LossAggregation::TokenMean,
        LossAggregation::TokenSum,
        LossAggregation::SeqMeanTokenMean,
        LossAggregation::SeqMeanTokenSum,
        LossAggregation::SeqMeanTokenSumNorm { horizon: None },
    ]
}

/// A random batch: B rows × T tokens, log-probs in [-6, -0.01], old log-probs perturbed,
/// ragged masks including possibly empty rows.
#[derive(Debug, Clone)]
struct Case {
    b: usize,
    t: usize,
    logps: Vec<f32>,
    old: Vec<f32>,
    reference: Vec<f32>,
    mask: Vec<f32>,
    adv: Vec<f32>,
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..6, 1usize..7).prop_flat_map(|(b, t)| {
        (
            prop::collection::vec(-6.0f32..-0.01, b * t),
            prop::collection::vec(-0.5f32..0.5, b * t),
            prop::collection::vec(-1.0f32..1.0, b * t),
            prop::collection::vec(0usize..=t, b),
            prop::collection::vec(-2.0f32..2.0, b),
        )
            .prop_map(move |(logps, noise, rnoise, lens, adv)| {
                let old = logps.iter().zip(&noise).map(|(l, n)| l + n).collect();
                let reference = logps.iter().zip(&rnoise).map(|(l, n)| l + n).collect();
                let mask = (0..b * t)
                    .map(|i| if i % t < lens[i / t] { 1.0 } else { 0.0 })
                    .collect();
                Case {
                    b,
                    t,
                    logps,
                    old,
                    reference,
                    mask,
                    adv,
                }
            })
    })
}

fn config(agg: LossAggregation, beta: f32, level: ImportanceLevel) -> PolicyLossConfig {
    PolicyLossConfig {
        epsilon_high: 0.28,
        importance_level: level,
        aggregation: agg,
        beta,
        dual_clip: Some(3.0),
        ..PolicyLossConfig::default()
    }
}

/// Loss and d loss / d logps.
fn loss_and_grad(cfg: &PolicyLossConfig, c: &Case) -> (f32, Vec<f32>) {
    let logps = mat(&c.logps, c.b, c.t).require_grad();
    let batch = PolicyTensors::new(
        mat(&c.mask, c.b, c.t),
        vec1(&c.adv),
        Some(mat(&c.old, c.b, c.t)),
        Some(mat(&c.reference, c.b, c.t)),
    )
    .unwrap();
    let out = cfg
        .clone()
        .init()
        .unwrap()
        .compute(ObjectiveInput::new(logps.clone(), &batch))
        .unwrap();
    let loss: f32 = out.loss.clone().into_scalar();
    let grad = logps
        .grad(&out.loss.backward())
        .map(read)
        .unwrap_or_else(|| vec![0.0; c.b * c.t]);
    (loss, grad)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn zero_advantage_gives_zero_policy_gradient(mut c in case(), a in 0usize..10) {
        c.adv.iter_mut().for_each(|x| *x = 0.0);
        let agg = aggregations()[a].clone();
        for level in [ImportanceLevel::Token, ImportanceLevel::Sequence] {
            let (loss, grad) = loss_and_grad(&config(agg.clone(), 0.0, level), &c);
            prop_assert_eq!(loss, 0.0);
            prop_assert!(grad.iter().all(|g| *g == 0.0), "{:?}", grad);
        }
    }

    #[test]
    fn unclipped_gradient_is_minus_a_rho_over_n(mut c in case(), scale in 0.0f32..0.15) {
        // Ratios inside [1 - 0.2, 1 + 0.28]: |log ρ| ≤ 0.15 keeps every token unclipped.
        for (i, o) in c.old.iter_mut().enumerate() {
            let s = if i % 2 == 0 { scale } else { -scale };
            *o = c.logps[i] - s;
        }
        let n: f32 = c.mask.iter().sum::<f32>().max(1.0);
        let (_, grad) = loss_and_grad(&config(LossAggregation::Dapo, 0.0, ImportanceLevel::Token), &c);
        for i in 0..c.b * c.t {
            let rho = (c.logps[i] - c.old[i]).exp();
            let expected = -c.adv[i / c.t] * rho / n * c.mask[i];
            prop_assert!((grad[i] - expected).abs() <= 1e-6 * (1.0 + expected.abs()), "{} vs {}", grad[i], expected);
        }
    }

    #[test]
    fn k3_is_nonnegative_and_zero_only_at_equality(
        a in prop::collection::vec(-20.0f32..-1e-3, 1..40),
        d in prop::collection::vec(prop_oneof![Just(0.0f32), -3.0f32..3.0, -1e-4f32..1e-4], 1..40),
    ) {
        let n = a.len().min(d.len());
        let l: Vec<f32> = a[..n].to_vec();
        let r: Vec<f32> = (0..n).map(|i| l[i] + d[i]).collect();
        for est in [KlEstimator::K3, KlEstimator::K3Clamped] {
            let k = read(kl_divergence(mat(&l, 1, n), mat(&r, 1, n), est));
            for i in 0..n {
                prop_assert!(k[i] >= 0.0, "k3 {} at l={} r={}", k[i], l[i], r[i]);
                prop_assert_eq!(k[i] == 0.0, l[i] == r[i], "k3 {} at l={} r={}", k[i], l[i], r[i]);
            }
        }
    }

    #[test]
    fn group_normalised_advantages_sum_to_zero(
        k in 2usize..9,
        groups in 1usize..6,
        seed in prop::collection::vec(prop_oneof![Just(0.0f32), Just(1.0f32), -5.0f32..5.0], 64),
    ) {
        let rewards: Vec<f32> = seed.iter().cycle().take(k * groups).copied().collect();
        for est in [
            AdvantageEstimator::Grpo { scale: RewardScale::Group, epsilon: 1e-4 },
            AdvantageEstimator::Grpo { scale: RewardScale::Batch, epsilon: 1e-4 },
            AdvantageEstimator::DrGrpo,
            AdvantageEstimator::Rloo,
        ] {
            let a = est.compute(&rewards, k).unwrap();
            for g in a.values.chunks(k) {
                let s: f32 = g.iter().sum();
                let m = g.iter().fold(1.0f32, |m, x| m.max(x.abs()));
                prop_assert!(s.abs() <= 1e-5 * m * k as f32, "{:?}: {:?}", est, g);
            }
        }
    }

    #[test]
    fn masked_tokens_never_change_loss_or_gradient(c in case(), a in 0usize..10, junk in -50.0f32..50.0) {
        let agg = aggregations()[a].clone();
        let mut d = c.clone();
        for i in 0..c.b * c.t {
            if c.mask[i] == 0.0 {
                d.logps[i] = junk.min(-0.01);
                d.old[i] = junk;
                d.reference[i] = -junk;
            }
        }
        for level in [ImportanceLevel::Token, ImportanceLevel::Sequence] {
            let cfg = config(agg.clone(), 0.04, level);
            let (l1, g1) = loss_and_grad(&cfg, &c);
            let (l2, g2) = loss_and_grad(&cfg, &d);
            prop_assert!((l1 - l2).abs() <= 1e-6 * (1.0 + l1.abs()), "{} vs {}", l1, l2);
            for i in 0..c.b * c.t {
                if c.mask[i] == 0.0 {
                    prop_assert_eq!(g1[i], 0.0);
                    prop_assert_eq!(g2[i], 0.0);
                } else {
                    prop_assert!((g1[i] - g2[i]).abs() <= 1e-6 * (1.0 + g1[i].abs()));
                }
            }
        }
    }

    #[test]
    fn permuting_rows_leaves_loss_unchanged(c in case(), a in 0usize..10, rot in 1usize..6) {
        let agg = aggregations()[a].clone();
        let perm: Vec<usize> = (0..c.b).map(|i| (i + rot) % c.b).collect();
        let take = |v: &[f32]| -> Vec<f32> {
            perm.iter().flat_map(|&r| v[r * c.t..(r + 1) * c.t].to_vec()).collect()
        };
        let p = Case {
            logps: take(&c.logps),
            old: take(&c.old),
            reference: take(&c.reference),
            mask: take(&c.mask),
            adv: perm.iter().map(|&r| c.adv[r]).collect(),
            ..c.clone()
        };
        for level in [ImportanceLevel::Token, ImportanceLevel::Sequence] {
            let cfg = config(agg.clone(), 0.04, level);
            let (l1, _) = loss_and_grad(&cfg, &c);
            let (l2, _) = loss_and_grad(&cfg, &p);
            prop_assert!((l1 - l2).abs() <= 1e-5 * (1.0 + l1.abs()), "{} vs {}", l1, l2);
        }
    }
}
