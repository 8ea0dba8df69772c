# SPDX-License-Identifier: MIT
"""perturb: differentiable perturbed optimizers on libperturb (Berthet et al., 2020).

The interface reads like optax.perturbations:

    import numpy as np, perturb
    pert_one_hot = perturb.make_perturbed_fun(perturb.argmax_one_hot, num_samples=100,
                                              sigma=0.5, noise=perturb.Gumbel())
    key = perturb.PRNGKey(1)
    values = np.array([-0.6, 1.9, -0.2, 1.1, -1.0], np.float32)
    y = pert_one_hot(key, values)                    # close to softmax(values / 0.5)
    x_bar = pert_one_hot.vjp(key, values, y - 0.2)   # J^T y_bar, from the same samples

`fun` is a built-in (argmax_one_hot, ranking, sort, max, top_k(k), permutation_matrix), which
runs in libperturb's fused kernels, or any Python callable on a batch of inputs: it receives
the samples stacked on a new leading axis of every leaf (nested tuples, lists and dicts of
arrays) and returns outputs stacked the same way.  Perturbed, argmax_one_hot, max and
top_k(k), ranking, sort and permutation_matrix also take a tree of 1-D leaves: each leaf is a
segment of libperturb's segment built-ins (its own one-hot, max, k greatest, ranks, sorted
entries or d x d permutation matrix, all leaves in one fused call), and the result is the same
tree (for max, a scalar a leaf).  Keys are libperturb's (PRNGKey, split,
fold_in), so the samples are those of the C API.  Arrays are float32 (others are converted);
built-ins treat the leading axes of an array as a batch of independent calls, row b with
fold_in(key, b).  The GIL is released while libperturb computes; Python callbacks run on the
calling thread with it held, and an exception they raise propagates unchanged.
perturb.torch wraps a perturbed function for torch.autograd.
"""

import numpy as np

from . import _perturb
from ._perturb import (CallbackError, CancelledError, Fn, Key, PRNGKey, fold_in,  # noqa: F401
                       get_num_threads, isa_active, noise, set_num_threads, split)

__version__ = _perturb.__version__
__all__ = ["Gumbel", "Normal", "make_perturbed_fun", "custom_gradient", "argmax_one_hot",
           "ranking", "sort", "max", "top_k", "permutation_matrix", "PRNGKey", "split",
           "fold_in", "Key", "Fn", "CancelledError", "CallbackError", "set_num_threads",
           "get_num_threads", "isa_active", "noise", "tree_flatten", "tree_unflatten"]


class Gumbel:
    """Gumbel noise: -log(-log(U)) (the default, as optax's)."""
    name = "gumbel"


class Normal:
    """Standard normal noise (Box-Muller)."""
    name = "normal"


def _noise_name(noise):
    name = getattr(noise, "name", None)
    if name not in ("gumbel", "normal"):
        raise ValueError(f"noise: perturb.Gumbel() or perturb.Normal(), not {noise!r}")
    return name


# ---- pytrees: nested tuples, lists and dicts (by sorted key) of arrays ----------------------

def tree_flatten(tree):
    """(leaves, treedef): the arrays of the tree in order, and its structure."""
    if isinstance(tree, (tuple, list)):
        parts = [tree_flatten(t) for t in tree]
        return ([leaf for p in parts for leaf in p[0]],
                (type(tree), None, tuple(p[1] for p in parts)))
    if isinstance(tree, dict):
        keys = sorted(tree)
        parts = [tree_flatten(tree[k]) for k in keys]
        return [leaf for p in parts for leaf in p[0]], (dict, tuple(keys), tuple(p[1] for p in parts))
    return [tree], None


def tree_unflatten(treedef, leaves):
    """The tree of structure treedef (tree_flatten's) holding leaves in order."""
    leaves = iter(leaves)

    def build(d):
        if d is None:
            return next(leaves)
        kind, keys, children = d
        parts = [build(c) for c in children]
        return dict(zip(keys, parts)) if kind is dict else kind(parts)
    return build(treedef)


def _floats(x, what="x"):
    """x as a C-contiguous float32 array (itself when it is one); real kinds only."""
    a = np.asarray(x)
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{what}: an array of real numbers is needed, not dtype {a.dtype}")
    return np.asarray(a, dtype=np.float32, order="C")


def _float_leaves(tree):
    leaves, treedef = tree_flatten(tree)
    return [_floats(leaf, "a leaf") for leaf in leaves], treedef


def _concat(arrays, lead=0):
    """The leaves' floats in one row per leading index (lead axes kept in front)."""
    if not arrays:
        raise ValueError("a tree without leaves has no inputs")
    shape = arrays[0].shape[:lead]
    return np.concatenate([a.reshape(shape + (-1,)) for a in arrays], axis=-1)


