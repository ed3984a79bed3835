"""Command line: ``python -m mvbook {datasets,features,train,grid,table} …``.

Run ``python -m mvbook <command> --help`` for each command's options.
"""
from __future__ import annotations

import argparse
import sys
import time
import traceback

from .config import ALL_SYSTEMS, PRESETS, TRAINED_SYSTEMS
from .data import DATASETS, DatasetError, describe, load_dataset


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", default=None, help="folder holding the datasets (default: $MVBOOK_DATA)")
    p.add_argument("--cache-dir", default=None, help="feature cache (default: $MVBOOK_CACHE or ~/.cache/mvbook)")


def _train_args(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--dataset", default="synthetic", choices=sorted(DATASETS))
    p.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 …")
    p.add_argument("--out", default="runs", help="records go to <out>/<dataset>/<preset>/<system>/fold<k>-seed<s>.json")
    p.add_argument("--checkpoints", default=None, help="checkpoint folder (default <out>/checkpoints)")
    p.add_argument("--epochs", type=int, default=None, help="override the preset's epochs (recorded as a reduction)")
    p.add_argument("--no-progress", action="store_true")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m mvbook", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("datasets", help="list the datasets and check what the data root holds")
    _common(p)

    p = sub.add_parser("features", help="extract and cache the four views of a dataset")
    _common(p)
    p.add_argument("--dataset", default="synthetic", choices=sorted(DATASETS))
    p.add_argument("--views", nargs="+", default=["mel", "gam", "cqt", "raw"])

    p = sub.add_parser("train", help="train one system on one fold and write its results record")
    _train_args(p)
    p.add_argument("--system", default="multiview", choices=TRAINED_SYSTEMS)
    p.add_argument("--fold", type=int, default=1)
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint and start over")

    p = sub.add_parser("grid", help="train systems × folds, skipping runs whose record exists")
    _train_args(p)
    p.add_argument("--systems", nargs="+", default=[s for s in ("mel", "gam", "cqt", "raw", "concat", "multiview")],
                   choices=TRAINED_SYSTEMS)
    p.add_argument("--folds", nargs="+", type=int, default=None, help="default: every fold of the dataset")
    p.add_argument("--seeds", nargs="+", type=int, default=None, help="default: --seed")

    p = sub.add_parser("table", help="print Table 3 from results records")
    p.add_argument("--results", default="results", help="folder of records")
    p.add_argument("--dataset", default="esc10")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--folds", action="store_true", help="also print the accuracy of every fold")
    return ap


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (DatasetError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def cmd_datasets(args) -> int:
    print(describe(None, args.data_root))
    return 0


def cmd_features(args) -> int:
    from .features import load_views
    ds = load_dataset(args.dataset, args.data_root)
    t = time.time()
    views = load_views(ds, tuple(args.views), cache_dir=args.cache_dir)
    for v, X in views.items():
        print(f"{v}: {X.shape} {X.dtype}")
    print(f"{len(ds)} clips in {time.time() - t:.1f} s")
    return 0


def _train_kwargs(args) -> dict:
    kw = dict(dataset=args.dataset, preset=args.preset, device=args.device, root=args.data_root,
              out=args.out, checkpoints=args.checkpoints, cache_dir=args.cache_dir, progress=not args.no_progress)
    if args.epochs is not None:
        kw["epochs"] = args.epochs
    return kw


def cmd_train(args) -> int:
    from .train import train
    rec = train(system=args.system, fold=args.fold, seed=args.seed, fresh=args.fresh, **_train_kwargs(args))
    acc = "  ".join(f"{k} {100 * v:.2f}" for k, v in rec["accuracy"].items())
    print(f"{rec['system']} fold {rec['fold']}: test accuracy (%) {acc}")
    print(f"record: {rec['path']}")
    return 0


def cmd_grid(args) -> int:
    from .results import record_path
    from .train import train
    from pathlib import Path
    ds = load_dataset(args.dataset, args.data_root)
    folds = args.folds or list(range(1, ds.n_folds + 1))
    seeds = args.seeds or [args.seed]
    kw = _train_kwargs(args)
    failed, done = [], 0
    for seed in seeds:
        for fold in folds:
            for system in args.systems:
                path = Path(args.out) / record_path(ds.name, args.preset, system, fold, seed)
                if path.exists():
                    print(f"skip {system} fold {fold} seed {seed}: {path} exists")
                    continue
                try:
                    train(system=system, fold=fold, seed=seed, **kw)
                    done += 1
                except KeyboardInterrupt:
                    raise
                except Exception as e:  # keep going; report at the end
                    traceback.print_exc()
                    failed.append(f"{system} fold {fold} seed {seed}: {type(e).__name__}: {e}")
    print(f"grid: {done} runs trained, {len(failed)} failed")
    for f in failed:
        print(f"  FAILED {f}")
    return 1 if failed else 0


def cmd_table(args) -> int:
    from .results import fold_accuracies, format_table3, load_records
    recs = load_records(args.results, args.dataset, args.preset)
    print(format_table3(recs, args.dataset, args.preset))
    if args.folds and recs:
        print()
        print(fold_accuracies(recs).round(2).to_string())
    return 0


COMMANDS = {"datasets": cmd_datasets, "features": cmd_features, "train": cmd_train, "grid": cmd_grid,
            "table": cmd_table}

if __name__ == "__main__":
    sys.exit(main())
