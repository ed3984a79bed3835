"""Results records: one JSON per run, with provenance, and the paths of a run.

A record: ``system, dataset, fold, seed, preset, reduced, accuracy`` (per
branch and ``self_ensemble``), ``system_accuracy``, ``config``, ``best``,
``curves`` (per evaluation: losses per split and branch, weights, lr,
accuracies), ``test`` (file keys, labels, per-branch posteriors of the selected
model) and ``provenance`` (git commit, machine, device, date, wall time, and
``trained_by``: from which step which commit trained the run, one entry per
segment: a run resumed from its checkpoint has more than one). The keys and
what each holds, as types: :mod:`mvbook.schema` (:class:`~mvbook.schema.RunRecord`).
Chapter: *Results*.
"""
from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from . import __version__
from .errors import ConfigError, DataError, MvbookError
from .schema import CodeVersion, Provenance, RunRecord

__all__ = ["REPO", "SCHEMA", "record_path", "command_line", "RunPaths", "grid_command", "write_record", "check_out",
           "atomic_torch_save", "code_version", "cpu_model", "provenance", "read_record", "load_records",
           "NoSpaceError", "OtherSchema", "record_lock", "sweep_record_temporaries", "check_writable"]

REPO = Path(__file__).resolve().parents[1]
SCHEMA = "mvbook.record/1"


def record_path(dataset: str, preset: str, system: str, fold: int, seed: int) -> Path:
    """Relative path of a run's record: ``<dataset>/<preset>/<system>/fold<k>-seed<s>.json``."""
    return Path(dataset) / preset / system / f"fold{fold}-seed{seed}.json"


@dataclass(frozen=True)
class RunPaths:
    """Every file of one run: its record (and the executed notebook beside it)
    under ``out``, its checkpoints under ``checkpoints`` (default ``<out>/checkpoints``)."""
    out: Path
    dataset: str
    preset: str
    system: str
    fold: int
    seed: int
    checkpoints: Path | None = None

    @classmethod
    def of_record(cls, record: RunRecord, checkpoints=None) -> RunPaths:
        """The paths of a loaded record's run (its ``path`` is ``<out>/<dataset>/…``)."""
        return cls(Path(record["path"]).parents[3], record["dataset"], record["preset"], record["system"],
                   record["fold"], record["seed"], None if checkpoints is None else Path(checkpoints))

    @property
    def rel(self) -> Path:
        return record_path(self.dataset, self.preset, self.system, self.fold, self.seed)

    @property
    def record(self) -> Path:
        return Path(self.out) / self.rel

    @property
    def notebook(self) -> Path:
        return self.record.with_suffix(".ipynb")

    @property
    def checkpoint_dir(self) -> Path:
        return Path(self.checkpoints or Path(self.out) / "checkpoints") / self.rel.with_suffix("")

    @property
    def checkpoint(self) -> Path:
        """The resumable state, rewritten at every evaluation."""
        return self.checkpoint_dir / "checkpoint.pt"

    @property
    def best(self) -> Path:
        """The weights of the selected (best-validation) model."""
        return self.checkpoint_dir / "best.pt"


def grid_command(dataset: str, preset: str, systems=None, folds=None, seeds=None, out=None, *, checkpoints=None,
                 data_root=None, epochs=None, device=None) -> str:
    """The ``python -m mvbook grid`` command line that makes these runs' records.

    Parameters
    ----------
    dataset, preset : str
        The dataset and the training preset.
    systems, folds, seeds : list, optional
        What to run (``None``: the grid's default for that option).
    out, checkpoints, data_root : str or Path, optional
        Where records and checkpoints go and where the data is (``None``: defaults).
    epochs : int, optional
        An override of the preset's epochs.
    device : str, optional
        The device (``None``: ``auto``).

    Returns
    -------
    str

    Examples
    --------
    >>> grid_command("esc10", "cpu", ["multiview"], [1, 2])
    'python -m mvbook grid --dataset esc10 --preset cpu --systems multiview --folds 1 2'
    """
    cmd = ["python", "-m", "mvbook", "grid", "--dataset", dataset, "--preset", preset]
    for flag, values in (("--systems", systems), ("--folds", folds), ("--seeds", seeds)):
        cmd += [flag, *map(str, values)] if values else []
    for flag, value in (("--out", out), ("--checkpoints", checkpoints), ("--data-root", data_root),
                        ("--epochs", epochs), ("--device", device)):
        cmd += [flag, str(value)] if value is not None else []
    return shlex.join(cmd)


