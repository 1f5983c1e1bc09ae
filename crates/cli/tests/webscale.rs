//! `rlft webscale run|merge|stats` end to end: the shipped fixture with the scripted model,
//! `rlft train` on its output, shards merged, a kill and resume against a loopback server,
//! and `rlft serve` (a random tiny model) as the LLM.

mod common;
#[path = "../../webscale/tests/common/server.rs"]
mod server;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use server::{Reply, StandIn, fixture_reply};

fn fixture_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../webscale/fixtures/webscale.toml")
}

fn read(dir: &Path, f: &str) -> String {
    std::fs::read_to_string(dir.join(f))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(f).display()))
}

#[test]
fn run_on_the_fixture_then_train_on_the_output() {
    let dir = tmp("webscale-run");
    let out = dir.join("out");
    let cfg = fixture_config();
    let plan = rlft_ok(&[
        "webscale",
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--dry-run",
    ]);
    let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
    assert_eq!(
        (plan["input_docs"].as_u64(), plan["llm_docs"].as_u64()),
        (Some(30), Some(26))
    );
    assert!(
        !out.join("dataset.jsonl").exists(),
        "a dry run writes nothing"
    );

    let stdout = rlft_ok(&[
        "webscale",
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(stdout.contains("159 model call(s)"), "{stdout}");
    for f in [
        "dataset.jsonl",
        "train.jsonl",
        "failures.jsonl",
        "stats.json",
        "manifest.json",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    assert_eq!(jsonl(&out.join("dataset.jsonl")).len(), 50);
    let stats = json(&out.join("stats.json"));
    assert_eq!(
        (stats["input_docs"].as_u64(), stats["records"].as_u64()),
        (Some(30), Some(50))
    );
    assert_eq!(json(&out.join("manifest.json"))["status"], "complete");
    let summary = rlft_ok(&["webscale", "stats", out.to_str().unwrap()]);
    assert!(summary.contains("input 30 docs: 23 accepted"), "{summary}");
    // A rerun is free.
    let again = rlft_ok(&[
        "webscale",
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(again.contains("0 model call(s), 159 cached"), "{again}");

    // `rlft train` reads train.jsonl as is, with the qa_match reward.
    let train_cfg = format!(
        r#"
out = "train-run"
prompts_per_step = 2

[model]
path = "{QWEN2}"

[data]
path = "{}"
format = "raw"

[verifier]
kind = "qa_match"

[sampler]
kind = "uniform"

[train]
steps = 2

[train.sampling]
n = 2
max_new_tokens = 2
temperature = 1.0

[train.grpo.optim]
lr = 0.001
"#,
        out.join("train.jsonl").display()
    );
    std::fs::write(dir.join("train.toml"), train_cfg).unwrap();
    rlft_ok(&[
        "train",
        "--config",
        dir.join("train.toml").to_str().unwrap(),
    ]);
    let metrics = jsonl(&dir.join("train-run/metrics.jsonl"));
    assert_eq!(metrics.len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shards_merge_to_the_single_run() {
    let dir = tmp("webscale-shards");
    let cfg = fixture_config();
    let cfg = cfg.to_str().unwrap();
    let whole = dir.join("whole");
    rlft_ok(&[
        "webscale",
        "run",
        "--config",
        cfg,
        "--out",
        whole.to_str().unwrap(),
    ]);
    let mut shards = Vec::new();
    for i in 0..3 {
        let d = dir.join(format!("shard-{i}"));
        rlft_ok(&[
            "webscale",
            "run",
            "--config",
            cfg,
            "--out",
            d.to_str().unwrap(),
            "--shard",
            &format!("{i}/3"),
        ]);
        shards.push(d);
    }
    let merged = dir.join("merged");
    let mut args = vec!["webscale", "merge", "--out", merged.to_str().unwrap()];
    // Out of order on purpose.
    for d in shards.iter().rev() {
        args.push(d.to_str().unwrap());
    }
    rlft_ok(&args);
    for f in [
        "dataset.jsonl",
        "train.jsonl",
        "failures.jsonl",
        "stats.json",
    ] {
        assert_eq!(read(&merged, f), read(&whole, f), "{f}");
    }
    assert_eq!(
        json(&merged.join("manifest.json"))["shards"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // The same shard twice is refused.
    let err = rlft_err(&[
        "webscale",
        "merge",
        "--out",
        dir.join("bad").to_str().unwrap(),
        shards[0].to_str().unwrap(),
        shards[0].to_str().unwrap(),
    ]);
    assert!(err.contains("appears twice"), "{err}");
    let err = rlft_err(&["webscale", "run", "--config", cfg, "--shard", "3/3"]);
    assert!(err.contains("3/3"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Writes a config for the fixture documents with every stage on `url`.
fn http_config(dir: &Path, url: &str, in_flight: usize) -> PathBuf {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../webscale/fixtures");
    let mut text = format!(
        "out = \"out\"\n[input]\npaths = [\"{}\"]\n[decontam]\nbenchmarks = [\"{}\"]\n[concurrency]\nmax_in_flight = {in_flight}\n",
        fixtures.join("docs.jsonl").display(),
        fixtures.join("bench.jsonl").display()
    );
    for stage in ["filter", "tagger", "generator", "checker"] {
        text.push_str(&format!(
            "[models.{stage}]\nmodel = \"scripted-{stage}\"\nbase_urls = [\"{url}\"]\nbackoff_initial_ms = 20\njitter_ms = 5\n"
        ));
    }
    let path = dir.join("http.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn killed_run_resumes_to_the_same_bytes() {
    let dir = tmp("webscale-kill");
    let clean = dir.join("clean");
    rlft_ok(&[
        "webscale",
        "run",
        "--config",
        fixture_config().to_str().unwrap(),
        "--out",
        clean.to_str().unwrap(),
    ]);
    let server = StandIn::start(
        "127.0.0.1:0",
        Arc::new(|_: usize, req: &serde_json::Value| {
            Reply::Slow(Duration::from_millis(15), fixture_reply(req))
        }),
    );
    let cfg = http_config(&dir, &server.base_url(), 2);
    let out = dir.join("out");
    let cache = out.join("cache/replies.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rlft"))
        .args(["webscale", "run", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(&cache).map_or(0, |s| s.lines().count()) < 40 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        assert!(t0.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.join("manifest.json").exists(), "killed before writing");
    let cached = std::fs::read_to_string(&cache).unwrap().lines().count();
    assert!(cached < 159);
    let before = server.received.load(std::sync::atomic::Ordering::SeqCst);
    let stdout = rlft_ok(&["webscale", "run", "--config", cfg.to_str().unwrap()]);
    let made = server.received.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert!(
        made <= 159 - cached + 2,
        "resume made {made} calls with {cached} cached: {stdout}"
    );
    for f in [
        "dataset.jsonl",
        "train.jsonl",
        "failures.jsonl",
        "stats.json",
        "manifest.json",
    ] {
        assert_eq!(read(&out, f), read(&clean, f), "{f}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn rlft_serve_as_the_llm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rlft"))
        .args(["serve", "--model", QWEN2, "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _child = Kill(child);
    let mut url = String::new();
    BufReader::new(stdout).read_line(&mut url).unwrap();
    let url = url.trim().to_string();

    let dir = tmp("webscale-serve");
    // Three documents, to keep the tiny model's decoding short.
    let docs: Vec<String> = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../webscale/fixtures/docs.jsonl"),
    )
    .unwrap()
    .lines()
    .filter(|l| l.contains("\"d0"))
    .take(3)
    .map(str::to_string)
    .collect();
    std::fs::write(dir.join("docs.jsonl"), docs.join("\n") + "\n").unwrap();
    let mut text = "out = \"out\"\n[input]\npaths = [\"docs.jsonl\"]\n".to_string();
    for stage in ["filter", "tagger", "generator", "checker"] {
        text.push_str(&format!("[models.{stage}]\nmodel = \"qwen2\"\nbase_urls = [\"{url}\"]\nmax_tokens = 8\nmax_retries = 2\nbackoff_initial_ms = 50\n"));
    }
    std::fs::write(dir.join("serve.toml"), text).unwrap();
    let cfg = dir.join("serve.toml");
    let stdout = rlft_ok(&["webscale", "run", "--config", cfg.to_str().unwrap()]);
    let out = dir.join("out");
    let stats = json(&out.join("stats.json"));
    let failures = jsonl(&out.join("failures.jsonl"));
    let records = jsonl(&out.join("dataset.jsonl"));
    // The tiny test model has a 128-token context, shorter than any stage prompt, so
    // `rlft serve` refuses each request with a 400 naming the context; a random model could
    // not write JSON verdicts anyway. The accounting must still balance, and every rejection
    // say why with the server's own message, as a terminal (not retried) failure.
    let rejected: u64 = stats["rejected_docs"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(stats["input_docs"].as_u64(), Some(3));
    assert_eq!(stats["accepted_docs"].as_u64().unwrap() + rejected, 3);
    assert_eq!(records.len() as u64, stats["records"].as_u64().unwrap());
    assert_eq!(failures.len(), 3, "{stdout}");
    for f in &failures {
        let (reason, detail) = (f["reason"].as_str().unwrap(), f["detail"].as_str().unwrap());
        match reason {
            "api_error" => {
                assert!(
                    detail.contains("400") && detail.contains("context"),
                    "{detail}"
                );
                assert_eq!(f["retryable"], false);
            }
            "parse_error" => assert!(detail.contains(':'), "{detail}"),
            other => panic!("unexpected reason {other}: {f}"),
        }
    }
    assert!(stdout.contains("model call(s)"), "{stdout}");
    // The replies are cached: a rerun asks the server nothing.
    let again = rlft_ok(&["webscale", "run", "--config", cfg.to_str().unwrap()]);
    assert!(again.contains("\n0 model call(s)"), "{again}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `backend = "local"`: the tiny checkpoint in process, shared by the four stages. Its
/// replies are a few random tokens, which no parser accepts, so every document fails at S2
/// with the reason and the reply recorded (terminal), and the accounting balances.
#[test]
fn local_backend_runs_in_process() {
    let dir = tmp("webscale-local");
    let docs: Vec<String> = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../webscale/fixtures/docs.jsonl"),
    )
    .unwrap()
    .lines()
    .filter(|l| l.contains("\"d1"))
    .take(2)
    .map(str::to_string)
    .collect();
    std::fs::write(dir.join("docs.jsonl"), docs.join("\n") + "\n").unwrap();
    let mut text = "out = \"out\"\n[input]\npaths = [\"docs.jsonl\"]\n".to_string();
    for stage in ["filter", "tagger", "generator", "checker"] {
        text.push_str(&format!(
            "[models.{stage}]\nbackend = \"local\"\ncheckpoint = \"{QWEN2}\"\nmax_tokens = 4\n"
        ));
    }
    std::fs::write(dir.join("local.toml"), text).unwrap();
    rlft_ok(&[
        "webscale",
        "run",
        "--config",
        dir.join("local.toml").to_str().unwrap(),
    ]);
    let out = dir.join("out");
    let stats = json(&out.join("stats.json"));
    let rejected: u64 = stats["rejected_docs"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(stats["accepted_docs"].as_u64().unwrap() + rejected, 2);
    for f in jsonl(&out.join("failures.jsonl")) {
        assert!(
            matches!(f["reason"].as_str(), Some("api_error" | "parse_error")),
            "{f}"
        );
        assert_eq!(f["retryable"], false, "{f}");
        assert!(!f["detail"].as_str().unwrap().is_empty());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
