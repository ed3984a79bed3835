"""Fast CPU paths of the networks in :mod:`mvbook.models`: the same maths as
the plain modules, fewer passes over memory; used on CPU only (CUDA keeps
cuDNN's kernels). tests/test_fastpaths.py checks fast = plain for outputs,
gradients and batch-norm running statistics. Chapter: *The CRNNs*.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from .device import full_precision

_FAST = {"enabled": True}
_EPS_EXACT = 2.0 ** -20     # a float32-exact eps: (1 − eps) + eps == 1 with no rounding


@contextmanager
def fast_paths(enabled: bool = True):
    """Within the block, use (``True``) or skip (``False``) the fast CPU paths."""
    before = _FAST["enabled"]
    _FAST["enabled"] = bool(enabled)
    try:
        yield
    finally:
        _FAST["enabled"] = before


def _fast(x: torch.Tensor) -> bool:
    return _FAST["enabled"] and x.device.type == "cpu"


def float32_on_cpu(x: torch.Tensor):
    """Context: no CPU autocast for the fully-connected parts (attention, heads).
    On CPU only the convolutions gain from bfloat16; the fc layers, at these
    batch sizes bound by reading their weights, would pay for casting the
    weights every step. (A no-op on CUDA and with the fast paths off.)"""
    return full_precision(x) if _fast(x) else nullcontext()


def _bn_factor(bn: nn.modules.batchnorm._BatchNorm) -> tuple[bool, float]:
    """(use batch statistics?, running-average factor), exactly as ``_BatchNorm.forward``
    decides them (it also counts the batch in ``num_batches_tracked``)."""
    factor = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    batch_stats = bn.training or (bn.running_mean is None and bn.running_var is None)
    return batch_stats, factor


def _acc_dtype(x: torch.Tensor) -> torch.dtype:
    """Accumulation type: float32 for bf16/fp16 activations, else their own."""
    return torch.float32 if x.dtype in (torch.bfloat16, torch.float16) else x.dtype


def _bn_relu(y: torch.Tensor, bn) -> torch.Tensor:
    """batch norm → ReLU with the native kernels, for any memory format of ``y``."""
    batch_stats, factor = _bn_factor(bn)
    rm, rv = (bn.running_mean, bn.running_var) if not bn.training or bn.track_running_stats else (None, None)
    return F.relu_(F.batch_norm(y, rm, rv, bn.weight, bn.bias, batch_stats, factor, bn.eps))


class _BNReLUMaxPool(torch.autograd.Function):
    r"""max-pool(ReLU(batch norm(y))) with the pool moved first.

    Batch norm is a per-channel map :math:`y \mapsto a_c y + b_c` (with the batch's
    statistics when training) and ReLU is non-decreasing, so for :math:`a_c \ge 0`
    :math:`\max_{w} \mathrm{ReLU}(a_c y_i + b_c) = \mathrm{ReLU}(a_c \max_w y_i + b_c)`
    (a minimum for :math:`a_c < 0`); floating-point rounding is monotone too, so
    the values are the same and the affine map and ReLU run on the pooled tensor.
    The gradient of batch norm is dense,
    :math:`\partial y_i = a_c (g_i - \bar g - \hat y_i \overline{g \hat y})` with
    :math:`g` non-zero only at the pooled arg-max positions, so
    :math:`\partial y = A_c y + B_c + a_c g`: one pass over ``y`` plus a scatter.
    """

    @staticmethod
    def forward(ctx, y, weight, bias, mean, invstd, kernel, batch_stats):
        C = y.shape[1]
        alpha = weight * invstd                                   # a_c, as the native kernel forms it
        beta = bias - mean * alpha                                # b_c
        sign = torch.where(alpha < 0, -1.0, 1.0).to(y.dtype).view(1, C, 1, 1)
        flip = bool((alpha < 0).any())
        p, idx = F.max_pool2d(y * sign if flip else y, kernel, kernel, return_indices=True)
        if flip:
            p = p * sign                                          # the y value at the arg-max / arg-min
        out = torch.addcmul(beta.view(1, C, 1, 1), p, alpha.view(1, C, 1, 1)).relu_()
        ctx.save_for_backward(y, p, idx, out, alpha, mean, invstd)
        ctx.batch_stats = batch_stats
        return out.to(y.dtype)

    @staticmethod
    def backward(ctx, g_out):
        y, p, idx, out, alpha, mean, invstd = ctx.saved_tensors
        C = y.shape[1]
        g = torch.where(out > 0, g_out, 0.0).to(out.dtype)        # through ReLU (pooled size)
        xhat = (p - mean.view(1, C, 1, 1)) * invstd.view(1, C, 1, 1)
        sum_g, sum_gx = g.sum((0, 2, 3)), (g * xhat).sum((0, 2, 3))
        g_weight, g_bias = sum_gx, sum_g
        if ctx.batch_stats:
            n = y.numel() // C
            A = -alpha * invstd * sum_gx / n
            Bc = -alpha * sum_g / n - mean * A
            if y.dtype == out.dtype:
                dy = torch.addcmul(Bc.view(1, C, 1, 1), y, A.view(1, C, 1, 1))
            else:                                                # y·A + B in float32, rounded once to y's type
                # eps must be > 0 (torch 2.11 checks); var = 1 − eps keeps 1/√(var + eps) exactly 1
                dy = F.batch_norm(y, torch.zeros_like(A), torch.full_like(A, 1 - _EPS_EXACT), A, Bc,
                                  False, 0.0, _EPS_EXACT)
        else:
            dy = torch.zeros_like(y)
        src = (g * alpha.view(1, C, 1, 1)).to(dy.dtype)
        # add src at the arg-max cells, in dy's memory order (nothing copies dy)
        B, _, H, W = dy.shape
        if dy.is_contiguous(memory_format=torch.channels_last) and not dy.is_contiguous():
            mem, dim = dy.permute(0, 2, 3, 1).view(B, H * W, C), 1
            idx, src = idx.permute(0, 2, 3, 1).reshape(B, -1, C), src.permute(0, 2, 3, 1).reshape(B, -1, C)
        else:
            dy = dy.contiguous()
            mem, dim, idx, src = dy.view(B, C, H * W), 2, idx.reshape(B, C, -1), src.reshape(B, C, -1)
        if dy.dtype in (torch.float32, torch.float64):
            mem.scatter_add_(dim, idx, src)
        else:   # scatter_add_ would copy a bfloat16 dy to float32 and back; the windows do not
            # overlap, so each cell is hit once: gather, add and put back by flat offsets
            n0, n1, n2 = mem.shape
            b = torch.arange(n0, device=dy.device).view(-1, 1, 1) * (n1 * n2)
            if dim == 1:
                flat = b + idx * n2 + torch.arange(n2, device=dy.device)
            else:
                flat = b + torch.arange(n1, device=dy.device).view(1, -1, 1) * n2 + idx
            flat, m = flat.reshape(-1), mem.view(-1)
            m.put_(flat, m.take(flat) + src.reshape(-1))
        return dy, g_weight, g_bias, None, None, None, None


def _bn_relu_maxpool(y: torch.Tensor, bn, kernel) -> torch.Tensor:
    """ReLU(batch norm(y)) max-pooled by ``kernel`` (stride = kernel), pool first."""
    kernel = tuple(kernel)
    if kernel == (1, 1):
        return _bn_relu(y, bn)
    if not (y.is_contiguous() or y.is_contiguous(memory_format=torch.channels_last)):
        y = y.contiguous(memory_format=torch.channels_last)     # the backward views (H, W) as one axis
    batch_stats, factor = _bn_factor(bn)
    if batch_stats:
        rm, rv = (bn.running_mean, bn.running_var) if bn.track_running_stats else (None, None)
        with torch.no_grad():                                    # their gradient is in the backward
            mean, var = torch.batch_norm_update_stats(y, rm, rv, factor)   # updates rm, rv like batch_norm
    else:
        mean, var = bn.running_mean, bn.running_var
    acc = _acc_dtype(y)
    invstd = 1.0 / torch.sqrt(var.to(acc) + bn.eps)
    weight = bn.weight if bn.weight is not None else torch.ones_like(invstd)
    bias = bn.bias if bn.bias is not None else torch.zeros_like(invstd)
    weight, bias, mean = weight.to(acc), bias.to(acc), mean.to(acc)
    if torch.is_grad_enabled() and (y.requires_grad or weight.requires_grad or bias.requires_grad):
        return _BNReLUMaxPool.apply(y, weight, bias, mean, invstd, kernel, batch_stats)
    # no gradient wanted (evaluation): the same values, without arg-max indices
    C = y.shape[1]
    alpha = weight * invstd
    beta = bias - mean * alpha
    if bool((alpha < 0).any()):
        sign = torch.where(alpha < 0, -1.0, 1.0).to(y.dtype).view(1, C, 1, 1)
        p = F.max_pool2d(y * sign, kernel, kernel) * sign
    else:
        p = F.max_pool2d(y, kernel, kernel)
    return torch.addcmul(beta.view(1, C, 1, 1), p, alpha.view(1, C, 1, 1)).relu_().to(y.dtype)


BANDED_MAX_FREQ = 2      # _banded_conv for inputs this narrow in frequency (wider: oneDNN's 2-D kernel wins)


def _banded_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    r"""A (time, freq) convolution (stride 1, SAME) of an input only F ≤ 2 bands wide,
    as a 1-D convolution over time with F·C_in input and F·C_out output channels:
    :math:`y_{t,f,o} = \sum_{\tau, f', c} W_{o,c,\tau,f'-f+p} \, x_{t+\tau-q, f', c}`, the weight
    a block matrix whose (f, f') block is :math:`W_{:,:,:,f'-f+p}` (zero outside the
    kernel). The same products minus those with the zero padding of the
    frequency axis, which the 2-D kernel computes and wastes at F ≤ 2.
    ``x`` (B, C, T, F) channels-last → (B, O, T, F) channels-last.
    """
    (kt, kf), (pt, pf) = conv.kernel_size, conv.padding
    if (conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1 or conv.bias is not None
            or pt != kt // 2 or pf != kf // 2):
        return conv(x)
    B, C, T, Fq = x.shape
    O, w = conv.out_channels, conv.weight
    zero = w.new_zeros(O, C, kt)
    rows = [torch.cat([w[:, :, :, fi - fo + pf] if 0 <= fi - fo + pf < kf else zero for fi in range(Fq)], 1)
            for fo in range(Fq)]
    Wb = torch.cat(rows, 0)                                      # (F·O, F·C, kt), rows (f, o), columns (f', c)
    xt = x.permute(0, 2, 3, 1).reshape(B, 1, T, Fq * C).permute(0, 3, 1, 2)   # (B, F·C, 1, T) channels-last
    y = F.conv2d(xt, Wb.unsqueeze(2), None, 1, (0, pt))         # (B, F·O, 1, T) channels-last
    y = y.permute(0, 2, 3, 1).reshape(B, T, Fq, O)              # free when y is channels-last
    return y.permute(0, 3, 1, 2)                                 # (B, O, T, F) channels-last


def conv_pool(conv: nn.Sequential, pool: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``pool(conv(x))`` for a conv → BN → ReLU block and its max-pool → dropout.

    Fast path: channels-last convolution, then :class:`_BNReLUMaxPool`.
    """
    if not _fast(x):
        return pool(conv(x))
    x = x.contiguous(memory_format=torch.channels_last)
    y = _banded_conv(x, conv[0]) if x.shape[3] <= BANDED_MAX_FREQ else conv[0](x)
    k = pool[0].kernel_size
    k = (k, k) if isinstance(k, int) else k
    s = pool[0].stride
    s = (s, s) if isinstance(s, int) else s
    assert tuple(s) == tuple(k) and pool[0].padding in (0, (0, 0)) and not pool[0].ceil_mode
    return _dropout(_bn_relu_maxpool(y, conv[1], k), pool[1])


def _dropout(x: torch.Tensor, drop: nn.Dropout) -> torch.Tensor:
    """``drop(x)`` with the mask drawn in (B, C, H, W) order whatever the memory
    format of ``x``, so that the random numbers are those of the plain path."""
    if not drop.training or drop.p == 0:
        return x
    if drop.p == 1:
        return x * 0.0
    noise = torch.empty(x.shape, dtype=x.dtype, device=x.device).bernoulli_(1 - drop.p).div_(1 - drop.p)
    return x * noise


def _polyphase_conv(x: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    r"""``conv`` (1-D, stride s, kernel k = s·m, no padding, no bias) of ``x`` given as
    (B, C, 1, L) channels-last, as a stride-1 convolution of the s phases of ``x``:
    :math:`y_t = \sum_{j<k} W_j x_{st+j} = \sum_{i<m} \sum_{q<s} W_{si+q} x_{s(t+i)+q}`,
    i.e. s·C input channels (phase q, channel c) and m taps. The same products and
    sums; returns (B, O, 1, L_out) channels-last. Falls back to a strided 2-D
    convolution when k is not a multiple of s.
    """
    (s,), (k,) = conv.stride, conv.kernel_size
    O, C = conv.weight.shape[:2]
    if k % s or conv.padding != (0,) or conv.dilation != (1,) or conv.groups != 1 or conv.bias is not None:
        return F.conv2d(x, conv.weight.unsqueeze(2), conv.bias, (1, s), (0, conv.padding[0]), (1, conv.dilation[0]),
                        conv.groups)
    B, _, _, L = x.shape
    L = L // s * s                                               # a trailing partial phase feeds no output
    xs = x[..., :L].permute(0, 2, 3, 1).reshape(B, 1, L // s, s * C).permute(0, 3, 1, 2)   # (B, s·C, 1, L/s)
    w = conv.weight.view(O, C, k // s, s).permute(0, 3, 1, 2).reshape(O, s * C, 1, k // s)
    return F.conv2d(xs, w)


def raw_front_end(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """conv01 → conv02 → pool02 of Table 2, then channels as the frequency axis:
    waveform (B, samples) → (B, 1, T, bands).

    Fast path: both 1-D convolutions as channels-last 2-D ones (rows of one
    sample), conv02's batch norm, ReLU and pool02 through :class:`_BNReLUMaxPool`;
    the result is already laid out as (B, T, bands).
    """
    if not _fast(x):
        x = net.pool02(net.conv02(net.conv01(x.unsqueeze(1))))  # (B, bands, T)
        return x.transpose(1, 2).unsqueeze(1)                    # (B, 1, T, bands)
    y = _polyphase_conv(x.reshape(x.shape[0], 1, 1, -1), net.conv01[0])          # (B, 1, 1, samples)
    y = _bn_relu(y, net.conv01[1])
    y = _polyphase_conv(y, net.conv02[0])
    k = net.pool02.kernel_size
    k = k[0] if isinstance(k, tuple) else k
    y = _bn_relu_maxpool(y, net.conv02[1], (1, k))                # (B, bands, 1, T), channels-last
    return y.squeeze(2).transpose(1, 2).unsqueeze(1)


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
        B, T, I = x.shape
        H = w_hh.shape[1]
        W_ih = torch.stack([w_ih, w_ih_r])                       # (2, 3H, I)
        W_hh = torch.stack([w_hh, w_hh_r])                       # (2, 3H, H)
        X = torch.stack([x.transpose(0, 1), x.flip(1).transpose(0, 1)])   # (2, T, B, I), time-major
        G = torch.baddbmm(torch.stack([b_ih, b_ih_r]).unsqueeze(1), X.view(2, T * B, I),
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
        I = X.shape[-1]
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
        g_W_ih = torch.bmm(dG2.transpose(1, 2), X.view(2, T * B, I))
        g_b_ih = dG.sum((1, 2))
        g_x = None
        if ctx.needs_input_grad[0]:
            dX = torch.bmm(dG2, W_ih).view(2, T, B, I)
            g_x = (dX[0] + dX[1].flip(0)).transpose(0, 1)
        return (g_x, g_W_ih[0], g_W_hh[0], g_b_ih[0], g_b_hh[0],
                g_W_ih[1], g_W_hh[1], g_b_ih[1], g_b_hh[1])


class BiGRU(nn.GRU):
    """``nn.GRU`` (same parameters, same maths) whose one-layer, bidirectional,
    batch-first case runs :class:`_BiGRUFunction` on CPU, in float32."""

    def forward(self, input, hx=None):
        if (hx is not None or not _fast(input) or not isinstance(input, torch.Tensor)
                or self.num_layers != 1 or not self.bidirectional or not self.batch_first
                or not self.bias or self.proj_size or input.dim() != 3):
            return super().forward(input, hx)
        with torch.autocast("cpu", enabled=False):
            x = input.to(_acc_dtype(input))
            out, h = _BiGRUFunction.apply(x, *(w.to(x.dtype) for w in self._flat_weights))
        return out, h
