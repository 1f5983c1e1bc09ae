//! JSONL datasets with configurable field names, stable ids and hash-based splits.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::TaskError;
use crate::hash::{mix64, stable_hash};
use crate::item::TaskItem;

/// Which JSONL fields hold the prompt, the answer and the id.
///
/// Each role lists accepted names, tried in order; the first present one is used, and the
/// others stay in [`TaskItem::meta`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatasetConfig {
    /// Names for the prompt. Default `["prompt", "question", "problem"]`: rlft's own files,
    /// GSM8K/Webscale-RL QA pairs, and Hendrycks MATH.
    pub prompt_fields: Vec<String>,
    /// Names for the gold answer. Default `["answer", "solution", "target"]`: GSM8K and rlft,
    /// MATH, and Countdown-Tasks-3to4 (whose target is the answer).
    pub answer_fields: Vec<String>,
    /// Names for the id. Default `["id", "prompt_id"]` (rlft; DRIFT's `prompt_id`). When a
    /// line has none of them, its id is `h` followed by 16 hex digits of a stable hash of the
    /// prompt text (FNV-1a 64 then the SplitMix64 finaliser), so ids survive reordering.
    pub id_fields: Vec<String>,
    /// Builds the prompt for lines that have none of `prompt_fields`: each `{name}` is
    /// replaced by that field of the line (strings as they are, other values as compact
    /// JSON), e.g. `"Using the numbers {nums}, make {target}."` for Countdown-Tasks-3to4,
    /// whose lines hold only `nums` and `target`. A `{name}` naming an absent field is a
    /// [`TaskError::MissingField`]. Default none: such lines are an error.
    pub prompt_template: Option<String>,
}

impl Default for DatasetConfig {
    fn default() -> Self {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
        Self {
            prompt_fields: v(&["prompt", "question", "problem"]),
            answer_fields: v(&["answer", "solution", "target"]),
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
        for (index, line) in reader.lines().enumerate() {
            let line_no = index + 1;
            let line = line.map_err(|source| TaskError::Io {
                path: path.to_path_buf(),
                source,
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
    let Value::Object(mut map) = value else {
        return Err(TaskError::NotAnObject {
            path: path.to_path_buf(),
            line: line_no,
            found: json_type(&value),
        });
    };
    let missing = |names: &[String]| TaskError::MissingField {
        path: path.to_path_buf(),
        line: line_no,
        field: names.join(" or "),
    };
    let take = |map: &mut serde_json::Map<String, Value>, names: &[String]| {
        names
            .iter()
            .find_map(|n| map.remove(n).map(|v| (n.clone(), v)))
    };
    let type_err = |field: String, expected: &'static str, v: &Value| TaskError::FieldType {
        path: path.to_path_buf(),
        line: line_no,
        field,
        expected,
        found: json_type(v),
    };

    let prompt = match take(&mut map, &config.prompt_fields) {
        Some((_, Value::String(s))) => s,
        Some((pf, other)) => return Err(type_err(pf, "a string", &other)),
        None => match &config.prompt_template {
            Some(template) => {
                render_template(template, &map).map_err(|field| TaskError::MissingField {
                    path: path.to_path_buf(),
                    line: line_no,
                    field,
                })?
            }
            None => return Err(missing(&config.prompt_fields)),
        },
    };
    let (af, av) =
        take(&mut map, &config.answer_fields).ok_or_else(|| missing(&config.answer_fields))?;
    let answer = match av {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        other => return Err(type_err(af, "a string or a number", &other)),
    };
    let id = match take(&mut map, &config.id_fields) {
        None => prompt_hash_id(&prompt),
        Some((_, Value::String(s))) => s,
        Some((_, Value::Number(n))) => n.to_string(),
        Some((f, other)) => return Err(type_err(f, "a string or a number", &other)),
    };
    Ok(TaskItem {
        id,
        prompt,
        answer,
        meta: map,
    })
}
