//! Multi-turn episodes over any [`RolloutEngine`]: an [`Environment`] (rlft-tasks) drives the
//! conversation, the engine writes the assistant turns, batched turn by turn across every
//! episode still running.

use rlft_core::{Completion, Role as CoreRole, Trajectory, Turn};
use rlft_tasks::{Environment, EpisodeRecord, Role, TaskItem};

use crate::engine::RolloutEngine;
use crate::error::{Result, RolloutError};
use crate::params::SamplingParams;
use crate::prompt::{Message, Prompt};

/// How an episode's conversation becomes tokens: the model's chat template rendered to text
/// (as transformers' `apply_chat_template(..., tokenize=False)`) and the tokenizer's
/// encoding without added special tokens. The runner renders the opening and each
/// environment message through it; the assistant turns are the engine's own token ids.
pub trait ChatRender {
    /// The template applied to `messages`, with the assistant header when
    /// `add_generation_prompt`.
    ///
    /// # Errors
    /// Template errors.
    fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String>;

    /// Token ids of `text` (no special tokens added).
    ///
    /// # Errors
    /// Tokenizer errors.
    fn encode(&self, text: &str) -> Result<Vec<u32>>;
}

/// One finished episode.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeOutcome {
    /// The prompt id the episode was run for.
    pub prompt_index: usize,
    /// The environment's record: messages, per-turn rewards, answers, `solved_at`.
    pub record: EpisodeRecord,
    /// What the engine returned for each assistant turn, in order: the policy's token ids,
    /// sampling log-probs, raw text and whether it finished.
    pub completions: Vec<Completion>,
    /// The whole episode as the engine saw it: the rendered opening, then for each turn the
    /// engine's tokens followed by the template's end of that turn and the environment's
    /// next message with a fresh assistant header.
    pub token_ids: Vec<u32>,
    /// Length of the rendered opening (system and first user message, assistant header).
    pub prompt_len: usize,
    /// Where each assistant turn's engine tokens sit in `token_ids`, as `start..end`.
    pub turn_spans: Vec<std::ops::Range<usize>>,
}

impl EpisodeOutcome {
    /// 1 on the tokens the policy wrote (every assistant turn), 0 elsewhere, over
    /// `token_ids[prompt_len..]`.
    pub fn policy_mask(&self) -> Vec<f32> {
        let mut m = vec![0.0; self.token_ids.len() - self.prompt_len];
        for s in &self.turn_spans {
            m[s.start - self.prompt_len..s.end - self.prompt_len].fill(1.0);
        }
        m
    }

    /// The episode as an rl-core [`Trajectory`]: every message as a turn, assistant turns
    /// carrying the engine's token ids and the environment's per-turn reward.
    pub fn trajectory(&self) -> Trajectory {
        let mut assistant = 0;
        let turns = self
            .record
            .messages
            .iter()
            .map(|m| {
                let mut t = Turn::new(
                    match m.role {
                        Role::System => CoreRole::System,
                        Role::User => CoreRole::User,
                        Role::Assistant => CoreRole::Assistant,
                    },
                    m.content.clone(),
                );
                if m.role == Role::Assistant {
                    if let Some(c) = self.completions.get(assistant) {
                        t.token_ids = c.token_ids.clone();
                    }
                    t.reward = self.record.turns.get(assistant).map(|r| r.reward as f32);
                    assistant += 1;
                }
                t
            })
            .collect();
        Trajectory {
            prompt_index: self.prompt_index,
            turns,
            ret: None,
            weight: None,
        }
    }
}

