//! `rlft eval` agrees with the library: greedy pass@1 equals the fraction of prompts whose
//! greedy completion the verifier accepts, and sampled pass@k is reported for each k.

mod common;

use common::*;
use rlft_models::{CausalLm, ChatTokenizer, GreedyConfig, LoadOptions, greedy};

#[test]
fn eval_reports_pass_at_k_consistent_with_greedy_decoding() {
    let dir = tmp("eval");
    std::fs::create_dir_all(dir.join("model")).unwrap();
    toy_model(&dir.join("model"), 5);
    // Gold answers: the greedy token for half the prompts, the other letter for the rest.
    let tok = ChatTokenizer::from_dir(dir.join("model")).unwrap();
    let m = CausalLm::from_pretrained(
        dir.join("model"),
        &burn::tensor::Device::flex(),
        LoadOptions::default(),
    )
    .unwrap();
    let prompts = ["a", "b", "ab", "ba", "aa", "bb", "aba", "bab"];
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
    let mut expected = 0.0;
    let lines: String = prompts
        .iter()
        .zip(&out)
        .enumerate()
        .map(|(i, (p, o))| {
            let g = tok.decode(o, false).unwrap();
            let answer = if i % 2 == 0 {
                g.clone()
            } else {
                format!("x{g}")
            };
            if i % 2 == 0 {
                expected += 1.0 / prompts.len() as f64;
            }
            format!("{}\n", serde_json::json!({"prompt": p, "answer": answer}))
        })
        .collect();
    std::fs::write(dir.join("data.jsonl"), lines).unwrap();
    let model = dir.join("model");
    let data = dir.join("data.jsonl");
    let verifier = r#"{"kind":"exact_match","config":{"sources":["whole"]}}"#;
    let base = [
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--verifier",
        verifier,
        "--format",
        "raw",
        "--max-new-tokens",
        "1",
    ];
    let report: serde_json::Value = serde_json::from_str(&rlft_ok(&base)).unwrap();
    assert_eq!(report["prompts"], 8);
    assert!(
        (report["pass1"].as_f64().unwrap() - expected).abs() < 1e-12,
        "{report}"
    );

    let mut sampled = base.to_vec();
    let out_path = dir.join("report.json");
    sampled.extend([
        "--n",
        "6",
        "--k",
        "1",
        "--k",
        "4",
        "--temperature",
        "1.0",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    let printed: serde_json::Value = serde_json::from_str(&rlft_ok(&sampled)).unwrap();
    let written = json(&out_path);
    assert_eq!(printed, written);
    let p1 = written["pass_at_k"]["1"].as_f64().unwrap();
    let p4 = written["pass_at_k"]["4"].as_f64().unwrap();
    assert!((p1 - written["pass1"].as_f64().unwrap()).abs() < 1e-12);
    assert!(p4 >= p1 && p4 <= 1.0, "{written}");
    // "x…" answers are unreachable in one token, so at most half the prompts can pass.
    assert!(p4 <= 0.5 + 1e-12, "{written}");

    // A pass@k curve: --k-range gives every power of two up to n, --curve writes the SVG.
    let curve_path = dir.join("curve.svg");
    let mut curve = base.to_vec();
    curve.extend([
        "--n",
        "8",
        "--k-range",
        "1..8",
        "--temperature",
        "1.0",
        "--curve",
        curve_path.to_str().unwrap(),
    ]);
    let r: serde_json::Value = serde_json::from_str(&rlft_ok(&curve)).unwrap();
    let ks: Vec<&String> = r["pass_at_k"].as_object().unwrap().keys().collect();
    assert_eq!(ks, ["1", "2", "4", "8"], "{r}");
    let svg = std::fs::read_to_string(&curve_path).unwrap();
    assert_eq!(svg.matches("<polyline").count(), 1);
    let mut too_far = base.to_vec();
    too_far.extend(["--n", "4", "--k-range", "1..8"]);
    assert!(rlft_err(&too_far).contains("--k-range"));

    let err = rlft_err(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--k",
        "2",
    ]);
    assert!(err.contains("--k 2"), "{err}");
}
