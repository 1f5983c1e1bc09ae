//! Parity with transformers on the committed tiny Qwen2, Qwen3 and Llama 3 checkpoints:
//! logits of padded batches and single sequences, per-token log-probs, KV-cache decoding,
//! greedy generations, sharded / bf16 / f16 checkpoints, and export round trips.

mod common;

use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use common::*;
use rlft_models::{CausalLm, ExportOptions, GreedyConfig, KvCache, LoadOptions, greedy};

fn load(dir: &str, device: &Device) -> CausalLm {
    CausalLm::from_pretrained(fixture(dir), device, LoadOptions::default()).expect("fixture loads")
}

fn check_batches(model: &CausalLm, exp: &Expected, what: &str) {
    let device = model.device();
    let vocab = model.config().vocab_size;
    for side in ["right", "left"] {
        let ids = exp.get(&format!("{side}.input_ids"));
        let mask = exp.get(&format!("{side}.attention_mask"));
        let want = exp.get(&format!("{side}.logits"));
        let got = floats(model.forward(ids.ints(&device), mask.ints(&device)));
        let d = max_diff_masked(&got, &want.f, &mask.i, vocab);
        eprintln!("{what} {side}-padded: max |dlogit| = {d:e}");
        assert!(d <= TOL, "{what} {side}-padded logits differ by {d}");
    }
}

#[test]
fn padded_batch_logits_match_transformers() {
    let device = Device::flex();
    for arch in ARCHS {
        let model = load(arch, &device);
        check_batches(&model, &Expected::load(arch), arch);
    }
}

#[test]
fn single_sequence_logits_match_transformers() {
    let device = Device::flex();
    for arch in ARCHS {
        let model = load(arch, &device);
        let exp = Expected::load(arch);
        for i in 0..3 {
            let ids = exp.get(&format!("single.{i}.input_ids"));
            let want = exp.get(&format!("single.{i}.logits"));
            let mask = Tensor::<2, Int>::ones([1, ids.shape[1]], &device);
            let got = floats(model.forward(ids.ints(&device), mask));
            let d = max_diff_masked(
                &got,
                &want.f,
                &vec![1; ids.shape[1]],
                model.config().vocab_size,
            );
            assert!(d <= TOL, "{arch} single {i} logits differ by {d}");
        }
    }
}

#[test]
fn token_log_probs_match_transformers() {
    let device = Device::flex();
    for arch in ARCHS {
        let model = load(arch, &device);
        let exp = Expected::load(arch);
        let ids = exp.get("right.input_ids");
        let mask = exp.get("right.attention_mask");
        let targets = exp.get("logprobs.targets");
        let want = exp.get("logprobs.values");
        let got = floats(model.token_log_probs(
            ids.ints(&device),
            mask.ints(&device),
            targets.ints(&device),
            1.0,
        ));
        // Compare where the position and its target are real tokens.
        let seq = ids.shape[1];
        let valid: Vec<i64> = (0..mask.i.len())
            .map(|p| {
                let t = p % seq;
                (mask.i[p] == 1 && t + 1 < seq && mask.i[p + 1] == 1) as i64
            })
            .collect();
        assert!(valid.iter().sum::<i64>() > 20, "too few positions compared");
        let d = max_diff_masked(&got, &want.f, &valid, 1);
        eprintln!("{arch} log-probs: max |d| = {d:e}");
        assert!(d <= TOL, "{arch} log-probs differ by {d}");
    }
}

