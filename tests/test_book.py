"""The book, built once: `jupyter-book build` executes every chapter (preset
smoke, the offline synthetic dataset) into a temporary folder, with warnings as
errors; then the HTML is checked for local MathJax, the paper's equations,
figures, audio players, working internal links and clean outputs.

Takes a few minutes (the chapters train two smoke runs). Set
``MVBOOK_TEST_BOOK_DATA=1`` to build with ``$MVBOOK_DATA`` (real ESC-10) instead.
"""
import ast
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from bs4 import BeautifulSoup

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from make_notebooks import toc_files  # noqa: E402  (the pages of _toc.yml)

CHAPTER_FIGURES = {"book/views": 3, "book/crnn": 1, "book/multiview": 1, "book/blending": 2, "book/ensemble": 1,
                   "book/training": 2, "book/results": 2, "book/beyond/ablations": 1, "book/beyond/fusion": 1,
                   "book/beyond/views": 1}


@pytest.fixture(scope="session")
def build(tmp_path_factory):
    """Build the book once; returns (html folder, build log)."""
    out = tmp_path_factory.mktemp("book")
    (out / "started").touch()                                   # when the build began
    fetch = subprocess.run([str(REPO / "scripts" / "fetch_mathjax.sh")], capture_output=True, text=True)
    assert fetch.returncode == 0, f"MathJax could not be fetched:\n{fetch.stderr}"
    env = dict(os.environ, MVBOOK_PRESET="smoke", MVBOOK_RUNS=str(out / "runs"), PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.pop("MVBOOK_DATASET", None)
    if not os.environ.get("MVBOOK_TEST_BOOK_DATA"):
        env.pop("MVBOOK_DATA", None)
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jb), "build", str(REPO), "--path-output", str(out), "--all",
                           "--warningiserror", "--keep-going"],
                          capture_output=True, text=True, env=env, timeout=1800)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"jupyter-book build failed:\n{log[-6000:]}"
    return out / "_build" / "html", log


def pages(html: Path):
    return {f: html / f"{f}.html" for f in toc_files()}


def soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def test_build_has_no_warnings_and_executed_every_chapter(build):
    html, log = build
    assert not re.search(r"WARNING: |ERROR: ", log), log[-4000:]
    for f in toc_files():
        if "```{code-cell}" in (REPO / f"{f}.md").read_text():       # not the references or the API reference
            assert f"{f}.md: Execut" in log or f"{f}.md: Using cached" in log, f"{f} was not executed"


def test_every_page_of_the_toc_exists(build):
    html, _ = build
    for f, page in pages(html).items():
        assert page.is_file(), f"missing page {page}"
    assert (html / "index.html").is_file()


def test_mathjax_is_served_locally(build):
    html, _ = build
    with_math = 0
    for f, page in pages(html).items():
        s = soup(page)
        srcs = [t["src"] for t in s.find_all("script", src=True)]
        assert not [u for u in srcs if urlparse(u).scheme in ("http", "https") or u.startswith("//")], f
        mj = [u for u in srcs if "mathjax" in u.lower()]
        if s.find(class_="math"):                       # Sphinx loads MathJax only where there is math
            assert len(mj) == 1 and "_static/mathjax/tex-chtml-full.js" in mj[0], (f, mj)
            assert (page.parent / urlparse(mj[0]).path).resolve().is_file()
            with_math += 1
        assert not [t["href"] for t in s.find_all("link", href=True) if urlparse(t["href"]).scheme in ("http", "https")
                    and t.get("rel") and "stylesheet" in t["rel"]]
    assert with_math >= 7
    fonts = html / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2"
    assert len(list(fonts.glob("*.woff"))) > 20


def math_and_text(page: Path):
    """(math sources, remaining prose) of a page."""
    s = soup(page)
    for t in s.find_all(["script", "style", "pre", "code"]):
        t.decompose()
    maths = [t.get_text() for t in s.find_all(class_="math")]
    for t in s.find_all(class_="math"):
        t.decompose()
    main = s.find("main") or s
    return maths, main.get_text(" ")


