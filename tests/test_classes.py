"""Per-class accuracy, confusion and complementarity (mvbook.book.classes), by hand and on the records."""
import numpy as np
import pytest

from mvbook.book.classes import complementarity, confusion, per_class_accuracy, run_predictions
from mvbook.records import load_records
from mvbook.results import table3

VIEWS = ("mel", "gam", "cqt", "raw")


def _hand():
    labels = np.array([0, 0, 1, 1, 2])
    return {(1, 0): {"labels": labels,
                     "mel": np.array([0, 1, 1, 1, 0]), "gam": np.array([1, 1, 1, 0, 2]),
                     "cqt": np.array([1, 1, 0, 0, 0]), "raw": np.array([1, 1, 0, 0, 0]),
                     "late": np.array([0, 1, 1, 1, 2]), "multiview": np.array([0, 0, 1, 0, 0])}}


def test_by_hand():
    p = _hand()
    t = per_class_accuracy(p, ["a", "b", "c"])
    assert t.loc["mel"].tolist() == [50.0, 100.0, 0.0] and t.loc["multiview"].tolist() == [100.0, 50.0, 0.0]
    M = confusion(p, "mel", 3)
    assert M.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]] and M.sum() == 5
    c = complementarity(p, VIEWS)
    # right per clip — mel: 1 0 1 1 0; gam: 0 0 1 0 1; cqt, raw: 0 0 0 0 0 → any: 1 0 1 1 1; every: none
    assert c["at least one view"] == pytest.approx(80.0) and c["every view"] == 0.0
    assert c["best single view (mel)"] == pytest.approx(60.0)
    assert (c["late fusion"], c["multi-view"], c["clips"]) == (pytest.approx(80.0), pytest.approx(60.0), 5.0)


def test_on_the_records_the_rows_match_table3():
    recs = [r for r in load_records("results") if r["dataset"] == "esc10" and r["preset"] == "cpu" and r["seed"] <= 2]
    p = run_predictions(recs)
    assert len(p) == 15 and all(len(x["labels"]) == 80 for x in p.values())
    c = complementarity(p)
    acc = table3(recs)["mean"]               # balanced rows of 15 runs: the mean of the runs
    assert c["late fusion"] == pytest.approx(acc["late"]) and c["multi-view"] == pytest.approx(acc["multiview"])
    assert c["at least one view"] >= max(c.iloc[2], c["late fusion"], c["multi-view"])
    t = per_class_accuracy(p, recs[0]["config"]["classes"])
    assert t.loc["mel"].mean() == pytest.approx(acc["mel"])   # 8 test clips per class per fold
