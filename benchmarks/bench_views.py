"""Speed and accuracy of the fast view paths against the reference (paper §2.1).

For each 2D view: seconds per clip of the reference (librosa / gtgram, one clip
at a time) and of the fast path (``extract_batch`` over the N clips), the
speed ratio, and the max abs error and correlation of the log outputs. Then the
time to extract and cache all four views of ESC-10 (fresh cache directory) and
to read them back from the cache. Not a test; run from the repository root::

    python benchmarks/bench_views.py --n 8
"""

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mvbook import features as F
from mvbook.cache import load_views
from mvbook.data import load_dataset

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=8, help="clips for the reference comparison")
    parser.add_argument("--data-root", default=os.environ.get("MVBOOK_DATA") or REPO.parent / "shared" / "data")
    args = parser.parse_args()

    ds = load_dataset("esc10", args.data_root)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"load average {os.getloadavg()[0]:.2f}")
    waves = np.stack([ds.load(i) for i in np.linspace(0, len(ds) - 1, args.n).astype(int)])
    print(f"\n{args.n} ESC-10 clips, {ds.n_samples / ds.sr:g} s at {ds.sr} Hz")
    print(f"{'view':5} {'reference s/clip':>17} {'fast s/clip':>12} {'speed-up':>9} "
          f"{'max |Δ log|':>12} {'correlation':>12}")
    for view in ("mel", "gam", "cqt"):
        t_ref, t_fast, err, corr = compare(view, waves, ds.sr)
        print(f"{view:5} {t_ref:17.4f} {t_fast:12.4f} {t_ref / t_fast:8.1f}x {err:12.2e} "
              f"{corr:12.9f}")
    gam_one_thread(waves, ds.sr)

    with tempfile.TemporaryDirectory() as cache:
        t_ext, _ = seconds(lambda: load_views(ds, cache_dir=cache, progress=False))
        t_open, V = seconds(lambda: load_views(ds, cache_dir=cache, progress=False))
        t_read, _ = seconds(lambda: [float(np.asarray(x).sum()) for x in V.values()])
        size = sum(p.stat().st_size for p in Path(cache).iterdir()) / 2 ** 20
    print(f"\nall four views of {len(ds)} ESC-10 clips ({size:.0f} MiB cached):")
    print(f"  extract + cache (fresh cache dir): {t_ext:7.2f} s")
    print(f"  reload from cache: {t_open:.4f} s to open, {t_read:.2f} s to read every value")


if __name__ == "__main__":
    main()
