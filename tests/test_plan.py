"""The analysis plan of the blending question (mvbook.plan), on the committed ESC-10 records."""
from typing import get_args

import numpy as np
import pytest
from scipy import stats

from mvbook.plan import (
    ALPHA,
    FAMILY,
    TOO_FEW,
    VERDICTS,
    Outcome,
    Verdict,
    claim_verdict,
    decide,
    design,
    progress,
    required_done,
    run_differences,
    verdict_words,
)
from mvbook.power import minimum_detectable_difference
from mvbook.records import load_records
from mvbook.results import holm, paired_comparison


@pytest.fixture(scope="module")
def esc10():
    # the records there when the plan was committed: cpu seeds 0–2, long seed 0 (later runs do not change them)
    recs = [r for r in load_records("results") if r["dataset"] == "esc10"]
    return {"cpu": [r for r in recs if r["preset"] == "cpu" and r["seed"] <= 2],
            "long": [r for r in recs if r["preset"] == "long" and r["seed"] == 0]}


def test_the_family_is_the_eight_claims_of_the_plan():
    assert len(FAMILY) == 8 and {b for _, _, b in FAMILY} == {"equal", "late", "concat", "mel", "gam", "cqt", "raw",
                                                             "multiview"}


def test_verdicts_cover_both_signs_and_the_zero_difference(esc10):
    family = FAMILY + (("CQT above multi-view", "cqt", "multiview"),)
    cpu = decide(esc10["cpu"], family)
    assert cpu.loc["multi-view above CQT", "verdict"] == "holds"
    assert cpu.loc["CQT above multi-view", "verdict"] == "reversed"            # significant, against the claim
    concat = cpu.loc["multi-view above concatenation"]
    assert concat.mean_diff < 0 and concat.p < ALPHA * 2 and concat.verdict == "not shown"   # negative, not significant
    long = decide(esc10["long"])
    gam = long.loc["multi-view above Gammatone"]
    assert abs(gam.mean_diff) < 0.005 and gam.verdict == "not shown"          # no difference at all
    assert set(cpu["verdict"]) | set(long["verdict"]) <= set(get_args(Verdict)) == {"holds", "reversed", "not shown"}


def test_the_verdict_words_are_one_list():
    """The ``Literal`` the type checker holds the code to and the words the book explains are the same."""
    assert list(VERDICTS) == list(get_args(Verdict))
    assert [w for arm in get_args(Outcome) for w in get_args(arm)] == [*VERDICTS, TOO_FEW] and TOO_FEW not in VERDICTS


def test_the_primary_test_is_the_fold_level_paired_test_with_holm(esc10):
    cpu = decide(esc10["cpu"])
    pc = paired_comparison(esc10["cpu"], "multiview", ["equal", "late", "concat", "mel", "gam", "cqt", "raw"])
    for claim, row, base in FAMILY[:-1]:
        assert cpu.loc[claim, "p"] == pytest.approx(pc.loc[base, "p_t"])
        assert cpu.loc[claim, "mean_diff"] == pytest.approx(pc.loc[base, "mean_diff"])
    assert np.allclose(cpu["p_holm"], holm(cpu["p"]))
    assert (cpu["p_holm"] >= cpu["p"]).all() and (cpu["mdd"] > 0).all()
    assert (cpu["per_fold_runs"] == 0).all()          # every committed cpu run shares its seeds with the folds


def test_run_differences_give_each_scheme_its_seed_levels(esc10):
    d = run_differences(esc10["cpu"], "multiview", "equal")
    assert len(d) == 15 and set(d["scheme"]) == {"shared"} and set(d["level"]) == {"0", "1", "2"}
    rec = dict(esc10["cpu"][0])
    assert run_differences([rec], "multiview", "nosuch").empty


def test_the_design_shrinks_with_seeds_down_to_its_floor(esc10):
    plan = design(esc10["cpu"], seeds=(3, 13))
    assert (plan["3 seeds"] > plan["13 seeds"]).all() and (plan["13 seeds"] >= plan["floor"]).all()
    assert (plan["3 seeds"] > plan["3 seeds, α"]).all()                       # α / 8 asks for more than α


def fake(system, fold, acc, seed=0, scheme=None):
    r = {"system": system, "dataset": "esc10", "fold": fold, "seed": seed, "preset": "cpu", "main_branch": system,
         "system_accuracy": acc, "accuracy": {system: acc},
         "test": {"keys": ["a", "b"], "labels": [0, 1], "probs": {system: [[0.9, 0.1], [0.2, 0.8]]}}}
    return r | ({"config": {"seed_scheme": scheme}} if scheme else {})