def test_equations_1_to_7_and_algorithm_1_are_in_the_book(build):
    html, _ = build
    tags = {}
    for f, page in pages(html).items():
        maths, text = math_and_text(page)
        assert "$$" not in text and "\\begin{" not in text and "\\frac" not in text, f"raw LaTeX left in {f}"
        for m in maths:
            for k in re.findall(r"\\tag\{(\d)\}", m):
                tags.setdefault(int(k), []).append(f)
    assert sorted(tags) == list(range(1, 8)), tags
    assert all(len(v) == 1 for v in tags.values()), tags
    assert tags[1] == tags[2] == ["book/multiview"] and tags[3] == tags[4] == tags[5] == ["book/blending"]
    assert tags[6] == tags[7] == ["book/ensemble"]
    blending = soup(html / "book" / "blending.html")
    title = blending.find(string=re.compile("Algorithm 1 — adaptive weight"))
    assert title is not None
    admonition = title.find_parent(class_="admonition")
    assert len(admonition.find_all("li")) == 7 and len(admonition.find_all(class_="math")) >= 10
    # each equation sits next to the code that computes it and a run of it
    for chapter, code in (("multiview", "F.cross_entropy"), ("blending", "class AdaptiveBlender"),
                          ("ensemble", "def self_ensemble")):
        s = soup(html / "book" / f"{chapter}.html")
        assert code in s.get_text() and s.find_all(class_="cell_output"), chapter


def test_the_losses_are_shown_from_the_systems(build):
    """Eq. 1, Eq. 2 and FusionNet's centre loss are shown where the systems compute them."""
    html, _ = build
    multiview = soup(html / "book" / "multiview.html").get_text()
    assert "# mvbook/systems/base.py, line" in multiview and "weights[k] * losses[k]" in multiview
    fusion = soup(html / "book" / "beyond" / "fusion.html").get_text()
    assert "# mvbook/systems/stacking.py, line" in fusion and "model.center_loss(z, y)" in fusion
    seeds = soup(html / "book" / "beyond" / "seeds.html").get_text()
    assert "def paired_comparison" in seeds


def test_figures_exist_and_every_chapter_has_its_own(build):
    html, _ = build
    for f, page in pages(html).items():
        imgs = soup(page).find_all("img")
        for img in imgs:
            src = img["src"]
            if src.startswith("data:"):
                continue
            path = (page.parent / unquote(urlparse(src).path)).resolve()
            assert path.is_file() and path.stat().st_size > 1000, (f, src)
        figures = [i for i in imgs if "_images/" in i["src"] or i["src"].startswith("data:image")]
        assert len(figures) >= CHAPTER_FIGURES.get(f, 0), (f, len(figures))
        for i in figures:                     # described in words, not by the hashed file name
            assert i.get("alt", "").startswith("Figure: ") and "_images" not in i["alt"], (f, i.get("alt"))
    assert len(soup(html / "book" / "views.html").find_all("audio")) >= 3


def test_internal_links_resolve(build):
    html, _ = build
    ids = {}
    checked = 0
    for page in sorted(html.rglob("*.html")):
        if "_static" in page.parts or page.name in ("genindex.html", "search.html"):
            continue
        for a in soup(page).find_all("a", href=True):
            url = urlparse(a["href"])
            if url.scheme or a["href"].startswith(("mailto:", "javascript:")):
                continue
            target = page if not url.path else (page.parent / unquote(url.path)).resolve()
            assert target.exists(), f"{page.relative_to(html)}: broken link {a['href']}"
            if url.fragment and target.suffix == ".html":
                if target not in ids:
                    ids[target] = {t["id"] for t in soup(target).find_all(id=True)}
                assert url.fragment in ids[target], f"{page.relative_to(html)}: no #{url.fragment} in {target.name}"
            checked += 1
    assert checked > 100


def test_outputs_are_clean(build):
    html, _ = build
    for f, page in pages(html).items():
        s = soup(page)
        assert not s.find_all(class_="traceback"), f"{f}: a cell raised"
        stderr = [t.get_text()[:300] for t in s.find_all(class_="stderr")]
        assert not stderr, f"{f}: stderr output: {stderr}"


def test_results_chapter_has_table3_and_fig2(build):
    html, _ = build
    s = soup(html / "book" / "results.html")
    table = s.find("table", class_="mv-table3")
    assert table is not None and len(table.find_all("tr")) >= 9
    assert "Fig. 2" in s.get_text() and "87.35" in table.get_text()


