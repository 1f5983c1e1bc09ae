//! The HTTP engine against hand-made and absent servers on loopback (ephemeral ports). Its
//! round trips against rlft's own server live in rlft-serve's `tests/client.rs`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use rlft_rollout::{HttpConfig, HttpEngine, Prompt, RolloutEngine, RolloutError, SamplingParams};

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

#[test]
fn no_server_at_all() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http = HttpEngine::new(HttpConfig {
        model: Some("m".into()),
        ..client(format!("http://127.0.0.1:{port}/v1"))
            .config()
            .clone()
    })
    .unwrap();
    let r = http.generate(&[Prompt::Tokens(vec![1])], &SamplingParams::default());
    match r {
        Err(e @ RolloutError::ServerUnreachable { attempts: 3, .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("127.0.0.1:{port}")) && msg.contains("3 attempt"),
                "{msg}"
            );
        }
        other => panic!("expected ServerUnreachable, got {other:?}"),
    }
}

/// A one-shot-per-connection server answering every request with `body` (status 200).
fn canned(body: &'static str, requests: usize) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        for _ in 0..requests {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            // Read the head and the body (Content-Length) before answering.
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = s.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf);
                if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if rest.len() >= len {
                        break;
                    }
                }
            }
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(reply.as_bytes());
        }
    });
    (url, handle)
}

#[test]
fn malformed_replies_are_typed_errors_not_panics() {
    let cases = [
        "not json at all",
        "{}",
        r#"{"choices": [{"index": 3, "text": "x"}]}"#,
        r#"{"choices": [{"index": 0, "text": "x"}, {"index": 0, "text": "y"}]}"#,
        r#"{"choices": []}"#,
        r#"{"choices": [{"index": 0, "text": "x", "logprobs": {"tokens": ["token_id:1", "token_id:2"], "token_logprobs": [-0.5]}}]}"#,
        r#"{"choices": [{"index": 0, "text": "x", "logprobs": {"tokens": ["token_id:99999999999"], "token_logprobs": [-0.5]}}]}"#,
    ];
    for body in cases {
        let (url, server) = canned(body, 1);
        let http = HttpEngine::new(HttpConfig {
            model: Some("m".into()),
            ..HttpConfig::new(url)
        })
        .unwrap();
        let r = http.generate(&[Prompt::Tokens(vec![1])], &SamplingParams::default());
        assert!(
            matches!(
                r,
                Err(RolloutError::Reply { .. } | RolloutError::TokenIdsUnavailable { .. })
            ),
            "{body}: {r:?}"
        );
        server.join().unwrap();
    }
    // A well-formed reply parses.
    let (url, server) = canned(
        r#"{"choices": [{"index": 0, "text": "ab", "finish_reason": "length", "logprobs": {"tokens": ["token_id:5", "token_id:6"], "token_logprobs": [-0.25, -1.5]}}]}"#,
        1,
    );
    let http = HttpEngine::new(HttpConfig {
        model: Some("m".into()),
        ..HttpConfig::new(url)
    })
    .unwrap();
    let c = http
        .generate(&[Prompt::Tokens(vec![1])], &SamplingParams::default())
        .unwrap()
        .remove(0)
        .remove(0);
    assert_eq!(
        (c.token_ids, c.logprobs, c.text.as_str(), c.finished),
        (vec![5, 6], vec![-0.25, -1.5], "ab", false)
    );
    server.join().unwrap();
}
