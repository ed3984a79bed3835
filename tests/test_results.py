"""Late fusion, Table 3, paired tests and the claims, from hand-made records."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mvbook.results import (
    PAPER_TABLE3,
    check_claims,
    fold_accuracies,
    fold_mean,
    paired_comparison,
    row_key,
    sign_flip_p,
    signed,
    table3,
    uniform_ensemble_accuracy,
)
from mvbook.tables import format_table3


def committed(relative: str, what: str) -> Path:
    """A record of the committed ``results/`` the test reads; a pruned tree fails
    here, naming the file, instead of skipping the test."""
    path = Path(__file__).parents[1] / "results" / relative
    assert path.is_file(), f"results/{relative} is missing: the test reads {what} (esc10, cpu preset, fold 1, seed 0)"
    return path


def fake(system, fold, acc, probs=None, labels=(0, 1), se=None):
    probs = probs if probs is not None else [[0.9, 0.1], [0.2, 0.8]]
    main = "mv" if system in ("multiview", "concat") else system
    r = {"schema": "mvbook.record/1", "system": system, "dataset": "esc10", "fold": fold, "seed": 0,
         "preset": "cpu", "reduced": ["width 0.25"], "main_branch": main, "system_accuracy": acc,
         "accuracy": {main: acc}, "test": {"keys": ["a", "b"], "labels": list(labels), "probs": {main: probs}}}
    if se is not None:
        r["accuracy"]["self_ensemble"] = se
    return r


def test_table3_mean_std_and_derived_rows():
    recs = [fake("mel", 1, 0.80), fake("mel", 2, 0.70), fake("multiview", 1, 0.9, se=0.95),
            fake("multiview", 2, 0.8, se=0.85)]
    recs += [fake(v, 1, 0.5) for v in ("gam", "cqt", "raw")]
    t = table3(recs)
    assert t.loc["mel", "mean"] == pytest.approx(75.0)
    assert t.loc["mel", "std"] == pytest.approx(np.std([80, 70], ddof=1))
    assert t.loc["self_ensemble", "mean"] == pytest.approx(90.0)
    assert t.loc["late", "n"] == 1                      # only fold 1 has all four single views
    assert list(fold_accuracies(recs).index)[:3] == ["self_ensemble", "self_ensemble_uniform", "multiview"]
    text = format_table3(recs, "esc10", "cpu")
    assert "75.00 ±  7.07" in text and f"{PAPER_TABLE3.loc['mel', 'esc50']:.2f}" in text
    assert "width 0.25" in text and "no runs" in text   # concat has no runs


def test_a_fold_with_more_seeds_does_not_weigh_more():
    """The table's mean is the mean of the fold means, as the paired tests average
    them, so two rows' means differ by the paired mean difference when they have the same runs."""
    recs = [fake("mel", 1, 0.80), fake("mel", 1, 0.90) | {"seed": 1}, fake("mel", 2, 0.70),
            fake("concat", 1, 0.80), fake("concat", 1, 0.70) | {"seed": 1}, fake("concat", 2, 0.60),
            fake("gam", 1, 0.5), fake("gam", 2, 0.6)]
    t = table3(recs)
    assert t.loc["mel", "mean"] == pytest.approx((85 + 70) / 2)             # not (80 + 90 + 70) / 3 = 80
    assert t.loc["mel", "std"] == pytest.approx(np.std([85, 70], ddof=1)) and t.loc["mel", "n"] == 3   # fold means
    assert not t.loc["mel", "balanced"] and t.loc["gam", "balanced"]
    d = paired_comparison(recs, "mel", ["concat"]).loc["concat", "mean_diff"]
    assert d == pytest.approx(t.loc["mel", "mean"] - t.loc["concat", "mean"]) == pytest.approx(10)
    assert fold_mean(pd.Series(dtype=float)) != fold_mean(pd.Series(dtype=float))      # no runs: NaN
    text = format_table3(recs, "esc10", "cpu")
    assert "Mel ‡" in text and "Gammatone ‡" not in text and "‡ its folds have unequal numbers of runs" in text
    assert "77.50 ±" in text
    assert "‡" not in format_table3([r for r in recs if r["seed"] == 0], "esc10", "cpu")


def test_claims_weigh_each_fold_once():
    recs = [fake("mel", 1, 0.60), fake("mel", 1, 0.70) | {"seed": 1}, fake("mel", 1, 0.80) | {"seed": 2},
            fake("mel", 2, 0.90)]
    recs += [fake("concat", 1, 0.75) | {"seed": s} for s in (0, 1, 2)] + [fake("concat", 2, 0.80)]
    c = check_claims(recs, [("Mel above concatenation", ("mel",), ("concat",))]).iloc[0]
    assert c["mean margin"] == pytest.approx(((70 - 75) + (90 - 80)) / 2)   # per fold −5, +10; over the runs −1.25
    assert c["on the means"] == "in this order" and c["runs where it holds"] == "2 of 4"


