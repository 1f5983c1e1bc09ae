//! The scheduler batches concurrent requests into the local engine's batched generation, and
//! a cancelled request stops within one decode step. On the Qwen2 fixture of rlft-models.

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use burn::tensor::Device;
use common::{get, metric};
use rlft_core::Completion;
use rlft_models::{CausalLm, ChatTokenizer, LoadOptions};
use rlft_rollout::{
    GenerationObserver, GenerationRequest, HttpConfig, HttpEngine, LocalConfig, LocalEngine,
    Prompt, RolloutEngine, SamplingParams, TokenEvent,
};
use rlft_serve::{ServeConfig, Server};

const QWEN2: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../models/tests/fixtures/qwen2"
);

fn local() -> LocalEngine {
    let model = CausalLm::from_pretrained(QWEN2, &Device::flex(), LoadOptions::default()).unwrap();
    let tok = ChatTokenizer::from_dir(QWEN2).unwrap();
    LocalEngine::new(model, Some(tok), LocalConfig::default()).unwrap()
}

fn prompts(k: usize) -> Vec<Prompt> {
    let tok = ChatTokenizer::from_dir(QWEN2).unwrap();
    (0..k)
        .map(|i| {
            Prompt::Tokens(
                tok.encode(&format!("Question {i}: what is {i}+{i}?"), false)
                    .unwrap(),
            )
        })
        .collect()
}

