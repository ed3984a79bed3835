"""The four views of a clip (paper §2.1 and §3.1.2), their fast paths and an on-disk cache.

========  ===========================================================  ==========
view      what                                                         shape
========  ===========================================================  ==========
``mel``   log Mel spectrogram, 64 Slaney filters from 0 Hz to Nyquist  T × 64
``gam``   log Gammatone spectrogram, ``gammatone.gtgram`` with 64      T × 64
          ERB-spaced filters from 50 Hz to Nyquist
``cqt``   log constant-Q transform (``librosa.cqt``), 64 bins,         T × 64
          12 per octave, librosa's default f_min (C1 ≈ 32.7 Hz)
``raw``   the waveform, float32                                        samples
``harm``  log Mel spectrogram of the harmonic part (median-filtering   T × 64
          HPSS of the Mel view's STFT, ``librosa.decompose.hpss``)
``perc``  the same for the percussive part                             T × 64
========  ===========================================================  ==========

``harm`` and ``perc`` are not views of the paper: they are two of the inputs of
FusionNet (Ng et al.), offered as extra views (``EXTRA_VIEWS``). They share the
Mel view's frames, filters and log rule; their STFT magnitudes add up to the
Mel view's (HPSS's two soft masks sum to one).

Mel and Gammatone frames are 40 ms long with a 20 ms hop and are not centred
(30 s at 44.1 kHz → 1499 frames); the CQT is centred with a hop of 1024
samples at 44.1 kHz, 512 at 22.05 kHz (30 s → 1292 frames).

**The log rule.** Every 2D view is ``log(P + LOG_EPS)`` with ``LOG_EPS = 1e-10``,
where ``P`` is the *power* the view measures: the Mel-filtered power spectrum,
the mean square of each Gammatone channel over the frame (``gtgram``'s RMS,
squared) and ``|C|²`` of the CQT. ``1e-10`` is -100 dB re. a full-scale
power, about the quantisation floor of 16-bit audio, so digital silence
(ESC-50 pads its clips with it) maps to ``log(1e-10) ≈ -23.03`` instead of ``-inf``.
(The Mel power is librosa's unnormalised ``|STFT|²``, about ``Σ w² ≈ 660`` times
a per-sample power at 44.1 kHz, so there the floor sits lower still.) Per-band
standardisation (:class:`Standardizer`) then removes each view's offset and scale.

Two paths compute each 2D view: ``method="reference"`` calls librosa
(``melspectrogram``, ``cqt``) and ``gammatone.gtgram`` directly; ``"fast"``
(the default, and what :func:`extract_batch` and :func:`.load_views` use) is:

- ``mel``: a batched ``torch.stft`` and the same librosa filter matrix, with
  librosa's precisions (FFT in float64, the rest float32; CUDA when available);
- ``gam``: the gtgram filterbank itself (same coefficients, same cascade of four
  biquads per channel, float64), run by a compiled numba kernel that loops over
  time with all 64 channels in the inner loop and sums squares straight into
  frames, one clip per CPU thread; equal to ``gtgram`` to rounding;
- ``cqt``: ``librosa.cqt`` on a whole batch of clips at once (librosa's own
  multirate algorithm is hard to beat; batching amortises its per-call setup).

Fast minus reference, max abs error of the log outputs (tested on synthetic
signals and real ESC-10 clips): ``mel`` ≤ 1e-4 (measured 2e-6), ``gam`` ≤ 1e-5
(measured 0 after rounding to float32; < 1e-9 before), ``cqt`` identical.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from math import gcd

import librosa
import numba
import numpy as np
import torch
from gammatone.filters import centre_freqs, make_erb_filters
from gammatone.gtgram import gtgram

from .. import numba_cache_dir
from ..device import resolve_device
from ..errors import ConfigError, DataError
from .framing import (
    EXTRA_VIEWS,
    HOP_SECONDS,
    N_BANDS,
    WIN_SECONDS,
    check_sr,
    check_view,
    cqt_hop_length,
    hop_length,
    n_frames,
    win_length,
)

__all__ = ["HPSS_KERNEL", "GAM_FMIN", "CQT_BINS_PER_OCTAVE", "LOG_EPS", "FEATURE_VERSION", "view_params", "log_power",
           "reference_power", "hpss_power", "gammatone_power", "extract", "extract_batch", "Standardizer"]

numba_cache_dir()       # before numba decorates a kernel (here or in librosa): cached under the feature cache

HPSS_KERNEL = 31            # median filter length, frames and bins (librosa's default)
GAM_FMIN = 50.0             # Hz; gtgram(wave, sr, 0.04, 0.02, 64, 50)
CQT_BINS_PER_OCTAVE = 12
LOG_EPS = 1e-10
FEATURE_VERSION = 1         # bump when an algorithm changes: it is part of every cache key


# --- parameters ---------------------------------------------------------------------------

def view_params(view: str, sr: int) -> dict:
    """Every parameter that determines ``view`` at ``sr`` (part of the cache key).

    Parameters
    ----------
    view : str
        One of :data:`~mvbook.views.framing.ALL_VIEWS`.
    sr : int
        Sample rate (Hz).

    Returns
    -------
    dict
        Parameter name → value (JSON-able).

    Examples
    --------
    >>> p = view_params("mel", 44100)
    >>> p["win"], p["hop"], p["n_fft"]
    (1764, 882, 1764)
    """
    sr = check_sr(sr)
    common = {"view": check_view(view), "sr": sr, "n_bands": N_BANDS, "log_eps": LOG_EPS,
              "version": FEATURE_VERSION}
    if view in ("mel", "gam", "harm", "perc"):
        common.update(win=win_length(sr), hop=hop_length(sr), center=False, fmax=sr / 2)
    if view in ("mel", "harm", "perc"):
        common.update(n_fft=win_length(sr), window="hann", power=2, fmin=0.0, norm="slaney",
                      htk=False)
    if view in EXTRA_VIEWS:
        common.update(hpss_kernel=HPSS_KERNEL, hpss_power=2.0, hpss_margin=1.0)
    elif view == "gam":
        common.update(fmin=GAM_FMIN, value="mean square")
    elif view == "cqt":
        common.update(hop=cqt_hop_length(sr), bins_per_octave=CQT_BINS_PER_OCTAVE,
                      fmin=float(librosa.note_to_hz("C1")), center=True, value="|C|^2")
    else:
        common.update(dtype="float32", n_bands=None, log_eps=None)
    return common


def log_power(P) -> np.ndarray:
    """The log rule of this module: ``log(P + LOG_EPS)`` as float32.

    Parameters
    ----------
    P : array_like
        Power, any shape, non-negative.

    Returns
    -------
    np.ndarray
        float32, the shape of ``P``; computed in float64, then rounded.

    Examples
    --------
    >>> bool(log_power([0.0])[0] == np.float32(np.log(LOG_EPS)))
    True
    """
    return np.log(np.asarray(P, dtype=np.float64) + LOG_EPS).astype(np.float32)


# --- reference path: the libraries, called directly ------------------------------------

def reference_power(view: str, wave: np.ndarray, sr: int) -> np.ndarray:
    """The power ``P`` of a 2D view, (bands, frames), straight from librosa / gtgram
    (the slow reference the fast paths are tested against).

    Parameters
    ----------
    view : str
        ``"mel"``, ``"gam"`` or ``"cqt"``.
    wave : numpy.ndarray
        A mono clip.
    sr : int
        Sample rate (Hz).

    Returns
    -------
    numpy.ndarray, (bands, frames)
        Power, before the log.
    """
    if view == "mel":
        n = win_length(sr)
        return librosa.feature.melspectrogram(
            y=wave, sr=sr, n_fft=n, hop_length=hop_length(sr), win_length=n, window="hann",
            center=False, power=2.0, n_mels=N_BANDS, fmin=0.0, fmax=sr / 2)
    if view == "gam":
        return gtgram(wave, sr, WIN_SECONDS, HOP_SECONDS, N_BANDS, GAM_FMIN) ** 2
    if view == "cqt":
        C = librosa.cqt(wave, sr=sr, hop_length=cqt_hop_length(sr), n_bins=N_BANDS,
                        bins_per_octave=CQT_BINS_PER_OCTAVE)
        return np.abs(C) ** 2
    if view in EXTRA_VIEWS:
        return hpss_power(view, wave[None], sr)[0].T
    raise ConfigError(f"{view!r} is not a 2D view")


def hpss_power(view: str, waves: np.ndarray, sr: int) -> np.ndarray:
    """Mel power of the harmonic (``harm``) or percussive (``perc``) part:
    the Mel view's STFT, split by ``librosa.decompose.hpss`` (median filters
    of ``HPSS_KERNEL`` frames / bins, soft masks), then the Mel filters.

    Parameters
    ----------
    view : {"harm", "perc"}
    waves : np.ndarray
        (N, n_samples) clips.
    sr : int
        Sampling rate, Hz.

    Returns
    -------
    np.ndarray
        float32 power, (N, frames, 64), frames as the Mel view's.
    """
    n = win_length(sr)
    S = librosa.stft(np.asarray(waves, dtype=np.float32), n_fft=n, hop_length=hop_length(sr), win_length=n,
                     window="hann", center=False)
    part = librosa.decompose.hpss(np.abs(S), kernel_size=HPSS_KERNEL)[0 if view == "harm" else 1]
    return np.swapaxes(_mel_filters(sr) @ (part ** 2), -1, -2).astype(np.float32)


# --- fast Mel: batched torch STFT ------------------------------------------------------

@lru_cache(maxsize=8)
def _mel_filters(sr: int) -> np.ndarray:
    """librosa's default (Slaney) Mel filters, 64 × (n_fft/2 + 1), 0 Hz to Nyquist."""
    return librosa.filters.mel(sr=sr, n_fft=win_length(sr), n_mels=N_BANDS, fmin=0.0,
                               fmax=sr / 2)


