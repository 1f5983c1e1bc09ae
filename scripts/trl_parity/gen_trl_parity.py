#!/usr/bin/env python3
"""Generate golden parity fixtures for `rlft-core` from the reference implementations themselves.

Writes
  crates/rl-core/tests/fixtures/trl_parity.json   (TRL 1.16.0 GRPOTrainer code)
  crates/rl-core/tests/fixtures/verl_parity.json  (verl 0.9.1 verl.trainer.ppo.core_algos)

Nothing here re-types a loss or advantage formula. Every golden number comes from calling the
reference code on seeded random inputs:

* TRL loss: `GRPOTrainer._compute_loss`, on a trainer built with `object.__new__(GRPOTrainer)` whose
  attributes are set from a real `GRPOConfig` exactly as `GRPOTrainer.__init__` sets them, with
  `_get_per_token_logps_and_entropies` replaced on the instance by a function returning a leaf tensor
  of log-probs that we choose. Gradient = `logps.grad` after `loss.backward()`. Metrics are read from
  the trainer's own `_metrics["train"]`.
* TRL advantages: `GRPOTrainer._generate_and_score_completions` runs for real (including the real
  `_calculate_rewards` with a plain Python reward function that returns our chosen rewards, `None`
  for NaN). Only `_generate` is stubbed (it returns fixed token ids); no model is run (beta = 0 and
  old log-probs are not needed when gradient_accumulation_steps % steps_per_generation == 0).
* TRL log-probs: `trl.trainer.utils.selective_log_softmax(logits, targets, temperature)` and
  `entropy_from_logits(logits / temperature)` (the CPU code paths).
* verl: `compute_grpo_outcome_advantage`, `agg_loss`, `compute_policy_loss_vanilla` (with a real
  `ActorConfig`) and `kl_penalty`, called directly.

Run: scripts/trl_parity/README.md. Deterministic: two runs give byte-identical files.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import platform
import shutil
import sys
import tempfile
import warnings
from collections import defaultdict, deque
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU only, whatever the machine has
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)  # TRL warns (by design) about the rows whose reward function returned None

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
import trl  # noqa: E402
from accelerate import Accelerator  # noqa: E402
from transformers import TrainerState  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402
from trl.trainer.utils import entropy_from_logits, selective_log_softmax  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "crates" / "rl-core" / "tests" / "fixtures"
GENERATOR = "scripts/trl_parity/gen_trl_parity.py"
SEED = 0

torch.manual_seed(SEED)
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

# --------------------------------------------------------------------------------------------------
# helpers


def clean(x):
    """Recursively turn NaN/inf into None so the JSON is strict (serde_json rejects NaN)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    return x


def tl(t: torch.Tensor):
    return t.detach().cpu().tolist()


def write_json_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(clean(obj), allow_nan=False, separators=(",", ":"), ensure_ascii=True) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    print(f"wrote {path.relative_to(REPO)} ({len(text)} bytes)")


_OUTDIR = tempfile.mkdtemp(prefix="trl_parity_")  # GRPOConfig needs an output_dir; nothing is written there
atexit.register(shutil.rmtree, _OUTDIR, ignore_errors=True)


def grpo_config(**kw) -> GRPOConfig:
    base = dict(
        output_dir=_OUTDIR,
        report_to="none",
        use_cpu=True,
        gradient_accumulation_steps=1,
        steps_per_generation=1,
        num_iterations=1,
        seed=SEED,
        logging_dir=None,
    )
    base.update(kw)
    return GRPOConfig(**base)


class DummyModel(torch.nn.Module):
    """Stands in for the policy: only `.training` and `.is_gradient_checkpointing` are read."""

    is_gradient_checkpointing = False


def fresh_accelerator() -> Accelerator:
    # Building a GRPOConfig (TrainingArguments) resets the accelerate state, so make the accelerator after it.
    acc = Accelerator(cpu=True)
    assert acc.num_processes == 1 and acc.device.type == "cpu"
    return acc


def bare_trainer(args: GRPOConfig) -> GRPOTrainer:
    """A GRPOTrainer with no model or data, with the attributes that `GRPOTrainer.__init__` derives
    from `args` (grpo_trainer.py, TRL 1.16.0) set the same way."""
    tr = object.__new__(GRPOTrainer)
    tr.args = args
    tr.accelerator = fresh_accelerator()
    tr.model = DummyModel()
    tr.model.train()  # mode = "train"
    tr.current_gradient_accumulation_steps = args.gradient_accumulation_steps
    # __init__ lines ~782-983
    tr.max_completion_length = args.max_completion_length
    tr.num_generations = args.num_generations
    tr.num_generations_eval = args.num_generations_eval or args.num_generations
    tr.pad_to_multiple_of = args.pad_to_multiple_of
    tr.use_vllm = args.use_vllm
    tr.vllm_importance_sampling_correction = args.vllm_importance_sampling_correction
    tr.loss_type = args.loss_type
    tr.multi_objective_aggregation = args.multi_objective_aggregation
    tr.aux_loss_enabled = False  # no MoE router
    tr.scale_rewards = args.scale_rewards
    tr.importance_sampling_level = args.importance_sampling_level
    tr.off_policy_mask_threshold = args.off_policy_mask_threshold
    tr.mask_truncated_completions = args.mask_truncated_completions
    tr.top_entropy_quantile = args.top_entropy_quantile
    tr.entropy_coef = args.entropy_coef
    tr.use_adaptive_entropy = False
    tr._entropy_bonus_enabled = tr.entropy_coef != 0.0 or tr.use_adaptive_entropy
    tr.num_iterations = args.num_iterations
    tr.epsilon_low = args.epsilon
    tr.epsilon_high = args.epsilon_high if args.epsilon_high is not None else args.epsilon
    tr.beta = args.beta
    tr.ref_model = None
    tr._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    tr.log_multimodal = args.log_multimodal
    tr._logs = {
        "images": deque(maxlen=args.generation_batch_size),
        "prompt": deque(maxlen=args.generation_batch_size),
        "completion": deque(maxlen=args.generation_batch_size),
        "rewards": defaultdict(lambda: deque(maxlen=args.generation_batch_size)),
        "advantages": deque(maxlen=args.generation_batch_size),
        "extra": defaultdict(lambda: deque(maxlen=args.generation_batch_size)),
    }
    tr._pending_extra_logs = defaultdict(list)
    tr._pending_metrics = defaultdict(list)
    tr.environment_factories = None
    tr._multi_environment = False
    tr.environments = None
    tr.tools = []
    return tr


