//! [`LocalEngine`]: batched generation with the KV cache on an rlft-models causal LM.

use burn::tensor::{DType, Int, Tensor, TensorData};
use rlft_core::Completion;
use rlft_models::{CausalLm, ChatMessage, ChatTemplateOptions, ChatTokenizer, KvCache};
use serde::{Deserialize, Serialize};

use crate::decode::{NoHooks, Row, RowHooks, RowRules};
use crate::engine::{
    GenerationObserver, GenerationRequest, RolloutEngine, SeedSource, TokenEvent, prompt_ids,
};
use crate::error::{Result, RolloutError};
use crate::params::SamplingParams;
use crate::prompt::{Message, Prompt};
use crate::sampling::TokenSampler;
use crate::seed::{prompt_seed, stream_rng};
use crate::stop::StopCriteria;
use crate::tokenizer::Tokenizer;

/// Settings of [`LocalEngine`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalConfig {
    /// Seed of requests that carry none (mixed with a call counter). Default 0.
    pub seed: u64,
    /// Most rows (prompts × n) decoded together in one batch; more are split into batches.
    /// Default 256.
    pub max_batch_rows: usize,
    /// Rebuild the batch without its finished rows once the unfinished ones are at most this
    /// fraction of it (one prefill of the survivors replaces a decode step). Default 0.5.
    pub compact_below: f32,
    /// Model id reported by a server. Default `"rlft-local"`.
    pub model_id: String,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            max_batch_rows: 256,
            compact_below: 0.5,
            model_id: "rlft-local".into(),
        }
    }
}

impl LocalConfig {
    /// Checks every field, so that a config can be checked before an engine is built (a dry
    /// run).
    ///
    /// # Errors
    /// [`RolloutError::InvalidParam`] for `max_batch_rows` 0 or `compact_below` outside [0, 1].
    pub fn validate(&self) -> Result<()> {
        if self.max_batch_rows == 0 {
            return Err(RolloutError::InvalidParam {
                field: "max_batch_rows",
                reason: "must be at least 1, got 0".into(),
            });
        }
        if !(0.0..=1.0).contains(&self.compact_below) {
            return Err(RolloutError::InvalidParam {
                field: "compact_below",
                reason: format!("must be in [0, 1], got {}", self.compact_below),
            });
        }
        Ok(())
    }
}

/// [`ChatTokenizer`] seen as this crate's [`Tokenizer`]: decoding skips special tokens, chat
/// templates render with a generation prompt.
#[derive(Debug)]
pub struct ModelTokenizer(pub ChatTokenizer);

fn tok_err(e: rlft_models::ModelError) -> RolloutError {
    RolloutError::Tokenizer {
        reason: e.to_string(),
    }
}

impl Tokenizer for ModelTokenizer {
    fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        self.0.encode(text, add_special_tokens).map_err(tok_err)
    }

    fn decode(&self, ids: &[u32]) -> Result<String> {
        self.0.decode(ids, true).map_err(tok_err)
    }

    fn token_text(&self, id: u32) -> Option<String> {
        self.0.decode(&[id], false).ok()
    }

    fn apply_chat_template(&self, messages: &[Message]) -> Result<String> {
        let messages: Vec<ChatMessage> = messages
            .iter()
            .map(|m| ChatMessage::new(&m.role, &m.content))
            .collect();
        let options = ChatTemplateOptions {
            add_generation_prompt: true,
            ..Default::default()
        };
        self.0
            .apply_chat_template(&messages, &options)
            .map_err(tok_err)
    }
}

