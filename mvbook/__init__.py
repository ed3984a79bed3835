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

Importing mvbook changes nothing outside it: no file is written, no environment
variable or warnings filter set. The modules that compile with numba
(:mod:`mvbook.features`, :mod:`mvbook.pairpool`, :mod:`mvbook.dropout`) call
``mvbook.numba_cache_dir()`` before they compile, and the chapters'
:func:`~mvbook.plots_runs.book_style` quiets tqdm's widget warning.
"""

import os
import sys
from pathlib import Path

__version__ = "0.1.0"

from .errors import ConfigError, DataError, DivergedError, MvbookError, RunConflictError  # noqa: E402

__all__ = ["__version__", "MvbookError", "DataError", "ConfigError", "RunConflictError", "DivergedError",
           "numba_cache_dir"]


def numba_cache_dir() -> str | None:
    """Where numba caches what it compiles for mvbook and librosa: ``numba/`` under the
    feature cache's default folder (``$MVBOOK_CACHE``, else ``~/.cache/mvbook``; the
    rule of ``mvbook.cache.cache_root``), not the installed packages.

    Called by the modules that compile with numba, before their ``@numba.njit(cache=True)``
    kernels (numba picks a kernel's cache folder when it decorates it), never on
    ``import mvbook``. An explicit ``NUMBA_CACHE_DIR`` wins, and a folder that cannot
    be made leaves numba's own default. Sets ``NUMBA_CACHE_DIR`` (so worker processes
    agree) and, when numba is already imported, its ``config.CACHE_DIR``.

    Returns
    -------
    str or None
        The folder numba caches in, or None for numba's own default.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    folder = Path(os.environ.get("MVBOOK_CACHE") or Path.home() / ".cache" / "mvbook").expanduser() / "numba"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(folder, os.W_OK | os.X_OK):
        return None
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    numba = sys.modules.get("numba")            # imported already: tell its config too
    if numba is not None:
        numba.config.CACHE_DIR = str(folder)
    return str(folder)
