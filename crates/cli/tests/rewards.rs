//! `rlft train` with several `[[reward]]` functions: a verifier and a loopback HTTP reward
//! server, each one's mean logged per step as `reward/<name>`, `normalize_then_sum`, and the
//! config errors. (The `command` kind is tested in rlft-trainer's `reward_remote` test.)

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

use common::*;
use serde_json::{Value, json};

/// A loopback reward server scoring every item 0.5, for as long as the test process lives.
fn reward_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/reward", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            let body = loop {
                let Ok(n) = s.read(&mut chunk) else {
                    break None;
                };
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if buf.len() >= i + 4 + len {
                    break serde_json::from_slice::<Value>(&buf[i + 4..i + 4 + len]).ok();
                }
            };
            let Some(body) = body else { continue };
            let n = body["items"].as_array().map_or(0, Vec::len);
            let reply = json!({ "scores": vec![0.5; n] }).to_string();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    url
}

fn config(dir: &Path, rewards: &str, extra_top: &str) -> std::path::PathBuf {
    let cfg = format!(
        r#"
out = "run"
prompts_per_step = 4
{extra_top}

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
steps = 2
seed = 3
checkpoint_every = 0

[train.sampling]
n = 4
max_new_tokens = 1
temperature = 1.0

[train.grpo.optim]
lr = 0.01

{rewards}
"#
    );
    let path = dir.join("run.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

fn toy(name: &str) -> std::path::PathBuf {
    let dir = tmp(name);
    std::fs::create_dir_all(dir.join("model")).unwrap();
    toy_model(&dir.join("model"), 7);
    toy_data(&dir.join("data.jsonl"), 16);
    dir
}

fn metrics(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("run/metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn several_rewards_train_and_log_each_functions_mean() {
    let dir = toy("rewards_sum");
    let url = reward_server();
    let rewards = format!(
        r#"
[[reward]]
kind = "exact_match"
config = {{ sources = ["whole"] }}
name = "exact"

[[reward]]
kind = "http"
url = "{url}"
weight = 2.0
timeout_s = 10.0
"#
    );
    let cfg = config(&dir, &rewards, "");
    rlft_ok(&["train", "--config", cfg.to_str().unwrap()]);
    let lines = metrics(&dir);
    assert_eq!(lines.len(), 2);
    for m in &lines {
        let exact = m["reward/exact"].as_f64().unwrap();
        assert_eq!(m["reward/http"].as_f64().unwrap(), 0.5);
        // reward = 1·exact + 2·0.5 per completion; the uniform sampler trains on every
        // completion it scores, so the means agree.
        let reward = m["reward"].as_f64().unwrap();
        assert!((reward - (exact + 1.0)).abs() < 1e-5, "{m}");
        // `correct` still comes from [verifier].
        assert!(
            (m["accuracy"].as_f64().unwrap() - exact).abs() < 1e-9,
            "{m}"
        );
    }
    // The config as run records the entries.
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run/config.json")).unwrap())
            .unwrap();
    assert_eq!(saved["reward"][1]["kind"], "http");
    assert_eq!(saved["reward"][1]["weight"], 2.0);
}

#[test]
fn normalize_then_sum_trains_and_a_single_reward_table_is_accepted() {
    let dir = toy("rewards_gdpo");
    let rewards = r#"
[reward]
kind = "exact_match"
config = { sources = ["whole"] }
"#;
    let cfg = config(&dir, rewards, "reward_aggregation = \"normalize_then_sum\"");
    rlft_ok(&["train", "--config", cfg.to_str().unwrap()]);
    let lines = metrics(&dir);
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|m| m["reward/exact_match"].is_number()));
}

#[test]
fn bad_reward_configs_name_the_field() {
    let dir = toy("rewards_bad");
    let cases = [
        (
            "",
            "reward_aggregation = \"normalize_then_sum\"",
            "reward_aggregation",
        ),
        (
            "[[reward]]\nkind = \"http\"\nurl = \"http://127.0.0.1:1\"\nretires = 1\n",
            "",
            "retires",
        ),
        ("[[reward]]\nweight = 1.0\n", "", "reward.kind"),
        (
            "[[reward]]\nkind = \"math\"\nname = \"a\"\n[[reward]]\nkind = \"countdown\"\nname = \"a\"\n",
            "",
            "reward.name",
        ),
        (
            "[[reward]]\nkind = \"command\"\ncommand = []\n",
            "",
            "reward.command",
        ),
        (
            "[[reward]]\nkind = \"math\"\n[train.grpo.advantage]\nkind = \"rloo\"\n",
            "reward_aggregation = \"normalize_then_sum\"",
            "train.grpo.advantage",
        ),
    ];
    for (rewards, top, needle) in cases {
        let cfg = config(&dir, rewards, top);
        let err = rlft_err(&["train", "--dry-run", "--config", cfg.to_str().unwrap()]);
        assert!(err.contains(needle), "{needle}: {err}");
    }
}
