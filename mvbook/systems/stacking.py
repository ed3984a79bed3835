"""FusionNet (Ng et al.) as systems: one feature coding network per view
(``fcn_<view>``: :class:`mvbook.nets.fusionnet.CodingNet`, softmax plus centre
loss), then the meta-classifier (``fusionnet``) on their high-level features.
``crnn_meta`` is the same meta-classifier on the embeddings of the paper's
four single-view CRNNs (``mel`` … ``raw``): stacking without FusionNet's
larger coders, the control that tells its gain from stacking and from size.
The networks and the choices the paper leaves open are in :mod:`mvbook.nets.fusionnet`.
Chapter: *Beyond the paper: fusion strategies*.
"""
from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import evaluate
from ..blending import FixedWeights
from ..device import autocast
from ..ensemble import late_fusion
from ..errors import DataError
from ..nets.crnn import scaled
from ..nets.fusionnet import CENTER_LAMBDA, META_FILTERS, CodingNet, MetaCNN
from ..records import RunPaths, atomic_torch_save, grid_command
from ..schema import RunConfig
from ..views.cache import load_views
from ..views.features import Standardizer
from ..views.framing import VIEWS
from ..views.segments import Segmenter, eval_segments
from . import get_system
from .base import BranchSystem, Run, System, Training

__all__ = ["META_LR", "META_EPOCHS", "CoderSystem", "meta_epochs", "MetaSystem", "MetaTraining", "SYSTEMS"]

#: learning rate of the meta-classifier
META_LR = 1e-3
#: epochs of the meta-classifier by preset (another preset, as smoke, trains for its own epochs)
META_EPOCHS = {"paper": 100, "cpu": 100, "long": 100}


class CoderSystem(BranchSystem):
    """A feature coding network with its view's classifier head, trained on
    softmax + λ · centre loss (FusionNet's Eq. 13)."""
    network_class = CodingNet
    coder = "fcn"

    def extra_loss(self, model, z, y):
        return CENTER_LAMBDA * model.center_loss(z, y)


_CODERS = {v: CoderSystem(f"fcn_{v}", (v,), "single", origin="fusionnet") for v in VIEWS}


def meta_epochs(preset, overrides: dict | None) -> int:
    """Epochs of the meta-classifier.

    Parameters
    ----------
    preset : Preset
        The run's preset.
    overrides : dict or None
        The run's preset overrides.

    Returns
    -------
    int
        ``epochs=`` if given, else :data:`META_EPOCHS` of the preset, else
        (``smoke``) the preset's own epochs.
    """
    epochs = (overrides or {}).get("epochs")
    if epochs is not None:
        return int(epochs)
    return META_EPOCHS.get(preset.name, preset.epochs or META_EPOCHS["paper"])


