"""Training presets (§3.1.3) and the learning-rate schedule.

``paper`` is exactly the recipe of §3.1.3; ``cpu`` and ``smoke`` change only
what they list in ``reduced`` (shown in every results record and table).
The systems (§3.1.4) are in :mod:`mvbook.systems`. Chapter: *Training*.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np

from .errors import ConfigError

__all__ = ["Preset", "REDUCTIONS", "PRESETS", "get_preset", "learning_rate", "check_seed"]

_PAPER_EPOCHS = {"esc50": 3000, "esc10": 3000, "dcase2016": 1500, "gtzan": 1500, "synthetic": 1500}


@dataclass(frozen=True)
class Preset:
    """Training hyper-parameters. ``epochs=None`` means the paper's E for the dataset."""
    name: str
    width: float = 1.0
    epochs: int | None = None
    warmup_epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-4
    lr_warmup: float = 2e-5
    decay: float = 0.8
    decay_at: tuple = (0.1, 0.2, 0.3)
    eval_every: int = 100          # steps between loss measurements (not stated in the paper)
    window: int = 5                # W of Algorithm 1 (not stated in the paper)
    reference: str = "best"        # Algorithm 1's references
    power: float = 2.0             # exponent of O in Eq. 5
    eval_clips: int | None = None  # cap on files per evaluation set (None: all)
    raw_bands: int = 64            # conv02 filters of the 1D CRNN (Table 2: 64)
    reduced: tuple = field(default=())  # what differs from the paper, in words

    def __post_init__(self):
        """Impossible settings are refused before any work."""
        positive = {"width": self.width, "batch_size": self.batch_size, "lr": self.lr, "lr_warmup": self.lr_warmup,
                    "eval_every": self.eval_every, "window": self.window, "raw_bands": self.raw_bands}
        if self.epochs is not None:
            positive["epochs"] = self.epochs
        if self.eval_clips is not None:
            positive["eval_clips"] = self.eval_clips
        bad = [f"{k} = {v}" for k, v in positive.items() if not v > 0]
        bad += [f"{k} = {v}" for k, v in (("warmup_epochs", self.warmup_epochs),) if v < 0]
        bad += [] if self.reference in ("best", "initial") else [f"reference = {self.reference!r}"]
        if bad:
            raise ConfigError(f"preset {self.name!r}: impossible setting {'; '.join(bad)} (each must be positive; "
                              "reference 'best' or 'initial')")

    def epochs_for(self, dataset: str) -> int:
        return self.epochs if self.epochs is not None else _PAPER_EPOCHS[dataset]

    def to_dict(self) -> dict:
        return asdict(self)


# What each reduced preset changes, in words, keyed by the fields each text describes.
REDUCTIONS = {
    "paper": {},
    "cpu": {("width",): "width 0.25 (channels and units ×0.25)",
            ("raw_bands",): "raw: 16 conv02 bands instead of 64",
            ("epochs",): "120 epochs instead of 3000/1500",
            ("warmup_epochs",): "2 warm-up epochs instead of 10",
            ("eval_every", "window"): "evaluation every 20 steps, W = 3"},
    # the scale check of the blending study: the cpu network trained 5× longer, ~30 weight updates
    "long": {("width",): "width 0.25 (channels and units ×0.25)",
             ("raw_bands",): "raw: 16 conv02 bands instead of 64",
             ("epochs",): "600 epochs instead of 3000/1500",
             ("eval_every", "window"): "evaluation every 100 steps, W = 3"},
    "smoke": {("width",): "width 1/16", ("raw_bands",): "raw: 4 conv02 bands", ("epochs",): "2 epochs",
              ("batch_size",): "batch 16", ("eval_clips",): "12 files per evaluation set", (): "for tests only"},
}
#: the training presets by name, ``paper`` (§3.1.3), ``cpu``, ``long`` and ``smoke``
PRESETS = {
    "paper": Preset("paper"),
    "cpu": Preset("cpu", width=0.25, epochs=120, warmup_epochs=2, eval_every=20, window=3, raw_bands=16,
                  reduced=tuple(REDUCTIONS["cpu"].values())),
    "long": Preset("long", width=0.25, epochs=600, eval_every=100, window=3, raw_bands=16,
                   reduced=tuple(REDUCTIONS["long"].values())),
    "smoke": Preset("smoke", width=1 / 16, epochs=2, warmup_epochs=1, batch_size=16, eval_every=8,
                    window=2, eval_clips=12, raw_bands=4, reduced=tuple(REDUCTIONS["smoke"].values())),
}


def check_seed(seed, flag: str = "--seed") -> int:
    """``seed`` as an int, or a :class:`~mvbook.errors.ConfigError` naming ``flag`` when it is
    not a non-negative integer (numpy's generators take no other)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"{flag} {seed}: a seed is an integer 0 or above")
    return int(seed)


def get_preset(name: str, **overrides) -> Preset:
    """A training preset by name, optionally with fields overridden.

    Parameters
    ----------
    name : str
        A key of :data:`PRESETS`.
    **overrides
        Fields of :class:`Preset` to replace; each is recorded as a reduction
        (``reduced``) and replaces the preset's own text for that field.

    Returns
    -------
    Preset

    Examples
    --------
    >>> get_preset("cpu", epochs=10).reduced[-1]
    'epochs=10'
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    p = PRESETS[name]
    if overrides:
        kept = tuple(text for keys, text in REDUCTIONS[name].items() if not set(keys) & set(overrides))
        p = replace(p, **overrides, reduced=kept + tuple(f"{k}={v}" for k, v in overrides.items()))
    return p


def learning_rate(epoch: float, p: Preset, E: int) -> float:
    """§3.1.3's schedule: ``lr_warmup`` for the warm-up epochs, then ``lr`` × 0.8 per
    passed decay point (0.1E, 0.2E, 0.3E).

    Parameters
    ----------
    epoch : float
        Epochs done (fractional within an epoch).
    p : Preset
        Its ``lr``, ``lr_warmup`` and ``warmup_epochs``.
    E : int
        The run's number of epochs.

    Returns
    -------
    float

    Examples
    --------
    >>> p = get_preset("paper")
    >>> [round(learning_rate(e, p, 100), 7) for e in (5, 15, 25)]    # warm-up, then ×0.8 past 10 and 20
    [2e-05, 0.00016, 0.000128]
    """
    if epoch < p.warmup_epochs:
        return p.lr_warmup
    return p.lr * p.decay ** sum(epoch >= f * E for f in p.decay_at)
