//! `TryAgain` against DRIFT's released collection code: the same scripted model outputs, in
//! both prompt modes, must give the messages, per-turn rewards, format penalty, answer norms
//! and `t_star` that `process_turn` and `src/prompting.py` store
//! (fixture from `scripts/drift_released/gen_episodes.py`).

use rlft_tasks::{
    DRIFT_INSTRUCTION, DRIFT_SIMPLE_TEMPLATE, DRIFT_SYSTEM_MESSAGE, Environment, ExactMatch,
    PromptMode, Role, TaskItem, TryAgain, TryAgainConfig,
};
use serde_json::Value;

fn fixture() -> Value {
    let text = include_str!("fixtures/drift_released_episodes.json");
    serde_json::from_str(text).expect("fixture parses")
}

fn env(mode: &str, fx: &Value) -> TryAgain<ExactMatch> {
    let config = TryAgainConfig {
        system_prompt: Some(fx["system_message"].as_str().unwrap().into()),
        feedback: fx["incorrect_obs"].as_str().unwrap().into(),
        instruction: fx["env_instruction"].as_str().unwrap().into(),
        instruction_max_tokens: fx["instruction_max_tokens"].as_u64().unwrap() as usize,
        max_turns: fx["max_turns"].as_u64().unwrap() as usize,
        max_answers: fx["max_actions_per_traj"].as_u64().unwrap() as usize,
        format_penalty: fx["format_penalty"].as_f64().unwrap(),
        ..match mode {
            "simple" => TryAgainConfig {
                user_template: DRIFT_SIMPLE_TEMPLATE.into(),
                ..TryAgainConfig::default()
            },
            "full" => TryAgainConfig {
                prompt_mode: PromptMode::Full,
                user_template: "{prompt}".into(),
                ..TryAgainConfig::default()
            },
            other => panic!("unknown mode {other}"),
        }
    };
    TryAgain::new(ExactMatch::default(), config).unwrap()
}

#[test]
fn constants_are_the_released_ones() {
    let fx = fixture();
    assert_eq!(DRIFT_SYSTEM_MESSAGE, fx["system_message"].as_str().unwrap());
    assert_eq!(DRIFT_INSTRUCTION, fx["env_instruction"].as_str().unwrap());
}

#[test]
fn episodes_match_the_released_collection_code_in_both_prompt_modes() {
    let fx = fixture();
    let item = TaskItem::new(
        "q_0",
        fx["question"].as_str().unwrap(),
        fx["gold"].as_str().unwrap(),
    );
    let cases = fx["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 10, "five scenarios × two modes");
    for case in cases {
        let mode = case["mode"].as_str().unwrap();
        let name = format!("{mode}/{}", case["name"].as_str().unwrap());
        let env = env(mode, &fx);
        let mut ep = env.start(&item).unwrap();
        for output in case["outputs"].as_array().unwrap() {
            assert!(!ep.done, "{name}: ended early");
            env.step(&mut ep, output.as_str().unwrap()).unwrap();
        }
        assert!(ep.done, "{name}: episode must be over");
        let want: Vec<(String, String)> = case["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["role"].as_str().unwrap().to_string(),
                    m["content"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let got: Vec<(String, String)> = ep
            .messages
            .iter()
            .map(|m| (m.role.as_str().to_string(), m.content.clone()))
            .collect();
        assert_eq!(got, want, "{name}: messages");
        assert_eq!(ep.messages.last().unwrap().role, Role::Assistant);
        let rewards = case["turn_rewards"].as_object().unwrap();
        assert_eq!(rewards.len(), ep.turns.len(), "{name}: turns");
        for t in &ep.turns {
            let want = rewards[&format!("t{}", t.turn)].as_f64().unwrap();
            assert_eq!(t.reward, want, "{name}: reward of turn {}", t.turn);
        }
        let want_pen = case["format_penalty"].as_f64().unwrap();
        assert!(
            (ep.format_penalty() - want_pen).abs() < 1e-12,
            "{name}: format penalty {} vs {want_pen}",
            ep.format_penalty()
        );
        let norms: Vec<&str> = case["answer_norms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(ep.answer_norms(), norms, "{name}: answer norms");
        let t_star = case["t_star"].as_u64().map(|t| t as usize);
        assert_eq!(ep.solved_at, t_star, "{name}: t_star");
    }
}
