//! Criterion benches for rlft; see `benches/` and `docs/benchmarks.md`. The library itself is
//! empty: it exists so the benches have a package.
