"""ESC-50 and its ESC-10 subset (paper §3.1.1; protocol §3.1.3).

Layout (the official release): ``<root>/ESC-50/meta/esc50.csv`` with columns
``filename,fold,target,category,esc10,src_file,take`` and
``<root>/ESC-50/audio/<filename>``; 44.1 kHz, 5 s clips, official folds 1..5.
ESC-10 is the rows with ``esc10 == True``; its ten classes are re-indexed
0..9 in order of the ESC-50 target. The group of a clip is its ``src_file``
(the Freesound recording it was cut from), so the validation set of a fold is
all training-fold clips of two source recordings per category.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .base import Clip, Dataset, DatasetError, require_files

HOW_TO_GET = ("Get ESC-50 with mvbook.data.fetch_esc50(root), or download "
              "https://github.com/karolpiczak/ESC-50/archive/master.zip and unpack it "
              "so that <root>/ESC-50/meta/esc50.csv and <root>/ESC-50/audio/ exist.")


def read_meta(csv_path: Path) -> list[dict]:
    """The rows of ``esc50.csv`` as dicts of strings."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    need = {"filename", "fold", "target", "category", "esc10", "src_file"}
    if not rows or not need <= set(rows[0]):
        raise DatasetError(f"{csv_path}: expected a CSV with columns {sorted(need)}")
    return rows


def load_esc(root: Path, esc10: bool = False) -> Dataset:
    """ESC-50 (50 classes, 2,000 clips) or ESC-10 (10 classes, 400 clips) under ``root``."""
    name = "esc10" if esc10 else "esc50"
    base = Path(root) / "ESC-50"
    csv_path = base / "meta" / "esc50.csv"
    if not csv_path.is_file():
        raise DatasetError(f"{name}: no metadata at {csv_path}. {HOW_TO_GET}")
    rows = read_meta(csv_path)
    if esc10:
        rows = [r for r in rows if r["esc10"].strip().lower() == "true"]
    targets = sorted({int(r["target"]) for r in rows})
    index = {t: k for k, t in enumerate(targets)}
    names = {int(r["target"]): r["category"] for r in rows}
    clips = [Clip(key=r["filename"], path=base / "audio" / r["filename"],
                  label=index[int(r["target"])], fold=int(r["fold"]), group=r["src_file"])
             for r in rows]
    require_files(name, clips, base / "audio", HOW_TO_GET)
    return Dataset(name, 44100, 5.0, [names[t] for t in targets], clips, root=Path(root),
                   n_folds=5, val_per_class=2)
