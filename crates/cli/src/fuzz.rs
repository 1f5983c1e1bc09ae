//! Fuzzing the TOML configs (issue 18): arbitrary bytes, TOML built from the tokens configs
//! use, and the example configs with bytes inserted, deleted or replaced, parsed as every
//! config type (`rlft train`, `rlft sft`, `rlft drift`) and validated. Parsing and
//! validation must return a value or an error without panicking.
//!
//! `fuzz_toml_configs` runs 512 inputs in the normal test run; the `#[ignore]`d
//! `fuzz_long_toml_configs` runs 10^6: `cargo test --release -p rlft-cli -- --ignored fuzz`
//! (figures in docs/reliability.md).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::drift::DriftFile;
use crate::sft::SftFile;
use crate::train::TrainFile;

const EXAMPLES: [&str; 5] = [
    include_str!("../../../examples/configs/train.toml"),
    include_str!("../../../examples/configs/sft.toml"),
    include_str!("../../../examples/configs/drift.toml"),
    include_str!("../../../examples/configs/dsrl.toml"),
    include_str!("../../../examples/configs/try_again.toml"),
];

const ATOMS: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "=",
    "\"",
    "'",
    "\n",
    " ",
    ".",
    ",",
    "{",
    "}",
    "out",
    "model",
    "path",
    "data",
    "train",
    "sampling",
    "grpo",
    "optim",
    "lr",
    "n",
    "top_p",
    "min_p",
    "max_new_tokens",
    "kind",
    "\"math\"",
    "\"dps\"",
    "verifier",
    "engine",
    "max_batch_rows",
    "objective",
    "phase",
    "0",
    "1",
    "-1",
    "1e400",
    "nan",
    "inf",
    "1.5",
    "true",
    "18446744073709551616",
    "#",
    "\u{feff}",
];

fn input() -> impl Strategy<Value = String> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..512)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned());
    let built =
        proptest::collection::vec(proptest::sample::select(ATOMS), 0..96).prop_map(|v| v.concat());
    let mutated = (
        0..EXAMPLES.len(),
        proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<char>()), 1..6),
    )
        .prop_map(|(i, edits)| {
            let mut s: Vec<char> = EXAMPLES[i].chars().collect();
            for (at, op, c) in edits {
                let k = at.index(s.len() + 1);
                match op {
                    0 => s.insert(k, c),
                    1 if k < s.len() => {
                        s.remove(k);
                    }
                    _ if k < s.len() => s[k] = c,
                    _ => s.push(c),
                }
            }
            s.into_iter().collect()
        });
    prop_oneof![bytes, built, mutated]
}

fn parse_all(text: String) {
    if let Ok(f) = toml::from_str::<TrainFile>(&text) {
        let _ = f.validate();
    }
    if let Ok(f) = toml::from_str::<SftFile>(&text) {
        let _ = f.sft.validate();
    }
    let _ = toml::from_str::<DriftFile>(&text);
}

fn run(cases: u32) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let t0 = std::time::Instant::now();
    runner
        .run(&input(), |t| {
            parse_all(t);
            Ok(())
        })
        .unwrap();
    eprintln!(
        "fuzz toml configs: {cases} inputs, 0 panics, {:.1}s",
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn fuzz_toml_configs() {
    run(512);
}

#[test]
#[ignore = "long fuzz run: cargo test --release -- --ignored fuzz"]
fn fuzz_long_toml_configs() {
    run(1_000_000);
}

#[test]
fn the_example_configs_parse() {
    toml::from_str::<TrainFile>(EXAMPLES[0])
        .unwrap()
        .validate()
        .unwrap();
    toml::from_str::<SftFile>(EXAMPLES[1]).unwrap();
    toml::from_str::<DriftFile>(EXAMPLES[2]).unwrap();
}
