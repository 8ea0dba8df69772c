# SPDX-License-Identifier: MIT
"""Shared truth for the Python tests: Philox4x32-10 and libperturb's stream in pure Python
(the normative definitions of perturb.h), and statistical bounds at 5 standard errors."""

import numpy as np

M32 = 0xFFFFFFFF


def philox4x32_10(ctr, key):
    """Random123's philox4x32_10, word by word."""
    x0, x1, x2, x3 = ctr
    k0, k1 = key
    for _ in range(10):
        p0, p1 = 0xD2511F53 * x0, 0xCD9E8D57 * x2
        x0, x1, x2, x3 = ((p1 >> 32) ^ x1 ^ k0) & M32, p1 & M32, ((p0 >> 32) ^ x3 ^ k1) & M32, p0 & M32
        k0, k1 = (k0 + 0x9E3779B9) & M32, (k1 + 0xBB67AE85) & M32
    return x0, x1, x2, x3


def fold_in(seed, stream, data):
    """pt_key_fold_in's normative derivation: (seed, stream) of the child."""
    s = seed ^ 0x6A09E667F3BCC908
    out = philox4x32_10((data & M32, data >> 32, stream & M32, stream >> 32), (s & M32, s >> 32))
    return out[0] | out[1] << 32, out[2] | out[3] << 32


def word(seed, stream, k):
    """Word k of the stream of key (seed, stream), perturb.h's layout."""
    c, w = (k // 64) * 16 + k % 16, (k % 64) // 16
    return philox4x32_10((c & M32, c >> 32, stream & M32, stream >> 32),
                         (seed & M32, seed >> 32))[w]


def uniform(seed, stream, k):
    return ((word(seed, stream, k) >> 8) | 1) * 2.0 ** -24


def assert_within(estimate, exact, sd, samples, what):
    """|estimate - exact| <= 5 sd / sqrt(samples) + 1 / samples (one sample's step), entrywise."""
    estimate, exact = np.asarray(estimate, np.float64), np.asarray(exact, np.float64)
    tol = 5 * np.asarray(sd, np.float64) / np.sqrt(samples) + 1.0 / samples
    err = np.abs(estimate - exact)
    assert np.all(err <= tol), f"{what}: |error| {err.max():.3g} above {np.min(tol):.3g}"


def softmax(x, sigma):
    e = np.exp((np.asarray(x, np.float64) - np.max(x)) / sigma)
    return e / e.sum()


def softmax_vjp(x, sigma, c):
    """J^T c of softmax(x / sigma), and a bound on one sample's standard deviation of its
    score-function estimate with the baseline: |c . (Y - b)| (1 - E) / sigma, E ~ Exp(1)."""
    p = softmax(x, sigma)
    return p * (c - p @ c) / sigma, np.full(len(x), np.ptp(c) / sigma)