def metrics_of(tr: GRPOTrainer) -> dict:
    out = {}
    for k, v in tr._metrics["train"].items():
        assert len(v) == 1, (k, v)
        out[k] = float(v[0])
    return out


# --------------------------------------------------------------------------------------------------
# TRL loss cases

B, T, V = 6, 7, 16  # 2 prompts x 3 generations, 7 completion tokens
LOSS_TYPES = ["grpo", "bnpo", "dr_grpo", "dapo"]


def loss_inputs(seed: int, noise: float, with_ref: bool):
    g = torch.Generator().manual_seed(seed)
    # log-probs of sampled targets under a random softmax: strictly negative
    logits = 2.0 * torch.randn(B, T, V, generator=g)
    targets = torch.randint(0, V, (B, T), generator=g)
    logps = torch.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    old = logps + noise * torch.randn(B, T, generator=g)
    ref = logps + 0.3 * torch.randn(B, T, generator=g)
    entropies = 3.0 * torch.rand(B, T, generator=g)
    # ragged lengths, exactly one fully masked row, one full-length row
    lengths = torch.tensor([7, 5, 0, 3, 6, 1])[torch.randperm(B, generator=g)]
    mask = (torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)).long()  # TRL's completion_mask is long
    # advantages of both signs, not too small
    while True:
        adv = torch.randn(B, generator=g)
        active = lengths > 0
        if (adv[active] > 0.05).any() and (adv[active] < -0.05).any() and adv.abs().min() > 0.05:
            break
    return logps.float(), old.float(), (ref.float() if with_ref else None), entropies.float(), mask, adv.float()


def run_trl_loss(case: dict, seed: int, noise: float = 0.4, on_policy: bool = False) -> dict:
    args = grpo_config(
        loss_type=case["loss_type"],
        beta=case["beta"],
        epsilon=case["epsilon_low"],
        epsilon_high=case["epsilon_high"],
        importance_sampling_level=case["importance_sampling_level"],
        delta=case["delta"],
        use_bias_correction_kl=case["use_bias_correction_kl"],
        max_completion_length=case["max_completion_length"],
        num_generations=3,
        per_device_train_batch_size=B,
        **{k: case[k] for k in LOSS_TYPE_PARAMS if k in case},
    )
    tr = bare_trainer(args)
    with_ref = case["beta"] != 0.0
    logps, old, ref, entropies, mask, adv = loss_inputs(seed, noise, with_ref)
    if on_policy:
        old = None  # TRL then uses per_token_logps.detach()

    leaf = logps.clone().requires_grad_(True)

    def fake_logps_and_entropies(model, input_ids, attention_mask, logits_to_keep, **kwargs):
        assert logits_to_keep == T
        return leaf, entropies, None

    tr._get_per_token_logps_and_entropies = fake_logps_and_entropies

    # num_items_in_batch exactly as _generate_and_score_completions computes it (1 process)
    num_items_in_batch = tr.accelerator.gather(mask.sum()).sum()
    inputs = {
        "prompt_ids": torch.full((B, 2), 5, dtype=torch.long),
        "prompt_mask": torch.ones(B, 2, dtype=torch.long),
        "completion_ids": torch.full((B, T), 7, dtype=torch.long),
        "completion_mask": mask,
        "advantages": adv,
        "num_items_in_batch": num_items_in_batch,
    }
    if old is not None:
        inputs["old_per_token_logps"] = old
    if with_ref:
        inputs["ref_per_token_logps"] = ref

    loss = tr._compute_loss(tr.model, inputs)
    loss.backward()
    assert leaf.grad is not None

    out = dict(case)
    out.update(
        input_seed=seed,
        old_logps_noise_std=noise,
        clip_coverage=coverage(case, logps, logps if old is None else old, mask, adv),
        on_policy_old_logps_none=on_policy,
        num_items_in_batch=int(num_items_in_batch.item()),
        logps=tl(logps),
        old_logps=tl(logps if old is None else old),
        ref_logps=None if ref is None else tl(ref),
        advantages=tl(adv),
        mask=tl(mask),
        entropies=tl(entropies),
        loss=loss.item(),
        grad_logps=tl(leaf.grad),
        metrics=metrics_of(tr),
    )
    return out


# GRPOConfig fields of the sapo and vespo loss types; a case that sets none of them runs at TRL's defaults
# (and records them, so the Rust test reads every parameter from the fixture).
LOSS_TYPE_PARAMS = (
    "sapo_temperature_pos",
    "sapo_temperature_neg",
    "vespo_k_pos",
    "vespo_lambda_pos",
    "vespo_k_neg",
    "vespo_lambda_neg",
)


