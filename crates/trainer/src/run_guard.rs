//! Run-directory safety: one process per run directory (an OS file lock held for the run's
//! lifetime), a fingerprint of what a run was started with (its config, model and data) that a
//! resume must match, explicit `--force-resume` / `--restart`, and a run directory never inside
//! the model it reads.
//!
//! A command calls [`RunGuard::open`] before it writes anything into the run directory
//! (`config.json` included): the lock is taken first, then the recorded fingerprint is compared
//! with the new one, and only then is the new one recorded.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::atomic::write_json_atomic;
use crate::error::{Result, TrainerError};

/// The lock file in a run directory; it holds the id of the process that holds the lock.
pub const LOCK_FILE: &str = ".rlft.lock";

/// The fingerprint file in a run directory.
pub const FINGERPRINT_FILE: &str = "fingerprint.json";

/// What [`RunGuard::open`] does when the run directory holds a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResumePolicy {
    /// Resume when the fingerprints match; refuse, listing the differences, otherwise.
    /// Default.
    #[default]
    Check,
    /// Resume even when the fingerprints differ (`--force-resume`); the new fingerprint is
    /// recorded and the differences are printed.
    Force,
    /// Remove the run's checkpoints, metrics and outputs and start over (`--restart`).
    Restart,
}

/// What a run was started with: its config (flattened to dotted keys, so differences name the
/// key) and the SHA-256 of each input file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Config values by dotted key (`train.grpo.optim.lr`), as compact JSON.
    pub config: BTreeMap<String, String>,
    /// Input files by name (`model/config.json`, `data`): `sha256:<hex> (<n> bytes)`.
    pub inputs: BTreeMap<String, String>,
}

