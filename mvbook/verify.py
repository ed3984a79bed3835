"""Re-run a recorded run and compare: is a record repeatable, bit for bit?

:func:`verify` trains a record's run again exactly as the record states it
(system, dataset, fold, seed, split seed, preset and its overrides, thread
count, device) into a temporary folder, through :func:`mvbook.train.train` in a
subprocess, and compares the curves evaluation by evaluation, the selected
step, the accuracies (per branch and self-ensemble) and the test posteriors.
With ``at_commit`` it runs the record's own commit, checked out in a temporary
``git worktree``, with the current environment. Differences of the environment
that make identity impossible are stated before the run (:func:`environment_notes`).
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
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, DataError, MvbookError

__all__ = ["Verdict", "verify", "environment_notes", "compare", "rerun_arguments", "commit_worktree"]

EXIT = {"identical": 0, "differs": 1, "error": 2}
NEEDED = ("config", "curves", "best", "accuracy", "test")   # what a record must hold to be verified
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
NUMERIC_PACKAGES = ("torch", "numpy", "scipy", "numba", "librosa", "soundfile", "soxr")   # what the numbers depend on

# Run in a subprocess against whichever mvbook PYTHONPATH names (this one, or an
# older commit's): train the run, or with "quick" stop at the first evaluation after
# step 0, and write the record's path, the curves so far, or a diagnosed error.
DRIVER = """
import json, sys
import torch
args = json.loads(sys.argv[1])
torch.set_num_threads(args.pop("threads"))
quick, result = args.pop("quick"), args.pop("result")
from mvbook.train import train
class Stop(Exception):
    pass
def stop(info):
    if info["step"] > 0:
        raise Stop(info["curves"])
try:
    out = {"record": train(callback=stop if quick else None, **args)["path"]}
except Stop as s:
    out = {"curves": s.args[0]}
except (ValueError, RuntimeError, OSError) as e:
    out = {"error": str(e)}
with open(result, "w") as f:
    json.dump(out, f)
