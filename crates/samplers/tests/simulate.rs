//! The simulator: its worlds behave as specified, and the DPS spec §8 experiment reproduces
//! the published ordering (the done criterion).

use rlft_samplers::simulate::{self, SflLogitWorld, SimConfig, World, loo_gradient};

#[test]
fn loo_gradient_is_unbiased_for_p_one_minus_p() {
    // E over Binomial(k, p) of g(s) equals p(1 − p) exactly (sfl.md §5.2).
    for k in [2u32, 4, 8] {
        for p in [0.05f64, 0.3, 0.5, 0.9] {
            let mut e = 0.0;
            let mut binom = 1.0;
            for s in 0..=k {
                if s > 0 {
                    binom *= f64::from(k - s + 1) / f64::from(s);
                }
                let w = binom * p.powi(s as i32) * (1.0 - p).powi((k - s) as i32);
                e += w * loo_gradient(s, k, p);
            }
            assert!((e - p * (1.0 - p)).abs() < 1e-12, "k={k} p={p}: {e}");
        }
        assert_eq!(loo_gradient(0, k, 0.3), 0.0);
        assert_eq!(loo_gradient(k, k, 0.3), 0.0);
    }
}

#[test]
fn frozen_sfl_world_changes_no_metric() {
    let config = SimConfig {
        world: World::SflLogit(SflLogitWorld {
            eta_u: 0.0,
            eta_z: 0.0,
            ..SflLogitWorld::default()
        }),
        steps: 20,
        seeds: 1,
        batch_size: 32,
        ..SimConfig::default()
    };
    let report = simulate::run(&config).unwrap();
    for s in &report.samplers {
        let first = &s.curve[0];
        for r in &s.curve {
            assert_eq!(
                (r.mean_p, r.solved, r.heldout_p),
                (first.mean_p, first.solved, first.heldout_p)
            );
        }
    }
}

#[test]
fn dps_spec_experiment_reproduces_the_ordering() {
    let config = SimConfig::default();
    let report = simulate::run(&config).unwrap();
    let get = |label: &str| report.samplers.iter().find(|s| s.label == label).unwrap();
    let (us, ds, dps) = (get("US"), get("DS"), get("DPS"));
    // Cheap samplers spend exactly steps·B·k.
    assert_eq!(us.rollouts, 150.0 * 128.0 * 8.0);
    assert_eq!(dps.rollouts, 150.0 * 128.0 * 8.0);
    assert!(ds.rollouts > 1.5 * us.rollouts);
    // DS trains only on mixed groups.
    assert_eq!(ds.effective_ratio, 1.0);
    // ESR(DPS) ≥ ESR(US) + 0.1 (spec §8 pass criterion).
    assert!(
        dps.effective_ratio >= us.effective_ratio + 0.1,
        "{} vs {}",
        dps.effective_ratio,
        us.effective_ratio
    );
    // At equal rollouts DPS is at or above DS, and above US.
    let (d, s, u) = (
        dps.mean_p_at_budget.unwrap(),
        ds.mean_p_at_budget.unwrap(),
        us.mean_p_at_budget.unwrap(),
    );
    assert!(d >= s && d > u, "DPS {d}, DS {s}, US {u}");
    // Per step, DS is ahead (it spends more).
    assert!(ds.curve[150].mean_p > dps.curve[150].mean_p);
    let table = report.markdown_table();
    assert_eq!(table.lines().count(), 2 + config.samplers.len());
    assert!(report.svg().starts_with("<svg"));
}
