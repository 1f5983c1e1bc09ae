//! A smoke run of the CPU experiment: every method trains and is evaluated, the report has
//! one row per method plus base and DSRL-at-switch, pass@k is monotone in k, and the four
//! acceptance statements are reported.

use burn::tensor::Device;
use rlft_prerl_dsrl::experiment::{AT_SWITCH, BASE, ExperimentConfig, Method, run};

#[test]
fn a_tiny_experiment_reports_every_method_and_the_acceptance_statements() {
    let cfg = ExperimentConfig {
        seeds: vec![0],
        sft_traces: 300,
        sft_epochs: 1,
        rl_steps: 3,
        prompts_per_step: 4,
        group_size: 4,
        switch: 1,
        eval_samples: 8,
        ..ExperimentConfig::default()
    };
    let mut lines = 0;
    let report = run(&cfg, &Device::flex().autodiff(), |_| lines += 1).unwrap();
    assert_eq!(lines, 1 + Method::all().len());
    assert_eq!(report.rows.len(), Method::all().len() + 2);
    for label in [BASE, AT_SWITCH] {
        assert_eq!(report.row(label).unwrap().evals.len(), 1);
    }
    for row in &report.rows {
        let e = &row.evals[0];
        let ks: Vec<usize> = e.pass_at_k.keys().copied().collect();
        assert_eq!(ks, [1, 2, 4, 8]);
        let v: Vec<f64> = e.pass_at_k.values().copied().collect();
        assert!(v.windows(2).all(|w| w[0] <= w[1] + 1e-12), "{row:?}");
        assert!(v.iter().all(|p| (0.0..=1.0).contains(p)));
        assert!((0.0..=1.0).contains(&e.reflection));
    }
    assert_eq!(report.acceptance().len(), 4);
    let md = report.markdown();
    assert!(md.contains("| DSRL |") && md.contains("(iv)"), "{md}");
    // The SFT target is the trace distribution's own score, between the odd-sum and
    // even-sum rates.
    assert!(report.sft_target.0 > 0.09 && report.sft_target.0 < 0.49);
    let bad = ExperimentConfig { switch: 5, ..cfg };
    assert!(run(&bad, &Device::flex().autodiff(), |_| {}).is_err());
}