def test_results_set_both_lengths_side_by_side(build):
    html, _ = build
    page = soup(html / "book" / "results.html")
    tables = [t for t in page.find_all("table") if "sign-flip p (folds)" in t.get_text()]
    assert len(tables) == 1
    head = [th.get_text(strip=True) for th in tables[0].find("thead").find_all("th")]
    rows = {tr.find("th").get_text(strip=True): [td.get_text(strip=True) for td in tr.find_all("td")]
            for tr in tables[0].find("tbody").find_all("tr")}
    pairs = {name: cells[head.index("pairs") - 1] for name, cells in rows.items()}
    assert all(re.fullmatch(r"\d+", n) for n in pairs.values()), pairs          # a count, never NaN
    # multi-view: the (fold, seed) runs committed at both lengths, counted from the file names
    runs = {p: {f.stem for f in (REPO / "results" / "esc10" / p / "multiview").glob("fold*-seed*.json")}
            for p in ("cpu", "long")}
    assert int(pairs["Multi-view"]) == len(runs["cpu"] & runs["long"]) > 0


def test_binder_and_local_setup_files():
    post = REPO / "binder" / "postBuild"                       # repo2docker reads binder/ instead of the top
    assert post.stat().st_mode & stat.S_IXUSR and "pip install" in post.read_text() and "-e ." in post.read_text()
    assert (REPO / "binder" / "apt.txt").read_text().split()
    req = (REPO / "requirements.txt").read_text()
    for pkg in ("jupyter-book", "jupytext", "papermill"):
        assert pkg in req
    for f in toc_files():
        text = (REPO / f"{f}.md").read_text()
        if "```{code-cell}" in text:
            assert text.startswith("---\njupytext:") and "format_name: myst" in text, f
            assert "name: python3" in text, f


# --- the chapters point at the library's code (no build needed) ---------------------------

def chapter_sources() -> dict:
    return {f: (REPO / f"{f}.md").read_text() for f in toc_files()}


def code_cells(text: str) -> list[str]:
    return re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", text, flags=re.S)


def test_chapters_import_the_chapter_helpers_first():
    for f, text in chapter_sources().items():
        cells = [c for c in code_cells(text) if re.search(r"^(from|import) ", c, flags=re.M)]
        if not cells:
            continue
        first = re.search(r"^(from|import) .*$", cells[0], flags=re.M).group(0)
        assert first.startswith("from mvbook.book import chapters as ch"), (f, first)
        assert "mvbook.notebooks" not in text and "notebooks as nbk" not in text and "nbk." not in text, f
    ext = (REPO / "book" / "_ext" / "mvbook_book.py").read_text()
    assert "from mvbook.book.chapters import copy_records" in ext and "mvbook.notebooks" not in ext


def test_chapters_build_no_grid_command_of_their_own():
    """Every grid command line a chapter shows comes from mvbook.records.grid_command, but
    for the Training chapter's "Running it headless", whose typed commands
    tests/test_papermill.py runs verbatim (so they cannot drift from the CLI)."""
    assert "book/training" in chapter_sources()                  # the loop below is not over nothing
    for f, text in chapter_sources().items():
        if f == "book/training":
            a = text.index("## Running it headless")
            text = text[:a] + text[text.index("\n## ", a + 3):]
        assert not re.search(r"mvbook grid --", text), f
    assert "groups.setdefault" not in "".join(chapter_sources().values())     # ch.main_records() instead


def test_every_literalinclude_points_at_existing_code():
    """A literalinclude whose object or marker is gone would show nothing, or the wrong code
    (a ``show_source`` that points nowhere fails the build)."""
    checked = 0
    for f, text in chapter_sources().items():
        for path, options in re.findall(r"```\{literalinclude\} (\S+)\n((?::\S+: .*\n)*)", text):
            checked += 1
            src = (REPO / f).parent / path
            assert src.is_file(), (f, path)
            code = src.read_text()
            for key, value in re.findall(r"^:(\S+): (.*)$", options, flags=re.M):
                if key == "pyobject":
                    node, names = ast.parse(code), value.split(".")
                    for name in names:
                        node = next((n for n in ast.iter_child_nodes(node) if getattr(n, "name", None) == name), None)
                        assert node is not None, (f, path, value)
                elif key in ("start-at", "start-after", "end-before", "end-at"):
                    assert value.strip('"') in code, (f, path, key, value)
    assert checked >= 3, f"only {checked} literalincludes found: the pattern no longer matches the chapters"


def test_chapters_pass_the_device_to_grid_command():
    """``grid_command(..., device="cuda")``, never a hand-added ``--device`` flag."""
    assert any("grid_command(" in text for text in chapter_sources().values())   # not over nothing
    for f, text in chapter_sources().items():
        assert '" --device' not in text and "' --device" not in text, f