def _mel_power_torch(waves: np.ndarray, sr: int, device) -> torch.Tensor:
    """Mel power, (N, frames, 64), for a batch of clips: periodic Hann window
    (librosa's), FFT size = window, uncentred frames, ``|X|²``, then the filters.
    As in librosa, the windowed FFT runs in float64 (librosa's window is float64)
    and is rounded to complex64; power and filters are float32. (A float32 FFT
    would differ from librosa by up to 1e-2 in log power near the floor.)"""
    n = win_length(sr)
    x = torch.as_tensor(waves, device=device).double()
    X = torch.stft(x, n_fft=n, hop_length=hop_length(sr), win_length=n,
                   window=torch.hann_window(n, periodic=True, dtype=torch.float64, device=device),
                   center=False, return_complex=True).to(torch.complex64)
    power = X.real ** 2 + X.imag ** 2                       # (N, n_fft/2 + 1, frames)
    fb = torch.as_tensor(_mel_filters(sr), device=device)
    return (fb @ power).transpose(1, 2)


# --- fast Gammatone: the gtgram filterbank, compiled -----------------------------------

@lru_cache(maxsize=8)
def _gammatone_coefficients(sr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """gtgram's filterbank (``make_erb_filters`` on ``centre_freqs``, low to high):
    the first-order numerators ``T + A_k z⁻¹`` of the four biquads, their common
    denominator ``1 + B1 z⁻¹ + B2 z⁻²`` and the inverse gain, each per channel."""
    fc = np.flipud(make_erb_filters(sr, centre_freqs(sr, N_BANDS, GAM_FMIN)))
    a0, a1, b1, b2 = fc[:, 0], fc[:, 1:5].T, fc[:, 7], fc[:, 8]
    a0, a1, b1, b2, inv_gain = (np.ascontiguousarray(c, dtype=np.float64) for c in (a0, a1, b1, b2, 1 / fc[:, 9]))
    return a0, a1, b1, b2, inv_gain


@numba.njit(nogil=True, cache=True, fastmath=False)
def _gammatone_blocks(x, a0, a1, b1, b2, inv_gain, n_used, block, out):
    """Sum of squared channel outputs over consecutive ``block``-sample blocks.

    Per channel, the cascade of four biquads that ``erb_filterbank`` applies with
    ``scipy.signal.lfilter`` (transposed direct form II, b = [T, A_k, 0],
    a = [1, B1, B2]; ``s`` holds the two states of each), then the gain; float64
    like the reference. The channel loop is innermost so that it vectorises; the
    local copies of the coefficients tell the compiler that nothing aliases them
    (about 20 % faster).
    """
    a0, a1, b1, b2, inv_gain = a0.copy(), a1.copy(), b1.copy(), b2.copy(), inv_gain.copy()
    C = a0.shape[0]
    s = np.zeros((8, C))
    acc = np.zeros(C)
    filled = 0
    for n in range(n_used):
        xn = np.float64(x[n])
        for c in range(C):
            y1 = a0[c] * xn + s[0, c]
            s[0, c] = a1[0, c] * xn - b1[c] * y1 + s[1, c]
            s[1, c] = -b2[c] * y1
            y2 = a0[c] * y1 + s[2, c]
            s[2, c] = a1[1, c] * y1 - b1[c] * y2 + s[3, c]
            s[3, c] = -b2[c] * y2
            y3 = a0[c] * y2 + s[4, c]
            s[4, c] = a1[2, c] * y2 - b1[c] * y3 + s[5, c]
            s[5, c] = -b2[c] * y3
            y4 = a0[c] * y3 + s[6, c]
            s[6, c] = a1[3, c] * y3 - b1[c] * y4 + s[7, c]
            s[7, c] = -b2[c] * y4
            v = y4 * inv_gain[c]
            acc[c] += v * v
        filled += 1
        if filled == block:
            out[n // block, :] = acc
            acc[:] = 0.0
            filled = 0


def gammatone_power(wave: np.ndarray, sr: int) -> np.ndarray:
    """Gammatone power, (frames, 64): the mean square of each gtgram channel over
    each 40 ms frame (= ``gtgram(...)**2``). Frames are sums of ``gcd(win, hop)``-
    sample blocks, added directly (no cumulative sums, so no cancellation).

    Parameters
    ----------
    wave : numpy.ndarray
        A mono clip.
    sr : int
        Sample rate (Hz).

    Returns
    -------
    numpy.ndarray, (frames, 64)
        Power per frame and channel.
    """
    win, hop = win_length(sr), hop_length(sr)
    T = n_frames("gam", len(wave), sr)
    block = gcd(win, hop)
    n_used = (T - 1) * hop + win
    blocks = np.zeros((n_used // block, N_BANDS))
    _gammatone_blocks(np.ascontiguousarray(wave), *_gammatone_coefficients(sr), n_used, block,
                      blocks)
    starts = np.arange(T) * (hop // block)
    # the frame's blocks added in order, the first the start (as 0 + first: the power is never -0)
    return sum((blocks[starts + r] for r in range(1, win // block)), blocks[starts]) / win


# --- public extraction -----------------------------------------------------------------

def _check_waves(waves, ndim: int) -> np.ndarray:
    waves = np.asarray(waves, dtype=np.float32)
    if waves.ndim != ndim or waves.size == 0:
        raise DataError(f"expected a non-empty {ndim}-D float array of samples, "
                        f"got shape {waves.shape}")
    return waves


def _n_cpus() -> int:
    """CPUs this process may use (the container's share on Linux)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def extract(view: str, wave, sr: int, method: str = "fast") -> np.ndarray:
    """One view of one mono clip (§2.1). Chapter: *Four views*.

    Parameters
    ----------
    view : str
        ``mel``, ``gam``, ``cqt``, ``raw`` (or the HPSS views ``harm``, ``perc``).
    wave : array_like, shape (n_samples,)
        The clip, mono.
    sr : int
        Its sample rate.
    method : {"fast", "reference"}
        The fast paths (default), or librosa / gtgram called directly.

    Returns
    -------
    np.ndarray, float32
        (frames, 64) log power for the 2D views (the log rule of the module
        docstring; frames as :func:`mvbook.views.framing.n_frames`), the waveform
        itself for ``raw``.

    Examples
    --------
    >>> wave = np.sin(2 * np.pi * 440 * np.arange(22050) / 22050)
    >>> extract("mel", wave, 22050).shape, extract("cqt", wave, 22050).shape
    ((49, 64), (44, 64))
    >>> bool(np.abs(extract("mel", wave, 22050) - extract("mel", wave, 22050, "reference")).max() < 1e-4)
    True
    """
    check_view(view), check_sr(sr)
    wave = _check_waves(wave, 1)
    if method == "reference":
        return wave.copy() if view == "raw" else log_power(reference_power(view, wave, sr).T)
    if method != "fast":
        raise ConfigError(f"unknown method {method!r}; expected 'fast' or 'reference'")
    return extract_batch(view, wave[None], sr)[0]


def extract_batch(view: str, waves, sr: int, device=None) -> np.ndarray:
    """The fast path over a batch of equal-length clips, (N, samples) →
    (N, frames, 64) float32 (``raw``: the float32 waves). Gammatone runs on CPU
    threads (one clip each), the CQT in librosa.

    Parameters
    ----------
    view : str
        One of :data:`~mvbook.views.framing.ALL_VIEWS`.
    waves : array_like, (N, samples)
        Clips of equal length.
    sr : int
        Sample rate (Hz).
    device : str or torch.device, optional
        Where the Mel STFT runs (default: CUDA when available).

    Returns
    -------
    numpy.ndarray, float32
        (N, frames, 64) log-scaled views, or the (N, samples) waves for ``raw``.
    """
    check_view(view), check_sr(sr)
    waves = _check_waves(waves, 2)
    if view == "raw":
        return waves.copy()
    if view == "mel":
        P = _mel_power_torch(waves, sr, resolve_device(device or "auto"))
        return torch.log(P + LOG_EPS).cpu().numpy()
    if view in EXTRA_VIEWS:
        return log_power(hpss_power(view, waves, sr))
    if view == "gam":
        with ThreadPoolExecutor(max_workers=min(len(waves), _n_cpus())) as pool:
            return np.stack([log_power(P) for P in pool.map(lambda w: gammatone_power(w, sr), waves)])
    return log_power(np.swapaxes(reference_power("cqt", waves, sr), 1, 2))


# --- per-band standardisation --------------------------------------------------------------

class Standardizer:
    """Per-band standardisation with training-set statistics (the paper does not
    say how it normalises; SPEC §1). ``fit`` sees only the training clips; bands
    with zero spread keep a unit divisor. ``raw`` is not standardised: the waveform
    is already in [-1, 1] and the 1D network's first layers learn its scale.

    Parameters
    ----------
    mean : array_like, (64,)
        Per-band mean.
    std : array_like, (64,)
        Per-band standard deviation.

    Examples
    --------
    >>> s = Standardizer([1.0, 2.0], [2.0, 1.0])
    >>> s(np.array([[3.0, 2.0]], dtype=np.float32)).tolist()
    [[1.0, 0.0]]
    """

    MIN_STD = 1e-6

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)

    @classmethod
    def fit(cls, X, idx, chunk: int = 64) -> "Standardizer":
        """Mean and (population) standard deviation per band over all frames of
        the clips ``X[idx]``, accumulated in float64 a chunk of clips at a time."""
        idx = np.sort(np.asarray(idx, dtype=np.int64))
        if idx.size == 0:
            raise ConfigError("Standardizer.fit needs at least one clip index")
        s1 = s2 = 0.0
        count = 0
        for start in range(0, idx.size, chunk):
            x = np.asarray(X[idx[start:start + chunk]], dtype=np.float64).reshape(-1, X.shape[-1])
            s1, s2, count = s1 + x.sum(0), s2 + (x * x).sum(0), count + len(x)
        mean = s1 / count
        std = np.sqrt(np.maximum(s2 / count - mean ** 2, 0.0))
        return cls(mean, np.where(std < cls.MIN_STD, 1.0, std))

    def __call__(self, x):
        """``(x - mean) / std`` over the last (band) axis; numpy in, numpy out; torch in, torch out."""
        if isinstance(x, torch.Tensor):
            mean = torch.as_tensor(self.mean, device=x.device)
            return (x - mean) / torch.as_tensor(self.std, device=x.device)
        return ((np.asarray(x) - self.mean) / self.std).astype(np.float32)

    def state_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_state(cls, state: dict) -> "Standardizer":
        return cls(state["mean"], state["std"])
