//! LoRA through Burn's `apply_lora`: only adapter factors train, and merging then exporting
//! gives a plain Hugging Face checkpoint with the adapted model's outputs.

mod common;

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Device, Gradients, Tensor, TensorData};
use common::*;
use rlft_models::{CausalLm, ExportOptions, LoadOptions, LoraConfig, ModelError};

struct CollectGrads<'a> {
    grads: &'a Gradients,
    found: HashMap<ParamId, Vec<f32>>,
}

impl ModuleVisitor for CollectGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = param.val().grad(self.grads) {
            self.found.insert(param.id, floats(g));
        }
    }
}

/// Plain SGD on the parameters that have a gradient.
struct Sgd {
    lr: f32,
    grads: HashMap<ParamId, Vec<f32>>,
}

impl ModuleMapper for Sgd {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(g) = self.grads.get(&param.id).cloned() else {
            return param;
        };
        let lr = self.lr;
        param.map(|t| {
            let shape = t.shape();
            let device = t.device();
            let v: Vec<f32> = floats(t.clone())
                .iter()
                .zip(&g)
                .map(|(w, g)| w - lr * g)
                .collect();
            Tensor::from_data(TensorData::new(v, shape), &device)
        })
    }
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn lora_trains_factors_only_and_merges_into_export() {
    let device = Device::flex().autodiff();
    let base =
        CausalLm::from_pretrained(fixture("qwen2"), &device, LoadOptions::default()).unwrap();
    let exp = Expected::load("qwen2");
    let ids = exp.get("right.input_ids").ints(&device);
    let mask = exp.get("right.attention_mask").ints(&device);
    let targets = exp.get("logprobs.targets").ints(&device);
    let base_logits = floats(base.forward(ids.clone(), mask.clone()));

    let model = base.with_lora(&LoraConfig::new(4, 8.0)).unwrap();
    // B starts at zero, so the adapted model starts equal to the base.
    let start = floats(model.forward(ids.clone(), mask.clone()));
    assert!(max_diff(&start, &base_logits) < 1e-6);

    let loss = model
        .token_log_probs(ids.clone(), mask.clone(), targets, 1.0)
        .sum();
    let grads = loss.backward();
    let mut collect = CollectGrads {
        grads: &grads,
        found: HashMap::new(),
    };
    model.visit(&mut collect);
    // 2 layers x 7 projections x (A, B); every base weight is frozen.
    assert_eq!(
        collect.found.len(),
        2 * 7 * 2,
        "only LoRA factors get gradients"
    );
    let model = model.map(&mut Sgd {
        lr: 0.5,
        grads: collect.found,
    });
    let adapted = floats(model.forward(ids.clone(), mask.clone()));
    assert!(
        max_diff(&adapted, &base_logits) > 1e-3,
        "the step changed nothing"
    );

    let merged = model.clone().merge_lora();
    let merged_logits = floats(merged.forward(ids.clone(), mask.clone()));
    assert!(
        max_diff(&merged_logits, &adapted) < 1e-5,
        "merging changed the outputs"
    );

    let out = scratch("lora-export");
    model
        .save_pretrained(&out, ExportOptions::default())
        .unwrap();
    let plain = Device::flex();
    let reloaded = CausalLm::from_pretrained(&out, &plain, LoadOptions::default()).unwrap();
    let ids = exp.get("right.input_ids").ints(&plain);
    let mask = exp.get("right.attention_mask").ints(&plain);
    let reloaded_logits = floats(reloaded.forward(ids, mask));
    assert!(
        max_diff(&reloaded_logits, &adapted) < 1e-5,
        "exported model differs"
    );
}

#[test]
fn lora_rejects_unknown_targets_and_zero_rank() {
    let device = Device::flex();
    let model =
        CausalLm::from_pretrained(fixture("llama"), &device, LoadOptions::default()).unwrap();
    let mut config = LoraConfig::new(4, 8.0);
    config.target_modules = vec!["q_proj".into(), "qkv".into()];
    match model.clone().with_lora(&config) {
        Err(ModelError::Config { field, reason }) => {
            assert_eq!(field, "lora.target_modules");
            assert!(reason.contains("qkv"), "{reason}");
        }
        other => panic!("expected a config error, got {other:?}"),
    }
    assert!(model.with_lora(&LoraConfig::new(0, 8.0)).is_err());
}
