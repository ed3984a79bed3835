"""Records on disk (mvbook.records): atomic writes, loading, a run's paths,
provenance and the grid command that makes a record."""
import json
import shlex
from pathlib import Path

import pytest
from test_results import fake

from mvbook.records import RunPaths, code_version, grid_command, load_records, record_path, write_record


def test_write_and_load_records(tmp_path):
    r = fake("mel", 3, 0.5)
    path = write_record(r, tmp_path / record_path("esc10", "cpu", "mel", 3, 0))
    assert path.name == "fold3-seed0.json" and json.loads(path.read_text())["fold"] == 3
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    (tmp_path / "other.json").write_text("{}")           # not a record: ignored
    assert [x["fold"] for x in load_records(tmp_path, "esc10", "cpu")] == [3]
    assert load_records(tmp_path, "esc10", "paper") == []


def test_failed_write_leaves_the_old_record(tmp_path):
    path = write_record(fake("mel", 1, 0.5), tmp_path / "r.json")
    with pytest.raises(TypeError):
        write_record({"bad": object()}, path)
    assert json.loads(path.read_text())["system_accuracy"] == 0.5
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_run_paths_one_layout_for_every_file(tmp_path):
    p = RunPaths(tmp_path / "out", "esc10", "cpu", "mel", 3, 1)
    assert p.record == tmp_path / "out/esc10/cpu/mel/fold3-seed1.json" == tmp_path / "out" / p.rel
    assert p.notebook == p.record.with_suffix(".ipynb")
    assert p.checkpoint == tmp_path / "out/checkpoints/esc10/cpu/mel/fold3-seed1/checkpoint.pt"
    assert p.best == p.checkpoint.with_name("best.pt")
    elsewhere = RunPaths(tmp_path / "out", "esc10", "cpu", "mel", 3, 1, tmp_path / "ck")
    assert elsewhere.checkpoint_dir == tmp_path / "ck/esc10/cpu/mel/fold3-seed1"
    rec = fake("mel", 3, 0.5) | {"seed": 1, "path": str(p.record)}
    assert RunPaths.of_record(rec) == p
    assert RunPaths.of_record(rec, tmp_path / "ck").checkpoint_dir == elsewhere.checkpoint_dir


def test_grid_command_round_trips_through_the_shell():
    cmd = grid_command("esc10", "cpu", ["mel", "fcn_raw"], [1, 2], [0], Path("my results"), epochs=3)
    assert cmd.startswith("python -m mvbook grid --dataset esc10 --preset cpu --systems mel fcn_raw")
    argv = shlex.split(cmd)
    assert argv[argv.index("--out") + 1] == "my results" and argv[argv.index("--epochs") + 1] == "3"
    assert argv[argv.index("--folds") + 1:argv.index("--seeds")] == ["1", "2"]
    assert grid_command("esc10", "cpu") == "python -m mvbook grid --dataset esc10 --preset cpu"


def test_code_version_names_a_commit():
    v = code_version()
    assert set(v) == {"git_commit", "git_dirty"} and isinstance(v["git_dirty"], bool)
    assert v["git_commit"] == "unknown" or len(v["git_commit"]) == 40


def test_a_broken_json_file_is_named(tmp_path):
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="bad.json"):
        load_records(tmp_path)


def test_the_recorded_command_holds_no_machine_path():
    from mvbook.records import REPO, command_line
    argv = ["/usr/lib/python3/site-packages/ipykernel_launcher.py", "-f", "/tmp/kernel-1.json",
            str(REPO / "mvbook" / "__main__.py"), "train", "--out", "runs"]
    assert command_line(argv) == "…/ipykernel_launcher.py -f …/kernel-1.json mvbook/__main__.py train --out runs"


# --- the record's keys as types (mvbook.schema, issue 45 item 5): the types say what the files hold ---------

def schema_problems(value, hint, where: str = "record") -> list[str]:
    """Where ``value`` (parsed JSON) departs from the type ``hint`` of :mod:`mvbook.schema`: a
    required key missing, a key the TypedDict does not declare, or a value of another type."""
    import types
    import typing
    if typing.is_typeddict(hint):
        if not isinstance(value, dict):
            return [f"{where} is {type(value).__name__}, not an object"]
        hints = typing.get_type_hints(hint)
        out = [f"{where} lacks {k!r}" for k in sorted(hint.__required_keys__ - set(value))]
        out += [f"{where} has {k!r}, which {hint.__name__} does not declare" for k in sorted(set(value) - set(hints))]
        return out + [p for k in sorted(set(value) & set(hints)) for p in schema_problems(value[k], hints[k],
                                                                                         f"{where}.{k}")]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return [] if any(not schema_problems(value, a, where) for a in args) else [f"{where} is {value!r}, not {hint}"]
    if origin in (dict, list):
        if not isinstance(value, origin):
            return [f"{where} is {type(value).__name__}, not {origin.__name__}"]
        items = value.items() if origin is dict else enumerate(value)
        return [p for k, v in items for p in schema_problems(v, args[-1], f"{where}[{k!r}]")]
    if hint is typing.Any:
        return []
    types_ = (int, float) if hint is float else hint        # JSON writes 2.0 as 2.0, but a whole float may be an int
    ok = isinstance(value, types_) and (hint is bool or not isinstance(value, bool))
    return [] if ok else [f"{where} is {value!r}, not {getattr(hint, '__name__', hint)}"]


def test_every_committed_record_has_the_keys_and_types_of_the_schema():
    from mvbook.schema import RunRecord
    recs = load_records(Path(__file__).parents[1] / "results")
    assert len(recs) >= 300, "the committed records were not found"
    bad = {r["path"]: p for r in recs if (p := schema_problems(r, RunRecord))}
    assert not bad, f"{len(bad)} records depart from mvbook.schema, e.g. {next(iter(bad.items()))}"
    optional = {k for k in RunRecord.__optional_keys__ if k != "path"}
    assert optional <= {k for r in recs for k in r}, "a NotRequired key no record has: a type for nothing"


def test_the_schema_check_finds_what_departs():
    from mvbook.schema import Provenance, RunRecord
    rec = fake("mel", 1, 0.5) | {"fold": "1", "extra": 0}
    found = schema_problems(rec, RunRecord)
    assert "record.fold is '1', not int" in found and "record lacks 'provenance'" in found
    assert "record has 'extra', which RunRecord does not declare" in found
    assert "record.test['labels'][0] is 0, not str" not in found                      # labels are ints
    prov = {"git_commit": "abc", "git_dirty": "no", "trained_by": [{"from_step": 0}]}
    found = schema_problems(prov, Provenance, "p")
    assert "p.git_dirty is 'no', not bool" in found and "p.trained_by[0] lacks 'git_commit'" in found