def _split(flat, shapes, lead_shape=()):
    """flat's last axis cut into arrays of the given shapes, after lead_shape axes."""
    out, at = [], 0
    for shape in shapes:
        size = int(np.prod(shape, dtype=np.int64))
        out.append(flat[..., at:at + size].reshape(lead_shape + tuple(shape)))
        at += size
    return out


# ---- built-ins ---------------------------------------------------------------------------------

class _Builtin:
    """A libperturb built-in on the last axis of an array: `make(d)` makes its Fn, `shape(d)` its
    output's trailing shape; `make(sizes)` makes its segment built-in, one segment a leaf of a
    tree.  Called on an array it evaluates the function itself."""

    def __init__(self, name, make, shape):
        self.name, self.make, self.shape = name, make, shape
        self._fns = {}

    def fn(self, d):
        """Its Fn of size d, or of segments of the sizes in a tuple d."""
        if d not in self._fns:
            self._fns[d] = self.make(d)
        return self._fns[d]

    def tree(self, x, lead):
        """x, a tree whose leaves have `lead` batch axes then one axis, as (the Fn of its
        segments, the leaves' floats concatenated, a function rebuilding an output tree from
        floats, one rebuilding an input tree, and the two trees' structures)."""
        leaves, treedef = _float_leaves(x)
        if not leaves:
            raise ValueError("a tree without leaves has no inputs")
        rows = leaves[0].shape[:lead]
        if any(a.ndim != lead + 1 or a.shape[:lead] != rows for a in leaves):
            raise ValueError(f"{self.name} on a tree: every leaf must have one axis"
                             + (f" after the batch axes {rows}" if lead else ""))
        sizes = tuple(a.shape[-1] for a in leaves)
        out_shapes, in_shapes = [self.shape(n) for n in sizes], [(n,) for n in sizes]
        return (self.fn(sizes), _concat(leaves, lead),
                lambda y: tree_unflatten(treedef, _split(y, out_shapes, rows)),
                lambda v: tree_unflatten(treedef, _split(v, in_shapes, rows)),
                ((treedef, out_shapes), (treedef, in_shapes)))

    def __call__(self, x):
        x = _floats(x)
        if x.ndim == 0:
            raise ValueError(f"{self.name}: an array of at least one axis is needed")
        d = x.shape[-1]
        return self.fn(d).eval(PRNGKey(0), x).reshape(x.shape[:-1] + self.shape(d))

    def __repr__(self):
        return f"perturb.{self.name}"


argmax_one_hot = _Builtin("argmax_one_hot", _perturb.argmax_one_hot, lambda d: (d,))
argmax_one_hot.__doc__ = "The one-hot of the argmax of the last axis."
ranking = _Builtin("ranking", _perturb.ranking, lambda d: (d,))
ranking.__doc__ = "The ranks (0 = least) along the last axis, stable, as floats."
sort = _Builtin("sort", _perturb.sort, lambda d: (d,))
sort.__doc__ = "The last axis in ascending order."
max = _Builtin("max", _perturb.max, lambda d: ())  # noqa: A001 (optax's names)
max.__doc__ = "The greatest entry of the last axis."
permutation_matrix = _Builtin("permutation_matrix", _perturb.permutation_matrix,
                              lambda d: (d, d))
permutation_matrix.__doc__ = "P[p, i] = 1 when entry i has position p in ascending order."


def top_k(k):
    """The built-in marking the k greatest entries of the last axis with 1."""
    def make(d):
        return _perturb.top_k(d, k) if isinstance(d, int) else _perturb.top_k(d, [k] * len(d))
    return _Builtin(f"top_k({k})", make, lambda d: (d,))


# ---- Python functions ------------------------------------------------------------------------

class _Flat:
    """A Python function on trees as libperturb sees it: floats in, floats out, for one input
    structure (the leaves' shapes); its output structure is learnt from one evaluation at x."""

    def __init__(self, fun, vjp, x_leaves, x_def):
        self.in_shapes = [a.shape for a in x_leaves]
        self.in_def = x_def
        probe = fun(tree_unflatten(x_def, [a[None] for a in x_leaves]))
        out, self.out_def = _float_leaves(probe)
        self.out_shapes = [a.shape[1:] for a in out]
        n_in = sum(a.size for a in x_leaves)
        n_out = sum(int(np.prod(s, dtype=np.int64)) for s in self.out_shapes)

        def batch(x):
            rows = x.shape[0]
            y, _ = _float_leaves(fun(tree_unflatten(x_def, _split(x, self.in_shapes, (rows,)))))
            return _concat(y, lead=1)

        def point_vjp(x, y_bar):
            x_tree = tree_unflatten(x_def, _split(x, self.in_shapes))
            y_tree = tree_unflatten(self.out_def, _split(y_bar, self.out_shapes))
            leaves, _ = _float_leaves(vjp(x_tree, y_tree))
            return _concat(leaves)
        self.fn = _perturb.from_callback(n_in, n_out, batch, point_vjp if vjp else None)

    def outputs(self, flat, lead=()):
        return tree_unflatten(self.out_def, _split(flat, self.out_shapes, lead))

    def inputs(self, flat, lead=()):
        return tree_unflatten(self.in_def, _split(flat, self.in_shapes, lead))


