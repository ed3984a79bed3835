"""A run's files on disk that must not lie or harm: checkpoints that load
without running code (``torch.load(..., weights_only=True)``: tensors and plain
types only), clear errors for damaged ones, and one writer per run (a lock).
Chapter: *Training*.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy._core.multiarray import _reconstruct

from .errors import DataError, RunConflictError
from .records import atomic_torch_save

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "save_weights", "load_weights", "RunLock",
           "wait_for_run", "start_over", "checksum"]


class CheckpointError(DataError, RuntimeError):
    """A checkpoint that cannot be used: says which file and what to do."""


def _arrays_to_tensors(best: dict | None) -> dict | None:
    if best is None:
        return None
    return best | {"test_probs": {k: torch.from_numpy(np.asarray(v)) for k, v in best["test_probs"].items()}}


def _tensors_to_arrays(best: dict | None) -> dict | None:
    if best is None:
        return None
    return best | {"test_probs": {k: v.cpu().numpy() if isinstance(v, torch.Tensor) else v
                                  for k, v in best["test_probs"].items()}}


# Checkpoints written before the posteriors were stored as tensors hold numpy arrays: numpy's
# array constructor (it builds an array from bytes and runs no code) is the one global allowed.
# (typed as torch.serialization.safe_globals takes them)
_NUMPY_ARRAYS: list[Callable[..., Any] | tuple[Callable[..., Any], str]] = [
    _reconstruct, np.ndarray, np.dtype, np.dtypes.Float32DType, np.dtypes.Float64DType]


def start_over(path: Path) -> str:
    """What to do about an unusable checkpoint, for ``train`` and ``grid`` alike."""
    return (f"start the run over with train's --fresh (fresh=True), or delete {Path(path).parent} "
            "(a grid then starts the run over)")


def checksum(obj) -> str:
    """SHA-256 of a checkpoint's contents: every tensor's dtype, shape and bytes,
    every plain value, dictionaries in key order (the ``checksum`` key left out)."""
    h = hashlib.sha256()

    def walk(x):
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(x, np.ndarray):
            h.update(f"A{x.dtype}{x.shape}".encode())
            h.update(np.ascontiguousarray(x).tobytes())
        elif isinstance(x, dict):
            h.update(b"{")
            for k in sorted(x, key=repr):
                if k != "checksum":
                    h.update(repr(k).encode())
                    walk(x[k])
            h.update(b"}")
        elif isinstance(x, (list, tuple)):
            h.update(b"[")
            for v in x:
                walk(v)
            h.update(b"]")
        else:
            h.update(f"{type(x).__name__}:{x!r};".encode())

    walk(obj)
    return h.hexdigest()


def _torch_load(path: Path, device, what: str):
    """``torch.load(..., weights_only=True)`` of a file of this library; any failure
    is a :class:`CheckpointError` naming the file."""
    try:
        with torch.serialization.safe_globals(_NUMPY_ARRAYS):
            return torch.load(path, map_location=device, weights_only=True)
    except Exception as e:              # damaged bytes make the unpickler fail in any way (IndexError, KeyError …)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"unreadable {what} ({path}): {first[:200]}; "
                              "it is damaged or not one of this library's (only tensors and plain types "
                              f"are loaded); {start_over(path)}") from None


def _check_sum(ck: dict, path: Path, what: str) -> None:
    if "checksum" in ck and ck["checksum"] != checksum(ck):     # files from before checksums have none
        raise CheckpointError(f"{what} fails its checksum ({path}): its contents changed after it was "
                              f"written (damaged or edited), so it cannot be used; {start_over(path)}")


def save_weights(path: Path, weights: dict) -> None:
    """Write a network's weights (a state dict) atomically with their :func:`checksum`:
    ``{"weights": …, "checksum": …}`` (``best.pt``, the selected model)."""
    ck = {"weights": weights}
    atomic_torch_save(ck | {"checksum": checksum(ck)}, path)


def load_weights(path: Path, device="cpu") -> dict:
    """The state dict saved by :func:`save_weights` (or, written before weights carried
    a checksum, a bare state dict; or the ``model`` of a :func:`save_checkpoint` file),
    checked against its checksum: a damaged or edited file is a :class:`CheckpointError`
    naming it."""
    ck = _torch_load(path, device, "weights file")
    if not isinstance(ck, dict):
        raise CheckpointError(f"not a weights file ({path}): {start_over(path)}")
    if "checksum" in ck:
        _check_sum(ck, path, "weights file")
    if "state" in ck and "model" in ck:                         # a training checkpoint
        return ck["model"]
    if set(ck) == {"weights", "checksum"}:
        return ck["weights"]
    if "checksum" in ck or not all(isinstance(v, torch.Tensor) for v in ck.values()):
        raise CheckpointError(f"not a weights file ({path}): {start_over(path)}")
    return ck                                                   # a bare state dict (before checksums)


def save_checkpoint(path: Path, state: dict, **parts) -> None:
    """Write a resumable checkpoint atomically: the loop ``state`` (its selected
    model's posteriors as tensors), ``parts`` (tensors, state dicts, plain types)
    and the :func:`checksum` of it all."""
    ck = {**parts, "state": state | {"best": _arrays_to_tensors(state["best"])}}
    atomic_torch_save(ck | {"checksum": checksum(ck)}, path)


def load_checkpoint(path: Path, device: torch.device) -> dict:
    """A checkpoint written by :func:`save_checkpoint`, loaded with
    ``weights_only=True``; a truncated, empty, foreign or code-carrying file, or
    one whose contents fail its checksum (changed after it was written), is a
    :class:`CheckpointError` naming it and how to start over."""
    ck = _torch_load(path, device, "checkpoint")
    if not isinstance(ck, dict) or not {"config", "model", "optimizer", "state"} <= set(ck):
        raise CheckpointError(f"not a training checkpoint ({path}): {start_over(path)}")
    if "checksum" in ck and ck["checksum"] != checksum(ck):     # checkpoints from before checksums have none
        raise CheckpointError(f"checkpoint fails its checksum ({path}): its contents changed after it was "
                              f"written (damaged or edited), so it cannot be resumed; {start_over(path)}")
    ck["state"] = ck["state"] | {"best": _tensors_to_arrays(ck["state"]["best"])}
    return ck


class RunLock:
    """An exclusive lock on a run's checkpoint folder while it trains: a second
    process training the same run fails at once, naming the holder. The lock is
    the kernel's (``flock``), so a killed holder leaves no stale lock."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / "lock"
        self.fd: int | None = None

    def __enter__(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunConflictError(f"run in progress ({self.path.parent}): {holder} is training it; wait for it "
                                   "to finish or stop it (a killed run resumes from its checkpoint)") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"PID {os.getpid()} on {socket.gethostname()}".encode())
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        fd = self.fd
        assert fd is not None, "RunLock exited without being entered"
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        self.fd = None


def wait_for_run(folder: Path) -> None:
    """Return once no process holds the :class:`RunLock` of the run whose checkpoint
    folder is ``folder`` (a grid whose cell another process is training waits for it)."""
    path = Path(folder) / "lock"
    if not path.exists():
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)                # blocks while the trainer holds LOCK_EX
    finally:
        os.close(fd)
