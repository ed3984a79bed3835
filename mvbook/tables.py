"""Table 3 as text and as tables to paste elsewhere (markdown, LaTeX, CSV),
read from the records by :mod:`mvbook.results`, with the paired comparisons and
the analysis plan's verdicts (:mod:`mvbook.plan`) as text. Used by ``python -m mvbook table``.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import ConfigError, DataError
from .plan import ALPHA, POWER, decide
from .records import load_records
from .results import (
    ALL_ROW_NAMES,
    EXTRA_ROW_NAMES,
    PAPER_TABLE3,
    ROW_NAMES,
    UNITS,
    paired_comparison,
    row_devices,
    row_key,
    spans,
    table3,
)
from .schema import RunRecord
from .seeds import record_scheme

__all__ = ["table_records", "format_table3", "format_comparison", "format_decisions", "table3_rows", "export_table",
           "run_labels", "provenance_lines"]


def table_records(root, dataset: str, preset: str, *, seed_scheme: str | None = None,
                  skip_bad: bool = False) -> list[RunRecord]:
    """The records a table is made of: one dataset and preset, optionally of one seed scheme.

    Parameters
    ----------
    root : str or path-like
        The folder of records (``table --results``).
    dataset, preset : str
        Which records.
    seed_scheme : str, optional
        Keep only the runs of this seed scheme (:data:`mvbook.seeds.SEED_SCHEMES`).
    skip_bad : bool
        Leave a broken record out with a warning instead of raising.

    Returns
    -------
    list of RunRecord
        At least one.

    Raises
    ------
    mvbook.errors.DataError
        No such folder; no record of that dataset and preset (naming those the
        folder holds); none of that seed scheme (naming the schemes there).
    """
    if not Path(root).is_dir():
        raise DataError(f"no such folder of records ({root}): see --results (where train and grid --out write them)")
    recs = load_records(root, dataset, preset, skip_bad=skip_bad)
    if not recs:
        found = sorted({(r["dataset"], r["preset"]) for r in load_records(root, skip_bad=True, warn=lambda m: None)})
        raise DataError(f"no records of {dataset} at preset {preset} ({root}): "       # the skipped named above
                        + (f"it holds {', '.join(f'{d}/{p}' for d, p in found)}" if found else "it holds none")
                        + "; see --results, --dataset and --preset")
    if seed_scheme is None:
        return recs
    kept = [r for r in recs if record_scheme(r) == seed_scheme]
    if not kept:
        raise DataError(f"--seed-scheme {seed_scheme}: no run of {dataset} at preset {preset} has it ({root}); "
                        f"their schemes: {', '.join(sorted({record_scheme(r) for r in recs}))}")
    return kept


def format_comparison(records: Sequence[Mapping[str, Any]], reference: str, unit: str = "fold") -> str:
    """``reference`` minus every other row, paired (:func:`mvbook.results.paired_comparison`), as text.

    Parameters
    ----------
    records : list of dict
        Records of one dataset and preset.
    reference : str
        The row compared with the others.
    unit : {"fold", "run"}
        What is paired: fold means, or (fold, seed) runs as if independent.

    Returns
    -------
    str
        A heading that says what is paired and which p-value is which, then the table.
    """
    return (f"{reference} minus each row (percentage points), paired over {UNITS[unit]}; p-values two-sided: "
            "paired t-test (p_t), exact sign-flip test (p_sign_flip), Wilcoxon:\n"
            + paired_comparison(records, reference, unit=unit).round(4).to_string())


#: the columns of :func:`mvbook.plan.decide` that ``table --decide`` prints, and their headings
_DECIDED = {"verdict": "verdict", "mean_diff": "points", "pairs": "folds", "runs": "runs", "p": "p_t",
            "p_holm": "p_t_holm", "mdd": "detectable", "p_crossed": "p_crossed", "p_crossed_holm": "p_crossed_holm",
            "per_fold_runs": "per_fold_runs", "mean_diff_per_fold": "per_fold_points", "p_per_fold": "p_per_fold"}


def format_decisions(records: Sequence[Mapping[str, Any]]) -> str:
    """The analysis plan's verdict on each claim (:func:`mvbook.plan.decide`), as text.

    Parameters
    ----------
    records : list of dict
        Records of one dataset and preset.

    Returns
    -------
    str
        A heading that says how each column is decided, then one line per claim.
    """
    d = decide(records)
    return (f"the analysis plan (mvbook.plan), each claim row − baseline in percentage points over fold means: "
            f"verdict by the paired t-test over fold means with Holm's adjustment over the {len(d)} claims "
            f"(alpha {ALPHA}); detectable: the smallest true difference found with power {POWER} at alpha/"
            f"{len(d)}; beside it, deciding nothing: the crossed random-effects model (fold and seed random, "
            "p_crossed, Holm) and the fold-level test on the runs of seeds drawn per fold alone (per_fold_*)\n"
            + d[list(_DECIDED)].rename(columns=_DECIDED).round(4).to_string())


def format_table3(records: Sequence[Mapping[str, Any]], dataset: str, preset: str, extended: bool = False) -> str:
    """Table 3 as text: our mean of the fold means ± their std beside the paper's column;
    ``extended`` adds the rows that are not in the paper (marked †), and a row
    whose folds have unequal numbers of runs is marked ‡ (its mean weighs each
    fold once, :func:`~mvbook.results.fold_mean`). The kind of device that
    trained the runs is stated; when there are several, each row names its own."""
    t = table3(records)
    paper_col = "esc50" if dataset in ("esc50", "esc10") else dataset
    lines = [f"Table 3 — {dataset}, preset {preset!r} (accuracy %: mean of the fold means ± their std)"]
    runs = {(row_key(r), r["fold"], r["seed"]): r for r in records}
    devices = sorted({d for key in ALL_ROW_NAMES for d in row_devices(key, runs)})
    if records:
        red = sorted({x for r in records for x in r.get("reduced", [])})
        if red:
            lines.append("reduced from the paper: " + "; ".join(red))
        lines.append(f"trained on {devices[0]}, every run" if len(devices) == 1 else
                     f"trained on several kinds of device ({', '.join(devices)}): each row names its own")
        lines += provenance_lines(records)
    head = f"{'system':<34}{'ours':>16}{'runs':>6}{'paper (' + paper_col + ')':>18}"
    lines += [head, "-" * len(head)]
    uneven = False
    for key, name in (ALL_ROW_NAMES if extended else ROW_NAMES).items():
        if key in EXTRA_ROW_NAMES and key not in t.index:
            continue
        paper = PAPER_TABLE3[paper_col].get(key, float("nan")) if paper_col in PAPER_TABLE3 else float("nan")
        if key in t.index:
            m, s, n = t.loc[key, "mean"], t.loc[key, "std"], int(t.loc[key, "n"])
            ours = f"{m:6.2f} ± {s:5.2f}" if s == s else f"{m:6.2f}"
            if not t.loc[key, "balanced"]:
                name, uneven = name + " ‡", True
            if len(devices) > 1:
                name += f" [{', '.join(row_devices(key, runs))}]"
        else:
            ours, n = "no runs", 0
        lines.append(f"{name:<34}{ours:>16}{n:>6}{paper:>18.2f}" if paper == paper else
                     f"{name:<34}{ours:>16}{n:>6}{'—':>18}")
    if extended:
        lines.append("† not in the paper (part *Beyond the paper*)")
    if uneven:
        lines.append("‡ its folds have unequal numbers of runs (seeds): the mean is of the fold means, each fold "
                     "weighing once as in the paired tests, and the std is of the fold means")
    if paper_col != dataset:
        lines.append(f"(the paper reports ESC-50, 50 classes; {dataset} is not the paper's dataset)")
    return "\n".join(lines)


def provenance_lines(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """What the table's runs share and do not: the seed scheme of each seed
    (:mod:`mvbook.seeds`) and, when the runs come from several commits, how many each.

    Parameters
    ----------
    records : list of dict
        Results records.

    Returns
    -------
    list of str
        ``seeds: 0–2 shared by the folds; 3–12 drawn per fold``, and
        ``trained by 2 commits: 5c285bd (35 runs), b9356e9 (10 runs)`` where there are several.
    """
    by_scheme: dict = {}
    for r in records:
        by_scheme.setdefault(record_scheme(r), set()).add(r["seed"])
    words = {"shared": "shared by the folds (each the same start on every fold)", "per_fold": "drawn per fold"}
    order = sorted(by_scheme.items(), key=lambda kv: min(kv[1]))
    lines = ["seeds: " + "; ".join(f"{spans(v)} {words[k]}" for k, v in order)]
    commits = Counter(str(r.get("provenance", {}).get("git_commit") or "unknown")[:7] for r in records)
    if len(commits) > 1:
        lines.append(f"trained by {len(commits)} commits: "
                     + ", ".join(f"{c} ({n} run{'s' if n != 1 else ''})" for c, n in sorted(commits.items())))
    return lines


def table3_rows(records: Sequence[Mapping[str, Any]], dataset: str, extended: bool = False) -> pd.DataFrame:
    """Table 3 as a frame for export: system (‡ as in :func:`format_table3`), ours
    (mean ± std), runs, 95 % CI half-width, the paper's value; rows beyond the
    paper only when they have runs."""
    t = table3(records)
    paper_col = "esc50" if dataset in ("esc50", "esc10") else dataset
    rows = []
    for key, name in (ALL_ROW_NAMES if extended else ROW_NAMES).items():
        if key in EXTRA_ROW_NAMES and key not in t.index:
            continue
        m = t.loc[key] if key in t.index else None
        paper = PAPER_TABLE3[paper_col].get(key) if paper_col in PAPER_TABLE3 else None
        rows.append({"system": name if m is None or m["balanced"] else name + " ‡", "ours": "no runs" if m is None else
                     (f"{m['mean']:.2f} ± {m['std']:.2f}" if m["std"] == m["std"] else f"{m['mean']:.2f}"),
                     "runs": 0 if m is None else int(m["n"]),
                     "ci95": "" if m is None or m["n"] < 2 else f"{m['ci95']:.2f}",
                     "paper": "" if paper is None or paper != paper else f"{paper:.2f}"})
    return pd.DataFrame(rows)


def export_table(frame: pd.DataFrame, fmt: str) -> str:
    """``frame`` as ``markdown`` (a pipe table), ``latex`` (booktabs-free tabular) or ``csv``."""
    cols = [str(c) for c in frame.columns]
    cells = [[str(v) for v in row] for row in frame.itertuples(index=False)]
    if fmt == "csv":
        return frame.to_csv(index=False).rstrip("\n")
    if fmt == "markdown":
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        return "\n".join(lines + ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells])
    if fmt == "latex":
        esc = lambda s: s.replace("%", r"\%").replace("&", r"\&").replace("_", r"\_").replace("±", r"$\pm$")  # noqa: E731
        body = [" & ".join(esc(c) for c in row) + r" \\" for row in [cols] + cells]
        return "\n".join([r"\begin{tabular}{l" + "r" * (len(cols) - 1) + "}", body[0], r"\hline", *body[1:],
                          r"\end{tabular}"])
    raise ConfigError(f"unknown format {fmt!r}; choose text, markdown, latex or csv")


def run_labels(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its (fold, seed) columns labelled ``fold k, seed s``."""
    return df.rename(columns=lambda c: f"fold {c[0]}, seed {c[1]}" if isinstance(c, tuple) else c)
