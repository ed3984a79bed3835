"""Aligned segments: the four views of one example cover the same ≈1.51 s
(§3.1.3), for training (random start) and testing (S evenly spaced starts per
S-second file). Chapter: *Training*.
"""
from __future__ import annotations

import numpy as np

from .framing import hop_seconds, segment_length


class Segmenter:
    """Cuts aligned segments out of a dataset's cached views.

    ``views``: dict view → array (n_clips, frames, 64) or (n_clips, samples).
    A segment starting at ``t0`` seconds starts at frame ``round(t0 / hop)`` of
    each view (clamped so that it fits).
    """

    def __init__(self, views: dict, sr: int, clip_seconds: float, transforms: dict | None = None):
        self.views, self.sr, self.clip_seconds = views, sr, clip_seconds
        self.L = {v: segment_length(v, sr) for v in views}
        self.hop = {v: hop_seconds(v, sr) for v in views}
        self.seconds = segment_length("raw", sr) / sr
        self.transforms = transforms or {}
        for v, X in views.items():
            if X.shape[1] < self.L[v]:
                raise ValueError(f"{v}: clips have {X.shape[1]} frames, fewer than a segment's {self.L[v]}")

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


def train_batches(train_idx, batch_size: int, t_max: float, rng: np.random.Generator):
    """Endless random training segments: (clip indices, start times) per batch."""
    train_idx = np.asarray(train_idx)
    while True:
        clips = rng.choice(train_idx, batch_size, replace=len(train_idx) < batch_size)
        yield clips, rng.uniform(0.0, t_max, batch_size)


def eval_segments(clip_idx, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (clip, start) pair of an evaluation set, clip-major."""
    clip_idx = np.asarray(clip_idx)
    return np.repeat(clip_idx, len(starts)), np.tile(starts, len(clip_idx))
