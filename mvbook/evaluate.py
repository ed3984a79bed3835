"""Evaluation (§3.1.3): S segments per S-second file, posteriors averaged per
file; losses (Eq. 1) and accuracies for every branch, and the self-ensemble.
Chapter: *Training*.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .device import to_device
from .ensemble import predict, self_ensemble
from .views.segments import DeviceSegmenter, Segmenter, eval_segments

__all__ = ["EvalSet", "subsample", "eval_sets", "run", "accuracy", "ensemble_accuracy"]


@dataclass
class EvalSet:
    """A fixed set of files evaluated on all their test segments.

    Parameters
    ----------
    name : str
        ``"train"``, ``"val"`` or ``"test"``.
    clips : numpy.ndarray
        Dataset clip indices.
    labels : numpy.ndarray, (N,)
        The class of each clip.
    """
    name: str
    clips: np.ndarray      # dataset clip indices
    labels: np.ndarray     # (N,) class per clip

    def segments(self, seg: Segmenter | DeviceSegmenter):
        return eval_segments(self.clips, seg.test_starts())


def subsample(idx, n: int | None) -> np.ndarray:
    """``n`` evenly spaced entries of ``idx`` (all when ``n`` is None).

    Parameters
    ----------
    idx : array_like
        Clip indices.
    n : int or None
        How many to keep.

    Returns
    -------
    numpy.ndarray
        ``idx`` itself, or ``n`` of its entries, the first and last included.

    Examples
    --------
    >>> subsample([10, 11, 12, 13, 14], 3).tolist(), subsample([10, 11], None).tolist()
    ([10, 12, 14], [10, 11])
    """
    idx = np.asarray(idx)
    return idx if n is None or n >= len(idx) else idx[np.linspace(0, len(idx) - 1, n).round().astype(int)]


def eval_sets(split, labels: np.ndarray, seed, eval_clips: int | None = None) -> dict:
    """The three sets measured at every evaluation: ``train`` (a fixed random
    subset of the training clips, as large as the validation set; drawn by
    ``numpy.random.default_rng(seed)``, ``[seed, 1]`` for an int seed: the
    ``shared`` scheme's, :attr:`mvbook.seeds.RunSeeds.eval_subset`), ``val`` and
    ``test``; each capped at ``eval_clips`` files.

    Parameters
    ----------
    split : object
        A fold's split, with ``train``, ``val`` and ``test`` clip indices.
    labels : numpy.ndarray
        The class of every clip of the dataset.
    seed : int or sequence of int
        Seeds the draw of the ``train`` subset.
    eval_clips : int, optional
        The most files per set (:func:`subsample`); None: all.

    Returns
    -------
    dict
        ``"train"``, ``"val"``, ``"test"`` → :class:`EvalSet`.
    """
    # numpy's stub takes a list of ints or of numpy integers, not one that may mix them (default_rng does)
    sub_rng = np.random.default_rng([seed, 1] if isinstance(seed, (int, np.integer)) else seed)  # type: ignore[arg-type]
    n_sub = min(len(split.val), len(split.train))
    train_sub = np.sort(sub_rng.choice(split.train, n_sub, replace=False))
    return {name: EvalSet(name, idx, labels[idx])
            for name, idx in (("train", train_sub), ("val", split.val), ("test", split.test))
            for idx in [subsample(idx, eval_clips)]}


@torch.inference_mode()
def run(model, seg: Segmenter | DeviceSegmenter, es: EvalSet, device, *, batch_size: int = 64, autocast=None) -> dict:
    """Per-branch mean segment loss and per-file posteriors (averaged over segments).

    Runs under ``torch.inference_mode`` (no autograd records); losses and
    posteriors stay on the device until the end (one read-back per set).
    On CPU larger batches do not pay (the raw front end's activations then
    fall out of cache), hence 64.

    Parameters
    ----------
    model : torch.nn.Module
        A network whose forward maps view → segments to branch → logits.
    seg : mvbook.views.segments.Segmenter or mvbook.views.segments.DeviceSegmenter
        The dataset's views and segment grid (:func:`mvbook.views.segments.segmenter_for`).
    es : EvalSet
        The files evaluated.
    device : str or torch.device
        Where the network runs.
    batch_size : int
        Segments per forward pass; keyword only.
    autocast : callable, optional
        A context manager factory for mixed precision (None: full precision); keyword only.

    Returns
    -------
    dict
        ``{"loss": {k: float}, "probs": {k: (N, C) array}, "accuracy": {k: float}}``
        per branch k: the mean segment cross-entropy, the segment-averaged
        posteriors of each file, and the accuracy of their arg max.
    """
    device = torch.device(device)
    model.eval()
    clips, t0 = es.segments(seg)
    S = len(seg.test_starts())
    y = torch.as_tensor(np.repeat(es.labels, S), device=device)
    loss_sum: dict[str, torch.Tensor] = {}
    probs: dict[str, list[torch.Tensor]] = {}
    for a in range(0, len(clips), batch_size):
        x = {v: to_device(arr, device) for v, arr in seg.batch(clips[a:a + batch_size], t0[a:a + batch_size]).items()}
        with autocast() if autocast else nullcontext():
            out = model(x)
        for k, logits in out.items():
            logits = logits.float()
            loss = F.cross_entropy(logits, y[a:a + batch_size], reduction="sum")
            loss_sum[k] = loss_sum[k] + loss if k in loss_sum else loss
            probs.setdefault(k, []).append(torch.softmax(logits, dim=1))
    n = len(clips)
    result: dict[str, dict[str, Any]] = {"loss": {k: float(v) / n for k, v in loss_sum.items()},
                                         "probs": {}, "accuracy": {}}
    for k, p in probs.items():
        P = torch.cat(p).reshape(len(es.clips), S, -1).mean(dim=1).cpu().numpy()
        result["probs"][k] = P
        result["accuracy"][k] = accuracy(P, es.labels)
    return result


def accuracy(P: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of files whose arg-max class is the label.

    Parameters
    ----------
    P : array_like, shape (N, C)
        Per-file posteriors (averaged over the file's segments, :func:`run`).
    labels : array_like, int, shape (N,)
        True classes.

    Returns
    -------
    float
        Accuracy in [0, 1].

    Examples
    --------
    >>> accuracy([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]], [1, 1, 0])
    0.6666666666666666
    """
    return float(np.mean(predict(P) == np.asarray(labels)))


def ensemble_accuracy(probs: dict, weights: dict, labels) -> float:
    """Accuracy of the self-ensemble (Eq. 6–7).

    Parameters
    ----------
    probs : dict
        Branch → posteriors, shape (N, C).
    weights : dict
        Branch → its weight :math:`w_\\diamond^{(k)}` (the same branches).
    labels : array_like, int, shape (N,)
        True classes.

    Returns
    -------
    float
        Accuracy of :func:`~mvbook.ensemble.self_ensemble`'s posteriors.

    Examples
    --------
    >>> P = {"a": [[0.7, 0.3], [0.6, 0.4]], "b": [[0.1, 0.9], [0.1, 0.9]]}
    >>> ensemble_accuracy(P, {"a": 0.75, "b": 0.25}, [0, 1])    # (.55, .45) → 0, (.475, .525) → 1
    1.0
    """
    return accuracy(self_ensemble(probs, weights), labels)

