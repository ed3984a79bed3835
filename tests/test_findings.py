"""The verdicts in plain words (mvbook.findings)."""
from scipy import stats
from test_plots import fake_record

from mvbook import findings as F
from mvbook import summary as S
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
