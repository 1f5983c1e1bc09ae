//! `rlft serve` answers the OpenAI-compatible API with what the local engine generates.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::QWEN2;
use rlft_models::{CausalLm, ChatTokenizer, LoadOptions};
use rlft_rollout::{
    HttpConfig, HttpEngine, LocalConfig, LocalEngine, Prompt, RolloutEngine, SamplingParams,
};

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_returns_the_local_engines_greedy_completions() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rlft"))
        .args(["serve", "--model", QWEN2, "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Kill(child);
    let mut url = String::new();
    BufReader::new(stdout).read_line(&mut url).unwrap();
    let url = url.trim().to_string();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/v1"),
        "{url:?}"
    );

    let tok = ChatTokenizer::from_dir(QWEN2).unwrap();
    let local = LocalEngine::new(
        CausalLm::from_pretrained(QWEN2, &burn::tensor::Device::flex(), LoadOptions::default())
            .unwrap(),
        Some(tok.clone()),
        LocalConfig::default(),
    )
    .unwrap();
    let http = HttpEngine::new(HttpConfig::new(url)).unwrap();
    let prompts = vec![
        Prompt::Tokens(tok.encode("What is 2+3?", false).unwrap()),
        Prompt::Tokens(tok.encode("Say hello.", false).unwrap()),
    ];
    let params = SamplingParams::greedy(6);
    let remote = http.generate(&prompts, &params).unwrap();
    let here = local.generate(&prompts, &params).unwrap();
    let ids = |v: &Vec<Vec<rlft_core::Completion>>| -> Vec<Vec<u32>> {
        v.iter().flatten().map(|c| c.token_ids.clone()).collect()
    };
    assert_eq!(ids(&remote), ids(&here));
    drop(child);
}

/// One HTTP/1 exchange on a fresh connection; returns (status, body).
fn http(addr: &str, request: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|x| x.1.to_string());
    (status, body.unwrap_or_default())
}

#[test]
fn serve_needs_its_api_key_and_refuses_a_prompt_beyond_the_context() {
    // Issue 18: a 40,000-character prompt used to abort the process on a multi-GB allocation.
    let mut child = Command::new(env!("CARGO_BIN_EXE_rlft"))
        .args(["serve", "--model", QWEN2, "--addr", "127.0.0.1:0"])
        .args(["--api-key-env", "RLFT_TEST_SERVE_KEY"])
        .env("RLFT_TEST_SERVE_KEY", "k3y")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Kill(child);
    let mut url = String::new();
    BufReader::new(stdout).read_line(&mut url).unwrap();
    let addr = url
        .trim()
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_string();
    let post = |body: &str, key: &str| {
        http(
            &addr,
            &format!(
                "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{key}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        )
    };
    let health = http(
        &addr,
        "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(health.0, 200);
    let small = r#"{"prompt": "Say hello.", "max_tokens": 3}"#;
    assert_eq!(post(small, "").0, 401);
    let key = "Authorization: Bearer k3y\r\n";
    assert_eq!(post(small, key).0, 200);
    let long = format!(
        r#"{{"prompt": "{}", "max_tokens": 4}}"#,
        "a ".repeat(20_000)
    );
    let (status, body) = post(&long, key);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("context of 128 tokens"), "{body}");
    // Still serving.
    assert_eq!(post(small, key).0, 200);
    drop(child);
    // A key variable that is not set is an error before anything is served.
    let out = Command::new(env!("CARGO_BIN_EXE_rlft"))
        .args(["serve", "--model", QWEN2, "--addr", "127.0.0.1:0"])
        .args(["--api-key-env", "RLFT_TEST_SERVE_KEY_UNSET"])
        .env_remove("RLFT_TEST_SERVE_KEY_UNSET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("RLFT_TEST_SERVE_KEY_UNSET"), "{err}");
}
