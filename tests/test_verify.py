"""mvbook.verify and `python -m mvbook verify`: a fresh record repeats bit for bit,
an altered copy names what was altered, a damaged one cannot be verified, and
--at-commit runs the record's own commit (or says why it cannot)."""
import ast
import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mvbook.__main__ import main
from mvbook.config import get_preset
from mvbook.engines import rerun
from mvbook.records import REPO
from mvbook.train import train
from mvbook.verify import _pair, compare, environment_notes, rerun_arguments


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """A freshly trained smoke record (path, record)."""
    out = tmp_path_factory.mktemp("verify")
    rec = train("synthetic", "mel", 1, "smoke", seed=2, out=out / "runs", progress=False,
                cache_dir=out / "cache")
    return Path(rec["path"]), json.loads(Path(rec["path"]).read_text())


def _copy(tmp_path, rec, name="copy.json", **changes):
    rec = copy.deepcopy(rec)
    for where, value in changes.items():
        *keys, last = where.split("__")
        d = rec
        for k in keys:
            d = d[int(k)] if isinstance(d, list) else d[k]
        d[int(last) if isinstance(d, list) else last] = value
    path = tmp_path / name
    path.write_text(json.dumps(rec))
    return path


def _verify(capfd, *args):
    code = main(["verify", "--no-progress", *map(str, args)])
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_a_fresh_record_is_identical_and_an_altered_accuracy_is_named(smoke, tmp_path, capfd):
    path, rec = smoke
    acc = _copy(tmp_path, rec, accuracy__mel=rec["accuracy"]["mel"] + 1 / len(rec["test"]["labels"]))
    code, out, err = _verify(capfd, path, acc)
    lines = out.splitlines()
    assert code == 1 and len(lines) == 2
    assert lines[0].startswith(f"{path}: identical") and f"step {rec['best']['step']} selected" in lines[0]
    a, b = 100 * rec["accuracy"]["mel"] + 100 / len(rec["test"]["labels"]), 100 * rec["accuracy"]["mel"]
    assert lines[1].startswith(f"{acc}: differs; accuracy.mel: ")
    assert f"mel {a:.2f} → {b:.2f} (−{a - b:.2f})" in lines[1]              # a true minus sign
    assert "verifying" in err and "on cpu with" in err                 # said before the run


def test_the_first_altered_curve_value_or_posterior_is_named(smoke, tmp_path):
    """A rerun equals the record (the test above), so the record stands for its rerun here."""
    _, rec = smoke
    steps = rec["curves"]["step"]
    late = copy.deepcopy(rec)
    late["curves"]["loss"]["val"]["mel"][3] += 1e-12
    late["curves"]["accuracy"]["test"]["mel"][2] = 0.5
    first, _ = compare(late, rec)
    v = rec["curves"]["accuracy"]["test"]["mel"][2]
    assert first == f"curves.accuracy.test.mel at step {steps[2]}: {_pair(0.5, v)} (record vs rerun)"
    probs = copy.deepcopy(rec)
    probs["test"]["probs"]["mel"][4][1] += 1e-5
    first, deltas = compare(probs, rec)
    assert first.startswith(f"test.probs.mel of clip {rec['test']['keys'][4]}, class 1: ")
    assert deltas == f"step {rec['best']['step']} selected; test accuracy (%) mel {100 * rec['accuracy']['mel']:.2f}"
    best = copy.deepcopy(rec)
    best["best"]["step"] += 1
    assert compare(best, rec)[0].startswith(f"best.step: {rec['best']['step'] + 1!r} vs {rec['best']['step']!r}")
    short = copy.deepcopy(rec)
    for leaf in (short["curves"]["step"], short["curves"]["loss"]["train"]["mel"]):
        leaf.append(leaf[-1])
    assert compare(short, rec)[0] == (f"curves: {len(steps) + 1} evaluations in the record, "
                                      f"{len(steps)} in the rerun")


def test_quick_stops_at_the_first_evaluation(smoke, tmp_path, capfd):
    _, rec = smoke
    step = rec["curves"]["step"][1]
    early = _copy(tmp_path, rec, "early.json", curves__loss__train__mel__1=rec["curves"]["loss"]["train"]["mel"][1] * 2)
    late = _copy(tmp_path, rec, "late.json", curves__loss__train__mel__2=1.0, accuracy__mel=1.0)
    code, out, _ = _verify(capfd, "--quick", early, late)
    first, second = out.splitlines()
    assert code == 1
    assert first.startswith(f"{early}: differs; curves.loss.train.mel at step {step}: ")
    assert second == f"{late}: identical; quick: up to step {step}"


