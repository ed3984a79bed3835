"""Datasets of the paper (§3.1.1) and their protocols (§3.1.3), plus the
synthetic offline task.

>>> ds = load_dataset("synthetic")
>>> split = ds.split(fold=1, seed=0)
>>> wave = ds.load(split.train[0])        # float32, ds.n_samples long, at ds.sr

Real corpora live under a data root: the ``root`` argument, else the
environment variable ``MVBOOK_DATA``. Layouts: ``<root>/ESC-50`` (esc50, esc10),
``<root>/GTZAN/genres`` (gtzan), ``<root>/TUT-acoustic-scenes-2016-{development,
evaluation}`` (dcase2016). An absent or incomplete dataset raises
:class:`DatasetError` saying where it looked and how to get the data.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

from .audio import AudioError, read_audio
from .base import Clip, Dataset, DatasetError, Split
from .dcase2016 import load_dcase2016
from .download import fetch_esc50
from .esc50 import load_esc
from .gtzan import load_gtzan
from .synthetic import load_synthetic

__all__ = ["DATASETS", "AudioError", "Clip", "Dataset", "DatasetError", "Split",
           "data_root", "describe", "fetch_esc50", "load_dataset", "read_audio"]

#: name → loader ``(root: Path) -> Dataset``
DATASETS = {
    "synthetic": load_synthetic,
    "esc10": partial(load_esc, esc10=True),
    "esc50": load_esc,
    "dcase2016": load_dcase2016,
    "gtzan": load_gtzan,
}


def data_root(root=None) -> Path | None:
    """The data root: ``root`` if given, else ``$MVBOOK_DATA``, else ``None``."""
    root = root if root is not None else os.environ.get("MVBOOK_DATA") or None
    return Path(root).expanduser() if root is not None else None


def load_dataset(name: str, root=None) -> Dataset:
    """Load dataset ``name`` (a key of :data:`DATASETS`) from ``data_root(root)``."""
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
    """One line per dataset (or for ``name``): what was found under the root, or why not."""
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