class NoSpaceError(MvbookError, OSError):
    """The disk filled up while a record or checkpoint was written (nothing half-written is left)."""


def _disk_full(e: BaseException | None) -> bool:
    """Whether ``e`` or an exception it came from is "no space left" (torch.save
    reports the failed write as ``RuntimeError: [enforce fail …] unexpected pos``)."""
    while e is not None:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        e = e.__cause__ or e.__context__
    return False


def _atomic(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)                 # mkstemp makes it private
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if _disk_full(e):
            full = NoSpaceError(f"no space left on device writing {path}: free space there and run the same "
                                "command again (a run resumes from its last checkpoint)")
            full.errno = errno.ENOSPC
            raise full from None
        raise


def write_record(record: RunRecord, path) -> Path:
    """Write a record as strict JSON (no NaN or infinity) atomically (a reader never sees half a file)."""
    try:
        text = json.dumps(record, indent=1, allow_nan=False)
    except ValueError as e:
        raise DataError(f"refusing to write a record with a non-finite number ({path}): {e}") from None
    _atomic(Path(path), lambda f: f.write(text.encode()))
    return Path(path)


@contextlib.contextmanager
def record_lock(path):
    """Held while a record is checked and written: an exclusive lock (the
    kernel's ``flock``) on the record's folder, so that two runs finishing at
    once write one after the other, each seeing the other's record."""
    folder = Path(path).parent
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)                          # releases the lock


def sweep_record_temporaries(folder) -> list:
    """Remove the temporaries of records (``.fold<k>-seed<s>.json.<random>.tmp``) that a
    killed writer left in a record folder; call it under :func:`record_lock` of that
    folder, so that no writer of it is alive. The removed paths."""
    removed = []
    for tmp in sorted(Path(folder).glob(".fold*-seed*.json.*.tmp")):
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def check_out(folder) -> Path:
    """``folder`` as a Path, or a clear error when it exists and is not a folder."""
    if not str(folder).strip():
        raise ConfigError(f"an empty folder name ({str(folder)!r}) would put records and checkpoints in the current "
                          "folder; pass a folder (--out .  for the current one)")
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"not a folder ({folder}): records and checkpoints go into a folder; pass another path")
    return folder


def check_writable(folder) -> None:
    """A :class:`~mvbook.errors.ConfigError` before a run trains where ``folder`` (made if
    absent) cannot be written: found at the end, the trained run could not be recorded."""
    folder = check_out(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot make the folder, {e.strerror or e} ({folder}): records and checkpoints go "
                          "there; pass another --out (or --checkpoints)") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"folder is not writable ({folder}): records and checkpoints go there; pass another "
                          "--out (or --checkpoints)")


def atomic_torch_save(obj, path) -> None:
    """``torch.save`` through a temporary file and ``os.replace``."""
    import torch
    _atomic(Path(path), lambda f: torch.save(obj, f))


