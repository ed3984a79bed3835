"""The analysis plan of the blending question, fixed before the runs that decide it.

The family (:data:`FAMILY`): multi-view above equal weights, above late fusion,
above concatenation and above each single view, and the self-ensemble above
multi-view — eight claims, one family per preset. Each is decided by its
*primary* test: a paired *t*-test over the fold means (each fold's runs that
both rows have averaged first), two-sided, α = :data:`ALPHA`, with Holm's
adjustment over the family. The *secondary* analyses stand beside it and
decide nothing: a crossed random-effects model with fold and seed random
(:func:`mvbook.power.crossed_model`, Satterthwaite's degrees of freedom), and
the fold-level test on the runs whose seeds were drawn per fold alone.

A verdict (:data:`VERDICTS`) is *holds* (Holm-adjusted p < α, in the claim's
direction), *reversed* (Holm-adjusted p < α, against it) or *not shown*
(otherwise), with the minimum detectable difference: the smallest true
difference the primary test finds four times in five (power
:data:`POWER`) at level α / m — the first step of Holm's procedure, so found
whatever the other claims' p-values — given the fold and run variance that the
crossed model estimates. Chapter: *Results* (*How the question is decided*).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .power import crossed_model
from .results import fold_accuracies, holm
from .seeds import record_scheme

__all__ = ["FAMILY", "ALPHA", "POWER", "VERDICTS", "run_differences", "design", "decide"]

#: the claims of the blending question, each (claim, row, baseline), the row to be above the baseline
FAMILY = (
    ("multi-view above equal weights", "multiview", "equal"),
    ("multi-view above late fusion", "multiview", "late"),
    ("multi-view above concatenation", "multiview", "concat"),
    ("multi-view above Mel", "multiview", "mel"),
    ("multi-view above Gammatone", "multiview", "gam"),
    ("multi-view above CQT", "multiview", "cqt"),
    ("multi-view above raw", "multiview", "raw"),
    ("self-ensemble above multi-view", "self_ensemble", "multiview"),
)
#: level of every test (two-sided), before Holm's adjustment over the family
ALPHA = 0.05
#: the probability with which the minimum detectable difference is found
POWER = 0.8
#: the words of a verdict
VERDICTS = {"holds": "significant after Holm's adjustment, in the claim's direction",
            "reversed": "significant after Holm's adjustment, against the claim",
            "not shown": "not significant after Holm's adjustment"}


def _schemes(records: list[dict]) -> dict:
    """(fold, seed) → the seed scheme of its runs (every record of a run names the same one)."""
    out = {}
    for r in records:
        run, scheme = (r["fold"], r["seed"]), record_scheme(r)
        if out.setdefault(run, scheme) != scheme:
            raise ValueError(f"fold {run[0]} seed {run[1]}: records of both seed schemes")
    return out


def run_differences(records: list[dict], row: str, baseline: str) -> pd.DataFrame:
    """``row − baseline`` (percentage points) on every (fold, seed) run both rows have.

    Parameters
    ----------
    records : list of dict
        Records of one dataset and preset.
    row, baseline : str
        Row keys (:func:`mvbook.results.row_key`, derived rows included).

    Returns
    -------
    pandas.DataFrame
        Columns ``fold``, ``seed``, ``scheme``, ``level`` (the seed's level in the
        crossed model: the seed itself where it is shared by the folds, ``fold:seed``
        where it was drawn per fold) and ``d``; empty when a row has no runs.
    """
    df = fold_accuracies(records)
    if row not in df.index or baseline not in df.index:
        return pd.DataFrame(columns=["fold", "seed", "scheme", "level", "d"])
    both = df.loc[[row, baseline]].dropna(axis=1)
    schemes = _schemes(records)
    diff = (both.loc[row] - both.loc[baseline]).round(6)               # float noise is not a difference
    rows = [{"fold": f, "seed": s, "scheme": schemes[f, s],
             "level": str(s) if schemes[f, s] == "shared" else f"{f}:{s}", "d": float(v)} for (f, s), v in diff.items()]
    return pd.DataFrame(rows, columns=["fold", "seed", "scheme", "level", "d"])


def _fold_test(d: pd.DataFrame) -> tuple:
    """(folds, mean of the fold means, two-sided paired t-test p) of run differences."""
    means = d.groupby("fold")["d"].mean().to_numpy()
    n = len(means)
    p = float(stats.ttest_1samp(means, 0.0).pvalue) if n > 1 and np.any(means != means[0]) else np.nan
    return n, float(means.mean()) if n else np.nan, p


def design(records: list[dict], seeds=(3, 10, 13), family=FAMILY, folds: int = 5) -> pd.DataFrame:
    """Each claim's minimum detectable difference with ``k`` seeds drawn per fold, from the records' variance.

    The fold and run variance come from :func:`mvbook.power.crossed_model` on
    the runs both rows have; with seeds drawn per fold a seed's variance is part
    of each run's, so a fold mean of ``k`` runs varies as ``σ²_fold + (σ²_seed + σ²_e) / k``.

    Parameters
    ----------
    records : list of dict
        Records of one dataset and preset.
    seeds : sequence of int
        Numbers of seeds per fold to show.
    family : sequence of (str, str, str)
        As :data:`FAMILY`.
    folds : int
        Number of folds of the design.

    Returns
    -------
    pandas.DataFrame
        Indexed by claim: ``runs`` (that the estimate rests on), ``σ²_fold``,
        ``σ²_seed``, ``σ²_e``, and for each ``k``, ``k seeds`` (at α / m, the
        verdict's) and ``k seeds, α`` (at α, one claim alone); ``floor`` (any
        number of seeds, at α / m).
    """
    m = len(family)
    out = []
    for claim, row, baseline in family:
        d = run_differences(records, row, baseline)
        entry = {"claim": claim, "runs": len(d)}
        if d["fold"].nunique() >= 2 and len(d) > d["fold"].nunique():
            fit = crossed_model(d["d"], d["fold"], d["level"])
            vc = fit.components()
            entry |= {"σ²_fold": fit.fold, "σ²_seed": fit.seed, "σ²_e": fit.residual}
            for k in seeds:
                entry[f"{k} seeds"] = vc.mdd(k, folds, ALPHA / m, POWER)
                entry[f"{k} seeds, α"] = vc.mdd(k, folds, ALPHA, POWER)
            entry["floor"] = vc.mdd(np.inf, folds, ALPHA / m, POWER)
        out.append(entry)
    return pd.DataFrame(out).set_index("claim")


def decide(records: list[dict], family=FAMILY) -> pd.DataFrame:
    """Every claim of ``family`` decided under the plan, with the secondary analyses beside it.

    Parameters
    ----------
    records : list of dict
        Records of one dataset and preset.
    family : sequence of (str, str, str)
        As :data:`FAMILY`.

    Returns
    -------
    pandas.DataFrame
        Indexed by claim: ``row``, ``baseline``, ``runs``, ``folds``, ``seeds per
        fold`` (mean), ``mean_diff`` (of the fold means, points), ``p`` (primary
        t-test), ``p_holm``, ``verdict`` (:data:`VERDICTS`; ``too few runs`` under
        two folds), ``mdd`` (at α / m, points, with the runs' own seeds per fold),
        ``p_crossed`` and ``p_crossed_holm`` (the crossed model's), ``per_fold_runs``,
        ``mean_diff_per_fold`` and ``p_per_fold`` (the fold-level test on the runs
        whose seeds were drawn per fold alone).
    """
    m = len(family)
    out = []
    for claim, row, baseline in family:
        d = run_differences(records, row, baseline)
        n, mean, p = _fold_test(d)
        entry = {"claim": claim, "row": row, "baseline": baseline, "runs": len(d), "folds": n,
                 "seeds per fold": len(d) / n if n else np.nan, "mean_diff": mean, "p": p, "mdd": np.nan,
                 "p_crossed": np.nan}
        if n >= 2 and len(d) > n:
            fit = crossed_model(d["d"], d["fold"], d["level"])
            entry["p_crossed"] = fit.p
            entry["mdd"] = fit.components().mdd(len(d) / n, n, ALPHA / m, POWER)
        nested = d[d["scheme"] == "per_fold"]
        entry["per_fold_runs"] = len(nested)
        _, entry["mean_diff_per_fold"], entry["p_per_fold"] = _fold_test(nested)
        out.append(entry)
    df = pd.DataFrame(out).set_index("claim")
    df["p_holm"] = holm(df["p"].to_numpy())
    df["p_crossed_holm"] = holm(df["p_crossed"].to_numpy())
    df["verdict"] = [("too few runs" if r.folds < 2 else "not shown" if not r.p_holm < ALPHA
                      else "holds" if r.mean_diff > 0 else "reversed") for r in df.itertuples()]
    return df
