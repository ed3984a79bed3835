"""Algorithm 1 worked by hand, and its invariants."""
import json

import numpy as np
import pytest

from mvbook.blending import RULES, AdaptiveBlender, BlendRule, FixedWeights, WeightRule, initial_weights

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
    G_k = {"x": 0.975 - 0.925, "y": 0.995 - 0.98}
    O_k = {"x": (0.95 - 0.8) - G_k["x"], "y": (0.9 - 0.7) - G_k["y"]}
    assert b.G == pytest.approx(G_k) and b.O == pytest.approx(O_k)
    ratio = {k: G_k[k] / (O_k[k] ** 2 + 1e-6) for k in "xy"}
    assert b.ratio == pytest.approx(ratio)
    assert w == pytest.approx({k: ratio[k] / sum(ratio.values()) for k in "xy"})


# --- the rules the paper leaves open (BlendRule), on histories worked by hand -------------

RULE_HISTORY = [((1.0, 1.0), (1.0, 1.0)),       # sets the references (W = 1): G = 0 for both
           ((0.8, 0.9), (0.9, 1.0)),       # a improves its validation loss, b does not
           ((0.7, 0.8), (0.95, 1.05))]     # neither beats its best: every ratio is 0


def _replay(rule, history=RULE_HISTORY, window=1):
    b = AdaptiveBlender(("a", "b"), window=window, rule=rule)
    return b, [b.update(dict(zip("ab", tr)), dict(zip("ab", va))) for tr, va in history]


def test_all_zero_ratios_keep_or_reset_the_weights():
    keep, w_keep = _replay(BlendRule("k"))
    uni, w_uni = _replay(BlendRule("u", fallback="uniform"))
    assert w_keep[0] == w_uni[0] == {"a": 0.5, "b": 0.5}           # first update: G = 0 (uniform start)
    assert w_keep[1] == w_uni[1] == {"a": 1.0, "b": 0.0}           # O_a = 0.2 − 0.1 = 0.1 > 0, G_b = 0
    assert w_keep[2] == {"a": 1.0, "b": 0.0}                       # literal: the previous weights
    assert w_uni[2] == {"a": 0.5, "b": 0.5}                        # XSleepNet: uniform
    assert keep.counts == uni.counts == {"updates": 1, "fallbacks": 2, "uncredited": 2}


def test_a_floor_keeps_every_branch_training():
    b, w = _replay(BlendRule("f", floor=1e-5))
    ratio_a = 0.1 / (0.1 ** 2 + 1e-6)
    assert w[1]["b"] == pytest.approx(1e-5 / (ratio_a + 1e-5)) and w[1]["b"] > 0
    assert w[2] == {"a": 0.5, "b": 0.5}                            # both floored: equal ratios
    assert b.counts == {"updates": 3, "fallbacks": 0, "uncredited": 2}   # measurements 1 and 3: only the floor
    d = b.diagnostics([0, 10, 20], {k: [x[k] for x in w] for k in "ab"}, w[-1])
    assert d["zero_weight_share"] == {"a": 0.0, "b": 0.0}                   # the floor: never exactly 0
    assert d["off_share"] == pytest.approx({"a": 0.0, "b": 1 / 2})           # b ≈ 1e-7 from step 10 to 20


def test_warmup_delays_the_first_adaptive_weight_and_the_references():
    history = RULE_HISTORY + [((0.6, 0.7), (0.8, 0.9))]
    b, w = _replay(BlendRule("w", warmup_windows=1), history, window=2)
    assert b.first == 3
    assert w[:3] == [{"a": 0.5, "b": 0.5}] * 3                     # nothing adaptive before measurement 3
    # references from measurements 2–3 (the first full window after the warm-up):
    # L*_va = (0.925, 1.025), L*_tr = (0.75, 0.85); measurement 4: L̄_va = (0.875, 0.975),
    # L̄_tr = (0.65, 0.75), so G = (0.05, 0.05) and O = (0.1 − 0.05, 0.1 − 0.05)
    assert b.G == pytest.approx({"a": 0.05, "b": 0.05}) and b.O == pytest.approx({"a": 0.05, "b": 0.05})
    assert w[3] == pytest.approx({"a": 0.5, "b": 0.5})
    assert b.L_va_star == pytest.approx({"a": 0.875, "b": 0.975})    # then the best so far


def test_slope_estimator_is_xsleepnet2s():
    # W = 2: smoothed s_n = mean(L_{n-1}, L_n); first weight at n = 3 with
    # references = slope of (s_1, s_2) and current = slope of (s_2, s_3)
    history = [((1.0, 1.0), (1.0, 1.0)), ((0.8, 0.9), (0.9, 0.96)), ((0.5, 0.7), (0.86, 0.96))]
    b, w = _replay(BlendRule("s", estimator="slope"), history, window=2)
    s_tr = {"a": [1.0, 0.9, 0.65], "b": [1.0, 0.95, 0.8]}
    s_va = {"a": [1.0, 0.95, 0.88], "b": [1.0, 0.98, 0.96]}
    for k in "ab":
        ref_tr, ref_va = s_tr[k][1] - s_tr[k][0], s_va[k][1] - s_va[k][0]
        cur_tr, cur_va = s_tr[k][2] - s_tr[k][1], s_va[k][2] - s_va[k][1]
        assert b.G[k] == pytest.approx(cur_va - ref_va)              # XSleepNet2: slope − reference
        assert b.O[k] == pytest.approx((cur_va - cur_tr) - (ref_va - ref_tr))
    # G_a = −0.07 − (−0.05) < 0 → 0; G_b = −0.02 − (−0.02) = 0 → 0: all zero, previous weights kept
    assert w[2] == {"a": 0.5, "b": 0.5} and b.counts["fallbacks"] == 1
    # the reference moves to the steeper validation slope (a's), not b's
    assert b.L_va_star["a"] == pytest.approx(-0.07) and b.L_va_star["b"] == pytest.approx(-0.02)


