"""The book's layout: Table 3 fits its column on a laptop (1366 px) and on a phone
(400 px), measured in headless Chromium; and every figure a chapter draws has an alt
text that says what it shows (read from the chapters' source, no build needed: a
figure shown with ``figure_html`` and its alt, or a notebook image output with the
cell option ``mystnb: {image: {alt: …}}``, as the run notebooks of ``book/training``
keep their PNG outputs).

The full book executes every chapter (minutes; ``tests/test_book.py``), so this test
renders only what decides the layout: the Table 3 elements that *Results* and *Beyond
the paper* display (``mvbook.book.report.table3_html`` on the committed records, with
the chapters' arguments), as the output of a ``remove-input`` notebook cell in a
one-page Sphinx site with the book's theme (``sphinx_book_theme``, as jupyter-book
uses) and the book's CSS (``book/_static/mvbook.css``), laid out at each width by
Chromium's device emulation (a window cannot be narrower than 500 px) and measured by a
script over the DevTools protocol (``tests/test_lab.py``'s client).

No browser: skipped with the reason, but a failure when ``MVBOOK_REQUIRE_BROWSER`` is
set (``tests/test_lab.py``'s convention; ``.ci/run`` sets it). About 30–60 s; the alt
texts' test, a second.
"""
import ast
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import yaml
from test_lab import browser
from test_lab import chromium as start_chromium

REPO = Path(__file__).resolve().parents[1]
WIDTHS = (1366, 400)                       # px: a laptop, a phone
MIN_COLUMN = {1366: 600, 400: 300}         # px: a column narrower than this means the page did not lay out

CONF = """project = "Table 3 layout"
extensions = ["myst_nb"]
html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["mvbook.css"]
nb_execution_mode = "off"
exclude_patterns = ["_build", "jupyter_execute"]
"""

# The article column's content box, and each Table 3 element's width and cells' extent
# (tables folded in a <details> are measured only for being folded).
MEASURE = """(() => {
  const col = document.querySelector('article.bd-article');
  const cs = getComputedStyle(col), box = col.getBoundingClientRect();
  const left = box.left + parseFloat(cs.paddingLeft), right = box.right - parseFloat(cs.paddingRight);
  const tables = [...document.querySelectorAll('table.mv-table3')].map(t => {
    const folded = t.closest('details');
    const cells = [...t.querySelectorAll('th, td')].map(c => c.getBoundingClientRect());
    return {caption: t.closest('.output').querySelector('[data-mv-table]').dataset.mvTable,
            folded: !!folded, open: !!(folded && folded.open), width: t.getBoundingClientRect().width,
            right: Math.max(...cells.map(r => r.right)), left: Math.min(...cells.map(r => r.left))};
  });
  const code = document.querySelectorAll('details.mv-code');
  return {viewport: window.innerWidth, column: right - left, left, right, tables,
          code: code.length, codeOpen: [...code].some(d => d.open)};
})()"""


