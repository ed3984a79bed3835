"""The synthetic multi-view task: protocol, determinism, speed, and that each
factor lives in the view it is meant for."""

import time

import librosa
import numpy as np
import pytest
import scipy.signal as sg

from mvbook.data import load_dataset
from mvbook.data import synthetic as S


@pytest.fixture(scope="module")
def ds():
    return load_dataset("synthetic")


@pytest.fixture(scope="module")
def waves(ds):
    t = time.perf_counter()
    x = np.stack([ds.load(i) for i in range(len(ds))])
    return x, time.perf_counter() - t


def test_protocol(ds):
    assert (len(ds), ds.sr, ds.n_samples, ds.n_folds, ds.root) == (320, 22050, 66150, 5, None)
    assert len(ds.classes) == 8 and ds.classes[0] == "rise-low-sharp" and ds.classes[7] == "fall-high-smooth"
    assert ds.clips[1].key == "synthetic-0001" and ds.clips[1].path is None
    for f in range(1, 6):
        labels = [c.label for c in ds.clips if c.fold == f]
        assert np.bincount(labels).tolist() == [8] * 8
    split = ds.split(2, seed=0)
    assert (len(split.train), len(split.val), len(split.test)) == (232, 24, 64)
    assert np.bincount(ds.labels[split.val]).tolist() == [3] * 8
    assert not set(split.train) & set(split.val) and split != ds.split(2, seed=1)
    assert ds.fingerprint() == load_dataset("synthetic").fingerprint()


def test_waves_fast_and_well_formed(waves):
    x, seconds = waves
    assert seconds < 10, f"generating 320 clips took {seconds:.1f} s"
    assert x.dtype == np.float32 and x.shape == (320, 66150)
    assert np.isfinite(x).all() and np.abs(x).max() <= 1


def test_deterministic(ds, waves):
    x, _ = waves
    again = load_dataset("synthetic")
    for i in (0, 17, 319):
        np.testing.assert_array_equal(again.load(i), x[i])
    assert not np.allclose(x[0], x[8])          # same class, different nuisance
    nz = S.draw_nuisance(5)
    assert nz == S.draw_nuisance(5) != S.draw_nuisance(6)


def test_level_is_nuisance(ds, waves):
    """The clip level says nothing about the class: every class spans the median RMS."""
    rms = np.sqrt(np.mean(waves[0].astype(float) ** 2, axis=1))
    med = np.median(rms)
    for c in range(8):
        r = rms[ds.labels == c]
        assert r.min() < med < r.max()


def frame_power(x, n=882, hop=441):
    """Power spectra of 40 ms Hann frames, 20 ms hop, as the Mel view frames them."""
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[::hop] * np.hanning(n)
    return np.abs(np.fft.rfft(frames, axis=1)) ** 2


def test_phase_factor_only_in_the_waveform():
    """Flipping only the phase factor leaves the 40 ms power spectra (what Mel and
    Gammatone see) within a fraction of a dB, but changes the waveform's peakiness."""
    sos = sg.butter(6, S.COMPLEX_BAND_HZ, "bandpass", fs=S.SR, output="sos")
    for i in range(4):
        nz = S.draw_nuisance(i)
        sharp, smooth = S.render(0, nz), S.render(1, nz)
        a, b = (10 * np.log10(frame_power(w).mean(0) + 1e-12) for w in (sharp, smooth))
        band = (np.fft.rfftfreq(882, 1 / S.SR) > 200) & (np.fft.rfftfreq(882, 1 / S.SR) < 10000)
        assert np.abs(a - b)[band].mean() < 0.5
        assert np.abs(sharp - smooth).mean() > 0.3 * np.abs(sharp).mean()
        crest = [np.abs(y).max() / y.std() for y in (sg.sosfilt(sos, sharp), sg.sosfilt(sos, smooth))]
        assert crest[0] > 1.5 * crest[1]


def test_envelope_factor_in_high_bands(ds, waves):
    """The formant position separates envelope classes by band energy (invisible to a
    CQT that stops at 1.24 kHz)."""
    spec = np.abs(np.fft.rfft(waves[0][:64], axis=1)) ** 2
    f = np.fft.rfftfreq(S.N_SAMPLES, 1 / S.SR)
    ratio = np.log(spec[:, (f > 6500) & (f < 10000)].sum(1) / spec[:, (f > 3500) & (f < 5500)].sum(1))
    high = (ds.labels[:64] >> 1) & 1 == 1
    assert ratio[high].min() > ratio[~high].max()
    assert S.factors(6) == (1, 1, 0) and S.factors(1) == (0, 0, 1)


def test_contour_factor_in_the_cqt():
    """The CQT's peak bin around the melody moves up one semitone per note for
    'rise' and down for 'fall'."""
    for i in range(8):
        label = (i % 2) * 4 + (i // 2) % 4
        nz = S.draw_nuisance(i)
        cqt = np.abs(librosa.cqt(S.render(label, nz), sr=S.SR, hop_length=512, n_bins=64,
                                 bins_per_octave=12))
        b0 = int(round(12 * np.log2(nz.f0 / librosa.note_to_hz("C1"))))
        steps = np.diff(b0 - 1 + cqt[b0 - 1:b0 + 5].argmax(0))
        up, down = (steps == 1).sum(), (steps == -1).sum()
        assert (up > down) if S.factors(label)[0] == 0 else (down > up)
