"""The book's notebooks as programs: the papermill runner behind ``python -m
mvbook grid``, the settings every chapter shares, and the runs chapters reuse.

- :func:`run_training_notebook` executes the *Training* chapter
  (``book/training.md``, a MyST Markdown notebook) with papermill for one
  system × fold and keeps the executed notebook beside the record it wrote;
  :func:`run_grid` does that for every cell of a grid, skipping cells whose
  record exists, carrying on after a failed cell and reporting it at the end.
- :func:`book_dataset`, :func:`book_preset`, :func:`runs_dir` are the
  settings a chapter runs with: ``esc10`` when ``$MVBOOK_DATA`` holds it, else
  ``synthetic``; ``$MVBOOK_PRESET`` (default ``smoke``); ``$MVBOOK_RUNS``
  (default ``runs/book``) for the runs the book trains itself.
- :func:`committed_record` and :func:`book_run` give a chapter a trained run:
  a committed record of a real run from ``results/`` when there is one,
  otherwise a run trained (once, then reused) with the book's preset.
- :func:`copy_records` puts the records of ``results/`` into the built book;
  the executed notebooks beside them are pages of the book, so that every
  Table 3 cell links to the notebook and the record that produced it.

Chapters: *Introduction*, *Training*, *Results*.
"""
from __future__ import annotations

import inspect
import json
import os
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from .results import REPO, load_records, record_path


TRAINING_NOTEBOOK = REPO / "book" / "training.md"
RESULTS = REPO / "results"
PRESET_RANK = {"paper": 0, "cpu": 1, "smoke": 2}   # the better-trained record first
N_FOLDS = {"esc10": 5, "esc50": 5, "synthetic": 5, "gtzan": 10, "dcase2016": 1}   # the protocols of §3.1.3


def protocol_folds(dataset: str) -> range:
    """The test folds of ``dataset``'s protocol (§3.1.3), for the columns of a table."""
    return range(1, N_FOLDS.get(dataset, 1) + 1)


# --- the settings chapters run with ------------------------------------------------------

def book_preset() -> str:
    """``$MVBOOK_PRESET``, default ``smoke`` (the book build and the tests)."""
    return os.environ.get("MVBOOK_PRESET") or "smoke"


def real_data_available(root=None) -> bool:
    """True when the data root (``root`` or ``$MVBOOK_DATA``) holds ESC-10."""
    from .data import DatasetError, load_dataset
    try:
        load_dataset("esc10", root)
    except DatasetError:
        return False
    return True


def book_dataset(root=None) -> str:
    """``$MVBOOK_DATASET`` if set, else ``esc10`` when the data root holds it,
    else the offline ``synthetic`` task."""
    return os.environ.get("MVBOOK_DATASET") or ("esc10" if real_data_available(root) else "synthetic")


def runs_dir() -> Path:
    """Where the book's own runs go: ``$MVBOOK_RUNS``, default ``runs/book`` (git-ignored)."""
    return Path(os.environ.get("MVBOOK_RUNS") or REPO / "runs" / "book")


def resolve(value, default):
    """A notebook parameter: ``"auto"`` (or None) means ``default()``."""
    return default() if value in (None, "auto") else value


def checkpoint_dir(record: dict, checkpoints=None) -> Path:
    """The checkpoint folder of a record's run (``<out>/checkpoints/...`` unless given)."""
    out = Path(record["path"]).parents[3]
    rel = record_path(record["dataset"], record["preset"], record["system"], record["fold"],
                      record["seed"]).with_suffix("")
    return (Path(checkpoints) if checkpoints else out / "checkpoints") / rel


def load_model(record: dict, checkpoints=None, which: str = "best.pt"):
    """The network of a run, with the weights of its selected (best-validation)
    checkpoint, in eval mode; None when the checkpoint is not on this machine."""
    import torch
    from .models import MultiViewNet
    path = checkpoint_dir(record, checkpoints) / which
    if not path.exists():
        return None
    cfg = record["config"]
    net = MultiViewNet(cfg["n_classes"], sr=cfg["sr"], width=cfg["preset"]["width"], views=cfg["views"],
                       raw_bands=cfg["preset"].get("raw_bands", 64), coder=cfg.get("coder", "crnn"),
                       head=cfg.get("head", "fc"))
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return net.eval()


def book_run(system: str = "multiview", dataset=None, preset=None, fold: int = 1, seed: int = 0,
             progress: bool = False) -> dict:
    """A run of ``system`` with the book's settings, trained once into
    :func:`runs_dir` and reused afterwards (its record says when and how it was
    trained). Returns the record, with ``"path"``."""
    from .train import train
    dataset, preset = dataset or book_dataset(), preset or book_preset()
    path = runs_dir() / record_path(dataset, preset, system, fold, seed)
    if path.exists():
        rec = json.loads(path.read_text())
        rec["path"] = str(path)
        if (checkpoint_dir(rec) / "best.pt").exists():
            return rec
    return train(dataset=dataset, system=system, fold=fold, preset=preset, seed=seed,
                 out=runs_dir(), progress=progress)


