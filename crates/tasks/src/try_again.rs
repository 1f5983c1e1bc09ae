//! The multi-turn "try again" environment of DRIFT and UFO (spec drift.md §2.1).

use serde::{Deserialize, Serialize};

use crate::env::{Environment, EpisodeRecord, Step, TurnRecord, opening_messages};
use crate::error::TaskError;
use crate::extract::parse_think_answer;
use crate::item::{Message, Role, TaskItem};
use crate::verifier::{Reason, Verifier};

/// The feedback DRIFT's evaluation (`simple` prompt mode) and the paper's figure use.
pub const DRIFT_FEEDBACK: &str = "Incorrect. Please think again.";

/// DRIFT's task instruction (`DEFAULT_ENV_INSTRUCTION` in the released `src/prompting.py`).
pub const DRIFT_INSTRUCTION: &str =
    "You are solving Math problems. Only give the final answer between <answer> and </answer>.";

/// DRIFT's system message, trailing space included (`SYSTEM_MESSAGE` in the released
/// `src/prompting.py`).
pub const DRIFT_SYSTEM_MESSAGE: &str = "You're a helpful assistant. ";

/// DRIFT's first user message in `simple` mode, as a [`TryAgainConfig::user_template`]
/// (`build_initial_messages` in the released `src/prompting.py`, thinking on).
pub const DRIFT_SIMPLE_TEMPLATE: &str = "You are solving Math problems. Only give the final answer between <answer> and </answer>.\n\nProblem:\n{prompt}\n\nAlways output: <think> [Your thoughts] </think> <answer> [your answer] </answer> with no extra text. Strictly follow this format.";

/// How the environment words its user messages (DRIFT's `--prompt_mode`, spec drift.md §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptMode {
    /// The first user message is [`TryAgainConfig::user_template`]; after a wrong or
    /// unparseable turn the user says [`TryAgainConfig::feedback`] alone. DRIFT's evaluation
    /// (`run_all_benchmark.sh`) uses it, and the spec recommends it everywhere.
    #[default]
    Simple,
    /// DRIFT's argparse default, which its data-generation script uses: the first user
    /// message is [`TryAgainConfig::instruction`] plus a turn block (`Turn 1:`, `State:` with
    /// the rendered `user_template`, the actions left, the format reminder and
    /// `Max response length: N words (tokens).`); each feedback message is `Reward:` with the
    /// turn's reward, then the next turn block, whose state is `feedback` once an answer has
    /// been executed and the problem until then (the released `MultiTurnAnswerEpisode`
    /// keeps its state on unparseable turns).
    Full,
}

/// How each model turn is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnFormat {
    /// DRIFT's `<think>T</think> <answer>A</answer>`: the turn is parsed with DRIFT's regex,
    /// the answer is split on `||` and its first piece kept (`max_actions_per_turn` = 1),
    /// the stored message is the rebuilt `<think>T</think><answer>A</answer>`, and the
    /// verifier sees `<answer>A</answer>` (so use a verifier that reads `<answer>` tags, as
    /// the defaults do). A turn that does not parse executes no answer and gets the format
    /// penalty.
    ThinkAnswer,
    /// The verifier sees the raw completion; a turn in which it finds no answer gets the
    /// format penalty.
    Free,
}

/// Settings of [`TryAgain`]. Defaults follow DRIFT (spec drift.md §2.1 and §4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TryAgainConfig {
    /// Most assistant turns. Default 5: DRIFT `max_turns` (scripts and argparse).
    pub max_turns: usize,
    /// The user message after a wrong or unparseable turn. Default
    /// [`DRIFT_FEEDBACK`] ("Incorrect. Please think again."): DRIFT's `incorrect_obs`. In
    /// [`PromptMode::Full`] it is the state shown after a wrong answer.
    pub feedback: String,
    /// How user messages are worded. Default [`PromptMode::Simple`]: DRIFT's evaluation mode,
    /// which the spec recommends for data and evaluation alike (DRIFT's released data
    /// generation used `full`).
    pub prompt_mode: PromptMode,
    /// The task instruction that opens the first user message in [`PromptMode::Full`].
    /// Default [`DRIFT_INSTRUCTION`]. Unused in `simple` mode, where `user_template` holds
    /// the whole first message.
    pub instruction: String,
    /// The length hint of [`PromptMode::Full`]'s turn blocks ("Max response length: N words
    /// (tokens)."). Default 400: `INSTRUCTION_MAX_TOKENS` in DRIFT's
    /// `scripts/run_generate_data.sh` (the argparse default is 1000).
    pub instruction_max_tokens: usize,
    /// System message. Default `Some("You are a helpful assistant.")`: DRIFT starts with a
    /// "helpful assistant" system message (the Qwen2.5-Instruct default wording).
    pub system_prompt: Option<String>,
    /// First user message; `{prompt}` is replaced by the item's prompt. Default
    /// `"{prompt}"`: put the task instruction and format request in the prompt or here.
    pub user_template: String,
    /// How turns are parsed. Default [`TurnFormat::ThinkAnswer`] (DRIFT).
    pub turn_format: TurnFormat,
    /// Whether the rendered prompt ends with a literal `<think>`, so completions start
    /// inside the thinking block. Default true: DRIFT thinks by default. When true and a
    /// completion does not itself start with `<think>`, one is put in front before parsing
    /// and storing.
    pub think_prefilled: bool,
    /// Penalty recorded for a turn with no parseable answer. Default −0.1: DRIFT.
    pub format_penalty: f64,
    /// Most valid (non-empty) answers per episode; the episode also ends when they are used
    /// up. Unparseable turns and empty answers do not count. Default 5: DRIFT
    /// `max_actions_per_traj` (with one answer per turn it only binds if `max_turns` > 5).
    pub max_answers: usize,
}

