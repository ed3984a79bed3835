"""The protocol between a system and the training loop (:func:`mvbook.train.train`).

A :class:`System` names its views and where it comes from and can rebuild the
network of a finished run from its record; :meth:`System.prepare` turns one
run's request (a :class:`Run`) into a :class:`Training`: the network, its
branches, the evaluation sets, the batches, the loss and its weight rule, the
optimiser and schedule, the evaluation interval and the record's config. The
loop drives a :class:`Training` and knows no particular system.

:class:`BranchSystem` is the family of Fig. 1: a network whose branches each
have a cross-entropy loss (Eq. 1), weighted by Eq. 2, trained on random
aligned segments with the recipe of §3.1.3 — the paper's systems, CAB-CNN,
FusionNet's coders and the HPSS systems are all of it.
Chapter: *Training*.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import evaluate
from ..blending import RULES, AdaptiveBlender, FixedWeights, WeightRule, initial_weights
from ..checkpoints import load_weights
from ..config import Preset, learning_rate
from ..data import Dataset, Split
from ..device import autocast, to_device
from ..errors import ConfigError
from ..nets.crnn import MultiViewNet, n_params
from ..records import RunPaths
from ..schema import RunConfig, RunRecord
from ..seeds import DEFAULT_SCHEME, LEGACY_SCHEME, RunSeeds, run_seeds
from ..views.cache import load_views
from ..views.features import Standardizer
from ..views.segments import Segmenter, segmenter_for, train_batches

__all__ = ["Run", "Training", "System", "BranchSystem", "BranchTraining"]


@dataclass
class Run:
    """One run as :func:`mvbook.train.train` was asked for it, what
    :meth:`System.prepare` turns into a :class:`Training`.

    Parameters
    ----------
    dataset : mvbook.data.Dataset
        The loaded dataset.
    split : mvbook.data.Split
        The fold's clips: ``dataset.split(fold, split_seed)``.
    fold : int
        The test fold (1-based).
    seed : int
        The run's seed; with ``fold`` and ``seed_scheme`` it gives :attr:`seeds`.
    split_seed : int
        The seed that drew the fold's validation sources (0 in every committed record).
    preset : mvbook.config.Preset
        The preset with the caller's and then the system's overrides applied.
    device : torch.device
        Where the network trains.
    paths : mvbook.records.RunPaths
        Where the run's record and checkpoints go.
    cache_dir : Path, optional
        The feature cache (default :func:`mvbook.views.cache.cache_root`).
    progress : bool
        Progress bars while features are extracted and coders are read.
    data_root : Path, optional
        The data root as the caller named it (None: ``$MVBOOK_DATA``), passed on
        to the commands a system suggests for the runs it needs.
    overrides : dict, optional
        The preset fields the caller overrode (``epochs=3``), before the system's.
    seed_scheme : {"per_fold", "shared"}
        How ``seed`` and ``fold`` seed the run's random streams (:mod:`mvbook.seeds`).
    """
    dataset: Dataset
    split: Split
    fold: int
    seed: int
    split_seed: int
    preset: Preset
    device: torch.device
    paths: RunPaths
    cache_dir: Path | None = None
    progress: bool = True
    data_root: Path | None = None
    overrides: dict | None = None
    seed_scheme: str = DEFAULT_SCHEME

    @property
    def labels(self) -> np.ndarray:
        """The class index of every clip of the dataset, in clip order (int array)."""
        return np.array([c.label for c in self.dataset.clips])

    @property
    def seeds(self) -> RunSeeds:
        """The seeds of the run's random streams (:func:`mvbook.seeds.run_seeds`)."""
        return run_seeds(self.seed, self.fold, self.seed_scheme)


class Training(ABC):
    """A system prepared for one run: what the loop drives.

    Attributes: ``model`` (on the run's device), ``branches`` (the names of its
    outputs; ``main`` the one that selects the checkpoint), ``sets``
    (:class:`~mvbook.evaluate.EvalSet` per name: ``train``, ``val``, ``test``),
    ``optimizer``, ``rule`` (the branch weights of Eq. 2, a
    :class:`~mvbook.blending.WeightRule`: :class:`~mvbook.blending.AdaptiveBlender`
    or :class:`~mvbook.blending.FixedWeights`), ``steps_per_epoch``,
    ``total_steps``, ``eval_every`` (steps between evaluations), ``config``
    (the record's ``config``: a resumed checkpoint must match it) and
    ``setup_seconds`` (counted as training time).
    """
    model: nn.Module
    branches: tuple
    sets: dict
    optimizer: torch.optim.Optimizer
    rule: WeightRule
    steps_per_epoch: int
    total_steps: int
    eval_every: int
    config: dict
    setup_seconds: float = 0.0

    @property
    def main(self) -> str:
        """The branch whose validation accuracy selects the model (⊕ where there is one)."""
        return "mv" if "mv" in self.branches else self.branches[0]

    @abstractmethod
    def learning_rate(self, step: int) -> float:
        """The learning rate of the step that follows ``step`` steps."""

    @abstractmethod
    def batches(self, rng: np.random.Generator) -> Iterator:
        """Endless training batches, drawn from ``rng`` (checkpointed with the run)."""

    @abstractmethod
    def loss(self, batch, weights: dict) -> torch.Tensor:
        """The training loss of one batch with the current branch weights."""

    @abstractmethod
    def evaluate(self) -> dict:
        """set name → {"loss", "probs", "accuracy"}, each a dict over the branches."""


