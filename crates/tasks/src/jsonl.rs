//! Atomic JSONL writing.

use std::path::Path;

use serde::Serialize;

use crate::error::TaskError;

/// Writes `rows` to `path` as JSONL, one compact JSON object per line.
///
/// The write is atomic ([`rlft_util::fs::write_atomic_with`]): rows go to a temporary file in
/// the same directory, which is flushed, synced and then renamed over `path`. A crash leaves
/// either the old file or the new one.
///
/// # Errors
/// [`TaskError::Io`] if the directory is missing or not writable, a row does not serialise, or
/// the rename fails.
pub fn write_jsonl<T: Serialize>(path: impl AsRef<Path>, rows: &[T]) -> Result<(), TaskError> {
    let path = path.as_ref();
    rlft_util::fs::write_atomic_with(path, |w| {
        for row in rows {
            serde_json::to_writer(&mut *w, row).map_err(std::io::Error::other)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
    .map_err(|source| TaskError::Io {
        path: path.to_path_buf(),
        source,
    })
}
