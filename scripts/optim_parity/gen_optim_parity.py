"""Golden values for rlft-trainer's optimiser: torch.optim.AdamW (torch defaults) driven by
torch.nn.utils.clip_grad_norm_ and a Hugging Face linear schedule with warmup.

Writes crates/trainer/tests/fixtures/optim_parity.json. CI never runs this; it reads
the committed JSON. Run with the venv of scripts/trl_parity (torch, transformers):

    .venv/bin/python scripts/optim_parity/gen_optim_parity.py
"""
import json
import os
import tempfile

import torch
import transformers

torch.manual_seed(0)
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "trainer", "tests", "fixtures", "optim_parity.json")

w = torch.randn(3, 4, dtype=torch.float32)
b = torch.randn(4, dtype=torch.float32)
params = [torch.nn.Parameter(w.clone()), torch.nn.Parameter(b.clone())]
lr, warmup, total, max_norm = 0.05, 2, 6, 1.0
opt = torch.optim.AdamW(params)  # torch defaults: betas (0.9, 0.999), eps 1e-8, weight_decay 1e-2
for g in opt.param_groups:
    g["lr"] = lr
sched = transformers.get_scheduler("linear", opt, num_warmup_steps=warmup, num_training_steps=total)

steps = []
for step in range(total):
    gw = torch.randn(3, 4) * (3.0 if step % 2 == 0 else 0.1)
    gb = torch.randn(4) * (3.0 if step % 2 == 0 else 0.1)
    params[0].grad = gw.clone()
    params[1].grad = gb.clone()
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    used_lr = opt.param_groups[0]["lr"]
    opt.step()
    sched.step()
    steps.append({
        "grad_w": gw.tolist(), "grad_b": gb.tolist(),
        "grad_norm": float(norm), "lr": used_lr,
        "w": params[0].detach().tolist(), "b": params[1].detach().tolist(),
    })

doc = {
    "meta": {"generator": "scripts/optim_parity/gen_optim_parity.py", "torch": torch.__version__,
             "transformers": transformers.__version__, "seed": 0,
             "notes": "torch.optim.AdamW defaults (betas 0.9/0.999, eps 1e-8, weight_decay 0.01); "
                      "clip_grad_norm_(max_norm=1.0) before each step; transformers linear schedule "
                      "with 2 warmup steps over 6; lr is the value used by that step."},
    "lr": lr, "warmup_steps": warmup, "total_steps": total, "max_grad_norm": max_norm,
    "init_w": w.tolist(), "init_b": b.tolist(), "steps": steps,
}
fd, tmp = tempfile.mkstemp(dir=os.path.dirname(OUT))
with os.fdopen(fd, "w") as f:
    json.dump(doc, f, indent=1)
os.replace(tmp, OUT)
print("wrote", os.path.normpath(OUT))
