"""The biGRU of both CRNNs on CPU: ``nn.GRU``'s maths with both directions
stepped together and a hand-written backward through time (a fast path of
:mod:`mvbook.nets.fastpaths`; tests/test_bigru.py checks it against ``nn.GRU``).
Chapter: *The CRNNs*.
"""
from __future__ import annotations

import torch
from torch import nn

from .fastpaths import accumulation_dtype, on_fast_path

__all__ = ["BiGRU"]


class _BiGRUFunction(torch.autograd.Function):
    r"""One bidirectional GRU layer (batch first, zero initial state), both
    directions stepped together: per time step one batched matrix product
    and five element-wise operations forward, one and seven backward, with
    PyTorch's GRU equations (gates r, z, n in that order):

    :math:`r = \sigma(W_{ir}x + b_{ir} + W_{hr}h + b_{hr})`,
    :math:`z = \sigma(W_{iz}x + b_{iz} + W_{hz}h + b_{hz})`,
    :math:`n = \tanh(W_{in}x + b_{in} + r \odot (W_{hn}h + b_{hn}))`,
    :math:`h' = (h - n) \odot z + n`.
    Inputs are projected for all steps in one product; so are the weight
    gradients. The backward direction runs on the time-reversed input.
    """

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, b_ih, b_hh, w_ih_r, w_hh_r, b_ih_r, b_hh_r):
        B, T, C_in = x.shape
        H = w_hh.shape[1]
        W_ih = torch.stack([w_ih, w_ih_r])                       # (2, 3H, C_in)
        W_hh = torch.stack([w_hh, w_hh_r])                       # (2, 3H, H)
        X = torch.stack([x.transpose(0, 1), x.flip(1).transpose(0, 1)])   # (2, T, B, C_in), time-major
        G = torch.baddbmm(torch.stack([b_ih, b_ih_r]).unsqueeze(1), X.view(2, T * B, C_in),
                          W_ih.transpose(1, 2)).view(2, T, B, 3 * H)
        b_hh2 = torch.stack([b_hh, b_hh_r]).unsqueeze(1)         # (2, 1, 3H)
        W_hh_t = W_hh.transpose(1, 2)
        hs = x.new_zeros(T + 1, 2, B, H)                         # hs[t] = state before step t
        gh = x.new_empty(T, 2, B, 3 * H)                         # W_h h + b_h
        rz = x.new_empty(T, 2, B, 2 * H)                         # gates r, z
        n = x.new_empty(T, 2, B, H)
        d = x.new_empty(T, 2, B, H)                              # h - n
        for t in range(T):
            torch.baddbmm(b_hh2, hs[t], W_hh_t, out=gh[t])
            torch.add(G[:, t, :, :2 * H], gh[t, :, :, :2 * H], out=rz[t]).sigmoid_()
            torch.addcmul(G[:, t, :, 2 * H:], rz[t, :, :, :H], gh[t, :, :, 2 * H:], out=n[t]).tanh_()
            torch.sub(hs[t], n[t], out=d[t])
            torch.addcmul(n[t], d[t], rz[t, :, :, H:], out=hs[t + 1])
        ctx.save_for_backward(X, W_ih, W_hh, hs, gh, rz, n, d)
        ctx.set_materialize_grads(False)
        out = torch.cat([hs[1:, 0], hs[1:, 1].flip(0)], dim=2)   # (T, B, 2H), time-major like nn.GRU's
        return out.transpose(0, 1), hs[T].clone()

    @staticmethod
    def backward(ctx, g_out, g_hn):
        X, W_ih, W_hh, hs, gh, rz, n, d = ctx.saved_tensors
        T, _, B, H = n.shape
        C_in = X.shape[-1]
        dH = hs.new_zeros(T, 2, B, H)                            # ∂L/∂h_t from the layer's outputs
        if g_out is not None:
            g_out = g_out.transpose(0, 1)                        # (T, B, 2H)
            dH[:, 0] = g_out[:, :, :H]
            dH[:, 1] = g_out[:, :, H:].flip(0)
        if g_hn is not None:
            dH[T - 1] += g_hn
        z = rz[:, :, :, H:]
        S = rz * (1 - rz)                                        # σ' of r and z, all steps at once
        K = (1 - z) * (1 - n * n)                                # ∂h/∂n · tanh'
        dG = hs.new_empty(2, T, B, 3 * H)                        # ∂L/∂(W_i x + b_i)
        dGh = hs.new_empty(2, T, B, 3 * H)                       # ∂L/∂(W_h h + b_h)
        tmp = hs.new_empty(2, B, 2 * H)
        dh = hs.new_zeros(2, B, H)
        for t in range(T - 1, -1, -1):
            dh = dh + dH[t]
            dn = dG[:, t, :, 2 * H:]
            torch.mul(dh, K[t], out=dn)
            torch.mul(dn, gh[t, :, :, 2 * H:], out=tmp[:, :, :H])          # ∂L/∂r
            torch.mul(dh, d[t], out=tmp[:, :, H:])                         # ∂L/∂z
            torch.mul(tmp, S[t], out=dGh[:, t, :, :2 * H])
            torch.mul(dn, rz[t, :, :, :H], out=dGh[:, t, :, 2 * H:])
            dh = torch.baddbmm(dh * z[t], dGh[:, t], W_hh)                  # ∂L/∂h_{t-1}
        dG[:, :, :, :2 * H] = dGh[:, :, :, :2 * H]
        dG2 = dG.view(2, T * B, 3 * H)
        g_W_hh = torch.bmm(dGh.view(2, T * B, 3 * H).transpose(1, 2),
                           hs[:T].transpose(0, 1).reshape(2, T * B, H))
        g_b_hh = dGh.sum((1, 2))
        g_W_ih = torch.bmm(dG2.transpose(1, 2), X.view(2, T * B, C_in))
        g_b_ih = dG.sum((1, 2))
        g_x = None
        if ctx.needs_input_grad[0]:
            dX = torch.bmm(dG2, W_ih).view(2, T, B, C_in)
            g_x = (dX[0] + dX[1].flip(0)).transpose(0, 1)
        return (g_x, g_W_ih[0], g_W_hh[0], g_b_ih[0], g_b_hh[0],
                g_W_ih[1], g_W_hh[1], g_b_ih[1], g_b_hh[1])


class BiGRU(nn.GRU):
    """``nn.GRU`` (same parameters, same maths) whose one-layer, bidirectional,
    batch-first case runs ``_BiGRUFunction`` on CPU, in float32.

    Parameters
    ----------
    *args, **kwargs
        As :class:`torch.nn.GRU` (``input_size``, ``hidden_size``, ``bidirectional``, …).

    Examples
    --------
    >>> gru = BiGRU(4, 3, batch_first=True, bidirectional=True)
    >>> out, h = gru(torch.zeros(2, 5, 4))
    >>> tuple(out.shape), tuple(h.shape)
    ((2, 5, 6), (2, 2, 3))
    """

    def forward(self, input, hx=None):
        if (hx is not None or not on_fast_path(input) or not isinstance(input, torch.Tensor)
                or self.num_layers != 1 or not self.bidirectional or not self.batch_first
                or not self.bias or self.proj_size or input.dim() != 3):
            return super().forward(input, hx)
        with torch.autocast("cpu", enabled=False):
            x = input.to(accumulation_dtype(input))
            out, h = _BiGRUFunction.apply(x, *(w.to(x.dtype) for w in self._flat_weights))
        return out, h
