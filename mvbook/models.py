"""The networks of the paper (Tables 1–2, Fig. 1): 2D and 1D CRNNs with
spatio-temporal attention pooling, and the multi-view network.

Tensors are (batch, channel, time, freq) inside; the paper's tables write
shapes as (time, freq, channel). ``width`` scales every channel and unit count
(``width=1.0`` is exactly the paper); chapter *The CRNNs* regenerates the
tables from these modules.

On CPU the forward and backward passes take faster routes that compute the
same maths (section *Fast paths* at the end of this file; ``fast_paths(False)``
switches them off, tests/test_models_fast.py checks that both agree).
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext

import torch
import torch.nn.functional as F
from torch import nn

VIEWS = ("mel", "gam", "cqt", "raw")
BRANCHES = VIEWS + ("mv",)
F_2D = (32, 64, 128, 128, 256, 512)   # Table 1, F_l for l = 1..6
F_1D = (64, 128, 128, 256, 512)       # Table 2, F_l for l = 2..6
N_RAW_BANDS = 64                      # conv02 filters = the pseudo-frequency axis of Table 2
DROPOUT = 0.1


def scaled(n: int, width: float) -> int:
    """Channel/unit count ``n`` scaled by ``width`` (at least 1)."""
    return max(1, round(n * width))


class ConvBlock(nn.Sequential):
    """conv (SAME) → batch norm → ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel=(3, 3)):
        pad = (kernel[0] // 2, kernel[1] // 2)
        super().__init__(nn.Conv2d(c_in, c_out, kernel, padding=pad, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class AttentionPooling(nn.Module):
    r"""Spatio-temporal attention pooling (after Phan et al., Interspeech 2019).

    For the recurrent output :math:`H \in \mathbb{R}^{T \times D}`:
    temporal attention :math:`\alpha = \mathrm{softmax}_t(u^\top \tanh(W_a h_t + b_a))`,
    spatial attention :math:`\beta = \sigma(V \tanh(U \bar h + c))` with
    :math:`\bar h = \frac1T \sum_t h_t`; the mask :math:`M = \alpha \beta^\top`
    weighs :math:`H` and is summed over time: :math:`z_d = \sum_t M_{td} H_{td}`.
    ``size`` is the attention size (64 in Tables 1–2).
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
    """fc → ReLU → fc → ReLU → fc (#classes), dropout after the hidden fcs."""

    def __init__(self, dim: int, hidden: int, n_classes: int):
        super().__init__(nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Dropout(DROPOUT),
                         nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(DROPOUT),
                         nn.Linear(hidden, n_classes))


class _Recurrent(nn.Module):
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
            return self.attention(self.drop(H))


class CRNN2D(_Recurrent):
    """Table 1: six conv/pool layers halving frequency (64 → 1), biGRU, attention.

    Input (B, T, 64); ``forward`` returns the embedding (B, 512·width).
    """

    def __init__(self, width: float = 1.0, n_bands: int = 64):
        F = [scaled(f, width) for f in F_2D]
        super().__init__(F[-1], width)
        c = 1
        for l, f in enumerate(F, start=1):
            setattr(self, f"conv{l}", ConvBlock(c, f))
            setattr(self, f"pool{l}", nn.Sequential(nn.MaxPool2d((1, 2)), nn.Dropout(DROPOUT)))
            c = f
        self.n_layers = len(F)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(1)                                       # (B, 1, T, 64)
        for l in range(1, self.n_layers + 1):
            x = conv_pool(getattr(self, f"conv{l}"), getattr(self, f"pool{l}"), x)
        return self.embed(x)


class CRNN1D(_Recurrent):
    """Table 2: conv01, conv02, pool02 turn the waveform into (T, 64); conv1 (5×3)
    and pool1 (4×2) shorten time; conv2–conv6 with (1, 2) pools as in Table 1.

    Input (B, samples): 66,650 at 44.1 kHz (pool02 k = s = 64), 33,330 at
    22.05 kHz (pool02 k = s = 32). conv02's ``n_bands`` filters (64 in Table 2,
    at every width) are the band axis that the next six pools halve; with fewer
    bands (a reduced preset) a pool stops halving once one band is left.
    """

    def __init__(self, width: float = 1.0, sr: int = 44100, n_bands: int = N_RAW_BANDS):
        F = [scaled(f, width) for f in F_1D]
        super().__init__(F[-1], width)
        c01 = scaled(32, width)
        self.conv01 = nn.Sequential(nn.Conv1d(1, c01, 64, stride=2, bias=False), nn.BatchNorm1d(c01), nn.ReLU(inplace=True))
        self.conv02 = nn.Sequential(nn.Conv1d(c01, n_bands, 16, stride=2, bias=False),
                                    nn.BatchNorm1d(n_bands), nn.ReLU(inplace=True))
        k = 64 if sr >= 44100 else 32
        self.pool02 = nn.MaxPool1d(k, k)
        self.conv1 = ConvBlock(1, scaled(32, width), kernel=(5, 3))
        self.pool1 = nn.Sequential(nn.MaxPool2d((4, 2)), nn.Dropout(DROPOUT))
        c, bands = scaled(32, width), n_bands // 2
        for l, f in enumerate(F, start=2):
            setattr(self, f"conv{l}", ConvBlock(c, f))
            setattr(self, f"pool{l}", nn.Sequential(nn.MaxPool2d((1, min(2, bands))), nn.Dropout(DROPOUT)))
            c, bands = f, max(1, bands // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = raw_front_end(self, x)                                # conv01, conv02, pool02 → (B, 1, T, 64)
        for l in range(1, 7):
            x = conv_pool(getattr(self, f"conv{l}"), getattr(self, f"pool{l}"), x)
        return self.embed(x)


class MultiViewNet(nn.Module):
    """Fig. 1: one CRNN per view, a classification branch on each embedding and
    one (⊕, ``"mv"``) on their concatenation: fc 4096 → fc 4096 → #classes.

    ``forward(dict view → tensor)`` returns ``dict branch → logits`` with
    branches ``views`` (+ ``"mv"`` when there is more than one view).
    Beyond the paper: ``coder="fcn"`` puts FusionNet's feature coding network
    (:mod:`mvbook.fusionnet`) in place of each CRNN, with a centre loss per view;
    ``head="cab"`` makes the ⊕ branch CAB-CNN's classifier attention
    (:mod:`mvbook.cab`); ``views`` may include the HPSS views ``harm``, ``perc``.
    """

    def __init__(self, n_classes: int, sr: int = 44100, width: float = 1.0, views=VIEWS,
                 raw_bands: int = N_RAW_BANDS, coder: str = "crnn", head: str = "fc"):
        super().__init__()
        from .features import ALL_VIEWS
        self.views, self.coder, self.head = tuple(views), coder, head
        unknown = set(self.views) - set(ALL_VIEWS)
        if unknown:
            raise ValueError(f"unknown views {sorted(unknown)}; choose from {ALL_VIEWS}")
        if coder == "crnn":
            self.subnets = nn.ModuleDict({v: CRNN1D(width, sr, raw_bands) if v == "raw" else CRNN2D(width)
                                          for v in self.views})
        elif coder == "fcn":
            from .fusionnet import CenterLoss, FeatureCodingNet
            self.subnets = nn.ModuleDict({v: FeatureCodingNet(v, width, sr, raw_bands) for v in self.views})
            self.centers = nn.ModuleDict({v: CenterLoss(n_classes, self.subnets[v].dim) for v in self.views})
        else:
            raise ValueError(f"unknown coder {coder!r}; choose 'crnn' or 'fcn'")
        dims = {v: net.dim for v, net in self.subnets.items()}
        self.heads = nn.ModuleDict({v: Classifier(dims[v], scaled(1024, width), n_classes) for v in self.views})
        if len(self.views) > 1:
            if head == "fc":
                self.heads["mv"] = Classifier(sum(dims.values()), scaled(4096, width), n_classes)
            elif head == "cab":
                from .cab import ClassifierAttention
                self.heads["mv"] = ClassifierAttention(sum(dims.values()), n_classes)
            else:
                raise ValueError(f"unknown head {head!r}; choose 'fc' or 'cab'")
        self.branches = tuple(self.heads)

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

    def center_loss(self, z: dict, y: torch.Tensor) -> torch.Tensor:
        """FusionNet's centre loss (Eq. 12, mean over the batch), summed over views;
        zero for CRNN coders."""
        if self.coder != "fcn":
            return torch.zeros((), device=y.device)
        return sum(self.centers[v](z[v].float(), y) for v in self.views)


def n_params(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def layer_shapes(net: nn.Module, x: torch.Tensor) -> list[tuple[str, tuple]]:
    """Run ``net`` on ``x`` and return (layer name, output shape without batch) for
    its named layers, in the paper's (time, freq, channel) order for 4-D outputs.
    Used to regenerate Tables 1–2 from the code.
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


# ---------------------------------------------------------------------------
# Fast paths. Same maths as the plain modules above, fewer passes over memory;
# used on CPU only (CUDA keeps cuDNN's kernels). tests/test_models_fast.py
# checks fast = plain for outputs, gradients and batch-norm running statistics.
# ---------------------------------------------------------------------------

_FAST = {"enabled": True}
_EPS_EXACT = 2.0 ** -20     # a float32-exact eps: (1 − eps) + eps == 1 with no rounding


@contextmanager
def fast_paths(enabled: bool = True):
    """Within the block, use (``True``) or skip (``False``) the fast CPU paths."""
    before = _FAST["enabled"]
    _FAST["enabled"] = bool(enabled)
    try:
        yield
    finally:
        _FAST["enabled"] = before


def _fast(x: torch.Tensor) -> bool:
    return _FAST["enabled"] and x.device.type == "cpu"


def float32_on_cpu(x: torch.Tensor):
    """Context: no CPU autocast for the fully-connected parts (attention, heads).
    On CPU only the convolutions gain from bfloat16; the fc layers, at these
    batch sizes bound by reading their weights, would pay for casting the
    weights every step. (A no-op on CUDA and with the fast paths off.)"""
    if _fast(x) and torch.is_autocast_enabled("cpu"):
        return torch.autocast("cpu", enabled=False)
    return nullcontext()


def _bn_factor(bn: nn.modules.batchnorm._BatchNorm) -> tuple[bool, float]:
    """(use batch statistics?, running-average factor), exactly as ``_BatchNorm.forward``
    decides them (it also counts the batch in ``num_batches_tracked``)."""
    factor = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    batch_stats = bn.training or (bn.running_mean is None and bn.running_var is None)
    return batch_stats, factor


def _acc_dtype(x: torch.Tensor) -> torch.dtype:
    """Accumulation type: float32 for bf16/fp16 activations, else their own."""
    return torch.float32 if x.dtype in (torch.bfloat16, torch.float16) else x.dtype


def _bn_relu(y: torch.Tensor, bn) -> torch.Tensor:
    """batch norm → ReLU with the native kernels, for any memory format of ``y``."""
    batch_stats, factor = _bn_factor(bn)
    rm, rv = (bn.running_mean, bn.running_var) if not bn.training or bn.track_running_stats else (None, None)
    return F.relu_(F.batch_norm(y, rm, rv, bn.weight, bn.bias, batch_stats, factor, bn.eps))


class _BNReLUMaxPool(torch.autograd.Function):
    r"""max-pool(ReLU(batch norm(y))) with the pool moved first.

    Batch norm is a per-channel map :math:`y \mapsto a_c y + b_c` (with the batch's
    statistics when training) and ReLU is non-decreasing, so for :math:`a_c \ge 0`
    :math:`\max_{w} \mathrm{ReLU}(a_c y_i + b_c) = \mathrm{ReLU}(a_c \max_w y_i + b_c)`
    (a minimum for :math:`a_c < 0`); floating-point rounding is monotone too, so
    the values are the same and the affine map and ReLU run on the pooled tensor.
    The gradient of batch norm is dense,
    :math:`\partial y_i = a_c (g_i - \bar g - \hat y_i \overline{g \hat y})` with
    :math:`g` non-zero only at the pooled arg-max positions, so
    :math:`\partial y = A_c y + B_c + a_c g`: one pass over ``y`` plus a scatter.
    """

    @staticmethod
    def forward(ctx, y, weight, bias, mean, invstd, kernel, batch_stats):
        C = y.shape[1]
        alpha = weight * invstd                                   # a_c, as the native kernel forms it
        beta = bias - mean * alpha                                # b_c
        sign = torch.where(alpha < 0, -1.0, 1.0).to(y.dtype).view(1, C, 1, 1)
        flip = bool((alpha < 0).any())
        p, idx = F.max_pool2d(y * sign if flip else y, kernel, kernel, return_indices=True)
        if flip:
            p = p * sign                                          # the y value at the arg-max / arg-min
        out = torch.addcmul(beta.view(1, C, 1, 1), p, alpha.view(1, C, 1, 1)).relu_()
        ctx.save_for_backward(y, p, idx, out, alpha, mean, invstd)
        ctx.batch_stats = batch_stats
        return out.to(y.dtype)

    @staticmethod
    def backward(ctx, g_out):
        y, p, idx, out, alpha, mean, invstd = ctx.saved_tensors
        C = y.shape[1]
        g = torch.where(out > 0, g_out, 0.0).to(out.dtype)        # through ReLU (pooled size)
        xhat = (p - mean.view(1, C, 1, 1)) * invstd.view(1, C, 1, 1)
        sum_g, sum_gx = g.sum((0, 2, 3)), (g * xhat).sum((0, 2, 3))
        g_weight, g_bias = sum_gx, sum_g
        if ctx.batch_stats:
            n = y.numel() // C
            A = -alpha * invstd * sum_gx / n
            Bc = -alpha * sum_g / n - mean * A
            if y.dtype == out.dtype:
                dy = torch.addcmul(Bc.view(1, C, 1, 1), y, A.view(1, C, 1, 1))
            else:                                                # y·A + B in float32, rounded once to y's type
                # eps must be > 0 (torch 2.11 checks); var = 1 − eps keeps 1/√(var + eps) exactly 1
                dy = F.batch_norm(y, torch.zeros_like(A), torch.full_like(A, 1 - _EPS_EXACT), A, Bc,
                                  False, 0.0, _EPS_EXACT)
        else:
            dy = torch.zeros_like(y)
        src = (g * alpha.view(1, C, 1, 1)).to(dy.dtype)
        # add src at the arg-max cells, in dy's memory order (nothing copies dy)
        B, _, H, W = dy.shape
        if dy.is_contiguous(memory_format=torch.channels_last) and not dy.is_contiguous():
            mem, dim = dy.permute(0, 2, 3, 1).view(B, H * W, C), 1
            idx, src = idx.permute(0, 2, 3, 1).reshape(B, -1, C), src.permute(0, 2, 3, 1).reshape(B, -1, C)
        else:
            dy = dy.contiguous()
            mem, dim, idx, src = dy.view(B, C, H * W), 2, idx.reshape(B, C, -1), src.reshape(B, C, -1)
        if dy.dtype in (torch.float32, torch.float64):
            mem.scatter_add_(dim, idx, src)
        else:   # scatter_add_ would copy a bfloat16 dy to float32 and back; the windows do not
            # overlap, so each cell is hit once: gather, add and put back by flat offsets
            n0, n1, n2 = mem.shape
            b = torch.arange(n0, device=dy.device).view(-1, 1, 1) * (n1 * n2)
            if dim == 1:
                flat = b + idx * n2 + torch.arange(n2, device=dy.device)
            else:
                flat = b + torch.arange(n1, device=dy.device).view(1, -1, 1) * n2 + idx
            flat, m = flat.reshape(-1), mem.view(-1)
            m.put_(flat, m.take(flat) + src.reshape(-1))
        return dy, g_weight, g_bias, None, None, None, None


def _bn_relu_maxpool(y: torch.Tensor, bn, kernel) -> torch.Tensor:
    """ReLU(batch norm(y)) max-pooled by ``kernel`` (stride = kernel), pool first."""
    kernel = tuple(kernel)
    if kernel == (1, 1):
        return _bn_relu(y, bn)
    if not (y.is_contiguous() or y.is_contiguous(memory_format=torch.channels_last)):
        y = y.contiguous(memory_format=torch.channels_last)     # the backward views (H, W) as one axis
    batch_stats, factor = _bn_factor(bn)
    if batch_stats:
        rm, rv = (bn.running_mean, bn.running_var) if bn.track_running_stats else (None, None)
        with torch.no_grad():                                    # their gradient is in the backward
            mean, var = torch.batch_norm_update_stats(y, rm, rv, factor)   # updates rm, rv like batch_norm
    else:
        mean, var = bn.running_mean, bn.running_var
    acc = _acc_dtype(y)
    invstd = 1.0 / torch.sqrt(var.to(acc) + bn.eps)
    weight = bn.weight if bn.weight is not None else torch.ones_like(invstd)
    bias = bn.bias if bn.bias is not None else torch.zeros_like(invstd)
    weight, bias, mean = weight.to(acc), bias.to(acc), mean.to(acc)
    if torch.is_grad_enabled() and (y.requires_grad or weight.requires_grad or bias.requires_grad):
        return _BNReLUMaxPool.apply(y, weight, bias, mean, invstd, kernel, batch_stats)
    # no gradient wanted (evaluation): the same values, without arg-max indices
    C = y.shape[1]
    alpha = weight * invstd
    beta = bias - mean * alpha
    if bool((alpha < 0).any()):
        sign = torch.where(alpha < 0, -1.0, 1.0).to(y.dtype).view(1, C, 1, 1)
        p = F.max_pool2d(y * sign, kernel, kernel) * sign
    else:
        p = F.max_pool2d(y, kernel, kernel)
    return torch.addcmul(beta.view(1, C, 1, 1), p, alpha.view(1, C, 1, 1)).relu_().to(y.dtype)


BANDED_MAX_FREQ = 2      # _banded_conv for inputs this narrow in frequency (wider: oneDNN's 2-D kernel wins)


def _banded_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    r"""A (time, freq) convolution (stride 1, SAME) of an input only F ≤ 2 bands wide,
    as a 1-D convolution over time with F·C_in input and F·C_out output channels:
    :math:`y_{t,f,o} = \sum_{\tau, f', c} W_{o,c,\tau,f'-f+p} \, x_{t+\tau-q, f', c}`, the weight
    a block matrix whose (f, f') block is :math:`W_{:,:,:,f'-f+p}` (zero outside the
    kernel). The same products minus those with the zero padding of the
    frequency axis, which the 2-D kernel computes and wastes at F ≤ 2.
    ``x`` (B, C, T, F) channels-last → (B, O, T, F) channels-last.
    """
    (kt, kf), (pt, pf) = conv.kernel_size, conv.padding
    if (conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1 or conv.bias is not None
            or pt != kt // 2 or pf != kf // 2):
        return conv(x)
    B, C, T, Fq = x.shape
    O, w = conv.out_channels, conv.weight
    zero = w.new_zeros(O, C, kt)
    rows = [torch.cat([w[:, :, :, fi - fo + pf] if 0 <= fi - fo + pf < kf else zero for fi in range(Fq)], 1)
            for fo in range(Fq)]
    Wb = torch.cat(rows, 0)                                      # (F·O, F·C, kt), rows (f, o), columns (f', c)
    xt = x.permute(0, 2, 3, 1).reshape(B, 1, T, Fq * C).permute(0, 3, 1, 2)   # (B, F·C, 1, T) channels-last
    y = F.conv2d(xt, Wb.unsqueeze(2), None, 1, (0, pt))         # (B, F·O, 1, T) channels-last
    y = y.permute(0, 2, 3, 1).reshape(B, T, Fq, O)              # free when y is channels-last
    return y.permute(0, 3, 1, 2)                                 # (B, O, T, F) channels-last


def conv_pool(conv: ConvBlock, pool: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``pool(conv(x))`` for a conv → BN → ReLU block and its max-pool → dropout.

    Fast path: channels-last convolution, then :class:`_BNReLUMaxPool`.
    """
    if not _fast(x):
        return pool(conv(x))
    x = x.contiguous(memory_format=torch.channels_last)
    y = _banded_conv(x, conv[0]) if x.shape[3] <= BANDED_MAX_FREQ else conv[0](x)
    k = pool[0].kernel_size
    k = (k, k) if isinstance(k, int) else k
    s = pool[0].stride
    s = (s, s) if isinstance(s, int) else s
    assert tuple(s) == tuple(k) and pool[0].padding in (0, (0, 0)) and not pool[0].ceil_mode
    return _dropout(_bn_relu_maxpool(y, conv[1], k), pool[1])


def _dropout(x: torch.Tensor, drop: nn.Dropout) -> torch.Tensor:
    """``drop(x)`` with the mask drawn in (B, C, H, W) order whatever the memory
    format of ``x``, so that the random numbers are those of the plain path."""
    if not drop.training or drop.p == 0:
        return x
    if drop.p == 1:
        return x * 0.0
    noise = torch.empty(x.shape, dtype=x.dtype, device=x.device).bernoulli_(1 - drop.p).div_(1 - drop.p)
    return x * noise


def _polyphase_conv(x: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    r"""``conv`` (1-D, stride s, kernel k = s·m, no padding, no bias) of ``x`` given as
    (B, C, 1, L) channels-last, as a stride-1 convolution of the s phases of ``x``:
    :math:`y_t = \sum_{j<k} W_j x_{st+j} = \sum_{i<m} \sum_{q<s} W_{si+q} x_{s(t+i)+q}`,
    i.e. s·C input channels (phase q, channel c) and m taps. The same products and
    sums; returns (B, O, 1, L_out) channels-last. Falls back to a strided 2-D
    convolution when k is not a multiple of s.
    """
    (s,), (k,) = conv.stride, conv.kernel_size
    O, C = conv.weight.shape[:2]
    if k % s or conv.padding != (0,) or conv.dilation != (1,) or conv.groups != 1 or conv.bias is not None:
        return F.conv2d(x, conv.weight.unsqueeze(2), conv.bias, (1, s), (0, conv.padding[0]), (1, conv.dilation[0]),
                        conv.groups)
    B, _, _, L = x.shape
    L = L // s * s                                               # a trailing partial phase feeds no output
    xs = x[..., :L].permute(0, 2, 3, 1).reshape(B, 1, L // s, s * C).permute(0, 3, 1, 2)   # (B, s·C, 1, L/s)
    w = conv.weight.view(O, C, k // s, s).permute(0, 3, 1, 2).reshape(O, s * C, 1, k // s)
    return F.conv2d(xs, w)


def raw_front_end(net: "CRNN1D", x: torch.Tensor) -> torch.Tensor:
    """conv01 → conv02 → pool02 of Table 2, then channels as the frequency axis:
    waveform (B, samples) → (B, 1, T, bands).

    Fast path: both 1-D convolutions as channels-last 2-D ones (rows of one
    sample), conv02's batch norm, ReLU and pool02 through :class:`_BNReLUMaxPool`;
    the result is already laid out as (B, T, bands).
    """
    if not _fast(x):
        x = net.pool02(net.conv02(net.conv01(x.unsqueeze(1))))  # (B, bands, T)
        return x.transpose(1, 2).unsqueeze(1)                    # (B, 1, T, bands)
    y = _polyphase_conv(x.reshape(x.shape[0], 1, 1, -1), net.conv01[0])          # (B, 1, 1, samples)
    y = _bn_relu(y, net.conv01[1])
    y = _polyphase_conv(y, net.conv02[0])
    k = net.pool02.kernel_size
    k = k[0] if isinstance(k, tuple) else k
    y = _bn_relu_maxpool(y, net.conv02[1], (1, k))                # (B, bands, 1, T), channels-last
    return y.squeeze(2).transpose(1, 2).unsqueeze(1)


class _BiGRUFunction(torch.autograd.Function):
    r"""One bidirectional GRU layer (batch first, zero initial state), both
    directions stepped together: per time step one batched matrix product
    and five element-wise operations forward, one and seven backward, with
    PyTorch's GRU equations (gates r, z, n in that order):

    :math:`r = \sigma(W_{ir}x + b_{ir} + W_{hr}h + b_{hr})`,
    :math:`z = \sigma(W_{iz}x + b_{iz} + W_{hz}h + b_{hz})`,
    :math:`n = \tanh(W_{in}x + b_{in} + r \odot (W_{hn}h + b_{hn}))`,
    :math:`h' = (h - n) \odot z + n`.
    Inputs are projected for all steps in one product; so are the weight
    gradients. The backward direction runs on the time-reversed input.
    """

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, b_ih, b_hh, w_ih_r, w_hh_r, b_ih_r, b_hh_r):
        B, T, I = x.shape
        H = w_hh.shape[1]
        W_ih = torch.stack([w_ih, w_ih_r])                       # (2, 3H, I)
        W_hh = torch.stack([w_hh, w_hh_r])                       # (2, 3H, H)
        X = torch.stack([x.transpose(0, 1), x.flip(1).transpose(0, 1)])   # (2, T, B, I), time-major
        G = torch.baddbmm(torch.stack([b_ih, b_ih_r]).unsqueeze(1), X.view(2, T * B, I),
                          W_ih.transpose(1, 2)).view(2, T, B, 3 * H)
        b_hh2 = torch.stack([b_hh, b_hh_r]).unsqueeze(1)         # (2, 1, 3H)
        W_hh_t = W_hh.transpose(1, 2)
        hs = x.new_zeros(T + 1, 2, B, H)                         # hs[t] = state before step t
        gh = x.new_empty(T, 2, B, 3 * H)                         # W_h h + b_h
        rz = x.new_empty(T, 2, B, 2 * H)                         # gates r, z
        n = x.new_empty(T, 2, B, H)
        d = x.new_empty(T, 2, B, H)                              # h - n
        for t in range(T):
            torch.baddbmm(b_hh2, hs[t], W_hh_t, out=gh[t])
            torch.add(G[:, t, :, :2 * H], gh[t, :, :, :2 * H], out=rz[t]).sigmoid_()
            torch.addcmul(G[:, t, :, 2 * H:], rz[t, :, :, :H], gh[t, :, :, 2 * H:], out=n[t]).tanh_()
            torch.sub(hs[t], n[t], out=d[t])
            torch.addcmul(n[t], d[t], rz[t, :, :, H:], out=hs[t + 1])
        ctx.save_for_backward(X, W_ih, W_hh, hs, gh, rz, n, d)
        ctx.set_materialize_grads(False)
        out = torch.cat([hs[1:, 0], hs[1:, 1].flip(0)], dim=2)   # (T, B, 2H), time-major like nn.GRU's
        return out.transpose(0, 1), hs[T].clone()

    @staticmethod
    def backward(ctx, g_out, g_hn):
        X, W_ih, W_hh, hs, gh, rz, n, d = ctx.saved_tensors
        T, _, B, H = n.shape
        I = X.shape[-1]
        dH = hs.new_zeros(T, 2, B, H)                            # ∂L/∂h_t from the layer's outputs
        if g_out is not None:
            g_out = g_out.transpose(0, 1)                        # (T, B, 2H)
            dH[:, 0] = g_out[:, :, :H]
            dH[:, 1] = g_out[:, :, H:].flip(0)
        if g_hn is not None:
            dH[T - 1] += g_hn
        z = rz[:, :, :, H:]
        S = rz * (1 - rz)                                        # σ' of r and z, all steps at once
        K = (1 - z) * (1 - n * n)                                # ∂h/∂n · tanh'
        dG = hs.new_empty(2, T, B, 3 * H)                        # ∂L/∂(W_i x + b_i)
        dGh = hs.new_empty(2, T, B, 3 * H)                       # ∂L/∂(W_h h + b_h)
        tmp = hs.new_empty(2, B, 2 * H)
        dh = hs.new_zeros(2, B, H)
        for t in range(T - 1, -1, -1):
            dh = dh + dH[t]
            dn = dG[:, t, :, 2 * H:]
            torch.mul(dh, K[t], out=dn)
            torch.mul(dn, gh[t, :, :, 2 * H:], out=tmp[:, :, :H])          # ∂L/∂r
            torch.mul(dh, d[t], out=tmp[:, :, H:])                         # ∂L/∂z
            torch.mul(tmp, S[t], out=dGh[:, t, :, :2 * H])
            torch.mul(dn, rz[t, :, :, :H], out=dGh[:, t, :, 2 * H:])
            dh = torch.baddbmm(dh * z[t], dGh[:, t], W_hh)                  # ∂L/∂h_{t-1}
        dG[:, :, :, :2 * H] = dGh[:, :, :, :2 * H]
        dG2 = dG.view(2, T * B, 3 * H)
        g_W_hh = torch.bmm(dGh.view(2, T * B, 3 * H).transpose(1, 2),
                           hs[:T].transpose(0, 1).reshape(2, T * B, H))
        g_b_hh = dGh.sum((1, 2))
        g_W_ih = torch.bmm(dG2.transpose(1, 2), X.view(2, T * B, I))
        g_b_ih = dG.sum((1, 2))
        g_x = None
        if ctx.needs_input_grad[0]:
            dX = torch.bmm(dG2, W_ih).view(2, T, B, I)
            g_x = (dX[0] + dX[1].flip(0)).transpose(0, 1)
        return (g_x, g_W_ih[0], g_W_hh[0], g_b_ih[0], g_b_hh[0],
                g_W_ih[1], g_W_hh[1], g_b_ih[1], g_b_hh[1])


class BiGRU(nn.GRU):
    """``nn.GRU`` (same parameters, same maths) whose one-layer, bidirectional,
    batch-first case runs :class:`_BiGRUFunction` on CPU, in float32."""

    def forward(self, input, hx=None):
        if (hx is not None or not _fast(input) or not isinstance(input, torch.Tensor)
                or self.num_layers != 1 or not self.bidirectional or not self.batch_first
                or not self.bias or self.proj_size or input.dim() != 3):
            return super().forward(input, hx)
        with torch.autocast("cpu", enabled=False):
            x = input.to(_acc_dtype(input))
            out, h = _BiGRUFunction.apply(x, *(w.to(x.dtype) for w in self._flat_weights))
        return out, h
