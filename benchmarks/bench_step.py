"""Training-step efficiency: one full step (forward + backward + Adam, all four
views) against this machine's matrix-multiply peak, measured in the same run.

Figures, each with the reference it is a ratio of (measured in this run):

* peak: the best of a large float32 (and bfloat16) matrix product, FLOP/s;
* FLOPs of a step: counted with ``torch.utils.flop_counter.FlopCounterMode`` on
  the plain model (convolutions, matrix products incl. the GRU's, forward and
  backward; element-wise work not counted) for a batch of 2, scaled to the batch
  (every layer's count is linear in it);
* seconds per step, eager baseline (the plain modules, for-loop Adam, float32)
  against the optimised step (mvbook's fast paths, fused Adam; and the same
  under bfloat16 autocast), the speed-up, achieved FLOP/s and its fraction of
  the peak; variants run interleaved, best of ``--reps``; also the process's
  CPU seconds per step, which other processes on the same cores do not inflate
  (with one thread it is the step time of an idle machine; with more it also
  counts threads waiting for each other);
* peak memory during a step: resident set size sampled every 2 ms (CPU), or
  ``torch.cuda.max_memory_allocated`` (GPU);
* the data loader's share of a step (segment cutting, standardisation and the
  copy to the device, on a real dataset's cached views) for each preset, with
  that preset's batch size, width and raw bands;
* with ``--systems``: seconds per step of each system at the ``cpu`` preset;
* with ``multiview`` among them, the same multiview step and evaluation in a second
  process that keeps freed memory as ``mvbook.train`` does
  (:func:`mvbook.device.keep_freed_memory`), against this run's eager step.

Not a test; run from the repository root::

    python benchmarks/bench_step.py                          # widths 1.0 and 0.25, CPU
    python benchmarks/bench_step.py --widths 0.25 --systems mel,gam,cqt,raw,multiview
    python benchmarks/bench_step.py --device cuda            # on a GPU machine
    python benchmarks/bench_step.py --quick                  # seconds, that it runs (tests): see QUICK
"""

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mvbook import evaluate
from mvbook.config import PRESETS
from mvbook.device import keep_freed_memory, resolve_device, to_device
from mvbook.nets.crnn import N_RAW_BANDS, MultiViewNet
from mvbook.nets.fastpaths import fast_paths
from mvbook.systems import get_system
from mvbook.views.framing import VIEWS
from mvbook.views.segments import Segmenter, train_batches

REPO = Path(__file__).resolve().parents[1]
FIGURES: dict = {}          # what --json writes: every printed figure, by name


# --- measurement helpers -----------------------------------------------------------------------

def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


class PeakRSS:
    """Peak resident set size (MiB) while the block runs, sampled from /proc."""

    def __init__(self, period=0.002):
        self.period, self.peak, self._stop = period, 0.0, threading.Event()

    @staticmethod
    def now() -> float:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
        except OSError:
            import resource
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            time.sleep(self.period)

    def __enter__(self):
        self.peak = self.now()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.now())


def matmul_peak(dev, dtype, n=None, reps=5) -> tuple[float, float]:
    """Best FLOP/s of an n×n by n×n product, per wall second and per CPU second."""
    n = n or (8192 if dev.type == "cuda" else 2048)
    a = torch.randn(n, n, device=dev).to(dtype)
    b = torch.randn(n, n, device=dev).to(dtype)
    a @ b
    best, best_cpu = float("inf"), float("inf")
    for _ in range(reps):
        sync(dev)
        t, c = time.perf_counter(), time.process_time()
        a @ b
        sync(dev)
        best, best_cpu = min(best, time.perf_counter() - t), min(best_cpu, time.process_time() - c)
    return 2 * n ** 3 / best, 2 * n ** 3 / best_cpu


def inputs(B, sr, views, dev, seed=0):
    g = torch.Generator().manual_seed(seed)
    n_raw = 66650 if sr >= 44100 else 33330
    shapes = {"mel": (B, 75, 64), "gam": (B, 75, 64), "cqt": (B, 65, 64), "raw": (B, n_raw)}
    return {v: torch.randn(shapes[v], generator=g).to(dev) for v in views}


def step_flops(width, views, raw_bands, B, sr=44100) -> int:
    """FLOPs of forward + backward of the plain model, counted on a batch of 2, × B/2."""
    from torch.utils.flop_counter import FlopCounterMode
    torch.manual_seed(0)
    net = MultiViewNet(50, sr=sr, width=width, views=views, raw_bands=raw_bands).train()
    x = inputs(2, sr, views, torch.device("cpu"))
    y = torch.arange(2)
    counter = FlopCounterMode(display=False)
    with fast_paths(False), counter:
        out = net(x)
        sum(F.cross_entropy(o, y) for o in out.values()).backward()
    return counter.get_total_flops() * B // 2


