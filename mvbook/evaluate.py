"""Evaluation (§3.1.3): S segments per S-second file, posteriors averaged per
file; losses (Eq. 1) and accuracies for every branch, and the self-ensemble.
Chapter: *Training*.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .ensemble import predict, self_ensemble
from .segments import Segmenter, eval_segments


@dataclass
class EvalSet:
    """A fixed set of files evaluated on all their test segments."""
    name: str
    clips: np.ndarray      # dataset clip indices
    labels: np.ndarray     # (N,) class per clip

    def segments(self, seg: Segmenter):
        return eval_segments(self.clips, seg.test_starts())


@torch.inference_mode()
def run(model, seg: Segmenter, es: EvalSet, device, batch_size: int = 64, autocast=None) -> dict:
    """Per-branch mean segment loss and per-file posteriors (averaged over segments).

    Returns {"loss": {k: float}, "probs": {k: (N, C)}, "accuracy": {k: float}}.
    Runs under ``torch.inference_mode`` (no autograd records); losses and
    posteriors stay on the device until the end (one read-back per set).
    On CPU larger batches do not pay (the raw front end's activations then
    fall out of cache), hence 64.
    """
    device = torch.device(device)
    model.eval()
    clips, t0 = es.segments(seg)
    S = len(seg.test_starts())
    y = torch.as_tensor(np.repeat(es.labels, S), device=device)
    pin = device.type == "cuda"
    loss_sum, probs = {}, {}
    for a in range(0, len(clips), batch_size):
        x = {v: _to(arr, device, pin) for v, arr in seg.batch(clips[a:a + batch_size], t0[a:a + batch_size]).items()}
        with autocast() if autocast else nullcontext():
            out = model(x)
        for k, logits in out.items():
            logits = logits.float()
            l = F.cross_entropy(logits, y[a:a + batch_size], reduction="sum")
            loss_sum[k] = loss_sum[k] + l if k in loss_sum else l
            probs.setdefault(k, []).append(torch.softmax(logits, dim=1))
    n = len(clips)
    result = {"loss": {k: float(v) / n for k, v in loss_sum.items()}, "probs": {}, "accuracy": {}}
    for k, p in probs.items():
        P = torch.cat(p).reshape(len(es.clips), S, -1).mean(dim=1).cpu().numpy()
        result["probs"][k] = P
        result["accuracy"][k] = accuracy(P, es.labels)
    return result


def _to(a: np.ndarray, device: torch.device, pin: bool) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.pin_memory().to(device, non_blocking=True) if pin else t.to(device)


def accuracy(P: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of files whose arg-max class is the label."""
    return float(np.mean(predict(P) == np.asarray(labels)))


def ensemble_accuracy(probs: dict, weights: dict, labels) -> float:
    """Accuracy of the self-ensemble (Eq. 6–7)."""
    return accuracy(self_ensemble(probs, weights), labels)

