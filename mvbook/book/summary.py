"""What the records say, in the words and small tables the book's prose is
made of: the findings of the introduction, p-values as they should be read,
paired comparisons as sentences, the weight pattern of Fig. 2 and the cost of
the preset against the paper's recipe. Every number comes from records or the
code (:mod:`mvbook.results`, :mod:`mvbook.config`); chapters format, never compute.
Chapters: *Introduction*, *Results*, *Beyond the paper*.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import PRESETS, get_preset
from ..errors import DataError
from ..nets.crnn import CRNN1D, CRNN2D, n_params
from ..nets.fusionnet import FeatureCodingNet
from ..plan import FAMILY, decide
from ..results import (
    ALL_ROW_NAMES,
    PAPER_TABLE3,
    SELF_ENSEMBLE_ROWS,
    VIEW_ROWS,
    fold_accuracies,
    fold_mean,
    fold_std,
    paired_comparison,
    row_key,
    sign_flip_p,
    signed,
    spans,
    table3,
)
from .replay import as_equal_pairs, record_rule, weights_summary

__all__ = ["count", "design_words", "fmt_p", "COMPARISON_FORMAT", "min_wilcoxon_p", "wilcoxon_note", "findings_table",
           "length_margins", "compare_sentence", "weight_pattern", "preset_cost", "capacity", "scale_sentence",
           "scale_disagreements", "disagreement_sentence", "scale_table", "pattern_checks",
           "rerun_drift", "p_words", "uniform_sentence", "BASELINE_NAMES"]

# The rows of the introduction's table of findings, in its order.
_FINDING_ROWS = ("multiview", "mv_literal", "equal", "concat", "late", "mel", "gam", "cqt", "raw",
                "self_ensemble", "self_ensemble_uniform", "fusionnet", "sumrule", "cabcnn")
# The clips the paper's protocol (§3.1.3) trains on per fold: every clip outside the test fold
# (5 folds of ESC-50 / ESC-10 / the synthetic task, 10 of GTZAN; DCASE2016: the development set)
_PAPER_TRAIN_CLIPS = {"esc50": 2000 * 4 // 5, "esc10": 400 * 4 // 5, "gtzan": 1000 * 9 // 10,
                      "dcase2016": 15 * 78, "synthetic": 320 * 4 // 5}


def count(n: int, noun: str) -> str:
    """``n`` and ``noun``, the noun plural unless ``n`` is 1.

    Parameters
    ----------
    n : int
        How many.
    noun : str
        The singular noun.

    Returns
    -------
    str

    Examples
    --------
    >>> count(2, "fold"), count(1, "run")
    ('2 folds', '1 run')
    """
    return f"{n} {noun}{'' if n == 1 else 's'}"


def design_words(records: list[dict]) -> str:
    """The folds and seeds of some runs, in words.

    Parameters
    ----------
    records : list of dict
        Results records (their ``fold`` and ``seed``).

    Returns
    -------
    str
        ``"5 folds × 3 seeds"`` when every fold has the same seeds; otherwise the
        number of folds, then each set of seeds with the folds that have it.

    Examples
    --------
    >>> design_words([{"fold": f, "seed": s} for f in (1, 2, 3) for s in (0, 1)])
    '3 folds × 2 seeds'
    >>> design_words([{"fold": f, "seed": 0} for f in (1, 2, 3, 4)] + [{"fold": 1, "seed": 1}, {"fold": 2, "seed": 1}])
    '4 folds: seeds 0–1 on folds 1–2; seed 0 on folds 3–4'
    """
    seeds = {}
    for r in records:
        seeds.setdefault(r["fold"], set()).add(r["seed"])
    groups = {}
    for fold in sorted(seeds):
        groups.setdefault(tuple(sorted(seeds[fold])), []).append(fold)
    if len(groups) <= 1:
        return f"{count(len(seeds), 'fold')} × {count(len(next(iter(groups), ())), 'seed')}"
    return f"{count(len(seeds), 'fold')}: " + "; ".join(
        f"{'seeds' if len(s) > 1 else 'seed'} {spans(s)} on {'folds' if len(f) > 1 else 'fold'} {spans(f)}"
        for s, f in groups.items())


def fmt_p(p: float) -> str:
    """A p-value as the book prints it.

    Parameters
    ----------
    p : float
        A p-value; NaN when no test was possible.

    Returns
    -------
    str
        Three decimals, ``< 0.001`` below that, ``—`` for NaN.

    Examples
    --------
    >>> fmt_p(0.0961), fmt_p(0.0004), fmt_p(float("nan"))
    ('0.096', '< 0.001', '—')
    """
    if p != p:
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


# Styler formats of a paired_comparison table.
COMPARISON_FORMAT = {"mean_diff": signed, "p_t": fmt_p, "p_sign_flip": fmt_p, "p_wilcoxon": fmt_p}


def min_wilcoxon_p(n: int) -> float:
    """The smallest two-sided p-value an exact Wilcoxon signed-rank test can give.

    With ``n`` pairs it is reached when all differences have one sign: 2 / 2^n.

    Parameters
    ----------
    n : int
        Number of pairs.

    Returns
    -------
    float
        ``min(1, 2 / 2**n)``; 1.0 without pairs.

    Examples
    --------
    >>> min_wilcoxon_p(5), min_wilcoxon_p(0)
    (0.0625, 1.0)
    """
    return min(1.0, 2.0 / 2 ** n) if n > 0 else 1.0


def wilcoxon_note(table: pd.DataFrame, alpha: float = 0.05) -> str:
    """A sentence for a comparison table whose Wilcoxon column cannot reach ``alpha``.

    Parameters
    ----------
    table : pandas.DataFrame
        A :func:`~mvbook.results.paired_comparison` table (its ``pairs`` column is read).
    alpha : float
        The significance level.

    Returns
    -------
    str
        Why the Wilcoxon and sign-flip tests cannot fall below ``alpha`` with the
        table's largest number of pairs; empty when they can (or without pairs).
    """
    if table.empty or "pairs" not in table:
        return ""
    n = int(table["pairs"][table["pairs"] > 0].max()) if (table["pairs"] > 0).any() else 0
    if n == 0 or min_wilcoxon_p(n) < alpha:
        return ""
    return (f"With at most {n} pairs, the smallest two-sided p-value the Wilcoxon and the sign-flip tests "
            f"can give is {min_wilcoxon_p(n):.4g} (all {n} differences of one sign): they cannot fall below "
            f"{alpha:g} here, so only the t-test can call a difference significant, and their columns say how "
            "consistent the sign is.")


def findings_table(records: list[dict], rows=_FINDING_ROWS, reference: str = "multiview") -> pd.DataFrame:
    """The introduction's table of findings: each row with runs against ``reference``.

    Parameters
    ----------
    records : list of dict
        Results records of one dataset and preset.
    rows : sequence of str
        Row keys (:func:`~mvbook.results.row_key`), in the table's order; rows
        without runs are left out.
    reference : str
        The row the others are compared with, paired over fold means
        (:func:`~mvbook.results.paired_comparison`).

    Returns
    -------
    pandas.DataFrame
        One line per row: ``paper (ESC-50)`` (the paper's number), ``mean`` (our
        mean over all the row's runs, %, :func:`~mvbook.results.fold_mean`), ``runs``, ``folds`` (the folds they
        cover) and, where the row has folds in common with ``reference``,
        ``− <reference>`` (mean difference, points), ``ahead`` (folds ahead),
        ``of`` (folds paired), ``p_t`` (paired t-test) and ``p_sign_flip`` (exact
        sign-flip test).
    """
    df = fold_accuracies(records)
    out = {}
    for row in rows:
        if df.empty or row not in df.index:
            continue
        vals = df.loc[row].dropna()
        line = {"paper (ESC-50)": PAPER_TABLE3["esc50"].get(row, np.nan), "mean": fold_mean(vals), "runs": len(vals),
                "folds": len({f for f, _ in vals.index})}
        if row != reference:
            c = paired_comparison(records, row, [reference])
            if reference in c.index and c.loc[reference, "pairs"] > 0:
                x = c.loc[reference]
                line |= {f"− {reference}": x["mean_diff"], "ahead": int(x["wins"]), "of": int(x["pairs"]),
                         "p_t": x["p_t"], "p_sign_flip": x["p_sign_flip"]}
        out[row] = line
    return pd.DataFrame.from_dict(out, orient="index")


# the rows the multi-view network is set against at each scale (and the best single view), as sentences name them
_SCALE_BASELINES = ("concat", "late", "equal")
#: how sentences name the ways of combining the views that multi-view is set against
BASELINE_NAMES = {"concat": "concatenation", "late": "late fusion", "equal": "equal weights"}


def _scale_findings(records: list[dict], row: str = "multiview", decided: pd.DataFrame | None = None) -> dict:
    """The paper's central comparison at one preset: the mean of every row over all
    its runs (``mean``, ``n``), the best single view by that mean (``best_view``),
    the folds and seeds of ``row``'s runs in words (``design``), its training steps, and
    the verdicts of ``row`` against each of ``_SCALE_BASELINES`` and the best single
    view (:func:`~mvbook.plan.decide`, Holm over ``row`` against every baseline of the
    plan's family; ``verdicts``; ``decided``: that table where the caller has it)."""
    t = table3(records)
    views = [v for v in VIEW_ROWS if v in t.index]
    best = max(views, key=lambda v: t.loc[v, "mean"]) if views else None
    runs = [r for r in records if row_key(r) == row]
    se = SELF_ENSEMBLE_ROWS.get(row, (None,))[0]
    family = [(claim, se, row) if r == "self_ensemble" else (claim, row, b)      # the plan's family, for ``row``
              for claim, r, b in FAMILY if r != "self_ensemble" or se]
    if decided is None:
        d = decide(records, family)
    elif list(zip(decided["row"], decided["baseline"])) == [(r, b) for _, r, b in family]:
        d = decided
    else:
        raise ValueError(f"scale_sentence: the decisions given are not those of row {row!r}'s family "
                         f"{[(r, b) for _, r, b in family]}")
    verdicts = {b: d.set_index("baseline").loc[b].to_dict() for b in (*_SCALE_BASELINES, best) if b in t.index}
    return {"mean": t["mean"], "n": t["n"], "best_view": best, "verdicts": verdicts,
            "design": design_words(runs), "steps": sorted({int(r["config"]["steps"]) for r in runs})}


def scale_sentence(records: list[dict], preset: str, row: str = "multiview",
                   decided: pd.DataFrame | None = None) -> str:
    """The paper's central comparison at one preset, in words.

    Parameters
    ----------
    records : list of dict
        Results records of one dataset and preset.
    preset : str
        The preset's name, as the sentence gives it.
    row : str
        The row compared (:func:`~mvbook.results.row_key`) with concatenation,
        late fusion, equal weights and the best single view.
    decided : pandas.DataFrame, optional
        :func:`mvbook.plan.decide` of ``records`` over ``row``'s claims (for ``multiview``,
        the plan's family), where the chapter has it already; decided here otherwise.

    Returns
    -------
    str
        The means (of the fold means, :func:`~mvbook.results.fold_mean`, with
        their numbers of runs), then each paired comparison over
        fold means with the t-test's p, its Holm-adjusted value, the verdict
        (:data:`mvbook.plan.VERDICTS`) and the minimum detectable difference; a
        short sentence when ``row`` has no run.
        ``row`` is named "the multi-view network" when it is ``multiview``, else by
        its key and :data:`~mvbook.results.ALL_ROW_NAMES` name.

    Raises
    ------
    ValueError
        When ``decided`` holds other claims than ``row``'s.
    """
    f = _scale_findings(records, row, decided)
    if row not in f["mean"].index:
        return f"At `{preset}` there is no `{row}` run yet."
    name = dict(BASELINE_NAMES)
    if f["best_view"]:
        name[f["best_view"]] = f"the best single view ({ALL_ROW_NAMES[f['best_view']]})"
    means = ", ".join(f"{name[b]} {f['mean'][b]:.2f} ({count(int(f['n'][b]), 'run')})" for b in f["verdicts"])
    steps = " or ".join(f"{s:,}" for s in f["steps"])
    who = ("the multi-view network", "multi-view") if row == "multiview" else \
        (f"`{row}` ({ALL_ROW_NAMES[row].rstrip(' †')})", f"`{row}`")
    head = (f"At `{preset}` ({steps} training steps; {f['design']}), {who[0]} reaches {f['mean'][row]:.2f} % "
            f"({count(int(f['n'][row]), 'run')}); {means}.")
    pairs = []
    for b, v in f["verdicts"].items():
        if v["verdict"] == "too few runs":
            pairs.append(f"against {name[b]}: {count(int(v['pairs']), 'fold')} with both, too few for a test")
            continue
        pairs.append(f"− {name[b]} {signed(v['mean_diff'])} points over {count(int(v['pairs']), 'fold')} "
                     f"(t-test {p_words(v['p'])}, Holm-adjusted {p_words(v['p_holm'])}: {v['verdict']}; "
                     f"detectable from {v['mdd']:.1f})")
    return head + f" Paired over fold means, {who[1]} " + "; ".join(pairs) + "."


def _resets(rule) -> bool:
    """Whether a blending rule makes the weights uniform when no branch improves."""
    return rule.fallback == "uniform" or rule.floor > 0


def uniform_sentence(groups: dict, system: str = "multiview", baseline: str = "equal") -> str:
    """How much of a blending row's training was the uniform-weights network's, in words.

    Parameters
    ----------
    groups : dict
        Preset name (as the sentence gives it) → results records of one dataset
        and that preset.
    system, baseline : str
        The blending row and its uniform-weights control.

    Returns
    -------
    str
        At each preset, the share of Algorithm 1's measurements at which no
        branch improved (:func:`~mvbook.book.replay.weights_summary`); what the rule
        does then (uniform weights, or the last ones kept); and the runs whose
        selected network was trained with uniform weights only, how many of
        them have the ``baseline`` run's test accuracies on every branch, and
        the folds whose every pair is such a run, so that the fold's paired
        difference is exactly 0 (:func:`~mvbook.book.replay.as_equal_pairs`). Empty
        when ``system`` has no run.
    """
    w = {p: s for p, recs in groups.items() if (s := weights_summary(recs, system))}
    if not w:
        return ""
    runs = [r for recs in groups.values() for r in recs if row_key(r) == system]
    K, name = len(runs[0]["best"]["weights"]), BASELINE_NAMES.get(baseline, baseline)
    then = (f"the weights return to 1/{K} each: until the next measurement the network trains as {name} does"
            if _resets(record_rule(runs[0])) else "its rule keeps the last weights")
    shares = " and ".join(f"{s['all-zero'] / (s['updates'] + s['all-zero']):.0%}{' of its measurements' * (i == 0)} "
                          f"at `{p}` ({count(s['runs'], 'run')})" for i, (p, s) in enumerate(w.items()))
    text = [f"Algorithm 1 found no branch setting a new validation minimum at {shares}; there {then}."]
    who = "multi-view" if system == "multiview" else f"`{system}`"
    for p in w:
        records = groups[p]
        both = {(r["fold"], r["seed"]) for r in records if row_key(r) == system} & \
            {(r["fold"], r["seed"]) for r in records if row_key(r) == baseline}
        if not both:
            continue
        pairs = as_equal_pairs(records, system, baseline)
        head = (f"At `{p}`, of the {len(both)} {who} runs with a run of `{baseline}` on the same fold and seed, "
                f"{'none' if pairs.empty else len(pairs)} selected a network trained with uniform weights only")
        if pairs.empty:
            text.append(head + ".")
            continue
        same = set(pairs.index[pairs["same"]])
        if not same:
            text.append(head + "; none has the same test accuracy on every branch as that run.")
            continue
        whole = sorted(f for f in {f for f, _ in both} if all(k in same for k in both if k[0] == f))
        have = (f"all {len(pairs)} have" if len(same) == len(pairs) > 1 else "it has" if len(same) == len(pairs)
                else f"{len(same)} of them have")
        where = f" (every pair on {'fold' if len(whole) == 1 else 'folds'} {spans(whole)})" if whole else ""
        text.append(f"{head}; {have} the same test accuracy on every branch as that run, so they add exactly 0 "
                    f"to the comparison{where}.")
    return " ".join(text)


def scale_disagreements(short: list[dict], long: list[dict], row: str = "multiview") -> list[str]:
    """The baselines that ``row`` is above at one training length and below at the other.

    Parameters
    ----------
    short, long : list of dict
        Results records of the same dataset at two presets (training lengths).
    row : str
        The row compared with concatenation, late fusion and equal weights.

    Returns
    -------
    list of str
        Row keys of the baselines whose mean difference over fold means changes sign.
    """
    return _flips(_scale_findings(short, row)["verdicts"], _scale_findings(long, row)["verdicts"])


def _flips(a: dict, b: dict) -> list[str]:
    """The baselines whose verdicts ``a`` and ``b`` (of ``_scale_findings``) differ in sign."""
    return [k for k in _SCALE_BASELINES if k in a and k in b and a[k]["pairs"] and b[k]["pairs"]
            and np.sign(a[k]["mean_diff"]) * np.sign(b[k]["mean_diff"]) < 0]


def disagreement_sentence(short: list[dict], long: list[dict], presets=("cpu", "long"),
                          row: str = "multiview") -> str:
    """Where the two training lengths disagree (:func:`scale_disagreements`), in words.

    Parameters
    ----------
    short, long : list of dict
        Results records of the same dataset at two presets (training lengths).
    presets : tuple of str
        The two presets' names, as the sentence gives them.
    row : str
        The row compared with concatenation, late fusion and equal weights.

    Returns
    -------
    str
        Each baseline whose difference changes sign, with ``row`` minus it at
        each length (points, mean over fold means), then which of those
        differences is significant (paired t-test over fold means, p < 0.05);
        empty when the lengths agree.
    """
    v = [_scale_findings(recs, row)["verdicts"] for recs in (short, long)]
    flips = _flips(*v)
    if not flips:
        return ""
    name = BASELINE_NAMES
    each = [f"{name[k]} ({signed(v[0][k]['mean_diff'])} points at `{presets[0]}`, "
            f"{signed(v[1][k]['mean_diff'])} at `{presets[1]}`)" for k in flips]
    sig = [f"{name[k]} at `{p}` ({p_words(x[k]['p'])})" for k in flips for p, x in zip(presets, v) if x[k]["p"] < 0.05]
    who = "the multi-view network" if row == "multiview" else f"`{row}`"
    return (f"**The two lengths disagree** on {' and '.join(each)}: {who} is below on average at one length and "
            "above at the other. " + (f"Significant (paired t-test over fold means, p < 0.05): {'; '.join(sig)}."
                                      if sig else "None of these differences is significant at either length "
                                      "(paired t-test over fold means, p ≥ 0.05)."))


def scale_table(short: list[dict], long: list[dict], rows=None) -> pd.DataFrame:
    """Table 3 at two training lengths side by side, with the effect of length.

    Parameters
    ----------
    short, long : list of dict
        Results records of the same dataset at two presets (training lengths).
    rows : list of str, optional
        Row keys; default every row of :data:`~mvbook.results.ALL_ROW_NAMES` with runs at either length.

    Returns
    -------
    pandas.DataFrame
        One line per row: ``short mean``, ``short std``, ``short runs``, ``long
        mean``, ``long std``, ``long runs`` (accuracy, %: the mean of the fold
        means, :func:`~mvbook.results.fold_mean`, and their std,
        :func:`~mvbook.results.fold_std`), then
        ``long − short`` (points: the differences of the (fold, seed) runs both
        lengths have, averaged within each fold, then over the folds), ``pairs``
        (the number of those runs), ``seeds`` (theirs) and ``sign-flip p (folds)`` (over those fold means).
    """
    a, b = fold_accuracies(short), fold_accuracies(long)
    out = {}
    for row in rows or [k for k in ALL_ROW_NAMES if k in a.index or k in b.index]:
        line = {}
        for name, df in (("short", a), ("long", b)):
            vals = df.loc[row].dropna() if row in df.index else pd.Series(dtype=float)
            line |= {f"{name} mean": fold_mean(vals) if len(vals) else np.nan,
                     f"{name} std": fold_std(vals), f"{name} runs": len(vals)}
        both = [c for c in (b.columns if row in b.index else []) if row in a.index and c in a.columns
                and pd.notna(a.at[row, c]) and pd.notna(b.at[row, c])]
        d = pd.Series({c: b.at[row, c] - a.at[row, c] for c in both}, dtype=float)
        by_fold = d.groupby([f for f, _ in d.index]).mean() if len(d) else d
        line |= {"long − short": by_fold.mean() if len(d) else np.nan, "pairs": len(d),
                 "seeds": sorted({s for _, s in both}),
                 "sign-flip p (folds)": sign_flip_p(by_fold.to_numpy()) if len(d) else np.nan}
        out[row] = line
    return pd.DataFrame.from_dict(out, orient="index")


def length_margins(short: list[dict], long: list[dict], row: str = "multiview",
                   others=("concat", "equal")) -> pd.DataFrame:
    """``row`` minus each of ``others`` (points), trained short and long.

    Parameters
    ----------
    short, long : list of dict
        Results records of the same dataset at two presets (training lengths).
    row : str
        The row measured.
    others : sequence of str
        The rows it is measured against.

    Returns
    -------
    pandas.DataFrame
        One line per other row: ``short`` and ``long`` (the margins of the
        (fold, seed) runs that both record sets have for both rows, averaged
        within each fold, then over the folds) and ``runs`` (their number); an
        other row without such runs is left out.
    """
    acc = {"short": fold_accuracies(short), "long": fold_accuracies(long)}
    out = {}
    for other in others:
        cells = [c for c in acc["long"].columns
                 if all({row, other} <= set(a.index) and c in a.columns
                        and pd.notna(a.at[row, c]) and pd.notna(a.at[other, c]) for a in acc.values())]
        if cells:
            out[other] = {p: fold_mean(pd.Series({c: a.at[row, c] - a.at[other, c] for c in cells}))
                          for p, a in acc.items()}
            out[other]["runs"] = len(cells)
    return pd.DataFrame.from_dict(out, orient="index")


def compare_sentence(records: list[dict], row: str, baseline: str, unit: str = "fold") -> str:
    """A paired comparison in words.

    Parameters
    ----------
    records : list of dict
        Results records of one dataset and preset.
    row, baseline : str
        Row keys (:func:`~mvbook.results.row_key`).
    unit : {"fold", "run"}
        What is paired (:func:`~mvbook.results.paired_comparison`).

    Returns
    -------
    str
        ``"<row> − <baseline>: +d points over n folds (ahead on w, behind on l;
        paired t-test p …, sign-flip test p …)"``; empty without pairs.
    """
    c = paired_comparison(records, row, [baseline], unit=unit)
    if baseline not in c.index or not c.loc[baseline, "pairs"]:
        return ""
    x = c.loc[baseline]
    units = count(int(x["pairs"]), "fold") if unit == "fold" else f"{count(int(x['pairs']), 'run')}, as if independent"
    return (f"{ALL_ROW_NAMES[row].rstrip(' †')} − {ALL_ROW_NAMES[baseline].rstrip(' †')}: {signed(x['mean_diff'])} "
            f"points over {units} (ahead on {int(x['wins'])}, behind on {int(x['losses'])}; "
            f"paired t-test {p_words(x['p_t'])}, sign-flip test {p_words(x['p_sign_flip'])})")


def p_words(p: float) -> str:
    """A p-value in a sentence.

    Parameters
    ----------
    p : float
        A p-value; NaN when no test was possible.

    Returns
    -------
    str

    Examples
    --------
    >>> p_words(0.0961), p_words(0.0004), p_words(float("nan"))
    ('p = 0.096', 'p < 0.001', 'no p')
    """
    f = fmt_p(p)
    return "no p" if f == "—" else f"p {f}" if f.startswith("<") else f"p = {f}"


def weight_pattern(records: list[dict], system: str = "multiview") -> pd.DataFrame:
    """Mean weight of each branch in the first and the second half of training.

    The halves are the evaluations up to and after the middle step; each is
    averaged over the runs of ``system``: whether the paper's pattern (2D views
    first, raw later) shows.

    Parameters
    ----------
    records : list of dict
        Results records.
    system : str
        The row whose runs are averaged (:func:`~mvbook.results.row_key`).

    Returns
    -------
    pandas.DataFrame
        Rows ``first half`` and ``second half`` × one column per branch (the
        record's ``curves["weights"]`` keys); empty without runs of ``system``.
    """
    halves = {"first half": [], "second half": []}
    for r in records:
        if row_key(r) != system:
            continue
        steps = np.asarray(r["curves"]["step"])
        mid = steps[-1] / 2
        w = pd.DataFrame(r["curves"]["weights"])
        halves["first half"].append(w[steps <= mid].mean())
        halves["second half"].append(w[steps > mid].mean())
    if not halves["first half"]:
        return pd.DataFrame()
    return pd.DataFrame({h: pd.concat(v, axis=1).mean(axis=1) for h, v in halves.items()}).T


def pattern_checks(pattern: pd.DataFrame, early=("mel", "gam", "cqt"), late: str = "raw") -> dict:
    """The paper's Fig. 2 pattern, branch by branch, on a :func:`weight_pattern` table.

    Each 2D branch above its uniform share 1/K (K branches) and above the late
    branch in the first half, each 2D branch's weight lower in the second half,
    the late branch's higher. A sum of the 2D weights is not a test: three
    uniform weights already outweigh one.

    Parameters
    ----------
    pattern : pandas.DataFrame
        A :func:`weight_pattern` table.
    early : sequence of str
        The branches expected to lead first (the 2D views).
    late : str
        The branch expected to gain later (the raw view).

    Returns
    -------
    dict
        Claim (str, naming ``late``) → whether it holds (bool).
    """
    w, u = pattern, 1 / pattern.shape[1]
    first, second = w.loc["first half"], w.loc["second half"]
    return {f"each 2D branch above its uniform share ({u:.2f}) in the first half": bool((first[list(early)] > u).all()),
            f"each 2D branch above {late} in the first half": bool((first[list(early)] > first[late]).all()),
            "each 2D branch lower in the second half": bool((second[list(early)] < first[list(early)]).all()),
            f"{late} higher in the second half": bool(second[late] > first[late])}


def rerun_drift(records: list[dict], reruns: list[dict]) -> pd.DataFrame:
    """Each re-run beside the committed record of the same run.

    A re-run is a record trained again from the same configuration.

    Parameters
    ----------
    records : list of dict
        The committed results records of one dataset and preset
        (:func:`mvbook.book.chapters.main_records`).
    reruns : list of dict
        The re-runs' records; one without a committed record of the same
        system, dataset, preset, fold and seed is left out.

    Returns
    -------
    pandas.DataFrame
        One line per (system, fold, seed): ``record`` and ``re-run`` (test
        accuracies, %), ``Δ`` (re-run − record, points), ``step (record)`` and
        ``step (re-run)`` (the selected steps) and ``same code, torch and
        threads`` (whether commit, torch and thread count were the same, so that
        what is left to differ is the machine).

    Raises
    ------
    mvbook.errors.DataError
        When the re-runs set beside records span more than one (dataset,
        preset): their lines would share (system, fold, seed).
    """
    mine = {(r["system"], r["dataset"], r["preset"], r["fold"], r["seed"]): r for r in records}
    rows, groups = {}, set()
    for again in reruns:
        key = (again["system"], again["dataset"], again["preset"], again["fold"], again["seed"])
        if key not in mine:
            continue
        groups.add(key[1:3])
        if len(groups) > 1:
            raise DataError(f"rerun_drift sets re-runs of one dataset and preset beside their records, not of "
                            f"{sorted(groups)}: pass the records of one (dataset, preset)")
        was, a, b = mine[key], mine[key]["provenance"], again["provenance"]
        rows[(key[0], key[3], key[4])] = {
            "record": 100 * was["system_accuracy"], "re-run": 100 * again["system_accuracy"],
            "Δ": 100 * (again["system_accuracy"] - was["system_accuracy"]),
            "step (record)": was["best"]["step"], "step (re-run)": again["best"]["step"],
            "same code, torch and threads": (a["git_commit"], a["torch"], a["torch_threads"])
            == (b["git_commit"], b["torch"], b["torch_threads"])}
    return pd.DataFrame.from_dict(rows, orient="index")


def preset_cost(record: dict, dataset: str | None = "esc50") -> dict:
    """Epochs and optimiser steps of a record's run against the paper's recipe.

    Parameters
    ----------
    record : dict
        A results record (its ``config`` gives ``epochs`` and ``steps``).
    dataset : str or None
        The dataset of the paper's recipe compared with: its epochs and its
        steps per epoch (the training clips of one fold in batches of 64,
        e.g. ESC-50's 1,600: 25). Default ESC-50, as the chapters compare; None:
        the record's own dataset.

    Returns
    -------
    dict
        ``epochs``, ``epochs_paper``, ``steps``, ``steps_paper`` and
        ``step_share`` (``steps / steps_paper``).
    """
    paper, dataset = PRESETS["paper"], dataset or record["dataset"]
    epochs_paper = paper.epochs_for(dataset)
    steps_paper = epochs_paper * -(-_PAPER_TRAIN_CLIPS[dataset] // paper.batch_size)   # as training: rounded up
    steps = int(record["config"]["steps"])
    return {"epochs": int(record["config"]["epochs"]), "epochs_paper": epochs_paper, "steps": steps,
            "steps_paper": steps_paper, "step_share": steps / steps_paper}


def capacity(preset: str = "cpu", sr: int = 44100) -> dict:
    """Parameters of one view's network at a preset's width.

    FusionNet's coding network against the CRNN (Mel and raw), and the CRNN
    width whose 2D CRNN matches the Mel coder's size (to the nearest 0.01): a
    capacity-matched control.

    Parameters
    ----------
    preset : str
        A preset name (:func:`~mvbook.config.get_preset`); its ``width`` and ``raw_bands`` are used.
    sr : int
        Sampling rate (Hz) of the raw view.

    Returns
    -------
    dict
        ``width``; parameter counts ``coder_mel``, ``coder_raw``, ``crnn_mel``,
        ``crnn_raw``; ``matched_width`` and ``crnn_mel_matched`` (the matched 2D
        CRNN's count); ``ratio`` (``coder_mel / crnn_mel``).
    """
    p = get_preset(preset)
    out = {"width": p.width, "coder_mel": n_params(FeatureCodingNet("mel", p.width, sr, p.raw_bands)),
           "coder_raw": n_params(FeatureCodingNet("raw", p.width, sr, p.raw_bands)),
           "crnn_mel": n_params(CRNN2D(p.width)), "crnn_raw": n_params(CRNN1D(p.width, sr, p.raw_bands))}
    widths = np.round(np.arange(p.width, 1.0001, 0.01), 2)
    out["matched_width"] = float(min(widths, key=lambda w: abs(n_params(CRNN2D(float(w))) - out["coder_mel"])))
    out["crnn_mel_matched"] = n_params(CRNN2D(out["matched_width"]))
    out["ratio"] = out["coder_mel"] / out["crnn_mel"]
    return out
