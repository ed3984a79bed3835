#!/usr/bin/env python3
"""Train the queued grid cells two at a time, each from its pinned clean
worktree, and land every record (with its executed notebook, made portable) on
this clone's branch as one commit per run: ``results: esc10/<preset>/<system>/fold<k>-seed<s>``
(the record made portable too: ``portable_notebooks.rewrite_record``).

    python scripts/land_queue.py --worktrees /work/wt       # sets up the worktrees, then runs the queue
    python scripts/land_queue.py --list                     # the queue, in order, and what is done

The queue (:data:`QUEUE`) is the `decide` grid of the analysis plan — seeds
3–12 at ``cpu``, per-fold seeds, from the plan's commit: multi-view and equal
weights, then the four single views, then concatenation — interleaved with
the ``long`` seed-1 single views from the ``long`` grid's commit (the shared
seed scheme of that grid's seeds 0–1). A cell whose record is committed is
skipped; a killed cell resumes from its checkpoint when the worktree survives
(``grid`` resumes), else it starts again. Each run uses one thread
(``OMP_NUM_THREADS=1``); the data root is ``$MVBOOK_DATA``. A session runs
this in the background and stops it at its end.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from portable_notebooks import rewrite_file, rewrite_record  # noqa: E402

from mvbook.plan import NEW_SEEDS, STAGES  # noqa: E402

#: preset → the commit its queued cells are trained at (the plan's commit; the long grid's)
COMMITS = {"cpu": "b9356e9ebf0177cb1ed5863ffacb9b7452f41927", "long": "5c285bd44c94b3dcfccc8a9828b44ebc51c2ed50"}
VIEWS = ("mel", "gam", "cqt", "raw")


def _decide() -> list[tuple]:
    """The plan's grid (mvbook.plan.STAGES), stage after stage; in a stage, seed by seed, fold by fold."""
    return [("cpu", s, f, d) for _, systems, _ in STAGES for d in NEW_SEEDS for f in range(1, 6) for s in systems]


def _long_seed1() -> list[tuple]:
    return [("long", s, f, 1) for f in range(1, 6) for s in VIEWS]


def queue() -> list[tuple]:
    """(preset, system, fold, seed) of every queued cell, in order: the two lists interleaved."""
    a, b = _long_seed1(), _decide()
    out = []
    while a or b:
        out += [x.pop(0) for x in (a, b) if x]
    return out


QUEUE = queue()


def record(preset: str, system: str, fold: int, seed: int) -> Path:
    """The cell's record, relative to a clone."""
    return Path("results/esc10") / preset / system / f"fold{fold}-seed{seed}.json"


def _worktree(root: Path, preset: str) -> Path:
    wt = root / preset
    if not wt.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(wt), COMMITS[preset]], cwd=REPO, check=True)
    return wt


class Lander:
    """Runs cells and commits their records on this clone, one commit at a time."""

    def __init__(self, root: Path, log: Path):
        self.root, self.log, self.lock = root, log, threading.Lock()
        log.mkdir(parents=True, exist_ok=True)

    def land(self, wt: Path, rel: Path, name: str) -> str:
        files = []
        for suffix in (".json", ".ipynb"):
            src = wt / rel.with_suffix(suffix)
            if src.exists():
                dst = REPO / rel.with_suffix(suffix)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
                if suffix == ".ipynb":
                    rewrite_file(dst)
                else:                               # the record's machine paths too (provenance.command, marked)
                    rewrite_record(dst)
                files.append(str(rel.with_suffix(suffix)))
        if not files:
            return "no record"
        with self.lock:
            for _ in range(30):                     # another git command may hold the index for a moment
                subprocess.run(["git", "add", "--", *files], cwd=REPO, capture_output=True)
                done = subprocess.run(["git", "commit", "-q", "-m", f"results: {name}", "--", *files], cwd=REPO,
                                      capture_output=True, text=True)
                if done.returncode == 0:
                    return "landed"
                time.sleep(5)
            return "not committed: " + done.stderr.strip()[-300:]

    def __call__(self, cell: tuple) -> str:
        preset, system, fold, seed = cell
        rel = record(*cell)
        if (REPO / rel).exists():
            return "exists"
        wt = _worktree(self.root, preset)
        env = dict(os.environ, PYTHONPATH=str(wt), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        name = f"esc10/{preset}/{system}/fold{fold}-seed{seed}"
        t0 = time.time()
        with open(self.log / (name.replace("/", "-") + ".log"), "w") as fh:
            rc = subprocess.run([sys.executable, "-m", "mvbook", "grid", "--dataset", "esc10", "--preset", preset,
                                 "--systems", system, "--folds", str(fold), "--seeds", str(seed),
                                 "--out", str(wt / "results"), "--no-progress"],
                                cwd=wt, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
        status = self.land(wt, rel, name) if rc == 0 else f"exit status {rc}"
        with open(self.log / "progress.log", "a") as fh:
            fh.write(f"{time.strftime('%F %T')} {name}: {status} ({(time.time() - t0) / 60:.1f} min)\n")
        return status


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worktrees", type=Path, default=Path("/tmp/mvbook-worktrees"),
                    help="where the pinned worktrees are (made when missing)")
    ap.add_argument("--workers", type=int, default=2, help="runs at a time")
    ap.add_argument("--list", action="store_true", help="print the queue and what is done, and stop")
    args = ap.parse_args(argv)
    if args.list:
        done = sum((REPO / record(*c)).exists() for c in QUEUE)
        for c in QUEUE:
            print(("done " if (REPO / record(*c)).exists() else "     ") + " ".join(map(str, c)))
        print(f"{done} of {len(QUEUE)} cells have their record")
        return 0
    if not os.environ.get("MVBOOK_DATA"):
        raise SystemExit("set MVBOOK_DATA to the folder that holds ESC-50 (the ESC-10 clips are read from it)")
    lander = Lander(args.worktrees, args.worktrees / "logs")
    with ThreadPoolExecutor(args.workers) as ex:
        list(ex.map(lander, QUEUE))
    return 0


if __name__ == "__main__":
    sys.exit(main())