/// Rollouts from a [`CausalLm`] on its own device.
///
/// All rows (prompts × n) of a request are left-padded into batches of at most
/// `max_batch_rows`; each batch is prefilled once and decoded one token per step with the
/// [`KvCache`]. Logits of the last position come to the host, where each row draws from its
/// own seeded stream ([`TokenSampler`]). A finished row stops sampling and decoding at once; when
/// the unfinished rows drop to `compact_below` of the batch, the batch is rebuilt from them
/// alone (a prefill of their full sequences into a fresh cache), so finished rows stop costing
/// model compute too. The batch ends when every row is finished.
///
/// EOS ids are the model config's `eos_token_ids` plus the tokenizer's `eos_token`; the pad
/// id is the config's `pad_token_id`, else the first EOS id, else 0 (padded positions are
/// masked). Log-probs follow [`SamplingParams::logprob_mode`]; the default equals
/// `CausalLm::token_log_probs(.., temperature)` of the same tokens.
#[derive(Debug)]
pub struct LocalEngine {
    model: CausalLm,
    tokenizer: Option<ModelTokenizer>,
    eos: Vec<u32>,
    pad: u32,
    seeds: SeedSource,
    config: LocalConfig,
}

impl LocalEngine {
    /// An engine over `model`, with an optional tokenizer (needed for text and chat prompts,
    /// stop strings and completion text).
    ///
    /// # Errors
    /// [`RolloutError::InvalidParam`] for `max_batch_rows` 0 or `compact_below` outside [0, 1].
    pub fn new(
        model: CausalLm,
        tokenizer: Option<ChatTokenizer>,
        config: LocalConfig,
    ) -> Result<Self> {
        config.validate()?;
        let mut eos = model.config().eos_token_ids.clone();
        if let Some(id) = tokenizer.as_ref().and_then(|t| t.eos_token_id())
            && !eos.contains(&id)
        {
            eos.push(id);
        }
        let pad = model
            .config()
            .pad_token_id
            .or_else(|| eos.first().copied())
            .unwrap_or(0);
        Ok(Self {
            model,
            tokenizer: tokenizer.map(ModelTokenizer),
            eos,
            pad,
            seeds: SeedSource::new(config.seed),
            config,
        })
    }

    /// The model.
    pub fn model(&self) -> &CausalLm {
        &self.model
    }

    /// The end-of-sequence ids in use.
    pub fn eos_token_ids(&self) -> &[u32] {
        &self.eos
    }

