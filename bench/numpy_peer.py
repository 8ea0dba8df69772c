#!/usr/bin/env python3
"""Runs numpy's and PyTorch's equivalent of each benchmarked kernel on the same sizes and
prints the ratios.

  numpy_peer.py RESULTS.json     (the JSON lines of `perturb-bench --json`)

Each peer is what a user would write, in float32; the PyTorch peer is timed at one thread and
at one per CPU, and without PyTorch numpy runs alone.  Timed like perturb-bench times kernels
(peer_timing.py): batches of calls lasting at least 20 ms, the median of 11.  "speedup" is the
fastest peer's time over libperturb's for the same work, per ISA.  Where perturb-bench timed a
"read" baseline (a plain sum of the same input), each ISA's time is also given as a multiple
of it.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # run from the build directory
from peer_timing import (Peers, Table, gumbel_numpy, gumbel_torch, load_groups,  # noqa: E402
                         print_legend)

SEED = 42


def rows_input(rows, d):
    return np.random.default_rng(SEED).standard_normal((rows, d), dtype=np.float32)


def weights(rows):
    return np.random.default_rng(SEED + 1).standard_normal(rows, dtype=np.float32)


# Each op's inputs(rows, d) gives the arguments of its setups: numpy's setup(*args) and
# torch's setup(torch, *args) return the call that is timed.
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


# op name (as in gen/kernels.py) -> (numpy's code, torch's code, inputs, numpy setup,
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


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    peers = Peers()
    groups = load_groups(sys.argv[1], ("op", "rows", "d"))
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
