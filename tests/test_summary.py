"""mvbook.book.summary: the numbers and sentences of the book's prose, on made-up records."""
import numpy as np
import pandas as pd
import pytest
from test_plots import fake_record

from mvbook.book import summary as S


def test_fmt_p_and_the_smallest_wilcoxon_p():
    assert S.fmt_p(0.0004) == "< 0.001" and S.fmt_p(0.0123) == "0.012" and S.fmt_p(float("nan")) == "—"
    assert S.min_wilcoxon_p(5) == 0.0625 and S.min_wilcoxon_p(6) == 0.03125 and S.min_wilcoxon_p(0) == 1.0
    five = pd.DataFrame({"pairs": [5, 3]})
    assert "0.0625" in S.wilcoxon_note(five) and S.wilcoxon_note(pd.DataFrame({"pairs": [15]})) == ""
    assert S.COMPARISON_FORMAT["p_t"](1e-7) == "< 0.001"
    assert S.COMPARISON_FORMAT["mean_diff"](-1) == "−1.00"                 # a true minus sign (results.signed)


def test_findings_table_compares_every_row_on_the_same_folds(tmp_path):
    recs = [fake_record(tmp_path, "multiview", f, acc=0.6) for f in (1, 2, 3)]
    recs += [fake_record(tmp_path, "concat", f, seed=s, acc=0.7 + 0.1 * s) for f in (1, 2, 3) for s in (0, 1)]
    t = S.findings_table(recs, rows=("multiview", "concat", "fusionnet"))
    assert list(t.index) == ["multiview", "concat"]                      # no fusionnet runs: no line
    assert "seed 0" not in t.columns                                       # every row reads all its runs
    assert np.isclose(t.loc["concat", "mean"], 75) and t.loc["concat", "runs"] == 6 and t.loc["concat", "folds"] == 3
    assert np.isclose(t.loc["concat", "− multiview"], 10)   # fold means over the seeds both have: seed 0
    assert t.loc["concat", "ahead"] == 3 == t.loc["concat", "of"]
    assert np.isnan(t.loc["concat", "p_t"]) and t.loc["concat", "p_sign_flip"] == 2 / 8   # (10, 10, 10): 2 of 8 flips
    assert t.loc["multiview", "paper (ESC-50)"] == 86.65
    sentence = S.compare_sentence(recs, "concat", "multiview")
    assert sentence == ("Concat. fusion − Multi-view: +10.00 points over 3 folds (ahead on 3, behind on 0; "
                        "paired t-test no p, sign-flip test p = 0.250)")
    assert S.compare_sentence(recs, "concat", "fusionnet") == ""


def test_weight_pattern_and_preset_cost(tmp_path):
    rec = fake_record(tmp_path, "multiview", 1)
    steps = rec["curves"]["step"]
    n = len(steps)
    rec["curves"]["weights"] = {"mel": [1.0 if s <= steps[-1] / 2 else 0.0 for s in steps],
                                "raw": [0.0 if s <= steps[-1] / 2 else 1.0 for s in steps]}
    w = S.weight_pattern([rec], "multiview")
    assert w.loc["first half", "mel"] == 1.0 and w.loc["second half", "raw"] == 1.0 and n > 2
    assert S.weight_pattern([rec], "mv_literal").empty
    rec["config"] = {"steps": 600, "epochs": 120}
    cost = S.preset_cost(rec)
    assert cost == {"epochs": 120, "epochs_paper": 3000, "steps": 600, "steps_paper": 75000, "step_share": 0.008}


def test_count_makes_a_plural_unless_one():
    assert (S.count(1, "fold"), S.count(2, "fold"), S.count(0, "run")) == ("1 fold", "2 folds", "0 runs")


def test_length_margins_pair_only_runs_both_lengths_have(tmp_path):
    short = [fake_record(tmp_path, s, f, acc=a) for s, f, a in
             [("multiview", 1, 0.70), ("concat", 1, 0.80), ("multiview", 2, 0.80), ("concat", 2, 0.75),
              ("multiview", 3, 0.50), ("concat", 3, 0.50), ("equal", 1, 0.60)]]
    long = [fake_record(tmp_path, s, f, acc=a) for s, f, a in
            [("multiview", 1, 0.85), ("concat", 1, 0.80), ("multiview", 2, 0.90), ("concat", 2, 0.80),
             ("equal", 2, 0.70)]]
    m = S.length_margins(short, long)
    # concat: folds 1 and 2 (fold 3 has no long run): short (−10 + 5) / 2, long (5 + 10) / 2
    assert m.loc["concat"].tolist() == [-2.5, 7.5, 2]
    assert "equal" not in m.index                   # equal ran short on fold 1 and long on fold 2 only


