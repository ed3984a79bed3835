"""Interrupted runs (issue 43, cases 3 and 6): an interrupted ``--fresh`` run
resumes from its checkpoint, a resumed run says so and from which step, SIGTERM
while ``best.pt`` is written is one "interrupted" line, and Ctrl-C promises a
resume only where there is one."""
import signal
import subprocess
import sys

import pytest

from mvbook.__main__ import main
from mvbook.errors import RunConflictError
from mvbook.train import train


def _train(tmp_path, **kw):
    return train("synthetic", "mel", 1, "smoke", seed=1, progress=False,
                 cache_dir=tmp_path.parent / "cache-faults", **{"epochs": 1, "out": tmp_path / "out", **kw})


def _stop_at(step):
    def callback(info):
        if info["step"] >= step:
            raise KeyboardInterrupt
    return callback


def test_an_interrupted_fresh_run_resumes_from_its_checkpoint(tmp_path, capsys):
    _train(tmp_path)                                                  # the old record: 1 epoch
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path, epochs=3, fresh=True, callback=_stop_at(16))
    ck = tmp_path / "out/checkpoints/synthetic/smoke/mel/fold1-seed1/checkpoint.pt"
    capsys.readouterr()
    with pytest.raises(RunConflictError) as e:                       # without --fresh: refused, and says what resumes
        _train(tmp_path, epochs=3)
    assert str(e.value).endswith(f"--out another folder to keep both (this run's checkpoint, {ck}, is resumed by "
                                 f"either: with --out another folder, pass --checkpoints {tmp_path / 'out'}"
                                 "/checkpoints too)")
    seen = []
    rec = _train(tmp_path, epochs=3, fresh=True, callback=lambda info: seen.append(info["step"]))
    assert seen[0] == 24 and rec["curves"]["step"][:3] == [0, 8, 16]             # 16 steps kept, not thrown away
    out = capsys.readouterr().out                    # (": trained so far by …" where main moved meanwhile)
    assert out.startswith(f"resuming {ck} at step 16") and out[len(f"resuming {ck} at step 16")] in "\n:"
    assert rec["config"]["steps"] == rec["curves"]["step"][-1]
    assert [t["from_step"] for t in rec["provenance"]["trained_by"]] == [0, 16]


def test_fresh_on_a_finished_recorded_run_trains_it_again(tmp_path, capsys):
    _train(tmp_path)
    seen = []
    _train(tmp_path, fresh=True, callback=lambda info: seen.append(info["step"]))
    assert seen[0] == 0 and "resuming" not in capsys.readouterr().out


SIGTERM_DURING_BEST = """
import os, signal, sys, torch
from mvbook.train import train
real, calls = torch.save, []

class Slow:                              # SIGTERM (SLURM at walltime) in the middle of best.pt's bytes
    def __init__(self, f):
        self.f, self.n = f, 0
    def write(self, b):
        self.n += 1
        if self.n == 4:
            os.kill(os.getpid(), signal.SIGTERM)
        return self.f.write(b)
    def flush(self):
        return self.f.flush()

def save(obj, f, *a, **k):
    calls.append(1)
    real(obj, Slow(f) if len(calls) == 3 else f, *a, **k)      # the 3rd file: best.pt of the second evaluation

torch.save = save
sys.argv = ["python -m mvbook", "train", "--system", "mel", "--preset", "smoke", "--seed", "1", "--epochs", "2",
            "--no-progress", "--out", sys.argv[1], "--cache-dir", sys.argv[2]]
from mvbook.__main__ import main
sys.exit(main())
"""


def test_sigterm_while_best_pt_is_written_is_one_interrupted_line(tmp_path):
    out = tmp_path / "out"
    killed = subprocess.run([sys.executable, "-c", SIGTERM_DURING_BEST, str(out),
                             str(tmp_path.parent / "cache-faults")], capture_output=True, text=True, timeout=600)
    ck = out / "checkpoints/synthetic/smoke/mel/fold1-seed1"
    assert killed.returncode == -signal.SIGTERM
    assert killed.stderr == ("interrupted (SIGTERM); the same command resumes from the run's last checkpoint "
                             f"({ck}/checkpoint.pt)\n")
    assert not list(ck.glob(".*.tmp")) and (ck / "best.pt").is_file()


@pytest.mark.parametrize("command, text", [
    ("features", "interrupted; nothing was cached: the same command extracts the views again"),
    ("verify", "interrupted; nothing is kept: the same command verifies every record again"),
    ("train", "interrupted; the same command resumes")])
def test_ctrl_c_promises_a_resume_only_where_there_is_one(tmp_path, monkeypatch, capsys, command, text):
    import mvbook.train
    import mvbook.verify
    import mvbook.views.cache

    def interrupted(*a, **kw):
        raise KeyboardInterrupt
    for module, name in ((mvbook.views.cache, "load_views"), (mvbook.verify, "verify"), (mvbook.train, "train")):
        monkeypatch.setattr(module, name, interrupted)
    args = {"features": ["features", "--cache-dir", str(tmp_path)], "verify": ["verify", str(tmp_path / "r.json")],
            "train": ["train", "--out", str(tmp_path), "--no-progress"]}[command]
    assert main(args) == 130
    assert capsys.readouterr().err == text + "\n"
