//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A temporary directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("rlft-tasks-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write fixture");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Exact fractions for the oracles, independent of the crate's `Rational`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frac {
    pub n: i128,
    pub d: i128,
}

fn gcd(a: i128, b: i128) -> i128 {
    if b == 0 { a.abs() } else { gcd(b, a % b) }
}

impl Frac {
    pub fn new(n: i128, d: i128) -> Option<Frac> {
        if d == 0 {
            return None;
        }
        let g = gcd(n, d).max(1);
        let s = if d < 0 { -1 } else { 1 };
        Some(Frac {
            n: s * n / g,
            d: s * d / g,
        })
    }
    pub fn add(self, o: Frac) -> Option<Frac> {
        Frac::new(
            self.n
                .checked_mul(o.d)?
                .checked_add(o.n.checked_mul(self.d)?)?,
            self.d.checked_mul(o.d)?,
        )
    }
    pub fn sub(self, o: Frac) -> Option<Frac> {
        Frac::new(
            self.n
                .checked_mul(o.d)?
                .checked_sub(o.n.checked_mul(self.d)?)?,
            self.d.checked_mul(o.d)?,
        )
    }
    pub fn mul(self, o: Frac) -> Option<Frac> {
        Frac::new(self.n.checked_mul(o.n)?, self.d.checked_mul(o.d)?)
    }
    pub fn div(self, o: Frac) -> Option<Frac> {
        if o.n == 0 {
            return None;
        }
        Frac::new(self.n.checked_mul(o.d)?, self.d.checked_mul(o.n)?)
    }
}

/// Brute force: can `nums`, each used exactly once, reach `target` with + - * / over
/// exact fractions? Tries every pair and every operation recursively (both operand orders).
pub fn countdown_solvable(nums: &[u64], target: i64) -> bool {
    fn go(vals: &[Frac], target: Frac) -> bool {
        if vals.len() == 1 {
            return vals[0] == target;
        }
        for i in 0..vals.len() {
            for j in 0..vals.len() {
                if i == j {
                    continue;
                }
                let (a, b) = (vals[i], vals[j]);
                for r in [a.add(b), a.sub(b), a.mul(b), a.div(b)]
                    .into_iter()
                    .flatten()
                {
                    let mut next: Vec<Frac> = vals
                        .iter()
                        .enumerate()
                        .filter(|(k, _)| *k != i && *k != j)
                        .map(|(_, v)| *v)
                        .collect();
                    next.push(r);
                    if go(&next, target) {
                        return true;
                    }
                }
            }
        }
        false
    }
    let vals: Vec<Frac> = nums.iter().map(|&x| Frac { n: x as i128, d: 1 }).collect();
    go(
        &vals,
        Frac {
            n: target as i128,
            d: 1,
        },
    )
}
