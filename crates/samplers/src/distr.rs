//! Small distributions drawn from a `dyn Rng`: standard normal, gamma and beta.

use rand::{Rng, RngExt};

/// A uniform draw in the open interval (0, 1).
pub(crate) fn open01(rng: &mut dyn Rng) -> f64 {
    // 53 random bits, shifted by half an ulp so that 0 is impossible.
    ((rng.random::<u64>() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// A standard normal draw (Marsaglia's polar method; the second value is discarded so that
/// the generator carries no hidden state).
pub(crate) fn standard_normal(rng: &mut dyn Rng) -> f64 {
    loop {
        let u = 2.0 * open01(rng) - 1.0;
        let v = 2.0 * open01(rng) - 1.0;
        let s = u * u + v * v;
        if s > 0.0 && s < 1.0 {
            return u * (-2.0 * s.ln() / s).sqrt();
        }
    }
}

/// A Gamma(shape, 1) draw (Marsaglia and Tsang 2000; shape < 1 via the U^(1/shape) boost).
pub(crate) fn gamma(shape: f64, rng: &mut dyn Rng) -> f64 {
    if shape < 1.0 {
        let g = gamma(shape + 1.0, rng);
        return g * open01(rng).powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = standard_normal(rng);
        let v = 1.0 + c * x;
        if v <= 0.0 {
            continue;
        }
        let v = v * v * v;
        let u = open01(rng);
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// A Beta(a, b) draw as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b).
pub(crate) fn beta(a: f64, b: f64, rng: &mut dyn Rng) -> f64 {
    let x = gamma(a, rng);
    let y = gamma(b, rng);
    if x + y > 0.0 { x / (x + y) } else { 0.5 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::Xoshiro256PlusPlus;

    #[test]
    fn beta_moments_match() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        for (a, b) in [(1.0, 1.0), (2.0, 5.0), (0.5, 0.5), (30.0, 10.0)] {
            let n = 40_000;
            let xs: Vec<f64> = (0..n).map(|_| beta(a, b, &mut rng)).collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
            let m = a / (a + b);
            let v = a * b / ((a + b) * (a + b) * (a + b + 1.0));
            assert!((mean - m).abs() < 0.01, "mean {mean} vs {m}");
            assert!((var - v).abs() < 0.1 * v + 1e-4, "var {var} vs {v}");
        }
    }

    #[test]
    fn normal_moments_match() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
        let n = 40_000;
        let xs: Vec<f64> = (0..n).map(|_| standard_normal(&mut rng)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| x * x).sum::<f64>() / n as f64 - mean * mean;
        assert!(
            mean.abs() < 0.02 && (var - 1.0).abs() < 0.03,
            "{mean} {var}"
        );
    }
}