"""


@dataclass
class Verdict:
    """The answer for one record: ``status`` is ``identical``, ``differs`` or
    ``error``; ``detail`` the first difference (or why it cannot be verified);
    ``deltas`` the accuracies, record against rerun; ``notes`` what was said
    before the run."""
    record: str
    status: str
    detail: str = ""
    deltas: str = ""
    notes: list = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT[self.status]

    def line(self) -> str:
        """One line: ``RECORD: identical …`` or ``RECORD: differs: …``."""
        parts = [self.status] + [p for p in (self.detail, self.deltas) if p]
        return f"{self.record}: " + "; ".join(parts)


# --- what the record asks for ------------------------------------------------------------

def _read(path) -> dict:
    from .records import read_record
    try:
        rec = read_record(Path(path))
    except FileNotFoundError:
        raise DataError("no such file") from None
    except (ValueError, OSError) as e:
        raise DataError(str(e)) from None
    if rec is None:
        raise DataError("not a results record (no schema)")
    missing = [k for k in NEEDED if k not in rec]
    if missing:
        raise DataError(f"the record has no {', '.join(missing)}, so its run cannot be repeated")
    return rec


def rerun_arguments(rec: dict) -> dict:
    """The :func:`mvbook.train.train` arguments that repeat ``rec``'s run: what
    its ``config`` states, and the preset fields overridden by its caller (the
    ``k=v`` entries that :func:`mvbook.config.get_preset` adds to ``reduced``),
    with the values the config records.

    Parameters
    ----------
    rec : dict
        A results record.

    Returns
    -------
    dict
        ``dataset, system, fold, seed, preset`` (and ``split_seed`` where not 0),
        then the overrides.
    """
    cfg = rec["config"]
    try:
        args = {"dataset": cfg["dataset"], "system": cfg["system"], "fold": cfg["fold"], "seed": cfg["seed"],
                "preset": cfg["preset"]["name"]}
        fields = cfg["preset"]
        for text in cfg["preset"].get("reduced", rec.get("reduced", [])):
            m = re.fullmatch(r"(\w+)=.*", text)
            if m and m[1] in fields and m[1] not in ("name", "reduced"):
                v = fields[m[1]]
                args[m[1]] = tuple(v) if isinstance(v, list) else v
    except (KeyError, TypeError) as e:
        raise DataError(f"the record's config has no {e}, so its run cannot be repeated") from None
    if cfg.get("split_seed", 0):
        args["split_seed"] = cfg["split_seed"]
    return args


def _device(rec: dict) -> tuple[str, list[str]]:
    """The recorded device where this machine has it (else ``cpu``), and the notes."""
    import torch
    recorded = str(rec.get("provenance", {}).get("device", ""))
    name = recorded.split(" (")[0]
    if not name:
        return "cpu", ["the record names no device: running on cpu"]
    if name.startswith("cuda") and not torch.cuda.is_available():
        return "cpu", [f"recorded on {recorded}, but torch sees no CUDA GPU here: running on cpu, "
                       "so identity is not expected"]
    notes = []
    if name.startswith("cuda"):
        here = torch.cuda.get_device_name(torch.device(name))
        if f"({here})" not in recorded:
            notes.append(f"recorded on {recorded}, here {name} is {here}: other kernels, so identity is not expected")
    return name, notes


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment_notes(rec: dict, device: str, code: dict | None = None, pins: dict | None = None) -> list[str]:
    """What differs between the record's environment and this one and makes
    identity impossible (or unknown): torch and Python, the CPU, autocast, the
    thread count not recorded, the code (``code``: this code's
    :func:`mvbook.records.code_version`; None at the record's own commit), a
    resumed run trained by several commits, and installed versions of the
    packages the numbers depend on that differ from ``pins`` (package → version,
    from the commit's ``constraints.txt``).

    Parameters
    ----------
    rec : dict
        A results record.
    device : str
        The device the rerun uses.
    code, pins : dict or None
        See above.

    Returns
    -------
    list of str
        One sentence per difference; empty where none is known.
    """
    import torch
    from .device import autocast_name
    from .records import cpu_model
    prov, notes = rec.get("provenance") or {}, []
    if not prov:
        notes.append("the record has no provenance: its torch, threads, device and commit are unknown")
    if prov.get("torch") and prov["torch"] != torch.__version__:
        notes.append(f"recorded with torch {prov['torch']}, this is torch {torch.__version__}")
    if prov.get("python") and prov["python"] != platform.python_version():
        notes.append(f"recorded with Python {prov['python']}, this is Python {platform.python_version()}")
    m = re.fullmatch(r"[^:]*: (.*), \d+ cores", str(prov.get("machine", "")))
    if m and device == "cpu" and m[1] != cpu_model():
        notes.append(f"recorded on a {m[1]} CPU, this is a {cpu_model()}: math libraries may choose other kernels")
    if prov.get("autocast") and prov["autocast"] != autocast_name(torch.device(device)):
        notes.append(f"recorded with autocast {prov['autocast']}, here {autocast_name(torch.device(device))} "
                     "(MVBOOK_AMP, MVBOOK_CPU_BF16)")
    if prov and "torch_threads" not in prov:
        notes.append(f"the record does not state its thread count: running with {torch.get_num_threads()}")
    if len(prov.get("trained_by", [])) > 1:
        notes.append("the run was resumed with other code (provenance.trained_by): no single commit repeats it")
    if code is not None and prov.get("git_commit"):
        rc, hc = str(prov["git_commit"]), str(code["git_commit"])
        if rc != hc or prov.get("git_dirty") or code["git_dirty"]:
            def show(c, dirty):
                return c[:7] + (" with uncommitted changes" if dirty else "")
            notes.append(f"the record was made by {show(rc, prov.get('git_dirty'))}, this code is "
                         f"{show(hc, code['git_dirty'])}: a difference may come from the code "
                         "(--at-commit runs the record's own commit)")
    for pkg, pinned in sorted((pins or {}).items()):
        here = _version(pkg)
        if here is not None and here.split("+")[0] != pinned.split("+")[0]:
            notes.append(f"the commit's constraints.txt pins {pkg} {pinned}, {here} is installed")
    return notes


# --- the record's own commit ---------------------------------------------------------------

def _git(repo, *args, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=check)


@contextlib.contextmanager
def commit_worktree(rec: dict, repo=None):
    """Context: the record's ``provenance.git_commit`` checked out in a temporary
    ``git worktree`` of the clone holding ``repo`` (default: the working folder),
    removed afterwards. Refuses (:class:`~mvbook.errors.ConfigError`) outside a
    clone, for a record made from uncommitted changes, and for a commit the clone
    does not have.

    Parameters
    ----------
    rec : dict
        A results record.
    repo : path or None
        A folder inside the clone.

    Yields
    ------
    (Path, dict)
        The worktree, and the packages the commit's ``constraints.txt`` pins
        (of :data:`NUMERIC_PACKAGES`).
    """
    prov = rec.get("provenance") or {}
    commit = str(prov.get("git_commit", ""))
    if not re.fullmatch(r"[0-9a-f]{7,40}", commit):
        raise ConfigError(f"--at-commit: the record names no git commit (provenance.git_commit: {commit or 'none'})")
    if prov.get("git_dirty") is not False:
        raise ConfigError(f"--at-commit: the record was made from uncommitted changes of {commit[:7]} "
                          f"(provenance.git_dirty: {prov.get('git_dirty')}): no commit holds its code")
    if len(prov.get("trained_by", [])) > 1:
        raise ConfigError(f"--at-commit: the record was trained by several commits (provenance.trained_by)")
    repo = Path(repo or os.getcwd())
    try:
        top = _git(repo, "rev-parse", "--show-toplevel").stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise ConfigError(f"--at-commit needs a git clone of mvbook: {repo} is not inside one "
                          "(git clone the project and run from it)") from None
    if _git(top, "cat-file", "-e", f"{commit}^{{commit}}", check=False).returncode:
        raise ConfigError(f"--at-commit: the record's commit {commit[:10]} is not in the clone {top} "
                          "(git fetch it, or unshallow the clone)")
    pins = {}
    text = _git(top, "show", f"{commit}:constraints.txt", check=False).stdout
    for line in text.splitlines():
        name, _, version = line.partition("==")
        if name.strip().lower() in NUMERIC_PACKAGES and version:
            pins[name.strip().lower()] = version.strip()
    with tempfile.TemporaryDirectory(prefix=f"mvbook-{commit[:7]}-") as tmp:
        tree = Path(tmp) / "tree"
        _git(top, "worktree", "add", "--detach", "--quiet", str(tree), commit)
        try:
            yield tree, pins
        finally:
            _git(top, "worktree", "remove", "--force", str(tree), check=False)


# --- the rerun -----------------------------------------------------------------------------

def _rerun(args: dict, code_root: Path, out: Path, threads: int, quick: bool, data_root=None,
           cache_dir=None) -> dict:
    """Run :data:`DRIVER` with ``code_root`` first on the path; its answer. The data
    root and the cache go through ``MVBOOK_DATA`` and ``MVBOOK_CACHE``, which every
    commit reads (``train``'s argument for the data root was once ``root``)."""
    result = out / "result.json"
    payload = dict(args, out=str(out / "records"), threads=threads, quick=quick, result=str(result))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(code_root), os.environ.get("PYTHONPATH", "")]).rstrip(
        os.pathsep), **{v: str(threads) for v in THREAD_VARIABLES})
    env |= {k: str(Path(v).resolve()) for k, v in (("MVBOOK_DATA", data_root), ("MVBOOK_CACHE", cache_dir)) if v}
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(payload)], cwd=code_root, env=env,
                          stdout=subprocess.PIPE, text=True)
    if proc.stdout.strip():
        print(proc.stdout.rstrip(), file=sys.stderr)
    if not result.is_file():
        raise MvbookError(f"the rerun failed (exit status {proc.returncode}; its output is above)")
    answer = json.loads(result.read_text())
    if "error" in answer:
        raise MvbookError(f"the rerun stopped: {answer['error']}")
    return answer


