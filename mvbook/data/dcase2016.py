"""DCASE2016 Task 1: TUT Acoustic Scenes 2016 (paper §3.1.1; protocol §3.1.3:
train on the development set, test on the evaluation set, stereo → mono).

Layout (the official releases): ``<root>/TUT-acoustic-scenes-2016-development/``
and ``<root>/TUT-acoustic-scenes-2016-evaluation/``, each with ``meta.txt``
(tab-separated ``audio/<file>.wav<TAB><scene label>[<TAB>...]``) and
``audio/``. The evaluation labels are in the evaluation release's ``meta.txt``
(or, failing that, its ``evaluation_setup/evaluate.txt``, same columns).
Binaural, 44.1 kHz, 30 s segments.

The paper says 16 scene classes; the released metadata has 15 (78 development
and 26 evaluation segments each, 1,560 in all, which matches the paper's clip
count): beach, bus, cafe/restaurant, car, city_center, forest_path,
grocery_store, home, library, metro_station, office, park, residential_area,
train, tram. The classes are read from the development ``meta.txt`` (sorted).

Validation (§3.1.3, "10 % of audio sources per category"): a segment's source
is its original recording, the file name without the ``_<start>_<end>``
suffix (``a001_30_60.wav`` → ``a001``; a name without that suffix, like the
evaluation set's ``1.wav``, is its own source). Per scene, 10 % of the
development recordings (at least one), drawn with the seed, form the
validation set.

The metadata is validated, every problem reported at once as
``<what> (meta.txt:<line>): <hint>``: a line without a label, a file listed
twice (in one subset), an evaluation label absent from the development set,
and a development class without evaluation clips.
"""

from __future__ import annotations

import re
from pathlib import Path

from .base import Clip, Dataset, DatasetError, MetadataError, MetaProblems, duplicates, require_files

__all__ = ["HOW_TO_GET", "recording_id", "read_meta", "load_dcase2016"]

_SUBSETS = {"development": "TUT-acoustic-scenes-2016-development",
           "evaluation": "TUT-acoustic-scenes-2016-evaluation"}
HOW_TO_GET = ("Download 'TUT Acoustic scenes 2016, Development dataset' "
              "(https://zenodo.org/record/45739) and '... Evaluation dataset' "
              "(https://zenodo.org/record/165995, whose meta.txt holds the labels) and "
              "unpack both under the data root.")
_SEGMENT = re.compile(r"^(.+)_\d+_\d+$")


def recording_id(filename: str) -> str:
    """The source recording of a segment file: ``a001_30_60.wav`` → ``a001``."""
    stem = Path(filename).stem
    m = _SEGMENT.match(stem)
    return m.group(1) if m else stem


def read_meta(meta: Path) -> list[tuple[int, str, str]]:
    """``(line number, relative audio path, scene label)`` of a TUT ``meta.txt``."""
    rows, problems = [], MetaProblems("dcase2016", meta)
    try:
        text = meta.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise MetadataError(f"unreadable DCASE2016 metadata ({meta}): {e}; restore the file "
                            f"from the release") from e
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        cols = line.rstrip("\n").split("\t")
        if len(cols) < 2 or not cols[1].strip() or not cols[0].strip():
            problems.add(n, f"line {line!r} is not '<audio file>\\t<scene label>'",
                         "correct or remove the line")
            continue
        rows.append((n, cols[0].strip(), cols[1].strip()))
    duplicates(problems, [(rel, n) for n, rel, _ in rows])
    problems.raise_any()
    return rows


def _find_meta(root: Path, subset: str) -> Path:
    """The metadata file of ``subset`` (evaluation: ``meta.txt`` or ``evaluate.txt``)."""
    folder = root / _SUBSETS[subset]
    candidates = [folder / "meta.txt"]
    if subset == "evaluation":
        candidates.append(folder / "evaluation_setup" / "evaluate.txt")
    meta = next((m for m in candidates if m.is_file()), None)
    if meta is None:
        raise DatasetError(f"dcase2016: no {subset} metadata; looked for "
                           f"{' and '.join(map(str, candidates))}. {HOW_TO_GET}")
    return meta


def _check_labels(eval_meta: Path, rows: list, classes: list) -> None:
    """Every evaluation label is a development class, and every class is evaluated."""
    problems = MetaProblems("dcase2016", eval_meta)
    for n, rel, label in rows:
        if label not in classes:
            problems.add(n, f"evaluation label {label!r} of {rel} does not occur in the "
                         f"development set", f"the development classes are {classes}")
    for c in sorted(set(classes) - {label for _, _, label in rows}):
        problems.add(None, f"class {c!r} has no evaluation clips", "restore its lines")
    problems.raise_any()


def load_dcase2016(root: Path) -> Dataset:
    """Development (training) and evaluation (test) sets of TUT Acoustic Scenes 2016."""
    root = Path(root)
    paths = {subset: _find_meta(root, subset) for subset in _SUBSETS}
    metas = {subset: read_meta(meta) for subset, meta in paths.items()}
    classes = sorted({label for _, _, label in metas["development"]})
    _check_labels(paths["evaluation"], metas["evaluation"], classes)
    clips = [Clip(key=f"{_SUBSETS[subset]}/{rel}", path=root / _SUBSETS[subset] / rel,
                  label=classes.index(label), fold=None, group=recording_id(rel), subset=subset)
             for subset, rows in metas.items() for _, rel, label in rows]
    require_files("dcase2016", clips, root, HOW_TO_GET)
    return Dataset("dcase2016", 44100, 30.0, classes, clips, root=root,
                   n_folds=1, val_per_class=0.1)