def _git(*args) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_model() -> str:
    """The CPU's model name (as a record's ``provenance.machine`` states it)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def code_version() -> CodeVersion:
    """The git commit of the library and whether tracked files differ from it
    (:class:`~mvbook.schema.CodeVersion`). Taken when a run starts (the tree may
    change while it trains)."""
    return {"git_commit": _git("rev-parse", "HEAD") or "unknown",
            "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no"))}


def provenance(device, train_seconds: float, wall_seconds: float, code: CodeVersion | None = None) -> Provenance:
    """Where, when and from which code (``code_version()`` at the start) a run came.
    ``cpu_capability`` is the vector instruction set torch's CPU kernels use (``AVX2``,
    ``AVX512`` …): runs on CPUs of different capability round differently, so a
    record can be repeated bit for bit only on a CPU of its own capability. A record's
    ``provenance`` (:class:`~mvbook.schema.Provenance`) without ``autocast`` and
    ``trained_by``, which the run adds."""
    import torch
    dev = str(device)
    if dev.startswith("cuda"):
        dev += f" ({torch.cuda.get_device_name()})"
    return {**(code or code_version()),
            "machine": f"{platform.node()}: {cpu_model()}, {os.cpu_count()} cores",
            "mvbook": __version__, "device": dev, "torch_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "train_seconds": round(train_seconds, 1), "wall_seconds": round(wall_seconds, 1),
            "command": command_line(sys.argv)}


def command_line(argv) -> str:
    """The command that ran, with no path of the machine: a path inside the repository
    relative to it, any other absolute path by its last part (``…/name``).

    Parameters
    ----------
    argv : list of str
        ``sys.argv``.

    Returns
    -------
    str

    Examples
    --------
    >>> command_line(["/opt/venv/lib/python3.11/site-packages/ipykernel_launcher.py", "-f", "/tmp/k.json"])
    '…/ipykernel_launcher.py -f …/k.json'
    """
    def portable(token: str) -> str:
        path = Path(token)
        if not path.is_absolute():
            return token
        try:
            return path.relative_to(REPO).as_posix()
        except ValueError:
            return f"…/{path.name}"
    return " ".join(portable(t) for t in argv)


# what every table reads of a record (late fusion and the self-ensembles read ``test`` and ``accuracy``)
_REQUIRED = ("system", "dataset", "fold", "seed", "preset", "accuracy", "system_accuracy", "test")


def _non_finite(token: str):
    raise ValueError(f"a non-finite number ({token})")


def read_record(path: str | os.PathLike[str]) -> RunRecord | None:
    """The record in ``path``, checked: what every table reads is there and has its type.

    Parameters
    ----------
    path : str or path-like
        A JSON file.

    Returns
    -------
    RunRecord or None
        The record (:class:`~mvbook.schema.RunRecord`); None for a JSON file that is
        not a record (no ``schema``, and not shaped as one).

    Raises
    ------
    OtherSchema
        A record of another schema version (or of none).
    mvbook.errors.DataError
        A broken record, naming the file: not strict JSON, NaN or infinity, fields
        missing, or values a table would misread.
    """
    try:
        rec = json.loads(Path(path).read_text(), parse_constant=_non_finite)
    except (json.JSONDecodeError, ValueError, UnicodeDecodeError) as e:
        raise DataError(f"not a valid results record ({path}): {e}") from None
    if not isinstance(rec, dict) or rec.get("schema") != SCHEMA:
        if isinstance(rec, dict) and (str(rec.get("schema", "")).startswith("mvbook.record/")
                                      or ("schema" not in rec and {"system", "dataset", "accuracy"} <= set(rec))):
            raise OtherSchema(f"{path} is a record of schema {rec.get('schema')!r}, not {SCHEMA!r} "
                              "(what this mvbook reads): left out")
        return None
    missing = [k for k in _REQUIRED if k not in rec]
    if missing:
        raise DataError(f"not a valid results record ({path}): missing {', '.join(missing)}")
    bad = _bad_values(rec)
    if bad:
        raise DataError(f"not a valid results record ({path}): {'; '.join(bad)}")
    return cast(RunRecord, rec)                 # its keys and values checked above


class OtherSchema(DataError):
    """A record of another schema version (or of none): reported and left out, never read as one of this."""


def _bad_values(rec: dict[str, Any]) -> list[str]:
    """What a table would misread in a record: accuracies (fractions) that are not
    numbers in [0, 1], a fold or seed that is not a non-negative integer, a system,
    dataset or preset that is not a name, or that contradicts the record's ``config``."""
    def number(x) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    names = [f"{k} is {rec[k]!r}, not a name" for k in ("system", "dataset", "preset") if not isinstance(rec[k], str)]
    if names:
        return names
    config: dict[str, Any] = rec["config"] if isinstance(rec.get("config"), dict) else {}
    said = {"system": config.get("system"), "dataset": config.get("dataset"), "fold": config.get("fold"),
            "seed": config.get("seed"),
            "preset": config["preset"].get("name") if isinstance(config.get("preset"), dict) else None}
    contradicts = [f"{k} is {rec[k]!r} but its config says {v!r}" for k, v in said.items()
                   if v is not None and rec[k] != v]
    if contradicts:
        return contradicts

    acc = rec["accuracy"]
    if not isinstance(acc, dict):
        return [f"accuracy is {acc!r}, not a mapping of branch to accuracy"]
    bad = []
    for name, v in [(f"accuracy.{k}", v) for k, v in acc.items()] + [("system_accuracy", rec["system_accuracy"])]:
        if not number(v):
            bad.append(f"{name} is {v!r}, not a number")
        elif not 0 <= v <= 1:
            bad.append(f"{name} is {v!r}, outside [0, 1] (accuracies are stored as fractions)")
    bad += [f"{k} is {rec[k]!r}, not an integer 0 or above" for k in ("fold", "seed")
            if not (isinstance(rec[k], int) and not isinstance(rec[k], bool) and rec[k] >= 0)]
    return bad


