//! # rlft-trainer
//!
//! Assembles the rlft crates into training loops. This first part holds the pieces every loop
//! shares, each usable alone:
//!
//! - [`OptimConfig`]: AdamW with torch's defaults, [`clip_grad_norm`] with one global norm (torch
//!   `clip_grad_norm_`, TRL `max_grad_norm`) and Hugging Face's learning-rate schedules.
//! - [`MetricsLog`] / [`StepRecord`]: the per-step JSONL log (resume-safe) and [`svg_chart`].
//! - [`pass_at_k`]: the unbiased pass@k estimator.
//! - [`write_atomic`]: checkpoint and output writes that are never half-done.
//!
//! ```
//! use rlft_trainer::{OptimConfig, pass_at_k};
//!
//! let optim = OptimConfig { lr: 1e-5, warmup_steps: 10, ..OptimConfig::default() };
//! optim.validate()?;
//! assert_eq!(optim.lr_at(5, 100), 5e-6);
//! assert!((pass_at_k(10, 3, 1) - 0.3).abs() < 1e-12);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod atomic;
mod error;
mod metrics;
mod optim;
mod passk;

pub use atomic::{write_atomic, write_json_atomic};
pub use error::{Result, TrainerError};
pub use metrics::{MetricsLog, StepRecord, read_log, svg_chart};
pub use optim::{LrSchedule, OptimConfig, clip_grad_norm};
pub use passk::pass_at_k;
