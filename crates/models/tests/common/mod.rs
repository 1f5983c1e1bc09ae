//! Fixture readers shared by the integration tests. The fixtures are written by
//! `scripts/hf_models/make_fixtures.py` (transformers), never by the code under test.
#![allow(dead_code)]

use std::path::PathBuf;

use burn::tensor::{Device, Int, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

pub const ARCHS: [&str; 3] = ["qwen2", "qwen3", "llama"];

/// Logit tolerance against transformers in f32 (the bound).
pub const TOL: f32 = 1e-4;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A reference array: values as f64 (ints are exact), shape.
#[derive(Debug, Clone)]
pub struct Array {
    pub shape: Vec<usize>,
    pub f: Vec<f32>,
    pub i: Vec<i64>,
}

impl Array {
    pub fn ints(&self, device: &Device) -> Tensor<2, Int> {
        Tensor::from_data(
            TensorData::new(self.i.clone(), [self.shape[0], self.shape[1]]),
            device,
        )
    }
    pub fn rows(&self) -> Vec<Vec<i64>> {
        self.i.chunks(self.shape[1]).map(<[i64]>::to_vec).collect()
    }
}

pub struct Expected {
    bytes: Vec<u8>,
}

impl Expected {
    pub fn load(dir: &str) -> Self {
        let bytes = std::fs::read(fixture(dir).join("expected.safetensors")).expect("fixture");
        Self { bytes }
    }

    pub fn get(&self, name: &str) -> Array {
        let st = SafeTensors::deserialize(&self.bytes).expect("valid fixture");
        let t = st
            .tensor(name)
            .unwrap_or_else(|_| panic!("fixture tensor {name}"));
        let data = t.data();
        let (f, i) = match t.dtype() {
            Dtype::F32 => (
                data.chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
                vec![],
            ),
            Dtype::I64 => (
                vec![],
                data.chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
            ),
            other => panic!("unexpected fixture dtype {other:?}"),
        };
        Array {
            shape: t.shape().to_vec(),
            f,
            i,
        }
    }
}

pub fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// Max |a - b| over positions where `mask` (per [batch, seq] row) is 1; each position
/// covers `inner` values.
pub fn max_diff_masked(a: &[f32], b: &[f32], mask: &[i64], inner: usize) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    assert_eq!(
        mask.len() * inner,
        a.len(),
        "mask does not cover the values"
    );
    let mut worst = 0f32;
    for (p, &m) in mask.iter().enumerate() {
        if m == 0 {
            continue;
        }
        for k in 0..inner {
            let d = (a[p * inner + k] - b[p * inner + k]).abs();
            assert!(d.is_finite(), "non-finite value at position {p}");
            worst = worst.max(d);
        }
    }
    worst
}

pub fn expected_json(dir: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixture(dir).join("expected.json")).expect("fixture json");
    serde_json::from_str(&text).expect("valid json")
}

/// A fresh scratch directory under the target dir (removed first if present).
pub fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("rlft-models")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
