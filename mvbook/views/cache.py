"""The on-disk feature cache: every clip's views, extracted once with the fast
paths of :mod:`mvbook.views.features` and memory-mapped afterwards.
Chapter: *Four views*.

**What a cache array is computed from.** One file per (dataset, view): its name
hashes the dataset's name, its *source* (the resolved data root; for a dataset
without files, such as ``synthetic``, its fingerprint), the clip length and
every parameter of the view. Inside, each row records the content id of the
clip it was computed from (the SHA-256 of the clip file; see
:mod:`mvbook.views.cachefile` for when a file is re-hashed) and a checksum of its
own bytes. On every load:

- each clip's content id is compared with the one its row was computed from; a
  clip changed, added or removed makes the file be rebuilt, copying every row
  whose clip is unchanged and extracting only the others (for every view at
  once, each clip decoded once);
- each row used is checked against its checksum and for NaN/inf: a cache file
  changed after it was written (same-size corruption) is a :class:`CacheError`
  naming the view, the clips and the file, which is left for you to delete (it
  is not silently rebuilt: something wrote into it); a file that is not a
  complete cache file (truncated, another format) is recomputed;
- features are checked for NaN/inf when computed too: an error names the clip
  file and the view, and nothing is cached.

A clip that fails to decode does not stop the pass at once: the remaining clips
are still decoded (not extracted) and one :class:`~mvbook.data.base.DatasetError`
lists every bad file. Temporaries (``.<name>.<host>.<pid>.<id>.tmp``) are removed
on SIGINT/SIGTERM and those left by killed runs are removed by the next run
that writes to the folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..data import DatasetError
from ..errors import DataError
from .cachefile import (
    CacheError,
    append_manifest,
    bad_rows,
    clean_stale,
    disk_full,
    file_digest,
    file_signature,
    interrupt_guard,
    preallocate,
    read_index,
    read_manifest,
    row_digest,
    tmp_path,
    write_json,
)
from .features import extract_batch, view_params
from .framing import N_BANDS, VIEWS, check_sr, check_view, n_frames

__all__ = ["CacheError", "cache_path", "cache_root", "clip_ids", "load_views", "source_id", "view_shape",
           "CACHE_FORMAT", "RACY_NS"]

#: bumped when the layout of the cache files changes
CACHE_FORMAT = 2
#: a clip file written less than this before it was hashed (ns) is hashed again next time
RACY_NS = 2_000_000_000
_FOLDER_HINT = "point --cache-dir or $MVBOOK_CACHE at a writable folder"


def cache_root(cache_dir=None) -> Path:
    """The folder of the feature cache (nothing is created).

    Parameters
    ----------
    cache_dir : str or Path, optional
        An explicit folder (``--cache-dir``); ``~`` is expanded.

    Returns
    -------
    Path
        ``cache_dir`` if given, else ``$MVBOOK_CACHE``, else ``~/.cache/mvbook``.

    Examples
    --------
    >>> cache_root("/data/cache") == Path("/data/cache")
    True
    """
    root = cache_dir or os.environ.get("MVBOOK_CACHE") or Path.home() / ".cache" / "mvbook"
    return Path(root).expanduser()


def _check_folder(root: Path, write: bool) -> None:
    """:class:`CacheError` if ``root`` is not a folder (or, for ``write``, cannot be made
    or written to)."""
    if root.exists() and not root.is_dir():
        raise CacheError(f"feature cache folder is a file, not a folder ({root}): {_FOLDER_HINT}")
    if not write:
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CacheError(f"feature cache folder cannot be created, {e.strerror or e} ({root}): "
                         f"{_FOLDER_HINT}") from e
    if not os.access(root, os.W_OK | os.X_OK):
        raise CacheError(f"feature cache folder is not writable ({root}): {_FOLDER_HINT}")


def _digest(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def source_id(dataset) -> dict:
    """What a dataset's clips are read from, a part of every cache file's name and manifest.

    Parameters
    ----------
    dataset : mvbook.data.Dataset
        Any dataset; one with files has a ``root``.

    Returns
    -------
    dict
        ``{"root": <the resolved data root>}``, or ``{"fingerprint": <its
        fingerprint>}`` for a dataset without a root (``synthetic``).

    Examples
    --------
    >>> from mvbook.data import load_dataset
    >>> ds = load_dataset("synthetic")
    >>> source_id(ds) == {"fingerprint": ds.fingerprint()}
    True
    """
    root = getattr(dataset, "root", None)
    return {"root": str(Path(root).resolve())} if root is not None else {"fingerprint": dataset.fingerprint()}


def _stem(dataset) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(dataset.name))


def cache_path(dataset, view: str, cache_dir=None) -> Path:
    """Where one view of a dataset is cached. The name carries a hash of the cache
    format, the dataset's source (:func:`source_id`), its clip length and every
    parameter of the view (:func:`~mvbook.views.features.view_params`); which clips
    the rows hold is in the file's manifest.

    Parameters
    ----------
    dataset : mvbook.data.Dataset
        The dataset.
    view : str
        A view of :data:`~mvbook.views.framing.VIEWS`.
    cache_dir : str or Path, optional
        The cache folder (default :func:`cache_root`).

    Returns
    -------
    Path
        ``<cache folder>/<dataset>-<view>-<sr>-<16 hex digits>.npy`` (nothing is created).

    Examples
    --------
    >>> from mvbook.data import load_dataset
    >>> ds = load_dataset("synthetic")
    >>> p = cache_path(ds, "mel", "/cache")
    >>> p.parent == Path("/cache"), p.name.startswith("synthetic-mel-22050-"), p == cache_path(ds, "gam", "/cache")
    (True, True, False)
    """
    key = {"format": CACHE_FORMAT, "source": source_id(dataset), "n_samples": int(dataset.n_samples),
           **view_params(view, dataset.sr)}
    return cache_root(cache_dir) / f"{_stem(dataset)}-{view}-{dataset.sr}-{_digest(key)}.npy"


def view_shape(dataset, view: str) -> tuple:
    """The shape of one view of every clip of a dataset, stacked in clip order.

    Parameters
    ----------
    dataset : mvbook.data.Dataset
        The dataset (its number of clips, ``n_samples`` and ``sr``).
    view : str
        A view of :data:`~mvbook.views.framing.VIEWS`.

    Returns
    -------
    tuple of int
        ``(n_clips, frames, 64)`` for a 2D view, ``(n_clips, n_samples)`` for ``raw``
        (frames: :func:`~mvbook.views.framing.n_frames`).

    Examples
    --------
    >>> from mvbook.data import load_dataset
    >>> ds = load_dataset("synthetic")
    >>> view_shape(ds, "mel") == (len(ds), n_frames("mel", ds.n_samples, ds.sr), 64)
    True
    >>> view_shape(ds, "raw") == (len(ds), ds.n_samples)
    True
    """
    T = n_frames(view, dataset.n_samples, dataset.sr)
    return (len(dataset), T) if view == "raw" else (len(dataset), T, N_BANDS)


def _clip(dataset, i: int):
    """(key, file or None) of clip ``i``."""
    c = dataset.clips[i]
    return str(getattr(c, "key", c)), getattr(c, "path", None)


def _clip_name(dataset, i: int) -> str:
    key, path = _clip(dataset, i)
    return str(path) if path is not None else f"{dataset.name} clip {key}"


def clip_ids(dataset, cache_dir=None) -> list[str]:
    """The content id of every clip, what each row of a cache file is checked against.

    A clip file is hashed (:func:`~mvbook.views.cachefile.file_digest`) unless the
    clip index of the cache folder holds its hash under the same size, mtime, ctime
    and inode; a file written less than :data:`RACY_NS` (2 s) before it was hashed
    gets no trusted entry, as git does with "racily clean" files. The index is
    rewritten when it changed and the cache folder exists.

    Parameters
    ----------
    dataset : mvbook.data.Dataset
        The dataset, in clip order.
    cache_dir : str or Path, optional
        The cache folder, where the clip index is kept (default :func:`cache_root`).

    Returns
    -------
    list of str
        Per clip, ``sha256:<32 hex digits of the file's hash>``, or ``key:<clip
        key>`` for a clip without a file (its dataset's fingerprint is in the cache
        file's name).

    Raises
    ------
    mvbook.data.base.DatasetError
        Some clip files cannot be read; the message lists every one of them.

    Examples
    --------
    >>> from mvbook.data import load_dataset
    >>> clip_ids(load_dataset("synthetic"), "/nonexistent")[:2]
    ['key:synthetic-0000', 'key:synthetic-0001']
    """
    root = cache_root(cache_dir)
    index_path = root / f"{_stem(dataset)}-clips-{_digest(source_id(dataset))}.json"
    index = read_index(index_path) if index_path.is_file() else {}
    ids, fresh, missing = [], {}, []
    for i in range(len(dataset)):
        key, path = _clip(dataset, i)
        if path is None:
            ids.append(f"key:{key}")
            continue
        try:
            sig, now = file_signature(path), time.time_ns()
            known = index.get(str(path))
            digest = known[4] if known and known[:4] == sig and known[4] else file_digest(path)
        except OSError as e:
            missing.append(f"cannot read clip file, {e.strerror or e} ({path}): restore it")
            continue
        racy = now - max(sig[1], sig[2]) < RACY_NS       # a write in the same clock tick would not show
        fresh[str(path)] = sig + [None if racy else digest]
        ids.append(f"sha256:{digest}")
    if missing:
        raise DatasetError(f"{dataset.name}: {len(missing)} clip file(s) cannot be read:\n  " + "\n  ".join(missing))
    if fresh and fresh != index and root.is_dir():
        write_json(index_path, {"dataset": dataset.name, "source": source_id(dataset), "files": fresh})
    return ids


def _corrupt(dataset, view, path, bad: dict) -> CacheError:
    names = [f"{_clip_name(dataset, i)} ({why})" for i, why in sorted(bad.items())]
    shown = "; ".join(names[:5]) + ("; ..." if len(names) > 5 else "")
    return CacheError(f"cached view {view!r} was changed after it was written, in the rows of {len(bad)} "
                      f"clip(s): {shown} ({path}): delete the file to recompute it")


def _check_manifest(dataset, view, path, manifest: dict) -> None:
    """Refuse a cache file whose manifest names another view, dataset, source or
    format than the one asked for (a file copied or renamed: its name is a hash of
    these, its manifest says what it holds)."""
    want = {"view": view, "dataset": dataset.name, "source": source_id(dataset), "format": CACHE_FORMAT}
    got = {k: manifest.get(k) for k in want}
    wrong = [f"{k} {got[k]!r}, not {want[k]!r}" for k in want if got[k] != want[k]]
    if wrong:
        raise CacheError(f"cached view file holds something else than its name says ({path}): its manifest has "
                         f"{'; '.join(wrong)}; it was copied or renamed: delete the file to recompute it")


def _open(dataset, view, path, ids):
    """(memory map, manifest, usable?) of the cached ``view``: usable if its rows are
    those of the current clips, and then checked (checksums, finite values);
    (None, None, False) if there is no complete cache file."""
    found = read_manifest(path, view_shape(dataset, view)[1:]) if path.is_file() else None
    if found is None:
        return None, None, False
    X, manifest = found
    _check_manifest(dataset, view, path, manifest)
    if manifest["clips"] != ids:
        return X, manifest, False
    bad = bad_rows(X, manifest["rows"])
    if bad:
        raise _corrupt(dataset, view, path, bad)
    return X, manifest, True


def _plan(dataset, view, path, X, manifest, ids):
    """(old row of each new row that can be copied, new rows to extract) for ``view``;
    the rows copied are checked first."""
    old = {} if manifest is None else {c: j for j, c in reversed(list(enumerate(manifest["clips"])))}
    copy = {i: old[c] for i, c in enumerate(ids) if c in old}
    bad = bad_rows(X, manifest["rows"], sorted(set(copy.values()))) if copy else {}
    if bad:
        raise _corrupt(dataset, view, path, {i: bad[j] for i, j in copy.items() if j in bad})
    return copy, {i for i in range(len(ids)) if i not in copy}


def _load_clip(dataset, i: int) -> np.ndarray:
    wave = np.asarray(dataset.load(i), dtype=np.float32)
    if wave.shape != (dataset.n_samples,):
        raise DataError(f"has shape {wave.shape}, expected ({dataset.n_samples},)")
    return wave


def _clip_error(dataset, i: int, e: Exception) -> str:
    name, msg = _clip_name(dataset, i), str(e) or type(e).__name__
    return msg if name in msg else f"cannot load clip, {msg} ({name}): check the clip"


def _extract(dataset, need: dict, out: dict, digests: dict, bar, device, batch_size) -> list:
    """Fill the rows ``need[view]`` of ``out[view]``, decoding each clip once; the
    problems found (every clip is still decoded after the first bad one)."""
    rows, errors = sorted(set().union(*need.values())), []
    for start in range(0, len(rows), batch_size):
        batch, waves = rows[start:start + batch_size], {}
        for i in batch:
            try:
                waves[i] = _load_clip(dataset, i)
            except Exception as e:                  # whatever the decoder raises: name the file
                errors.append(_clip_error(dataset, i, e))
        for view, want in need.items():
            sub = [i for i in batch if i in want]
            if errors or not sub:
                continue
            feats = np.asarray(extract_batch(view, np.stack([waves[i] for i in sub]), dataset.sr,
                                             device=device), dtype=np.float32)
            for i, f in zip(sub, feats):
                if not np.isfinite(f).all():
                    errors.append(f"view {view!r} of the clip has NaN or infinite values ({_clip_name(dataset, i)}): "
                                  f"check the clip")
                out[view][i], digests[view][i] = f, row_digest(f)
        bar.update(len(batch))
    return errors


def _write_views(dataset, plans: dict, paths: dict, ids, progress, device, batch_size) -> None:
    """Write the views of ``plans`` (view → (old array, old manifest, rows to copy, rows
    to extract)) to temporaries, then ``os.replace`` each into place (atomic), so an
    interrupted or failed run leaves no partial cache file."""
    tmps: list[Path] = []
    try:
        with interrupt_guard(tmps):
            _write_tmps(dataset, plans, paths, ids, progress, device, batch_size, tmps)
    except OSError as e:
        if not disk_full(e):
            raise
        raise CacheError(f"no space left on device writing the feature cache ({Path(paths[next(iter(plans))]).parent}):"
                         f" nothing was cached and no temporary is left; free space there, or {_FOLDER_HINT} on "
                         "another disk") from None


def _write_tmps(dataset, plans: dict, paths: dict, ids, progress, device, batch_size, tmps: list[Path]) -> None:
    """The body of :func:`_write_views`; ``tmps`` gets each temporary as it is made."""
    out, digests = {}, {}
    for v, (X, manifest, copy, _) in plans.items():
        tmps.append(tmp_path(paths[v]))
        out[v] = np.lib.format.open_memmap(tmps[-1], mode="w+", dtype=np.float32, shape=view_shape(dataset, v))
        preallocate(tmps[-1], out[v].offset)    # a full disk: ENOSPC now, not SIGBUS at a store
        digests[v] = [None] * len(dataset)
        for i, j in copy.items():
            out[v][i], digests[v][i] = X[j], manifest["rows"][j]
    need = {v: p[3] for v, p in plans.items() if p[3]}
    bar = tqdm(total=len(set().union(*need.values())) if need else 0, unit="clip", disable=not progress,
               desc=f"{dataset.name}: {'+'.join(need)}")
    errors = _extract(dataset, need, out, digests, bar, device, batch_size) if need else []
    bar.close()
    if errors:
        raise DatasetError(f"{dataset.name}: {len(errors)} clip(s) cannot be used, nothing was cached:\n  "
                           + "\n  ".join(errors))
    for v, tmp in zip(plans, tmps):
        out[v].flush()
        del out[v]
        append_manifest(tmp, {"format": CACHE_FORMAT, "dataset": dataset.name, "view": v,
                              "source": source_id(dataset), "clips": ids, "rows": digests[v],
                              "keys": [_clip(dataset, i)[0] for i in range(len(dataset))]})
        os.replace(tmp, paths[v])


def load_views(dataset, views=VIEWS, cache_dir=None, progress: bool = True, device=None,
               batch_size: int = 16) -> dict:
    """Every clip's views, stacked in clip order and memory-mapped from the cache.
    Chapter: *Four views*.

    Views not yet cached, or cached from other clip contents, are computed with the
    fast path in one pass over the clips that need it (each clip is loaded once,
    ``batch_size`` at a time) and cached as .npy under :func:`cache_root`, named by
    :func:`cache_path`; the rows of unchanged clips are copied, and every row used is
    checked (see the module's docstring).

    Parameters
    ----------
    dataset : mvbook.data.Dataset
    views : str or sequence of str
        Default: the paper's four.
    cache_dir : path, optional
        Default :func:`cache_root` (``$MVBOOK_CACHE`` or ``~/.cache/mvbook``).
    progress : bool
        A progress bar while extracting.
    device : str, optional
        Where the Mel STFT runs (default: CUDA when available).
    batch_size : int
        Clips loaded and transformed together while extracting.

    Returns
    -------
    dict
        view → read-only memory map, (n_clips, frames, 64) for the 2D views,
        (n_clips, n_samples) for ``raw``.

    Examples
    --------
    >>> import tempfile
    >>> from mvbook.data import load_dataset
    >>> ds = load_dataset("synthetic")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     V = load_views(ds, ("mel", "raw"), cache_dir=tmp, progress=False)
    ...     mel_frames = n_frames("mel", ds.n_samples, ds.sr)
    ...     print(V["mel"].shape == (len(ds), mel_frames, 64), V["raw"].shape[1] == ds.n_samples)
    True True
    """
    views = tuple(check_view(v) for v in ((views,) if isinstance(views, str) else views))
    check_sr(dataset.sr)
    root = cache_root(cache_dir)
    _check_folder(root, write=not root.is_dir())               # a new folder: made now, for the index
    if os.access(root, os.W_OK | os.X_OK):
        clean_stale(root)
    ids = clip_ids(dataset, cache_dir)
    paths = {v: cache_path(dataset, v, cache_dir) for v in views}
    opened = {v: _open(dataset, v, paths[v], ids) for v in views}
    todo = {v: (X, m) for v, (X, m, ok) in opened.items() if not ok}
    if todo:
        _check_folder(root, write=True)
        plans = {v: (X, m, *_plan(dataset, v, paths[v], X, m, ids)) for v, (X, m) in todo.items()}
        _write_views(dataset, plans, paths, ids, progress, device, batch_size)
    return {v: opened[v][0] if v not in todo else np.load(paths[v], mmap_mode="r") for v in views}