class System(ABC):
    """A trainable system: what :func:`mvbook.train.train` needs to know of it.
    Chapter: *Training*.

    Parameters
    ----------
    name : str
        Its registry name (:data:`mvbook.systems.REGISTRY`).
    views : tuple of str
        The views it reads.
    loss : str
        The record's name of its loss: ``single``, ``concat``, ``blend``, ``equal`` or ``meta``.
    origin : str
        ``"paper"`` for the rows of Table 3, else where the row comes from.
    needs : tuple of str
        Trained systems whose finished runs it reads (FusionNet's coders).
    overrides : tuple of (str, value)
        Preset fields it changes (the ablations).
    rule : str or None
        For ``loss="blend"``: its :data:`mvbook.blending.RULES` entry, stated in its records' config.

    A subclass supplies :meth:`prepare` (one run → a :class:`Training`) and
    :meth:`network` (a record's config → its untrained network); ``coder`` and
    ``head`` name its parts in the record.

    Examples
    --------
    >>> from mvbook.config import get_preset
    >>> from mvbook.systems import get_system
    >>> s = get_system("mv_w6")
    >>> s.views, s.loss, s.overrides, s.preset(get_preset("cpu")).window
    (('mel', 'gam', 'cqt', 'raw'), 'blend', (('window', 6),), 6)
    """
    coder = "crnn"
    head = "fc"

    def __init__(self, name: str, views: tuple, loss: str, origin: str = "paper", needs: tuple = (),
                 overrides: tuple = (), rule: str | None = None):
        if (loss == "blend") != (rule is not None) or (rule is not None and rule not in RULES):
            raise ConfigError(f"{name}: a blending system names one of the rules {sorted(RULES)}, no other does")
        self.name, self.views, self.loss, self.origin = name, tuple(views), loss, origin
        self.needs, self.overrides, self.rule = tuple(needs), tuple(overrides), rule

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, views={self.views}, loss={self.loss!r})"

    def preset(self, preset: Preset) -> Preset:
        """``preset`` with the system's ``overrides`` applied (they are not reductions)."""
        return replace(preset, **dict(self.overrides))

    @abstractmethod
    def prepare(self, run: Run) -> Training:
        """Everything the loop needs for ``run``; seeds torch with ``run.seeds.init`` just
        before it builds the network, so that the initial weights are the seed's."""

    @abstractmethod
    def network(self, config: RunConfig) -> nn.Module:
        """An untrained network of a run with this record ``config``."""

    def load(self, record: RunRecord, checkpoints=None, which: str = "best.pt") -> nn.Module | None:
        """The network of a finished run with the weights of its selected checkpoint
        (``which``: ``best.pt`` or ``checkpoint.pt``), on CPU, in eval mode; None when the
        checkpoint is not on this machine; a damaged one (it fails its checksum) is a
        :class:`~mvbook.checkpoints.CheckpointError` naming it."""
        path = RunPaths.of_record(record, checkpoints).checkpoint_dir / which
        if not path.exists():
            return None
        net = self.network(record["config"])
        net.load_state_dict(load_weights(path))
        return net.eval()

    def run_config(self, run: Run, model: nn.Module, sets: dict, epochs: int, steps_per_epoch: int,
                   **extra) -> dict:
        """The record's ``config`` of ``run`` (``extra`` appended); ``seed_scheme`` only where it
        is not the shared scheme, so that a shared-scheme config is the one of the runs made
        before the schemes were named (and their checkpoints resume)."""
        ds, p = run.dataset, run.preset
        scheme = {} if run.seed_scheme == LEGACY_SCHEME else {"seed_scheme": run.seed_scheme}   # as before it
        return {"system": self.name, "dataset": ds.name, "fold": run.fold, "seed": run.seed, **scheme,
                "split_seed": run.split_seed, "preset": p.to_dict(), "views": list(self.views), "loss": self.loss,
                "coder": self.coder, "head": self.head, "system_overrides": dict(self.overrides),
                "epochs": epochs, "steps_per_epoch": steps_per_epoch, "steps": epochs * steps_per_epoch,
                "n_classes": len(ds.classes), "classes": list(ds.classes), "sr": ds.sr,
                "clip_seconds": ds.clip_seconds, "dataset_fingerprint": ds.fingerprint(),
                "n_params": n_params(model),
                "split": {k: len(v.clips) for k, v in sets.items()} | {"train_all": len(run.split.train)},
                **({"blending": RULES[self.rule].to_dict()} if self.rule else {}), **extra}


