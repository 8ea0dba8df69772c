#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs the numpy and PyTorch versions of each perturbed-bench case on the same sizes and
prints the ratios.

  perturbed_peer.py RESULTS.json          (the JSON lines of `perturbed-bench --json`)
  perturbed_peer.py --check [RESULTS.json]

Each peer is what a user would write for the perturbed function, in float32: draw the (M, d)
Gumbel noise as -log(-log(uniform)), add it to the scaled logits, take the argmax (or argsort
twice, stably, for ranks) and average; for the VJP, weight grad_nu = 1 - exp(-z) by each
sample's cotangent: y_bar . (Y_m - b), with b the unperturbed value (the baseline), that is
y_bar[argmax] - y_bar[argmax(x)] for the argmax and (ranks - base_ranks) @ y_bar for the
ranking.  The max and the sort take their pathwise gradients, as libperturb does by default:
the max's value is the mean of the perturbed maxima and its VJP y_bar times the frequency of
each argmax; the sort's VJP is the mean of y_bar[ranks].  The PyTorch peer is the numpy one
written with tensors, timed at one thread and at one per CPU; without PyTorch, numpy runs
alone.  Timed like perturbed-bench (peer_timing.py):
batches of calls lasting at least 20 ms, the median of 11.  "speedup" is the fastest peer's
time over libperturb's for the same work, per ISA.

