#!/usr/bin/env python3
"""Build tiny random Qwen2, Qwen3 and Llama 3 checkpoints with transformers and record the
reference outputs that `crates/models/tests/` compares against.

Nothing is downloaded: every model is built from a config, every weight (norms and biases
included) is drawn from a seeded generator, and the byte-level BPE tokenizer is trained on a
small corpus written in this file. Running the script twice writes the same bytes.

Usage (from the repository root):

    python scripts/hf_models/make_fixtures.py [--out crates/models/tests/fixtures]

Layout written under --out:

    <arch>/            a complete Hugging Face checkpoint directory (config.json,
                       model.safetensors, tokenizer.json, tokenizer_config.json, ...) plus
                       expected.safetensors (reference tensors) and expected.json (metadata,
                       chat-template renderings, tokenizer encodings, library versions)
    qwen2_sharded/     the qwen2 weights saved in several shards with an index
    qwen2_bf16/        the qwen2 weights saved as bfloat16, with reference logits of the
                       bf16-rounded weights computed in float32
    qwen3_f16/         the qwen3 weights saved as float16, likewise
"""

import argparse
import json
import os
import platform
import shutil
import sys
from pathlib import Path

import safetensors
import tokenizers
import torch
import transformers
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

HERE = Path(__file__).resolve().parent
SEED = 20261121
VOCAB_SIZE = 300
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|begin_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
]

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A tiny model learns to count: one, two, three, four, five.",
    "Reinforcement learning finetunes language models with verifiable rewards.",
    "The answer is 42. The answer is not 24.",
    "def add(a, b):\n    return a + b\n",
    "Solve 3 + 4 * 2 = 11 and then 12 / 4 = 3.",
    "Hello, world! Hello again, world.",
    "Grouped-query attention shares key and value heads between query heads.",
    "Rotary position embeddings rotate pairs of channels by an angle.",
    "She said: \"think step by step\" and wrote the answer in a box.",
] * 4

# Texts whose token ids make up the batches below; lengths differ so padding matters.
TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Solve 3 + 4 * 2",
    "Hello, world! The answer is 42 and rotary embeddings rotate.",
]
PROMPTS = [
    "The answer is",
    "Hello",
    "def add(a, b):",
]
MAX_NEW_TOKENS = 8

CONVERSATIONS = [
    [{"role": "user", "content": "What is 2 + 2?"}],
    [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "  Say hi.  "},
        {"role": "assistant", "content": "<think>\nbe brief\n</think>\n\nHi!"},
        {"role": "user", "content": "Again?"},
    ],
    [
        {"role": "user", "content": "Count to three."},
        {"role": "assistant", "content": "one, two, three"},
    ],
]
# Keys are written in sorted order so that the Rust side, whose JSON maps may sort keys,
# sees the same order that Python's insertion-ordered dicts give `tojson`.
TOOLS = [
    {
        "function": {
            "description": "Add two integers \u2013 exactly.",
            "name": "add",
            "parameters": {
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
                "type": "object",
            },
        },
        "type": "function",
    }
]
TOOL_CONVERSATION = [
    {"content": "Add 2 and 3.", "role": "user"},
    {
        "content": "",
        "role": "assistant",
        "tool_calls": [{"function": {"arguments": {"a": 2, "b": 3}, "name": "add"}, "type": "function"}],
    },
    {"content": "5", "role": "tool"},
]


