//! S0: reading documents (JSONL, plain-text directories, Parquet), ids, exact-duplicate
//! removal and sharding.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

use crate::error::{Result, WebscaleError};

/// One input document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// `sha256(NFC(text))`, lowercase hex.
    pub doc_id: String,
    /// The corpus name: the row's source field, else the config's `source`, else the file
    /// stem.
    pub source: String,
    /// The row's own id (its id field), else its 1-based line or row number (the file
    /// name for a plain-text file).
    pub source_row: String,
    /// The text as read.
    pub text: String,
}

/// `[input]`: where the documents are and which fields hold what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InputConfig {
    /// Files or directories (searched recursively, in name order): `*.jsonl`/`*.json`
    /// (one object a line), `*.txt` (one document a file), `*.parquet`. Relative paths are
    /// relative to the config file.
    pub paths: Vec<PathBuf>,
    /// JSONL field / Parquet column with the text. Default `text`: the reference code
    /// (`main_batch.py`) and FineWeb/DCLM shards.
    pub text_field: String,
    /// Field with the row's own id. Default `id` (FineWeb's column).
    pub id_field: String,
    /// Field with the corpus name. Default `source`.
    pub source_field: String,
    /// Corpus name for rows without a source field. Default: the file stem.
    pub source: Option<String>,
}

impl Default for InputConfig {
    fn default() -> Self {
        Self {
            paths: Vec::new(),
            text_field: "text".into(),
            id_field: "id".into(),
            source_field: "source".into(),
            source: None,
        }
    }
}

/// `sha256(NFC(text))` as lowercase hex.
pub fn doc_id(text: &str) -> String {
    let mut h = Sha256::new();
    if is_nfc_quick(text.chars()) == IsNormalized::Yes {
        h.update(text.as_bytes());
    } else {
        let nfc: String = text.nfc().collect();
        h.update(nfc.as_bytes());
    }
    hex(&h.finalize())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(D[usize::from(b >> 4)] as char);
        s.push(D[usize::from(b & 15)] as char);
    }
    s
}

/// `sha256` of `bytes` as lowercase hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The shard (`0..count`) of a document: the first 64 bits of its id modulo `count`.
pub fn shard_of(doc_id: &str, count: usize) -> usize {
    let head = doc_id.get(..16).unwrap_or(doc_id);
    let v = u64::from_str_radix(head, 16).unwrap_or_else(|_| {
        // Ids made elsewhere: hash them.
        u64::from_str_radix(&sha256_hex(doc_id.as_bytes())[..16], 16).unwrap_or(0)
    });
    (v % count.max(1) as u64) as usize
}

/// Every input file under `paths`, in order (directories recursively, by name).
fn list_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| WebscaleError::io(dir, e))?
            .map(|e| {
                e.map(|e| e.path())
                    .map_err(|err| WebscaleError::io(dir, err))
            })
            .collect::<Result<_>>()?;
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out)?;
            } else if kind(&p).is_some() {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else if kind(p).is_some() {
            out.push(p.clone());
        } else if !p.exists() {
            return Err(WebscaleError::io(
                p,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
            ));
        } else {
            return Err(WebscaleError::config(
                "input.paths",
                format!(
                    "{}: unknown file type (want .jsonl, .json, .txt or .parquet)",
                    p.display()
                ),
            ));
        }
    }
    Ok(out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Jsonl,
    Text,
    Parquet,
}

