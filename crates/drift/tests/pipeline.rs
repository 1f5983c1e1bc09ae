//! Collection (resumable, atomic shards), training from the released JSONL format, and
//! multi-turn evaluation on a tiny Qwen2 model with a character tokenizer.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use rlft_drift::{
    CollectConfig, EpisodeSetup, MultiTurnReport, WeightConfig, collect, evaluate_multi_turn,
    examples, jsonl_files, read_rows, weigh,
};
use rlft_models::{CausalLm, CharTokenizer, ChatTokenizer, qwen2};
use rlft_rollout::{HttpConfig, HttpEngine, LocalConfig, LocalEngine, SamplingParams};
use rlft_serve::{ServeConfig, Server};
use rlft_tasks::{
    AnswerSource, ExactMatch, ExactMatchConfig, TaskItem, TryAgain, TryAgainConfig, TurnFormat,
};
use rlft_trainer::{LossTurns, OptimConfig, SftConfig, SftTrainer, TemplateRender};

/// Tests here seed the backend's global RNG, so they run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rlft-drift-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn setup(device: &Device) -> (CausalLm, ChatTokenizer) {
    let dir = tmp("tok");
    CharTokenizer::ascii().save(&dir).unwrap();
    let tok = ChatTokenizer::from_dir(&dir).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    device.seed(4);
    let mut cfg = qwen2::tiny(tok.vocab_size());
    cfg.eos_token_ids = vec![0];
    (CausalLm::new(&cfg, device).init_normal(0.5), tok)
}

