"""The training loop (mvbook.train): records, determinism, kill-and-resume,
and a system it has never heard of."""
import json
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import mvbook.systems
import mvbook.train
from mvbook.nets.cab import CABNet
from mvbook.systems.base import BranchSystem
from mvbook.train import train


def _run(tmp_path, name, **kw):
    return train("synthetic", "mel", 1, "smoke", seed=3, out=tmp_path / name, progress=False,
                 cache_dir=tmp_path.parent / "cache", **kw)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """One uninterrupted smoke run, shared by the tests below."""
    return _run(tmp_path_factory.mktemp("full"), "run")


def test_record_contents(full):
    rec = full
    on_disk = json.loads(open(rec["path"]).read())
    assert on_disk["system"] == "mel" and on_disk["preset"] == "smoke" and on_disk["fold"] == 1
    assert "for tests only" in on_disk["reduced"]
    prov = on_disk["provenance"]
    assert {"git_commit", "machine", "cpu_capability", "device", "date", "wall_seconds", "train_seconds"} <= set(prov)
    assert prov["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    c = on_disk["curves"]
    n = len(c["step"])
    assert c["step"][0] == 0 and c["step"][-1] == on_disk["config"]["steps"]
    assert all(len(c["loss"][s]["mel"]) == n for s in ("train", "val", "test"))
    # the selected model is the evaluation of best validation accuracy, and its test accuracy is reported
    i = c["step"].index(on_disk["best"]["step"])
    assert c["accuracy"]["val"]["mel"][i] == max(c["accuracy"]["val"]["mel"])
    assert on_disk["accuracy"]["mel"] == c["accuracy"]["test"]["mel"][i]
    P = np.array(on_disk["test"]["probs"]["mel"])
    assert P.shape == (len(on_disk["test"]["labels"]), 8)
    assert np.allclose(P.sum(1), 1, atol=1e-3)
    assert on_disk["accuracy"]["mel"] == pytest.approx(np.mean(P.argmax(1) == on_disk["test"]["labels"]))


class Killed(Exception):
    pass


def test_killed_run_resumes_to_the_same_result(tmp_path, full):
    def kill_after_second_eval(info):
        if len(info["curves"]["step"]) == 2:
            raise Killed

    with pytest.raises(Killed):
        _run(tmp_path, "killed", callback=kill_after_second_eval)
    assert not list((tmp_path / "killed").rglob("fold1-seed3.json"))     # no record from a dead run
    resumed = _run(tmp_path, "killed")
    assert resumed["curves"] == full["curves"]
    assert resumed["accuracy"] == full["accuracy"] and resumed["best"] == full["best"]
    assert resumed["test"] == full["test"]


def test_the_record_says_which_code_trained_which_steps(tmp_path, full, monkeypatch, capsys):
    assert full["provenance"]["trained_by"] == [{"from_step": 0, "git_commit": full["provenance"]["git_commit"],
                                                  "git_dirty": full["provenance"]["git_dirty"]}]

    def kill_after_second_eval(info):
        if len(info["curves"]["step"]) == 2:
            raise Killed

    with pytest.raises(Killed):
        _run(tmp_path, "killed", callback=kill_after_second_eval)
    monkeypatch.setattr(mvbook.train, "code_version", lambda: {"git_commit": "f" * 40, "git_dirty": True})
    resumed = _run(tmp_path, "killed")
    step = resumed["curves"]["step"][1]
    assert resumed["provenance"]["trained_by"] == [full["provenance"]["trained_by"][0],
                                                   {"from_step": step, "git_commit": "f" * 40, "git_dirty": True}]
    assert f"at step {step}: trained so far by {full['provenance']['git_commit']}" in capsys.readouterr().out
    assert resumed["curves"] == full["curves"]               # the same maths: the same run
    monkeypatch.undo()
    with pytest.raises(Killed):
        _run(tmp_path, "same", callback=kill_after_second_eval)
    again = _run(tmp_path, "same")                            # resumed by the same code: a segment all the same
    first = full["provenance"]["trained_by"][0]
    assert again["provenance"]["trained_by"] == [first, first | {"from_step": step}]
    assert again["curves"] == full["curves"]


def test_same_seed_same_run_different_seed_differs(tmp_path, full):
    a = _run(tmp_path, "a", fresh=True)
    assert a["curves"] == full["curves"]
    c = train("synthetic", "mel", 1, "smoke", seed=4, out=tmp_path / "c", progress=False,
              cache_dir=tmp_path.parent / "cache")
    assert c["curves"]["loss"]["train"] != a["curves"]["loss"]["train"]


def test_checkpoint_of_another_run_is_refused(tmp_path, full):
    ckpts = Path(full["path"]).parents[3] / "checkpoints"
    with pytest.raises(RuntimeError, match="different run configuration"):
        train("synthetic", "mel", 1, "smoke", seed=3, out=tmp_path, checkpoints=ckpts, progress=False,
              cache_dir=tmp_path.parent / "cache", epochs=3)


def test_ablation_system_trains_with_its_override_and_records_it(tmp_path):
    rec = train("synthetic", "mv_initial", 1, "smoke", seed=0, out=tmp_path, progress=False,
                cache_dir=tmp_path / "cache", epochs=1)
    cfg = rec["config"]
    assert cfg["preset"]["reference"] == "initial" and cfg["system_overrides"] == {"reference": "initial"}
    assert rec["preset"] == "smoke" and not any("reference" in r for r in rec["reduced"])
    assert Path(rec["path"]).parent.name == "mv_initial"
    w = rec["curves"]["weights"]
    assert all(abs(sum(w[k][i] for k in w) - 1) < 1e-6 for i in range(len(rec["curves"]["step"])))


@pytest.mark.parametrize("system, branches", [("cabcnn", 5), ("multiview6", 7)])
def test_beyond_the_paper_systems_train(tmp_path, system, branches):
    rec = train("synthetic", system, 1, "smoke", seed=0, out=tmp_path, progress=False,
                cache_dir=tmp_path.parent / "cache", epochs=1)
    assert len(rec["test"]["probs"]) == branches and 0 <= rec["system_accuracy"] <= 1
    P = np.array(rec["test"]["probs"]["mv"])
    assert np.allclose(P.sum(1), 1, atol=1e-3)
    assert rec["config"]["head"] == ("cab" if system == "cabcnn" else "fc")
    if system == "cabcnn":                               # trained on the ⊕ loss only, like concat
        assert set(rec["best"]["weights"].values()) == {0.0, 1.0} and rec["best"]["weights"]["mv"] == 1.0


class _HalfHead(CABNet):
    """A toy fusion strategy: CAB-CNN's network, nothing else."""


class _ToySystem(BranchSystem):
    network_class = _HalfHead
    head = "toy"


def test_a_new_system_is_one_module_and_one_registry_line(tmp_path, monkeypatch):
    """The loop trains a system it has never heard of, given only a module of
    mvbook.systems that defines it and its registry line."""
    module = types.ModuleType("mvbook.systems.toy")
    module.SYSTEMS = {"toy": _ToySystem("toy", ("mel", "cqt"), "equal", origin="test")}
    monkeypatch.setitem(__import__("sys").modules, "mvbook.systems.toy", module)
    monkeypatch.setitem(mvbook.systems.REGISTRY, "toy", "toy")
    rec = train("synthetic", "toy", 1, "smoke", seed=0, out=tmp_path, progress=False,
                cache_dir=tmp_path.parent / "cache", epochs=1)
    assert rec["config"]["head"] == "toy" and set(rec["test"]["probs"]) == {"mel", "cqt", "mv"}
    assert rec["best"]["weights"] == {"mel": 1 / 3, "cqt": 1 / 3, "mv": 1 / 3}
    assert Path(rec["path"]) == tmp_path / "synthetic/smoke/toy/fold1-seed0.json"


def test_blending_records_state_their_rule_and_what_the_weights_did(tmp_path):
    from mvbook.blending import RULES
    rec = train("synthetic", "multiview", 1, "smoke", seed=0, out=tmp_path, progress=False,
                cache_dir=tmp_path.parent / "cache", epochs=1)
    assert rec["config"]["blending"] == RULES["authors"].to_dict()
    d = rec["diagnostics"]
    assert set(d["zero_weight_share"]) == set(rec["config"]["views"]) | {"mv"}
    assert all(0 <= v <= 1 for v in d["zero_weight_share"].values())
    assert d["updates"] + d["fallbacks"] <= len(rec["curves"]["step"])
    assert set(d["off_share"]) == set(d["zero_weight_share"]) and 0 <= d["uncredited"] <= d["updates"] + d["fallbacks"]
    assert all(d["off_share"][k] >= d["zero_weight_share"][k] for k in d["off_share"])
    assert 0 <= d["selected_entropy"] <= np.log(5) + 1e-9
    single = train("synthetic", "mel", 1, "smoke", seed=0, out=tmp_path, progress=False,
                   cache_dir=tmp_path.parent / "cache", epochs=1)
    assert "blending" not in single["config"] and "diagnostics" not in single