    /// Decode one batch of rows (`prompts[r]` is row r's prompt, `rules[r]` its request's
    /// rules; every `max_new_tokens` ≥ 1) to completion, asking `hooks` before each step
    /// whether a row was cancelled and telling it after each sampled token.
    fn run_batch(
        &self,
        prompts: &[&[u32]],
        rows: &mut [Row],
        rules: &[&RowRules<'_>],
        hooks: &mut dyn RowHooks,
    ) -> Result<()> {
        let vocab = self.model.config().vocab_size;
        // `live[k]` is the row index of batch position k.
        let mut live: Vec<usize> = (0..rows.len()).collect();
        let (mut cache, mut mask, mut logits) = self.prefill(prompts, rows, &live)?;
        loop {
            for &r in &live {
                if !rows[r].is_done() && hooks.cancelled(r) {
                    rows[r].cancel();
                    hooks.after_step(r, &rows[r], true)?;
                }
            }
            let mut step = Vec::with_capacity(live.len());
            for (k, &r) in live.iter().enumerate() {
                let token = if rows[r].is_done() {
                    self.pad
                } else {
                    let token = rows[r].step(&logits[k * vocab..(k + 1) * vocab], rules[r])?;
                    hooks.after_step(r, &rows[r], false)?;
                    token
                };
                step.push(i64::from(token));
            }
            let active = live.iter().filter(|&&r| !rows[r].is_done()).count();
            if active == 0 {
                return Ok(());
            }
            if (active as f32) <= self.config.compact_below * live.len() as f32
                && active < live.len()
            {
                live.retain(|&r| !rows[r].is_done());
                (cache, mask, logits) = self.prefill(prompts, rows, &live)?;
                continue;
            }
            for m in &mut mask {
                m.push(1);
            }
            let device = self.model.device();
            let input =
                Tensor::<2, Int>::from_data(TensorData::new(step, [live.len(), 1]), &device);
            let out = self
                .model
                .forward_cached(input, int_tensor(&mask, &device), &mut cache);
            logits = host_logits(out, 0)?;
        }
    }

    /// Prefill rows `live` (prompt + tokens generated so far), left-padded; returns the cache,
    /// the mask rows and the last position's logits `[live.len() × vocab]`.
    fn prefill(
        &self,
        prompts: &[&[u32]],
        rows: &[Row],
        live: &[usize],
    ) -> Result<(KvCache, Vec<Vec<i64>>, Vec<f32>)> {
        let seqs: Vec<Vec<u32>> = live
            .iter()
            .map(|&r| prompts[r].iter().chain(rows[r].tokens()).copied().collect())
            .collect();
        let width = seqs.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(seqs.len());
        let mut mask = Vec::with_capacity(seqs.len());
        for s in &seqs {
            let pad = width - s.len();
            ids.push(
                std::iter::repeat_n(i64::from(self.pad), pad)
                    .chain(s.iter().map(|&t| i64::from(t)))
                    .collect::<Vec<_>>(),
            );
            mask.push(
                std::iter::repeat_n(0i64, pad)
                    .chain(std::iter::repeat_n(1, s.len()))
                    .collect::<Vec<_>>(),
            );
        }
        let device = self.model.device();
        let mut cache = KvCache::new();
        let out = self.model.forward_cached(
            int_tensor(&ids, &device),
            int_tensor(&mask, &device),
            &mut cache,
        );
        let logits = host_logits(out, width - 1)?;
        Ok((cache, mask, logits))
    }
}

/// Logits at sequence position `pos` of `[batch, seq, vocab]`, on the host as f32.
fn host_logits(logits: Tensor<3>, pos: usize) -> Result<Vec<f32>> {
    let [batch, _, vocab] = logits.dims();
    let last = logits
        .narrow(1, pos, 1)
        .reshape([batch, vocab])
        .cast(DType::F32);
    last.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| RolloutError::Model {
            reason: format!("cannot read logits back: {e:?}"),
        })
}

fn int_tensor(rows: &[Vec<i64>], device: &burn::tensor::Device) -> Tensor<2, Int> {
    let batch = rows.len();
    let seq = rows.first().map_or(0, Vec::len);
    let flat: Vec<i64> = rows.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [batch, seq]), device)
}

impl RolloutEngine for LocalEngine {
    fn generate(
        &self,
        prompts: &[Prompt],
        params: &SamplingParams,
    ) -> Result<Vec<Vec<Completion>>> {
        let sampler = TokenSampler::new(params)?;
        let stops = StopCriteria::new(params, &self.eos);
        let tokenizer = self.tokenizer.as_ref().map(|t| t as &dyn Tokenizer);
        let rules = RowRules::new(&sampler, &stops, tokenizer, params.max_new_tokens)?;
        let ids = prompt_ids(prompts, tokenizer)?;
        let vocab = self.model.config().vocab_size;
        for (index, p) in ids.iter().enumerate() {
            if let Some(bad) = p.iter().find(|&&t| t as usize >= vocab) {
                return Err(RolloutError::InvalidPrompt {
                    index,
                    reason: format!("token id {bad} is outside the vocabulary ({vocab})"),
                });
            }
        }
        let seed = self.seeds.resolve(params);
        let mut row_prompts: Vec<&[u32]> = Vec::new();
        let mut rows: Vec<Row> = Vec::new();
        for (i, p) in ids.iter().enumerate() {
            for j in 0..params.n {
                row_prompts.push(p);
                rows.push(Row::new(stream_rng(prompt_seed(seed, i), j)));
            }
        }
        let chunk = self.config.max_batch_rows;
        if params.max_new_tokens > 0 {
            let row_rules = vec![&rules; rows.len()];
            for ((prompts, rows), rules) in row_prompts
                .chunks(chunk)
                .zip(rows.chunks_mut(chunk))
                .zip(row_rules.chunks(chunk))
            {
                self.run_batch(prompts, rows, rules, &mut NoHooks)?;
            }
        }
        let mut out = Vec::with_capacity(ids.len());
        let mut rows = rows.into_iter();
        for _ in 0..ids.len() {
            out.push(
                rows.by_ref()
                    .take(params.n)
                    .map(|r| r.into_completion(&rules))
                    .collect::<Result<Vec<_>>>()?,
            );
        }
        Ok(out)
    }

