"""mvbook.data: public API, audio reading and bad input (paper §3.1.1)."""

import numpy as np
import pytest
import soundfile as sf

from mvbook.data import (
    DATASETS,
    AudioError,
    Clip,
    ClipWarning,
    Dataset,
    DatasetError,
    data_root,
    describe,
    load_dataset,
    read_audio,
)


def test_registry_names():
    assert set(DATASETS) == {"synthetic", "esc10", "esc50", "dcase2016", "gtzan"}


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("MVBOOK_DATA", raising=False)
    assert data_root() is None
    monkeypatch.setenv("MVBOOK_DATA", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "arg") == tmp_path / "arg"


def test_missing_root_and_unknown_name(monkeypatch, tmp_path):
    monkeypatch.delenv("MVBOOK_DATA", raising=False)
    with pytest.raises(DatasetError, match="MVBOOK_DATA"):
        load_dataset("esc10")
    with pytest.raises(DatasetError, match="esc50.*synthetic|synthetic.*esc50"):
        load_dataset("esc-50", tmp_path)


@pytest.mark.parametrize("name, where", [("esc10", "ESC-50/meta/esc50.csv"),
                                         ("gtzan", "GTZAN/genres"),
                                         ("dcase2016", "TUT-acoustic-scenes-2016-development")])
def test_missing_dataset_says_where_and_how(tmp_path, name, where):
    with pytest.raises(DatasetError) as e:
        load_dataset(name, tmp_path)
    assert str(tmp_path / where) in str(e.value)
    assert "http" in str(e.value) or "fetch_esc50" in str(e.value)


def test_describe_lists_every_dataset(tmp_path):
    text = describe(root=tmp_path)
    lines = text.splitlines()
    assert [line.split(":")[0] for line in lines] == list(DATASETS)
    assert lines[0].startswith("synthetic: 320 clips, 8 classes, 5 fold(s)")
    assert all("not available" in line for line in lines[1:])
    assert describe("gtzan", tmp_path).count("\n") == 0


def test_read_audio_mixes_channels_to_mono(tmp_path):
    x = np.stack([np.full(1000, 0.5), np.full(1000, -0.1)], axis=1)
    sf.write(tmp_path / "st.wav", x, 8000, subtype="FLOAT")
    y = read_audio(tmp_path / "st.wav", 8000, 1000)
    assert y.dtype == np.float32 and y.shape == (1000,)
    np.testing.assert_allclose(y, 0.2, atol=1e-6)


def test_read_audio_resamples(tmp_path):
    t = np.arange(16000) / 16000
    sf.write(tmp_path / "sine.wav", 0.5 * np.sin(2 * np.pi * 1000 * t), 16000)
    y = read_audio(tmp_path / "sine.wav", 44100, 44100)
    assert y.shape == (44100,)
    spectrum = np.abs(np.fft.rfft(y[2000:42000]))
    peak_hz = np.argmax(spectrum) * 44100 / 40000
    assert abs(peak_hz - 1000) < 2
    assert abs(np.sqrt(np.mean(y[2000:42000] ** 2)) - 0.5 / np.sqrt(2)) < 0.01


def test_read_audio_crops_and_pads(tmp_path):
    x = np.linspace(-0.5, 0.5, 500)
    sf.write(tmp_path / "ramp.wav", x, 8000, subtype="FLOAT")
    with pytest.warns(ClipWarning, match=r"long clip .*ramp\.wav.*150% of the clip length"):
        cropped = read_audio(tmp_path / "ramp.wav", 8000, 200)
    np.testing.assert_allclose(cropped, x[:200], atol=1e-7)
    with pytest.warns(ClipWarning, match=r"short clip .*ramp\.wav.*padding makes up 38%"):
        padded = read_audio(tmp_path / "ramp.wav", 8000, 800)
    np.testing.assert_allclose(padded[:500], x, atol=1e-7)
    assert padded.shape == (800,) and not padded[500:].any()


def test_read_audio_reads_au(tmp_path):
    sf.write(tmp_path / "a.au", np.full(300, 0.25), 22050, format="AU", subtype="PCM_16")
    np.testing.assert_allclose(read_audio(tmp_path / "a.au", 22050, 300), 0.25, atol=1e-4)


@pytest.mark.parametrize("content, problem", [
    (b"", "empty audio file"),
    (b"RIFF\x10\x00\x00\x00WAVEgarbage-not-a-real-chunk" * 3, "cannot decode"),
    (bytes(range(256)) * 8, "cannot decode"),
])
def test_read_audio_bad_bytes(tmp_path, content, problem):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=problem) as e:
        read_audio(path, 8000, 100)
    assert str(path) in str(e.value)


def test_read_audio_zero_length_wav(tmp_path):
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros((0, 2)), 8000)
    assert path.stat().st_size > 0
    with pytest.raises(AudioError, match="no samples") as e:
        read_audio(path, 8000, 100)
    assert str(path) in str(e.value)


def test_read_audio_missing_and_nan(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        read_audio(tmp_path / "nope.wav", 8000, 10)
    sf.write(tmp_path / "nan.wav", np.array([0.1, np.nan, 0.2]), 8000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        read_audio(tmp_path / "nan.wav", 8000, 10)


def test_dataset_load_names_corrupt_clip(tmp_path):
    path = tmp_path / "c.wav"
    path.write_bytes(b"not audio at all")
    ds = Dataset("x", 8000, 0.1, ["a"], [Clip("c.wav", path, 0, 1, "c")], n_folds=1)
    with pytest.raises(AudioError, match="c.wav"):
        ds.load(0)


def test_duplicate_keys_rejected():
    clip = Clip("k", None, 0, 1, "g")
    with pytest.raises(DatasetError, match="duplicate"):
        Dataset("x", 8000, 1.0, ["a"], [clip, clip])


def test_fingerprint_tracks_keys_and_labels():
    clips = [Clip(f"k{i}", None, i % 2, 1, f"k{i}") for i in range(4)]
    a = Dataset("x", 8000, 1.0, ["a", "b"], clips)
    b = Dataset("x", 8000, 1.0, ["a", "b"], list(clips))
    relabelled = Dataset("x", 8000, 1.0, ["a", "b"], clips[:3] + [Clip("k3", None, 0, 1, "k3")])
    assert a.fingerprint() == b.fingerprint()
    assert len(a.fingerprint()) == 16
    assert a.fingerprint() != relabelled.fingerprint()
    assert a.fingerprint() != Dataset("x", 16000, 1.0, ["a", "b"], clips).fingerprint()