def test_rules_of_the_systems_and_bad_rules():
    assert RULES["literal"] == BlendRule("literal")
    assert (RULES["authors"].fallback, RULES["authors"].floor, RULES["authors"].warmup_windows) == ("uniform", 1e-5, 1)
    assert RULES["slope"].estimator == "slope"
    with pytest.raises(ValueError):
        BlendRule("x", fallback="random")
    with pytest.raises(ValueError):
        BlendRule("x", floor=-1)


def test_diagnostics_by_hand():
    b = AdaptiveBlender(("a", "b"), window=1)
    b.counts = {"updates": 2, "fallbacks": 1, "uncredited": 1}
    d = b.diagnostics([0, 10, 20, 40], {"a": [0.5, 1.0, 5e-4, 0.0], "b": [0.5, 0.0, 0.9995, 1.0]}, {"a": 0.5, "b": 0.5})
    assert d["zero_weight_share"] == pytest.approx({"a": 0.0, "b": 1 / 4})   # the last weight holds no step
    assert d["off_share"] == pytest.approx({"a": 2 / 4, "b": 1 / 4})          # 5e-4 < OFF: steps 20–40
    assert d["updates"] == 2 and d["fallbacks"] == 1 and d["uncredited"] == 1
    assert d["selected_entropy"] == pytest.approx(np.log(2))
    assert b.diagnostics([0, 10], {"a": [1.0, 1.0], "b": [0.0, 0.0]}, {"a": 1.0, "b": 0.0})["selected_entropy"] == 0
    assert FixedWeights({"a": 1.0}).diagnostics([0], {"a": [1.0]}, {"a": 1.0}) is None


def test_a_checkpoint_without_the_uncredited_count_is_counted_again():
    history = RULE_HISTORY + [((0.6, 0.7), (0.8, 0.9))]
    b, _ = _replay(RULES["authors"], history, window=1)
    state = b.state_dict()
    state["counts"] = {k: v for k, v in state["counts"].items() if k != "uncredited"}   # as saved before it existed
    again = AdaptiveBlender(("a", "b"), window=1, rule=RULES["authors"])
    again.load_state_dict(state)
    assert again.counts == b.counts and b.counts["uncredited"] > 0


def test_the_blenders_options_are_keyword_only():
    with pytest.raises(TypeError):
        AdaptiveBlender(("a", "b"), 3)
    with pytest.raises(TypeError):
        AdaptiveBlender(("a", "b"), 3, "best")
    assert AdaptiveBlender(("a", "b"), window=3).W == 3


# --- the weight rule the training loop drives (WeightRule) -----------------------------------

class _NoState:
    """Weights and an update, but nothing a checkpoint could keep."""
    weights = {"a": 1.0}

    def update(self, train_losses, val_losses):
        return dict(self.weights)


@pytest.mark.parametrize("name", sorted(RULES))
def test_a_blender_under_every_rule_is_a_weight_rule_the_loop_can_drive(name):
    """Every rule of RULES makes an AdaptiveBlender that satisfies WeightRule, and the
    loop's calls on it work by hand: weights, update, a checkpoint through JSON and back
    (the restored blender goes on as the original), diagnostics."""
    b = AdaptiveBlender(("a", "b"), window=1, rule=RULES[name])
    assert isinstance(b, WeightRule) and not isinstance(RULES[name], WeightRule)
    assert b.weights == {"a": 0.5, "b": 0.5}
    steps, curve = [], {"a": [], "b": []}
    for i, (tr, va) in enumerate(RULE_HISTORY):
        w = b.update(dict(zip("ab", tr)), dict(zip("ab", va)))
        assert set(w) == {"a", "b"} and sum(w.values()) == pytest.approx(1.0) and min(w.values()) >= 0
        steps.append(10 * i)
        for k in w:
            curve[k].append(w[k])
    again = AdaptiveBlender(("a", "b"), window=1, rule=RULES[name])
    again.load_state_dict(json.loads(json.dumps(b.state_dict())))
    nxt = (dict(zip("ab", (0.6, 0.7))), dict(zip("ab", (0.8, 0.9))))
    assert again.update(*nxt) == b.update(*nxt) and again.counts == b.counts
    d = b.diagnostics(steps, curve, w)          # 4 measurements, weights computed from the first-th on
    assert d["updates"] + d["fallbacks"] == 4 - b.first + 1 > 0
    assert set(d["off_share"]) == {"a", "b"} and 0 <= d["selected_entropy"] <= np.log(2) + 1e-12


def test_fixed_weights_are_a_weight_rule_and_other_objects_are_not():
    fixed = FixedWeights({"a": 0.25, "b": 0.75})
    assert isinstance(fixed, WeightRule)
    assert fixed.update({"a": 9.0, "b": 0.1}, {"a": 9.0, "b": 0.1}) == fixed.weights == {"a": 0.25, "b": 0.75}
    fixed.load_state_dict(json.loads(json.dumps(fixed.state_dict())))
    assert fixed.weights == {"a": 0.25, "b": 0.75} and fixed.diagnostics([0], {"a": [0.25]}, {"a": 0.25}) is None
    assert not isinstance(_NoState(), WeightRule) and not isinstance({"a": 1.0}, WeightRule)
