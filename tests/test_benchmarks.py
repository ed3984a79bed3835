"""The benchmark scripts run and report what they claim (they are not timed here:
speed figures are ratios measured within one run, never asserted in a test)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import perf_table  # noqa: E402


def _figures():
    step = {"eager": {"s": 2.0, "cpu_s": 2.4}, "optimised": {"s": 1.0, "cpu_s": 1.2}}
    return {"machine": {"cpu": "AMD EPYC", "cores": 2, "torch": "2.14.1", "gpu": None, "load_start": 0.1,
                        "load_end": 0.3, "peak_fp32_cpu": 100e9},
            "cpu_preset_multiview": step,
            "width_1": {"gflop": 50.0, "eager": {"cpu_s": 1.0}, "optimised": {"cpu_s": 0.8}},
            "eval_eager": {"cpu_s": 6.0, "share": 0.12, "evaluations": 31, "steps": 600, "dataset": "esc10"},
            "eval_optimised": {"cpu_s": 3.0, "share": 0.11, "evaluations": 31, "steps": 600, "dataset": "esc10"},
            "eval_floor": {"share": 0.02, "rate": 120e9},
            "loader_cpu": {"share": 0.005}}


def test_the_table_shows_ratios_from_the_same_run_with_date_commit_and_machine():
    text = perf_table.table(_figures(), "2026-12-01", "abc1234")
    assert "2026-12-01" in text and "`abc1234`" in text and "AMD EPYC" in text
    assert "| `cpu`-preset multiview step | eager 2.400 s | 1.200 s | **2.00×** |" in text
    assert "1.25×" in text and "62% of the fp32 GEMM peak" in text          # 50 GFLOP / 0.8 s / 100 GFLOP/s
    assert "| eager 12.0% | 11.0% | floor: 2.0% at 120 GFLOP/s, the fastest float32 rate of the run |" in text
    assert "cpu 0.5%" in text


def test_write_replaces_only_what_is_between_the_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{perf_table.START}\nold\n{perf_table.END}\ntail\n")
    perf_table.write(readme, "new table")
    assert readme.read_text() == f"# x\n{perf_table.START}\nnew table\n{perf_table.END}\ntail\n"
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit, match="markers"):
        perf_table.write(readme, "t")


def test_the_readme_has_the_markers():
    text = (REPO / "README.md").read_text()
    assert perf_table.START in text and perf_table.END in text


def test_bench_step_writes_its_figures(tmp_path):
    out = tmp_path / "f.json"
    subprocess.run([sys.executable, "benchmarks/bench_step.py", "--threads", "1", "--widths", "", "--reps", "1",
                    "--presets", "smoke", "--systems", "multiview", "--dataset", "synthetic", "--no-bf16",
                    "--cache-dir", str(tmp_path / "cache"), "--json", str(out)],
                   check=True, cwd=REPO, capture_output=True, text=True, timeout=600)
    f = json.loads(out.read_text())
    step = f["cpu_preset_multiview"]
    assert step["eager"]["cpu_s"] > 0 and step["optimised"]["cpu_s"] > 0
    for k in ("eval_eager", "eval_optimised", "eval_floor", "loader_smoke"):
        assert 0 < f[k]["share"] < 1, (k, f[k])
    floor = f["eval_floor"]                        # at the fastest rate seen, the evaluation's own included
    assert floor["rate"] >= f["machine"]["peak_fp32_cpu"] and floor["share"] <= f["eval_optimised"]["share"]
    kept = f["kept_memory"]                        # the second process, freed memory kept as train runs
    assert kept["ok"] and kept["multiview"]["optimised"]["cpu_s"] > 0 and 0 < kept["eval"]["share"] < 1
    text = perf_table.table(f, "d", "c")
    assert "multiview step" in text and "freed memory kept" in text


def test_gpu_check_is_valid_bash_and_refuses_unknown_options():
    script = REPO / "benchmarks" / "gpu_check.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    r = subprocess.run(["bash", str(script), "--bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown option --bogus" in r.stderr
