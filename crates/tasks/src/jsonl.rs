//! Atomic JSONL writing.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::Serialize;

use crate::error::TaskError;

/// Writes `rows` to `path` as JSONL, one compact JSON object per line.
///
/// The write is atomic: rows go to a temporary file in the same directory, which is flushed,
/// synced and then renamed over `path`. A crash leaves either the old file or the new one.
///
/// # Errors
/// [`TaskError::Io`] if the directory is not writable or the rename fails.
pub fn write_jsonl<T: Serialize>(path: impl AsRef<Path>, rows: &[T]) -> Result<(), TaskError> {
    let path = path.as_ref();
    let io_err = |source| TaskError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out.jsonl".to_string());
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| -> Result<(), TaskError> {
        let file = fs::File::create(&tmp).map_err(|source| TaskError::Io {
            path: tmp.clone(),
            source,
        })?;
        let mut w = BufWriter::new(file);
        for row in rows {
            serde_json::to_writer(&mut w, row).map_err(|e| io_err(std::io::Error::other(e)))?;
            w.write_all(b"\n").map_err(io_err)?;
        }
        let file = w.into_inner().map_err(|e| io_err(e.into_error()))?;
        file.sync_all().map_err(io_err)?;
        fs::rename(&tmp, path).map_err(io_err)
    })();
    if result.is_err() {
        // Best effort: do not leave the temporary file behind.
        let _ = fs::remove_file(&tmp);
    }
    result
}
