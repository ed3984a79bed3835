"""A typo in ``MVBOOK_PRESET`` deletes nothing (issue 43, case 4): the book's
preset is checked by name, and ``scripts/build_book.sh`` checks it before it
removes the book's own runs."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mvbook.book import chapters
from mvbook.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["cpuu", " smoke"])
def test_a_preset_typo_is_refused_naming_it(monkeypatch, name):
    monkeypatch.setenv("MVBOOK_PRESET", name)
    with pytest.raises(ConfigError) as e:
        chapters.book_preset()
    assert str(e.value) == (f"MVBOOK_PRESET={name!r} is not a preset: use one of cpu, long, paper, smoke "
                            "(or unset it for smoke)")


def test_build_book_with_a_preset_typo_deletes_nothing(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "build_book.sh", tmp_path / "scripts")
    runs = tmp_path / "runs" / "book"
    runs.mkdir(parents=True)
    (runs / "trained.json").write_text("{}")
    (tmp_path / "_build").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("MVBOOK_DATA", "MVBOOK_RUNS")}
    env |= {"MVBOOK_PRESET": "cpuu", "PYTHON": sys.executable, "PYTHONPATH": str(REPO)}
    r = subprocess.run(["bash", str(tmp_path / "scripts" / "build_book.sh"), "--keep-cache"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr == ("build_book: MVBOOK_PRESET='cpuu' is not a preset: use one of cpu, long, paper, smoke "
                        "(or unset it for smoke); nothing was deleted\n")
    assert (runs / "trained.json").is_file() and (tmp_path / "_build").is_dir()
