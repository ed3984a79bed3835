"""The declared public API: every module of mvbook says what it exports in
``__all__``, every name listed exists, and every function and class listed
says what it does."""
import ast
import functools
import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mvbook
from mvbook import nets, views


def modules():
    yield "mvbook"
    for info in pkgutil.walk_packages(mvbook.__path__, "mvbook."):
        yield info.name


@pytest.mark.parametrize("name", sorted(modules()))
def test_every_module_declares_its_public_names_and_documents_them(name):
    module = importlib.import_module(name)
    assert module.__doc__, f"{name} has no module docstring"
    assert isinstance(getattr(module, "__all__", None), list), f"{name} defines no __all__"
    assert len(set(module.__all__)) == len(module.__all__), f"{name}.__all__ lists a name twice"
    for n in module.__all__:
        assert not n.startswith("_") or n.startswith("__"), f"{name}.__all__ lists the private {n!r}"
        assert hasattr(module, n), f"{name}.__all__ lists {n!r}, which {name} does not define"
        obj = getattr(module, n)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert inspect.getdoc(obj), f"{name}.{n} has no docstring"


@pytest.mark.parametrize("name", sorted(modules()))
def test_names_defined_in_a_module_are_listed_or_private(name):
    """A public-looking name a module defines (function, class, constant) is in its
    ``__all__``; one used only inside the module has a leading underscore."""
    module = importlib.import_module(name)
    defined = set()
    for node in ast.parse(inspect.getsource(module)).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defined |= {t.id for t in targets if isinstance(t, ast.Name)}
    public = {n for n in defined if not n.startswith("_")}
    assert public <= set(module.__all__), f"{name} defines {sorted(public - set(module.__all__))} outside __all__"


def test_every_module_has_its_page_in_the_books_api_reference():
    pages = "".join(p.read_text() for p in (Path(__file__).parents[1] / "book" / "api").glob("*.md"))
    documented = set(re.findall(r"\.\. automodule:: (\S+)", pages))
    assert set(modules()) - documented == set(), "modules missing from book/api"


def test_the_top_level_exports_the_errors():
    from mvbook.errors import ConfigError, DataError, DivergedError, MvbookError, RunConflictError
    assert {"MvbookError", "DataError", "ConfigError", "RunConflictError", "DivergedError"} <= set(mvbook.__all__)
    for e in (DataError, ConfigError, RunConflictError, DivergedError):
        assert issubclass(e, MvbookError) and getattr(mvbook, e.__name__) is e


# --- issue 31: what a chapter calls documents its parameters and what it returns ------------------

_BOOK = Path(__file__).parents[1] / "book"
_CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.M | re.S)

def _cell_code(cell: str) -> str:
    """A code cell's Python: without its MyST options (``:tags: …`` lines, or a YAML
    block between ``---`` lines at its top) and IPython magics."""
    cell = re.sub(r"\A---\n.*?^---\n", "", cell, flags=re.M | re.S)
    return "\n".join(line for line in cell.splitlines() if not line.startswith(":")
                     and not line.lstrip().startswith(("%", "!")))


@functools.cache
def _chapter_functions() -> dict:
    """``"module.name"`` → function, for every mvbook function a chapter's code cells
    import by name (``from mvbook.x import f``) or use as an attribute of an imported
    mvbook module (``from mvbook import summary as S`` … ``S.fmt_p(p)``)."""
    found = {}
    for page in sorted(_BOOK.rglob("*.md")):
        modules, names = {}, {}                 # a page's cells share one namespace
        trees = [ast.parse(_cell_code(c), filename=str(page)) for c in _CODE_CELL.findall(page.read_text())]
        for node in (n for t in trees for n in ast.walk(t)):
            if isinstance(node, ast.Import):
                modules |= {a.asname or a.name: importlib.import_module(a.name) for a in node.names
                            if a.name.split(".")[0] == "mvbook"}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "mvbook":
                for a in node.names:
                    try:                            # a submodule (from mvbook import summary)
                        obj = importlib.import_module(f"{node.module}.{a.name}")
                    except ModuleNotFoundError:     # a name the module defines
                        obj = getattr(importlib.import_module(node.module), a.name)
                    (modules if inspect.ismodule(obj) else names)[a.asname or a.name] = obj
        used = list(names.values())
        used += [getattr(modules[n.value.id], n.attr, None) for t in trees for n in ast.walk(t)
                 if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in modules]
        for obj in used:
            if inspect.isfunction(obj) and obj.__module__.split(".")[0] == "mvbook":
                found[f"{obj.__module__}.{obj.__name__}"] = obj
    return found


