# SPDX-License-Identifier: MIT
"""The module's functions: built-ins against their numpy definitions, arrays converted or
refused (never misread), errors as exceptions with the library's sentence, callbacks on the
calling thread with their own exceptions, batches equal to the single calls bit for bit."""

import threading
import traceback

import numpy as np
import pytest

import perturb

KEY = perturb.PRNGKey(11)
X = np.array([[0.3, -1.0, 0.3, 2.0, 0.0, -0.0, 5.0, 2.0],
              [1.0, 1.0, 1.0, 1.0, -3.0, 4.0, 4.0, 0.5]], np.float32)


def stable_ranks(x):
    return np.argsort(np.argsort(x, axis=-1, kind="stable"), axis=-1, kind="stable")


def test_builtins_are_their_definitions_on_rows_with_ties():
    ranks = stable_ranks(X)
    assert np.array_equal(perturb.ranking(X), ranks)
    assert np.array_equal(perturb.sort(X), np.sort(X, axis=-1))
    assert np.array_equal(perturb.max(X), X.max(axis=-1))
    one_hot = np.zeros_like(X)
    one_hot[np.arange(2), X.argmax(axis=-1)] = 1  # the first of equal maxima
    assert np.array_equal(perturb.argmax_one_hot(X), one_hot)
    # the k greatest are the last k of the stable order: of equal values the later counts
    assert np.array_equal(perturb.top_k(3)(X), (ranks >= X.shape[1] - 3).astype(np.float32))
    p = perturb.permutation_matrix(X[0])
    assert p.shape == (8, 8) and np.array_equal(p @ X[0], np.sort(X[0]))


def test_inputs_are_converted_or_refused():
    ints = np.array([3, 1, 2])
    assert np.array_equal(perturb.ranking(ints), [2, 0, 1])
    assert np.array_equal(perturb.ranking([3.0, 1.0, 2.0]), [2, 0, 1])
    strided = np.asfortranarray(X)[:, ::2]  # neither C-contiguous nor compact
    assert np.array_equal(perturb.ranking(strided), stable_ranks(X[:, ::2]))
    float64 = X.astype(np.float64)
    assert np.array_equal(perturb.sort(float64), np.sort(X, axis=-1))
    for bad in (np.array([1j, 2]), np.array(["a", "b"]), np.array([object(), 1])):
        with pytest.raises(TypeError):
            perturb.ranking(bad)
    pert = perturb.make_perturbed_fun(perturb.argmax_one_hot, num_samples=10)
    with pytest.raises(TypeError):
        pert(KEY, np.array([1j, 2.0]))
    with pytest.raises(ValueError):
        pert(KEY, np.float32(1.0))


def test_errors_carry_the_librarys_sentence():
    pert = perturb.make_perturbed_fun(perturb.argmax_one_hot, num_samples=10)
    with pytest.raises(ValueError, match=r"x\[2\] is nan"):
        pert(KEY, np.array([0.0, 1.0, np.nan]))
    with pytest.raises(ValueError):
        perturb.make_perturbed_fun(perturb.argmax_one_hot, num_samples=0)(KEY, X[0])
    with pytest.raises(ValueError, match="sigma"):
        perturb.make_perturbed_fun(perturb.argmax_one_hot, sigma=-1.0)(KEY, X[0])
    with pytest.raises(ValueError):
        perturb.make_perturbed_fun(perturb.argmax_one_hot, noise=object())
    fn = perturb.Fn  # the C layer
    f = perturb._perturb.from_callback(3, 1, lambda x: x.sum(axis=1))
    assert isinstance(f, fn)
    with pytest.raises(NotImplementedError):
        f.vjp(KEY, np.ones(3), np.ones(1))
    with pytest.raises(ValueError, match="last axis"):
        f(KEY, np.ones(4))
    with pytest.raises(ValueError, match="leading axes"):
        f.vjp(KEY, np.ones((2, 3)), np.ones((3, 1)))
    with pytest.raises(TypeError):
        f(0, np.ones(3))
    with pytest.raises(OverflowError):
        perturb._perturb.argmax_one_hot(2 ** 31)
    with pytest.raises(TypeError, match="no option"):
        perturb.make_perturbed_fun(perturb.argmax_one_hot, colour="red")(KEY, X[0])


