//! The multi-digit arithmetic generator.

use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::TaskError;
use crate::generate::{Difficulty, below, between, rng};
use crate::item::TaskItem;

/// An arithmetic operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArithOp {
    /// `a + b`
    Add,
    /// `a - b` (may be negative)
    Sub,
    /// `a * b`
    Mul,
}

impl ArithOp {
    /// The operator symbol.
    pub fn symbol(self) -> char {
        match self {
            ArithOp::Add => '+',
            ArithOp::Sub => '-',
            ArithOp::Mul => '*',
        }
    }

    /// Applies the operation exactly.
    pub fn apply(self, a: u64, b: u64) -> i128 {
        let (a, b) = (i128::from(a), i128::from(b));
        match self {
            ArithOp::Add => a + b,
            ArithOp::Sub => a - b,
            ArithOp::Mul => a * b,
        }
    }
}

/// Settings of the arithmetic generator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArithmeticConfig {
    /// How many items. Default 1000 (rlft's choice).
    pub count: usize,
    /// RNG seed. Default 42 (the seed of the DPS and DRIFT scripts).
    pub seed: u64,
    /// Label written to each item and used in ids. Default medium (rlft's choice).
    pub difficulty: Difficulty,
    /// Fewest digits per operand. Default 2 (medium level, rlft's choice).
    pub min_digits: u32,
    /// Most digits per operand, at most 18. Default 3 (medium level, rlft's choice).
    pub max_digits: u32,
    /// Operations to draw from, uniformly. Default `[add, sub, mul]` (medium level, rlft's
    /// choice).
    pub ops: Vec<ArithOp>,
}

impl Default for ArithmeticConfig {
    fn default() -> Self {
        Self::for_difficulty(Difficulty::Medium)
    }
}

impl ArithmeticConfig {
    /// Ranges per level (rlft's choice): easy: 1–2 digits, + and −; medium: 2–3 digits,
    /// + − ×; hard: 4–6 digits, + − ×.
    pub fn for_difficulty(difficulty: Difficulty) -> Self {
        let (min_digits, max_digits, ops) = match difficulty {
            Difficulty::Easy => (1, 2, vec![ArithOp::Add, ArithOp::Sub]),
            Difficulty::Medium => (2, 3, vec![ArithOp::Add, ArithOp::Sub, ArithOp::Mul]),
            Difficulty::Hard => (4, 6, vec![ArithOp::Add, ArithOp::Sub, ArithOp::Mul]),
        };
        Self {
            count: 1000,
            seed: 42,
            difficulty,
            min_digits,
            max_digits,
            ops,
        }
    }

    /// Checks the ranges.
    ///
    /// # Errors
    /// [`TaskError::Config`] naming the first bad field.
    pub fn validate(&self) -> Result<(), TaskError> {
        if !(1..=18).contains(&self.min_digits)
            || !(self.min_digits..=18).contains(&self.max_digits)
        {
            return Err(TaskError::Config {
                field: "arithmetic.max_digits".into(),
                reason: format!(
                    "need 1 ≤ min_digits ≤ max_digits ≤ 18, got {}..={}",
                    self.min_digits, self.max_digits
                ),
            });
        }
        if self.ops.is_empty() {
            return Err(TaskError::Config {
                field: "arithmetic.ops".into(),
                reason: "must name at least one operation, got none".into(),
            });
        }
        Ok(())
    }

    /// Generates the dataset. Item `i` has id `arithmetic-<difficulty>-s<seed>-<i:06>`, the
    /// exact result as its answer, and extra fields `a`, `b`, `op` and `difficulty`.
    ///
    /// # Errors
    /// [`TaskError::Config`] if the config is invalid.
    pub fn generate(&self) -> Result<Dataset, TaskError> {
        self.validate()?;
        let mut rng = rng(self.seed);
        let operand = |rng: &mut dyn rand::Rng| {
            let digits =
                between(rng, u64::from(self.min_digits), u64::from(self.max_digits)) as u32;
            let lo = if digits == 1 {
                0
            } else {
                10u64.pow(digits - 1)
            };
            between(rng, lo, 10u64.pow(digits) - 1)
        };
        let mut items = Vec::with_capacity(self.count);
        for index in 0..self.count {
            let a = operand(&mut rng);
            let b = operand(&mut rng);
            let op = self.ops[below(&mut rng, self.ops.len() as u64) as usize];
            let prompt = format!(
                "What is {a} {} {b}? Give only the final number inside <answer></answer> tags.",
                op.symbol()
            );
            items.push(
                TaskItem::new(
                    format!(
                        "arithmetic-{}-s{}-{index:06}",
                        self.difficulty.as_str(),
                        self.seed
                    ),
                    prompt,
                    op.apply(a, b).to_string(),
                )
                .with_meta("a", a)
                .with_meta("b", b)
                .with_meta("op", op.symbol().to_string())
                .with_meta("difficulty", self.difficulty.as_str()),
            );
        }
        Dataset::from_items(items)
    }
}
