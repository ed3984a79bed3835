"""The type checker is part of the test command (issue 45, item 5): ``mypy``, configured
in pyproject.toml's ``[tool.mypy]``, finds nothing in the typed core (the records'
keys as :mod:`mvbook.schema` declares them, the verdicts and cell statuses as
``Literal`` words, the engines' runner as a ``Protocol``), and it does find a wrong
key, a wrong value type, a word that is not a verdict or a status and a runner that
lacks the protocol's methods."""
import importlib.util
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
INSTALL = "mypy is not installed: pip install -c constraints.txt -r requirements.txt"


def core_modules() -> set[str]:
    """Every module of the package but the chapters' own code (``mvbook.book``), found on disk."""
    out = set()
    for f in (ROOT / "mvbook").rglob("*.py"):
        parts = f.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if not (name + ".").startswith("mvbook.book."):
            out.add(name)
    return out


def mypy(*args: str) -> subprocess.CompletedProcess:
    """``python -m mypy`` in the repository (its pyproject.toml, its cache), or a failure when it is missing."""
    if importlib.util.find_spec("mypy") is None:
        pytest.fail(INSTALL)
    return subprocess.run([sys.executable, "-m", "mypy", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)


def test_mypy_is_installed():
    """A missing type checker fails the suite: it would otherwise pass on nothing."""
    assert importlib.util.find_spec("mypy") is not None, INSTALL


def test_the_configuration_checks_the_core():
    checked, core = set(CONFIG["modules"]), core_modules()
    assert len(core) > 50 and "mvbook.plan" in core and "mvbook.book.findings" not in core
    assert core <= checked, f"[tool.mypy] modules lacks {sorted(core - checked)}: every core module is typed"
    missing = [m for m in checked if importlib.util.find_spec(m) is None]
    assert not missing, f"[tool.mypy] modules names modules that do not exist: {missing}"
    assert CONFIG["follow_imports"] == "silent"


def test_the_typed_core_has_no_type_error():
    out = mypy()
    assert out.returncode == 0, f"mypy (the modules of pyproject.toml's [tool.mypy]) found problems:\n" \
                                f"{out.stdout}{out.stderr}"
    assert f"in {len(CONFIG['modules'])} source files" in out.stdout, out.stdout


BAD = '''
from mvbook.engines.cells import CellResult, Runner
from mvbook.grid import NotebookRunner
from mvbook.plan import Verdict
from mvbook.records import read_record

rec = read_record("r.json")
if rec is not None:
    commit: int = rec["provenance"]["git_commit"]
    rec["config"]["preset"]["no_such_field"]
    CellResult("a cell", "skip")
verdict: Verdict = "maybe"


class HalfARunner:
    def check(self, cell):
        return None


runner: Runner = HalfARunner()
grid_runner: Runner = NotebookRunner("out")
'''


def test_the_type_checker_finds_what_the_types_forbid(tmp_path):
    """The same configuration on a snippet that breaks each contract once: each is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text(textwrap.dedent(BAD))
    out = mypy("--config-file", str(ROOT / "pyproject.toml"), str(bad))
    found = out.stdout
    assert out.returncode == 1, found + out.stderr
    assert 'bad.py:9: error: Incompatible types in assignment (expression has type "str", variable has type "int")' \
        in found, found
    assert 'bad.py:10: error: TypedDict "PresetDict" has no key "no_such_field"' in found, found
    assert "bad.py:11: error: Argument 2 to \"CellResult\" has incompatible type" in found, found
    assert "bad.py:12: error: Incompatible types in assignment (expression has type \"Literal['maybe']\"" \
        in found, found
    assert 'bad.py:20: error: Incompatible types in assignment (expression has type "HalfARunner", variable has ' \
        'type "Runner")' in found, found
    assert "Found 5 errors in 1 file" in found, found                 # the grid's own runner is a Runner