class MetaSystem(System):
    """FusionNet's meta-classifier on the features of the finished coder runs
    (the systems ``needs``, one per view, all of kind ``coder``) of the same
    dataset, preset, fold and seed."""
    head = "meta"

    def __init__(self, name: str, needs: tuple, coder: str):
        super().__init__(name, VIEWS, "meta", origin="fusionnet", needs=needs)
        self.coder = coder

    def network(self, config: RunConfig) -> MetaCNN:
        return MetaCNN(config["meta"]["n_features"], config["n_classes"], config["preset"]["width"])

    def prepare(self, run: Run) -> Training:
        return MetaTraining(self, run)

    def coder_runs(self, run: Run) -> dict:
        """view → the finished coder run's record (with ``path``); raises
        ``RuntimeError`` naming every missing record or ``best.pt`` and the
        command that trains them."""
        ds, p = run.dataset, run.preset
        runs, missing, todo, orphans = {}, [], [], []
        for view, dep in zip(self.views, self.needs):
            paths = RunPaths(run.paths.out, ds.name, p.name, dep, run.fold, run.seed, run.paths.checkpoints)
            gaps = [f"{paths.record} (no record)"] if not paths.record.is_file() else []
            gaps += [f"{paths.best} (no best.pt checkpoint)"] if not paths.best.is_file() else []
            if gaps:
                missing += gaps
                todo.append(dep)
                orphans += [dep] if paths.record.is_file() else []
                continue
            runs[view] = json.loads(paths.record.read_text()) | {"path": str(paths.record)}
        if missing:
            cmd = grid_command(ds.name, p.name, todo, [run.fold], [run.seed], run.paths.out,
                               checkpoints=run.paths.checkpoints, data_root=run.data_root,
                               epochs=(run.overrides or {}).get("epochs"))
            n_rec = sum(m.endswith("(no record)") for m in missing)
            orphan = (f" The records of {', '.join(orphans)} exist without their checkpoints (trained elsewhere?): a "
                      "grid skips runs whose record exists, so delete those records, or pass the folder holding "
                      "the checkpoints as `checkpoints`.") if orphans else ""
            raise DataError(f"{self.name} needs the finished runs of {', '.join(todo)} (same dataset, preset, "
                            f"fold and seed): {n_rec} record(s) and {len(missing) - n_rec} best.pt checkpoint(s) "
                            f"missing; train them first with `{cmd}` (or put `{self.name}` in a grid: it runs "
                            "them first)." + orphan + " Missing:\n  " + "\n  ".join(missing))
        for rec in runs.values():
            cfg = rec["config"]
            # records without "coder" predate it and FusionNet (both came in 542f12f): CRNN runs
            if (cfg["dataset_fingerprint"], cfg["split_seed"], cfg.get("coder", "crnn")) != \
                    (ds.fingerprint(), run.split_seed, self.coder):
                raise DataError(f"{rec['path']}: not a {self.coder} run on this dataset with split seed "
                                f"{run.split_seed}")
        return runs


@torch.inference_mode()
def _embed(net, view: str, seg, clips, device, autocast_, batch_size: int = 64) -> np.ndarray:
    """High-level features (len(clips)·S, dim) of ``view``, clip-major, at the S
    evaluation segments of each clip (those of :mod:`mvbook.evaluate`)."""
    c, t0 = eval_segments(clips, seg.test_starts())
    out = []
    for a in range(0, len(c), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(seg.batch(c[a:a + batch_size], t0[a:a + batch_size])[view]))
        with autocast_() if autocast_ else nullcontext():
            out.append(net.embed({view: x.to(device)})[view].float().cpu())
    return torch.cat(out).numpy()


@torch.inference_mode()
def _evaluate(model, X: torch.Tensor, labels: np.ndarray, S: int, batch_size: int = 256) -> dict:
    """Mean segment loss, clip posteriors (mean over the S segments) and accuracy, as branch ``mv``."""
    model.eval()
    logits = torch.cat([model(X[a:a + batch_size]) for a in range(0, len(X), batch_size)]).float()
    y = torch.as_tensor(np.repeat(labels, S), device=logits.device)
    P = torch.softmax(logits, 1).reshape(len(labels), S, -1).mean(1).cpu().numpy()
    return {"loss": {"mv": float(F.cross_entropy(logits, y))}, "probs": {"mv": P},
            "accuracy": {"mv": evaluate.accuracy(P, labels)}}


