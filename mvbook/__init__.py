"""mvbook: the library behind the companion book to Phan et al., "Multi-view
Audio and Music Classification" (ICASSP 2021).

The top level holds only the version and the errors; everything else is
imported from the module that owns it. The package is cut in layers, each
importing only from the layers above it in this list (``tests/test_architecture.py``):

``mvbook.errors``, ``mvbook.schema``, ``mvbook.config``, ``mvbook.device``, ``mvbook.seeds``
    the errors, the results record's types, the presets, the device and precision, the random streams of a run
:mod:`mvbook.data`
    the datasets (:func:`~mvbook.data.load_dataset`), folds and splits (§3.1.1, §3.1.3)
:mod:`mvbook.views`
    the four views of a clip, cached, and their aligned segments (§3.1.2–3.1.3)
:mod:`mvbook.nets`
    the networks: the paper's CRNNs and multi-view network (Fig. 1, Tables 1–2), FusionNet's and CAB-CNN's
:mod:`mvbook.blending`, :mod:`mvbook.ensemble`
    Algorithm 1 (the blending weights of the branch losses) and the self-ensemble and late fusion (Eq. 6–7)
:mod:`mvbook.systems`
    every trained system by name (:func:`~mvbook.systems.get_system`): how its network is built and trained
:mod:`mvbook.train`, :mod:`mvbook.evaluate`, :mod:`mvbook.checkpoints`, :mod:`mvbook.records`
    one run, end to end, written as a results record (:func:`~mvbook.train.train`)
:mod:`mvbook.grid`, :mod:`mvbook.engines`, :mod:`mvbook.verify`
    systems × folds × seeds on an engine (:func:`~mvbook.grid.run_grid`), and a record's run repeated
:mod:`mvbook.results`, :mod:`mvbook.tables`, :mod:`mvbook.plan`, :mod:`mvbook.power`
    Table 3, paired tests, the analysis plan and its power, from the records
:mod:`mvbook.book`
    what exists only for the chapters: figures, HTML tables, the sentences of the findings; nothing
    else imports it

Errors
    :class:`~mvbook.errors.MvbookError` is the base of every error mvbook raises on purpose;
    catch :class:`~mvbook.errors.DataError` (unusable data), :class:`~mvbook.errors.ConfigError` (arguments that
    cannot run), :class:`~mvbook.errors.RunConflictError` (a run that would clash with another)
    or :class:`~mvbook.errors.DivergedError` (a non-finite loss). Any other exception is a bug.

The command line, ``python -m mvbook``, is :mod:`mvbook.__main__`.

Importing mvbook changes nothing outside it: no file is written, no environment
variable or warnings filter set. The modules that compile with numba
(:mod:`mvbook.views.features`, :mod:`mvbook.nets.pairpool`, :mod:`mvbook.nets.dropout`) call
``mvbook.numba_cache_dir()`` before they compile, and the chapters'
:func:`~mvbook.book.plots_runs.book_style` quiets tqdm's widget warning.
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
    rule of ``mvbook.views.cache.cache_root``), not the installed packages.

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
