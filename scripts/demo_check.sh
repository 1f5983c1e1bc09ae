#!/usr/bin/env bash
# The demo's promise, checked: `rlft demo` on seeds 0, 1 and 2 must each raise held-out greedy
# accuracy by at least 10 points. Prints one line per seed and exits non-zero if any seed
# falls short. Runs two seeds at a time (one core each: the demo's Flex backend is
# single-threaded), about 5 minutes on a 2-core machine.
#
#   scripts/demo_check.sh [OUT_DIR]        (default runs/demo-check)
#   RLFT_BIN=path/to/rlft scripts/demo_check.sh   (use a binary built already)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/demo-check}"
mkdir -p "$out"
if [ -n "${RLFT_BIN:-}" ]; then
  bin="$RLFT_BIN"          # an rlft binary built already
else
  cargo build --release -q -p rlft-cli
  bin="${CARGO_TARGET_DIR:-target}/release/rlft"
fi
for seed in 0 1 2; do
  "$bin" demo --seed "$seed" --out "$out/seed-$seed" >"$out/seed-$seed.log" 2>&1 &
  if [ "$seed" = 1 ]; then wait; fi
done
wait
status=0
for seed in 0 1 2; do
  s="$out/seed-$seed/summary.json"
  if [ ! -f "$s" ]; then
    echo "seed $seed: no summary (see $out/seed-$seed.log)"
    status=1
    continue
  fi
  line=$(python3 - "$s" <<'PY' 2>/dev/null || true
import json, sys
s = json.load(open(sys.argv[1]))
print(f"{100*s['accuracy_before']:.1f}% -> {100*s['accuracy_after']:.1f}% "
      f"(gain {100*s['gain']:+.1f} +/- {100*s['gain_se']:.1f} points, {s['heldout']} problems, "
      f"{s['seconds']:.0f}s)|{100*s['gain']:.3f}")
PY
)
  if [ -z "$line" ]; then
    # No Python: read the two numbers with grep.
    before=$(grep -o '"accuracy_before": *[0-9.e-]*' "$s" | grep -o '[0-9.e-]*$')
    after=$(grep -o '"accuracy_after": *[0-9.e-]*' "$s" | grep -o '[0-9.e-]*$')
    gain=$(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.3f", 100 * (a - b) }')
    line="$before -> $after|$gain"
  fi
  text="${line%|*}"
  gain="${line##*|}"
  if awk -v g="$gain" 'BEGIN { exit !(g >= 10) }'; then
    echo "seed $seed: $text  ok"
  else
    echo "seed $seed: $text  FAIL (gain below 10 points)"
    status=1
  fi
done
exit $status
