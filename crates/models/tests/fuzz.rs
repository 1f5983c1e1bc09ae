//! Fuzzing the parsers of rlft-models that take user input (issue 18): the safetensors header
//! (through the loader), the shard index, tokenizer text and ids, chat-template messages and
//! chat-template sources. Each must return a value or an error without panicking; a shard
//! index that loads must name only files inside the model directory.
//!
//! `fuzz_*` run a few hundred inputs each in the normal test run; the `#[ignore]`d
//! `fuzz_long_*` variants run 10^6 each (the safetensors loader, which builds a model per
//! input, spreads its inputs over all cores): `cargo test --release -p rlft-models --test fuzz
//! -- --ignored fuzz`
//! (figures in docs/reliability.md).

mod common;

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use common::fixture;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rlft_models::{
    CausalLm, ChatMessage, ChatTemplate, ChatTemplateOptions, ChatTokenizer, LoadOptions,
    ModelConfig, weight_files,
};

const SHORT: u32 = 256;
const LONG: u32 = 1_000_000;

fn fuzz<S: Strategy>(name: &str, cases: u32, strategy: S, check: impl Fn(S::Value)) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let t0 = std::time::Instant::now();
    runner
        .run(&strategy, |v| {
            check(v);
            Ok(())
        })
        .unwrap();
    eprintln!(
        "fuzz {name}: {cases} inputs, 0 panics, {:.1}s",
        t0.elapsed().as_secs_f64()
    );
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rlft-models-fuzz-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn text(atoms: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..max)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned());
    let built = proptest::collection::vec(proptest::sample::select(atoms), 0..max / 4)
        .prop_map(|v| v.concat());
    prop_oneof![bytes, built]
}

/// A safetensors file: arbitrary bytes, or the fixture's file truncated, with header bytes
/// overwritten, or with an arbitrary header behind a valid length prefix.
fn weights_input() -> impl Strategy<Value = Vec<u8>> {
    let base = std::fs::read(fixture("qwen2").join("model.safetensors")).unwrap();
    let header_end = 8 + u64::from_le_bytes(base[..8].try_into().unwrap()) as usize;
    let (b1, b2, b3) = (base.clone(), base.clone(), base);
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        (0..b1.len()).prop_map(move |n| b1[..n].to_vec()),
        proptest::collection::vec((0..header_end, any::<u8>()), 1..8).prop_map(move |edits| {
            let mut b = b2.clone();
            for (i, v) in edits {
                b[i] = v;
            }
            b
        }),
        text(HEADER, 400).prop_map(move |h| {
            let mut b = (h.len() as u64).to_le_bytes().to_vec();
            b.extend_from_slice(h.as_bytes());
            b.extend_from_slice(&b3[header_end..]);
            b
        }),
    ]
}

const HEADER: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\"dtype\"",
    "\"F32\"",
    "\"BF16\"",
    "\"I64\"",
    "\"shape\"",
    "\"data_offsets\"",
    "0",
    "1",
    "64",
    "18446744073709551615",
    "\"__metadata__\"",
    "\"model.embed_tokens.weight\"",
    "\"lm_head.weight\"",
    "\"format\"",
    "\"pt\"",
    "-1",
];

fn load_weights(config: &ModelConfig, path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    let _ = CausalLm::from_safetensors(
        config,
        &[path.to_path_buf()],
        &Device::flex(),
        LoadOptions::default(),
    );
}

/// Each safetensors input builds and loads a (tiny) model, so the inputs are spread over one
/// runner per core, each with its own file and its own random seed.
fn weights_case(cases: u32) {
    let config = ModelConfig::from_file(&fixture("qwen2").join("config.json")).unwrap();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let t0 = std::time::Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let config = &config;
            let share = cases / threads + u32::from(t < cases % threads);
            scope.spawn(move || {
                let dir = scratch(&format!("weights-{cases}-{t}"));
                let path = dir.join("model.safetensors");
                fuzz("safetensors header", share, weights_input(), |b| {
                    load_weights(config, &path, &b)
                });
            });
        }
    });
    eprintln!(
        "fuzz safetensors header: {cases} inputs over {threads} runners, 0 panics, {:.1}s",
        t0.elapsed().as_secs_f64()
    );
}

const INDEX: &[&str] = &[
    "{",
    "}",
    ":",
    ",",
    "\"weight_map\"",
    "\"metadata\"",
    "\"a.weight\"",
    "\"b\"",
    "\"model-00001-of-00006.safetensors\"",
    "\"../../etc/passwd\"",
    "\"/etc/passwd\"",
    "\"sub/x.safetensors\"",
    "\"..\"",
    "\".\"",
    "\"\"",
    "\"C:\\\\x\"",
    "null",
    "1",
];

fn index_case(cases: u32) {
    let dir = scratch(&format!("index-{cases}"));
    let index = dir.join("model.safetensors.index.json");
    fuzz("shard index", cases, text(INDEX, 200), |t| {
        std::fs::write(&index, &t).unwrap();
        if let Ok(files) = weight_files(&dir) {
            for f in files {
                assert_eq!(f.parent(), Some(dir.as_path()), "{t:?} → {}", f.display());
            }
        }
    });
}

