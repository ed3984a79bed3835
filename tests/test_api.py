"""The declared public API: every module of mvbook says what it exports in
``__all__``, every name listed exists, and every function and class listed
says what it does."""
import importlib
import inspect
import pkgutil

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
    """A public-looking name a module defines is in its ``__all__`` (or is private)."""
    module = importlib.import_module(name)
    defined = {n for n, obj in vars(module).items()
               if not n.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
               and getattr(obj, "__module__", None) == name}
    assert defined <= set(module.__all__), f"{name} defines {sorted(defined - set(module.__all__))} outside __all__"


def test_the_top_level_exports_the_errors():
    from mvbook.errors import ConfigError, DataError, DivergedError, MvbookError, RunConflictError
    assert {"MvbookError", "DataError", "ConfigError", "RunConflictError", "DivergedError"} <= set(mvbook.__all__)
    for e in (DataError, ConfigError, RunConflictError, DivergedError):
        assert issubclass(e, MvbookError) and getattr(mvbook, e.__name__) is e
