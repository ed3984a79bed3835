r"""FusionNet (Ng et al., "Multi-level local feature coding fusion for music
genre recognition", IEEE Access 2020) on this book's views: a comparison
system, not part of the paper this book reproduces.

FusionNet trains one *feature coding network* per view (§III-C), each with a
softmax plus centre loss (§III-D), then a *meta-CNN* on the concatenation of
their high-level features (§III-E). Here:

- :class:`FeatureCodingNet` — the view's CNN front end is the conv/pool blocks
  of our CRNN for that view (Tables 1–2: :class:`~mvbook.models.CRNN2D` for the
  2-D views, :class:`~mvbook.models.CRNN1D` with its raw front end for ``raw``),
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
  ``MultiViewNet(coder="fcn")`` puts the view's classifier head (fc → fc → fc)
  on R_F and adds :class:`CenterLoss` (λ = ``train.CENTER_LAMBDA`` = 10⁻³, Eq. 13).
- :class:`MetaCNN` — three 1-D conv blocks (32, 64, 32 filters × width; conv
  → BN → ELU → max-pool 2) over the standardised, concatenated high-level
  features read as a one-channel sequence, self-attention over the sequence
  positions, flatten → fc → dropout → BN → fc (#classes).
- :func:`train_meta` — system ``fusionnet``: reads the finished ``fcn_<view>``
  runs, extracts their features and trains the meta-CNN; writes a record with
  the schema of :func:`mvbook.train.train`'s.

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
  :mod:`mvbook.models`).
- Centre loss: the mean (not the sum) of ½‖z_i − c_{y_i}‖² over the batch, so
  that λ does not depend on the batch size; the centres are parameters trained
  by the same Adam optimiser (Wen et al. move them with their own rate; with
  Adam, whose step does not depend on the gradient's scale, they move at the
  network's learning rate whatever λ), initialised at 0.
- Meta-classifier: Adam, lr ``META_LR`` = 10⁻³, batches of the preset's size,
  ``META_EPOCHS`` epochs (100; ``smoke``: the preset's 2; ``epochs=`` overrides
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
MultiViewNet(coder="fcn"), one 2-D view    26,158,845    1,648,149
  (coder, view head, centre loss)
MetaCNN on 4 views (2048 / 512 features)   8,415,593     134,945
CRNN2D, for comparison                     2,998,432     188,584
=========================================  ============  ============

Systems ``fcn_<view>`` and ``fusionnet`` of :data:`mvbook.config.SYSTEMS`; ``python -m mvbook grid
--systems fusionnet`` trains the four coders first.
"""
from __future__ import annotations

import copy
import json
import math
import shlex
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .models import (
    CRNN1D,
    CRNN2D,
    DROPOUT,
    N_RAW_BANDS,
    conv_pool,
    n_params,
    raw_front_end,
    scaled,
)

N_CLUSTERS = 20            # K of Eq. 1–5 (the paper: 20, to bound the attention's memory)
N_HEADS = 4                # N of Algorithm 3 (see the module docstring)
N_LEVELS = 5               # NetVLAD taps: the last five conv blocks
META_FILTERS = (32, 64, 32)
META_LR = 1e-3
META_EPOCHS = {"paper": 100, "cpu": 100}    # other presets (smoke): the preset's own epochs


def _float32(x: torch.Tensor):
    """Context: autocast off on ``x``'s device (NetVLAD's normalisations, softmaxes
    and the attention run in float32)."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.autocast(x.device.type, enabled=False)
    return nullcontext()


def _n_heads(dim: int, heads: int = N_HEADS) -> int:
    """The largest head count ≤ ``heads`` that divides ``dim``."""
    return max(h for h in range(1, max(1, min(heads, dim)) + 1) if dim % h == 0)


class NetVLAD(nn.Module):
    r"""NetVLAD (Eq. 1–5) of a descriptor set ``f`` (B, N, D) into (B, K, D).

    Soft assignment :math:`a_j(k) = \mathrm{softmax}_k(w_k^\top f_j + b_k)` (Eq. 4),
    residual aggregation :math:`V(k, d) = \sum_j a_j(k)\,(f_j(d) - c_k(d))` (Eq. 5),
    then intra-normalisation (each row :math:`V(k, :)` to unit L2 norm) and L2
    normalisation of the whole K·D vector (Algorithm 2, step 9).
    """

    def __init__(self, dim: int, clusters: int = N_CLUSTERS):
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
    """

    def __init__(self, dim: int, heads: int = N_HEADS):
        super().__init__()
        if dim % heads:
            raise ValueError(f"{heads} heads do not divide {dim} features")
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


