"""Committed run notebooks and records re-run anywhere: none holds a path of the machine that made it.

A run notebook is a page of the book (with Binder and Colab buttons) and a program: its
parameters must be what a reader would set (``data_root = None``: ``$MVBOOK_DATA``), not
``"/…/shared/data"``. ``scripts/portable_notebooks.py FILE…`` puts a landed notebook in that
form (and marks it); this fails on any committed one it has not been run on. A record's
``provenance.command`` (``sys.argv``) and FusionNet's coder records likewise:
``scripts/portable_notebooks.py --records FILE…`` (marked in ``provenance.portable_paths``).
"""
import copy
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import portable_notebooks as pn  # noqa: E402


def committed(pattern: str) -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--", pattern], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout
        files = [REPO / f for f in out.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):           # not a clone: what is there
        files = sorted(REPO.glob(pattern))
    return [f for f in files if f.is_file()]


def offenders(files) -> list[str]:
    bad = []
    for f in files:
        found = pn.machine_paths(json.loads(f.read_text(encoding="utf-8")))
        if found:
            bad.append(f"{f.relative_to(REPO)}: {', '.join(sorted(set(found))[:3])}")
    return bad


def test_no_committed_run_notebook_holds_a_machine_path():
    files = committed("results/**.ipynb")
    bad = offenders(files)
    assert not bad, (f"{len(bad)} of {len(files)} committed run notebooks hold a machine's path; run "
                     f"`python scripts/portable_notebooks.py FILE…` on them:\n" + "\n".join(bad[:20]))


def test_no_committed_record_holds_a_machine_path():
    """The results records and the same-commit re-runs of ``reruns/``."""
    results, reruns = committed("results/**.json"), committed("reruns/**.json")
    assert results and reruns
    files = results + reruns
    bad = offenders(files)
    assert not bad, (f"{len(bad)} of {len(files)} committed records hold a machine's path; run "
                     f"`python scripts/portable_notebooks.py --records FILE…` on them:\n" + "\n".join(bad[:20]))


def fusionnet_record(repo=str(REPO)):
    """A record as mvbook.records.write_record lays it out, with the machine paths a FusionNet run made before
    records.command_line: sys.argv of the kernel, coders from a clone's results and from another folder."""
    coder = lambda path: {"system": "fcn_mel", "record": path, "git_commit": "abc", "git_dirty": False,  # noqa: E731
                          "n_params": 1234, "system_accuracy": 0.75}
    return {"schema": "mvbook.record/1", "system": "fusionnet", "fold": 1, "seed": 0, "accuracy": {"mv": 0.8125},
            "config": {"fold": 1, "coders": {"mel": coder(f"{repo}/results/esc10/cpu/fcn_mel/fold1-seed0.json"),
                                             "gam": coder("/tmp/meta/out/esc10/cpu/fcn_gam/fold1-seed0.json"),
                                             "raw": coder("results/esc10/cpu/fcn_raw/fold1-seed0.json")},
                       "lr": 0.001},
            "curves": {"step": [0, 16], "loss": [2.302585092994046, 1.0000000000000002e-05]},
            "provenance": {"git_commit": "abc", "machine": "host: AMD EPYC, 2 cores",
                           "date": "2025-01-01T00:00:00+00:00",
                           "command": f"/srv/venv/lib/python3.11/site-packages/ipykernel_launcher.py -f "
                                      f"/tmp/tmpa.json --HistoryManager.hist_file=:memory: --x {repo}/mvbook/x.py "
                                      f"--y /home/u/clone/.venv/bin/z",
                           "autocast": "none"}}


