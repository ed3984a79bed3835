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

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from .power import crossed_model, minimum_detectable_difference
from .results import fold_accuracies, holm, sign_flip_p
from .seeds import record_scheme

__all__ = ["FAMILY", "ALPHA", "POWER", "Verdict", "Outcome", "VERDICTS", "TOO_FEW", "NEW_SEEDS", "STAGES",
           "run_differences", "design", "claim_verdict", "decide", "verdict_words", "progress", "required_done"]

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
#: the seeds the plan adds at the ``cpu`` preset, drawn per fold (``seed_scheme`` ``per_fold``), on every fold
NEW_SEEDS = tuple(range(3, 13))
#: the plan's runs stage by stage, in the order they are trained, each stage as (name, its systems, whether
#: it is required), each system on every fold with each of :data:`NEW_SEEDS`
STAGES = (("stage 1", ("multiview", "equal"), True),
          ("stage 2", ("mel", "gam", "cqt", "raw"), True),
          ("stage 3", ("concat",), False))
#: level of every test (two-sided), before Holm's adjustment over the family
ALPHA = 0.05
#: the probability with which the minimum detectable difference is found
POWER = 0.8
#: the verdict on a claim, one of the words of :data:`VERDICTS`
Verdict = Literal["holds", "reversed", "not shown"]
#: what a claim gets, a :data:`Verdict` or :data:`TOO_FEW` (fewer than two folds have both rows)
Outcome = Verdict | Literal["too few runs"]
#: the outcome of a claim that cannot be decided (runs on fewer than two folds)
TOO_FEW: Literal["too few runs"] = "too few runs"
#: the words of a verdict, each with what it means
VERDICTS: dict[Verdict, str] = {"holds": "significant after Holm's adjustment, in the claim's direction",
            "reversed": "significant after Holm's adjustment, against the claim",
            "not shown": "not significant after Holm's adjustment"}


def _schemes(records: Sequence[Mapping[str, Any]]) -> dict:
    """(fold, seed) → the seed scheme of its runs (every record of a run names the same one)."""
    out: dict[tuple[int, int], str] = {}
    for r in records:
        run, scheme = (r["fold"], r["seed"]), record_scheme(r)
        if out.setdefault(run, scheme) != scheme:
            raise ValueError(f"fold {run[0]} seed {run[1]}: records of both seed schemes")
    return out


def run_differences(records: Sequence[Mapping[str, Any]], row: str, baseline: str, *,
                    accuracies: pd.DataFrame | None = None) -> pd.DataFrame:
    """``row − baseline`` (percentage points) on every (fold, seed) run both rows have.

    Parameters
    ----------
    records : list of dict
        Records of one dataset and preset.
    row, baseline : str
        Row keys (:func:`mvbook.results.row_key`, derived rows included).
    accuracies : pandas.DataFrame, optional
        :func:`mvbook.results.fold_accuracies` of these ``records``, when the caller
        has it already (a family's claims share it); computed when not given.

    Returns
    -------
    pandas.DataFrame
        Columns ``fold``, ``seed``, ``scheme``, ``level`` (the seed's level in the
        crossed model: the seed itself where it is shared by the folds, ``fold:seed``
        where it was drawn per fold) and ``d``; empty when a row has no runs.
    """
    df = fold_accuracies(records) if accuracies is None else accuracies
    if row not in df.index or baseline not in df.index:
        return pd.DataFrame(columns=["fold", "seed", "scheme", "level", "d"])
    both = df.loc[[row, baseline]].dropna(axis=1)
    schemes = _schemes(records)
    diff = (both.loc[row] - both.loc[baseline]).round(6)               # float noise is not a difference
    rows = [{"fold": f, "seed": s, "scheme": schemes[f, s],
             "level": str(s) if schemes[f, s] == "shared" else f"{f}:{s}", "d": float(v)} for (f, s), v in diff.items()]
    return pd.DataFrame(rows, columns=["fold", "seed", "scheme", "level", "d"])


