"""The grid on a Dask client: one task per cell, the cells a cell needs passed
to it as futures (so it starts only after them), ``retries`` and
``resources={"GPU": n}`` per task; progress while it runs; a report at the end.
Runs in the driver, except :func:`execute`, which runs in a worker.
Chapter: *Running the grid on a cluster*.
"""
from __future__ import annotations

import os
import socket
import sys
import time
import traceback
import uuid

from ..errors import MvbookError
from .cells import Cell, CellFailed, CellResult, Progress, Runner
from .clusters import thread_env

__all__ = ["execute", "submit_cells", "drive", "WATCH_EVERY"]


def execute(runner: Runner, cell: Cell, threads: int, *needed: CellResult) -> CellResult:
    """Run one cell in a worker (``needed``: the results of the cells it needs,
    there only to order the tasks). Its record is checked again first (another
    driver may have made it meanwhile). Math libraries are capped at ``threads``
    threads. Returns a :class:`.CellResult`; raises :class:`.CellFailed`."""
    from distributed import get_worker
    t = time.time()
    os.environ.update(thread_env(threads))          # the notebook's kernel inherits them
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    try:
        worker = get_worker().name or get_worker().address
    except ValueError:
        worker = ""
    host, job = socket.gethostname(), os.environ.get("SLURM_JOB_ID", "")     # the job: to find its log
    verdict = runner.check(cell)
    if verdict is not None:
        kind, msg = verdict
        if kind == "skip":
            return CellResult(cell.name, "skipped", str(worker), host, 0.0, msg, job=job)
        raise CellFailed(cell.name, msg, None, str(worker), host, 0.0, job)
    try:
        info = runner(cell) or {}
    except Exception as e:
        err, nb = runner.failure(cell, e)
        if getattr(runner, "direct", False) and not isinstance(e, MvbookError):    # a diagnosed error: its line
            traceback.print_exc()
        raise CellFailed(cell.name, err, nb, str(worker), host, time.time() - t, job) from None
    return CellResult(cell.name, info.get("status", "done"), str(worker), host, time.time() - t,
                      info.get("detail", ""), info.get("notebook"), job)


def _executing_keys(dask_worker) -> list:
    """The keys a worker is running now (called through ``client.run``)."""
    return [str(ts.key) for ts in getattr(dask_worker.state, "executing", ())]


def submit_cells(client, cells, runner, report, failed: set, *, threads=1, gpus_per_cell=0, retries=0) -> dict:
    """Submit every cell (already known not to be finished), each with the
    futures of the cells it needs; a cell that needs one already failed is not
    submitted, and reported as not run. Returns {key: (cell, future)}."""
    resources = {"GPU": gpus_per_cell} if gpus_per_cell else None
    by_name: dict[str, tuple] = {}
    token = uuid.uuid4().hex[:6]
    for cell in cells:
        bad = [n for n in cell.needed_cells() if n in failed]
        if bad:
            failed.add(cell.name)
            report.add(CellResult(cell.name, "not run", detail=f"not run: needs {', '.join(bad)}, which failed"))
            continue
        needed = [by_name[n][1] for n in cell.needed_cells() if n in by_name]
        fut = client.submit(execute, runner, cell, threads, *needed, key=f"{cell.name} [{token}]",
                            resources=resources, retries=retries, pure=False)
        by_name[cell.name] = (cell, fut)
    return {fut.key: (cell, fut) for cell, fut in by_name.values()}


def _outcome(cell, fut, futures_by_name, why: str = "the grid's time limit passed") -> CellResult:
    """The result of a finished future: its cell's, or 'not run' when a cell it
    needs failed or it was cancelled (``why``)."""
    if fut.status == "finished":
        return fut.result()
    if fut.status == "cancelled":
        return CellResult(cell.name, "not run", detail=f"not run: cancelled ({why})")
    exc = fut.exception()
    if isinstance(exc, CellFailed) and exc.cell == cell.name:
        return exc.result()
    bad = [n for n in cell.needed_cells() if n in futures_by_name and futures_by_name[n].status == "error"]
    if isinstance(exc, CellFailed):       # the cell whose failure Dask passed on to this one
        bad = [exc.cell] if exc.cell in cell.needed_cells() or not bad else bad
    if bad:
        return CellResult(cell.name, "not run", detail=f"not run: needs {', '.join(bad)}, which failed")
    return CellResult(cell.name, "failed", detail=f"{type(exc).__name__}: {exc}".splitlines()[0])


def _running_count(client, keys) -> int:
    try:
        return sum(k in keys for ks in client.run(_executing_keys).values() for k in ks)
    except Exception:  # a worker going away mid-call: the count is only for the progress line
        return 0


WATCH_EVERY = 5.0      # seconds between two looks at what the engine's watch checks


def drive(client, submitted: dict, report, progress: Progress, *, log=print, every: float = 60.0, timeout=None,
          watch=None):
    """Wait for every submitted cell, logging each as it finishes and the
    progress line (also every ``every`` s; not when ``progress.show`` is false);
    after ``timeout`` s the rest are cancelled. ``watch()`` (every few seconds):
    why the grid cannot go on (a refused SLURM job, a worker that died at once),
    or None; when it says why, the rest are cancelled with that reason."""
    from distributed import wait
    pending = {fut for _, fut in submitted.values()}
    by_name = {cell.name: fut for cell, fut in submitted.values()}
    deadline = None if timeout is None else time.time() + timeout
    shown = time.time()
    try:
        while pending:
            step = min(every, WATCH_EVERY) if watch is not None else every
            step = step if deadline is None else max(0.1, min(step, deadline - time.time()))
            try:
                wait(list(pending), timeout=step, return_when="FIRST_COMPLETED")
            except TimeoutError:
                pass
            finished, why = [f for f in pending if f.done()], "the grid's time limit passed"
            if deadline is not None and time.time() >= deadline:
                client.cancel(list(pending))
                finished = list(pending)
            elif watch is not None and (problem := watch()):
                log(f"stopping the grid: {problem}")
                client.cancel([f for f in pending if not f.done()])
                finished, why = list(pending), problem
            for fut in sorted(finished, key=lambda f: str(f.key)):
                cell = submitted[fut.key][0]
                r = _outcome(cell, fut, by_name, why)
                report.add(r)
                progress.count(r.status)
                where = (f" on {r.worker or '?'} ({r.host}{f', SLURM job {r.job}' if r.job else ''})"
                         if r.host else "")
                log(f"done {r.cell} in {r.wall:.0f} s{where}" if r.status == "done" else
                    f"{'skip' if r.status == 'skipped' else 'FAIL'} {r.cell}: {r.detail}")
            pending -= set(finished)
            if progress.show and (finished or time.time() - shown >= every):
                shown = time.time()
                log(progress.line(_running_count(client, {str(f.key) for f in pending}) if pending else 0))
    except BaseException:
        client.cancel(list(pending))
        raise
