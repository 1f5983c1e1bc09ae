//! `rlft drift`: collect → train → eval on the toy checkpoint, resumable collection, dry runs
//! and config errors.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let cfg = format!(
        r#"
out = "run"

[model]
path = "model"

[data]
path = "data.jsonl"
test_fraction = 0.25

[verifier]
kind = "exact_match"
config = {{ sources = ["whole"] }}

[environment]
max_turns = 3
turn_format = "free"
system_prompt = "b"

[collect]
k = 4
max_turns = 3
prompts_per_shard = 4
sampling = {{ max_new_tokens = 2, temperature = 1.0 }}

[train]
sft = {{ batch_size = 8, optim = {{ lr = 1e-3 }}, shuffle = false, checkpoint_every = 2 }}

[eval]
max_new_tokens = 2
{extra}
"#
    );
    let path = dir.join("drift.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

fn setup(name: &str, extra: &str) -> (PathBuf, String) {
    let dir = tmp(name);
    std::fs::create_dir_all(dir.join("model")).unwrap();
    toy_model(&dir.join("model"), 3);
    toy_data(&dir.join("data.jsonl"), 16);
    let cfg = write_config(&dir, extra);
    (dir, cfg.to_string_lossy().into_owned())
}

fn shards(dir: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn run_collects_trains_and_evaluates_and_a_stopped_collection_resumes() {
    let (dir, cfg) = setup("drift-run", "");
    // Dry run: checks everything, writes nothing.
    rlft_ok(&["drift", "run", "--config", &cfg, "--dry-run"]);
    assert!(!dir.join("run/collect").exists());

    // Stop after one shard, then finish: the same shards as an uninterrupted collection.
    rlft_ok(&["drift", "collect", "--config", &cfg, "--max-shards", "1"]);
    assert_eq!(shards(&dir.join("run/collect")).len(), 1);
    let out = rlft_ok(&["drift", "run", "--config", &cfg]);
    assert!(out.trim().ends_with("eval.json"), "{out}");
    let whole = tmp("drift-run-whole");
    rlft_ok(&[
        "drift",
        "collect",
        "--config",
        &cfg,
        "--out",
        whole.to_str().unwrap(),
    ]);
    let resumed = shards(&dir.join("run/collect"));
    assert!(resumed.len() >= 3);
    assert_eq!(resumed, shards(&whole.join("collect")));

    // Rows in DRIFT's shape.
    let rows = jsonl(&dir.join("run/collect/shard-000000.jsonl"));
    assert_eq!(rows.len(), 16);
    for key in [
        "prompt_id",
        "gold",
        "messages",
        "turn_rewards",
        "t_star",
        "answer_norms",
        "format_penalty",
    ] {
        assert!(rows[0].get(key).is_some(), "missing {key}");
    }
    assert!(rows[0]["turn_rewards"].get("t3").is_some());

    assert!(dir.join("run/train/final/model.safetensors").exists());
    let eval = json(&dir.join("run/eval.json"));
    for who in ["reference", "trained"] {
        let m = eval[who]["multi_at"].as_array().unwrap();
        assert_eq!(m.len(), 3);
        assert!(eval[who]["repeat_rate"].as_f64().unwrap() >= 0.0);
    }
}

#[test]
fn bad_settings_are_refused_before_any_work() {
    let (dir, cfg) = setup("drift-bad", "[weights]\nbeta = 0.0\n");
    let err = rlft_err(&["drift", "run", "--config", &cfg, "--dry-run"]);
    assert!(err.contains("weights.beta"), "{err}");
    assert!(!dir.join("run").exists());
    let (_, cfg) = setup("drift-bad-k", "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("k = 4", "k = 0");
    std::fs::write(&cfg, text).unwrap();
    let err = rlft_err(&["drift", "collect", "--config", &cfg, "--dry-run"]);
    assert!(err.contains("collect.k"), "{err}");
    let (_, cfg) = setup("drift-bad-key", "[weights]\nbeta_typo = 1.0\n");
    let err = rlft_err(&["drift", "train", "--config", &cfg, "--dry-run"]);
    assert!(err.contains("beta_typo"), "{err}");
}

/// SIGKILLs `rlft drift collect` once `dir` holds `shards` shard files; false if it had
/// already finished.
fn kill_collect_after(cfg: &str, dir: &Path, shards: usize) -> bool {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rlft"))
        .args(["drift", "collect", "--config", cfg])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    loop {
        let n = std::fs::read_dir(dir).map_or(0, |d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("shard-"))
            })
            .count()
        });
        if n >= shards {
            break;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        assert!(t0.elapsed().as_secs() < 300, "no progress");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    child.kill().unwrap();
    !child.wait().unwrap().success()
}

#[test]
fn a_collection_killed_at_several_points_resumes_to_the_uninterrupted_output() {
    let (dir, cfg) = setup("drift-kill", "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("prompts_per_shard = 4", "prompts_per_shard = 1")
        .replace(
            "max_new_tokens = 2, temperature",
            "max_new_tokens = 6, temperature",
        );
    std::fs::write(&cfg, text).unwrap();
    let whole = tmp("drift-kill-whole");
    rlft_ok(&[
        "drift",
        "collect",
        "--config",
        &cfg,
        "--out",
        whole.to_str().unwrap(),
    ]);
    let reference = shards(&whole.join("collect"));
    assert!(reference.len() >= 8, "{}", reference.len());
    let collect_dir = dir.join("run/collect");
    let mut killed = 0;
    for at in [1, 4, 7] {
        killed += usize::from(kill_collect_after(&cfg, &collect_dir, at));
    }
    assert!(killed > 0, "every run finished before it could be killed");
    rlft_ok(&["drift", "collect", "--config", &cfg]);
    assert_eq!(shards(&collect_dir), reference);
}

#[test]
fn the_example_config_runs_end_to_end_in_full_prompt_mode() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/configs");
    let cfg = root.join("drift.toml");
    let cfg = cfg.to_str().unwrap();
    let out = tmp("drift-example");
    let out_s = out.to_str().unwrap();
    rlft_ok(&["drift", "run", "--config", cfg, "--out", out_s, "--dry-run"]);
    let printed = rlft_ok(&["drift", "run", "--config", cfg, "--out", out_s]);
    assert!(printed.trim().ends_with("eval.json"), "{printed}");
    let rows: Vec<serde_json::Value> = shards(&out.join("collect"))
        .iter()
        .flat_map(|(_, text)| {
            text.lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    // 24 training prompts (32 lines, a quarter held out by hash) × K = 4.
    assert!(rows.len() >= 40, "{} rows", rows.len());
    let mut feedback = 0;
    for row in &rows {
        let msgs = row["messages"].as_array().unwrap();
        assert_eq!(msgs[0]["content"], "You're a helpful assistant. ");
        let first = msgs[1]["content"].as_str().unwrap();
        assert!(
            first.starts_with(rlft_tasks::DRIFT_INSTRUCTION)
                && first.contains("\nTurn 1:\nState:\n"),
            "{first}"
        );
        for m in msgs.iter().skip(2).filter(|m| m["role"] == "user") {
            let text = m["content"].as_str().unwrap();
            assert!(text.starts_with("Reward:\n"), "{text}");
            feedback += 1;
        }
    }
    assert!(
        feedback > 0,
        "a random policy must get feedback at least once"
    );
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("eval.json")).unwrap()).unwrap();
    assert!(eval.to_string().contains("multi"), "{eval}");
}
