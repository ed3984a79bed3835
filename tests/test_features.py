"""Tests of mvbook.views.features: shapes, reference = libraries, fast = reference,
hand-derived band positions, the Standardizer and the HPSS views. The framing
arithmetic is tested in test_framing.py, the cache in test_cache.py."""

import json
import os
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch
from gammatone.gtgram import gtgram

from mvbook.views import features as F
from mvbook.views.framing import n_frames, segment_length

DATA = Path(os.environ.get("MVBOOK_TEST_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
ESC_AUDIO = DATA / "ESC-50" / "audio"

# fast path vs reference: max abs error in log power (the module's log rule)
TOL = {"mel": 1e-4, "gam": 1e-5, "cqt": 1e-5}


def assert_same_features(a, b):
    """Bit-identical on CPU with one thread. With several threads (torch splits a
    batch's work among them differently from one clip's) and on CUDA (extraction's
    default device there: cuFFT's batched and single plans) the last bits may round
    differently: within 1e-5 of a log value (seen: 3.6e-7 with 2 threads, AVX-512)."""
    if torch.cuda.is_available() or torch.get_num_threads() > 1:
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
    else:
        np.testing.assert_array_equal(a, b)


def noise(seconds, sr, seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal(round(seconds * sr))).astype(np.float32)


def tone(freq, seconds, sr):
    t = np.arange(round(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def chirp_plus_noise(sr, seconds=1.0):
    t = np.arange(round(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * (60 * t + 0.5 * 4000 * t ** 2)) + noise(seconds, sr, 1)
    x[: sr // 10] = 0.0                      # a stretch of digital silence, as ESC-50 has
    return x.astype(np.float32)


# --- shapes and arguments (§3.1.2: 30 s at 44.1 kHz → 1499 × 64 and 1292 × 64) ----------

@pytest.mark.parametrize("sr", [44100, 22050])
def test_thirty_second_shapes(sr):
    x = noise(30, sr)
    for view, T in (("mel", 1499), ("gam", 1499), ("cqt", 1292)):
        out = F.extract(view, x, sr)
        assert out.shape == (T, 64) and out.dtype == np.float32
    for view in ("mel", "cqt"):
        assert F.extract(view, x, sr, method="reference").shape == F.extract(view, x, sr).shape
    assert F.extract("raw", x, sr).shape == x.shape


def test_bad_arguments():
    x = noise(1, 22050)
    with pytest.raises(ValueError, match="unknown view"):
        F.extract("mfcc", x, 22050)
    for sr in (1000, 22050.5, 400000):
        with pytest.raises(ValueError, match="sample rate"):
            F.extract("mel", x, sr)
    with pytest.raises(ValueError, match="method"):
        F.extract("mel", x, 22050, method="approx")
    with pytest.raises(ValueError, match="1-D"):
        F.extract("mel", x[None], 22050)
    with pytest.raises(ValueError, match="shorter"):
        F.extract("gam", x[:100], 22050)


# --- reference path = the libraries called directly -----------------------------------

def test_reference_is_the_libraries():
    sr, x = 22050, chirp_plus_noise(22050)
    mel = librosa.feature.melspectrogram(y=x, sr=sr, n_fft=882, hop_length=441, center=False,
                                         n_mels=64)
    gam = gtgram(x, sr, 0.04, 0.02, 64, 50)
    cqt = np.abs(librosa.cqt(x, sr=sr, hop_length=512, n_bins=64, bins_per_octave=12))
    for view, direct in (("mel", mel), ("gam", gam ** 2), ("cqt", cqt ** 2)):
        expected = np.log(direct.T.astype(np.float64) + 1e-10).astype(np.float32)
        np.testing.assert_allclose(F.extract(view, x, sr, method="reference"), expected, atol=1e-6)
    np.testing.assert_array_equal(F.extract("raw", x, sr, method="reference"), x)


# --- fast path = reference ---------------------------------------------------------------

def assert_close_logs(fast, ref, view):
    err = np.abs(fast.astype(np.float64) - ref)
    assert err.max() <= TOL[view], f"{view}: max abs log error {err.max():.3g}"
    assert np.corrcoef(fast.ravel(), ref.ravel())[0, 1] > 0.999999


@pytest.mark.parametrize("sr", [44100, 22050])
def test_fast_equals_reference_synthetic(sr):
    waves = np.stack([chirp_plus_noise(sr), tone(997.0, 1.0, sr)])
    for view in ("mel", "gam", "cqt"):
        fast = F.extract_batch(view, waves, sr)
        for w, f in zip(waves, fast):
            assert_close_logs(f, F.extract(view, w, sr, method="reference"), view)
            assert_same_features(F.extract(view, w, sr), f)   # single = batch


def test_fast_gammatone_power_equals_gtgram():
    """Before rounding to float32: the compiled filterbank equals gtgram² to ~1e-12."""
    sr, x = 22050, chirp_plus_noise(22050)
    P = F.gammatone_power(x, sr)
    R = gtgram(x, sr, 0.04, 0.02, 64, 50).T ** 2
    assert np.abs(np.log(P + 1e-10) - np.log(R + 1e-10)).max() < 1e-9


@pytest.mark.skipif(not ESC_AUDIO.is_dir(), reason=f"no ESC-50 audio under {DATA}")
def test_fast_equals_reference_esc10():
    files = sorted(ESC_AUDIO.glob("*.wav"))[::150][:3]
    waves = np.stack([sf.read(f, dtype="float32")[0] for f in files])
    for view in ("mel", "gam", "cqt"):
        fast = F.extract_batch(view, waves, 44100)
        ref = np.stack([F.extract(view, w, 44100, method="reference") for w in waves])
        assert fast.shape == ref.shape == (len(files), 216 if view == "cqt" else 249, 64)
        assert_close_logs(fast, ref, view)


# --- tones land in the band derived by hand ---------------------------------------------

def slaney_mel(f):
    """Slaney's Mel scale: linear (3 per 200 Hz) below 1 kHz, logarithmic (27 per ln 6.4) above."""
    return 3 * f / 200 if f < 1000 else 15 + 27 * np.log(f / 1000) / np.log(6.4)


def slaney_hz(m):
    return 200 * m / 3 if m < 15 else 1000 * np.exp((m - 15) * np.log(6.4) / 27)


def mean_spectrum(view, x, sr, method):
    return F.extract(view, x, sr, method=method).mean(0)


@pytest.mark.parametrize("method", ["fast", "reference"])
@pytest.mark.parametrize("sr,band", [(22050, 5), (22050, 20), (44100, 40), (44100, 60)])
def test_tone_peaks_in_its_mel_band(sr, band, method):
    # 64 triangles on 66 points equally spaced in Mel from 0 to Nyquist: band k peaks at point k+1
    f = slaney_hz((band + 1) * slaney_mel(sr / 2) / 65)
    assert mean_spectrum("mel", tone(f, 1.0, sr), sr, method).argmax() == band


@pytest.mark.parametrize("method", ["fast", "reference"])
@pytest.mark.parametrize("freq,bin_", [(440.0, 45), (110.0, 21), (32.703, 0)])
def test_tone_peaks_in_its_cqt_bin(freq, bin_, method):
    # librosa's default f_min is C1, 45 semitones (3 octaves + 9) below A4 = 440 Hz
    assert abs(440 * 2 ** (-45 / 12) - 32.703) < 1e-3
    assert mean_spectrum("cqt", tone(freq, 2.0, 22050), 22050, method).argmax() == bin_


@pytest.mark.parametrize("method", ["fast", "reference"])
@pytest.mark.parametrize("channel", [10, 30, 55])
def test_tone_peaks_in_its_gammatone_channel(channel, method):
    # Glasberg & Moore ERB scale (ear Q 9.26449, min bandwidth 24.7 Hz), 64 points from
    # 50 Hz to Nyquist; channel k (low to high) sits at fraction (64 - k) / 64 from the top
    sr, q = 22050, 9.26449 * 24.7
    frac = (64 - channel) / 64
    f = -q + (sr / 2 + q) * np.exp(-frac * np.log((sr / 2 + q) / (50 + q)))
    assert mean_spectrum("gam", tone(f, 0.5, sr), sr, method).argmax() == channel


# --- Standardizer ----------------------------------------------------------------------------

def test_standardizer_uses_only_the_given_clips():
    X = np.full((4, 2, 3), 1000.0, np.float32)            # clips 1 and 3 must not count
    X[0] = [[1, 10, 5], [3, 10, 5]]
    X[2] = [[5, 20, 5], [7, 20, 5]]
    s = F.Standardizer.fit(X, [2, 0])
    np.testing.assert_allclose(s.mean, [4, 15, 5])
    np.testing.assert_allclose(s.std, [np.sqrt(5), 5, 1])  # a constant band keeps a unit divisor
    np.testing.assert_allclose(s(X[0]), [[-3 / np.sqrt(5), -1, 0], [-1 / np.sqrt(5), -1, 0]],
                               rtol=1e-6)
    t = s(torch.as_tensor(X[2]))
    assert isinstance(t, torch.Tensor)
    np.testing.assert_allclose(t.numpy(), s(X[2]), rtol=1e-6)
    back = F.Standardizer.from_state(json.loads(json.dumps(s.state_dict())))
    np.testing.assert_array_equal(back.mean, s.mean)
    np.testing.assert_array_equal(back.std, s.std)
    with pytest.raises(ValueError):
        F.Standardizer.fit(X, [])


# --- the HPSS views (FusionNet's, not the paper's) ----------------------------------------

def tone_and_clicks(sr, seconds=2.0):
    x = tone(1000, seconds, sr) * 0.5
    x[:: sr // 4] += 1.0                       # a click every 0.25 s
    return x


def test_hpss_views_are_librosa_hpss_then_the_mel_filters():
    sr, x = 22050, tone_and_clicks(22050)
    S = np.abs(librosa.stft(x, n_fft=882, hop_length=441, win_length=882, center=False))
    H, P = librosa.decompose.hpss(S, kernel_size=31)
    np.testing.assert_allclose(H + P, S, rtol=1e-5, atol=1e-6)   # the soft masks sum to one
    for view, part in (("harm", H), ("perc", P)):
        direct = librosa.feature.melspectrogram(S=part ** 2, sr=sr, n_fft=882, n_mels=64, fmin=0.0, fmax=sr / 2)
        expected = np.log(direct.T.astype(np.float64) + 1e-10).astype(np.float32)
        got = F.extract(view, x, sr)
        assert got.shape == (n_frames("mel", len(x), sr), 64)
        np.testing.assert_allclose(got, expected, atol=1e-4)
        np.testing.assert_array_equal(F.extract_batch(view, np.stack([x, x]), sr)[1], got)


def test_hpss_separates_a_tone_from_clicks():
    sr, x = 22050, tone_and_clicks(22050)
    harm, perc = F.extract("harm", x, sr), F.extract("perc", x, sr)
    band = int(np.argmax(F.extract("mel", tone(1000, 2.0, sr), sr).mean(0)))   # the tone's Mel band
    assert np.median(harm[:, band] - perc[:, band]) > 3            # tone: > 20× more power in harm
    high = slice(48, 64)                                           # only the clicks reach these bands
    clicks = F.extract("mel", x, sr)[:, high].mean(1) > np.log(1e-10) + 5     # frames holding a click
    assert 5 <= clicks.sum() <= 20
    assert np.median(perc[clicks][:, high] - harm[clicks][:, high]) > 1
    assert segment_length("harm", sr) == segment_length("mel", sr) == 75
    assert F.view_params("harm", sr) != F.view_params("perc", sr)  # separate cache files
