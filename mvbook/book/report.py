"""Table 3 and what it is missing, as HTML: the paper's column beside ours,
one column per (fold, seed), each cell linked to the executed notebook and
the record of the run that produced it. Chapters: *Results*, *Beyond the paper*.
"""
from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from ..errors import ConfigError
from ..records import REPO, grid_command, record_path
from ..results import (
    ALL_ROW_NAMES,
    PAPER_TABLE3,
    ROW_NAMES,
    SOURCE,
    fold_accuracies,
    fold_mean,
    fold_std,
    row_devices,
    row_key,
    row_records,
)
from ..systems import DERIVED, PAPER_SYSTEMS

__all__ = ["missing_html", "table3_html", "row_commits"]


def _rel(path, base: str) -> str:
    path = Path(path).resolve()
    rel = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    return base + rel.as_posix()


def _link(path, base: str, label: str, cls: str = "") -> str:
    return f'<a class="{cls}" href="{html.escape(_rel(path, base))}">{html.escape(label)}</a>'


def _run_links(rec: dict, base: str) -> str:
    """'notebook · json' links of one run (the notebook only when it was kept)."""
    nb = Path(rec["path"]).with_suffix(".ipynb")
    parts = []
    if nb.exists():
        parts.append(_link(nb.with_suffix(".html"), base, "nb", "mv-nb"))
    parts.append(_link(rec["path"], base, "json", "mv-json"))
    return " ".join(parts)


def _ours(vals: pd.Series) -> str:
    """'mean ± std (runs)' of a row's accuracies: the mean of the fold means and their std
    ('mean ± std' unbroken, so that a narrow page wraps only before the number of runs)."""
    if len({f for f, _ in vals.index}) > 1:
        return f"{fold_mean(vals):.2f}\u00a0±\u00a0{fold_std(vals):.2f} ({len(vals)})"
    if len(vals) > 1:
        return f"{fold_mean(vals):.2f} ({len(vals)})"
    return f"{vals.iloc[0]:.2f} (1)" if len(vals) == 1 else "—"


def _common(vals: pd.Series, seed: int = 0) -> str:
    """'mean (folds)' of a row's runs with ``seed``: the column every row can be compared on."""
    one = vals[[s == seed for _, s in vals.index]] if len(vals) else vals
    return f"{one.mean():.2f} ({len(one)})" if len(one) else "—"


def _fixed_heads(paper: str, common: bool) -> list[str]:
    """The heads of the columns before the per-run ones."""
    return ["system", "ours: mean ± std (runs)", paper] + (["ours, seed 0 only: mean (folds)"] if common else [])


def _header(cols: list, fixed: list[str]) -> str:
    """The table head: the ``fixed`` columns, then one column per (fold, seed),
    labelled with both; with several seeds, a row of folds above a row of seeds."""
    seeds = sorted({s for _, s in cols})
    if len(seeds) <= 1:
        label = f", seed {seeds[0]}" if seeds else ""
        heads = fixed + [f"fold {f}{label}" for f, _ in cols]
        return "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in heads) + "</tr>"
    folds = list(dict.fromkeys(f for f, _ in cols))
    top = "".join(f"<th rowspan='2'>{html.escape(h)}</th>" for h in fixed) + "".join(
        f"<th class='mv-fold' colspan='{sum(1 for g, _ in cols if g == f)}'>fold {f}</th>" for f in folds)
    return f"<tr>{top}</tr><tr>" + "".join(f"<th class='mv-seed'>seed {s}</th>" for _, s in cols) + "</tr>"


def _table(head: str, rows: list[list[str]]) -> str:
    """A Table 3 element (in a horizontally scrolling box) of a head and rows of cells."""
    body = "".join("<tr>" + "".join(r) + "</tr>" for r in rows)
    return f"<div class='mv-scroll'><table class='mv-table3'><thead>{head}</thead><tbody>{body}</tbody></table></div>"


def row_commits(key: str, runs: dict) -> list[str]:
    """The commits (7 characters) whose code trained the runs behind row ``key``
    (a derived row: its members' runs; a self-ensemble: its multi-view runs;
    a resumed run: every commit of its ``trained_by``)."""
    out = set()
    for r in row_records(key, runs):
        prov = r.get("provenance", {})
        out |= {t["git_commit"][:7] for t in prov.get("trained_by") or [prov]} if prov else {"unknown"}
    return sorted(out)


def _sources(key: str, runs: dict, fold: int, seed: int, base: str) -> str:
    """The links of a filled cell: a derived row's member records, else its run's notebook and record."""
    if key in DERIVED:
        return " ".join(_link(runs[(m, fold, seed)]["path"], base, m, "mv-json") for m in DERIVED[key])
    return _run_links(runs[(SOURCE.get(key, key), fold, seed)], base)


