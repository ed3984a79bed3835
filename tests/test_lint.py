"""The linter is part of the test command: ``ruff check`` (its rules in
pyproject.toml: pyflakes, pycodestyle's errors, import order, numpy-style
docstrings of the library) passes on the whole tree."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def test_ruff_is_installed():
    """A missing linter fails the suite (issue 45, item 7): it would otherwise pass on nothing."""
    assert importlib.util.find_spec("ruff") is not None, \
        "ruff is not installed: pip install -c constraints.txt -r requirements.txt"


def test_ruff_finds_nothing():
    if importlib.util.find_spec("ruff") is None:
        pytest.fail("ruff is not installed: pip install -c constraints.txt -r requirements.txt")
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, f"ruff check found problems (`ruff check --fix .` fixes some):\n{out.stdout}"