def test_blending_rules_and_what_the_weights_did(build):
    """The rules the paper leaves open, from ``RULES`` with their sources, and the weights read from the records."""
    from mvbook.blending import RULES
    html, _ = build
    s = soup(html / "book" / "blending.html")
    text = s.get_text(" ")
    headings = [h.get_text() for h in s.find_all(["h2", "h3"])]
    for heading in ("What the paper leaves open", "What the weights did"):
        assert any(heading in h for h in headings), (heading, headings)
    assert all(f"{name}" in text for name in RULES) and "04260a7" in text
    assert s.find("a", href=re.compile(r"github\.com/pquochuy/xsleepnet")) is not None
    for name in ("gradient_policy1.py", "gradient_policy2.py", "train_xsleepnet2.py"):
        assert name in text, name


def test_results_give_a_verdict_on_each_claim(build):
    from mvbook.plan import FAMILY, decide
    from mvbook.records import load_records
    html, _ = build
    page = soup(html / "book" / "results.html")
    text = page.get_text(" ")
    flat = " ".join(text.split())
    assert "The verdict, claim by claim" in text and "--device cuda" in page.get_text()
    for claim, _, _ in FAMILY:
        assert claim in text, claim
    assert "self-ensemble with uniform weights" in text
    assert "does not hold" not in flat                                   # only the plan's three words
    # the closing summary counts what the plan decides on the committed cpu records
    cpu = [r for r in load_records(REPO / "results") if r["dataset"] == "esc10" and r["preset"] == "cpu"]
    held = int((decide(cpu)["verdict"] == "holds").sum())
    assert re.search(rf"{held} of the {len(FAMILY)} claims of the plan hold after Holm.s correction", flat)
    assert text.count("would have been found four times in five") >= len(FAMILY)   # each verdict with its MDD
    # both lengths side by side: each claim's verdict in its own cell, as the plan decides it
    side = [t for t in page.find_all("table") if "cpu: verdict" in t.get_text()]
    assert len(side) == 1
    head = [th.get_text(strip=True) for th in side[0].find("thead").find_all("th")]
    cells = {tr.find("th").get_text(strip=True): [td.get_text(strip=True) for td in tr.find_all("td")]
             for tr in side[0].find("tbody").find_all("tr")}
    assert [cells[c][head.index("cpu: verdict") - 1] for c, _, _ in FAMILY] == list(decide(cpu)["verdict"])
    assert "long: verdict" in head
    ablations = soup(html / "book" / "beyond" / "ablations.html").get_text(" ")
    assert "Scale check" in ablations and re.search(r"preset\s+long", ablations)


def test_results_show_table3_from_the_seeds_drawn_per_fold_alone(build):
    from mvbook.records import load_records
    from mvbook.seeds import record_scheme
    html, _ = build
    flat = " ".join(soup(html / "book" / "results.html").get_text(" ").split())
    cpu = [r for r in load_records(REPO / "results") if r["dataset"] == "esc10" and r["preset"] == "cpu"]
    per_fold = [r for r in cpu if record_scheme(r) == "per_fold"]
    assert per_fold                                                     # the decide grid has begun to land
    assert re.search(rf"The same table from the seeds drawn per fold alone \(esc10, preset cpu ; {len(per_fold)} "
                     r"runs; multi-view: \d+ folds", flat)
    # how far the plan's grid has got, counted here from the file names
    stage1 = sum(len(list((REPO / "results" / "esc10" / "cpu" / s).glob(f"fold[1-5]-seed{d}.json")))
                 for s in ("multiview", "equal") for d in range(3, 13))
    assert re.search(rf"How far the plan.s runs have got : stage 1 \(multiview, equal\) {stage1} of 100;", flat)
    left = "--systems multiview equal --folds 1 2 3 4 5 --seeds 3 4 5 6 7 8 9 10 11 12 --out results"
    assert (left in flat) == (stage1 < 100)                             # the command that completes stage 1


# --- the reading path, the runs, and what the method chapters read ------------------------

# chapter → the committed ESC-10 records it demonstrates on, on every build (records need no audio)
DEMO_RECORDS = {"book/multiview": ["results/esc10/cpu/multiview/fold1-seed0.json"],
                "book/blending": ["results/esc10/cpu/mv_literal/fold1-seed0.json"],
                "book/ensemble": ["results/esc10/cpu/multiview/fold1-seed0.json"],
                "book/beyond/ablations": ["results/esc10/cpu/mv_literal/fold1-seed0.json"]}