impl Default for TryAgainConfig {
    fn default() -> Self {
        Self {
            max_turns: 5,
            feedback: DRIFT_FEEDBACK.into(),
            prompt_mode: PromptMode::Simple,
            instruction: DRIFT_INSTRUCTION.into(),
            instruction_max_tokens: 400,
            system_prompt: Some("You are a helpful assistant.".into()),
            user_template: "{prompt}".into(),
            turn_format: TurnFormat::ThinkAnswer,
            think_prefilled: true,
            format_penalty: -0.1,
            max_answers: 5,
        }
    }
}

impl TryAgainConfig {
    /// Checks `max_turns ≥ 1`, `max_answers ≥ 1` and a finite penalty.
    ///
    /// # Errors
    /// [`TaskError::Config`] naming the field.
    pub fn validate(&self) -> Result<(), TaskError> {
        if self.max_answers == 0 {
            return Err(TaskError::Config {
                field: "try_again.max_answers".into(),
                reason: "must be at least 1, got 0".into(),
            });
        }
        if self.max_turns == 0 {
            return Err(TaskError::Config {
                field: "try_again.max_turns".into(),
                reason: "must be at least 1, got 0".into(),
            });
        }
        if !self.format_penalty.is_finite() {
            return Err(TaskError::Config {
                field: "try_again.format_penalty".into(),
                reason: format!("must be finite, got {}", self.format_penalty),
            });
        }
        Ok(())
    }
}

/// The "try again" protocol: after each wrong turn the user says the feedback message; the
/// episode ends at the first correct answer, after `max_turns` turns, or when `max_answers`
/// valid answers have been given. Per-turn rewards,
/// answers, normalised answers and format penalties are recorded for DRIFT's return.
#[derive(Debug, Clone)]
pub struct TryAgain<V> {
    verifier: V,
    config: TryAgainConfig,
}

impl<V: Verifier> TryAgain<V> {
    /// An environment scoring with `verifier`.
    ///
    /// # Errors
    /// [`TaskError::Config`] if `config` is invalid.
    pub fn new(verifier: V, config: TryAgainConfig) -> Result<Self, TaskError> {
        config.validate()?;
        Ok(Self { verifier, config })
    }

    /// The settings.
    pub fn config(&self) -> &TryAgainConfig {
        &self.config
    }
}