def _missing(key: str, name: str, runs: dict, fold: int, seed: int, dataset: str, preset: str,
             results_dir: str) -> dict:
    """An empty cell: its row, fold, seed, why it is empty, the systems it needs and the command that runs them."""
    if key in DERIVED:
        need = [m for m in DERIVED[key] if (m, fold, seed) not in runs]
        why = f"{name.rstrip(' †').lower()} needs the {', '.join(need)} run(s) of this fold"
    else:
        need = [SOURCE.get(key, key)]
        why = f"no record {results_dir}/{record_path(dataset, preset, need[0], fold, seed).as_posix()}"
    return {"row": name, "fold": fold, "seed": seed, "why": why, "systems": need,
            "command": grid_command(dataset, preset, need, [fold], [seed], out=results_dir)}


def missing_html(missing: list[dict], dataset: str, preset: str, results_dir: str = "results") -> str:
    """What :func:`table3_html` found missing, as HTML.

    Parameters
    ----------
    missing : list of dict
        :func:`table3_html`'s second result.
    dataset, preset : str
        The table's dataset and preset.
    results_dir : str
        The records' folder.

    Returns
    -------
    str
        The runs to make, grouped by system, and the one command that makes them
        (each empty cell's reason and own command are its tooltip).
    """
    if not missing:
        return ""
    need = {s: set() for s in ("mel", "gam", "cqt", "raw", "concat", "multiview", "equal")}
    for m in missing:
        for s in m["systems"]:
            need.setdefault(s, set()).add(m["fold"])
    need = {s: f for s, f in need.items() if f}
    seeds = sorted({m.get("seed", 0) for m in missing})
    grid = grid_command(dataset, preset, list(need) if set(need) - set(PAPER_SYSTEMS) else None,   # default: the six
                        seeds=seeds if seeds != [0] else None, out=results_dir)
    runs = "; ".join(f"<code>{html.escape(s)}</code> fold{'s' if len(f) > 1 else ''} "
                     f"{', '.join(map(str, sorted(f)))}" for s, f in need.items())
    return (f"<p><b>{len(missing)} empty cell(s)</b>, marked · (hover one for why and the command that fills "
            f"it alone). Runs missing: {runs}. <code>{html.escape(grid)}</code> makes all of them (finished runs "
            "are skipped); then rebuild the book.</p>")


def _rows(rows, extended: bool) -> tuple[dict, list]:
    """(row names, row keys in order) of :func:`table3_html`."""
    names = ALL_ROW_NAMES if extended or rows is not None else ROW_NAMES
    unknown = [k for k in rows or () if k not in names]
    if unknown:
        raise ConfigError(f"unknown rows {unknown}; choose from {list(names)}")
    return names, list(rows) if rows is not None else list(names)


def _run_cell(key: str, name: str, vals, runs: dict, fold: int, seed: int, base: str, missing: list,
              where: tuple) -> str:
    """One (fold, seed) cell of a row: its accuracy and links, or · (appended to ``missing``, with why)."""
    v = vals.get((fold, seed))
    if v is not None and v == v:
        return f"<td>{v:.2f}<br><small>{_sources(key, runs, fold, seed, base)}</small></td>"
    m = _missing(key, name, runs, fold, seed, *where)
    missing.append(m)
    return f"<td class='mv-missing' title='{html.escape(m['why'] + '. Run: ' + m['command'])}'>·</td>"


def _caption(dataset: str, preset: str, esc50: bool, common: bool, extra: bool, devices: list[str]) -> str:
    """The caption of :func:`table3_html`; ``devices``: the kinds of device of all its runs."""
    caption = (f"Table 3 — {html.escape(dataset)}, preset <code>{html.escape(preset)}</code>: accuracy (%) on the "
               "test folds. Ours: mean of the fold means (each fold's runs averaged first) ± the std of the fold means "
               "(number of runs); below the table, the commits whose code trained each row (rows of several "
               "commits compare code that may round differently). "
               "Paper: ESC-50 (50 classes)"
               if esc50 else f"Table 3 — {html.escape(dataset)}, preset {html.escape(preset)}")
    if common:
        caption += (". Rows have different numbers of runs (seeds); the seed-0 column averages the same folds for "
                    "every row, and the paired comparisons pair fold means over the seeds both rows have")
    if len(devices) == 1:
        caption += f". Every run was trained on {html.escape(devices[0])}"
    elif devices:
        caption += (". The runs were trained on more than one kind of device: each row names its own (a row of "
                    "two kinds compares runs that round differently)")
    return caption + (". † not in the paper" if extra else "")