def test_rerun_drift_sets_each_rerun_beside_its_record(tmp_path):
    prov = {"git_commit": "abc", "torch": "2.14.1", "torch_threads": 1}
    recs = [fake_record(tmp_path, "mel", f, acc=a) | {"provenance": prov} for f, a in ((1, 0.7625), (2, 0.8))]
    again = [fake_record(tmp_path / "re", "mel", 1, acc=0.775) | {"provenance": prov},
             fake_record(tmp_path / "re", "mel", 2, acc=0.8) | {"provenance": prov | {"torch_threads": 2}},
             fake_record(tmp_path / "re", "gam", 1, acc=0.5) | {"provenance": prov}]      # no record: left out
    again[0]["best"] = {"step": 220, "weights": {}}
    d = S.rerun_drift(recs, again)
    assert list(d.index) == [("mel", 1, 0), ("mel", 2, 0)]
    assert d.loc[("mel", 1, 0), "Δ"] == pytest.approx(1.25) and d.loc[("mel", 1, 0), "re-run"] == pytest.approx(77.5)
    assert (d.loc[("mel", 1, 0), "step (record)"], d.loc[("mel", 1, 0), "step (re-run)"]) == (50, 220)
    assert d["same code, torch and threads"].tolist() == [True, False]


def test_pattern_checks_judge_each_branch_against_its_uniform_share():
    uniform = pd.DataFrame({k: [0.2, 0.2] for k in ("mel", "gam", "cqt", "raw", "mv")},
                           index=["first half", "second half"])
    assert not any(S.pattern_checks(uniform).values())       # the sum of three 2D weights (0.6 > 0.2) is no test
    paper = uniform.copy()
    paper.loc["first half"] = [0.25, 0.25, 0.25, 0.05, 0.2]
    paper.loc["second half"] = [0.15, 0.15, 0.15, 0.35, 0.2]
    assert all(S.pattern_checks(paper).values())
    raw_first = paper.copy()
    raw_first.loc["first half", "raw"] = 0.3                  # raw the largest from the start
    checks = S.pattern_checks(raw_first)
    assert [k for k, ok in checks.items() if not ok] == ["each 2D branch above raw in the first half"]


def test_scale_table_pairs_the_runs_both_lengths_have(tmp_path):
    short = [fake_record(tmp_path / "s", "multiview", f, seed=k, acc=a)
             for f, k, a in ((1, 0, 0.70), (1, 1, 0.60), (2, 0, 0.80), (3, 0, 0.75))]
    long = [fake_record(tmp_path / "l", "multiview", f, acc=a) for f, a in ((1, 0.85), (2, 0.70))]
    t = S.scale_table(short, long, rows=["multiview", "concat"])
    mv = t.loc["multiview"]
    assert (mv["short runs"], mv["long runs"], mv["pairs"]) == (4, 2, 2)
    assert mv["long − short"] == pytest.approx(((85 - 70) + (70 - 80)) / 2)          # fold 1 seed 0, fold 2 seed 0
    assert mv["sign-flip p (folds)"] == pytest.approx(1.0)       # (+15, −10): all 4 sign choices give |mean| >= 2.5
    assert t.loc["concat", "pairs"] == 0 and np.isnan(t.loc["concat", "long − short"])


def test_rerun_drift_does_not_conflate_datasets_or_presets(tmp_path):
    """A re-run is set beside the record of its own dataset and preset only, and the
    rows of two (dataset, preset) groups are never merged into one (system, fold, seed) row."""
    from mvbook.errors import DataError
    prov = {"git_commit": "abc", "torch": "2.14.1", "torch_threads": 1}
    cpu = fake_record(tmp_path, "mel", 1, acc=0.7) | {"provenance": prov}
    long = fake_record(tmp_path / "l", "mel", 1, acc=0.9) | {"provenance": prov, "preset": "long"}
    again_cpu = fake_record(tmp_path / "re", "mel", 1, acc=0.75) | {"provenance": prov}
    again_long = fake_record(tmp_path / "rl", "mel", 1, acc=0.8) | {"provenance": prov, "preset": "long"}
    assert S.rerun_drift([cpu], [again_long]).empty                      # another preset: not this run
    d = S.rerun_drift([cpu], [again_long, again_cpu])
    assert d.loc[("mel", 1, 0), "Δ"] == pytest.approx(5.0)
    with pytest.raises(DataError, match="one dataset and preset"):
        S.rerun_drift([cpu, long], [again_cpu, again_long])               # two groups: (mel, 1, 0) twice


