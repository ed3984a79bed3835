"""Dropout masks drawn from PyTorch's own CPU random stream, faster.

On CPU ``bernoulli_(q)`` draws one 64-bit number per element from the default
generator's Mersenne twister (MT19937), one element after another:
element *i* is kept when :math:`u_i < q`, with :math:`u_i = (v_i \\bmod 2^{53})\\,2^{-53}`
and :math:`v_i` two consecutive 32-bit outputs (high word first). This module
reads the generator's state, runs the same twister in compiled loops (blocks
of 624 words, then the masks), and writes the advanced state back: the same
masks and the same generator state as ``bernoulli_``, several times faster.
tests/test_dropout.py checks both against PyTorch. Used by the fast paths
(:mod:`mvbook.nets.fastpaths`); chapter *The CRNNs*.
"""
from __future__ import annotations

import math

import numba
import numpy as np
import torch

from .. import numba_cache_dir

__all__ = ["bernoulli_scaled", "state_layout_ok"]

numba_cache_dir()       # before numba decorates a kernel (here or in librosa): cached under the feature cache

N, M = 624, 397                      # MT19937: state words, shift
_SEED, _LEFT, _NEXT, _STATE = 0, 8, 16, 24   # byte offsets in torch's (legacy) CPU generator state
_BLOCK = 1 << 16                     # mask elements per chunk (their words stay in cache)


@numba.njit(cache=True)
def _twist(mt):
    """One MT19937 state transition of the 624 words, in place (in the order that
    makes words i + M past the end the already-updated ones)."""
    upper, lower, a = np.uint32(0x80000000), np.uint32(0x7FFFFFFF), np.uint32(0x9908B0DF)
    one = np.uint32(1)
    for i in range(N - M):
        y = (mt[i] & upper) | (mt[i + 1] & lower)
        mt[i] = mt[i + M] ^ (y >> one) ^ ((np.uint32(0) - (y & one)) & a)
    for i in range(N - M, N - 1):
        y = (mt[i] & upper) | (mt[i + 1] & lower)
        mt[i] = mt[i + M - N] ^ (y >> one) ^ ((np.uint32(0) - (y & one)) & a)
    y = (mt[N - 1] & upper) | (mt[0] & lower)
    mt[N - 1] = mt[M - 1] ^ (y >> one) ^ ((np.uint32(0) - (y & one)) & a)


@numba.njit(cache=True)
def _words(mt, pos, out):
    """Fill ``out`` with the next tempered 32-bit outputs; returns the new position.
    Every constant is a uint32 and each run of the tempering loop has its own slices,
    so that loop vectorises (5x faster than with plain integer constants)."""
    a, b = np.uint32(0x9D2C5680), np.uint32(0xEFC60000)
    s11, s7, s15, s18 = np.uint32(11), np.uint32(7), np.uint32(15), np.uint32(18)
    k = 0
    n = out.size
    while k < n:
        if pos == N:
            _twist(mt)
            pos = 0
        m = min(N - pos, n - k)
        src, dst = mt[pos:pos + m], out[k:k + m]
        for j in range(m):
            y = src[j]
            y = y ^ (y >> s11)
            y = y ^ ((y << s7) & a)
            y = y ^ ((y << s15) & b)
            dst[j] = y ^ (y >> s18)
        k += m
        pos += m
    return pos


@numba.njit(cache=True)
def _masks(mt, pos, out, threshold, keep):
    """``out[i] = keep`` where the i-th 53-bit draw is below ``threshold``, else 0."""
    w = np.empty(2 * min(out.size, _BLOCK), np.uint32)
    low53, s32 = np.uint64((1 << 53) - 1), np.uint64(32)
    kept, zero = out.dtype.type(keep), out.dtype.type(0)   # in out's type: the loop vectorises
    for a in range(0, out.size, _BLOCK):
        b = min(a + _BLOCK, out.size)
        pos = _words(mt, pos, w[:2 * (b - a)])
        pairs, dst = w.view(np.uint64), out[a:b]   # little-endian: the first word is the low half
        for i in range(b - a):
            v = ((pairs[i] << s32) | (pairs[i] >> s32)) & low53
            dst[i] = kept if v < threshold else zero
    return pos


def bernoulli_scaled(shape, q: float, dtype: torch.dtype) -> torch.Tensor:
    """``torch.empty(shape, dtype=dtype).bernoulli_(q).div_(q)`` on CPU, from the
    default generator, which advances exactly as ``bernoulli_`` would advance it.

    Parameters
    ----------
    shape : sequence of int
        The mask's shape.
    q : float
        Keep probability, 1 − p.
    dtype : torch.dtype
        The mask's type.

    Returns
    -------
    torch.Tensor
        0 or 1/q per entry, equal to ``bernoulli_``'s draw from the same state.
    """
    state = torch.get_rng_state().numpy().copy()
    left = int(state[_LEFT:_LEFT + 4].view(np.int32)[0])
    pos = N if left <= 1 else int(state[_NEXT:_NEXT + 8].view(np.uint64)[0])
    mt = state[_STATE:_STATE + 8 * N].view(np.uint64).astype(np.uint32)
    keep = float(torch.ones((), dtype=dtype).div_(q))             # 1/q rounded as div_ rounds it
    acc = np.float64 if dtype == torch.float64 else np.float32
    out = np.empty(int(np.prod(shape, dtype=np.int64)), acc)
    # u = v·2^-53 < q  ⇔  v < q·2^53 (exact in float64)  ⇔  v < ⌈q·2^53⌉ for the integer v
    pos = _masks(mt, pos, out, np.uint64(math.ceil(q * 2.0 ** 53)), keep)
    state[_STATE:_STATE + 8 * N].view(np.uint64)[:] = mt
    state[_NEXT:_NEXT + 8].view(np.uint64)[0] = pos
    state[_LEFT:_LEFT + 4].view(np.int32)[0] = N + 1 - pos
    torch.set_rng_state(torch.from_numpy(state))
    return torch.from_numpy(out).view(shape).to(dtype)


def state_layout_ok() -> bool:
    """Whether this torch's CPU generator state has the layout read above (5056
    bytes, the seed first); otherwise the fast paths keep ``bernoulli_``.

    Returns
    -------
    bool
        True when :func:`bernoulli_scaled` can read and advance the generator.
    """
    state = torch.get_rng_state()
    return state.numel() == 5056 and int(state[_SEED:_SEED + 8].numpy().view(np.uint64)[0]) == torch.initial_seed()