def _returns_a_value(fn) -> bool:
    """Whether ``fn`` returns something: not when annotated ``-> None``; else when its
    own body (not a nested function's) has a ``return`` of a value or a ``yield``."""
    if inspect.signature(fn).return_annotation in (None, "None"):
        return False
    stack = list(ast.parse(textwrap.dedent(inspect.getsource(fn))).body[0].body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            return True
        if isinstance(node, ast.Return) and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value is None):
            return True
        stack.extend(ast.iter_child_nodes(node))
    return False


def _section(doc: str, title: str) -> str | None:
    """The body of a numpydoc section (``title`` underlined with dashes), or None."""
    m = re.search(rf"^{title}\n-{{{len(title)}}}\n(.*?)(?=^\S[^\n]*\n-{{3,}}\n|\Z)", doc, re.M | re.S)
    return m and m.group(1)


def test_the_book_calls_library_functions():
    """The collector of the next test sees the chapters' calls (it is not vacuously empty)."""
    found = _chapter_functions()
    assert len(found) > 40
    assert {"mvbook.book.summary.fmt_p", "mvbook.book.chapters.main_records", "mvbook.book.plots.attention_maps",
            "mvbook.book.plots_runs.plot_blending_trace", "mvbook.results.table3", "mvbook.config.get_preset",
            "mvbook.data.synthetic.harmonic_complex"} <= set(found)


def _numpydoc_gaps(name: str, obj) -> list[str]:
    """What ``obj``'s numpydoc lacks: a ``Parameters`` section naming each of its
    parameters (a class: its constructor's; one that only passes ``*args, **kwargs``
    on needs the section, not those names) and, for a function that returns a
    value (:func:`_returns_a_value`), a ``Returns`` or ``Yields`` section."""
    doc, gaps = inspect.getdoc(obj) or "", []
    sig = inspect.signature(obj).parameters.values()
    params = [("**" if p.kind is p.VAR_KEYWORD else "*" if p.kind is p.VAR_POSITIONAL else "") + p.name for p in sig]
    if params:
        section = _section(doc, "Parameters")
        documented = {n.strip() for line in (section or "").splitlines() if line and not line[0].isspace()
                      for n in line.split(" : ")[0].split(",")}
        passed_on = inspect.isclass(obj) and all(p.startswith("*") for p in params)
        if section is None:
            gaps.append(f"{name} takes {params} but its docstring has no Parameters section")
        elif not passed_on and not set(params) <= documented:
            gaps.append(f"{name}: Parameters does not document {sorted(set(params) - documented)}")
    if inspect.isfunction(obj) and _returns_a_value(obj) \
            and _section(doc, "Returns") is None and _section(doc, "Yields") is None:
        gaps.append(f"{name} returns a value but its docstring has no Returns section")
    return gaps


@pytest.mark.parametrize("name", sorted(_chapter_functions()))
def test_chapter_called_functions_document_parameters_and_returns(name):
    """numpydoc (issue 31): a function a chapter calls has a ``Parameters`` section
    naming each of its parameters (when it takes any) and a ``Returns`` or ``Yields``
    section (when it returns a value, :func:`_returns_a_value`)."""
    assert _numpydoc_gaps(name, _chapter_functions()[name]) == []


# --- issue 45: the core documents its whole public API, not only what chapters call ---------------

