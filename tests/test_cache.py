"""Tests of mvbook.views.cache: computed once and memory-mapped, only missing views
computed, atomic writes, invalid files recomputed, the cache key and its root,
the file format (a .npy with its manifest), the numba cache's folder. The fault
cases on real clips are in test_cache_faults.py."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_features import assert_same_features, noise

from mvbook.data import DatasetError, load_dataset
from mvbook.views import cache as C
from mvbook.views import cachefile, framing
from mvbook.views import features as F
from mvbook.views.framing import VIEWS, n_frames

# --- the cache -----------------------------------------------------------------------------

class FakeDataset:
    """The dataset interface that load_views needs, counting its loads."""

    def __init__(self, n=5, sr=22050, seconds=1.0, tag="a", fail_at=None):
        self.name, self.sr, self.n_samples = "fake/set", sr, round(sr * seconds)
        self.clips = [f"clip{i}" for i in range(n)]
        self.tag, self.fail_at, self.loads = tag, fail_at, 0

    def __len__(self):
        return len(self.clips)

    def load(self, i):
        if i == self.fail_at:
            raise RuntimeError("killed")
        self.loads += 1
        return noise(self.n_samples / self.sr, self.sr, seed=i)

    def fingerprint(self):
        return f"fake-{self.tag}"


def test_load_views_computes_once_and_memory_maps(tmp_path):
    ds = FakeDataset()
    V = C.load_views(ds, cache_dir=tmp_path, progress=False)
    assert ds.loads == len(ds)                                   # one pass for all views
    assert V["raw"].shape == (5, ds.n_samples)
    for view in ("mel", "gam", "cqt"):
        assert V[view].shape == (5, n_frames(view, ds.n_samples, ds.sr), 64)
        assert isinstance(V[view], np.memmap) and V[view].dtype == np.float32
        assert_same_features(V[view][3], F.extract(view, ds.load(3), ds.sr))
    ds.loads = 0
    again = C.load_views(ds, cache_dir=tmp_path, progress=False)
    assert ds.loads == 0                                         # read from the cache
    np.testing.assert_array_equal(again["gam"], V["gam"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        C.cache_path(ds, v, tmp_path).name for v in VIEWS)


def test_load_views_computes_only_missing_views(tmp_path):
    ds = FakeDataset()
    C.load_views(ds, views=("mel",), cache_dir=tmp_path, progress=False)
    ds.loads = 0
    V = C.load_views(ds, views=("mel", "cqt"), cache_dir=tmp_path, progress=False)
    assert ds.loads == len(ds) and set(V) == {"mel", "cqt"}
    assert len(list(tmp_path.iterdir())) == 2


def test_a_failed_extraction_leaves_no_file_and_names_the_clip(tmp_path):
    with pytest.raises(DatasetError, match=r"(?s)1 clip\(s\) cannot be used.*killed \(fake/set clip clip3\)"):
        C.load_views(FakeDataset(fail_at=3), cache_dir=tmp_path, progress=False, batch_size=2)
    assert list(tmp_path.iterdir()) == []


def test_invalid_cache_file_is_recomputed(tmp_path):
    ds = FakeDataset()
    path = C.cache_path(ds, "mel", tmp_path)
    tmp_path.mkdir(exist_ok=True)
    np.save(path, np.zeros((2, 3), np.float32))                  # wrong shape
    V = C.load_views(ds, views=("mel",), cache_dir=tmp_path, progress=False)
    assert ds.loads == len(ds) and V["mel"].shape[0] == 5


def test_view_shape_and_one_view_by_name(tmp_path):
    ds = FakeDataset(n=3, sr=44100)
    assert C.view_shape(ds, "raw") == (3, 44100)
    assert C.view_shape(ds, "mel") == C.view_shape(ds, "harm") == (3, n_frames("mel", 44100, 44100), 64)
    assert C.view_shape(ds, "cqt") == (3, 1 + 44100 // 1024, 64)
    V = C.load_views(ds, views="perc", cache_dir=tmp_path, progress=False)   # a name, not a tuple
    assert list(V) == ["perc"] and V["perc"].shape == C.view_shape(ds, "perc")
    with pytest.raises(ValueError, match="unknown view"):
        C.load_views(ds, views=("mfcc",), cache_dir=tmp_path, progress=False)


def test_cache_key(tmp_path, monkeypatch):
    ds = FakeDataset()
    path = C.cache_path(ds, "gam", tmp_path)
    assert path.parent == tmp_path and path.name.startswith("fake_set-gam-22050-")
    assert C.cache_path(FakeDataset(), "gam", tmp_path) == path
    assert len({C.cache_path(ds, v, tmp_path) for v in VIEWS}) == 4
    assert C.cache_path(FakeDataset(n=6), "gam", tmp_path) == path     # the rows' clips are in the manifest
    rooted = FakeDataset()
    rooted.root = tmp_path / "data"
    changed = [C.cache_path(FakeDataset(tag="b"), "gam", tmp_path),
               C.cache_path(FakeDataset(sr=44100), "gam", tmp_path),
               C.cache_path(FakeDataset(seconds=1.1), "gam", tmp_path),
               C.cache_path(rooted, "gam", tmp_path)]
    rooted.root = tmp_path / "other"
    changed.append(C.cache_path(rooted, "gam", tmp_path))
    for module, name, value in ((F, "GAM_FMIN", 100.0), (F, "LOG_EPS", 1e-8), (F, "FEATURE_VERSION", 99),
                                (framing, "HOP_SECONDS", 0.01), (C, "CACHE_FORMAT", 99)):
        with monkeypatch.context() as m:
            m.setattr(module, name, value)
            changed.append(C.cache_path(ds, "gam", tmp_path))
    assert path not in changed and len(set(changed)) == len(changed)


def test_cache_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("MVBOOK_CACHE", str(tmp_path / "env"))
    assert C.cache_root() == tmp_path / "env"
    assert C.cache_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("MVBOOK_CACHE")
    assert C.cache_root() == Path.home() / ".cache" / "mvbook"


def test_a_cache_file_is_a_plain_npy_with_its_manifest(tmp_path):
    ds = FakeDataset(n=3)
    V = C.load_views(ds, views=("mel",), cache_dir=tmp_path, progress=False)
    path = C.cache_path(ds, "mel", tmp_path)
    np.testing.assert_array_equal(np.load(path), V["mel"])          # numpy ignores the trailer
    X, manifest = cachefile.read_manifest(path, V["mel"].shape[1:])
    assert manifest["clips"] == [f"key:clip{i}" for i in range(3)] and manifest["view"] == "mel"
    assert manifest["rows"] == [cachefile.row_digest(r) for r in V["mel"]]
    assert manifest["source"] == {"fingerprint": "fake-a"}


def test_rows_of_clips_added_or_removed_are_the_only_ones_extracted(tmp_path, monkeypatch):
    ds = FakeDataset(n=4)
    V = np.array(C.load_views(ds, views=("mel",), cache_dir=tmp_path, progress=False)["mel"])
    rows = []
    real = C.extract_batch
    monkeypatch.setattr(C, "extract_batch", lambda v, w, *a, **k: rows.append(len(w)) or real(v, w, *a, **k))
    ds.clips.append("clip4")                                         # a clip added
    W = C.load_views(ds, views=("mel",), cache_dir=tmp_path, progress=False)["mel"]
    assert rows == [1] and W.shape[0] == 5
    np.testing.assert_array_equal(W[:4], V)
    del ds.clips[1]                                                  # a clip removed
    W = C.load_views(ds, views=("mel",), cache_dir=tmp_path, progress=False)["mel"]
    assert rows == [1] and W.shape[0] == 4
    np.testing.assert_array_equal(W[:3], V[[0, 2, 3]])


def test_synthetic_dataset_is_cached_by_its_fingerprint(tmp_path):
    ds = load_dataset("synthetic")
    assert C.source_id(ds) == {"fingerprint": ds.fingerprint()}
    assert C.clip_ids(ds, tmp_path)[:2] == [f"key:{ds.clips[0].key}", f"key:{ds.clips[1].key}"]


def test_cache_dir_that_is_a_file_is_an_error(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("x")
    with pytest.raises(C.CacheError, match=r"is a file, not a folder \(.*f\): point --cache-dir"):
        C.load_views(FakeDataset(), cache_dir=tmp_path / "f", progress=False)
    with pytest.raises(C.CacheError, match="cannot be created"):
        C.load_views(FakeDataset(), cache_dir=tmp_path / "f" / "sub", progress=False)
    monkeypatch.setenv("MVBOOK_CACHE", str(tmp_path / "f"))
    with pytest.raises(RuntimeError, match="is a file"):            # the CLI turns it into error: …
        C.load_views(FakeDataset(), progress=False)


def test_an_unwritable_folder_is_an_error_but_a_warm_one_can_be_read(tmp_path, monkeypatch):
    ds = FakeDataset(n=2)
    V = np.array(C.load_views(ds, views=("mel",), cache_dir=tmp_path / "c", progress=False)["mel"])
    (tmp_path / "empty").mkdir()
    monkeypatch.setattr(os, "access", lambda *a, **k: False)        # as if read-only (root ignores modes)
    np.testing.assert_array_equal(C.load_views(ds, views=("mel",), cache_dir=tmp_path / "c", progress=False)["mel"], V)
    with pytest.raises(C.CacheError, match=r"is not writable \(.*empty\): point --cache-dir"):
        C.load_views(ds, views=("mel",), cache_dir=tmp_path / "empty", progress=False)


def test_numba_caches_under_the_cache_folder_and_mvbook_stays_light(tmp_path):
    light = "import os, sys, mvbook; print(sorted(m for m in ('numba', 'torch', 'librosa') if m in sys.modules))"
    code = "import os, mvbook.views.features; print(os.environ['NUMBA_CACHE_DIR'])"
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"} | {"MVBOOK_CACHE": str(tmp_path / "c")}
    out = subprocess.run([sys.executable, "-c", light], env=env, capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]"]                                 # import mvbook loads none of them
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [str(tmp_path / "c" / "numba")]        # the features' kernels cache there
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "mine")                 # an explicit choice wins
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0] == str(tmp_path / "mine")
