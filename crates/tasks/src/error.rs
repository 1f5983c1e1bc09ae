//! Error types: [`TaskError`] for bad data, configs and contract breaks, and [`ExprError`]
//! for Countdown expressions that do not parse or evaluate.

use std::path::PathBuf;

/// Everything that can go wrong in this crate outside of scoring a completion.
///
/// A completion never produces a `TaskError`: whatever text a model writes is scored (possibly
/// 0) with a [`Reason`](crate::Reason). Errors come from files, configs, task items that a
/// verifier cannot use, and a caller stepping a finished episode.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// Reading or writing a file failed.
    #[error("i/o error on {}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSONL line is not valid JSON.
    #[error("{}:{line}: invalid json", path.display())]
    Json {
        /// The file (or source name) being read.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A JSONL line holds valid JSON that is not an object.
    #[error("{}:{line}: expected a json object, found {found}", path.display())]
    NotAnObject {
        /// The file (or source name) being read.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The JSON type found instead.
        found: &'static str,
    },
    /// None of the configured names for a required field is present on a line.
    #[error("{}:{line}: missing field {field}", path.display())]
    MissingField {
        /// The file (or source name) being read.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The accepted field names, joined by " or ".
        field: String,
    },
    /// A field has the wrong JSON type.
    #[error("{}:{line}: field {field} must be {expected}, found {found}", path.display())]
    FieldType {
        /// The file (or source name) being read.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The field name.
        field: String,
        /// What the loader accepts.
        expected: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
    /// A field holds a value the loader cannot use, e.g. a conversation whose message has an
    /// unknown role.
    #[error("{}:{line}: field {field}: {reason}", path.display())]
    BadField {
        /// The file (or source name) being read.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The field name.
        field: String,
        /// What is wrong, as expected versus found.
        reason: String,
    },
    /// A Parquet file cannot be opened or decoded (not Parquet, corrupt, an unsupported
    /// encoding or compression), or this build has no Parquet support.
    #[error("{}: parquet: {reason}", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// Where in the file, when known (e.g. `row group 2`).
        reason: String,
        /// The decoder's error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A row of a Parquet dataset cannot be used: a column is missing or has the wrong type,
    /// a conversation is malformed, or an id repeats.
    #[error("{}: row group {row_group}, row {row}: column {column}: {reason}", path.display())]
    ParquetRow {
        /// The file.
        path: PathBuf,
        /// 0-based row group.
        row_group: usize,
        /// 0-based row in the file (as `pandas.read_parquet(path).iloc[row]` counts).
        row: usize,
        /// The column, dotted for nested fields (`reward_model.ground_truth`), or the
        /// accepted names joined by " or " when none is present.
        column: String,
        /// What is wrong, as expected versus found.
        reason: String,
    },
    /// Two lines share one prompt id.
    #[error("{}:{line}: duplicate id {id:?}, first seen on line {first_line}", path.display())]
    DuplicateId {
        /// The file (or source name) being read.
        path: PathBuf,
        /// 1-based line number of the second occurrence.
        line: usize,
        /// The repeated id.
        id: String,
        /// 1-based line number of the first occurrence.
        first_line: usize,
    },
    /// A verifier cannot use a task item (for example a Countdown item without numbers).
    #[error("task item {id:?}: field {field}: {reason}")]
    BadItem {
        /// The item's id.
        id: String,
        /// The field that is missing or malformed.
        field: String,
        /// What is wrong, as expected versus found.
        reason: String,
    },
    /// A config value is out of range or inconsistent.
    #[error("config field {field}: {reason}")]
    Config {
        /// The field, e.g. `countdown.min_numbers`.
        field: String,
        /// What is wrong, as expected versus found.
        reason: String,
    },
    /// `step` was called on an episode that has already ended.
    #[error("episode for item {item_id:?} is already finished after {turns} turns")]
    EpisodeFinished {
        /// The episode's item id.
        item_id: String,
        /// How many assistant turns it has.
        turns: usize,
    },
}

/// Why a Countdown expression was rejected.
///
/// These are outcomes of scoring model output, so the Countdown verifier turns them into a
/// [`Reason`](crate::Reason) rather than an error; [`parse_expression`](crate::parse_expression)
/// returns them directly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExprError {
    /// The expression is longer than the configured bound.
    #[error("expression has {len} characters, more than the limit {max}")]
    TooLong {
        /// Its length in characters.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// Parentheses nest deeper than the configured bound.
    #[error("parentheses nest deeper than the limit {max}")]
    TooDeep {
        /// The bound.
        max: usize,
    },
    /// The expression is empty.
    #[error("empty expression")]
    Empty,
    /// A character that is not a digit, operator, parenthesis or space.
    #[error("unexpected character {ch:?} at character {pos}")]
    UnexpectedChar {
        /// The character.
        ch: char,
        /// 0-based character position.
        pos: usize,
    },
    /// The expression ends where an operand or `)` is needed.
    #[error("expression ends early: expected {expected}")]
    UnexpectedEnd {
        /// What was expected.
        expected: String,
    },
    /// A token appears where it is not allowed (e.g. two operators in a row).
    #[error("unexpected {found:?} at character {pos}, expected {expected}")]
    UnexpectedToken {
        /// The token text.
        found: String,
        /// 0-based character position.
        pos: usize,
        /// What was expected.
        expected: String,
    },
    /// A number literal has more digits than any allowed number.
    #[error("number literal at character {pos} has {digits} digits, more than {max}")]
    NumberTooLong {
        /// 0-based character position.
        pos: usize,
        /// Its digit count.
        digits: usize,
        /// The bound.
        max: usize,
    },
    /// Division by an operand that evaluates to zero.
    #[error("division by zero")]
    DivisionByZero,
    /// An intermediate value does not fit in 128-bit rationals.
    #[error("arithmetic overflow")]
    Overflow,
}
