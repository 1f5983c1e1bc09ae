#!/usr/bin/env python3
"""Independent reference values for rlft-tasks' value-stability tests.

Reimplements, from their published definitions and not from the Rust code:
  * FNV-1a 64 (isthe.com/chongo/tech/comp/fnv) followed by the SplitMix64 finaliser
    (prng.di.unimi.it/splitmix64.c): prompt hash ids and the train/test split rule;
  * xoshiro256++ (prng.di.unimi.it/xoshiro256plusplus.c) seeded by SplitMix64 as rand 0.10's
    `seed_from_u64` documents, checked against the reference vector in rand's own tests;
  * rejection sampling for bounded integers and the generators' drawing procedure as
    documented in crates/tasks/src/{generate,countdown_gen,arithmetic_gen}.rs.

Writes tests/fixtures/reference_values.json. Run from crates/tasks:
    python3 scripts/reference_values.py
Needs only the Python 3 standard library (fractions, json).
"""
import json
import sys
from fractions import Fraction

M64 = (1 << 64) - 1


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def stable_hash(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & M64
    return mix64(h)


def prompt_hash_id(prompt: str) -> str:
    return "h%016x" % stable_hash(prompt.encode("utf-8"))


def is_test(id_: str, fraction: float, seed: int) -> bool:
    h = mix64(stable_hash(id_.encode("utf-8")) ^ seed)
    return (h >> 11) / float(1 << 53) < fraction


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M64


class Xoshiro256pp:
    def __init__(self, state):
        self.s = list(state)

    @classmethod
    def seed_from_u64(cls, state):
        s = []
        for _ in range(4):
            state = (state + 0x9E3779B97F4A7C15) & M64
            s.append(mix64(state))
        return cls(s)

    def next_u64(self):
        s = self.s
        res = (rotl((s[0] + s[3]) & M64, 23) + s[0]) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return res


def below(rng, n):
    threshold = ((1 << 64) - n) % n
    while True:
        x = rng.next_u64()
        if x >= threshold:
            return x % n


def between(rng, lo, hi):
    return lo + below(rng, hi - lo + 1)


def countdown(seed, count, min_numbers, max_numbers, min_number, max_number, min_target, max_target):
    rng = Xoshiro256pp.seed_from_u64(seed)
    out = []
    for _ in range(count):
        while True:
            n = between(rng, min_numbers, max_numbers)
            nums = [between(rng, min_number, max_number) for _ in range(n)]
            pool = [(Fraction(x), str(x)) for x in nums]
            failed = False
            while len(pool) > 1:
                i = below(rng, len(pool))
                j = below(rng, len(pool) - 1)
                if j >= i:
                    j += 1
                (a, ta), (b, tb) = pool[i], pool[j]
                op = below(rng, 4)
                if op == 0:
                    v, sym = a + b, "+"
                elif op == 1:
                    v, sym = a - b, "-"
                elif op == 2:
                    v, sym = a * b, "*"
                else:
                    if b == 0:
                        failed = True
                        break
                    v, sym = a / b, "/"
                text = "(%s %s %s)" % (ta, sym, tb)
                hi, lo = max(i, j), min(i, j)
                # Rust's Vec::swap_remove: the last element moves into the hole.
                for k in (hi, lo):
                    last = pool.pop()
                    if k < len(pool):
                        pool[k] = last
                pool.append((v, text))
            if failed:
                continue
            value, text = pool[0]
            if value.denominator != 1:
                continue
            target = value.numerator
            if min_target <= target <= max_target:
                out.append({"nums": nums, "target": target, "solution": text[1:-1]})
                break
    return out


def arithmetic(seed, count, min_digits, max_digits, ops):
    rng = Xoshiro256pp.seed_from_u64(seed)

    def operand():
        d = between(rng, min_digits, max_digits)
        lo = 0 if d == 1 else 10 ** (d - 1)
        return between(rng, lo, 10 ** d - 1)

    out = []
    for _ in range(count):
        a = operand()
        b = operand()
        op = ops[below(rng, len(ops))]
        ans = {"+": a + b, "-": a - b, "*": a * b}[op]
        out.append({"a": a, "b": b, "op": op, "answer": str(ans)})
    return out


def main():
    # rand's own reference vector for xoshiro256++ (from_seed [1,2,3,4] as little-endian words).
    rng = Xoshiro256pp([1, 2, 3, 4])
    got = [rng.next_u64() for _ in range(3)]
    if got != [41943041, 58720359, 3588806011781223]:
        sys.exit("xoshiro256++ reimplementation disagrees with the reference vector")

    prompts = ["one", "two", "What is 6 * 7?", "ünïcode ✓", ""]
    ids = ["id-%d" % i for i in range(40)]
    fixture = {
        "generator": "crates/tasks/scripts/reference_values.py (python %d.%d)" % sys.version_info[:2],
        "hash_ids": {p: prompt_hash_id(p) for p in prompts},
        "split": {"test_fraction": 0.3, "seed": 7, "test_ids": [i for i in ids if is_test(i, 0.3, 7)], "ids": ids},
        "countdown_medium_seed42": countdown(42, 5, 3, 4, 1, 99, 1, 99),
        "countdown_hard_seed7": countdown(7, 3, 4, 4, 1, 99, 100, 999),
        "arithmetic_medium_seed42": arithmetic(42, 5, 2, 3, ["+", "-", "*"]),
    }
    with open("tests/fixtures/reference_values.json", "w") as f:
        json.dump(fixture, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
