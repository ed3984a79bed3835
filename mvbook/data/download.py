"""Checksum-verified download of ESC-50 (paper §3.1.1), with pooch.

The other two corpora cannot be fetched automatically: GTZAN is no longer
distributed by its authors and TUT Acoustic Scenes 2016 is a set of
multi-gigabyte Zenodo archives under a licence to accept; their loaders say
where to get them.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

import pooch

from .base import DatasetError

ESC50_URL = "https://github.com/karolpiczak/ESC-50/archive/master.zip"
# SHA-256 of the 645,695,005-byte master archive as recorded in 2026. GitHub
# builds branch archives on request: should the repository change, pass the
# new hash (or known_hash=None to skip verification, which pooch reports).
ESC50_SHA256 = "sha256:805afc618aff80eff0641d51311647871fead5807da68bb18e43a27db47a79ce"


def fetch_esc50(root, url: str = ESC50_URL, known_hash: str | None = ESC50_SHA256) -> Path:
    """Download, verify and unpack the ESC-50 release to ``<root>/ESC-50``.

    The archive's top folder (``ESC-50-master``) becomes ``ESC-50``, files
    already there are kept or overwritten, and the archive is deleted after
    unpacking. A tree that already holds every clip listed in its
    ``meta/esc50.csv`` is left alone. Returns ``<root>/ESC-50``.
    """
    root = Path(root)
    target = root / "ESC-50"
    if _complete(target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    try:
        archive = Path(pooch.retrieve(url, known_hash=known_hash, fname="ESC-50-master.zip",
                                      path=root, progressbar=False))
    except ValueError as e:  # pooch's checksum mismatch
        raise DatasetError(f"ESC-50 download from {url} failed verification: {e}") from e
    except Exception as e:
        raise DatasetError(f"ESC-50 download from {url} failed: {e}") from e
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        try:
            with zipfile.ZipFile(archive) as z:
                z.extractall(tmp)
        except zipfile.BadZipFile as e:
            raise DatasetError(f"{archive}: not a zip archive ({e})") from e
        found = sorted(Path(tmp).glob("*/meta/esc50.csv")) + sorted(Path(tmp).glob("meta/esc50.csv"))
        if not found:
            raise DatasetError(f"{url}: the archive has no meta/esc50.csv; not an ESC-50 release")
        shutil.copytree(found[0].parents[1], target, dirs_exist_ok=True)
    archive.unlink()
    return target


def _complete(base: Path) -> bool:
    """Whether ``base`` holds the metadata and every clip it lists."""
    csv_path = base / "meta" / "esc50.csv"
    if not csv_path.is_file():
        return False
    names = [line.split(",", 1)[0] for line in csv_path.read_text().splitlines()[1:] if line]
    return all((base / "audio" / n).is_file() for n in names)