def variants(dev, bf16: bool):
    """name → (fast paths?, fused Adam?, autocast dtype)."""
    v = {"eager": (False, False, None), "optimised": (True, True, None)}
    if dev.type == "cuda":
        v["optimised"] = (True, True, torch.bfloat16)          # the fast paths are CPU-only
    elif bf16:
        v["optimised+bf16"] = (True, True, torch.bfloat16)
    return v


def time_steps(dev, width, views, raw_bands, B, reps, bf16, sr=44100, warmup=1, network=MultiViewNet):
    """Interleaved timing of the step variants on one model (``network``: the class,
    the multi-view network or a subclass); per variant the list of seconds and the
    peak memory (MiB)."""
    torch.manual_seed(0)
    model = network(50, sr=sr, width=width, views=views, raw_bands=raw_bands).to(dev).train()
    x = inputs(B, sr, views, dev)
    y = torch.randint(0, 50, (B,), device=dev)
    V = variants(dev, bf16)
    opts = {False: torch.optim.Adam(model.parameters(), lr=1e-5),
            True: torch.optim.Adam(model.parameters(), lr=1e-5, fused=True)}

    def step(fast, fused, amp):
        with fast_paths(fast):
            with torch.autocast(dev.type, dtype=amp) if amp is not None else nullcontext():
                out = model(x)
            loss = sum(F.cross_entropy(o.float(), y) for o in out.values())
            opts[fused].zero_grad(set_to_none=True)
            loss.backward()
            opts[fused].step()

    times = {k: [] for k in V}
    cpu = {k: [] for k in V}
    mem = {k: 0.0 for k in V}
    for k, cfg in V.items():
        for _ in range(warmup):
            step(*cfg)
    for _ in range(reps):
        for k, cfg in V.items():
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats(dev)
            sync(dev)
            with PeakRSS() if dev.type == "cpu" else nullcontext() as rss:
                t, c = time.perf_counter(), time.process_time()
                step(*cfg)
                sync(dev)
                times[k].append(time.perf_counter() - t)
                cpu[k].append(time.process_time() - c)
            m = torch.cuda.max_memory_allocated(dev) / 2 ** 20 if dev.type == "cuda" else rss.peak
            mem[k] = max(mem[k], m)
    return times, cpu, mem


def loader_seconds(ds, feats, transforms, B, dev, n=20) -> float:
    """Mean seconds to cut, standardise and move one training batch."""
    split = ds.split(1, 0)
    seg = Segmenter(feats, ds.sr, ds.clip_seconds, transforms)
    batches = train_batches(split.train, B, seg.t_max, np.random.default_rng(0))
    for _ in range(2):
        clips, t0 = next(batches)
        seg.batch(clips, t0)
    sync(dev)
    t = time.perf_counter()
    for _ in range(n):
        clips, t0 = next(batches)
        x = {v: to_device(a, dev) for v, a in seg.batch(clips, t0).items()}
    sync(dev)
    del x
    return (time.perf_counter() - t) / n


def load_features(name, root, cache_dir):
    from mvbook.data import load_dataset
    from mvbook.views.cache import load_views
    from mvbook.views.features import Standardizer
    ds = load_dataset(name, root)
    feats = load_views(ds, cache_dir=cache_dir, progress=False)
    split = ds.split(1, 0)
    transforms = {v: Standardizer.fit(feats[v], split.train) for v in feats if v != "raw"}
    return ds, feats, transforms


def eval_seconds(model, seg, sets, dev, fast: bool, reps: int) -> tuple[float, float]:
    """Best (wall, CPU) seconds of one evaluation: ``evaluate.run`` on every set."""
    best = (float("inf"), float("inf"))
    for _ in range(reps + 1):                                    # the first is a warm-up
        sync(dev)
        t, c = time.perf_counter(), time.process_time()
        with fast_paths(fast):
            for es in sets.values():
                evaluate.run(model, seg, es, dev)
        sync(dev)
        best = min(best, (time.perf_counter() - t, time.process_time() - c))
    return best


def eval_flops(model, seg, sets) -> int:
    """FLOPs of one evaluation (forward of every segment of every set), counted on 2 segments."""
    from torch.utils.flop_counter import FlopCounterMode
    es = next(iter(sets.values()))
    clips, t0 = es.segments(seg)
    x = {v: torch.as_tensor(a) for v, a in seg.batch(clips[:2], t0[:2]).items()}
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), fast_paths(False), counter:
        model.eval()(x)
    return counter.get_total_flops() * sum(len(e.clips) for e in sets.values()) * len(seg.test_starts()) // 2


