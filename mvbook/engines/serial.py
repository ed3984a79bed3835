"""The serial engine: the cells one after another in this process (the grid
as it always was; no Dask). Chapter: *Training*."""
from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterable

from ..errors import MvbookError
from .cells import Cell, CellResult, GridReport, Progress, Runner
from .clusters import THREAD_VARIABLES, thread_env

__all__ = ["precheck", "run_serial"]


def precheck(cell: Cell, runner: Runner, log: Callable[[str], object]) -> CellResult | None:
    """The :class:`.CellResult` of a cell that is not to run (its record exists:
    skipped; a record of another row: failed), logged; None when it is to run."""
    verdict = runner.check(cell)
    if verdict is None:
        return None
    kind, msg = verdict
    log(f"skip {cell.name}: {msg}" if kind == "skip" else f"FAIL {cell.name}: {msg}")
    return CellResult(cell.name, "skipped" if kind == "skip" else "failed", detail=msg)


def run_serial(cells: Iterable[Cell], runner: Runner, log: Callable[[str], object] = print, progress: bool = True,
               threads: int = 1) -> GridReport:
    """Each cell in turn: skipped when its record exists, else run by
    ``runner``; a failure is logged and the grid goes on. After each cell
    that ran, ``k/N done, …, elapsed, ETA`` (unless ``progress`` is false).
    Each cell's math libraries use ``threads`` threads, as on a Dask worker
    (:func:`mvbook.engines.futures.execute`), so a cell's record does not
    depend on the engine; its provenance says how many (``torch_threads``)."""
    report, host, cells = GridReport(), socket.gethostname(), list(cells)
    bar = Progress(len(cells), show=progress)
    with _capped_threads(threads):
        for cell in cells:
            known = precheck(cell, runner, log)
            if known is not None:
                report.add(known)
                bar.count(known.status, ran=False)
                continue
            log(f"run  {cell.name}{runner.describe(cell)}")
            report.add(_run_one(cell, runner, log, host))
            bar.count(report.rows[-1].status)
            if bar.show:
                log(bar.line(0))
    log(report.summary())
    return report


@contextlib.contextmanager
def _capped_threads(threads: int):
    """Math libraries at ``threads`` threads here (torch, when imported: a direct
    cell trains in this process) and in the kernels started meanwhile (the
    environment they inherit); as they were afterwards."""
    old_env = {v: os.environ.get(v) for v in THREAD_VARIABLES}
    torch = sys.modules.get("torch")
    old_threads = torch.get_num_threads() if torch is not None else None
    os.environ.update(thread_env(threads))
    if torch is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        for v, x in old_env.items():
            os.environ.pop(v, None) if x is None else os.environ.__setitem__(v, x)
        if torch is not None:
            torch.set_num_threads(old_threads)


def _run_one(cell: Cell, runner: Runner, log: Callable[[str], object], host: str) -> CellResult:
    """Run one cell here; its result (a failure is logged, not raised)."""
    t = time.time()
    try:
        info = runner(cell) or {}
    except KeyboardInterrupt:
        raise
    except Exception as e:  # keep going; report at the end
        err, nb = runner.failure(cell, e)
        log(f"FAIL {cell.name}: {err}")
        if getattr(runner, "direct", False) and not isinstance(e, MvbookError):    # a diagnosed error: its line
            traceback.print_exc()
        return CellResult(cell.name, "failed", "serial", host, time.time() - t, err, nb)
    log(f"done {cell.name} in {time.time() - t:.0f} s")
    return CellResult(cell.name, info.get("status", "done"), "serial", host, time.time() - t,
                      info.get("detail", ""), info.get("notebook"))
