//! `rlft sft`: a toy checkpoint learns a fixed reply in the chat format, exports, and
//! malformed lines are named.

mod common;

use common::*;
use rlft_models::{CausalLm, ChatTokenizer, GreedyConfig, LoadOptions, greedy};

fn setup(name: &str, lines: &str) -> std::path::PathBuf {
    let dir = tmp(name);
    std::fs::create_dir_all(dir.join("model")).unwrap();
    toy_model(&dir.join("model"), 11);
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
epochs = 20
batch_size = 4

[sft.optim]
lr = 0.01
"#,
    )
    .unwrap();
    dir
}

#[test]
fn sft_teaches_a_reply_and_exports_it() {
    let lines: String = ["a", "ab", "ba", "bb", "aab", "bab", "abb", "bba"]
        .iter()
        .map(|p| {
            format!(
                "{}\n",
                serde_json::json!({"prompt": p, "completion": "bab", "w": 1.0})
            )
        })
        .collect();
    let dir = setup("sft", &lines);
    let printed = rlft_ok(&["sft", "--config", dir.join("sft.toml").to_str().unwrap()]);
    assert!(printed.trim().ends_with("summary.json"), "{printed}");
    let s = json(&dir.join("run/summary.json"));
    assert_eq!(s["examples"], 8);
    assert_eq!(s["steps"], 40);
    let (first, last) = (
        s["nll_first"].as_f64().unwrap(),
        s["nll_last"].as_f64().unwrap(),
    );
    assert!(last < 0.1 * first, "nll {first} → {last}");
    assert_eq!(jsonl(&dir.join("run/metrics.jsonl")).len(), 40);
    let fin = dir.join("run/final");
    let m = CausalLm::from_pretrained(&fin, &burn::tensor::Device::flex(), LoadOptions::default())
        .unwrap();
    let tok = ChatTokenizer::from_dir(&fin).unwrap();
    let out = greedy(
        &m,
        &[tok
            .encode(
                &tok.apply_chat_template(
                    &[rlft_models::ChatMessage::new("user", "abab")],
                    &rlft_models::ChatTemplateOptions {
                        add_generation_prompt: true,
                        ..Default::default()
                    },
                )
                .unwrap(),
                false,
            )
            .unwrap()],
        &GreedyConfig {
            max_new_tokens: 4,
            eos_token_ids: vec![0],
            pad_token_id: 0,
        },
    )
    .unwrap();
    assert_eq!(tok.decode(&out[0], true).unwrap(), "bab");
}

#[test]
fn malformed_examples_are_named_by_line_and_field() {
    for (lines, needle) in [
        (
            "{\"prompt\":\"a\",\"completion\":\"b\",\"w\":1}\n{\"prompt\":\"a\",\"w\":1}\n",
            "sft.jsonl:2: missing field `completion`",
        ),
        (
            "{\"prompt\":\"a\",\"completion\":\"b\",\"w\":-1}\n",
            "sft.jsonl:1: field `w` must be finite and ≥ 0",
        ),
        (
            "{\"prompt\":\"a\",\"completion\":\"b\",\"w\":1}\nnot json\n",
            "sft.jsonl:2: not a JSON object",
        ),
        (
            "{\"prompt\":3,\"completion\":\"b\",\"w\":1}\n",
            "sft.jsonl:1: field `prompt` must be a string",
        ),
    ] {
        let dir = setup("sft-bad", lines);
        let err = rlft_err(&["sft", "--config", dir.join("sft.toml").to_str().unwrap()]);
        assert!(err.contains(needle), "expected {needle:?} in:\n{err}");
        assert!(!dir.join("run/final").exists());
    }
}
