//! Helpers shared by the CLI tests: run the binary, build a toy Hugging Face checkpoint.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use burn::tensor::Device;
use rlft_models::{CausalLm, CharTokenizer, ExportOptions, qwen2};

/// The Qwen2 fixture of rlft-models (transformers-made, random weights, small BPE).
pub const QWEN2: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../models/tests/fixtures/qwen2"
);

/// A fresh temporary directory for `name`.
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rlft-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `rlft ARGS`.
pub fn rlft(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rlft"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs `rlft ARGS` and fails the test with its stderr unless it succeeds; returns stdout.
pub fn rlft_ok(args: &[&str]) -> String {
    let out = rlft(args);
    assert!(
        out.status.success(),
        "rlft {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `rlft ARGS`, expects failure, returns stderr.
pub fn rlft_err(args: &[&str]) -> String {
    let out = rlft(args);
    assert!(
        !out.status.success(),
        "rlft {args:?} succeeded but should have failed"
    );
    String::from_utf8(out.stderr).unwrap()
}

/// A toy checkpoint in `dir`: character tokenizer over "ab" (6 ids with the specials) and a
/// tiny Qwen2 initialised like transformers does; every next-token probability starts near
/// 1/6.
pub fn toy_model(dir: &Path, seed: u64) {
    // The device RNG is global: tests running in parallel must not interleave seed and init.
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let chars = CharTokenizer::new("ab");
    chars.save(dir).unwrap();
    let mut cfg = qwen2::tiny(chars.vocab_size());
    cfg.eos_token_ids = vec![0];
    cfg.pad_token_id = Some(0);
    let dev = Device::flex();
    dev.seed(seed);
    CausalLm::new(&cfg, &dev)
        .init_normal(0.02)
        .save_pretrained(dir, ExportOptions::default())
        .unwrap();
}

/// `count` prompts over "ab" (the binary digits of i) with gold answer "a", as JSONL.
pub fn toy_data(path: &Path, count: usize) {
    let lines: Vec<String> = (0..count)
        .map(|i| {
            let p: String = format!("{:b}", i + 1)
                .chars()
                .map(|c| if c == '1' { 'a' } else { 'b' })
                .collect();
            serde_json::json!({ "id": format!("p{i}"), "prompt": p, "answer": "a" }).to_string()
        })
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// Reads a JSON file.
pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Reads a JSONL file.
pub fn jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Metrics lines without the wall-clock fields, which no two runs share.
pub fn timeless(v: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    v.into_iter()
        .map(|mut r| {
            r.as_object_mut()
                .unwrap()
                .retain(|k, _| !k.contains("per_s") && k != "seconds");
            r
        })
        .collect()
}

/// The tensors of a safetensors file by name (the header's key order is not fixed).
pub fn tensors(path: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(n, v)| (n, v.data().to_vec()))
        .collect()
}

/// Starts `rlft args`, SIGKILLs it once `log` has at least `lines` lines, and checks that it
/// died before logging `total` lines.
pub fn kill_after(args: &[&str], log: &Path, lines: usize, total: usize) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rlft"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    loop {
        let n = std::fs::read_to_string(log).map_or(0, |s| s.lines().count());
        if n >= lines {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(t0.elapsed().as_secs() < 300, "no progress");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    assert!(!child.wait().unwrap().success());
    let n = std::fs::read_to_string(log).map_or(0, |s| s.lines().count());
    assert!(n < total, "killed too late: {n} of {total} lines logged");
}
