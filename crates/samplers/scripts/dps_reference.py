#!/usr/bin/env python3
"""Golden values for the DPS update, from a plain-Python transcription of the reference class.

Mirrors `BayesianHMMSampler` in github.com/maoyixiu/DPS `recipe/dps/task_sampler.py`
(snapshot 5654d52) as described in the rlft DPS spec §1.3/§6: per prompt alpha[to][from],
prior = posterior = mu0 on creation; each train step, for every tracked prompt:
  observed o  -> posterior = e_o, xi = outer(posterior, posterior_before) * Phi_old, normalised
  unobserved  -> posterior = prior, xi = 0
  alpha = lam * alpha + (1 - lam) * alpha0 + xi
  prior = normalise(Phi(alpha) @ posterior); posterior_before = posterior
No numpy (not installed on the build box); the arithmetic is the same 3x3 algebra.
Observation sequences come from a fixed LCG so the file is reproducible.

Usage: python3 crates/samplers/scripts/dps_reference.py > crates/samplers/tests/data/dps_golden.json
"""
import json
import sys

PRIORS = {
    "flat": [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]],
    "progress": [[1.0, 0.5, 0.5], [1.0, 1.0, 0.5], [1.0, 1.0, 1.0]],
    "stability": [[1.0, 0.5, 0.5], [0.5, 1.0, 0.5], [0.5, 0.5, 1.0]],
}


def phi(alpha):
    cols = [sum(alpha[i][j] for i in range(3)) for j in range(3)]
    return [[alpha[i][j] / cols[j] for j in range(3)] for i in range(3)]


def matvec(m, v):
    return [sum(m[i][j] * v[j] for j in range(3)) for i in range(3)]


def normalise(v):
    s = sum(v)
    return [x / s for x in v]


class Prompt:
    def __init__(self, alpha0, mu0):
        self.alpha = [row[:] for row in alpha0]
        self.prior = mu0[:]
        self.post = mu0[:]
        self.post_before = mu0[:]

    def train(self, obs, lam, alpha0):
        ph = phi(self.alpha)
        if obs is None:
            post = self.prior[:]
            xi = [[0.0] * 3 for _ in range(3)]
        else:
            post = [0.0, 0.0, 0.0]
            post[obs] = 1.0
            raw = [[post[i] * ph[i][j] * self.post_before[j] for j in range(3)] for i in range(3)]
            z = sum(sum(r) for r in raw)
            xi = [[x / z for x in r] for r in raw]
        self.alpha = [[lam * self.alpha[i][j] + (1 - lam) * alpha0[i][j] + xi[i][j]
                       for j in range(3)] for i in range(3)]
        self.post = post
        self.post_before = post
        self.prior = normalise(matvec(phi(self.alpha), post))


def lcg(seed):
    x = seed
    while True:
        x = (6364136223846793005 * x + 1442695040888963407) % (1 << 64)
        yield x >> 33


def main():
    cases = []
    for lam in (0.5, 0.7, 1.0):
        for prior in ("flat", "progress", "stability"):
            rng = lcg(int(lam * 1000) + len(prior))
            n, steps = 6, 60
            alpha0 = PRIORS[prior]
            mu0 = [1.0 / 3.0] * 3
            prompts = [Prompt(alpha0, mu0) for _ in range(n)]
            obs_seq, priors = [], []
            for _ in range(steps):
                # 0, 1, 2 = observed state; 3 = not observed this step.
                obs = [next(rng) % 4 for _ in range(n)]
                for p, o in zip(prompts, obs):
                    p.train(None if o == 3 else o, lam, alpha0)
                obs_seq.append(obs)
                priors.append([p.prior for p in prompts])
            cases.append({"decay": lam, "prior": prior, "observations": obs_seq,
                          "priors": priors, "alpha_final": [p.alpha for p in prompts]})
    json.dump({"generator": "crates/samplers/scripts/dps_reference.py",
               "python": sys.version.split()[0], "cases": cases}, sys.stdout)


if __name__ == "__main__":
    main()