def table3_html(records: list[dict], dataset: str, preset: str, *, folds=None, seeds=(0,),
                base: str = "../", results_dir: str = "results", extended: bool = False,
                rows=None, runs_below: bool = False) -> tuple[str, list[str]]:
    """Table 3 as HTML: the paper's column beside ours, then one column per run.

    Parameters
    ----------
    records : list of dict
        Results records.
    dataset, preset : str
        Which records the table shows.
    folds : list of int, optional
        Its fold columns (default: the folds the records have).
    seeds : sequence of int
        Its seeds.
    base : str
        The path from the page to the repository root as the built book lays it out.
    results_dir : str
        The records' folder, relative to ``base``.
    extended : bool
        Add every row that is not in the paper (names marked †, part *Beyond the paper*).
    rows : list of str, optional
        Row keys (of :data:`~mvbook.results.ALL_ROW_NAMES`) to show, in that order.
    runs_below : bool
        Put the per-run columns in a second table, folded (``<details>``) below
        the first, so that the means fit a page's width.

    Returns
    -------
    html : str
        Mean ± std of the fold means, then the paper's column, then one column per
        (fold, seed) whose cells link to the executed notebook and the record of the run;
        below it, folded, the commits that trained each row.
    missing : list of dict
        One per empty cell: the row's name, ``fold``, ``seed``, ``why`` it is empty,
        the trained ``systems`` it needs and the ``command`` that fills it.
    """
    df = fold_accuracies(records)
    runs = {(row_key(r), r["fold"], r["seed"]): r for r in records}
    cols = sorted(set(df.columns) | {(f, s) for f in (folds or []) for s in seeds})
    paper_col = "esc50" if dataset in ("esc50", "esc10") else dataset
    has_paper = paper_col in PAPER_TABLE3
    names, keys = _rows(rows, extended)
    devices = sorted({d for key in keys for d in row_devices(key, runs)})
    missing = []
    common = len({s for _, s in cols}) > 1                     # rows with more seeds than others: compare on seed 0
    paper_head = f"paper ({'ESC-50' if paper_col == 'esc50' else paper_col})" if has_paper else "paper"
    fixed_rows, run_rows, code = [], [], []
    for key in keys:
        name = names[key]
        if key == "equal" and keys == list(ROW_NAMES) and not any(k[0] == "equal" for k in runs):
            continue
        paper = PAPER_TABLE3[paper_col].get(key) if has_paper else None
        vals = (df.loc[key] if key in df.index else pd.Series(dtype=float)).dropna()
        head_cell = f"<th>{html.escape(name)}" + (f"<br><small>on {html.escape(', '.join(row_devices(key, runs)))}"
                                                  "</small>" if len(devices) > 1 and row_devices(key, runs) else "")
        head_cell += "</th>"
        fixed_rows.append([head_cell, f"<td class='mv-mean'>{_ours(vals)}</td>",
                           f"<td>{'—' if paper is None else f'{paper:.2f}'}</td>"]
                          + ([f"<td class='mv-mean'>{_common(vals)}</td>"] if common else []))
        code.append(f"<li>{html.escape(name.rstrip(' †'))}: <span class='mv-code'>"
                    f"{html.escape(', '.join(row_commits(key, runs)) or '—')}</span></li>")
        run_rows.append([_run_cell(key, name, vals, runs, f, s, base, missing, (dataset, preset, results_dir))
                         for f, s in cols])
    caption = _caption(dataset, preset, paper_col == "esc50", common, any(k not in ROW_NAMES for k in keys),
                       devices)
    fixed = _fixed_heads(paper_head, common)
    if runs_below:
        table = (_table(_header([], fixed), fixed_rows) + "<details class='mv-runs'><summary>Each run of the table "
                 f"({len(cols)} columns: the accuracy of every (fold, seed), linked to its notebook and record; "
                 "scroll it sideways where it is wider than the page)"
                 "</summary>" + _table(_header(cols, ["system"]), [[f[0]] + r for f, r in zip(fixed_rows, run_rows)])
                 + "</details>")
    else:
        table = _table(_header(cols, fixed), [f + r for f, r in zip(fixed_rows, run_rows)])
    table += ("<details class='mv-code'><summary>The code of each row: the commits that trained its runs"
              "</summary><ul>" + "".join(code) + "</ul></details>")
    table = f"<p class='mv-caption'>{caption}.</p>" + table                   # the caption wraps
    return table, missing
