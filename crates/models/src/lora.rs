//! LoRA on the attention and MLP projections through Burn's built-in
//! [`Module::apply_lora`](burn::module::Module::apply_lora), and merging for export.

use burn::module::{Lora, Module, ParamGroup};

use crate::config::{config_err, positive};
use crate::error::Result;
use crate::model::CausalLm;

/// Projection names LoRA can target (the `target_modules` of PEFT).
pub const LORA_TARGETS: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// LoRA settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraConfig {
    /// Rank `r` of the update `A B`.
    pub rank: usize,
    /// Scale numerator: the update is `(alpha / rank) · A B`.
    pub alpha: f64,
    /// Projections to adapt, from [`LORA_TARGETS`]. Default: all seven (PEFT's
    /// `"all-linear"` for these architectures, minus the LM head).
    pub target_modules: Vec<String>,
    /// Seed for the random init of `A` (`B` starts at zero). Default 0.
    pub seed: u64,
}

impl LoraConfig {
    /// Rank and alpha with the defaults above.
    pub fn new(rank: usize, alpha: f64) -> Self {
        Self {
            rank,
            alpha,
            target_modules: LORA_TARGETS.iter().map(|s| s.to_string()).collect(),
            seed: 0,
        }
    }
}

impl CausalLm {
    /// Attach LoRA adapters to the chosen projections. Every base parameter is frozen; only
    /// the adapter factors train. The device RNG is seeded with `config.seed` first.
    ///
    /// # Errors
    /// [`crate::ModelError::Config`] for rank 0, a non-positive alpha, an empty target list
    /// or an unknown target name.
    pub fn with_lora(self, config: &LoraConfig) -> Result<Self> {
        if config.rank == 0 {
            return Err(config_err("lora.rank", "must be positive, got 0"));
        }
        if !positive(config.alpha) {
            return Err(config_err(
                "lora.alpha",
                format!("must be positive, got {}", config.alpha),
            ));
        }
        if config.target_modules.is_empty() {
            return Err(config_err("lora.target_modules", "is empty"));
        }
        for t in &config.target_modules {
            if !LORA_TARGETS.contains(&t.as_str()) {
                return Err(config_err(
                    "lora.target_modules",
                    format!(
                        "unknown module `{t}` (expected one of {})",
                        LORA_TARGETS.join(", ")
                    ),
                ));
            }
        }
        let pattern = format!(
            r"^model\.layers\.\d+\.(self_attn|mlp)\.({})\.weight$",
            config.target_modules.join("|")
        );
        let group = ParamGroup::from_regex(&pattern)
            .map_err(|e| config_err("lora.target_modules", format!("{e:?}")))?;
        self.device().seed(config.seed);
        Ok(self.apply_lora(Lora::new(config.rank, config.alpha).set_param_group(group)))
    }

    /// Fold the adapters into the base weights (`W + scale · A B`), leaving a plain model.
    /// A model without adapters is returned unchanged.
    pub fn merge_lora(self) -> Self {
        self.materialize()
    }
}
