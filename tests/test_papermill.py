"""The commands the Training chapter documents for running it headless, taken
from the chapter itself and run as a reader would from the top of a fresh clone
(the venv's bin first on PATH, as after `source .venv/bin/activate`), with only
the run made small: synthetic data for ESC-10, preset smoke for paper, cpu for
cuda, the CQT network for the multi-view one, one epoch. Two smoke trainings of
one view (the papermill pipe reuses the grid's finished run), about a minute."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
CHAPTER = REPO / "book" / "training.md"
SMALL = [(r"\besc10\b", "synthetic"), (r"\bpaper\b", "smoke"), (r"\bcuda\b", "cpu"), (r"\bmultiview\b", "cqt")]


def documented_commands() -> list[str]:
    """The shell commands of the ```bash blocks of the section "Running it headless"."""
    text = CHAPTER.read_text()
    section = text[text.index("## Running it headless"):text.index("\n## ", text.index("## Running it headless") + 3)]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [c.strip() for b in blocks for c in b.replace("\\\n", " ").splitlines() if c.strip()]


def small(cmd: str) -> str:
    for pattern, repl in SMALL:
        cmd = re.sub(pattern, repl, cmd)
    if "papermill -" in cmd:
        cmd += " -p system cqt -p epochs 1"      # -p comes after -y in papermill: these win
    elif "mvbook grid" in cmd:
        cmd += " --epochs 1"
    return cmd


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A folder laid out like the top of a clone (book/ is the repository's)."""
    top = tmp_path_factory.mktemp("clone")
    (top / "book").symlink_to(REPO / "book")
    return top


def shell(cmd: str, cwd: Path):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("MVBOOK_DATA", None)
    return subprocess.run(["bash", "-c", f"set -eo pipefail; {cmd}"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)


def test_the_chapter_documents_the_one_run_grid_first_then_papermill_with_log_output():
    cmds = documented_commands()
    assert cmds[0].startswith("python -m mvbook grid --systems ") and "--folds 1" in cmds[0]
    pipes = [c for c in cmds if "| papermill -" in c]
    assert len(pipes) == 2 and all("--log-output" in c for c in pipes)
    for c in pipes:       # papermill makes no folders: the one each pipe writes to is made just before
        out = Path(c.split("| papermill - ", 1)[1].split()[0]).parent
        assert f"mkdir -p {out}" in cmds[cmds.index(c) - 1]
    assert "-y '" in pipes[1] and '"overrides": {' in pipes[1] and "data_root null" in pipes[1]


def test_help_notebook_gives_every_parameter_a_type(clone):
    cmd = "jupytext --to ipynb -o - book/training.md | papermill - --help-notebook"
    assert cmd in CHAPTER.read_text()
    out = shell(cmd, clone)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    for p in ("dataset: str", "fold: int", "data_root: Optional[str]", "epochs: Optional[int]", "overrides: dict"):
        assert p in text, f"{p!r} not in --help-notebook:\n{text}"
    assert "Unknown type" not in text


def test_documented_commands_run_verbatim_but_small(clone):
    for cmd in documented_commands():
        out = shell(small(cmd), clone)
        assert out.returncode == 0, f"{small(cmd)}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        if "| papermill" in cmd:
            assert "record:" in out.stdout + out.stderr          # --log-output: the notebook's output as it runs
    runs = clone / "runs" / "synthetic" / "smoke" / "cqt"
    assert (runs / "fold1-seed0.json").is_file() and (runs / "fold1-seed0.ipynb").is_file()   # the grid's
    initial = json.loads((clone / "runs/initial/synthetic/smoke/cqt/fold1-seed0.json").read_text())
    assert initial["config"]["preset"]["reference"] == "initial"      # -y overrides, a dict
    nbs = sorted((clone / "runs" / "notebooks").glob("*.ipynb"))
    assert len(nbs) == 2
    nb = nbformat.read(nbs[0] if "initial" in nbs[0].name else nbs[1], as_version=4)
    injected = next(c.source for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert 'data_root = "null"' in injected                          # what papermill -p gives; read as None
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
