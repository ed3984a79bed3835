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

Edge cases (the paper leaves them open), so weights stay finite,
non-negative and sum to 1:

1. uniform weights until W measurements exist (the references are set then);
2. :math:`G` is clipped at 0: a branch whose validation loss is no better than
   its reference gets no weight;
3. :math:`O^2` becomes :math:`O^2 + \varepsilon` (``eps``), so :math:`O \approx 0`
   gives a large but finite ratio;
4. what happens when every ratio is 0, a floor on the ratios, a warm-up and
   the estimator of G and O: a :class:`BlendRule` (:data:`RULES`). ``literal``
   keeps the previous weights (this book's first reading); ``authors`` keeps
   Algorithm 1's best-so-far references and takes two practices of the paper's
   first author's own code (XSleepNet, Phan et al. 2022: ``gradient_policy1.py``,
   ``gradient_policy2.py``, ``train_xsleepnet2.py``): uniform weights when all
   are 0, and no adaptive weight before a warm-up as long as the smoothing
   window (XSleepNet2 waits 20 evaluations and smooths over 20); its floor of
   10⁻⁵ applies to every ratio before normalising, zeros included, where
   XSleepNet2 floors only positive normalised weights (so there a branch can
   get exactly 0, here never); ``slope`` adds XSleepNet2's estimate
   of G and O from the slopes of line fits (``_line_slope``).

``power`` is the exponent of :math:`|O|` (2 in Eq. 5; 1 for the ablation).

**What the training loop calls** is a :class:`WeightRule`: the branch weights
of Eq. 2, updated at every evaluation, with the state a checkpoint keeps —
:class:`AdaptiveBlender` (Algorithm 1 under a :class:`BlendRule`) or
:class:`FixedWeights`. A :class:`BlendRule` (the values of :data:`RULES`) is
not called: it is the data that configures an :class:`AdaptiveBlender`.
Chapter: *Adaptive gradient blending*.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .errors import ConfigError

__all__ = ["OFF", "BlendRule", "RULES", "smoothed", "initial_weights", "WeightRule", "FixedWeights",
           "AdaptiveBlender", "replay_losses"]

#: a weight below this counts as off (exactly 0 under the literal rule, about floor / Z under a floor)
OFF = 1e-3


@dataclass(frozen=True)
class BlendRule:
    """How Algorithm 1 fills what the paper leaves open (every record of a
    blending system states its rule).

    Parameters
    ----------
    name : str
        The rule's name (a key of :data:`RULES` for the book's rules).
    fallback : {"keep", "uniform"}
        When every ratio is 0: keep the previous weights, or go back to uniform
        ones (XSleepNet).
    floor : float
        Lower bound of every ratio before normalisation (XSleepNet 10⁻⁵, G-Blend
        10⁻⁸; 0: none), so that no branch is switched off entirely.
    warmup_windows : int
        Measurements before the first adaptive weight, in units of the window W
        (XSleepNet2: 1, its 20-evaluation warm-up equals its 20-point window).
    estimator : {"mean", "slope"}
        Eq. 3–4 on the means of the last W, or the slopes of line fits (``_line_slope``).

    Examples
    --------
    >>> RULES["authors"].fallback, RULES["authors"].floor
    ('uniform', 1e-05)
    """
    name: str
    fallback: str = "keep"
    floor: float = 0.0
    warmup_windows: int = 0
    estimator: str = "mean"

    def __post_init__(self):
        if self.fallback not in ("keep", "uniform") or self.estimator not in ("mean", "slope") \
                or self.floor < 0 or self.warmup_windows < 0:
            raise ConfigError(f"invalid blending rule {self}")

    def to_dict(self) -> dict:
        """The rule as a JSON-able dict (as a record states it).

        Returns
        -------
        dict
            Field → value; ``BlendRule(**d)`` rebuilds the rule.
        """
        return asdict(self)


#: the blending rules by name
RULES = {"literal": BlendRule("literal"),
         "authors": BlendRule("authors", fallback="uniform", floor=1e-5, warmup_windows=1),
         "slope": BlendRule("slope", fallback="uniform", floor=1e-5, warmup_windows=1, estimator="slope")}


def _line_slope(y) -> float:
    """Slope of the least-squares line through ``y`` at t = 0, 1, …"""
    return float(np.polyfit(np.arange(len(y)), np.asarray(y, dtype=np.float64), 1)[0])


