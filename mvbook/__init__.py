"""mvbook: the library behind the companion book to Phan et al., "Multi-view
Audio and Music Classification" (ICASSP 2021).

The top level holds only the version and the errors; everything else is
imported from the module that owns it, in the order of the paper:

Data and views
    - :mod:`mvbook.data`: the datasets (:func:`~mvbook.data.load_dataset`), folds and splits (§3.1.1, §3.1.3)
    - :mod:`mvbook.features`: the four views of a clip: Mel, Gammatone, CQT, raw (§3.1.2)
    - :mod:`mvbook.framing`: frames, hops and segment lengths of each view
    - :mod:`mvbook.cache`: the views of a whole dataset, extracted once and cached (:func:`~mvbook.cache.load_views`)
    - :mod:`mvbook.segments`: aligned ≈1.51 s segments of the four views (§3.1.3)

Networks and training
    - :mod:`mvbook.models`: the single-view CRNNs and the multi-view network (Fig. 1, Table 1)
    - :mod:`mvbook.blending`: Algorithm 1: the blending weights of the branch losses
    - :mod:`mvbook.ensemble`: the self-ensemble (Eq. 6–7)
    - :mod:`mvbook.systems`: every trained system by name (:func:`~mvbook.systems.get_system`)
    - :mod:`mvbook.train`: one run, end to end, written as a results record (:func:`~mvbook.train.train`)
    - :mod:`mvbook.evaluate`: the segment-averaged test (§3.1.3)
    - :mod:`mvbook.grid`: systems × folds × seeds (:func:`~mvbook.grid.run_grid`), on :mod:`mvbook.engines`

Results
    - :mod:`mvbook.records`: results records on disk (:func:`~mvbook.records.load_records`)
    - :mod:`mvbook.results`: Table 3, late fusion, paired tests and the paper's claims
    - :mod:`mvbook.plots`, :mod:`mvbook.plots_runs`: the book's figures

Errors
    :class:`~mvbook.errors.MvbookError` is the base of every error mvbook raises on purpose;
    catch :class:`~mvbook.errors.DataError` (unusable data), :class:`~mvbook.errors.ConfigError` (arguments that
    cannot run), :class:`~mvbook.errors.RunConflictError` (a run that would clash with another)
    or :class:`~mvbook.errors.DivergedError` (a non-finite loss). Any other exception is a bug.

The command line, ``python -m mvbook``, is :mod:`mvbook.__main__`.
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

__all__ = ["__version__", "MvbookError", "DataError", "ConfigError", "RunConflictError", "DivergedError"]


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
