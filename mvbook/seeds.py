"""What a run's ``seed`` drives: the initial weights and dropout (torch's
generator), the order of the training batches and their crops, and the fixed
subset of training clips measured at every evaluation — under one of two
*seed schemes*.

``"shared"`` (every record made before the scheme was named): seed ``s`` is
the same start on every fold — ``torch.manual_seed(s)``, batches from
``numpy.random.default_rng([s, 0])``, the evaluation subset from
``default_rng([s, 1])``. Seeds are then *crossed* with folds: seed 1 of fold 1
and seed 1 of fold 2 share their initial weights and random stream, so the
fold means of a row share a seed component.

``"per_fold"`` (the default since): one ``numpy.random.SeedSequence([s, fold])``
is split by :meth:`~numpy.random.SeedSequence.spawn` into three independent
children, one per stream, so seed ``s`` on one fold and seed ``s`` on another are
unrelated draws: seeds are *nested* in folds. The validation split does not
depend on the scheme (it is drawn from the split seed, 0, per fold).

Chapter: *Training*.

Examples
--------
>>> shared = run_seeds(1, fold=2, scheme="shared")
>>> shared.init, shared.batches, shared.eval_subset
(1, [1, 0], [1, 1])
>>> a, b = run_seeds(1, fold=1), run_seeds(1, fold=2)
>>> a.init != b.init
True
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ConfigError

__all__ = ["SEED_SCHEMES", "DEFAULT_SCHEME", "LEGACY_SCHEME", "RunSeeds", "run_seeds", "check_scheme",
           "record_scheme"]

#: the seed schemes, in words
SEED_SCHEMES = {"shared": "seed s is the same start on every fold (crossed with the folds)",
                "per_fold": "seed s is drawn independently per fold, from SeedSequence([s, fold]) (nested in folds)"}
#: the scheme of a new run
DEFAULT_SCHEME = "per_fold"
#: the scheme of a record that names none (all made before the scheme was named)
LEGACY_SCHEME = "shared"


@dataclass(frozen=True)
class RunSeeds:
    """The seeds of one run's three random streams: ``init`` (an int for
    ``torch.manual_seed`` before the network is built: its initial weights, then
    dropout, as torch's generator continues through training), ``batches``
    (``numpy.random.default_rng(batches)``: which clips form each batch and where
    each is cropped) and ``eval_subset`` (``default_rng(eval_subset)``: the
    training clips measured at every evaluation); each a list of ints or a
    :class:`numpy.random.SeedSequence`."""
    init: int
    batches: object
    eval_subset: object


def check_scheme(scheme) -> str:
    """``scheme`` if it is one of :data:`SEED_SCHEMES`, else a :class:`~mvbook.errors.ConfigError`.

    Parameters
    ----------
    scheme : str
        A seed scheme's name.

    Returns
    -------
    str
        ``scheme``.
    """
    if scheme not in SEED_SCHEMES:
        raise ConfigError(f"seed scheme {scheme!r}: not one of {', '.join(SEED_SCHEMES)}")
    return scheme


def run_seeds(seed: int, fold: int, scheme: str = DEFAULT_SCHEME) -> RunSeeds:
    """The seeds of a run's streams under ``scheme``.

    Parameters
    ----------
    seed, fold : int
        The run's seed and fold.
    scheme : {"shared", "per_fold"}
        :data:`SEED_SCHEMES`.

    Returns
    -------
    RunSeeds
        ``shared``: ``seed``, ``[seed, 0]``, ``[seed, 1]``; ``per_fold``: the
        three children of ``SeedSequence([seed, fold])`` (the first as a 63-bit int).
    """
    if check_scheme(scheme) == "shared":
        return RunSeeds(int(seed), [int(seed), 0], [int(seed), 1])
    init, batches, eval_subset = np.random.SeedSequence([int(seed), int(fold)]).spawn(3)
    return RunSeeds(int(init.generate_state(1, np.uint64)[0] >> np.uint64(1)), batches, eval_subset)


def record_scheme(record: Mapping[str, Any]) -> str:
    """The seed scheme a record's run was trained with (:data:`LEGACY_SCHEME` where it names none).

    Parameters
    ----------
    record : dict
        A results record (or its ``config``).

    Returns
    -------
    str
        A key of :data:`SEED_SCHEMES`.
    """
    config = record.get("config", record)
    return config.get("seed_scheme", LEGACY_SCHEME) if isinstance(config, dict) else LEGACY_SCHEME
