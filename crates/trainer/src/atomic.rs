//! Atomic file writes: a reader sees the old file or the new one, never half of one.

use std::path::Path;

use crate::error::{Result, TrainerError};

/// Writes `bytes` to `path` atomically ([`rlft_util::fs::write_atomic`]: a temporary file in
/// the same directory, fsync, rename), creating the parent directory first.
///
/// # Errors
/// [`TrainerError::Io`] naming the path and the failed operation.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |op, source| TrainerError::Io {
        op,
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io("create directory for", e))?;
    }
    rlft_util::fs::write_atomic(path, bytes).map_err(|e| io("write", e))
}

/// Serialises `value` as pretty JSON and writes it atomically.
///
/// # Errors
/// [`TrainerError::Json`] or [`TrainerError::Io`].
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| TrainerError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_file_and_leaves_no_temp() {
        let dir = std::env::temp_dir().join(format!("rlft-atomic-{}", std::process::id()));
        let p = dir.join("sub").join("a.json");
        write_atomic(&p, b"first").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        let leftovers: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unwritable_target_is_an_io_error_naming_the_path() {
        let err = write_atomic(Path::new("/proc/definitely/not/here.json"), b"x").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/proc/definitely/not/here.json"), "{msg}");
    }
}
