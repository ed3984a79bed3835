"""FusionNet's harmonic and percussive views (:data:`mvbook.views.framing.EXTRA_VIEWS`)
alone, and as two extra views of the multi-view network (``multiview6``: seven
branches weighted by Algorithm 1 read literally, the rule of its records).
Chapter: *Beyond the paper: extra views*.
"""
from __future__ import annotations

from ..views.framing import EXTRA_VIEWS, VIEWS
from .base import BranchSystem

__all__ = ["SYSTEMS"]

SYSTEMS = {v: BranchSystem(v, (v,), "single", origin="hpss") for v in EXTRA_VIEWS}
SYSTEMS["multiview6"] = BranchSystem("multiview6", VIEWS + EXTRA_VIEWS, "blend", origin="hpss", rule="literal")
