"""What the book's chapters share: the settings they run with, the runs they
show, library source beside the equations, and the records of ``results/``
in the built book. Imported by chapters only; the library never imports it.

- :func:`book_dataset`, :func:`book_preset`, :func:`runs_dir`: ``esc10`` when
  ``$MVBOOK_DATA`` holds it, else ``synthetic``; ``$MVBOOK_PRESET`` (default
  ``smoke``); ``$MVBOOK_RUNS`` (default ``runs/book``) for the runs the book
  trains itself.
- :func:`record_groups`, :func:`main_records`: the committed records by
  (dataset, preset), and the group a chapter's tables are made of.
- :func:`committed_record`, :func:`book_run`, :func:`trained_run`: a trained
  run for a chapter, committed when there is one, else trained once and reused;
  :func:`demo_record`: the committed record a method chapter demonstrates on
  (ESC-10 first: records need no audio, so every build shows real runs);
  :func:`record_where`, :func:`describe_record`: where a record is and what it
  is, in words, without the build machine's paths.
- :func:`preset_caveat`: what the accuracies of a run with a preset mean.
- :func:`run_index`: every committed run, grouped for the *Runs* page.
- :func:`show_source`: the library source of a function, as a code block;
  :func:`bash_block`: command lines (made by the library) as one.
- :func:`copy_records`: the records of ``results/`` into the built book.

Importing it applies :func:`mvbook.book.plots_runs.book_style` to every figure.

Chapters: all.
"""
from __future__ import annotations

import inspect
import json
import os
import shutil
import textwrap
import warnings
from pathlib import Path

# first, before anything below imports tqdm.auto: the chapters report progress in plain lines, so
# tqdm's warning that ipywidgets is missing says nothing to a reader (import mvbook sets no filter)
warnings.filterwarnings("ignore", message="IProgress not found")

from ..config import PRESETS
from ..data import DatasetError, load_dataset
from ..errors import ConfigError, DataError
from ..records import REPO, RunPaths, load_records
from ..results import row_key
from ..train import train
from .plots_runs import book_style

__all__ = ["RESULTS", "DEMO_DATASET", "N_FOLDS", "protocol_folds", "book_preset", "real_data_available",
           "book_dataset", "runs_dir", "resolve", "book_run", "record_groups", "main_records", "committed_record",
           "demo_record", "record_where", "describe_record", "trained_run", "preset_caveat", "run_index",
           "show_source", "bash_block", "copy_records", "RERUNS", "results_dir", "in_clone"]

book_style()               # every figure of a chapter: sized for the book's column, text as large as the body's
RESULTS = REPO / "results"
RERUNS = REPO / "reruns"    # committed runs trained again from their records' configuration and commit
#: the dataset of the committed real runs the method chapters demonstrate on
DEMO_DATASET = "esc10"
# demo records: the paper's scale, then the preset of the book's tables (main_records), then
# the scale check's few `long` runs, then smoke: a chapter shows a run its tables are made of
_PRESET_RANK = {"paper": 0, "cpu": 1, "long": 2, "smoke": 3}
#: dataset → number of folds of its protocol (§3.1.3)
N_FOLDS = {"esc10": 5, "esc50": 5, "synthetic": 5, "gtzan": 10, "dcase2016": 1}


def protocol_folds(dataset: str) -> range:
    """The test folds of a dataset's protocol (§3.1.3), for the columns of a table.

    Parameters
    ----------
    dataset : str
        A dataset name (a key of :data:`N_FOLDS`; any other has one fold).

    Returns
    -------
    range
        1 to the number of folds.

    Examples
    --------
    >>> list(protocol_folds("esc10"))
    [1, 2, 3, 4, 5]
    """
    return range(1, N_FOLDS.get(dataset, 1) + 1)


# --- the settings chapters run with ------------------------------------------------------

def book_preset() -> str:
    """The preset the chapters train with.

    Returns
    -------
    str
        ``$MVBOOK_PRESET``, default ``smoke`` (the book build and the tests).

    Raises
    ------
    mvbook.errors.ConfigError
        ``$MVBOOK_PRESET`` names no preset (a typo such as ``cpuu`` or `` smoke``):
        no chapter trains, and ``scripts/build_book.sh`` deletes nothing.
    """
    name = os.environ.get("MVBOOK_PRESET") or "smoke"
    if name not in PRESETS:
        raise ConfigError(f"MVBOOK_PRESET={name!r} is not a preset: use one of {', '.join(sorted(PRESETS))} "
                          "(or unset it for smoke)")
    return name


