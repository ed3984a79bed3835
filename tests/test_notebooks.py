"""The chapters as notebooks (scripts/make_notebooks.py), for JupyterLab, Colab
and nbval: the library code a chapter shows with ``{literalinclude}`` is written
into the notebook, a first cell sets Colab up from the configured repository,
and a chapter converted this way runs under ``pytest --nbval-lax`` (every cell
executes without error; outputs are not compared). ``MVBOOK_NBVAL_CHAPTERS``
(space-separated, e.g. ``book/views.md book/training.md``) picks other chapters
than the default one, a short chapter (about 15 s)."""
import importlib.util
import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
import yaml

from mvbook.nets import crnn
from mvbook.views import features

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("make_notebooks", REPO / "scripts" / "make_notebooks.py")
make_notebooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_notebooks)
NBVAL_CHAPTERS = os.environ.get("MVBOOK_NBVAL_CHAPTERS", "book/ensemble.md").split()


def test_literalincludes_become_the_code_they_show():
    nb = make_notebooks.notebook(REPO / "book" / "views.md")
    text = "\n".join(c.source for c in nb.cells)
    assert "{literalinclude}" not in text
    assert inspect.getsource(features.reference_power).strip() in text
    method = inspect.getsource(features.Standardizer.fit)                  # a method, with its decorator
    assert method.startswith("    ") and textwrap.dedent(method).strip() in text   # dedented
    assert "# mvbook/views/features.py, Standardizer.fit" in text


def test_every_chapter_converts_and_starts_with_the_colab_cell():
    url = yaml.safe_load((REPO / "_config.yml").read_text())["repository"]["url"]
    chapters = make_notebooks.toc_chapters()
    assert REPO / "book" / "training.md" in chapters and len(chapters) >= 10
    for chapter in chapters:
        nb = make_notebooks.notebook(chapter)
        first = nb.cells[0]
        assert first.cell_type == "code" and "google.colab" in first.source and url in first.source
        assert f'os.chdir("/content/mvbook/{chapter.parent.relative_to(REPO).as_posix()}")' in first.source
        assert nb.metadata["kernelspec"]["name"] == "python3"
        assert not [c for c in nb.cells if c.cell_type == "markdown" and "{literalinclude}" in c.source], chapter
    assert inspect.getsource(crnn.MultiViewNet.forward).strip().splitlines()[-1].strip() in "\n".join(
        c.source for c in make_notebooks.notebook(REPO / "book" / "multiview.md").cells)


@pytest.mark.parametrize("chapter", NBVAL_CHAPTERS)
def test_chapter_runs_as_a_notebook_under_nbval_lax(chapter, tmp_path):
    nb_path = tmp_path / Path(chapter).with_suffix(".ipynb")        # nbval runs it in its folder
    nb_path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(make_notebooks.notebook(REPO / chapter), nb_path)
    env = dict(os.environ, MVBOOK_PRESET="smoke", MVBOOK_RUNS=str(tmp_path / "runs"), MPLBACKEND="agg",
               PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.pop("MVBOOK_DATA", None)
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                          "--rootdir", str(tmp_path), str(nb_path)], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=900)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and " failed" not in out.stdout
