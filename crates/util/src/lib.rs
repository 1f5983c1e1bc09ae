//! # rlft-util
//!
//! Small helpers shared by rlft crates that otherwise share no dependency:
//!
//! - [`seed`]: how every seed of a run is derived from another (SplitMix64 mixing). The values
//!   are fixed forever; tests pin them, because resume and the demo depend on them.
//! - [`fs::write_atomic`] and [`fs::write_atomic_with`]: write a file so that a reader sees the
//!   old contents or the new, never half of them (temporary file in the same directory, fsync,
//!   rename).
//! - [`lines::Lines`] and [`lines::read_text`]: user text files read with a cap per line (or
//!   per file), a UTF-8 byte-order mark skipped, and invalid UTF-8 named by line.
//!
//! ```
//! use rlft_util::{fs, seed};
//!
//! // The seed of stream 1 at step 7 of a run seeded with 42, and the SplitMix64 reference value.
//! assert_eq!(seed::step_seed(42, 7, 1), 0x3063_c4e5_b3f0_dad1);
//! assert_eq!(seed::splitmix64(0), 0xe220_a839_7b1d_cdaf);
//!
//! let dir = std::env::temp_dir().join(format!("rlft-util-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("latest.json");
//! fs::write_atomic(&path, b"{\"step\": 1}")?;
//! fs::write_atomic(&path, b"{\"step\": 2}")?;
//! assert_eq!(std::fs::read_to_string(&path)?, "{\"step\": 2}");
//! std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![doc(test(attr(deny(warnings))))]

pub mod fs;
pub mod lines;
pub mod seed;