#: the networks and the views (every module of the two subpackages), the blending, the ensembles,
#: the evaluation, and one run's training
CORE = tuple(sorted(m.name for pkg in (nets, views) for m in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + "."))) \
    + ("mvbook.blending", "mvbook.ensemble", "mvbook.evaluate", "mvbook.train", "mvbook.systems.base")


def _core_api() -> dict:
    """``"module.name"`` → function or class, for every such name in a core module's ``__all__``."""
    found = {}
    for m in CORE:
        module = importlib.import_module(m)
        found |= {f"{m}.{n}": getattr(module, n) for n in module.__all__
                  if inspect.isfunction(getattr(module, n)) or inspect.isclass(getattr(module, n))}
    return found


def test_the_core_api_is_collected():
    """The next test's collector sees the core (it is not vacuously empty)."""
    found = _core_api()
    assert len(found) >= 69
    assert {"mvbook.blending.AdaptiveBlender", "mvbook.blending.replay_losses", "mvbook.ensemble.self_ensemble",
            "mvbook.nets.crnn.MultiViewNet", "mvbook.views.framing.n_frames", "mvbook.evaluate.run"} <= set(found)


@pytest.mark.parametrize("name", sorted(_core_api()))
def test_every_core_name_documents_parameters_and_returns(name):
    """numpydoc as librosa (issue 45, item 4): every function and class in the
    ``__all__`` of a core module (:data:`CORE`)."""
    assert _numpydoc_gaps(name, _core_api()[name]) == []


def test_the_core_doctests_run_under_pytest():
    """The doctests of the core (the maths: framing, Eq. 3–5, Eq. 6–7) are collected
    by ``--doctest-modules`` over ``mvbook`` (pyproject's pytest options)."""
    import tomllib
    options = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "--doctest-modules" in options["addopts"] and "mvbook" in options["testpaths"]
    import doctest
    for m in ("views.framing", "blending", "ensemble"):
        tests = doctest.DocTestFinder().find(importlib.import_module(f"mvbook.{m}"))
        assert sum(len(t.examples) for t in tests) >= 5, f"mvbook.{m} has few doctests"


def test_the_api_pages_build_with_no_sphinx_warning():
    """Issue 31: the API reference (autodoc of every module, nit-picky, warnings as
    errors) resolves every cross-reference of the docstrings; about a minute."""
    repo = Path(__file__).parents[1]
    done = subprocess.run(["bash", "scripts/check_api_docs.sh"], cwd=repo, capture_output=True, text=True,
                          env={**os.environ, "PYTHON": sys.executable}, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


# --- issue 45, item 6: no side effects on import ----------------------------------------------------

_IMPORT_PROBE = """
import json, os, sys, warnings
env, filters = dict(os.environ), list(warnings.filters)
import mvbook
print(json.dumps({"env": dict(os.environ) == env, "filters": list(warnings.filters) == filters,
                  "numba": "numba" in sys.modules}))
"""


def test_import_mvbook_writes_nothing_and_changes_no_global_state(tmp_path):
    """``import mvbook`` in a fresh process with an empty HOME: no file or folder appears
    (no ``~/.cache/mvbook/numba``), and ``os.environ`` (no ``NUMBA_CACHE_DIR``) and
    ``warnings.filters`` are as before."""
    import json
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "MVBOOK_CACHE")}
    env |= {"HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", _IMPORT_PROBE], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"env": True, "filters": True, "numba": False}
    assert list(home.rglob("*")) == []


def test_the_numba_cache_goes_under_the_feature_cache_when_the_features_are_imported(tmp_path):
    """What ``import mvbook`` no longer does, importing :mod:`mvbook.views.features` does: numba's
    cache folder under ``$MVBOOK_CACHE`` (an explicit ``NUMBA_CACHE_DIR`` wins)."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"} | {"MVBOOK_CACHE": str(tmp_path)}
    probe = "import mvbook.views.features, numba, os; print(numba.config.CACHE_DIR, os.environ['NUMBA_CACHE_DIR'])"
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(tmp_path / "numba")] * 2
    assert (tmp_path / "numba").is_dir()