class BranchSystem(System):
    """Fig. 1's family: ``network_class`` on the system's views, one loss per
    branch weighted by Eq. 2 — by Algorithm 1 (``loss="blend"``, an
    :class:`~mvbook.blending.AdaptiveBlender` under the system's ``rule``) or
    fixed (:func:`~mvbook.blending.initial_weights` of ``loss``) — and the
    recipe of §3.1.3. A subclass changes ``network_class`` or adds
    :meth:`extra_loss`.

    Parameters
    ----------
    name, views, loss, origin, needs, overrides, rule
        As for :class:`System`.

    Examples
    --------
    >>> from mvbook.systems import get_system
    >>> s = get_system("mv_w6")
    >>> isinstance(s, BranchSystem), s.network_class.__name__
    (True, 'MultiViewNet')
    """
    network_class: type[MultiViewNet] = MultiViewNet

    def build(self, n_classes: int, sr: int, width: float, raw_bands: int) -> MultiViewNet:
        return self.network_class(n_classes, sr=sr, width=width, views=self.views, raw_bands=raw_bands)

    def network(self, config: RunConfig) -> nn.Module:
        p = config["preset"]
        return self.build(config["n_classes"], config["sr"], p["width"], p.get("raw_bands", 64))

    def extra_loss(self, model: nn.Module, z: dict, y: torch.Tensor) -> torch.Tensor | None:
        """A loss term beyond Eq. 2 on the embeddings ``z`` (none here)."""
        return None

    def prepare(self, run: Run) -> Training:
        return BranchTraining(self, run)


class BranchTraining(Training):
    """A :class:`BranchSystem` prepared for one run (see :class:`Training`): the
    views loaded from the cache (extracted where missing) and standardised on
    the training clips, the network built on the run's device from the seed's
    initial weights, Adam, the weight rule, the evaluation sets and the
    record's ``config``.

    Parameters
    ----------
    system : BranchSystem
        The system.
    run : Run
        The run; its preset gives the epochs, batch size, learning rates, the
        evaluation interval and the blending window, reference and power.
    """

    def __init__(self, system: BranchSystem, run: Run):
        p, ds, split, dev = run.preset, run.dataset, run.split, run.device
        self.system, self.p, self.device = system, p, dev
        self.E = p.epochs_for(ds.name)
        self.steps_per_epoch = math.ceil(len(split.train) / p.batch_size)
        self.total_steps = self.E * self.steps_per_epoch
        self.eval_every = p.eval_every
        feats = load_views(ds, system.views, cache_dir=run.cache_dir, progress=run.progress)
        transforms = {v: Standardizer.fit(feats[v], split.train) for v in system.views if v != "raw"}
        self.seg = segmenter_for(Segmenter(feats, ds.sr, ds.clip_seconds, transforms), dev)
        torch.manual_seed(run.seeds.init)
        self.model = system.build(len(ds.classes), ds.sr, p.width, p.raw_bands).to(dev)
        self.branches = self.model.branches
        # fused: one kernel for all parameters (same Adam update; CPU and CUDA)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=p.lr_warmup,
                                          fused=dev.type in ("cpu", "cuda"))
        self.rule: WeightRule = (      # a rule is named by the blending systems (loss "blend") alone
            AdaptiveBlender(self.branches, window=p.window, reference=p.reference, power=p.power,
                            rule=RULES[system.rule]) if system.rule is not None
            else FixedWeights(initial_weights(self.branches, system.loss)))
        self.labels = run.labels
        self.sets = evaluate.eval_sets(split, self.labels, run.seeds.eval_subset, p.eval_clips)
        self.train_clips = split.train
        self.config = system.run_config(run, self.model, self.sets, self.E, self.steps_per_epoch)
        self.autocast = autocast(dev)

    def learning_rate(self, step: int) -> float:
        return learning_rate(step / self.steps_per_epoch, self.p, self.E)

    def batches(self, rng):
        for clips, t0 in train_batches(self.train_clips, self.p.batch_size, self.seg.t_max, rng):
            x = {v: to_device(a, self.device) for v, a in self.seg.batch(clips, t0).items()}
            yield x, to_device(self.labels[clips], self.device)

    def loss(self, batch, weights: dict) -> torch.Tensor:
        x, y = batch
        with self.autocast() if self.autocast else nullcontext():
            logits, z = self.model(x, embeddings=True)
        losses = {k: F.cross_entropy(logits[k].float(), y) for k in self.branches}                # Eq. 1
        loss = sum(weights[k] * losses[k] for k in self.branches if weights[k] > 0)              # Eq. 2
        extra = self.system.extra_loss(self.model, z, y)
        return loss if extra is None else loss + extra

    def evaluate(self) -> dict:
        return {name: evaluate.run(self.model, self.seg, es, self.device, autocast=self.autocast)
                for name, es in self.sets.items()}
