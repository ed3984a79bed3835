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
"""

from __future__ import annotations

import re
from pathlib import Path

from .base import Clip, Dataset, DatasetError

GENRES = ("blues", "classical", "country", "disco", "hiphop",
          "jazz", "metal", "pop", "reggae", "rock")
CANDIDATES = ("GTZAN/genres", "genres", "GTZAN/genres_original", "genres_original")
HOW_TO_GET = ("GTZAN is no longer distributed by its authors; copies such as "
              "https://www.kaggle.com/datasets/andradaolteanu/gtzan-dataset-music-genre-classification "
              "(folder genres_original) keep the layout "
              "<root>/GTZAN/genres/<genre>/<genre>.000NN.wav (or .au).")
FILE = re.compile(r"^([a-z]+)\.(\d{5})\.(wav|au)$")


def find_genres_dir(root: Path) -> Path:
    """The first existing candidate ``genres`` folder under ``root``."""
    for rel in CANDIDATES:
        if (Path(root) / rel).is_dir():
            return Path(root) / rel
    looked = ", ".join(str(Path(root) / rel) for rel in CANDIDATES)
    raise DatasetError(f"gtzan: no genres folder; looked for {looked}. {HOW_TO_GET}")


def load_gtzan(root: Path) -> Dataset:
    """GTZAN under ``root``; every genre must hold the same contiguous numbering."""
    base = find_genres_dir(root)
    per_genre: dict[str, dict[int, Path]] = {}
    for g in GENRES:
        files = {}
        for p in sorted((base / g).glob(f"{g}.*")) if (base / g).is_dir() else []:
            m = FILE.match(p.name)
            if m and m.group(1) == g:
                files.setdefault(int(m.group(2)), p)  # .au sorts before .wav: one per number
        per_genre[g] = files
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