fn env() -> TryAgain<ExactMatch> {
    TryAgain::new(
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
    .unwrap()
}

fn items(n: usize) -> Vec<TaskItem> {
    (0..n)
        .map(|i| TaskItem::new(format!("p{i}"), format!("{}", i % 7), "a"))
        .collect()
}

fn files(dir: &Path) -> Vec<(PathBuf, String)> {
    jsonl_files(dir)
        .unwrap()
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().into(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_killed_collection_resumes_to_the_uninterrupted_output() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex();
    let (model, tok) = setup(&device);
    let engine = LocalEngine::new(model, Some(tok.clone()), LocalConfig::default()).unwrap();
    let env = env();
    let render = TemplateRender(&tok);
    let s = EpisodeSetup {
        engine: &engine,
        env: &env,
        render: &render,
    };
    let cfg = CollectConfig {
        k: 3,
        max_turns: 3,
        prompts_per_shard: 2,
        sampling: SamplingParams {
            max_new_tokens: 2,
            temperature: 1.0,
            ..SamplingParams::default()
        },
        ..CollectConfig::default()
    };
    let items = items(7);
    let whole = tmp("whole");
    let mut ticks = 0;
    let sum = collect(&s, &items, &whole, &cfg, None, &mut |p| {
        ticks += 1;
        assert!(p.prompts_done <= p.prompts_total);
    })
    .unwrap();
    assert!(sum.complete && sum.shards == 4 && sum.shards_written == 4 && ticks == 4);
    assert_eq!(sum.trajectories, 21);
    let reference = files(&whole);
    assert_eq!(reference.len(), 4);
    let rows = read_rows(&whole).unwrap();
    assert_eq!(rows.len(), 21);
    assert!(
        rows.iter()
            .all(|r| r.turn_rewards.len() == 3 && r.gold.as_deref() == Some("a"))
    );
    assert!(rows.iter().any(|r| {
        r.messages
            .iter()
            .filter(|m| m.role == rlft_tasks::Role::Assistant)
            .count()
            > 1
    }));

    // Stop after 1, then 2 more shards (as a kill between shard writes would), leave a
    // temporary file of an interrupted atomic write behind, then finish.
    let parts = tmp("parts");
    let a = collect(&s, &items, &parts, &cfg, Some(1), &mut |_| {}).unwrap();
    assert!(!a.complete && a.shards_written == 1);
    std::fs::write(parts.join(".shard-000001.jsonl.XYZ.tmp"), "{half").unwrap();
    let b = collect(&s, &items, &parts, &cfg, Some(2), &mut |_| {}).unwrap();
    assert_eq!((b.shards_skipped, b.shards_written), (1, 2));
    let c = collect(&s, &items, &parts, &cfg, None, &mut |_| {}).unwrap();
    assert!(c.complete && c.shards_skipped == 3 && c.shards_written == 1);
    assert_eq!(files(&parts), reference);

    // Other settings or prompts in the same directory are refused.
    let other = CollectConfig {
        k: 4,
        ..cfg.clone()
    };
    assert!(
        collect(&s, &items, &parts, &other, None, &mut |_| {})
            .unwrap_err()
            .to_string()
            .contains("other settings")
    );
    assert!(
        collect(&s, &items[..5], &parts, &cfg, None, &mut |_| {})
            .unwrap_err()
            .to_string()
            .contains("other prompts")
    );
    // K = 0 is refused.
    let zero = CollectConfig { k: 0, ..cfg };
    assert!(
        collect(&s, &items, &tmp("zero"), &zero, None, &mut |_| {})
            .unwrap_err()
            .to_string()
            .contains("collect.k")
    );
}

#[test]
fn collection_over_http_writes_what_the_local_engine_writes() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex();
    let (model, tok) = setup(&device);
    let env = env();
    let render = TemplateRender(&tok);
    let cfg = CollectConfig {
        k: 2,
        max_turns: 3,
        prompts_per_shard: 3,
        sampling: SamplingParams {
            max_new_tokens: 2,
            ..SamplingParams::default()
        },
        ..CollectConfig::default()
    };
    let items = items(5);
    let local = LocalEngine::new(model.clone(), Some(tok.clone()), LocalConfig::default()).unwrap();
    let a = tmp("http-local");
    let s = EpisodeSetup {
        engine: &local,
        env: &env,
        render: &render,
    };
    collect(&s, &items, &a, &cfg, None, &mut |_| {}).unwrap();
    let server = Server::new(
        LocalEngine::new(model, Some(tok.clone()), LocalConfig::default()).unwrap(),
        ServeConfig::loopback(),
    )
    .spawn()
    .unwrap();
    let http = HttpEngine::new(HttpConfig::new(server.base_url())).unwrap();
    let b = tmp("http-remote");
    let s = EpisodeSetup {
        engine: &http,
        env: &env,
        render: &render,
    };
    collect(&s, &items, &b, &cfg, None, &mut |_| {}).unwrap();
    server.shutdown();
    assert_eq!(files(&a), files(&b));
}

#[test]
fn released_format_trains_without_conversion() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex().autodiff();
    let (model, tok) = setup(&device);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/drift_released.jsonl");
    let rows = read_rows(&fixture).unwrap();
    assert_eq!(rows.len(), 5);
    let w = weigh(&rows, &WeightConfig::default()).unwrap();
    // The stored "weight" column is ignored; sample_0's group sums to K = 3.
    let s0: f64 = w
        .iter()
        .filter(|x| rows[x.row].prompt_id == "sample_0")
        .map(|x| x.weight)
        .sum();
    assert!((s0 - 3.0).abs() < 1e-9);
    let ex = examples(&rows, &w, &tok, LossTurns::Last).unwrap();
    assert_eq!(ex.len(), 5);
    // Only the last assistant turn carries loss: its text, no feedback.
    for e in &ex {
        let trained: Vec<u32> = e
            .completion_ids
            .iter()
            .zip(&e.loss_mask)
            .filter(|(_, m)| **m > 0.0)
            .map(|(&t, _)| t)
            .collect();
        let text = tok.decode(&trained, false).unwrap();
        assert!(
            text.contains("</answer>") || text.contains("no answer"),
            "{text}"
        );
        assert!(!text.contains("Incorrect"));
    }
    let all = examples(&rows, &w, &tok, LossTurns::All).unwrap();
    assert!(all[0].loss_mask.iter().sum::<f32>() > ex[0].loss_mask.iter().sum::<f32>());
    let dir = tmp("train");
    let cfg = SftConfig {
        batch_size: 2,
        epochs: 2,
        optim: OptimConfig {
            lr: 1e-3,
            ..OptimConfig::default()
        },
        ..SftConfig::default()
    };
    let mut t = SftTrainer::open(cfg, &dir, model, &ex, &device).unwrap();
    let mut nll = Vec::new();
    t.run(None, |r| nll.push(r.get("nll").unwrap())).unwrap();
    assert_eq!(nll.len(), 6);
    assert!(nll.iter().all(|x| x.is_finite()));
    assert!(nll.last().unwrap() < nll.first().unwrap(), "{nll:?}");
}

