"""Clips, datasets and train/validation/test splits (paper §3.1.1 and §3.1.3).

A :class:`Dataset` is a list of :class:`Clip` records plus the protocol that
splits it: the test set of fold ``k`` is that official fold (or the DCASE
evaluation set), and the validation set is drawn from the remaining clips by
*source* (``Clip.group``), so that no source is in both training and validation.

Errors are sentences, ``<what> (<file>[:<line>]): <hint>``. Metadata problems
are collected per file by :class:`MetaProblems` and raised together as one
:class:`.MetadataError`; bad clips are found by :meth:`.Dataset.check_clips`
(every clip decoded, every failure kept) and raised together as a
:class:`.BadClipsError` by :meth:`.Dataset.require_clips`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from ..errors import ConfigError, DataError
from .audio import AudioError, read_audio

__all__ = ["DatasetError", "MetadataError", "ClipProblem", "BadClipsError", "MetaProblems", "parse_int", "duplicates",
           "Clip", "Split", "Dataset", "require_files", "MissingClipsError"]


class DatasetError(DataError):
    """A dataset is missing, incomplete or malformed; the message says where and what."""


class MetadataError(DatasetError):
    """A dataset is present but its metadata (or layout) is malformed."""


class ClipProblem(NamedTuple):
    """A clip that cannot be used: its file and why (``<what>: <hint>``)."""

    path: Path
    reason: str


class MissingClipsError(DatasetError):
    """A dataset whose metadata is there but some of whose clip files are not."""


class BadClipsError(DatasetError):
    """Some clips of a dataset cannot be used; ``problems`` lists every one of them."""

    def __init__(self, name: str, problems: list[ClipProblem], n_clips: int, where=None):
        self.problems = list(problems)
        self._args = (name, self.problems, n_clips, where)
        where = f" ({where})" if where else ""
        lines = "".join(f"\n  {p.path}: {p.reason}" for p in self.problems)
        super().__init__(f"{len(self.problems)} of {n_clips} clips of {name} cannot be used{where}: "
                         f"fix or replace them (`python -m mvbook datasets --check` lists them):{lines}")


    def __reduce__(self):                      # picklable across worker processes
        return type(self), self._args


class MetaProblems:
    """Collects the problems of one metadata file; :meth:`raise_any` raises them
    all as one :class:`.DatasetError`, each as ``<what> (<file>:<line>): <hint>``."""

    def __init__(self, name: str, path: Path):
        self.name, self.path = name, Path(path)
        self.items: list[str] = []

    def add(self, line, what: str, hint: str, path=None) -> None:
        """Record ``what`` at ``line`` of the file (``None``: the whole file, or ``path``)."""
        where = f"{path or self.path}:{line}" if line else f"{path or self.path}"
        self.items.append(f"{what} ({where}): {hint}")

    def raise_any(self) -> None:
        if len(self.items) == 1:
            raise MetadataError(f"{self.name}: {self.items[0]}")
        if self.items:
            raise MetadataError(f"{self.name}: {len(self.items)} problems in the metadata "
                               f"({self.path}): fix them:" + "".join(f"\n  {m}" for m in self.items))


def parse_int(problems: MetaProblems, line: int, key: str, column: str, value: str, allowed=None):
    """``int(value)``, or ``None`` after recording why not (unparseable, or not in ``allowed``)."""
    try:
        v = int(value.strip())
    except ValueError:
        problems.add(line, f"{column} {value!r} of {key} is not an integer", "correct the row")
        return None
    if allowed is not None and v not in allowed:
        problems.add(line, f"{column} {v} of {key} is outside the protocol",
                     f"{column}s are {min(allowed)}..{max(allowed)}")
        return None
    return v


def duplicates(problems: MetaProblems, keyed_lines) -> None:
    """Record every key that occurs on more than one line (``(key, line)`` pairs)."""
    seen: dict = {}
    for key, line in keyed_lines:
        seen.setdefault(key, []).append(line)
    for key, lines in seen.items():
        if len(lines) > 1:
            problems.add(lines[1], f"duplicate clip {key}", f"also on line(s) "
                         f"{', '.join(map(str, lines[:1] + lines[2:]))}; keep one row per clip")


@dataclass(frozen=True)
class Clip:
    """One audio file (or one synthetic example) and its protocol metadata."""

    key: str
    path: Path | None
    label: int
    fold: int | None
    group: str
    subset: str = ""


@dataclass(frozen=True)
class Split:
    """Indices into ``Dataset.clips``: disjoint and sorted."""

    train: list[int]
    val: list[int]
    test: list[int]


def _validation_groups(clips, pool, per_class, rng) -> set[str]:
    """Choose the validation sources (§3.1.3): for each class, ``per_class``
    groups (an ``int``) or that fraction of its groups (a ``float``, at least
    one), drawn with ``rng`` among the groups of the clips in ``pool``."""
    chosen: set[str] = set()
    for c in sorted({clips[i].label for i in pool}):
        groups = sorted({clips[i].group for i in pool if clips[i].label == c})
        k = per_class if isinstance(per_class, int) else max(1, round(per_class * len(groups)))
        if k >= len(groups):
            raise DatasetError(f"class {c} has {len(groups)} source(s) in the training pool; "
                               f"cannot leave {k} out for validation")
        chosen.update(groups[j] for j in rng.permutation(len(groups))[:k])
    return chosen


class Dataset:
    """A labelled clip collection with its evaluation protocol.

    ``val_per_class`` is the validation rule: an ``int`` is a number of sources
    per class (ESC-50: 2), a ``float`` a fraction of the sources per class
    (DCASE2016, GTZAN: 0.1). Folds are 1-based; for ``n_folds == 1`` with no
    per-clip folds (DCASE2016) the test set is the ``"evaluation"`` subset.
    """

    def __init__(self, name: str, sr: int, clip_seconds: float, classes, clips: list[Clip], *,
                 root: Path | None = None, n_folds: int = 1, val_per_class: int | float = 2):
        first: dict = {}
        dup = [f"{c.key!r} (clips {first[c.key]} and {i})" for i, c in enumerate(clips)
               if first.setdefault(c.key, i) != i]
        if dup:
            raise MetadataError(f"{name}: duplicate clip keys {', '.join(dup[:5])}"
                               f"{', ...' if len(dup) > 5 else ''}: each clip must occur once")
        self.name, self.sr, self.clip_seconds = name, int(sr), float(clip_seconds)
        self.classes = tuple(classes)
        self.clips = list(clips)
        self.root = root
        self.n_folds = n_folds
        self.val_per_class = val_per_class

    @property
    def n_samples(self) -> int:
        return round(self.sr * self.clip_seconds)

    @property
    def labels(self) -> np.ndarray:
        return np.array([c.label for c in self.clips], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.clips)

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}: {len(self)} clips, {len(self.classes)} classes, "
                f"{self.n_folds} fold(s), {self.sr} Hz x {self.clip_seconds:g} s)")

    def load(self, i: int) -> np.ndarray:
        """Clip ``i`` as float32 mono at ``self.sr``, exactly ``n_samples`` long."""
        return read_audio(self.clips[i].path, self.sr, self.n_samples)

    def check_clips(self, indices=None, progress: bool = False) -> list[ClipProblem]:
        """Decode clips ``indices`` (default: all) and return every one that cannot
        be used, as ``(path, reason)``; :class:`.ClipWarning` s pass through."""
        problems = []
        indices = range(len(self)) if indices is None else indices
        for i in tqdm(indices, desc=f"{self.name}: checking clips", unit="clip", disable=not progress):
            try:
                self.load(i)
            except AudioError as e:
                problems.append(ClipProblem(e.path, e.reason))
            except OSError as e:                 # unreadable (permissions, I/O): listed with the others
                problems.append(ClipProblem(getattr(self.clips[i], "path", None) or e.filename,
                                            f"cannot be read, {e.strerror or e}: check its permissions and the disk"))
        return problems

    def require_clips(self, indices=None, progress: bool = False) -> None:
        """:meth:`check_clips`, raising :class:`.BadClipsError` listing every bad clip."""
        problems = self.check_clips(indices, progress)
        if problems:
            raise BadClipsError(self.name, problems, len(self), self.root)

    def _is_test(self, clip: Clip, fold: int) -> bool:
        return clip.fold == fold if clip.fold is not None else clip.subset == "evaluation"

    def split(self, fold: int, seed: int = 0) -> Split:
        """Train/validation/test indices for ``fold`` (1-based); the
        validation sources are drawn with ``numpy.random.default_rng([seed, fold])``."""
        if not (isinstance(fold, (int, np.integer)) and 1 <= fold <= self.n_folds):
            raise ConfigError(f"{self.name}: fold must be an integer in 1..{self.n_folds}, got {fold!r}")
        test = [i for i, c in enumerate(self.clips) if self._is_test(c, fold)]
        pool = [i for i, c in enumerate(self.clips) if not self._is_test(c, fold)]
        rng = np.random.default_rng([seed, int(fold)])
        val_groups = _validation_groups(self.clips, pool, self.val_per_class, rng)
        val = [i for i in pool if self.clips[i].group in val_groups]
        train = [i for i in pool if self.clips[i].group not in val_groups]
        return Split(train=train, val=val, test=test)

    def fingerprint(self) -> str:
        """Short stable hash of name, rate, length and the (key, label) list."""
        payload = json.dumps([self.name, self.sr, self.clip_seconds,
                              [[c.key, c.label] for c in self.clips]])
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _not_a_file(path: Path) -> str | None:
    """What the clip path is when it exists but is no regular file (or None: a file, or absent)."""
    try:
        st = os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "a symbolic link loop"
        return "a dangling symbolic link" if os.path.islink(path) else None
    if stat.S_ISDIR(st.st_mode):
        return "a folder, not a file"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file (a FIFO, socket or device)"
    return None


def _file(clip: Clip) -> Path:
    """The file of a clip of a dataset read from files (every such clip has one)."""
    assert clip.path is not None, f"clip {clip.key} has no file"
    return clip.path


def require_files(name: str, clips: list[Clip], where: Path, hint: str) -> None:
    """Raise :class:`.MissingClipsError` with counts and examples if any clip file is
    missing, or names something that is not a file (a folder, a dangling link, a link
    loop, a FIFO): those are named with what they are, not sent to download again."""
    files = [_file(c) for c in clips]
    odd = [(p, why) for p in files if not p.is_file() for why in [_not_a_file(p)] if why]
    if odd:
        shown = "; ".join(f"{p} ({why})" for p, why in odd[:5]) + ("; ..." if len(odd) > 5 else "")
        raise MissingClipsError(f"{name}: {len(odd)} of {len(clips)} clip paths under {where} are not audio files: "
                                f"{shown}; put the clip files there")
    missing = [p.name for p in files if not p.is_file()]
    if missing:
        examples = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise MissingClipsError(f"{name}: {len(missing)} of {len(clips)} clips are missing under "
                                f"{where} (e.g. {examples}). {hint}")
