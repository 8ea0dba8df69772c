# SPDX-License-Identifier: MIT
"""perturb.torch: perturbed functions in torch.autograd.

    import torch, perturb, perturb.torch
    pert = perturb.make_perturbed_fun(perturb.argmax_one_hot, num_samples=1000, sigma=0.5)
    f = perturb.torch.wrap(pert)
    theta = torch.zeros(5, requires_grad=True)
    loss = ((f(perturb.PRNGKey(0), theta) - target) ** 2).sum()
    loss.backward()        # theta.grad: pert.vjp at the same key, so the same samples

Tensors are CPU float32 (others raise TypeError); the forward pass and the backward pass use
the key of the call, as jax.grad through a perturbed function with one key does.  The
function's inputs and outputs are tensors (a built-in's leading axes are a batch).
"""

import numpy as np
import torch

from . import PerturbedFun


def _array(t, what):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{what}: a torch.Tensor is needed, not {type(t).__name__}")
    if t.dtype != torch.float32 or t.device.type != "cpu":
        raise TypeError(f"{what}: a CPU float32 tensor is needed, not {t.dtype} on {t.device}")
    return t.detach().contiguous().numpy()


class _Perturbed(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, fn, key):
        ctx.fn, ctx.key = fn, key
        ctx.save_for_backward(x)
        return torch.from_numpy(np.ascontiguousarray(fn(key, _array(x, "x"))))

    @staticmethod
    def backward(ctx, y_bar):
        (x,) = ctx.saved_tensors
        x_bar = ctx.fn.vjp(ctx.key, _array(x, "x"), _array(y_bar, "the output's gradient"))
        return torch.from_numpy(np.ascontiguousarray(x_bar)), None, None


def wrap(fn):
    """fn (of make_perturbed_fun) as f(key, x) on tensors, differentiable by torch.autograd:
    its backward pass is fn.vjp at the call's key."""
    if not isinstance(fn, PerturbedFun):
        raise TypeError("wrap: a function of perturb.make_perturbed_fun is needed")

    def apply(key, x):
        _array(x, "x")
        return _Perturbed.apply(x, fn, key)
    return apply
