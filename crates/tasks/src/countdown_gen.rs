//! The Countdown generator: 3–4 numbers and a target that is reachable by construction.

use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::TaskError;
use crate::generate::{Difficulty, below, between, rng};
use crate::item::TaskItem;
use crate::rational::Rational;

/// Settings of the Countdown generator. Build one with [`CountdownConfig::for_difficulty`]
/// or start from the default (medium) and change fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CountdownConfig {
    /// How many items. Default 1000 (rlft's choice).
    pub count: usize,
    /// RNG seed. Default 42 (the seed of the DPS and DRIFT scripts).
    pub seed: u64,
    /// Label written to each item's `difficulty` field and used in ids. Default medium
    /// (rlft's choice).
    pub difficulty: Difficulty,
    /// Fewest numbers per problem. Default 3 (Countdown-Tasks-3to4).
    pub min_numbers: usize,
    /// Most numbers per problem, at most 6. Default 4 (Countdown-Tasks-3to4).
    pub max_numbers: usize,
    /// Smallest number. Default 1 (Countdown numbers are positive).
    pub min_number: u64,
    /// Largest number. Default 99: rlft's choice, two-digit numbers as in
    /// Countdown-Tasks-3to4's examples.
    pub max_number: u64,
    /// Smallest target. Default 1 (rlft's choice: positive targets).
    pub min_target: i64,
    /// Largest target. Default 99: rlft's choice, matching the number range.
    pub max_target: i64,
}

impl Default for CountdownConfig {
    fn default() -> Self {
        Self::for_difficulty(Difficulty::Medium)
    }
}

/// Most draws per item before the generator gives up on a config.
const MAX_ATTEMPTS: usize = 100_000;

impl CountdownConfig {
    /// Ranges per level (rlft's choice):
    /// easy: 3 numbers in 1..=20, targets 1..=50; medium: 3–4 numbers in 1..=99,
    /// targets 1..=99; hard: 4 numbers in 1..=99, targets 100..=999.
    pub fn for_difficulty(difficulty: Difficulty) -> Self {
        let (min_numbers, max_numbers, max_number, min_target, max_target) = match difficulty {
            Difficulty::Easy => (3, 3, 20, 1, 50),
            Difficulty::Medium => (3, 4, 99, 1, 99),
            Difficulty::Hard => (4, 4, 99, 100, 999),
        };
        Self {
            count: 1000,
            seed: 42,
            difficulty,
            min_numbers,
            max_numbers,
            min_number: 1,
            max_number,
            min_target,
            max_target,
        }
    }

    /// Checks the ranges.
    ///
    /// # Errors
    /// [`TaskError::Config`] naming the first bad field.
    pub fn validate(&self) -> Result<(), TaskError> {
        let err = |field: &str, reason: String| {
            Err(TaskError::Config {
                field: format!("countdown.{field}"),
                reason,
            })
        };
        if !(1..=6).contains(&self.min_numbers) || self.max_numbers > 6 {
            return err(
                "min_numbers",
                format!(
                    "numbers per problem must lie in 1..=6, got {}..={}",
                    self.min_numbers, self.max_numbers
                ),
            );
        }
        if self.min_numbers > self.max_numbers {
            return err(
                "max_numbers",
                format!(
                    "must be ≥ min_numbers ({}), got {}",
                    self.min_numbers, self.max_numbers
                ),
            );
        }
        if self.min_number == 0 || self.min_number > self.max_number || self.max_number > 1_000_000
        {
            return err(
                "max_number",
                format!(
                    "need 1 ≤ min_number ≤ max_number ≤ 1000000, got {}..={}",
                    self.min_number, self.max_number
                ),
            );
        }
        if self.min_target > self.max_target {
            return err(
                "max_target",
                format!(
                    "must be ≥ min_target ({}), got {}",
                    self.min_target, self.max_target
                ),
            );
        }
        Ok(())
    }

