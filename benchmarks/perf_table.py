"""The README's training-performance table, from one run of ``bench_step.py``.

Every figure is a ratio against its reference measured in the same run (eager
against optimised step, the evaluation against the training steps, the loader
against the step), stamped with the date, the commit and the machine::

    python benchmarks/perf_table.py                  # run the benchmark, print the table
    python benchmarks/perf_table.py --write          # … and put it into README.md
    python benchmarks/perf_table.py --from out.json  # the table of an earlier bench_step.py --json
    python benchmarks/perf_table.py --quick          # bench_step.py --quick's table: that both run (tests)

The benchmark runs with one thread (``--threads 1``): CPU seconds of a
one-thread process are what other jobs on shared cores inflate least.
"""
from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- perf-table:start -->", "<!-- perf-table:end -->"
BENCH = ["--threads", "1", "--widths", "1.0,0.25", "--reps", "3", "--presets", "paper,cpu,smoke",
         "--systems", "mel,gam,cqt,raw,multiview"]


def run_benchmark(extra: list[str], quick: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_step.py"),
                        *(["--quick"] if quick else BENCH), *extra,
                        "--json", str(out)], check=True, cwd=REPO)
        return json.loads(out.read_text())


def _commit() -> str:
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout
    dirty = subprocess.run(["git", "diff", "--quiet", "--", "mvbook", "benchmarks"], cwd=REPO).returncode
    return (sha.strip() or "unknown") + (" (modified)" if dirty else "")


def table(f: dict, date: str, commit: str) -> str:
    """Markdown: one row per figure, its reference and the ratio, all from ``f``."""
    m = f["machine"]
    rows = ["| figure (one thread, CPU seconds) | reference | ours | ratio |", "|---|---|---|---|"]
    for name in ("mel", "gam", "cqt", "raw", "multiview"):
        c = f.get(f"cpu_preset_{name}")
        if c:
            bold = "**" if name == "multiview" else ""
            rows.append(f"| `cpu`-preset {name} step | eager {c['eager']['cpu_s']:.3f} s | "
                        f"{c['optimised']['cpu_s']:.3f} s | "
                        f"{bold}{c['eager']['cpu_s'] / c['optimised']['cpu_s']:.2f}×{bold} |")
    k, c = f.get("kept_memory"), f.get("cpu_preset_multiview")
    if k and k.get("ok") and c:
        mv = k["multiview"]
        rows.append(f"| … freed memory kept, as `train` runs (a second process) | eager {c['eager']['cpu_s']:.3f} s "
                    f"(this run's) | {mv['optimised']['cpu_s']:.3f} s | "
                    f"{c['eager']['cpu_s'] / mv['optimised']['cpu_s']:.2f}× |")
        rows.append(f"| … against eager with freed memory kept too | eager {mv['eager']['cpu_s']:.3f} s | "
                    f"{mv['optimised']['cpu_s']:.3f} s | {mv['eager']['cpu_s'] / mv['optimised']['cpu_s']:.2f}× |")
    for w, label in (("1", "paper-scale step (width 1, 64 bands)"), ("0.25", "width-0.25 step (64 bands)")):
        c = f.get(f"width_{w}")
        if c:
            rows.append(f"| {label}, {c['gflop']:.0f} GFLOP | eager {c['eager']['cpu_s']:.2f} s | "
                        f"{c['optimised']['cpu_s']:.2f} s "
                        f"({c['gflop'] * 1e9 / c['optimised']['cpu_s'] / m['peak_fp32_cpu']:.0%}"
                        f" of the fp32 GEMM peak) | {c['eager']['cpu_s'] / c['optimised']['cpu_s']:.2f}× |")
            if "optimised+bf16" in c:
                rows.append(f"| … with `MVBOOK_CPU_BF16=1` (opt-in) | eager {c['eager']['cpu_s']:.2f} s | "
                            f"{c['optimised+bf16']['cpu_s']:.2f} s | "
                            f"{c['eager']['cpu_s'] / c['optimised+bf16']['cpu_s']:.2f}× |")
    e, o, fl = f.get("eval_eager"), f.get("eval_optimised"), f.get("eval_floor")
    if e and o:
        rows.append(f"| one evaluation ({o['dataset']} fold 1, all three sets) | eager {e['cpu_s']:.2f} s | "
                    f"{o['cpu_s']:.2f} s | {e['cpu_s'] / o['cpu_s']:.2f}× |")
        rows.append(f"| evaluation's share of a `cpu`-preset run ({o['evaluations']} evaluations, "
                    f"{o['steps']} steps) | eager {e['share']:.1%} | {o['share']:.1%} | "
                    f"floor: {fl['share']:.1%} at {fl['rate'] / 1e9:.0f} GFLOP/s, "
                    f"the fastest float32 rate of the run |")
    if e and o and k and k.get("ok") and k.get("eval"):
        rows.append(f"| … freed memory kept, as `train` runs | — | {k['eval']['cpu_s']:.2f} s, "
                    f"share {k['eval']['share']:.1%} | — |")
    loaders = [(k[len("loader_"):], v) for k, v in f.items() if k.startswith("loader_")]
    if loaders:
        rows.append("| data loader's share of a step | — | " + ", ".join(f"{k} {v['share']:.1%}" for k, v in loaders)
                    + " | — |")
    gpu = f" ({m['gpu']})" if m.get("gpu") else ""
    head = (f"Measured {date} at commit `{commit}` on {m['cpu']}, {m['cores']} cores{gpu}, torch {m['torch']}, "
            f"load average {m['load_start']:.1f} → {m.get('load_end', m['load_start']):.1f} "
            f"(`python benchmarks/perf_table.py --write`; full output: `benchmarks/README.md`).")
    return "\n".join([head, "", *rows])


def write(readme: Path, text: str) -> None:
    s = readme.read_text()
    if START not in s or END not in s:
        raise SystemExit(f"{readme}: no {START} … {END} markers to put the table between")
    a, b = s.index(START) + len(START), s.index(END)
    readme.write_text(s[:a] + "\n" + text + "\n" + s[b:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true", help="put the table into README.md")
    ap.add_argument("--from", dest="src", default=None, help="figures of an earlier `bench_step.py --json` run")
    ap.add_argument("--quick", action="store_true", help="run bench_step.py --quick (tiny sizes, seconds), "
                                                          "not the measurement")
    args, extra = ap.parse_known_args()
    if args.quick and args.write:
        raise SystemExit("--quick figures are not a measurement: not written to the README")
    figures = json.loads(Path(args.src).read_text()) if args.src else run_benchmark(extra, args.quick)
    text = table(figures, datetime.date.today().isoformat(), _commit())
    print(text)
    if args.write:
        write(REPO / "README.md", text)


if __name__ == "__main__":
    main()
