//! `rlft diagnose alignment`: the gradient-alignment report of a checkpoint on its own samples.

mod common;

use common::*;

#[test]
fn alignment_reports_cosines_overall_and_by_position() {
    let dir = tmp("diagnose");
    std::fs::create_dir_all(dir.join("model")).unwrap();
    toy_model(&dir.join("model"), 3);
    toy_data(&dir.join("data.jsonl"), 6);
    let out = dir.join("alignment.json");
    let (model, data) = (dir.join("model"), dir.join("data.jsonl"));
    let args = [
        "diagnose",
        "alignment",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--format",
        "raw",
        "--prompts",
        "3",
        "--n",
        "2",
        "--max-new-tokens",
        "4",
        "--positions",
        "2",
        "--out",
        out.to_str().unwrap(),
    ];
    let printed: serde_json::Value = serde_json::from_str(&rlft_ok(&args)).unwrap();
    assert_eq!(printed, json(&out));
    assert_eq!(printed["rows"], 6);
    let overall = printed["overall"].as_f64().unwrap();
    assert!((-1.0..=1.0).contains(&overall), "{printed}");
    let by = printed["by_position"].as_array().unwrap();
    assert!(!by.is_empty() && by.len() <= 2, "{printed}");
    assert_eq!(by[0]["position"], 0);
    let mut bad = args.to_vec();
    bad.extend(["--temperature", "0"]);
    assert!(rlft_err(&bad).contains("--temperature"));
}
