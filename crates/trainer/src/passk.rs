//! Evaluation estimators.

/// Unbiased pass@k from n samples of which c are correct (Chen et al. 2021):
/// 1 − C(n − c, k) / C(n, k), computed as a stable product. `k > n` is clamped to n.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> f64 {
    let k = k.min(n);
    if n == 0 || k == 0 {
        return 0.0;
    }
    if n - c.min(n) < k {
        return 1.0;
    }
    let mut prod = 1.0;
    for i in (n - c + 1)..=n {
        prod *= 1.0 - k as f64 / i as f64;
    }
    1.0 - prod
}

/// An SVG chart of pass@k curves against k on a log₂ axis, one polyline per named curve
/// (points `(k, pass@k)`, k ≥ 1), with a legend.
pub fn pass_at_k_svg(curves: &[(String, Vec<(usize, f64)>)], title: &str) -> String {
    const W: f64 = 760.0;
    const H: f64 = 360.0;
    const L: f64 = 50.0;
    const R: f64 = 300.0;
    const T: f64 = 30.0;
    const B: f64 = 40.0;
    const COLORS: [&str; 10] = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
        "#bcbd22", "#17becf",
    ];
    let kmax = curves
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(k, _)| k))
        .max()
        .unwrap_or(1)
        .max(2) as f64;
    let ymin = curves
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, v)| v))
        .filter(|v| v.is_finite())
        .fold(1.0f64, f64::min)
        .clamp(0.0, 1.0);
    let ymin = (ymin * 10.0).floor() / 10.0;
    let x = |k: f64| L + (k.max(1.0).log2() / kmax.log2()) * (W - L - R);
    let y = |v: f64| T + (1.0 - (v - ymin) / (1.0 - ymin).max(1e-9)) * (H - T - B);
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{L}\" y=\"18\" font-size=\"13\">{}</text>\n",
        esc(title)
    );
    s.push_str(&format!(
        "<line x1=\"{L}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n<line x1=\"{L}\" y1=\"{T}\" x2=\"{L}\" y2=\"{}\" stroke=\"black\"/>\n",
        H - B,
        W - R,
        H - B,
        H - B
    ));
    let mut k = 1.0;
    while k <= kmax {
        s.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{k}</text>\n",
            x(k),
            H - B + 14.0
        ));
        k *= 2.0;
    }
    for i in 0..=4 {
        let v = ymin + (1.0 - ymin) * i as f64 / 4.0;
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v:.2}</text>\n<line x1=\"{L}\" y1=\"{:.1}\" x2=\"{}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\n",
            L - 4.0,
            y(v) + 4.0,
            y(v),
            W - R,
            y(v)
        ));
    }
    s.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">k (log scale)</text>\n",
        (L + W - R) / 2.0,
        H - 6.0
    ));
    for (i, (name, points)) in curves.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<String> = points
            .iter()
            .filter(|(k, v)| *k >= 1 && v.is_finite())
            .map(|&(k, v)| format!("{:.1},{:.1}", x(k as f64), y(v)))
            .collect();
        s.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>\n",
            pts.join(" ")
        ));
        let ly = T + 14.0 * i as f64;
        s.push_str(&format!(
            "<line x1=\"{}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"2\"/><text x=\"{}\" y=\"{}\">{}</text>\n",
            W - R + 10.0,
            W - R + 30.0,
            W - R + 35.0,
            ly + 4.0,
            esc(name)
        ));
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binom(n: u64, k: u64) -> f64 {
        (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
    }

    #[test]
    fn matches_the_binomial_definition() {
        for n in 1..12u64 {
            for c in 0..=n {
                for k in 1..=n {
                    let want = 1.0 - binom(n - c, k) / binom(n, k);
                    let got = pass_at_k(n as usize, c as usize, k as usize);
                    assert!(
                        (got - want).abs() < 1e-12,
                        "n={n} c={c} k={k}: {got} vs {want}"
                    );
                }
            }
        }
    }

    /// P9 (spec prerl.md §7.1): the estimator equals the share of k-subsets of the n samples
    /// that contain a correct one, enumerated.
    #[test]
    fn matches_brute_force_enumeration_of_subsets() {
        for n in 1..=10usize {
            for c in 0..=n {
                for k in 1..=n {
                    let (mut hit, mut all) = (0u64, 0u64);
                    for subset in 0u32..(1 << n) {
                        if subset.count_ones() as usize == k {
                            all += 1;
                            // Samples 0..c are the correct ones.
                            hit += u64::from(subset & ((1u32 << c) - 1) != 0);
                        }
                    }
                    let want = hit as f64 / all as f64;
                    let got = pass_at_k(n, c, k);
                    assert!((got - want).abs() < 1e-12, "n={n} c={c} k={k}");
                }
            }
        }
    }

    #[test]
    fn large_n_stays_finite_and_monotone_in_k() {
        for c in [0, 1, 2, 50, 255, 256] {
            let mut last = 0.0;
            for k in 1..=256 {
                let v = pass_at_k(256, c, k);
                assert!(v.is_finite() && (0.0..=1.0).contains(&v) && v >= last - 1e-15);
                last = v;
            }
        }
        assert!((pass_at_k(256, 1, 256) - 1.0).abs() < 1e-12);
        assert!((pass_at_k(256, 1, 64) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn the_svg_has_one_polyline_per_curve() {
        let curves = vec![
            ("a<b".to_string(), vec![(1, 0.2), (2, 0.3), (4, 0.5)]),
            ("c".to_string(), vec![(1, 0.1), (4, 0.9)]),
        ];
        let svg = pass_at_k_svg(&curves, "t");
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a&lt;b") && svg.ends_with("</svg>\n"));
    }

    #[test]
    fn pass_at_1_is_the_success_rate() {
        assert!((pass_at_k(8, 3, 1) - 3.0 / 8.0).abs() < 1e-12);
        assert_eq!(pass_at_k(8, 0, 4), 0.0);
        assert_eq!(pass_at_k(8, 8, 1), 1.0);
        assert_eq!(pass_at_k(0, 0, 1), 0.0);
    }
}