def real_data_available(root=None) -> bool:
    """Whether the data root holds ESC-10.

    Parameters
    ----------
    root : str or path-like, optional
        The data root; default ``$MVBOOK_DATA`` (:func:`~mvbook.data.load_dataset`).

    Returns
    -------
    bool
    """
    try:
        load_dataset("esc10", root)
    except DatasetError:
        return False
    return True


def book_dataset(root=None) -> str:
    """The dataset the chapters train on.

    Parameters
    ----------
    root : str or path-like, optional
        The data root; default ``$MVBOOK_DATA``.

    Returns
    -------
    str
        ``$MVBOOK_DATASET`` if set, else ``esc10`` when the data root holds it,
        else the offline ``synthetic`` task.
    """
    return os.environ.get("MVBOOK_DATASET") or ("esc10" if real_data_available(root) else "synthetic")


def in_clone() -> bool:
    """Whether mvbook runs from a clone of its repository.

    Returns
    -------
    bool
        False when it is installed from a wheel into site-packages.
    """
    return (REPO / "pyproject.toml").is_file() and (REPO / "book").is_dir()


def runs_dir() -> Path:
    """Where the book's own runs go.

    Returns
    -------
    pathlib.Path
        ``$MVBOOK_RUNS``, default ``runs/book`` of the clone (git-ignored), or of
        the current folder outside a clone.
    """
    if os.environ.get("MVBOOK_RUNS"):
        return Path(os.environ["MVBOOK_RUNS"])
    return (REPO if in_clone() else Path.cwd()) / "runs" / "book"


def results_dir() -> Path:
    """The folder of the records the book documents.

    Returns
    -------
    pathlib.Path
        ``$MVBOOK_RESULTS``, default the clone's ``results/``.

    Raises
    ------
    mvbook.errors.DataError
        Outside a clone (mvbook installed from a wheel, which holds no records)
        without ``$MVBOOK_RESULTS``: the message says where to point it.
    """
    if os.environ.get("MVBOOK_RESULTS"):
        return Path(os.environ["MVBOOK_RESULTS"])
    if not in_clone():
        raise DataError(f"the book's records are not installed with mvbook ({REPO} is not a clone of its "
                        "repository): set MVBOOK_RESULTS to the results/ folder of a clone")
    return RESULTS


def resolve(value, default):
    """A notebook parameter, ``"auto"`` resolved.

    Parameters
    ----------
    value : object
        The parameter's value; ``"auto"`` or None means the default.
    default : callable
        Called without arguments for the default (e.g. :func:`book_preset`).

    Returns
    -------
    object
        ``value``, or ``default()``.

    Examples
    --------
    >>> resolve("auto", lambda: "smoke"), resolve("cpu", lambda: "smoke")
    ('smoke', 'cpu')
    """
    return default() if value in (None, "auto") else value


def book_run(system: str = "multiview", dataset=None, preset=None, fold: int = 1, seed: int = 0,
             progress: bool = False) -> dict:
    """A run of ``system`` with the book's settings, trained once and reused.

    It is trained into :func:`runs_dir` the first time (:func:`mvbook.train.train`);
    afterwards its record (which says when and how it was trained) is read back.

    Parameters
    ----------
    system : str
        A system name (:func:`mvbook.systems.get_system`).
    dataset : str, optional
        Default :func:`book_dataset`.
    preset : str, optional
        Default :func:`book_preset`.
    fold : int
        Test fold.
    seed : int
        Random seed.
    progress : bool
        Show progress bars while training.

    Returns
    -------
    dict
        The run's results record, with ``"path"`` (its file).
    """
    dataset, preset = dataset or book_dataset(), preset or book_preset()
    paths = RunPaths(runs_dir(), dataset, preset, system, fold, seed)
    if paths.record.exists() and paths.best.exists():
        return json.loads(paths.record.read_text()) | {"path": str(paths.record)}
    return train(dataset=dataset, system=system, fold=fold, preset=preset, seed=seed,
                 out=runs_dir(), progress=progress)


def record_groups(root=None) -> dict:
    """The committed records by (dataset, preset).

    Parameters
    ----------
    root : str or path-like, optional
        Where the records lie; default :func:`results_dir`.

    Returns
    -------
    dict
        (dataset, preset) → list of records (:func:`mvbook.records.load_records`);
        empty when ``root`` is absent.
    """
    root = results_dir() if root is None else root
    groups = {}
    for r in load_records(root) if Path(root).is_dir() else []:
        groups.setdefault((r["dataset"], r["preset"]), []).append(r)
    return groups


