"""The systems of the paper (§3.1.4) and the ablations of adaptive blending.

Single-view CRNNs (``mel``, ``gam``, ``cqt``, ``raw``: their own branch's
loss), ``concat`` (the multi-view network on the ⊕ loss only), ``multiview``
(the five losses weighted by Algorithm 1 with the rules the paper leaves open
filled as its first author's own code does, ``RULES["authors"]``; its
self-ensemble comes from the same run), ``equal`` (the five losses with fixed
equal weights: the control that separates "blending" from "five heads"),
``mv_literal`` (Algorithm 1 read literally, previous weights kept when all are
0: the ``multiview`` of this book's records before the rules were named),
``mv_slope`` (XSleepNet2's slope estimate) and the ablations of
``mv_literal`` (one preset field each, :data:`ABLATIONS`).
Chapters: *The multi-view network*, *Beyond the paper: ablations*.
"""
from __future__ import annotations

from ..views.framing import VIEWS
from .base import BranchSystem

__all__ = ["ABLATIONS", "SYSTEMS"]

#: Ablations of adaptive blending, the preset fields each changes (all else as ``mv_literal``,
#: the rule they were run against).
ABLATIONS = {"mv_initial": (("reference", "initial"),), "mv_power1": (("power", 1.0),),
             "mv_w1": (("window", 1),), "mv_w6": (("window", 6),),
             "mv_eval10": (("eval_every", 10),), "mv_eval40": (("eval_every", 40),)}

SYSTEMS = {v: BranchSystem(v, (v,), "single") for v in VIEWS}
SYSTEMS["concat"] = BranchSystem("concat", VIEWS, "concat")
SYSTEMS["multiview"] = BranchSystem("multiview", VIEWS, "blend", rule="authors")
SYSTEMS["equal"] = BranchSystem("equal", VIEWS, "equal", origin="extra")
SYSTEMS["mv_literal"] = BranchSystem("mv_literal", VIEWS, "blend", origin="ablation", rule="literal")
SYSTEMS["mv_slope"] = BranchSystem("mv_slope", VIEWS, "blend", origin="ablation", rule="slope")
SYSTEMS.update({k: BranchSystem(k, VIEWS, "blend", origin="ablation", overrides=o, rule="literal")
                for k, o in ABLATIONS.items()})
