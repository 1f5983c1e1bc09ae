//! The server's HTTP behaviour against raw clients, including every server reproduction of
//! issue 18: `n = u64::MAX`, a 40,000-character prompt, `max_tokens` 1e9 with a client that
//! disconnects, 70 slowloris connections, a pipelined second request, chunked request bodies,
//! `"stream": true`, unknown fields, `logit_bias`, a wrong `model` and unknown roles.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{
    Slow, WithContext, bigram, get, metric, post, post_request, raw, read_reply, sse_data,
};
use rlft_serve::{ServeConfig, Server, ServerHandle};

fn serve(config: ServeConfig) -> ServerHandle {
    Server::new(bigram(), config).spawn().unwrap()
}

/// Poll `/metrics` until `check` holds (at most `secs`).
fn wait_metrics(server: &ServerHandle, secs: u64, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let body = get(server.addr(), "/metrics").body;
        if check(&body) || Instant::now() > deadline {
            return body;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn issue_18_n_u64_max_is_refused_naming_n() {
    let server = serve(ServeConfig::loopback());
    let r = post(
        server.addr(),
        "/v1/completions",
        r#"{"prompt": "he", "n": 18446744073709551615}"#,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let v = r.json();
    assert_eq!(v["error"]["param"], "n");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("--max-n"),
        "{v}"
    );
    // The server is still there.
    assert_eq!(get(server.addr(), "/health").status, 200);
}

#[test]
fn issue_18_a_prompt_longer_than_the_context_is_refused() {
    let server = Server::new(WithContext(bigram(), 256), ServeConfig::loopback())
        .spawn()
        .unwrap();
    let prompt = "h".repeat(40_000);
    let r = post(
        server.addr(),
        "/v1/completions",
        &format!(r#"{{"prompt": "{prompt}", "max_tokens": 4}}"#),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(msg.contains("40000") && msg.contains("256"), "{msg}");
    // Within the context it runs; the sum is what counts.
    let ok = post(
        server.addr(),
        "/v1/completions",
        r#"{"prompt": "he", "max_tokens": 254, "seed": 1}"#,
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    let over = post(
        server.addr(),
        "/v1/completions",
        r#"{"prompt": "he", "max_tokens": 255}"#,
    );
    assert_eq!(over.status, 400, "{}", over.body);
    assert_eq!(over.json()["error"]["param"], "max_tokens");
    // An explicit cap on max_tokens.
    let capped = Server::new(
        bigram(),
        ServeConfig {
            max_tokens_limit: Some(100),
            ..ServeConfig::loopback()
        },
    )
    .spawn()
    .unwrap();
    let r = post(
        capped.addr(),
        "/v1/completions",
        r#"{"prompt": "he", "max_tokens": 1e9}"#,
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("--max-tokens-limit"), "{}", r.body);
}

#[test]
fn issue_18_a_disconnect_stops_an_endless_generation() {
    let server = serve(ServeConfig::loopback());
    // Streaming: read the first event, then leave.
    {
        let mut s = TcpStream::connect(server.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let body = r#"{"prompt": "he", "max_tokens": 1e9, "ignore_eos": true, "stream": true}"#;
        s.write_all(post_request("/v1/completions", body, "").as_bytes())
            .unwrap();
        let mut first = [0u8; 256];
        let n = s.read(&mut first).unwrap();
        assert!(
            String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&first[..n])
        );
    }
    let m = wait_metrics(&server, 10, |m| {
        metric(m, "rlft_requests_cancelled_total") == Some(1.0)
            && metric(m, "rlft_requests_running") == Some(0.0)
    });
    assert_eq!(
        metric(&m, "rlft_requests_cancelled_total"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(metric(&m, "rlft_requests_running"), Some(0.0), "{m}");
    // Not streaming: send, wait until it runs, leave.
    {
        let mut s = TcpStream::connect(server.addr()).unwrap();
        let body = r#"{"prompt": "he", "max_tokens": 1000000000, "ignore_eos": true}"#;
        s.write_all(post_request("/v1/completions", body, "").as_bytes())
            .unwrap();
        wait_metrics(&server, 10, |m| {
            metric(m, "rlft_requests_running") == Some(1.0)
        });
    }
    let m = wait_metrics(&server, 10, |m| {
        metric(m, "rlft_requests_cancelled_total") == Some(2.0)
            && metric(m, "rlft_requests_running") == Some(0.0)
    });
    assert_eq!(
        metric(&m, "rlft_requests_cancelled_total"),
        Some(2.0),
        "{m}"
    );
    // 64 such clients leave nothing behind.
    for _ in 0..64 {
        let mut s = TcpStream::connect(server.addr()).unwrap();
        let body = r#"{"prompt": "he", "max_tokens": 1e9, "ignore_eos": true, "stream": true}"#;
        s.write_all(post_request("/v1/completions", body, "").as_bytes())
            .unwrap();
    }
    let m = wait_metrics(&server, 20, |m| {
        metric(m, "rlft_requests_running") == Some(0.0)
            && metric(m, "rlft_queue_depth") == Some(0.0)
    });
    assert_eq!(metric(&m, "rlft_requests_running"), Some(0.0), "{m}");
    let t = Instant::now();
    assert_eq!(get(server.addr(), "/health").status, 200);
    assert!(t.elapsed() < Duration::from_secs(1));
}

#[test]
fn issue_18_seventy_slowloris_connections_starve_nobody() {
    let server = serve(ServeConfig {
        head_timeout_secs: 2.0,
        ..ServeConfig::loopback()
    });
    let addr = server.addr();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let slow: Vec<_> = (0..70)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                let head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ";
                let mut sent = 0;
                // One header byte every 100 ms, never finishing the head.
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let byte = head.get(sent).copied().unwrap_or(b'a');
                    if s.write_all(&[byte]).is_err() {
                        return true; // the server closed it
                    }
                    sent += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                false
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..20 {
        let t = Instant::now();
        let r = post(
            addr,
            "/v1/completions",
            r#"{"prompt": "he", "max_tokens": 4, "seed": 1}"#,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    }
    // The head deadline closes them (2 s), long before the test's 10 s.
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let closed = slow
        .into_iter()
        .map(|h| h.join().unwrap_or(false))
        .filter(|&c| c)
        .count();
    assert_eq!(closed, 70, "the server kept slow heads open");
}

#[test]
fn issue_18_pipelined_requests_and_keep_alive() {
    let server = serve(ServeConfig::loopback());
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = r#"{"prompt": "he", "max_tokens": 3, "seed": 2}"#;
    // Two requests in one write.
    let both = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\n\r\n{}",
        post_request("/v1/completions", body, "")
    );
    s.write_all(both.as_bytes()).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let first = read_reply(&mut r).unwrap();
    let second = read_reply(&mut r).unwrap();
    assert_eq!((first.status, second.status), (200, 200), "{}", second.body);
    assert_eq!(second.json()["choices"].as_array().unwrap().len(), 1);
    // And a third on the same connection, later.
    s.write_all(post_request("/v1/completions", body, "").as_bytes())
        .unwrap();
    let third = read_reply(&mut r).unwrap();
    assert_eq!(third.status, 200);
    assert_eq!(
        third.json()["choices"][0]["text"],
        second.json()["choices"][0]["text"]
    );
}

#[test]
fn issue_18_chunked_request_bodies() {
    let server = serve(ServeConfig::loopback());
    let body = r#"{"prompt": "he", "max_tokens": 3, "seed": 2}"#;
    let (a, b) = body.split_at(10);
    let req = format!(
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    let chunked = raw(server.addr(), &req);
    assert_eq!(chunked.status, 200, "{}", chunked.body);
    let plain = post(server.addr(), "/v1/completions", body);
    assert_eq!(chunked.json()["choices"], plain.json()["choices"]);
}

#[test]
fn issue_18_streaming_gives_the_same_text_as_one_answer() {
    // A vocabulary that can spell the chat template's words.
    let v = rlft_rollout::CharVocab::new("user: hello\nassistant wd");
    let table = vec![vec![0.0; v.len()]; v.len()];
    let engine = rlft_rollout::BigramEngine::new(v, table, 3).unwrap();
    let server = Server::new(engine, ServeConfig::loopback())
        .spawn()
        .unwrap();
    for (path, body) in [
        (
            "/v1/completions",
            r#"{"prompt": ["he", "wo"], "n": 2, "max_tokens": 12, "seed": 5, "stop": ["el", " t"]}"#,
        ),
        (
            "/v1/chat/completions",
            r#"{"messages": [{"role": "user", "content": "hello"}], "n": 2, "max_tokens": 10, "seed": 5}"#,
        ),
    ] {
        let whole = post(server.addr(), path, body);
        assert_eq!(whole.status, 200, "{}", whole.body);
        let whole = whole.json();
        let streamed_body = body.replacen(
            '{',
            r#"{"stream": true, "stream_options": {"include_usage": true}, "#,
            1,
        );
        let r = post(server.addr(), path, &streamed_body);
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            r.header("content-type")
                .unwrap()
                .starts_with("text/event-stream")
        );
        let data = sse_data(&r.body);
        assert_eq!(
            data.last().map(String::as_str),
            Some("[DONE]"),
            "{}",
            r.body
        );
        let choices = whole["choices"].as_array().unwrap();
        let mut texts = vec![String::new(); choices.len()];
        let mut finish = vec![None; choices.len()];
        let mut usage = None;
        for d in &data[..data.len() - 1] {
            let v: serde_json::Value = serde_json::from_str(d).unwrap();
            if let Some(u) = v.get("usage") {
                usage = Some(u.clone());
                continue;
            }
            let c = &v["choices"][0];
            let i = c["index"].as_u64().unwrap() as usize;
            let piece = if path == "/v1/completions" {
                c["text"].as_str()
            } else {
                c["delta"]["content"].as_str()
            };
            texts[i].push_str(piece.unwrap_or(""));
            if let Some(f) = c["finish_reason"].as_str() {
                finish[i] = Some(f.to_string());
            }
        }
        for (i, c) in choices.iter().enumerate() {
            let text = c["text"]
                .as_str()
                .or(c["message"]["content"].as_str())
                .unwrap();
            assert_eq!(texts[i], text, "{path} choice {i}");
            assert_eq!(finish[i].as_deref(), c["finish_reason"].as_str());
        }
        assert_eq!(usage.as_ref(), Some(&whole["usage"]), "{path}");
    }
}

#[test]
fn issue_18_unknown_fields_unsupported_parameters_wrong_model_unknown_roles() {
    let server = serve(ServeConfig::loopback());
    let addr = server.addr();
    let cases = [
        (
            "/v1/completions",
            r#"{"prompt": "he", "temprature": 0.5}"#,
            400,
            "temprature",
            "unknown field",
        ),
        (
            "/v1/chat/completions",
            r#"{"messages": [{"role": "user", "content": "x"}], "logit_bias": {"5": 10}}"#,
            400,
            "logit_bias",
            "not supported",
        ),
        (
            "/v1/completions",
            r#"{"prompt": "he", "presence_penalty": 1.5}"#,
            400,
            "presence_penalty",
            "not supported",
        ),
        (
            "/v1/completions",
            r#"{"prompt": "he", "model": "gpt-4"}"#,
            404,
            "model",
            "gpt-4",
        ),
        (
            "/v1/chat/completions",
            r#"{"messages": [{"role": "wizard", "content": "x"}]}"#,
            400,
            "messages",
            "unknown role",
        ),
    ];
    for (path, body, status, param, words) in cases {
        let r = post(addr, path, body);
        assert_eq!(r.status, status, "{body}: {}", r.body);
        let v = r.json();
        assert_eq!(v["error"]["param"], param, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(words),
            "{v}"
        );
    }
    // The right model name, and none, both work.
    for body in [
        r#"{"prompt": "he", "model": "bigram"}"#,
        r#"{"prompt": "he"}"#,
    ] {
        assert_eq!(post(addr, "/v1/completions", body).status, 200);
    }
}

#[test]
fn size_limits_and_routes() {
    let server = serve(ServeConfig {
        max_body_bytes: 1000,
        ..ServeConfig::loopback()
    });
    let addr = server.addr();
    let big = format!(r#"{{"prompt": "{}"}}"#, "h".repeat(5000));
    let r = post(addr, "/v1/completions", &big);
    assert_eq!(r.status, 413);
    assert!(r.body.contains("--max-body-bytes"), "{}", r.body);
    // A head over 16 KiB.
    let r = raw(
        addr,
        &format!(
            "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(20_000)
        ),
    );
    assert_eq!(r.status, 431);
    assert_eq!(post(addr, "/v1/nothing", "{}").status, 404);
    let r = get(addr, "/v1/completions");
    assert_eq!(r.status, 405);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("GET")
    );
    let r = get(addr, "/v1/models");
    assert_eq!(r.json()["data"][0]["id"], "bigram");
    assert_eq!(post(addr, "/v1/completions", "{not json").status, 400);
}

#[test]
fn a_full_queue_answers_429_with_retry_after() {
    let engine = Slow::new(bigram(), Duration::from_millis(300));
    let server = Server::new(
        engine,
        ServeConfig {
            max_queue: 1,
            max_batch_requests: 1,
            batch_window_ms: 0,
            ..ServeConfig::loopback()
        },
    )
    .spawn()
    .unwrap();
    let addr = server.addr();
    let replies: Vec<_> = (0..6)
        .map(|_| {
            std::thread::spawn(move || {
                post(
                    addr,
                    "/v1/completions",
                    r#"{"prompt": "he", "max_tokens": 2}"#,
                )
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let full: Vec<_> = replies.iter().filter(|r| r.status == 429).collect();
    assert!(
        !full.is_empty(),
        "no 429 among {:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(full.iter().all(|r| r.header("retry-after") == Some("1")));
    assert!(replies.iter().all(|r| r.status == 200 || r.status == 429));
    assert!(replies.iter().any(|r| r.status == 200));
}

#[test]
fn the_request_deadline_answers_408() {
    let server = Server::new(
        Slow::new(bigram(), Duration::from_millis(1500)),
        ServeConfig {
            request_timeout_secs: 0.3,
            ..ServeConfig::loopback()
        },
    )
    .spawn()
    .unwrap();
    let t = Instant::now();
    let r = post(server.addr(), "/v1/completions", r#"{"prompt": "he"}"#);
    assert_eq!(r.status, 408, "{}", r.body);
    assert!(t.elapsed() < Duration::from_millis(1400));
}

#[test]
fn the_api_key_guards_everything_but_health() {
    let server = serve(ServeConfig {
        api_key: Some("sekrit".into()),
        ..ServeConfig::loopback()
    });
    let addr = server.addr();
    assert_eq!(get(addr, "/health").status, 200);
    for path in ["/v1/models", "/metrics"] {
        let r = get(addr, path);
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    let body = r#"{"prompt": "he", "max_tokens": 2}"#;
    assert_eq!(post(addr, "/v1/completions", body).status, 401);
    let wrong = raw(
        addr,
        &post_request("/v1/completions", body, "Authorization: Bearer nope\r\n"),
    );
    assert_eq!(wrong.status, 401);
    let right = raw(
        addr,
        &post_request("/v1/completions", body, "Authorization: Bearer sekrit\r\n"),
    );
    assert_eq!(right.status, 200, "{}", right.body);
    let r = raw(
        addr,
        "GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sekrit\r\n\r\n",
    );
    assert_eq!(r.status, 200);
}

#[test]
fn metrics_count_requests_tokens_and_latency() {
    let server = serve(ServeConfig::loopback());
    let r = post(
        server.addr(),
        "/v1/completions",
        r#"{"prompt": "he", "max_tokens": 5, "ignore_eos": true, "seed": 0}"#,
    );
    assert_eq!(r.status, 200);
    let m = get(server.addr(), "/metrics");
    assert_eq!(m.status, 200);
    let body = m.body;
    assert_eq!(
        metric(
            &body,
            r#"rlft_requests_total{route="/v1/completions",status="200"}"#
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        metric(&body, "rlft_generation_tokens_total"),
        Some(5.0),
        "{body}"
    );
    assert!(
        body.contains("rlft_request_latency_seconds_bucket"),
        "{body}"
    );
    assert!(body.contains("rlft_queue_depth"));
    assert!(metric(&body, "rlft_generation_tokens_per_second").unwrap() > 0.0);
}
