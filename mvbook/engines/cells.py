"""The grid's cells and what became of them: a cell is one dataset × preset ×
system × fold × seed; the cells a cell needs (FusionNet's meta-classifier: its
four coders of the same fold and seed) come from
:func:`mvbook.systems.dependencies`. Also the report (a table of cells with
status, worker/host and wall time) and the progress line. No Dask here.
Chapter: *Running the grid on a cluster*.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal, Protocol, get_args

from ..errors import MvbookError
from ..systems import dependencies

__all__ = ["Cell", "needs", "with_dependencies", "grid_cells", "Check", "Runner", "CellStatus", "CELL_STATUSES",
           "CellResult", "CellFailed", "GridReport", "format_seconds", "Progress"]


@dataclass(frozen=True)
class Cell:
    """One run of the grid."""
    dataset: str
    preset: str
    system: str
    fold: int
    seed: int
    needs: tuple = ()            # systems whose run of the same fold and seed this one needs

    @property
    def name(self) -> str:
        return f"{self.dataset}/{self.preset}/{self.system} fold {self.fold} seed {self.seed}"

    def needed_cells(self) -> list:
        """Names of the cells this one needs."""
        return [Cell(self.dataset, self.preset, s, self.fold, self.seed).name for s in self.needs]


def needs(system: str) -> tuple:
    """The trained systems ``system`` needs; () for an unknown name (its cell fails like any other)."""
    try:
        return tuple(dependencies(system))
    except ValueError:
        return ()


def with_dependencies(systems) -> list:
    """``systems`` in order, each preceded by the trained systems whose runs it
    needs (:func:`mvbook.systems.dependencies`: FusionNet's four coders) unless
    they come earlier already; no system twice. An unknown name is kept as it
    is (its cell fails and is reported like any other)."""
    ordered = []

    def add(system):
        for d in needs(system):
            add(d)
        if system not in ordered:
            ordered.append(system)

    for s in systems:
        add(s)
    return ordered


def grid_cells(dataset: str, preset: str, systems, folds, seeds=(0,)) -> list:
    """Every cell of a grid, seed by seed, fold by fold, each system after the
    systems it needs (``systems`` as :func:`with_dependencies` orders them)."""
    systems = with_dependencies(systems)
    return [Cell(dataset, preset, system, int(fold), int(seed), needs(system))
            for seed in seeds for fold in folds for system in systems]


#: a runner's word on a cell before it runs, None (run it), ``("skip", why)`` or ``("fail", why)``
Check = tuple[Literal["skip", "fail"], str] | None


class Runner(Protocol):
    """What a cell is, to the engines (:class:`mvbook.grid.NotebookRunner` is one):
    ``check(cell)`` says whether to run it (:data:`Check`), ``describe(cell)`` adds to
    its log line, ``runner(cell)`` runs it and returns a dict (``status``, ``detail``,
    ``notebook``, each optional) or raises, and ``failure(cell, exc)`` turns what it
    raised into (short error, notebook or None). Optionally ``prepare(dataset, systems)``
    (called once per dataset in the driver before any cell starts) and ``direct``
    (print the traceback of an error mvbook did not diagnose)."""

    def check(self, cell: Cell) -> Check: ...

    def describe(self, cell: Cell) -> str: ...

    def __call__(self, cell: Cell) -> dict | None: ...

    def failure(self, cell: Cell, exc: Exception) -> tuple[str, str | None]: ...


#: what became of a cell, trained (``done``), its record found (``skipped``), ``failed``, or
#: ``not run`` (a cell it needs failed, its features could not be made, or the grid was stopped)
CellStatus = Literal["done", "skipped", "failed", "not run"]
#: every :data:`CellStatus`, in that order
CELL_STATUSES: tuple[CellStatus, ...] = get_args(CellStatus)


@dataclass
class CellResult:
    """What became of one cell: ``status`` is one of :data:`CELL_STATUSES` (a
    :class:`ValueError` for any other word, which the report would count as a failure)."""
    cell: str
    status: CellStatus
    worker: str = ""
    host: str = ""
    wall: float = 0.0
    detail: str = ""             # why it was skipped, the error, or what it needed
    notebook: str | None = None
    job: str = ""                # the SLURM job of the worker that ran it

    def __post_init__(self):
        if self.status not in CELL_STATUSES:
            raise ValueError(f"{self.cell}: status {self.status!r} is none of {', '.join(CELL_STATUSES)}")


class CellFailed(MvbookError):
    """A cell that ran and failed (raised in the worker, so that Dask's
    ``retries`` rerun it; carries what the report needs)."""

    def __init__(self, cell: str, error: str, notebook=None, worker: str = "", host: str = "", wall: float = 0.0,
                 job: str = ""):
        super().__init__(cell, error, notebook, worker, host, wall, job)
        self.cell, self.error, self.notebook = cell, error, notebook
        self.worker, self.host, self.wall, self.job = worker, host, wall, job

    def __str__(self) -> str:
        return f"{self.cell}: {self.error}"

    def result(self) -> CellResult:
        return CellResult(self.cell, "failed", self.worker, self.host, self.wall, self.error, self.notebook, self.job)


@dataclass
class GridReport:
    """What a grid did: cells trained, skipped (record present) and failed
    (``failed`` also holds the cells not run because a cell they need failed);
    ``rows``: every cell's :class:`.CellResult`, in the order they finished."""
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str, str | None]] = field(default_factory=list)      # (cell, error, notebook or None)
    rows: list[CellResult] = field(default_factory=list)

    def add(self, r: CellResult) -> None:
        self.rows.append(r)
        if r.status == "done":
            self.done.append(r.cell)
        elif r.status == "skipped":
            self.skipped.append(r.cell)
        else:
            self.failed.append((r.cell, r.detail, r.notebook))

    def table(self) -> str:
        """A fixed-width table: cell, status, worker/host (and SLURM job), wall time."""
        head = ("cell", "status", "worker / host", "wall")
        body = [(r.cell, r.status,
                 " / ".join(x for x in (r.worker, r.host, r.job and f"SLURM job {r.job}") if x) or "-",
                 format_seconds(r.wall) if r.status in ("done", "failed") and r.wall else "-") for r in self.rows]
        widths = [max(len(x[i]) for x in [head, *body]) for i in range(4)]
        return "\n".join("  " + "  ".join(x[i].ljust(widths[i]) for i in range(4)).rstrip() for x in [head, *body])

    def summary(self) -> str:
        not_run = sum(1 for r in self.rows if r.status == "not run")
        lines = [f"grid: {len(self.done)} trained, {len(self.skipped)} skipped (record exists), "
                 f"{len(self.failed)} failed" + (f" ({not_run} not run: a cell they need failed)" if not_run else "")]
        if self.rows:
            lines.append(self.table())
        for cell, err, nb in self.failed:
            lines.append(f"  FAILED {cell}: {err}" + (f"\n         notebook: {nb}" if nb else ""))
        return "\n".join(lines)


def format_seconds(s: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on (``s`` rounded to whole seconds)."""
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    """``k/N done, r running, f failed``, elapsed and ETA (from the cells
    finished so far in this run); ``show=False`` (``--no-progress``): the
    engines do not log it."""

    def __init__(self, total: int, done: int = 0, failed: int = 0, show: bool = True):
        self.total, self.done, self.failed, self.start = total, done, failed, time.time()
        self.finished_here, self.show = 0, show

    def count(self, status: CellStatus, ran: bool = True) -> None:
        """One more cell finished (``ran=False``: skipped or refused before it
        started, so it does not count towards the ETA's time per cell)."""
        self.finished_here += ran
        if status in ("done", "skipped"):
            self.done += 1
        else:
            self.failed += 1

    def line(self, running: int) -> str:
        elapsed = time.time() - self.start
        left = self.total - self.done - self.failed
        eta = (format_seconds(elapsed / self.finished_here * left) if self.finished_here and left
               else "0:00" if not left else "?")
        return (f"{self.done}/{self.total} done, {running} running, {self.failed} failed; "
                f"elapsed {format_seconds(elapsed)}, ETA {eta}")
