"""The queue of pinned grid cells (scripts/land_queue.py) and the records it landed."""
import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import land_queue as L  # noqa: E402


def test_the_queue_is_the_plans_grid_and_the_long_seed_1_views():
    q = L.QUEUE
    assert len(q) == len(set(q)) == 20 + 100 + 200 + 50
    assert q[0] == ("long", "mel", 1, 1) and q[1] == ("cpu", "multiview", 1, 3) and q[2] == ("long", "gam", 1, 1)
    cpu = [c for c in q if c[0] == "cpu"]
    assert {c[3] for c in cpu} == set(range(3, 13)) and {c[2] for c in q} == set(range(1, 6))
    assert {c[1] for c in cpu[:100]} == {"multiview", "equal"} and {c[1] for c in cpu[-50:]} == {"concat"}
    assert {(c[1], c[3]) for c in q if c[0] == "long"} == {(v, 1) for v in L.VIEWS}


def test_the_plan_was_committed_before_its_grid_and_every_landed_record_is_of_its_pinned_commit():
    log = subprocess.run(["git", "log", "--format=%H %s"], cwd=REPO, capture_output=True, text=True).stdout
    lines = log.splitlines()
    plan = [i for i, line in enumerate(lines) if line.startswith(L.COMMITS["cpu"])]
    if plan:                                             # a clone with its history (not an sdist, not shallow)
        assert "analysis plan" in lines[plan[0]]
        new = [re.search(r" results: esc10/cpu/\S+/fold\d+-seed(\d+)$", line) for line in lines]
        landed = [i for i, m in enumerate(new) if m and int(m.group(1)) >= 3]
        assert landed and all(i < plan[0] for i in landed)   # newest first: every new record after the plan
    seen = 0
    for cell in L.QUEUE:
        path = REPO / L.record(*cell)
        if path.exists():
            prov = json.loads(path.read_text())["provenance"]
            assert (prov["git_commit"], prov["git_dirty"]) == (L.COMMITS[cell[0]], False), path
            seen += 1
    assert seen >= 2                                     # the first cells landed in the session that started it


def test_a_landed_record_is_made_portable_and_marked(tmp_path, monkeypatch):
    clone, wt = tmp_path / "clone", tmp_path / "wt" / "cpu"
    for k, v in {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
                 "GIT_COMMITTER_EMAIL": "t@example.org"}.items():
        monkeypatch.setenv(k, v)
    subprocess.run(["git", "init", "-q", str(clone)], check=True)
    monkeypatch.setattr(L, "REPO", clone)
    rel = L.record("cpu", "mel", 1, 3)
    src = wt / rel
    src.parent.mkdir(parents=True)
    rec = {"schema": "mvbook.record/1", "system": "mel", "accuracy": {"mel": 0.5},
           "provenance": {"git_commit": L.COMMITS["cpu"], "git_dirty": False,
                          "command": "/work/main/.venv/lib/python3.11/site-packages/ipykernel_launcher.py -f "
                                     "/tmp/tmpabc.json --HistoryManager.hist_file=:memory:"}}
    src.write_text(json.dumps(rec, indent=1))
    assert L.Lander(tmp_path / "wt", tmp_path / "logs").land(wt, rel, "esc10/cpu/mel/fold1-seed3") == "landed"
    landed = json.loads(subprocess.run(["git", "show", f"HEAD:{rel.as_posix()}"], cwd=clone, capture_output=True,
                                       text=True, check=True).stdout)
    prov = landed["provenance"]
    assert prov["command"] == (".venv/lib/python3.11/site-packages/ipykernel_launcher.py -f \u2026/tmpabc.json "
                               "--HistoryManager.hist_file=:memory:")
    assert prov["portable_paths"]["fields"] == ["provenance.command"]
    assert (prov["git_commit"], landed["accuracy"]) == (L.COMMITS["cpu"], rec["accuracy"])
    assert json.loads(src.read_text()) == rec                  # the worktree's own record is left as it was
