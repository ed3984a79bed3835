"""The feature cache under faults (issue 20), on small ESC-10 trees made of real
clips, with a warm cache: a clip changed, added or removed recomputes exactly its
rows; a cache file changed after it was written (same size, NaN, its manifest)
is an error naming the view and the clip; bad clips are listed all at once and
nothing is cached; temporaries are removed on SIGTERM/SIGINT and those of killed
runs by the next run; a cache folder that is a file is an ``error:`` line."""

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mvbook.__main__ import main
from mvbook.data import DatasetError, load_dataset
from mvbook.views import cache as C
from mvbook.views import cachefile

VIEWS = ("mel", "raw")
REPO = Path(__file__).resolve().parents[1]


def real_esc10_tree(esc_root: Path, dest: Path) -> list:
    """An ESC-50-layout tree under ``dest`` holding one real clip of each ESC-10 class,
    class ``k`` from fold ``k % 5 + 1`` (so every fold has two), and the trimmed
    esc50.csv; the rows written."""
    with open(esc_root / "ESC-50" / "meta" / "esc50.csv", newline="") as f:
        reader = csv.DictReader(f)
        header, rows = reader.fieldnames, [r for r in reader if r["esc10"] == "True"]
    targets = sorted({int(r["target"]) for r in rows})
    chosen = [min((r for r in rows if int(r["target"]) == t and int(r["fold"]) == k % 5 + 1),
                  key=lambda r: r["filename"]) for k, t in enumerate(targets)]
    (dest / "ESC-50" / "meta").mkdir(parents=True)
    (dest / "ESC-50" / "audio").mkdir()
    write_meta(dest, header, chosen)
    for r in chosen:
        shutil.copyfile(esc_root / "ESC-50" / "audio" / r["filename"], dest / "ESC-50" / "audio" / r["filename"])
    return chosen


def write_meta(dest: Path, header, rows) -> None:
    with open(dest / "ESC-50" / "meta" / "esc50.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(rows)


@pytest.fixture
def tree(esc_root, tmp_path):
    rows = real_esc10_tree(esc_root, tmp_path / "data")
    ds = load_dataset("esc10", tmp_path / "data")
    assert len(ds) == 10 and {c.fold for c in ds.clips} == {1, 2, 3, 4, 5}
    return tmp_path / "data", rows


@pytest.fixture
def counter(monkeypatch):
    """view → number of clips extracted (every call of extract_batch goes through here)."""
    counts, real = {}, C.extract_batch

    def counting(view, waves, *a, **k):
        counts[view] = counts.get(view, 0) + len(waves)
        return real(view, waves, *a, **k)

    monkeypatch.setattr(C, "extract_batch", counting)
    return counts


def warm(root, cache):
    ds = load_dataset("esc10", root)
    V = C.load_views(ds, VIEWS, cache_dir=cache, progress=False)
    return ds, {v: np.array(X) for v, X in V.items()}


def no_tmp(folder: Path) -> bool:
    return not list(folder.glob(".*.tmp"))


def test_a_clip_changed_in_place_recomputes_its_rows_only(tree, tmp_path, counter, monkeypatch):
    root, _ = tree
    monkeypatch.setattr(C, "RACY_NS", 0)                          # trust the index of the files just copied
    ds, before = warm(root, tmp_path / "c")
    counter.clear()
    warm(root, tmp_path / "c")
    assert counter == {}                                          # warm: nothing extracted
    path = ds.clips[3].path
    data, other = bytearray(path.read_bytes()), ds.clips[5].path.read_bytes()
    data[1000:60000] = other[1000:60000]                          # same size, other samples
    st = os.stat(path)
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))           # even with its mtime put back:
    assert cachefile.file_signature(path)[:2] == [st.st_size, st.st_mtime_ns]      # the ctime tells
    ds, after = warm(root, tmp_path / "c")
    assert counter == {"mel": 1, "raw": 1}
    for v in VIEWS:
        keep = [i for i in range(len(ds)) if i != 3]
        np.testing.assert_array_equal(after[v][keep], before[v][keep])
        assert not np.array_equal(after[v][3], before[v][3])
    np.testing.assert_array_equal(after["raw"][3], ds.load(3))
    counter.clear()
    os.utime(path)                                                # touched, same bytes: re-hashed only
    warm(root, tmp_path / "c")
    assert counter == {}