def smoothed(L: list, W: int) -> list:
    r"""The running mean over the last W measurements (fewer at the start), as XSleepNet2 smooths.

    Parameters
    ----------
    L : list of float
        Measurements.
    W : int
        Window.

    Returns
    -------
    list of float
        :math:`\bar L(n)`, the mean of ``L[max(0, n + 1 - W) : n + 1]`` for every n.

    Examples
    --------
    >>> smoothed([4.0, 2.0, 0.0, 2.0], 2)
    [4.0, 3.0, 1.0, 1.0]
    """
    return [float(np.mean(L[max(0, n + 1 - W):n + 1])) for n in range(len(L))]


def initial_weights(branches, mode: str) -> dict:
    """Branch weights of Eq. 2 before any blending update.

    Parameters
    ----------
    branches : sequence of str
        The network's branches (views, and ``mv`` for ⊕).
    mode : str
        The loss mode: ``single`` (its one branch), ``concat`` (the ⊕ branch only),
        else uniform (``equal``; ``blend`` starts so).

    Returns
    -------
    dict
        Branch → weight; the weights sum to 1.

    Examples
    --------
    >>> initial_weights(("mel", "mv"), "concat"), initial_weights(("mel", "mv"), "blend")
    ({'mel': 0.0, 'mv': 1.0}, {'mel': 0.5, 'mv': 0.5})
    """
    if mode == "single":
        return {k: 1.0 for k in branches}
    if mode == "concat":
        return {k: float(k == "mv") for k in branches}
    return {k: 1.0 / len(branches) for k in branches}


@runtime_checkable
class WeightRule(Protocol):
    """The branch weights of Eq. 2 as the training loop (:func:`mvbook.train.train`)
    drives them: the type of :attr:`mvbook.systems.base.Training.rule`.

    The loop starts from :attr:`weights`, calls :meth:`update` with the losses of
    each evaluation and trains with the weights it returns, saves
    :meth:`state_dict` in every checkpoint and gives it back to
    :meth:`load_state_dict` on resuming, and adds :meth:`diagnostics` to the
    finished run's record. :class:`AdaptiveBlender` and :class:`FixedWeights` are
    the two; ``isinstance(x, WeightRule)`` checks that ``x`` has these members
    (not their signatures).

    Parameters
    ----------
    *args, **kwargs
        None: a protocol is not instantiated; an object satisfies it by having the
        attribute and the four methods below.

    Examples
    --------
    >>> isinstance(FixedWeights({"mv": 1.0}), WeightRule), isinstance(AdaptiveBlender(("a",)), WeightRule)
    (True, True)
    >>> isinstance(RULES["literal"], WeightRule)      # a BlendRule configures a blender, it is not one
    False
    """
    #: branch → weight before the first :meth:`update` (the weights sum to 1)
    weights: dict[str, float]

    def update(self, train_losses: dict[str, float], val_losses: dict[str, float]) -> dict[str, float]:
        """The weights after one evaluation.

        Parameters
        ----------
        train_losses : dict
            Branch → loss on the fixed subset of training clips (every branch).
        val_losses : dict
            Branch → validation loss.

        Returns
        -------
        dict
            Branch → weight, for the training steps until the next evaluation.
        """
        ...

    def diagnostics(self, steps: list, weights: dict, selected: dict) -> dict | None:
        """What the weights did over a finished run, for its record.

        Parameters
        ----------
        steps : list of int
            The training step of each evaluation.
        weights : dict
            Branch → the weight :meth:`update` returned at each evaluation.
        selected : dict
            Branch → weight of the selected (best validation) model.

        Returns
        -------
        dict or None
            The record's ``diagnostics``; None: nothing to report.
        """
        ...

    def state_dict(self) -> dict | None:
        """The state a checkpoint keeps (JSON-able; None for a rule without state).

        Returns
        -------
        dict or None
            What :meth:`load_state_dict` takes back.
        """
        ...

    def load_state_dict(self, state: Any) -> None:
        """Restore what :meth:`state_dict` returned.

        Parameters
        ----------
        state : dict or None
            A checkpoint's saved state of a rule of the same kind and configuration.
        """
        ...


