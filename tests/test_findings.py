"""The verdicts in plain words (mvbook.book.findings)."""
from pathlib import Path

import pytest
from scipy import stats
from test_plots import fake_record

from mvbook.book import findings as F
from mvbook.book import summary as S
from mvbook.plan import decide
from mvbook.records import load_records


def test_verdict_table_decides_each_claim_at_each_length(tmp_path):
    cpu = [fake_record(tmp_path / "c", s, f, acc=a + 0.01 * f) for s, a in (("multiview", 0.6), ("concat", 0.7))
           for f in (1, 2, 3)]
    long = [fake_record(tmp_path / "l", s, f, acc=a) for s, f, a in
            (("multiview", 1, 0.80), ("multiview", 2, 0.90), ("multiview", 3, 0.70),
             ("concat", 1, 0.75), ("concat", 2, 0.80), ("concat", 3, 0.70))]
    family = [("multi-view above concatenation", "multiview", "concat"), ("multi-view above Mel", "multiview", "mel")]
    t = F.verdict_table({"cpu": cpu, "long": long}, family)
    row = t.loc["multi-view above concatenation"]
    # cpu: −10 on every fold (no spread: no t-test, so not shown); long: +5, +10, 0 → +5.00
    assert (row["cpu: verdict"], row["cpu: points"], row["cpu: p (Holm)"]) == ("not shown", "−10.00", "— (—)")
    p = stats.ttest_1samp([5, 10, 0], 0).pvalue
    assert (row["long: verdict"], row["long: points"]) == ("not shown", "+5.00")
    assert row["long: p (Holm)"] == f"{S.fmt_p(p)} ({S.fmt_p(p)})"           # the other claim has no test
    assert t.loc["multi-view above Mel", "long: verdict"] == "too few runs"
    # decisions a chapter has made already are read, not made again
    decided = {"cpu": decide(cpu, family), "long": decide(long, family)}
    assert F.verdict_table({"cpu": cpu, "long": long}, family, decided=decided).equals(t)
    decided["cpu"].loc["multi-view above concatenation", "verdict"] = "reversed"
    again = F.verdict_table({"cpu": cpu, "long": long}, family, decided=decided)
    assert again.loc["multi-view above concatenation", "cpu: verdict"] == "reversed"


def test_bottom_line_on_the_committed_records():
    recs = [r for r in load_records("results") if r["dataset"] == "esc10"]
    groups = {p: [r for r in recs if r["preset"] == p] for p in ("cpu", "long")}
    lines = F.bottom_line(groups)
    assert 3 <= len(lines) <= 5 and lines[0].startswith("**Best system.** At `cpu`")
    assert "p =" not in lines[0] and "p-value" not in " ".join(lines)
    table = F.verdict_table(groups)
    held = (table["cpu: verdict"] == "holds").sum()
    assert f"at `cpu` {held} hold" in lines[2]
    assert F.bottom_line({"cpu": []}) == []
    # the plan's grid, counted from the committed file names, until its required stages are complete
    landed = sum(len(list(Path("results/esc10/cpu", s).glob(f"fold[1-5]-seed{d}.json")))
                 for s in ("multiview", "equal", "mel", "gam", "cqt", "raw") for d in range(3, 13))
    said = f"(seeds 3–12, drawn per fold) are {landed} of 300 in, so its verdicts can still change."
    assert (said in lines[-1]) == (landed < 300)


def test_bottom_line_reads_the_decisions_it_is_given(tmp_path):
    from mvbook.plan import decide
    cfg = {"config": {"steps": 600, "epochs": 120, "blending": {}}}
    groups = {"cpu": [fake_record(tmp_path, s, f, acc=a + 0.02 * f * (s == "equal")) | cfg
                      for s, a in (("multiview", 0.75), ("equal", 0.7), ("concat", 0.72)) for f in (1, 2, 3)]}
    decided = {"cpu": decide(groups["cpu"])}
    assert F.bottom_line(groups, decided) == F.bottom_line(groups)
    forged = {"cpu": decided["cpu"].assign(mean_diff=decided["cpu"]["mean_diff"] + 1.0)}
    assert F.bottom_line(groups, forged) != F.bottom_line(groups)


def _run(val, test, selected, weights, main="mv"):
    return {"system": "multiview", "main_branch": main,
            "config": {"split": {"val": 27}, "blending": {"rule": "authors"}},
            "curves": {"accuracy": {"val": {main: val}, "test": {main: test}}},
            "best": {"val_accuracy": val[selected], "weights": weights}, "accuracy": {main: test[selected]}}


def test_selection_noise_and_ensemble_weights_by_hand():
    one_hot = {"mel": 0.995, "gam": 0.005, "cqt": 0, "raw": 0, "mv": 0}
    uniform = dict.fromkeys(one_hot, 0.2)
    runs = [_run([0.5, 0.8, 0.8], [0.6, 0.7, 0.9], 1, one_hot),          # tie at 0.8: the loss chose step 1
            _run([0.5, 0.9, 0.8], [0.6, 0.7, 0.7], 1, uniform)]
    n = F.selection_noise(runs)
    assert (n["runs"], n["val_clips"], n["ties"]) == (2, [27], 1)
    assert n["gap"] == pytest.approx((20 + 0) / 2)                      # best test 0.9 vs selected 0.7; 0.7 vs 0.7
    assert F.ensemble_weights(runs) == {"runs": 2, "one_hot": 1, "uniform": 1}
    text = F.noise_paragraph({"cpu": runs})
    assert "one-hot in 1 and uniform in 1 of 2" in text and "1 of 2 runs tie" in text and "10.00 points" in text
    assert F.noise_paragraph({"cpu": []}) == ""


def test_preset_differences_name_everything_that_differs():
    items = F.preset_differences("cpu", "long", steps_per_epoch=5)
    text = " ".join(items)
    assert "120 → 600 epochs" in text and "warm-up" in text and "60 → 300 steps" in text
    assert "(30 → 30 evaluations per run)" in text and "at epochs 12, 24, 36 → 60, 120, 180" in text
    assert F.preset_differences("cpu", "cpu") == []
