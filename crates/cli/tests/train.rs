//! `rlft train` end to end: a toy task it must learn, the transformers-made Qwen2 fixture
//! finetuned fully and with LoRA and exported, resume after a stop, and bad configs.

mod common;

use std::path::Path;

use common::*;
use rlft_models::{CausalLm, ChatTokenizer, GreedyConfig, LoadOptions, greedy};

/// A train config for the toy checkpoint and data in `dir`.
fn toy_config(dir: &Path, steps: usize, extra: &str) -> std::path::PathBuf {
    let cfg = format!(
        r#"
out = "run"
prompts_per_step = 4

[model]
path = "model"

[data]
path = "data.jsonl"
format = "raw"
test_fraction = 0.25

[verifier]
kind = "exact_match"
config = {{ sources = ["whole"] }}

[sampler]
kind = "dps"

[train]
steps = {steps}
seed = 3
checkpoint_every = 2

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

fn toy_dir(name: &str) -> std::path::PathBuf {
    let dir = tmp(name);
    std::fs::create_dir_all(dir.join("model")).unwrap();
    toy_model(&dir.join("model"), 7);
    toy_data(&dir.join("data.jsonl"), 24);
    dir
}

#[test]
fn grpo_learns_a_toy_task_and_exports_a_checkpoint_that_loads() {
    let dir = toy_dir("toy");
    let cfg = toy_config(&dir, 12, "");
    let printed = rlft_ok(&["train", "--config", cfg.to_str().unwrap()]);
    let run = dir.join("run");
    assert_eq!(printed.trim(), run.join("summary.json").to_str().unwrap());
    let s = json(&run.join("summary.json"));
    assert_eq!(s["steps"], 12);
    let recs = jsonl(&run.join("metrics.jsonl"));
    assert_eq!(recs.len(), 12);
    let reward = |r: &serde_json::Value| r["reward"].as_f64().unwrap();
    let first = reward(&recs[0]);
    let last3 = recs[9..].iter().map(reward).sum::<f64>() / 3.0;
    // Every answer is "a", one of 6 tokens: the reward starts near 1/6 and must climb.
    assert!(first < 0.5, "first-step reward {first}");
    assert!(last3 > 0.8, "reward {first} → {last3}; metrics {recs:?}");
    for key in [
        "loss",
        "grad_norm",
        "lr",
        "effective_ratio",
        "rollouts",
        "tokens_per_s",
        "entropy",
        "clip_ratio/region_mean",
    ] {
        assert!(
            recs[0].get(key).is_some(),
            "metrics lack {key}: {}",
            recs[0]
        );
    }
    // Held-out greedy accuracy is measured before and after.
    let after = s["eval_after"]["pass1"].as_f64().unwrap();
    assert!(s["eval_before"]["pass1"].is_number());
    assert_eq!(after, 1.0, "{s}");
    // The export is a Hugging Face directory this crate (and transformers) can load.
    let fin = run.join("final");
    for f in [
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ] {
        assert!(fin.join(f).exists(), "final/ lacks {f}");
    }
    let m = CausalLm::from_pretrained(&fin, &burn::tensor::Device::flex(), LoadOptions::default())
        .unwrap();
    let tok = ChatTokenizer::from_dir(&fin).unwrap();
    let out = greedy(
        &m,
        &[tok.encode("abba", false).unwrap()],
        &GreedyConfig {
            max_new_tokens: 1,
            eos_token_ids: vec![0],
            pad_token_id: 0,
        },
    )
    .unwrap();
    assert_eq!(tok.decode(&out[0], true).unwrap(), "a");
    for f in ["report.md", "curves.svg", "config.json", "eval_before.json"] {
        assert!(run.join(f).exists(), "run dir lacks {f}");
    }
}

#[test]
fn a_stopped_run_resumes_to_the_same_metrics_as_an_uninterrupted_one() {
    let a = toy_dir("resume-a");
    let b = toy_dir("resume-b");
    let cfg_a = toy_config(&a, 6, "");
    let cfg_b = toy_config(&b, 6, "");
    rlft_ok(&["train", "--config", cfg_a.to_str().unwrap()]);
    let stopped = rlft_ok(&[
        "train",
        "--config",
        cfg_b.to_str().unwrap(),
        "--max-steps",
        "3",
    ]);
    assert!(stopped.trim().ends_with("latest.json"), "{stopped}");
    assert_eq!(jsonl(&b.join("run/metrics.jsonl")).len(), 3);
    assert!(!b.join("run/final").exists());
    rlft_ok(&["train", "--config", cfg_b.to_str().unwrap()]);
    let ra = timeless(jsonl(&a.join("run/metrics.jsonl")));
    let rb = timeless(jsonl(&b.join("run/metrics.jsonl")));
    assert_eq!(ra, rb);
    // Tensor by tensor (the safetensors header's key order is not fixed).
    let wa = tensors(&a.join("run/final/model.safetensors"));
    let wb = tensors(&b.join("run/final/model.safetensors"));
    assert!(wa == wb, "resumed run exported different weights");
}

/// Prompts for the Qwen2 fixture whose greedy next token is the gold answer, so that sampled
/// completions at temperature 0.5 are a mix of right and wrong.
fn fixture_data(path: &Path) {
    let tok = ChatTokenizer::from_dir(QWEN2).unwrap();
    let m = CausalLm::from_pretrained(QWEN2, &burn::tensor::Device::flex(), LoadOptions::default())
        .unwrap();
    let prompts = [
        "What is 2+3?",
        "Count to three.",
        "Name a colour.",
        "Say hello.",
    ];
    let ids: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| tok.encode(p, false).unwrap())
        .collect();
    let out = greedy(
        &m,
        &ids,
        &GreedyConfig {
            max_new_tokens: 1,
            eos_token_ids: vec![],
            pad_token_id: 0,
        },
    )
    .unwrap();
    let lines: Vec<String> = prompts
        .iter()
        .zip(&out)
        .map(|(p, o)| {
            let a = tok.decode(o, true).unwrap();
            serde_json::json!({ "prompt": p, "answer": a }).to_string()
        })
        .collect();
    std::fs::write(path, lines.join("\n")).unwrap();
}

#[test]
fn the_hf_fixture_is_finetuned_full_and_with_lora_and_exported_with_hf_names() {
    let original = tensors(&Path::new(QWEN2).join("model.safetensors"));
    for (name, extra) in [("full", "[train.grpo.loss]\nbeta = 0.04\n"), ("lora", "")] {
        let dir = tmp(&format!("fixture-{name}"));
        fixture_data(&dir.join("data.jsonl"));
        let lora = if name == "lora" {
            "[model.lora]\nrank = 4\nalpha = 8\n"
        } else {
            ""
        };
        let cfg = format!(
            r#"
out = "run"
prompts_per_step = 2

[model]
path = "{QWEN2}"
{lora}
[data]
path = "data.jsonl"
format = "raw"

[verifier]
kind = "exact_match"
config = {{ sources = ["whole"], whitespace = "keep" }}

[sampler]
kind = "uniform"

[train]
steps = 3

[train.sampling]
n = 8
max_new_tokens = 1
temperature = 0.5

[train.grpo]
temperature = 0.5

[train.grpo.optim]
lr = 0.001
{extra}"#
        );
        std::fs::write(dir.join("run.toml"), cfg).unwrap();
        rlft_ok(&["train", "--config", dir.join("run.toml").to_str().unwrap()]);
        let recs = jsonl(&dir.join("run/metrics.jsonl"));
        assert_eq!(recs.len(), 3);
        assert!(
            recs.iter().any(|r| r["grad_norm"].as_f64().unwrap() > 0.0),
            "{name}: no step had a gradient: {recs:?}"
        );
        if name == "full" {
            assert!(recs[0].get("kl").is_some(), "β > 0 but no kl metric");
        }
        let exported = tensors(&dir.join("run/final/model.safetensors"));
        assert_eq!(
            exported.keys().collect::<Vec<_>>(),
            original.keys().collect::<Vec<_>>(),
            "{name}: export must have exactly the checkpoint's tensor names"
        );
        let changed: Vec<&String> = exported
            .iter()
            .filter(|(k, v)| original[*k] != **v)
            .map(|(k, _)| k)
            .collect();
        assert!(!changed.is_empty(), "{name}: no weight changed");
        if name == "lora" {
            // Only adapted projections move; norms and embeddings are frozen.
            assert!(
                changed.iter().all(|k| k.contains("proj")),
                "lora changed {changed:?}"
            );
        }
        CausalLm::from_pretrained(
            dir.join("run/final"),
            &burn::tensor::Device::flex(),
            LoadOptions::default(),
        )
        .unwrap();
    }
}

#[test]
fn bad_configs_are_errors_that_name_the_field() {
    let dir = toy_dir("bad");
    let cases: [(&str, &str, &str); 6] = [
        ("unknown key", "\n[train.grpo.loss]\nbetta = 0.1\n", "betta"),
        ("one completion", "", "train.sampling.n"),
        ("negative lr", "", "lr"),
        ("temperatures differ", "", "train.grpo.temperature"),
        ("bad sampler field", "", "ratio"),
        ("too many prompts", "", "prompts_per_step"),
    ];
    for (what, extra, needle) in cases {
        let mut path = toy_config(&dir, 4, extra);
        let mut text = std::fs::read_to_string(&path).unwrap();
        match what {
            "one completion" => text = text.replace("n = 8", "n = 1"),
            "negative lr" => text = text.replace("lr = 0.01", "lr = -0.01"),
            "temperatures differ" => text = text.replace("temperature = 1.0", "temperature = 0.7"),
            "bad sampler field" => {
                text = text.replace(
                    "kind = \"dps\"",
                    "kind = \"dps\"\npool = { kind = \"subset\", ratio = 0 }",
                )
            }
            "too many prompts" => {
                text = text.replace("prompts_per_step = 4", "prompts_per_step = 400")
            }
            _ => {}
        }
        path.set_file_name(format!("bad-{}.toml", what.replace(' ', "-")));
        std::fs::write(&path, text).unwrap();
        let err = rlft_err(&["train", "--dry-run", "--config", path.to_str().unwrap()]);
        assert!(
            err.contains(needle),
            "{what}: error does not name {needle}:\n{err}"
        );
    }
    // A malformed dataset line is reported with its line number; a missing model directory by
    // its config key.
    std::fs::write(
        dir.join("data.jsonl"),
        "{\"prompt\": \"ab\", \"answer\": \"a\"}\n{oops\n",
    )
    .unwrap();
    let err = rlft_err(&[
        "train",
        "--dry-run",
        "--config",
        toy_config(&dir, 4, "").to_str().unwrap(),
    ]);
    assert!(err.contains("data.jsonl:2:"), "{err}");
    let text = std::fs::read_to_string(dir.join("run.toml"))
        .unwrap()
        .replace("path = \"model\"", "path = \"nowhere\"");
    std::fs::write(dir.join("run.toml"), text).unwrap();
    let err = rlft_err(&[
        "train",
        "--dry-run",
        "--config",
        dir.join("run.toml").to_str().unwrap(),
    ]);
    assert!(err.contains("model.path"), "{err}");
}

#[test]
fn the_example_configs_in_the_repository_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/configs");
    let out = tmp("example-configs");
    let train = out.join("train");
    let printed = rlft_ok(&[
        "train",
        "--config",
        root.join("train.toml").to_str().unwrap(),
        "--out",
        train.to_str().unwrap(),
    ]);
    assert!(printed.trim().ends_with("summary.json"), "{printed}");
    let s = json(&train.join("summary.json"));
    assert_eq!(s["steps"], 4);
    assert!(s["eval_after"]["pass_at_k"]["4"].is_number(), "{s}");
    let sft = out.join("sft");
    rlft_ok(&[
        "sft",
        "--config",
        root.join("sft.toml").to_str().unwrap(),
        "--out",
        sft.to_str().unwrap(),
    ]);
    assert!(sft.join("final/model.safetensors").exists());
    for (name, steps) in [("dsrl", 4), ("try_again", 3)] {
        let dir = out.join(name);
        rlft_ok(&[
            "train",
            "--config",
            root.join(format!("{name}.toml")).to_str().unwrap(),
            "--out",
            dir.to_str().unwrap(),
        ]);
        let recs = jsonl(&dir.join("metrics.jsonl"));
        assert_eq!(recs.len(), steps, "{name}");
        if name == "dsrl" {
            let coefs: Vec<f64> = recs
                .iter()
                .map(|r| r["coef/grpo"].as_f64().unwrap())
                .collect();
            assert_eq!(coefs, [0.0, 0.0, 1.0, 1.0]);
        }
        assert!(dir.join("final/model.safetensors").exists(), "{name}");
    }
}

