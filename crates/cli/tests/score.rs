//! `rlft score` against transformers: the Qwen2 fixture of rlft-models (written by
//! `scripts/hf_models/`) holds transformers' logits for single sequences; the per-token
//! log-probs `score` prints must equal their log-softmax at the next token.

use std::process::Command;

use serde_json::Value;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../models/tests/fixtures/qwen2"
);

fn golden(name: &str) -> (Vec<u32>, Vec<f64>) {
    let bytes = std::fs::read(format!("{FIXTURE}/expected.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let ids: Vec<u32> = st
        .tensor(&format!("{name}.input_ids"))
        .unwrap()
        .data()
        .chunks(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as u32)
        .collect();
    let logits = st.tensor(&format!("{name}.logits")).unwrap();
    let v = logits.shape()[2];
    let f: Vec<f32> = logits
        .data()
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    // log p(ids[j] | ids[<j]) = log_softmax(logits[j - 1])[ids[j]], in f64.
    let lps = (1..ids.len())
        .map(|j| {
            let row = &f[(j - 1) * v..j * v];
            let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
            let lse = m + row.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln();
            row[ids[j] as usize] as f64 - lse
        })
        .collect();
    (ids, lps)
}

#[test]
fn score_matches_transformers_for_text_and_token_ids() {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{FIXTURE}/expected.json")).unwrap())
            .unwrap();
    let text = expected["texts"][0].as_str().unwrap();
    let (ids0, lp0) = golden("single.0");
    let (ids1, lp1) = golden("single.1");
    let dir = std::env::temp_dir().join(format!("rlft-score-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("in.jsonl");
    let output = dir.join("out.jsonl");
    std::fs::write(
        &input,
        format!(
            "{}\n{}\n",
            serde_json::json!({ "text": text }),
            serde_json::json!({ "token_ids": ids1 })
        ),
    )
    .unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_rlft"))
        .args(["score", "--model", FIXTURE, "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .status()
        .unwrap();
    assert!(status.success());
    let lines: Vec<Value> = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for (line, (ids, lps)) in lines.iter().zip([(ids0, lp0), (ids1, lp1)]) {
        let got_ids: Vec<u32> = line["token_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(got_ids, ids, "tokenization differs from transformers");
        let got = line["logprobs"].as_array().unwrap();
        assert_eq!(got.len(), ids.len());
        assert!(got[0].is_null(), "the first token has no log-prob");
        for (j, w) in lps.iter().enumerate() {
            let g = got[j + 1].as_f64().unwrap();
            assert!(
                (g - w).abs() < 1e-4,
                "token {}: {g} vs transformers {w}",
                j + 1
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn malformed_input_names_the_line() {
    let dir = std::env::temp_dir().join(format!("rlft-score-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("in.jsonl");
    std::fs::write(
        &input,
        "{\"token_ids\": [1, 2]}\n{\"token_ids\": [1, -2]}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rlft"))
        .args(["score", "--model", FIXTURE, "--input"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in.jsonl:2"), "{err}");
    std::fs::write(&input, "{\"nope\": 1}\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rlft"))
        .args(["score", "--model", FIXTURE, "--input"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in.jsonl:1"));
    std::fs::remove_dir_all(&dir).unwrap();
}
