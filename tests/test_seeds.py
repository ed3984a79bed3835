"""Seed schemes (mvbook.seeds): what a run's seed drives, shared by the folds or drawn per fold."""
import numpy as np
import pytest
import torch

from mvbook.config import get_preset
from mvbook.data import load_dataset
from mvbook.errors import ConfigError
from mvbook.records import RunPaths
from mvbook.seeds import DEFAULT_SCHEME, LEGACY_SCHEME, check_scheme, record_scheme, run_seeds
from mvbook.systems import get_system
from mvbook.systems.base import Run
from mvbook.train import train
from mvbook.verify import rerun_arguments


def test_the_shared_scheme_is_the_streams_of_the_records_made_before_it():
    for fold in (1, 4):
        s = run_seeds(2, fold, "shared")
        assert (s.init, s.batches, s.eval_subset) == (2, [2, 0], [2, 1])


def test_per_fold_streams_differ_between_folds_and_seeds_and_from_each_other():
    draws = {}
    for fold in (1, 2):
        for seed in (3, 4):
            s = run_seeds(seed, fold, "per_fold")
            assert 0 <= s.init < 2 ** 63
            b = np.random.default_rng(s.batches).integers(2 ** 32, size=4)
            e = np.random.default_rng(s.eval_subset).integers(2 ** 32, size=4)
            assert not np.array_equal(b, e)
            draws[fold, seed] = (s.init, tuple(b))
    assert len({v[0] for v in draws.values()}) == 4 and len({v[1] for v in draws.values()}) == 4
    again = run_seeds(3, 1, "per_fold")
    assert again.init == draws[1, 3][0]                       # a pure function of (seed, fold)


def test_schemes_are_checked_and_a_record_without_one_is_shared():
    assert DEFAULT_SCHEME == "per_fold" and check_scheme("shared") == "shared"
    with pytest.raises(ConfigError, match="seed scheme 'nested'"):
        run_seeds(0, 1, "nested")
    assert record_scheme({"config": {"seed": 0}}) == LEGACY_SCHEME == "shared"
    assert record_scheme({"config": {"seed_scheme": "per_fold"}}) == "per_fold"
    cfg = {"dataset": "synthetic", "system": "mel", "fold": 2, "seed": 1, "preset": {"name": "smoke", "reduced": []}}
    assert rerun_arguments({"config": cfg})["seed_scheme"] == "shared"
    assert rerun_arguments({"config": cfg | {"seed_scheme": "per_fold"}})["seed_scheme"] == "per_fold"


def _initial_weights(fold: int, scheme: str, tmp_path) -> torch.Tensor:
    ds = load_dataset("synthetic")
    p = get_preset("smoke")
    run = Run(ds, ds.split(fold, 0), fold, 1, 0, p, torch.device("cpu"),
              RunPaths(tmp_path, ds.name, p.name, "mel", fold, 1), progress=False, seed_scheme=scheme)
    tr = get_system("mel").prepare(run)
    return torch.cat([q.detach().flatten() for q in tr.model.parameters()])


def test_two_folds_runs_of_one_seed_start_from_different_weights_only_per_fold(tmp_path):
    shared = [_initial_weights(f, "shared", tmp_path) for f in (1, 2)]
    per_fold = [_initial_weights(f, "per_fold", tmp_path) for f in (1, 2)]
    assert torch.equal(*shared)
    assert not torch.allclose(*per_fold)
    torch.manual_seed(1)                                       # the shared scheme is torch.manual_seed(seed)
    ds = load_dataset("synthetic")
    net = get_system("mel").build(len(ds.classes), ds.sr, get_preset("smoke").width, get_preset("smoke").raw_bands)
    assert torch.equal(torch.cat([q.detach().flatten() for q in net.parameters()]), shared[0])


def test_a_record_names_its_scheme_and_the_two_schemes_train_differently(tmp_path):
    a = train("synthetic", "mel", fold=1, preset="smoke", epochs=1, out=tmp_path / "a", progress=False)
    b = train("synthetic", "mel", fold=1, preset="smoke", epochs=1, out=tmp_path / "b", progress=False,
              seed_scheme="shared")
    assert a["config"]["seed_scheme"] == "per_fold" and "seed_scheme" not in b["config"]   # as the older records
    assert (record_scheme(a), record_scheme(b)) == ("per_fold", "shared")
    assert a["curves"]["loss"]["train"]["mel"] != b["curves"]["loss"]["train"]["mel"]
    with pytest.raises(ConfigError, match="seed scheme"):
        train("synthetic", "mel", preset="smoke", out=tmp_path / "c", progress=False, seed_scheme="crossed")
