"""Reading audio files, strictly, as fixed-length mono waveforms (paper
§3.1.1: stereo DCASE2016 is "reduced to monaural"; every dataset has a fixed
clip length).

What :func:`read_audio` does with each kind of file (every refusal is an
:class:`AudioError` whose message reads ``<what> (<file>): <hint>``):

=============================  ===============================================
file                           behaviour
=============================  ===============================================
missing, zero bytes            refused (``audio file not found`` / ``empty``)
not audio (text, garbage)      refused: soundfile cannot decode it
header only, no sample data    refused: ``audio file holds no samples`` (a
                               header promising data it lacks is truncated)
truncated (WAV, AU: fewer      refused: ``truncated audio file``, with the
bytes than the header's data   frames the header promises and those present
size; other formats: fewer     (libsndfile alone silently returns the frames
frames decoded than promised)  that are there)
NaN or infinite samples        refused
float samples outside [-1, 1]  refused (the integer formats cannot exceed it)
stereo / multichannel          channels averaged to mono, for every dataset
                               (the paper's DCASE2016 protocol, harmless for
                               the mono ESC-50 and GTZAN)
another sample rate            resampled to the dataset's rate with soxr (HQ)
                               before the length rule below
shorter than the clip length   zero-padded at the end; if the padding exceeds
                               :data:`TOLERANCE` (5 %) of the clip length a
                               :class:`.ClipWarning` names the file and the
                               padding share; below :data:`MIN_FRACTION`
                               (50 %) of the clip length the clip is refused
                               (``clip too short``)
longer than the clip length    cropped to its start; a :class:`.ClipWarning`
                               if more than :data:`TOLERANCE` is dropped
=============================  ===============================================

The 5 % tolerance absorbs the releases' own irregularities (GTZAN's files run
29.93-30.65 s; ESC-50 and DCASE2016 files are exact) without a warning.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ..errors import DataError

__all__ = ["MIN_FRACTION", "TOLERANCE", "AudioError", "ClipWarning", "decode", "read_audio"]

#: length deviations up to this share of the clip length are fixed silently
TOLERANCE = 0.05
#: a clip shorter than this share of the clip length is refused
MIN_FRACTION = 0.5
_FLOAT_SUBTYPES = {"FLOAT", "DOUBLE"}
_AU_BYTES = {1: 1, 2: 1, 3: 2, 4: 3, 5: 4, 6: 4, 7: 8, 27: 1}   # AU encoding → bytes per sample
_REFETCH = "re-copy or re-download the clip"


class AudioError(DataError):
    """An audio file cannot be used (a ``ValueError``, so the CLI prints it as an
    ``error:`` line). ``str(e)`` is ``<what> (<file>): <hint>``;
    ``e.path``, ``e.what`` and ``e.hint`` hold the parts."""

    def __init__(self, path, what: str, hint: str = _REFETCH):
        self.path, self.what, self.hint = Path(path), what, hint
        super().__init__(f"{what} ({path}): {hint}")

    def __reduce__(self):                      # picklable across worker processes
        return type(self), (self.path, self.what, self.hint)

    @property
    def reason(self) -> str:
        """The message without the file, ``<what>: <hint>``."""
        return f"{self.what}: {self.hint}"


class ClipWarning(UserWarning):
    """A clip was used but padded or cropped by more than :data:`TOLERANCE`."""


def _wav_promise(head: bytes, size: int):
    """``(promised data bytes, bytes present, bytes per frame)`` of a RIFF/WAVE file, else None."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, frame = 12, None
    while pos + 8 <= len(head):
        cid, n = head[pos:pos + 4], struct.unpack("<I", head[pos + 4:pos + 8])[0]
        if cid == b"fmt " and pos + 22 <= len(head):
            frame = struct.unpack("<H", head[pos + 20:pos + 22])[0]   # block align
        if cid == b"data":
            return (n, size - pos - 8, frame) if frame and n != 0xFFFFFFFF else None
        pos += 8 + n + (n & 1)
    return None


def _au_promise(head: bytes, size: int):
    """``(promised data bytes, bytes present, bytes per frame)`` of a Sun AU file, else None."""
    if len(head) < 24 or head[:4] != b".snd":
        return None
    offset, n, enc, _, channels = struct.unpack(">IIIII", head[4:24])
    if n == 0xFFFFFFFF or enc not in _AU_BYTES or channels == 0:
        return None
    return n, size - offset, _AU_BYTES[enc] * channels