    fn model_id(&self) -> &str {
        &self.config.model_id
    }

    fn token_text(&self, id: u32) -> Option<String> {
        self.tokenizer.as_ref()?.token_text(id)
    }

    fn tokenizer(&self) -> Option<&dyn Tokenizer> {
        self.tokenizer.as_ref().map(|t| t as &dyn Tokenizer)
    }

    fn context_len(&self) -> Option<usize> {
        Some(self.model.config().max_position_embeddings)
    }

    /// The rows of every request decode together, in batches of at most `max_batch_rows`
    /// (so concurrent requests cost one batched pass); a request whose prompt plus
    /// `max_new_tokens` exceeds the model's context is refused
    /// ([`RolloutError::InvalidPrompt`]) before anything runs.
    fn generate_many(&self, requests: &[GenerationRequest], observer: &mut dyn GenerationObserver) {
        let tokenizer = self.tokenizer.as_ref().map(|t| t as &dyn Tokenizer);
        let mut prepared = Vec::with_capacity(requests.len());
        for (i, r) in requests.iter().enumerate() {
            match self.prepare(r, tokenizer) {
                Ok(p) => prepared.push(Some(p)),
                Err(e) => {
                    observer.on_done(i, Err(e));
                    prepared.push(None);
                }
            }
        }
        let mut rules = Vec::with_capacity(requests.len());
        for (i, p) in prepared.iter().enumerate() {
            rules.push(p.as_ref().and_then(|p| {
                let max = requests[i].params.max_new_tokens;
                match RowRules::new(&p.sampler, &p.stops, tokenizer, max) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        observer.on_done(i, Err(e));
                        None
                    }
                }
            }));
        }
        let mut batch = ManyRows::default();
        for (i, (p, rl)) in prepared.iter().zip(&rules).enumerate() {
            let (Some(p), Some(rl)) = (p, rl) else {
                continue;
            };
            let n = requests[i].params.n;
            let fresh = |pi: usize, j: usize| Row::new(stream_rng(prompt_seed(p.seed, pi), j));
            if rl.max_new_tokens == 0 || p.ids.is_empty() || observer.is_cancelled(i) {
                let out = (0..p.ids.len())
                    .map(|pi| (0..n).map(|j| fresh(pi, j).into_completion(rl)).collect())
                    .collect();
                observer.on_done(i, out);
                continue;
            }
            for (pi, ids) in p.ids.iter().enumerate() {
                for j in 0..n {
                    batch.prompts.push(ids);
                    batch.rows.push(fresh(pi, j));
                    batch.meta.push((i, pi, j));
                    batch.rules.push(rl);
                }
            }
            batch
                .pending
                .insert(i, (p.ids.len() * n, vec![vec![None; n]; p.ids.len()]));
        }
        let ManyRows {
            prompts,
            mut rows,
            meta,
            rules: row_rules,
            mut pending,
        } = batch;
        let chunk = self.config.max_batch_rows;
        let mut offset = 0;
        for ((prompts, rows), rules) in prompts
            .chunks(chunk)
            .zip(rows.chunks_mut(chunk))
            .zip(row_rules.chunks(chunk))
        {
            let mut hooks = ManyHooks {
                offset,
                meta: &meta,
                rules: &row_rules,
                pending: &mut pending,
                observer: &mut *observer,
            };
            if let Err(e) = self.run_batch(prompts, rows, rules, &mut hooks) {
                let failed: Vec<usize> = meta[offset..offset + rows.len()]
                    .iter()
                    .map(|m| m.0)
                    .collect();
                for i in failed {
                    if pending.remove(&i).is_some() {
                        let reason = format!("batched generation failed: {e}");
                        observer.on_done(i, Err(RolloutError::Model { reason }));
                    }
                }
            }
            offset += rows.len();
        }
    }
}

