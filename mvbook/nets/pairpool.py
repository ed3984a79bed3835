"""The (1, 2) max-pool of ReLU(batch norm(y)) on a channels-last CPU tensor, its
backward in two compiled passes: the batch-norm sums over the pooled gradient,
then the input gradient, written once per cell (``A·y + B``, plus the pooled
gradient at the pair's chosen cell). The native path makes about ten passes
over the pooled tensor and three over ``y`` for the same backward. The same
maths as ``mvbook.nets.fastpaths._BNReLUMaxPool`` (float32, float64); sums
accumulate in float64. Tested against max-pool, batch norm and ReLU in
tests/test_pairpool.py.
"""
from __future__ import annotations

import numba
import numpy as np
import torch

from .. import numba_cache_dir

__all__ = ["applies", "input_coefficients", "pool", "BNReLUPairPool"]

numba_cache_dir()       # before numba decorates a kernel (here or in librosa): cached under the feature cache

_BLOCK = 256     # rows summed in the input's type before their sum is added in float64


# The loops below keep every constant in the arrays' type (a float64 literal in a float32
# loop stops it from vectorising: 5x slower), choose with `|`, not `or` (no branch), and
# index a pair as columns c and C + c of 2-D rows (3-D indexing did not vectorise either).

@numba.njit(cache=True)
def _forward(y, sign, alpha, beta, p, out):
    """Pairs ``y`` (n, 2C) → p, the chosen value (max-pool's first maximum of sign·y;
    a NaN first wins, as max-pool propagates it), and out = ReLU(p·alpha + beta), (n, C)."""
    n, C = p.shape
    zero = y.dtype.type(0)
    for i in range(n):
        for c in range(C):
            y0, y1 = y[i, c], y[i, C + c]
            v = y0 if (sign[c] * y0 >= sign[c] * y1) | (y0 != y0) else y1
            p[i, c] = v
            o = v * alpha[c] + beta[c]
            out[i, c] = zero if o <= zero else o                 # ReLU; NaN stays NaN


@numba.njit(cache=True)
def _sums(g, p, out, mean):
    """Σ g' and Σ g'·(p − mean) per column, g' = g where ``out`` > 0."""
    n, C = p.shape
    zero = p.dtype.type(0)
    sg, sgx = np.zeros(C), np.zeros(C)
    bg, bgx = np.zeros(C, p.dtype), np.zeros(C, p.dtype)
    for i0 in range(0, n, _BLOCK):
        bg[:] = 0
        bgx[:] = 0
        for i in range(i0, min(i0 + _BLOCK, n)):
            for c in range(C):
                gi = g[i, c] if out[i, c] > zero else zero
                bg[c] += gi
                bgx[c] += gi * (p[i, c] - mean[c])
        for c in range(C):
            sg[c] += bg[c]
            sgx[c] += bgx[c]
    return sg, sgx


@numba.njit(cache=True)
def _input_grad(y, sign, g, out, alpha, A, B, dy):
    """dy (n, 2C) = A·y + B, plus alpha·g' at the cell of the pair that was chosen."""
    n, C = g.shape
    zero = y.dtype.type(0)
    for i in range(n):
        for c in range(C):
            y0, y1 = y[i, c], y[i, C + c]
            s = g[i, c] * alpha[c] if out[i, c] > zero else zero
            first = (sign[c] * y0 >= sign[c] * y1) | (y0 != y0)
            dy[i, c] = y0 * A[c] + B[c] + (s if first else zero)
            dy[i, C + c] = y1 * A[c] + B[c] + (zero if first else s)


def applies(y: torch.Tensor) -> bool:
    """Whether ``y`` (B, C, H, W) takes these passes: float32/float64, channels-last, CPU, W even.

    Parameters
    ----------
    y : torch.Tensor
        The convolution's output.

    Returns
    -------
    bool
        True when :func:`pool` and :class:`BNReLUPairPool` accept ``y``.
    """
    return (y.device.type == "cpu" and y.dtype in (torch.float32, torch.float64) and y.dim() == 4
            and y.shape[3] % 2 == 0 and y.is_contiguous(memory_format=torch.channels_last))


def _rows(t: torch.Tensor, cells: int = 1) -> np.ndarray:
    """A channels-last (B, C, H, W) tensor's memory as a NumPy array of rows of ``cells``
    consecutive cells × C channels (shared, not copied)."""
    return t.detach().permute(0, 2, 3, 1).numpy().reshape(-1, cells * t.shape[1])


