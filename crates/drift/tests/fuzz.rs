//! Fuzzing DRIFT's JSONL rows (issue 18): arbitrary bytes and rows built from the keys the
//! row parser reads must parse or give an error, never panic; a row that parses writes back
//! as JSON that parses to the same row.
//!
//! `fuzz_drift_rows` runs 512 inputs in the normal test run; the `#[ignore]`d
//! `fuzz_long_drift_rows` runs 10^6: `cargo test --release -p rlft-drift --test fuzz --
//! --ignored fuzz` (figures in docs/reliability.md).

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rlft_drift::DriftRow;

const ATOMS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\"prompt_id\"",
    "\"messages\"",
    "\"role\"",
    "\"content\"",
    "\"user\"",
    "\"assistant\"",
    "\"system\"",
    "\"tool\"",
    "\"answer_norms\"",
    "\"turn_rewards\"",
    "\"x\"",
    "1",
    "-1",
    "1e999",
    "null",
    "true",
    "\"\"",
    "\\u0000",
    " ",
];

fn input() -> impl Strategy<Value = String> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..256)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned());
    let built =
        proptest::collection::vec(proptest::sample::select(ATOMS), 0..64).prop_map(|v| v.concat());
    prop_oneof![bytes, built]
}

fn run(cases: u32) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let t0 = std::time::Instant::now();
    runner
        .run(&input(), |line| {
            if let Ok(row) = DriftRow::parse(&line, Path::new("fuzz.jsonl"), 1) {
                let again = DriftRow::parse(&row.to_json().to_string(), Path::new("x"), 1);
                prop_assert_eq!(again.ok(), Some(row));
            }
            Ok(())
        })
        .unwrap();
    eprintln!(
        "fuzz drift rows: {cases} inputs, 0 panics, {:.1}s",
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn fuzz_drift_rows() {
    run(512);
}

#[test]
#[ignore = "long fuzz run: cargo test --release -- --ignored fuzz"]
fn fuzz_long_drift_rows() {
    run(1_000_000);
}
