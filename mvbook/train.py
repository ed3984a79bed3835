"""The training recipe of §3.1.3: Adam, warm-up and step decays, losses
measured every evaluation interval, adaptive blending (Algorithm 1), the
best-validation checkpoint, a checkpoint at every evaluation and resume.
Chapter: *Training*.
"""
from __future__ import annotations

import math
import os
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import evaluate
from .blending import AdaptiveBlender
from .config import Preset, get_preset, system_preset, system_spec
from .data import load_dataset
from .features import Standardizer, load_views
from .models import MultiViewNet, n_params
from .results import atomic_torch_save, code_version, provenance, record_path, write_record
from .segments import Segmenter, train_batches


CENTER_LAMBDA = 1e-3    # λ of FusionNet's Eq. 13 (Ng et al. chose 0.001)


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` → CUDA when present, else CPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' asked for, but torch sees no CUDA GPU; use --device cpu or auto")
    return torch.device(device)


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


def to_device(a: np.ndarray, dev: torch.device) -> torch.Tensor:
    """numpy → tensor on ``dev``; to a GPU through pinned memory, asynchronously."""
    t = torch.from_numpy(np.ascontiguousarray(a))
    if dev.type == "cuda":
        return t.pin_memory().to(dev, non_blocking=True)
    return t.to(dev)


def learning_rate(epoch: float, p: Preset, E: int) -> float:
    """§3.1.3: ``lr_warmup`` for the warm-up epochs, then ``lr`` × 0.8 per passed decay point (0.1E, 0.2E, 0.3E)."""
    if epoch < p.warmup_epochs:
        return p.lr_warmup
    return p.lr * p.decay ** sum(epoch >= f * E for f in p.decay_at)


def initial_weights(branches, mode: str) -> dict:
    """Branch weights of Eq. 2 for each loss mode (adaptive ones start uniform)."""
    if mode == "single":
        return {k: 1.0 for k in branches}
    if mode == "concat":
        return {k: float(k == "mv") for k in branches}
    return {k: 1.0 / len(branches) for k in branches}


def _subsample(idx, n: int | None) -> np.ndarray:
    """``n`` evenly spaced entries of ``idx`` (all when ``n`` is None)."""
    idx = np.asarray(idx)
    return idx if n is None or n >= len(idx) else idx[np.linspace(0, len(idx) - 1, n).round().astype(int)]


def _main_branch(branches) -> str:
    return "mv" if "mv" in branches else branches[0]


def _empty_curves(branches) -> dict:
    per = lambda: {k: [] for k in branches}  # noqa: E731
    return {"step": [], "epoch": [], "lr": [], "weights": per(),
            "loss": {s: per() for s in ("train", "val", "test")},
            "accuracy": {s: per() | {"self_ensemble": []} for s in ("val", "test")}}


def train(dataset: str = "synthetic", system: str = "multiview", fold: int = 1, preset: str = "smoke",
          seed: int = 0, device: str = "auto", root=None, out="runs", checkpoints=None,
          cache_dir=None, progress: bool = True, fresh: bool = False, callback=None,
          split_seed: int = 0, **overrides) -> dict:
    """Train one system on one fold and write its results record; returns the record.

    Checkpoints go to ``checkpoints`` (default ``<out>/checkpoints``); a run
    with a checkpoint there resumes from it unless ``fresh``. ``callback(info)``
    is called after every evaluation. ``overrides`` change preset fields.
    """
    spec = system_spec(system)
    if spec.loss == "meta":
        from .fusionnet import train_meta
        return train_meta(dataset=dataset, system=system, fold=fold, preset=preset, seed=seed, device=device,
                          root=root, out=out, checkpoints=checkpoints, cache_dir=cache_dir, progress=progress,
                          fresh=fresh, callback=callback, split_seed=split_seed, **overrides)
    t_start, code = time.time(), code_version()
    p = system_preset(system, get_preset(preset, **overrides))
    views, mode = spec.views, spec.loss
    dev = resolve_device(device)
    ds = load_dataset(dataset, root)
    split = ds.split(fold, split_seed)
    E = p.epochs_for(ds.name)
    steps_per_epoch = math.ceil(len(split.train) / p.batch_size)
    total_steps = E * steps_per_epoch

    feats = load_views(ds, views, cache_dir=cache_dir, progress=progress)
    transforms = {v: Standardizer.fit(feats[v], split.train) for v in views if v != "raw"}
    seg = Segmenter(feats, ds.sr, ds.clip_seconds, transforms)

    torch.manual_seed(seed)
    model = MultiViewNet(len(ds.classes), sr=ds.sr, width=p.width, views=views, raw_bands=p.raw_bands,
                         coder=spec.coder, head=spec.head).to(dev)
    branches = model.branches
    # fused: one kernel for all parameters (same Adam update; CPU and CUDA)
    opt = torch.optim.Adam(model.parameters(), lr=p.lr_warmup, fused=dev.type in ("cpu", "cuda"))
    blender = AdaptiveBlender(branches, p.window, p.reference, power=p.power) if mode == "blend" else None
    weights = initial_weights(branches, mode)

    labels = np.array([c.label for c in ds.clips])
    sub_rng = np.random.default_rng([seed, 1])
    n_sub = min(len(split.val), len(split.train))
    train_sub = np.sort(sub_rng.choice(split.train, n_sub, replace=False))
    sets = {name: evaluate.EvalSet(name, idx, labels[idx])
            for name, idx in (("train", train_sub), ("val", split.val), ("test", split.test))
            for idx in [_subsample(idx, p.eval_clips)]}

    config = {"system": system, "dataset": ds.name, "fold": fold, "seed": seed, "split_seed": split_seed,
              "preset": p.to_dict(), "views": list(views), "loss": mode, "coder": spec.coder, "head": spec.head,
              "system_overrides": dict(spec.overrides), "epochs": E,
              "steps_per_epoch": steps_per_epoch, "steps": total_steps, "n_classes": len(ds.classes),
              "classes": list(ds.classes), "sr": ds.sr, "clip_seconds": ds.clip_seconds,
              "dataset_fingerprint": ds.fingerprint(), "n_params": n_params(model),
              "split": {k: len(v.clips) for k, v in sets.items()} | {"train_all": len(split.train)}}

    run_rel = record_path(ds.name, p.name, system, fold, seed).with_suffix("")
    ckpt_dir = Path(checkpoints) if checkpoints else Path(out) / "checkpoints"
    ckpt_path = ckpt_dir / run_rel / "checkpoint.pt"
    rng = np.random.default_rng([seed, 0])
    state = {"step": 0, "curves": _empty_curves(branches), "best": None, "elapsed": 0.0}
    if ckpt_path.exists() and not fresh:
        ck = torch.load(ckpt_path, map_location=dev, weights_only=False)
        if ck["config"] != config:
            raise RuntimeError(f"{ckpt_path} belongs to a different run configuration; "
                               "pass fresh=True (--fresh) to start over")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        if blender:
            blender.load_state_dict(ck["blender"])
        weights = ck["weights"]
        rng.bit_generator.state = ck["numpy_rng"]
        torch.set_rng_state(ck["torch_rng"].cpu())              # map_location moved it to dev
        if dev.type == "cuda" and ck.get("cuda_rng") is not None:  # dropout draws from the GPU's generator
            torch.cuda.set_rng_state(ck["cuda_rng"].cpu(), dev)
        state = ck["state"]

    amp = autocast_dtype(dev)
    autocast = (lambda: torch.autocast(dev.type, dtype=amp)) if amp is not None else None
    batches = train_batches(split.train, p.batch_size, seg.t_max, rng)
    main = _main_branch(branches)
    clock = time.time()

    def measure(step: int):
        """Evaluate, blend (Algorithm 1), select, checkpoint."""
        nonlocal weights, clock
        res = {name: evaluate.run(model, seg, es, dev, autocast=autocast) for name, es in sets.items()}
        if blender:
            weights = blender.update(res["train"]["loss"], res["val"]["loss"])
        c = state["curves"]
        c["step"].append(step)
        c["epoch"].append(step / steps_per_epoch)
        c["lr"].append(learning_rate(step / steps_per_epoch, p, E))
        for k in branches:
            c["weights"][k].append(weights[k])
            for s in ("train", "val", "test"):
                c["loss"][s][k].append(res[s]["loss"][k])
        for s in ("val", "test"):
            for k in branches:
                c["accuracy"][s][k].append(res[s]["accuracy"][k])
            c["accuracy"][s]["self_ensemble"].append(
                evaluate.ensemble_accuracy(res[s]["probs"], weights, sets[s].labels))
        b = state["best"]
        va, vl = res["val"]["accuracy"][main], res["val"]["loss"][main]
        if b is None or va > b["val_accuracy"] or (va == b["val_accuracy"] and vl < b["val_loss"]):
            state["best"] = {"step": step, "epoch": step / steps_per_epoch, "val_accuracy": va, "val_loss": vl,
                             "weights": dict(weights), "test_probs": res["test"]["probs"],
                             "test_accuracy": dict(res["test"]["accuracy"])}
            atomic_torch_save(model.state_dict(), ckpt_path.with_name("best.pt"))
        state["step"] = step
        state["elapsed"] += time.time() - clock
        clock = time.time()
        atomic_torch_save({"config": config, "model": model.state_dict(), "optimizer": opt.state_dict(),
                           "blender": blender.state_dict() if blender else None, "weights": weights,
                           "numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                           "cuda_rng": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None,
                           "state": state}, ckpt_path)
        if callback:
            callback({"step": step, "total_steps": total_steps, "curves": state["curves"], "best": state["best"]})

    if state["step"] == 0 and not state["curves"]["step"]:
        measure(0)
    step = state["step"]
    bar = tqdm(total=total_steps, initial=step, disable=not progress, desc=f"{system} fold {fold}", unit="step")
    model.train()
    # The step loop reads nothing back from the device (no .item(), no float(loss)):
    # losses for progress and blending are measured at evaluation time.
    while step < total_steps:
        lr = learning_rate(step / steps_per_epoch, p, E)
        for group in opt.param_groups:
            group["lr"] = lr
        clips, t0 = next(batches)
        x = {v: to_device(a, dev) for v, a in seg.batch(clips, t0).items()}
        y = to_device(labels[clips], dev)
        with autocast() if autocast else nullcontext():
            logits, z = model(x, embeddings=True)
        losses = {k: F.cross_entropy(logits[k].float(), y) for k in branches}
        loss = sum(weights[k] * losses[k] for k in branches if weights[k] > 0)       # Eq. 2
        if spec.coder == "fcn":
            loss = loss + CENTER_LAMBDA * model.center_loss(z, y)                     # FusionNet, Eq. 13
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        bar.update(1)
        if step % p.eval_every == 0 or step == total_steps:
            measure(step)
            model.train()
            bar.set_postfix(val_acc=f"{state['curves']['accuracy']['val'][main][-1]:.3f}",
                            best=f"{state['best']['val_accuracy']:.3f}")
    bar.close()
    record = _record(config, state, branches, sets["test"], ds, mode)
    record["provenance"] = provenance(dev, state["elapsed"], time.time() - t_start, code)
    record["provenance"]["autocast"] = str(amp).removeprefix("torch.") if amp is not None else "none"
    path = write_record(record, Path(out) / record_path(ds.name, p.name, system, fold, seed))
    record["path"] = str(path)
    return record


def _record(config, state, branches, test_set, ds, mode) -> dict:
    """The results record (see ``mvbook.results``) from a finished run's state."""
    best = state["best"]
    acc = dict(best["test_accuracy"])
    if len(branches) > 1:
        acc["self_ensemble"] = evaluate.ensemble_accuracy(best["test_probs"], best["weights"], test_set.labels)
    main = _main_branch(branches)
    return {"schema": "mvbook.record/1", "system": config["system"], "dataset": config["dataset"],
            "fold": config["fold"], "seed": config["seed"], "preset": config["preset"]["name"],
            "reduced": list(config["preset"]["reduced"]), "main_branch": main, "accuracy": acc,
            "system_accuracy": acc[main], "config": config,
            "best": {k: best[k] for k in ("step", "epoch", "val_accuracy", "val_loss", "weights")},
            "curves": state["curves"],
            "test": {"keys": [ds.clips[i].key for i in test_set.clips], "labels": test_set.labels.tolist(),
                     "probs": {k: np.round(v, 5).tolist() for k, v in best["test_probs"].items()}}}
