//! Environments: the single-turn case and DRIFT's multi-turn "try again" protocol.

use proptest::prelude::*;
use rlft_tasks::{
    CountdownVerifier, DRIFT_FEEDBACK, Environment, Episode, EpisodeRecord, ExactMatch,
    MathVerifier, Message, Reason, Role, SingleTurn, SingleTurnConfig, TaskError, TaskItem,
    TryAgain, TryAgainConfig, TurnFormat,
};

fn item() -> TaskItem {
    TaskItem::new("q1", "What is 6 * 7?", "42")
}

fn drift_env() -> TryAgain<ExactMatch> {
    TryAgain::new(ExactMatch::default(), TryAgainConfig::default()).unwrap()
}

#[test]
fn drift_protocol_wrong_wrong_right() {
    let env = drift_env();
    let mut ep = env.start(&item()).unwrap();
    assert_eq!(
        ep.messages,
        vec![
            Message::new(Role::System, "You are a helpful assistant."),
            Message::new(Role::User, "What is 6 * 7?"),
        ]
    );
    // Thinking is prefilled: completions continue after "<think>".
    let s1 = env
        .step(
            &mut ep,
            " six times seven </think>\n<answer> 41 </answer><|im_end|>",
        )
        .unwrap();
    assert_eq!(
        (s1.turn, s1.reward, s1.correct, s1.done),
        (1, 0.0, false, false)
    );
    assert_eq!(
        s1.next_user_message.as_deref(),
        Some("Incorrect. Please think again.")
    );
    let s2 = env.step(&mut ep, "hmm</think><answer>41</answer>").unwrap();
    assert!(!s2.done);
    let s3 = env
        .step(&mut ep, "<think>recount</think><answer>4 2</answer>")
        .unwrap();
    assert_eq!(
        (s3.turn, s3.reward, s3.correct, s3.done),
        (3, 1.0, true, true)
    );
    assert_eq!(s3.next_user_message, None);

    assert_eq!(ep.solved_at, Some(3));
    assert!(ep.done);
    assert_eq!(ep.rewards(), vec![0.0, 0.0, 1.0]);
    assert_eq!(ep.answer_norms(), vec!["41", "41", "42"]);
    assert_eq!(ep.format_penalty(), 0.0);
    let roles: Vec<Role> = ep.messages.iter().map(|m| m.role).collect();
    use Role::*;
    assert_eq!(
        roles,
        vec![System, User, Assistant, User, Assistant, User, Assistant]
    );
    // Stored assistant turns are rebuilt, trimmed, special tokens removed.
    assert_eq!(
        ep.messages[2].content,
        "<think>six times seven</think><answer>41</answer>"
    );
    assert_eq!(ep.messages[3].content, DRIFT_FEEDBACK);
    assert_eq!(ep.turns[2].answer.as_deref(), Some("4 2"));
    // The raw completion is kept too.
    assert!(ep.turns[0].completion.ends_with("<|im_end|>"));
    assert!(matches!(
        env.step(&mut ep, "<answer>42</answer>"),
        Err(TaskError::EpisodeFinished { turns: 3, .. })
    ));
}

#[test]
fn unsolved_episode_stops_at_max_turns_with_format_penalties() {
    let env = drift_env();
    let mut ep = env.start(&item()).unwrap();
    let turns = [
        "no tags at all",
        "x</think><answer>5</answer>",
        "x</think> <answer>5</answer>",
        "</think>",
        "y</think><answer></answer>",
    ];
    for (i, t) in turns.iter().enumerate() {
        let s = env.step(&mut ep, t).unwrap();
        assert_eq!(s.done, i == 4, "turn {}", i + 1);
    }
    assert_eq!(ep.turns.len(), 5);
    assert_eq!(ep.solved_at, None);
    // Turns 1 and 4 do not parse and turn 5 parses with an empty answer: −0.1 each, as the
    // released `process_turn` does (tests/drift_released.rs replays its own outputs).
    let penalties: Vec<f64> = ep.turns.iter().map(|t| t.format_penalty).collect();
    assert_eq!(penalties, vec![-0.1, 0.0, 0.0, -0.1, -0.1]);
    assert!((ep.format_penalty() + 0.3).abs() < 1e-12);
    assert_eq!(ep.answer_norms(), vec!["5", "5"]);
    // An unparseable turn is stored raw with "<think>" put back in front.
    assert_eq!(ep.messages[2].content, "<think>no tags at all");
    assert!(matches!(ep.turns[0].reason, Reason::NoAnswer { .. }));
    assert_eq!(
        ep.messages.last().unwrap().role,
        Role::Assistant,
        "ends with the model"
    );
}

#[test]
fn thinking_that_mentions_answer_tags_does_not_confuse_the_verifier() {
    let env = drift_env();
    let mut ep = env.start(&item()).unwrap();
    let s = env
        .step(
            &mut ep,
            "I will write <answer> at the end</think><answer>42</answer>",
        )
        .unwrap();
    assert!(s.correct, "{:?}", ep.turns[0].reason);
    assert_eq!(
        ep.messages[2].content,
        "<think>I will write <answer> at the end</think><answer>42</answer>"
    );
}

#[test]
fn answers_are_split_on_double_bar_and_first_kept() {
    let env = drift_env();
    let mut ep = env.start(&item()).unwrap();
    let s = env
        .step(&mut ep, "t</think><answer>42 || 41</answer>")
        .unwrap();
    assert!(s.correct);
    assert_eq!(ep.turns[0].answer.as_deref(), Some("42"));
}

