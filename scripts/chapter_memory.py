#!/usr/bin/env python3
"""Peak memory of each chapter of the book, executed on its own as a notebook.

    .venv/bin/python scripts/chapter_memory.py                    # every chapter of _toc.yml
    .venv/bin/python scripts/chapter_memory.py book/views.md      # some
    .venv/bin/python scripts/chapter_memory.py --json mem.json    # also keep the figures

Each chapter is converted with jupytext and executed with nbclient in a fresh
process, at the book's default settings (no ``MVBOOK_DATA``: the synthetic
dataset; ``MVBOOK_PRESET=smoke``), on one thread (``OMP_NUM_THREADS=1``: a
public Binder gives one core), with an empty feature cache and runs folder of
its own (the worst case: nothing cached). Two figures per chapter:

* *peak RSS (largest process)*: the kernel's own peak resident set, exact,
  from the kernel's ``rusage`` (``os.wait4``);
* *peak memory (all processes)*: the highest sum over the driver, the kernel
  and anything it starts (``mvbook verify`` and its re-run, in *Runs*) of
  each process's proportional set size (PSS: a page shared by n processes,
  such as torch's libraries, counts 1/n in each), sampled every 0.2 s
  (psutil) — what a container limit such as Binder's ~2 GB charges, give or
  take the Jupyter server. (A sum of RSS counts shared pages once per process:
  with a second Python process importing torch, that overstates it by the
  size of torch's libraries.)

Prints a Markdown table; ``--write-readme`` also puts it into the README
between its ``chapter-memory`` markers. Exit status 1 when a chapter fails or
exceeds ``--limit`` (GB, default 2).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from make_notebooks import toc_chapters  # scripts/: the chapters of _toc.yml

REPO = Path(__file__).resolve().parents[1]
GB = 1024 ** 3


def execute(path: Path) -> None:
    """Run in the child: execute one chapter where the book runs it (its folder)."""
    import jupytext
    from nbclient import NotebookClient
    nb = jupytext.read(path)
    NotebookClient(nb, timeout=1800, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()


def measure(path: Path, scratch: Path) -> dict:
    env = dict(os.environ, MVBOOK_PRESET="smoke", MVBOOK_RUNS=str(scratch / "runs"),
               MVBOOK_CACHE=str(scratch / "cache"), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1", PYDEVD_DISABLE_FILE_VALIDATION="1",
               MPLBACKEND="agg")
    for k in ("MVBOOK_DATA", "MVBOOK_DATASET"):
        env.pop(k, None)
    t = time.time()
    child = subprocess.Popen([sys.executable, __file__, "--execute", str(path)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    proc, tree_peak, rss_peak = psutil.Process(child.pid), 0, 0
    while child.poll() is None:
        try:
            procs = [proc] + proc.children(recursive=True)
            tree_peak = max(tree_peak, sum(_pss(p) for p in procs))
            rss_peak = max(rss_peak, sum(_rss(p) for p in procs))    # kept in --json: the sum of RSS
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.2)
    out = child.stdout.read().decode(errors="replace")
    kernel_peak = int(out.rsplit("children-maxrss-kb=", 1)[-1].split()[0]) * 1024 \
        if "children-maxrss-kb=" in out else 0
    return {"chapter": str(path.relative_to(REPO)), "ok": child.returncode == 0, "seconds": time.time() - t,
            "peak_largest": kernel_peak, "peak_all": tree_peak, "peak_all_rss": rss_peak,
            "log": out[-3000:] if child.returncode else ""}


def _rss(p) -> int:
    try:
        return p.memory_info().rss
    except psutil.Error:
        return 0


def _pss(p) -> int:
    """The process's proportional set size (Linux); its RSS where PSS cannot be read."""
    try:
        return getattr(p.memory_full_info(), "pss", None) or p.memory_info().rss
    except psutil.AccessDenied:
        try:
            return p.memory_info().rss
        except psutil.Error:
            return 0
    except psutil.Error:
        return 0


def table(rows, limit) -> str:
    lines = ["| chapter | peak RSS, largest process (GB) | peak PSS, all processes (GB) | time (s) |",
             "|---|---:|---:|---:|"]
    for r in rows:
        flag = "" if r["ok"] and max(r["peak_largest"], r["peak_all"]) < limit * GB else " ✗"
        lines.append(f"| `{r['chapter']}`{flag} | {r['peak_largest'] / GB:.2f} | {r['peak_all'] / GB:.2f} "
                     f"| {r['seconds']:.0f} |")
    return "\n".join(lines)


def write_readme(rows, limit) -> None:
    readme = REPO / "README.md"
    text = readme.read_text()
    start, end = "<!-- chapter-memory:start -->", "<!-- chapter-memory:end -->"
    if start not in text or end not in text:
        raise SystemExit(f"README.md has no {start} … {end} markers")
    worst = max(rows, key=lambda r: max(r["peak_largest"], r["peak_all"]))
    body = (f"{table(rows, limit)}\n\nMeasured {time.strftime('%Y-%m-%d')} by `scripts/chapter_memory.py "
            f"--write-readme`; the highest is {max(worst['peak_largest'], worst['peak_all']) / GB:.2f} GB "
            f"(`{worst['chapter']}`), which leaves room for the Jupyter server (about 0.1–0.2 GB) within "
            f"Binder's {limit:g} GB.")
    readme.write_text(text[:text.index(start) + len(start)] + "\n" + body + "\n" + text[text.index(end):])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("chapters", nargs="*", type=Path, help="chapter files (default: every chapter of _toc.yml)")
    ap.add_argument("--limit", type=float, default=2.0, help="GB each chapter must stay under")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--write-readme", action="store_true",
                    help="put the table (every chapter of _toc.yml) into README.md between its chapter-memory markers")
    ap.add_argument("--execute", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.execute:
        execute(args.execute.resolve())
        import resource
        print(f"children-maxrss-kb={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
        return 0
    rows = []
    for path in [p.resolve() for p in args.chapters] or toc_chapters():
        with tempfile.TemporaryDirectory(prefix="mvbook-mem-") as scratch:
            r = measure(path, Path(scratch))
        rows.append(r)
        print(f"{r['chapter']}: {'ok' if r['ok'] else 'FAILED'}, largest {r['peak_largest'] / GB:.2f} GB, "
              f"all {r['peak_all'] / GB:.2f} GB, {r['seconds']:.0f} s", file=sys.stderr, flush=True)
        if not r["ok"]:
            print(r["log"], file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print(table(rows, args.limit))
    if args.write_readme:
        write_readme(rows, args.limit)
    bad = [r for r in rows if not r["ok"] or max(r["peak_largest"], r["peak_all"]) >= args.limit * GB]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