--check runs every peer on sizes where the estimates are sharp and compares them with the
closed forms libperturb's own tests use (softmax and its Jacobian; sums of sigmoids for the
ranks; the Gumbel mean and variance) and with the top k's inclusion probabilities, by
quadrature, within 5 standard errors, and numpy with torch-1; it exits 1 if any comparison
fails.
"""

import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # run from the build directory
from peer_timing import (Peers, Table, Verdicts, gumbel_numpy, gumbel_torch,  # noqa: E402
                         load_groups, print_legend)

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


def antithetic_gumbel_numpy(rng, m, d):
    """M rows of Gumbel noise in antithetic pairs: rows 2p and 2p + 1 from u and 1 - u (u in
    [2^-24, 1 - 2^-24], as the library's uniforms, so both logarithms are finite)."""
    u = np.clip(rng.random((m // 2, d), dtype=np.float32), 2.0 ** -24, 1.0 - 2.0 ** -24)
    return np.stack([-np.log(-np.log(u)), -np.log(-np.log(1.0 - u))], axis=1).reshape(m, d)


def antithetic_gumbel_torch(torch, m, d):
    u = torch.rand((m // 2, d)).clamp(2.0 ** -24, 1.0 - 2.0 ** -24)
    return torch.stack([-torch.log(-torch.log(u)), -torch.log(-torch.log(1.0 - u))],
                       dim=1).reshape(m, d)


def argmax_pairs_eval(d, m):
    rng, x, _ = inputs(d)

    def call():
        z = antithetic_gumbel_numpy(rng, m, d)
        idx = np.argmax(x + SIGMA * z, axis=1)
        return np.bincount(idx, minlength=d) / m

    return call


def argmax_pairs_eval_torch(torch, d, m):
    x, _ = torch_inputs(torch, d)

    def call():
        z = antithetic_gumbel_torch(torch, m, d)
        idx = torch.argmax(x + SIGMA * z, dim=1)
        return torch.bincount(idx, minlength=d) / m

    return call


def argmax_pairs_vjp(d, m):
    rng, x, y_bar = inputs(d)
    base = y_bar[np.argmax(x)]

    def call():
        z = antithetic_gumbel_numpy(rng, m, d)
        idx = np.argmax(x + SIGMA * z, axis=1)
        c = y_bar[idx] - base
        return (c[:, None] * (1.0 - np.exp(-z))).sum(axis=0) / (m * SIGMA)

    return call


def argmax_pairs_vjp_torch(torch, d, m):
    x, y_bar = torch_inputs(torch, d)
    base = y_bar[torch.argmax(x)]

    def call():
        z = antithetic_gumbel_torch(torch, m, d)
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


# ---- top-k (TOP_K of d, as perturbed-bench's top_k cases): the TOP_K greatest of each sample by
# np.argpartition / torch.topk, their one-hot averaged by bincount; the VJP's cotangent is
# y_bar summed over the winners minus over the unperturbed ones.
TOP_K = 10


def top_k_numpy(v):
    return np.argpartition(v, v.shape[-1] - TOP_K, axis=-1)[..., v.shape[-1] - TOP_K:]


def top_k_eval(d, m):
    rng, x, _ = inputs(d)

    def call():
        z = gumbel_numpy(rng, (m, d))
        return np.bincount(top_k_numpy(x + SIGMA * z).ravel(), minlength=d) / m

    return call


def top_k_eval_torch(torch, d, m):
    x, _ = torch_inputs(torch, d)

    def call():
        z = gumbel_torch(torch, (m, d))
        idx = torch.topk(x + SIGMA * z, TOP_K, dim=1).indices
        return torch.bincount(idx.flatten(), minlength=d) / m

    return call


def top_k_vjp(d, m):
    rng, x, y_bar = inputs(d)
    base = y_bar[top_k_numpy(x)].sum()

    def call():
        z = gumbel_numpy(rng, (m, d))
        c = y_bar[top_k_numpy(x + SIGMA * z)].sum(axis=1) - base
        return (c[:, None] * (1.0 - np.exp(-z))).sum(axis=0) / (m * SIGMA)

    return call


def top_k_vjp_torch(torch, d, m):
    x, y_bar = torch_inputs(torch, d)
    base = y_bar[torch.topk(x, TOP_K).indices].sum()

    def call():
        z = gumbel_torch(torch, (m, d))
        c = y_bar[torch.topk(x + SIGMA * z, TOP_K, dim=1).indices].sum(dim=1) - base
        return (c[:, None] * (1.0 - torch.exp(-z))).sum(dim=0) / (m * SIGMA)

    return call


# ---- the max and the sort, pathwise (y_bar of the max: its first entry, as perturbed-bench's)

def max_eval(d, m):
    rng, x, _ = inputs(d)

    def call():
        z = gumbel_numpy(rng, (m, d))
        return (x + SIGMA * z).max(axis=1).mean(keepdims=True)

    return call


def max_eval_torch(torch, d, m):
    x, _ = torch_inputs(torch, d)

    def call():
        z = gumbel_torch(torch, (m, d))
        return (x + SIGMA * z).max(dim=1).values.mean(dim=0, keepdim=True)

    return call


def max_vjp(d, m):
    rng, x, y_bar = inputs(d)

    def call():
        z = gumbel_numpy(rng, (m, d))
        idx = np.argmax(x + SIGMA * z, axis=1)
        return y_bar[0] * np.bincount(idx, minlength=d).astype(np.float32) / m

    return call


def max_vjp_torch(torch, d, m):
    x, y_bar = torch_inputs(torch, d)

    def call():
        z = gumbel_torch(torch, (m, d))
        idx = torch.argmax(x + SIGMA * z, dim=1)
        return y_bar[0] * torch.bincount(idx, minlength=d).to(torch.float32) / m

    return call


def sort_vjp(d, m):
    rng, x, y_bar = inputs(d)

    def call():
        z = gumbel_numpy(rng, (m, d))
        return y_bar[ranks_numpy(x + SIGMA * z).astype(np.int64)].mean(axis=0)

    return call


def sort_vjp_torch(torch, d, m):
    x, y_bar = torch_inputs(torch, d)

    def call():
        z = gumbel_torch(torch, (m, d))
        return y_bar[ranks_torch(torch, x + SIGMA * z).long()].mean(dim=0)

    return call


# ---- batches: BATCH inputs at once, as a user vectorises them (noise (BATCH, M, d)) -----------
BATCH = 256


def batch_inputs(d):
    rng, _, y_bar = inputs(d)
    x = rng.uniform(-1.0, 1.0, (BATCH, d)).astype(np.float32)
    return rng, x, np.tile(y_bar, (BATCH, 1))


def won_per_row(idx, d):
    """How many samples each input won, per row of idx (rows, M): one bincount over the rows'
    winners offset by d per row (a loop of bincounts would be a Python loop per row), in
    float32 as libperturb's outputs."""
    rows = len(idx)
    won = np.bincount((idx + d * np.arange(rows)[:, None]).ravel(), minlength=rows * d)
    return won.reshape(rows, d).astype(np.float32)


def argmax_eval_batch(d, m):
    rng, x, _ = batch_inputs(d)

    def call():
        z = gumbel_numpy(rng, (BATCH, m, d))
        idx = np.argmax(x[:, None, :] + SIGMA * z, axis=2)
        return won_per_row(idx, d) / np.float32(m)

    return call


def argmax_eval_batch_torch(torch, d, m):
    _, x, _ = batch_inputs(d)
    x = torch.from_numpy(x)

    def call():
        z = gumbel_torch(torch, (BATCH, m, d))
        idx = torch.argmax(x[:, None, :] + SIGMA * z, dim=2)
        return torch.nn.functional.one_hot(idx, d).to(torch.float32).mean(dim=1)

    return call


def argmax_vjp_batch(d, m):
    rng, x, y_bar = batch_inputs(d)
    rows = np.arange(BATCH)
    base = y_bar[rows, np.argmax(x, axis=1)]

    def call():
        z = gumbel_numpy(rng, (BATCH, m, d))
        idx = np.argmax(x[:, None, :] + SIGMA * z, axis=2)
        c = np.take_along_axis(y_bar, idx, axis=1) - base[:, None]
        return (c[:, :, None] * (1.0 - np.exp(-z))).sum(axis=1) / (m * SIGMA)

    return call


def argmax_vjp_batch_torch(torch, d, m):
    _, x, y_bar = batch_inputs(d)
    x, y_bar = torch.from_numpy(x), torch.from_numpy(y_bar)
    base = y_bar.gather(1, torch.argmax(x, dim=1, keepdim=True))

    def call():
        z = gumbel_torch(torch, (BATCH, m, d))
        idx = torch.argmax(x[:, None, :] + SIGMA * z, dim=2)
        c = y_bar.gather(1, idx) - base
        return (c[:, :, None] * (1.0 - torch.exp(-z))).sum(dim=1) / (m * SIGMA)

    return call


def ranking_eval_batch(d, m):
    rng, x, _ = batch_inputs(d)

    def call():
        z = gumbel_numpy(rng, (BATCH, m, d))
        return ranks_numpy(x[:, None, :] + SIGMA * z).mean(axis=1)

    return call


def ranking_eval_batch_torch(torch, d, m):
    _, x, _ = batch_inputs(d)
    x = torch.from_numpy(x)

    def call():
        z = gumbel_torch(torch, (BATCH, m, d))
        return ranks_torch(torch, x[:, None, :] + SIGMA * z).mean(dim=1)

    return call


def ranking_vjp_batch(d, m):
    rng, x, y_bar = batch_inputs(d)
    base = ranks_numpy(x)

    def call():
        z = gumbel_numpy(rng, (BATCH, m, d))
        c = np.einsum("bmd,bd->bm", ranks_numpy(x[:, None, :] + SIGMA * z) - base[:, None, :],
                      y_bar)
        return (c[:, :, None] * (1.0 - np.exp(-z))).sum(axis=1) / (m * SIGMA)

    return call


def ranking_vjp_batch_torch(torch, d, m):
    _, x, y_bar = batch_inputs(d)
    x, y_bar = torch.from_numpy(x), torch.from_numpy(y_bar)
    base = ranks_torch(torch, x)

    def call():
        z = gumbel_torch(torch, (BATCH, m, d))
        c = torch.einsum("bmd,bd->bm", ranks_torch(torch, x[:, None, :] + SIGMA * z)
                         - base[:, None, :], y_bar)
        return (c[:, :, None] * (1.0 - torch.exp(-z))).sum(dim=1) / (m * SIGMA)

    return call


# ---- the Fenchel-Young loss of the argmax one-hot: value and gradient of BATCH rows ----------
# (theta, y_true), y_true one-hot; Gumbel at FY_SIGMA, as perturbed-bench's fy_loss_grad_batch.
# The loss is the mean over samples of max(theta + sigma G) minus <theta, y_true>, its gradient
# the mean one-hot of the argmax minus y_true (and -theta for y_true).  A user vectorises the
# rows over the (rows, M, d) noise, FY_CHUNK rows at a time: the whole (BATCH, M, d) tensor and
# its temporaries would not stay in cache (100 MB each at d = 100, M = 1000).  8 rows (3.2 MB a
# tensor) were the fastest for numpy, the faster peer, of 1 to 64 on the 2-core Zen 4 VM by CPU
# time (91 ms; 95 to 97 ms at 2 and 4 rows, 104 ms at 16); torch-1 stays within 2% from 2 to 8.
# Each returns (BATCH, 1 + 2d): the loss, then the gradient, as perturbed-bench's value and grad.
FY_SIGMA = 0.1
FY_CHUNK = 8


def fy_inputs(d):
    rng, theta, _ = batch_inputs(d)
    y_true = np.eye(d, dtype=np.float32)[rng.integers(0, d, BATCH)]
    return rng, theta, y_true


def fy_loss_grad_batch(d, m):
    rng, theta, y_true = fy_inputs(d)
    target = (theta * y_true).sum(axis=1)

    def call():
        loss = np.empty(BATCH, np.float32)
        mean = np.empty((BATCH, d), np.float32)
        for r in range(0, BATCH, FY_CHUNK):
            t = theta[r:r + FY_CHUNK]
            k = len(t)
            v = t[:, None, :] + FY_SIGMA * gumbel_numpy(rng, (k, m, d))
            idx = np.argmax(v, axis=2)
            loss[r:r + k] = np.take_along_axis(v, idx[:, :, None], axis=2).mean(axis=(1, 2))
            mean[r:r + k] = won_per_row(idx, d) / np.float32(m)
        return np.concatenate([(loss - target)[:, None], mean - y_true, -theta], axis=1)

    return call


def fy_loss_grad_batch_torch(torch, d, m):
    _, theta, y_true = fy_inputs(d)
    theta, y_true = torch.from_numpy(theta), torch.from_numpy(y_true)
    torch.manual_seed(SEED)
    target = (theta * y_true).sum(dim=1)

    def call():
        loss = torch.empty(BATCH)
        won = torch.zeros(BATCH, d)
        for r in range(0, BATCH, FY_CHUNK):
            t = theta[r:r + FY_CHUNK]
            k = len(t)
            best, idx = (t[:, None, :] + FY_SIGMA * gumbel_torch(torch, (k, m, d))).max(dim=2)
            loss[r:r + k] = best.mean(dim=1)
            won[r:r + k].scatter_add_(1, idx, torch.ones(k, m))
        return torch.cat([(loss - target)[:, None], won / m - y_true, -theta], dim=1)

    return call


def noise_alone(d, m):
    rng, _, _ = inputs(d)
    return lambda: gumbel_numpy(rng, (m, d))


def noise_alone_torch(torch, d, m):
    torch_inputs(torch, d)
    return lambda: gumbel_torch(torch, (m, d))


# ---- --check: each peer's estimate against the closed form, within 5 standard errors --------
# Each returns (exact value, a bound on one sample's standard deviation per entry), float64.

def softmax_bound(d, m):
    _, x, _ = inputs(d)
    p = np.exp((x - x.max()) / SIGMA, dtype=np.float64)
    p /= p.sum()
    return p, np.sqrt(p * (1.0 - p))


def softmax_vjp_bound(d, m):
    _, x, y_bar = inputs(d)
    p, _ = softmax_bound(d, m)
    # One sample is c (1 - E) / sigma, E ~ Exp(1): E[(1 - E)^2] = 1, |c| <= max |y_bar - b|.
    c_max = np.abs(y_bar - y_bar[np.argmax(x)]).max()
    return p * (y_bar - p @ y_bar) / SIGMA, np.full(d, c_max / SIGMA)


def pairwise_sigmoid(x):
    """s[i, j] = P(x_j + sigma Z_j < x_i + sigma Z_i) for Gumbel Z: the difference of two
    Gumbels is logistic.  The diagonal is zeroed (an element does not outrank itself)."""
    x = x.astype(np.float64)
    s = 1.0 / (1.0 + np.exp(-(x[:, None] - x[None, :]) / SIGMA))
    np.fill_diagonal(s, 0.0)
    return s


def ranks_bound(d, m):
    _, x, _ = inputs(d)
    return pairwise_sigmoid(x).sum(axis=1), np.full(d, (d - 1) / 2.0)  # a rank is in [0, d-1]


def ranks_vjp_bound(d, m):
    _, x, y_bar = inputs(d)
    s = pairwise_sigmoid(x)
    ds = s * (1.0 - s) / SIGMA  # d s[i, j] / d x_i = -d s[i, j] / d x_j
    np.fill_diagonal(ds, 0.0)
    y = y_bar.astype(np.float64)
    # |c| = |(ranks - base) @ y_bar| <= (d - 1) sum |y_bar|, and E[(1 - E)^2] = 1 as above.
    c_max = (d - 1) * np.abs(y).sum()
    return y * ds.sum(axis=1) - ds.T @ y, np.full(d, c_max / SIGMA)


def top_k_inclusion(x):
    """P[i]: the probability that x_i + sigma G_i is among the TOP_K greatest, for Gumbel G, by
    quadrature over i's perturbed score t: the others above t are independent with
    P(x_j + sigma G_j > t) = 1 - exp(-exp(-(t - x_j) / sigma)), and fewer than TOP_K of them
    (a Poisson-binomial count, by the usual recursion over j) puts i in.  In the variable
    u = (t - x_i) / sigma, i's density is exp(-u - exp(-u)); [-6, 40] holds all of it but
    exp(-e^6) and e^-40."""
    x = np.asarray(x, dtype=np.float64)
    u = np.linspace(-6.0, 40.0, 40001)
    density = np.exp(-u - np.exp(-u))
    p = np.empty(len(x))
    for i in range(len(x)):
        t = x[i] + SIGMA * u
        below = np.zeros((TOP_K, u.size))  # below[c]: P(exactly c of the others so far above t)
        below[0] = 1.0
        for j in range(len(x)):
            if j != i:
                above = -np.expm1(-np.exp(-(t - x[j]) / SIGMA))
                below[1:] = below[1:] * (1.0 - above) + below[:-1] * above
                below[0] *= 1.0 - above
        p[i] = np.trapz(density * below.sum(axis=0), u)
    return p


def top_k_bound(d, m):
    _, x, _ = inputs(d)
    p = top_k_inclusion(x)
    return p, np.sqrt(p * (1.0 - p))


def top_k_vjp_bound(d, m):
    """The gradient of E[y_bar . one-hot of the top k] = y_bar . P(x), by central differences
    of the quadrature (smooth, and far more accurate than 5 standard errors).  One sample is
    c (1 - E) / sigma with |c| at most the k greatest entries of y_bar less the k least."""
    _, x, y_bar = inputs(d)
    x = x.astype(np.float64)
    y = y_bar.astype(np.float64)
    h = 1e-4
    grad = np.empty(d)
    for i in range(d):
        step = np.zeros(d)
        step[i] = h
        grad[i] = y @ (top_k_inclusion(x + step) - top_k_inclusion(x - step)) / (2 * h)
    ordered = np.sort(y)
    c_max = ordered[-TOP_K:].sum() - ordered[:TOP_K].sum()
    return grad, np.full(d, c_max / SIGMA)


EULER_GAMMA = 0.5772156649015329


def smoothed_max_bound(d, m):
    """sigma LSE(x / sigma) + sigma gamma: max_i x_i + sigma G_i is itself a Gumbel of scale
    sigma, whose standard deviation is sigma pi / sqrt(6)."""
    _, x, _ = inputs(d)
    x = x.astype(np.float64)
    mx = x.max()
    lse = mx + SIGMA * math.log(np.exp((x - mx) / SIGMA).sum())
    return np.array([lse + SIGMA * EULER_GAMMA]), np.array([SIGMA * math.pi / math.sqrt(6)])


def smoothed_max_vjp_bound(d, m):
    _, x, y_bar = inputs(d)
    p, sd = softmax_bound(d, m)
    return y_bar[0] * p, abs(float(y_bar[0])) * sd


def plackett_luce_ranks(x):
    """P[i, r]: the probability that x_i + sigma G_i has rank r (ascending), exactly, for Gumbel
    G: the perturbed order from the greatest down is Plackett-Luce with weights exp(x / sigma),
    summed here over every order (small d only)."""
    import itertools
    w = np.exp((x - x.max()) / SIGMA).astype(np.float64)
    d = len(x)
    p = np.zeros((d, d))
    for order in itertools.permutations(range(d)):  # greatest first
        prob, left = 1.0, w.sum()
        for i in order:
            prob *= w[i] / left
            left -= w[i]
        for k, i in enumerate(order):
            p[i, d - 1 - k] += prob
    return p


def sort_vjp_bound(d, m):
    _, x, y_bar = inputs(d)
    p = plackett_luce_ranks(x.astype(np.float64))
    y = y_bar.astype(np.float64)
    mean = p @ y
    return mean, np.sqrt(np.maximum(p @ (y * y) - mean * mean, 0.0))


def fy_bound(d, m):
    """Per row, the Fenchel-Young loss of the Gumbel argmax one-hot in closed form: sigma
    LSE(theta / sigma) + sigma gamma - <theta, y_true>, gradient softmax(theta / sigma) - y_true
    and -theta; with one sample's standard deviation and the allowed error.  A sample's loss is
    a Gumbel of scale sigma (as the smoothed max's): 5 standard errors.  The one-hot's counts
    are binomial, most of them with means far below 1 at sigma 0.1, where 5 standard errors
    and one count are not a tail bound: Bernstein's inequality at the same level, exp(-12.5),
    allows t counts with t^2 = 25 (M p (1 - p) + t / 3).  -theta is exact but for one step."""
    _, theta, y_true = fy_inputs(d)
    t = theta.astype(np.float64) / FY_SIGMA
    top = t.max(axis=1, keepdims=True)
    w = np.exp(t - top)
    lse = FY_SIGMA * (top[:, 0] + np.log(w.sum(axis=1)))
    p = w / w.sum(axis=1, keepdims=True)
    loss = lse + FY_SIGMA * EULER_GAMMA - (theta * y_true).sum(axis=1, dtype=np.float64)
    exact = np.concatenate([loss[:, None], p - y_true, -theta.astype(np.float64)], axis=1)
    loss_sd = np.full((BATCH, 1), FY_SIGMA * math.pi / math.sqrt(6))
    counts_sd = np.sqrt(p * (1.0 - p))
    counts_tol = (25 / 6 + np.sqrt((25 / 6) ** 2 + 25 * m * counts_sd ** 2)) / m
    sd = np.concatenate([loss_sd, counts_sd, np.zeros((BATCH, d))], axis=1)
    tol = np.concatenate([5 * loss_sd / math.sqrt(m) + 1.0 / m, counts_tol,
                          np.full((BATCH, d), 1.0 / m)], axis=1)
    return exact, sd, tol


def zero_uniforms(peers, d, m):
    """Per peer, the columns where its first (M, d) uniforms hold an exact 0.  There the users'
    Gumbel formula gives -inf, and the VJP's weight 1 - exp(-z) an infinity: probability 2^-24
    per draw, in numpy and torch alike (libperturb's uniforms exclude 0).  torch.rand is the
    same at any thread count, so both torch peers share one mask."""
    masks = [(inputs(d)[0].random((m, d), dtype=np.float32) == 0).any(axis=0)]
    if peers.torch:
        peers.torch.manual_seed(SEED)
        masks += [(peers.torch.rand((m, d)) == 0).any(dim=0).numpy()] * len(peers.torch_threads)
    return masks


def check_noise(verdicts, peers, d, m):
    """The peers' Gumbel noise: mean and variance against gamma and pi^2 / 6, the -infs of
    uniforms of 0 counted and left out."""
    var = math.pi ** 2 / 6
    outs = peers.outputs(lambda: noise_alone(d, m), lambda: noise_alone_torch(peers.torch, d, m))
    for name, z in zip(peers.names, outs):
        finite = z[np.isfinite(z)]
        n = finite.size
        # the Gumbel's fourth central moment is 5.4 var^2 (excess kurtosis 12/5)
        se_mean, se_var = math.sqrt(var / n), math.sqrt(4.4 / n) * var
        mean, v = finite.mean(), finite.var()
        verdicts.expect(abs(mean - EULER_GAMMA) <= 5 * se_mean and abs(v - var) <= 5 * se_var,
                        f"noise_alone {name} d={d} M={m}: mean {mean:.5f} (gamma {EULER_GAMMA:.5f}"
                        f" +- {5 * se_mean:.5f}), variance {v:.5f} ({var:.5f} +- {5 * se_var:.5f})"
                        f", {z.size - n} of {z.size} not finite")


def check_estimates(verdicts, peers, case, d, m, exact_bound):
    _, setup, torch_setup = PEERS[case]
    bound = exact_bound(d, m)
    exact, sd = bound[:2]
    # 5 standard errors, plus one sample's step 1/M: the counts of rare classes are Poisson
    # with means below 1, far from normal (or the bound's own tolerance, a third element).
    tol = bound[2] if len(bound) > 2 else 5 * sd / math.sqrt(m) + 1.0 / m
    outs = peers.outputs(lambda: setup(d, m), lambda: torch_setup(peers.torch, d, m))
    for name, out, zero in zip(peers.names, outs, zero_uniforms(peers, d, m)):
        if zero.shape != out.shape:  # an output that is not per column (the max's value)
            zero = np.full(out.shape, zero.any())
        finite = np.isfinite(out)
        err = np.abs(out - exact)[finite]
        text = (f"{case} {name} d={d} M={m}: max |estimate - closed form| "
                f"{err.max(initial=0.0):.2e} (allowed {tol.min():.2e} to {tol.max():.2e})")
        if not finite.all():
            text += (f"; not finite at {np.count_nonzero(~finite)} of {d} entries, "
                     f"{np.count_nonzero(~finite & zero)} of them where a uniform was 0")
        verdicts.expect(bool(np.all(err <= tol[finite]) and np.all(zero[~finite])), text)
    if peers.torch:
        both = np.isfinite(outs[0]) & np.isfinite(outs[1])
        diff = np.abs(outs[0] - outs[1])[both]
        verdicts.expect(bool(np.all(diff <= math.sqrt(2) * tol[both])),
                        f"{case} numpy vs torch-1 d={d} M={m}: max difference "
                        f"{diff.max(initial=0.0):.2e} over {np.count_nonzero(both)} entries")


def check(peers):
    """Every case's peers on sizes where 5 standard errors are small against the values."""
    verdicts = Verdicts()
    check_estimates(verdicts, peers, "argmax_eval", 1000, 1000, softmax_bound)
    check_estimates(verdicts, peers, "argmax_vjp", 5, 1_000_000, softmax_vjp_bound)
    check_estimates(verdicts, peers, "argmax_pairs_eval", 1000, 1000, softmax_bound)
    check_estimates(verdicts, peers, "argmax_pairs_vjp", 5, 1_000_000, softmax_vjp_bound)
    check_estimates(verdicts, peers, "ranking_eval", 5, 1_000_000, ranks_bound)
    check_estimates(verdicts, peers, "ranking_vjp", 5, 1_000_000, ranks_vjp_bound)
    check_estimates(verdicts, peers, "top_k_eval", 16, 200_000, top_k_bound)
    check_estimates(verdicts, peers, "top_k_vjp", 16, 1_000_000, top_k_vjp_bound)
    check_estimates(verdicts, peers, "max_eval", 1000, 100_000, smoothed_max_bound)
    check_estimates(verdicts, peers, "max_vjp", 1000, 1000, smoothed_max_vjp_bound)
    check_estimates(verdicts, peers, "sort_vjp", 5, 1_000_000, sort_vjp_bound)
    check_estimates(verdicts, peers, "fy_loss_grad_batch", 100, 10_000, fy_bound)
    check_noise(verdicts, peers, 1000, 1000)
    return verdicts.finish()


# case -> (what both peers compute, numpy setup(d, m), torch setup(torch, d, m))
PEERS = {
    "argmax_eval": ("Gumbel, add, argmax, bincount / M", argmax_eval, argmax_eval_torch),
    "argmax_vjp": ("Gumbel, add, argmax, (y_bar[idx] - b) * (1 - exp(-z)) summed",
                   argmax_vjp, argmax_vjp_torch),
    "ranking_eval": ("Gumbel, add, stable argsort twice, mean", ranking_eval,
                     ranking_eval_torch),
    "ranking_vjp": ("Gumbel, add, stable argsort twice, ((ranks - b) @ y_bar) * (1 - exp(-z))"
                    " summed", ranking_vjp, ranking_vjp_torch),
    "top_k_eval": (f"Gumbel, add, argpartition / topk of {TOP_K}, bincount / M", top_k_eval,
                   top_k_eval_torch),
    "top_k_vjp": (f"Gumbel, add, argpartition / topk of {TOP_K}, (y_bar[idx].sum - b) *"
                  " (1 - exp(-z)) summed", top_k_vjp, top_k_vjp_torch),
    "noise_alone": ("-log(-log(uniform (M, d)))", noise_alone, noise_alone_torch),
    "argmax_eval_batch": (f"argmax_eval of {BATCH} inputs at once: noise ({BATCH}, M, d)",
                          argmax_eval_batch, argmax_eval_batch_torch),
    "argmax_vjp_batch": (f"argmax_vjp of {BATCH} inputs at once", argmax_vjp_batch,
                         argmax_vjp_batch_torch),
    "ranking_eval_batch": (f"ranking_eval of {BATCH} inputs at once", ranking_eval_batch,
                           ranking_eval_batch_torch),
    "ranking_vjp_batch": (f"ranking_vjp of {BATCH} inputs at once", ranking_vjp_batch,
                          ranking_vjp_batch_torch),
    "max_eval": ("Gumbel, add, max, mean (the smoothed max)", max_eval, max_eval_torch),
    "max_vjp": ("Gumbel, add, argmax, y_bar * bincount / M (pathwise)", max_vjp, max_vjp_torch),
    "sort_vjp": ("Gumbel, add, stable argsort twice, mean of y_bar[ranks] (pathwise)", sort_vjp,
                 sort_vjp_torch),
    "fy_loss_grad_batch": (f"Fenchel-Young loss and gradient of {BATCH} rows, {FY_CHUNK} rows of "
                           "(rows, M, d) Gumbel noise at a time: add, max and argmax, "
                           "mean - <theta, y_true>, one-hot counts / M - y_true",
                           fy_loss_grad_batch, fy_loss_grad_batch_torch),
    "argmax_pairs_eval": ("argmax_eval on Gumbel pairs from u and 1 - u",
                          argmax_pairs_eval, argmax_pairs_eval_torch),
    "argmax_pairs_vjp": ("argmax_vjp on Gumbel pairs from u and 1 - u",
                         argmax_pairs_vjp, argmax_pairs_vjp_torch),
    # a user's solver as a thread-safe callback: its peer is the same argmax in numpy/torch
    "box_argmax_vjp": ("argmax_vjp (the library runs it as a thread-safe black box)",
                       argmax_vjp, argmax_vjp_torch),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="?", help="the JSON lines of perturbed-bench --json")
    parser.add_argument("--check", action="store_true",
                        help="compare every peer with the closed forms and with each other")
    args = parser.parse_args()
    if not args.results and not args.check:
        parser.error("a RESULTS.json, or --check")
    peers = Peers()
    if args.check and not check(peers):
        sys.exit(1)
    if not args.results:
        return
    groups = load_groups(args.results, ("case", "d", "samples"))
    table = Table(peers, groups, [("case", 18), ("d", 6), ("M", 8)], "ns_per_call", "us per call",
                  scale=1e3)
    for (case, d, m), runs in groups.items():
        _, setup, torch_setup = PEERS[case]
        torch_call = torch_setup(peers.torch, d, m) if peers.torch else None
        table.row((case, d, m), peers.times(setup(d, m), torch_call), runs)
    print_legend(peers, {case: what for case, (what, _, _) in PEERS.items()})


if __name__ == "__main__":
    main()
