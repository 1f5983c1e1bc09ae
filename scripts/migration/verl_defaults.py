#!/usr/bin/env python3
"""Record the verl 0.9.1 defaults that examples/configs/verl_grpo_gsm8k.toml reproduces, for
the test that checks it.

The values are read from verl's own files without importing verl: the Hydra defaults in
`verl/trainer/config/_generated_ppo_trainer.yaml` and, with `ast`, the `epsilon` default of
`compute_grpo_outcome_advantage` in `verl/trainer/ppo/core_algos.py`.

Usage (from the repository root):

    python -m venv .venv && .venv/bin/pip install --no-deps -r scripts/migration/requirements.txt
    .venv/bin/python scripts/migration/verl_defaults.py   # writes crates/cli/tests/fixtures/verl_defaults.json

Deterministic; CI does not run it.
"""

import argparse
import ast
import importlib.metadata
import importlib.util
import json
from pathlib import Path

import yaml

KEYS = [
    "actor_rollout_ref.actor.optim.lr",
    "actor_rollout_ref.actor.optim.weight_decay",
    "actor_rollout_ref.actor.optim.betas",
    "actor_rollout_ref.actor.optim.clip_grad",
    "actor_rollout_ref.actor.optim.lr_scheduler_type",
    "actor_rollout_ref.actor.optim.lr_warmup_steps_ratio",
    "actor_rollout_ref.actor.ppo_mini_batch_size",
    "actor_rollout_ref.actor.ppo_epochs",
    "actor_rollout_ref.actor.clip_ratio_low",
    "actor_rollout_ref.actor.clip_ratio_high",
    "actor_rollout_ref.actor.clip_ratio_c",
    "actor_rollout_ref.actor.loss_agg_mode",
    "actor_rollout_ref.actor.entropy_coeff",
    "actor_rollout_ref.actor.use_kl_loss",
    "actor_rollout_ref.actor.kl_loss_coef",
    "actor_rollout_ref.actor.kl_loss_type",
    "actor_rollout_ref.actor.policy_loss.loss_mode",
    "actor_rollout_ref.rollout.temperature",
    "actor_rollout_ref.rollout.top_p",
    "actor_rollout_ref.rollout.top_k",
    "algorithm.adv_estimator",
    "algorithm.norm_adv_by_std_in_grpo",
    "data.max_prompt_length",
    "data.max_response_length",
    "data.train_batch_size",
    "data.shuffle",
    "data.prompt_key",
]


def package_dir(name: str) -> Path:
    return Path(list(importlib.util.find_spec(name).submodule_search_locations)[0])


def lookup(tree, dotted):
    for part in dotted.split("."):
        tree = tree[part]
    return tree


def grpo_epsilon(core_algos: str) -> float:
    for node in ast.walk(ast.parse(core_algos)):
        if isinstance(node, ast.FunctionDef) and node.name == "compute_grpo_outcome_advantage":
            args = node.args
            names = [a.arg for a in args.args]
            defaults = dict(zip(names[len(names) - len(args.defaults):], args.defaults))
            defaults.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults) if d})
            return ast.literal_eval(defaults["epsilon"])
    raise SystemExit("compute_grpo_outcome_advantage not found")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="crates/cli/tests/fixtures/verl_defaults.json")
    out = Path(ap.parse_args().out)
    root = package_dir("verl")
    tree = yaml.safe_load((root / "trainer/config/_generated_ppo_trainer.yaml").read_text())
    values = {k: lookup(tree, k) for k in KEYS}
    values["core_algos.compute_grpo_outcome_advantage.epsilon"] = grpo_epsilon(
        (root / "trainer/ppo/core_algos.py").read_text()
    )
    record = {
        "source": "verl/trainer/config/_generated_ppo_trainer.yaml and verl/trainer/ppo/core_algos.py",
        "verl": importlib.metadata.version("verl"),
        "defaults": values,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
