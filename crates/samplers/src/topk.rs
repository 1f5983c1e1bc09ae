//! Top-B selection with uniformly random tie-breaking.

use rand::{Rng, RngExt};

/// Indices of the `b` largest scores, ties broken uniformly at random, in descending score
/// order. NaN scores rank last. `b` is clamped to `scores.len()`.
pub(crate) fn top_b(scores: &[f64], b: usize, rng: &mut dyn Rng) -> Vec<usize> {
    let mut keyed: Vec<(f64, u64, usize)> = scores
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            (
                if s.is_nan() { f64::NEG_INFINITY } else { s },
                rng.random::<u64>(),
                i,
            )
        })
        .collect();
    keyed.sort_unstable_by(|x, y| y.0.total_cmp(&x.0).then(y.1.cmp(&x.1)).then(x.2.cmp(&y.2)));
    keyed.truncate(b.min(scores.len()));
    keyed.into_iter().map(|(_, _, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::Xoshiro256PlusPlus;

    #[test]
    fn top_b_takes_largest_and_breaks_ties_both_ways() {
        let scores = [0.1, 0.5, 0.5, 0.9, 0.5];
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let mut seen = [0usize; 5];
        for _ in 0..400 {
            let sel = top_b(&scores, 2, &mut rng);
            assert_eq!(sel[0], 3);
            assert!([1, 2, 4].contains(&sel[1]));
            seen[sel[1]] += 1;
        }
        // Each tied index wins about a third of the time.
        for i in [1, 2, 4] {
            assert!(seen[i] > 90 && seen[i] < 180, "{seen:?}");
        }
    }
}