def _vec(t: torch.Tensor, dtype) -> np.ndarray:
    return np.ascontiguousarray(t.detach().numpy(), dtype=dtype)


def _sign(alpha: torch.Tensor, dtype) -> np.ndarray:
    """+1 per channel, −1 where batch norm's scale is negative (a min-pool there)."""
    return np.where(alpha.detach().numpy() < 0, -1.0, 1.0).astype(dtype)


def input_coefficients(alpha, invstd, mean, sum_g, sum_gx, n: int):
    """(A, B) of batch norm's input gradient with batch statistics,
    ∂y = alpha·g' + A·y + B, from Σg' and Σg'·x̂ over the ``n`` cells of a channel.

    Parameters
    ----------
    alpha : array_like
        γ/σ per channel.
    invstd : array_like
        1/σ per channel.
    mean : array_like
        μ per channel.
    sum_g : array_like
        Σ g' per channel (g' the output gradient where ReLU passed).
    sum_gx : array_like
        Σ g'·(p − μ) per channel.
    n : int
        Cells per channel (B·H·W of the input).

    Returns
    -------
    tuple
        (A, B), per channel.
    """
    A = -alpha * invstd * sum_gx / n
    return A, -alpha * sum_g / n - mean * A


def pool(y: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(ReLU(p·alpha + beta), p) with p the (1, 2) max-pool of y (min-pool where alpha < 0).

    Parameters
    ----------
    y : torch.Tensor, (B, C, H, W)
        Channels-last, W even (:func:`applies`).
    alpha : torch.Tensor, (C,)
        Batch norm's scale γ/σ.
    beta : torch.Tensor, (C,)
        Batch norm's shift β − μ·γ/σ.

    Returns
    -------
    tuple of torch.Tensor
        (the block's output, p), both (B, C, H, W/2) channels-last.
    """
    B, C, H, W = y.shape
    p = torch.empty((B, C, H, W // 2), dtype=y.dtype, memory_format=torch.channels_last)
    out = torch.empty_like(p)
    dt = _rows(y).dtype
    _forward(_rows(y, 2), _sign(alpha, dt), _vec(alpha, dt), _vec(beta, dt), _rows(p), _rows(out))
    return out, p


class BNReLUPairPool(torch.autograd.Function):
    """(1, 2) max-pool of ReLU(batch norm(y)), with batch norm's γ, β, μ, 1/σ given;
    called as ``BNReLUPairPool.apply(y, weight, bias, mean, invstd, batch_stats)``.

    Parameters
    ----------
    y : torch.Tensor, (B, C, H, W)
        The convolution's output, channels-last, W even (:func:`applies`).
    weight, bias : torch.Tensor, (C,)
        Batch norm's γ and β.
    mean, invstd : torch.Tensor, (C,)
        μ and 1/σ used (the batch's or the running ones).
    batch_stats : bool
        Whether μ and σ are the batch's (their gradient then flows back into ``y``).

    Returns
    -------
    torch.Tensor, (B, C, H, W/2)
        The block's output (from ``apply``).
    """

    @staticmethod
    def forward(ctx, y, weight, bias, mean, invstd, batch_stats):
        alpha = weight * invstd
        out, p = pool(y, alpha, bias - mean * alpha)
        ctx.save_for_backward(y, p, out, alpha, mean, invstd)
        ctx.batch_stats = batch_stats
        return out

    @staticmethod
    def backward(ctx, g_out):
        y, p, out, alpha, mean, invstd = ctx.saved_tensors
        g = g_out.contiguous(memory_format=torch.channels_last)
        dt = _rows(y).dtype
        sg, sgx = (torch.from_numpy(s).to(alpha.dtype) for s in _sums(_rows(g), _rows(p), _rows(out), _vec(mean, dt)))
        g_weight = sgx * invstd                                   # Σ g'·x̂
        if ctx.batch_stats:
            A, B = input_coefficients(alpha, invstd, mean, sg, g_weight, y.numel() // y.shape[1])
        else:
            A = B = torch.zeros_like(alpha)
        dy = torch.empty_like(y, memory_format=torch.channels_last)
        _input_grad(_rows(y, 2), _sign(alpha, dt), _rows(g), _rows(out), _vec(alpha, dt), _vec(A, dt), _vec(B, dt),
                    _rows(dy, 2))
        return dy, g_weight, sg, None, None, None