def test_a_callbacks_exception_propagates_itself_with_its_traceback():
    class Mine(Exception):
        pass

    def solver(x):
        raise Mine("from the solver")
    pert = perturb.make_perturbed_fun(solver, num_samples=10)
    with pytest.raises(Mine) as info:
        pert(KEY, X[0])
    assert "solver" in "".join(traceback.format_tb(info.value.__traceback__))
    # a wrong shape from the callback is the callback's error, named
    pert = perturb.make_perturbed_fun(lambda x: np.ones(3), num_samples=10)
    with pytest.raises(ValueError):
        pert(KEY, X[0])
    # and a later call is clean
    good = perturb.make_perturbed_fun(lambda x: x * 2, num_samples=10)
    assert good(KEY, X[0]).shape == (8,)


def test_callbacks_run_on_the_calling_thread():
    seen = set()

    def solver(x):
        seen.add(threading.get_ident())
        return stable_ranks(x)
    pert = perturb.make_perturbed_fun(solver, num_samples=5000, sigma=0.5)
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        (threading.get_ident(), pert(KEY, X[0])))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {ident for ident, _ in results}
    assert all(np.array_equal(r, results[0][1]) for _, r in results)


def test_batches_are_the_single_calls_with_folded_keys():
    pert = perturb.make_perturbed_fun(perturb.argmax_one_hot, num_samples=300, sigma=0.5)
    cot = np.linspace(-1, 1, X.size, dtype=np.float32).reshape(X.shape)
    ys, x_bars = pert(KEY, X), pert.vjp(KEY, X, cot)
    for b in range(2):
        k = perturb.fold_in(KEY, b)
        assert np.array_equal(ys[b], pert(k, X[b]))
        assert np.array_equal(x_bars[b], pert.vjp(k, X[b], cot[b]))
    three = np.stack([X, X, X])  # two leading axes: 6 rows, row-major
    assert np.array_equal(pert(KEY, three).reshape(6, 8)[5], pert(perturb.fold_in(KEY, 5), X[1]))
    solver = perturb.make_perturbed_fun(lambda x: stable_ranks(x).astype(np.float32),
                                        num_samples=50, sigma=0.5)
    rows = solver.eval_batch(KEY, X)
    assert np.array_equal(rows[1], solver(perturb.fold_in(KEY, 1), X[1]))


def test_pytrees_are_flattened_to_segments_and_rebuilt():
    tree = (np.array([0.1, 0.4, 0.5]), {"k2": np.array([0.1, 0.1]), "k1": np.array([0.1, 0.2])},
            [np.array([[0.4, 0.3], [0.2, 0.1]])])
    leaves, treedef = perturb.tree_flatten(tree)
    assert [leaf.tolist() for leaf in leaves][1] == [0.1, 0.2]  # dicts by sorted key
    rebuilt = perturb.tree_unflatten(treedef, leaves)
    assert type(rebuilt) is tuple and set(rebuilt[1]) == {"k1", "k2"} and type(rebuilt[2]) is list

    def double(t):
        return {"twice": perturb.tree_unflatten(treedef,
                                                [2 * leaf for leaf in perturb.tree_flatten(t)[0]])}
    pert = perturb.make_perturbed_fun(double, num_samples=100, sigma=1.0, noise=perturb.Normal())
    out = pert(KEY, tree)["twice"]
    assert out[2][0].shape == (2, 2) and out[1]["k1"].shape == (2,)
    # the vjp of a linear map is exact up to the score function's noise: 2 y_bar on average
    x_bar = pert.vjp(KEY, tree, out and {"twice": perturb.tree_unflatten(
        treedef, [np.ones_like(leaf) for leaf in leaves])})
    assert perturb.tree_flatten(x_bar)[1] == treedef


def test_custom_gradient_gives_its_vjp_to_the_pathwise_gradient():
    def fx(x):
        return np.sin(x)

    def gx(x, y_bar):
        return np.cos(x) * y_bar
    fun = perturb.custom_gradient(fx, gx)
    x = np.array([0.2, -0.7, 1.1], np.float32)
    pert = perturb.make_perturbed_fun(fun, num_samples=20000, sigma=0.3, noise=perturb.Normal(),
                                      gradient="pathwise", baseline="none")
    # E[sin(x + s Z)] = sin(x) exp(-s^2/2), its gradient cos(x) exp(-s^2/2)
    damp = np.exp(-0.3 ** 2 / 2)
    assert np.allclose(pert(KEY, x), np.sin(x) * damp, atol=0.02)
    assert np.allclose(pert.vjp(KEY, x, np.ones(3)), np.cos(x) * damp, atol=0.02)
    assert np.allclose(fun(x), np.sin(x))
