//! Input hygiene from the command line (issue 18): a data file without newlines is an error
//! naming the line, a UTF-8 BOM is accepted in data and configs, invalid UTF-8 is named by
//! line, `--dry-run` catches every config value a run would reject, and the demo checks its
//! flags before the SFT warm start.

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

fn config(dir: &Path, data: &str, extra: &str) -> PathBuf {
    let cfg = format!(
        r#"
out = "run"
prompts_per_step = 4

[model]
path = "model"

[data]
path = "{data}"
format = "raw"

[verifier]
kind = "exact_match"

[train]
steps = 2

[train.sampling]
n = 4
max_new_tokens = 1
{extra}
"#
    );
    let path = dir.join("run.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[cfg(unix)]
#[test]
fn a_data_file_without_newlines_is_an_error_naming_line_1() {
    let dir = toy_dir("devzero");
    let cfg = config(&dir, "/dev/zero", "");
    let t0 = std::time::Instant::now();
    let err = rlft_err(&["train", "--config", s(&cfg), "--dry-run"]);
    assert!(
        err.contains("/dev/zero") && err.contains("line 1 is longer than 67108864 bytes"),
        "{err}"
    );
    assert!(t0.elapsed().as_secs() < 60);
    // A config that never ends is capped too.
    let err = rlft_err(&["train", "--config", "/dev/zero", "--dry-run"]);
    assert!(err.contains("larger than"), "{err}");
}

#[test]
fn a_bom_is_accepted_and_invalid_utf8_is_named_by_line() {
    let dir = toy_dir("bom");
    let data = std::fs::read(dir.join("data.jsonl")).unwrap();
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(&data);
    std::fs::write(dir.join("bom.jsonl"), &bom).unwrap();
    let cfg = config(&dir, "bom.jsonl", "");
    // The config itself with a BOM, too.
    let mut text = b"\xEF\xBB\xBF".to_vec();
    text.extend_from_slice(&std::fs::read(&cfg).unwrap());
    std::fs::write(&cfg, text).unwrap();
    rlft_ok(&["train", "--config", s(&cfg), "--dry-run"]);

    let mut bad = data.clone();
    let third = bad
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(1)
        .unwrap()
        .0;
    bad.insert(third + 3, 0xFF);
    std::fs::write(dir.join("bad.jsonl"), &bad).unwrap();
    let cfg = config(&dir, "bad.jsonl", "");
    let err = rlft_err(&["train", "--config", s(&cfg), "--dry-run"]);
    assert!(err.contains("line 3 is not valid UTF-8"), "{err}");
}

#[test]
fn dry_run_catches_every_rejected_generation_setting() {
    let dir = toy_dir("dryrun");
    for (extra, needle) in [
        (
            "max_new_tokens = 0",
            "train.sampling.max_new_tokens: must be ≥ 1, got 0",
        ),
        (
            "top_p = 1.5",
            "train.sampling.top_p: must be in (0, 1], got 1.5",
        ),
        (
            "min_p = 1.5",
            "train.sampling.min_p: must be in [0, 1], got 1.5",
        ),
        (
            "[engine]\nmax_batch_rows = 0",
            "engine.max_batch_rows: must be at least 1, got 0",
        ),
    ] {
        // `max_new_tokens = 0` replaces the config's own line.
        let extra_fixed = extra.replace("max_new_tokens = 0", "");
        let mut cfg_text =
            std::fs::read_to_string(config(&dir, "data.jsonl", &extra_fixed)).unwrap();
        if extra.starts_with("max_new_tokens") {
            cfg_text = cfg_text.replace("max_new_tokens = 1", "max_new_tokens = 0");
        }
        let cfg = dir.join("run.toml");
        std::fs::write(&cfg, cfg_text).unwrap();
        let err = rlft_err(&["train", "--config", s(&cfg), "--dry-run"]);
        assert!(err.contains(needle), "{extra}: {err}");
        assert!(!dir.join("run").exists(), "a dry run writes nothing");
    }
}

#[test]
fn the_demo_checks_its_flags_before_the_warm_start() {
    let dir = tmp("demo-flags");
    for (flags, needle) in [
        (&["--batch", "0"][..], "--batch must be ≥ 1"),
        (&["--k", "1"][..], "--k ≥ 2"),
        (
            &["--batch", "500", "--problems", "100"][..],
            "--batch 500 is more than the",
        ),
        (
            &["--temperature", "0"][..],
            "--temperature: must be finite and > 0",
        ),
    ] {
        let out = dir.join("out");
        let mut args = vec!["demo", "--out", s(&out), "--sft-steps", "100000"];
        args.extend_from_slice(flags);
        let t0 = std::time::Instant::now();
        let err = rlft_err(&args);
        assert!(err.contains(needle), "{flags:?}: {err}");
        // 100000 SFT steps would take hours: the check came first.
        assert!(t0.elapsed().as_secs() < 60, "{flags:?} was checked late");
        assert!(!err.contains("SFT warm start"), "{err}");
    }
}
