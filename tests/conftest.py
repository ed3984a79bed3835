"""Shared fixtures."""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def esc_root() -> Path:
    """The real data root: ``$MVBOOK_TEST_DATA``, else ``$MVBOOK_DATA``, else
    ``../shared/data`` beside the project, holding ``ESC-50/`` with the 400
    ESC-10 clips; skips the test where it is absent."""
    root = Path(os.environ.get("MVBOOK_TEST_DATA") or os.environ.get("MVBOOK_DATA")
                or Path(__file__).parents[1] / ".." / "shared" / "data")
    if not (root / "ESC-50" / "meta" / "esc50.csv").is_file():
        pytest.skip(f"real data not found under {root}")
    return root.resolve()
