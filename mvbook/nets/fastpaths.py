"""Fast CPU paths of the networks in :mod:`mvbook.nets.crnn`: the same maths as
the plain modules, fewer passes over memory; used on CPU only (CUDA keeps
cuDNN's kernels). tests/test_fastpaths.py checks fast = plain for outputs,
gradients and batch-norm running statistics. Chapter: *The CRNNs*.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from ..device import full_precision
from ..errors import ConfigError
from . import pairpool
from .dropout import bernoulli_scaled, state_layout_ok

__all__ = ["EXACT_STREAM", "fast_paths", "on_fast_path", "float32_on_cpu", "accumulation_dtype", "conv_pool",
           "dropout", "output_phases", "raw_front_end"]

_FAST = {"enabled": True}
EXACT_STREAM = state_layout_ok()     # dropout masks from PyTorch's stream by mvbook.nets.dropout
_EPS_EXACT = 2.0 ** -20     # a float32-exact eps: (1 − eps) + eps == 1 with no rounding


@contextmanager
def fast_paths(enabled: bool = True):
    """Within the block, use (``True``) or skip (``False``) the fast CPU paths.

    Parameters
    ----------
    enabled : bool
        Whether the fast paths run inside the block.

    Yields
    ------
    None
        The setting holds until the block ends, then the previous one returns.

    Examples
    --------
    >>> x = torch.zeros(1)
    >>> with fast_paths(False):
    ...     on_fast_path(x)
    False
    """
    before = _FAST["enabled"]
    _FAST["enabled"] = bool(enabled)
    try:
        yield
    finally:
        _FAST["enabled"] = before


def on_fast_path(x: torch.Tensor) -> bool:
    """Whether ``x`` takes the fast CPU paths (enabled, and on the CPU).

    Parameters
    ----------
    x : torch.Tensor
        An activation.

    Returns
    -------
    bool
        True on the CPU while :func:`fast_paths` is on (the default).
    """
    return _FAST["enabled"] and x.device.type == "cpu"


def float32_on_cpu(x: torch.Tensor):
    """Context: no CPU autocast for the fully-connected parts (attention, heads).
    On CPU only the convolutions gain from bfloat16; the fc layers, at these
    batch sizes bound by reading their weights, would pay for casting the
    weights every step. (A no-op on CUDA and with the fast paths off.)

    Parameters
    ----------
    x : torch.Tensor
        The input of the fully-connected part.

    Returns
    -------
    contextlib.AbstractContextManager
        Full precision on the fast path, else a null context.
    """
    return full_precision(x) if on_fast_path(x) else nullcontext()


def _bn_factor(bn: nn.modules.batchnorm._BatchNorm) -> tuple[bool, float]:
    """(use batch statistics?, running-average factor), exactly as ``_BatchNorm.forward``
    decides them (it also counts the batch in ``num_batches_tracked``)."""
    factor = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    batch_stats = bn.training or (bn.running_mean is None and bn.running_var is None)
    return batch_stats, factor


def accumulation_dtype(x: torch.Tensor) -> torch.dtype:
    """Accumulation type: float32 for bf16/fp16 activations, else their own.

    Parameters
    ----------
    x : torch.Tensor
        An activation.

    Returns
    -------
    torch.dtype
        The type sums over ``x`` are kept in.

    Examples
    --------
    >>> accumulation_dtype(torch.zeros(1, dtype=torch.bfloat16)), accumulation_dtype(torch.zeros(1))
    (torch.float32, torch.float32)
    """
    return torch.float32 if x.dtype in (torch.bfloat16, torch.float16) else x.dtype


def _bn_relu(y: torch.Tensor, bn) -> torch.Tensor:
    """batch norm → ReLU with the native kernels, for any memory format of ``y``
    (compiled loops for conv01's channels-last tensor were tried: no faster forward,
    a slower backward)."""
    batch_stats, factor = _bn_factor(bn)
    rm, rv = (bn.running_mean, bn.running_var) if not bn.training or bn.track_running_stats else (None, None)
    return F.relu_(F.batch_norm(y, rm, rv, bn.weight, bn.bias, batch_stats, factor, bn.eps))


def _bn_statistics(y: torch.Tensor, bn) -> tuple:
    """(γ, β, μ, 1/σ, batch statistics?) of ``bn`` on ``y`` in the accumulation type;
    with batch statistics the running averages are updated as ``batch_norm`` does."""
    batch_stats, factor = _bn_factor(bn)
    if batch_stats:
        rm, rv = (bn.running_mean, bn.running_var) if bn.track_running_stats else (None, None)
        with torch.no_grad():                                    # their gradient is in the backward
            mean, var = torch.batch_norm_update_stats(y, rm, rv, factor)   # updates rm, rv like batch_norm
    else:
        mean, var = bn.running_mean, bn.running_var
    acc = accumulation_dtype(y)
    invstd = 1.0 / torch.sqrt(var.to(acc) + bn.eps)
    weight = bn.weight if bn.weight is not None else torch.ones_like(invstd)
    bias = bn.bias if bn.bias is not None else torch.zeros_like(invstd)
    return weight.to(acc), bias.to(acc), mean.to(acc), invstd, batch_stats


def _wants_grad(*tensors) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


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
        p, route = _max_pool(y * sign if flip else y, kernel, True)
        if flip:
            p = p * sign                                          # the y value at the arg-max / arg-min
        out = torch.addcmul(beta.view(1, C, 1, 1), p, alpha.view(1, C, 1, 1)).relu_()
        ctx.save_for_backward(y, p, route, out, alpha, mean, invstd)
        ctx.batch_stats = batch_stats
        return out.to(y.dtype)

    @staticmethod
    def backward(ctx, g_out):
        y, p, route, out, alpha, mean, invstd = ctx.saved_tensors
        C = y.shape[1]
        g = torch.ops.aten.threshold_backward(g_out.to(out.dtype), out, 0)   # through ReLU (pooled size)
        xhat = (p - mean.view(1, C, 1, 1)) * invstd.view(1, C, 1, 1)
        sum_g, sum_gx = g.sum((0, 2, 3)), (g * xhat).sum((0, 2, 3))
        g_weight, g_bias = sum_gx, sum_g
        if ctx.batch_stats:
            A, Bc = pairpool.input_coefficients(alpha, invstd, mean, sum_g, sum_gx, y.numel() // C)
            if y.dtype == out.dtype:
                dy = torch.addcmul(Bc.view(1, C, 1, 1), y, A.view(1, C, 1, 1))
            else:                                                # y·A + B in float32, rounded once to y's type
                # eps must be > 0 (torch 2.11 checks); var = 1 − eps keeps 1/√(var + eps) exactly 1
                dy = F.batch_norm(y, torch.zeros_like(A), torch.full_like(A, 1 - _EPS_EXACT), A, Bc,
                                  False, 0.0, _EPS_EXACT)
        else:
            dy = torch.zeros_like(y)
        src = (g * alpha.view(1, C, 1, 1)).to(dy.dtype)
        if route.dtype == torch.bool:                             # (1, 2) windows: the first of each pair won
            dy = dy.contiguous(memory_format=torch.channels_last)
            first, second = _pairs(dy)
            s = src.permute(0, 2, 3, 1).contiguous()
            to_first = s * route                                  # s where the first won, else 0
            first.add_(to_first)
            second.add_(s - to_first)                             # s where the second won, else 0
            return dy, g_weight, g_bias, None, None, None, None
        idx = route
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


_MAX_POOL_VIEWS = 64      # _max_pool: evaluation windows this large as a maximum of strided views


def _pairs(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Views (B, H, W/2, C) of the even and odd columns of a channels-last (B, C, H, W) ``y``."""
    B, C, H, W = y.shape
    v = y.permute(0, 2, 3, 1).view(B, H, W // 2, 2 * C)
    return v[..., :C], v[..., C:]


def _max_pool(y: torch.Tensor, kernel: tuple, route: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``max_pool2d(y, kernel, kernel)`` and (with ``route``) where each maximum came from.

    (1, 2) windows of a channels-last ``y`` (every pool of Table 1) are the
    element-wise maximum of its even and odd columns, and the route is a mask
    "the even one won", ties included, as max-pool picks the first maximum;
    several times faster than the native kernel at these channel counts.
    Without ``route``, windows of up to ``_MAX_POOL_VIEWS`` cells likewise (the maximum
    of the strided views, one per cell of the window). Otherwise the native kernel.
    """
    kt, kf = kernel
    if (kt, kf) == (1, 2) and y.shape[3] % 2 == 0 and y.is_contiguous(memory_format=torch.channels_last):
        first, second = _pairs(y)
        p = torch.maximum(first, second).permute(0, 3, 1, 2)     # (B, C, H, W/2) channels-last
        return p, (first >= second if route else None)
    if route:
        return F.max_pool2d(y, kernel, kernel, return_indices=True)
    if y.is_contiguous(memory_format=torch.channels_last) and kt * kf <= _MAX_POOL_VIEWS:
        H, W = y.shape[2] // kt * kt, y.shape[3] // kf * kf      # windows that fit, as max-pool floors
        p = y[:, :, 0:H:kt, 0:W:kf]
        for i in range(kt):
            for j in range(kf):
                if i or j:
                    p = torch.maximum(p, y[:, :, i:H:kt, j:W:kf])
        return p, None
    return F.max_pool2d(y, kernel, kernel), None


def _bn_relu_maxpool(y: torch.Tensor, bn, kernel) -> torch.Tensor:
    """ReLU(batch norm(y)) max-pooled by ``kernel`` (stride = kernel), pool first."""
    kernel = tuple(kernel)
    if kernel == (1, 1):
        return _bn_relu(y, bn)
    if not (y.is_contiguous() or y.is_contiguous(memory_format=torch.channels_last)):
        y = y.contiguous(memory_format=torch.channels_last)     # the backward views (H, W) as one axis
    weight, bias, mean, invstd, batch_stats = _bn_statistics(y, bn)
    pairs = kernel == (1, 2) and pairpool.applies(y)               # compiled passes
    if _wants_grad(y, weight, bias):
        if pairs:
            return pairpool.BNReLUPairPool.apply(y, weight, bias, mean, invstd, batch_stats)
        return _BNReLUMaxPool.apply(y, weight, bias, mean, invstd, kernel, batch_stats)
    # no gradient wanted (evaluation): the same values, without arg-max indices
    C = y.shape[1]
    alpha = weight * invstd
    beta = bias - mean * alpha
    if pairs:
        return pairpool.pool(y, alpha, beta)[0]
    if bool((alpha < 0).any()):
        sign = torch.where(alpha < 0, -1.0, 1.0).to(y.dtype).view(1, C, 1, 1)
        p = _max_pool(y * sign, kernel, False)[0] * sign
    else:
        p = _max_pool(y, kernel, False)[0]
    return torch.addcmul(beta.view(1, C, 1, 1), p, alpha.view(1, C, 1, 1)).relu_().to(y.dtype)


_BANDED_MAX_FREQ = 2      # _banded_conv for inputs this narrow in frequency (wider: oneDNN's 2-D kernel wins)


def _banded_pays(x: torch.Tensor) -> bool:
    """Whether ``_banded_conv`` beats oneDNN's 2-D kernel on ``x`` (one thread,
    measured): inputs at most ``_BANDED_MAX_FREQ`` bands wide, and inputs of one
    channel whose gradient is wanted (the raw CRNN's conv1): the 2-D kernel's
    backward to a single channel is slow, the banded one's has F channels (the
    block matrix's zeros cost less than that; about 5x faster forward + backward
    on (64, 1, 260, 16) with a 5 x 3 kernel)."""
    return x.shape[3] <= _BANDED_MAX_FREQ or (x.shape[1] == 1 and x.requires_grad and torch.is_grad_enabled())


def _banded_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    r"""A (time, freq) convolution (stride 1, SAME) of an input F bands wide
    as a 1-D convolution over time with F·C_in input and F·C_out output channels:
    :math:`y_{t,f,o} = \sum_{\tau, f', c} W_{o,c,\tau,f'-f+p} \, x_{t+\tau-q, f', c}`, the weight
    a block matrix whose (f, f') block is :math:`W_{:,:,:,f'-f+p}` (zero outside the
    kernel). The same products minus those with the zero padding of the
    frequency axis, which the 2-D kernel computes and wastes at F ≤ 2; for wider
    inputs the zero blocks cost products of their own (``_banded_pays``).
    ``x`` (B, C, T, F) channels-last → (B, C_out, T, F) channels-last.
    """
    if isinstance(conv.padding, str):                           # "same" / "valid": the 2-D kernel
        return conv(x)
    (kt, kf), (pt, pf) = conv.kernel_size, conv.padding
    if (conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1 or conv.bias is not None
            or pt != kt // 2 or pf != kf // 2):
        return conv(x)
    B, C, T, Fq = x.shape
    C_out, w = conv.out_channels, conv.weight
    zero = w.new_zeros(C_out, C, kt)
    rows = [torch.cat([w[:, :, :, fi - fo + pf] if 0 <= fi - fo + pf < kf else zero for fi in range(Fq)], 1)
            for fo in range(Fq)]
    Wb = torch.cat(rows, 0)                                      # (F·O, F·C, kt), rows (f, o), columns (f', c)
    xt = x.permute(0, 2, 3, 1).reshape(B, 1, T, Fq * C).permute(0, 3, 1, 2)   # (B, F·C, 1, T) channels-last
    y = F.conv2d(xt, Wb.unsqueeze(2), None, 1, (0, pt))         # (B, F·O, 1, T) channels-last
    y = y.permute(0, 2, 3, 1).reshape(B, T, Fq, C_out)              # free when y is channels-last
    return y.permute(0, 3, 1, 2)                                 # (B, O, T, F) channels-last


def conv_pool(conv: nn.Sequential, pool: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``pool(conv(x))`` for a conv → BN → ReLU block and its max-pool → dropout.

    Fast path: channels-last convolution, then ``_BNReLUMaxPool``.

    Parameters
    ----------
    conv : torch.nn.Sequential
        Conv2d → BatchNorm2d → ReLU.
    pool : torch.nn.Sequential
        MaxPool2d (stride = kernel, no padding) → Dropout.
    x : torch.Tensor, (B, C, H, W)
        The block's input.

    Returns
    -------
    torch.Tensor
        ``pool(conv(x))`` (channels-last on the fast path).
    """
    if not on_fast_path(x):
        return pool(conv(x))
    c, mp, drop = conv[0], pool[0], pool[1]
    assert isinstance(c, nn.Conv2d) and isinstance(mp, nn.MaxPool2d) and isinstance(drop, nn.Dropout)
    x = x.contiguous(memory_format=torch.channels_last)
    y = _banded_conv(x, c) if _banded_pays(x) else c(x)
    # a one-channel input is both layouts at once and its convolution returns (B, C, H, W)
    y = y.contiguous(memory_format=torch.channels_last)
    k = mp.kernel_size
    k = (k, k) if isinstance(k, int) else k
    s = mp.stride
    s = (s, s) if isinstance(s, int) else s
    assert tuple(s) == tuple(k) and mp.padding in (0, (0, 0)) and not mp.ceil_mode
    return dropout(_bn_relu_maxpool(y, conv[1], k), drop)


def dropout(x: torch.Tensor, drop: nn.Dropout, memory_order: bool = False) -> torch.Tensor:
    """``drop(x)``; on the fast path by :func:`mvbook.nets.dropout.bernoulli_scaled`
    (PyTorch's stream, faster), the mask drawn in the logical (B, C, H, W) order
    whatever the memory format of ``x`` (the plain path's tensors are contiguous),
    or with ``memory_order`` in ``x``'s memory order, as ``drop(x)`` draws it (the
    plain path's tensor has the same strides).

    Parameters
    ----------
    x : torch.Tensor
        The input.
    drop : torch.nn.Dropout
        The module (its ``p`` and ``training``).
    memory_order : bool
        Draw the mask in ``x``'s memory order.

    Returns
    -------
    torch.Tensor
        ``x`` with dropped entries 0 and the rest scaled by 1/(1 − p).
    """
    if not on_fast_path(x):
        return drop(x)
    if not drop.training or drop.p == 0:
        return x
    if drop.p == 1:
        return x * 0.0
    q = 1 - drop.p
    strides = x.stride()
    dims = sorted(range(x.dim()), key=lambda d: -strides[d]) if memory_order else list(range(x.dim()))
    shape = [x.shape[d] for d in dims]
    if EXACT_STREAM:
        noise = bernoulli_scaled(shape, q, x.dtype)
    else:
        noise = torch.empty(shape, dtype=x.dtype).bernoulli_(q).div_(q)
    return x * noise.permute(*sorted(range(x.dim()), key=dims.__getitem__))


def _conv_outputs(conv: nn.Conv1d, n: int) -> int:
    """Outputs of ``conv`` (no padding, no dilation) on ``n`` samples."""
    return (n - conv.kernel_size[0]) // conv.stride[0] + 1


def _polyphase_conv(x: torch.Tensor, conv: nn.Conv1d, phases: int = 1) -> torch.Tensor:
    r"""``conv`` (1-D, stride s, kernel k, no padding, no bias) of ``x`` given as
    (B, C, 1, L) channels-last, as a stride-1 convolution over rows of P = s·Q
    samples, computing Q = ``phases`` consecutive outputs per row:
    :math:`y_{Qi+q} = \sum_{j<k} W_j x_{s(Qi+q)+j} = \sum_{d<D} \sum_{r<P} W_{Pd+r-sq} x_{P(i+d)+r}`
    (W zero outside [0, k)), i.e. P·C input channels (sample r, channel c), Q·C_out
    output channels (phase q, filter o) and D = ⌈(s(Q−1)+k)/P⌉ taps. Q = 1 is the
    plain polyphase form (the same products); Q > 1 adds products with zeros but
    gives oneDNN wide channels, which pays where C_out and C are small. The output rows
    are y's samples in order, so (B, Q·C_out, 1, L_out/Q) channels-last *is* (B, C_out, 1,
    L_out); ``phases`` must divide L_out. Falls back to a strided 2-D convolution
    when Q = 1 and k is not a multiple of s.
    """
    (s,), (k,) = conv.stride, conv.kernel_size
    C_out, C = conv.weight.shape[:2]
    if conv.padding != (0,) or conv.dilation != (1,) or conv.groups != 1 or conv.bias is not None or (
            phases == 1 and k % s):
        pad = conv.padding if isinstance(conv.padding, str) else (0, conv.padding[0])
        return F.conv2d(x, conv.weight.unsqueeze(2), conv.bias, (1, s), pad, (1, conv.dilation[0]), conv.groups)
    B, _, _, L = x.shape
    Q, P = phases, s * phases
    n_out = _conv_outputs(conv, L)
    if n_out % Q:
        raise ConfigError(f"{Q} output phases do not divide {n_out} outputs")
    D = -(-(s * (Q - 1) + k) // P)
    n = P * (n_out // Q + D - 1)                                 # the samples the outputs read
    xr = x.permute(0, 2, 3, 1).reshape(B, L * C)
    xr = xr[:, :n * C] if n <= L else F.pad(xr, (0, (n - L) * C))
    xs = xr.reshape(B, 1, n // P, P * C).permute(0, 3, 1, 2)     # (B, P·C, 1, n/P) channels-last
    w = torch.cat([F.pad(conv.weight, (s * q, P * D - k - s * q)) for q in range(Q)])   # (Q·O, C, P·D)
    w = w.view(Q * C_out, C, D, P).permute(0, 3, 1, 2).reshape(Q * C_out, P * C, 1, D)
    y = F.conv2d(xs, w).contiguous(memory_format=torch.channels_last)   # (B, Q·O, 1, n_out/Q)
    return y.permute(0, 2, 3, 1).reshape(B, 1, n_out, C_out).permute(0, 3, 1, 2)


_OUTPUT_PHASES = (4, 8, 6, 3, 2)    # conv01's outputs per row, by preference (one thread, measured)
_MAX_PHASE_CHANNELS = 64            # … while Q·O stays this narrow (wider: oneDNN is efficient already)


def output_phases(n_out: int, n_filters: int) -> int:
    """Q for ``_polyphase_conv`` of conv01: the first of ``_OUTPUT_PHASES`` that divides its
    ``n_out`` outputs with Q·``n_filters`` ≤ ``_MAX_PHASE_CHANNELS``; else 1.

    Parameters
    ----------
    n_out : int
        Outputs of conv01.
    n_filters : int
        Its filters.

    Returns
    -------
    int
        Q, outputs computed per row.

    Examples
    --------
    >>> output_phases(16, 16), output_phases(15, 16), output_phases(7, 16), output_phases(16, 64)
    (4, 3, 1, 1)
    """
    return next((q for q in _OUTPUT_PHASES if n_out % q == 0 and q * n_filters <= _MAX_PHASE_CHANNELS), 1)


def raw_front_end(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """conv01 → conv02 → pool02 of Table 2, then channels as the frequency axis:
    waveform (B, samples) → (B, 1, T, bands).

    Fast path: both 1-D convolutions as channels-last 2-D ones (rows of one
    sample), conv02's batch norm, ReLU and pool02 through ``_BNReLUMaxPool``;
    the result is already laid out as (B, T, bands).

    Parameters
    ----------
    net : torch.nn.Module
        The raw CRNN (its ``conv01``, ``conv02``, ``pool02``).
    x : torch.Tensor, (B, samples)
        Waveforms.

    Returns
    -------
    torch.Tensor, (B, 1, T, bands)
        The front end's output, an image for the 2-D layers.
    """
    conv01, conv02, pool02 = net.conv01, net.conv02, net.pool02
    assert isinstance(conv01, nn.Sequential) and isinstance(conv02, nn.Sequential) and isinstance(pool02, nn.MaxPool1d)
    if not on_fast_path(x):
        x = pool02(conv02(conv01(x.unsqueeze(1))))              # (B, bands, T)
        return x.transpose(1, 2).unsqueeze(1)                    # (B, 1, T, bands)
    c01, c02 = conv01[0], conv02[0]
    assert isinstance(c01, nn.Conv1d) and isinstance(c02, nn.Conv1d)
    q = output_phases(_conv_outputs(c01, x.shape[-1]), c01.out_channels)
    y = _polyphase_conv(x.reshape(x.shape[0], 1, 1, -1), c01, q)
    y = _bn_relu(y, conv01[1])
    y = _polyphase_conv(y, c02)
    k = pool02.kernel_size
    k = k[0] if isinstance(k, tuple) else k
    y = _bn_relu_maxpool(y, conv02[1], (1, k))                    # (B, bands, 1, T), channels-last
    return y.squeeze(2).transpose(1, 2).unsqueeze(1)
