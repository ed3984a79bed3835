"""GTZAN music genres (paper §3.1.1; protocol §3.1.3: 10-fold CV, 10 % of the
training clips for validation).

Layout: ``genres/<genre>/<genre>.000NN.{wav,au}``, looked for under
``<root>/GTZAN/genres``, ``<root>/genres`` and the Kaggle copy's
``genres_original`` in the same two places; 22.05 kHz, 30 s, ten genres of
(in the release) 100 clips numbered 00000..00099.

GTZAN has no official folds, so they are assigned here, deterministically and
without randomness: within each genre the clips, in number order, are cut into
ten contiguous blocks (clips 00000-00009 → fold 1, ..., 00090-00099 → fold 10).
Contiguous blocks keep neighbouring clips, which in GTZAN often share an artist,
in one fold; this reduces (it cannot remove) the artist repetition between
training and test that Sturm (2013) documents. Every fold is stratified: one
tenth of every genre. The group of a clip is its own key, so the validation set
is 10 % of each genre's training clips, drawn with the seed.

The layout is the metadata, and it is validated: every audio file
(``.wav``/``.au``, not hidden) in a genre folder must be named
``<genre>.000NN.<ext>`` for that folder's genre (a file of another genre, or
of another name, is an error naming it), and every genre must hold the same
contiguous numbering. Where both ``.au`` and ``.wav`` of one number exist
(a converted copy beside the original) the ``.au`` is used.
"""

from __future__ import annotations

import re
from pathlib import Path

from .base import Clip, Dataset, DatasetError, MetaProblems

__all__ = ["GENRES", "HOW_TO_GET", "load_gtzan"]

GENRES = ("blues", "classical", "country", "disco", "hiphop",
          "jazz", "metal", "pop", "reggae", "rock")
_CANDIDATES = ("GTZAN/genres", "genres", "GTZAN/genres_original", "genres_original")
HOW_TO_GET = ("GTZAN is no longer distributed by its authors; copies such as "
              "https://www.kaggle.com/datasets/andradaolteanu/gtzan-dataset-music-genre-classification "
              "(folder genres_original) keep the layout "
              "<root>/GTZAN/genres/<genre>/<genre>.000NN.wav (or .au).")
_FILE = re.compile(r"^([a-z]+)\.(\d{5})\.(wav|au)$")


def _find_genres_dir(root: Path) -> Path:
    """The first existing candidate ``genres`` folder under ``root``."""
    for rel in _CANDIDATES:
        if (Path(root) / rel).is_dir():
            return Path(root) / rel
    looked = ", ".join(str(Path(root) / rel) for rel in _CANDIDATES)
    raise DatasetError(f"gtzan: no genres folder; looked for {looked}. {HOW_TO_GET}")


def _genre_files(base: Path, problems: MetaProblems) -> dict[str, dict[int, Path]]:
    """genre → clip number → file, recording every misnamed audio file."""
    per_genre: dict[str, dict[int, Path]] = {}
    for g in GENRES:
        files: dict[int, Path] = {}
        found = sorted((base / g).iterdir()) if (base / g).is_dir() else []
        for p in (p for p in found if p.suffix.lower() in (".wav", ".au") and not p.name.startswith(".")):
            m = _FILE.match(p.name)
            if m and m.group(1) == g:
                files.setdefault(int(m.group(2)), p)  # .au sorts before .wav: one per number
            elif m:
                problems.add(None, f"a {m.group(1)} clip in the {g} folder",
                             "move it to its genre's folder or remove it", path=p)
            else:
                problems.add(None, f"unexpected audio file name in the {g} folder",
                             f"GTZAN files are named {g}.000NN.wav or .au; rename or remove it", path=p)
        per_genre[g] = files
    return per_genre


def load_gtzan(root: Path) -> Dataset:
    """GTZAN under ``root``; every genre must hold the same contiguous numbering."""
    base = _find_genres_dir(root)
    problems = MetaProblems("gtzan", base)
    per_genre = _genre_files(base, problems)
    problems.raise_any()
    n = max(len(f) for f in per_genre.values())
    if n == 0:
        raise DatasetError(f"gtzan: no <genre>.000NN.wav/.au files in the genre folders "
                           f"under {base}. {HOW_TO_GET}")
    missing = [f"{g}/{g}.{k:05d}" for g, f in per_genre.items() for k in range(n) if k not in f]
    if n < 10 or missing:
        examples = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise DatasetError(f"gtzan: expected {n} clips numbered 00000..{n - 1:05d} in each of the "
                           f"10 genre folders under {base} (at least 10 for 10-fold CV); "
                           f"{len(missing)} of {10 * n} are missing (e.g. {examples}). {HOW_TO_GET}")
    clips = []
    for label, g in enumerate(GENRES):
        for k, p in sorted(per_genre[g].items()):
            key = p.relative_to(base).as_posix()
            clips.append(Clip(key=key, path=p, label=label, fold=k * 10 // n + 1, group=key))
    return Dataset("gtzan", 22050, 30.0, GENRES, clips, root=Path(root),
                   n_folds=10, val_per_class=0.1)
