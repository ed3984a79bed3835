"""Misfiled records and unclear messages of issue 43 (cases 7 and 9): symlinked
record folders are read, unreadable records are named (or skipped with
--skip-bad), paths that would misplace records are refused before any work, an
unwritable --out is found before training, a data root holding no dataset is
not a success, a notebook without its parameters cell is refused up front."""
import json
import os
import shutil
from pathlib import Path

import pytest

from mvbook.__main__ import main
from mvbook.train import train

REPO = Path(__file__).resolve().parents[1]
TABLE = ["table", "--dataset", "synthetic", "--preset", "smoke"]
GRID = ["grid", "--dataset", "synthetic", "--preset", "smoke", "--systems", "mel", "--folds", "1", "--seed", "1",
        "--no-progress", "--epochs", "1"]


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    out = tmp_path_factory.mktemp("done") / "out"
    return train("synthetic", "mel", 1, "smoke", seed=1, epochs=1, out=out, progress=False,
                 cache_dir=tmp_path_factory.getbasetemp() / "cache-faults")


def test_records_under_a_symlinked_folder_are_read_and_a_loop_ends(tmp_path, done, capsys):
    real = tmp_path / "elsewhere/mel"
    real.mkdir(parents=True)
    shutil.copy(done["path"], real / "fold1-seed1.json")
    (tmp_path / "res/synthetic/smoke").mkdir(parents=True)
    (tmp_path / "res/synthetic/smoke/mel").symlink_to(real)
    (real / "loop").symlink_to(tmp_path / "res")
    assert main(TABLE + ["--results", str(tmp_path / "res"), "--folds"]) == 0
    assert f"{100 * done['system_accuracy']:.2f}" in capsys.readouterr().out


def test_an_unreadable_record_or_a_folder_named_json_is_named_or_skipped(tmp_path, done, capsys):
    folder = tmp_path / "synthetic/smoke/mel"
    folder.mkdir(parents=True)
    shutil.copy(done["path"], folder / "fold1-seed1.json")
    (folder / "fold2-seed1.json").mkdir()
    assert main(TABLE + ["--results", str(tmp_path)]) == 2
    why = f"not a valid results record ({folder / 'fold2-seed1.json'}): Is a directory"
    assert capsys.readouterr().err == f"error: {why}\n"
    assert main(TABLE + ["--results", str(tmp_path), "--skip-bad"]) == 0
    assert capsys.readouterr().err == f"warning: skipped {why}\n"


def test_table_on_no_such_folder_says_so(tmp_path, capsys):
    assert main(TABLE + ["--results", str(tmp_path / "NOSUCH")]) == 2
    assert capsys.readouterr().err == (f"error: no such folder of records ({tmp_path / 'NOSUCH'}): see --results "
                                       "(where train and grid --out write them)\n")


@pytest.mark.parametrize("out, text", [
    ("", "an empty folder name ('') would put records and checkpoints in the current folder; pass a folder "
         "(--out .  for the current one)"),
    ("OUT/run_{seed}", "out 'OUT/run_{seed}': papermill reads {…} in a notebook's path as a parameter, so the "
                       "notebook and the record would go to different folders; use a path without braces, or "
                       "--direct")])
def test_an_out_that_would_misplace_records_is_refused_before_any_work(tmp_path, monkeypatch, capsys, out, text):
    monkeypatch.chdir(tmp_path)
    assert main(GRID + ["--out", out]) == 2
    assert capsys.readouterr().err == f"error: {text}\n" and not list(tmp_path.iterdir())


def test_a_notebook_without_its_parameters_cell_is_refused_before_any_cell(tmp_path, monkeypatch, capsys):
    text = (REPO / "mvbook/notebooks/training.md").read_text()
    assert "tags: [parameters]" in text
    nb = tmp_path / "nb.md"
    nb.write_text(text.replace("tags: [parameters]", "tags: []"))
    monkeypatch.chdir(tmp_path)
    assert main(GRID + ["--out", str(tmp_path / "o"), "--notebook", str(nb)]) == 2
    assert capsys.readouterr().err == (
        f"error: training notebook {nb} has no cell tagged `parameters`: papermill would run its defaults instead "
        "of each cell's run (and write them where those defaults say); tag the cell that sets dataset, system, "
        "fold … `parameters`\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nb.md"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_unwritable_out_is_found_before_training(tmp_path, capsys):
    (tmp_path / "ro").mkdir(mode=0o500)
    assert main(["train", "--system", "mel", "--preset", "smoke", "--out", str(tmp_path / "ro"), "--no-progress"]) == 2
    assert capsys.readouterr().err.startswith("error: cannot make the folder, Permission denied")


def test_an_unwritable_out_is_found_before_training_as_root_too(tmp_path, monkeypatch, capsys):
    import mvbook.records
    real = os.access
    monkeypatch.setattr(mvbook.records.os, "access", lambda p, m: False if "ro" in Path(p).parts else real(p, m))
    (tmp_path / "ro/synthetic/smoke/mel").mkdir(parents=True)
    assert main(["train", "--system", "mel", "--preset", "smoke", "--out", str(tmp_path / "ro"), "--no-progress",
                 "--cache-dir", str(tmp_path / "c")]) == 2
    assert capsys.readouterr().err == (f"error: folder is not writable ({tmp_path}/ro/synthetic/smoke/mel): records "
                                       "and checkpoints go there; pass another --out (or --checkpoints)\n")
    assert not (tmp_path / "c").exists()                                    # nothing extracted, nothing trained


def test_a_data_root_holding_no_dataset_is_not_a_success(tmp_path, capsys):
    assert main(["datasets", "--data-root", str(tmp_path), "--check", "--no-progress"]) == 2
    assert capsys.readouterr().err == (f"error: data root {tmp_path} holds no dataset to check (nothing checked): "
                                       "pass the folder that holds ESC-50/, GTZAN/ or "
                                       "TUT-acoustic-scenes-2016-development/\n")


def test_a_record_that_cannot_be_written_at_the_end_says_the_run_is_kept_and_how_to_record_it(tmp_path, monkeypatch,
                                                                                               capsys):
    import mvbook.train

    def denied(record, path):
        raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setattr(mvbook.train, "write_record", denied)
    args = ["train", "--system", "mel", "--preset", "smoke", "--epochs", "1", "--seed", "1", "--out",
            str(tmp_path / "o"), "--no-progress", "--cache-dir", str(tmp_path.parent / "cache-faults")]
    assert main(args) == 2
    rec = tmp_path / "o/synthetic/smoke/mel/fold1-seed1.json"
    ck = tmp_path / "o/checkpoints/synthetic/smoke/mel/fold1-seed1/checkpoint.pt"
    assert capsys.readouterr().err == (
        f"error: cannot write the record, Permission denied ({rec}): this run finished and is not recorded; its "
        f"checkpoint ({ck}) is kept, so the same command records it without training again once the folder is "
        "writable (or with --out another folder and the same --checkpoints)\n")
    monkeypatch.undo()
    assert main(args) == 0 and rec.is_file()
    steps = json.loads(rec.read_text())["config"]["steps"]
    out = capsys.readouterr().out                                     # recorded without training again:
    assert out.startswith(f"resuming {ck} at step {steps}") and out[len(f"resuming {ck} at step {steps}")] in "\n:"
