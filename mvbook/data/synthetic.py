"""A synthetic multi-view task: the offline default dataset (companion to §2.1
and §3.1.1; it stands in for the real corpora where they cannot be had).

Each clip (22.05 kHz, 3 s) mixes three sound components, and its class is the
combination of three binary factors, one carried by each component, chosen so
that the evidence for each factor lives in a different view (§2.1):

===========  ==========================================  ==========================
factor       component and values                        which views see it
===========  ==========================================  ==========================
contour      a repeating four-note melody (sine + half-  CQT (semitone bins, up to
             amplitude 2nd harmonic, 110-520 Hz) whose   1.24 kHz): clearly. Mel
             notes step one semitone per note:           (~51 Hz channels there)
             ``rise`` (0, 1, 2, 3) or ``fall``           and Gammatone: weakly.
             (3, 2, 1, 0)
envelope     band-pass noise with a formant (Gaussian    Mel, Gammatone, raw;
             in log frequency, σ = 0.2 octave) at        invisible to the CQT,
             ``low`` ≈ 4.5 kHz or ``high`` ≈ 8 kHz       which stops at 1.24 kHz.
phase        a harmonic complex (F0 100-200 Hz,          raw only: both values have
             harmonics in 0.8-3 kHz, equal amplitudes)   the same magnitude spectrum
             in cosine phase (``sharp``: a click train)  in every 40 ms frame, so
             or Schroeder phase (``smooth``: a flat      Mel, Gammatone and CQT,
             envelope)                                   all magnitude-only, cannot
                                                         tell them apart.
===========  ==========================================  ==========================

label = 4·contour + 2·envelope + phase (8 classes, named e.g. ``rise-low-sharp``).
So no spectrogram view can exceed 4 classes' worth of evidence (CQT: contour;
Mel/Gammatone: envelope plus a blurred contour), the waveform carries all three
but must learn them from raw samples, and fusing views pays off.

Nuisance, drawn per clip and independent of the class: melody base pitch
(one octave), note length (0.2-0.3 s) and pattern onset, per-note detuning
(σ = 0.15 semitone), complex F0 and start, formant position (±0.15 octave),
component levels (0 to -6 dB each), pink background noise (10-25 dB SNR) and
overall level (0 to -20 dB). Every factor is present throughout the clip, so
any 1.5 s training window holds the whole class evidence.

Protocol: 5 folds × 8 classes × 8 clips = 320 clips; clip ``i`` has class
``i % 8`` and fold ``(i // 8) % 5 + 1`` and is a pure function of ``i`` and
:data:`SEED` (``numpy.random.default_rng([SEED, i])``). Validation: 10 % of
each class's training clips (3 of 32), the group of a clip being its own key.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Clip, Dataset

__all__ = ["Nuisance", "SEED", "SR", "SECONDS", "N_SAMPLES", "N_FOLDS", "PHASES", "COMPLEX_BAND_HZ", "factors",
           "draw_nuisance", "melody", "harmonic_complex", "render", "SyntheticDataset", "load_synthetic"]

SR = 22050
SECONDS = 3.0
N_SAMPLES = round(SR * SECONDS)
N_FOLDS = 5
_PER_CLASS_PER_FOLD = 8
#: seed of every clip's nuisance, ``numpy.random.default_rng([SEED, i])``
SEED = 2021
_CONTOURS = ("rise", "fall")
_ENVELOPES = ("low", "high")
PHASES = ("sharp", "smooth")
_CLASSES = tuple(f"{c}-{e}-{p}" for c in _CONTOURS for e in _ENVELOPES for p in PHASES)
_STEPS = {0: (0, 1, 2, 3), 1: (3, 2, 1, 0)}     # semitones above the base pitch
_FORMANT_HZ = {0: 4500.0, 1: 8000.0}
#: band of the harmonic complex (Hz)
COMPLEX_BAND_HZ = (800.0, 3000.0)
_FREQS = np.fft.rfftfreq(N_SAMPLES, 1 / SR)
_LOG2_FREQS = np.log2(np.maximum(_FREQS, 1.0))
_PINK = 1 / np.sqrt(np.maximum(_FREQS, 20.0))     # 1/f power above 20 Hz


def factors(label: int) -> tuple[int, int, int]:
    """The three binary factors of a class label.

    Parameters
    ----------
    label : int
        A class, 0 to 7.

    Returns
    -------
    tuple of int
        ``(contour, envelope, phase)``, each 0 or 1.

    Examples
    --------
    >>> factors(5)
    (1, 0, 1)
    """
    return (label >> 2) & 1, (label >> 1) & 1, label & 1


@dataclass(frozen=True)
class Nuisance:
    """Everything about a clip that is not its class."""

    f0: float               # melody base pitch, Hz
    note_s: float           # note length, s
    onset_s: float          # where in the 4-note pattern the clip starts, s
    detune: tuple           # per-note detuning, semitones
    period: int             # period of the harmonic complex, samples
    shift: int              # start offset of the complex, samples
    formant_oct: float      # formant position offset, octaves
    levels_db: tuple        # melody, complex, formant noise
    snr_db: float
    gain_db: float
    noise_seed: int


def draw_nuisance(i: int) -> Nuisance:
    """The nuisance of clip ``i``: a pure function of ``(SEED, i)``.

    Parameters
    ----------
    i : int
        The clip's index.

    Returns
    -------
    Nuisance
    """
    rng = np.random.default_rng([SEED, i])
    note_s = rng.uniform(0.2, 0.3)
    period = int(rng.integers(110, 221))
    return Nuisance(f0=110.0 * 2 ** rng.uniform(0, 1), note_s=note_s,
                    onset_s=rng.uniform(0, 4 * note_s),
                    detune=tuple(rng.normal(0, 0.15, 24)), period=period,
                    shift=int(rng.integers(period)), formant_oct=rng.uniform(-0.15, 0.15),
                    levels_db=tuple(rng.uniform(-6, 0, 3)), snr_db=rng.uniform(10, 25),
                    gain_db=rng.uniform(-20, 0), noise_seed=int(rng.integers(2**31)))


def melody(contour: int, nz: Nuisance) -> np.ndarray:
    """The melody component: a repeating 4-note pattern, one semitone per step, phase-continuous.

    Parameters
    ----------
    contour : {0, 1}
        Rise (0) or fall (1).
    nz : Nuisance
        The clip's nuisance (base pitch, note length, onset, detuning).

    Returns
    -------
    numpy.ndarray, shape (N_SAMPLES,)
    """
    note_len = round(nz.note_s * SR)
    start = round(nz.onset_s * SR)
    n = np.arange((start + N_SAMPLES) // note_len + 1)
    semis = np.array(_STEPS[contour])[n % 4] + np.array(nz.detune)[n % len(nz.detune)]
    freq = np.repeat(nz.f0 * 2 ** (semis / 12), note_len)[start:start + N_SAMPLES]
    phi = np.mod(2 * np.pi / SR * np.cumsum(freq), 2 * np.pi).astype(np.float32)
    one_note = np.sqrt(np.sin(np.pi * np.arange(note_len) / note_len))
    envelope = np.tile(one_note, len(n))[start:start + N_SAMPLES]
    return envelope * np.sin(phi) * (1 + np.cos(phi))     # sin φ + ½ sin 2φ


def harmonic_complex(phase: int, nz: Nuisance) -> np.ndarray:
    """The harmonic-complex component: equal-amplitude harmonics in :data:`COMPLEX_BAND_HZ`.

    Built from one period and tiled.

    Parameters
    ----------
    phase : {0, 1}
        Cosine phases (0, ``sharp``: a click train) or Schroeder phases
        (1, ``smooth``: a flat envelope).
    nz : Nuisance
        The clip's nuisance (its ``period`` and ``shift``).

    Returns
    -------
    numpy.ndarray, shape (N_SAMPLES,)
    """
    f0 = SR / nz.period
    k = np.arange(int(np.ceil(COMPLEX_BAND_HZ[0] / f0)), int(COMPLEX_BAND_HZ[1] / f0) + 1)
    n = np.arange(1, len(k) + 1)
    spectrum = np.zeros(nz.period // 2 + 1, complex)
    spectrum[k] = np.exp(1j * np.pi * n * (n - 1) / len(k)) if phase else 1.0
    one_period = np.fft.irfft(spectrum, n=nz.period)
    reps = N_SAMPLES // nz.period + 2
    return np.tile(one_period, reps)[nz.shift:nz.shift + N_SAMPLES]


def _shaped_noise(rng, gain: np.ndarray) -> np.ndarray:
    """Gaussian noise with amplitude spectrum ``gain`` (over ``_FREQS``),
    drawn directly as a complex Gaussian spectrum."""
    re, im = rng.standard_normal((2, len(_FREQS)))
    return np.fft.irfft((re + 1j * im) * gain, n=N_SAMPLES)


def _unit_rms(x: np.ndarray) -> np.ndarray:
    return x / np.sqrt(np.mean(x**2))


def render(label: int, nz: Nuisance) -> np.ndarray:
    """The waveform of a clip.

    Parameters
    ----------
    label : int
        Its class, 0 to 7.
    nz : Nuisance
        Its nuisance (:func:`draw_nuisance`).

    Returns
    -------
    numpy.ndarray, float32, shape (N_SAMPLES,)
    """
    contour, envelope, phase = factors(label)
    rng = np.random.default_rng(nz.noise_seed)
    fc = _FORMANT_HZ[envelope] * 2**nz.formant_oct
    formant = _shaped_noise(rng, np.exp(-0.5 * ((_LOG2_FREQS - np.log2(fc)) / 0.2) ** 2))
    parts = (melody(contour, nz), harmonic_complex(phase, nz), formant)
    x = sum(10 ** (db / 20) * _unit_rms(p) for p, db in zip(parts, nz.levels_db))
    pink = _unit_rms(_shaped_noise(rng, _PINK))
    x = x + np.sqrt(np.mean(x**2)) * 10 ** (-nz.snr_db / 20) * pink
    return (0.05 * 10 ** (nz.gain_db / 20) * _unit_rms(x)).astype(np.float32)


class SyntheticDataset(Dataset):
    """The synthetic task: clips are rendered on demand, no files."""

    def load(self, i: int) -> np.ndarray:
        return render(self.clips[i].label, draw_nuisance(i))


def load_synthetic(root=None) -> SyntheticDataset:
    """The 320-clip synthetic dataset (``root`` is ignored: nothing is read)."""
    n_classes = len(_CLASSES)
    clips = [Clip(key=f"synthetic-{i:04d}", path=None, label=i % n_classes,
                  fold=(i // n_classes) % N_FOLDS + 1, group=f"synthetic-{i:04d}")
             for i in range(n_classes * N_FOLDS * _PER_CLASS_PER_FOLD)]
    return SyntheticDataset("synthetic", SR, SECONDS, _CLASSES, clips, root=None,
                            n_folds=N_FOLDS, val_per_class=0.1)