/// Runs one episode of `env` per `(prompt_index, item)` in `episodes`, all at once. Each
/// turn, every running episode's tokens so far go to `engine` as one
/// [`Prompt::Tokens`] (one completion each), the environment scores the completion's text
/// and appends its feedback, and the runner appends the engine's tokens, then the template's
/// close of the assistant turn, the feedback message and a new assistant header, rendered
/// through `render`. So the tokens a later turn is generated from are exactly the tokens a
/// learner later trains on, and [`EpisodeOutcome::turn_spans`] says which are the policy's.
/// Episodes end when the environment says so, or after `max_turns` turns as a safety bound.
/// Results come back in input order.
///
/// Token prompts work with the local engine and with OpenAI-compatible servers
/// (`/v1/completions` with token ids: vLLM, SGLang, `rlft serve`).
///
/// `params.n` is ignored (each episode is one sample; list an item k times for k episodes).
/// With `params.seed` set, turn `t` uses a seed derived from it and `t`, so a run repeats.
///
/// # Errors
/// Engine and render errors; [`RolloutError::Environment`] when the environment rejects a
/// step; [`RolloutError::InvalidParam`] for `max_turns = 0`;
/// [`RolloutError::Tokenizer`] when the template's rendering of the conversation with the
/// feedback does not extend its rendering without it.
pub fn run_episodes(
    engine: &dyn RolloutEngine,
    env: &dyn Environment,
    render: &dyn ChatRender,
    episodes: &[(usize, &TaskItem)],
    params: &SamplingParams,
    max_turns: usize,
) -> Result<Vec<EpisodeOutcome>> {
    if max_turns == 0 {
        return Err(RolloutError::InvalidParam {
            field: "max_turns",
            reason: "must be ≥ 1, got 0".into(),
        });
    }
    let mut out: Vec<EpisodeOutcome> = Vec::with_capacity(episodes.len());
    for &(prompt_index, item) in episodes {
        let record = env.start(item)?;
        let token_ids = render.encode(&render.render(&messages(&record.messages), true)?)?;
        out.push(EpisodeOutcome {
            prompt_index,
            prompt_len: token_ids.len(),
            token_ids,
            record,
            completions: Vec::new(),
            turn_spans: Vec::new(),
        });
    }
    for turn in 0..max_turns {
        let live: Vec<usize> = (0..out.len()).filter(|&i| !out[i].record.done).collect();
        if live.is_empty() {
            break;
        }
        let prompts: Vec<Prompt> = live
            .iter()
            .map(|&i| Prompt::Tokens(out[i].token_ids.clone()))
            .collect();
        let mut p = params.clone();
        p.n = 1;
        p.seed = params
            .seed
            .map(|s| rlft_util::seed::step_seed(s, turn as u64, TURN_STREAM));
        let generated = engine.generate(&prompts, &p)?;
        if generated.len() != live.len() {
            return Err(RolloutError::Reply {
                url: engine.model_id().to_string(),
                reason: format!(
                    "{} completion groups for {} episodes",
                    generated.len(),
                    live.len()
                ),
            });
        }
        for (&i, group) in live.iter().zip(generated) {
            let c = group
                .into_iter()
                .next()
                .ok_or_else(|| RolloutError::Reply {
                    url: engine.model_id().to_string(),
                    reason: "an empty completion group".into(),
                })?;
            let o = &mut out[i];
            let before = messages(&o.record.messages);
            let step = env.step(&mut o.record, &c.text)?;
            let start = o.token_ids.len();
            o.token_ids.extend_from_slice(&c.token_ids);
            o.turn_spans.push(start..o.token_ids.len());
            if !step.done {
                let tail = continuation(render, &before, &o.record.messages, &c.token_ids)?;
                o.token_ids.extend(tail);
            }
            o.completions.push(c);
        }
    }
    Ok(out)
}

/// The tokens between the engine's tokens of the assistant turn just taken and the next
/// generation: the template's close of that turn (less a first token the engine already
/// wrote, e.g. its `<|im_end|>` stop token) and everything the environment added, up to a new
/// assistant header.
fn continuation(
    render: &dyn ChatRender,
    before: &[Message],
    after: &[rlft_tasks::Message],
    sampled: &[u32],
) -> Result<Vec<u32>> {
    let all = messages(after);
    // `after` = `before` + the stored assistant message + the environment's messages.
    let n = before.len() + 1;
    let header = render.render(before, true)?;
    let with_turn = render.render(&all[..n], false)?;
    let with_next = render.render(&all, true)?;
    let content = &all[n - 1].content;
    let close = with_turn
        .strip_prefix(header.as_str())
        .and_then(|rest| rest.strip_prefix(content.as_str()))
        .ok_or_else(|| RolloutError::Tokenizer {
            reason: "the chat template's rendering of an assistant turn does not start with the conversation before it and the turn's text".into(),
        })?;
    let next = with_next
        .strip_prefix(with_turn.as_str())
        .ok_or_else(|| RolloutError::Tokenizer {
            reason: "the chat template's rendering of the conversation with the environment's message does not extend its rendering without it".into(),
        })?;
    let mut close_ids = render.encode(close)?;
    if let (Some(&last), Some(&first)) = (sampled.last(), close_ids.first())
        && last == first
    {
        close_ids.remove(0);
    }
    close_ids.extend(render.encode(next)?);
    Ok(close_ids)
}

fn messages(msgs: &[rlft_tasks::Message]) -> Vec<Message> {
    msgs.iter()
        .map(|m| Message::new(m.role.as_str(), m.content.clone()))
        .collect()
}

/// The stream of [`rlft_util::seed::step_seed`] that turn seeds are drawn from.
const TURN_STREAM: u64 = 7;
