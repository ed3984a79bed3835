#!/usr/bin/env bash
# Put MathJax 3 (the es5 tex-chtml-full component and its CHTML fonts) into
# book/_static/mathjax/, so that the built book renders equations offline.
# Source: the npm registry (`npm pack`, or a plain HTTPS download of the same
# tarball when npm is absent), checked against a pinned SHA-256; the tarball is
# kept in ${MVBOOK_CACHE:-~/.cache/mvbook} so later builds need no network.
# Third-party code: fetched at build time, git-ignored, never committed.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=3.2.2
SHA256=1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09
DEST=book/_static/mathjax
CACHE="${MVBOOK_CACHE:-$HOME/.cache/mvbook}"
TGZ="$CACHE/mathjax-$VERSION.tgz"

if [ -f "$DEST/tex-chtml-full.js" ] && [ "$(cat "$DEST/VERSION" 2>/dev/null)" = "$VERSION" ]; then
    exit 0
fi
mkdir -p "$CACHE"
if [ ! -f "$TGZ" ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    if command -v npm >/dev/null 2>&1; then
        (cd "$tmp" && npm pack "mathjax@$VERSION" --silent >/dev/null)
    else
        python3 -c "import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])" \
            "https://registry.npmjs.org/mathjax/-/mathjax-$VERSION.tgz" "$tmp/mathjax-$VERSION.tgz"
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
