"""The on-disk feature cache: every clip's views, extracted once with the fast
paths of :mod:`mvbook.features` and memory-mapped afterwards.
Chapter: *Four views*.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .features import extract_batch, view_params
from .framing import N_BANDS, VIEWS, check_sr, check_view, n_frames


def cache_root(cache_dir=None) -> Path:
    """``cache_dir`` if given, else ``$MVBOOK_CACHE``, else ``~/.cache/mvbook``."""
    root = cache_dir or os.environ.get("MVBOOK_CACHE") or Path.home() / ".cache" / "mvbook"
    return Path(root).expanduser()


def cache_path(dataset, view: str, cache_dir=None) -> Path:
    """Where ``view`` of ``dataset`` is cached: the name carries a hash of the
    dataset's fingerprint, its clip length and every parameter of the view."""
    key = {"dataset": dataset.fingerprint(), "n_samples": int(dataset.n_samples),
           "n_clips": len(dataset), **view_params(view, dataset.sr)}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(dataset.name))
    return cache_root(cache_dir) / f"{name}-{view}-{dataset.sr}-{digest}.npy"


def view_shape(dataset, view: str) -> tuple:
    """Shape of the stacked ``view`` of every clip of ``dataset``."""
    T = n_frames(view, dataset.n_samples, dataset.sr)
    return (len(dataset), T) if view == "raw" else (len(dataset), T, N_BANDS)


def _is_cached(path: Path, shape: tuple) -> bool:
    if not path.is_file():
        return False
    try:
        X = np.load(path, mmap_mode="r")
    except ValueError:
        return False
    return X.shape == shape and X.dtype == np.float32


def _write_views(dataset, views, paths, progress, device, batch_size) -> None:
    """Extract ``views`` for all clips into temporary .npy files, then rename them into
    place (``os.replace`` is atomic), so an interrupted run leaves no partial cache file."""
    tmp = {v: paths[v].with_name(f".{paths[v].name}.{uuid.uuid4().hex}.tmp") for v in views}
    try:
        out = {v: np.lib.format.open_memmap(tmp[v], mode="w+", dtype=np.float32,
                                            shape=view_shape(dataset, v)) for v in views}
        bar = tqdm(total=len(dataset), desc=f"{dataset.name}: {'+'.join(views)}",
                   unit="clip", disable=not progress)
        for start in range(0, len(dataset), batch_size):
            idx = range(start, min(start + batch_size, len(dataset)))
            waves = np.stack([_load_clip(dataset, i) for i in idx])
            for v in views:
                out[v][idx.start:idx.stop] = extract_batch(v, waves, dataset.sr, device=device)
            bar.update(len(idx))
        bar.close()
        for v in views:
            out[v].flush()
            del out[v]
            os.replace(tmp[v], paths[v])
    finally:
        for t in tmp.values():
            t.unlink(missing_ok=True)


def _load_clip(dataset, i: int) -> np.ndarray:
    wave = np.asarray(dataset.load(i), dtype=np.float32)
    if wave.shape != (dataset.n_samples,):
        raise ValueError(f"{dataset.name}: clip {i} has shape {wave.shape}, "
                         f"expected ({dataset.n_samples},)")
    return wave


def load_views(dataset, views=VIEWS, cache_dir=None, progress: bool = True, device=None,
               batch_size: int = 16) -> dict:
    """Every clip's views, stacked in clip order and memory-mapped from the cache.
    Chapter: *Four views*.

    Views not yet cached are computed with the fast path in one pass over the
    clips (each clip is loaded once, ``batch_size`` at a time) and cached as .npy
    under :func:`cache_root`, named by :func:`cache_path`.

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
    ...     print(V["mel"].shape == (len(ds), n_frames("mel", ds.n_samples, ds.sr), 64), V["raw"].shape[1] == ds.n_samples)
    True True
    """
    views = tuple(check_view(v) for v in ((views,) if isinstance(views, str) else views))
    check_sr(dataset.sr)
    paths = {v: cache_path(dataset, v, cache_dir) for v in views}
    todo = [v for v in views if not _is_cached(paths[v], view_shape(dataset, v))]
    if todo:
        cache_root(cache_dir).mkdir(parents=True, exist_ok=True)
        _write_views(dataset, todo, paths, progress, device, batch_size)
    return {v: np.load(paths[v], mmap_mode="r") for v in views}
