"""The results record (schema ``mvbook.record/1``, :mod:`mvbook.records`) as types.

A record is a JSON object; these :class:`~typing.TypedDict` say which keys it has
and what each holds, for the modules that pass records between them (the
training run writes one, :mod:`mvbook.records` reads and checks them, the
tables, the analysis plan and the ensembles read them). A type checker
(``mypy``, configured in ``pyproject.toml``) holds the typed modules to them;
at run time a record is a plain ``dict``. A key marked optional (``NotRequired``)
is one that older records (or records of some systems) lack: read it with ``.get``.
Nothing here is a value; the layout of a record is :mod:`mvbook.records`'.
Chapter: *Results*.
"""
# no ``from __future__ import annotations``: a TypedDict's __required_keys__ need the annotations evaluated
from typing import Any, NotRequired, TypedDict

__all__ = ["RunRecord", "RunConfig", "PresetDict", "Provenance", "CodeVersion", "TrainedBy", "PortablePaths",
           "Best", "Curves", "Posteriors", "Diagnostics"]


class CodeVersion(TypedDict):
    """The code a run came from (:func:`mvbook.records.code_version`).

    Attributes
    ----------
    git_commit : str
        The commit of the library (``"unknown"`` outside a git clone).
    git_dirty : bool
        Whether tracked files differed from that commit.
    """
    git_commit: str
    git_dirty: bool


class TrainedBy(CodeVersion):
    """One segment of a run's training: from which step which code trained it
    (a run resumed from its checkpoint by other code has several).

    Attributes
    ----------
    from_step : int
        The first step of the segment (0 for the first).
    """
    from_step: int


class PortablePaths(TypedDict):
    """The mark of ``scripts/portable_notebooks.py --records``: which fields it made
    free of machine paths (never the old paths).

    Attributes
    ----------
    by : str
        The script that rewrote them.
    fields : list of str
        The dotted names of the rewritten fields (``provenance.command`` …).
    note : str
        What was done, in words.
    """
    by: str
    fields: list[str]
    note: str


class Provenance(CodeVersion):
    """Where, when and from which code a run came (:func:`mvbook.records.provenance`),
    with :class:`CodeVersion`'s keys.

    Attributes
    ----------
    machine, device : str
        The host and its CPU; the device trained on (a GPU with its name).
    torch_threads : int
        torch's CPU threads.
    torch, python : str
        Their versions.
    date : str
        When the run ended, ISO 8601 in UTC.
    train_seconds, wall_seconds : float
        The training time and the whole run's.
    command : str
        The command that ran, with no path of the machine.
    mvbook, cpu_capability : str, optional
        The library's version; the vector instruction set of torch's CPU kernels. Not in older records.
    autocast : str, optional
        The mixed precision used (``"none"``, ``"bfloat16"`` …). Not in older records.
    trained_by : list of TrainedBy, optional
        Each segment of the training and its code. Not in older records.
    portable_paths : PortablePaths, optional
        The mark of the rewrite of machine paths. Only in records made portable.
    """
    machine: str
    device: str
    torch_threads: int
    torch: str
    python: str
    date: str
    train_seconds: float
    wall_seconds: float
    command: str
    mvbook: NotRequired[str]
    cpu_capability: NotRequired[str]
    autocast: NotRequired[str]
    trained_by: NotRequired[list[TrainedBy]]
    portable_paths: NotRequired[PortablePaths]


class PresetDict(TypedDict):
    """A training preset as a record states it (:meth:`mvbook.config.Preset.to_dict`: the
    fields of :class:`mvbook.config.Preset`, tuples as lists).

    Attributes
    ----------
    name : str
        The preset's name (``paper``, ``cpu``, ``long``, ``smoke``).
    width, lr, lr_warmup, decay, power : float
        As :class:`mvbook.config.Preset`.
    epochs, eval_clips : int or None
        As :class:`mvbook.config.Preset`.
    warmup_epochs, batch_size, eval_every, window, raw_bands : int
        As :class:`mvbook.config.Preset`.
    decay_at : list of float
        As :class:`mvbook.config.Preset`.
    reference : str
        ``"best"`` or ``"initial"``.
    reduced : list of str
        What differs from the paper's recipe, in words.
    """
    name: str
    width: float
    epochs: int | None
    warmup_epochs: int
    batch_size: int
    lr: float
    lr_warmup: float
    decay: float
    decay_at: list[float]
    eval_every: int
    window: int
    reference: str
    power: float
    eval_clips: int | None
    raw_bands: int
    reduced: list[str]


