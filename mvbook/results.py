"""What the results records (:mod:`mvbook.records`) say together: late
fusion, Table 3 with intervals, paired tests, the paper's claims checked.
Chapter: *Results*.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .ensemble import late_fusion
from .errors import ConfigError, DataError
from .systems import DERIVED

__all__ = ["PAPER_TABLE3", "ROW_NAMES", "EXTRA_ROW_NAMES", "ALL_ROW_NAMES", "SELF_ENSEMBLE_ROWS", "row_key",
           "uniform_ensemble_accuracy", "fold_accuracies", "fold_mean", "fold_std", "table3",
           "paired_comparison", "CLAIMS", "VIEW_ROWS", "CLAIMS_BEYOND", "check_claims", "UNITS", "sign_flip_p",
           "holm", "META_SUM_ROWS", "signed", "spans", "SOURCE", "row_records", "row_devices"]

# Table 3 of the paper (accuracy %), keyed like our systems.
PAPER_TABLE3 = pd.DataFrame(
    {"esc50": [87.35, 86.65, 85.80, 84.44, 80.15, 76.90, 58.30, 75.60],
     "dcase2016": [85.38, 85.13, 82.05, 83.85, 77.18, 77.95, 75.38, 57.44],
     "gtzan": [91.10, 90.80, 89.70, 89.00, 87.30, 86.20, 83.10, 81.50]},
    index=["self_ensemble", "multiview", "late", "concat", "mel", "gam", "cqt", "raw"])
ROW_NAMES = {"self_ensemble": "Self-ensemble", "self_ensemble_uniform": "Self-ensemble, uniform weights",
             "multiview": "Multi-view", "late": "Late fusion",
             "concat": "Concat. fusion", "equal": "Equal-weight five losses (extra)", "mel": "Mel",
             "gam": "Gammatone", "cqt": "CQT", "raw": "Raw"}
# Rows that are not in the paper (part *Beyond the paper*), marked † in tables.
EXTRA_ROW_NAMES = {"mv_literal": "Multi-view, literal Alg. 1 †",
                   "mv_literal_se": "… its self-ensemble †", "mv_literal_se_uniform": "… uniform self-ensemble †",
                   "mv_slope": "Multi-view, XSleepNet2's slopes †",
                   "fusionnet": "FusionNet meta-classifier †", "sumrule": "FusionNet sum rule †",
                   "crnn_meta": "Meta-classifier on the CRNNs †", "crnn_sumrule": "… sum rule of its CRNNs †",
                   "cabcnn": "CAB-CNN classifier attention †", "multiview6": "Multi-view + HPSS views †",
                   "multiview6_se": "Multi-view + HPSS, self-ensemble †",
                   "multiview6_se_uniform": "Multi-view + HPSS, uniform self-ensemble †",
                   "mv_initial": "Ablation: initial-loss references †", "mv_power1": "Ablation: O instead of O² †",
                   "mv_w1": "Ablation: W = 1 †", "mv_w6": "Ablation: W = 6 †",
                   "mv_eval10": "Ablation: evaluate every 10 steps †",
                   "mv_eval40": "Ablation: evaluate every 40 steps †",
                   "fcn_mel": "FusionNet coder, Mel †", "fcn_gam": "FusionNet coder, Gammatone †",
                   "fcn_cqt": "FusionNet coder, CQT †", "fcn_raw": "FusionNet coder, raw †",
                   "harm": "Harmonic (HPSS) †", "perc": "Percussive (HPSS) †",
                   "mv_wide": "Multi-view, CRNNs at a coder's size †"}
#: row key → its name in tables, the paper's rows and those beyond it (†)
ALL_ROW_NAMES = ROW_NAMES | EXTRA_ROW_NAMES
#: row of a blending system → its self-ensemble rows, Eq. 6 with the selected model's weights
#: (the paper), and with uniform weights (the authors' test code, XSleepNet)
SELF_ENSEMBLE_ROWS = {"multiview": ("self_ensemble", "self_ensemble_uniform"),
                      "mv_literal": ("mv_literal_se", "mv_literal_se_uniform"),
                      "multiview6": ("multiview6_se", "multiview6_se_uniform")}
#: row of a meta-classifier → the row of the sum rule over its own coders, as its record states it
#: (``config.sum_rule``): crnn_meta's CRNNs are re-trained runs, not the single-view rows' records
META_SUM_ROWS = {"crnn_meta": "crnn_sumrule"}
#: a row read from another run (a self-ensemble, a meta-classifier's sum rule) → the row of that run
SOURCE = {row: system for system, rows in SELF_ENSEMBLE_ROWS.items() for row in rows} | \
    {row: system for system, row in META_SUM_ROWS.items()}
# Records of these systems whose config names no blending rule were made before the rules were
# named: they ran Algorithm 1 read literally, so they are rows of ``mv_literal``.
_LEGACY_ROWS = {"multiview": "mv_literal"}


def row_key(record: Mapping[str, Any]) -> str:
    """The table row a record belongs to.

    Parameters
    ----------
    record : dict
        A results record.

    Returns
    -------
    str
        Its system, except that a record made with a blending rule its system no
        longer uses (``_LEGACY_ROWS``) is a row of the system that uses it now.
        No row mixes rules.

    Examples
    --------
    >>> row_key({"system": "mel"})
    'mel'
    """
    config = record.get("config")
    if config is not None and "blending" not in config and record["system"] in _LEGACY_ROWS:
        return _LEGACY_ROWS[record["system"]]
    return record["system"]


def row_records(key: str, runs: Mapping[tuple[str, int, int], Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The records behind row ``key``: a derived row's members', a self-ensemble's multi-view runs.

    Parameters
    ----------
    key : str
        A row key.
    runs : dict
        ``(row_key, fold, seed)`` → record.

    Returns
    -------
    list of dict
    """
    systems = DERIVED.get(key, (SOURCE.get(key, key),))
    return [r for (system, _, _), r in runs.items() if system in systems]