def loss_case(loss_type, beta, eh, level, *, name=None, delta=None, bias_kl=True, mcl=T, params=None):
    name = name or f"{loss_type}_b{beta}_eh{eh}_{level}"
    case = dict(
        name=name,
        loss_type=loss_type,
        beta=beta,
        epsilon_low=0.2,
        epsilon_high=eh,
        importance_sampling_level=level,
        delta=delta,
        use_bias_correction_kl=bias_kl,
        max_completion_length=mcl,
    )
    if loss_type in ("sapo", "vespo"):
        defaults = GRPOConfig.__dataclass_fields__
        prefix = loss_type + "_"
        for k in LOSS_TYPE_PARAMS:
            if k.startswith(prefix):
                case[k] = (params or {}).get(k, defaults[k].default)
    return case


def coverage(spec: dict, logps, old, mask, adv) -> dict:
    """Active tokens per clip regime reached by a case's inputs (informational; not TRL code).
    low/high: ratio below 1 - epsilon_low / above 1 + epsilon_high; pos/neg: advantage sign;
    delta_neg: ratio above delta with a negative advantage (where the delta cap changes the loss)."""
    m = mask.bool()
    a = adv.unsqueeze(1).expand(B, T)
    lr = logps - old
    if spec["importance_sampling_level"] == "sequence":
        lr = ((lr * m).sum(-1) / m.sum(-1).clamp(min=1)).unsqueeze(1).expand(B, T)
    r = lr.exp()
    lo, hi = 1 - spec["epsilon_low"], 1 + spec["epsilon_high"]
    cov = {
        "low_neg": int(((r < lo) & (a < 0) & m).sum()),
        "low_pos": int(((r < lo) & (a > 0) & m).sum()),
        "high_pos": int(((r > hi) & (a > 0) & m).sum()),
        "high_neg": int(((r > hi) & (a < 0) & m).sum()),
        "delta_neg": int(((r > (spec["delta"] or math.inf)) & (a < 0) & m).sum()),
    }
    if spec["loss_type"] == "cispo":
        # cispo caps the ratio at epsilon_high itself (not 1 + epsilon_high)
        cov["cap_pos"] = int(((r > spec["epsilon_high"]) & (a > 0) & m).sum())
        cov["cap_neg"] = int(((r > spec["epsilon_high"]) & (a < 0) & m).sum())
    return cov


def pick_seed(spec: dict, base: int, noise: float, on_policy: bool) -> int:
    """First seed from `base` whose inputs reach every clip regime (both bounds x both advantage
    signs, and the delta cap when delta is set). Deterministic."""
    if on_policy:
        return base
    for seed in range(base, base + 5000):
        logps, old, _, _, mask, adv = loss_inputs(seed, noise, False)
        cov = coverage(spec, logps, old, mask, adv)
        need = ["low_neg", "low_pos", "high_pos", "high_neg"] + (["delta_neg"] if spec["delta"] else [])
        if spec["loss_type"] == "cispo":
            need = ["low_neg", "low_pos", "cap_pos", "cap_neg"]
        if all(cov[k] > 0 for k in need):
            return seed
    raise RuntimeError(f"no seed reaches every clip regime for {spec['name']}")


def build_loss_cases() -> list[dict]:
    specs = []
    for lt in LOSS_TYPES:
        for beta in (0.0, 0.04):
            for eh in (0.2, 0.28):
                for level in ("token", "sequence"):
                    specs.append((loss_case(lt, beta, eh, level), {}))
    specs += [
        (loss_case("dapo", 0.0, 0.28, "token", name="dapo_b0.0_eh0.28_token_delta1.5", delta=1.5), {"noise": 0.6}),
        (loss_case("grpo", 0.04, 0.2, "token", name="grpo_b0.04_eh0.2_token_delta1.5", delta=1.5), {"noise": 0.6}),
        (loss_case("grpo", 0.04, 0.2, "token", name="grpo_b0.04_eh0.2_token_nobiaskl", bias_kl=False), {}),
        (loss_case("dapo", 0.04, 0.28, "sequence", name="dapo_b0.04_eh0.28_sequence_nobiaskl", bias_kl=False), {}),
        (loss_case("dr_grpo", 0.04, 0.28, "token", name="dr_grpo_b0.04_eh0.28_token_mcl10", mcl=10), {}),
        (loss_case("dr_grpo", 0.0, 0.2, "sequence", name="dr_grpo_b0.0_eh0.2_sequence_mcl10", mcl=10), {}),
        (loss_case("dapo", 0.04, 0.28, "token", name="dapo_b0.04_eh0.28_token_onpolicy"), {"on_policy": True}),
        (loss_case("grpo", 0.04, 0.2, "sequence", name="grpo_b0.04_eh0.2_sequence_onpolicy"), {"on_policy": True}),
        (loss_case("luspo", 0.0, 0.28, "sequence"), {}),
        (loss_case("luspo", 0.04, 0.2, "token"), {}),
        (loss_case("luspo", 0.04, 0.28, "sequence"), {}),
    ]
    # TRL 1.16's other loss types. cispo's epsilon_high is the absolute cap on the ratio (ScaleRL's 5.0; TRL's
    # default epsilon_high=None falls back to epsilon, a cap of 0.2); noisier old log-probs reach that cap.
    for lt, eh in (("cispo", 5.0), ("sapo", 0.2), ("vespo", 0.2)):
        for beta in (0.0, 0.04):
            for level in ("token", "sequence"):
                kw = {"noise": 1.2 if level == "token" else 2.0} if lt == "cispo" else {}
                specs.append((loss_case(lt, beta, eh, level), kw))
    specs += [
        (loss_case("cispo", 0.04, 0.2, "token", name="cispo_b0.04_eh0.2_token_defaultcap"), {}),
        (
            loss_case(
                "sapo",
                0.04,
                0.2,
                "token",
                name="sapo_b0.04_eh0.2_token_tau0.5_2.0",
                params={"sapo_temperature_pos": 0.5, "sapo_temperature_neg": 2.0},
            ),
            {"noise": 0.8},
        ),
        (
            loss_case(
                "vespo",
                0.04,
                0.2,
                "token",
                name="vespo_b0.04_eh0.2_token_k1.5_4_l0.5_1",
                params={"vespo_k_pos": 1.5, "vespo_lambda_pos": 0.5, "vespo_k_neg": 4.0, "vespo_lambda_neg": 1.0},
            ),
            {},
        ),
        (loss_case("vespo", 0.0, 0.2, "token", name="vespo_b0.0_eh0.2_token_noisy"), {"noise": 3.0}),
        (loss_case("cispo", 0.04, 5.0, "token", name="cispo_b0.04_eh5.0_token_onpolicy"), {"on_policy": True}),
        (loss_case("sapo", 0.04, 0.2, "sequence", name="sapo_b0.04_eh0.2_sequence_onpolicy"), {"on_policy": True}),
        (loss_case("vespo", 0.04, 0.2, "token", name="vespo_b0.04_eh0.2_token_onpolicy"), {"on_policy": True}),
    ]
    cases = []
    for i, (spec, kw) in enumerate(specs):
        noise = kw.get("noise", 0.8 if spec["importance_sampling_level"] == "sequence" else 0.4)
        on_policy = kw.get("on_policy", False)
        seed = pick_seed(spec, 10_000 * (i + 1), noise, on_policy)
        cases.append(run_trl_loss(spec, seed=seed, noise=noise, on_policy=on_policy))
    return cases


