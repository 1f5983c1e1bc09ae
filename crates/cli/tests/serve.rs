//! `rlft serve` answers the OpenAI-compatible API with what the local engine generates.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::QWEN2;
use rlft_models::{CausalLm, ChatTokenizer, LoadOptions};
use rlft_rollout::{
    HttpConfig, HttpEngine, LocalConfig, LocalEngine, Prompt, RolloutEngine, SamplingParams,
};

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_returns_the_local_engines_greedy_completions() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rlft"))
        .args(["serve", "--model", QWEN2, "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Kill(child);
    let mut url = String::new();
    BufReader::new(stdout).read_line(&mut url).unwrap();
    let url = url.trim().to_string();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/v1"),
        "{url:?}"
    );

    let tok = ChatTokenizer::from_dir(QWEN2).unwrap();
    let local = LocalEngine::new(
        CausalLm::from_pretrained(QWEN2, &burn::tensor::Device::flex(), LoadOptions::default())
            .unwrap(),
        Some(tok.clone()),
        LocalConfig::default(),
    )
    .unwrap();
    let http = HttpEngine::new(HttpConfig::new(url)).unwrap();
    let prompts = vec![
        Prompt::Tokens(tok.encode("What is 2+3?", false).unwrap()),
        Prompt::Tokens(tok.encode("Say hello.", false).unwrap()),
    ];
    let params = SamplingParams::greedy(6);
    let remote = http.generate(&prompts, &params).unwrap();
    let here = local.generate(&prompts, &params).unwrap();
    let ids = |v: &Vec<Vec<rlft_core::Completion>>| -> Vec<Vec<u32>> {
        v.iter().flatten().map(|c| c.token_ids.clone()).collect()
    };
    assert_eq!(ids(&remote), ids(&here));
    drop(child);
}
