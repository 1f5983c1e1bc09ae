//! The HTTP backend against a loopback OpenAI-compatible stand-in that serves the fixture
//! script: 429 and 5xx storms, timeouts, a restart mid-run, exhausted retries, 4xx. Every
//! run must give the same bytes as the in-process scripted run: nothing lost, nothing
//! duplicated.

mod common;
#[path = "common/server.rs"]
mod server;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use rlft_webscale::{
    Backend, HttpChatConfig, HttpChatModel, LLM_STAGES, Models, Pipeline, Progress, Shard,
    WebscaleConfig,
};
use server::{Reply, StandIn, fixture_reply};

/// The fixture config with every stage on `url`, fast retries.
fn http_config(out: &Path, url: &str, timeout: f64, retries: u32) -> WebscaleConfig {
    let mut c = fixture_config(out);
    for stage in LLM_STAGES {
        let m = match stage {
            "filter" => &mut c.models.filter,
            "tagger" => &mut c.models.tagger,
            "generator" => &mut c.models.generator,
            _ => &mut c.models.checker,
        };
        m.backend = Backend::Http;
        m.model = Some(format!("scripted-{stage}"));
        m.http.base_urls = vec![url.to_string()];
        m.http.timeout_secs = timeout;
        m.http.max_retries = retries;
        m.http.backoff_initial_ms = 20;
        m.http.backoff_max_ms = 300;
        m.http.jitter_ms = 10;
    }
    c
}

fn run_http(cfg: WebscaleConfig) -> rlft_webscale::RunOutput {
    let models = Models::from_config(&cfg, None).unwrap();
    Pipeline::new(cfg, models)
        .unwrap()
        .run(Shard::default(), &Progress::default())
        .unwrap()
}

/// The reference: the in-process scripted run.
fn reference() -> Vec<(String, String)> {
    let dir = tmp("http-ref");
    let (m, _) = fixture_models();
    Pipeline::new(fixture_config(&dir), m)
        .unwrap()
        .run(Shard::default(), &Progress::default())
        .unwrap();
    let out = output_bytes(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    out
}

fn no_loss(out: &rlft_webscale::RunOutput) {
    assert_eq!(out.stats.retryable_failures, 0);
    assert_eq!(out.records.len(), 50, "nothing lost");
    let ids: HashSet<&str> = out.records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), out.records.len(), "nothing duplicated");
}

