#!/usr/bin/env python3
"""A reward function outside Rust, for `rlft train`'s `[[reward]] kind = "command"` or `kind = "http"`.

Replace `reward()` with your own function (a TRL-style reward function works: it sees the prompt, the
completion, the gold answer and the item's other fields, and returns a float or None for "no score").
Standard library only.

Command mode (JSON lines over stdin/stdout; rlft keeps the process running between batches):

    [[reward]]
    kind = "command"
    command = ["python3", "scripts/remote_reward.py"]

HTTP mode (one POST per batch):

    python3 scripts/remote_reward.py --http 8765

    [[reward]]
    kind = "http"
    url = "http://127.0.0.1:8765/reward"

Both modes read `{"items": [{"prompt", "completion", "answer", "meta"}, ...]}` and answer
`{"scores": [float | null, ...]}`, one score per item, in order. See docs/cli.md.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def reward(prompt: str, completion: str, answer: str, meta: dict) -> float | None:
    """The example: 1.0 when the gold answer appears inside <answer>...</answer>, 0.0 otherwise, and no
    score (None) for an empty completion."""
    if not completion.strip():
        return None
    start, end = completion.rfind("<answer>"), completion.rfind("</answer>")
    if start < 0 or end < start:
        return 0.0
    return 1.0 if completion[start + len("<answer>") : end].strip() == answer.strip() else 0.0


def score_batch(body: dict) -> dict:
    items = body["items"]
    return {"scores": [reward(it["prompt"], it["completion"], it["answer"], it.get("meta", {})) for it in items]}


def serve_lines() -> int:
    for line in sys.stdin:
        if not line.strip():
            continue
        sys.stdout.write(json.dumps(score_batch(json.loads(line))) + "\n")
        sys.stdout.flush()  # rlft waits for the line: never leave it in a buffer
    return 0


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length", "0"))
        try:
            reply = json.dumps(score_batch(json.loads(self.rfile.read(length)))).encode()
            self.send_response(200)
        except (ValueError, KeyError, TypeError) as e:
            reply = json.dumps({"error": str(e)}).encode()
            self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):  # keep the terminal quiet
        pass


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--http":
        server = ThreadingHTTPServer(("127.0.0.1", int(argv[1])), Handler)
        print(f"reward server on http://127.0.0.1:{argv[1]}/reward", file=sys.stderr)
        server.serve_forever()
        return 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    return serve_lines()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
