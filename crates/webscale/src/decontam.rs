//! S7: n-gram benchmark decontamination (lm-eval-harness's method, made symmetric; spec §1
//! S7).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Deserialize;

use crate::error::{Result, WebscaleError};

/// lm-eval-harness `janitor.py` normalisation: ASCII `A-Z` to `a-z`, the 32 ASCII
/// punctuation characters (Python `string.punctuation`) deleted, nothing else.
pub fn decontam_normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_punctuation() {
            continue;
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// FNV-1a 64 of a token.
fn token_hash(t: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in t.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// 128-bit fingerprint of a run of token hashes (two independent polynomial hashes).
fn fingerprint(hashes: &[u64]) -> u128 {
    let (mut a, mut b) = (0u64, 0u64);
    for &h in hashes {
        a = a.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(h);
        b = b
            .wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
            .wrapping_add(rlft_util::seed::mix64(h ^ 0x5851_F42D_4C95_7F2D));
    }
    (u128::from(a) << 64) | u128::from(rlft_util::seed::mix64(b))
}

/// A hasher for keys that are already hashes.
#[derive(Default)]
struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u128(&mut self, i: u128) {
        self.0 = (i as u64) ^ ((i >> 64) as u64);
    }
}

type FastMap<V> = HashMap<u128, V, BuildHasherDefault<PreHashed>>;

/// One benchmark item (JSONL `{bench, id, text}`; only `text` is required).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BenchItem {
    /// The benchmark's name. Default: the file stem.
    #[serde(default)]
    pub bench: String,
    /// The item's id. Default: the line number.
    #[serde(default)]
    pub id: String,
    /// The text (prompt and gold answer).
    pub text: String,
}

/// The n-gram index of benchmark items.
///
/// A text is contaminated when any of its word n-grams (after [`decontam_normalize`] of the
/// whole text, then splitting on whitespace) is an n-gram of a benchmark item; a text of fewer
/// than `n` words is contaminated when it equals a benchmark item's whole normalised text.
/// N-grams are stored as 128-bit fingerprints (a false hit needs a 128-bit collision).
#[derive(Debug, Clone, Default)]
pub struct BenchIndex {
    n: usize,
    grams: FastMap<u32>,
    whole: FastMap<u32>,
    items: Vec<(String, String)>,
}

impl BenchIndex {
    /// An empty index for n-grams of `n` words.
    pub fn new(n: usize) -> Self {
        Self {
            n: n.max(1),
            ..Self::default()
        }
    }

    /// Items indexed.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no item is indexed.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds one item.
    pub fn add(&mut self, item: &BenchItem) {
        let idx = self.items.len() as u32;
        self.items.push((item.bench.clone(), item.id.clone()));
        let norm = decontam_normalize(&item.text);
        let hashes: Vec<u64> = norm.split_whitespace().map(token_hash).collect();
        self.whole.entry(fingerprint(&hashes)).or_insert(idx);
        for w in hashes.windows(self.n) {
            self.grams.entry(fingerprint(w)).or_insert(idx);
        }
    }

    /// Reads benchmark files (JSONL, one item a line) into an index of `n`-grams.
    ///
    /// # Errors
    /// [`WebscaleError::Io`] or [`WebscaleError::Input`] naming the file and line.
    pub fn from_files(paths: &[PathBuf], n: usize) -> Result<Self> {
        let mut index = Self::new(n);
        for path in paths {
            for item in read_bench(path)? {
                index.add(&item);
            }
        }
        Ok(index)
    }

    /// `bench:id` of the first benchmark item `text` hits, if any.
    pub fn hit(&self, text: &str) -> Option<String> {
        if self.items.is_empty() {
            return None;
        }
        let norm = decontam_normalize(text);
        let hashes: Vec<u64> = norm.split_whitespace().map(token_hash).collect();
        let found = if hashes.len() < self.n {
            self.whole.get(&fingerprint(&hashes)).copied()
        } else {
            hashes
                .windows(self.n)
                .find_map(|w| self.grams.get(&fingerprint(w)).copied())
        };
        found.map(|i| {
            let (b, id) = &self.items[i as usize];
            format!("{b}:{id}")
        })
    }

    /// [`hit`](Self::hit) over many texts on the current rayon pool.
    pub fn hits(&self, texts: &[&str]) -> Vec<Option<String>> {
        texts.par_iter().map(|t| self.hit(t)).collect()
    }

    /// Distinct n-grams indexed.
    pub fn grams(&self) -> usize {
        self.grams.len()
    }
}

/// The items of one benchmark file.
fn read_bench(path: &Path) -> Result<Vec<BenchItem>> {
    let text = std::fs::read_to_string(path).map_err(|e| WebscaleError::io(path, e))?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut item: BenchItem = serde_json::from_str(line).map_err(|e| WebscaleError::Input {
            path: path.to_path_buf(),
            line: i + 1,
            reason: format!("not a benchmark item {{bench, id, text}}: {e}"),
        })?;
        if item.bench.is_empty() {
            item.bench = stem.clone();
        }
        if item.id.is_empty() {
            item.id = (i + 1).to_string();
        }
        out.push(item);
    }
    Ok(out)
}

/// Distinct `bench` names, for the manifest.
pub(crate) fn bench_names(index: &BenchIndex) -> Vec<String> {
    let set: HashSet<&str> = index.items.iter().map(|(b, _)| b.as_str()).collect();
    let mut v: Vec<String> = set.into_iter().map(str::to_string).collect();
    v.sort();
    v
}
