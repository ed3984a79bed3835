"""Figures and tables of the book, drawn from the library's own objects and
from results records (``mvbook.results``), never from numbers typed in.

- :func:`plot_views`: a clip as waveform and its three spectrograms (§2.1).
- :func:`draw_network`: Fig. 1, the five-branch multi-view network.
- :func:`plot_attention`: what spatio-temporal attention pooling weighs.
- from :mod:`mvbook.book.plots_runs` (the figures drawn from records, and the
  style shared by every figure): :func:`.blending_trace`,
  :func:`.plot_blending_trace`, :func:`.plot_curves`, :func:`.fig2`,
  :func:`.book_style`.

Chapters: *Four views*, *The CRNNs*, *The multi-view network*, *Adaptive
gradient blending*, *Training*, *Results*, *Beyond the paper*.
"""
from __future__ import annotations

import librosa
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from gammatone.filters import centre_freqs
from torch import nn

from ..errors import ConfigError
from ..nets.crnn import layer_shapes, scaled
from ..views.features import CQT_BINS_PER_OCTAVE, GAM_FMIN
from ..views.framing import N_BANDS, VIEW_INFO, frame_times
from .plots_runs import (  # noqa: F401
    BOOK_RC,
    BRANCH_COLOR,
    BRANCH_LABEL,
    FIG_WIDTH,
    SYSTEM_COLOR,
    blending_trace,
    book_style,
    fig2,
    mean_curve,
    plot_blending_trace,
    plot_curves,
    runs_of,
)

__all__ = ["band_frequencies", "plot_views", "draw_network", "crnn_table", "attention_maps", "plot_attention"]


# --- the four views ----------------------------------------------------------------------

def band_frequencies(view: str, sr: int) -> np.ndarray:
    """Centre frequency of each of the 64 bands of a 2D view, low to high.

    Parameters
    ----------
    view : {"mel", "gam", "cqt", "harm", "perc"}
        A 2D view (the HPSS views have the Mel view's bands).
    sr : int
        Sampling rate (Hz).

    Returns
    -------
    numpy.ndarray, shape (64,)
        Frequencies in Hz.

    Raises
    ------
    mvbook.errors.ConfigError
        When ``view`` is not a 2D view.
    """
    if view in ("mel", "harm", "perc"):
        return librosa.mel_frequencies(n_mels=N_BANDS + 2, fmin=0.0, fmax=sr / 2)[1:-1]
    if view == "gam":
        return np.sort(centre_freqs(sr, N_BANDS, GAM_FMIN))
    if view == "cqt":
        return librosa.cqt_frequencies(N_BANDS, fmin=librosa.note_to_hz("C1"), bins_per_octave=CQT_BINS_PER_OCTAVE)
    raise ConfigError(f"{view!r} is not a 2D view")


def _spectrogram(ax, X, view, sr, t0=0.0, cmap="magma"):
    t = frame_times(view, X.shape[0], sr) + t0
    dt = t[1] - t[0] if len(t) > 1 else 1.0
    im = ax.imshow(X.T, origin="lower", aspect="auto", cmap=cmap, interpolation="nearest",
                   extent=[t[0] - dt / 2, t[-1] + dt / 2, -0.5, X.shape[1] - 0.5])
    f = band_frequencies(view, sr)
    ticks = [0, 16, 32, 48, 63]
    ax.set_yticks(ticks, [f"{f[i]:.0f}" if f[i] < 1000 else f"{f[i] / 1000:.1f}k" for i in ticks])
    ax.set_ylabel(f"{VIEW_INFO[view].axis}\n(centre, Hz)")
    return im


def plot_views(wave, sr: int, views: dict, title: str | None = None, figsize=(FIG_WIDTH, 9)):
    """A clip's waveform and its Mel, Gammatone and CQT spectrograms on a common time axis (seconds).

    Parameters
    ----------
    wave : array_like, shape (samples,)
        The waveform.
    sr : int
        Its sampling rate (Hz).
    views : dict
        ``"mel"``, ``"gam"``, ``"cqt"`` → log power, shape (frames, 64).
    title : str, optional
        The figure's title.
    figsize : tuple of float
        Inches.

    Returns
    -------
    matplotlib.figure.Figure
        Four panels, top to bottom: raw, mel, gam, cqt.
    """
    fig, axes = plt.subplots(4, 1, figsize=figsize, sharex=True, constrained_layout=True)
    t = np.arange(len(wave)) / sr
    axes[0].plot(t, wave, lw=0.3, color="#333333")
    axes[0].set_ylabel("raw\n(amplitude)")
    axes[0].set_xlim(0, len(wave) / sr)
    for ax, v in zip(axes[1:], ("mel", "gam", "cqt")):
        im = _spectrogram(ax, views[v], v, sr)
        fig.colorbar(im, ax=ax, pad=0.01, label="log power")
        ax.set_title(f"{v}: {views[v].shape[0]} frames × {views[v].shape[1]}", loc="right")
    axes[0].set_title(f"raw: {len(wave):,} samples at {sr:,} Hz", loc="right")
    axes[-1].set_xlabel("time (s)")
    if title:
        fig.suptitle(title)
    return fig


