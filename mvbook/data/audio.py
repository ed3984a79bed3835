"""Reading audio files as fixed-length mono waveforms (paper §3.1.1: stereo
DCASE2016 is "reduced to monaural"; every dataset has a fixed clip length)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr


class AudioError(Exception):
    """An audio file cannot be used; the message names the file and the problem."""


def fix_length(x: np.ndarray, n_samples: int) -> np.ndarray:
    """Keep the first ``n_samples`` samples, zero-padding at the end if shorter."""
    if len(x) >= n_samples:
        return x[:n_samples]
    return np.concatenate([x, np.zeros(n_samples - len(x), dtype=x.dtype)])


def read_audio(path, sr: int, n_samples: int) -> np.ndarray:
    """Read ``path`` (any format soundfile reads) as float32 mono at ``sr``.

    Channels are averaged; a different file rate is resampled with soxr (HQ);
    the result is cropped from the start or zero-padded to ``n_samples``.
    Raises :class:`AudioError` for a missing, unreadable, empty or non-finite file.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: file not found")
    try:
        x, file_sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as e:  # libsndfile reports format errors in several exception types
        raise AudioError(f"{path}: cannot decode audio ({e})") from e
    if x.shape[0] == 0:
        raise AudioError(f"{path}: the file holds no samples")
    x = x.mean(axis=1)
    if not np.all(np.isfinite(x)):
        raise AudioError(f"{path}: the audio contains NaN or infinite samples")
    if file_sr != sr:
        x = soxr.resample(x, file_sr, sr, quality="HQ").astype(np.float32)
    return fix_length(x, n_samples)