def test_record_rewrite_changes_only_the_machine_paths_marks_it_and_is_idempotent(tmp_path):
    rec = fusionnet_record()
    raw = json.dumps(rec, indent=1)                                  # mvbook.records.write_record's layout
    f = tmp_path / "fold1-seed0.json"
    f.write_text(raw, encoding="utf-8")
    assert pn.machine_paths(rec)
    assert subprocess.run([sys.executable, str(REPO / "scripts" / "portable_notebooks.py"), "--records", "--check",
                           str(f)], capture_output=True).returncode == 1 and f.read_text(encoding="utf-8") == raw
    assert pn.rewrite_record(f) == 3
    text = f.read_text(encoding="utf-8")
    after = json.loads(text)
    assert not pn.machine_paths(after)
    assert after["provenance"]["command"] == ("\u2026/ipykernel_launcher.py -f \u2026/tmpa.json "
                                              "--HistoryManager.hist_file=:memory: --x mvbook/x.py "
                                              "--y .venv/bin/z")
    coders = after["config"]["coders"]
    assert coders["mel"]["record"] == "results/esc10/cpu/fcn_mel/fold1-seed0.json"      # from the clone's results
    assert coders["gam"]["record"] == "\u2026/esc10/cpu/fcn_gam/fold1-seed0.json"       # not claimed as results/
    assert coders["raw"]["record"] == "results/esc10/cpu/fcn_raw/fold1-seed0.json"      # relative already: as it was
    mark = after["provenance"]["portable_paths"]
    assert mark["by"] == "scripts/portable_notebooks.py"
    assert mark["fields"] == ["provenance.command", "config.coders.mel.record", "config.coders.gam.record"]
    assert not pn.machine_paths(mark) and "/srv" not in json.dumps(mark) and "tmpa" not in json.dumps(mark)
    assert list(after["provenance"])[-1] == "portable_paths"                            # the only key added, last
    # byte for byte the old record once the old strings are put back and the mark taken out
    after["provenance"].pop("portable_paths")
    after["provenance"]["command"] = rec["provenance"]["command"]
    for v in ("mel", "gam"):
        after["config"]["coders"][v]["record"] = rec["config"]["coders"][v]["record"]
    assert json.dumps(after, indent=1) == raw
    # a second run changes nothing; a trailing newline is kept
    assert pn.rewrite_record(f) == 0 and f.read_text(encoding="utf-8") == text
    g = tmp_path / "fold1-seed1.json"
    g.write_text(raw + "\n", encoding="utf-8")
    assert pn.rewrite_record(g) == 3 and g.read_text(encoding="utf-8") == text + "\n"


def test_a_clone_under_a_root_no_pattern_knows_is_still_found_and_made_relative(monkeypatch):
    """CI clones into ``/check/…``, a folder no ROOTS entry names: this clone's own paths count all the same."""
    monkeypatch.setattr(pn, "CLONE", "/check/w/main/")
    rec = fusionnet_record(repo="/check/w/main")
    rec["config"]["coders"]["gam"]["record"] = "results/esc10/cpu/fcn_gam/fold1-seed0.json"
    rec["provenance"]["command"] = "/check/w/main/.venv/bin/python -m mvbook train --out /check/w/main/results"
    assert not any(m.group(0) for m in pn.ABSOLUTE.finditer(rec["provenance"]["command"]))   # the pattern alone
    assert "/check/w/main/" in pn.machine_paths(rec)
    rec, n = pn.portable_record(rec)
    assert n == 2 and not pn.machine_paths(rec)
    assert rec["provenance"]["command"] == ".venv/bin/python -m mvbook train --out results"
    assert rec["config"]["coders"]["mel"]["record"] == "results/esc10/cpu/fcn_mel/fold1-seed0.json"


def test_record_rewrite_adds_to_an_earlier_mark():
    rec = fusionnet_record()
    rec["provenance"]["portable_paths"] = {"by": pn.SCRIPT, "fields": ["provenance.command"], "note": "x"}
    rec["provenance"]["command"] = "\u2026/ipykernel_launcher.py"
    rec, n = pn.portable_record(rec)
    assert n == 2 and rec["provenance"]["portable_paths"]["fields"] == [
        "provenance.command", "config.coders.mel.record", "config.coders.gam.record"]


def test_records_keep_their_layout_byte_for_byte_through_the_rewrite():
    files = committed("results/**.json")[:5]
    assert files
    for f in files:
        raw = f.read_text(encoding="utf-8")
        assert json.dumps(json.loads(raw), indent=1) + ("\n" if raw.endswith("\n") else "") == raw, f


