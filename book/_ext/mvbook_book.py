"""Sphinx hooks of the book (loaded through ``_config.yml``: ``local_extensions``).

After an HTML build, copy the records of ``results/`` into the output
(``_build/html/results/...``), beside the pages of their executed notebooks
(part *Runs*), so that the links of the *Results* chapter resolve offline.
"""
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)


def _copy_records(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    from mvbook.chapters import copy_records
    copied = copy_records(Path(app.srcdir) / "results", Path(app.outdir) / "results")
    logger.info(f"mvbook: copied {len(copied)} results records into the HTML")


def setup(app):
    app.connect("build-finished", _copy_records)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
