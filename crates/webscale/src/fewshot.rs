//! S4: per-domain demonstration libraries and seeded few-shot selection.

use std::collections::BTreeMap;
use std::path::Path;

use rlft_util::seed::mix64;
use serde::{Deserialize, Serialize};

use crate::domain::canonical_domain;
use crate::error::{Result, WebscaleError};

/// One demonstration (the reference library's fields plus an id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// Unique id within the library.
    pub id: String,
    /// One of the 10 domain labels.
    pub domain: String,
    /// The source passage.
    pub original_material: String,
    /// The persona the question was written for.
    pub persona: String,
    /// The question.
    pub question: String,
    /// The answer.
    pub answer: String,
}

/// Demonstrations by domain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FewshotLibrary {
    by_domain: BTreeMap<String, Vec<Example>>,
}

/// The library shipped with the crate (our own examples, three per domain; the reference
/// libraries hold 5–7 per domain).
const BUILTIN: &str = include_str!("../fewshot/library.jsonl");

impl FewshotLibrary {
    /// The shipped library.
    pub fn builtin() -> Self {
        Self::parse(BUILTIN, Path::new("<builtin fewshot/library.jsonl>"))
            .unwrap_or_else(|e| unreachable!("the shipped library is valid: {e}"))
    }

    /// A library read from a JSONL file of [`Example`]s.
    ///
    /// # Errors
    /// [`WebscaleError::Io`] or [`WebscaleError::Input`] naming the line.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| WebscaleError::io(path, e))?;
        Self::parse(&text, path)
    }

    fn parse(text: &str, path: &Path) -> Result<Self> {
        let mut lib = Self::default();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |reason: String| WebscaleError::Input {
                path: path.to_path_buf(),
                line: i + 1,
                reason,
            };
            let mut ex: Example =
                serde_json::from_str(line).map_err(|e| bad(format!("not an example: {e}")))?;
            ex.domain = canonical_domain(&ex.domain)
                .ok_or_else(|| bad(format!("unknown domain {:?}", ex.domain)))?
                .to_string();
            lib.by_domain.entry(ex.domain.clone()).or_default().push(ex);
        }
        for v in lib.by_domain.values_mut() {
            v.sort_by(|a, b| a.id.cmp(&b.id));
        }
        Ok(lib)
    }

    /// Examples of `domain`.
    pub fn domain(&self, domain: &str) -> &[Example] {
        self.by_domain.get(domain).map(Vec::as_slice).unwrap_or(&[])
    }

    /// `min(n, len)` examples of `domain` drawn without replacement by a generator seeded
    /// with `hash(seed, doc_id, persona_index)` (a partial Fisher-Yates shuffle over
    /// SplitMix64); the same inputs always select the same examples.
    pub fn select(
        &self,
        domain: &str,
        n: usize,
        seed: u64,
        doc_id: &str,
        persona: usize,
    ) -> Vec<&Example> {
        let pool = self.domain(domain);
        let mut idx: Vec<usize> = (0..pool.len()).collect();
        let mut state = unit_seed(seed, doc_id, persona as u64);
        let take = n.min(pool.len());
        for i in 0..take {
            state = mix64(state.wrapping_add(0x9E37_79B9_7F4A_7C15));
            let j = i + (state % (pool.len() - i) as u64) as usize;
            idx.swap(i, j);
        }
        idx[..take].iter().map(|&i| &pool[i]).collect()
    }
}

/// `hash(seed, doc_id, k)`: the seed of one unit of work.
pub fn unit_seed(seed: u64, doc_id: &str, k: u64) -> u64 {
    let head = doc_id
        .get(..16)
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .unwrap_or_else(|| {
            doc_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            })
        });
    mix64(
        mix64(seed ^ 0xD1B5_4A32_D192_ED03)
            ^ mix64(head)
            ^ mix64(k.wrapping_add(0x632B_E59B_D9B4_E019)),
    )
}

/// The few-shot block of the generator prompt.
pub fn render_fewshot(examples: &[&Example]) -> String {
    let mut s = String::from("--- begin examples ---\n");
    for (i, e) in examples.iter().enumerate() {
        s.push_str(&format!(
            "Example {}\nMaterial: {}\nPersona: {}\nExtracted Question: {}\nExtracted Answer: {}\n\n",
            i + 1,
            e.original_material,
            e.persona,
            e.question,
            e.answer
        ));
    }
    s.push_str("--- end examples ---");
    s
}
