"""mvbook.engines: the grid on Dask. A real two-worker cluster on 127.0.0.1
whose workers declare GPU=1 runs stand-in cells (order, a failed dependency,
retries, skipping finished cells); one real smoke-preset notebook cell goes
end to end through `python -m mvbook grid --engine local`; the SLURM engine
submits real dask-jobqueue job scripts to a stand-in sbatch/squeue/scancel
that runs them here. Every test is bounded in time and stops what it starts."""
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")
pytest.importorskip("dask_jobqueue")

import dask  # noqa: E402
import yaml  # noqa: E402

from mvbook.engines import grid_cells, local_cluster, run_cells  # noqa: E402

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
LIMIT = 90                       # seconds, for every stand-in grid


@dataclass(frozen=True)
class StandIn:
    """A runner whose cells sleep, note when and where they ran, and write a
    'record'; named cells fail (always, or on their first attempt only), and
    a cell may also write other cells' records (as another driver would)."""
    root: str
    seconds: float = 0.3
    fail: tuple = ()
    flaky: tuple = ()
    also_writes: tuple = ()          # (cell, cell whose record it writes too)

    def path(self, name, kind):
        return Path(self.root) / kind / (name.replace("/", "_").replace(" ", "_") + ".json")

    def check(self, cell):
        return ("skip", "record exists") if self.path(cell.name, "records").exists() else None

    def describe(self, cell):
        return ""

    def failure(self, cell, exc):
        return f"{type(exc).__name__}: {exc}", None

    def prepare(self, dataset, systems):
        Path(self.root, "prepared").write_text(json.dumps({"time": time.time(), "systems": list(systems)}))

    def note(self, cell, kind, **extra):
        p = self.path(cell.name, kind)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps({"time": time.time(), "pid": os.getpid(), **extra}))
        return p

    def __call__(self, cell):
        attempts = len(list(Path(self.root, "starts").glob(self.path(cell.name, "starts").stem + "*")))
        start = self.note(cell, "starts", omp=os.environ.get("OMP_NUM_THREADS"))
        start.rename(start.with_name(f"{start.stem}.{attempts}.json"))
        time.sleep(self.seconds)
        if cell.name in self.fail or (cell.name in self.flaky and attempts == 0):
            raise RuntimeError(f"{cell.system} broke")
        for a, b in self.also_writes:
            if a == cell.name:
                self.note(type(cell)(cell.dataset, cell.preset, b.split("/")[2].split()[0], cell.fold, cell.seed),
                          "records")
        self.note(cell, "records")
        return {}


def starts(root, name):
    files = sorted(Path(root, "starts").glob(StandIn(root).path(name, "starts").stem + ".*.json"))
    return [json.loads(f.read_text()) for f in files]


def ends(root, name):
    return json.loads(StandIn(root).path(name, "records").read_text())["time"]


@pytest.fixture(scope="module", autouse=True)
def no_user_dask_config(tmp_path_factory):
    """The user's Dask config (``~/.config/dask``, ``DASK_*`` variables: a
    jobqueue.yaml with ``interface:`` kills every worker of the SLURM test) is
    not read, here nor by the processes the tests start."""
    empty = tmp_path_factory.mktemp("no-dask-config")
    saved = {k: v for k, v in os.environ.items() if k.startswith("DASK_") or k == "HOME"}
    for k in saved:
        del os.environ[k]
    os.environ.update(DASK_CONFIG=str(empty), DASK_ROOT_CONFIG=str(empty), HOME=str(empty))
    dask.config.refresh(paths=[str(empty)], env={})
    yield empty
    for k in ("DASK_CONFIG", "DASK_ROOT_CONFIG", "HOME"):
        os.environ.pop(k, None)
    os.environ.update(saved)
    dask.config.refresh()


