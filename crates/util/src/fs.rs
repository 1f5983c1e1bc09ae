//! Atomic file writes: a reader sees the old file or the new one, never half of one.
//!
//! The contents go to a uniquely named temporary file in the target's directory (so the
//! rename cannot cross file systems), which is flushed and fsynced and then renamed over the
//! target. On Unix the directory is fsynced afterwards too, best effort: the new file is in
//! place whether or not that succeeds. If anything fails before the rename, the temporary file
//! is removed and the target is untouched. The new file gets the permissions
//! [`std::fs::File::create`] would give it (0o666 less the umask on Unix).
//!
//! Missing parent directories are not created: create them first where that is wanted.
//! Errors are plain [`std::io::Error`]s; callers wrap them with the path in their own error type.

use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Writes `bytes` to `path` atomically (see the [module docs](self)).
///
/// # Errors
/// The [`io::Error`] of the step that failed: creating the temporary file (for example when
/// the directory is missing or not writable), writing, syncing, or renaming it into place.
pub fn write_atomic(path: impl AsRef<Path>, bytes: impl AsRef<[u8]>) -> io::Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes.as_ref()))
}

/// Writes `path` atomically through `write`, which streams the contents into a buffered
/// writer over the temporary file (see the [module docs](self)). When `write` fails, the
/// target is untouched and its error is returned.
///
/// ```
/// let path = std::env::temp_dir().join(format!("rlft-util-with-{}.jsonl", std::process::id()));
/// rlft_util::fs::write_atomic_with(&path, |w| {
///     for row in ["{\"a\":1}", "{\"a\":2}"] {
///         writeln!(w, "{row}")?;
///     }
///     Ok(())
/// })?;
/// assert_eq!(std::fs::read_to_string(&path)?.lines().count(), 2);
/// std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
/// As [`write_atomic`], or the error `write` returned.
pub fn write_atomic_with(
    path: impl AsRef<Path>,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let path = path.as_ref();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let prefix = format!(
        ".{}.",
        path.file_name().unwrap_or_default().to_string_lossy()
    );
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // What `File::create` uses; the umask still applies.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    // Dropping `tmp` on an early return removes the temporary file.
    let mut tmp = builder.tempfile_in(dir)?;
    {
        let mut w = BufWriter::new(tmp.as_file_mut());
        write(&mut w)?;
        w.flush()?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    #[cfg(unix)]
    {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TestDir(PathBuf);

    impl TestDir {
        fn new(name: &str) -> Self {
            let p = std::env::temp_dir().join(format!("rlft-util-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }
        fn names(&self) -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = TestDir::new("replace");
        let p = dir.0.join("a.json");
        write_atomic(&p, "a much longer first version").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        assert_eq!(dir.names(), vec!["a.json".to_string()]);
    }

    #[test]
    fn a_failing_writer_leaves_the_old_file_and_no_temporary() {
        let dir = TestDir::new("fail");
        let p = dir.0.join("rows.jsonl");
        write_atomic(&p, "old\n").unwrap();
        let err = write_atomic_with(&p, |w| {
            w.write_all(b"half of the new ")?;
            Err(io::Error::other("serialisation failed"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "serialisation failed");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old\n");
        assert_eq!(dir.names(), vec!["rows.jsonl".to_string()]);
    }

    #[test]
    fn a_missing_directory_is_an_error_and_is_not_created() {
        let dir = TestDir::new("missing");
        let p = dir.0.join("sub").join("a.json");
        let err = write_atomic(&p, b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(!dir.0.join("sub").exists());
    }

    #[cfg(unix)]
    #[test]
    fn permissions_match_file_create() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TestDir::new("mode");
        let plain = dir.0.join("plain");
        std::fs::File::create(&plain).unwrap();
        let atomic = dir.0.join("atomic");
        write_atomic(&atomic, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&atomic), mode(&plain));
    }
}
