//! Multi-turn conversations as training rows: rendering through the model's own chat
//! template with per-token loss masks on chosen assistant turns (weighted SFT, DRIFT), and
//! online multi-turn rollouts ([`MultiTurn`]) for GRPO over an environment.

use rlft_core::{Completion, PromptGroup};
use rlft_models::{ChatMessage, ChatTemplateOptions, ChatTokenizer};
use rlft_rollout::{ChatRender, RolloutEngine, RolloutError, SamplingParams, run_episodes};
use rlft_tasks::{Environment, Message, Role, TaskItem};
use serde::{Deserialize, Serialize};

use crate::collect::RolloutSource;
use crate::error::{Result, TrainerError};
use crate::sft::SftExample;

/// Which assistant turns of a conversation carry loss.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossTurns {
    /// Only the last assistant turn (DRIFT's released training: earlier attempts are context).
    #[default]
    Last,
    /// Every assistant turn (online multi-turn RL: every token the policy wrote).
    All,
}

/// A conversation rendered for training: everything before the first trained assistant turn
/// is the prompt; the rest, up to the end of the last trained turn, is the completion, with
/// loss on the trained turns' tokens only.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedConversation {
    /// Tokens before the first trained assistant turn (its generation header included).
    pub prompt_ids: Vec<u32>,
    /// The tokens after the prompt, up to and including the last trained turn's end-of-turn
    /// token.
    pub completion_ids: Vec<u32>,
    /// 1 on tokens of trained assistant turns (their content and end-of-turn token), 0 on
    /// feedback, headers and untrained turns; one per completion token.
    pub loss_mask: Vec<f32>,
}

impl RenderedConversation {
    /// As an SFT example with `weight`.
    pub fn into_example(self, weight: f32) -> SftExample {
        SftExample {
            prompt_ids: self.prompt_ids,
            completion_ids: self.completion_ids,
            loss_mask: self.loss_mask,
            weight,
        }
    }
}

/// Renders `messages` through `tokenizer`'s chat template (as transformers'
/// `apply_chat_template` does, no special tokens added on encoding) and marks the tokens of
/// the chosen assistant turns. Each assistant turn's span is found by rendering the
/// conversation before it with a generation prompt and through it without one; the span ends
/// at the turn's end-of-turn token (`<|im_end|>`, `<|eot_id|>`, `<|end|>` or EOS, whichever
/// comes first; the template's trailing newline carries no loss).
///
/// Guards (DRIFT spec §7 item 8): every such partial rendering must tokenize to a prefix of
/// the whole conversation's tokens, so a template or tokenizer that merges across turn
/// boundaries is an error rather than a silently shifted mask.
///
/// # Errors
/// [`TrainerError::InvalidBatch`] for a conversation without an assistant turn, or a prefix
/// mismatch naming the turn; tokenizer and template errors.
pub fn render_conversation(
    tokenizer: &ChatTokenizer,
    messages: &[Message],
    turns: LossTurns,
) -> Result<RenderedConversation> {
    let assistant: Vec<usize> = messages
        .iter()
        .enumerate()
        .filter(|(_, m)| m.role == Role::Assistant)
        .map(|(i, _)| i)
        .collect();
    let chosen: Vec<usize> = match turns {
        LossTurns::Last => assistant.last().copied().into_iter().collect(),
        LossTurns::All => assistant,
    };
    if chosen.is_empty() {
        return Err(TrainerError::InvalidBatch(
            "a conversation needs at least one assistant message to train on".into(),
        ));
    }
    let render = |upto: usize, gen_prompt: bool| -> Result<Vec<u32>> {
        let msgs: Vec<ChatMessage> = messages[..upto]
            .iter()
            .map(|m| ChatMessage::new(m.role.as_str(), &m.content))
            .collect();
        let text = tokenizer.apply_chat_template(
            &msgs,
            &ChatTemplateOptions {
                add_generation_prompt: gen_prompt,
                ..ChatTemplateOptions::default()
            },
        )?;
        Ok(tokenizer.encode(&text, false)?)
    };
    let full = render(messages.len(), false)?;
    // A turn ends at the template's end-of-turn token (ChatML's `<|im_end|>`, Llama 3's
    // `<|eot_id|>`) or the tokenizer's EOS, whichever comes first.
    let stops: Vec<u32> = ["<|im_end|>", "<|eot_id|>", "<|end|>"]
        .iter()
        .filter_map(|t| tokenizer.inner().token_to_id(t))
        .chain(tokenizer.eos_token_id())
        .collect();
    let mut spans = Vec::with_capacity(chosen.len());
    for &i in &chosen {
        let before = render(i, true)?;
        let through = render(i + 1, false)?;
        for (what, ids) in [("before", &before), ("through", &through)] {
            if !full.starts_with(ids) {
                return Err(TrainerError::InvalidBatch(format!(
                    "the tokens of the conversation {what} assistant message {i} are not a prefix of the whole conversation's tokens (the chat template or tokenizer merges across turns)"
                )));
            }
        }
        if through.len() < before.len() {
            return Err(TrainerError::InvalidBatch(format!(
                "assistant message {i} renders to fewer tokens than the conversation before it"
            )));
        }
        let mut end = through.len();
        if let Some(j) = through[before.len()..]
            .iter()
            .position(|t| stops.contains(t))
        {
            end = before.len() + j + 1;
        }
        spans.push((before.len(), end));
    }
    let start = spans[0].0;
    let stop = spans.last().map_or(start, |s| s.1);
    let mut loss_mask = vec![0.0; stop - start];
    for &(a, b) in &spans {
        loss_mask[a - start..b - start].fill(1.0);
    }
    Ok(RenderedConversation {
        prompt_ids: full[..start].to_vec(),
        completion_ids: full[start..stop].to_vec(),
        loss_mask,
    })
}

