//! The text side of an engine: encoding prompts, decoding completions, chat templates.

use crate::error::{Result, RolloutError};
use crate::prompt::Message;

/// What an engine needs from a tokenizer.
///
/// Required: [`encode`](Tokenizer::encode) and [`decode`](Tokenizer::decode). The others have
/// defaults. Implemented here by [`CharVocab`]; rlft-models' tokenizer is adapted by the local
/// engine.
pub trait Tokenizer: Send + Sync {
    /// Token ids of `text`, adding the tokenizer's special tokens (BOS) when
    /// `add_special_tokens`.
    ///
    /// # Errors
    /// [`RolloutError::Tokenizer`] when the text cannot be encoded.
    fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>>;

    /// Text of `ids` as shown to a user: special tokens skipped.
    ///
    /// # Errors
    /// [`RolloutError::Tokenizer`] for ids outside the vocabulary.
    fn decode(&self, ids: &[u32]) -> Result<String>;

    /// Text of a single token for log-prob displays; `None` when unknown.
    fn token_text(&self, id: u32) -> Option<String> {
        self.decode(&[id]).ok()
    }

    /// Render `messages` with the chat template and a generation prompt.
    ///
    /// # Errors
    /// [`RolloutError::Tokenizer`] when there is no template (the default) or rendering fails.
    fn apply_chat_template(&self, messages: &[Message]) -> Result<String> {
        let _ = messages;
        Err(RolloutError::Tokenizer {
            reason: "this tokenizer has no chat template".into(),
        })
    }
}

impl<T: Tokenizer + ?Sized> Tokenizer for &T {
    fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        (**self).encode(text, add_special_tokens)
    }
    fn decode(&self, ids: &[u32]) -> Result<String> {
        (**self).decode(ids)
    }
    fn token_text(&self, id: u32) -> Option<String> {
        (**self).token_text(id)
    }
    fn apply_chat_template(&self, messages: &[Message]) -> Result<String> {
        (**self).apply_chat_template(messages)
    }
}

impl<T: Tokenizer + ?Sized> Tokenizer for Box<T> {
    fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        (**self).encode(text, add_special_tokens)
    }
    fn decode(&self, ids: &[u32]) -> Result<String> {
        (**self).decode(ids)
    }
    fn token_text(&self, id: u32) -> Option<String> {
        (**self).token_text(id)
    }
    fn apply_chat_template(&self, messages: &[Message]) -> Result<String> {
        (**self).apply_chat_template(messages)
    }
}

/// A character-level vocabulary: id 0 is the end-of-text token `<eos>`, ids 1.. are the
/// characters of an alphabet in order. Decoding skips `<eos>`; the chat template is
/// `"{role}: {content}\n"` per message followed by `"assistant: "`.
///
/// It serves [`BigramEngine`](crate::BigramEngine) and tests; real models bring their own
/// tokenizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharVocab {
    chars: Vec<char>,
}

impl CharVocab {
    /// The end-of-text id.
    pub const EOS: u32 = 0;

    /// A vocabulary of the distinct characters of `alphabet`, in order of first appearance.
    pub fn new(alphabet: &str) -> Self {
        let mut chars = Vec::new();
        for c in alphabet.chars() {
            if !chars.contains(&c) {
                chars.push(c);
            }
        }
        Self { chars }
    }

    /// Number of ids (the characters plus `<eos>`).
    pub fn len(&self) -> usize {
        self.chars.len() + 1
    }

    /// Whether the alphabet is empty (only `<eos>`).
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }
}

impl Tokenizer for CharVocab {
    fn encode(&self, text: &str, _add_special_tokens: bool) -> Result<Vec<u32>> {
        text.chars()
            .map(|c| {
                self.chars
                    .iter()
                    .position(|&x| x == c)
                    .map(|i| i as u32 + 1)
                    .ok_or_else(|| RolloutError::Tokenizer {
                        reason: format!("character {c:?} is not in the vocabulary"),
                    })
            })
            .collect()
    }

    fn decode(&self, ids: &[u32]) -> Result<String> {
        ids.iter()
            .filter(|&&id| id != Self::EOS)
            .map(|&id| {
                self.chars
                    .get(id as usize - 1)
                    .copied()
                    .ok_or_else(|| RolloutError::Tokenizer {
                        reason: format!("id {id} is outside the vocabulary ({})", self.len()),
                    })
            })
            .collect()
    }

    fn token_text(&self, id: u32) -> Option<String> {
        if id == Self::EOS {
            return Some("<eos>".into());
        }
        self.chars.get(id as usize - 1).map(|c| c.to_string())
    }

    fn apply_chat_template(&self, messages: &[Message]) -> Result<String> {
        let mut out = String::new();
        for m in messages {
            out.push_str(&format!("{}: {}\n", m.role, m.content));
        }
        out.push_str("assistant: ");
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_vocab_round_trips_and_rejects_unknowns() {
        let v = CharVocab::new("ab c");
        assert_eq!(v.len(), 5);
        let ids = v.encode("a cb", true).unwrap();
        assert_eq!(ids, vec![1, 3, 4, 2]);
        assert_eq!(v.decode(&[1, 0, 3, 4, 2, 0]).unwrap(), "a cb");
        assert!(matches!(
            v.encode("z", false),
            Err(RolloutError::Tokenizer { .. })
        ));
        assert!(matches!(
            v.decode(&[9]),
            Err(RolloutError::Tokenizer { .. })
        ));
        assert_eq!(v.token_text(0).as_deref(), Some("<eos>"));
        assert_eq!(v.token_text(9), None);
    }
}
