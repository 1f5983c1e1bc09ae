//! Tokenizer and chat-template parity with transformers, and the character-level tokenizer.

mod common;

use burn::tensor::Device;
use common::*;
use rlft_models::{
    CausalLm, CharTokenizer, ChatMessage, ChatTemplateOptions, ChatTokenizer, qwen2,
};

#[test]
fn encodings_and_decodings_match_transformers() {
    for arch in ARCHS {
        let tok = ChatTokenizer::from_dir(fixture(arch)).unwrap();
        let meta = expected_json(arch);
        for e in meta["encodings"].as_array().unwrap() {
            let ids: Vec<u32> = serde_json::from_value(e["ids"].clone()).unwrap();
            assert_eq!(
                tok.encode(e["text"].as_str().unwrap(), true).unwrap(),
                ids,
                "{arch}"
            );
        }
        for d in meta["decodings"].as_array().unwrap() {
            let ids: Vec<u32> = serde_json::from_value(d["ids"].clone()).unwrap();
            assert_eq!(
                tok.decode(&ids, false).unwrap(),
                d["text"].as_str().unwrap(),
                "{arch}"
            );
        }
        let id = |k: &str| meta[k].as_u64().map(|x| x as u32);
        assert_eq!(tok.eos_token_id(), id("eos_token_id"), "{arch} eos");
        assert_eq!(tok.pad_token_id(), id("pad_token_id"), "{arch} pad");
        assert_eq!(tok.bos_token_id(), id("bos_token_id"), "{arch} bos");
    }
}

#[test]
fn chat_templates_render_as_transformers() {
    let mut checked = 0;
    for arch in ARCHS {
        let tok = ChatTokenizer::from_dir(fixture(arch)).unwrap();
        let meta = expected_json(arch);
        for chat in meta["chats"].as_array().unwrap() {
            let messages = chat["messages"].as_array().unwrap();
            let mut options = ChatTemplateOptions {
                add_generation_prompt: chat["add_generation_prompt"].as_bool().unwrap(),
                tools: chat.get("tools").cloned(),
                ..Default::default()
            };
            if let Some(v) = chat.get("enable_thinking") {
                options.extra.insert("enable_thinking".into(), v.clone());
            }
            let text = tok.apply_chat_template(messages, &options).unwrap();
            assert_eq!(text, chat["text"].as_str().unwrap(), "{arch}: {chat}");
            let ids: Vec<u32> = serde_json::from_value(chat["ids"].clone()).unwrap();
            assert_eq!(tok.encode(&text, false).unwrap(), ids, "{arch} ids");
            checked += 1;
        }
    }
    assert!(checked >= 19, "only {checked} renderings compared");
}

#[test]
fn char_tokenizer_is_a_real_tokenizer_json() {
    let dir = scratch("char-tokenizer");
    let chars = CharTokenizer::ascii();
    chars.save(&dir).unwrap();
    let tok = ChatTokenizer::from_dir(&dir).unwrap();
    assert_eq!(tok.vocab_size(), chars.vocab_size());
    let text = "Hi, 2+2=4!\nok";
    let ids = tok.encode(text, false).unwrap();
    assert_eq!(ids.len(), text.chars().count());
    assert_eq!(tok.decode(&ids, false).unwrap(), text);
    // Unknown characters map to <unk>; specials are single tokens.
    assert_eq!(tok.encode("é", false).unwrap(), [3]);
    let chat = tok
        .apply_chat_template(
            &[ChatMessage::new("user", "hi")],
            &ChatTemplateOptions {
                add_generation_prompt: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        chat,
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    );
    let ids = tok.encode(&chat, false).unwrap();
    assert_eq!(ids[0], 1, "<|im_start|> is one special token");
    assert_eq!(tok.eos_token_id(), Some(0));
    // The tiny path: a tiny model over this vocabulary runs on the same code.
    let device = Device::flex();
    let model = CausalLm::new(&qwen2::tiny(tok.vocab_size()), &device);
    let n = ids.len();
    let ids = burn::tensor::Tensor::<2, burn::tensor::Int>::from_data(
        burn::tensor::TensorData::new(ids.iter().map(|&x| x as i64).collect::<Vec<_>>(), [1, n]),
        &device,
    );
    let logits = model.forward(ids, burn::tensor::Tensor::ones([1, n], &device));
    assert_eq!(logits.dims(), [1, n, chars.vocab_size()]);
}
