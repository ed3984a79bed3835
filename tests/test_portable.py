"""Committed run notebooks and records re-run anywhere: none holds a path of the machine that made it.

A run notebook is a page of the book (with Binder and Colab buttons) and a program: its
parameters must be what a reader would set (``data_root = None``: ``$MVBOOK_DATA``), not
``"/…/shared/data"``. ``scripts/portable_notebooks.py FILE…`` puts a landed notebook in that
form (and marks it); this fails on any committed one it has not been run on.
"""
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.mark.xfail(strict=True, reason="records write sys.argv (the kernel launcher's absolute path) as "
                   "provenance.command and FusionNet's coder records as absolute paths: mvbook/records.py and "
                   "the committed records are being fixed (scripts/portable_notebooks.py --records RECORD…); "
                   "remove this mark then")
def test_no_committed_record_holds_a_machine_path():
    files = committed("results/**.json")
    bad = offenders(files)
    assert not bad, f"{len(bad)} of {len(files)} committed records hold a machine's path:\n" + "\n".join(bad[:20])


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
