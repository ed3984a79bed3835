"""mvbook.nets.pairpool computes max-pool (1, 2) ∘ ReLU ∘ batch norm as the plain modules do:
values, gradients (ties and NaN included) and running statistics."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mvbook.nets import pairpool
from mvbook.nets.fastpaths import _bn_statistics


def _bn(C, dtype, negative=True):
    torch.manual_seed(2)
    bn = nn.BatchNorm2d(C).to(dtype)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
        if negative:                                   # a negative scale makes it a min-pool
            bn.weight[::3] *= -1
    return bn


def _plain(bn, y):
    return F.max_pool2d(F.relu(bn(y)), (1, 2))


def _fast(bn, y):
    w, b, mean, invstd, batch_stats = _bn_statistics(y, bn)
    return pairpool.BNReLUPairPool.apply(y, w, b, mean, invstd, batch_stats)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("shape", [(4, 5, 7, 6), (3, 16, 2, 10), (2, 3, 1, 2)])
@pytest.mark.parametrize("train", [True, False])
def test_values_gradients_and_running_statistics_equal_the_plain_modules(dtype, tol, shape, train):
    bn = _bn(shape[1], dtype)
    y0 = torch.randn(shape, dtype=dtype).contiguous(memory_format=torch.channels_last)
    g = torch.randn(shape[0], shape[1], shape[2], shape[3] // 2, dtype=dtype)
    res = []
    for f in (_plain, _fast):
        m, y = copy.deepcopy(bn).train(train), y0.clone().requires_grad_()
        out = f(m, y)
        (out * g).sum().backward()
        res.append([out, y.grad, m.weight.grad, m.bias.grad, m.running_mean, m.running_var])
    for a, b in zip(*res):
        torch.testing.assert_close(b, a, rtol=tol, atol=tol)


def test_ties_send_the_gradient_to_the_first_cell_as_max_pool_does():
    bn = _bn(4, torch.float64)
    y0 = torch.randn(2, 4, 3, 4, dtype=torch.float64)
    y0[..., 1::2] = y0[..., 0::2]                       # every pair a tie
    y0 = y0.contiguous(memory_format=torch.channels_last)
    grads = []
    for f in (_plain, _fast):
        y = y0.clone().requires_grad_()
        f(copy.deepcopy(bn).eval(), y).sum().backward()
        grads.append(y.grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=0, atol=1e-15)
    assert (grads[1][..., 1::2] == 0).all() and (grads[1][..., 0::2] != 0).any()


@pytest.mark.parametrize("cell", [0, 1])
def test_a_nan_in_either_cell_propagates_as_max_pool_does(cell):
    bn = _bn(2, torch.float32, negative=False).eval()
    y = torch.randn(1, 2, 1, 4).contiguous(memory_format=torch.channels_last)
    y[0, 0, 0, cell] = float("nan")
    alpha = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    out, _ = pairpool.pool(y, alpha.detach(), (bn.bias - bn.running_mean * alpha).detach())
    ref = _plain(bn, y).detach()
    assert torch.isnan(out[0, 0, 0, 0]) and torch.isnan(ref[0, 0, 0, 0])
    torch.testing.assert_close(out[0, 1], ref[0, 1])


def test_applies_only_to_channels_last_float_tensors_of_even_width():
    cl = torch.channels_last
    assert pairpool.applies(torch.zeros(2, 3, 4, 6).contiguous(memory_format=cl))
    assert not pairpool.applies(torch.zeros(2, 3, 4, 5).contiguous(memory_format=cl))        # odd width
    assert not pairpool.applies(torch.zeros(2, 3, 4, 6))                                      # NCHW
    assert not pairpool.applies(torch.zeros(2, 3, 4, 6, dtype=torch.bfloat16).contiguous(memory_format=cl))
