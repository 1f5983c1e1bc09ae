//! Fuzzing the server's request handling: the body validator on arbitrary bytes and on
//! arbitrary JSON made of the fields it knows, and the whole server on arbitrary bytes sent
//! raw over TCP. Nothing may panic; refusals are 400/404 naming a field; accepted requests
//! satisfy every limit; the server stays healthy.
//!
//! The long variants are ignored: `cargo test --release -p rlft-serve --test fuzz -- --ignored`
//! (10^6 bodies per validator property, 2·10^4 raw connections).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rlft_serve::{Endpoint, ServeConfig, Server, check_request};
use serde_json::{Map, Value};

const FIELDS: &[&str] = &[
    "prompt",
    "messages",
    "model",
    "n",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "seed",
    "stop",
    "stop_token_ids",
    "ignore_eos",
    "include_stop_str_in_output",
    "return_tokens_as_token_ids",
    "logprobs_mode",
    "stream",
    "stream_options",
    "logprobs",
    "top_logprobs",
    "echo",
    "user",
    "logit_bias",
    "presence_penalty",
    "best_of",
    "tools",
    "role",
    "content",
    "include_usage",
    "x",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        (0u32..300).prop_map(Value::from),
        "[a-z ]{0,8}".prop_map(Value::from),
        prop::sample::select(vec![
            "user",
            "system",
            "assistant",
            "tool",
            "wizard",
            "text",
            "rlft"
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(FIELDS), inner), 0..6).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((prop::sample::select(FIELDS), json_value()), 0..8).prop_map(|kv| {
        let m: Map<String, Value> = kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        serde_json::to_vec(&Value::Object(m)).unwrap_or_default()
    })
}

/// The validator's contract on one body.
fn check(body: &[u8]) -> Result<(), TestCaseError> {
    let config = ServeConfig::default();
    for endpoint in [Endpoint::Completions, Endpoint::Chat] {
        match check_request(endpoint, body, &config, "rlft") {
            Ok(r) => {
                prop_assert!(r.params.validate().is_ok());
                prop_assert!((1..=config.max_n).contains(&r.params.n));
                prop_assert!(!r.prompts.is_empty() && r.prompts.len() <= config.max_prompts);
            }
            Err(e) => {
                prop_assert!(e.status == 400 || e.status == 404, "{e:?}");
                prop_assert!(!e.message.is_empty());
            }
        }
    }
    Ok(())
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

fn run_validator(cases: u32) {
    let seen = std::cell::Cell::new(0u64);
    let count = |b: &[u8]| {
        seen.set(seen.get() + 1);
        check(b)
    };
    // One runner per strategy: a runner counts its cases across runs.
    runner(cases)
        .run(&prop::collection::vec(any::<u8>(), 0..256), |b| count(&b))
        .unwrap();
    runner(cases).run(&body(), |b| count(&b)).unwrap();
    assert!(seen.get() >= 2 * u64::from(cases), "{} bodies", seen.get());
    println!(
        "{} bodies checked against both endpoints, 0 panics",
        seen.get()
    );
}

#[test]
fn the_validator_never_panics_and_keeps_its_limits() {
    run_validator(2_000);
}

#[test]
#[ignore]
fn fuzz_validator_one_million_bodies() {
    run_validator(1_000_000);
}

/// Send `bytes` on a fresh connection; read whatever comes back (at most 2 s).
fn send_raw(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn request_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        (
            prop::sample::select(vec!["GET", "POST", "PUT", "X", ""]),
            prop::sample::select(vec![
                "/health",
                "/v1/completions",
                "/v1/chat/completions",
                "/metrics",
                "/v1/models",
                "*",
                "/%00"
            ]),
            prop::sample::select(vec![
                "",
                "Content-Length: 5\r\n",
                "Content-Length: -1\r\n",
                "Transfer-Encoding: chunked\r\n",
                "Content-Length: 99999999999999999999\r\n",
                "Connection: close\r\n"
            ]),
            body(),
        )
            .prop_map(|(m, p, h, b)| {
                let mut out = format!("{m} {p} HTTP/1.1\r\nHost: x\r\n{h}\r\n").into_bytes();
                out.extend(b);
                out
            }),
    ]
}

fn run_raw(cases: u32) {
    let server = Server::new(
        common::bigram(),
        ServeConfig {
            head_timeout_secs: 1.0,
            default_max_tokens: 4,
            max_tokens_limit: Some(64),
            ..ServeConfig::loopback()
        },
    )
    .spawn()
    .unwrap();
    let addr = server.addr();
    let seen = std::cell::Cell::new(0u64);
    runner(cases)
        .run(&request_bytes(), |b| {
            seen.set(seen.get() + 1);
            let out = send_raw(addr, &b);
            // Either nothing (the server closed a connection that sent no valid head) or a
            // well-formed status line.
            prop_assert!(
                out.is_empty() || out.starts_with(b"HTTP/1.1 "),
                "{:?}",
                String::from_utf8_lossy(&out)
            );
            Ok(())
        })
        .unwrap();
    assert!(seen.get() >= u64::from(cases));
    println!("{} raw requests answered, 0 panics", seen.get());
    assert_eq!(common::get(addr, "/health").status, 200);
}

#[test]
fn the_server_answers_arbitrary_bytes_and_stays_up() {
    run_raw(64);
}

#[test]
#[ignore]
fn fuzz_server_twenty_thousand_raw_connections() {
    run_raw(20_000);
}