def test_sumrule_row_is_the_mean_of_the_fusionnet_coders():
    P = {"fcn_mel": [[.6, .4], [.4, .6]], "fcn_gam": [[.2, .8], [.4, .6]], "fcn_cqt": [[.7, .3], [.9, .1]],
         "fcn_raw": [[.9, .1], [.1, .9]]}
    recs = [fake(v, 1, 0.5, P[v]) for v in P]
    df = fold_accuracies(recs)
    assert df.loc["sumrule"].tolist() == [100.0]          # mean [[.6,.4],[.45,.55]] → both right
    assert "late" not in df.index                       # no paper single-view runs
    assert "FusionNet sum rule †" in format_table3(recs, "esc10", "cpu", extended=True)
    assert "FusionNet" not in format_table3(recs, "esc10", "cpu")


def test_ci95_and_paired_comparison_by_hand():
    from scipy import stats
    mv = [0.80, 0.90, 0.70, 0.85]
    mel = [0.75, 0.80, 0.70, 0.90]
    recs = []
    for k, (a, b) in enumerate(zip(mv, mel), start=1):
        recs += [fake("multiview", k, a, se=a), fake("mel", k, b)]
    recs.append(fake("mel", 5, 0.5))                    # no partner: not paired
    t = table3(recs)
    sd = np.std([80, 90, 70, 85], ddof=1)
    assert t.loc["multiview", "ci95"] == pytest.approx(stats.t.ppf(0.975, 3) * sd / 2)
    cmp = paired_comparison(recs, "multiview")                         # one seed: a fold is a run
    row = cmp.loc["mel"]
    d = np.array([5, 10, 0, -5])
    assert row["pairs"] == 4 and row["mean_diff"] == pytest.approx(d.mean())
    assert (row["wins"], row["ties"], row["losses"]) == (2, 1, 1)
    assert row["p_t"] == pytest.approx(stats.ttest_rel([80, 90, 70, 85], [75, 80, 70, 90]).pvalue)
    assert row["p_wilcoxon"] == pytest.approx(stats.wilcoxon(d).pvalue)
    # sign flips of (5, 10, 0, -5), observed sum 10 (the 0 flips to itself): ±5 ± 10 ± 5 takes the sums
    # 20, 10, 10, 0, 0, -10, -10, -20 over the 8 sign choices, 6 of them with |sum| >= 10
    assert row["p_sign_flip"] == pytest.approx(6 / 8)


def test_claims_on_means_and_per_fold():
    from mvbook.results import check_claims
    acc = {1: dict(mel=.80, gam=.70, cqt=.60, raw=.50, concat=.85, multiview=.90),
           2: dict(mel=.70, gam=.80, cqt=.75, raw=.50, concat=.70, multiview=.76)}
    recs = [fake(s, k, a, se=a + .01 if s == "multiview" else None) for k, d in acc.items() for s, a in d.items()]
    c = check_claims(recs)
    # Mel & Gam above CQT & raw: min(75, 75) − max(67.5, 50) = 7.5 on the means; per fold 10, −5
    assert c.loc["Mel and Gammatone above CQT and raw", "mean margin"] == pytest.approx(7.5)
    assert c.loc["Mel and Gammatone above CQT and raw", "runs where it holds"] == "1 of 2"
    assert c.loc["Mel and Gammatone above CQT and raw", "margin per run"] == "+10.00, −5.00"
    # multi-view above concat: 83 − 77.5
    assert c.loc["multi-view above concatenation", "on the means"] == "in this order"
    assert c.loc["multi-view above concatenation", "mean margin"] == pytest.approx(5.5)
    # concat above every single view: 77.5 − max(75, 75, 67.5, 50) = 2.5 on means, but +5, −10 per fold
    assert c.loc["concatenation above every single view", "runs where it holds"] == "1 of 2"
    assert c.loc["self-ensemble above multi-view", "mean margin"] == pytest.approx(1.0)
    # late fusion: the fake posteriors make every single-view run right on both files → 100 %
    assert c.loc["late fusion above every single view", "on the means"] == "in this order"
    assert c.loc["multi-view above late fusion", "on the means"] == "not in this order"
    assert check_claims([]).loc["multi-view above late fusion", "on the means"] == "not enough runs"


