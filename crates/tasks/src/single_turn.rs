//! The single-turn environment: one completion, one verdict.

use serde::{Deserialize, Serialize};

use crate::env::{Environment, EpisodeRecord, Step, TurnRecord, opening_messages};
use crate::error::TaskError;
use crate::item::TaskItem;
use crate::verifier::Verifier;

/// Settings of [`SingleTurn`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SingleTurnConfig {
    /// Optional system message. Default none (rlft's choice: the prompt carries the task).
    pub system_prompt: Option<String>,
    /// The user message; `{prompt}` is replaced by the item's prompt. Default `"{prompt}"`
    /// (rlft's choice: the item's prompt as is).
    pub user_template: String,
}

impl Default for SingleTurnConfig {
    fn default() -> Self {
        Self {
            system_prompt: None,
            user_template: "{prompt}".into(),
        }
    }
}

/// One turn: the reward is the verifier's score and the episode ends.
#[derive(Debug, Clone, Default)]
pub struct SingleTurn<V> {
    verifier: V,
    config: SingleTurnConfig,
}

impl<V: Verifier> SingleTurn<V> {
    /// An environment scoring with `verifier`.
    pub fn new(verifier: V, config: SingleTurnConfig) -> Self {
        Self { verifier, config }
    }

    /// The verifier.
    pub fn verifier(&self) -> &V {
        &self.verifier
    }
}

impl<V: Verifier> Environment for SingleTurn<V> {
    fn start(&self, item: &TaskItem) -> Result<EpisodeRecord, TaskError> {
        let messages = opening_messages(
            self.config.system_prompt.as_deref(),
            &self.config.user_template,
            item,
        );
        Ok(EpisodeRecord::new(item.clone(), messages))
    }

    fn step(&self, episode: &mut EpisodeRecord, completion: &str) -> Result<Step, TaskError> {
        if episode.done {
            return Err(episode.finished_error());
        }
        let verdict = self.verifier.verify(&episode.item, completion)?;
        let answer_norm = verdict
            .answer
            .as_deref()
            .map(crate::try_again::drift_answer_norm);
        let record = TurnRecord {
            turn: 1,
            completion: completion.to_string(),
            reward: verdict.score,
            correct: verdict.correct,
            answer: verdict.answer,
            answer_norm,
            format_penalty: 0.0,
            reason: verdict.reason,
        };
        let step = Step {
            turn: 1,
            reward: record.reward,
            correct: record.correct,
            done: true,
            next_user_message: None,
        };
        episode.push_turn(completion.to_string(), record);
        episode.done = true;
        Ok(step)
    }
}
