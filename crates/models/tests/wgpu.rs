//! Logit parity with transformers on wgpu, where an adapter exists (Mesa lavapipe on CPU
//! machines). Built only with `--features wgpu`; without an adapter the test prints that it
//! skipped instead of passing silently.
#![cfg(feature = "wgpu")]

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use burn::tensor::{Device, DeviceKind, Tensor};
use common::*;
use rlft_models::{CausalLm, LoadOptions};

/// A wgpu device if an adapter can be acquired (wgpu panics when none exists).
fn probe() -> Option<Device> {
    catch_unwind(AssertUnwindSafe(|| {
        let device = Device::wgpu(DeviceKind::DefaultDevice);
        let sum = Tensor::<1>::ones([4], &device).sum().into_data();
        assert_eq!(sum.convert::<f32>().as_slice::<f32>().unwrap(), &[4.0]);
        device
    }))
    .ok()
}

#[test]
fn padded_batch_logits_match_transformers_on_wgpu() {
    let Some(device) = probe() else {
        eprintln!("SKIPPED wgpu parity: no wgpu adapter found (install mesa-vulkan-drivers)");
        return;
    };
    for arch in ARCHS {
        let model =
            CausalLm::from_pretrained(fixture(arch), &device, LoadOptions::default()).unwrap();
        let exp = Expected::load(arch);
        let vocab = model.config().vocab_size;
        for side in ["right", "left"] {
            let ids = exp.get(&format!("{side}.input_ids"));
            let mask = exp.get(&format!("{side}.attention_mask"));
            let want = exp.get(&format!("{side}.logits"));
            let got = floats(model.forward(ids.ints(&device), mask.ints(&device)));
            let d = max_diff_masked(&got, &want.f, &mask.i, vocab);
            eprintln!("wgpu {arch} {side}-padded: max |dlogit| = {d:e}");
            assert!(d <= TOL, "wgpu {arch} {side}-padded logits differ by {d}");
        }
    }
}