class FeatureCodingNet(nn.Module):
    """FusionNet's feature coding network on one view (module docstring).

    Input as the view's CRNN takes it: (B, T, 64) for the 2-D views, (B,
    samples) for ``raw``; output the high-level feature R_F (B, ``dim``).
    The conv blocks keep the CRNN's names (``conv1``…``conv6``, and ``conv01``,
    ``conv02`` for raw) and are built by the CRNN's own constructor.
    """

    def __init__(self, view: str, width: float = 1.0, sr: int = 44100, raw_bands: int = N_RAW_BANDS,
                 clusters: int = N_CLUSTERS, heads: int = N_HEADS):
        super().__init__()
        self.view, self.raw = view, view == "raw"
        cnn = CRNN1D(width, sr, raw_bands) if self.raw else CRNN2D(width)
        if self.raw:
            self.conv01, self.conv02, self.pool02 = cnn.conv01, cnn.conv02, cnn.pool02
        self.n_blocks = 6
        for l in range(1, self.n_blocks + 1):                    # only the blocks: no GRU, no attention pooling
            setattr(self, f"conv{l}", getattr(cnn, f"conv{l}"))
            setattr(self, f"pool{l}", getattr(cnn, f"pool{l}"))
        del cnn
        self.taps = tuple(range(self.n_blocks - N_LEVELS + 1, self.n_blocks + 1))
        channels = [getattr(self, f"conv{l}")[0].out_channels for l in self.taps]
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
        for l in range(1, self.n_blocks + 1):
            x = conv_pool(getattr(self, f"conv{l}"), getattr(self, f"pool{l}"), x)
            if l in self.taps:
                maps.append(x)
        return maps

    def coding(self, x: torch.Tensor) -> torch.Tensor:
        """X ∈ R^{M×K} (B, M, K): the five NetVLAD codings, each transposed to D_l × K, stacked."""
        maps = self.levels(x)
        with _float32(maps[0]):
            codes = [vlad(m.float().flatten(2).transpose(1, 2)) for vlad, m in zip(self.vlad, maps)]
            return torch.cat([c.transpose(1, 2) for c in codes], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        X = self.coding(x)
        with _float32(X):
            Z = self.attention(X)
            return self.fc2(self.bn(self.drop(self.fc1(Z.flatten(1)))))


class CenterLoss(nn.Module):
    r"""Centre loss (Eq. 12) as a mean over the batch:
    :math:`\frac{1}{B}\sum_i \tfrac12 \lVert z_i - c_{y_i} \rVert^2`, with the class
    centres (n_classes, dim) a parameter (initialised at 0) trained by the
    network's optimiser."""

    def __init__(self, n_classes: int, dim: int):
        super().__init__()
        self.centers = nn.Parameter(torch.zeros(n_classes, dim))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 0.5 * (z - self.centers[y]).pow(2).sum(1).mean()


class MetaCNN(nn.Module):
    """FusionNet's meta-classifier (§III-E): features (B, n_features) → logits (B, n_classes)."""

    def __init__(self, n_features: int, n_classes: int, width: float = 1.0, heads: int = N_HEADS):
        super().__init__()
        layers, c, L = [], 1, n_features
        for f in META_FILTERS:
            f = scaled(f, width)
            layers += [nn.Conv1d(c, f, 3, padding=1, bias=False), nn.BatchNorm1d(f), nn.ELU(), nn.MaxPool1d(2)]
            c, L = f, L // 2
        if L < 1:
            raise ValueError(f"the meta-CNN needs at least 8 features, got {n_features}")
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


# --- the meta-classifier's training -------------------------------------------------------

def meta_epochs(preset, overrides: dict) -> int:
    """Epochs of the meta-classifier: ``epochs=`` if given, else ``META_EPOCHS``
    of the preset, else (``smoke``) the preset's own epochs."""
    if overrides.get("epochs") is not None:
        return int(overrides["epochs"])
    return META_EPOCHS.get(preset.name, preset.epochs or META_EPOCHS["paper"])


def coder_runs(system: str, dataset: str, preset: str, fold: int, seed: int, out, checkpoints=None,
               data_root=None, overrides: dict | None = None) -> dict:
    """view → the finished coder run's record (with ``path``) for a meta system;
    raises ``RuntimeError`` naming every missing record or ``best.pt`` and the
    command that trains them."""
    from .config import dependencies, system_spec
    from .results import record_path
    out = Path(out)
    ckpt_dir = Path(checkpoints) if checkpoints else out / "checkpoints"
    runs, missing, todo = {}, [], []
    for view, dep in zip(system_spec(system).views, dependencies(system)):
        rec_path = out / record_path(dataset, preset, dep, fold, seed)
        best = ckpt_dir / record_path(dataset, preset, dep, fold, seed).with_suffix("") / "best.pt"
        gaps = [f"{rec_path} (no record)"] if not rec_path.is_file() else []
        gaps += [f"{best} (no best.pt checkpoint)"] if not best.is_file() else []
        if gaps:
            missing += gaps
            todo.append(dep)
            continue
        rec = json.loads(rec_path.read_text())
        rec["path"] = str(rec_path)
        runs[view] = rec
    if missing:
        cmd = ["python", "-m", "mvbook", "grid", "--dataset", dataset, "--preset", preset, "--systems", *todo,
               "--folds", str(fold), "--seeds", str(seed), "--out", str(out)]
        cmd += ["--checkpoints", str(checkpoints)] if checkpoints else []
        cmd += ["--data-root", str(data_root)] if data_root else []
        cmd += ["--epochs", str(overrides["epochs"])] if (overrides or {}).get("epochs") is not None else []
        n_rec = sum(m.endswith("(no record)") for m in missing)
        kept = [d for d in todo if (out / record_path(dataset, preset, d, fold, seed)).is_file()]
        orphan = (f" The records of {', '.join(kept)} exist without their checkpoints (trained elsewhere?): a grid "
                  "skips runs whose record exists, so delete those records, or pass the folder holding the "
                  "checkpoints as `checkpoints`.") if kept else ""
        raise RuntimeError(f"{system} needs the finished runs of {', '.join(todo)} (same dataset, preset, fold "
                           f"and seed): {n_rec} record(s) and {len(missing) - n_rec} best.pt checkpoint(s) "
                           f"missing; train them first with `{shlex.join(cmd)}` (or put `{system}` in a grid: "
                           "it runs them first)." + orphan + " Missing:\n  " + "\n  ".join(missing))
    return runs


@torch.inference_mode()
def _embed(net, view: str, seg, clips, device, autocast, batch_size: int = 64) -> np.ndarray:
    """High-level features (len(clips)·S, dim) of ``view``, clip-major, at the S
    evaluation segments of each clip (those of :mod:`mvbook.evaluate`)."""
    from .segments import eval_segments
    c, t0 = eval_segments(clips, seg.test_starts())
    out = []
    for a in range(0, len(c), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(seg.batch(c[a:a + batch_size], t0[a:a + batch_size])[view]))
        with autocast() if autocast else nullcontext():
            out.append(net.embed({view: x.to(device)})[view].float().cpu())
    return torch.cat(out).numpy()


@torch.inference_mode()
def _evaluate(model, X: torch.Tensor, labels: np.ndarray, S: int, batch_size: int = 256) -> dict:
    """Mean segment loss, clip posteriors (mean over the S segments) and accuracy."""
    from .evaluate import accuracy
    model.eval()
    logits = torch.cat([model(X[a:a + batch_size]) for a in range(0, len(X), batch_size)]).float()
    y = torch.as_tensor(np.repeat(labels, S), device=logits.device)
    P = torch.softmax(logits, 1).reshape(len(labels), S, -1).mean(1).cpu().numpy()
    return {"loss": float(F.cross_entropy(logits, y)), "probs": P, "accuracy": accuracy(P, labels)}


def train_meta(dataset: str = "synthetic", system: str = "fusionnet", fold: int = 1, preset: str = "smoke",
               seed: int = 0, device: str = "auto", root=None, out="runs", checkpoints=None, cache_dir=None,
               progress: bool = True, fresh: bool = False, callback=None, split_seed: int = 0,
               **overrides) -> dict:
    """Train FusionNet's meta-classifier on the features of the finished
    ``fcn_<view>`` runs of the same dataset, preset, fold and seed, and write
    its results record (the schema of :func:`mvbook.train.train`'s, branch
    ``mv``); returns the record. Arguments as :func:`mvbook.train.train`.

    The run is short and keeps no resumable checkpoint: a killed run starts
    over (``fresh`` changes nothing) and leaves no record; the selected
    meta-CNN is saved as ``meta.pt`` in the run's checkpoint folder.
    """
    from . import evaluate
    from .config import get_preset, system_preset, system_spec
    from .data import load_dataset
    from .features import Standardizer, load_views
    from .notebooks import load_model
    from .results import (
        atomic_torch_save,
        code_version,
        provenance,
        record_path,
        write_record,
    )
    from .segments import Segmenter
    from .train import (
        _empty_curves,
        _record,
        _subsample,
        autocast_dtype,
        resolve_device,
    )

    t_start, code = time.time(), code_version()
    spec = system_spec(system)
    if spec.loss != "meta":
        raise ValueError(f"{system!r} is not a meta-classifier system")
    p = system_preset(system, get_preset(preset, **overrides))
    ds = load_dataset(dataset, root)
    runs = coder_runs(system, ds.name, p.name, fold, seed, out, checkpoints, root, overrides)
    for v, rec in runs.items():
        cfg = rec["config"]
        if (cfg["dataset_fingerprint"], cfg["split_seed"], cfg.get("coder")) != (ds.fingerprint(), split_seed, "fcn"):
            raise RuntimeError(f"{rec['path']}: not an fcn run on this dataset with split seed {split_seed}")
    dev = resolve_device(device)
    split = ds.split(fold, split_seed)
    views = spec.views
    labels = np.array([c.label for c in ds.clips])
    sub_rng = np.random.default_rng([seed, 1])                   # the training subset of train.py
    n_sub = min(len(split.val), len(split.train))
    train_sub = np.sort(sub_rng.choice(split.train, n_sub, replace=False))
    sets = {name: evaluate.EvalSet(name, idx, labels[idx])
            for name, idx in (("train", train_sub), ("val", split.val), ("test", split.test))
            for idx in [_subsample(idx, p.eval_clips)]}
    train_idx = np.asarray(split.train)

    # 1. the coders' high-level features at the evaluation segments of every clip needed
    feats = load_views(ds, views, cache_dir=cache_dir, progress=progress)
    amp = autocast_dtype(dev)
    autocast = (lambda: torch.autocast(dev.type, dtype=amp)) if amp is not None else None
    need = {"train_all": train_idx, "val": sets["val"].clips, "test": sets["test"].clips}
    H = {k: [] for k in need}
    dims = {}
    for v in tqdm(views, disable=not progress, desc=f"{system}: coder features"):
        net = load_model(runs[v], checkpoints).to(dev)
        tf = {v: Standardizer.fit(feats[v], split.train)} if v != "raw" else {}
        seg = Segmenter({v: feats[v]}, ds.sr, ds.clip_seconds, tf)
        for k, idx in need.items():
            H[k].append(_embed(net, v, seg, idx, dev, autocast))
        dims[v] = net.subnets[v].dim
        del net
    S = len(seg.test_starts())
    X = {k: np.concatenate(h, axis=1) for k, h in H.items()}
    norm = Standardizer.fit(X["train_all"], np.arange(len(X["train_all"])))
    X = {k: torch.from_numpy(norm(x)).to(dev) for k, x in X.items()}
    row = {c: r for r, c in enumerate(train_idx)}
    X["train"] = X["train_all"][torch.as_tensor(np.concatenate([np.arange(row[c] * S, row[c] * S + S)
                                                                for c in sets["train"].clips]), device=dev)]
    y_train = torch.as_tensor(np.repeat(labels[train_idx], S), device=dev)
    extract_seconds = time.time() - t_start

    # 2. the meta-CNN
    torch.manual_seed(seed)
    n_features = X["train_all"].shape[1]
    model = MetaCNN(n_features, len(ds.classes), p.width).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=META_LR)
    E = meta_epochs(p, overrides)
    n_train = len(y_train)
    steps_per_epoch = max(1, math.ceil(n_train / p.batch_size))
    total_steps = E * steps_per_epoch
    config = {"system": system, "dataset": ds.name, "fold": fold, "seed": seed, "split_seed": split_seed,
              "preset": p.to_dict(), "views": list(views), "loss": spec.loss, "coder": spec.coder,
              "head": "meta", "system_overrides": dict(spec.overrides), "epochs": E,
              "steps_per_epoch": steps_per_epoch, "steps": total_steps, "n_classes": len(ds.classes),
              "classes": list(ds.classes), "sr": ds.sr, "clip_seconds": ds.clip_seconds,
              "dataset_fingerprint": ds.fingerprint(), "n_params": n_params(model),
              "split": {k: len(v.clips) for k, v in sets.items()} | {"train_all": len(split.train)},
              "meta": {"lr": META_LR, "batch_size": p.batch_size, "segments_per_clip": S,
                       "n_features": n_features, "feature_dims": dims, "filters": [scaled(f, p.width)
                                                                                  for f in META_FILTERS],
                       "heads": model.attention.heads, "train_examples": n_train,
                       "standardised": "per feature, statistics of the training clips' segments"},
              "coders": {v: {"system": r["system"], "record": r["path"],
                             "git_commit": r["provenance"]["git_commit"],
                             "git_dirty": r["provenance"].get("git_dirty"), "n_params": r["config"]["n_params"],
                             "system_accuracy": r["system_accuracy"]} for v, r in runs.items()}}

    rng = np.random.default_rng([seed, 0])
    state = {"step": 0, "curves": _empty_curves(("mv",)), "best": None, "elapsed": 0.0}
    best_model = None
    clock = time.time()

    def measure(step: int):
        nonlocal best_model
        res = {k: _evaluate(model, X[k], sets[k].labels, S) for k in sets}
        c = state["curves"]
        c["step"].append(step)
        c["epoch"].append(step / steps_per_epoch)
        c["lr"].append(META_LR)
        c["weights"]["mv"].append(1.0)
        for s in ("train", "val", "test"):
            c["loss"][s]["mv"].append(res[s]["loss"])
        for s in ("val", "test"):
            c["accuracy"][s]["mv"].append(res[s]["accuracy"])
            c["accuracy"][s]["self_ensemble"].append(
                evaluate.ensemble_accuracy({"mv": res[s]["probs"]}, {"mv": 1.0}, sets[s].labels))
        b = state["best"]
        va, vl = res["val"]["accuracy"], res["val"]["loss"]
        if b is None or va > b["val_accuracy"] or (va == b["val_accuracy"] and vl < b["val_loss"]):
            state["best"] = {"step": step, "epoch": step / steps_per_epoch, "val_accuracy": va, "val_loss": vl,
                             "weights": {"mv": 1.0}, "test_probs": {"mv": res["test"]["probs"]},
                             "test_accuracy": {"mv": res["test"]["accuracy"]}}
            best_model = copy.deepcopy({k: t.detach().cpu() for k, t in model.state_dict().items()})
        state["step"] = step
        if callback:
            callback({"step": step, "total_steps": total_steps, "curves": c, "best": state["best"]})

    measure(0)
    step = 0
    bar = tqdm(total=total_steps, disable=not progress, desc=f"{system} fold {fold}", unit="step")
    for _ in range(E):
        model.train()
        # ceil(n / batch) nearly equal batches: never one of a single example (batch norm needs two)
        for b in np.array_split(rng.permutation(n_train), steps_per_epoch):
            b = torch.as_tensor(b, device=dev)
            loss = F.cross_entropy(model(X["train_all"][b]), y_train[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            bar.update(1)
        measure(step)
        bar.set_postfix(val_acc=f"{state['curves']['accuracy']['val']['mv'][-1]:.3f}",
                        best=f"{state['best']['val_accuracy']:.3f}")
    bar.close()
    state["elapsed"] = extract_seconds + time.time() - clock

    run_rel = record_path(ds.name, p.name, system, fold, seed).with_suffix("")
    ckpt_dir = Path(checkpoints) if checkpoints else Path(out) / "checkpoints"
    atomic_torch_save({"model": best_model, "mean": norm.mean, "std": norm.std, "config": config},
                      ckpt_dir / run_rel / "meta.pt")
    record = _record(config, state, ("mv",), sets["test"], ds, spec.loss)
    record["provenance"] = provenance(dev, state["elapsed"], time.time() - t_start, code)
    record["provenance"]["autocast"] = str(amp).removeprefix("torch.") if amp is not None else "none"
    path = write_record(record, Path(out) / record_path(ds.name, p.name, system, fold, seed))
    record["path"] = str(path)
    return record