# --- the comparison ------------------------------------------------------------------------

def _leaves(tree, prefix: str = "") -> list[tuple[str, object]]:
    """(dotted name, value) of every non-dict value of ``tree``, in its order."""
    if not isinstance(tree, dict):
        return [(prefix, tree)]
    return [leaf for k, v in tree.items() for leaf in _leaves(v, f"{prefix}.{k}" if prefix else str(k))]


def _pair(a, b) -> str:
    """``a vs b`` with as many digits as it takes to tell two floats apart."""
    if isinstance(a, float) and isinstance(b, float):
        for digits in range(9, 18):
            x, y = f"{a:.{digits}g}", f"{b:.{digits}g}"
            if x != y:
                return f"{x} vs {y}"
    return f"{a!r} vs {b!r}"


def _first_curve_difference(rec: dict, new: dict, quick: bool) -> str | None:
    old_c, new_c = dict(_leaves(rec["curves"])), dict(_leaves(new))
    steps = old_c.get("step", [])
    n = len(new_c.get("step", []))
    if not quick and n != len(steps):
        tail = f"curves: {len(steps)} evaluations in the record, {n} in the rerun"
    elif quick and n > len(steps):
        tail = f"curves: {len(steps)} evaluations in the record, the rerun has more"
    else:
        tail = None
    for i in range(min(n, len(steps))):
        for name, values in old_c.items():
            if name not in new_c:
                return f"curves.{name}: in the record, not in the rerun"
            if i >= len(values) or i >= len(new_c[name]) or values[i] != new_c[name][i]:
                a = values[i] if i < len(values) else "nothing"
                b = new_c[name][i] if i < len(new_c[name]) else "nothing"
                return f"curves.{name} at step {steps[i]}: {_pair(a, b)} (record vs rerun)"
    return tail


