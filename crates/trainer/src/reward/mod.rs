//! Several reward functions, as TRL's `reward_funcs`: each scores every completion (or gives
//! no score), the scores are weighted and combined by rlft-core's [`RewardTable`], and each
//! function's mean is reported per step as `reward/<name>`. A function is a verifier, a
//! JSON-over-HTTP service ([`HttpReward`]) or a JSON-lines subprocess ([`CommandReward`]).

mod command;
mod http;

pub use command::{CommandReward, CommandRewardConfig};
pub use http::{HttpReward, HttpRewardConfig};

use std::collections::BTreeMap;
use std::sync::Mutex;

use rlft_core::{GroupIndex, PromptGroup, RewardAggregation, RewardTable};
use rlft_tasks::{TaskItem, Verifier, VerifierConfig};
use serde::{Deserialize, Serialize};

use crate::collect::Rewarder;
use crate::error::{Result, TrainerError};

/// One completion to score, with its task item.
#[derive(Debug, Clone, Copy)]
pub struct RewardRequest<'a> {
    /// The task item of the prompt (prompt text, gold answer, other fields).
    pub item: &'a TaskItem,
    /// The completion's text.
    pub completion: &'a str,
}

/// What a remote reward function receives per completion: `{prompt, completion, answer,
/// meta}`, `meta` holding the item's id and every other field of its source row.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WireItem<'a> {
    prompt: &'a str,
    completion: &'a str,
    answer: &'a str,
    meta: serde_json::Value,
}

impl<'a> From<&RewardRequest<'a>> for WireItem<'a> {
    fn from(r: &RewardRequest<'a>) -> Self {
        let mut meta = r.item.meta.clone();
        meta.insert("id".into(), serde_json::Value::String(r.item.id.clone()));
        Self {
            prompt: &r.item.prompt,
            completion: r.completion,
            answer: &r.item.answer,
            meta: serde_json::Value::Object(meta),
        }
    }
}

/// The body sent to a remote reward function (one batch).
#[derive(Debug, Serialize)]
pub(crate) struct WireRequest<'a> {
    pub items: Vec<WireItem<'a>>,
}

/// What a remote reward function answers: one score per item, `null` for no score.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireReply {
    pub scores: Vec<Option<f64>>,
}

/// Checks a reply's length and values; NaN for `null`.
/// The checks shared by the remote reward kinds: a batch of at least one item and a finite,
/// positive timeout.
pub(crate) fn check_batch_and_timeout(batch_size: usize, timeout_s: f64) -> Result<()> {
    if batch_size == 0 {
        return Err(TrainerError::Config {
            field: "reward.batch_size",
            reason: "must be ≥ 1, got 0".into(),
        });
    }
    if !(timeout_s.is_finite() && timeout_s > 0.0) {
        return Err(TrainerError::Config {
            field: "reward.timeout_s",
            reason: format!("must be finite and > 0, got {timeout_s}"),
        });
    }
    Ok(())
}

pub(crate) fn check_reply(name: &str, reply: WireReply, expected: usize) -> Result<Vec<f32>> {
    if reply.scores.len() != expected {
        return Err(TrainerError::Reward {
            name: name.to_string(),
            reason: format!("expected {expected} scores, got {}", reply.scores.len()),
        });
    }
    reply
        .scores
        .into_iter()
        .enumerate()
        .map(|(i, s)| match s {
            None => Ok(f32::NAN),
            Some(v) if v.is_finite() => Ok(v as f32),
            Some(v) => Err(TrainerError::Reward {
                name: name.to_string(),
                reason: format!("score {i} is not finite: {v}"),
            }),
        })
        .collect()
}