#[test]
fn entropy_matches_the_entropy_of_transformers_logits() {
    let device = Device::flex();
    let temp = 0.7;
    for arch in ARCHS {
        let model = load(arch, &device);
        let exp = Expected::load(arch);
        let ids = exp.get("right.input_ids");
        let mask = exp.get("right.attention_mask");
        let targets = exp.get("logprobs.targets");
        let logits = exp.get("right.logits");
        let (lp, h) = model.token_log_probs_and_entropy(
            ids.ints(&device),
            mask.ints(&device),
            targets.ints(&device),
            temp,
            false,
        );
        let alone = model.token_log_probs(
            ids.ints(&device),
            mask.ints(&device),
            targets.ints(&device),
            temp,
        );
        assert_eq!(floats(lp), floats(alone), "{arch}: log-probs changed");
        let h = floats(h);
        // H = −Σ p log p of softmax(logits / T), in f64, at every real position.
        let v = logits.shape[2];
        let mut worst = 0.0f64;
        for (p, &m) in mask.i.iter().enumerate() {
            if m == 0 {
                continue;
            }
            let row: Vec<f64> = logits.f[p * v..(p + 1) * v]
                .iter()
                .map(|&x| x as f64 / temp)
                .collect();
            let mx = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = row.iter().map(|x| (x - mx).exp()).sum();
            let want: f64 = -row
                .iter()
                .map(|x| {
                    let lp = x - mx - z.ln();
                    lp.exp() * lp
                })
                .sum::<f64>();
            worst = worst.max((h[p] as f64 - want).abs());
        }
        eprintln!("{arch} entropy: max |d| = {worst:e}");
        assert!(worst <= TOL as f64, "{arch} entropy differs by {worst}");
    }
}

#[test]
fn kv_cache_decoding_equals_full_forward() {
    let device = Device::flex();
    for arch in ARCHS {
        let model = load(arch, &device);
        let exp = Expected::load(arch);
        let vocab = model.config().vocab_size;
        // Left padding: prefill 4 columns, then one column per step.
        let ids = exp.get("left.input_ids").rows();
        let mask = exp.get("left.attention_mask").rows();
        let want = exp.get("left.logits");
        let (batch, seq) = (ids.len(), ids[0].len());
        let cols = |rows: &Vec<Vec<i64>>, a: usize, b: usize| -> Tensor<2, Int> {
            let flat: Vec<i64> = rows.iter().flat_map(|r| r[a..b].to_vec()).collect();
            Tensor::from_data(TensorData::new(flat, [batch, b - a]), &device)
        };
        let mut cache = KvCache::new();
        let prefill = 4;
        let mut got = vec![vec![]; batch];
        let first = floats(model.forward_cached(
            cols(&ids, 0, prefill),
            cols(&mask, 0, prefill),
            &mut cache,
        ));
        for b in 0..batch {
            got[b].extend_from_slice(&first[b * prefill * vocab..(b + 1) * prefill * vocab]);
        }
        for t in prefill..seq {
            let step = floats(model.forward_cached(
                cols(&ids, t, t + 1),
                cols(&mask, 0, t + 1),
                &mut cache,
            ));
            for b in 0..batch {
                got[b].extend_from_slice(&step[b * vocab..(b + 1) * vocab]);
            }
        }
        assert_eq!(cache.len(), seq);
        let got: Vec<f32> = got.concat();
        let d = max_diff_masked(&got, &want.f, &exp.get("left.attention_mask").i, vocab);
        assert!(
            d <= TOL,
            "{arch} cached decoding differs from transformers by {d}"
        );
        let full = floats(model.forward(cols(&ids, 0, seq), cols(&mask, 0, seq)));
        let d = max_diff_masked(&got, &full, &exp.get("left.attention_mask").i, vocab);
        assert!(
            d <= 1e-5,
            "{arch} cached decoding differs from the full forward by {d}"
        );
    }
}

