#!/usr/bin/env python3
"""Record the defaults of TRL's GRPOConfig (with the TrainingArguments fields it inherits) as
TRL 1.16 and transformers 5.10.2 define them, for the test that checks
examples/configs/trl_grpo_quickstart.toml against TRL's quickstart settings.

The values are read from the packages' own source with `ast` (the dataclass field defaults of
`transformers.TrainingArguments`, TRL's `_BaseConfig` and `GRPOConfig`, later classes
overriding earlier ones), so neither torch nor a GPU is needed: install both wheels without
their dependencies.

Usage (from the repository root):

    python -m venv .venv && .venv/bin/pip install --no-deps -r scripts/migration/requirements.txt
    .venv/bin/python scripts/migration/trl_grpo_defaults.py   # writes crates/cli/tests/fixtures/trl_grpo_defaults.json

Deterministic; CI does not run it.
"""

import argparse
import ast
import importlib.metadata
import importlib.util
import json
from pathlib import Path

# The fields the quickstart depends on (everything the example config sets).
FIELDS = [
    "learning_rate", "adam_beta1", "adam_beta2", "adam_epsilon", "weight_decay",
    "max_grad_norm", "lr_scheduler_type", "warmup_steps", "warmup_ratio", "seed",
    "per_device_train_batch_size", "gradient_accumulation_steps", "num_train_epochs",
    "num_generations", "max_completion_length", "shuffle_dataset", "generation_batch_size",
    "steps_per_generation", "temperature", "top_p", "top_k", "min_p", "repetition_penalty",
    "beta", "num_iterations", "epsilon", "epsilon_high", "delta", "importance_sampling_level",
    "reward_weights", "multi_objective_aggregation", "scale_rewards", "loss_type",
    "mask_truncated_completions", "entropy_coef", "use_bias_correction_kl", "sync_ref_model",
    "top_entropy_quantile", "sapo_temperature_pos", "sapo_temperature_neg",
]


def source(package: str, relative: str) -> str:
    """A package file's text, found without importing the package."""
    spec = importlib.util.find_spec(package)
    root = Path(list(spec.submodule_search_locations)[0])
    return (root / relative).read_text()


def defaults(text: str, class_name: str) -> dict:
    """The literal default of each annotated field of `class_name` in `text`."""
    out = {}
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for stmt in node.body:
                if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                    continue
                value = stmt.value
                if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "field":
                    value = next((k.value for k in value.keywords if k.arg == "default"), None)
                if value is None:
                    continue
                try:
                    out[stmt.target.id] = ast.literal_eval(value)
                except ValueError:
                    # Enum members such as SchedulerType.LINEAR: keep the member's name.
                    if isinstance(value, ast.Attribute):
                        out[stmt.target.id] = value.attr.lower()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/cli/tests/fixtures/trl_grpo_defaults.json")
    out = Path(ap.parse_args().out)
    merged = {}
    merged.update(defaults(source("transformers", "training_args.py"), "TrainingArguments"))
    merged.update(defaults(source("trl", "trainer/base_config.py"), "_BaseConfig"))
    merged.update(defaults(source("trl", "trainer/grpo_config.py"), "GRPOConfig"))
    missing = [f for f in FIELDS if f not in merged]
    if missing:
        raise SystemExit(f"fields without a literal default: {missing}")
    record = {
        "source": "dataclass defaults of transformers.TrainingArguments, trl _BaseConfig and GRPOConfig",
        "trl": importlib.metadata.version("trl"),
        "transformers": importlib.metadata.version("transformers"),
        "defaults": {f: merged[f] for f in FIELDS},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
