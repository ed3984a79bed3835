"""Every trained system (§3.1.4 and *Beyond the paper*), by name.

Each system is an object of the protocol in :mod:`mvbook.systems.base`,
defined in the module that :data:`REGISTRY` names; :func:`get_system` imports
that module when the system is first asked for (so that listing the names, as
``python -m mvbook --help`` does, imports no deep-learning library). A new
fusion strategy is one new module here plus its lines in :data:`REGISTRY`.
Chapters: *Training*, *Beyond the paper*.
"""
from __future__ import annotations

from importlib import import_module

from ..errors import ConfigError
from ..views.framing import EXTRA_VIEWS, VIEWS

__all__ = ["REGISTRY", "TRAINED_SYSTEMS", "PAPER_SYSTEMS", "DERIVED", "get_system", "all_systems", "dependencies",
           "load_network"]

#: system → the module of mvbook.systems that defines it
REGISTRY = {
    **{v: "paper" for v in VIEWS}, "concat": "paper", "multiview": "paper", "equal": "paper",
    "mv_literal": "paper", "mv_slope": "paper", "mv_initial": "paper", "mv_power1": "paper", "mv_w1": "paper",
    "mv_w6": "paper",
    "mv_eval10": "paper", "mv_eval40": "paper",
    **{f"fcn_{v}": "stacking" for v in VIEWS}, "fusionnet": "stacking", "crnn_meta": "stacking",
    "cabcnn": "cabcnn",
    **{v: "hpss" for v in EXTRA_VIEWS}, "multiview6": "hpss",
    "mv_wide": "capacity",
}
#: the names of every trained system
TRAINED_SYSTEMS = tuple(REGISTRY)
PAPER_SYSTEMS = ("mel", "gam", "cqt", "raw", "concat", "multiview")
# Systems read from other runs' posteriors (no training of their own).
DERIVED = {"late": VIEWS,                                          # §3.1.4: mean of the single-view runs
           "sumrule": tuple(f"fcn_{v}" for v in VIEWS)}            # FusionNet's sum rule over its coders


def get_system(name: str):
    """A trained system by name, importing its module on first use.

    Parameters
    ----------
    name : str
        A key of :data:`REGISTRY` (``mel``, ``multiview``, ``fusionnet`` …).

    Returns
    -------
    System
        The :class:`~mvbook.systems.base.System` called ``name``.
    """
    if name not in REGISTRY:
        hint = " (derived from other runs' posteriors: `mvbook table`)" if name in DERIVED else ""
        raise ConfigError(f"unknown system {name!r}{hint}; trained systems: {', '.join(REGISTRY)}")
    return import_module(f"{__name__}.{REGISTRY[name]}").SYSTEMS[name]


def all_systems() -> dict:
    """Every trained system (imports every system module).

    Returns
    -------
    dict
        Name → :class:`~mvbook.systems.base.System`.
    """
    return {name: get_system(name) for name in REGISTRY}


def dependencies(name: str) -> tuple:
    """Trained systems whose finished runs ``name`` needs (FusionNet's coders)."""
    return get_system(name).needs


def load_network(record: dict, checkpoints=None, which: str = "best.pt"):
    """The network of a finished run, with the weights of its selected checkpoint.

    Parameters
    ----------
    record : dict
        The run's results record.
    checkpoints : str or Path, optional
        Folder of the checkpoints (default: the one the record names).
    which : str
        ``best.pt`` (the selected model) or ``checkpoint.pt`` (the last).

    Returns
    -------
    torch.nn.Module or None
        On CPU, in eval mode; None when the checkpoint is not on this machine.
    """
    return get_system(record["system"]).load(record, checkpoints, which)