def chapter_tables() -> dict:
    """Name → Table 3 HTML, with the arguments *Results* and *Beyond the paper* use."""
    from mvbook.book import chapters as ch
    from mvbook.book import report
    main, records = ch.main_records()
    if not records:
        pytest.fail(f"no committed records under {ch.results_dir()}: there is no Table 3 to measure", pytrace=False)
    folds = ch.protocol_folds(main[0])
    seeds = sorted({0} | {r["seed"] for r in records})
    return {
        "Results: Table 3": report.table3_html(records, *main, folds=folds, runs_below=True)[0],
        "Results: Algorithm 1 read literally": report.table3_html(
            records, *main, folds=folds, runs_below=True, seeds=seeds,
            rows=["mv_literal", "mv_literal_se", "mv_literal_se_uniform"])[0],
        "Beyond the paper: every row": report.table3_html(records, *main, folds=folds, seeds=seeds, runs_below=True,
                                                          base="../../", extended=True)[0],
    }


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    """The one-page site holding the chapters' Table 3 elements, built with the book's theme and CSS."""
    exe = browser()                                  # skip (or fail in CI) before the slow part
    src = tmp_path_factory.mktemp("layout")
    (src / "conf.py").write_text(CONF)
    shutil.copytree(REPO / "book" / "_static", src / "_static")
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_markdown_cell("# Results\n\n## Table 3\n\nThe table as the chapter shows it.")]
    for name, html in chapter_tables().items():
        nb.cells.append(nbformat.v4.new_code_cell("show_table()", metadata={"tags": ["remove-input"]}, outputs=[
            nbformat.v4.new_output("display_data", data={"text/html": f"<div data-mv-table='{name}'></div>" + html,
                                                         "text/plain": name})]))
    nbformat.write(nb, src / "index.ipynb")
    out = subprocess.run([sys.executable, "-m", "sphinx", "-q", "-b", "html", str(src), str(src / "_build")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"the one-page site did not build:\n{out.stderr[-3000:]}"
    index = src / "_build" / "index.html"
    return index, exe


@pytest.fixture(scope="module")
def chromium(page, tmp_path_factory):
    """Headless Chromium on the page's folder, driven over the DevTools protocol."""
    with start_chromium(page[1], tmp_path_factory.mktemp("chromium-profile")) as dt:
        dt.call("Runtime.enable")
        yield dt


def measure(dt, index: Path, width: int) -> dict:
    """What MEASURE finds on the page laid out ``width`` px wide (a phone's viewport below 600 px)."""
    dt.call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=width < 600)
    dt.call("Page.navigate", url=index.as_uri())
    end = time.time() + 60
    while dt.evaluate("document.readyState") != "complete":
        assert time.time() < end, f"{index} did not load within 60 s at {width} px"
        time.sleep(0.2)
    m = dt.evaluate(MEASURE)
    assert m and m["viewport"] == width, f"the page was laid out {m and m['viewport']} px wide, not {width}: {m}"
    return m


@pytest.mark.parametrize("width", WIDTHS)
def test_table3_fits_its_column(page, chromium, width):
    m = measure(chromium, page[0], width)
    assert m["column"] >= MIN_COLUMN[width], f"at {width} px the article column is only {m['column']:.0f} px: {m}"
    shown = [t for t in m["tables"] if not t["folded"]]
    assert len(shown) == 3, f"expected the 3 chapters' tables of means unfolded, measured {m['tables']}"
    for t in shown:
        assert t["right"] <= m["right"] + 1 and t["left"] >= m["left"] - 1, (
            f"{t['caption']} is {t['width']:.0f} px wide in a {m['column']:.0f} px column at {width} px "
            f"(cells from {t['left']:.0f} to {t['right']:.0f} px, column {m['left']:.0f}–{m['right']:.0f} px): "
            "it does not fit; see book/_static/mvbook.css and mvbook/book/report.py")
    folded = [t for t in m["tables"] if t["folded"]]
    assert len(folded) == 3 and not any(t["open"] for t in folded), \
        f"each chapter's per-run columns belong in a closed <details> below its means: {m['tables']}"
    assert m["code"] == 3 and not m["codeOpen"], f"the commits of each row belong in a closed <details>: {m}"
    print(f"{width} px: column {m['column']:.0f} px; cells span " + "; ".join(
        f"{t['caption']} {t['right'] - t['left']:.0f} px" for t in shown))


# -- every figure a chapter draws says what it shows ------------------------------------------------

CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.M | re.S)
MAKES_FIGURE = re.compile(r"^(plot_\w+|draw_network|fig2|subplots|figure)$")
MIN_ALT = 60                               # characters of literal text: what the figure shows


def chapter_cells():
    """(chapter, cell number, the cell's options, parsed cell) of every code cell of the book's chapters."""
    for md in sorted([*REPO.glob("book/*.md"), *REPO.glob("book/beyond/*.md")]):
        for n, match in enumerate(CELL.finditer(md.read_text(encoding="utf-8")), 1):
            head = re.match(r"---\n(.*?)^---\n", match.group(1), flags=re.M | re.S)
            code = match.group(1)[head.end():] if head else match.group(1)
            code = "\n".join("" if line.startswith((":", "%", "!")) else line for line in code.splitlines())
            yield md.relative_to(REPO).as_posix(), n, yaml.safe_load(head.group(1)) if head else {}, ast.parse(code)


