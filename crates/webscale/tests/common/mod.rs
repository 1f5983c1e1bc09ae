//! Helpers shared by the rlft-webscale tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rlft_webscale::{LLM_STAGES, Models, ScriptedModel, WebscaleConfig, fixture_model};

/// The fixture directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A fresh temporary directory.
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rlft-webscale-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The shipped fixture config, writing to `out`.
pub fn fixture_config(out: &Path) -> WebscaleConfig {
    let mut c = WebscaleConfig::from_file(&fixtures().join("webscale.toml")).unwrap();
    c.out = out.to_path_buf();
    c
}

/// The fixture script's four models, and handles to count their calls.
pub fn fixture_models() -> (Models, Vec<Arc<ScriptedModel>>) {
    let m: Vec<Arc<ScriptedModel>> = LLM_STAGES
        .iter()
        .map(|s| Arc::new(fixture_model(s)))
        .collect();
    (
        Models {
            filter: m[0].clone(),
            tagger: m[1].clone(),
            generator: m[2].clone(),
            checker: m[3].clone(),
        },
        m,
    )
}

/// Total calls of `models`.
pub fn calls(models: &[Arc<ScriptedModel>]) -> Vec<usize> {
    models.iter().map(|m| m.calls()).collect()
}

/// The bytes of every output file of a run directory (the cache excluded).
pub fn output_bytes(dir: &Path) -> Vec<(String, String)> {
    [
        "dataset.jsonl",
        "train.jsonl",
        "failures.jsonl",
        "stats.json",
        "manifest.json",
    ]
    .iter()
    .map(|f| {
        (
            f.to_string(),
            std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}")),
        )
    })
    .collect()
}

/// Asserts two runs wrote the same bytes, naming the first file and line that differ.
pub fn assert_same(a: &[(String, String)], b: &[(String, String)], what: &str) {
    for ((name, x), (_, y)) in a.iter().zip(b) {
        if x != y {
            let (i, (lx, ly)) = x
                .lines()
                .zip(y.lines())
                .enumerate()
                .find(|(_, (p, q))| p != q)
                .unwrap_or((0, ("<length>", "<length>")));
            panic!(
                "{what}: {name} differs at line {}:\n{}\n{}",
                i + 1,
                &lx[..lx.len().min(600)],
                &ly[..ly.len().min(600)]
            );
        }
    }
}
