//! Per-step metrics: a JSONL log that survives resume, an SVG chart and a markdown report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::error::{Result, TrainerError};

/// One line of the metrics log: the step and named values (`reward`, `accuracy`, `loss`, `kl`,
/// `entropy`, `grad_norm`, `lr`, `rollouts`, `tokens_per_s`, …).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StepRecord {
    /// Optimiser step (0-based) the values belong to.
    pub step: usize,
    /// Named values; NaN is written as `null`.
    #[serde(flatten)]
    pub values: BTreeMap<String, Option<f64>>,
}

impl StepRecord {
    /// A record for `step` with no values yet.
    pub fn new(step: usize) -> Self {
        Self {
            step,
            values: BTreeMap::new(),
        }
    }

    /// Sets a value (NaN and infinities are stored as missing).
    pub fn set(&mut self, name: impl Into<String>, value: f64) -> &mut Self {
        self.values
            .insert(name.into(), value.is_finite().then_some(value));
        self
    }

    /// A value, if present and finite.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.get(name).copied().flatten()
    }
}

/// An append-only JSONL file of [`StepRecord`]s.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    file: std::fs::File,
}

impl MetricsLog {
    /// Opens `path` for a run that has completed `completed_steps` steps: lines of later steps
    /// (written after the last checkpoint of a killed run) are dropped, so a resumed run's log
    /// equals an uninterrupted one's. `completed_steps = 0` starts a new file.
    ///
    /// # Errors
    /// [`TrainerError::Io`] or, for a corrupt existing line, [`TrainerError::Json`].
    pub fn open(path: &Path, completed_steps: usize) -> Result<Self> {
        let mut kept = Vec::new();
        if completed_steps > 0 && path.exists() {
            for rec in read_log(path)? {
                if rec.step < completed_steps {
                    kept.push(rec);
                }
            }
        }
        let mut text = String::new();
        for rec in &kept {
            text.push_str(&to_line(path, rec)?);
        }
        write_atomic(path, text.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|source| TrainerError::Io {
                op: "open",
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends one record and flushes it.
    ///
    /// # Errors
    /// [`TrainerError::Io`].
    pub fn append(&mut self, rec: &StepRecord) -> Result<()> {
        let line = to_line(&self.path, rec)?;
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.flush())
            .map_err(|source| TrainerError::Io {
                op: "append to",
                path: self.path.clone(),
                source,
            })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn to_line(path: &Path, rec: &StepRecord) -> Result<String> {
    let mut s = serde_json::to_string(rec).map_err(|source| TrainerError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    s.push('\n');
    Ok(s)
}

/// Reads a metrics log. A last line without its newline that does not parse is the torn end
/// of a write the process died in, and is dropped (the run resumes before it); any other bad
/// line is an error naming it.
///
/// # Errors
/// [`TrainerError::Io`]; [`TrainerError::JsonLine`] naming the file and line of a malformed
/// line.
pub fn read_log(path: &Path) -> Result<Vec<StepRecord>> {
    let bytes = std::fs::read(path).map_err(|source| TrainerError::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    let mut lines = bytes.split(|&b| b == b'\n').enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        // `split` yields what follows the last newline as a final piece: empty for a complete
        // file, the torn line otherwise.
        let unterminated = lines.peek().is_none();
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice(line) {
            Ok(rec) => out.push(rec),
            Err(_) if unterminated => {}
            Err(source) => {
                return Err(TrainerError::JsonLine {
                    path: path.to_path_buf(),
                    line: i + 1,
                    source,
                });
            }
        }
    }
    Ok(out)
}

/// An SVG line chart of the named metrics against the step, one panel per metric.
pub fn svg_chart(records: &[StepRecord], metrics: &[&str], title: &str) -> String {
    const W: f64 = 420.0;
    const H: f64 = 220.0;
    const PAD: f64 = 50.0;
    let panels: Vec<(&str, Vec<(f64, f64)>)> = metrics
        .iter()
        .map(|m| {
            let pts = records
                .iter()
                .filter_map(|r| r.get(m).map(|v| (r.step as f64, v)))
                .collect();
            (*m, pts)
        })
        .collect();
    let cols = 2usize;
    let rows = panels.len().div_ceil(cols).max(1);
    let (width, height) = (W * cols as f64, H * rows as f64 + 30.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{}" y="18" font-size="14" text-anchor="middle">{}</text>"#,
        width / 2.0,
        escape(title)
    );
    for (i, (name, pts)) in panels.iter().enumerate() {
        let (ox, oy) = ((i % cols) as f64 * W, 30.0 + (i / cols) as f64 * H);
        let (x0, x1) = bounds(pts.iter().map(|p| p.0));
        let (y0, y1) = bounds(pts.iter().map(|p| p.1));
        let sx = |x: f64| ox + PAD + (x - x0) / (x1 - x0) * (W - 2.0 * PAD);
        let sy = |y: f64| oy + H - PAD + (y0 - y) / (y1 - y0) * (H - 2.0 * PAD);
        let _ = write!(
            s,
            r##"<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
            ox + PAD,
            oy + PAD,
            W - 2.0 * PAD,
            H - 2.0 * PAD
        );
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            ox + W / 2.0,
            oy + PAD - 8.0,
            escape(name)
        );
        for (v, y) in [(y0, oy + H - PAD), (y1, oy + PAD)] {
            let _ = write!(
                s,
                r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                ox + PAD - 4.0,
                y + 4.0,
                fmt_num(v)
            );
        }
        for (v, x) in [(x0, ox + PAD), (x1, ox + W - PAD)] {
            let _ = write!(
                s,
                r#"<text x="{x}" y="{}" text-anchor="middle">{}</text>"#,
                oy + H - PAD + 14.0,
                fmt_num(v)
            );
        }
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#666">step</text>"##,
            ox + W / 2.0,
            oy + H - PAD + 14.0
        );
        if !pts.is_empty() {
            let path: Vec<String> = pts
                .iter()
                .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
                .collect();
            let _ = write!(
                s,
                r##"<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{}"/>"##,
                path.join(" ")
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

fn bounds(xs: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| {
        (l.min(x), h.max(x))
    });
    if !lo.is_finite() {
        (0.0, 1.0)
    } else if hi - lo < 1e-12 {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    }
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e9 {
        // Steps, rollouts, tokens: whole numbers, with thousands separated by a thin space.
        let digits = format!("{}", v.abs() as u64);
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push('\u{2009}');
            }
            out.push(c);
        }
        if v < 0.0 { format!("-{out}") } else { out }
    } else if v.abs() >= 1000.0 || (v != 0.0 && v.abs() < 0.01) {
        format!("{v:.2e}")
    } else {
        format!("{v:.3}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_drops_lines_after_the_checkpoint() {
        let dir = std::env::temp_dir().join(format!("rlft-metrics-{}", std::process::id()));
        let p = dir.join("metrics.jsonl");
        let mut log = MetricsLog::open(&p, 0).unwrap();
        for step in 0..5 {
            let mut r = StepRecord::new(step);
            r.set("loss", step as f64).set("kl", f64::NAN);
            log.append(&r).unwrap();
        }
        drop(log);
        let mut log = MetricsLog::open(&p, 3).unwrap();
        log.append(StepRecord::new(3).set("loss", 30.0)).unwrap();
        let recs = read_log(&p).unwrap();
        assert_eq!(
            recs.iter().map(|r| r.step).collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
        assert_eq!(recs[3].get("loss"), Some(30.0));
        assert_eq!(recs[0].get("kl"), None);
        assert!(std::fs::read_to_string(&p).unwrap().contains("\"kl\":null"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn malformed_line_is_an_error_naming_it_and_a_torn_last_line_is_dropped() {
        let dir = std::env::temp_dir().join(format!("rlft-metrics-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("m.jsonl");
        std::fs::write(&p, "{\"step\":0}\nnot json\n").unwrap();
        assert!(matches!(
            read_log(&p),
            Err(TrainerError::JsonLine { line: 2, .. })
        ));
        // A torn last line (no newline) is dropped, and a resume rewrites the log without it.
        std::fs::write(&p, "{\"step\":0}\n\n{\"step\":1}\n{\"step\":2,\"lo").unwrap();
        assert_eq!(read_log(&p).unwrap().len(), 2);
        drop(MetricsLog::open(&p, 2).unwrap());
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"step\":0}\n{\"step\":1}\n"
        );
        // Terminated, the same bytes are corruption, named by line.
        std::fs::write(&p, "{\"step\":0}\n\n{\"step\":1}\n{\"step\":2,\"lo\n").unwrap();
        let err = read_log(&p).unwrap_err().to_string();
        assert!(err.contains("m.jsonl:4:"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn chart_has_one_polyline_per_metric_with_data() {
        let recs: Vec<StepRecord> = (0..4)
            .map(|s| {
                let mut r = StepRecord::new(s);
                r.set("accuracy", s as f64 / 4.0).set("loss", 1.0);
                r
            })
            .collect();
        let svg = svg_chart(&recs, &["accuracy", "loss", "missing"], "run <1>");
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("run &lt;1&gt;"));
        assert!(svg.starts_with("<svg"));
    }
}
