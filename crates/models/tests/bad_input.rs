//! Bad checkpoints, configs and tokenizers give typed errors that say what and where.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use common::*;
use rlft_models::{CausalLm, ChatTokenizer, LoadOptions, ModelConfig, ModelError};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

/// Copy the qwen2 fixture's config and weights into a scratch dir.
fn copy_qwen2(name: &str) -> PathBuf {
    let dir = scratch(name);
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture("qwen2").join(f), dir.join(f)).unwrap();
    }
    dir
}

fn load(dir: &Path) -> Result<CausalLm, ModelError> {
    CausalLm::from_pretrained(dir, &Device::flex(), LoadOptions::default())
}

/// Rewrite model.safetensors in `dir` after `edit` changes the (name → dtype, shape, bytes) map.
fn rewrite(dir: &Path, edit: impl FnOnce(&mut HashMap<String, (Dtype, Vec<usize>, Vec<u8>)>)) {
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut map: HashMap<String, (Dtype, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, (t.dtype(), t.shape().to_vec(), t.data().to_vec())))
        .collect();
    edit(&mut map);
    let views: Vec<(String, TensorView<'_>)> = map
        .iter()
        .map(|(n, (d, s, b))| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let out = safetensors::serialize(views, None).unwrap();
    std::fs::write(dir.join("model.safetensors"), out).unwrap();
}

#[test]
fn truncated_safetensors_names_the_file() {
    let dir = copy_qwen2("truncated");
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    match load(&dir) {
        Err(ModelError::Safetensors { path: p, .. }) => assert_eq!(p, path),
        other => panic!("expected a safetensors error, got {other:?}"),
    }
}

#[test]
fn corrupt_header_is_an_error() {
    let dir = copy_qwen2("corrupt");
    let path = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    for b in &mut bytes[8..40] {
        *b = b'#';
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = load(&dir).unwrap_err();
    assert!(matches!(err, ModelError::Safetensors { .. }), "{err:?}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");
}

#[test]
fn wrong_dtype_names_the_tensor() {
    let dir = copy_qwen2("dtype");
    rewrite(&dir, |m| {
        let t = m.get_mut("model.norm.weight").unwrap();
        t.0 = Dtype::I32;
    });
    match load(&dir) {
        Err(ModelError::DTypeMismatch { name, found, .. }) => {
            assert_eq!(name, "model.norm.weight");
            assert!(found.contains("I32"), "{found}");
        }
        other => panic!("expected a dtype error, got {other:?}"),
    }
}

#[test]
fn missing_tensor_is_named() {
    let dir = copy_qwen2("missing");
    rewrite(&dir, |m| {
        m.remove("model.layers.1.post_attention_layernorm.weight");
        m.remove("model.layers.0.self_attn.k_proj.bias");
    });
    match load(&dir) {
        Err(ModelError::MissingTensors { names }) => assert_eq!(
            names,
            [
                "model.layers.0.self_attn.k_proj.bias",
                "model.layers.1.post_attention_layernorm.weight"
            ]
        ),
        other => panic!("expected missing tensors, got {other:?}"),
    }
}

#[test]
fn unused_tensor_is_named() {
    let dir = copy_qwen2("unused");
    rewrite(&dir, |m| {
        m.insert(
            "model.layers.0.mlp.extra.weight".into(),
            (Dtype::F32, vec![2], vec![0; 8]),
        );
    });
    match load(&dir) {
        Err(ModelError::UnusedTensors { names }) => {
            assert_eq!(names, ["model.layers.0.mlp.extra.weight"])
        }
        other => panic!("expected unused tensors, got {other:?}"),
    }
}

#[test]
fn misshaped_tensor_is_named_with_both_shapes() {
    let dir = copy_qwen2("shape");
    rewrite(&dir, |m| {
        // q_proj is [out 32, in 32] in Hugging Face layout; store [16, 32] instead.
        m.insert(
            "model.layers.0.self_attn.q_proj.weight".into(),
            (Dtype::F32, vec![16, 32], vec![0; 16 * 32 * 4]),
        );
    });
    match load(&dir) {
        Err(ModelError::ShapeMismatch {
            name,
            expected,
            found,
        }) => {
            assert_eq!(name, "model.layers.0.self_attn.q_proj.weight");
            assert_eq!(expected, [32, 32]);
            assert_eq!(found, [16, 32]);
        }
        other => panic!("expected a shape error, got {other:?}"),
    }
}

#[test]
fn config_missing_a_field_names_it() {
    let text = std::fs::read_to_string(fixture("qwen2").join("config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_object_mut().unwrap().remove("hidden_size");
    let err = ModelConfig::from_json_str(&v.to_string(), Path::new("x/config.json")).unwrap_err();
    assert!(matches!(err, ModelError::Json { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("hidden_size") && msg.contains("x/config.json"),
        "{msg}"
    );
}

#[test]
fn unsupported_model_type_and_rope_are_errors() {
    let text = std::fs::read_to_string(fixture("llama").join("config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["model_type"] = "mistral".into();
    let err = ModelConfig::from_json_str(&v.to_string(), Path::new("c.json")).unwrap_err();
    assert!(
        matches!(err, ModelError::UnsupportedModelType { ref model_type } if model_type == "mistral")
    );
    v["model_type"] = "llama".into();
    v["rope_parameters"]["rope_type"] = "yarn".into();
    let err = ModelConfig::from_json_str(&v.to_string(), Path::new("c.json")).unwrap_err();
    assert!(matches!(err, ModelError::UnsupportedRope { ref rope_type } if rope_type == "yarn"));
}

#[test]
fn inconsistent_config_names_the_field() {
    let text = std::fs::read_to_string(fixture("qwen3").join("config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["num_key_value_heads"] = 3.into();
    match ModelConfig::from_json_str(&v.to_string(), Path::new("c.json")) {
        Err(ModelError::Config { field, reason }) => {
            assert_eq!(field, "num_key_value_heads");
            assert!(reason.contains("divide"), "{reason}");
        }
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn missing_files_are_named() {
    let dir = scratch("empty");
    match ChatTokenizer::from_dir(&dir) {
        Err(ModelError::MissingFile { path, what }) => {
            assert_eq!(path, dir.join("tokenizer.json"));
            assert_eq!(what, "tokenizer");
        }
        other => panic!("expected a missing tokenizer, got {other:?}"),
    }
    assert!(matches!(
        load(&dir),
        Err(ModelError::MissingFile {
            what: "model config",
            ..
        })
    ));
    std::fs::copy(
        fixture("qwen2").join("config.json"),
        dir.join("config.json"),
    )
    .unwrap();
    match load(&dir) {
        Err(ModelError::MissingFile { path, .. }) => {
            assert_eq!(path, dir.join("model.safetensors"))
        }
        other => panic!("expected missing weights, got {other:?}"),
    }
}

#[test]
fn corrupt_tokenizer_is_an_error() {
    let dir = scratch("bad-tokenizer");
    std::fs::write(dir.join("tokenizer.json"), "{\"model\": 3}").unwrap();
    let err = ChatTokenizer::from_dir(&dir).unwrap_err();
    assert!(matches!(err, ModelError::Tokenizer { .. }), "{err:?}");
}

#[test]
fn mixed_dtypes_are_an_error_unless_cast() {
    let dir = copy_qwen2("mixed");
    rewrite(&dir, |m| {
        let t = m.get_mut("model.norm.weight").unwrap();
        let wide: Vec<u8> =
            t.2.chunks_exact(4)
                .flat_map(|c| (f32::from_le_bytes(c.try_into().unwrap()) as f64).to_le_bytes())
                .collect();
        *t = (Dtype::F64, t.1.clone(), wide);
    });
    let kept = CausalLm::from_pretrained(&dir, &Device::flex(), LoadOptions { dtype: None });
    match kept {
        Err(ModelError::MixedDTypes { found }) => assert!(found.contains("F64"), "{found}"),
        other => panic!("expected mixed dtypes, got {other:?}"),
    }
    // The default load casts everything to f32.
    assert!(load(&dir).is_ok());
}
