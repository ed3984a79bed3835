"""mvbook.grid: the training notebook run by papermill, the grid, its order.
One real smoke training (synthetic, CQT only, ~1 min)."""
import json
import re
from pathlib import Path

import nbformat
import pytest

from mvbook import grid
from mvbook.__main__ import main
from mvbook.engines import grid_cells, run_cells
from mvbook.errors import ConfigError
from mvbook.records import record_path


def test_training_notebook_has_a_papermill_parameters_cell():
    nb = grid.training_notebook(title="Run: x")
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    for name in ("dataset", "system", "fold", "preset", "seed", "device", "data_root", "out"):
        assert re.search(rf"^{name}: \w[\w\[\]]* = ", tagged[0].source, re.M), name   # typed, for --help-notebook
    assert nb.cells[0].source.startswith("# Run: x")
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_grid_runs_the_notebook_keeps_it_skips_and_reports_failures(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MVBOOK_CACHE", str(tmp_path / "cache"))
    log = []
    kw = dict(dataset="synthetic", systems=["cqt"], preset="smoke", out=tmp_path / "results", log=log.append,
              epochs=1)
    report = grid.run_grid(folds=[9, 1], **kw)                          # fold 9 does not exist: that cell fails
    rec = tmp_path / "results/synthetic/smoke/cqt/fold1-seed0.json"
    nb_path = rec.with_suffix(".ipynb")
    assert report.done == ["synthetic/smoke/cqt fold 1 seed 0"]
    assert [f[0] for f in report.failed] == ["synthetic/smoke/cqt fold 9 seed 0"]
    assert "ConfigError" in report.failed[0][1] and "fold" in report.failed[0][1]
    assert report.failed[0][2] and Path(report.failed[0][2]).exists()   # the failed notebook is kept, with its error
    assert rec.exists() and nb_path.exists()
    record = json.loads(rec.read_text())
    assert record["system"] == "cqt" and record["preset"] == "smoke" and record["fold"] == 1
    nb = nbformat.read(nb_path, as_version=4)
    assert nb.cells[0].source.startswith("# Run: synthetic · smoke · cqt · fold 1 · seed 0")
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and 'system = "cqt"' in injected[0].source
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any(o.output_type == "display_data" and "image/png" in o.get("data", {}) for o in outputs)
    assert "FAILED synthetic/smoke/cqt fold 9" in log[-1]
    # again: the finished cell is skipped, the failing one tried and reported again
    mtime = rec.stat().st_mtime
    report = grid.run_grid(folds=[9, 1], **kw)
    assert report.skipped == ["synthetic/smoke/cqt fold 1 seed 0"] and len(report.failed) == 1 and not report.done
    assert rec.stat().st_mtime == mtime
    # the CLI: every cell done → exit 0; a bad fold is refused before anything runs
    args = ["grid", "--dataset", "synthetic", "--preset", "smoke", "--systems", "cqt", "--folds", "1",
            "--out", str(tmp_path / "results")]
    assert main(args + ["--epochs", "1"]) == 0
    assert main(args[:-4] + ["--folds", "9", "--out", str(tmp_path / "results")]) == 2
    # without --epochs the record (epochs=1) is another configuration's: not done, said so, exit 1
    capsys.readouterr()
    assert main(args + ["--no-progress"]) == 1
    assert (f"FAIL synthetic/smoke/cqt fold 1 seed 0: {rec} is a record of another configuration (its preset "
            "differs in epochs, reduced): not this cell's run, and train refuses to replace it; delete it (with its "
            "notebook) to run the cell, or pass --out another folder to keep both") in capsys.readouterr().out
    assert rec.stat().st_mtime == mtime
    # a notebook that papermill did not finish saving beside the record: the cell runs again
    nb = json.loads(nb_path.read_text())
    nb["metadata"]["papermill"]["end_time"] = None
    nb["cells"][-1]["metadata"]["papermill"]["status"] = "running"
    nb_path.write_text(json.dumps(nb))
    assert not grid.notebook_complete(nb_path)
    log.clear()
    report = grid.run_grid(folds=[1], **kw)
    assert report.done == ["synthetic/smoke/cqt fold 1 seed 0"] and not report.skipped
    assert f"run  synthetic/smoke/cqt fold 1 seed 0 -> {nb_path} (again: the notebook beside its record is " \
           "half-written)" in log
    assert grid.notebook_complete(nb_path)
    assert json.loads(rec.read_text())["curves"] == record["curves"]      # resumed from its finished checkpoint


def test_grid_runs_the_systems_a_system_needs_first(tmp_path):
    coders = ["fcn_mel", "fcn_gam", "fcn_cqt", "fcn_raw"]
    assert grid.with_dependencies(["fusionnet", "mel"]) == coders + ["fusionnet", "mel"]
    assert grid.with_dependencies(["fcn_gam", "fusionnet", "fcn_mel"]) == ["fcn_gam", "fcn_mel", "fcn_cqt", "fcn_raw",
                                                                          "fusionnet"]
    assert grid.with_dependencies(["late", "cqt"]) == ["late", "cqt"]       # not trained: its cell fails as before
    # the coders' records exist (so they are skipped), their checkpoints do not: fusionnet comes after
    # them and fails, naming what is missing; nothing is trained
    for s in coders:
        rec = tmp_path / "r" / record_path("synthetic", "smoke", s, 1, 0)
        rec.parent.mkdir(parents=True)
        rec.write_text('{"schema": "mvbook.record/1"}')    # a record (of no row)
    log = []
    report = grid.run_grid("synthetic", ["fusionnet"], [1], preset="smoke", out=tmp_path / "r", direct=True,
                          log=log.append)
    assert report.skipped == [f"synthetic/smoke/{s} fold 1 seed 0" for s in coders]
    assert [f[0] for f in report.failed] == ["synthetic/smoke/fusionnet fold 1 seed 0"] and not report.done
    assert "4 best.pt checkpoint(s) missing" in report.failed[0][1]
    assert "delete those records" in report.failed[0][1]             # the grid would skip them
    assert log[0].startswith("adding fcn_mel, fcn_gam, fcn_cqt, fcn_raw")


def test_a_record_of_another_blending_rule_is_neither_skipped_nor_overwritten(tmp_path):
    rec = tmp_path / record_path("synthetic", "smoke", "multiview", 1, 0)
    rec.parent.mkdir(parents=True)
    old = {"schema": "mvbook.record/1", "system": "multiview", "config": {"system": "multiview"}}   # no rule named
    rec.write_text(json.dumps(old))
    log = []
    report = grid.run_grid("synthetic", ["multiview"], [1], preset="smoke", out=tmp_path, direct=True,
                           log=log.append)
    assert not report.done and not report.skipped and len(report.failed) == 1
    assert "row 'mv_literal'" in report.failed[0][1] and "mv_literal/" in report.failed[0][1]
    assert json.loads(rec.read_text()) == old


def test_notebook_parameters_from_the_papermill_command_line():
    assert [grid.null(v) for v in ("null", "None", "~", "", None)] == [None] * 5
    assert grid.null("/data") == "/data" and grid.null(0) == 0
    assert grid.overrides_dict('{"reference": "initial"}') == {"reference": "initial"}   # -p gives text
    assert grid.overrides_dict("reference: initial") == {"reference": "initial"}
    assert grid.overrides_dict({"window": 5}) == {"window": 5} and grid.overrides_dict("null") == {}
    with pytest.raises(ValueError, match="must be a mapping"):
        grid.overrides_dict("[1, 2]")
    with pytest.raises(ValueError, match="neither JSON nor YAML"):
        grid.overrides_dict("{reference: [")


def test_serial_grid_prints_k_of_n_elapsed_and_eta_unless_told_not_to(tmp_path):
    class Runner:
        def check(self, cell):
            return ("skip", "exists") if cell.fold == 1 else None

        def describe(self, cell):
            return ""

        def __call__(self, cell):
            if cell.fold == 3:
                raise RuntimeError("boom")
            return {}

        def failure(self, cell, exc):
            return str(exc), None

    cells = grid_cells("synthetic", "smoke", ["cqt"], [1, 2, 3], [0])
    log = []
    report = run_cells(cells, Runner(), log=log.append)
    lines = [m for m in log if "ETA" in m]
    assert lines[0].startswith("2/3 done, 0 running, 0 failed; elapsed ")          # the skipped cell counts
    assert lines[1].startswith("2/3 done, 0 running, 1 failed;") and lines[1].endswith("ETA 0:00")
    assert len(report.skipped) == 1 and len(report.failed) == 1
    log.clear()
    run_cells(cells, Runner(), log=log.append, progress=False)
    assert not [m for m in log if "ETA" in m] and "grid: 1 trained" in log[-1]


def test_the_training_notebook_ships_inside_the_package():
    assert grid.TRAINING_NOTEBOOK.parent.parent == Path(grid.__file__).parent
    assert grid.TRAINING_NOTEBOOK.read_text() == (Path(__file__).parents[1] / "book" / "training.md").read_text()
    with pytest.raises(ConfigError, match="/nowhere/training.md.*--notebook"):
        grid.training_notebook("/nowhere/training.md")


def test_the_serial_engine_trains_each_cell_with_the_threads_the_dask_engines_use(tmp_path):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        report = grid.run_grid("synthetic", ["mel"], [1], preset="smoke", out=tmp_path, direct=True, epochs=1,
                               log=lambda m: None, threads=1, cache_dir=tmp_path / "cache")
        assert report.done and torch.get_num_threads() == 2                 # as it was, after the grid
    finally:
        torch.set_num_threads(before)
    record = json.loads((tmp_path / record_path("synthetic", "smoke", "mel", 1, 0)).read_text())
    assert record["provenance"]["torch_threads"] == 1


def test_a_notebook_parameter_that_is_not_a_whole_number_is_named():
    from mvbook.errors import ConfigError
    from mvbook.grid import int_parameter
    assert int_parameter("fold", 2) == 2 and int_parameter("epochs", " 7 ") == 7
    with pytest.raises(ConfigError, match=r"notebook parameter epochs = 'abc': not a whole number"):
        int_parameter("epochs", "abc")