def _fold_test(d: pd.DataFrame) -> dict:
    """The fold-level paired test of run differences: ``pairs`` (folds), ``mean_diff`` (of the
    fold means), ``ci95`` (half-width of its 95 % interval), ``wins``, ``losses``, ``p``
    (two-sided t-test: 1 when every fold mean is 0, NaN when they are one other value)
    and ``p_sign_flip`` (1 when every fold mean is 0)."""
    means = d.groupby("fold")["d"].mean().to_numpy()
    n = len(means)
    varies = n > 1 and np.any(means != means[0])
    p = float(stats.ttest_1samp(means, 0.0).pvalue) if varies else 1.0 if n > 1 and not np.any(means) else np.nan
    return {"pairs": n, "mean_diff": float(means.mean()) if n else np.nan,
            "ci95": float(stats.t.ppf(0.975, n - 1) * means.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan,
            "wins": int((means > 0).sum()), "losses": int((means < 0).sum()),
            "p": p,
            "p_sign_flip": sign_flip_p(means) if np.any(means) else (1.0 if n else np.nan)}


def _word(mean_diff: float, p: float, folds: int, alpha: float) -> Outcome:
    """:data:`VERDICTS`' word for a difference and its (adjusted) p-value (:data:`TOO_FEW` below two folds)."""
    if folds < 2:
        return TOO_FEW
    if not p < alpha or abs(mean_diff) < 0.005:
        return "not shown"
    return "holds" if mean_diff > 0 else "reversed"


def design(records: Sequence[Mapping[str, Any]], seeds=(3, 10, 13), family=FAMILY, folds: int = 5) -> pd.DataFrame:
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
    m, accuracies = len(family), fold_accuracies(records)
    out = []
    for claim, row, baseline in family:
        d = run_differences(records, row, baseline, accuracies=accuracies)
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


def claim_verdict(records: Sequence[Mapping[str, Any]], row: str, baseline: str, m: int = 1, *,
                  accuracies: pd.DataFrame | None = None) -> dict:
    """One claim (``row`` above ``baseline``) decided by the primary test, alone or as one of ``m``.

    Parameters
    ----------
    records : list of dict
        Records of one dataset and preset.
    row, baseline : str
        Row keys (:func:`mvbook.results.row_key`, derived rows included).
    m : int
        The size of the claim's family: its minimum detectable difference is at
        level α / ``m``. Its ``verdict`` is at α (one claim alone); a family's
        verdicts, with Holm's adjustment, are :func:`decide`'s.
    accuracies : pandas.DataFrame, optional
        As :func:`run_differences`'.

    Returns
    -------
    dict
        ``runs``, ``pairs`` (folds with both rows), ``seeds per fold`` (mean), ``mean_diff`` (of the fold
        means, points), ``ci95`` (half-width of its 95 % interval), ``wins``,
        ``losses`` (folds), ``p`` (paired t-test over the fold means; 1 when every
        fold mean is 0), ``p_sign_flip``, ``verdict`` (an :data:`Outcome`: a word of
        :data:`VERDICTS` or :data:`TOO_FEW`), ``mdd`` (points, :func:`design`'s at the runs' own seeds per fold),
        ``p_crossed`` (the crossed model's), ``per_fold_runs``, ``mean_diff_per_fold``
        and ``p_per_fold`` (the fold-level test on the runs whose seeds were drawn per fold).
    """
    d = run_differences(records, row, baseline, accuracies=accuracies)
    t = _fold_test(d)
    n = t["pairs"]
    entry = {"runs": len(d), "seeds per fold": len(d) / n if n else np.nan, **t, "mdd": np.nan, "p_crossed": np.nan}
    if n >= 2 and len(d) > n:
        fit = crossed_model(d["d"], d["fold"], d["level"])
        entry["p_crossed"] = fit.p if np.any(d["d"] != 0) else 1.0
        entry["mdd"] = fit.components().mdd(len(d) / n, n, ALPHA / m, POWER)
    elif n >= 2:                                   # one run per fold: the fold means' own spread
        entry["mdd"] = minimum_detectable_difference(float(np.std(d["d"], ddof=1)), n, ALPHA / m, POWER)
    nested = _fold_test(d[d["scheme"] == "per_fold"])
    entry |= {"per_fold_runs": int((d["scheme"] == "per_fold").sum()), "mean_diff_per_fold": nested["mean_diff"],
              "p_per_fold": nested["p"], "verdict": _word(t["mean_diff"], t["p"], n, ALPHA)}
    return entry


def decide(records: Sequence[Mapping[str, Any]], family=FAMILY) -> pd.DataFrame:
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
        Indexed by claim: ``row``, ``baseline``, the fields of :func:`claim_verdict`
        (``mdd`` at α / m, m the family's size), ``p_holm`` and ``p_crossed_holm``
        (Holm over the family), and ``verdict`` decided on ``p_holm``.
    """
    m, accuracies = len(family), fold_accuracies(records)
    df = pd.DataFrame([{"claim": claim, "row": row, "baseline": baseline}
                       | claim_verdict(records, row, baseline, m, accuracies=accuracies)
                       for claim, row, baseline in family]).set_index("claim")
    df["p_holm"] = holm(df["p"].to_numpy())
    df["p_crossed_holm"] = holm(df["p_crossed"].to_numpy())
    df["verdict"] = [_word(r.mean_diff, r.p_holm, r.pairs, ALPHA) for r in df.itertuples()]
    return df


def verdict_words(v, adjusted: bool = True) -> str:
    """A verdict in a sentence: the word, the difference, the test and what the design could see.

    Parameters
    ----------
    v : mapping
        A row of :func:`decide` (``adjusted``: its Holm-adjusted p is quoted) or
        :func:`claim_verdict`'s dict.
    adjusted : bool
        Whether ``v`` has ``p_holm``.

    Returns
    -------
    str
        E.g. ``"**not shown** — −2.75 points over 5 folds (95 % CI ±3.9; t-test p 0.096,
        Holm 0.29); a true difference of 10.5 points would have been found four times in five"``.
    """
    if v["verdict"] == TOO_FEW:
        return f"**too few runs** — {int(v['pairs'])} fold(s) with both rows"
    sign = "−" if v["mean_diff"] < 0 else "+"
    p = f"t-test p {_fmt(v['p'])}" + (f", Holm {_fmt(v['p_holm'])}" if adjusted else "")
    ci = f"95 % CI ±{v['ci95']:.2f}; " if v["ci95"] == v["ci95"] else ""
    seen = (f"; a true difference of {v['mdd']:.1f} points would have been found four times in five"
            if v["mdd"] == v["mdd"] else "")
    return (f"**{v['verdict']}** — {sign}{abs(v['mean_diff']):.2f} points over {int(v['pairs'])} folds "
            f"({ci}{p}){seen}")


def _fmt(p: float) -> str:
    """A p-value with two significant digits (three decimals below 0.01, ``< 0.001`` below that)."""
    return "—" if p != p else "< 0.001" if p < 0.001 else f"{p:.3f}" if p < 0.01 else f"{p:.2g}" if p < 0.1 \
        else f"{p:.2f}"


def progress(records: Sequence[Mapping[str, Any]], folds=range(1, 6)) -> pd.DataFrame:
    """How much of the plan's grid (:data:`STAGES`) has a record.

    Parameters
    ----------
    records : list of dict
        Records of the dataset and preset the plan decides (``esc10``, ``cpu``).
    folds : iterable of int
        The dataset's folds.

    Returns
    -------
    pandas.DataFrame
        Indexed by stage: ``systems`` (comma-separated), ``required``, ``planned``
        (systems × folds × :data:`NEW_SEEDS`) and ``landed`` (those runs with a
        record of the per-fold seed scheme).

    Examples
    --------
    >>> recs = [{"system": "multiview", "fold": 1, "seed": 3, "config": {"seed_scheme": "per_fold"}},
    ...         {"system": "multiview", "fold": 1, "seed": 0, "config": {}}]
    >>> progress(recs)[["planned", "landed"]].loc["stage 1"].tolist()
    [100, 1]
    """
    have = {(r["system"], r["fold"], r["seed"]) for r in records if record_scheme(r) == "per_fold"}
    folds = list(folds)
    rows = {}
    for stage, systems, required in STAGES:
        cells = [(s, f, d) for s in systems for f in folds for d in NEW_SEEDS]
        rows[stage] = {"systems": ", ".join(systems), "required": required, "planned": len(cells),
                       "landed": sum(c in have for c in cells)}
    return pd.DataFrame.from_dict(rows, orient="index")


def required_done(grid: pd.DataFrame) -> bool:
    """Whether every required stage of :func:`progress`'s table has all its runs.

    Parameters
    ----------
    grid : pandas.DataFrame
        :func:`progress`'s table.

    Returns
    -------
    bool
    """
    required = grid[grid["required"]]
    return bool((required["landed"] == required["planned"]).all())
