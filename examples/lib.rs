//! Runnable examples of composing rlft's crates; see `examples/README.md`. The library itself
//! is empty: each example is a standalone program under `examples/`.