#[test]
fn storms_of_429_and_5xx_and_timeouts() {
    let want = reference();
    let server = StandIn::start(
        "127.0.0.1:0",
        Arc::new(|n: usize, req: &serde_json::Value| {
            if n < 40 {
                return Reply::Status(429); // a storm at the start
            }
            match n % 9 {
                1 => Reply::Status(503),
                4 => Reply::Status(500),
                6 => Reply::Status(429),
                7 if n % 2 == 1 => Reply::Slow(Duration::from_millis(1500), fixture_reply(req)),
                _ => Reply::Text(fixture_reply(req)),
            }
        }),
    );
    let dir = tmp("http-storm");
    let out = run_http(http_config(&dir, &server.base_url(), 0.5, 12));
    no_loss(&out);
    assert_same(&output_bytes(&dir), &want, "storm");
    assert!(
        server.received.load(Ordering::SeqCst) > 159 + 40,
        "faults were injected"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn server_restart_mid_run() {
    let want = reference();
    let handler: Arc<server::Handler> = Arc::new(|_: usize, req: &serde_json::Value| {
        Reply::Slow(Duration::from_millis(2), fixture_reply(req))
    });
    let first = StandIn::start("127.0.0.1:0", handler.clone());
    let url = first.base_url();
    let (received, answered) = (first.received.clone(), first.answered.clone());
    let restarter = std::thread::spawn(move || {
        while first.received.load(Ordering::SeqCst) < 60 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let addr = first.stop();
        std::thread::sleep(Duration::from_millis(400));
        StandIn::start_counting(&addr.to_string(), handler, received, answered)
    });
    let dir = tmp("http-restart");
    let mut cfg = http_config(&dir, &url, 5.0, 12);
    cfg.concurrency.max_in_flight = 8;
    let out = run_http(cfg);
    let second = restarter.join().unwrap();
    no_loss(&out);
    assert_same(&output_bytes(&dir), &want, "restart");
    assert!(second.answered.load(Ordering::SeqCst) >= 159);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn exhausted_retries_are_retried_on_resume() {
    let want = reference();
    let dir = tmp("http-exhausted");
    {
        let down = StandIn::start(
            "127.0.0.1:0",
            Arc::new(|_: usize, req: &serde_json::Value| {
                if req["model"] == "scripted-checker" {
                    Reply::Status(503)
                } else {
                    Reply::Text(fixture_reply(req))
                }
            }),
        );
        let out = run_http(http_config(&dir, &down.base_url(), 5.0, 2));
        assert_eq!(out.stats.retryable_failures, 53, "every checker unit");
        assert!(
            out.failures
                .iter()
                .filter(|f| f.reason == "api_error")
                .all(|f| f.retryable && f.stage == "s6")
        );
        assert_eq!(
            rlft_webscale::read_manifest(&dir).unwrap().status,
            "retryable_failures"
        );
        assert_eq!(
            down.received.load(Ordering::SeqCst),
            26 + 25 + 55 + 53 * 3,
            "1 + 2 retries per checker call"
        );
    }
    let up = StandIn::start(
        "127.0.0.1:0",
        Arc::new(|_: usize, req: &serde_json::Value| Reply::Text(fixture_reply(req))),
    );
    let out = run_http(http_config(&dir, &up.base_url(), 5.0, 2));
    no_loss(&out);
    assert_eq!(
        up.received.load(Ordering::SeqCst),
        53,
        "only the failed calls are made again"
    );
    assert_same(&output_bytes(&dir), &want, "resumed");
    // And a third run makes no call at all.
    let out = run_http(http_config(&dir, &up.base_url(), 5.0, 2));
    assert_eq!((out.calls, up.received.load(Ordering::SeqCst)), (0, 53));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn client_errors_are_terminal_and_not_retried() {
    let server = StandIn::start(
        "127.0.0.1:0",
        Arc::new(|_: usize, req: &serde_json::Value| {
            if req["model"] == "scripted-generator" {
                Reply::Status(400)
            } else {
                Reply::Text(fixture_reply(req))
            }
        }),
    );
    let dir = tmp("http-400");
    let out = run_http(http_config(&dir, &server.base_url(), 5.0, 4));
    assert!(out.records.is_empty());
    assert_eq!(out.stats.failures.get("api_error"), Some(&55));
    assert!(
        out.failures
            .iter()
            .filter(|f| f.reason == "api_error")
            .all(|f| !f.retryable)
    );
    assert_eq!(
        server.received.load(Ordering::SeqCst),
        26 + 25 + 55,
        "no retry of a 400"
    );
    // Terminal failures are remembered: a rerun sends nothing.
    let again = run_http(http_config(&dir, &server.base_url(), 5.0, 4));
    assert_eq!(again.calls, 0);
    assert_eq!(again.stats, out.stats);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn several_base_urls_and_the_api_key_variable() {
    let a = StandIn::start(
        "127.0.0.1:0",
        Arc::new(|_: usize, _: &serde_json::Value| Reply::Status(503)),
    );
    let b = StandIn::start(
        "127.0.0.1:0",
        Arc::new(|_: usize, req: &serde_json::Value| Reply::Text(fixture_reply(req))),
    );
    let cfg = HttpChatConfig {
        base_urls: vec![a.base_url(), b.base_url()],
        model: "scripted-filter".into(),
        max_retries: 1,
        backoff_initial_ms: 1,
        jitter_ms: 0,
        ..HttpChatConfig::default()
    };
    let m = HttpChatModel::new(cfg.clone(), "filter").unwrap();
    for _ in 0..6 {
        let r = rlft_webscale::ChatRequest::user("<document>\nplain text\n</document>", 1.0, 8);
        assert!(
            rlft_webscale::ChatModel::chat(&m, &r)
                .unwrap()
                .contains("qualified")
        );
    }
    assert_eq!(b.received.load(Ordering::SeqCst), 6);
    assert!(
        a.received.load(Ordering::SeqCst) >= 3,
        "round-robin starts half the calls on the failing URL"
    );
    let err = HttpChatModel::new(
        HttpChatConfig {
            api_key_env: Some("RLFT_WEBSCALE_TEST_UNSET_KEY".into()),
            ..cfg
        },
        "filter",
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("RLFT_WEBSCALE_TEST_UNSET_KEY"),
        "{err}"
    );
}
