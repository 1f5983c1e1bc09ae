//! Value stability against independent reference values.
//!
//! `tests/fixtures/reference_values.json` is written by `scripts/reference_values.py`, a
//! standard-library Python reimplementation of the hash, the split rule, xoshiro256++ and the
//! generators' drawing procedure (it checks its xoshiro256++ against rand's reference
//! vector). If these tests fail, ids, splits or generated datasets changed for a given seed.

use rlft_tasks::{
    ArithmeticConfig, CountdownConfig, Dataset, Difficulty, SplitConfig, TaskItem, prompt_hash_id,
};
use serde_json::Value;

fn fixture() -> Value {
    let text = include_str!("fixtures/reference_values.json");
    serde_json::from_str(text).expect("fixture is valid json")
}

#[test]
fn prompt_hash_ids_match_reference() {
    let fx = fixture();
    let ids = fx["hash_ids"].as_object().unwrap();
    assert!(ids.len() >= 5);
    for (prompt, id) in ids {
        assert_eq!(&prompt_hash_id(prompt), id.as_str().unwrap(), "{prompt:?}");
    }
}

#[test]
fn split_membership_matches_reference() {
    let fx = fixture();
    let split = &fx["split"];
    let cfg = SplitConfig {
        test_fraction: split["test_fraction"].as_f64().unwrap(),
        seed: split["seed"].as_u64().unwrap(),
    };
    let items: Vec<TaskItem> = split["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| TaskItem::new(id.as_str().unwrap(), "p", "a"))
        .collect();
    let s = Dataset::from_items(items).unwrap().split(&cfg).unwrap();
    let got: Vec<&str> = s.test.items().iter().map(|i| i.id.as_str()).collect();
    let want: Vec<&str> = split["test_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(got, want);
}

fn check_countdown(cfg: CountdownConfig, expected: &Value) {
    let expected = expected.as_array().unwrap();
    let data = CountdownConfig {
        count: expected.len(),
        ..cfg
    }
    .generate()
    .unwrap();
    for (item, want) in data.items().iter().zip(expected) {
        assert_eq!(item.meta["nums"], want["nums"]);
        assert_eq!(item.meta["target"], want["target"]);
        assert_eq!(item.meta["solution"], want["solution"]);
    }
}

#[test]
fn countdown_generation_matches_reference() {
    let fx = fixture();
    check_countdown(
        CountdownConfig {
            seed: 42,
            ..CountdownConfig::for_difficulty(Difficulty::Medium)
        },
        &fx["countdown_medium_seed42"],
    );
    check_countdown(
        CountdownConfig {
            seed: 7,
            ..CountdownConfig::for_difficulty(Difficulty::Hard)
        },
        &fx["countdown_hard_seed7"],
    );
}

#[test]
fn arithmetic_generation_matches_reference() {
    let fx = fixture();
    let expected = fx["arithmetic_medium_seed42"].as_array().unwrap();
    let data = ArithmeticConfig {
        count: expected.len(),
        ..ArithmeticConfig::for_difficulty(Difficulty::Medium)
    }
    .generate()
    .unwrap();
    for (item, want) in data.items().iter().zip(expected) {
        assert_eq!(item.meta["a"], want["a"]);
        assert_eq!(item.meta["b"], want["b"]);
        assert_eq!(item.meta["op"], want["op"]);
        assert_eq!(item.answer, want["answer"].as_str().unwrap());
    }
}
