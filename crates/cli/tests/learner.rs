//! The general learner from the command line: online multi-turn GRPO over the try-again
//! environment, a phased DSRL objective that switches at S, and exact SFT resume after
//! SIGKILL.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn toy_dir(name: &str) -> PathBuf {
    let dir = tmp(name);
    std::fs::create_dir_all(dir.join("model")).unwrap();
    toy_model(&dir.join("model"), 7);
    toy_data(&dir.join("data.jsonl"), 24);
    dir
}

fn write_config(dir: &Path, steps: usize, extra: &str) -> PathBuf {
    let cfg = format!(
        r#"
out = "run"
prompts_per_step = 4

[model]
path = "model"

[data]
path = "data.jsonl"
format = "raw"

[verifier]
kind = "exact_match"
config = {{ sources = ["whole"] }}

[sampler]
kind = "uniform"

[train]
steps = {steps}
seed = 5
checkpoint_every = 1

[train.sampling]
n = 8
max_new_tokens = 1
temperature = 1.0

[train.grpo.optim]
lr = 0.01
{extra}
"#
    );
    let path = dir.join("run.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

const TRY_AGAIN: &str = r#"
[environment]
kind = "try_again"
max_turns = 3
turn_format = "free"
user_template = "{prompt}"
format_penalty = -0.1

[episodes]
loss_turns = "all"

"#;

#[test]
fn online_multi_turn_grpo_runs_from_a_config_and_learns() {
    let dir = toy_dir("multiturn");
    let cfg = write_config(&dir, 12, TRY_AGAIN);
    rlft_ok(&["train", "--config", cfg.to_str().unwrap()]);
    let recs = jsonl(&dir.join("run/metrics.jsonl"));
    assert_eq!(recs.len(), 12);
    let get = |r: &serde_json::Value, k: &str| r[k].as_f64().unwrap();
    // An episode's return counts a correct answer on any of the 3 turns; every rollout is a
    // whole episode, 4 prompts × 8 per step.
    assert_eq!(get(&recs[0], "rollouts"), 32.0);
    assert!(
        recs.iter()
            .all(|r| (-0.31..=1.0).contains(&get(r, "reward")))
    );
    let first = get(&recs[0], "accuracy");
    let last3 = recs[9..].iter().map(|r| get(r, "accuracy")).sum::<f64>() / 3.0;
    assert!(
        last3 > first && last3 > 0.9,
        "solved rate {first} → {last3}: {recs:?}"
    );
    assert!(dir.join("run/final/model.safetensors").exists());
}

const DSRL: &str = r#"
[[objective]]
name = "nsr_prerl"
scorer = { marginal = {} }
advantage = { kind = "dr_grpo" }
sample_mask = "negative"
loss = { dual_clip = 10.0, aggregation = { kind = "token_mean" } }
phase = { until = 3, coef = 0.01 }

[[objective]]
name = "grpo"
phase = { from = 3 }

[train.grpo]
sync_reference_at = [3]
"#;

#[test]
fn a_dsrl_run_switches_at_s_and_resumes_exactly_after_sigkill_on_either_side() {
    let steps = 8;
    let a = toy_dir("dsrl-a");
    let cfg_a = write_config(&a, steps, DSRL);
    rlft_ok(&["train", "--config", cfg_a.to_str().unwrap()]);
    let recs = jsonl(&a.join("run/metrics.jsonl"));
    assert_eq!(recs.len(), steps);
    for (t, r) in recs.iter().enumerate() {
        let coef = |k: &str| r[format!("coef/{k}")].as_f64().unwrap();
        let (pre, rl) = if t < 3 { (0.01, 0.0) } else { (0.0, 1.0) };
        assert_eq!(
            (coef("nsr_prerl"), coef("grpo")),
            (pre, rl),
            "step {t}: {r}"
        );
        assert_eq!(r["loss/nsr_prerl"].is_number(), t < 3, "step {t}: {r}");
        assert_eq!(r["loss/grpo"].is_number(), t >= 3, "step {t}: {r}");
        assert_eq!(r["reference_synced"].as_f64(), Some(f64::from(t == 3)));
    }
    let want_metrics = timeless(recs);
    let want_weights = tensors(&a.join("run/final/model.safetensors"));
    for (name, kill_at) in [("before", 2), ("after", 5)] {
        let b = toy_dir(&format!("dsrl-kill-{name}"));
        let cfg_b = write_config(&b, steps, DSRL);
        let log = b.join("run/metrics.jsonl");
        kill_after(
            &["train", "--config", cfg_b.to_str().unwrap()],
            &log,
            kill_at,
            steps,
        );
        rlft_ok(&["train", "--config", cfg_b.to_str().unwrap()]);
        assert_eq!(timeless(jsonl(&log)), want_metrics, "killed {name} S");
        assert!(
            tensors(&b.join("run/final/model.safetensors")) == want_weights,
            "killed {name} S: different weights"
        );
    }
}

fn sft_dir(name: &str) -> PathBuf {
    let dir = tmp(name);
    std::fs::create_dir_all(dir.join("model")).unwrap();
    toy_model(&dir.join("model"), 11);
    let lines: String = ["a", "ab", "ba", "bb", "aab", "bab", "abb", "bba"]
        .iter()
        .map(|p| {
            format!(
                "{}\n",
                serde_json::json!({"prompt": p, "completion": "bab"})
            )
        })
        .collect();
    std::fs::write(dir.join("sft.jsonl"), lines).unwrap();
    std::fs::write(
        dir.join("sft.toml"),
        r#"
out = "run"

[model]
path = "model"

[data]
path = "sft.jsonl"

[sft]
epochs = 12
batch_size = 4
checkpoint_every = 2

[sft.optim]
lr = 0.01
"#,
    )
    .unwrap();
    dir
}

#[test]
fn rlft_sft_resumes_exactly_after_sigkill_and_after_max_steps() {
    let a = sft_dir("sft-resume-a");
    let cfg_a = a.join("sft.toml");
    rlft_ok(&["sft", "--config", cfg_a.to_str().unwrap()]);
    let want_metrics = timeless(jsonl(&a.join("run/metrics.jsonl")));
    assert_eq!(want_metrics.len(), 24);
    let want_weights = tensors(&a.join("run/final/model.safetensors"));

    let b = sft_dir("sft-resume-kill");
    let cfg_b = b.join("sft.toml");
    let log = b.join("run/metrics.jsonl");
    kill_after(&["sft", "--config", cfg_b.to_str().unwrap()], &log, 7, 24);
    assert!(!b.join("run/final").exists());
    rlft_ok(&["sft", "--config", cfg_b.to_str().unwrap()]);
    assert_eq!(timeless(jsonl(&log)), want_metrics);
    assert!(tensors(&b.join("run/final/model.safetensors")) == want_weights);

    let c = sft_dir("sft-resume-stop");
    let cfg_c = c.join("sft.toml");
    let stopped = rlft_ok(&[
        "sft",
        "--config",
        cfg_c.to_str().unwrap(),
        "--max-steps",
        "5",
    ]);
    assert!(stopped.trim().ends_with("latest.json"), "{stopped}");
    rlft_ok(&["sft", "--config", cfg_c.to_str().unwrap()]);
    assert_eq!(timeless(jsonl(&c.join("run/metrics.jsonl"))), want_metrics);
    assert!(tensors(&c.join("run/final/model.safetensors")) == want_weights);
}

#[test]
fn sft_trains_only_the_chosen_turns_of_a_conversation() {
    let dir = tmp("sft-messages");
    std::fs::create_dir_all(dir.join("model")).unwrap();
    toy_model(&dir.join("model"), 13);
    let row = |w: f64| {
        serde_json::json!({
            "messages": [
                {"role": "user", "content": "ab"},
                {"role": "assistant", "content": "bb"},
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "ba"}
            ],
            "w": w
        })
        .to_string()
    };
    std::fs::write(
        dir.join("sft.jsonl"),
        format!("{}\n{}\n", row(1.0), row(0.5)),
    )
    .unwrap();
    std::fs::write(
        dir.join("sft.toml"),
        r#"
out = "run"

[model]
path = "model"

[data]
path = "sft.jsonl"
messages_field = "messages"
weight_field = "w"

[sft]
epochs = 2
batch_size = 2
"#,
    )
    .unwrap();
    rlft_ok(&["sft", "--config", dir.join("sft.toml").to_str().unwrap()]);
    let recs = jsonl(&dir.join("run/metrics.jsonl"));
    // Two examples, each training on "ba" and its end-of-turn token only.
    assert_eq!(recs[0]["tokens"].as_f64(), Some(2.0 * 3.0));
    // A conversation without an assistant message is an error naming its line.
    std::fs::write(
        dir.join("sft.jsonl"),
        format!(
            "{}\n{}\n",
            row(1.0),
            serde_json::json!({"messages": [{"role": "user", "content": "a"}]})
        ),
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(dir.join("run"));
    let err = rlft_err(&["sft", "--config", dir.join("sft.toml").to_str().unwrap()]);
    assert!(err.contains("sft.jsonl:2"), "{err}");
}