def _json_files(root: Path) -> list:
    """Every ``*.json`` under ``root``, through symlinked folders too (each real
    folder once, so a link loop ends), in path order."""
    found, seen = [], set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        found += [Path(folder) / f for f in files if f.endswith(".json")]
        found += [Path(folder) / d for d in dirs if d.endswith(".json")]          # named as records: reported
        dirs[:] = [d for d in dirs if not d.endswith(".json")]
    return sorted(found)


def load_records(root="results", dataset=None, preset=None, skip_bad: bool = False, warn=None) -> list[RunRecord]:
    """Every record under a folder, optionally of one dataset and preset.

    Parameters
    ----------
    root : str or path-like
        The folder searched (recursively) for ``*.json`` records; JSON files that
        are not records are skipped.
    dataset, preset : str, optional
        Keep only the records of this dataset / preset.
    skip_bad : bool
        Leave a broken record out with a warning instead of raising.
    warn : callable, optional
        Called with the warning's text; default: printed to stderr.

    Returns
    -------
    list of RunRecord
        The records in path order, each with ``"path"`` (its file, as str).

    Raises
    ------
    mvbook.errors.DataError
        A broken record (not strict JSON, NaN or infinity, fields missing),
        naming its file; unless ``skip_bad``.
    """
    recs = []
    for path in _json_files(Path(root)):
        try:
            rec = read_record(path)
        except OSError as e:                                   # unreadable, or a folder named *.json
            bad = DataError(f"not a valid results record ({path}): {e.strerror or e}")
            if not skip_bad:
                raise bad from None
            (warn or (lambda m: print(m, file=sys.stderr)))(f"warning: skipped {bad}")
            continue
        except OtherSchema as e:
            (warn or (lambda m: print(m, file=sys.stderr)))(f"warning: {e}")
            continue
        except ValueError as e:
            if not skip_bad:
                raise
            (warn or (lambda m: print(m, file=sys.stderr)))(f"warning: skipped {e}")
            continue
        if rec is None:
            continue
        if (dataset and rec["dataset"] != dataset) or (preset and rec["preset"] != preset):
            continue
        rec["path"] = str(path)
        recs.append(rec)
    return recs
