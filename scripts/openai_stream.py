#!/usr/bin/env python3
"""Stream from `rlft serve` with the official `openai` Python package (CI does not need this).

Starts `rlft serve` on a model (default: rlft-models' Qwen2 test fixture) on a free loopback
port with an API key, then through `openai.OpenAI`:
  1. lists the models;
  2. streams a completion and a chat completion (`stream=True`, with usage), and checks that
     the streamed text equals the non-streaming answer for the same seed;
  3. checks that a request without the key, an unknown field and `logit_bias` are refused.
Prints what it saw and exits non-zero on any mismatch.

    python3 -m venv /tmp/oai && /tmp/oai/bin/pip install openai
    cargo build --release -p rlft-cli
    /tmp/oai/bin/python scripts/openai_stream.py [--rlft target/release/rlft] [--model DIR]
"""

import argparse
import os
import secrets
import subprocess
import sys
from pathlib import Path

import openai
from openai import OpenAI

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    ap.add_argument("--rlft", default=str(Path(target) / "release" / "rlft"))
    ap.add_argument("--model", default=str(ROOT / "crates/models/tests/fixtures/qwen2"))
    args = ap.parse_args()

    key = secrets.token_hex(16)
    env = dict(os.environ, RLFT_OPENAI_SCRIPT_KEY=key)
    server = subprocess.Popen(
        [args.rlft, "serve", "--model", args.model, "--addr", "127.0.0.1:0",
         "--api-key-env", "RLFT_OPENAI_SCRIPT_KEY"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )
    try:
        base_url = server.stdout.readline().strip()
        print(f"openai {openai.__version__}; rlft serve at {base_url}")
        client = OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=60)
        failures = []

        models = [m.id for m in client.models.list()]
        print("models:", models)
        model = models[0]

        # Completions: streamed pieces must add up to the whole answer.
        kw = dict(model=model, prompt="The answer is", max_tokens=24, temperature=0.8, seed=7)
        whole = client.completions.create(**kw)
        pieces, finish, usage = [], None, None
        for chunk in client.completions.create(**kw, stream=True,
                                               stream_options={"include_usage": True}):
            if chunk.usage is not None:
                usage = chunk.usage
            for c in chunk.choices:
                pieces.append(c.text)
                finish = c.finish_reason or finish
        streamed = "".join(pieces)
        print(f"completion: {len(pieces)} chunks, finish={finish}, usage={usage}")
        print(f"  streamed: {streamed!r}")
        if streamed != whole.choices[0].text or finish != whole.choices[0].finish_reason:
            failures.append(f"completion stream {streamed!r} != {whole.choices[0].text!r}")
        if usage is None or usage.completion_tokens != whole.usage.completion_tokens:
            failures.append(f"usage {usage} != {whole.usage}")

        # Chat completions, streamed.
        kw = dict(model=model, messages=[{"role": "user", "content": "Say hello."}],
                  max_tokens=16, temperature=0.8, seed=3)
        whole = client.chat.completions.create(**kw)
        pieces, roles = [], set()
        for chunk in client.chat.completions.create(**kw, stream=True):
            for c in chunk.choices:
                if c.delta.role:
                    roles.add(c.delta.role)
                pieces.append(c.delta.content or "")
        streamed = "".join(pieces)
        print(f"chat: {len(pieces)} chunks, roles={sorted(roles)}")
        print(f"  streamed: {streamed!r}")
        if streamed != whole.choices[0].message.content or roles != {"assistant"}:
            failures.append(f"chat stream {streamed!r} != {whole.choices[0].message.content!r}")

        # Refusals.
        def refused(fn, status, words):
            try:
                fn()
                failures.append(f"expected {status} ({words})")
            except openai.APIStatusError as e:
                msg = str(e)
                ok = e.status_code == status and words in msg
                print(f"refused {e.status_code}: {msg[:110]}")
                if not ok:
                    failures.append(f"expected {status} with {words!r}, got {e.status_code}: {msg}")

        nokey = OpenAI(base_url=base_url, api_key="wrong", max_retries=0)
        refused(lambda: nokey.models.list(), 401, "API key")
        refused(lambda: client.completions.create(model=model, prompt="x",
                                                  extra_body={"temprature": 1}),
                400, "unknown field")
        refused(lambda: client.completions.create(model=model, prompt="x",
                                                  logit_bias={"5": 10}),
                400, "not supported")

        for f in failures:
            print("FAIL:", f)
        print("ok" if not failures else f"{len(failures)} failure(s)")
        return 1 if failures else 0
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