def build_tokenizer():
    """A byte-level BPE (like Qwen's and Llama 3's) trained on CORPUS."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=1,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    assert tok.get_vocab_size() == VOCAB_SIZE, tok.get_vocab_size()
    return tok


def hf_tokenizer(base, arch):
    """Wrap the trained tokenizer with the special tokens and chat template of `arch`."""
    tok = Tokenizer.from_str(base.to_str())
    if arch == "llama":
        bos = "<|begin_of_text|>"
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))]
        )
        template = (HERE / "llama3_chat_template.jinja").read_text()
        kw = dict(bos_token=bos, eos_token="<|eot_id|>", pad_token="<|endoftext|>")
    elif arch == "qwen3":
        template = (HERE / "reasoning_chat_template.jinja").read_text()
        kw = dict(eos_token="<|im_end|>", pad_token="<|endoftext|>")
    else:
        template = (HERE / "qwen2_5_chat_template.jinja").read_text()
        kw = dict(eos_token="<|im_end|>", pad_token="<|endoftext|>")
    return PreTrainedTokenizerFast(tokenizer_object=tok, chat_template=template, **kw)


def make_config(arch, tok):
    common = dict(
        vocab_size=VOCAB_SIZE,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=128,
        rms_norm_eps=1e-6,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    if arch == "qwen2":
        return Qwen2Config(
            num_key_value_heads=2, rope_theta=10000.0, tie_word_embeddings=True,
            bos_token_id=tok.convert_tokens_to_ids("<|endoftext|>"), **common
        )
    if arch == "qwen3":
        # head_dim * heads != hidden_size on purpose: Qwen3 reads head_dim explicitly.
        return Qwen3Config(
            num_key_value_heads=2, head_dim=16, rope_theta=1000000.0, tie_word_embeddings=False,
            attention_bias=False, bos_token_id=tok.convert_tokens_to_ids("<|endoftext|>"), **common
        )
    # Llama 3 with llama3 rope scaling chosen so that all three frequency bands (kept,
    # smoothed, divided by the factor) occur with head_dim 8 and theta 1e4.
    return LlamaConfig(
        num_key_value_heads=1, rope_theta=10000.0, tie_word_embeddings=False,
        rope_scaling={
            "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 64,
        },
        bos_token_id=tok.bos_token_id, **common
    )


MODEL_CLASSES = {"qwen2": Qwen2ForCausalLM, "qwen3": Qwen3ForCausalLM, "llama": LlamaForCausalLM}


def randomise(model, seed):
    """Draw every parameter from a seeded generator: weights N(0, 0.25^2), norm weights
    1 + N(0, 0.2^2), biases N(0, 0.2^2)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * noise)
            elif name.endswith(".bias"):
                p.copy_(0.2 * noise)
            else:
                p.copy_(0.25 * noise)


def positions(mask):
    """Position ids as transformers' generate derives them: cumsum(mask) - 1, 1 on padding."""
    pos = mask.long().cumsum(-1) - 1
    return pos.masked_fill(mask == 0, 1)


def pad(seqs, pad_id, side):
    n = max(len(s) for s in seqs)
    ids, mask = [], []
    for s in seqs:
        fill = [pad_id] * (n - len(s))
        ids.append(s + fill if side == "right" else fill + s)
        ones = [1] * len(s)
        zeros = [0] * (n - len(s))
        mask.append(ones + zeros if side == "right" else zeros + ones)
    return torch.tensor(ids, dtype=torch.long), torch.tensor(mask, dtype=torch.long)


@torch.no_grad()
def logits_of(model, ids, mask):
    return model(input_ids=ids, attention_mask=mask, position_ids=positions(mask)).logits.float()


def versions():
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "safetensors": safetensors.__version__,
    }


def write_json(path, obj):
    path.write_text(json.dumps(obj, indent=1, ensure_ascii=False, sort_keys=True) + "\n")


def reference_outputs(model, tok, prefix=""):
    """Tensors for logits parity: right- and left-padded batches and single sequences."""
    seqs = [tok.encode(t) for t in TEXTS]
    out = {}
    for side in ("right", "left"):
        ids, mask = pad(seqs, tok.pad_token_id, side)
        out[f"{prefix}{side}.input_ids"] = ids
        out[f"{prefix}{side}.attention_mask"] = mask
        out[f"{prefix}{side}.logits"] = logits_of(model, ids, mask)
    return out, seqs