/// What [`LocalEngine::generate_many`] needs of one request before decoding.
struct Prepared {
    sampler: TokenSampler,
    stops: StopCriteria,
    ids: Vec<Vec<u32>>,
    seed: u64,
}

impl LocalEngine {
    /// Check one request of a batch and resolve its prompts and seed.
    fn prepare(
        &self,
        r: &GenerationRequest,
        tokenizer: Option<&dyn Tokenizer>,
    ) -> Result<Prepared> {
        let params = &r.params;
        params.validate()?;
        let sampler = TokenSampler::new(params)?;
        let stops = StopCriteria::new(params, &self.eos);
        let ids = prompt_ids(&r.prompts, tokenizer)?;
        let vocab = self.model.config().vocab_size;
        let context = self.model.config().max_position_embeddings;
        for (index, p) in ids.iter().enumerate() {
            if let Some(bad) = p.iter().find(|&&t| t as usize >= vocab) {
                return Err(RolloutError::InvalidPrompt {
                    index,
                    reason: format!("token id {bad} is outside the vocabulary ({vocab})"),
                });
            }
            if p.len().saturating_add(params.max_new_tokens) > context {
                return Err(RolloutError::InvalidPrompt {
                    index,
                    reason: format!(
                        "{} prompt tokens + max_new_tokens {} exceed the model's context of {context} tokens",
                        p.len(),
                        params.max_new_tokens
                    ),
                });
            }
        }
        Ok(Prepared {
            sampler,
            stops,
            ids,
            seed: self.seeds.resolve(params),
        })
    }
}

/// The rows of a multi-request batch, flattened; `meta[r]` = (request, prompt, sample).
/// `pending[request]` = (rows left, finished completions by prompt and sample).
#[derive(Default)]
struct ManyRows<'a> {
    prompts: Vec<&'a [u32]>,
    rows: Vec<Row>,
    meta: Vec<(usize, usize, usize)>,
    rules: Vec<&'a RowRules<'a>>,
    pending: Pending,
}

type Pending = std::collections::BTreeMap<usize, (usize, Vec<Vec<Option<Completion>>>)>;

/// Reports a chunk's rows to the observer; rows are offset by the chunk's start.
struct ManyHooks<'a, 'r> {
    offset: usize,
    meta: &'a [(usize, usize, usize)],
    rules: &'a [&'a RowRules<'r>],
    pending: &'a mut Pending,
    observer: &'a mut dyn GenerationObserver,
}

impl RowHooks for ManyHooks<'_, '_> {
    fn cancelled(&self, r: usize) -> bool {
        self.observer.is_cancelled(self.meta[self.offset + r].0)
    }

    fn after_step(&mut self, r: usize, row: &Row, cancelled: bool) -> Result<()> {
        let g = self.offset + r;
        let (request, prompt, sample) = self.meta[g];
        if let (false, Some((token, logprob))) = (cancelled, row.last()) {
            self.observer.on_token(TokenEvent {
                request,
                prompt,
                sample,
                token,
                logprob,
                finished: row.is_done(),
            });
        }
        if !row.is_done() {
            return Ok(());
        }
        let completion = row.completion(self.rules[g])?;
        let Some((left, done)) = self.pending.get_mut(&request) else {
            return Ok(());
        };
        done[prompt][sample] = Some(completion);
        *left -= 1;
        if *left == 0
            && let Some((_, done)) = self.pending.remove(&request)
        {
            let groups = done
                .into_iter()
                .map(|g| g.into_iter().map(Option::unwrap_or_default).collect())
                .collect();
            self.observer.on_done(request, Ok(groups));
        }
        Ok(())
    }
}
