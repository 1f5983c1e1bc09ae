//! Datasets (JSONL, and Parquet with the `parquet` feature) with configurable field names,
//! stable ids and hash-based splits.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::TaskError;
use crate::hash::{mix64, stable_hash};
use crate::item::TaskItem;

/// Which fields (JSONL keys, Parquet columns) hold the prompt, the answer and the id.
///
/// Each role lists accepted names, tried in order; the first present one is used, and the
/// others stay in [`TaskItem::meta`]. A dotted name such as `reward_model.ground_truth` reads
/// a nested field (a key that itself contains the dots is tried first).
///
/// The defaults read, without any mapping: rlft's own files; GSM8K, MATH and Countdown
/// JSONL; conversational JSONL (`prompt` or `messages` as a list of `{role, content}`
/// messages); the Hugging Face layouts TRL documents (`prompt` as a string or as messages,
/// the answer in `answer` or `solution`); and verl's Parquet layout (`prompt` as messages,
/// the answer in `reward_model.ground_truth`, with `data_source`, `ability` and
/// `extra_info` kept in `meta`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatasetConfig {
    /// Names for the prompt. Default `["prompt", "question", "problem", "messages"]`: rlft's
    /// own files, TRL's and verl's `prompt` column, GSM8K/Webscale-RL QA pairs, Hendrycks
    /// MATH, and conversational JSONL. A string is a text prompt; a list of `{role,
    /// content}` messages is a conversational prompt ([`TaskItem::messages`]).
    pub prompt_fields: Vec<String>,
    /// Names for the gold answer. Default `["answer", "solution", "target",
    /// "reward_model.ground_truth"]`: GSM8K and rlft, MATH and TRL's DeepMath-103K,
    /// Countdown-Tasks-3to4 (whose target is the answer), and verl's preprocessed Parquet.
    pub answer_fields: Vec<String>,
    /// Names for the id. Default `["id", "prompt_id"]` (rlft; DRIFT's `prompt_id`). When a
    /// row has none of them, its id is `h` followed by 16 hex digits of a stable hash of the
    /// prompt text (FNV-1a 64 then the SplitMix64 finaliser), or of the conversation's
    /// compact JSON for a conversational prompt, so ids survive reordering. verl's row index
    /// is `extra_info.index`.
    pub id_fields: Vec<String>,
    /// Builds the prompt for rows that have none of `prompt_fields`: each `{name}` is
    /// replaced by that field of the row (strings as they are, other values as compact
    /// JSON), e.g. `"Using the numbers {nums}, make {target}."` for Countdown-Tasks-3to4,
    /// whose lines hold only `nums` and `target`. A `{name}` naming an absent field is a
    /// [`TaskError::MissingField`]. Default none: such rows are an error.
    pub prompt_template: Option<String>,
}

impl Default for DatasetConfig {
    fn default() -> Self {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
        Self {
            prompt_fields: v(&["prompt", "question", "problem", "messages"]),
            answer_fields: v(&["answer", "solution", "target", "reward_model.ground_truth"]),
            id_fields: v(&["id", "prompt_id"]),
            prompt_template: None,
        }
    }
}

/// The id given to a prompt with no id field: `h` + 16 lowercase hex digits of a stable hash
/// of the prompt's UTF-8 bytes.
pub fn prompt_hash_id(prompt: &str) -> String {
    format!("h{:016x}", stable_hash(prompt.as_bytes()))
}

/// A deterministic train/test split.
///
/// An item goes to test iff `mix64(hash(id) ^ seed) / 2^64 < test_fraction`. The decision
/// depends only on the item's id and the seed, never on file order or on the other items, so
/// adding lines to a file never moves an existing item across the split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SplitConfig {
    /// Expected fraction of items in the test split, in `[0, 1]`. Default 0.05: DRIFT's
    /// held-out fraction (`weight_sft.py`, spec drift.md §3).
    pub test_fraction: f64,
    /// Seed mixed into the hash. Default 42: the seed of DRIFT's and DPS's scripts.
    pub seed: u64,
}

impl Default for SplitConfig {
    fn default() -> Self {
        Self {
            test_fraction: 0.05,
            seed: 42,
        }
    }
}

