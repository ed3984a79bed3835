"""Aligned segments: the four views of one example cover the same ≈1.51 s
(§3.1.3), for training (random start) and testing (S evenly spaced starts per
S-second file). Chapter: *Training*.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import DataError
from .framing import hop_seconds, segment_length

__all__ = ["Segmenter", "DeviceSegmenter", "segmenter_for", "train_batches", "eval_segments"]


class Segmenter:
    """Cuts aligned segments out of a dataset's cached views.

    A segment starting at ``t0`` seconds starts at frame ``round(t0 / hop)`` of
    each view (clamped so that it fits), so the views of one example cover the
    same ≈1.51 s (:func:`~mvbook.views.framing.segment_length`).

    Parameters
    ----------
    views : dict
        View → array, shape (n_clips, frames, 64) for a 2-D view or (n_clips, samples) for ``raw``.
    sr : int
        The dataset's sample rate (Hz).
    clip_seconds : float
        Length of a clip (s).
    transforms : dict, optional
        View → a function applied to each batch of that view (the standardisation).
    """

    def __init__(self, views: dict, sr: int, clip_seconds: float, transforms: dict | None = None):
        self.views, self.sr, self.clip_seconds = views, sr, clip_seconds
        self.L = {v: segment_length(v, sr) for v in views}
        self.hop = {v: hop_seconds(v, sr) for v in views}
        self.seconds = segment_length("raw", sr) / sr
        self.transforms = transforms or {}
        for v, X in views.items():
            if X.shape[1] < self.L[v]:
                raise DataError(f"{v}: clips have {X.shape[1]} frames, fewer than a segment's {self.L[v]}")

    @property
    def t_max(self) -> float:
        """Latest start time of a segment."""
        return max(0.0, self.clip_seconds - self.seconds)

    def test_starts(self) -> np.ndarray:
        """S evenly spaced start times for an S-second clip (S ≥ 1)."""
        S = max(1, int(self.clip_seconds))
        return np.linspace(0.0, self.t_max, S)

    def starts(self, v: str, t0: np.ndarray) -> np.ndarray:
        top = self.views[v].shape[1] - self.L[v]
        return np.clip(np.round(np.asarray(t0) / self.hop[v]).astype(int), 0, top)

    def batch(self, clips: np.ndarray, t0: np.ndarray) -> dict:
        """dict view → float32 array (B, L, 64) or (B, L) for the given segments."""
        out = {}
        for v, X in self.views.items():
            s, L = self.starts(v, t0), self.L[v]
            x = np.stack([X[c, a:a + L] for c, a in zip(clips, s)]).astype(np.float32, copy=False)
            f = self.transforms.get(v)
            out[v] = f(x) if f is not None else x
        return out


class DeviceSegmenter:
    """A :class:`Segmenter` whose views live on ``device``, standardised once, and
    whose batches are cut there by one gather per view: no host copy per batch
    (on a GPU the loader would otherwise cost ~10 % of a paper-scale step).
    The same values as ``seg.batch`` (the standardisation is element-wise);
    everything else is ``seg``'s.

    Parameters
    ----------
    seg : Segmenter
        The host-side segmenter.
    device : str or torch.device
        Where the views are kept.
    """

    def __init__(self, seg: Segmenter, device):
        self.seg, self.device = seg, torch.device(device)
        self.views = {}
        for v, X in seg.views.items():
            f = seg.transforms.get(v)
            X = np.asarray(X, dtype=np.float32)
            self.views[v] = torch.from_numpy(np.ascontiguousarray(f(X) if f is not None else X)).to(self.device)

    def __getattr__(self, name):
        return getattr(self.seg, name)

    def batch(self, clips: np.ndarray, t0: np.ndarray) -> dict:
        """dict view → float32 tensor (B, L, 64) or (B, L) on the device."""
        out = {}
        for v, X in self.views.items():
            L = self.seg.L[v]
            first = np.asarray(clips, dtype=np.int64) * X.shape[1] + self.seg.starts(v, t0)
            idx = torch.from_numpy(first).to(self.device)[:, None] + torch.arange(L, device=self.device)
            out[v] = X.reshape(-1, *X.shape[2:])[idx]
        return out


def segmenter_for(seg: Segmenter, device) -> Segmenter | DeviceSegmenter:
    """``seg`` with its views moved to a CUDA ``device`` (elsewhere ``seg`` itself:
    on a CPU the host copy is the device copy, and the loader costs < 1 % of a step).

    Parameters
    ----------
    seg : Segmenter
        The host-side segmenter.
    device : str or torch.device
        The training device.

    Returns
    -------
    Segmenter or DeviceSegmenter
        What the training loop cuts its batches from.
    """
    return DeviceSegmenter(seg, device) if torch.device(device).type == "cuda" else seg


def train_batches(train_idx, batch_size: int, t_max: float, rng: np.random.Generator):
    """Endless random training segments: (clip indices, start times) per batch.

    Parameters
    ----------
    train_idx : array_like
        The training clips (drawn with replacement only when fewer than a batch).
    batch_size : int
        Segments per batch.
    t_max : float
        The latest start time (s) of a segment.
    rng : numpy.random.Generator
        The source of the draws.

    Yields
    ------
    tuple of numpy.ndarray
        (clip indices, start times in seconds), ``batch_size`` each.

    Examples
    --------
    >>> clips, t0 = next(train_batches([3, 5], 4, 1.5, np.random.default_rng(0)))
    >>> sorted(set(clips.tolist())) <= [3, 5], bool(((0 <= t0) & (t0 < 1.5)).all())
    (True, True)
    """
    train_idx = np.asarray(train_idx)
    while True:
        clips = rng.choice(train_idx, batch_size, replace=len(train_idx) < batch_size)
        yield clips, rng.uniform(0.0, t_max, batch_size)


def eval_segments(clip_idx, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (clip, start) pair of an evaluation set, clip-major.

    Parameters
    ----------
    clip_idx : array_like
        The clips.
    starts : numpy.ndarray
        The start times of the test segments of one clip.

    Returns
    -------
    tuple of numpy.ndarray
        (clip of each segment, its start), ``len(clip_idx) · len(starts)`` each.

    Examples
    --------
    >>> c, t = eval_segments([7, 9], np.array([0.0, 1.0]))
    >>> c.tolist(), t.tolist()
    ([7, 7, 9, 9], [0.0, 1.0, 0.0, 1.0])
    """
    clip_idx = np.asarray(clip_idx)
    return np.repeat(clip_idx, len(starts)), np.tile(starts, len(clip_idx))
