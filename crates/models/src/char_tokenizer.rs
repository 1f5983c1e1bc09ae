//! A character-level tokenizer written as a real `tokenizer.json` + `tokenizer_config.json`,
//! so tiny CPU models go through exactly the code path of a Hugging Face checkpoint.
//!
//! The tokenizer is a `WordLevel` model over single characters (a `Split` pre-tokenizer
//! isolating every character, a `Fuse` decoder), preceded by special tokens.

use std::path::Path;

use serde_json::{Value, json};

use crate::checkpoint::write_atomic;
use crate::error::{ModelError, Result};

/// ChatML template used by [`CharTokenizer`]'s default config (the Qwen layout without the
/// default system prompt).
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// A character-level vocabulary: special tokens first (ids 0..), then one id per character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharTokenizer {
    /// Special tokens in id order; `<|endoftext|>` serves as pad and EOS by default.
    pub specials: Vec<String>,
    /// The characters, in id order after the specials (duplicates removed).
    pub chars: Vec<char>,
    /// Chat template written to tokenizer_config.json. Default: [`CHATML_TEMPLATE`].
    pub chat_template: String,
}

impl CharTokenizer {
    /// Specials `<|endoftext|>`, `<|im_start|>`, `<|im_end|>`, `<unk>`, then the distinct
    /// characters of `alphabet` in order of first appearance.
    pub fn new(alphabet: &str) -> Self {
        let mut chars = Vec::new();
        for c in alphabet.chars() {
            if !chars.contains(&c) {
                chars.push(c);
            }
        }
        Self {
            specials: ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<unk>"]
                .map(String::from)
                .to_vec(),
            chars,
            chat_template: CHATML_TEMPLATE.to_string(),
        }
    }

    /// Printable ASCII (space to `~`) plus newline.
    pub fn ascii() -> Self {
        let alphabet: String = std::iter::once('\n').chain(' '..='~').collect();
        Self::new(&alphabet)
    }

    /// Vocabulary size (specials + characters).
    pub fn vocab_size(&self) -> usize {
        self.specials.len() + self.chars.len()
    }

    /// The `tokenizer.json` document.
    pub fn tokenizer_json(&self) -> Value {
        let mut vocab = serde_json::Map::new();
        let mut added = Vec::new();
        for (id, s) in self.specials.iter().enumerate() {
            vocab.insert(s.clone(), json!(id));
            added.push(json!({
                "id": id, "content": s, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true
            }));
        }
        for (i, c) in self.chars.iter().enumerate() {
            vocab.insert(c.to_string(), json!(self.specials.len() + i));
        }
        json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": null,
            "pre_tokenizer": {
                "type": "Split",
                "pattern": {"Regex": "[\\s\\S]"},
                "behavior": "Isolated",
                "invert": false
            },
            "post_processor": null,
            "decoder": {"type": "Fuse"},
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}
        })
    }

    /// The `tokenizer_config.json` document (special tokens and chat template).
    pub fn tokenizer_config_json(&self) -> Value {
        json!({
            "eos_token": self.specials[0],
            "pad_token": self.specials[0],
            "unk_token": "<unk>",
            "chat_template": self.chat_template,
        })
    }

    /// Write `tokenizer.json` and `tokenizer_config.json` into `dir` (created if needed),
    /// atomically.
    ///
    /// # Errors
    /// [`ModelError::Io`] when writing fails.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| ModelError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let pretty = |v: Value| serde_json::to_string_pretty(&v).expect("json value serialises");
        write_atomic(
            &dir.join("tokenizer.json"),
            pretty(self.tokenizer_json()).as_bytes(),
        )?;
        write_atomic(
            &dir.join("tokenizer_config.json"),
            pretty(self.tokenizer_config_json()).as_bytes(),
        )
    }
}