#[test]
fn greedy_generations_match_transformers() {
    let device = Device::flex();
    for arch in ARCHS {
        let model = load(arch, &device);
        let exp = Expected::load(arch);
        let meta = expected_json(arch);
        let eos = meta["eos_token_id"].as_u64().unwrap() as u32;
        let pad = meta["pad_token_id"].as_u64().unwrap() as u32;
        let ids = exp.get("generate.input_ids").rows();
        let mask = exp.get("generate.attention_mask").rows();
        let prompts: Vec<Vec<u32>> = ids
            .iter()
            .zip(&mask)
            .map(|(r, m)| {
                r.iter()
                    .zip(m)
                    .filter(|(_, m)| **m == 1)
                    .map(|(t, _)| *t as u32)
                    .collect()
            })
            .collect();
        let config = GreedyConfig {
            max_new_tokens: meta["max_new_tokens"].as_u64().unwrap() as usize,
            eos_token_ids: vec![eos],
            pad_token_id: pad,
        };
        let got = greedy(&model, &prompts, &config).unwrap();
        let want: Vec<Vec<u32>> = exp
            .get("generate.new_tokens")
            .rows()
            .into_iter()
            .map(|r| {
                let mut out = vec![];
                for t in r {
                    out.push(t as u32);
                    if t as u32 == eos {
                        break;
                    }
                }
                out
            })
            .collect();
        assert_eq!(got, want, "{arch} greedy generations differ");
        assert!(
            got.iter().any(|r| r.len() > 2),
            "{arch}: generations too short to be a test"
        );
    }
}

#[test]
fn sharded_checkpoint_loads_like_single_file() {
    let device = Device::flex();
    let files = rlft_models::weight_files(&fixture("qwen2_sharded")).unwrap();
    assert!(files.len() > 1, "fixture should be sharded");
    let model = load("qwen2_sharded", &device);
    check_batches(&model, &Expected::load("qwen2"), "qwen2 sharded");
}

#[test]
fn half_precision_checkpoints_load_with_upcast() {
    let device = Device::flex();
    for (dir, dtype) in [("qwen2_bf16", DType::BF16), ("qwen3_f16", DType::F16)] {
        let model = load(dir, &device);
        assert_eq!(model.dtype(), DType::F32);
        check_batches(&model, &Expected::load(dir), dir);
        // Keeping the checkpoint dtype gives half-precision weights.
        let kept =
            CausalLm::from_pretrained(fixture(dir), &device, LoadOptions { dtype: None }).unwrap();
        assert_eq!(kept.dtype(), dtype, "{dir}");
    }
}

#[test]
fn export_then_reimport_is_identical() {
    let device = Device::flex();
    for arch in ARCHS {
        let model = load(arch, &device);
        let out = scratch(&format!("export-{arch}"));
        model
            .save_pretrained(&out, ExportOptions::default())
            .unwrap();
        let again = CausalLm::from_pretrained(&out, &device, LoadOptions::default()).unwrap();
        assert_eq!(again.config(), model.config(), "{arch} config round trip");
        let exp = Expected::load(arch);
        let ids = exp.get("right.input_ids").ints(&device);
        let mask = exp.get("right.attention_mask").ints(&device);
        let a = floats(model.forward(ids.clone(), mask.clone()));
        let b = floats(again.forward(ids, mask));
        assert_eq!(a, b, "{arch} logits changed after export + import");
        // The exported tensors carry the Hugging Face names and layouts of the original.
        let orig = std::fs::read(fixture(arch).join("model.safetensors")).unwrap();
        let new = std::fs::read(out.join("model.safetensors")).unwrap();
        let orig = safetensors::SafeTensors::deserialize(&orig).unwrap();
        let new = safetensors::SafeTensors::deserialize(&new).unwrap();
        let mut names_a = orig.names();
        let mut names_b = new.names();
        names_a.sort();
        names_b.sort();
        assert_eq!(names_a, names_b, "{arch} tensor names");
        for name in names_a {
            let (x, y) = (orig.tensor(name).unwrap(), new.tensor(name).unwrap());
            assert_eq!(x.shape(), y.shape(), "{name}");
            assert_eq!(x.data(), y.data(), "{name} bytes");
        }
    }
}