# --------------------------------------------------------------------------------------------------
# TRL advantage cases: the real _generate_and_score_completions / _calculate_rewards

NAN = float("nan")


def trl_advantages(
    rewards_per_func: list[list[float]],
    k: int,
    scale_rewards: str,
    reward_weights: list[float] | None = None,
    multi_objective_aggregation: str = "sum_then_normalize",
):
    """The real GRPOTrainer._generate_and_score_completions (and _calculate_rewards) with one plain reward
    function per entry of `rewards_per_func`, each returning its list (None where NaN). Returns the advantages,
    TRL's logged metrics and the reward function names."""
    n = len(rewards_per_func[0])
    assert n % k == 0 and all(len(r) == n for r in rewards_per_func)
    args = grpo_config(
        num_generations=k,
        per_device_train_batch_size=n,
        scale_rewards=scale_rewards,
        beta=0.0,
        max_completion_length=4,
        reward_weights=reward_weights,
        multi_objective_aggregation=multi_objective_aggregation,
    )
    tr = bare_trainer(args)
    tr.state = TrainerState()
    tr._tokenizer = SimpleNamespace(pad_token_id=0)
    tr.eos_token_ids = [1]

    def make_reward(values):
        def fixture_reward(prompts, completions, completion_ids, **kwargs):
            assert len(completions) == n
            return [None if math.isnan(r) else r for r in values]

        return fixture_reward

    names = ["fixture_reward"] if len(rewards_per_func) == 1 else [f"r{j}" for j in range(len(rewards_per_func))]
    tr.reward_funcs = [make_reward(v) for v in rewards_per_func]
    tr.reward_processing_classes = [None] * len(rewards_per_func)
    tr.reward_func_names = names
    # as GRPOTrainer.__init__ sets it
    if args.reward_weights is not None:
        tr.reward_weights = torch.tensor(args.reward_weights, dtype=torch.float32)
    else:
        tr.reward_weights = torch.ones(len(rewards_per_func), dtype=torch.float32)

    def fake_generate(prompts):
        n_p = len(prompts)
        prompt_ids = [[5, 6] for _ in range(n_p)]
        completion_ids = [[7] * (1 + i % 3) + [1] for i in range(n_p)]  # ragged, EOS-terminated
        completions = [f"completion {i}" for i in range(n_p)]
        return prompt_ids, completion_ids, None, completions, None, {}, None, None

    tr._generate = fake_generate
    inputs = [{"prompt": f"prompt {i // k}"} for i in range(n)]
    out = tr._generate_and_score_completions(inputs)
    adv = out["advantages"]
    assert adv.dtype == torch.float32 and adv.shape == (n,)
    return adv, metrics_of(tr), names


def run_trl_advantages(name: str, rewards: list[float], k: int, scale_rewards: str) -> dict:
    adv, metrics, _ = trl_advantages([rewards], k, scale_rewards)
    return {
        "name": name,
        "num_generations": k,
        "scale_rewards": scale_rewards,
        "rewards": rewards,
        "advantages": tl(adv),
        "metrics": metrics,
    }


def run_trl_multi_reward(name, rewards_per_func, k, scale_rewards, weights, aggregation) -> dict:
    adv, metrics, names = trl_advantages(rewards_per_func, k, scale_rewards, weights, aggregation)
    n = len(rewards_per_func[0])
    return {
        "name": name,
        "num_generations": k,
        "scale_rewards": scale_rewards,
        "multi_objective_aggregation": aggregation,
        "reward_weights": weights,
        "reward_func_names": names,
        # rows: one completion each, columns: one reward function each (null: the function returned None)
        "rewards_per_func": [[rewards_per_func[j][i] for j in range(len(rewards_per_func))] for i in range(n)],
        "advantages": tl(adv),
        "metrics": metrics,
    }


