//! End-to-end engine behaviour on the model-free bigram engine: seeds, batching, greedy,
//! log-probs, stops, prompts.

use proptest::prelude::*;
use rlft_rollout::{
    BigramEngine, CharVocab, LogprobMode, Message, Prompt, RolloutEngine, RolloutError,
    SamplingParams, Tokenizer, find_stop, prompt_seed,
};

mod common;
use common::bigram;

fn tokens(e: &BigramEngine, s: &str) -> Prompt {
    Prompt::Tokens(e.vocab().encode(s, false).unwrap())
}

#[test]
fn same_seed_same_completions_and_batches_equal_single_prompts() {
    let e = bigram();
    let prompts = [tokens(&e, "he"), tokens(&e, "wh"), tokens(&e, "d")];
    let p = SamplingParams {
        n: 4,
        max_new_tokens: 12,
        seed: Some(99),
        ..Default::default()
    };
    let a = e.generate(&prompts, &p).unwrap();
    let b = e.generate(&prompts, &p).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.len(), 3);
    assert!(a.iter().all(|g| g.len() == 4));
    // The four samples of a prompt are not all identical.
    assert!(a[0].iter().any(|c| c.token_ids != a[0][0].token_ids));
    for (i, prompt) in prompts.iter().enumerate() {
        let alone = SamplingParams {
            seed: Some(prompt_seed(99, i)),
            ..p.clone()
        };
        assert_eq!(
            e.generate(std::slice::from_ref(prompt), &alone).unwrap()[0],
            a[i]
        );
    }
    let other = SamplingParams {
        seed: Some(100),
        ..p.clone()
    };
    assert_ne!(e.generate(&prompts, &other).unwrap(), a);
}

#[test]
fn seedless_requests_differ_but_repeat_per_engine() {
    let p = SamplingParams {
        n: 2,
        max_new_tokens: 10,
        ..Default::default()
    };
    let prompts = [tokens(&bigram(), "h")];
    let (e1, e2) = (bigram(), bigram());
    let first = e1.generate(&prompts, &p).unwrap();
    let second = e1.generate(&prompts, &p).unwrap();
    assert_ne!(first, second);
    assert_eq!(e2.generate(&prompts, &p).unwrap(), first);
    assert_eq!(e2.generate(&prompts, &p).unwrap(), second);
}

/// log_softmax(row / t)[tok]
fn table_logprob(e: &BigramEngine, prev: u32, tok: u32, t: f64) -> f64 {
    let text = "hello world\nhold the door\nwhere are we\nhe ran\n";
    // Recompute the fitted table independently: counts + 0.3.
    let v = e.vocab();
    let mut counts = vec![vec![0.3f64; v.len()]; v.len()];
    for line in text.lines() {
        let mut ids = v.encode(line, false).unwrap();
        ids.push(CharVocab::EOS);
        for w in ids.windows(2) {
            counts[w[0] as usize][w[1] as usize] += 1.0;
        }
    }
    let row: Vec<f64> = counts[prev as usize]
        .iter()
        .map(|c| (c.ln() as f32) as f64 / t)
        .collect();
    let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = max + row.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
    row[tok as usize] - lse
}

#[test]
fn logprobs_are_temperature_scaled_log_softmax_of_the_table() {
    let e = bigram();
    let prompt = e.vocab().encode("ho", false).unwrap();
    for (mode, t_used) in [(LogprobMode::Temperature, 0.7), (LogprobMode::Raw, 1.0)] {
        let p = SamplingParams {
            n: 3,
            temperature: 0.7,
            max_new_tokens: 15,
            seed: Some(1),
            logprob_mode: mode,
            ..Default::default()
        };
        for c in &e.generate(&[Prompt::Tokens(prompt.clone())], &p).unwrap()[0] {
            assert_eq!(c.logprobs.len(), c.token_ids.len());
            let mut prev = *prompt.last().unwrap();
            for (&tok, &lp) in c.token_ids.iter().zip(&c.logprobs) {
                let want = table_logprob(&e, prev, tok, t_used);
                assert!(
                    (f64::from(lp) - want).abs() < 1e-5,
                    "{mode:?}: {lp} vs {want}"
                );
                prev = tok;
            }
        }
    }
}

#[test]
fn greedy_follows_the_argmax_chain_and_finishes_on_eos() {
    let e = bigram();
    let prompt = e.vocab().encode("w", false).unwrap();
    let out = e
        .generate(
            &[Prompt::Tokens(prompt.clone())],
            &SamplingParams::greedy(40),
        )
        .unwrap();
    let c = &out[0][0];
    // Walk the argmax of the independently recomputed table.
    let mut prev = *prompt.last().unwrap();
    let mut want = Vec::new();
    for _ in 0..40 {
        let next = (0..e.vocab().len() as u32)
            .max_by(|&a, &b| {
                table_logprob(&e, prev, a, 1.0)
                    .partial_cmp(&table_logprob(&e, prev, b, 1.0))
                    .unwrap()
                    .then(b.cmp(&a))
            })
            .unwrap();
        want.push(next);
        if next == CharVocab::EOS {
            break;
        }
        prev = next;
    }
    assert_eq!(c.token_ids, want);
    assert_eq!(c.finished, want.last() == Some(&CharVocab::EOS));
    assert_eq!(c.text, e.vocab().decode(&want).unwrap());
}

