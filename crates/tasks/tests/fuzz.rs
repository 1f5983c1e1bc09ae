//! Fuzzing the parsers of rlft-tasks that take user input (issue 18): the math, Countdown and
//! exact-match verifiers, the Countdown expression parser and JSONL dataset rows. Each gets
//! arbitrary bytes (as lossy UTF-8) and strings built from the tokens its parser looks for,
//! and must return (a verdict or an error) without panicking.
//!
//! `fuzz_*` run 512 inputs each in the normal test run; the `#[ignore]`d `fuzz_long_*`
//! variants run 10^6 each: `cargo test --release -p rlft-tasks --test fuzz -- --ignored fuzz`
//! (figures in docs/reliability.md).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rlft_tasks::{
    Dataset, DatasetConfig, ExprLimits, TaskItem, VerifierConfig, normalize_math_answer,
    parse_expression,
};

const SHORT: u32 = 512;
const LONG: u32 = 1_000_000;

/// Runs `check` on `cases` inputs from `strategy`; a panic fails the test with the input.
fn fuzz<S: Strategy>(name: &str, cases: u32, strategy: S, check: impl Fn(S::Value)) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let t0 = std::time::Instant::now();
    runner
        .run(&strategy, |v| {
            check(v);
            Ok(())
        })
        .unwrap();
    eprintln!(
        "fuzz {name}: {cases} inputs, 0 panics, {:.1}s",
        t0.elapsed().as_secs_f64()
    );
}

/// Arbitrary bytes read as lossy UTF-8, or a string of `atoms` (the tokens a parser reacts
/// to), or both concatenated.
fn text(atoms: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..max)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned());
    let built = proptest::collection::vec(proptest::sample::select(atoms), 0..max / 4)
        .prop_map(|v| v.concat());
    prop_oneof![
        bytes.clone(),
        built.clone(),
        (built, bytes).prop_map(|(a, b)| a + &b)
    ]
}

const MATH: &[&str] = &[
    "\\boxed{",
    "\\boxed",
    "{",
    "}",
    "\\frac",
    "\\dfrac",
    "\\tfrac",
    "\\sqrt",
    "1",
    "0",
    "7",
    "9",
    ".",
    "/",
    "-",
    "+",
    "$",
    "\\text{",
    "\\mbox{",
    " ",
    "=",
    ",",
    "{,}",
    "\\,",
    "<answer>",
    "</answer>",
    "####",
    "%",
    "\\%",
    "^\\circ",
    "−",
    "\\left(",
    "\\right)",
    "x",
    "é",
    "\n",
    "\\",
    "1267650600228229401496703205376",
    "cm",
    "The answer is",
];

const COUNTDOWN: &[&str] = &[
    "(",
    ")",
    "+",
    "-",
    "*",
    "/",
    "×",
    "÷",
    "1",
    "2",
    "3",
    "25",
    "50",
    "100",
    "999999999",
    "0",
    " ",
    "=",
    "<answer>",
    "</answer>",
    "<think>",
    "</think>",
    ".",
    "x",
    "\n",
];

fn verify_all(kind: &str, gold: &str, completion: &str) {
    let v = serde_json::from_value::<VerifierConfig>(serde_json::json!({ "kind": kind }))
        .unwrap()
        .build()
        .unwrap();
    let mut item = TaskItem::new("f", "q", gold);
    item.meta
        .insert("nums".into(), serde_json::json!([1, 2, 3, 25]));
    item.meta.insert("target".into(), serde_json::json!(28));
    if let Ok(verdict) = v.verify(&item, completion) {
        assert!(verdict.score.is_finite(), "score {}", verdict.score);
    }
}

fn math(input: (String, String)) {
    let (gold, completion) = input;
    verify_all("math", &gold, &completion);
    let _ = normalize_math_answer(&completion);
}

fn countdown(input: (String, String)) {
    let (expr, completion) = input;
    let _ = parse_expression(&expr, &ExprLimits::default());
    verify_all("countdown", "28", &completion);
}

