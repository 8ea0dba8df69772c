# SPDX-License-Identifier: MIT
"""Built-ins on trees: argmax_one_hot, max, top_k(k), ranking, sort and permutation_matrix
on a tree of 1-D leaves
are libperturb's segment built-ins (one segment a leaf, fused), rebuilt as the same tree.  Checked against the
per-leaf numpy definitions, against the same function written per leaf as a Python callback
(the generic path, on the same samples), against closed forms at 5 standard errors, and by the
exact invariants the man pages promise (pt_fn_top_k(3), pt_make_perturbed_fun_ex(3))."""

import numpy as np
import pytest

import perturb
from conftest import assert_within, softmax, softmax_vjp

KEY = perturb.PRNGKey(3)
TREE = (np.array([0.1, 0.4, 0.5]), {"k2": np.array([0.1, 0.1]), "k1": np.array([0.1, 0.2])},
        [np.array([0.4, 0.3, 0.2, 0.1, -0.3])])
LEAVES, TREEDEF = perturb.tree_flatten(TREE)
SCALE = 0.5


def leaves(tree):
    return perturb.tree_flatten(tree)[0]


def like_tree(arrays):
    return perturb.tree_unflatten(TREEDEF, arrays)


def per_leaf(builtin):
    """builtin mapped over the leaves by a Python function: the generic path's callback."""
    def fun(tree):
        flat, treedef = perturb.tree_flatten(tree)
        return perturb.tree_unflatten(treedef, [builtin(leaf) for leaf in flat])
    return fun


def one_hot(x):
    y = np.zeros_like(x, dtype=np.float32)
    y[np.argmax(x)] = 1  # the first of equal maxima, as pt_argmax_rows
    return y


def test_a_tree_gives_the_same_tree_each_leaf_its_own_choice():
    """With a noise far below the gaps between entries every sample makes the unperturbed
    choice: the perturbed result is the definition, leaf by leaf, in the input's tree."""
    tree = (np.array([0.1, 0.4, 0.7]), {"k2": np.array([0.9, 0.1]), "k1": np.array([0.1, 0.2])},
            [np.array([0.4, 0.3, -0.2, 0.1, -0.3])])
    xs = leaves(tree)
    ranks = [np.argsort(np.argsort(x)) for x in xs]
    for builtin, truth in ((perturb.argmax_one_hot, [one_hot(x) for x in xs]),
                           (perturb.max, [np.float32(x.max()) for x in xs]),
                           (perturb.top_k(2), [(r >= len(r) - 2).astype(np.float32)
                                               for r in ranks])):
        pert = perturb.make_perturbed_fun(builtin, num_samples=4, sigma=1e-4,
                                          noise=perturb.Normal())
        out = pert(KEY, tree)
        assert type(out) is tuple and type(out[2]) is list and set(out[1]) == {"k1", "k2"}
        assert perturb.tree_flatten(out)[1] == TREEDEF, builtin
        for got, want in zip(leaves(out), truth):
            assert got.shape == np.shape(want), builtin
            np.testing.assert_allclose(got, want, atol=1e-3)  # exact but for max's noise


def permutation(x):
    """P[p, i] = 1 when x[i] has position p (a stable ascending order)."""
    rank = np.argsort(np.argsort(x, kind="stable"), kind="stable")
    return (np.arange(x.size)[:, None] == rank[None, :]).astype(np.float32)


def test_ranks_sorts_and_permutations_of_a_tree_are_each_leaf_s():
    """ranking, sort and permutation_matrix on a tree rank, sort and permute each leaf on its
    own (a noise far below the
    gaps: the unperturbed answer), and perturbed on the same samples as the per-leaf callback
    with normal noise, the same bits (the keys are literal: pt_fn_top_k(3))."""
    small = (np.array([0.1, 0.4, 0.7]), {"k2": np.array([0.9, 0.1]), "k1": np.array([0.1, 0.2])},
             [np.array([0.4, 0.3, -0.2, 0.1, -0.3])])
    for builtin, truth in ((perturb.ranking, lambda x: np.argsort(np.argsort(x))),
                           (perturb.sort, np.sort),
                           (perturb.permutation_matrix, permutation)):
        pert = perturb.make_perturbed_fun(builtin, num_samples=4, sigma=1e-4,
                                          noise=perturb.Normal())
        out = pert(KEY, small)
        assert perturb.tree_flatten(out)[1] == TREEDEF
        for got, x in zip(leaves(out), leaves(small)):
            np.testing.assert_allclose(got, truth(x), atol=1e-3)
        fused = perturb.make_perturbed_fun(builtin, 1000, SCALE, noise=perturb.Normal())
        generic = perturb.make_perturbed_fun(per_leaf(builtin), 1000, SCALE,
                                             noise=perturb.Normal())
        for a, b in zip(leaves(fused(KEY, TREE)), leaves(generic(KEY, TREE))):
            assert np.array_equal(a, b), builtin


