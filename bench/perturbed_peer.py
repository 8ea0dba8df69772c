#!/usr/bin/env python3
"""Runs numpy's version of each perturbed-bench case on the same sizes and prints the ratios.

  perturbed_peer.py RESULTS.json     (the JSON lines of `perturbed-bench --json`)

Each peer is what a numpy user would write for the perturbed function: draw the (M, d) Gumbel
noise, add it to the scaled logits, take the argmax (or argsort twice for ranks) and average;
for the VJP, weight grad_nu = 1 - exp(-z) by each sample's cotangent: y_bar . (Y_m - b), with
b the unperturbed value (the baseline), that is y_bar[argmax] - y_bar[argmax(x)] for the
argmax and (ranks - base_ranks) @ y_bar for the ranking.  Timed like
perturbed-bench (peer_timing.py): batches of calls lasting at least 20 ms, the median of 11.
"speedup" is numpy's time over libperturb's for the same work, per ISA.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # run from the build directory
from peer_timing import load_groups, median_ns, print_banner, speedup_cells  # noqa: E402

SIGMA = 0.5


def inputs(d):
    rng = np.random.default_rng(42)
    x = rng.uniform(-1.0, 1.0, d).astype(np.float32)
    y_bar = ((np.arange(d) % 7) * 0.25 - 0.75).astype(np.float32)
    return rng, x, y_bar


def argmax_eval(d, m):
    rng, x, _ = inputs(d)

    def call():
        z = rng.gumbel(size=(m, d))
        idx = np.argmax(x + SIGMA * z, axis=1)
        return np.bincount(idx, minlength=d) / m

    return call


def argmax_vjp(d, m):
    rng, x, y_bar = inputs(d)
    base = y_bar[np.argmax(x)]

    def call():
        z = rng.gumbel(size=(m, d))
        idx = np.argmax(x + SIGMA * z, axis=1)
        c = y_bar[idx] - base
        return (c[:, None] * (1.0 - np.exp(-z))).sum(axis=0) / (m * SIGMA)

    return call


def ranking_eval(d, m):
    rng, x, _ = inputs(d)

    def call():
        z = rng.gumbel(size=(m, d))
        ranks = np.argsort(np.argsort(x + SIGMA * z, axis=1), axis=1)
        return ranks.mean(axis=0)

    return call


def ranking_vjp(d, m):
    rng, x, y_bar = inputs(d)
    base = np.argsort(np.argsort(x))

    def call():
        z = rng.gumbel(size=(m, d))
        ranks = np.argsort(np.argsort(x + SIGMA * z, axis=1), axis=1)
        c = (ranks - base) @ y_bar
        return (c[:, None] * (1.0 - np.exp(-z))).sum(axis=0) / (m * SIGMA)

    return call


def noise_alone(d, m):
    rng, _, _ = inputs(d)
    return lambda: rng.gumbel(size=(m, d))


PEERS = {
    "argmax_eval": ("gumbel, add, argmax, bincount", argmax_eval),
    "argmax_vjp": ("gumbel, argmax, (y_bar[idx] - b) * (1 - exp(-z)) summed", argmax_vjp),
    "ranking_eval": ("gumbel, add, argsort twice, mean", ranking_eval),
    "ranking_vjp": ("gumbel, argsort twice, ((ranks - b) @ y_bar) * (1 - exp(-z)) summed",
                    ranking_vjp),
    "noise_alone": ("rng.gumbel(size=(M, d))", noise_alone),
}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    groups = load_groups(sys.argv[1], ("case", "d", "samples"))
    print_banner()
    print(f"{'case':<13} {'d':>6} {'M':>8} {'numpy us/call':>14}  per-ISA us/call (speedup)")
    for (case, d, m), runs in groups.items():
        what, setup = PEERS[case]
        ns = median_ns(setup(d, m))
        cells = speedup_cells(runs, "ns_per_call", ns, 1, scale=1e3)
        print(f"{case:<13} {d:>6} {m:>8} {ns / 1e3:>14.1f}  {cells}   [{what}]")


if __name__ == "__main__":
    main()
