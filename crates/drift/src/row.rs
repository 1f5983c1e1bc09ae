//! One DRIFT trajectory as a JSONL row, in the shape the paper's code writes and reads.

use std::collections::BTreeSet;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use rlft_tasks::{EpisodeRecord, Message, Role};
use serde_json::{Map, Value};

use crate::error::{DriftError, Result, io};

/// One trajectory of DRIFT's released data (`generate_weighted_data_vllm_metamathqa.py`):
///
/// ```json
/// {"prompt_id": "sample_17", "gold": "12", "messages": [{"role": "system", "content": "…"}, …],
///  "turn_rewards": {"t1": 0.0, "t2": 1.0}, "t_star": 2, "answer_norms": ["10", "12"],
///  "format_penalty": 0.0}
/// ```
///
/// Only `prompt_id` and `messages` are required. The per-turn fields are kept as written
/// (`turn_rewards` as raw JSON), so the return is computed from the stored values exactly as
/// spec drift.md §2.2 and §7 say (see [`ReturnConfig`](crate::ReturnConfig)). Every other field
/// of the line (`verifier`, `reward_details`, a precomputed `weight`, …) is kept in `extra` and
/// written back unchanged; a stored `weight` is never used.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftRow {
    /// Groups the K trajectories of one prompt. A JSON number is read as its text.
    pub prompt_id: String,
    /// The gold answer, as text (absent: `None`).
    pub gold: Option<String>,
    /// The whole conversation: system, task, assistant attempts and feedback.
    pub messages: Vec<Message>,
    /// Per-turn rewards keyed `t<k>` (k from 1), as stored.
    pub turn_rewards: Map<String, Value>,
    /// The 1-based turn of the first correct answer, if any.
    pub t_star: Option<usize>,
    /// Normalised answers of the executed (valid) turns, in order; absent: empty.
    pub answer_norms: Vec<String>,
    /// Σ of per-turn format penalties (≤ 0 as written by DRIFT). Read from `format_penalty`,
    /// else `trajectory_penalty`; absent or not a number: 0.
    pub format_penalty: f64,
    /// All other fields, kept in order.
    pub extra: Map<String, Value>,
}

impl DriftRow {
    /// The row of a finished episode of [`rlft_tasks::TryAgain`] (or any environment that
    /// records turns): `turn_rewards` has a key for each of `t1..t<max_turns>` (0 for turns
    /// not taken, as the released data has), `verifier` the 0/1 correctness of each turn.
    pub fn from_episode(record: &EpisodeRecord, max_turns: usize) -> Self {
        let mut turn_rewards = Map::new();
        let mut verifier = Map::new();
        for t in 1..=max_turns.max(record.turns.len()) {
            let turn = record.turns.get(t - 1);
            turn_rewards.insert(format!("t{t}"), number(turn.map_or(0.0, |r| r.reward)));
            verifier.insert(
                format!("t{t}"),
                Value::from(u8::from(turn.is_some_and(|r| r.correct))),
            );
        }
        let mut extra = Map::new();
        extra.insert("verifier".into(), Value::Object(verifier));
        Self {
            prompt_id: record.item.id.clone(),
            gold: Some(record.item.answer.clone()),
            messages: record.messages.clone(),
            turn_rewards,
            t_star: record.solved_at,
            answer_norms: record
                .answer_norms()
                .into_iter()
                .map(String::from)
                .collect(),
            format_penalty: record.format_penalty(),
            extra,
        }
    }