def committed_record(system: str = "multiview", fold: int = 1, dataset=None, root=RESULTS):
    """The committed record of a real run of ``system`` on ``fold`` (seed 0) in
    ``results/``, or None. Preference: the book's dataset, then ESC-10, then any;
    within one, preset ``paper`` before ``cpu`` before ``smoke``."""
    dataset = dataset or book_dataset()
    recs = [r for r in load_records(root) if r["system"] == system and r["fold"] == fold
            and r["seed"] == 0] if Path(root).is_dir() else []
    if not recs:
        return None
    return min(recs, key=lambda r: (r["dataset"] != dataset, r["dataset"] != "esc10",
                                    PRESET_RANK.get(r["preset"], 9), r["dataset"], r["preset"]))


def trained_run(system: str = "multiview", fold: int = 1) -> tuple[dict, str]:
    """A committed real run if there is one, else the book's own run.
    Returns (record, a sentence saying which)."""
    rec = committed_record(system, fold)
    if rec is not None:
        where = Path(rec["path"]).relative_to(REPO) if Path(rec["path"]).is_relative_to(REPO) else rec["path"]
        return rec, (f"the committed record `{where}` of a real run ({rec['dataset']}, preset "
                     f"`{rec['preset']}`, fold {rec['fold']}, trained on {rec['provenance']['device']}, "
                     f"{rec['provenance']['date'][:10]})")
    rec = book_run(system, fold=fold)
    return rec, (f"a run this book trained itself ({rec['dataset']}, preset `{rec['preset']}`, fold "
                 f"{rec['fold']}, {rec['provenance']['train_seconds']:.0f} s on {rec['provenance']['device']}); "
                 f"no committed record of a real `{system}` run was found in `results/`")


def show_source(obj, marker: str | None = None, before: int = 3, after: int = 1):
    """The library source of ``obj`` (a function, class or method) as a
    highlighted block; with ``marker``, only the lines around the first line
    containing it. Chapters show code this way instead of copying it."""
    from IPython.display import Code
    lines, start = inspect.getsourcelines(obj)
    if marker is not None:
        hit = next((i for i, line in enumerate(lines) if marker in line), None)
        if hit is None:
            raise ValueError(f"{marker!r} not found in the source of {obj.__qualname__}")
        lo, hi = max(0, hit - before), min(len(lines), hit + after + 1)
        lines, start = lines[lo:hi], start + lo
    src = inspect.cleandoc("".join(lines)) if marker is not None else "".join(lines)
    file = Path(inspect.getsourcefile(obj)).resolve()
    where = file.relative_to(REPO) if file.is_relative_to(REPO) else file.name
    return Code(f"# {where}, line {start}\n{src}", language="python")


# --- papermill ---------------------------------------------------------------------------

def training_notebook(path=TRAINING_NOTEBOOK, title: str | None = None):
    """The *Training* chapter as an ``nbformat`` notebook (read with jupytext);
    ``title`` replaces its first heading (the grid names each run's notebook)."""
    import jupytext
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
    import papermill as pm
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
    needs (:func:`mvbook.config.dependencies`: FusionNet's four coders) unless
    they come earlier already; no system twice. An unknown name is kept as it
    is (its cell fails and is reported like any other)."""
    from .config import dependencies
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
                rec = out / record_path(dataset, preset, system, fold, seed)
                nb_path = rec.with_suffix(".ipynb")
                if rec.exists():
                    log(f"skip {cell}: {rec} exists")
                    report.skipped.append(cell)
                    continue
                log(f"run  {cell}" + ("" if direct else f" -> {nb_path}"))
                t = time.time()
                try:
                    if direct:
                        from .train import train
                        kw = {} if epochs is None else {"epochs": epochs}
                        train(dataset=dataset, system=system, fold=fold, preset=preset, seed=seed,
                              device=device, root=data_root, out=out, checkpoints=checkpoints,
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


def _str(x):
    return None if x is None else str(Path(x).expanduser().resolve())


def _short_error(e: Exception) -> str:
    """One line for a failure; for a papermill error, the notebook's exception."""
    name = getattr(e, "ename", None)
    if name:
        return f"{name}: {getattr(e, 'evalue', '')}".strip()
    return f"{type(e).__name__}: {e}".splitlines()[0]


# --- the records of results/, in the built book --------------------------------------------

def copy_records(results=RESULTS, dest="_build/html/results") -> list[Path]:
    """Copy every record (JSON) under ``results`` to ``dest`` (same relative
    paths), so that the built book can link each Table 3 cell to its record;
    the executed notebooks beside them are pages of the book (part *Runs*).
    Returns the files copied."""
    results, dest = Path(results), Path(dest)
    copied = []
    for src in sorted(results.rglob("*.json")) if results.is_dir() else []:
        if "checkpoints" in src.parts:
            continue
        target = dest / src.relative_to(results)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        copied.append(target)
    return copied