def build_multi_reward_cases() -> list[dict]:
    g = torch.Generator().manual_seed(2100)
    # Exactly representable constants (0, 0.5, 1) where a group is constant, so float32 rounding cannot leave
    # TRL a spurious +-1e-3 "advantage" (see the constant_k8 advantage cases).
    acc = [1.0, 0.0, 0.0, 1.0] + [1.0, 1.0, 1.0, 1.0] + [0.0, 1.0, NAN, 0.0] + [NAN, NAN, 1.0, 0.0] + [NAN] * 4
    fmt = [0.5, 0.5, 0.0, 1.0] + [0.0, 0.5, 1.0, 0.5] + [0.5, NAN, 0.0, 0.5] + [NAN, 1.0, 0.0, NAN] + [NAN] * 4
    length = [round(x, 6) for x in (torch.randn(20, generator=g) * 0.7).tolist()]
    length[13] = NAN  # row 13: every function None (unscorable)
    length[16:20] = [NAN] * 4  # the last group: every row unscorable
    rnd = [[round(x, 6) for x in (torch.randn(12, generator=g) * s).tolist()] for s in (1.0, 0.3, 2.0)]
    rnd[1][5] = NAN
    rnd[2][7] = NAN
    sets = [
        # name, k, per-function rewards, weights
        ("two_funcs_k4", 4, [acc, fmt], [1.0, 0.5]),
        ("three_funcs_k4", 4, [acc, fmt, length], [1.0, 0.5, -0.25]),
        ("three_funcs_unweighted_k4", 4, [acc, fmt, length], None),
        ("random_three_funcs_k2", 2, rnd, [0.7, 1.3, 0.2]),
        ("random_three_funcs_k3", 3, rnd, [2.0, -1.0, 0.5]),
    ]
    cases = []
    for name, k, per_func, weights in sets:
        for aggregation in ("sum_then_normalize", "normalize_then_sum"):
            # normalize_then_sum ignores scale_rewards in TRL: two values show that it does
            scales = ("group", "batch", "none") if aggregation == "sum_then_normalize" else ("group", "none")
            for sr in scales:
                cases.append(
                    run_trl_multi_reward(f"{name}_{aggregation}_{sr}", per_func, k, sr, weights, aggregation)
                )
    return cases


def build_advantage_cases() -> list[dict]:
    g = torch.Generator().manual_seed(2000)
    rand4 = [round(x, 6) for x in (torch.randn(12, generator=g) * 1.5 + 0.3).tolist()]
    rand2 = [round(x, 6) for x in torch.rand(8, generator=g).tolist()]
    reward_sets = [
        ("worked_1001", 4, [1.0, 0.0, 0.0, 1.0]),
        ("worked_1000", 4, [1.0, 0.0, 0.0, 0.0]),
        # random group, constant group (std 0, float32 0.7), one None, 3 Nones (1 scorable), all None
        (
            "mixed_k4",
            4,
            [0.3, 1.2, -0.5, 0.9]
            + [0.7, 0.7, 0.7, 0.7]
            + [1.0, NAN, 0.0, 0.5]
            + [NAN, NAN, NAN, 2.0]
            + [NAN, NAN, NAN, NAN],
        ),
        ("mixed_k2", 2, [1.0, 0.0, 0.5, 0.5, NAN, 1.0, 2.0, -1.0, 0.25, 0.75]),
        # constant groups of 8 (the GRPOConfig default size): float32 mean/std rounding leaves
        # A = +-6e-4 instead of 0 for 0.7 and 0.9 (0.25 is exact)
        ("constant_k8", 8, [0.7] * 8 + [0.9] * 8 + [0.25] * 8),
        ("random_k4", 4, rand4),
        ("random_k2", 2, rand2),
    ]
    cases = []
    for name, k, rewards in reward_sets:
        for sr in ("group", "batch", "none"):
            cases.append(run_trl_advantages(f"{name}_{sr}", rewards, k, sr))
    return cases


# --------------------------------------------------------------------------------------------------
# TRL log-prob cases: trl.trainer.utils.selective_log_softmax / entropy_from_logits (CPU path)


