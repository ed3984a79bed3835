"""What a design of folds × seeds can decide: the variance of a paired
difference split into a part shared by a fold's runs and a part of each run,
and the smallest mean difference a paired *t*-test over the folds finds with a
given power. Chapter: *Results* (*How the question is decided*).

With ``F`` folds and ``k`` runs (seeds) per fold, the mean difference of fold
``f`` is ``μ + a_f + ē_f``: the fold's own part ``a_f`` (variance ``σ²_fold``,
the same for every seed) and the average of ``k`` run parts (variance
``σ²_run``), so the fold means vary with

.. math:: \\sigma^2_{\\bar d}(k) = \\sigma^2_{\\text{fold}} + \\sigma^2_{\\text{run}} / k .

More seeds shrink only the second term; the first sets a floor that only more
folds lower.

Examples
--------
>>> round(minimum_detectable_difference(1.0, 5), 2)      # in units of the fold means' std
1.68
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

__all__ = ["minimum_detectable_difference", "VarianceComponents", "variance_components", "CrossedFit",
           "crossed_model"]


def _power(nc: float, n: int, alpha: float) -> float:
    """Power of the two-sided one-sample t-test over ``n`` differences whose true mean is ``nc / √n`` stds."""
    df, t_c = n - 1, stats.t.ppf(1 - alpha / 2, n - 1)
    return float(stats.nct.sf(t_c, df, nc) + np.nan_to_num(stats.nct.cdf(-t_c, df, nc)))   # NaN: far below 1e-40


def minimum_detectable_difference(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true mean difference a two-sided paired *t*-test finds with probability ``power``.

    Parameters
    ----------
    sd : float
        Standard deviation of the paired differences (here: of the fold means' differences).
    n : int
        Number of pairs (folds), 2 or more.
    alpha : float
        The test's level (two-sided).
    power : float
        The probability of finding the difference.

    Returns
    -------
    float
        The difference, in the units of ``sd`` (0 when ``sd`` is 0; NaN for fewer than two pairs;
        inf when no difference reaches ``power``).

    Examples
    --------
    >>> round(minimum_detectable_difference(2.0, 5, alpha=0.05), 2)
    3.36
    """
    if n < 2 or not np.isfinite(sd):
        return float("nan")
    if sd == 0:
        return 0.0
    hi = 40.0                                       # the non-centrality it takes lies below hi
    while _power(hi, n, alpha) < power:
        if hi > 1e5:
            return float("inf")
        hi *= 4
    nc = optimize.brentq(lambda c: _power(c, n, alpha) - power, 0.0, hi)
    return float(nc * sd / np.sqrt(n))


@dataclass(frozen=True)
class VarianceComponents:
    """The variance of paired run differences, split by fold: ``fold`` (``σ²_fold``,
    shared by every run of a fold, truncated at 0), ``run`` (``σ²_run``, each
    run's own), and the ``folds`` and ``runs`` it was estimated from."""
    fold: float
    run: float
    folds: int
    runs: int

    def fold_mean_sd(self, k: float) -> float:
        """Standard deviation of a fold's mean difference over ``k`` runs: ``√(σ²_fold + σ²_run / k)``.

        Parameters
        ----------
        k : float
            Runs (seeds) per fold; ``inf`` for the floor.

        Returns
        -------
        float
            The standard deviation, in the differences' units.
        """
        return float(np.sqrt(self.fold + self.run / k))

    def mdd(self, k: float, folds: int | None = None, alpha: float = 0.05, power: float = 0.8) -> float:
        """:func:`minimum_detectable_difference` of the fold-level test with ``k`` runs per fold.

        Parameters
        ----------
        k : float
            Runs (seeds) per fold (``inf``: the floor no number of seeds goes below).
        folds : int, optional
            Number of folds (default: as many as the estimate had).
        alpha, power : float
            As :func:`minimum_detectable_difference`.

        Returns
        -------
        float
            The difference, in the differences' units.
        """
        return minimum_detectable_difference(self.fold_mean_sd(k), folds or self.folds, alpha, power)


def variance_components(d) -> VarianceComponents:
    """``σ²_fold`` and ``σ²_run`` of paired run differences grouped by fold.

    The one-way random-effects ANOVA estimates, with the usual ``n₀`` for
    folds of unequal numbers of runs: ``σ²_run`` is the within-fold mean
    square, ``σ²_fold = max(0, (MS_between − MS_within) / n₀)``.

    Parameters
    ----------
    d : mapping of fold to array_like
        Each fold's run differences (at least one fold with two runs).

    Returns
    -------
    VarianceComponents

    Examples
    --------
    >>> vc = variance_components({1: [1.0, 3.0], 2: [5.0, 7.0]})
    >>> vc.run, vc.fold              # within: 2; between: (16 − 2) / 2
    (2.0, 7.0)
    """
    groups = [np.asarray(v, dtype=float) for v in d.values() if len(v)]
    n = np.array([len(g) for g in groups])
    N, a = int(n.sum()), len(groups)
    if a < 2 or N - a < 1:
        raise ValueError("variance components need two folds and a fold with two runs")
    grand = np.concatenate(groups).mean()
    ms_within = sum(((g - g.mean()) ** 2).sum() for g in groups) / (N - a)
    ms_between = sum(len(g) * (g.mean() - grand) ** 2 for g in groups) / (a - 1)
    n0 = (N - (n ** 2).sum() / N) / (a - 1)
    return VarianceComponents(max(0.0, float((ms_between - ms_within) / n0)), float(ms_within), a, N)


