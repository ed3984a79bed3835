"""The analysis plan of the blending question (mvbook.plan), on the committed ESC-10 records."""
import numpy as np
import pytest

from mvbook.plan import ALPHA, FAMILY, decide, design, run_differences
from mvbook.records import load_records
from mvbook.results import holm, paired_comparison


@pytest.fixture(scope="module")
def esc10():
    recs = load_records("results")
    return {p: [r for r in recs if r["dataset"] == "esc10" and r["preset"] == p] for p in ("cpu", "long")}


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
    assert set(cpu["verdict"]) | set(long["verdict"]) <= {"holds", "reversed", "not shown"}


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