def build_logprob_cases() -> list[dict]:
    Bl, Tl, Vl = 3, 5, 11
    cases = []
    for big in (False, True):
        g = torch.Generator().manual_seed(3000 + int(big))
        logits = 3.0 * torch.randn(Bl, Tl, Vl, generator=g)
        if big:
            # one row at the +-1e4 scale: naive exp() overflows in f32
            logits[1] = 1e4 * torch.randn(Tl, Vl, generator=g)
            logits[2, 0, :] = 1e4  # a tie at a huge value
            logits[2, 1, 3] = -1e4
        targets = torch.randint(0, Vl, (Bl, Tl), generator=g)
        for temp in (1.0, 0.7):
            leaf = logits.clone().requires_grad_(True)
            lp = selective_log_softmax(leaf, targets, temperature=temp)
            lp.sum().backward()
            naive = torch.log_softmax(logits / temp, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            # TRL's f32 path is x_t - logsumexp(x) (not log_softmax): at the 1e4 scale the two differ by
            # a few f32 ulps of 1e4 (~1e-3 absolute). Both are recorded.
            scale = (logits / temp).abs().amax().item()
            diff = (lp.detach() - naive).abs().max().item()
            assert diff <= 8 * scale * 2**-23 + 1e-5, (diff, scale)
            ent = entropy_from_logits(logits / temp)
            cases.append(
                {
                    "name": f"{'large' if big else 'normal'}_t{temp}",
                    "temperature": temp,
                    "logits": tl(logits),
                    "targets": tl(targets),
                    "logprobs": tl(lp),
                    "logprobs_torch_log_softmax": tl(naive),
                    "grad_logits_of_sum": tl(leaf.grad),
                    "entropies": tl(ent),
                }
            )
    return cases


# --------------------------------------------------------------------------------------------------
# verl


def verl_versions():
    import verl  # noqa: F401
    from importlib.metadata import version

    return version("verl")


def build_verl() -> dict:
    from verl.trainer.ppo import core_algos
    from verl.workers.config import ActorConfig

    out = {}

    # ---- GRPO outcome advantages --------------------------------------------------------------
    adv_cases = []
    Tv = 5
    g = torch.Generator().manual_seed(4000)
    # rows: group id as verl takes it (`index`, np.ndarray of uids); groups interleaved on purpose
    index = [0, 1, 0, 1, 2, 0, 1, 3, 3, 3, 4, 4]
    scores = [1.0, 0.0, 0.0, 1.0, 0.8, 0.0, 2.0, 0.7, 0.7, 0.7, -1.5, 0.25]
    n = len(index)
    lengths = torch.tensor([5, 3, 0, 1, 4, 2, 5, 5, 3, 2, 4, 1])  # row 2 fully masked
    resp_mask = (torch.arange(Tv).unsqueeze(0) < lengths.unsqueeze(1)).float()
    # score placed on the last response token (verl's reward managers do this); masked row: token 0
    tlr = torch.zeros(n, Tv)
    for i in range(n):
        tlr[i, max(int(lengths[i]) - 1, 0)] = scores[i]
    rnd_scores = (torch.randn(8, generator=g)).tolist()
    rnd_index = [0, 0, 0, 0, 1, 1, 1, 1]
    rnd_mask = torch.ones(8, Tv)
    rnd_tlr = torch.zeros(8, Tv)
    rnd_tlr[:, -1] = torch.tensor(rnd_scores)
    # constant groups: float32 rounding leaves s - mean ~ 6e-8 and std ~ 7e-8, so with epsilon 1e-6
    # the "zero" advantage can come out far from 0
    const_index = [0] * 3 + [1] * 8 + [2] * 8
    const_scores = [0.9] * 3 + [0.7] * 8 + [0.25] * 8
    const_tlr = torch.zeros(len(const_index), Tv)
    const_tlr[:, -1] = torch.tensor(const_scores)
    const_mask = torch.ones(len(const_index), Tv)
    # verl's uids are strings (uuid4 per prompt): unequal groups (3, 3, 1, 1, 2, 4), interleaved, two singletons
    uid_index = ["a", "b", "a", "c", "b", "a", "d", "b", "e", "e", "f", "f", "f", "f"]
    uid_scores = (torch.randn(len(uid_index), generator=g) * 1.3 + 0.2).tolist()
    uid_tlr = torch.zeros(len(uid_index), Tv)
    uid_tlr[:, -1] = torch.tensor(uid_scores)
    uid_mask = torch.ones(len(uid_index), Tv)
    cases_in = [
        ("mixed", index, tlr, resp_mask),
        ("random", rnd_index, rnd_tlr, rnd_mask),
        ("constant", const_index, const_tlr, const_mask),
        ("uid_strings", uid_index, uid_tlr, uid_mask),
    ]
    for label, idx, tok_rewards, rmask in cases_in:
        for norm in (True, False):
            a, r = core_algos.compute_grpo_outcome_advantage(
                token_level_rewards=tok_rewards.clone(),
                response_mask=rmask.clone(),
                index=np.array(idx),
                epsilon=1e-6,
                norm_adv_by_std_in_grpo=norm,
            )
            av, _ = core_algos.compute_grpo_vectorized_outcome_advantage(
                token_level_rewards=tok_rewards.clone(),
                response_mask=rmask.clone(),
                index=np.array(idx),
                epsilon=1e-6,
                norm_adv_by_std_in_grpo=norm,
            )
            adv_cases.append(
                {
                    "name": f"grpo_{label}_{'std' if norm else 'nostd'}",
                    "epsilon": 1e-6,
                    "norm_adv_by_std_in_grpo": norm,
                    "index": idx,
                    "token_level_rewards": tl(tok_rewards),
                    "scores": tl(tok_rewards.sum(-1)),
                    "response_mask": tl(rmask),
                    "advantages": tl(a),
                    "returns": tl(r),
                    "advantages_vectorized": tl(av),
                }
            )
    out["advantage_cases"] = adv_cases

    # ---- agg_loss ------------------------------------------------------------------------------
    modes = ["token-mean", "token-sum", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"]
    agg_cases, agg_nan_cases = [], []
    g = torch.Generator().manual_seed(4100)
    Ba, Ta = 5, 6
    loss_mat = torch.randn(Ba, Ta, generator=g)
    lengths = torch.tensor([6, 0, 3, 1, 5])
    mask = (torch.arange(Ta).unsqueeze(0) < lengths.unsqueeze(1)).float()
    for mode in modes:
        agg_cases.append(
            {
                "name": f"agg_{mode}",
                "mode": mode,
                "loss_mat": tl(loss_mat),
                "mask": tl(mask),
                "loss_scale_factor": None,
                "value": core_algos.agg_loss(loss_mat, mask, mode).item(),
            }
        )
    agg_cases.append(
        {
            "name": "agg_seq-mean-token-sum-norm_lsf10",
            "mode": "seq-mean-token-sum-norm",
            "loss_mat": tl(loss_mat),
            "mask": tl(mask),
            "loss_scale_factor": 10,
            "value": core_algos.agg_loss(loss_mat, mask, "seq-mean-token-sum-norm", loss_scale_factor=10).item(),
        }
    )
    zero_mask = torch.zeros(Ba, Ta)
    for mode in modes:
        agg_nan_cases.append(
            {
                "name": f"agg_{mode}_all_masked",
                "mode": mode,
                "loss_mat": tl(loss_mat),
                "mask": tl(zero_mask),
                "loss_scale_factor": None,
                "value": core_algos.agg_loss(loss_mat, zero_mask, mode).item(),  # may be NaN -> null
            }
        )
    out["agg_cases"] = agg_cases
    out["agg_all_masked_cases"] = agg_nan_cases

    # ---- vanilla PPO policy loss (dual clip) ----------------------------------------------------
    pl_cases = []
    Bp, Tp = 6, 7
    for ci, (low, high) in enumerate([(0.2, 0.2), (0.2, 0.28)]):
        for mi, mode in enumerate(modes):
            for extreme in (False, True):
                if extreme and mode != "token-mean":
                    continue
                g = torch.Generator().manual_seed(4200 + 100 * ci + 10 * mi + int(extreme))
                logits = 2.0 * torch.randn(Bp, Tp, 16, generator=g)
                targets = torch.randint(0, 16, (Bp, Tp), generator=g)
                log_prob = torch.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
                old = log_prob + 0.7 * torch.randn(Bp, Tp, generator=g)  # reaches the dual clip (ratio > 3)
                if extreme:
                    old[0, 0] = log_prob[0, 0] - 25.0  # log-ratio +25 -> clamped to +20
                    old[1, 1] = log_prob[1, 1] + 25.0  # log-ratio -25 -> clamped to -20
                    old[3, 0] = log_prob[3, 0] - 25.0
                lengths = torch.tensor([7, 5, 0, 3, 6, 1])[torch.randperm(Bp, generator=g)]
                if extreme:
                    lengths = torch.tensor([7, 5, 0, 3, 6, 1])
                rmask = (torch.arange(Tp).unsqueeze(0) < lengths.unsqueeze(1)).float()
                row_adv = torch.randn(Bp, generator=g)
                if extreme:
                    row_adv[0], row_adv[1], row_adv[3] = 1.0, -1.0, -0.5
                adv = row_adv.unsqueeze(1) * rmask  # as verl's GRPO estimator produces it
                cfg = ActorConfig(
                    strategy="fsdp",
                    rollout_n=3,
                    ppo_micro_batch_size_per_gpu=1,
                    clip_ratio=0.2,
                    clip_ratio_low=low,
                    clip_ratio_high=high,
                    clip_ratio_c=3.0,
                )
                leaf = log_prob.clone().requires_grad_(True)
                loss, metrics = core_algos.compute_policy_loss_vanilla(
                    old_log_prob=old.clone(),
                    log_prob=leaf,
                    advantages=adv.clone(),
                    response_mask=rmask.clone(),
                    loss_agg_mode=mode,
                    config=cfg,
                )
                loss.backward()
                pl_cases.append(
                    {
                        "name": f"vanilla_{mode}_l{low}_h{high}" + ("_clamp20" if extreme else ""),
                        "old_log_prob": tl(old),
                        "log_prob": tl(log_prob),
                        "advantages": tl(adv),
                        "response_mask": tl(rmask),
                        "clip_ratio": 0.2,
                        "clip_ratio_low": low,
                        "clip_ratio_high": high,
                        "clip_ratio_c": 3.0,
                        "loss_agg_mode": mode,
                        "loss": loss.item(),
                        "grad_log_prob": tl(leaf.grad),
                        "clipfrac": metrics["actor/pg_clipfrac"],
                        "clipfrac_lower": metrics["actor/pg_clipfrac_lower"],
                        "ppo_kl": metrics["actor/ppo_kl"],
                        "metrics": {k: float(v) for k, v in metrics.items()},
                    }
                )
    out["policy_loss_cases"] = pl_cases

    # ---- kl_penalty ----------------------------------------------------------------------------
    kl_cases = []
    g = torch.Generator().manual_seed(4300)
    Bk, Tk = 4, 6
    logprob = -3.0 * torch.rand(Bk, Tk, generator=g)
    ref = logprob + 0.5 * torch.randn(Bk, Tk, generator=g)
    # extremes: inner clamp (|ref - lp| > 20) and output clamp (k3 > 10)
    ref[3, 0] = logprob[3, 0] + 25.0
    ref[3, 1] = logprob[3, 1] - 25.0
    ref[3, 2] = logprob[3, 2] + 4.0  # exp(4) - 4 - 1 = 49.6 -> clamped to 10
    ref[3, 3] = logprob[3, 3] - 12.0  # e^-12 + 12 - 1 = 11.0 -> clamped to 10
    ref[3, 4] = logprob[3, 4] + 1e-4  # tiny difference: k3 ~ x^2/2
    ref[3, 5] = logprob[3, 5]  # exactly zero
    for est in ("kl", "k1", "abs", "mse", "k2", "low_var_kl", "k3", "k3+", "low_var_kl+", "kl+"):
        leaf = logprob.clone().requires_grad_(True)
        vals = core_algos.kl_penalty(leaf, ref.clone(), est)
        vals.sum().backward()
        kl_cases.append(
            {
                "name": f"kl_{est}",
                "estimator": est,
                "logprob": tl(logprob),
                "ref_logprob": tl(ref),
                "values": tl(vals),
                "grad_logprob_of_sum": tl(leaf.grad),
            }
        )
    out["kl_cases"] = kl_cases
    return out


# --------------------------------------------------------------------------------------------------


def main() -> int:
    from importlib.metadata import version

    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "trl": trl.__version__,
        "transformers": transformers.__version__,
        "accelerate": version("accelerate"),
        "numpy": np.__version__,
    }
    assert versions["trl"] == "1.16.0", versions

    loss_cases = build_loss_cases()
    tot = defaultdict(int)
    for c in loss_cases:
        for k, v in c["clip_coverage"].items():
            tot[(c["importance_sampling_level"], k)] += v
    print("clip coverage (level, regime) -> active tokens:", dict(sorted(tot.items())))

    trl_doc = {
        "meta": {
            "generator": GENERATOR,
            **versions,
            "seed": SEED,
            "notes": (
                "Goldens come from TRL's own code. loss_cases: GRPOTrainer._compute_loss on a trainer made with "
                "object.__new__(GRPOTrainer), attributes set from a real GRPOConfig as GRPOTrainer.__init__ sets "
                "them; 1 process (accelerate CPU), gradient_accumulation_steps=1, steps_per_generation=1, "
                "num_iterations=1, train mode, entropy_coef=0, top_entropy_quantile=1, no vLLM, no off-policy "
                "mask. _get_per_token_logps_and_entropies is replaced on the instance and returns the leaf "
                "tensor `logps` (requires_grad) plus `entropies`; grad_logps = logps.grad after loss.backward(). "
                "mask is TRL's long completion_mask. advantages are per row (B,). num_items_in_batch = "
                "accelerator.gather(mask.sum()).sum() as _generate_and_score_completions computes it; only "
                "dapo (and cispo/vespo) read it. Cases with on_policy_old_logps_none=true pass no "
                "old_per_token_logps, so TRL uses logps.detach() (old_logps is then written equal to logps). "
                "ref_logps is null when beta == 0 (no reference pass). metrics = trainer._metrics['train'] "
                "after the call (one value each); a NaN metric would be written as null. clip_coverage is "
                "informational (computed by this script, not TRL). advantage_cases: the real "
                "GRPOTrainer._generate_and_score_completions (and the real _calculate_rewards) with only "
                "_generate stubbed; one reward function returns `rewards` (null -> the function returned None); "
                "consecutive num_generations rows form a group; metrics are TRL's logged reward metrics. "
                "multi_reward_cases: the same code with one reward function per column of rewards_per_func "
                "(null -> that function returned None), GRPOConfig(reward_weights, multi_objective_aggregation, "
                "scale_rewards); reward_weights null -> TRL's default of 1.0 each; metrics include "
                "rewards/<name>/mean and /std per function. "
                "logprob_cases: trl.trainer.utils.selective_log_softmax(logits, targets, temperature) (CPU "
                "path: logits / temperature then log_softmax/gather) with grad of sum(logprobs) wrt logits, "
                "and trl.trainer.utils.entropy_from_logits(logits / temperature). logprobs_torch_log_softmax is "
                "torch-only arithmetic (torch.log_softmax(logits / temperature, -1).gather), not TRL code."
            ),
        },
        "loss_cases": loss_cases,
        "advantage_cases": build_advantage_cases(),
        "multi_reward_cases": build_multi_reward_cases(),
        "logprob_cases": build_logprob_cases(),
    }
    write_json_atomic(FIXTURES / "trl_parity.json", trl_doc)

    try:
        verl_version = verl_versions()
    except Exception as e:  # pragma: no cover - documented fallback
        print(f"verl unavailable ({e!r}); verl_parity.json not written", file=sys.stderr)
        return 1
    vdoc = {
        "meta": {
            "generator": GENERATOR,
            **versions,
            "verl": verl_version,
            "seed": SEED,
            "notes": (
                "Goldens from verl.trainer.ppo.core_algos called directly. advantage_cases: "
                "compute_grpo_outcome_advantage(token_level_rewards, response_mask, index, epsilon, "
                "norm_adv_by_std_in_grpo); index = group id per row (an int or, as verl's uids are, a string; "
                "groups need not be contiguous nor of one size; a group of one gets mean 0 and std 1); outputs are "
                "(bs, T) = row scalar * response_mask; advantages_vectorized = "
                "compute_grpo_vectorized_outcome_advantage on the same inputs. agg_cases: agg_loss(loss_mat, "
                "mask, mode[, loss_scale_factor]) with dp_size=1 and no global batch info; "
                "agg_all_masked_cases: the same with an all-zero mask (value null = NaN). policy_loss_cases: "
                "compute_policy_loss_vanilla with a real ActorConfig(clip_ratio, clip_ratio_low, "
                "clip_ratio_high, clip_ratio_c) and empty global_batch_info; grad_log_prob = d loss / d log_prob. "
                "Advantages are (bs, T), zero on masked tokens. kl_cases: kl_penalty(logprob, ref_logprob, "
                "estimator) elementwise values and d sum(values) / d logprob; '+' estimators use a "
                "straight-through k2 gradient."
            ),
        },
        **build_verl(),
    }
    write_json_atomic(FIXTURES / "verl_parity.json", vdoc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
