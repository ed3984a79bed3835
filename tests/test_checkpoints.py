"""Checkpoints that cannot run code or lie, and one writer per run (mvbook.checkpoints)."""
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from mvbook.checkpoints import CheckpointError, RunLock, load_checkpoint, save_checkpoint


def _state():
    best = {"step": 4, "weights": {"mv": 1.0}, "test_probs": {"mv": np.array([[0.25, 0.75]], dtype=np.float32)}}
    return {"step": 4, "curves": {"step": [0, 4]}, "best": best, "elapsed": 1.5}


def test_round_trip_with_tensors_and_plain_types_only(tmp_path):
    path = tmp_path / "checkpoint.pt"
    rng = np.random.default_rng([3, 0])
    save_checkpoint(path, _state(), config={"a": [1, 2]}, model={"w": torch.ones(2)}, optimizer={"state": {}},
                    numpy_rng=rng.bit_generator.state)
    ck = load_checkpoint(path, torch.device("cpu"))
    assert ck["config"] == {"a": [1, 2]} and torch.equal(ck["model"]["w"], torch.ones(2))
    P = ck["state"]["best"]["test_probs"]["mv"]
    assert isinstance(P, np.ndarray) and P.dtype == np.float32 and P.tolist() == [[0.25, 0.75]]
    assert ck["numpy_rng"] == rng.bit_generator.state                 # PCG64's 128-bit integers survive
    torch.load(path, weights_only=True)                               # nothing but allowed types


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


@pytest.mark.parametrize("damage", ["empty", "truncated", "payload", "foreign", *(f"garbage{i}" for i in range(16))])
def test_a_damaged_or_foreign_checkpoint_is_named_and_runs_no_code(tmp_path, damage, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, _state(), config={}, model={}, optimizer={})
    data = path.read_bytes()
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage.startswith("garbage"):           # bytes that make the unpickler fail in different ways
        path.write_bytes(random.Random(int(damage[7:])).randbytes(4096))
    elif damage == "payload":
        torch.save({"config": {}, "model": {}, "optimizer": {}, "state": _Payload()}, path)
    else:
        torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path, torch.device("cpu"))
    assert str(path) in str(e.value) and "--fresh" in str(e.value)
    assert not (tmp_path / "PWNED").exists()


def test_a_second_writer_of_a_run_fails_at_once_naming_the_holder(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom mvbook.checkpoints import RunLock\n"
        f"with RunLock({str(tmp_path)!r}):\n    print('locked', flush=True)\n    time.sleep(30)\n")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RuntimeError, match=f"PID {holder.pid} on "):
            with RunLock(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()
    with RunLock(tmp_path):                    # a killed holder leaves no stale lock
        assert (tmp_path / "lock").read_text().startswith(f"PID {os.getpid()}")
    assert (tmp_path / "lock").read_text() == ""


def test_numpy_arrays_of_older_checkpoints_still_load(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"config": {}, "model": {}, "optimizer": {}, "state": _state()}, path)   # posteriors as numpy
    ck = load_checkpoint(path, torch.device("cpu"))
    assert ck["state"]["best"]["test_probs"]["mv"].tolist() == [[0.25, 0.75]]