@pytest.mark.parametrize("noise", [perturb.Normal(), perturb.Gumbel()])
def test_a_perturbed_tree_is_the_per_leaf_callback_on_the_same_samples(noise):
    """The fused segments see the callback's samples: with normal noise both take the literal
    argmax, so every value is the same bits; the fused Gumbel argmax may settle a float near-tie
    of one sample otherwise (pt_make_perturbed_fun(3), "Paths").  The derivatives are the same
    sums, in another order."""
    m = 2000
    fused = perturb.make_perturbed_fun(perturb.argmax_one_hot, m, SCALE, noise=noise)
    generic = perturb.make_perturbed_fun(per_leaf(perturb.argmax_one_hot), m, SCALE, noise=noise)
    cot = like_tree([np.linspace(-1, 1, x.size) for x in LEAVES])
    for a, b in zip(leaves(fused(KEY, TREE)), leaves(generic(KEY, TREE))):
        if noise.name == "normal":
            assert np.array_equal(a, b)
        else:
            assert np.abs(a - b).max() <= 1 / m
    for a, b in zip(leaves(fused.vjp(KEY, TREE, cot)), leaves(generic.vjp(KEY, TREE, cot))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(leaves(fused.jvp(KEY, TREE, cot)), leaves(generic.jvp(KEY, TREE, cot))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # batches of trees: the leading axis of every leaf, row b with fold_in(key, b)
    rows = like_tree([np.stack([x, x[::-1], -x]) for x in LEAVES])
    ys = fused.eval_batch(KEY, rows)
    x_bars = fused.vjp_batch(KEY, rows, like_tree([np.ones((3, x.size)) for x in LEAVES]))
    for b in range(3):
        row = like_tree([x[b] for x in leaves(rows)])
        k = perturb.fold_in(KEY, b)
        assert all(np.array_equal(u[b], v) for u, v in zip(leaves(ys), leaves(fused(k, row))))
        one = fused.vjp(k, row, like_tree([np.ones(x.size) for x in LEAVES]))
        assert all(np.array_equal(u[b], v) for u, v in zip(leaves(x_bars), leaves(one)))


def test_perturbed_argmax_leaves_against_softmax_and_the_block_diagonal_vjp():
    m = 20000
    pert = perturb.make_perturbed_fun(perturb.argmax_one_hot, m, SCALE)
    for x, y in zip(LEAVES, leaves(pert(KEY, TREE))):
        p = softmax(x, SCALE)
        assert_within(y, p, np.sqrt(p * (1 - p)), m, "a leaf")
    # without the cross-leaf terms each leaf's vjp has its own leaf's spread only
    block = perturb.make_perturbed_fun(perturb.argmax_one_hot, num_samples=m, sigma=SCALE,
                                       block_diagonal=True)
    cots = [np.cos(3 * np.arange(x.size)) for x in LEAVES]
    for x, c, g in zip(LEAVES, cots, leaves(block.vjp(KEY, TREE, like_tree(cots)))):
        exact, sd = softmax_vjp(x, SCALE, c)
        assert_within(g, exact, sd, m, "a leaf's block-diagonal gradient")
    # exactly: a cotangent on one leaf gives that leaf the full estimate and the others 0
    full = perturb.make_perturbed_fun(perturb.argmax_one_hot, num_samples=m, sigma=SCALE,
                                      baseline="f_x")
    only = like_tree([c if i == 1 else np.zeros_like(c) for i, c in enumerate(cots)])
    for i, (g, f) in enumerate(zip(leaves(block.vjp(KEY, TREE, only)),
                                   leaves(full.vjp(KEY, TREE, only)))):
        if i == 1:
            np.testing.assert_allclose(g, f, rtol=1e-5, atol=1e-7)
        else:
            assert not g.any() and f.any()


def test_perturbed_max_of_leaves_is_the_smoothed_max():
    """With Gumbel noise the perturbed max of a leaf is sigma LSE(x / sigma) + sigma gamma, its
    gradient softmax(x / sigma) (pt_fn_top_k(3)); the pathwise gradient is the fused one."""
    m = 20000
    pert = perturb.make_perturbed_fun(perturb.max, num_samples=m, sigma=SCALE,
                                      gradient="pathwise")
    values = pert(KEY, TREE)
    assert perturb.tree_flatten(values)[1] == TREEDEF
    gamma = 0.5772156649015329
    for x, v in zip(LEAVES, leaves(values)):
        lse = SCALE * np.log(np.sum(np.exp(np.asarray(x, np.float64) / SCALE)))
        # one sample's max is x_w + sigma Gumbel: a Gumbel of scale sigma, sd sigma pi / sqrt 6
        assert v.shape == ()
        assert_within(v, lse + SCALE * gamma, SCALE * np.pi / np.sqrt(6), m, "a leaf's max")
    ones = like_tree([np.float32(1)] * len(LEAVES))
    for x, g in zip(LEAVES, leaves(pert.vjp(KEY, TREE, ones))):
        p = softmax(x, SCALE)
        assert_within(g, p, np.sqrt(p * (1 - p)), m, "the gradient of a leaf's max")
    # jvp and vjp are one Jacobian estimate: <y_bar, J x_dot> = <J^T y_bar, x_dot>
    x_dot = like_tree([np.sin(np.arange(x.size)) for x in LEAVES])
    y_bar = like_tree([np.float32(i - 1.5) for i in range(len(LEAVES))])
    lhs = sum(a * b for a, b in zip(leaves(y_bar), leaves(pert.jvp(KEY, TREE, x_dot))))
    rhs = sum(a @ b for a, b in zip(leaves(pert.vjp(KEY, TREE, y_bar)), leaves(x_dot)))
    assert abs(lhs - rhs) <= 1e-5
    # a tree of one leaf has one output: value_and_grad, the gradient as the tree
    value, grad = pert.value_and_grad(KEY, {"a": LEAVES[0]})
    assert np.array_equal(value, pert(KEY, {"a": LEAVES[0]})["a"])
    assert set(grad) == {"a"} and np.array_equal(grad["a"],
                                                 pert.vjp(KEY, {"a": LEAVES[0]}, {"a": 1.0})["a"])
    with pytest.raises(ValueError, match="outputs"):
        pert.value_and_grad(KEY, TREE)


def test_perturbed_top_k_leaves_sum_to_k_exactly():
    """Each sample takes 2 of each leaf: M y is a count, and a leaf's counts sum to 2 M."""
    m = 1000
    pert = perturb.make_perturbed_fun(perturb.top_k(2), num_samples=m, sigma=SCALE)
    for y in leaves(pert(KEY, TREE)):
        counts = np.float64(m) * y
        assert np.all(np.abs(counts - np.rint(counts)) < 1e-3) and np.rint(counts).sum() == 2 * m
    small = (np.ones(3), np.ones(1))  # k = 2 above a leaf's size: the library's refusal
    with pytest.raises(ValueError):
        pert(KEY, small)


def test_trees_that_are_not_segments_are_refused():
    pert = perturb.make_perturbed_fun(perturb.argmax_one_hot, num_samples=10)
    for bad, kind in (((np.ones(3), np.ones((2, 2))), "one axis"),
                      ((np.ones(3), np.float32(1)), "one axis"), ((), "no inputs"),
                      ({}, "no inputs")):
        with pytest.raises(ValueError, match=kind):
            pert(KEY, bad)
    with pytest.raises(ValueError, match="batch axes"):
        pert.eval_batch(KEY, (np.ones((2, 3)), np.ones((3, 3))))


def test_a_cotangent_or_tangent_tree_must_be_shaped_like_its_side():
    """The same numbers in another structure, or in leaves of other shapes, are refused; a
    flat array of them is taken as it is."""
    pert = perturb.make_perturbed_fun(perturb.argmax_one_hot, num_samples=10)
    flat = np.arange(sum(a.size for a in LEAVES), dtype=np.float32)
    right = like_tree([flat[sum(a.size for a in LEAVES[:i]):][:b.size]
                       for i, b in enumerate(LEAVES)])
    swapped = (right[2], right[1], right[0])  # the same sizes' numbers, leaves in other places
    regrouped = [np.asarray(leaves(right)[0]), np.concatenate(leaves(right)[1:])]
    for call in (pert.vjp, pert.jvp):
        want = leaves(call(KEY, TREE, right))
        for got, w in zip(leaves(call(KEY, TREE, flat)), want):
            np.testing.assert_array_equal(got, w)
        for bad in (swapped, regrouped):
            with pytest.raises(ValueError, match="structure and leaf shapes"):
                call(KEY, TREE, bad)
    batch = perturb.tree_unflatten(TREEDEF, [np.stack([a, a]) for a in LEAVES])
    with pytest.raises(ValueError, match="structure and leaf shapes"):
        pert.vjp_batch(KEY, batch, (swapped, swapped))


def output_leaves(jac):
    """The Jacobian's rows by output leaf, in tree_flatten's order (dict keys sorted)."""
    return [jac[0], jac[1]["k1"], jac[1]["k2"], jac[2][0]]


def test_the_block_diagonal_permutation_matrix_of_a_tree_keeps_each_leaf_s_block():
    """permutation_matrix on a tree: output leaf a is a d_a x d_a matrix; with block_diagonal
    its Jacobian's blocks against another leaf's inputs are exactly zero and those against its
    own leaf the full estimate's, bit for bit, and the vjp is that Jacobian's product."""
    full, bd = (perturb.make_perturbed_fun(perturb.permutation_matrix, num_samples=300,
                                           sigma=SCALE, block_diagonal=block)
                for block in (False, True))
    y_bar = [np.linspace(-1, 1, a.size ** 2, dtype=np.float32).reshape(a.size, a.size)
             for a in LEAVES]
    total = [np.zeros(b.size) for b in LEAVES]
    rows = zip(output_leaves(full.jacobian(KEY, TREE)), output_leaves(bd.jacobian(KEY, TREE)))
    for a, (row_full, row_bd) in enumerate(rows):
        for b, (block_full, block_bd) in enumerate(zip(leaves(row_full), leaves(row_bd))):
            assert block_bd.shape == (LEAVES[a].size, LEAVES[a].size, LEAVES[b].size)
            if a != b:
                assert not np.any(block_bd), "a block between two leaves is not zero"
            else:
                assert np.array_equal(block_bd, block_full), "a leaf's own block changed"
            total[b] += np.tensordot(y_bar[a], block_bd, axes=2)
    vjp = leaves(bd.vjp(KEY, TREE, like_tree(y_bar)))
    for got, want in zip(total, vjp):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_the_jacobian_of_a_tree_is_a_tree_of_trees():
    """jax.jacobian's layout: out_tree[leaf a] is a tree like x whose leaf b has the shape
    a's + b's; contracted with a cotangent tree it is the vjp of the same samples, and with
    block_diagonal the blocks between two leaves are exactly zero."""
    for block in (False, True):
        pert = perturb.make_perturbed_fun(perturb.argmax_one_hot, num_samples=400, sigma=SCALE,
                                          block_diagonal=block)
        jac = pert.jacobian(KEY, TREE)
        rows = output_leaves(jac)  # each a tree like x
        assert len(leaves(jac)) == len(LEAVES) ** 2
        y_bar = [np.arange(1, a.size + 1, dtype=np.float32) / 7 for a in LEAVES]
        total = [np.zeros(b.size) for b in LEAVES]
        for a, (row, ya) in enumerate(zip(rows, y_bar)):
            assert perturb.tree_flatten(row)[1] == TREEDEF
            for b, block_ab in enumerate(leaves(row)):
                assert block_ab.shape == (LEAVES[a].size, LEAVES[b].size)
                if block and a != b:
                    assert not np.any(block_ab), "a block between two leaves is not zero"
                total[b] += ya @ block_ab
        vjp = leaves(pert.vjp(KEY, TREE, like_tree(y_bar)))
        for got, want in zip(total, vjp):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # a callable from an array to a tree of a scalar and a vector
    relu_parts = perturb.make_perturbed_fun(
        lambda x: (np.maximum(x, 0).sum(axis=1), np.maximum(x, 0)), num_samples=200)
    part_sum, part_vec = relu_parts.jacobian(KEY, np.zeros(3, np.float32))
    assert part_sum.shape == (3,) and part_vec.shape == (3, 3)
