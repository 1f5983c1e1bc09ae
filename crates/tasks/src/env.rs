//! The [`Environment`] trait, the episode record it keeps, and an [`Episode`] handle.

use serde::{Deserialize, Serialize};

use crate::error::TaskError;
use crate::item::{Message, Role, TaskItem};
use crate::verifier::Reason;

/// What happened in one assistant turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnRecord {
    /// 1-based turn number.
    pub turn: usize,
    /// The model's text exactly as observed.
    pub completion: String,
    /// The turn's reward: the verifier's score (0 when no answer could be parsed).
    pub reward: f64,
    /// Whether the turn's answer is correct.
    pub correct: bool,
    /// The answer the turn gave, if one was parsed.
    pub answer: Option<String>,
    /// The answer lower-cased with whitespace deleted (DRIFT's `answer_norms`, used for the
    /// repetition penalty), if one was parsed.
    pub answer_norm: Option<String>,
    /// The format penalty of this turn: the configured penalty (DRIFT: −0.1) when the turn
    /// could not be parsed, else 0. It is recorded, not added to `reward`.
    pub format_penalty: f64,
    /// Why the turn got its reward.
    pub reason: Reason,
}

/// The whole state of an episode; serialisable, so a rollout can store it as is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeRecord {
    /// The task item being solved.
    pub item: TaskItem,
    /// The conversation so far: optional system message, the task, then alternating
    /// assistant turns and feedback. While the episode runs it ends with a user message.
    pub messages: Vec<Message>,
    /// One record per assistant turn.
    pub turns: Vec<TurnRecord>,
    /// Whether the episode has ended.
    pub done: bool,
    /// The 1-based turn of the first correct answer (DRIFT's `t_star`), if any.
    pub solved_at: Option<usize>,
}

impl EpisodeRecord {
    /// A fresh record with the opening messages.
    pub fn new(item: TaskItem, messages: Vec<Message>) -> Self {
        Self {
            item,
            messages,
            turns: Vec::new(),
            done: false,
            solved_at: None,
        }
    }

    /// The messages to render for the next generation (the whole conversation so far).
    pub fn prompt_messages(&self) -> &[Message] {
        &self.messages
    }

    /// Per-turn rewards, in turn order.
    pub fn rewards(&self) -> Vec<f64> {
        self.turns.iter().map(|t| t.reward).collect()
    }

    /// Sum of the per-turn format penalties (≤ 0).
    pub fn format_penalty(&self) -> f64 {
        self.turns.iter().map(|t| t.format_penalty).sum()
    }

    /// The normalised answers of the turns that gave one, in turn order.
    pub fn answer_norms(&self) -> Vec<&str> {
        self.turns
            .iter()
            .filter_map(|t| t.answer_norm.as_deref())
            .collect()
    }

    /// Appends an assistant turn and its record.
    pub(crate) fn push_turn(&mut self, assistant_message: String, record: TurnRecord) {
        self.messages
            .push(Message::new(Role::Assistant, assistant_message));
        if record.correct && self.solved_at.is_none() {
            self.solved_at = Some(record.turn);
        }
        self.turns.push(record);
    }

    /// The error for stepping a finished episode.
    pub(crate) fn finished_error(&self) -> TaskError {
        TaskError::EpisodeFinished {
            item_id: self.item.id.clone(),
            turns: self.turns.len(),
        }
    }
}

/// The outcome of one [`Environment::step`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// 1-based number of the turn just scored.
    pub turn: usize,
    /// Its reward.
    pub reward: f64,
    /// Whether its answer is correct.
    pub correct: bool,
    /// Whether the episode has ended.
    pub done: bool,
    /// The feedback the environment adds as the next user message, if the episode goes on.
    pub next_user_message: Option<String>,
}

