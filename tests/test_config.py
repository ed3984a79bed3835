"""The presets and the learning-rate schedule (mvbook.config)."""
import pytest

from mvbook.config import REDUCTIONS, get_preset, learning_rate


def test_paper_preset_is_the_paper():
    p = get_preset("paper")
    assert (p.width, p.batch_size, p.lr, p.lr_warmup, p.decay, p.decay_at, p.warmup_epochs) == \
        (1.0, 64, 2e-4, 2e-5, 0.8, (0.1, 0.2, 0.3), 10)
    assert p.epochs_for("esc50") == 3000 and p.epochs_for("gtzan") == 1500 and p.reduced == ()


def test_learning_rate_schedule_by_hand():
    p = get_preset("paper")
    E = 3000
    assert learning_rate(0, p, E) == 2e-5 and learning_rate(9.99, p, E) == 2e-5      # warm-up
    assert learning_rate(10, p, E) == 2e-4 and learning_rate(299.9, p, E) == 2e-4
    assert learning_rate(300, p, E) == pytest.approx(1.6e-4)                          # × 0.8 after 0.1E
    assert learning_rate(600, p, E) == pytest.approx(1.28e-4)
    assert learning_rate(900, p, E) == pytest.approx(1.024e-4)
    assert learning_rate(2999, p, E) == pytest.approx(1.024e-4)


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


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("fast")


@pytest.mark.parametrize("override", [{"epochs": 0}, {"epochs": -5}, {"batch_size": 0}, {"eval_every": 0},
                                      {"window": 0}, {"width": 0.0}, {"lr": -1e-3}, {"reference": "worst"}])
def test_impossible_settings_are_refused_before_any_work(override):
    with pytest.raises(ValueError, match="impossible setting"):
        get_preset("cpu", **override)
