"""The book's figures drawn from results records — Algorithm 1 replayed, the
curves of one run, Fig. 2 — and the style every figure of the book shares:
sized for the book's text column (about 780 px wide), with labels, ticks and
legends no smaller than the body text. Re-exported by :mod:`mvbook.book.plots`.

- :data:`BOOK_RC`, :func:`.book_style`: the shared matplotlib settings.
- :func:`.blending_trace`, :func:`.plot_blending_trace`: Algorithm 1 replayed on a
  record's loss history, every intermediate quantity in a table, and drawn.
- :func:`.plot_curves`: the curves of one run (the *Training* notebook).
- :func:`mean_curve`, :func:`.fig2`: Fig. 2 (a), (b), (c) of the paper from records.

Chapters: *Adaptive gradient blending*, *Training*, *Results*, *Beyond the paper*.
"""
from __future__ import annotations

import warnings

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..blending import RULES, AdaptiveBlender, BlendRule, replay_losses
from ..results import ALL_ROW_NAMES, row_key
from ..views.framing import ALL_VIEWS, VIEW_INFO

__all__ = ["BRANCH_LABEL", "BRANCH_COLOR", "SYSTEM_COLOR", "FIG_WIDTH", "FONT_PT", "BOOK_RC", "book_style",
           "blending_trace", "plot_blending_trace", "plot_curves", "mean_curve", "runs_of", "fig2"]

BRANCH_LABEL = {v: VIEW_INFO[v].label for v in ALL_VIEWS} | {"mv": "⊕ multi-view"}
BRANCH_COLOR = {"mel": "#1f77b4", "gam": "#ff7f0e", "cqt": "#2ca02c", "raw": "#d62728", "harm": "#17becf",
                "perc": "#bcbd22", "mv": "#222222", "self_ensemble": "#9467bd"}
SYSTEM_COLOR = {"multiview": "#222222", "concat": "#8c564b", "equal": "#7f7f7f", "mel": BRANCH_COLOR["mel"],
                "gam": BRANCH_COLOR["gam"], "cqt": BRANCH_COLOR["cqt"], "raw": BRANCH_COLOR["raw"]}

# The book shows a figure at most about 780 px wide. A figure FIG_WIDTH inches wide shown there has
# 780 / (72 · FIG_WIDTH) px per point: 12 pt at 8 in is 16 px, the size of the body text.
FIG_WIDTH = 8.0
FONT_PT = 12
#: matplotlib settings of the book's figures
BOOK_RC = {"figure.figsize": (FIG_WIDTH, 4.5), "font.size": FONT_PT, "axes.titlesize": FONT_PT,
           "axes.labelsize": FONT_PT, "xtick.labelsize": FONT_PT, "ytick.labelsize": FONT_PT,
           "legend.fontsize": FONT_PT, "figure.titlesize": FONT_PT + 1, "legend.framealpha": 0.85,
           "axes.titlelocation": "left"}


def book_style() -> None:
    """Apply :data:`BOOK_RC` to every figure made from now on, and report progress in
    plain lines, not widgets: keep ``tqdm.auto`` from warning that ipywidgets is
    missing (chapters and the training notebook call it on import of :mod:`mvbook.book.chapters`)."""
    mpl.rcParams.update(BOOK_RC)
    warnings.filterwarnings("ignore", message="IProgress not found")


# --- Algorithm 1 replayed ---------------------------------------------------------------------