#[test]
fn a_run_killed_with_sigkill_resumes_to_the_uninterrupted_result() {
    let a = toy_dir("kill-a");
    let b = toy_dir("kill-b");
    let steps = 30;
    let cfg_a = toy_config(&a, steps, "");
    let cfg_b = toy_config(&b, steps, "");
    rlft_ok(&["train", "--config", cfg_a.to_str().unwrap()]);

    // SIGKILL the second run once it has logged a few steps, wherever it is (mid-step,
    // mid-checkpoint, mid-metrics line).
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rlft"))
        .args(["train", "--config", cfg_b.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let log = b.join("run/metrics.jsonl");
    let t0 = std::time::Instant::now();
    loop {
        let lines = std::fs::read_to_string(&log).map_or(0, |s| s.lines().count());
        if lines >= 7 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(t0.elapsed().as_secs() < 120, "no progress");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    let logged = std::fs::read_to_string(&log).map_or(0, |s| s.lines().count());
    assert!(logged < steps, "killed too late: {logged} steps logged");
    assert!(!b.join("run/final").exists());

    rlft_ok(&["train", "--config", cfg_b.to_str().unwrap()]);
    assert_eq!(
        timeless(jsonl(&a.join("run/metrics.jsonl"))),
        timeless(jsonl(&b.join("run/metrics.jsonl")))
    );
    assert!(
        tensors(&a.join("run/final/model.safetensors"))
            == tensors(&b.join("run/final/model.safetensors")),
        "the killed and resumed run exported different weights"
    );
}
