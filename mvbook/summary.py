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

from .config import PRESETS, get_preset
from .fusionnet import FeatureCodingNet
from .models import CRNN1D, CRNN2D, n_params
from .results import ALL_ROW_NAMES, PAPER_TABLE3, fold_accuracies, paired_comparison, row_key

# The rows of the introduction's table of findings, in its order.
FINDING_ROWS = ("multiview", "mv_literal", "equal", "concat", "late", "mel", "gam", "cqt", "raw",
                "self_ensemble", "self_ensemble_uniform", "fusionnet", "sumrule", "cabcnn")
ESC50_TRAIN_CLIPS = 2000 * 4 // 5     # ESC-50: 2,000 clips in 5 folds, 4 of them for training (§3.1.3)


def count(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless n is 1: ``count(2, "fold")`` is ``"2 folds"``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def fmt_p(p: float) -> str:
    """A p-value as it should be printed: three decimals, ``< 0.001`` below that, ``—`` when there is none."""
    if p != p:
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


# Styler formats of a paired_comparison table.
COMPARISON_FORMAT = {"mean_diff": "{:+.2f}", "p_t": fmt_p, "p_wilcoxon": fmt_p}


def min_wilcoxon_p(n: int) -> float:
    """The smallest two-sided p-value an exact Wilcoxon signed-rank test can give
    with ``n`` pairs (all differences of one sign): 2 / 2^n."""
    return min(1.0, 2.0 / 2 ** n) if n > 0 else 1.0


def wilcoxon_note(table: pd.DataFrame, alpha: float = 0.05) -> str:
    """A sentence for a comparison table whose Wilcoxon column cannot reach ``alpha``
    (too few pairs); empty when every row can."""
    if table.empty or "pairs" not in table:
        return ""
    n = int(table["pairs"][table["pairs"] > 0].max()) if (table["pairs"] > 0).any() else 0
    if n == 0 or min_wilcoxon_p(n) < alpha:
        return ""
    return (f"With at most {n} pairs, the smallest two-sided p-value the Wilcoxon test can give is "
            f"{min_wilcoxon_p(n):.4g} (all {n} differences of one sign): it cannot fall below {alpha:g} here, "
            "so only the t-test can call a difference significant, and the Wilcoxon column says how "
            "consistent the sign is.")


def findings_table(records: list[dict], rows=FINDING_ROWS, reference: str = "multiview") -> pd.DataFrame:
    """One line per row that has runs: the paper's ESC-50 number, our mean over
    the seed-0 runs (one per fold: the same folds for every row) and its number
    of folds, the mean over all runs and their number, and the paired
    comparison with ``reference`` by fold mean (difference, folds ahead, of how many)."""
    df = fold_accuracies(records)
    out = {}
    for row in rows:
        if df.empty or row not in df.index:
            continue
        vals = df.loc[row].dropna()
        seed0 = vals[[s == 0 for _, s in vals.index]]
        line = {"paper (ESC-50)": PAPER_TABLE3["esc50"].get(row, np.nan), "seed 0": seed0.mean(),
                "folds": len(seed0), "all runs": vals.mean(), "runs": len(vals)}
        if row != reference:
            c = paired_comparison(records, row, [reference], unit="fold")
            if reference in c.index and c.loc[reference, "pairs"] > 0:
                line |= {f"− {reference}": c.loc[reference, "mean_diff"], "ahead": int(c.loc[reference, "wins"]),
                         "of": int(c.loc[reference, "pairs"])}
        out[row] = line
    return pd.DataFrame.from_dict(out, orient="index")


def length_margins(short: list[dict], long: list[dict], row: str = "multiview",
                   others=("concat", "equal")) -> pd.DataFrame:
    """``row`` minus each of ``others`` (points), trained short and long: the mean
    over the (fold, seed) runs that both record sets have for both rows (columns
    ``short``, ``long``, ``runs``; an ``other`` without such runs is left out)."""
    acc = {"short": fold_accuracies(short), "long": fold_accuracies(long)}
    out = {}
    for other in others:
        cells = [c for c in acc["long"].columns
                 if all({row, other} <= set(a.index) and c in a.columns
                        and pd.notna(a.at[row, c]) and pd.notna(a.at[other, c]) for a in acc.values())]
        if cells:
            out[other] = {p: float(np.mean([a.at[row, c] - a.at[other, c] for c in cells])) for p, a in acc.items()}
            out[other]["runs"] = len(cells)
    return pd.DataFrame.from_dict(out, orient="index")


def compare_sentence(records: list[dict], row: str, baseline: str, unit: str = "fold") -> str:
    """'row − baseline: +d points over n folds (ahead on w, behind on l; t-test p …)', or '' without pairs."""
    c = paired_comparison(records, row, [baseline], unit=unit)
    if baseline not in c.index or not c.loc[baseline, "pairs"]:
        return ""
    x = c.loc[baseline]
    units = "folds" if unit == "fold" else "runs"
    return (f"{ALL_ROW_NAMES[row].rstrip(' †')} − {ALL_ROW_NAMES[baseline].rstrip(' †')}: {x['mean_diff']:+.2f} "
            f"points over {int(x['pairs'])} {units} (ahead on {int(x['wins'])}, behind on {int(x['losses'])}; "
            f"paired t-test p {'= ' if fmt_p(x['p_t'])[0].isdigit() else ''}{fmt_p(x['p_t'])})")


def weight_pattern(records: list[dict], system: str = "multiview") -> pd.DataFrame:
    """Mean weight of each branch in the first and the second half of training
    (evaluations up to and after the middle step), averaged over the runs of
    ``system``: whether the paper's pattern (2D views first, raw later) shows."""
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


def preset_cost(record: dict, dataset: str = "esc50") -> dict:
    """Epochs and optimiser steps of ``record``'s run against the paper's recipe
    on ``dataset`` (batch 64; ESC-50's 1,600 training clips per fold)."""
    paper = PRESETS["paper"]
    epochs_paper = paper.epochs_for(dataset)
    steps_paper = epochs_paper * (ESC50_TRAIN_CLIPS // paper.batch_size)
    steps = int(record["config"]["steps"])
    return {"epochs": int(record["config"]["epochs"]), "epochs_paper": epochs_paper, "steps": steps,
            "steps_paper": steps_paper, "step_share": steps / steps_paper}


def capacity(preset: str = "cpu", sr: int = 44100) -> dict:
    """Parameters of one view's network at ``preset``'s width: FusionNet's coding
    network against the CRNN (Mel and raw), and the CRNN width whose 2D CRNN
    matches the Mel coder's size (to the nearest 0.01): a capacity-matched control."""
    p = get_preset(preset)
    out = {"width": p.width, "coder_mel": n_params(FeatureCodingNet("mel", p.width, sr, p.raw_bands)),
           "coder_raw": n_params(FeatureCodingNet("raw", p.width, sr, p.raw_bands)),
           "crnn_mel": n_params(CRNN2D(p.width)), "crnn_raw": n_params(CRNN1D(p.width, sr, p.raw_bands))}
    widths = np.round(np.arange(p.width, 1.0001, 0.01), 2)
    out["matched_width"] = float(min(widths, key=lambda w: abs(n_params(CRNN2D(float(w))) - out["coder_mel"])))
    out["crnn_mel_matched"] = n_params(CRNN2D(out["matched_width"]))
    out["ratio"] = out["coder_mel"] / out["crnn_mel"]
    return out