def test_a_cell_result_takes_only_a_status_word():
    """The statuses are one ``Literal`` (the type checker holds the engines to it); a runner's
    word outside it is refused at once, not counted as a failure by the report."""
    from typing import get_args

    from mvbook.engines.cells import CELL_STATUSES, CellResult, CellStatus, GridReport
    assert CELL_STATUSES == get_args(CellStatus) == ("done", "skipped", "failed", "not run")
    with pytest.raises(ValueError, match="a cell: status 'skip' is none of done, skipped, failed, not run"):
        CellResult("a cell", "skip")  # type: ignore[arg-type]
    report = GridReport()
    for status in CELL_STATUSES:
        report.add(CellResult(status, status))
    assert report.done == ["done"] and report.skipped == ["skipped"]
    assert [cell for cell, _, _ in report.failed] == ["failed", "not run"]


def test_the_users_dask_config_is_not_read(no_user_dask_config):
    assert dask.config.get("jobqueue.slurm.interface") is None
    code = "import dask, dask_jobqueue; print(dask.config.get('jobqueue.slurm.interface'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "None", out.stderr


@pytest.fixture(scope="module")
def client():
    """Two worker processes on 127.0.0.1, each declaring GPU=1 (stand-ins for two GPUs)."""
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(TESTS)] + ([old] if old else []))   # StandIn, for the workers
    try:
        with local_cluster(2, gpus_per_cell=1, resources={"GPU": 1}, dashboard_address="127.0.0.1:0") as cluster, \
                distributed.Client(cluster) as c:
            c.wait_for_workers(2, timeout=120)
            yield c
    finally:
        os.environ.pop("PYTHONPATH") if old is None else os.environ.__setitem__("PYTHONPATH", old)


def test_the_local_cluster_listens_on_127_0_0_1_and_its_workers_declare_a_gpu(client):
    info = client.scheduler_info()
    assert client.scheduler.address.startswith("tcp://127.0.0.1:")
    assert len(info["workers"]) == 2
    assert all(a.startswith("tcp://127.0.0.1:") and w["resources"] == {"GPU": 1} and w["nthreads"] == 1
               for a, w in info["workers"].items())
    dash = info.get("services", {}).get("dashboard")
    if dash:                                          # served only where bokeh is installed
        assert client.dashboard_link.startswith("http://127.0.0.1:")


def test_cells_run_after_the_cells_they_need_one_per_gpu(client, tmp_path):
    runner = StandIn(str(tmp_path))
    cells = grid_cells("synthetic", "smoke", ["fusionnet"], folds=[1, 2])
    assert [c.system for c in cells[:5]] == ["fcn_mel", "fcn_gam", "fcn_cqt", "fcn_raw", "fusionnet"]
    log = []
    report = run_cells(cells, runner, client=client, gpus_per_cell=1, log=log.append, timeout=LIMIT,
                       progress_every=5)
    assert sorted(report.done) == sorted(c.name for c in cells) and not report.failed
    prepared = json.loads((tmp_path / "prepared").read_text())
    assert prepared["systems"] == sorted({c.system for c in cells})
    spans = []
    for c in cells:
        (s,) = starts(tmp_path, c.name)
        assert s["time"] >= prepared["time"] and s["omp"] == "1"      # features first; one thread per cell
        spans.append((s["time"], ends(tmp_path, c.name)))
        if c.system == "fusionnet":
            assert s["time"] >= max(ends(tmp_path, n) for n in c.needed_cells())
    assert max(sum(a <= t < b for a, b in spans) for t, _ in spans) <= 2          # GPU=1: one cell per worker
    assert len({s["pid"] for c in cells for s in starts(tmp_path, c.name)}) == 2   # both workers used
    assert {r.status for r in report.rows} == {"done"} and all(r.worker and r.host for r in report.rows)
    assert any(line.startswith("10/10 done, 0 running, 0 failed") for line in log)
    assert "ETA" in log[-2] and "status" in log[-1] and "worker / host" in log[-1]