def test_signed_uses_a_true_minus_sign():
    assert signed(-2.745) == "\u22122.75" and signed(1.5, 1) == "+1.5" and signed(12.0) == "+12.00"
    assert signed(-0.004) == "+0.00" and signed(float("nan")) == "—"      # no "−0.00"


def test_weight_shares_by_hand():
    from mvbook.book.replay import weight_shares
    r = fake("multiview", 2, 0.5, se=0.5)
    r["curves"] = {"weights": {"mel": [0.2, 0.0, 0.0], "raw": [0.2, 1.0, 0.7], "mv": [0.6, 0.0, 0.3]}}
    w = weight_shares([r, fake("mel", 2, 0.5)])
    assert list(w.index) == [(2, 0)]
    assert w.loc[(2, 0), "raw"] == pytest.approx(1.9 / 3) and w.loc[(2, 0), "mv"] == pytest.approx(0.3)


def test_records_of_the_literal_rule_are_rows_of_mv_literal():
    old = fake("multiview", 1, 0.6, se=0.5) | {"config": {"system": "multiview"}}          # no rule named
    new = fake("multiview", 1, 0.7, se=0.8) | {"config": {"blending": {"name": "authors"}}}
    assert row_key(old) == "mv_literal" and row_key(new) == "multiview"
    assert row_key(fake("mel", 1, 0.5) | {"config": {}}) == "mel"
    df = fold_accuracies([old, new])
    assert df.loc["mv_literal"][(1, 0)] == 60 and df.loc["mv_literal_se"][(1, 0)] == 50
    assert df.loc["multiview"][(1, 0)] == 70 and df.loc["self_ensemble"][(1, 0)] == 80
    with pytest.raises(ValueError, match="two records for row 'multiview'"):
        fold_accuracies([new, dict(new)])


def test_uniform_self_ensemble_by_hand():
    r = fake("multiview", 1, 0.5, se=0.5, labels=(0, 1))
    r["test"]["probs"] = {"mel": [[0.9, 0.1], [0.6, 0.4]], "mv": [[0.2, 0.8], [0.1, 0.9]]}
    # means [[0.55, 0.45], [0.35, 0.65]] → classes 0, 1: both right
    assert uniform_ensemble_accuracy(r) == 1.0
    r["test"]["labels"] = [1, 1]
    assert uniform_ensemble_accuracy(r) == 0.5
    assert fold_accuracies([r]).loc["self_ensemble_uniform"][(1, 0)] == 50


def test_paired_comparison_over_fold_means():
    recs = []
    for fold, seed, a, b in [(1, 0, 0.8, 0.7), (1, 1, 0.6, 0.7), (2, 0, 0.9, 0.6), (2, 1, 0.7, 0.8)]:
        recs += [fake("concat", fold, a) | {"seed": seed}, fake("mel", fold, b) | {"seed": seed}]
    runs = paired_comparison(recs, "concat", ["mel"], unit="run")
    folds = paired_comparison(recs, "concat", ["mel"])                  # the fold is the default unit
    assert runs.loc["mel", "pairs"] == 4 and folds.loc["mel", "pairs"] == 2
    assert (runs.attrs["unit"], folds.attrs["unit"]) == ("run", "fold")
    # fold means: concat (70, 80), mel (70, 70): differences (0, 10)
    assert folds.loc["mel", "mean_diff"] == pytest.approx(5.0)
    assert (folds.loc["mel", "wins"], folds.loc["mel", "ties"]) == (1, 1)
    with pytest.raises(ValueError, match="unit"):
        paired_comparison(recs, "concat", ["mel"], unit="clip")


def test_diagnostics_of_a_legacy_record_come_from_its_replayed_losses():
    import json

    from mvbook.book.replay import blending_diagnostics, diagnostics_table, record_rule, replay
    path = committed("esc10/cpu/mv_literal/fold1-seed0.json", "the literal-rule record")
    rec = json.loads(path.read_text())
    assert "blending" not in rec["config"] and record_rule(rec).name == "literal"
    b = replay(rec)
    assert b.weights == pytest.approx({k: v[-1] for k, v in rec["curves"]["weights"].items()})   # = recorded
    d = blending_diagnostics(rec)
    w = rec["curves"]["weights"]
    steps = rec["curves"]["step"]
    by_hand = sum(b - a for a, b, x in zip(steps[:-1], steps[1:], w["mv"][:-1]) if x == 0) / (steps[-1] - steps[0])
    assert d["zero_weight_share"]["mv"] == pytest.approx(by_hand)
    assert d["updates"] + d["fallbacks"] == len(steps) - rec["config"]["preset"]["window"] + 1
    assert d["uncredited"] == d["fallbacks"]                 # no floor: no ratio > 0 is the all-zero case
    off = sum(b - a for a, b, x in zip(steps[:-1], steps[1:], w["mv"][:-1]) if x < 1e-3) / (steps[-1] - steps[0])
    table = diagnostics_table([rec | {"path": str(path)}], "mv_literal")
    assert table.loc[(1, 0), "off mv"] == pytest.approx(off) and off >= by_hand
    assert table.loc[(1, 0), "updates"] + table.loc[(1, 0), "all-zero"] == d["updates"] + d["fallbacks"]


