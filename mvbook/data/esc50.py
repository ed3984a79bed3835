"""ESC-50 and its ESC-10 subset (paper §3.1.1; protocol §3.1.3).

Layout (the official release): ``<root>/ESC-50/meta/esc50.csv`` with columns
``filename,fold,target,category,esc10,src_file,take`` and
``<root>/ESC-50/audio/<filename>``; 44.1 kHz, 5 s clips, official folds 1..5.
ESC-10 is the rows with ``esc10 == True``; its ten classes are re-indexed
0..9 in order of the ESC-50 target. The group of a clip is its ``src_file``
(the Freesound recording it was cut from), so the validation set of a fold is
all training-fold clips of two source recordings per category.

The metadata is validated row by row, and every problem is reported at once
(``<what> (esc50.csv:<line>): <hint>``): an unparseable ``fold`` or
``target``, a fold outside 1..5, a target outside 0..49, a ``category`` that
is not the official name of its target (:data:`CATEGORIES`), an ``esc10``
flag that is not ``True``/``False`` or disagrees with the official ESC-10
classes (:data:`ESC10_TARGETS`), a file name ``<fold>-<src>-<take>-<target>.wav``
whose fold or target disagrees with its row, a duplicate file name, and, for
the dataset loaded, an official class or a fold without clips. A metadata file
of ESC-10 rows only is an ESC-10 tree: esc50 is then not available (a plain
:class:`.DatasetError`), not malformed.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from .base import Clip, Dataset, DatasetError, MetadataError, MetaProblems, duplicates, parse_int, require_files

__all__ = ["HOW_TO_GET", "CATEGORIES", "ESC10_TARGETS", "read_meta", "load_esc"]

HOW_TO_GET = ("Get ESC-50 with `python -m mvbook fetch esc50 <root>` (or mvbook.data.fetch_esc50(root)), "
              "or download the ESC-50 repository's archive and unpack it "
              "so that <root>/ESC-50/meta/esc50.csv and <root>/ESC-50/audio/ exist.")
#: the official category of each ESC-50 target 0..49
CATEGORIES = (
    "dog", "rooster", "pig", "cow", "frog", "cat", "hen", "insects", "sheep", "crow",
    "rain", "sea_waves", "crackling_fire", "crickets", "chirping_birds", "water_drops", "wind",
    "pouring_water", "toilet_flush", "thunderstorm", "crying_baby", "sneezing", "clapping",
    "breathing", "coughing", "footsteps", "laughing", "brushing_teeth", "snoring",
    "drinking_sipping", "door_wood_knock", "mouse_click", "keyboard_typing", "door_wood_creaks",
    "can_opening", "washing_machine", "vacuum_cleaner", "clock_alarm", "clock_tick",
    "glass_breaking", "helicopter", "chainsaw", "siren", "car_horn", "engine", "train",
    "church_bells", "airplane", "fireworks", "hand_saw")
#: ESC-50 targets of the ten ESC-10 classes
ESC10_TARGETS = (0, 1, 10, 11, 12, 20, 21, 38, 40, 41)
_FOLDS = range(1, 6)
_FILENAME = re.compile(r"^(\d+)-[^-]+-[^-]+-(\d+)\.wav$")
_FLAGS = {"true": True, "false": False}


def read_meta(csv_path: Path) -> list[tuple[int, dict]]:
    """The rows of ``esc50.csv`` as ``(line number, dict of strings)``."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:     # -sig: a BOM (Excel, Notepad) is dropped
            reader = csv.DictReader(f)
            rows = [(reader.line_num, r) for r in reader]
            columns = reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error) as e:
        raise MetadataError(f"unreadable ESC-50 metadata ({csv_path}): {e}; restore the file "
                            f"from the release") from e
    need = ("filename", "fold", "target", "category", "esc10", "src_file")
    missing = [c for c in need if c not in {c.strip() for c in columns}]
    if not rows or missing:
        what = "it is empty" if not columns else f"no column {', '.join(missing)}" if missing else "no rows"
        raise MetadataError(f"not an ESC-50 metadata file ({csv_path}): {what}; expected a CSV with "
                            f"columns {', '.join(need)} and at least one row")
    return [(line, {k.strip(): v for k, v in r.items() if k is not None}) for line, r in rows]