# --- Fig. 1 ---------------------------------------------------------------------------------

def _box(ax, x, y, w, h, text, fc="#ffffff", ec="#333333", fontsize=9, **kw):
    from matplotlib.patches import FancyBboxPatch
    ax.add_patch(FancyBboxPatch((x, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.12",
                                fc=fc, ec=ec, lw=1.0, **kw))
    ax.text(x + w / 2, y, text, ha="center", va="center", fontsize=fontsize)
    return (x, y, w, h)


def _arrow(ax, p, q, dashed=False, color="#333333", rad=0.0, lw=1.0):
    ax.annotate("", xy=q, xytext=p,
                arrowprops=dict(arrowstyle="-|>", lw=lw, color=color, linestyle="--" if dashed else "-",
                                shrinkA=1, shrinkB=1, connectionstyle=f"arc3,rad={rad}"))


def draw_network(ax=None, n_classes: str = "C", width: float = 1.0):
    """Fig. 1 of the paper, drawn.

    Four views → four CRNNs → five classification branches (one per view, one on
    the concatenated embedding ⊕) → five losses, blended with the weights of
    Algorithm 1. Solid arrows: forward pass; dashed: where each loss's gradient
    flows back.

    Parameters
    ----------
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new figure's.
    n_classes : str
        What the output layers' size is written as.
    width : float
        Width multiplier of the networks (:func:`mvbook.nets.crnn.scaled`), for the
        sizes written in the boxes.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 5.4), constrained_layout=True)
    ax.set_xlim(-0.1, 16.5)
    ax.set_ylim(-0.8, 9.7)
    ax.axis("off")
    d = 2 * scaled(256, width)
    rows = {"mel": 9.0, "gam": 7.0, "cqt": 5.0, "raw": 3.0}
    inputs = {"mel": "log Mel\n$T\\times 64$", "gam": "log Gammatone\n$T\\times 64$",
              "cqt": "log CQT\n$T\\times 64$", "raw": "raw waveform\n66,650 samples"}
    color = {v: BRANCH_COLOR[v] for v in rows}
    xb = 7.05                                                 # the bus that feeds ⊕
    for v, y in rows.items():
        _box(ax, 0.0, y, 2.0, 1.1, inputs[v], fc="#f6f6f6")
        net = "1D CRNN\n(Table 2)" if v == "raw" else "2D CRNN\n(Table 1)"
        _box(ax, 2.7, y, 2.0, 1.1, net, fc="#eef3fb", ec=color[v])
        _box(ax, 5.3, y, 1.2, 0.8, f"$z^{{({v})}}$\n{d}-d", fc="#ffffff", ec=color[v], fontsize=8)
        _box(ax, 7.7, y, 2.6, 1.0, f"fc {scaled(1024, width)} → fc {scaled(1024, width)}\n→ fc {n_classes} (softmax)",
             fc="#fbf3ea", ec=color[v], fontsize=8)
        ax.text(11.35, y, f"$\\mathcal{{L}}^{{({v})}}$", ha="center", va="center", fontsize=12, color=color[v])
        _arrow(ax, (2.0, y), (2.7, y))
        _arrow(ax, (4.7, y), (5.3, y))
        _arrow(ax, (6.5, y), (7.7, y))
        ax.plot([xb], [y], "o", color="#222222", ms=4)          # the embedding goes both ways
        _arrow(ax, (10.3, y), (10.95, y))
        _arrow(ax, (11.0, y - 0.32), (3.7, y - 0.62), dashed=True, color=color[v], rad=-0.08, lw=0.8)
    # concatenation branch
    yc = 0.6
    ax.plot([xb, xb], [rows["mel"], yc + 0.33], color="#222222", lw=1.0)
    ax.add_patch(plt.Circle((xb, yc), 0.32, fc="#ffffff", ec="#222222", zorder=3))
    ax.text(xb, yc, "⊕", ha="center", va="center", fontsize=14, zorder=4)
    ax.text(xb - 0.15, yc + 0.75, f"concatenate\n({4 * d}-d)", ha="right", va="center", fontsize=8)
    _box(ax, 7.9, yc, 2.4, 1.0, f"fc {scaled(4096, width)} → fc {scaled(4096, width)}\n→ fc {n_classes} (softmax)",
         fc="#fbf3ea", ec="#222222", fontsize=8)
    _arrow(ax, (xb + 0.32, yc), (7.9, yc))
    _arrow(ax, (10.3, yc), (10.95, yc))
    ax.text(11.35, yc, "$\\mathcal{L}^{(\\oplus)}$", ha="center", va="center", fontsize=12)
    _arrow(ax, (11.0, yc - 0.3), (xb + 0.1, yc - 0.4), dashed=True, rad=-0.15, lw=0.8)
    # blending
    _box(ax, 12.6, 5.0, 3.8, 1.5, "$\\mathcal{L}(n) = \\sum_k w^{(k)}(n)\\,\\mathcal{L}^{(k)}(n)$\n(Eq. 2)",
         fc="#f3f9ef", ec="#2b7a2b", fontsize=10)
    for v, y in list(rows.items()) + [("⊕", yc)]:
        _arrow(ax, (11.8, y), (12.6, 5.0 + (y - 5.0) * 0.08), color="#2b7a2b", lw=0.7)
    _box(ax, 12.6, 8.3, 3.8, 1.6, "Algorithm 1 (Eq. 3–5):\n$w^{(k)} \\propto G^{(k)} / O^{(k)2}$\nfrom "
         "$L_{tr}$ and $L_{\\diamond}$ of each branch", fc="#ffffff", ec="#2b7a2b", fontsize=9)
    _arrow(ax, (14.5, 7.5), (14.5, 5.75), color="#2b7a2b")
    ax.text(0.0, -0.6, "solid: forward pass    dashed: gradient of each branch loss flowing back into the "
            "network (the ⊕ loss reaches all four CRNNs)", fontsize=8, color="#444444")
    return ax


# --- Tables 1 and 2 ---------------------------------------------------------------------------

def _pair(t) -> str:
    t = tuple(t) if isinstance(t, (tuple, list)) else (t,)
    return "(" + ", ".join(str(v) for v in (t if len(t) == 2 else t + (1,))) + ")"


def crnn_table(net, x, head=None) -> pd.DataFrame:
    """Table 1 or 2 regenerated from the code.

    For each layer of a CRNN: its filter size, stride, number of filters and
    padding read from the module, and its output shape measured by running ``net``
    on one input (:func:`mvbook.nets.crnn.layer_shapes`).

    Parameters
    ----------
    net : torch.nn.Module
        A 2D or 1D CRNN (:class:`mvbook.nets.crnn.CRNN2D`, :class:`mvbook.nets.crnn.CRNN1D`).
    x : torch.Tensor, shape (T, 64) or (samples,)
        One un-batched input: a 2D view or a waveform.
    head : torch.nn.Module, optional
        A classification branch: adds its fc rows.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``layer`` (``input`` first); columns ``filter``, ``stride``,
        ``filters``, ``padding`` (``SAME`` or ``VALID``) and ``output`` (the shape
        without the batch, (time, frequency, channel), as text).
    """
    in_shape = (x.shape[0], x.shape[1], 1) if x.dim() == 2 else (x.shape[0], 1, 1)
    x = x[None]                                            # one example: (T, 64) or (samples,)
    rows = [dict(layer="input", filter="", stride="", filters="", padding="", output=in_shape)]
    for name, shape in layer_shapes(net, x):
        m = getattr(net, name)
        conv = next((c for c in m.modules() if isinstance(c, (nn.Conv1d, nn.Conv2d))), None)
        pool = next((c for c in m.modules() if isinstance(c, (nn.MaxPool1d, nn.MaxPool2d))), None)
        row = dict(layer=name, filter="", stride="", filters="", padding="", output=shape)
        if conv is not None:
            same = all(p == k // 2 for p, k in zip(conv.padding, conv.kernel_size)) and max(conv.padding) > 0
            row.update(filter=_pair(conv.kernel_size), stride=_pair(conv.stride), filters=conv.out_channels,
                       padding="SAME" if same else "VALID")
        elif pool is not None:
            row.update(filter=_pair(pool.kernel_size), stride=_pair(pool.stride), padding="VALID")
        elif isinstance(m, nn.RNNBase) or hasattr(m, "hidden_size"):
            row.update(layer="biRNN (GRU)", filters=f"2 · {m.hidden_size}")
        elif name == "attention":
            row.update(filters=m.temporal[0].out_features)
        rows.append(row)
    if head is not None:
        fcs = [m for m in head.modules() if isinstance(m, nn.Linear)]
        for i, fc in enumerate(fcs, start=1):
            rows.append(dict(layer=f"fc{i}", filter="", stride="", filters=fc.out_features, padding="",
                             output=(fc.out_features,)))
    df = pd.DataFrame(rows)
    df["output"] = df["output"].map(lambda s: "(" + ", ".join(f"{v:,}" if v >= 10000 else str(v) for v in s)
                                    + ("," if len(s) == 1 else "") + ")")
    return df.set_index("layer")


# --- attention pooling ----------------------------------------------------------------------

def attention_maps(crnn, x):
    """The attention pooling of a CRNN on one input.

    Parameters
    ----------
    crnn : torch.nn.Module
        A CRNN with an ``attention`` pooling layer, on any device; it is put in eval mode.
    x : array_like or torch.Tensor, shape (T, 64) or (samples,)
        One un-batched input: a 2D view or a waveform; it is moved to ``crnn``'s device.

    Returns
    -------
    alpha : numpy.ndarray, shape (T',)
        Temporal attention over the recurrent layer's T' frames.
    beta : numpy.ndarray, shape (D,)
        Spatial attention over its D features.
    H : numpy.ndarray, shape (T', D)
        The recurrent layer's output that the attention pools.
    """
    import torch
    device = next(crnn.parameters()).device                  # x goes to the model, the maps come back
    captured = {}
    hook = crnn.attention.register_forward_hook(lambda m, inp, out: captured.setdefault("H", inp[0]))
    try:
        with torch.no_grad():
            crnn.eval()(torch.as_tensor(x, dtype=torch.float32, device=device)[None])
            alpha, beta = crnn.attention.weights(captured["H"])
    finally:
        hook.remove()
    return alpha[0].cpu().numpy(), beta[0].cpu().numpy(), captured["H"][0].cpu().numpy()


def plot_attention(X, view: str, sr: int, alpha, beta, H, *, t0: float = 0.0, title: str | None = None):
    """What spatio-temporal attention pooling weighs.

    The input segment, the temporal attention α over its frames, the spatial
    attention β over the D recurrent features and the mask M = α βᵀ that pools H
    (the pooled vector z = Σ_t M_t ⊙ h_t).

    Parameters
    ----------
    X : numpy.ndarray, shape (T, 64)
        The input segment (a 2D view).
    view : str
        Its view (for the time and frequency axes).
    sr : int
        Sampling rate (Hz).
    alpha, beta, H : numpy.ndarray
        Shapes (T',), (D,) and (T', D), from :func:`attention_maps`.
    t0 : float
        Start time of the segment (s).
    title : str, optional
        The figure's title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = plt.figure(figsize=(FIG_WIDTH, 7.8), constrained_layout=True)
    gs = fig.add_gridspec(3, 2, width_ratios=[4, 1], height_ratios=[2.2, 1, 2.2])
    ax0 = fig.add_subplot(gs[0, 0])
    im = _spectrogram(ax0, X, view, sr, t0=t0)
    ax0.set_title(f"input: {view}, {X.shape[0]} frames", loc="left")
    fig.colorbar(im, ax=ax0, pad=0.01, label="standardised\nlog power")
    t = frame_times(view, X.shape[0], sr) + t0
    ax1 = fig.add_subplot(gs[1, 0], sharex=ax0)
    ax1.plot(t[:len(alpha)], alpha, color="#b2182b")
    ax1.axhline(1 / len(alpha), color="#999999", lw=0.8, ls=":", label="uniform 1/T")
    ax1.set_ylabel("temporal α_t")
    ax1.legend(loc="upper right")
    ax2 = fig.add_subplot(gs[2, 0], sharex=ax0)
    M = np.outer(alpha, beta)
    order = np.argsort(-beta)
    im2 = ax2.imshow((M * H)[:, order].T, origin="lower", aspect="auto", cmap="RdBu_r",
                     extent=[t[0], t[len(alpha) - 1], -0.5, len(beta) - 0.5],
                     vmin=-np.abs(M * H).max(), vmax=np.abs(M * H).max())
    ax2.set_ylabel("feature d\n(sorted by β_d)")
    ax2.set_xlabel("time (s)")
    ax2.set_title("M ⊙ H = (α βᵀ) ⊙ H: summed over time, it is z", loc="left")
    fig.colorbar(im2, ax=ax2, pad=0.01)
    ax3 = fig.add_subplot(gs[2, 1])
    ax3.plot(beta[order], np.arange(len(beta)), color="#2166ac")
    ax3.set_xlabel("spatial β_d")
    ax3.set_ylim(-0.5, len(beta) - 0.5)
    ax3.set_yticks([])
    fig.add_subplot(gs[0:2, 1]).axis("off")
    if title:
        fig.suptitle(title)
    return fig
