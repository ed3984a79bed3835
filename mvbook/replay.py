"""What Algorithm 1 did in the records of blending runs: the weights each
branch got, the rule a record ran with, Algorithm 1 replayed on a record's
measured losses (its weights come back exactly), and the diagnostics of the
weights. Chapters: *Adaptive gradient blending*, *Beyond the paper: ablations*.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .blending import OFF, RULES, AdaptiveBlender, BlendRule
from .results import row_key

__all__ = ["weight_shares", "record_rule", "replay", "blending_diagnostics", "diagnostics_table",
           "replay_weights", "last_active_share"]


def weight_shares(records: list[dict], system: str = "multiview") -> pd.DataFrame:
    """Where the training signal went: the mean weight (Algorithm 1) of each branch.

    Parameters
    ----------
    records : list of dict
        Results records.
    system : str
        The blending system whose runs are read.

    Returns
    -------
    pandas.DataFrame
        One row per (fold, seed) run, one column per branch: its mean weight over
        every evaluation of the run.
    """
    rows = {}
    for r in records:
        if row_key(r) == system:
            w = r["curves"]["weights"]
            rows[(r["fold"], r["seed"])] = {k: float(np.mean(v)) for k, v in w.items()}
    return pd.DataFrame.from_dict(rows, orient="index").sort_index()


def record_rule(record: dict) -> BlendRule:
    """The blending rule a record of a blending system ran with.

    Parameters
    ----------
    record : dict
        A results record.

    Returns
    -------
    BlendRule
        The record's rule; records that name none ran Algorithm 1 read literally.
    """
    stated = record["config"].get("blending")
    return BlendRule(**stated) if stated else RULES["literal"]


def _replayed(record: dict, rule: BlendRule | None) -> tuple[AdaptiveBlender, list[dict]]:
    """Algorithm 1 (``rule``, default the record's own) fed the record's measured
    losses with its preset (``window``, ``reference``, ``power``): the blender
    after the last measurement and the weights w(n) of every measurement."""
    p, c = record["config"]["preset"], record["curves"]
    blender = AdaptiveBlender(list(c["weights"]), p["window"], p["reference"], power=p.get("power", 2.0),
                              rule=rule or record_rule(record))
    weights = [blender.update({k: c["loss"]["train"][k][n] for k in blender.branches},
                              {k: c["loss"]["val"][k][n] for k in blender.branches}) for n in range(len(c["step"]))]
    return blender, weights


def replay(record: dict) -> AdaptiveBlender:
    """Algorithm 1 replayed on a blending record's measured losses with the
    record's rule and preset; its weights are the recorded ones."""
    return _replayed(record, None)[0]


def blending_diagnostics(record: dict) -> dict:
    """What the weights did in a blending run (:meth:`.AdaptiveBlender.diagnostics`):
    the record's own ``diagnostics``, and every figure a record made before it
    was recorded lacks from a :func:`replay` of its losses (exact: the replay
    gives the recorded weights), listed under ``replayed``."""
    c = record["curves"]
    replayed = replay(record).diagnostics(c["step"], c["weights"], record["best"]["weights"])
    stored = record.get("diagnostics", {})
    return replayed | stored | {"replayed": sorted(set(replayed) - set(stored))}


def diagnostics_table(records: list[dict], system: str) -> pd.DataFrame:
    """What the floor and the fallback of a blending rule hid, run by run.

    Parameters
    ----------
    records : list of dict
        Results records.
    system : str
        The row of blending runs to read.

    Returns
    -------
    pandas.DataFrame
        One row per (fold, seed) run: the share of steps each branch was off
        (weight below :data:`~mvbook.blending.OFF`), the measurements where some
        branch improved (Eq. 5 set the weights) and where none did, the selected
        weights' entropy, and whether any of these came from a replay.
    """
    rows = {}
    for r in records:
        if row_key(r) == system:
            d = blending_diagnostics(r)
            measured = d["updates"] + d["fallbacks"]
            rows[(r["fold"], r["seed"])] = {**{f"off {k}": v for k, v in d["off_share"].items()},
                                            "updates": measured - d["uncredited"], "all-zero": d["uncredited"],
                                            "selected entropy": d["selected_entropy"],
                                            "replayed": bool(d["replayed"])}
    return pd.DataFrame.from_dict(rows, orient="index").sort_index()


def replay_weights(record: dict, rule: BlendRule | None = None) -> pd.DataFrame:
    """The weights Algorithm 1 gives when it reads a record's losses.

    Parameters
    ----------
    record : dict
        A results record of a blending run.
    rule : BlendRule, optional
        The rule to replay (default: the record's own, :func:`record_rule`).

    Returns
    -------
    pandas.DataFrame
        w(n) of every branch (columns) at every evaluation step (index).
    """
    return pd.DataFrame(_replayed(record, rule)[1], index=record["curves"]["step"])


def last_active_share(record: dict, branch: str = "mv") -> float:
    """The share of a run after which ``branch`` is off for good.

    Parameters
    ----------
    record : dict
        A results record of a blending run.
    branch : str
        The branch (default ⊕, ``mv``).

    Returns
    -------
    float
        The share of the steps before the branch's weight stays below
        :data:`~mvbook.blending.OFF` (weights at evaluation i hold until evaluation
        i + 1); 1.0: it trains to the end.

    Examples
    --------
    >>> last_active_share({"curves": {"step": [0, 10, 20, 40], "weights": {"mv": [0.2, 0.5, 0.0, 0.0]}}})
    0.5
    """
    steps, w = record["curves"]["step"], record["curves"]["weights"][branch]
    alive = [i for i in range(len(steps) - 1) if w[i] >= OFF]
    return steps[alive[-1] + 1] / steps[-1] if alive else 0.0