def test_a_failed_cell_is_reported_its_dependents_not_run_and_retries_rerun(client, tmp_path):
    cells = grid_cells("synthetic", "smoke", ["fusionnet", "cqt"], folds=[1])
    gam, fusion, cqt = (next(c.name for c in cells if c.system == s) for s in ("fcn_gam", "fusionnet", "cqt"))
    runner = StandIn(str(tmp_path), fail=(gam,), flaky=(cqt,))
    log = []
    report = run_cells(cells, runner, client=client, gpus_per_cell=1, retries=1, log=log.append, timeout=LIMIT)
    rows = {r.cell: r for r in report.rows}
    assert rows[gam].status == "failed" and "RuntimeError: fcn_gam broke" in rows[gam].detail
    assert len(starts(tmp_path, gam)) == 2                                       # retried once, failed again
    assert rows[fusion].status == "not run" and not starts(tmp_path, fusion)
    assert rows[fusion].detail == f"not run: needs {gam}, which failed"
    assert rows[cqt].status == "done" and len(starts(tmp_path, cqt)) == 2        # failed, then passed
    assert sorted(report.done) == sorted(c.name for c in cells if c.name not in (gam, fusion))
    assert {f[0] for f in report.failed} == {gam, fusion}
    assert "2 failed (1 not run" in log[-1]
    # no retries: the flaky cell fails; a second grid skips what is done, reruns only the failures
    runner2 = StandIn(str(tmp_path / "again"), flaky=(cqt,))
    report = run_cells(cells[-1:], runner2, client=client, gpus_per_cell=1, log=log.append, timeout=LIMIT)
    assert [f[0] for f in report.failed] == [cqt]
    report = run_cells(cells, runner, client=client, gpus_per_cell=1, retries=1, log=log.append, timeout=LIMIT)
    assert sorted(report.skipped) == sorted(c.name for c in cells if c.name not in (gam, fusion))
    assert {f[0] for f in report.failed} == {gam, fusion} and not report.done


def test_finished_cells_are_not_submitted_and_are_checked_again_when_their_task_starts(client, tmp_path):
    cells = grid_cells("synthetic", "smoke", ["fusionnet"], folds=[1])
    mel, raw, fusion = (next(c.name for c in cells if c.system == s) for s in ("fcn_mel", "fcn_raw", "fusionnet"))
    runner = StandIn(str(tmp_path), also_writes=((raw, fusion),))        # as if another driver finished fusionnet
    runner.note(cells[0], "records")                                      # fcn_mel: finished before
    log = []
    report = run_cells(cells, runner, client=client, gpus_per_cell=1, log=log.append, timeout=LIMIT)
    rows = {r.cell: r for r in report.rows}
    assert rows[mel].status == "skipped" and not starts(tmp_path, mel)        # never submitted
    assert f"skip {mel}: record exists" in log
    assert rows[fusion].status == "skipped" and rows[fusion].host and not starts(tmp_path, fusion)
    assert len(report.done) == 3 and not report.failed


def test_a_real_smoke_cell_through_the_cli_on_a_local_cluster(tmp_path):
    out = tmp_path / "results"
    cmd = [sys.executable, "-m", "mvbook", "grid", "--dataset", "synthetic", "--preset", "smoke", "--systems", "cqt",
           "--folds", "1", "--epochs", "1", "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
           "--engine", "local", "--workers", "1"]
    env = dict(os.environ, MVBOOK_CACHE=str(tmp_path / "cache"))
    proc = run_bounded(cmd, env, 600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    rec = out / "synthetic/smoke/cqt/fold1-seed0.json"
    assert rec.exists() and rec.with_suffix(".ipynb").exists()
    assert json.loads(rec.read_text())["system"] == "cqt"
    assert "local engine: scheduler tcp://127.0.0.1:" in log and "1/1 done, 0 running, 0 failed" in log
    assert "features of synthetic: extracting" in log and "grid: 1 trained" in log
    rows = [re.split(r"\s{2,}", line.strip()) for line in log.splitlines() if line.startswith("  synthetic/")]
    assert rows[-1][:2] == ["synthetic/smoke/cqt fold 1 seed 0", "done"] and rows[-1][2].startswith("worker-0 / ")
    # finished: nothing is submitted, no cluster is started; a record of another row fails the grid (exit 1)
    again = run_bounded(cmd, env, 120)
    assert again.returncode == 0 and "skip synthetic/smoke/cqt" in again.stdout and "scheduler" not in again.stdout
    stale = out / "synthetic/smoke/multiview/fold1-seed0.json"
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps({"schema": "mvbook.record/1", "system": "multiview",
                                 "config": {"system": "multiview"}}))
    failed = run_bounded(cmd[:cmd.index("cqt")] + ["multiview"] + cmd[cmd.index("cqt") + 1:], env, 120)
    assert failed.returncode == 1 and "FAILED synthetic/smoke/multiview fold 1" in failed.stdout