def row_devices(key: str, runs: Mapping[tuple[str, int, int], Mapping[str, Any]]) -> list[str]:
    """The kinds of device that trained the runs behind a row.

    Parameters
    ----------
    key : str
        A row key.
    runs : dict
        ``(row_key, fold, seed)`` → record.

    Returns
    -------
    list of str
        Sorted kinds (``cpu``, ``cuda``, …; ``unknown`` where a record does not
        say) of the records :func:`row_records` finds.
    """
    return sorted({str(r.get("provenance", {}).get("device") or "unknown").split(":")[0]
                   for r in row_records(key, runs)})


def uniform_ensemble_accuracy(record: Mapping[str, Any]) -> float:
    """Accuracy of the mean of every branch's stored test posteriors (uniform weights)."""
    P = np.mean([np.asarray(p) for p in record["test"]["probs"].values()], axis=0)
    return float(np.mean(P.argmax(1) == np.asarray(record["test"]["labels"])))


def fold_accuracies(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Accuracy (%) of every row and run, with the derived rows.

    Parameters
    ----------
    records : list of dict
        Results records.

    Returns
    -------
    pandas.DataFrame
        Rows (:func:`row_key`) × (fold, seed) columns; derived rows: ``late`` (from
        the four single-view runs), the self-ensembles of the blending runs
        (:data:`SELF_ENSEMBLE_ROWS`), ``sumrule`` and the sum rules that
        meta-classifier records state (:data:`META_SUM_ROWS`).
    """
    cell: dict[tuple[str, tuple[int, int]], float] = {}
    by_run: dict[tuple[int, int], dict[str, Any]] = {}
    for r in records:
        row, run = row_key(r), (r["fold"], r["seed"])
        if (row, run) in cell:
            raise DataError(f"two records for row {row!r}, fold {run[0]}, seed {run[1]} (the second: {r.get('path')})")
        cell[(row, run)] = 100 * r["system_accuracy"]
        by_run.setdefault(run, {})[row] = r
        if row in SELF_ENSEMBLE_ROWS:
            selected, uniform = SELF_ENSEMBLE_ROWS[row]
            cell[(selected, run)] = 100 * r["accuracy"]["self_ensemble"]
            cell[(uniform, run)] = 100 * uniform_ensemble_accuracy(r)
        if row in META_SUM_ROWS:
            cell[(META_SUM_ROWS[row], run)] = 100 * r["config"]["sum_rule"]["accuracy"]
    for run, systems in by_run.items():
        for name, members in DERIVED.items():
            if all(v in systems for v in members):
                cell[(name, run)] = 100 * late_fusion(systems, members)["accuracy"]
    if not cell:
        return pd.DataFrame()
    s = pd.Series(cell)
    df = s.unstack()
    order = [k for k in ALL_ROW_NAMES if k in df.index]
    return df.loc[order]


def fold_mean(values):
    """The mean of the fold means: each fold's runs averaged first, so that every
    fold weighs once however many seeds it has.

    Parameters
    ----------
    values : pandas.Series or pandas.DataFrame
        Accuracies indexed (a Series) or with columns (a DataFrame, one row per
        system) by (fold, seed); NaN is a missing run.

    Returns
    -------
    float or pandas.Series
        The mean over folds of each fold's mean (per row of a DataFrame); NaN
        without runs. With the same number of runs in every fold it is the mean
        of the runs.

    Examples
    --------
    >>> fold_mean(pd.Series({(1, 0): 80.0, (1, 1): 90.0, (2, 0): 70.0}))   # (85 + 70) / 2, not 240 / 3
    77.5
    """
    return _over_fold_means(values, "mean")


def fold_std(values):
    """The sample standard deviation of the fold means: the spread of the unit
    the paired tests use, the same statistic whether a row has one seed per fold
    or several.

    Parameters
    ----------
    values : pandas.Series or pandas.DataFrame
        As :func:`fold_mean`.

    Returns
    -------
    float or pandas.Series
        The std (``ddof=1``) over folds of each fold's mean; NaN with fewer than two folds.

    Examples
    --------
    >>> fold_std(pd.Series({(1, 0): 80.0, (1, 1): 90.0, (2, 0): 75.0}))   # of 85 and 75
    7.0710678118654755
    """
    return _over_fold_means(values, "std")


def _over_fold_means(values, how: str):
    """``mean`` or ``std`` of the fold means of ``values`` (:func:`fold_mean`)."""
    frame = values.to_frame().T if isinstance(values, pd.Series) else values
    if frame.shape[1]:
        out = getattr(frame.T.groupby([fold for fold, _ in frame.columns]).mean().T, how)(axis=1)
    else:
        out = pd.Series(np.nan, index=frame.index, dtype=float)
    return float(out.iloc[0]) if isinstance(values, pd.Series) else out


def table3(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Table 3 from records: the accuracy of each row over its runs.

    Parameters
    ----------
    records : list of dict
        Results records (:func:`mvbook.records.load_records`).

    Returns
    -------
    pandas.DataFrame
        One row per system in Table 3's order: ``mean`` (of the fold means,
        :func:`fold_mean`, as the paired tests average them), ``std`` (of the
        fold means, :func:`fold_std`: the same statistic in every row), ``n``
        (number of (fold, seed) runs), ``ci95``, the half-width of a 95 %
        t-interval over the fold means, and ``balanced``: whether
        every fold of the row has the same number of runs (if not, ``mean`` is
        not the mean of the runs).
    """
    df = fold_accuracies(records)
    if df.empty:
        return pd.DataFrame(columns=["mean", "std", "n", "ci95", "balanced"])
    n = df.notna().sum(axis=1)
    std = fold_std(df)
    folds = df.notna().T.groupby([fold for fold, _ in df.columns]).any().T.sum(axis=1)
    ci = pd.Series([stats.t.ppf(0.975, k - 1) * sd / np.sqrt(k) if k > 1 else np.nan for k, sd in zip(folds, std)],
                   index=df.index)
    per_fold = df.notna().T.groupby([fold for fold, _ in df.columns]).sum().T
    balanced = per_fold.apply(lambda k: k[k > 0].nunique() <= 1, axis=1)
    return pd.DataFrame({"mean": fold_mean(df), "std": std, "n": n, "ci95": ci, "balanced": balanced})


def sign_flip_p(d) -> float:
    """Exact two-sided sign-flip (permutation) p-value of the mean of paired differences.

    Under the null hypothesis each difference is as likely to have either sign, so
    the ``2**n`` assignments of signs to ``|d|`` are equally likely; the p-value is
    the share of them whose mean is at least as far from 0 as the observed one. It
    cannot fall below ``2 / 2**n`` (0.0625 with 5 folds).

    Parameters
    ----------
    d : array_like, shape (n,)
        Paired differences (``n`` ≤ 20: the assignments are enumerated).

    Returns
    -------
    float
        The p-value; NaN when ``d`` is empty, all zero, or longer than 20.

    Examples
    --------
    >>> sign_flip_p([1.0, 2.0, 3.0])        # only the two all-one-sign assignments reach |mean| 2
    0.25
    """
    d = np.asarray(d, dtype=float)
    if not 0 < len(d) <= 20 or not np.any(d):
        return np.nan
    signs = 1 - 2 * ((np.arange(2 ** len(d))[:, None] >> np.arange(len(d))) & 1)
    return float(np.mean(np.abs(signs @ d) >= abs(d.sum()) * (1 - 1e-12)))


def holm(p) -> np.ndarray:
    """Holm's step-down adjustment of ``m`` p-values for testing one claim ``m`` times.

    The ``i``-th smallest p-value (from 1) is multiplied by ``m − i + 1``, then
    made non-decreasing in that order and capped at 1; a test is rejected at
    level α when its adjusted p-value is below α.

    Parameters
    ----------
    p : array_like, shape (m,)
        p-values; NaN ones are left NaN and not counted in ``m``.

    Returns
    -------
    np.ndarray
        The adjusted p-values, in the order of ``p``.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03]).round(3).tolist()    # 3 × 0.01, then max(2 × 0.03, 0.03), max(1 × 0.04, 0.06)
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    order = idx[np.argsort(p[idx], kind="stable")]
    m = len(order)
    out[order] = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    return out


#: what a paired comparison pairs, by ``unit``, in words
UNITS = {"fold": "fold means (each fold's runs averaged first: runs of a fold share its test, "
                 "validation and training clips, so the folds are the independent units)",
         "run": "(fold, seed) runs, as if independent (they are not: runs of a fold share its clips)"}


def paired_comparison(records: Sequence[Mapping[str, Any]], system: str = "multiview", baselines=None,
                      unit: str = "fold") -> pd.DataFrame:
    """``system`` against each baseline, paired over the folds both have.

    Parameters
    ----------
    records : list of dict
        Records (:func:`mvbook.records.load_records`).
    system : str
        The row compared (a key of :data:`ALL_ROW_NAMES`).
    baselines : list of str, optional
        Rows to compare with (default: every other row with runs).
    unit : {"fold", "run"}
        ``"fold"`` (default) pairs fold means: each fold's runs (over the seeds
        both rows have there) are averaged first, because runs of one fold share
        its clips and the folds are the independent units. ``"run"`` pairs the
        (fold, seed) runs as if independent; only on request (:data:`UNITS`).

    Returns
    -------
    pandas.DataFrame
        One row per baseline: ``pairs``, ``mean_diff`` (percentage points),
        ``wins``, ``ties``, ``losses``, and the two-sided p-values of a paired
        t-test (``p_t``; ``p_t_holm``: Holm-adjusted over the baselines of this
        call, which it takes as one family), an exact sign-flip test (``p_sign_flip``,
        :func:`sign_flip_p`) and a Wilcoxon signed-rank test (``p_wilcoxon``);
        1 where every difference is 0; NaN where there are too few pairs, or (the
        t-test) where the differences are all one other value. ``attrs["unit"]``
        says what was paired.
    """
    if unit not in UNITS:
        raise ConfigError(f"unit must be 'fold' or 'run', not {unit!r}")
    df = fold_accuracies(records)
    rows = {}
    columns = ["pairs", "mean_diff", "wins", "ties", "losses", "p_t", "p_sign_flip", "p_wilcoxon"]
    for b in (baselines or [k for k in df.index if k != system]) if system in df.index else []:
        if b not in df.index or b == system:
            continue
        both = df.loc[[system, b]].dropna(axis=1)
        if unit == "fold" and both.shape[1]:
            both = both.T.groupby([fold for fold, _ in both.columns]).mean().T
        d = np.round((both.loc[system] - both.loc[b]).to_numpy(), 6)     # float noise is not a difference
        n = len(d)
        none = n > 0 and not np.any(d)              # every difference 0: nothing to find, p = 1
        p_t = stats.ttest_1samp(d, 0.0).pvalue if n > 1 and np.any(d != d[0]) else 1.0 if none else np.nan
        p_w = stats.wilcoxon(d).pvalue if n > 1 and np.any(d != 0) else 1.0 if none else np.nan
        rows[b] = {"pairs": n, "mean_diff": d.mean() if n else np.nan, "wins": int((d > 0).sum()),
                   "ties": int((d == 0).sum()), "losses": int((d < 0).sum()), "p_t": p_t,
                   "p_sign_flip": 1.0 if none else sign_flip_p(d), "p_wilcoxon": p_w}
    out = pd.DataFrame.from_dict(rows, orient="index", columns=columns) if rows else pd.DataFrame(columns=columns)
    out.insert(columns.index("p_t") + 1, "p_t_holm", holm(out["p_t"].to_numpy(dtype=float)))
    out.attrs["unit"] = unit
    return out


#: The paper's qualitative findings (§3.2), as (claim, the row or rows that should be higher,
#: the rows they should beat): a side of several rows takes their minimum (left) or maximum (right).
CLAIMS = (
    ("Mel and Gammatone above CQT and raw", ("mel", "gam"), ("cqt", "raw")),
    ("concatenation above every single view", ("concat",), ("mel", "gam", "cqt", "raw")),
    ("late fusion above every single view", ("late",), ("mel", "gam", "cqt", "raw")),
    ("multi-view above every single view", ("multiview",), ("mel", "gam", "cqt", "raw")),
    ("multi-view above concatenation", ("multiview",), ("concat",)),
    ("multi-view above late fusion", ("multiview",), ("late",)),
    ("self-ensemble above multi-view", ("self_ensemble",), ("multiview",)),
)


VIEW_ROWS = ("mel", "gam", "cqt", "raw")
# Claims beyond the paper's: the equal-weight control, the second self-ensemble reading, and the
# literal reading of Algorithm 1 (†).
CLAIMS_BEYOND = (
    ("multi-view above equal weights", ("multiview",), ("equal",)),
    ("equal weights above every single view", ("equal",), VIEW_ROWS),
    ("uniform self-ensemble above multi-view", ("self_ensemble_uniform",), ("multiview",)),
    ("† literal multi-view above every single view", ("mv_literal",), VIEW_ROWS),
    ("† literal multi-view above concatenation", ("mv_literal",), ("concat",)),
    ("† literal multi-view above late fusion", ("mv_literal",), ("late",)),
    ("† literal self-ensemble above literal multi-view", ("mv_literal_se",), ("mv_literal",)),
    ("† literal uniform self-ensemble above literal multi-view", ("mv_literal_se_uniform",), ("mv_literal",)),
)


def check_claims(records: Sequence[Mapping[str, Any]], claims=CLAIMS) -> pd.DataFrame:
    """Each claim checked on the mean accuracies and run by run.

    The margin (percentage points) of the weakest row of the left side over the
    strongest of the right, on the means (:func:`fold_mean`) over the (fold, seed)
    runs that all the claim's rows have (so that a row with more seeds is not
    compared on other runs) and on each of those runs. The ``on the means`` column says only whether
    the means are in the claimed order; whether that is more than chance is
    :func:`mvbook.plan.claim_verdict`'s (a paired test).

    Parameters
    ----------
    records : list of dict
        Results records of one dataset and preset.
    claims : sequence of (str, tuple of str, tuple of str)
        (claim, rows that should be higher, rows they should beat), as :data:`CLAIMS`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``claim``: ``on the means`` (``"in this order"``, ``"not in
        this order"`` or ``"not enough runs"``), ``mean margin`` (points; NaN
        without runs), ``runs where it holds`` (``"k of n"``) and ``margin per
        run`` (the margins as text, :func:`signed`).
    """
    df = fold_accuracies(records)
    out = []
    for claim, left, right in claims:
        row = {"claim": claim, "on the means": "not enough runs", "mean margin": np.nan, "runs where it holds": "",
               "margin per run": ""}
        if not df.empty and all(k in df.index for k in left + right):
            both = df.loc[list(left + right)].dropna(axis=1)      # the runs every row has: rows with more
            if both.empty:                                         # seeds do not weigh their own mean
                out.append(row)
                continue
            mean = fold_mean(both)
            row["mean margin"] = mean[list(left)].min() - mean[list(right)].max()
            per = both.loc[list(left)].min() - both.loc[list(right)].max()
            row["on the means"] = "in this order" if row["mean margin"] > 0 else "not in this order"
            row["runs where it holds"] = f"{int((per > 0).sum())} of {len(per)}"
            row["margin per run"] = ", ".join(signed(m) for m in per)
        out.append(row)
    return pd.DataFrame(out).set_index("claim")


def signed(x: float, digits: int = 2) -> str:
    """A difference as the book prints it: always signed, with a true minus sign.

    Parameters
    ----------
    x : float
        A difference, in points.
    digits : int
        Decimals kept.

    Returns
    -------
    str
        ``+`` or ``−`` (U+2212, the sign the tables and formulas use), then
        ``|x|`` to ``digits`` decimals; ``—`` for NaN. A value that rounds to
        zero is ``+0.00``.

    Examples
    --------
    >>> signed(1.75), signed(-2.75), signed(-0.001), signed(3.14159, 1)
    ('+1.75', '−2.75', '+0.00', '+3.1')
    """
    if x != x:
        return "—"
    text = f"{x:+.{digits}f}"
    return "+" + text[1:] if float(text) == 0 else text.replace("-", "−")


def spans(numbers) -> str:
    """Integers in words, each run of consecutive ones as ``a–b``.

    Parameters
    ----------
    numbers : iterable of int
        Seeds, folds, …

    Returns
    -------
    str
        Sorted, e.g. ``1–3, 5``.

    Examples
    --------
    >>> spans([5, 1, 2, 3])
    '1–3, 5'
    """
    runs: list[list[int]] = []
    for k in sorted(numbers):
        if runs and k == runs[-1][1] + 1:
            runs[-1][1] = k
        else:
            runs.append([k, k])
    return ", ".join(f"{a}–{b}" if b > a else f"{a}" for a, b in runs)
