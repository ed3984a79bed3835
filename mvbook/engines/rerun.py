"""The process in which :func:`mvbook.verify.verify` re-runs a record's training.

:mod:`mvbook.verify` runs this file *by its path* with another tree first on
the import path (``python -P …/rerun.py PAYLOAD``, ``PYTHONPATH`` = this clone
or the worktree of the record's own commit): ``import mvbook.train`` then
loads *that* tree's training code, whatever its commit. So this module imports
nothing else of mvbook and asks that code only for what every commit has
(:func:`mvbook.train.train` and its keyword arguments); it is never imported to
be run, only to find its file (:data:`PATH`).

The payload is a JSON object: the arguments of ``train`` plus ``threads``
(torch's intra-op threads), ``quick`` (stop at the first evaluation after step
0) and ``result`` (a file). The answer written to ``result`` is one JSON
object: ``{"record": path}`` of the finished run, ``{"curves": …}`` up to the
quick stop, or ``{"error": message}`` when training raised ``ValueError``,
``RuntimeError`` or ``OSError``. An error that is not one of mvbook's own
diagnoses (an :class:`~mvbook.errors.MvbookError`, known by its name so that
commits from before it work too) is a possible bug: its traceback goes to
stderr before the error is written. Any other exception ends the process with
its traceback and no answer.
"""
from __future__ import annotations

import inspect
import json
import sys
import traceback
from pathlib import Path

import torch

import mvbook.train

__all__ = ["PATH", "Stop", "stop_after_step_0", "train_arguments", "answer", "main"]

#: This file, which :mod:`mvbook.verify` runs by its path.
PATH = Path(__file__).resolve()
_CAUGHT = (ValueError, RuntimeError, OSError)   # reported in the answer; anything else ends the process


class Stop(Exception):
    """Raised by :func:`stop_after_step_0` to end a quick rerun; ``args[0]`` holds the curves so far."""


def stop_after_step_0(info: dict) -> None:
    """The quick rerun's training callback: stop at the first evaluation after step 0.

    Parameters
    ----------
    info : dict
        What ``train`` passes its callback after each evaluation: ``step`` and ``curves``.

    Returns
    -------
    None
        At step 0.

    Raises
    ------
    Stop
        After any later step, carrying ``info["curves"]``.

    Examples
    --------
    >>> stop_after_step_0({"step": 0, "curves": {}})
    >>> stop_after_step_0({"step": 8, "curves": {"step": [0, 8]}})
    Traceback (most recent call last):
    ...
    mvbook.engines.rerun.Stop: {'step': [0, 8]}
    """
    if info["step"] > 0:
        raise Stop(info["curves"])


def train_arguments(args: dict, train) -> dict:
    """The arguments ``train`` accepts: a commit from before the seed schemes knows only the shared one.

    Parameters
    ----------
    args : dict
        Keyword arguments of :func:`mvbook.train.train`, ``seed_scheme`` among them.
    train : callable
        The ``train`` of the tree being run.

    Returns
    -------
    dict
        ``args`` without ``seed_scheme`` where it is ``"shared"`` and ``train`` has no such
        parameter; else ``args`` unchanged (an unknown scheme then fails in ``train``).

    Examples
    --------
    >>> def old_train(dataset, seed=0): ...
    >>> train_arguments({"dataset": "esc10", "seed_scheme": "shared"}, old_train)
    {'dataset': 'esc10'}
    >>> train_arguments({"dataset": "esc10", "seed_scheme": "per_fold"}, old_train)
    {'dataset': 'esc10', 'seed_scheme': 'per_fold'}
    """
    if args.get("seed_scheme") == "shared" and "seed_scheme" not in inspect.signature(train).parameters:
        return {k: v for k, v in args.items() if k != "seed_scheme"}
    return args


def answer(args: dict, quick: bool, train) -> dict:
    """Run ``train(**args)`` and say what came of it.

    Parameters
    ----------
    args : dict
        Its keyword arguments (:func:`train_arguments` applied).
    quick : bool
        Stop at the first evaluation after step 0 (:func:`stop_after_step_0`).
    train : callable
        The ``train`` of the tree being run.

    Returns
    -------
    dict
        ``{"record": path}``, ``{"curves": …}`` (``quick``) or ``{"error": message}`` for a
        ``ValueError``, ``RuntimeError`` or ``OSError``; the traceback of one that is not an
        ``MvbookError`` is printed to stderr first.

    Raises
    ------
    Exception
        Any other exception ``train`` raises, unchanged.
    """
    try:
        return {"record": train(callback=stop_after_step_0 if quick else None, **args)["path"]}
    except Stop as s:
        return {"curves": s.args[0]}
    except _CAUGHT as e:
        if "MvbookError" not in {c.__name__ for c in type(e).__mro__}:
            traceback.print_exc(file=sys.stderr)
        return {"error": str(e)}


def main(argv: list) -> None:
    """Re-run as the payload ``argv[0]`` says and write the answer to its ``result`` file.

    Parameters
    ----------
    argv : list of str
        One item: the JSON payload (``train``'s arguments, ``threads``, ``quick``, ``result``).

    Returns
    -------
    None
        The answer (:func:`answer`) is written to the payload's ``result`` file.
    """
    args = json.loads(argv[0])
    torch.set_num_threads(args.pop("threads"))
    quick, result = args.pop("quick"), args.pop("result")
    train = mvbook.train.train
    out = answer(train_arguments(args, train), quick, train)
    Path(result).write_text(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
