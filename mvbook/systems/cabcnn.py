"""CAB-CNN (Lu et al.): the multi-view network with classifier attention
(:class:`mvbook.nets.cab.CABNet`) as its ⊕ branch, trained on the ⊕ loss only,
like ``concat``. Chapter: *Beyond the paper: fusion strategies*.
"""
from __future__ import annotations

from ..nets.cab import CABNet
from ..views.framing import VIEWS
from .base import BranchSystem

__all__ = ["SYSTEMS"]


class _CABSystem(BranchSystem):
    network_class = CABNet
    head = "cab"


SYSTEMS = {"cabcnn": _CABSystem("cabcnn", VIEWS, "concat", origin="cabcnn")}
