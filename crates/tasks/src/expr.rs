//! A safe parser and exact evaluator for Countdown expressions.
//!
//! Grammar (whitespace between tokens is ignored):
//!
//! ```text
//! expr   := term   (('+' | '-' | '−') term)*
//! term   := factor (('*' | '×' | '·' | '/' | '÷') factor)*
//! factor := integer | '(' expr ')'
//! ```
//!
//! Nothing else is accepted: no unary minus (negation is not a Countdown operation), no
//! decimals, no names, no `=`. Evaluation is exact over rationals (so `(7/2)*4` is 14), and
//! the parser is an iterative shunting-yard, so neither input length nor nesting can grow the
//! call stack; both are bounded by [`ExprLimits`] anyway.

use serde::{Deserialize, Serialize};

use crate::error::ExprError;
use crate::rational::Rational;

/// Bounds on what the parser accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExprLimits {
    /// Longest accepted expression, in characters. Default 256: a 4-number answer needs
    /// about 30; rlft's choice.
    pub max_chars: usize,
    /// Deepest parenthesis nesting. Default 16: rlft's choice (4 numbers need at most 3).
    pub max_depth: usize,
    /// Most digits in one number literal. Default 9: rlft's choice, far above Countdown's
    /// numbers and small enough that no sum or product of a bounded expression misbehaves.
    pub max_digits: usize,
}

impl Default for ExprLimits {
    fn default() -> Self {
        Self {
            max_chars: 256,
            max_depth: 16,
            max_digits: 9,
        }
    }
}

/// An evaluated expression: its exact value and the numbers it used, in order of appearance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluated {
    /// The exact value.
    pub value: Rational,
    /// Each number literal, left to right.
    pub numbers: Vec<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

impl Op {
    fn precedence(self) -> u8 {
        match self {
            Op::Add | Op::Sub => 1,
            Op::Mul | Op::Div => 2,
        }
    }

