"""Classifier attention (Lu et al., CAB-CNN): a bank of small classifiers whose
posteriors an attention block weighs, used as the ⊕ branch of the multi-view
network (system ``cabcnn``). Not in the paper. Chapter: *Other fusion strategies*.

For an input :math:`a` (here the concatenated view embeddings), classifier
:math:`i = 1..n` gives posteriors :math:`c_i = \\mathrm{softmax}(f_i(a))` and the
attention block importance weights :math:`\\alpha = \\mathrm{softmax}(g(a))`; the
block's output is :math:`p = \\sum_i \\alpha_i c_i`. Sizes as in the paper's
Table 2: 40 classifiers of two fully connected layers (8 and 4 units, ReLU),
attention of 160 and 80 units.
"""
from __future__ import annotations

import torch
from torch import nn

from .crnn import MultiViewNet

__all__ = ["ClassifierAttention", "CABNet"]

_N_CLASSIFIERS = 40
_CLASSIFIER_UNITS = (8, 4)
_ATTENTION_UNITS = (160, 80)


def _mlp(sizes, out: int) -> nn.Sequential:
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], out))


class ClassifierAttention(nn.Module):
    r"""CAB-CNN's attention-based classifier block. ``forward`` returns
    :math:`\log p` (log posteriors), usable as logits by a cross-entropy loss:
    softmax of :math:`\log p` is :math:`p`.

    Parameters
    ----------
    dim : int
        Dimension of the input embedding.
    n_classes : int
        Number of classes.
    n_classifiers : int
        Number of small classifiers mixed by the attention (40); keyword only.
    units : tuple of int
        Hidden units of each classifier; keyword only.
    attention : tuple of int
        Hidden units of the attention network; keyword only.

    Examples
    --------
    >>> p = ClassifierAttention(6, 3, n_classifiers=4)(torch.randn(2, 6)).exp()
    >>> torch.allclose(p.sum(1), torch.ones(2))
    True
    """

    def __init__(self, dim: int, n_classes: int, *, n_classifiers: int = _N_CLASSIFIERS,
                 units=_CLASSIFIER_UNITS, attention=_ATTENTION_UNITS):
        super().__init__()
        self.classifiers = nn.ModuleList(_mlp((dim, *units), n_classes) for _ in range(n_classifiers))
        self.attention = _mlp((dim, *attention), n_classifiers)

    def weights(self, a: torch.Tensor) -> torch.Tensor:
        """Importance weights α, (B, n), rows summing to one."""
        return torch.softmax(self.attention(a), dim=1)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        log_c = torch.stack([torch.log_softmax(f(a), dim=1) for f in self.classifiers], dim=1)   # (B, n, C)
        log_alpha = torch.log_softmax(self.attention(a), dim=1)                                 # (B, n)
        return torch.logsumexp(log_alpha.unsqueeze(2) + log_c, dim=1)                          # log Σ α_i c_i


class CABNet(MultiViewNet):
    """The multi-view network with :class:`ClassifierAttention` as its ⊕ branch.

    Parameters
    ----------
    n_classes : int
        Number of classes.
    sr : int
        Sample rate.
    width : float
        Scales every channel and unit count.
    views : tuple of str
        The views, one CRNN each.
    raw_bands : int
        conv02 filters of the raw CRNN.
    """

    def make_fusion_head(self, dim: int, n_classes: int, width: float) -> nn.Module:
        return ClassifierAttention(dim, n_classes)
