"""mvbook as a package: its dependencies (pyproject.toml, requirements.txt,
constraints.txt agree), and a non-editable install into a fresh venv that runs
``mvbook --help``, ``mvbook train --preset smoke`` and a one-cell ``mvbook grid``
(the Training notebook shipped inside the package), with the mvbook version in
the records. The venv borrows the project venv's packages (a ``.pth`` line), so
nothing is downloaded; two smoke trainings of one view, about a minute."""
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import mvbook

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def requirement_lines(path: Path) -> dict:
    """name → Requirement of a requirements file's package lines (options and -r/-c left out)."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            r = Requirement(line)
            out[canonicalize_name(r.name)] = r
    return out


def constraints() -> dict:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not a name==version pin"
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_dependencies_have_major_upper_bounds_and_match_requirements_txt():
    deps = {canonicalize_name(Requirement(d).name): Requirement(d) for d in PYPROJECT["project"]["dependencies"]}
    assert {"torch", "numpy", "librosa", "papermill", "jupytext", "pooch"} <= set(deps)
    reqs = requirement_lines(REPO / "requirements.txt")
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {"cluster", "lab", "book", "test"} <= set(extras)
    for group in [PYPROJECT["project"]["dependencies"], *extras.values()]:
        for d in map(Requirement, group):
            name = canonicalize_name(d.name)
            assert name in reqs, f"requirements.txt lacks {d.name} (pyproject.toml has {d})"
            assert reqs[name].specifier == d.specifier, \
                f"{d.name}: pyproject {d.specifier}, requirements {reqs[name].specifier}"
    unbounded = [str(r) for r in reqs.values() if not any(s.operator in ("<", "<=", "==") for s in r.specifier)
                 and r.name != "dask"]         # calendar-versioned: no major version to bound
    assert not unbounded, f"no upper bound: {unbounded}"
    assert "torchaudio" not in reqs and "torchaudio" not in deps      # removed: nothing used it


def test_constraints_pin_every_requirement_within_its_bounds_and_match_this_venv():
    from importlib.metadata import PackageNotFoundError, version
    pins = constraints()
    assert "mvbook" not in pins
    for name, req in requirement_lines(REPO / "requirements.txt").items():
        assert name in pins, f"constraints.txt does not pin {name} (scripts/freeze_constraints.sh)"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} outside {req.specifier}"
        try:
            assert version(name) == pins[name], (f"this venv has {name} {version(name)}, constraints.txt "
                                                 f"{pins[name]}: rerun scripts/freeze_constraints.sh")
        except PackageNotFoundError:
            pytest.fail(f"{name} (requirements.txt) is not installed in this venv")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with mvbook installed non-editable from a copy of the sources."""
    tmp = tmp_path_factory.mktemp("pkg")
    src = tmp / "src"
    shutil.copytree(REPO / "mvbook", src / "mvbook", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    (src / "book").mkdir()
    shutil.copy(REPO / "book" / "training.md", src / "book" / "training.md")
    for f in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / f, src / f)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    borrowed = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (site / "zz_project_venv.pth").write_text("\n".join(borrowed) + "\n")      # after the venv's own
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-cache-dir",
                    str(src)], check=True, capture_output=True, cwd=tmp)
    return venv, tmp


def run(venv, cwd, *args, **env):
    e = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MVBOOK_DATA")} | env
    return subprocess.run([str(venv / "bin" / "mvbook"), *args], capture_output=True, text=True, cwd=cwd, env=e)


def test_non_editable_install_runs_help_train_and_a_one_cell_grid(installed):
    venv, tmp = installed
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import mvbook, mvbook.grid as g; print(mvbook.__file__); print(g.TRAINING_NOTEBOOK)"],
                           capture_output=True, text=True, cwd=tmp, check=True).stdout.split()
    assert where[0].startswith(str(venv)), f"mvbook imported from {where[0]}, not the fresh venv"
    notebook = Path(where[1])
    assert notebook.is_file() and not notebook.is_symlink()
    assert notebook.read_text() == (REPO / "book" / "training.md").read_text()

    h = run(venv, tmp, "--help")
    assert h.returncode == 0 and "grid" in h.stdout and "examples:" in h.stdout, h.stderr
    assert run(venv, tmp, "--version").stdout.strip() == f"mvbook {mvbook.__version__}"
    common = ["--dataset", "synthetic", "--preset", "smoke", "--epochs", "1", "--no-progress"]
    t = run(venv, tmp, "train", "--system", "cqt", "--fold", "1", *common)
    assert t.returncode == 0, t.stdout + t.stderr
    record = tmp / "runs/synthetic/smoke/cqt/fold1-seed0.json"        # the default folder (git-ignored)
    assert json.loads(record.read_text())["provenance"]["mvbook"] == mvbook.__version__
    # the same cell through the grid: its record gone, its finished checkpoint kept, so the notebook
    # (the one inside the package) runs and only re-evaluates and rewrites the record
    record.unlink()
    g = run(venv, tmp, "grid", "--systems", "cqt", "--folds", "1", *common)
    assert g.returncode == 0, g.stdout + g.stderr
    assert "1 trained" in g.stdout and "ETA" not in g.stdout          # --no-progress: no progress lines
    assert json.loads(record.read_text())["provenance"]["mvbook"] == mvbook.__version__
    executed = nbformat.read(record.with_suffix(".ipynb"), as_version=4)
    assert executed.cells[0].source.startswith("# Run: synthetic · smoke · cqt · fold 1 · seed 0")
    tab = run(venv, tmp, "table", "--results", "runs", "--dataset", "synthetic", "--preset", "smoke", "--format", "csv")
    assert tab.returncode == 0 and "CQT" in tab.stdout, tab.stderr


def python_floor() -> tuple[str, dict]:
    """The lowest Python on which every pin of constraints.txt installs: the highest lower bound of their
    Requires-Python, read from this venv's installed distributions (the pinned versions: the test above)."""
    from importlib.metadata import distributions

    from packaging.specifiers import SpecifierSet
    from packaging.version import Version
    pins = constraints()
    candidates = [Version(f"3.{minor}.{micro}") for minor in range(8, 16) for micro in range(30)]
    floors = {}
    for d in distributions():
        name, requires = canonicalize_name(d.metadata["Name"]), d.metadata.get("Requires-Python")
        if name in pins and d.version == pins[name] and requires:
            floors[name] = next(v for v in candidates if v in SpecifierSet(requires))
    floor = max(floors.values())
    return str(floor), {n: str(v) for n, v in floors.items() if v == floor}


def test_requires_python_is_the_lowest_python_the_pins_install_on():
    floor, by = python_floor()
    declared = PYPROJECT["project"]["requires-python"]
    assert declared == f">={floor}", f"pyproject.toml requires-python {declared!r}; the pins need >={floor} ({by})"
    readme = (REPO / "README.md").read_text()
    assert f"Python ≥ {floor}" in readme, f"the README does not say the floor, Python ≥ {floor}"
    ruff = PYPROJECT["tool"]["ruff"]["target-version"]
    assert ruff == "py" + "".join(floor.split(".")[:2]), f"ruff's target-version {ruff} is not the floor {floor}"


def test_the_readme_presets_table_lists_every_preset():
    from mvbook.config import PRESETS
    text = (REPO / "README.md").read_text()
    table = text[text.index("## Presets"):text.index("\n## ", text.index("## Presets") + 3)]
    listed = {line.split("|")[1].strip().strip("`") for line in table.splitlines() if line.startswith("| `")}
    assert listed == set(PRESETS), f"README presets table: {sorted(listed)}; the code has {sorted(PRESETS)}"
