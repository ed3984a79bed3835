#!/usr/bin/env bash
# Build the API reference (book/api) alone, in nit-picky mode, with warnings as errors:
# every cross-reference in mvbook's docstrings must resolve and autodoc must read every
# module. No chapter is executed: a temporary table of contents holds only the API pages
# and a temporary configuration, the book's own minus notebook execution and the extension
# of the run pages. Seconds, where the whole book (scripts/build_book.sh) takes an hour.
#
#   scripts/check_api_docs.sh            # HTML in $TMPDIR, removed afterwards
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
JB="$(dirname "$PYTHON")/jupyter-book"
[ -x "$JB" ] || JB=jupyter-book
tmp="$(mktemp -d)"
[ -n "${KEEP_API_DOCS:-}" ] || trap 'rm -rf "$tmp"' EXIT
"$PYTHON" - "$tmp" <<'PY'
import sys
from pathlib import Path

import yaml

tmp = Path(sys.argv[1])
config = yaml.safe_load(Path("_config.yml").read_text())
config["execute"] = {"execute_notebooks": "off"}
config["sphinx"].pop("local_extensions", None)
(tmp / "_config.yml").write_text(yaml.safe_dump(config, allow_unicode=True))
toc = yaml.safe_load(Path("_toc.yml").read_text())
api = next(p for p in toc["parts"] if p["caption"] == "API reference")["chapters"][0]
(tmp / "_toc.yml").write_text(yaml.safe_dump({"format": "jb-book", "root": api["file"],
                                              "chapters": api.get("sections", [])}))
PY
"$JB" build . --config "$tmp/_config.yml" --toc "$tmp/_toc.yml" --path-output "$tmp/out" \
    --nitpick --warningiserror --keep-going --quiet "$@"
if grep -rl "$PWD" "$tmp/out/_build/html/book/api"; then
    echo "check_api_docs: the pages above show a path of this machine (a default or a constant's value)" >&2
    exit 1
fi
echo "check_api_docs: the API pages build without a warning or a path of this machine"
