"""mvbook.notebooks: the training notebook run by papermill, the grid, the
book's settings. One real smoke training (synthetic, CQT only, ~1 min)."""
import json
from pathlib import Path

import nbformat
import pytest

from mvbook import notebooks as nbk
from mvbook.__main__ import main

REPO = Path(__file__).resolve().parents[1]


def test_training_notebook_has_a_papermill_parameters_cell():
    nb = nbk.training_notebook(title="Run: x")
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    for name in ("dataset", "system", "fold", "preset", "seed", "device", "data_root", "out"):
        assert f"\n{name} = " in "\n" + tagged[0].source
    assert nb.cells[0].source.startswith("# Run: x")
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_book_settings(monkeypatch, tmp_path):
    for var in ("MVBOOK_PRESET", "MVBOOK_DATASET", "MVBOOK_DATA", "MVBOOK_RUNS"):
        monkeypatch.delenv(var, raising=False)
    assert nbk.book_preset() == "smoke" and nbk.book_dataset() == "synthetic"
    assert nbk.runs_dir() == REPO / "runs" / "book"
    monkeypatch.setenv("MVBOOK_DATA", str(tmp_path))                     # holds no ESC-50
    assert nbk.book_dataset() == "synthetic"
    monkeypatch.setenv("MVBOOK_PRESET", "cpu")
    monkeypatch.setenv("MVBOOK_DATASET", "gtzan")
    monkeypatch.setenv("MVBOOK_RUNS", str(tmp_path / "r"))
    assert (nbk.book_preset(), nbk.book_dataset(), nbk.runs_dir()) == ("cpu", "gtzan", tmp_path / "r")
    assert nbk.resolve("auto", lambda: 3) == 3 and nbk.resolve(None, lambda: 3) == 3 and nbk.resolve(1, None) == 1


def test_book_dataset_is_esc10_when_the_data_root_holds_it(esc_root, monkeypatch):
    monkeypatch.delenv("MVBOOK_DATASET", raising=False)
    monkeypatch.setenv("MVBOOK_DATA", str(esc_root))
    assert nbk.book_dataset() == "esc10"


def test_show_source_finds_a_marked_line():
    from mvbook.train import train
    code = nbk.show_source(train, marker="# Eq. 2", before=0, after=0)
    assert "weights[k] * losses[k]" in code.data and code.data.startswith("# mvbook/train.py, line ")
    with pytest.raises(ValueError):
        nbk.show_source(train, marker="no such line")


def test_copy_records(tmp_path):
    src = tmp_path / "results" / "esc10" / "cpu" / "mel"
    src.mkdir(parents=True)
    (src / "fold1-seed0.json").write_text("{}")
    (src / "fold1-seed0.ipynb").write_text("{}")
    (tmp_path / "results" / "checkpoints").mkdir()
    (tmp_path / "results" / "checkpoints" / "x.json").write_text("{}")
    copied = nbk.copy_records(tmp_path / "results", tmp_path / "html" / "results")
    assert copied == [tmp_path / "html/results/esc10/cpu/mel/fold1-seed0.json"]


def test_grid_runs_the_notebook_keeps_it_skips_and_reports_failures(tmp_path, monkeypatch):
    monkeypatch.setenv("MVBOOK_CACHE", str(tmp_path / "cache"))
    log = []
    kw = dict(dataset="synthetic", systems=["cqt"], preset="smoke", out=tmp_path / "results", log=log.append,
              epochs=1)
    report = nbk.run_grid(folds=[9, 1], **kw)                          # fold 9 does not exist: that cell fails
    rec = tmp_path / "results/synthetic/smoke/cqt/fold1-seed0.json"
    nb_path = rec.with_suffix(".ipynb")
    assert report.done == ["synthetic/smoke/cqt fold 1 seed 0"]
    assert [f[0] for f in report.failed] == ["synthetic/smoke/cqt fold 9 seed 0"]
    assert "ValueError" in report.failed[0][1] and "fold" in report.failed[0][1]
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
    report = nbk.run_grid(folds=[9, 1], **kw)
    assert report.skipped == ["synthetic/smoke/cqt fold 1 seed 0"] and len(report.failed) == 1 and not report.done
    assert rec.stat().st_mtime == mtime
    # the CLI: every cell done → exit 0; a bad fold is refused before anything runs
    args = ["grid", "--dataset", "synthetic", "--preset", "smoke", "--systems", "cqt", "--folds", "1",
            "--out", str(tmp_path / "results")]
    assert main(args) == 0
    assert main(args[:-4] + ["--folds", "9", "--out", str(tmp_path / "results")]) == 2


def test_grid_runs_the_systems_a_system_needs_first(tmp_path):
    from mvbook.results import record_path
    coders = ["fcn_mel", "fcn_gam", "fcn_cqt", "fcn_raw"]
    assert nbk.with_dependencies(["fusionnet", "mel"]) == coders + ["fusionnet", "mel"]
    assert nbk.with_dependencies(["fcn_gam", "fusionnet", "fcn_mel"]) == ["fcn_gam", "fcn_mel", "fcn_cqt", "fcn_raw",
                                                                          "fusionnet"]
    assert nbk.with_dependencies(["late", "cqt"]) == ["late", "cqt"]       # not trained: its cell fails as before
    # the coders' records exist (so they are skipped), their checkpoints do not: fusionnet comes after
    # them and fails, naming what is missing; nothing is trained
    for s in coders:
        rec = tmp_path / "r" / record_path("synthetic", "smoke", s, 1, 0)
        rec.parent.mkdir(parents=True)
        rec.write_text("{}")
    log = []
    report = nbk.run_grid("synthetic", ["fusionnet"], [1], preset="smoke", out=tmp_path / "r", direct=True,
                          log=log.append)
    assert report.skipped == [f"synthetic/smoke/{s} fold 1 seed 0" for s in coders]
    assert [f[0] for f in report.failed] == ["synthetic/smoke/fusionnet fold 1 seed 0"] and not report.done
    assert "4 best.pt checkpoint(s) missing" in report.failed[0][1]
    assert "delete those records" in report.failed[0][1]             # the grid would skip them
    assert log[0].startswith("adding fcn_mel, fcn_gam, fcn_cqt, fcn_raw")


def test_protocol_folds():
    from mvbook.data import load_dataset
    from mvbook.notebooks import protocol_folds
    assert list(protocol_folds("esc10")) == [1, 2, 3, 4, 5] and list(protocol_folds("gtzan")) == list(range(1, 11))
    assert list(protocol_folds("dcase2016")) == [1]
    assert len(protocol_folds("synthetic")) == load_dataset("synthetic").n_folds