def blending_trace(curves: dict, window: int, reference: str = "best", *, eps: float = 1e-6,
                   power: float = 2.0, rule: BlendRule = RULES["literal"]) -> pd.DataFrame:
    """Algorithm 1 replayed on a record's loss history, every quantity of Eq. 3–5 in a table.

    Parameters
    ----------
    curves : dict
        A record's ``curves`` (``step``, ``weights``, ``loss["train"]``, ``loss["val"]``).
    window : int
        W, the evaluations the estimates span.
    reference : {"best", "initial"}
        Algorithm 1's best-so-far references, or Wang et al.'s initial ones
        (:class:`mvbook.blending.AdaptiveBlender`).
    eps : float
        Added to :math:`|O|^{power}`; keyword only.
    power : float
        The exponent of :math:`|O|` in Eq. 5; keyword only.
    rule : mvbook.blending.BlendRule
        The blending rule (:data:`mvbook.blending.RULES`); keyword only.

    Returns
    -------
    pandas.DataFrame
        One row per measurement ``n`` and branch: ``n``, ``step``, ``branch``,
        ``L_tr``, ``L_va`` (measured losses) and ``w`` (the weight); from the
        first update on also ``Lbar_tr``, ``Lbar_va`` (the estimates: means over
        the last W, or slopes), ``G``, ``O``, ``ratio`` (unnormalised weight) and,
        for a mean-estimator rule, the references ``Lstar_tr`` and ``Lstar_va``.
    """
    branches = list(curves["weights"])
    blender = AdaptiveBlender(branches, window=window, reference=reference, eps=eps, power=power, rule=rule)
    rows = []
    replayed = replay_losses(blender, curves["loss"]["train"], curves["loss"]["val"], len(curves["step"]))
    for n, (step, (tr, va, w)) in enumerate(zip(curves["step"], replayed)):
        for k in branches:
            row = {"n": n, "step": step, "branch": k, "L_tr": tr[k], "L_va": va[k]}
            if n + 1 >= blender.first:                           # the quantities of this update (Eq. 3–5)
                Lbar_tr, Lbar_va, G_k, O_k = blender.L_tr_bar[k], blender.L_va_bar[k], blender.G[k], blender.O[k]
                row.update(Lbar_tr=Lbar_tr, Lbar_va=Lbar_va, G=G_k, O=O_k, ratio=blender.ratio[k])
                if rule.estimator == "mean":
                    row.update(Lstar_tr=Lbar_tr + G_k + O_k, Lstar_va=Lbar_va + G_k)
            row["w"] = w[k]
            rows.append(row)
    return pd.DataFrame(rows)