/// A reward function: a score for each completion of a batch, NaN for "no score" (TRL: the
/// function returned `None`).
pub trait RewardFunction {
    /// One score per request, in order.
    ///
    /// # Errors
    /// Whatever stops the function from answering (a dead subprocess, an unreachable server,
    /// a malformed reply).
    fn score_batch(&self, batch: &[RewardRequest<'_>]) -> Result<Vec<f32>>;
}

/// A [`Verifier`] as a reward function: its score for each completion.
#[derive(Debug)]
pub struct VerifierFunction<V>(pub V);

impl<V: Verifier> RewardFunction for VerifierFunction<V> {
    fn score_batch(&self, batch: &[RewardRequest<'_>]) -> Result<Vec<f32>> {
        batch
            .iter()
            .map(|r| Ok(self.0.verify(r.item, r.completion)?.score as f32))
            .collect()
    }
}

fn one() -> f32 {
    1.0
}

/// Where a `[[reward]]` entry's scores come from: `kind` is a verifier kind (`math`,
/// `countdown`, `exact_match`, …, with that verifier's keys), `http` or `command`.
#[derive(Debug, Clone, PartialEq)]
pub enum RewardKind {
    /// `kind = "http"`: [`HttpRewardConfig`].
    Http(HttpRewardConfig),
    /// `kind = "command"`: [`CommandRewardConfig`].
    Command(CommandRewardConfig),
    /// Any verifier kind.
    Verifier(VerifierConfig),
}

/// One `[[reward]]` entry of `rlft train`:
///
/// ```toml
/// [[reward]]
/// kind = "math"           # a verifier kind, or "http" / "command"
/// weight = 1.0            # TRL reward_weights; default 1.0
/// name = "accuracy"       # metrics key reward/<name>; default the kind
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RewardConfig {
    /// Name in the metrics (`reward/<name>`). Default: the kind, suffixed with the entry's
    /// position when two entries would share it.
    pub name: Option<String>,
    /// Weight in the sum. Default 1.0 (TRL `reward_weights`).
    pub weight: f32,
    /// Where the scores come from.
    pub kind: RewardKind,
}

impl Serialize for RewardConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let (kind, body) = match &self.kind {
            RewardKind::Http(c) => (Some("http"), serde_json::to_value(c)),
            RewardKind::Command(c) => (Some("command"), serde_json::to_value(c)),
            RewardKind::Verifier(v) => (None, serde_json::to_value(v)),
        };
        let mut map = match body.map_err(S::Error::custom)? {
            serde_json::Value::Object(m) => m,
            other => {
                return Err(S::Error::custom(format!(
                    "reward entry is not a table: {other}"
                )));
            }
        };
        if let Some(k) = kind {
            map.insert("kind".into(), k.into());
        }
        if let Some(n) = &self.name {
            map.insert("name".into(), n.clone().into());
        }
        map.insert("weight".into(), (self.weight as f64).into());
        map.serialize(s)
    }
}

impl<'de> Deserialize<'de> for RewardConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error;
        let mut map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let name = match map.remove("name") {
            None => None,
            Some(serde_json::Value::String(s)) => Some(s),
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "reward.name must be a string, got {other}"
                )));
            }
        };
        let weight = match map.remove("weight") {
            None => one(),
            Some(v) => v.as_f64().ok_or_else(|| {
                D::Error::custom(format!("reward.weight must be a number, got {v}"))
            })? as f32,
        };
        let kind_name = map
            .get("kind")
            .and_then(|k| k.as_str())
            .ok_or_else(|| {
                D::Error::custom(
                    "reward.kind is missing (a verifier kind, \"http\" or \"command\")",
                )
            })?
            .to_string();
        let err =
            |e: serde_json::Error| D::Error::custom(format!("reward (kind {kind_name:?}): {e}"));
        let remote = |mut map: serde_json::Map<String, serde_json::Value>| {
            map.remove("kind");
            serde_json::Value::Object(map)
        };
        let kind = match kind_name.as_str() {
            "http" => RewardKind::Http(serde_json::from_value(remote(map)).map_err(err)?),
            "command" => RewardKind::Command(serde_json::from_value(remote(map)).map_err(err)?),
            _ => RewardKind::Verifier(
                serde_json::from_value(serde_json::Value::Object(map)).map_err(err)?,
            ),
        };
        Ok(Self { name, weight, kind })
    }
}

