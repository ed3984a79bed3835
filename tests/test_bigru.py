"""mvbook.nets.bigru computes nn.GRU's maths (float64: to ~1e-12) with nn.GRU's layout."""
import pytest
import torch
from torch import nn

from mvbook.nets.bigru import BiGRU


def _grads(module, *tensors):
    return [p.grad.clone() for p in module.parameters()] + [t.grad.clone() for t in tensors]


def _assert_close(a, b, rtol, atol):
    for u, v in zip(a, b, strict=True):
        torch.testing.assert_close(u, v, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
def test_bigru_equals_nn_gru(dtype, tol):
    torch.manual_seed(0)
    ref = nn.GRU(6, 5, batch_first=True, bidirectional=True).to(dtype)
    fast = BiGRU(6, 5, batch_first=True, bidirectional=True).to(dtype)
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(3, 9, 6, dtype=dtype)
    g_out, g_h = torch.randn(3, 9, 10, dtype=dtype), torch.randn(2, 3, 5, dtype=dtype)
    res = []
    for net in (ref, fast):
        xi = x.clone().requires_grad_()
        out, h = net(xi)
        ((out * g_out).sum() + (h * g_h).sum()).backward()
        res.append(([out, h], _grads(net, xi), out.stride()))
    _assert_close(res[0][0], res[1][0], tol, tol)
    _assert_close(res[0][1], res[1][1], tol, tol)
    assert res[0][2] == res[1][2]      # same memory layout: dropout on it draws the same mask


def test_bigru_falls_back_outside_its_case():
    torch.manual_seed(0)
    gru = BiGRU(4, 3, batch_first=True, bidirectional=True)
    x, h0 = torch.randn(2, 5, 4), torch.randn(2, 2, 3)
    out, _ = gru(x, h0)                      # an initial state: nn.GRU's own path
    ref, _ = nn.GRU.forward(gru, x, h0)
    torch.testing.assert_close(out, ref)
