# SPDX-License-Identifier: MIT
"""Keys and noise give the C API's streams: checked against the normative definitions."""

import numpy as np
import pytest

import perturb
from conftest import fold_in, philox4x32_10, uniform


def test_reference_philox_has_random123s_known_answers():
    assert philox4x32_10((0, 0, 0, 0), (0, 0)) == (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)
    assert philox4x32_10((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2) == \
        (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)


def test_prng_key_is_seed_and_stream_zero():
    k = perturb.PRNGKey(2 ** 64 - 1)
    assert (k.seed, k.stream) == (2 ** 64 - 1, 0)
    assert perturb.PRNGKey(7) == perturb.PRNGKey(7) and perturb.PRNGKey(7) != perturb.PRNGKey(8)
    assert hash(perturb.PRNGKey(7)) == hash(perturb.PRNGKey(7))


@pytest.mark.parametrize("bad, error", [(-1, OverflowError), (2 ** 64, OverflowError),
                                        ("1", TypeError), (1.0, TypeError)])
def test_prng_key_refuses_what_is_not_a_uint64(bad, error):
    with pytest.raises(error):
        perturb.PRNGKey(bad)


def test_fold_in_and_split_follow_the_normative_derivation():
    k = perturb.fold_in(perturb.PRNGKey(42), 3)
    assert (k.seed, k.stream) == fold_in(42, 0, 3)
    child = perturb.fold_in(k, 2 ** 64 - 1)
    assert (child.seed, child.stream) == fold_in(k.seed, k.stream, 2 ** 64 - 1)
    keys = perturb.split(k, 4)
    assert keys == tuple(perturb.fold_in(k, i) for i in range(4))
    assert perturb.split(k, 0) == ()
    with pytest.raises(ValueError):
        perturb.split(k, -1)


def test_noise_is_the_stream_of_the_key():
    k = perturb.fold_in(perturb.PRNGKey(5), 1)
    offset = 2 ** 34 - 70  # across the counter's 2^32 wrap
    u = perturb.noise("uniform", k, 200, offset=offset)
    want = np.array([uniform(k.seed, k.stream, offset + i) for i in range(200)], np.float32)
    assert u.dtype == np.float32 and np.array_equal(u, want)
    g = perturb.noise("gumbel", k, 200, offset=offset).astype(np.float64)
    exact = -np.log(-np.log(want.astype(np.float64)))
    assert np.all(np.abs(g - exact) <= 1e-6 * np.maximum(1.0, np.abs(exact)))
    z = perturb.noise("normal", k, 64)
    a = np.array([uniform(k.seed, k.stream, i) for i in range(64)])
    pair = np.arange(64) ^ 16  # the even word's partner: word w ^ 1 of the same counter
    first = (np.arange(64) % 64) // 16 % 2 == 0
    r = np.sqrt(-2 * np.log(np.where(first, a, a[pair])))
    t = 2 * np.pi * np.where(first, a[pair], a)
    exact = np.where(first, r * np.cos(t), r * np.sin(t))
    assert np.all(np.abs(z - exact) <= 1e-5 * np.maximum(1.0, np.abs(exact)))


def test_noise_refuses_bad_arguments_with_the_librarys_sentence():
    with pytest.raises(OverflowError, match="noise_fill"):
        perturb.noise("uniform", perturb.PRNGKey(0), 2, offset=2 ** 64 - 1)
    with pytest.raises(ValueError):
        perturb.noise("laplace", perturb.PRNGKey(0), 2)
