# SPDX-License-Identifier: MIT
"""The perturbed-optimizers walkthrough (the perturbations notebook of optax's examples) on perturb, as
written there but for jax.grad, which is the vjp of the perturbed function with the loss's
cotangent: the argmax one-hot and 200 gradient steps, the ranking and 20 steps, the tree of
leaves and its gradient step; and make_perturbed_fun's docstring example.  Every estimate is
checked against its closed form at 5 standard errors, with fixed keys."""

import numpy as np

import perturb
from conftest import assert_within, softmax, softmax_vjp

GUMBEL = perturb.Gumbel()


def test_argmax_one_hot_and_gradient_descent():
    n_samples, scale = 100, 0.5
    values = np.array([-0.6, 1.9, -0.2, 1.1, -1.0], np.float32)
    pert_one_hot = perturb.make_perturbed_fun(perturb.argmax_one_hot, num_samples=n_samples,
                                              sigma=scale, noise=GUMBEL)
    rngs = perturb.split(perturb.PRNGKey(1), 2)
    p = softmax(values, scale)
    assert_within(pert_one_hot(rngs[0], values), p, np.sqrt(p * (1 - p)), n_samples, "one-hot")

    y_true = (np.arange(5) + 2) / np.sum(np.arange(5) + 2)

    def grad(values, rng):  # jax.grad(loss_simplex): 2 (y_pred - y_true) through the vjp
        y_pred = pert_one_hot(rng, values)
        return pert_one_hot.vjp(rng, values, 2 * (y_pred - y_true))

    # the gradient's estimate against its closed form, with enough samples to be sharp
    c = 2 * (p - y_true)
    exact, sd = softmax_vjp(values, scale, c)
    sharp = perturb.make_perturbed_fun(perturb.argmax_one_hot, num_samples=200_000, sigma=scale)
    assert_within(sharp.vjp(rngs[1], values, c), exact, sd, 200_000, "gradient")

    values_t = values
    for _ in range(200):
        rngs = perturb.split(rngs[1], 2)
        values_t = values_t - 0.5 * grad(values_t, rngs[1])
    start = np.sum((y_true - p) ** 2)
    end = np.sum((y_true - softmax(values_t, scale)) ** 2)
    assert end < 0.02 * start, f"loss {start:.4f} -> {end:.4f}"


def pairwise_ranks(x, sigma):
    """E[rank_i] under Gumbel noise: the difference of two Gumbels is logistic."""
    x = np.asarray(x, np.float64)
    s = 1.0 / (1.0 + np.exp(-(x[:, None] - x[None, :]) / sigma))
    np.fill_diagonal(s, 0.0)
    return s.sum(axis=1)


def test_ranking_and_gradient_descent():
    n, n_samples, scale = 6, 100, 0.2
    values = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    pert_ranking = perturb.make_perturbed_fun(perturb.ranking, num_samples=n_samples,
                                              sigma=scale, noise=GUMBEL)
    rngs = perturb.split(perturb.PRNGKey(0), 2)
    assert_within(pert_ranking(rngs[0], values), pairwise_ranks(values, scale),
                  np.full(n, (n - 1) / 2), n_samples, "ranks")

    # the gradient against its closed form (sharp): d E[rank_i] / d x, with the cotangent c
    c = 2 * (pairwise_ranks(values, scale) - np.arange(n))
    s = 1.0 / (1.0 + np.exp(-(values[:, None] - values[None, :]).astype(np.float64) / scale))
    ds = s * (1 - s) / scale
    np.fill_diagonal(ds, 0.0)
    exact = c * ds.sum(axis=1) - ds.T @ c
    sharp = perturb.make_perturbed_fun(perturb.ranking, num_samples=200_000, sigma=scale)
    # one sample: |c . (ranks - base)| (1 - E) / sigma with |ranks - base| <= n - 1 each
    assert_within(sharp.vjp(rngs[1], values, c), exact,
                  np.full(n, (n - 1) * np.abs(c).sum() / scale), 200_000, "gradient")

    y_true = np.arange(n)

    def grad(values, rng):
        return pert_ranking.vjp(rng, values, 2 * (pert_ranking(rng, values) - y_true))

    values_t = values
    for _ in range(20):
        rngs = perturb.split(rngs[1], 2)
        values_t = values_t - 0.1 * grad(values_t, rngs[1])
    start = np.sum((y_true - pairwise_ranks(values, scale)) ** 2)
    end = np.sum((y_true - pairwise_ranks(values_t, scale)) ** 2)
    assert end < 0.25 * start, f"loss {start:.2f} -> {end:.2f}"


