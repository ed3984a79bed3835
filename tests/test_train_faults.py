"""Faults a training run meets, and the exact behaviour for each: damaged
checkpoints, a second writer, a record of another configuration, impossible
settings, non-finite losses, strict records, a malformed record in a table."""
import json
from pathlib import Path

import pytest
import torch

from mvbook.__main__ import main
from mvbook.errors import DataError, RunConflictError
from mvbook.records import RunPaths, load_records, write_record
from mvbook.systems.base import BranchTraining
from mvbook.train import train


def _train(tmp_path, **kw):
    return train("synthetic", "mel", 1, "smoke", seed=1, progress=False,
                 cache_dir=tmp_path.parent / "cache-faults", **{"epochs": 1, "out": tmp_path / "out", **kw})


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("done")
    return tmp, _train(tmp)


def test_a_damaged_checkpoint_stops_with_its_name_and_fresh_starts_over(tmp_path, done):
    rec = _train(tmp_path)
    ck = RunPaths.of_record(rec).checkpoint
    good = ck.read_bytes()
    for damage in (b"", b"not a checkpoint at all", good[:1000]):       # empty, garbage, truncated
        ck.write_bytes(damage)
        with pytest.raises(RuntimeError, match="unreadable checkpoint") as e:
            _train(tmp_path)
        assert str(ck) in str(e.value) and "--fresh" in str(e.value)
    again = _train(tmp_path, fresh=True)
    assert again["curves"] == done[1]["curves"]


def test_a_record_of_another_configuration_is_not_replaced_without_fresh(tmp_path, done):
    _train(tmp_path)
    path = tmp_path / "out/synthetic/smoke/mel/fold1-seed1.json"
    before = path.read_text()
    with pytest.raises(RuntimeError, match="another configuration") as e:
        _train(tmp_path, epochs=2, checkpoints=tmp_path / "other-ck")
    assert "epochs" in str(e.value) and "--fresh" in str(e.value)
    assert path.read_text() == before
    assert _train(tmp_path, epochs=2, checkpoints=tmp_path / "other-ck", fresh=True)["config"]["epochs"] == 2


def test_a_second_train_of_a_running_run_fails_at_once(tmp_path, done):
    seen = []

    def try_again(info):
        if not seen:
            with pytest.raises(RuntimeError, match="run in progress") as e:
                _train(tmp_path)
            seen.append(str(e.value))

    _train(tmp_path, callback=try_again)
    assert seen and "PID " in seen[0]


def test_a_non_finite_loss_stops_the_run_naming_step_and_keeps_the_checkpoint(tmp_path, monkeypatch, done):
    loss = BranchTraining.loss
    calls = []

    def poisoned(self, batch, weights):
        calls.append(1)
        value = loss(self, batch, weights)
        return value * float("nan") if len(calls) == 3 else value

    monkeypatch.setattr(BranchTraining, "loss", poisoned)
    with pytest.raises(RuntimeError, match="non-finite training loss between steps 0 and ") as e:
        _train(tmp_path)
    assert "last good checkpoint kept" in str(e.value)
    assert not list((tmp_path / "out").rglob("fold1-seed1.json"))
    ck = torch.load(RunPaths(tmp_path / "out", "synthetic", "smoke", "mel", 1, 1).checkpoint, weights_only=True)
    assert ck["state"]["step"] == 0                                  # the evaluation before the fault


