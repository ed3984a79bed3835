"""The grid on one machine: the same smoke cells run serially and on a local
Dask cluster (``--engine local --workers 2``), one math-library thread per cell,
measured in the same run and printed as a ratio; plus each engine's start-up
time (the local cluster with its workers; connecting to a running scheduler, as
``--engine dask`` does; serial has none).

Features are extracted once before either grid is timed (both then find them in
the cache), so the figures are the cells' own. Every cell runs the real training
notebook through papermill. Not a test; run from the repository root::

    python benchmarks/bench_grid.py                      # 4 cells: cqt, folds 1-4, smoke preset, synthetic
    python benchmarks/bench_grid.py --systems cqt mel --folds 1 2 --workers 2
    python benchmarks/bench_grid.py --quick              # 2 cells of one epoch: that it runs (tests)
"""
import argparse
import os
import tempfile
import time
from pathlib import Path

THREADS = {v: "1" for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")}
os.environ.update(THREADS)          # before numpy/torch load: the serial cells' kernels inherit one thread too

from distributed import Client  # noqa: E402

from mvbook.data import load_dataset  # noqa: E402
from mvbook.engines import open_engine  # noqa: E402
from mvbook.grid import run_grid  # noqa: E402
from mvbook.systems import get_system  # noqa: E402
from mvbook.views.cache import load_views  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="synthetic")
    ap.add_argument("--preset", default="smoke")
    ap.add_argument("--systems", nargs="+", default=["cqt"])
    ap.add_argument("--folds", nargs="+", type=int, default=[1, 2, 3, 4])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--quick", action="store_true", help="folds 1 2, one epoch: seconds, not a measurement")
    args = ap.parse_args()
    if args.quick:
        args.folds, args.epochs = [1, 2], 1
    tmp = Path(tempfile.mkdtemp(prefix="bench-grid-"))
    cache = tmp / "cache"
    t = time.time()
    views = sorted({v for s in args.systems for v in get_system(s).views})
    load_views(load_dataset(args.dataset, args.data_root), tuple(views), cache_dir=cache, progress=False)
    print(f"features ({', '.join(views)}) extracted once in {time.time() - t:.1f} s, outside the timings")
    load = os.getloadavg()
    print(f"load average at the start: {load[0]:.1f} ({os.cpu_count()} cores)")

    startup = {"serial": 0.0}
    t = time.time()
    with open_engine("local", workers=args.workers, gpus_per_cell=0, log=lambda m: None,
                     dashboard_address="127.0.0.1:0") as (client, _, _):
        startup["local"] = time.time() - t
        t = time.time()
        with Client(client.scheduler.address):
            startup["dask (connect)"] = time.time() - t
    kw = dict(dataset=args.dataset, systems=args.systems, folds=args.folds, preset=args.preset,
              cache_dir=cache, data_root=args.data_root, epochs=args.epochs, log=lambda m: None)
    wall = {}
    for engine, extra in (("serial", {}), ("local", {"workers": args.workers, "gpus_per_cell": 0})):
        t = time.time()
        report = run_grid(out=tmp / engine, engine=engine, **kw, **extra)
        wall[engine] = time.time() - t
        assert not report.failed, report.summary()
        print(f"{engine:>6}: {len(report.done)} cells in {wall[engine]:.1f} s")
    n = len(args.systems) * len(args.folds)
    print(f"\n{n} cells ({args.preset}, {args.dataset}, {'/'.join(args.systems)}, folds "
          f"{' '.join(map(str, args.folds))}), one thread per cell:")
    print(f"serial {wall['serial']:.1f} s, local --workers {args.workers} {wall['local']:.1f} s (start-up included): "
          f"speed-up {wall['serial'] / wall['local']:.2f}x")
    print("start-up: " + ", ".join(f"{k} {v:.1f} s" for k, v in startup.items()))
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.1f}")


if __name__ == "__main__":
    main()
