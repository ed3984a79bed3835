"""The training loop of §3.1.3: Adam, warm-up and step decays, losses measured
every evaluation interval, the weight rule (Algorithm 1 for ``multiview``),
the best-validation checkpoint, a checkpoint at every evaluation and resume.
What is trained, and how its batches, losses and evaluations look, comes from
the system (:mod:`mvbook.systems`); this loop knows no particular one.
Chapter: *Training*.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import torch
from tqdm.auto import tqdm

from . import evaluate
from .checkpoints import CheckpointError, RunLock, load_checkpoint, save_checkpoint, save_weights, start_over
from .config import check_seed, get_preset
from .data import load_dataset
from .device import autocast_name, keep_freed_memory, resolve_device
from .errors import ConfigError, DataError, DivergedError, RunConflictError
from .records import (
    SCHEMA,
    RunPaths,
    check_out,
    check_writable,
    code_version,
    provenance,
    record_lock,
    sweep_record_temporaries,
    write_record,
)
from .schema import CodeVersion, Curves, RunRecord
from .seeds import DEFAULT_SCHEME, check_scheme
from .systems import get_system
from .systems.base import Run, Training
from .views.cache import clip_ids
from .views.cachefile import interrupt_guard

__all__ = ["train"]


def train(dataset: str = "synthetic", system: str = "multiview", fold: int = 1, preset: str = "smoke", *,
          seed: int = 0, device: str = "auto", data_root=None, out="runs", checkpoints=None,
          cache_dir=None, progress: bool = True, fresh: bool = False, callback=None,
          split_seed: int = 0, seed_scheme: str = DEFAULT_SCHEME, **overrides) -> RunRecord:
    """Train one system on one fold and write its results record.

    Parameters
    ----------
    dataset, system, fold, preset, seed : str, str, int, str, int
        What to train (:data:`mvbook.systems.TRAINED_SYSTEMS`, :data:`mvbook.config.PRESETS`).
    device : str
        ``auto`` (CUDA when present), ``cpu``, ``cuda``, ``cuda:1`` …
    data_root, out, checkpoints, cache_dir : path or None
        The data root (default ``$MVBOOK_DATA``); where the record goes
        (``<out>/<dataset>/<preset>/<system>/fold<k>-seed<s>.json``; default ``runs``,
        git-ignored: the committed records in ``results`` are written only on request); the
        checkpoint folder (default ``<out>/checkpoints``); the feature cache.
    progress : bool
        A progress bar over the training steps.
    fresh : bool
        Replace a record of another configuration, and start over where the run's
        checkpoint cannot be resumed (another configuration, damaged, other clip
        contents, or finished and recorded); an unfinished checkpoint of this same
        run (an interrupted ``fresh`` run) is resumed: delete its folder to start over.
    callback : callable or None
        Called with ``{"step", "total_steps", "curves", "best"}`` after every evaluation.
    split_seed : int
        Draws the fold's validation sources (:meth:`.Dataset.split`);
        0 in every committed record, so the seeds of a fold share its clips.
    seed_scheme : {"per_fold", "shared"}
        How ``seed`` and ``fold`` seed the run's random streams (:mod:`mvbook.seeds`):
        ``per_fold`` (default) draws them from ``(seed, fold)``; ``shared``, the scheme of
        the records made before it was named, from ``seed`` alone.
    **overrides
        Preset fields to change (``epochs=3``), recorded as reductions.

    Returns
    -------
    dict
        The record (:mod:`mvbook.records`), with its ``path``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as out:
    ...     rec = train("synthetic", "mel", preset="smoke", epochs=1, out=out, progress=False)
    >>> rec["system"], rec["config"]["steps"] == rec["curves"]["step"][-1]
    ('mel', True)
    """
    t_start, code = time.time(), code_version()
    check_seed(seed)
    check_scheme(seed_scheme)
    sys_ = get_system(system)
    p = sys_.preset(get_preset(preset, **overrides))
    dev = resolve_device(device)
    keep_freed_memory()
    ds = load_dataset(dataset, data_root)
    paths = RunPaths(check_out(out), ds.name, p.name, system, fold, seed,
                     None if checkpoints is None else check_out(checkpoints))
    check_writable(paths.record.parent)                          # now, not after the run has trained
    check_writable(paths.checkpoint_dir)
    run = Run(ds, ds.split(fold, split_seed), fold, seed, split_seed, p, dev, paths, cache_dir, progress,
              data_root, overrides, seed_scheme)
    on_term = f"interrupted (SIGTERM); the same command resumes from the run's last checkpoint ({paths.checkpoint})"
    with interrupt_guard([], on_term), RunLock(paths.checkpoint_dir):      # SIGTERM too: no temporary left
        _sweep_temporaries(paths.checkpoint_dir)
        tr = sys_.prepare(run)
        contents = dict(zip((c.key for c in ds.clips), clip_ids(ds, cache_dir)))   # the cache's content ids
        ck = _own_checkpoint(tr, paths, dev, contents)
        _refuse_other_record(paths.record, tr.config, fresh, checkpoint=paths if ck is not None else None)
        if fresh and ck is not None and _recorded(paths.record, tr.config) and ck["state"]["step"] >= tr.total_steps:
            ck = None                                            # finished and recorded: fresh trains it again
        state = _loop(tr, paths, dev, run.seeds.batches, fresh and ck is None, f"{system} fold {fold}", progress,
                      callback, code, contents, ck)
    record = _record(tr, state, ds)
    record["provenance"] = provenance(dev, state.elapsed, time.time() - t_start, code)
    record["provenance"]["autocast"] = autocast_name(dev)
    record["provenance"]["trained_by"] = state.code
    return _write(cast(RunRecord, record), paths, tr.config, fresh)      # every key of a record now: a RunRecord


def _write(record: RunRecord, paths: RunPaths, config: dict, fresh: bool) -> RunRecord:
    """Write the record (returned with its ``path``), checking again, under a lock,
    that no record of another configuration appeared while the run trained."""
    with record_lock(paths.record):
        for tmp in sweep_record_temporaries(paths.record.parent):
            print(f"removed {tmp}: a temporary left by a killed run", flush=True)
        _refuse_other_record(paths.record, config, fresh, paths.checkpoint_dir)
        try:
            write_record(record, paths.record)
        except PermissionError as e:
            raise ConfigError(
                f"cannot write the record, {e.strerror} ({paths.record}): this run finished and is not recorded; "
                f"its checkpoint ({paths.checkpoint}) is kept, so the same command records it without training "
                "again once the folder is writable (or with --out another folder and the same --checkpoints)"
            ) from None
    return record | {"path": str(paths.record)}


def _sweep_temporaries(folder: Path) -> None:
    """Remove the temporaries of a run's checkpoints that a killed run left
    (``.checkpoint.pt.*.tmp``, ``.best.pt.*.tmp``): called under the run's lock,
    so no writer of this folder is alive."""
    for tmp in sorted(folder.glob(".*.pt.*.tmp")):
        tmp.unlink(missing_ok=True)
        print(f"removed {tmp}: a temporary left by a killed run", flush=True)


def _own_checkpoint(tr: Training, paths: RunPaths, dev: torch.device, contents: dict) -> dict | None:
    """The run's checkpoint if it can be resumed (it loads, passes its checksum, and has
    this configuration and these clip contents), else None (absent or not resumable)."""
    if not paths.checkpoint.is_file():
        return None
    try:
        ck = load_checkpoint(paths.checkpoint, dev)
    except CheckpointError:
        return None
    if ck["config"] != tr.config or ck.get("clip_contents") not in (None, contents):
        return None
    return ck


def _recorded(path: Path, config: dict) -> bool:
    """Whether ``path`` holds a record of this ``config``."""
    try:
        return json.loads(path.read_text()).get("config") == json.loads(json.dumps(config))
    except (OSError, ValueError, AttributeError):
        return False


def _refuse_other_record(path: Path, config: dict, fresh: bool, kept: Path | None = None,
                         checkpoint: RunPaths | None = None) -> None:
    """A record is never replaced by one of another configuration without ``fresh``
    (``kept``: the finished run's checkpoint folder, when the check comes at its end;
    ``checkpoint``: the run's paths where a resumable checkpoint of it exists)."""
    if fresh or not path.is_file():
        return
    try:
        old = json.loads(path.read_text()).get("config", {})
    except (json.JSONDecodeError, AttributeError):
        old = None
    config = json.loads(json.dumps(config))                      # as the record stores it (tuples → lists)
    if old != config:
        diff = sorted(k for k in set(old or {}) | set(config) if (old or {}).get(k) != config.get(k))
        done = "" if kept is None else (
            f"; this run finished and is not recorded: its checkpoint ({kept}) is kept, so the same command "
            "with --out another folder (and the same --checkpoints) records it without training again")
        resumes = "" if not checkpoint else (
            f" (this run's checkpoint, {checkpoint.checkpoint}, is resumed by either: with --out another folder, "
            f"pass --checkpoints {checkpoint.checkpoints or Path(checkpoint.out) / 'checkpoints'} too)")
        raise RunConflictError(f"a record of this run with another configuration exists ({path}): it differs in "
                               f"{', '.join(diff) or 'its format'}; pass --fresh (fresh=True) to replace it, or "
                               f"--out another folder to keep both{resumes}{done}")


def _check_training(finite: torch.Tensor, last: int, step: int, checkpoint: Path) -> None:
    """Stop a run whose training loss was not finite at some step since the last evaluation."""
    if not bool(finite):
        raise DivergedError(f"non-finite training loss between steps {last} and {step} ({checkpoint}): "
                           "the run is stopped, its last good checkpoint kept")


def _check_finite(res: dict, step: int, checkpoint: Path) -> None:
    """Stop a run whose evaluation losses are not finite, naming the step, set and branch."""
    for s, r in res.items():
        bad = [k for k, v in r["loss"].items() if not math.isfinite(v)]
        if bad:
            raise DivergedError(f"non-finite {s} loss of branch {', '.join(bad)} at step {step} ({checkpoint}): "
                               "the run is stopped, its last good checkpoint kept; nothing is recorded")


def _empty_curves(branches) -> Curves:
    per: Callable[[], dict[str, list[float]]] = lambda: {k: [] for k in branches}  # noqa: E731
    return {"step": [], "epoch": [], "lr": [], "weights": per(),
            "loss": {s: per() for s in ("train", "val", "test")},
            "accuracy": {s: per() | {"self_ensemble": []} for s in ("val", "test")}}


# the code history of a checkpoint written before runs kept one
_UNKNOWN_CODE = {"from_step": 0, "git_commit": "unknown (a checkpoint from before mvbook kept the code history)",
                "git_dirty": None}


@dataclass
class _LoopState:
    """What the loop carries from one evaluation to the next and through a checkpoint
    (saved as a plain dict: ``vars(state)``)."""

    curves: Curves                   # every evaluation's losses, accuracies, weights (:func:`_empty_curves`)
    step: int = 0                    # the last evaluated step
    best: dict | None = None         # the selected evaluation: step, val accuracy/loss, weights, test posteriors
    elapsed: float = 0.0             # seconds of set-up and training so far, over every resume
    code: list = field(default_factory=lambda: [dict(_UNKNOWN_CODE)])   # which commit trained from which step


def _code_history(state: _LoopState, code: CodeVersion, checkpoint: Path) -> None:
    """Continue the loop state's code history ("trained_by" of the record: from which
    step which commit trained the run, one entry per segment: each resume adds one)
    by ``code``; say so where a resumed run's code differs."""
    last = state.code[-1]
    state.code.append({"from_step": state.step, **code})
    if (last["git_commit"], last["git_dirty"]) != (code["git_commit"], code["git_dirty"]):
        dirty = " (modified)" if code["git_dirty"] else ""
        print(f"resuming {checkpoint} at step {state.step}: trained so far by {last['git_commit']}, now by "
              f"{code['git_commit']}{dirty}; the record lists both (provenance.trained_by)", flush=True)
    else:
        print(f"resuming {checkpoint} at step {state.step}", flush=True)


def _resume(tr: Training, paths: RunPaths, dev: torch.device, fresh: bool, rng: np.random.Generator, code: CodeVersion,
            contents: dict, ck: dict | None = None):
    """(loop state, branch weights): fresh, or restored with the network, the
    optimiser, the weight rule and the random generators from the run's checkpoint
    (``ck`` where it was loaded already; it must have been trained on the clip
    ``contents`` the data root holds now)."""
    state = _LoopState(_empty_curves(tr.branches), elapsed=tr.setup_seconds, code=[{"from_step": 0, **code}])
    if fresh or not paths.checkpoint.exists():
        return state, dict(tr.rule.weights)
    ck = ck or load_checkpoint(paths.checkpoint, dev)
    if ck["config"] != tr.config:
        raise RunConflictError(f"{paths.checkpoint} belongs to a different run configuration; "
                               f"{start_over(paths.checkpoint)}")
    _check_contents(ck.get("clip_contents"), contents, paths.checkpoint)
    tr.model.load_state_dict(ck["model"])
    tr.optimizer.load_state_dict(ck["optimizer"])
    tr.rule.load_state_dict(ck["blender"])
    rng.bit_generator.state = ck["numpy_rng"]
    torch.set_rng_state(ck["torch_rng"].cpu())              # map_location moved it to dev
    if dev.type == "cuda" and ck.get("cuda_rng") is not None:  # dropout draws from the GPU's generator
        torch.cuda.set_rng_state(ck["cuda_rng"].cpu(), dev)
    state = _LoopState(**ck["state"])
    _code_history(state, code, paths.checkpoint)
    return state, ck["weights"]


def _check_contents(old: dict | None, now: dict, checkpoint: Path) -> None:
    """Refuse to resume a run on clips whose contents (clip key → content id)
    differ from those it began on (the dataset fingerprint covers names and
    labels only); a checkpoint from before contents were kept (None) is not checked."""
    if old is None or old == now:
        return
    differ = sorted(k for k in set(old) | set(now) if old.get(k) != now.get(k))
    raise DataError(f"{checkpoint} was trained on other clip contents than the data root holds now: "
                    f"{len(differ)} clip(s) differ ({', '.join(differ[:5])}{', …' if len(differ) > 5 else ''}); "
                    f"resume it with the data root it began on (--data-root), or {start_over(checkpoint)}")


def _append(curves: Curves, tr: Training, step: int, weights: dict, res: dict) -> None:
    """One evaluation's losses, accuracies (and the self-ensemble's) and weights."""
    curves["step"].append(step)
    curves["epoch"].append(step / tr.steps_per_epoch)
    curves["lr"].append(tr.learning_rate(step))
    for k in tr.branches:
        curves["weights"][k].append(weights[k])
        for s in ("train", "val", "test"):
            curves["loss"][s][k].append(res[s]["loss"][k])
    for s in ("val", "test"):
        for k in tr.branches:
            curves["accuracy"][s][k].append(res[s]["accuracy"][k])
        curves["accuracy"][s]["self_ensemble"].append(
            evaluate.ensemble_accuracy(res[s]["probs"], weights, tr.sets[s].labels))


def _loop(tr: Training, paths: RunPaths, dev: torch.device, seed, fresh: bool, desc: str,
          progress: bool, callback, code: CodeVersion, contents: dict, ck: dict | None = None) -> _LoopState:
    """Train ``tr`` to its last step, evaluating every ``tr.eval_every`` steps, its batches
    drawn by ``numpy.random.default_rng(seed)`` (:attr:`mvbook.seeds.RunSeeds.batches`); returns the loop state."""
    rng = np.random.default_rng(seed)
    state, weights = _resume(tr, paths, dev, fresh, rng, code, contents, ck)
    main = tr.main
    clock = time.time()
    finite = torch.ones((), dtype=torch.bool, device=dev)        # all training losses finite (read at evaluations)

    def measure(step: int):
        """Evaluate, update the weights, select, checkpoint."""
        nonlocal weights, clock
        _check_training(finite, state.step, step, paths.checkpoint)
        res = tr.evaluate()
        _check_finite(res, step, paths.checkpoint)
        weights = tr.rule.update(res["train"]["loss"], res["val"]["loss"])
        _append(state.curves, tr, step, weights, res)
        b = state.best
        va, vl = res["val"]["accuracy"][main], res["val"]["loss"][main]
        if b is None or va > b["val_accuracy"] or (va == b["val_accuracy"] and vl < b["val_loss"]):
            state.best = {"step": step, "epoch": step / tr.steps_per_epoch, "val_accuracy": va, "val_loss": vl,
                          "weights": dict(weights), "test_probs": res["test"]["probs"],
                          "test_accuracy": dict(res["test"]["accuracy"])}
            save_weights(paths.best, tr.model.state_dict())
        state.step = step
        state.elapsed += time.time() - clock
        clock = time.time()
        save_checkpoint(paths.checkpoint, vars(state), config=tr.config, model=tr.model.state_dict(),
                        optimizer=tr.optimizer.state_dict(), blender=tr.rule.state_dict(), weights=weights,
                        numpy_rng=rng.bit_generator.state, torch_rng=torch.get_rng_state(),
                        cuda_rng=torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None,
                        clip_contents=contents)
        if callback:
            callback({"step": step, "total_steps": tr.total_steps, "curves": state.curves, "best": state.best})

    if state.step == 0 and not state.curves["step"]:
        measure(0)
    step = state.step
    batches = tr.batches(rng)
    bar = tqdm(total=tr.total_steps, initial=step, disable=not progress, desc=desc, unit="step")
    tr.model.train()
    # The step loop reads nothing back from the device (no .item(), no float(loss)):
    # losses for progress and blending are measured at evaluation time.
    while step < tr.total_steps:
        for group in tr.optimizer.param_groups:
            group["lr"] = tr.learning_rate(step)
        loss = tr.loss(next(batches), weights)
        finite &= torch.isfinite(loss.detach())
        tr.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        tr.optimizer.step()
        step += 1
        bar.update(1)
        if step % tr.eval_every == 0 or step == tr.total_steps:
            measure(step)
            tr.model.train()
            bar.set_postfix(val_acc=f"{state.curves['accuracy']['val'][main][-1]:.3f}",
                            best=f"{state.best['val_accuracy']:.3f}")
    bar.close()
    return state


def _record(tr: Training, state: _LoopState, ds) -> dict:
    """The results record (see :mod:`mvbook.records`) of a finished run, without provenance."""
    # the first evaluation (measure(0)) sets ``best``, and every checkpoint a run resumes from follows one
    config, best, test = tr.config, cast(dict, state.best), tr.sets["test"]
    acc = dict(best["test_accuracy"])
    if len(tr.branches) > 1:
        acc["self_ensemble"] = evaluate.ensemble_accuracy(best["test_probs"], best["weights"], test.labels)
    diagnostics = tr.rule.diagnostics(state.curves["step"], state.curves["weights"], best["weights"])
    return {"schema": SCHEMA, "system": config["system"], "dataset": config["dataset"],
            "fold": config["fold"], "seed": config["seed"], "preset": config["preset"]["name"],
            "reduced": list(config["preset"]["reduced"]), "main_branch": tr.main, "accuracy": acc,
            "system_accuracy": acc[tr.main], "config": config,
            "best": {k: best[k] for k in ("step", "epoch", "val_accuracy", "val_loss", "weights")},
            "curves": state.curves,
            "test": {"keys": [ds.clips[i].key for i in test.clips], "labels": test.labels.tolist(),
                     "probs": {k: np.round(v, 5).tolist() for k, v in best["test_probs"].items()}},
            **({"diagnostics": diagnostics} if diagnostics else {})}
