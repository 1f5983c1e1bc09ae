//! The runnable config of docs/migrating-from-trl.md: examples/configs/trl_grpo_quickstart.toml
//! runs on the tiny fixture, and every setting it resolves to is TRL 1.16's quickstart default
//! as `scripts/migration/trl_grpo_defaults.py` read it from TRL's and transformers' source.

mod common;

use std::path::Path;

use common::{json, jsonl, rlft_ok, tmp};
use serde_json::Value;

fn trl_defaults() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/trl_grpo_defaults.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(v["trl"], "1.16.0");
    v["defaults"].clone()
}

/// A number from either side, compared at f32 precision (rlft stores these as f32).
fn close(a: &Value, b: f64) -> bool {
    a.as_f64()
        .is_some_and(|a| (a - b).abs() <= 1e-6 * b.abs().max(1e-6))
}

#[test]
fn the_trl_quickstart_config_runs_with_trl_s_defaults() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/configs");
    let out = tmp("trl-quickstart");
    let printed = rlft_ok(&[
        "train",
        "--config",
        root.join("trl_grpo_quickstart.toml").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(printed.trim().ends_with("summary.json"), "{printed}");
    let recs = jsonl(&out.join("metrics.jsonl"));
    assert_eq!(recs.len(), 3);
    assert!(out.join("final/model.safetensors").exists());

    let trl = trl_defaults();
    let cfg = json(&out.join("config.json"));
    let at = |p: &str| {
        cfg.pointer(p)
            .unwrap_or_else(|| panic!("config.json has no {p}: {cfg}"))
            .clone()
    };
    let f = |k: &str| trl[k].as_f64().unwrap_or_else(|| panic!("TRL default {k}"));
    // (TRL field, rlft key in the resolved config) for numbers.
    let numbers = [
        ("learning_rate", "/train/grpo/optim/lr"),
        ("adam_beta1", "/train/grpo/optim/beta1"),
        ("adam_beta2", "/train/grpo/optim/beta2"),
        ("adam_epsilon", "/train/grpo/optim/eps"),
        ("weight_decay", "/train/grpo/optim/weight_decay"),
        ("max_grad_norm", "/train/grpo/optim/max_grad_norm"),
        ("warmup_steps", "/train/grpo/optim/warmup_steps"),
        ("seed", "/train/seed"),
        ("num_generations", "/train/sampling/n"),
        ("max_completion_length", "/train/sampling/max_new_tokens"),
        ("temperature", "/train/sampling/temperature"),
        ("temperature", "/train/grpo/temperature"),
        ("top_p", "/train/sampling/top_p"),
        ("beta", "/train/grpo/loss/beta"),
        ("num_iterations", "/train/grpo/num_iterations"),
        ("epsilon", "/train/grpo/loss/epsilon_low"),
        ("entropy_coef", "/train/grpo/loss/entropy_coef"),
        (
            "gradient_accumulation_steps",
            "/train/grpo/steps_per_generation",
        ),
    ];
    for (k, p) in numbers {
        assert!(
            close(&at(p), f(k)),
            "{p} = {} but TRL's {k} = {}",
            at(p),
            trl[k]
        );
    }
    // Fields whose TRL "unset" means a value of another field or "off".
    assert!(
        trl["epsilon_high"].is_null() && close(&at("/train/grpo/loss/epsilon_high"), f("epsilon"))
    );
    assert!(trl["steps_per_generation"].is_null() && trl["generation_batch_size"].is_null());
    assert!(trl["delta"].is_null() && at("/train/grpo/loss/delta").is_null());
    assert!(trl["min_p"].is_null() && close(&at("/train/sampling/min_p"), 0.0));
    assert_eq!(trl["top_k"], 0);
    assert!(at("/train/sampling/top_k").is_null(), "top_k 0 is off");
    // One prompt per step: TRL's 8 completions per device batch over 8 generations.
    assert_eq!(
        at("/prompts_per_step").as_f64().unwrap(),
        f("per_device_train_batch_size") * f("gradient_accumulation_steps") / f("num_generations")
    );
    // Names.
    assert_eq!(trl["lr_scheduler_type"], at("/train/grpo/optim/schedule"));
    assert_eq!(trl["loss_type"], at("/train/grpo/loss/aggregation/kind"));
    assert_eq!(
        trl["importance_sampling_level"],
        at("/train/grpo/loss/importance_level")
    );
    assert_eq!(trl["scale_rewards"], at("/train/grpo/advantage/scale"));
    assert_eq!(at("/train/grpo/advantage/kind"), "grpo");
    assert_eq!(
        trl["mask_truncated_completions"],
        at("/train/grpo/mask_truncated")
    );
    assert_eq!(
        trl["use_bias_correction_kl"],
        at("/train/grpo/loss/kl_bias_correction")
    );
    assert_eq!(trl["shuffle_dataset"], true);
    assert_eq!(at("/sampler/kind"), "uniform");
}

fn verl_defaults() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/verl_defaults.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(v["verl"], "0.9.1");
    v["defaults"].clone()
}