def test_records_are_strict_json(tmp_path):
    with pytest.raises(ValueError, match="non-finite"):
        write_record({"accuracy": float("nan")}, tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()


def _bad_trees(tmp_path, done) -> dict:
    good = json.loads(Path(done[1]["path"]).read_text())
    text = Path(done[1]["path"]).read_text()
    cases = {"nan": text.replace('"system_accuracy": ', '"system_accuracy": NaN, "x": ', 1),
             "array": "[1, 2, 3]", "missing": json.dumps({k: v for k, v in good.items() if k != "test"}),
             "truncated": Path(done[1]["path"]).read_text()[:500],
             "percent": json.dumps(good | {"accuracy": {"mel": 7.5}, "system_accuracy": 7.5}),
             "string": json.dumps(good | {"accuracy": {"mel": "0.75"}})}
    trees = {}
    for name, text in cases.items():
        root = tmp_path / name / "synthetic/smoke"
        (root / "mel").mkdir(parents=True)
        (root / "mel/fold1-seed1.json").write_text(Path(done[1]["path"]).read_text())
        (root / "mel/fold2-seed1.json").write_text(text)
        trees[name] = tmp_path / name
    return trees


def test_table_names_a_broken_record_or_skips_it_with_a_warning(tmp_path, done, capsys):
    for name, root in _bad_trees(tmp_path, done).items():
        args = ["table", "--results", str(root), "--dataset", "synthetic", "--preset", "smoke"]
        if name == "array":                                  # not a record at all: ignored
            assert main(args) == 0 and len(load_records(root)) == 1
            continue
        assert main(args) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("error: not a valid results record") and "fold2-seed1.json" in err, name
        assert main(args + ["--skip-bad"]) == 0
        captured = capsys.readouterr()
        assert "warning: skipped" in captured.err and "Mel" in captured.out


@pytest.mark.parametrize("args, text", [(["--epochs", "0"], "impossible setting epochs = 0"),
                                        (["--epochs", "-5"], "impossible setting epochs = -5")])
def test_impossible_settings_are_an_error_line(tmp_path, capsys, args, text):
    assert main(["train", "--system", "mel", "--preset", "smoke", "--out", str(tmp_path), "--no-progress",
                 *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and text in err and not list(tmp_path.rglob("*.json"))


def test_out_pointing_at_a_file_is_an_error_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["train", "--system", "mel", "--preset", "smoke", "--out", str(tmp_path / "file"),
                 "--no-progress", "--epochs", "1"]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_a_record_written_by_another_configuration_meanwhile_is_not_replaced(tmp_path):
    """Two runs of one cell with other configurations, one --out, separate
    --checkpoints: the one finishing last refuses to replace the other's record."""
    path = tmp_path / "out/synthetic/smoke/mel/fold1-seed1.json"
    other = []

    def meanwhile(info):
        if not other:
            other.append(_train(tmp_path, epochs=2, checkpoints=tmp_path / "c2"))

    with pytest.raises(RunConflictError) as e:
        _train(tmp_path, checkpoints=tmp_path / "c1", callback=meanwhile)
    assert str(e.value) == (
        f"a record of this run with another configuration exists ({path}): it differs in epochs, preset, steps; "
        "pass --fresh (fresh=True) to replace it, or --out another folder to keep both; this run finished and is "
        f"not recorded: its checkpoint ({tmp_path / 'c1/synthetic/smoke/mel/fold1-seed1'}) is kept, so the same "
        "command with --out another folder (and the same --checkpoints) records it without training again")
    assert json.loads(path.read_text())["config"]["epochs"] == 2
    kept = _train(tmp_path, checkpoints=tmp_path / "c1", out=tmp_path / "elsewhere")   # no training again
    assert kept["config"]["epochs"] == 1 and kept["curves"]["step"][-1] == kept["config"]["steps"]


def test_a_negative_seed_is_refused_naming_it_before_any_work(tmp_path, capsys):
    assert main(["train", "--system", "mel", "--preset", "smoke", "--out", str(tmp_path), "--no-progress",
                 "--seed", "-1"]) == 2
    assert capsys.readouterr().err == "error: --seed -1: a seed is an integer 0 or above\n"
    assert not list(tmp_path.iterdir())                                 # no lock folder, nothing


@pytest.mark.parametrize("args, text", [
    (["--epochs", "0"], "error: preset 'smoke': impossible setting epochs = 0 (each must be positive; "
                        "reference 'best' or 'initial')\n"),
    (["--seeds", "0", "-1"], "error: --seeds -1: a seed is an integer 0 or above\n")])
def test_impossible_grid_arguments_are_one_error_line_before_any_cell(tmp_path, capsys, args, text):
    assert main(["grid", "--dataset", "synthetic", "--preset", "smoke", "--systems", "mel", "--folds", "1",
                 "--direct", "--out", str(tmp_path), "--no-progress", *args]) == 2
    out, err = capsys.readouterr()
    assert err == text and out == "" and not list(tmp_path.iterdir())


def test_a_full_disk_while_saving_a_checkpoint_is_named(tmp_path, monkeypatch, capsys):
    import errno
    import io

    import mvbook.records as records

    class Full(io.FileIO):                          # the disk fills up after 1000 bytes
        def write(self, b):
            if self.tell() + len(b) > 1000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(b)

    monkeypatch.setattr(records.os, "fdopen", lambda fd, mode: Full(fd, "wb"))
    path = tmp_path / "ck" / "checkpoint.pt"
    with pytest.raises(records.NoSpaceError) as e:
        records.atomic_torch_save({"w": torch.zeros(10_000)}, path)
    assert str(e.value) == (f"no space left on device writing {path}: free space there and run the same command "
                            "again (a run resumes from its last checkpoint)")
    assert not list(path.parent.iterdir())                                  # no temporary left
    assert main(["train", "--system", "mel", "--preset", "smoke", "--epochs", "1", "--out", str(tmp_path / "o"),
                 "--no-progress", "--cache-dir", str(tmp_path.parent / "cache-faults")]) == 2
    ck = tmp_path / "o/checkpoints/synthetic/smoke/mel/fold1-seed0"
    assert capsys.readouterr().err.startswith(f"error: no space left on device writing {ck}/")


SIGTERM_DURING_A_SAVE = """
import os, signal, sys, torch
from mvbook.train import train
real, calls = torch.save, []

def save(obj, f, *a, **k):              # SIGTERM (SLURM at walltime) while the third file is half-written
    calls.append(1)
    real(obj, f, *a, **k)
    if len(calls) == 3:
        os.kill(os.getpid(), signal.SIGTERM)

torch.save = save
train("synthetic", "mel", 1, "smoke", seed=1, epochs=2, out=sys.argv[1], cache_dir=sys.argv[2], progress=False)
"""


def test_sigterm_while_a_checkpoint_is_written_leaves_no_temporary_and_resume_sweeps_old_ones(tmp_path):
    import signal
    import subprocess
    import sys
    out = tmp_path / "out"
    killed = subprocess.run([sys.executable, "-c", SIGTERM_DURING_A_SAVE, str(out),
                             str(tmp_path.parent / "cache-faults")],
                            capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGTERM and "Traceback" not in killed.stderr, killed.stderr
    folder = out / "checkpoints/synthetic/smoke/mel/fold1-seed1"
    assert (folder / "checkpoint.pt").exists() and not list(folder.glob(".*.tmp"))
    stale = folder / ".best.pt.k3x9q_ab.tmp"                            # as a SIGKILL leaves one
    stale.write_bytes(b"half")
    seen = []
    rec = _train(tmp_path, epochs=2, callback=lambda info: seen.append(info["step"]))
    assert not stale.exists() and seen and seen[0] > 0                   # resumed, not started over
    assert rec["curves"]["step"][-1] == rec["config"]["steps"]


def test_ctrl_c_is_one_line(tmp_path, monkeypatch, capsys):
    import mvbook.train

    def interrupted(**kw):
        raise KeyboardInterrupt
    monkeypatch.setattr(mvbook.train, "train", interrupted)
    assert main(["train", "--system", "mel", "--preset", "smoke", "--out", str(tmp_path), "--no-progress"]) == 130
    assert capsys.readouterr().err == "interrupted; the same command resumes\n"


def test_a_record_whose_accuracy_is_not_a_fraction_is_named_never_averaged(tmp_path, done, capsys):
    trees = _bad_trees(tmp_path, done)
    for name, why in (("percent", "accuracy.mel is 7.5, outside [0, 1] (accuracies are stored as fractions); "
                                  "system_accuracy is 7.5, outside [0, 1] (accuracies are stored as fractions)"),
                      ("string", "accuracy.mel is '0.75', not a number")):
        args = ["table", "--results", str(trees[name]), "--dataset", "synthetic", "--preset", "smoke", "--folds"]
        assert main(args) == 2
        path = trees[name] / "synthetic/smoke/mel/fold2-seed1.json"
        assert capsys.readouterr().err == f"error: not a valid results record ({path}): {why}\n"
        assert main(args + ["--skip-bad"]) == 0
        out, err = capsys.readouterr()
        assert err == f"warning: skipped not a valid results record ({path}): {why}\n"
        mel = next(line for line in out.splitlines() if line.startswith("Mel"))
        assert f"{100 * done[1]['system_accuracy']:.2f}" in mel and "±" not in mel     # one run, the good one


def test_skip_bad_with_only_bad_records_warns_once_and_fails(tmp_path, done, capsys):
    root = _bad_trees(tmp_path, done)["string"]
    (root / "synthetic/smoke/mel/fold1-seed1.json").unlink()            # the good record: none is left
    path = root / "synthetic/smoke/mel/fold2-seed1.json"
    assert main(["table", "--results", str(root), "--dataset", "synthetic", "--preset", "smoke", "--skip-bad"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"warning: skipped not a valid results record ({path}): accuracy.mel is '0.75', not a number",
                   f"error: no records of synthetic at preset smoke ({root}): it holds none; "
                   "see --results, --dataset and --preset"]


def _tamper(ck: Path) -> None:
    """Overwrite 16 float32 values of the largest tensor stored in the checkpoint's zip, in place (same size)."""
    import struct
    import zipfile

    import numpy as np
    with zipfile.ZipFile(ck) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = bytearray(ck.read_bytes())
    n, extra = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + n + extra
    raw[start:start + 64] = np.arange(16, dtype=np.float32).tobytes()
    ck.write_bytes(bytes(raw))


def test_a_tampered_checkpoint_fails_its_checksum(tmp_path):
    rec = _train(tmp_path)
    ck = RunPaths.of_record(rec).checkpoint
    _tamper(ck)
    with pytest.raises(DataError) as e:
        _train(tmp_path)
    assert str(e.value) == (f"checkpoint fails its checksum ({ck}): its contents changed after it was written "
                            "(damaged or edited), so it cannot be resumed; start the run over with train's --fresh "
                            f"(fresh=True), or delete {ck.parent} (a grid then starts the run over)")


def test_a_run_resumed_on_other_clip_contents_is_refused(tmp_path):
    from mvbook.checkpoints import load_checkpoint, save_checkpoint
    rec = _train(tmp_path)
    path = RunPaths.of_record(rec).checkpoint
    ck = load_checkpoint(path, torch.device("cpu"))
    state, _ = ck.pop("state"), ck.pop("checksum")
    key = sorted(ck["clip_contents"])[3]
    ck["clip_contents"][key] = "sha256:" + "0" * 64                     # as another tree's clip would be
    save_checkpoint(path, state, **ck)
    with pytest.raises(DataError) as e:
        _train(tmp_path)
    assert str(e.value) == (f"{path} was trained on other clip contents than the data root holds now: 1 clip(s) "
                            f"differ ({key}); resume it with the data root it began on (--data-root), or start the "
                            f"run over with train's --fresh (fresh=True), or delete {path.parent} (a grid then "
                            "starts the run over)")
