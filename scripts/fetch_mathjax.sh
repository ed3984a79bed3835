#!/usr/bin/env bash
# Put MathJax 3 (the es5 tex-chtml-full component and its CHTML fonts) into
# book/_static/mathjax/, so that the built book renders equations offline.
# Source: the npm registry, https://registry.npmjs.org (`npm pack`, or a plain
# HTTPS download of the same tarball when npm is absent), checked against a
# pinned SHA-256; the tarball is kept in ${MVBOOK_CACHE:-~/.cache/mvbook} so
# later builds need no network. MVBOOK_MATHJAX_TGZ=FILE uses a tarball brought
# some other way (checked the same). A failed download stops with what failed
# and what to do, within ${MVBOOK_FETCH_TIMEOUT:-30} s per try.
# Third-party code: fetched at build time, git-ignored, never committed.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=3.2.2
SHA256=1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09
DEST="${MVBOOK_MATHJAX_DEST:-book/_static/mathjax}"
CACHE="${MVBOOK_CACHE:-$HOME/.cache/mvbook}"
TGZ="$CACHE/mathjax-$VERSION.tgz"
URL="https://registry.npmjs.org/mathjax/-/mathjax-$VERSION.tgz"
TIMEOUT="${MVBOOK_FETCH_TIMEOUT:-30}"
if [ -n "${MVBOOK_MATHJAX_TGZ:-}" ]; then TGZ="$MVBOOK_MATHJAX_TGZ"; fi

failed() {   # what failed, and what to do
    cat >&2 <<EOF
fetch_mathjax: could not download MathJax $VERSION from the npm registry:
  $1
The book serves MathJax from book/_static/mathjax/ so that its equations render offline;
the build needs it once. Either
  - allow https://registry.npmjs.org (npm's registry; PyPI alone is not enough), or
  - fetch $URL
    on any machine (npm pack mathjax@$VERSION, or curl), check that its SHA-256 is
    $SHA256
    and put it at $CACHE/mathjax-$VERSION.tgz (or set MVBOOK_MATHJAX_TGZ=FILE), then rerun.
EOF
    exit 1
}

if [ -f "$DEST/tex-chtml-full.js" ] && [ "$(cat "$DEST/VERSION" 2>/dev/null)" = "$VERSION" ]; then
    exit 0
fi
mkdir -p "$CACHE"
if [ ! -f "$TGZ" ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    echo "fetch_mathjax: downloading MathJax $VERSION from the npm registry ($URL)" >&2
    if command -v npm >/dev/null 2>&1; then
        rc=0
        why=$(cd "$tmp" && timeout "$((2 * TIMEOUT))" npm pack "mathjax@$VERSION" --loglevel=error \
              --fetch-retries=1 --fetch-timeout="$((TIMEOUT * 1000))" 2>&1 >/dev/null) || rc=$?
        if [ "$rc" = 124 ]; then failed "npm pack mathjax@$VERSION: no answer within $((2 * TIMEOUT)) s"; fi
        if [ "$rc" != 0 ]; then
            failed "npm pack mathjax@$VERSION (exit $rc): $(printf '%s' "$why" | grep -v '^npm error *$' | head -n 3)"
        fi
    else
        why=$(python3 -c "import sys, urllib.request, shutil
with urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[3])) as r, open(sys.argv[2], 'wb') as f:
    shutil.copyfileobj(r, f)" "$URL" "$tmp/mathjax-$VERSION.tgz" "$TIMEOUT" 2>&1) \
            || failed "GET $URL: $(printf '%s' "$why" | tail -n 1)"
    fi
    mv "$tmp/mathjax-$VERSION.tgz" "$TGZ"
fi
echo "$SHA256  $TGZ" | sha256sum --check --quiet || {
    echo "fetch_mathjax: $TGZ does not match the pinned SHA-256; delete it and retry" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$TGZ" -C "$tmp" package/LICENSE package/es5/tex-chtml-full.js package/es5/output/chtml/fonts/woff-v2
rm -rf "$DEST"
mkdir -p "$DEST/output/chtml/fonts"
cp "$tmp/package/es5/tex-chtml-full.js" "$tmp/package/LICENSE" "$DEST/"
cp -r "$tmp/package/es5/output/chtml/fonts/woff-v2" "$DEST/output/chtml/fonts/"
echo "$VERSION" > "$DEST/VERSION"
echo "fetch_mathjax: MathJax $VERSION in $DEST"
