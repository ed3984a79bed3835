"""Results records (one JSON per run, with provenance), late fusion, Table 3.

A record: ``system, dataset, fold, seed, preset, reduced, accuracy`` (per
branch and ``self_ensemble``), ``system_accuracy``, ``config``, ``best``,
``curves`` (per evaluation: losses per split and branch, weights, lr,
accuracies), ``test`` (file keys, labels, per-branch posteriors of the selected
model) and ``provenance`` (git commit, machine, device, date, wall time).
Chapter: *Results*.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .config import DERIVED

REPO = Path(__file__).resolve().parents[1]

# Table 3 of the paper (accuracy %), keyed like our systems.
PAPER_TABLE3 = pd.DataFrame(
    {"esc50": [87.35, 86.65, 85.80, 84.44, 80.15, 76.90, 58.30, 75.60],
     "dcase2016": [85.38, 85.13, 82.05, 83.85, 77.18, 77.95, 75.38, 57.44],
     "gtzan": [91.10, 90.80, 89.70, 89.00, 87.30, 86.20, 83.10, 81.50]},
    index=["self_ensemble", "multiview", "late", "concat", "mel", "gam", "cqt", "raw"])
ROW_NAMES = {"self_ensemble": "Self-ensemble", "multiview": "Multi-view", "late": "Late fusion",
             "concat": "Concat. fusion", "equal": "Equal-weight five losses (extra)", "mel": "Mel",
             "gam": "Gammatone", "cqt": "CQT", "raw": "Raw"}


def record_path(dataset: str, preset: str, system: str, fold: int, seed: int) -> Path:
    """Relative path of a run's record: ``<dataset>/<preset>/<system>/fold<k>-seed<s>.json``."""
    return Path(dataset) / preset / system / f"fold{fold}-seed{seed}.json"


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
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_record(record: dict, path) -> Path:
    """Write a record as JSON atomically (a reader never sees half a file)."""
    _atomic(Path(path), lambda f: f.write(json.dumps(record, indent=1).encode()))
    return Path(path)


def atomic_torch_save(obj, path) -> None:
    """``torch.save`` through a temporary file and ``os.replace``."""
    import torch
    _atomic(Path(path), lambda f: torch.save(obj, f))


def _git(*args) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def code_version() -> dict:
    """The git commit of the library and whether tracked files differ from it.
    Taken when a run starts (the tree may change while it trains)."""
    return {"git_commit": _git("rev-parse", "HEAD") or "unknown",
            "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no"))}


def provenance(device, train_seconds: float, wall_seconds: float, code: dict | None = None) -> dict:
    """Where, when and from which code (``code_version()`` at the start) a run came."""
    import torch
    dev = str(device)
    if dev.startswith("cuda"):
        dev += f" ({torch.cuda.get_device_name()})"
    return {**(code or code_version()),
            "machine": f"{platform.node()}: {_cpu_model()}, {os.cpu_count()} cores",
            "device": dev, "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "train_seconds": round(train_seconds, 1), "wall_seconds": round(wall_seconds, 1),
            "command": " ".join(sys.argv)}


def load_records(root="results", dataset=None, preset=None) -> list[dict]:
    """Every record under ``root`` (optionally one dataset/preset), with its path."""
    recs = []
    for path in sorted(Path(root).rglob("*.json")):
        try:
            rec = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not a valid results record ({e})") from e
        if rec.get("schema") != "mvbook.record/1":
            continue
        if (dataset and rec["dataset"] != dataset) or (preset and rec["preset"] != preset):
            continue
        rec["path"] = str(path)
        recs.append(rec)
    return recs


def late_fusion(single: dict) -> dict:
    """Late fusion (§3.1.4): mean of the single-view runs' test posteriors.

    ``single``: view → record of the same dataset, fold, seed and preset.
    Returns {"accuracy", "probs", "labels"}.
    """
    recs = [single[v] for v in DERIVED["late"]]
    keys = recs[0]["test"]["keys"]
    for r in recs[1:]:
        if r["test"]["keys"] != keys:
            raise ValueError("late fusion needs single-view runs on the same test files")
    P = np.mean([np.asarray(r["test"]["probs"][r["main_branch"]]) for r in recs], axis=0)
    labels = np.asarray(recs[0]["test"]["labels"])
    return {"accuracy": float(np.mean(P.argmax(1) == labels)), "probs": P, "labels": labels}


def fold_accuracies(records: list[dict]) -> pd.DataFrame:
    """Accuracy (%) per system (rows) and (fold, seed) (columns), with the
    derived rows: ``late`` (from the four single-view runs) and
    ``self_ensemble`` (from the multiview runs)."""
    cell = {}
    by_run = {}
    for r in records:
        cell[(r["system"], (r["fold"], r["seed"]))] = 100 * r["system_accuracy"]
        by_run.setdefault((r["fold"], r["seed"]), {})[r["system"]] = r
        if r["system"] == "multiview":
            cell[("self_ensemble", (r["fold"], r["seed"]))] = 100 * r["accuracy"]["self_ensemble"]
    for run, systems in by_run.items():
        if all(v in systems for v in DERIVED["late"]):
            cell[("late", run)] = 100 * late_fusion(systems)["accuracy"]
    if not cell:
        return pd.DataFrame()
    s = pd.Series(cell)
    df = s.unstack()
    order = [k for k in ROW_NAMES if k in df.index]
    return df.loc[order]


def table3(records: list[dict]) -> pd.DataFrame:
    """Mean, std and number of (fold, seed) runs per system, in Table 3's order."""
    df = fold_accuracies(records)
    if df.empty:
        return pd.DataFrame(columns=["mean", "std", "n"])
    return pd.DataFrame({"mean": df.mean(axis=1), "std": df.std(axis=1, ddof=1), "n": df.notna().sum(axis=1)})


def format_table3(records: list[dict], dataset: str, preset: str) -> str:
    """Table 3 as text: our mean ± std over folds beside the paper's column."""
    t = table3(records)
    paper_col = "esc50" if dataset in ("esc50", "esc10") else dataset
    lines = [f"Table 3 — {dataset}, preset {preset!r} (accuracy %, mean ± std over folds × seeds)"]
    if records:
        red = sorted({x for r in records for x in r.get("reduced", [])})
        if red:
            lines.append("reduced from the paper: " + "; ".join(red))
    head = f"{'system':<34}{'ours':>16}{'runs':>6}{'paper (' + paper_col + ')':>18}"
    lines += [head, "-" * len(head)]
    for key, name in ROW_NAMES.items():
        paper = PAPER_TABLE3[paper_col].get(key, float("nan")) if paper_col in PAPER_TABLE3 else float("nan")
        if key in t.index:
            m, s, n = t.loc[key, "mean"], t.loc[key, "std"], int(t.loc[key, "n"])
            ours = f"{m:6.2f} ± {s:5.2f}" if n > 1 else f"{m:6.2f}"
        else:
            ours, n = "no runs", 0
        lines.append(f"{name:<34}{ours:>16}{n:>6}{paper:>18.2f}" if paper == paper else
                     f"{name:<34}{ours:>16}{n:>6}{'—':>18}")
    if paper_col != dataset:
        lines.append(f"(the paper reports ESC-50, 50 classes; {dataset} is not the paper's dataset)")
    return "\n".join(lines)