    /// Generates the dataset. Item `i` has id `countdown-<difficulty>-s<seed>-<i:06>`, a
    /// prompt asking for the equation in `<answer>` tags, the target as its answer, and the
    /// extra fields `nums`, `target`, `difficulty` and `solution` (one expression that
    /// reaches the target; there may be others).
    ///
    /// Each problem is drawn by picking the numbers, then combining them in a random order
    /// with random operations until one value is left; it is kept only if that value is an
    /// integer in the target range. So every target is reachable with each number used
    /// exactly once, and intermediate values may be negative or fractional (as the verifier
    /// allows).
    ///
    /// # Errors
    /// [`TaskError::Config`] if the config is invalid or no target in range turns up after
    /// 100000 draws for one item.
    pub fn generate(&self) -> Result<Dataset, TaskError> {
        self.validate()?;
        let mut rng = rng(self.seed);
        let mut items = Vec::with_capacity(self.count);
        for index in 0..self.count {
            let (nums, target, solution) = self.draw(&mut rng)?;
            let prompt = countdown_prompt(&nums, target);
            let item = TaskItem::new(
                format!(
                    "countdown-{}-s{}-{index:06}",
                    self.difficulty.as_str(),
                    self.seed
                ),
                prompt,
                target.to_string(),
            )
            .with_meta("nums", nums)
            .with_meta("target", target)
            .with_meta("difficulty", self.difficulty.as_str())
            .with_meta("solution", solution);
            items.push(item);
        }
        Dataset::from_items(items)
    }

    fn draw(&self, rng: &mut dyn rand::Rng) -> Result<(Vec<u64>, i64, String), TaskError> {
        'attempt: for _ in 0..MAX_ATTEMPTS {
            let n = between(rng, self.min_numbers as u64, self.max_numbers as u64) as usize;
            let nums: Vec<u64> = (0..n)
                .map(|_| between(rng, self.min_number, self.max_number))
                .collect();
            let mut pool: Vec<(Rational, String)> = nums
                .iter()
                .map(|&x| (Rational::int(i128::from(x)), x.to_string()))
                .collect();
            while pool.len() > 1 {
                let i = below(rng, pool.len() as u64) as usize;
                let mut j = below(rng, pool.len() as u64 - 1) as usize;
                if j >= i {
                    j += 1;
                }
                let (a, b) = (&pool[i], &pool[j]);
                let (value, sym) = match below(rng, 4) {
                    0 => (a.0.checked_add(b.0), '+'),
                    1 => (a.0.checked_sub(b.0), '-'),
                    2 => (a.0.checked_mul(b.0), '*'),
                    _ => (a.0.checked_div(b.0), '/'),
                };
                let Some(value) = value else {
                    continue 'attempt;
                };
                let text = format!("({} {sym} {})", a.1, b.1);
                let (hi, lo) = (i.max(j), i.min(j));
                pool.swap_remove(hi);
                pool.swap_remove(lo);
                pool.push((value, text));
            }
            let (value, text) = pool.pop().unwrap_or((Rational::int(0), String::new()));
            if !value.is_integer() {
                continue;
            }
            let Ok(target) = i64::try_from(value.numer()) else {
                continue;
            };
            if (self.min_target..=self.max_target).contains(&target) {
                let solution = text
                    .strip_prefix('(')
                    .and_then(|t| t.strip_suffix(')'))
                    .map(str::to_string)
                    .unwrap_or(text);
                return Ok((nums, target, solution));
            }
        }
        Err(TaskError::Config {
            field: "countdown".into(),
            reason: format!(
                "no target in {}..={} reached after {MAX_ATTEMPTS} draws",
                self.min_target, self.max_target
            ),
        })
    }
}

/// The Countdown prompt (after TinyZero's template for Countdown-Tasks-3to4).
pub fn countdown_prompt(nums: &[u64], target: i64) -> String {
    let list = nums
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "Using the numbers [{list}], create an equation that equals {target}. You can use basic \
         arithmetic operations (+, -, *, /) and each number must be used exactly once. Show \
         your work in <think> </think> tags. And return the final equation in <answer> \
         </answer> tags, for example <answer> (1 + 2) / 3 </answer>."
    )
}
