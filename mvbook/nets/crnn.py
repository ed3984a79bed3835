"""The networks of the paper (Tables 1–2, Fig. 1): 2D and 1D CRNNs with
spatio-temporal attention pooling, and the multi-view network.

Tensors are (batch, channel, time, freq) inside; the paper's tables write
shapes as (time, freq, channel). ``width`` scales every channel and unit count
(``width=1.0`` is exactly the paper); chapter *The CRNNs* regenerates the
tables from these modules.

On CPU the forward and backward passes take faster routes that compute the
same maths (:mod:`mvbook.nets.fastpaths`; ``fast_paths(False)`` switches them off,
tests/test_fastpaths.py checks that both agree).
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from ..views.framing import ALL_VIEWS, VIEWS
from .bigru import BiGRU
from .fastpaths import conv_pool, dropout, fast_paths, float32_on_cpu, raw_front_end

__all__ = ["F_2D", "N_RAW_BANDS", "DROPOUT", "scaled", "ConvBlock", "AttentionPooling", "Classifier", "Coder",
           "CRNN2D", "CRNN1D", "MultiViewNet", "n_params", "layer_shapes"]

F_2D = (32, 64, 128, 128, 256, 512)   # Table 1, F_l for l = 1..6
_F_1D = (64, 128, 128, 256, 512)       # Table 2, F_l for l = 2..6
N_RAW_BANDS = 64                      # conv02 filters = the pseudo-frequency axis of Table 2
DROPOUT = 0.1


def scaled(n: int, width: float) -> int:
    """A channel or unit count scaled by a width factor.

    Parameters
    ----------
    n : int
        The paper's count.
    width : float
        The factor (a preset's ``width``).

    Returns
    -------
    int
        ``round(n * width)``, at least 1.

    Examples
    --------
    >>> scaled(64, 0.25), scaled(2, 0.1)
    (16, 1)
    """
    return max(1, round(n * width))


class ConvBlock(nn.Sequential):
    """conv (SAME) → batch norm → ReLU.

    Parameters
    ----------
    c_in : int
        Input channels.
    c_out : int
        Output channels (filters).
    kernel : tuple of int
        Kernel size (odd sizes keep the shape: padding ``kernel // 2``).

    Examples
    --------
    >>> ConvBlock(1, 4)(torch.zeros(2, 1, 75, 64)).shape
    torch.Size([2, 4, 75, 64])
    """

    def __init__(self, c_in: int, c_out: int, kernel=(3, 3)):
        pad = (kernel[0] // 2, kernel[1] // 2)
        super().__init__(nn.Conv2d(c_in, c_out, kernel, padding=pad, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class AttentionPooling(nn.Module):
    """Spatio-temporal attention pooling (after Phan et al., Interspeech 2019).

    For the recurrent output :math:`H \\in \\mathbb{R}^{T \\times D}`:
    temporal attention :math:`\\alpha = \\mathrm{softmax}_t(u^\\top \\tanh(W_a h_t + b_a))`,
    spatial attention :math:`\\beta = \\sigma(V \\tanh(U \\bar h + c))` with
    :math:`\\bar h = \\frac1T \\sum_t h_t`; the mask :math:`M = \\alpha \\beta^\\top`
    weighs :math:`H` and is summed over time: :math:`z_d = \\sum_t M_{td} H_{td}`.

    Parameters
    ----------
    dim : int
        D, the features per time step of H.
    size : int
        The attention size (64 in Tables 1–2).

    Notes
    -----
    ``forward`` maps H, shape (B, T, D), to z, shape (B, D).
    """

    def __init__(self, dim: int, size: int = 64):
        super().__init__()
        self.temporal = nn.Sequential(nn.Linear(dim, size), nn.Tanh(), nn.Linear(size, 1, bias=False))
        self.spatial = nn.Sequential(nn.Linear(dim, size), nn.Tanh(), nn.Linear(size, dim))

    def weights(self, H: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (alpha (B, T), beta (B, D)) for H (B, T, D)."""
        alpha = torch.softmax(self.temporal(H).squeeze(-1), dim=1)
        beta = torch.sigmoid(self.spatial(H.mean(dim=1)))
        return alpha, beta

    def forward(self, H: torch.Tensor) -> torch.Tensor:
        alpha, beta = self.weights(H)
        M = alpha.unsqueeze(2) * beta.unsqueeze(1)           # (B, T, D) outer product
        return (M * H).sum(dim=1)


class Classifier(nn.Sequential):
    """fc → ReLU → fc → ReLU → fc (#classes), dropout after the hidden fcs.

    Parameters
    ----------
    dim : int
        Features of the input embedding.
    hidden : int
        Units of the two hidden layers.
    n_classes : int
        Classes (the output logits).

    Notes
    -----
    ``forward`` maps (B, dim) to logits (B, n_classes).
    """

    def __init__(self, dim: int, hidden: int, n_classes: int):
        super().__init__(nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Dropout(DROPOUT),
                         nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(DROPOUT),
                         nn.Linear(hidden, n_classes))


class Coder(nn.Module):
    """A view's coding network: a batch of its view in, the embedding (B, ``dim``) out
    (the CRNNs here, :class:`mvbook.nets.fusionnet.FeatureCodingNet`), as
    :meth:`MultiViewNet.make_coder` builds it.

    Parameters
    ----------
    *args, **kwargs
        As :class:`torch.nn.Module` (none): a subclass takes its own.
    """
    #: the embedding size, set by the subclass's constructor
    dim: int


class _Recurrent(Coder):
    """Shared tail of both CRNNs: reshape → biGRU → attention (→ embedding)."""

    def __init__(self, c_in: int, width: float):
        super().__init__()
        self.rnn = BiGRU(c_in, scaled(256, width), batch_first=True, bidirectional=True)
        self.dim = 2 * scaled(256, width)
        self.drop = nn.Dropout(DROPOUT)
        self.attention = AttentionPooling(self.dim, scaled(64, width))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, T, 1) after the last pool → (B, D)."""
        H = x.squeeze(3).transpose(1, 2)                         # reshape → (B, T, C)
        H, _ = self.rnn(H.contiguous())
        with float32_on_cpu(H):
            return self.attention(dropout(H, self.drop, memory_order=True))   # as nn.Dropout draws it


class CRNN2D(_Recurrent):
    """Table 1: six conv/pool layers halving frequency (64 → 1), a biGRU and attention pooling.

    Parameters
    ----------
    width : float
        Scale of every channel and unit count (1: the paper's).
    n_bands : int
        Frequency bands of the input.

    Notes
    -----
    ``forward`` maps a batch (B, T, n_bands) to the embedding (B, 512·width).
    """

    def __init__(self, width: float = 1.0, n_bands: int = 64):
        F = [scaled(f, width) for f in F_2D]
        super().__init__(F[-1], width)
        c = 1
        for layer, f in enumerate(F, start=1):
            setattr(self, f"conv{layer}", ConvBlock(c, f))
            setattr(self, f"pool{layer}", nn.Sequential(nn.MaxPool2d((1, 2)), nn.Dropout(DROPOUT)))
            c = f
        self.n_layers = len(F)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(1)                                       # (B, 1, T, 64)
        for layer in range(1, self.n_layers + 1):
            x = conv_pool(getattr(self, f"conv{layer}"), getattr(self, f"pool{layer}"), x)
        return self.embed(x)


class CRNN1D(_Recurrent):
    """Table 2: conv01, conv02, pool02 turn the waveform into (T, 64); conv1 (5×3)
    and pool1 (4×2) shorten time; conv2–conv6 with (1, 2) pools as in Table 1.

    Parameters
    ----------
    width : float
        Scale of every channel and unit count (1: the paper's).
    sr : int
        Sample rate: the input is 66,650 samples at 44.1 kHz (pool02 k = s = 64),
        33,330 at 22.05 kHz (pool02 k = s = 32).
    n_bands : int
        conv02's filters (64 in Table 2, at every width): the band axis that the
        next six pools halve; with fewer bands (a reduced preset) a pool stops
        halving once one band is left.

    Notes
    -----
    ``forward`` maps a batch (B, samples) to the embedding (B, 512·width).
    """

    def __init__(self, width: float = 1.0, sr: int = 44100, n_bands: int = N_RAW_BANDS):
        F = [scaled(f, width) for f in _F_1D]
        super().__init__(F[-1], width)
        c01 = scaled(32, width)
        self.conv01 = nn.Sequential(nn.Conv1d(1, c01, 64, stride=2, bias=False), nn.BatchNorm1d(c01),
                                    nn.ReLU(inplace=True))
        self.conv02 = nn.Sequential(nn.Conv1d(c01, n_bands, 16, stride=2, bias=False),
                                    nn.BatchNorm1d(n_bands), nn.ReLU(inplace=True))
        k = 64 if sr >= 44100 else 32
        self.pool02 = nn.MaxPool1d(k, k)
        self.conv1 = ConvBlock(1, scaled(32, width), kernel=(5, 3))
        self.pool1 = nn.Sequential(nn.MaxPool2d((4, 2)), nn.Dropout(DROPOUT))
        c, bands = scaled(32, width), n_bands // 2
        for layer, f in enumerate(F, start=2):
            setattr(self, f"conv{layer}", ConvBlock(c, f))
            setattr(self, f"pool{layer}", nn.Sequential(nn.MaxPool2d((1, min(2, bands))), nn.Dropout(DROPOUT)))
            c, bands = f, max(1, bands // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = raw_front_end(self, x)                                # conv01, conv02, pool02 → (B, 1, T, 64)
        for layer in range(1, 7):
            x = conv_pool(getattr(self, f"conv{layer}"), getattr(self, f"pool{layer}"), x)
        return self.embed(x)


class MultiViewNet(nn.Module):
    """Fig. 1: one CRNN per view, a classification branch on each embedding and
    one (⊕, ``"mv"``) on their concatenation: fc 4096 → fc 4096 → #classes.
    Chapter: *The multi-view network*.

    Parameters
    ----------
    n_classes : int
    sr : int
        Sample rate (fixes the raw CRNN's pool02, Table 2).
    width : float
        Scales every channel and unit count; 1.0 is the paper (43.9 M parameters).
    views : tuple of str
        The views, one CRNN each; the paper's four by default (the HPSS views
        ``harm``, ``perc`` are allowed as extra views).
    raw_bands : int
        conv02 filters of the raw CRNN.

    ``forward(x)`` takes ``dict view → tensor`` ((B, T, 64) for 2-D views,
    (B, samples) for ``raw``) and returns ``dict branch → logits (B, n_classes)``
    for the branches ``views`` (+ ``"mv"`` with more than one view). Other
    fusion strategies subclass it: :meth:`make_coder` builds a view's network
    (a :class:`Coder`), :meth:`make_fusion_head` the ⊕ branch, :meth:`add_view_modules`
    anything else per view (registered between the two; ``dims``, view → its coder's
    ``dim``, is set before it).

    Examples
    --------
    >>> net = MultiViewNet(8, sr=22050, width=1 / 16, views=("mel", "raw"), raw_bands=4).eval()
    >>> x = {"mel": torch.zeros(2, 75, 64), "raw": torch.zeros(2, 33330)}
    >>> {k: tuple(v.shape) for k, v in net(x).items()}
    {'mel': (2, 8), 'raw': (2, 8), 'mv': (2, 8)}
    """

    def __init__(self, n_classes: int, sr: int = 44100, width: float = 1.0, views=VIEWS,
                 raw_bands: int = N_RAW_BANDS):
        super().__init__()
        self.views = tuple(views)
        unknown = set(self.views) - set(ALL_VIEWS)
        if unknown:
            raise ConfigError(f"unknown views {sorted(unknown)}; choose from {ALL_VIEWS}")
        coders = {v: self.make_coder(v, width, sr, raw_bands) for v in self.views}
        self.subnets = nn.ModuleDict(coders)
        self.dims = {v: net.dim for v, net in coders.items()}
        self.add_view_modules(n_classes)
        self.heads = nn.ModuleDict({v: Classifier(self.dims[v], scaled(1024, width), n_classes)
                                    for v in self.views})
        if len(self.views) > 1:
            self.heads["mv"] = self.make_fusion_head(sum(self.dims.values()), n_classes, width)
        self.branches = tuple(self.heads)

    def make_coder(self, view: str, width: float, sr: int, raw_bands: int) -> Coder:
        """The network of one view, with its embedding size as ``.dim``: the CRNNs of Tables 1–2."""
        return CRNN1D(width, sr, raw_bands) if view == "raw" else CRNN2D(width)

    def add_view_modules(self, n_classes: int) -> None:
        """Modules beside the coders (none in the paper's network)."""

    def make_fusion_head(self, dim: int, n_classes: int, width: float) -> nn.Module:
        """The ⊕ branch on the concatenated embeddings (``dim`` values)."""
        return Classifier(dim, scaled(4096, width), n_classes)

    def embed(self, x: dict) -> dict:
        """Embeddings per view (B, 512·width)."""
        return {v: self.subnets[v](x[v]) for v in self.views}

    def forward(self, x: dict, embeddings: bool = False):
        """Logits per branch; with ``embeddings``, (logits, embeddings per view)."""
        z = self.embed(x)
        with float32_on_cpu(z[self.views[0]]):
            out = {v: self.heads[v](z[v]) for v in self.views}
            if "mv" in self.heads:
                out["mv"] = self.heads["mv"](torch.cat([z[v] for v in self.views], dim=1))
        return (out, z) if embeddings else out


def n_params(module: nn.Module) -> int:
    """Number of trainable parameters of ``module``.

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    int
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def layer_shapes(net: nn.Module, x: torch.Tensor) -> list[tuple[str, tuple]]:
    """The output shape of each named layer of ``net``: Tables 1–2 regenerated from the code.

    Parameters
    ----------
    net : torch.nn.Module
        A CRNN or the multi-view network.
    x : torch.Tensor or dict
        An input batch (a dict view → tensor for the multi-view network).

    Returns
    -------
    list of (str, tuple)
        (layer name, output shape without the batch), in the paper's (time, freq,
        channel) order for 4-D outputs.
    """
    names = [n for n, _ in net.named_children() if n not in ("drop",)]
    shapes: list[tuple[str, tuple]] = []

    def hook(name):
        def record(_m, _inp, out):
            out = out[0] if isinstance(out, tuple) else out
            s = tuple(out.shape[1:])
            if out.dim() == 4:
                s = (s[1], s[2], s[0])                 # (C, T, F) → (T, F, C)
            elif out.dim() == 3 and name in ("conv01", "conv02"):
                s = (s[1], 1, s[0])                     # (C, T) → (T, 1, C)
            elif name == "pool02":
                s = (s[1], s[0], 1)                     # reshaped: channels become the freq axis
            shapes.append((name, s))
        return record

    handles = [getattr(net, n).register_forward_hook(hook(n)) for n in names]
    try:
        with torch.no_grad(), fast_paths(False):                # hooks need the plain module calls
            net.eval()(x)
    finally:
        for h in handles:
            h.remove()
    return shapes
