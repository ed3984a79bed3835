"""Algorithm 1 worked by hand, and its invariants."""
import numpy as np
import pytest

from mvbook.blending import AdaptiveBlender, FixedWeights, initial_weights

# Two branches, W = 2. Measurements n = 1..4 of (train loss, validation loss).
HISTORY = {"a": [(1.0, 1.0), (0.8, 0.9), (0.6, 0.8), (0.5, 0.78)],
           "b": [(1.0, 1.0), (0.6, 1.0), (0.3, 1.1), (0.2, 0.8)]}


def feed(blender, n):
    return blender.update({k: HISTORY[k][n][0] for k in HISTORY}, {k: HISTORY[k][n][1] for k in HISTORY})


def test_best_reference_by_hand():
    bl = AdaptiveBlender(["a", "b"], window=2, reference="best", eps=0.0)
    assert feed(bl, 0) == {"a": 0.5, "b": 0.5}          # n=1 < W: uniform
    assert feed(bl, 1) == {"a": 0.5, "b": 0.5}          # n=2: references set, G = O = 0 → keep previous
    assert bl.L_va_star == pytest.approx({"a": 0.95, "b": 1.0})
    w = feed(bl, 2)
    # a: L̄_tr = 0.7, L̄_va = 0.85 → G = 0.10, O = 0.20 - 0.10 = 0.10 ; b: L̄_va = 1.05 → G < 0 → 0
    assert bl.G["a"] == pytest.approx(0.10) and bl.O["a"] == pytest.approx(0.10)
    assert bl.G["b"] == pytest.approx(-0.05)
    assert w == pytest.approx({"a": 1.0, "b": 0.0})
    # references: best so far (b's validation reference stays 1.0)
    assert bl.L_tr_star == pytest.approx({"a": 0.7, "b": 0.45})
    assert bl.L_va_star == pytest.approx({"a": 0.85, "b": 1.0})
    w = feed(bl, 3)
    # a: L̄_tr 0.55, L̄_va 0.79 → G 0.06, O 0.09 → 0.06/0.0081 = 200/27
    # b: L̄_tr 0.25, L̄_va 0.95 → G 0.05, O 0.15 → 0.05/0.0225 = 60/27
    assert w == pytest.approx({"a": 200 / 260, "b": 60 / 260})


def test_initial_reference_by_hand():
    bl = AdaptiveBlender(["a", "b"], window=2, reference="initial", eps=0.0)
    for n in range(4):
        w = feed(bl, n)
    # references stay at the first smoothed losses: a (0.9, 0.95), b (0.8, 1.0)
    assert bl.L_tr_star == pytest.approx({"a": 0.9, "b": 0.8})
    # a: G = 0.16, O = 0.35 - 0.16 = 0.19 ; b: G = 0.05, O = 0.55 - 0.05 = 0.5
    ra, rb = 0.16 / 0.19 ** 2, 0.05 / 0.5 ** 2
    assert w == pytest.approx({"a": ra / (ra + rb), "b": rb / (ra + rb)})


def test_power_one_uses_abs_O():
    bl = AdaptiveBlender(["a", "b"], window=2, eps=0.0, power=1.0)
    for n in range(4):
        w = feed(bl, n)
    ra, rb = 0.06 / 0.09, 0.05 / 0.15
    assert w == pytest.approx({"a": ra / (ra + rb), "b": rb / (ra + rb)})


def test_generalising_branch_outweighs_overfitting_one():
    t = np.arange(60)
    good_tr = good_va = 2.0 * np.exp(-t / 30) + 0.3
    over_tr = 2.0 * np.exp(-t / 8) + 0.05
    over_va = 1.2 + 0.02 * (t - 10) ** 2 / 10 * (t > 10) - 0.8 * (1 - np.exp(-t / 5))
    bl = AdaptiveBlender(["good", "over"], window=3)
    ws = [bl.update({"good": good_tr[i], "over": over_tr[i]}, {"good": good_va[i] + 0.01, "over": over_va[i]})
          for i in range(len(t))]
    late = np.mean([w["good"] - w["over"] for w in ws[20:]])
    assert late > 0.5


@pytest.mark.parametrize("reference", ["best", "initial"])
@pytest.mark.parametrize("power", [1.0, 2.0])
def test_weights_always_valid_on_random_histories(reference, power):
    rng = np.random.default_rng(0)
    for trial in range(150):
        K, n = rng.integers(2, 6), rng.integers(1, 40)
        names = [f"k{i}" for i in range(K)]
        bl = AdaptiveBlender(names, window=int(rng.integers(1, 6)), reference=reference, power=power)
        for _ in range(n):
            # include exact repeats (O = 0) and flat losses
            tr = {k: float(rng.choice([1.0, rng.exponential()])) for k in names}
            va = {k: float(rng.choice([1.0, rng.exponential()])) for k in names}
            w = bl.update(tr, va)
            v = np.array(list(w.values()))
            assert np.all(np.isfinite(v)) and np.all(v >= 0)
            assert v.sum() == pytest.approx(1.0)


def test_state_round_trip_continues_identically():
    a = AdaptiveBlender(["a", "b"], window=2)
    for n in range(3):
        feed(a, n)
    b = AdaptiveBlender(["a", "b"], window=2)
    b.load_state_dict(a.state_dict())
    assert feed(a, 3) == feed(b, 3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="reference"):
        AdaptiveBlender(["a"], reference="worst")
    with pytest.raises(ValueError, match="window"):
        AdaptiveBlender(["a"], window=0)


def test_loss_weights_per_mode():
    b = ("mel", "gam", "cqt", "raw", "mv")
    assert initial_weights(b, "concat") == {"mel": 0, "gam": 0, "cqt": 0, "raw": 0, "mv": 1}
    assert initial_weights(b, "blend") == dict.fromkeys(b, 0.2) == initial_weights(b, "equal")
    assert initial_weights(("mel",), "single") == {"mel": 1.0}
    rule = FixedWeights(initial_weights(b, "concat"))
    assert rule.update({k: 1.0 for k in b}, {k: 0.5 for k in b}) == initial_weights(b, "concat")
    assert rule.state_dict() is None


def test_the_stored_quantities_are_those_of_eq_3_to_5():
    b = AdaptiveBlender(("x", "y"), window=2, eps=1e-6)
    for tr, va in [((1.0, 1.0), (1.0, 1.0)), ((0.9, 0.8), (0.95, 0.99)), ((0.7, 0.6), (0.9, 0.97))]:
        w = b.update(dict(zip("xy", tr)), dict(zip("xy", va)))
    # W = 2: L̄ = mean of the last two; references: the first smoothed losses, then the best so far
    assert b.L_tr_bar == pytest.approx({"x": 0.8, "y": 0.7}) and b.L_va_bar == pytest.approx({"x": 0.925, "y": 0.98})
    G = {"x": 0.975 - 0.925, "y": 0.995 - 0.98}
    O = {"x": (0.95 - 0.8) - G["x"], "y": (0.9 - 0.7) - G["y"]}
    assert b.G == pytest.approx(G) and b.O == pytest.approx(O)
    ratio = {k: G[k] / (O[k] ** 2 + 1e-6) for k in "xy"}
    assert b.ratio == pytest.approx(ratio)
    assert w == pytest.approx({k: ratio[k] / sum(ratio.values()) for k in "xy"})
