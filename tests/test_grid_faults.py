"""User errors of grid and table that used to end in a traceback or in a wrong
exit status (issue 43, cases 7, 8 and 10): each is one line naming the file or
the option, decided before any work, and nothing is lost."""
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mvbook.__main__ import main
from mvbook.checkpoints import RunLock
from mvbook.engines import clusters
from mvbook.records import RunPaths
from mvbook.train import train

GRID = ["grid", "--dataset", "synthetic", "--preset", "smoke", "--systems", "mel", "--folds", "1", "--seed", "1",
        "--direct", "--no-progress", "--epochs", "1"]


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """A finished run; a killed writer's record temporary beside it is swept when its record is written."""
    out = tmp_path_factory.mktemp("done") / "out"
    folder = out / "synthetic/smoke/mel"
    folder.mkdir(parents=True)
    (folder / ".fold1-seed1.json.x8k2_q.tmp").write_text("{")                # as SIGKILL leaves one
    rec = train("synthetic", "mel", 1, "smoke", seed=1, epochs=1, out=out, progress=False,
                cache_dir=tmp_path_factory.getbasetemp() / "cache-faults")
    return rec


def test_a_killed_writers_record_temporary_is_swept(done):
    assert not list(Path(done["path"]).parent.glob(".*.tmp"))
    assert ".fold*-seed*.json.*.tmp" in (Path(__file__).parents[1] / ".gitignore").read_text().splitlines()


@pytest.mark.parametrize("text, why", [
    ("{not json", "cannot be read as a results record (not valid JSON: Expecting property name enclosed in double "
                  "quotes: line 1 column 2 (char 1)): move it away or delete it to run the cell"),
    ("[1, 2]", "is not a results record (a JSON list, not an object): move it away or delete it to run the cell"),
    ('{"schema": "mvbook.record/0", "system": "mel"}',
     "is a record of schema 'mvbook.record/0', not 'mvbook.record/1' (what this mvbook reads): a grid does not "
     "count it as done; move it away or delete it to run the cell")])
def test_a_cell_whose_record_is_not_one_fails_naming_it_and_the_grid_goes_on(tmp_path, capsys, text, why):
    rec = tmp_path / "synthetic/smoke/mel/fold1-seed1.json"
    rec.parent.mkdir(parents=True)
    rec.write_text(text)
    assert main(GRID + ["--out", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert f"FAIL synthetic/smoke/mel fold 1 seed 1: {rec} {why}" in out.splitlines() and "Traceback" not in err
    assert rec.read_text() == text                                                 # nothing lost


@pytest.mark.parametrize("args, text", [
    (["--engine", "local", "--workers", "-1"], "--workers -1: a cluster needs at least one worker (leave it out for "
                                               "the default: one per GPU, else one per core)"),
    (["--engine", "local", "--workers", "0"], "--workers 0: a cluster needs at least one worker (leave it out for "
                                              "the default: one per GPU, else one per core)"),
    (["--device", "nosuch"], "--device 'nosuch' is not a device: use auto, cpu, cuda, cuda:1 …"),
    (["--engine", "slurm", "--jobs", "2"], "--engine slurm needs a dask-jobqueue profile: jobqueue.slurm.cores and "
                                           "memory not set (the cores and memory of each worker job); set them in "
                                           "~/.config/dask/jobqueue.yaml or as DASK_JOBQUEUE__SLURM__CORES and "
                                           "DASK_JOBQUEUE__SLURM__MEMORY")])
def test_engine_and_device_options_are_checked_before_any_work(tmp_path, capsys, monkeypatch, args, text):
    monkeypatch.delenv("DASK_JOBQUEUE__SLURM__CORES", raising=False)
    monkeypatch.delenv("DASK_JOBQUEUE__SLURM__MEMORY", raising=False)
    if "slurm" in args:
        pytest.importorskip("dask_jobqueue")
        import dask
        monkeypatch.setattr(dask, "config", _NoProfile(dask.config))
    assert main(GRID + ["--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c"), *args]) == 2
    out, err = capsys.readouterr()
    assert err.startswith(f"error: {text}") and len(err.splitlines()) == 1 and out == ""
    assert not (tmp_path / "o").exists() and not (tmp_path / "c").exists()


class _NoProfile:
    """dask.config as on a machine without a jobqueue profile."""

    def __init__(self, real):
        self.real = real

    def get(self, key, default=None):
        return default if key.startswith("jobqueue.") else self.real.get(key, default)


def test_more_threads_than_cores_is_a_warning_saying_why(monkeypatch):
    said = []
    monkeypatch.setattr(clusters.os, "cpu_count", lambda: 2)
    clusters.check_engine("serial", threads=999, warn=said.append)
    clusters.check_engine("serial", threads=2, warn=said.append)
    assert said == ["warning: --threads 999 is more than the 2 cores of this machine: each cell's math libraries "
                    "then compete for the cores and run many times slower; --threads 2 or fewer is faster"]


def test_two_grids_on_one_cell_the_second_waits_and_skips_it(tmp_path, done, capsys):
    paths = RunPaths(tmp_path, "synthetic", "smoke", "mel", 1, 1)
    lock = RunLock(paths.checkpoint_dir).__enter__()                # the other grid trains this cell

    def finish():
        time.sleep(2)
        paths.record.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(done["path"], paths.record)
        lock.__exit__(None, None, None)
    other = threading.Thread(target=finish)
    other.start()
    assert main(GRID + ["--out", str(tmp_path)]) == 0
    other.join()
    out, err = capsys.readouterr()
    assert "synthetic/smoke/mel fold 1 seed 1: another process is training this run; waiting for it" in out
    assert "Traceback" not in err and "FAIL" not in out


def _tree(tmp_path, done, **change) -> Path:
    rec = json.loads(Path(done["path"]).read_text()) | change
    path = tmp_path / "synthetic/smoke/mel/fold2-seed1.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(rec))
    return path


@pytest.mark.parametrize("change, why", [
    ({"dataset": ["synthetic"]}, "dataset is ['synthetic'], not a name"),
    ({"preset": "cpu"}, "preset is 'cpu' but its config says 'smoke'")])
def test_table_names_a_record_whose_names_are_wrong(tmp_path, done, capsys, change, why):
    path = _tree(tmp_path, done, **change)
    assert main(["table", "--results", str(tmp_path), "--dataset", "synthetic", "--preset", "cpu"]) == 2
    assert capsys.readouterr().err == f"error: not a valid results record ({path}): {why}\n"


def test_table_reports_a_record_of_another_schema(tmp_path, done, capsys):
    path = _tree(tmp_path, done, schema="mvbook.record/2")
    shutil.copy(done["path"], path.with_name("fold1-seed1.json"))
    assert main(["table", "--results", str(tmp_path), "--dataset", "synthetic", "--preset", "smoke"]) == 0
    assert capsys.readouterr().err == (f"warning: {path} is a record of schema 'mvbook.record/2', not "
                                       "'mvbook.record/1' (what this mvbook reads): left out\n")


def test_table_into_a_closed_pipe_leaves_quietly(done):
    root = Path(done["path"]).parents[3]
    p = subprocess.Popen([sys.executable, "-m", "mvbook", "table", "--results", str(root), "--dataset", "synthetic",
                          "--preset", "smoke", "--folds"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=os.environ | {"PYTHONUNBUFFERED": "1"})
    p.stdout.close()                                                          # `| head -0`
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141 and err == ""
