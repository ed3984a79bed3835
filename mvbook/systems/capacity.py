"""A capacity-matched control for the FusionNet comparison (*Beyond the paper:
fusion strategies*): ``mv_wide``, the multi-view network (the ``authors`` rule,
as ``multiview``) with CRNNs at :data:`~mvbook.systems.capacity.CODER_MATCHED_WIDTH`, the width at
which a 2-D CRNN has as many parameters as a FusionNet feature coding network
at the ``cpu`` preset's width (``mvbook.book.summary.capacity`` finds it from the
networks; the tests check the two agree). It separates FusionNet's
architecture from its size: at the ``cpu`` width a coder is about eight times
a CRNN. The override is a width, not a reduction, so it applies at any preset.
Chapter: *Beyond the paper: fusion strategies*.
"""
from __future__ import annotations

from ..views.framing import VIEWS
from .base import BranchSystem

__all__ = ["CODER_MATCHED_WIDTH", "SYSTEMS"]

#: a 2-D CRNN of this width ≈ a FusionNet coder at the cpu width (1.55 M parameters)
CODER_MATCHED_WIDTH = 0.72

SYSTEMS = {"mv_wide": BranchSystem("mv_wide", VIEWS, "blend", origin="extra",
                                   overrides=(("width", CODER_MATCHED_WIDTH),), rule="authors")}