/// `clients` threads each send one prompt at once; returns each thread's completions.
fn concurrent(base_url: &str, prompts: &[Prompt], params: &SamplingParams) -> Vec<Vec<Completion>> {
    let start = Arc::new(Barrier::new(prompts.len()));
    let handles: Vec<_> = prompts
        .iter()
        .cloned()
        .map(|p| {
            let (url, params, start) = (base_url.to_string(), params.clone(), start.clone());
            std::thread::spawn(move || {
                let http = HttpEngine::new(HttpConfig::new(url)).unwrap();
                start.wait();
                http.generate(&[p], &params).unwrap().remove(0)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn sixteen_concurrent_clients_share_batched_passes() {
    let server = Server::new(
        local(),
        ServeConfig {
            batch_window_ms: 50,
            ..ServeConfig::loopback()
        },
    )
    .spawn()
    .unwrap();
    let prompts = prompts(16);
    for params in [
        SamplingParams::greedy(8),
        SamplingParams {
            n: 2,
            max_new_tokens: 8,
            temperature: 0.9,
            seed: Some(11),
            ..Default::default()
        },
    ] {
        let over_http = concurrent(&server.base_url(), &prompts, &params);
        // Each equals the engine's own answer to that request alone.
        let direct = local();
        for (p, got) in prompts.iter().zip(&over_http) {
            let alone = direct
                .generate(std::slice::from_ref(p), &params)
                .unwrap()
                .remove(0);
            let ids = |v: &[Completion]| v.iter().map(|c| c.token_ids.clone()).collect::<Vec<_>>();
            assert_eq!(ids(got), ids(&alone));
        }
    }
    // 32 requests in few batched passes, not 32 sequential ones (the bound leaves room for
    // clients that a loaded machine starts late).
    let m = get(server.addr(), "/metrics").body;
    let batches = metric(&m, "rlft_batch_requests_count").unwrap();
    let requests = metric(&m, "rlft_batch_requests_sum").unwrap();
    assert_eq!(requests, 32.0, "{m}");
    assert!(
        batches <= 8.0,
        "{batches} batches for 32 concurrent requests\n{m}"
    );
}

/// Cancels its request once it has seen `after` tokens, and counts what came after.
struct CancelAfter {
    after: usize,
    seen: usize,
    done: Vec<Option<rlft_rollout::Result<Vec<Vec<Completion>>>>>,
}

impl GenerationObserver for CancelAfter {
    fn on_token(&mut self, event: TokenEvent) {
        if event.request == 0 {
            self.seen += 1;
        }
    }
    fn is_cancelled(&self, request: usize) -> bool {
        request == 0 && self.seen >= self.after
    }
    fn on_done(&mut self, request: usize, result: rlft_rollout::Result<Vec<Vec<Completion>>>) {
        self.done[request] = Some(result);
    }
}

#[test]
fn a_cancelled_request_stops_within_one_decode_step_and_its_batch_mates_go_on() {
    let engine = local();
    let p = prompts(2);
    let long = SamplingParams {
        max_new_tokens: 100,
        ignore_eos: true,
        seed: Some(3),
        ..Default::default()
    };
    let requests = vec![
        GenerationRequest {
            prompts: vec![p[0].clone()],
            params: long.clone(),
        },
        GenerationRequest {
            prompts: vec![p[1].clone()],
            params: SamplingParams {
                max_new_tokens: 12,
                ..long.clone()
            },
        },
    ];
    let mut obs = CancelAfter {
        after: 3,
        seen: 0,
        done: vec![None, None],
    };
    engine.generate_many(&requests, &mut obs);
    let cancelled = obs.done[0].take().unwrap().unwrap();
    assert_eq!(
        cancelled[0][0].token_ids.len(),
        3,
        "decoded past the cancel"
    );
    assert!(!cancelled[0][0].finished);
    assert_eq!(obs.seen, 3);
    // The other request of the batch is whole, and as `generate` gives it alone: the same
    // tokens, log-probs equal up to float rounding (its rows were padded with another's).
    let other = obs.done[1].take().unwrap().unwrap().remove(0).remove(0);
    let alone = engine
        .generate(&requests[1].prompts, &requests[1].params)
        .unwrap()
        .remove(0)
        .remove(0);
    assert_eq!(
        (&other.token_ids, &other.text),
        (&alone.token_ids, &alone.text)
    );
    for (a, b) in other.logprobs.iter().zip(&alone.logprobs) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
}

#[test]
fn the_local_engine_refuses_prompts_over_its_context_per_request() {
    let engine = local();
    let requests = vec![
        GenerationRequest {
            prompts: prompts(1),
            params: SamplingParams::greedy(200),
        },
        GenerationRequest {
            prompts: prompts(1),
            params: SamplingParams::greedy(4),
        },
    ];
    let mut obs = CancelAfter {
        after: usize::MAX,
        seen: 0,
        done: vec![None, None],
    };
    engine.generate_many(&requests, &mut obs);
    let err = obs.done[0].take().unwrap().unwrap_err().to_string();
    assert!(err.contains("context of 128"), "{err}");
    assert_eq!(
        obs.done[1].take().unwrap().unwrap()[0][0].token_ids.len(),
        4
    );
}

/// 16 concurrent clients against the same 16 requests one after another (ignored: it times
/// things; `cargo test --release -p rlft-serve --test batching -- --ignored --nocapture`).
#[test]
#[ignore]
fn measure_sixteen_concurrent_against_sequential() {
    let server = Server::new(local(), ServeConfig::loopback())
        .spawn()
        .unwrap();
    let prompts = prompts(16);
    let params = SamplingParams {
        max_new_tokens: 32,
        ignore_eos: true,
        seed: Some(1),
        ..Default::default()
    };
    let http = HttpEngine::new(HttpConfig::new(server.base_url())).unwrap();
    // Warm up.
    http.generate(&prompts[..1], &params).unwrap();
    let mut seq = Vec::new();
    let mut conc = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        for p in &prompts {
            http.generate(std::slice::from_ref(p), &params).unwrap();
        }
        seq.push(t.elapsed());
        let t = Instant::now();
        concurrent(&server.base_url(), &prompts, &params);
        conc.push(t.elapsed());
    }
    let best = |v: &[Duration]| v.iter().min().copied().unwrap_or_default();
    let tokens = (16 * params.max_new_tokens) as f64;
    println!(
        "16 requests x {} tokens: sequential {:.3} s ({:.0} tok/s), 16 concurrent {:.3} s ({:.0} tok/s), speed-up {:.2}x",
        params.max_new_tokens,
        best(&seq).as_secs_f64(),
        tokens / best(&seq).as_secs_f64(),
        best(&conc).as_secs_f64(),
        tokens / best(&conc).as_secs_f64(),
        best(&seq).as_secs_f64() / best(&conc).as_secs_f64()
    );
}