def run_notebook(out="/work/x/results", data_root="/srv/shared/data", checkpoints="/tmp/grid/ckpt"):
    params = {"dataset": "esc10", "data_root": data_root, "out": out, "checkpoints": checkpoints, "cache_dir": None}
    injected = "".join(f"{k} = {json.dumps(v) if v is not None else 'None'}\n" for k, v in params.items())
    return {"cells": [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "outputs": [],
         "source": ["data_root = None  # $MVBOOK_DATA\n", 'out = "auto"\n']},
        {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]}, "outputs": [],
         "source": ["# Parameters\n"] + injected.splitlines(keepends=True)},
        {"cell_type": "code", "metadata": {}, "source": ["train()"], "outputs": [
            {"name": "stdout", "output_type": "stream",
             "text": [f"records under {out}\n", f"record: {out}/esc10/cpu/mel/fold1-seed0.json\n",
                      f"A checkpoint of this exact run exists ({checkpoints}/esc10/x.pt)\n", "12.0 it/s\n"]},
            {"output_type": "display_data", "data": {"image/png": "iVBOR/work/abc/def==", "text/plain": ["<Figure>"]},
             "metadata": {}}]}],
        "metadata": {"papermill": {"parameters": params, "output_path": f"{out}/esc10/cpu/mel/fold1-seed0.ipynb",
                                   "input_path": {"cells": []}}},
        "nbformat": 4, "nbformat_minor": 5}


def test_portable_rewrites_only_the_machine_paths_and_marks_it(tmp_path):
    nb = run_notebook()
    before = copy.deepcopy(nb)
    assert pn.machine_paths(nb)
    f = tmp_path / "fold1-seed0.ipynb"
    f.write_text(pn.dumps(nb), encoding="utf-8")
    assert subprocess.run([sys.executable, str(REPO / "scripts" / "portable_notebooks.py"), "--check", str(f)],
                          capture_output=True).returncode == 1
    assert pn.rewrite_file(f)["parameters"] == ["checkpoints", "data_root", "out"]
    after = json.loads(f.read_text(encoding="utf-8"))
    assert not pn.machine_paths(after)
    p = after["metadata"]["papermill"]["parameters"]
    assert (p["data_root"], p["out"], p["checkpoints"], p["cache_dir"]) == (None, "results", None, None)
    assert "".join(after["cells"][1]["source"]).splitlines()[1:5] == [
        'dataset = "esc10"', "data_root = None", 'out = "results"', "checkpoints = None"]
    assert after["cells"][2]["outputs"][0]["text"] == [
        "records under results\n", "record: results/esc10/cpu/mel/fold1-seed0.json\n",
        "A checkpoint of this exact run exists (results/checkpoints/esc10/x.pt)\n", "12.0 it/s\n"]
    assert after["cells"][2]["outputs"][1] == before["cells"][2]["outputs"][1]       # images untouched
    assert after["cells"][0] == before["cells"][0]                                      # the chapter's own cell
    mark = after["metadata"]["mvbook"]["portable_paths"]
    assert mark["by"] == "scripts/portable_notebooks.py" and mark["outputs_rewritten"] == 1
    assert "/srv" not in json.dumps(mark)                                               # never the old paths
    # everything else as it was, and a second run changes nothing (byte for byte)
    del after["metadata"]["mvbook"]
    for nb_ in (after, before):
        nb_["metadata"]["papermill"].pop("parameters"), nb_["metadata"]["papermill"].pop("output_path")
        nb_["cells"][1:] = []
    assert after == before
    text = f.read_text(encoding="utf-8")
    assert pn.rewrite_file(f) == {} and f.read_text(encoding="utf-8") == text


def test_portable_keeps_papermills_layout_byte_for_byte():
    files = committed("results/**.ipynb")[:5]
    for f in files:
        raw = f.read_text(encoding="utf-8")
        assert pn.dumps(json.loads(raw)) + ("\n" if raw.endswith("\n") else "") == raw, f