#[test]
fn bf16_export_loads_back() {
    let device = Device::flex();
    let model = load("qwen2", &device);
    let out = scratch("export-bf16");
    model
        .save_pretrained(
            &out,
            ExportOptions {
                dtype: Some(DType::BF16),
            },
        )
        .unwrap();
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["torch_dtype"], "bfloat16");
    let kept = CausalLm::from_pretrained(&out, &device, LoadOptions { dtype: None }).unwrap();
    assert_eq!(kept.dtype(), DType::BF16);
}

/// Collects the gradient norm of every float parameter.
struct GradNorms<'a> {
    grads: &'a burn::tensor::Gradients,
    norms: Vec<f32>,
}

impl burn::module::ModuleVisitor for GradNorms<'_> {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        if let Some(g) = param.val().grad(self.grads) {
            self.norms.push(floats(g.square().sum())[0].sqrt());
        }
    }
}

#[test]
fn forward_is_differentiable_under_autodiff() {
    use burn::module::Module;
    let device = Device::flex().autodiff();
    let model = load("qwen3", &device);
    let exp = Expected::load("qwen3");
    let lp = model.token_log_probs(
        exp.get("left.input_ids").ints(&device),
        exp.get("left.attention_mask").ints(&device),
        exp.get("left.input_ids").ints(&device),
        1.0,
    );
    let grads = lp.sum().backward();
    let mut visitor = GradNorms {
        grads: &grads,
        norms: vec![],
    };
    model.visit(&mut visitor);
    // embed, 2 layers x (q,k,v,o, q_norm, k_norm, gate, up, down, 2 norms), norm, lm_head
    assert_eq!(
        visitor.norms.len(),
        1 + 2 * 11 + 2,
        "every parameter gets a gradient"
    );
    assert!(
        visitor.norms.iter().all(|n| n.is_finite() && *n > 0.0),
        "{:?}",
        visitor.norms
    );
}

fn fixture_prompts(exp: &Expected) -> Vec<Vec<u32>> {
    let ids = exp.get("generate.input_ids").rows();
    let mask = exp.get("generate.attention_mask").rows();
    ids.iter()
        .zip(&mask)
        .map(|(r, m)| {
            r.iter()
                .zip(m)
                .filter(|(_, m)| **m == 1)
                .map(|(t, _)| *t as u32)
                .collect()
        })
        .collect()
}

#[test]
fn greedy_stops_rows_at_eos_like_transformers() {
    // transformers' rows are independent, so with a different EOS id its output is each
    // reference row cut after the first occurrence of that id.
    let device = Device::flex();
    let model = load("qwen2", &device);
    let exp = Expected::load("qwen2");
    let reference = exp.get("generate.new_tokens").rows();
    let eos = reference[0][2] as u32;
    let want: Vec<Vec<u32>> = reference
        .iter()
        .map(|r| {
            let mut out = vec![];
            for &t in r {
                out.push(t as u32);
                if t as u32 == eos {
                    break;
                }
            }
            out
        })
        .collect();
    assert!(want[0].len() == 3 && want.iter().any(|r| r.len() > 3));
    let config = GreedyConfig {
        max_new_tokens: reference[0].len(),
        eos_token_ids: vec![eos],
        pad_token_id: 0,
    };
    assert_eq!(
        greedy(&model, &fixture_prompts(&exp), &config).unwrap(),
        want
    );
}

#[test]
fn batched_greedy_equals_one_prompt_at_a_time() {
    let device = Device::flex();
    let model = load("llama", &device);
    let prompts = fixture_prompts(&Expected::load("llama"));
    let config = GreedyConfig {
        max_new_tokens: 6,
        eos_token_ids: vec![],
        pad_token_id: 0,
    };
    let batched = greedy(&model, &prompts, &config).unwrap();
    for (p, b) in prompts.iter().zip(&batched) {
        assert_eq!(
            &greedy(&model, std::slice::from_ref(p), &config).unwrap()[0],
            b
        );
    }
    assert!(greedy(&model, &[], &config).is_err());
    assert!(greedy(&model, &[vec![]], &config).is_err());
    assert!(greedy(&model, &[vec![100_000]], &config).is_err());
}
