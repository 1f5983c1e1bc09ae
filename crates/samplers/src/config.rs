//! [`SamplerConfig`]: pick a sampler from TOML or JSON and build it as a trait object.

use serde::{Deserialize, Serialize};

use crate::dps::{Dps, DpsConfig};
use crate::dynamic::{DynamicSampling, DynamicSamplingConfig};
use crate::error::Result;
use crate::history::HistoryResampling;
use crate::mopps::{Mopps, MoppsConfig};
use crate::sampler::{BatchShape, PromptSampler};
use crate::sfl::{SflBuffer, SflBufferConfig, SflInline, SflInlineConfig};
use crate::uniform::Uniform;

/// Which sampler to use, with its settings; `kind` selects the variant.
///
/// ```toml
/// kind = "dps"
/// decay = 0.5
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SamplerConfig {
    /// [`Uniform`].
    Uniform,
    /// [`DynamicSampling`].
    DynamicSampling(DynamicSamplingConfig),
    /// [`HistoryResampling`].
    HistoryResampling,
    /// [`SflInline`].
    SflInline(SflInlineConfig),
    /// [`SflBuffer`].
    SflBuffer(SflBufferConfig),
    /// [`Mopps`].
    Mopps(MoppsConfig),
    /// [`Dps`].
    Dps(DpsConfig),
}

impl SamplerConfig {
    /// A short label: the `kind` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            SamplerConfig::Uniform => "uniform",
            SamplerConfig::DynamicSampling(_) => "dynamic_sampling",
            SamplerConfig::HistoryResampling => "history_resampling",
            SamplerConfig::SflInline(_) => "sfl_inline",
            SamplerConfig::SflBuffer(_) => "sfl_buffer",
            SamplerConfig::Mopps(_) => "mopps",
            SamplerConfig::Dps(_) => "dps",
        }
    }

    /// Build the sampler for `shape`.
    ///
    /// # Errors
    /// [`crate::SamplerError::Config`] if the shape or config is invalid.
    pub fn build(&self, shape: BatchShape) -> Result<Box<dyn PromptSampler>> {
        Ok(match self {
            SamplerConfig::Uniform => Box::new(Uniform::new(shape)?),
            SamplerConfig::DynamicSampling(c) => Box::new(DynamicSampling::new(shape, c)?),
            SamplerConfig::HistoryResampling => Box::new(HistoryResampling::new(shape)?),
            SamplerConfig::SflInline(c) => Box::new(SflInline::new(shape, c)?),
            SamplerConfig::SflBuffer(c) => Box::new(SflBuffer::new(shape, c)?),
            SamplerConfig::Mopps(c) => Box::new(Mopps::new(shape, c)?),
            SamplerConfig::Dps(c) => Box::new(Dps::new(shape, c)?),
        })
    }
}
