//! The local engine over a tiny rlft-models Qwen2 on Flex: log-probs equal the model's own
//! scoring, seeds reproduce, batching and compaction change nothing, greedy equals
//! rlft-models' greedy decoder, chat templates apply.

use burn::tensor::{Device, Int, Tensor, TensorData};
use rlft_models::{CausalLm, CharTokenizer, ChatTokenizer, GreedyConfig, greedy, qwen2};
use rlft_rollout::{
    LocalConfig, LocalEngine, LogprobMode, Prompt, RolloutEngine, SamplingParams, Tokenizer,
    prompt_seed,
};

/// See `logprobs_equal_the_models_scoring_of_the_same_tokens`.
const TEMPERATURE: f32 = 25.0;

fn tokenizer() -> ChatTokenizer {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("rlft-rollout-local-{}-{k}", std::process::id()));
    CharTokenizer::ascii().save(&dir).unwrap();
    ChatTokenizer::from_dir(&dir).unwrap()
}

fn engine(config: LocalConfig) -> LocalEngine {
    let device = Device::flex();
    let tok = tokenizer();
    let model = CausalLm::new(&qwen2::tiny(tok.vocab_size()), &device);
    LocalEngine::new(model, Some(tok), config).unwrap()
}

fn prompts(e: &LocalEngine) -> Vec<Prompt> {
    let _ = e;
    let tok = tokenizer();
    ["Hello", "2+2=", "The quick brown"]
        .iter()
        .map(|s| Prompt::Tokens(tok.encode(s, false).unwrap()))
        .collect()
}

/// `token_log_probs` of `completion` after `prompt`, by one full forward without a cache.
fn score(model: &CausalLm, prompt: &[u32], completion: &[u32], temperature: f64) -> Vec<f32> {
    let full: Vec<i64> = prompt
        .iter()
        .chain(completion)
        .map(|&t| i64::from(t))
        .collect();
    let len = full.len() - 1;
    let device = model.device();
    let ids = Tensor::<2, Int>::from_data(TensorData::new(full[..len].to_vec(), [1, len]), &device);
    let targets =
        Tensor::<2, Int>::from_data(TensorData::new(full[1..].to_vec(), [1, len]), &device);
    let mask = Tensor::<2, Int>::ones([1, len], &device);
    let lp = model.token_log_probs(ids, mask, targets, temperature);
    let lp: Vec<f32> = lp.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    lp[prompt.len() - 1..].to_vec()
}

#[test]
fn logprobs_equal_the_models_scoring_of_the_same_tokens() {
    // Compaction after the first finished row exercises the rebuilt cache too.
    for compact_below in [0.0, 1.0] {
        let e = engine(LocalConfig {
            compact_below,
            ..Default::default()
        });
        let ps = prompts(&e);
        let params = SamplingParams {
            n: 2,
            // The random tiny model's logits are far apart (gaps of ~30 nats): a high
            // temperature makes the draws and log-probs non-trivial.
            temperature: TEMPERATURE,
            max_new_tokens: 12,
            stop_token_ids: vec![70, 71, 72, 73, 74],
            seed: Some(11),
            ..Default::default()
        };
        let out = e.generate(&ps, &params).unwrap();
        let mut checked = 0;
        for (p, group) in ps.iter().zip(&out) {
            let Prompt::Tokens(ids) = p else {
                unreachable!()
            };
            for c in group {
                assert_eq!(c.logprobs.len(), c.token_ids.len());
                let want = score(e.model(), ids, &c.token_ids, f64::from(TEMPERATURE));
                for (a, b) in c.logprobs.iter().zip(&want) {
                    assert!(
                        (a - b).abs() < 1e-4,
                        "compact_below {compact_below}: {a} vs {b}"
                    );
                }
                checked += c.token_ids.len();
            }
        }
        assert!(checked > 20);
        // The check is not vacuous: log-probs are spread, not all ≈ 0.
        assert!(
            out.iter()
                .flatten()
                .flat_map(|c| &c.logprobs)
                .any(|&l| l < -0.5)
        );
    }
}

