"""Eq. 6–7 against a hand-computed example."""
import numpy as np
import pytest

from mvbook.ensemble import late_fusion, predict, self_ensemble
from mvbook.errors import DataError
from mvbook.systems import DERIVED


def test_self_ensemble_by_hand():
    probs = {"mel": [[0.6, 0.4]], "gam": [[0.2, 0.8]], "cqt": [[0.5, 0.5]], "raw": [[0.9, 0.1]], "mv": [[0.3, 0.7]]}
    w = {"mel": 0.1, "gam": 0.2, "cqt": 0.0, "raw": 0.3, "mv": 0.4}
    P = self_ensemble(probs, w)
    # class 0: (0.06 + 0.04 + 0 + 0.27 + 0.12) / 5 = 0.098 ; class 1: (0.04 + 0.16 + 0 + 0.03 + 0.28) / 5 = 0.102
    assert P == pytest.approx(np.array([[0.098, 0.102]]))
    assert predict(P).tolist() == [1]
    # uniform weights would pick class 0: (0.6+0.2+0.5+0.9+0.3) = 2.5 vs 2.5 → tie → first; shift mel a bit
    probs["mel"] = [[0.7, 0.3]]
    assert predict(self_ensemble(probs, dict.fromkeys(w, 0.2))).tolist() == [0]


def test_branch_mismatch_is_an_error():
    with pytest.raises(ValueError, match="branches differ"):
        self_ensemble({"mel": [[1.0]]}, {"gam": 1.0})


def _run(system, probs, keys=("a", "b")):
    return {"system": system, "main_branch": system, "test": {"keys": list(keys), "labels": [0, 1],
                                                               "probs": {system: probs}}}


def test_late_fusion_by_hand():
    # mean of [[.6,.4],[.4,.6]], [[.2,.8],[.4,.6]], [[.7,.3],[.9,.1]], [[.9,.1],[.1,.9]] = [[.6,.4],[.45,.55]]
    P = {"mel": [[.6, .4], [.4, .6]], "gam": [[.2, .8], [.4, .6]], "cqt": [[.7, .3], [.9, .1]],
         "raw": [[.9, .1], [.1, .9]]}
    out = late_fusion({v: _run(v, P[v]) for v in P}, DERIVED["late"])
    assert np.allclose(out["probs"], [[.6, .4], [.45, .55]])
    assert out["accuracy"] == 1.0


def test_late_fusion_fuses_only_its_members():
    P = {"mel": [[.6, .4], [.4, .6]], "gam": [[.2, .8], [.4, .6]], "cqt": [[.9, .1], [.9, .1]]}
    out = late_fusion({v: _run(v, P[v]) for v in P}, ("mel", "gam"))
    assert np.allclose(out["probs"], [[.4, .6], [.4, .6]])
    assert out["accuracy"] == 0.5


def test_late_fusion_refuses_different_test_files():
    recs = {v: _run(v, [[.5, .5], [.5, .5]]) for v in ("mel", "gam", "cqt", "raw")}
    recs["raw"]["test"]["keys"] = ["a", "c"]
    with pytest.raises(DataError, match="same test files"):
        late_fusion(recs, DERIVED["late"])