def run_bounded(cmd, env, seconds):
    """Run ``cmd`` in its own process group; kill the whole group if it outlives ``seconds``."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} ran over {seconds} s:\n{(out + err)[-3000:]}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)       # anything it left behind
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


SBATCH = """#!/bin/bash
# stand-in sbatch: runs the job script here, in the background, in its own session
dir="$FAKE_SLURM"; script="${@: -1}"
exec 9>>"$dir/next.lock"; flock 9                     # ids are unique, as Slurm's are, under concurrent calls
id=$(( $(cat "$dir/next" 2>/dev/null || echo 100) + 1 )); echo $id > "$dir/next"
flock -u 9; exec 9>&-
cp "$script" "$dir/job-$id.sh"; echo "sbatch $*" >> "$dir/calls"
SLURM_JOB_ID=$id setsid bash "$dir/job-$id.sh" > "$dir/job-$id.out" 2>&1 < /dev/null &
echo $! > "$dir/job-$id.pid"
echo "Submitted batch job $id"
"""
SQUEUE = """#!/bin/bash
# stand-in squeue: the jobs whose process is alive
dir="$FAKE_SLURM"; echo "JOBID STATE"
for f in "$dir"/job-*.pid; do [ -e "$f" ] || continue; id=${f##*/job-}; id=${id%.pid}
  kill -0 "$(cat "$f")" 2>/dev/null && echo "$id RUNNING"; done; true
"""
SCANCEL = """#!/bin/bash
# stand-in scancel: kills each job's process group
dir="$FAKE_SLURM"; echo "scancel $*" >> "$dir/calls"
for id in "$@"; do kill -TERM -- "-$(cat "$dir/job-$id.pid")" 2>/dev/null; done; true
"""
JOBQUEUE_YAML = """
jobqueue:
  slurm:
    queue: gpu                  # partition
    account: mvbook
    cores: 1
    processes: 1
    memory: 2GB
    walltime: "00:10:00"
    job-extra-directives: ["--gres=gpu:1"]
    worker-extra-args: ["--resources", "GPU=1", "--host", "127.0.0.1"]
    job-script-prologue: ["export PYTHONPATH={tests}", "export MVBOOK_CACHE={cache}"]
    scheduler-options: {{host: 127.0.0.1, dashboard_address: "127.0.0.1:0"}}
    death-timeout: 30
"""


def fake_slurm(tmp_path, monkeypatch, sbatch=SBATCH) -> Path:
    """Stand-in sbatch, squeue and scancel first on PATH; the folder of their jobs."""
    bin_, jobs = tmp_path / "bin", tmp_path / "slurm"
    bin_.mkdir()
    jobs.mkdir()
    for name, text in (("sbatch", sbatch), ("squeue", SQUEUE), ("scancel", SCANCEL)):
        (bin_ / name).write_text(text)
        (bin_ / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM", str(jobs))
    return jobs


def slurm_grid(tmp_path, jobs, n_jobs=2, timeout=180, **settings):
    """The stand-in grid on the SLURM engine with JOBQUEUE_YAML (and ``settings``
    over it); (report, log, pids of the jobs), every job killed at the end."""
    cfg = yaml.safe_load(JOBQUEUE_YAML.format(tests=TESTS, cache=tmp_path / "cache"))["jobqueue"]["slurm"]
    cells = grid_cells("synthetic", "smoke", ["mel", "cqt"], folds=[1, 2])
    runner = StandIn(str(tmp_path / "grid"), seconds=1.0)
    Path(runner.root).mkdir()
    log = []
    try:
        with dask.config.set({f"jobqueue.slurm.{k}": v for k, v in (cfg | settings).items()}):
            report = run_cells(cells, runner, engine="slurm", jobs=n_jobs, log=log.append, timeout=timeout,
                               progress_every=5)
    finally:
        pids = [int(p.read_text()) for p in jobs.glob("job-*.pid")]
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return cells, report, log, pids


def test_the_slurm_engine_submits_job_scripts_and_cancels_them(tmp_path, monkeypatch):
    jobs = fake_slurm(tmp_path, monkeypatch)
    cells, report, log, pids = slurm_grid(tmp_path, jobs)
    assert sorted(report.done) == sorted(c.name for c in cells), "\n".join(log)
    table = log[-1]
    assert all(re.search(rf"{re.escape(c.name)}\s+done\s+SLURMCluster-\d / \S+ / SLURM job 10[12]\s", table)
               for c in cells), table                                  # each cell's job, to find its log
    assert any("slurm engine: scheduler tcp://127.0.0.1:" in line and "1 GPU(s) per cell" in line for line in log)
    scripts = sorted(jobs.glob("job-*.sh"))
    assert len(scripts) == 2                                   # both jobs asked for at once, no more
    text = scripts[0].read_text()
    for directive in ("#SBATCH -p gpu", "#SBATCH -A mvbook", "#SBATCH --gres=gpu:1", "#SBATCH -t 00:10:00",
                      "--resources GPU=1", f"export PYTHONPATH={TESTS}"):
        assert directive in text, text
    assert {r.worker for r in report.rows} <= {"SLURMCluster-0", "SLURMCluster-1"}
    calls = (jobs / "calls").read_text()
    assert calls.count("sbatch ") == 2 and "scancel" in calls                  # released at the end
    deadline = time.time() + 30
    while time.time() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.5)
    assert not any(_alive(pid) for pid in pids)


def _alive(pid):
    try:
        os.killpg(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_the_serial_grid_imports_no_dask():
    code = textwrap.dedent("""
        import sys
        import mvbook.grid
        print(sorted(m for m in ("dask", "distributed", "dask_jobqueue") if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == "[]"


REFUSING_SBATCH = """#!/bin/bash
echo "sbatch: error: invalid partition specified: nosuch" >&2
echo "sbatch: error: Batch job submission failed: Invalid partition name specified" >&2
exit 1
"""


def test_a_grid_whose_slurm_jobs_are_refused_ends_with_the_schedulers_message(tmp_path, monkeypatch):
    jobs = fake_slurm(tmp_path, monkeypatch, REFUSING_SBATCH)
    t = time.time()
    cells, report, log, _ = slurm_grid(tmp_path, jobs, n_jobs=1, timeout=120, queue="nosuch")
    assert time.time() - t < 60 and not report.done, "\n".join(log)
    why = ("SLURM refused the worker job: sbatch: error: invalid partition specified: nosuch; sbatch: error: Batch "
           "job submission failed: Invalid partition name specified; fix the job settings (jobqueue.yaml: queue, "
           "account, memory, job-extra-directives) and run the grid again")
    assert f"stopping the grid: {why}" in log
    assert sorted(c for c, _, _ in report.failed) == sorted(c.name for c in cells)
    assert {err for _, err, _ in report.failed} == {f"not run: cancelled ({why})"}


def test_a_grid_whose_slurm_workers_die_at_once_ends_saying_so(tmp_path, monkeypatch):
    jobs = fake_slurm(tmp_path, monkeypatch)
    t = time.time()
    # the README's jobqueue.yaml with an interface, and --host in the worker's arguments: workers die at once
    cells, report, log, _ = slurm_grid(tmp_path, jobs, n_jobs=1, timeout=150, interface="lo")
    assert time.time() - t < 120 and not report.done, "\n".join(log)
    assert "Can not specify both interface and host" in (jobs / "job-101.out").read_text()
    why = ("SLURM job 101 ended before its worker connected to the scheduler (its worker died at once): its log "
           "(slurm-101.out, or in jobqueue.yaml's log-directory) says why")
    assert f"stopping the grid: {why}" in log
    assert {err for _, err, _ in report.failed} == {f"not run: cancelled ({why})"}