class custom_gradient:  # noqa: N801 (tfp.math.custom_gradient's name)
    """A function with fx's value and gx's vector-Jacobian product: fx on a batch of inputs
    (a leading axis on every leaf), gx(x, y_bar) at one point returning x_bar (a tree like x).
    Usable as make_perturbed_fun's fun (its own gradient serves gradient='pathwise')."""

    def __init__(self, fx, gx):
        self.fx, self.gx = fx, gx

    def __call__(self, x):
        return self.fx(x)


# ---- perturbed functions ---------------------------------------------------------------------

class _Plan:
    """One call's view of a perturbed function: its Fn, x as floats (`lead` batch axes, then the
    function's inputs), how to rebuild outputs and inputs from floats, and for a tree the
    structures ((out_def, out_shapes), (in_def, in_shapes)) that a Jacobian is rebuilt by."""

    def __init__(self, fn, flat, out_shape, outputs, inputs, trees=None):
        self.fn, self.flat, self.out_shape = fn, flat, out_shape
        self.outputs, self.inputs, self.trees = outputs, inputs, trees


def _tree_jacobian(jac, trees):
    """The rows of jac (n_out x n_in) as jax.jacobian gives a function of trees: the output's
    tree, each leaf of it a tree like the input whose leaves have the shape out_leaf + in_leaf."""
    (out_def, out_shapes), (in_def, in_shapes) = trees
    blocks = _split(jac.T, out_shapes, (jac.shape[1],))  # each (n_in,) + out_leaf's shape
    return tree_unflatten(out_def, [
        tree_unflatten(in_def, _split(np.moveaxis(b, 0, -1), in_shapes, b.shape[1:]))
        for b in blocks])


