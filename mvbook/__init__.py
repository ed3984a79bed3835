"""mvbook: the library behind the companion book to Phan et al., "Multi-view
Audio and Music Classification" (ICASSP 2021).

Modules, by concern: ``data`` (datasets and splits) → ``features`` (the four
views) → ``models`` (CRNNs, multi-view network) → ``blending`` (Algorithm 1)
→ ``ensemble`` (Eq. 6–7) → ``train`` / ``evaluate`` → ``results``.
"""

import os
import sys
import warnings
from pathlib import Path

# Chapters report progress in plain lines, not widgets: keep tqdm.auto from
# warning, when a module imports it, that ipywidgets is missing.
warnings.filterwarnings("ignore", message="IProgress not found")

__version__ = "0.1.0"

from .errors import ConfigError, DataError, DivergedError, MvbookError, RunConflictError  # noqa: E402


def _numba_cache_default() -> None:
    """numba compiles ``mvbook.features``' kernels once and caches them: under the
    feature cache's default folder (``$MVBOOK_CACHE``, else ``~/.cache/mvbook``; the
    rule of ``mvbook.cache.cache_root``) in ``numba/``, not in the installed package.
    Set before numba is imported; an explicit ``NUMBA_CACHE_DIR`` wins, and a folder
    that cannot be made leaves numba's own default."""
    if "NUMBA_CACHE_DIR" in os.environ:
        return
    folder = Path(os.environ.get("MVBOOK_CACHE") or Path.home() / ".cache" / "mvbook").expanduser() / "numba"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    if os.access(folder, os.W_OK | os.X_OK):
        os.environ["NUMBA_CACHE_DIR"] = str(folder)
        numba = sys.modules.get("numba")        # imported before mvbook: tell its config too
        if numba is not None:
            numba.config.CACHE_DIR = str(folder)


_numba_cache_default()