class FixedWeights:
    """The weight rule (:class:`WeightRule`) of a system whose weights never change.

    Parameters
    ----------
    weights : dict
        Branch → weight, returned by every :meth:`update`.

    Examples
    --------
    >>> FixedWeights({"mv": 1.0}).update({"mv": 0.3}, {"mv": 0.5})
    {'mv': 1.0}
    """

    def __init__(self, weights: dict):
        self.weights = dict(weights)

    def update(self, train_losses: dict, val_losses: dict) -> dict:
        """The fixed weights, whatever the losses (:meth:`WeightRule.update`)."""
        return dict(self.weights)

    def diagnostics(self, steps: list, weights: dict, selected: dict) -> None:
        """Nothing to report (:meth:`WeightRule.diagnostics`)."""
        return None

    def state_dict(self) -> None:
        """No state (:meth:`WeightRule.state_dict`): the weights come from the configuration."""
        return None

    def load_state_dict(self, state) -> None:
        """Nothing to restore (:meth:`WeightRule.load_state_dict`)."""


class AdaptiveBlender:
    r"""Algorithm 1 for a set of branches; ``update`` returns the new weights
    (a :class:`WeightRule`). Every option is keyword-only. After each
    :meth:`update`, ``G``, ``O``, ``ratio`` (Eq. 5 before 1/Z), ``L_tr_bar`` and
    ``L_va_bar`` hold that measurement's values per branch.

    Parameters
    ----------
    branches : sequence of str
        The branch names k (``"mel", "gam", "cqt", "raw", "mv"`` in the paper).
    window : int
        W, the number of measurements averaged into :math:`\bar L` (at least 1).
    reference : {"best", "initial"}
        Algorithm 1's best-so-far references, or Wang et al.'s initial ones.
    eps : float
        Added to :math:`|O|^{power}` (edge-case rule 3).
    power : float
        The exponent of :math:`|O|` in Eq. 5.
    rule : BlendRule
        What the paper leaves open (:data:`RULES`; default ``literal``).

    Raises
    ------
    mvbook.errors.ConfigError
        ``reference`` is neither ``"best"`` nor ``"initial"``, or ``window`` is below 1.

    Examples
    --------
    Two branches, W = 1, no ε. The first measurement sets the references
    :math:`L^*`, so G = 0 and the weights stay uniform:

    >>> b = AdaptiveBlender(("a", "b"), window=1, eps=0.0)
    >>> b.update({"a": 1.0, "b": 1.0}, {"a": 1.0, "b": 1.0})
    {'a': 0.5, 'b': 0.5}

    Then ``a`` gains 0.2 in training and 0.1 in validation, ``b`` 0.1 and 0.01.
    By hand, Eq. 3–5: :math:`G_a = 1 - 0.9 = 0.1`, :math:`O_a = (1 - 0.8) - 0.1 = 0.1`,
    :math:`G_a / O_a^2 = 10`; :math:`G_b = 0.01`, :math:`O_b = 0.1 - 0.01 = 0.09`,
    :math:`G_b / O_b^2 = 100/81`; :math:`Z = 10 + 100/81 = 910/81`, so
    :math:`w_a = 81/91` and :math:`w_b = 10/91`:

    >>> w = b.update({"a": 0.8, "b": 0.9}, {"a": 0.9, "b": 0.99})
    >>> round(b.G["a"], 6), round(b.O["a"], 6), round(b.ratio["a"], 6), round(b.ratio["b"], 6)
    (0.1, 0.1, 10.0, 1.234568)
    >>> round(w["a"], 6) == round(81 / 91, 6), round(w["b"], 6) == round(10 / 91, 6)
    (True, True)

    With ``reference="best"`` the references move to the better estimates
    (Algorithm 1, lines 13–14):

    >>> b.L_tr_star, b.L_va_star
    ({'a': 0.8, 'b': 0.9}, {'a': 0.9, 'b': 0.99})

    Chapter: *Adaptive gradient blending*.
    """

    def __init__(self, branches, *, window: int = 5, reference: str = "best",
                 eps: float = 1e-6, power: float = 2.0, rule: BlendRule = RULES["literal"]):
        if reference not in ("best", "initial"):
            raise ConfigError(f"reference must be 'best' or 'initial', not {reference!r}")
        if window < 1:
            raise ConfigError("window W must be at least 1")
        self.branches = tuple(branches)
        self.W, self.reference, self.eps, self.power, self.rule = window, reference, eps, power, rule
        self.L_tr: dict[str, list[float]] = {k: [] for k in self.branches}
        self.L_va: dict[str, list[float]] = {k: [] for k in self.branches}
        self.L_tr_star: dict[str, float] = {}
        self.L_va_star: dict[str, float] = {}
        self.weights = {k: 1.0 / len(self.branches) for k in self.branches}
        self.G: dict[str, float] = {}
        self.O: dict[str, float] = {}
        self.ratio: dict[str, float] = {}
        self.L_tr_bar: dict[str, float] = {}
        self.L_va_bar: dict[str, float] = {}
        self.counts = {"updates": 0, "fallbacks": 0, "uncredited": 0}

    @property
    def first(self) -> int:
        """The number of measurements at which the first adaptive weight is computed."""
        need = 3 if self.rule.estimator == "slope" else 1       # a line fit over the window before
        return max(self.W, self.rule.warmup_windows * self.W + 1, need)

    def _estimates(self) -> tuple[dict, dict]:
        """This measurement's (train, validation) estimates per branch — the means of
        the last W (Eq. 3–4) or the slopes of the smoothed losses — setting the
        references the first time."""
        if self.rule.estimator == "mean":
            cur = [{k: float(np.mean(L[k][-self.W:])) for k in self.branches} for L in (self.L_tr, self.L_va)]
            if not self.L_tr_star:                               # references start here
                self.L_tr_star, self.L_va_star = dict(cur[0]), dict(cur[1])
            return cur[0], cur[1]
        H = max(self.W, 2)
        S = [{k: smoothed(L[k], self.W) for k in self.branches} for L in (self.L_tr, self.L_va)]
        if not self.L_tr_star:                                   # XSleepNet2: the fit before this point
            self.L_tr_star, self.L_va_star = ({k: _line_slope(s[k][-H - 1:-1]) for k in self.branches} for s in S)
        tr, va = ({k: _line_slope(s[k][-H:]) for k in self.branches} for s in S)
        return tr, va

    def update(self, train_losses: dict, val_losses: dict) -> dict:
        """Append one measurement per branch and return the weights w(n)
        (:meth:`WeightRule.update`): uniform until :attr:`first` measurements
        exist, then Eq. 3–5 under the rule.

        Parameters
        ----------
        train_losses : dict
            Branch → training loss of this measurement (every branch).
        val_losses : dict
            Branch → validation loss.

        Returns
        -------
        dict
            Branch → weight; finite, non-negative, summing to 1.
        """
        for k in self.branches:
            self.L_tr[k].append(float(train_losses[k]))
            self.L_va[k].append(float(val_losses[k]))
        if len(self.L_tr[self.branches[0]]) < self.first:
            return dict(self.weights)
        L_tr_bar, L_va_bar = self.L_tr_bar, self.L_va_bar = self._estimates()
        ratio = {}
        for k in self.branches:
            if self.rule.estimator == "mean":
                G_k = self.L_va_star[k] - L_va_bar[k]                                  # Eq. 3
                O_k = (self.L_tr_star[k] - L_tr_bar[k]) - (self.L_va_star[k] - L_va_bar[k])  # Eq. 4
            else:                                                # XSleepNet2's slopes, its signs
                G_k = L_va_bar[k] - self.L_va_star[k]
                O_k = (L_va_bar[k] - L_tr_bar[k]) - (self.L_va_star[k] - self.L_tr_star[k])
            self.G[k], self.O[k] = G_k, O_k
            ratio[k] = G_k / (abs(O_k) ** self.power + self.eps) if G_k > 0 else 0.0     # Eq. 5, before 1/Z
        self.counts["uncredited"] += all(r <= self.rule.floor for r in ratio.values())   # no branch improved
        ratio = self.ratio = {k: max(r, self.rule.floor) for k, r in ratio.items()}
        Z = sum(ratio.values())
        if Z > 0 and np.isfinite(Z):
            self.weights = {k: ratio[k] / Z for k in self.branches}
            self.counts["updates"] += 1
        else:
            self.counts["fallbacks"] += 1
            if self.rule.fallback == "uniform":
                self.weights = {k: 1.0 / len(self.branches) for k in self.branches}
        self._move_references(L_tr_bar, L_va_bar)
        return dict(self.weights)

    def _move_references(self, cur_tr: dict, cur_va: dict) -> None:
        if self.reference != "best":
            return
        for k in self.branches:
            if self.rule.estimator == "mean":                    # Algorithm 1, lines 13–14
                self.L_tr_star[k] = min(self.L_tr_star[k], cur_tr[k])
                self.L_va_star[k] = min(self.L_va_star[k], cur_va[k])
            elif self.L_va_star[k] > cur_va[k]:                  # XSleepNet2: the steepest validation slope
                self.L_tr_star[k], self.L_va_star[k] = cur_tr[k], cur_va[k]

    def diagnostics(self, steps: list, weights: dict, selected: dict) -> dict:
        """What the weights did over a run: per branch the share of training steps
        it had weight exactly 0 (``zero_weight_share``) and below :data:`OFF`
        (``off_share``; weights at evaluation i hold until evaluation i + 1); the
        measurements where the weights were set (``updates``: Z > 0), kept
        (``fallbacks``: Z = 0) and where no ratio of Eq. 5 exceeded the floor
        (``uncredited``: no branch improved, so the weights are the fallback's,
        or uniform through the floor); and the entropy (nats) of the selected
        model's weights (log K: uniform; 0: one branch)."""
        span = np.diff(np.asarray(steps, dtype=float))
        total = span.sum() or 1.0

        def share(test):
            return {k: float(span[test(np.asarray(weights[k][:-1]))].sum() / total) for k in self.branches}
        p = np.array([selected[k] for k in self.branches], dtype=float)
        p = p[p > 0] / p.sum()
        return {"zero_weight_share": share(lambda w: w == 0), "off_share": share(lambda w: w < OFF),
                **{k: self.counts[k] for k in ("updates", "fallbacks", "uncredited")},
                "selected_entropy": float(-(p * np.log(p)).sum())}

    def state_dict(self) -> dict:
        """JSON-able state for checkpoints."""
        return {"L_tr": self.L_tr, "L_va": self.L_va, "L_tr_star": self.L_tr_star,
                "L_va_star": self.L_va_star, "weights": self.weights, "G": self.G, "O": self.O,
                "counts": self.counts}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`; a checkpoint from before ``uncredited`` was
        counted gets it from a replay of its losses (:func:`replay_losses`)."""
        for name, value in state.items():
            setattr(self, name, {k: (list(v) if isinstance(v, list) else v) for k, v in value.items()})
        if "uncredited" not in self.counts:          # a checkpoint from before it was counted: count it again
            again = AdaptiveBlender(self.branches, window=self.W, reference=self.reference, eps=self.eps,
                                    power=self.power, rule=self.rule)
            for _ in replay_losses(again, self.L_tr, self.L_va):
                pass
            self.counts["uncredited"] = again.counts["uncredited"]


def replay_losses(blender: AdaptiveBlender, L_tr: dict, L_va: dict, n: int | None = None):
    """Algorithm 1 fed a measured loss history, one measurement at a time: the one
    replay behind :meth:`AdaptiveBlender.load_state_dict`, :func:`mvbook.book.replay.replay`
    and :func:`mvbook.book.plots_runs.blending_trace`.

    Parameters
    ----------
    blender : AdaptiveBlender
        The blender fed (usually a fresh one); it is updated in place.
    L_tr : dict
        Branch → training losses, one per measurement (every branch of ``blender``).
    L_va : dict
        Branch → validation losses, the same measurements.
    n : int, optional
        Measurements fed (default: every one of ``L_tr``).

    Yields
    ------
    tr : dict
        Branch → the training loss of this measurement.
    va : dict
        Branch → its validation loss.
    w : dict
        Branch → the weights w(n) the update returned; until the next yield
        ``blender`` holds this update's ``G``, ``O``, ``ratio``, ``L_tr_bar``, ``L_va_bar``.

    Examples
    --------
    The worked example of :class:`AdaptiveBlender` (w = 81/91, 10/91):

    >>> b = AdaptiveBlender(("a", "b"), window=1, eps=0.0)
    >>> L_tr, L_va = {"a": [1.0, 0.8], "b": [1.0, 0.9]}, {"a": [1.0, 0.9], "b": [1.0, 0.99]}
    >>> [round(w["a"] * 91, 6) for _, _, w in replay_losses(b, L_tr, L_va)]
    [45.5, 81.0]
    """
    if n is None:
        n = len(L_tr[blender.branches[0]])
    for i in range(n):
        tr = {k: L_tr[k][i] for k in blender.branches}
        va = {k: L_va[k][i] for k in blender.branches}
        yield tr, va, blender.update(tr, va)