def test_diagnostics_a_record_states_agree_with_its_replay_and_the_rest_is_replayed():
    import json

    from mvbook.book.replay import blending_diagnostics, replay
    path = committed("esc10/cpu/multiview/fold1-seed0.json", "the authors-rule record")
    rec = json.loads(path.read_text())
    c = rec["curves"]
    again = replay(rec).diagnostics(c["step"], c["weights"], rec["best"]["weights"])
    assert {k: again[k] for k in rec["diagnostics"]} == rec["diagnostics"]          # the same code, the same floats
    d = blending_diagnostics(rec)
    assert d["replayed"] == sorted(set(again) - set(rec["diagnostics"]))
    assert blending_diagnostics(rec | {"diagnostics": again})["replayed"] == []
    # the floor: never exactly 0, yet off whenever another branch improved and this one did not
    assert set(d["zero_weight_share"].values()) == {0.0} and d["off_share"]["mv"] > 0 and d["uncredited"] > 0


def test_last_active_share_and_replayed_weights():
    import json

    from mvbook.book.replay import last_active_share, replay_weights
    r = {"curves": {"step": [0, 10, 20, 40], "weights": {"mv": [0.2, 0.5, 0.0, 0.0], "mel": [0.8, 0.5, 1.0, 1.0]}}}
    assert last_active_share(r) == 20 / 40 and last_active_share(r, "mel") == 1.0
    floored = {"curves": {"step": [0, 10, 20, 40], "weights": {"mv": [0.2, 0.5, 1e-6, 1e-6]}}}
    assert last_active_share(floored) == 20 / 40                    # a floored weight is off
    assert last_active_share({"curves": {"step": [0, 10], "weights": {"mv": [0.0, 0.0]}}}) == 0.0
    rec = json.loads(committed("esc10/cpu/mv_literal/fold1-seed0.json", "the literal-rule record").read_text())
    w = replay_weights(rec)
    assert list(w.index) == rec["curves"]["step"]
    assert all(w[k].tolist() == pytest.approx(v) for k, v in rec["curves"]["weights"].items())


def test_diagnostics_table_says_which_runs_were_replayed():
    import json

    from mvbook.book.replay import diagnostics_table
    path = committed("esc10/cpu/multiview/fold1-seed0.json", "the authors-rule record")
    rec = json.loads(path.read_text())
    full = rec | {"seed": 1, "diagnostics": rec["diagnostics"] | {"off_share": {}, "uncredited": 0}}
    t = diagnostics_table([rec, full], "multiview")
    assert t["replayed"].tolist() == [True, False]


def test_sign_flip_p_by_hand_and_against_scipy():
    from scipy import stats
    assert sign_flip_p([2.0, 1.0, 3.0, 4.0, 0.5]) == pytest.approx(2 / 32)    # one sign on 5 folds: the floor
    # (3, 1, 2, 4, -0.5), sum 9.5: assignments with |sum| >= 9.5 are ±(3, 1, 2, 4, ±0.5): 4 of 32
    assert sign_flip_p([3.0, 1.0, 2.0, 4.0, -0.5]) == pytest.approx(4 / 32)
    assert np.isnan(sign_flip_p([])) and np.isnan(sign_flip_p([0.0, 0.0])) and np.isnan(sign_flip_p(np.ones(21)))
    rng = np.random.default_rng(0)
    for n in (3, 6, 9):
        d = rng.normal(0.5, 1, n)
        ref = stats.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=10 ** 6).pvalue
        assert sign_flip_p(d) == pytest.approx(ref)


def test_holm_by_hand_and_against_its_step_down_definition():
    from mvbook.results import holm
    # sorted 0.01, 0.03, 0.04: 3 × 0.01 = 0.03; 2 × 0.03 = 0.06; 1 × 0.04 = 0.04, raised to 0.06 (monotone)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.6, 0.9]) == pytest.approx([1.0, 1.0])                      # capped at 1
    out = holm([0.5, np.nan, 0.01])                                            # NaN left out of m = 2
    assert np.isnan(out[1]) and out[[0, 2]] == pytest.approx([0.5, 0.02])
    rng = np.random.default_rng(1)
    for _ in range(200):                     # rejected at α ⇔ p_(j) < α / (m − j + 1) for every j up to its rank
        p, alpha = rng.uniform(0, 0.2, rng.integers(1, 7)), rng.choice([0.01, 0.05, 0.1])
        order = np.argsort(p, kind="stable")
        steps = p[order] < alpha / (len(p) - np.arange(len(p)))
        rejected = np.zeros(len(p), bool)
        rejected[order] = np.logical_and.accumulate(steps)
        assert np.array_equal(holm(p) < alpha, rejected)