#[test]
fn length_limit_marks_unfinished_and_stop_ids_end_early() {
    let e = bigram();
    let p = SamplingParams {
        n: 8,
        max_new_tokens: 3,
        ignore_eos: true,
        seed: Some(3),
        ..Default::default()
    };
    for c in &e.generate(&[tokens(&e, "h")], &p).unwrap()[0] {
        assert_eq!(c.token_ids.len(), 3);
        assert!(!c.finished);
    }
    let space = e.vocab().encode(" ", false).unwrap()[0];
    let p = SamplingParams {
        n: 8,
        max_new_tokens: 40,
        stop_token_ids: vec![space],
        seed: Some(3),
        ..Default::default()
    };
    for c in &e.generate(&[tokens(&e, "h")], &p).unwrap()[0] {
        let last = *c.token_ids.last().unwrap();
        if c.finished {
            assert!(last == space || last == CharVocab::EOS);
            // The stop token is in the ids, not in the text.
            assert_eq!(
                c.text,
                e.vocab()
                    .decode(&c.token_ids[..c.token_ids.len() - 1])
                    .unwrap()
            );
        }
        assert!(!c.token_ids[..c.token_ids.len() - 1].contains(&space));
    }
}

#[test]
fn text_and_chat_prompts_go_through_the_tokenizer() {
    let e = bigram();
    let p = SamplingParams {
        n: 2,
        max_new_tokens: 8,
        seed: Some(4),
        ..Default::default()
    };
    let text = e.generate(&[Prompt::Text("he".into())], &p).unwrap();
    assert_eq!(text, e.generate(&[tokens(&e, "he")], &p).unwrap());
    let chat = e.generate(&[Prompt::Chat(vec![Message::new("user", "hello")])], &p);
    // The template adds ':' which the fitted vocabulary does not have: a typed error.
    assert!(matches!(chat, Err(RolloutError::Tokenizer { .. })));
    let v = CharVocab::new("user: hello\nassistant");
    let e = BigramEngine::new(v.clone(), vec![vec![0.0; v.len()]; v.len()], 1).unwrap();
    let chat = e.generate(&[Prompt::user("hello")], &p).unwrap();
    let rendered = e
        .vocab()
        .apply_chat_template(&[Message::new("user", "hello")])
        .unwrap();
    assert_eq!(chat, e.generate(&[Prompt::Text(rendered)], &p).unwrap());
}

fn stop_engine() -> BigramEngine {
    let v = CharVocab::new("ab#");
    let mut logits = vec![vec![0.0f32; v.len()]; v.len()];
    for row in &mut logits {
        row[0] = f32::NEG_INFINITY; // never EOS
    }
    BigramEngine::new(v, logits, 0).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Stop strings against an oracle: the stop run's tokens are the shortest prefix of the
    /// unstopped run whose text contains a stop, and its text is cut at the earliest match.
    #[test]
    fn stop_strings_match_the_oracle(
        stops in prop::collection::vec("[ab#]{1,3}", 1..3),
        include in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let e = stop_engine();
        let base = SamplingParams { max_new_tokens: 25, seed: Some(seed), ..Default::default() };
        let free = e.generate(&[Prompt::Tokens(vec![1])], &base).unwrap().remove(0).remove(0);
        let p = SamplingParams { stop: stops.clone(), include_stop_str_in_output: include, ..base };
        let got = e.generate(&[Prompt::Tokens(vec![1])], &p).unwrap().remove(0).remove(0);
        let v = e.vocab();
        let mut expect = None;
        for k in 1..=free.token_ids.len() {
            let text = v.decode(&free.token_ids[..k]).unwrap();
            if let Some((start, len)) = find_stop(&text, &stops) {
                let keep = if include { start + len } else { start };
                expect = Some((k, text[..keep].to_string()));
                break;
            }
        }
        match expect {
            Some((k, text)) => {
                prop_assert_eq!(&got.token_ids[..], &free.token_ids[..k]);
                prop_assert_eq!(&got.logprobs[..], &free.logprobs[..k]);
                prop_assert_eq!(got.text, text);
                prop_assert!(got.finished);
            }
            None => {
                prop_assert_eq!(got.token_ids, free.token_ids);
                prop_assert!(!got.finished);
            }
        }
    }
}

#[test]
fn stop_strings_need_a_tokenizer_only_where_there_is_none() {
    // The bigram engine has one, so stops work; invalid params are typed errors.
    let e = bigram();
    let bad = SamplingParams {
        top_p: 1.5,
        ..Default::default()
    };
    assert!(matches!(
        e.generate(&[tokens(&e, "h")], &bad),
        Err(RolloutError::InvalidParam { field: "top_p", .. })
    ));
}

#[test]
fn dyn_engine_and_groups() {
    let e: Box<dyn RolloutEngine> = Box::new(bigram());
    let p = SamplingParams {
        n: 2,
        max_new_tokens: 5,
        seed: Some(0),
        ..Default::default()
    };
    let groups = e
        .generate_groups(&[(7, vec![1, 2]), (9, vec![3])], &p)
        .unwrap();
    assert_eq!(
        groups.iter().map(|g| g.prompt_index).collect::<Vec<_>>(),
        vec![7, 9]
    );
    assert_eq!(groups[1].prompt_ids, vec![3]);
    assert_eq!(
        groups[0].completions,
        e.generate(&[Prompt::Tokens(vec![1, 2])], &p).unwrap()[0]
    );
    let by_ref: &dyn RolloutEngine = &e;
    assert_eq!(by_ref.model_id(), "bigram");
}