def _called(node) -> str:
    f = node.func
    return f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")


def _alt_text(alt, near: dict) -> str | None:
    """The words of an alt argument: a string, an f-string's literal parts, their sum, a NAME or
    NAME.format(...) of what the chapter assigned to NAME last (``near``); None for a call of a
    ``*_alt`` function (the library's words, tested with the library)."""
    if isinstance(alt, ast.Constant) and isinstance(alt.value, str):
        return alt.value
    if isinstance(alt, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in alt.values)
    if isinstance(alt, ast.BinOp) and isinstance(alt.op, ast.Add):
        return (_alt_text(alt.left, near) or "") + "{}"
    if isinstance(alt, ast.Name) and alt.id in near:
        return _alt_text(near[alt.id], near)
    if isinstance(alt, ast.Call) and _called(alt) == "format" and isinstance(alt.func.value, ast.Name):
        return _alt_text(alt.func.value, near)
    if isinstance(alt, ast.Call) and _called(alt).endswith("_alt"):
        return None
    return ""


def _assigned_before(tree, line: int, chapter_wide: dict) -> dict:
    """NAME → the value last assigned to it in the cell before ``line`` (else in the chapter)."""
    near = dict(chapter_wide)
    for node in sorted((n for n in ast.walk(tree) if isinstance(n, ast.Assign) and n.lineno < line),
                       key=lambda n: n.lineno):
        near.update({t.id: node.value for t in node.targets if isinstance(t, ast.Name)})
    return near


def test_every_figure_of_a_chapter_has_an_alt_text_that_says_what_it_shows():
    cells = list(chapter_cells())
    chapter_wide = {}
    for chapter, _, _, tree in cells:
        chapter_wide.setdefault(chapter, {}).update(_assigned_before(tree, 10 ** 9, {}))
    drawn = 0
    for chapter, n, options, tree in cells:
        calls = [c for c in ast.walk(tree) if isinstance(c, ast.Call)]
        shows = [c for c in calls if isinstance(c.func, ast.Attribute) and c.func.attr == "show"]   # plt, fig
        makes = [c for c in calls if MAKES_FIGURE.match(_called(c))]
        shown = [c for c in calls if _called(c) == "figure_html"]
        drawn += bool(makes)
        if shows:                          # the notebook's own image output: the cell's options give its alt
            alt = ((options or {}).get("mystnb") or {}).get("image", {}).get("alt", "")
            assert alt.startswith("Figure: ") and len(alt) >= MIN_ALT, (
                f"{chapter}, code cell {n}: .show() displays a figure with no alt text of its own; give the cell "
                "the option mystnb: {image: {alt: 'Figure: what it shows'}}, or show the figure with "
                f"display(HTML(figure_html(fig, 'Figure: what it shows'))); found {alt!r}")
        elif makes:
            assert len(shown) >= len(makes), (
                f"{chapter}, code cell {n} draws {len(makes)} figure(s) ({', '.join(map(_called, makes))}) but shows "
                f"{len(shown)} with mvbook.book.plots_claims.figure_html and an alt text")
        for c in shown:
            alt = c.args[1] if len(c.args) > 1 else next((k.value for k in c.keywords if k.arg == "alt"), None)
            text = _alt_text(alt, _assigned_before(tree, c.lineno, chapter_wide[chapter]))
            assert text is None or len(text) >= MIN_ALT, (         # figure_html puts "Figure: " in front
                f"{chapter}, code cell {n}: the alt text of figure_html must say what the figure shows in at "
                f"least {MIN_ALT} characters; found {text or (ast.unparse(alt) if alt else None)!r}")
    assert drawn >= 10, f"only {drawn} code cells that draw a figure were found: the parser missed some"