#[test]
fn multi_turn_evaluation_counts_from_the_episodes() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex();
    let (model, tok) = setup(&device);
    let engine = LocalEngine::new(model, Some(tok.clone()), LocalConfig::default()).unwrap();
    let env = env();
    let render = TemplateRender(&tok);
    let s = EpisodeSetup {
        engine: &engine,
        env: &env,
        render: &render,
    };
    let params = SamplingParams {
        max_new_tokens: 2,
        greedy: true,
        ..SamplingParams::default()
    };
    let items = items(6);
    let report = evaluate_multi_turn(&s, &items, &params, 3, 4).unwrap();
    assert_eq!(report.problems, 6);
    assert_eq!(report.multi_at.len(), 3);
    assert!(report.multi_at.windows(2).all(|w| w[0] <= w[1]));
    // Greedy and deterministic: the same again.
    assert_eq!(
        evaluate_multi_turn(&s, &items, &params, 3, 2).unwrap(),
        report
    );
    // The counts agree with the records they come from.
    let outcomes = s
        .run(&items.iter().enumerate().collect::<Vec<_>>(), &params, 3)
        .unwrap();
    let records: Vec<_> = outcomes.into_iter().map(|o| o.record).collect();
    let again = MultiTurnReport::from_records(&records, 3);
    assert_eq!(again.multi_at, report.multi_at);
    assert_eq!(again.turns, report.turns);
}

#[test]
fn report_arithmetic() {
    use rlft_tasks::{Environment, ExactMatch};
    let env = TryAgain::new(
        ExactMatch::new(ExactMatchConfig {
            sources: vec![AnswerSource::Whole],
            ..ExactMatchConfig::default()
        }),
        TryAgainConfig {
            max_turns: 3,
            turn_format: TurnFormat::Free,
            ..TryAgainConfig::default()
        },
    )
    .unwrap();
    let item = TaskItem::new("q", "?", "a");
    let play = |answers: &[&str]| {
        let mut ep = env.start(&item).unwrap();
        for a in answers {
            if env.step(&mut ep, a).unwrap().done {
                break;
            }
        }
        ep
    };
    // Solved at 1; solved at 2; solved at 3 after a repeat; never (b, b, b).
    let recs = vec![
        play(&["a"]),
        play(&["b", "a"]),
        play(&["b", "b", "a"]),
        play(&["b", "b", "b"]),
    ];
    let r = MultiTurnReport::from_records(&recs, 3);
    assert_eq!(r.multi_at, vec![0.25, 0.5, 0.75]);
    assert_eq!(r.solved_at, vec![1, 1, 1]);
    assert_eq!(r.correction_rate, vec![1.0 / 3.0, 0.5]);
    assert!((r.correction_rate_overall - 2.0 / 3.0).abs() < 1e-12);
    // Retry answers: "a" (ep 2), "b","a" (ep 3), "b","b" (ep 4) → repeats: 1 + 2 of 5.
    assert!((r.repeat_rate - 3.0 / 5.0).abs() < 1e-12);
    assert_eq!(r.turns, 1 + 2 + 3 + 3);
}
