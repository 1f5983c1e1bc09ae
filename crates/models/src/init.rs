//! Initialisation from scratch, as transformers does it.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Distribution, Tensor};

use crate::model::CausalLm;

/// Re-draws every parameter with two or more dimensions (projections, embeddings) from
/// N(0, std²) and keeps one-dimensional ones (norm weights, biases) as built.
struct NormalInit {
    std: f64,
}

impl ModuleMapper for NormalInit {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if D < 2 {
            return param;
        }
        let std = self.std;
        param.map(|t| {
            let (shape, device, tracked) = (t.shape(), t.device(), t.is_require_grad());
            let fresh = Tensor::random(shape, Distribution::Normal(0.0, std), &device);
            // `Param::map` takes the new tensor's flag: keep a trainable parameter trainable.
            if tracked { fresh.require_grad() } else { fresh }
        })
    }
}

impl CausalLm {
    /// Initialises the model as transformers does from a config (`initializer_range`, 0.02 for
    /// Qwen2, Qwen3 and Llama): every matrix drawn from N(0, std²), norm weights 1. Burn's
    /// default initialisation (Kaiming-uniform), which [`CausalLm::new`] keeps, gives a tied
    /// model logits of magnitude ~100 at step 0; use this before training from scratch. Seed
    /// the device (`device.seed(s)`) first for a reproducible draw.
    pub fn init_normal(self, std: f64) -> Self {
        self.map(&mut NormalInit { std })
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Int, Tensor, TensorData};

    use crate::{CausalLm, qwen2};

    #[test]
    fn normal_init_gives_small_trainable_logits() {
        let device = Device::flex().autodiff();
        device.seed(3);
        let model = CausalLm::new(&qwen2::tiny(50), &device).init_normal(0.02);
        let ids = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 2, 3], [1, 3]), &device);
        let mask = Tensor::<2, Int>::ones([1, 3], &device);
        let logits = model.forward(ids.clone(), mask.clone());
        let max = logits.clone().abs().max().into_scalar::<f32>();
        assert!(max < 1.0, "logits should start near 0, max |logit| = {max}");
        let grads = logits.sum().backward();
        let g = model.model.embed_tokens.weight.grad(&grads);
        assert!(
            g.is_some(),
            "the embedding must stay trainable after init_normal"
        );
        // Same seed, same draw.
        device.seed(3);
        let again = CausalLm::new(&qwen2::tiny(50), &device).init_normal(0.02);
        let a: Vec<f32> = model
            .forward(ids.clone(), mask.clone())
            .into_data()
            .try_to_vec()
            .unwrap();
        let b: Vec<f32> = again.forward(ids, mask).into_data().try_to_vec().unwrap();
        assert_eq!(a, b);
        // Also on a plain (inference) device, where nothing tracks gradients.
        let plain = Device::flex();
        let _ = CausalLm::new(&qwen2::tiny(50), &plain).init_normal(0.02);
    }
}