def test_records_that_cannot_be_verified_exit_2(smoke, tmp_path, capfd):
    _, rec = smoke
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(rec)[:-20])
    no_curves = {k: v for k, v in rec.items() if k != "curves"}
    (tmp_path / "no_curves.json").write_text(json.dumps(no_curves))
    unknown = _copy(tmp_path, rec, "unknown.json", system="no_such_system", config__system="no_such_system")
    no_data = _copy(tmp_path, rec, "no_data.json", dataset="esc10", config__dataset="esc10")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = _verify(capfd, "--data-root", empty, broken, tmp_path / "no_curves.json", unknown, no_data,
                             tmp_path / "absent.json")
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and out == "" and len(errors) == 5
    assert errors[0].startswith(f"error: {broken}: not a valid results record")
    assert "the record has no valid curves" in errors[1]
    assert "unknown system 'no_such_system'" in errors[2]
    assert str(empty) in errors[3] and "esc10" in errors[3].lower()
    assert errors[4] == f"error: {tmp_path / 'absent.json'}: no such file"


def test_rerun_arguments_recover_the_callers_overrides():
    p = get_preset("cpu", epochs=7, decay_at=(0.5,))
    rec = {"config": {"dataset": "esc10", "system": "mv_w6", "fold": 3, "seed": 1, "split_seed": 2,
                      "preset": p.to_dict() | {"window": 6, "decay_at": [0.5]}}}
    assert rerun_arguments(rec) == {"dataset": "esc10", "system": "mv_w6", "fold": 3, "seed": 1, "preset": "cpu",
                                    "epochs": 7, "decay_at": (0.5,), "split_seed": 2, "seed_scheme": "shared"}


def test_environment_differences_are_stated(smoke):
    import torch
    _, rec = smoke
    assert environment_notes(rec, "cpu") == []
    prov = rec["provenance"]
    trained_by = [{"git_commit": "a"}, {"git_commit": "b"}]
    other = rec | {"provenance": {k: v for k, v in prov.items() if k != "torch_threads"}
                   | {"torch": "1.0", "cpu_capability": "VSX", "trained_by": trained_by}}
    notes = environment_notes(other, "cpu", {"git_commit": "f" * 40, "git_dirty": False}, {"torch": "0.1"})
    assert f"recorded with torch 1.0, this is torch {torch.__version__}" in notes
    assert any("does not state its thread count" in n for n in notes)
    assert any(n.startswith("torch's CPU kernels: VSX in the record, ") for n in notes)
    assert any("resumed with other code" in n for n in notes)
    assert any(f"this code is {'f' * 7}" in n for n in notes)
    assert any("pins torch 0.1" in n for n in notes)
    assert _pair(2.296771014178241, 2.2967723655700684) == "2.29677101 vs 2.29677237"


# --- --at-commit -----------------------------------------------------------------------------

def _git(cwd, *args):
    return subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.org", *args], cwd=cwd,
                          capture_output=True, text=True, check=True).stdout.strip()


def test_at_commit_refuses_a_dirty_record_and_outside_a_clone(smoke, tmp_path, capfd, monkeypatch):
    _, rec = smoke
    dirty = _copy(tmp_path, rec, "dirty.json", provenance__git_dirty=True)
    clean = _copy(tmp_path, rec, "clean.json", provenance__git_dirty=False, provenance__git_commit="a" * 40)
    monkeypatch.chdir(tmp_path)
    code, out, err = _verify(capfd, "--at-commit", dirty, clean)
    assert code == 2 and out == ""
    assert f"error: {dirty}: --at-commit: the record was made from uncommitted changes" in err
    assert f"error: {clean}: --at-commit needs a git clone of mvbook: {tmp_path} is not inside one" in err


