//! Spec drift.md §8: every property of the returns and weights as a property test, plus the
//! spec's worked examples (§1, §2.2) and the odd rows of §7.

use std::path::Path;

use proptest::prelude::*;
use rand::{SeedableRng, rngs::StdRng};
use rlft_drift::{
    DriftRow, FilterOrder, ReturnConfig, WeightConfig, WeightMode, group_weights, weigh,
};

fn returns(max_len: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(-0.5f64..=1.0, 1..=max_len)
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn weights_sum_to_k_and_are_positive(r in returns(32), beta in 0.05f64..10.0) {
        let w = group_weights(&r, beta).unwrap();
        let k = r.len() as f64;
        prop_assert!(close(w.iter().sum::<f64>(), k, 1e-9));
        // Returns lie in [−0.5, 1], so with β ≥ 0.05 nothing underflows.
        prop_assert!(w.iter().all(|&x| x > 0.0));
    }

    #[test]
    fn shift_invariance(r in returns(16), beta in 0.05f64..10.0, c in -100.0f64..100.0) {
        let w = group_weights(&r, beta).unwrap();
        for shift in [c, 1e6, -1e6] {
            let shifted: Vec<f64> = r.iter().map(|x| x + shift).collect();
            let v = group_weights(&shifted, beta).unwrap();
            for (a, b) in w.iter().zip(&v) {
                // R + 1e6 loses the low bits of R in f64; the tolerance covers that rounding.
                let tol = if shift.abs() > 1e3 { 1e-6 } else { 1e-9 };
                prop_assert!((a - b).abs() <= tol * a.max(1.0), "{a} vs {b} at shift {shift}");
            }
        }
    }

    #[test]
    fn scale_coupling(r in returns(16), beta in 0.05f64..10.0, a in 0.01f64..100.0) {
        let w = group_weights(&r, beta).unwrap();
        let scaled: Vec<f64> = r.iter().map(|x| a * x).collect();
        let v = group_weights(&scaled, a * beta).unwrap();
        for (x, y) in w.iter().zip(&v) {
            prop_assert!((x - y).abs() <= 1e-9 * x.max(1.0));
        }
    }

    #[test]
    fn monotone_with_exact_ratios(r in returns(16), beta in 0.05f64..10.0) {
        let w = group_weights(&r, beta).unwrap();
        for i in 0..r.len() {
            for j in 0..r.len() {
                if r[i] > r[j] {
                    prop_assert!(w[i] > w[j]);
                }
                if r[i] == r[j] {
                    prop_assert_eq!(w[i], w[j]);
                }
                let ratio = ((r[i] - r[j]) / beta).exp();
                prop_assert!(close(w[i] / w[j], ratio, 1e-9));
            }
        }
    }

    #[test]
    fn large_beta_is_uniform_and_infinite_beta_is_exactly_uniform(r in returns(16)) {
        let w = group_weights(&r, 1e9).unwrap();
        prop_assert!(w.iter().all(|&x| (x - 1.0).abs() < 1e-8));
        let u = group_weights(&r, f64::INFINITY).unwrap();
        prop_assert!(u.iter().all(|&x| x == 1.0));
    }

    #[test]
    fn small_beta_is_best_of_k_with_ties_shared(
        levels in prop::collection::vec(0usize..4, 1..16)
    ) {
        // Returns on a grid so ties are common: {−0.4, 0, 0.81, 1}.
        let grid = [-0.4, 0.0, 0.81, 1.0];
        let r: Vec<f64> = levels.iter().map(|&l| grid[l]).collect();
        let w = group_weights(&r, 1e-3).unwrap();
        let m = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let ties = r.iter().filter(|&&x| x == m).count() as f64;
        let k = r.len() as f64;
        for (x, ri) in w.iter().zip(&r) {
            if *ri == m {
                prop_assert!(close(*x, k / ties, 1e-9));
            } else {
                prop_assert!(*x < 1e-30);
            }
        }
    }

    #[test]
    fn binary_success_small_beta_equals_rft(
        solved in prop::collection::vec(any::<bool>(), 2..16)
    ) {
        prop_assume!(solved.iter().any(|&s| s));
        let rows: Vec<DriftRow> = solved
            .iter()
            .enumerate()
            .map(|(i, &s)| row("p", &format!(r#"{{"t1":{}}}"#, u8::from(s)), "[]", 0.0, i))
            .collect();
        let binary = WeightConfig { gamma: 1.0, repetition_penalty: 0.0, beta: 1e-3, ..WeightConfig::default() };
        let drift = weigh(&rows, &binary).unwrap();
        let rft = weigh(&rows, &WeightConfig { mode: WeightMode::Rft, ..binary }).unwrap();
        let successes = solved.iter().filter(|&&s| s).count() as f64;
        let k = solved.len() as f64;
        // RFT keeps the successes at weight 1; DRIFT gives them K/|successes| and the rest ≈ 0:
        // the same distribution over rows up to the per-prompt scale.
        prop_assert_eq!(rft.len() as f64, successes);
        for w in &drift {
            if solved[w.row] {
                prop_assert!(close(w.weight, k / successes, 1e-9));
                prop_assert!(rft.iter().any(|x| x.row == w.row && x.weight == 1.0));
            } else {
                prop_assert!(w.weight < 1e-30);
            }
        }
    }

    #[test]
    fn all_fail_equal_returns_give_ones(k in 1usize..20, r in -0.5f64..0.0, beta in 0.01f64..10.0) {
        let w = group_weights(&vec![r; k], beta).unwrap();
        prop_assert!(w.iter().all(|&x| close(x, 1.0, 1e-9)));
    }

    #[test]
    fn permutation_equivariance(r in returns(16), beta in 0.05f64..10.0, seed in any::<u64>()) {
        let mut idx: Vec<usize> = (0..r.len()).collect();
        let mut rng = StdRng::seed_from_u64(seed);
        for i in (1..idx.len()).rev() {
            idx.swap(i, rng.random_range(0..=i));
        }
        let w = group_weights(&r, beta).unwrap();
        let permuted: Vec<f64> = idx.iter().map(|&i| r[i]).collect();
        let v = group_weights(&permuted, beta).unwrap();
        for (pos, &i) in idx.iter().enumerate() {
            prop_assert!(close(v[pos], w[i], 1e-12));
        }
    }

    #[test]
    fn groups_are_independent(
        a in prop::collection::vec(0u8..=1, 1..8),
        b in prop::collection::vec(0u8..=1, 1..8),
        b2 in prop::collection::vec(0u8..=1, 1..8),
    ) {
        let mk = |a: &[u8], b: &[u8]| -> Vec<DriftRow> {
            a.iter().map(|&s| ("a", s)).chain(b.iter().map(|&s| ("b", s)))
                .enumerate()
                .map(|(i, (p, s))| row(p, &format!(r#"{{"t2":{s}}}"#), "[]", 0.0, i))
                .collect()
        };
        let cfg = WeightConfig::default();
        let w1 = weigh(&mk(&a, &b), &cfg).unwrap();
        let w2 = weigh(&mk(&a, &b2), &cfg).unwrap();
        for i in 0..a.len() {
            prop_assert_eq!(w1[i].weight, w2[i].weight);
        }
    }

    #[test]
    fn return_of_a_clean_solve_is_gamma_power(t_star in 1u32..=5, gamma in 0.1f64..1.0) {
        let rewards: Vec<String> = (1..=5).map(|t| format!(r#""t{t}":{}"#, u8::from(t == t_star))).collect();
        let answers: Vec<String> = (1..=t_star).map(|t| format!(r#""a{t}""#)).collect();
        let r = row("p", &format!("{{{}}}", rewards.join(",")), &format!("[{}]", answers.join(",")), 0.0, 0);
        let cfg = ReturnConfig { gamma, ..ReturnConfig::default() };
        prop_assert!(close(cfg.of(&r), gamma.powi(t_star as i32 - 1), 1e-12));
    }

    #[test]
    fn returns_are_at_most_one(
        t_star in prop::option::of(1u32..=5),
        answers in prop::collection::vec(0u8..3, 0..=5),
        bad_turns in 0usize..=5,
    ) {
        let rewards: Vec<String> = (1..=5).map(|t| format!(r#""t{t}":{}"#, u8::from(Some(t) == t_star))).collect();
        let answers: Vec<String> = answers.iter().map(|a| format!(r#""{a}""#)).collect();
        let r = row("p", &format!("{{{}}}", rewards.join(",")), &format!("[{}]", answers.join(",")), -0.1 * bad_turns as f64, 0);
        let ret = ReturnConfig::default().of(&r);
        prop_assert!((-0.5 - 0.4 - 1e-12..=1.0 + 1e-12).contains(&ret));
    }

    /// Exact recovery (spec §8): with a tabular policy over 5 actions, the weighted MLE of
    /// self-normalised weights on N samples from π_ref approaches π_ref·e^{r/β}/Z.
    #[test]
    fn bandit_recovery(
        logits in prop::collection::vec(-1.0f64..1.0, 5),
        rewards in prop::collection::vec(0.0f64..1.0, 5),
        seed in any::<u64>(),
    ) {
        let z: f64 = logits.iter().map(|l| l.exp()).sum();
        let pi_ref: Vec<f64> = logits.iter().map(|l| l.exp() / z).collect();
        let mut rng = StdRng::seed_from_u64(seed);
        for beta in [0.2, 0.5, 1.0, 3.0] {
            let target = {
                let u: Vec<f64> = pi_ref.iter().zip(&rewards).map(|(p, r)| p * (r / beta).exp()).collect();
                let s: f64 = u.iter().sum();
                u.into_iter().map(|x| x / s).collect::<Vec<_>>()
            };
            let mut errors = Vec::new();
            for n in [1_000usize, 200_000] {
                let actions: Vec<usize> = (0..n).map(|_| {
                    let mut x: f64 = rng.random();
                    pi_ref.iter().position(|&p| { x -= p; x < 0.0 }).unwrap_or(4)
                }).collect();
                let r: Vec<f64> = actions.iter().map(|&a| rewards[a]).collect();
                let w = group_weights(&r, beta).unwrap();
                let mut hat = [0.0f64; 5];
                for (&a, wi) in actions.iter().zip(&w) {
                    hat[a] += wi;
                }
                let s: f64 = hat.iter().sum();
                let l1: f64 = hat.iter().zip(&target).map(|(h, t)| (h / s - t).abs()).sum();
                errors.push(l1);
            }
            // Importance-sampling error is O(1/√N): 0.03 at N = 200k is several standard
            // deviations for these π_ref and β; at N = 1k it is typically ~10× larger.
            prop_assert!(errors[1] < 0.03, "β = {beta}: L1 {:?}", errors);
        }
    }
}

fn row(prompt: &str, rewards: &str, answers: &str, fmt: f64, line: usize) -> DriftRow {
    let text = format!(
        r#"{{"prompt_id":"{prompt}","messages":[{{"role":"user","content":"q"}},{{"role":"assistant","content":"a"}}],"turn_rewards":{rewards},"answer_norms":{answers},"format_penalty":{fmt}}}"#
    );
    DriftRow::parse(&text, Path::new("t.jsonl"), line + 1).unwrap()
}

#[test]
fn worked_returns_of_the_spec() {
    let cfg = ReturnConfig::default();
    let r = row(
        "p",
        r#"{"t1":0,"t2":0,"t3":1,"t4":0,"t5":0}"#,
        r#"["5","5","7"]"#,
        0.0,
        0,
    );
    assert!((cfg.of(&r) - (0.81 - 0.5 * (1.0 - 2.0 / 3.0))).abs() < 1e-12);
    assert!((cfg.of(&r) - 0.643).abs() < 5e-4);
    let five_same = row(
        "p",
        r#"{"t1":0,"t2":0,"t3":0,"t4":0,"t5":0}"#,
        r#"["5","5","5","5","5"]"#,
        0.0,
        0,
    );
    assert!((cfg.of(&five_same) + 0.4).abs() < 1e-12);
    let unparseable = row(
        "p",
        r#"{"t1":0,"t2":0,"t3":0,"t4":0,"t5":0}"#,
        "[]",
        -0.5,
        0,
    );
    assert!((cfg.of(&unparseable) + 0.5).abs() < 1e-12);
    for (t, want) in [(1, 1.0), (2, 0.9), (3, 0.81), (4, 0.729), (5, 0.6561)] {
        let r = row("p", &format!(r#"{{"t{t}":1}}"#), r#"["x"]"#, 0.0, 0);
        assert!((cfg.of(&r) - want).abs() < 1e-12, "t* = {t}");
    }
}

/// Spec §1's worked group at β = 0.1 and β = 1, and the all-failed group.
#[test]
fn worked_weights_of_the_spec() {
    let group: Vec<f64> = [
        (1.0, 4),
        (0.9, 2),
        (0.643, 1),
        (0.0, 5),
        (-0.4, 2),
        (-0.5, 2),
    ]
    .iter()
    .flat_map(|&(r, n)| std::iter::repeat_n(r, n))
    .collect();
    let distinct = |w: &[f64]| -> Vec<f64> { [0, 4, 6, 7, 12, 14].iter().map(|&i| w[i]).collect() };
    // The spec prints 2–3 significant digits: each value must round to what it prints.
    let check = |got: Vec<f64>, want: &[(f64, i32)]| {
        for (g, &(w, sig)) in got.iter().zip(want) {
            let half_ulp = 0.5 * 10f64.powi(w.log10().floor() as i32 - (sig - 1));
            assert!(
                (g - w).abs() <= half_ulp * (1.0 + 1e-9),
                "{got:?} vs {want:?}"
            );
        }
    };
    check(
        distinct(&group_weights(&group, 0.1).unwrap()),
        &[
            (3.36, 3),
            (1.24, 3),
            (0.095, 2),
            (1.5e-4, 2),
            (2.8e-6, 2),
            (1.0e-6, 2),
        ],
    );
    check(
        distinct(&group_weights(&group, 1.0).unwrap()),
        &[
            (1.72, 3),
            (1.56, 3),
            (1.21, 3),
            (0.63, 2),
            (0.42, 2),
            (0.38, 2),
        ],
    );
    let fail: Vec<f64> = [(0.0, 6), (-0.2, 4), (-0.4, 4), (-0.5, 2)]
        .iter()
        .flat_map(|&(r, n)| std::iter::repeat_n(r, n))
        .collect();
    let w = group_weights(&fail, 0.1).unwrap();
    check(
        [0, 6, 10, 14].iter().map(|&i| w[i]).collect(),
        &[(2.41, 3), (0.33, 2), (0.044, 2), (0.016, 2)],
    );
}

/// Spec §7: odd rows.
#[test]
fn odd_rows_follow_the_spec() {
    let cfg = ReturnConfig::default();
    // Missing turns count 0; the exponent comes from the key, not the position.
    assert!((cfg.of(&row("p", r#"{"t3":1}"#, "[]", 0.0, 0)) - 0.81).abs() < 1e-12);
    // Non-numeric rewards count 0 (DRIFT's code would read "1" and "true" as 1).
    for v in [r#""1""#, r#""true""#, "true", "null", "[1]"] {
        assert_eq!(
            cfg.of(&row("p", &format!(r#"{{"t1":{v}}}"#), "[]", 0.0, 0)),
            0.0,
            "{v}"
        );
    }
    // Keys that are not t<digits> (and t0) are ignored; keys are read in numeric order.
    let r = row(
        "p",
        r#"{"t10":1,"x1":1,"t":1,"t1a":1,"T1":1,"t0":1}"#,
        "[]",
        0.0,
        0,
    );
    assert!((cfg.of(&r) - 0.9f64.powi(9)).abs() < 1e-12);
    // Zero answers: no repetition penalty, the format penalty alone.
    assert!((cfg.of(&row("p", "{}", "[]", -0.3, 0)) + 0.3).abs() < 1e-12);
    // format_penalty falls back to trajectory_penalty.
    let t = r#"{"prompt_id":"p","messages":[],"turn_rewards":{"t1":1},"trajectory_penalty":-0.2}"#;
    let r = DriftRow::parse(t, Path::new("f.jsonl"), 1).unwrap();
    assert!((cfg.of(&r) - 0.8).abs() < 1e-12);
}

#[test]
fn unusable_input_is_rejected_with_file_line_and_field() {
    let p = Path::new("data/rows.jsonl");
    let e = DriftRow::parse("not json", p, 3).unwrap_err().to_string();
    assert!(e.starts_with("data/rows.jsonl:3: <line>: not JSON"), "{e}");
    let e = DriftRow::parse(r#"{"messages":[]}"#, p, 4)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "data/rows.jsonl:4: prompt_id: missing");
    let e = DriftRow::parse(r#"{"prompt_id":"a"}"#, p, 5)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "data/rows.jsonl:5: messages: missing");
    let e = DriftRow::parse(
        r#"{"prompt_id":"a","messages":[{"role":"tool","content":"x"}]}"#,
        p,
        6,
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("data/rows.jsonl:6: messages[0].role:"), "{e}");
    let rows = vec![row("p", "{}", "[]", 0.0, 0)];
    for beta in [0.0, -1.0, f64::NAN] {
        let e = weigh(
            &rows,
            &WeightConfig {
                beta,
                ..WeightConfig::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("weights.beta"), "{e}");
    }
    assert!(group_weights(&[0.0], 0.0).is_err());
}

#[test]
fn filtering_before_or_after_weighting() {
    let empty = DriftRow::parse(
        r#"{"prompt_id":"p","messages":[{"role":"user","content":"q"},{"role":"assistant","content":"  "}],"turn_rewards":{"t1":1}}"#,
        Path::new("f.jsonl"),
        1,
    )
    .unwrap();
    let rows = vec![
        empty,
        row("p", r#"{"t1":0}"#, "[]", 0.0, 1),
        row("p", r#"{"t1":0}"#, "[]", 0.0, 2),
    ];
    let after = weigh(&rows, &WeightConfig::default()).unwrap();
    assert_eq!(after.iter().map(|w| w.row).collect::<Vec<_>>(), vec![1, 2]);
    // The empty row held nearly all the weight, so what is left sums to ≈ 0.
    assert!(after.iter().map(|w| w.weight).sum::<f64>() < 1e-3);
    let before = weigh(
        &rows,
        &WeightConfig {
            filter: FilterOrder::BeforeWeighting,
            ..WeightConfig::default()
        },
    )
    .unwrap();
    assert!((before.iter().map(|w| w.weight).sum::<f64>() - 2.0).abs() < 1e-9);
}