def _first_result_difference(rec: dict, new: dict) -> str | None:
    """The first difference of the selected step, the accuracies and the test posteriors."""
    for part in ("best", "accuracy"):
        for name, a in _leaves(rec[part], part):
            b = dict(_leaves(new[part], part)).get(name, "nothing")
            if a != b:
                return f"{name}: {_pair(a, b)} (record vs rerun)"
    old_t, new_t = rec["test"], new["test"]
    for k in ("keys", "labels"):
        if old_t.get(k) != new_t.get(k):
            return f"test.{k}: the rerun tests other clips"
    for branch, P in old_t["probs"].items():
        Q = new_t["probs"].get(branch)
        if Q is None:
            return f"test.probs.{branch}: in the record, not in the rerun"
        for i, (p, q) in enumerate(zip(P, Q)):
            if p != q:
                j = next((j for j, (x, y) in enumerate(zip(p, q)) if x != y), min(len(p), len(q)))
                a, b = (p[j] if j < len(p) else "nothing"), (q[j] if j < len(q) else "nothing")
                return f"test.probs.{branch} of clip {old_t['keys'][i]}, class {j}: {_pair(a, b)} (record vs rerun)"
        if len(P) != len(Q):
            return f"test.probs.{branch}: {len(P)} clips in the record, {len(Q)} in the rerun"
    return None


def _deltas(rec: dict, new: dict) -> str:
    """Test accuracies (%), record → rerun where they differ, and the selected step."""
    out = []
    for k, a in rec["accuracy"].items():
        b = new["accuracy"].get(k)
        out.append(f"{k} {100 * a:.2f}" if b == a else
                   f"{k} {100 * a:.2f} → " + ("none" if b is None else f"{100 * b:.2f} ({100 * (b - a):+.2f})"))
    s, t = rec["best"].get("step"), new["best"].get("step")
    sel = f"step {s} selected" if s == t else f"selected step {s} → {t}"
    return f"{sel}; test accuracy (%) " + "  ".join(out)


