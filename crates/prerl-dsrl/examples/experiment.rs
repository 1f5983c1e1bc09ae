//! The PreRL / DSRL CPU experiment (spec prerl.md §7.2–7.3): SFT a tiny transformer on the
//! (a+b) mod 10 restatement task, then RL with GRPO, PSR, NSR, W-REINFORCE (conditional),
//! PSR-PreRL, NSR-PreRL (marginal) and DSRL; held-out pass@k and reflection rate over seeds.
//!
//! `cargo run --release -p rlft-prerl-dsrl --example experiment -- [OUT_DIR] [--quick]
//! [--set FIELD=JSON]…` (`--set` overrides a field of `ExperimentConfig`, e.g.
//! `--set rl_steps=200 --set 'seeds=[0,1,2,3,4]'`).
//!
//! Prints the Markdown table and the acceptance statements; writes `prerl-experiment.json`,
//! `prerl-experiment.md` and `prerl-passk.svg` to OUT_DIR (default `target/prerl-experiment`).

use burn::tensor::Device;
use rlft_prerl_dsrl::experiment::{ExperimentConfig, run};
use rlft_trainer::{pass_at_k_svg, write_atomic};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let out = args.iter().find(|a| !a.starts_with("--")).map_or_else(
        || "target/prerl-experiment".into(),
        std::path::PathBuf::from,
    );
    let mut cfg = ExperimentConfig::default();
    if quick {
        // A smoke run: one seed, few steps, few samples.
        (
            cfg.seeds,
            cfg.sft_traces,
            cfg.rl_steps,
            cfg.switch,
            cfg.eval_samples,
        ) = (vec![0], 1000, 6, 3, 16);
    }
    let mut value = serde_json::to_value(&cfg)?;
    for pair in args.windows(2).filter(|w| w[0] == "--set").map(|w| &w[1]) {
        let (field, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("--set {pair}: expected FIELD=JSON"))?;
        let v: serde_json::Value =
            serde_json::from_str(v).map_err(|e| format!("--set {pair}: {e}"))?;
        value[field] = v;
    }
    let cfg: ExperimentConfig = serde_json::from_value(value).map_err(|e| format!("--set: {e}"))?;
    let device = Device::flex().autodiff();
    let report = run(&cfg, &device, |line| eprintln!("{line}"))?;
    let md = report.markdown();
    println!("{md}");
    println!(
        "{} seeds, {} RL steps, switch at step {}, {} held-out samples per prompt, {:.0} s",
        cfg.seeds.len(),
        cfg.rl_steps,
        cfg.switch,
        cfg.eval_samples,
        report.seconds
    );
    std::fs::create_dir_all(&out)?;
    write_atomic(
        &out.join("prerl-experiment.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    write_atomic(&out.join("prerl-experiment.md"), md.as_bytes())?;
    let svg = pass_at_k_svg(
        &report.curves(),
        "held-out pass@k, (a+b) mod 10 restatement task",
    );
    write_atomic(&out.join("prerl-passk.svg"), svg.as_bytes())?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
