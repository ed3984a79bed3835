"""What each view contributes, class by class, from the test posteriors the
records keep: per-class accuracy of every row, the confusion matrix of one,
and complementarity — how many test clips at least one single view gets
right, against the best single view, late fusion and the multi-view network.
The paper's premise is that the views complement each other; this measures it
on the same runs. Chapter: *Results*.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..ensemble import late_fusion
from ..results import row_key
from ..systems import DERIVED

__all__ = ["run_predictions", "per_class_accuracy", "confusion", "complementarity"]


def run_predictions(records: list[dict], rows=("mel", "gam", "cqt", "raw", "late", "multiview")) -> dict:
    """Each row's predicted class of every test clip, on the (fold, seed) runs where every row has one.

    Parameters
    ----------
    records : list of dict
        Records of one dataset and preset.
    rows : sequence of str
        Row keys: trained rows (their main branch's posteriors) or ``late`` (the
        mean of the four single views' posteriors, :func:`mvbook.ensemble.late_fusion`).

    Returns
    -------
    dict
        (fold, seed) → ``{"labels": (N,) array, row: (N,) predicted classes …}``;
        only runs that every row has.
    """
    by_run: dict = {}
    for r in records:
        by_run.setdefault((r["fold"], r["seed"]), {})[row_key(r)] = r
    out = {}
    for run, have in sorted(by_run.items()):
        need = {m for k in rows for m in (DERIVED["late"] if k == "late" else (k,))}
        if not need <= set(have):
            continue
        pred = {"labels": np.asarray(next(iter(have.values()))["test"]["labels"])}
        for k in rows:
            if k == "late":
                pred[k] = late_fusion(have, DERIVED["late"])["probs"].argmax(1)
            else:
                r = have[k]
                pred[k] = np.asarray(r["test"]["probs"][r["main_branch"]]).argmax(1)
        out[run] = pred
    return out


def per_class_accuracy(predictions: dict, classes) -> pd.DataFrame:
    """Accuracy (%) of every row on every class, over all the runs' test clips.

    Parameters
    ----------
    predictions : dict
        :func:`run_predictions`'s.
    classes : sequence of str
        Class names, by index.

    Returns
    -------
    pandas.DataFrame
        Rows × classes.

    Examples
    --------
    >>> p = {(1, 0): {"labels": np.array([0, 0, 1, 1]), "mel": np.array([0, 1, 1, 1])}}
    >>> per_class_accuracy(p, ["dog", "rain"]).loc["mel"].tolist()
    [50.0, 100.0]
    """
    rows = [k for k in next(iter(predictions.values())) if k != "labels"] if predictions else []
    labels = np.concatenate([p["labels"] for p in predictions.values()]) if predictions else np.array([])
    out = {}
    for k in rows:
        hit = np.concatenate([p[k] == p["labels"] for p in predictions.values()])
        out[k] = [100 * hit[labels == c].mean() if np.any(labels == c) else np.nan for c in range(len(classes))]
    return pd.DataFrame(out, index=list(classes)).T


def confusion(predictions: dict, row: str, n_classes: int) -> np.ndarray:
    """The confusion matrix of ``row`` over all the runs' test clips (true class × predicted class, counts).

    Parameters
    ----------
    predictions : dict
        :func:`run_predictions`'s.
    row : str
        A row of it.
    n_classes : int
        Number of classes.

    Returns
    -------
    numpy.ndarray, shape (n_classes, n_classes)
    """
    M = np.zeros((n_classes, n_classes), dtype=int)
    for p in predictions.values():
        np.add.at(M, (p["labels"], p[row]), 1)
    return M


def complementarity(predictions: dict, views=("mel", "gam", "cqt", "raw")) -> pd.Series:
    """Share (%) of test clips that at least one view gets right, beside what the systems get right.

    Parameters
    ----------
    predictions : dict
        :func:`run_predictions`'s (with every view of ``views``, ``late`` and ``multiview``).
    views : sequence of str
        The single views.

    Returns
    -------
    pandas.Series
        ``at least one view`` (the oracle that picks a right view whenever there is
        one), ``every view``, ``best single view`` (the view with the most right
        clips over these runs), ``late fusion``, ``multi-view``, and ``clips``
        (how many test clips, over the runs).
    """
    labels = np.concatenate([p["labels"] for p in predictions.values()])
    right = {k: np.concatenate([p[k] == p["labels"] for p in predictions.values()])
             for k in (*views, "late", "multiview")}
    any_view = np.any([right[v] for v in views], axis=0)
    all_views = np.all([right[v] for v in views], axis=0)
    best = max(views, key=lambda v: right[v].sum())
    return pd.Series({"at least one view": 100 * any_view.mean(), "every view": 100 * all_views.mean(),
                      f"best single view ({best})": 100 * right[best].mean(),
                      "late fusion": 100 * right["late"].mean(), "multi-view": 100 * right["multiview"].mean(),
                      "clips": float(len(labels))})