def fixtures_for(arch, base_tok, out_dir, seed):
    tok = hf_tokenizer(base_tok, arch)
    config = make_config(arch, tok)
    torch.manual_seed(seed)
    model = MODEL_CLASSES[arch](config).float().eval()
    model.config._attn_implementation = "eager"
    randomise(model, seed)

    d = out_dir / arch
    shutil.rmtree(d, ignore_errors=True)
    model.save_pretrained(d)
    tok.save_pretrained(d)

    tensors, seqs = reference_outputs(model, tok)
    for i, s in enumerate(seqs):
        ids = torch.tensor([s], dtype=torch.long)
        mask = torch.ones_like(ids)
        tensors[f"single.{i}.input_ids"] = ids
        tensors[f"single.{i}.logits"] = logits_of(model, ids, mask)

    # Per-token log-probs of the next token (right-padded batch), as an RL scorer wants them:
    # logprob[b, t] = log_softmax(logits[b, t])[ids[b, t + 1]]; the last column has no target
    # and holds the log-prob of the pad id.
    ids, mask = tensors["right.input_ids"], tensors["right.attention_mask"]
    targets = torch.cat([ids[:, 1:], torch.full_like(ids[:, :1], tok.pad_token_id)], dim=1)
    lp = torch.log_softmax(tensors["right.logits"], dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    tensors["logprobs.targets"] = targets
    tensors["logprobs.values"] = lp

    # Greedy generation from a left-padded batch of prompts.
    prompt_ids = [tok.encode(p) for p in PROMPTS]
    gids, gmask = pad(prompt_ids, tok.pad_token_id, "left")
    gen = model.generate(
        input_ids=gids, attention_mask=gmask, do_sample=False, num_beams=1,
        max_new_tokens=MAX_NEW_TOKENS, min_new_tokens=0, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, repetition_penalty=None, temperature=None, top_p=None, top_k=None,
    )
    tensors["generate.input_ids"] = gids
    tensors["generate.attention_mask"] = gmask
    tensors["generate.new_tokens"] = gen[:, gids.shape[1]:].contiguous()

    tensors = {k: v.contiguous() for k, v in tensors.items()}
    save_file(tensors, str(d / "expected.safetensors"), metadata={"versions": json.dumps(versions(), sort_keys=True)})

    chats = []
    for conv in CONVERSATIONS:
        for agp in (False, True):
            chats.append({
                "messages": conv,
                "add_generation_prompt": agp,
                "text": tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=agp),
            })
    if arch == "qwen2":
        chats.append({
            "messages": TOOL_CONVERSATION,
            "tools": TOOLS,
            "add_generation_prompt": True,
            "text": tok.apply_chat_template(TOOL_CONVERSATION, tools=TOOLS, tokenize=False, add_generation_prompt=True),
        })
    if arch == "qwen3":
        conv = CONVERSATIONS[0]
        chats.append({
            "messages": conv,
            "add_generation_prompt": True,
            "enable_thinking": False,
            "text": tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True, enable_thinking=False),
        })
    for c in chats:
        c["ids"] = tok.encode(c["text"], add_special_tokens=False)

    meta = {
        "arch": arch,
        "seed": seed,
        "versions": versions(),
        "texts": TEXTS,
        "encodings": [{"text": t, "ids": s} for t, s in zip(TEXTS, seqs)],
        "decodings": [{"ids": s, "text": tok.decode(s, skip_special_tokens=False)} for s in seqs],
        "prompts": PROMPTS,
        "max_new_tokens": MAX_NEW_TOKENS,
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
        "chats": chats,
        "num_parameters": sum(p.numel() for p in model.parameters()),
    }
    write_json(d / "expected.json", meta)
    return model, tok


def half_variant(model, tok, out_dir, name, dtype):
    """Save the weights in `dtype`; the reference is the float32 model built from the rounded
    weights, which is what loading with an upcast must reproduce."""
    d = out_dir / name
    shutil.rmtree(d, ignore_errors=True)
    half = type(model)(model.config)
    half.load_state_dict(model.state_dict())
    half = half.to(dtype)
    half.save_pretrained(d)
    ref = type(model)(model.config).float().eval()
    ref.config._attn_implementation = "eager"
    ref.load_state_dict({k: v.float() for k, v in half.state_dict().items()})
    tensors, _ = reference_outputs(ref, tok)
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    save_file(tensors, str(d / "expected.safetensors"), metadata={"versions": json.dumps(versions(), sort_keys=True)})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="crates/models/tests/fixtures")
    args = ap.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)

    base = build_tokenizer()
    models_ = {}
    for i, arch in enumerate(["qwen2", "qwen3", "llama"]):
        models_[arch] = fixtures_for(arch, base, out_dir, SEED + i)

    qwen2, qtok = models_["qwen2"]
    d = out_dir / "qwen2_sharded"
    shutil.rmtree(d, ignore_errors=True)
    qwen2.save_pretrained(d, max_shard_size="20KB")
    assert (d / "model.safetensors.index.json").exists(), "expected a sharded checkpoint"

    half_variant(qwen2, qtok, out_dir, "qwen2_bf16", torch.bfloat16)
    qwen3, q3tok = models_["qwen3"]
    half_variant(qwen3, q3tok, out_dir, "qwen3_f16", torch.float16)
    print(json.dumps(versions()))


if __name__ == "__main__":
    sys.exit(main())