/// File names of a model directory that [`Fingerprint::path`] reads: what loading a model
/// reads (configs, weights, tokenizer and template files).
fn model_file(name: &str) -> bool {
    [".json", ".safetensors", ".jinja", ".txt", ".model"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

impl Fingerprint {
    /// The fingerprint of `config` (any serialisable value), without the keys listed in
    /// `ignore` (a key is ignored when it equals an entry or starts with the entry and a dot;
    /// an entry `*.name` ignores `name` at any depth).
    ///
    /// # Errors
    /// [`TrainerError::Config`] when the config does not serialise to JSON.
    pub fn of_config<T: Serialize>(config: &T, ignore: &[&str]) -> Result<Self> {
        let value = serde_json::to_value(config).map_err(|e| TrainerError::Config {
            field: "config",
            reason: format!("cannot be fingerprinted: {e}"),
        })?;
        let mut flat = BTreeMap::new();
        flatten("", &value, &mut flat);
        flat.retain(|k, _| !ignored(k, ignore));
        Ok(Self {
            config: flat,
            inputs: BTreeMap::new(),
        })
    }

    /// Adds the contents of `path` under `name`: a file as one entry `name`; a directory as
    /// one entry `name/<file>` per model file in it (`.json`, `.safetensors`, `.jinja`,
    /// `.txt`, `.model`; not recursive, hidden files skipped).
    ///
    /// # Errors
    /// [`TrainerError::Io`] when a file cannot be read.
    pub fn path(self, name: &str, path: &Path) -> Result<Self> {
        self.path_with(name, path, model_file)
    }

    /// As [`path`](Self::path), with `keep` choosing the files of a directory by name (e.g.
    /// the `.jsonl` shards of a collection).
    ///
    /// # Errors
    /// [`TrainerError::Io`] when a file cannot be read.
    pub fn path_with(
        mut self,
        name: &str,
        path: &Path,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Self> {
        if path.is_dir() {
            let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(path)
                .map_err(|source| TrainerError::Io {
                    op: "list",
                    path: path.to_path_buf(),
                    source,
                })?
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
                .filter(|(n, _)| !n.starts_with('.') && keep(n))
                .collect();
            files.sort();
            for (n, p) in files {
                self.inputs.insert(format!("{name}/{n}"), hash_file(&p)?);
            }
        } else {
            self.inputs.insert(name.to_string(), hash_file(path)?);
        }
        Ok(self)
    }

    /// What differs from `recorded` (the fingerprint a run was started with), one line per
    /// difference: `config train.grpo.optim.lr: 0.01 → 0.02`, `data: contents changed`.
    pub fn changes_since(&self, recorded: &Fingerprint) -> Vec<String> {
        let mut out = Vec::new();
        diff("config ", &recorded.config, &self.config, true, &mut out);
        diff("", &recorded.inputs, &self.inputs, false, &mut out);
        out
    }
}

fn ignored(key: &str, ignore: &[&str]) -> bool {
    ignore.iter().any(|i| {
        if let Some(leaf) = i.strip_prefix("*.") {
            key == leaf || key.ends_with(&format!(".{leaf}")) || key.contains(&format!(".{leaf}."))
        } else {
            key == *i || key.starts_with(&format!("{i}."))
        }
    })
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match v {
        serde_json::Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

fn diff(
    label: &str,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
    values: bool,
    out: &mut Vec<String>,
) {
    for (k, v) in new {
        match old.get(k) {
            Some(o) if o == v => {}
            Some(o) if values => out.push(format!("{label}{k}: {o} → {v}")),
            Some(_) => out.push(format!("{label}{k}: contents changed")),
            None if values => out.push(format!("{label}{k}: (unset) → {v}")),
            None => out.push(format!("{label}{k}: new")),
        }
    }
    for (k, o) in old {
        if !new.contains_key(k) {
            if values {
                out.push(format!("{label}{k}: {o} → (unset)"));
            } else {
                out.push(format!("{label}{k}: gone"));
            }
        }
    }
}

fn hash_file(path: &Path) -> Result<String> {
    let io = |op| {
        move |source| TrainerError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    };
    let mut f = File::open(path).map_err(io("open"))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(io("read"))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sha256:{hex} ({n} bytes)"))
}

/// An exclusive OS lock on a directory (the file [`LOCK_FILE`] in it), held until dropped or
/// the process ends, however it ends.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    dir: PathBuf,
}

impl RunLock {
    /// Creates `dir` if needed and locks it.
    ///
    /// # Errors
    /// [`TrainerError::RunLocked`] when another process (or another lock in this one) holds
    /// it; [`TrainerError::Io`] when the directory or lock file cannot be created.
    pub fn acquire(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| TrainerError::Io {
            op: "create",
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| TrainerError::Io {
                op: "open",
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(TrainerError::RunLocked {
                    dir: dir.to_path_buf(),
                    holder: holder.trim().parse().ok(),
                });
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(TrainerError::Io {
                    op: "lock",
                    path,
                    source,
                });
            }
        }
        // Best effort: the id only makes the message of a refused second run more helpful.
        let _ = file
            .set_len(0)
            .and_then(|()| write!(file, "{}", std::process::id()))
            .and_then(|()| file.flush());
        Ok(Self {
            file,
            dir: dir.to_path_buf(),
        })
    }

    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Files and directories of a run directory that rlft writes, which `--restart` removes: the
/// exact names, and names starting with `ckpt-`, `.ckpt-`, `shard-` or `eval_` (held-out
/// reports and samples).
const RUN_FILES: [&str; 14] = [
    "latest.json",
    "metrics.jsonl",
    FINGERPRINT_FILE,
    "config.json",
    "summary.json",
    "eval_before.json",
    "curves.svg",
    "report.md",
    "final",
    ".final.tmp",
    "collect.json",
    "eval.json",
    "collect",
    "train",
];

fn run_file(name: &str) -> bool {
    RUN_FILES.contains(&name)
        || ["ckpt-", ".ckpt-", "shard-", "eval_"]
            .iter()
            .any(|p| name.starts_with(p))
}

/// Checks `fingerprint` against the one recorded in `dir` and records it; `dir` must be locked
/// by the caller ([`RunLock`]). `resumable` says whether `dir` holds state a run would resume
/// (a checkpoint, collected shards); without it nothing is compared. Returns the differences
/// that [`ResumePolicy::Force`] accepted (empty otherwise).
///
/// # Errors
/// [`TrainerError::FingerprintMismatch`] listing the differences under
/// [`ResumePolicy::Check`]; [`TrainerError::Io`] / [`TrainerError::Json`].
pub fn check_fingerprint(
    dir: &Path,
    fingerprint: &Fingerprint,
    resumable: bool,
    policy: ResumePolicy,
) -> Result<Vec<String>> {
    let path = dir.join(FINGERPRINT_FILE);
    let mut accepted = Vec::new();
    if policy == ResumePolicy::Restart {
        clear_run(dir)?;
    } else if resumable {
        let changes = if path.exists() {
            let bytes = std::fs::read(&path).map_err(|source| TrainerError::Io {
                op: "read",
                path: path.clone(),
                source,
            })?;
            let recorded: Fingerprint =
                serde_json::from_slice(&bytes).map_err(|source| TrainerError::Json {
                    path: path.clone(),
                    source,
                })?;
            fingerprint.changes_since(&recorded)
        } else {
            vec![format!(
                "{FINGERPRINT_FILE}: missing (the run was started by an older rlft)"
            )]
        };
        if !changes.is_empty() {
            if policy == ResumePolicy::Check {
                return Err(TrainerError::FingerprintMismatch {
                    dir: dir.to_path_buf(),
                    changes,
                });
            }
            accepted = changes;
        }
    }
    write_json_atomic(&path, fingerprint)?;
    Ok(accepted)
}

/// Removes what a run wrote in `dir` (checkpoints, metrics, outputs; see `RUN_FILES`),
/// leaving anything else, and the lock, in place.
fn clear_run(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(TrainerError::Io {
                op: "list",
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        if !run_file(&name) {
            continue;
        }
        let p = e.path();
        let r = if e.file_type().is_ok_and(|t| t.is_dir()) {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        r.map_err(|source| TrainerError::Io {
            op: "remove",
            path: p,
            source,
        })?;
    }
    Ok(())
}

/// `path` made absolute and free of `.`/`..` and symlinks as far as it exists (the missing
/// tail is appended as written, lexically normalised).
fn resolved(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut norm = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                norm.pop();
            }
            Component::CurDir => {}
            other => norm.push(other),
        }
    }
    let mut existing = norm.clone();
    let mut tail = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            let mut p = c;
            for t in tail.iter().rev() {
                p.push(t);
            }
            return p;
        }
        match (
            existing.file_name().map(|n| n.to_os_string()),
            existing.parent(),
        ) {
            (Some(n), Some(parent)) => {
                tail.push(n);
                existing = parent.to_path_buf();
            }
            _ => return norm,
        }
    }
}

/// Refuses a run directory `out` equal to or inside the model directory `model` (a run would
/// write its `config.json` and outputs over the model's files).
///
/// # Errors
/// [`TrainerError::OutInsideModel`].
pub fn check_out_dir(out: &Path, model: &Path) -> Result<()> {
    let (o, m) = (resolved(out), resolved(model));
    if o.starts_with(&m) {
        return Err(TrainerError::OutInsideModel {
            out: out.to_path_buf(),
            model: model.to_path_buf(),
        });
    }
    Ok(())
}

/// A locked run directory whose fingerprint was checked and recorded: see the
/// [module docs](self). Hold it for the run's lifetime.
#[derive(Debug)]
pub struct RunGuard {
    lock: RunLock,
    accepted: Vec<String>,
}

impl RunGuard {
    /// Refuses `dir` inside any of `models` ([`check_out_dir`]), locks it ([`RunLock`]) and
    /// checks and records `fingerprint` ([`check_fingerprint`]); a checkpoint (`latest.json`)
    /// in `dir` makes it resumable.
    ///
    /// # Errors
    /// As [`check_out_dir`], [`RunLock::acquire`] and [`check_fingerprint`].
    pub fn open(
        dir: &Path,
        models: &[&Path],
        fingerprint: &Fingerprint,
        policy: ResumePolicy,
    ) -> Result<Self> {
        for m in models {
            check_out_dir(dir, m)?;
        }
        let lock = RunLock::acquire(dir)?;
        let resumable = dir.join("latest.json").exists();
        let accepted = check_fingerprint(dir, fingerprint, resumable, policy)?;
        Ok(Self { lock, accepted })
    }

    /// The locked run directory.
    pub fn dir(&self) -> &Path {
        self.lock.dir()
    }

    /// The differences `--force-resume` accepted (empty when the fingerprints matched).
    pub fn accepted_changes(&self) -> &[String] {
        &self.accepted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rlft-guard-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[derive(Serialize)]
    struct Cfg {
        out: String,
        train: Train,
    }

    #[derive(Serialize)]
    struct Train {
        lr: f64,
        seed: u64,
        optim: Optim,
    }

    #[derive(Serialize)]
    struct Optim {
        nan_policy: String,
    }

    fn cfg(out: &str, lr: f64, policy: &str) -> Cfg {
        Cfg {
            out: out.into(),
            train: Train {
                lr,
                seed: 1,
                optim: Optim {
                    nan_policy: policy.into(),
                },
            },
        }
    }

    #[test]
    fn changes_name_the_key_and_the_file() {
        let dir = tmp("diff");
        std::fs::write(dir.join("data.jsonl"), "a\n").unwrap();
        let a = Fingerprint::of_config(&cfg("x", 0.1, "stop"), &["out", "*.nan_policy"])
            .unwrap()
            .path("data", &dir.join("data.jsonl"))
            .unwrap();
        std::fs::write(dir.join("data.jsonl"), "b\n").unwrap();
        let b = Fingerprint::of_config(&cfg("y", 0.2, "skip-step"), &["out", "*.nan_policy"])
            .unwrap()
            .path("data", &dir.join("data.jsonl"))
            .unwrap();
        assert_eq!(
            b.changes_since(&a),
            vec![
                "config train.lr: 0.1 → 0.2".to_string(),
                "data: contents changed".to_string()
            ]
        );
        assert!(a.changes_since(&a).is_empty());
    }

    #[test]
    fn a_mismatch_is_refused_forced_or_restarted() {
        let dir = tmp("policy");
        let a = Fingerprint::of_config(&cfg("x", 0.1, "stop"), &[]).unwrap();
        let b = Fingerprint::of_config(&cfg("x", 0.2, "stop"), &[]).unwrap();
        assert!(
            check_fingerprint(&dir, &a, false, ResumePolicy::Check)
                .unwrap()
                .is_empty()
        );
        // Nothing to resume: a new fingerprint is simply recorded.
        assert!(
            check_fingerprint(&dir, &b, false, ResumePolicy::Check)
                .unwrap()
                .is_empty()
        );
        std::fs::write(dir.join("latest.json"), "{}").unwrap();
        std::fs::create_dir_all(dir.join("ckpt-000001")).unwrap();
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        let err = check_fingerprint(&dir, &a, true, ResumePolicy::Check).unwrap_err();
        assert!(
            matches!(&err, TrainerError::FingerprintMismatch { changes, .. }
            if changes == &vec!["config train.lr: 0.2 → 0.1".to_string()])
        );
        let msg = err.to_string();
        assert!(
            msg.contains("--restart") && msg.contains("--force-resume"),
            "{msg}"
        );
        let forced = check_fingerprint(&dir, &a, true, ResumePolicy::Force).unwrap();
        assert_eq!(forced.len(), 1);
        assert!(
            check_fingerprint(&dir, &a, true, ResumePolicy::Check)
                .unwrap()
                .is_empty()
        );
        check_fingerprint(&dir, &b, true, ResumePolicy::Restart).unwrap();
        assert!(!dir.join("latest.json").exists() && !dir.join("ckpt-000001").exists());
        assert!(
            dir.join("notes.txt").exists(),
            "restart removes only run files"
        );
    }

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tmp("lock");
        let first = RunLock::acquire(&dir).unwrap();
        let err = RunLock::acquire(&dir).unwrap_err();
        assert!(
            matches!(err, TrainerError::RunLocked { holder: Some(pid), .. } if pid == std::process::id()),
            "{err}"
        );
        drop(first);
        RunLock::acquire(&dir).unwrap();
    }

    #[test]
    fn out_inside_or_equal_to_the_model_is_refused() {
        let dir = tmp("inside");
        let model = dir.join("model");
        std::fs::create_dir_all(&model).unwrap();
        for bad in [
            model.clone(),
            model.join("run"),
            dir.join("x/../model/./a/b"),
        ] {
            assert!(
                matches!(
                    check_out_dir(&bad, &model),
                    Err(TrainerError::OutInsideModel { .. })
                ),
                "{}",
                bad.display()
            );
        }
        check_out_dir(&dir.join("run"), &model).unwrap();
        check_out_dir(&dir.join("model-run"), &model).unwrap();
    }
}
