# SPDX-License-Identifier: MIT
"""perturb.torch: loss.backward() through a perturbed function gives its vjp at the same key."""

import numpy as np
import pytest

import perturb

torch = pytest.importorskip("torch")
import perturb.torch  # noqa: E402  (after torch is known to import)


def test_backward_is_the_vjp_at_the_same_key():
    pert = perturb.make_perturbed_fun(perturb.argmax_one_hot, num_samples=1000, sigma=0.5)
    f = perturb.torch.wrap(pert)
    key = perturb.PRNGKey(3)
    values = np.array([-0.6, 1.9, -0.2, 1.1, -1.0], np.float32)
    target = torch.tensor([0.1, 0.15, 0.2, 0.25, 0.3])
    theta = torch.tensor(values, requires_grad=True)
    y = f(key, theta)
    loss = ((y - target) ** 2).sum()
    loss.backward()
    assert np.array_equal(y.detach().numpy(), pert(key, values))
    want = pert.vjp(key, values, 2 * (pert(key, values) - target.numpy()))
    assert np.array_equal(theta.grad.numpy(), want)


def test_batches_and_tensors_that_are_not_cpu_float32():
    pert = perturb.make_perturbed_fun(perturb.ranking, num_samples=100, sigma=0.5)
    f = perturb.torch.wrap(pert)
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0), requires_grad=True)
    f(perturb.PRNGKey(0), x).sum().backward()
    assert x.grad.shape == (3, 4)  # the ranks of each row sum to a constant: a zero gradient
    assert np.allclose(x.grad.numpy(), pert.vjp(perturb.PRNGKey(0), x.detach().numpy(),
                                                 np.ones((3, 4), np.float32)))
    with pytest.raises(TypeError, match="float32"):
        f(perturb.PRNGKey(0), torch.zeros(4, dtype=torch.float64))
    with pytest.raises(TypeError):
        f(perturb.PRNGKey(0), np.zeros(4, np.float32))
    with pytest.raises(TypeError):
        perturb.torch.wrap(lambda key, x: x)