/// A [`ChatTokenizer`] as the episode runner's [`ChatRender`]: its chat template and its
/// encoding without added special tokens.
#[derive(Debug, Clone, Copy)]
pub struct TemplateRender<'t>(pub &'t ChatTokenizer);

impl ChatRender for TemplateRender<'_> {
    fn render(
        &self,
        messages: &[rlft_rollout::Message],
        add_generation_prompt: bool,
    ) -> rlft_rollout::Result<String> {
        let msgs: Vec<ChatMessage> = messages
            .iter()
            .map(|m| ChatMessage::new(&m.role, &m.content))
            .collect();
        self.0
            .apply_chat_template(
                &msgs,
                &ChatTemplateOptions {
                    add_generation_prompt,
                    ..ChatTemplateOptions::default()
                },
            )
            .map_err(|e| RolloutError::Tokenizer {
                reason: e.to_string(),
            })
    }

    fn encode(&self, text: &str) -> rlft_rollout::Result<Vec<u32>> {
        self.0
            .encode(text, false)
            .map_err(|e| RolloutError::Tokenizer {
                reason: e.to_string(),
            })
    }
}

/// Settings of online multi-turn rollouts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MultiTurnConfig {
    /// Safety bound on assistant turns per episode (the environment usually ends sooner).
    /// Default 16.
    pub max_turns: usize,
    /// Discount γ of the episode return R = Σ_t γ^(t−1)·r_t + Σ format penalties (DRIFT's
    /// return without its repetition penalty). Default 1.
    pub gamma: f64,
    /// Which assistant turns carry loss. Default all (every token the policy wrote).
    pub loss_turns: LossTurns,
}

impl Default for MultiTurnConfig {
    fn default() -> Self {
        Self {
            max_turns: 16,
            gamma: 1.0,
            loss_turns: LossTurns::All,
        }
    }
}

/// Online multi-turn rollouts: each rollout is a whole episode of `env` on the prompt's task
/// item, generated turn by turn (batched across episodes) by the step's engine from token
/// prompts ([`run_episodes`]). A rollout becomes one training row of exactly the tokens the
/// engine saw and wrote: the rendered opening as the prompt, then the turns, with loss on the
/// engine's tokens of the chosen assistant turns only (never on feedback or template tokens).
/// Its reward is the episode return, and it counts as correct when the episode was solved at
/// some turn. The learner scores old log-probs itself; the engine's log-probs are not used.
pub struct MultiTurn<'a> {
    env: &'a dyn Environment,
    items: Vec<TaskItem>,
    tokenizer: ChatTokenizer,
    cfg: MultiTurnConfig,
}

