"""The systems registry (mvbook.systems) and the protocol every system follows."""
import importlib
import pkgutil

import pytest
import torch

import mvbook.systems as systems_pkg
from mvbook.config import get_preset
from mvbook.nets.crnn import MultiViewNet
from mvbook.systems import DERIVED, PAPER_SYSTEMS, REGISTRY, TRAINED_SYSTEMS, all_systems, dependencies, get_system
from mvbook.systems.base import BranchSystem, System
from mvbook.views.framing import ALL_VIEWS, VIEWS


def test_the_paper_systems():
    assert PAPER_SYSTEMS == ("mel", "gam", "cqt", "raw", "concat", "multiview")
    assert all(get_system(s).origin == "paper" for s in PAPER_SYSTEMS)
    assert get_system("multiview").views == VIEWS and get_system("multiview").loss == "blend"
    assert get_system("concat").loss == "concat" and get_system("mel").views == ("mel",)
    assert DERIVED["late"] == VIEWS


def test_registry_lines_match_the_modules_that_define_the_systems():
    defined = {}
    for info in pkgutil.iter_modules(systems_pkg.__path__):
        module = importlib.import_module(f"mvbook.systems.{info.name}")
        for name in getattr(module, "SYSTEMS", {}):
            assert name not in defined, f"{name} defined in {defined.get(name)} and {info.name}"
            defined[name] = info.name
    assert defined == REGISTRY
    assert TRAINED_SYSTEMS == tuple(REGISTRY)


def test_every_system_is_well_formed():
    assert {"mel", "gam", "cqt", "raw", "concat", "multiview"} <= set(all_systems())   # the loop is not over nothing
    for name, s in all_systems().items():
        assert isinstance(s, System) and s.name == name
        assert set(s.views) <= set(ALL_VIEWS), name
        assert s.loss in ("single", "concat", "blend", "equal", "meta"), name
        assert s.coder in ("crnn", "fcn") and s.head in ("fc", "cab", "meta"), name
        assert (len(s.views) == 1) == (s.loss == "single"), name
        assert all(n in REGISTRY for n in s.needs), name
        for field, _ in s.overrides:
            assert hasattr(get_preset("cpu"), field), name


@pytest.mark.parametrize("name", [n for n in REGISTRY if n not in ("fusionnet", "crnn_meta")])   # meta: test_fusionnet
def test_a_branch_system_rebuilds_the_network_of_its_record_config(name):
    s = get_system(name)
    assert isinstance(s, BranchSystem)
    torch.manual_seed(0)
    built = s.build(8, sr=22050, width=1 / 16, raw_bands=4)
    config = {"n_classes": 8, "sr": 22050, "preset": {"width": 1 / 16, "raw_bands": 4}}
    torch.manual_seed(0)
    again = s.network(config)
    assert isinstance(built, MultiViewNet) and built.views == s.views
    assert list(built.state_dict()) == list(again.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(built.state_dict().values(), again.state_dict().values()))


def test_ablations_change_only_their_field_and_are_not_reductions():
    cpu = get_preset("cpu")
    p = get_system("mv_initial").preset(cpu)
    assert p.reference == "initial" and p.reduced == cpu.reduced
    assert p.to_dict() | {"reference": "best"} == cpu.to_dict()
    assert get_system("mv_power1").preset(cpu).power == 1.0 and get_system("mv_w6").preset(cpu).window == 6
    assert get_system("multiview").preset(cpu) == cpu


def test_fusionnet_dependencies_and_unknown_systems():
    assert dependencies("fusionnet") == ("fcn_mel", "fcn_gam", "fcn_cqt", "fcn_raw") == DERIVED["sumrule"]
    assert dependencies("multiview") == ()
    with pytest.raises(ValueError, match="derived"):
        get_system("late")
    with pytest.raises(ValueError, match="unknown system"):
        get_system("mfcc")


def test_the_capacity_control_matches_a_fusionnet_coder():
    """mv_wide: the multi-view network whose CRNNs have a FusionNet coder's size at the cpu width."""
    from mvbook.book import summary
    from mvbook.systems.capacity import CODER_MATCHED_WIDTH
    s = get_system("mv_wide")
    assert s.views == VIEWS and s.loss == "blend" and s.rule == "authors" and s.origin == "extra"
    assert s.preset(get_preset("cpu")).width == CODER_MATCHED_WIDTH and s.preset(get_preset("cpu")).reduced == \
        get_preset("cpu").reduced
    cap = summary.capacity("cpu")
    assert cap["matched_width"] == CODER_MATCHED_WIDTH
    assert abs(cap["crnn_mel_matched"] - cap["coder_mel"]) / cap["coder_mel"] < 0.02 and cap["ratio"] > 5


def _prepared(system: str, tmp_path, **preset):
    from dataclasses import replace

    from mvbook.data import load_dataset
    from mvbook.records import RunPaths
    from mvbook.systems.base import Run
    ds = load_dataset("synthetic")
    p = replace(get_preset("smoke"), **preset)
    run = Run(ds, ds.split(1, 0), 1, 1, 0, p, torch.device("cpu"),
              RunPaths(tmp_path, ds.name, p.name, system, 1, 1), progress=False)
    return get_system(system).prepare(run)


def test_a_prepared_training_has_the_weight_rule_of_its_system_and_preset(tmp_path):
    """``Training.rule`` is a :class:`~mvbook.blending.WeightRule`: a blending system's
    blender takes the preset's window, reference and power (by keyword) and the system's
    rule; a fixed-loss system's weights are those of its loss."""
    from mvbook.blending import RULES, AdaptiveBlender, FixedWeights, WeightRule, initial_weights
    blend = _prepared("mv_slope", tmp_path, window=6, reference="initial", power=1.0)
    assert isinstance(blend.rule, AdaptiveBlender) and isinstance(blend.rule, WeightRule)
    assert (blend.rule.W, blend.rule.reference, blend.rule.power) == (6, "initial", 1.0)
    assert blend.rule.rule is RULES["slope"] and blend.rule.branches == blend.branches
    fixed = _prepared("concat", tmp_path)
    assert isinstance(fixed.rule, FixedWeights) and isinstance(fixed.rule, WeightRule)
    assert fixed.rule.weights == initial_weights(fixed.branches, "concat") != initial_weights(fixed.branches, "blend")