def test_uniform_until_selected_and_as_equal_pairs_by_hand():
    from mvbook.book.replay import as_equal_pairs, uniform_until_selected

    def run(system, fold, seed, w_mv, step, acc):
        w = {"mel": [0.5, 1 - w_mv], "mv": [0.5, w_mv]}
        return {"system": system, "fold": fold, "seed": seed, "system_accuracy": acc, "accuracy": {"mv": acc},
                "best": {"step": step}, "curves": {"step": [0, 100], "weights": w}}
    # weights set at step 100 act after it: a checkpoint selected at 100 learnt under the uniform ones only
    early, late = run("multiview", 1, 0, 0.9, 100, 0.8), run("multiview", 2, 0, 0.9, 200, 0.7)
    assert uniform_until_selected(early) and not uniform_until_selected(late)
    assert uniform_until_selected(run("multiview", 1, 0, 0.5, 200, 0.8))           # Z fell back to uniform
    recs = [early, late, run("equal", 1, 0, 0.5, 100, 0.8), run("equal", 2, 0, 0.5, 200, 0.7),
            run("multiview", 3, 0, 0.9, 100, 0.6)]                                # no equal twin: left out
    pairs = as_equal_pairs(recs)
    assert list(pairs.index) == [(1, 0)] and pairs.loc[(1, 0), "same"]
    assert pairs.loc[(1, 0), "multiview (%)"] == pytest.approx(80.0)
    recs[2] = run("equal", 1, 0, 0.5, 100, 0.75)
    assert not as_equal_pairs(recs).loc[(1, 0), "same"]


def test_a_multiview_network_trained_with_uniform_weights_only_is_the_equal_runs_network():
    """What the book says of the committed runs: where no weight had moved before the selected step,
    `equal`'s run of the same fold and seed (same code, same device) has the same test accuracies."""
    import json

    from mvbook.book.replay import as_equal_pairs, uniform_until_selected, weights_summary
    root = Path(__file__).parents[1] / "results" / "esc10"
    flagged = 0
    for preset in ("cpu", "long"):
        recs = []
        for path in sorted((root / preset / "multiview").glob("*.json")):
            twin = root / preset / "equal" / path.name
            if twin.is_file():
                mv, eq = json.loads(path.read_text()), json.loads(twin.read_text())
                recs += [mv, eq]
                if uniform_until_selected(mv):
                    flagged += 1
                    assert mv["accuracy"] == eq["accuracy"] and mv["best"]["step"] == eq["best"]["step"], path
        pairs = as_equal_pairs(recs)
        assert len(pairs) == sum(uniform_until_selected(r) for r in recs if r["system"] == "multiview") \
            == weights_summary(recs, "multiview")["selected before a weight moved (runs)"]
        assert pairs.empty or pairs["same"].all()
    assert flagged >= 3, "the long runs of folds 3 and 5 (seed 0) are such networks"


def test_the_text_table_states_the_devices_and_each_row_its_own_when_they_differ():
    recs = [fake(v, f, 0.5) | {"provenance": {"device": "cpu"}} for v in ("mel", "gam") for f in (1, 2)]
    assert "trained on cpu, every run" in format_table3(recs, "esc10", "cpu")
    recs[2] |= {"provenance": {"device": "cuda:0"}}                      # gam fold 1 on a GPU
    text = format_table3(recs, "esc10", "cpu")
    assert "trained on several kinds of device (cpu, cuda): each row names its own" in text
    assert "Mel [cpu] " in text and "Gammatone [cpu, cuda] " in text
    assert "unknown" in format_table3([fake("mel", 1, 0.5)], "esc10", "cpu")     # a record that does not say


def test_no_difference_at_all_gives_p_1_not_nan():
    recs = [fake(s, f, 0.7) for f in (1, 2, 3) for s in ("concat", "mel")]
    c = paired_comparison(recs, "concat", ["mel"]).loc["mel"]
    assert (c["p_t"], c["p_sign_flip"], c["p_wilcoxon"], c["p_t_holm"]) == (1.0, 1.0, 1.0, 1.0)
