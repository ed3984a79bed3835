"""The systems registry and presets (mvbook.config)."""
import pytest

from mvbook.config import (DERIVED, PAPER_SYSTEMS, REDUCTIONS, SYSTEMS, dependencies, get_preset, system_preset,
                           system_spec)
from mvbook.features import ALL_VIEWS, VIEWS


def test_the_paper_systems():
    assert PAPER_SYSTEMS == ("mel", "gam", "cqt", "raw", "concat", "multiview")
    assert all(SYSTEMS[s].origin == "paper" for s in PAPER_SYSTEMS)
    assert system_spec("multiview").views == VIEWS and system_spec("multiview").loss == "blend"
    assert system_spec("concat").loss == "concat" and system_spec("mel").views == ("mel",)
    assert DERIVED["late"] == VIEWS


def test_every_system_is_well_formed():
    for name, s in SYSTEMS.items():
        assert set(s.views) <= set(ALL_VIEWS), name
        assert s.loss in ("single", "concat", "blend", "equal", "meta"), name
        assert s.coder in ("crnn", "fcn") and s.head in ("fc", "cab"), name
        assert (len(s.views) == 1) == (s.loss == "single"), name
        for field, _ in s.overrides:
            assert hasattr(get_preset("cpu"), field), name


def test_ablations_change_only_their_field_and_are_not_reductions():
    cpu = get_preset("cpu")
    p = system_preset("mv_initial", cpu)
    assert p.reference == "initial" and p.reduced == cpu.reduced
    assert p.to_dict() | {"reference": "best"} == cpu.to_dict()
    assert system_preset("mv_power1", cpu).power == 1.0 and system_preset("mv_w6", cpu).window == 6
    assert system_preset("multiview", cpu) == cpu


def test_fusionnet_dependencies_and_unknown_systems():
    assert dependencies("fusionnet") == ("fcn_mel", "fcn_gam", "fcn_cqt", "fcn_raw") == DERIVED["sumrule"]
    assert dependencies("multiview") == ()
    with pytest.raises(ValueError, match="derived"):
        system_spec("late")
    with pytest.raises(ValueError, match="unknown system"):
        system_spec("mfcc")


def test_an_override_replaces_the_presets_own_reduction():
    p = get_preset("cpu", epochs=20)
    assert p.epochs == 20 and "epochs=20" in p.reduced
    assert not any("120 epochs" in r for r in p.reduced)
    assert set(p.reduced) - {"epochs=20"} == set(get_preset("cpu").reduced) - {"120 epochs instead of 3000/1500"}
    w = get_preset("cpu", window=6).reduced
    assert "window=6" in w and not any("W = 3" in r for r in w)
    assert get_preset("paper", lr=1e-3).reduced == ("lr=0.001",)
    for name, texts in REDUCTIONS.items():
        assert get_preset(name).reduced == tuple(texts.values())
        for keys in texts:
            assert all(hasattr(get_preset(name), k) for k in keys), (name, keys)
