"""The grid: every system × fold × seed of a dataset, each run through the
*Training* chapter (``book/training.md``, a MyST Markdown notebook) executed
with papermill, its executed notebook kept beside the record it wrote. The
chapter ships with the package as ``mvbook/notebooks/training.md`` (a link to
the book's file in a clone, a copy in a wheel), so an installed ``mvbook``
finds it too.

:func:`run_grid` skips cells whose record exists, carries on after a failed
cell and reports it at the end; ``direct=True`` trains in this process
instead. The cells run one after another here (``engine="serial"``), or on
Dask (:mod:`mvbook.engines`: a local cluster, an existing one, SLURM).
Chapters: *Training*, *Running the grid on a cluster*.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import yaml

from .checkpoints import wait_for_run
from .config import PRESETS, check_seed, get_preset
from .data import load_dataset
from .engines import GridReport, grid_cells, run_cells, with_dependencies
from .errors import ConfigError
from .records import SCHEMA, RunPaths, check_out
from .results import row_key
from .systems import REGISTRY, get_system
from .train import train
from .views.cache import cache_root, load_views

TRAINING_NOTEBOOK = Path(__file__).parent / "notebooks" / "training.md"
_NULLS = ("none", "null", "~", "")


class _TrainOverrides(TypedDict, total=False):
    """The preset fields a grid overrides in :func:`mvbook.train.train` (its ``**overrides``)."""
    epochs: int


def training_notebook(path=TRAINING_NOTEBOOK, title: str | None = None):
    """The *Training* chapter as an ``nbformat`` notebook (read with jupytext);
    ``title`` replaces its first heading (the grid names each run's notebook).
    ``path``: another notebook with the same parameters (``grid --notebook``)."""
    import jupytext  # optional, as papermill
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"training notebook {path} not found: it ships with mvbook as "
                          f"mvbook/notebooks/training.md (a link to book/training.md in a clone); "
                          f"reinstall mvbook, or pass --notebook PATH")
    nb = jupytext.read(path)
    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells):
        raise ConfigError(f"training notebook {path} has no cell tagged `parameters`: papermill would run its "
                          "defaults instead of each cell's run (and write them where those defaults say); tag the "
                          "cell that sets dataset, system, fold … `parameters`")
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


def _run_title(parameters: dict) -> str:
    """The heading of an executed run notebook, e.g. ``Run: esc10 · cpu · multiview · fold 1 · seed 0``."""
    p = {"dataset": "auto", "preset": "auto", "system": "multiview", "fold": 1, "seed": 0, **parameters}
    return f"Run: {p['dataset']} · {p['preset']} · {p['system']} · fold {p['fold']} · seed {p['seed']}"


def _run_training_notebook(output, parameters: dict, log_output: bool = False, progress_bar: bool = False,
                          kernel_name: str = "python3", cwd=None, notebook=TRAINING_NOTEBOOK):
    """Execute the training notebook with papermill: ``parameters`` replace the
    defaults of its ``parameters`` cell; the executed notebook (outputs, and
    the error when a cell fails) is written to ``output``; it runs in ``cwd``
    (default: this process's folder). Raises
    ``papermill.PapermillExecutionError`` when a cell fails."""
    import papermill as pm  # optional: only the notebook path of the grid needs it
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    return pm.execute_notebook(training_notebook(notebook, title=_run_title(parameters)), str(output),
                               parameters=parameters, kernel_name=kernel_name, log_output=log_output,
                               progress_bar=progress_bar, cwd=str(cwd or os.getcwd()))


def notebook_complete(path) -> bool:
    """Whether the executed notebook at ``path`` is whole: it reads, papermill
    recorded its end without an exception, and every cell it ran is completed."""
    try:
        nb = json.loads(Path(path).read_text())
        meta = nb["metadata"].get("papermill", {})
        states = {c.get("metadata", {}).get("papermill", {}).get("status", "completed") for c in nb["cells"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    return bool(meta.get("end_time")) and not meta.get("exception") and states <= {"completed"}


def null(value):
    """A parameter as papermill's command line gives it: ``-p data_root null``
    injects the *string* ``"null"`` (only ``None`` becomes None), so the words
    none, null, ``~`` and the empty string mean None here too.

    Parameters
    ----------
    value : object
        A notebook parameter.

    Returns
    -------
    object
        None for None and those words (any case, surrounding spaces ignored), else ``value``.

    Examples
    --------
    >>> null("Null"), null(""), null("mel"), null(0)
    (None, None, 'mel', 0)
    """
    return None if value is None or (isinstance(value, str) and value.strip().lower() in _NULLS) else value


def int_parameter(name: str, value):
    """A whole-number parameter of the training notebook, as papermill may pass it
    (``-p epochs 3`` gives the int, ``-r epochs 3`` the text): the int, or None for
    None, or a :class:`~mvbook.errors.ConfigError` that names the parameter.

    Parameters
    ----------
    name : str
        The parameter's name, for the message.
    value : object
        Its value.

    Returns
    -------
    int or None

    Examples
    --------
    >>> int_parameter("epochs", "3"), int_parameter("epochs", None)
    (3, None)
    """
    if value is None:
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigError(f"notebook parameter {name} = {value!r}: not a whole number") from None
    return number


def overrides_dict(value) -> dict:
    """The ``overrides`` parameter of the training notebook as a dict.

    Parameters
    ----------
    value : dict or str or None
        A dict (``papermill -y``, the grid) or text (``papermill -p overrides
        '{"reference": "initial"}'``, read as YAML, so JSON too).

    Returns
    -------
    dict
        Preset fields → values (empty for None); anything else is a
        :class:`~mvbook.errors.ConfigError` naming it.

    Examples
    --------
    >>> overrides_dict('{"reference": "initial"}'), overrides_dict(None)
    ({'reference': 'initial'}, {})
    """
    value = null(value)
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise ConfigError(f"overrides {value!r} is neither JSON nor YAML: {e}") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"overrides must be a mapping of preset fields, e.g. {{\"reference\": \"initial\"}}; "
                          f"got {value!r}")
    return dict(value)


@dataclass(frozen=True)
class NotebookRunner:
    """What a grid cell is: the training notebook executed by papermill (or,
    ``direct``, :func:`mvbook.train.train` in this process) writing the cell's
    record under ``out``. The runner of :func:`mvbook.engines.run_cells`;
    picklable, so that Dask workers run it."""
    out: str
    device: str = "auto"
    data_root: str | None = None
    cache_dir: str | None = None
    checkpoints: str | None = None
    epochs: int | None = None
    direct: bool = False
    log_output: bool = False
    notebook: str = str(TRAINING_NOTEBOOK)

    def paths(self, cell) -> RunPaths:
        return RunPaths(Path(self.out), cell.dataset, cell.preset, cell.system, cell.fold, cell.seed)

    def check(self, cell):
        """None when the cell is to run; ("skip", why) when its record exists;
        ("fail", why) when that record is of another row (``_stale``) or
        of another configuration (``_other_configuration``)."""
        paths = self.paths(cell)
        if not paths.record.exists():
            return None
        stale = (_unreadable(paths.record) or _stale(paths.record, cell.system)
                 or _other_configuration(paths.record, cell, self.epochs))
        if stale:
            return "fail", stale
        return None if self.half_written(cell) else ("skip", f"{paths.record} exists")

    def half_written(self, cell) -> bool:
        """Whether the cell's record exists beside an executed notebook that papermill
        did not finish saving (a worker killed between the two): the cell is not
        done, and runs again (its run resumes from its finished checkpoint)."""
        nb = self.paths(cell).notebook
        return not self.direct and self.paths(cell).record.exists() and nb.exists() and not notebook_complete(nb)

    def describe(self, cell) -> str:
        if self.direct:
            return ""
        again = (" (again: the notebook beside its record is half-written)" if self.half_written(cell) else "")
        return f" -> {self.paths(cell).notebook}{again}"

    def __call__(self, cell) -> dict:
        try:
            return self._run(cell)
        except Exception as e:
            if not _in_progress(e):
                raise
        paths = RunPaths(Path(self.out), cell.dataset, cell.preset, cell.system, cell.fold, cell.seed,
                         None if self.checkpoints is None else Path(self.checkpoints))
        print(f"{cell.name}: another process is training this run; waiting for it", flush=True)
        wait_for_run(paths.checkpoint_dir)
        if paths.record.exists():
            return {"status": "skipped", "detail": f"{paths.record} written by the process that trained it"}
        return self._run(cell)                                   # it stopped unfinished: resume it here

    def _run(self, cell) -> dict:
        paths = self.paths(cell)
        if self.direct:
            kw: _TrainOverrides = {} if self.epochs is None else {"epochs": self.epochs}
            train(dataset=cell.dataset, system=cell.system, fold=cell.fold, preset=cell.preset, seed=cell.seed,
                  device=self.device, data_root=self.data_root, out=self.out, checkpoints=self.checkpoints,
                  cache_dir=self.cache_dir, progress=False, **kw)
        else:
            params = {"dataset": cell.dataset, "system": cell.system, "fold": cell.fold, "preset": cell.preset,
                      "seed": cell.seed, "device": self.device, "data_root": _str(self.data_root),
                      "out": str(Path(self.out).resolve()), "checkpoints": _str(self.checkpoints),
                      "cache_dir": _str(self.cache_dir), "epochs": self.epochs}
            _run_training_notebook(paths.notebook, params, log_output=self.log_output, notebook=self.notebook)
        if not paths.record.exists():
            raise RuntimeError(f"finished without writing {paths.record}")
        return {"notebook": None if self.direct else str(paths.notebook)}

    def failure(self, cell, exc) -> tuple:
        nb = self.paths(cell).notebook
        return _short_error(exc), None if self.direct or not nb.exists() else str(nb)

    def prepare(self, dataset: str, systems) -> None:
        """Extract (or find cached) every view the ``systems`` train on, once."""
        views = sorted({v for s in systems if s in REGISTRY for v in get_system(s).views})
        if views:
            load_views(load_dataset(dataset, self.data_root), tuple(views), cache_dir=self.cache_dir,
                       progress=False)


def run_grid(dataset: str, systems, folds, seeds=(0,), *, preset: str = "cpu", out="runs",
             device: str = "auto", data_root=None, cache_dir=None, checkpoints=None, epochs=None,
             direct: bool = False, log=print, log_output: bool = False, engine: str = "serial",
             notebook=TRAINING_NOTEBOOK, **engine_options) -> GridReport:
    """Every system × fold × seed through the training notebook (papermill),
    each executed notebook kept as ``<record>.ipynb`` beside its record
    ``<out>/<dataset>/<preset>/<system>/fold<k>-seed<s>.json`` (``out`` defaults to
    ``runs``, git-ignored; the committed records were written with ``out="results"``).

    A cell whose record exists is skipped (delete the record to redo it). A
    failing cell is logged and the grid goes on; the report lists failures.
    ``direct=True`` calls :func:`mvbook.train.train` in this process instead
    (no notebook is kept); ``notebook``: another training notebook with the
    same parameters cell. Systems that need other runs (``fusionnet``) get
    those systems added before them (:func:`with_dependencies`).

    ``engine``: ``serial`` (one cell after another here), or ``local``,
    ``dask``, ``slurm`` (Dask, :func:`mvbook.engines.run_cells`, whose options
    ``engine_options`` are passed on: ``workers``, ``scheduler_address``,
    ``jobs``, ``gpus_per_cell``, ``retries``, ``threads``, ``client``,
    ``timeout``, ``progress``…); there, features are extracted once in this process before
    the cells start, and a cell starts only after the cells it needs.
    """
    check_grid(preset, seeds, epochs)
    out = check_out(out)
    checkpoints = None if checkpoints is None else check_out(checkpoints)
    if not direct:
        braces = [f"{k} {str(v)!r}" for k, v in (("out", out), ("checkpoints", checkpoints), ("data_root", data_root),
                                             ("cache_dir", cache_dir)) if v is not None and set("{}") & set(str(v))]
        if braces:
            raise ConfigError(f"{', '.join(braces)}: papermill reads {{…}} in a notebook's path as a parameter, so "
                              "the notebook and the record would go to different folders; use a path without "
                              "braces, or --direct")
        training_notebook(notebook)                              # a notebook papermill can parameterise
    requested, ordered = list(systems), with_dependencies(systems)
    added = [s for s in ordered if s not in requested]
    if added:
        log(f"adding {', '.join(added)}: runs that a requested system needs, trained first")
    cells = grid_cells(dataset, preset, requested, folds, seeds)
    if engine != "serial" or engine_options.get("client") is not None:
        # workers may start elsewhere: absolute paths, and the driver's feature cache
        out, cache_dir = Path(out).resolve(), cache_root(cache_dir).resolve()
        data_root, checkpoints = _str(data_root), _str(checkpoints)
    runner = NotebookRunner(str(out), device, _plain(data_root), _plain(cache_dir), _plain(checkpoints), epochs,
                            direct, log_output, str(Path(notebook).resolve()))
    return run_cells(cells, runner, engine, log=log, **engine_options)


def check_grid(preset: str, seeds, epochs=None) -> None:
    """Refuse, once and before any cell starts, a grid whose every cell would
    fail: an impossible preset setting (``--epochs 0``) or a negative seed
    (a :class:`~mvbook.errors.ConfigError` naming it)."""
    get_preset(preset, **({} if epochs is None else {"epochs": epochs}))
    for s in seeds:
        check_seed(s, "--seeds")


def _unreadable(path: Path) -> str | None:
    """Why the file at a cell's record path is not a record this mvbook reads (not
    JSON, not an object, another schema version or none), or None. Such a cell is
    neither done nor run over it: it fails, naming the file."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        why = f"{e.strerror or e}" if isinstance(e, OSError) else f"not valid JSON: {e}"
        return f"{path} cannot be read as a results record ({why}): move it away or delete it to run the cell"
    if not isinstance(record, dict):
        return (f"{path} is not a results record (a JSON {type(record).__name__}, not an object): move it away "
                "or delete it to run the cell")
    if record.get("schema") != SCHEMA:
        return (f"{path} is a record of schema {record.get('schema')!r}, not {SCHEMA!r} (what this mvbook reads): "
                "a grid does not count it as done; move it away or delete it to run the cell")
    return None


def _stale(path: Path, system: str) -> str | None:
    """Why the record at ``path`` does not count as a finished run of ``system``
    (it belongs to another row: made with a blending rule ``system`` no longer
    uses), or None. Such a record is never overwritten."""
    record = json.loads(path.read_text())
    if not isinstance(record, dict) or "system" not in record:      # names no row: not another row's
        return None
    row = row_key(record)
    if row == system:
        return None
    return (f"{path} is a record of row {row!r}, not of {system!r} (made with another blending rule); "
            f"move it (with its notebook) to {path.parent.parent / row}/ or delete it, then run again")


def _other_configuration(path: Path, cell, epochs=None) -> str | None:
    """Why the record at ``path`` is not this cell's run: its preset differs from
    the one the cell trains with (``--epochs`` included), so ``train`` would
    refuse to replace it; None when it is the cell's (or names no preset)."""
    config = json.loads(path.read_text()).get("config")
    if (not isinstance(config, dict) or not isinstance(config.get("preset"), dict) or cell.system not in REGISTRY
            or cell.preset not in PRESETS):
        return None
    want = json.loads(json.dumps(get_system(cell.system).preset(
        get_preset(cell.preset, **({} if epochs is None else {"epochs": epochs}))).to_dict()))
    diff = sorted(k for k in set(want) | set(config["preset"]) if want.get(k) != config["preset"].get(k))
    if not diff:
        return None
    return (f"{path} is a record of another configuration (its preset differs in {', '.join(diff)}): not this "
            f"cell's run, and train refuses to replace it; delete it (with its notebook) to run the cell, or pass "
            f"--out another folder to keep both")


def _in_progress(e: Exception) -> bool:
    """Whether ``e`` (raised by train, or by papermill for the notebook) says that
    another process holds the run's lock."""
    name, value = getattr(e, "ename", type(e).__name__), str(getattr(e, "evalue", e))
    return name == "RunConflictError" and value.startswith("run in progress")


def _str(x):
    return None if x is None else str(Path(x).expanduser().resolve())


def _plain(x):
    return None if x is None else str(x)


def _short_error(e: Exception) -> str:
    """One line for a failure; for a papermill error, the notebook's exception."""
    name = getattr(e, "ename", None)
    if name:
        return f"{name}: {getattr(e, 'evalue', '')}".strip()
    return f"{type(e).__name__}: {e}".splitlines()[0]


__all__ = ["GridReport", "NotebookRunner", "TRAINING_NOTEBOOK", "null", "int_parameter", "overrides_dict", "run_grid",
           "training_notebook", "with_dependencies", "check_grid", "notebook_complete"]
