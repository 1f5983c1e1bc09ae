//! Online multi-turn rollouts: the same episodes over the local engine and over HTTP, and
//! training rows that hold exactly the tokens the engine saw and wrote.

use burn::tensor::Device;
use rlft_models::{CausalLm, CharTokenizer, ChatTokenizer, qwen2};
use rlft_rollout::{HttpConfig, HttpEngine, LocalConfig, LocalEngine, SamplingParams};
use rlft_serve::{ServeConfig, Server};
use rlft_tasks::{
    AnswerSource, ExactMatch, ExactMatchConfig, TaskItem, TryAgain, TryAgainConfig, TurnFormat,
};
use rlft_trainer::{LossTurns, MultiTurn, MultiTurnConfig, RolloutSource};

fn setup() -> (CausalLm, ChatTokenizer) {
    let dir = std::env::temp_dir().join(format!("rlft-multiturn-{}", std::process::id()));
    CharTokenizer::ascii().save(&dir).unwrap();
    let tok = ChatTokenizer::from_dir(&dir).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let device = Device::flex();
    device.seed(4);
    let mut cfg = qwen2::tiny(tok.vocab_size());
    cfg.eos_token_ids = vec![0];
    (CausalLm::new(&cfg, &device).init_normal(0.5), tok)
}

#[test]
fn episodes_over_http_equal_episodes_on_the_local_engine() {
    let (model, tok) = setup();
    let env = TryAgain::new(
        ExactMatch::new(ExactMatchConfig {
            sources: vec![AnswerSource::Whole],
            ..ExactMatchConfig::default()
        }),
        TryAgainConfig {
            max_turns: 3,
            turn_format: TurnFormat::Free,
            system_prompt: None,
            ..TryAgainConfig::default()
        },
    )
    .unwrap();
    let items: Vec<TaskItem> = ["ab", "ba", "1a"]
        .iter()
        .enumerate()
        .map(|(i, p)| TaskItem::new(format!("p{i}"), *p, "a"))
        .collect();
    let cfg = MultiTurnConfig {
        loss_turns: LossTurns::All,
        ..MultiTurnConfig::default()
    };
    let source = MultiTurn::new(&env, items, tok.clone(), cfg).unwrap();
    let params = SamplingParams {
        n: 4,
        max_new_tokens: 1,
        seed: Some(9),
        ..SamplingParams::default()
    };
    let local = LocalEngine::new(model.clone(), Some(tok.clone()), LocalConfig::default()).unwrap();
    let direct = source.rollout(&local, &[0, 2], &params).unwrap();
    let server = Server::new(
        LocalEngine::new(model, Some(tok.clone()), LocalConfig::default()).unwrap(),
        ServeConfig::loopback(),
    )
    .spawn()
    .unwrap();
    let http = HttpEngine::new(HttpConfig::new(server.base_url())).unwrap();
    let remote = source.rollout(&http, &[0, 2], &params).unwrap();
    server.shutdown();
    assert_eq!(direct, remote);

    assert_eq!(direct.len(), 2);
    let mut turns_seen = 0;
    for g in &direct {
        assert_eq!(g.completions.len(), 4);
        let opening = tok.decode(&g.prompt_ids, false).unwrap();
        assert!(opening.ends_with("<|im_start|>assistant\n"), "{opening}");
        for c in &g.completions {
            assert_eq!(c.loss_mask.len(), c.token_ids.len());
            // Loss only on the engine's tokens: never on the feedback or the headers.
            let trained: String = c
                .token_ids
                .iter()
                .zip(&c.loss_mask)
                .filter(|(_, m)| **m > 0.0)
                .map(|(&t, _)| tok.decode(&[t], false).unwrap())
                .collect();
            assert!(!trained.contains("Incorrect") && !trained.contains("<|im_start|>"));
            let turns = tok
                .decode(&c.token_ids, false)
                .unwrap()
                .matches("<|im_start|>assistant")
                .count()
                + 1;
            turns_seen = turns_seen.max(turns);
            assert!(turns <= 3);
            assert_eq!(c.correct, Some(c.reward > 0.5), "{c:?}");
        }
    }
    assert!(turns_seen > 1, "no episode went past its first turn");
}