def argmax_tree(tree):
    leaves, treedef = perturb.tree_flatten(tree)
    return perturb.tree_unflatten(treedef, [perturb.argmax_one_hot(leaf) for leaf in leaves])


def test_tree_argmax_and_a_gradient_step():
    n_samples, scale = 100, 0.5
    tree_a = (np.array((0.1, 0.4, 0.5)), {"k1": np.array((0.1, 0.2)), "k2": np.array((0.1, 0.1))},
              np.array((0.4, 0.3, 0.2, 0.1)))
    leaves, treedef = perturb.tree_flatten(tree_a)
    pert_argmax_fun = perturb.make_perturbed_fun(argmax_tree, num_samples=n_samples, sigma=scale)
    rng = perturb.PRNGKey(1)
    got = perturb.tree_flatten(pert_argmax_fun(rng, tree_a))[0]
    for leaf, est in zip(leaves, got):
        p = softmax(leaf, scale)
        assert_within(est, p, np.sqrt(p * (1 - p)), n_samples, "a leaf")

    def loss(tree):  # pert_loss with the smoothed argmax in closed form
        return sum(np.sum((a - softmax(x, scale)) ** 2 / 4)
                   for a, x in zip(perturb.tree_flatten(argmax_tree(tree))[0],
                                   perturb.tree_flatten(tree)[0]))

    argmax = perturb.tree_flatten(argmax_tree(tree_a))[0]
    # jax.grad(pert_loss): the cotangent of the perturbed leaves is (y - argmax) / 2; the whole
    # tree is one perturbed function, so its score-function estimate mixes the leaves: check
    # each leaf's gradient against the closed form with the whole cotangent's spread
    cot_leaves = [(softmax(x, scale) - a) / 2 for x, a in zip(leaves, argmax)]
    cotangent = perturb.tree_unflatten(treedef, cot_leaves)
    grad = perturb.tree_flatten(pert_argmax_fun.vjp(rng, tree_a, cotangent))[0]
    sharp = perturb.make_perturbed_fun(argmax_tree, num_samples=100_000, sigma=scale)
    spread = sum(np.ptp(c) for c in cot_leaves)
    for x, c, g in zip(leaves, cot_leaves,
                       perturb.tree_flatten(sharp.vjp(rng, tree_a, cotangent))[0]):
        exact, _ = softmax_vjp(x, scale, c)
        assert_within(g, exact, np.full(len(x), spread / scale), 100_000, "a leaf's gradient")
    step = perturb.tree_unflatten(treedef, [x - 0.1 * g for x, g in zip(leaves, grad)])
    assert loss(step) < loss(tree_a)


def test_docstring_example_relu_sum():
    """The gradient of E[sum relu(x + Z)] at 0 is P(Z > 0) = 1 - 1/e per entry for Gumbel Z."""
    n_samples = 20000

    def relu_sum(x):
        return np.maximum(x, 0.0).sum(axis=-1, keepdims=True)
    pert = perturb.make_perturbed_fun(relu_sum, num_samples=n_samples, sigma=1.0)
    value, grad = pert.value_and_grad(perturb.PRNGKey(0), np.zeros(3, np.float32))
    # one sample: (sum relu(Z) - 0) (1 - exp(-Z_i)); its spread by float64 simulation
    z = -np.log(-np.log(np.random.default_rng(3).random((400000, 3))))
    term = np.maximum(z, 0).sum(axis=1, keepdims=True) * (1 - np.exp(-z))
    assert_within(grad, np.full(3, 1 - np.exp(-1)), term.std(axis=0), n_samples, "gradient")
    # E[max(G, 0)] = integral over t > 0 of 1 - exp(-exp(-t))
    t = np.linspace(0.0, 40.0, 400001)
    mean = 3 * np.trapz(-np.expm1(-np.exp(-t)), t)
    assert_within(value, mean, np.sqrt(3) * np.maximum(z, 0).std(), n_samples, "value")
