"""Eq. 6–7 against a hand-computed example."""
import numpy as np
import pytest

from mvbook.ensemble import predict, self_ensemble


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
