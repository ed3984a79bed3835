"""The verdicts in plain words: the bottom line that opens *What was found*
(:func:`~mvbook.book.findings.bottom_line`: the best system at each length, blending against equal
weights, how the paper's claims fared, what the design can see) and the
claims side by side at two lengths (:func:`~mvbook.book.findings.verdict_table`), all decided under
the analysis plan (:mod:`mvbook.plan`). Chapters: *Introduction*, *Results*.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import get_preset
from ..plan import FAMILY, NEW_SEEDS, decide, progress, required_done
from ..results import row_key, signed, table3
from .summary import BASELINE_NAMES, fmt_p

__all__ = ["verdict_table", "bottom_line", "preset_differences", "selection_noise", "ensemble_weights",
           "noise_paragraph"]


def verdict_table(groups: dict, family=FAMILY, decided: dict | None = None) -> pd.DataFrame:
    """Each claim of the plan's family decided at each training length, side by side.

    Parameters
    ----------
    groups : dict
        Preset name → its results records (one dataset).
    family : sequence of (str, str, str)
        (claim, row, baseline), :data:`mvbook.plan.FAMILY` by default; Holm's
        adjustment runs over it, at each preset.
    decided : dict, optional
        Preset → :func:`mvbook.plan.decide` of its records over ``family``, where the
        chapter has decided them already; decided here otherwise.

    Returns
    -------
    pandas.DataFrame
        Indexed by claim; for each preset ``<preset>: verdict``
        (:func:`mvbook.plan.decide`'s), ``<preset>: points`` (the mean difference of
        the fold means, :func:`~mvbook.results.signed`), ``<preset>: p (Holm)`` (the
        t-test's p and its Holm-adjusted value, :func:`~mvbook.book.summary.fmt_p`) and ``<preset>:
        detectable`` (the minimum detectable difference, points).
    """
    out = {claim: {} for claim, _, _ in family}
    for preset, records in groups.items():
        d = decided[preset] if decided is not None and preset in decided else decide(records, family)
        for claim, v in d.iterrows():
            out[claim] |= {f"{preset}: verdict": v["verdict"], f"{preset}: points": signed(v["mean_diff"]),
                           f"{preset}: p (Holm)": f"{fmt_p(v['p'])} ({fmt_p(v['p_holm'])})",
                           f"{preset}: detectable": "—" if v["mdd"] != v["mdd"] else f"{v['mdd']:.1f}"}
    return pd.DataFrame.from_dict(out, orient="index")


# The rows the bottom line ranks (the paper's and the equal-weight control), as its sentences name them
# (the ways of combining the views as summary's sentences do).
_RANKED_ROWS = {"self_ensemble": "the self-ensemble", "multiview": "multi-view",
                **{k: BASELINE_NAMES[k] for k in ("late", "concat", "equal")},
                "mel": "Mel", "gam": "Gammatone", "cqt": "CQT", "raw": "raw"}


def _and(items: list) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return " and ".join(items) if len(items) < 3 else ", ".join(items[:-1]) + " and " + items[-1]


def _best_rows(records: list[dict]) -> tuple:
    """(names of the best-ranked rows, tied within 0.005 points, their mean) of :data:`_RANKED_ROWS`."""
    t = table3(records)["mean"]
    t = t[[k for k in _RANKED_ROWS if k in t.index]]
    top = t.max()
    return [_RANKED_ROWS[k] for k in t.index if top - t[k] < 0.005], top


def bottom_line(groups: dict, decided: dict | None = None) -> list[str]:
    """The findings in three to five plain sentences, before any p-value: the best system at
    each length, whether blending beat equal weights, how the paper's claims fared, and how
    large a difference the design can see.

    Parameters
    ----------
    groups : dict
        Preset name → its records (one dataset), in the order the sentences name them.
    decided : dict, optional
        Preset → :func:`mvbook.plan.decide` of its records (the plan's family), where the
        chapter has decided them already; decided here otherwise.

    Returns
    -------
    list of str
        The sentences (Markdown); empty without multi-view runs.
    """
    groups = {p: r for p, r in groups.items() if any(row_key(x) == "multiview" for x in r)}
    if not groups:
        return []
    decided = {p: decide(r) if decided is None or p not in decided else decided[p] for p, r in groups.items()}
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
               "means too small for this design to see, not absent." + _grid_words(groups.get("cpu")))
    return out


def _grid_words(records: list[dict] | None) -> str:
    """A sentence on the plan's own runs at ``cpu`` while its required stages are not complete (else empty)."""
    if not records:
        return ""
    g = progress(records)
    if required_done(g):
        return ""
    required = g[g["required"]]
    return (f" The plan's own runs at `cpu` (seeds {NEW_SEEDS[0]}–{NEW_SEEDS[-1]}, drawn per fold) are "
            f"{required['landed'].sum()} of {required['planned'].sum()} in, so its verdicts can still change.")


def preset_differences(a: str = "cpu", b: str = "long", steps_per_epoch: int | None = None) -> list[str]:
    """Everything that differs between two presets, in words: the effect of a preset is the
    effect of all of it, not of its length alone.

    Parameters
    ----------
    a, b : str
        Preset names (:data:`mvbook.config.PRESETS`).
    steps_per_epoch : int, optional
        A run's steps per epoch (its record's ``config``), to state Algorithm 1's
        window and the number of evaluations in steps.

    Returns
    -------
    list of str
        One item per field that differs (``reduced``, the words of the
        reductions, left out), with what it changes.

    Examples
    --------
    >>> preset_differences("cpu", "long")[0]
    'training length: 120 → 600 epochs (5× the steps)'
    """
    pa, pb = get_preset(a), get_preset(b)
    da, db = pa.to_dict(), pb.to_dict()
    out = []
    for k in da:
        if k in ("name", "reduced") or da[k] == db[k]:
            continue
        if k == "epochs":
            out.append(f"training length: {pa.epochs} → {pb.epochs} epochs ({pb.epochs / pa.epochs:g}× the steps)")
            decays = [", ".join(f"{f * q.epochs:g}" for f in q.decay_at) for q in (pa, pb)]
            out.append(f"the learning-rate decays (×{pa.decay:g} at {', '.join(f'{f:g}E' for f in pa.decay_at)}): "
                       f"at epochs {decays[0]} → {decays[1]}")
        elif k == "warmup_epochs":
            out.append(f"warm-up at the low learning rate: {pa.warmup_epochs} → {pb.warmup_epochs} epochs")
        elif k == "eval_every":
            span = f"{pa.window * pa.eval_every} → {pb.window * pb.eval_every} steps"
            line = (f"evaluation every {pa.eval_every} → {pb.eval_every} steps: Algorithm 1's window of W = "
                    f"{pa.window} measurements spans {span}, and the checkpoint is chosen on that grid")
            if steps_per_epoch:
                n = [q.epochs * steps_per_epoch // q.eval_every for q in (pa, pb)]
                line += f" ({n[0]} → {n[1]} evaluations per run)"
            out.append(line)
        else:
            out.append(f"{k}: {da[k]} → {db[k]}")
    return out


def selection_noise(records: list[dict]) -> dict:
    """How much chance is in one run's selected checkpoint.

    Parameters
    ----------
    records : list of dict
        Records of one dataset and preset.

    Returns
    -------
    dict
        ``runs``; ``val_clips`` (the validation sets' sizes, sorted); ``ties``
        (runs whose selected validation accuracy was reached at another evaluation
        too, so that the validation loss chose); ``gap`` (mean over runs, in points,
        of the best test accuracy of the selecting branch at any evaluation minus
        that at the selected one: what selection on validation clips leaves).
    """
    ties, gaps = 0, []
    for r in records:
        main = r["main_branch"]
        val = np.asarray(r["curves"]["accuracy"]["val"][main])
        test = np.asarray(r["curves"]["accuracy"]["test"][main])
        ties += int((val == r["best"]["val_accuracy"]).sum() > 1)
        gaps.append(100 * (test.max() - r["accuracy"][main]))
    return {"runs": len(records), "val_clips": sorted({r["config"]["split"]["val"] for r in records}),
            "ties": ties, "gap": float(np.mean(gaps)) if gaps else np.nan}


def ensemble_weights(records: list[dict], system: str = "multiview") -> dict:
    """What the self-ensemble of Eq. 6 is, run by run: the selected checkpoint's weights.

    Parameters
    ----------
    records : list of dict
        Records of one dataset and preset.
    system : str
        The blending row.

    Returns
    -------
    dict
        ``runs`` of ``system``; ``one_hot`` (one branch above 0.99: Eq. 6 returns
        that branch's vote) and ``uniform`` (every weight 1/5 within 10⁻⁶: Eq. 6 is
        the plain average of the branches) among them.
    """
    runs = [r for r in records if row_key(r) == system]
    w = [np.asarray(list(r["best"]["weights"].values())) for r in runs]
    return {"runs": len(runs), "one_hot": sum(int(x.max() > 0.99) for x in w),
            "uniform": sum(int(np.allclose(x, 1 / len(x), atol=1e-6)) for x in w)}


def noise_paragraph(groups: dict, drift: pd.DataFrame | None = None) -> str:
    """The noise under every number, in words: what the self-ensemble rows are, how few
    clips select a checkpoint and what selection leaves, and what a same-code re-run moves.

    Parameters
    ----------
    groups : dict
        Preset name → its records (one dataset).
    drift : pandas.DataFrame, optional
        :func:`mvbook.book.summary.rerun_drift`'s table (same-code re-runs of committed runs).

    Returns
    -------
    str
        Markdown; empty without records.
    """
    parts = []
    for p, recs in groups.items():
        if not recs:
            continue
        w, n = ensemble_weights(recs), selection_noise(recs)
        se = (f"the selected weights are one-hot in {w['one_hot']} and uniform in {w['uniform']} of "
              f"{w['runs']} multi-view runs (one-hot: Eq. 6 returns one branch's vote; uniform: the plain "
              "average of the branches)") if w["runs"] else "no multi-view run yet"
        parts.append(f"At `{p}` {se}; a checkpoint is chosen on {' or '.join(map(str, n['val_clips']))} "
                     f"validation clips, {n['ties']} of {n['runs']} runs tie on validation accuracy at their "
                     f"selected step (the validation loss decides), and the selected checkpoint is "
                     f"{n['gap']:.2f} points below the run's best test checkpoint on average.")
    if not parts:
        return ""
    if drift is not None and len(drift):
        same = drift[drift["same code, torch and threads"]]
        if len(same):
            parts.append(f"The same code, torch and thread count, run again on another machine, moved a run's "
                         f"test accuracy by up to {same['Δ'].abs().max():.2f} points ({len(same)} re-runs).")
    return "**The noise under every number.** " + " ".join(parts)