#[test]
fn same_seed_same_completions_and_batching_is_invisible() {
    let e = engine(LocalConfig::default());
    let ps = prompts(&e);
    let params = SamplingParams {
        n: 3,
        max_new_tokens: 10,
        temperature: TEMPERATURE,
        seed: Some(5),
        ..Default::default()
    };
    let a = e.generate(&ps, &params).unwrap();
    assert_eq!(a, e.generate(&ps, &params).unwrap());
    let other = e
        .generate(
            &ps,
            &SamplingParams {
                seed: Some(6),
                ..params.clone()
            },
        )
        .unwrap();
    assert_ne!(a, other);
    // One prompt at a time (different padding, batch of 3 rows) gives the same tokens.
    for (i, p) in ps.iter().enumerate() {
        let alone = e
            .generate(
                std::slice::from_ref(p),
                &SamplingParams {
                    seed: Some(prompt_seed(5, i)),
                    ..params.clone()
                },
            )
            .unwrap();
        for (x, y) in alone[0].iter().zip(&a[i]) {
            assert_eq!(x.token_ids, y.token_ids);
            for (l, m) in x.logprobs.iter().zip(&y.logprobs) {
                assert!((l - m).abs() < 1e-4);
            }
        }
    }
    // Batches of 2 rows and compaction at every finish, on the same weights, give the same
    // tokens (stop ids make rows finish at different steps).
    let stops = SamplingParams {
        stop_token_ids: (60..75).collect(),
        ..params.clone()
    };
    let a = e.generate(&ps, &stops).unwrap();
    let small = LocalEngine::new(
        e.model().clone(),
        Some(tokenizer()),
        LocalConfig {
            max_batch_rows: 2,
            compact_below: 1.0,
            ..Default::default()
        },
    )
    .unwrap();
    let b = small.generate(&ps, &stops).unwrap();
    assert!(
        a.iter().flatten().any(|c| c.finished),
        "no row finished early"
    );
    for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
        assert_eq!(x.token_ids, y.token_ids);
        assert_eq!(x.finished, y.finished);
        for (l, m) in x.logprobs.iter().zip(&y.logprobs) {
            assert!((l - m).abs() < 1e-4);
        }
    }
}

#[test]
fn greedy_equals_the_models_greedy_decoder() {
    let e = engine(LocalConfig::default());
    let ids: Vec<Vec<u32>> = prompts(&e)
        .into_iter()
        .map(|p| match p {
            Prompt::Tokens(ids) => ids,
            _ => unreachable!(),
        })
        .collect();
    let params = SamplingParams {
        logprob_mode: LogprobMode::Raw,
        ..SamplingParams::greedy(12)
    };
    let ours = e
        .generate(
            &ids.iter().cloned().map(Prompt::Tokens).collect::<Vec<_>>(),
            &params,
        )
        .unwrap();
    let reference = greedy(
        e.model(),
        &ids,
        &GreedyConfig {
            max_new_tokens: 12,
            eos_token_ids: e.eos_token_ids().to_vec(),
            pad_token_id: 0,
        },
    )
    .unwrap();
    for (g, r) in ours.iter().zip(&reference) {
        assert_eq!(&g[0].token_ids, r);
    }
}

#[test]
fn chat_prompts_apply_the_template() {
    let e = engine(LocalConfig::default());
    let tok = tokenizer();
    let params = SamplingParams {
        n: 2,
        max_new_tokens: 6,
        temperature: TEMPERATURE,
        seed: Some(1),
        ..Default::default()
    };
    let chat = e.generate(&[Prompt::user("hi")], &params).unwrap();
    let rendered = rlft_rollout::ModelTokenizer(tok)
        .apply_chat_template(&[rlft_rollout::Message::new("user", "hi")])
        .unwrap();
    assert!(
        rendered.ends_with("<|im_start|>assistant\n"),
        "{rendered:?}"
    );
    let ids = tokenizer().encode(&rendered, false).unwrap();
    assert_eq!(chat, e.generate(&[Prompt::Tokens(ids)], &params).unwrap());
    // Text decoded without special tokens.
    assert!(chat[0].iter().all(|c| !c.text.contains("<|")));
}
