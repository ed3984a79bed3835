"""The errors mvbook raises on purpose: every one is a :class:`MvbookError`,
so a caller (and the command line, which prints them as one ``error:`` line)
catches the library's own diagnoses without hiding a genuine bug's traceback.

==========================  ===============================================
:class:`MvbookError`        the base
:class:`DataError`          a dataset, clip, record or cache that cannot be used
:class:`ConfigError`        arguments or a configuration that cannot run
:class:`RunConflictError`   a run that would overwrite or race another one
:class:`DivergedError`      a training run stopped by a non-finite loss
==========================  ===============================================
"""
from __future__ import annotations

__all__ = ["MvbookError", "DataError", "ConfigError", "RunConflictError", "DivergedError"]


class MvbookError(Exception):
    """A problem mvbook diagnosed; the message says which file or argument and what to do."""


class DataError(MvbookError, ValueError):
    """Input data (a dataset, a clip, a record, a checkpoint, the cache) is missing or malformed."""


class ConfigError(MvbookError, ValueError):
    """Arguments or a configuration that cannot run (an unknown name, a value out of range)."""


class RunConflictError(MvbookError, RuntimeError):
    """A run that would replace another configuration's record, or race another process."""


class DivergedError(MvbookError, RuntimeError):
    """A training run stopped because a loss went non-finite; its last good checkpoint is kept."""
