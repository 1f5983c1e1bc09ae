//! Loading Hugging Face checkpoints (single-file or sharded safetensors, f32/bf16/f16) into a
//! [`CausalLm`] through `burn::store`, and exporting back to the Hugging Face layout.
//!
//! Every tensor of the checkpoint must find a parameter and every parameter a tensor:
//! missing, unused, mis-shaped and wrongly typed tensors are errors that name them (in
//! Hugging Face spelling, with shapes in Hugging Face layout).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{
    ApplyError, ApplyResult, BurnToPyTorchAdapter, FloatCastAdapter, ModuleAdapter, ModuleSnapshot,
    PyTorchToBurnAdapter, SafetensorsStore,
};
use burn::tensor::{DType, Device};
use serde::Deserialize;

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::model::CausalLm;

/// How weights are loaded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadOptions {
    /// Cast every float tensor to this dtype while loading; `None` keeps the checkpoint's
    /// dtype (which must then be the same for all tensors). Default `Some(DType::F32)`:
    /// training and the parity tests run in f32, and a bf16 checkpoint is upcast exactly.
    pub dtype: Option<DType>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            dtype: Some(DType::F32),
        }
    }
}

/// How weights are written.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ExportOptions {
    /// Cast float tensors to this dtype in the file; `None` (the default) writes the model's
    /// own dtype.
    pub dtype: Option<DType>,
}

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: BTreeMap<String, String>,
}

impl CausalLm {
    /// Load a Hugging Face checkpoint directory: `config.json` plus `model.safetensors` or
    /// `model.safetensors.index.json` with its shards.
    ///
    /// # Errors
    /// Config errors as in [`ModelConfig::from_file`]; [`ModelError::MissingFile`] when no
    /// weights are found; [`ModelError::Safetensors`] for truncated or corrupt files;
    /// [`ModelError::MissingTensors`], [`ModelError::UnusedTensors`],
    /// [`ModelError::ShapeMismatch`], [`ModelError::DTypeMismatch`] naming the tensors;
    /// [`ModelError::MixedDTypes`] when keeping dtypes that differ.
    pub fn from_pretrained(
        dir: impl AsRef<Path>,
        device: &Device,
        options: LoadOptions,
    ) -> Result<Self> {
        let dir = dir.as_ref();
        let config = ModelConfig::from_file(&dir.join("config.json"))?;
        let files = weight_files(dir)?;
        Self::from_safetensors(&config, &files, device, options)
    }

    /// Load weights for `config` from the given safetensors files (the shards of one
    /// checkpoint, or a single file).
    ///
    /// # Errors
    /// As [`CausalLm::from_pretrained`].
    pub fn from_safetensors(
        config: &ModelConfig,
        files: &[PathBuf],
        device: &Device,
        options: LoadOptions,
    ) -> Result<Self> {
        config.validate()?;
        let mut model = CausalLm::new(config, device);
        let mut applied = BTreeSet::new();
        let mut missing: Option<BTreeSet<String>> = None;
        let mut unused = BTreeSet::new();
        for file in files {
            if !file.exists() {
                return Err(ModelError::MissingFile {
                    path: file.clone(),
                    what: "safetensors shard",
                });
            }
            let mut store = SafetensorsStore::from_file(file)
                .with_from_adapter(from_adapter(options))
                .allow_partial(true)
                .validate(false);
            let result: ApplyResult =
                model
                    .load_from(&mut store)
                    .map_err(|e| ModelError::Safetensors {
                        path: file.clone(),
                        message: e.to_string(),
                    })?;
            if let Some(err) = result.errors.first() {
                return Err(apply_error(err));
            }
            applied.extend(result.applied.iter().cloned());
            let here: BTreeSet<String> = result.missing.iter().map(|(p, _)| p.clone()).collect();
            missing = Some(match missing {
                None => here,
                Some(m) => m.intersection(&here).cloned().collect(),
            });
            unused.extend(result.unused.iter().cloned());
        }
        let missing: Vec<String> = missing
            .unwrap_or_default()
            .into_iter()
            .filter(|p| !applied.contains(p))
            .map(|p| hf_name(&p))
            .collect();
        if !missing.is_empty() {
            return Err(ModelError::MissingTensors { names: missing });
        }
        if !unused.is_empty() {
            return Err(ModelError::UnusedTensors {
                names: unused.into_iter().collect(),
            });
        }
        if options.dtype.is_none() {
            let dtypes: BTreeSet<String> = model
                .collect(None, None, false)
                .iter()
                .map(|t| format!("{:?}", t.dtype))
                .collect();
            if dtypes.len() > 1 {
                return Err(ModelError::MixedDTypes {
                    found: dtypes.into_iter().collect::<Vec<_>>().join(", "),
                });
            }
        }
        Ok(model)
    }

