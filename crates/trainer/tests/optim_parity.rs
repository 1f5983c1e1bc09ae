//! AdamW + global-norm clipping + linear warmup schedule against torch and transformers
//! (`scripts/optim_parity/gen_optim_parity.py` wrote the fixture with torch's own code).

use burn::module::Param;
use burn::nn::{Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use rlft_trainer::{LrSchedule, OptimConfig, clip_grad_norm};
use serde_json::Value;

fn flat(v: &Value) -> Vec<f32> {
    match v {
        Value::Array(a) => a.iter().flat_map(flat).collect(),
        x => vec![x.as_f64().unwrap() as f32],
    }
}

fn read<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn adamw_clipping_and_schedule_match_torch() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/optim_parity.json"
    );
    let fx: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let device = Device::flex().autodiff();
    let mut lin: Linear = LinearConfig::new(3, 4).init(&device);
    // torch's w is [3, 4] used as x @ w here, the same layout as Burn's Linear weight.
    lin.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(flat(&fx["init_w"]), [3, 4]),
        &device,
    ));
    lin.bias = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(flat(&fx["init_b"]), [4]),
        &device,
    )));
    let cfg = OptimConfig {
        lr: fx["lr"].as_f64().unwrap(),
        warmup_steps: fx["warmup_steps"].as_u64().unwrap() as usize,
        schedule: LrSchedule::Linear,
        max_grad_norm: Some(fx["max_grad_norm"].as_f64().unwrap() as f32),
        ..OptimConfig::default()
    };
    let total = fx["total_steps"].as_u64().unwrap() as usize;
    let mut opt = cfg.adamw();
    for (step, s) in fx["steps"].as_array().unwrap().iter().enumerate() {
        let mut grads = GradientsParams::new();
        grads.register(
            lin.weight.id,
            Tensor::<2>::from_data(TensorData::new(flat(&s["grad_w"]), [3, 4]), &device),
        );
        grads.register(
            lin.bias.as_ref().unwrap().id,
            Tensor::<1>::from_data(TensorData::new(flat(&s["grad_b"]), [4]), &device),
        );
        let (grads, norm) = clip_grad_norm(&lin, grads, cfg.max_grad_norm);
        let want_norm = s["grad_norm"].as_f64().unwrap() as f32;
        assert!(
            (norm - want_norm).abs() <= 1e-5 * want_norm,
            "step {step}: norm {norm} vs {want_norm}"
        );
        let lr = cfg.lr_at(step, total);
        assert!(
            (lr - s["lr"].as_f64().unwrap()).abs() < 1e-12,
            "step {step}: lr {lr}"
        );
        lin = opt.step(lr, lin, grads);
        for (got, want) in [
            (read(lin.weight.val()), flat(&s["w"])),
            (read(lin.bias.as_ref().unwrap().val()), flat(&s["b"])),
        ] {
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-6 * (1.0 + w.abs()),
                    "step {step} [{i}]: {g} vs torch {w}"
                );
            }
        }
    }
}
