r"""Self-ensemble of the multi-view network's branches (Eq. 6–7).

.. math::
   P(y=c) = \frac{1}{K} \sum_k w_\diamond^{(k)} P^{(k)}(y=c), \qquad
   \hat y = \arg\max_c P(y=c),

with K = 5 branches and :math:`w_\diamond` the blending weights of the selected
model. As printed, P sums to 1/K over classes; the arg max is unaffected.
Chapter: *Self-ensemble*.
"""
from __future__ import annotations

import numpy as np

from .errors import ConfigError

__all__ = ["self_ensemble", "predict"]


def self_ensemble(probs: dict, weights: dict) -> np.ndarray:
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
    return sum(weights[k] * np.asarray(probs[k], dtype=np.float64) for k in probs) / K


def predict(P: np.ndarray) -> np.ndarray:
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
