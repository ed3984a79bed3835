"""Loaders and protocols on small fixture trees in the real layouts (§3.1.1, §3.1.3):
ESC-50 / ESC-10, GTZAN and DCASE2016 (stereo)."""

import csv
import os

import numpy as np
import pytest
import soundfile as sf

from mvbook.data import DatasetError, load_dataset
from mvbook.data.dcase2016 import recording_id
from mvbook.data.esc50 import CATEGORIES, ESC10_TARGETS


def tone(n=400, value=0.1):
    return np.full(n, value)


def linked_clips(paths, write):
    """Write the first of ``paths`` with ``write(path)`` and hard-link the rest to it
    (fixture trees of full-length clips cost one file's disk space)."""
    paths = list(paths)
    write(paths[0])
    for p in paths[1:]:
        os.link(paths[0], p)


def check_split(ds, split):
    """Disjoint, sorted, covering every clip; no source in both train and validation."""
    parts = [split.train, split.val, split.test]
    assert all(p == sorted(p) for p in parts)
    assert sorted(split.train + split.val + split.test) == list(range(len(ds)))
    assert not ({ds.clips[i].group for i in split.train} & {ds.clips[i].group for i in split.val})


# ---------------------------------------------------------------- ESC-50 ----


def make_esc(root, drop=0):
    """5 folds × the 50 official categories × 2 sources × takes A, B; source 999 spans
    two (non-ESC-10) categories in two folds (as a few do in the real metadata). Every
    clip is a full-length 5 s constant 0.1 at 8 kHz. Returns the rows."""
    base = root / "ESC-50"
    (base / "meta").mkdir(parents=True)
    (base / "audio").mkdir()
    rows = []
    for fold in range(1, 6):
        for target, cat in enumerate(CATEGORIES):
            for s in range(2):
                src = 100000 + 1000 * target + 10 * fold + s
                for take in "AB":
                    rows.append((f"{fold}-{src}-{take}-{target}.wav", fold, target, cat,
                                 target in ESC10_TARGETS, src, take))
    rows += [("1-999-A-2.wav", 1, 2, "pig", False, 999, "A"),
             ("2-999-A-39.wav", 2, 39, "glass_breaking", False, 999, "A")]
    with open(base / "meta" / "esc50.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
        w.writerows(rows)
    linked_clips((base / "audio" / r[0] for r in rows[drop:]),
                 lambda p: sf.write(p, tone(40000), 8000))
    return rows


def test_esc50_tree(tmp_path):
    rows = make_esc(tmp_path)
    ds = load_dataset("esc50", tmp_path)
    assert ds.classes == CATEGORIES and ds.classes[:4] == ("dog", "rooster", "pig", "cow")
    assert (ds.sr, ds.n_samples, ds.n_folds, len(ds)) == (44100, 220500, 5, len(rows))
    assert len(rows) == 1002
    assert np.bincount(ds.labels).tolist() == [20, 20, 21] + [20] * 36 + [21] + [20] * 10
    assert [sum(c.fold == f for c in ds.clips) for f in range(1, 6)] == [201, 201, 200, 200, 200]
    for fold in range(1, 6):
        split = ds.split(fold)
        check_split(ds, split)
        assert {ds.clips[i].fold for i in split.test} == {fold}
        for c in range(50):
            val_src = {ds.clips[i].group for i in split.val if ds.clips[i].label == c}
            assert len(val_src) in (2, 3)    # 3 only where source 999 of another class was drawn
        # every chosen source is taken whole: all its training-pool clips are in val
        val_groups = {ds.clips[i].group for i in split.val}
        pool = [i for i in range(len(ds)) if ds.clips[i].fold != fold]
        assert {i for i in pool if ds.clips[i].group in val_groups} == set(split.val)


def test_esc_split_seeded(tmp_path):
    make_esc(tmp_path)
    ds = load_dataset("esc50", tmp_path)
    assert ds.split(2, seed=7) == ds.split(2, seed=7)
    assert ds.split(2, seed=7) == load_dataset("esc50", tmp_path).split(2, seed=7)
    assert len({tuple(ds.split(2, seed=s).val) for s in range(6)}) > 1
    for bad in (0, 6, 1.5):
        with pytest.raises(ValueError, match="1..5"):
            ds.split(bad)


def test_esc10_reindexes(tmp_path):
    make_esc(tmp_path)
    ds = load_dataset("esc10", tmp_path)
    assert ds.classes == tuple(CATEGORIES[t] for t in ESC10_TARGETS) and len(ds) == 200
    assert ds.classes[:3] == ("dog", "rooster", "rain")
    assert {int(c.key[:-4].split("-")[-1]): c.label for c in ds.clips} == \
        {t: k for k, t in enumerate(ESC10_TARGETS)}
    split = ds.split(3, seed=1)
    check_split(ds, split)
    assert len(split.test) == 40 and len(split.val) == 40 and len(split.train) == 120
    w = ds.load(split.test[0])                 # 5 s at 8 kHz, resampled to 44.1 kHz
    assert w.dtype == np.float32 and w.shape == (220500,)
    assert np.abs(w[1000:-1000] - 0.1).max() < 0.01


def test_esc_missing_clips(tmp_path):
    make_esc(tmp_path, drop=3)
    with pytest.raises(DatasetError, match=r"3 of 1002 clips are missing") as e:
        load_dataset("esc50", tmp_path)
    assert "1-100010-A-0.wav" in str(e.value) and str(tmp_path / "ESC-50" / "audio") in str(e.value)


# ----------------------------------------------------------------- GTZAN ----

GENRES = ("blues", "classical", "country", "disco", "hiphop",
          "jazz", "metal", "pop", "reggae", "rock")


def make_gtzan(genres_dir, n=20):
    """``n`` clips per genre, 30 s of constant 0.1 at 22.05 kHz; blues in AU, the rest WAV."""
    for g in GENRES:
        (genres_dir / g).mkdir(parents=True)
        (genres_dir / g / "notes.txt").write_text("ignored")
    for ext, fmt in (("au", "AU"), ("wav", "WAV")):
        paths = [genres_dir / g / f"{g}.{k:05d}.{ext}" for g in GENRES for k in range(n)
                 if (g == "blues") == (ext == "au")]
        linked_clips(paths, lambda p: sf.write(p, tone(661500), 22050, format=fmt, subtype="PCM_16"))


def test_gtzan_tree(tmp_path):
    make_gtzan(tmp_path / "GTZAN" / "genres")
    ds = load_dataset("gtzan", tmp_path)
    assert ds.classes == GENRES and (ds.sr, ds.n_samples, ds.n_folds) == (22050, 661500, 10)
    assert len(ds) == 200 and np.bincount(ds.labels).tolist() == [20] * 10
    assert ds.clips[0].key == "blues/blues.00000.au" and ds.clips[0].group == ds.clips[0].key
    # folds: contiguous blocks of clip numbers, two per genre per fold
    assert [c.fold for c in ds.clips[:20]] == [k // 2 + 1 for k in range(20)]
    for fold in (1, 10):
        split = ds.split(fold, seed=3)
        check_split(ds, split)
        assert len(split.test) == 20 and {ds.clips[i].fold for i in split.test} == {fold}
        assert np.bincount(ds.labels[split.val], minlength=10).tolist() == [2] * 10  # 10 % of 18
    assert ds.split(4, seed=0) == ds.split(4, seed=0) != ds.split(4, seed=1)
    w = ds.load(0)
    assert w.shape == (661500,) and np.abs(w - 0.1).max() < 1e-3


def test_gtzan_other_location_and_gaps(tmp_path):
    make_gtzan(tmp_path / "genres", n=12)
    assert len(load_dataset("gtzan", tmp_path)) == 120
    (tmp_path / "genres" / "jazz" / "jazz.00005.wav").unlink()
    with pytest.raises(DatasetError, match=r"1 of 120 are missing \(e\.g\. jazz/jazz\.00005\)"):
        load_dataset("gtzan", tmp_path)


def test_gtzan_too_few(tmp_path):
    make_gtzan(tmp_path / "GTZAN" / "genres", n=5)
    with pytest.raises(DatasetError, match="at least 10"):
        load_dataset("gtzan", tmp_path)


# ------------------------------------------------------------- DCASE2016 ----

SCENES = ("beach", "bus", "cafe/restaurant")
DEV = "TUT-acoustic-scenes-2016-development"
EVA = "TUT-acoustic-scenes-2016-evaluation"


def make_dcase(root, eval_meta="meta.txt"):
    """Development: 3 scenes × 4 recordings × 3 segments; evaluation: 2 files per scene.
    Stereo files whose left channel is 0.3 and right channel -0.1 (mono mean 0.1)."""
    dev_lines, eva_lines = [], []
    for s, scene in enumerate(SCENES):
        for r in range(4):
            rec = f"{'abc'[s]}{r:03d}"
            for start in (0, 30, 60):
                dev_lines.append(f"audio/{rec}_{start}_{start + 30}.wav\t{scene}\t{rec}")
        eva_lines += [f"audio/{2 * s + j + 1}.wav\t{scene}" for j in range(2)]
    for folder, lines, meta in ((DEV, dev_lines, "meta.txt"), (EVA, eva_lines, eval_meta)):
        (root / folder / "audio").mkdir(parents=True)
        (root / folder / "evaluation_setup").mkdir()
        (root / folder / meta).write_text("\n".join(lines) + "\n")
    x = np.stack([np.full(1323000, 0.3), np.full(1323000, -0.1)], axis=1)     # 30 s
    linked_clips((root / folder / line.split("\t")[0]
                  for folder, lines in ((DEV, dev_lines), (EVA, eva_lines)) for line in lines),
                 lambda p: sf.write(p, x, 44100, subtype="PCM_24"))


def test_recording_id():
    assert recording_id("audio/a001_10_20.wav") == "a001"
    assert recording_id("audio/b_x_020_90_120.wav") == "b_x_020"
    assert recording_id("audio/17.wav") == "17"


def test_dcase_tree(tmp_path):
    make_dcase(tmp_path)
    ds = load_dataset("dcase2016", tmp_path)
    assert ds.classes == SCENES and (ds.sr, ds.n_samples, ds.n_folds) == (44100, 1323000, 1)
    assert len(ds) == 42 and sum(c.subset == "evaluation" for c in ds.clips) == 6
    assert all(c.fold is None for c in ds.clips)
    assert ds.clips[0].key == f"{DEV}/audio/a000_0_30.wav" and ds.clips[0].group == "a000"
    split = ds.split(1, seed=5)
    check_split(ds, split)
    assert {ds.clips[i].subset for i in split.test} == {"evaluation"} and len(split.test) == 6
    # 10 % of 4 recordings per scene, at least one: one recording (3 segments) per scene
    assert len(split.val) == 9 and len({ds.clips[i].group for i in split.val}) == 3
    assert np.bincount(ds.labels[split.val]).tolist() == [3, 3, 3]
    assert len({tuple(ds.split(1, seed=s).val) for s in range(8)}) > 1
    with pytest.raises(ValueError):
        ds.split(2)
    w = ds.load(split.test[0])
    assert w.shape == (1323000,) and np.abs(w - 0.1).max() < 1e-4


def test_dcase_eval_labels_from_evaluate_txt(tmp_path):
    make_dcase(tmp_path, eval_meta="evaluation_setup/evaluate.txt")
    assert len(load_dataset("dcase2016", tmp_path)) == 42


def test_dcase_errors(tmp_path):
    make_dcase(tmp_path)
    (tmp_path / DEV / "audio" / "b001_30_60.wav").unlink()
    with pytest.raises(DatasetError, match=r"1 of 42 clips are missing .*b001_30_60\.wav"):
        load_dataset("dcase2016", tmp_path)
    (tmp_path / EVA / "meta.txt").write_text("audio/1.wav\tlibrary\n")
    with pytest.raises(DatasetError, match="library"):
        load_dataset("dcase2016", tmp_path)
    (tmp_path / EVA / "meta.txt").unlink()
    with pytest.raises(DatasetError, match="no evaluation metadata") as e:
        load_dataset("dcase2016", tmp_path)
    assert str(tmp_path / EVA / "meta.txt") in str(e.value) and "zenodo" in str(e.value)
