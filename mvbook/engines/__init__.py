"""Engines that run the grid's cells: ``serial`` (one after another in this
process, the default, no new dependency), and on Dask distributed (an optional
extra: ``pip install "mvbook[cluster]"``): ``local`` (a cluster on this
machine, one worker per GPU or N CPU workers), ``dask`` (an existing cluster
by its scheduler's address) and ``slurm`` (dask-jobqueue).

A *runner* says what a cell is: ``check(cell)`` → None (to run), ``("skip",
why)`` or ``("fail", why)``; ``describe(cell)`` (for the log); ``runner(cell)``
runs it and returns a dict (``notebook``…) or raises; ``failure(cell, exc)`` →
(short error, notebook or None); optionally ``prepare(dataset, systems)``,
called once per dataset in the driver before any cell is submitted (feature
extraction), and ``direct`` (print tracebacks). :class:`mvbook.grid.NotebookRunner`
runs the training notebook. Chapter: *Running the grid on a cluster*.
"""
from __future__ import annotations

import sys
import traceback

from ..errors import MvbookError
from .cells import (
    Cell,
    CellFailed,
    CellResult,
    GridReport,
    Progress,
    format_seconds,
    grid_cells,
    needs,
    with_dependencies,
)
from .clusters import ENGINES, check_engine, local_cluster, open_engine, slurm_cluster, visible_gpus
from .futures import drive, execute, submit_cells
from .serial import precheck, run_serial

__all__ = ["Cell", "CellFailed", "CellResult", "ENGINES", "GridReport", "Progress", "execute", "format_seconds",
           "grid_cells", "local_cluster", "needs", "open_engine", "run_cells", "run_serial",
           "slurm_cluster", "visible_gpus", "with_dependencies"]


def run_cells(cells, runner, engine: str = "serial", *, workers=None, scheduler_address=None, jobs=None,
              gpus_per_cell=None, retries: int = 0, threads: int = 1, log=print, client=None,
              progress_every: float = 60.0, timeout=None, slurm_options=None,
              dashboard_address: str = "127.0.0.1:8787", progress: bool = True) -> GridReport:
    """Run ``cells`` (in dependency order, :func:`.grid_cells`) with ``runner``
    on ``engine``, or on ``client`` (a Dask client of a cluster you started;
    ``gpus_per_cell`` then defaults to 0). ``retries``: reruns of a failed
    cell; ``threads``: math-library threads per cell, whatever the engine; ``timeout`` (s): cells
    not finished by then are cancelled and reported; ``progress=False``: no
    ``k/N done … ETA`` lines. Returns the report (also logged, with its table)."""
    if client is None:
        check_engine(engine, scheduler_address, jobs, threads, workers)
    if client is None and engine == "serial":
        return run_serial(cells, runner, log, progress, threads)
    report, failed, todo = GridReport(), set(), []
    for cell in cells:
        known = precheck(cell, runner, log)
        if known is None:
            todo.append(cell)
        else:
            report.add(known)
            failed.update([cell.name] if known.status == "failed" else [])
    todo = _prepare_features(todo, runner, report, failed, log)
    tracker = Progress(len(cells), done=len(report.done) + len(report.skipped), failed=len(report.failed),
                       show=progress)
    if todo:
        if client is not None:
            _run_on_client(client, todo, runner, report, failed=failed, progress=tracker,
                           gpus_per_cell=gpus_per_cell or 0, retries=retries, threads=threads, log=log,
                           progress_every=progress_every, timeout=timeout)
        else:
            with open_engine(engine, workers=workers, scheduler_address=scheduler_address, jobs=jobs,
                             gpus_per_cell=gpus_per_cell, threads=threads, log=log,
                             dashboard_address=dashboard_address, slurm_options=slurm_options) as (c, gpc, watch):
                _run_on_client(c, todo, runner, report, failed=failed, progress=tracker, gpus_per_cell=gpc,
                               retries=retries, threads=threads, log=log, progress_every=progress_every,
                               timeout=timeout, watch=watch)
    log(report.summary())
    return report


def _prepare_features(todo, runner, report, failed, log) -> list:
    """Call ``runner.prepare`` once per dataset (here, in the driver, before any
    cell starts: the feature cache is filled once, not by every worker at
    once); the cells of a dataset whose preparation failed are reported as not run,
    with the error's first line. An error that is not an :class:`~mvbook.errors.MvbookError`
    (a bug, not a diagnosis) has its traceback printed to stderr first."""
    if not hasattr(runner, "prepare"):
        return todo
    keep = []
    for dataset in dict.fromkeys(c.dataset for c in todo):
        cells = [c for c in todo if c.dataset == dataset]
        try:
            log(f"features of {dataset}: extracting (or finding in the cache) before the cells start")
            runner.prepare(dataset, sorted({c.system for c in cells}))
            keep += cells
        except Exception as e:
            if not isinstance(e, MvbookError):
                traceback.print_exc(file=sys.stderr)
            err = f"{type(e).__name__}: {e}".splitlines()[0]
            log(f"FAIL features of {dataset}: {err}")
            for c in cells:
                failed.add(c.name)
                report.add(CellResult(c.name, "not run", detail=f"not run: needs the features of {dataset}, "
                                                                 f"which failed ({err})"))
    return [c for c in todo if c in keep]


def _run_on_client(client, todo, runner, report, *, failed, progress, gpus_per_cell, retries, threads, log,
                   progress_every=60.0, timeout=None, watch=None):
    """Submit ``todo`` to ``client`` and wait for them (:func:`submit_cells`, :func:`drive`;
    ``watch``: see there)."""
    n_before = len(report.rows)
    submitted = submit_cells(client, todo, runner, report, failed, threads=threads, gpus_per_cell=gpus_per_cell,
                             retries=retries)
    for r in report.rows[n_before:]:
        progress.failed += 1
        log(f"FAIL {r.cell}: {r.detail}")
    log(f"submitted {len(submitted)} cell(s)" + (f", each asking for {gpus_per_cell} GPU" if gpus_per_cell else "")
        + (f", {retries} retr{'y' if retries == 1 else 'ies'}" if retries else ""))
    drive(client, submitted, report, progress, log=log, every=progress_every, timeout=timeout, watch=watch)