def test_a_clip_added_or_removed_recomputes_nothing_else(esc_root, tree, tmp_path, counter):
    root, rows = tree
    ds, before = warm(root, tmp_path / "c")
    counter.clear()
    with open(esc_root / "ESC-50" / "meta" / "esc50.csv", newline="") as f:
        extra = next(r for r in csv.DictReader(f) if r["esc10"] == "True" and r not in rows)
    shutil.copyfile(esc_root / "ESC-50" / "audio" / extra["filename"], root / "ESC-50" / "audio" / extra["filename"])
    write_meta(root, list(rows[0]), rows + [extra])
    ds2, added = warm(root, tmp_path / "c")
    assert counter == {"mel": 1, "raw": 1} and len(ds2) == 11
    i = [c.key for c in ds2.clips].index(extra["filename"])
    for v in VIEWS:
        np.testing.assert_array_equal(np.delete(added[v], i, axis=0), before[v])
    counter.clear()
    twin = next(r for r in rows if r["target"] == extra["target"])   # its class keeps the new clip
    write_meta(root, list(rows[0]), [r for r in rows if r is not twin] + [extra])
    ds3, removed = warm(root, tmp_path / "c")
    assert counter == {} and len(ds3) == 10
    keys2 = [c.key for c in ds2.clips]
    for v in VIEWS:
        np.testing.assert_array_equal(removed[v], added[v][[keys2.index(c.key) for c in ds3.clips]])


def test_the_data_root_is_part_of_the_key(tree, tmp_path, counter):
    root, _ = tree
    ds, before = warm(root, tmp_path / "c")
    shutil.copytree(root, tmp_path / "copy")
    ds2, again = warm(tmp_path / "copy", tmp_path / "c")
    assert C.cache_path(ds2, "mel", tmp_path / "c") != C.cache_path(ds, "mel", tmp_path / "c")
    assert counter == {"mel": 20, "raw": 20}                       # a root of its own
    np.testing.assert_array_equal(again["mel"], before["mel"])


def corrupt(path: Path, offset: int, data: bytes) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)
    assert path.stat().st_size == size


def row_offset(path: Path, row: int) -> int:
    X = np.load(path, mmap_mode="r")
    return X.offset + row * X[0].nbytes


def test_a_cache_file_corrupted_at_the_same_size_is_an_error_until_deleted(tree, tmp_path, counter):
    root, _ = tree
    ds, before = warm(root, tmp_path / "c")
    path = C.cache_path(ds, "mel", tmp_path / "c")
    corrupt(path, row_offset(path, 4) + 400, b"\x00\x01\x02\x03")
    with pytest.raises(C.CacheError) as e:
        warm(root, tmp_path / "c")
    msg = str(e.value)
    assert "cached view 'mel' was changed after it was written" in msg and ds.clips[4].key in msg
    assert "does not match its checksum" in msg and f"({path}): delete the file" in msg
    path.unlink()
    counter.clear()
    _, after = warm(root, tmp_path / "c")
    assert counter == {"mel": 10}                                  # the other view was fine
    np.testing.assert_array_equal(after["mel"], before["mel"])


def test_nan_in_a_cached_array_is_an_error_naming_view_and_clip(tree, tmp_path):
    root, _ = tree
    ds, _ = warm(root, tmp_path / "c")
    path = C.cache_path(ds, "raw", tmp_path / "c")
    corrupt(path, row_offset(path, 2) + 4000, np.float32(np.nan).tobytes())
    with pytest.raises(C.CacheError, match=r"view 'raw'.*holds non-finite values") as e:
        warm(root, tmp_path / "c")
    assert str(ds.clips[2].path) in str(e.value)
    with pytest.raises(RuntimeError, match="view 'raw'"):
        C.load_views(ds, ("raw",), cache_dir=tmp_path / "c", progress=False)


def test_a_damaged_manifest_is_an_error_and_a_truncated_file_is_recomputed(tree, tmp_path, counter):
    root, _ = tree
    ds, before = warm(root, tmp_path / "c")
    path = C.cache_path(ds, "mel", tmp_path / "c")
    X = np.load(path, mmap_mode="r")
    corrupt(path, X.offset + X.nbytes, b"x")                       # the manifest's first byte
    del X
    with pytest.raises(C.CacheError, match=r"manifest is damaged \(.*\): delete the file"):
        warm(root, tmp_path / "c")
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 100)
    counter.clear()
    _, after = warm(root, tmp_path / "c")
    assert counter == {"mel": 10}
    np.testing.assert_array_equal(after["mel"], before["mel"])


def test_non_finite_features_when_computed_are_an_error_and_nothing_is_cached(tree, tmp_path, monkeypatch):
    root, _ = tree
    ds = load_dataset("esc10", root)
    real = C.extract_batch

    def poisoned(view, waves, *a, **k):
        out = real(view, waves, *a, **k)
        out[1, 3] = np.inf if view == "mel" else out[1, 3]
        return out

    monkeypatch.setattr(C, "extract_batch", poisoned)
    with pytest.raises(DatasetError, match=r"view 'mel' of the clip has NaN or infinite values \(.*\): check") as e:
        C.load_views(ds, VIEWS, cache_dir=tmp_path / "c", progress=False)
    assert str(ds.clips[1].path) in str(e.value)
    assert not list((tmp_path / "c").glob("*.npy")) and no_tmp(tmp_path / "c")


