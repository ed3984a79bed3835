"""Where tensors live and at which precision: the device choice, host-to-device
copies, and mixed precision (autocast) on and off. Chapter: *Training*.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from contextlib import nullcontext

import numpy as np
import torch

from .errors import ConfigError

__all__ = ["check_device", "resolve_device", "keep_freed_memory", "to_device", "autocast_dtype", "autocast",
           "autocast_name",
           "full_precision"]


def check_device(device: str) -> None:
    """A :class:`~mvbook.errors.ConfigError` where ``device`` names no device
    (``auto``, ``cpu``, ``cuda``, ``cuda:1`` …); whether it is present is
    :func:`resolve_device`'s to say, where the run is."""
    if device != "auto":
        try:
            torch.device(device)
        except (RuntimeError, TypeError) as e:
            raise ConfigError(f"--device {device!r} is not a device: use auto, cpu, cuda, cuda:1 … "
                              f"({str(e).splitlines()[0][:120]})") from None


def resolve_device(device="auto") -> torch.device:
    """``auto`` → CUDA when present, else CPU; a name or a ``torch.device`` as it is.
    Asking for CUDA where torch sees none is an error, not a silent CPU run."""
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' asked for, but torch sees no CUDA GPU; use --device cpu or auto")
    check_device(device)
    return torch.device(device)


_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4          # glibc's mallopt parameters (malloc.h)


@functools.cache
def keep_freed_memory() -> bool:
    """Keep freed host memory in the process for reuse (glibc: no ``mmap`` per large
    block, no trimming of the heap), instead of giving it back to the system and
    page-faulting it in again. A CPU training step frees and re-allocates the same
    large temporaries (the raw CRNN's 68 MB activations at the ``cpu`` preset) every
    step, and on these machines first-touching fresh pages cost ~20 % of a step
    (benchmarks/README.md). The numbers computed do not change; the process keeps
    its peak memory. Once per process; True where it took effect (glibc only)."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = getattr(ctypes.CDLL(name), "mallopt", None) if name else None
    except OSError:
        return False
    return bool(mallopt and mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, 2 ** 31 - 1))


def to_device(a: np.ndarray | torch.Tensor, dev: torch.device) -> torch.Tensor:
    """numpy → tensor on ``dev``; to a GPU through pinned memory, asynchronously
    (a tensor already on ``dev`` is returned as it is)."""
    if isinstance(a, torch.Tensor):
        return a.to(dev)
    t = torch.from_numpy(np.ascontiguousarray(a))
    if dev.type == "cuda":
        return t.pin_memory().to(dev, non_blocking=True)
    return t.to(dev)


def autocast_dtype(dev: torch.device) -> torch.dtype | None:
    """Mixed precision of the forward pass: bfloat16 on CUDA; on CPU float32 unless
    the environment sets ``MVBOOK_CPU_BF16=1``: bfloat16 autocast for the
    convolutions only (batch-norm statistics, the biGRU, attention, the heads and
    the losses stay float32). On a CPU with AVX512-BF16 that makes a paper-scale
    step 1.5x faster (7.6 → 5.1 s on 2 Zen 4 cores), a ``cpu``-preset step 1.1x;
    see benchmarks/README.md. ``MVBOOK_AMP=0`` turns autocast off on CUDA too."""
    if os.environ.get("MVBOOK_AMP", "1") == "0":
        return None
    if dev.type == "cuda":
        return torch.bfloat16
    if dev.type == "cpu" and os.environ.get("MVBOOK_CPU_BF16", "0") == "1":
        return torch.bfloat16
    return None


def autocast(dev: torch.device):
    """A factory of autocast contexts for ``dev`` (:func:`autocast_dtype`), or None
    when the forward pass runs in full precision."""
    amp = autocast_dtype(dev)
    return (lambda: torch.autocast(dev.type, dtype=amp)) if amp is not None else None


def autocast_name(dev: torch.device) -> str:
    """The autocast dtype of ``dev`` as a record states it (``"none"`` without)."""
    amp = autocast_dtype(dev)
    return str(amp).removeprefix("torch.") if amp is not None else "none"


def full_precision(x: torch.Tensor):
    """Context: autocast off on ``x``'s device, where it is on (else a no-op)."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.autocast(x.device.type, enabled=False)
    return nullcontext()
