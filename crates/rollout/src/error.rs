//! The crate's error type.

/// Everything that can go wrong while producing rollouts.
///
/// Bad input (parameters, prompts, server replies) becomes one of these; nothing in this crate
/// panics on data it receives.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RolloutError {
    /// A sampling or engine parameter is out of range.
    #[error("invalid parameter {field}: {reason}")]
    InvalidParam {
        /// The parameter, as spelt in [`SamplingParams`](crate::SamplingParams) or the config.
        field: &'static str,
        /// What is wrong, with the value found.
        reason: String,
    },
    /// A prompt cannot be generated from (empty, ids outside the vocabulary, …).
    #[error("invalid prompt {index}: {reason}")]
    InvalidPrompt {
        /// Position of the prompt in the batch.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// The engine needs a tokenizer for this request (text prompts, chat prompts, stop strings,
    /// text-only server replies) and has none.
    #[error("{what} needs a tokenizer, and none was given")]
    NoTokenizer {
        /// The feature that needs it, e.g. "stop strings".
        what: &'static str,
    },
    /// Encoding, decoding or chat-template rendering failed.
    #[error("tokenizer failed: {reason}")]
    Tokenizer {
        /// The tokenizer's message.
        reason: String,
    },
    /// The server could not be reached (connection refused or reset, timeout) after every
    /// allowed attempt: it is gone or overloaded.
    #[error("server at {url} unreachable after {attempts} attempt(s): {source}")]
    ServerUnreachable {
        /// The URL requested.
        url: String,
        /// Attempts made (1 + retries).
        attempts: u32,
        /// The last transport error.
        #[source]
        source: ureq::Error,
    },
    /// The server answered with an error status (after retries for 5xx and 429).
    #[error("server at {url} answered status {status} after {attempts} attempt(s): {body}")]
    Status {
        /// The URL requested.
        url: String,
        /// The HTTP status of the last answer.
        status: u16,
        /// Attempts made.
        attempts: u32,
        /// The start of the response body (the server's error message), at most 1000 bytes.
        body: String,
    },
    /// The server's reply is not what the OpenAI-compatible API promises.
    #[error("unexpected reply from {url}: {reason}")]
    Reply {
        /// The URL requested.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server returned token text rather than `token_id:N` (it does not support vLLM's
    /// `return_tokens_as_token_ids`) and no tokenizer was given to recover the ids.
    #[error(
        "server at {url} returned token text {token:?} instead of token ids; it does not support \
         return_tokens_as_token_ids: give the engine a tokenizer"
    )]
    TokenIdsUnavailable {
        /// The URL requested.
        url: String,
        /// The first token text that is not of the form `token_id:N`.
        token: String,
    },
    /// The server could not bind its address.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// An environment rejected an episode step.
    #[error("environment failed: {0}")]
    Environment(#[from] rlft_tasks::TaskError),
    /// The local model failed.
    #[error("model failed: {reason}")]
    Model {
        /// The model's message.
        reason: String,
    },
}

/// `Result` with [`RolloutError`].
pub type Result<T, E = RolloutError> = std::result::Result<T, E>;

/// Truncate `s` to at most `max` bytes at a character boundary (for error evidence).
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