def test_preset_cost_counts_the_paper_steps_on_the_dataset_compared_with(tmp_path):
    """The paper's steps are its epochs × the steps of one epoch on the same dataset
    (training clips of a fold / batch 64, rounded up as training does)."""
    rec = fake_record(tmp_path, "multiview", 1) | {"config": {"steps": 600, "epochs": 120}}
    assert S.preset_cost(rec)["steps_paper"] == 3000 * 25                        # ESC-50, the chapters' default
    assert S.preset_cost(rec, "esc50") == S.preset_cost(rec)
    assert S.preset_cost(rec, "gtzan")["steps_paper"] == 1500 * 15               # 900 training clips: 15 steps
    assert S.preset_cost(rec, "dcase2016")["steps_paper"] == 1500 * 19           # 1,170 development segments
    own = S.preset_cost(rec, None)                                                # the record's dataset: ESC-10
    assert (own["epochs_paper"], own["steps_paper"], own["step_share"]) == (3000, 3000 * 5, 600 / 15000)


def test_scale_sentence_names_the_row_it_compares(tmp_path):
    cfg = {"config": {"steps": 600, "epochs": 120, "blending": {}}}
    recs = [fake_record(tmp_path, s, f, acc=a + 0.01 * f) | cfg
            for s, a in (("mv_slope", 0.8), ("concat", 0.7), ("multiview", 0.75)) for f in (1, 2, 3)]
    slope = S.scale_sentence(recs, "cpu", row="mv_slope")
    assert "multi-view network" not in slope and "multi-view −" not in slope
    assert slope.count("`mv_slope`") == 2 and "82.00 %" in slope                # mean of 81, 82, 83
    mv = S.scale_sentence(recs, "cpu")
    assert "the multi-view network reaches 77.00 %" in mv and "Paired over fold means, multi-view − " in mv


def test_scale_sentence_takes_the_chapters_decisions_and_refuses_another_rows(tmp_path):
    from mvbook.plan import decide
    cfg = {"config": {"steps": 600, "epochs": 120, "blending": {}}}
    recs = [fake_record(tmp_path, s, f, acc=a + 0.01 * f * (s == "concat")) | cfg
            for s, a in (("mv_slope", 0.8), ("concat", 0.7), ("multiview", 0.75)) for f in (1, 2, 3)]
    decided = decide(recs)
    assert S.scale_sentence(recs, "cpu", decided=decided) == S.scale_sentence(recs, "cpu")
    forged = decided.assign(mean_diff=decided["mean_diff"] + 1.0)        # the sentence reads what it is given
    assert S.scale_sentence(recs, "cpu", decided=forged) != S.scale_sentence(recs, "cpu")
    with pytest.raises(ValueError, match="not those of row 'mv_slope'"):
        S.scale_sentence(recs, "cpu", row="mv_slope", decided=decided)


def test_disagreement_sentence_names_the_flips_and_what_is_significant(tmp_path):
    cfg = {"config": {"steps": 600, "epochs": 120, "blending": {}}}

    def recs(accs):
        return [fake_record(tmp_path, s, f, acc=a) | cfg for s, row in accs.items() for f, a in enumerate(row, 1)]
    # cpu: multi-view − concat = −5, −6, −4 (t = −8.66, 2 df: p 0.013); − equal = +1, +2, +1
    short = recs({"multiview": [0.70, 0.71, 0.72], "concat": [0.75, 0.77, 0.76], "equal": [0.69, 0.69, 0.71]})
    # long: − concat = −1, +4, +1 (mean +1.33, p 0.46); − equal = +1, +1, +2: no flip
    long = recs({"multiview": [0.80, 0.83, 0.80], "concat": [0.81, 0.79, 0.79], "equal": [0.79, 0.82, 0.78]})
    assert S.scale_disagreements(short, long) == ["concat"]
    said = S.disagreement_sentence(short, long)
    assert said.startswith("**The two lengths disagree** on concatenation (−5.00 points at `cpu`, +1.33 at `long`):")
    assert "Significant (paired t-test over fold means, p < 0.05): concatenation at `cpu` (p = 0.013)." in said
    assert "equal" not in said and S.disagreement_sentence(short, short) == ""
    quiet = recs({"multiview": [0.70, 0.71, 0.72], "concat": [0.75, 0.70, 0.74]})     # −5, +1, −2: p 0.37
    assert S.disagreement_sentence(quiet, long, ("a", "b")).endswith(
        "None of these differences is significant at either length (paired t-test over fold means, p ≥ 0.05).")