class MetaTraining(Training):
    """The meta-CNN on the standardised coder features (one example per
    evaluation segment), an evaluation after every epoch."""
    branches = ("mv",)

    def __init__(self, system: MetaSystem, run: Run):
        t_start = time.time()
        p, ds, split, dev = run.preset, run.dataset, run.split, run.device
        runs = system.coder_runs(run)
        self.device = dev
        labels = run.labels
        self.sets = evaluate.eval_sets(split, labels, run.seeds.eval_subset, p.eval_clips)
        train_idx = np.asarray(split.train)
        self.X, S, dims = self._features(system, run, runs, train_idx)
        row = {c: r for r, c in enumerate(train_idx)}
        self.X["train"] = self.X["train_all"][torch.as_tensor(
            np.concatenate([np.arange(row[c] * S, row[c] * S + S) for c in self.sets["train"].clips]), device=dev)]
        self.y_train = torch.as_tensor(np.repeat(labels[train_idx], S), device=dev)
        self.S = S
        torch.manual_seed(run.seeds.init)
        n_features = self.X["train_all"].shape[1]
        self.model = MetaCNN(n_features, len(ds.classes), p.width).to(dev)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=META_LR)
        self.rule = FixedWeights({"mv": 1.0})
        E = meta_epochs(p, run.overrides)
        self.n_train = len(self.y_train)
        self.steps_per_epoch = max(1, math.ceil(self.n_train / p.batch_size))
        self.total_steps = E * self.steps_per_epoch
        self.eval_every = self.steps_per_epoch
        meta = {"lr": META_LR, "batch_size": p.batch_size, "segments_per_clip": S, "n_features": n_features,
                "feature_dims": dims, "filters": [scaled(f, p.width) for f in META_FILTERS],
                "heads": self.model.attention.heads, "train_examples": self.n_train,
                "standardised": "per feature, statistics of the training clips' segments"}
        coders = {v: {"system": r["system"], "record": r["path"], "git_commit": r["provenance"]["git_commit"],
                      "git_dirty": r["provenance"].get("git_dirty"), "n_params": r["config"]["n_params"],
                      "system_accuracy": r["system_accuracy"]} for v, r in runs.items()}
        sum_rule = {"accuracy": late_fusion(runs, tuple(runs))["accuracy"],
                    "rule": "mean of the coders' test posteriors (their own selected checkpoints)"}
        self.config = system.run_config(run, self.model, self.sets, E, self.steps_per_epoch, meta=meta,
                                        coders=coders, sum_rule=sum_rule)
        self.setup_seconds = time.time() - t_start

    def _features(self, system: MetaSystem, run: Run, runs: dict, train_idx: np.ndarray):
        """The coders' standardised high-level features (a tensor per need:
        ``train_all``, ``val``, ``test``), segments per clip, dims per view."""
        ds, split, dev = run.dataset, run.split, run.device
        feats = load_views(ds, system.views, cache_dir=run.cache_dir, progress=run.progress)
        autocast_ = autocast(dev)
        need = {"train_all": train_idx, "val": self.sets["val"].clips, "test": self.sets["test"].clips}
        H: dict[str, list[np.ndarray]] = {k: [] for k in need}
        dims: dict[str, int] = {}
        for v, dep in tqdm(list(zip(system.views, system.needs)), disable=not run.progress,
                           desc=f"{system.name}: coder features"):
            net = get_system(dep).load(runs[v], run.paths.checkpoints).to(dev)
            tf = {v: Standardizer.fit(feats[v], split.train)} if v != "raw" else {}
            seg = Segmenter({v: feats[v]}, ds.sr, ds.clip_seconds, tf)
            for k, idx in need.items():
                H[k].append(_embed(net, v, seg, idx, dev, autocast_))
            dims[v] = net.subnets[v].dim
            del net
        X = {k: np.concatenate(h, axis=1) for k, h in H.items()}
        norm = Standardizer.fit(X["train_all"], np.arange(len(X["train_all"])))
        atomic_torch_save({"mean": norm.mean, "std": norm.std, "feature_dims": dims},
                          run.paths.checkpoint_dir / "features.pt")
        return {k: torch.from_numpy(norm(x)).to(dev) for k, x in X.items()}, len(seg.test_starts()), dims

    def learning_rate(self, step: int) -> float:
        return META_LR

    def batches(self, rng):
        # ceil(n / batch) nearly equal batches: never one of a single example (batch norm needs two)
        while True:
            for b in np.array_split(rng.permutation(self.n_train), self.steps_per_epoch):
                yield torch.as_tensor(b, device=self.device)

    def loss(self, batch, weights: dict) -> torch.Tensor:
        return F.cross_entropy(self.model(self.X["train_all"][batch]), self.y_train[batch])

    def evaluate(self) -> dict:
        return {k: _evaluate(self.model, self.X[k], self.sets[k].labels, self.S) for k in self.sets}


SYSTEMS: dict[str, System] = {c.name: c for c in _CODERS.values()}
SYSTEMS["fusionnet"] = MetaSystem("fusionnet", tuple(c.name for c in _CODERS.values()), "fcn")
SYSTEMS["crnn_meta"] = MetaSystem("crnn_meta", VIEWS, "crnn")