def test_claim_verdict_by_hand():
    recs = []
    for fold, a, b in [(1, 0.8, 0.7), (2, 0.9, 0.7), (3, 0.85, 0.75), (4, 0.8, 0.72), (5, 0.9, 0.8)]:
        recs += [fake("concat", fold, a), fake("mel", fold, b)]
    v = claim_verdict(recs, "concat", "mel")
    assert v["verdict"] == "holds" and v["pairs"] == 5 and v["wins"] == 5
    assert v["mean_diff"] == pytest.approx(11.6)                    # (10 + 20 + 10 + 8 + 10) / 5
    d = np.array([10, 20, 10, 8, 10.0])
    assert v["ci95"] == pytest.approx(stats.t.ppf(0.975, 4) * d.std(ddof=1) / np.sqrt(5))
    assert v["p_sign_flip"] == pytest.approx(2 / 32)
    assert v["mdd"] == pytest.approx(minimum_detectable_difference(d.std(ddof=1), 5))   # one run per fold
    back = claim_verdict(recs, "mel", "concat")
    assert back["verdict"] == "reversed" and back["mean_diff"] == pytest.approx(-11.6)
    assert claim_verdict(recs[:2], "concat", "mel")["verdict"] == "too few runs"
    assert "reversed" in verdict_words(back, adjusted=False) and "−11.60 points over 5 folds" in verdict_words(
        back, adjusted=False)


@pytest.mark.parametrize("diff, word", [(0.0, "not shown"), (-0.004, "not shown"), (0.004, "not shown")])
def test_no_difference_the_tables_show_is_decided(diff, word):
    """A difference under 0.005 points (+0.00 at two decimals) is not shown, whichever its sign."""
    recs = [fake(s, fold, 0.7 + (diff / 100 if s == "concat" else 0) + 0.01 * fold)
            for fold in (1, 2, 3) for s in ("concat", "mel")]
    v = claim_verdict(recs, "concat", "mel")
    assert v["verdict"] == word
    if diff == 0:
        assert v["p"] == 1.0 and v["p_sign_flip"] == 1.0             # nothing to find: p is 1, not NaN


def test_a_non_significant_difference_of_either_sign_is_not_shown():
    accs = {1: (0.80, 0.70), 2: (0.70, 0.80), 3: (0.80, 0.75), 4: (0.70, 0.72), 5: (0.80, 0.70)}
    recs = [fake(s, f, a) for f, pair in accs.items() for s, a in zip(("concat", "mel"), pair)]
    for row, base in (("concat", "mel"), ("mel", "concat")):
        v = claim_verdict(recs, row, base)
        assert v["p"] > ALPHA and v["verdict"] == "not shown"


def test_the_nested_seeds_have_their_own_test(tmp_path):
    recs = []
    for fold in (1, 2, 3):
        for seed, scheme in ((0, None), (3, "per_fold"), (4, "per_fold")):
            recs += [fake("concat", fold, 0.8 + 0.01 * seed, seed, scheme), fake("mel", fold, 0.7, seed, scheme)]
    v = claim_verdict(recs, "concat", "mel")
    assert (v["runs"], v["per_fold_runs"]) == (9, 6)
    assert v["mean_diff_per_fold"] == pytest.approx(13.5) and v["mean_diff"] == pytest.approx(12.333333)
    d = run_differences(recs, "concat", "mel")
    assert set(d.loc[d["scheme"] == "per_fold", "level"]) == {f"{f}:{s}" for f in (1, 2, 3) for s in (3, 4)}
    mixed = recs + [fake("gam", 1, 0.7, 0, "per_fold")]
    with pytest.raises(ValueError, match="fold 1 seed 0: records of both seed schemes"):
        run_differences(mixed, "concat", "mel")


def test_progress_counts_the_plans_runs_of_the_per_fold_scheme_only():
    per_fold = {"seed_scheme": "per_fold"}
    recs = ([{"system": "multiview", "fold": f, "seed": 3, "config": per_fold} for f in (1, 2)]
            + [{"system": "equal", "fold": 1, "seed": 12, "config": per_fold},
               {"system": "equal", "fold": 1, "seed": 13, "config": per_fold},           # not a seed of the plan
               {"system": "mel", "fold": 1, "seed": 0, "config": {}},                    # a shared seed
               {"system": "mel", "fold": 1, "seed": 3, "config": {"seed_scheme": "shared"}},
               {"system": "mv_w1", "fold": 1, "seed": 3, "config": per_fold},            # not a row of the plan
               {"system": "concat", "fold": 5, "seed": 7, "config": per_fold}])
    g = progress(recs)
    assert list(g.index) == ["stage 1", "stage 2", "stage 3"]
    assert g["planned"].tolist() == [2 * 5 * 10, 4 * 5 * 10, 5 * 10]
    assert g["landed"].tolist() == [3, 0, 1]
    assert g["required"].tolist() == [True, True, False]
    assert progress(recs, folds=(1,))["planned"].tolist() == [20, 40, 10]
    assert not required_done(g)
    full = [{"system": s, "fold": f, "seed": d, "config": per_fold}
            for s in ("multiview", "equal", "mel", "gam", "cqt", "raw") for f in range(1, 6) for d in range(3, 13)]
    assert required_done(progress(full)) and progress(full)["landed"].tolist() == [100, 200, 0]
