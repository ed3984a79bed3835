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
"""

from __future__ import annotations

import re
from pathlib import Path

from .base import Clip, Dataset, DatasetError, require_files

SUBSETS = {"development": "TUT-acoustic-scenes-2016-development",
           "evaluation": "TUT-acoustic-scenes-2016-evaluation"}
HOW_TO_GET = ("Download 'TUT Acoustic scenes 2016, Development dataset' "
              "(https://zenodo.org/record/45739) and '... Evaluation dataset' "
              "(https://zenodo.org/record/165995, whose meta.txt holds the labels) and "
              "unpack both under the data root.")
SEGMENT = re.compile(r"^(.+)_\d+_\d+$")


def recording_id(filename: str) -> str:
    """The source recording of a segment file: ``a001_30_60.wav`` → ``a001``."""
    stem = Path(filename).stem
    m = SEGMENT.match(stem)
    return m.group(1) if m else stem


def read_meta(meta: Path) -> list[tuple[str, str]]:
    """``(relative audio path, scene label)`` pairs from a TUT ``meta.txt``."""
    pairs = []
    for n, line in enumerate(meta.read_text().splitlines(), 1):
        if not line.strip():
            continue
        cols = line.rstrip("\n").split("\t")
        if len(cols) < 2 or not cols[1].strip():
            raise DatasetError(f"{meta}:{n}: expected '<audio file>\\t<scene label>', got {line!r}")
        pairs.append((cols[0].strip(), cols[1].strip()))
    return pairs


def load_dcase2016(root: Path) -> Dataset:
    """Development (training) and evaluation (test) sets of TUT Acoustic Scenes 2016."""
    root = Path(root)
    metas = {}
    for subset, folder in SUBSETS.items():
        candidates = [root / folder / "meta.txt"]
        if subset == "evaluation":
            candidates.append(root / folder / "evaluation_setup" / "evaluate.txt")
        meta = next((m for m in candidates if m.is_file()), None)
        if meta is None:
            raise DatasetError(f"dcase2016: no {subset} metadata; looked for "
                               f"{' and '.join(map(str, candidates))}. {HOW_TO_GET}")
        metas[subset] = read_meta(meta)
    classes = sorted({label for _, label in metas["development"]})
    unknown = sorted({label for _, label in metas["evaluation"]} - set(classes))
    if unknown:
        raise DatasetError(f"dcase2016: evaluation labels {unknown} do not occur in the "
                           f"development set under {root / SUBSETS['development']}")
    clips = [Clip(key=f"{SUBSETS[subset]}/{rel}", path=root / SUBSETS[subset] / rel,
                  label=classes.index(label), fold=None, group=recording_id(rel), subset=subset)
             for subset, pairs in metas.items() for rel, label in pairs]
    require_files("dcase2016", clips, root, HOW_TO_GET)
    return Dataset("dcase2016", 44100, 30.0, classes, clips, root=root,
                   n_folds=1, val_per_class=0.1)
