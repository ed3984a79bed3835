"""The declared public API: every module of mvbook says what it exports in
``__all__``, every name listed exists, and every function and class listed
says what it does."""
import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import mvbook


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
