"""The views' names and framing facts, in one table (:data:`~mvbook.views.framing.VIEW_INFO`) that
the extraction, the segments, the figures and the chapters read.

Mel, Gammatone and the HPSS views share 40 ms frames with a 20 ms hop, not
centred (frame i covers [i·hop, i·hop + 40 ms]; 30 s at 44.1 kHz → 1499
frames); the CQT is centred (frame i is centred on i·hop) with a hop of 1024
samples at 44.1 kHz, 512 at 22.05 kHz (30 s → 1292 frames); ``raw`` is the
waveform, one "frame" per sample. Plain arithmetic only: importing this
module imports no signal-processing or deep-learning library.
Chapter: *Four views*.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import ConfigError, DataError

__all__ = ["VIEWS", "EXTRA_VIEWS", "ALL_VIEWS", "N_BANDS", "WIN_SECONDS", "HOP_SECONDS", "ViewInfo", "VIEW_INFO",
           "check_view", "check_sr", "win_length", "hop_length", "cqt_hop_length", "hop_seconds", "n_frames",
           "frame_times", "segment_length"]

#: the paper's four views (§3.1.2)
VIEWS = ("mel", "gam", "cqt", "raw")
#: HPSS views (FusionNet), not in the paper
EXTRA_VIEWS = ("harm", "perc")
#: every view mvbook extracts
ALL_VIEWS = VIEWS + EXTRA_VIEWS
#: frequency bands of the 2-D views (and of the raw front end's output)
N_BANDS = 64
#: Mel / Gammatone window (§3.1.2)
WIN_SECONDS = 0.04
#: 50 % overlap
HOP_SECONDS = 0.02
_CQT_HOP_44K = 1024          # 512 at 22.05 kHz: the hop scales with sr
_RAW_SEGMENT = {44100: 66650, 22050: 33330}            # the paper's two raw input lengths
_SR_RANGE = (8000, 192000)


class ViewInfo(NamedTuple):
    """What a view is framed like.

    Parameters
    ----------
    label : str
        The view's name in figures ("Mel", "CQT", …).
    axis : str
        The name of its band axis in figures.
    hop : {"stft", "cqt", "sample"}
        Its hop: 20 ms (:func:`hop_length`), :func:`cqt_hop_length`, or one sample.
    centred : bool
        Frame i is centred on i·hop (else it starts there).
    segment : int or None
        Frames of a training input (§3.1.3); ``None`` for ``raw``, whose length depends on the rate.

    Examples
    --------
    >>> VIEW_INFO["cqt"].centred, VIEW_INFO["cqt"].segment
    (True, 65)
    """
    label: str
    axis: str
    hop: str
    centred: bool
    segment: int | None


#: view → its :class:`ViewInfo`: axis, hop, centring and segment length
VIEW_INFO = {
    "mel": ViewInfo("Mel", "Mel band", "stft", False, 75),
    "gam": ViewInfo("Gammatone", "Gammatone channel", "stft", False, 75),
    "cqt": ViewInfo("CQT", "CQT bin", "cqt", True, 65),
    "raw": ViewInfo("Raw", "sample", "sample", False, None),
    "harm": ViewInfo("Harmonic", "Mel band", "stft", False, 75),
    "perc": ViewInfo("Percussive", "Mel band", "stft", False, 75),
}


def check_view(view: str) -> str:
    """``view`` itself, or a :class:`~mvbook.errors.ConfigError` naming the valid views.

    Parameters
    ----------
    view : str
        A view's name.

    Returns
    -------
    str
        ``view``, one of :data:`ALL_VIEWS`.

    Examples
    --------
    >>> check_view("gam")
    'gam'
    """
    if view not in VIEW_INFO:
        raise ConfigError(f"unknown view {view!r}; expected one of {ALL_VIEWS}")
    return view


def check_sr(sr) -> int:
    """``sr`` as an int, or a :class:`~mvbook.errors.ConfigError`: the views are defined for
    integer rates in ``_SR_RANGE``.

    Parameters
    ----------
    sr : int or float
        Sample rate (Hz); an integral float is accepted.

    Returns
    -------
    int
        ``sr``.

    Examples
    --------
    >>> check_sr(22050.0)
    22050
    """
    if int(sr) != sr or not _SR_RANGE[0] <= sr <= _SR_RANGE[1]:
        raise ConfigError(f"unsupported sample rate {sr!r}: need an integer in "
                          f"{_SR_RANGE[0]}..{_SR_RANGE[1]} Hz (the paper uses 44100 and 22050)")
    return int(sr)


def win_length(sr: int) -> int:
    """Mel/Gammatone window in samples, 40 ms (also the FFT size).

    Parameters
    ----------
    sr : int
        Sample rate (Hz).

    Returns
    -------
    int
        ``round(0.04 · sr)``.

    Examples
    --------
    >>> win_length(44100), win_length(22050)
    (1764, 882)
    """
    return round(WIN_SECONDS * check_sr(sr))


def hop_length(sr: int) -> int:
    """Mel/Gammatone hop in samples, 20 ms (50 % overlap).

    Parameters
    ----------
    sr : int
        Sample rate (Hz).

    Returns
    -------
    int
        ``round(0.02 · sr)``.

    Examples
    --------
    >>> hop_length(44100), hop_length(22050)
    (882, 441)
    """
    return round(HOP_SECONDS * check_sr(sr))


def cqt_hop_length(sr: int) -> int:
    """CQT hop: 1024 at 44.1 kHz, 512 at 22.05 kHz; other rates scale it, kept a
    multiple of 32 so that librosa's six-octave multirate CQT can halve it five times.

    Parameters
    ----------
    sr : int
        Sample rate (Hz).

    Returns
    -------
    int
        ``32 · round(32 · sr / 44100)``.

    Examples
    --------
    >>> cqt_hop_length(44100), cqt_hop_length(22050), cqt_hop_length(16000)
    (1024, 512, 384)
    """
    return 32 * round(_CQT_HOP_44K / 32 * check_sr(sr) / 44100)


def _hop_samples(view: str, sr: int) -> int:
    """Samples between consecutive frames of ``view``."""
    hop = VIEW_INFO[check_view(view)].hop
    return {"stft": hop_length, "cqt": cqt_hop_length, "sample": lambda s: 1}[hop](sr)


def hop_seconds(view: str, sr: int) -> float:
    """Time between consecutive frames (samples for ``raw``) of ``view``.

    Parameters
    ----------
    view : str
        One of :data:`ALL_VIEWS`.
    sr : int
        Sample rate (Hz).

    Returns
    -------
    float
        Seconds.

    Examples
    --------
    >>> hop_seconds("mel", 44100), round(hop_seconds("cqt", 22050), 5)
    (0.02, 0.02322)
    """
    return _hop_samples(view, sr) / check_sr(sr)


def n_frames(view: str, n_samples: int, sr: int) -> int:
    """Frames of ``view`` in a clip: ``1 + (n - win) // hop`` for the uncentred Mel and
    Gammatone, ``1 + n // hop`` for the centred CQT, ``n`` for ``raw``.

    Parameters
    ----------
    view : str
        One of :data:`ALL_VIEWS`.
    n_samples : int
        Length of the clip (samples).
    sr : int
        Sample rate (Hz).

    Returns
    -------
    int
        Number of frames (of samples for ``raw``).

    Examples
    --------
    >>> n_frames("mel", 30 * 44100, 44100), n_frames("cqt", 30 * 44100, 44100)
    (1499, 1292)
    """
    info = VIEW_INFO[check_view(view)]
    if info.hop == "sample":
        return int(n_samples)
    if info.centred:
        return 1 + n_samples // _hop_samples(view, sr)
    if n_samples < win_length(sr):
        raise DataError(f"{n_samples} samples is shorter than one {view} window "
                        f"({win_length(sr)} samples at {sr} Hz)")
    return 1 + (n_samples - win_length(sr)) // hop_length(sr)


def frame_times(view: str, n: int, sr: int) -> np.ndarray:
    """Centre time of each frame of ``view`` (of each sample for ``raw``).

    Parameters
    ----------
    view : str
        One of :data:`ALL_VIEWS`.
    n : int
        Number of frames.
    sr : int
        Sample rate (Hz).

    Returns
    -------
    numpy.ndarray, float64, shape (n,)
        Seconds from the start of the clip.

    Examples
    --------
    >>> frame_times("mel", 3, 44100)        # 40 ms windows every 20 ms, uncentred
    array([0.02, 0.04, 0.06])
    """
    info = VIEW_INFO[check_view(view)]
    offset = 0.0 if info.centred or info.hop == "sample" else WIN_SECONDS / 2
    return np.arange(n) * hop_seconds(view, sr) + offset


def segment_length(view: str, sr: int) -> int:
    """The paper's training input length (§3.1.3), ≈1.51 s in every view.

    Parameters
    ----------
    view : str
        One of :data:`ALL_VIEWS`.
    sr : int
        Sample rate (Hz).

    Returns
    -------
    int
        75 Mel or Gammatone frames, 65 CQT frames, or 66 650 raw samples at 44.1 kHz
        (33 330 at 22.05 kHz; other rates scale 66 650 by ``sr / 44100``).

    Examples
    --------
    >>> segment_length("mel", 44100), segment_length("cqt", 44100), segment_length("raw", 22050)
    (75, 65, 33330)
    """
    sr = check_sr(sr)
    segment = VIEW_INFO[check_view(view)].segment
    if segment is None:
        return _RAW_SEGMENT.get(sr, round(_RAW_SEGMENT[44100] * sr / 44100))
    return segment
