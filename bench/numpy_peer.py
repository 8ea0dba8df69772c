#!/usr/bin/env python3
"""Runs numpy's equivalent of each benchmarked kernel on the same sizes and prints the ratios.

  numpy_peer.py RESULTS.json     (the JSON lines of `perturb-bench --json`)

Each peer is what a numpy user would write; it is timed like perturb-bench times kernels
(peer_timing.py): batches of calls lasting at least 20 ms, the median of 11.  "speedup" is
numpy's time over libperturb's for the same work, per ISA.  Where perturb-bench timed a "read"
baseline (a plain sum of the same input), each ISA's time is also given as a multiple of it.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # run from the build directory
from peer_timing import load_groups, median_ns, print_banner, speedup_cells  # noqa: E402


def argmax_rows(rows, d):
    x = np.random.default_rng(42).standard_normal((rows, d), dtype=np.float32)
    return lambda: x.argmax(axis=1)


def noise_uniform(rows, d):
    rng = np.random.default_rng(42)
    return lambda: rng.random(rows * d, dtype=np.float32)


def noise_gumbel(rows, d):
    rng = np.random.default_rng(42)  # numpy's Gumbel is float64 only
    return lambda: rng.gumbel(size=rows * d)


def noise_normal(rows, d):
    rng = np.random.default_rng(42)
    return lambda: rng.standard_normal(rows * d, dtype=np.float32)


def argsort_rows(rows, d):
    x = np.random.default_rng(42).standard_normal((rows, d), dtype=np.float32)
    return lambda: x.argsort(axis=1, kind="stable")


def rank_rows(rows, d):
    x = np.random.default_rng(42).standard_normal((rows, d), dtype=np.float32)
    return lambda: x.argsort(axis=1, kind="stable").argsort(axis=1, kind="stable")


def weighted_sum_rows(rows, d):
    rng = np.random.default_rng(42)
    x = rng.standard_normal((rows, d), dtype=np.float32)
    w = rng.standard_normal(rows, dtype=np.float32)
    return lambda: w @ x


# op name (as in gen/kernels.py) -> (description, setup(rows, d) returning a callable)
PEERS = {
    "argmax_rows": ("x.argmax(axis=1)", argmax_rows),
    "noise_uniform": ("rng.random(n, dtype=float32)", noise_uniform),
    "noise_gumbel": ("rng.gumbel(size=n), float64", noise_gumbel),
    "noise_normal": ("rng.standard_normal(n, dtype=float32)", noise_normal),
    "argsort_rows": ('x.argsort(axis=1, kind="stable")', argsort_rows),
    "rank_rows": ('x.argsort(axis=1, kind="stable").argsort(axis=1, kind="stable")', rank_rows),
    "weighted_sum_rows": ("w @ x", weighted_sum_rows),
}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    groups = load_groups(sys.argv[1], ("op", "rows", "d"))
    print_banner()
    print(f"{'op':<14} {'rows':>8} {'d':>6} {'numpy ns/elem':>14}  per-ISA ns/elem (speedup)")
    for (op, rows, d), runs in groups.items():
        if op not in PEERS:
            print(f"{op:<14} {rows:>8} {d:>6} {'no numpy peer':>14}")
            continue
        what, setup = PEERS[op]
        ns = median_ns(setup(rows, d)) / (rows * d)
        cells = speedup_cells(runs, "ns_per_element", ns, 4)
        print(f"{op:<14} {rows:>8} {d:>6} {ns:>14.4f}  {cells}   [{what}]")
        read = [r for r in runs if r["isa"] == "read"]
        if read:  # kernels bound by reading: time over the time of a plain read of the input
            cells = "  ".join(f"{r['isa']} {r['ns_per_element'] / read[0]['ns_per_element']:.2f}"
                              for r in runs if r["isa"] != "read")
            print(f"{'':<14} {'':>8} {'':>6} {'x read time':>14}  {cells}")


if __name__ == "__main__":
    main()
