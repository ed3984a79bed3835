"""mvbook.book.chapters: the book's settings, the records its tables show, library
source beside the equations, the records copied into the built book (no training)."""
import json
from pathlib import Path

import pytest

from mvbook.book import chapters as ch
from mvbook.data import load_dataset
from mvbook.errors import DataError
from mvbook.records import SCHEMA, RunPaths

REPO = Path(__file__).resolve().parents[1]


def test_book_settings(monkeypatch, tmp_path):
    for var in ("MVBOOK_PRESET", "MVBOOK_DATASET", "MVBOOK_DATA", "MVBOOK_RUNS"):
        monkeypatch.delenv(var, raising=False)
    assert ch.book_preset() == "smoke" and ch.book_dataset() == "synthetic"
    assert ch.runs_dir() == REPO / "runs" / "book"
    monkeypatch.setenv("MVBOOK_DATA", str(tmp_path))                     # holds no ESC-50
    assert ch.book_dataset() == "synthetic" and not ch.real_data_available()
    monkeypatch.setenv("MVBOOK_PRESET", "cpu")
    monkeypatch.setenv("MVBOOK_DATASET", "gtzan")
    monkeypatch.setenv("MVBOOK_RUNS", str(tmp_path / "r"))
    assert (ch.book_preset(), ch.book_dataset(), ch.runs_dir()) == ("cpu", "gtzan", tmp_path / "r")
    assert ch.resolve("auto", lambda: 3) == 3 and ch.resolve(None, lambda: 3) == 3 and ch.resolve(1, None) == 1


def test_book_dataset_is_esc10_when_the_data_root_holds_it(esc_root, monkeypatch):
    monkeypatch.delenv("MVBOOK_DATASET", raising=False)
    monkeypatch.setenv("MVBOOK_DATA", str(esc_root))
    assert ch.book_dataset() == "esc10" and ch.real_data_available()


def test_protocol_folds():
    assert list(ch.protocol_folds("esc10")) == [1, 2, 3, 4, 5]
    assert list(ch.protocol_folds("gtzan")) == list(range(1, 11))
    assert list(ch.protocol_folds("dcase2016")) == [1]
    assert len(ch.protocol_folds("synthetic")) == load_dataset("synthetic").n_folds


def test_show_source_finds_a_marked_line():
    from mvbook.systems.base import BranchTraining
    from mvbook.systems.stacking import CoderSystem
    code = ch.show_source(BranchTraining.loss, marker="# Eq. 2", before=0, after=0)
    assert "weights[k] * losses[k]" in code.data and code.data.startswith("# mvbook/systems/base.py, line ")
    eq1 = ch.show_source(BranchTraining.loss, marker="F.cross_entropy", before=4, after=0)
    head = eq1.data.splitlines()
    assert head[1].startswith("def loss(") and head[2].startswith("    x, y = batch") and "# Eq. 1" in eq1.data
    method = ch.show_source(CoderSystem.extra_loss).data.splitlines()       # dedented: reads like a function
    assert method[1].startswith("def extra_loss(") and "model.center_loss(z, y)" in method[2]
    with pytest.raises(ValueError):
        ch.show_source(BranchTraining.loss, marker="no such line")


def test_bash_block():
    block = ch.bash_block([("python -m mvbook grid --dataset esc10", "comment"), "scripts/build_book.sh"])
    assert block.data == ("```bash\npython -m mvbook grid --dataset esc10  # comment\n"
                          "scripts/build_book.sh\n```")
    aligned = ch.bash_block([("a", "one"), ("a b c", "two"), "a much longer command without a comment"]).data
    assert aligned.splitlines()[1:3] == ["a      # one", "a b c  # two"]


def record(out, dataset, preset, system, fold=1, seed=0):
    """A minimal record file under ``out`` (what ``load_records`` reads)."""
    path = RunPaths(out, dataset, preset, system, fold, seed).record
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"schema": SCHEMA, "dataset": dataset, "preset": preset, "system": system,
                                "fold": fold, "seed": seed, "accuracy": {system: 0.5}, "system_accuracy": 0.5,
                                "test": {"keys": [], "labels": [], "probs": {}},
                                "config": {"blending": {"name": "authors"}} if system == "multiview" else {},
                                "provenance": {"device": "cpu", "date": "2026-01-01"}}))
    return path


def test_record_groups_and_main_records(tmp_path):
    assert ch.record_groups(tmp_path / "none") == {} and ch.main_records(tmp_path / "none") == (("esc10", "cpu"), [])
    for f in (1, 2, 3):
        record(tmp_path, "synthetic", "smoke", "mel", f)
    record(tmp_path, "gtzan", "paper", "mel")
    groups = ch.record_groups(tmp_path)
    assert {g: len(r) for g, r in groups.items()} == {("synthetic", "smoke"): 3, ("gtzan", "paper"): 1}
    main, recs = ch.main_records(tmp_path)                  # no ESC-10 at cpu: the largest group
    assert main == ("synthetic", "smoke") and [r["fold"] for r in recs] == [1, 2, 3]
    record(tmp_path, "esc10", "cpu", "gam")
    main, recs = ch.main_records(tmp_path)                  # ESC-10 at cpu whenever there is one
    assert main == ("esc10", "cpu") and [r["system"] for r in recs] == ["gam"]