    /// Write the model as a Hugging Face checkpoint: `model.safetensors` (Hugging Face tensor
    /// names and layouts, metadata `format = pt`) and `config.json`. LoRA adapters, if any,
    /// are merged into the weights first. Both files are written atomically.
    ///
    /// # Errors
    /// [`ModelError::Io`] / [`ModelError::Safetensors`] when writing fails.
    pub fn save_pretrained(&self, dir: impl AsRef<Path>, options: ExportOptions) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| ModelError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let merged = self.clone().materialize();
        let path = dir.join("model.safetensors");
        let adapter: Box<dyn ModuleAdapter> = match options.dtype {
            Some(dtype) => Box::new(BurnToPyTorchAdapter.chain(FloatCastAdapter::to(dtype))),
            None => Box::new(BurnToPyTorchAdapter),
        };
        let mut store = SafetensorsStore::from_file(&path)
            .with_to_adapter(BoxedAdapter(adapter))
            .metadata("format", "pt")
            .overwrite(true);
        merged
            .save_into(&mut store)
            .map_err(|e| ModelError::Safetensors {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let dtype = options.dtype.unwrap_or(self.dtype());
        let json = self.config().to_hf_json(torch_dtype_name(dtype));
        let text = serde_json::to_string_pretty(&json).expect("a json value serialises");
        let config = dir.join("config.json");
        write_atomic(&config, text.as_bytes())?;
        // Burn's store publishes the weights from a private (0600) temporary file; give them
        // the mode every other written file has (`File::create`'s: 0666 less the umask).
        std::fs::metadata(&config)
            .and_then(|m| std::fs::set_permissions(&path, m.permissions()))
            .map_err(|source| ModelError::Io { path, source })
    }
}

/// A boxed adapter as an adapter (the store's builder takes `impl ModuleAdapter`).
#[derive(Clone)]
struct BoxedAdapter(Box<dyn ModuleAdapter>);

impl ModuleAdapter for BoxedAdapter {
    fn adapt(
        &self,
        tensor: burn::store::burn_pack::Tensor,
        ctx: burn::store::ModuleContext<'_>,
    ) -> burn::store::burn_pack::Tensor {
        self.0.adapt(tensor, ctx)
    }
    fn get_alternative_param_name(&self, name: &str, container: &str) -> Option<String> {
        self.0.get_alternative_param_name(name, container)
    }
    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(self.clone())
    }
}

fn from_adapter(options: LoadOptions) -> BoxedAdapter {
    BoxedAdapter(match options.dtype {
        Some(dtype) => Box::new(PyTorchToBurnAdapter.chain(FloatCastAdapter::to(dtype))),
        None => Box::new(PyTorchToBurnAdapter),
    })
}

/// The weight files of a checkpoint directory, shards in index order.
///
/// # Errors
/// [`ModelError::MissingFile`] when neither `model.safetensors` nor an index exists;
/// [`ModelError::Json`] for a malformed index.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let text = std::fs::read_to_string(&index).map_err(|source| ModelError::Io {
            path: index.clone(),
            source,
        })?;
        let parsed: ShardIndex =
            serde_json::from_str(&text).map_err(|source| ModelError::Json {
                path: index.clone(),
                source,
            })?;
        let shards: BTreeSet<&String> = parsed.weight_map.values().collect();
        // A shard is a plain file name in `dir`: an absolute path or one with `..` (or any
        // directory part) would read files outside the model directory.
        if let Some(bad) = shards.iter().find(|s| {
            let p = Path::new(s.as_str());
            s.is_empty()
                || p.components().count() != 1
                || !matches!(p.components().next(), Some(std::path::Component::Normal(_)))
        }) {
            return Err(ModelError::Config {
                field: "weight_map".into(),
                reason: format!(
                    "{}: shard path {bad:?} must be a file name inside the model directory",
                    index.display()
                ),
            });
        }
        return Ok(shards.into_iter().map(|s| dir.join(s)).collect());
    }
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    Err(ModelError::MissingFile {
        path: single,
        what: "model weights (model.safetensors or model.safetensors.index.json)",
    })
}

/// Hugging Face name of a Burn parameter path: norm `gamma` is `weight`.
fn hf_name(path: &str) -> String {
    match path.strip_suffix(".gamma") {
        Some(stem) => format!("{stem}.weight"),
        None => path.to_string(),
    }
}

/// Whether a Burn path is a `Linear` weight (stored transposed relative to Hugging Face).
fn is_linear_weight(path: &str) -> bool {
    path.ends_with("_proj.weight") || path == "lm_head.weight"
}

fn apply_error(err: &ApplyError) -> ModelError {
    match err {
        ApplyError::ShapeMismatch {
            path,
            expected,
            found,
        } => {
            let mut expected = expected.to_vec();
            let mut found = found.to_vec();
            if is_linear_weight(path) {
                expected.reverse();
                found.reverse();
            }
            ModelError::ShapeMismatch {
                name: hf_name(path),
                expected,
                found,
            }
        }
        ApplyError::DTypeMismatch {
            path,
            expected,
            found,
        } => ModelError::DTypeMismatch {
            name: hf_name(path),
            expected: format!("{expected:?}"),
            found: format!("{found:?}"),
        },
        ApplyError::AdapterError { path, message } | ApplyError::LoadError { path, message } => {
            ModelError::TensorLoad {
                name: hf_name(path),
                message: message.clone(),
            }
        }
    }
}

/// The `torch_dtype` name of a Burn dtype.
fn torch_dtype_name(dtype: DType) -> &'static str {
    match dtype {
        DType::BF16 => "bfloat16",
        DType::F16 => "float16",
        DType::F64 => "float64",
        _ => "float32",
    }
}

/// Write `bytes` to `path` atomically ([`rlft_util::fs::write_atomic`]: a temporary sibling,
/// fsync, rename).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    rlft_util::fs::write_atomic(path, bytes).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })
}
