#!/usr/bin/env python3
"""Runs the numpy and PyTorch versions of each perturbed-bench case on the same sizes and
prints the ratios.

  perturbed_peer.py RESULTS.json     (the JSON lines of `perturbed-bench --json`)

Each peer is what a user would write for the perturbed function, in float32: draw the (M, d)
Gumbel noise as -log(-log(uniform)), add it to the scaled logits, take the argmax (or argsort
twice, stably, for ranks) and average; for the VJP, weight grad_nu = 1 - exp(-z) by each
sample's cotangent: y_bar . (Y_m - b), with b the unperturbed value (the baseline), that is
y_bar[argmax] - y_bar[argmax(x)] for the argmax and (ranks - base_ranks) @ y_bar for the
ranking.  The PyTorch peer is the numpy one written with tensors, timed at one thread and at
one per CPU; without PyTorch, numpy runs alone.  Timed like perturbed-bench (peer_timing.py):
batches of calls lasting at least 20 ms, the median of 11.  "speedup" is the fastest peer's
time over libperturb's for the same work, per ISA.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # run from the build directory
from peer_timing import (Peers, Table, gumbel_numpy, gumbel_torch, load_groups,  # noqa: E402
                         print_legend)

SIGMA = 0.5
SEED = 42


def inputs(d):
    """The generator of the numpy peer's noise, x and y_bar (float32), all from one seed."""
    rng = np.random.default_rng(SEED)
    x = rng.uniform(-1.0, 1.0, d).astype(np.float32)
    y_bar = ((np.arange(d) % 7) * 0.25 - 0.75).astype(np.float32)
    return rng, x, y_bar


def torch_inputs(torch, d):
    """The numpy peer's x and y_bar as tensors; the noise from torch's generator, seeded."""
    _, x, y_bar = inputs(d)
    torch.manual_seed(SEED)
    return torch.from_numpy(x), torch.from_numpy(y_bar)


def argmax_eval(d, m):
    rng, x, _ = inputs(d)

    def call():
        z = gumbel_numpy(rng, (m, d))
        idx = np.argmax(x + SIGMA * z, axis=1)
        return np.bincount(idx, minlength=d) / m

    return call


def argmax_eval_torch(torch, d, m):
    x, _ = torch_inputs(torch, d)

    def call():
        z = gumbel_torch(torch, (m, d))
        idx = torch.argmax(x + SIGMA * z, dim=1)
        return torch.bincount(idx, minlength=d) / m

    return call


def argmax_vjp(d, m):
    rng, x, y_bar = inputs(d)
    base = y_bar[np.argmax(x)]

    def call():
        z = gumbel_numpy(rng, (m, d))
        idx = np.argmax(x + SIGMA * z, axis=1)
        c = y_bar[idx] - base
        return (c[:, None] * (1.0 - np.exp(-z))).sum(axis=0) / (m * SIGMA)

    return call


def argmax_vjp_torch(torch, d, m):
    x, y_bar = torch_inputs(torch, d)
    base = y_bar[torch.argmax(x)]

    def call():
        z = gumbel_torch(torch, (m, d))
        idx = torch.argmax(x + SIGMA * z, dim=1)
        c = y_bar[idx] - base
        return (c[:, None] * (1.0 - torch.exp(-z))).sum(dim=0) / (m * SIGMA)

    return call


# Ranks as float32, as pt_fn_ranking gives them: the VJP's (ranks - base) @ y_bar then stays
# in float32 (numpy would promote int64 @ float32 to float64; torch refuses to mix them).
def ranks_numpy(v):
    return np.argsort(np.argsort(v, axis=-1, kind="stable"), axis=-1,
                      kind="stable").astype(np.float32)


def ranks_torch(torch, v):
    return torch.argsort(torch.argsort(v, dim=-1, stable=True), dim=-1,
                         stable=True).to(torch.float32)


def ranking_eval(d, m):
    rng, x, _ = inputs(d)

    def call():
        z = gumbel_numpy(rng, (m, d))
        return ranks_numpy(x + SIGMA * z).mean(axis=0)

    return call


def ranking_eval_torch(torch, d, m):
    x, _ = torch_inputs(torch, d)

    def call():
        z = gumbel_torch(torch, (m, d))
        return ranks_torch(torch, x + SIGMA * z).mean(dim=0)

    return call


def ranking_vjp(d, m):
    rng, x, y_bar = inputs(d)
    base = ranks_numpy(x)

    def call():
        z = gumbel_numpy(rng, (m, d))
        c = (ranks_numpy(x + SIGMA * z) - base) @ y_bar
        return (c[:, None] * (1.0 - np.exp(-z))).sum(axis=0) / (m * SIGMA)

    return call


def ranking_vjp_torch(torch, d, m):
    x, y_bar = torch_inputs(torch, d)
    base = ranks_torch(torch, x)

    def call():
        z = gumbel_torch(torch, (m, d))
        c = (ranks_torch(torch, x + SIGMA * z) - base) @ y_bar
        return (c[:, None] * (1.0 - torch.exp(-z))).sum(dim=0) / (m * SIGMA)

    return call


def noise_alone(d, m):
    rng, _, _ = inputs(d)
    return lambda: gumbel_numpy(rng, (m, d))


def noise_alone_torch(torch, d, m):
    torch_inputs(torch, d)
    return lambda: gumbel_torch(torch, (m, d))


# case -> (what both peers compute, numpy setup(d, m), torch setup(torch, d, m))
PEERS = {
    "argmax_eval": ("Gumbel, add, argmax, bincount / M", argmax_eval, argmax_eval_torch),
    "argmax_vjp": ("Gumbel, add, argmax, (y_bar[idx] - b) * (1 - exp(-z)) summed",
                   argmax_vjp, argmax_vjp_torch),
    "ranking_eval": ("Gumbel, add, stable argsort twice, mean", ranking_eval,
                     ranking_eval_torch),
    "ranking_vjp": ("Gumbel, add, stable argsort twice, ((ranks - b) @ y_bar) * (1 - exp(-z))"
                    " summed", ranking_vjp, ranking_vjp_torch),
    "noise_alone": ("-log(-log(uniform (M, d)))", noise_alone, noise_alone_torch),
}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    peers = Peers()
    groups = load_groups(sys.argv[1], ("case", "d", "samples"))
    table = Table(peers, groups, [("case", 13), ("d", 6), ("M", 8)], "ns_per_call", "us per call",
                  scale=1e3)
    for (case, d, m), runs in groups.items():
        _, setup, torch_setup = PEERS[case]
        torch_call = torch_setup(peers.torch, d, m) if peers.torch else None
        table.row((case, d, m), peers.times(setup(d, m), torch_call), runs)
    print_legend(peers, {case: what for case, (what, _, _) in PEERS.items()})


if __name__ == "__main__":
    main()