/// DRIFT's answer normalisation for repetition counting: lower-case, delete whitespace.
pub(crate) fn drift_answer_norm(answer: &str) -> String {
    answer
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// Removes chat special tokens written as `<|…|>` (e.g. `<|im_end|>`).
fn strip_special(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("<|") {
        match rest[i + 2..].find("|>") {
            Some(j) => {
                out.push_str(&rest[..i]);
                rest = &rest[i + 2 + j + 2..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out.trim().to_string()
}

impl<V: Verifier> Environment for TryAgain<V> {
    fn start(&self, item: &TaskItem) -> Result<EpisodeRecord, TaskError> {
        let mut messages = opening_messages(
            self.config.system_prompt.as_deref(),
            &self.config.user_template,
            item,
        );
        if self.config.prompt_mode == PromptMode::Full
            && let Some(first) = messages.last_mut()
        {
            let block = self.turn_block(1, &first.content, self.config.max_answers);
            first.content = format!("{}\n{block}", self.config.instruction);
        }
        Ok(EpisodeRecord::new(item.clone(), messages))
    }

    fn step(&self, episode: &mut EpisodeRecord, completion: &str) -> Result<Step, TaskError> {
        if episode.done {
            return Err(episode.finished_error());
        }
        let turn = episode.turns.len() + 1;
        let (stored, record) = match self.config.turn_format {
            TurnFormat::ThinkAnswer => self.think_answer_turn(episode, completion, turn)?,
            TurnFormat::Free => self.free_turn(episode, completion, turn)?,
        };
        let step_reward = record.reward;
        let correct = record.correct;
        episode.push_turn(stored, record);
        let answers_used = episode.turns.iter().filter(|t| t.answer.is_some()).count();
        let done =
            correct || turn >= self.config.max_turns || answers_used >= self.config.max_answers;
        episode.done = done;
        let next_user_message = (!done).then(|| match self.config.prompt_mode {
            PromptMode::Simple => self.config.feedback.clone(),
            PromptMode::Full => self.full_feedback(episode, turn, step_reward, answers_used),
        });
        if let Some(feedback) = &next_user_message {
            episode
                .messages
                .push(Message::new(Role::User, feedback.clone()));
        }
        Ok(Step {
            turn,
            reward: step_reward,
            correct,
            done,
            next_user_message,
        })
    }
}

/// A reward as Python's `str(float)` writes it (`0.0`, `1.0`, `0.5`), as DRIFT's `full`
/// feedback shows it.
fn python_float(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e16 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

impl<V: Verifier> TryAgain<V> {
    /// DRIFT's `build_turn_block`.
    fn turn_block(&self, turn: usize, state: &str, actions_left: usize) -> String {
        let format_prompt = match self.config.turn_format {
            TurnFormat::ThinkAnswer => {
                "<think> [Your thoughts] </think> <answer> [your answer] </answer>"
            }
            TurnFormat::Free => "<answer> [your answer] </answer>",
        };
        format!(
            "Turn {turn}:\nState:\n{state}\nYou have {actions_left} actions left. Always output: \
             {format_prompt} with no extra text. Strictly follow this format. Max response \
             length: {} words (tokens).\n",
            self.config.instruction_max_tokens
        )
    }

    /// DRIFT's `build_reward_message` in `full` mode, after turn `turn`.
    fn full_feedback(
        &self,
        episode: &EpisodeRecord,
        turn: usize,
        reward: f64,
        answers_used: usize,
    ) -> String {
        let state = if answers_used > 0 {
            self.config.feedback.clone()
        } else {
            self.config
                .user_template
                .replace("{prompt}", &episode.item.prompt)
        };
        let actions_left = self.config.max_answers.saturating_sub(answers_used);
        format!(
            "Reward:\n{}\n{}",
            python_float(reward),
            self.turn_block(turn + 1, &state, actions_left)
        )
    }

    fn think_answer_turn(
        &self,
        episode: &EpisodeRecord,
        completion: &str,
        turn: usize,
    ) -> Result<(String, TurnRecord), TaskError> {
        let full = if self.config.think_prefilled && !completion.trim_start().starts_with("<think>")
        {
            format!("<think>{completion}")
        } else {
            completion.to_string()
        };
        let mut record = TurnRecord {
            turn,
            completion: completion.to_string(),
            reward: 0.0,
            correct: false,
            answer: None,
            answer_norm: None,
            format_penalty: 0.0,
            reason: Reason::NoAnswer {
                looked_for: "<think>…</think> <answer>…</answer>".into(),
            },
        };
        let Some(parsed) = parse_think_answer(&full) else {
            record.format_penalty = self.config.format_penalty;
            return Ok((full, record));
        };
        let think = strip_special(parsed.think);
        let answer_all = strip_special(parsed.answer);
        let answer = answer_all
            .split("||")
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let stored = format!("<think>{think}</think><answer>{answer}</answer>");
        if answer.is_empty() {
            // Parsed, but no action: nothing is executed, and the released `process_turn`
            // adds the format penalty (its `if actions ... else` branch).
            record.format_penalty = self.config.format_penalty;
            record.reason = Reason::NoAnswer {
                looked_for: "a non-empty <answer>".into(),
            };
            return Ok((stored, record));
        }
        // The verifier sees the answer alone: thinking text may itself mention `<answer>`.
        let verdict = self
            .verifier
            .verify(&episode.item, &format!("<answer>{answer}</answer>"))?;
        record.reward = verdict.score;
        record.correct = verdict.correct;
        record.answer_norm = Some(drift_answer_norm(&answer));
        record.answer = Some(answer);
        record.reason = verdict.reason;
        Ok((stored, record))
    }

    fn free_turn(
        &self,
        episode: &EpisodeRecord,
        completion: &str,
        turn: usize,
    ) -> Result<(String, TurnRecord), TaskError> {
        let verdict = self.verifier.verify(&episode.item, completion)?;
        let format_penalty = if verdict.answer.is_none() {
            self.config.format_penalty
        } else {
            0.0
        };
        let record = TurnRecord {
            turn,
            completion: completion.to_string(),
            reward: verdict.score,
            correct: verdict.correct,
            answer_norm: verdict.answer.as_deref().map(drift_answer_norm),
            answer: verdict.answer,
            format_penalty,
            reason: verdict.reason,
        };
        Ok((completion.to_string(), record))
    }
}
