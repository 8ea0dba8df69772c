#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs numpy's and PyTorch's equivalent of each benchmarked kernel on the same sizes and
prints the ratios.

  numpy_peer.py RESULTS.json          (the JSON lines of `perturb-bench --json`)
  numpy_peer.py --check [RESULTS.json]

Each peer is what a user would write, in float32; the PyTorch peer is timed at one thread and
at one per CPU, and without PyTorch numpy runs alone.  Timed like perturb-bench times kernels
(peer_timing.py): batches of calls lasting at least 20 ms, the median of 11.  "speedup" is the
fastest peer's time over libperturb's for the same work, per ISA.  Where perturb-bench timed a
"read" baseline (a plain sum of the same input), each ISA's time is also given as a multiple
of it.

--check runs every peer on small inputs with ties: the row kernels of numpy and torch must
agree exactly (ties keep index order, as libperturb's do), the weighted sums must be within
1e-4 of sum |w x| of the exact sum, and the noise must have its distribution's mean and
variance within 5 standard errors; it exits 1 if any comparison fails.
"""

import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # run from the build directory
from peer_timing import (Peers, Table, Verdicts, gumbel_numpy, gumbel_torch,  # noqa: E402
                         load_groups, print_legend)

SEED = 42


def rows_input(rows, d):
    return np.random.default_rng(SEED).standard_normal((rows, d), dtype=np.float32)


def weights(rows):
    return np.random.default_rng(SEED + 1).standard_normal(rows, dtype=np.float32)


# Each op's inputs(rows, d) gives the arguments of its setups: numpy's setup(*args) and
# torch's setup(torch, *args) return the call that is timed (--check gives them other inputs).
def rows_args(rows, d):
    return (rows_input(rows, d),)


def count_args(rows, d):
    return (rows * d,)


def weighted_args(rows, d):
    return rows_input(rows, d), weights(rows)


def argmax_rows(x):
    return lambda: x.argmax(axis=1)


def argmax_rows_torch(torch, x):
    x = torch.from_numpy(x)
    return lambda: torch.argmax(x, dim=1)


def noise_uniform(n):
    rng = np.random.default_rng(SEED)
    return lambda: rng.random(n, dtype=np.float32)


def noise_uniform_torch(torch, n):
    torch.manual_seed(SEED)
    return lambda: torch.rand(n)


def noise_gumbel(n):
    rng = np.random.default_rng(SEED)
    return lambda: gumbel_numpy(rng, n)


def noise_gumbel_torch(torch, n):
    torch.manual_seed(SEED)
    return lambda: gumbel_torch(torch, n)


def noise_normal(n):
    rng = np.random.default_rng(SEED)
    return lambda: rng.standard_normal(n, dtype=np.float32)


def noise_normal_torch(torch, n):
    torch.manual_seed(SEED)
    return lambda: torch.randn(n)


def argsort_rows(x):
    return lambda: x.argsort(axis=1, kind="stable")


def argsort_rows_torch(torch, x):
    x = torch.from_numpy(x)
    return lambda: torch.argsort(x, dim=1, stable=True)


def rank_rows(x):
    return lambda: x.argsort(axis=1, kind="stable").argsort(axis=1, kind="stable")


def rank_rows_torch(torch, x):
    x = torch.from_numpy(x)
    return lambda: torch.argsort(torch.argsort(x, dim=1, stable=True), dim=1, stable=True)


def weighted_sum_rows(x, w):
    return lambda: w @ x


def weighted_sum_rows_torch(torch, x, w):
    x, w = torch.from_numpy(x), torch.from_numpy(w)
    return lambda: w @ x


# op name (as in gen/kernel_table.py) -> (numpy's code, torch's code, inputs, numpy setup,
# torch setup)
PEERS = {
    "argmax_rows": ("x.argmax(axis=1)", "torch.argmax(x, dim=1)", rows_args, argmax_rows,
                    argmax_rows_torch),
    "noise_uniform": ("rng.random(n, dtype=float32)", "torch.rand(n)", count_args,
                      noise_uniform, noise_uniform_torch),
    "noise_gumbel": ("-log(-log(rng.random(n, dtype=float32)))",
                     "-torch.log(-torch.log(torch.rand(n)))", count_args, noise_gumbel,
                     noise_gumbel_torch),
    "noise_normal": ("rng.standard_normal(n, dtype=float32)", "torch.randn(n)", count_args,
                     noise_normal, noise_normal_torch),
    "argsort_rows": ('x.argsort(axis=1, kind="stable")', "torch.argsort(x, dim=1, stable=True)",
                     rows_args, argsort_rows, argsort_rows_torch),
    "rank_rows": ('x.argsort(axis=1, kind="stable").argsort(axis=1, kind="stable")',
                  "torch.argsort twice, stable=True", rows_args, rank_rows, rank_rows_torch),
    "weighted_sum_rows": ("w @ x", "w @ x", weighted_args, weighted_sum_rows,
                          weighted_sum_rows_torch),
}


# ---- --check -------------------------------------------------------------------------------

# (mean, variance, fourth central moment) of each noise
MOMENTS = {
    "noise_uniform": (0.5, 1 / 12, 1 / 80),
    "noise_gumbel": (0.5772156649015329, math.pi ** 2 / 6, 5.4 * (math.pi ** 2 / 6) ** 2),
    "noise_normal": (0.0, 1.0, 3.0),
}


def outputs(peers, op, args):
    _, _, _, setup, torch_setup = PEERS[op]
    return peers.outputs(lambda: setup(*args), lambda: torch_setup(peers.torch, *args))


def sorts_stably(x, perm):
    """Whether each row of perm orders its row of x ascending, ties in index order."""
    keys = np.take_along_axis(x, perm.astype(np.int64), axis=1)
    up, tie = keys[:, 1:] > keys[:, :-1], keys[:, 1:] == keys[:, :-1]
    return bool(np.all(up | (tie & (perm[:, 1:] > perm[:, :-1]))))


def check(peers):
    verdicts = Verdicts()
    for rows, d in ((1000, 16), (50, 1000)):
        # rounded to halves: many ties in every row, which must keep index order, as in
        # libperturb's row kernels
        x = np.round(rows_input(rows, d) * 2) / 2
        for op in ("argmax_rows", "argsort_rows", "rank_rows"):
            outs = outputs(peers, op, (x,))
            if op == "argmax_rows":  # the first index of the greatest, by definition
                ok = np.array_equal(outs[0], [row.tolist().index(row.max()) for row in x])
            else:  # a rank is the inverse of the sorting permutation
                ok = sorts_stably(x, outs[0] if op == "argsort_rows" else np.argsort(outs[0]))
            same = all(np.array_equal(outs[0], o) for o in outs[1:])
            others = "".join(f", {name} equal to it" for name in peers.names[1:])
            verdicts.expect(ok and same, f"{op} {rows} x {d} with ties: numpy right{others}")
    x, w = weighted_args(1000, 16)
    exact = w.astype(np.float64) @ x.astype(np.float64)
    scale = np.abs(w).astype(np.float64) @ np.abs(x)
    for name, out in zip(peers.names, outputs(peers, "weighted_sum_rows", (x, w))):
        err = (np.abs(out - exact) / scale).max()
        verdicts.expect(err <= 1e-4, f"weighted_sum_rows {name} 1000 x 16: max error "
                        f"{err:.1e} of sum |w x|")
    n = 1 << 20
    for op, (mean, var, mu4) in MOMENTS.items():
        for name, z in zip(peers.names, outputs(peers, op, (n,))):
            finite = z[np.isfinite(z)]  # a uniform of 0 makes the users' Gumbel -inf
            k = finite.size
            se_mean, se_var = math.sqrt(var / k), math.sqrt((mu4 - var ** 2) / k)
            m, v = finite.mean(), finite.var()
            verdicts.expect(abs(m - mean) <= 5 * se_mean and abs(v - var) <= 5 * se_var,
                            f"{op} {name} n={n}: mean {m:.5f} ({mean:.5f} +- {5 * se_mean:.5f}),"
                            f" variance {v:.5f} ({var:.5f} +- {5 * se_var:.5f}), "
                            f"{z.size - k} not finite")
    return verdicts.finish()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="?", help="the JSON lines of perturb-bench --json")
    parser.add_argument("--check", action="store_true",
                        help="compare every peer with the definitions and with each other")
    args = parser.parse_args()
    if not args.results and not args.check:
        parser.error("a RESULTS.json, or --check")
    peers = Peers()
    if args.check and not check(peers):
        sys.exit(1)
    if not args.results:
        return
    groups = load_groups(args.results, ("op", "rows", "d"))
    table = Table(peers, groups, [("op", 19), ("rows", 8), ("d", 6)], "ns_per_element",
                  "ns per element", digits=4)
    for (op, rows, d), runs in groups.items():
        if op not in PEERS:
            table.note((op, rows, d), "no peer")
            continue
        _, _, inputs, setup, torch_setup = PEERS[op]
        args = inputs(rows, d)
        torch_call = torch_setup(peers.torch, *args) if peers.torch else None
        times = [t / (rows * d) for t in peers.times(setup(*args), torch_call)]
        table.row((op, rows, d), times, runs)
        read = [r["ns_per_element"] for r in runs if r["isa"] == "read"]
        if read:  # kernels bound by reading: time over the time of a plain read of the input
            cells = "  ".join(f"{table.label(r)} {r['ns_per_element'] / read[0]:.2f}"
                              for r in runs if r["isa"] != "read")
            table.note(("", "", ""), f"x read time: {cells}")
    print_legend(peers, {op: (np_code, torch_code)
                         for op, (np_code, torch_code, _, _, _) in PEERS.items()})


if __name__ == "__main__":
    main()
