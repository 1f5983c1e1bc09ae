//! Building verifiers and environments from serialized configs.

use rlft_tasks::{EnvironmentConfig, TaskError, TaskItem, VerifierConfig};

#[test]
fn verifier_config_builds_each_kind() {
    let cd: VerifierConfig =
        serde_json::from_str(r#"{"kind": "countdown", "format_score": 0.1}"#).unwrap();
    let v = cd.build().unwrap();
    let item = TaskItem::new("c", "p", "98").with_meta("nums", serde_json::json!([44, 19, 35]));
    assert_eq!(
        v.verify(&item, "<answer>44+19+35</answer>").unwrap().score,
        1.0
    );
    assert_eq!(
        v.verify(&item, "<answer>44+19-35</answer>").unwrap().score,
        0.1
    );

    let m: VerifierConfig = serde_json::from_str(r#"{"kind": "math"}"#).unwrap();
    let item = TaskItem::new("m", "p", "0.5");
    let v = m.build().unwrap();
    assert_eq!(v.name(), "math");
    assert!(v.verify(&item, "\\boxed{\\frac12}").unwrap().correct);

    let e: VerifierConfig = serde_json::from_str(
        r#"{"kind": "exact_match", "config": {"sources": ["whole"], "case_sensitive": true}}"#,
    )
    .unwrap();
    let v = e.build().unwrap();
    let item = TaskItem::new("e", "p", "Paris");
    assert!(v.verify(&item, "Paris").unwrap().correct);
    assert!(!v.verify(&item, "paris").unwrap().correct);
}

#[test]
fn bad_verifier_configs_are_errors() {
    assert!(serde_json::from_str::<VerifierConfig>(r#"{"kind": "countdwn"}"#).is_err());
    assert!(
        serde_json::from_str::<VerifierConfig>(r#"{"kind": "math", "format_scor": 0.1}"#).is_err()
    );
    let too_big: VerifierConfig =
        serde_json::from_str(r#"{"kind": "math", "format_score": 2.0}"#).unwrap();
    assert!(
        matches!(too_big.build(), Err(TaskError::Config { field, .. }) if field == "verifier.format_score")
    );
}

#[test]
fn environment_config_builds_try_again_with_defaults_filled_in() {
    let cfg: EnvironmentConfig =
        serde_json::from_str(r#"{"kind": "try_again", "max_turns": 2}"#).unwrap();
    let verifier = VerifierConfig::ExactMatch {
        config: Default::default(),
        format_score: None,
    }
    .build()
    .unwrap();
    let env = cfg.build(verifier).unwrap();
    let item = TaskItem::new("q", "6*7?", "42");
    let mut ep = env.start(&item).unwrap();
    assert!(
        !env.step(&mut ep, "a</think><answer>1</answer>")
            .unwrap()
            .done
    );
    assert!(
        env.step(&mut ep, "a</think><answer>2</answer>")
            .unwrap()
            .done
    );
    assert_eq!(ep.turns.len(), 2);

    let bad: EnvironmentConfig =
        serde_json::from_str(r#"{"kind": "try_again", "max_turns": 0}"#).unwrap();
    let verifier = VerifierConfig::Math {
        config: Default::default(),
        format_score: None,
    }
    .build()
    .unwrap();
    assert!(bad.build(verifier).is_err());
    assert!(
        serde_json::from_str::<EnvironmentConfig>(r#"{"kind": "try_again", "max_turn": 2}"#)
            .is_err()
    );
    let single: EnvironmentConfig = serde_json::from_str(r#"{"kind": "single_turn"}"#).unwrap();
    let verifier = VerifierConfig::Math {
        config: Default::default(),
        format_score: None,
    }
    .build()
    .unwrap();
    let env = single.build(verifier).unwrap();
    let mut ep = env.start(&TaskItem::new("q", "p", "3")).unwrap();
    assert!(env.step(&mut ep, "\\boxed{3}").unwrap().correct);
}