class PerturbedFun:
    """fun perturbed: call it as fn(key, x); vjp, jvp, jacobian, value_and_grad and the _batch
    forms (the leading axis of every leaf a batch, row b with fold_in(key, b)) as methods."""

    def __init__(self, fun, options):
        self.fun, self.options = fun, options
        self._cache = {}

    def _perturb(self, fn):
        o = self.options
        if "options" in o:
            return _perturb.make_perturbed_fun_ex(fn, num_samples=o["num_samples"],
                                                  sigma=o["sigma"], noise=o["noise"],
                                                  **o["options"])
        return _perturb.make_perturbed_fun(fn, o["num_samples"], o["sigma"], o["noise"],
                                           o["use_baseline"])

    def _plan(self, x, lead):
        fun = self.fun
        if isinstance(fun, _Builtin):
            if isinstance(x, (tuple, list, dict)):
                fn, flat, outputs, inputs, trees = fun.tree(x, lead)
                if fn not in self._cache:  # the built-in keeps one Fn for each list of sizes
                    self._cache[fn] = self._perturb(fn)
                return _Plan(self._cache[fn], flat, None, outputs, inputs, trees)
            x = _floats(x)
            if x.ndim == 0:
                raise ValueError(f"{fun.name}: an array of at least one axis is needed")
            d = x.shape[-1]
            if d not in self._cache:
                self._cache[d] = self._perturb(fun.fn(d))
            rows, shape = x.shape[:-1], fun.shape(d)
            return _Plan(self._cache[d], x, shape, lambda y: y.reshape(rows + shape),
                         lambda v: v.reshape(rows + (d,)))
        custom = isinstance(fun, custom_gradient)
        leaves, treedef = _float_leaves(x)
        shapes = tuple(a.shape[lead:] for a in leaves)
        key = (repr(treedef), shapes)
        if key not in self._cache:
            one = [a[(0,) * lead] for a in leaves]
            flat = _Flat(fun.fx if custom else fun, fun.gx if custom else None, one, treedef)
            self._cache[key] = (flat, self._perturb(flat.fn))
        flat, pfn = self._cache[key]
        rows = leaves[0].shape[:lead]
        out_shape = flat.out_shapes[0] if flat.out_def is None else None
        return _Plan(pfn, _concat(leaves, lead), out_shape, lambda y: flat.outputs(y, rows),
                     lambda v: flat.inputs(v, rows),
                     ((flat.out_def, flat.out_shapes), (flat.in_def, flat.in_shapes)))

    @staticmethod
    def _floats_like(plan, v, n, side):
        """v as plan.flat's rows of n floats: an array of any shape holding the same numbers,
        or a tree, which must have the structure and leaf shapes (after the batch axes) of the
        function's outputs (side 0: a cotangent) or inputs (side 1: a tangent)."""
        lead = plan.flat.shape[:-1]
        if isinstance(v, (tuple, list, dict)):
            leaves, treedef = _float_leaves(v)
            if plan.trees is not None:
                want_def, want_shapes = plan.trees[side]
                if (treedef != want_def or
                        [a.shape for a in leaves] != [lead + tuple(s) for s in want_shapes]):
                    what = ("cotangent", "outputs") if side == 0 else ("tangent", "inputs")
                    raise ValueError(f"the {what[0]} tree does not have the structure and leaf "
                                     f"shapes of the function's {what[1]}")
            return _concat(leaves, plan.flat.ndim - 1).reshape(lead + (n,))
        return _floats(v, "a cotangent or tangent").reshape(lead + (n,))

    def _fast(self, x):
        """The built-in's perturbed Fn for a 1-D C-contiguous float32 x whose output has x's
        shape, else None: the common call, without _plan's conversions (about 2 us less)."""
        if (type(x) is np.ndarray and x.ndim == 1 and x.dtype == np.float32 and
                x.flags.c_contiguous and isinstance(self.fun, _Builtin)):
            fn = self._cache.get(x.shape[0])
            if fn is not None and fn.n_out == x.shape[0]:
                return fn
        return None

    def __call__(self, key, x):
        fn = self._fast(x)
        if fn is not None:
            return fn.eval(key, x)
        p = self._plan(x, 0)
        return p.outputs(p.fn.eval(key, p.flat))

    def eval_batch(self, key, xs):
        p = self._plan(xs, 1)
        return p.outputs(p.fn.eval(key, p.flat))

    def vjp(self, key, x, y_bar):
        """J(x)^T y_bar: y_bar shaped like the output, the result like x."""
        fn = self._fast(x)
        if fn is not None and type(y_bar) is np.ndarray and y_bar.shape == x.shape:
            return fn.vjp(key, x, y_bar)
        p = self._plan(x, 0)
        return p.inputs(p.fn.vjp(key, p.flat, self._floats_like(p, y_bar, p.fn.n_out, 0)))

    def vjp_batch(self, key, xs, y_bars):
        p = self._plan(xs, 1)
        return p.inputs(p.fn.vjp(key, p.flat, self._floats_like(p, y_bars, p.fn.n_out, 0)))

    def jvp(self, key, x, x_dot):
        """J(x) x_dot: x_dot shaped like x, the result like the output."""
        p = self._plan(x, 0)
        return p.outputs(p.fn.jvp(key, p.flat, self._floats_like(p, x_dot, p.fn.n_in, 1)))

    def jvp_batch(self, key, xs, x_dots):
        p = self._plan(xs, 1)
        return p.outputs(p.fn.jvp(key, p.flat, self._floats_like(p, x_dots, p.fn.n_in, 1)))

    def jacobian(self, key, x):
        """The Jacobian: the output's shape followed by x's last axis (a built-in: per row of
        x's leading axes) or x's shape (a function whose input and output are arrays); where
        x or the output is a tree, as jax.jacobian gives it: the output's tree whose every
        leaf is a tree like x, of leaves shaped the output leaf's shape + x's leaf's."""
        p = self._plan(x, 0)
        jac = p.fn.jacobian(key, p.flat)
        if isinstance(x, (tuple, list, dict)) or p.out_shape is None:
            return _tree_jacobian(jac, p.trees)
        if isinstance(self.fun, _Builtin):
            return jac.reshape(p.flat.shape[:-1] + p.out_shape + p.flat.shape[-1:])
        return jac.reshape(p.out_shape + np.shape(x))

    def value_and_grad(self, key, x):
        """(value, gradient like x) of a function of one output, from the same samples."""
        p = self._plan(x, 0)
        value, grad = p.fn.value_and_grad(key, p.flat)
        return value, p.inputs(grad)


def make_perturbed_fun(fun, num_samples=1000, sigma=0.1, noise=Gumbel(), use_baseline=True,
                       **options):
    """The perturbed version of fun, E[fun(x + sigma Z)], with the score-function estimator of
    its derivatives (Berthet et al., 2020), as optax.perturbations.make_perturbed_fun.  The
    keywords of pt_make_perturbed_fun_ex (baseline='none'|'f_x'|'leave_one_out',
    gradient='auto'|'score'|'pathwise', antithetic, multiplicative, block_diagonal,
    independent_jacobian) select its options instead; use_baseline then does not apply."""
    o = {"num_samples": num_samples, "sigma": float(sigma), "noise": _noise_name(noise),
         "use_baseline": bool(use_baseline)}
    if options:
        o["options"] = options
    return PerturbedFun(fun, o)
