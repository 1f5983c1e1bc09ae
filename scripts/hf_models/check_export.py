#!/usr/bin/env python3
"""Check that a checkpoint exported by rlft-models (`CausalLm::save_pretrained`) loads in
transformers and reproduces the reference logits of the fixture it came from.

    python scripts/hf_models/check_export.py EXPORTED_DIR crates/models/tests/fixtures/qwen2

Exits non-zero when loading fails or the logits differ by more than 1e-4.
"""

import sys

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM


def main():
    exported, fixture = sys.argv[1], sys.argv[2]
    model = AutoModelForCausalLM.from_pretrained(exported, attn_implementation="eager").float().eval()
    ref = load_file(f"{fixture}/expected.safetensors")
    worst = 0.0
    for side in ("right", "left"):
        ids, mask = ref[f"{side}.input_ids"], ref[f"{side}.attention_mask"]
        pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
        worst = max(worst, float((logits - ref[f"{side}.logits"])[mask.bool()].abs().max()))
    print(f"{exported}: max |dlogit| = {worst:.3g}")
    return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
