"""Systems (§3.1.4) and training presets (§3.1.3).

``paper`` is exactly the recipe of §3.1.3; ``cpu`` and ``smoke`` change only
what they list in ``reduced`` (shown in every results record and table).
Chapter: *Training*.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import NamedTuple

from .features import EXTRA_VIEWS, VIEWS


class System(NamedTuple):
    """A trained system: the views of its network, its loss, and how it departs
    from Fig. 1.

    ``loss``: ``"single"`` (its own branch only), ``"concat"`` (the ⊕ branch
    only), ``"blend"`` (Eq. 2 with the weights of Algorithm 1), ``"equal"``
    (Eq. 2 with fixed equal weights) or ``"meta"`` (FusionNet's meta-classifier,
    trained on the features of finished ``coder="fcn"`` runs).
    ``coder``: the per-view network, ``"crnn"`` (Tables 1–2) or ``"fcn"``
    (FusionNet's feature coding network). ``head``: the ⊕ branch, ``"fc"``
    (Fig. 1) or ``"cab"`` (CAB-CNN's classifier attention). ``overrides``:
    preset fields an ablation changes, as (name, value) pairs. ``origin``:
    ``"paper"`` for the rows of Table 3, else what the row comes from.
    """
    views: tuple
    loss: str
    coder: str = "crnn"
    head: str = "fc"
    overrides: tuple = ()
    origin: str = "paper"


SYSTEMS = {v: System((v,), "single") for v in VIEWS}
SYSTEMS.update({"concat": System(VIEWS, "concat"), "multiview": System(VIEWS, "blend"),
                "equal": System(VIEWS, "equal", origin="extra")})
# Ablations of adaptive blending (all else as ``multiview``).
ABLATIONS = {"mv_initial": (("reference", "initial"),), "mv_power1": (("power", 1.0),),
             "mv_w1": (("window", 1),), "mv_w6": (("window", 6),),
             "mv_eval10": (("eval_every", 10),), "mv_eval40": (("eval_every", 40),)}
SYSTEMS.update({k: System(VIEWS, "blend", overrides=o, origin="ablation") for k, o in ABLATIONS.items()})
# Ng et al. (FusionNet): one feature coding network per view, then a meta-classifier.
FCN_CODERS = {v: f"fcn_{v}" for v in VIEWS}          # view → its coder's system
SYSTEMS.update({name: System((v,), "single", coder="fcn", origin="fusionnet") for v, name in FCN_CODERS.items()})
SYSTEMS["fusionnet"] = System(VIEWS, "meta", coder="fcn", origin="fusionnet")
# Lu et al. (CAB-CNN): classifier attention as the ⊕ branch, trained end to end.
SYSTEMS["cabcnn"] = System(VIEWS, "concat", head="cab", origin="cabcnn")
# FusionNet's harmonic and percussive views, alone and as extra views of the multi-view network.
SYSTEMS.update({v: System((v,), "single", origin="hpss") for v in EXTRA_VIEWS})
SYSTEMS["multiview6"] = System(VIEWS + EXTRA_VIEWS, "blend", origin="hpss")

# Systems read from other runs' posteriors (no training of their own).
DERIVED = {"late": VIEWS,                                   # §3.1.4: mean of the single-view runs
           "sumrule": tuple(FCN_CODERS.values())}           # FusionNet's sum rule over its coders
TRAINED_SYSTEMS = tuple(SYSTEMS)
PAPER_SYSTEMS = ("mel", "gam", "cqt", "raw", "concat", "multiview")

PAPER_EPOCHS = {"esc50": 3000, "esc10": 3000, "dcase2016": 1500, "gtzan": 1500, "synthetic": 1500}


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

    def epochs_for(self, dataset: str) -> int:
        return self.epochs if self.epochs is not None else PAPER_EPOCHS[dataset]

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
    "smoke": {("width",): "width 1/16", ("raw_bands",): "raw: 4 conv02 bands", ("epochs",): "2 epochs",
              ("batch_size",): "batch 16", ("eval_clips",): "12 files per evaluation set", (): "for tests only"},
}
PRESETS = {
    "paper": Preset("paper"),
    "cpu": Preset("cpu", width=0.25, epochs=120, warmup_epochs=2, eval_every=20, window=3, raw_bands=16,
                  reduced=tuple(REDUCTIONS["cpu"].values())),
    "smoke": Preset("smoke", width=1 / 16, epochs=2, warmup_epochs=1, batch_size=16, eval_every=8,
                    window=2, eval_clips=12, raw_bands=4, reduced=tuple(REDUCTIONS["smoke"].values())),
}


def get_preset(name: str, **overrides) -> Preset:
    """A preset by name, optionally with fields overridden. An override is recorded
    as a reduction and replaces the preset's own text for that field."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    p = PRESETS[name]
    if overrides:
        kept = tuple(text for keys, text in REDUCTIONS[name].items() if not set(keys) & set(overrides))
        p = replace(p, **overrides, reduced=kept + tuple(f"{k}={v}" for k, v in overrides.items()))
    return p


def system_spec(system: str) -> System:
    """The :class:`System` of a trained system."""
    if system not in SYSTEMS:
        hint = " (derived from other runs' posteriors: `mvbook table`)" if system in DERIVED else ""
        raise ValueError(f"unknown system {system!r}{hint}; trained systems: {', '.join(SYSTEMS)}")
    return SYSTEMS[system]


def dependencies(system: str) -> tuple:
    """Trained systems whose finished runs ``system`` needs (FusionNet's coders)."""
    spec = system_spec(system)
    return tuple(FCN_CODERS[v] for v in spec.views) if spec.loss == "meta" else ()


def system_preset(system: str, preset: Preset) -> Preset:
    """``preset`` with the system's ablation ``overrides`` applied (not reductions)."""
    return replace(preset, **dict(system_spec(system).overrides))
