"""Sphinx hooks of the book (loaded through ``_config.yml``: ``local_extensions``).

- The executed run notebooks ``results/<dataset>/<preset>/<system>/fold<k>-seed<s>.ipynb``
  are pages of the book, but not of its reading path: they are left out of
  ``_toc.yml`` (which would put all of them between *Results* and *Beyond the
  paper*), built anyway as orphans, and reached from the *Runs* index
  (``book/runs.md``) and the cells of Table 3.
- Each run page's note on what its numbers mean is rewritten for the run's own
  preset (the *Training* notebook it was made from states the book's default,
  ``smoke``).
- Paths of the build machine (the repository's location, data and checkpoint
  folders in papermill's parameters) are written relative or as placeholders.
- A figure drawn by a cell (an image with no text of its own: its ``alt`` would be
  its hashed file name) is described by its section's title and the first
  sentence of the text just before it.
- After an HTML build, the records of ``results/`` are copied into the output
  (``_build/html/results/...``), beside their run pages, so that the links of
  the *Results* chapter resolve offline.
"""
import re
from pathlib import Path

from docutils import nodes
from sphinx.util import logging

logger = logging.getLogger(__name__)
RUN_PAGE = re.compile(r"^results/([^/]+)/([^/]+)/([^/]+)/fold(\d+)-seed(\d+)$")
NOTE_TITLE = "What these numbers mean"
ABSOLUTE = re.compile(r"(?<![\w.:/-])/(?:tmp|work|home|root|mnt|scratch|Users)/[^\s\"'<>`)]*")


def _include_run_pages(app, config):
    """Undo ``only_build_toc_files`` for the run notebooks (sphinx-external-toc excluded them)."""
    config["exclude_patterns"] = [p for p in config["exclude_patterns"]
                                  if not RUN_PAGE.match(str(p).removesuffix(".ipynb"))]


def _run_note(preset: str) -> str:
    from mvbook.book.chapters import preset_caveat
    return preset_caveat(preset)


def _inline(text: str) -> nodes.paragraph:
    """A paragraph from text with `code` and *emphasis* marked as in Markdown."""
    para = nodes.paragraph()
    for part in re.split(r"(`[^`]+`|\*[^*]+\*)", text):
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            para += nodes.literal(text=part[1:-1])
        elif part.startswith("*") and part.endswith("*") and len(part) > 1:
            para += nodes.emphasis(text=part[1:-1])
        elif part:
            para += nodes.Text(part)
    return para


def _scrub(text: str, repo: str) -> str:
    text = text.replace(repo + "/", "").replace(repo, ".")
    return ABSOLUTE.sub("<local path>", text)


def _describe(image: nodes.image) -> str:
    """A short text for an output image: its section's title and the first sentence before it."""
    node, title = image, ""
    while node is not None and not title:
        node = node.parent
        if isinstance(node, nodes.section):
            title = node.next_node(nodes.title).astext()
    para = next(iter(_paragraphs_before(image)), None)
    before = re.split(r"(?<=[.:])\s", para.astext().strip(), maxsplit=1)[0].rstrip(":") if para else ""
    text = f"Figure: {title}" + (f" — {before}" if before and before != title else "")
    return text if len(text) <= 200 else text[:197] + "…"


def _paragraphs_before(image: nodes.image):
    """The paragraphs before ``image`` in document order, nearest first."""
    root = image
    while root.parent is not None:
        root = root.parent
    paras = []
    for n in root.findall(lambda n: isinstance(n, (nodes.paragraph, nodes.image))):
        if n is image:
            return reversed(paras)
        if isinstance(n, nodes.paragraph):
            paras.append(n)
    return []


def _process(app, doctree):
    docname = app.env.docname
    for image in doctree.findall(nodes.image):
        alt = image.get("alt", "")
        if not alt or alt == image.get("uri") or "/" in alt or alt.endswith(".png"):
            image["alt"] = _describe(image)
    repo = str(Path(app.srcdir).resolve())
    for t in list(doctree.findall(nodes.Text)):
        if "/" in t and (repo in t or ABSOLUTE.search(t)):
            parent = t.parent
            if isinstance(parent, nodes.literal_block) and parent.rawsource == parent.astext():
                parent.rawsource = _scrub(parent.rawsource, repo)       # highlighted from rawsource
            parent.replace(t, nodes.Text(_scrub(str(t), repo)))
    run = RUN_PAGE.match(docname)
    if run:
        app.env.metadata[docname]["orphan"] = True
        preset = run.group(2)
    elif docname == "book/training":                  # the chapter trains with the book's preset
        from mvbook.book.chapters import book_preset
        preset = book_preset()
    else:
        return
    for adm in list(doctree.findall(nodes.admonition)):
        title = adm.next_node(nodes.title)
        if title is not None and title.astext().strip() == NOTE_TITLE:
            adm[:] = [title, _inline(_run_note(preset))]


def _copy_records(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    from mvbook.book.chapters import copy_records
    copied = copy_records(Path(app.srcdir) / "results", Path(app.outdir) / "results")
    logger.info(f"mvbook: copied {len(copied)} results records into the HTML")


def setup(app):
    app.connect("config-inited", _include_run_pages, priority=950)   # after sphinx-external-toc (900)
    app.connect("doctree-read", _process, priority=900)              # after the metadata collector
    app.connect("build-finished", _copy_records)
    return {"version": "2", "parallel_read_safe": True, "parallel_write_safe": True}
