r"""Posterior combination: the self-ensemble of the multi-view network's
branches (Eq. 6–7) and late fusion of single-view runs (§3.1.4).

.. math::
   P(y=c) = \frac{1}{K} \sum_k w_\diamond^{(k)} P^{(k)}(y=c), \qquad
   \hat y = \arg\max_c P(y=c),

with K = 5 branches and :math:`w_\diamond` the blending weights of the selected
model. As printed, P sums to 1/K over classes; the arg max is unaffected.
Chapter: *Self-ensemble*.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .errors import ConfigError, DataError
from .schema import RunRecord

__all__ = ["self_ensemble", "predict", "late_fusion"]


def self_ensemble(probs: Mapping[str, ArrayLike], weights: Mapping[str, float]) -> np.ndarray:
    """Eq. 6: the weighted mean of the branch posteriors. Chapter: *Self-ensemble*.

    Parameters
    ----------
    probs : dict
        branch k → posteriors :math:`P^{(k)}`, (N, C).
    weights : dict
        branch k → :math:`w_\\diamond^{(k)}`, the same branches.

    Returns
    -------
    np.ndarray, float64, (N, C)
        :math:`\\frac1K \\sum_k w^{(k)} P^{(k)}` (rows sum to Σw / K).

    Examples
    --------
    By hand, K = 2: class 0 gets (0.25 · 0.9 + 0.75 · 0.3) / 2 = 0.225 and class 1
    (0.25 · 0.1 + 0.75 · 0.7) / 2 = 0.275; the row sums to Σw / K = 1/2 and Eq. 7
    picks class 1, which the ``mel`` branch alone would not:

    >>> P = {"mel": [[0.9, 0.1]], "mv": [[0.3, 0.7]]}
    >>> self_ensemble(P, {"mel": 0.25, "mv": 0.75}).round(3).tolist()
    [[0.225, 0.275]]
    >>> float(self_ensemble(P, {"mel": 0.25, "mv": 0.75}).sum().round(12))
    0.5
    >>> predict(self_ensemble(P, {"mel": 0.25, "mv": 0.75})).tolist()
    [1]
    """
    if set(probs) != set(weights):
        raise ConfigError(f"branches differ: probs {sorted(probs)} vs weights {sorted(weights)}")
    K = len(probs)
    return functools.reduce(np.add, [weights[k] * np.asarray(probs[k], dtype=np.float64) for k in probs]) / K


def predict(P: ArrayLike) -> np.ndarray:
    """Eq. 7: the class of highest probability per row.

    Parameters
    ----------
    P : array_like, shape (N, C)
        Posteriors of N files over C classes.

    Returns
    -------
    numpy.ndarray, int, shape (N,)
        The arg-max class of each file (the first of tied classes).

    Examples
    --------
    >>> predict([[0.2, 0.8], [0.6, 0.4]])
    array([1, 0])
    """
    return np.asarray(P).argmax(axis=1)


def late_fusion(single: Mapping[str, RunRecord], members: Sequence[str]) -> dict[str, Any]:
    """Late fusion (§3.1.4): the mean of several runs' test posteriors, each run's
    main branch (``members=DERIVED["late"]``: the four single views; ``DERIVED["sumrule"]``:
    FusionNet's sum rule over its coders).

    Parameters
    ----------
    single : dict of str to RunRecord
        System → results record (:class:`~mvbook.schema.RunRecord`; only ``main_branch``
        and ``test`` are read), all of the same dataset, fold, seed and preset.
    members : sequence of str
        The systems of ``single`` to fuse.

    Returns
    -------
    dict
        ``accuracy`` (float, 0–1), ``probs`` (the mean posteriors, (N, C)) and
        ``labels`` ((N,)) of the fused test.

    Raises
    ------
    DataError
        If the runs were tested on different files.

    Examples
    --------
    Two runs on two files: the mean of [[.6, .4], [.4, .6]] and [[.2, .8], [.4, .6]] is
    [[.4, .6], [.4, .6]], class 1 both times, right once:

    >>> run = lambda p: {"main_branch": "b", "test": {"keys": ["x", "y"], "labels": [0, 1], "probs": {"b": p}}}
    >>> out = late_fusion({"mel": run([[.6, .4], [.4, .6]]), "gam": run([[.2, .8], [.4, .6]])}, ("mel", "gam"))
    >>> out["probs"].round(2).tolist(), out["accuracy"]
    ([[0.4, 0.6], [0.4, 0.6]], 0.5)
    """
    recs = [single[v] for v in members]
    keys = recs[0]["test"]["keys"]
    for r in recs[1:]:
        if r["test"]["keys"] != keys:
            raise DataError(f"fusing {', '.join(members)} needs runs on the same test files")
    P = np.mean([np.asarray(r["test"]["probs"][r["main_branch"]]) for r in recs], axis=0)
    labels = np.asarray(recs[0]["test"]["labels"])
    return {"accuracy": float(np.mean(P.argmax(1) == labels)), "probs": P, "labels": labels}
