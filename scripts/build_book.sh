#!/usr/bin/env bash
# Build the book to _build/html, executing every chapter.
#
#   scripts/build_book.sh                # clean build: every chapter executed afresh
#   scripts/build_book.sh --keep-cache   # re-execute only chapters whose code changed
#
# Besides the HTML, the chapters as notebooks (scripts/make_notebooks.py): written beside
# each chapter for the build (the theme's Colab and Binder buttons then open the .ipynb),
# then moved to _build/notebooks/book/…, so that they are never committed.
#
# Settings (environment):
#   MVBOOK_DATA    data root; when it holds ESC-10 the chapters use real clips and
#                  runs on ESC-10, otherwise the offline synthetic task (default)
#   MVBOOK_PRESET  training preset of the runs the book trains itself: smoke
#                  (default, about a minute per run), cpu or paper
#   MVBOOK_RUNS    where those runs go (default runs/book, git-ignored)
# Extra arguments go to `jupyter-book build`.
set -euo pipefail

# the chapters run in book/: make a relative data root absolute first
if [ -n "${MVBOOK_DATA:-}" ]; then
    if [ ! -f "$MVBOOK_DATA/ESC-50/meta/esc50.csv" ]; then
        echo "build_book: MVBOOK_DATA=$MVBOOK_DATA holds no ESC-50/meta/esc50.csv (ESC-10 or ESC-50);" \
             "unset it to build on the synthetic dataset" >&2
        exit 2
    fi
    MVBOOK_DATA="$(cd "$MVBOOK_DATA" && pwd)"
    export MVBOOK_DATA
fi
cd "$(dirname "$0")/.."

keep=0
if [ "${1:-}" = "--keep-cache" ]; then keep=1; shift; fi

if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
JB="$(dirname "$PYTHON")/jupyter-book"
[ -x "$JB" ] || JB=jupyter-book

export MVBOOK_PRESET="${MVBOOK_PRESET:-smoke}"
# a typo in the preset must stop the build before anything is deleted
if ! check="$("$PYTHON" -c 'from mvbook.book.chapters import book_preset; book_preset()' 2>&1)"; then
    echo "build_book: ${check##*ConfigError: }; nothing was deleted" >&2
    exit 2
fi
own_runs=0
if [ -z "${MVBOOK_RUNS:-}" ]; then own_runs=1; export MVBOOK_RUNS="$PWD/runs/book"; fi
export PYDEVD_DISABLE_FILE_VALIDATION=1

scripts/fetch_mathjax.sh

# The executed chapters depend on the data and preset, which the execution cache
# does not see: start afresh when they change, and by default.
settings="data=${MVBOOK_DATA:-} dataset=${MVBOOK_DATASET:-} preset=$MVBOOK_PRESET runs=$MVBOOK_RUNS"
stamp=_build/.mvbook-settings
if [ "$keep" = 0 ] || [ "$(cat "$stamp" 2>/dev/null)" != "$settings" ]; then
    rm -rf _build
    # the book's own runs are retrained too (a folder you chose yourself is left alone)
    if [ "$own_runs" = 1 ]; then rm -rf "$MVBOOK_RUNS"; fi
fi
mkdir -p _build
echo "$settings" > "$stamp"

start=$(date +%s)
"$PYTHON" scripts/make_notebooks.py
trap '"$PYTHON" scripts/make_notebooks.py --collect _build/notebooks' EXIT
"$JB" build . --all --warningiserror --keep-going "$@"
echo "build_book: _build/html/index.html in $(( $(date +%s) - start )) s ($settings)"