def test_method_chapters_read_the_committed_esc10_records(build):
    html, _ = build
    for f, paths in DEMO_RECORDS.items():
        text = soup(html / f"{f}.html").get_text(" ")
        for path in paths:
            assert (REPO / path).is_file(), path
            assert path in text, f"{f} does not name the record it demonstrates on ({path})"
    for f in ("book/crnn", "book/views", "book/results", "book/intro"):
        assert "esc10" in soup(html / f"{f}.html").get_text(" "), f


def test_pages_that_need_audio_say_when_their_clips_are_synthetic(build):
    html, _ = build
    synthetic = not os.environ.get("MVBOOK_TEST_BOOK_DATA")
    for f, words in (("book/views", "This build has no audio"), ("book/crnn", "A synthetic clip")):
        assert (words in soup(html / f"{f}.html").get_text(" ")) == synthetic, f
    headings = [h.get_text() for h in soup(html / "book" / "views.html").find_all(["h2", "h3"])]
    # a heading is the same in every build: it names no data that the build may not have used
    assert any("Clips of this build" in h for h in headings) and not any("synthetic" in h for h in headings)


def test_run_pages_are_built_but_out_of_the_reading_path(build):
    html, _ = build
    started = (html.parents[1] / "started").stat().st_mtime    # records may arrive while the book builds
    runs = sorted(nb for nb in (REPO / "results").glob("*/*/*/*.ipynb") if nb.stat().st_mtime < started)
    assert runs
    index = soup(html / "book" / "runs.html")
    hrefs = {a["href"] for a in index.find_all("a", href=True)}
    for nb in runs:
        rel = nb.relative_to(REPO).with_suffix(".html").as_posix()
        assert (html / rel).is_file(), rel
        assert f"../{rel}" in hrefs, f"the Runs page does not link {rel}"
    beyond = soup(html / "book" / "beyond" / "index.html")
    prev = beyond.find("a", class_="left-prev")
    assert prev is not None and "results/" not in prev["href"] and "Run:" not in prev.get_text()
    sidebar = soup(html / "book" / "intro.html").find(class_="bd-sidebar") or soup(html / "book" / "intro.html")
    assert not [a for a in sidebar.find_all("a", href=True) if "results/" in a["href"]]
    runs_table = soup(html / "book" / "results.html").select_one("details.mv-runs table.mv-table3")  # runs below
    assert runs_table.find("a", href=re.compile(r"^\.\./results/esc10/cpu/.*\.html$")) is not None


def test_each_run_page_states_its_own_presets_caveat(build):
    from mvbook.book.chapters import preset_caveat
    html, _ = build
    notebooks = sorted((REPO / "results").glob("*/*/*/*.ipynb"))[:40]
    assert notebooks, "no run notebook under results/: the loop below would pass on nothing"
    for nb in notebooks:
        preset = nb.parts[-3]
        text = " ".join(soup(html / nb.relative_to(REPO).with_suffix(".html")).get_text(" ").split())
        assert ("near chance are expected" in text) == (preset == "smoke"), nb
        assert " ".join(preset_caveat(preset).replace("`", "").replace("*", "").split()) in text, nb


def test_no_path_of_the_build_machine_in_the_html(build):
    html, _ = build
    pages = [p for p in sorted(html.rglob("*.html")) if "_static" not in p.parts]
    assert html / "book" / "intro.html" in pages and len(pages) >= 10, "the build has (almost) no pages"
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert str(REPO) not in text and str(html.parent.parent) not in text, page.relative_to(html)


def test_prose_numbers_are_computed_not_typed():
    """Numbers that went stale once, and the ways p-values and runs were misprinted."""
    assert {"book/intro", "book/results", "book/blending"} <= set(chapter_sources())   # not over nothing
    for f, text in chapter_sources().items():
        for stale in ("808 s", "405 s", "92.6 %", "96.3 %", "4 % of the epochs", "fold(s))"):
            assert stale not in text, (f, stale)
        assert '"p_t": "{:.3f}"' not in text, f                    # S.COMPARISON_FORMAT prints < 0.001


def test_the_training_chapter_states_what_its_own_presets_numbers_mean(build):
    """The book builds with MVBOOK_PRESET=smoke here: the chapter's note is that preset's."""
    from mvbook.book.chapters import preset_caveat
    html, _ = build
    text = " ".join(soup(html / "book" / "training.html").get_text(" ").split())
    assert re.sub(r"[`*]", "", preset_caveat("smoke")) in text