def plot_blending_trace(trace: pd.DataFrame, title: str | None = None):
    """Four panels from a :func:`.blending_trace` table.

    The validation losses (thin: measured; thick: smoothed over W; dashed: the
    reference L*), G (Eq. 3), O (Eq. 4) and the weights w (Eq. 5) of every branch.
    A trace of the slope rule (no ``Lstar_va``: its estimates are slopes) has the
    measured losses only in the first panel.

    Parameters
    ----------
    trace : pandas.DataFrame
        A :func:`.blending_trace` table.
    title : str, optional
        The figure's title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = plt.subplots(2, 2, figsize=(FIG_WIDTH, 7.6), sharex=True, constrained_layout=True)
    axes = axes.ravel()
    means = "Lstar_va" in trace          # a mean-estimator rule: smoothed losses and references L*;
    for k in dict.fromkeys(trace["branch"]):   # the slope rule's estimates are slopes, not losses
        d = trace[trace["branch"] == k]
        col = BRANCH_COLOR[k]
        axes[0].plot(d["step"], d["L_va"], color=col, lw=0.6 if means else 1.2, alpha=0.45 if means else 1.0)
        if means:
            axes[0].plot(d["step"], d["Lbar_va"], color=col, lw=1.6, label=BRANCH_LABEL[k])
            axes[0].plot(d["step"], d["Lstar_va"], color=col, lw=0.9, ls="--", drawstyle="steps-post")
        if "G" in d:
            axes[1].plot(d["step"], d["G"], color=col, marker=".", ms=3)
            axes[2].plot(d["step"], d["O"], color=col, marker=".", ms=3)
        axes[3].plot(d["step"], d["w"], color=col, marker=".", ms=3, label=BRANCH_LABEL[k])
    loss_title = ("(a) validation loss: measured (thin),\nsmoothed $\\bar L_\\diamond$, reference $L^*_\\diamond$ "
                  "(dashed)" if means else "(a) validation loss, measured")
    for ax, t in zip(axes, (loss_title, "(b) generalisation $G(n)$ (Eq. 3)", "(c) overfitting $O(n)$ (Eq. 4)",
                            "(d) weight $w(n)$ (Eq. 5)")):
        ax.set_title(t)
    for ax in axes[2:]:
        ax.set_xlabel("training step")
    for ax in axes[1:3]:
        ax.axhline(0, color="#999999", lw=0.6)
    axes[3].set_ylim(-0.03, 1.03)
    handles, labels = axes[3].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 3))
    if title:
        fig.suptitle(title)
    return fig


# --- curves of one run, and Fig. 2 -------------------------------------------------------------

def plot_curves(record: dict, title: str | None = None):
    """The curves of one run.

    Loss on the fixed training subset (dashed) and the validation set (solid) per
    branch, the branch weights of Eq. 2, and the validation accuracy per branch
    (and of the self-ensemble); a dotted line at the selected checkpoint.

    Parameters
    ----------
    record : dict
        A results record.
    title : str, optional
        The figure's title; default the record's dataset, system, fold and preset.

    Returns
    -------
    matplotlib.figure.Figure
        Three panels.
    """
    c = record["curves"]
    steps = np.asarray(c["step"])
    branches = list(c["weights"])
    fig, axes = plt.subplots(3, 1, figsize=(FIG_WIDTH, 9.5), sharex=True, constrained_layout=True)
    for k in branches:
        col = BRANCH_COLOR[k]
        axes[0].plot(steps, c["loss"]["val"][k], color=col, label=BRANCH_LABEL[k])
        axes[0].plot(steps, c["loss"]["train"][k], color=col, ls="--", lw=0.9)
        axes[1].plot(steps, c["weights"][k], color=col, label=BRANCH_LABEL[k], marker=".", ms=3)
        axes[2].plot(steps, 100 * np.asarray(c["accuracy"]["val"][k]), color=col, label=BRANCH_LABEL[k])
    if len(branches) > 1:
        axes[2].plot(steps, 100 * np.asarray(c["accuracy"]["val"]["self_ensemble"]),
                     color=BRANCH_COLOR["self_ensemble"], ls=":", label="self-ensemble")
    axes[0].set_title("loss: validation (solid), training subset (dashed)")
    axes[1].set_title("branch weights $w^{(k)}(n)$ of Eq. 2")
    axes[2].set_title("validation accuracy (%)")
    best = record.get("best", {}).get("step")
    for ax in axes:
        if best is not None:
            ax.axvline(best, color="#999999", lw=0.8, ls=":")
    axes[2].set_xlabel("training step")
    axes[1].set_ylim(-0.03, 1.03)
    axes[2].legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, frameon=False)
    fig.suptitle(title or f"{record['dataset']} · {record['system']} · fold {record['fold']} · preset "
                 f"{record['preset']}\n(dotted line: the selected checkpoint)")
    return fig


def mean_curve(records, split: str, branch=None, key: str = "loss"):
    """One curve averaged over records: within each fold, then over the folds.

    Each run is interpolated onto the steps of the shortest run, so folds of
    slightly different length average cleanly; a fold with more seeds weighs
    no more than the others (as :func:`~mvbook.results.fold_mean`).

    Parameters
    ----------
    records : list of dict
        Results records; those without evaluations are left out.
    split : {"train", "val", "test"}
        Which curve.
    branch : str, optional
        The branch; default each record's main branch.
    key : str
        ``"loss"`` or ``"accuracy"``.

    Returns
    -------
    steps : numpy.ndarray, shape (n,)
        The shortest run's evaluation steps.
    mean : numpy.ndarray, shape (n,)
        The mean curve (of the fold means).
    count : int
        Number of records averaged.
    """
    runs = [r for r in records if r["curves"]["step"]]
    if not runs:
        return np.array([]), np.array([]), 0
    ref = min(runs, key=lambda r: r["curves"]["step"][-1])
    steps = np.asarray(ref["curves"]["step"], dtype=float)
    by_fold = {}
    for r in runs:
        y = np.interp(steps, r["curves"]["step"], r["curves"][key][split][branch or r["main_branch"]])
        by_fold.setdefault(r["fold"], []).append(y)
    return steps, np.mean([np.mean(ys, axis=0) for ys in by_fold.values()], axis=0), len(runs)


def runs_of(records: list[dict]) -> str:
    """How many runs a figure averages, for its title.

    Parameters
    ----------
    records : list of dict
        Results records.

    Returns
    -------
    str
        ``"R runs, mean over F folds"`` (each fold's runs averaged first,
        :func:`mean_curve`), or ``"one run"``.
    """
    folds = {r["fold"] for r in records}
    if len(records) == 1:
        return "one run"
    return f"{len(records)} runs, mean over {len(folds)} fold{'s' if len(folds) != 1 else ''}"


def fig2(records: list[dict], fold: int = 1, axes=None, title: str | None = None, system: str = "multiview"):
    """Fig. 2 of the paper from records of one dataset and preset.

    (a) test loss of the five branches of the multi-view network, mean over
    folds; (b) the branch weights during training, one fold; (c) test loss of the
    multi-view network (its ⊕ branch) against the baselines, mean over folds.
    Panels without records say so.

    Parameters
    ----------
    records : list of dict
        Results records of one dataset and preset.
    fold : int
        The fold of panel (b) (the first run of ``system`` when it has none on it).
    axes : sequence of 3 matplotlib.axes.Axes, optional
        Where to draw; default a new figure's.
    title : str, optional
        The figure's title.
    system : str
        The blending row drawn as the multi-view network (e.g. ``mv_literal``).

    Returns
    -------
    sequence of matplotlib.axes.Axes
        ``axes``.
    """
    if axes is None:
        _, axes = plt.subplots(3, 1, figsize=(FIG_WIDTH, 13), sharex=True, constrained_layout=True)
    by_system = {}
    for r in records:
        by_system.setdefault(row_key(r), []).append(r)
    mv = by_system.get(system, [])
    ax = axes[0]
    for k in ("mel", "gam", "cqt", "raw", "mv"):
        steps, y, n = mean_curve(mv, "test", k)
        if n:
            ax.plot(steps, y, color=BRANCH_COLOR[k], label=BRANCH_LABEL[k])
    ax.set_title(f"(a) test loss of the branches ({runs_of(mv)})")
    ax = axes[1]
    one = [r for r in mv if r["fold"] == fold] or mv[:1]
    if one:
        c = one[0]["curves"]
        for k in c["weights"]:
            ax.plot(c["step"], c["weights"][k], color=BRANCH_COLOR[k], label=BRANCH_LABEL[k])
    ax.set_title(f"(b) branch weights (fold {one[0]['fold'] if one else fold}, seed {one[0]['seed'] if one else 0})")
    ax.set_ylim(-0.03, 1.03)
    ax = axes[2]
    for s in (system, "concat", "equal", "mel", "gam", "cqt", "raw"):
        steps, y, n = mean_curve(by_system.get(s, []), "test")
        if n:
            name = ALL_ROW_NAMES[s].replace(" (extra)", "").rstrip(" †")
            ax.plot(steps, y, color=SYSTEM_COLOR.get(s, SYSTEM_COLOR["multiview"]), label=f"{name} ({n})",
                    lw=1.8 if s == system else 1.0)
    ax.set_title("(c) test loss: multi-view vs. baselines (mean over runs; runs in brackets)")
    for ax, empty in zip(axes, (not mv, not mv, not by_system)):
        if empty:
            ax.text(0.5, 0.5, "no records", transform=ax.transAxes, ha="center", color="#999999")
        elif ax.get_legend_handles_labels()[0]:             # below the panel: the plot keeps the full width
            below = -0.18 if ax is axes[-1] else -0.04               # the last panel has the x label
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, below), ncol=3, frameon=False)
    axes[-1].set_xlabel("training step")
    axes[0].set_ylabel("cross-entropy")
    axes[1].set_ylabel("w(n)")
    axes[2].set_ylabel("cross-entropy")
    if title:
        axes[0].figure.suptitle(title)
    return axes