def test_committed_record_prefers_the_book_dataset_then_the_better_preset(tmp_path):
    record(tmp_path, "esc10", "smoke", "multiview")
    record(tmp_path, "esc10", "cpu", "multiview")
    record(tmp_path, "synthetic", "paper", "multiview")
    record(tmp_path, "esc10", "paper", "multiview", seed=1)                # seed 1: never chosen
    pick = ch.committed_record("multiview", 1, dataset="esc10", root=tmp_path)
    assert (pick["dataset"], pick["preset"]) == ("esc10", "cpu")
    pick = ch.committed_record("multiview", 1, dataset="synthetic", root=tmp_path)
    assert (pick["dataset"], pick["preset"]) == ("synthetic", "paper")
    assert ch.committed_record("mel", 1, dataset="esc10", root=tmp_path) is None
    assert ch.committed_record("multiview", 1, root=tmp_path / "none") is None


def test_copy_records(tmp_path):
    src = tmp_path / "results" / "esc10" / "cpu" / "mel"
    src.mkdir(parents=True)
    (src / "fold1-seed0.json").write_text("{}")
    (src / "fold1-seed0.ipynb").write_text("{}")
    (tmp_path / "results" / "checkpoints").mkdir()
    (tmp_path / "results" / "checkpoints" / "x.json").write_text("{}")
    copied = ch.copy_records(tmp_path / "results", tmp_path / "html" / "results")
    assert copied == [tmp_path / "html/results/esc10/cpu/mel/fold1-seed0.json"]
    assert ch.copy_records(tmp_path / "none", tmp_path / "html") == []


def test_demo_record_is_a_committed_esc10_run_whatever_the_build_data(tmp_path, monkeypatch):
    """The method chapters demonstrate on the committed ESC-10 records even in the
    default build (no audio: the book's own dataset is the synthetic one)."""
    for var in ("MVBOOK_DATASET", "MVBOOK_DATA"):
        monkeypatch.delenv(var, raising=False)
    assert ch.book_dataset() == "synthetic"
    record(tmp_path, "synthetic", "cpu", "multiview")
    record(tmp_path, "esc10", "smoke", "multiview")
    record(tmp_path, "esc10", "cpu", "multiview")
    pick = ch.demo_record("multiview", 1, root=tmp_path)
    assert (pick["dataset"], pick["preset"]) == ("esc10", "cpu")
    record(tmp_path, "synthetic", "cpu", "mel")                 # no ESC-10 run of mel: any dataset will do
    assert ch.demo_record("mel", 1, root=tmp_path)["dataset"] == "synthetic"
    assert ch.demo_record("gam", 1, root=tmp_path) is None


def test_the_repositorys_demo_records_are_real_esc10_runs():
    """What the default build of the method chapters reads (results/ ships with the repo)."""
    for system in ("multiview", "mv_literal"):
        rec = ch.demo_record(system, 1)
        assert rec is not None and (rec["dataset"], rec["preset"], rec["fold"], rec["seed"]) == ("esc10", "cpu", 1, 0)
        assert ch.record_where(rec) == f"results/esc10/cpu/{system}/fold1-seed0.json"
        sentence = ch.describe_record(rec)
        assert ch.record_where(rec) in sentence and str(REPO) not in sentence


def test_preset_caveat_matches_the_preset():
    assert "near chance" in ch.preset_caveat("smoke")
    cpu = ch.preset_caveat("cpu")
    assert "near chance" not in cpu and "width 0.25" in cpu and "real, reduced run" in cpu
    assert "§3.1.3" in ch.preset_caveat("paper") and "near chance" not in ch.preset_caveat("paper")
    assert "not one of" in ch.preset_caveat("nope")


def test_run_index_groups_by_dataset_preset_and_system(tmp_path):
    for f in (2, 1):
        record(tmp_path, "esc10", "cpu", "mel", f)
    record(tmp_path, "esc10", "cpu", "gam")
    record(tmp_path, "synthetic", "cpu", "mel")
    index = ch.run_index(tmp_path)
    assert list(index) == [("esc10", "cpu"), ("synthetic", "cpu")]
    assert list(index[("esc10", "cpu")]) == ["gam", "mel"]
    assert [r["fold"] for r in index[("esc10", "cpu")]["mel"]] == [1, 2]


def test_outside_a_clone_runs_dir_and_the_records_say_where_they_are(monkeypatch, tmp_path):
    for var in ("MVBOOK_RUNS", "MVBOOK_RESULTS"):
        monkeypatch.delenv(var, raising=False)
    assert ch.in_clone() and ch.results_dir() == REPO / "results"
    site = tmp_path / "site-packages"                          # as a wheel installs it: no repository around
    monkeypatch.setattr(ch, "REPO", site)
    monkeypatch.chdir(tmp_path)
    assert not ch.in_clone() and ch.runs_dir() == tmp_path / "runs" / "book"
    with pytest.raises(DataError) as e:
        ch.record_groups()
    assert str(e.value) == (f"the book's records are not installed with mvbook ({site} is not a clone of its "
                            "repository): set MVBOOK_RESULTS to the results/ folder of a clone")
    monkeypatch.setenv("MVBOOK_RESULTS", str(REPO / "results"))
    assert ch.main_records()[0] == ("esc10", "cpu")


def test_bash_block_takes_any_iterable_of_commands():
    """``commands`` is read once: a generator gives the same block as a list."""
    commands = ["python -m mvbook grid a", ("python -m mvbook grid bb", "two"), "python -m mvbook grid c"]
    block = ch.bash_block(commands).data
    assert block == ("```bash\npython -m mvbook grid a\npython -m mvbook grid bb  # two\n"
                     "python -m mvbook grid c\n```")
    assert ch.bash_block(c for c in commands).data == block
