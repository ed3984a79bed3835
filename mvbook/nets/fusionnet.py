r"""FusionNet (Ng et al., "Multi-level local feature coding fusion for music
genre recognition", IEEE Access 2020) on this book's views: a comparison
system, not part of the paper this book reproduces.

FusionNet trains one *feature coding network* per view (§III-C), each with a
softmax plus centre loss (§III-D), then a *meta-CNN* on the concatenation of
their high-level features (§III-E). Here:

- :class:`FeatureCodingNet` — the view's CNN front end is the conv/pool blocks
  of our CRNN for that view (Tables 1–2: :class:`~mvbook.nets.crnn.CRNN2D` for the
  2-D views, :class:`~mvbook.nets.crnn.CRNN1D` with its raw front end for ``raw``),
  so that FusionNet and the multi-view network see the views through the same
  convolutions (ReLU blocks, 6 of them, where FusionNet has 5 VGG blocks with
  ELU). A :class:`NetVLAD` layer (Eq. 1–5, K = 20) codes the output of each of
  the **last five** blocks (descriptors: the time × frequency positions,
  dimension D_l: the channels); the five codings, transposed to D_l × K and
  stacked, form X ∈ R^{M×K}, M = Σ_l D_l; :class:`SelfAttention` (Eq. 6–10)
  over its M rows; flatten → fc → dropout → batch norm → fc gives the
  high-level feature R_F of ``dim = 512·width`` values (the paper names no
  activation between the two fcs; we add none). The GRU and attention pooling
  of the CRNN are not part of it (not even as unused parameters).
  :class:`CodingNet` (the multi-view network with these coders) puts the view's
  classifier head (fc → fc → fc) on R_F and adds :class:`CenterLoss`
  (λ = ``CENTER_LAMBDA`` = 10⁻³, Eq. 13).
- :class:`MetaCNN` — three 1-D conv blocks (32, 64, 32 filters × width; conv
  → BN → ELU → max-pool 2) over the standardised, concatenated high-level
  features read as a one-channel sequence, self-attention over the sequence
  positions, flatten → fc → dropout → BN → fc (#classes).
- Their training (systems ``fcn_<view>`` and ``fusionnet``, the latter on the
  features of the finished ``fcn_<view>`` runs) is :mod:`mvbook.systems.stacking`.

Not reproduced: FusionNet's choice of the best feature combination by the sum
rule (we fuse all four views; the sum rule itself is the derived row
``sumrule``), its other low-level features, and its ELU/VGG backbone.

Choices the paper leaves open:

- Multi-head attention (Algorithm 3): N = 4 heads, each with its own W_k, W_q
  (key size K/N) and W_g (value size K/N); the heads' outputs are concatenated,
  so Y has the shape of X and Eq. 10's residual Z = X + αY holds as written. N
  must divide K = 20; with 4 (rather than 2 or 5) each head still has a
  5-dimensional subspace, and the flattened size (hence the dominant fc) does
  not grow with N. Eq. 9 has no 1/√d scaling and we add none. α starts at 0
  (Z = X at initialisation: the attention is phased in as training finds it useful).
- NetVLAD: assignment w_k, b_k as a linear map (a 1×1 convolution); centres
  c_k drawn uniformly in [0, 1) (the descriptors are ReLU outputs of
  batch-normalised maps), not NetVLAD's initialisation from k-means centres
  (w_k = 2αc_k, b_k = −α‖c_k‖²), which would need a pass over the data.
- fc sizes: hidden 1024·width (the paper's coding network has 23.03 M
  parameters; at width 1 ours has about as many), dropout 0.1 (the rate of
  :mod:`mvbook.nets.crnn`).
- Centre loss: the mean (not the sum) of ½‖z_i − c_{y_i}‖² over the batch, so
  that λ does not depend on the batch size; the centres are parameters trained
  by the same Adam optimiser (Wen et al. move them with their own rate; with
  Adam, whose step does not depend on the gradient's scale, they move at the
  network's learning rate whatever λ), initialised at 0.
- Meta-classifier (:mod:`mvbook.systems.stacking`): Adam, lr ``META_LR`` = 10⁻³,
  batches of the preset's size, ``META_EPOCHS`` epochs (100; ``smoke``: the preset's 2; ``epochs=`` overrides
  it), one example per segment (S evenly spaced segments per S-second clip,
  the segments of :mod:`mvbook.evaluate`), clip posteriors = mean over its
  segments, best validation accuracy selected after every epoch. Features are
  standardised per dimension with the statistics of the training clips'
  segments.

Parameter counts (``n_params``, measured; 8 classes, 44.1 kHz, ``raw_bands`` 64
at width 1 and 16 at width 0.25, as in the presets ``paper`` and ``cpu``):

=========================================  ============  ============
module                                     width 1       width 0.25
=========================================  ============  ============
FeatureCodingNet, 2-D view (M = 1088/272)  24,571,637    1,546,253
FeatureCodingNet, raw                      24,606,837    1,548,909
  of which fc → dropout → BN → fc          22,810,112    1,426,304
CodingNet, one 2-D view                    26,158,845    1,648,149
  (coder, view head, centre loss)
MetaCNN on 4 views (2048 / 512 features)   8,415,593     134,945
CRNN2D, for comparison                     2,998,432     188,584
=========================================  ============  ============

Systems ``fcn_<view>`` and ``fusionnet`` of :mod:`mvbook.systems`; ``python -m mvbook grid
--systems fusionnet`` trains the four coders first.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..device import full_precision
from ..errors import ConfigError
from .crnn import CRNN1D, CRNN2D, DROPOUT, N_RAW_BANDS, Coder, MultiViewNet, scaled
from .fastpaths import conv_pool, raw_front_end

__all__ = ["META_FILTERS", "CENTER_LAMBDA", "NetVLAD", "SelfAttention", "FeatureCodingNet", "CenterLoss", "MetaCNN",
           "CodingNet"]

_N_CLUSTERS = 20            # K of Eq. 1–5 (the paper: 20, to bound the attention's memory)
_N_HEADS = 4                # N of Algorithm 3 (see the module docstring)
_N_LEVELS = 5               # NetVLAD taps: the last five conv blocks
META_FILTERS = (32, 64, 32)
CENTER_LAMBDA = 1e-3       # λ of Eq. 13 (Ng et al. chose 0.001)


def _n_heads(dim: int, heads: int = _N_HEADS) -> int:
    """The largest head count ≤ ``heads`` that divides ``dim``."""
    return max(h for h in range(1, max(1, min(heads, dim)) + 1) if dim % h == 0)


class NetVLAD(nn.Module):
    r"""NetVLAD (Eq. 1–5) of a descriptor set ``f`` (B, N, D) into (B, K, D).

    Soft assignment :math:`a_j(k) = \mathrm{softmax}_k(w_k^\top f_j + b_k)` (Eq. 4),
    residual aggregation :math:`V(k, d) = \sum_j a_j(k)\,(f_j(d) - c_k(d))` (Eq. 5),
    then intra-normalisation (each row :math:`V(k, :)` to unit L2 norm) and L2
    normalisation of the whole K·D vector (Algorithm 2, step 9).

    Parameters
    ----------
    dim : int
        D, the dimension of a descriptor.
    clusters : int
        K, the number of clusters (20 in the paper).

    Examples
    --------
    >>> NetVLAD(8, clusters=3)(torch.randn(2, 10, 8)).shape
    torch.Size([2, 3, 8])
    """

    def __init__(self, dim: int, clusters: int = _N_CLUSTERS):
        super().__init__()
        self.assign = nn.Linear(dim, clusters)                   # w_k, b_k (a 1×1 convolution)
        self.centers = nn.Parameter(torch.rand(clusters, dim))   # c_k

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        a = torch.softmax(self.assign(f), dim=2)                 # (B, N, K), Eq. 4
        # Σ_j a_j(k) f_j − (Σ_j a_j(k)) c_k: Eq. 5 without forming the (B, N, K, D) residuals
        V = torch.einsum("bnk,bnd->bkd", a, f) - a.sum(1).unsqueeze(2) * self.centers
        V = F.normalize(V, dim=2)                                # intra-normalisation
        return F.normalize(V.flatten(1), dim=1).view_as(V)       # L2 normalisation


class SelfAttention(nn.Module):
    r"""Multi-head self-attention with residual (Eq. 6–10) over the rows of
    X (B, M, C): for each head n (C/N dimensions of key, query and value)

    :math:`\varphi(X_i, X_j) = e^{(W_k X_i)^\top (W_q X_j)}` (Eq. 9),
    :math:`Y_i = \sum_j \varphi(X_i, X_j)\, W_g X_j / \sum_j \varphi(X_i, X_j)`
    (Eq. 6–8); the heads' Y are concatenated and :math:`Z = X + \alpha Y`
    (Eq. 10) with a learnable α that starts at 0. W_k, W_q, W_g are linear
    maps without bias (the paper's 1×1 convolutions).

    Parameters
    ----------
    dim : int
        C, the dimension of a row (a multiple of ``heads``).
    heads : int
        N, the number of heads.

    Examples
    --------
    >>> att = SelfAttention(8, heads=2)
    >>> X = torch.randn(2, 5, 8)
    >>> torch.equal(att(X), X)            # α starts at 0: Z = X
    True
    """

    def __init__(self, dim: int, heads: int = _N_HEADS):
        super().__init__()
        if dim % heads:
            raise ConfigError(f"{heads} heads do not divide {dim} features")
        self.heads = heads
        self.w_k = nn.Linear(dim, dim, bias=False)
        self.w_q = nn.Linear(dim, dim, bias=False)
        self.w_g = nn.Linear(dim, dim, bias=False)
        self.alpha = nn.Parameter(torch.zeros(()))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        B, M, C = X.shape

        def split(t):                                            # (B, M, C) → (B, N, M, C/N)
            return t.view(B, M, self.heads, C // self.heads).transpose(1, 2)

        # softmax_j((W_k X_i)·(W_q X_j)) W_g X_j = Eq. 6–9 (scale 1: Eq. 9 has no 1/√d)
        Y = F.scaled_dot_product_attention(split(self.w_k(X)), split(self.w_q(X)), split(self.w_g(X)), scale=1.0)
        return X + self.alpha * Y.transpose(1, 2).reshape(B, M, C)


class FeatureCodingNet(Coder):
    """FusionNet's feature coding network on one view (module docstring).

    Input as the view's CRNN takes it: (B, T, 64) for the 2-D views, (B,
    samples) for ``raw``; output the high-level feature R_F (B, ``dim``).
    The conv blocks keep the CRNN's names (``conv1``…``conv6``, and ``conv01``,
    ``conv02`` for raw) and are built by the CRNN's own constructor.

    Parameters
    ----------
    view : str
        The view coded.
    width : float
        Scales every channel and unit count as in :class:`~mvbook.nets.crnn.MultiViewNet`.
    sr : int
        Sample rate (fixes the raw CRNN's pool02).
    raw_bands : int
        conv02 filters of the raw CRNN.
    clusters : int
        K of NetVLAD; keyword only.
    heads : int
        Heads of the self-attention; keyword only.
    """

    def __init__(self, view: str, width: float = 1.0, sr: int = 44100, raw_bands: int = N_RAW_BANDS, *,
                 clusters: int = _N_CLUSTERS, heads: int = _N_HEADS):
        super().__init__()
        self.view, self.raw = view, view == "raw"
        cnn = CRNN1D(width, sr, raw_bands) if self.raw else CRNN2D(width)
        if self.raw:
            self.conv01, self.conv02, self.pool02 = cnn.conv01, cnn.conv02, cnn.pool02
        self.n_blocks = 6
        for layer in range(1, self.n_blocks + 1):                    # only the blocks: no GRU, no attention pooling
            setattr(self, f"conv{layer}", getattr(cnn, f"conv{layer}"))
            setattr(self, f"pool{layer}", getattr(cnn, f"pool{layer}"))
        del cnn
        self.taps = tuple(range(self.n_blocks - _N_LEVELS + 1, self.n_blocks + 1))
        channels = [getattr(self, f"conv{layer}")[0].out_channels for layer in self.taps]
        self.vlad = nn.ModuleList(NetVLAD(c, clusters) for c in channels)
        self.M, self.K = sum(channels), clusters
        self.attention = SelfAttention(clusters, heads)
        self.dim = scaled(512, width)
        hidden = scaled(1024, width)
        self.fc1 = nn.Linear(self.M * clusters, hidden)
        self.drop = nn.Dropout(DROPOUT)
        self.bn = nn.BatchNorm1d(hidden)
        self.fc2 = nn.Linear(hidden, self.dim)

    def levels(self, x: torch.Tensor) -> list:
        """Feature maps (B, D_l, T_l, F_l) of the tapped blocks (after their pools)."""
        x = raw_front_end(self, x) if self.raw else x.unsqueeze(1)
        maps = []
        for layer in range(1, self.n_blocks + 1):
            x = conv_pool(getattr(self, f"conv{layer}"), getattr(self, f"pool{layer}"), x)
            if layer in self.taps:
                maps.append(x)
        return maps

    def coding(self, x: torch.Tensor) -> torch.Tensor:
        """X ∈ R^{M×K} (B, M, K): the five NetVLAD codings, each transposed to D_l × K, stacked."""
        maps = self.levels(x)
        with full_precision(maps[0]):   # NetVLAD's normalisations and softmaxes in float32
            codes = [vlad(m.float().flatten(2).transpose(1, 2)) for vlad, m in zip(self.vlad, maps)]
            return torch.cat([c.transpose(1, 2) for c in codes], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        X = self.coding(x)
        with full_precision(X):
            Z = self.attention(X)
            return self.fc2(self.bn(self.drop(self.fc1(Z.flatten(1)))))


class CenterLoss(nn.Module):
    r"""Centre loss (Eq. 12) as a mean over the batch:
    :math:`\frac{1}{B}\sum_i \tfrac12 \lVert z_i - c_{y_i} \rVert^2`, with the class
    centres (n_classes, dim) a parameter (initialised at 0) trained by the
    network's optimiser.

    Parameters
    ----------
    n_classes : int
        Number of classes (of centres).
    dim : int
        Dimension of an embedding z.

    Examples
    --------
    >>> z, y = torch.tensor([[3.0, 4.0], [0.0, 2.0]]), torch.tensor([0, 1])
    >>> float(CenterLoss(2, 2)(z, y).detach())       # centres at 0: (½·25 + ½·4) / 2
    7.25
    """

    def __init__(self, n_classes: int, dim: int):
        super().__init__()
        self.centers = nn.Parameter(torch.zeros(n_classes, dim))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 0.5 * (z - self.centers[y]).pow(2).sum(1).mean()


class MetaCNN(nn.Module):
    """FusionNet's meta-classifier (§III-E): features (B, n_features) → logits (B, n_classes).

    Parameters
    ----------
    n_features : int
        Dimension of the stacked features.
    n_classes : int
        Number of classes.
    width : float
        Scales every channel and unit count.
    heads : int
        Heads of its self-attention; keyword only.
    """

    def __init__(self, n_features: int, n_classes: int, width: float = 1.0, *, heads: int = _N_HEADS):
        super().__init__()
        layers, c, L = [], 1, n_features
        for f in META_FILTERS:
            f = scaled(f, width)
            layers += [nn.Conv1d(c, f, 3, padding=1, bias=False), nn.BatchNorm1d(f), nn.ELU(), nn.MaxPool1d(2)]
            c, L = f, L // 2
        if L < 1:
            raise ConfigError(f"the meta-CNN needs at least 8 features, got {n_features}")
        self.blocks = nn.Sequential(*layers)
        self.attention = SelfAttention(c, _n_heads(c, heads))
        hidden = scaled(1024, width)
        self.fc1 = nn.Linear(c * L, hidden)
        self.drop = nn.Dropout(DROPOUT)
        self.bn = nn.BatchNorm1d(hidden)
        self.fc2 = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(x.unsqueeze(1))                          # (B, C, L)
        Z = self.attention(h.transpose(1, 2))                    # attention over the L positions
        return self.fc2(self.bn(self.drop(self.fc1(Z.flatten(1)))))


class CodingNet(MultiViewNet):
    """The multi-view network with a :class:`FeatureCodingNet` per view (its
    embedding is R_F) and a :class:`CenterLoss` per view (``centers``).

    Parameters
    ----------
    n_classes : int
        Number of classes.
    sr : int
        Sample rate.
    width : float
        Scales every channel and unit count.
    views : tuple of str
        The views, one coding network each.
    raw_bands : int
        conv02 filters of the raw coding network.
    """

    def make_coder(self, view: str, width: float, sr: int, raw_bands: int) -> FeatureCodingNet:
        return FeatureCodingNet(view, width, sr, raw_bands)

    def add_view_modules(self, n_classes: int) -> None:
        self.centers = nn.ModuleDict({v: CenterLoss(n_classes, self.dims[v]) for v in self.views})

    def center_loss(self, z: dict, y: torch.Tensor) -> torch.Tensor:
        """The centre loss (Eq. 12, mean over the batch) of the embeddings ``z``, summed over views."""
        return sum(self.centers[v](z[v].float(), y) for v in self.views)
