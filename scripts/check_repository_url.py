#!/usr/bin/env python3
"""Check that ``repository.url`` in ``_config.yml`` — the one place that names
the repository (Binder, Colab, repository and issue buttons; the notebooks'
Colab cell) — is the repository given, e.g. in the Pages workflow:

    python3 scripts/check_repository_url.py https://github.com/OWNER/NAME

Exit status 1, saying what to change, when it is not. Standard library only.
"""
import re
import sys
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[1] / "_config.yml"


def configured_url(text: str) -> str | None:
    """``repository: url:`` of a Jupyter Book ``_config.yml`` (read without a YAML library)."""
    m = re.search(r"^repository:[ \t]*\n(?:[ \t]+.*\n)*?[ \t]+url:[ \t]*[\"']?([^\"'#\s]+)", text, re.MULTILINE)
    return m.group(1) if m else None


def normal(url: str) -> str:
    return re.sub(r"(\.git)?/*$", "", url.strip()).lower()


def main(argv) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    url = configured_url(CONFIG.read_text())
    if url is None:
        print(f"{CONFIG}: no repository: url: entry", file=sys.stderr)
        return 1
    if normal(url) != normal(argv[0]):
        print(f"{CONFIG}: repository.url is {url}, but this is {argv[0]}; set repository.url to {argv[0]} "
              f"so that the book's Binder, Colab and repository buttons lead here", file=sys.stderr)
        return 1
    print(f"{CONFIG.name}: repository.url {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
