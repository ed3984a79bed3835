"""The grid: every system × fold × seed of a dataset, each run through the
*Training* chapter (``book/training.md``, a MyST Markdown notebook) executed
with papermill, its executed notebook kept beside the record it wrote.

:func:`run_grid` skips cells whose record exists, carries on after a failed
cell and reports it at the end; ``direct=True`` trains in this process
instead. Chapter: *Training*.
"""
from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from .records import REPO, RunPaths
from .results import row_key
from .systems import dependencies
from .train import train

TRAINING_NOTEBOOK = REPO / "book" / "training.md"


def training_notebook(path=TRAINING_NOTEBOOK, title: str | None = None):
    """The *Training* chapter as an ``nbformat`` notebook (read with jupytext);
    ``title`` replaces its first heading (the grid names each run's notebook)."""
    import jupytext             # optional, as papermill
    path = Path(path)
    if not path.exists():
        raise RuntimeError(f"{path} not found: the training notebook lives in the repository's "
                           "book/ folder (install mvbook from a clone with `pip install -e .`)")
    nb = jupytext.read(path)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.pop("jupytext", None)
    if title:
        for cell in nb.cells:
            if cell.cell_type == "markdown" and cell.source.lstrip().startswith("# "):
                first, _, rest = cell.source.lstrip().partition("\n")
                cell.source = (f"# {title}\n\n*The executed training notebook of one run, kept beside its "
                               f"results record by `python -m mvbook grid`. Its parameters are in the cell marked "
                               f"`injected-parameters`; the text is the Training chapter's.*\n{rest}")
                break
    return nb


def run_title(parameters: dict) -> str:
    """The heading of an executed run notebook, e.g. ``Run: esc10 · cpu · multiview · fold 1 · seed 0``."""
    p = {"dataset": "auto", "preset": "auto", "system": "multiview", "fold": 1, "seed": 0, **parameters}
    return f"Run: {p['dataset']} · {p['preset']} · {p['system']} · fold {p['fold']} · seed {p['seed']}"


def run_training_notebook(output, parameters: dict, log_output: bool = False,
                          progress_bar: bool = False, kernel_name: str = "python3", cwd=None):
    """Execute the training notebook with papermill: ``parameters`` replace the
    defaults of its ``parameters`` cell; the executed notebook (outputs, and
    the error when a cell fails) is written to ``output``. Raises
    ``papermill.PapermillExecutionError`` when a cell fails."""
    import papermill as pm      # optional: only the notebook path of the grid needs it
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    return pm.execute_notebook(training_notebook(title=run_title(parameters)), str(output), parameters=parameters,
                               kernel_name=kernel_name, log_output=log_output,
                               progress_bar=progress_bar, cwd=str(cwd or TRAINING_NOTEBOOK.parent))


@dataclass
class GridReport:
    """What a grid did: cells trained, skipped (record present) and failed."""
    done: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: list = field(default_factory=list)      # (cell, error, notebook or None)

    def summary(self) -> str:
        lines = [f"grid: {len(self.done)} trained, {len(self.skipped)} skipped (record exists), "
                 f"{len(self.failed)} failed"]
        for cell, err, nb in self.failed:
            lines.append(f"  FAILED {cell}: {err}" + (f"\n         notebook: {nb}" if nb else ""))
        return "\n".join(lines)


def with_dependencies(systems) -> list:
    """``systems`` in order, each preceded by the trained systems whose runs it
    needs (:func:`mvbook.systems.dependencies`: FusionNet's four coders) unless
    they come earlier already; no system twice. An unknown name is kept as it
    is (its cell fails and is reported like any other)."""
    ordered = []

    def add(system):
        try:
            deps = dependencies(system)
        except ValueError:
            deps = ()
        for d in deps:
            add(d)
        if system not in ordered:
            ordered.append(system)

    for s in systems:
        add(s)
    return ordered


def run_grid(dataset: str, systems, folds, seeds=(0,), preset: str = "cpu", out="results",
             device: str = "auto", data_root=None, cache_dir=None, checkpoints=None, epochs=None,
             direct: bool = False, log=print, log_output: bool = False) -> GridReport:
    """Every system × fold × seed through the training notebook (papermill),
    each executed notebook kept as ``<record>.ipynb`` beside its record
    ``<out>/<dataset>/<preset>/<system>/fold<k>-seed<s>.json``.

    A cell whose record exists is skipped (delete the record to redo it). A
    failing cell is logged and the grid goes on; the report lists failures.
    ``direct=True`` calls :func:`mvbook.train.train` in this process instead
    (no notebook is kept). Systems that need other runs (``fusionnet``) get
    those systems added before them (:func:`with_dependencies`).
    """
    report = GridReport()
    out = Path(out)
    requested, systems = list(systems), with_dependencies(systems)
    added = [s for s in systems if s not in requested]
    if added:
        log(f"adding {', '.join(added)}: runs that a requested system needs, trained first")
    for seed in seeds:
        for fold in folds:
            for system in systems:
                cell = f"{dataset}/{preset}/{system} fold {fold} seed {seed}"
                paths = RunPaths(out, dataset, preset, system, fold, seed)
                rec, nb_path = paths.record, paths.notebook
                if rec.exists():
                    stale = _stale(rec, system)
                    log(f"FAIL {cell}: {stale}" if stale else f"skip {cell}: {rec} exists")
                    report.failed.append((cell, stale, None)) if stale else report.skipped.append(cell)
                    continue
                log(f"run  {cell}" + ("" if direct else f" -> {nb_path}"))
                t = time.time()
                try:
                    if direct:
                        kw = {} if epochs is None else {"epochs": epochs}
                        train(dataset=dataset, system=system, fold=fold, preset=preset, seed=seed,
                              device=device, data_root=data_root, out=out, checkpoints=checkpoints,
                              cache_dir=cache_dir, progress=False, **kw)
                    else:
                        params = {"dataset": dataset, "system": system, "fold": fold, "preset": preset,
                                  "seed": seed, "device": device, "data_root": _str(data_root),
                                  "out": str(out.resolve()), "checkpoints": _str(checkpoints),
                                  "cache_dir": _str(cache_dir), "epochs": epochs}
                        run_training_notebook(nb_path, params, log_output=log_output)
                    if not rec.exists():
                        raise RuntimeError(f"finished without writing {rec}")
                    report.done.append(cell)
                    log(f"done {cell} in {time.time() - t:.0f} s")
                except KeyboardInterrupt:
                    raise
                except Exception as e:  # keep going; report at the end
                    err = _short_error(e)
                    log(f"FAIL {cell}: {err}")
                    if direct:
                        traceback.print_exc()
                    report.failed.append((cell, err, None if direct or not nb_path.exists() else str(nb_path)))
    log(report.summary())
    return report


def _stale(path: Path, system: str) -> str | None:
    """Why the record at ``path`` does not count as a finished run of ``system``
    (it belongs to another row: made with a blending rule ``system`` no longer
    uses), or None. Such a record is never overwritten."""
    row = row_key(json.loads(path.read_text()))
    if row == system:
        return None
    return (f"{path} is a record of row {row!r}, not of {system!r} (made with another blending rule); "
            f"move it (with its notebook) to {path.parent.parent / row}/ or delete it, then run again")


def _str(x):
    return None if x is None else str(Path(x).expanduser().resolve())


def _short_error(e: Exception) -> str:
    """One line for a failure; for a papermill error, the notebook's exception."""
    name = getattr(e, "ename", None)
    if name:
        return f"{name}: {getattr(e, 'evalue', '')}".strip()
    return f"{type(e).__name__}: {e}".splitlines()[0]