def main_records(root=None) -> tuple[tuple[str, str], list[dict]]:
    """The group of records the book's tables show.

    ESC-10 at the ``cpu`` preset when ``root`` has it, else the largest group.

    Parameters
    ----------
    root : str or path-like, optional
        Where the records lie; default :func:`results_dir`.

    Returns
    -------
    tuple
        ``((dataset, preset), records)``; ``(("esc10", "cpu"), [])`` without records.
    """
    groups = record_groups(root)
    main = ("esc10", "cpu") if ("esc10", "cpu") in groups or not groups else max(groups, key=lambda g: len(groups[g]))
    return main, groups.get(main, [])


def committed_record(system: str = "multiview", fold: int = 1, dataset=None, root=None):
    """The committed record of a real run of ``system`` on ``fold`` (seed 0).

    Preference: the book's dataset, then ESC-10, then any; within one, by
    preset (``paper``, ``cpu``, ``long``, ``smoke``, then any other).

    Parameters
    ----------
    system : str
        A row key (:func:`~mvbook.results.row_key`).
    fold : int
        Test fold.
    dataset : str, optional
        The dataset preferred; default :func:`book_dataset`.
    root : str or path-like, optional
        Where the records lie; default :func:`results_dir`.

    Returns
    -------
    dict or None
        The record (with ``"path"``), or None when there is none.
    """
    dataset, root = dataset or book_dataset(), results_dir() if root is None else root
    recs = [r for r in load_records(root) if row_key(r) == system and r["fold"] == fold
            and r["seed"] == 0] if Path(root).is_dir() else []
    if not recs:
        return None
    return min(recs, key=lambda r: (r["dataset"] != dataset, r["dataset"] != "esc10",
                                    _PRESET_RANK.get(r["preset"], 9), r["dataset"], r["preset"]))


def demo_record(system: str = "multiview", fold: int = 1, root=None):
    """The committed record (seed 0) a method chapter demonstrates on.

    Whatever the build's data: ESC-10 first, at the preset of the book's tables,
    then any dataset (:func:`committed_record` with ``dataset`` :data:`DEMO_DATASET`).

    Parameters
    ----------
    system : str
        A row key (:func:`~mvbook.results.row_key`).
    fold : int
        Test fold.
    root : str or path-like, optional
        Where the records lie; default :func:`results_dir`.

    Returns
    -------
    dict or None
        The record (with ``"path"``), or None when ``root`` has none.
    """
    return committed_record(system, fold, dataset=DEMO_DATASET, root=root)


def record_where(record: dict) -> str:
    """Where a record lies, without the build machine's paths.

    Parameters
    ----------
    record : dict
        A record with ``"path"`` (:func:`mvbook.records.load_records`).

    Returns
    -------
    str
        The path relative to the repository (POSIX), or the file name when the
        record lies elsewhere.
    """
    path = Path(record["path"]).resolve()
    return path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else path.name


def describe_record(record: dict) -> str:
    """One phrase naming a committed record.

    Parameters
    ----------
    record : dict
        A record with ``"path"`` (:func:`mvbook.records.load_records`).

    Returns
    -------
    str
        Its path (:func:`record_where`), dataset, preset, fold, seed, device and date.
    """
    prov = record["provenance"]
    return (f"the committed record `{record_where(record)}` of a real run ({record['dataset']}, preset "
            f"`{record['preset']}`, fold {record['fold']}, seed {record['seed']}, trained on {prov['device']}, "
            f"{prov['date'][:10]})")


def trained_run(system: str = "multiview", fold: int = 1) -> tuple[dict, str]:
    """A committed real run if there is one, else the book's own run.

    Parameters
    ----------
    system : str
        A row key / system name.
    fold : int
        Test fold.

    Returns
    -------
    record : dict
        :func:`demo_record`, else :func:`book_run` (trained on first use).
    which : str
        A phrase saying which of the two it is.
    """
    rec = demo_record(system, fold)
    if rec is not None:
        return rec, describe_record(rec)
    rec = book_run(system, fold=fold)
    return rec, (f"a run this book trained itself ({rec['dataset']}, preset `{rec['preset']}`, fold "
                 f"{rec['fold']}, {rec['provenance']['train_seconds']:.0f} s on {rec['provenance']['device']}); "
                 f"no committed record of a real `{system}` run was found in `results/`")