def _promised_frames(path: Path, size: int):
    """``(frames the header promises, frames the bytes hold)`` for WAV and AU, else None."""
    with open(path, "rb") as f:
        head = f.read(4096)
    p = _wav_promise(head, size) or _au_promise(head, size)
    if p is None:
        return None
    n, present, frame = p
    return n // frame, max(present, 0) // frame


def decode(path) -> tuple[np.ndarray, int, str]:
    """``(samples (frames, channels) float32, sample rate, subtype)`` of ``path``,
    every frame the header promises, or :class:`AudioError`."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "audio file not found", "check the data root or re-download the dataset")
    size = path.stat().st_size
    if size == 0:
        raise AudioError(path, "empty audio file", f"the file has 0 bytes; {_REFETCH}")
    promise = _promised_frames(path, size)
    try:
        with sf.SoundFile(path) as f:
            expected, sr, subtype = f.frames, f.samplerate, f.subtype
            x = f.read(dtype="float32", always_2d=True)
    except Exception as e:  # libsndfile reports format errors in several exception types
        raise AudioError(path, "cannot decode audio file", f"soundfile says {str(e).strip()!r}; "
                         f"replace the clip") from e
    if promise is not None and promise[0] > promise[1]:
        expected = promise[0]
    if x.shape[0] == 0:
        promised = f", which promises {expected} frames" if expected else ""
        raise AudioError(path, "audio file holds no samples", f"only a header{promised}; {_REFETCH}")
    if x.shape[0] != expected:
        raise AudioError(path, "truncated audio file", f"the header promises {expected} frames, "
                         f"the file holds {x.shape[0]}; {_REFETCH}")
    return x, sr, subtype


def _check_samples(path, x: np.ndarray, subtype: str) -> None:
    """Refuse non-finite samples, and float samples outside [-1, 1]."""
    bad = ~np.isfinite(x)
    if bad.any():
        raise AudioError(path, "NaN or infinite samples in audio file",
                         f"{int(bad.sum())} of {x.size} samples are not finite; replace the clip")
    peak = float(np.abs(x).max())
    if subtype in _FLOAT_SUBTYPES and peak > 1.0:
        raise AudioError(path, "float samples outside [-1, 1] in audio file",
                         f"{int((np.abs(x) > 1).sum())} samples exceed it, peak {peak:.3g}; "
                         f"rescale or replace the clip")


def _fit_length(path, x: np.ndarray, sr: int, n_samples: int) -> np.ndarray:
    """Crop or zero-pad ``x`` to ``n_samples`` by the rule of the module docstring."""
    n, secs = len(x), n_samples / sr
    if n < MIN_FRACTION * n_samples:
        raise AudioError(path, "clip too short", f"{n / sr:.3g} s of {secs:g} s; clips shorter than "
                         f"{MIN_FRACTION:.0%} of the clip length are refused; replace the clip")
    if abs(n - n_samples) > TOLERANCE * n_samples:
        share = abs(n - n_samples) / n_samples
        what = (f"zero padding makes up {share:.0%} of the clip" if n < n_samples
                else f"the {(n - n_samples) / sr:.3g} s beyond it ({share:.0%} of the clip "
                     f"length) are cropped")
        warnings.warn(f"{'short' if n < n_samples else 'long'} clip ({path}): {n / sr:.3g} s "
                      f"for {secs:g} s clips; {what}", ClipWarning, stacklevel=3)
    if n >= n_samples:                              # keep the first n_samples, zero-pad at the end
        return x[:n_samples]
    return np.concatenate([x, np.zeros(n_samples - n, dtype=x.dtype)])


def read_audio(path, sr: int, n_samples: int) -> np.ndarray:
    """Read ``path`` (any format soundfile reads) as float32 mono at ``sr``,
    exactly ``n_samples`` long, by the rules of the module docstring.
    Raises :class:`AudioError`; warns with :class:`.ClipWarning`."""
    x, file_sr, subtype = decode(path)
    _check_samples(path, x, subtype)
    x = x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
    if file_sr != sr:
        x = soxr.resample(x, file_sr, sr, quality="HQ").astype(np.float32)
    return _fit_length(path, x, sr, n_samples)