impl RewardConfig {
    /// The entry's kind as written in the config.
    pub fn kind_name(&self) -> String {
        match &self.kind {
            RewardKind::Http(_) => "http".into(),
            RewardKind::Command(_) => "command".into(),
            RewardKind::Verifier(v) => serde_json::to_value(v)
                .ok()
                .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string))
                .unwrap_or_else(|| "verifier".into()),
        }
    }

    /// Builds the function.
    ///
    /// # Errors
    /// [`TrainerError::Config`] for a bad setting; verifier build errors.
    pub fn build(&self) -> Result<Box<dyn RewardFunction + Send + Sync>> {
        if !self.weight.is_finite() {
            return Err(TrainerError::Config {
                field: "reward.weight",
                reason: format!("must be finite, got {}", self.weight),
            });
        }
        Ok(match &self.kind {
            RewardKind::Http(c) => Box::new(HttpReward::new(c.clone())?),
            RewardKind::Command(c) => Box::new(CommandReward::new(c.clone())?),
            RewardKind::Verifier(v) => Box::new(VerifierFunction(v.build()?)),
        })
    }
}

/// The metric names of `entries`: `name`, or else the kind, suffixed `_<i>` (the entry's
/// position) when several entries would get the same kind name.
///
/// # Errors
/// [`TrainerError::Config`] for an empty name or two entries with the same final name.
pub fn reward_names(entries: &[RewardConfig]) -> Result<Vec<String>> {
    let bases: Vec<String> = entries
        .iter()
        .map(|e| e.name.clone().unwrap_or_else(|| e.kind_name()))
        .collect();
    let mut names = Vec::with_capacity(entries.len());
    for (i, (e, base)) in entries.iter().zip(&bases).enumerate() {
        if base.trim().is_empty() {
            return Err(TrainerError::Config {
                field: "reward.name",
                reason: format!("entry {i} has an empty name"),
            });
        }
        let shared = bases.iter().filter(|b| *b == base).count() > 1;
        names.push(if shared && e.name.is_none() {
            format!("{base}_{i}")
        } else {
            base.clone()
        });
    }
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(TrainerError::Config {
                field: "reward.name",
                reason: format!("two entries are named {n:?}; give each a distinct name"),
            });
        }
    }
    Ok(names)
}

/// A named, weighted reward function.
pub struct NamedReward {
    /// Metrics key: `reward/<name>`.
    pub name: String,
    /// Weight in the sum.
    pub weight: f32,
    /// The function.
    pub function: Box<dyn RewardFunction + Send + Sync>,
}

impl std::fmt::Debug for NamedReward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedReward")
            .field("name", &self.name)
            .field("weight", &self.weight)
            .finish_non_exhaustive()
    }
}

/// A [`Rewarder`] over several reward functions: each completion's reward is
/// [`RewardTable::combine`] of the functions' scores (weighted sum, or GDPO's
/// `normalize_then_sum` within each prompt group), and its `correct` verdict comes from a
/// separate verifier (what samplers observe and `accuracy` counts). Each function's mean over
/// the completions it scored since the last [`Rewarder::take_metrics`] is reported as
/// `reward/<name>` (TRL's `rewards/<name>/mean`); NaN (missing) when it scored none.
///
/// ```
/// use rlft_core::RewardAggregation;
/// use rlft_tasks::{ExactMatch, TaskItem};
/// use rlft_trainer::{NamedReward, Rewarder, RewardFunctions, VerifierFunction};
///
/// let items = vec![TaskItem::new("a", "1+1=", "2")];
/// let funcs = vec![NamedReward {
///     name: "exact".into(),
///     weight: 2.0,
///     function: Box::new(VerifierFunction(ExactMatch::default())),
/// }];
/// let verdict = ExactMatch::default();
/// let r = RewardFunctions::new(funcs, RewardAggregation::SumThenNormalize, &verdict, items);
/// assert_eq!(r.score(0, "<answer>2</answer>")?, (2.0, true));
/// assert_eq!(r.take_metrics(), vec![("reward/exact".to_string(), 1.0)]);
/// # Ok::<(), rlft_trainer::TrainerError>(())
/// ```
pub struct RewardFunctions<'a> {
    funcs: Vec<NamedReward>,
    aggregation: RewardAggregation,
    verdict: &'a dyn Verifier,
    items: Vec<TaskItem>,
    sums: Mutex<BTreeMap<usize, (f64, usize)>>,
}

impl std::fmt::Debug for RewardFunctions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RewardFunctions")
            .field("funcs", &self.funcs)
            .field("aggregation", &self.aggregation)
            .field("items", &self.items.len())
            .finish_non_exhaustive()
    }
}