    fn from_char(c: char) -> Option<Op> {
        match c {
            '+' => Some(Op::Add),
            '-' | '−' => Some(Op::Sub),
            '*' | '×' | '·' => Some(Op::Mul),
            '/' | '÷' => Some(Op::Div),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum StackItem {
    Op(Op),
    Open,
}

fn apply(values: &mut Vec<Rational>, op: Op) -> Result<(), ExprError> {
    // The token-order checks guarantee two operands; treat a miss as malformed input anyway.
    let (Some(b), Some(a)) = (values.pop(), values.pop()) else {
        return Err(ExprError::UnexpectedEnd {
            expected: "an operand".into(),
        });
    };
    let r = match op {
        Op::Add => a.checked_add(b),
        Op::Sub => a.checked_sub(b),
        Op::Mul => a.checked_mul(b),
        Op::Div => {
            if b.numer() == 0 {
                return Err(ExprError::DivisionByZero);
            }
            a.checked_div(b)
        }
    };
    values.push(r.ok_or(ExprError::Overflow)?);
    Ok(())
}

/// Parses and evaluates a Countdown expression within `limits`.
///
/// # Errors
/// An [`ExprError`] saying what is wrong and where (character positions are 0-based).
///
/// ```
/// use rlft_tasks::{parse_expression, ExprLimits};
/// let e = parse_expression("(7 / 2) × 4 - 1", &ExprLimits::default())?;
/// assert_eq!(e.value.to_string(), "13");
/// assert_eq!(e.numbers, vec![7, 2, 4, 1]);
/// # Ok::<(), rlft_tasks::ExprError>(())
/// ```
pub fn parse_expression(text: &str, limits: &ExprLimits) -> Result<Evaluated, ExprError> {
    // Cheap byte bound first, so a huge input is rejected without walking it.
    if text.len() > limits.max_chars.saturating_mul(4) {
        return Err(ExprError::TooLong {
            len: text.chars().count(),
            max: limits.max_chars,
        });
    }
    let len = text.chars().count();
    if len > limits.max_chars {
        return Err(ExprError::TooLong {
            len,
            max: limits.max_chars,
        });
    }
    if text.trim().is_empty() {
        return Err(ExprError::Empty);
    }

    let mut values: Vec<Rational> = Vec::new();
    let mut stack: Vec<StackItem> = Vec::new();
    let mut numbers = Vec::new();
    let mut depth = 0usize;
    let mut expect_operand = true;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let literal: String = chars[start..i].iter().collect();
            if !expect_operand {
                return Err(ExprError::UnexpectedToken {
                    found: literal,
                    pos: start,
                    expected: "an operator or ')'".into(),
                });
            }
            if literal.len() > limits.max_digits || literal.len() > 18 {
                return Err(ExprError::NumberTooLong {
                    pos: start,
                    digits: literal.len(),
                    max: limits.max_digits.min(18),
                });
            }
            let n: u64 = literal.parse().map_err(|_| ExprError::Overflow)?;
            numbers.push(n);
            values.push(Rational::int(i128::from(n)));
            expect_operand = false;
            continue;
        }
        let pos = i;
        i += 1;
        if c == '(' {
            if !expect_operand {
                return Err(ExprError::UnexpectedToken {
                    found: c.to_string(),
                    pos,
                    expected: "an operator or ')'".into(),
                });
            }
            depth += 1;
            if depth > limits.max_depth {
                return Err(ExprError::TooDeep {
                    max: limits.max_depth,
                });
            }
            stack.push(StackItem::Open);
        } else if c == ')' {
            if expect_operand {
                return Err(ExprError::UnexpectedToken {
                    found: c.to_string(),
                    pos,
                    expected: "a number or '('".into(),
                });
            }
            loop {
                match stack.pop() {
                    Some(StackItem::Op(op)) => apply(&mut values, op)?,
                    Some(StackItem::Open) => break,
                    None => {
                        return Err(ExprError::UnexpectedToken {
                            found: c.to_string(),
                            pos,
                            expected: "an operator (unbalanced ')')".into(),
                        });
                    }
                }
            }
            depth -= 1;
        } else if let Some(op) = Op::from_char(c) {
            if expect_operand {
                return Err(ExprError::UnexpectedToken {
                    found: c.to_string(),
                    pos,
                    expected: "a number or '('".into(),
                });
            }
            while let Some(StackItem::Op(top)) = stack.last().copied() {
                if top.precedence() < op.precedence() {
                    break;
                }
                stack.pop();
                apply(&mut values, top)?;
            }
            stack.push(StackItem::Op(op));
            expect_operand = true;
        } else {
            return Err(ExprError::UnexpectedChar { ch: c, pos });
        }
    }
    if expect_operand {
        return Err(ExprError::UnexpectedEnd {
            expected: "a number or '('".into(),
        });
    }
    while let Some(item) = stack.pop() {
        match item {
            StackItem::Op(op) => apply(&mut values, op)?,
            StackItem::Open => {
                return Err(ExprError::UnexpectedEnd {
                    expected: "')'".into(),
                });
            }
        }
    }
    match values.as_slice() {
        [value] => Ok(Evaluated {
            value: *value,
            numbers,
        }),
        _ => Err(ExprError::UnexpectedEnd {
            expected: "an operator".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(s: &str) -> Result<String, ExprError> {
        parse_expression(s, &ExprLimits::default()).map(|e| e.value.to_string())
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(eval("2 + 3 * 4").unwrap(), "14");
        assert_eq!(eval("(2 + 3) * 4").unwrap(), "20");
        assert_eq!(eval("10 - 3 - 2").unwrap(), "5");
        assert_eq!(eval("10 - 2 * 3").unwrap(), "4");
        assert_eq!(eval("12 / 2 - 1 * 4 + 6 / 3").unwrap(), "4");
        assert_eq!(eval("12 / 3 / 2").unwrap(), "2");
        assert_eq!(eval("1 / 3 + 1 / 6").unwrap(), "1/2");
        assert_eq!(eval("3 − 5").unwrap(), "-2");
        assert_eq!(eval("6 ÷ 4 × 2").unwrap(), "3");
    }

    #[test]
    fn rejects_what_is_not_in_the_grammar() {
        assert!(matches!(
            eval("-3 + 5"),
            Err(ExprError::UnexpectedToken { .. })
        ));
        assert!(matches!(
            eval("3 + + 5"),
            Err(ExprError::UnexpectedToken { .. })
        ));
        assert!(matches!(
            eval("2 (3)"),
            Err(ExprError::UnexpectedToken { .. })
        ));
        assert!(matches!(
            eval("1.5 * 2"),
            Err(ExprError::UnexpectedChar { ch: '.', pos: 1 })
        ));
        assert!(matches!(
            eval("2 ** 3"),
            Err(ExprError::UnexpectedToken { .. })
        ));
        assert_eq!(
            eval("(1 + 2"),
            Err(ExprError::UnexpectedEnd {
                expected: "')'".into()
            })
        );
        assert!(matches!(
            eval("1 + 2)"),
            Err(ExprError::UnexpectedToken { .. })
        ));
        assert!(matches!(eval("1 +"), Err(ExprError::UnexpectedEnd { .. })));
        assert!(matches!(
            eval("x"),
            Err(ExprError::UnexpectedChar { ch: 'x', .. })
        ));
        assert!(matches!(
            eval("1 = 1"),
            Err(ExprError::UnexpectedChar { ch: '=', .. })
        ));
        assert_eq!(eval("  "), Err(ExprError::Empty));
        assert_eq!(eval("5 / (3 - 3)"), Err(ExprError::DivisionByZero));
        assert!(matches!(
            eval("１ + 2"),
            Err(ExprError::UnexpectedChar { .. })
        ));
    }

    #[test]
    fn bounds_are_enforced() {
        let limits = ExprLimits {
            max_chars: 10,
            max_depth: 2,
            max_digits: 3,
        };
        assert_eq!(
            parse_expression("1+2+3+4+5+6", &limits).unwrap_err(),
            ExprError::TooLong { len: 11, max: 10 }
        );
        assert!(parse_expression("((1+2))", &limits).is_ok());
        assert_eq!(
            parse_expression("(((1)))", &limits).unwrap_err(),
            ExprError::TooDeep { max: 2 }
        );
        assert!(matches!(
            parse_expression("1234", &limits),
            Err(ExprError::NumberTooLong { digits: 4, .. })
        ));
    }

    #[test]
    fn overflow_is_an_error() {
        let limits = ExprLimits {
            max_chars: 10_000,
            max_depth: 16,
            max_digits: 18,
        };
        let expr = ["999999999999999999"; 4].join("*");
        assert_eq!(
            parse_expression(&expr, &limits).unwrap_err(),
            ExprError::Overflow
        );
    }
}