fn kind(p: &Path) -> Option<Kind> {
    match p.extension()?.to_str()? {
        "jsonl" | "json" => Some(Kind::Jsonl),
        "txt" => Some(Kind::Text),
        "parquet" => Some(Kind::Parquet),
        _ => None,
    }
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Reads every row of the configured inputs, in file and line order, ids computed on the
/// current rayon pool.
///
/// # Errors
/// [`WebscaleError::Io`]; [`WebscaleError::Input`] naming the file and line of a row that is
/// not a JSON object or lacks the text field.
pub fn read_documents(cfg: &InputConfig) -> Result<Vec<Document>> {
    let mut docs = Vec::new();
    for file in list_files(&cfg.paths)? {
        match kind(&file) {
            Some(Kind::Jsonl) => docs.extend(read_jsonl(&file, cfg)?),
            Some(Kind::Text) => {
                let text =
                    std::fs::read_to_string(&file).map_err(|e| WebscaleError::io(&file, e))?;
                let name = file
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                docs.push(Document {
                    doc_id: doc_id(&text),
                    source: cfg
                        .source
                        .clone()
                        .unwrap_or_else(|| stem(file.parent().unwrap_or(Path::new("")))),
                    source_row: name,
                    text,
                });
            }
            Some(Kind::Parquet) => docs.extend(read_parquet(&file, cfg)?),
            None => {}
        }
    }
    Ok(docs)
}

/// The documents of one JSONL file.
pub fn read_jsonl(path: &Path, cfg: &InputConfig) -> Result<Vec<Document>> {
    let text = std::fs::read_to_string(path).map_err(|e| WebscaleError::io(path, e))?;
    let default_source = cfg.source.clone().unwrap_or_else(|| stem(path));
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    lines
        .par_iter()
        .map(|&(i, line)| {
            let bad = |reason: String| WebscaleError::Input {
                path: path.to_path_buf(),
                line: i + 1,
                reason,
            };
            let obj: serde_json::Map<String, Value> =
                serde_json::from_str(line).map_err(|e| bad(format!("not a JSON object: {e}")))?;
            let text = match obj.get(&cfg.text_field) {
                Some(Value::String(s)) => s.clone(),
                Some(_) => return Err(bad(format!("field {:?} is not a string", cfg.text_field))),
                None => return Err(bad(format!("no field {:?}", cfg.text_field))),
            };
            Ok(Document {
                doc_id: doc_id(&text),
                source: obj
                    .get(&cfg.source_field)
                    .map(value_text)
                    .unwrap_or_else(|| default_source.clone()),
                source_row: obj
                    .get(&cfg.id_field)
                    .map(value_text)
                    .unwrap_or_else(|| (i + 1).to_string()),
                text,
            })
        })
        .collect()
}

/// The documents of one Parquet file (row API: any column of strings; other columns of the
/// row are read only for the id and source).
pub fn read_parquet(path: &Path, cfg: &InputConfig) -> Result<Vec<Document>> {
    let bad = |line: usize, reason: String| WebscaleError::Input {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| WebscaleError::io(path, e))?;
    let reader =
        SerializedFileReader::new(file).map_err(|e| bad(0, format!("not a Parquet file: {e}")))?;
    let default_source = cfg.source.clone().unwrap_or_else(|| stem(path));
    let rows = reader
        .get_row_iter(None)
        .map_err(|e| bad(0, format!("cannot read rows: {e}")))?;
    let mut raw = Vec::new();
    for (i, row) in rows.enumerate() {
        let row = row.map_err(|e| bad(i + 1, format!("cannot read the row: {e}")))?;
        let (mut text, mut id, mut source) = (None, None, None);
        for (name, field) in row.get_column_iter() {
            let as_text = || match field {
                Field::Str(s) => Some(s.clone()),
                Field::Null => None,
                other => Some(other.to_string()),
            };
            if *name == cfg.text_field {
                text = Some(match field {
                    Field::Str(s) => s.clone(),
                    other => {
                        return Err(bad(
                            i + 1,
                            format!("column {:?} is not a string: {other}", cfg.text_field),
                        ));
                    }
                });
            } else if *name == cfg.id_field {
                id = as_text();
            } else if *name == cfg.source_field {
                source = as_text();
            }
        }
        let text = text.ok_or_else(|| bad(i + 1, format!("no column {:?}", cfg.text_field)))?;
        raw.push((
            text,
            source.unwrap_or_else(|| default_source.clone()),
            id.unwrap_or_else(|| (i + 1).to_string()),
        ));
    }
    Ok(raw
        .into_par_iter()
        .map(|(text, source, source_row)| Document {
            doc_id: doc_id(&text),
            source,
            source_row,
            text,
        })
        .collect())
}

/// Exact-duplicate removal: one document per id, the one with the smallest
/// `(source, source_row)`, so the choice does not depend on input order. Returns the kept
/// documents sorted by id, and the duplicates (with the kept document's id) sorted by
/// `(doc_id, source, source_row)`.
pub fn dedupe(docs: Vec<Document>) -> (Vec<Document>, Vec<Document>) {
    let mut best: HashMap<String, Document> = HashMap::with_capacity(docs.len());
    let mut dups = Vec::new();
    for d in docs {
        match best.get_mut(&d.doc_id) {
            None => {
                best.insert(d.doc_id.clone(), d);
            }
            Some(kept) => {
                if (&d.source, &d.source_row) < (&kept.source, &kept.source_row) {
                    dups.push(std::mem::replace(kept, d));
                } else {
                    dups.push(d);
                }
            }
        }
    }
    let mut kept: Vec<Document> = best.into_values().collect();
    kept.par_sort_unstable_by(|a, b| a.doc_id.cmp(&b.doc_id));
    dups.sort_by(|a, b| {
        (&a.doc_id, &a.source, &a.source_row).cmp(&(&b.doc_id, &b.source, &b.source_row))
    });
    (kept, dups)
}
