"""Records on disk (mvbook.records): atomic writes, loading, a run's paths,
provenance and the grid command that makes a record."""
import json
import shlex
from pathlib import Path

import pytest
from test_results import fake

from mvbook.records import RunPaths, code_version, grid_command, load_records, record_path, write_record


def test_write_and_load_records(tmp_path):
    r = fake("mel", 3, 0.5)
    path = write_record(r, tmp_path / record_path("esc10", "cpu", "mel", 3, 0))
    assert path.name == "fold3-seed0.json" and json.loads(path.read_text())["fold"] == 3
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    (tmp_path / "other.json").write_text("{}")           # not a record: ignored
    assert [x["fold"] for x in load_records(tmp_path, "esc10", "cpu")] == [3]
    assert load_records(tmp_path, "esc10", "paper") == []


def test_failed_write_leaves_the_old_record(tmp_path):
    path = write_record(fake("mel", 1, 0.5), tmp_path / "r.json")
    with pytest.raises(TypeError):
        write_record({"bad": object()}, path)
    assert json.loads(path.read_text())["system_accuracy"] == 0.5
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_run_paths_one_layout_for_every_file(tmp_path):
    p = RunPaths(tmp_path / "out", "esc10", "cpu", "mel", 3, 1)
    assert p.record == tmp_path / "out/esc10/cpu/mel/fold3-seed1.json" == tmp_path / "out" / p.rel
    assert p.notebook == p.record.with_suffix(".ipynb")
    assert p.checkpoint == tmp_path / "out/checkpoints/esc10/cpu/mel/fold3-seed1/checkpoint.pt"
    assert p.best == p.checkpoint.with_name("best.pt")
    elsewhere = RunPaths(tmp_path / "out", "esc10", "cpu", "mel", 3, 1, tmp_path / "ck")
    assert elsewhere.checkpoint_dir == tmp_path / "ck/esc10/cpu/mel/fold3-seed1"
    rec = fake("mel", 3, 0.5) | {"seed": 1, "path": str(p.record)}
    assert RunPaths.of_record(rec) == p
    assert RunPaths.of_record(rec, tmp_path / "ck").checkpoint_dir == elsewhere.checkpoint_dir


def test_grid_command_round_trips_through_the_shell():
    cmd = grid_command("esc10", "cpu", ["mel", "fcn_raw"], [1, 2], [0], Path("my results"), epochs=3)
    assert cmd.startswith("python -m mvbook grid --dataset esc10 --preset cpu --systems mel fcn_raw")
    argv = shlex.split(cmd)
    assert argv[argv.index("--out") + 1] == "my results" and argv[argv.index("--epochs") + 1] == "3"
    assert argv[argv.index("--folds") + 1:argv.index("--seeds")] == ["1", "2"]
    assert grid_command("esc10", "cpu") == "python -m mvbook grid --dataset esc10 --preset cpu"


def test_code_version_names_a_commit():
    v = code_version()
    assert set(v) == {"git_commit", "git_dirty"} and isinstance(v["git_dirty"], bool)
    assert v["git_commit"] == "unknown" or len(v["git_commit"]) == 40


def test_a_broken_json_file_is_named(tmp_path):
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="bad.json"):
        load_records(tmp_path)


def test_the_recorded_command_holds_no_machine_path():
    from mvbook.records import REPO, command_line
    argv = ["/usr/lib/python3/site-packages/ipykernel_launcher.py", "-f", "/tmp/kernel-1.json",
            str(REPO / "mvbook" / "__main__.py"), "train", "--out", "runs"]
    assert command_line(argv) == "…/ipykernel_launcher.py -f …/kernel-1.json mvbook/__main__.py train --out runs"
