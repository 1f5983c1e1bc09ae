//! `rlft demo` end to end at a small size: every stage runs and `summary.json` holds what the
//! README promises. (The full-size run's accuracy gain is recorded in docs/demo.md.)

use std::process::Command;

use serde_json::Value;

fn small_demo(dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rlft"))
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
            "--eval-every",
            "2",
            "--out",
        ])
        .arg(dir)
        .output()
        .unwrap()
}

#[test]
fn small_demo_writes_its_summary() {
    let dir = std::env::temp_dir().join(format!("rlft-demo-{}", std::process::id()));
    let out = small_demo(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.trim().ends_with("summary.json"), "{printed}");
    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    for key in [
        "accuracy_before",
        "accuracy_after",
        "accuracy_before_se",
        "gain",
        "gain_se",
        "rollouts",
        "seconds",
    ] {
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
    // Held-out accuracy is logged at step 2 and at the end.
    let lines: Vec<Value> = std::fs::read_to_string(dir.join("grpo/metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let logged: Vec<bool> = lines
        .iter()
        .map(|r| r["heldout/accuracy"].is_number())
        .collect();
    assert_eq!(logged, [false, true, true]);
    assert_eq!(
        lines[2]["heldout/accuracy"].as_f64(),
        s["accuracy_after"].as_f64()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// rlft's reproducibility promise: bit-exact on one machine (the demo's Flex backend runs on
/// one thread). Two runs of the same seed give the same held-out answers and metrics.
#[test]
fn the_same_seed_gives_the_same_demo_bit_for_bit() {
    let timeless = |dir: &std::path::Path| -> (Vec<Value>, Value) {
        let metrics = std::fs::read_to_string(dir.join("grpo/metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: Value = serde_json::from_str(l).unwrap();
                v.as_object_mut()
                    .unwrap()
                    .retain(|k, _| !k.contains("per_s") && k != "seconds");
                v
            })
            .collect();
        let mut s: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap())
                .unwrap();
        s.as_object_mut()
            .unwrap()
            .retain(|k, _| !k.contains("seconds"));
        (metrics, s)
    };
    let base = std::env::temp_dir().join(format!("rlft-demo-twice-{}", std::process::id()));
    let (a, b) = (base.join("a"), base.join("b"));
    assert!(small_demo(&a).status.success());
    assert!(small_demo(&b).status.success());
    assert_eq!(timeless(&a), timeless(&b));
    std::fs::remove_dir_all(&base).unwrap();
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
