//! Spec drift.md §8, "Loss": the weighted per-sequence NLL that DRIFT rows are trained with
//! (rlft-core's `WeightedNll` on the batches `SftTrainer` builds), as property tests.

// Parallel arrays are compared index by index.
#![allow(clippy::needless_range_loop)]

use burn::tensor::{Device, Tensor, TensorData};
use proptest::prelude::*;
use rlft_core::{Objective, ObjectiveInput, WeightedNll};
use rlft_trainer::{SftExample, sft_batch};

/// An example: completion length, loss mask (0 = feedback or template token), token log-probs.
#[derive(Debug, Clone)]
struct Ex {
    mask: Vec<f32>,
    logps: Vec<f32>,
}

fn ex() -> impl Strategy<Value = Ex> {
    (1usize..7).prop_flat_map(|n| {
        (
            prop::collection::vec(prop::bool::weighted(0.7), n),
            prop::collection::vec(-5.0f32..-0.01, n),
        )
            .prop_map(|(m, logps)| {
                let mut mask: Vec<f32> = m.iter().map(|&b| f32::from(u8::from(b))).collect();
                mask[0] = 1.0; // every example trains at least one token
                Ex { mask, logps }
            })
    })
}

/// Loss and d loss / d logps (per example, over its own completion tokens).
fn loss_and_grad(exs: &[Ex], weights: &[f32]) -> (f64, Vec<Vec<f32>>) {
    loss_and_grad_with(WeightedNll::default(), exs, weights)
}

fn loss_and_grad_with(objective: WeightedNll, exs: &[Ex], weights: &[f32]) -> (f64, Vec<Vec<f32>>) {
    let dev = Device::flex().autodiff();
    let examples: Vec<SftExample> = exs
        .iter()
        .zip(weights)
        .map(|(e, &w)| SftExample {
            prompt_ids: vec![1, 2],
            completion_ids: vec![3; e.mask.len()],
            loss_mask: e.mask.clone(),
            weight: w,
        })
        .collect();
    let rows: Vec<&SftExample> = examples.iter().collect();
    let batch = sft_batch(&rows, 0).unwrap();
    let t = batch.completion_len;
    let mut lp = vec![0.0f32; exs.len() * t];
    for (i, e) in exs.iter().enumerate() {
        lp[i * t..i * t + e.logps.len()].copy_from_slice(&e.logps);
    }
    let logps = Tensor::<2>::from_data(TensorData::new(lp, [exs.len(), t]), &dev).require_grad();
    let tensors = batch.to_tensors(&dev).unwrap();
    let out = objective
        .compute(ObjectiveInput::new(logps.clone(), &tensors))
        .unwrap();
    let loss = f64::from(out.loss.clone().into_scalar::<f32>());
    let g: Vec<f32> = logps
        .grad(&out.loss.backward())
        .unwrap()
        .into_data()
        .try_to_vec()
        .unwrap();
    let grads = exs
        .iter()
        .enumerate()
        .map(|(i, e)| g[i * t..i * t + e.mask.len()].to_vec())
        .collect();
    (loss, grads)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-5 * a.abs().max(b.abs()).max(1.0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// All weights 1: plain per-sequence-mean SFT, mean_i (Σ_t m·(−log p) / M_i).
    #[test]
    fn unit_weights_are_plain_sequence_mean_sft(exs in prop::collection::vec(ex(), 1..6)) {
        let (loss, _) = loss_and_grad(&exs, &vec![1.0; exs.len()]);
        let want = exs
            .iter()
            .map(|e| {
                let m: f64 = e.mask.iter().map(|&x| f64::from(x)).sum();
                e.mask.iter().zip(&e.logps).map(|(&m, &l)| -f64::from(m * l)).sum::<f64>() / m
            })
            .sum::<f64>()
            / exs.len() as f64;
        prop_assert!(close(loss, want), "{loss} vs {want}");
    }

    /// Global normalisation (DRIFT's `BATCH_WEIGHT_NORMAL`): Σ_batch w·ℓ / Σ_batch w.
    #[test]
    fn global_normalisation_divides_by_the_weight_sum(
        exs in prop::collection::vec(ex(), 1..6),
        w in prop::collection::vec(0.1f32..3.0, 6),
    ) {
        let n = exs.len();
        let nll = WeightedNll { normalize_weights: true, ..WeightedNll::default() };
        let (loss, _) = loss_and_grad_with(nll, &exs, &w[..n]);
        let seq: Vec<f64> = exs
            .iter()
            .map(|e| {
                let m: f64 = e.mask.iter().map(|&x| f64::from(x)).sum();
                e.mask.iter().zip(&e.logps).map(|(&m, &l)| -f64::from(m * l)).sum::<f64>() / m
            })
            .collect();
        let ws: f64 = w[..n].iter().map(|&x| f64::from(x)).sum();
        let want = seq.iter().zip(&w).map(|(l, &x)| l * f64::from(x)).sum::<f64>() / ws;
        prop_assert!(close(loss, want), "{loss} vs {want}");
    }

    /// Doubling example j's weight has the gradient of adding a duplicate of it, apart from
    /// the 1/N batch mean: N·∇L(w_j = 2) = (N+1)·∇L(with a copy of j).
    #[test]
    fn doubling_a_weight_equals_a_duplicate(
        exs in prop::collection::vec(ex(), 1..6),
        pick in any::<prop::sample::Index>(),
    ) {
        let n = exs.len();
        let j = pick.index(n);
        let mut w = vec![1.0; n];
        w[j] = 2.0;
        let (l2, g2) = loss_and_grad(&exs, &w);
        let mut dup = exs.clone();
        dup.push(exs[j].clone());
        let (ld, gd) = loss_and_grad(&dup, &vec![1.0; n + 1]);
        prop_assert!(close(l2 * n as f64, ld * (n + 1) as f64));
        for i in 0..n {
            for t in 0..exs[i].mask.len() {
                let want = gd[i][t] + if i == j { gd[n][t] } else { 0.0 };
                prop_assert!(close(
                    f64::from(g2[i][t]) * n as f64,
                    f64::from(want) * (n + 1) as f64
                ));
            }
        }
    }

    /// Tokens with loss mask 0 (prompt, feedback, template) get exactly zero gradient;
    /// trained tokens get −w_i / (N·M_i).
    #[test]
    fn untrained_tokens_have_zero_gradient(
        exs in prop::collection::vec(ex(), 1..6),
        w in prop::collection::vec(0.0f32..3.0, 6),
    ) {
        let n = exs.len();
        let (_, g) = loss_and_grad(&exs, &w[..n]);
        for i in 0..n {
            let m: f32 = exs[i].mask.iter().sum();
            for t in 0..exs[i].mask.len() {
                if exs[i].mask[t] == 0.0 {
                    prop_assert_eq!(g[i][t], 0.0);
                } else {
                    let want = -w[i] / (n as f32 * m);
                    prop_assert!((g[i][t] - want).abs() <= 1e-6 * want.abs().max(1.0));
                }
            }
        }
    }
}