/// A task environment driven by the caller, one model turn at a time.
///
/// The environment never calls a model: the caller (a rollout engine) renders
/// [`EpisodeRecord::prompt_messages`], generates, and passes the text to [`step`]. This
/// keeps one generator in charge of batching across many episodes, each a plain
/// [`EpisodeRecord`] value.
///
/// ```
/// use rlft_tasks::{Environment, MathVerifier, TaskItem, TryAgain, TryAgainConfig};
/// let env = TryAgain::new(MathVerifier::default(), TryAgainConfig::default())?;
/// let item = TaskItem::new("q1", "What is 6 * 7?", "42");
/// let mut ep = env.start(&item)?;
/// let s1 = env.step(&mut ep, "six sevens</think><answer>41</answer>")?;
/// assert_eq!(s1.next_user_message.as_deref(), Some("Incorrect. Please think again."));
/// let s2 = env.step(&mut ep, "oops</think><answer>42</answer>")?;
/// assert!(s2.done && s2.correct);
/// assert_eq!(ep.solved_at, Some(2));
/// # Ok::<(), rlft_tasks::TaskError>(())
/// ```
///
/// # Implementing
/// `start` builds the opening messages; `step` scores one completion, appends it (and any
/// feedback) to the record, and says whether the episode is over. `step` on a finished
/// episode returns [`TaskError::EpisodeFinished`]. The trait is object-safe and implemented
/// for `&E`, `Box<E>` and `Arc<E>`.
///
/// [`step`]: Environment::step
pub trait Environment {
    /// Opens an episode for `item`.
    ///
    /// # Errors
    /// Implementation-specific; the built-in environments do not fail here.
    fn start(&self, item: &TaskItem) -> Result<EpisodeRecord, TaskError>;

    /// Scores `completion` as the next assistant turn of `episode`.
    ///
    /// # Errors
    /// [`TaskError::EpisodeFinished`] if the episode has ended; the verifier's
    /// [`TaskError::BadItem`] if it cannot use the item.
    fn step(&self, episode: &mut EpisodeRecord, completion: &str) -> Result<Step, TaskError>;
}

impl<E: Environment + ?Sized> Environment for &E {
    fn start(&self, item: &TaskItem) -> Result<EpisodeRecord, TaskError> {
        (**self).start(item)
    }
    fn step(&self, episode: &mut EpisodeRecord, completion: &str) -> Result<Step, TaskError> {
        (**self).step(episode, completion)
    }
}

impl<E: Environment + ?Sized> Environment for Box<E> {
    fn start(&self, item: &TaskItem) -> Result<EpisodeRecord, TaskError> {
        (**self).start(item)
    }
    fn step(&self, episode: &mut EpisodeRecord, completion: &str) -> Result<Step, TaskError> {
        (**self).step(episode, completion)
    }
}

impl<E: Environment + ?Sized> Environment for std::sync::Arc<E> {
    fn start(&self, item: &TaskItem) -> Result<EpisodeRecord, TaskError> {
        (**self).start(item)
    }
    fn step(&self, episode: &mut EpisodeRecord, completion: &str) -> Result<Step, TaskError> {
        (**self).step(episode, completion)
    }
}

/// An episode bound to its environment: `observe` one completion at a time.
pub struct Episode<'e> {
    env: &'e dyn Environment,
    record: EpisodeRecord,
}

impl std::fmt::Debug for Episode<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Episode")
            .field("record", &self.record)
            .finish()
    }
}

impl<'e> Episode<'e> {
    /// Starts an episode of `env` for `item`.
    ///
    /// # Errors
    /// As [`Environment::start`].
    pub fn start(env: &'e dyn Environment, item: &TaskItem) -> Result<Self, TaskError> {
        Ok(Self {
            env,
            record: env.start(item)?,
        })
    }

    /// Scores the model's next turn.
    ///
    /// # Errors
    /// As [`Environment::step`].
    pub fn observe(&mut self, completion: &str) -> Result<Step, TaskError> {
        self.env.step(&mut self.record, completion)
    }

    /// Whether the episode has ended.
    pub fn is_done(&self) -> bool {
        self.record.done
    }

    /// The conversation to render for the next generation.
    pub fn messages(&self) -> &[Message] {
        &self.record.messages
    }

    /// The record so far.
    pub fn record(&self) -> &EpisodeRecord {
        &self.record
    }

    /// Ends the borrow and returns the record.
    pub fn into_record(self) -> EpisodeRecord {
        self.record
    }
}

/// Renders the first user message: `{prompt}` in `template` becomes the item's prompt.
pub(crate) fn opening_messages(
    system: Option<&str>,
    template: &str,
    item: &TaskItem,
) -> Vec<Message> {
    let mut messages = Vec::with_capacity(2);
    if let Some(system) = system {
        messages.push(Message::new(Role::System, system));
    }
    messages.push(Message::new(
        Role::User,
        template.replace("{prompt}", &item.prompt),
    ));
    messages
}
