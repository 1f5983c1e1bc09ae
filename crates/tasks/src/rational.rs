//! Exact rational numbers over `i128`, with every operation checked for overflow.

use std::fmt;

/// A reduced fraction `num/den` with `den > 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rational {
    num: i128,
    den: i128,
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Rational {
    /// The integer `n`.
    pub fn int(n: i128) -> Self {
        Self { num: n, den: 1 }
    }

    /// `num/den` reduced; `None` if `den` is 0 or the result does not fit.
    pub fn new(num: i128, den: i128) -> Option<Self> {
        if den == 0 {
            return None;
        }
        let g = gcd(num.unsigned_abs(), den.unsigned_abs());
        let g = i128::try_from(g).ok()?;
        let (mut n, mut d) = (num / g, den / g);
        if d < 0 {
            n = n.checked_neg()?;
            d = d.checked_neg()?;
        }
        Some(Self { num: n, den: d })
    }

    /// The numerator (carries the sign).
    pub fn numer(self) -> i128 {
        self.num
    }

    /// The denominator, always positive.
    pub fn denom(self) -> i128 {
        self.den
    }

    /// Whether the value is an integer.
    pub fn is_integer(self) -> bool {
        self.den == 1
    }

    /// `self + rhs`, or `None` on overflow.
    pub fn checked_add(self, rhs: Self) -> Option<Self> {
        let g = gcd(self.den.unsigned_abs(), rhs.den.unsigned_abs());
        let g = i128::try_from(g).ok()?;
        let l = (self.den / g).checked_mul(rhs.den)?;
        let a = self.num.checked_mul(l / self.den)?;
        let b = rhs.num.checked_mul(l / rhs.den)?;
        Self::new(a.checked_add(b)?, l)
    }

    /// `self - rhs`, or `None` on overflow.
    pub fn checked_sub(self, rhs: Self) -> Option<Self> {
        self.checked_add(Self {
            num: rhs.num.checked_neg()?,
            den: rhs.den,
        })
    }

    /// `self * rhs`, or `None` on overflow.
    pub fn checked_mul(self, rhs: Self) -> Option<Self> {
        // Cross-reduce first so that fitting results never overflow on the way.
        let g1 = i128::try_from(gcd(self.num.unsigned_abs(), rhs.den.unsigned_abs())).ok()?;
        let g2 = i128::try_from(gcd(rhs.num.unsigned_abs(), self.den.unsigned_abs())).ok()?;
        let (g1, g2) = (g1.max(1), g2.max(1));
        let n = (self.num / g1).checked_mul(rhs.num / g2)?;
        let d = (self.den / g2).checked_mul(rhs.den / g1)?;
        Self::new(n, d)
    }

    /// `self / rhs`, or `None` if `rhs` is 0 or on overflow.
    pub fn checked_div(self, rhs: Self) -> Option<Self> {
        if rhs.num == 0 {
            return None;
        }
        let inv = Self::new(rhs.den, rhs.num)?;
        self.checked_mul(inv)
    }
}

impl fmt::Display for Rational {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: i128, d: i128) -> Rational {
        Rational::new(n, d).unwrap()
    }

    #[test]
    fn reduces_and_normalises_sign() {
        assert_eq!(r(6, -4), r(-3, 2));
        assert_eq!(r(-6, -4).to_string(), "3/2");
        assert_eq!(r(0, -5).to_string(), "0");
        assert!(Rational::new(1, 0).is_none());
    }

    #[test]
    fn arithmetic_is_exact() {
        assert_eq!(r(1, 3).checked_add(r(1, 6)), Some(r(1, 2)));
        assert_eq!(r(1, 3).checked_sub(r(1, 2)), Some(r(-1, 6)));
        assert_eq!(r(2, 3).checked_mul(r(9, 4)), Some(r(3, 2)));
        assert_eq!(r(2, 3).checked_div(r(4, 9)), Some(r(3, 2)));
        assert_eq!(r(2, 3).checked_div(Rational::int(0)), None);
    }

    #[test]
    fn overflow_is_reported_not_wrapped() {
        let big = Rational::int(i128::MAX);
        assert_eq!(big.checked_add(Rational::int(1)), None);
        assert_eq!(big.checked_mul(Rational::int(2)), None);
        assert_eq!(Rational::int(i128::MIN).checked_sub(Rational::int(1)), None);
        // i128::MIN cannot be negated: 1 / MIN must not panic.
        assert_eq!(Rational::int(1).checked_div(Rational::int(i128::MIN)), None);
    }
}