impl std::fmt::Debug for MultiTurn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiTurn")
            .field("items", &self.items.len())
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl<'a> MultiTurn<'a> {
    /// Episodes of `env` on `items` (prompt id = index), rendered with `tokenizer`.
    ///
    /// # Errors
    /// [`TrainerError::Config`] for `max_turns = 0` or a non-finite γ.
    pub fn new(
        env: &'a dyn Environment,
        items: Vec<TaskItem>,
        tokenizer: ChatTokenizer,
        cfg: MultiTurnConfig,
    ) -> Result<Self> {
        if cfg.max_turns == 0 {
            return Err(TrainerError::Config {
                field: "environment.max_turns",
                reason: "must be ≥ 1, got 0".into(),
            });
        }
        if !cfg.gamma.is_finite() {
            return Err(TrainerError::Config {
                field: "environment.gamma",
                reason: format!("must be finite, got {}", cfg.gamma),
            });
        }
        Ok(Self {
            env,
            items,
            tokenizer,
            cfg,
        })
    }
}

impl RolloutSource for MultiTurn<'_> {
    fn num_prompts(&self) -> usize {
        self.items.len()
    }

    fn rollout(
        &self,
        engine: &dyn RolloutEngine,
        prompts: &[usize],
        params: &SamplingParams,
    ) -> Result<Vec<PromptGroup>> {
        let n = params.n;
        let mut list = Vec::with_capacity(prompts.len() * n);
        for &p in prompts {
            let item = self.items.get(p).ok_or_else(|| {
                TrainerError::InvalidBatch(format!(
                    "prompt id {p} out of range for {} task items",
                    self.items.len()
                ))
            })?;
            list.extend(std::iter::repeat_n((p, item), n));
        }
        let render = TemplateRender(&self.tokenizer);
        let outcomes = run_episodes(engine, self.env, &render, &list, params, self.cfg.max_turns)?;
        let mut groups: Vec<PromptGroup> = Vec::with_capacity(prompts.len());
        for chunk in outcomes.chunks(n.max(1)) {
            let mut group = PromptGroup {
                prompt_index: chunk[0].prompt_index,
                prompt_ids: chunk[0].token_ids[..chunk[0].prompt_len].to_vec(),
                ..PromptGroup::default()
            };
            for o in chunk {
                let (prompt, rest) = o.token_ids.split_at(o.prompt_len);
                if prompt != group.prompt_ids.as_slice() {
                    return Err(TrainerError::InvalidBatch(format!(
                        "episodes of prompt {} render to different openings",
                        o.prompt_index
                    )));
                }
                let loss_mask = match self.cfg.loss_turns {
                    LossTurns::All => o.policy_mask(),
                    LossTurns::Last => {
                        let mut m = vec![0.0; rest.len()];
                        if let Some(s) = o.turn_spans.last() {
                            m[s.start - o.prompt_len..s.end - o.prompt_len].fill(1.0);
                        }
                        m
                    }
                };
                let ret: f64 = o
                    .record
                    .turns
                    .iter()
                    .enumerate()
                    .map(|(t, rec)| self.cfg.gamma.powi(t as i32) * rec.reward)
                    .sum::<f64>()
                    + o.record.format_penalty();
                group.completions.push(Completion {
                    token_ids: rest.to_vec(),
                    loss_mask,
                    text: o
                        .completions
                        .last()
                        .map(|c| c.text.clone())
                        .unwrap_or_default(),
                    reward: ret as f32,
                    correct: Some(o.record.solved_at.is_some()),
                    finished: o.completions.last().is_none_or(|c| c.finished),
                    logprobs: Vec::new(),
                });
            }
            groups.push(group);
        }
        Ok(groups)
    }
}
