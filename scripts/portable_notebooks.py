#!/usr/bin/env python3
"""Put a committed run notebook's machine paths into the form a user would set.

    python scripts/portable_notebooks.py results/esc10/cpu/mel/fold1-seed0.ipynb …
    python scripts/portable_notebooks.py                  # every results/**/*.ipynb
    python scripts/portable_notebooks.py --check          # exit 1 if one still needs it (writes nothing)
    python scripts/portable_notebooks.py --records RECORD.json …   # records: provenance.command, coder paths

A run notebook (``mvbook grid`` keeps each executed Training notebook beside its
record) carries the papermill parameters it ran with; for the folders these are
the training machine's absolute paths (``data_root = "/…/shared/data"``). This
rewrites exactly those, in the three places papermill keeps them (the
``injected-parameters`` cell, ``metadata.papermill.parameters``, and the
notebook's own ``output_path``), into what a reader would pass:

==============  =========================  ===========================================
parameter       becomes                    meaning there
==============  =========================  ===========================================
``data_root``   ``None``                   ``$MVBOOK_DATA``
``out``         ``"results"``              the committed records' folder, from the clone
``checkpoints`` ``None``                   ``<out>/checkpoints`` (git-ignored)
``cache_dir``   ``None``                   ``$MVBOOK_CACHE``, else ``~/.cache/mvbook``
==============  =========================  ===========================================

In the cells' printed outputs the same machine folders are replaced by the same
names (``$MVBOOK_DATA``, ``results``, ``results/checkpoints``, ``$MVBOOK_CACHE``).
Nothing else changes: not a figure, a number or a timestamp; the file is
written back in papermill's own JSON layout. The rewrite is marked in
``metadata.mvbook.portable_paths`` (which parameters, how many output texts),
never with the old paths. Running it again changes nothing (idempotent).

With ``--records`` it rewrites results records instead (``scripts/land_queue.py``
applies it to each record it lands): ``provenance.command`` (the ``sys.argv`` of
the run: the kernel launcher's path, its connection file) into the form
``mvbook.records.command_line`` gives new records (a path of the clone relative
to it, any other by its last part, ``…/name``), and FusionNet's coder records
(``config.coders.<view>.record``) into ``results/<dataset>/<preset>/<system>/…``
where they were in a clone's ``results``, else ``…/<dataset>/<preset>/<system>/…``
(the folder left out). Nothing else changes; the record keeps its
layout (indent 1, ASCII, keys in their order) byte for byte, the rewrite is
marked in ``provenance.portable_paths`` (this script, the fields, a note; never
the old paths, and not in ``config``, which a rerun compares with its own), and
running it again changes nothing.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = "scripts/portable_notebooks.py"
CLONE = str(REPO) + "/"             # this clone's own paths are machine paths wherever the clone lies
# parameter -> (value a user would set, what that value stands for in printed outputs)
PORTABLE = {"data_root": (None, "$MVBOOK_DATA"), "out": ("results", "results"),
            "checkpoints": (None, "results/checkpoints"), "cache_dir": (None, "$MVBOOK_CACHE")}
# A machine's absolute path, as tests/test_papermill.py looks for one in committed notebooks and records:
# a folder under one of the roots that hold clones, data, scratch and home folders, or a Windows drive
# (not ``/path/to/data``, a doc link ``{doc}`/book/…```, a URL, or base64 image data, which is not text).
ROOTS = ("work", "tmp", "home", "root", "Users", "mnt", "scratch", "data", "shared", "opt", "srv", "var", "private",
         "media", "nfs", "gpfs", "lustre", "cluster", "project", "projects", "storage", "content", "usr")
ABSOLUTE = re.compile(r"(?<![\w.:/~$<>{}`\]\)+-])(?:/(?:" + "|".join(ROOTS) + r")/[\w.+@%-]+"
                      r"|\b[A-Za-z]:\\[\w.+@ -]+)")

WHOLE_PATH = re.compile(r"(?:" + ABSOLUTE.pattern + r")(?:/[\w.+@%-]+)*/?")   # the whole path, not its start


def machine_paths(nb_or_record) -> list[str]:
    """Every machine path in a notebook's or a record's text (images and other binary outputs left out)."""
    found = []

    def walk(x, key=""):
        if isinstance(x, dict):
            for k, v in x.items():
                if not (isinstance(k, str) and k.startswith("image/")):
                    walk(v, k)
        elif isinstance(x, list):
            for v in x:
                walk(v, key)
        elif isinstance(x, str):
            found.extend(m.group(0) for m in ABSOLUTE.finditer(x))
            if CLONE in x:                              # also under a root not in ROOTS (/check/…)
                found.append(CLONE)
    walk(nb_or_record)
    return found


def is_machine_path(value) -> bool:
    return isinstance(value, str) and (value.startswith("/") or re.match(r"[A-Za-z]:\\", value) is not None)


def _format(name: str, value) -> str:
    return f"{name} = {json.dumps(value)}" if value is not None else f"{name} = None"   # papermill's quoting


def _rewrite_text(text: str, prefixes: list[tuple[str, str]]) -> str:
    for old, new in prefixes:
        if old.endswith("/"):              # this clone: its paths become relative ones
            text = text.replace(old, new)
        else:
            text = re.sub(re.escape(old.rstrip("/")) + r"(?=/|\b|$)", new.replace("\\", r"\\"), text)
    return text


def portable(nb: dict, path: Path | None = None) -> tuple[dict, dict]:
    """The notebook with its machine paths rewritten, and what was rewritten (empty: nothing)."""
    meta = nb.setdefault("metadata", {})
    pm = meta.get("papermill") or {}
    params = pm.get("parameters") or {}
    changed, prefixes = {}, []
    for name, (value, shown) in PORTABLE.items():
        if is_machine_path(params.get(name)):
            prefixes.append((params[name], shown))
            params[name] = value
            changed[name] = value
    # the longest prefix first (an out inside the data root, checkpoints inside out); then this clone
    # itself, for a run whose parameters were relative but whose outputs print them resolved
    prefixes.sort(key=lambda p: -len(p[0]))
    prefixes.append((CLONE, ""))
    injected = 0
    for cell in nb.get("cells", []):
        tags = (cell.get("metadata") or {}).get("tags") or []
        src = "".join(cell.get("source") or [])
        if "injected-parameters" in tags:
            new = src
            for name, (value, _) in PORTABLE.items():
                new = re.sub(rf"(?m)^{name} = (['\"])(/|[A-Za-z]:\\).*$",
                             lambda _m, n=name, v=value: _format(n, v), new)
            if new != src:
                changed.setdefault("_injected", True)
                cell["source"] = _split_like(cell.get("source"), new)
        for out in cell.get("outputs") or []:
            injected += _rewrite_output(out, prefixes)
    if is_machine_path(pm.get("output_path")):
        pm["output_path"] = _relative(pm["output_path"], path)
        changed["_output_path"] = True
    if is_machine_path(pm.get("input_path")):
        pm["input_path"] = _relative(pm["input_path"], None)
        changed["_input_path"] = True
    if not changed and not injected:
        return nb, {}
    mark = meta.setdefault("mvbook", {}).setdefault("portable_paths", {
        "by": SCRIPT, "parameters": {}, "outputs_rewritten": 0,
        "note": "machine folders replaced by what a user sets: data_root None ($MVBOOK_DATA), out 'results', "
                "checkpoints None (<out>/checkpoints), cache_dir None ($MVBOOK_CACHE); nothing else changed"})
    mark["parameters"].update({k: v for k, v in changed.items() if not k.startswith("_")})
    mark["outputs_rewritten"] += injected
    return nb, {"parameters": sorted(k for k in changed if not k.startswith("_")), "outputs": injected}


def _rewrite_output(out: dict, prefixes) -> int:
    n = 0
    if "text" in out:
        old = "".join(out["text"]) if isinstance(out["text"], list) else out["text"]
        new = _rewrite_text(old, prefixes)
        if new != old:
            out["text"], n = _split_like(out["text"], new), n + 1
    for mime, value in (out.get("data") or {}).items():
        if mime.startswith("text/") or mime.endswith("json"):
            old = "".join(value) if isinstance(value, list) else value
            if isinstance(old, str):
                new = _rewrite_text(old, prefixes)
                if new != old:
                    out["data"][mime], n = _split_like(value, new), n + 1
    if "traceback" in out:
        new = [_rewrite_text(t, prefixes) for t in out["traceback"]]
        if new != out["traceback"]:
            out["traceback"], n = new, n + 1
    return n


def _split_like(original, text: str):
    """Keep the source/text layout of the original: a list of lines, or one string."""
    return text.splitlines(keepends=True) if isinstance(original, list) else text


def _relative(value: str, path: Path | None) -> str:
    if path is not None:
        try:
            return str(path.resolve().relative_to(REPO))
        except ValueError:
            pass
    m = re.search(r"(?:^|/)(results/.*)$", value)
    return m.group(1) if m else Path(value).name


#: the mark a rewritten record carries in ``provenance.portable_paths`` (never the old paths)
RECORD_NOTE = ("machine paths replaced by relative ones: in provenance.command (sys.argv) a path of the clone "
               "relative to it, any other by its last part (…/name), as mvbook.records.command_line writes "
               "it; a coder record <out>/<dataset>/<preset>/<system>/fold<k>-seed<s>.json as "
               "results/<dataset>/… where out was a clone's results folder, else as …/<dataset>/…; "
               "nothing else changed")


def portable_record(rec: dict) -> tuple[dict, int]:
    """A results record with its machine paths made relative (``--records``; the records' owners apply it):
    ``provenance.command`` (``sys.argv``: the kernel launcher's path, its connection file) and FusionNet's
    ``config.coders.*.record``. Returns the record and how many strings changed.

    The rewrite is marked in ``provenance.portable_paths`` (by this script; which fields; a note), never
    with the old paths: ``provenance``, not ``config``, which a rerun compares with its own. Running it
    again changes nothing."""
    fields = []
    prov = rec.get("provenance")
    command = prov.get("command") if isinstance(prov, dict) else None
    if isinstance(command, str) and (ABSOLUTE.search(command) or CLONE in command):
        prov["command"] = WHOLE_PATH.sub(lambda m: _relative_token(m.group(0)), command.replace(CLONE, ""))
        fields.append("provenance.command")
    coders = (rec.get("config") or {}).get("coders") if isinstance(rec.get("config"), dict) else None
    for name, coder in (coders.items() if isinstance(coders, dict) else ()):
        if isinstance(coder, dict) and is_machine_path(coder.get("record")):
            coder["record"] = _coder_record(coder["record"])
            fields.append(f"config.coders.{name}.record")
    if fields:
        if not isinstance(prov, dict):          # a record with no provenance (none is committed): one to hold the mark
            prov = rec.setdefault("provenance", {})
        mark = prov.setdefault("portable_paths", {"by": SCRIPT, "fields": [], "note": RECORD_NOTE})
        mark["fields"] = mark["fields"] + [f for f in fields if f not in mark["fields"]]
    return rec, len(fields)


def _relative_token(token: str) -> str:
    """One path of a command line, as :func:`mvbook.records.command_line` writes it: inside a clone (this one,
    or one with its ``.venv``) relative to it, else its last part (``…/name``)."""
    m = re.search(r"/(\.venv/.*)$", token)
    return m.group(1) if m else f"…/{Path(token).name}"


def _coder_record(value: str) -> str:
    """A coder's record, ``<out>/<dataset>/<preset>/<system>/fold<k>-seed<s>.json``: from a clone's ``results``
    folder ``results/<dataset>/…``; from another folder ``…/<dataset>/…`` (not ``results/``: those coders are
    not the committed runs of that name, so the path must not point at them)."""
    m = re.search(r"(?:^|[/\\])(results[/\\])?([^/\\]+[/\\][^/\\]+[/\\][^/\\]+[/\\]fold\d+-seed\d+\.json)$", value)
    if not m:
        return f"…/{Path(value).name}"
    return ("results/" if m.group(1) else "…/") + m.group(2).replace("\\", "/")


def dumps(nb: dict) -> str:
    """papermill's (nbformat's) layout, byte for byte: indent 1, sorted keys, UTF-8 as is."""
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True)


def rewrite_file(path: Path, check: bool = False) -> dict:
    raw = path.read_text(encoding="utf-8")
    nb, what = portable(json.loads(raw), path)
    if what and not check:
        path.write_text(dumps(nb) + ("\n" if raw.endswith("\n") else ""), encoding="utf-8")
    return what


def rewrite_record(path: Path, check: bool = False) -> int:
    raw = path.read_text(encoding="utf-8")
    rec, n = portable_record(json.loads(raw))
    if n and not check:      # the records' layout: indent 1, ASCII, keys in their order
        path.write_text(json.dumps(rec, indent=1) + ("\n" if raw.endswith("\n") else ""), encoding="utf-8")
    return n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path, help="run notebooks (default: every results/**/*.ipynb)")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if a notebook needs rewriting")
    ap.add_argument("--records", action="store_true",
                    help="rewrite results records (*.json) instead: provenance.command, FusionNet's coder paths")
    args = ap.parse_args(argv)
    if args.records:            # only the records named: they belong to whoever keeps results/
        if not args.files:
            ap.error("--records rewrites only the records named: give them, e.g. results/**/*.json")
        files = args.files
        todo = sum(bool(rewrite_record(f, check=args.check)) for f in files)
        print(f"{todo} of {len(files)} records {'need rewriting' if args.check else 'rewritten'}", file=sys.stderr)
        return 1 if args.check and todo else 0
    files = args.files or sorted((REPO / "results").rglob("*.ipynb"))
    todo = 0
    for f in files:
        what = rewrite_file(f, check=args.check)
        if what:
            todo += 1
            print(f"{f}: {'needs' if args.check else 'rewrote'} parameters {', '.join(what['parameters']) or '-'}; "
                  f"{what['outputs']} output texts")
    print(f"{todo} of {len(files)} notebooks {'need rewriting' if args.check else 'rewritten'}", file=sys.stderr)
    return 1 if args.check and todo else 0


if __name__ == "__main__":
    sys.exit(main())
