"""The benchmark scripts run and report what they claim (they are not timed here:
speed figures are ratios measured within one run, never asserted in a test).
Every script in benchmarks/ runs in its ``--quick`` mode (tiny sizes), so a
change that breaks one fails the tests."""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import perf_table  # noqa: E402

# each script's ratio line: a figure against its reference measured in the same run
RATIO = {"bench_grid.py": r"^serial [\d.]+ s, local --workers 2 [\d.]+ s \(start-up included\): speed-up \d+\.\d\dx$",
         "bench_step.py": r"^  multiview +[\d. ]+ x\d+\.\d\d +CPU s: ",
         "bench_views.py": r"^mel +[\d.]+ +[\d.]+ +\d+\.\dx ",
         "perf_table.py": r"^\| `cpu`-preset multiview step \| eager [\d.]+ s \| [\d.]+ s \| \*\*\d+\.\d\d×\*\* \|$"}
SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("*.py"))
LIMIT = 900                      # seconds for all of them, on a loaded 2-core machine


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """Every script's ``--quick`` run: name → (exit status, output). bench_step writes its figures
    (``figures.json``); it and perf_table (which runs bench_step) read the synthetic task's views from
    the feature cache (``$MVBOOK_CACHE``), the first filling it where it is cold, so those two run one
    after the other, beside the others."""
    tmp = tmp_path_factory.mktemp("quick")
    extra = {"bench_step.py": ["--json", str(tmp / "figures.json")]}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))

    def start(name):
        out = (tmp / f"{name}.out").open("w")
        return subprocess.Popen([sys.executable, str(BENCHMARKS / name), "--quick", *extra.get(name, [])], cwd=REPO,
                                env=env, stdout=out, stderr=subprocess.STDOUT, text=True)

    running = {name: start(name) for name in SCRIPTS if name != "perf_table.py"}
    done, deadline = {}, time.time() + LIMIT
    while running and time.time() < deadline:
        for name, proc in list(running.items()):
            if proc.poll() is not None:
                done[name] = proc.returncode, (tmp / f"{name}.out").read_text()
                del running[name]
                if name == "bench_step.py" and "perf_table.py" in SCRIPTS:
                    running["perf_table.py"] = start("perf_table.py")
        time.sleep(0.5)
    for name, proc in running.items():
        proc.kill()
        done[name] = f"killed after {LIMIT} s", (tmp / f"{name}.out").read_text()
    return done | {"figures": tmp / "figures.json"}


def test_every_script_in_the_folder_has_a_quick_run_here():
    assert len(SCRIPTS) == len(list(BENCHMARKS.glob("*.py"))) == len(RATIO) == 4
    assert SCRIPTS == sorted(RATIO), "a benchmark script without a --quick run in this test (or one gone)"


@pytest.mark.parametrize("name", SCRIPTS)
def test_each_script_runs_quick_and_prints_its_ratio(quick, name):
    code, out = quick[name]
    assert code == 0, f"{name} --quick failed ({code}):\n{out[-3000:]}"
    assert re.search(RATIO[name], out, re.MULTILINE), f"{name} --quick printed no ratio line:\n{out[-3000:]}"


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


def test_bench_step_writes_its_figures(quick):
    assert quick["bench_step.py"][0] == 0
    out = quick["figures"]
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
