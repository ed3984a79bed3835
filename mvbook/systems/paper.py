"""The systems of the paper (§3.1.4) and the ablations of adaptive blending.

Single-view CRNNs (``mel``, ``gam``, ``cqt``, ``raw``: their own branch's
loss), ``concat`` (the multi-view network on the ⊕ loss only), ``multiview``
(the five losses weighted by Algorithm 1; its self-ensemble comes from the same
run), ``equal`` (the five losses with fixed equal weights, an extra row) and
the ablations of ``multiview`` (one preset field each, :data:`ABLATIONS`).
Chapters: *The multi-view network*, *Beyond the paper: ablations*.
"""
from __future__ import annotations

from ..framing import VIEWS
from .base import BranchSystem

# Ablations of adaptive blending: the preset fields each changes (all else as ``multiview``).
ABLATIONS = {"mv_initial": (("reference", "initial"),), "mv_power1": (("power", 1.0),),
             "mv_w1": (("window", 1),), "mv_w6": (("window", 6),),
             "mv_eval10": (("eval_every", 10),), "mv_eval40": (("eval_every", 40),)}

SYSTEMS = {v: BranchSystem(v, (v,), "single") for v in VIEWS}
SYSTEMS["concat"] = BranchSystem("concat", VIEWS, "concat")
SYSTEMS["multiview"] = BranchSystem("multiview", VIEWS, "blend")
SYSTEMS["equal"] = BranchSystem("equal", VIEWS, "equal", origin="extra")
SYSTEMS.update({k: BranchSystem(k, VIEWS, "blend", origin="ablation", overrides=o) for k, o in ABLATIONS.items()})