class RunConfig(TypedDict):
    """Everything that decides a run (``config``; :meth:`mvbook.systems.base.System.run_config`):
    two records of the same configuration are the same run.

    Attributes
    ----------
    system, dataset : str
        The system and the dataset.
    fold, seed, split_seed : int
        The test fold, the run's seed and the seed of the validation split.
    seed_scheme : str, optional
        How the run's random streams were seeded (:mod:`mvbook.seeds`). Only where not the shared scheme.
    preset : PresetDict
        The training preset.
    views : list of str
        The views the system reads.
    loss : str
        How the branch losses are weighted (``"blend"``, ``"equal"`` …).
    coder, head : str, optional
        The system's coder and head. Not in older records.
    system_overrides : dict, optional
        The preset fields the system sets. Not in older records.
    epochs, steps_per_epoch, steps : int
        The length of the training.
    n_classes : int
        The number of classes.
    classes : list of str
        Their names, in label order.
    sr : int
        The sampling rate (Hz).
    clip_seconds : float
        The clip length.
    dataset_fingerprint : str
        The dataset's content hash.
    n_params : int
        The network's trainable parameters.
    split : dict
        Clips per set (``train``, ``val``, ``test``, ``train_all``).
    blending : dict, optional
        The weight rule (:data:`mvbook.blending.RULES`). Only for adaptive blending.
    coders, meta, sum_rule : dict, optional
        The coder runs it read, the meta-classifier's settings, the sum rule's accuracy.
        Only for FusionNet's systems.
    """
    system: str
    dataset: str
    fold: int
    seed: int
    split_seed: int
    seed_scheme: NotRequired[str]
    preset: PresetDict
    views: list[str]
    loss: str
    coder: NotRequired[str]
    head: NotRequired[str]
    system_overrides: NotRequired[dict[str, Any]]
    epochs: int
    steps_per_epoch: int
    steps: int
    n_classes: int
    classes: list[str]
    sr: int
    clip_seconds: float
    dataset_fingerprint: str
    n_params: int
    split: dict[str, int]
    blending: NotRequired[dict[str, Any]]
    coders: NotRequired[dict[str, dict[str, Any]]]
    meta: NotRequired[dict[str, Any]]
    sum_rule: NotRequired[dict[str, Any]]


class Best(TypedDict):
    """The selected model (``best``: the evaluation of highest validation accuracy).

    Attributes
    ----------
    step : int
        Its training step.
    epoch : float
        Its epoch.
    val_accuracy, val_loss : float
        The main branch's on the validation set.
    weights : dict
        Branch → its blending weight then.
    """
    step: int
    epoch: float
    val_accuracy: float
    val_loss: float
    weights: dict[str, float]


class Curves(TypedDict):
    """The run's evaluations (``curves``), one entry per evaluation in every list.

    Attributes
    ----------
    step : list of int
        The training steps evaluated.
    epoch, lr : list of float
        Their epochs and learning rates.
    weights : dict
        Branch → its blending weights.
    loss : dict
        Set (``train``, ``val``, ``test``) → branch → mean loss.
    accuracy : dict
        Set (``val``, ``test``) → branch (and ``self_ensemble``) → accuracy (0–1).
    """
    step: list[int]
    epoch: list[float]
    lr: list[float]
    weights: dict[str, list[float]]
    loss: dict[str, dict[str, list[float]]]
    accuracy: dict[str, dict[str, list[float]]]


class Posteriors(TypedDict):
    """The selected model on the test set (``test``), what late fusion and the
    self-ensembles read.

    Attributes
    ----------
    keys : list of str
        The test files.
    labels : list of int
        Their labels.
    probs : dict
        Branch → posteriors, (N, C), rounded to 5 decimals.
    """
    keys: list[str]
    labels: list[int]
    probs: dict[str, list[list[float]]]


class Diagnostics(TypedDict):
    """What the blending weights did over the run (``diagnostics``; only runs of an
    adaptive rule: :meth:`mvbook.blending.AdaptiveBlender.diagnostics`).

    Attributes
    ----------
    zero_weight_share : dict
        Branch → share of the training steps at weight exactly 0.
    off_share : dict, optional
        Branch → share of the training steps below :data:`mvbook.blending.OFF`. Not in older records.
    updates, fallbacks : int
        Measurements where the weights were set, and kept.
    uncredited : int, optional
        Measurements where no ratio of Eq. 5 exceeded the floor. Not in older records.
    selected_entropy : float
        Entropy (nats) of the selected model's weights.
    """
    zero_weight_share: dict[str, float]
    off_share: NotRequired[dict[str, float]]
    updates: int
    fallbacks: int
    uncredited: NotRequired[int]
    selected_entropy: float


class RunRecord(TypedDict):
    """A results record: one run, as :func:`mvbook.train.train` writes it and
    :func:`mvbook.records.read_record` reads it.

    Attributes
    ----------
    schema : str
        ``mvbook.record/1`` (``SCHEMA`` of :mod:`mvbook.records`).
    system, dataset, preset : str
        The run's system, dataset and preset (its ``config`` says the same).
    fold, seed : int
        The test fold and the seed.
    reduced : list of str
        What the preset changes from the paper's recipe, in words.
    main_branch : str
        The branch whose accuracy is the system's.
    accuracy : dict
        Branch (and ``self_ensemble``) → test accuracy (0–1) of the selected model.
    system_accuracy : float
        The main branch's.
    config : RunConfig
        Everything that decides the run.
    best : Best
        The selected model.
    curves : Curves
        Every evaluation.
    test : Posteriors
        The selected model's test posteriors.
    provenance : Provenance
        Where, when and from which code.
    diagnostics : Diagnostics, optional
        What the blending weights did. Only runs of an adaptive rule.
    path : str, optional
        Its file (:func:`mvbook.records.load_records` adds it; never written). Only in a loaded record.
    """
    schema: str
    system: str
    dataset: str
    fold: int
    seed: int
    preset: str
    reduced: list[str]
    main_branch: str
    accuracy: dict[str, float]
    system_accuracy: float
    config: RunConfig
    best: Best
    curves: Curves
    test: Posteriors
    provenance: Provenance
    diagnostics: NotRequired[Diagnostics]
    path: NotRequired[str]
