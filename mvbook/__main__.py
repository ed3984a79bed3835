"""Command line: ``python -m mvbook {datasets,fetch,features,train,grid,table,verify} …``.

Run ``python -m mvbook <command> --help`` for each command's options.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

from . import __version__
from .config import PRESETS
from .data import DATASETS, check_datasets, describe, load_dataset
from .data.download import ESC50_SHA256, ESC50_URL, fetch_esc50
from .errors import ConfigError, MvbookError
from .seeds import DEFAULT_SCHEME, SEED_SCHEMES
from .systems import PAPER_SYSTEMS, TRAINED_SYSTEMS

__all__ = ["RESULTS", "RUNS", "COMMANDS", "parser", "main"]

RESULTS = "results"   # the committed records: where table reads them
RUNS = "runs"         # where train and grid write unless --out says otherwise (git-ignored)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown after each option (not where they are None or off: the
    help says what that means); description and examples kept as written."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _sub(sub, name: str, help: str, examples: str, description: str | None = None) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=description or help, formatter_class=_HelpFormatter,
                          epilog="examples:\n" + "\n".join(f"  {line}" for line in examples.strip().splitlines()))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", default=None, help="folder holding the datasets (default: $MVBOOK_DATA)")
    p.add_argument("--cache-dir", default=None, help="feature cache (default: $MVBOOK_CACHE, else ~/.cache/mvbook)")


def _train_args(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--dataset", default="synthetic", choices=sorted(DATASETS), help="synthetic: offline, no data")
    p.add_argument("--preset", default="cpu", choices=sorted(PRESETS),
                   help="paper: §3.1.3 exactly; cpu: reduced for 2 CPU cores; long: the cpu network trained 5× "
                        "as long; smoke: for tests, one to three minutes")
    p.add_argument("--seed", type=int, default=0, help="initialisation and batch order")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 …")
    p.add_argument("--out", default=RUNS, help="records go to <out>/<dataset>/<preset>/<system>/fold<k>-seed<s>.json "
                   "(runs/ is git-ignored; the committed records were written with --out results)")
    p.add_argument("--checkpoints", default=None, help="checkpoint folder (default: <out>/checkpoints)")
    p.add_argument("--epochs", type=int, default=None, help="override the preset's epochs (recorded as a reduction)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars or progress lines")


def _engine_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("engine", "where the cells run (all but serial need `pip install \"mvbook[cluster]\"`)")
    g.add_argument("--engine", default="serial", choices=("serial", "local", "dask", "slurm"),
                   help="serial: one after another here; local: a Dask cluster on this machine "
                        "(127.0.0.1), one worker per GPU or --workers CPU workers; dask: an existing cluster "
                        "(--scheduler-address); slurm: worker jobs through dask-jobqueue (--jobs)")
    g.add_argument("--workers", type=int, default=None,
                   help="local: number of workers (default: one per GPU, else one per core)")
    g.add_argument("--scheduler-address", default=None,
                   help="dask: tcp://host:8786 (or tls://… with Dask's TLS config)")
    g.add_argument("--jobs", type=int, default=None, help="slurm: at most this many worker jobs at once")
    g.add_argument("--gpus-per-cell", type=int, default=None,
                   help="GPUs each cell asks for (Dask resource GPU; default: 1 where workers have GPUs, else 0)")
    g.add_argument("--threads", type=int, default=1, help="math-library threads per cell, whatever the engine")
    g.add_argument("--retries", type=int, default=0, help="Dask engines: reruns of a failed cell")


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m mvbook`` and its commands (``COMMANDS``)."""
    ap = argparse.ArgumentParser(prog="python -m mvbook", description="The command line of mvbook, the executable "
                                 "companion to 'Multi-view Audio and Music Classification' (ICASSP 2021).",
                                 formatter_class=_HelpFormatter,
                                 epilog="examples:\n  python -m mvbook train --dataset synthetic --preset smoke\n"
                                        "  python -m mvbook table --results results --format markdown\n"
                                        "  python -m mvbook <command> --help")
    ap.add_argument("--version", action="version", version=f"mvbook {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    _datasets_parser(sub)
    _fetch_parser(sub)
    p = _sub(sub, "features", "extract and cache the four views of a dataset", """
python -m mvbook features --dataset synthetic
python -m mvbook features --dataset esc10 --data-root DIR --views mel gam cqt raw harm perc""")
    _common(p)
    p.add_argument("--dataset", default="synthetic", choices=sorted(DATASETS), help="the dataset")
    p.add_argument("--views", nargs="+", default=["mel", "gam", "cqt", "raw"],
                   help="mel gam cqt raw (the paper's), harm perc (HPSS, extra)")
    p = _sub(sub, "train", "train one system on one fold and write its results record", """
python -m mvbook train --dataset synthetic --system cqt --preset smoke
python -m mvbook train --dataset esc10 --system multiview --fold 1 --preset cpu --data-root DIR
python -m mvbook train --dataset esc50 --system multiview --preset paper --device cuda --data-root DIR""")
    _train_args(p)
    p.add_argument("--system", default="multiview", choices=TRAINED_SYSTEMS, metavar="SYSTEM",
                   help=f"one of {', '.join(TRAINED_SYSTEMS)}")
    p.add_argument("--fold", type=int, default=1, help="test fold (1-based)")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint and start over")
    p.add_argument("--seed-scheme", default=DEFAULT_SCHEME, choices=list(SEED_SCHEMES), help="per_fold: the "
                   "random streams from (seed, fold); shared: from the seed alone (the records before the schemes)")
    _grid_parser(sub)
    _table_parser(sub)
    _verify_parser(sub)
    return ap


def _datasets_parser(sub) -> None:
    p = _sub(sub, "datasets", "list the datasets and check what the data root holds", """
python -m mvbook datasets --data-root DIR
python -m mvbook datasets --data-root DIR --check     # decode every clip
python -m mvbook datasets --data-root DIR --check esc10""")
    _common(p)
    p.add_argument("--check", nargs="*", default=None, metavar="DATASET",
                   help="decode every clip of each dataset found (or of each DATASET named) and list every bad "
                        "one; exit 2 if any, or if a dataset's clips are missing (a named one: if it is absent)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _fetch_parser(sub) -> None:
    p = _sub(sub, "fetch", "download a dataset to DIR (ESC-50, which holds ESC-10), checksummed", """
python -m mvbook fetch esc50 DIR                  # then: --data-root DIR, or MVBOOK_DATA=DIR
python -m mvbook fetch esc50 DIR --sha256 HEX     # verify the archive against a recorded hash""",
             description=f"Download ESC-50 (commit archive {ESC50_URL}) to DIR/ESC-50, verify it and unpack it.")
    p.add_argument("dataset", choices=("esc50",), help="esc50 (GTZAN and DCASE2016 cannot be fetched: "
                                                       "`python -m mvbook datasets` says where to get them)")
    p.add_argument("root", metavar="DIR", help="data root: the clips go to DIR/ESC-50")
    p.add_argument("--sha256", default=None,
                   help="SHA-256 the archive must have (default: mvbook.data.download.ESC50_SHA256 when recorded; "
                        "else the contents are checked and the hash printed)")
    p.add_argument("--url", default=ESC50_URL, help="where to download the archive from (a mirror of it)")
    p.add_argument("--no-progress", action="store_true", help="no download progress bar")


def _grid_parser(sub) -> None:
    p = _sub(sub, "grid", "run systems × folds through the training notebook (papermill), "
                          "skipping cells whose record exists", """
python -m mvbook grid --systems multiview --folds 1 --dataset synthetic --preset smoke    # one run
python -m mvbook grid --dataset esc10 --preset cpu --data-root DIR                        # Table 3's column
python -m mvbook grid --dataset esc10 --preset cpu --seeds 0 1 2 --engine local --workers 2""")
    _train_args(p)
    p.add_argument("--systems", nargs="+", default=[*PAPER_SYSTEMS, "equal"], choices=TRAINED_SYSTEMS,
                   metavar="SYSTEM", help=f"systems to train, of {', '.join(TRAINED_SYSTEMS)} "
                                          f"(default: {' '.join(PAPER_SYSTEMS)} equal, the trained rows of Table 3)")
    p.add_argument("--folds", nargs="+", type=int, default=None, help="test folds (default: every fold of the dataset)")
    p.add_argument("--seeds", nargs="+", type=int, default=None, help="seeds (default: --seed)")
    p.add_argument("--direct", action="store_true",
                   help="train in this process instead of through the notebook (no executed notebook is kept)")
    p.add_argument("--log-output", action="store_true", help="echo each notebook's output while it runs")
    p.add_argument("--notebook", default=None,
                   help="the training notebook to execute (default: the Training chapter shipped with mvbook)")
    _engine_args(p)


def _table_parser(sub) -> None:
    p = _sub(sub, "table", "print Table 3 from results records", """
python -m mvbook table
python -m mvbook table --dataset esc10 --preset cpu --folds --compare
python -m mvbook table --format latex > table3.tex
python -m mvbook table --decide                          # the analysis plan's verdict on each claim
python -m mvbook table --seed-scheme per_fold --compare  # the seeds drawn per fold alone""")
    p.add_argument("--results", default=RESULTS, help="folder of records: the committed ones, or runs: your own")
    p.add_argument("--dataset", default="esc10", help="dataset of the records")
    p.add_argument("--preset", default="cpu", help="preset of the records")
    p.add_argument("--skip-bad", action="store_true", help="leave out malformed records with a warning")
    p.add_argument("--format", default="text", choices=("text", "markdown", "latex", "csv"),
                   help="text, or a table to paste into a paper or a page")
    p.add_argument("--folds", action="store_true", help="also print the accuracy of every fold")
    p.add_argument("--extended", action="store_true", help="add the rows that are not in the paper (†)")
    p.add_argument("--compare", nargs="?", const="multiview", default=None, metavar="SYSTEM",
                   help="paired tests of SYSTEM (default: multiview) against every other row, over fold means")
    p.add_argument("--unit", default="fold", choices=("fold", "run"),
                   help="what --compare pairs: fold means (default; the folds are the independent units) or, "
                        "on request, (fold, seed) runs as if independent")
    p.add_argument("--seed-scheme", default=None, choices=list(SEED_SCHEMES),
                   help="only the runs of this seed scheme (default: every run): per_fold, the seeds drawn per fold "
                        "(the analysis plan's new seeds); shared, the seeds that are the same start on every fold")
    p.add_argument("--decide", action="store_true",
                   help="also print the analysis plan's verdict on each of its claims (mvbook.plan.decide): the "
                        "fold-level t-test with Holm's adjustment, the smallest difference it finds four times in "
                        "five, and the secondary analyses beside it")


def _verify_parser(sub) -> None:
    p = _sub(sub, "verify", "re-run recorded runs and compare: identical, or where they differ", """
python -m mvbook verify results/esc10/cpu/mel/fold1-seed0.json --data-root DIR
python -m mvbook verify --quick results/esc10/cpu/*/fold1-seed0.json    # up to the first evaluation
python -m mvbook verify --at-commit results/esc10/cpu/mel/fold1-seed0.json   # with the record's own commit""",
             description="Train each record's run again as it is recorded (system, dataset, fold, seeds, preset "
                         "and overrides, threads, device) in a temporary folder and compare its curves, selected "
                         "step, accuracies and test posteriors with the record's. One line per record; exit "
                         "status 0: all identical, 1: one differs, 2: one cannot be verified.")
    p.add_argument("records", nargs="+", metavar="RECORD", help="results records (JSON)")
    _common(p)
    p.add_argument("--at-commit", action="store_true",
                   help="run the record's own commit (provenance.git_commit) in a temporary git worktree of "
                        "the clone around the working folder, with this environment")
    p.add_argument("--quick", action="store_true",
                   help="stop at the first evaluation after step 0 and compare the curves up to it")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def main(argv=None) -> int:
    """Run one command; a problem mvbook diagnosed (:class:`~mvbook.errors.MvbookError`)
    or a file that cannot be read or written prints one ``error:`` line and exits 2.
    Anything else (a bug, a genuine torch error) keeps its traceback."""
    args = parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except BrokenPipeError:                  # `table | head -1`: the reader has what it wanted; leave quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())      # no second error at exit's flush
        return 141                           # as the shell reports a program ended by SIGPIPE
    except (MvbookError, OSError) as e:
        if not isinstance(e, MvbookError) and e.filename is None:     # an OSError that names no file: a bug
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(_INTERRUPTED.get(args.command, "interrupted"), file=sys.stderr)
        return 130


# what Ctrl-C leaves, per command: only train and grid keep a checkpoint to resume from
_INTERRUPTED = {"train": "interrupted; the same command resumes",
                "grid": "interrupted; the same command resumes (cells with a record are skipped, an unfinished "
                        "one resumes from its checkpoint)",
                "features": "interrupted; nothing was cached: the same command extracts the views again",
                "verify": "interrupted; nothing is kept: the same command verifies every record again",
                "datasets": "interrupted; the same command checks every clip again"}


def _cmd_datasets(args) -> int:
    print("\n".join(describe(n, args.data_root) for n in args.check) if args.check else describe(None, args.data_root))
    errors = [] if args.check is None else check_datasets(args.data_root, progress=not args.no_progress,
                                                          names=args.check or None)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    return 2 if errors else 0


def _cmd_fetch(args) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        path = fetch_esc50(args.root, url=args.url, known_hash=args.sha256 or ESC50_SHA256,
                           progress=not args.no_progress)
    for w in caught:
        print(f"note: {w.message}", file=sys.stderr)
    print(f"{args.dataset}: {path} (use --data-root {args.root}, or MVBOOK_DATA={args.root})")
    return 0


def _cmd_features(args) -> int:
    from .views.cache import load_views
    ds = load_dataset(args.dataset, args.data_root)
    t = time.time()
    views = load_views(ds, tuple(args.views), cache_dir=args.cache_dir)
    for v, X in views.items():
        print(f"{v}: {X.shape} {X.dtype}")
    print(f"{len(ds)} clips in {time.time() - t:.1f} s")
    return 0


def _train_kwargs(args) -> dict:
    kw = dict(dataset=args.dataset, preset=args.preset, device=args.device, data_root=args.data_root,
              out=args.out, checkpoints=args.checkpoints, cache_dir=args.cache_dir, progress=not args.no_progress)
    if args.epochs is not None:
        kw["epochs"] = args.epochs
    return kw


def _cmd_train(args) -> int:
    from .train import train
    rec = train(system=args.system, fold=args.fold, seed=args.seed, fresh=args.fresh, seed_scheme=args.seed_scheme,
                **_train_kwargs(args))
    acc = "  ".join(f"{k} {100 * v:.2f}" for k, v in rec["accuracy"].items())
    print(f"{rec['system']} fold {rec['fold']}: test accuracy (%) {acc}")
    print(f"record: {rec['path']}")
    return 0


def _cmd_grid(args) -> int:
    """Every system × fold (× seed) of a dataset through the book's training
    notebook (``book/training.md``) with papermill; each executed notebook is
    kept beside its record as ``<out>/<dataset>/<preset>/<system>/fold<k>-seed<s>.ipynb``.
    Cells whose record exists are skipped; a failed cell does not stop the grid
    and is reported at the end (exit status 1). ``--engine local|dask|slurm``
    runs the cells on Dask workers (:mod:`mvbook.engines`)."""
    from .device import check_device, resolve_device
    from .engines.clusters import check_engine
    from .grid import check_grid, run_grid
    check_engine(args.engine, args.scheduler_address, args.jobs, args.threads, args.workers,   # before any work
                 warn=lambda m: None)                                 # run_grid warns, once
    check_grid(args.preset, args.seeds or [args.seed], args.epochs)
    check_device(args.device)
    if args.engine == "serial":                         # the cells run here: their device must be here
        resolve_device(args.device)
    ds = load_dataset(args.dataset, args.data_root)
    folds = args.folds or list(range(1, ds.n_folds + 1))
    bad = [f for f in folds if not 1 <= f <= ds.n_folds]
    if bad:
        raise ConfigError(f"{ds.name} has folds 1..{ds.n_folds}; got {bad}")
    engine = {"threads": args.threads} if args.engine == "serial" else {
        "workers": args.workers, "scheduler_address": args.scheduler_address, "jobs": args.jobs,
        "gpus_per_cell": args.gpus_per_cell, "threads": args.threads, "retries": args.retries}
    report = run_grid(ds.name, args.systems, folds, args.seeds or [args.seed], preset=args.preset,
                      out=args.out, device=args.device, data_root=args.data_root, cache_dir=args.cache_dir,
                      checkpoints=args.checkpoints, epochs=args.epochs, direct=args.direct,
                      log=lambda m: print(m, flush=True), log_output=args.log_output, engine=args.engine,
                      progress=not args.no_progress, **engine,
                      **({"notebook": args.notebook} if args.notebook else {}))
    return 1 if report.failed else 0


def _cmd_table(args) -> int:
    from . import tables
    from .results import fold_accuracies
    recs = tables.table_records(args.results, args.dataset, args.preset, seed_scheme=args.seed_scheme,
                                skip_bad=args.skip_bad)
    rows = list(fold_accuracies(recs).index)
    if args.compare and args.compare not in rows:
        raise ConfigError(f"--compare {args.compare}: no such row in these records; rows: {', '.join(rows)}")
    if args.format != "text":
        print(tables.export_table(tables.table3_rows(recs, args.dataset, args.extended), args.format))
        return 0
    print(tables.format_table3(recs, args.dataset, args.preset, extended=args.extended))
    for wanted, text in ((args.folds, lambda: tables.run_labels(fold_accuracies(recs)).round(2).to_string()),
                         (args.compare, lambda: tables.format_comparison(recs, args.compare, args.unit)),
                         (args.decide, lambda: tables.format_decisions(recs))):
        if wanted:
            print("\n" + text())
    return 0


def _cmd_verify(args) -> int:
    """Each record re-run and compared (:func:`mvbook.verify.verify`); its notes
    and an ``error:`` line for one that cannot be verified go to stderr, the
    verdicts to stdout. The exit status is the worst record's."""
    from .verify import EXIT, verify
    worst = 0
    for k, path in enumerate(args.records, 1):
        if len(args.records) > 1:
            print(f"[{k}/{len(args.records)}] {path}", file=sys.stderr, flush=True)
        try:
            v = verify(path, data_root=args.data_root, cache_dir=args.cache_dir, at_commit=args.at_commit,
                       quick=args.quick, progress=not args.no_progress)
        except MvbookError as e:
            print(f"error: {path}: {e}", file=sys.stderr, flush=True)
            worst = max(worst, EXIT["error"])
            continue
        print(v.line(), flush=True)
        worst = max(worst, EXIT[v.status])
    return worst


COMMANDS = {"datasets": _cmd_datasets, "fetch": _cmd_fetch, "features": _cmd_features, "train": _cmd_train,
            "grid": _cmd_grid, "table": _cmd_table, "verify": _cmd_verify}

if __name__ == "__main__":
    sys.exit(main())