@pytest.mark.skipif(shutil.which("git") is None or not (REPO / ".git").exists(), reason="needs git and a clone")
def test_at_commit_runs_the_records_own_commit(tmp_path, capfd, monkeypatch):
    """A commit of a test clone trains a smoke record; verify --at-commit repeats it
    with that commit's code (in a worktree it removes afterwards)."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--sparse", str(REPO), str(clone)], check=True)
    _git(clone, "sparse-checkout", "set", "mvbook")
    (clone / "README.md").write_text((clone / "README.md").read_text() + "\nA commit only this clone has.\n")
    _git(clone, "commit", "--quiet", "-am", "test: a commit of the clone")
    head = _git(clone, "rev-parse", "HEAD")
    env = dict(os.environ, PYTHONPATH=str(clone))
    subprocess.run([sys.executable, "-m", "mvbook", "train", "--dataset", "synthetic", "--system", "cqt",
                    "--preset", "smoke", "--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache"),
                    "--no-progress"], cwd=clone, env=env, check=True, capture_output=True)
    path = tmp_path / "runs" / "synthetic" / "smoke" / "cqt" / "fold1-seed0.json"
    assert json.loads(path.read_text())["provenance"]["git_commit"] == head
    monkeypatch.chdir(clone)
    code, out, err = _verify(capfd, "--quick", "--at-commit", "--cache-dir", tmp_path / "cache", path)
    assert (code, out) == (0, f"{path}: identical; quick: up to step 8\n"), err
    assert f"by commit {head[:7]}" in err
    assert _git(clone, "worktree", "list").count("\n") == 0          # the temporary worktree is gone


# --- the rerun process (mvbook.engines.rerun) ----------------------------------------------

STAND_IN_TRAIN = """
import json, os, torch
class MvbookError(Exception): pass
class DataError(MvbookError, ValueError): pass
def train(dataset, out, callback=None, progress=True, **kw):   # no seed_scheme: a commit from before the schemes
    open(os.path.join(out, "called.json"), "w").write(json.dumps({"kw": kw, "threads": torch.get_num_threads()}))
    if dataset == "quick":
        for step in (0, 8, 16):
            callback({"step": step, "curves": {"step": list(range(0, step + 1, 8))}})
    if dataset in ("diagnosed", "bug", "crash"):
        raise {"diagnosed": DataError("no clips"), "bug": RuntimeError("a bug"), "crash": KeyError("x")}[dataset]
    return {"path": os.path.join(out, "record.json")}
"""


def _run_driver(tmp_path, dataset, **extra):
    """The driver run by its path, as verify runs it, on a tree whose mvbook holds only a stand-in train."""
    tree = tmp_path / "tree"
    (tree / "mvbook").mkdir(parents=True, exist_ok=True)
    (tree / "mvbook" / "__init__.py").write_text("")
    (tree / "mvbook" / "train.py").write_text(STAND_IN_TRAIN)
    result = tmp_path / "result.json"
    result.unlink(missing_ok=True)
    payload = {"dataset": dataset, "out": str(tmp_path), "seed_scheme": "shared", "threads": 2, "quick": False,
               "result": str(result), **extra}
    proc = subprocess.run([sys.executable, "-P", str(rerun.PATH), json.dumps(payload)], cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(tree)), capture_output=True, text=True, timeout=300)
    called = json.loads((tmp_path / "called.json").read_text())
    return proc, json.loads(result.read_text()) if result.exists() else None, called


def test_the_driver_imports_only_train_of_the_tree_it_runs():
    tree = ast.parse(rerun.PATH.read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert [m for m in names if m.split(".")[0] == "mvbook"] == ["mvbook.train"]
    assert not any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(tree))


def test_the_driver_runs_any_trees_train_and_answers(tmp_path):
    proc, out, called = _run_driver(tmp_path, "done")
    assert proc.returncode == 0 and out == {"record": str(tmp_path / "record.json")}, proc.stderr
    assert "seed_scheme" not in called["kw"] and called["threads"] == 2      # the old train knows one scheme
    _, out, called = _run_driver(tmp_path, "done", seed_scheme="per_fold", threads=1)
    assert called["kw"]["seed_scheme"] == "per_fold" and called["threads"] == 1
    _, out, _ = _run_driver(tmp_path, "quick", quick=True)
    assert out == {"curves": {"step": [0, 8]}}                                 # stopped at the first evaluation


def test_a_bug_in_the_rerun_keeps_its_traceback(tmp_path):
    proc, out, _ = _run_driver(tmp_path, "diagnosed")
    assert out == {"error": "no clips"} and "Traceback" not in proc.stderr
    proc, out, _ = _run_driver(tmp_path, "bug")
    assert out == {"error": "a bug"}
    assert "Traceback" in proc.stderr and "in train" in proc.stderr and "RuntimeError: a bug" in proc.stderr
    proc, out, _ = _run_driver(tmp_path, "crash")
    assert proc.returncode != 0 and out is None and proc.stderr.rstrip().endswith("KeyError: 'x'")
