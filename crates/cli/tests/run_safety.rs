//! Run safety (issue 18): a run directory is fingerprinted (config, model, data) and a
//! changed setup is never resumed silently; `config.json` is written only after that check;
//! one process per run directory; `out` never inside the model; NaN stops a run before any
//! checkpoint or export; Ctrl-C finishes the step, checkpoints and says how to resume; a torn
//! last metrics line is dropped on resume.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

fn toy_dir(name: &str) -> PathBuf {
    let dir = tmp(name);
    std::fs::create_dir_all(dir.join("model")).unwrap();
    toy_model(&dir.join("model"), 7);
    toy_data(&dir.join("data.jsonl"), 24);
    dir
}

/// A toy GRPO config (uniform sampler, checkpoint every step) in `dir/name`.
fn config(dir: &Path, name: &str, out: &str, steps: usize, lr: f64) -> PathBuf {
    let cfg = format!(
        r#"
out = "{out}"
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
lr = {lr}
"#
    );
    let path = dir.join(name);
    std::fs::write(&path, cfg).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_changed_config_or_data_is_refused_listing_what_changed_until_forced_or_restarted() {
    let dir = toy_dir("fp");
    let a = config(&dir, "a.toml", "run", 4, 0.01);
    rlft_ok(&["train", "--config", s(&a), "--max-steps", "2"]);
    let run = dir.join("run");
    let config_json = std::fs::read(run.join("config.json")).unwrap();

    // Another learning rate: refused, naming the key and both values, config.json untouched.
    let b = config(&dir, "b.toml", "run", 4, 0.02);
    let err = rlft_err(&["train", "--config", s(&b)]);
    assert!(
        err.contains("train.grpo.optim.lr: 0.01 → 0.02") && err.contains("--restart"),
        "{err}"
    );
    assert_eq!(std::fs::read(run.join("config.json")).unwrap(), config_json);
    assert_eq!(json(&run.join("latest.json"))["step"], 2);

    // Changed data: refused, naming it.
    let data = std::fs::read_to_string(dir.join("data.jsonl")).unwrap();
    std::fs::write(dir.join("data.jsonl"), data.replace("\"a\"}", "\"b\"}")).unwrap();
    let err = rlft_err(&["train", "--config", s(&a)]);
    assert!(err.contains("data: contents changed"), "{err}");
    std::fs::write(dir.join("data.jsonl"), &data).unwrap();

    // --force-resume resumes anyway and says what it accepted.
    let out = rlft(&[
        "train",
        "--config",
        s(&b),
        "--force-resume",
        "--max-steps",
        "1",
    ]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--force-resume: resuming"), "{stderr}");
    assert_eq!(json(&run.join("latest.json"))["step"], 3);
    assert_eq!(
        json(&run.join("config.json"))["train"]["grpo"]["optim"]["lr"],
        0.02
    );

    // --restart starts over with the new setup; an unchanged setup then resumes silently.
    rlft_ok(&["train", "--config", s(&a), "--restart", "--max-steps", "1"]);
    assert_eq!(json(&run.join("latest.json"))["step"], 1);
    assert_eq!(jsonl(&run.join("metrics.jsonl")).len(), 1);
    rlft_ok(&["train", "--config", s(&a)]);
    assert_eq!(jsonl(&run.join("metrics.jsonl")).len(), 4);
}

#[test]
fn out_equal_to_or_inside_the_model_is_refused_and_the_model_stays_intact() {
    let dir = toy_dir("inside");
    let before = std::fs::read(dir.join("model/config.json")).unwrap();
    for out in ["model", "model/run", "./model/../model"] {
        let cfg = config(&dir, "in.toml", out, 2, 0.01);
        for extra in [&[][..], &["--dry-run"][..]] {
            let mut args = vec!["train", "--config", s(&cfg)];
            args.extend_from_slice(extra);
            let err = rlft_err(&args);
            assert!(
                err.contains("inside (or equal to) the model directory"),
                "{err}"
            );
        }
    }
    assert_eq!(
        std::fs::read(dir.join("model/config.json")).unwrap(),
        before
    );
    assert!(!dir.join("model/run").exists() && !dir.join("model/metrics.jsonl").exists());
}

#[test]
fn a_second_run_on_a_locked_directory_is_refused() {
    let dir = toy_dir("lock");
    let cfg = config(&dir, "a.toml", "run", 200, 0.01);
    let mut first = Command::new(env!("CARGO_BIN_EXE_rlft"))
        .args(["train", "--config", s(&cfg)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let log = dir.join("run/metrics.jsonl");
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(&log).map_or(0, |s| s.lines().count()) < 1 {
        assert!(first.try_wait().unwrap().is_none(), "the first run ended");
        assert!(t0.elapsed().as_secs() < 300, "no progress");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let err = rlft_err(&["train", "--config", s(&cfg)]);
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(
        err.contains("is in use by another rlft process") && err.contains("pid"),
        "{err}"
    );
    // The lock dies with its process, however it ends: a SIGKILLed run's directory resumes.
    rlft_ok(&["train", "--config", s(&cfg), "--max-steps", "1"]);
}

fn sft_dir(name: &str, weight: f64) -> PathBuf {
    let dir = tmp(name);
    std::fs::create_dir_all(dir.join("model")).unwrap();
    toy_model(&dir.join("model"), 11);
    let lines: String = ["a", "ab", "ba", "bb"]
        .iter()
        .map(|p| {
            format!(
                "{}\n",
                serde_json::json!({"prompt": p, "completion": "bab", "w": weight})
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
weight_field = "w"

[sft]
epochs = 2
batch_size = 2
checkpoint_every = 1

[sft.optim]
lr = 0.01
"#,
    )
    .unwrap();
    dir
}

#[test]
fn a_non_finite_loss_stops_sft_before_any_checkpoint_or_export_unless_skipped() {
    // A weight near f32::MAX makes the weighted loss overflow to infinity.
    let dir = sft_dir("nan", 3.0e38);
    let cfg = dir.join("sft.toml");
    let err = rlft_err(&["sft", "--config", s(&cfg)]);
    assert!(
        err.contains("non-finite")
            && err.contains("optimiser step 0")
            && err.contains("--nan-policy skip-step"),
        "{err}"
    );
    let run = dir.join("run");
    assert!(!run.join("final").exists() && !run.join("latest.json").exists());
    assert!(!run.join("ckpt-000001").exists());

    // skip-step: every step is skipped, the run finishes, and the export is the model as it was.
    rlft_ok(&["sft", "--config", s(&cfg), "--nan-policy", "skip-step"]);
    let recs = jsonl(&run.join("metrics.jsonl"));
    assert_eq!(recs.len(), 4);
    assert!(
        recs.iter().all(|r| r["nonfinite_skipped"] == 1.0),
        "{recs:?}"
    );
    assert_eq!(
        tensors(&run.join("final/model.safetensors")),
        tensors(&dir.join("model/model.safetensors"))
    );
    // Weights that overflow f32 are refused at load, naming the line.
    let dir = sft_dir("nan-f32", 1e300);
    let err = rlft_err(&["sft", "--config", s(&dir.join("sft.toml"))]);
    assert!(
        err.contains("sft.jsonl:1:") && err.contains("`w` must be finite"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn sigint_finishes_the_step_checkpoints_and_says_how_to_resume() {
    let dir = toy_dir("sigint");
    let cfg = config(&dir, "a.toml", "run", 40, 0.01);
    let reference = config(&dir, "ref.toml", "ref", 40, 0.01);
    let child = Command::new(env!("CARGO_BIN_EXE_rlft"))
        .args(["train", "--config", s(&cfg)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = dir.join("run/metrics.jsonl");
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(&log).map_or(0, |s| s.lines().count()) < 2 {
        assert!(t0.elapsed().as_secs() < 300, "no progress");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted: finished step")
            && stderr.contains("run the same command again to resume"),
        "{stderr}"
    );
    let step = json(&dir.join("run/latest.json"))["step"].as_u64().unwrap() as usize;
    assert!((2..40).contains(&step), "checkpointed at step {step}");
    assert_eq!(jsonl(&log).len(), step, "the last step is checkpointed");
    // Resuming finishes exactly as an uninterrupted run does.
    rlft_ok(&["train", "--config", s(&cfg)]);
    rlft_ok(&["train", "--config", s(&reference)]);
    assert_eq!(
        timeless(jsonl(&log)),
        timeless(jsonl(&dir.join("ref/metrics.jsonl")))
    );
    assert_eq!(
        tensors(&dir.join("run/final/model.safetensors")),
        tensors(&dir.join("ref/final/model.safetensors"))
    );
}

#[test]
fn a_torn_last_metrics_line_is_dropped_on_resume() {
    let dir = toy_dir("torn");
    let cfg = config(&dir, "a.toml", "run", 4, 0.01);
    rlft_ok(&["train", "--config", s(&cfg), "--max-steps", "2"]);
    let log = dir.join("run/metrics.jsonl");
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str("{\"step\":2,\"reward\":0.1");
    std::fs::write(&log, text).unwrap();
    rlft_ok(&["train", "--config", s(&cfg)]);
    let recs = jsonl(&log);
    assert_eq!(
        recs.iter()
            .map(|r| r["step"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
    // The exported weights have the mode of the other files (not a private 0600).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let fin = dir.join("run/final");
        assert_eq!(
            mode(&fin.join("model.safetensors")),
            mode(&fin.join("config.json"))
        );
        assert_eq!(
            mode(&fin.join("model.safetensors")),
            mode(&dir.join("run/summary.json"))
        );
    }
    // A corrupt line that is not the last is an error naming its line.
    let cfg2 = config(&dir, "b.toml", "run2", 4, 0.01);
    rlft_ok(&["train", "--config", s(&cfg2), "--max-steps", "2"]);
    let log2 = dir.join("run2/metrics.jsonl");
    let text = std::fs::read_to_string(&log2).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&log2, format!("{{\"step\":0,\n{}\n", lines[1])).unwrap();
    let err = rlft_err(&["train", "--config", s(&cfg2)]);
    assert!(err.contains("metrics.jsonl:1:"), "{err}");
}
