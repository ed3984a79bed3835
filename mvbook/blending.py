r"""Adaptive gradient blending: Eq. 3–5 and Algorithm 1 of the paper.

Every evaluation interval ``n`` the trainer measures, per branch k, the loss on
a fixed subset of training examples :math:`L_{tr}(n)` and on the validation
set :math:`L_\diamond(n)`. With the means of the last W measurements
:math:`\bar L_{tr}(n), \bar L_\diamond(n)`:

.. math::
   G(n) = L^*_\diamond - \bar L_\diamond(n), \qquad
   O(n) = (L^*_{tr} - \bar L_{tr}(n)) - (L^*_\diamond - \bar L_\diamond(n)), \qquad
   w(n) = \frac{1}{Z}\,\frac{G(n)}{O(n)^2}.

References (the paper's contribution): ``reference="best"`` keeps the best
smoothed losses so far, updated after each weight (Algorithm 1, lines 13–14);
``reference="initial"`` keeps the first smoothed losses, as Wang et al. (CVPR
2020) use the losses at initialisation.

Edge-case rule (the paper leaves it open), so weights stay finite,
non-negative and sum to 1:

1. uniform weights until W measurements exist (the references are set then);
2. :math:`G` is clipped at 0: a branch whose validation loss is no better than
   its reference gets no weight;
3. :math:`O^2` becomes :math:`O^2 + \varepsilon` (``eps``), so :math:`O \approx 0`
   gives a large but finite ratio;
4. if every ratio is 0, the previous weights are kept.

``power`` is the exponent of :math:`|O|` (2 in Eq. 5; 1 for the ablation).
Chapter: *Adaptive gradient blending*.
"""
from __future__ import annotations

import numpy as np


def initial_weights(branches, mode: str) -> dict:
    """Branch weights of Eq. 2 for each loss mode: ``single`` (its one branch),
    ``concat`` (the ⊕ branch only), else uniform (``equal``; ``blend`` starts so)."""
    if mode == "single":
        return {k: 1.0 for k in branches}
    if mode == "concat":
        return {k: float(k == "mv") for k in branches}
    return {k: 1.0 / len(branches) for k in branches}


class FixedWeights:
    """The weight rule of a system whose weights never change (the interface of
    :class:`AdaptiveBlender`: ``update``, ``state_dict``, ``load_state_dict``)."""

    def __init__(self, weights: dict):
        self.weights = dict(weights)

    def update(self, train_losses: dict, val_losses: dict) -> dict:
        return dict(self.weights)

    def state_dict(self) -> None:
        return None

    def load_state_dict(self, state) -> None:
        pass


class AdaptiveBlender:
    r"""Algorithm 1 for a set of branches; ``update`` returns the new weights.

    Parameters
    ----------
    branches : sequence of str
        The branch names k (``"mel", "gam", "cqt", "raw", "mv"`` in the paper).
    window : int
        W, the number of measurements averaged into :math:`\bar L`.
    reference : {"best", "initial"}
        Algorithm 1's best-so-far references, or Wang et al.'s initial ones.
    eps : float
        Added to :math:`|O|^{power}` (edge-case rule 3).
    power : float
        The exponent of :math:`|O|` in Eq. 5.

    After each :meth:`update`, ``G``, ``O``, ``ratio`` (Eq. 5 before 1/Z),
    ``L_tr_bar`` and ``L_va_bar`` hold that measurement's values per branch.

    Examples
    --------
    >>> b = AdaptiveBlender(("a", "b"), window=1)
    >>> b.update({"a": 1.0, "b": 1.0}, {"a": 1.0, "b": 1.0})      # references set: G = 0
    {'a': 0.5, 'b': 0.5}
    >>> w = b.update({"a": 0.8, "b": 0.9}, {"a": 0.9, "b": 0.99})  # a generalises better
    >>> round(b.G["a"], 6), round(b.O["a"], 6), w["a"] > w["b"]
    (0.1, 0.1, True)

    Chapter: *Adaptive gradient blending*.
    """

    def __init__(self, branches, window: int = 5, reference: str = "best",
                 eps: float = 1e-6, power: float = 2.0):
        if reference not in ("best", "initial"):
            raise ValueError(f"reference must be 'best' or 'initial', not {reference!r}")
        if window < 1:
            raise ValueError("window W must be at least 1")
        self.branches = tuple(branches)
        self.W, self.reference, self.eps, self.power = window, reference, eps, power
        self.L_tr = {k: [] for k in self.branches}
        self.L_va = {k: [] for k in self.branches}
        self.L_tr_star: dict[str, float] = {}
        self.L_va_star: dict[str, float] = {}
        self.weights = {k: 1.0 / len(self.branches) for k in self.branches}
        self.G: dict[str, float] = {}
        self.O: dict[str, float] = {}
        self.ratio: dict[str, float] = {}
        self.L_tr_bar: dict[str, float] = {}
        self.L_va_bar: dict[str, float] = {}

    def update(self, train_losses: dict, val_losses: dict) -> dict:
        """Append one measurement per branch and return the weights w(n)."""
        for k in self.branches:
            self.L_tr[k].append(float(train_losses[k]))
            self.L_va[k].append(float(val_losses[k]))
        if len(self.L_tr[self.branches[0]]) < self.W:
            return dict(self.weights)
        L_tr_bar = {k: float(np.mean(self.L_tr[k][-self.W:])) for k in self.branches}
        L_va_bar = {k: float(np.mean(self.L_va[k][-self.W:])) for k in self.branches}
        if not self.L_tr_star:                                   # references start here
            self.L_tr_star, self.L_va_star = dict(L_tr_bar), dict(L_va_bar)
        self.L_tr_bar, self.L_va_bar = L_tr_bar, L_va_bar
        ratio = self.ratio = {}
        for k in self.branches:
            G = self.L_va_star[k] - L_va_bar[k]                                  # Eq. 3
            O = (self.L_tr_star[k] - L_tr_bar[k]) - (self.L_va_star[k] - L_va_bar[k])  # Eq. 4
            self.G[k], self.O[k] = G, O
            ratio[k] = G / (abs(O) ** self.power + self.eps) if G > 0 else 0.0     # Eq. 5, before 1/Z
        Z = sum(ratio.values())
        if Z > 0 and np.isfinite(Z):
            self.weights = {k: ratio[k] / Z for k in self.branches}
        if self.reference == "best":                             # Algorithm 1, lines 13–14
            for k in self.branches:
                self.L_tr_star[k] = min(self.L_tr_star[k], L_tr_bar[k])
                self.L_va_star[k] = min(self.L_va_star[k], L_va_bar[k])
        return dict(self.weights)

    def state_dict(self) -> dict:
        """JSON-able state for checkpoints."""
        return {"L_tr": self.L_tr, "L_va": self.L_va, "L_tr_star": self.L_tr_star,
                "L_va_star": self.L_va_star, "weights": self.weights, "G": self.G, "O": self.O}

    def load_state_dict(self, state: dict) -> None:
        for name, value in state.items():
            setattr(self, name, {k: (list(v) if isinstance(v, list) else v) for k, v in value.items()})
