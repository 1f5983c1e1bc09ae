//! rlft-rollout's HTTP engine against this server on loopback (ephemeral ports; every server
//! is shut down by its handle). Moved here from rlft-rollout's `tests/loopback.rs` when the
//! server left that crate; the checks are the same, with streaming now supported and
//! concurrency seen as batch sizes on the engine thread.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rlft_rollout::{
    BigramEngine, CharVocab, HttpConfig, HttpEngine, Message, Prompt, RolloutEngine, RolloutError,
    SamplingParams, Tokenizer,
};
use rlft_serve::{ServeConfig, Server};

mod common;
use common::{Slow, bigram};

fn client(base_url: String) -> HttpEngine {
    HttpEngine::new(HttpConfig {
        max_retries: 2,
        backoff_initial_ms: 10,
        backoff_max_ms: 40,
        timeout_secs: 20.0,
        ..HttpConfig::new(base_url)
    })
    .unwrap()
}

/// Raw HTTP exchange: returns (status, body).
fn raw(addr: std::net::SocketAddr, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server keeps connections alive; ask it to close so that the read ends.
    let request = request.replacen("\r\n", "\r\nConnection: close\r\n", 1);
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    (status, body)
}

fn post(addr: std::net::SocketAddr, path: &str, body: &str) -> (u16, String) {
    raw(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

#[test]
fn round_trip_equals_the_engine_run_directly() {
    let server = Server::new(bigram(), ServeConfig::loopback())
        .spawn()
        .unwrap();
    let http = client(server.base_url());
    let direct = bigram();
    let v = direct.vocab().clone();
    let prompts = vec![
        Prompt::Tokens(v.encode("he", false).unwrap()),
        Prompt::Text("wh".into()),
        Prompt::Tokens(v.encode("d", false).unwrap()),
    ];
    let params = SamplingParams {
        n: 3,
        max_new_tokens: 12,
        temperature: 0.8,
        top_k: Some(6),
        top_p: 0.95,
        stop: vec!["or".into(), " t".into()],
        seed: Some(2024),
        ..Default::default()
    };
    let over_http = http.generate(&prompts, &params).unwrap();
    let local = direct.generate(&prompts, &params).unwrap();
    assert_eq!(over_http, local);
    assert!(
        over_http
            .iter()
            .flatten()
            .all(|c| c.logprobs.len() == c.token_ids.len())
    );
    assert_eq!(http.models().unwrap(), vec!["bigram".to_string()]);
    server.shutdown();
}

#[test]
fn chat_round_trip() {
    let v = CharVocab::new("user: hello\nassistant");
    let table = vec![vec![0.0; v.len()]; v.len()];
    let make = || BigramEngine::new(v.clone(), table.clone(), 3).unwrap();
    let server = Server::new(make(), ServeConfig::loopback())
        .spawn()
        .unwrap();
    let http = client(server.base_url());
    let prompts = [Prompt::Chat(vec![Message::new("user", "hello")])];
    let params = SamplingParams {
        n: 2,
        max_new_tokens: 6,
        seed: Some(5),
        ..Default::default()
    };
    assert_eq!(
        http.generate(&prompts, &params).unwrap(),
        make().generate(&prompts, &params).unwrap()
    );
}

#[test]
fn bad_requests_get_json_errors() {
    let server = Server::new(
        bigram(),
        ServeConfig {
            max_body_bytes: 1000,
            ..ServeConfig::loopback()
        },
    )
    .spawn()
    .unwrap();
    let addr = server.addr();
    let (status, body) = post(addr, "/v1/completions", "{not json");
    assert_eq!(status, 400);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("malformed request body")
    );
    let (status, body) = post(addr, "/v1/completions", r#"{"prompt": "he", "top_p": 2.0}"#);
    assert_eq!(status, 400);
    assert!(body.contains("top_p"), "{body}");
    // Streaming is supported now; `echo` still is not.
    let (status, body) = post(
        addr,
        "/v1/completions",
        r#"{"prompt": "he", "stream": true}"#,
    );
    assert_eq!(status, 200);
    assert!(body.contains("data: [DONE]"), "{body}");
    let (status, body) = post(addr, "/v1/completions", r#"{"prompt": "he", "echo": true}"#);
    assert_eq!(status, 400);
    assert!(body.contains("not supported"), "{body}");
    let (status, _) = post(addr, "/v1/nothing", "{}");
    assert_eq!(status, 404);
    let (status, _) = raw(addr, "GET /v1/completions HTTP/1.1\r\n\r\n");
    assert_eq!(status, 405);
    let big = format!(r#"{{"prompt": "{}"}}"#, "h".repeat(5000));
    let (status, body) = post(addr, "/v1/completions", &big);
    assert_eq!(status, 413);
    assert!(body.contains("limit"));
    let (status, _) = raw(addr, "GET /health HTTP/1.1\r\n\r\n");
    assert_eq!(status, 200);
    // A valid raw request: OpenAI fields, prompt batch, choices prompt-major.
    let (status, body) = post(
        addr,
        "/v1/completions",
        r#"{"model": "bigram", "prompt": ["he", "wh"], "n": 2, "max_tokens": 4, "logprobs": 0, "seed": 1, "return_tokens_as_token_ids": true}"#,
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let idx: Vec<u64> = v["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["index"].as_u64().unwrap())
        .collect();
    assert_eq!(idx, vec![0, 1, 2, 3]);
    assert!(
        v["choices"][0]["logprobs"]["tokens"][0]
            .as_str()
            .unwrap()
            .starts_with("token_id:")
    );
}

#[test]
fn server_errors_become_typed_errors() {
    let server = Server::new(bigram(), ServeConfig::loopback())
        .spawn()
        .unwrap();
    let http = client(server.base_url());
    // Id 999 is outside the vocabulary: the server answers 400, which is not retried.
    let r = http.generate(&[Prompt::Tokens(vec![999])], &SamplingParams::default());
    match r {
        Err(RolloutError::Status {
            status: 400,
            attempts: 1,
            url,
            body,
        }) => {
            assert!(url.ends_with("/v1/completions"));
            assert!(body.contains("outside the vocabulary"), "{body}");
        }
        other => panic!("expected a 400 status error, got {other:?}"),
    }
}

#[test]
fn text_only_servers_need_a_tokenizer() {
    // A vocabulary without EOS in any row so every token has a text form.
    let v = CharVocab::new("abc");
    let mut table = vec![vec![0.0f32; v.len()]; v.len()];
    for row in &mut table {
        row[0] = f32::NEG_INFINITY;
    }
    let make = || BigramEngine::new(v.clone(), table.clone(), 0).unwrap();
    let server = Server::new(make(), ServeConfig::loopback())
        .spawn()
        .unwrap();
    let config = HttpConfig {
        request_token_ids: false,
        ..HttpConfig::new(server.base_url())
    };
    let params = SamplingParams {
        n: 2,
        max_new_tokens: 5,
        seed: Some(8),
        ..Default::default()
    };
    let prompts = [Prompt::Text("ab".into())];
    let without = HttpEngine::new(config.clone())
        .unwrap()
        .generate(&prompts, &params);
    assert!(
        matches!(without, Err(RolloutError::TokenIdsUnavailable { .. })),
        "{without:?}"
    );
    let with = HttpEngine::new(config).unwrap().with_tokenizer(v.clone());
    assert_eq!(
        with.generate(&prompts, &params).unwrap(),
        make().generate(&prompts, &params).unwrap()
    );
}

#[test]
fn concurrency_limit_is_respected() {
    let engine = Arc::new(Slow::new(bigram(), Duration::from_millis(100)));
    let server = Server::from_arc(engine.clone(), ServeConfig::loopback())
        .spawn()
        .unwrap();
    let http = HttpEngine::new(HttpConfig {
        max_concurrency: 3,
        ..HttpConfig::new(server.base_url())
    })
    .unwrap();
    let prompts: Vec<Prompt> = (0..12).map(|_| Prompt::Text("he".into())).collect();
    let params = SamplingParams {
        max_new_tokens: 3,
        seed: Some(0),
        ..Default::default()
    };
    assert_eq!(http.generate(&prompts, &params).unwrap().len(), 12);
    // The engine thread decodes what is queued together: a batch never holds more requests
    // than the client keeps in flight, and does hold more than one.
    let max = engine.max_batch.load(Ordering::SeqCst);
    assert!(
        max <= 3,
        "{max} requests in one batch with a client limit of 3"
    );
    assert!(max >= 2, "requests never overlapped ({max})");
    assert_eq!(engine.calls.load(Ordering::SeqCst), 12);
}

#[test]
fn server_killed_mid_batch_gives_a_typed_error_in_bounded_time() {
    let engine = Arc::new(Slow::new(bigram(), Duration::from_millis(40)));
    let server = Server::from_arc(engine.clone(), ServeConfig::loopback())
        .spawn()
        .unwrap();
    let base = server.base_url();
    let port = server.addr().port().to_string();
    let http = client(base);
    let prompts: Vec<Prompt> = (0..200).map(|_| Prompt::Text("he".into())).collect();
    let params = SamplingParams {
        max_new_tokens: 4,
        seed: Some(0),
        ..Default::default()
    };
    let killer = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            while engine.calls.load(Ordering::SeqCst) < 5 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            server.abort();
        })
    };
    let start = Instant::now();
    let r = http.generate(&prompts, &params);
    let elapsed = start.elapsed();
    killer.join().unwrap();
    match r {
        Err(RolloutError::ServerUnreachable { url, attempts, .. }) => {
            assert!(url.contains(&port), "{url}");
            assert_eq!(attempts, 3);
        }
        other => panic!("expected ServerUnreachable, got {other:?}"),
    }
    assert!(engine.calls.load(Ordering::SeqCst) < 200);
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
}

/// Fails its first `failures` calls with a model error (the server answers 500).
struct Flaky {
    inner: BigramEngine,
    failures: usize,
    calls: std::sync::atomic::AtomicUsize,
}

impl RolloutEngine for Flaky {
    fn generate(
        &self,
        prompts: &[Prompt],
        params: &SamplingParams,
    ) -> rlft_rollout::Result<Vec<Vec<rlft_core::Completion>>> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
            return Err(RolloutError::Model {
                reason: "transient failure".into(),
            });
        }
        self.inner.generate(prompts, params)
    }
}

#[test]
fn server_errors_are_retried_then_reported() {
    let params = SamplingParams {
        max_new_tokens: 4,
        seed: Some(1),
        ..Default::default()
    };
    let prompts = [Prompt::Text("he".into())];
    // Two 500s, then success on the third and last attempt.
    let flaky = Flaky {
        inner: bigram(),
        failures: 2,
        calls: Default::default(),
    };
    let server = Server::new(flaky, ServeConfig::loopback()).spawn().unwrap();
    let got = client(server.base_url())
        .generate(&prompts, &params)
        .unwrap();
    assert_eq!(got, bigram().generate(&prompts, &params).unwrap());
    // Three 500s: the error names the status, the attempts and the server's message.
    let flaky = Flaky {
        inner: bigram(),
        failures: 3,
        calls: Default::default(),
    };
    let server = Server::new(flaky, ServeConfig::loopback()).spawn().unwrap();
    match client(server.base_url()).generate(&prompts, &params) {
        Err(RolloutError::Status {
            status: 500,
            attempts: 3,
            body,
            ..
        }) => {
            assert!(body.contains("transient failure"), "{body}");
        }
        other => panic!("expected a 500 status error, got {other:?}"),
    }
}

#[test]
fn connections_over_the_limit_get_503() {
    let server = Server::new(
        bigram(),
        ServeConfig {
            max_connections: 1,
            ..ServeConfig::loopback()
        },
    )
    .spawn()
    .unwrap();
    // An idle connection occupies the only slot.
    let idle = TcpStream::connect(server.addr()).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let (status, body) = raw(server.addr(), "GET /health HTTP/1.1\r\n\r\n");
    assert_eq!(status, 503, "{body}");
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = raw(server.addr(), "GET /health HTTP/1.1\r\n\r\n");
        if status == 200 || Instant::now() > deadline {
            assert_eq!(status, 200);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