def eval_share(ds, feats, transforms, dev, step_cpu: dict, reps: int, best_rate: float) -> None:
    """Print the evaluation's share of a ``cpu``-preset multiview run on ``ds`` fold 1:
    evaluations × seconds per evaluation against steps × seconds per step; and the
    share an evaluation would have at ``best_rate`` FLOP/s (the fastest float32 work
    measured in this run; the evaluation's own rate counts too): its floor."""
    p = PRESETS["cpu"]
    split = ds.split(1, 0)
    sets = evaluate.eval_sets(split, ds.labels, 0, p.eval_clips)
    seg = Segmenter(feats, ds.sr, ds.clip_seconds, transforms)
    torch.manual_seed(0)
    model = MultiViewNet(len(ds.classes), sr=ds.sr, width=p.width, raw_bands=p.raw_bands).to(dev)
    steps = p.epochs_for(ds.name) * math.ceil(len(split.train) / p.batch_size)
    n_eval = 1 + math.ceil(steps / p.eval_every)
    sizes = " + ".join(f"{len(es.clips)} {k}" for k, es in sets.items())
    print(f"\nevaluation share of a cpu-preset multiview run ({ds.name} fold 1: {steps} steps, {n_eval} evaluations "
          f"of {sizes} files x {len(seg.test_starts())} segments):")
    print(f"  {'variant':10} {'eval s':>8} {'eval CPU s':>11} {'step CPU s':>11} {'share (CPU s)':>14}")
    flops = eval_flops(model, seg, sets)
    for name, fast in (("eager", False), ("optimised", True)):
        wall, cpu = eval_seconds(model, seg, sets, dev, fast, reps)
        best_rate = max(best_rate, flops / (cpu if dev.type == "cpu" else wall))
        train = steps * step_cpu[name]
        share = n_eval * cpu / (train + n_eval * cpu)
        print(f"  {name:10} {wall:8.3f} {cpu:11.3f} {step_cpu[name]:11.3f} {share:13.1%}")
        FIGURES[f"eval_{name}"] = {"wall_s": wall, "cpu_s": cpu, "share": n_eval * cpu / (train + n_eval * cpu),
                                   "evaluations": n_eval, "steps": steps, "dataset": ds.name}
    floor = flops / best_rate
    train = steps * step_cpu["optimised"]
    FIGURES["eval_floor"] = {"gflop": flops / 1e9, "cpu_s": floor, "rate": best_rate,
                             "share": n_eval * floor / (train + n_eval * floor)}
    print(f"  one evaluation: {flops / 1e9:.1f} GFLOP (FlopCounterMode); at the fastest float32 rate of this run "
          f"({best_rate / 1e9:.1f} GFLOP/s) {floor:.3f} s, a share of {n_eval * floor / (train + n_eval * floor):.1%} "
          f"(the floor)")


def features(args):
    """(dataset, views, transforms) of ``--dataset``, or of the synthetic task where it is unavailable."""
    try:
        return load_features(args.dataset, args.data_root, args.cache_dir)
    except Exception as e:      # no real data here: the synthetic task has the same views
        print(f"\n({args.dataset} unavailable: {e}; measured on the synthetic task)")
        return load_features("synthetic", None, args.cache_dir)