#[test]
fn the_verl_gsm8k_config_runs_on_verl_parquet_with_verl_s_defaults() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/configs");
    let out = tmp("verl-gsm8k");
    rlft_ok(&[
        "train",
        "--config",
        root.join("verl_grpo_gsm8k.toml").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let recs = jsonl(&out.join("metrics.jsonl"));
    assert_eq!(recs.len(), 2);
    assert!(recs[0].get("kl").is_some(), "use_kl_loss: {:?}", recs[0]);

    let verl = verl_defaults();
    let cfg = json(&out.join("config.json"));
    let at = |p: &str| {
        cfg.pointer(p)
            .unwrap_or_else(|| panic!("config.json has no {p}: {cfg}"))
            .clone()
    };
    let v = |k: &str| {
        verl[k]
            .as_f64()
            .unwrap_or_else(|| panic!("verl default {k}: {}", verl[k]))
    };
    let actor = "actor_rollout_ref.actor";
    let numbers = [
        (format!("{actor}.optim.lr"), "/train/grpo/optim/lr"),
        (
            format!("{actor}.optim.weight_decay"),
            "/train/grpo/optim/weight_decay",
        ),
        (
            format!("{actor}.optim.clip_grad"),
            "/train/grpo/optim/max_grad_norm",
        ),
        (format!("{actor}.ppo_epochs"), "/train/grpo/num_iterations"),
        (
            format!("{actor}.clip_ratio_low"),
            "/train/grpo/loss/epsilon_low",
        ),
        (
            format!("{actor}.clip_ratio_high"),
            "/train/grpo/loss/epsilon_high",
        ),
        (
            format!("{actor}.clip_ratio_c"),
            "/train/grpo/loss/dual_clip",
        ),
        (
            format!("{actor}.entropy_coeff"),
            "/train/grpo/loss/entropy_coef",
        ),
        (format!("{actor}.kl_loss_coef"), "/train/grpo/loss/beta"),
        (
            "actor_rollout_ref.rollout.temperature".to_string(),
            "/train/sampling/temperature",
        ),
        (
            "actor_rollout_ref.rollout.top_p".to_string(),
            "/train/sampling/top_p",
        ),
        (
            "data.max_prompt_length".to_string(),
            "/data/max_prompt_tokens",
        ),
        (
            "data.max_response_length".to_string(),
            "/train/sampling/max_new_tokens",
        ),
        (
            "core_algos.compute_grpo_outcome_advantage.epsilon".to_string(),
            "/train/grpo/advantage/epsilon",
        ),
    ];
    for (k, p) in &numbers {
        assert!(
            close(&at(p), v(k)),
            "{p} = {} but verl's {k} = {}",
            at(p),
            verl[k]
        );
    }
    let betas = verl[format!("{actor}.optim.betas")]
        .as_array()
        .unwrap()
        .clone();
    assert!(close(
        &at("/train/grpo/optim/beta1"),
        betas[0].as_f64().unwrap()
    ));
    assert!(close(
        &at("/train/grpo/optim/beta2"),
        betas[1].as_f64().unwrap()
    ));
    // Scaled batch sizes keep verl's ratio of rollout batch to mini-batch.
    assert_eq!(
        at("/train/grpo/steps_per_generation").as_f64().unwrap(),
        v("data.train_batch_size") / v(&format!("{actor}.ppo_mini_batch_size"))
    );
    // Names: verl's spelling → rlft's.
    assert_eq!(
        verl[format!("{actor}.optim.lr_scheduler_type")],
        at("/train/grpo/optim/schedule")
    );
    assert_eq!(verl[format!("{actor}.loss_agg_mode")], "token-mean");
    assert_eq!(at("/train/grpo/loss/aggregation/kind"), "token_mean");
    assert_eq!(verl[format!("{actor}.kl_loss_type")], "low_var_kl");
    assert_eq!(at("/train/grpo/loss/kl_estimator"), "k3_clamped");
    assert_eq!(verl[format!("{actor}.policy_loss.loss_mode")], "vanilla");
    assert_eq!(verl["algorithm.norm_adv_by_std_in_grpo"], true);
    assert_eq!(at("/train/grpo/advantage/scale"), "group");
    assert_eq!(verl["actor_rollout_ref.rollout.top_k"], -1);
    assert!(at("/train/sampling/top_k").is_null(), "top_k -1 is off");
    assert_eq!(verl["data.shuffle"], true);
    assert_eq!(at("/sampler/kind"), "uniform");
    assert_eq!(verl["data.prompt_key"], "prompt");
}
