"""Datasets of the paper (§3.1.1) and their protocols (§3.1.3), plus the
synthetic offline task.

>>> ds = load_dataset("synthetic")
>>> split = ds.split(fold=1, seed=0)
>>> wave = ds.load(split.train[0])        # float32, ds.n_samples long, at ds.sr

Real corpora live under a data root: the ``root`` argument, else the
environment variable ``MVBOOK_DATA``. Layouts: ``<root>/ESC-50`` (esc50, esc10),
``<root>/GTZAN/genres`` (gtzan), ``<root>/TUT-acoustic-scenes-2016-{development,
evaluation}`` (dcase2016). An absent or incomplete dataset raises
:class:`.DatasetError` saying where it looked and how to get the data; malformed
metadata raises :class:`.MetadataError` listing every problem (file, line,
key). Clips are read strictly (:mod:`mvbook.data.audio`): :meth:`.Dataset.check_clips`
decodes them all and lists every bad one, :meth:`.Dataset.require_clips` raises
them as one :class:`.BadClipsError`, :func:`check_datasets` does it for every
dataset found (``python -m mvbook datasets --check``).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

from .audio import AudioError, ClipWarning, read_audio
from .base import BadClipsError, Clip, ClipProblem, Dataset, DatasetError, MetadataError, MissingClipsError, Split
from .dcase2016 import load_dcase2016
from .download import fetch_esc50
from .esc50 import load_esc
from .gtzan import load_gtzan
from .synthetic import load_synthetic

__all__ = ["DATASETS", "AudioError", "BadClipsError", "Clip", "ClipProblem", "ClipWarning", "Dataset",
           "DatasetError", "MetadataError", "MissingClipsError", "Split", "check_datasets", "data_root", "describe",
           "fetch_esc50", "load_dataset", "read_audio"]

#: name → loader ``(root: Path) -> Dataset``
DATASETS: dict[str, Callable[[Path], Dataset]] = {
    "synthetic": load_synthetic,
    "esc10": partial(load_esc, esc10=True),
    "esc50": load_esc,
    "dcase2016": load_dcase2016,
    "gtzan": load_gtzan,
}


def data_root(root=None) -> Path | None:
    """The data root.

    Parameters
    ----------
    root : str or Path, optional
        Returned (as a Path) if given.

    Returns
    -------
    Path or None
        ``root``, else ``$MVBOOK_DATA``, else None.
    """
    root = root if root is not None else os.environ.get("MVBOOK_DATA") or None
    return Path(root).expanduser() if root is not None else None


def load_dataset(name: str, root=None) -> Dataset:
    """Load a dataset with its folds and clip list.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`: ``esc50``, ``esc10``, ``gtzan``, ``dcase2016`` or ``synthetic``.
    root : str or Path, optional
        The data root (default: :func:`data_root`, i.e. ``$MVBOOK_DATA``).

    Returns
    -------
    Dataset
        Its clips (read on demand by ``load``), classes, sample rate and folds.

    Examples
    --------
    >>> ds = load_dataset("synthetic")
    >>> ds.name, ds.sr, ds.n_folds, len(ds.classes)
    ('synthetic', 22050, 5, 8)
    """
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    root = data_root(root)
    if name == "synthetic":
        return load_synthetic()
    if root is None:
        raise DatasetError(f"{name}: no data root; pass root=... or set MVBOOK_DATA to the folder "
                           f"that holds the dataset (see `python -m mvbook datasets`)")
    return DATASETS[name](root)


def describe(name: str | None = None, root=None) -> str:
    """What the data root holds, dataset by dataset.

    Parameters
    ----------
    name : str, optional
        One dataset (default: every one).
    root : str or Path, optional
        The data root (default: :func:`data_root`).

    Returns
    -------
    str
        One line per dataset: what was found under the root, or why not.
    """
    lines = []
    for n in [name] if name else DATASETS:
        try:
            ds = load_dataset(n, root)
        except DatasetError as e:
            lines.append(f"{n}: not available: {str(e).removeprefix(f'{n}: ')}")
            continue
        where = f"under {ds.root}" if ds.root else "generated, no files"
        lines.append(f"{n}: {len(ds)} clips, {len(ds.classes)} classes, {ds.n_folds} fold(s), "
                     f"{ds.sr} Hz x {ds.clip_seconds:g} s, {where}")
    return "\n".join(lines)


def check_datasets(root=None, progress: bool = False, log=print, names=None) -> list[str]:
    """Decode every clip of each dataset found under the root (not the synthetic
    one, which has no files), or of the datasets ``names``. ``log`` gets one line
    per dataset checked and a ``warning: …`` line per :class:`.ClipWarning`;
    returns the error messages: malformed metadata, missing clips, every bad
    clip (a :class:`.BadClipsError` each), a data root that is not given or does
    not exist, and a dataset of ``names`` that is absent."""
    where = data_root(root)
    if where is None or not where.is_dir():
        return ["no data root to check: pass --data-root (root=...) or set MVBOOK_DATA" if where is None else
                f"data root {where} does not exist (or is not a folder): pass the folder that holds the datasets"]
    errors, found = [], 0
    for name in names or DATASETS:
        if name == "synthetic":
            continue
        try:
            ds = load_dataset(name, root)
        except (MetadataError, MissingClipsError) as e:
            errors.append(str(e))
            found += 1
            continue
        except DatasetError as e:
            if names:
                errors.append(str(e))
            continue                            # absent: describe() says so
        found += 1
        t = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ClipWarning)
            problems = ds.check_clips(progress=progress)
        for w in caught:
            log(f"warning: {w.message}")
        if problems:
            errors.append(str(BadClipsError(name, problems, len(ds), ds.root)))
        log(f"{name}: {len(ds) - len(problems)} of {len(ds)} clips decode "
            f"({time.perf_counter() - t:.1f} s)")
    if not found and not errors:
        errors.append(f"data root {where} holds no dataset to check (nothing checked): pass the folder that holds "
                      "ESC-50/, GTZAN/ or TUT-acoustic-scenes-2016-development/")
    return errors