impl SplitConfig {
    /// Checks that `test_fraction` lies in `[0, 1]`.
    ///
    /// # Errors
    /// [`TaskError::Config`] naming `split.test_fraction`.
    pub fn validate(&self) -> Result<(), TaskError> {
        if !(0.0..=1.0).contains(&self.test_fraction) {
            return Err(TaskError::Config {
                field: "split.test_fraction".into(),
                reason: format!("must be in [0, 1], got {}", self.test_fraction),
            });
        }
        Ok(())
    }

    /// Whether the item with this id belongs to the test split.
    pub fn is_test(&self, id: &str) -> bool {
        let h = mix64(stable_hash(id.as_bytes()) ^ self.seed);
        // 53 high bits give a uniform f64 in [0, 1).
        let u = (h >> 11) as f64 / (1u64 << 53) as f64;
        u < self.test_fraction
    }
}

/// A list of task items with unique ids, in file order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    items: Vec<TaskItem>,
}

impl Dataset {
    /// A dataset from items.
    ///
    /// # Errors
    /// [`TaskError::DuplicateId`] (with path `<memory>` and 1-based positions as lines) if
    /// two items share an id.
    pub fn from_items(items: Vec<TaskItem>) -> Result<Self, TaskError> {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            if let Some(first) = seen.insert(item.id.as_str(), i + 1) {
                return Err(TaskError::DuplicateId {
                    path: PathBuf::from("<memory>"),
                    line: i + 1,
                    id: item.id.clone(),
                    first_line: first,
                });
            }
        }
        Ok(Self { items })
    }

    /// Loads a dataset file, choosing the reader by extension: `.parquet` is read as Parquet
    /// ([`Dataset::from_parquet`], which needs the `parquet` feature), anything else as
    /// JSONL.
    ///
    /// # Errors
    /// As [`Dataset::from_jsonl`] or [`Dataset::from_parquet`]; [`TaskError::Parquet`] for a
    /// `.parquet` file when the feature is off.
    pub fn from_path(path: impl AsRef<Path>, config: &DatasetConfig) -> Result<Self, TaskError> {
        let path = path.as_ref();
        if is_parquet(path) {
            Self::from_parquet(path, config)
        } else {
            Self::from_jsonl(path, config)
        }
    }

    /// Loads a Parquet file row group by row group through the `parquet` crate's row API:
    /// each row becomes a JSON object (structs → objects, lists → arrays, maps → objects,
    /// binary columns → UTF-8 text) and is read with the same field mapping as a JSONL line.
    ///
    /// # Errors
    /// [`TaskError::Io`] if the file cannot be opened; [`TaskError::Parquet`] if it is not
    /// readable Parquet (or the `parquet` feature is off); [`TaskError::ParquetRow`] naming
    /// the file, row group, row and column of the first unusable row (missing column, wrong
    /// type, malformed conversation, repeated id).
    pub fn from_parquet(path: impl AsRef<Path>, config: &DatasetConfig) -> Result<Self, TaskError> {
        let path = path.as_ref();
        let items = read_parquet(path, config)?;
        Ok(Self { items })
    }

    /// Loads a JSONL file. Blank lines are skipped; line numbers in errors are 1-based.
    ///
    /// # Errors
    /// [`TaskError::Io`] if the file cannot be read; [`TaskError::Json`],
    /// [`TaskError::NotAnObject`], [`TaskError::MissingField`], [`TaskError::FieldType`] or
    /// [`TaskError::DuplicateId`] naming the path and line of the first bad line.
    pub fn from_jsonl(path: impl AsRef<Path>, config: &DatasetConfig) -> Result<Self, TaskError> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|source| TaskError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_reader(std::io::BufReader::new(file), path, config)
    }

    /// Loads JSONL from any reader; `source` names it in errors.
    ///
    /// # Errors
    /// As [`Dataset::from_jsonl`].
    pub fn from_reader(
        reader: impl BufRead,
        source: impl AsRef<Path>,
        config: &DatasetConfig,
    ) -> Result<Self, TaskError> {
        let path = source.as_ref();
        let mut items = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        // Bounded lines (a file without newlines is an error naming the line, not an
        // unbounded read), a UTF-8 BOM skipped, invalid UTF-8 named by line.
        for line in rlft_util::lines::Lines::new(reader) {
            let (line_no, line) = line.map_err(|e| TaskError::Io {
                path: path.to_path_buf(),
                source: e.into(),
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let item = parse_line(&line, path, line_no, config)?;
            if let Some(&first_line) = seen.get(&item.id) {
                return Err(TaskError::DuplicateId {
                    path: path.to_path_buf(),
                    line: line_no,
                    id: item.id,
                    first_line,
                });
            }
            seen.insert(item.id.clone(), line_no);
            items.push(item);
        }
        Ok(Self { items })
    }

    /// Writes the items as JSONL with fields `id`, `prompt`, `answer` and the extras,
    /// atomically (see [`write_jsonl`](crate::write_jsonl)). [`DatasetConfig::default`]
    /// reads the file back unchanged.
    ///
    /// # Errors
    /// [`TaskError::Io`].
    pub fn write_jsonl(&self, path: impl AsRef<Path>) -> Result<(), TaskError> {
        crate::jsonl::write_jsonl(path, &self.items)
    }

    /// The items, in file order.
    pub fn items(&self) -> &[TaskItem] {
        &self.items
    }

    /// Consumes the dataset, returning its items.
    pub fn into_items(self) -> Vec<TaskItem> {
        self.items
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The item with this id, if any (linear scan).
    pub fn get(&self, id: &str) -> Option<&TaskItem> {
        self.items.iter().find(|it| it.id == id)
    }

    /// Splits into (train, test), keeping file order inside each part.
    ///
    /// # Errors
    /// [`TaskError::Config`] if the split config is invalid.
    pub fn split(&self, config: &SplitConfig) -> Result<Split, TaskError> {
        config.validate()?;
        let (test, train): (Vec<_>, Vec<_>) = self
            .items
            .iter()
            .cloned()
            .partition(|it| config.is_test(&it.id));
        Ok(Split {
            train: Dataset { items: train },
            test: Dataset { items: test },
        })
    }
}

/// Whether `path` names a Parquet file (extension `.parquet`, any case).
pub(crate) fn is_parquet(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

#[cfg(feature = "parquet")]
fn read_parquet(path: &Path, config: &DatasetConfig) -> Result<Vec<TaskItem>, TaskError> {
    crate::parquet_file::read_items(path, config)
}

#[cfg(not(feature = "parquet"))]
fn read_parquet(path: &Path, _config: &DatasetConfig) -> Result<Vec<TaskItem>, TaskError> {
    Err(TaskError::Parquet {
        path: path.to_path_buf(),
        reason: "this build of rlft-tasks has no Parquet support (enable its `parquet` feature)"
            .into(),
        source: None,
    })
}

/// The two parts of a split.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Items used for training.
    pub train: Dataset,
    /// Held-out items.
    pub test: Dataset,
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Replaces each `{name}` in `template` by the field `name` of `row`; `Err(name)` if absent.
/// A `{` with no closing `}` is kept as text.
fn render_template(template: &str, row: &serde_json::Map<String, Value>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push_str(&rest[..open]);
        let name = &rest[open + 1..open + close];
        match row.get(name) {
            Some(Value::String(s)) => out.push_str(s),
            Some(other) => out.push_str(&other.to_string()),
            None => return Err(name.to_string()),
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// What is wrong with one row, before the caller names the file and the row.
pub(crate) enum RowProblem {
    /// None of the accepted names is present (the names joined by " or ").
    Missing(String),
    /// A field has the wrong JSON type.
    Type {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    /// A field holds a value the loader cannot use (e.g. a malformed conversation).
    Bad { field: String, reason: String },
}

// Used by the Parquet reader, which names the column in its own error.
#[cfg_attr(not(feature = "parquet"), allow(dead_code))]
impl RowProblem {
    /// The field (or accepted names) the problem is about.
    pub(crate) fn field(&self) -> &str {
        match self {
            RowProblem::Missing(f) => f,
            RowProblem::Type { field, .. } | RowProblem::Bad { field, .. } => field,
        }
    }

    /// The problem in words, without the field.
    pub(crate) fn reason(&self) -> String {
        match self {
            RowProblem::Missing(_) => "missing".into(),
            RowProblem::Type {
                expected, found, ..
            } => format!("must be {expected}, found {found}"),
            RowProblem::Bad { reason, .. } => reason.clone(),
        }
    }
}

/// Removes and returns the field `name` of `row`: the top-level key when there is one, else,
/// for a dotted name such as `reward_model.ground_truth`, the nested field (its parent object
/// stays, without it).
fn take_path(row: &mut serde_json::Map<String, Value>, name: &str) -> Option<Value> {
    if let Some(v) = row.remove(name) {
        return Some(v);
    }
    let (head, rest) = name.split_once('.')?;
    match row.get_mut(head) {
        Some(Value::Object(inner)) => take_path(inner, rest),
        _ => None,
    }
}

/// The first of `names` present in `row`, removed, with the name that matched.
fn take_first(
    row: &mut serde_json::Map<String, Value>,
    names: &[String],
) -> Option<(String, Value)> {
    names
        .iter()
        .find_map(|n| take_path(row, n).map(|v| (n.clone(), v)))
}

/// Turns one row (a JSONL object, or a Parquet row as JSON) into a task item.
pub(crate) fn parse_row(
    mut map: serde_json::Map<String, Value>,
    config: &DatasetConfig,
) -> Result<TaskItem, RowProblem> {
    let type_err = |field: String, expected: &'static str, v: &Value| RowProblem::Type {
        field,
        expected,
        found: json_type(v),
    };
    let (prompt, messages) = match take_first(&mut map, &config.prompt_fields) {
        Some((_, Value::String(s))) => (s, None),
        Some((pf, list @ Value::Array(_))) => {
            let messages = crate::item::parse_messages(list)
                .map_err(|reason| RowProblem::Bad { field: pf, reason })?;
            (
                crate::item::last_user_text(&messages).to_string(),
                Some(messages),
            )
        }
        Some((pf, other)) => {
            return Err(type_err(
                pf,
                "a string or a list of {role, content} messages",
                &other,
            ));
        }
        None => match &config.prompt_template {
            Some(template) => (
                render_template(template, &map).map_err(RowProblem::Missing)?,
                None,
            ),
            None => return Err(RowProblem::Missing(config.prompt_fields.join(" or "))),
        },
    };
    let (af, av) = take_first(&mut map, &config.answer_fields)
        .ok_or_else(|| RowProblem::Missing(config.answer_fields.join(" or ")))?;
    let answer = match av {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        other => return Err(type_err(af, "a string or a number", &other)),
    };
    let id = match take_first(&mut map, &config.id_fields) {
        None => match &messages {
            None => prompt_hash_id(&prompt),
            Some(m) => prompt_hash_id(&serde_json::to_string(m).unwrap_or_default()),
        },
        Some((_, Value::String(s))) => s,
        Some((_, Value::Number(n))) => n.to_string(),
        Some((f, other)) => return Err(type_err(f, "a string or a number", &other)),
    };
    Ok(TaskItem {
        id,
        prompt,
        messages,
        answer,
        meta: map,
    })
}

fn parse_line(
    line: &str,
    path: &Path,
    line_no: usize,
    config: &DatasetConfig,
) -> Result<TaskItem, TaskError> {
    let value: Value = serde_json::from_str(line).map_err(|source| TaskError::Json {
        path: path.to_path_buf(),
        line: line_no,
        source,
    })?;
    let Value::Object(map) = value else {
        return Err(TaskError::NotAnObject {
            path: path.to_path_buf(),
            line: line_no,
            found: json_type(&value),
        });
    };
    let path = path.to_path_buf();
    parse_row(map, config).map_err(|p| match p {
        RowProblem::Missing(field) => TaskError::MissingField {
            path,
            line: line_no,
            field,
        },
        RowProblem::Type {
            field,
            expected,
            found,
        } => TaskError::FieldType {
            path,
            line: line_no,
            field,
            expected,
            found,
        },
        RowProblem::Bad { field, reason } => TaskError::BadField {
            path,
            line: line_no,
            field,
            reason,
        },
    })
}