def _check_row(problems: MetaProblems, line: int, r: dict):
    """``(fold, target, esc10)`` of a row, or ``None`` after recording its problems."""
    key = r["filename"] or "(no filename)"
    fold = parse_int(problems, line, key, "fold", r["fold"] or "", _FOLDS)
    target = parse_int(problems, line, key, "target", r["target"] or "", range(len(CATEGORIES)))
    flag = _FLAGS.get((r["esc10"] or "").strip().lower())
    n = len(problems.items)
    if not r["filename"] or not (r["src_file"] or "").strip():
        problems.add(line, f"row of {key} without filename or src_file", "fill in both")
    if flag is None:
        problems.add(line, f"esc10 flag {r['esc10']!r} of {key} is not True or False", "correct the row")
    if target is not None and r["category"] != CATEGORIES[target]:
        problems.add(line, f"category {r['category']!r} of {key} does not match its target {target}",
                     f"ESC-50 target {target} is {CATEGORIES[target]!r}")
    if target is not None and flag is not None and flag != (target in ESC10_TARGETS):
        problems.add(line, f"esc10 flag {flag} of {key} is wrong for target {target} "
                     f"({CATEGORIES[target]})", f"the ESC-10 targets are {list(ESC10_TARGETS)}")
    if r["filename"] and (Path(r["filename"]).name != r["filename"] or r["filename"] in (".", "..")):
        problems.add(line, f"file name {key} is not a plain file name: it would be read outside the audio folder",
                     "ESC-50 names files <fold>-<src>-<take>-<target>.wav")
    m = _FILENAME.match(r["filename"] or "")
    if m and fold is not None and target is not None and (int(m[1]), int(m[2])) != (fold, target):
        problems.add(line, f"file name {key} disagrees with its row (fold {fold}, target {target})",
                     "ESC-50 names files <fold>-<src>-<take>-<target>.wav")
    ok = fold is not None and target is not None and len(problems.items) == n
    return (fold, target, flag) if ok else None


def _check_coverage(problems: MetaProblems, name: str, parsed: list, targets) -> None:
    """Record every official class and every fold of the dataset without clips."""
    have_t = {t for _, t, _ in parsed}
    have_f = {f for f, _, _ in parsed}
    for t in targets:
        if t not in have_t:
            problems.add(None, f"{name} class {CATEGORIES[t]!r} (target {t}) has no clips",
                         "restore its rows")
    for f in _FOLDS:
        if f not in have_f:
            problems.add(None, f"{name} fold {f} has no clips", "restore its rows")


def load_esc(root: Path, esc10: bool = False) -> Dataset:
    """ESC-50 (50 classes, 2,000 clips) or ESC-10 (10 classes, 400 clips) under ``root``."""
    name = "esc10" if esc10 else "esc50"
    base = Path(root) / "ESC-50"
    csv_path = base / "meta" / "esc50.csv"
    if not csv_path.is_file():
        raise DatasetError(f"{name}: no metadata at {csv_path}. {HOW_TO_GET}")
    rows = read_meta(csv_path)
    problems = MetaProblems(name, csv_path)
    checked = [(line, r, _check_row(problems, line, r)) for line, r in rows]
    duplicates(problems, [(r["filename"], line) for line, r, _ in checked])
    chosen = [(line, r, p) for line, r, p in checked if p is not None and (p[2] or not esc10)]
    if not esc10 and chosen and all(p[2] for _, _, p in chosen):
        raise DatasetError(f"esc50: the metadata ({csv_path}) lists only the ESC-10 subset. {HOW_TO_GET}")
    targets = ESC10_TARGETS if esc10 else range(len(CATEGORIES))
    _check_coverage(problems, name, [p for _, _, p in chosen], targets)
    problems.raise_any()
    index = {t: k for k, t in enumerate(targets)}
    clips = [Clip(key=r["filename"], path=base / "audio" / r["filename"], label=index[target],
                  fold=fold, group=r["src_file"]) for _, r, (fold, target, _) in chosen]
    require_files(name, clips, base / "audio", HOW_TO_GET)
    return Dataset(name, 44100, 5.0, [CATEGORIES[t] for t in targets], clips, root=Path(root),
                   n_folds=5, val_per_class=2)