def test_pattern_checks_say_which_branch_is_late():
    w = pd.DataFrame({k: [0.25, 0.15] for k in ("mel", "gam", "cqt")} | {"mv": [0.2, 0.2], "raw": [0.05, 0.35]},
                     index=["first half", "second half"])
    assert list(S.pattern_checks(w)) == [                                  # the default: raw, as the chapters say
        "each 2D branch above its uniform share (0.20) in the first half", "each 2D branch above raw in the first half",
        "each 2D branch lower in the second half", "raw higher in the second half"]
    checks = S.pattern_checks(w, late="mv")
    assert not any("raw" in claim for claim in checks)
    assert checks["mv higher in the second half"] is False and checks["each 2D branch above mv in the first half"]


def test_scale_table_and_sentence_weigh_each_fold_once(tmp_path):
    """Seeds on some folds only: every mean and difference averages within each fold
    first, and the sentence says which seeds ran on which folds."""
    cfg = {"config": {"steps": 600, "epochs": 120, "blending": {}}}
    short = [fake_record(tmp_path / "s", "multiview", f, seed=k, acc=a) | cfg
             for f, k, a in ((1, 0, 0.70), (1, 1, 0.60), (2, 0, 0.80))]
    long = [fake_record(tmp_path / "l", "multiview", f, seed=k, acc=a) | cfg
            for f, k, a in ((1, 0, 0.85), (1, 1, 0.75), (2, 0, 0.70))]
    mv = S.scale_table(short, long, rows=["multiview"]).loc["multiview"]
    assert (mv["short mean"], mv["long mean"]) == (pytest.approx((65 + 80) / 2), pytest.approx((80 + 70) / 2))
    assert mv["pairs"] == 3 and mv["long − short"] == pytest.approx((15 + -10) / 2)     # runs: (15 + 15 − 10) / 3
    assert mv["long − short"] == pytest.approx(mv["long mean"] - mv["short mean"])
    concat = [fake_record(tmp_path / "c", "concat", f, acc=0.7) | cfg for f in (1, 2)]
    sentence = S.scale_sentence(long + concat, "long")
    assert "2 folds: seeds 0–1 on fold 1; seed 0 on fold 2" in sentence and "reaches 75.00 % (3 runs)" in sentence
    assert "5 folds × 3 seeds" == S.design_words([{"fold": f, "seed": k} for f in range(1, 6) for k in range(3)])


def test_uniform_sentence_states_the_share_of_uniform_measurements_counted_by_hand():
    import json
    from pathlib import Path
    root = Path(__file__).parents[1] / "results" / "esc10" / "long"
    recs = [json.loads(p.read_text()) for p in sorted(root.glob("*/*.json"))]
    assert recs, "results/esc10/long holds the long records"
    share = []
    for r in recs:
        if r["system"] == "multiview":
            w, W = r["curves"]["weights"], r["config"]["preset"]["window"]
            n = len(r["curves"]["step"])
            # from the first measurement Eq. 5 can set on, the all-zero ones leave every weight at exactly 1/5
            share.append(np.mean([all(abs(v[i] - 0.2) < 1e-9 for v in w.values()) for i in range(W, n)]))
    text = S.uniform_sentence({"long": recs})
    assert text.startswith(f"Algorithm 1 found no branch setting a new validation minimum at {np.mean(share):.0%} "
                           f"of its measurements at `long` ({len(share)} runs)")
    assert "the weights return to 1/5 each" in text
    mv = {(r["fold"], r["seed"]): r["accuracy"] for r in recs if r["system"] == "multiview"}
    eq = {(r["fold"], r["seed"]): r["accuracy"] for r in recs if r["system"] == "equal"}
    same = sum(mv[k] == eq[k] for k in mv.keys() & eq.keys())
    assert f"of the {len(mv.keys() & eq.keys())} multi-view runs with a run of `equal`" in text
    assert f"all {same} have the same test accuracy on every branch" in text
    assert S.uniform_sentence({"long": [r for r in recs if r["system"] != "multiview"]}) == ""
