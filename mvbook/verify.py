"""Re-run a recorded run and compare: is a record repeatable, bit for bit?

:func:`verify` trains a record's run again as the record states it (system,
dataset, fold, seed, split seed, preset and its overrides, thread count,
device) into a temporary folder, through :func:`mvbook.train.train` in a
subprocess (:mod:`mvbook.engines.rerun`), and compares the curves evaluation
by evaluation, the selected step, the accuracies (per branch and
self-ensemble) and the test posteriors.
With ``at_commit`` the record's own commit runs, checked out in a temporary
``git worktree``, with the current environment. What differs in the
environment is said before the run (:func:`environment_notes`).
Command line: ``python -m mvbook verify``. Chapter: *Runs*.
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .data import load_dataset
from .device import autocast_name
from .engines import rerun
from .engines.clusters import thread_env
from .errors import ConfigError, DataError, MvbookError
from .records import code_version, cpu_model, read_record
from .results import signed
from .schema import CodeVersion, RunRecord
from .seeds import record_scheme
from .systems import TRAINED_SYSTEMS, dependencies

__all__ = ["EXIT", "Verdict", "verify", "rerun_arguments", "environment_notes", "commit_worktree", "compare"]

EXIT = {"identical": 0, "differs": 1, "error": 2}
_NUMERIC_PACKAGES = ("torch", "numpy", "scipy", "numba", "librosa", "soundfile", "soxr")   # the numbers depend on them

@dataclass
class Verdict:
    """One record's answer: ``status`` (``identical``, ``differs``), ``detail`` (the
    first difference), ``deltas`` (selected step and accuracies, record → rerun),
    ``notes`` (said before the run)."""
    record: str
    status: str
    detail: str = ""
    deltas: str = ""
    notes: list = field(default_factory=list)

    def line(self) -> str:
        return f"{self.record}: " + "; ".join([self.status] + [p for p in (self.detail, self.deltas) if p])


def _read(path) -> RunRecord:
    """The record in ``path`` with what a rerun and the comparison need, else a DataError."""
    try:
        rec = read_record(Path(path))
    except FileNotFoundError:
        raise DataError("no such file") from None
    except (ValueError, OSError) as e:
        raise DataError(str(e)) from None
    if rec is None:
        raise DataError("not a results record (no schema)")
    bad = [k for k in ("config", "curves", "best", "accuracy", "test") if not isinstance(rec.get(k), dict)]
    bad += [] if bad or isinstance(rec["curves"].get("step"), list) else ["curves.step"]
    bad += [] if bad or isinstance(rec["test"].get("probs"), dict) else ["test.probs"]
    if bad:
        raise DataError(f"the record has no valid {', '.join(bad)}, so its run cannot be repeated")
    return rec | {"path": str(path)}


def rerun_arguments(rec: Mapping[str, Any]) -> dict:
    """The :func:`mvbook.train.train` arguments that repeat a record's run.

    Parameters
    ----------
    rec : dict
        A results record.

    Returns
    -------
    dict
        ``dataset, system, fold, seed, preset`` of its ``config``, its ``seed_scheme``
        (:func:`mvbook.seeds.record_scheme`), ``split_seed`` where not 0, and the
        preset fields its caller overrode (the ``k=v`` entries :func:`mvbook.config.get_preset`
        adds to ``reduced``, at every commit) with the values the config records.
    """
    cfg = rec["config"]
    try:
        args = {k: cfg[k] for k in ("dataset", "system", "fold", "seed")} | {"preset": cfg["preset"]["name"]}
        for text in cfg["preset"].get("reduced", []):
            key = text.split("=")[0]
            if re.fullmatch(r"\w+=.*", text) and key in cfg["preset"] and key not in ("name", "reduced"):
                v = cfg["preset"][key]
                args[key] = tuple(v) if isinstance(v, list) else v
    except (KeyError, TypeError, AttributeError) as e:
        raise DataError(f"the record's config has no valid {e}, so its run cannot be repeated") from None
    split = {"split_seed": cfg["split_seed"]} if cfg.get("split_seed") else {}
    return args | {"seed_scheme": record_scheme(cfg)} | split


def _device(rec: Mapping[str, Any]) -> tuple[str, list]:
    """The recorded device where this machine has it (else ``cpu``), and notes."""
    recorded = str((rec.get("provenance") or {}).get("device", ""))
    name = recorded.split(" (")[0] or "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        return "cpu", [f"recorded on {recorded}; torch sees no CUDA GPU here, so it runs on cpu"]
    here = f"{name} ({torch.cuda.get_device_name(torch.device(name))})" if name.startswith("cuda") else name
    return name, [] if here == recorded else [f"recorded on {recorded or 'an unnamed device'}, here on {here}"]


def environment_notes(rec: Mapping[str, Any], device: str, code: CodeVersion | None = None,
                      pins: dict | None = None) -> list:
    """What differs from the record's environment and makes identity impossible or unknown.

    Parameters
    ----------
    rec, device : dict, str
        A results record; the device the rerun uses.
    code, pins : dict or None
        The running code's :func:`mvbook.records.code_version` (None: the record's
        own commit runs); package → version pinned by the commit's ``constraints.txt``.

    Returns
    -------
    list of str
        One sentence each: torch, Python, CPU model and capability, autocast, an unrecorded
        thread count, a resumed run, the code, and installed packages off ``pins``.
    """
    prov, notes, amp = rec.get("provenance") or {}, [], autocast_name(torch.device(device))
    if not prov:
        notes.append("the record has no provenance: its torch, threads, device and commit are unknown")
    for what, here in (("torch", torch.__version__), ("python", platform.python_version())):
        if prov.get(what) and prov[what] != here:
            notes.append(f"recorded with {what} {prov[what]}, this is {what} {here}")
    m = re.fullmatch(r"[^:]*: (.*), \d+ cores", str(prov.get("machine", "")))
    if m and device == "cpu" and m[1] != cpu_model():
        notes.append(f"recorded on a {m[1]} CPU, this is a {cpu_model()}: math libraries may choose other kernels")
    cap = torch.backends.cpu.get_cpu_capability()
    if device == "cpu" and prov and prov.get("cpu_capability") != cap:
        notes.append(f"torch's CPU kernels: {prov.get('cpu_capability', 'not recorded')} in the record, {cap} here "
                     "(CPUs of one name can differ; kernels of another instruction set round differently)")
    if prov.get("autocast") and prov["autocast"] != amp:
        notes.append(f"recorded with autocast {prov['autocast']}, here {amp} (MVBOOK_AMP, MVBOOK_CPU_BF16)")
    if prov and "torch_threads" not in prov:
        notes.append(f"the record does not state its thread count: running with {torch.get_num_threads()}")
    if len(prov.get("trained_by", [])) > 1:
        notes.append("the run was resumed with other code (provenance.trained_by): no single commit repeats it")
    if code is not None and prov.get("git_commit"):
        show = lambda commit, dirty: str(commit)[:7] + (" with uncommitted changes" if dirty else "")  # noqa: E731
        if (prov["git_commit"], prov.get("git_dirty")) != (code["git_commit"], False) or code["git_dirty"]:
            notes.append(f"the record was made by {show(prov['git_commit'], prov.get('git_dirty'))}, this code is "
                         f"{show(code['git_commit'], code['git_dirty'])}: a difference may come from the code "
                         "(--at-commit runs the record's own commit)")
    installed = {d.metadata["Name"].lower(): d.version for d in importlib.metadata.distributions()} if pins else {}
    for pkg, pinned in sorted((pins or {}).items()):
        ours = installed.get(pkg)
        if ours is not None and ours.split("+")[0] != pinned.split("+")[0]:
            notes.append(f"the commit's constraints.txt pins {pkg} {pinned}, {ours} is installed")
    return notes


def _git(repo, *args) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    except OSError as e:
        raise ConfigError(f"--at-commit needs git: {e}") from None


@contextlib.contextmanager
def commit_worktree(rec: Mapping[str, Any], repo=None):
    """Context: the record's ``provenance.git_commit`` checked out in a temporary
    ``git worktree`` of the clone holding ``repo`` (default: the working folder),
    removed afterwards; yields (the worktree, the versions its ``constraints.txt``
    pins of the numeric packages: torch, numpy, librosa …). A ConfigError outside a clone, for a record
    of uncommitted changes or of several commits, or a commit the clone lacks."""
    prov = rec.get("provenance") or {}
    commit = str(prov.get("git_commit", ""))
    if not re.fullmatch(r"[0-9a-f]{7,40}", commit):
        raise ConfigError(f"--at-commit: the record names no git commit (provenance.git_commit: {commit or 'none'})")
    if prov.get("git_dirty") is not False or len(prov.get("trained_by", [])) > 1:
        raise ConfigError(f"--at-commit: the record was made from uncommitted changes of {commit[:7]} or by "
                          f"several commits (provenance.git_dirty: {prov.get('git_dirty')}, trained_by): "
                          "no commit holds its code")
    repo = Path(repo or os.getcwd())
    top = _git(repo, "rev-parse", "--show-toplevel")
    if top.returncode:
        raise ConfigError(f"--at-commit needs a git clone of mvbook: {repo} is not inside one "
                          "(git clone the project and run from it)")
    top = top.stdout.strip()
    if _git(top, "cat-file", "-e", f"{commit}^{{commit}}").returncode:
        raise ConfigError(f"--at-commit: the record's commit {commit[:10]} is not in the clone {top} "
                          "(git fetch it, or unshallow the clone)")
    pins = {}
    for line in _git(top, "show", f"{commit}:constraints.txt").stdout.splitlines():
        name, _, version = line.partition("==")
        if name.strip().lower() in _NUMERIC_PACKAGES and version:
            pins[name.strip().lower()] = version.strip()
    with tempfile.TemporaryDirectory(prefix=f"mvbook-{commit[:7]}-") as tmp:
        added = _git(top, "worktree", "add", "--detach", "--quiet", f"{tmp}/tree", commit)
        if added.returncode:
            raise MvbookError(f"--at-commit: git could not check out {commit[:10]}: {added.stderr.strip()}")
        try:
            yield Path(tmp) / "tree", pins
        finally:
            _git(top, "worktree", "remove", "--force", f"{tmp}/tree")


def _rerun(args: dict, code_root: Path, out: Path, threads: int, quick: bool, data_root, cache_dir) -> dict:
    """The answer of :mod:`mvbook.engines.rerun`, run by its path with ``code_root`` first on
    the import path (``-P``: not the driver's own folder). The data root and the cache go
    through ``MVBOOK_DATA`` and ``MVBOOK_CACHE``, which every commit reads (``train``'s
    argument for the data root was once ``root``)."""
    result = out / "result.json"
    payload = dict(args, out=str(out / "records"), threads=threads, quick=quick, result=str(result))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(code_root), os.environ.get("PYTHONPATH")])),
               **thread_env(threads))
    env |= {k: str(Path(v).resolve()) for k, v in (("MVBOOK_DATA", data_root), ("MVBOOK_CACHE", cache_dir)) if v}
    proc = subprocess.run([sys.executable, "-P", str(rerun.PATH), json.dumps(payload)], cwd=code_root, env=env,
                          stdout=subprocess.PIPE, text=True)
    if proc.stdout.strip():
        print(proc.stdout.rstrip(), file=sys.stderr)
    if not result.is_file():
        raise MvbookError(f"the rerun failed (exit status {proc.returncode}; its output is above)")
    answer = json.loads(result.read_text())
    if "error" in answer:
        raise MvbookError(f"the rerun stopped: {answer['error']}")
    return answer


def _leaves(tree, prefix: str = "") -> list:
    """(dotted name, value) of every non-dict value of ``tree``, in its order."""
    if not isinstance(tree, dict):
        return [(prefix, tree)]
    return [leaf for k, v in tree.items() for leaf in _leaves(v, f"{prefix}.{k}" if prefix else str(k))]


def _pair(a, b) -> str:
    """``a vs b``, floats with as many digits as it takes to tell them apart."""
    if isinstance(a, float) and isinstance(b, float):
        for digits in range(9, 18):
            if f"{a:.{digits}g}" != f"{b:.{digits}g}":
                return f"{a:.{digits}g} vs {b:.{digits}g}"
    return f"{a!r} vs {b!r}"


def _curve_difference(rec: Mapping[str, Any], curves: dict, quick: bool) -> str | None:
    old, new = dict(_leaves(rec["curves"])), dict(_leaves(curves))
    steps, n = old["step"], len(new.get("step", []))
    for i in range(min(n, len(steps))):
        for name, values in old.items():
            a, b = (v[i] if i < len(v) else "nothing" for v in (values, new.get(name, [])))
            if a != b:
                return f"curves.{name} at step {steps[i]}: {_pair(a, b)} (record vs rerun)"
    if n > len(steps) or (n < len(steps) and not quick):
        return f"curves: {len(steps)} evaluations in the record, {n} in the rerun"
    return None


def _result_difference(rec: Mapping[str, Any], new: dict) -> str | None:
    for part in ("best", "accuracy"):
        theirs = dict(_leaves(new[part], part))
        for name, a in _leaves(rec[part], part):
            if a != theirs.get(name, "nothing"):
                return f"{name}: {_pair(a, theirs.get(name, 'nothing'))} (record vs rerun)"
    old, new = rec["test"], new["test"]
    if (old.get("keys"), old.get("labels")) != (new["keys"], new["labels"]):
        return "test.keys, test.labels: the rerun tests other clips"
    for branch, P in old["probs"].items():
        Q = new["probs"].get(branch, [])
        for key, p, q in zip(old["keys"], P, Q):
            if p != q:
                j = next((j for j, (x, y) in enumerate(zip(p, q)) if x != y), None)
                what = f"{len(p)} vs {len(q)} classes" if j is None else f"class {j}: {_pair(p[j], q[j])}"
                return f"test.probs.{branch} of clip {key}, {what} (record vs rerun)"
        if len(P) != len(Q):
            return f"test.probs.{branch}: {len(P)} clips in the record, {len(Q)} in the rerun"
    return None


def _deltas(rec: Mapping[str, Any], new: dict) -> str:
    """The selected step and the test accuracies (%), record → rerun where they differ."""
    s, t = rec["best"].get("step"), new["best"].get("step")
    out = []
    for k, a in rec["accuracy"].items():
        b = new["accuracy"].get(k)
        out.append(f"{k} {100 * a:.2f}" + ("" if b == a else " → none" if b is None
                                           else f" → {100 * b:.2f} ({signed(100 * (b - a))})"))
    return (f"step {s} selected" if s == t else f"selected step {s} → {t}") + "; test accuracy (%) " + ", ".join(out)


def compare(rec: Mapping[str, Any], new: dict, quick: bool = False) -> tuple:
    """A record against its rerun, exactly: the curves evaluation by evaluation (every
    value of one step before the next), then ``best`` (the selected step), the
    accuracies and the test posteriors.

    Parameters
    ----------
    rec, new : dict
        The record and its rerun's (``quick``: ``{"curves": …}`` up to its first evaluation).
    quick : bool
        Compare the curves as far as the rerun's go, and no accuracies.

    Returns
    -------
    (str or None, str)
        The first difference (quantity, step, both values) or None; the selected
        step and the accuracies, record → rerun (empty for ``quick``).
    """
    first = _curve_difference(rec, new["curves"], quick)
    if quick:
        return first, ""
    return first or _result_difference(rec, new), _deltas(rec, new)


def _request(path, data_root, at_commit: bool) -> tuple:
    """(record, train arguments, device, notes) of a record, or an MvbookError saying why not."""
    rec = _read(path)
    args = rerun_arguments(rec)
    system = args["system"]
    if not at_commit and system not in TRAINED_SYSTEMS:
        raise ConfigError(f"unknown system {system!r} (--at-commit runs the record's own code)")
    if system in TRAINED_SYSTEMS and dependencies(system):
        raise ConfigError(f"{system} trains on the checkpoints of {', '.join(dependencies(system))}, "
                          "which a rerun does not have; verify their records")
    fp, here = rec["config"].get("dataset_fingerprint"), load_dataset(args["dataset"], data_root).fingerprint()
    device, notes = _device(rec)
    notes += [f"the data differ from the record's (dataset fingerprint {here}, recorded {fp})"] if fp not in (
        None, here) else []
    return rec, args, device, notes


def verify(path, *, data_root=None, cache_dir=None, at_commit: bool = False, quick: bool = False,
           progress: bool = True, log=None, repo=None) -> Verdict:
    """Re-run the run of the record in ``path`` and compare.

    Parameters
    ----------
    path, data_root, cache_dir : path, path or None, path or None
        A results record; the data root (default ``$MVBOOK_DATA``); the feature cache.
    at_commit, quick, progress : bool
        Run the record's own commit (:func:`commit_worktree`, in the clone holding
        ``repo``, default the working folder); stop at the first evaluation after
        step 0 and compare the curves up to it; the rerun's progress bar.
    log : callable or None
        Called with each note before the run and a line when it starts (default: stderr).

    Returns
    -------
    Verdict
        ``identical`` or ``differs``. A record that cannot be verified raises
        :class:`~mvbook.errors.MvbookError`.
    """
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    rec, args, device, notes = _request(path, data_root, at_commit)
    threads = int((rec.get("provenance") or {}).get("torch_threads") or torch.get_num_threads())
    with contextlib.ExitStack() as stack:
        if at_commit:
            code_root, pins = stack.enter_context(commit_worktree(rec, repo))
            notes += environment_notes(rec, device, None, pins)
        else:
            code_root = Path(__file__).resolve().parents[1]
            notes += environment_notes(rec, device, code_version())
        for n in notes:
            log(f"note: {path}: {n}")
        log(f"verifying {path}: {args['system']} fold {args['fold']} seed {args['seed']}, preset {args['preset']}"
            f"{', up to its first evaluation' if quick else ''}, on {device} with {threads} thread(s), by "
            + (f"commit {rec['provenance']['git_commit'][:7]}" if at_commit else "this code"))
        out = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mvbook-verify-")))
        answer = _rerun(args | {"device": device, "progress": progress}, code_root, out, threads, quick,
                        data_root, cache_dir)
        new = {"curves": answer["curves"]} if quick else json.loads(Path(answer["record"]).read_text())
    try:
        first, deltas = compare(rec, new, quick)
    except (KeyError, TypeError, IndexError, AttributeError) as e:
        raise DataError(f"the record is malformed ({type(e).__name__}: {e}); its rerun finished") from None
    deltas = f"quick: up to step {new['curves']['step'][-1]}" if quick else deltas
    return Verdict(str(path), "differs" if first else "identical", first or "", deltas, notes)