def compare(rec: dict, new: dict, quick: bool = False) -> tuple[str | None, str]:
    """The first difference between a record and its rerun, and the accuracies.

    Curves are compared evaluation by evaluation (every loss, accuracy, weight,
    learning rate at one step before the next step), then the selected model
    (``best``), the accuracies and the test posteriors; all exactly.

    Parameters
    ----------
    rec : dict
        The record.
    new : dict
        The rerun's record, or ``{"curves": …}`` up to its first evaluation (``quick``).
    quick : bool
        Compare only the curves' evaluations the rerun has.

    Returns
    -------
    (str or None, str)
        The first difference (quantity, step, both values), None where there is
        none; the accuracies (empty for ``quick``).
    """
    first = _first_curve_difference(rec, new["curves"], quick)
    if quick:
        return first, ""
    return first or _first_result_difference(rec, new), _deltas(rec, new)


# --- all together --------------------------------------------------------------------------

def verify(path, data_root=None, cache_dir=None, at_commit: bool = False, quick: bool = False,
           progress: bool = True, log=None, repo=None) -> Verdict:
    """Re-run the run of the record in ``path`` and compare.

    Parameters
    ----------
    path : path
        A results record.
    data_root, cache_dir : path or None
        The data root (default ``$MVBOOK_DATA``) and the feature cache.
    at_commit : bool
        Run the record's own commit (:func:`commit_worktree`) instead of this code.
    quick : bool
        Stop at the first evaluation after step 0 and compare the curves up to it.
    progress : bool
        The rerun's progress bar.
    log : callable or None
        Called with each note (``note: …``) before the run and a line when it
        starts; default: printed to stderr.
    repo : path or None
        With ``at_commit``: a folder of the clone (default: the working folder).

    Returns
    -------
    Verdict
        ``identical`` or ``differs``; a record that cannot be verified (damaged,
        no data, an unknown system, a refused ``at_commit``) raises
        :class:`~mvbook.errors.MvbookError` instead.
    """
    import torch
    from .data import load_dataset
    from .records import code_version
    from .systems import TRAINED_SYSTEMS, dependencies
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    rec = _read(path) | {"path": str(path)}
    args = rerun_arguments(rec)
    if not at_commit and args["system"] not in TRAINED_SYSTEMS:
        raise ConfigError(f"unknown system {args['system']!r} "
                          "(--at-commit runs the record's own code)")
    if args["system"] in TRAINED_SYSTEMS and dependencies(args["system"]):
        raise ConfigError(f"{args['system']} trains on the checkpoints of "
                          f"{', '.join(dependencies(args['system']))}; verify their records")
    ds = load_dataset(args["dataset"], data_root)
    device, notes = _device(rec)
    fp = rec["config"].get("dataset_fingerprint")
    if fp and fp != ds.fingerprint():
        notes.append(f"the data differ from the record's (dataset fingerprint {ds.fingerprint()}, "
                     f"recorded {fp}): identity is not expected")
    threads = int((rec.get("provenance") or {}).get("torch_threads") or torch.get_num_threads())
    args |= {"device": device, "progress": progress}
    with contextlib.ExitStack() as stack:
        if at_commit:
            code_root, pins = stack.enter_context(commit_worktree(rec, repo))
            notes += environment_notes(rec, device, None, pins)
        else:
            code_root = Path(__file__).resolve().parents[1]
            notes += environment_notes(rec, device, code_version())
        for n in notes:
            log(f"note: {path}: {n}")
        code = f"commit {rec['provenance']['git_commit'][:7]}" if at_commit else "this code"
        log(f"verifying {path}: {args['system']} fold {args['fold']} seed {args['seed']}, preset {args['preset']}"
            f"{', up to its first evaluation' if quick else ''}, on {device} with {threads} thread(s), by {code}")
        out = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mvbook-verify-")))
        answer = _rerun(args, code_root, out, threads, quick, data_root, cache_dir)
        new = {"curves": answer["curves"]} if quick else json.loads(Path(answer["record"]).read_text())
    first, deltas = compare(rec, new, quick)
    if quick:
        deltas = f"quick: up to step {new['curves']['step'][-1]}"
    return Verdict(str(path), "differs" if first else "identical", first or "", deltas, notes)