@dataclass(frozen=True)
class CrossedFit:
    """A crossed random-effects model of paired run differences, fitted by REML
    (:func:`crossed_model`): the estimated ``mean`` difference and its standard
    error ``se``; ``df``, Satterthwaite's degrees of freedom for ``mean / se``;
    ``p``, the two-sided p-value of ``mean = 0`` (Student's t with ``df``); and
    the variance components ``fold``, ``seed`` and ``residual`` (``σ²_fold``,
    ``σ²_seed``, ``σ²_e``)."""
    mean: float
    se: float
    df: float
    p: float
    fold: float
    seed: float
    residual: float

    def components(self) -> VarianceComponents:
        """As :class:`VarianceComponents` for seeds drawn per fold: a seed's part joins the run's.

        Returns
        -------
        VarianceComponents
            ``fold`` = ``σ²_fold``, ``run`` = ``σ²_seed + σ²_e`` (``folds``, ``runs``: 0, unknown here).
        """
        return VarianceComponents(self.fold, self.seed + self.residual, 0, 0)


def _incidence(labels) -> np.ndarray:
    """The 0/1 matrix (observations × levels) of a grouping."""
    _, idx = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
    return np.eye(idx.max() + 1)[idx]


def crossed_model(d, folds, seeds) -> CrossedFit:
    """Fit ``d = μ + a_fold + b_seed + e`` with fold and seed random, crossed, by REML.

    A seed shared by every fold (the ``shared`` scheme) is one level of the
    seed factor on all of them; a seed drawn per fold is its own level (pass
    ``(fold, seed)``), so the model is right for either scheme and for both
    together. The mean's standard error is ``(1ᵀV⁻¹1)^{-1/2}``; its degrees of
    freedom follow Satterthwaite, with the components' covariance from the
    REML information ``½ tr(P V_i P V_j)``. A component estimated at zero is
    left out of that approximation; where no seed level repeats (every seed
    drawn per fold) a seed's part cannot be told from the residual and is
    counted in it (``seed`` is then 0).

    Parameters
    ----------
    d : array_like, shape (n,)
        Paired differences, one per run.
    folds, seeds : sequence, shape (n,)
        Each run's fold and its seed's level.

    Returns
    -------
    CrossedFit
    """
    y = np.asarray(d, dtype=float)
    n = len(y)
    Zs = [_incidence(folds), _incidence([str(s) for s in seeds])]
    G = [Z @ Z.T for Z in Zs] + [np.eye(n)]
    seed_free = Zs[1].shape[1] < n                 # a seed level that repeats: the seed part is identifiable
    one = np.ones(n)
    scale = max(float(np.var(y, ddof=1)), 1e-12) if n > 1 else 1.0

    def parts(theta):
        V = sum(t * g for t, g in zip(theta, G))
        Vi = np.linalg.inv(V)
        w = Vi @ one
        v = 1.0 / (one @ w)
        return V, Vi, w, v

    def reml(log_theta):
        theta = np.exp(log_theta) * scale
        V, Vi, w, v = parts(theta)
        r = y - v * (w @ y)
        return float(np.linalg.slogdet(V)[1] - np.log(v) + r @ Vi @ r)

    lo, hi = np.log(1e-9), np.log(1e3)
    starts = [np.log([a, b, c]) for a, b, c in ((1 / 3, 1 / 3, 1 / 3), (1e-3, 1e-3, 1.0), (0.5, 1e-3, 0.5),
                                                 (1e-3, 0.5, 0.5))]
    bounds = [(lo, hi), (lo, hi) if seed_free else (lo, lo), (lo, hi)]
    fits = [optimize.minimize(reml, np.clip(x0, *np.array(bounds).T), method="L-BFGS-B", bounds=bounds)
            for x0 in starts]
    best = min(fits, key=lambda f: f.fun)
    theta = np.exp(best.x) * scale
    theta[best.x <= lo + 1e-3] = 0.0
    theta[2] = max(theta[2], 1e-12 * scale)
    V, Vi, w, v = parts(theta)
    mean = float(v * (w @ y))
    free = [i for i in range(3) if theta[i] > 0]
    P = Vi - np.outer(w, w) * v
    info = np.array([[0.5 * np.trace(P @ G[i] @ P @ G[j]) for j in free] for i in free])
    grad = np.array([v ** 2 * (w @ G[i] @ w) for i in free])
    df = float(2 * v ** 2 / (grad @ np.linalg.solve(info, grad)))
    se = float(np.sqrt(v))
    p = float(2 * stats.t.sf(abs(mean) / se, df)) if se > 0 else float("nan")
    return CrossedFit(mean, se, df, p, float(theta[0]), float(theta[1]), float(theta[2]))
