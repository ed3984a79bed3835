"""The verdicts in plain words: the bottom line that opens *What was found*
(:func:`~mvbook.findings.bottom_line`: the best system at each length, blending against equal
weights, how the paper's claims fared, what the design can see) and the
claims side by side at two lengths (:func:`~mvbook.findings.verdict_table`), all decided under
the analysis plan (:mod:`mvbook.plan`). Chapters: *Introduction*, *Results*.
"""
from __future__ import annotations

import pandas as pd

from .plan import FAMILY, decide
from .results import row_key, signed, table3
from .summary import fmt_p

__all__ = ["verdict_table", "bottom_line"]


def verdict_table(groups: dict, family=FAMILY) -> pd.DataFrame:
    """Each claim of the plan's family decided at each training length, side by side.

    Parameters
    ----------
    groups : dict
        Preset name → its results records (one dataset).
    family : sequence of (str, str, str)
        (claim, row, baseline), :data:`mvbook.plan.FAMILY` by default; Holm's
        adjustment runs over it, at each preset.

    Returns
    -------
    pandas.DataFrame
        Indexed by claim; for each preset ``<preset>: verdict``
        (:func:`mvbook.plan.decide`'s), ``<preset>: points`` (the mean difference of
        the fold means, :func:`~mvbook.results.signed`), ``<preset>: p (Holm)`` (the
        t-test's p and its Holm-adjusted value, :func:`~mvbook.summary.fmt_p`) and ``<preset>:
        detectable`` (the minimum detectable difference, points).
    """
    out = {claim: {} for claim, _, _ in family}
    for preset, records in groups.items():
        d = decide(records, family)
        for claim, v in d.iterrows():
            out[claim] |= {f"{preset}: verdict": v["verdict"], f"{preset}: points": signed(v["mean_diff"]),
                           f"{preset}: p (Holm)": f"{fmt_p(v['p'])} ({fmt_p(v['p_holm'])})",
                           f"{preset}: detectable": "—" if v["mdd"] != v["mdd"] else f"{v['mdd']:.1f}"}
    return pd.DataFrame.from_dict(out, orient="index")


# The rows the bottom line ranks (the paper's and the equal-weight control), as its sentences name them.
_RANKED_ROWS = {"self_ensemble": "the self-ensemble", "multiview": "multi-view", "late": "late fusion",
                "concat": "concatenation", "equal": "equal weights", "mel": "Mel", "gam": "Gammatone", "cqt": "CQT",
                "raw": "raw"}


def _and(items: list) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return " and ".join(items) if len(items) < 3 else ", ".join(items[:-1]) + " and " + items[-1]


def _best_rows(records: list[dict]) -> tuple:
    """(names of the best-ranked rows, tied within 0.005 points, their mean) of :data:`_RANKED_ROWS`."""
    t = table3(records)["mean"]
    t = t[[k for k in _RANKED_ROWS if k in t.index]]
    top = t.max()
    return [_RANKED_ROWS[k] for k in t.index if top - t[k] < 0.005], top


def bottom_line(groups: dict) -> list[str]:
    """The findings in three to five plain sentences, before any p-value: the best system at
    each length, whether blending beat equal weights, how the paper's claims fared, and how
    large a difference the design can see.

    Parameters
    ----------
    groups : dict
        Preset name → its records (one dataset), in the order the sentences name them.

    Returns
    -------
    list of str
        The sentences (Markdown); empty without multi-view runs.
    """
    groups = {p: r for p, r in groups.items() if any(row_key(x) == "multiview" for x in r)}
    if not groups:
        return []
    decided = {p: decide(r) for p, r in groups.items()}
    t = {p: table3(r)["mean"] for p, r in groups.items()}
    best = {p: _best_rows(r) for p, r in groups.items()}
    out = ["**Best system.** A" + "; a".join(
        f"t `{p}`, {_and(names)} ({top:.2f} %{', tied' if len(names) > 1 else ''}), against multi-view's "
        f"{t[p]['multiview']:.2f} %" for p, (names, top) in best.items()) + "."]
    eq = {p: d.loc["multi-view above equal weights"] for p, d in decided.items()}
    moves = "; ".join(f"{signed(v['mean_diff'])} points at `{p}` ({v['verdict']})" for p, v in eq.items())
    won = [p for p, v in eq.items() if v["verdict"] == "holds"]
    lost = [p for p, v in eq.items() if v["verdict"] == "reversed"]
    out.append("**Blending against equal weights.** " + (
        f"Algorithm 1's blending beat fixed equal weights at {_and([f'`{p}`' for p in won])}" if won else
        f"Fixed equal weights beat Algorithm 1's blending at {_and([f'`{p}`' for p in lost])}" if lost else
        "Algorithm 1's blending neither beat nor lost to fixed equal weights detectably")
        + f": multi-view − equal weights is {moves}.")
    counts = []
    for p, d in decided.items():
        c = d["verdict"].value_counts()
        held = [claim.replace("multi-view above ", "") for claim in d.index[d["verdict"] == "holds"]]
        counts.append(f"at `{p}` {c.get('holds', 0)} hold{'s' if c.get('holds', 0) == 1 else ''}"
                      + (f" (multi-view above {_and(held)})" if held else "")
                      + f", {c.get('reversed', 0)} reversed, {c.get('not shown', 0)} not shown")
    below = {p: [_RANKED_ROWS[k] for k in ("concat", "late", "equal")
                 if k in t[p].index and t[p][k] > t[p]["multiview"]] for p in groups}
    out.append(f"**The paper's claims** ({len(FAMILY)} about its method, Holm-corrected): " + "; ".join(counts)
               + ". On the means, multi-view is below " + "; ".join(
                   f"{_and(b) if b else 'none of concatenation, late fusion and equal weights'} at `{p}`"
                   for p, b in below.items()) + ".")
    seen = "; ".join(f"from {d['mdd'].min():.1f} to {d['mdd'].max():.1f} points at `{p}`"
                     for p, d in decided.items() if d["mdd"].notna().any())
    gaps = [abs(d.loc[c, "mean_diff"]) for d in decided.values() for c in d.index
            if d.loc[c, "baseline"] in ("equal", "late", "concat")]
    out.append(f"**What this design can see.** With {int(max(d['pairs'].max() for d in decided.values()))} folds, "
               f"the smallest true differences found four times in five run {seen}, and the differences between "
               f"the ways of combining the views are {min(gaps):.2f} to {max(gaps):.2f} points: *not shown* "
               "means too small for this design to see, not absent.")
    return out
