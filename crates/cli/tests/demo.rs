//! `rlft demo` end to end at a small size: every stage runs and `summary.json` holds what the
//! README promises. (The full-size run's accuracy gain is recorded in docs/demo.md.)

use std::process::Command;

use serde_json::Value;

#[test]
fn small_demo_writes_its_summary() {
    let dir = std::env::temp_dir().join(format!("rlft-demo-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_rlft"))
        .args([
            "demo",
            "--problems",
            "400",
            "--sft-steps",
            "30",
            "--grpo-steps",
            "3",
            "--batch",
            "8",
            "--k",
            "4",
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.trim().ends_with("summary.json"), "{printed}");
    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    for key in ["accuracy_before", "accuracy_after", "rollouts", "seconds"] {
        assert!(s[key].is_number(), "summary.json lacks {key}: {s}");
    }
    // DPS trains 8 prompts × 4 completions per step and screens nothing.
    assert_eq!(s["rollouts"].as_u64(), Some(3 * 8 * 4));
    for f in [
        "report.md",
        "curves.svg",
        "grpo/metrics.jsonl",
        "task.jsonl",
    ] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("grpo/metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        3
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_sampler_json_is_an_error() {
    let dir = std::env::temp_dir().join(format!("rlft-demo-bad-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_rlft"))
        .args([
            "demo",
            "--problems",
            "100",
            "--sft-steps",
            "1",
            "--grpo-steps",
            "1",
            "--sampler",
            "{\"kind\":\"nope\"}",
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--sampler"));
    let _ = std::fs::remove_dir_all(&dir);
}
