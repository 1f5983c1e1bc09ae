//! `--device`: the backends compiled into this binary.

use burn::tensor::Device;
use clap::ValueEnum;

/// A compute backend.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// CPU, pure Rust (feature `flex`, default).
    #[default]
    Flex,
    /// GPU through wgpu (feature `wgpu`).
    Wgpu,
    /// NVIDIA GPU 0 (feature `cuda`).
    Cuda,
}

/// The device for `backend`, or an error naming the missing feature.
pub fn device(backend: Backend) -> anyhow::Result<Device> {
    match backend {
        #[cfg(feature = "flex")]
        Backend::Flex => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        Backend::Wgpu => Ok(Device::wgpu(Default::default())),
        #[cfg(feature = "cuda")]
        Backend::Cuda => Ok(Device::cuda(0)),
        #[allow(unreachable_patterns)]
        other => anyhow::bail!(
            "backend {other:?} is not compiled into this binary; rebuild with --features {}",
            format!("{other:?}").to_lowercase()
        ),
    }
}