#[test]
fn config_knobs_change_the_protocol() {
    let cfg = TryAgainConfig {
        max_turns: 2,
        feedback: "Nope.".into(),
        system_prompt: None,
        user_template: "Solve: {prompt}\nAnswer in <answer></answer>.".into(),
        turn_format: TurnFormat::Free,
        think_prefilled: false,
        format_penalty: -0.5,
        ..TryAgainConfig::default()
    };
    let env = TryAgain::new(MathVerifier::default(), cfg).unwrap();
    let mut ep = env.start(&item()).unwrap();
    assert_eq!(
        ep.messages,
        vec![Message::new(
            Role::User,
            "Solve: What is 6 * 7?\nAnswer in <answer></answer>."
        )]
    );
    let s = env.step(&mut ep, "I think 40").unwrap();
    assert_eq!(s.next_user_message.as_deref(), Some("Nope."));
    assert_eq!(ep.turns[0].format_penalty, -0.5);
    let s = env.step(&mut ep, "\\boxed{40}").unwrap();
    assert!(s.done && !s.correct);
    assert_eq!(ep.turns[1].format_penalty, 0.0);
    assert_eq!(
        ep.messages[1].content, "I think 40",
        "free format stores raw text"
    );

    let bad = TryAgainConfig {
        max_turns: 0,
        ..Default::default()
    };
    assert!(
        matches!(TryAgain::new(MathVerifier::default(), bad), Err(TaskError::Config { field, .. }) if field == "try_again.max_turns")
    );
}

#[test]
fn single_turn_ends_after_one_step() {
    let env = SingleTurn::new(
        MathVerifier::default(),
        SingleTurnConfig {
            system_prompt: Some("sys".into()),
            ..Default::default()
        },
    );
    let mut ep = env.start(&item()).unwrap();
    assert_eq!(ep.messages.len(), 2);
    let s = env.step(&mut ep, "\\boxed{42}").unwrap();
    assert!(s.done && s.correct && s.reward == 1.0 && s.next_user_message.is_none());
    assert_eq!(ep.solved_at, Some(1));
    assert!(env.step(&mut ep, "again").is_err());
}

#[test]
fn episode_handle_and_trait_objects() {
    let envs: Vec<Box<dyn Environment>> = vec![
        Box::new(drift_env()),
        Box::new(SingleTurn::new(
            CountdownVerifier::default(),
            SingleTurnConfig::default(),
        )),
    ];
    let cd = TaskItem::new("c", "make 98", "98").with_meta("nums", serde_json::json!([44, 19, 35]));
    let mut ep = Episode::start(envs[1].as_ref(), &cd).unwrap();
    assert!(!ep.is_done());
    let s = ep.observe("<answer>44 + 19 + 35</answer>").unwrap();
    assert!(s.correct && ep.is_done());
    // A bad item surfaces as an error at step time, not as a panic or a silent zero.
    let mut ep = Episode::start(&envs[1], &item()).unwrap();
    assert!(matches!(
        ep.observe("<answer>1</answer>"),
        Err(TaskError::BadItem { .. })
    ));

    let mut ep = Episode::start(&envs[0], &item()).unwrap();
    ep.observe("a</think><answer>1</answer>").unwrap();
    assert_eq!(ep.messages().last().unwrap().content, DRIFT_FEEDBACK);
    let record = ep.into_record();
    let json = serde_json::to_string(&record).unwrap();
    let back: EpisodeRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(back, record);
    assert!(json.contains("\"role\":\"assistant\""));
}

proptest! {
    #[test]
    fn episode_ends_at_first_correct_or_max_turns(
        outcomes in prop::collection::vec(any::<bool>(), 1..8),
        max_turns in 1usize..6,
    ) {
        let env = TryAgain::new(ExactMatch::default(), TryAgainConfig { max_turns, ..Default::default() }).unwrap();
        let mut ep = env.start(&item()).unwrap();
        let mut steps = 0;
        for &ok in &outcomes {
            let text = if ok { "t</think><answer>42</answer>" } else { "t</think><answer>7</answer>" };
            match env.step(&mut ep, text) {
                Ok(s) => {
                    steps += 1;
                    prop_assert_eq!(s.turn, steps);
                    prop_assert_eq!(s.done, ok || steps == max_turns);
                    prop_assert_eq!(s.next_user_message.is_some(), !s.done);
                }
                Err(TaskError::EpisodeFinished { turns, .. }) => {
                    prop_assert!(ep.done);
                    prop_assert_eq!(turns, steps);
                }
                Err(e) => return Err(TestCaseError::fail(e.to_string())),
            }
        }
        let first_ok = outcomes.iter().position(|&b| b).map(|i| i + 1);
        let expected_turns = first_ok.unwrap_or(usize::MAX).min(max_turns).min(outcomes.len());
        prop_assert_eq!(ep.turns.len(), expected_turns);
        prop_assert_eq!(ep.solved_at, first_ok.filter(|&t| t <= max_turns));
        // Messages: system, user, then (assistant, user)* and, when done, a final assistant.
        let tail: Vec<Role> = ep.messages[2..].iter().map(|m| m.role).collect();
        for (i, r) in tail.iter().enumerate() {
            prop_assert_eq!(*r, if i % 2 == 0 { Role::Assistant } else { Role::User });
        }
        if ep.done {
            prop_assert_eq!(ep.messages.last().map(|m| m.role), Some(Role::Assistant));
        }
        let rewards_sum: f64 = ep.rewards().iter().sum();
        prop_assert_eq!(rewards_sum, if ep.solved_at.is_some() { 1.0 } else { 0.0 });
    }
}
