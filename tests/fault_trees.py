"""Damaged data trees for the fault-injection tests (issue 20).

:func:`esc10_tree` builds the smallest protocol-complete ESC-10 tree (the ten
classes × five folds, one clip each: 50 clips in the release layout);
:func:`damage_clip` replaces one clip by a damaged file of a kind in
:data:`CLIP_FAULTS`, :func:`damage_csv` edits ``esc50.csv`` by a fault in
:data:`CSV_FAULTS`. Damage always unlinks before writing, so a hard-linked or
copied clip never changes its siblings (and a real clip is never written to).

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     root = esc10_tree(tmp)
...     path = damage_clip(clip_path(root, target=0, fold=1), "truncated")
...     damage_csv(root, "fold_6")
...     print(len(read_rows(root)), read_rows(root)[3]["fold"], path.stat().st_size)
50 6 100000
"""
from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from mvbook.data.esc50 import CATEGORIES, ESC10_TARGETS

SR, SECONDS = 44100, 5.0
N = round(SR * SECONDS)
COLUMNS = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]


def tone(target: int, seconds: float = SECONDS, sr: int = SR, amp: float = 0.1) -> np.ndarray:
    """A sine whose frequency depends on the class (200 Hz + 50 Hz per ESC-10 index)."""
    f = 200.0 + 50.0 * ESC10_TARGETS.index(target)
    return (amp * np.sin(2 * np.pi * f * np.arange(round(sr * seconds)) / sr)).astype(np.float32)


def clip_name(target: int, fold: int) -> str:
    return f"{fold}-{100000 + 100 * target + fold}-A-{target}.wav"


def clip_path(root, target: int = 0, fold: int = 1) -> Path:
    return Path(root) / "ESC-50" / "audio" / clip_name(target, fold)


def csv_path(root) -> Path:
    return Path(root) / "ESC-50" / "meta" / "esc50.csv"


def read_rows(root) -> list[dict]:
    with open(csv_path(root), newline="") as f:
        return list(csv.DictReader(f))


def write_rows(root, rows: list[dict]) -> None:
    with open(csv_path(root), "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        w.writerows(rows)


def esc10_tree(root, real=None) -> Path:
    """Write ``<root>/ESC-50``: 50 rows (10 ESC-10 classes × 5 folds) and their clips,
    5 s 16-bit 44.1 kHz tones (one file per class, hard-linked), or, given ``real`` (a
    data root with the ESC-10 audio), copies of its first clip of each class and fold."""
    root = Path(root)
    (root / "ESC-50" / "meta").mkdir(parents=True)
    (root / "ESC-50" / "audio").mkdir()
    rows = [dict(filename=clip_name(t, f), fold=f, target=t, category=CATEGORIES[t], esc10=True,
                 src_file=100000 + 100 * t + f, take="A") for t in ESC10_TARGETS for f in range(1, 6)]
    write_rows(root, rows)
    sources = real_sources(real) if real is not None else {}
    for t in ESC10_TARGETS:
        first = clip_path(root, t, 1)
        for f in range(1, 6):
            if sources:
                shutil.copyfile(sources[t, f], clip_path(root, t, f))
            elif f == 1:
                sf.write(first, tone(t), SR, subtype="PCM_16")
            else:
                os.link(first, clip_path(root, t, f))
    return root


def real_sources(real) -> dict:
    """(target, fold) → the first real ESC-10 clip of that class and fold."""
    out = {}
    for r in read_rows(real):
        key = (int(r["target"]), int(r["fold"]))
        if r["esc10"] == "True" and key not in out:
            out[key] = Path(real) / "ESC-50" / "audio" / r["filename"]
    return out


def _wav(path, x, sr=SR, subtype="PCM_16"):
    sf.write(path, x, sr, subtype=subtype)


def _cut(path, n_bytes):
    data = path.read_bytes()[:n_bytes]
    path.unlink()
    path.write_bytes(data)


#: kind → (what it writes, how it is written); each replaces the file at ``path``
CLIP_FAULTS = {
    "truncated": "the first 100,000 bytes of the clip (its header promises 441,000 data bytes)",
    "zero_byte": "an empty file",
    "text": "a text file",
    "header_only": "the clip's 44-byte WAV header alone",
    "nan": "a 5 s float WAV with NaN samples",
    "out_of_range": "a 5 s float WAV peaking at 1.5",
    "stereo": "a 5 s stereo WAV, left 0.3 and right -0.1",
    "resampled": "the class tone, 5 s at 22.05 kHz",
    "short": "the class tone, 3 s (40 % of the clip would be padding)",
    "very_short": "the class tone, 0.3 s",
    "long": "the class tone, 7 s",
}


def damage_clip(path, kind: str, target: int = 0) -> Path:
    """Replace the clip at ``path`` by the damaged file ``kind`` (see :data:`CLIP_FAULTS`)."""
    path = Path(path)
    if kind in ("truncated", "header_only"):
        _cut(path, 100_000 if kind == "truncated" else 44)
        return path
    path.unlink(missing_ok=True)
    if kind in ("zero_byte", "text"):
        path.write_bytes(b"" if kind == "zero_byte" else b"filename,fold\nthis is not audio\n")
    elif kind in ("nan", "out_of_range"):
        x = tone(target)
        x[1000:1010] = np.nan if kind == "nan" else 1.5
        _wav(path, x, subtype="FLOAT")
    elif kind == "stereo":
        _wav(path, np.stack([np.full(N, 0.3), np.full(N, -0.1)], axis=1))
    else:
        seconds = {"resampled": SECONDS, "short": 3.0, "very_short": 0.3, "long": 7.0}[kind]
        sr = 22050 if kind == "resampled" else SR
        _wav(path, tone(target, seconds, sr), sr=sr)
    return path


def _edit(root, fn) -> None:
    rows = read_rows(root)
    fn(rows)
    write_rows(root, rows)


#: fault → (edit of the rows, line of esc50.csv it concerns or None, key it names)
CSV_FAULTS = {
    "drop_class": (lambda rows: rows.__setitem__(slice(None), [r for r in rows if r["target"] != "1"]),
                   None, "'rooster' (target 1)"),
    "fold_6": (lambda rows: rows[3].update(fold="6"), 5, clip_name(0, 4)),
    "bad_int": (lambda rows: rows[0].update(fold="x"), 2, clip_name(0, 1)),
    "non_esc10": (lambda rows: rows.append(dict(rows[0], filename="1-100014-A-14.wav", target="14",
                                                category="chirping_birds", src_file="100014")),
                  52, "1-100014-A-14.wav"),
    "wrong_category": (lambda rows: rows[6].update(category="cat"), 8, clip_name(1, 2)),
    "duplicate": (lambda rows: rows.append(dict(rows[10])), 52, clip_name(10, 1)),
}


def damage_csv(root, fault: str) -> None:
    """Edit ``esc50.csv`` of an :func:`esc10_tree` by ``fault`` (see :data:`CSV_FAULTS`)."""
    _edit(root, CSV_FAULTS[fault][0])
