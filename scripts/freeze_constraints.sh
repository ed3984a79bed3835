#!/usr/bin/env bash
# Write constraints.txt: the exact versions of the working environment (.venv), which the
# README's install command and CI use (`pip install -c constraints.txt -r requirements.txt -e .`),
# so that an install in a year resolves to what was tested. Rerun after changing requirements:
#   .venv/bin/pip install -r requirements.txt -e . && scripts/freeze_constraints.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="${PIP:-.venv/bin/pip}"
{
    echo "# Exact versions tested together ($("${PIP%pip}python" --version), $(uname -m) Linux, $(date -u +%Y-%m-%d))."
    echo "# Written by scripts/freeze_constraints.sh from the project's venv; mvbook itself left out."
    echo "# Use: pip install -c constraints.txt -r requirements.txt -e ."
    "$PIP" freeze --all --exclude-editable --disable-pip-version-check 2>/dev/null \
        | grep -v -i -E '^(mvbook|pip|-e )(==| )|@ file:' | LC_ALL=C sort -f
} > constraints.txt
echo "constraints.txt: $(grep -vc '^#' constraints.txt) pins"