fn exact(input: (String, String)) {
    verify_all("exact_match", &input.0, &input.1);
}

fn jsonl(bytes: Vec<u8>) {
    let _ = Dataset::from_reader(&bytes[..], "fuzz.jsonl", &DatasetConfig::default());
}

const JSONL: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"prompt\"",
    "\"answer\"",
    "\"id\"",
    "\"messages\"",
    "\"role\"",
    "\"content\"",
    "\"user\"",
    ":",
    ",",
    "\"x\"",
    "1",
    "null",
    "true",
    "\n",
    "\r\n",
    "\u{feff}",
    "\"",
    "\\",
    "\\u0000",
    "\"reward_model\"",
    "\"ground_truth\"",
];

fn jsonl_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        text(JSONL, 256).prop_map(String::into_bytes),
    ]
}

#[test]
fn fuzz_math_verifier() {
    fuzz(
        "math verifier",
        SHORT,
        (text(MATH, 120), text(MATH, 120)),
        math,
    );
}

#[test]
#[ignore = "long fuzz run: cargo test --release -- --ignored fuzz"]
fn fuzz_long_math_verifier() {
    fuzz(
        "math verifier",
        LONG,
        (text(MATH, 120), text(MATH, 120)),
        math,
    );
}

#[test]
fn fuzz_countdown_expression_and_verifier() {
    let s = (text(COUNTDOWN, 80), text(COUNTDOWN, 120));
    fuzz("countdown", SHORT, s, countdown);
}

#[test]
#[ignore = "long fuzz run: cargo test --release -- --ignored fuzz"]
fn fuzz_long_countdown_expression_and_verifier() {
    let s = (text(COUNTDOWN, 80), text(COUNTDOWN, 120));
    fuzz("countdown", LONG, s, countdown);
}

#[test]
fn fuzz_exact_match_verifier() {
    fuzz(
        "exact match",
        SHORT,
        (text(MATH, 60), text(MATH, 120)),
        exact,
    );
}

#[test]
#[ignore = "long fuzz run: cargo test --release -- --ignored fuzz"]
fn fuzz_long_exact_match_verifier() {
    fuzz(
        "exact match",
        LONG,
        (text(MATH, 60), text(MATH, 120)),
        exact,
    );
}

#[test]
fn fuzz_jsonl_dataset_rows() {
    fuzz("jsonl dataset rows", SHORT, jsonl_input(), jsonl);
}

#[test]
#[ignore = "long fuzz run: cargo test --release -- --ignored fuzz"]
fn fuzz_long_jsonl_dataset_rows() {
    fuzz("jsonl dataset rows", LONG, jsonl_input(), jsonl);
}

/// The reproductions of issue 18 for the dataset reader: a file without newlines is an
/// error naming line 1 (not an unbounded read), a BOM is accepted, invalid UTF-8 names its
/// line.
#[test]
fn dataset_lines_are_bounded_bom_tolerant_and_name_bad_utf8() {
    let cfg = DatasetConfig::default();
    let ok = Dataset::from_reader(
        &b"\xEF\xBB\xBF{\"prompt\": \"p\", \"answer\": \"a\"}\n"[..],
        "bom.jsonl",
        &cfg,
    )
    .unwrap();
    assert_eq!(ok.items()[0].prompt, "p");
    let err = Dataset::from_reader(
        &b"{\"prompt\": \"p\", \"answer\": \"a\"}\n{\"prompt\": \"\xFF\"}\n"[..],
        "bad.jsonl",
        &cfg,
    )
    .unwrap_err();
    let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(chain.contains("line 2 is not valid UTF-8"), "{chain}");
    #[cfg(unix)]
    {
        let err = Dataset::from_jsonl("/dev/zero", &cfg).unwrap_err();
        let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(chain.contains("line 1 is longer than"), "{chain}");
    }
}
