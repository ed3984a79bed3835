#!/usr/bin/env python3
"""Write the chapters as Jupyter notebooks, ``book/<chapter>.ipynb`` beside each
``book/<chapter>.md`` (jupytext), for readers who open them in JupyterLab
without jupytext, in Colab, or anywhere else a notebook runs.

    .venv/bin/python scripts/make_notebooks.py            # every chapter of _toc.yml
    .venv/bin/python scripts/make_notebooks.py --clean    # remove them again
    .venv/bin/python scripts/make_notebooks.py --collect _build/notebooks   # move them there

The build (``scripts/build_book.sh``) and Binder's ``postBuild`` run it; the
notebooks are build outputs, never committed (the Pages workflow publishes them
on the branch that the book's Colab and Binder buttons open). Two things differ
from the chapter text:

* each ``{literalinclude}`` of library code (``:pyobject:``, ``:start-at:``…)
  becomes a fenced Python block holding that code, so that the code beside each
  equation is there outside the HTML book too;
* a first cell, which does nothing outside Colab, clones the repository named
  by ``repository.url`` in ``_config.yml``, installs mvbook from it and moves
  to the chapter's folder (chapters run where the book runs them).
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

import jupytext
import nbformat
import yaml

REPO = Path(__file__).resolve().parents[1]
INCLUDE = re.compile(r"^```\{literalinclude\}[ \t]+(?P<path>\S+)[ \t]*\n(?P<options>(?::[\w-]+:.*\n)*)```[ \t]*$",
                     re.MULTILINE)
COLAB_CELL = '''\
# In Colab: fetch the repository and install mvbook (elsewhere this cell does nothing).
import os, sys
if "google.colab" in sys.modules:
    if not os.path.isdir("/content/mvbook"):
        !git clone -q --depth 1 --branch {branch} {url} /content/mvbook
        !pip install -q -e /content/mvbook
    sys.path.insert(0, "/content/mvbook")
    os.chdir("/content/mvbook/{folder}")'''


def config() -> dict:
    return yaml.safe_load((REPO / "_config.yml").read_text())


def toc_files() -> list[str]:
    """Every page of ``_toc.yml``, root first, as paths without ``.md``."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for e in entries or []:
            if "file" in e:
                files.append(e["file"])
            walk(e.get("sections"))
    for part in toc.get("parts", []):
        walk(part["chapters"])
    return files


def toc_chapters() -> list[Path]:
    """The chapters of ``_toc.yml`` that hold code (globbed run notebooks left out)."""
    return [p for p in (REPO / f"{f}.md" for f in toc_files()) if "```{code-cell}" in p.read_text()]


def _option(options: str, name: str):
    m = re.search(rf"^:{name}:[ \t]*(.*)$", options, re.MULTILINE)
    return None if m is None else m.group(1).strip().strip('"').strip("'")


def included_code(chapter: Path, path: str, options: str) -> str:
    """The text a ``{literalinclude}`` shows (``:pyobject:``, ``:start-at:``,
    ``:end-before:``; otherwise the whole file)."""
    source = (chapter.parent / path).resolve()
    if not source.is_file():
        raise SystemExit(f"{chapter}: literalinclude of {path}: {source} does not exist")
    text = source.read_text()
    obj = _option(options, "pyobject")
    if obj:
        node = ast.parse(text)
        for name in obj.split("."):
            node = next((n for n in ast.iter_child_nodes(node) if getattr(n, "name", None) == name), None)
            if node is None:
                raise SystemExit(f"{chapter}: literalinclude of {path}: no object {obj!r} in {source}")
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        lines = text.splitlines()[first - 1:node.end_lineno]
        indent = min(len(x) - len(x.lstrip()) for x in lines if x.strip())
        return "\n".join(x[indent:] for x in lines)
    start, end = _option(options, "start-at"), _option(options, "end-before")
    if start:
        if start not in text:
            raise SystemExit(f"{chapter}: literalinclude of {path}: {start!r} not found in {source}")
        text = text[text.index(start):]
    if end and end in text:
        text = text[:text.index(end)]
    return text.rstrip("\n")


def expand_includes(chapter: Path, markdown: str) -> str:
    def code(m):
        where = f"{m.group('path').lstrip('./')}" + (f", {o}" if (o := _option(m.group("options"), "pyobject")) else "")
        return f"```python\n# {where}\n{included_code(chapter, m.group('path'), m.group('options'))}\n```"
    return INCLUDE.sub(code, markdown)


def notebook(chapter: Path):
    """The chapter as an ``nbformat`` notebook, as described above."""
    nb = jupytext.read(chapter)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = expand_includes(chapter, cell.source)
    repo = config().get("repository", {})
    setup = nbformat.v4.new_code_cell(COLAB_CELL.format(url=repo.get("url", ""), branch=repo.get("branch", "main"),
                                                        folder=chapter.parent.relative_to(REPO).as_posix()))
    setup.metadata["tags"] = ["remove-cell", "colab-setup"]
    nb.cells.insert(0, setup)
    nb.metadata.pop("jupytext", None)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("chapters", nargs="*", type=Path, help="chapter files (default: every chapter of _toc.yml)")
    ap.add_argument("--clean", action="store_true", help="remove the notebooks instead")
    ap.add_argument("--collect", type=Path, default=None,
                    help="move the notebooks written earlier to this folder (same paths below it) instead")
    args = ap.parse_args(argv)
    for chapter in [p.resolve() for p in args.chapters] or toc_chapters():
        out = chapter.with_suffix(".ipynb")
        if args.clean or args.collect:
            if args.collect and out.exists():
                dest = args.collect.resolve() / out.relative_to(REPO)
                dest.parent.mkdir(parents=True, exist_ok=True)
                out.replace(dest)
            out.unlink(missing_ok=True)
            continue
        nbformat.write(notebook(chapter), out)
        print(f"make_notebooks: {out.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
