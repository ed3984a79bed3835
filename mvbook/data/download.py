"""Download of ESC-50 (paper §3.1.1) from a pinned commit, checksummed, with pooch
(``python -m mvbook fetch esc50 DIR``).

The archive is GitHub's archive of one commit of the ESC-50 repository
(:data:`ESC50_COMMIT`), never of a branch, so that the clips and metadata are
the same on every fetch. Its SHA-256 is checked against ``known_hash``
(default :data:`ESC50_SHA256`): a mismatch stops with an error naming both
hashes and nothing is unpacked. No hash for this commit was recorded when it
was pinned (the machines mvbook was written on cannot reach GitHub), so
:data:`ESC50_SHA256` is None until someone fills it in: meanwhile a fetch
checks the *contents* instead (every clip ``meta/esc50.csv`` lists is in the
archive), prints the archive's SHA-256, and writes it with the URL to
``ESC-50/SOURCE.txt``; pass it as ``--sha256`` (or ``known_hash``) to have
later fetches verified, and record it here.

The other two corpora cannot be fetched automatically: GTZAN is no longer
distributed by its authors and TUT Acoustic Scenes 2016 is a set of
multi-gigabyte Zenodo archives under a licence to accept; their loaders say
where to get them.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import pooch

from .base import DatasetError

__all__ = ["ESC50_COMMIT", "ESC50_URL", "ESC50_SHA256", "fetch_esc50"]

#: the commit of ESC-50's repository that is downloaded
ESC50_COMMIT = "33c8ce9eb2cf0b1c2f8bcf322eb349b6be34dbb6"
#: its archive
ESC50_URL = f"https://github.com/karolpiczak/ESC-50/archive/{ESC50_COMMIT}.zip"
#: ``"sha256:<hex>"`` of the archive at :data:`ESC50_URL`; None: not recorded yet (see the module's text).
ESC50_SHA256: str | None = None


def fetch_esc50(root, url: str = ESC50_URL, known_hash: str | None = ESC50_SHA256,
                progress: bool = False) -> Path:
    """Download, verify and unpack the ESC-50 release to ``<root>/ESC-50``.

    ``known_hash``: ``"sha256:<hex>"`` (or the bare hex) the archive must have;
    None: unknown, the contents are checked instead and the hash is reported
    (a :class:`UserWarning`) and written to ``ESC-50/SOURCE.txt``.
    ``progress``: a download progress bar (tqdm). The archive's top folder
    becomes ``ESC-50``, files already there are kept or overwritten, and the
    archive is deleted after unpacking. A tree that already holds every clip
    listed in its ``meta/esc50.csv`` is left alone. Returns ``<root>/ESC-50``.
    """
    root = Path(root)
    target = root / "ESC-50"
    if _complete(target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    known_hash = None if not known_hash else known_hash if ":" in known_hash else f"sha256:{known_hash}"
    name = f"ESC-50-{url.rstrip('/').rsplit('/', 1)[-1]}"
    try:
        archive = Path(pooch.retrieve(url, known_hash=known_hash, fname=name, path=root, progressbar=progress))
    except ValueError as e:  # pooch's checksum mismatch
        raise DatasetError(f"ESC-50 download from {url} failed verification (expected {known_hash}): {e}") from e
    except Exception as e:
        raise DatasetError(f"ESC-50 download from {url} failed: {e}") from e
    sha = pooch.file_hash(str(archive), alg="sha256")
    try:
        _unpack(archive, target, url)
    finally:
        archive.unlink(missing_ok=True)
    (target / "SOURCE.txt").write_text(f"url: {url}\nsha256: {sha}\nverified: {known_hash is not None}\n"
                                       f"fetched: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
    if known_hash is None:
        warnings.warn(f"ESC-50 archive {url} has SHA-256 {sha}; no hash was recorded to verify it against, so "
                      f"its contents were checked instead. Pass --sha256 {sha} (known_hash=) to verify later "
                      f"fetches, and record it as mvbook.data.download.ESC50_SHA256.", UserWarning, stacklevel=2)
    return target


def _unpack(archive: Path, target: Path, url: str) -> None:
    """Unpack the release in ``archive`` to ``target``, after checking that it
    holds ``meta/esc50.csv`` and every clip that lists."""
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        try:
            with zipfile.ZipFile(archive) as z:
                z.extractall(tmp)
        except zipfile.BadZipFile as e:
            raise DatasetError(f"{archive} (from {url}): not a zip archive ({e})") from e
        found = sorted(Path(tmp).glob("*/meta/esc50.csv")) + sorted(Path(tmp).glob("meta/esc50.csv"))
        if not found:
            raise DatasetError(f"{url}: the archive has no meta/esc50.csv; not an ESC-50 release")
        top = found[0].parents[1]
        missing = _missing(top)
        if missing:
            raise DatasetError(f"{url}: the archive lacks {len(missing)} clip(s) that its meta/esc50.csv lists, "
                               f"e.g. audio/{missing[0]}; not unpacked")
        shutil.copytree(top, target, dirs_exist_ok=True)


def _missing(base: Path) -> list[str]:
    """The clips ``base/meta/esc50.csv`` lists that ``base/audio`` lacks."""
    names = [line.split(",", 1)[0] for line in (base / "meta" / "esc50.csv").read_text().splitlines()[1:] if line]
    return [n for n in names if not (base / "audio" / n).is_file()]


def _complete(base: Path) -> bool:
    """Whether ``base`` holds the metadata and every clip it lists."""
    return (base / "meta" / "esc50.csv").is_file() and not _missing(base)