def test_every_bad_clip_is_named_at_once_and_nothing_is_cached(tree, tmp_path, counter):
    root, _ = tree
    ds, before = warm(root, tmp_path / "c")
    files = sorted((tmp_path / "c").glob("*.npy"))
    stamps = [p.stat().st_mtime_ns for p in files]
    good = {i: ds.clips[i].path.read_bytes() for i in (2, 7)}
    ds.clips[2].path.write_bytes(b"")                              # zero bytes
    ds.clips[7].path.write_text("not audio at all\n" * 100)        # text
    with pytest.raises(DatasetError, match=r"2 clip\(s\) cannot be used, nothing was cached") as e:
        warm(root, tmp_path / "c")
    assert ds.clips[2].key in str(e.value) and ds.clips[7].key in str(e.value)
    assert [p.stat().st_mtime_ns for p in files] == stamps and no_tmp(tmp_path / "c")
    assert main(["features", "--dataset", "esc10", "--data-root", str(root), "--cache-dir", str(tmp_path / "c"),
                 "--views", *VIEWS]) == 2
    for i, data in good.items():                                   # repaired: the old rows are right again
        ds.clips[i].path.write_bytes(data)
    counter.clear()
    _, after = warm(root, tmp_path / "c")
    assert counter == {}
    np.testing.assert_array_equal(after["mel"], before["mel"])


def test_stale_temporaries_are_cleaned_and_live_ones_kept(tree, tmp_path):
    root, _ = tree
    cache = tmp_path / "c"
    warm(root, cache)
    dead = subprocess.Popen(["true"])
    dead.wait()
    host, me = cachefile.HOST, os.getpid()
    names = {"dead": f".a.npy.{host}.{dead.pid}.0123abcd.tmp", "live": f".a.npy.{host}.{me}.0123abcd.tmp",
             "reused": f".b.npy.{host}.{me}.0123abcd.tmp", "elsewhere": f".a.npy.otherhost.{dead.pid}.0123abcd.tmp",
             "legacy_old": ".a.npy." + "f" * 32 + ".tmp", "legacy_new": ".b.npy." + "e" * 32 + ".tmp"}
    for n in names.values():
        (cache / n).write_bytes(b"\0" * 10)
    day = time.time() - 2 * 86400
    for k in ("reused", "legacy_old"):                              # written before this process started
        os.utime(cache / names[k], (day, day))
    warm(root, cache)
    assert sorted(p.name for p in cache.glob(".*.tmp")) == sorted(names[k] for k in ("live", "elsewhere", "legacy_new"))


SLOW_EXTRACTION = """
import sys, time
import mvbook.views.cache as C
from mvbook.data import load_dataset
def slow(*a, **k):
    print("extracting", flush=True)
    time.sleep(120)
C.extract_batch = slow
C.load_views(load_dataset("esc10", sys.argv[1]), ("mel",), cache_dir=sys.argv[2], progress=False)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_extraction_leaves_no_temporary(tree, tmp_path, signum):
    root, _ = tree
    cache = tmp_path / "c"
    p = subprocess.Popen([sys.executable, "-c", SLOW_EXTRACTION, str(root), str(cache)], cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "extracting", p.stderr.read()
    assert not no_tmp(cache)                                       # the array being written
    p.send_signal(signum)
    assert p.wait(timeout=60) == -signum                           # dies of the signal, as it would have
    assert no_tmp(cache) and not list(cache.glob("*.npy"))


def test_a_cache_folder_that_is_a_file_is_an_error_line(tree, tmp_path, monkeypatch, capsys):
    root, _ = tree
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("MVBOOK_CACHE", str(tmp_path / "file"))
    assert main(["features", "--dataset", "esc10", "--data-root", str(root), "--views", "mel"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: feature cache folder is a file, not a folder ({tmp_path / 'file'}): point")
    assert main(["features", "--dataset", "esc10", "--data-root", str(root), "--views", "mel",
                 "--cache-dir", str(tmp_path / "file" / "sub")]) == 2
    assert "error: feature cache folder cannot be created" in capsys.readouterr().err


def test_the_clip_index_trusts_no_signature_taken_just_after_a_write(tree, tmp_path, monkeypatch):
    root, _ = tree
    ds = load_dataset("esc10", root)
    (tmp_path / "c").mkdir()
    C.clip_ids(ds, tmp_path / "c")                                 # the files were copied just now
    index = next((tmp_path / "c").glob("esc10-clips-*.json"))
    assert all(e[4] is None for e in cachefile.read_index(index).values())
    monkeypatch.setattr(C, "RACY_NS", 0)
    ids = C.clip_ids(ds, tmp_path / "c")
    entries = cachefile.read_index(index)
    assert [f"sha256:{entries[str(c.path)][4]}" for c in ds.clips] == ids
    assert ids[0] == "sha256:" + cachefile.file_digest(ds.clips[0].path)