    /// Parses one JSONL line. `path` and `line` (1-based) only label errors.
    ///
    /// # Errors
    /// [`DriftError::Row`] naming the field: a line that is not a JSON object, a missing or
    /// non-string/number `prompt_id`, missing `messages`, a message without a known `role`
    /// (`system`, `user`, `assistant`) or a string `content`, `answer_norms` or
    /// `turn_rewards` of the wrong type.
    pub fn parse(text: &str, path: &Path, line: usize) -> Result<Self> {
        let err = |field: &str, reason: String| DriftError::Row {
            path: path.to_path_buf(),
            line,
            field: field.to_string(),
            reason,
        };
        let value: Value =
            serde_json::from_str(text).map_err(|e| err("<line>", format!("not JSON: {e}")))?;
        let Value::Object(mut obj) = value else {
            return Err(err("<line>", "not a JSON object".into()));
        };
        let prompt_id = match obj.remove("prompt_id") {
            Some(Value::String(s)) => s,
            Some(Value::Number(n)) => n.to_string(),
            Some(v) => return Err(err("prompt_id", format!("must be a string, got {v}"))),
            None => return Err(err("prompt_id", "missing".into())),
        };
        let gold = match obj.remove("gold") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(v) => Some(v.to_string()),
        };
        let messages = match obj.remove("messages") {
            Some(Value::Array(list)) => list
                .into_iter()
                .enumerate()
                .map(|(i, m)| {
                    parse_message(m).map_err(|(f, r)| err(&format!("messages[{i}].{f}"), r))
                })
                .collect::<Result<Vec<_>>>()?,
            Some(v) => return Err(err("messages", format!("must be a list, got {v}"))),
            None => return Err(err("messages", "missing".into())),
        };
        let turn_rewards = match obj.remove("turn_rewards") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(v) => return Err(err("turn_rewards", format!("must be an object, got {v}"))),
        };
        let t_star = match obj.remove("t_star") {
            Some(Value::Number(n)) => n.as_u64().filter(|&t| t >= 1).map(|t| t as usize),
            _ => None,
        };
        let answer_norms = match obj.remove("answer_norms") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => list
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect(),
            Some(v) => return Err(err("answer_norms", format!("must be a list, got {v}"))),
        };
        let format_penalty = obj
            .get("format_penalty")
            .or_else(|| obj.get("trajectory_penalty"))
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        obj.remove("format_penalty");
        Ok(Self {
            prompt_id,
            gold,
            messages,
            turn_rewards,
            t_star,
            answer_norms,
            format_penalty,
            extra: obj,
        })
    }

    /// The row as a JSON object in the released shape (the fields above, then `extra`).
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("prompt_id".into(), Value::from(self.prompt_id.clone()));
        obj.insert(
            "gold".into(),
            self.gold.clone().map_or(Value::Null, Value::from),
        );
        obj.insert(
            "messages".into(),
            Value::Array(
                self.messages
                    .iter()
                    .map(|m| {
                        let mut o = Map::new();
                        o.insert("role".into(), Value::from(m.role.as_str()));
                        o.insert("content".into(), Value::from(m.content.clone()));
                        Value::Object(o)
                    })
                    .collect(),
            ),
        );
        obj.insert(
            "turn_rewards".into(),
            Value::Object(self.turn_rewards.clone()),
        );
        obj.insert(
            "t_star".into(),
            self.t_star.map_or(Value::Null, Value::from),
        );
        obj.insert(
            "answer_norms".into(),
            Value::Array(self.answer_norms.iter().cloned().map(Value::from).collect()),
        );
        obj.insert("format_penalty".into(), number(self.format_penalty));
        for (k, v) in &self.extra {
            obj.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(obj)
    }

    /// Whether the row can be trained on: it has an assistant message and the last one is
    /// not empty (spec §7 item 4).
    pub fn trainable(&self) -> bool {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == Role::Assistant)
            .is_some_and(|m| !m.content.trim().is_empty())
    }
}

fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

fn parse_message(m: Value) -> std::result::Result<Message, (&'static str, String)> {
    let Value::Object(o) = m else {
        return Err(("role", format!("a message must be an object, got {m}")));
    };
    let role = match o.get("role").and_then(Value::as_str) {
        Some("system") => Role::System,
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        Some(r) => {
            return Err((
                "role",
                format!("must be system, user or assistant, got {r:?}"),
            ));
        }
        None => return Err(("role", "missing or not a string".into())),
    };
    let content = match o.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) => String::new(),
        _ => return Err(("content", "missing or not a string".into())),
    };
    Ok(Message::new(role, content))
}

/// The JSONL files of `path`: the file itself, or a directory's `*.jsonl` files sorted by name
/// (collection shards), skipping hidden files (temporaries of atomic writes).
///
/// # Errors
/// [`DriftError::Io`] when the path cannot be listed.
pub fn jsonl_files(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io("list", path))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "jsonl")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.'))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Reads every row of a JSONL file, or of every `*.jsonl` file of a directory (in name order).
/// Blank lines are skipped.
///
/// # Errors
/// [`DriftError::Io`] for unreadable files; [`DriftError::Row`] naming file, line and field.
pub fn read_rows(path: &Path) -> Result<Vec<DriftRow>> {
    let mut rows = Vec::new();
    for file in jsonl_files(path)? {
        let f = std::fs::File::open(&file).map_err(io("open", &file))?;
        for line in rlft_util::lines::Lines::new(BufReader::new(f)) {
            let (n, line) = line.map_err(|e| io("read", &file)(e.into()))?;
            if line.trim().is_empty() {
                continue;
            }
            rows.push(DriftRow::parse(&line, &file, n)?);
        }
    }
    Ok(rows)
}

/// Writes rows as JSONL, atomically.
///
/// # Errors
/// [`DriftError::Io`].
pub fn write_rows(path: &Path, rows: &[DriftRow]) -> Result<()> {
    rlft_util::fs::write_atomic_with(path, |w| {
        for r in rows {
            writeln!(w, "{}", r.to_json())?;
        }
        Ok(())
    })
    .map_err(io("write", path))
}

/// The distinct prompt ids of `rows`, sorted.
pub fn prompt_ids(rows: &[DriftRow]) -> BTreeSet<String> {
    rows.iter().map(|r| r.prompt_id.clone()).collect()
}