const CHAT: &[&str] = &[
    "<|im_start|>",
    "<|im_end|>",
    "<|endoftext|>",
    "user",
    "assistant",
    "system",
    "{{",
    "}}",
    "{%",
    "%}",
    "\n",
    " ",
    "a",
    "é",
    "🦀",
    "\u{0}",
    "<",
    ">",
    "\\",
    "\"",
];

fn tokenizer_case(cases: u32) {
    let tok = ChatTokenizer::from_dir(fixture("qwen2")).unwrap();
    let strategy = (
        text(CHAT, 200),
        proptest::collection::vec(any::<u32>(), 0..32),
        proptest::collection::vec((text(CHAT, 16), text(CHAT, 64)), 0..4),
    );
    fuzz(
        "tokenizer and chat messages",
        cases,
        strategy,
        |(s, ids, msgs)| {
            let _ = tok.encode(&s, false);
            let _ = tok.encode(&s, true);
            let _ = tok.decode(&ids, true);
            let _ = tok.decode(&ids, false);
            let messages: Vec<ChatMessage> = msgs
                .iter()
                .map(|(r, c)| ChatMessage::new(r.as_str(), c.as_str()))
                .collect();
            let _ = tok.apply_chat_template(
                &messages,
                &ChatTemplateOptions {
                    add_generation_prompt: true,
                    ..Default::default()
                },
            );
        },
    );
}

const JINJA: &[&str] = &[
    "{%",
    "%}",
    "{{",
    "}}",
    "{#",
    "#}",
    " for m in messages ",
    " endfor ",
    " if ",
    " else ",
    " endif ",
    "m.role",
    "m['content']",
    "messages",
    "|",
    "tojson",
    "raise_exception('x')",
    "add_generation_prompt",
    "loop.last",
    "(",
    ")",
    "'",
    "\"",
    "+",
    "~",
    " ",
    "\n",
    "x",
    "bos_token",
    "eos_token",
    "range(3)",
    "[",
    "]",
    ".",
    "set ",
    "=",
    "-",
];

fn template_case(cases: u32) {
    let messages = [
        ChatMessage::new("system", "s"),
        ChatMessage::new("user", "u"),
        ChatMessage::new("assistant", "a"),
    ];
    fuzz("chat template source", cases, text(JINJA, 160), |src| {
        if let Ok(t) = ChatTemplate::new(&src) {
            let _ = t.render(
                &messages,
                &[("eos_token", "</s>")],
                &ChatTemplateOptions::default(),
            );
        }
    });
}

#[test]
fn fuzz_safetensors_header() {
    weights_case(SHORT);
}

#[test]
#[ignore = "long fuzz run: cargo test --release -- --ignored fuzz"]
fn fuzz_long_safetensors_header() {
    weights_case(LONG);
}

#[test]
fn fuzz_shard_index() {
    index_case(SHORT);
}

#[test]
#[ignore = "long fuzz run: cargo test --release -- --ignored fuzz"]
fn fuzz_long_shard_index() {
    index_case(LONG);
}

#[test]
fn fuzz_tokenizer_and_chat_messages() {
    tokenizer_case(SHORT);
}

#[test]
#[ignore = "long fuzz run: cargo test --release -- --ignored fuzz"]
fn fuzz_long_tokenizer_and_chat_messages() {
    tokenizer_case(LONG);
}

#[test]
fn fuzz_chat_template_source() {
    template_case(SHORT);
}

#[test]
#[ignore = "long fuzz run: cargo test --release -- --ignored fuzz"]
fn fuzz_long_chat_template_source() {
    template_case(LONG);
}

/// Issue 18: a shard index naming `../../etc/passwd` (or an absolute path, or a sub-path) is
/// an error naming the index and the shard, not a read outside the model directory.
#[test]
fn shard_paths_outside_the_model_directory_are_refused() {
    let dir = scratch("escape");
    for bad in [
        "../../etc/passwd",
        "/etc/passwd",
        "sub/model.safetensors",
        "..",
    ] {
        let index = serde_json::json!({ "weight_map": { "lm_head.weight": bad } });
        std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
        let err = weight_files(&dir).unwrap_err().to_string();
        assert!(
            err.contains("must be a file name inside the model directory") && err.contains(bad),
            "{bad}: {err}"
        );
    }
    // The real sharded fixture still loads its six shards.
    assert_eq!(weight_files(&fixture("qwen2_sharded")).unwrap().len(), 6);
}

/// Issue 18: exported weights get the mode of every other written file (0644 under the usual
/// umask), not the 0600 of a private temporary file.
#[cfg(unix)]
#[test]
fn exported_weights_have_the_mode_of_the_other_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("mode");
    let model =
        CausalLm::from_pretrained(fixture("qwen2"), &Device::flex(), LoadOptions::default())
            .unwrap();
    model
        .save_pretrained(dir.join("out"), rlft_models::ExportOptions::default())
        .unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let plain = dir.join("plain");
    std::fs::File::create(&plain).unwrap();
    assert_eq!(mode(&dir.join("out/model.safetensors")), mode(&plain));
    assert_eq!(mode(&dir.join("out/config.json")), mode(&plain));
}