def preset_caveat(preset: str) -> str:
    """What the accuracies of a run trained with ``preset`` mean (the note at the end of each run page).

    Parameters
    ----------
    preset : str
        A preset name (:data:`mvbook.config.PRESETS`; any other is said to be unknown).

    Returns
    -------
    str
        One to three sentences (Markdown).
    """
    p = PRESETS.get(preset)
    if p is None:
        return f"Preset `{preset}` is not one of this library's presets ({', '.join(PRESETS)})."
    if not p.reduced:
        return f"Preset `{preset}` is the recipe of §3.1.3; these accuracies are comparable with the paper's."
    changes = "; ".join(p.reduced)
    if preset == "smoke":
        return (f"Preset `smoke` ({changes}) shows that every piece works end to end, not how well the method "
                "classifies: accuracies near chance are expected. The *Results* chapter reports real runs.")
    return (f"Preset `{preset}` differs from the paper's recipe (§3.1.3) in: {changes}. These accuracies are "
            "those of a real, reduced run: comparable with the other runs of this preset, not with the "
            "paper's numbers. The *Results* chapter sets them side by side.")


def run_index(root=None) -> dict:
    """Every committed run, grouped for the *Runs* page.

    Parameters
    ----------
    root : str or path-like, optional
        Where the records lie; default :func:`results_dir`.

    Returns
    -------
    dict
        (dataset, preset) → table row (:func:`mvbook.results.row_key`: a record
        of an earlier blending rule is a row of its own) → the records of its
        runs, sorted by fold and seed.
    """
    out = {}
    for (dataset, preset), recs in sorted(record_groups(root).items()):
        by_row = out.setdefault((dataset, preset), {})
        for r in sorted(recs, key=lambda r: (row_key(r), r["fold"], r["seed"])):
            by_row.setdefault(row_key(r), []).append(r)
    return out


def show_source(obj, marker: str | None = None, before: int = 3, after: int = 1):
    """The library source of a function, class or method, as a highlighted block.

    Chapters show code this way instead of copying it.

    Parameters
    ----------
    obj : function, class or method
        The object whose source is shown.
    marker : str, optional
        Show only the lines around the first line containing it.
    before, after : int
        With ``marker``: how many lines before and after it.

    Returns
    -------
    IPython.display.Code
        Headed by a comment with the file (relative to the repository) and the first line number.

    Raises
    ------
    mvbook.errors.ConfigError
        When ``marker`` is not in the source.
    """
    from IPython.display import Code  # optional: chapters run in IPython
    lines, start = inspect.getsourcelines(obj)
    if marker is not None:
        hit = next((i for i, line in enumerate(lines) if marker in line), None)
        if hit is None:
            raise ConfigError(f"{marker!r} not found in the source of {obj.__qualname__}")
        lo, hi = max(0, hit - before), min(len(lines), hit + after + 1)
        lines, start = lines[lo:hi], start + lo
    src = textwrap.dedent("".join(lines)).rstrip("\n")           # a method's lines start at its own indent
    file = Path(inspect.getsourcefile(obj)).resolve()
    where = file.relative_to(REPO) if file.is_relative_to(REPO) else file.name
    return Code(f"# {where}, line {start}\n{src}", language="python")


def bash_block(commands):
    """Shell commands as a highlighted block.

    For the command lines chapters print (from
    :func:`mvbook.records.grid_command`, never typed in).

    Parameters
    ----------
    commands : iterable
        Strings, or (command, comment) pairs; the comments are aligned.

    Returns
    -------
    IPython.display.Markdown
        A fenced ``bash`` block.
    """
    from IPython.display import Markdown  # optional: chapters run in IPython
    commands = list(commands)                                    # read twice below: a generator once
    lines = [c if isinstance(c, str) else c[0] for c in commands]
    notes = ["" if isinstance(c, str) else c[1] for c in commands]
    width = max((len(line) for line, note in zip(lines, notes) if note), default=0)   # comments aligned
    body = "\n".join(f"{line:<{width}}  # {note}" if note else line for line, note in zip(lines, notes))
    return Markdown(f"```bash\n{body}\n```")


def copy_records(results=None, dest="_build/html/results") -> list[Path]:
    """Copy every record (JSON) into the built book.

    The same relative paths, so that the built book can link each Table 3 cell to
    its record; the executed notebooks beside them are pages of the book (part *Runs*).

    Parameters
    ----------
    results : str or path-like, optional
        Where the records lie; default :func:`results_dir`. Checkpoints are skipped.
    dest : str or path-like
        The folder they are copied to.

    Returns
    -------
    list of pathlib.Path
        The files copied.
    """
    results, dest = Path(results_dir() if results is None else results), Path(dest)
    copied = []
    for src in sorted(results.rglob("*.json")) if results.is_dir() else []:
        if "checkpoints" in src.parts:
            continue
        target = dest / src.relative_to(results)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        copied.append(target)
    return copied