def kept_memory_run(args, eager_cpu: float) -> None:
    """The multiview step and the evaluation again, in a process that keeps freed memory
    (``--kept-memory``, as ``train`` runs); printed against this run's eager step."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "kept.json"
        cmd = [sys.executable, __file__, "--kept-memory", "--widths", "", "--presets", "", "--systems", "multiview",
               "--reps", str(args.reps), "--no-bf16", "--dataset", args.dataset, "--data-root", str(args.data_root),
               "--json", str(out)] + (["--threads", str(args.threads)] if args.threads else []) + (
               ["--cache-dir", args.cache_dir] if args.cache_dir else [])
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        kept = json.loads(out.read_text())
    mv, ev = kept["cpu_preset_multiview"], kept.get("eval_optimised")
    FIGURES["kept_memory"] = {"ok": kept["machine"].get("kept_memory"), "multiview": mv, "eval": ev}
    if not kept["machine"].get("kept_memory"):
        print("\n(freed memory kept: not available here, glibc only)")
        return
    print("\nfreed memory kept (mvbook.device.keep_freed_memory, as train runs; a second process):")
    print(f"  multiview step CPU s: eager {mv['eager']['cpu_s']:.3f}, optimised {mv['optimised']['cpu_s']:.3f}: "
          f"x{eager_cpu / mv['optimised']['cpu_s']:.2f} this run's eager ({eager_cpu:.3f}), "
          f"x{mv['eager']['cpu_s'] / mv['optimised']['cpu_s']:.2f} eager with the same setting")
    if ev:
        print(f"  evaluation CPU s {ev['cpu_s']:.3f}, share of a cpu-preset run {ev['share']:.1%}")


# what --quick sets (options given after it win): the smoke preset's multiview step on the synthetic task
QUICK = ["--threads", "1", "--widths", "", "--reps", "1", "--presets", "smoke", "--systems", "multiview",
         "--dataset", "synthetic", "--no-bf16"]


# --- report ------------------------------------------------------------------------------------

def fmt_s(ts):
    return f"{min(ts):7.3f} s (median {statistics.median(ts):.3f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--widths", default="1.0,0.25", help="network widths (1.0 = the paper)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3, help="timed steps per variant (best is reported)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--no-bf16", action="store_true", help="skip the bfloat16-autocast variant on CPU")
    ap.add_argument("--presets", default="paper,cpu,smoke", help="loader share for these presets ('' to skip)")
    ap.add_argument("--dataset", default="esc10", help="real dataset for the loader (synthetic if unavailable)")
    ap.add_argument("--data-root", default=os.environ.get("MVBOOK_DATA") or REPO.parent / "shared" / "data")
    ap.add_argument("--cache-dir", default=None, help="feature cache (default: $MVBOOK_CACHE or ~/.cache/mvbook)")
    ap.add_argument("--systems", default="", help="also time these systems at the cpu preset, e.g. "
                                                  "mel,gam,cqt,raw,multiview")
    ap.add_argument("--no-eval-share", dest="eval_share", action="store_false",
                    help="skip the evaluation's share of a cpu-preset run (measured with multiview in --systems)")
    ap.add_argument("--kept-memory", action="store_true",
                    help="keep freed memory in this process, as train does (without it, a second process "
                         "measures the multiview step and evaluation that way)")
    ap.add_argument("--json", default=None, help="also write every figure to this JSON file "
                                                 "(benchmarks/perf_table.py turns it into the README's table)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, that the script runs: " + " ".join(QUICK))
    argv = sys.argv[1:]
    args = ap.parse_args(QUICK + argv if "--quick" in argv else argv)

    dev = resolve_device(args.device)
    kept = keep_freed_memory() if args.kept_memory else False
    if args.threads:
        torch.set_num_threads(args.threads)
    bf16 = dev.type == "cpu" and not args.no_bf16
    B = args.batch
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"{cpu}, {os.cpu_count()} CPU cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"device {dev}{' (' + torch.cuda.get_device_name(dev) + ')' if dev.type == 'cuda' else ''}, "
          f"load average {os.getloadavg()[0]:.2f}")

    peak, peak_cpu = matmul_peak(dev, torch.float32)
    # the bfloat16 peak is the reference of the bfloat16 variants only (it takes minutes on a CPU without bf16 units)
    peak_bf = matmul_peak(dev, torch.bfloat16)[0] if bf16 or dev.type == "cuda" else None
    FIGURES["machine"] = {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__,
                          "threads": torch.get_num_threads(), "device": str(dev),
                          "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
                          "load_start": os.getloadavg()[0], "peak_fp32": peak, "peak_fp32_cpu": peak_cpu,
                          "peak_bf16": peak_bf, "kept_memory": kept}
    print(f"\nmatmul peak (this run): float32 {peak / 1e9:8.1f} GFLOP/s ({peak_cpu / 1e9:.1f} per CPU second), "
          + (f"bfloat16 {peak_bf / 1e9:8.1f} GFLOP/s (x{peak_bf / peak:.2f})" if peak_bf else "bfloat16 not measured"))

    step_time = {}
    best_rate = peak_cpu if dev.type == "cpu" else peak           # fastest float32 FLOP/s seen in this run
    for w in (float(s) for s in args.widths.split(",") if s):
        bands = N_RAW_BANDS
        flops = step_flops(w, VIEWS, bands, B)
        times, cpu_times, mem = time_steps(dev, w, VIEWS, bands, B, args.reps, bf16)
        step_time[(w, bands, B)] = min(times["optimised"])
        best_rate = max(best_rate, flops / min(cpu_times["optimised"] if dev.type == "cpu" else times["optimised"]))
        FIGURES[f"width_{w:g}"] = {"gflop": flops / 1e9, "bands": bands, "batch": B,
                                   **{k: {"s": min(times[k]), "cpu_s": min(cpu_times[k]), "peak_mib": mem[k]}
                                      for k in times}}
        base = min(times["eager"])
        print(f"\nwidth {w:g}, batch {B}, all four views, {bands} raw bands: {flops / 1e9:.1f} GFLOP per step "
              f"(forward + backward, FlopCounterMode)")
        cbase = min(cpu_times["eager"])
        print(f"  {'variant':15} {'seconds / step':>30} {'speed-up':>9} {'GFLOP/s':>8} {'of fp32 peak':>13} "
              f"{'peak mem MiB':>13} {'CPU s / step':>13} {'speed-up':>9} {'CPU GFLOP/s':>12} {'of peak':>8}")
        for k, ts in times.items():
            rate = flops / min(ts)
            ref = peak_bf if "bf16" in k or (dev.type == "cuda" and k == "optimised") else peak
            tag = "bf16 peak" if ref is peak_bf else ""
            print(f"  {k:15} {fmt_s(ts):>30} {base / min(ts):8.2f}x {rate / 1e9:8.1f} {rate / peak:12.1%} "
                  f"{mem[k]:13.0f} {min(cpu_times[k]):13.3f} {cbase / min(cpu_times[k]):8.2f}x "
                  f"{flops / min(cpu_times[k]) / 1e9:12.1f} {flops / min(cpu_times[k]) / peak_cpu:8.1%}"
                  + (f"   ({rate / ref:.1%} of {tag})" if tag else ""))

    if args.presets:
        ds, feats, transforms = features(args)
        print(f"\nloader share of a step ({ds.name}, {ds.sr} Hz; optimised step, float32):")
        print(f"  {'preset':7} {'batch':>5} {'width':>6} {'bands':>5} {'loader s':>9} {'step s':>8} {'share':>7}")
        for name in args.presets.split(","):
            p = PRESETS[name]
            bands = getattr(p, "raw_bands", N_RAW_BANDS)
            key = (p.width, bands, p.batch_size)
            if key not in step_time:
                ts, _, _ = time_steps(dev, p.width, VIEWS, bands, p.batch_size, args.reps, False, sr=ds.sr)
                step_time[key] = min(ts["optimised"])
            t_load = loader_seconds(ds, feats, transforms, p.batch_size, dev)
            st = step_time[key]
            FIGURES[f"loader_{name}"] = {"loader_s": t_load, "step_s": st, "share": t_load / (t_load + st)}
            print(f"  {name:7} {p.batch_size:5d} {p.width:6.3g} {bands:5d} {t_load:9.4f} {st:8.3f} "
                  f"{t_load / (t_load + st):6.1%}")

    mv_cpu = None
    if args.systems:
        p = PRESETS["cpu"]
        bands = getattr(p, "raw_bands", N_RAW_BANDS)
        print(f"\nseconds per step at the cpu preset (width {p.width:g}, batch {p.batch_size}, {bands} raw bands):")
        print(f"  {'system':10} " + " ".join(f"{k:>16}" for k in variants(dev, bf16)) + "   speed-up")
        for system in args.systems.split(","):
            spec = get_system(system)
            ts, cs, _ = time_steps(dev, p.width, spec.views, bands, p.batch_size, args.reps, bf16,
                                   network=getattr(spec, "network_class", MultiViewNet))
            best, cbest = {k: min(v) for k, v in ts.items()}, {k: min(v) for k, v in cs.items()}
            FIGURES[f"cpu_preset_{system}"] = {k: {"s": best[k], "cpu_s": cbest[k]} for k in best}
            if system == "multiview":
                mv_cpu = cbest
            print(f"  {system:10} " + " ".join(f"{v:16.3f}" for v in best.values()) + "   " +
                  " ".join(f"x{best['eager'] / v:.2f}" for k, v in best.items() if k != "eager") +
                  "   CPU s: " + " ".join(f"{v:.3f}" for v in cbest.values()))
    if args.eval_share:
        if mv_cpu is None:
            print("\n(evaluation share: needs multiview in --systems for its step time)")
        else:
            eval_share(*features(args), dev, mv_cpu, args.reps, best_rate)
    if mv_cpu is not None and dev.type == "cpu" and not args.kept_memory:
        kept_memory_run(args, mv_cpu["eager"])
    if args.json:
        FIGURES["machine"]["load_end"] = os.getloadavg()[0]
        Path(args.json).write_text(json.dumps(FIGURES, indent=1))
    print(f"\nload average at the end {os.getloadavg()[0]:.2f} (other processes share these cores when > 0)")


if __name__ == "__main__":
    main()
