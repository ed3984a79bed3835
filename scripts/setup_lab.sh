#!/usr/bin/env bash
# Make JupyterLab open the chapters (MyST Markdown notebooks, book/*.md) as notebooks
# (jupytext's "Jupytext Notebook" viewer) rather than in the text editor. Writes the
# settings overrides of the JupyterLab installed in this environment; Binder's postBuild
# runs it, and so can you after installing requirements.txt:
#   PATH=.venv/bin:$PATH scripts/setup_lab.sh && .venv/bin/jupyter lab
# Without it, right-click a chapter: Open With > Jupytext Notebook.
set -euo pipefail
app_dir=$(jupyter lab path | sed -n 's/^Application directory: *//p')
if [ -z "$app_dir" ]; then
    echo "setup_lab: \`jupyter lab path\` names no application directory; is JupyterLab installed?" >&2
    exit 1
fi
mkdir -p "$app_dir/settings"
cat > "$app_dir/settings/overrides.json" <<'JSON'
{
  "@jupyterlab/docmanager-extension:plugin": {
    "defaultViewers": {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}
  }
}
JSON
echo "setup_lab: $app_dir/settings/overrides.json: Markdown files open as notebooks"
