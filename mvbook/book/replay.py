"""What Algorithm 1 did in the records of blending runs: the weights each
branch got, the rule a record ran with, Algorithm 1 replayed on a record's
measured losses (its weights come back exactly), and the diagnostics of the
weights. Chapters: *Adaptive gradient blending*, *Beyond the paper: ablations*.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..blending import OFF, RULES, AdaptiveBlender, BlendRule, replay_losses
from ..results import row_key

__all__ = ["weight_shares", "record_rule", "replay", "blending_diagnostics", "diagnostics_table",
           "weights_summary", "uniform_until_selected", "as_equal_pairs", "replay_weights", "last_active_share"]


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
    blender = AdaptiveBlender(list(c["weights"]), window=p["window"], reference=p["reference"],
                              power=p.get("power", 2.0), rule=rule or record_rule(record))
    weights = [w for _, _, w in replay_losses(blender, c["loss"]["train"], c["loss"]["val"], len(c["step"]))]
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


def weights_summary(records: list[dict], system: str) -> dict:
    """One row of what Algorithm 1 did over the runs of ``system``, averaged over its runs.

    Parameters
    ----------
    records : list of dict
        Results records.
    system : str
        The row of blending runs to read.

    Returns
    -------
    dict
        ``runs``; per branch the mean share of training it was off
        (``"off share, <branch>"``, ⊕ for ``mv``); the median share of the run
        after which ⊕ is off for good; the mean numbers of ``updates`` and
        ``all-zero`` measurements (:func:`diagnostics_table`); the mean entropy
        of the selected weights; and how many selected checkpoints have uniform
        weights (``selected uniform (runs)``), one branch holding them all
        (``selected one branch (runs)``, above 0.999), or were trained with
        uniform weights only (``selected before a weight moved (runs)``,
        :func:`uniform_until_selected`); and how many runs' diagnostics came
        from a replay (``replayed (runs)``). Empty without runs.
    """
    d = diagnostics_table(records, system)
    if d.empty:
        return {}
    runs = [r for r in records if row_key(r) == system]
    K = len(runs[0]["best"]["weights"])
    return ({"runs": len(d)}
            | {f"off share, {'⊕' if c == 'off mv' else c.removeprefix('off ')}": float(d[c].mean())
               for c in d.columns if c.startswith("off ")}
            | {"⊕ stops (median share of the run)": float(np.median([last_active_share(r) for r in runs])),
               "updates": float(d["updates"].mean()), "all-zero": float(d["all-zero"].mean()),
               "selected entropy (nats)": float(d["selected entropy"].abs().mean()),
               "selected uniform (runs)": int(sum(e > np.log(K) - 1e-6 for e in d["selected entropy"])),
               "selected one branch (runs)": sum(max(r["best"]["weights"].values()) > 0.999 for r in runs),
               "selected before a weight moved (runs)": sum(map(uniform_until_selected, runs)),
               "replayed (runs)": int(d["replayed"].sum())})


def uniform_until_selected(record: dict) -> bool:
    """Whether a blending run's selected checkpoint was trained with uniform weights only.

    The weights set at an evaluation act on the steps after it, so the
    checkpoint selected at step :math:`s^*` learnt under the weights of the
    evaluations before :math:`s^*`. When all of them are :math:`1/K`, that
    network was trained as ``equal`` trains: with the same seed on the same
    device, it is the ``equal`` run's network.

    Parameters
    ----------
    record : dict
        A results record of a blending run.

    Returns
    -------
    bool
        True when every weight of every evaluation before the selected step is
        1/K (to 1e-9).

    Examples
    --------
    >>> c = {"step": [0, 100, 200], "weights": {"a": [0.5, 0.5, 0.9], "b": [0.5, 0.5, 0.1]}}
    >>> uniform_until_selected({"curves": c, "best": {"step": 200}})
    True
    >>> uniform_until_selected({"curves": c, "best": {"step": 300}})
    False
    """
    c, s_star = record["curves"], record["best"]["step"]
    before = [i for i, s in enumerate(c["step"]) if s < s_star]
    K = len(c["weights"])
    return all(abs(w[i] - 1 / K) < 1e-9 for w in c["weights"].values() for i in before)


def as_equal_pairs(records: list[dict], system: str = "multiview", baseline: str = "equal") -> pd.DataFrame:
    """The runs of ``system`` whose selected network was trained with uniform weights only, beside ``baseline``.

    Parameters
    ----------
    records : list of dict
        Results records of one dataset and preset.
    system : str
        The blending row (default ``multiview``).
    baseline : str
        The uniform-weights row of the same network (default ``equal``).

    Returns
    -------
    pandas.DataFrame
        One row per (fold, seed) run of ``system`` for which
        :func:`uniform_until_selected` holds and ``baseline`` has the same fold
        and seed: the selected step of each, the accuracy (%) of each, and
        ``same``, whether the two agree on every branch's test accuracy. Empty
        when there is none.
    """
    base = {(r["fold"], r["seed"]): r for r in records if row_key(r) == baseline}
    rows = {}
    for r in records:
        key = (r["fold"], r["seed"])
        if row_key(r) == system and key in base and uniform_until_selected(r):
            b = base[key]
            rows[key] = {f"{system} step": r["best"]["step"], f"{baseline} step": b["best"]["step"],
                         f"{system} (%)": 100 * r["system_accuracy"], f"{baseline} (%)": 100 * b["system_accuracy"],
                         "same": r["accuracy"] == b["accuracy"]}
    table = pd.DataFrame.from_dict(rows, orient="index").sort_index()
    if not table.empty:
        table.index.names = ["fold", "seed"]
    return table


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
