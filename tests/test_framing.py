"""Tests of mvbook.views.framing: window and hop lengths, frame counts, frame times,
segment lengths, the view table and the argument checks (§3.1.2–3.1.3)."""

import subprocess
import sys

import numpy as np
import pytest
from gammatone.gtgram import gtgram_strides

from mvbook.views import framing as fr

# --- framing (§3.1.2: 30 s at 44.1 kHz → 1499 × 64 and 1292 × 64) ----------------------

@pytest.mark.parametrize("sr", [44100, 22050])
def test_frame_counts_of_the_paper(sr):
    n = 30 * sr
    assert fr.n_frames("mel", n, sr) == fr.n_frames("gam", n, sr) == 1499
    assert fr.n_frames("cqt", n, sr) == 1292
    assert fr.n_frames("raw", n, sr) == n
    assert gtgram_strides(sr, 0.04, 0.02, n)[2] == 1499        # gtgram's own framing


def test_window_and_hop_lengths():
    assert (fr.win_length(44100), fr.hop_length(44100), fr.cqt_hop_length(44100)) == (1764, 882, 1024)
    assert (fr.win_length(22050), fr.hop_length(22050), fr.cqt_hop_length(22050)) == (882, 441, 512)
    assert fr.hop_seconds("mel", 44100) == fr.hop_seconds("gam", 22050) == pytest.approx(0.02)
    assert fr.hop_seconds("cqt", 44100) == 1024 / 44100
    assert fr.hop_seconds("raw", 22050) == 1 / 22050


def test_segment_lengths():
    for sr in (44100, 22050):
        assert [fr.segment_length(v, sr) for v in ("mel", "gam", "cqt")] == [75, 75, 65]
        # the four training inputs cover the same ≈1.51 s (§3.1.3)
        seconds = [(fr.segment_length(v, sr) - 1) * fr.hop_seconds(v, sr) for v in fr.VIEWS]
        assert max(seconds) - min(seconds) < 0.04
    assert fr.segment_length("raw", 44100) == 66650
    assert fr.segment_length("raw", 22050) == 33330
    assert fr.segment_length("harm", 22050) == fr.segment_length("perc", 44100) == 75


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown view"):
        fr.check_view("mfcc")
    for fn in (fr.n_frames, fr.frame_times):
        with pytest.raises(ValueError, match="unknown view"):
            fn("mfcc", 22050, 22050)
    for sr in (1000, 22050.5, 400000):
        with pytest.raises(ValueError, match="sample rate"):
            fr.check_sr(sr)
        with pytest.raises(ValueError, match="sample rate"):
            fr.hop_length(sr)
    assert fr.check_sr(22050.0) == 22050 and isinstance(fr.check_sr(22050.0), int)
    assert [fr.check_view(v) for v in fr.ALL_VIEWS] == list(fr.ALL_VIEWS)
    with pytest.raises(ValueError, match="shorter"):
        fr.n_frames("gam", 100, 22050)


# --- frame times, by hand -----------------------------------------------------------------

def test_frame_times_by_hand():
    # Mel: 40 ms frames not centred, hop 20 ms: frame i spans [0.02 i, 0.02 i + 0.04], centre 0.02 i + 0.02
    np.testing.assert_allclose(fr.frame_times("mel", 4, 44100), [0.02, 0.04, 0.06, 0.08])
    np.testing.assert_allclose(fr.frame_times("gam", 3, 22050), [0.02, 0.04, 0.06])
    # CQT: centred on i·hop, hop 1024 samples at 44.1 kHz, 512 at 22.05 kHz
    np.testing.assert_allclose(fr.frame_times("cqt", 3, 44100), [0, 1024 / 44100, 2048 / 44100])
    np.testing.assert_allclose(fr.frame_times("cqt", 3, 22050), [0, 512 / 22050, 1024 / 22050])
    # raw: one "frame" per sample, at i / sr
    np.testing.assert_allclose(fr.frame_times("raw", 5, 22050), np.arange(5) / 22050)
    # the HPSS views share the Mel view's frames
    for sr in (44100, 22050):
        for view in fr.EXTRA_VIEWS:
            np.testing.assert_array_equal(fr.frame_times(view, 10, sr), fr.frame_times("mel", 10, sr))
    assert fr.frame_times("mel", 0, 44100).shape == (0,)


def test_last_frame_ends_inside_the_clip():
    sr, n = 44100, 30 * 44100
    T = fr.n_frames("mel", n, sr)
    assert fr.frame_times("mel", T, sr)[-1] + fr.WIN_SECONDS / 2 <= n / sr + 1e-9
    assert fr.frame_times("cqt", fr.n_frames("cqt", n, sr), sr)[-1] <= n / sr


# --- the view table -----------------------------------------------------------------------

def test_view_info_covers_all_views():
    assert set(fr.VIEW_INFO) == set(fr.ALL_VIEWS) and len(fr.ALL_VIEWS) == 6
    assert fr.ALL_VIEWS == fr.VIEWS + fr.EXTRA_VIEWS
    for view, info in fr.VIEW_INFO.items():
        assert isinstance(info, fr.ViewInfo) and info.label and info.axis
        assert info.hop in ("stft", "cqt", "sample")
        assert (info.segment is None) == (view == "raw")
    assert fr.VIEW_INFO["cqt"].centred and not fr.VIEW_INFO["mel"].centred
    assert all(fr.VIEW_INFO[v][1:] == fr.VIEW_INFO["mel"][1:] for v in fr.EXTRA_VIEWS)


def test_import_is_light():
    """framing is plain arithmetic: importing it loads no signal-processing or deep-learning library."""
    code = ("import sys, mvbook.views.framing; "
            "print(sorted(m for m in ('torch', 'librosa', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