impl<'a> RewardFunctions<'a> {
    /// `funcs` combined by `aggregation`; `verdict` decides `correct`; prompt `i` is
    /// `items[i]`.
    pub fn new(
        funcs: Vec<NamedReward>,
        aggregation: RewardAggregation,
        verdict: &'a dyn Verifier,
        items: Vec<TaskItem>,
    ) -> Self {
        Self {
            funcs,
            aggregation,
            verdict,
            items,
            sums: Mutex::new(BTreeMap::new()),
        }
    }

    fn item(&self, prompt_index: usize) -> Result<&TaskItem> {
        self.items.get(prompt_index).ok_or_else(|| {
            TrainerError::InvalidBatch(format!(
                "prompt index {prompt_index} out of range for {} task items",
                self.items.len()
            ))
        })
    }

    /// Each function's scores of `requests`, row-major `[N, F]`, and the running sums.
    fn table(&self, requests: &[RewardRequest<'_>]) -> Result<RewardTable> {
        let n = requests.len();
        let f = self.funcs.len();
        let mut values = vec![f32::NAN; n * f];
        for (j, func) in self.funcs.iter().enumerate() {
            let scores = func.function.score_batch(requests)?;
            if scores.len() != n {
                return Err(TrainerError::Reward {
                    name: func.name.clone(),
                    reason: format!("returned {} scores for {n} completions", scores.len()),
                });
            }
            for (i, s) in scores.into_iter().enumerate() {
                if s.is_infinite() {
                    return Err(TrainerError::Reward {
                        name: func.name.clone(),
                        reason: format!("score {i} is infinite"),
                    });
                }
                values[i * f + j] = s;
            }
        }
        let table = RewardTable::new(values, f)?;
        let mut sums = self.sums.lock().unwrap_or_else(|e| e.into_inner());
        for i in 0..n {
            for (j, &v) in table.row(i).iter().enumerate() {
                if !v.is_nan() {
                    let e = sums.entry(j).or_insert((0.0, 0));
                    e.0 += v as f64;
                    e.1 += 1;
                }
            }
        }
        Ok(table)
    }

    fn weights(&self) -> Vec<f32> {
        self.funcs.iter().map(|f| f.weight).collect()
    }
}

impl Rewarder for RewardFunctions<'_> {
    /// One completion alone: the weighted sum of the scores (a group z-score needs the group,
    /// so `normalize_then_sum` applies in [`score_groups`](Rewarder::score_groups) only).
    fn score(&self, prompt_index: usize, text: &str) -> Result<(f32, bool)> {
        let item = self.item(prompt_index)?;
        let req = [RewardRequest {
            item,
            completion: text,
        }];
        let table = self.table(&req)?;
        let reward = table.weighted_sum(&self.weights())?[0];
        Ok((reward, self.verdict.verify(item, text)?.correct))
    }

    fn score_groups(&self, groups: &mut [PromptGroup]) -> Result<()> {
        if groups.iter().all(|g| g.completions.is_empty()) {
            return Ok(());
        }
        let mut requests = Vec::new();
        for g in groups.iter() {
            let item = self.item(g.prompt_index)?;
            for c in &g.completions {
                requests.push(RewardRequest {
                    item,
                    completion: &c.text,
                });
            }
        }
        let table = self.table(&requests)?;
        let sizes: Vec<usize> = groups.iter().map(|g| g.completions.len()).collect();
        let rewards = table.combine(
            &self.weights(),
            self.aggregation,
            &GroupIndex::from_sizes(&sizes),
        )?;
        let mut verdicts = Vec::with_capacity(requests.len());
        for r in &requests {
            verdicts.push(self.verdict.verify(r.item, r.completion)?.correct);
        }
        let completions = groups.iter_mut().flat_map(|g| g.completions.iter_mut());
        for ((c, reward), correct) in completions.zip(rewards).zip(verdicts) {
            c.reward = reward;
            c.correct = Some(correct);
        }
        Ok(())
    }

    fn take_metrics(&self) -> Vec<(String, f64)> {
        let mut sums = self.sums.lock().unwrap_or_else(|e| e.into_inner());
        let out = self
            .funcs
            .iter()
            .enumerate()
            .map(|(j, f)| {
                let mean = match sums.get(&j) {
                    Some(&(s, n)) if n > 0 => s / n as f64,
                    _ => f64::NAN,
                };
                (format!("reward/{}", f.name), mean)
            })
            .collect();
        sums.clear();
        out
    }
}
