"""The linter is part of the test command: ``ruff check`` (its rules in
pyproject.toml: pyflakes, pycodestyle's errors, import order, numpy-style
docstrings of the library) passes on the whole tree."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None,
                    reason="ruff is not installed: pip install -c constraints.txt -r requirements.txt")
def test_ruff_finds_nothing():
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, f"ruff check found problems (`ruff check --fix .` fixes some):\n{out.stdout}"
