"""The rules that keep the library's house in order, checked on its source
with ``ast``: no import cycle, no private name imported across modules, the
training loop blind to particular systems, system modules independent of each
other, the library free of the book's modules, imports at the top, and small
files and functions (counted in lines of code: docstrings, numpydoc sections
and doctests included, are documentation and do not count)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "mvbook"
BOOK = "mvbook.book"          # what exists only for the chapters: nothing outside it imports it
#: the layers of the package, top down (``mvbook/__init__.py`` says what each holds): a module imports
#: only from its own layer or the ones above; the command line (``mvbook.__main__``) sits below them all
LAYERS = (("mvbook", "mvbook.errors", "mvbook.schema", "mvbook.config", "mvbook.device", "mvbook.seeds"),
          ("mvbook.data",),
          ("mvbook.views",),
          ("mvbook.nets",),
          ("mvbook.blending", "mvbook.ensemble"),
          ("mvbook.evaluate", "mvbook.checkpoints", "mvbook.records"),
          ("mvbook.systems",),
          ("mvbook.train",),
          ("mvbook.results", "mvbook.tables", "mvbook.plan", "mvbook.power"),
          ("mvbook.grid", "mvbook.engines", "mvbook.verify"),
          (BOOK,),
          ("mvbook.__main__",))
MAX_LINES, MAX_FUNCTION = 350, 60     # lines of code, docstrings left out


def module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    is_pkg = MODULES[module].name == "__init__.py"
    base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_pkg else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str):
    """(imported mvbook module, imported names, line, at module level?) for each import."""
    tree = ast.parse(MODULES[module].read_text())
    top = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("mvbook"):
                    yield a.name, [], node.lineno, id(node) in top
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            if not target.startswith("mvbook"):
                continue
            names = [a.name for a in node.names]
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
            for t in subs or [target]:
                yield t, [] if subs else names, node.lineno, id(node) in top


def graph() -> dict:
    return {m: {t for t, _, _, _ in imports(m) if t in MODULES and t != m} for m in MODULES}


def test_no_import_cycle():
    g, state, cycles = graph(), {}, []

    def visit(m, stack):
        state[m] = "open"
        for t in sorted(g[m]):
            if state.get(t) == "open":
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t, stack + [t])
        state[m] = "done"

    for m in sorted(g):
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles


def test_no_private_name_is_imported_across_modules():
    bad = [(m, t, n, line) for m in MODULES for t, names, line, _ in imports(m) for n in names
           if n.startswith("_") and n != "__version__"]
    assert not bad, bad


def test_the_training_loop_imports_no_particular_system():
    systems = {t for t, _, _, _ in imports("mvbook.train") if t.startswith("mvbook.systems")}
    assert systems == {"mvbook.systems", "mvbook.systems.base"}


def test_system_modules_do_not_import_each_other():
    concrete = {m for m in MODULES if m.startswith("mvbook.systems.") and m != "mvbook.systems.base"}
    bad = {m: graph()[m] & concrete for m in concrete if graph()[m] & concrete}
    assert not bad, bad


def in_book(module: str) -> bool:
    return module == BOOK or module.startswith(BOOK + ".")


def test_the_library_never_imports_the_books_modules():
    bad = {m: {t for t in graph()[m] if in_book(t)} for m in MODULES if not in_book(m)}
    bad = {m: ts for m, ts in bad.items() if ts}
    assert not bad, bad


def layer(module: str) -> int:
    """The index in :data:`LAYERS` of the longest prefix that names ``module`` (the package itself: 0)."""
    best = max((len(p), i) for i, group in enumerate(LAYERS) for p in group
               if module == p or (p != "mvbook" and module.startswith(p + ".")) or (p == "mvbook" and module == p))
    return best[1]


def test_every_module_has_a_layer():
    named = [p for group in LAYERS for p in group if p != "mvbook"]
    missing = [m for m in MODULES if m != "mvbook" and not any(m == p or m.startswith(p + ".") for p in named)]
    assert not missing, f"modules in no layer of LAYERS: {missing}"


def test_no_import_runs_back_up_the_layers():
    bad = [(m, t) for m, targets in graph().items() for t in targets if layer(t) > layer(m)]
    assert not bad, "imports from a lower layer: " + ", ".join(f"{m} -> {t}" for m, t in bad)


def test_the_layer_rule_can_fail():
    assert layer("mvbook.systems.stacking") > layer("mvbook.nets.crnn") > layer("mvbook.views.framing")
    assert layer("mvbook.book.summary") > layer("mvbook.results") > layer("mvbook.train")
    assert layer("mvbook.errors") == 0 and layer("mvbook") == 0


def test_no_function_local_imports_of_mvbook_modules_outside_the_cli():
    bad = [(m, t, line) for m in MODULES if m != "mvbook.__main__" for t, _, line, top in imports(m) if not top]
    assert not bad, bad


def docstring_lines(tree: ast.AST) -> set[int]:
    """The line numbers of every module, class and function docstring in ``tree``."""
    lines = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and n.body:
            first = n.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value,
                                                                                                  str):
                lines |= set(range(first.lineno, first.end_lineno + 1))
    return lines


def test_docstring_lines_are_counted_as_documentation():
    tree = ast.parse('"""Module."""\n\n\ndef f(x):\n    """One\n\n    Two.\n    """\n    return x\n')
    assert docstring_lines(tree) == {1, 5, 6, 7, 8}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_files_and_functions_are_small(module):
    source = MODULES[module].read_text()
    tree = ast.parse(source)
    docs = docstring_lines(tree)
    code = len(source.splitlines()) - len(docs)
    assert code <= MAX_LINES, f"{module}: {code} lines of code"
    if module == "mvbook.book.plots":            # figure drawing may take more lines
        return
    long = [(n.name, size) for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and (size := n.end_lineno - n.lineno + 1 - len(docs & set(range(n.lineno, n.end_lineno + 1))))
            > MAX_FUNCTION]
    assert not long, f"{module}: {long}"


def test_the_rules_see_the_package():
    """The checks above would pass vacuously on an empty graph."""
    g = graph()
    assert {"mvbook.train", "mvbook.systems", "mvbook.systems.base", "mvbook.nets.crnn"} <= set(g)
    assert "mvbook.systems.base" in g["mvbook.train"] and "mvbook.nets.crnn" in g["mvbook.systems.base"]
    assert sum(map(len, g.values())) > 40


def test_the_readmes_layout_names_what_exists():
    """The README's *Layout* table: every ``mvbook/…`` file it names exists (a cell lists
    ``a.py``, ``b.py`` in the folder of the first), and it names every subpackage."""
    readme = (PKG.parent / "README.md").read_text()
    table = readme[readme.index("## Layout"):readme.index("\n## ", readme.index("## Layout") + 3)]
    missing, named = [], set()
    for line in table.splitlines():
        cell = line.split("|")[1] if line.startswith("| `mvbook/") else ""
        paths = [p for p in (s.strip().strip("`") for s in cell.split(",")) if p]
        folder = str(Path(paths[0]).parent) if paths and not paths[0].endswith("/") else ""
        for p in paths:
            full = PKG.parent / (p if p.startswith("mvbook/") else f"{folder}/{p}")
            named.add(str(full.relative_to(PKG.parent)).rstrip("/"))
            if not full.exists():
                missing.append(p)
    subpackages = {str(p.parent.relative_to(PKG.parent)) for p in PKG.glob("*/__init__.py")}
    assert len(named) > 20 and not missing, f"the README's layout names what is not there: {missing}"
    assert subpackages - {"mvbook/notebooks"} <= named, f"not in the README's layout: {subpackages - named}"
