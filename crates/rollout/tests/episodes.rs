//! Multi-turn episodes over any engine: batched turn by turn, ended by the environment.

use std::sync::Mutex;

use rlft_core::{Completion, Role as CoreRole};
use rlft_rollout::{
    ChatRender, Message, Prompt, RolloutEngine, RolloutError, SamplingParams, run_episodes,
};
use rlft_tasks::{MathVerifier, TaskItem, TryAgain, TryAgainConfig, TurnFormat};

/// A template that writes `role:content|` per message (and `assistant:` as the generation
/// header), one token per byte.
struct Plain;

impl ChatRender for Plain {
    fn render(&self, messages: &[Message], gen_prompt: bool) -> rlft_rollout::Result<String> {
        let mut s: String = messages
            .iter()
            .map(|m| format!("{}:{}|", m.role, m.content))
            .collect();
        if gen_prompt {
            s.push_str("assistant:");
        }
        Ok(s)
    }

    fn encode(&self, text: &str) -> rlft_rollout::Result<Vec<u32>> {
        Ok(text.bytes().map(u32::from).collect())
    }
}

fn text(ids: &[u32]) -> String {
    ids.iter().map(|&b| b as u8 as char).collect()
}

/// Answers `<answer>40 + turn</answer>` on turn `turn` (1-based: the number of assistant
/// headers in the token prompt), and records how many prompts each call carried.
#[derive(Default)]
struct Scripted {
    calls: Mutex<Vec<usize>>,
}

impl RolloutEngine for Scripted {
    fn generate(
        &self,
        prompts: &[Prompt],
        params: &SamplingParams,
    ) -> rlft_rollout::Result<Vec<Vec<Completion>>> {
        self.calls.lock().unwrap().push(prompts.len());
        assert_eq!(params.n, 1, "episodes sample one completion per turn");
        prompts
            .iter()
            .map(|p| {
                let Prompt::Tokens(ids) = p else {
                    panic!("episodes send token prompts");
                };
                let turn = text(ids).matches("assistant:").count();
                let answer = format!("<answer>{}</answer>", 40 + turn);
                Ok(vec![Completion {
                    token_ids: answer.bytes().map(u32::from).collect(),
                    text: answer,
                    ..Completion::default()
                }])
            })
            .collect()
    }
}

fn env(max_turns: usize) -> TryAgain<MathVerifier> {
    TryAgain::new(
        MathVerifier::default(),
        TryAgainConfig {
            max_turns,
            turn_format: TurnFormat::Free,
            ..TryAgainConfig::default()
        },
    )
    .unwrap()
}

#[test]
fn episodes_run_batched_until_the_environment_ends_them() {
    let items = [
        TaskItem::new("a", "6*7+0?", "42"),
        TaskItem::new("b", "40+1?", "41"),
        TaskItem::new("c", "nothing fits", "7"),
    ];
    let engine = Scripted::default();
    let list: Vec<(usize, &TaskItem)> = items.iter().enumerate().collect();
    let params = SamplingParams {
        n: 8,
        seed: Some(3),
        ..SamplingParams::default()
    };
    let out = run_episodes(&engine, &env(3), &Plain, &list, &params, 10).unwrap();
    // Turn 1: three episodes; "b" is solved. Turn 2: two; "a" is solved. Turn 3: "c" alone,
    // which then runs out of turns.
    assert_eq!(*engine.calls.lock().unwrap(), vec![3, 2, 1]);
    let solved: Vec<Option<usize>> = out.iter().map(|o| o.record.solved_at).collect();
    assert_eq!(solved, vec![Some(2), Some(1), None]);
    assert!(out.iter().all(|o| o.record.done));
    assert_eq!(out[0].completions.len(), 2);
    assert_eq!(out[2].completions.len(), 3);
    // The conversation: system, task, answer, feedback, answer.
    let roles: Vec<CoreRole> = out[0].trajectory().turns.iter().map(|t| t.role).collect();
    assert_eq!(
        roles,
        [
            CoreRole::System,
            CoreRole::User,
            CoreRole::Assistant,
            CoreRole::User,
            CoreRole::Assistant
        ]
    );
    // The tokens are what the engine saw and wrote: the opening, each answer, the template's
    // close of the turn, the feedback and a new header.
    let o = &out[0];
    let feedback = rlft_tasks::DRIFT_FEEDBACK;
    assert_eq!(
        text(&o.token_ids),
        format!(
            "system:You are a helpful assistant.|user:6*7+0?|assistant:<answer>41</answer>|user:{feedback}|assistant:<answer>42</answer>"
        )
    );
    assert_eq!(
        text(&o.token_ids[..o.prompt_len]),
        "system:You are a helpful assistant.|user:6*7+0?|assistant:"
    );
    let spans: Vec<String> = o
        .turn_spans
        .iter()
        .map(|s| text(&o.token_ids[s.clone()]))
        .collect();
    assert_eq!(spans, ["<answer>41</answer>", "<answer>42</answer>"]);
    let mask = o.policy_mask();
    assert_eq!(mask.iter().filter(|&&m| m > 0.0).count(), 2 * 19);
    let t = o.trajectory();
    assert_eq!(t.turns[2].token_ids.len(), 19);
    assert_eq!(t.turns[2].reward, Some(0.0));
    assert_eq!(t.turns[4].reward, Some(1.0));
    assert_eq!(t.turns[3].content, rlft_tasks::DRIFT_FEEDBACK);
    // The safety bound ends episodes the environment would let run on.
    let capped = run_episodes(&engine, &env(5), &Plain, &list[2..], &params, 2).unwrap();
    assert_eq!(capped[0].completions.len(), 2);
    assert!(!capped[0].record.done);
    assert!(matches!(
        run_episodes(&engine, &env(5), &Plain, &list, &params, 0),
        Err(RolloutError::InvalidParam { .. })
    ));
}
