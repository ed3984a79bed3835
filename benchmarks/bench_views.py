"""Speed and accuracy of the fast view paths against the reference (paper §2.1).

For each 2D view: seconds per clip of the reference (librosa / gtgram, one clip
at a time) and of the fast path (``extract_batch`` over the N clips), the
speed ratio, and the max abs error and correlation of the log outputs. Then the
time to extract and cache all four views of ESC-10 (fresh cache directory) and
to read them back from the cache, and what a warm run's checks cost (the clips'
content ids, each view's row checksums and finite check; ``--warm-only`` runs
just that part, on ``--cache-dir`` if given). Not a test; run from the
repository root::

    python benchmarks/bench_views.py --n 8
    python benchmarks/bench_views.py --warm-only --cache-dir /tmp/mvb_bench
    python benchmarks/bench_views.py --quick     # offline, seconds: 2 synthetic clips, 8 cached (tests)
"""

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mvbook.data import load_dataset
from mvbook.views import cachefile
from mvbook.views import features as F
from mvbook.views.cache import cache_path, clip_ids, load_views, view_shape

REPO = Path(__file__).resolve().parents[1]


def seconds(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def compare(view, waves, sr):
    """(reference s/clip, fast s/clip, max abs log error, correlation) on ``waves``."""
    F.extract_batch(view, waves[:1], sr)                          # warm-up: compile, caches
    t_ref, ref = seconds(lambda: np.stack([F.extract(view, w, sr, method="reference")
                                           for w in waves]))
    t_fast, fast = seconds(lambda: F.extract_batch(view, waves, sr))
    err = np.abs(fast.astype(np.float64) - ref).max()
    corr = np.corrcoef(fast.ravel(), ref.ravel())[0, 1]
    return t_ref / len(waves), t_fast / len(waves), err, corr


def gam_one_thread(waves, sr):
    """The Gammatone kernel on one CPU thread, and its error before rounding to float32."""
    t_fast, P = seconds(lambda: [F.gammatone_power(w, sr) for w in waves])
    t_ref, R = seconds(lambda: [F.reference_power("gam", w, sr).T for w in waves[:2]])
    err = max(np.abs(np.log(p + F.LOG_EPS) - np.log(r + F.LOG_EPS)).max() for p, r in zip(P, R))
    print(f"gam on one thread: {t_fast / len(waves):.4f} s/clip, "
          f"{t_ref / 2 / (t_fast / len(waves)):.1f}x the reference; "
          f"float64 max |Δ log| {err:.1e}")


def first_clips(ds, n):
    """``ds`` cut to its first ``n`` clips (``--quick``)."""
    return type(ds)(ds.name, ds.sr, ds.clip_seconds, ds.classes, ds.clips[:n], root=ds.root, n_folds=ds.n_folds,
                    val_per_class=ds.val_per_class)


def warm_checks(ds, cache, repeat=3, cli=True):
    """What a warm load costs, part by part (median of ``repeat``), and (``cli``) a warm
    ``python -m mvbook features`` run: its own figure and the process's wall time."""
    load_views(ds, cache_dir=cache, progress=False)                       # make it warm
    t_ids = statistics.median(seconds(lambda: clip_ids(ds, cache))[0] for _ in range(repeat))
    print(f"\nwarm cache, {len(ds)} clips ({cache}):")
    print(f"  content ids (stat each file, index hit): {t_ids:.3f} s")
    for v in ("mel", "gam", "cqt", "raw"):
        X, m = cachefile.read_manifest(cache_path(ds, v, cache), view_shape(ds, v)[1:])
        t = statistics.median(seconds(lambda: cachefile.bad_rows(X, m["rows"]))[0] for _ in range(repeat))
        print(f"  {v:4} rows: checksums + finite check of {X.nbytes / 2 ** 20:4.0f} MiB: {t:.3f} s")
    t_all = statistics.median(seconds(lambda: load_views(ds, cache_dir=cache, progress=False))[0]
                              for _ in range(repeat))
    print(f"  load_views, all four views: {t_all:.3f} s")
    if not cli:
        return
    cmd = [sys.executable, "-m", "mvbook", "features", "--dataset", ds.name, "--data-root", str(ds.root),
           "--cache-dir", str(cache)]
    for _ in range(repeat):
        t, out = seconds(lambda: subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True).stdout)
        figure = re.search(r"clips in ([0-9.]+) s", out)[1]
        print(f"  {' '.join(cmd[1:])}: '{figure} s' printed, process {t:.1f} s wall (imports included)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=8, help="clips for the reference comparison")
    parser.add_argument("--data-root", default=os.environ.get("MVBOOK_DATA") or REPO.parent / "shared" / "data")
    parser.add_argument("--warm-only", action="store_true", help="only the cost of a warm run's checks")
    parser.add_argument("--cache-dir", default=None, help="for --warm-only (default: a new temporary folder)")
    parser.add_argument("--quick", action="store_true", help="that it runs, offline, in seconds: 2 clips of the "
                        "synthetic task compared, its first 8 cached and checked warm once (no command line run)")
    args = parser.parse_args()

    ds = load_dataset("synthetic" if args.quick else "esc10", args.data_root)
    if args.quick:
        args.n = 2
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"load average {os.getloadavg()[0]:.2f}")
    if args.warm_only:
        with tempfile.TemporaryDirectory() as tmp:
            warm_checks(ds, Path(args.cache_dir or tmp))
        return
    waves = np.stack([ds.load(i) for i in np.linspace(0, len(ds) - 1, args.n).astype(int)])
    print(f"\n{args.n} {ds.name} clips, {ds.n_samples / ds.sr:g} s at {ds.sr} Hz")
    print(f"{'view':5} {'reference s/clip':>17} {'fast s/clip':>12} {'speed-up':>9} "
          f"{'max |Δ log|':>12} {'correlation':>12}")
    for view in ("mel", "gam", "cqt"):
        t_ref, t_fast, err, corr = compare(view, waves, ds.sr)
        print(f"{view:5} {t_ref:17.4f} {t_fast:12.4f} {t_ref / t_fast:8.1f}x {err:12.2e} "
              f"{corr:12.9f}")
    gam_one_thread(waves, ds.sr)

    ds = first_clips(ds, 8) if args.quick else ds
    with tempfile.TemporaryDirectory() as cache:
        t_ext, _ = seconds(lambda: load_views(ds, cache_dir=cache, progress=False))
        t_open, V = seconds(lambda: load_views(ds, cache_dir=cache, progress=False))
        t_read, _ = seconds(lambda: [float(np.asarray(x).sum()) for x in V.values()])
        size = sum(p.stat().st_size for p in Path(cache).iterdir()) / 2 ** 20
        if args.quick:
            warm_checks(ds, Path(cache), repeat=1, cli=False)
    print(f"\nall four views of {len(ds)} {ds.name} clips ({size:.0f} MiB cached):")
    print(f"  extract + cache (fresh cache dir): {t_ext:7.2f} s")
    print(f"  reload from cache: {t_open:.4f} s to open (with its checks), {t_read:.2f} s to read every value")


if __name__ == "__main__":
    main()
