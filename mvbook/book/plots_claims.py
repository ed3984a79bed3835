"""The verdict at a glance and the views class by class, as figures with alt
text that says what they show: the forest plot of the claims
(:func:`~mvbook.book.plots_claims.plot_forest`), the per-class heat map
(:func:`~mvbook.book.plots_claims.plot_class_accuracy`) and a confusion matrix
(:func:`~mvbook.book.plots_claims.plot_confusion`);
:func:`~mvbook.book.plots_claims.figure_html` puts a figure in a page with its
alt text. Chapters: *Introduction*, *Results*.
"""
from __future__ import annotations

import base64
import html
import io

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..results import signed
from .plots_runs import FIG_WIDTH

__all__ = ["VERDICT_STYLE", "plot_forest", "forest_alt", "plot_class_accuracy", "plot_confusion", "figure_html"]

#: marker and colour of each verdict in the forest plot
VERDICT_STYLE = {"holds": ("o", "#1a7f37"), "reversed": ("s", "#b2182b"), "not shown": ("D", "#555555"),
                 "too few runs": ("x", "#aaaaaa")}
_MIME = {"png": "image/png", "svg": "image/svg+xml"}


def plot_forest(decisions: dict, title: str | None = None):
    """Each claim's difference at each preset, with its 95 % interval, verdict and detectable range.

    Parameters
    ----------
    decisions : dict
        Preset → :func:`mvbook.plan.decide`'s table (the same claims in each).
    title : str, optional
        The figure's title.

    Returns
    -------
    matplotlib.figure.Figure
        One line per claim and preset: the mean difference of the fold means
        (points; right of 0 is the claim's direction) with its 95 % confidence
        interval, marked by verdict; the grey band is ± the minimum detectable
        difference (a true difference inside it is found less than four times in five).
    """
    presets = list(decisions)
    claims = list(next(iter(decisions.values())).index)
    fig, ax = plt.subplots(figsize=(FIG_WIDTH, 0.4 * len(claims) * len(presets) + 1.2), constrained_layout=True)
    step = 1.0 / (len(presets) + 1)
    seen = set()
    for i, claim in enumerate(claims):
        for j, preset in enumerate(presets):
            v = decisions[preset].loc[claim]
            y = -(i + (j + 1) * step)
            if v.mdd == v.mdd:
                ax.fill_betweenx([y - step / 2.4, y + step / 2.4], -v.mdd, v.mdd, color="#dddddd", lw=0)
            if v.mean_diff != v.mean_diff:
                continue
            marker, color = VERDICT_STYLE[v.verdict]
            ax.errorbar(v.mean_diff, y, xerr=v.ci95 if v.ci95 == v.ci95 else None, fmt=marker, color=color,
                        capsize=3, label=v.verdict if v.verdict not in seen else None)
            seen.add(v.verdict)
            ax.text(0.005, y, preset, transform=ax.get_yaxis_transform(), fontsize=9, va="center", color="#555555")
    ax.axvline(0, color="#333333", lw=0.8)
    ax.set_yticks([-(i + 0.5) for i in range(len(claims))], claims)
    for i in range(1, len(claims)):
        ax.axhline(-i, color="#eeeeee", lw=0.6)
    ax.set_ylim(-len(claims), 0)
    ax.set_xlabel("difference of fold means (points)")
    ax.legend(loc="lower right", fontsize=9, title="verdict (Holm)", title_fontsize=9)
    if title:
        ax.set_title(title, loc="left")
    return fig


def forest_alt(decisions: dict) -> str:
    """The alt text of :func:`plot_forest`: every claim's difference, interval and verdict in words.

    Parameters
    ----------
    decisions : dict
        As :func:`plot_forest`.

    Returns
    -------
    str
    """
    parts = []
    for preset, d in decisions.items():
        items = [f"{claim}: {signed(v.mean_diff)} points (95 % interval ±{v.ci95:.2f}), {v.verdict}, "
                 f"detectable from {v.mdd:.1f}" for claim, v in d.iterrows() if v.mean_diff == v.mean_diff]
        parts.append(f"At preset {preset}: " + "; ".join(items) + ".")
    return ("Forest plot of the paper's claims: each claim's mean difference over fold means with its 95 % "
            "confidence interval, marked by its verdict, over a grey band of ± the minimum detectable difference. "
            + " ".join(parts))


def plot_class_accuracy(table: pd.DataFrame, names: dict | None = None, title: str | None = None):
    """Heat map of per-class accuracy (%): rows × classes, each cell labelled.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`mvbook.book.classes.per_class_accuracy`'s.
    names : dict, optional
        Row key → display name.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plt.subplots(figsize=(FIG_WIDTH, 0.5 * len(table) + 2.2), constrained_layout=True)
    im = ax.imshow(table.to_numpy(dtype=float), cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(table.shape[1]), [c.replace("_", " ") for c in table.columns], rotation=40, ha="right")
    ax.set_yticks(range(len(table)), [(names or {}).get(k, k) for k in table.index])
    for (i, j), x in np.ndenumerate(table.to_numpy(dtype=float)):
        ax.text(j, i, f"{x:.0f}", ha="center", va="center", fontsize=9, color="white" if x < 60 else "black")
    fig.colorbar(im, ax=ax, label="accuracy (%)", pad=0.01)
    if title:
        ax.set_title(title, loc="left")
    return fig


def plot_confusion(M: np.ndarray, classes, title: str | None = None):
    """A confusion matrix as row-normalised percentages (true class × predicted class).

    Parameters
    ----------
    M : numpy.ndarray
        Counts, :func:`mvbook.book.classes.confusion`'s.
    classes : sequence of str
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    P = 100 * M / np.maximum(M.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(FIG_WIDTH * 0.8, FIG_WIDTH * 0.7), constrained_layout=True)
    ax.imshow(P, cmap="Blues", vmin=0, vmax=100)
    labels = [c.replace("_", " ") for c in classes]
    ax.set_xticks(range(len(labels)), labels, rotation=40, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for (i, j), x in np.ndenumerate(P):
        if x >= 0.5:
            ax.text(j, i, f"{x:.0f}", ha="center", va="center", fontsize=8, color="white" if x > 60 else "black")
    ax.set(xlabel="predicted class", ylabel="true class")
    if title:
        ax.set_title(title, loc="left")
    return fig


def figure_html(fig, alt: str, fmt: str = "png") -> str:
    """A figure as an ``<img>`` with its alt text (the image inline), the figure closed.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    alt : str
        What the figure shows, in words ("Figure: " is put in front where it is not).
    fmt : {"png", "svg"}
        The image's format: ``svg`` for drawings that must stay sharp at any size.

    Returns
    -------
    str
        HTML.

    Raises
    ------
    ValueError
        For another ``fmt``.
    """
    if fmt not in _MIME:
        raise ValueError(f"figure_html: fmt must be one of {sorted(_MIME)}, not {fmt!r}")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=110, bbox_inches="tight")          # as Jupyter's inline figures
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    alt = alt if alt.startswith("Figure: ") else "Figure: " + alt          # as every figure of the book
    return (f'<img src="data:{_MIME[fmt]};base64,{data}" alt="{html.escape(alt, quote=True)}" '
            'style="max-width:100%;height:auto">')
